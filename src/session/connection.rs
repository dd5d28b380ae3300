//! One TCP connection to a peer: a reader task (framing, decoding) and a
//! writer task (encoding). The peer task owns the FSM; it hears from the
//! reader through [`ConnEvent`]s and talks to the writer through
//! [`Outgoing`]. Once the session is Established the reader hands UPDATEs
//! straight to the RIB, so a full table never queues behind the FSM, and
//! only tells the FSM that they came (for the hold timer).
//!
//! Backpressure: the reader and the writer wait for the peer task when its
//! event queue ([`CONN_EVENTS`]) is full, so a peer that floods messages
//! is slowed down by TCP instead of growing a queue; the peer task never
//! waits for either of them, so these waits cannot close a cycle. The
//! reader also waits for the router task (UPDATEs), which never waits for a
//! connection or a peer task.
//!
//! The writer's queue has no length limit (the peer task must not wait for
//! the writer), but what it holds is bounded: the router's UPDATEs come in
//! batches, the next one only when the writer has written the last down to
//! [`ROOM_BELOW`] bytes and said so ([`ConnEvent::Room`]); the rest is a
//! KEEPALIVE per keepalive interval, or an OPEN, NOTIFICATION or refresh
//! marker. A peer that stops reading therefore leaves one batch waiting,
//! and the send hold timer closes its session.

use std::io::IoSlice;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use tokio::sync::{mpsc, watch};

use wire::{decode_message, Family, Message, Notification, SessionCodec, Update};

use crate::events::{MessageCounters, RibEvent};
use rib::PeerId;

pub use super::fsm::ConnId;

/// What the reader saw, in the order it saw it.
#[derive(Debug)]
pub enum ConnEvent {
    Open(wire::Open),
    Keepalive,
    /// One or more UPDATEs. Before Established they are only reported
    /// (the FSM refuses them); after, they have gone to the RIB.
    Update,
    Notification(Notification),
    RouteRefresh(Family),
    /// A message that cannot be decoded: send this NOTIFICATION.
    Malformed(Notification, String),
    /// The peer closed the connection, or reading it failed.
    Closed(String),
    /// The writer: nothing could be written for the send hold time.
    SendHoldExpired,
    /// The writer: the answer to a ROUTE-REFRESH for this family is
    /// written.
    RefreshWritten(Family),
    /// The writer: what was queued is written down to [`ROOM_BELOW`]
    /// bytes, and the peer task asked to hear of it ([`SendQueue::arm`]).
    Room,
}

/// Capacity of a peer task's queue of connection events (all of its
/// connections' readers and writers share it).
pub const CONN_EVENTS: usize = 64;

pub type EventSender = mpsc::Sender<(ConnId, ConnEvent)>;

/// Most bytes queued for one connection and not yet written: a backstop
/// that the batches ([`ROOM_BELOW`]) keep far away. Reaching it would be a
/// bug; the connection is then closed with Cease/8, Out of Resources
/// (RFC 4486), rather than let memory grow.
pub const SEND_QUEUE_LIMIT: usize = 256 << 20;

/// The writer asks for the next batch of UPDATEs once it has written its
/// queue down to this many bytes: enough left to keep the socket busy
/// while the router prepares the next one.
pub const ROOM_BELOW: usize = 256 << 10;

/// Bytes handed to a connection's writer and not yet written (the peer
/// task adds, the writer subtracts), and whether the peer task waits to
/// hear that there is room again.
#[derive(Clone, Default)]
pub struct SendQueue(Arc<QueueState>);

#[derive(Default)]
pub struct QueueState {
    bytes: AtomicUsize,
    room_wanted: AtomicBool,
}

impl SendQueue {
    /// Add `n` bytes; returns the new total.
    pub fn add(&self, n: usize) -> usize {
        self.0.bytes.fetch_add(n, Ordering::SeqCst) + n
    }

    /// The peer task wants to know when there is room. True: there is
    /// now (ask at once); else the writer reports [`ConnEvent::Room`]
    /// when there is. Exactly one of the two takes the request.
    pub fn arm(&self) -> bool {
        self.0.room_wanted.store(true, Ordering::SeqCst);
        self.take_room()
    }

