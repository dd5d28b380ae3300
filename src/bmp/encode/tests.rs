//! The layouts of RFC 7854 §4, octet by octet; the BGP PDUs inside are
//! decoded back with the wire crate.

use std::net::Ipv6Addr;
use std::time::Duration;

use ipnet::Ipv4Net;
use wire::{decode_message, Capability, PathAttributes};

use super::*;

fn header(address: &str, post_policy: bool) -> PeerHeader {
    PeerHeader {
        address: address.parse().unwrap(),
        asn: 65002,
        bgp_id: "10.1.0.2".parse().unwrap(),
        post_policy,
        timestamp: UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_000),
    }
}

/// Version, length (the whole message), type.
fn common(m: &[u8], ty: u8) {
    assert_eq!(m[0], 3, "version");
    assert_eq!(
        u32::from_be_bytes(m[1..5].try_into().unwrap()) as usize,
        m.len()
    );
    assert_eq!(m[5], ty);
}

/// The per-peer header at `m[6..48]`.
fn per_peer_of(m: &[u8]) -> &[u8] {
    &m[COMMON_HEADER_LEN..COMMON_HEADER_LEN + PER_PEER_HEADER_LEN]
}

fn codec() -> SessionCodec {
    SessionCodec {
        four_octet_as: true,
    }
}

fn open(asn: u32, id: &str) -> Open {
    Open {
        version: 4,
        asn,
        hold_time: 90,
        router_id: id.parse().unwrap(),
        capabilities: vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::FourOctetAs(asn),
        ],
    }
}

#[test]
fn per_peer_header_ipv4_pre_policy() {
    let m = peer_down(&header("10.1.0.2", false), DownReason::Deconfigured);
    common(&m, msg_type::PEER_DOWN);
    let p = per_peer_of(&m);
    assert_eq!(p[0], PEER_TYPE_GLOBAL);
    assert_eq!(p[1], 0, "no V (IPv4), no L (pre-policy), no A (4-octet AS)");
    assert_eq!(&p[2..10], &[0; 8], "distinguisher");
    assert_eq!(&p[10..22], &[0; 12], "IPv4: the first 12 octets zero");
    assert_eq!(&p[22..26], &[10, 1, 0, 2]);
    assert_eq!(&p[26..30], &65002u32.to_be_bytes());
    assert_eq!(&p[30..34], &[10, 1, 0, 2], "BGP ID");
    assert_eq!(&p[34..38], &1_700_000_000u32.to_be_bytes());
    assert_eq!(&p[38..42], &123_456u32.to_be_bytes(), "microseconds");
    assert_eq!(&m[48..], &[5], "reason 5, no data");
}

#[test]
fn per_peer_header_ipv6_post_policy_and_mapped_addresses() {
    let m = route_monitoring(&header("fd00:2::2", true), &Update::default());
    assert_eq!(m.len(), 1);
    let p = per_peer_of(&m[0]);
    assert_eq!(p[1], flags::V | flags::L);
    let a: Ipv6Addr = "fd00:2::2".parse().unwrap();
    assert_eq!(&p[10..26], &a.octets());
    // An IPv4 peer seen through an IPv6 socket is an IPv4 peer.
    let m = peer_down(&header("::ffff:10.1.0.2", false), DownReason::Deconfigured);
    let p = per_peer_of(&m);
    assert_eq!(p[1], 0);
    assert_eq!(&p[22..26], &[10, 1, 0, 2]);
}

#[test]
fn initiation_and_termination_tlvs() {
    let m = initiation("node-1", "kroute 1.0");
    common(&m, msg_type::INITIATION);
    let mut expect = vec![0, 1, 0, 10];
    expect.extend_from_slice(b"kroute 1.0");
    expect.extend_from_slice(&[0, 2, 0, 6]);
    expect.extend_from_slice(b"node-1");
    assert_eq!(&m[6..], &expect[..]);

    let m = termination(TerminationReason::AdministrativelyClosed, "bye");
    common(&m, msg_type::TERMINATION);
    assert_eq!(&m[6..], &[0, 0, 0, 3, b'b', b'y', b'e', 0, 1, 0, 2, 0, 0]);
}

