//! Builders shared by the RIB scenario tests.
#![allow(dead_code)]

use std::net::IpAddr;

use rib::policy::PolicyChain;
use rib::*;
use wire::{AsPath, Family, MpReach, MpUnreach, NextHop, Origin, PathAttributes, Prefix, Update};

pub const LOCAL_ASN: u32 = 65000;

pub fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn cfg() -> RibConfig {
    RibConfig {
        local_asn: LOCAL_ASN,
        router_id: "10.0.0.1".parse().unwrap(),
        cluster_id: None,
        max_paths: 4,
        multipath_relax: false,
        always_compare_med: false,
        install: true,
        policies: Vec::new(),
    }
}

pub fn ebgp(name: &str, addr: &str, asn: u32) -> PeerConfig {
    PeerConfig {
        name: name.into(),
        address: ip(addr),
        remote_asn: asn,
        families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
        allow_as_in: 0,
        next_hop_self: false,
        route_reflector_client: false,
        enforce_first_as: true,
        import: PolicyChain::All,
        export: PolicyChain::All,
    }
}

pub fn ibgp(name: &str, addr: &str) -> PeerConfig {
    PeerConfig {
        import: PolicyChain::Unset,
        export: PolicyChain::Unset,
        ..ebgp(name, addr, LOCAL_ASN)
    }
}

pub fn session(router_id: &str) -> SessionInfo {
    SessionInfo {
        remote_router_id: router_id.parse().unwrap(),
        families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
        local_next_hop_v4: Some("10.0.0.1".parse().unwrap()),
        local_next_hop_v6: Some("fd00::1".parse().unwrap()),
        extended_next_hop_v4: false,
        local_link_local: None,
        interface: None,
    }
}

/// Adds a peer and brings its session up; returns the outputs of peer_up.
pub fn add_up(rib: &mut Rib, id: PeerId, cfg: PeerConfig, router_id: &str) -> Outputs {
    rib.add_peer(id, cfg);
    let mut out = Outputs::default();
    rib.peer_up(id, session(router_id), &mut out);
    out
}

pub fn attrs(path: &[u32]) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: AsPath::from_sequence(path.to_vec()),
        ..Default::default()
    }
}

pub fn update_v4(prefixes: &[&str], nh: &str, a: PathAttributes) -> Update {
    Update {
        attributes: PathAttributes {
            next_hop: Some(nh.parse().unwrap()),
            ..a
        },
        nlri: prefixes.iter().map(|s| s.parse().unwrap()).collect(),
        ..Default::default()
    }
}

pub fn update_v6(prefixes: &[&str], nh: &str, a: PathAttributes) -> Update {
    Update {
        attributes: a,
        mp_reach: Some(MpReach {
            family: Family::Ipv6Unicast,
            next_hop: NextHop::new(ip(nh)),
            nlri: prefixes.iter().map(|s| p(s)).collect(),
        }),
        ..Default::default()
    }
}

pub fn withdraw(prefixes: &[&str]) -> Update {
    let ps: Vec<Prefix> = prefixes.iter().map(|s| p(s)).collect();
    let v6: Vec<Prefix> = ps
        .iter()
        .filter(|p| matches!(p, Prefix::V6(_)))
        .copied()
        .collect();
    Update {
        withdrawn: ps
            .iter()
            .filter_map(|p| match p {
                Prefix::V4(n) => Some(*n),
                _ => None,
            })
            .collect(),
        mp_unreach: (!v6.is_empty()).then_some(MpUnreach {
            family: Family::Ipv6Unicast,
            withdrawn: v6,
        }),
        ..Default::default()
    }
}

pub fn receive(rib: &mut Rib, id: PeerId, u: Update) -> Outputs {
    let mut out = Outputs::default();
    rib.receive(id, u, &mut out);
    out
}

pub fn reach(rib: &mut Rib, addr: &str, metric: u32) -> Outputs {
    let mut out = Outputs::default();
    rib.set_nexthop(ip(addr), NexthopState::Reachable { metric }, &mut out);
    out
}

/// (prefix, next hop, attributes) announced to `peer` in `out`.
pub fn announced(out: &Outputs, peer: PeerId) -> Vec<(Prefix, NextHop, PathAttributes)> {
    let mut v = Vec::new();
    for (id, u) in &out.updates {
        if *id != peer {
            continue;
        }
        for n in &u.nlri {
            let nh = NextHop::new(IpAddr::V4(
                u.attributes.next_hop.expect("NEXT_HOP with NLRI"),
            ));
            v.push((Prefix::V4(*n), nh, u.attributes.clone()));
        }
        if let Some(r) = &u.mp_reach {
            for n in &r.nlri {
                v.push((*n, r.next_hop, u.attributes.clone()));
            }
        }
    }
    v
}

pub fn withdrawn(out: &Outputs, peer: PeerId) -> Vec<Prefix> {
    let mut v = Vec::new();
    for (id, u) in &out.updates {
        if *id != peer {
            continue;
        }
        v.extend(u.withdrawn.iter().map(|n| Prefix::V4(*n)));
        if let Some(r) = &u.mp_unreach {
            v.extend(r.withdrawn.iter().copied());
        }
    }
    v
}

pub fn fib_for(out: &Outputs, prefix: &str) -> Vec<Vec<IpAddr>> {
    out.fib
        .iter()
        .filter(|c| c.prefix == p(prefix))
        .map(|c| c.next_hops.iter().map(|h| h.address).collect())
        .collect()
}
