//! Shared by the `kroute lab` scenario tests: they drive the real CLI
//! (`kroute lab up/status/down`) with a unique lab name, read the lab's
//! state file for PIDs, and poll (bounded) for every expected state.
//!
//! Needs root and the Debian packages `frr`, `gobgpd`, `iproute2`,
//! `iputils-ping` (scripts/setup-debian.sh installs them).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kroute::api::{Client, FibEntryView, RouteView};
use labkit::{Netns, ProcId};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_kroute");

/// Upper bound for any convergence in these tests. A healthy lab needs a
/// few seconds (BGP hold time 9 s, connect retry 2 s; GoBGP waits up to
/// ~10 s before reconnecting); the bound only matters when it is broken.
pub const CONVERGE: Duration = Duration::from_secs(60);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Poll `check` until `Ok`, at most `timeout`; panic with the last
/// observed state. Prints how long it took.
pub fn wait_until<T>(timeout: Duration, what: &str, check: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    let v = labkit::wait_for(what, timeout, check).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("[{:5.1}s] {what}", start.elapsed().as_secs_f64());
    v
}

fn run(argv: &[&str]) -> (bool, String, String) {
    let out = labkit::cmd::output(argv).unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An existing namespace (the lab's), by name.
fn open_ns(ns: &str) -> Netns {
    Netns::open(ns).unwrap_or_else(|e| panic!("{e}"))
}

/// A running lab; `kroute lab down` on drop (also when the test panics).
pub struct Lab {
    pub name: String,
}

/// One BGP route in a node's kernel.
#[derive(Debug, Clone)]
pub struct Route {
    pub prefix: String,
    pub gateways: Vec<String>,
}

impl Lab {
    /// `kroute lab up --scenario SCENARIO --name <unique> EXTRA...`; panics
    /// (after tearing down) if it fails.
    pub fn up(scenario: &str, extra: &[&str]) -> Lab {
        let name = format!(
            "t{}{}",
            std::process::id() % 1_000_000,
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let lab = Lab { name };
        let start = Instant::now();
        let mut argv = vec![
            BIN,
            "lab",
            "up",
            "--scenario",
            scenario,
            "--name",
            &lab.name,
        ];
        argv.extend_from_slice(extra);
        let (ok, out, err) = run(&argv);
        eprintln!(
            "kroute lab up --scenario {scenario} {extra:?}: {:.1} s\n{out}{err}",
            start.elapsed().as_secs_f64()
        );
        assert!(ok, "kroute lab up failed");
        lab
    }

    /// `kroute lab status -o json`.
    pub fn status(&self) -> Value {
        let (ok, out, err) = run(&[BIN, "lab", "status", "-o", "json", "--name", &self.name]);
        assert!(ok, "kroute lab status failed: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("status JSON: {e}\n{out}"))
    }

    /// The lab's state file.
    pub fn state(&self) -> Value {
        let path = format!("/run/kroute-lab/{}/state.json", self.name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).expect("state JSON")
    }

    /// Namespace of a node, pod or router (`n1`, `p1`, `r1`).
    pub fn ns(&self, short: &str) -> String {
        format!("{}-{short}", self.name)
    }

    /// The latest `name` process (kroute, gobgpd, bgpd, zebra) of `owner`,
    /// by the PID in the state file.
    pub fn pid(&self, owner: &str, name: &str) -> ProcId {
        let pid = self.state_pid(owner, name);
        ProcId::of(pid).unwrap_or_else(|| panic!("{name} of {owner} (pid {pid}) is not running"))
    }

    fn state_pid(&self, owner: &str, name: &str) -> u32 {
        let st = self.state();
        st["processes"]
            .as_array()
            .expect("processes")
            .iter()
            .rev()
            .find(|p| p["owner"] == owner && p["name"] == name)
            .and_then(|p| p["pid"].as_u64())
            .unwrap_or_else(|| panic!("no {name} of {owner} in the state file")) as u32
    }

    /// `kroute --socket <node's socket> ARGS...` (stdout; panics on failure).
    pub fn kroute(&self, node: &str, args: &[&str]) -> String {
        let socket = format!("/run/kroute-lab/{}/{node}/kroute.sock", self.name);
        let mut argv = vec![BIN, "--socket", &socket];
        argv.extend_from_slice(args);
        let (ok, out, err) = run(&argv);
        assert!(ok, "kroute {args:?} on {node}: {err}");
        out
    }

    /// The API client of `node`'s kroute.
    pub fn client(&self, node: &str) -> Client {
        Client::new(format!("/run/kroute-lab/{}/{node}/kroute.sock", self.name))
    }

    /// kroute's sessions on `node` as (peer, state).
    pub fn sessions(&self, node: &str) -> Vec<(String, String)> {
        self.client(node)
            .neighbors()
            .unwrap_or_else(|e| panic!("show neighbors on {node}: {e}"))
            .into_iter()
            .map(|n| (n.name, n.state.to_string()))
            .collect()
    }

    /// `show fib PREFIX` on `node`.
    pub fn fib(&self, node: &str, prefix: &str) -> Vec<FibEntryView> {
        self.client(node)
            .fib(Some(prefix))
            .unwrap_or_else(|e| panic!("show fib {prefix} on {node}: {e}"))
    }

    /// `show routes` (Loc-RIB) on `node`.
    pub fn loc_rib(&self, node: &str) -> Vec<RouteView> {
        self.client(node)
            .routes(None, None, rib::Table::Loc)
            .unwrap_or_else(|e| panic!("show routes on {node}: {e}"))
    }

    /// `explain PREFIX` on `node` (human text).
    pub fn explain(&self, node: &str, prefix: &str) -> String {
        self.client(node)
            .explain(prefix)
            .unwrap_or_else(|e| panic!("explain {prefix} on {node}: {e}"))
            .text
    }

    /// `proto bgp` routes in a node's kernel, both families.
    pub fn routes(&self, node: &str) -> Vec<Route> {
        labkit::kernel::all_routes(&open_ns(&self.ns(node)), Some("bgp"))
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|r| Route {
                gateways: r.gateways().into_iter().map(String::from).collect(),
                prefix: r.dst,
            })
            .collect()
    }

    pub fn route(&self, node: &str, prefix: &str) -> Option<Route> {
        self.routes(node).into_iter().find(|r| r.prefix == prefix)
    }

    /// Node names, from the state file.
    pub fn nodes(&self) -> Vec<String> {
        self.state()["topology"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// A node's pod CIDRs (IPv6, IPv4).
    pub fn pod_cidrs(&self, node: &str) -> (String, String) {
        let st = self.state();
        let n = st["topology"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == node)
            .unwrap_or_else(|| panic!("no node {node}"))
            .clone();
        (
            n["pod"]["cidrV6"].as_str().unwrap().to_string(),
            n["pod"]["cidrV4"].as_str().unwrap().to_string(),
        )
    }

    /// `Ok` when the kernel of every node in `present` holds both pod CIDRs
    /// of every other node in `present` (over `ecmp` next hops, if given),
    /// none of those of `absent`, and no route uses a gateway in
    /// `banned_gateways`.
    pub fn check_pod_routes(
        &self,
        present: &[&str],
        absent: &[&str],
        banned_gateways: &[&str],
        ecmp: Option<usize>,
    ) -> Result<(), String> {
        for n in present.iter().map(|n| n.to_string()) {
            let routes = self.routes(&n);
            for r in &routes {
                if let Some(g) = r
                    .gateways
                    .iter()
                    .find(|g| banned_gateways.contains(&g.as_str()))
                {
                    return Err(format!("{n}: stale route {} via {g}", r.prefix));
                }
            }
            for m in present.iter().filter(|m| **m != n) {
                let (v6, v4) = self.pod_cidrs(m);
                for p in [v6, v4] {
                    match routes.iter().find(|r| r.prefix == p) {
                        None => return Err(format!("{n}: no route to {p} ({m})")),
                        Some(r) if ecmp.is_some_and(|k| r.gateways.len() != k) => {
                            return Err(format!(
                                "{n}: {p} via {:?}, want {} next hops",
                                r.gateways,
                                ecmp.unwrap()
                            ))
                        }
                        Some(_) => {}
                    }
                }
            }
            for m in absent.iter().filter(|m| **m != n) {
                let (v6, v4) = self.pod_cidrs(m);
                for p in [v6, v4] {
                    if routes.iter().any(|r| r.prefix == p) {
                        return Err(format!("{n}: stale route to {p} ({m})"));
                    }
                }
            }
        }
        Ok(())
    }

    /// `Ok` when the status matrix has no cross (optionally ignoring rows
    /// and columns of some pods).
    pub fn matrix_ok(&self, ignore: &[&str]) -> Result<(), String> {
        let st = self.status();
        let bad: Vec<String> = st["matrix"]["results"]
            .as_array()
            .expect("matrix results")
            .iter()
            .filter(|p| {
                let from = p["from"].as_str().unwrap_or("");
                let to = p["to"].as_str().unwrap_or("");
                !ignore.contains(&from) && !ignore.contains(&to) && p["ok"] != true
            })
            .map(|p| format!("{}->{} {}", p["from"], p["to"], p["family"]))
            .collect();
        if bad.is_empty() {
            Ok(())
        } else {
            Err(format!("no reply: {}", bad.join(", ")))
        }
    }

    /// After convergence: the matrix covers all 60 pod pairs (6 pods × 5
    /// others × 2 families) and every node has `sessions` sessions, all
    /// Established (`what` names them in the failure). Returns the status.
    pub fn assert_full_matrix_and_sessions(&self, sessions: usize, what: &str) -> Value {
        let st = self.status();
        assert_eq!(st["matrix"]["total"], 60, "6 pods x 5 others x 2 families");
        for n in st["nodes"].as_array().unwrap() {
            let s = n["sessions"].as_array().unwrap();
            assert_eq!(s.len(), sessions, "{what}: {n}");
            assert!(s.iter().all(|s| s["state"] == "Established"), "{n}");
        }
        st
    }

    /// One ping from a pod namespace.
    pub fn ping(&self, pod: &str, addr: &str) -> bool {
        let ns = self.ns(pod);
        run(&[
            "ip", "netns", "exec", &ns, "ping", "-n", "-q", "-c", "1", "-W", "1", addr,
        ])
        .0
    }

    pub fn link(&self, node: &str, dev: &str, up: bool) {
        open_ns(&self.ns(node))
            .set_link(dev, up)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// `kroute lab restart NODE` (starts kroute again if it was stopped).
    pub fn restart_kroute(&self, node: &str) {
        let (ok, out, err) = run(&[BIN, "lab", "restart", node, "--name", &self.name]);
        assert!(ok, "kroute lab restart {node}: {out}{err}");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Logs help more than a clean machine: print the tails first.
            for entry in glob_logs(&self.name) {
                let text = std::fs::read_to_string(&entry).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let from = lines.len().saturating_sub(15);
                eprintln!("----- {entry} -----\n{}", lines[from..].join("\n"));
            }
        }
        let (ok, out, err) = run(&[BIN, "lab", "down", "--name", &self.name]);
        if !ok {
            eprintln!("kroute lab down --name {}: {out}{err}", self.name);
        }
    }
}

fn glob_logs(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let dir = format!("/run/kroute-lab/{name}");
    for node in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(node.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let p = f.path();
            if p.extension().is_some_and(|e| e == "log") {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// SIGTERM `p` and wait (bounded) until it is gone.
pub fn stop(p: ProcId) {
    p.signal(libc::SIGTERM);
    wait_until(
        Duration::from_secs(10),
        &format!("pid {} to exit", p.pid),
        || {
            if p.alive() {
                Err("still running".into())
            } else {
                Ok(())
            }
        },
    );
}

/// Run `f` on a thread inside network namespace `ns`.
pub fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<labkit::Result<T>> {
    open_ns(ns).spawn_thread(f)
}

/// A TCP echo-like service inside a namespace: answers each line with
/// "pong from NAME". Dual-stack (`[::]:port`). Stops on drop.
pub struct Service {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<labkit::Result<()>>>,
}

impl Service {
    pub fn start(ns: &str, port: u16, name: &str) -> Service {
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, name) = (stop.clone(), name.to_string());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = in_netns(ns, move || {
            let l = TcpListener::bind(("::", port)).expect("bind the service port");
            l.set_nonblocking(true).expect("nonblocking listener");
            let _ = ready_tx.send(());
            while !stop2.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((mut s, peer)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
                        let mut line = String::new();
                        let mut r = BufReader::new(s.try_clone().expect("clone stream"));
                        if r.read_line(&mut line).is_ok() {
                            let _ = writeln!(s, "pong from {name} to {}", peer.ip());
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("service listening");
        Service {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connect from namespace `ns` to `addr`, send a line, return the reply.
pub fn tcp_request(ns: &str, addr: SocketAddr) -> Result<String, String> {
    in_netns(ns, move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        writeln!(s, "ping").map_err(|e| format!("send to {addr}: {e}"))?;
        let mut line = String::new();
        BufReader::new(s)
            .read_line(&mut line)
            .map_err(|e| format!("no reply from {addr}: {e}"))?;
        if line.is_empty() {
            return Err(format!("{addr} closed without a reply"));
        }
        Ok(line.trim().to_string())
    })
    .join()
    .unwrap_or_else(|_| Ok(Err("client thread panicked".into())))
    .unwrap_or_else(|e| Err(e.to_string()))
}
