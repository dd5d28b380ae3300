//! Update groups (issue 17): peers whose export result is the same share
//! one Adj-RIB-Out and one encoded batch; each still gets exactly what it
//! would get alone (split horizon, late join, leaving, its own policy).
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use rib::*;
use wire::{Prefix, SessionCodec};

fn client(name: &str, addr: &str) -> PeerConfig {
    PeerConfig {
        route_reflector_client: true,
        ..ibgp(name, addr)
    }
}

fn addr(i: u32) -> String {
    format!("10.0.1.{i}")
}

/// A route reflector with `n` clients (ids 1..=n), pulling.
fn rr(n: u32) -> Rib {
    let mut rib = Rib::new(cfg());
    rib.set_pull_exports(true);
    for i in 1..=n {
        join(&mut rib, i);
    }
    rib
}

fn join(rib: &mut Rib, i: u32) {
    rib.add_peer(i, client(&format!("c{i}"), &addr(i)));
    let mut out = Outputs::default();
    rib.peer_up(i, session(&addr(i)), &mut out);
    reach(rib, &addr(i), 1);
}

/// Client i announces 10.i.0.0/24.
fn announce(rib: &mut Rib, i: u32) {
    let prefix = format!("10.{i}.0.0/24");
    receive(rib, i, update_v4(&[&prefix], &addr(i), attrs(&[])));
}

/// Everything `id` can pull now, applied to `view` (prefix -> next hop);
/// returns (announcements, withdrawals, End-of-RIB seen).
fn drain(rib: &mut Rib, id: PeerId, view: &mut BTreeMap<Prefix, String>) -> (usize, usize, bool) {
    let (mut ann, mut wd, mut eor) = (0, 0, false);
    while rib.has_pending(id) {
        for u in rib.pull(id, 7).into_updates() {
            if u.end_of_rib().is_some() {
                eor = true;
                continue;
            }
            for w in &u.withdrawn {
                view.remove(&Prefix::V4(*w));
                wd += 1;
            }
            for n in &u.nlri {
                let nh = u
                    .attributes
                    .next_hop
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                view.insert(Prefix::V4(*n), nh);
                ann += 1;
            }
        }
    }
    (ann, wd, eor)
}

fn expected(of: impl IntoIterator<Item = u32>) -> BTreeMap<Prefix, String> {
    of.into_iter()
        .map(|i| (p(&format!("10.{i}.0.0/24")), addr(i)))
        .collect()
}

#[test]
fn clients_with_the_same_export_share_one_group_and_one_encoded_batch() {
    let mut rib = rr(5);
    assert_eq!(rib.update_groups(), 1);
    for i in 1..=5 {
        drain(&mut rib, i, &mut BTreeMap::new());
    }
    announce(&mut rib, 1);
    // Clients 2..5 are at the same place: one batch, shared.
    let batches: Vec<Pulled> = (2..=5).map(|i| rib.pull(i, 100)).collect();
    let first = batches[0].shared.clone().expect("a shared batch");
    for b in &batches {
        let s = b.shared.as_ref().expect("shared");
        assert!(Arc::ptr_eq(s, &first), "one batch for every member");
        assert!(b.updates.is_empty());
    }
    let codec = SessionCodec {
        four_octet_as: true,
    };
    assert!(Arc::ptr_eq(
        &first.encoded(&codec),
        &batches[3].shared.as_ref().unwrap().encoded(&codec)
    ));
    assert_eq!(first.updates().len(), 1);
}

#[test]
fn a_member_is_never_sent_its_own_routes() {
    let mut rib = rr(4);
    for i in 1..=4 {
        announce(&mut rib, i);
    }
    for i in 1..=4 {
        let mut view = BTreeMap::new();
        let (_, wd, eor) = drain(&mut rib, i, &mut view);
        assert!(eor);
        assert_eq!(wd, 0, "nothing to withdraw from client {i}");
        assert_eq!(view, expected((1..=4).filter(|j| *j != i)), "client {i}");
        assert_eq!(rib.peer_counters(i).advertised, 3);
    }
}

