//! Burst coalescing of update-group output (issue 17) against the running
//! daemon: kroute reflects for 20 route-reflector clients (raw BGP peers,
//! one update group) and one more client, the source, which announces 200
//! prefixes one UPDATE at a time, about a millisecond apart (a burst, as
//! when many nodes come up at once).
//!
//! What a user sees: every client gets every prefix, in far fewer UPDATEs
//! than there were changes (the group's changes go out in rounds, packed);
//! and a lone change after the burst (a withdrawal) still reaches every
//! client (it is not held for a round that no later change opens).
//! kroute's peers are passive. Needs root.

mod common;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::kroute::{self as kr, Kroute};
use common::raw_peer::{open_v4, RawPeer};
use common::{netns, veth, wait_until};
use ipnet::Ipv4Net;
use kroute::config::Peer;
use labkit::Netns;
use wire::{AsPath, Family, Message, Origin, PathAttributes, Update};

const ASN: u32 = 65010;
const K4: &str = "10.7.0.1";
const SOURCE: &str = "10.7.0.2";
const CLIENTS: u8 = 20;
const CHANGES: u32 = 200;

fn client(i: u8) -> String {
    format!("10.7.0.{}", 10 + i)
}

fn prefix(i: u32) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(0x0a08_0000 + (i << 8)), 24).unwrap()
}

/// The source's route for `prefix(i)`: the same attributes every time, so
/// changes that go out together pack into one UPDATE.
fn announce(i: u32) -> Message {
    Message::Update(Update {
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: AsPath::from_sequence(vec![]),
            next_hop: Some(SOURCE.parse().unwrap()),
            local_pref: Some(100),
            ..Default::default()
        },
        nlri: vec![prefix(i)],
        ..Default::default()
    })
}

/// What a client was sent: UPDATEs (End-of-RIB not counted) and the
/// prefixes it holds.
#[derive(Default)]
struct Seen {
    updates: usize,
    held: HashSet<Ipv4Net>,
    end_of_rib: bool,
}

fn record(mut p: RawPeer, seen: Arc<Mutex<Seen>>) {
    p.s.set_read_timeout(None).unwrap();
    std::thread::spawn(move || {
        while let Some(m) = p.recv() {
            let Message::Update(u) = m else { continue };
            let mut s = seen.lock().unwrap();
            if u.end_of_rib() == Some(Family::Ipv4Unicast) {
                s.end_of_rib = true;
                continue;
            }
            s.updates += 1;
            for w in &u.withdrawn {
                s.held.remove(w);
            }
            s.held.extend(u.nlri.iter().copied());
        }
    });
}

/// Dropped in field order: kroute first, then the namespaces.
struct Lab {
    _kroute: Kroute,
    p_ns: Netns,
    _k_ns: Netns,
}

fn lab() -> Lab {
    let k_ns = netns("kcoal");
    let p_ns = netns("pcoal");
    let mut addrs = vec![format!("{SOURCE}/24")];
    addrs.extend((0..CLIENTS).map(|i| format!("{}/24", client(i))));
    let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    veth(&k_ns, &p_ns, &[&format!("{K4}/24")], &addrs);
    let mut cfg = kr::config(ASN, K4);
    let names = std::iter::once(("source".to_string(), SOURCE.to_string()))
        .chain((0..CLIENTS).map(|i| (format!("c{i}"), client(i))));
    for (name, addr) in names {
        cfg.peers.push(Peer {
            passive: true,
            route_reflector_client: true,
            ..kr::peer(&name, &addr, ASN, &["ipv4-unicast"])
        });
    }
    let kroute = Kroute::start(&k_ns, cfg);
    Lab {
        _kroute: kroute,
        p_ns,
        _k_ns: k_ns,
    }
}

#[test]
fn a_burst_of_changes_reaches_every_client_in_fewer_updates_and_a_lone_change_after_it_too() {
    let l = lab();
    let seen: Vec<Arc<Mutex<Seen>>> = (0..CLIENTS)
        .map(|i| {
            let s = Arc::new(Mutex::new(Seen::default()));
            let p = RawPeer::establish(&l.p_ns, &client(i), K4, open_v4(ASN, &client(i)), None);
            record(p, s.clone());
            s
        })
        .collect();
    let mut source = RawPeer::establish(&l.p_ns, SOURCE, K4, open_v4(ASN, SOURCE), None);
    source.discard_incoming();
    // Each change in a segment of its own, as it is sent (Nagle would
    // gather them while an ACK is outstanding).
    source.s.set_nodelay(true).unwrap();
    wait_until(
        Duration::from_secs(10),
        "End-of-RIB at every client",
        || match seen.iter().position(|s| !s.lock().unwrap().end_of_rib) {
            Some(i) => Err(format!("c{i} has no End-of-RIB yet")),
            None => Ok(()),
        },
    );

    for i in 0..CHANGES {
        source.send(&[announce(i)]);
        std::thread::sleep(Duration::from_millis(1));
    }
    let every_client_holds = |want: usize| {
        for (i, s) in seen.iter().enumerate() {
            let held = s.lock().unwrap().held.len();
            if held != want {
                return Err(format!("c{i} holds {held} of {want} prefixes"));
            }
        }
        Ok(())
    };
    wait_until(
        Duration::from_secs(10),
        "every prefix at every client",
        || every_client_holds(CHANGES as usize),
    );
    for (i, s) in seen.iter().enumerate() {
        let updates = s.lock().unwrap().updates;
        assert!(
            updates <= CHANGES as usize / 2,
            "c{i} got {updates} UPDATEs for {CHANGES} changes"
        );
    }

    // After a quiet spell, one withdrawal on its own: it goes out at once.
    std::thread::sleep(Duration::from_millis(200));
    source.send(&[Message::Update(Update {
        withdrawn: vec![prefix(0)],
        ..Default::default()
    })]);
    wait_until(
        Duration::from_secs(10),
        "the withdrawal at every client",
        || every_client_holds(CHANGES as usize - 1),
    );
}