#[test]
fn peer_up_carries_addresses_ports_and_both_opens() {
    let sent = open(65001, "10.255.0.1");
    let received = open(65002, "10.1.0.2");
    let m = peer_up(
        &header("10.1.0.2", false),
        "10.1.0.1:179".parse().unwrap(),
        40000,
        &sent,
        &received,
    );
    common(&m, msg_type::PEER_UP);
    let body = &m[48..];
    assert_eq!(&body[..12], &[0; 12]);
    assert_eq!(&body[12..16], &[10, 1, 0, 1], "local address");
    assert_eq!(&body[16..18], &179u16.to_be_bytes(), "local port");
    assert_eq!(&body[18..20], &40000u16.to_be_bytes(), "remote port");
    let (first, n) = decode_message(&body[20..], &codec()).unwrap().unwrap();
    assert_eq!(first, Message::Open(sent));
    let (second, n2) = decode_message(&body[20 + n..], &codec()).unwrap().unwrap();
    assert_eq!(second, Message::Open(received));
    assert_eq!(20 + n + n2, body.len(), "nothing after the OPENs");
}

#[test]
fn peer_down_reasons_and_their_data() {
    let h = header("10.1.0.2", false);
    let nf = Notification {
        code: 6,
        subcode: 2,
        data: vec![],
    };
    let m = peer_down(&h, DownReason::LocalNotification(&nf));
    assert_eq!(m[48], 1);
    let (pdu, _) = decode_message(&m[49..], &codec()).unwrap().unwrap();
    assert_eq!(pdu, Message::Notification(nf.clone()));
    let m = peer_down(&h, DownReason::RemoteNotification(&nf));
    assert_eq!(m[48], 3);
    assert_eq!(m.len(), 49 + 21, "a NOTIFICATION without data is 21 octets");
    let m = peer_down(&h, DownReason::LocalNoNotification { fsm_event: 0 });
    assert_eq!(&m[48..], &[2, 0, 0], "reason 2 with a 2-octet FSM event");
    let m = peer_down(&h, DownReason::RemoteNoNotification);
    assert_eq!(&m[48..], &[4]);
}

#[test]
fn route_monitoring_one_update_per_message() {
    let h = header("10.1.0.2", false);
    let u = Update {
        attributes: PathAttributes {
            origin: Some(wire::Origin::Igp),
            as_path: wire::AsPath::from_sequence(vec![65002]),
            next_hop: Some("10.1.0.2".parse().unwrap()),
            ..PathAttributes::default()
        },
        nlri: vec!["10.130.1.0/24".parse::<Ipv4Net>().unwrap()],
        ..Update::default()
    };
    let m = route_monitoring(&h, &u);
    assert_eq!(m.len(), 1);
    common(&m[0], msg_type::ROUTE_MONITORING);
    let (pdu, n) = decode_message(&m[0][48..], &codec()).unwrap().unwrap();
    assert_eq!(pdu, Message::Update(u));
    assert_eq!(48 + n, m[0].len());

    // More prefixes than one 4096-octet UPDATE holds: several messages,
    // each one UPDATE, together every prefix.
    let many: Vec<Ipv4Net> = (0..2000u32)
        .map(|i| Ipv4Net::new(std::net::Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap())
        .collect();
    let big = Update {
        withdrawn: many.clone(),
        ..Update::default()
    };
    let m = route_monitoring(&h, &big);
    assert!(m.len() > 1, "split");
    let mut seen = Vec::new();
    for msg in &m {
        common(msg, msg_type::ROUTE_MONITORING);
        let (pdu, n) = decode_message(&msg[48..], &codec()).unwrap().unwrap();
        assert_eq!(48 + n, msg.len(), "exactly one UPDATE");
        let Message::Update(u) = pdu else {
            panic!("{pdu:?}")
        };
        seen.extend(u.withdrawn);
    }
    assert_eq!(seen, many);
}

#[test]
fn statistics_report_tlvs() {
    let m = statistics(
        &header("10.1.0.2", false),
        &[
            Stat::RejectedPrefixes(3),
            Stat::AdjRibIn(7),
            Stat::AdjRibInOf(Family::Ipv6Unicast, 5),
            Stat::TreatAsWithdrawUpdates(1),
        ],
    );
    common(&m, msg_type::STATISTICS_REPORT);
    let b = &m[48..];
    assert_eq!(&b[..4], &4u32.to_be_bytes(), "count");
    assert_eq!(&b[4..12], &[0, 0, 0, 4, 0, 0, 0, 3], "type 0, 32 bits");
    assert_eq!(&b[12..16], &[0, 7, 0, 8], "type 7, 64 bits");
    assert_eq!(&b[16..24], &7u64.to_be_bytes());
    assert_eq!(&b[24..28], &[0, 9, 0, 11], "type 9: AFI, SAFI, 64 bits");
    assert_eq!(&b[28..31], &[0, 2, 1]);
    assert_eq!(&b[31..39], &5u64.to_be_bytes());
    assert_eq!(&b[39..], &[0, 11, 0, 4, 0, 0, 0, 1]);
}