#[test]
fn members_whose_own_routes_are_in_a_batch_share_it_without_them() {
    // Every client up and announcing at once (a reflector restart): each
    // batch holds every member's own route.
    let mut rib = rr(4);
    for i in 1..=4 {
        drain(&mut rib, i, &mut BTreeMap::new());
    }
    for i in 1..=4 {
        announce(&mut rib, i);
    }
    let codec = SessionCodec {
        four_octet_as: true,
    };
    let pulls: Vec<Pulled> = (1..=4).map(|i| rib.pull(i, 100)).collect();
    let first = pulls[0].shared.clone().expect("a shared batch");
    assert_eq!(first.updates().len(), 4, "one UPDATE per source");
    for (i, pulled) in (1..=4).zip(&pulls) {
        let s = pulled
            .shared
            .as_ref()
            .expect("shared despite its own route");
        assert!(Arc::ptr_eq(s, &first), "client {i}: the one batch");
        assert_eq!(pulled.skip.len(), 1, "client {i}: its own UPDATE only");
        // What its writer sends is the batch's bytes minus that UPDATE.
        let (bytes, ranges) = s.encoded_without(&codec, &pulled.skip);
        let sent: Vec<u8> = ranges
            .iter()
            .flat_map(|r| bytes[r.clone()].to_vec())
            .collect();
        let mut want = Vec::new();
        let kept = pulled.clone().into_updates();
        for u in &kept {
            wire::encode_update(u, &codec, &mut want);
        }
        assert_eq!(sent, want, "client {i}");
        let prefixes: Vec<String> = kept
            .iter()
            .flat_map(|u| &u.nlri)
            .map(|n| n.to_string())
            .collect();
        assert_eq!(prefixes.len(), 3, "client {i}");
        assert!(
            !prefixes.contains(&format!("10.{i}.0.0/24")),
            "client {i}: not its own"
        );
    }
    // Nothing left, and its own route is no exception to what follows:
    // client 1's withdrawal reaches the others only.
    for i in 1..=4 {
        let mut view = BTreeMap::new();
        let (ann, wd, _) = drain(&mut rib, i, &mut view);
        assert_eq!((ann, wd), (0, 0), "client {i}");
    }
    receive(&mut rib, 1, withdraw(&["10.1.0.0/24"]));
    assert!(rib
        .pull(1, 100)
        .into_updates()
        .iter()
        .all(|u| u.withdrawn.is_empty()));
    for i in 2..=4 {
        let wd: usize = rib
            .pull(i, 100)
            .into_updates()
            .iter()
            .map(|u| u.withdrawn.len())
            .sum();
        assert_eq!(wd, 1, "client {i}");
    }
}

#[test]
fn a_member_joining_late_gets_the_whole_table_then_end_of_rib() {
    let mut rib = rr(3);
    for i in 1..=3 {
        announce(&mut rib, i);
        drain(&mut rib, i, &mut BTreeMap::new());
    }
    // Withdrawn before it joined: it never hears of it.
    receive(&mut rib, 3, withdraw(&["10.3.0.0/24"]));
    join(&mut rib, 4);
    assert_eq!(rib.update_groups(), 1, "joined the existing group");
    let mut view = BTreeMap::new();
    let (ann, wd, eor) = drain(&mut rib, 4, &mut view);
    assert!(eor);
    assert_eq!((ann, wd), (2, 0));
    assert_eq!(view, expected([1, 2]));
}

#[test]
fn a_withdrawal_reaches_every_member_and_a_member_leaving_is_withdrawn_everywhere() {
    let mut rib = rr(4);
    let mut views: Vec<BTreeMap<Prefix, String>> = vec![BTreeMap::new(); 5];
    for i in 1..=4 {
        announce(&mut rib, i);
    }
    for i in 1..=4 {
        drain(&mut rib, i, &mut views[i as usize]);
    }
    receive(&mut rib, 1, withdraw(&["10.1.0.0/24"]));
    let mut out = Outputs::default();
    rib.peer_down(4, &mut out);
    for i in 1..=3 {
        drain(&mut rib, i, &mut views[i as usize]);
        assert_eq!(
            views[i as usize],
            expected([2, 3].into_iter().filter(|j| *j != i)),
            "client {i}"
        );
    }
    assert_eq!(rib.update_groups(), 1);
    // The group goes with its last member.
    for i in 1..=3 {
        rib.peer_down(i, &mut out);
    }
    assert_eq!(rib.update_groups(), 0);
}

