//! Graceful restart (RFC 4724), kroute as the helper, against GoBGP with
//! graceful restart on: GoBGP is killed with SIGKILL, kroute keeps its
//! routes (in the kernel, polled every 100 ms) as stale; GoBGP comes back
//! (restarting, `-r`), re-announces a subset and End-of-RIB, and the rest
//! leave the kernel. Also: kroute's restart time running out, a peer
//! without graceful restart (routes go at once), FRR (`bgp
//! graceful-restart`) and BIRD (`graceful restart on`) killed, and kroute
//! itself restarting (SIGTERM, SIGKILL) with its peers keeping its routes.
//!
//! Topology: kroute in K (10.1.0.1/24), the peer in G (10.1.0.2/24), one
//! IPv4 session. Needs root, gobgpd, frr and bird2 (see `common/mod.rs`).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::kroute::{self as k, Kroute};
use common::{netns, route_via, test_dir, veth, wait_until, CONVERGE};
use kroute::config::GracefulRestartOverride;
use labkit::gobgp::{Gobgp, GobgpSpec};
use labkit::{Netns, ScratchDir};

const K_ASN: u32 = 65001;
const G_ASN: u32 = 65002;
const K_ADDR: &str = "10.1.0.1";
const G_ADDR: &str = "10.1.0.2";
const PEER: &str = "gobgp";
/// Re-announced after the restart.
const KEPT: [&str; 2] = ["10.100.1.0/24", "10.100.2.0/24"];
/// Not re-announced: removed at End-of-RIB.
const GONE: &str = "10.100.3.0/24";
/// GoBGP's advertised restart time.
const G_RESTART_TIME: u16 = 60;

struct Lab {
    // Drop order: daemons, then directories, then namespaces.
    gobgp: Option<Gobgp>,
    kroute: Kroute,
    dir: ScratchDir,
    g_ns: Netns,
    k_ns: Netns,
}

/// gobgpd.toml: one neighbor (kroute), IPv4, short timers; with `gr`,
/// graceful restart on for the neighbor and the family. `admin_down`
/// keeps the session down until `gobgp neighbor ... enable` (so routes can
/// be added first).
fn gobgp_config(gr: bool, admin_down: bool) -> String {
    gobgp_config_at(K_ADDR, G_ADDR, gr, admin_down)
}

/// [`gobgp_config`] for a GoBGP at `g_addr` peering with kroute at `k_addr`.
fn gobgp_config_at(k_addr: &str, g_addr: &str, gr: bool, admin_down: bool) -> String {
    let mut t = format!(
        "[global.config]\n  as = {G_ASN}\n  router-id = \"{g_addr}\"\n  port = 179\n\
         [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{k_addr}\"\n    peer-as = {K_ASN}\n"
    );
    if admin_down {
        t += "    admin-down = true\n";
    }
    t += &format!(
        "  [neighbors.transport.config]\n    local-address = \"{g_addr}\"\n\
         [neighbors.timers.config]\n    connect-retry = 2\n    hold-time = 9\n    keepalive-interval = 3\n"
    );
    if gr {
        t += &format!(
            "  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = {G_RESTART_TIME}\n"
        );
    }
    t += "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv4-unicast\"\n";
    if gr {
        t += "    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n";
    }
    t
}

impl Lab {
    fn new(tag: &str, gr: bool, tweak: impl FnOnce(&mut kroute::config::Config)) -> Lab {
        let k_ns = netns(&format!("k{tag}"));
        let g_ns = netns(&format!("g{tag}"));
        veth(
            &k_ns,
            &g_ns,
            &[&format!("{K_ADDR}/24")],
            &[&format!("{G_ADDR}/24")],
        );
        let mut cfg = k::config(K_ASN, "10.255.0.1");
        cfg.router.hold_time = 9;
        cfg.router.connect_retry = 2;
        cfg.peers
            .push(k::peer(PEER, G_ADDR, G_ASN, &["ipv4-unicast"]));
        tweak(&mut cfg);
        let kroute = Kroute::start(&k_ns, cfg);
        let dir = test_dir(&format!("gr-{tag}"));
        let mut lab = Lab {
            gobgp: None,
            kroute,
            dir,
            g_ns,
            k_ns,
        };
        lab.start_gobgp(gr, false, &[]);
        lab
    }

