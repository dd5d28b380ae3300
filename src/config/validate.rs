//! The checks serde cannot express: names, references, combinations. Each
//! failure names the key path of the offending value; `ConfigError::at`
//! finds its line.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use rib::policy::PolicyChain;
use wire::Family;

use super::error::KeyPath;
use super::password;
use super::schema::{Config, GracefulRestart, Peer, PrefixLimit};
pub(super) use name::check_name;
use name::Invalid;

mod domains;
mod name;

/// The first problem found, with the key path of the offending value.
pub(super) fn validate(c: &Config) -> Result<(), Invalid> {
    let root = KeyPath::default();
    let router = root.key("router");
    if c.router.router_id.is_unspecified() {
        return Err((
            router.key("routerId"),
            "router ID must not be 0.0.0.0".to_string(),
        ));
    }
    if c.router.cluster_id.is_some_and(|id| id.is_unspecified()) {
        return Err((
            router.key("clusterId"),
            "cluster ID must not be 0.0.0.0".to_string(),
        ));
    }

    check_graceful_restart(&router.key("gracefulRestart"), &c.router.graceful_restart)?;
    check_backup_routes(c)?;
    check_http(c)?;
    let deferral = c.router.graceful_restart.selection_deferral_time;
    if !(1..=3600).contains(&deferral) {
        return Err((
            router.key("gracefulRestart").key("selectionDeferralTime"),
            format!("selectionDeferralTime {deferral} is out of range (1..=3600 seconds)"),
        ));
    }

    let policy_names = check_policies(c)?;
    let peer_names = check_peers(c, &policy_names)?;
    check_ranges(c, &policy_names)?;
    check_neighbor_refs(c, &peer_names)?;
    domains::check_domains(c)?;
    check_advertise(c)?;
    check_bmp(c)
}

/// `bmp[]`: a reachable address, each collector once, a monitoring list
/// without repeats, bounds that make sense.
fn check_bmp(c: &Config) -> Result<(), Invalid> {
    let mut seen: Vec<(IpAddr, u16)> = Vec::new();
    for (i, b) in c.bmp.iter().enumerate() {
        let path = KeyPath::default().key("bmp").index(i);
        if b.address.is_unspecified() || b.address.is_multicast() {
            return Err((
                path.key("address"),
                format!("{} is not a collector's address", b.address),
            ));
        }
        if let Some(first) = seen.iter().position(|s| *s == (b.address, b.port)) {
            return Err((
                path.key("port"),
                format!(
                    "collector {}:{} is already configured at bmp[{first}]",
                    b.address, b.port
                ),
            ));
        }
        seen.push((b.address, b.port));
        if b.monitoring.is_empty() {
            return Err((
                path.key("monitoring"),
                "monitoring must name prePolicy, postPolicy or both (leave it out for both)"
                    .to_string(),
            ));
        }
        for (j, m) in b.monitoring.iter().enumerate() {
            if b.monitoring[..j].contains(m) {
                return Err((
                    path.key("monitoring").index(j),
                    format!("{} is listed twice", m.as_str()),
                ));
            }
        }
        if b.statistics_interval != 0 && !(5..=86400).contains(&b.statistics_interval) {
            return Err((
                path.key("statisticsInterval"),
                format!(
                    "statisticsInterval {} is out of range (0 = off, else 5..=86400 seconds)",
                    b.statistics_interval
                ),
            ));
        }
        if !(1..=4096).contains(&b.queue_limit_mib) {
            return Err((
                path.key("queueLimitMiB"),
                format!(
                    "queueLimitMiB {} is out of range (1..=4096)",
                    b.queue_limit_mib
                ),
            ));
        }
    }
    Ok(())
}

/// Standby routes point at nexthop objects and sit at the next metric.
fn check_backup_routes(c: &Config) -> Result<(), Invalid> {
    let k = &c.kernel;
    if !k.backup_routes {
        return Ok(());
    }
    let at = KeyPath::default().key("kernel").key("backupRoutes");
    if !k.nexthop_objects {
        return Err((
            at,
            "backupRoutes needs nexthopObjects: true (the kernel falls back to a backup route only when the best route goes with its nexthop object)".to_string(),
        ));
    }
    if k.metric == u32::MAX {
        return Err((
            at,
            "backupRoutes puts backup routes at metric + 1: metric must be below 4294967295"
                .to_string(),
        ));
    }
    Ok(())
}

