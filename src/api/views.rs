//! The API's answers as types that serialize (the daemon) and deserialize
//! (every client) alike, so that the JSON has one definition.
//!
//! Keys are camelCase. A field the daemon always writes is required when
//! reading, `Option`s included (written as `null`): a renamed or missing
//! field is a decode error naming its path, never a silent zero.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use wire::Family;

use crate::config;
pub use crate::events::{BfdState, WatchEvent};
use crate::events::{PeerStatus, SessionState};

pub use rib::{Explanation, PathExplanation, PeerExport, RouteView};

/// One peer in `show neighbors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NeighborView {
    pub name: String,
    /// An interface peer's: the learned neighbour's (`::` until then).
    pub address: IpAddr,
    /// BGP unnumbered: the interface the peer is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// BGP unnumbered: the neighbour's link-local address, once learned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbour: Option<IpAddr>,
    pub port: u16,
    /// As configured: a number, `external` or `internal`.
    pub asn: config::PeerAsn,
    /// The AS in the peer's last OPEN (what `external` / `internal` learned).
    #[serde(deserialize_with = "required")]
    pub learned_asn: Option<u32>,
    /// A dynamic neighbor: the listen range that let it in.
    #[serde(deserialize_with = "required")]
    pub dynamic: Option<DynamicView>,
    /// 0 while not Established.
    pub uptime_seconds: u64,
    pub prefixes_received: usize,
    pub prefixes_accepted: usize,
    pub prefixes_advertised: usize,
    /// Prefixes held back because their attributes do not fit one UPDATE.
    pub prefixes_too_big: usize,
    pub state: SessionState,
    #[serde(deserialize_with = "required")]
    pub last_error: Option<String>,
    #[serde(deserialize_with = "required")]
    pub remote_router_id: Option<Ipv4Addr>,
    /// The negotiated hold time, once OPENs were exchanged.
    #[serde(deserialize_with = "required")]
    pub hold_time: Option<u16>,
    /// The families both sides announced.
    pub families: Vec<Family>,
    #[serde(deserialize_with = "required")]
    pub local_address: Option<IpAddr>,
    /// Times the session left Established.
    pub flaps: u32,
    /// Why the peer stays down by itself (`maxPrefixes` teardown), while
    /// it does; `kroute peer NAME reset` starts it again.
    #[serde(deserialize_with = "required")]
    pub held_down: Option<String>,
    /// ROUTE-REFRESH messages ignored (family not negotiated, RFC 2918 §4).
    pub route_refresh_ignored: u64,
    /// ROUTE-REFRESH messages folded into an answer already being sent.
    pub route_refresh_coalesced: u64,
    /// UPDATEs whose routes were treated as withdrawn (RFC 7606 §2, or a
    /// semantic check: first AS, next hop); `explain` says why per prefix.
    pub updates_treated_as_withdraw: u64,
    /// Path attributes discarded (RFC 7606 §2 "attribute discard").
    pub attributes_discarded: u64,
    /// Prefixes of a family the session did not negotiate, ignored.
    pub nlri_ignored: u64,
    /// The peer's BFD session state; absent without `bfd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<BfdState>,
    /// The peer's graceful restart capability (RFC 4724) in its last
    /// session and the stale routes kept for it; null: it sent none.
    #[serde(deserialize_with = "required")]
    pub graceful_restart: Option<GracefulRestartView>,
    /// The routing domain (`peers[].domain`); absent: the default one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// One routing domain in `show domains`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainView {
    /// `default` for the default domain (`kernel.table`).
    pub name: String,
    pub table: u32,
    /// Its `ip rule`s as `ip rule` prints them (`PRIORITY: from PREFIX
    /// lookup TABLE`).
    pub rules: Vec<String>,
    pub peers: Vec<String>,
    /// Prefixes in its Loc-RIB.
    pub prefixes: usize,
    /// Of those, installed in its kernel table.
    pub fib_installed: usize,
    /// Its `importFrom` leaks: "SOURCE via POLICY: N accepted".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<String>,
}

