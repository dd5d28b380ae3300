//! Prefix-independent failover against the daemon: two BIRD upstreams
//! announce the same prefixes as equal paths (ECMP); the first one's link
//! loses carrier; every prefix must forward via the survivor at once, a
//! ping into the table must keep working, and kroute must not rewrite the
//! routes one by one (its route writes are counted with `ip monitor`).
//! Needs root and BIRD 2 (see `common/mod.rs`).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::bird::Bird;
use common::scenarios::Topo;
use common::{PeerDaemon, Stopped};
use kroute::api::views::BfdState;
use kroute::api::Client;

/// Prefixes both peers announce; the ping target is in the first.
const N: usize = 24;
const TARGET: &str = "10.77.0.1";

fn prefix(i: usize) -> String {
    format!("10.77.{i}.0/24")
}

fn ping(t: &Topo<Bird>) -> bool {
    t.k_ns
        .output(&["ping", "-c", "3", "-i", "0.2", "-W", "1", TARGET])
        .is_ok_and(|o| o.status.success())
}

/// The nexthop object a route points at and how many members it has now.
fn object_of(t: &Topo<Bird>, p: &str) -> (u64, usize) {
    let out = t.k_ns.ip(&["-j", "route", "show", p]).expect("ip route");
    let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j");
    let id = v[0]["nhid"].as_u64().expect("route points at an object");
    let out = t
        .k_ns
        .ip(&["-j", "nexthop", "show", "id", &id.to_string()])
        .expect("ip nexthop");
    let o: serde_json::Value = serde_json::from_str(&out).expect("ip -j");
    let members = o[0]["group"].as_array().map_or(1, |g| g.len());
    (id, members)
}

