//! sd_notify (`Type=notify`): with `NOTIFY_SOCKET` pointing at a datagram
//! socket of the test's, kroute sends `READY=1` only once the initial
//! convergence is over (here: its BIRD peer is up and its End-of-RIB is
//! in, so the peer's route is already in the RIB), and `STOPPING=1` on
//! SIGTERM. Needs root and `bird2` (see `common/mod.rs`).

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use common::bird::{proto_name, Bird};
use common::kroute::{self as k, Kroute};
use common::peer::{PeerDaemon, PeerNeighbor, PeerSpec};
use common::scenarios::{KROUTE_ASN, PEER_ASN, V4};
use common::{netns, test_dir, veth, CONVERGE};

const K4: &str = "10.1.0.1";
const B4: &str = "10.1.0.2";
const R1: &str = "10.121.1.0/24";

/// The next datagram within `timeout`, as text; None if none came.
fn next(socket: &UnixDatagram, timeout: Duration) -> Option<String> {
    socket.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 4096];
    match socket.recv(&mut buf) {
        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => None,
        Err(e) => panic!("recv: {e}"),
    }
}

#[test]
fn ready_is_sent_after_the_peers_end_of_rib_and_stopping_on_sigterm() {
    let k_ns = netns("knfy");
    let b_ns = netns("bnfy");
    let _v = veth(&k_ns, &b_ns, &[&format!("{K4}/24")], &[&format!("{B4}/24")]);
    let dir = test_dir("notify");
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();

    let mut cfg = k::config(KROUTE_ASN, "10.255.0.1");
    cfg.peers.push(k::peer("bird", B4, PEER_ASN, &[V4]));
    let mut kroute =
        Kroute::start_with_env(&k_ns, cfg, &[("NOTIFY_SOCKET", path.to_str().unwrap())]);

    // Running (its API answers) but the peer is not there: not ready.
    assert_eq!(
        next(&socket, Duration::from_secs(3)),
        None,
        "READY before the peer came\n{}",
        kroute.log_tails(10)
    );

    // BIRD's session starts disabled, so that the route is there before
    // the session comes up and must precede BIRD's End-of-RIB.
    let mut bird = Bird::start_with(
        &b_ns,
        PeerSpec {
            asn: PEER_ASN,
            router_id: B4.into(),
            neighbors: vec![PeerNeighbor::new(K4, B4, KROUTE_ASN, &[V4])],
            install_kernel: false,
        },
        &[(K4, "disabled;")],
    );
    bird.announce(R1);
    assert_eq!(next(&socket, Duration::from_secs(1)), None);
    bird.birdc(&["enable", &proto_name(K4)]);
    let ready = next(&socket, CONVERGE)
        .unwrap_or_else(|| panic!("no READY within {CONVERGE:?}\n{}", kroute.log_tails(20)));
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    // Ready means converged: the session is up and the peer's route is in.
    kroute.established("bird").unwrap();
    assert!(
        !kroute.routes(R1).is_empty(),
        "READY before {R1} arrived\n{}",
        kroute.log_tails(20)
    );
    // Once only.
    assert_eq!(next(&socket, Duration::from_secs(2)), None);

    kroute.stop();
    let stopping = next(&socket, Duration::from_secs(5)).expect("STOPPING=1 on SIGTERM");
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
}
