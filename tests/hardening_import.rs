//! Issue 12, "Nobody let in" (semantic checks on import) and "Nothing lost
//! silently" (treat-as-withdraw and attribute discard are logged, counted
//! and explained), against the running daemon from outside.
//!
//! Topology: kroute in namespace K (10.1.0.1/24), one raw peer in namespace
//! P (10.1.0.2/24, AS 65002, IPv4 unicast only) that speaks BGP by hand and
//! sends crafted UPDATEs, so every byte kroute judges is the test's. The
//! peer is passive on kroute's side. Needs root.

mod common;

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use common::kroute::{self as kr, Kroute};
use common::raw_peer::{open_v4, RawPeer};
use common::scenarios::{KROUTE_ASN, PEER_ASN, V4};
use common::{netns, route_via, veth, wait_until};
use kroute::api::NeighborView;
use labkit::Netns;
use wire::{AsPath, Family, Message, MpReach, NextHop, Origin, PathAttributes, Update};

const K4: &str = "10.1.0.1";
const P4: &str = "10.1.0.2";

fn attrs(as_path: &[u32], nh: &str) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: AsPath::from_sequence(as_path.to_vec()),
        next_hop: Some(nh.parse().unwrap()),
        ..Default::default()
    }
}

fn announce(prefix: &str, a: PathAttributes) -> Message {
    Message::Update(Update {
        attributes: a,
        nlri: vec![prefix.parse().unwrap()],
        ..Default::default()
    })
}

/// An UPDATE built byte by byte: ORIGIN with value `origin` (0 = IGP),
/// AS_PATH [PEER_ASN], NEXT_HOP P4, then `extra` attributes, for the one
/// prefix 10.x.y.0/24.
fn raw_update(origin: u8, extra: &[&[u8]], (x, y): (u8, u8)) -> Vec<u8> {
    let asn = PEER_ASN.to_be_bytes();
    let mut pa = vec![0x40, 1, 1, origin];
    pa.extend_from_slice(&[0x40, 2, 6, 2, 1]);
    pa.extend_from_slice(&asn);
    pa.extend_from_slice(&[0x40, 3, 4, 10, 1, 0, 2]);
    for e in extra {
        pa.extend_from_slice(e);
    }
    let nlri = [24, 10, x, y];
    let len = 19 + 2 + 2 + pa.len() + nlri.len();
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&(len as u16).to_be_bytes());
    m.push(2);
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&(pa.len() as u16).to_be_bytes());
    m.extend_from_slice(&pa);
    m.extend_from_slice(&nlri);
    m
}

struct Lab {
    // Field order = drop order: kroute, then the namespaces.
    kroute: Kroute,
    p_ns: Netns,
    k_ns: Netns,
}

fn lab(tag: &str) -> Lab {
    let k_ns = netns(&format!("k{tag}"));
    let p_ns = netns(&format!("p{tag}"));
    // K also owns 10.1.0.99: a next hop that is one of kroute's addresses.
    veth(
        &k_ns,
        &p_ns,
        &[&format!("{K4}/24"), "10.1.0.99/24"],
        &[&format!("{P4}/24")],
    );
    let mut cfg = kr::config(KROUTE_ASN, "10.255.0.1");
    let mut peer = kr::peer("p", P4, PEER_ASN, &[V4]);
    peer.passive = true;
    cfg.peers.push(peer);
    let kroute = Kroute::start(&k_ns, cfg);
    Lab { kroute, p_ns, k_ns }
}

