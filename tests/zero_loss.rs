//! Issue 13, "zero packet loss across every restart", on a replica of seed
//! 000: three nodes, each a kroute (AS 42101010XX) with a Cilium stand-in
//! (GoBGP, AS 4220101000, graceful restart on) announcing the node's pod
//! CIDR over `[::1]`, three FRR upstreams (AS 4200001000, iBGP full mesh,
//! `bgp graceful-restart`) on one LAN, a pod (a namespace) behind each
//! node. A pod on n1 pings the pod on n3 20 times a second while
//!
//! * (a) GoBGP on n3 is killed (SIGKILL) and started again 5 s later,
//! * (b) kroute on n3 is killed (SIGKILL) and started again 5 s later,
//! * (c) kroute on n3 gets SIGTERM (the DaemonSet rollout) and starts again,
//! * (d) the FRR upstream carrying the ping loses its bgpd (SIGKILL) and
//!   gets it back 5 s later:
//!
//! not one echo may be lost (the ping's own counts), and once the restart
//! is over no stale route may be left, in kroute or in FRR, after the
//! (shortened) `staleTime`. The negatives, with graceful restart off where
//! it matters (GoBGP for (a), kroute for (b) and (c), FRR for (d)): the
//! routes leave at once (asserted) and pings are lost (printed).
//!
//! Each case builds its own cluster (namespaces `kt-<pid>-<n>-…`), so the
//! cases run in parallel. Needs root, frr and gobgpd (see `common/mod.rs`).

mod common;

use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::kroute::{self as k, Kroute};
use common::{netns, route_via, test_dir, veth, wait_until, Lan, CONVERGE};
use kroute::config::GracefulRestart;
use labkit::frr::{self, BgpdConfig, Daemon, Frr, FrrSpec};
use labkit::gobgp::{self, Gobgp, GobgpConfig, GobgpSpec, RenderOptions, Timers};
use labkit::{Afi, Netns, ScratchDir};
use rib::policy::PolicyChain;

const NODES: usize = 3;
const CLUSTER_ASN: u32 = 4220101000;
const UPSTREAM_ASN: u32 = 4200001000;
/// Our restart time (what peers keep our routes for) and the stale time
/// (how long a returned peer may take to send End-of-RIB), shortened.
const RESTART_TIME: u16 = 30;
const STALE_TIME: u16 = 10;
/// Pings per second (`ping -i 0.05`) and how long the ping runs: from a
/// few seconds before the restart to well past the stale time after it.
const PING_INTERVAL: &str = "0.05";
const PING_SECONDS: u64 = 40;
/// Into the ping, when the restart starts.
const RESTART_AT: Duration = Duration::from_secs(3);
/// How long a killed daemon stays down.
const DOWN_FOR: Duration = Duration::from_secs(5);

fn node_id(i: usize) -> usize {
    11 + i
}
fn node_lan(i: usize) -> String {
    format!("fd00:101::{}", node_id(i))
}
fn pod_cidr(i: usize) -> String {
    format!("fd00:101:224:{}::/64", i + 1)
}
fn pod_addr(i: usize) -> String {
    format!("fd00:101:224:{}::10", i + 1)
}
/// The link-local address of `dev` in `ns`.
fn link_local_of(ns: &Netns, dev: &str) -> String {
    let out = ns
        .ip(&["-6", "-o", "addr", "show", "dev", dev, "scope", "link"])
        .unwrap_or_else(|e| panic!("{e}"));
    out.split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("no link-local address on {dev}: {out}"))
        .to_string()
}

fn router_lan(j: usize) -> String {
    format!("fd00:101::{:x}", 0xfffc + j)
}

/// Which daemons offer graceful restart.
#[derive(Debug, Clone, Copy)]
struct Gr {
    gobgp: bool,
    kroute: bool,
    frr: bool,
}

const ALL_GR: Gr = Gr {
    gobgp: true,
    kroute: true,
    frr: true,
};

struct Node {
    // Drop order: daemons, then the namespaces.
    gobgp: Option<Gobgp>,
    kroute: Kroute,
    dir: ScratchDir,
    pod: Netns,
    ns: Netns,
}

