//! Issue 12, "Fuzzing and soak": a peer with 10k routes flaps 500 times;
//! kroute's memory does not grow and the kernel ends exactly right.
//!
//! 500 full session flaps (each: peer down, 10k routes withdrawn in steps,
//! reconnect, OPEN, 10k routes again) do not fit CI's time on 2 cores with
//! a debug build, so the 500 flaps are the routes': each flap withdraws all
//! 10k routes and announces them again in UPDATEs; every 100th flap is a
//! real session flap instead (the TCP connection closed, the session
//! re-established, the table sent again).
//!
//! Topology: kroute in namespace K (10.1.0.1/24); the peer in namespace P
//! (10.1.0.2/24, plus 10.1.0.3/24 as a second next hop) as a raw TCP
//! client speaking BGP by hand, fast enough to keep kroute busy. kroute's
//! peer is passive. Needs root.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::kernel::kernel_routes;
use common::kroute::{self as k, Kroute};
use common::raw_peer::{encode, open_v4, RawPeer};
use common::scenarios::{KROUTE_ASN, PEER_ASN, V4};
use common::{netns, veth, wait_until};
use ipnet::Ipv4Net;
use labkit::Netns;
use wire::{AsPath, Message, Origin, PathAttributes, Update};

const K4: &str = "10.1.0.1";
const P4: &str = "10.1.0.2";
const P4_OTHER: &str = "10.1.0.3";
const ROUTES: u32 = 10_000;
const FLAPS: usize = 500;
/// Every this many flaps, the session itself flaps.
const SESSION_FLAP_EVERY: usize = 100;
/// Long enough for any single step on a loaded 2-core machine.
const STEP: Duration = Duration::from_secs(60);

/// 10.200.x.y/32 for route `i`.
fn host(i: u32) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(0x0ac8_0000 + i), 32).unwrap()
}

/// A prefix outside the table, announced on even flaps and withdrawn on
/// odd ones: its count tells when kroute has read a whole flap.
fn marker() -> Ipv4Net {
    "10.201.0.1/32".parse().unwrap()
}

fn announce(nlri: Vec<Ipv4Net>, next_hop: &str) -> Message {
    Message::Update(Update {
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: AsPath::from_sequence(vec![PEER_ASN]),
            next_hop: Some(next_hop.parse().unwrap()),
            ..Default::default()
        },
        nlri,
        ..Default::default()
    })
}

fn withdraw(withdrawn: Vec<Ipv4Net>) -> Message {
    Message::Update(Update {
        withdrawn,
        ..Default::default()
    })
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn wait_received(k: &Kroute, n: usize) {
    wait_until(STEP, &format!("{n} prefixes received"), || {
        match k.neighbor("raw") {
            Some(nb) if nb.prefixes_received == n => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
}

/// Waits until the kernel holds exactly the 10k routes via `gateway` on
/// `dev` (`want_routes`) or none (`!want_routes`), and nothing else of
/// kroute's.
fn wait_kernel(ns: &Netns, want_routes: bool, gateway: &str, dev: &str) {
    let want: std::collections::BTreeSet<String> = if want_routes {
        (0..ROUTES).map(|i| host(i).to_string()).collect()
    } else {
        Default::default()
    };
    wait_until(STEP, "the kernel table exactly right", || {
        let routes = kernel_routes(ns, 4);
        let wrong: Vec<_> = routes
            .iter()
            .filter(|r| r.nexthops != [(gateway.to_string(), dev.to_string())])
            .take(3)
            .collect();
        let have: std::collections::BTreeSet<String> =
            routes.iter().map(|r| r.dst.clone()).collect();
        if have == want && wrong.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} routes (want {}), e.g. wrong next hops {wrong:?}",
                have.len(),
                want.len()
            ))
        }
    });
}

#[test]
fn ten_thousand_routes_flap_500_times_without_growth() {
    let started = Instant::now();
    let k_ns = netns("ksoak");
    let p_ns = netns("psoak");
    let link = veth(
        &k_ns,
        &p_ns,
        &[&format!("{K4}/24")],
        &[&format!("{P4}/24"), &format!("{P4_OTHER}/24")],
    );
    let mut cfg = k::config(KROUTE_ASN, "10.255.0.1");
    let mut peer = k::peer("raw", P4, PEER_ASN, &[V4]);
    peer.passive = true;
    cfg.peers.push(peer);
    let kroute = Kroute::start(&k_ns, cfg);
    let pid = kroute.pid().expect("kroute's pid");

    let table: Vec<Ipv4Net> = (0..ROUTES).map(host).collect();
    let announce_all = encode(&[announce(table.clone(), P4)]);
    // One flap: all withdrawn, all announced again, the marker toggled.
    let flap = |with_marker: bool| {
        let m = if with_marker {
            announce(vec![marker()], P4)
        } else {
            withdraw(vec![marker()])
        };
        encode(&[
            withdraw(table.clone()),
            announce(table.clone(), P4),
            m,
            Message::Keepalive,
        ])
    };
    let flaps = [flap(true), flap(false)];

    let mut p = establish(&p_ns);
    p.send_raw(&announce_all);
    wait_received(&kroute, ROUTES as usize);
    wait_kernel(&k_ns, true, P4, &link.dev_a);
    std::thread::sleep(Duration::from_secs(1));
    let rss_first = rss_kib(pid);
    // RSS at each session flap, for the failure message: a leak grows
    // steadily, allocator slack levels off.
    let mut rss_seen = vec![rss_first];

    for i in 0..FLAPS {
        if (i + 1).is_multiple_of(SESSION_FLAP_EVERY) {
            // A real session flap: close, wait until kroute dropped the
            // peer's routes, connect again and send the table.
            rss_seen.push(rss_kib(pid));
            p.close();
            wait_received(&kroute, 0);
            p = establish(&p_ns);
            p.send_raw(&announce_all);
            wait_received(&kroute, ROUTES as usize);
            continue;
        }
        p.send_raw(&flaps[i % 2]);
        wait_received(&kroute, ROUTES as usize + usize::from(i.is_multiple_of(2)));
    }
    // The last flap above was a session flap: the marker is gone.
    assert!(FLAPS.is_multiple_of(SESSION_FLAP_EVERY));

    // The final announcement moves every route to the other next hop.
    p.send(&[announce(table.clone(), P4_OTHER)]);
    wait_kernel(&k_ns, true, P4_OTHER, &link.dev_a);
    std::thread::sleep(Duration::from_secs(1));
    let rss_last = rss_kib(pid);
    eprintln!(
        "soak: RSS {rss_first} KiB after the first load, {rss_last} KiB after {FLAPS} flaps \
         (every {SESSION_FLAP_EVERY}: {rss_seen:?}), {:?}",
        started.elapsed()
    );
    assert!(
        rss_last * 10 <= rss_first * 11,
        "RSS grew more than 10 %: {rss_first} KiB -> {rss_last} KiB (every \
         {SESSION_FLAP_EVERY} flaps: {rss_seen:?})"
    );

    // And a final withdrawal leaves nothing.
    p.send(&[withdraw(table)]);
    wait_received(&kroute, 0);
    wait_kernel(&k_ns, false, P4_OTHER, &link.dev_a);
    kroute.established("raw").unwrap();
    p.close();
    drop(kroute);
}

/// A raw peer from P4 whose incoming messages a thread reads and drops
/// (kroute's UPDATEs must never block on it).
fn establish(ns: &Netns) -> RawPeer {
    let p = RawPeer::establish(ns, P4, K4, open_v4(PEER_ASN, P4), None);
    p.discard_incoming();
    p
}
