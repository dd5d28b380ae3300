//! Test harness: a throw-away network namespace with two veth pairs, and a
//! thread that enters it to run a FIB.
#![allow(dead_code)]

use std::future::Future;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use kernel::{BgpNextHop, Fib, FibChange, FibConfig, FibEvent};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

/// A network namespace deleted on drop (also when the test fails).
///
/// Inside: `veth0` 10.0.0.1/24 + 2001:db8::1/64 and `veth1` 10.0.1.1/24 +
/// 2001:db8:1::1/64, each paired with an up peer (`veth0p`, `veth1p`)
/// without addresses; gateways 10.0.0.2, 10.0.1.2, 2001:db8::2,
/// 2001:db8:1::2 are on-link.
pub struct Netns {
    ns: Ns,
}

/// A namespace's name, to run `ip -n` with (cheap to clone, no cleanup).
#[derive(Clone, Debug)]
pub struct Ns {
    pub name: String,
}

impl std::ops::Deref for Netns {
    type Target = Ns;
    fn deref(&self) -> &Ns {
        &self.ns
    }
}

impl Netns {
    pub fn new(test: &str) -> Netns {
        let name = format!("kt-{}-{}", std::process::id(), test);
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run("ip", &["netns", "add", &name]);
        let ns = Netns { ns: Ns { name } };
        ns.ip("link set lo up");
        for (i, (v4, v6)) in [
            ("10.0.0.1/24", "2001:db8::1/64"),
            ("10.0.1.1/24", "2001:db8:1::1/64"),
        ]
        .iter()
        .enumerate()
        {
            ns.ip(&format!("link add veth{i} type veth peer name veth{i}p"));
            ns.ip(&format!("link set veth{i} up"));
            ns.ip(&format!("link set veth{i}p up"));
            ns.ip(&format!("addr add {v4} dev veth{i}"));
            ns.ip(&format!("addr add {v6} dev veth{i} nodad"));
        }
        ns
    }

    /// Runs `f` on a thread inside the namespace, with a current-thread
    /// tokio runtime; `f` gets a handle to run `ip` with. Re-raises its panic.
    pub fn run<F, Fut>(&self, f: F)
    where
        F: FnOnce(Ns) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let ns = self.ns.clone();
        let path = format!("/var/run/netns/{}", self.name);
        let h = std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("open netns");
            let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(f(ns));
        });
        if let Err(p) = h.join() {
            std::panic::resume_unwind(p);
        }
    }
}

impl Ns {
    /// `ip -n NS ARGS`; panics with the error output on failure.
    pub fn ip(&self, args: &str) -> String {
        let mut all = vec!["-n", &self.name];
        all.extend(args.split_whitespace());
        run("ip", &all)
    }

    /// Routes of protocol 186 as `ip -j` prints them.
    pub fn routes(&self, family: &str, table: &str) -> Vec<Value> {
        let out = self.ip(&format!("-j {family} route show table {table} proto 186"));
        if out.trim().is_empty() {
            return Vec::new();
        }
        serde_json::from_str::<Vec<Value>>(&out).expect("ip -j output")
    }

    /// Nexthop objects of protocol 186 as `ip -j nexthop` prints them.
    pub fn objects(&self) -> Vec<Value> {
        let out = self.ip("-j nexthop show protocol 186");
        if out.trim().is_empty() {
            return Vec::new();
        }
        serde_json::from_str::<Vec<Value>>(&out).expect("ip -j output")
    }

    pub fn v4(&self) -> Vec<Value> {
        self.routes("-4", "main")
    }

    pub fn v6(&self) -> Vec<Value> {
        self.routes("-6", "main")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.ns.name])
            .output();
    }
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn cfg() -> FibConfig {
    FibConfig {
        table: 254,
        protocol: 186,
        metric: 20,
        install: true,
        keep_on_exit: false,
        nexthop_objects: true,
        nexthop_ids: kernel::DEFAULT_NEXTHOP_IDS,
        backup_routes: false,
    }
}

pub fn start(cfg: FibConfig) -> (Fib, UnboundedReceiver<FibEvent>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (Fib::start(cfg, tx).expect("Fib::start"), rx)
}

pub fn nh(a: &str) -> BgpNextHop {
    BgpNextHop::new(a.parse::<IpAddr>().unwrap())
}

pub fn change(prefix: &str, nhs: &[&str]) -> FibChange {
    FibChange::new(prefix.parse().unwrap(), set(nhs))
}

/// A next-hop set, sorted.
pub fn set(nhs: &[&str]) -> std::sync::Arc<Vec<BgpNextHop>> {
    let mut v: Vec<_> = nhs.iter().map(|a| nh(a)).collect();
    v.sort();
    std::sync::Arc::new(v)
}

/// A change with a backup set.
pub fn change_with_backup(prefix: &str, nhs: &[&str], backup: &[&str]) -> FibChange {
    FibChange {
        backup: set(backup),
        ..change(prefix, nhs)
    }
}

/// Waits (at most 5 s) for an event matching `pred`, skipping others.
pub async fn wait_for(
    rx: &mut UnboundedReceiver<FibEvent>,
    what: &str,
    pred: impl Fn(&FibEvent) -> bool,
) -> FibEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(e)) if pred(&e) => return e,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("event channel closed while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

/// The route for `dst` in a `ip -j route` listing.
pub fn find<'a>(routes: &'a [Value], dst: &str) -> Option<&'a Value> {
    routes.iter().find(|r| r["dst"] == dst)
}

/// (gateway, dev) pairs of a route, single or multipath.
pub fn paths(route: &Value) -> Vec<(String, String)> {
    let one = |v: &Value| {
        let gw = v["gateway"]
            .as_str()
            .or_else(|| v["via"]["host"].as_str())
            .unwrap_or("")
            .to_string();
        (gw, v["dev"].as_str().unwrap_or("").to_string())
    };
    match route["nexthops"].as_array() {
        Some(nhs) => {
            let mut v: Vec<_> = nhs.iter().map(one).collect();
            v.sort();
            v
        }
        None => vec![one(route)],
    }
}

pub fn pair(gw: &str, dev: &str) -> (String, String) {
    (gw.to_string(), dev.to_string())
}
