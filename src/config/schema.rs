//! The configuration file's types: one struct per section, their defaults
//! and the YAML they write back.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use ipnet::IpNet;
use rib::policy::{Policy, PolicyChain};
use serde::{Deserialize, Serialize};
use wire::{Community, Family, LargeCommunity};

use super::de;
use super::password::{self, Password};

mod domain;
mod new;

pub use domain::{Domain, DomainImport, DomainRule, DEFAULT_DOMAIN};

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    pub router: Router,
    #[serde(default)]
    pub api: Api,
    #[serde(default)]
    pub kernel: Kernel,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<Peer>,
    /// Prefixes this node originates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advertise: Vec<Advertise>,
    /// Named policies for `peers[].import` / `export` (see
    /// [`rib::policy::Set`]). `set.prependAsPath: N` prepends N times: at
    /// export our own ASN (besides the one eBGP always adds), at import
    /// the neighbour's AS as if it had prepended itself (FRR/BIRD
    /// semantics): the peer's ASN over eBGP, the path's first AS over iBGP
    /// (an empty iBGP AS_PATH is left as it is).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    #[serde(default)]
    pub log: Log,
    /// BMP collectors (RFC 7854) this router reports its peers and their
    /// routes to; reload adds and removes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bmp: Vec<BmpCollector>,
    /// Routing domains besides the default one (`kernel.table`), see
    /// [`Domain`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<Domain>,
}

/// `bmp[]`: one BMP collector (RFC 7854), reached over TCP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BmpCollector {
    pub address: IpAddr,
    #[serde(deserialize_with = "de::port")]
    pub port: u16,
    /// Which Adj-RIB-In views are sent as Route Monitoring.
    #[serde(default = "default_bmp_monitoring")]
    pub monitoring: Vec<BmpMonitoring>,
    /// Seconds between Statistics Reports (RFC 7854 §4.8); 0 = none.
    #[serde(default = "default_bmp_statistics_interval")]
    pub statistics_interval: u32,
    /// Unsent messages this collector may hold, in MiB: a collector that
    /// reads slower is disconnected and resynchronised on reconnect.
    #[serde(rename = "queueLimitMiB", default = "default_bmp_queue_limit")]
    pub queue_limit_mib: u32,
}

/// `bmp[].monitoring`: RFC 7854 §2's pre-policy and post-policy
/// Adj-RIB-In.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BmpMonitoring {
    PrePolicy,
    PostPolicy,
}

impl BmpMonitoring {
    /// As the config spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            BmpMonitoring::PrePolicy => "prePolicy",
            BmpMonitoring::PostPolicy => "postPolicy",
        }
    }
}

pub(super) fn default_bmp_monitoring() -> Vec<BmpMonitoring> {
    vec![BmpMonitoring::PrePolicy, BmpMonitoring::PostPolicy]
}
pub(super) fn default_bmp_statistics_interval() -> u32 {
    60
}
pub(super) fn default_bmp_queue_limit() -> u32 {
    64
}

/// `log`: how the daemon writes its log lines (read at start; the
/// daemon's `--log-format` wins over it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Log {
    #[serde(default)]
    pub format: LogFormat,
}

/// Log lines as text (coloured only on a terminal) or one JSON object per
/// line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Router {
    /// Our ASN: 1..=4294967294, not 23456 (AS_TRANS).
    #[serde(deserialize_with = "de::asn")]
    pub asn: u32,
    /// BGP identifier; not 0.0.0.0.
    pub router_id: Ipv4Addr,
    /// Where to accept BGP connections. Absent: `[::]:179`; `null`: do not
    /// listen (active sessions only).
    #[serde(default = "default_listen")]
    pub listen: Option<Listen>,
    /// Route reflector cluster ID (RFC 4456); defaults to the router ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<Ipv4Addr>,
    /// Most paths in one ECMP route (1..=64; 1 = no multipath).
    #[serde(default = "default_max_paths", deserialize_with = "de::max_paths")]
    pub max_paths: usize,
    /// Paths from different neighbouring ASes may share an ECMP route.
    #[serde(default)]
    pub multipath_relax: bool,
    /// Compare MED between paths from different neighbouring ASes too.
    /// Off (the RFC 4271 §9.1.2.2 (c) default): MED only orders paths
    /// from the same neighbouring AS; a path without MED counts as 0.
    #[serde(default)]
    pub always_compare_med: bool,
    /// Seconds we propose in OPEN: 0 or 3..=65535.
    #[serde(default = "default_hold_time", deserialize_with = "de::hold_time")]
    pub hold_time: u16,
    /// Seconds between connection attempts.
    #[serde(
        default = "default_connect_retry",
        deserialize_with = "de::connect_retry"
    )]
    pub connect_retry: u32,
    /// Graceful restart (RFC 4724), see [`GracefulRestart`].
    #[serde(default, skip_serializing_if = "GracefulRestart::is_default")]
    pub graceful_restart: GracefulRestart,
}