    /// True (once) if room was wanted and there is room.
    fn take_room(&self) -> bool {
        self.0.bytes.load(Ordering::SeqCst) <= ROOM_BELOW
            && self.0.room_wanted.swap(false, Ordering::SeqCst)
    }

    /// `n` bytes written; true if the peer task is to hear of the room.
    fn written(&self, n: usize) -> bool {
        self.0.bytes.fetch_sub(n, Ordering::SeqCst);
        self.take_room()
    }
}

/// What the peer task hands a connection's writer: messages it has
/// encoded (it knows the codec and counts the bytes, see [`SendQueue`]).
pub enum Outgoing {
    Bytes(Vec<u8>),
    /// Bytes shared with other sessions (an update group's batch).
    Shared(Arc<[u8]>),
    /// Part of such bytes: the batch without this session's own paths.
    SharedPart(Arc<[u8]>, std::ops::Range<usize>),
    /// Write these bytes (an encoded NOTIFICATION, or nothing) and close.
    Close(Vec<u8>),
    /// Report [`ConnEvent::RefreshWritten`] once everything before this
    /// is written.
    RefreshDone(Family),
}

impl Outgoing {
    /// What is to be written.
    fn bytes(&self) -> &[u8] {
        match self {
            Outgoing::Bytes(b) | Outgoing::Close(b) => b,
            Outgoing::Shared(b) => b,
            Outgoing::SharedPart(b, r) => &b[r.clone()],
            Outgoing::RefreshDone(_) => &[],
        }
    }
}

/// Where the reader sends UPDATEs once the session is up: (generation, peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub peer: PeerId,
    pub generation: u64,
}

pub struct ReaderArgs {
    pub conn: ConnId,
    pub events: EventSender,
    pub rib: mpsc::Sender<RibEvent>,
    /// Set by the peer task when the session is Established on this
    /// connection; dropped when the connection is closed.
    pub delivery: watch::Receiver<Option<Delivery>>,
    /// The peer's message counters (`/metrics`).
    pub counters: Arc<MessageCounters>,
}

pub async fn run_reader(mut rd: OwnedReadHalf, mut a: ReaderArgs) {
    // None while the session is quiet (see below), a message's worth for
    // a KEEPALIVE or a few UPDATEs, grown while the peer sends more than
    // each read takes (a full table).
    let mut chunk = READ_MIN;
    let mut buf: Vec<u8> = Vec::new();
    let mut codec = SessionCodec::default();
    let mut delivery: Option<Delivery> = None;
    let events = a.events.clone();
    let conn = a.conn;
    // Waits while the peer task's queue is full: TCP then slows the peer.
    let send = |ev: ConnEvent| {
        let events = events.clone();
        async move {
            let _ = events.send((conn, ev)).await;
        }
    };
    loop {
        // Decode every whole message in the buffer, batching UPDATEs.
        let mut updates: Vec<Update> = Vec::new();
        let mut used = 0;
        let mut stop: Option<ConnEvent> = None;
        while stop.is_none() {
            let msg = match decode_message(&buf[used..], &codec) {
                Ok(Some((msg, len))) => {
                    used += len;
                    a.counters.received(matches!(msg, Message::Notification(_)));
                    msg
                }
                Ok(None) => break,
                Err(e) => {
                    stop = Some(ConnEvent::Malformed(e.0.clone(), e.to_string()));
                    break;
                }
            };
            match msg {
                Message::Update(u) if delivery.is_some() => updates.push(u),
                // Before Established: an FSM error (RFC 4271 §8.2.2); the
                // peer task closes the connection.
                Message::Update(_) => send(ConnEvent::Update).await,
                Message::Open(o) => {
                    codec.four_octet_as =
                        o.has_capability(|c| matches!(c, wire::Capability::FourOctetAs(_)));
                    send(ConnEvent::Open(o)).await;
                }
                Message::Keepalive => {
                    send(ConnEvent::Keepalive).await;
                    if delivery.is_none() {
                        // In OpenConfirm this KEEPALIVE makes the session
                        // Established, and the UPDATEs right behind it are
                        // the RIB's, not errors: decode no further until the
                        // FSM has taken it. Its answer always comes: the
                        // FSM either establishes the session (OpenConfirm)
                        // or closes the connection, which drops the
                        // watch's sender.
                        match a.delivery.wait_for(Option::is_some).await {
                            Ok(d) => delivery = *d,
                            Err(_) => return,
                        }
                    }
                }
                Message::Notification(nf) => stop = Some(ConnEvent::Notification(nf)),
                Message::RouteRefresh(r) => send(ConnEvent::RouteRefresh(r.family)).await,
            }
        }
        buf.drain(..used);
        if let (Some(d), false) = (delivery, updates.is_empty()) {
            // Received now: the hold timer restarts even if the RIB makes
            // us wait.
            send(ConnEvent::Update).await;
            let ev = RibEvent::Updates {
                peer: d.peer,
                generation: d.generation,
                updates,
            };
            if a.rib.send(ev).await.is_err() {
                return;
            }
        }
        if let Some(ev) = stop {
            send(ev).await;
            return;
        }
        if buf.is_empty() && chunk == READ_MIN {
            // Between bursts a quiet session (a KEEPALIVE now and then, the
            // usual case at many sessions) holds no buffer: at a thousand
            // sessions the idle readers' 4 KiB were a tenth of the peak
            // heap. Allocate once there is something to read.
            buf = Vec::new();
            if let Err(e) = rd.readable().await {
                send(ConnEvent::Closed(format!("read error: {e}"))).await;
                return;
            }
        }
        if buf.capacity() - buf.len() < chunk / 4 {
            buf.reserve(chunk);
        }
        let room = buf.capacity() - buf.len();
        match rd.read_buf(&mut buf).await {
            Ok(0) => {
                send(ConnEvent::Closed("connection closed by peer".into())).await;
                return;
            }
            // A read that filled the room: more is waiting, read more at
            // once next time; one that did not: the burst is over.
            Ok(n) if n == room => chunk = (chunk * 2).min(READ_MAX),
            Ok(_) => chunk = READ_MIN,
            Err(e) => {
                send(ConnEvent::Closed(format!("read error: {e}"))).await;
                return;
            }
        }
    }
}

