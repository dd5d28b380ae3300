//! Network namespaces (iproute2's named ones, `/run/netns/NAME`), veth
//! pairs, addresses, bridges.
//!
//! A [`Netns`] made by [`Netns::create`] is deleted when dropped; one that
//! must outlive the program (`kroute lab up`) is [`Netns::detach`]ed and
//! later re-opened by name with [`Netns::open`].

use std::ffi::OsStr;
use std::net::Ipv6Addr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::cmd;
use crate::error::{io, Error, Result};
use crate::wait::wait_for;

/// Where iproute2 keeps named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A small number unique within this process, for names.
pub fn unique() -> usize {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// `PREFIX-<pid>-<n>-<tag>`: unique on the machine while this process
/// lives; the tag is cut to 8 alphanumeric characters to keep it readable.
pub fn unique_name(prefix: &str, tag: &str) -> String {
    let tag: String = tag
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    format!("{prefix}-{}-{}-{tag}", std::process::id(), unique())
}

/// Sysctls set in a new namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Setup {
    /// No IPv6 duplicate address detection: addresses (link-local included)
    /// are usable at once. FRR refuses IPv6 sessions while its link-local
    /// address is tentative.
    pub no_dad: bool,
    /// IPv4 and IPv6 forwarding on (the namespace routes).
    pub forwarding: bool,
    /// IPv6 addresses stay when a link goes down.
    pub keep_addr_on_down: bool,
    /// No ICMP redirects (a router on a shared LAN would send them).
    pub no_redirects: bool,
}

impl Setup {
    /// Only `lo` up.
    pub const BARE: Setup = Setup {
        no_dad: false,
        forwarding: false,
        keep_addr_on_down: false,
        no_redirects: false,
    };
    /// A router: no DAD, forwarding on.
    pub const ROUTER: Setup = Setup {
        no_dad: true,
        forwarding: true,
        keep_addr_on_down: false,
        no_redirects: false,
    };

