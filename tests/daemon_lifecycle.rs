//! Daemon-level behaviour of kroute against a real BIRD 2 peer and the real
//! kernel: clean exit, keepOnExit, restart without blackhole, link down,
//! SIGHUP reload, bad reload, TCP-MD5, a 2-octet-AS peer, RFC 8212 and
//! interface addresses advertised as they come and go.
//!
//! Topology (one per test): kroute in namespace K (10.1.0.1/24), BIRD in its
//! own namespace (10.1.0.2/24), one veth between them, one IPv4 session.
//! Needs root and `bird2` (see `common/mod.rs`).

mod common;

use common::bird::Bird;
use common::kroute::{self as k, Kroute};
use common::peer::{describe_rib, PeerDaemon, PeerNeighbor, PeerSpec};
use common::scenarios::{ADV4, C4, KROUTE_ASN, LOOP4, P4, PEER_ASN, V4};
use common::{kernel, netns, route_via, test_dir, veth, wait_until, CONVERGE};
use kroute::api::NeighborView;
use kroute::config::{Advertise, Config};
use labkit::{Netns, Process, ScratchDir, Spawn};
use rib::policy::PolicyChain;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const K4: &str = "10.1.0.1";
const B4: &str = "10.1.0.2";
/// kroute's name for the BIRD peer.
const PEER: &str = "bird";

/// kroute and one BIRD peer. Field order is drop order: daemons first.
struct Pair {
    kroute: Kroute,
    bird: Bird,
    /// Kept for its lifetime (dropped after the daemons).
    _b_ns: Netns,
    k_ns: Netns,
    k_dev: String,
}

struct PairOpts {
    kroute_asn: u32,
    /// The ASN BIRD is told kroute has (23456 for a 2-octet BIRD).
    bird_sees_asn: u32,
    /// Raw options in BIRD's protocol block for kroute.
    bird_extra: String,
}

impl Default for PairOpts {
    fn default() -> Self {
        PairOpts {
            kroute_asn: KROUTE_ASN,
            bird_sees_asn: KROUTE_ASN,
            bird_extra: String::new(),
        }
    }
}

impl Pair {
    fn new(tag: &str, opts: PairOpts, tweak: impl FnOnce(&mut Config)) -> Pair {
        let k_ns = netns(&format!("k{tag}"));
        let b_ns = netns(&format!("b{tag}"));
        let v = veth(&k_ns, &b_ns, &[&format!("{K4}/24")], &[&format!("{B4}/24")]);
        let mut cfg = k::config(opts.kroute_asn, "10.255.0.1");
        cfg.peers.push(k::peer(PEER, B4, PEER_ASN, &[V4]));
        tweak(&mut cfg);
        let kroute = Kroute::start(&k_ns, cfg);
        let spec = PeerSpec {
            asn: PEER_ASN,
            router_id: B4.into(),
            neighbors: vec![PeerNeighbor::new(K4, B4, opts.bird_sees_asn, &[V4])],
            install_kernel: false,
        };
        let extra: Vec<(&str, &str)> = if opts.bird_extra.is_empty() {
            Vec::new()
        } else {
            vec![(K4, opts.bird_extra.as_str())]
        };
        let bird = Bird::start_with(&b_ns, spec, &extra);
        Pair {
            kroute,
            bird,
            _b_ns: b_ns,
            k_ns,
            k_dev: v.dev_a,
        }
    }

    fn wait_established(&self) {
        wait_until(CONVERGE, "session Established on both sides", || {
            self.kroute.established(PEER)?;
            self.bird.session_state(K4)
        });
    }

    /// Wait until kroute's kernel routes `prefix` via BIRD on the veth.
    fn wait_kernel(&self, prefix: &str) {
        wait_until(
            CONVERGE,
            &format!("{prefix} in kroute's kernel via {B4}"),
            || match route_via(&self.k_ns, prefix) {
                Some(nhs) if nhs == [(B4.to_string(), self.k_dev.clone())] => Ok(()),
                other => Err(format!(
                    "{prefix}: {other:?}; kernel: {}",
                    kernel::describe(&self.k_ns)
                )),
            },
        );
    }

    fn wait_kernel_absent(&self, prefix: &str) {
        kernel::wait_absent(&self.k_ns, prefix);
    }