    fn start_gobgp(&mut self, gr: bool, admin_down: bool, args: &[&str]) {
        let spec = GobgpSpec {
            args: args.iter().map(|s| s.to_string()).collect(),
            ..GobgpSpec::new(self.dir.path(), gobgp_config(gr, admin_down))
        };
        self.gobgp = Some(Gobgp::start(&self.g_ns, &spec).unwrap_or_else(|e| panic!("{e}")));
    }

    fn gobgp(&self, args: &[&str]) -> String {
        self.gobgp
            .as_ref()
            .expect("gobgpd running")
            .cli()
            .run(args)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn announce(&self, prefix: &str) {
        self.gobgp(&["global", "rib", "add", "-a", "ipv4", prefix]);
    }

    fn kill_gobgp(&mut self) {
        let mut g = self.gobgp.take().expect("gobgpd running");
        g.process().kill().unwrap_or_else(|e| panic!("{e}"));
    }

    fn wait_in_kernel(&self, prefix: &str) {
        wait_until(
            CONVERGE,
            &format!("{prefix} in kroute's kernel"),
            || match route_via(&self.k_ns, prefix) {
                Some(nhs) if nhs.iter().any(|(gw, _)| gw == G_ADDR) => Ok(()),
                other => Err(format!("{other:?}")),
            },
        )
    }

    fn wait_session_down(&self) {
        wait_until(
            CONVERGE,
            "kroute's session to leave Established",
            || match self.kroute.established(PEER) {
                Ok(()) => Err("still Established".into()),
                Err(_) => Ok(()),
            },
        )
    }
}

/// Polls every 100 ms in a thread what must never be missing: `missing`
/// returns the names of what is missing at the moment; every miss is kept
/// with its instant.
struct Watch {
    stop: Arc<AtomicBool>,
    misses: Arc<Mutex<Vec<(String, Instant)>>>,
    polls: Arc<Mutex<usize>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watch {
    fn start(missing: impl Fn() -> Vec<String> + Send + 'static) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let misses = Arc::new(Mutex::new(Vec::new()));
        let polls = Arc::new(Mutex::new(0));
        let (s, m, n) = (stop.clone(), misses.clone(), polls.clone());
        let thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let now = Instant::now();
                m.lock()
                    .unwrap()
                    .extend(missing().into_iter().map(|p| (p, now)));
                *n.lock().unwrap() += 1;
                thread::sleep(Duration::from_millis(100));
            }
        });
        Watch {
            stop,
            misses,
            polls,
            thread: Some(thread),
        }
    }

    /// kroute's kernel routes for `prefixes` (any next hop).
    fn kernel(ns: &Netns, prefixes: &[&str]) -> Watch {
        let ns_name = ns.name().to_string();
        let prefixes: Vec<String> = prefixes.iter().map(|s| s.to_string()).collect();
        Watch::start(move || {
            let ns = Netns::open(&ns_name).unwrap_or_else(|e| panic!("{e}"));
            prefixes
                .iter()
                .filter(|p| route_via(&ns, p).is_none())
                .cloned()
                .collect()
        })
    }

    /// Stops polling; returns the misses and the number of polls.
    fn finish(mut self) -> (Vec<(String, Instant)>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("watch thread");
        }
        let misses = self.misses.lock().unwrap().clone();
        let polls = *self.polls.lock().unwrap();
        (misses, polls)
    }
}

