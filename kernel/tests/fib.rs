//! The FIB against the real kernel, each test in its own network namespace.

mod common;

use common::*;
use kernel::{FibConfig, FibEvent, NexthopState};

fn is_nexthop(e: &FibEvent, addr: &str, pred: impl Fn(&NexthopState) -> bool) -> bool {
    matches!(e, FibEvent::Nexthop { address, state } if address.to_string() == addr && pred(state))
}

fn reachable(s: &NexthopState) -> bool {
    matches!(s, NexthopState::Reachable { .. })
}

fn unreachable(s: &NexthopState) -> bool {
    matches!(s, NexthopState::Unreachable(_))
}

#[test]
fn ipv4_single_next_hop() {
    let ns = Netns::new("v4single");
    ns.run(|ns| async move {
        let (fib, _rx) = start(cfg());
        fib.apply(vec![change("10.10.0.0/24", &["10.0.0.2"])]).await;
        fib.flush().await;
        let r = ns.v4();
        let route = find(&r, "10.10.0.0/24").expect("route installed");
        assert_eq!(paths(route), vec![pair("10.0.0.2", "veth0")]);
        assert_eq!(route["metric"], 20);
        let e = fib.entries(Some("10.10.0.0/24".parse().unwrap())).await;
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].status, "installed");
        assert_eq!(e[0].kernel_next_hops, vec!["via 10.0.0.2 dev veth0"]);
        fib.shutdown().await;
    });
}

#[test]
fn ipv6_single_next_hop() {
    let ns = Netns::new("v6single");
    ns.run(|ns| async move {
        let (fib, _rx) = start(cfg());
        fib.apply(vec![change("2001:db8:10::/48", &["2001:db8::2"])])
            .await;
        fib.flush().await;
        let r = ns.v6();
        let route = find(&r, "2001:db8:10::/48").expect("route installed");
        assert_eq!(paths(route), vec![pair("2001:db8::2", "veth0")]);
        assert_eq!(route["metric"], 20);
        fib.shutdown().await;
    });
}

#[test]
fn multipath_ipv4_and_ipv6() {
    let ns = Netns::new("multipath");
    ns.run(|ns| async move {
        let (fib, _rx) = start(cfg());
        fib.apply(vec![
            change("10.20.0.0/24", &["10.0.0.2", "10.0.1.2"]),
            change("2001:db8:20::/48", &["2001:db8::2", "2001:db8:1::2"]),
        ])
        .await;
        fib.flush().await;
        let r = ns.v4();
        let route = find(&r, "10.20.0.0/24").expect("v4 multipath installed");
        assert_eq!(
            paths(route),
            vec![pair("10.0.0.2", "veth0"), pair("10.0.1.2", "veth1")]
        );
        let r = ns.v6();
        let route = find(&r, "2001:db8:20::/48").expect("v6 multipath installed");
        assert_eq!(
            paths(route),
            vec![pair("2001:db8:1::2", "veth1"), pair("2001:db8::2", "veth0")]
        );
        let e = fib.entries(Some("10.20.0.0/24".parse().unwrap())).await;
        assert_eq!(e[0].kernel_next_hops.len(), 2);
        // Back to one path, then withdrawn: both families.
        fib.apply(vec![
            change("10.20.0.0/24", &["10.0.1.2"]),
            change("2001:db8:20::/48", &["2001:db8::2"]),
        ])
        .await;
        fib.flush().await;
        assert_eq!(
            paths(find(&ns.v4(), "10.20.0.0/24").unwrap()),
            vec![pair("10.0.1.2", "veth1")]
        );
        assert_eq!(
            paths(find(&ns.v6(), "2001:db8:20::/48").unwrap()),
            vec![pair("2001:db8::2", "veth0")]
        );
        fib.apply(vec![
            change("10.20.0.0/24", &["10.0.0.2", "10.0.1.2"]),
            change("2001:db8:20::/48", &["2001:db8::2", "2001:db8:1::2"]),
        ])
        .await;
        fib.flush().await;
        fib.apply(vec![
            change("10.20.0.0/24", &[]),
            change("2001:db8:20::/48", &[]),
        ])
        .await;
        fib.flush().await;
        assert!(ns.v4().is_empty() && ns.v6().is_empty());
        fib.shutdown().await;
    });
}

