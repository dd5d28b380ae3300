//! The messages between the daemon's tasks, in one place.
//!
//! ```text
//! listener ──Incoming──▶ router task ──PeerCmd──▶ peer tasks
//! peer tasks ──RibEvent::{SessionUp, Updates, …}──▶ router task
//! peer tasks ──watch<PeerStatus>──▶ router task (read for `show neighbors`)
//! API task, /metrics, node state ──ApiCall { Request, Reply }──▶ router task ──Response──▶ them
//! signals ──RibEvent::{Reload, Shutdown}──▶ router task
//! BFD sessions ──RibEvent::Bfd──▶ router task ──BfdCmd──▶ BFD task
//! router task ──watch<Readiness>──▶ HTTP listener (`/readyz`)
//! ```
//!
//! The FIB side (`kernel::RouteChange`, `kernel::FibEvent`) is the kernel
//! crate's own contract. Every task module imports its messages from here,
//! so no task module needs to import another one to talk to it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use rib::PeerId;
use wire::{Family, Notification, Update};

/// The connection of an Established session: its addresses and the OPENs
/// as sent and as received (BMP Peer Up, RFC 7854 §4.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOpens {
    pub local: std::net::SocketAddr,
    pub remote: std::net::SocketAddr,
    pub sent: wire::Open,
    pub received: wire::Open,
}

/// How an Established session ended (BMP Peer Down reasons, RFC 7854
/// §4.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// We closed it with this NOTIFICATION.
    SentNotification(Notification),
    /// The peer closed it with this NOTIFICATION.
    ReceivedNotification(Notification),
    /// We closed it without a NOTIFICATION.
    LocalClosed,
    /// The connection closed under us (no NOTIFICATION).
    RemoteClosed,
}

/// A connection the listener accepted; the router hands it to the peer
/// task configured for `remote`. `slot` keeps the listener from queueing
/// another connection from `remote` until this one is handed on. On a
/// channel of its own, which the router task looks at every turn before
/// the sessions' events: on theirs, a session's handshake waited behind
/// every other session's queued UPDATEs (a thousand nodes coming up at
/// once).
#[derive(Debug)]
pub struct Incoming {
    pub stream: TcpStream,
    pub remote: IpAddr,
    /// A link-local connection on a BGP unnumbered peer's interface.
    pub interface: Option<String>,
    pub slot: crate::pending::PendingSlot,
}

/// What the router task (the RIB's one owner) is told.
pub enum RibEvent {
    SessionUp {
        peer: PeerId,
        generation: u64,
        info: rib::SessionInfo,
        /// The AS in the peer's OPEN (learned for `asn: external`).
        remote_asn: u32,
        /// The peer's graceful restart capability, if it sent one.
        graceful_restart: Option<PeerGracefulRestart>,
        /// The connection's addresses and OPENs (BMP Peer Up).
        opens: Option<Box<SessionOpens>>,
    },
    SessionDown {
        peer: PeerId,
        generation: u64,
        /// The session ended in a way that lets a graceful restart peer
        /// keep its routes with us (RFC 4724 §4.2): the TCP connection
        /// failed or the hold timer ran out, no NOTIFICATION said otherwise.
        may_restart: bool,
        /// How it ended (BMP Peer Down).
        end: SessionEnd,
    },
    Updates {
        peer: PeerId,
        generation: u64,
        updates: Vec<Update>,
    },
    RouteRefresh {
        peer: PeerId,
        generation: u64,
        family: Family,
    },
    /// The session of this generation has room for its next UPDATEs: the
    /// writer wrote what it was given (the pull model, `rib::Rib::pull`).
    SendReady {
        peer: PeerId,
        generation: u64,
    },
    /// `kroute watch`: the API task asks for the stream of session and
    /// route events ([`Request::Watch`]).
    Watch {
        reply: oneshot::Sender<tokio::sync::broadcast::Receiver<WatchEvent>>,
    },
    /// A BFD session's state changed (`crate::bfd`). `teardown`: it went
    /// from Up to Down on a detected failure, so the BGP session to
    /// `address` must close now (RFC 5882 §4.3).
    Bfd {
        address: IpAddr,
        state: BfdState,
        teardown: bool,
        /// The peer's last C bit (RFC 5880 §4.1, RFC 5882 §4.3.2).
        control_plane_independent: bool,
    },
    /// SIGHUP: re-read the config file.
    Reload,
    /// Kubernetes mode: apply a config rendered from the cluster as a
    /// reload does (only what changed); `done` gets what was done, in
    /// words, or why nothing was.
    ApplyConfig {
        config: Box<crate::config::Config>,
        done: oneshot::Sender<Result<Vec<String>, String>>,
    },
    /// Kubernetes mode: the prefixes read from the API (pod CIDRs, Service
    /// addresses), originated besides the config's own.
    ClusterOriginations(Vec<rib::Origination>),
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// The peer's graceful restart capability, as it sent it (RFC 4724 §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerGracefulRestart {
    /// The peer has just restarted (R bit).
    pub restarting: bool,
    /// Seconds we should wait for it to come back after a session loss.
    pub restart_time: u16,
    /// The families it listed: their routes are kept when the session is
    /// lost (RFC 4724 §4.2).
    pub families: Vec<Family>,
    /// Of those, the families whose forwarding state it kept over its
    /// last restart (F bit set).
    pub forwarding_preserved: Vec<Family>,
}