struct Router {
    frr: Frr,
    ns: Netns,
    /// Its link-local address on the LAN: kroute installs routes via a
    /// peer's link-local on a shared link (RFC 2545 next hops), as FRR does.
    link_local: String,
}

struct Cluster {
    gr: Gr,
    nodes: Vec<Node>,
    routers: Vec<Router>,
    _lan: Lan,
}

fn gobgp_config(i: usize) -> GobgpConfig {
    GobgpConfig {
        asn: CLUSTER_ASN,
        router_id: format!("10.101.254.{}", node_id(i)),
        // kroute owns port 179 in the node; GoBGP only connects.
        port: Some(-1),
        neighbors: vec![gobgp::Neighbor {
            address: "::1".into(),
            peer_as: 4210101000 + node_id(i) as u32,
            local_address: Some("::1".into()),
            remote_port: Some(179),
            timers: Some(Timers {
                connect_retry: 1,
                hold_time: 9,
                keepalive_interval: 3,
            }),
            families: vec!["ipv6-unicast".into()],
            ..Default::default()
        }],
    }
}

fn kroute_config(i: usize, gr: bool) -> kroute::config::Config {
    let asn = 4210101000 + node_id(i) as u32;
    let mut c = k::config(asn, &format!("10.101.254.{}", node_id(i)));
    c.router.hold_time = 9;
    c.router.connect_retry = 2;
    c.router.graceful_restart = GracefulRestart {
        enabled: gr,
        restart_time: RESTART_TIME,
        stale_time: u32::from(STALE_TIME),
        ..Default::default()
    };
    let mut cilium = k::peer("cilium", "::1", CLUSTER_ASN, &["ipv6-unicast"]);
    cilium.passive = true;
    cilium.export = PolicyChain::None;
    c.peers.push(cilium);
    for j in 0..3 {
        c.peers.push(k::peer(
            &format!("r{}", j + 1),
            &router_lan(j),
            UPSTREAM_ASN,
            &["ipv6-unicast"],
        ));
    }
    c
}

fn bgpd_config(j: usize, ns: &Netns, gr: bool) -> String {
    let me = router_lan(j);
    let mut neighbors: Vec<frr::Neighbor> = (0..NODES)
        .map(|i| frr::Neighbor {
            address: node_lan(i),
            remote_as: 4210101000 + node_id(i) as u32,
            connect_timer: Some(2),
            update_source: Some(me.clone()),
            advertisement_interval: Some(0),
            families: vec![(Afi::Ipv6, vec!["next-hop-self force".into()])],
            ..Default::default()
        })
        .collect();
    neighbors.extend((0..3).filter(|&o| o != j).map(|o| frr::Neighbor {
        address: router_lan(o),
        remote_as: UPSTREAM_ASN,
        connect_timer: Some(2),
        update_source: Some(me.clone()),
        advertisement_interval: Some(0),
        families: vec![(Afi::Ipv6, vec![])],
        ..Default::default()
    }));
    BgpdConfig {
        hostname: ns.name().to_string(),
        asn: UPSTREAM_ASN,
        router_id: format!("10.101.0.{}", 252 + j),
        timers: Some((3, 9)),
        graceful_restart_disable: !gr,
        // FRR's stale-path timer runs from the session's loss, not from
        // its return: it must cover the restart and the time kroute takes
        // to hear its Cilium again.
        graceful_restart: gr.then_some(frr::GracefulRestart {
            restart_time: RESTART_TIME,
            stalepath_time: RESTART_TIME,
        }),
        neighbors,
        ..Default::default()
    }
    .render()
}