#[test]
fn removal() {
    let ns = Netns::new("removal");
    ns.run(|ns| async move {
        let (fib, _rx) = start(cfg());
        fib.apply(vec![
            change("10.30.0.0/24", &["10.0.0.2"]),
            change("10.31.0.0/24", &["10.0.0.2"]),
            change("2001:db8:30::/48", &["2001:db8::2"]),
        ])
        .await;
        fib.flush().await;
        assert_eq!(ns.v4().len(), 2);
        fib.apply(vec![
            change("10.30.0.0/24", &[]),
            change("2001:db8:30::/48", &[]),
        ])
        .await;
        fib.flush().await;
        let r = ns.v4();
        assert_eq!(r.len(), 1);
        assert!(find(&r, "10.31.0.0/24").is_some());
        assert!(ns.v6().is_empty());
        assert!(fib
            .entries(Some("10.30.0.0/24".parse().unwrap()))
            .await
            .is_empty());
        fib.shutdown().await;
    });
}

#[test]
fn replace_changes_next_hop_in_place() {
    let ns = Netns::new("replace");
    ns.run(|ns| async move {
        let (fib, _rx) = start(cfg());
        fib.apply(vec![change("10.40.0.0/24", &["10.0.0.2"])]).await;
        fib.flush().await;
        // Several changes in one go: the last one wins.
        fib.apply(vec![change("10.40.0.0/24", &["10.0.0.3"])]).await;
        fib.apply(vec![change("10.40.0.0/24", &["10.0.1.2"])]).await;
        fib.flush().await;
        let r = ns.v4();
        assert_eq!(r.len(), 1, "replaced, not added: {r:?}");
        assert_eq!(paths(&r[0]), vec![pair("10.0.1.2", "veth1")]);
        fib.shutdown().await;
    });
}

#[test]
fn unresolved_next_hop_then_reachable() {
    let ns = Netns::new("unresolved");
    ns.run(|ns| async move {
        let (fib, mut rx) = start(cfg());
        fib.watch_nexthops(vec![
            "10.50.0.1".parse().unwrap(),
            "10.70.0.5".parse().unwrap(),
        ]);
        let e = wait_for(&mut rx, "10.50.0.1 unreachable", |e| {
            is_nexthop(e, "10.50.0.1", unreachable)
        })
        .await;
        assert_eq!(
            e,
            FibEvent::Nexthop {
                address: "10.50.0.1".parse().unwrap(),
                state: NexthopState::Unreachable("Network is unreachable (ENETUNREACH)".into())
            }
        );
        fib.apply(vec![
            change("10.60.0.0/24", &["10.50.0.1"]),
            change("10.61.0.0/24", &["10.70.0.5"]),
        ])
        .await;
        fib.flush().await;
        assert!(ns.v4().is_empty());
        let e = fib.entries(Some("10.60.0.0/24".parse().unwrap())).await;
        assert_eq!(e[0].status, "next hop unresolved");
        let why = e[0].detail.clone().unwrap();
        assert!(
            why.contains("10.50.0.1") && why.contains("ENETUNREACH"),
            "{why}"
        );

        // A route to the next hop appears: recursive resolution.
        ns.ip("route add 10.50.0.0/24 via 10.0.0.2");
        wait_for(&mut rx, "10.50.0.1 reachable", |e| {
            is_nexthop(e, "10.50.0.1", reachable)
        })
        .await;
        fib.flush().await;
        let r = ns.v4();
        assert_eq!(
            paths(find(&r, "10.60.0.0/24").expect("installed")),
            vec![pair("10.0.0.2", "veth0")]
        );

        // An address makes the next hop directly connected.
        ns.ip("addr add 10.70.0.1/24 dev veth1");
        wait_for(&mut rx, "10.70.0.5 reachable", |e| {
            is_nexthop(e, "10.70.0.5", reachable)
        })
        .await;
        fib.flush().await;
        let r = ns.v4();
        assert_eq!(
            paths(find(&r, "10.61.0.0/24").expect("installed")),
            vec![pair("10.70.0.5", "veth1")]
        );
        assert_eq!(
            fib.entries(None)
                .await
                .iter()
                .filter(|e| e.status == "installed")
                .count(),
            2
        );

        // And away again.
        ns.ip("route del 10.50.0.0/24");
        wait_for(&mut rx, "10.50.0.1 unreachable again", |e| {
            is_nexthop(e, "10.50.0.1", unreachable)
        })
        .await;
        fib.flush().await;
        assert!(find(&ns.v4(), "10.60.0.0/24").is_none());
        fib.shutdown().await;
    });
}