    fn sysctls(&self) -> Vec<&'static str> {
        let mut s = Vec::new();
        if self.no_dad {
            s.extend([
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ]);
        }
        if self.keep_addr_on_down {
            s.extend([
                "net.ipv6.conf.all.keep_addr_on_down=1",
                "net.ipv6.conf.default.keep_addr_on_down=1",
            ]);
        }
        if self.forwarding {
            s.extend(["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
        }
        if self.no_redirects {
            s.extend([
                "net.ipv4.conf.all.send_redirects=0",
                "net.ipv4.conf.default.send_redirects=0",
            ]);
        }
        s
    }
}

/// A named network namespace.
#[derive(Debug)]
pub struct Netns {
    name: String,
    /// Deleted on drop.
    owned: bool,
}

impl Netns {
    /// Create namespace `name` (an error if it exists), bring `lo` up and
    /// apply `setup`. Deleted on drop unless [`Netns::detach`]ed.
    pub fn create(name: &str, setup: &Setup) -> Result<Netns> {
        cmd::require_root()?;
        cmd::run(&["ip", "netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
            owned: true,
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        let sysctls = setup.sysctls();
        if !sysctls.is_empty() {
            let mut argv = vec!["sysctl", "-qw"];
            argv.extend(sysctls);
            ns.run(&argv)?;
        }
        Ok(ns)
    }

    /// An existing namespace, by name; not deleted on drop.
    pub fn open(name: &str) -> Result<Netns> {
        if !Netns::exists(name) {
            return Err(Error::Other(format!("no network namespace {name}")));
        }
        Ok(Netns {
            name: name.to_string(),
            owned: false,
        })
    }

    pub fn exists(name: &str) -> bool {
        std::path::Path::new(NETNS_DIR).join(name).exists()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(NETNS_DIR).join(&self.name)
    }

    /// Keep the namespace after this value is gone; returns its name.
    pub fn detach(mut self) -> String {
        self.owned = false;
        std::mem::take(&mut self.name)
    }

    /// Delete the namespace now (also a detached or re-opened one).
    pub fn delete(mut self) -> Result<()> {
        self.owned = false;
        if !Netns::exists(&self.name) {
            return Ok(());
        }
        cmd::run(&["ip", "netns", "del", &self.name]).map(|_| ())
    }

    /// A command that runs `program` inside the namespace. `ip netns exec`
    /// execs it, so the child's PID is the program's.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Run `argv` inside the namespace; its output, whatever its status.
    pub fn output(&self, argv: &[&str]) -> Result<Output> {
        let mut c = self.command(argv[0]);
        c.args(&argv[1..]);
        cmd::output_of(&mut c, Some(&self.name))
    }

    /// Run `argv` inside the namespace; an error unless it exits 0.
    /// Returns stdout.
    pub fn run(&self, argv: &[&str]) -> Result<String> {
        let mut c = self.command(argv[0]);
        c.args(&argv[1..]);
        cmd::run_cmd(&mut c, Some(&self.name))
    }

    /// `ip -n NAME ARGS...`; stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut c = Command::new("ip");
        c.args(["-n", &self.name]).args(args);
        cmd::run_cmd(&mut c, Some(&self.name))
    }

    /// Add an address (CIDR) to `dev`. IPv6 addresses get `nodad`: usable
    /// at once, whatever the namespace's DAD setting.
    pub fn add_addr(&self, dev: &str, cidr: &str) -> Result<()> {
        let mut args = vec!["addr", "add", cidr, "dev", dev];
        if cidr.contains(':') {
            args.push("nodad");
        }
        self.ip(&args).map(|_| ())
    }

    /// `ip link set DEV up|down`.
    pub fn set_link(&self, dev: &str, up: bool) -> Result<()> {
        self.ip(&["link", "set", dev, if up { "up" } else { "down" }])
            .map(|_| ())
    }

    /// A bridge, up, without multicast snooping (IPv6 neighbour discovery
    /// crosses it at once).
    pub fn add_bridge(&self, bridge: &str) -> Result<()> {
        self.ip(&["link", "add", bridge, "type", "bridge"])?;
        self.ip(&[
            "link",
            "set",
            bridge,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        self.set_link(bridge, true)
    }

    /// Make `dev` a port of `bridge`.
    pub fn set_master(&self, dev: &str, bridge: &str) -> Result<()> {
        self.ip(&["link", "set", dev, "master", bridge]).map(|_| ())
    }

    /// IPv6 addresses of `dev` as `ip -j -6 addr show dev DEV` lists them:
    /// (address, tentative).
    fn ipv6_addrs(&self, dev: &str) -> Result<Vec<(String, bool)>> {
        let text = self.ip(&["-j", "-6", "addr", "show", "dev", dev])?;
        parse_ipv6_addrs(&text).map_err(|detail| Error::Parse {
            what: format!("ip -j -6 addr show dev {dev} in {}", self.name),
            detail,
            text,
        })
    }

    /// The link-local IPv6 address of `dev`, once it is no longer
    /// tentative.
    pub fn link_local(&self, dev: &str) -> Result<Option<Ipv6Addr>> {
        Ok(self
            .ipv6_addrs(dev)?
            .into_iter()
            .filter(|(_, tentative)| !tentative)
            .filter_map(|(a, _)| a.parse::<Ipv6Addr>().ok())
            .find(|a| a.segments()[0] & 0xffc0 == 0xfe80))
    }

    /// Wait until `dev` has a usable link-local address; returns it.
    pub fn wait_link_local(&self, dev: &str, timeout: Duration) -> Result<Ipv6Addr> {
        wait_for(
            &format!("a link-local address on {dev} in {}", self.name),
            timeout,
            || match self.link_local(dev) {
                Ok(Some(a)) => Ok(a),
                Ok(None) => Err("none yet (tentative or absent)".to_string()),
                Err(e) => Err(e.to_string()),
            },
        )
    }

    /// Wait until no IPv6 address of `dev` is tentative (DAD finished), for
    /// namespaces that keep DAD on.
    pub fn wait_dad_done(&self, dev: &str, timeout: Duration) -> Result<()> {
        wait_for(
            &format!("DAD on {dev} in {}", self.name),
            timeout,
            || match self.ipv6_addrs(dev) {
                Ok(addrs) => {
                    let tentative: Vec<String> = addrs
                        .into_iter()
                        .filter(|(_, t)| *t)
                        .map(|(a, _)| a)
                        .collect();
                    if tentative.is_empty() {
                        Ok(())
                    } else {
                        Err(format!("tentative: {}", tentative.join(", ")))
                    }
                }
                Err(e) => Err(e.to_string()),
            },
        )
    }

    /// Move the calling thread into this namespace (sockets it opens then
    /// live there).
    pub fn enter_thread(&self) -> Result<()> {
        let path = self.path();
        let f = std::fs::File::open(&path).map_err(io(format!("open {}", path.display())))?;
        // SAFETY: setns(2) on a namespace file we just opened; it changes
        // only the calling thread's network namespace.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io(format!("setns {}", path.display()))(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Run `f` on a new thread inside this namespace.
    pub fn spawn_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<Result<T>> {
        let ns = Netns {
            name: self.name.clone(),
            owned: false,
        };
        std::thread::spawn(move || {
            ns.enter_thread()?;
            Ok(f())
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if self.owned {
            if let Err(e) = cmd::run(&["ip", "netns", "del", &self.name]) {
                eprintln!("warning: {e}");
            }
        }
    }
}

/// `(address, tentative)` of every address in `ip -j addr show` output.
fn parse_ipv6_addrs(json: &str) -> std::result::Result<Vec<(String, bool)>, String> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|link| link.get("addr_info")?.as_array())
        .flatten()
        .filter_map(|a| {
            let local = a.get("local")?.as_str()?.to_string();
            Some((local, a.get("tentative").is_some()))
        })
        .collect())
}

/// The two ends of a veth pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Veth {
    pub dev_a: String,
    pub dev_b: String,
}

/// A veth pair from `dev_a` in `a` to `dev_b` in `b`, both ends up. It is
/// created inside `a`, so the names need only be unique per namespace; it
/// goes with the namespaces.
pub fn veth(a: &Netns, dev_a: &str, b: &Netns, dev_b: &str) -> Result<Veth> {
    a.ip(&[
        "link", "add", dev_a, "type", "veth", "peer", "name", dev_b, "netns", &b.name,
    ])?;
    a.set_link(dev_a, true)?;
    b.set_link(dev_b, true)?;
    Ok(Veth {
        dev_a: dev_a.to_string(),
        dev_b: dev_b.to_string(),
    })
}

/// A shared L2 segment: a bridge in a switch namespace, one veth port per
/// member.
#[derive(Debug)]
pub struct Lan {
    pub switch: Netns,
    pub bridge: String,
}

impl Lan {
    /// A bridge named `bridge` in `switch`.
    pub fn create(switch: Netns, bridge: &str) -> Result<Lan> {
        switch.add_bridge(bridge)?;
        Ok(Lan {
            switch,
            bridge: bridge.to_string(),
        })
    }

    /// Connect `member` (device `member_dev`) to the bridge through port
    /// `switch_dev`.
    pub fn attach(&self, member: &Netns, member_dev: &str, switch_dev: &str) -> Result<Veth> {
        let v = veth(member, member_dev, &self.switch, switch_dev)?;
        self.switch.set_master(switch_dev, &self.bridge)?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_keep_the_tag_short() {
        let a = unique_name("kt", "my-long-tag-name");
        let b = unique_name("kt", "my-long-tag-name");
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("kt-{}-", std::process::id())));
        assert!(a.ends_with("-mylongta"), "{a}");
    }

    #[test]
    fn setup_sysctls() {
        assert!(Setup::BARE.sysctls().is_empty());
        let r = Setup::ROUTER.sysctls();
        assert!(r.contains(&"net.ipv6.conf.all.accept_dad=0"));
        assert!(r.contains(&"net.ipv4.ip_forward=1"));
        assert!(!r.iter().any(|s| s.contains("keep_addr_on_down")));
    }

    #[test]
    fn parses_addresses_and_tentative_flag() {
        let json = r#"[{"ifindex":2,"ifname":"v0","addr_info":[
            {"family":"inet6","local":"fd00::1","prefixlen":64,"scope":"global"},
            {"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link","tentative":true}]}]"#;
        assert_eq!(
            parse_ipv6_addrs(json).unwrap(),
            vec![
                ("fd00::1".to_string(), false),
                ("fe80::1".to_string(), true)
            ]
        );
        assert_eq!(parse_ipv6_addrs("").unwrap(), vec![]);
        assert!(parse_ipv6_addrs("{").is_err());
    }
}