/// `router.gracefulRestart`. Helping a restarting peer (keeping its routes
/// as stale while it comes back) is always on when the peer advertises the
/// capability; `enabled` makes kroute advertise the capability itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GracefulRestart {
    #[serde(default)]
    pub enabled: bool,
    /// Seconds we advertise as our Restart Time (1..=4095, 12 bits), and
    /// the most we wait for a restarting peer to come back (the peer's own
    /// advertised time when lower).
    #[serde(default = "default_restart_time")]
    pub restart_time: u16,
    /// Seconds a returned peer's stale routes are kept while we wait for
    /// its End-of-RIB.
    #[serde(default = "default_stale_time")]
    pub stale_time: u32,
    /// RFC 4724 §4.1 Selection_Deferral_Timer, router-wide (1..=3600 s):
    /// after a restart (our routes still in the kernel), the most we wait
    /// for every peer's End-of-RIB before our routes go to the kernel and
    /// our End-of-RIB to the peers; on any start, the longest a previous
    /// run's routes stay while peers come up.
    #[serde(default = "default_selection_deferral_time")]
    pub selection_deferral_time: u16,
}

impl Default for GracefulRestart {
    fn default() -> Self {
        GracefulRestart {
            enabled: false,
            restart_time: default_restart_time(),
            stale_time: default_stale_time(),
            selection_deferral_time: default_selection_deferral_time(),
        }
    }
}

impl GracefulRestart {
    fn is_default(&self) -> bool {
        *self == GracefulRestart::default()
    }
}

/// `peers[].gracefulRestart`: any of the router's keys, for this peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GracefulRestartOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_time: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_time: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listen {
    #[serde(default = "default_listen_address")]
    pub address: IpAddr,
    #[serde(default = "default_port", deserialize_with = "de::port")]
    pub port: u16,
    /// Dynamic neighbors: connections from these prefixes are accepted as
    /// passive peers built from a template (see [`ListenRange`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<ListenRange>,
}

impl Listen {
    /// Where the socket is bound: what a reload cannot change.
    pub fn socket_address(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.address, self.port)
    }
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            address: default_listen_address(),
            port: default_port(),
            ranges: Vec::new(),
        }
    }
}

/// `router.listen.ranges[]`: `{ prefix, template, limit }` in the file
/// (FRR's `bgp listen range`). A connection from an address in `prefix`
/// (the longest matching range; a configured peer's address wins) is
/// accepted as a passive peer named by its address, with the template's
/// settings. The template expansion (`templates.rs`) turns `template` into
/// `peer`, the template's keys read as one peer (its name the template's,
/// its address the prefix's first: each dynamic peer gets its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenRange {
    pub prefix: IpNet,
    /// Most dynamic peers at once from this range (1..); more are refused
    /// at accept.
    #[serde(default = "default_range_limit")]
    pub limit: u32,
    pub peer: Peer,
}

fn default_range_limit() -> u32 {
    100
}

/// The control socket the CLI talks to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Api {
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// Group (name or gid) owning the socket (mode 0660): its members may
    /// use the CLI without root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupName>,
    /// The HTTP listener for `/healthz` and `/readyz` (Kubernetes probes);
    /// absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpListen>,
}

/// `api.http`: where the HTTP listener binds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpListen {
    pub address: IpAddr,
    #[serde(deserialize_with = "de::port")]
    pub port: u16,
}

/// A group, by name or by number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GroupName {
    Id(u32),
    Name(String),
}

impl Default for Api {
    fn default() -> Self {
        Api {
            socket: default_socket(),
            group: None,
            http: None,
        }
    }
}