#[test]
fn link_down_removes_routes_and_up_restores_them() {
    let ns = Netns::new("linkdown");
    ns.run(|ns| async move {
        let (fib, mut rx) = start(cfg());
        fib.watch_nexthops(vec![
            "10.0.0.2".parse().unwrap(),
            "10.0.1.2".parse().unwrap(),
        ]);
        wait_for(&mut rx, "10.0.0.2 reachable", |e| {
            is_nexthop(e, "10.0.0.2", reachable)
        })
        .await;
        fib.apply(vec![
            change("10.80.0.0/24", &["10.0.0.2"]),
            change("10.81.0.0/24", &["10.0.1.2"]),
            change("10.82.0.0/24", &["10.0.0.2", "10.0.1.2"]),
        ])
        .await;
        fib.flush().await;
        assert_eq!(ns.v4().len(), 3);

        ns.ip("link set veth0 down");
        let e = wait_for(&mut rx, "10.0.0.2 unreachable", |e| {
            is_nexthop(e, "10.0.0.2", |_| true)
        })
        .await;
        assert!(
            matches!(
                e,
                FibEvent::Nexthop {
                    state: NexthopState::Unreachable(_),
                    ..
                }
            ),
            "{e:?}"
        );
        fib.flush().await;
        let r = ns.v4();
        assert!(find(&r, "10.80.0.0/24").is_none(), "{r:?}");
        assert_eq!(
            paths(find(&r, "10.81.0.0/24").unwrap()),
            vec![pair("10.0.1.2", "veth1")]
        );
        assert_eq!(
            paths(find(&r, "10.82.0.0/24").unwrap()),
            vec![pair("10.0.1.2", "veth1")]
        );
        let e = fib.entries(Some("10.80.0.0/24".parse().unwrap())).await;
        assert_eq!(e[0].status, "next hop unresolved");

        ns.ip("link set veth0 up");
        wait_for(&mut rx, "10.0.0.2 reachable again", |e| {
            is_nexthop(e, "10.0.0.2", reachable)
        })
        .await;
        fib.flush().await;
        let r = ns.v4();
        assert_eq!(
            paths(find(&r, "10.80.0.0/24").expect("back")),
            vec![pair("10.0.0.2", "veth0")]
        );
        assert_eq!(
            paths(find(&r, "10.82.0.0/24").unwrap()),
            vec![pair("10.0.0.2", "veth0"), pair("10.0.1.2", "veth1")]
        );
        fib.shutdown().await;
    });
}