/// A neighbour's graceful restart, in `show neighbors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GracefulRestartView {
    /// The seconds it asks us to wait for it after a session loss.
    pub restart_time: u16,
    /// It had just restarted (R bit) when the session came up.
    pub restarting: bool,
    /// The families whose routes we keep while it restarts.
    pub families: Vec<Family>,
    /// Of those, the ones it kept forwarding for (F bit).
    pub forwarding_preserved: Vec<Family>,
    /// Its routes we keep as stale now.
    pub stale_routes: usize,
    /// While there are some: what we wait for and how long.
    #[serde(deserialize_with = "required")]
    pub stale: Option<String>,
}

/// `show neighbors` of a dynamic neighbor: where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DynamicView {
    /// The `router.listen.ranges` prefix its address is in.
    pub range: IpNet,
    /// The peer template it is built from.
    pub template: String,
}

impl NeighborView {
    /// The peer's AS for people: the number, or the kind with what it
    /// learned (`external (65010 learned)`).
    pub fn asn_text(&self) -> String {
        match (self.asn, self.learned_asn) {
            (config::PeerAsn::Number(n), _) => n.to_string(),
            (kind, Some(learned)) => format!("{kind} ({learned} learned)"),
            (kind, None) => kind.to_string(),
        }
    }

    /// The peer's address for people; an interface peer's as
    /// `fe80::1%eth1`, or the interface alone until its neighbour is known.
    pub fn address_text(&self) -> String {
        match (&self.interface, self.neighbour) {
            (Some(ifname), Some(a)) => format!("{a}%{ifname}"),
            (Some(ifname), None) => format!("{ifname} (neighbour not learned)"),
            (None, _) => self.address.to_string(),
        }
    }

    /// The view of a configured peer from its session's status and the
    /// RIB's counters.
    pub fn new(
        peer: &config::Peer,
        status: &PeerStatus,
        counters: rib::PeerCounters,
        import: rib::ImportCounters,
    ) -> Self {
        NeighborView {
            name: peer.name.clone(),
            address: status.neighbour.unwrap_or(peer.address),
            interface: peer.interface.clone(),
            neighbour: status.neighbour,
            port: peer.port,
            asn: peer.asn,
            learned_asn: status.remote_asn,
            dynamic: None,
            uptime_seconds: status
                .established_at
                .map(|t| t.elapsed().as_secs())
                .unwrap_or(0),
            prefixes_received: counters.received,
            prefixes_accepted: counters.accepted,
            prefixes_advertised: counters.advertised,
            prefixes_too_big: counters.too_big,
            state: status.state,
            last_error: status.last_error.clone(),
            remote_router_id: status.remote_router_id,
            hold_time: status.hold_time,
            families: status.families.clone(),
            local_address: status.local_address,
            flaps: status.flaps,
            held_down: status.held_down.clone(),
            route_refresh_ignored: status.refresh_ignored,
            route_refresh_coalesced: status.refresh_coalesced,
            updates_treated_as_withdraw: import.treat_as_withdraw,
            attributes_discarded: import.attribute_discards,
            nlri_ignored: import.ignored_nlri,
            bfd: None,
            graceful_restart: status
                .graceful_restart
                .as_ref()
                .map(|g| GracefulRestartView {
                    restart_time: g.restart_time,
                    restarting: g.restarting,
                    families: g.families.clone(),
                    forwarding_preserved: g.forwarding_preserved.clone(),
                    stale_routes: 0,
                    stale: None,
                }),
            domain: peer.domain.clone(),
        }
    }
}