/// What the router task tells a peer task.
///
/// The channel has no length limit because the router task must never
/// wait for a peer task (a peer task waits for the router task); what
/// bounds it is the protocol: a `Send` only goes to a session that said it
/// has room ([`RibEvent::SendReady`]), so at most one batch is in flight
/// per session, and every other command answers one event (a connection
/// accepted, a refresh answered, a limit hit, an operator's reset or
/// reload).
pub enum PeerCmd {
    /// UPDATEs for the session of this generation (stale ones are dropped):
    /// one batch per [`RibEvent::SendReady`], besides the End-of-RIB
    /// markers held back for graceful restart.
    Send {
        generation: u64,
        /// The batch shared by the members of the peer's update group at
        /// the same place (encoded once per ASN encoding); before `updates`.
        shared: Option<std::sync::Arc<rib::SharedUpdates>>,
        /// The shared UPDATEs (indices, ascending) not for this peer.
        skip: Vec<usize>,
        updates: Vec<Update>,
    },
    /// A TCP connection the listener accepted from this peer's address.
    Incoming(TcpStream),
    /// Close with this NOTIFICATION and end the task.
    Stop(Notification),
    /// The daemon exits for a graceful restart (RFC 4724 §4.1): end the
    /// task and close the connections without a NOTIFICATION, so the peer
    /// keeps our routes while we restart.
    ExitForRestart,
    /// Sent after the `Send`s that answer the peer's ROUTE-REFRESH for
    /// `family` (RFC 2918): the answer is complete.
    RefreshAnswered { generation: u64, family: Family },
    /// `maxPrefixes` (action teardown): the peer sent more than `limit`
    /// prefixes of `family`.
    PrefixLimitExceeded {
        family: Family,
        limit: u32,
        restart_after: Option<std::time::Duration>,
    },
    /// `kroute peer NAME reset`.
    Reset,
}

/// RFC 4271 §8.2.2 states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SessionState {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionState::Idle => "Idle",
            SessionState::Connect => "Connect",
            SessionState::Active => "Active",
            SessionState::OpenSent => "OpenSent",
            SessionState::OpenConfirm => "OpenConfirm",
            SessionState::Established => "Established",
        })
    }
}

/// A BFD session's state (RFC 5880 §4.1 "Sta", §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BfdState {
    AdminDown,
    Down,
    Init,
    Up,
}

impl fmt::Display for BfdState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BfdState::AdminDown => "AdminDown",
            BfdState::Down => "Down",
            BfdState::Init => "Init",
            BfdState::Up => "Up",
        })
    }
}