#[test]
fn previous_run_routes_survive_until_initial_sync() {
    let ns = Netns::new("stale");
    ns.ip("route add 10.90.0.0/24 via 10.0.0.2 proto 186 metric 20");
    ns.ip("route add 10.91.0.0/24 via 10.0.0.2 proto 186 metric 20");
    ns.ip("route add 10.92.0.0/24 via 10.0.0.2 proto 186 metric 30");
    ns.ip("-6 route add 2001:db8:90::/48 via 2001:db8::2 proto 186 metric 20");
    ns.ip("route add 10.93.0.0/24 via 10.0.0.2 proto static");
    // A previous run's route through its nexthop object, and someone
    // else's object.
    ns.ip("nexthop add id 77 via 10.0.0.2 dev veth0 proto 186");
    ns.ip("route add 10.94.0.0/24 nhid 77 proto 186 metric 20");
    ns.ip("nexthop add id 78 via 10.0.1.2 dev veth1 proto static");
    ns.run(|ns| async move {
        let (fib, _rx) = start(cfg());
        fib.apply(vec![change("10.90.0.0/24", &["10.0.1.2"])]).await;
        fib.flush().await;
        let r = ns.v4();
        assert_eq!(r.len(), 4, "nothing removed before initial sync: {r:?}");
        assert!(ns.objects().iter().any(|o| o["id"] == 77));
        assert_eq!(
            paths(find(&r, "10.90.0.0/24").unwrap()),
            vec![pair("10.0.1.2", "veth1")]
        );
        assert_eq!(ns.v6().len(), 1);
        fib.initial_sync_done();
        fib.flush().await;
        let r = ns.v4();
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(
            paths(find(&r, "10.90.0.0/24").unwrap()),
            vec![pair("10.0.1.2", "veth1")]
        );
        assert!(ns.v6().is_empty());
        let other = ns.ip("-j route show 10.93.0.0/24");
        assert!(other.contains("10.93.0.0"), "foreign route untouched");
        let ours = ns.objects();
        assert_eq!(ours.len(), 1, "the previous run's object is gone: {ours:?}");
        assert_eq!(ours[0]["id"], find(&r, "10.90.0.0/24").unwrap()["nhid"]);
        let foreign = ns.ip("-j nexthop show id 78");
        assert!(foreign.contains("10.0.1.2"), "foreign object untouched");
        fib.shutdown().await;
    });
}

#[test]
fn shutdown_removes_routes_unless_kept() {
    let ns = Netns::new("shutdown");
    ns.run(|ns| async move {
        let (fib, _rx) = start(cfg());
        fib.apply(vec![
            change("10.100.0.0/24", &["10.0.0.2"]),
            change("10.101.0.0/24", &["10.0.0.2", "10.0.1.2"]),
            change("2001:db8:100::/48", &["2001:db8::2"]),
        ])
        .await;
        fib.shutdown().await; // flushes pending changes first
        assert!(ns.v4().is_empty() && ns.v6().is_empty());

        let (fib, _rx) = start(FibConfig {
            keep_on_exit: true,
            ..cfg()
        });
        fib.apply(vec![
            change("10.100.0.0/24", &["10.0.0.2"]),
            change("2001:db8:100::/48", &["2001:db8::2"]),
        ])
        .await;
        fib.shutdown().await;
        assert_eq!(ns.v4().len(), 1);
        assert_eq!(ns.v6().len(), 1);
        // Further calls on a stopped FIB do nothing and do not hang.
        fib.flush().await;
        assert!(fib.entries(None).await.is_empty());

        // Dropping the last handle without shutdown leaves routes in place.
        let (fib, _rx) = start(cfg());
        fib.apply(vec![change("10.102.0.0/24", &["10.0.0.2"])])
            .await;
        fib.flush().await;
        drop(fib);
        assert!(find(&ns.v4(), "10.102.0.0/24").is_some());
    });
}