#[test]
fn killed_gobgp_keeps_its_routes_until_end_of_rib() {
    let mut lab = Lab::new("grk", true, |c| {
        c.router.graceful_restart.enabled = true;
    });
    for p in KEPT.iter().chain([&GONE]) {
        lab.announce(p);
    }
    for p in KEPT.iter().chain([&GONE]) {
        lab.wait_in_kernel(p);
    }
    let n = lab.kroute.neighbor(PEER).expect("neighbor");
    let gr = n
        .graceful_restart
        .expect("GoBGP's GR capability in show neighbors");
    assert_eq!(gr.restart_time, G_RESTART_TIME);
    assert_eq!(gr.families.len(), 1, "{gr:?}");
    assert_eq!(gr.stale_routes, 0);

    let all: Vec<&str> = KEPT.iter().copied().chain([GONE]).collect();
    let watch = Watch::kernel(&lab.k_ns, &all);
    lab.kill_gobgp();
    lab.wait_session_down();
    // Down, routes kept and marked stale.
    thread::sleep(Duration::from_secs(2));
    let n = lab.kroute.neighbor(PEER).unwrap();
    let gr = n.graceful_restart.expect("GR view while restarting");
    assert_eq!(gr.stale_routes, 3, "{gr:?}");
    assert!(
        gr.stale
            .as_deref()
            .is_some_and(|s| s.starts_with("peer restarting")),
        "{gr:?}"
    );
    let r = lab.kroute.routes(GONE);
    assert!(
        r.iter().any(|r| r
            .stale
            .as_deref()
            .is_some_and(|s| s.contains("peer restarting") && s.contains("s left"))),
        "show routes {GONE}: {r:?}"
    );
    let text = lab.kroute.explain_text(GONE);
    assert!(text.contains("stale (peer restarting,"), "{text}");

    // Back, restarting (R and F bits), re-announcing only KEPT.
    let restarted_at = Instant::now();
    lab.start_gobgp(true, true, &["-r"]);
    for p in KEPT {
        lab.announce(p);
    }
    lab.gobgp(&["neighbor", K_ADDR, "enable"]);
    wait_until(CONVERGE, "kroute's session Established again", || {
        lab.kroute.established(PEER)
    });
    common::kernel::wait_absent(&lab.k_ns, GONE);
    let removed_at = Instant::now();
    thread::sleep(Duration::from_millis(500));
    let (misses, polls) = watch.finish();
    assert!(polls > 20, "only {polls} kernel polls");
    for p in KEPT {
        let m: Vec<_> = misses.iter().filter(|(q, _)| q == p).collect();
        assert!(
            m.is_empty(),
            "{p} was missing from kroute's kernel {} times over the restart",
            m.len()
        );
        lab.wait_in_kernel(p);
    }
    let early: Vec<_> = misses
        .iter()
        .filter(|(q, t)| q == GONE && *t < restarted_at)
        .collect();
    assert!(
        early.is_empty(),
        "{GONE} left the kernel while GoBGP was down ({} polls)",
        early.len()
    );
    assert!(removed_at > restarted_at);
    let gr = lab.kroute.neighbor(PEER).unwrap().graceful_restart.unwrap();
    assert!(gr.restarting, "GoBGP -r sets the R bit: {gr:?}");
    // The wait ends at End-of-RIB (next 1 s tick at the latest).
    wait_until(Duration::from_secs(5), "no stale routes left", || {
        let gr = lab.kroute.neighbor(PEER).unwrap().graceful_restart.unwrap();
        if gr.stale_routes == 0 && gr.stale.is_none() {
            Ok(())
        } else {
            Err(format!("{gr:?}"))
        }
    });
}

#[test]
fn stale_routes_go_when_the_restart_time_runs_out() {
    let mut lab = Lab::new("grt", true, |c| {
        c.peers[0].graceful_restart = Some(GracefulRestartOverride {
            restart_time: Some(3),
            ..Default::default()
        });
    });
    lab.announce(GONE);
    lab.wait_in_kernel(GONE);
    lab.kill_gobgp();
    lab.wait_session_down();
    let down_at = Instant::now();
    thread::sleep(Duration::from_secs(1));
    assert!(
        route_via(&lab.k_ns, GONE).is_some(),
        "{GONE} gone before the restart time (3 s, lower than GoBGP's {G_RESTART_TIME})"
    );
    common::kernel::wait_absent(&lab.k_ns, GONE);
    let after = down_at.elapsed();
    assert!(
        after >= Duration::from_secs(2) && after < Duration::from_secs(10),
        "removed {after:?} after the session loss (restart time 3 s)"
    );
    assert!(lab.kroute.routes(GONE).is_empty());
}

