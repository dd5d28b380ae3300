//! The pull model (issue 12, bounded queues): with `set_pull_exports`,
//! UPDATEs wait in each peer's Adj-RIB-Out until the session pulls them.
//! A slow peer costs one entry per prefix that differs, however often it
//! changed; a fast one is never held back; nothing counts as advertised
//! before it is pulled.
mod common;

use std::collections::BTreeMap;

use common::*;
use rib::*;
use wire::{Family, Prefix};

const N: u32 = 1000;

fn prefix(i: u32) -> String {
    format!("10.{}.{}.0/24", i / 256, i % 256)
}

/// q's whole table with MED `med`.
fn table(med: u32) -> wire::Update {
    let names: Vec<String> = (0..N).map(prefix).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    update_v4(
        &refs,
        "192.0.2.1",
        wire::PathAttributes {
            med: Some(med),
            ..attrs(&[65101])
        },
    )
}

fn withdraw_table() -> wire::Update {
    let names: Vec<String> = (0..N).map(prefix).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    withdraw(&refs)
}

/// What `updates` do to a peer's view: prefix -> MED.
fn apply(view: &mut BTreeMap<Prefix, Option<u32>>, updates: &[wire::Update]) -> (usize, bool) {
    let mut announced = 0;
    let mut eor = false;
    for u in updates {
        if u.end_of_rib().is_some() {
            eor = true;
            continue;
        }
        for w in &u.withdrawn {
            view.remove(&Prefix::V4(*w));
        }
        for n in &u.nlri {
            view.insert(Prefix::V4(*n), u.attributes.med);
            announced += 1;
        }
    }
    (announced, eor)
}

fn rib() -> Rib {
    let mut rib = Rib::new(cfg());
    rib.set_pull_exports(true);
    // The MED of the source is kept towards iBGP peers.
    add_up(&mut rib, 1, ebgp("q", "192.0.2.1", 65101), "192.0.2.1");
    for (id, name, addr) in [(2, "fast", "192.0.2.2"), (3, "slow", "192.0.2.3")] {
        rib.add_peer(
            id,
            PeerConfig {
                export: policy::PolicyChain::All,
                ..ibgp(name, addr)
            },
        );
        let mut out = Outputs::default();
        rib.peer_up(id, session(addr), &mut out);
        assert!(out.updates.is_empty(), "pull model: nothing pushed");
    }
    reach(&mut rib, "192.0.2.1", 0);
    rib
}

#[test]
fn a_slow_peer_costs_one_entry_per_prefix_and_pulls_the_final_table() {
    let mut rib = rib();
    let mut fast = BTreeMap::new();
    // The fast peer's initial table is empty: End-of-RIB at once.
    let (_, eor) = apply(&mut fast, &rib.pull(2, 4096).into_updates());
    assert!(eor);
    let out = receive(&mut rib, 1, table(0));
    assert!(out.updates.is_empty());
    apply(&mut fast, &rib.pull(2, 4096).into_updates());
    assert_eq!(fast.len(), N as usize);

    for flap in 1..=100 {
        receive(&mut rib, 1, withdraw_table());
        receive(&mut rib, 1, table(flap));
        // The fast peer gets each flap in full.
        let mut got = 0;
        while rib.has_pending(2) {
            got += apply(&mut fast, &rib.pull(2, 300).into_updates()).0;
        }
        assert_eq!(got, N as usize);
        assert!(fast.values().all(|m| *m == Some(flap)));
        // The slow one never pulled: one entry per prefix.
        assert_eq!(rib.queued(3), N as usize);
        assert_eq!(rib.peer_counters(3).advertised, 0, "nothing pulled yet");
    }

    // It pulls at last, in small batches: the final table, then
    // End-of-RIB, and no flap replayed.
    let mut slow = BTreeMap::new();
    let mut announced = 0;
    let mut eor = false;
    let mut pulls = 0;
    while rib.has_pending(3) {
        let pulled = rib.pull(3, 128);
        let (n, e) = apply(&mut slow, &pulled.into_updates());
        assert!(!eor, "nothing after End-of-RIB");
        announced += n;
        eor = e;
        pulls += 1;
        assert!(pulls <= N.div_ceil(128) as usize);
    }
    assert!(eor);
    assert_eq!(announced, N as usize);
    assert_eq!(slow, fast);
    assert_eq!(rib.peer_counters(3).advertised, N as usize);
}

