//! Issue 12, "Limits", against the running daemon from outside: a peer
//! that sends too many prefixes (`maxPrefixes`), one that streams
//! ROUTE-REFRESH, one that stops reading (RFC 9687 send hold timer), and
//! the config forms of the new keys.
//!
//! Topology: kroute in namespace K (10.1.0.1/24), the peers in namespace P
//! (10.1.0.2/24 and 10.1.0.3/24) as raw TCP clients speaking BGP by hand
//! (`RawPeer`), so the test sees exactly what kroute sends. kroute's peers
//! are passive: every connection is the peer's. Needs root.

mod common;

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::kroute::{self as kr, Kroute};
use common::raw_peer::{RawPeer, CODEC};
use common::scenarios::{KROUTE_ASN, PEER_ASN, V4};
use common::{netns, veth, wait_until};
use ipnet::Ipv4Net;
use kroute::api::NeighborView;
use kroute::config::{parse, LimitAction, MaxPrefixes, Peer, PrefixLimit};
use kroute::events::SessionState;
use labkit::procfs::Mem;
use labkit::Netns;
use rib::policy::PolicyChain;
use wire::{
    encode_message, AsPath, Capability, Community, Family, Message, Open, Origin, PathAttributes,
    RouteRefresh, Update,
};

const K4: &str = "10.1.0.1";
const P4: &str = "10.1.0.2";
const Q4: &str = "10.1.0.3";
const KROUTE_ID: &str = "10.255.0.1";

/// The OPEN of the peer at `src` (also its router ID): p is AS PEER_ASN,
/// q the next one.
fn open(src: &str) -> Open {
    let asn = if src == Q4 { PEER_ASN + 1 } else { PEER_ASN };
    Open {
        version: 4,
        asn,
        hold_time: 90,
        router_id: src.parse().unwrap(),
        capabilities: vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::RouteRefresh,
            Capability::FourOctetAs(asn),
        ],
    }
}

/// A raw peer from `src` (P4 or Q4) with [`open`]; `rcvbuf` shrinks its
/// receive window before the handshake.
fn establish(ns: &Netns, src: &str, rcvbuf: Option<usize>) -> RawPeer {
    RawPeer::establish(ns, src, K4, open(src), rcvbuf)
}

/// 10.200.x.y/32 for i in `range`, one UPDATE, next hop `nh`.
fn announce(range: std::ops::Range<u32>, nh: &str) -> Message {
    Message::Update(Update {
        attributes: attrs(nh, vec![]),
        nlri: range.map(host).collect(),
        ..Default::default()
    })
}

fn host(i: u32) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(0x0ac8_0000 + i), 32).unwrap()
}

/// Attributes of a route from the peer at `nh` (its own address).
fn attrs(nh: &str, communities: Vec<Community>) -> PathAttributes {
    let asn = if nh == Q4 { PEER_ASN + 1 } else { PEER_ASN };
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: AsPath::from_sequence(vec![asn]),
        next_hop: Some(nh.parse().unwrap()),
        communities: communities.into(),
        ..Default::default()
    }
}

fn rss_kib(pid: u32) -> u64 {
    Mem::read(pid).expect("/proc/PID/status of kroute").rss_kib
}

/// Dropped in field order: kroute first, then the namespaces.
struct Lab {
    kroute: Kroute,
    p_ns: Netns,
    _k_ns: Netns,
}

/// kroute with passive peers "p" (10.1.0.2, changed by `tweak_p`) and,
/// `with_q`, "q" (10.1.0.3).
fn lab(tag: &str, tweak_p: impl FnOnce(&mut Peer), with_q: bool) -> Lab {
    let k_ns = netns(&format!("k{tag}"));
    let p_ns = netns(&format!("p{tag}"));
    veth(
        &k_ns,
        &p_ns,
        &[&format!("{K4}/24")],
        &[&format!("{P4}/24"), &format!("{Q4}/24")],
    );
    let mut cfg = kr::config(KROUTE_ASN, KROUTE_ID);
    let passive = |name: &str, addr: &str, asn: u32| Peer {
        passive: true,
        ..kr::peer(name, addr, asn, &[V4])
    };
    let mut p = passive("p", P4, PEER_ASN);
    tweak_p(&mut p);
    cfg.peers.push(p);
    if with_q {
        cfg.peers.push(passive("q", Q4, PEER_ASN + 1));
    }
    let kroute = Kroute::start(&k_ns, cfg);
    Lab {
        kroute,
        p_ns,
        _k_ns: k_ns,
    }
}