#[test]
fn without_graceful_restart_the_routes_go_at_once() {
    let mut lab = Lab::new("grn", false, |c| {
        c.router.graceful_restart.enabled = true;
    });
    lab.announce(GONE);
    lab.wait_in_kernel(GONE);
    assert!(lab
        .kroute
        .neighbor(PEER)
        .unwrap()
        .graceful_restart
        .is_none());
    lab.kill_gobgp();
    let killed = Instant::now();
    common::kernel::wait_absent(&lab.k_ns, GONE);
    // TCP closes with the process: well before any restart time.
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "{:?}",
        killed.elapsed()
    );
}

/// What kroute advertises, in GoBGP's RIB.
const ADV: &str = "192.0.2.0/24";

/// kroute restarting with graceful restart on (SIGTERM: the rollout; then
/// SIGKILL: a crash): GoBGP keeps kroute's route (no Cease, RFC 4724
/// §4.1) and kroute's kernel keeps GoBGP's, every 100 ms poll, on both
/// sides, over both restarts.
#[test]
fn restarting_kroute_loses_no_route_on_either_side() {
    let mut lab = Lab::new("grr", true, |c| {
        c.router.graceful_restart.enabled = true;
        c.advertise = k::advertise(&[ADV]);
    });
    lab.announce(GONE);
    lab.wait_in_kernel(GONE);
    let cli = lab.gobgp.as_ref().unwrap().cli().clone();
    let in_gobgp = move || -> Vec<String> {
        match cli.run(&["global", "rib", "-a", "ipv4", ADV]) {
            Ok(text) if text.contains(ADV) => vec![],
            _ => vec![format!("{ADV} in GoBGP")],
        }
    };
    wait_until(CONVERGE, "kroute's route in GoBGP", || {
        let m = in_gobgp();
        if m.is_empty() {
            Ok(())
        } else {
            Err(format!("{m:?}"))
        }
    });
    let n = lab.kroute.neighbor(PEER).unwrap();
    assert!(n.graceful_restart.is_some(), "{n:?}");

    let kernel = Watch::kernel(&lab.k_ns, &[GONE]);
    let peer_side = Watch::start(in_gobgp);
    for (how, sig) in [("SIGTERM", libc::SIGTERM), ("SIGKILL", libc::SIGKILL)] {
        if sig == libc::SIGTERM {
            lab.kroute.stop();
        } else {
            lab.kroute.kill();
        }
        thread::sleep(Duration::from_secs(2));
        assert!(
            route_via(&lab.k_ns, GONE).is_some(),
            "after {how}, kroute's kernel route {GONE} is gone"
        );
        let k_ns = lab.k_ns.name().to_string();
        lab.kroute
            .start_again(&Netns::open(&k_ns).unwrap_or_else(|e| panic!("{e}")));
        wait_until(CONVERGE, "kroute's session Established again", || {
            lab.kroute.established(PEER)
        });
        // Past the End-of-RIB exchange (ours waits for the initial
        // convergence) and GoBGP's removal of what we did not re-send.
        thread::sleep(Duration::from_secs(3));
        let log = lab.kroute.log_tails(400);
        assert!(
            log.contains("closing the session without a NOTIFICATION") || sig == libc::SIGKILL,
            "{log}"
        );
    }
    let (k_misses, k_polls) = kernel.finish();
    let (p_misses, p_polls) = peer_side.finish();
    assert!(k_polls > 40 && p_polls > 20, "{k_polls} / {p_polls} polls");
    assert!(
        k_misses.is_empty(),
        "{GONE} missing from kroute's kernel {} times",
        k_misses.len()
    );
    assert!(
        p_misses.is_empty(),
        "{ADV} missing from GoBGP's RIB {} times",
        p_misses.len()
    );
}