#[test]
fn kernel_refusal_is_reported_in_words_and_recovery_announced() {
    let ns = Netns::new("refused");
    ns.run(|ns| async move {
        let (fib, mut rx) = start(cfg());
        // An IPv6 prefix via an IPv4 next hop: the kernel refuses RTA_VIA.
        fib.apply(vec![
            change("2001:db8:40::/48", &["10.0.0.2"]),
            change("10.110.0.0/24", &["10.0.0.2"]),
        ])
        .await;
        fib.flush().await;
        let e = wait_for(&mut rx, "RouteFailed", |e| {
            matches!(e, FibEvent::RouteFailed { .. })
        })
        .await;
        let FibEvent::RouteFailed { prefix, error, .. } = e else {
            unreachable!()
        };
        assert_eq!(prefix.to_string(), "2001:db8:40::/48");
        assert!(error.starts_with("Invalid argument (EINVAL)"), "{error}");
        // The other route of the batch went in, and is confirmed.
        assert!(find(&ns.v4(), "10.110.0.0/24").is_some());
        let other: ipnet::IpNet = "10.110.0.0/24".parse().unwrap();
        wait_for(
            &mut rx,
            "RoutesInstalled",
            |e| matches!(e, FibEvent::RoutesInstalled(r) if r.iter().any(|(q, _)| *q == other)),
        )
        .await;
        let entry = fib.entries(Some(prefix)).await;
        assert!(
            entry[0]
                .status
                .starts_with("failed: Invalid argument (EINVAL)"),
            "{:?}",
            entry[0]
        );

        fib.apply(vec![change("2001:db8:40::/48", &["2001:db8::2"])])
            .await;
        fib.flush().await;
        let e = wait_for(&mut rx, "RoutesInstalled", |e| {
            matches!(e, FibEvent::RoutesInstalled(_))
        })
        .await;
        let FibEvent::RoutesInstalled(confirmed) = e else {
            unreachable!()
        };
        assert_eq!(confirmed.len(), 1);
        assert_eq!(confirmed[0].0, prefix);
        assert_eq!(confirmed[0].1[0].address.to_string(), "2001:db8::2");
        assert!(find(&ns.v6(), "2001:db8:40::/48").is_some());
        assert_eq!(fib.entries(Some(prefix)).await[0].status, "installed");
        fib.shutdown().await;
    });
}

#[test]
fn local_next_hops_are_not_installed() {
    let ns = Netns::new("local");
    ns.run(|ns| async move {
        let (fib, mut rx) = start(cfg());
        fib.watch_nexthops(vec!["::1".parse().unwrap(), "10.0.0.1".parse().unwrap()]);
        wait_for(&mut rx, "::1 local", |e| {
            is_nexthop(e, "::1", |s| *s == NexthopState::Local)
        })
        .await;
        wait_for(&mut rx, "10.0.0.1 local", |e| {
            is_nexthop(e, "10.0.0.1", |s| *s == NexthopState::Local)
        })
        .await;
        fib.apply(vec![
            change("2001:db8:50::/48", &["::1"]),
            change("10.120.0.0/24", &["10.0.0.1"]),
            change("10.121.0.0/24", &["127.0.0.1"]),
        ])
        .await;
        fib.flush().await;
        assert!(ns.v4().is_empty() && ns.v6().is_empty());
        for e in fib.entries(None).await {
            assert_eq!(e.status, "next hop is local", "{e:?}");
        }
        fib.shutdown().await;
    });
}

#[test]
fn install_disabled_still_resolves() {
    let ns = Netns::new("noinstall");
    ns.ip("route add 10.130.0.0/24 via 10.0.0.2 proto 186");
    ns.run(|ns| async move {
        let (fib, mut rx) = start(FibConfig {
            install: false,
            ..cfg()
        });
        fib.watch_nexthops(vec!["10.0.1.2".parse().unwrap()]);
        let e = wait_for(&mut rx, "10.0.1.2", |e| is_nexthop(e, "10.0.1.2", |_| true)).await;
        assert_eq!(
            e,
            FibEvent::Nexthop {
                address: "10.0.1.2".parse().unwrap(),
                state: NexthopState::Reachable { metric: 0 }
            }
        );
        fib.apply(vec![change("10.131.0.0/24", &["10.0.1.2"])])
            .await;
        fib.initial_sync_done();
        fib.flush().await;
        let r = ns.v4();
        assert_eq!(r.len(), 1, "nothing written, nothing removed: {r:?}");
        let e = fib.entries(None).await;
        assert_eq!(e[0].status, "install disabled");
        assert_eq!(e[0].kernel_next_hops, vec!["via 10.0.1.2 dev veth1"]);
        fib.shutdown().await;
        assert_eq!(ns.v4().len(), 1);
    });
}

