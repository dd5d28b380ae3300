//! Prefix-independent failover: routes sharing an ECMP group keep
//! forwarding through it when one of its next hops fails, and the FIB's
//! cost is a few messages whatever the number of prefixes.

mod common;

use std::time::Duration;

use common::*;
use kernel::{Fib, FibChange};

/// Prefixes in each test: far more than the messages a failover may cost.
const N: u32 = 2000;

const A: &str = "10.0.0.2";
const B: &str = "10.0.1.2";

fn table(nhs: &[&str]) -> Vec<FibChange> {
    (0..N)
        .map(|i| change(&format!("10.{}.{}.0/24", 100 + i / 256, i % 256), nhs))
        .collect()
}

/// Counts the table's prefixes in the kernel by what they forward on:
/// (via veth0 and veth1, via veth1 only, anything else or missing).
fn census(ns: &Ns) -> (u32, u32, u32) {
    let routes = ns.v4();
    let (mut both, mut b_only, mut other) = (0, 0, 0);
    for i in 0..N {
        let dst = format!("10.{}.{}.0/24", 100 + i / 256, i % 256);
        match find(&routes, &dst).map(paths) {
            Some(p) if p == vec![pair(A, "veth0"), pair(B, "veth1")] => both += 1,
            Some(p) if p == vec![pair(B, "veth1")] => b_only += 1,
            _ => other += 1,
        }
    }
    (both, b_only, other)
}

/// Polls (at most 5 s) until every prefix forwards as `want` says.
async fn wait_census(ns: &Ns, what: &str, want: (u32, u32, u32)) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let c = census(ns);
        if c == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: (both, b only, other) = {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Lets the FIB notice and act on a kernel change, then waits until it
/// has written everything.
async fn settle(fib: &Fib) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    fib.flush().await;
}

/// The table's group is re-pointed (or the kernel shrank it) and the RIB's
/// changes that follow (best set = the survivor) are taken without a write
/// per prefix; when the failed next hop is back, the table returns to both.
async fn fail_and_recover(ns: Ns, fib: Fib, fail: &str, restore: &str) {
    fib.apply(table(&[A, B])).await;
    fib.flush().await;
    wait_census(&ns, "the table via both", (N, 0, 0)).await;
    let before = fib.messages_written();

    ns.ip(fail);
    wait_census(&ns, "every prefix via the survivor", (0, N, 0)).await;
    settle(&fib).await;
    // The RIB then selects the survivor alone for every prefix.
    fib.apply(table(&[B])).await;
    settle(&fib).await;
    let cost = fib.messages_written() - before;
    assert_eq!(census(&ns), (0, N, 0));
    assert!(
        cost <= 8,
        "failover of {N} prefixes cost {cost} netlink messages"
    );
    let entries = fib.entries(None).await;
    assert!(entries.iter().all(
        |e| e.status == "installed" && e.kernel_next_hops == vec![format!("via {B} dev veth1")]
    ));

    ns.ip(restore);
    settle(&fib).await;
    fib.apply(table(&[A, B])).await;
    fib.flush().await;
    wait_census(&ns, "the table via both again", (N, 0, 0)).await;
    // The shrunk group went with its last route: A, B and one group.
    settle(&fib).await;
    assert_eq!(ns.objects().len(), 3, "{:?}", ns.objects());
    fib.shutdown().await;
    assert!(ns.objects().is_empty(), "{:?}", ns.objects());
}

#[test]
fn carrier_loss_keeps_the_table_on_its_shrunk_group() {
    let ns = Netns::new("pic-carrier");
    ns.run(|ns| async move {
        let (fib, _rx) = start(cfg());
        // The kernel itself drops the member on carrier loss; the FIB
        // must neither rewrite the routes nor lose the group.
        fail_and_recover(ns, fib, "link set veth0p down", "link set veth0p up").await;
    });
}

#[test]
fn an_unreachable_next_hop_is_taken_out_of_the_group_with_one_message() {
    let ns = Netns::new("pic-unreach");
    ns.run(|ns| async move {
        let (fib, _rx) = start(cfg());
        // No carrier change: A becomes unreachable (its subnet goes) and
        // the kernel keeps the objects; the FIB re-points the group.
        fail_and_recover(
            ns,
            fib,
            "addr del 10.0.0.1/24 dev veth0",
            "addr add 10.0.0.1/24 dev veth0",
        )
        .await;
    });
}

