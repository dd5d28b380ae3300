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

use std::collections::HashMap;
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
    /// `maxPrefixes.restartAfter`: start again after a prefix-limit teardown.
    Restart,
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
    /// RFC 9687: nothing could be written on this connection for the send
    /// hold time (the peer stopped reading).
    SendHoldTimerExpired(ConnId),
    /// More is queued for this connection than it may hold
    /// (`connection::SEND_QUEUE_LIMIT`): the peer reads too slowly.
    SendQueueFull(ConnId),
    /// Our answer to the peer's ROUTE-REFRESH for this family is written.
    RouteRefreshWritten(ConnId, Family),
    /// The peer has more prefixes of `family` than `limit` (`maxPrefixes`,
    /// action teardown): close with Cease/1 and stay down, for
    /// `restart_after` if given, else until [`Event::Reset`].
    PrefixLimitExceeded {
        family: Family,
        limit: u32,
        restart_after: Option<Duration>,
    },
    /// `kroute peer NAME reset`: a stopped peer starts again; a running one
    /// closes its connections with Cease/4 and connects again.
    Reset,
    RestartTimerExpired,
    /// An interface peer's link went down or its neighbour changed
    /// (BGP unnumbered): close without a NOTIFICATION (it could not be
    /// delivered) and stay Idle until [`Event::ManualStart`].
    LinkDown,
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
            | Event::TcpAccepted(_)
            | Event::PrefixLimitExceeded { .. }
            | Event::Reset
            | Event::RestartTimerExpired
            | Event::LinkDown => None,
            Event::HoldTimerExpired(id)
            | Event::KeepaliveTimerExpired(id)
            | Event::TcpClosed(id, _)
            | Event::OpenReceived(id, _)
            | Event::KeepaliveReceived(id)
            | Event::UpdateReceived(id)
            | Event::NotificationReceived(id, _)
            | Event::RouteRefreshReceived(id, _)
            | Event::DecodeError(id, _, _)
            | Event::SendHoldTimerExpired(id)
            | Event::SendQueueFull(id)
            | Event::RouteRefreshWritten(id, _) => Some(*id),
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
    /// The peer asks for our routes again (RFC 2918): send them, then
    /// report [`Event::RouteRefreshWritten`]. At most one per family is in
    /// flight.
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
    /// RFC 9687: the peer did not read what we sent for the send hold time.
    SendHoldTimerExpired,
    /// The peer reads so slowly that its queue of unwritten UPDATEs is full.
    SendQueueFull,
    /// `maxPrefixes` teardown (RFC 4486 Cease/1).
    PrefixLimit {
        family: Family,
        limit: u32,
        restart_after: Option<Duration>,
    },
    /// `kroute peer NAME reset`.
    Reset,
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
    /// The interface of an unnumbered peer went down, or the neighbour on
    /// it changed.
    LinkDown,
}

/// A NOTIFICATION in words, with its RFC 8203 shutdown communication.
pub fn describe(nf: &Notification) -> String {
    // Newer than the codec's table of codes.
    let mut s = if nf.code == SEND_HOLD_TIMER_EXPIRED {
        format!("send hold timer expired ({}/{})", nf.code, nf.subcode)
    } else {
        n::describe(nf.code, nf.subcode)
    };
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
            Reason::SendHoldTimerExpired => f.write_str(
                "send hold timer expired: the peer did not read for too long (RFC 9687)",
            ),
            Reason::PrefixLimit {
                family,
                limit,
                restart_after,
            } => {
                write!(
                    f,
                    "maximum prefixes exceeded: more than {limit} {family} prefixes; "
                )?;
                match restart_after {
                    Some(d) => write!(f, "restarting after {} s", d.as_secs()),
                    None => f.write_str(
                        "down until `kroute peer NAME reset` or a reload that changes the peer",
                    ),
                }
            }
            Reason::Reset => f.write_str("reset by the operator"),
            Reason::SendQueueFull => {
                f.write_str("the peer reads too slowly: too much queued for it (out of resources)")
            }
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
            Reason::LinkDown => f.write_str("the interface went down or its neighbour changed"),
        }
    }
}

fn cease(subcode: u8) -> Notification {
    Notification::new(n::CEASE, subcode, vec![])
}

/// RFC 4486 §4: Cease/1 "Maximum Number of Prefixes Reached" MAY carry
/// AFI (2 octets), SAFI (1) and the prefix upper bound (4).
pub fn max_prefixes_notification(family: Family, limit: u32) -> Notification {
    let mut data = Vec::with_capacity(7);
    data.extend_from_slice(&family.afi().to_be_bytes());
    data.push(family.safi());
    data.extend_from_slice(&limit.to_be_bytes());
    Notification::new(n::CEASE, n::cease::MAXIMUM_PREFIXES_REACHED, data)
}

/// RFC 9687 §3: the error code of "Send Hold Timer Expired" (subcode 0).
pub const SEND_HOLD_TIMER_EXPIRED: u8 = 8;

/// Where the answer to a ROUTE-REFRESH for one family stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refresh {
    /// Being sent.
    InFlight,
    /// Being sent, and asked for again meanwhile: send once more after.
    Again,
}

