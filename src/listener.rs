//! The BGP listener: accepts connections and lets in only those that may
//! be the peer they come from, before they reach any channel.
//!
//! Checks, in order, for each accepted connection:
//! 1. the source address is a configured peer's, or else in one of
//!    `router.listen.ranges` (a dynamic neighbor; the longest range's
//!    template gives the settings below, the router task its `limit`);
//! 2. GTSM (RFC 5082 §3), if the peer has `ttlSecurity`: the SYN arrived
//!    with TTL >= the peer's minimum; later segments are held to it by the
//!    kernel (IP_MINTTL / IPV6_MINHOPCOUNT on the connection);
//! 3. for a peer on a loopback address: the connecting socket belongs to
//!    one of the peer's `localUsers` (sock_diag), since any local process
//!    can connect from `::1` / `127.0.0.1`;
//! 4. no other connection from that address is still waiting for the
//!    router task to hand it on (the peer task holds at most one per
//!    direction itself; the FSM resolves collisions).
//!
//! The router task publishes the peers' addresses and access settings on a
//! `watch` ([`AccessList`]), updated on reload; the listener also keeps the
//! listening socket's TCP-MD5 keys in step with it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::config::{Config, Password};
use crate::events::Incoming;
use crate::pending::Pending;
use crate::session::socket;

/// What the listener needs to know about one peer address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAccess {
    pub name: String,
    /// GTSM: lowest TTL accepted.
    pub min_ttl: Option<u8>,
    /// Uids allowed to connect as this peer when its address is loopback.
    pub local_users: Vec<u32>,
    pub password: Option<Password>,
}

/// Who may connect: the configured peers by address, and the listen
/// ranges of dynamic neighbors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessList {
    pub peers: HashMap<IpAddr, PeerAccess>,
    /// By prefix; `name` is the template's.
    pub ranges: Vec<(IpNet, PeerAccess)>,
    /// BGP unnumbered peers by interface: any link-local address on it.
    pub interfaces: HashMap<String, PeerAccess>,
}

impl AccessList {
    /// The settings a connection from `addr` is held to: its configured
    /// peer's, else its longest range's (configured peers win, RFC-less
    /// but what FRR and BIRD do).
    fn get(&self, addr: &IpAddr) -> Option<&PeerAccess> {
        self.peers.get(addr).or_else(|| {
            self.ranges
                .iter()
                .filter(|(prefix, _)| prefix.contains(addr))
                .max_by_key(|(prefix, _)| prefix.prefix_len())
                .map(|(_, access)| access)
        })
    }
}

fn access(p: &crate::config::Peer) -> PeerAccess {
    PeerAccess {
        name: p.name.clone(),
        min_ttl: p.min_ttl(),
        local_users: p.local_users.clone(),
        password: p.password.clone(),
    }
}

/// The access list of a config. Two peers on one address (other ports)
/// share the first one's settings: the listener cannot tell them apart.
pub fn access_list(c: &Config) -> AccessList {
    let mut list = AccessList::default();
    for p in &c.peers {
        match &p.interface {
            Some(ifname) => {
                list.interfaces.insert(ifname.clone(), access(p));
            }
            None => {
                list.peers.entry(p.address).or_insert_with(|| access(p));
            }
        }
    }
    for r in crate::dynamic::ranges(c) {
        list.ranges.push((r.prefix, access(&r.peer)));
    }
    list
}

/// Why a connection was closed at accept.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// Neither a configured peer's address nor in a listen range.
    NotAPeer,
    TtlTooLow {
        ttl: u8,
        min: u8,
    },
    Gtsm(String),
    LocalUser {
        uid: u32,
        allowed: Vec<u32>,
    },
    OwnerUnknown(String),
    AlreadyPending,
}

