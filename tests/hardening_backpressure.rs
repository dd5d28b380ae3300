//! Issue 12, "Bounded queues everywhere", against the running daemon: a
//! peer that holds its receive window shut while kroute has a full table
//! to send, and the table keeps changing.
//!
//! Topology: kroute in namespace K (10.1.0.1/24); in namespace P, raw BGP
//! peers (`RawPeer`): q (10.1.0.3) sends 100 k routes and flaps them, r
//! (10.1.0.4) reads everything at once, p1 (10.1.0.2), p2 (10.1.0.5) and
//! p3 (10.1.0.6) read nothing. kroute's peers are passive. Needs root.
//!
//! What a user sees: kroute's memory does not grow with the number of
//! flaps (a slow peer costs one entry per prefix, not one per change), r
//! gets every flap promptly, p1 is closed by the RFC 9687 send hold timer,
//! and p2, once it reads again, gets exactly the final table and its
//! End-of-RIB after it — not a replay of every flap.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kroute::{self as kr, Kroute};
use common::raw_peer::{RawPeer, CODEC};
use common::scenarios::{KROUTE_ASN, PEER_ASN, V4};
use common::{netns, veth, wait_until};
use ipnet::Ipv4Net;
use kroute::config::Peer;
use kroute::events::SessionState;
use labkit::procfs::Mem;
use labkit::Netns;
use wire::{
    encode_message, AsPath, Capability, Community, Family, Message, Open, Origin, PathAttributes,
    Update,
};

const K4: &str = "10.1.0.1";
const P1: &str = "10.1.0.2";
const Q4: &str = "10.1.0.3";
const R4: &str = "10.1.0.4";
const P2: &str = "10.1.0.5";
const P3: &str = "10.1.0.6";
const KROUTE_ID: &str = "10.255.0.1";

/// q's table.
const ROUTES: u32 = 100_000;
/// Times q withdraws and re-announces its whole table.
const FLAPS: u32 = 12;
/// The flap after which the memory baseline is taken (the allocator has
/// seen the churn by then).
const BASELINE_AFTER: u32 = 4;

fn asn_of(src: &str) -> u32 {
    match src {
        P1 => PEER_ASN,
        Q4 => PEER_ASN + 1,
        R4 => PEER_ASN + 2,
        P2 => PEER_ASN + 3,
        _ => PEER_ASN + 4,
    }
}

fn open(src: &str) -> Open {
    let asn = asn_of(src);
    Open {
        version: 4,
        asn,
        hold_time: 90,
        router_id: src.parse().unwrap(),
        capabilities: vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::FourOctetAs(asn),
        ],
    }
}

fn host(i: u32) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(0x0ac8_0000 + i), 32).unwrap()
}

/// The community that marks flap `n`'s routes.
fn marker(n: u32) -> Community {
    Community(0xfde8_0000 + n)
}

/// q's whole table with flap `n`'s marker (the encoder splits it into
/// 4096-octet UPDATEs).
fn announce_all(n: u32) -> Message {
    Message::Update(Update {
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: AsPath::from_sequence(vec![asn_of(Q4)]),
            next_hop: Some(Q4.parse().unwrap()),
            communities: vec![marker(n)].into(),
            ..Default::default()
        },
        nlri: (0..ROUTES).map(host).collect(),
        ..Default::default()
    })
}

fn withdraw_all() -> Message {
    Message::Update(Update {
        withdrawn: (0..ROUTES).map(host).collect(),
        ..Default::default()
    })
}

fn rss_kib(pid: u32) -> u64 {
    Mem::read(pid).expect("/proc/PID/status of kroute").rss_kib
}

/// What a peer was told, applied in order: its view of kroute's
/// Adj-RIB-Out towards it.
#[derive(Default)]
struct Seen {
    /// Prefix -> (flap marker, next hop).
    routes: HashMap<Ipv4Net, (u32, Ipv4Addr)>,
    /// Prefixes announced, counting repeats.
    announced: u64,
    /// Routes held when the End-of-RIB came, if it came.
    at_end_of_rib: Option<HashMap<Ipv4Net, (u32, Ipv4Addr)>>,
    closed: bool,
}