/// What the FSM did with ROUTE-REFRESH messages, over the peer's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshCounts {
    /// For a family the session did not negotiate (RFC 2918 §4: ignored).
    pub ignored: u64,
    /// Folded into an answer already being sent.
    pub coalesced: u64,
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
    /// The Established session's ROUTE-REFRESH answers in flight.
    refreshes: HashMap<Family, Refresh>,
    refresh_counts: RefreshCounts,
    /// Why the peer is stopped, when it stopped itself (prefix limit).
    held_down: Option<Reason>,
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
            refreshes: HashMap::new(),
            refresh_counts: RefreshCounts::default(),
            held_down: None,
        }
    }

    pub fn refresh_counts(&self) -> RefreshCounts {
        self.refresh_counts
    }

    /// Why the peer stays down by itself (a `maxPrefixes` teardown), while
    /// it does.
    pub fn held_down(&self) -> Option<&Reason> {
        self.held_down.as_ref()
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
            (_, Event::ManualStart) => self.start(&mut out),
            // Only a hold-down with a restart time has a timer that runs.
            (_, Event::RestartTimerExpired) => {
                if matches!(
                    self.held_down,
                    Some(Reason::PrefixLimit {
                        restart_after: Some(_),
                        ..
                    })
                ) {
                    self.start(&mut out);
                }
            }
            (_, Event::Reset) => {
                if self.started {
                    let nf = cease(n::cease::ADMINISTRATIVE_RESET);
                    for c in [self.ours.take(), self.theirs.take()].into_iter().flatten() {
                        self.finish(c, Some(nf.clone()), Reason::Reset, &mut out);
                    }
                } else {
                    out.push(Action::StopTimer(Timer::Restart));
                    self.start(&mut out);
                }
            }
            (
                _,
                Event::PrefixLimitExceeded {
                    family,
                    limit,
                    restart_after,
                },
            ) => {
                if self.started {
                    let reason = Reason::PrefixLimit {
                        family,
                        limit,
                        restart_after,
                    };
                    let nf = max_prefixes_notification(family, limit);
                    self.stop(Some(nf), reason.clone(), &mut out);
                    self.held_down = Some(reason);
                    if let Some(after) = restart_after {
                        out.push(Action::StartTimer(Timer::Restart, after));
                    }
                }
            }
            (_, Event::ManualStop(nf)) => {
                self.stop(Some(nf.clone()), Reason::Stopped(nf), &mut out)
            }
            (_, Event::LinkDown) => self.stop(None, Reason::LinkDown, &mut out),
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
            (Some(Phase::Established), Event::RouteRefreshReceived(id, family)) => {
                self.refresh_requested(id, family, &mut out)
            }
            (Some(Phase::Established), Event::RouteRefreshWritten(_, family)) => {
                if self.refreshes.remove(&family) == Some(Refresh::Again) {
                    self.refreshes.insert(family, Refresh::InFlight);
                    out.push(Action::RouteRefresh {
                        generation: self.generation,
                        family,
                    });
                }
            }
            // Only an Established session has answers in flight.
            (Some(_), Event::RouteRefreshWritten(..)) => {}
            (Some(_), Event::SendHoldTimerExpired(id)) => {
                let nf = Notification::new(SEND_HOLD_TIMER_EXPIRED, 0, vec![]);
                self.close(id, Some(nf), Reason::SendHoldTimerExpired, &mut out)
            }
            // RFC 4486: Cease/8, Out of Resources.
            (Some(_), Event::SendQueueFull(id)) => {
                let nf = cease(n::cease::OUT_OF_RESOURCES);
                self.close(id, Some(nf), Reason::SendQueueFull, &mut out)
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

    fn start(&mut self, out: &mut Vec<Action>) {
        if !self.started {
            self.started = true;
            self.held_down = None;
            self.connect_if_idle(out);
        }
    }

    /// Stopped (Idle): close every connection, with `nf` if given.
    fn stop(&mut self, nf: Option<Notification>, reason: Reason, out: &mut Vec<Action>) {
        self.started = false;
        self.connecting = false;
        for c in [self.ours.take(), self.theirs.take()].into_iter().flatten() {
            self.finish(c, nf.clone(), reason.clone(), out);
        }
        if std::mem::take(&mut self.retry_pending) {
            out.push(Action::StopTimer(Timer::ConnectRetry));
        }
    }

    /// RFC 2918 §4: a ROUTE-REFRESH for a family the session did not
    /// negotiate is ignored. Otherwise at most one answer per family is in
    /// flight: a request while one is being sent is answered once more
    /// after it (what was already written may predate the request), and
    /// any further ones fold into that, so a peer streaming ROUTE-REFRESH
    /// costs at most two copies of the family's routes at a time.
    fn refresh_requested(&mut self, id: ConnId, family: Family, out: &mut Vec<Action>) {
        let negotiated = self
            .conn(id)
            .and_then(|c| c.negotiated.as_ref())
            .is_some_and(|n| n.families.contains(&family));
        if !negotiated {
            self.refresh_counts.ignored += 1;
            return;
        }
        match self.refreshes.get(&family) {
            None => {
                self.refreshes.insert(family, Refresh::InFlight);
                out.push(Action::RouteRefresh {
                    generation: self.generation,
                    family,
                });
            }
            Some(Refresh::InFlight) => {
                self.refreshes.insert(family, Refresh::Again);
            }
            Some(Refresh::Again) => self.refresh_counts.coalesced += 1,
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
                    negotiated.remote_asn,
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
        self.refreshes.clear();
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
mod tests;
