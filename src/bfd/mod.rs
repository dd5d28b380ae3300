//! BFD (RFC 5880), asynchronous mode, single hop (RFC 5881): one session
//! per peer with `bfd` configured, telling the router task when the peer's
//! forwarding path stops answering so that its BGP session (and routes)
//! go at once instead of after the hold time.
//!
//! ```text
//! router task ──BfdCmd::{Configure, Show}──▶ manager ──spawn/stop──▶ session tasks
//! receivers (UDP 3784, v4 + v6) ──ControlPacket (by discriminator / source)──▶ session tasks
//! session tasks ──RibEvent::Bfd──▶ router task
//! ```
//!
//! The state machine is [`fsm`] (pure); the codec [`packet`]. Peers more
//! than one hop away (`multihop` or `ttlSecurity: {hops}` above 1) get a
//! multihop session (RFC 5883: port 4784, TTL checked against the hops).

pub mod fsm;
pub mod packet;
mod socket;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{sleep_until, Instant};
use tracing::{debug, info, warn};

use crate::api::views::BfdSessionView;
use crate::events::RibEvent;
use fsm::{Action, Session, Timers};
use packet::{ControlPacket, State};

/// One session the router task wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdPeer {
    /// The BGP peer's name (for logs and `show bfd`).
    pub name: String,
    pub address: IpAddr,
    /// Our source address (the peer's `localAddress`), if configured.
    pub local_address: Option<IpAddr>,
    /// Multihop (RFC 5883): the most router hops to the peer. None: a
    /// single hop (RFC 5881).
    pub multihop: Option<u8>,
    pub timers: Timers,
}

/// What the router task asks the BFD task.
pub enum BfdCmd {
    /// Run exactly these sessions (start and reload): new ones start,
    /// removed or changed ones stop (AdminDown).
    Configure(Vec<BfdPeer>),
    /// `show bfd`.
    Show(oneshot::Sender<Vec<BfdSessionView>>),
}

/// The router task's end of the BFD task.
#[derive(Clone)]
pub struct BfdHandle {
    cmd: mpsc::UnboundedSender<BfdCmd>,
}

impl BfdHandle {
    pub fn configure(&self, peers: Vec<BfdPeer>) {
        let _ = self.cmd.send(BfdCmd::Configure(peers));
    }

    pub fn show(&self, reply: oneshot::Sender<Vec<BfdSessionView>>) {
        let _ = self.cmd.send(BfdCmd::Show(reply));
    }
}

/// Start the BFD task; its state changes go to `events`.
pub fn spawn(events: mpsc::Sender<RibEvent>) -> BfdHandle {
    let (cmd, rx) = mpsc::unbounded_channel();
    // The router's queue is bounded and fills under a full table; a
    // session waiting on it would miss its transmit times and the peer
    // would declare us down. Sessions hand their changes to this queue
    // instead, which one task forwards in order.
    let (changes, mut changes_rx) = mpsc::unbounded_channel::<RibEvent>();
    tokio::spawn(async move {
        while let Some(ev) = changes_rx.recv().await {
            if events.send(ev).await.is_err() {
                return;
            }
        }
    });
    let manager = Manager {
        events: changes,
        demux: Arc::new(Mutex::new(Demux::default())),
        sessions: HashMap::new(),
        receivers_bound: false,
        next_discr: seed() | 1,
    };
    // The sessions run on a thread of their own: a router task or FIB
    // busy with a full table's withdrawal must not delay a transmit or a
    // receive past the detection time of another peer's session (100 ms x
    // 3 has to hold on a 2-core node while 120k routes move). FRR runs
    // bfdd as a process of its own for the same reason.
    std::thread::Builder::new()
        .name("kroute-bfd".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the BFD thread's runtime");
            rt.block_on(manager.run(rx));
        })
        .expect("start the BFD thread");
    BfdHandle { cmd }
}

fn seed() -> u32 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|t| t.subsec_nanos() ^ (t.as_secs() as u32).rotate_left(16))
        .unwrap_or(0x5eed)
}

/// Packets queued per session before the receiver drops them.
const SESSION_QUEUE: usize = 64;

/// A session as the receivers see it.
#[derive(Clone)]
struct Route {
    peer: IpAddr,
    multihop: Option<u8>,
    tx: mpsc::Sender<ControlPacket>,
}