/// How best paths are installed in the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Kernel {
    #[serde(default = "yes")]
    pub install: bool,
    /// Routing table: `main` (254), `local` (255), `default` (253) or a number.
    #[serde(
        default = "default_table",
        deserialize_with = "de::table",
        serialize_with = "de::ser_table"
    )]
    pub table: u32,
    /// Route protocol: `bgp` (186), `static`, `kernel`, `boot`, `zebra`,
    /// `bird` or a number 1..=255.
    #[serde(
        default = "default_protocol",
        deserialize_with = "de::protocol",
        serialize_with = "de::ser_protocol"
    )]
    pub protocol: u8,
    /// Route priority (metric) of installed routes.
    #[serde(default = "default_metric")]
    pub metric: u32,
    /// Leave our routes in the kernel when kroute exits.
    #[serde(default)]
    pub keep_on_exit: bool,
    /// Point routes at shared kernel nexthop objects (`ip nexthop`, Linux
    /// 5.3+) instead of writing the next hops into every route. Much less
    /// kernel work per route; falls back by itself on older kernels.
    #[serde(default = "yes")]
    pub nexthop_objects: bool,
    /// Pre-install a standby route per prefix with a backup path, at
    /// `metric + 1` via the backup's nexthop object: the kernel falls back
    /// to it by itself when the best path's next hop goes (no write per
    /// prefix on failover). Doubles those prefixes' kernel routes.
    #[serde(default)]
    pub backup_routes: bool,
}

impl Default for Kernel {
    fn default() -> Self {
        Kernel {
            install: true,
            table: default_table(),
            protocol: default_protocol(),
            metric: default_metric(),
            keep_on_exit: false,
            nexthop_objects: true,
            backup_routes: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Peer {
    /// Unique, `[A-Za-z0-9_.-]+`.
    pub name: String,
    /// The peer's address; absent for an `interface` peer (kept as the
    /// unspecified address `::` inside, never written back).
    #[serde(default = "unspecified", skip_serializing_if = "is_unspecified")]
    pub address: IpAddr,
    /// BGP unnumbered: the session runs over this interface's IPv6
    /// link-local addresses, the neighbour's learned from its router
    /// advertisements (or its connection); instead of `address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    #[serde(default = "default_port", deserialize_with = "de::port")]
    pub port: u16,
    /// A number, or `external` / `internal`: any AS of that kind, the one
    /// in the peer's OPEN (see [`PeerAsn`]).
    pub asn: PeerAsn,
    /// Source address to bind for outgoing connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_address: Option<IpAddr>,
    /// Never connect; wait for the peer to connect.
    #[serde(default)]
    pub passive: bool,
    /// TTL of our packets (1..=255); default 1 for eBGP, 255 for iBGP.
    #[serde(
        default,
        deserialize_with = "de::multihop",
        skip_serializing_if = "Option::is_none"
    )]
    pub multihop: Option<u8>,
    #[serde(default = "default_families")]
    pub families: Vec<Family>,
    /// Overrides `router.holdTime`.
    #[serde(
        default,
        deserialize_with = "de::opt_hold_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub hold_time: Option<u16>,
    /// Accept paths with our own ASN up to this many times (0..=10).
    #[serde(default, deserialize_with = "de::allow_as_in")]
    pub allow_as_in: u8,
    #[serde(default)]
    pub next_hop_self: bool,
    /// Only for iBGP peers.
    #[serde(default)]
    pub route_reflector_client: bool,
    /// eBGP only: an UPDATE whose AS_PATH does not start with the peer's
    /// AS is treated as withdrawn (RFC 4271 §6.3), as FRR's
    /// `enforce-first-as`. Turn off for a route server, which does not
    /// prepend itself (RFC 7947 §2.2.2.1).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enforce_first_as: bool,
    #[serde(default, skip_serializing_if = "is_unset")]
    pub import: PolicyChain,
    #[serde(default, skip_serializing_if = "is_unset")]
    pub export: PolicyChain,
    /// TCP MD5 signature key (RFC 2385), 1..=80 bytes.
    #[serde(default, skip_serializing_if = "password::not_inline")]
    pub password: Option<Password>,
    /// A file holding the TCP-MD5 key instead of `password` (one trailing
    /// newline stripped; read at load and reload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Kubernetes mode only: the TCP-MD5 key from a Secret in kroute's
    /// namespace, instead of `password` / `passwordFile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretRef>,
    /// For a peer on a loopback address: the uids whose sockets may connect
    /// as this peer (anyone else on the node could otherwise impersonate it).
    #[serde(default = "default_local_users")]
    pub local_users: Vec<u32>,
    /// GTSM (RFC 5082): `true` (the peer is directly connected) or
    /// `{hops: N}` (N router hops away, 1..=254, as FRR's `ttl-security
    /// hops`). Send with TTL 255 and accept only TTL >= 256 - N.
    #[serde(
        default,
        deserialize_with = "de::ttl_security",
        serialize_with = "de::ser_ttl_security",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttl_security: Option<u8>,
    /// Next hop we advertise for IPv4 routes (else derived from the session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop_ipv4: Option<Ipv4Addr>,
    /// Next hop we advertise for IPv6 routes (else derived from the session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop_ipv6: Option<Ipv6Addr>,
    /// RFC 8950 extended next hop: advertise the capability for IPv4
    /// unicast over IPv6 next hops, accept IPv4 routes with an IPv6 next
    /// hop, and (negotiated, without `nextHopIpv4`) send ours with one.
    /// Default off, on for `interface` peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_next_hop: Option<bool>,
    /// Most prefixes the peer may send (see [`MaxPrefixes`]); none: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prefixes: Option<MaxPrefixes>,
    /// RFC 9687 send hold time, seconds: a session on which nothing could
    /// be written for this long is closed. Default max(480, 2 × hold time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_hold_time: Option<u32>,
    /// Overrides keys of `router.gracefulRestart` for this peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graceful_restart: Option<GracefulRestartOverride>,
    /// BFD (RFC 5880): `true` (300 ms × 3) or `{interval: MS, multiplier:
    /// N}`; single hop (RFC 5881), or multihop (RFC 5883) with `multihop`
    /// or `ttlSecurity` hops above 1. When BFD sees the peer go down, the
    /// session closes (Cease/10) and its routes leave at once.
    #[serde(
        default,
        deserialize_with = "bfd_form",
        skip_serializing_if = "Option::is_none"
    )]
    pub bfd: Option<Bfd>,
    /// The routing domain (`domains[].name`) the peer belongs to; absent:
    /// the default domain (`kernel.table`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// `peers[].passwordSecretRef`: key `key` of Secret `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRef {
    pub name: String,
    pub key: String,
}

