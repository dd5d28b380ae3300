//! One task per peer: the executor of the session FSM.
//!
//! The FSM itself ([`fsm`]) is pure. The peer task turns what happens —
//! router commands, connections, what each connection's reader saw, timers
//! — into [`fsm::Event`]s, feeds them to it, and carries out the
//! [`fsm::Action`]s it returns: it owns the peer's connections (at most
//! two, ours and theirs), their timers and the published status. It never
//! touches routing state: once Established, UPDATEs go from the connection
//! reader to the RIB task, and the RIB task sends what to advertise through
//! [`PeerCmd::Send`].
//!
//! Queues and who waits on whom (none of the waits can close a cycle):
//! readers and writers → peer task: bounded ([`connection::CONN_EVENTS`]),
//! they wait; peer task → router task: bounded, the peer task waits; the
//! router task never waits on a peer task, so its commands ([`PeerCmd`])
//! and the peer task's hand-over to a writer are queues without a length
//! limit, bounded instead by the pull model: the router keeps what is to
//! send in the peer's Adj-RIB-Out (`rib::Rib::pull`, one entry per prefix
//! that differs, however often it changed) and hands over one batch at a
//! time, the next when this task says the writer has room
//! ([`RibEvent::SendReady`], after [`connection::ConnEvent::Room`]). So a
//! slow peer holds one batch here and never slows the others; one on
//! which nothing could be written for the send hold time is closed by
//! RFC 9687. [`connection::SEND_QUEUE_LIMIT`] remains as a backstop.

pub mod connection;
pub mod fsm;
pub mod open;
pub mod socket;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use rib::PeerId;
use wire::notification as n;
use wire::{encode_message, Message, Notification, SessionCodec, Update};

use crate::events::{
    MessageCounters, PeerCmd, PeerStatus, RibEvent, SessionEnd, SessionOpens, SessionState,
};
use connection::{
    ConnEvent, ConnId, Delivery, EventSender, Outgoing, ReaderArgs, SendQueue, WriterArgs,
};
use fsm::{Action, Event, Fsm, FsmConfig, Reason, Timer};
use open::{LocalOpen, Negotiated};
use socket::SocketOptions;

/// Everything the session needs to know about one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    pub name: String,
    pub remote: SocketAddr,
    /// The AS the peer's OPEN must say (a number or a kind).
    pub remote_asn: crate::config::PeerAsn,
    pub local: LocalOpen,
    pub passive: bool,
    pub socket: SocketOptions,
    /// Upper bound of the reconnect backoff.
    pub connect_retry: Duration,
    pub next_hop_ipv4: Option<Ipv4Addr>,
    pub next_hop_ipv6: Option<Ipv6Addr>,
    /// RFC 9687 send hold time.
    pub send_hold: Duration,
    /// BGP unnumbered: the interface whose neighbour this session runs
    /// to; `remote`'s address is then a stand-in, the neighbour's
    /// link-local address comes from discovery ([`crate::unnumbered`]).
    pub interface: Option<String>,
}

/// The I/O side of one connection; its FSM state is in [`Fsm`].
struct Conn {
    local_addr: Option<SocketAddr>,
    remote_addr: Option<SocketAddr>,
    /// The OPENs exchanged on this connection, as sent and as received
    /// (BMP Peer Up, RFC 7854 §4.10).
    sent_open: Option<wire::Open>,
    received_open: Option<wire::Open>,
    writer: mpsc::UnboundedSender<Outgoing>,
    /// Bytes handed to the writer and not yet written.
    queued: SendQueue,
    /// Set once the OPENs agree (`Action::UseCodec`).
    codec: SessionCodec,
    delivery: watch::Sender<Option<Delivery>>,
    reader: JoinHandle<()>,
    /// The peer's message counters (`/metrics`).
    counters: Arc<MessageCounters>,
}

impl Conn {
    /// Encode and queue `msgs`; false if the connection's unwritten bytes
    /// are now over [`connection::SEND_QUEUE_LIMIT`].
    fn send(&self, msgs: &[Message]) -> bool {
        let mut out = Vec::new();
        for m in msgs {
            encode_message(m, &self.codec, &mut out);
        }
        self.counters.sent(msgs.len() as u64);
        let total = self.queued.add(out.len());
        let _ = self.writer.send(Outgoing::Bytes(out));
        total <= connection::SEND_QUEUE_LIMIT
    }