/// Where a received packet goes (RFC 5880 §6.8.6: by Your Discriminator
/// when nonzero, else by the source address, RFC 5881 §3 / RFC 5883 §3).
#[derive(Default)]
struct Demux {
    by_discr: HashMap<u32, Route>,
    by_address: HashMap<IpAddr, Route>,
}

impl Demux {
    /// The session a packet from `from` belongs to, if it may: from the
    /// session's peer, on the port of its kind, with TTL 255 on a single
    /// hop (RFC 5881 §5: nobody further away can forge it) and at least
    /// 256 - hops on a multihop session (the peer sends 255; RFC 5883 §5
    /// leaves the check to us: as GTSM).
    fn route(
        &self,
        from: IpAddr,
        multihop_port: bool,
        ttl: Option<u8>,
        p: &ControlPacket,
    ) -> Option<&mpsc::Sender<ControlPacket>> {
        let r = if p.your_discr != 0 {
            self.by_discr.get(&p.your_discr)?
        } else {
            self.by_address.get(&from)?
        };
        let ttl = u16::from(ttl?);
        let ok = r.peer == from
            && match r.multihop {
                None => !multihop_port && ttl == u16::from(socket::TTL),
                Some(hops) => multihop_port && ttl >= 256 - u16::from(hops),
            };
        ok.then_some(&r.tx)
    }
}

struct Running {
    peer: BfdPeer,
    discr: u32,
    stop: oneshot::Sender<()>,
    view: watch::Receiver<BfdSessionView>,
}

struct Manager {
    events: mpsc::UnboundedSender<RibEvent>,
    demux: Arc<Mutex<Demux>>,
    sessions: HashMap<IpAddr, Running>,
    receivers_bound: bool,
    next_discr: u32,
}

impl Manager {
    async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<BfdCmd>) {
        while let Some(cmd) = cmds.recv().await {
            match cmd {
                BfdCmd::Configure(peers) => self.configure(peers),
                BfdCmd::Show(reply) => {
                    let mut v: Vec<BfdSessionView> = self
                        .sessions
                        .values()
                        .map(|r| r.view.borrow().clone())
                        .collect();
                    v.sort_by(|a, b| a.peer.cmp(&b.peer));
                    let _ = reply.send(v);
                }
            }
        }
        for (_, r) in self.sessions.drain() {
            let _ = r.stop.send(());
        }
    }

    fn configure(&mut self, peers: Vec<BfdPeer>) {
        let gone: Vec<IpAddr> = self
            .sessions
            .iter()
            .filter(|(_, r)| !peers.contains(&r.peer))
            .map(|(a, _)| *a)
            .collect();
        for address in gone {
            let r = self.sessions.remove(&address).expect("listed above");
            let mut d = self.demux.lock().unwrap();
            d.by_discr.remove(&r.discr);
            d.by_address.remove(&address);
            drop(d);
            info!(peer = %r.peer.name, %address, "BFD session removed");
            let _ = r.stop.send(());
        }
        if !peers.is_empty() && !self.receivers_bound {
            self.bind_receivers();
        }
        for p in peers {
            if !self.sessions.contains_key(&p.address) {
                self.start(p);
            }
        }
    }

    /// Bind ports 3784 and 4784 for both families, once, when the first
    /// session is configured.
    fn bind_receivers(&mut self) {
        self.receivers_bound = true;
        for port in [socket::CONTROL_PORT, socket::MULTIHOP_PORT] {
            for ipv6 in [false, true] {
                match socket::bind_receiver(ipv6, port) {
                    Ok(sock) => {
                        let multihop = port == socket::MULTIHOP_PORT;
                        tokio::spawn(receive(sock, multihop, self.demux.clone()));
                    }
                    Err(e) => warn!(
                        "BFD: cannot bind UDP port {port} ({}): {e}",
                        if ipv6 { "IPv6" } else { "IPv4" }
                    ),
                }
            }
        }
    }

    fn allocate_discr(&mut self) -> u32 {
        let d = self.demux.lock().unwrap();
        loop {
            let candidate = self.next_discr;
            self.next_discr = self.next_discr.wrapping_add(1);
            if candidate != 0 && !d.by_discr.contains_key(&candidate) {
                return candidate;
            }
        }
    }

    fn start(&mut self, peer: BfdPeer) {
        let discr = self.allocate_discr();
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        {
            let mut d = self.demux.lock().unwrap();
            let route = Route {
                peer: peer.address,
                multihop: peer.multihop,
                tx,
            };
            d.by_discr.insert(discr, route.clone());
            d.by_address.insert(peer.address, route);
        }
        let session = Session::new(discr, peer.timers);
        let (view_tx, view) = watch::channel(view_of(&peer, &session, &Counters::default()));
        let (stop, stop_rx) = oneshot::channel();
        info!(peer = %peer.name, address = %peer.address, discriminator = discr, "BFD session started");
        tokio::spawn(
            SessionTask {
                peer: peer.clone(),
                session,
                counters: Counters::default(),
                view: view_tx,
                events: self.events.clone(),
                rng: seed() ^ discr,
            }
            .run(rx, stop_rx),
        );
        self.sessions.insert(
            peer.address,
            Running {
                peer,
                discr,
                stop,
                view,
            },
        );
    }
}