/// Policy names are valid and unique; returns them in file order.
fn check_policies(c: &Config) -> Result<Vec<&str>, Invalid> {
    let mut names: Vec<&str> = Vec::new();
    for (i, p) in c.policies.iter().enumerate() {
        let path = KeyPath::default().key("policies").index(i).key("name");
        check_name(&path, "policy", &p.name)?;
        if let Some(first) = names.iter().position(|n| *n == p.name) {
            return Err((
                path,
                format!(
                    "policy {:?} is already defined at policies[{first}]",
                    p.name
                ),
            ));
        }
        names.push(&p.name);
    }
    Ok(names)
}

fn check_peers<'c>(c: &'c Config, policies: &[&str]) -> Result<HashSet<&'c str>, Invalid> {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut endpoints: HashMap<(IpAddr, u16), usize> = HashMap::new();
    let mut interfaces: HashMap<&str, usize> = HashMap::new();
    for (i, peer) in c.peers.iter().enumerate() {
        let path = KeyPath::default().key("peers").index(i);
        check_name(&path.key("name"), "peer", &peer.name)?;
        if let Some(first) = names.insert(&peer.name, i) {
            return Err((
                path.key("name"),
                format!(
                    "peer name {:?} is already used by peers[{first}]",
                    peer.name
                ),
            ));
        }
        if let Some(ifname) = &peer.interface {
            if let Some(first) = interfaces.insert(ifname.as_str(), i) {
                return Err((
                    path.key("interface"),
                    format!(
                        "interface {ifname} is already peers[{first}]'s: one peer per interface"
                    ),
                ));
            }
            check_interface_peer(&path, peer, ifname)?;
            check_peer_settings(c, &path, peer, policies)?;
            continue;
        }
        let a = peer.address;
        // Absent reads as `::` (the stand-in of interface peers).
        if a.is_unspecified() {
            return Err((
                path.clone(),
                "no usable `address`: give the peer's address, or `interface` for BGP unnumbered"
                    .into(),
            ));
        }
        if a.is_multicast() {
            return Err((path.key("address"), format!("{a} is not a unicast address")));
        }
        if let Some(first) = endpoints.insert((a, peer.port), i) {
            return Err((
                path.key("address"),
                format!("peers[{first}] already has address {a} port {}", peer.port),
            ));
        }
        if let Some(local) = peer.local_address {
            if local.is_ipv4() != a.is_ipv4() {
                return Err((
                    path.key("localAddress"),
                    format!("{local} and the peer address {a} are of different families"),
                ));
            }
        }
        check_peer_settings(c, &path, peer, policies)?;
    }
    Ok(names.into_keys().collect())
}

/// An `interface` peer (BGP unnumbered): no address of its own, a valid
/// interface name, and none of the settings that need the neighbour's
/// address before the session starts (they are refused rather than
/// silently ignored).
fn check_interface_peer(path: &KeyPath, peer: &Peer, ifname: &str) -> Result<(), Invalid> {
    let at = |key: &str| path.key(key);
    // IFNAMSIZ is 16 with the NUL; the kernel refuses '/', ':' and blanks.
    let valid = !ifname.is_empty()
        && ifname.len() < 16
        && ifname != "."
        && ifname != ".."
        && !ifname.contains(['/', ':'])
        && !ifname.chars().any(char::is_whitespace);
    if !valid {
        return Err((
            at("interface"),
            format!(
                "{ifname:?} is not an interface name (1..=15 characters, no '/', ':' or blanks)"
            ),
        ));
    }
    if !peer.address.is_unspecified() {
        return Err((
            at("address"),
            "give either `address` or `interface` (BGP unnumbered: the neighbour's link-local address is learned), not both".into(),
        ));
    }
    let unsupported = |key: &str, why: &str| {
        Err((
            at(key),
            format!("{key} is not supported on an interface peer: {why}"),
        ))
    };
    if peer.bfd.is_some() {
        return unsupported(
            "bfd",
            "the BFD session needs the neighbour's address at start",
        );
    }
    if peer.password.is_some() {
        return unsupported(
            "password",
            "the TCP-MD5 key is bound to an address known only at run time",
        );
    }
    if peer.password_file.is_some() {
        return unsupported(
            "passwordFile",
            "the TCP-MD5 key is bound to an address known only at run time",
        );
    }
    if peer.password_secret_ref.is_some() {
        return unsupported(
            "passwordSecretRef",
            "the TCP-MD5 key is bound to an address known only at run time",
        );
    }
    if peer.passive {
        return unsupported(
            "passive",
            "kroute both accepts the neighbour's connection and connects to it",
        );
    }
    if peer.multihop.is_some() {
        return unsupported("multihop", "the neighbour is on the link");
    }
    if peer.local_address.is_some() {
        return unsupported(
            "localAddress",
            "the session runs from our link-local address on the interface",
        );
    }
    Ok(())
}