/// `maxPrefixes: N` (every family, teardown).
fn limit(n: u32) -> Option<MaxPrefixes> {
    Some(MaxPrefixes {
        limit: PrefixLimit::All(n),
        action: LimitAction::Teardown,
        restart_after: None,
    })
}

fn neighbor(k: &Kroute, peer: &str) -> NeighborView {
    k.neighbor(peer)
        .unwrap_or_else(|| panic!("kroute has no neighbor {peer}"))
}

fn wait_received(k: &Kroute, peer: &str, n: usize) {
    wait_until(
        Duration::from_secs(10),
        &format!("{n} prefixes received from {peer}"),
        || match k.neighbor(peer) {
            Some(nb) if nb.prefixes_received == n && nb.state == SessionState::Established => {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        },
    );
}

// --- maxPrefixes ----------------------------------------------------------

/// RFC 4486 §4: Cease/1 carries AFI, SAFI and the limit; the peer stays
/// down (its connections refused with Cease/5) until `kroute peer p reset`.
#[test]
fn max_prefixes_teardown_sends_cease_1_and_stays_down_until_reset() {
    let l = lab("mpt", |p| p.max_prefixes = limit(10), false);
    let mut p = establish(&l.p_ns, P4, None);
    // The handshake is over for p once kroute's KEEPALIVE came; kroute
    // may still be taking p's.
    wait_until(Duration::from_secs(5), "p Established", || {
        l.kroute.established("p")
    });

    // At the limit: fine.
    p.send(&[announce(0..10, P4)]);
    wait_received(&l.kroute, "p", 10);

    // One more: torn down.
    p.send(&[announce(10..11, P4)]);
    let nf = p.notification_at_close().expect("a NOTIFICATION");
    assert_eq!((nf.code, nf.subcode), (6, 1), "{nf:?}");
    assert_eq!(
        nf.data,
        vec![0, 1, 1, 0, 0, 0, 10],
        "AFI 1, SAFI 1, limit 10"
    );
    let nb = wait_until(Duration::from_secs(5), "p held down", || {
        match l.kroute.neighbor("p") {
            Some(n) if n.state == SessionState::Idle && n.held_down.is_some() => Ok(n),
            other => Err(format!("{other:?}")),
        }
    });
    let why = nb.held_down.as_deref().unwrap();
    assert!(why.contains("more than 10 ipv4-unicast prefixes"), "{why}");
    let last = nb.last_error.as_deref().unwrap_or_default();
    assert!(last.contains("maximum prefixes exceeded"), "{last}");
    assert!(last.contains("(6/1)"), "the NOTIFICATION sent: {last}");
    assert_eq!(nb.prefixes_received, 0, "its routes are gone");

    // It stays down: a new connection is refused.
    std::thread::sleep(Duration::from_secs(2));
    let mut again = RawPeer::connect(&l.p_ns, P4, K4, None);
    let nf = again
        .notification_at_close()
        .expect("refused with a NOTIFICATION");
    assert_eq!((nf.code, nf.subcode), (6, 5), "{nf:?}");
    assert_eq!(neighbor(&l.kroute, "p").state, SessionState::Idle);

    // `kroute peer p reset` lets it in again.
    let out = l.kroute.cli_ok(&["peer", "p", "reset"]);
    assert!(out.contains("reset"), "{out}");
    let _p = establish(&l.p_ns, P4, None);
    wait_until(Duration::from_secs(5), "p Established after reset", || {
        l.kroute.established("p")
    });
    assert_eq!(neighbor(&l.kroute, "p").held_down, None);
    drop(l);
}

/// A reload that changes the peer's `maxPrefixes` lets a held-down peer
/// in again, under the new limit.
#[test]
fn max_prefixes_reload_with_a_new_limit_lets_the_peer_in_again() {
    let mut l = lab("mpl", |p| p.max_prefixes = limit(2), false);
    let mut p = establish(&l.p_ns, P4, None);
    p.send(&[announce(0..3, P4)]);
    let nf = p.notification_at_close().expect("a NOTIFICATION");
    assert_eq!((nf.code, nf.subcode), (6, 1));
    wait_until(Duration::from_secs(5), "p held down", || {
        match neighbor(&l.kroute, "p").held_down {
            Some(_) => Ok(()),
            None => Err("not held down".to_string()),
        }
    });
    kr::peer_mut(&mut l.kroute.config, "p").max_prefixes = limit(5);
    l.kroute.reload();
    wait_until(
        Duration::from_secs(5),
        "p no longer held down",
        || match neighbor(&l.kroute, "p").held_down {
            None => Ok(()),
            Some(why) => Err(why),
        },
    );
    let mut p = establish(&l.p_ns, P4, None);
    p.send(&[announce(0..3, P4)]);
    wait_received(&l.kroute, "p", 3);
    std::thread::sleep(Duration::from_millis(500));
    l.kroute.established("p").unwrap();
}

/// Rejected paths count too (import rejects everything here: no policy,
/// RFC 8212), and with `restartAfter` the peer is let in again by itself.
#[test]
fn max_prefixes_counts_rejected_paths_and_restarts_after_the_delay() {
    let l = lab(
        "mpr",
        |p| {
            p.import = PolicyChain::None;
            p.max_prefixes = Some(MaxPrefixes {
                limit: PrefixLimit::PerFamily([(Family::Ipv4Unicast, 5)].into()),
                action: LimitAction::Teardown,
                restart_after: Some(3),
            });
        },
        false,
    );
    let mut p = establish(&l.p_ns, P4, None);
    p.send(&[announce(0..5, P4)]);
    wait_received(&l.kroute, "p", 5);
    assert_eq!(neighbor(&l.kroute, "p").prefixes_accepted, 0);
    p.send(&[announce(5..6, P4)]);
    let nf = p.notification_at_close().expect("a NOTIFICATION");
    assert_eq!(
        (nf.code, nf.subcode, nf.data.clone()),
        (6, 1, vec![0, 1, 1, 0, 0, 0, 5])
    );
    let down_at = Instant::now();
    // The NOTIFICATION may reach us a moment before the router task has
    // published the peer's held-down state.
    let why = wait_until(Duration::from_secs(5), "p held down", || {
        neighbor(&l.kroute, "p")
            .held_down
            .ok_or_else(|| "not held down yet".to_string())
    });
    assert!(why.contains("restarting after 3 s"), "{why:?}");
    let nf = RawPeer::connect(&l.p_ns, P4, K4, None).notification_at_close();
    assert_eq!(nf.map(|n| (n.code, n.subcode)), Some((6, 5)));
    // After the delay it accepts the peer again.
    let _p = wait_until(Duration::from_secs(10), "p let in again", || {
        std::thread::sleep(Duration::from_millis(500));
        match neighbor(&l.kroute, "p").held_down {
            None => Ok(establish(&l.p_ns, P4, None)),
            Some(why) => Err(why),
        }
    });
    assert!(down_at.elapsed() >= Duration::from_secs(3));
    wait_until(Duration::from_secs(5), "p Established", || {
        l.kroute.established("p")
    });
}

/// `action: warning`: the session and the routes stay; one log line per
/// crossing.
#[test]
fn max_prefixes_warning_keeps_the_session_and_logs_once() {
    let l = lab(
        "mpw",
        |p| {
            p.max_prefixes = Some(MaxPrefixes {
                limit: PrefixLimit::All(3),
                action: LimitAction::Warning,
                restart_after: None,
            })
        },
        false,
    );
    let mut p = establish(&l.p_ns, P4, None);
    p.send(&[announce(0..5, P4)]);
    wait_received(&l.kroute, "p", 5);
    p.send(&[announce(5..7, P4)]);
    wait_received(&l.kroute, "p", 7);
    std::thread::sleep(Duration::from_secs(1));
    l.kroute.established("p").unwrap();
    let log = l.kroute.log_tails(500);
    assert_eq!(
        log.matches("maximum prefixes exceeded").count(),
        1,
        "one warning per crossing:\n{log}"
    );
    assert_eq!(neighbor(&l.kroute, "p").held_down, None);
    // Below the limit and above again: a second crossing, a second line.
    p.send(&[Message::Update(Update {
        withdrawn: (0..6).map(host).collect(),
        ..Default::default()
    })]);
    wait_received(&l.kroute, "p", 1);
    p.send(&[announce(0..6, P4)]);
    wait_received(&l.kroute, "p", 7);
    std::thread::sleep(Duration::from_millis(500));
    let log = l.kroute.log_tails(500);
    assert_eq!(log.matches("maximum prefixes exceeded").count(), 2, "{log}");
}

// --- ROUTE-REFRESH flood --------------------------------------------------

/// Issue 12: 511 MiB of ROUTE-REFRESH for a family kroute ignores grew
/// its RSS by 511 MiB. Now they are dropped (and counted), requests for a
/// negotiated family are coalesced, and memory stays flat.
#[test]
fn route_refresh_flood_does_not_grow_memory_and_the_session_stays_up() {
    let l = lab("rrf", |_| {}, true);
    let pid = l.kroute.pid().expect("kroute pid");
    // Routes for p to get back on each refresh: 200 from q.
    let mut q = establish(&l.p_ns, Q4, None);
    q.send(&[announce(0..200, Q4)]);
    wait_received(&l.kroute, "q", 200);

    let mut p = establish(&l.p_ns, P4, None);
    // Drain what kroute sends p, counting UPDATE messages.
    let mut reader = p.s.try_clone().unwrap();
    reader.set_read_timeout(None).unwrap();
    let drained = Arc::new(AtomicU64::new(0));
    let counter = drained.clone();
    let drain = std::thread::spawn(move || {
        let mut chunk = [0u8; 64 * 1024];
        while let Ok(n) = reader.read(&mut chunk) {
            if n == 0 {
                break;
            }
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    });
    // The initial table (q's 200 routes) arrives first.
    std::thread::sleep(Duration::from_secs(1));
    let before = rss_kib(pid);
    let bytes_before = drained.load(Ordering::Relaxed);

    // 2 M ROUTE-REFRESH for IPv6 (not negotiated) and 100 k for IPv4, in
    // 4 MiB writes: ~46 MB on the wire.
    let v6 = Message::RouteRefresh(RouteRefresh {
        family: Family::Ipv6Unicast,
    });
    let v4 = Message::RouteRefresh(RouteRefresh {
        family: Family::Ipv4Unicast,
    });
    let mut batch = Vec::new();
    for i in 0..200_000 {
        encode_message(if i % 20 == 0 { &v4 } else { &v6 }, &CODEC, &mut batch);
    }
    let v6_per_batch = 190_000u64;
    let start = Instant::now();
    for _ in 0..10 {
        p.s.write_all(&batch).expect("flood kroute");
    }
    eprintln!(
        "sent {} MB in {:?}",
        10 * batch.len() / 1_000_000,
        start.elapsed()
    );
    // An UPDATE behind the flood: once it is in the RIB, kroute has read
    // every ROUTE-REFRESH (whatever it queued meanwhile is in its RSS).
    p.send(&[announce(0..1, P4)]);
    let mut peak = before;
    wait_until(
        Duration::from_secs(60),
        "the UPDATE behind the flood",
        || {
            peak = peak.max(rss_kib(pid));
            match l.kroute.neighbor("p") {
                Some(n) if n.prefixes_received == 1 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    );
    peak = peak.max(rss_kib(pid));
    eprintln!("RSS {before} KiB -> peak {peak} KiB");
    assert!(
        peak < before + 20 * 1024,
        "RSS grew by {} KiB (before {before} KiB)",
        peak - before
    );
    wait_until(
        Duration::from_secs(60),
        "every ROUTE-REFRESH counted",
        || match neighbor(&l.kroute, "p").route_refresh_ignored {
            n if n == 10 * v6_per_batch => Ok(()),
            n => Err(format!("ignored: {n}")),
        },
    );
    let coalesced = neighbor(&l.kroute, "p").route_refresh_coalesced;
    eprintln!("coalesced {coalesced} of 100000 IPv4 refreshes");
    l.kroute.established("p").unwrap();
    l.kroute.established("q").unwrap();
    // The IPv4 requests were answered, but not 100 000 times.
    assert!(coalesced > 0, "no IPv4 refresh was coalesced");
    let answered = drained.load(Ordering::Relaxed) - bytes_before;
    eprintln!("p received {answered} bytes of answers");
    assert!(answered > 0, "the IPv4 refreshes were never answered");
    drop(p);
    drop(l);
    let _ = drain.join();
}

// --- a peer that stops reading (RFC 9687) --------------------------------

/// kroute has a big table for p (100 k routes from q, each with its own
/// community, so ~100 k UPDATEs); p shrinks its window and stops reading
/// but keeps sending KEEPALIVEs. After `sendHoldTime` kroute closes the
/// session, and its memory stayed bounded meanwhile.
#[test]
fn send_hold_timer_closes_a_session_whose_peer_stopped_reading() {
    let l = lab("shd", |p| p.send_hold_time = Some(5), true);
    let pid = l.kroute.pid().expect("kroute pid");
    let p = establish(&l.p_ns, P4, Some(4096));
    let mut q = establish(&l.p_ns, Q4, None);
    let before = rss_kib(pid);
    let start = Instant::now();
    let n = 100_000u32;
    let updates: Vec<Message> = (0..n)
        .map(|i| {
            Message::Update(Update {
                attributes: attrs(
                    Q4,
                    vec![Community(0xfde8_0000 | (i & 0xffff) | ((i >> 16) << 28))],
                ),
                nlri: vec![host(i)],
                ..Default::default()
            })
        })
        .collect();
    for chunk in updates.chunks(10_000) {
        q.send(chunk);
    }
    // p never reads again; it only keeps its own side of the session
    // alive, from another thread.
    let mut p_keepalive = p.s.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let ka = std::thread::spawn(move || {
        let mut buf = Vec::new();
        encode_message(&Message::Keepalive, &CODEC, &mut buf);
        while !stop2.load(Ordering::Relaxed) {
            if p_keepalive.write_all(&buf).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    wait_received(&l.kroute, "q", n as usize);
    eprintln!("q's table learned after {:?}", start.elapsed());
    let mut peak = rss_kib(pid);
    let nb = wait_until(Duration::from_secs(30), "p's session closed", || {
        peak = peak.max(rss_kib(pid));
        match l.kroute.neighbor("p") {
            Some(nb) if nb.state != SessionState::Established => Ok(nb),
            other => Err(format!("{other:?}")),
        }
    });
    let after = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = ka.join();
    let last = nb.last_error.unwrap_or_default();
    eprintln!("p closed {after:?} after q began to send: {last}; RSS {before} -> peak {peak} KiB");
    assert!(last.contains("send hold timer expired"), "{last}");
    // Nothing was stuck before q sent anything.
    assert!(
        after >= Duration::from_secs(5),
        "closed after {after:?}, before the send hold time"
    );
    assert!(
        peak < before + 200 * 1024,
        "RSS grew by {} KiB for 100 k routes",
        peak - before
    );
    // q's session was not disturbed.
    l.kroute.established("q").unwrap();
    drop(p);
}

// --- connections that break the FSM -----------------------------------------

/// Issue 12: 300 connections from a configured peer's address that sent an
/// UPDATE before the session was up and closed left 316 descriptors open
/// (each stuck in OpenSent, the socket in CLOSE-WAIT). Each must be closed
/// with the FSM error (RFC 4271 §8.2.2, 5/1 in OpenSent) and leave nothing
/// behind; the real peer then comes up.
#[test]
fn three_hundred_premature_updates_leave_no_descriptor_open() {
    let l = lab("fds", |_| {}, false);
    let pid = l.kroute.pid().expect("kroute pid");
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let before = fds();
    for i in 0..300 {
        // Back to back, a connection may also be refused at accept (the
        // previous one is still being handed over) or replace the previous
        // one (6/7); every 100th waits for the others to be done and
        // checks the FSM error itself.
        let checked = i % 100 == 0;
        if checked {
            std::thread::sleep(Duration::from_millis(300));
        }
        let mut c = RawPeer::connect(&l.p_ns, P4, K4, None);
        c.send(&[Message::Update(Update::default())]);
        if checked {
            let nf = c.notification_at_close().expect("a NOTIFICATION");
            assert_eq!((nf.code, nf.subcode), (5, 1), "{nf:?}");
        }
        c.close();
    }
    let after = wait_until(Duration::from_secs(10), "descriptors back", || {
        match fds() {
            n if n <= before + 2 => Ok(n),
            n => Err(format!("{n} open, {before} before")),
        }
    });
    eprintln!("kroute's descriptors: {before} before, {after} after 300 connections");
    // As a real peer would after its connect-retry time: the last of the
    // 300 may still be in the hand-over, which refuses a second one.
    std::thread::sleep(Duration::from_millis(500));
    let _p = establish(&l.p_ns, P4, None);
    wait_until(Duration::from_secs(5), "p Established", || {
        l.kroute.established("p")
    });
}

// --- the config keys --------------------------------------------------------

fn peer_yaml(extra: &str) -> String {
    format!(
        "router: {{ asn: 65000, routerId: 10.0.0.1 }}\n\
         peers:\n  - {{ name: a, address: 192.0.2.1, asn: 65001, {extra} }}\n"
    )
}

#[test]
fn max_prefixes_config_forms_parse_and_round_trip() {
    let cases = [
        (
            "maxPrefixes: 10000",
            PrefixLimit::All(10000),
            LimitAction::Teardown,
            None,
        ),
        (
            "maxPrefixes: { ipv4-unicast: 10000, ipv6-unicast: 2000 }",
            PrefixLimit::PerFamily(
                [(Family::Ipv4Unicast, 10000), (Family::Ipv6Unicast, 2000)].into(),
            ),
            LimitAction::Teardown,
            None,
        ),
        (
            "maxPrefixes: { limit: 5, action: warning }",
            PrefixLimit::All(5),
            LimitAction::Warning,
            None,
        ),
        (
            "maxPrefixes: { limit: { ipv6-unicast: 7 }, restartAfter: 60 }",
            PrefixLimit::PerFamily([(Family::Ipv6Unicast, 7)].into()),
            LimitAction::Teardown,
            Some(60),
        ),
    ];
    for (yaml, limit, action, restart_after) in cases {
        let c = parse(&peer_yaml(yaml), "t.yaml").unwrap_or_else(|e| panic!("{yaml}: {e}"));
        let mp = c.peers[0].max_prefixes.clone().expect(yaml);
        assert_eq!(
            (mp.limit, mp.action, mp.restart_after),
            (limit, action, restart_after)
        );
        let printed = c.to_yaml();
        assert_eq!(parse(&printed, "p.yaml").unwrap(), c, "{printed}");
    }
    let c = parse(&peer_yaml("sendHoldTime: 30"), "t.yaml").unwrap();
    assert_eq!(c.peers[0].send_hold_time, Some(30));
}

#[test]
fn bad_max_prefixes_are_rejected_with_the_key_path() {
    for (yaml, says) in [
        ("maxPrefixes: 0", "at least 1"),
        ("maxPrefixes: { limit: 5, restartAfter: 0 }", "restartAfter"),
        (
            "families: [ipv4-unicast], maxPrefixes: { ipv6-unicast: 5 }",
            "not one of the peer's families",
        ),
        ("maxPrefixes: { limit: 5, action: shout }", "maxPrefixes"),
        ("sendHoldTime: 0", "sendHoldTime"),
    ] {
        let e = parse(&peer_yaml(yaml), "t.yaml")
            .expect_err(yaml)
            .to_string();
        assert!(e.contains(says), "{yaml}: {e}");
        assert!(e.contains("peers[0]"), "{yaml}: {e}");
    }
}