/// One receiving socket (multihop: port 4784): decode, check, hand to
/// the session.
async fn receive(sock: UdpSocket, multihop: bool, demux: Arc<Mutex<Demux>>) {
    let mut buf = [0u8; 512];
    loop {
        let r = match socket::recv(&sock, &mut buf).await {
            Ok(r) => r,
            Err(e) => {
                warn!("BFD receive: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let p = match ControlPacket::decode(&buf[..r.len]) {
            Ok(p) => p,
            Err(e) => {
                debug!(from = %r.from, "BFD packet dropped: {e}");
                continue;
            }
        };
        let tx = demux
            .lock()
            .unwrap()
            .route(r.from.ip(), multihop, r.ttl, &p)
            .cloned();
        match tx {
            Some(tx) => {
                let _ = tx.try_send(p);
            }
            None => {
                debug!(from = %r.from, ttl = ?r.ttl, your_discr = p.your_discr, "BFD packet for no session (or with a bad TTL) dropped")
            }
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    packets_in: u64,
    packets_out: u64,
    state_changes: u64,
    /// The longest a periodic packet went out after its time: a node too
    /// busy for its BFD timers shows here before a peer declares it down.
    tx_late_max: Duration,
    /// The longest the peer was silent after a packet that left the
    /// session Up (up to its next packet; the silence that took the
    /// session down counts once the peer is heard again).
    rx_gap_max: Duration,
    last_tx: Option<Instant>,
    /// When the last packet that left the session Up arrived.
    last_rx_up: Option<Instant>,
    /// `last_rx_up` before the latest packet: for the log of a Down the
    /// peer signaled (that packet cleared `last_rx_up`).
    prev_rx_up: Option<Instant>,
}

impl Counters {
    fn received(&mut self, now: Instant, up_after: bool) {
        self.packets_in += 1;
        if let Some(t) = self.last_rx_up {
            self.rx_gap_max = self.rx_gap_max.max(now.saturating_duration_since(t));
        }
        self.prev_rx_up = self.last_rx_up;
        self.last_rx_up = up_after.then_some(now);
    }

    /// Milliseconds since `t`, for the log ("-" when never).
    fn ago(t: Option<Instant>) -> String {
        t.map_or("-".into(), |t| format!("{}", t.elapsed().as_millis()))
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros() as u64
}

fn view_of(peer: &BfdPeer, s: &Session, c: &Counters) -> BfdSessionView {
    BfdSessionView {
        peer: peer.name.clone(),
        address: peer.address,
        local_address: peer.local_address,
        state: s.state,
        remote_state: s.remote_state,
        diagnostic: packet::diag::name(s.local_diag).to_string(),
        local_discriminator: s.local_discr,
        remote_discriminator: s.remote_discr,
        detect_multiplier: s.timers().multiplier,
        desired_min_tx_us: micros(s.desired_min_tx()),
        required_min_rx_us: micros(s.required_min_rx()),
        remote_min_rx_us: micros(s.remote_min_rx()),
        tx_interval_us: micros(s.tx_interval()),
        detect_time_us: s.detection_time().map(micros),
        packets_in: c.packets_in,
        packets_out: c.packets_out,
        state_changes: c.state_changes,
        tx_late_max_us: micros(c.tx_late_max),
        rx_gap_max_us: micros(c.rx_gap_max),
    }
}

/// Whether a state change means the path to the peer failed, so that its
/// BGP session must close (RFC 5882 §4.3): Up to Down, unless the remote
/// said AdminDown (RFC 5882 §3.2: an administrative shutdown of BFD is
/// not a failure of the path).
fn closes_bgp(from: State, to: State, remote_state: State) -> bool {
    from == State::Up && to == State::Down && remote_state != State::AdminDown
}

struct SessionTask {
    peer: BfdPeer,
    session: Session,
    counters: Counters,
    view: watch::Sender<BfdSessionView>,
    events: mpsc::UnboundedSender<RibEvent>,
    rng: u32,
}

/// How long to wait before trying again to open a session's socket (its
/// local address may not be there yet).
const BIND_RETRY: Duration = Duration::from_secs(2);

impl SessionTask {
    fn random(&mut self) -> u32 {
        // xorshift32: jitter needs no more.
        let mut x = self.rng.max(1);
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x
    }

    async fn run(
        mut self,
        mut packets: mpsc::Receiver<ControlPacket>,
        mut stop: oneshot::Receiver<()>,
    ) {
        let sock = loop {
            let seed = self.random();
            match socket::bind_sender(self.peer.address, self.peer.local_address, seed) {
                Ok(s) => break s,
                Err(e) => {
                    warn!(peer = %self.peer.name, "BFD: cannot open the session's socket: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(BIND_RETRY) => {}
                        _ = &mut stop => return,
                    }
                }
            }
        };
        let port = match self.peer.multihop {
            None => socket::CONTROL_PORT,
            Some(_) => socket::MULTIHOP_PORT,
        };
        let dest = SocketAddr::new(self.peer.address, port);
        let mut next_tx = Instant::now();
        let mut detect: Option<Instant> = None;
        loop {
            let actions = tokio::select! {
                // Removed (stop sent), or about to be: the manager drops
                // this session's packet sender before it sends stop, and
                // select! may see either first. Both end in AdminDown
                // (RFC 5880 §6.8.16), so the peer does not declare a
                // failure.
                _ = &mut stop => {
                    self.stop_admin_down(&sock, dest).await;
                    return;
                }
                p = packets.recv() => match p {
                    Some(p) => {
                        let actions = self.session.receive(&p);
                        let up = self.session.state == State::Up;
                        self.counters.received(Instant::now(), up);
                        actions
                    }
                    None => {
                        self.stop_admin_down(&sock, dest).await;
                        return;
                    }
                },
                _ = sleep_until(next_tx) => {
                    let late = Instant::now().saturating_duration_since(next_tx);
                    self.counters.tx_late_max = self.counters.tx_late_max.max(late);
                    if self.session.may_transmit() {
                        self.send(&sock, dest, false).await;
                    }
                    let r = self.random();
                    next_tx = Instant::now() + self.session.next_tx_delay(r);
                    Vec::new()
                }
                _ = sleep_until(detect.unwrap_or_else(Instant::now)), if detect.is_some() => {
                    detect = None;
                    self.session.detection_time_expired()
                }
            };
            for a in actions {
                match a {
                    Action::ArmDetect(d) => detect = Some(Instant::now() + d),
                    Action::SendNow { final_ } => {
                        self.send(&sock, dest, final_).await;
                        // The periodic packet counts from this one, at the
                        // interval as it is now: going Up cuts it from the
                        // slow 1 s to the configured one (RFC 5880 §6.8.3),
                        // and a remote that went Up with a 300 ms detection
                        // time must not wait out the old slow schedule.
                        let r = self.random();
                        next_tx = Instant::now() + self.session.next_tx_delay(r);
                    }
                    Action::StateChanged { from, to, diag } => {
                        self.counters.state_changes += 1;
                        self.state_changed(from, to, diag);
                    }
                }
            }
            self.view
                .send_replace(view_of(&self.peer, &self.session, &self.counters));
        }
    }

    /// The last packet of a removed session: AdminDown.
    async fn stop_admin_down(&mut self, sock: &UdpSocket, dest: SocketAddr) {
        let _ = self.session.admin_down();
        self.send(sock, dest, false).await;
    }

    async fn send(&mut self, sock: &UdpSocket, dest: SocketAddr, final_: bool) {
        let bytes = self.session.packet(final_).encode();
        match sock.send_to(&bytes, dest).await {
            Ok(_) => {
                self.counters.packets_out += 1;
                self.counters.last_tx = Some(Instant::now());
            }
            Err(e) => debug!(peer = %self.peer.name, "BFD send: {e}"),
        }
    }

    fn state_changed(&mut self, from: State, to: State, diag: u8) {
        let why = packet::diag::name(diag);
        if to == State::Up {
            info!(peer = %self.peer.name, address = %self.peer.address, "BFD session Up");
        } else {
            // Whose silence it was: ours (our packets late, or none sent
            // for longer than the peer's detection time) or the peer's.
            let c = &self.counters;
            warn!(
                peer = %self.peer.name,
                address = %self.peer.address,
                %from,
                %to,
                last_sent_ms_ago = %Counters::ago(c.last_tx),
                last_heard_up_ms_ago = %Counters::ago(c.last_rx_up.or(c.prev_rx_up)),
                tx_late_max_ms = c.tx_late_max.as_millis() as u64,
                "BFD session {to}: {why}"
            );
        }
        let _ = self.events.send(RibEvent::Bfd {
            address: self.peer.address,
            state: to,
            teardown: closes_bgp(from, to, self.session.remote_state),
            control_plane_independent: self.session.remote_control_plane_independent,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(your_discr: u32) -> ControlPacket {
        let mut p = Session::new(7, Timers::default()).packet(false);
        p.your_discr = your_discr;
        p
    }

    #[test]
    fn only_a_failure_while_up_closes_bgp() {
        use State::*;
        assert!(closes_bgp(Up, Down, Down), "remote said Down");
        assert!(closes_bgp(Up, Down, Up), "detection time expired");
        assert!(!closes_bgp(Up, Down, AdminDown), "RFC 5882 §3.2");
        assert!(!closes_bgp(Init, Down, Down), "never was Up");
        assert!(!closes_bgp(Up, AdminDown, Up), "our own removal");
        assert!(!closes_bgp(Down, Up, Init));
    }

    fn route(peer: IpAddr, multihop: Option<u8>) -> (Demux, mpsc::Receiver<ControlPacket>) {
        let (tx, rx) = mpsc::channel(1);
        let mut d = Demux::default();
        let r = Route { peer, multihop, tx };
        d.by_discr.insert(42, r.clone());
        d.by_address.insert(peer, r);
        (d, rx)
    }

    #[test]
    fn demux_by_discriminator_needs_the_right_source() {
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.9".parse().unwrap();
        let (d, mut rx) = route(peer, None);
        let ttl = Some(255);
        d.route(peer, false, ttl, &packet(42))
            .unwrap()
            .try_send(packet(42))
            .unwrap();
        assert!(rx.try_recv().is_ok());
        assert!(d.route(other, false, ttl, &packet(42)).is_none());
        assert!(
            d.route(peer, false, ttl, &packet(43)).is_none(),
            "unknown discriminator"
        );
        assert!(
            d.route(peer, false, ttl, &packet(0)).is_some(),
            "by address while Down"
        );
        assert!(d.route(other, false, ttl, &packet(0)).is_none());
    }

    #[test]
    fn single_hop_wants_ttl_255_on_port_3784() {
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let (d, _rx) = route(peer, None);
        assert!(d.route(peer, false, Some(255), &packet(0)).is_some());
        assert!(d.route(peer, false, Some(254), &packet(0)).is_none());
        assert!(
            d.route(peer, false, None, &packet(0)).is_none(),
            "no TTL seen"
        );
        assert!(
            d.route(peer, true, Some(255), &packet(0)).is_none(),
            "multihop port"
        );
    }

    #[test]
    fn multihop_wants_ttl_within_its_hops_on_port_4784() {
        let peer: IpAddr = "2001:db8::1".parse().unwrap();
        let (d, _rx) = route(peer, Some(2));
        assert!(d.route(peer, true, Some(255), &packet(42)).is_some());
        assert!(
            d.route(peer, true, Some(254), &packet(0)).is_some(),
            "2 hops"
        );
        assert!(
            d.route(peer, true, Some(253), &packet(0)).is_none(),
            "3 hops"
        );
        assert!(
            d.route(peer, false, Some(255), &packet(0)).is_none(),
            "single-hop port"
        );
    }
}