/// A peer session's state as its peer task publishes it through a `watch`
/// channel (one writer, any number of readers); `show neighbors` reads it
/// (see `api::NeighborView`).
#[derive(Debug, Clone)]
pub struct PeerStatus {
    pub state: SessionState,
    pub established_at: Option<Instant>,
    pub last_error: Option<String>,
    pub remote_router_id: Option<Ipv4Addr>,
    /// The AS in the peer's last OPEN.
    pub remote_asn: Option<u32>,
    /// Negotiated hold time.
    pub hold_time: Option<u16>,
    /// Families both sides announced.
    pub families: Vec<Family>,
    pub local_address: Option<IpAddr>,
    /// Times the session left Established.
    pub flaps: u32,
    pub last_change: SystemTime,
    /// Why the peer stays down by itself (`maxPrefixes`), while it does.
    pub held_down: Option<String>,
    /// ROUTE-REFRESH messages for families the session did not negotiate.
    pub refresh_ignored: u64,
    /// ROUTE-REFRESH messages folded into an answer already being sent.
    pub refresh_coalesced: u64,
    /// The graceful restart capability of the last Established session.
    pub graceful_restart: Option<PeerGracefulRestart>,
    /// RFC 8950 (IPv4 over IPv6 next hops) negotiated in the last
    /// Established session.
    pub extended_next_hop: bool,
    /// An interface peer (BGP unnumbered): the neighbour's link-local
    /// address, once learned.
    pub neighbour: Option<IpAddr>,
    /// BGP messages in and out over all of the peer's connections; the
    /// session's reader and writer count, `/metrics` reads.
    pub messages: Arc<MessageCounters>,
}

/// BGP messages counted by a peer's connections since the peer was
/// configured (they only grow; a reset session keeps counting). The
/// readers count what they decode, the peer task what it hands a writer.
#[derive(Debug, Default)]
pub struct MessageCounters {
    received: AtomicU64,
    sent: AtomicU64,
    notifications_received: AtomicU64,
    notifications_sent: AtomicU64,
}

/// A [`MessageCounters`] reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageCounts {
    pub received: u64,
    pub sent: u64,
    pub notifications_received: u64,
    pub notifications_sent: u64,
}