/// `peers[].bfd` timers: we send every `interval` ms (at most) and want
/// the peer to, and declare it down after `multiplier` missed packets
/// (the peer's multiplier times the agreed interval, RFC 5880 §6.8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bfd {
    /// Milliseconds, 10..=60000.
    #[serde(default = "default_bfd_interval")]
    pub interval: u32,
    /// 1..=255.
    #[serde(default = "default_bfd_multiplier")]
    pub multiplier: u8,
}

impl Default for Bfd {
    fn default() -> Bfd {
        Bfd {
            interval: default_bfd_interval(),
            multiplier: default_bfd_multiplier(),
        }
    }
}

fn default_bfd_interval() -> u32 {
    300
}
fn default_bfd_multiplier() -> u8 {
    3
}

/// `bfd: true | false | {interval, multiplier}`.
fn bfd_form<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Bfd>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "true, false or { interval: MS, multiplier: N }")]
    enum Form {
        On(bool),
        Timers(Bfd),
    }
    Ok(match Option::<Form>::deserialize(d)? {
        None | Some(Form::On(false)) => None,
        Some(Form::On(true)) => Some(Bfd::default()),
        Some(Form::Timers(t)) => Some(t),
    })
}

/// `peers[].maxPrefixes`: a limit on the prefixes a peer may have in our
/// Adj-RIB-In, per family, counting every prefix it sent whether import
/// accepted it or not (rejected paths are kept for `explain`). Forms:
///
/// ```yaml
/// maxPrefixes: 10000                                   # every family, teardown
/// maxPrefixes: { ipv4-unicast: 10000, ipv6-unicast: 2000 }
/// maxPrefixes:
///   limit: 10000                 # or { ipv4-unicast: 10000, ipv6-unicast: 2000 }
///   action: teardown             # or warning (log once per crossing, stay up)
///   restartAfter: 60             # seconds; absent: stay down until
///                                # `kroute peer NAME reset` or a reload
///                                # that changes the peer
/// ```
///
/// A family missing from the per-family form is not limited. Teardown
/// sends Cease/1 with AFI, SAFI and the limit (RFC 4486 §4).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "MaxPrefixesForm")]
pub struct MaxPrefixes {
    pub limit: PrefixLimit,
    pub action: LimitAction,
    pub restart_after: Option<u32>,
}