/// `show neighbor NAME`: the `show neighbors` row and what else there is
/// to know about one peer (as `birdc show protocols all` / vtysh `show bgp
/// neighbor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NeighborDetailView {
    /// Version of this JSON's shape, see [`SCHEMA_VERSION`].
    pub schema_version: u32,
    pub neighbor: NeighborView,
    /// `kroute peer NAME disable` keeps it down until `enable`.
    pub disabled: bool,
    /// "ebgp" or "ibgp".
    pub kind: String,
    pub local_asn: u32,
    pub passive: bool,
    /// The families configured; `neighbor.families` are those negotiated.
    pub configured_families: Vec<Family>,
    /// The import and export policy chains (`null`: not set, which for an
    /// eBGP peer means nothing is exchanged, RFC 8212).
    pub import: rib::policy::PolicyChain,
    pub export: rib::policy::PolicyChain,
    pub timers: TimersView,
    /// UPDATEs waiting in the Adj-RIB-Out for the session's writer.
    pub updates_queued: usize,
    /// Seconds since the Unix epoch of the last state change.
    pub last_change_unix: u64,
    /// `bfd` configured for the peer; its state is `neighbor.bfd`.
    pub bfd_configured: bool,
    /// We advertise graceful restart to this peer (`gracefulRestart.enabled`).
    pub graceful_restart_advertised: bool,
    /// RFC 8950 extended next hop (IPv4 unicast over IPv6 next hops).
    #[serde(default)]
    pub extended_next_hop: ExtendedNextHopView,
}

/// A peer's RFC 8950 capability, in `show neighbor NAME`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtendedNextHopView {
    /// We advertise it (`extendedNextHop`).
    pub advertised: bool,
    /// Both sides advertised it in the last Established session.
    pub negotiated: bool,
}

/// A peer's timers in seconds: configured, and the negotiated ones while a
/// session is up (RFC 4271 §4.2, §10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimersView {
    /// What we propose in OPEN.
    pub hold_time_configured: u16,
    /// The lower of both OPENs' hold times.
    #[serde(deserialize_with = "required")]
    pub hold_time_negotiated: Option<u16>,
    /// A third of the negotiated hold time (0: no keepalives).
    #[serde(deserialize_with = "required")]
    pub keepalive: Option<u16>,
    pub connect_retry: u32,
}

/// The version of the API's JSON (`-o json`): raised when a field is
/// renamed, removed or changes type; new fields may come without. 2: the
/// AS path became a list of segments.
pub const SCHEMA_VERSION: u32 = 2;

/// `show status`: the daemon as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    pub schema_version: u32,
    pub version: String,
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub uptime_seconds: u64,
    /// The config file; `null` in Kubernetes mode (the config comes from
    /// KrouteConfig objects).
    #[serde(deserialize_with = "required")]
    pub config_file: Option<String>,
    /// Seconds since the Unix epoch when the running config was loaded
    /// (start or last successful reload).
    pub config_loaded_unix: u64,
    pub peers_configured: usize,
    pub peers_established: usize,
    pub peers_disabled: usize,
    /// Initial convergence over (every peer up with its End-of-RIB, or the
    /// deadline passed).
    pub initial_convergence_done: bool,
    /// Over every routing domain.
    pub rib: Vec<FamilyCountView>,
    /// FIB entries by status ("installed", "pending", ...), over every
    /// routing domain.
    pub fib: std::collections::BTreeMap<String, usize>,
    /// With `domains:`, each domain's share of `rib` and `fib` (the
    /// default domain first); empty without.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<DomainStatusView>,
    /// The BMP collectors (`bmp`) and their connections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bmp: Vec<BmpCollectorView>,
}

/// One routing domain in `show status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainStatusView {
    pub name: String,
    pub table: u32,
    pub rib: Vec<FamilyCountView>,
    pub fib: std::collections::BTreeMap<String, usize>,
}

/// A BMP collector's connection (`show status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BmpCollectorView {
    pub address: IpAddr,
    pub port: u16,
    /// `connecting`, `connected`, `retry in Ns` or `stopped`.
    pub state: String,
    /// Seconds since the Unix epoch when it entered that state.
    pub since_unix: u64,
    /// BMP messages written, over all connections.
    pub messages_sent: u64,
    /// Connections made since the collector was configured.
    pub connects: u64,
    /// Queued and not yet written.
    pub queued_bytes: usize,
    pub last_error: Option<String>,
}

/// Loc-RIB size of one family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FamilyCountView {
    pub family: Family,
    /// Prefixes with a best path.
    pub prefixes: usize,
    /// Paths, every peer's.
    pub paths: usize,
}

