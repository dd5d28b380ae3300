//! The BGP finite state machine of RFC 4271 §8, one task per peer.
//!
//! The peer task owns the peer's connections (at most two at once: ours and
//! theirs, until collision resolution of §6.8 picks one), its timers and
//! its published status. It never touches routing state: UPDATEs go from
//! the connection reader to the RIB task, and the RIB task sends what to
//! advertise through [`PeerCmd::Send`].

pub mod connection;
pub mod open;
pub mod socket;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use rib::PeerId;
use wire::notification as n;
use wire::{Message, Notification};

use crate::events::{PeerCmd, PeerStatus, RibEvent, SessionState};
use connection::{ConnEvent, ConnId, Delivery, Outgoing, ReaderArgs};
use open::{LocalOpen, Negotiated};
use socket::SocketOptions;

/// Everything the session needs to know about one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    pub name: String,
    pub remote: SocketAddr,
    pub remote_asn: u32,
    pub local: LocalOpen,
    pub passive: bool,
    pub socket: SocketOptions,
    /// Upper bound of the reconnect backoff.
    pub connect_retry: Duration,
    pub next_hop_ipv4: Option<Ipv4Addr>,
    pub next_hop_ipv6: Option<Ipv6Addr>,
}

struct Conn {
    id: ConnId,
    outbound: bool,
    state: SessionState,
    negotiated: Option<Negotiated>,
    local_addr: Option<SocketAddr>,
    writer: mpsc::UnboundedSender<Outgoing>,
    established: watch::Sender<Option<Delivery>>,
    reader: JoinHandle<()>,
}

impl Conn {
    fn send(&self, msgs: Vec<Message>) {
        let _ = self.writer.send(Outgoing::Messages(msgs));
    }

    fn close(self, nf: Option<Notification>) {
        let _ = self.writer.send(Outgoing::Close(nf));
        self.reader.abort();
    }
}

pub struct PeerTask {
    id: PeerId,
    cfg: SessionConfig,
    rib: mpsc::Sender<RibEvent>,
    status: watch::Sender<PeerStatus>,
    conns: Vec<Conn>,
    next_conn: ConnId,
    generation: u64,
    backoff: Duration,
    connecting: bool,
    retry_at: Option<tokio::time::Instant>,
}

/// Cease subcode 7 (RFC 4486): connection collision resolution.
fn cease(subcode: u8) -> Notification {
    Notification {
        code: n::CEASE,
        subcode,
        data: vec![],
    }
}

fn describe(nf: &Notification) -> String {
    let mut s = n::describe(nf.code, nf.subcode);
    if let Some(msg) = n::shutdown_communication(&nf.data) {
        s.push_str(&format!(": \"{msg}\""));
    }
    s
}

/// ±25 % jitter (RFC 4271 §10) without a random-number dependency: the
/// low bits of the clock are random enough to spread reconnects.
fn jittered(d: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    let factor = 0.75 + f64::from(nanos % 1000) / 2000.0;
    d.mul_f64(factor)
}