/// A route kroute learns from one peer (GoBGP B, no graceful restart) and
/// passes to a graceful restart peer (GoBGP A) stays in A's RIB while
/// kroute restarts, even when B comes back 5 s after A: kroute's
/// End-of-RIB to A waits until it has heard B's routes again (RFC 4724
/// §4.1), so A never drops the route as stale. (B is held off by a
/// blackhole route towards kroute in B's namespace.)
#[test]
fn routes_kroute_passes_on_survive_its_restart() {
    const TRANSIT: &str = "10.200.0.0/24";
    let k_ns = netns("kgrx");
    let a_ns = netns("agrx");
    let b_ns = netns("bgrx");
    veth(&k_ns, &a_ns, &["10.1.0.1/24"], &["10.1.0.2/24"]);
    veth(&k_ns, &b_ns, &["10.2.0.1/24"], &["10.2.0.2/24"]);
    let mut cfg = k::config(K_ASN, "10.255.0.1");
    cfg.router.hold_time = 9;
    cfg.router.connect_retry = 2;
    cfg.router.graceful_restart.enabled = true;
    cfg.peers
        .push(k::peer("a", "10.1.0.2", G_ASN, &["ipv4-unicast"]));
    cfg.peers
        .push(k::peer("b", "10.2.0.2", G_ASN + 1, &["ipv4-unicast"]));
    let mut kroute = Kroute::start(&k_ns, cfg);
    let dir = test_dir("gr-grx");
    let start = |ns: &Netns, sub: &str, conf: String| {
        let d = dir.path().join(sub);
        std::fs::create_dir_all(&d).unwrap();
        Gobgp::start(ns, &GobgpSpec::new(&d, conf)).unwrap_or_else(|e| panic!("{e}"))
    };
    let a = start(
        &a_ns,
        "a",
        gobgp_config_at("10.1.0.1", "10.1.0.2", true, false),
    );
    let b_conf = gobgp_config_at("10.2.0.1", "10.2.0.2", false, false)
        .replace(&format!("as = {G_ASN}"), &format!("as = {}", G_ASN + 1));
    let b = start(&b_ns, "b", b_conf);
    b.cli()
        .run(&["global", "rib", "add", "-a", "ipv4", TRANSIT])
        .unwrap_or_else(|e| panic!("{e}"));
    let cli = a.cli().clone();
    let in_a = move || -> Vec<String> {
        match cli.run(&["global", "rib", "-a", "ipv4", TRANSIT]) {
            Ok(text) if text.contains(TRANSIT) => vec![],
            _ => vec![TRANSIT.to_string()],
        }
    };
    wait_until(CONVERGE, "the transit route in GoBGP A", || {
        let m = in_a();
        if m.is_empty() {
            Ok(())
        } else {
            Err(format!("{m:?}"))
        }
    });
    let watch = Watch::start(in_a);
    kroute.stop();
    let hold_off = ["route", "add", "blackhole", "10.2.0.1/32"];
    b_ns.ip(&hold_off).unwrap_or_else(|e| panic!("{e}"));
    thread::sleep(Duration::from_secs(1));
    kroute.start_again(&k_ns);
    wait_until(CONVERGE, "kroute's session a again", || {
        kroute.established("a")
    });
    thread::sleep(Duration::from_secs(5));
    b_ns.ip(&["route", "del", "blackhole", "10.2.0.1/32"])
        .unwrap_or_else(|e| panic!("{e}"));
    for peer in ["a", "b"] {
        wait_until(CONVERGE, &format!("kroute's session {peer} again"), || {
            kroute.established(peer)
        });
    }
    wait_until(CONVERGE, "kroute's End-of-RIB after convergence", || {
        if kroute
            .log_tails(400)
            .contains("initial convergence: sending End-of-RIB")
        {
            Ok(())
        } else {
            Err("not yet".into())
        }
    });
    thread::sleep(Duration::from_secs(2));
    let (misses, polls) = watch.finish();
    assert!(polls > 20, "{polls} polls");
    assert!(
        misses.is_empty(),
        "{TRANSIT} missing from GoBGP A {} times over kroute's restart",
        misses.len()
    );
    drop((a, b));
}

