//! The BGP finite state machine of RFC 4271 §8 for one peer, pure.
//!
//! [`Fsm::handle`] takes one [`Event`] and returns the [`Action`]s to carry
//! out; all transitions are in its one `match`. It does no I/O and reads no
//! clock: timers are named by [`Timer`] and started with a duration, and
//! their expiry comes back as an event. The peer task
//! (`session::PeerTask`) turns sockets and timers into events and executes
//! the actions.
//!
//! The FSM tracks the peer's two possible connections — the one we opened
//! ([`Side::Ours`]) and the one the peer opened ([`Side::Theirs`]) — and
//! resolves their collision (RFC 4271 §6.8, RFC 6286 §2.3) itself. Each
//! connection has its own state (OpenSent, OpenConfirm, Established); the
//! peer's state is the most advanced of them, or Connect / Active / Idle
//! when there is none.
//!
//! Where kroute differs from the letter of §8: the RFC's Idle state with
//! automatic restart (events 3-5 and the IdleHoldTimer) is folded into
//! Active — after an error the peer waits out the connect-retry backoff
//! while still accepting the peer's connections, and Idle means stopped.
//! OPEN is sent as soon as TCP is up (no DelayOpen).

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use wire::notification as n;
use wire::{Family, Notification, SessionCodec};

use super::open::Negotiated;
use crate::events::SessionState;

/// Names one TCP connection for the life of the peer task; never reused.
pub type ConnId = u64;

/// RFC 4271 §8.2.2: the hold time in OpenSent, before the OPENs have
/// agreed on one ("a large value", 4 minutes suggested).
pub const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);

/// The first connect-retry delay; it doubles after each failure up to
/// `FsmConfig::connect_retry`.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Who opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Ours,
    Theirs,
}

/// What the FSM needs to know about the peer and about us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsmConfig {
    pub local_router_id: Ipv4Addr,
    pub local_asn: u32,
    pub remote_asn: u32,
    /// Never connect out; only accept the peer's connections.
    pub passive: bool,
    /// Upper bound of the connect-retry backoff.
    pub connect_retry: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    ConnectRetry,
    Hold(ConnId),
    Keepalive(ConnId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Start the peer (RFC 4271 event 1).
    ManualStart,
    /// Stop the peer, sending this NOTIFICATION on every connection (event 2).
    ManualStop(Notification),
    /// Time to connect out again (event 9).
    ConnectRetryExpired,
    HoldTimerExpired(ConnId),
    KeepaliveTimerExpired(ConnId),
    /// Our outgoing connection is up (events 16/17).
    TcpConnected(ConnId),
    /// Our outgoing connection attempt failed (event 18 before a connection).
    TcpConnectFailed(String),
    /// The listener accepted a connection from the peer's address (event 17).
    TcpAccepted(ConnId),
    /// The peer closed the connection, or reading it failed (event 18).
    TcpClosed(ConnId, String),
    /// The peer's OPEN, checked (`open::negotiate`): what we agreed on, or
    /// the NOTIFICATION that rejects it (events 19/20, §6.2).
    OpenReceived(ConnId, Result<Negotiated, Notification>),
    KeepaliveReceived(ConnId),
    /// One or more UPDATEs (event 27). Before Established they are an error;
    /// once Established the connection hands them to the RIB itself.
    UpdateReceived(ConnId),
    NotificationReceived(ConnId, Notification),
    RouteRefreshReceived(ConnId, Family),
    /// A message that could not be decoded, with the NOTIFICATION the
    /// decoder chose and its description (events 21, 22, 28).
    DecodeError(ConnId, Notification, String),
}

impl Event {
    /// The connection this event is about, if it is about one.
    fn conn(&self) -> Option<ConnId> {
        match self {
            Event::ManualStart
            | Event::ManualStop(_)
            | Event::ConnectRetryExpired
            | Event::TcpConnected(_)
            | Event::TcpConnectFailed(_)
            | Event::TcpAccepted(_) => None,
            Event::HoldTimerExpired(id)
            | Event::KeepaliveTimerExpired(id)
            | Event::TcpClosed(id, _)
            | Event::OpenReceived(id, _)
            | Event::KeepaliveReceived(id)
            | Event::UpdateReceived(id)
            | Event::NotificationReceived(id, _)
            | Event::RouteRefreshReceived(id, _)
            | Event::DecodeError(id, _, _) => Some(*id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to the peer; report it as `TcpConnected` or
    /// `TcpConnectFailed`.
    Connect,
    SendOpen(ConnId),
    SendKeepalive(ConnId),
    /// The OPENs agree: encode this connection's messages with this codec.
    UseCodec(ConnId, SessionCodec),
    /// Send `notify` (if any), then close the connection. Its timers end
    /// with it.
    Close {
        conn: ConnId,
        notify: Option<Notification>,
        reason: Reason,
    },
    /// Start a timer, or restart it if it runs.
    StartTimer(Timer, Duration),
    StopTimer(Timer),
    /// The session is Established on `conn`: tell the RIB, then hand the
    /// connection's UPDATEs to it under `generation`.
    SessionUp {
        conn: ConnId,
        generation: u64,
        negotiated: Negotiated,
    },
    /// The session of `generation` is gone: the RIB drops its routes.
    SessionDown {
        generation: u64,
    },
    /// The peer asks for our routes again (RFC 2918).
    RouteRefresh {
        generation: u64,
        family: Family,
    },
    /// Record why the last attempt failed when no connection is closed.
    Failed(Reason),
}

/// The message types, for FSM errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Open,
    Update,
    Keepalive,
    RouteRefresh,
}

/// Why a connection was closed or an attempt failed, as a value (shown in
/// `show neighbors` as the last error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    ConnectFailed(String),
    PeerClosed(String),
    NotificationReceived(Notification),
    OpenRejected(Notification),
    DecodeError(String),
    HoldTimerExpired,
    /// RFC 4271 §8.2.2 / RFC 6608: a message the state does not allow.
    UnexpectedMessage {
        message: MessageKind,
        state: SessionState,
    },
    /// §6.8: both connections reached OpenSent; the one `kept` wins.
    Collision {
        kept: Side,
    },
    /// §6.8: a new connection while a session is Established.
    CollisionWithEstablished,
    /// A newer connection from the peer replaced this one before it was
    /// Established: the peer has given up on it.
    Replaced,
    /// A connection while the peer is stopped (Idle).
    NotStarted,
    Stopped(Notification),
}

/// A NOTIFICATION in words, with its RFC 8203 shutdown communication.
pub fn describe(nf: &Notification) -> String {
    let mut s = n::describe(nf.code, nf.subcode);
    if let Some(msg) = n::shutdown_communication(&nf.data) {
        s.push_str(&format!(": \"{msg}\""));
    }
    s
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MessageKind::Open => "OPEN",
            MessageKind::Update => "UPDATE",
            MessageKind::Keepalive => "KEEPALIVE",
            MessageKind::RouteRefresh => "ROUTE-REFRESH",
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::ConnectFailed(e) | Reason::PeerClosed(e) => f.write_str(e),
            Reason::NotificationReceived(nf) => {
                write!(f, "received NOTIFICATION: {}", describe(nf))
            }
            Reason::OpenRejected(_) => f.write_str("rejected peer OPEN"),
            Reason::DecodeError(e) => write!(f, "bad message from peer: {e}"),
            Reason::HoldTimerExpired => f.write_str("hold timer expired"),
            Reason::UnexpectedMessage { message, state } => {
                write!(f, "{message} received in {state:?}")
            }
            Reason::Collision { kept } => {
                let kept = match kept {
                    Side::Ours => "ours",
                    Side::Theirs => "the peer's",
                };
                write!(
                    f,
                    "connection collision resolved (RFC 4271 §6.8): kept {kept}"
                )
            }
            Reason::CollisionWithEstablished => {
                f.write_str("connection collision with the Established session (RFC 4271 §6.8)")
            }
            Reason::Replaced => f.write_str("replaced by a newer connection from the peer"),
            Reason::NotStarted => f.write_str("peer not started"),
            Reason::Stopped(_) => f.write_str("stopping"),
        }
    }
}