const FIRST_RETRY: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl PeerTask {
    pub fn spawn(
        id: PeerId,
        cfg: SessionConfig,
        rib: mpsc::Sender<RibEvent>,
    ) -> (mpsc::UnboundedSender<PeerCmd>, watch::Receiver<PeerStatus>) {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (status, status_rx) = watch::channel(PeerStatus::new());
        let task = PeerTask {
            id,
            cfg,
            rib,
            status,
            conns: Vec::new(),
            next_conn: 0,
            generation: 0,
            backoff: FIRST_RETRY,
            connecting: false,
            retry_at: Some(tokio::time::Instant::now()),
        };
        tokio::spawn(task.run(cmd_rx));
        (cmd_tx, status_rx)
    }

    fn current_state(&self) -> SessionState {
        let best = self.conns.iter().map(|c| c.state).max();
        match best {
            Some(s) => s,
            None if self.connecting => SessionState::Connect,
            None => SessionState::Active,
        }
    }

    /// Record the state and log the change, once, with its reason. The
    /// Idle/Connect/Active churn of a peer that is down goes to debug so a
    /// dead peer does not fill the log; everything from OpenSent up is info,
    /// and losing an Established session is a warning.
    fn publish(&self) {
        let state = self.current_state();
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
            if from == SessionState::Established {
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

    async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<PeerCmd>) {
        let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<(ConnId, ConnEvent)>();
        let (conn_tx, mut conn_rx) = mpsc::unbounded_channel::<std::io::Result<TcpStream>>();
        let mut keepalive = tokio::time::interval(Duration::from_secs(1));
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_keepalive = Instant::now();
        self.publish();
        loop {
            let retry_at = self.retry_at;
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    None => { self.stop(cease(n::cease::ADMINISTRATIVE_SHUTDOWN)).await; return; }
                    Some(PeerCmd::Stop(nf)) => { self.stop(nf).await; return; }
                    Some(PeerCmd::Incoming(stream)) => self.incoming(stream, &ev_tx),
                    Some(PeerCmd::Send { generation, updates }) => {
                        if generation == self.generation {
                            if let Some(c) = self.established() {
                                c.send(updates.into_iter().map(Message::Update).collect());
                            }
                        }
                    }
                },
                Some((id, ev)) = ev_rx.recv() => self.conn_event(id, ev).await,
                Some(res) = conn_rx.recv() => {
                    self.connecting = false;
                    match res {
                        Ok(stream) => self.add_conn(stream, true, &ev_tx),
                        Err(e) => {
                            self.note_error(format!("connect to {}: {e}", self.cfg.remote));
                            self.schedule_retry();
                        }
                    }
                    self.publish();
                }
                _ = async { tokio::time::sleep_until(retry_at.unwrap()).await }, if retry_at.is_some() => {
                    self.retry_at = None;
                    if !self.cfg.passive && self.conns.is_empty() && !self.connecting {
                        self.connecting = true;
                        let remote = self.cfg.remote;
                        let opts = self.cfg.socket.clone();
                        let tx = conn_tx.clone();
                        tokio::spawn(async move {
                            let _ = tx.send(socket::connect(remote, &opts, CONNECT_TIMEOUT).await);
                        });
                        self.publish();
                    }
                }
                _ = keepalive.tick() => {
                    // KEEPALIVE every third of the negotiated hold time
                    // (RFC 4271 §4.4), checked once a second.
                    let due = self.conns.iter().filter_map(|c| c.negotiated.as_ref()).map(|n| n.keepalive_secs).filter(|k| *k > 0).min();
                    if let Some(k) = due {
                        if last_keepalive.elapsed() >= Duration::from_secs(u64::from(k)) {
                            last_keepalive = Instant::now();
                            for c in self.conns.iter().filter(|c| c.state >= SessionState::OpenConfirm) {
                                c.send(vec![Message::Keepalive]);
                            }
                        }
                    }
                }
            }
        }
    }

    fn established(&self) -> Option<&Conn> {
        self.conns
            .iter()
            .find(|c| c.state == SessionState::Established)
    }

    fn note_error(&self, e: String) {
        self.status.send_modify(|s| s.last_error = Some(e));
    }

    fn schedule_retry(&mut self) {
        if self.cfg.passive || self.retry_at.is_some() {
            return;
        }
        let wait = jittered(self.backoff);
        self.retry_at = Some(tokio::time::Instant::now() + wait);
        self.backoff = (self.backoff * 2).min(self.cfg.connect_retry.max(FIRST_RETRY));
    }

    fn incoming(&mut self, stream: TcpStream, ev_tx: &mpsc::UnboundedSender<(ConnId, ConnEvent)>) {
        if self.established().is_some() {
            // RFC 4271 §6.8: a connection colliding with an Established
            // session is closed.
            info!(peer = %self.cfg.name, "incoming connection while Established: closing it (collision)");
            drop(stream);
            return;
        }
        if let Err(e) = socket::configure_accepted(&stream, &self.cfg.socket) {
            warn!(peer = %self.cfg.name, "setting socket options on accepted connection: {e}");
        }
        self.add_conn(stream, false, ev_tx);
        self.publish();
    }

    fn add_conn(
        &mut self,
        stream: TcpStream,
        outbound: bool,
        ev_tx: &mpsc::UnboundedSender<(ConnId, ConnEvent)>,
    ) {
        let id = self.next_conn;
        self.next_conn += 1;
        let local_addr = stream.local_addr().ok();
        let (rd, wr) = stream.into_split();
        let (w_tx, w_rx) = mpsc::unbounded_channel();
        let (est_tx, est_rx) = watch::channel(None);
        tokio::spawn(connection::run_writer(wr, w_rx));
        let reader = tokio::spawn(connection::run_reader(
            rd,
            ReaderArgs {
                conn: id,
                local_hold_time: self.cfg.local.hold_time,
                events: ev_tx.clone(),
                rib: self.rib.clone(),
                established: est_rx,
            },
        ));
        let conn = Conn {
            id,
            outbound,
            state: SessionState::OpenSent,
            negotiated: None,
            local_addr,
            writer: w_tx,
            established: est_tx,
            reader,
        };
        conn.send(vec![Message::Open(open::local_open(&self.cfg.local))]);
        self.conns.push(conn);
    }

    fn take_conn(&mut self, id: ConnId) -> Option<Conn> {
        let i = self.conns.iter().position(|c| c.id == id)?;
        Some(self.conns.remove(i))
    }

    async fn conn_event(&mut self, id: ConnId, ev: ConnEvent) {
        let Some(idx) = self.conns.iter().position(|c| c.id == id) else {
            return;
        };
        match ev {
            ConnEvent::Open(o) => {
                if self.conns[idx].state != SessionState::OpenSent {
                    let nf = Notification {
                        code: n::FSM_ERROR,
                        subcode: 0,
                        data: vec![],
                    };
                    self.drop_conn(id, Some(nf), "OPEN received twice".into())
                        .await;
                    return;
                }
                match open::negotiate(&self.cfg.local, self.cfg.remote_asn, &o) {
                    Err(nf) => {
                        let why = format!("rejected peer OPEN: {}", describe(&nf));
                        self.drop_conn(id, Some(nf), why).await;
                    }
                    Ok(neg) => {
                        if self.resolve_collision(id, neg.remote_router_id).await {
                            let i = self.conns.iter().position(|c| c.id == id).unwrap();
                            let c = &mut self.conns[i];
                            let _ = c.writer.send(Outgoing::Codec(neg.codec));
                            c.send(vec![Message::Keepalive]);
                            c.state = SessionState::OpenConfirm;
                            c.negotiated = Some(neg);
                        }
                    }
                }
            }
            ConnEvent::Keepalive => {
                if self.conns[idx].state == SessionState::OpenConfirm {
                    self.session_up(id).await;
                } else if self.conns[idx].state == SessionState::OpenSent {
                    let nf = Notification {
                        code: n::FSM_ERROR,
                        subcode: 0,
                        data: vec![],
                    };
                    self.drop_conn(id, Some(nf), "KEEPALIVE before OPEN".into())
                        .await;
                }
            }
            ConnEvent::RouteRefresh(family) => {
                if self.conns[idx].state == SessionState::Established {
                    let ev = RibEvent::RouteRefresh {
                        peer: self.id,
                        generation: self.generation,
                        family,
                    };
                    let _ = self.rib.send(ev).await;
                }
            }
            ConnEvent::Notification(nf) => {
                let why = format!("received NOTIFICATION: {}", describe(&nf));
                self.drop_conn(id, None, why).await;
            }
            ConnEvent::Failed { notify, reason } => {
                let why = match &notify {
                    Some(nf) => format!("{reason}; sent NOTIFICATION: {}", describe(nf)),
                    None => reason,
                };
                self.drop_conn(id, notify, why).await;
            }
        }
        self.publish();
    }

    /// RFC 4271 §6.8: with two connections to the same peer, keep the one
    /// opened by the side with the higher BGP Identifier. Returns whether
    /// connection `id` survives.
    async fn resolve_collision(&mut self, id: ConnId, remote_id: Ipv4Addr) -> bool {
        let others: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|c| c.id != id && c.state >= SessionState::OpenSent)
            .map(|c| c.id)
            .collect();
        if others.is_empty() {
            return true;
        }
        let me = self.conns.iter().find(|c| c.id == id).unwrap();
        let keep_outbound = u32::from(self.cfg.local.router_id) > u32::from(remote_id);
        let survives = me.outbound == keep_outbound;
        let why = "connection collision resolved (RFC 4271 §6.8)".to_string();
        if survives {
            for o in others {
                self.drop_conn(
                    o,
                    Some(cease(n::cease::CONNECTION_COLLISION_RESOLUTION)),
                    why.clone(),
                )
                .await;
            }
        } else {
            self.drop_conn(
                id,
                Some(cease(n::cease::CONNECTION_COLLISION_RESOLUTION)),
                why,
            )
            .await;
        }
        survives
    }

    async fn session_up(&mut self, id: ConnId) {
        self.generation += 1;
        let generation = self.generation;
        let idx = self.conns.iter().position(|c| c.id == id).unwrap();
        let c = &mut self.conns[idx];
        c.state = SessionState::Established;
        let neg = c.negotiated.clone().expect("OpenConfirm has negotiated");
        let local_ip = c.local_addr.map(|a| socket::unmap(a.ip()));
        let info = rib::SessionInfo {
            remote_router_id: neg.remote_router_id,
            families: neg.families.clone(),
            local_next_hop_v4: self
                .cfg
                .next_hop_ipv4
                .or_else(|| local_ip.and_then(crate::ifaddrs::sibling_v4)),
            local_next_hop_v6: self
                .cfg
                .next_hop_ipv6
                .or_else(|| local_ip.and_then(crate::ifaddrs::sibling_v6)),
            extended_next_hop_v4: false,
        };
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
            s.hold_time = Some(neg.hold_time);
            s.families = neg.families.clone();
            s.local_address = local_ip;
            s.last_error = None;
        });
        let _ = self
            .rib
            .send(RibEvent::SessionUp {
                peer: self.id,
                generation,
                info,
            })
            .await;
        let _ = self.conns[idx].established.send(Some(Delivery {
            peer: self.id,
            generation,
        }));
        self.backoff = FIRST_RETRY;
        // Any other connection lost the race.
        let others: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|c| c.id != id)
            .map(|c| c.id)
            .collect();
        for o in others {
            self.drop_conn(
                o,
                Some(cease(n::cease::CONNECTION_COLLISION_RESOLUTION)),
                "connection collision resolved (RFC 4271 §6.8)".into(),
            )
            .await;
        }
    }

    async fn drop_conn(&mut self, id: ConnId, nf: Option<Notification>, why: String) {
        let Some(c) = self.take_conn(id) else { return };
        let was_established = c.state == SessionState::Established;
        c.close(nf);
        if was_established {
            self.status.send_modify(|s| {
                s.established_at = None;
                s.flaps += 1;
            });
            let _ = self
                .rib
                .send(RibEvent::SessionDown {
                    peer: self.id,
                    generation: self.generation,
                })
                .await;
        }
        self.note_error(why);
        if self.conns.is_empty() {
            self.schedule_retry();
        }
    }

    async fn stop(&mut self, nf: Notification) {
        let ids: Vec<ConnId> = self.conns.iter().map(|c| c.id).collect();
        for id in ids {
            self.drop_conn(id, Some(nf.clone()), format!("stopping: {}", describe(&nf)))
                .await;
        }
        self.status.send_modify(|s| s.state = SessionState::Idle);
    }
}
