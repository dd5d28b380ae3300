//! Routes whose attributes cannot fit one 4096-octet UPDATE (RFC 4271 §4;
//! kroute does not do RFC 8654 extended messages): not advertised, recorded
//! as not sent with the reason, and a version advertised earlier is
//! withdrawn. Every UPDATE the RIB hands out encodes without loss.

mod common;

use common::*;
use rib::*;
use wire::{
    decode_message, encode_message, AsPath, Community, Message, PathAttributes, Prefix,
    SessionCodec,
};

const DOES_NOT_FIT: &str = "not advertised: attributes do not fit in 4096 bytes";

fn many_communities(n: u32) -> PathAttributes {
    PathAttributes {
        communities: (0..n).map(|i| Community(0x0001_0000 | i)).collect(),
        ..attrs(&[65101])
    }
}

fn long_as_path(n: u32) -> PathAttributes {
    PathAttributes {
        as_path: AsPath::from_sequence((0..n).map(|i| 65101 + i % 100).collect()),
        ..attrs(&[])
    }
}

/// Two eBGP peers: a (id 1, the source) and b (id 2), next hops reachable.
fn two_peers() -> Rib {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    add_up(&mut rib, 2, ebgp("b", "192.0.2.2", 65102), "192.0.2.2");
    reach(&mut rib, "192.0.2.1", 0);
    reach(&mut rib, "2001:db8::a", 0);
    rib
}

fn reason_for(rib: &Rib, prefix: &str, peer: &str) -> Option<String> {
    let e = rib.explain(&p(prefix));
    let x = e.peers.iter().find(|x| x.peer == peer).unwrap();
    assert_eq!(x.advertised, x.reason.is_none());
    x.reason.clone()
}

/// Every UPDATE towards `peer` encodes, under either ASN width, into
/// messages that decode back to all of its announced prefixes.
fn assert_encodes_without_loss(out: &Outputs, peer: PeerId) {
    for (_, u) in out.updates.iter().filter(|(id, _)| *id == peer) {
        let mut want: Vec<Prefix> = u.nlri.iter().map(|n| Prefix::V4(*n)).collect();
        want.extend(u.mp_reach.iter().flat_map(|r| r.nlri.iter().copied()));
        for four_octet_as in [false, true] {
            let codec = SessionCodec { four_octet_as };
            let mut buf = Vec::new();
            encode_message(&Message::Update(u.clone()), &codec, &mut buf);
            let mut got = Vec::new();
            let mut rest = &buf[..];
            while let Some((m, used)) = decode_message(rest, &codec).unwrap() {
                assert!(used <= 4096);
                let Message::Update(d) = m else { panic!() };
                got.extend(d.nlri.iter().map(|n| Prefix::V4(*n)));
                got.extend(d.mp_reach.iter().flat_map(|r| r.nlri.iter().copied()));
                rest = &rest[used..];
            }
            assert_eq!(got, want, "{codec:?}");
        }
    }
}

#[test]
fn too_many_communities_are_not_advertised_and_the_old_version_is_withdrawn() {
    let mut rib = two_peers();
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    assert_eq!(announced(&out, 2).len(), 1);
    assert_eq!(rib.peer_counters(2).advertised, 1);

    // The same prefix again, now with 1100 communities (4400 octets).
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", many_communities(1100)),
    );
    assert!(announced(&out, 2).is_empty(), "{:?}", out.updates);
    assert_eq!(
        withdrawn(&out, 2),
        vec![p("10.1.0.0/24")],
        "b must not keep the old path (RFC 4271 §9.2)"
    );
    assert_eq!(rib.peer_counters(2).advertised, 0);
    assert_eq!(
        reason_for(&rib, "10.1.0.0/24", "b").as_deref(),
        Some(DOES_NOT_FIT)
    );
    // Still installed locally: only advertising is impossible.
    assert!(
        rib.explain(&p("10.1.0.0/24")).installed,
        "the route stays installed"
    );

    // A route refresh resends nothing that does not fit.
    let mut out = Outputs::default();
    rib.route_refresh(2, wire::Family::Ipv4Unicast, &mut out);
    assert!(announced(&out, 2).is_empty());

    // Back to a normal size: advertised again.
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], "192.0.2.1", many_communities(10)),
    );
    assert_eq!(announced(&out, 2).len(), 1);
    assert_eq!(reason_for(&rib, "10.1.0.0/24", "b"), None);
    assert_encodes_without_loss(&out, 2);
}

#[test]
fn long_as_path_ipv4_and_ipv6_refused_while_normal_routes_flow() {
    let mut rib = two_peers();
    let mut out = receive(
        &mut rib,
        1,
        update_v4(&["10.2.0.0/24"], "192.0.2.1", long_as_path(1100)),
    );
    let more = receive(
        &mut rib,
        1,
        update_v6(&["2001:db8:2::/48"], "2001:db8::a", long_as_path(1100)),
    );
    out.updates.extend(more.updates);
    let more = receive(
        &mut rib,
        1,
        update_v4(&["10.3.0.0/24"], "192.0.2.1", attrs(&[65101])),
    );
    out.updates.extend(more.updates);
    let sent: Vec<Prefix> = announced(&out, 2).into_iter().map(|(p, _, _)| p).collect();
    assert_eq!(sent, vec![p("10.3.0.0/24")]);
    assert!(
        withdrawn(&out, 2).is_empty(),
        "nothing was advertised before"
    );
    assert_eq!(rib.peer_counters(2).advertised, 1);
    for prefix in ["10.2.0.0/24", "2001:db8:2::/48"] {
        assert_eq!(reason_for(&rib, prefix, "b").as_deref(), Some(DOES_NOT_FIT));
    }
    assert_eq!(reason_for(&rib, "10.3.0.0/24", "b"), None);
}

#[test]
fn attributes_just_under_the_limit_are_advertised_and_encode() {
    // Our own AS is prepended on export (4 octets more on a 4-octet
    // session, 2 plus AS4_PATH's 4 on a 2-octet one); 990 communities
    // still fit either way.
    let mut rib = two_peers();
    let prefixes: Vec<String> = (0..50).map(|i| format!("10.4.{i}.0/24")).collect();
    let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    let out = receive(
        &mut rib,
        1,
        update_v4(&refs, "192.0.2.1", many_communities(990)),
    );
    assert_eq!(announced(&out, 2).len(), 50);
    assert_eq!(rib.peer_counters(2).advertised, 50);
    assert_encodes_without_loss(&out, 2);
}

#[test]
fn refused_routes_are_counted_per_peer() {
    let mut rib = two_peers();
    receive(
        &mut rib,
        1,
        update_v4(
            &["10.5.0.0/24", "10.5.1.0/24"],
            "192.0.2.1",
            many_communities(1100),
        ),
    );
    assert_eq!(rib.not_advertised_too_big(2), 2);
    assert_eq!(
        rib.not_advertised_too_big(1),
        0,
        "learned from a: not too big, just not sent back"
    );
    receive(&mut rib, 1, withdraw(&["10.5.0.0/24"]));
    assert_eq!(rib.not_advertised_too_big(2), 1);
    let mut out = Outputs::default();
    rib.peer_down(2, &mut out);
    assert_eq!(rib.not_advertised_too_big(2), 0);
    add_up(&mut rib, 2, ebgp("b", "192.0.2.2", 65102), "192.0.2.2");
    assert_eq!(
        rib.not_advertised_too_big(2),
        1,
        "counted again after the session comes back"
    );
}
