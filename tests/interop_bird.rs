//! kroute against BIRD 2: the shared scenarios of `common::scenarios`, each with
//! real daemons in namespaces and kroute's routes checked in the kernel.
//! Needs root and the daemon's Debian package (see `common/mod.rs`).

mod common;

use common::bird::Bird;
use common::scenarios;

#[test]
fn session_up_ipv4_and_ipv6() {
    scenarios::session_up_ipv4_and_ipv6::<Bird>();
}

#[test]
fn routes_received_into_kernel() {
    scenarios::routes_received_into_kernel::<Bird>();
}

#[test]
fn advertised_prefixes_reach_peer() {
    scenarios::advertised_prefixes_reach_peer::<Bird>();
}

#[test]
fn both_families_one_ipv6_session() {
    scenarios::both_families_one_ipv6_session::<Bird>();
}

#[test]
fn ecmp_two_peers_multipath() {
    scenarios::ecmp_two_peers_multipath::<Bird>();
}

#[test]
fn withdraw_removes_from_kernel() {
    scenarios::withdraw_removes_from_kernel::<Bird>();
}

#[test]
fn peer_stopped_routes_leave_kernel() {
    scenarios::peer_stopped_routes_leave_kernel::<Bird>();
}

#[test]
fn allow_as_in() {
    scenarios::allow_as_in::<Bird>();
}

#[test]
fn route_reflection_two_clients() {
    scenarios::route_reflection_two_clients::<Bird>();
}