#[test]
fn other_table_and_ipv4_via_ipv6_next_hop() {
    let ns = Netns::new("table");
    ns.run(|ns| async move {
        let (fib, _rx) = start(FibConfig {
            table: 1000,
            ..cfg()
        });
        fib.apply(vec![
            change("10.140.0.0/24", &["2001:db8::2"]),
            change("10.141.0.0/24", &["10.0.0.2", "2001:db8:1::2"]),
        ])
        .await;
        fib.flush().await;
        assert!(ns.v4().is_empty(), "nothing in main");
        let r = ns.routes("-4", "1000");
        let route = find(&r, "10.140.0.0/24").expect("installed in table 1000");
        assert_eq!(route["via"]["family"], "inet6");
        assert_eq!(paths(route), vec![pair("2001:db8::2", "veth0")]);
        assert_eq!(
            paths(find(&r, "10.141.0.0/24").unwrap()),
            vec![pair("10.0.0.2", "veth0"), pair("2001:db8:1::2", "veth1")]
        );
        let e = fib.entries(Some("10.140.0.0/24".parse().unwrap())).await;
        assert_eq!(
            e[0].kernel_next_hops,
            vec!["via inet6 2001:db8::2 dev veth0"]
        );
        fib.shutdown().await;
        assert!(ns.routes("-4", "1000").is_empty());
    });
}

#[test]
fn next_hop_through_own_route_or_link_local_is_unreachable() {
    let ns = Netns::new("ownroute");
    ns.ip("route add 10.150.0.0/24 via 10.0.0.2 proto 186 metric 20");
    ns.ip("route add blackhole 10.151.0.0/24");
    ns.run(|_ns| async move {
        let (fib, mut rx) = start(cfg());
        fib.watch_nexthops(vec![
            "10.150.0.5".parse().unwrap(),
            "fe80::1".parse().unwrap(),
            "10.151.0.5".parse().unwrap(),
        ]);
        let want = [
            ("10.150.0.5", "resolves only through a BGP route"),
            ("fe80::1", "link-local next hop without interface"),
            ("10.151.0.5", "blackhole"),
        ];
        for (addr, words) in want {
            let e = wait_for(&mut rx, addr, |e| is_nexthop(e, addr, |_| true)).await;
            let FibEvent::Nexthop {
                state: NexthopState::Unreachable(why),
                ..
            } = e
            else {
                panic!("{addr}: {e:?}")
            };
            assert!(why.contains(words), "{addr}: {why}");
        }
        fib.shutdown().await;
    });
}

#[test]
fn multipath_keeps_only_reachable_paths() {
    let ns = Netns::new("partial");
    ns.run(|ns| async move {
        let (fib, _rx) = start(cfg());
        fib.apply(vec![change(
            "10.160.0.0/24",
            &["10.0.0.2", "10.99.0.1", "10.0.0.2"],
        )])
        .await;
        fib.flush().await;
        let r = ns.v4();
        assert_eq!(
            paths(find(&r, "10.160.0.0/24").expect("installed")),
            vec![pair("10.0.0.2", "veth0")]
        );
        let e = fib.entries(None).await;
        assert_eq!(e[0].status, "installed");
        assert_eq!(e[0].bgp_next_hops.len(), 2, "duplicates removed");
        fib.shutdown().await;
    });
}

