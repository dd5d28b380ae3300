//! One task per BMP collector: connect (with capped, jittered backoff),
//! send Initiation, then write what the router task queues, until the
//! collector goes away, reads too slowly or the task is told to stop.
//!
//! The queue between the two is bounded in bytes ([`Shared::queued`]):
//! the router task never waits for a collector. When a message would go
//! over the limit, the router task stops queueing for this connection and
//! raises [`Shared::overflow`]; this task then drops the connection and
//! connects again, and the router task sends everything afresh (Peer Ups
//! and the Adj-RIB-In dump) to the new connection. Messages are tagged
//! with the connection (`epoch`) they were meant for, so nothing meant for
//! an old connection reaches a new one.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{info, warn};

use super::encode;

/// First wait before a reconnect; doubles up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A connection that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Written in one go at most (messages are joined while the queue has
/// more).
const WRITE_BATCH: usize = 256 * 1024;

/// What the router task hands the collector task.
pub(super) enum Item {
    /// A BMP message for connection `epoch`.
    Msg { epoch: u64, bytes: Vec<u8> },
    /// Write a Termination and close; `done` when written (or given up).
    Stop {
        reason: encode::TerminationReason,
        text: String,
        done: Option<oneshot::Sender<()>>,
    },
}

/// A collector connection's state, as `show status` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    Connecting,
    Connected,
    /// Waiting before the next connect.
    Backoff {
        retry_in: Duration,
    },
    Stopped,
}

#[derive(Debug, Clone)]
pub struct Status {
    pub state: LinkState,
    /// When `state` was entered.
    pub since: SystemTime,
    /// BMP messages written to the collector, all connections.
    pub messages_sent: u64,
    pub connects: u64,
    pub last_error: Option<String>,
}

/// Between the router task and the collector task.
pub(super) struct Shared {
    /// Bytes queued and not yet written (or dropped).
    pub queued: AtomicUsize,
    /// The connection messages are for now; 0 = none.
    pub epoch: AtomicU64,
    /// The router task found the queue full.
    pub overflow: AtomicBool,
    pub overflow_notify: Notify,
    pub status: Mutex<Status>,
}

impl Shared {
    fn set_state(&self, state: LinkState) {
        let mut s = self.status.lock().unwrap();
        s.state = state;
        s.since = SystemTime::now();
    }
    fn note_error(&self, e: String) {
        self.status.lock().unwrap().last_error = Some(e);
    }
}

/// The router task's end of a collector task.
pub(super) struct Handle {
    pub tx: mpsc::UnboundedSender<Item>,
    pub shared: Arc<Shared>,
    pub limit: usize,
}