    /// Wait until BIRD has `prefix` from kroute; returns its AS path.
    fn wait_bird_has(&self, prefix: &str) -> Vec<u32> {
        wait_until(CONVERGE, &format!("{prefix} in BIRD's RIB"), || {
            let rib = self.bird.rib();
            rib.iter()
                .find(|r| r.prefix == prefix && r.next_hops.iter().any(|nh| nh == K4))
                .map(|r| r.as_path.clone())
                .ok_or_else(|| describe_rib(&rib))
        })
    }

    /// All `proto bgp` routes in kroute's namespace (both families).
    fn bgp_routes(&self) -> Vec<kernel::KernelRoute> {
        let mut v = kernel::kernel_routes(&self.k_ns, 4);
        v.extend(kernel::kernel_routes(&self.k_ns, 6));
        v
    }

    fn neighbor(&self) -> NeighborView {
        self.kroute
            .neighbor(PEER)
            .unwrap_or_else(|| panic!("kroute has no neighbor {PEER}"))
    }
}

/// Sets the flag when dropped, so a polling thread stops also on a panic.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn assert_clean_exit(status: Option<std::process::ExitStatus>, k: &Kroute) {
    let status = status.expect("kroute was not running");
    assert!(
        status.success(),
        "kroute did not exit cleanly on SIGTERM (status {status}; \"signal: 9\" means it \
         ignored SIGTERM and was killed):\n{}",
        k.log_tails(30)
    );
}

// ------------------------------------------------------------------ tests

#[test]
fn clean_exit_withdraws_routes() {
    let mut t = Pair::new("exit", PairOpts::default(), |c| {
        c.advertise = k::advertise(&[ADV4])
    });
    t.bird.announce(P4);
    t.bird.announce(C4);
    t.wait_established();
    t.wait_kernel(P4);
    t.wait_kernel(C4);
    t.wait_bird_has(ADV4);

    let status = t.kroute.stop_status(Duration::from_secs(10));
    assert_clean_exit(status, &t.kroute);
    // kroute has exited: whatever is in the kernel now stays there.
    let left = t.bgp_routes();
    assert!(
        left.is_empty(),
        "kroute exited but left proto bgp routes in the kernel: {left:?}\n{}",
        t.kroute.log_tails(20)
    );

    // BIRD saw an administrative shutdown, not a hold timer expiry or a
    // dropped connection.
    wait_until(
        CONVERGE,
        "BIRD to report the session down with an administrative shutdown",
        || {
            let all = t.bird.protocol_all(K4);
            if t.bird.session_state(K4).is_ok() {
                return Err(format!("still Established:\n{all}"));
            }
            if all.contains("Administrative shutdown")
                || t.bird.log().contains("Administrative shutdown")
            {
                Ok(())
            } else {
                Err(format!("down, but no administrative shutdown:\n{all}"))
            }
        },
    );
    wait_until(CONVERGE, "kroute's prefix to leave BIRD's RIB", || {
        let rib = t.bird.routes_for(ADV4);
        if rib.is_empty() {
            Ok(())
        } else {
            Err(describe_rib(&rib))
        }
    });
}

#[test]
fn keep_on_exit_keeps_routes() {
    let mut t = Pair::new("keep", PairOpts::default(), |c| {
        c.kernel.keep_on_exit = true
    });
    t.bird.announce(P4);
    t.bird.announce(C4);
    t.wait_established();
    t.wait_kernel(P4);
    t.wait_kernel(C4);

    let status = t.kroute.stop_status(Duration::from_secs(10));
    assert_clean_exit(status, &t.kroute);
    for p in [P4, C4] {
        assert_eq!(
            route_via(&t.k_ns, p),
            Some(vec![(B4.to_string(), t.k_dev.clone())]),
            "with keepOnExit: true, {p} must stay in the kernel after SIGTERM; kernel: {}",
            kernel::describe(&t.k_ns)
        );
    }
    // The session was still closed properly.
    wait_until(CONVERGE, "BIRD to see the session go down", || {
        match t.bird.session_state(K4) {
            Ok(()) => Err("still Established".into()),
            Err(_) => Ok(()),
        }
    });
}