/// The checks of one peer's session and policy settings (a configured
/// peer's, or a listen range's template peer).
fn check_peer_settings(
    c: &Config,
    path: &KeyPath,
    peer: &Peer,
    policies: &[&str],
) -> Result<(), Invalid> {
    check_families(&path.key("families"), &peer.families)?;
    if peer.extended_next_hop() && !peer.families.contains(&Family::Ipv4Unicast) {
        return Err((
            path.key("extendedNextHop"),
            "extended next hop (RFC 8950) carries IPv4 routes: add ipv4-unicast to families or remove extendedNextHop".into(),
        ));
    }
    if peer.route_reflector_client && !peer.is_ibgp(c.router.asn) {
        return Err((
            path.key("routeReflectorClient"),
            format!(
                "only an iBGP peer can be a route reflector client (peer AS {} is not router AS {})",
                peer.asn, c.router.asn
            ),
        ));
    }
    check_access(path, peer)?;
    check_graceful_restart(
        &path.key("gracefulRestart"),
        &peer.graceful_restart_or(&c.router),
    )?;
    check_limits(path, peer)?;
    check_chain(path, "import", &peer.import, policies)?;
    check_chain(path, "export", &peer.export, policies)
}

/// `router.listen.ranges`: distinct prefixes, a limit, template settings a
/// dynamic neighbor can have.
fn check_ranges(c: &Config, policies: &[&str]) -> Result<(), Invalid> {
    let Some(listen) = &c.router.listen else {
        return Ok(());
    };
    let mut seen: HashMap<ipnet::IpNet, usize> = HashMap::new();
    for (i, r) in listen.ranges.iter().enumerate() {
        let path = KeyPath::default()
            .key("router")
            .key("listen")
            .key("ranges")
            .index(i);
        if r.prefix.trunc() != r.prefix {
            return Err((
                path.key("prefix"),
                format!(
                    "{} has host bits set (the range is {})",
                    r.prefix,
                    r.prefix.trunc()
                ),
            ));
        }
        if let Some(first) = seen.insert(r.prefix, i) {
            return Err((
                path.key("prefix"),
                format!(
                    "router.listen.ranges[{first}] already has prefix {}",
                    r.prefix
                ),
            ));
        }
        if r.limit == 0 {
            return Err((
                path.key("limit"),
                "limit 0 would refuse every connection: give at least 1 (or remove the range)"
                    .to_string(),
            ));
        }
        let peer = path.key("peer");
        if r.peer.bfd.is_some() {
            return Err((
                peer.key("bfd"),
                "bfd is not available for dynamic neighbors (a BFD session is set up for a configured address); use a configured peer".to_string(),
            ));
        }
        if let Some(local) = r.peer.local_address {
            if local.is_ipv4() != r.prefix.addr().is_ipv4() {
                return Err((
                    peer.key("localAddress"),
                    format!(
                        "{local} and the range {} are of different families",
                        r.prefix
                    ),
                ));
            }
        }
        check_peer_settings(c, &peer, &r.peer, policies)?;
    }
    Ok(())
}

/// `api.http` cannot take the BGP listener's TCP port on an overlapping
/// address (the second bind would fail at start).
fn check_http(c: &Config) -> Result<(), Invalid> {
    let (Some(http), Some(bgp)) = (&c.api.http, &c.router.listen) else {
        return Ok(());
    };
    let overlap = http.address == bgp.address
        || http.address.is_unspecified()
        || bgp.address.is_unspecified();
    if http.port == bgp.port && overlap {
        return Err((
            KeyPath::default().key("api").key("http").key("port"),
            format!(
                "port {} is the BGP listener's (router.listen {}:{})",
                http.port, bgp.address, bgp.port
            ),
        ));
    }
    Ok(())
}

/// RFC 4724 §3: the Restart Time field has 12 bits.
fn check_graceful_restart(path: &KeyPath, gr: &GracefulRestart) -> Result<(), Invalid> {
    if !(1..=4095).contains(&gr.restart_time) {
        return Err((
            path.key("restartTime"),
            format!(
                "restartTime {} is out of range (1..=4095 seconds)",
                gr.restart_time
            ),
        ));
    }
    if gr.stale_time == 0 {
        return Err((
            path.key("staleTime"),
            "staleTime must be at least 1 second".to_string(),
        ));
    }
    Ok(())
}