fn cease(subcode: u8) -> Notification {
    Notification::new(n::CEASE, subcode, vec![])
}

/// The connect-retry delay after `attempt` failures in a row: 1 s, 2 s,
/// 4 s … capped at `cap` (at least 1 s), then ±25 % jitter from
/// `jitter_sample` (RFC 4271 §10) so that peers do not retry in lockstep.
pub fn retry_delay(attempt: u32, cap: Duration, jitter_sample: u64) -> Duration {
    let cap = cap.max(FIRST_RETRY);
    let base = FIRST_RETRY
        .saturating_mul(2u32.saturating_pow(attempt))
        .min(cap);
    // A factor in [0.75, 1.25).
    let factor = 0.75 + (jitter_sample % 1000) as f64 / 2000.0;
    base.mul_f64(factor)
}

/// RFC 4271 §6.8: of two colliding connections, keep the one opened by the
/// side with the higher BGP Identifier; RFC 6286 §2.3: if the identifiers
/// are equal (possible between ASes), the side with the larger AS number.
pub fn collision_winner(
    local_id: Ipv4Addr,
    local_asn: u32,
    remote_id: Ipv4Addr,
    remote_asn: u32,
) -> Side {
    let local = (u32::from(local_id), local_asn);
    let remote = (u32::from(remote_id), remote_asn);
    if local > remote {
        Side::Ours
    } else {
        Side::Theirs
    }
}

/// A connection's place in §8.2.2 once TCP is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    OpenSent,
    OpenConfirm,
    Established,
}

impl Phase {
    fn state(self) -> SessionState {
        match self {
            Phase::OpenSent => SessionState::OpenSent,
            Phase::OpenConfirm => SessionState::OpenConfirm,
            Phase::Established => SessionState::Established,
        }
    }

    /// RFC 6608 §3: the FSM-error subcode for an unexpected message here.
    fn fsm_error_subcode(self) -> u8 {
        match self {
            Phase::OpenSent => n::fsm::UNEXPECTED_MESSAGE_IN_OPENSENT,
            Phase::OpenConfirm => n::fsm::UNEXPECTED_MESSAGE_IN_OPENCONFIRM,
            Phase::Established => n::fsm::UNEXPECTED_MESSAGE_IN_ESTABLISHED,
        }
    }
}

#[derive(Debug, Clone)]
struct Conn {
    id: ConnId,
    side: Side,
    phase: Phase,
    /// Set from OpenConfirm on.
    negotiated: Option<Negotiated>,
}

impl Conn {
    fn hold_time(&self) -> Option<Duration> {
        let secs = self.negotiated.as_ref()?.hold_time;
        (secs > 0).then(|| Duration::from_secs(u64::from(secs)))
    }

    fn keepalive_time(&self) -> Option<Duration> {
        let secs = self.negotiated.as_ref()?.keepalive_secs;
        (secs > 0).then(|| Duration::from_secs(u64::from(secs)))
    }
}

/// One peer's FSM state.
#[derive(Debug, Clone)]
pub struct Fsm {
    cfg: FsmConfig,
    started: bool,
    /// An outgoing connection attempt is under way.
    connecting: bool,
    /// The ConnectRetry timer runs.
    retry_pending: bool,
    /// Connect retries since the last Established session.
    retries: u32,
    /// xorshift state for the retry jitter (seeded by the caller).
    rng: u64,
    ours: Option<Conn>,
    theirs: Option<Conn>,
    /// Counts Established sessions; tags what the RIB hears from each.
    generation: u64,
}

impl Fsm {
    /// A stopped (Idle) FSM. `seed` drives the retry jitter.
    pub fn new(cfg: FsmConfig, seed: u64) -> Fsm {
        Fsm {
            cfg,
            started: false,
            connecting: false,
            retry_pending: false,
            retries: 0,
            rng: seed | 1,
            ours: None,
            theirs: None,
            generation: 0,
        }
    }

    /// The peer's state: its most advanced connection's, else Connect while
    /// connecting out, Active while started, Idle when stopped.
    pub fn state(&self) -> SessionState {
        let best = self.conns().map(|c| c.phase.state()).max();
        match best {
            Some(s) => s,
            None if self.connecting => SessionState::Connect,
            None if self.started => SessionState::Active,
            None => SessionState::Idle,
        }
    }

    /// The Established connection and the session's generation.
    pub fn established(&self) -> Option<(ConnId, u64)> {
        self.conns()
            .find(|c| c.phase == Phase::Established)
            .map(|c| (c.id, self.generation))
    }