impl MaxPrefixes {
    /// The limit for `family`, if it has one.
    pub fn limit_of(&self, family: Family) -> Option<u32> {
        match &self.limit {
            PrefixLimit::All(n) => Some(*n),
            PrefixLimit::PerFamily(m) => m.get(&family).copied(),
        }
    }
}

/// One number for every family, or one per family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PrefixLimit {
    All(u32),
    PerFamily(std::collections::BTreeMap<Family, u32>),
}

/// What to do when a peer sends more prefixes than its limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitAction {
    /// Close the session with Cease/1 and keep it down.
    #[default]
    Teardown,
    /// Log once per crossing; keep the session and the routes.
    Warning,
}

/// The long form, also the one written back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MaxPrefixesFull {
    limit: PrefixLimit,
    #[serde(default)]
    action: LimitAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    restart_after: Option<u32>,
}

#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "a number, a map of family to number, or { limit, action, restartAfter }"
)]
enum MaxPrefixesForm {
    Full(MaxPrefixesFull),
    Short(PrefixLimit),
}

impl From<MaxPrefixesForm> for MaxPrefixes {
    fn from(f: MaxPrefixesForm) -> MaxPrefixes {
        let full = match f {
            MaxPrefixesForm::Full(full) => full,
            MaxPrefixesForm::Short(limit) => MaxPrefixesFull {
                limit,
                action: LimitAction::default(),
                restart_after: None,
            },
        };
        MaxPrefixes {
            limit: full.limit,
            action: full.action,
            restart_after: full.restart_after,
        }
    }
}

impl Serialize for MaxPrefixes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        MaxPrefixesFull {
            limit: self.limit.clone(),
            action: self.action,
            restart_after: self.restart_after,
        }
        .serialize(s)
    }
}

/// `peers[].asn`: the remote AS a session accepts (FRR's `remote-as
/// external | internal | NUMBER`). With a kind, the AS is learned from the
/// peer's OPEN and then used wherever the peer's AS is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerAsn {
    Number(u32),
    /// Any AS but ours: an eBGP session.
    External,
    /// Our own AS: an iBGP session.
    Internal,
}

impl PeerAsn {
    /// The AS known before the OPEN: a number, or ours for `internal`.
    pub fn known(self, local_asn: u32) -> Option<u32> {
        match self {
            PeerAsn::Number(n) => Some(n),
            PeerAsn::Internal => Some(local_asn),
            PeerAsn::External => None,
        }
    }

    /// Whether a peer whose OPEN says `remote` may be this peer.
    pub fn accepts(self, local_asn: u32, remote: u32) -> bool {
        match self {
            PeerAsn::Number(n) => remote == n,
            PeerAsn::Internal => remote == local_asn,
            PeerAsn::External => remote != local_asn,
        }
    }

    /// An iBGP session (its kind is known before the OPEN).
    pub fn is_ibgp(self, local_asn: u32) -> bool {
        match self {
            PeerAsn::Number(n) => n == local_asn,
            PeerAsn::Internal => true,
            PeerAsn::External => false,
        }
    }

    /// What the peer's OPEN must say, in words (for the Bad Peer AS log).
    pub fn expected(self, local_asn: u32) -> String {
        match self {
            PeerAsn::Number(n) => format!("AS {n}"),
            PeerAsn::Internal => format!("internal (our AS {local_asn})"),
            PeerAsn::External => format!("external (any AS but our {local_asn})"),
        }
    }
}

impl From<u32> for PeerAsn {
    fn from(n: u32) -> PeerAsn {
        PeerAsn::Number(n)
    }
}

/// `peer.asn == 65001`: the peer is configured with that number.
impl PartialEq<u32> for PeerAsn {
    fn eq(&self, n: &u32) -> bool {
        *self == PeerAsn::Number(*n)
    }
}

impl std::fmt::Display for PeerAsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerAsn::Number(n) => write!(f, "{n}"),
            PeerAsn::External => f.write_str("external"),
            PeerAsn::Internal => f.write_str("internal"),
        }
    }
}