impl Cluster {
    fn new(tag: &str, gr: Gr) -> Cluster {
        let mut lan = Lan::new(tag);
        let mut routers = Vec::new();
        for j in 0..3 {
            let ns = netns(&format!("r{}{tag}", j + 1));
            let dev = lan.attach(&ns, &[&format!("{}/64", router_lan(j))]);
            let link_local = link_local_of(&ns, &dev);
            let frr = Frr::start(&ns, &FrrSpec::new(ns.name(), bgpd_config(j, &ns, gr.frr)))
                .unwrap_or_else(|e| panic!("{e}"));
            routers.push(Router {
                frr,
                ns,
                link_local,
            });
        }
        let mut nodes = Vec::new();
        for i in 0..NODES {
            let ns = netns(&format!("n{}{tag}", i + 1));
            lan.attach(&ns, &[&format!("{}/64", node_lan(i))]);
            let pod = netns(&format!("p{}{tag}", i + 1));
            let gw = format!("fd00:101:224:{}::1", i + 1);
            veth(
                &ns,
                &pod,
                &[&format!("{gw}/64")],
                &[&format!("{}/64", pod_addr(i))],
            );
            pod.ip(&["-6", "route", "add", "default", "via", &gw])
                .unwrap_or_else(|e| panic!("{e}"));
            let kroute = Kroute::start(&ns, kroute_config(i, gr.kroute));
            let dir = test_dir(&format!("zl-{tag}-n{}", i + 1));
            let mut node = Node {
                gobgp: None,
                kroute,
                dir,
                pod,
                ns,
            };
            node.start_gobgp(i, gr.gobgp, false);
            nodes.push(node);
        }
        let c = Cluster {
            gr,
            nodes,
            routers,
            _lan: lan,
        };
        c.wait_converged("initial convergence");
        c
    }

    /// Every node's kernel has every other pod CIDR, ECMP over the three
    /// upstreams; every kroute session is Established.
    fn wait_converged(&self, what: &str) {
        wait_until(CONVERGE, what, || {
            for (i, n) in self.nodes.iter().enumerate() {
                for peer in ["cilium", "r1", "r2", "r3"] {
                    n.kroute
                        .established(peer)
                        .map_err(|e| format!("n{}: {e}", i + 1))?;
                }
                for o in (0..NODES).filter(|&o| o != i) {
                    let via = route_via(&n.ns, &pod_cidr(o)).unwrap_or_default();
                    if via.len() != 3 {
                        return Err(format!("n{}: {} via {via:?}", i + 1, pod_cidr(o)));
                    }
                }
            }
            Ok(())
        })
    }

    /// No stale path left: not in any kroute, not in any FRR.
    fn assert_nothing_stale(&self) {
        for (i, n) in self.nodes.iter().enumerate() {
            for nb in n.kroute.neighbors() {
                if let Some(gr) = nb.graceful_restart {
                    assert_eq!(
                        gr.stale_routes,
                        0,
                        "n{}: stale routes of {} left: {gr:?}",
                        i + 1,
                        nb.name
                    );
                }
            }
        }
        for (j, r) in self.routers.iter().enumerate() {
            let rib = r
                .frr
                .vtysh(&["show bgp ipv6 unicast json"])
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(
                !rib.contains("\"stale\":true"),
                "r{}: stale paths left in FRR:\n{rib}",
                j + 1
            );
        }
    }

    /// The R and F (IPv6) bits of n3's kroute as r1 (FRR) last saw them.
    fn n3_restart_bits_at_r1(&self) -> (bool, bool) {
        let v = self.routers[0]
            .frr
            .vtysh_json(&format!("show bgp neighbors {} json", node_lan(2)))
            .unwrap_or_else(|e| panic!("{e}"));
        let gr = &v[node_lan(2)]["gracefulRestartInfo"];
        let bit = |b: &serde_json::Value| {
            b.as_bool()
                .unwrap_or_else(|| panic!("FRR's gracefulRestartInfo: {gr}"))
        };
        (bit(&gr["rBit"]), bit(&gr["ipv6Unicast"]["fBit"]))
    }

    /// The upstream n1 sends the ping's echoes through.
    fn router_carrying_ping(&self) -> usize {
        let n1 = &self.nodes[0];
        let pod_dev = n1
            .ns
            .ip(&["-6", "-o", "route", "show", "fd00:101:224:1::/64"])
            .unwrap_or_else(|e| panic!("{e}"));
        let dev = pod_dev
            .split_whitespace()
            .skip_while(|w| *w != "dev")
            .nth(1)
            .expect("the pod's connected route")
            .to_string();
        let got = n1
            .ns
            .ip(&[
                "-6",
                "route",
                "get",
                &pod_addr(2),
                "from",
                &pod_addr(0),
                "iif",
                &dev,
            ])
            .unwrap_or_else(|e| panic!("{e}"));
        (0..3)
            .find(|&j| {
                got.contains(&format!("via {} ", router_lan(j)))
                    || got.contains(&format!("via {} ", self.routers[j].link_local))
            })
            .unwrap_or_else(|| panic!("no upstream in `ip route get`: {got}"))
    }
}

