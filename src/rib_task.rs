//! The router task: the one owner of the RIB and of the peer registry.
//!
//! Sessions send it what they hear ([`RibEvent`]); it runs the pure
//! [`rib::Rib`], then hands FIB changes to the kernel task and UPDATEs to
//! the sessions. The API and reloads come through the same channel, so all
//! routing state changes in one place, one message at a time.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use kernel::{Fib, FibChange, FibEvent};
use rib::{FibStatus, Outputs, PeerId, Rib, RouteQuery, Table};
use wire::notification as n;
use wire::{Family, Notification, Prefix, Update};

use crate::api::views::{BfdState, ExplainView, FibEntryView, NeighborView, ReloadView};
use crate::bfd::BfdHandle;
use crate::config::{self, Config};
use crate::domains::{rib_config, Domains};
use crate::events::{
    ApiCall, Incoming, PeerCmd, PeerGracefulRestart, PeerStatus, Reply, Request, Response, RibEvent,
};
use crate::listener::{access_list, AccessList};
use crate::session::PeerTask;

/// One import problem log line per peer and problem this often.
const IMPORT_LOG_WINDOW: Duration = Duration::from_secs(60);
mod coalesce;
mod graceful_restart;
use coalesce::{Coalescer, Verdict};
use graceful_restart::{Deferral, GrPeer, StaleWait};
mod operator;

struct PeerEntry {
    cfg: config::Peer,
    cmd: mpsc::UnboundedSender<PeerCmd>,
    status: watch::Receiver<PeerStatus>,
    /// Generation of the Established session, if any.
    generation: Option<u64>,
    /// Families whose End-of-RIB we still wait for (initial convergence).
    awaiting_eor: HashSet<Family>,
    up_since: Option<Instant>,
    /// `maxPrefixes` teardown asked for this session: its further UPDATEs
    /// are dropped until it is down.
    limit_hit: bool,
    /// Families over their `maxPrefixes` limit in warning mode (logged once
    /// per crossing).
    over_limit: HashSet<Family>,
    /// The BFD session's last state, with `bfd` configured.
    bfd: Option<BfdState>,
    /// The peer's graceful restart capability in its last session.
    graceful_restart: Option<PeerGracefulRestart>,
    /// While the RIB keeps stale paths of this peer: when they go.
    stale: Option<StaleWait>,
    /// Our End-of-RIB markers for this session, held back until the
    /// initial convergence (graceful restart, RFC 4724 §4.1).
    deferred_eor: Vec<Update>,
    /// The session's writer has room for a batch of UPDATEs: set when it
    /// comes up and by [`RibEvent::SendReady`], cleared by each batch.
    ready: bool,
    /// The session's last batch left nothing pending: its next changes
    /// wait for its update group's next round ([`coalesce`]). False when
    /// it comes up, so it gets its table at once.
    caught_up: bool,
    /// `asn: external`: the AS of the peer's last OPEN.
    learned_asn: Option<u32>,
    /// An interface peer (BGP unnumbered): its neighbour's link-local
    /// address in its last session, the RIB's peer address from then on
    /// (the decision's lowest-address tie-break, RFC 4271 §9.1.2.2 (g)).
    /// The FIB's `next_hops_down` goes by address alone, so it only gets
    /// this address when no other session's paths use it
    /// (`Rib::next_hops_only_via`): routers often use one link-local
    /// (fe80::1) on every link, and another uplink's routes via the same
    /// address must not move.
    learned_address: Option<IpAddr>,
    /// A dynamic neighbor: the listen range it came in through.
    dynamic: Option<Dynamic>,
}

/// Where a dynamic neighbor came from (see [`crate::dynamic`]).
struct Dynamic {
    range: ipnet::IpNet,
    /// When its entry was made (or its last session ended): an entry
    /// without a session this long after is removed.
    since: Instant,
}

/// A dynamic neighbor with no session (its OPEN refused, its connection
/// lost before Established, its graceful restart wait over) is removed
/// this long after it came or lost its session.
const DYNAMIC_IDLE: Duration = Duration::from_secs(5);

impl PeerEntry {
    fn gr_peer<'a>(&'a self, id: PeerId, router: &config::Router) -> GrPeer<'a> {
        GrPeer {
            id,
            name: &self.cfg.name,
            capability: self.graceful_restart.as_ref(),
            ours: self.cfg.graceful_restart_or(router),
        }
    }
}

/// RFC 9687 §4: the send hold time, by default the larger of 8 minutes
/// and twice the hold time.
fn send_hold_time(p: &config::Peer, hold_time: u16) -> Duration {
    let default = 480.max(2 * u64::from(hold_time));
    Duration::from_secs(p.send_hold_time.map_or(default, u64::from))
}

/// A peer that never sends End-of-RIB counts as converged after this.
const EOR_GRACE: Duration = Duration::from_secs(5);

pub struct RouterTask {
    config_path: PathBuf,
    config: Config,
    rib: Rib,
    fib: Fib,
    peers: BTreeMap<PeerId, PeerEntry>,
    next_peer_id: PeerId,
    events: mpsc::Sender<RibEvent>,
    /// The control API's requests ([`ApiCall`]).
    api: mpsc::Receiver<ApiCall>,
    /// Requests that change state, taken off `api` during long work
    /// ([`RouterTask::answer_reads`]): handled, in order, after it.
    api_deferred: std::collections::VecDeque<ApiCall>,
    started: Instant,
    initial_sync_done: bool,
    /// Set when the events since the last send were only
    /// [`RibEvent::SendReady`]: nothing in the RIBs changed, so only these
    /// peers can have something new to send (a scan of every peer per
    /// SendReady made each route change cost N² at N sessions).
    send_only: Option<Vec<PeerId>>,
    /// Burst coalescing: the update groups' rounds, and when the next one
    /// a held-back session waits for is due.
    coalescer: Coalescer,
    /// We restart with graceful restart (routes of a previous run were in
    /// the kernel): the R bit until then (RFC 4724 §4.1), else None.
    restarting_until: Option<Instant>,
    /// While we restart: the FIB changes held until the initial
    /// convergence (the selection deferral, RFC 4724 §4.1).
    deferral: Option<Deferral>,
    /// What we last gave the RIB to originate (interface addresses change).
    originated: Vec<rib::Origination>,
    /// Kubernetes mode: what the API says to originate (pod CIDRs, Service
    /// addresses), set by the Kubernetes task.
    cluster_originated: Vec<rib::Origination>,
    /// Kubernetes mode: the config comes from the cluster, not a file.
    from_cluster: bool,
    /// The peers the listener lets in, republished on reload.
    access: watch::Sender<AccessList>,
    /// Rate limit of the import problem log (treat-as-withdraw, attribute
    /// discard, families not negotiated).
    import_log: rib::ImportLog,
    /// The BFD task, told the peers with `bfd` on start and reload.
    bfd: BfdHandle,
    /// `/readyz`: set Ready at the end of the initial convergence.
    readiness: Option<watch::Sender<crate::events::Readiness>>,
    /// Peers `kroute peer NAME disable` keeps down (by name, so that a
    /// reload does not bring them back).
    disabled: std::collections::BTreeSet<String>,
    /// When the running config was loaded (`show status`).
    config_loaded: std::time::SystemTime,
    /// `kroute watch`: session and route events, to every watcher.
    watchers: tokio::sync::broadcast::Sender<crate::api::views::WatchEvent>,
    /// Dynamic neighbors refused over their range's limit.
    over_limit: crate::dynamic::OverLimit,
    /// BMP (RFC 7854): what the collectors are told.
    bmp: crate::bmp::Bmp,
    /// The routing domains besides the default one (`domains:`).
    domains: Domains,
}

/// The BFD sessions `c` asks for: one per peer with `bfd`.
fn bfd_peers(c: &Config) -> Vec<crate::bfd::BfdPeer> {
    c.peers
        .iter()
        .filter_map(|p| {
            let b = p.bfd?;
            Some(crate::bfd::BfdPeer {
                name: p.name.clone(),
                address: p.address,
                local_address: p.local_address,
                multihop: p.bfd_multihop(),
                timers: crate::bfd::fsm::Timers {
                    interval: Duration::from_millis(u64::from(b.interval)),
                    multiplier: b.multiplier,
                },
            })
        })
        .collect()
}

/// The RIB's view of peer `p`; `learned`: the AS of its last OPEN, used
/// when its `asn` is a kind (`external`). Before any OPEN an `external`
/// peer has no AS and no session: nothing is exported to it or imported
/// from it, so the stand-in only has to be some AS other than ours.
/// `address`: an interface peer's learned neighbour address.
fn peer_config(
    p: &config::Peer,
    local_asn: u32,
    learned: Option<u32>,
    address: Option<IpAddr>,
) -> rib::PeerConfig {
    let remote_asn = p
        .asn
        .known(local_asn)
        .or(learned)
        .unwrap_or(if local_asn == 1 { 2 } else { 1 });
    rib::PeerConfig {
        name: p.name.clone(),
        address: address.unwrap_or(p.address),
        remote_asn,
        families: p.families.clone(),
        allow_as_in: p.allow_as_in,
        next_hop_self: p.next_hop_self,
        route_reflector_client: p.route_reflector_client,
        enforce_first_as: p.enforce_first_as,
        import: p.import.clone(),
        export: p.export.clone(),
    }
}