/// Seconds since the Unix epoch (0 before it).
pub fn unix_seconds(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A next hop as `show fib` writes it: "10.0.0.1", or "fd00::1 (fe80::1)"
/// with a link-local.
pub fn next_hop_text(nh: &wire::NextHop) -> String {
    match nh.link_local {
        Some(ll) => format!("{} ({ll})", nh.address),
        None => nh.address.to_string(),
    }
}

/// One session in `show bfd` (RFC 5880 §6.8.1 variables; intervals in
/// microseconds, as on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BfdSessionView {
    /// The BGP peer's name.
    pub peer: String,
    pub address: IpAddr,
    #[serde(deserialize_with = "required")]
    pub local_address: Option<IpAddr>,
    pub state: BfdState,
    pub remote_state: BfdState,
    /// Our diagnostic (why the session last went down), in words.
    pub diagnostic: String,
    pub local_discriminator: u32,
    /// 0 until the remote was heard (and again after a detection timeout).
    pub remote_discriminator: u32,
    pub detect_multiplier: u8,
    /// What we send as Desired Min TX (1 s until Up, RFC 5880 §6.8.3).
    pub desired_min_tx_us: u64,
    pub required_min_rx_us: u64,
    /// The remote's Required Min RX.
    pub remote_min_rx_us: u64,
    /// The agreed transmit interval (before jitter).
    pub tx_interval_us: u64,
    /// The remote's Detect Mult × the agreed receive interval.
    #[serde(deserialize_with = "required")]
    pub detect_time_us: Option<u64>,
    pub packets_in: u64,
    pub packets_out: u64,
    pub state_changes: u64,
    /// The longest a periodic packet of ours went out after its time.
    pub tx_late_max_us: u64,
    /// The longest the peer was silent after a packet that left the
    /// session Up (the silence that took it down counts once it is heard
    /// again).
    pub rx_gap_max_us: u64,
}

/// One prefix in `show fib`: the FIB's [`kernel::FibEntry`] as the API
/// writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FibEntryView {
    pub prefix: IpNet,
    /// As learned: "10.0.0.1", or "fd00::1 (fe80::1)" with a link-local.
    pub bgp_next_hops: Vec<String>,
    /// e.g. "via 10.0.0.1 dev veth0".
    pub kernel_next_hops: Vec<String>,
    /// "installed" | "next hop unresolved" | "failed: <err>" |
    /// "next hop is local" | "install disabled" | "pending".
    pub status: String,
    /// Why, when the status alone does not say it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl From<kernel::FibEntry> for FibEntryView {
    fn from(e: kernel::FibEntry) -> Self {
        FibEntryView {
            prefix: e.prefix,
            bgp_next_hops: e
                .bgp_next_hops
                .iter()
                .map(|nh| match nh.link_local {
                    Some(ll) => format!("{} ({ll})", nh.address),
                    None => nh.address.to_string(),
                })
                .collect(),
            kernel_next_hops: e.kernel_next_hops,
            status: e.status,
            detail: e.detail,
        }
    }
}

/// `explain PREFIX`: the explanation and the same in words.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExplainView {
    pub explanation: Explanation,
    /// What `kroute explain` prints.
    pub text: String,
}

impl From<Explanation> for ExplainView {
    fn from(explanation: Explanation) -> Self {
        ExplainView {
            text: explanation.to_string(),
            explanation,
        }
    }
}

/// `reload`: what changed, in words, one line each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadView {
    /// Always true: a failed reload is an error response.
    pub reloaded: bool,
    pub changes: Vec<String>,
}

/// What `/metrics` exposes from the router task, collected at scrape
/// time (`crate::metrics` renders it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsView {
    pub peers: Vec<PeerMetricsView>,
    /// The Loc-RIB and its kernel routes, per family.
    pub families: Vec<FamilyMetricsView>,
    /// Times the decision process ran for a prefix.
    pub decision_runs: u64,
    pub fib: FibMetricsView,
    /// Dynamic neighbors per `router.listen.ranges` prefix.
    pub ranges: Vec<RangeMetricsView>,
}

/// One listen range in [`MetricsView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RangeMetricsView {
    pub range: IpNet,
    /// Dynamic neighbors from the range now.
    pub peers: usize,
    pub limit: u32,
    /// Connections refused over the limit since the start.
    pub refused: u64,
}

