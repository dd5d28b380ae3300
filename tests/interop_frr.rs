//! kroute against FRR: the shared scenarios of `common::scenarios`, each with
//! real daemons in namespaces and kroute's routes checked in the kernel.
//! Needs root and the daemon's Debian package (see `common/mod.rs`).

mod common;

use common::frr::Frr;
use common::scenarios;

#[test]
fn session_up_ipv4_and_ipv6() {
    scenarios::session_up_ipv4_and_ipv6::<Frr>();
}

#[test]
fn routes_received_into_kernel() {
    scenarios::routes_received_into_kernel::<Frr>();
}

#[test]
fn advertised_prefixes_reach_peer() {
    scenarios::advertised_prefixes_reach_peer::<Frr>();
}

#[test]
fn both_families_one_ipv6_session() {
    scenarios::both_families_one_ipv6_session::<Frr>();
}

#[test]
fn ecmp_two_peers_multipath() {
    scenarios::ecmp_two_peers_multipath::<Frr>();
}

#[test]
fn withdraw_removes_from_kernel() {
    scenarios::withdraw_removes_from_kernel::<Frr>();
}

#[test]
fn peer_stopped_routes_leave_kernel() {
    scenarios::peer_stopped_routes_leave_kernel::<Frr>();
}

#[test]
fn allow_as_in() {
    scenarios::allow_as_in::<Frr>();
}

#[test]
fn route_reflection_two_clients() {
    scenarios::route_reflection_two_clients::<Frr>();
}