/// The kernel's routes of ours (`ip -j route`, counted).
fn kernel_count(ns: &Ns) -> usize {
    ns.v4().len()
}

/// Figures for BENCHMARKS.md: `KROUTE_FAILOVER_N` (default 100000) ECMP
/// prefixes, one next hop loses carrier; prints the messages the FIB wrote
/// and how long it took to have nothing left to write. Run with
/// `cargo test --release -p kernel --test failover -- --ignored --nocapture`.
#[test]
#[ignore]
fn failover_at_scale() {
    let n: u32 = std::env::var("KROUTE_FAILOVER_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let ns = Netns::new("pic-scale");
    ns.run(move |ns| async move {
        let (fib, _rx) = start(cfg());
        let changes = |nhs: &[&str]| -> Vec<FibChange> {
            (0..n)
                .map(|i| {
                    let mut c = change("10.0.0.0/24", nhs);
                    c.prefix = ipnet::IpNet::V4(
                        ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(0x0b00_0000 + (i << 8)), 24)
                            .unwrap(),
                    );
                    c
                })
                .collect()
        };
        for chunk in changes(&[A, B]).chunks(16 * 1024) {
            fib.apply(chunk.to_vec()).await;
        }
        fib.flush().await;
        assert_eq!(kernel_count(&ns), n as usize);
        let before = fib.messages_written();
        let t0 = std::time::Instant::now();
        ns.ip("link set veth0p down");
        // The FIB notices (debounced), re-points, finds every route right.
        while fib.messages_written() == before && t0.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let noticed = t0.elapsed();
        fib.flush().await;
        let fib_done = t0.elapsed();
        let fo = fib.messages_written() - before;
        // What the RIB sends next: the survivor alone, every prefix.
        let t1 = std::time::Instant::now();
        for chunk in changes(&[B]).chunks(16 * 1024) {
            fib.apply(chunk.to_vec()).await;
        }
        fib.flush().await;
        let retag = t1.elapsed();
        let total = fib.messages_written() - before;
        let routes = ns.v4();
        let via_b = routes
            .iter()
            .filter(|r| paths(r) == vec![pair(B, "veth1")])
            .count();
        println!(
            "failover of {n} ECMP prefixes: {fo} messages, first after {noticed:?}, FIB idle after {fib_done:?}; the RIB's {n} changes after: {} more messages in {retag:?}; {via_b} routes via the survivor",
            total - fo,
        );
        assert_eq!(via_b, n as usize);
        fib.shutdown().await;
    });
}

