//! The session FSM against the running daemon, from outside: issue 12's
//! wedge. A connection from a configured peer's address that sends an
//! UPDATE before the session is Established used to stay in OpenSent for
//! good (no NOTIFICATION, its close ignored, no OpenSent hold timer), and
//! the real peer's connections were then refused with Cease 6/7.
//!
//! Topology: kroute in namespace K (10.1.0.1/24), the "peer" namespace
//! (10.1.0.2/24) with first a raw TCP client speaking BGP by hand, then a
//! real BIRD. kroute's peer is passive, so every connection is the peer's.
//! Needs root and `bird2` (see `common/mod.rs`).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::bird::Bird;
use common::kroute::{self as k, Kroute};
use common::peer::{PeerDaemon, PeerNeighbor, PeerSpec};
use common::scenarios::{KROUTE_ASN, P4, PEER_ASN, V4};
use common::{netns, route_via, veth, wait_until, CONVERGE};
use labkit::Netns;
use wire::{decode_message, encode_message, Capability, Family, Message, Open, SessionCodec};

const K4: &str = "10.1.0.1";
const B4: &str = "10.1.0.2";
/// kroute's router ID is higher than the peer's (B4): the case in which
/// the old collision handling refused the real peer.
const KROUTE_ID: &str = "10.255.0.1";
const PEER: &str = "bird";

/// Connect to kroute from inside `ns` (the socket stays in that namespace).
fn connect_from(ns: &Netns) -> TcpStream {
    ns.spawn_thread(|| {
        let to = SocketAddr::new(K4.parse().unwrap(), 179);
        let s = TcpStream::connect_timeout(&to, Duration::from_secs(5)).expect("connect to kroute");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    })
    .join()
    .expect("connect thread")
    .unwrap_or_else(|e| panic!("{e}"))
}

fn send(s: &mut TcpStream, msg: Message) {
    let mut buf = Vec::new();
    encode_message(
        &msg,
        &SessionCodec {
            four_octet_as: true,
        },
        &mut buf,
    );
    s.write_all(&buf).expect("send to kroute");
}

fn peer_open() -> Message {
    Message::Open(Open {
        version: 4,
        asn: PEER_ASN,
        hold_time: 90,
        router_id: B4.parse::<Ipv4Addr>().unwrap(),
        capabilities: vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::FourOctetAs(PEER_ASN),
        ],
    })
}

/// Read kroute's messages until it closes the connection (or 10 s pass).
fn read_until_closed(s: &mut TcpStream) -> (Vec<Message>, bool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let closed = loop {
        match s.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    let mut msgs = Vec::new();
    let mut off = 0;
    let codec = SessionCodec {
        four_octet_as: true,
    };
    while let Ok(Some((m, len))) = decode_message(&buf[off..], &codec) {
        msgs.push(m);
        off += len;
    }
    (msgs, closed)
}

fn notification_of(msgs: &[Message]) -> Option<(u8, u8)> {
    msgs.iter().find_map(|m| match m {
        Message::Notification(nf) => Some((nf.code, nf.subcode)),
        _ => None,
    })
}

/// Connections of kroute's in CLOSE-WAIT (the peer closed, kroute did not).
fn close_wait(k_ns: &Netns) -> String {
    k_ns.run(&["ss", "-Htn", "state", "close-wait"])
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn update_before_established_gets_fsm_error_and_the_real_peer_comes_up() {
    let k_ns = netns("kfsm");
    let b_ns = netns("bfsm");
    let v = veth(&k_ns, &b_ns, &[&format!("{K4}/24")], &[&format!("{B4}/24")]);
    let mut cfg = k::config(KROUTE_ASN, KROUTE_ID);
    let mut peer = k::peer(PEER, B4, PEER_ASN, &[V4]);
    peer.passive = true;
    cfg.peers.push(peer);
    let kroute = Kroute::start(&k_ns, cfg);

    // 1. UPDATE before OPEN: kroute is in OpenSent -> 5/1 (RFC 6608), close.
    let mut s = connect_from(&b_ns);
    send(&mut s, Message::Update(Default::default()));
    let (msgs, closed) = read_until_closed(&mut s);
    assert_eq!(
        notification_of(&msgs),
        Some((5, 1)),
        "UPDATE in OpenSent: kroute sent {msgs:?}"
    );
    assert!(closed, "kroute kept the connection open after 5/1");
    drop(s);

    // 2. OPEN, then UPDATE before KEEPALIVE: OpenConfirm -> 5/2, close. The
    // client closes its side at once; kroute must not keep a CLOSE-WAIT
    // socket.
    let mut s = connect_from(&b_ns);
    send(&mut s, peer_open());
    send(&mut s, Message::Update(Default::default()));
    let (msgs, closed) = read_until_closed(&mut s);
    assert!(
        matches!(msgs.first(), Some(Message::Open(_))),
        "kroute's first message should be its OPEN: {msgs:?}"
    );
    assert_eq!(
        notification_of(&msgs),
        Some((5, 2)),
        "UPDATE in OpenConfirm: kroute sent {msgs:?}"
    );
    assert!(closed, "kroute kept the connection open after 5/2");
    drop(s);
    wait_until(
        Duration::from_secs(5),
        "no CLOSE-WAIT socket in kroute",
        || match close_wait(&k_ns) {
            t if t.trim().is_empty() => Ok(()),
            t => Err(t),
        },
    );

    // 3. A stale connection that sent its OPEN and then went quiet stays
    // open while the real peer connects from the same address: the real
    // one must win, not get Cease 6/7.
    let mut stale = connect_from(&b_ns);
    send(&mut stale, peer_open());
    std::thread::sleep(Duration::from_millis(300));
    let spec = PeerSpec {
        asn: PEER_ASN,
        router_id: B4.into(),
        neighbors: vec![PeerNeighbor::new(K4, B4, KROUTE_ASN, &[V4])],
        install_kernel: false,
    };
    let mut bird = Bird::start_with(&b_ns, spec, &[]);
    let start = Instant::now();
    wait_until(CONVERGE, "BIRD's session Established on both sides", || {
        kroute.established(PEER)?;
        bird.session_state(K4)
    });
    eprintln!("BIRD session up after {:?}", start.elapsed());
    let (msgs, closed) = read_until_closed(&mut stale);
    assert!(closed, "the stale connection was not closed");
    assert_eq!(
        notification_of(&msgs),
        Some((6, 7)),
        "the stale connection should end with Cease 6/7: {msgs:?}"
    );

    // And UPDATEs flow on the real session.
    bird.announce(P4);
    wait_until(
        CONVERGE,
        &format!("{P4} in kroute's kernel"),
        || match route_via(&k_ns, P4) {
            Some(nhs) if nhs == [(B4.to_string(), v.dev_a.clone())] => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    drop(bird);
    drop(kroute);
}
