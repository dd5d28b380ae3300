//! kroute under test: its config as a `kroute::config::Config` value,
//! labkit's launcher, and the typed API client for reading its state.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Output};
use std::time::Duration;

use kroute::api::{Client, FibEntryView, NeighborView, RouteView};
use kroute::config::{Advertise, Config, Listen, Peer, Router};
use kroute::events::SessionState;
use labkit::kroute::{self as lk, KrouteSpec};
use labkit::{Netns, ScratchDir};
use rib::policy::PolicyChain;

use super::test_dir;

pub const BIN: &str = env!("CARGO_BIN_EXE_kroute");

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// The tests' kroute: listens on [::]:179, up to 4 paths per prefix,
/// installs in table main with `proto bgp`; no peers yet.
pub fn config(asn: u32, router_id: &str) -> Config {
    // The API socket is set to the test's own when written.
    Config::new(Router {
        listen: Some(Listen::default()),
        max_paths: 4,
        ..Router::new(asn, router_id.parse().expect("router id"))
    })
}

/// A peer with `import: all` / `export: all` (eBGP gets nothing without
/// them, RFC 8212); families as "ipv4-unicast" / "ipv6-unicast".
pub fn peer(name: &str, address: &str, asn: u32, families: &[&str]) -> Peer {
    Peer {
        families: families
            .iter()
            .map(|f| serde_json::from_value(serde_json::json!(f)).expect("family name"))
            .collect(),
        import: PolicyChain::All,
        export: PolicyChain::All,
        ..Peer::new(name, ip(address), asn)
    }
}

/// `advertise: [{prefixes: [...]}]`.
pub fn advertise(prefixes: &[&str]) -> Vec<Advertise> {
    vec![Advertise {
        prefixes: prefixes
            .iter()
            .map(|p| p.parse().expect("prefix"))
            .collect(),
        interfaces: Vec::new(),
        communities: Vec::new(),
        large_communities: Vec::new(),
        local_pref: None,
        pod_cidrs: None,
        services: None,
        domain: None,
    }]
}

/// The peer called `name`.
pub fn peer_mut<'a>(c: &'a mut Config, name: &str) -> &'a mut Peer {
    c.peers
        .iter_mut()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no kroute peer {name}"))
}

pub struct Kroute {
    // Field order = drop order: the daemon before its directory.
    daemon: lk::Kroute,
    dir: ScratchDir,
    client: Client,
    /// What [`Kroute::write_config`] writes.
    pub config: Config,
}

impl Kroute {
    /// Write the config and start `kroute daemon -c FILE` in `ns`; returns
    /// once the API answers.
    pub fn start(ns: &Netns, config: Config) -> Kroute {
        Kroute::start_with_env(ns, config, &[])
    }