/// Polls the namespace's IPv4 routes (at most 5 s) until `pred` holds.
async fn poll_v4(ns: &Ns, what: &str, pred: impl Fn(&[serde_json::Value]) -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let r = ns.v4();
        if pred(&r) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {r:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[test]
fn routes_share_nexthop_objects_and_unused_ones_are_deleted() {
    let ns = Netns::new("nhobj");
    ns.run(|ns| async move {
        let (fib, _rx) = start(cfg());
        fib.apply(vec![
            change("10.30.0.0/24", &["10.0.0.2"]),
            change("10.30.1.0/24", &["10.0.0.2"]),
            change("10.30.2.0/24", &["10.0.0.2", "10.0.1.2"]),
            change("2001:db8:30::/48", &["2001:db8::2"]),
            change("2001:db8:31::/48", &["2001:db8::2"]),
        ])
        .await;
        fib.flush().await;
        // 10.0.0.2, 10.0.1.2, the group of both, 2001:db8::2.
        let objs = ns.objects();
        assert_eq!(objs.len(), 4, "{objs:?}");
        let v4 = ns.v4();
        let shared = &find(&v4, "10.30.0.0/24").unwrap()["nhid"];
        assert!(shared.is_u64(), "route points at an object: {v4:?}");
        assert_eq!(&find(&v4, "10.30.1.0/24").unwrap()["nhid"], shared);
        let multi = find(&v4, "10.30.2.0/24").unwrap();
        let group = objs
            .iter()
            .find(|o| o["id"] == multi["nhid"])
            .expect("group object");
        assert_eq!(group["group"].as_array().map(|g| g.len()), Some(2));
        assert_eq!(
            paths(multi),
            vec![pair("10.0.0.2", "veth0"), pair("10.0.1.2", "veth1")]
        );
        let v6 = ns.v6();
        assert_eq!(
            find(&v6, "2001:db8:30::/48").unwrap()["nhid"],
            find(&v6, "2001:db8:31::/48").unwrap()["nhid"]
        );

        // The group's last user moves off it: the group goes, its members stay.
        fib.apply(vec![change("10.30.2.0/24", &["10.0.1.2"])]).await;
        fib.flush().await;
        let objs = ns.objects();
        assert_eq!(objs.len(), 3, "{objs:?}");
        assert!(objs.iter().all(|o| o["group"].is_null()));

        fib.apply(vec![
            change("10.30.0.0/24", &[]),
            change("10.30.1.0/24", &[]),
            change("10.30.2.0/24", &[]),
            change("2001:db8:30::/48", &[]),
            change("2001:db8:31::/48", &[]),
        ])
        .await;
        fib.flush().await;
        assert!(ns.v4().is_empty() && ns.v6().is_empty());
        assert!(ns.objects().is_empty(), "{:?}", ns.objects());
        fib.shutdown().await;
    });
}

#[test]
fn a_deleted_nexthop_object_is_replaced() {
    let ns = Netns::new("nhdel");
    ns.run(|ns| async move {
        let (fib, _rx) = start(cfg());
        fib.apply(vec![
            change("10.31.0.0/24", &["10.0.0.2"]),
            change("10.31.1.0/24", &["10.0.0.2", "10.0.1.2"]),
        ])
        .await;
        fib.flush().await;
        let v4 = ns.v4();
        let old = find(&v4, "10.31.0.0/24").unwrap()["nhid"].clone();
        // Deleting an object deletes the routes using it, the group's
        // member too; kroute puts both back.
        ns.ip(&format!("nexthop del id {old}"));
        poll_v4(&ns, "both routes back", |r| {
            find(r, "10.31.0.0/24").is_some_and(|x| x["nhid"] != old)
                && find(r, "10.31.1.0/24").is_some_and(|x| paths(x).len() == 2)
        })
        .await;
        assert_eq!(ns.objects().len(), 3, "{:?}", ns.objects());
        fib.shutdown().await;
        assert!(ns.objects().is_empty(), "shutdown deletes our objects");
    });
}

#[test]
fn carrier_loss_flushes_objects_and_routes_come_back() {
    let ns = Netns::new("carrier");
    ns.run(|ns| async move {
        let (fib, mut rx) = start(cfg());
        fib.watch_nexthops(vec!["10.0.0.2".parse().unwrap()]);
        wait_for(&mut rx, "10.0.0.2 reachable", |e| {
            is_nexthop(e, "10.0.0.2", reachable)
        })
        .await;
        fib.apply(vec![
            change("10.32.0.0/24", &["10.0.0.2"]),
            change("10.32.1.0/24", &["10.0.0.2", "10.0.1.2"]),
        ])
        .await;
        fib.flush().await;
        // The far end goes down: veth0 stays up without carrier, and the
        // kernel flushes the objects through it.
        ns.ip("link set veth0p down");
        poll_v4(&ns, "only the path through veth1", |r| {
            find(r, "10.32.0.0/24").is_none()
                && find(r, "10.32.1.0/24")
                    .is_some_and(|x| paths(x) == vec![pair("10.0.1.2", "veth1")])
        })
        .await;
        ns.ip("link set veth0p up");
        poll_v4(&ns, "both routes whole again", |r| {
            find(r, "10.32.0.0/24").is_some_and(|x| paths(x) == vec![pair("10.0.0.2", "veth0")])
                && find(r, "10.32.1.0/24").is_some_and(|x| paths(x).len() == 2)
        })
        .await;
        fib.shutdown().await;
    });
}

#[test]
fn next_hops_inline_when_objects_are_off() {
    let ns = Netns::new("inline");
    ns.run(|ns| async move {
        let (fib, _rx) = start(FibConfig {
            nexthop_objects: false,
            ..cfg()
        });
        fib.apply(vec![
            change("10.33.0.0/24", &["10.0.0.2"]),
            change("10.33.1.0/24", &["10.0.0.2", "10.0.1.2"]),
            change("2001:db8:33::/48", &["2001:db8::2", "2001:db8:1::2"]),
        ])
        .await;
        fib.flush().await;
        let v4 = ns.v4();
        let one = find(&v4, "10.33.0.0/24").expect("installed");
        assert!(one["nhid"].is_null(), "{one:?}");
        assert_eq!(paths(one), vec![pair("10.0.0.2", "veth0")]);
        assert_eq!(paths(find(&v4, "10.33.1.0/24").unwrap()).len(), 2);
        assert_eq!(paths(find(&ns.v6(), "2001:db8:33::/48").unwrap()).len(), 2);
        assert!(ns.objects().is_empty());
        fib.shutdown().await;
        assert!(ns.v4().is_empty() && ns.v6().is_empty());
    });
}

#[test]
fn an_unwatched_next_hop_is_reported_no_more_and_again_once_watched() {
    let ns = Netns::new("unwatch");
    ns.run(|ns| async move {
        let (fib, mut rx) = start(cfg());
        let (a, b) = ("10.0.0.2", "10.0.1.2");
        fib.watch_nexthops(vec![a.parse().unwrap(), b.parse().unwrap()]);
        wait_for(&mut rx, "a reachable", |e| is_nexthop(e, a, reachable)).await;
        wait_for(&mut rx, "b reachable", |e| is_nexthop(e, b, reachable)).await;
        fib.apply(vec![change("10.81.0.0/24", &[b])]).await;
        fib.flush().await;
        // a is used by no route: forgotten; b still is: followed, silently.
        fib.unwatch_nexthops(vec![a.parse().unwrap(), b.parse().unwrap()]);
        fib.flush().await;
        while rx.try_recv().is_ok() {}
        ns.ip("link set veth0 down");
        ns.ip("link set veth1 down");
        // The FIB resolves b again (its route says so) but tells no one.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let p = "10.81.0.0/24".parse().unwrap();
        while fib.entries(Some(p)).await[0].status != "next hop unresolved" {
            assert!(std::time::Instant::now() < deadline, "b not resolved again");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        while let Ok(e) = rx.try_recv() {
            assert!(!matches!(e, FibEvent::Nexthop { .. }), "reported: {e:?}");
        }
        // Watched again: reported at once, as it is now.
        fib.watch_nexthops(vec![a.parse().unwrap()]);
        wait_for(&mut rx, "a unreachable", |e| is_nexthop(e, a, unreachable)).await;
        fib.shutdown().await;
    });
}