impl Node {
    fn start_gobgp(&mut self, i: usize, gr: bool, restarted: bool) {
        let opts = RenderOptions {
            graceful_restart: gr.then_some(RESTART_TIME),
            // Restarted, the agent adds its routes before the session
            // comes up (see `announce`).
            admin_down: restarted,
        };
        let spec = GobgpSpec {
            args: if restarted && gr {
                vec!["-r".into()]
            } else {
                vec![]
            },
            ..GobgpSpec::new(self.dir.path(), gobgp_config(i).render_with(&opts))
        };
        let g = Gobgp::start(&self.ns, &spec).unwrap_or_else(|e| panic!("{e}"));
        g.cli()
            .run(&[
                "global",
                "rib",
                "add",
                "-a",
                "ipv6",
                &pod_cidr(i),
                "origin",
                "igp",
                "nexthop",
                "::1",
            ])
            .unwrap_or_else(|e| panic!("{e}"));
        if restarted {
            g.cli()
                .run(&["neighbor", "::1", "enable"])
                .unwrap_or_else(|e| panic!("{e}"));
        }
        self.gobgp = Some(g);
    }
}

/// `ping -i 0.05` from pod 1 to pod 3 for [`PING_SECONDS`], in the
/// background; [`Ping::finish`] waits for its end and reads its counts.
struct Ping {
    child: Option<Child>,
    started: Instant,
}

impl Ping {
    fn start(c: &Cluster) -> Ping {
        let count = (PING_SECONDS * 20).to_string();
        let child = c.nodes[0]
            .pod
            .command("ping")
            .args([
                "-6",
                "-n",
                "-q",
                "-i",
                PING_INTERVAL,
                "-c",
                &count,
                "-W",
                "1",
            ])
            .arg(pod_addr(2))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("ping: {e}"));
        Ping {
            child: Some(child),
            started: Instant::now(),
        }
    }

    /// Sleep until `at` into the ping.
    fn sleep_until(&self, at: Duration) {
        if let Some(d) = at.checked_sub(self.started.elapsed()) {
            thread::sleep(d);
        }
    }

    /// (transmitted, received), once the ping has sent them all.
    fn finish(mut self) -> (u64, u64) {
        let child = self.child.take().expect("running");
        let out = child.wait_with_output().expect("ping's output");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or_else(|| panic!("no ping statistics: {text}"));
        let n = |after: &str| -> u64 {
            let words: Vec<&str> = line.split([',', ' ']).filter(|w| !w.is_empty()).collect();
            let i = words
                .iter()
                .position(|w| *w == after)
                .unwrap_or_else(|| panic!("{line}"));
            words[i - 1].parse().unwrap_or_else(|_| panic!("{line}"))
        };
        (n("packets"), n("received"))
    }
}