impl Handle {
    pub fn spawn(addr: SocketAddr, limit: usize, initiation: Vec<u8>) -> Handle {
        let shared = Arc::new(Shared {
            queued: AtomicUsize::new(0),
            epoch: AtomicU64::new(0),
            overflow: AtomicBool::new(false),
            overflow_notify: Notify::new(),
            status: Mutex::new(Status {
                state: LinkState::Connecting,
                since: SystemTime::now(),
                messages_sent: 0,
                connects: 0,
                last_error: None,
            }),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let task = Task {
            addr,
            initiation,
            shared: shared.clone(),
            rx,
            limit,
        };
        tokio::spawn(task.run());
        Handle { tx, shared, limit }
    }

    /// The connection the collector task is on now (0 = none).
    pub fn epoch(&self) -> u64 {
        self.shared.epoch.load(Ordering::Acquire)
    }

    /// Queue `bytes` for connection `epoch`. False when they do not fit:
    /// the connection is then dropped and resynchronised.
    pub fn send(&self, epoch: u64, bytes: Vec<u8>) -> bool {
        let len = bytes.len();
        let before = self.shared.queued.fetch_add(len, Ordering::AcqRel);
        if before + len > self.limit {
            self.shared.queued.fetch_sub(len, Ordering::AcqRel);
            self.shared.overflow.store(true, Ordering::Release);
            self.shared.overflow_notify.notify_one();
            return false;
        }
        if self.tx.send(Item::Msg { epoch, bytes }).is_err() {
            self.shared.queued.fetch_sub(len, Ordering::AcqRel);
            return false;
        }
        true
    }

    pub fn stop(&self, text: &str, done: Option<oneshot::Sender<()>>) {
        let _ = self.tx.send(Item::Stop {
            reason: encode::TerminationReason::AdministrativelyClosed,
            text: text.to_string(),
            done,
        });
    }
}

struct Task {
    addr: SocketAddr,
    initiation: Vec<u8>,
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Item>,
    limit: usize,
}

/// How a connection ended.
enum End {
    Stopped,
    Failed(String),
}

/// `d` scaled by a factor in [0.75, 1.25): collectors restarted together
/// do not see every router reconnect in the same instant.
fn jittered(d: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    d.mul_f64(0.75 + f64::from(nanos % 1000) / 2000.0)
}

impl Task {
    async fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        let mut epoch = 0;
        loop {
            self.shared.set_state(LinkState::Connecting);
            let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.addr));
            let connected = tokio::select! {
                c = connected => c,
                stop = self.wait_stop() => { self.stopped(stop); return; }
            };
            match connected {
                Ok(Ok(stream)) => {
                    epoch += 1;
                    let started = Instant::now();
                    match self.connected(stream, epoch).await {
                        End::Stopped => return,
                        End::Failed(e) => {
                            warn!(collector = %self.addr, "BMP: {e}");
                            self.shared.note_error(e);
                        }
                    }
                    if started.elapsed() > STABLE {
                        backoff = BACKOFF_MIN;
                    }
                }
                Ok(Err(e)) => self.shared.note_error(format!("connect: {e}")),
                Err(_) => self.shared.note_error("connect: timed out".to_string()),
            }
            let wait = jittered(backoff);
            self.shared.set_state(LinkState::Backoff { retry_in: wait });
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                stop = self.wait_stop() => { self.stopped(stop); return; }
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// While not connected: drop what is queued (it was for an old
    /// connection) until told to stop.
    async fn wait_stop(&mut self) -> Option<oneshot::Sender<()>> {
        loop {
            match self.rx.recv().await {
                None => return None,
                Some(Item::Msg { bytes, .. }) => {
                    self.shared.queued.fetch_sub(bytes.len(), Ordering::AcqRel);
                }
                Some(Item::Stop { done, .. }) => return done,
            }
        }
    }

    fn stopped(&self, done: Option<oneshot::Sender<()>>) {
        self.shared.set_state(LinkState::Stopped);
        if let Some(d) = done {
            let _ = d.send(());
        }
    }

    async fn connected(&mut self, stream: TcpStream, epoch: u64) -> End {
        let (mut rd, mut wr) = stream.into_split();
        self.shared.overflow.store(false, Ordering::Release);
        if let Err(e) = wr.write_all(&self.initiation).await {
            self.shared.epoch.store(0, Ordering::Release);
            return End::Failed(format!("writing Initiation: {e}"));
        }
        {
            let mut s = self.shared.status.lock().unwrap();
            s.messages_sent += 1;
            s.connects += 1;
        }
        info!(collector = %self.addr, "BMP: connected; Initiation sent");
        self.shared.set_state(LinkState::Connected);
        // From now on the router task queues for this connection.
        self.shared.epoch.store(epoch, Ordering::Release);
        let end = self.pump(&mut rd, &mut wr, epoch).await;
        self.shared.epoch.store(0, Ordering::Release);
        end
    }

    async fn pump(
        &mut self,
        rd: &mut tokio::net::tcp::OwnedReadHalf,
        wr: &mut tokio::net::tcp::OwnedWriteHalf,
        epoch: u64,
    ) -> End {
        let mut junk = [0u8; 512];
        loop {
            let item = tokio::select! {
                item = self.rx.recv() => item,
                _ = self.shared.overflow_notify.notified() => {
                    if self.shared.overflow.load(Ordering::Acquire) {
                        return End::Failed(format!(
                            "the collector reads too slowly: more than {} MiB queued; dropped the connection, it is resynchronised on reconnect",
                            self.limit >> 20
                        ));
                    }
                    continue;
                }
                // RFC 7854 §3.2: a collector sends nothing; a read that
                // ends means it closed.
                r = rd.read(&mut junk) => match r {
                    Ok(0) => return End::Failed("closed by the collector".to_string()),
                    Ok(_) => continue,
                    Err(e) => return End::Failed(format!("reading: {e}")),
                },
            };
            let mut batch = Vec::new();
            let mut count = 0u64;
            let mut next = item;
            loop {
                match next {
                    None => {
                        let _ = wr.shutdown().await;
                        self.shared.set_state(LinkState::Stopped);
                        return End::Stopped;
                    }
                    Some(Item::Msg { epoch: e, bytes }) => {
                        self.shared.queued.fetch_sub(bytes.len(), Ordering::AcqRel);
                        if e == epoch {
                            batch.extend_from_slice(&bytes);
                            count += 1;
                        }
                    }
                    Some(Item::Stop { reason, text, done }) => {
                        batch.extend_from_slice(&encode::termination(reason, &text));
                        count += 1;
                        // Bounded, so that a stuck collector cannot hold
                        // up the daemon's exit.
                        let write = async {
                            wr.write_all(&batch).await?;
                            wr.shutdown().await
                        };
                        let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
                        self.shared.status.lock().unwrap().messages_sent += count;
                        self.stopped(done);
                        return End::Stopped;
                    }
                }
                if batch.len() >= WRITE_BATCH {
                    break;
                }
                match self.rx.try_recv() {
                    Ok(i) => next = Some(i),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                continue;
            }
            // A collector that stops reading fills the queue while this
            // write waits: the overflow ends the wait too.
            tokio::select! {
                r = wr.write_all(&batch) => if let Err(e) = r {
                    return End::Failed(format!("writing: {e}"));
                },
                _ = self.shared.overflow_notify.notified() => {
                    return End::Failed(format!(
                        "the collector reads too slowly: more than {} MiB queued; dropped the connection, it is resynchronised on reconnect",
                        self.limit >> 20
                    ));
                }
            }
            self.shared.status.lock().unwrap().messages_sent += count;
        }
    }
}