/// A reader's buffer: one BGP message (RFC 4271 §4.1) while the session is
/// quiet, up to 64 KiB per read while a peer sends a table.
const READ_MIN: usize = 4096;
const READ_MAX: usize = 64 << 10;

pub struct WriterArgs {
    pub conn: ConnId,
    pub events: EventSender,
    /// RFC 9687 send hold time: give up when no byte could be written for
    /// this long.
    pub send_hold: Duration,
    pub queued: SendQueue,
}

pub async fn run_writer(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    a: WriterArgs,
) {
    while let Some(first) = rx.recv().await {
        // Gather what is queued, then write it at once from each message's
        // own bytes (one writev): an update group's batch is written from
        // the bytes every member shares, and nothing is copied into a
        // buffer of the writer's. Such copies were 7.7 of the 35 MB peak
        // heap of a thousand sessions whose writers fell behind (a
        // cluster-scale run under heaptrack).
        let mut gathered = vec![first];
        let mut bytes = 0;
        loop {
            let last = gathered.last().expect("one pushed");
            bytes += last.bytes().len();
            if matches!(last, Outgoing::Close(_))
                || bytes >= GATHER_BYTES
                || gathered.len() >= GATHER_ITEMS
            {
                break;
            }
            match rx.try_recv() {
                Ok(next) => gathered.push(next),
                Err(_) => break,
            }
        }
        match write_within(&mut wr, &gathered, a.send_hold).await {
            Written::All => {
                if a.queued.written(bytes) {
                    let _ = a.events.send((a.conn, ConnEvent::Room)).await;
                }
            }
            Written::Failed => return,
            Written::Stuck => {
                // The peer task closes the connection (and aborts the
                // reader); the NOTIFICATION it asks for cannot get through.
                let _ = a.events.send((a.conn, ConnEvent::SendHoldExpired)).await;
                return;
            }
        }
        let mut close = false;
        for cmd in gathered {
            match cmd {
                Outgoing::RefreshDone(f) => {
                    let _ = a.events.send((a.conn, ConnEvent::RefreshWritten(f))).await;
                }
                Outgoing::Close(_) => close = true,
                Outgoing::Bytes(_) | Outgoing::Shared(_) | Outgoing::SharedPart(..) => {}
            }
        }
        if close {
            let _ = wr.shutdown().await;
            return;
        }
    }
}