/// A best path with a backup (no ECMP): when the best next hop loses
/// carrier the kernel deletes the routes through it (a group goes with its
/// last member), and the FIB writes each prefix via the backup at once,
/// without waiting for the RIB; the RIB's changes that follow (best = the
/// old backup) cost no write.
#[test]
fn a_lost_best_next_hop_fails_over_to_the_backup_without_the_rib() {
    let ns = Netns::new("pic-backup");
    ns.run(|ns| async move {
        let (fib, _rx) = start(cfg());
        let with_backup: Vec<FibChange> = table(&[A])
            .into_iter()
            .map(|c| FibChange {
                backup: set(&[B]),
                ..c
            })
            .collect();
        fib.apply(with_backup.clone()).await;
        fib.flush().await;
        let routes = ns.v4();
        assert_eq!(routes.len(), N as usize);
        assert!(routes.iter().all(|r| paths(r) == vec![pair(A, "veth0")]));

        ns.ip("link set veth0p down");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let r = ns.v4();
            let via_b = r
                .iter()
                .filter(|r| paths(r) == vec![pair(B, "veth1")])
                .count();
            if via_b == N as usize {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{via_b} of {N} via the backup"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let e = fib.entries(None).await;
        assert!(e.iter().all(|e| e.status == "installed"
            && e.kernel_next_hops == vec![format!("via {B} dev veth1")]
            && e.detail.as_deref().is_some_and(|d| d.contains("backup"))));
        settle(&fib).await;
        let before = fib.messages_written();
        fib.apply(table(&[B])).await;
        settle(&fib).await;
        assert_eq!(
            fib.messages_written(),
            before,
            "the RIB's re-selection wrote"
        );

        // The best next hop is back and the RIB selects it again.
        ns.ip("link set veth0p up");
        settle(&fib).await;
        fib.apply(with_backup).await;
        fib.flush().await;
        let r = ns.v4();
        assert!(
            r.iter().all(|r| paths(r) == vec![pair(A, "veth0")]),
            "{r:?}"
        );
        fib.shutdown().await;
    });
}

/// Our routes in the kernel at `metric` forwarding via `gw` on `dev`.
fn count_at(routes: &[serde_json::Value], metric: u64, gw: &str, dev: &str) -> usize {
    routes
        .iter()
        .filter(|r| r["metric"].as_u64() == Some(metric) && paths(r) == vec![pair(gw, dev)])
        .count()
}

/// What the kernel would forward a packet to `addr` on: `ip route get`.
fn route_get(ns: &Ns, addr: &str) -> String {
    ns.ip(&format!("route get {addr}"))
}

/// Polls (at most 5 s) until `ok` holds for our IPv4 routes.
async fn wait_routes(ns: &Ns, what: &str, ok: impl Fn(&[serde_json::Value]) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = ns.v4();
        if ok(&r) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {} routes",
            r.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `kernel.backupRoutes`: every prefix with a backup also has a standby
/// route via it at the next metric. When the best next hop loses carrier
/// the kernel removes the primaries with their object and forwards on the
/// standbys by itself: the FIB writes nothing per prefix, neither then nor
/// for the RIB's changes that follow (best = the old backup), and `show
/// fib` says the standby forwards. When the best path is back the
/// primaries are written again, the standbys stay.
#[test]
fn with_backup_routes_a_lost_best_next_hop_costs_no_write_per_prefix() {
    let ns = Netns::new("pic-standby");
    ns.run(|ns| async move {
        let (fib, _rx) = start(kernel::FibConfig {
            backup_routes: true,
            ..cfg()
        });
        let with_backup: Vec<FibChange> = table(&[A])
            .into_iter()
            .map(|c| FibChange {
                backup: set(&[B]),
                ..c
            })
            .collect();
        let n = N as usize;
        let both_ready = |r: &[serde_json::Value]| {
            count_at(r, 20, A, "veth0") == n && count_at(r, 21, B, "veth1") == n
        };
        fib.apply(with_backup.clone()).await;
        fib.flush().await;
        wait_routes(&ns, "primaries via A, standbys via B", both_ready).await;
        assert!(route_get(&ns, "10.100.0.1").contains(&format!("via {A} dev veth0")));
        let e = fib.entries(None).await;
        assert!(e.iter().all(|e| e.status == "installed"
            && e.detail
                .as_deref()
                .is_some_and(|d| d.contains("pre-installed"))));
        settle(&fib).await;
        let before = fib.messages_written();

        ns.ip("link set veth0p down");
        wait_routes(&ns, "every prefix via the standby alone", |r| {
            r.len() == n && count_at(r, 21, B, "veth1") == n
        })
        .await;
        assert!(route_get(&ns, "10.100.0.1").contains(&format!("via {B} dev veth1")));
        settle(&fib).await;
        let e = fib.entries(None).await;
        assert!(
            e.iter().all(|e| e.status == "installed"
                && e.kernel_next_hops == vec![format!("via {B} dev veth1")]
                && e.detail.as_deref().is_some_and(|d| d.contains("standby"))),
            "{:?}",
            e.first()
        );
        // The RIB selects the old backup as best, without a backup.
        fib.apply(table(&[B])).await;
        settle(&fib).await;
        let cost = fib.messages_written() - before;
        println!("failover of {N} prefixes onto their standbys: {cost} netlink messages");
        assert!(
            cost <= 4,
            "failover of {N} prefixes cost {cost} netlink messages"
        );
        assert_eq!(ns.v4().len(), n);

        // The best path is back, and the RIB selects it again.
        ns.ip("link set veth0p up");
        settle(&fib).await;
        fib.apply(with_backup).await;
        fib.flush().await;
        wait_routes(&ns, "primaries via A again", both_ready).await;
        assert!(route_get(&ns, "10.100.0.1").contains(&format!("via {A} dev veth0")));
        fib.shutdown().await;
        assert!(ns.v4().is_empty(), "{:?}", ns.v4().first());
        assert!(ns.objects().is_empty(), "{:?}", ns.objects());
    });
}

/// The best path's session goes down with its link up (hold timer, BFD,
/// a Cease): the RIB says so (`next_hops_down`) before its per-prefix
/// changes. With backup routes the object of the lost next hop is deleted
/// (the kernel drops the primaries, the standbys forward); on an ECMP
/// group the group is re-pointed at the survivor. Either way a handful of
/// messages, and the RIB's changes after it are re-tags; when the session
/// is back (a change names the next hop again) the routes return to it.
#[test]
fn a_lost_session_with_the_link_up_costs_a_message_per_object() {
    let ns = Netns::new("pic-session");
    ns.run(|ns| async move {
        let (fib, _rx) = start(kernel::FibConfig {
            backup_routes: true,
            ..cfg()
        });
        let with_backup: Vec<FibChange> = table(&[A])
            .into_iter()
            .map(|c| FibChange {
                backup: set(&[B]),
                ..c
            })
            .collect();
        let n = N as usize;
        let both_ready = |r: &[serde_json::Value]| {
            count_at(r, 20, A, "veth0") == n && count_at(r, 21, B, "veth1") == n
        };
        fib.apply(with_backup.clone()).await;
        fib.flush().await;
        wait_routes(&ns, "primaries via A, standbys via B", both_ready).await;
        settle(&fib).await;
        let before = fib.messages_written();

        let a: std::net::IpAddr = A.parse().unwrap();
        fib.next_hops_down(vec![a]);
        fib.apply(table(&[B])).await;
        // The RIB has handed over its changes: A counts again, and no
        // route wants it.
        fib.next_hops_settled(vec![a]);
        settle(&fib).await;
        let cost = fib.messages_written() - before;
        println!("session loss of {N} prefixes' best path: {cost} netlink messages");
        assert!(
            cost <= 4,
            "session loss of {N} prefixes cost {cost} messages"
        );
        let r = ns.v4();
        assert_eq!((r.len(), count_at(&r, 21, B, "veth1")), (n, n));
        assert!(route_get(&ns, "10.100.0.1").contains(&format!("via {B} dev veth1")));

        // Back: the RIB names A again.
        fib.apply(with_backup).await;
        fib.flush().await;
        wait_routes(&ns, "primaries via A again", both_ready).await;
        fib.shutdown().await;
        assert!(ns.v4().is_empty());
        assert!(ns.objects().is_empty(), "{:?}", ns.objects());
    });
}

#[test]
fn a_lost_session_shrinks_an_ecmp_group_with_one_message() {
    let ns = Netns::new("pic-sess-ecmp");
    ns.run(|ns| async move {
        let (fib, _rx) = start(cfg());
        fib.apply(table(&[A, B])).await;
        fib.flush().await;
        wait_census(&ns, "the table via both", (N, 0, 0)).await;
        settle(&fib).await;
        let before = fib.messages_written();
        fib.next_hops_down(vec![A.parse().unwrap()]);
        wait_census(&ns, "every prefix via the survivor", (0, N, 0)).await;
        fib.apply(table(&[B])).await;
        settle(&fib).await;
        let cost = fib.messages_written() - before;
        assert!(cost <= 2, "session loss on ECMP cost {cost} messages");
        fib.apply(table(&[A, B])).await;
        fib.flush().await;
        wait_census(&ns, "the table via both again", (N, 0, 0)).await;
        fib.shutdown().await;
    });
}

/// Standbys are ours like the primaries: one deleted by someone else is
/// put back, one lost while notifications were (deafened, then a resync)
/// too; a restart with keepOnExit adopts the previous run's standbys
/// (the initial sync removes none of them) and shutdown removes both.
#[test]
fn standbys_are_repaired_resynced_and_adopted_after_a_restart() {
    let ns = Netns::new("pic-stb-life");
    ns.run(|ns| async move {
        let backup_cfg = kernel::FibConfig {
            backup_routes: true,
            keep_on_exit: true,
            ..cfg()
        };
        let changes: Vec<FibChange> = (0..4)
            .map(|i| change_with_backup(&format!("10.200.{i}.0/24"), &[A], &[B]))
            .collect();
        let all = |r: &[serde_json::Value]| {
            count_at(r, 20, A, "veth0") == 4 && count_at(r, 21, B, "veth1") == 4
        };
        let (fib, _rx) = start(backup_cfg.clone());
        fib.apply(changes.clone()).await;
        fib.flush().await;
        wait_routes(&ns, "primaries and standbys", all).await;

        ns.ip("route del 10.200.1.0/24 metric 21");
        wait_routes(&ns, "the deleted standby put back", all).await;

        fib.deafen_for_tests(true);
        settle(&fib).await;
        ns.ip("route del 10.200.2.0/24 metric 21");
        fib.deafen_for_tests(false);
        fib.resync();
        wait_routes(&ns, "the standby lost unheard put back", all).await;

        // Restart: the next run adopts both kinds of routes.
        fib.shutdown().await;
        assert!(all(&ns.v4()), "keepOnExit keeps both");
        let (fib, _rx) = start(backup_cfg);
        assert_eq!(fib.previous_run_routes(), 8);
        fib.apply(changes).await;
        fib.flush().await;
        fib.initial_sync_done();
        settle(&fib).await;
        let r = ns.v4();
        assert!(all(&r) && r.len() == 8, "{r:?}");
        drop(fib);
        let (fib, _rx) = start(kernel::FibConfig {
            backup_routes: true,
            ..cfg()
        });
        fib.initial_sync_done();
        settle(&fib).await;
        fib.shutdown().await;
        assert!(ns.v4().is_empty(), "{:?}", ns.v4());
        assert!(ns.objects().is_empty(), "{:?}", ns.objects());
    });
}

const A6: &str = "2001:db8::2";
const B6: &str = "2001:db8:1::2";

/// IPv6 with backup routes, carrier loss of the best next hop. Unlike
/// IPv4's, the kernel reports each IPv6 route it removes with the lost
/// nexthop object (RTM_DELROUTE, port id 0); those are the object's
/// consequence, not someone deleting our routes, so the FIB must not
/// write the primaries back (that was twice the prefixes in messages).
#[test]
fn ipv6_carrier_loss_onto_standbys_costs_no_write_per_prefix() {
    let ns = Netns::new("pic-v6-stb");
    ns.run(|ns| async move {
        let (fib, _rx) = start(kernel::FibConfig {
            backup_routes: true,
            ..cfg()
        });
        let prefix = |i: u32| format!("2001:db8:{:x}:{:x}::/64", 0x100 + i / 256, i % 256);
        let with_backup: Vec<FibChange> = (0..N)
            .map(|i| change_with_backup(&prefix(i), &[A6], &[B6]))
            .collect();
        let only_b: Vec<FibChange> = (0..N).map(|i| change(&prefix(i), &[B6])).collect();
        let n = N as usize;
        let count6 = |r: &[serde_json::Value], metric: u64, gw: &str, dev: &str| {
            r.iter()
                .filter(|r| r["metric"].as_u64() == Some(metric) && paths(r) == vec![pair(gw, dev)])
                .count()
        };
        fib.apply(with_backup).await;
        fib.flush().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let r = ns.v6();
            if count6(&r, 20, A6, "veth0") == n && count6(&r, 21, B6, "veth1") == n {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "not installed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        settle(&fib).await;
        let before = fib.messages_written();

        ns.ip("link set veth0p down");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let r = ns.v6();
            if r.len() == n && count6(&r, 21, B6, "veth1") == n {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} routes, {} standbys via B",
                r.len(),
                count6(&r, 21, B6, "veth1")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        settle(&fib).await;
        fib.apply(only_b).await;
        settle(&fib).await;
        let cost = fib.messages_written() - before;
        println!("IPv6 failover of {N} prefixes onto their standbys: {cost} netlink messages");
        assert!(
            cost <= 4,
            "IPv6 failover of {N} prefixes cost {cost} netlink messages"
        );
        let r = ns.v6();
        assert_eq!((r.len(), count6(&r, 21, B6, "veth1")), (n, n));
        assert!(route_get(&ns, "2001:db8:100::1").contains(&format!("via {B6} dev veth1")));
        fib.shutdown().await;
        assert!(ns.v6().is_empty(), "{:?}", ns.v6().first());
        assert!(ns.objects().is_empty(), "{:?}", ns.objects());
    });
}