/// kroute with one peer at `G_ADDR` in a fresh pair of namespaces; the
/// caller starts the peer daemon in `g_ns`.
fn kroute_with_peer(tag: &str) -> (Kroute, Netns, Netns) {
    let k_ns = netns(&format!("k{tag}"));
    let g_ns = netns(&format!("p{tag}"));
    veth(
        &k_ns,
        &g_ns,
        &[&format!("{K_ADDR}/24")],
        &[&format!("{G_ADDR}/24")],
    );
    let mut cfg = k::config(K_ASN, "10.255.0.1");
    cfg.router.hold_time = 9;
    cfg.router.connect_retry = 2;
    cfg.peers
        .push(k::peer(PEER, G_ADDR, G_ASN, &["ipv4-unicast"]));
    let kroute = Kroute::start(&k_ns, cfg);
    (kroute, g_ns, k_ns)
}

fn wait_kernel(ns: &Netns, prefix: &str) {
    wait_until(CONVERGE, &format!("{prefix} in kroute's kernel"), || {
        route_via(ns, prefix)
            .map(|_| ())
            .ok_or_else(|| "absent".to_string())
    })
}

fn wait_down(kroute: &Kroute) {
    wait_until(
        CONVERGE,
        "kroute's session to leave Established",
        || match kroute.established(PEER) {
            Ok(()) => Err("still Established".into()),
            Err(_) => Ok(()),
        },
    )
}

/// FRR with `bgp graceful-restart` (restart time 5 s): its bgpd is killed;
/// kroute keeps the route for FRR's restart time (lower than ours), then
/// removes it.
#[test]
fn frr_killed_routes_stay_for_its_restart_time() {
    use labkit::frr::{BgpdConfig, Daemon, Frr, FrrSpec, Neighbor};
    let (kroute, g_ns, k_ns) = kroute_with_peer("grf");
    let conf = BgpdConfig {
        hostname: g_ns.name().to_string(),
        asn: G_ASN,
        router_id: G_ADDR.into(),
        timers: Some((3, 9)),
        graceful_restart_disable: false,
        neighbors: vec![Neighbor {
            address: K_ADDR.into(),
            remote_as: K_ASN,
            connect_timer: Some(2),
            update_source: Some(G_ADDR.into()),
            advertisement_interval: Some(0),
            families: vec![(labkit::Afi::Ipv4, vec![])],
            ..Default::default()
        }],
        ..Default::default()
    }
    .render()
    .replacen(
        &format!(" bgp router-id {G_ADDR}\n"),
        &format!(
            " bgp router-id {G_ADDR}\n bgp graceful-restart\n bgp graceful-restart restart-time 5\n"
        ),
        1,
    )
    .replacen(
        " address-family ipv4 unicast\n",
        &format!(" address-family ipv4 unicast\n  network {GONE}\n"),
        1,
    );
    let mut frr =
        Frr::start(&g_ns, &FrrSpec::new(g_ns.name(), conf)).unwrap_or_else(|e| panic!("{e}"));
    wait_kernel(&k_ns, GONE);
    let gr = kroute
        .neighbor(PEER)
        .unwrap()
        .graceful_restart
        .expect("FRR's GR capability");
    assert_eq!(gr.restart_time, 5, "{gr:?}");
    assert_eq!(gr.families.len(), 1, "{gr:?}");

    frr.daemon(Daemon::Bgpd)
        .expect("bgpd")
        .kill()
        .unwrap_or_else(|e| panic!("{e}"));
    wait_down(&kroute);
    let down_at = Instant::now();
    thread::sleep(Duration::from_secs(2));
    assert!(
        route_via(&k_ns, GONE).is_some(),
        "{GONE} gone within FRR's restart time"
    );
    let gr = kroute.neighbor(PEER).unwrap().graceful_restart.unwrap();
    assert_eq!(gr.stale_routes, 1, "{gr:?}");
    common::kernel::wait_absent(&k_ns, GONE);
    let after = down_at.elapsed();
    assert!(
        after >= Duration::from_secs(3) && after < Duration::from_secs(12),
        "removed {after:?} after the loss (FRR's restart time 5 s)"
    );
    drop(frr);
}