/// The most a writer gathers into one write: 1 MiB, in at most 256
/// messages (a writev takes at most 1024 buffers on Linux, IOV_MAX).
const GATHER_BYTES: usize = 1 << 20;
const GATHER_ITEMS: usize = 256;

enum Written {
    All,
    Failed,
    /// No progress for the send hold time.
    Stuck,
}

/// Write the bytes of `msgs`, in order; `Stuck` if no byte could be
/// written for `send_hold` (RFC 9687 §4: the timer restarts whenever data
/// is sent).
async fn write_within(wr: &mut OwnedWriteHalf, msgs: &[Outgoing], send_hold: Duration) -> Written {
    let mut slices: Vec<IoSlice<'_>> = (msgs.iter())
        .map(Outgoing::bytes)
        .filter(|b| !b.is_empty())
        .map(IoSlice::new)
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match tokio::time::timeout(send_hold, wr.write_vectored(rest)).await {
            Err(_) => return Written::Stuck,
            Ok(Ok(0)) | Ok(Err(_)) => return Written::Failed,
            Ok(Ok(n)) => IoSlice::advance_slices(&mut rest, n),
        }
    }
    Written::All
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    /// A loopback connection: our writer's half and the peer's stream.
    async fn pair() -> (OwnedWriteHalf, TcpStream, tokio::net::tcp::OwnedReadHalf) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ours = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (theirs, _) = l.accept().await.unwrap();
        let (rd, wr) = ours.into_split();
        (wr, theirs, rd)
    }

    fn writer(
        wr: OwnedWriteHalf,
        send_hold: Duration,
    ) -> (
        mpsc::UnboundedSender<Outgoing>,
        mpsc::Receiver<(ConnId, ConnEvent)>,
        SendQueue,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::channel(CONN_EVENTS);
        let queued = SendQueue::default();
        let args = WriterArgs {
            conn: 7,
            events: ev_tx,
            send_hold,
            queued: queued.clone(),
        };
        tokio::spawn(run_writer(wr, rx, args));
        (tx, ev_rx, queued)
    }

    #[tokio::test]
    async fn written_bytes_leave_the_queue_and_refresh_answers_are_reported_after_them() {
        let (wr, mut theirs, _rd) = pair().await;
        let (tx, mut events, queued) = writer(wr, Duration::from_secs(60));
        queued.add(3);
        tx.send(Outgoing::Bytes(b"abc".to_vec())).unwrap();
        tx.send(Outgoing::RefreshDone(Family::Ipv4Unicast)).unwrap();
        let ev = events.recv().await.unwrap();
        assert!(matches!(
            ev,
            (7, ConnEvent::RefreshWritten(Family::Ipv4Unicast))
        ));
        let mut got = [0u8; 3];
        theirs.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"abc");
        assert_eq!(queued.add(0), 0);
    }

    /// What is queued goes out gathered, in order, shared bytes and own
    /// alike, and a close writes its bytes before the end of the stream.
    #[tokio::test]
    async fn queued_messages_are_written_in_order_and_a_close_comes_last() {
        let (wr, mut theirs, _rd) = pair().await;
        let (tx, _events, queued) = writer(wr, Duration::from_secs(60));
        queued.add(6);
        tx.send(Outgoing::Bytes(b"abc".to_vec())).unwrap();
        tx.send(Outgoing::Shared(Arc::from(&b"def"[..]))).unwrap();
        tx.send(Outgoing::Bytes(Vec::new())).unwrap();
        tx.send(Outgoing::Close(b"ghi".to_vec())).unwrap();
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"abcdefghi");
    }

    /// RFC 9687: a peer that stops reading is reported after the send hold
    /// time, not waited for forever.
    #[tokio::test]
    async fn a_peer_that_stops_reading_trips_the_send_hold_timer() {
        let (wr, _theirs, _rd) = pair().await;
        let (tx, mut events, queued) = writer(wr, Duration::from_millis(300));
        // Far more than the socket buffers hold; the peer never reads.
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..64 {
            queued.add(chunk.len());
            tx.send(Outgoing::Bytes(chunk.clone())).unwrap();
        }
        let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("reported within 10 s")
            .unwrap();
        assert!(matches!(ev, (7, ConnEvent::SendHoldExpired)), "{ev:?}");
        assert!(queued.add(0) > 0, "not everything was written");
    }
}