impl Refusal {
    /// Refusals are rate-limited per source and kind: a new kind of
    /// refusal from a source is news.
    fn kind(&self) -> &'static str {
        match self {
            Refusal::NotAPeer => "not-a-peer",
            Refusal::TtlTooLow { .. } | Refusal::Gtsm(_) => "gtsm",
            Refusal::LocalUser { .. } | Refusal::OwnerUnknown(_) => "local-user",
            Refusal::AlreadyPending => "pending",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotAPeer => {
                f.write_str("not a configured peer's address nor in a listen range")
            }
            Refusal::TtlTooLow { ttl, min } => write!(
                f,
                "ttlSecurity: SYN arrived with TTL {ttl}, below the minimum {min} (RFC 5082)"
            ),
            Refusal::Gtsm(e) => write!(f, "ttlSecurity: cannot check the TTL: {e}"),
            Refusal::LocalUser { uid, allowed } => write!(
                f,
                "loopback peer: the connecting socket belongs to uid {uid}, localUsers allows {allowed:?}"
            ),
            Refusal::OwnerUnknown(e) => {
                write!(f, "loopback peer: cannot find the connecting socket's owner: {e}")
            }
            Refusal::AlreadyPending => {
                f.write_str("another connection from this address is still being handed over")
            }
        }
    }
}

/// Decide whether a connection from `remote` (to our `local`) may go on
/// to the router task as peer `access`.
fn admit(
    stream: &TcpStream,
    local: SocketAddr,
    remote: SocketAddr,
    access: &PeerAccess,
) -> Result<(), Refusal> {
    if let Some(min) = access.min_ttl {
        match socket::syn_ttl(stream) {
            Ok(ttl) if ttl < min => return Err(Refusal::TtlTooLow { ttl, min }),
            Ok(_) => {}
            // No saved SYN (e.g. the connection came through a SYN
            // cookie): the socket's minimum TTL below still drops every
            // segment of a peer too far away, so its OPEN never arrives.
            Err(e) => debug!(%remote, "no SYN TTL to check: {e}"),
        }
        socket::stream_min_ttl(stream, remote.ip(), min)
            .map_err(|e| Refusal::Gtsm(e.to_string()))?;
    }
    if socket::unmap(remote.ip()).is_loopback() {
        // The connecting socket, seen from its own side: local end is our
        // remote. Unmap both, since the client's socket is IPv4 when it
        // connected to 127.0.0.1 of our dual-stack listener.
        let its_local = SocketAddr::new(socket::unmap(remote.ip()), remote.port());
        let its_remote = SocketAddr::new(socket::unmap(local.ip()), local.port());
        let uid = crate::sock_diag::tcp_socket_uid(its_local, its_remote)
            .map_err(|e| Refusal::OwnerUnknown(e.to_string()))?;
        if !access.local_users.contains(&uid) {
            return Err(Refusal::LocalUser {
                uid,
                allowed: access.local_users.clone(),
            });
        }
    }
    Ok(())
}

/// How often a source's refusals are logged.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// Sources remembered for rate limiting; beyond this, refusals from new
/// sources are only counted (a scan from many addresses costs no memory).
const LOG_SOURCES: usize = 1024;

/// One log line per source, kind of refusal and minute, with the count of
/// refusals since the previous line.
#[derive(Default)]
struct RefusalLog {
    sources: HashMap<(IpAddr, &'static str), (Instant, u64)>,
    unlogged_others: u64,
}

impl RefusalLog {
    /// Count a refusal; true when it was logged.
    fn refused(&mut self, remote: IpAddr, why: &Refusal, peer: Option<&str>) -> bool {
        let now = Instant::now();
        let key = (remote, why.kind());
        if self.sources.len() >= LOG_SOURCES && !self.sources.contains_key(&key) {
            self.sources
                .retain(|_, (at, _)| now.duration_since(*at) < LOG_EVERY);
            if self.sources.len() >= LOG_SOURCES {
                self.unlogged_others += 1;
                return false;
            }
        }
        let first = !self.sources.contains_key(&key);
        let (at, count) = self.sources.entry(key).or_insert((now, 0));
        *count += 1;
        if first || now.duration_since(*at) >= LOG_EVERY {
            let others = std::mem::take(&mut self.unlogged_others);
            let peer = peer.unwrap_or("-");
            warn!(
                %remote,
                peer,
                refused = *count,
                others,
                "connection closed at accept: {why}"
            );
            *at = now;
            *count = 0;
            return true;
        }
        false
    }
}

/// The listener task; runs until the router task is gone.
pub struct Listener {
    socket: TcpListener,
    access: watch::Receiver<AccessList>,
    /// The keys now on the listening socket, by address (a host prefix)
    /// or range.
    md5_keys: HashMap<IpNet, Password>,
    pending: Pending,
    log: RefusalLog,
}

impl Listener {
    /// Take over `socket` and put the peers' TCP-MD5 keys on it.
    pub fn new(socket: TcpListener, access: watch::Receiver<AccessList>) -> Listener {
        let mut l = Listener {
            socket,
            access,
            md5_keys: HashMap::new(),
            pending: Pending::default(),
            log: RefusalLog::default(),
        };
        let list = l.access.borrow_and_update().clone();
        l.apply(&list);
        l
    }