/// BIRD with `graceful restart on`: killed with SIGKILL, kroute keeps its
/// routes while it is down; BIRD starts again in graceful restart recovery
/// (`bird -R`: R and F bits) announcing a subset: what it still announces
/// never leaves the kernel (kept stale until re-sent), what it no longer
/// announces leaves at its End-of-RIB (RFC 4724 §4.2).
#[test]
fn bird_killed_routes_stay_until_it_is_back() {
    use labkit::bird::{
        BgpProtocol, Bird, BirdConfig, BirdSpec, Channel, StaticProtocol, StaticRoute,
    };
    let (kroute, g_ns, k_ns) = kroute_with_peer("grb");
    let dir = test_dir("gr-bird");
    let conf = |prefixes: &[&str]| {
        BirdConfig {
            router_id: G_ADDR.into(),
            statics: vec![StaticProtocol {
                name: "s4".into(),
                afi: labkit::Afi::Ipv4,
                routes: prefixes
                    .iter()
                    .map(|p| StaticRoute {
                        prefix: p.to_string(),
                        attrs: vec![],
                    })
                    .collect(),
            }],
            bgp: vec![BgpProtocol {
                name: "kroute".into(),
                local_address: G_ADDR.into(),
                local_as: G_ASN,
                neighbor_address: K_ADDR.into(),
                neighbor_as: K_ASN,
                options: vec![
                    "hold time 9;".into(),
                    "connect retry time 2;".into(),
                    "graceful restart on;".into(),
                ],
                channels: vec![Channel::all(labkit::Afi::Ipv4)],
            }],
            ..Default::default()
        }
        .render()
    };
    let all: Vec<&str> = KEPT.iter().copied().chain([GONE]).collect();
    let mut bird = Bird::start(&g_ns, &BirdSpec::new(dir.path(), conf(&all)))
        .unwrap_or_else(|e| panic!("{e}"));
    for p in &all {
        wait_kernel(&k_ns, p);
    }
    let gr = kroute
        .neighbor(PEER)
        .unwrap()
        .graceful_restart
        .expect("BIRD's GR capability");
    assert_eq!(gr.families.len(), 1, "{gr:?}");

    let watch = Watch::kernel(&k_ns, &all);
    bird.process().kill().unwrap_or_else(|e| panic!("{e}"));
    drop(bird);
    wait_down(&kroute);
    thread::sleep(Duration::from_secs(2));
    let gr = kroute.neighbor(PEER).unwrap().graceful_restart.unwrap();
    assert_eq!(gr.stale_routes, 3, "{gr:?}");
    let back_at = Instant::now();
    let bird = Bird::start(
        &g_ns,
        &BirdSpec {
            recovery: true,
            ..BirdSpec::new(dir.path(), conf(&KEPT))
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    wait_until(CONVERGE, "kroute's session Established again", || {
        kroute.established(PEER)
    });
    common::kernel::wait_absent(&k_ns, GONE);
    for p in KEPT {
        wait_kernel(&k_ns, p);
    }
    let gr = kroute.neighbor(PEER).unwrap().graceful_restart.unwrap();
    assert!(gr.restarting, "bird -R sets the R bit: {gr:?}");
    assert!(!gr.forwarding_preserved.is_empty(), "and F: {gr:?}");
    let (misses, _) = watch.finish();
    let early: Vec<_> = misses.iter().filter(|(_, t)| *t < back_at).collect();
    assert!(
        early.is_empty(),
        "routes left kroute's kernel while BIRD was down: {early:?}"
    );
    let kept: Vec<_> = misses.iter().filter(|(p, _)| p != GONE).collect();
    assert!(
        kept.is_empty(),
        "routes BIRD re-announced went missing over its restart: {kept:?}"
    );
    drop(bird);
}

/// The selection deferral (RFC 4724 §4.1): an ECMP route over two GoBGP
/// peers stays in kroute's kernel exactly as the previous run left it
/// (both next hops, polled every 50 ms) while kroute restarts after
/// SIGKILL and only one peer is back: the RIB's one-path result is held
/// until the other peer's End-of-RIB. (B is held off by a blackhole route
/// towards kroute in B's namespace.) Without the deferral the route would
/// shrink to A's next hop for as long as B is away.
#[test]
fn ecmp_route_untouched_until_every_peer_is_back() {
    const ECMP: &str = "10.201.0.0/24";
    let k_ns = netns("kgre");
    let a_ns = netns("agre");
    let b_ns = netns("bgre");
    veth(&k_ns, &a_ns, &["10.1.0.1/24"], &["10.1.0.2/24"]);
    veth(&k_ns, &b_ns, &["10.2.0.1/24"], &["10.2.0.2/24"]);
    let mut cfg = k::config(K_ASN, "10.255.0.1");
    cfg.router.hold_time = 9;
    cfg.router.connect_retry = 2;
    cfg.router.multipath_relax = true;
    cfg.router.graceful_restart.enabled = true;
    cfg.peers
        .push(k::peer("a", "10.1.0.2", G_ASN, &["ipv4-unicast"]));
    cfg.peers
        .push(k::peer("b", "10.2.0.2", G_ASN + 1, &["ipv4-unicast"]));
    let mut kroute = Kroute::start(&k_ns, cfg);
    let dir = test_dir("gr-gre");
    let start = |ns: &Netns, sub: &str, conf: String| {
        let d = dir.path().join(sub);
        std::fs::create_dir_all(&d).unwrap();
        Gobgp::start(ns, &GobgpSpec::new(&d, conf)).unwrap_or_else(|e| panic!("{e}"))
    };
    let a = start(
        &a_ns,
        "a",
        gobgp_config_at("10.1.0.1", "10.1.0.2", true, false),
    );
    let b_conf = gobgp_config_at("10.2.0.1", "10.2.0.2", true, false)
        .replace(&format!("as = {G_ASN}"), &format!("as = {}", G_ASN + 1));
    let b = start(&b_ns, "b", b_conf);
    for g in [&a, &b] {
        g.cli()
            .run(&["global", "rib", "add", "-a", "ipv4", ECMP])
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let both = |ns: &Netns| -> Result<(), String> {
        let mut gws: Vec<String> = route_via(ns, ECMP)
            .unwrap_or_default()
            .into_iter()
            .map(|(gw, _)| gw)
            .collect();
        gws.sort();
        if gws == ["10.1.0.2", "10.2.0.2"] {
            Ok(())
        } else {
            Err(format!("{ECMP} via {gws:?}"))
        }
    };
    wait_until(CONVERGE, "the ECMP route over A and B", || both(&k_ns));

    let ns_name = k_ns.name().to_string();
    let watch = Watch::start(move || {
        let ns = Netns::open(&ns_name).unwrap_or_else(|e| panic!("{e}"));
        both(&ns).err().into_iter().collect()
    });
    kroute.kill();
    let hold_off = ["route", "add", "blackhole", "10.2.0.1/32"];
    b_ns.ip(&hold_off).unwrap_or_else(|e| panic!("{e}"));
    thread::sleep(Duration::from_secs(1));
    kroute.start_again(&k_ns);
    wait_until(CONVERGE, "kroute's session a again", || {
        kroute.established("a")
    });
    // A is back and has sent its End-of-RIB; B is not: the route is still
    // the previous run's, over both.
    thread::sleep(Duration::from_secs(4));
    both(&k_ns).unwrap_or_else(|e| panic!("while B is away: {e}"));
    assert!(
        !kroute.log_tails(400).contains("selection deferral over"),
        "the deferral ended without B"
    );
    b_ns.ip(&["route", "del", "blackhole", "10.2.0.1/32"])
        .unwrap_or_else(|e| panic!("{e}"));
    wait_until(CONVERGE, "kroute's session b again", || {
        kroute.established("b")
    });
    wait_until(CONVERGE, "the selection deferral to end", || {
        if kroute.log_tails(400).contains("selection deferral over") {
            Ok(())
        } else {
            Err("not yet".into())
        }
    });
    thread::sleep(Duration::from_secs(2));
    let (misses, polls) = watch.finish();
    assert!(polls > 40, "{polls} polls");
    assert!(
        misses.is_empty(),
        "the route changed over kroute's restart ({} polls of {polls}), first: {:?}",
        misses.len(),
        misses.first()
    );
    both(&k_ns).unwrap_or_else(|e| panic!("{e}"));
    drop((a, b));
}