impl MessageCounters {
    /// One message decoded.
    pub fn received(&self, notification: bool) {
        self.received.fetch_add(1, Ordering::Relaxed);
        if notification {
            self.notifications_received.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `n` messages handed to a connection's writer.
    pub fn sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }

    /// A NOTIFICATION handed to a connection's writer.
    pub fn sent_notification(&self) {
        self.sent(1);
        self.notifications_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn read(&self) -> MessageCounts {
        MessageCounts {
            received: self.received.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            notifications_received: self.notifications_received.load(Ordering::Relaxed),
            notifications_sent: self.notifications_sent.load(Ordering::Relaxed),
        }
    }
}

impl PeerStatus {
    /// A peer that has not tried to connect yet.
    pub fn new() -> PeerStatus {
        PeerStatus {
            state: SessionState::Idle,
            established_at: None,
            last_error: None,
            remote_router_id: None,
            remote_asn: None,
            hold_time: None,
            families: Vec::new(),
            local_address: None,
            flaps: 0,
            last_change: SystemTime::now(),
            held_down: None,
            refresh_ignored: 0,
            refresh_coalesced: 0,
            graceful_restart: None,
            extended_next_hop: false,
            neighbour: None,
            messages: Arc::default(),
        }
    }
}

impl Default for PeerStatus {
    fn default() -> PeerStatus {
        PeerStatus::new()
    }
}

/// Whether the daemon is ready (`/readyz`): its config is loaded (in
/// Kubernetes mode: rendered) and the initial convergence is over (every
/// peer up and its End-of-RIB in, or the deadline passed). One writer, the
/// router task; readers through a `watch` channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Not yet, and why.
    NotReady(String),
    Ready,
}

/// A request on the control API (one JSON line from a client), which the
/// API task forwards to the router task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "request")]
pub enum Request {
    Neighbors,
    Routes {
        prefix: Option<String>,
        peer: Option<String>,
        received: bool,
        advertised: bool,
        /// The routing domain's Loc-RIB (`--domain`); absent: the default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        domain: Option<String>,
    },
    Fib {
        prefix: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        domain: Option<String>,
    },
    Explain {
        prefix: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        domain: Option<String>,
    },
    /// `show domains`: the routing domains, their tables, rules and
    /// route counts.
    Domains,
    Reload,
    /// `show bfd`: the BFD sessions.
    Bfd,
    /// `/metrics`: every counter the router task can see (`MetricsView`).
    Metrics,
    /// `kroute peer NAME reset`: start a peer held down by `maxPrefixes`,
    /// or reset its session (Cease/4).
    ResetPeer {
        name: String,
    },
    /// `show neighbor NAME`: everything about one peer.
    Neighbor {
        name: String,
    },
    /// `show status`: the daemon as a whole.
    Status,
    /// `kroute peer NAME disable`: close the session with Cease/2
    /// (administrative shutdown, RFC 4486) and keep it down, reloads
    /// included, until `enable`.
    DisablePeer {
        name: String,
    },
    /// `kroute peer NAME enable`: undo `disable`.
    EnablePeer {
        name: String,
    },
    /// `kroute peer NAME refresh`: re-run import over the stored
    /// Adj-RIB-In and send the whole Adj-RIB-Out again, session kept.
    RefreshPeer {
        name: String,
    },
    /// `kroute watch`: answered with one line per event, as they happen,
    /// until the client closes the connection.
    Watch,
}

impl Request {
    /// Whether answering it changes nothing: such a request is answered
    /// even in the middle of long work; the others wait for its end.
    pub fn reads_only(&self) -> bool {
        match self {
            Request::Neighbors
            | Request::Routes { .. }
            | Request::Fib { .. }
            | Request::Explain { .. }
            | Request::Domains
            | Request::Bfd
            | Request::Metrics
            | Request::Neighbor { .. }
            | Request::Status => true,
            Request::Reload
            | Request::ResetPeer { .. }
            | Request::DisablePeer { .. }
            | Request::EnablePeer { .. }
            | Request::RefreshPeer { .. }
            | Request::Watch => false,
        }
    }
}

/// The router task's answer to a [`Request`], sent back to the client as is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Response {
    Ok(serde_json::Value),
    Error(String),
}

/// Where the router task sends its [`Response`].
pub type Reply = oneshot::Sender<Response>;

/// A control API request and where its answer goes. On a channel of its
/// own, not among the [`RibEvent`]s, so that the router task can answer
/// the read-only ones between the steps of long work (a full table's
/// withdrawal after a session loss): `show neighbors` says a session is
/// down while its routes are still leaving.
#[derive(Debug)]
pub struct ApiCall {
    pub request: Request,
    pub reply: Reply,
}

/// Where control API requests go (the router task's [`ApiCall`] channel).
pub type ApiSender = mpsc::Sender<ApiCall>;

/// One line of `kroute watch`: a session or route event as it happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "event",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum WatchEvent {
    /// A session came up (Established) or went down.
    Session {
        time_unix: u64,
        peer: String,
        state: SessionState,
        /// Why it went down, as `show neighbor` says it.
        #[serde(deserialize_with = "required_option")]
        reason: Option<String>,
    },
    /// The best route of a prefix changed as given to the kernel: its next
    /// hops, or none when it is withdrawn.
    Route {
        time_unix: u64,
        prefix: IpNet,
        next_hops: Vec<String>,
    },
    /// An operator's action on a peer (`kroute peer NAME ...`).
    Peer {
        time_unix: u64,
        peer: String,
        action: String,
    },
    /// The watcher read too slowly and this many events were dropped for
    /// it (the daemon never waits for a watcher).
    Lagged { missed: u64 },
}

/// An `Option` the daemon always writes (`null` for `None`): missing is an
/// error, as in the API's views.
fn required_option<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}