/// Our graceful restart capability (RFC 4724 §3), when enabled. On a
/// restart (`restarting_until`: the previous run's routes were still in
/// the kernel, so its forwarding state survived it) the F bit is set for
/// every family and the R bit on sessions up before the end of the
/// selection deferral; on a fresh start (boot, or after a clean exit that
/// removed our routes) neither: there is no forwarding state to keep.
fn local_graceful_restart(
    gr: &config::GracefulRestart,
    restarting_until: Option<Instant>,
) -> Option<crate::session::open::LocalGracefulRestart> {
    gr.enabled
        .then_some(crate::session::open::LocalGracefulRestart {
            restart_time: gr.restart_time,
            restarting_until,
            forwarding_preserved: restarting_until.is_some(),
        })
}

fn session_config(
    c: &Config,
    p: &config::Peer,
    restarting_until: Option<Instant>,
) -> crate::session::SessionConfig {
    use crate::session::open::LocalOpen;
    use crate::session::socket::SocketOptions;
    crate::session::SessionConfig {
        name: p.name.clone(),
        remote: std::net::SocketAddr::new(p.address, p.port),
        remote_asn: p.asn,
        local: LocalOpen {
            asn: c.router.asn,
            router_id: c.router.router_id,
            hold_time: p.hold_time_or(&c.router),
            families: p.families.clone(),
            extended_next_hop: p.extended_next_hop(),
            graceful_restart: local_graceful_restart(
                &p.graceful_restart_or(&c.router),
                restarting_until,
            ),
        },
        send_hold: send_hold_time(p, p.hold_time_or(&c.router)),
        passive: p.passive,
        socket: SocketOptions {
            local_address: p.local_address,
            ttl: p.ttl(c.router.asn),
            min_ttl: p.min_ttl(),
            password: p.password.clone(),
        },
        connect_retry: Duration::from_secs(u64::from(c.router.connect_retry)),
        next_hop_ipv4: p.next_hop_ipv4,
        next_hop_ipv6: p.next_hop_ipv6,
        interface: p.interface.clone(),
    }
}

/// The prefixes we originate: static ones and the addresses of the named
/// interfaces as host routes.
pub fn originations(c: &Config) -> Vec<rib::Origination> {
    originations_in(c, None)
}

/// [`originations`] of the `advertise[]` entries naming routing domain
/// `domain` (None: those naming none, for the default domain).
pub fn originations_in(c: &Config, domain: Option<&str>) -> Vec<rib::Origination> {
    let mut out = Vec::new();
    for a in c.advertise.iter().filter(|a| a.domain.as_deref() == domain) {
        let mut prefixes: Vec<Prefix> = a.prefixes.clone();
        for ifname in &a.interfaces {
            for addr in crate::ifaddrs::of_interface(ifname) {
                if addr.is_loopback() {
                    continue;
                }
                prefixes.push(Prefix::from(addr));
            }
        }
        for prefix in prefixes {
            out.push(rib::Origination {
                prefix,
                communities: a.communities.clone(),
                large_communities: a.large_communities.clone(),
                local_pref: a.local_pref,
            });
        }
    }
    out
}

/// Prefixes decided again per step when a peer goes down.
const PEER_DOWN_STEP: usize = 16 * 1024;

/// Prefixes per batch of UPDATEs handed to a session (`Rib::pull`): a
/// few hundred KiB encoded for a typical table, at most 4096 octets each.
const SEND_BATCH: usize = 4096;

/// Route changes after which the RIB hands its outputs on while it drains
/// queued events (UPDATEs wait in the Adj-RIB-Out for `Rib::pull`).
const FLUSH_AT: usize = 16 * 1024;

/// Route changes that go to an idle FIB before the drain of queued events
/// ends (see `RouterTask::hand_fib_early`).
const EAGER_FIB: usize = 256;

/// Further FIB events taken with the one the select picked: 16 write
/// steps' confirmations, about 64k routes, a few ms of RIB lookups.
const FIB_EVENTS_PER_TURN: usize = 16;

impl RouterTask {
    pub fn new(
        config_path: PathBuf,
        config: Config,
        fib: Fib,
        events: mpsc::Sender<RibEvent>,
        access: watch::Sender<AccessList>,
        bfd: BfdHandle,
        api: mpsc::Receiver<ApiCall>,
    ) -> RouterTask {
        let mut rib = Rib::new(rib_config(&config));
        // The FIB answers every change it writes (FibEvent::RoutesInstalled
        // or RouteFailed): a route is "installed" once the kernel has it.
        rib.set_fib_confirms(true);
        // UPDATEs wait in each peer's Adj-RIB-Out until its session has
        // room (`send_to_ready_peers`).
        rib.set_pull_exports(true);
        let started = Instant::now();
        let previous = fib.previous_run_routes();
        let restarting = config.graceful_restart_enabled() && config.kernel.install && previous > 0;
        let deferral_time = Duration::from_secs(u64::from(
            config.router.graceful_restart.selection_deferral_time,
        ));
        if restarting {
            info!(
                routes = previous,
                selection_deferral_time = deferral_time.as_secs(),
                "graceful restart: restarting with the previous run's routes in the kernel (R and F bits set); they stay untouched until End-of-RIB from every peer"
            );
        }
        let domains = Domains::none(config.kernel.protocol);
        RouterTask {
            bmp: crate::bmp::Bmp::new(config.router.router_id, config.router.asn),
            domains,
            config_path,
            config,
            rib,
            fib,
            peers: BTreeMap::new(),
            next_peer_id: 1,
            events,
            api,
            api_deferred: std::collections::VecDeque::new(),
            started,
            initial_sync_done: false,
            send_only: None,
            coalescer: Coalescer::default(),
            restarting_until: restarting.then(|| started + deferral_time),
            deferral: restarting.then(Deferral::default),
            originated: Vec::new(),
            cluster_originated: Vec::new(),
            from_cluster: false,
            access,
            import_log: rib::ImportLog::new(IMPORT_LOG_WINDOW),
            bfd,
            readiness: None,
            disabled: std::collections::BTreeSet::new(),
            config_loaded: std::time::SystemTime::now(),
            watchers: tokio::sync::broadcast::channel(Self::WATCH_BACKLOG).0,
            over_limit: crate::dynamic::OverLimit::default(),
        }
    }

    /// The routing domains (`domains:`), started by the daemon. Routes a
    /// previous run left in a domain's table make this a restart too
    /// (graceful restart), as those in the default one do.
    pub fn with_domains(mut self, domains: Domains) -> RouterTask {
        let previous: usize = domains
            .list
            .values()
            .map(|d| d.fib.previous_run_routes())
            .sum();
        let c = &self.config;
        if self.restarting_until.is_none()
            && previous > 0
            && c.graceful_restart_enabled()
            && c.kernel.install
        {
            let deferral =
                Duration::from_secs(u64::from(c.router.graceful_restart.selection_deferral_time));
            info!(
                routes = previous,
                "graceful restart: restarting with the previous run's routes in the domains' tables (R and F bits set)"
            );
            self.restarting_until = Some(self.started + deferral);
            self.deferral = Some(Deferral::default());
        }
        self.domains = domains;
        let config = self.config.clone();
        self.domains.apply_leaks(&config, &mut self.rib);
        self
    }

    /// The domain of peer `peer` (None: the default domain).
    fn domain_of(&self, peer: PeerId) -> Option<&str> {
        self.peers.get(&peer).and_then(|e| e.cfg.domain.as_deref())
    }

    /// The RIB peer `peer`'s routes are decided in.
    fn rib_of(&self, peer: PeerId) -> &Rib {
        self.domains.rib_ref(&self.rib, self.domain_of(peer))
    }

    /// Kubernetes mode: the config is applied by the Kubernetes task
    /// ([`RibEvent::ApplyConfig`]); there is no file to reload.
    pub fn config_from_cluster(mut self) -> RouterTask {
        self.from_cluster = true;
        self
    }

    /// Publish readiness (`/readyz`) on `tx`: Ready once the initial
    /// convergence is over.
    pub fn with_readiness(mut self, tx: watch::Sender<crate::events::Readiness>) -> RouterTask {
        self.readiness = Some(tx);
        self
    }

    fn add_peer(&mut self, p: &config::Peer) -> PeerId {
        let id = self.next_peer_id;
        self.next_peer_id += 1;
        let cfg = peer_config(p, self.config.router.asn, None, None);
        self.domains
            .rib_mut(&mut self.rib, p.domain.as_deref())
            .add_peer(id, cfg);
        let (cmd, status) = if self.disabled.contains(&p.name) {
            Self::disabled_peer()
        } else {
            PeerTask::spawn(
                id,
                session_config(&self.config, p, self.restarting_until),
                self.events.clone(),
            )
        };
        self.peers.insert(
            id,
            PeerEntry {
                cfg: p.clone(),
                cmd,
                status,
                generation: None,
                awaiting_eor: HashSet::new(),
                up_since: None,
                limit_hit: false,
                over_limit: HashSet::new(),
                bfd: p.bfd.map(|_| BfdState::Down),
                graceful_restart: None,
                stale: None,
                deferred_eor: Vec::new(),
                ready: false,
                caught_up: false,
                learned_asn: None,
                learned_address: None,
                dynamic: None,
            },
        );
        id
    }

