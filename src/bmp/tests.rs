//! The views as UPDATEs, and a collector task against a local listener:
//! Initiation first, then what is queued; a collector that does not read
//! overflows its queue, is dropped and connected again.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use wire::{decode_message, NextHop, PathAttributes, SessionCodec};

use super::*;

fn attrs(nh: &str) -> Arc<Attrs> {
    Arc::new(Attrs {
        next_hop: NextHop::new(nh.parse().unwrap()),
        attrs: PathAttributes {
            local_pref: Some(250),
            ..PathAttributes::default()
        },
    })
}

fn header() -> PeerHeader {
    PeerHeader {
        address: "10.1.0.2".parse().unwrap(),
        asn: 65002,
        bgp_id: "10.1.0.2".parse().unwrap(),
        post_policy: true,
        timestamp: SystemTime::now(),
    }
}

/// The UPDATE inside each Route Monitoring message.
fn updates(msgs: &[Vec<u8>]) -> Vec<Update> {
    let codec = SessionCodec {
        four_octet_as: true,
    };
    msgs.iter()
        .map(
            |m| match decode_message(&m[48..], &codec).unwrap().unwrap().0 {
                wire::Message::Update(u) => u,
                other => panic!("{other:?}"),
            },
        )
        .collect()
}

#[test]
fn a_view_groups_by_attributes_and_family() {
    let v4 = attrs("10.1.0.2");
    let v6 = attrs("fd00:2::2");
    let mut view = View::default();
    view.announce("10.130.1.0/24".parse().unwrap(), &v4);
    view.announce("10.130.2.0/24".parse().unwrap(), &v4);
    view.announce("fd00:130::/48".parse().unwrap(), &v6);
    view.withdraw("10.130.3.0/24".parse().unwrap());
    view.withdraw("fd00:131::/48".parse().unwrap());
    let u = updates(&view.encode(&header()));
    assert_eq!(u.len(), 3, "{u:?}");
    // Withdrawals first, both families in one UPDATE.
    assert_eq!(u[0].withdrawn, vec!["10.130.3.0/24".parse().unwrap()]);
    let mp = u[0].mp_unreach.as_ref().unwrap();
    assert_eq!(mp.withdrawn, vec!["fd00:131::/48".parse().unwrap()]);
    // IPv4 in the NLRI field with NEXT_HOP; IPv6 in MP_REACH_NLRI.
    assert_eq!(u[1].nlri.len(), 2);
    assert_eq!(u[1].attributes.next_hop, Some("10.1.0.2".parse().unwrap()));
    assert_eq!(u[1].attributes.local_pref, Some(250));
    let r = u[2].mp_reach.as_ref().unwrap();
    assert_eq!(r.family, Family::Ipv6Unicast);
    assert_eq!(r.next_hop.address, "fd00:2::2".parse::<IpAddr>().unwrap());
    assert_eq!(u[2].attributes.next_hop, None);
}

#[test]
fn an_ipv4_prefix_with_an_ipv6_next_hop_goes_in_mp_reach() {
    let u = announcement(
        Family::Ipv4Unicast,
        &attrs("fd00:2::2"),
        vec!["10.130.1.0/24".parse().unwrap()],
    );
    assert!(u.nlri.is_empty());
    assert_eq!(u.mp_reach.unwrap().family, Family::Ipv4Unicast);
}

#[test]
fn end_of_rib_markers_are_the_wire_crates() {
    for f in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
        assert_eq!(end_of_rib(f).end_of_rib(), Some(f));
    }
}

/// Reads one BMP message (common header's length).
async fn read_msg(s: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut head = [0u8; 6];
    s.read_exact(&mut head).await.unwrap();
    let len = u32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
    let mut rest = vec![0u8; len - 6];
    s.read_exact(&mut rest).await.unwrap();
    [head.to_vec(), rest].concat()
}

#[tokio::test]
async fn collector_gets_initiation_then_the_queue_and_a_slow_one_is_reconnected() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let init = encode::initiation("n", "kroute test");
    let handle = Handle::spawn(addr, 64 * 1024, init.clone());
    let (mut conn, _) = listener.accept().await.unwrap();
    assert_eq!(read_msg(&mut conn).await, init);
    let epoch = loop {
        match handle.epoch() {
            0 => tokio::time::sleep(Duration::from_millis(10)).await,
            e => break e,
        }
    };
    let msg = encode::termination(encode::TerminationReason::AdministrativelyClosed, "x");
    assert!(handle.send(epoch, msg.clone()));
    assert_eq!(read_msg(&mut conn).await, msg);

    // The collector stops reading: the queue fills (64 KiB here, plus
    // what the sockets buffer), the connection is dropped.
    let big = vec![0u8; 16 * 1024];
    let mut refused = false;
    for _ in 0..100_000 {
        if !handle.send(epoch, big.clone()) {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(refused, "the queue is bounded");
    // A new connection, a new epoch, Initiation first again.
    let (mut again, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .expect("reconnects after the backoff")
        .unwrap();
    assert_eq!(read_msg(&mut again).await, init);
    let status = handle.shared.status.lock().unwrap().clone();
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("too slowly"),
        "{status:?}"
    );
    drop(conn);
    let (tx, rx) = tokio::sync::oneshot::channel();
    handle.stop("bye", Some(tx));
    rx.await.unwrap();
    // Termination last.
    let t = read_msg(&mut again).await;
    assert_eq!(t[5], encode::msg_type::TERMINATION);
}
