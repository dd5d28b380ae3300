//! Nothing lost silently: routes of ours that someone else deletes or
//! replaces come back, refused routes are retried, and a resync after lost
//! notifications puts the kernel right. Each test in its own namespace.

mod common;

use std::time::Duration;

use common::*;
use kernel::FibEvent;

/// Polls `routes` (at most 5 s) until `pred` holds.
async fn poll(
    what: &str,
    routes: impl Fn() -> Vec<serde_json::Value>,
    pred: impl Fn(&[serde_json::Value]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = routes();
        if pred(&r) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn via(r: &[serde_json::Value], dst: &str, gw: &str, dev: &str) -> bool {
    find(r, dst).is_some_and(|x| paths(x) == vec![pair(gw, dev)])
}

#[test]
fn a_route_deleted_by_hand_comes_back() {
    let ns = Netns::new("handdel");
    ns.run(|ns| async move {
        let (fib, _rx) = start(cfg());
        fib.apply(vec![
            change("10.50.0.0/24", &["10.0.0.2"]),
            change("2001:db8:50::/48", &["2001:db8::2"]),
        ])
        .await;
        fib.flush().await;
        assert!(via(&ns.v4(), "10.50.0.0/24", "10.0.0.2", "veth0"));
        ns.ip("route del 10.50.0.0/24 proto bgp");
        ns.ip("-6 route del 2001:db8:50::/48 proto bgp");
        poll(
            "the IPv4 route back",
            || ns.v4(),
            |r| via(r, "10.50.0.0/24", "10.0.0.2", "veth0"),
        )
        .await;
        poll(
            "the IPv6 route back",
            || ns.v6(),
            |r| via(r, "2001:db8:50::/48", "2001:db8::2", "veth0"),
        )
        .await;
        let e = fib.entries(Some("10.50.0.0/24".parse().unwrap())).await;
        assert_eq!(e[0].status, "installed");
        fib.shutdown().await;
        assert!(ns.v4().is_empty() && ns.v6().is_empty());
    });
}

#[test]
fn a_route_replaced_by_someone_else_is_repaired() {
    for objects in [true, false] {
        let ns = Netns::new(if objects { "replobj" } else { "replinl" });
        ns.run(move |ns| async move {
            let (fib, _rx) = start(kernel::FibConfig {
                nexthop_objects: objects,
                ..cfg()
            });
            fib.apply(vec![
                change("10.51.0.0/24", &["10.0.0.2"]),
                change("10.51.1.0/24", &["10.0.0.2"]),
            ])
            .await;
            fib.flush().await;
            // Same protocol, another gateway; another protocol at our metric.
            ns.ip("route replace 10.51.0.0/24 via 10.0.1.2 proto bgp metric 20");
            ns.ip("route replace 10.51.1.0/24 via 10.0.1.2 proto static metric 20");
            poll(
                "both repaired",
                || ns.v4(),
                |r| {
                    via(r, "10.51.0.0/24", "10.0.0.2", "veth0")
                        && via(r, "10.51.1.0/24", "10.0.0.2", "veth0")
                },
            )
            .await;
            let all = ns.ip("-4 route show table main 10.51.1.0/24");
            assert!(!all.contains("static"), "{all}");
            fib.shutdown().await;
        });
    }
}

/// The kernel refuses the first write (the nexthop object id the FIB picks
/// was taken after it started); the retry, with no other event, gets the
/// route in.
#[test]
fn a_refused_route_is_installed_by_a_retry() {
    let ns = Netns::new("retry");
    ns.run(|ns| async move {
        let (fib, mut rx) = start(cfg());
        // The first id the FIB hands out (nexthop::FIRST_ID).
        ns.ip("nexthop add id 1802633216 via 10.0.1.2 dev veth1");
        let p: ipnet::IpNet = "10.52.0.0/24".parse().unwrap();
        fib.apply(vec![change("10.52.0.0/24", &["10.0.0.2"])]).await;
        fib.flush().await;
        let e = wait_for(&mut rx, "RouteFailed", |e| {
            matches!(e, FibEvent::RouteFailed { .. })
        })
        .await;
        let FibEvent::RouteFailed {
            prefix, next_retry, ..
        } = e
        else {
            unreachable!()
        };
        assert_eq!(prefix, p);
        let wait = next_retry
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        assert!(
            wait <= Duration::from_secs(1),
            "first retry after 1 s: {wait:?}"
        );
        let entry = &fib.entries(Some(p)).await[0];
        assert!(entry.status.starts_with("failed: "), "{entry:?}");
        assert!(
            entry
                .detail
                .as_deref()
                .is_some_and(|d| d.starts_with("next retry in ")),
            "{entry:?}"
        );
        assert!(find(&ns.v4(), "10.52.0.0/24").is_none());
        let e = wait_for(&mut rx, "RoutesInstalled", |e| {
            matches!(e, FibEvent::RoutesInstalled(_))
        })
        .await;
        let FibEvent::RoutesInstalled(confirmed) = e else {
            unreachable!()
        };
        assert_eq!(confirmed.len(), 1);
        assert_eq!(confirmed[0].0, p);
        assert_eq!(confirmed[0].1[0].address.to_string(), "10.0.0.2");
        assert!(via(&ns.v4(), "10.52.0.0/24", "10.0.0.2", "veth0"));
        assert_eq!(fib.entries(Some(p)).await[0].status, "installed");
        fib.shutdown().await;
    });
}

/// What changed while the monitor heard nothing (as when notifications
/// are lost) is put right by the resync: a route deleted, one replaced, a
/// stray of our protocol, a nexthop object of ours deleted.
#[test]
fn a_resync_puts_the_kernel_right() {
    let ns = Netns::new("resync");
    ns.run(|ns| async move {
        let (fib, _rx) = start(cfg());
        fib.initial_sync_done();
        fib.apply(vec![
            change("10.53.0.0/24", &["10.0.0.2"]),
            change("10.53.1.0/24", &["10.0.0.2"]),
            change("10.53.2.0/24", &["10.0.1.2"]),
            change("2001:db8:53::/48", &["2001:db8::2"]),
        ])
        .await;
        fib.flush().await;
        let v4 = ns.v4();
        let obj = find(&v4, "10.53.2.0/24").unwrap()["nhid"].clone();
        fib.deafen_for_tests(true);
        fib.flush().await;
        ns.ip("route del 10.53.0.0/24 proto bgp");
        ns.ip("route replace 10.53.1.0/24 via 10.0.1.2 proto bgp metric 20");
        ns.ip(&format!("nexthop del id {obj}"));
        ns.ip("route add 10.53.9.0/24 via 10.0.0.2 proto bgp metric 20");
        ns.ip("-6 route del 2001:db8:53::/48 proto bgp");
        // Unheard: nothing is repaired.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(find(&ns.v4(), "10.53.0.0/24").is_none());
        fib.resync();
        poll(
            "the IPv4 table put right",
            || ns.v4(),
            |r| {
                r.len() == 3
                    && via(r, "10.53.0.0/24", "10.0.0.2", "veth0")
                    && via(r, "10.53.1.0/24", "10.0.0.2", "veth0")
                    && via(r, "10.53.2.0/24", "10.0.1.2", "veth1")
            },
        )
        .await;
        poll(
            "the IPv6 route back",
            || ns.v6(),
            |r| via(r, "2001:db8:53::/48", "2001:db8::2", "veth0"),
        )
        .await;
        assert_ne!(find(&ns.v4(), "10.53.2.0/24").unwrap()["nhid"], obj);
        fib.deafen_for_tests(false);
        fib.shutdown().await;
        assert!(ns.v4().is_empty() && ns.v6().is_empty());
        assert!(ns.objects().is_empty(), "{:?}", ns.objects());
    });
}

/// The monitor hears our own writes' echoes only as such: installing does
/// not make the FIB "repair" what it just wrote (which would rewrite every
/// route again and again).
#[test]
fn our_own_writes_are_not_taken_for_someone_elses() {
    let ns = Netns::new("echo");
    ns.run(|ns| async move {
        let (fib, _rx) = start(cfg());
        let changes: Vec<_> = (0..200)
            .map(|i| change(&format!("10.54.{i}.0/24"), &["10.0.0.2"]))
            .collect();
        fib.apply(changes).await;
        fib.flush().await;
        // Anything the FIB writes from now on shows up here.
        let mut monitor = std::process::Command::new("ip")
            .args(["-n", &ns.name, "monitor", "route"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("ip monitor");
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Someone else touches one route: exactly that one is rewritten.
        ns.ip("route replace 10.54.7.0/24 via 10.0.1.2 proto bgp metric 20");
        tokio::time::sleep(Duration::from_millis(700)).await;
        monitor.kill().expect("kill ip monitor");
        let out = monitor.wait_with_output().expect("ip monitor output");
        let out = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = out.lines().filter(|l| l.contains("10.54.")).collect();
        assert_eq!(lines.len(), 2, "the replacement and our repair only: {out}");
        assert!(lines.iter().all(|l| l.starts_with("10.54.7.0/24")), "{out}");
        assert!(via(&ns.v4(), "10.54.7.0/24", "10.0.0.2", "veth0"));
        fib.shutdown().await;
    });
}