    /// A connection from `remote`, which is no configured peer's: a new
    /// dynamic neighbor if its listen range has room, else it is closed
    /// (dropping `stream` closes it). The listener let in only addresses
    /// in a range, but a reload may have removed it since.
    fn incoming_dynamic(&mut self, stream: tokio::net::TcpStream, remote: IpAddr) {
        let ranges = crate::dynamic::ranges(&self.config);
        let Some(range) = crate::dynamic::range_for(ranges, remote).cloned() else {
            info!(%remote, "connection from an address that is not a configured peer nor in a listen range: closed");
            return;
        };
        let members = self
            .peers
            .values()
            .filter(|e| e.dynamic.as_ref().is_some_and(|d| d.range == range.prefix))
            .count();
        if members >= range.limit as usize {
            if let Some(refused) = self.over_limit.refused(range.prefix, Instant::now()) {
                warn!(
                    %remote,
                    range = %range.prefix,
                    limit = range.limit,
                    refused,
                    "dynamic neighbor refused: its listen range is at its limit (connection closed)"
                );
            }
            return;
        }
        let p = crate::dynamic::peer_for(&range, remote);
        info!(
            peer = %p.name,
            range = %range.prefix,
            template = %range.peer.name,
            dynamic_peers = members + 1,
            limit = range.limit,
            "dynamic neighbor: connection accepted, peer added"
        );
        let id = self.add_peer(&p);
        let e = self.peers.get_mut(&id).expect("just added");
        e.dynamic = Some(Dynamic {
            range: range.prefix,
            since: Instant::now(),
        });
        let _ = e.cmd.send(PeerCmd::Incoming(stream));
    }

    /// Take dynamic neighbor `id` out of the registry and the RIB (with
    /// its routes), ending its task (with Cease `subcode` if it still has
    /// a session).
    fn remove_dynamic(&mut self, id: PeerId, subcode: u8, why: &str, out: &mut Outputs) {
        let Some(e) = self.peers.remove(&id) else {
            return;
        };
        self.bmp.peer_removed(id);
        let _ = e.cmd.send(PeerCmd::Stop(Notification {
            code: n::CEASE,
            subcode,
            data: vec![],
        }));
        let (rib, out) = self
            .domains
            .rib_out(&mut self.rib, out, e.cfg.domain.as_deref());
        rib.remove_peer(id, out);
        info!(peer = %e.cfg.name, "dynamic neighbor removed: {why}");
        self.watch_peer(&e.cfg.name, "removed");
    }