impl Seen {
    fn apply(&mut self, u: &Update) {
        if u.end_of_rib() == Some(Family::Ipv4Unicast) {
            self.at_end_of_rib
                .get_or_insert_with(|| self.routes.clone());
            return;
        }
        for p in &u.withdrawn {
            self.routes.remove(p);
        }
        let flap = u
            .attributes
            .communities
            .first()
            .map_or(u32::MAX, |c| c.0 & 0xffff);
        let nh = u.attributes.next_hop.unwrap_or(Ipv4Addr::UNSPECIFIED);
        for p in &u.nlri {
            self.routes.insert(*p, (flap, nh));
            self.announced += 1;
        }
    }

    /// Whether the routes are q's whole table at flap `n`, via kroute.
    fn is_final(routes: &HashMap<Ipv4Net, (u32, Ipv4Addr)>, n: u32) -> Result<(), String> {
        let k4: Ipv4Addr = K4.parse().unwrap();
        let right = (0..ROUTES)
            .filter(|i| routes.get(&host(*i)) == Some(&(n, k4)))
            .count();
        if right == ROUTES as usize && routes.len() == ROUTES as usize {
            Ok(())
        } else {
            Err(format!(
                "{right} of {ROUTES} routes at flap {n}, {} routes in all",
                routes.len()
            ))
        }
    }
}

/// Reads everything `p` gets from now on into `seen`, in a thread.
fn record(mut p: RawPeer, seen: Arc<Mutex<Seen>>) {
    p.s.set_read_timeout(None).unwrap();
    std::thread::spawn(move || {
        while let Some(m) = p.recv() {
            if let Message::Update(u) = m {
                seen.lock().unwrap().apply(&u);
            }
        }
        seen.lock().unwrap().closed = true;
    });
}

/// Sends a KEEPALIVE every 5 s on a clone of `p`'s socket until `stop`.
fn keep_alive(p: &RawPeer, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let mut s = p.s.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        encode_message(&Message::Keepalive, &CODEC, &mut buf);
        while !stop.load(Ordering::Relaxed) {
            if s.write_all(&buf).is_err() {
                break;
            }
            for _ in 0..50 {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    })
}

/// Dropped in field order: kroute first, then the namespaces.
struct Lab {
    kroute: Kroute,
    p_ns: Netns,
    _k_ns: Netns,
}

fn lab(tag: &str) -> Lab {
    let k_ns = netns(&format!("k{tag}"));
    let p_ns = netns(&format!("p{tag}"));
    veth(
        &k_ns,
        &p_ns,
        &[&format!("{K4}/24")],
        &[
            &format!("{P1}/24"),
            &format!("{Q4}/24"),
            &format!("{R4}/24"),
            &format!("{P2}/24"),
            &format!("{P3}/24"),
        ],
    );
    let mut cfg = kr::config(KROUTE_ASN, KROUTE_ID);
    for (name, addr) in [("p1", P1), ("q", Q4), ("r", R4), ("p2", P2), ("p3", P3)] {
        cfg.peers.push(Peer {
            passive: true,
            // p1 gets a short send hold time; the others the default
            // (8 minutes), which this test never reaches.
            send_hold_time: (name == "p1").then_some(10),
            ..kr::peer(name, addr, asn_of(addr), &[V4])
        });
    }
    let kroute = Kroute::start(&k_ns, cfg);
    Lab {
        kroute,
        p_ns,
        _k_ns: k_ns,
    }
}

fn wait_established(k: &Kroute, name: &str) {
    wait_until(
        Duration::from_secs(10),
        &format!("{name} Established"),
        || k.established(name),
    );
}