    /// [`Kroute::start`] with these environment variables set too.
    pub fn start_with_env(ns: &Netns, mut config: Config, envs: &[(&str, &str)]) -> Kroute {
        let dir = test_dir(&format!("kroute-{}", ns.name()));
        let mut spec = KrouteSpec::in_dir(BIN.as_ref(), dir.path(), String::new());
        config.api.socket = spec.socket.clone();
        spec.envs
            .extend(envs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let spec = KrouteSpec {
            config: lk::to_yaml(&config).unwrap_or_else(|e| panic!("{e}")),
            ..spec
        };
        let client = Client::new(&spec.socket);
        let daemon = lk::Kroute::start(ns, spec).unwrap_or_else(|e| panic!("{e}"));
        Kroute {
            daemon,
            dir,
            client,
            config,
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.daemon.socket().to_path_buf()
    }

    pub fn config_path(&self) -> PathBuf {
        self.daemon.config_path().to_path_buf()
    }

    /// Write the current `config` to the config file (no reload).
    pub fn write_config(&mut self) {
        self.config.api.socket = self.socket();
        self.daemon
            .set_config_value(&self.config)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Write `yaml` as the config file as it is (e.g. an invalid one).
    pub fn write_config_text(&mut self, yaml: &str) {
        self.daemon
            .set_config(yaml.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// The current `config` as the YAML [`Kroute::write_config`] writes.
    pub fn config_text(&self) -> String {
        self.yaml_of(&self.config)
    }

    /// `c` as the YAML this daemon would be given (its own API socket).
    pub fn yaml_of(&self, c: &Config) -> String {
        let mut c = c.clone();
        c.api.socket = self.socket();
        lk::to_yaml(&c).unwrap_or_else(|e| panic!("{e}"))
    }

    /// SIGTERM and wait for exit (kroute should clean up on SIGTERM).
    pub fn stop(&mut self) {
        self.stop_status(Duration::from_secs(10));
    }

    /// SIGTERM, wait up to `grace` (then SIGKILL); returns the exit status.
    pub fn stop_status(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.daemon.stop(grace).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The daemon's PID (None when stopped).
    pub fn pid(&self) -> Option<u32> {
        self.daemon.pid()
    }

    /// Send a signal to the running daemon.
    pub fn signal(&mut self, sig: libc::c_int) {
        let p = self.daemon.process().expect("kroute is running");
        assert!(p.signal(sig), "cannot signal kroute (pid {})", p.pid());
    }

    /// Panic with the log tail if the daemon has exited.
    pub fn assert_alive(&mut self) {
        self.daemon.check_alive().unwrap_or_else(|e| panic!("{e}"));
    }

    /// SIGKILL at once (a crash: no NOTIFICATION, no kernel cleanup).
    pub fn kill(&mut self) {
        self.daemon.kill().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Start the daemon again (after `stop` or `kill`) with the current
    /// `config`; returns once the API answers.
    pub fn start_again(&mut self, _ns: &Netns) {
        self.write_config();
        self.daemon.start_again().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Stop, then start again with the current `config`.
    pub fn restart(&mut self, ns: &Netns) {
        self.stop();
        self.start_again(ns);
    }

    /// The tail of the daemon's log (all starts), for failure messages.
    pub fn log_tails(&self, n: usize) -> String {
        self.daemon.log_tail(n)
    }

    /// Write the current `config` and ask the daemon to reload it.
    pub fn reload(&mut self) {
        self.write_config();
        self.client
            .reload()
            .unwrap_or_else(|e| panic!("reload: {e}"));
    }

    /// Run a CLI command, whatever its exit status.
    pub fn cli_raw(&self, args: &[&str]) -> Output {
        self.daemon
            .cli_output(args)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Run a CLI command; panic (with its stderr) on failure.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        self.daemon.cli(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Netlink messages the daemon's FIBs have sent to the kernel so far
    /// (`/metrics`' `kroute_fib_netlink_messages_total`).
    pub fn fib_netlink_messages(&self) -> u64 {
        let v = self
            .client
            .request(&kroute::api::Request::Metrics)
            .unwrap_or_else(|e| panic!("metrics: {e}"));
        v["fib"]["netlinkMessages"]
            .as_u64()
            .unwrap_or_else(|| panic!("no fib.netlinkMessages in {v}"))
    }

    pub fn neighbors(&self) -> Vec<NeighborView> {
        self.client
            .neighbors()
            .unwrap_or_else(|e| panic!("show neighbors: {e}"))
    }

    /// One control API request, its answer as JSON.
    pub fn request(&self, req: &kroute::api::Request) -> Result<serde_json::Value, String> {
        self.client.request(req).map_err(|e| e.to_string())
    }

    pub fn neighbor(&self, name: &str) -> Option<NeighborView> {
        self.neighbors().into_iter().find(|n| n.name == name)
    }

    /// `show routes PREFIX` (Loc-RIB).
    pub fn routes(&self, prefix: &str) -> Vec<RouteView> {
        self.client
            .routes(Some(prefix), None, rib::Table::Loc)
            .unwrap_or_else(|e| panic!("show routes {prefix}: {e}"))
    }

    pub fn fib(&self) -> Vec<FibEntryView> {
        self.client
            .fib(None)
            .unwrap_or_else(|e| panic!("show fib: {e}"))
    }

    /// `explain PREFIX` (human text).
    pub fn explain_text(&self, prefix: &str) -> String {
        self.client
            .explain(prefix)
            .unwrap_or_else(|e| panic!("explain {prefix}: {e}"))
            .text
    }

    /// Ok when neighbor `name` is Established.
    pub fn established(&self, name: &str) -> Result<(), String> {
        match self.neighbor(name) {
            Some(n) if n.state == SessionState::Established => Ok(()),
            Some(n) => Err(format!("kroute neighbor {name}: {n:?}")),
            None => Err(format!(
                "kroute has no neighbor {name}: {:?}",
                self.neighbors()
            )),
        }
    }

    pub fn namespace(&self) -> &str {
        self.daemon.namespace()
    }
}