/// One peer in [`MetricsView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerMetricsView {
    pub name: String,
    pub state: SessionState,
    /// 0 while not Established.
    pub uptime_seconds: u64,
    pub flaps: u32,
    pub prefixes_received: usize,
    pub prefixes_accepted: usize,
    pub prefixes_advertised: usize,
    /// Received but refused by import policy or checks.
    pub prefixes_rejected: usize,
    pub messages_in: u64,
    pub messages_out: u64,
    pub notifications_in: u64,
    pub notifications_out: u64,
    pub updates_treated_as_withdraw: u64,
}

impl PeerMetricsView {
    pub fn new(
        name: &str,
        status: &PeerStatus,
        counters: rib::PeerCounters,
        import: rib::ImportCounters,
    ) -> Self {
        let m = status.messages.read();
        PeerMetricsView {
            name: name.to_string(),
            state: status.state,
            uptime_seconds: status
                .established_at
                .map(|t| t.elapsed().as_secs())
                .unwrap_or(0),
            flaps: status.flaps,
            prefixes_received: counters.received,
            prefixes_accepted: counters.accepted,
            prefixes_advertised: counters.advertised,
            prefixes_rejected: counters.received.saturating_sub(counters.accepted),
            messages_in: m.received,
            messages_out: m.sent,
            notifications_in: m.notifications_received,
            notifications_out: m.notifications_sent,
            updates_treated_as_withdraw: import.treat_as_withdraw,
        }
    }
}

/// One family in [`MetricsView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FamilyMetricsView {
    /// The routing domain (`default`, or `domains[].name`).
    #[serde(default = "default_domain")]
    pub domain: String,
    pub family: Family,
    /// Prefixes with a best path.
    pub prefixes: usize,
    pub fib_installed: usize,
    pub fib_pending: usize,
    pub fib_failed: usize,
}

/// The FIB's own counters in [`MetricsView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FibMetricsView {
    /// Netlink messages sent.
    pub netlink_messages: u64,
    /// `sendmsg` calls (batches).
    pub netlink_batches: u64,
    pub resyncs: u64,
    /// Messages the kernel refused, by errno name ("EINVAL").
    pub errors: Vec<(String, u64)>,
}

fn default_domain() -> String {
    crate::config::DEFAULT_DOMAIN.to_string()
}

impl FibMetricsView {
    /// Adds another FIB's counters (a routing domain's) to these.
    pub fn add(&mut self, other: FibMetricsView) {
        self.netlink_messages += other.netlink_messages;
        self.netlink_batches += other.netlink_batches;
        self.resyncs += other.resyncs;
        for (errno, n) in other.errors {
            match self.errors.iter_mut().find(|(e, _)| *e == errno) {
                Some((_, m)) => *m += n,
                None => self.errors.push((errno, n)),
            }
        }
    }

    pub fn new(c: kernel::FibCounts) -> Self {
        FibMetricsView {
            netlink_messages: c.messages_written,
            netlink_batches: c.batches_written,
            resyncs: c.resyncs,
            errors: c
                .refused_by_errno
                .into_iter()
                .map(|(errno, n)| {
                    let name = kernel::errno_name(errno)
                        .map_or_else(|| format!("errno {errno}"), str::to_string);
                    (name, n)
                })
                .collect(),
        }
    }
}