#[test]
fn ecmp_carrier_loss_fails_over_without_rewriting_routes() {
    let mut t = Topo::<Bird>::p2p("pic", 2, false, |c| c.router.max_paths = 4);
    for (ns, p) in t.peer_ns.iter().zip(t.peers.iter_mut()) {
        // Both upstreams answer for the target: a ping works via either.
        ns.add_addr("lo", &format!("{TARGET}/32")).expect("address");
        for i in 0..N {
            p.announce(&prefix(i));
        }
    }
    t.wait_established();
    for i in 0..N {
        t.wait_kernel_via(&prefix(i), &[1, 2]);
    }
    assert!(ping(&t), "no ping via both upstreams");
    let (group, members) = object_of(&t, &prefix(0));
    assert_eq!(members, 2);

    // kroute's route writes from here on, as the kernel announces them.
    // Without compat mode the kernel does not announce, per route, what
    // a change of a nexthop object does to the routes using it: what is
    // left is what was written.
    t.k_ns
        .run(&["sysctl", "-qw", "net.ipv4.nexthop_compat_mode=0"])
        .expect("sysctl");
    let mut monitor = t
        .k_ns
        .command("ip")
        .args(["-o", "monitor", "route"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ip monitor");
    std::thread::sleep(Duration::from_millis(300));

    // Upstream 1's end goes down: kroute's side loses carrier.
    t.peer_ns[0]
        .ip(&["link", "set", &t.links[0].p_dev, "down"])
        .expect("link down");
    common::wait_until(common::CONVERGE, "every route on the shrunk group", || {
        let on: Vec<(u64, usize)> = (0..N).map(|i| object_of(&t, &prefix(i))).collect();
        if on.iter().all(|o| *o == (group, 1)) {
            Ok(())
        } else {
            Err(format!("{on:?}"))
        }
    });
    // The RIB reselects every prefix (best = upstream 2 alone); give it
    // time, then every route is still on the same, shrunk group.
    std::thread::sleep(Duration::from_secs(3));
    for i in 0..N {
        assert_eq!(object_of(&t, &prefix(i)), (group, 1), "{}", prefix(i));
    }
    let _ = monitor.kill();
    let out = monitor.wait_with_output().expect("ip monitor output");
    t.k_ns
        .run(&["sysctl", "-qw", "net.ipv4.nexthop_compat_mode=1"])
        .expect("sysctl");
    for i in 0..N {
        t.wait_kernel_via(&prefix(i), &[2]);
    }
    assert!(ping(&t), "no ping via the surviving upstream");
    // `show fib` says what the kernel forwards on: the survivor.
    let survivor = format!("via {} dev {}", t.links[1].p4, t.links[1].k_dev);
    for e in t.kroute.fib() {
        assert_eq!(e.status, "installed", "{e:?}");
        assert_eq!(e.kernel_next_hops, vec![survivor.clone()], "{e:?}");
    }

    let lines = String::from_utf8_lossy(&out.stdout);
    let writes = lines.lines().filter(|l| l.contains("10.77.")).count();
    assert!(
        writes <= 2,
        "failover of {N} prefixes rewrote {writes} routes:\n{lines}"
    );

    // Back: every prefix via both again, once the sessions have settled
    // (upstream 1 may have dropped its session with the link and opens a
    // new one when it returns).
    t.peer_ns[0]
        .ip(&["link", "set", &t.links[0].p_dev, "up"])
        .expect("link up");
    t.wait_established();
    std::thread::sleep(Duration::from_secs(2));
    t.wait_established();
    for i in 0..N {
        t.wait_kernel_via(&prefix(i), &[1, 2]);
    }
    assert!(ping(&t), "no ping after recovery");
}

/// Our routes for `p` as (metric, gateway, dev), lowest metric first.
fn routes_of(t: &Topo<Bird>, p: &str) -> Vec<(u64, String, String)> {
    let out = t
        .k_ns
        .ip(&["-j", "route", "show", "exact", p, "proto", "bgp"])
        .expect("ip route");
    let v: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap_or_default();
    let mut r: Vec<(u64, String, String)> = v
        .iter()
        .map(|r| {
            (
                r["metric"].as_u64().unwrap_or(0),
                r["gateway"].as_str().unwrap_or("").to_string(),
                r["dev"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    r.sort();
    r
}

/// kernel.backupRoutes against the daemon: upstream 1 is preferred
/// (upstream 2's AS_PATH is one longer), so each prefix has a primary via
/// 1 and a standby via 2 at the next metric. Upstream 1's link loses
/// carrier: the kernel forwards on the standbys by itself, the ping keeps
/// working, and kroute writes no route for the failover nor for the RIB's
/// re-selection after it. Then upstream 1 returns (primaries back), and
/// its session is closed with the link up (`peer X disable`): the
/// standbys forward again, with no write per prefix either.
#[test]
fn preferred_path_lost_with_backup_routes_rewrites_no_route() {
    let mut t = Topo::<Bird>::p2p("pbk", 2, false, |c| c.kernel.backup_routes = true);
    for (i, (ns, p)) in t.peer_ns.iter().zip(t.peers.iter_mut()).enumerate() {
        ns.add_addr("lo", &format!("{TARGET}/32")).expect("address");
        for j in 0..N {
            if i == 0 {
                p.announce(&prefix(j));
            } else {
                p.announce_prepend(&prefix(j), &[65099]);
            }
        }
    }
    t.wait_established();
    let gw = |i: usize| t.links[i].p4.clone();
    let dev = |i: usize| t.links[i].k_dev.clone();
    let both = vec![(20, gw(0), dev(0)), (21, gw(1), dev(1))];
    let standby_only = vec![(21, gw(1), dev(1))];
    let wait_all = |what: &str, want: &Vec<(u64, String, String)>| {
        common::wait_until(common::CONVERGE, what, || {
            match (0..N)
                .map(|i| routes_of(&t, &prefix(i)))
                .find(|r| r != want)
            {
                None => Ok(()),
                Some(r) => Err(format!("{r:?}")),
            }
        })
    };
    wait_all("primaries via 1, standbys via 2", &both);
    assert!(ping(&t), "no ping via the preferred upstream");

    t.k_ns
        .run(&["sysctl", "-qw", "net.ipv4.nexthop_compat_mode=0"])
        .expect("sysctl");
    let watch = |t: &Topo<Bird>| {
        let m = t
            .k_ns
            .command("ip")
            .args(["-o", "monitor", "route"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("ip monitor");
        std::thread::sleep(Duration::from_millis(300));
        m
    };
    // Stops counting; `ip route` shows the gateways of routes on objects
    // again (compat mode).
    let writes = |m: std::process::Child, t: &Topo<Bird>| {
        let mut m = m;
        let _ = m.kill();
        let out = m.wait_with_output().expect("ip monitor output");
        t.k_ns
            .run(&["sysctl", "-qw", "net.ipv4.nexthop_compat_mode=1"])
            .expect("sysctl");
        let lines = String::from_utf8_lossy(&out.stdout).into_owned();
        (
            lines.lines().filter(|l| l.contains("10.77.")).count(),
            lines,
        )
    };

    // 1. Carrier loss on upstream 1's link; the RIB re-selects meanwhile.
    let monitor = watch(&t);
    t.peer_ns[0]
        .ip(&["link", "set", &t.links[0].p_dev, "down"])
        .expect("link down");
    assert!(ping(&t), "no ping via the standby routes");
    std::thread::sleep(Duration::from_secs(3));
    let (n, lines) = writes(monitor, &t);
    wait_all("every prefix on its standby alone", &standby_only);
    for e in t.kroute.fib() {
        assert_eq!(e.status, "installed", "{e:?}");
        assert_eq!(
            e.kernel_next_hops,
            vec![format!("via {} dev {}", gw(1), dev(1))]
        );
    }
    assert!(
        n <= 2,
        "carrier-loss failover of {N} prefixes wrote {n} routes:\n{lines}"
    );

    // Back: the primaries return.
    t.peer_ns[0]
        .ip(&["link", "set", &t.links[0].p_dev, "up"])
        .expect("link up");
    t.wait_established();
    wait_all("primaries via 1 again", &both);

    // 2. The preferred session closes with its link up.
    t.k_ns
        .run(&["sysctl", "-qw", "net.ipv4.nexthop_compat_mode=0"])
        .expect("sysctl");
    let monitor = watch(&t);
    let name = t.kroute.config.peers[0].name.clone();
    t.kroute.cli_ok(&["peer", &name, "disable"]);
    assert!(ping(&t), "no ping after the session loss");
    std::thread::sleep(Duration::from_secs(2));
    let (n, lines) = writes(monitor, &t);
    wait_all(
        "every prefix on its standby after the session loss",
        &standby_only,
    );
    assert!(
        n <= 2,
        "session-loss failover of {N} prefixes wrote {n} routes:\n{lines}"
    );
    t.kroute.cli_ok(&["peer", &name, "enable"]);
    t.wait_established();
    wait_all("primaries via 1 after the session is back", &both);
    assert!(ping(&t), "no ping after recovery");
}

/// Both families over one IPv4 session, `kernel.backupRoutes` on: upstream
/// 1 is preferred; its IPv6 routes come with its global IPv6 address as the
/// MP_REACH next hop, not the session's address. Its daemon dies (SIGKILL:
/// the session ends with the link up, as after BFD or the hold timer) and
/// both families must move to the standbys by their nexthop objects, not
/// by a netlink message per prefix (the IPv6 next hop used to be left out).
#[test]
fn session_lost_moves_both_families_by_their_objects() {
    upstream_lost_moves_both_families_by_objects("pbf", None, |t| t.peers[0].kill());
}

/// As above, but upstream 1 goes silent (its BIRD frozen: no carrier
/// change, no TCP close) and BFD (300 ms x 3) declares it down: the session
/// is closed for BFD (RFC 5882 §4.3), and its table must move by the
/// objects just as when the session is lost. Before, that path withdrew
/// the peer's routes per prefix (seconds at a full table).
#[test]
fn bfd_down_moves_both_families_by_their_objects() {
    upstream_lost_moves_both_families_by_objects("pbd", Some(300), |t| {
        Stopped::stop(vec![t.peers[0].pid()])
    });
}

/// Two BIRD upstreams, one session each over IPv4 carrying both families,
/// announce the same prefixes (the second with a longer AS_PATH); with
/// `kernel.backupRoutes` the primaries go via 1, the standbys via 2. With
/// `bfd` (ms) both sessions run BFD at that interval. `fail` takes
/// upstream 1 away (what it returns lives to the end of the test); every
/// prefix must then be on its standby alone, moved by at most a message per
/// nexthop object (the primaries' objects, one per family), none per
/// prefix.
fn upstream_lost_moves_both_families_by_objects<G>(
    tag: &str,
    bfd: Option<u32>,
    fail: impl FnOnce(&mut Topo<Bird>) -> G,
) {
    let mut t = Topo::<Bird>::p2p_both_over_ipv4(tag, 2, |c| {
        c.kernel.backup_routes = true;
        for p in &mut c.peers {
            p.bfd = bfd.map(|interval| kroute::config::Bfd {
                interval,
                multiplier: 3,
            });
        }
    });
    let v6 = |i: usize| format!("fd00:77:{i:x}::/48");
    let all: Vec<String> = (0..N).map(prefix).chain((0..N).map(v6)).collect();
    for (i, p) in t.peers.iter_mut().enumerate() {
        if let Some(ms) = bfd {
            p.enable_bfd(ms);
        }
        for q in &all {
            if i == 0 {
                p.announce(q);
            } else {
                p.announce_prepend(q, &[65099]);
            }
        }
    }
    t.wait_established();
    if bfd.is_some() {
        common::wait_until(common::CONVERGE, "kroute's BFD sessions Up", || {
            let s = Client::new(t.kroute.socket())
                .bfd()
                .map_err(|e| e.to_string())?;
            match s.iter().filter(|s| s.state == BfdState::Up).count() {
                2 => Ok(()),
                _ => Err(format!("{s:?}")),
            }
        });
    }
    // (metric, via peer i) for each of our routes to `q`.
    let vias = |t: &Topo<Bird>, q: &str| -> Vec<(u64, usize)> {
        let family = if q.contains(':') { "-6" } else { "-4" };
        let out = t
            .k_ns
            .ip(&[family, "-j", "route", "show", "exact", q, "proto", "bgp"])
            .expect("ip route");
        let v: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap_or_default();
        let mut r: Vec<(u64, usize)> = v
            .iter()
            .filter_map(|r| {
                let gw = r["gateway"].as_str()?;
                let dev = r["dev"].as_str()?;
                let i = (1..=2).find(|&i| {
                    t.gateways(i, q).iter().any(|g| g == gw) && t.links[i - 1].k_dev == dev
                })?;
                Some((r["metric"].as_u64().unwrap_or(0), i))
            })
            .collect();
        r.sort();
        r
    };
    let wait_all = |t: &Topo<Bird>, what: &str, want: &[(u64, usize)]| {
        common::wait_until(common::CONVERGE, what, || {
            match all.iter().map(|q| (q, vias(t, q))).find(|(_, r)| r != want) {
                None => Ok(()),
                Some((q, r)) => Err(format!("{q}: {r:?}")),
            }
        })
    };
    wait_all(&t, "primaries via 1, standbys via 2", &[(20, 1), (21, 2)]);

    let before = t.kroute.fib_netlink_messages();
    let _failed = fail(&mut t);
    common::wait_until(common::CONVERGE, "upstream 1's session down", || {
        match t.kroute.established(&Topo::<Bird>::v4_name(1)) {
            Ok(()) => Err("still Established".into()),
            Err(_) => Ok(()),
        }
    });
    wait_all(&t, "every prefix on its standby alone", &[(21, 2)]);
    // The RIB's per-prefix changes come after the objects moved: let them
    // reach the FIB before counting.
    std::thread::sleep(Duration::from_secs(2));
    wait_all(&t, "every prefix still on its standby", &[(21, 2)]);
    let written = t.kroute.fib_netlink_messages() - before;
    println!(
        "session loss of {} prefixes in two families: {written} netlink messages",
        all.len()
    );
    assert!(
        written <= 4,
        "failover of {} prefixes (two families, one object each) took {written} netlink messages",
        all.len()
    );
}

/// A table large enough that its withdrawal takes the router task several
/// steps (`PEER_DOWN_STEP`, 16 Ki prefixes each): the peer dies, and while
/// its routes are still leaving the CLI must answer, with the session
/// already down and the table part withdrawn. Before, `show` waited for
/// the end of the whole withdrawal (3.4 s at 1M routes: a monitor saw the
/// BFD-detected failure seconds late).
#[test]
fn the_cli_answers_while_a_lost_sessions_table_leaves() {
    const TABLE: u32 = 100_000;
    let mut t = Topo::<Bird>::p2p("pcli", 1, false, |_| {});
    // /28s from 10.100.0.0: TABLE distinct prefixes.
    let table = (0..TABLE).map(|i| {
        let a =
            std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 100, 0, 0)) + (i << 4));
        format!("{a}/28")
    });
    t.peers[0].announce_many(table);
    t.wait_established();
    // (sessions established, IPv4 prefixes in the RIB), from one answer
    // (`/metrics`' view: the router task's alone, the FIB not asked).
    let sample = |t: &Topo<Bird>| -> (usize, usize) {
        let m: kroute::api::views::MetricsView = serde_json::from_value(
            t.kroute
                .request(&kroute::api::Request::Metrics)
                .expect("metrics"),
        )
        .expect("a MetricsView");
        let up = m
            .peers
            .iter()
            .filter(|p| p.state == kroute::events::SessionState::Established)
            .count();
        let n = m
            .families
            .iter()
            .filter(|f| f.family == wire::Family::Ipv4Unicast)
            .map(|f| f.prefixes)
            .sum();
        (up, n)
    };
    common::wait_until(
        common::CONVERGE,
        "the whole table in the RIB",
        || match sample(&t).1 {
            n if n == TABLE as usize => Ok(()),
            n => Err(format!("{n} of {TABLE} prefixes")),
        },
    );
    t.peers[0].kill();
    // Every answer until the table is gone: (peers established, prefixes).
    // Asked back to back: the withdrawal's steps take milliseconds each.
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + common::CONVERGE;
    loop {
        let (up, n) = sample(&t);
        seen.push((up, n));
        if n == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the table not withdrawn: {n} prefixes left"
        );
    }
    let mid_walk: Vec<_> = seen
        .iter()
        .filter(|(up, n)| *up == 0 && *n > 0 && *n < TABLE as usize)
        .collect();
    println!(
        "{} answers, {} during the withdrawal",
        seen.len(),
        mid_walk.len()
    );
    assert!(
        !mid_walk.is_empty(),
        "no answer came while the table was leaving (session down, part of it withdrawn): {seen:?}"
    );
}
