//! The next hops the FIB watches are exactly those accepted paths use:
//! each is watched when its first user arrives and unwatched when its
//! last one goes (withdrawn, peer down, rejected by a new import policy).
mod common;

use common::*;
use rib::policy::PolicyChain;
use rib::*;

const NH: &str = "192.0.2.1";

#[test]
fn watched_while_used_unwatched_with_the_last_user_and_watched_again() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("a", NH, 65101), NH);
    add_up(&mut rib, 2, ebgp("b", "192.0.2.2", 65102), "192.0.2.2");
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], NH, attrs(&[65101])),
    );
    assert_eq!(out.watch_nexthops, vec![ip(NH)]);
    assert_eq!(rib.nexthop_users(ip(NH)), 1);
    reach(&mut rib, NH, 0);
    // More users, from two peers (b announces with a's address as next
    // hop, as a route server would): counted, not watched again.
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.1.0/24", "10.1.2.0/24"], NH, attrs(&[65101])),
    );
    assert!(out.watch_nexthops.is_empty());
    let out = receive(
        &mut rib,
        2,
        update_v4(&["10.1.0.0/24"], NH, attrs(&[65102])),
    );
    assert!(out.watch_nexthops.is_empty());
    assert_eq!(rib.nexthop_users(ip(NH)), 4);
    // The same path again (an implicit withdrawal with the same next hop).
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], NH, attrs(&[65101, 65101])),
    );
    assert!(out.watch_nexthops.is_empty() && out.unwatch_nexthops.is_empty());
    assert_eq!(rib.nexthop_users(ip(NH)), 4);

    let out = receive(&mut rib, 1, withdraw(&["10.1.1.0/24", "10.1.2.0/24"]));
    assert!(out.unwatch_nexthops.is_empty(), "still used");
    assert_eq!(rib.nexthop_users(ip(NH)), 2);
    let mut out = Outputs::default();
    rib.peer_down(2, &mut out);
    assert!(out.unwatch_nexthops.is_empty(), "still used by a");
    let out = receive(&mut rib, 1, withdraw(&["10.1.0.0/24"]));
    assert_eq!(out.unwatch_nexthops, vec![ip(NH)]);
    assert_eq!(rib.nexthop_users(ip(NH)), 0);

    // A state sent before the FIB took the unwatch changes nothing and
    // does not count as watched: the next user asks again.
    let mut out = Outputs::default();
    rib.set_nexthop(ip(NH), NexthopState::Unreachable("late".into()), &mut out);
    assert_eq!(out, Outputs::default());
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.3.0/24"], NH, attrs(&[65101])),
    );
    assert_eq!(out.watch_nexthops, vec![ip(NH)]);
    assert_eq!(
        fib_for(&out, "10.1.3.0/24"),
        vec![vec![ip(NH)]],
        "last state kept"
    );

    // The last user withdrawn and a new one announced in one UPDATE: the
    // unwatch is taken back, nothing is asked of the FIB.
    let mut u = update_v4(&["10.1.4.0/24"], NH, attrs(&[65101]));
    u.withdrawn = withdraw(&["10.1.3.0/24"]).withdrawn;
    let out = receive(&mut rib, 1, u);
    assert!(
        out.watch_nexthops.is_empty() && out.unwatch_nexthops.is_empty(),
        "{out:?}"
    );
    assert_eq!(rib.nexthop_users(ip(NH)), 1);
}

#[test]
fn a_next_hop_only_rejected_paths_use_is_unwatched() {
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("a", NH, 65101), NH);
    receive(
        &mut rib,
        1,
        update_v4(&["10.1.0.0/24"], NH, attrs(&[65101])),
    );
    let mut out = Outputs::default();
    let reject = PeerConfig {
        import: PolicyChain::None,
        ..ebgp("a", NH, 65101)
    };
    rib.set_peer_config(1, reject.clone(), &mut out);
    assert_eq!(out.unwatch_nexthops, vec![ip(NH)]);
    assert_eq!(rib.nexthop_users(ip(NH)), 0);
    // Rejected paths arriving use no next hop.
    let out = receive(
        &mut rib,
        1,
        update_v4(&["10.1.1.0/24"], NH, attrs(&[65101])),
    );
    assert!(out.watch_nexthops.is_empty());
    // Accepted again: watched again, for both.
    let mut out = Outputs::default();
    rib.set_peer_config(1, ebgp("a", NH, 65101), &mut out);
    assert_eq!(out.watch_nexthops, vec![ip(NH)]);
    assert_eq!(rib.nexthop_users(ip(NH)), 2);
}