/// kroute's log without terminal colour codes.
fn log_text(l: &Lab) -> String {
    let raw = l.kroute.log_tails(200);
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ params final-byte
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn neighbor(l: &Lab) -> NeighborView {
    l.kroute.neighbor("p").expect("neighbor p")
}

fn wait_in_kernel(l: &Lab, prefix: &str) {
    wait_until(
        Duration::from_secs(10),
        &format!("{prefix} installed"),
        || match route_via(&l.k_ns, prefix) {
            Some(v) if v.iter().any(|(gw, _)| gw == P4) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
}

fn wait_explained(l: &Lab, prefix: &str, words: &str) -> String {
    wait_until(
        Duration::from_secs(10),
        &format!("explain {prefix} says {words:?}"),
        || {
            let text = l.kroute.explain_text(prefix);
            if text.contains(words) {
                Ok(text)
            } else {
                Err(text)
            }
        },
    )
}

/// RFC 7606 treat-as-withdraw (a malformed ORIGIN) withdraws a route that
/// was installed, and says so: the reason in `explain`, a per-peer
/// counter, and one log line per minute however often it is repeated.
/// An attribute discard (AGGREGATOR of a bad length) keeps the route and
/// is counted and logged too.
#[test]
fn treat_as_withdraw_and_attribute_discard_are_explained_counted_and_logged() {
    let l = lab("itw");
    let mut p = establish(&l.p_ns);
    wait_until(Duration::from_secs(10), "p Established", || {
        l.kroute.established("p")
    });

    p.send(&[announce("10.50.1.0/24", attrs(&[PEER_ASN], P4))]);
    wait_in_kernel(&l, "10.50.1.0/24");

    // ORIGIN with the undefined value 7, five times.
    let bad_origin = raw_update(7, &[], (50, 1));
    for _ in 0..5 {
        p.send_raw(&bad_origin);
    }
    wait_until(
        Duration::from_secs(10),
        "5 treat-as-withdraw counted",
        || match neighbor(&l) {
            n if n.updates_treated_as_withdraw == 5 => Ok(()),
            n => Err(format!("{n:?}")),
        },
    );
    assert_eq!(route_via(&l.k_ns, "10.50.1.0/24"), None, "withdrawn");
    let text = wait_explained(&l, "10.50.1.0/24", "treat-as-withdraw");
    assert!(
        text.contains("treat-as-withdraw: malformed ORIGIN"),
        "{text}"
    );
    let log = log_text(&l);
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("treat-as-withdraw: malformed ORIGIN"))
        .collect();
    assert_eq!(lines.len(), 1, "one line per minute:\n{log}");
    assert!(lines[0].contains("peer=p"), "{}", lines[0]);

    // AGGREGATOR of length 7: discarded, the route stands.
    p.send_raw(&raw_update(
        0,
        &[&[0xc0, 7, 7, 0, 0, 0xfd, 0xe9, 10, 0, 0]],
        (50, 2),
    ));
    wait_in_kernel(&l, "10.50.2.0/24");
    wait_until(
        Duration::from_secs(10),
        "1 attribute discard",
        || match neighbor(&l) {
            n if n.attributes_discarded == 1 => Ok(()),
            n => Err(format!("{n:?}")),
        },
    );
    let log = log_text(&l);
    assert!(
        log.lines()
            .any(|x| x.contains("attribute discard: malformed AGGREGATOR") && x.contains("peer=p")),
        "{log}"
    );

    // `show neighbors` (the CLI) shows the counters.
    let table = l.kroute.cli_ok(&["show", "neighbors"]);
    assert!(
        table.contains("TAW/DISC/IGN") && table.contains("5/1/0"),
        "{table}"
    );
    l.kroute.established("p").unwrap();
}

/// RFC 4271 §6.3 semantic checks: the first AS of an eBGP path must be
/// the peer's (`enforceFirstAs`, default on, off by reload); a NEXT_HOP
/// 0.0.0.0, multicast or one of kroute's own addresses is not used; an
/// IPv6 next hop for IPv4 NLRI needs RFC 8950; IPv6 NLRI on an IPv4-only
/// session are ignored and counted. Every case is in `explain`.
#[test]
fn semantic_checks_on_import() {
    let mut l = lab("ism");
    let mut p = establish(&l.p_ns);
    wait_until(Duration::from_secs(10), "p Established", || {
        l.kroute.established("p")
    });

    p.send(&[
        announce("10.60.1.0/24", attrs(&[65099, PEER_ASN], P4)),
        announce("10.60.2.0/24", attrs(&[PEER_ASN], "0.0.0.0")),
        announce("10.60.3.0/24", attrs(&[PEER_ASN], "224.0.0.5")),
        announce("10.60.4.0/24", attrs(&[PEER_ASN], "10.1.0.99")),
        Message::Update(Update {
            attributes: PathAttributes {
                next_hop: None,
                ..attrs(&[PEER_ASN], P4)
            },
            mp_reach: Some(MpReach {
                family: Family::Ipv4Unicast,
                next_hop: NextHop::new(IpAddr::V6("fd00::2".parse().unwrap())),
                nlri: vec!["10.60.5.0/24".parse().unwrap()],
            }),
            ..Default::default()
        }),
        Message::Update(Update {
            attributes: PathAttributes {
                next_hop: None,
                ..attrs(&[PEER_ASN], P4)
            },
            mp_reach: Some(MpReach {
                family: Family::Ipv6Unicast,
                next_hop: NextHop::new(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2))),
                nlri: vec![
                    "fd00:60:1::/48".parse().unwrap(),
                    "fd00:60:2::/48".parse().unwrap(),
                ],
            }),
            ..Default::default()
        }),
        // A good one last: once it is in, kroute has judged all the others.
        announce("10.60.9.0/24", attrs(&[PEER_ASN], P4)),
    ]);
    wait_in_kernel(&l, "10.60.9.0/24");

    wait_explained(
        &l,
        "10.60.1.0/24",
        "treat-as-withdraw: AS_PATH: first AS 65099 is not the peer's AS 65002",
    );
    wait_explained(
        &l,
        "10.60.2.0/24",
        "treat-as-withdraw: NEXT_HOP 0.0.0.0 is unspecified",
    );
    wait_explained(
        &l,
        "10.60.3.0/24",
        "treat-as-withdraw: NEXT_HOP 224.0.0.5 is not a unicast address",
    );
    wait_explained(
        &l,
        "10.60.4.0/24",
        "treat-as-withdraw: next hop 10.1.0.99 is one of our own addresses",
    );
    wait_explained(
        &l,
        "10.60.5.0/24",
        "IPv6 next hop fd00::2 for IPv4 NLRI without the extended next hop capability",
    );
    for prefix in [
        "10.60.1.0/24",
        "10.60.2.0/24",
        "10.60.3.0/24",
        "10.60.4.0/24",
        "10.60.5.0/24",
    ] {
        assert_eq!(route_via(&l.k_ns, prefix), None, "{prefix} not installed");
    }
    let n = neighbor(&l);
    assert_eq!(n.nlri_ignored, 2, "{n:?}");
    // The own-address next hop counts like the others.
    assert_eq!(n.updates_treated_as_withdraw, 5, "{n:?}");
    assert_eq!(n.prefixes_accepted, 1, "10.60.9.0/24: {n:?}");
    let log = log_text(&l);
    assert!(
        log.lines().any(|x| x.contains("peer=p")
            && x.contains("treat-as-withdraw: next hop 10.1.0.99 is one of our own addresses")),
        "{log}"
    );
    let fib = l.kroute.fib();
    assert!(
        !fib.iter()
            .any(|e| e.prefix.to_string().starts_with("fd00:60:")),
        "{fib:?}"
    );

    // enforceFirstAs off (e.g. a route server): the path already received
    // is used, without the peer sending it again; on again, it goes.
    kr::peer_mut(&mut l.kroute.config, "p").enforce_first_as = false;
    l.kroute.reload();
    wait_in_kernel(&l, "10.60.1.0/24");
    kr::peer_mut(&mut l.kroute.config, "p").enforce_first_as = true;
    l.kroute.reload();
    wait_until(
        Duration::from_secs(5),
        "10.60.1.0/24 out of the kernel",
        || match route_via(&l.k_ns, "10.60.1.0/24") {
            None => Ok(()),
            Some(v) => Err(format!("still via {v:?}")),
        },
    );
    l.kroute.established("p").unwrap();
    drop(p);
}

/// A raw peer from P4: OPEN for IPv4 unicast, then KEEPALIVE both ways.
fn establish(ns: &Netns) -> RawPeer {
    RawPeer::establish(ns, P4, K4, open_v4(PEER_ASN, P4), None)
}