impl Drop for Ping {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The routes the ping needs (n1 → pod 3, n3 → pod 1, each router → pod
/// 3 and pod 1), polled every 50 ms from a thread; each change is kept
/// with its time, printed after the restart (a failure's explanation).
struct RouteLog {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<Vec<String>>>,
}

impl RouteLog {
    fn start(c: &Cluster, t0: Instant) -> RouteLog {
        let mut watched: Vec<(String, String, String)> = vec![
            ("n1".into(), c.nodes[0].ns.name().into(), pod_cidr(2)),
            ("n3".into(), c.nodes[2].ns.name().into(), pod_cidr(0)),
        ];
        for (j, r) in c.routers.iter().enumerate() {
            for p in [pod_cidr(2), pod_cidr(0)] {
                watched.push((format!("r{}", j + 1), r.ns.name().into(), p));
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = thread::spawn(move || {
            let mut last: Vec<String> = vec![String::new(); watched.len()];
            let mut log = Vec::new();
            while !s.load(Ordering::Relaxed) {
                for (k, (who, ns, prefix)) in watched.iter().enumerate() {
                    let Ok(ns) = Netns::open(ns) else { continue };
                    let now = match labkit::kernel::route_via(&ns, prefix, None) {
                        Ok(Some(via)) => {
                            let mut gws: Vec<String> = via.into_iter().map(|(g, _)| g).collect();
                            gws.sort();
                            gws.join(" ")
                        }
                        Ok(None) => "MISSING".into(),
                        Err(e) => format!("error {e}"),
                    };
                    if now != last[k] {
                        log.push(format!(
                            "[{:6.2}s] {who} {prefix}: {now}",
                            t0.elapsed().as_secs_f64()
                        ));
                        last[k] = now;
                    }
                }
                thread::sleep(Duration::from_millis(50));
            }
            log
        });
        RouteLog {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().expect("route log"))
            .unwrap_or_default()
    }
}

/// What is restarted on n3 (or upstream).
#[derive(Debug, Clone, Copy)]
enum Restart {
    GobgpKilled,
    KrouteKilled,
    KrouteTerminated,
    UpstreamKilled,
}

/// What [`restart_under_ping`] saw.
struct Outcome {
    sent: u64,
    received: u64,
    /// The [`RouteLog`].
    routes: Vec<String>,
}

/// Runs `what` under the ping.
fn restart_under_ping(c: &mut Cluster, what: Restart) -> Outcome {
    let upstream = c.router_carrying_ping();
    let gr = c.gr;
    let ping = Ping::start(c);
    let routes = RouteLog::start(c, ping.started);
    ping.sleep_until(RESTART_AT);
    let dest = 2;
    match what {
        Restart::GobgpKilled => {
            let n = &mut c.nodes[dest];
            let mut g = n.gobgp.take().expect("gobgpd running");
            g.process().kill().unwrap_or_else(|e| panic!("{e}"));
            drop(g);
            thread::sleep(DOWN_FOR);
            n.start_gobgp(dest, gr.gobgp, true);
        }
        Restart::KrouteKilled => {
            let n = &mut c.nodes[dest];
            n.kroute.kill();
            thread::sleep(DOWN_FOR);
            n.kroute.start_again(&n.ns);
        }
        Restart::KrouteTerminated => {
            let n = &mut c.nodes[dest];
            n.kroute.stop();
            // The new pod of the DaemonSet takes a moment to start.
            thread::sleep(Duration::from_secs(2));
            n.kroute.start_again(&n.ns);
        }
        Restart::UpstreamKilled => {
            let r = &mut c.routers[upstream];
            r.frr
                .daemon(Daemon::Bgpd)
                .expect("bgpd")
                .kill()
                .unwrap_or_else(|e| panic!("{e}"));
            thread::sleep(DOWN_FOR);
            r.frr
                .start_again(&r.ns, Daemon::Bgpd)
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let restarted = ping.started.elapsed();
    c.wait_converged("converged again after the restart");
    let routes = routes.finish();
    eprintln!(
        "{what:?}: restarted at {:.1} s, converged at {:.1} s into the ping; routes:\n{}",
        restarted.as_secs_f64(),
        ping.started.elapsed().as_secs_f64(),
        routes.join("\n")
    );
    // Past the stale time after the restart, with the ping still running.
    ping.sleep_until(restarted + Duration::from_secs(u64::from(STALE_TIME) + 2));
    assert!(
        ping.started.elapsed() < Duration::from_secs(PING_SECONDS),
        "the ping ended before the restart was over"
    );
    c.assert_nothing_stale();
    let (sent, received) = ping.finish();
    Outcome {
        sent,
        received,
        routes,
    }
}

fn zero_loss(tag: &str, what: Restart) {
    let mut c = Cluster::new(tag, ALL_GR);
    let kroute_restarts = matches!(what, Restart::KrouteKilled | Restart::KrouteTerminated);
    if kroute_restarts {
        // RFC 4724 §3: a first start has no forwarding state to keep.
        assert_eq!(c.n3_restart_bits_at_r1(), (false, false), "R, F at start");
    }
    let Outcome {
        sent,
        received,
        routes,
    } = restart_under_ping(&mut c, what);
    eprintln!(
        "LOSS {what:?} graceful restart on: {} of {sent} lost",
        sent - received
    );
    assert!(sent >= PING_SECONDS * 20 - 1, "{sent} sent");
    assert_eq!(
        sent - received,
        0,
        "{what:?}: {} of {sent} pings lost",
        sent - received
    );
    if kroute_restarts {
        // Restarted with its routes in the kernel: R and F set; and the
        // selection deferral left the kernel's route to pod 1 alone while
        // the sessions came back one by one.
        assert_eq!(c.n3_restart_bits_at_r1(), (true, true), "R, F on restart");
        let n3: Vec<&String> = routes.iter().filter(|l| l.contains("] n3 ")).collect();
        assert_eq!(n3.len(), 1, "n3's route to pod 1 changed: {n3:?}");
    }
    c.wait_converged("still converged at the end");
}

#[test]
fn zero_loss_cilium_restarts() {
    zero_loss("zla", Restart::GobgpKilled);
}

#[test]
fn zero_loss_kroute_killed() {
    zero_loss("zlb", Restart::KrouteKilled);
}

#[test]
fn zero_loss_kroute_rollout() {
    zero_loss("zlc", Restart::KrouteTerminated);
}

#[test]
fn zero_loss_upstream_restarts() {
    zero_loss("zld", Restart::UpstreamKilled);
}

/// Without graceful restart where `what` needs it: the routes through the
/// restarted daemon leave n1's kernel at once (polled from a thread while
/// the restart runs), and pings are lost.
fn without_graceful_restart(tag: &str, what: Restart, gr: Gr) {
    let mut c = Cluster::new(tag, gr);
    let n1 = c.nodes[0].ns.name().to_string();
    let upstream = c.router_carrying_ping();
    let upstream_gateways = [router_lan(upstream), c.routers[upstream].link_local.clone()];
    let gone = move || -> bool {
        let ns = Netns::open(&n1).unwrap_or_else(|e| panic!("{e}"));
        match route_via(&ns, &pod_cidr(2)) {
            None => true,
            // Upstream restarts: only that upstream's path goes.
            Some(via) => {
                matches!(what, Restart::UpstreamKilled)
                    && !via.iter().any(|(gw, _)| upstream_gateways.contains(gw))
            }
        }
    };
    let poll = thread::spawn(move || {
        let end = Instant::now() + RESTART_AT + DOWN_FOR + Duration::from_secs(3);
        while Instant::now() < end {
            if gone() {
                return true;
            }
            thread::sleep(Duration::from_millis(100));
        }
        false
    });
    let Outcome { sent, received, .. } = restart_under_ping(&mut c, what);
    eprintln!(
        "LOSS {what:?} graceful restart off ({gr:?}): {} of {sent} lost",
        sent - received
    );
    assert!(
        poll.join().expect("poll thread"),
        "{what:?} without graceful restart: n1 kept the route through it"
    );
    c.wait_converged("converged at the end");
}

#[test]
fn without_graceful_restart_cilium_routes_go() {
    without_graceful_restart(
        "zna",
        Restart::GobgpKilled,
        Gr {
            gobgp: false,
            ..ALL_GR
        },
    );
}

#[test]
fn without_graceful_restart_kroute_killed_routes_go() {
    without_graceful_restart(
        "znb",
        Restart::KrouteKilled,
        Gr {
            kroute: false,
            ..ALL_GR
        },
    );
}

#[test]
fn without_graceful_restart_kroute_rollout_routes_go() {
    without_graceful_restart(
        "znc",
        Restart::KrouteTerminated,
        Gr {
            kroute: false,
            ..ALL_GR
        },
    );
}

#[test]
fn without_graceful_restart_upstream_routes_go() {
    without_graceful_restart(
        "znd",
        Restart::UpstreamKilled,
        Gr {
            frr: false,
            ..ALL_GR
        },
    );
}