#[test]
fn a_peer_with_another_export_policy_is_in_another_group_and_gets_its_result() {
    let mut c = cfg();
    c.policies = vec![serde_json::from_value(serde_json::json!({
        "name": "only-10-1",
        "rules": [
            {"match": {"prefixes": ["10.1.0.0/24"]}, "action": "accept"},
            {"action": "reject"}
        ]
    }))
    .unwrap()];
    let mut rib = Rib::new(c);
    rib.set_pull_exports(true);
    for i in 1..=3 {
        join(&mut rib, i);
    }
    rib.add_peer(
        9,
        PeerConfig {
            export: policy::PolicyChain::Named(vec!["only-10-1".into()]),
            ..client("picky", &addr(9))
        },
    );
    let mut out = Outputs::default();
    rib.peer_up(9, session(&addr(9)), &mut out);
    assert_eq!(rib.update_groups(), 2);
    for i in 1..=3 {
        announce(&mut rib, i);
    }
    let mut view = BTreeMap::new();
    drain(&mut rib, 9, &mut view);
    assert_eq!(view, expected([1]));
    let mut view = BTreeMap::new();
    drain(&mut rib, 3, &mut view);
    assert_eq!(view, expected([1, 2]));
}

#[test]
fn a_reflected_route_is_not_sent_to_the_router_it_names_as_originator() {
    // RFC 4456 §8: client 2's router id is the ORIGINATOR_ID of a route
    // that reaches us from client 1 (reflected by another reflector).
    let mut rib = rr(3);
    for i in 1..=3 {
        drain(&mut rib, i, &mut BTreeMap::new());
    }
    let a = wire::PathAttributes {
        originator_id: Some(addr(2).parse().unwrap()),
        ..attrs(&[])
    };
    receive(&mut rib, 1, update_v4(&["10.9.0.0/24"], &addr(1), a));
    let mut v2 = BTreeMap::new();
    let (ann, _, _) = drain(&mut rib, 2, &mut v2);
    assert_eq!(ann, 0);
    let mut v3 = BTreeMap::new();
    drain(&mut rib, 3, &mut v3);
    assert_eq!(
        v3.keys().copied().collect::<Vec<_>>(),
        vec![p("10.9.0.0/24")]
    );
}

#[test]
fn a_best_path_moving_to_a_member_withdraws_it_from_that_member_only() {
    let mut rib = rr(3);
    // Client 1 has the prefix; then client 2 announces it with a higher
    // LOCAL_PREF: 2 now holds its own path, so it must lose 1's.
    receive(
        &mut rib,
        1,
        update_v4(&["10.7.0.0/24"], &addr(1), attrs(&[])),
    );
    let mut views: Vec<BTreeMap<Prefix, String>> = vec![BTreeMap::new(); 4];
    for i in 1..=3 {
        drain(&mut rib, i, &mut views[i as usize]);
    }
    assert!(views[2].contains_key(&p("10.7.0.0/24")));
    let better = wire::PathAttributes {
        local_pref: Some(200),
        ..attrs(&[])
    };
    receive(&mut rib, 2, update_v4(&["10.7.0.0/24"], &addr(2), better));
    for i in 1..=3 {
        drain(&mut rib, i, &mut views[i as usize]);
    }
    assert!(!views[2].contains_key(&p("10.7.0.0/24")), "split horizon");
    assert_eq!(views[1][&p("10.7.0.0/24")], addr(2));
    assert_eq!(views[3][&p("10.7.0.0/24")], addr(2));
}

#[test]
fn a_member_joining_a_group_whose_only_member_is_a_routes_source_gets_that_route() {
    let mut rib = rr(1);
    announce(&mut rib, 1);
    drain(&mut rib, 1, &mut BTreeMap::new());
    join(&mut rib, 2);
    let mut view = BTreeMap::new();
    drain(&mut rib, 2, &mut view);
    assert_eq!(view, expected([1]));
}
