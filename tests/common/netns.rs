//! Network namespaces, veth pairs and a bridged LAN.

use super::{check_output, cmd, cmd_ok, unique};
use std::process::{Command, Output};

/// A network namespace, deleted on drop. `lo` is up and IPv6 DAD is off, so
/// addresses (link-local included) are usable at once — FRR refuses IPv6
/// sessions while the link-local address is tentative.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Create `kt-<pid>-<n>-<tag>` (tag shortened to keep names readable).
    pub fn new(tag: &str) -> Netns {
        super::require_root();
        super::require_bin("ip", "iproute2");
        let tag: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(8)
            .collect();
        let name = format!("kt-{}-{}-{}", std::process::id(), unique(), tag);
        cmd_ok(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.run(&["ip", "link", "set", "lo", "up"]);
        ns.run(&[
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
        ]);
        ns
    }

    /// A command line prefix that runs `argv` inside this namespace.
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(argv);
        c
    }

    /// Run `argv` inside the namespace.
    pub fn exec(&self, argv: &[&str]) -> Output {
        self.command(argv)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {argv:?} in {}: {e}", self.name))
    }

    /// Run `argv` inside the namespace; panic on failure; return stdout.
    pub fn run(&self, argv: &[&str]) -> String {
        let out = self.exec(argv);
        check_output(argv, &out)
    }

    /// Add an address (CIDR notation) to a device in this namespace. IPv6
    /// addresses get `nodad`.
    pub fn add_addr(&self, dev: &str, cidr: &str) {
        let mut argv = vec!["ip", "-n", &self.name, "addr", "add", cidr, "dev", dev];
        if cidr.contains(':') {
            argv.push("nodad");
        }
        cmd_ok(&argv);
    }

    /// `ip -n NS ...` convenience (stdout; panics on failure).
    pub fn ip(&self, args: &[&str]) -> String {
        let mut argv = vec!["ip", "-n", &self.name];
        argv.extend_from_slice(args);
        cmd_ok(&argv)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let out = cmd(&["ip", "netns", "del", &self.name]);
        if !out.status.success() {
            eprintln!(
                "warning: ip netns del {} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// The two ends of a veth pair.
pub struct Veth {
    pub dev_a: String,
    pub dev_b: String,
}

/// Create a veth pair between `a` and `b` and give each end its addresses
/// (CIDR, IPv4 and/or IPv6; IPv6 without DAD). Both ends are up on return.
/// Deleted with the namespaces.
pub fn veth(a: &Netns, b: &Netns, addrs_a: &[&str], addrs_b: &[&str]) -> Veth {
    // Globally unique and <= 15 chars: "v" + pid (<= 7 digits) + n + a|b.
    let n = unique();
    let base = format!("v{}{}", std::process::id() % 10_000_000, n % 1000);
    let dev_a = format!("{base}a");
    let dev_b = format!("{base}b");
    assert!(dev_a.len() <= 15);
    cmd_ok(&[
        "ip", "link", "add", &dev_a, "netns", &a.name, "type", "veth", "peer", "name", &dev_b,
        "netns", &b.name,
    ]);
    for cidr in addrs_a {
        a.add_addr(&dev_a, cidr);
    }
    for cidr in addrs_b {
        b.add_addr(&dev_b, cidr);
    }
    a.ip(&["link", "set", &dev_a, "up"]);
    b.ip(&["link", "set", &dev_b, "up"]);
    // FRR refuses IPv6 sessions until the link-local address exists.
    super::wait_until(
        std::time::Duration::from_secs(10),
        "link-local addresses on the veth",
        || match (link_local(a, &dev_a), link_local(b, &dev_b)) {
            (Some(_), Some(_)) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    Veth { dev_a, dev_b }
}

/// The (non-tentative) link-local IPv6 address of `dev` in `ns`, if any.
pub fn link_local(ns: &Netns, dev: &str) -> Option<String> {
    let text = ns.ip(&["-j", "-6", "addr", "show", "dev", dev, "scope", "link"]);
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let infos = v.pointer("/0/addr_info")?.as_array()?;
    infos
        .iter()
        .filter(|i| i.get("tentative").is_none())
        .find_map(|i| {
            i.get("local")
                .and_then(|x| x.as_str())
                .filter(|a| a.starts_with("fe80"))
        })
        .map(String::from)
}

/// A shared L2 segment: a bridge in its own namespace, one veth per member.
/// Members' addresses are on one subnet, so next hops reflected by a route
/// reflector are directly reachable (as on a rack's switch).
pub struct Lan {
    pub switch: Netns,
    /// Member-side device name per attached member, in attach order.
    pub devs: Vec<String>,
}

impl Lan {
    pub fn new(tag: &str) -> Lan {
        let switch = Netns::new(&format!("sw{tag}"));
        switch.ip(&["link", "add", "br0", "type", "bridge"]);
        switch.ip(&["link", "set", "br0", "up"]);
        Lan {
            switch,
            devs: Vec::new(),
        }
    }

    /// Attach `ns` with the given addresses; returns the device name in `ns`.
    pub fn attach(&mut self, ns: &Netns, addrs: &[&str]) -> String {
        let v = veth(ns, &self.switch, addrs, &[]);
        self.switch.ip(&["link", "set", &v.dev_b, "master", "br0"]);
        self.devs.push(v.dev_a.clone());
        v.dev_a
    }
}