impl Serialize for PeerAsn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PeerAsn::Number(n) => s.serialize_u32(*n),
            kind => s.serialize_str(&kind.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for PeerAsn {
    /// A number, or `external` / `internal` (checked in the visitor, so
    /// an error carries the value's own line and column).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PeerAsn, D::Error> {
        struct V;
        const EXPECTING: &str =
            "an ASN in 1..=4294967294 other than 23456 (AS_TRANS), `external` or `internal`";
        impl serde::de::Visitor<'_> for V {
            type Value = PeerAsn;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(EXPECTING)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                if de::valid_asn(v) {
                    Ok(PeerAsn::Number(v as u32))
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match u64::try_from(v) {
                    Ok(u) => self.visit_u64(u),
                    Err(_) => Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                match s {
                    "external" => Ok(PeerAsn::External),
                    "internal" => Ok(PeerAsn::Internal),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(s), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl Peer {
    /// iBGP: our AS, or `internal`.
    pub fn is_ibgp(&self, local_asn: u32) -> bool {
        self.asn.is_ibgp(local_asn)
    }

    /// Whether the RFC 8950 extended next hop capability is advertised
    /// (`extendedNextHop`, default off; on for `interface` peers, whose
    /// one IPv6 session carries the IPv4 routes too).
    pub fn extended_next_hop(&self) -> bool {
        self.extended_next_hop.unwrap_or(self.interface.is_some())
    }

    /// The TTL of our packets to this peer.
    pub fn ttl(&self, local_asn: u32) -> u8 {
        if self.ttl_security.is_some() {
            // RFC 5082 §3: GTSM peers send with TTL 255.
            return 255;
        }
        match self.multihop {
            Some(ttl) => ttl,
            None if self.is_ibgp(local_asn) => 255,
            None => 1,
        }
    }

    /// With GTSM, the lowest TTL (hop limit) accepted from this peer: a
    /// peer N hops away sends 255 and arrives with 256 - N.
    pub fn min_ttl(&self) -> Option<u8> {
        self.ttl_security.map(|hops| 255 - (hops - 1))
    }

    /// With `bfd`: the router hops to the peer when more than one
    /// (`multihop` N > 1, or `ttlSecurity: {hops: N}`), for a multihop
    /// BFD session (RFC 5883); None: single hop (RFC 5881).
    pub fn bfd_multihop(&self) -> Option<u8> {
        self.multihop.or(self.ttl_security).filter(|&hops| hops > 1)
    }

    /// `router.gracefulRestart` with this peer's overrides.
    pub fn graceful_restart_or(&self, router: &Router) -> GracefulRestart {
        let base = router.graceful_restart;
        let o = self.graceful_restart.unwrap_or_default();
        GracefulRestart {
            enabled: o.enabled.unwrap_or(base.enabled),
            restart_time: o.restart_time.unwrap_or(base.restart_time),
            stale_time: o.stale_time.unwrap_or(base.stale_time),
            // Router-wide: no per-peer key.
            selection_deferral_time: base.selection_deferral_time,
        }
    }

    /// The hold time we propose to this peer.
    pub fn hold_time_or(&self, router: &Router) -> u16 {
        self.hold_time.unwrap_or(router.hold_time)
    }
}

/// Prefixes the node originates, with the communities they carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Advertise {
    #[serde(
        default,
        deserialize_with = "de::prefixes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub prefixes: Vec<IpNet>,
    /// Advertise these interfaces' global addresses as /32 and /128 routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<Community>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub large_communities: Vec<LargeCommunity>,
    /// LOCAL_PREF these routes carry to iBGP peers (RFC 4271 §5.1.5; never
    /// sent over eBGP); absent: 100, as for every route we send over iBGP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
    /// Kubernetes mode only: this node's pod CIDRs (`podCIDRs: true` is
    /// `{ source: node }`).
    #[serde(
        default,
        rename = "podCIDRs",
        deserialize_with = "pod_cidrs",
        skip_serializing_if = "Option::is_none"
    )]
    pub pod_cidrs: Option<PodCidrs>,
    /// Kubernetes mode only: Service addresses as /32 and /128 routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<ServiceAddresses>,
    /// Advertise to the peers of this routing domain (`domains[].name`)
    /// instead of the default domain's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

impl Advertise {
    /// An advertisement of `prefixes` without communities.
    pub fn of_prefixes(prefixes: Vec<IpNet>) -> Advertise {
        Advertise {
            prefixes,
            interfaces: Vec::new(),
            communities: Vec::new(),
            large_communities: Vec::new(),
            local_pref: None,
            pod_cidrs: None,
            services: None,
            domain: None,
        }
    }

    /// Its addresses come from the Kubernetes API (`podCIDRs`, `services`).
    pub fn from_kubernetes(&self) -> bool {
        self.pod_cidrs.is_some() || self.services.is_some()
    }
}

/// `advertise[].podCIDRs`: where this node's pod CIDRs are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodCidrs {
    #[serde(default)]
    pub source: PodCidrSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PodCidrSource {
    /// `Node.spec.podCIDRs` (the controller manager's node IPAM).
    #[default]
    Node,
    /// `CiliumNode.spec.ipam.podCIDRs` (Cilium's cluster-pool IPAM, which
    /// leaves the Node's field empty).
    CiliumNode,
}

/// `podCIDRs: true | false | { source: node | ciliumNode }`.
fn pod_cidrs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<PodCidrs>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Flag(bool),
        Source(PodCidrs),
    }
    // Untagged errors say nothing useful: name the accepted forms.
    match Form::deserialize(d).map_err(|_| {
        serde::de::Error::custom("expected `true`, `false` or `{ source: node | ciliumNode }`")
    })? {
        Form::Flag(true) => Ok(Some(PodCidrs::default())),
        Form::Flag(false) => Ok(None),
        Form::Source(s) => Ok(Some(s)),
    }
}

impl Default for PodCidrs {
    fn default() -> Self {
        PodCidrs {
            source: PodCidrSource::Node,
        }
    }
}

/// `advertise[].services`: which addresses of the selected Services.
/// `externalTrafficPolicy: Local` limits the external addresses (load
/// balancer and external IPs) to nodes with a ready local endpoint,
/// `internalTrafficPolicy: Local` the cluster IPs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceAddresses {
    /// `status.loadBalancer.ingress[].ip` of `type: LoadBalancer` Services.
    #[serde(default = "yes", rename = "loadBalancerIPs")]
    pub load_balancer_ips: bool,
    /// `spec.externalIPs`.
    #[serde(default = "yes", rename = "externalIPs")]
    pub external_ips: bool,
    /// `spec.clusterIPs` (not of headless Services).
    #[serde(default, rename = "clusterIPs")]
    pub cluster_ips: bool,
    /// Only Services whose labels match (`matchLabels`, `matchExpressions`
    /// as in Kubernetes); absent: every Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
}

