//! "installed" only once the kernel confirmed: with a FIB that answers
//! every change (`Rib::set_fib_confirms`), `explain` and `routes` report
//! pending, installed or failed with the kernel's words.
mod common;

use common::*;
use rib::table::FibState;
use rib::*;

const P: &str = "10.1.0.0/24";

fn rib_with_route(confirms: bool) -> Rib {
    let mut rib = Rib::new(cfg());
    rib.set_fib_confirms(confirms);
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    // b sends an empty AS_PATH (a path shorter than a's): only without
    // enforceFirstAs (RFC 4271 §6.3).
    let b = PeerConfig {
        enforce_first_as: false,
        ..ebgp("b", "192.0.2.2", 65102)
    };
    add_up(&mut rib, 2, b, "192.0.2.2");
    reach(&mut rib, "192.0.2.1", 0);
    reach(&mut rib, "192.0.2.2", 0);
    let out = receive(&mut rib, 1, update_v4(&[P], "192.0.2.1", attrs(&[65101])));
    assert_eq!(fib_for(&out, P), vec![vec![ip("192.0.2.1")]]);
    rib
}

fn loc_best(rib: &Rib) -> RouteView {
    let routes = rib.routes(&RouteQuery::default());
    routes.into_iter().find(|r| r.best).unwrap()
}

#[test]
fn pending_until_the_kernel_confirms() {
    let mut rib = rib_with_route(true);
    let e = rib.explain(&p(P));
    assert!(!e.installed);
    assert_eq!(e.fib, Some(FibState::Pending));
    assert_eq!(
        e.kernel,
        "pending: handed to the kernel via 192.0.2.1, not confirmed yet"
    );
    assert!(e.to_string().contains("kernel: pending: "), "{e}");
    let r = loc_best(&rib);
    assert!(!r.installed);
    assert_eq!(r.fib, Some(FibState::Pending));

    rib.set_fib_status(p(P), FibStatus::Installed);
    let e = rib.explain(&p(P));
    assert!(e.installed);
    assert_eq!(e.fib, Some(FibState::Installed));
    assert_eq!(e.kernel, "installed via 192.0.2.1");
    assert!(loc_best(&rib).installed);
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["fib"], "installed");
}

#[test]
fn failed_with_the_kernel_error_then_a_new_set_is_pending_again() {
    let mut rib = rib_with_route(true);
    rib.set_fib_status(
        p(P),
        FibStatus::Failed("Network is unreachable (ENETUNREACH)".into()),
    );
    let e = rib.explain(&p(P));
    assert!(!e.installed);
    assert_eq!(e.fib, Some(FibState::Failed));
    assert_eq!(
        e.kernel,
        "not installed: kernel error: Network is unreachable (ENETUNREACH)"
    );
    assert_eq!(loc_best(&rib).fib, Some(FibState::Failed));
    // A better path changes the set handed to the FIB: pending again, the
    // old error is gone.
    let a = wire::PathAttributes {
        as_path: wire::AsPath::from_sequence(vec![]),
        ..attrs(&[])
    };
    let out = receive(&mut rib, 2, update_v4(&[P], "192.0.2.2", a));
    assert_eq!(fib_for(&out, P), vec![vec![ip("192.0.2.2")]]);
    let e = rib.explain(&p(P));
    assert_eq!(e.fib, Some(FibState::Pending));
    assert_eq!(
        e.kernel,
        "pending: handed to the kernel via 192.0.2.2, not confirmed yet"
    );
}

#[test]
fn answers_for_withdrawn_routes_are_ignored() {
    let mut rib = rib_with_route(true);
    receive(&mut rib, 1, withdraw(&[P]));
    rib.set_fib_status(p(P), FibStatus::Failed("late".into()));
    rib.set_fib_status(p(P), FibStatus::Installed);
    let e = rib.explain(&p(P));
    assert!(!e.installed);
    assert_eq!(e.fib, None);
    // The prefix comes back: pending, with no stale error.
    receive(&mut rib, 1, update_v4(&[P], "192.0.2.1", attrs(&[65101])));
    assert_eq!(rib.explain(&p(P)).fib, Some(FibState::Pending));
}

#[test]
fn without_confirmations_handed_over_counts_as_installed() {
    let mut rib = rib_with_route(false);
    let e = rib.explain(&p(P));
    assert!(e.installed);
    assert_eq!(e.fib, Some(FibState::Installed));
    rib.set_fib_status(p(P), FibStatus::Failed("File exists (EEXIST)".into()));
    assert_eq!(
        rib.explain(&p(P)).kernel,
        "not installed: kernel error: File exists (EEXIST)"
    );
}

#[test]
fn an_answer_for_an_older_set_is_ignored() {
    let mut rib = Rib::new(cfg());
    rib.set_fib_confirms(true);
    add_up(&mut rib, 1, ebgp("a", "192.0.2.1", 65101), "192.0.2.1");
    add_up(&mut rib, 2, ebgp("b", "192.0.2.2", 65102), "192.0.2.2");
    reach(&mut rib, "192.0.2.1", 0);
    reach(&mut rib, "192.0.2.2", 0);
    let out = receive(
        &mut rib,
        1,
        update_v4(&[P], "192.0.2.1", attrs(&[65101, 64999])),
    );
    let older = out.fib[0].next_hops.clone();
    // A shorter AS path from b: a new set is handed over before the
    // kernel's answer for the first arrives.
    let out = receive(&mut rib, 2, update_v4(&[P], "192.0.2.2", attrs(&[65102])));
    let newer = out.fib[0].next_hops.clone();
    assert_ne!(older, newer);

    rib.set_fib_status_of(p(P), &older, FibStatus::Installed);
    assert_eq!(rib.explain(&p(P)).fib, Some(FibState::Pending));
    rib.set_fib_status_of(p(P), &older, FibStatus::Failed("late".into()));
    assert_eq!(rib.explain(&p(P)).fib, Some(FibState::Pending));

    // An equal set (not the same allocation) is the same answer.
    let copy = std::sync::Arc::new(newer.to_vec());
    rib.set_fib_status_of(p(P), &copy, FibStatus::Installed);
    let e = rib.explain(&p(P));
    assert_eq!(e.fib, Some(FibState::Installed));
    assert_eq!(e.kernel, "installed via 192.0.2.2");

    // The prefix withdrawn: a late answer does not bring it back.
    receive(&mut rib, 2, withdraw(&[P]));
    receive(&mut rib, 1, withdraw(&[P]));
    rib.set_fib_status_of(p(P), &newer, FibStatus::Installed);
    assert_eq!(rib.explain(&p(P)).fib, None);
}