#[test]
fn a_route_refresh_is_pulled_and_says_when_it_is_done() {
    let mut rib = rib();
    receive(&mut rib, 1, table(7));
    while rib.has_pending(2) {
        rib.pull(2, 4096);
    }
    let mut out = Outputs::default();
    rib.route_refresh(2, Family::Ipv4Unicast, &mut out);
    assert!(out.updates.is_empty());
    let mut view = BTreeMap::new();
    let first = rib.pull(2, 600);
    assert!(first.refreshed.is_empty());
    apply(&mut view, &first.into_updates());
    let second = rib.pull(2, 600);
    assert_eq!(second.refreshed, vec![Family::Ipv4Unicast]);
    let (n, eor) = apply(&mut view, &second.clone().into_updates());
    assert!(!eor, "a refresh answer has no End-of-RIB");
    assert_eq!(view.len(), N as usize);
    assert!(n > 0);
    assert!(!rib.has_pending(2));
}

/// A small deterministic generator (xorshift64*), so the test needs no
/// dependency and every failure reproduces from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// The same random events into a RIB that pushes and one that waits to
/// be pulled (with random budgets, at random times, sometimes not for a
/// long while): once pulled to the end, the slow peer has exactly what
/// the pushed one has, and never more announcements.
#[test]
fn pulling_at_any_pace_ends_with_what_pushing_sends() {
    for seed in 1..=20u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut push = rib();
        push.set_pull_exports(false);
        let mut pull = rib();
        let mut pushed = BTreeMap::new();
        let mut pulled = BTreeMap::new();
        let (mut n_push, mut n_pull) = (0, 0);
        let mut outs = Vec::new();
        for _ in 0..2000 {
            let i = rng.below(64) as u32;
            let u = match rng.below(3) {
                0 => withdraw(&[&prefix(i)]),
                _ => update_v4(
                    &[&prefix(i)],
                    "192.0.2.1",
                    wire::PathAttributes {
                        med: Some(rng.below(4) as u32),
                        ..attrs(&[65101])
                    },
                ),
            };
            outs.push(receive(&mut push, 1, u.clone()));
            receive(&mut pull, 1, u);
            if rng.below(10) == 0 {
                for r in [&mut push, &mut pull] {
                    let mut o = Outputs::default();
                    r.route_refresh(3, Family::Ipv4Unicast, &mut o);
                    outs.push(o);
                }
            }
            if rng.below(7) == 0 {
                let budget = 1 + rng.below(20) as usize;
                n_pull += apply(&mut pulled, &pull.pull(3, budget).into_updates()).0;
            }
        }
        for o in outs {
            let mine: Vec<wire::Update> = o
                .updates
                .into_iter()
                .filter(|(id, _)| *id == 3)
                .map(|(_, u)| u)
                .collect();
            n_push += apply(&mut pushed, &mine).0;
        }
        while pull.has_pending(3) {
            n_pull += apply(&mut pulled, &pull.pull(3, 5).into_updates()).0;
        }
        assert_eq!(pulled, pushed, "seed {seed}");
        assert!(n_pull <= n_push, "seed {seed}: {n_pull} > {n_push}");
        let advertised: BTreeMap<Prefix, Option<u32>> = pull
            .routes(&RouteQuery {
                peer: Some(3),
                table: Table::Advertised,
                ..Default::default()
            })
            .into_iter()
            .map(|r| (r.prefix, r.med))
            .collect();
        assert_eq!(
            advertised, pulled,
            "seed {seed}: the Adj-RIB-Out says what was sent"
        );
    }
}