    /// Feed one event; returns what to do, in order.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        let phase = event.conn().and_then(|id| self.conn(id)).map(|c| c.phase);
        match (phase, event) {
            (_, Event::ManualStart) => {
                if !self.started {
                    self.started = true;
                    self.connect_if_idle(&mut out);
                }
            }
            (_, Event::ManualStop(nf)) => {
                self.started = false;
                self.connecting = false;
                for c in [self.ours.take(), self.theirs.take()].into_iter().flatten() {
                    let reason = Reason::Stopped(nf.clone());
                    self.finish(c, Some(nf.clone()), reason, &mut out);
                }
                if std::mem::take(&mut self.retry_pending) {
                    out.push(Action::StopTimer(Timer::ConnectRetry));
                }
            }
            (_, Event::ConnectRetryExpired) => {
                self.retry_pending = false;
                self.connect_if_idle(&mut out);
            }
            (_, Event::TcpConnectFailed(why)) => {
                self.connecting = false;
                out.push(Action::Failed(Reason::ConnectFailed(why)));
                self.schedule_retry(&mut out);
            }
            (_, Event::TcpConnected(id)) => {
                self.connecting = false;
                self.track(Side::Ours, id, &mut out);
            }
            (_, Event::TcpAccepted(id)) => self.track(Side::Theirs, id, &mut out),
            // Everything below is about one connection. Events of one we
            // have closed may still be on their way: ignore them.
            (None, _) => {}
            (Some(Phase::OpenSent), Event::OpenReceived(id, Ok(negotiated))) => {
                self.open_accepted(id, negotiated, &mut out)
            }
            (Some(Phase::OpenSent), Event::OpenReceived(id, Err(nf))) => {
                self.close(id, Some(nf.clone()), Reason::OpenRejected(nf), &mut out)
            }
            (Some(Phase::OpenConfirm), Event::KeepaliveReceived(id)) => {
                self.establish(id, &mut out)
            }
            // RFC 4271 §8.2.2 Established: KEEPALIVE and UPDATE restart
            // the hold timer.
            (
                Some(Phase::Established),
                Event::KeepaliveReceived(id) | Event::UpdateReceived(id),
            ) => self.restart_hold(id, &mut out),
            (Some(Phase::Established), Event::RouteRefreshReceived(_, family)) => {
                out.push(Action::RouteRefresh {
                    generation: self.generation,
                    family,
                })
            }
            (Some(phase), Event::OpenReceived(id, _)) => {
                self.fsm_error(id, phase, MessageKind::Open, &mut out)
            }
            (Some(phase), Event::KeepaliveReceived(id)) => {
                self.fsm_error(id, phase, MessageKind::Keepalive, &mut out)
            }
            (Some(phase), Event::UpdateReceived(id)) => {
                self.fsm_error(id, phase, MessageKind::Update, &mut out)
            }
            (Some(phase), Event::RouteRefreshReceived(id, _)) => {
                self.fsm_error(id, phase, MessageKind::RouteRefresh, &mut out)
            }
            (Some(Phase::OpenConfirm | Phase::Established), Event::KeepaliveTimerExpired(id)) => {
                out.push(Action::SendKeepalive(id));
                if let Some(k) = self.conn(id).and_then(Conn::keepalive_time) {
                    out.push(Action::StartTimer(Timer::Keepalive(id), k));
                }
            }
            // No keepalive timer runs in OpenSent.
            (Some(Phase::OpenSent), Event::KeepaliveTimerExpired(_)) => {}
            (Some(_), Event::HoldTimerExpired(id)) => {
                let nf = Notification::new(n::HOLD_TIMER_EXPIRED, 0, vec![]);
                self.close(id, Some(nf), Reason::HoldTimerExpired, &mut out)
            }
            (Some(_), Event::NotificationReceived(id, nf)) => {
                self.close(id, None, Reason::NotificationReceived(nf), &mut out)
            }
            (Some(_), Event::TcpClosed(id, why)) => {
                self.close(id, None, Reason::PeerClosed(why), &mut out)
            }
            (Some(_), Event::DecodeError(id, nf, why)) => {
                self.close(id, Some(nf), Reason::DecodeError(why), &mut out)
            }
        }
        out
    }

    fn conns(&self) -> impl Iterator<Item = &Conn> {
        self.ours.iter().chain(self.theirs.iter())
    }

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns().find(|c| c.id == id)
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.ours
            .iter_mut()
            .chain(self.theirs.iter_mut())
            .find(|c| c.id == id)
    }

    fn slot(&mut self, side: Side) -> &mut Option<Conn> {
        match side {
            Side::Ours => &mut self.ours,
            Side::Theirs => &mut self.theirs,
        }
    }

    fn take(&mut self, id: ConnId) -> Option<Conn> {
        if self.ours.as_ref().is_some_and(|c| c.id == id) {
            self.ours.take()
        } else if self.theirs.as_ref().is_some_and(|c| c.id == id) {
            self.theirs.take()
        } else {
            None
        }
    }

    /// Connect out if started, not passive, and there is no connection.
    fn connect_if_idle(&mut self, out: &mut Vec<Action>) {
        if self.started && !self.cfg.passive && !self.connecting && self.conns().next().is_none() {
            self.connecting = true;
            out.push(Action::Connect);
        }
    }

    /// With no connection left, connect again after the backoff delay.
    fn schedule_retry(&mut self, out: &mut Vec<Action>) {
        if !self.started
            || self.cfg.passive
            || self.retry_pending
            || self.connecting
            || self.conns().next().is_some()
        {
            return;
        }
        // xorshift64: enough to spread retries, no dependency.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let delay = retry_delay(self.retries, self.cfg.connect_retry, self.rng);
        self.retries = self.retries.saturating_add(1);
        self.retry_pending = true;
        out.push(Action::StartTimer(Timer::ConnectRetry, delay));
    }

    /// A new TCP connection: refuse it, or send OPEN and track it until
    /// its OPEN arrives (§8.2.2: a second connection is tracked until then).
    fn track(&mut self, side: Side, id: ConnId, out: &mut Vec<Action>) {
        if !self.started {
            let nf = cease(n::cease::CONNECTION_REJECTED);
            out.push(close(id, Some(nf), Reason::NotStarted));
            return;
        }
        if self.established().is_some() {
            let nf = cease(n::cease::CONNECTION_COLLISION_RESOLUTION);
            out.push(close(id, Some(nf), Reason::CollisionWithEstablished));
            return;
        }
        let conn = Conn {
            id,
            side,
            phase: Phase::OpenSent,
            negotiated: None,
        };
        out.push(Action::SendOpen(id));
        out.push(Action::StartTimer(Timer::Hold(id), OPEN_HOLD_TIME));
        if std::mem::take(&mut self.retry_pending) {
            out.push(Action::StopTimer(Timer::ConnectRetry));
        }
        // A peer that connects again has given up on its earlier connection
        // (issue 12: a stale one must not block the real one).
        if let Some(old) = self.slot(side).replace(conn) {
            let nf = cease(n::cease::CONNECTION_COLLISION_RESOLUTION);
            self.finish(old, Some(nf), Reason::Replaced, out);
        }
    }

    /// A valid OPEN in OpenSent: resolve a collision (§6.8), then
    /// OpenConfirm.
    fn open_accepted(&mut self, id: ConnId, negotiated: Negotiated, out: &mut Vec<Action>) {
        let side = self.conn(id).map(|c| c.side).expect("caller checked");
        let other = match side {
            Side::Ours => self.theirs.as_ref(),
            Side::Theirs => self.ours.as_ref(),
        }
        .map(|c| (c.id, c.phase));
        let collision = cease(n::cease::CONNECTION_COLLISION_RESOLUTION);
        match other {
            Some((_, Phase::Established)) => {
                self.close(id, Some(collision), Reason::CollisionWithEstablished, out);
                return;
            }
            Some((other_id, _)) => {
                // The other connection's OPEN may not have arrived yet; the
                // peer's BGP Identifier is the same on both.
                let kept = collision_winner(
                    self.cfg.local_router_id,
                    self.cfg.local_asn,
                    negotiated.remote_router_id,
                    self.cfg.remote_asn,
                );
                let loser = if kept == side { other_id } else { id };
                self.close(loser, Some(collision), Reason::Collision { kept }, out);
                if loser == id {
                    return;
                }
            }
            None => {}
        }
        out.push(Action::UseCodec(id, negotiated.codec));
        out.push(Action::SendKeepalive(id));
        let conn = self.conn_mut(id).expect("still tracked");
        conn.phase = Phase::OpenConfirm;
        conn.negotiated = Some(negotiated);
        // §8.2.2 OpenSent: the negotiated hold time replaces the large one;
        // with hold time 0 neither timer runs (§4.4).
        match conn.hold_time() {
            Some(hold) => out.push(Action::StartTimer(Timer::Hold(id), hold)),
            None => out.push(Action::StopTimer(Timer::Hold(id))),
        }
        if let Some(k) = conn.keepalive_time() {
            out.push(Action::StartTimer(Timer::Keepalive(id), k));
        }
    }

    /// KEEPALIVE in OpenConfirm: Established.
    fn establish(&mut self, id: ConnId, out: &mut Vec<Action>) {
        self.generation += 1;
        self.retries = 0;
        let conn = self.conn_mut(id).expect("caller checked");
        conn.phase = Phase::Established;
        let side = conn.side;
        let negotiated = conn.negotiated.clone().expect("set in OpenConfirm");
        self.restart_hold(id, out);
        out.push(Action::SessionUp {
            conn: id,
            generation: self.generation,
            negotiated,
        });
        // A connection still in OpenSent lost the race.
        let other = match side {
            Side::Ours => self.theirs.take(),
            Side::Theirs => self.ours.take(),
        };
        if let Some(other) = other {
            let nf = cease(n::cease::CONNECTION_COLLISION_RESOLUTION);
            self.finish(other, Some(nf), Reason::Collision { kept: side }, out);
        }
    }

    fn restart_hold(&self, id: ConnId, out: &mut Vec<Action>) {
        if let Some(hold) = self.conn(id).and_then(Conn::hold_time) {
            out.push(Action::StartTimer(Timer::Hold(id), hold));
        }
    }

    /// RFC 4271 §8.2.2, RFC 6608: NOTIFICATION 5 with the state's subcode.
    fn fsm_error(&mut self, id: ConnId, phase: Phase, message: MessageKind, out: &mut Vec<Action>) {
        let nf = Notification::new(n::FSM_ERROR, phase.fsm_error_subcode(), vec![]);
        let reason = Reason::UnexpectedMessage {
            message,
            state: phase.state(),
        };
        self.close(id, Some(nf), reason, out);
    }

    fn close(
        &mut self,
        id: ConnId,
        notify: Option<Notification>,
        reason: Reason,
        out: &mut Vec<Action>,
    ) {
        if let Some(conn) = self.take(id) {
            self.finish(conn, notify, reason, out);
        }
    }

    /// Close a connection already taken out of its slot.
    fn finish(
        &mut self,
        conn: Conn,
        notify: Option<Notification>,
        reason: Reason,
        out: &mut Vec<Action>,
    ) {
        out.push(close(conn.id, notify, reason));
        if conn.phase == Phase::Established {
            out.push(Action::SessionDown {
                generation: self.generation,
            });
        }
        self.schedule_retry(out);
    }
}