#[test]
fn a_peer_that_stops_reading_costs_one_entry_per_prefix_and_gets_the_final_table() {
    let l = lab("bpq");
    let k = &l.kroute;
    let pid = k.pid().expect("kroute pid");

    let stop = Arc::new(AtomicBool::new(false));
    let r_seen = Arc::new(Mutex::new(Seen::default()));
    let r = RawPeer::establish(&l.p_ns, R4, K4, open(R4), None);
    let _r_alive = keep_alive(&r, stop.clone());
    record(r, r_seen.clone());
    // p1, p2 and p3 shrink their windows and never read (p2 until the
    // end); p2 and p3 keep their sessions alive.
    let p1 = RawPeer::establish(&l.p_ns, P1, K4, open(P1), Some(4096));
    let p3 = RawPeer::establish(&l.p_ns, P3, K4, open(P3), Some(4096));
    let _p3_alive = keep_alive(&p3, stop.clone());
    let mut q = RawPeer::establish(&l.p_ns, Q4, K4, open(Q4), None);
    let _q_alive = keep_alive(&q, stop.clone());
    for name in ["p1", "p3", "q", "r"] {
        wait_established(k, name);
    }

    let r_has = |n: u32, timeout: Duration| -> Duration {
        let start = Instant::now();
        wait_until(timeout, &format!("r has flap {n}"), || {
            Seen::is_final(&r_seen.lock().unwrap().routes, n)
        });
        start.elapsed()
    };
    q.send(&[announce_all(0)]);
    let took = r_has(0, Duration::from_secs(60));
    eprintln!("r got q's {ROUTES} routes in {took:?}");
    // p2 comes up with the full table to send: its End-of-RIB is due
    // after all of it (RFC 4724 §2).
    let p2 = RawPeer::establish(&l.p_ns, P2, K4, open(P2), Some(4096));
    let p2_stop = Arc::new(AtomicBool::new(false));
    let p2_alive = keep_alive(&p2, p2_stop.clone());
    wait_established(k, "p2");

    // Flaps: withdraw all, announce all with a new marker. r must have
    // each one before the next starts (a generous bound: a debug build on
    // a loaded 2-core machine needs 2 to 15 s per flap of 200 k changes,
    // kernel included).
    let mut baseline = 0;
    let mut slowest = Duration::ZERO;
    for n in 1..=FLAPS {
        q.send(&[withdraw_all(), announce_all(n)]);
        slowest = slowest.max(r_has(n, Duration::from_secs(60)));
        if n == BASELINE_AFTER {
            baseline = rss_kib(pid);
        }
    }
    let after = rss_kib(pid);
    eprintln!(
        "{FLAPS} flaps of {ROUTES} routes; r had each within {slowest:?}; RSS after flap {BASELINE_AFTER} {baseline} KiB, after flap {FLAPS} {after} KiB"
    );
    // A queue of what p2 and p3 were not sent grows by ~1 MB per flap
    // each (100 k withdrawals and announcements); one entry per prefix
    // does not grow.
    assert!(
        after < baseline + 8 * 1024,
        "RSS grew by {} KiB over {} flaps",
        after.saturating_sub(baseline),
        FLAPS - BASELINE_AFTER
    );

    // p1: closed by the send hold timer (RFC 9687); the NOTIFICATION
    // cannot get through its shut window, kroute says why.
    let nb = wait_until(Duration::from_secs(30), "p1 closed", || {
        match k.neighbor("p1") {
            Some(nb) if nb.state != SessionState::Established => Ok(nb),
            other => Err(format!("{other:?}")),
        }
    });
    let why = nb.last_error.unwrap_or_default();
    assert!(why.contains("send hold timer expired"), "{why}");
    drop(p1);

    // p2 reads again: what it gets ends with exactly the final table,
    // then End-of-RIB; not every flap (O(prefixes), not O(changes)).
    k.established("p2").unwrap();
    p2_stop.store(true, Ordering::Relaxed);
    let _ = p2_alive.join();
    let p2_seen = Arc::new(Mutex::new(Seen::default()));
    record(p2, p2_seen.clone());
    wait_until(Duration::from_secs(60), "p2's End-of-RIB", || {
        let s = p2_seen.lock().unwrap();
        match &s.at_end_of_rib {
            Some(_) => Ok(()),
            None => Err(format!("{} routes so far", s.routes.len())),
        }
    });
    {
        let s = p2_seen.lock().unwrap();
        let at_eor = s.at_end_of_rib.as_ref().unwrap();
        Seen::is_final(at_eor, FLAPS).expect("p2's table at its End-of-RIB");
        eprintln!(
            "p2 was announced {} prefixes for a table of {ROUTES}",
            s.announced
        );
        assert!(
            s.announced < 2 * u64::from(ROUTES),
            "p2 got {} announcements: a replay of the flaps",
            s.announced
        );
    }
    // Nothing after it changes the table.
    std::thread::sleep(Duration::from_secs(1));
    Seen::is_final(&p2_seen.lock().unwrap().routes, FLAPS)
        .expect("p2's table after its End-of-RIB");
    let nb = k.neighbor("p2").unwrap();
    assert_eq!(nb.prefixes_advertised, ROUTES as usize, "{nb:?}");
    for name in ["p2", "p3", "q", "r"] {
        k.established(name).unwrap();
    }
    assert!(!r_seen.lock().unwrap().closed);
    stop.store(true, Ordering::Relaxed);
    drop((q, p3));
}
