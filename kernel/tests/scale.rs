//! Many routes in one apply; the timing run is ignored by default.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::*;
use ipnet::{IpNet, Ipv4Net};
use kernel::FibChange;

fn routes(n: u32, nhs: &[&str]) -> Vec<FibChange> {
    let mut nhs: Vec<_> = nhs.iter().map(|a| nh(a)).collect();
    nhs.sort();
    let nhs = std::sync::Arc::new(nhs);
    (0..n)
        .map(|i| {
            FibChange::new(
                IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0b00_0000 + (i << 8)), 24).unwrap()),
                nhs.clone(),
            )
        })
        .collect()
}

/// CPU time (user + system) of this process's `fib-worker` threads, from
/// /proc: on a shared machine wall time also measures the neighbours.
fn worker_cpu() -> Duration {
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut ticks = 0u64;
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() != "fib-worker" {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let after = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
        let f: Vec<&str> = after.split_whitespace().collect();
        ticks += f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
    }
    Duration::from_secs_f64(ticks as f64 / tick)
}

fn count(ns: &Ns) -> usize {
    ns.ip("route show proto 186").lines().count()
}

#[test]
fn ten_thousand_routes_in_one_apply() {
    let ns = Netns::new("tenk");
    ns.run(|ns| async move {
        let (fib, _rx) = start(cfg());
        fib.apply(routes(10_000, &["10.0.0.2"])).await;
        fib.flush().await;
        assert_eq!(ns.v4().len(), 10_000);
        assert_eq!(fib.entries(None).await.len(), 10_000);
        // Move them all to a multipath set, then withdraw them all.
        fib.apply(routes(10_000, &["10.0.0.2", "10.0.1.2"])).await;
        fib.flush().await;
        let r = ns.v4();
        assert_eq!(r.len(), 10_000);
        assert!(r.iter().all(|r| paths(r).len() == 2));
        fib.apply(routes(10_000, &[])).await;
        fib.flush().await;
        assert_eq!(count(&ns), 0);
        fib.shutdown().await;
    });
}

#[test]
fn route_changes_are_followed_again_after_a_large_write() {
    // A large write is done with the monitor out of the route groups; a
    // foreign route added afterwards must still make a next hop reachable.
    let ns = Netns::new("quiet");
    // Link-local addresses finishing DAD would make the FIB look at its
    // next hops again on their own: wait for them first.
    for _ in 0..100 {
        if ns.ip("-6 addr show tentative").trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    ns.run(|ns| async move {
        let (fib, mut rx) = start(cfg());
        fib.watch_nexthops(vec!["10.99.0.1".parse().unwrap()]);
        wait_for(&mut rx, "10.99.0.1 unreachable", |e| {
            matches!(
                e,
                kernel::FibEvent::Nexthop {
                    state: kernel::NexthopState::Unreachable(_),
                    ..
                }
            )
        })
        .await;
        fib.apply(routes(20_000, &["10.0.0.2"])).await;
        fib.flush().await;
        assert_eq!(count(&ns), 20_000);
        // A query is answered after the worker's next pass, which resolves
        // every next hop again once a large write is over: what follows
        // can only be seen through the route groups.
        fib.entries(Some("11.0.0.0/24".parse().unwrap())).await;
        ns.ip("route add 10.99.0.0/24 via 10.0.1.2");
        wait_for(&mut rx, "10.99.0.1 reachable", |e| {
            matches!(
                e,
                kernel::FibEvent::Nexthop {
                    state: kernel::NexthopState::Reachable { .. },
                    ..
                }
            )
        })
        .await;
        fib.shutdown().await;
        assert_eq!(count(&ns), 0);
    });
}

/// `cargo test --release -p kernel --test scale -- --ignored --nocapture`;
/// KROUTE_BENCH_ROUTES overrides the sizes (comma separated).
#[test]
#[ignore]
fn timing_full_table_install() {
    let sizes: Vec<u32> = std::env::var("KROUTE_BENCH_ROUTES")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    for n in sizes {
        let ns = Netns::new(&format!("bench{n}"));
        ns.run(move |ns| async move {
            let (fib, _rx) = start(cfg());
            let changes = routes(n, &["10.0.0.2"]);
            let moved = routes(n, &["10.0.1.2"]);
            let (t, c) = (Instant::now(), worker_cpu());
            fib.apply(changes).await;
            fib.flush().await;
            let install = (t.elapsed(), worker_cpu() - c);
            let (t, c) = (Instant::now(), worker_cpu());
            fib.apply(moved).await;
            fib.flush().await;
            let replace = (t.elapsed(), worker_cpu() - c);
            assert_eq!(count(&ns), n as usize);
            let t = Instant::now();
            fib.shutdown().await;
            let remove = t.elapsed();
            eprintln!(
                "{n} IPv4 routes (wall, worker cpu): install {install:?}, \
                 replace {replace:?}, remove {remove:?}"
            );
            assert_eq!(count(&ns), 0);
        });
    }
}

#[test]
fn a_route_deleted_by_hand_during_a_large_write_comes_back() {
    // The large write is done with the monitor out of the route groups, so
    // the deletion goes unheard; the comparison with the kernel's table
    // once the FIB is idle again finds it.
    let ns = Netns::new("quietdel");
    ns.run(|ns| async move {
        let (fib, _rx) = start(cfg());
        fib.apply(routes(20_000, &["10.0.0.2"])).await;
        // The sweep goes down the prefix space: the highest prefix is in
        // first, while the rest is still being written.
        let first = "11.78.31.0/24";
        let deadline = Instant::now() + Duration::from_secs(10);
        while ns
            .ip(&format!("route show {first} proto bgp"))
            .trim()
            .is_empty()
        {
            assert!(Instant::now() < deadline, "{first} never installed");
            std::thread::sleep(Duration::from_millis(1));
        }
        ns.ip(&format!("route del {first} proto bgp"));
        fib.flush().await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while ns
            .ip(&format!("route show {first} proto bgp"))
            .trim()
            .is_empty()
        {
            assert!(Instant::now() < deadline, "{first} did not come back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(count(&ns), 20_000);
        fib.shutdown().await;
        assert_eq!(count(&ns), 0);
    });
}