    /// Bring the listening socket in line with `list`.
    fn apply(&mut self, list: &AccessList) {
        self.sync_md5(list);
        let gtsm = (list.peers.values())
            .chain(list.ranges.iter().map(|(_, p)| p))
            .chain(list.interfaces.values())
            .any(|p| p.min_ttl.is_some());
        if let Err(e) = socket::listener_ttl(&self.socket, gtsm.then_some(255)) {
            warn!("setting the listener's TTL for ttlSecurity: {e}");
        }
    }

    /// Set, change and remove TCP-MD5 keys so the listener has exactly
    /// the keys of `list`: one per peer address, one per range prefix (the
    /// kernel signs with the longest matching key, so a configured peer's
    /// own key wins inside a range).
    fn sync_md5(&mut self, list: &AccessList) {
        // Interface peers have no TCP-MD5 (refused at config load).
        let peers = list.peers.iter().map(|(a, p)| (IpNet::from(*a), p));
        let ranges = list.ranges.iter().map(|(prefix, p)| (*prefix, p));
        let named: HashMap<IpNet, &str> = peers
            .clone()
            .chain(ranges.clone())
            .map(|(k, p)| (k, p.name.as_str()))
            .collect();
        let wanted: HashMap<IpNet, Password> = peers
            .chain(ranges)
            .filter_map(|(k, p)| p.password.clone().map(|pw| (k, pw)))
            .collect();
        let removed: Vec<IpNet> = self
            .md5_keys
            .keys()
            .filter(|k| !wanted.contains_key(k))
            .copied()
            .collect();
        for key in removed {
            if let Err(e) = socket::listener_md5(&self.socket, key, None) {
                warn!(peer_address = %key, "removing TCP-MD5 key from the listener: {e}");
            }
            self.md5_keys.remove(&key);
        }
        for (key, pw) in wanted {
            if self.md5_keys.get(&key) == Some(&pw) {
                continue;
            }
            let peer = named.get(&key).copied().unwrap_or("-");
            match socket::listener_md5(&self.socket, key, Some(&pw)) {
                Ok(()) => {
                    self.md5_keys.insert(key, pw);
                }
                Err(e) => warn!(peer, "TCP-MD5 on listener: {e}"),
            }
        }
    }

