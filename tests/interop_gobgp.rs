//! kroute against GoBGP: the shared scenarios of `common::scenarios`, each with
//! real daemons in namespaces and kroute's routes checked in the kernel.
//! Needs root and the daemon's Debian package (see `common/mod.rs`).

mod common;

use common::gobgp::GoBgp;
use common::scenarios;

#[test]
fn session_up_ipv4_and_ipv6() {
    scenarios::session_up_ipv4_and_ipv6::<GoBgp>();
}

#[test]
fn routes_received_into_kernel() {
    scenarios::routes_received_into_kernel::<GoBgp>();
}

#[test]
fn advertised_prefixes_reach_peer() {
    scenarios::advertised_prefixes_reach_peer::<GoBgp>();
}

#[test]
fn both_families_one_ipv6_session() {
    scenarios::both_families_one_ipv6_session::<GoBgp>();
}

#[test]
fn ecmp_two_peers_multipath() {
    scenarios::ecmp_two_peers_multipath::<GoBgp>();
}

#[test]
fn withdraw_removes_from_kernel() {
    scenarios::withdraw_removes_from_kernel::<GoBgp>();
}

#[test]
fn peer_stopped_routes_leave_kernel() {
    scenarios::peer_stopped_routes_leave_kernel::<GoBgp>();
}

#[test]
fn allow_as_in() {
    scenarios::allow_as_in::<GoBgp>();
}

#[test]
fn route_reflection_two_clients() {
    scenarios::route_reflection_two_clients::<GoBgp>();
}