/// Passwords, GTSM and local users: who may open this peer's session.
fn check_access(path: &KeyPath, peer: &Peer) -> Result<(), Invalid> {
    if let Some(pw) = &peer.password {
        password::check_len(pw.len_bytes()).map_err(|m| (path.key("password"), m))?;
    }
    if peer.ttl_security.is_some() && peer.multihop.is_some() {
        return Err((
            path.key("ttlSecurity"),
            "ttlSecurity always sends with TTL 255; remove `multihop` (use `ttlSecurity: {hops: N}` for a peer N hops away)".to_string(),
        ));
    }
    if peer.local_users.is_empty() {
        return Err((
            path.key("localUsers"),
            "at least one uid is needed (default [0]: root only)".to_string(),
        ));
    }
    Ok(())
}

/// `maxPrefixes` and `sendHoldTime`.
fn check_limits(path: &KeyPath, peer: &Peer) -> Result<(), Invalid> {
    if let Some(mp) = &peer.max_prefixes {
        let at = path.key("maxPrefixes");
        match &mp.limit {
            PrefixLimit::All(0) => {
                return Err((at, "a prefix limit must be at least 1".to_string()));
            }
            PrefixLimit::All(_) => {}
            PrefixLimit::PerFamily(m) => {
                if m.is_empty() {
                    return Err((at, "give a limit for at least one family".to_string()));
                }
                for (f, n) in m {
                    if *n == 0 {
                        return Err((at, format!("the {f} limit must be at least 1")));
                    }
                    if !peer.families.contains(f) {
                        return Err((at, format!("{f} is not one of the peer's families")));
                    }
                }
            }
        }
        if mp.restart_after == Some(0) {
            return Err((
                at,
                "restartAfter must be at least 1 second (leave it out to stay down)".to_string(),
            ));
        }
    }
    if let Some(b) = &peer.bfd {
        check_bfd(path, b)?;
    }
    if let Some(t) = peer.send_hold_time {
        if t < 1 {
            return Err((
                path.key("sendHoldTime"),
                "sendHoldTime must be at least 1 second".to_string(),
            ));
        }
    }
    Ok(())
}

fn check_bfd(path: &KeyPath, b: &crate::config::Bfd) -> Result<(), Invalid> {
    let at = path.key("bfd");
    if !(10..=60_000).contains(&b.interval) {
        return Err((
            at.key("interval"),
            format!("interval {} ms is out of range 10..=60000", b.interval),
        ));
    }
    if b.multiplier == 0 {
        return Err((
            at.key("multiplier"),
            "multiplier must be 1..=255".to_string(),
        ));
    }
    Ok(())
}

fn check_families(path: &KeyPath, families: &[Family]) -> Result<(), Invalid> {
    if families.is_empty() {
        return Err((
            path.clone(),
            "at least one family is needed (ipv4-unicast, ipv6-unicast)".to_string(),
        ));
    }
    for (j, f) in families.iter().enumerate() {
        if families[..j].contains(f) {
            return Err((path.index(j), format!("family {f} is listed twice")));
        }
    }
    Ok(())
}

fn check_chain(
    peer: &KeyPath,
    which: &str,
    chain: &PolicyChain,
    policies: &[&str],
) -> Result<(), Invalid> {
    let PolicyChain::Named(names) = chain else {
        return Ok(());
    };
    if names.is_empty() {
        return Err((
            peer.key(which),
            "empty policy list (use `none` to exchange nothing)".to_string(),
        ));
    }
    for name in names {
        if !policies.contains(&name.as_str()) {
            let defined = if policies.is_empty() {
                "no policies are defined".to_string()
            } else {
                format!("defined: {}", policies.join(", "))
            };
            return Err((
                peer.key(which),
                format!("policy {name:?} is not defined ({defined})"),
            ));
        }
    }
    Ok(())
}

/// `match.neighbors` in policy rules name existing peers.
fn check_neighbor_refs(c: &Config, peers: &HashSet<&str>) -> Result<(), Invalid> {
    for (i, p) in c.policies.iter().enumerate() {
        for (j, rule) in p.rules.iter().enumerate() {
            for (k, n) in rule.matches.neighbors.iter().enumerate() {
                if !peers.contains(n.as_str()) {
                    let path = KeyPath::default()
                        .key("policies")
                        .index(i)
                        .key("rules")
                        .index(j)
                        .key("match")
                        .key("neighbors")
                        .index(k);
                    return Err((path, format!("peer {n:?} is not defined")));
                }
            }
        }
    }
    Ok(())
}