fn is_unset(c: &PolicyChain) -> bool {
    *c == PolicyChain::Unset
}
fn yes() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}
fn default_listen() -> Option<Listen> {
    Some(Listen::default())
}
fn unspecified() -> IpAddr {
    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
}

fn is_unspecified(a: &IpAddr) -> bool {
    a.is_unspecified()
}

fn default_listen_address() -> IpAddr {
    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
}
fn default_port() -> u16 {
    179
}
fn default_max_paths() -> usize {
    1
}
fn default_hold_time() -> u16 {
    90
}
fn default_connect_retry() -> u32 {
    5
}
fn default_restart_time() -> u16 {
    120
}
fn default_stale_time() -> u32 {
    360
}
fn default_selection_deferral_time() -> u16 {
    30
}
fn default_socket() -> PathBuf {
    PathBuf::from("/run/kroute/kroute.sock")
}
fn default_table() -> u32 {
    254
}
fn default_protocol() -> u8 {
    186
}
fn default_metric() -> u32 {
    20
}
fn default_local_users() -> Vec<u32> {
    vec![0]
}
fn default_families() -> Vec<Family> {
    vec![Family::Ipv4Unicast, Family::Ipv6Unicast]
}

impl Config {
    /// Graceful restart is enabled for the router or for some peer: the
    /// kernel routes then stay when kroute exits (as with `keepOnExit`).
    pub fn graceful_restart_enabled(&self) -> bool {
        self.peers
            .iter()
            .any(|p| p.graceful_restart_or(&self.router).enabled)
            || self.router.graceful_restart.enabled
    }

    /// The canonical YAML form: `parse(to_yaml(c)) == c`.
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).expect("config values always serialize")
    }
}