    /// Queue an update group's batch, encoded once for every session
    /// with this codec (see [`Conn::send`]), without the UPDATEs at the
    /// indices in `skip` (this peer's own paths).
    fn send_shared(&self, s: &rib::SharedUpdates, skip: &[usize]) -> bool {
        self.counters.sent((s.updates().len() - skip.len()) as u64);
        if skip.is_empty() {
            let bytes = s.encoded(&self.codec);
            let total = self.queued.add(bytes.len());
            let _ = self.writer.send(Outgoing::Shared(bytes));
            return total <= connection::SEND_QUEUE_LIMIT;
        }
        let (bytes, ranges) = s.encoded_without(&self.codec, skip);
        let mut total = 0;
        for r in ranges {
            total = self.queued.add(r.len());
            let _ = self.writer.send(Outgoing::SharedPart(bytes.clone(), r));
        }
        total <= connection::SEND_QUEUE_LIMIT
    }

    fn close(self, nf: Option<Notification>) {
        let mut out = Vec::new();
        if let Some(nf) = nf {
            self.counters.sent_notification();
            encode_message(&Message::Notification(nf), &self.codec, &mut out);
        }
        let _ = self.writer.send(Outgoing::Close(out));
        self.reader.abort();
    }
}

/// The FSM's running timers, as deadlines.
#[derive(Default)]
struct Timers {
    deadlines: HashMap<Timer, tokio::time::Instant>,
}

impl Timers {
    fn start(&mut self, timer: Timer, after: Duration) {
        self.deadlines
            .insert(timer, tokio::time::Instant::now() + after);
    }

    fn stop(&mut self, timer: Timer) {
        self.deadlines.remove(&timer);
    }

    /// A closed connection's timers go with it.
    fn stop_conn(&mut self, id: ConnId) {
        self.deadlines
            .retain(|t, _| !matches!(t, Timer::Hold(c) | Timer::Keepalive(c) if *c == id));
    }

    fn next(&self) -> Option<(Timer, tokio::time::Instant)> {
        self.deadlines
            .iter()
            .min_by_key(|(_, at)| **at)
            .map(|(t, at)| (*t, *at))
    }
}

pub struct PeerTask {
    id: PeerId,
    cfg: SessionConfig,
    rib: mpsc::Sender<RibEvent>,
    status: watch::Sender<PeerStatus>,
    fsm: Fsm,
    conns: HashMap<ConnId, Conn>,
    timers: Timers,
    next_conn: ConnId,
    /// Cloned into each connection's reader and writer.
    conn_events: EventSender,
    /// Where connect attempts report; made at the first attempt, so a
    /// passive peer (every dynamic neighbor) has none: an idle channel is
    /// some 1.5 KiB, a twentieth of a session at a thousand sessions.
    connects: Option<Connects>,
    /// Whether the last connection closed ended in a way a graceful
    /// restart peer may come back from (read at [`Action::SessionDown`],
    /// which follows the Established connection's close).
    last_close_may_restart: bool,
    /// How the last connection closed (BMP Peer Down, RFC 7854 §4.9).
    last_end: SessionEnd,
    /// An interface peer: what discovery says about its link.
    link: Option<watch::Receiver<crate::unnumbered::Link>>,
}

/// RFC 4724 §4.2: the peer's routes are kept when the TCP session ends
/// without a NOTIFICATION (connection lost, peer killed) or the hold timer
/// expires (as FRR and BIRD treat it, and RFC 8538 §4 says). A NOTIFICATION
/// received or sent for anything else ends graceful restart (RFC 8538's
/// N bit is not implemented).
fn close_may_restart(reason: &Reason) -> bool {
    matches!(
        reason,
        Reason::PeerClosed(_) | Reason::HoldTimerExpired | Reason::SendHoldTimerExpired
    )
}

/// Connect attempts' results: one per attempt, and the FSM starts one at
/// a time (the next after the connect-retry timer), so never more than a
/// few queue.
type Connects = (
    mpsc::UnboundedSender<std::io::Result<TcpStream>>,
    mpsc::UnboundedReceiver<std::io::Result<TcpStream>>,
);