    pub async fn run(mut self, rib: mpsc::Sender<Incoming>) {
        loop {
            tokio::select! {
                changed = self.access.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let list = self.access.borrow_and_update().clone();
                    self.apply(&list);
                }
                accepted = self.socket.accept() => match accepted {
                    Ok((stream, remote)) => {
                        if let Some(event) = self.check(stream, remote) {
                            if rib.send(event).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        warn!("accept: {e}");
                        // E.g. EMFILE: do not spin while it lasts.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
    }

    /// The event handing `stream` to the router task, or `None` after
    /// closing it (dropping the stream closes it).
    fn check(&mut self, stream: TcpStream, remote: SocketAddr) -> Option<Incoming> {
        let addr = socket::unmap(remote.ip());
        // From a link-local address on an interface peer's interface: that
        // peer; otherwise by address as for any other connection.
        let list = self.access.borrow();
        let interface = link_local_interface(remote).filter(|i| list.interfaces.contains_key(i));
        let access = match &interface {
            Some(ifname) => list.interfaces.get(ifname).cloned(),
            None => list.get(&addr).cloned(),
        };
        drop(list);
        let Some(access) = access else {
            let _ = self.log.refused(addr, &Refusal::NotAPeer, None);
            return None;
        };
        let verdict = stream
            .local_addr()
            .map_err(|e| Refusal::OwnerUnknown(e.to_string()))
            .and_then(|local| admit(&stream, local, remote, &access));
        if let Err(why) = verdict {
            let _ = self.log.refused(addr, &why, Some(&access.name));
            return None;
        }
        let Some(slot) = self.pending.claim(addr) else {
            let _ = self
                .log
                .refused(addr, &Refusal::AlreadyPending, Some(&access.name));
            return None;
        };
        debug!(peer = %access.name, %remote, "connection accepted");
        Some(Incoming {
            stream,
            remote: addr,
            interface,
            slot,
        })
    }
}

/// The interface a connection from an IPv6 link-local address came in
/// on (its scope), the key of a BGP unnumbered peer.
fn link_local_interface(remote: SocketAddr) -> Option<String> {
    let SocketAddr::V6(r) = remote else {
        return None;
    };
    if !r.ip().is_unicast_link_local() || r.scope_id() == 0 {
        return None;
    }
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `name` has the IF_NAMESIZE bytes if_indextoname writes.
    let p = unsafe { libc::if_indextoname(r.scope_id(), name.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: if_indextoname wrote a NUL-terminated name into `name`.
    let name = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pending_connection_per_address() {
        let pending = Pending::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let slot = pending.claim(a).expect("first claim");
        assert!(
            pending.claim(a).is_none(),
            "second claim for the same address"
        );
        assert!(pending.claim(b).is_some(), "another address is independent");
        drop(slot);
        assert!(pending.claim(a).is_some(), "free again after the handoff");
    }

    #[test]
    fn refusals_are_logged_once_per_source_kind_and_minute() {
        let mut log = RefusalLog::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(log.refused(a, &Refusal::NotAPeer, None));
        assert!(!log.refused(a, &Refusal::NotAPeer, None), "same minute");
        assert!(log.refused(b, &Refusal::NotAPeer, None), "another source");
        let low = Refusal::TtlTooLow { ttl: 1, min: 255 };
        assert!(log.refused(a, &low, Some("p")), "another kind");
        // A minute later the source is logged again.
        for (at, _) in log.sources.values_mut() {
            *at -= LOG_EVERY;
        }
        assert!(log.refused(a, &Refusal::NotAPeer, None));
    }

    #[test]
    fn a_flood_of_sources_is_counted_not_remembered() {
        let mut log = RefusalLog::default();
        for i in 0..(LOG_SOURCES as u32 + 10) {
            log.refused(IpAddr::from(i.to_be_bytes()), &Refusal::NotAPeer, None);
        }
        assert_eq!(log.sources.len(), LOG_SOURCES);
        assert_eq!(log.unlogged_others, 10);
    }

    fn peer(extra: &str) -> Result<crate::config::Peer, String> {
        let yaml = format!(
            "router: {{ asn: 65000, routerId: 10.0.0.1 }}\n\
             peers:\n  - {{ name: a, address: 192.0.2.1, asn: 65001{extra} }}\n"
        );
        crate::config::parse(&yaml, "t.yaml")
            .map(|mut c| c.peers.remove(0))
            .map_err(|e| e.to_string())
    }

    /// FRR's `ttl-security hops N`: the peer sends 255, we accept 256 - N.
    #[test]
    fn ttl_security_hops_give_the_minimum_ttl() {
        let direct = peer(", ttlSecurity: true").unwrap();
        assert_eq!((direct.min_ttl(), direct.ttl(65000)), (Some(255), 255));
        let two = peer(", ttlSecurity: {hops: 2}").unwrap();
        assert_eq!((two.min_ttl(), two.ttl(65000)), (Some(254), 255));
        let off = peer(", ttlSecurity: false").unwrap();
        assert_eq!((off.min_ttl(), off.ttl(65000)), (None, 1));
        // The canonical form reads back the same.
        for p in [direct, two, off] {
            let yaml = format!(
                "router: {{ asn: 65000, routerId: 10.0.0.1 }}\npeers:\n{}",
                serde_yaml_ng::to_string(&vec![p.clone()]).unwrap()
            );
            let back = crate::config::parse(&yaml, "t.yaml")
                .unwrap()
                .peers
                .remove(0);
            assert_eq!(back, p, "{yaml}");
        }
    }

    #[test]
    fn ttl_security_rejects_bad_values_and_multihop() {
        for bad in ["{hops: 0}", "{hops: 255}", "7", "{hop: 1}"] {
            assert!(peer(&format!(", ttlSecurity: {bad}")).is_err(), "{bad}");
        }
        let e = peer(", ttlSecurity: true, multihop: 2").unwrap_err();
        assert!(
            e.contains("peers[0].ttlSecurity") && e.contains("multihop"),
            "{e}"
        );
        let e = peer(", localUsers: []").unwrap_err();
        assert!(e.contains("peers[0].localUsers"), "{e}");
    }

    #[test]
    fn access_list_follows_the_config() {
        let yaml = "router: { asn: 65000, routerId: 10.0.0.1 }\n\
                    peers:\n\
                    \x20 - { name: a, address: 192.0.2.1, asn: 65001, ttlSecurity: true, password: pw }\n\
                    \x20 - { name: cni, address: '::1', asn: 65000, localUsers: [0, 1000] }\n";
        let c = crate::config::parse(yaml, "t.yaml").unwrap();
        let list = access_list(&c);
        let a = &list.peers[&"192.0.2.1".parse::<IpAddr>().unwrap()];
        assert_eq!(a.min_ttl, Some(255));
        assert_eq!(a.local_users, vec![0]);
        assert_eq!(a.password, Some(Password::new("pw")));
        let cni = &list.peers[&"::1".parse::<IpAddr>().unwrap()];
        assert_eq!(cni.local_users, vec![0, 1000]);
        assert_eq!(cni.min_ttl, None);
    }

    #[test]
    fn interface_peers_are_found_by_the_link_local_scope() {
        let yaml = "router: { asn: 65000, routerId: 10.0.0.1 }\n\
                    peers:\n\
                    \x20 - { name: tor, interface: lo, asn: external, ttlSecurity: true }\n\
                    \x20 - { name: a, address: 192.0.2.1, asn: 65001 }\n";
        let list = access_list(&crate::config::parse(yaml, "t.yaml").unwrap());
        assert_eq!(list.interfaces["lo"].name, "tor");
        assert_eq!(list.interfaces["lo"].min_ttl, Some(255));
        // Its stand-in address is nobody's.
        assert!(list.get(&"::".parse().unwrap()).is_none());
        // A link-local source names its interface by scope (lo is 1); a
        // global one, or one without scope, none.
        let on_lo: SocketAddr = "[fe80::2%1]:40000".parse().unwrap();
        assert_eq!(link_local_interface(on_lo).as_deref(), Some("lo"));
        let no_scope: SocketAddr = "[fe80::2]:40000".parse().unwrap();
        assert_eq!(link_local_interface(no_scope), None);
        let global: SocketAddr = "[fd00::2%1]:40000".parse().unwrap();
        assert_eq!(link_local_interface(global), None);
    }

    #[test]
    fn ranges_let_strangers_in_and_configured_peers_win() {
        let yaml = "router:\n  asn: 65000\n  routerId: 10.0.0.1\n  listen:\n    ranges:\n\
                    \x20     - { prefix: 10.1.0.0/16, template: nodes }\n\
                    \x20     - { prefix: 10.1.2.0/24, template: gtsm }\n\
                    peerTemplates:\n\
                    \x20 - { name: nodes, asn: external, password: pw }\n\
                    \x20 - { name: gtsm, asn: internal, ttlSecurity: true }\n\
                    peers:\n  - { name: a, address: 10.1.2.3, asn: 65001 }\n";
        let list = access_list(&crate::config::parse(yaml, "t.yaml").unwrap());
        let at = |a: &str| list.get(&a.parse().unwrap()).map(|p| p.name.clone());
        assert_eq!(at("10.1.2.3").as_deref(), Some("a"));
        assert_eq!(at("10.1.2.4").as_deref(), Some("gtsm"));
        assert_eq!(at("10.1.9.9").as_deref(), Some("nodes"));
        assert_eq!(at("10.2.0.1"), None);
        let nodes = list.get(&"10.1.9.9".parse().unwrap()).unwrap();
        assert_eq!(nodes.password, Some(Password::new("pw")));
    }
}