/// An `Option` the daemon always writes (`null` for `None`): missing is an
/// error. (serde reads a missing `Option` as `None` unless the field has its
/// own deserializer.)
fn required<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde::de::DeserializeOwned;
    use serde_json::{json, Value};
    use wire::{AsPath, Community, Origin, PathAttributes, Prefix, Update};

    use super::*;

    /// As the client decodes: the error names the path of the field.
    fn decode<T: DeserializeOwned>(value: Value) -> Result<T, String> {
        serde_path_to_error::deserialize(value).map_err(|e| e.to_string())
    }

    /// `value` decodes into `T` and encodes back to the very same JSON.
    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
        value: &Value,
    ) -> T {
        let view: T = decode(value.clone()).unwrap();
        assert_eq!(&serde_json::to_value(&view).unwrap(), value);
        view
    }

    fn decode_error<T: DeserializeOwned + std::fmt::Debug>(value: Value) -> String {
        match decode::<T>(value) {
            Err(e) => e,
            Ok(v) => panic!("expected a decode error, got {v:?}"),
        }
    }

    fn peer() -> config::Peer {
        let yaml = "router: { asn: 65000, routerId: 10.0.0.1 }\n\
                    peers:\n  - { name: tor-a, address: 192.0.2.1, asn: 65101, \
                    import: all, export: all }\n";
        crate::config::parse(yaml, "test.yaml")
            .unwrap()
            .peers
            .remove(0)
    }

    fn established() -> PeerStatus {
        PeerStatus {
            state: SessionState::Established,
            established_at: Instant::now().checked_sub(Duration::from_secs(75)),
            remote_router_id: Some("192.0.2.1".parse().unwrap()),
            hold_time: Some(90),
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            local_address: Some("192.0.2.254".parse().unwrap()),
            flaps: 2,
            ..PeerStatus::new()
        }
    }

    /// The shape `show neighbors` has always had: the peer's config, its
    /// counters, then the session status's fields.
    #[test]
    fn neighbor_keeps_its_json_shape_and_round_trips() {
        let counters = rib::PeerCounters {
            received: 7,
            accepted: 5,
            advertised: 3,
            too_big: 0,
        };
        let import = rib::ImportCounters {
            treat_as_withdraw: 4,
            attribute_discards: 2,
            ignored_nlri: 1,
        };
        let n = NeighborView::new(&peer(), &established(), counters, import);
        assert!((75..80).contains(&n.uptime_seconds), "{}", n.uptime_seconds);
        let mut v = serde_json::to_value(&n).unwrap();
        v["uptimeSeconds"] = json!(75);
        let expected = json!({
            "name": "tor-a", "address": "192.0.2.1", "port": 179, "asn": 65101,
            "learnedAsn": null, "dynamic": null, "uptimeSeconds": 75, "prefixesReceived": 7, "prefixesAccepted": 5,
            "prefixesAdvertised": 3, "prefixesTooBig": 0, "state": "Established", "lastError": null,
            "remoteRouterId": "192.0.2.1", "holdTime": 90,
            "families": ["ipv4-unicast", "ipv6-unicast"],
            "localAddress": "192.0.2.254", "flaps": 2, "heldDown": null,
            "routeRefreshIgnored": 0, "routeRefreshCoalesced": 0,
            "updatesTreatedAsWithdraw": 4, "attributesDiscarded": 2, "nlriIgnored": 1,
            "gracefulRestart": null,
        });
        assert_eq!(v, expected);
        let back: NeighborView = round_trip(&expected);
        assert_eq!(back.state, SessionState::Established);
        assert_eq!(back.prefixes_accepted, 5);

        let idle = NeighborView::new(&peer(), &PeerStatus::new(), counters, import);
        assert_eq!(idle.uptime_seconds, 0);
        let v = serde_json::to_value(&idle).unwrap();
        assert_eq!(v["state"], "Idle");
        assert_eq!(v["holdTime"], Value::Null);
        round_trip::<NeighborView>(&v);
    }

    #[test]
    fn a_missing_or_renamed_field_is_an_error_naming_it() {
        let full = serde_json::to_value(vec![NeighborView::new(
            &peer(),
            &established(),
            rib::PeerCounters::default(),
            rib::ImportCounters::default(),
        )])
        .unwrap();
        for key in [
            "prefixesReceived",
            "lastError",
            "holdTime",
            "state",
            "updatesTreatedAsWithdraw",
        ] {
            let mut v = full.clone();
            let field = v[0].as_object_mut().unwrap().remove(key).unwrap();
            let e = decode_error::<Vec<NeighborView>>(v.clone());
            assert!(e.contains(&format!("missing field `{key}`")), "{e}");
            // Renamed: the old name missing, the new one ignored.
            v[0]["renamed"] = field;
            let e = decode_error::<Vec<NeighborView>>(v);
            assert!(e.contains(&format!("missing field `{key}`")), "{e}");
        }
        let mut v = full.clone();
        v[0]["state"] = json!("Up");
        let e = decode_error::<Vec<NeighborView>>(v);
        assert!(e.contains("[0].state"), "{e}");
    }

    fn attrs(path: &[u32]) -> PathAttributes {
        PathAttributes {
            origin: Some(Origin::Igp),
            as_path: AsPath::from_sequence(path.to_vec()),
            ..Default::default()
        }
    }

    fn update(prefixes: &[&str], next_hop: &str, attributes: PathAttributes) -> Update {
        Update {
            attributes: PathAttributes {
                next_hop: Some(next_hop.parse().unwrap()),
                ..attributes
            },
            nlri: prefixes.iter().map(|s| s.parse().unwrap()).collect(),
            ..Default::default()
        }
    }

    /// A RIB as the daemon holds one: two eBGP peers with an ECMP pair, a
    /// third whose paths are rejected (no import policy), one prefix of
    /// our own.
    fn rib() -> rib::Rib {
        use rib::policy::PolicyChain;
        let mut rib = rib::Rib::new(rib::RibConfig {
            local_asn: 65000,
            router_id: "10.0.0.1".parse().unwrap(),
            cluster_id: None,
            max_paths: 4,
            multipath_relax: false,
            always_compare_med: false,
            install: true,
            policies: Vec::new(),
        });
        let mut out = rib::Outputs::default();
        for (id, name, import) in [
            (1, "tor-a", PolicyChain::All),
            (2, "tor-b", PolicyChain::All),
            (3, "lab", PolicyChain::Unset),
        ] {
            let address: IpAddr = format!("192.0.2.{id}").parse().unwrap();
            rib.add_peer(
                id,
                rib::PeerConfig {
                    name: name.into(),
                    address,
                    remote_asn: 65100 + id,
                    families: vec![Family::Ipv4Unicast],
                    allow_as_in: 0,
                    next_hop_self: false,
                    route_reflector_client: false,
                    enforce_first_as: true,
                    import,
                    export: PolicyChain::All,
                },
            );
            rib.peer_up(
                id,
                rib::SessionInfo {
                    remote_router_id: format!("192.0.2.{id}").parse().unwrap(),
                    families: vec![Family::Ipv4Unicast],
                    local_next_hop_v4: Some("10.0.0.1".parse().unwrap()),
                    local_next_hop_v6: None,
                    extended_next_hop_v4: false,
                    local_link_local: None,
                    interface: None,
                },
                &mut out,
            );
            rib.set_nexthop(
                address,
                rib::NexthopState::Reachable { metric: 0 },
                &mut out,
            );
        }
        let mut with_med = attrs(&[65101, 65201]);
        with_med.med = Some(10);
        with_med.communities = vec![Community(65101 << 16 | 7)].into();
        rib.receive(1, update(&["10.8.1.0/24"], "192.0.2.1", with_med), &mut out);
        let mut also_med = attrs(&[65102, 65201]);
        also_med.med = Some(10);
        rib.receive(2, update(&["10.8.1.0/24"], "192.0.2.2", also_med), &mut out);
        rib.receive(
            3,
            update(&["10.8.1.0/24"], "192.0.2.3", attrs(&[65103])),
            &mut out,
        );
        rib.set_originated(
            vec![rib::Origination {
                prefix: "10.9.0.0/24".parse().unwrap(),
                communities: Vec::new(),
                large_communities: Vec::new(),
                local_pref: None,
            }],
            &mut out,
        );
        rib
    }

    #[test]
    fn the_ribs_route_listings_round_trip() {
        let rib = rib();
        for (table, peer) in [
            (rib::Table::Loc, None),
            (rib::Table::Received, Some(3)),
            (rib::Table::Advertised, Some(3)),
        ] {
            let routes = rib.routes(&rib::RouteQuery {
                prefix: None,
                peer,
                table,
            });
            assert!(!routes.is_empty(), "{table:?}");
            let v = serde_json::to_value(&routes).unwrap();
            let back: Vec<RouteView> = round_trip(&v);
            assert_eq!(back, routes, "{table:?}");
        }
        let loc = rib.routes(&rib::RouteQuery::default());
        let best = &loc[0];
        assert_eq!((best.best, best.multipath), (true, true));
        assert_eq!(best.med, Some(10));
        assert_eq!(loc.iter().filter(|r| r.multipath).count(), 2);
        let local = loc.iter().find(|r| r.peer == "local").unwrap();
        assert_eq!(local.med, None);
        let v = serde_json::to_value(local).unwrap();
        assert_eq!(v["localPref"], Value::Null, "always written");
        let rejected = rib.routes(&rib::RouteQuery {
            prefix: Some("10.8.1.0/24".parse::<Prefix>().unwrap()),
            peer: Some(3),
            table: rib::Table::Received,
        });
        assert!(!rejected[0].accepted && rejected[0].reason.is_some());
        let mut v = serde_json::to_value(local).unwrap();
        v.as_object_mut().unwrap().remove("med");
        assert!(decode_error::<RouteView>(v).contains("missing field `med`"));
    }

    #[test]
    fn explain_keeps_its_shape_and_round_trips() {
        let rib = rib();
        for prefix in ["10.8.1.0/24", "10.9.0.0/24", "172.16.0.0/12"] {
            let ex = rib.explain(&prefix.parse().unwrap());
            let view = ExplainView::from(ex.clone());
            assert_eq!(view.text, ex.to_string());
            let v = serde_json::to_value(&view).unwrap();
            // The shape it always had: {"explanation": …, "text": …}.
            assert_eq!(v["explanation"], serde_json::to_value(&ex).unwrap());
            assert_eq!(v.as_object().unwrap().len(), 2);
            let back: ExplainView = decode(v.clone()).unwrap();
            assert_eq!(back.explanation, ex);
            assert_eq!(serde_json::to_value(&back).unwrap(), v);
        }
        let ex = rib.explain(&"10.8.1.0/24".parse().unwrap());
        assert_eq!(ex.paths.len(), 3);
        assert!(ex.paths.iter().any(|p| !p.accepted));
        assert!(!ex.peers.is_empty());
    }

    #[test]
    fn fib_entries_read_as_the_kernel_writes_them() {
        let entries = [
            kernel::FibEntry {
                prefix: "2001:db8::/48".parse().unwrap(),
                bgp_next_hops: vec![kernel::BgpNextHop {
                    address: "fd00::1".parse().unwrap(),
                    link_local: Some("fe80::1".parse().unwrap()),
                    interface: None,
                }],
                kernel_next_hops: vec!["via fe80::1 dev veth0".into()],
                status: "installed".into(),
                detail: None,
            },
            kernel::FibEntry {
                prefix: "10.8.1.0/24".parse().unwrap(),
                bgp_next_hops: vec![
                    kernel::BgpNextHop::new("192.0.2.1".parse().unwrap()),
                    kernel::BgpNextHop::new("192.0.2.2".parse().unwrap()),
                ],
                kernel_next_hops: Vec::new(),
                status: "next hop unresolved".into(),
                detail: Some("192.0.2.2: no route".into()),
            },
        ];
        for e in entries {
            let kernel_json = serde_json::to_value(&e).unwrap();
            let view = FibEntryView::from(e);
            assert_eq!(serde_json::to_value(&view).unwrap(), kernel_json);
            assert_eq!(round_trip::<FibEntryView>(&kernel_json), view);
        }
        let v = json!({"prefix": "10.0.0.0/8", "bgpNextHops": ["fd00::1 (fe80::1)"],
                       "kernelNextHops": [], "status": "pending"});
        let view: FibEntryView = round_trip(&v);
        assert_eq!(view.bgp_next_hops, ["fd00::1 (fe80::1)"]);
    }

    #[test]
    fn reload_keeps_its_shape() {
        let v = json!({"reloaded": true, "changes": ["peer tor-c added"]});
        let view: ReloadView = round_trip(&v);
        assert_eq!(view.changes, ["peer tor-c added"]);
        assert!(decode_error::<ReloadView>(json!({"changes": []})).contains("reloaded"));
    }
}