fn close(conn: ConnId, notify: Option<Notification>, reason: Reason) -> Action {
    Action::Close {
        conn,
        notify,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionState::*;

    const OUR_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
    const HIGHER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);
    const LOWER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const OUR_ASN: u32 = 65001;
    const PEER_ASN: u32 = 65002;
    const OURS: ConnId = 1;
    const THEIRS: ConnId = 2;

    fn config(passive: bool) -> FsmConfig {
        FsmConfig {
            local_router_id: OUR_ID,
            local_asn: OUR_ASN,
            remote_asn: PEER_ASN,
            passive,
            connect_retry: Duration::from_secs(30),
        }
    }

    fn negotiated(remote_id: Ipv4Addr, hold_time: u16) -> Negotiated {
        Negotiated {
            remote_router_id: remote_id,
            hold_time,
            keepalive_secs: hold_time / 3,
            families: vec![Family::Ipv4Unicast],
            codec: SessionCodec {
                four_octet_as: true,
            },
        }
    }

    fn started(passive: bool) -> Fsm {
        let mut fsm = Fsm::new(config(passive), 42);
        fsm.handle(Event::ManualStart);
        fsm
    }

    /// Our connection OURS in OpenSent.
    fn open_sent() -> Fsm {
        let mut fsm = started(false);
        fsm.handle(Event::TcpConnected(OURS));
        fsm
    }

    /// Our connection OURS in OpenConfirm with a peer of `remote_id`.
    fn open_confirm(remote_id: Ipv4Addr) -> Fsm {
        let mut fsm = open_sent();
        fsm.handle(Event::OpenReceived(OURS, Ok(negotiated(remote_id, 90))));
        fsm
    }

    fn established() -> Fsm {
        let mut fsm = open_confirm(HIGHER_ID);
        fsm.handle(Event::KeepaliveReceived(OURS));
        fsm
    }

    /// (connection, NOTIFICATION code/subcode) of every Close.
    fn closes(actions: &[Action]) -> Vec<(ConnId, Option<(u8, u8)>)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Close { conn, notify, .. } => {
                    Some((*conn, notify.as_ref().map(|nf| (nf.code, nf.subcode))))
                }
                _ => None,
            })
            .collect()
    }

    fn reasons(actions: &[Action]) -> Vec<Reason> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Close { reason, .. } | Action::Failed(reason) => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }

    fn retry_timer(actions: &[Action]) -> Option<Duration> {
        actions.iter().find_map(|a| match a {
            Action::StartTimer(Timer::ConnectRetry, d) => Some(*d),
            _ => None,
        })
    }

    fn has_session_down(actions: &[Action]) -> bool {
        actions
            .iter()
            .any(|a| matches!(a, Action::SessionDown { .. }))
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    // --- Idle, Connect, Active -------------------------------------------

    #[test]
    fn idle_until_started() {
        let fsm = Fsm::new(config(false), 1);
        assert_eq!(fsm.state(), Idle);
    }

    #[test]
    fn start_connects_out_idle_to_connect() {
        let mut fsm = Fsm::new(config(false), 1);
        assert_eq!(fsm.handle(Event::ManualStart), vec![Action::Connect]);
        assert_eq!(fsm.state(), Connect);
        // A second start changes nothing.
        assert_eq!(fsm.handle(Event::ManualStart), vec![]);
    }

    #[test]
    fn passive_peer_waits_in_active_and_never_connects_out() {
        let mut fsm = Fsm::new(config(true), 1);
        assert_eq!(fsm.handle(Event::ManualStart), vec![]);
        assert_eq!(fsm.state(), Active);
        assert_eq!(fsm.handle(Event::ConnectRetryExpired), vec![]);
        // The peer connects, then goes away: still no connect, no retry timer.
        fsm.handle(Event::TcpAccepted(THEIRS));
        assert_eq!(fsm.state(), OpenSent);
        let a = fsm.handle(Event::TcpClosed(THEIRS, "connection closed by peer".into()));
        assert_eq!(closes(&a), vec![(THEIRS, None)]);
        assert!(!a.contains(&Action::Connect));
        assert_eq!(retry_timer(&a), None);
        assert_eq!(fsm.state(), Active);
    }

    #[test]
    fn failed_connect_goes_active_and_retries_after_the_backoff() {
        let mut fsm = started(false);
        let a = fsm.handle(Event::TcpConnectFailed("connection refused".into()));
        assert_eq!(
            reasons(&a),
            vec![Reason::ConnectFailed("connection refused".into())]
        );
        let d = retry_timer(&a).expect("retry timer started");
        assert!(
            d >= secs(1).mul_f64(0.75) && d < secs(1).mul_f64(1.25),
            "{d:?}"
        );
        assert_eq!(fsm.state(), Active);
        assert_eq!(
            fsm.handle(Event::ConnectRetryExpired),
            vec![Action::Connect]
        );
        assert_eq!(fsm.state(), Connect);
    }

    #[test]
    fn connect_retry_delays_double_up_to_the_cap() {
        let mut fsm = started(false);
        let mut delays = Vec::new();
        for _ in 0..7 {
            let a = fsm.handle(Event::TcpConnectFailed("refused".into()));
            delays.push(retry_timer(&a).unwrap());
            fsm.handle(Event::ConnectRetryExpired);
        }
        let bases = [1, 2, 4, 8, 16, 30, 30];
        for (d, base) in delays.iter().zip(bases) {
            let base = secs(base);
            assert!(
                *d >= base.mul_f64(0.75) && *d < base.mul_f64(1.25),
                "{delays:?}"
            );
        }
    }

    #[test]
    fn retry_delay_schedule_and_jitter_bounds() {
        let cap = secs(30);
        // Sample 500 is the middle of the jitter range: factor 1.
        let plain: Vec<u64> = (0..8).map(|i| retry_delay(i, cap, 500).as_secs()).collect();
        assert_eq!(plain, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(retry_delay(0, cap, 0), Duration::from_millis(750));
        assert_eq!(retry_delay(0, cap, 999), Duration::from_micros(1_249_500));
        assert_eq!(retry_delay(1000, cap, 500), cap, "no overflow");
        // A cap below the first delay still waits the first delay.
        assert_eq!(retry_delay(3, Duration::ZERO, 500), FIRST_RETRY);
    }

    #[test]
    fn backoff_starts_over_after_an_established_session() {
        let mut fsm = started(false);
        for _ in 0..4 {
            fsm.handle(Event::TcpConnectFailed("refused".into()));
            fsm.handle(Event::ConnectRetryExpired);
        }
        fsm.handle(Event::TcpConnected(OURS));
        fsm.handle(Event::OpenReceived(OURS, Ok(negotiated(HIGHER_ID, 90))));
        fsm.handle(Event::KeepaliveReceived(OURS));
        let a = fsm.handle(Event::TcpClosed(OURS, "connection closed by peer".into()));
        let d = retry_timer(&a).unwrap();
        assert!(d < secs(1).mul_f64(1.25), "{d:?}");
    }

    // --- Connect -> OpenSent -> OpenConfirm -> Established --------------

    #[test]
    fn connection_up_sends_open_with_the_large_open_sent_hold_timer() {
        let mut fsm = started(false);
        let a = fsm.handle(Event::TcpConnected(OURS));
        assert_eq!(
            a,
            vec![
                Action::SendOpen(OURS),
                Action::StartTimer(Timer::Hold(OURS), OPEN_HOLD_TIME)
            ]
        );
        assert_eq!(OPEN_HOLD_TIME, secs(240));
        assert_eq!(fsm.state(), OpenSent);
    }

    #[test]
    fn accepted_connection_in_active_goes_to_open_sent_and_stops_the_retry_timer() {
        let mut fsm = started(false);
        fsm.handle(Event::TcpConnectFailed("refused".into()));
        let a = fsm.handle(Event::TcpAccepted(THEIRS));
        assert_eq!(
            a,
            vec![
                Action::SendOpen(THEIRS),
                Action::StartTimer(Timer::Hold(THEIRS), OPEN_HOLD_TIME),
                Action::StopTimer(Timer::ConnectRetry),
            ]
        );
        assert_eq!(fsm.state(), OpenSent);
    }

    #[test]
    fn valid_open_goes_to_open_confirm_with_negotiated_timers() {
        let mut fsm = open_sent();
        let neg = negotiated(HIGHER_ID, 90);
        let a = fsm.handle(Event::OpenReceived(OURS, Ok(neg.clone())));
        assert_eq!(
            a,
            vec![
                Action::UseCodec(OURS, neg.codec),
                Action::SendKeepalive(OURS),
                Action::StartTimer(Timer::Hold(OURS), secs(90)),
                Action::StartTimer(Timer::Keepalive(OURS), secs(30)),
            ]
        );
        assert_eq!(fsm.state(), OpenConfirm);
        assert_eq!(fsm.established(), None);
    }

    #[test]
    fn keepalive_in_open_confirm_establishes_the_session() {
        let mut fsm = open_confirm(HIGHER_ID);
        let a = fsm.handle(Event::KeepaliveReceived(OURS));
        assert_eq!(
            a,
            vec![
                Action::StartTimer(Timer::Hold(OURS), secs(90)),
                Action::SessionUp {
                    conn: OURS,
                    generation: 1,
                    negotiated: negotiated(HIGHER_ID, 90),
                },
            ]
        );
        assert_eq!(fsm.state(), Established);
        assert_eq!(fsm.established(), Some((OURS, 1)));
    }

    #[test]
    fn each_session_gets_a_new_generation() {
        let mut fsm = established();
        let a = fsm.handle(Event::TcpClosed(OURS, "closed".into()));
        assert!(a.contains(&Action::SessionDown { generation: 1 }));
        fsm.handle(Event::ConnectRetryExpired);
        fsm.handle(Event::TcpConnected(3));
        fsm.handle(Event::OpenReceived(3, Ok(negotiated(HIGHER_ID, 90))));
        fsm.handle(Event::KeepaliveReceived(3));
        assert_eq!(fsm.established(), Some((3, 2)));
    }

    // --- Errors back to Active -------------------------------------------

    #[test]
    fn rejected_open_sends_its_notification_and_retries() {
        let mut fsm = open_sent();
        let nf = Notification::new(
            n::OPEN_MESSAGE_ERROR,
            n::open::BAD_PEER_AS,
            vec![0xfd, 0xe9],
        );
        let a = fsm.handle(Event::OpenReceived(OURS, Err(nf.clone())));
        assert_eq!(closes(&a), vec![(OURS, Some((2, 2)))]);
        assert_eq!(reasons(&a), vec![Reason::OpenRejected(nf)]);
        assert!(retry_timer(&a).is_some());
        assert_eq!(fsm.state(), Active);
    }

    #[test]
    fn open_sent_hold_timer_expiry_sends_4_0() {
        let mut fsm = open_sent();
        let a = fsm.handle(Event::HoldTimerExpired(OURS));
        assert_eq!(closes(&a), vec![(OURS, Some((4, 0)))]);
        assert!(!has_session_down(&a));
        assert_eq!(fsm.state(), Active);
    }

    #[test]
    fn open_confirm_hold_timer_expiry_sends_4_0() {
        let mut fsm = open_confirm(HIGHER_ID);
        let a = fsm.handle(Event::HoldTimerExpired(OURS));
        assert_eq!(closes(&a), vec![(OURS, Some((4, 0)))]);
        assert_eq!(reasons(&a), vec![Reason::HoldTimerExpired]);
        assert!(!has_session_down(&a));
    }

    #[test]
    fn established_hold_timer_expiry_sends_4_0_and_takes_the_session_down() {
        let mut fsm = established();
        let a = fsm.handle(Event::HoldTimerExpired(OURS));
        assert_eq!(closes(&a), vec![(OURS, Some((4, 0)))]);
        assert!(a.contains(&Action::SessionDown { generation: 1 }));
        assert!(retry_timer(&a).is_some());
        assert_eq!(fsm.state(), Active);
        assert_eq!(fsm.established(), None);
    }

    #[test]
    fn notification_received_closes_without_answering() {
        let mut fsm = established();
        let nf = Notification::new(n::CEASE, n::cease::ADMINISTRATIVE_SHUTDOWN, vec![]);
        let a = fsm.handle(Event::NotificationReceived(OURS, nf.clone()));
        assert_eq!(closes(&a), vec![(OURS, None)]);
        assert_eq!(reasons(&a), vec![Reason::NotificationReceived(nf)]);
        assert!(has_session_down(&a));
    }

    #[test]
    fn tcp_close_in_open_sent_and_open_confirm_closes_our_side() {
        // Issue 12: the socket must not stay in CLOSE-WAIT.
        let mut fsm = open_sent();
        let a = fsm.handle(Event::TcpClosed(OURS, "connection closed by peer".into()));
        assert_eq!(closes(&a), vec![(OURS, None)]);
        assert_eq!(fsm.state(), Active);
        let mut fsm = open_confirm(HIGHER_ID);
        let a = fsm.handle(Event::TcpClosed(OURS, "connection closed by peer".into()));
        assert_eq!(closes(&a), vec![(OURS, None)]);
        assert_eq!(fsm.state(), Active);
    }

    #[test]
    fn decode_error_sends_the_decoders_notification() {
        let mut fsm = established();
        let nf = Notification::new(
            n::UPDATE_MESSAGE_ERROR,
            n::update::MALFORMED_ATTRIBUTE_LIST,
            vec![],
        );
        let a = fsm.handle(Event::DecodeError(
            OURS,
            nf,
            "malformed attribute list".into(),
        ));
        assert_eq!(closes(&a), vec![(OURS, Some((3, 1)))]);
        assert!(has_session_down(&a));
    }

    #[test]
    fn update_in_open_sent_is_fsm_error_5_1() {
        let mut fsm = open_sent();
        let a = fsm.handle(Event::UpdateReceived(OURS));
        assert_eq!(closes(&a), vec![(OURS, Some((5, 1)))]);
        assert_eq!(
            reasons(&a),
            vec![Reason::UnexpectedMessage {
                message: MessageKind::Update,
                state: OpenSent
            }]
        );
        assert_eq!(fsm.state(), Active);
    }

    #[test]
    fn update_in_open_confirm_is_fsm_error_5_2() {
        let mut fsm = open_confirm(HIGHER_ID);
        let a = fsm.handle(Event::UpdateReceived(OURS));
        assert_eq!(closes(&a), vec![(OURS, Some((5, 2)))]);
        assert!(!has_session_down(&a));
        assert_eq!(fsm.established(), None);
    }

    #[test]
    fn keepalive_and_route_refresh_before_established_are_fsm_errors() {
        let mut fsm = open_sent();
        let a = fsm.handle(Event::KeepaliveReceived(OURS));
        assert_eq!(closes(&a), vec![(OURS, Some((5, 1)))]);
        let mut fsm = open_sent();
        let a = fsm.handle(Event::RouteRefreshReceived(OURS, Family::Ipv4Unicast));
        assert_eq!(closes(&a), vec![(OURS, Some((5, 1)))]);
        let mut fsm = open_confirm(HIGHER_ID);
        let a = fsm.handle(Event::RouteRefreshReceived(OURS, Family::Ipv4Unicast));
        assert_eq!(closes(&a), vec![(OURS, Some((5, 2)))]);
    }

    #[test]
    fn a_second_open_is_an_fsm_error_for_the_state() {
        let mut fsm = open_confirm(HIGHER_ID);
        let a = fsm.handle(Event::OpenReceived(OURS, Ok(negotiated(HIGHER_ID, 90))));
        assert_eq!(closes(&a), vec![(OURS, Some((5, 2)))]);
        let mut fsm = established();
        let a = fsm.handle(Event::OpenReceived(OURS, Ok(negotiated(HIGHER_ID, 90))));
        assert_eq!(closes(&a), vec![(OURS, Some((5, 3)))]);
        assert!(has_session_down(&a));
    }

    // --- Established -----------------------------------------------------

    #[test]
    fn keepalive_and_update_restart_the_hold_timer() {
        let mut fsm = established();
        let restart = vec![Action::StartTimer(Timer::Hold(OURS), secs(90))];
        assert_eq!(fsm.handle(Event::KeepaliveReceived(OURS)), restart);
        assert_eq!(fsm.handle(Event::UpdateReceived(OURS)), restart);
        assert_eq!(fsm.state(), Established);
    }

    #[test]
    fn keepalive_timer_sends_a_keepalive_and_rearms() {
        for mut fsm in [open_confirm(HIGHER_ID), established()] {
            assert_eq!(
                fsm.handle(Event::KeepaliveTimerExpired(OURS)),
                vec![
                    Action::SendKeepalive(OURS),
                    Action::StartTimer(Timer::Keepalive(OURS), secs(30)),
                ]
            );
        }
    }

    #[test]
    fn route_refresh_in_established_goes_to_the_rib() {
        let mut fsm = established();
        assert_eq!(
            fsm.handle(Event::RouteRefreshReceived(OURS, Family::Ipv6Unicast)),
            vec![Action::RouteRefresh {
                generation: 1,
                family: Family::Ipv6Unicast
            }]
        );
    }

    #[test]
    fn hold_time_zero_runs_no_hold_or_keepalive_timer() {
        let mut fsm = open_sent();
        let neg = negotiated(HIGHER_ID, 0);
        let a = fsm.handle(Event::OpenReceived(OURS, Ok(neg.clone())));
        assert_eq!(
            a,
            vec![
                Action::UseCodec(OURS, neg.codec),
                Action::SendKeepalive(OURS),
                Action::StopTimer(Timer::Hold(OURS)),
            ]
        );
        let a = fsm.handle(Event::KeepaliveReceived(OURS));
        assert_eq!(
            a,
            vec![Action::SessionUp {
                conn: OURS,
                generation: 1,
                negotiated: neg
            }]
        );
        assert_eq!(fsm.handle(Event::KeepaliveReceived(OURS)), vec![]);
        assert_eq!(fsm.handle(Event::UpdateReceived(OURS)), vec![]);
    }

    #[test]
    fn manual_stop_notifies_every_connection_and_goes_idle() {
        let mut fsm = established();
        fsm.handle(Event::TcpAccepted(THEIRS)); // refused: Established
        let nf = cease(n::cease::ADMINISTRATIVE_SHUTDOWN);
        let a = fsm.handle(Event::ManualStop(nf.clone()));
        assert_eq!(closes(&a), vec![(OURS, Some((6, 2)))]);
        assert!(a.contains(&Action::SessionDown { generation: 1 }));
        assert_eq!(retry_timer(&a), None);
        assert!(!a.contains(&Action::Connect));
        assert_eq!(fsm.state(), Idle);
    }

    #[test]
    fn stop_while_waiting_to_retry_stops_the_timer() {
        let mut fsm = started(false);
        fsm.handle(Event::TcpConnectFailed("refused".into()));
        let a = fsm.handle(Event::ManualStop(cease(n::cease::PEER_DECONFIGURED)));
        assert_eq!(a, vec![Action::StopTimer(Timer::ConnectRetry)]);
        assert_eq!(fsm.state(), Idle);
    }

    #[test]
    fn stopped_peer_refuses_connections() {
        let mut fsm = Fsm::new(config(false), 1);
        let a = fsm.handle(Event::TcpAccepted(THEIRS));
        assert_eq!(closes(&a), vec![(THEIRS, Some((6, 5)))]);
        assert_eq!(fsm.state(), Idle);
    }

    #[test]
    fn events_of_a_closed_connection_are_ignored() {
        let mut fsm = established();
        fsm.handle(Event::HoldTimerExpired(OURS));
        for ev in [
            Event::KeepaliveReceived(OURS),
            Event::UpdateReceived(OURS),
            Event::HoldTimerExpired(OURS),
            Event::KeepaliveTimerExpired(OURS),
            Event::TcpClosed(OURS, "closed".into()),
        ] {
            assert_eq!(fsm.handle(ev), vec![]);
        }
        assert_eq!(fsm.state(), Active);
    }

    // --- Collisions (RFC 4271 §6.8, RFC 6286 §2.3) -----------------------

    #[test]
    fn collision_winner_compares_ids_then_asns() {
        let w = collision_winner;
        assert_eq!(w(OUR_ID, 1, LOWER_ID, 2), Side::Ours);
        assert_eq!(w(OUR_ID, 2, HIGHER_ID, 1), Side::Theirs);
        // Compared as numbers, not octet by octet as text.
        assert_eq!(
            w(
                Ipv4Addr::new(10, 0, 0, 10),
                1,
                Ipv4Addr::new(10, 0, 0, 9),
                1
            ),
            Side::Ours
        );
        assert_eq!(w(OUR_ID, 65010, OUR_ID, 65002), Side::Ours);
        assert_eq!(w(OUR_ID, 65001, OUR_ID, 65002), Side::Theirs);
    }

    /// Both connections in OpenSent; the peer's OPEN arrives on theirs.
    fn both_open_sent() -> Fsm {
        let mut fsm = open_sent();
        fsm.handle(Event::TcpAccepted(THEIRS));
        assert_eq!(fsm.state(), OpenSent);
        fsm
    }

    #[test]
    fn collision_in_open_sent_higher_local_id_keeps_ours() {
        let mut fsm = both_open_sent();
        let a = fsm.handle(Event::OpenReceived(THEIRS, Ok(negotiated(LOWER_ID, 90))));
        assert_eq!(closes(&a), vec![(THEIRS, Some((6, 7)))]);
        assert_eq!(reasons(&a), vec![Reason::Collision { kept: Side::Ours }]);
        assert_eq!(retry_timer(&a), None);
        assert_eq!(fsm.state(), OpenSent);
        // Ours carries on.
        fsm.handle(Event::OpenReceived(OURS, Ok(negotiated(LOWER_ID, 90))));
        fsm.handle(Event::KeepaliveReceived(OURS));
        assert_eq!(fsm.established(), Some((OURS, 1)));
    }

    #[test]
    fn collision_in_open_sent_lower_local_id_keeps_theirs() {
        let mut fsm = both_open_sent();
        let a = fsm.handle(Event::OpenReceived(THEIRS, Ok(negotiated(HIGHER_ID, 90))));
        assert_eq!(closes(&a), vec![(OURS, Some((6, 7)))]);
        assert_eq!(reasons(&a), vec![Reason::Collision { kept: Side::Theirs }]);
        assert_eq!(fsm.state(), OpenConfirm);
        fsm.handle(Event::KeepaliveReceived(THEIRS));
        assert_eq!(fsm.established(), Some((THEIRS, 1)));
    }

    #[test]
    fn collision_in_open_confirm_higher_local_id_keeps_ours() {
        let mut fsm = open_confirm(LOWER_ID);
        fsm.handle(Event::TcpAccepted(THEIRS));
        let a = fsm.handle(Event::OpenReceived(THEIRS, Ok(negotiated(LOWER_ID, 90))));
        assert_eq!(closes(&a), vec![(THEIRS, Some((6, 7)))]);
        assert_eq!(fsm.state(), OpenConfirm);
        fsm.handle(Event::KeepaliveReceived(OURS));
        assert_eq!(fsm.established(), Some((OURS, 1)));
    }

    #[test]
    fn collision_in_open_confirm_lower_local_id_keeps_theirs() {
        let mut fsm = open_confirm(HIGHER_ID);
        fsm.handle(Event::TcpAccepted(THEIRS));
        let a = fsm.handle(Event::OpenReceived(THEIRS, Ok(negotiated(HIGHER_ID, 90))));
        assert_eq!(closes(&a), vec![(OURS, Some((6, 7)))]);
        assert_eq!(fsm.state(), OpenConfirm);
        // A late KEEPALIVE on the closed connection does nothing.
        assert_eq!(fsm.handle(Event::KeepaliveReceived(OURS)), vec![]);
        fsm.handle(Event::KeepaliveReceived(THEIRS));
        assert_eq!(fsm.established(), Some((THEIRS, 1)));
    }

    #[test]
    fn collision_with_equal_router_ids_keeps_the_larger_asns_connection() {
        // We have the larger ASN: ours stays.
        let mut cfg = config(false);
        cfg.local_asn = 65100;
        let mut fsm = Fsm::new(cfg, 1);
        fsm.handle(Event::ManualStart);
        fsm.handle(Event::TcpConnected(OURS));
        fsm.handle(Event::TcpAccepted(THEIRS));
        let a = fsm.handle(Event::OpenReceived(THEIRS, Ok(negotiated(OUR_ID, 90))));
        assert_eq!(closes(&a), vec![(THEIRS, Some((6, 7)))]);
        // The peer has the larger ASN: theirs stays.
        let mut fsm = both_open_sent();
        let a = fsm.handle(Event::OpenReceived(THEIRS, Ok(negotiated(OUR_ID, 90))));
        assert_eq!(closes(&a), vec![(OURS, Some((6, 7)))]);
        assert_eq!(fsm.state(), OpenConfirm);
    }

    #[test]
    fn a_connection_while_established_gets_cease_7_and_the_session_stays() {
        let mut fsm = established();
        let a = fsm.handle(Event::TcpAccepted(THEIRS));
        assert_eq!(closes(&a), vec![(THEIRS, Some((6, 7)))]);
        assert_eq!(reasons(&a), vec![Reason::CollisionWithEstablished]);
        assert!(!has_session_down(&a));
        assert_eq!(fsm.established(), Some((OURS, 1)));
        // Our own connect completing late is refused the same way.
        let mut fsm = started(false);
        fsm.handle(Event::TcpAccepted(THEIRS));
        fsm.handle(Event::OpenReceived(THEIRS, Ok(negotiated(HIGHER_ID, 90))));
        fsm.handle(Event::KeepaliveReceived(THEIRS));
        let a = fsm.handle(Event::TcpConnected(OURS));
        assert_eq!(closes(&a), vec![(OURS, Some((6, 7)))]);
        assert_eq!(fsm.established(), Some((THEIRS, 1)));
    }

    #[test]
    fn establishing_closes_the_other_connection_still_in_open_sent() {
        let mut fsm = open_confirm(HIGHER_ID);
        fsm.handle(Event::TcpAccepted(THEIRS));
        let a = fsm.handle(Event::KeepaliveReceived(OURS));
        assert_eq!(closes(&a), vec![(THEIRS, Some((6, 7)))]);
        assert_eq!(fsm.established(), Some((OURS, 1)));
    }

    #[test]
    fn a_newer_connection_from_the_peer_replaces_a_stale_one() {
        // Issue 12: a stale connection in OpenSent from the peer's address;
        // the real peer (lower BGP ID) connects again and must get through.
        let mut fsm = started(true);
        fsm.handle(Event::TcpAccepted(THEIRS));
        let a = fsm.handle(Event::TcpAccepted(3));
        assert_eq!(closes(&a), vec![(THEIRS, Some((6, 7)))]);
        assert_eq!(reasons(&a), vec![Reason::Replaced]);
        assert!(a.contains(&Action::SendOpen(3)));
        fsm.handle(Event::OpenReceived(3, Ok(negotiated(LOWER_ID, 90))));
        fsm.handle(Event::KeepaliveReceived(3));
        assert_eq!(fsm.established(), Some((3, 1)));
    }

    #[test]
    fn update_before_established_does_not_block_the_next_session() {
        // Issue 12 end to end: OPEN then UPDATE before KEEPALIVE gets 5/2
        // and a close; the peer's next connection comes up.
        let mut fsm = started(true);
        fsm.handle(Event::TcpAccepted(THEIRS));
        fsm.handle(Event::OpenReceived(THEIRS, Ok(negotiated(LOWER_ID, 90))));
        let a = fsm.handle(Event::UpdateReceived(THEIRS));
        assert_eq!(closes(&a), vec![(THEIRS, Some((5, 2)))]);
        assert_eq!(fsm.state(), Active);
        fsm.handle(Event::TcpAccepted(3));
        fsm.handle(Event::OpenReceived(3, Ok(negotiated(LOWER_ID, 90))));
        fsm.handle(Event::KeepaliveReceived(3));
        assert_eq!(fsm.established(), Some((3, 1)));
    }
}