#[test]
fn restart_without_blackhole() {
    const STALE: &str = "10.77.0.0/24";
    let mut t = Pair::new("rst", PairOpts::default(), |_| {});
    t.bird.announce(P4);
    t.wait_established();
    t.wait_kernel(P4);

    t.kroute.kill();
    assert_eq!(
        route_via(&t.k_ns, P4),
        Some(vec![(B4.to_string(), t.k_dev.clone())]),
        "after SIGKILL nobody removed {P4}, it must still be in the kernel"
    );
    t.k_ns
        .ip(&["route", "add", STALE, "via", B4, "proto", "bgp"])
        .unwrap();
    assert!(route_via(&t.k_ns, STALE).is_some());

    let stop = AtomicBool::new(false);
    let (samples, misses) = std::thread::scope(|s| {
        let _stop_guard = StopOnDrop(&stop);
        let k_ns = &t.k_ns;
        let stop_ref = &stop;
        let poller = s.spawn(move || {
            let mut samples = 0usize;
            let mut misses: Vec<String> = Vec::new();
            let start = Instant::now();
            while !stop_ref.load(Ordering::SeqCst) {
                samples += 1;
                if route_via(k_ns, P4).is_none() {
                    misses.push(format!(
                        "sample {samples} ({:?} after restart): kernel has {}",
                        start.elapsed(),
                        kernel::describe(k_ns)
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (samples, misses)
        });

        t.kroute.start_again(&t.k_ns);
        t.wait_established();
        // The daemon removes a previous run's leftovers once every peer has
        // sent End-of-RIB (or after 5 s without one), at most 30 s after start.
        wait_until(
            Duration::from_secs(45),
            &format!("stale {STALE} to be removed after initial convergence"),
            || match route_via(&t.k_ns, STALE) {
                None => Ok(()),
                Some(nhs) => Err(format!("{STALE} still via {nhs:?}")),
            },
        );
        let routes = t.kroute.routes(P4);
        assert!(
            routes
                .iter()
                .any(|r| r.prefix.to_string() == P4 && r.best && r.installed),
            "after restart, show routes {P4} has no installed best path: {routes:?}"
        );
        stop.store(true, Ordering::SeqCst);
        poller.join().expect("kernel poller panicked")
    });
    t.wait_kernel(P4);
    assert!(samples >= 5, "too few kernel samples ({samples})");
    assert!(
        misses.is_empty(),
        "{P4} was missing from the kernel during the restart in {} of {samples} samples:\n{}\n{}",
        misses.len(),
        misses.join("\n"),
        t.kroute.log_tails(30)
    );
}

#[test]
fn link_down_removes_routes_and_recovers() {
    let mut t = Pair::new("link", PairOpts::default(), |c| {
        c.advertise = k::advertise(&[ADV4])
    });
    t.bird.announce(P4);
    t.bird.announce(C4);
    t.wait_established();
    t.wait_kernel(P4);
    t.wait_kernel(C4);

    t.k_ns.set_link(&t.k_dev, false).unwrap();
    t.wait_kernel_absent(P4);
    t.wait_kernel_absent(C4);
    // kroute knows why: the next hop is unreachable, or (once the hold
    // timer expired) there is no path at all. Not "installed".
    let why = wait_until(CONVERGE, &format!("explain {P4} to say why"), || {
        let text = t.kroute.explain_text(P4);
        let lower = text.to_lowercase();
        if lower.contains("unreachable") || lower.contains("no path") {
            Ok(text)
        } else {
            Err(text)
        }
    });
    eprintln!("link down: explain {P4}:\n{why}");
    let fib = t.kroute.routes(P4);
    assert!(
        !fib.iter().any(|r| r.installed),
        "link down, but show routes {P4} still claims a path installed: {fib:?}"
    );
    // Keep the link down until the hold timer (9 s, BIRD's) drops the
    // session: then the paths are gone and the session must come back by
    // reconnecting, not just by the next hop becoming reachable again.
    wait_until(
        CONVERGE,
        "kroute's session to drop (hold timer)",
        || match t.kroute.established(PEER) {
            Ok(()) => Err("still Established".into()),
            Err(_) => Ok(()),
        },
    );
    wait_until(CONVERGE, &format!("explain {P4}: no path"), || {
        let text = t.kroute.explain_text(P4);
        if text.to_lowercase().contains("no path") {
            Ok(())
        } else {
            Err(text)
        }
    });
    assert_eq!(route_via(&t.k_ns, P4), None);

    t.k_ns.set_link(&t.k_dev, true).unwrap();
    t.wait_established();
    t.wait_kernel(P4);
    t.wait_kernel(C4);
    t.wait_bird_has(ADV4);
    let text = t.kroute.explain_text(P4);
    assert!(
        !text.to_lowercase().contains("unreachable"),
        "link is up again, explain {P4} still says unreachable:\n{text}"
    );
}

#[test]
fn sighup_reload_applies_policy_without_session_reset() {
    let mut t = Pair::new("hup", PairOpts::default(), |_| {});
    // The looped path first, the control after: once the control is in the
    // kernel, kroute has processed the looped one too (same TCP stream).
    t.bird.announce_prepend(LOOP4, &[KROUTE_ASN]);
    t.bird.announce(C4);
    t.wait_established();
    t.wait_kernel(C4);
    assert_eq!(
        route_via(&t.k_ns, LOOP4),
        None,
        "{LOOP4} (AS path with {KROUTE_ASN}) installed without allowAsIn"
    );
    // Let the session age, so an uptime reset would be visible.
    let uptime_before = wait_until(CONVERGE, "session uptime >= 2 s", || {
        let u = t.neighbor().uptime_seconds;
        if u >= 2 {
            Ok(u)
        } else {
            Err(format!("uptimeSeconds {u}"))
        }
    });
    let flaps_before = t.neighbor().flaps;
    let bird_line_before = t.bird.protocol_line(K4);
    assert!(
        bird_line_before.contains("Established"),
        "{bird_line_before}"
    );

    k::peer_mut(&mut t.kroute.config, PEER).allow_as_in = 1;
    t.kroute.write_config();
    let pid = t.kroute.pid().expect("kroute running");
    labkit::ProcId::of(pid)
        .expect("kroute runs")
        .signal(libc::SIGHUP);
    t.wait_kernel(LOOP4);
    t.wait_kernel(C4);

    t.kroute.assert_alive();
    t.kroute
        .established(PEER)
        .unwrap_or_else(|e| panic!("after SIGHUP: {e}"));
    let flaps_after = t.neighbor().flaps;
    let uptime_after = t.neighbor().uptime_seconds;
    assert_eq!(
        flaps_after, flaps_before,
        "the session flapped on a policy-only reload"
    );
    assert!(
        uptime_after >= uptime_before,
        "session uptime went back from {uptime_before} s to {uptime_after} s: the session was reset"
    );
    let bird_line_after = t.bird.protocol_line(K4);
    assert_eq!(
        bird_line_after, bird_line_before,
        "BIRD's protocol changed state (restarted) during kroute's reload"
    );
}

/// The 1-based line number of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` not in:\n{text}"))
        + 1
}

#[test]
fn bad_reload_keeps_running_config() {
    let mut t = Pair::new("badrl", PairOpts::default(), |c| {
        c.advertise = k::advertise(&[ADV4])
    });
    t.bird.announce(P4);
    t.wait_established();
    t.wait_kernel(P4);
    t.wait_bird_has(ADV4);
    let flaps_before = t.neighbor().flaps;
    let good = t.kroute.config.clone();
    let path = t.kroute.config_path();
    let file_name = path.file_name().unwrap().to_string_lossy().into_owned();

    // Bad value, and an unknown key (a typo); both also change the peer, so a
    // partial apply would show. Neither is a `Config` value: the YAML is
    // edited.
    let good_yaml = t.kroute.config_text();
    let one_peer = |yaml: &str, from: &str, to: &str| {
        assert_eq!(yaml.matches(from).count(), 1, "`{from}` once in:\n{yaml}");
        yaml.replace(from, to)
    };
    let bad_value = (
        one_peer(&good_yaml, "allowAsIn: 0", "allowAsIn: 300"),
        "allowAsIn: 300",
        "allowAsIn",
    );
    let typo = {
        let mut c = good.clone();
        let p = k::peer_mut(&mut c, PEER);
        p.import = PolicyChain::Unset;
        p.export = PolicyChain::Unset;
        let yaml = t.kroute.yaml_of(&c);
        (
            one_peer(&yaml, "allowAsIn: 0", "alowAsIn: 1"),
            "alowAsIn: 1",
            "alowAsIn",
        )
    };
    for (yaml, bad_line, key) in [bad_value, typo] {
        t.kroute.write_config_text(&yaml);
        let text = std::fs::read_to_string(&path).unwrap();
        let line = line_of(&text, bad_line);
        let out = t.kroute.cli_raw(&["reload"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            !out.status.success(),
            "kroute reload accepted a config with `{bad_line}`:\n{stdout}{stderr}"
        );
        assert!(
            stderr.contains(&format!("{file_name}:{line}:")),
            "reload error does not name {file_name} line {line} (`{bad_line}`):\n{stderr}"
        );
        assert!(
            stderr.contains(key),
            "reload error does not name the key {key}:\n{stderr}"
        );

        // Also by SIGHUP: the daemon logs the error and keeps running.
        t.kroute.signal(libc::SIGHUP);

        t.kroute.assert_alive();
        wait_until(CONVERGE, "the daemon to still serve", || {
            t.kroute.established(PEER)?;
            t.bird.session_state(K4)
        });
        t.wait_kernel(P4);
        t.wait_bird_has(ADV4);
    }
    t.kroute.assert_alive();
    assert_eq!(
        t.neighbor().flaps,
        flaps_before,
        "a rejected reload reset the session"
    );

    // The running config is still the good one: a good reload now changes
    // nothing about the session and is accepted.
    t.kroute.config = good;
    t.kroute.reload();
    t.kroute.established(PEER).unwrap();
    t.wait_kernel(P4);
}

#[test]
fn tcp_md5_session() {
    let mut t = Pair::new(
        "md5",
        PairOpts {
            bird_extra: "password \"s3cret\";".into(),
            ..Default::default()
        },
        |c| {
            k::peer_mut(c, PEER).password = Some(kroute::config::Password::new("s3cret"));
            c.advertise = k::advertise(&[ADV4]);
        },
    );
    t.bird.announce(P4);
    t.wait_established();
    t.wait_kernel(P4);
    t.wait_bird_has(ADV4);

    // BIRD restarts the protocol with another password.
    t.bird.set_protocol_options(K4, "password \"wrong\";");
    wait_until(CONVERGE, "kroute's session to go down", || {
        match t.kroute.established(PEER) {
            Ok(()) => Err("still Established".into()),
            Err(_) => Ok(()),
        }
    });
    t.wait_kernel_absent(P4);
    // Negative check: with mismatched keys, both sides retry (BIRD every
    // 2 s, kroute within connectRetry 5 s) and must never get up.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(8) {
        if let Ok(()) = t.kroute.established(PEER) {
            panic!("session Established with mismatched TCP-MD5 passwords");
        }
        assert!(
            t.bird.session_state(K4).is_err(),
            "BIRD Established with mismatched TCP-MD5 passwords"
        );
        assert_eq!(route_via(&t.k_ns, P4), None);
        std::thread::sleep(Duration::from_millis(300));
    }

    // Matching again: the session comes back.
    t.bird.set_protocol_options(K4, "password \"s3cret\";");
    t.wait_established();
    t.wait_kernel(P4);
}

/// ExaBGP as a 2-octet-only speaker (`capability { asn4 disable; }`): it
/// announces `announce` and writes every UPDATE it receives as one JSON line
/// to `updates.json`.
///
/// Not BIRD: BIRD 2 with `enable as4 off` still reads the AS4 capability of
/// the OPEN and compares it with its configured `neighbor ... as`, which must
/// be 2-octet with as4 off; so it rejects any 4-octet-AS speaker ("Bad peer
/// AS: 4210101011") whatever it is configured with.
struct Exa {
    // Field order = drop order: the process before its directory.
    proc: Process,
    dir: ScratchDir,
}

impl Exa {
    fn start(ns: &Netns, local: &str, remote: &str, peer_as: u32, announce: &str) -> Exa {
        labkit::cmd::require_program("exabgp", "exabgp").unwrap_or_else(|e| panic!("{e}"));
        let dir = test_dir(&format!("exabgp-{}", ns.name()));
        let updates = dir.file("updates.json");
        let rx = dir.file("rx.sh");
        std::fs::write(
            &rx,
            format!("#!/bin/sh\n# Not exec: sh keeps ExaBGP's pipe on stdout open, else ExaBGP sees EOF and\n# takes the helper for dead.\ncat > {}\n", updates.display()),
        )
        .unwrap();
        labkit::cmd::run(&["chmod", "755", rx.to_str().unwrap()]).unwrap_or_else(|e| panic!("{e}"));
        let conf = dir.file("exabgp.conf");
        std::fs::write(
            &conf,
            format!(
                "process rx {{\n  run {rx};\n  encoder json;\n}}\n\
                 neighbor {remote} {{\n  router-id {local};\n  local-address {local};\n  \
                 local-as {PEER_ASN};\n  peer-as {peer_as};\n  hold-time 9;\n  \
                 capability {{ asn4 disable; }}\n  family {{ ipv4 unicast; }}\n  \
                 static {{ route {announce} next-hop {local}; }}\n  \
                 api {{ processes [ rx ]; receive {{ parsed; update; }} }}\n}}\n",
                rx = rx.display()
            ),
        )
        .unwrap();
        let proc = Spawn::new("exabgp", &["exabgp", conf.to_str().unwrap()])
            .netns(ns)
            .env("exabgp_daemon_user", "root")
            .env("exabgp_daemon_drop", "false")
            .env("exabgp_api_cli", "false")
            .env("exabgp_log_destination", "stdout")
            .env("PYTHONUNBUFFERED", "1")
            .log(&dir.file("exabgp.log"))
            .start()
            .unwrap_or_else(|e| panic!("{e}"));
        Exa { proc, dir }
    }

    /// AS paths of the announcements of `prefix` received so far (last
    /// one last), and the raw UPDATE lines for failure messages.
    fn received(&mut self, prefix: &str) -> (Vec<Vec<u64>>, String) {
        self.proc.check_alive().unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(self.dir.file("updates.json")).unwrap_or_default();
        let mut paths = Vec::new();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let Some(update) = v.pointer("/neighbor/message/update") else {
                continue;
            };
            let announced = update
                .pointer("/announce/ipv4 unicast")
                .and_then(|a| a.as_object())
                .into_iter()
                .flat_map(|m| m.values())
                .flat_map(|nlris| nlris.as_array().cloned().unwrap_or_default())
                .any(|n| n.get("nlri").and_then(|x| x.as_str()) == Some(prefix));
            if announced {
                let path = update
                    .pointer("/attribute/as-path")
                    .and_then(|p| p.as_array())
                    .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
                    .unwrap_or_default();
                paths.push(path);
            }
        }
        (paths, text)
    }
}

#[test]
fn two_octet_peer_sees_as_trans() {
    const BIG: u32 = 4_210_101_011;
    const AS_TRANS: u64 = 23456;
    let k_ns = netns("kas2");
    let x_ns = netns("xas2");
    let v = veth(&k_ns, &x_ns, &[&format!("{K4}/24")], &[&format!("{B4}/24")]);
    let mut cfg = k::config(BIG, "10.255.0.1");
    cfg.peers.push(k::peer(PEER, B4, PEER_ASN, &[V4]));
    cfg.advertise = k::advertise(&[ADV4]);
    let kroute = Kroute::start(&k_ns, cfg);
    // A 2-octet speaker knows kroute only as AS_TRANS: the session comes up
    // only if kroute's OPEN carries 23456 as My AS.
    let mut exa = Exa::start(&x_ns, B4, K4, AS_TRANS as u32, P4);

    wait_until(CONVERGE, "kroute's session with the 2-octet peer", || {
        kroute.established(PEER)
    });
    wait_until(
        CONVERGE,
        &format!("{P4} in kroute's kernel via {B4}"),
        || match route_via(&k_ns, P4) {
            Some(nhs) if nhs == [(B4.to_string(), v.dev_a.clone())] => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let routes = kroute.routes(P4);
    let r = routes
        .iter()
        .find(|r| r.prefix.to_string() == P4 && r.best)
        .unwrap_or_else(|| panic!("no best path for {P4}: {routes:?}"));
    assert_eq!(r.as_path.asns().collect::<Vec<_>>(), [PEER_ASN], "{r:?}");
    let n = kroute.neighbor(PEER).unwrap();
    assert_eq!(n.asn, PEER_ASN, "{n:?}");

    // kroute's prefix reaches the 2-octet peer with AS_TRANS as the path
    // (ExaBGP may merge the AS4_PATH kroute sends and show the real ASN).
    let path = wait_until(CONVERGE, &format!("{ADV4} at the 2-octet peer"), || {
        let (paths, raw) = exa.received(ADV4);
        paths.last().cloned().ok_or(raw)
    });
    assert!(
        path == [AS_TRANS] || path == [BIG as u64],
        "2-octet peer has {ADV4} with AS path {path:?}, want [{AS_TRANS}] (or [{BIG}] after an AS4_PATH merge); updates:\n{}",
        exa.received(ADV4).1
    );
    eprintln!("2-octet peer sees {ADV4} with AS path {path:?}");
    drop(kroute);
    drop(exa);
}

#[test]
fn rfc8212_ebgp_without_policy_exchanges_nothing() {
    let mut t = Pair::new("r8212", PairOpts::default(), |c| {
        let p = k::peer_mut(c, PEER);
        p.import = PolicyChain::Unset;
        p.export = PolicyChain::Unset;
        c.advertise = k::advertise(&[ADV4]);
    });
    t.bird.announce(P4);
    t.wait_established();
    // kroute received BIRD's path (kept pre-policy) and rejected it.
    wait_until(CONVERGE, "kroute to receive BIRD's prefix", || {
        let n = t.kroute.neighbor(PEER).unwrap();
        if n.prefixes_received >= 1 {
            Ok(())
        } else {
            Err(format!("{n:?}"))
        }
    });
    assert_eq!(t.neighbor().prefixes_accepted, 0);
    assert_eq!(
        route_via(&t.k_ns, P4),
        None,
        "{P4} installed from an eBGP peer without import policy"
    );
    let text = t.kroute.explain_text(P4);
    assert!(
        text.contains("RFC 8212"),
        "explain {P4} does not name RFC 8212:\n{text}"
    );
    let text = t.kroute.explain_text(ADV4);
    assert!(
        text.contains("RFC 8212"),
        "explain {ADV4} does not say why it is not advertised to {PEER}:\n{text}"
    );
    assert_eq!(t.neighbor().prefixes_advertised, 0);
    // Negative check on BIRD's side: the session is up and has been for a
    // while, and BIRD never gets kroute's prefix.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        let rib = t.bird.rib();
        assert!(
            !rib.iter().any(|r| r.prefix == ADV4),
            "BIRD received {ADV4} over an eBGP session without export policy: {}",
            describe_rib(&rib)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    t.bird.session_state(K4).unwrap();
}

#[test]
fn advertised_interface_addresses_follow_changes() {
    // `advertise.interfaces: [lo]` (seed 001's loopbacks): an address added
    // to lo while kroute runs is announced, and withdrawn when removed.
    const LOOPBACK: &str = "10.201.0.1/32";
    let t = Pair::new("ifa", PairOpts::default(), |c| {
        c.advertise = vec![Advertise {
            prefixes: Vec::new(),
            interfaces: vec!["lo".into()],
            communities: Vec::new(),
            large_communities: Vec::new(),
            local_pref: None,
            pod_cidrs: None,
            services: None,
            domain: None,
        }];
    });
    t.wait_established();
    let has_loopback = |b: &Bird| b.rib().iter().any(|r| r.prefix == LOOPBACK);
    assert!(
        !has_loopback(&t.bird),
        "{LOOPBACK} is not on lo yet, BIRD must not have it"
    );
    t.k_ns.ip(&["addr", "add", LOOPBACK, "dev", "lo"]).unwrap();
    wait_until(CONVERGE, "BIRD to learn kroute's new loopback", || {
        if has_loopback(&t.bird) {
            Ok(())
        } else {
            Err(describe_rib(&t.bird.rib()))
        }
    });
    t.k_ns.ip(&["addr", "del", LOOPBACK, "dev", "lo"]).unwrap();
    wait_until(CONVERGE, "BIRD to see the loopback withdrawn", || {
        if has_loopback(&t.bird) {
            Err(describe_rib(&t.bird.rib()))
        } else {
            Ok(())
        }
    });
}