    /// Dynamic neighbors without a session for [`DYNAMIC_IDLE`] leave.
    fn sweep_dynamic(&mut self, out: &mut Outputs) {
        use crate::events::SessionState;
        let idle: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, e)| {
                e.dynamic
                    .as_ref()
                    .is_some_and(|d| d.since.elapsed() >= DYNAMIC_IDLE)
                    && e.generation.is_none()
                    && e.stale.is_none()
                    && matches!(
                        e.status.borrow().state,
                        SessionState::Idle | SessionState::Active
                    )
            })
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            self.remove_dynamic(id, n::cease::PEER_DECONFIGURED, "no session", out);
        }
    }

    /// Check the peer's Adj-RIB-In against its `maxPrefixes`. Returns true
    /// when the session is being torn down.
    fn check_prefix_limit(&mut self, peer: PeerId) -> bool {
        let Some(e) = self.peers.get_mut(&peer) else {
            return false;
        };
        let Some(mp) = &e.cfg.max_prefixes else {
            return false;
        };
        for family in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
            let Some(limit) = mp.limit_of(family) else {
                continue;
            };
            let received = self
                .domains
                .rib_ref(&self.rib, e.cfg.domain.as_deref())
                .received_in(peer, family);
            if received <= limit as usize {
                e.over_limit.remove(&family);
                continue;
            }
            match mp.action {
                config::LimitAction::Warning => {
                    if e.over_limit.insert(family) {
                        warn!(peer = %e.cfg.name, %family, received, limit, "maximum prefixes exceeded (maxPrefixes action warning: session kept)");
                    }
                }
                config::LimitAction::Teardown => {
                    warn!(peer = %e.cfg.name, %family, received, limit, "maximum prefixes exceeded: closing the session (Cease/1)");
                    e.limit_hit = true;
                    let _ = e.cmd.send(PeerCmd::PrefixLimitExceeded {
                        family,
                        limit,
                        restart_after: mp.restart_after.map(|s| Duration::from_secs(u64::from(s))),
                    });
                    return true;
                }
            }
        }
        false
    }

    /// Hands the outputs on. Waits while the FIB's queue is full (see
    /// `kernel::Fib::apply`): the FIB never waits for this task, so this
    /// wait always ends.
    async fn flush(&mut self, mut out: Outputs) {
        let fib = std::mem::take(&mut out.fib);
        self.hand_to_fib(fib).await;
        // The RIB keeps the two lists disjoint.
        if !out.unwatch_nexthops.is_empty() {
            self.fib.unwatch_nexthops(out.unwatch_nexthops);
        }
        if !out.watch_nexthops.is_empty() {
            self.fib.watch_nexthops(out.watch_nexthops);
        }
        for (peer, report) in &out.import_reports {
            self.log_import(*peer, report);
        }
        // The RIB keeps UPDATEs for `pull` (pull model): none are here.
        debug_assert!(out.updates.is_empty());
        self.flush_domains().await;
        self.send_to_ready_peers();
    }

    /// The route changes to the FIB (held instead while a restart defers
    /// selection), after the operator's `watch`.
    async fn hand_to_fib(&mut self, fib: Vec<FibChange>) {
        self.watch_routes(&fib);
        match &mut self.deferral {
            Some(held) => held.hold(fib),
            None => {
                let handle = self.fib.clone();
                self.apply_answering(&handle, fib).await;
            }
        }
    }

    /// While the FIB worker has no batch waiting, the route changes made so
    /// far go to it now rather than when the drain of queued events ends:
    /// its kernel writes then overlap the RIB's work on the rest of a burst
    /// (a churn burst of 5000 prefixes is read in a few events; the FIB
    /// started writing only after the RIB had decided all of them). It
    /// never waits for the FIB's queue, and what else the outputs hold
    /// keeps its order: the FIB takes next hops to watch after the routes
    /// in `flush` too.
    async fn hand_fib_early(&mut self, out: &mut Outputs) {
        if out.fib.len() >= EAGER_FIB && self.deferral.is_none() && self.fib.nothing_queued() {
            let fib = std::mem::take(&mut out.fib);
            self.hand_to_fib(fib).await;
        }
    }

    /// Each Established session with room gets its next batch of UPDATEs
    /// from its Adj-RIB-Out: a slow peer's changes wait there (last state
    /// wins), and no peer waits for another. A session that had caught up
    /// waits for its update group's next round (burst coalescing,
    /// [`coalesce`]).
    fn send_to_ready_peers(&mut self) {
        let now = Instant::now();
        // A round that held-back sessions wait for has come: look at every
        // session, whatever the events were.
        let round_due = self.coalescer.take_due(now);
        let only = self.send_only.take().filter(|_| !round_due);
        let candidates: Vec<PeerId> = match only {
            Some(mut only) => {
                only.sort_unstable();
                only.dedup();
                only
            }
            None => {
                self.coalescer.forget_quiet(now);
                self.peers.keys().copied().collect()
            }
        };
        let mut ready: Vec<PeerId> = Vec::new();
        for id in candidates {
            let Some(e) = self.peers.get(&id) else {
                continue;
            };
            if !e.ready || e.generation.is_none() {
                continue;
            }
            let domain = e.cfg.domain.as_deref();
            let rib = self.domains.rib_ref(&self.rib, domain);
            if !rib.has_pending(id) {
                continue;
            }
            if e.caught_up {
                if let Some((gid, members)) = rib.update_group_of(id) {
                    let verdict = self.coalescer.caught_up_member((domain, gid), members, now);
                    if let Verdict::Hold(_) = verdict {
                        continue;
                    }
                }
            }
            ready.push(id);
        }
        for peer in ready {
            let domain = self.domain_of(peer).map(str::to_string);
            let rib = self.domains.rib_mut(&mut self.rib, domain.as_deref());
            let pulled = rib.pull(peer, SEND_BATCH);
            let caught_up = !rib.has_pending(peer);
            let (shared, skip) = (pulled.shared, pulled.skip);
            let mut updates = pulled.updates;
            let defer = self.defers_end_of_rib(peer);
            let Some(e) = self.peers.get_mut(&peer) else {
                continue;
            };
            let Some(generation) = e.generation else {
                continue;
            };
            e.caught_up = caught_up;
            if defer {
                let (eor, rest) = updates.into_iter().partition(|u| u.end_of_rib().is_some());
                e.deferred_eor.extend::<Vec<Update>>(eor);
                updates = rest;
            }
            if shared.is_some() || !updates.is_empty() {
                e.ready = false;
                let _ = e.cmd.send(PeerCmd::Send {
                    generation,
                    shared,
                    skip,
                    updates,
                });
            }
            // After their UPDATEs, on the same queue.
            for family in pulled.refreshed {
                let _ = e.cmd.send(PeerCmd::RefreshAnswered { generation, family });
            }
        }
    }

    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<RibEvent>,
        mut incoming: mpsc::Receiver<Incoming>,
        mut fib_events: mpsc::UnboundedReceiver<FibEvent>,
    ) {
        let peers = self.config.peers.clone();
        for p in &peers {
            self.add_peer(p);
        }
        self.bfd.configure(bfd_peers(&self.config));
        self.bmp.configure(&self.config.bmp);
        let mut out = Outputs::default();
        self.refresh_originations(&mut out);
        self.flush(out).await;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut domain_fib_events = self
            .domains
            .events
            .take()
            .expect("the router task runs once");
        loop {
            let mut out = Outputs::default();
            // Connections first, every turn (see `Incoming`).
            while let Ok(ev) = incoming.try_recv() {
                self.accept(ev);
            }
            tokio::select! {
                Some(ev) = incoming.recv() => self.accept(ev),
                ev = events.recv() => {
                    let Some(ev) = ev else { return };
                    let mut only = Vec::new();
                    let mut note = |ev: &RibEvent| {
                        if let RibEvent::SendReady { peer, .. } = ev {
                            only.push(*peer);
                        }
                    };
                    let mut touched = !matches!(ev, RibEvent::SendReady { .. });
                    note(&ev);
                    if let Some(done) = self.handle(ev, &mut out).await {
                        self.flush(out).await;
                        self.shutdown().await;
                        let _ = done.send(());
                        return;
                    }
                    self.hand_fib_early(&mut out).await;
                    // Drain what else is queued before flushing, so the FIB
                    // (unless idle: `hand_fib_early`) and the peers get big
                    // batches under load; but flush
                    // every FLUSH_AT route changes, so the batches in
                    // flight stay small (draining 256 events of a full
                    // table at once built 26 MB batches, and several were
                    // in flight to the FIB at the peak of memory).
                    for _ in 0..256 {
                        match events.try_recv() {
                            Ok(ev) => {
                                touched |= !matches!(ev, RibEvent::SendReady { .. });
                                note(&ev);
                                if let Some(done) = self.handle(ev, &mut out).await {
                                    self.flush(out).await;
                                    self.shutdown().await;
                                    let _ = done.send(());
                                    return;
                                }
                                if out.fib.len() >= FLUSH_AT {
                                    self.flush(std::mem::take(&mut out)).await;
                                } else {
                                    self.hand_fib_early(&mut out).await;
                                }
                            }
                            Err(_) => break,
                        }
                    }
                    if !touched {
                        self.send_only = Some(only);
                    }
                }
                Some(call) = self.api.recv() => self.api_call(call, &mut out).await,
                Some(ev) = fib_events.recv() => {
                    self.fib_event(ev, &mut out);
                    // With the others queued: a loaded router wins this
                    // branch about once per turn, while the FIB confirms
                    // a write step (up to 4k routes) every few
                    // milliseconds; taken one a turn, the confirmations
                    // of a full table piled up (22 MB at the peak of
                    // memory under heaptrack).
                    for _ in 0..FIB_EVENTS_PER_TURN {
                        let Ok(ev) = fib_events.try_recv() else { break };
                        self.fib_event(ev, &mut out);
                    }
                }
                // An update group's next round (burst coalescing): the
                // flush below sends it.
                _ = sleep_until(self.coalescer.due()) => {}
                Some((name, ev)) = domain_fib_events.recv() => self.domain_fib_event(&name, ev),
                _ = tick.tick() => {
                    self.check_initial_sync().await;
                    self.check_stale(&mut out);
                    self.sweep_dynamic(&mut out);
                    let (domains, rib, peers) = (&self.domains, &self.rib, &self.peers);
                    self.bmp.tick(&|id| {
                        domains.rib_ref(rib, peers.get(&id).and_then(|e| e.cfg.domain.as_deref()))
                    });
                    // `advertise.interfaces` follows address changes.
                    if self.config.advertise.iter().any(|a| !a.interfaces.is_empty()) {
                        self.refresh_originations(&mut out);
                    }
                }
            }
            // What long work above left waiting (see answer_reads), until
            // none is: a flush may defer more (`apply_answering`), and the
            // select above does not look at this queue.
            loop {
                while let Some(call) = self.api_deferred.pop_front() {
                    self.api_call(call, &mut out).await;
                }
                self.flush(std::mem::take(&mut out)).await;
                if self.api_deferred.is_empty() {
                    break;
                }
            }
        }
    }

    /// Hands a connection the listener accepted to the peer task of its
    /// address (or interface), or to a dynamic neighbour made for it.
    fn accept(&mut self, conn: Incoming) {
        let Incoming {
            stream,
            remote,
            interface,
            slot,
        } = conn;
        let target = match &interface {
            // BGP unnumbered: the peer of the interface it came in on.
            Some(ifname) => self
                .peers
                .values()
                .find(|e| e.cfg.interface.as_ref() == Some(ifname)),
            None => self
                .peers
                .values()
                .find(|e| e.cfg.address == remote && e.generation.is_none())
                .or_else(|| self.peers.values().find(|e| e.cfg.address == remote)),
        };
        match target {
            Some(e) => {
                let _ = e.cmd.send(PeerCmd::Incoming(stream));
            }
            None => self.incoming_dynamic(stream, remote),
        }
        // Handed on (or closed): the listener may queue the next one.
        drop(slot);
    }

    fn fib_event(&mut self, ev: FibEvent, out: &mut Outputs) {
        fib_event_to(&mut self.rib, ev, out);
    }

    /// An event of domain `name`'s FIB (none once the domain is gone).
    fn domain_fib_event(&mut self, name: &str, ev: FibEvent) {
        if let Some(d) = self.domains.list.get_mut(name) {
            fib_event_to(&mut d.rib, ev, &mut d.pending);
        }
    }

    /// Each domain's outputs to its FIB (the UPDATEs wait in its RIB for
    /// `send_to_ready_peers`); the domains a reload removed are emptied
    /// (their peers' withdrawals written) and stopped.
    async fn flush_domains(&mut self) {
        self.domains.run_leaks(&mut self.rib);
        let mut work = Vec::new();
        for (name, d) in self.domains.list.iter_mut() {
            work.push((name.clone(), d.fib.clone(), std::mem::take(&mut d.pending)));
        }
        let retired = std::mem::take(&mut self.domains.retired);
        for (name, fib, mut out) in work {
            let changes = std::mem::take(&mut out.fib);
            self.watch_routes(&changes);
            // Held with the default domain's while we restart (RFC 4724 §4.1).
            match &mut self.deferral {
                Some(held) => held.hold_in(&name, changes),
                None => self.apply_answering(&fib, changes).await,
            }
            if !out.unwatch_nexthops.is_empty() {
                fib.unwatch_nexthops(out.unwatch_nexthops);
            }
            if !out.watch_nexthops.is_empty() {
                fib.watch_nexthops(out.watch_nexthops);
            }
            for (peer, report) in &out.import_reports {
                self.log_import(*peer, report);
            }
        }
        for mut d in retired {
            if let Some(held) = &mut self.deferral {
                held.forget(&d.cfg.name);
            }
            let out = std::mem::take(&mut d.pending);
            d.fib.apply(out.fib).await;
            d.fib.flush().await;
            d.fib.shutdown().await;
            info!(domain = %d.cfg.name, table = d.cfg.table, "routing domain stopped");
        }
    }

    /// Give the RIB the prefixes to originate if they changed.
    fn refresh_originations(&mut self, out: &mut Outputs) {
        for d in self.domains.list.values_mut() {
            let now = originations_in(&self.config, Some(&d.cfg.name));
            if now != d.originated {
                info!(domain = %d.cfg.name, prefixes = now.len(), "originating into the domain");
                d.originated = now.clone();
                d.rib.set_originated(now, &mut d.pending);
            }
        }
        let mut now = originations(&self.config);
        now.extend(self.cluster_originated.iter().cloned());
        if now != self.originated {
            let mut shown: Vec<String> = now.iter().take(8).map(|o| o.prefix.to_string()).collect();
            if now.len() > 8 {
                shown.push(format!("and {} more", now.len() - 8));
            }
            info!(prefixes = now.len(), "originating {}", shown.join(" "));
            self.originated = now.clone();
            self.rib.set_originated(now, out);
        }
    }

    /// Graceful restart: end or enforce the waits for stale paths.
    fn check_stale(&mut self, out: &mut Outputs) {
        let now = Instant::now();
        for (id, e) in self.peers.iter_mut() {
            if let Some(wait) = e.stale {
                let (rib, out) = self
                    .domains
                    .rib_out(&mut self.rib, out, e.cfg.domain.as_deref());
                e.stale = graceful_restart::tick(rib, *id, &e.cfg.name, wait, now, out);
            }
        }
    }

    /// The note on a stale path of the peer named `name`, with time left.
    fn stale_note(&self, name: &str, now: Instant) -> Option<String> {
        let e = self.peers.values().find(|e| e.cfg.name == name)?;
        e.stale.map(|w| w.note(now))
    }

    /// RFC 4724 §4.1: after a restart, our End-of-RIB tells a helper peer
    /// to drop what we did not re-send; so it waits until we have learned
    /// our routes again (the initial convergence: End-of-RIB from every
    /// peer, or the deadline). Only with graceful restart on for the peer.
    fn defers_end_of_rib(&self, peer: PeerId) -> bool {
        !self.initial_sync_done
            && self
                .peers
                .get(&peer)
                .is_some_and(|e| e.cfg.graceful_restart_or(&self.config.router).enabled)
    }

    /// The initial convergence is over: send the End-of-RIB markers held
    /// back, after everything queued for the session.
    fn send_deferred_end_of_rib(&mut self) {
        for e in self.peers.values_mut() {
            let updates = std::mem::take(&mut e.deferred_eor);
            if let (Some(generation), false) = (e.generation, updates.is_empty()) {
                info!(peer = %e.cfg.name, "initial convergence: sending End-of-RIB");
                let _ = e.cmd.send(PeerCmd::Send {
                    generation,
                    shared: None,
                    skip: Vec::new(),
                    updates,
                });
            }
        }
    }

    /// The initial convergence: every peer up and its End-of-RIB in (or
    /// [`EOR_GRACE`] after it came up; not waited for from a peer that
    /// restarts itself), or `selectionDeferralTime` since the start. Then
    /// the FIB changes held while we restart go to the kernel, after them
    /// the previous run's leftovers are removed (the FIB writes in order),
    /// and our End-of-RIB goes to the peers.
    async fn check_initial_sync(&mut self) {
        if self.initial_sync_done {
            return;
        }
        let all_converged = self.peers.values().all(|p| {
            self.disabled.contains(&p.cfg.name)
                || p.generation.is_some()
                    && (p.awaiting_eor.is_empty()
                        || !graceful_restart::waits_for_end_of_rib(p.graceful_restart.as_ref())
                        || p.up_since.is_some_and(|t| t.elapsed() > EOR_GRACE))
        });
        let deadline = Duration::from_secs(u64::from(
            self.config.router.graceful_restart.selection_deferral_time,
        ));
        if all_converged || self.started.elapsed() > deadline {
            if let Some(held) = self.deferral.take() {
                info!(
                    all_peers_converged = all_converged,
                    routes = held.len(),
                    "graceful restart: selection deferral over; installing its result"
                );
                let (mut changes, domains) = held.release();
                loop {
                    let batch: Vec<_> = changes.by_ref().take(FLUSH_AT).collect();
                    if batch.is_empty() {
                        break;
                    }
                    self.fib.apply(batch).await;
                }
                for (name, changes) in domains {
                    let Some(d) = self.domains.list.get(&name) else {
                        continue;
                    };
                    for batch in changes.chunks(FLUSH_AT) {
                        d.fib.apply(batch.to_vec()).await;
                    }
                }
            }
            info!(
                all_peers_converged = all_converged,
                "initial convergence: removing routes a previous run left in the kernel that are no longer wanted"
            );
            self.fib.initial_sync_done();
            for d in self.domains.list.values() {
                d.fib.initial_sync_done();
            }
            self.initial_sync_done = true;
            if let Some(tx) = &self.readiness {
                tx.send_replace(crate::events::Readiness::Ready);
            }
            self.send_deferred_end_of_rib();
        }
    }

    /// Returns `Some(done)` when asked to shut down.
    async fn handle(
        &mut self,
        ev: RibEvent,
        out: &mut Outputs,
    ) -> Option<tokio::sync::oneshot::Sender<()>> {
        match ev {
            RibEvent::SessionUp {
                peer,
                generation,
                info,
                remote_asn,
                graceful_restart,
                opens,
            } => {
                if let Some(e) = self.peers.get_mut(&peer) {
                    // `asn: external`: the AS of this OPEN is the peer's
                    // from now on (first AS check, AS_PATH, eBGP rules).
                    let local_asn = self.config.router.asn;
                    let learned_asn = match e.cfg.asn.known(local_asn) {
                        None => Some(remote_asn),
                        Some(_) => e.learned_asn,
                    };
                    let learned_address = match &e.cfg.interface {
                        Some(_) => opens.as_ref().map(|o| o.remote.ip()),
                        None => None,
                    };
                    if (learned_asn, learned_address) != (e.learned_asn, e.learned_address) {
                        e.learned_asn = learned_asn;
                        e.learned_address = learned_address;
                        let cfg = peer_config(&e.cfg, local_asn, learned_asn, learned_address);
                        let (rib, dout) =
                            self.domains
                                .rib_out(&mut self.rib, out, e.cfg.domain.as_deref());
                        rib.set_peer_config(peer, cfg, dout);
                    }
                    if let Some(o) = &opens {
                        self.bmp.session_up(peer, &info.families, o);
                    }
                    e.generation = Some(generation);
                    e.awaiting_eor = info.families.iter().copied().collect();
                    e.up_since = Some(Instant::now());
                    e.limit_hit = false;
                    e.over_limit.clear();
                    e.graceful_restart = graceful_restart;
                    e.deferred_eor.clear();
                    e.ready = true;
                    e.caught_up = false;
                    let up = crate::events::SessionState::Established;
                    Self::watch_session(&self.watchers, &e.cfg.name, up, None);
                    let domain = e.cfg.domain.clone();
                    let (rib, out) = self.domains.rib_out(&mut self.rib, out, domain.as_deref());
                    if e.stale.is_some() {
                        let p = e.gr_peer(peer, &self.config.router);
                        e.stale = graceful_restart::session_back(rib, &p, &info.families, out);
                    }
                    rib.peer_up(peer, info, out);
                }
            }
            RibEvent::SessionDown {
                peer,
                generation,
                may_restart,
                end,
            } => {
                if let Some(e) = self.peers.get_mut(&peer) {
                    if e.generation == Some(generation) {
                        self.bmp.session_down(peer, &end);
                        let why = e.status.borrow().last_error.clone();
                        let down = crate::events::SessionState::Idle;
                        Self::watch_session(&self.watchers, &e.cfg.name, down, why);
                        e.generation = None;
                        e.ready = false;
                        e.up_since = None;
                        e.stale = None;
                        e.deferred_eor.clear();
                        let domain = e.cfg.domain.clone();
                        if may_restart {
                            let p = e.gr_peer(peer, &self.config.router);
                            let (rib, out) =
                                self.domains.rib_out(&mut self.rib, out, domain.as_deref());
                            if let Some(wait) = graceful_restart::session_lost(rib, &p, out) {
                                e.stale = wait;
                                // A dynamic neighbor stays while its routes
                                // are kept for it (RFC 4724 helper).
                                if let Some(d) = &mut e.dynamic {
                                    d.since = Instant::now();
                                }
                                return None;
                            }
                        }
                        self.withdraw_peer(peer, domain.as_deref(), false, out)
                            .await;
                        let dynamic = self.peers.get(&peer).is_some_and(|e| e.dynamic.is_some());
                        if dynamic {
                            self.remove_dynamic(
                                peer,
                                n::cease::PEER_DECONFIGURED,
                                "its session ended",
                                out,
                            );
                        }
                    }
                }
            }
            RibEvent::Updates {
                peer,
                generation,
                updates,
            } => {
                let e = self.peers.get_mut(&peer)?;
                if e.generation != Some(generation) || e.limit_hit {
                    return None;
                }
                let limited = e.cfg.max_prefixes.is_some();
                for u in updates {
                    if let Some(e) = self.peers.get_mut(&peer) {
                        if let Some(f) = u.end_of_rib() {
                            e.awaiting_eor.remove(&f);
                        }
                    }
                    // BMP: as received (pre-policy), then what import
                    // made of it (post-policy).
                    let copy = self.bmp.active().then(|| u.clone());
                    if let Some(c) = &copy {
                        self.bmp.received(peer, c);
                    }
                    let domain = self.domain_of(peer).map(str::to_string);
                    let (rib, dout) = self.domains.rib_out(&mut self.rib, out, domain.as_deref());
                    let report = rib.receive(peer, u, dout);
                    if let Some(c) = &copy {
                        self.bmp.imported(peer, c, rib);
                    }
                    self.log_import(peer, &report);
                    // Per UPDATE: the Adj-RIB-In exceeds the limit by at
                    // most one message's prefixes.
                    if limited && self.check_prefix_limit(peer) {
                        break;
                    }
                }
            }
            RibEvent::RouteRefresh {
                peer,
                generation,
                family,
            } => {
                if self.peers.get(&peer).and_then(|e| e.generation) == Some(generation) {
                    // Answered through `pull`, which says when it is done.
                    let domain = self.domain_of(peer).map(str::to_string);
                    let (rib, out) = self.domains.rib_out(&mut self.rib, out, domain.as_deref());
                    rib.route_refresh(peer, family, out);
                }
            }
            RibEvent::SendReady { peer, generation } => {
                if let Some(e) = self.peers.get_mut(&peer) {
                    if e.generation == Some(generation) {
                        e.ready = true;
                    }
                }
            }
            RibEvent::Bfd {
                address,
                state,
                teardown,
                control_plane_independent,
            } => {
                self.bfd_changed(address, state, teardown, control_plane_independent, out)
                    .await
            }
            RibEvent::Watch { reply } => {
                let _ = reply.send(self.watchers.subscribe());
            }
            RibEvent::Reload => {
                if let Err(e) = self.reload(out) {
                    error!("reload failed, still running the previous config: {e}");
                }
            }
            RibEvent::ApplyConfig { config, done } => {
                let result = self.apply_config(*config, out);
                if let Err(e) = &result {
                    error!("cluster config not applied, still running the previous one: {e}");
                }
                let _ = done.send(result);
            }
            RibEvent::ClusterOriginations(prefixes) => {
                self.cluster_originated = prefixes;
                self.refresh_originations(out);
            }
            RibEvent::Shutdown { done } => return Some(done),
        }
        None
    }

    /// One warn line per peer and problem per [`IMPORT_LOG_WINDOW`], with
    /// the number of the same suppressed since the last one.
    fn log_import(&mut self, peer: PeerId, report: &rib::ImportReport) {
        let now = Instant::now();
        for line in report.lines() {
            if let Some(suppressed) = self.import_log.admit(peer, &line, now) {
                let name = self.peers.get(&peer).map_or("?", |e| e.cfg.name.as_str());
                warn!(peer = %name, suppressed, "UPDATE {line}");
            }
        }
    }

    /// A BFD session changed state. On a detected failure (RFC 5882 §4.3)
    /// the BGP session closes with Cease/10 "BFD Down" (RFC 9384) and its
    /// routes leave the RIB and the kernel now, not when TCP notices: the
    /// peer's task is replaced (as on a reload that changes the session),
    /// and the new one connects again. Unless the peer's BFD shares fate
    /// with its control plane and its forwarding survives a restart of
    /// that (RFC 5882 §4.3.2, see `graceful_restart::bfd_down_keeps`):
    /// then the session closes without a NOTIFICATION and its routes stay
    /// stale, as graceful restart keeps them after a lost session.
    async fn bfd_changed(
        &mut self,
        address: IpAddr,
        state: BfdState,
        teardown: bool,
        control_plane_independent: bool,
        out: &mut Outputs,
    ) {
        let Some((&id, e)) = self
            .peers
            .iter_mut()
            .find(|(_, e)| e.cfg.address == address && e.cfg.bfd.is_some())
        else {
            return;
        };
        e.bfd = Some(state);
        if !teardown {
            return;
        }
        let keep = graceful_restart::bfd_down_keeps(
            e.graceful_restart.as_ref(),
            control_plane_independent,
        );
        if e.generation.is_some() && !keep.is_empty() {
            warn!(peer = %e.cfg.name, %address, families = ?keep, "BFD: peer down; its BFD shares fate with its control plane (C bit clear) and its forwarding survives a restart (F bit): closing the BGP session without a NOTIFICATION, its routes stay stale (graceful restart)");
            let _ = e.cmd.send(PeerCmd::ExitForRestart);
            self.bmp
                .session_down(id, &crate::events::SessionEnd::LocalClosed);
            let (cmd, status) = PeerTask::spawn(
                id,
                session_config(&self.config, &e.cfg, self.restarting_until),
                self.events.clone(),
            );
            (e.cmd, e.status) = (cmd, status);
            e.generation = None;
            e.up_since = None;
            e.deferred_eor.clear();
            let kept = {
                let p = e.gr_peer(id, &self.config.router);
                let (rib, out) = self
                    .domains
                    .rib_out(&mut self.rib, out, e.cfg.domain.as_deref());
                graceful_restart::bfd_down(rib, &p, &keep, out)
            };
            e.stale = kept.flatten();
            return;
        }
        let e = self.peers.remove(&id).expect("found above");
        warn!(peer = %e.cfg.name, %address, "BFD: peer down, closing the BGP session (Cease/10) and withdrawing its routes");
        let nf = Notification {
            code: n::CEASE,
            subcode: n::cease::BFD_DOWN,
            data: vec![],
        };
        self.bmp.peer_stopped(id, &nf);
        let _ = e.cmd.send(PeerCmd::Stop(nf));
        // Back in the registry at once, under a new id with a new session
        // task: `show neighbors` reports it down while the old id's table
        // leaves.
        let new = self.add_peer(&e.cfg);
        if let Some(n) = self.peers.get_mut(&new) {
            n.bfd = Some(state);
        }
        self.withdraw_peer(id, e.cfg.domain.as_deref(), true, out)
            .await;
    }

    /// Takes away everything peer `id` offered once its session is gone
    /// (lost, or closed because BFD declared the peer down). First the FIB
    /// moves what went via the next hops only this peer offered (its
    /// address, the IPv6 next hop it announced in MP_REACH_NLRI): a message
    /// per nexthop object, not per prefix (`kernel::Fib::next_hops_down`).
    /// Then the RIB withdraws its paths in steps of `PEER_DOWN_STEP`
    /// prefixes, each flushed, answering read-only requests in between, so
    /// a full table's withdrawal is never one list of changes nor a
    /// seconds-long wait for `show neighbors`. `forget` also removes the
    /// peer from the RIB (its entry was replaced by a new id).
    async fn withdraw_peer(
        &mut self,
        id: PeerId,
        domain: Option<&str>,
        forget: bool,
        out: &mut Outputs,
    ) {
        let lost = self
            .domains
            .rib_ref(&self.rib, domain)
            .next_hops_only_via(id);
        self.domains
            .fib_ref(&self.fib, domain)
            .next_hops_down(lost.clone());
        let mut down = self
            .domains
            .rib_mut(&mut self.rib, domain)
            .peer_down_start(id);
        loop {
            let (rib, dout) = self.domains.rib_out(&mut self.rib, out, domain);
            if !rib.peer_down_step(&mut down, PEER_DOWN_STEP, dout) {
                break;
            }
            // Flushes the domain's outputs too.
            self.flush(std::mem::take(out)).await;
            self.answer_reads();
            // A flush with room in the FIB's queue does not suspend this
            // task: without a yield the whole walk is one poll, and the
            // tasks it woke (the API connections it just answered sit in
            // this worker's LIFO slot, which other workers cannot steal)
            // wait for its end (5.6 s for one `show neighbors` at 1M).
            tokio::task::yield_now().await;
        }
        if forget {
            self.domains.rib_mut(&mut self.rib, domain).forget_peer(id);
        }
        self.flush(std::mem::take(out)).await;
        // Every change through those next hops is handed to the FIB: they
        // resolve as the kernel says again.
        self.domains
            .fib_ref(&self.fib, domain)
            .next_hops_settled(lost);
    }

    fn neighbors(&self) -> Vec<NeighborView> {
        let now = Instant::now();
        self.peers
            .iter()
            .map(|(id, e)| {
                let rib = self.rib_of(*id);
                let mut v = NeighborView::new(
                    &e.cfg,
                    &e.status.borrow(),
                    rib.peer_counters(*id),
                    rib.import_counters(*id),
                );
                v.bfd = e.bfd;
                v.dynamic = e.dynamic.as_ref().map(|d| crate::api::views::DynamicView {
                    range: d.range,
                    template: crate::dynamic::range_of(
                        crate::dynamic::ranges(&self.config),
                        d.range,
                    )
                    .map_or_else(String::new, |r| r.peer.name.clone()),
                });
                if let Some(gr) = &mut v.graceful_restart {
                    gr.stale_routes = rib.stale_count(*id);
                    gr.stale = e.stale.map(|w| w.note(now));
                }
                v
            })
            .collect()
    }

    /// `/metrics`: the counters of the peers, the RIB and the FIB, read
    /// from their owners now.
    fn metrics(&self) -> crate::api::views::MetricsView {
        use crate::api::views::{FamilyMetricsView, FibMetricsView, MetricsView, PeerMetricsView};
        MetricsView {
            peers: self
                .peers
                .iter()
                .map(|(id, e)| {
                    PeerMetricsView::new(
                        &e.cfg.name,
                        &e.status.borrow(),
                        self.rib_of(*id).peer_counters(*id),
                        self.rib_of(*id).import_counters(*id),
                    )
                })
                .collect(),
            // Every routing domain, labelled (the default one first).
            families: std::iter::once((config::DEFAULT_DOMAIN, &self.rib))
                .chain(self.domains.list.iter().map(|(n, d)| (n.as_str(), &d.rib)))
                .flat_map(|(domain, rib)| {
                    rib.family_counts()
                        .into_iter()
                        .map(move |(family, c)| FamilyMetricsView {
                            domain: domain.to_string(),
                            family,
                            prefixes: c.prefixes,
                            fib_installed: c.fib_installed,
                            fib_pending: c.fib_pending,
                            fib_failed: c.fib_failed,
                        })
                })
                .collect(),
            decision_runs: self.rib.decision_runs()
                + (self.domains.list.values())
                    .map(|d| d.rib.decision_runs())
                    .sum::<u64>(),
            fib: self.domains.list.values().fold(
                FibMetricsView::new(self.fib.counters()),
                |mut all, d| {
                    all.add(FibMetricsView::new(d.fib.counters()));
                    all
                },
            ),
            ranges: crate::dynamic::ranges(&self.config)
                .iter()
                .map(|r| crate::api::views::RangeMetricsView {
                    range: r.prefix,
                    peers: (self.peers.values())
                        .filter(|e| e.dynamic.as_ref().is_some_and(|d| d.range == r.prefix))
                        .count(),
                    limit: r.limit,
                    refused: self.over_limit.total(r.prefix),
                })
                .collect(),
        }
    }

    /// `--domain NAME`: the domain if it exists (None: the default).
    fn check_domain<'a>(&self, domain: Option<&'a str>) -> Result<Option<&'a str>, String> {
        match domain {
            Some(d) if !self.domains.list.contains_key(d) => {
                let known: Vec<&str> = self.domains.list.keys().map(String::as_str).collect();
                Err(format!(
                    "no routing domain named {d:?} (configured: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
            }
            d => Ok(d),
        }
    }

    /// `show domains`: the default domain, then each configured one.
    fn domain_views(&self) -> Vec<crate::api::views::DomainView> {
        let view = |name: &str, table: u32, rules: Vec<String>, rib: &Rib, domain: Option<&str>| {
            let counts = rib.family_counts();
            crate::api::views::DomainView {
                name: name.to_string(),
                table,
                rules,
                peers: self
                    .peers
                    .values()
                    .filter(|e| e.cfg.domain.as_deref() == domain)
                    .map(|e| e.cfg.name.clone())
                    .collect(),
                prefixes: counts.iter().map(|(_, c)| c.prefixes).sum(),
                fib_installed: counts.iter().map(|(_, c)| c.fib_installed).sum(),
                imports: Vec::new(),
            }
        };
        let mut out = vec![view(
            "default",
            self.config.kernel.table,
            Vec::new(),
            &self.rib,
            None,
        )];
        let rules = crate::domains::wanted_rules(&self.config);
        for (name, d) in &self.domains.list {
            let mine = rules
                .iter()
                .filter(|r| r.table == d.cfg.table)
                .map(ToString::to_string)
                .collect();
            let mut v = view(name, d.cfg.table, mine, &d.rib, Some(name));
            v.imports = d.import_views();
            out.push(v);
        }
        out
    }

    fn peer_id(&self, name: &str) -> Option<PeerId> {
        self.peers
            .iter()
            .find(|(_, e)| e.cfg.name == name)
            .map(|(id, _)| *id)
    }

    /// One control API request, in turn with the other events.
    async fn api_call(&mut self, call: ApiCall, out: &mut Outputs) {
        let ApiCall { request, reply } = call;
        // The next hops disable_peer takes down with the session (the
        // same list: nothing changes in between).
        let disabled = match &request {
            Request::DisablePeer { name } => self.peer_id(name).map(|id| {
                let domain = self.peers[&id].cfg.domain.clone();
                let lost = self
                    .domains
                    .rib_ref(&self.rib, domain.as_deref())
                    .next_hops_only_via(id);
                (lost, domain)
            }),
            _ => None,
        };
        self.api(request, reply, out);
        if let Some((lost, domain)) = disabled {
            // Its withdrawals handed over: see disable_peer.
            self.flush(std::mem::take(out)).await;
            self.domains
                .fib_ref(&self.fib, domain.as_deref())
                .next_hops_settled(lost);
        }
    }

    /// Between the steps of long work (a full table's withdrawal, which
    /// takes seconds at 1M routes): answers the read-only requests waiting
    /// now, and keeps the others for after it, in order
    /// (`api_deferred`). An operator (or a monitor) asking `show neighbors`
    /// during a failover learns the session is down at once, and sees the
    /// routes as far as their withdrawal has gone.
    fn answer_reads(&mut self) {
        while let Ok(call) = self.api.try_recv() {
            self.answer_or_defer(call);
        }
    }

    fn answer_or_defer(&mut self, call: ApiCall) {
        if call.request.reads_only() {
            let mut unused = Outputs::default();
            self.api(call.request, call.reply, &mut unused);
        } else {
            self.api_deferred.push_back(call);
        }
    }

    /// `fib.apply(changes)`, answering read-only requests while it waits
    /// for room in the FIB's queue, as between the steps of long work
    /// (`answer_reads`): the FIB worker can be in one kernel call for
    /// seconds (deleting a nexthop object that a million routes use, and
    /// the kernel then deletes the IPv6 ones one by one), and a session
    /// lost meanwhile must show as down at once.
    async fn apply_answering(&mut self, fib: &Fib, changes: Vec<FibChange>) {
        let apply = fib.apply(changes);
        tokio::pin!(apply);
        loop {
            tokio::select! {
                biased;
                () = &mut apply => return,
                Some(call) = self.api.recv() => self.answer_or_defer(call),
            }
        }
    }

    fn api(&mut self, request: Request, reply: Reply, out: &mut Outputs) {
        let json = |v: Result<serde_json::Value, serde_json::Error>| match v {
            Ok(v) => Response::Ok(v),
            Err(e) => Response::Error(e.to_string()),
        };
        let resp = match request {
            Request::Neighbors => json(serde_json::to_value(self.neighbors())),
            Request::Domains => json(serde_json::to_value(self.domain_views())),
            Request::Routes {
                prefix,
                peer,
                received,
                advertised,
                domain,
            } => {
                if let Err(e) = self.check_domain(domain.as_deref()) {
                    let _ = reply.send(Response::Error(e));
                    return;
                }
                let prefix = match prefix.as_deref().map(parse_prefix).transpose() {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = reply.send(Response::Error(e));
                        return;
                    }
                };
                let peer_id = match peer.as_deref() {
                    None => None,
                    Some(name) => match self.peer_id(name) {
                        Some(id) => Some(id),
                        None => {
                            let _ = reply.send(Response::Error(format!("no peer named {name:?}")));
                            return;
                        }
                    },
                };
                let table = if received {
                    Table::Received
                } else if advertised {
                    Table::Advertised
                } else {
                    Table::Loc
                };
                let rib = match peer_id {
                    // A peer's Adj-RIBs are in its domain's RIB.
                    Some(id) if domain.is_none() => self.rib_of(id),
                    _ => self.domains.rib_ref(&self.rib, domain.as_deref()),
                };
                let mut routes = rib.routes(&RouteQuery {
                    prefix,
                    peer: peer_id,
                    table,
                });
                let now = Instant::now();
                for r in routes.iter_mut().filter(|r| r.stale.is_some()) {
                    r.stale = self.stale_note(&r.peer, now).or(r.stale.take());
                }
                json(serde_json::to_value(routes))
            }
            Request::Fib { prefix, domain } => {
                let fib = match self.check_domain(domain.as_deref()) {
                    Err(e) => {
                        let _ = reply.send(Response::Error(e));
                        return;
                    }
                    Ok(None) => self.fib.clone(),
                    Ok(Some(d)) => self.domains.list[d].fib.clone(),
                };
                let prefix = match prefix.as_deref().map(parse_prefix).transpose() {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = reply.send(Response::Error(e));
                        return;
                    }
                };
                tokio::spawn(async move {
                    let entries: Vec<FibEntryView> = fib
                        .entries(prefix)
                        .await
                        .into_iter()
                        .map(FibEntryView::from)
                        .collect();
                    let _ = reply.send(match serde_json::to_value(entries) {
                        Ok(v) => Response::Ok(v),
                        Err(e) => Response::Error(e.to_string()),
                    });
                });
                return;
            }
            Request::Explain { prefix, domain } => match parse_prefix(&prefix)
                .and_then(|p| Ok((p, self.check_domain(domain.as_deref())?)))
            {
                Err(e) => Response::Error(e),
                Ok((p, domain)) => {
                    let mut e = self.domains.rib_ref(&self.rib, domain).explain(&p);
                    let now = Instant::now();
                    for path in e.paths.iter_mut().filter(|x| x.stale.is_some()) {
                        path.stale = self.stale_note(&path.from, now).or(path.stale.take());
                    }
                    // The next hops as installed: the FIB's answer (its
                    // task resolves interface names), off this task.
                    let fib = self.domains.fib_ref(&self.fib, domain).clone();
                    tokio::spawn(async move {
                        if e.fib.is_some() {
                            if let Some(entry) = fib.entries(Some(p)).await.into_iter().next() {
                                e.kernel_next_hops = entry.kernel_next_hops;
                            }
                        }
                        let _ = reply.send(json(serde_json::to_value(ExplainView::from(e))));
                    });
                    return;
                }
            },
            Request::ResetPeer { name } => match self.peer_id(&name) {
                None => Response::Error(format!("no peer named {name:?}")),
                Some(id) => {
                    let _ = self.peers[&id].cmd.send(PeerCmd::Reset);
                    info!(peer = %name, "reset by the operator");
                    self.watch_peer(&name, "reset");
                    Response::Ok(serde_json::json!({ "reset": name }))
                }
            },
            Request::Neighbor { name } => self.neighbor_detail(&name),
            Request::Status => return self.status(reply),
            Request::DisablePeer { name } => self.disable_peer(&name, out),
            Request::EnablePeer { name } => self.enable_peer(&name, out),
            Request::RefreshPeer { name } => self.refresh_peer(&name, out),
            Request::Watch => Response::Error(
                "watch is a stream, answered by the API server, not a request".into(),
            ),
            Request::Bfd => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                self.bfd.show(tx);
                tokio::spawn(async move {
                    let resp = match rx.await {
                        Ok(v) => match serde_json::to_value(v) {
                            Ok(v) => Response::Ok(v),
                            Err(e) => Response::Error(e.to_string()),
                        },
                        Err(_) => Response::Error("the BFD task is gone".to_string()),
                    };
                    let _ = reply.send(resp);
                });
                return;
            }
            Request::Metrics => json(serde_json::to_value(self.metrics())),
            Request::Reload => match self.reload(out) {
                Ok(changes) => json(serde_json::to_value(ReloadView {
                    reloaded: true,
                    changes,
                })),
                Err(e) => Response::Error(format!(
                    "reload failed, still running the previous config: {e}"
                )),
            },
        };
        let _ = reply.send(resp);
    }

    /// Re-read the config file and apply it ([`RouterTask::apply_config`]).
    fn reload(&mut self, out: &mut Outputs) -> Result<Vec<String>, String> {
        if self.from_cluster {
            return Err("in Kubernetes mode the config comes from the KrouteConfig objects: edit those (it is applied as it changes)".into());
        }
        let new = config::load(&self.config_path).map_err(|e| e.to_string())?;
        self.apply_config(new, out)
    }

    /// Apply a changed config, touching only what changed (an unchanged
    /// peer keeps its session). Returns a list of what was done, in words.
    fn apply_config(&mut self, new: Config, out: &mut Outputs) -> Result<Vec<String>, String> {
        let mut done = Vec::new();
        let bound = |c: &Config| c.router.listen.as_ref().map(config::Listen::socket_address);
        if new.router.asn != self.config.router.asn
            || new.router.router_id != self.config.router.router_id
            || new.kernel != self.config.kernel
            || new.api != self.config.api
            || bound(&new) != bound(&self.config)
            || new.log != self.config.log
        {
            return Err(
                "router.asn, router.routerId, router.listen, kernel, api and log changes need a restart of the daemon"
                    .into(),
            );
        }
        let mut policies_changed = false;
        if rib_config(&new) != rib_config(&self.config) {
            policies_changed = true;
            self.rib.set_config(rib_config(&new), out);
            for d in self.domains.list.values_mut() {
                d.rib.set_config(rib_config(&new), &mut d.pending);
            }
            done.push("policies / decision settings re-applied".to_string());
        }
        // Peers that change domain (or whose domain changes table) leave
        // their RIB before the domains change, and join the new one after.
        let mut moved = Vec::new();
        let old = std::mem::replace(&mut self.config, new);
        // Peers removed or whose session parameters changed.
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            let name = self.peers[&id].cfg.name.clone();
            let dynamic_range = self.peers[&id].dynamic.as_ref().map(|d| d.range);
            let new_p = match dynamic_range {
                None => self.config.peers.iter().find(|p| p.name == name).cloned(),
                // A dynamic neighbor follows its range's template.
                Some(range) => {
                    let address = self.peers[&id].cfg.address;
                    let new_p =
                        crate::dynamic::range_of(crate::dynamic::ranges(&self.config), range)
                            .map(|r| crate::dynamic::peer_for(r, address));
                    let Some(p) = new_p else {
                        let why = "its listen range was removed";
                        self.remove_dynamic(id, n::cease::PEER_DECONFIGURED, why, out);
                        done.push(format!(
                            "dynamic neighbor {name} removed (range {range} gone)"
                        ));
                        continue;
                    };
                    if session_config(&old, &self.peers[&id].cfg, self.restarting_until)
                        != session_config(&self.config, &p, self.restarting_until)
                    {
                        // Reset: it comes back under the new template.
                        let why = "its template's session settings changed (session reset)";
                        let change = n::cease::OTHER_CONFIGURATION_CHANGE;
                        self.remove_dynamic(id, change, why, out);
                        done.push(format!(
                            "dynamic neighbor {name}: session settings changed, session reset"
                        ));
                        continue;
                    }
                    Some(p)
                }
            };
            match new_p {
                None => {
                    let e = self.peers.remove(&id).unwrap();
                    self.bmp.peer_removed(id);
                    let _ = e.cmd.send(PeerCmd::Stop(Notification {
                        code: n::CEASE,
                        subcode: n::cease::PEER_DECONFIGURED,
                        data: vec![],
                    }));
                    let (rib, out) =
                        self.domains
                            .rib_out(&mut self.rib, out, e.cfg.domain.as_deref());
                    rib.remove_peer(id, out);
                    self.disabled.remove(&name);
                    done.push(format!("peer {name} removed"));
                }
                Some(p) => {
                    let old_p = self.peers[&id].cfg.clone();
                    let table = |c: &Config, d: &Option<String>| {
                        d.as_ref()
                            .and_then(|d| c.domains.iter().find(|x| &x.name == d))
                            .map(|x| x.table)
                    };
                    if old_p.domain != p.domain
                        || table(&old, &old_p.domain) != table(&self.config, &p.domain)
                    {
                        let e = self.peers.remove(&id).unwrap();
                        let _ = e.cmd.send(PeerCmd::Stop(Notification {
                            code: n::CEASE,
                            subcode: n::cease::OTHER_CONFIGURATION_CHANGE,
                            data: vec![],
                        }));
                        let (rib, out) =
                            self.domains
                                .rib_out(&mut self.rib, out, e.cfg.domain.as_deref());
                        rib.remove_peer(id, out);
                        done.push(format!(
                            "peer {name}: routing domain changed, session reset"
                        ));
                        moved.push(p);
                    } else if session_config(&old, &old_p, self.restarting_until)
                        != session_config(&self.config, &p, self.restarting_until)
                    {
                        let e = self.peers.remove(&id).unwrap();
                        let nf = Notification {
                            code: n::CEASE,
                            subcode: n::cease::OTHER_CONFIGURATION_CHANGE,
                            data: vec![],
                        };
                        self.bmp.peer_stopped(id, &nf);
                        let _ = e.cmd.send(PeerCmd::Stop(nf));
                        let (rib, out) =
                            self.domains
                                .rib_out(&mut self.rib, out, e.cfg.domain.as_deref());
                        rib.remove_peer(id, out);
                        self.add_peer(&p);
                        done.push(format!(
                            "peer {name}: session settings changed, session reset"
                        ));
                    } else {
                        let e = &self.peers[&id];
                        let (asn, learned, la) =
                            (self.config.router.asn, e.learned_asn, e.learned_address);
                        if peer_config(&old_p, asn, learned, la)
                            != peer_config(&p, asn, learned, la)
                        {
                            policies_changed = true;
                            let (rib, out) =
                                self.domains
                                    .rib_out(&mut self.rib, out, p.domain.as_deref());
                            rib.set_peer_config(id, peer_config(&p, asn, learned, la), out);
                            done.push(format!(
                                "peer {name}: policy settings re-applied without a session reset"
                            ));
                        }
                        if old_p.max_prefixes != p.max_prefixes {
                            let e = &self.peers[&id];
                            // A peer held down by the old limit gets a
                            // new chance under the new one.
                            if e.status.borrow().held_down.is_some() {
                                let _ = e.cmd.send(PeerCmd::Reset);
                            }
                            done.push(format!("peer {name}: maxPrefixes changed"));
                        }
                        let e = self.peers.get_mut(&id).unwrap();
                        if old_p.bfd != p.bfd {
                            // The BFD task restarts (or ends) the session.
                            e.bfd = p.bfd.map(|_| BfdState::Down);
                            done.push(format!("peer {name}: bfd changed"));
                        }
                        e.cfg = p;
                    }
                }
            }
        }
        // The rules are made right on every reload, also when someone
        // changed them by hand.
        let domains = if old.domains != self.config.domains {
            self.domains.reconfigure(&self.config)
        } else {
            self.domains.reconcile_rules(&self.config)
        };
        let domains = domains.map(|mut d| {
            d.extend(self.domains.apply_leaks(&self.config, &mut self.rib));
            d
        });
        match domains {
            Ok(d) => done.extend(d),
            Err(e) => {
                error!("reload: routing domains: {e}");
                done.push(format!("routing domains: {e}"));
            }
        }
        for p in moved {
            self.add_peer(&p);
        }
        let new_peers: Vec<config::Peer> = self
            .config
            .peers
            .iter()
            .filter(|p| !self.peers.values().any(|e| e.cfg.name == p.name))
            .cloned()
            .collect();
        for p in new_peers {
            done.push(format!("peer {} added", p.name));
            self.add_peer(&p);
        }
        self.bfd.configure(bfd_peers(&self.config));
        // New addresses, passwords (listener TCP-MD5 keys), GTSM, users.
        self.access.send_replace(access_list(&self.config));
        if old.advertise != self.config.advertise {
            self.refresh_originations(out);
            done.push("advertised prefixes updated".to_string());
        } else if old.domains != self.config.domains {
            // A domain added starts with nothing originated.
            self.refresh_originations(out);
        }
        if policies_changed {
            let (domains, rib, peers) = (&self.domains, &self.rib, &self.peers);
            self.bmp.policies_changed(&|id| {
                domains.rib_ref(rib, peers.get(&id).and_then(|e| e.cfg.domain.as_deref()))
            });
        }
        if old.bmp != self.config.bmp {
            self.bmp.configure(&self.config.bmp);
            done.push("BMP collectors updated".to_string());
        }
        if done.is_empty() {
            done.push("no changes".to_string());
        }
        self.config_loaded = std::time::SystemTime::now();
        for d in &done {
            info!("reload: {d}");
        }
        Ok(done)
    }

    async fn shutdown(&mut self) {
        // BFD sessions end with AdminDown, which peers do not take for a
        // path failure (RFC 5882 §3.2).
        self.bfd.configure(Vec::new());
        for e in self.peers.values() {
            // RFC 4724 §4.1: with graceful restart, a peer that offered it
            // sees the TCP session close without a NOTIFICATION and keeps
            // our routes while we restart (the kernel keeps ours too).
            if e.generation.is_some()
                && e.graceful_restart.is_some()
                && e.cfg.graceful_restart_or(&self.config.router).enabled
            {
                info!(peer = %e.cfg.name, "graceful restart: closing the session without a NOTIFICATION");
                let _ = e.cmd.send(PeerCmd::ExitForRestart);
                continue;
            }
            let _ = e.cmd.send(PeerCmd::Stop(Notification {
                code: n::CEASE,
                subcode: n::cease::ADMINISTRATIVE_SHUTDOWN,
                data: vec![],
            }));
        }
        self.fib.shutdown().await;
        self.bmp.shutdown().await;
        let keep = self.config.kernel.keep_on_exit || self.config.graceful_restart_enabled();
        self.domains.shutdown(keep).await;
        // Give the sessions a moment to put their NOTIFICATIONs on the wire.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Until `due`; for ever without one.
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

fn parse_prefix(s: &str) -> Result<Prefix, String> {
    if let Ok(p) = Prefix::from_str(s) {
        return Ok(p.trunc());
    }
    IpAddr::from_str(s)
        .map(Prefix::from)
        .map_err(|_| format!("invalid prefix {s:?} (expected ADDRESS/LENGTH or ADDRESS)"))
}

/// What a FIB reported, to the RIB whose changes it writes.
fn fib_event_to(rib: &mut Rib, ev: FibEvent, out: &mut Outputs) {
    match ev {
        FibEvent::Nexthop { address, state } => rib.set_nexthop(address, state, out),
        FibEvent::RouteFailed {
            prefix,
            next_hops,
            error,
            ..
        } => rib.set_fib_status_of(prefix, &next_hops, FibStatus::Failed(error)),
        FibEvent::RoutesInstalled(routes) => {
            for (prefix, next_hops) in routes {
                rib.set_fib_status_of(prefix, &next_hops, FibStatus::Installed);
            }
        }
    }
}