/// The next connect attempt's result; never, before the first attempt.
async fn connect_result(c: &mut Option<Connects>) -> Option<std::io::Result<TcpStream>> {
    match c {
        Some((_, rx)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn cease(subcode: u8) -> Notification {
    Notification::new(n::CEASE, subcode, vec![])
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl PeerTask {
    pub fn spawn(
        id: PeerId,
        cfg: SessionConfig,
        rib: mpsc::Sender<RibEvent>,
    ) -> (mpsc::UnboundedSender<PeerCmd>, watch::Receiver<PeerStatus>) {
        // Unbounded so that the router never waits for a peer task; its
        // length is bounded by the pull model (see `PeerCmd`).
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (status, status_rx) = watch::channel(PeerStatus::new());
        let (conn_events, conn_rx) = mpsc::channel(connection::CONN_EVENTS);
        let fsm_cfg = FsmConfig {
            local_router_id: cfg.local.router_id,
            local_asn: cfg.local.asn,
            passive: cfg.passive,
            connect_retry: cfg.connect_retry,
        };
        // The clock's low bits seed the retry jitter (RFC 4271 §10).
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|t| t.as_nanos() as u64)
            .unwrap_or(0);
        let link = (cfg.interface.clone())
            .map(|ifname| crate::unnumbered::spawn(cfg.name.clone(), ifname));
        let task = PeerTask {
            id,
            link,
            cfg,
            rib,
            status,
            fsm: Fsm::new(fsm_cfg, seed),
            conns: HashMap::new(),
            timers: Timers::default(),
            next_conn: 0,
            conn_events,
            connects: None,
            last_close_may_restart: false,
            last_end: SessionEnd::LocalClosed,
        };
        tokio::spawn(task.run(cmd_rx, conn_rx));
        (cmd_tx, status_rx)
    }

    /// Record the state and log the change, once, with its reason. The
    /// Idle/Connect/Active churn of a peer that is down goes to debug so a
    /// dead peer does not fill the log; everything from OpenSent up is info,
    /// and losing an Established session is a warning unless we stopped it.
    fn publish(&self) {
        let counts = self.fsm.refresh_counts();
        let held_down = self.fsm.held_down().map(Reason::to_string);
        self.status.send_if_modified(|s| {
            let changed = (s.refresh_ignored, s.refresh_coalesced, &s.held_down)
                != (counts.ignored, counts.coalesced, &held_down);
            s.refresh_ignored = counts.ignored;
            s.refresh_coalesced = counts.coalesced;
            s.held_down = held_down;
            changed
        });
        let state = self.fsm.state();
        self.status.send_if_modified(|s| {
            if s.state == state {
                return false;
            }
            let from = s.state;
            let reason = if state < from {
                s.last_error.as_deref().unwrap_or("")
            } else {
                ""
            };
            let name = &self.cfg.name;
            if from == SessionState::Established && state != SessionState::Idle {
                warn!(peer = %name, ?from, to = ?state, reason, "session down");
            } else if state == SessionState::Established {
                // session_up() logs the negotiated parameters.
            } else if from.max(state) >= SessionState::OpenSent {
                info!(peer = %name, ?from, to = ?state, reason, "session state");
            } else {
                debug!(peer = %name, ?from, to = ?state, reason, "session state");
            }
            s.state = state;
            s.last_change = SystemTime::now();
            true
        });
    }

    async fn run(
        mut self,
        mut cmds: mpsc::UnboundedReceiver<PeerCmd>,
        mut conn_events: mpsc::Receiver<(ConnId, ConnEvent)>,
    ) {
        // An interface peer starts once its neighbour is known.
        if self.link.is_none() {
            self.feed(Event::ManualStart).await;
        }
        loop {
            let link = self.link.clone();
            let link_changed = async {
                match link {
                    Some(mut rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            let next_timer = self.timers.next();
            let timer = async {
                match next_timer {
                    Some((t, at)) => {
                        tokio::time::sleep_until(at).await;
                        t
                    }
                    None => std::future::pending().await,
                }
            };
            // Biased: what a connection saw is handled before a timer that
            // expired meanwhile (a KEEPALIVE in the queue restarts the hold
            // timer rather than losing the race to it).
            tokio::select! {
                biased;
                Some((id, ev)) = conn_events.recv() => match ev {
                    // Not the FSM's business: the router's.
                    ConnEvent::Room => self.ask_for_updates(id).await,
                    ev => {
                        if let (ConnEvent::Open(o), Some(c)) = (&ev, self.conns.get_mut(&id)) {
                            c.received_open = Some(o.clone());
                        }
                        let ev = self.event_of(id, ev);
                        self.feed(ev).await;
                    }
                },
                t = timer => {
                    self.timers.stop(t);
                    self.feed(match t {
                        Timer::ConnectRetry => Event::ConnectRetryExpired,
                        Timer::Hold(id) => Event::HoldTimerExpired(id),
                        Timer::Keepalive(id) => Event::KeepaliveTimerExpired(id),
                        Timer::Restart => Event::RestartTimerExpired,
                    }).await;
                }
                Some(res) = connect_result(&mut self.connects) => {
                    let ev = match res {
                        Ok(stream) => Event::TcpConnected(self.add_conn(stream)),
                        Err(e) => Event::TcpConnectFailed(format!("connect to {}: {e}", self.cfg.remote)),
                    };
                    self.feed(ev).await;
                }
                true = link_changed => {
                    let now = self.link.as_mut().map(|rx| *rx.borrow_and_update());
                    if let Some(now) = now {
                        self.follow_link(now).await;
                    }
                }
                cmd = cmds.recv() => match cmd {
                    None => {
                        self.feed(Event::ManualStop(cease(n::cease::ADMINISTRATIVE_SHUTDOWN))).await;
                        return;
                    }
                    Some(PeerCmd::Stop(nf)) => {
                        self.feed(Event::ManualStop(nf)).await;
                        return;
                    }
                    // The connections close as they are dropped: TCP FIN,
                    // no NOTIFICATION, nothing told to the RIB.
                    Some(PeerCmd::ExitForRestart) => return,
                    Some(PeerCmd::Incoming(stream)) => {
                        self.neighbour_connected(&stream).await;
                        if let Err(e) = socket::configure_accepted(&stream, &self.cfg.socket) {
                            warn!(peer = %self.cfg.name, "setting socket options on accepted connection: {e}");
                        }
                        let id = self.add_conn(stream);
                        self.feed(Event::TcpAccepted(id)).await;
                    }
                    Some(PeerCmd::Send { generation, shared, skip, updates }) => self.send_updates(generation, shared, &skip, updates).await,
                    Some(PeerCmd::RefreshAnswered { generation, family }) => {
                        if let Some(c) = self.established_conn(generation) {
                            let _ = c.writer.send(Outgoing::RefreshDone(family));
                        }
                    }
                    Some(PeerCmd::PrefixLimitExceeded { family, limit, restart_after }) => {
                        self.feed(Event::PrefixLimitExceeded { family, limit, restart_after }).await;
                    }
                    Some(PeerCmd::Reset) => self.feed(Event::Reset).await,
                },
            }
        }
    }

    /// An interface peer's link or neighbour changed: a session to another
    /// address (or over a link that is gone) ends, one to a newly known
    /// neighbour starts.
    async fn follow_link(&mut self, link: crate::unnumbered::Link) {
        let port = self.cfg.remote.port();
        let remote = match (link.up, link.remote(port)) {
            (_, Some(r)) => Some(SocketAddr::V6(r)),
            // Up, nothing heard yet: a neighbour learned from its
            // connection on this same link stays.
            (Some(ifindex), None) => match self.cfg.remote {
                SocketAddr::V6(r) if r.scope_id() == ifindex && !r.ip().is_unspecified() => {
                    Some(self.cfg.remote)
                }
                _ => None,
            },
            (None, None) => None,
        };
        let neighbour = remote.map(|r| r.ip());
        self.status.send_modify(|s| s.neighbour = neighbour);
        if remote == Some(self.cfg.remote) {
            return;
        }
        if self.cfg.remote.ip().is_unspecified() {
            // Not started yet: nothing to close.
        } else {
            self.feed(Event::LinkDown).await;
        }
        match remote {
            Some(r) => {
                self.cfg.remote = r;
                self.feed(Event::ManualStart).await;
            }
            None => self.cfg.remote = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        }
    }

    /// A connection accepted for an interface peer names its neighbour
    /// (a neighbour that sends no RAs is found this way), and starts the
    /// session if it was waiting for one.
    async fn neighbour_connected(&mut self, stream: &TcpStream) {
        let (Some(link), Ok(SocketAddr::V6(from))) = (&self.link, stream.peer_addr()) else {
            return;
        };
        let up = link.borrow().up;
        if up.is_none() || self.cfg.remote.ip() == IpAddr::V6(*from.ip()) {
            return;
        }
        let learned = crate::unnumbered::Link {
            up,
            neighbour: Some(*from.ip()),
        };
        info!(peer = %self.cfg.name, neighbour = %from.ip(), "neighbour learned from its connection");
        self.follow_link(learned).await;
    }

    /// What a connection's reader saw, as an FSM event.
    fn event_of(&self, id: ConnId, ev: ConnEvent) -> Event {
        match ev {
            ConnEvent::Open(o) => {
                let negotiated = open::negotiate(&self.cfg.local, self.cfg.remote_asn, &o);
                if let Err(nf) = &negotiated {
                    if (nf.code, nf.subcode) == (n::OPEN_MESSAGE_ERROR, n::open::BAD_PEER_AS) {
                        warn!(
                            peer = %self.cfg.name,
                            remote_as = o.asn,
                            "OPEN refused (NOTIFICATION 2/2 Bad Peer AS): the peer says AS {}, expected {}",
                            o.asn,
                            self.cfg.remote_asn.expected(self.cfg.local.asn)
                        );
                    }
                }
                Event::OpenReceived(id, negotiated)
            }
            ConnEvent::Keepalive => Event::KeepaliveReceived(id),
            ConnEvent::Update => Event::UpdateReceived(id),
            ConnEvent::Notification(nf) => Event::NotificationReceived(id, nf),
            ConnEvent::RouteRefresh(family) => Event::RouteRefreshReceived(id, family),
            ConnEvent::Malformed(nf, why) => Event::DecodeError(id, nf, why),
            ConnEvent::Closed(why) => Event::TcpClosed(id, why),
            ConnEvent::SendHoldExpired => Event::SendHoldTimerExpired(id),
            ConnEvent::RefreshWritten(family) => Event::RouteRefreshWritten(id, family),
            ConnEvent::Room => unreachable!("handled in run"),
        }
    }

    async fn feed(&mut self, ev: Event) {
        for action in self.fsm.handle(ev) {
            self.execute(action).await;
        }
        self.publish();
    }

    async fn execute(&mut self, action: Action) {
        match action {
            Action::Connect => {
                let remote = self.cfg.remote;
                let tx = self.connects.get_or_insert_with(mpsc::unbounded_channel);
                let tx = tx.0.clone();
                if remote.ip().is_unspecified() {
                    let why = "the neighbour's link-local address is not known yet".to_string();
                    let _ = tx.send(Err(std::io::Error::other(why)));
                    return;
                }
                let opts = self.cfg.socket.clone();
                tokio::spawn(async move {
                    let _ = tx.send(socket::connect(remote, &opts, CONNECT_TIMEOUT).await);
                });
            }
            Action::SendOpen(id) => {
                if let Some(c) = self.conns.get_mut(&id) {
                    let o = open::local_open(&self.cfg.local, Instant::now());
                    c.send(&[Message::Open(o.clone())]);
                    c.sent_open = Some(o);
                }
            }
            Action::SendKeepalive(id) => {
                if let Some(c) = self.conns.get(&id) {
                    c.send(&[Message::Keepalive]);
                }
            }
            Action::UseCodec(id, codec) => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.codec = codec;
                }
            }
            Action::Close {
                conn,
                notify,
                reason,
            } => {
                self.timers.stop_conn(conn);
                self.last_close_may_restart = close_may_restart(&reason);
                if let Some(end) = session_end(&reason, notify.as_ref()) {
                    self.last_end = end;
                }
                let mut why = reason.to_string();
                if let Some(nf) = &notify {
                    why.push_str(&format!("; sent NOTIFICATION: {}", fsm::describe(nf)));
                }
                if let Some(c) = self.conns.remove(&conn) {
                    c.close(notify);
                }
                match reason {
                    // Not an error of the session, which carries on.
                    Reason::CollisionWithEstablished => {
                        info!(peer = %self.cfg.name, "{why}")
                    }
                    Reason::Collision { .. } | Reason::Replaced => {
                        info!(peer = %self.cfg.name, "{why}");
                        self.note_error(why);
                    }
                    _ => self.note_error(why),
                }
            }
            Action::StartTimer(timer, after) => self.timers.start(timer, after),
            Action::StopTimer(timer) => self.timers.stop(timer),
            Action::SessionUp {
                conn,
                generation,
                negotiated,
            } => self.session_up(conn, generation, negotiated).await,
            Action::SessionDown { generation } => {
                self.status.send_modify(|s| {
                    s.established_at = None;
                    s.flaps += 1;
                });
                let _ = self
                    .rib
                    .send(RibEvent::SessionDown {
                        peer: self.id,
                        generation,
                        may_restart: self.last_close_may_restart,
                        end: self.last_end.clone(),
                    })
                    .await;
            }
            Action::RouteRefresh { generation, family } => {
                let ev = RibEvent::RouteRefresh {
                    peer: self.id,
                    generation,
                    family,
                };
                let _ = self.rib.send(ev).await;
            }
            Action::Failed(reason) => self.note_error(reason.to_string()),
        }
    }

    /// The connection of the Established session of `generation`.
    fn established_conn(&self, generation: u64) -> Option<&Conn> {
        let (id, current) = self.fsm.established()?;
        (current == generation)
            .then(|| self.conns.get(&id))
            .flatten()
    }

    async fn send_updates(
        &mut self,
        generation: u64,
        shared: Option<Arc<rib::SharedUpdates>>,
        skip: &[usize],
        updates: Vec<Update>,
    ) {
        let Some(c) = self.established_conn(generation) else {
            return;
        };
        let (id, _) = self.fsm.established().expect("established_conn found it");
        if let Some(s) = shared {
            if !c.send_shared(&s, skip) {
                self.feed(Event::SendQueueFull(id)).await;
                return;
            }
        }
        let msgs: Vec<Message> = updates.into_iter().map(Message::Update).collect();
        if !msgs.is_empty() && !c.send(&msgs) {
            self.feed(Event::SendQueueFull(id)).await;
            return;
        }
        if c.queued.arm() {
            self.ask_for_updates(id).await;
        }
    }

    /// Connection `id`'s writer has room: if it carries the Established
    /// session, the router may send its next batch.
    async fn ask_for_updates(&mut self, id: ConnId) {
        let Some((conn, generation)) = self.fsm.established() else {
            return;
        };
        if conn == id {
            let ev = RibEvent::SendReady {
                peer: self.id,
                generation,
            };
            let _ = self.rib.send(ev).await;
        }
    }

    fn note_error(&self, e: String) {
        self.status.send_modify(|s| s.last_error = Some(e));
    }

    /// Start a connection's reader and writer; the FSM decides what it
    /// sends.
    fn add_conn(&mut self, stream: TcpStream) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        let local_addr = stream.local_addr().ok();
        let remote_addr = stream.peer_addr().ok();
        let (rd, wr) = stream.into_split();
        // Unbounded (this task must not wait for its writer, which waits
        // for it) but holding one batch of UPDATEs at a time: see
        // `connection`'s module documentation.
        let (w_tx, w_rx) = mpsc::unbounded_channel();
        let (delivery, delivery_rx) = watch::channel(None);
        let queued = SendQueue::default();
        let writer_args = WriterArgs {
            conn: id,
            events: self.conn_events.clone(),
            send_hold: self.cfg.send_hold,
            queued: queued.clone(),
        };
        tokio::spawn(connection::run_writer(wr, w_rx, writer_args));
        let reader = tokio::spawn(connection::run_reader(
            rd,
            ReaderArgs {
                conn: id,
                events: self.conn_events.clone(),
                rib: self.rib.clone(),
                delivery: delivery_rx,
                counters: self.status.borrow().messages.clone(),
            },
        ));
        let conn = Conn {
            local_addr,
            remote_addr,
            sent_open: None,
            received_open: None,
            writer: w_tx,
            queued,
            codec: SessionCodec::default(),
            delivery,
            reader,
            counters: self.status.borrow().messages.clone(),
        };
        self.conns.insert(id, conn);
        id
    }

    /// Tell the RIB, then let the connection's reader deliver UPDATEs: in
    /// that order, so the RIB knows the session before its first route.
    async fn session_up(&mut self, id: ConnId, generation: u64, neg: Negotiated) {
        let local_ip = self
            .conns
            .get(&id)
            .and_then(|c| c.local_addr)
            .map(|a| socket::unmap(a.ip()));
        let info = session_info(&self.cfg, &neg, local_ip);
        info!(
            peer = %self.cfg.name,
            remote_id = %neg.remote_router_id,
            hold = neg.hold_time,
            families = ?neg.families,
            "session established"
        );
        self.status.send_modify(|s| {
            s.established_at = Some(Instant::now());
            s.remote_router_id = Some(neg.remote_router_id);
            s.remote_asn = Some(neg.remote_asn);
            s.hold_time = Some(neg.hold_time);
            s.families = neg.families.clone();
            s.local_address = local_ip;
            s.last_error = None;
            s.graceful_restart = neg.peer_graceful_restart.clone();
            s.extended_next_hop = neg.extended_next_hop_v4;
        });
        let opens = self.conns.get(&id).and_then(|c| {
            Some(Box::new(SessionOpens {
                local: c.local_addr?,
                remote: c.remote_addr?,
                sent: c.sent_open.clone()?,
                received: c.received_open.clone()?,
            }))
        });
        let _ = self
            .rib
            .send(RibEvent::SessionUp {
                peer: self.id,
                generation,
                info,
                remote_asn: neg.remote_asn,
                graceful_restart: neg.peer_graceful_restart,
                opens,
            })
            .await;
        if let Some(c) = self.conns.get(&id) {
            let _ = c.delivery.send(Some(Delivery {
                peer: self.id,
                generation,
            }));
        }
    }
}

/// How a connection's close ends its session, for BMP Peer Down (RFC 7854
/// §4.9); `None` for the closes of a connection that lost a collision,
/// which leave the session as it was.
fn session_end(reason: &Reason, sent: Option<&Notification>) -> Option<SessionEnd> {
    Some(match (reason, sent) {
        (Reason::Collision { .. } | Reason::CollisionWithEstablished | Reason::Replaced, _) => {
            return None
        }
        (_, Some(nf)) => SessionEnd::SentNotification(nf.clone()),
        (Reason::NotificationReceived(nf), None) => SessionEnd::ReceivedNotification(nf.clone()),
        (Reason::PeerClosed(_), None) => SessionEnd::RemoteClosed,
        (_, None) => SessionEnd::LocalClosed,
    })
}

/// What the RIB learns about an established session: the negotiated
/// families and RFC 8950, and our next hops towards the peer.
fn session_info(
    cfg: &SessionConfig,
    neg: &Negotiated,
    local_ip: Option<IpAddr>,
) -> rib::SessionInfo {
    // RFC 8950 over an IPv6 session: IPv4 routes go with our IPv6 next hop
    // unless `nextHopIpv4` says otherwise (an IPv4 address that happens to
    // be on the interface is not what the peer asked for).
    let v4_over_v6 = neg.extended_next_hop_v4 && local_ip.is_some_and(|ip| ip.is_ipv6());
    let local_next_hop_v4 = cfg.next_hop_ipv4.or_else(|| {
        (!v4_over_v6)
            .then_some(local_ip)
            .flatten()
            .and_then(crate::ifaddrs::sibling_v4)
    });
    // BGP unnumbered on a link without a global address: our link-local
    // address is the next hop (sent as both the global and the link-local
    // one, as FRR does; RFC 2545 §3 needs no global address on the link).
    let own_link_local = match local_ip {
        Some(IpAddr::V6(v6)) if cfg.interface.is_some() => Some(v6),
        _ => None,
    };
    let local_next_hop_v6 = cfg
        .next_hop_ipv6
        .or_else(|| local_ip.and_then(crate::ifaddrs::sibling_v6))
        .or(own_link_local);
    let link =
        local_ip.and_then(|ip| crate::ifaddrs::shared_link(ip, socket::unmap(cfg.remote.ip())));
    // Our link-local next hop only beside our own derived global one.
    let local_link_local = match cfg.next_hop_ipv6 {
        None => link.as_ref().and_then(|l| l.link_local),
        Some(_) => None,
    };
    rib::SessionInfo {
        remote_router_id: neg.remote_router_id,
        families: neg.families.clone(),
        local_next_hop_v4,
        local_next_hop_v6,
        extended_next_hop_v4: neg.extended_next_hop_v4,
        local_link_local,
        interface: link.map(|l| l.ifindex),
    }
}

#[cfg(test)]
mod graceful_restart_tests {
    use super::*;

    #[test]
    fn lost_connections_and_hold_timer_may_restart_notifications_do_not() {
        assert!(close_may_restart(&Reason::PeerClosed("reset".into())));
        assert!(close_may_restart(&Reason::HoldTimerExpired));
        assert!(!close_may_restart(&Reason::NotificationReceived(cease(2))));
        assert!(!close_may_restart(&Reason::Stopped(cease(2))));
        assert!(!close_may_restart(&Reason::Reset));
        assert!(!close_may_restart(&Reason::DecodeError("bad".into())));
    }
}