fn check_advertise(c: &Config) -> Result<(), Invalid> {
    for (i, a) in c.advertise.iter().enumerate() {
        let path = KeyPath::default().key("advertise").index(i);
        if a.prefixes.is_empty() && a.interfaces.is_empty() && !a.from_kubernetes() {
            return Err((
                path,
                "give `prefixes`, `interfaces`, `podCIDRs` or `services`".to_string(),
            ));
        }
        if let Some(s) = &a.services {
            if !(s.load_balancer_ips || s.external_ips || s.cluster_ips) {
                return Err((
                    path.key("services"),
                    "advertises nothing: enable `loadBalancerIPs`, `externalIPs` or `clusterIPs`"
                        .to_string(),
                ));
            }
            if let Some(sel) = &s.selector {
                let none = std::collections::BTreeMap::new();
                if let Err((at, message)) =
                    crate::kubernetes::selector::selector_matches(sel, &none)
                {
                    return Err((
                        path.key("services").key("selector"),
                        format!("{at}: {message}"),
                    ));
                }
            }
        }
        for (j, ifname) in a.interfaces.iter().enumerate() {
            // Linux: IFNAMSIZ is 16 with the NUL; no '/' or whitespace.
            let bad = ifname.is_empty()
                || ifname.len() > 15
                || ifname.contains(|ch: char| ch == '/' || ch.is_whitespace());
            if bad {
                return Err((
                    path.key("interfaces").index(j),
                    format!("{ifname:?} is not a valid interface name"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod graceful_restart_tests {
    use super::super::schema::{Config, GracefulRestart};
    use super::validate;

    const BASE: &str = "router: { asn: 65000, routerId: 10.0.0.1";

    fn with(router_extra: &str, peer_extra: &str) -> String {
        format!(
            "{BASE}{router_extra} }}\n\
             peers:\n  - {{ name: tor, address: 192.0.2.1, asn: 65001{peer_extra} }}\n"
        )
    }

    fn parse(text: &str) -> Config {
        serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// The key path and message of the first problem `validate` finds.
    fn invalid(text: &str) -> String {
        let (path, msg) = validate(&parse(text)).expect_err("invalid");
        format!("{path}: {msg}")
    }

    #[test]
    fn defaults_off_120_360_and_peers_override_single_keys() {
        let c = parse(&with("", ""));
        let d = GracefulRestart {
            enabled: false,
            restart_time: 120,
            stale_time: 360,
            selection_deferral_time: 30,
        };
        assert_eq!(c.router.graceful_restart, d);
        assert_eq!(c.peers[0].graceful_restart_or(&c.router), d);
        assert!(!c.graceful_restart_enabled());
        assert!(
            !c.to_yaml().contains("gracefulRestart"),
            "defaults not written"
        );

        let c = parse(&with(
            ", gracefulRestart: { enabled: true, restartTime: 60 }",
            ", gracefulRestart: { staleTime: 30 }",
        ));
        assert!(validate(&c).is_ok());
        assert_eq!(
            c.peers[0].graceful_restart_or(&c.router),
            GracefulRestart {
                enabled: true,
                restart_time: 60,
                stale_time: 30,
                selection_deferral_time: 30,
            }
        );
        assert!(c.graceful_restart_enabled());
        // The canonical form keeps both and reads back the same.
        assert_eq!(parse(&c.to_yaml()), c);

        let c = parse(&with("", ", gracefulRestart: { enabled: true }"));
        assert!(c.graceful_restart_enabled(), "one peer is enough");
    }

    #[test]
    fn restart_time_has_12_bits_and_stale_time_is_positive() {
        let e = invalid(&with(", gracefulRestart: { restartTime: 4096 }", ""));
        assert!(
            e.starts_with("router.gracefulRestart.restartTime: ") && e.contains("1..=4095"),
            "{e}"
        );
        let e = invalid(&with("", ", gracefulRestart: { staleTime: 0 }"));
        assert!(e.starts_with("peers[0].gracefulRestart.staleTime: "), "{e}");
        let e = invalid(&with(", gracefulRestart: { selectionDeferralTime: 0 }", ""));
        assert!(
            e.starts_with("router.gracefulRestart.selectionDeferralTime: ")
                && e.contains("1..=3600"),
            "{e}"
        );
        // Router-wide: a peer has no such key.
        let e = serde_yaml_ng::from_str::<Config>(&with(
            "",
            ", gracefulRestart: { selectionDeferralTime: 5 }",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `selectionDeferralTime`"), "{e}");
        let e = serde_yaml_ng::from_str::<Config>(&with("", ", gracefulRestart: { restart: 1 }"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `restart`"), "{e}");
    }
}
