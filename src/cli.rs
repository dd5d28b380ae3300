//! The command line: the client commands print the daemon's typed API
//! answers ([`crate::api::views`]) as aligned tables (like `birdc`/`gobgp`)
//! or as JSON (`-o json`).

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use rib::Table;

use crate::api::views::{BfdSessionView, NeighborDetailView, StatusView};
use crate::api::{Client, FibEntryView, NeighborView, RouteView};
use crate::config::ConfigError;
use crate::output::{table, Output};

mod warnings;
pub use warnings::{warnings, ConfigWarning};

pub const DEFAULT_SOCKET: &str = "/run/kroute/kroute.sock";

/// `lab` is listed apart from the router's commands: it is the demo and
/// test bench, not something to run on a node.
const LAB_HELP: &str = "\
Lab (a demo on this machine, not for a node):
  lab  The seed clusters on this machine, in network namespaces, with kroute on every node (root only)";

#[derive(Parser, Debug)]
#[command(
    name = "kroute",
    version,
    about = "BGP node router for bare-metal Kubernetes: learns routes, installs them in the kernel, explains every decision",
    after_help = LAB_HELP
)]
pub struct Cli {
    /// API socket of the daemon (default: from -c FILE, else /run/kroute/kroute.sock)
    #[arg(long, global = true)]
    pub socket: Option<PathBuf>,
    /// Config file (the daemon's; the CLI reads api.socket from it)
    #[arg(short = 'c', long = "config", global = true)]
    pub config: Option<PathBuf>,
    /// Output format: aligned tables, or JSON (its shape is versioned, see
    /// the README's CLI section)
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

/// How the daemon writes its log lines (also `log.format` in the config).
pub use crate::config::LogFormat;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the router (foreground; logs to stderr, RUST_LOG sets the level)
    Daemon {
        /// Log lines as text (coloured only on a terminal) or as one JSON
        /// object per line (for journald, Loki, Elasticsearch); overrides
        /// the config's `log.format` (default: text)
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
        #[command(flatten)]
        kubernetes: KubernetesArgs,
    },
    /// Show the daemon's status, neighbors, routes, the kernel FIB or BFD
    Show {
        #[command(subcommand)]
        what: Show,
    },
    /// Explain every decision about a prefix: import, best path, kernel, export
    Explain {
        /// ADDRESS/LENGTH (e.g. 10.0.0.0/24) or an address (a host route)
        prefix: String,
        /// In this routing domain (`domains[].name`) instead of the default
        #[arg(long, value_name = "NAME")]
        domain: Option<String>,
    },
    /// Re-read the config file and apply only what changed
    Reload,
    /// Session and route events as they happen, until interrupted (with
    /// `-o json` one object per line)
    Watch,
    /// Act on one peer: disable, enable, reset or refresh its session
    Peer {
        /// The peer's `name` in the config
        name: String,
        #[command(subcommand)]
        action: PeerAction,
    },
    /// Configuration file tools
    Config {
        #[command(subcommand)]
        what: ConfigCmd,
    },
    /// Print the Kubernetes manifests: CRDs, RBAC and the DaemonSet
    /// (`kubectl apply -f -`)
    Manifests {
        /// The container image
        #[arg(long, default_value_t = crate::kubernetes::manifests::default_image())]
        image: String,
        /// A Secret in kroute-system that `passwordSecretRef`s name (repeat for
        /// several); kroute may `get` only these
        #[arg(long = "secret", value_name = "NAME")]
        secrets: Vec<String>,
        /// The nodes' `api.http.port`: where the probes ask
        #[arg(long, default_value_t = crate::kubernetes::manifests::DEFAULT_HTTP_PORT)]
        http_port: u16,
    },
    /// The cluster's routing health, from every node's KrouteNodeState
    Cluster {
        #[command(subcommand)]
        what: ClusterCmd,
    },
    /// Shell completion script for bash, zsh or fish, on stdout
    /// (e.g. `kroute completion bash > /etc/bash_completion.d/kroute`)
    Completion {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The man page (roff), on stdout (`kroute man | man -l -`)
    Man,
    /// The seed clusters on this machine, in network namespaces, with kroute
    /// on every node (root only)
    #[command(hide = true)]
    Lab {
        #[command(subcommand)]
        what: crate::lab::LabCmd,
    },
}

/// `kroute daemon --kubernetes`: the config from the cluster.
#[derive(clap::Args, Debug, Clone)]
pub struct KubernetesArgs {
    /// Take the config from the cluster's KrouteConfigs (node name from
    /// NODE_NAME) and advertise pod CIDRs and Services from the API
    #[arg(long, conflicts_with = "config")]
    pub kubernetes: bool,
    /// Connect with this kubeconfig instead of the in-cluster service account
    #[arg(long, requires = "kubernetes")]
    pub kubeconfig: Option<PathBuf>,
    /// Where the last rendered config is cached (started from when the API
    /// server is unreachable)
    #[arg(long, default_value = "/var/lib/kroute", requires = "kubernetes")]
    pub state_dir: PathBuf,
    /// The namespace of the Secrets `passwordSecretRef` names
    #[arg(long, default_value = "kroute-system", requires = "kubernetes")]
    pub namespace: String,
}

#[derive(Subcommand, Debug)]
pub enum ClusterCmd {
    /// Every node x every node's pod CIDRs: installed (✓) or why not;
    /// exit status 1 when any pair is missing
    Check {
        /// Default: $KUBECONFIG, else ~/.kube/config, else in-cluster
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum Show {
    /// Version, router ID, uptime, config file and when it was loaded,
    /// RIB and FIB counts
    Status,
    /// BGP sessions and their prefix counts
    Neighbors,
    /// Everything about one peer: negotiated capabilities and families,
    /// timers, counters, last error and NOTIFICATION, BFD and graceful
    /// restart
    Neighbor {
        /// The peer's `name` in the config
        name: String,
    },
    /// Loc-RIB paths, or what a peer sent (--received) or was sent (--advertised)
    Routes {
        /// Only this prefix (ADDRESS/LENGTH, or an address: the routes
        /// covering it)
        prefix: Option<String>,
        /// Only the paths from (or with --advertised: to) this peer
        #[arg(long, value_name = "NAME")]
        peer: Option<String>,
        /// The peer's Adj-RIB-In: what it sent, before import policy
        /// (rejected paths too, with the reason)
        #[arg(long, requires = "peer", conflicts_with = "advertised")]
        received: bool,
        /// The peer's Adj-RIB-Out: what kroute sent it, after export policy
        #[arg(long, requires = "peer")]
        advertised: bool,
        /// The Loc-RIB of this routing domain (`domains[].name`)
        #[arg(long, value_name = "NAME")]
        domain: Option<String>,
    },
    /// Routes kroute wants in the kernel and their state
    Fib {
        /// Only this prefix (ADDRESS/LENGTH or an address)
        prefix: Option<String>,
        /// The FIB of this routing domain (its kernel table)
        #[arg(long, value_name = "NAME")]
        domain: Option<String>,
    },
    /// Routing domains: kernel table, ip rules, peers, route counts
    Domains,
    /// BFD sessions: discriminators, state, intervals, counters
    Bfd,
}

#[derive(Subcommand, Debug)]
pub enum PeerAction {
    /// Close the session with Cease/2 (administrative shutdown) and keep
    /// it down, across reloads too, until `enable`; its routes leave the
    /// RIB and the kernel
    Disable,
    /// Let a disabled peer connect again
    Enable,
    /// Start a peer that `maxPrefixes` holds down, or reset its session
    /// (Cease/4) and connect again
    Reset,
    /// Soft refresh, session kept: run import again over what the peer
    /// sent (Adj-RIB-In) and send it all of its Adj-RIB-Out again
    Refresh,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Parse and validate a config file, or a KrouteConfig manifest rendered
    /// for a Node (--node); prints the first error with file and key
    Check {
        /// The config file (or with --node a KrouteConfig manifest)
        file: PathBuf,
        /// Also print the config in canonical form, every default spelled out
        #[arg(long)]
        print: bool,
        /// FILE is a KrouteConfig manifest (one or several YAML documents):
        /// render it for this Node manifest (`kubectl get node N -o yaml`)
        #[arg(long, value_name = "NODE_YAML")]
        node: Option<PathBuf>,
    },
}

impl Cli {
    pub fn socket_path(&self) -> Result<PathBuf, String> {
        if let Some(s) = &self.socket {
            return Ok(s.clone());
        }
        if let Some(c) = &self.config {
            let cfg = crate::config::load(c).map_err(|e| e.to_string())?;
            return Ok(cfg.api.socket);
        }
        Ok(PathBuf::from(DEFAULT_SOCKET))
    }
}

/// What `kroute config check` found in a valid file.
#[derive(Debug)]
pub struct Checked {
    /// "FILE" or "FILE: node N (KrouteConfig A, B)".
    pub what: String,
    pub config: crate::config::Config,
    pub warnings: Vec<ConfigWarning>,
}

impl Checked {
    /// The summary line, or with `print` the canonical YAML with its
    /// secrets kept secret: inline passwords are printed redacted, those
    /// from `passwordFile` or `passwordSecretRef` not at all (the
    /// reference is).
    pub fn text(&self, print: bool) -> String {
        let c = &self.config;
        if print {
            return redacted(c.clone()).to_yaml();
        }
        let warned = match self.warnings.len() {
            0 => String::new(),
            n => format!(", {n} warning{}", if n == 1 { "" } else { "s" }),
        };
        format!(
            "{}: ok ({} peers, {} policies, {} advertise entries{warned})\n",
            self.what,
            c.peers.len(),
            c.policies.len(),
            c.advertise.len()
        )
    }

    /// The warnings as compilers print them: `FILE:LINE: warning: KEY: ...`.
    pub fn warning_lines(&self, file: &Path) -> String {
        self.warnings
            .iter()
            .map(|w| {
                let line = w.line.map(|l| format!(":{l}")).unwrap_or_default();
                format!(
                    "{}{line}: warning: {}: {}\n",
                    file.display(),
                    w.key,
                    w.message
                )
            })
            .collect()
    }

    /// `-o json`: `ok`, the counts, the warnings, and with `print` the
    /// canonical config.
    pub fn json(&self, print: bool) -> serde_json::Value {
        let c = &self.config;
        let mut v = serde_json::json!({
            "schemaVersion": crate::api::views::SCHEMA_VERSION,
            "file": self.what,
            "ok": true,
            "peers": c.peers.len(),
            "policies": c.policies.len(),
            "advertise": c.advertise.len(),
            "warnings": self.warnings,
        });
        if print {
            v["config"] = serde_json::to_value(redacted(c.clone())).unwrap_or_default();
        }
        v
    }
}

fn redacted(mut c: crate::config::Config) -> crate::config::Config {
    for p in &mut c.peers {
        if p.password.as_ref().is_some_and(|pw| !pw.from_file()) {
            p.password = Some(crate::config::Password::redacted());
        }
    }
    c
}

/// `kroute config check FILE`: the file checked, with its warnings.
pub fn check_config(file: &Path) -> Result<Checked, ConfigError> {
    let c = crate::config::load(file)?;
    // load() read it just now; a file that vanished since gets no lines.
    let text = std::fs::read_to_string(file).unwrap_or_default();
    Ok(Checked {
        what: file.display().to_string(),
        warnings: warnings(&c, &text),
        config: c,
    })
}

/// `kroute config check FILE [--node NODE_YAML]`: a config file as
/// [`check_config`], or a `KrouteConfig` manifest rendered for the Node
/// in `node` (Secrets are not read: a `passwordSecretRef` gets a
/// placeholder key, never printed; warnings carry no line, the config
/// being a rendering).
pub fn check(file: &Path, node: Option<&Path>) -> Result<Checked, String> {
    use crate::kubernetes::{manifest, render};
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| format!("{}: cannot read: {e}", p.display()))
    };
    let text = read(file)?;
    let name = file.display().to_string();
    match (manifest::is_manifest(&text), node) {
        (false, None) => check_config(file).map_err(|e| e.to_string()),
        (false, Some(_)) => Err(format!(
            "{name}: --node renders a KrouteConfig manifest, and this is a config file \
             (no `kind: KrouteConfig`); leave --node out to check it"
        )),
        (true, None) => Err(format!(
            "{name}: a KrouteConfig manifest is rendered for a Node: give --node NODE_YAML \
             (`kubectl get node NAME -o yaml`)"
        )),
        (true, Some(node_file)) => {
            let located = manifest::configs(&text, &name)?;
            let node_name = node_file.display().to_string();
            let node = manifest::node(&read(node_file)?, &node_name)?;
            let configs: Vec<_> = located.iter().map(|(c, _)| c.clone()).collect();
            let r = render::render(&configs, &node, &render::PlaceholderSecrets).map_err(|e| {
                // The key path is in the last config the error names.
                let origin = e.configs.last().and_then(|n| {
                    located
                        .iter()
                        .find(|(c, _)| c.metadata.name.as_deref() == Some(n))
                        .map(|(_, o)| *o)
                });
                let place = match origin {
                    Some(o) if !e.path.is_empty() => o.place(&text, &name, &e.path),
                    _ => name.clone(),
                };
                format!("{place}: {e}")
            })?;
            let what = format!(
                "{name}: node {:?} (KrouteConfig {})",
                node_name_of(&node),
                r.configs.join(", ")
            );
            let warnings = warnings(&r.config, "")
                .into_iter()
                .map(|w| ConfigWarning { line: None, ..w })
                .collect();
            Ok(Checked {
                what,
                config: r.config,
                warnings,
            })
        }
    }
}

/// `kroute config check` as a command: the summary (or the canonical
/// config) on stdout, warnings on stderr; with `-o json` one object on
/// stdout, `{"ok": false, "error": ...}` when the file is invalid.
pub fn config_check_main(
    file: &Path,
    node: Option<&Path>,
    print: bool,
    output: Output,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let checked = check(file, node);
    if output == Output::Json {
        let (v, code) = match &checked {
            Ok(c) => (c.json(print), ExitCode::SUCCESS),
            Err(e) => (
                serde_json::json!({
                    "schemaVersion": crate::api::views::SCHEMA_VERSION,
                    "file": file.display().to_string(),
                    "ok": false,
                    "error": e,
                }),
                ExitCode::FAILURE,
            ),
        };
        print!("{}", to_json(&v));
        return code;
    }
    match checked {
        Ok(c) => {
            eprint!("{}", c.warning_lines(file));
            print!("{}", c.text(print));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `kroute completion SHELL` and `kroute man`: generated from the same
/// definition as the parser, so they never drift from it.
pub fn generate(command: &Command, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut cmd = documented_command();
    match command {
        Command::Completion { shell } => {
            clap_complete::generate(*shell, &mut cmd, "kroute", out);
            Ok(())
        }
        Command::Man => {
            // The subcommands in the page, each with its options.
            clap_mangen::Man::new(cmd.clone()).render(out)?;
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                man_section(sub, "kroute", out)?;
            }
            Ok(())
        }
        _ => unreachable!("only completion and man are generated"),
    }
}

/// The command definition with `lab` shown (it is only left out of the
/// top-level `--help` list, to be listed apart).
pub fn documented_command() -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = Cli::command().mut_subcommand("lab", |lab| lab.hide(false));
    // Propagates the global options into the subcommands, which the man
    // page renders one by one.
    cmd.build();
    cmd
}

/// A `.SH` section for a subcommand (and its own subcommands): usage,
/// what it does and its arguments.
fn man_section(
    cmd: &clap::Command,
    parent: &str,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let name = format!("{parent} {}", cmd.get_name());
    let mut cmd = cmd.clone().bin_name(&name);
    writeln!(out, ".SH \"{}\"", name.to_uppercase())?;
    let usage = cmd.render_usage().to_string();
    let usage = usage.trim_start_matches("Usage: ");
    writeln!(out, ".B {}", roff_escape(usage))?;
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        writeln!(out, ".PP\n{}", roff_escape(&about.to_string()))?;
    }
    for arg in cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_global_set())
    {
        let flag = match (arg.get_short(), arg.get_long()) {
            (Some(s), Some(l)) => format!("-{s}, --{l}"),
            (None, Some(l)) => format!("--{l}"),
            (Some(s), None) => format!("-{s}"),
            (None, None) => arg.get_id().as_str().to_uppercase(),
        };
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string());
        writeln!(
            out,
            ".TP\n\\fB{}\\fR\n{}",
            roff_escape(&flag),
            roff_escape(&help.unwrap_or_default())
        )?;
    }
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        man_section(sub, &name, out)?;
    }
    Ok(())
}

/// Text safe in a roff line: backslashes doubled, a leading `.` or `'`
/// guarded.
fn roff_escape(s: &str) -> String {
    let s = s.replace('\\', "\\\\").replace('\n', " ");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

fn node_name_of(node: &k8s_openapi::api::core::v1::Node) -> String {
    node.metadata.name.clone().unwrap_or_default()
}

/// Run a client command: ask the daemon and print its answer.
pub fn run_client(cli: &Cli) -> Result<(), String> {
    let client = Client::new(cli.socket_path()?);
    let json = cli.output == Output::Json;
    let text = match &cli.command {
        Command::Show { what } => match what {
            Show::Status => {
                let v = client.status().map_err(|e| e.to_string())?;
                if json {
                    to_json(&v)
                } else {
                    status_text(&v)
                }
            }
            Show::Neighbor { name } => {
                let v = client.neighbor(name).map_err(|e| e.to_string())?;
                if json {
                    to_json(&v)
                } else {
                    neighbor_text(&v)
                }
            }
            Show::Neighbors => {
                let v = client.neighbors().map_err(|e| e.to_string())?;
                if json {
                    to_json(&v)
                } else {
                    neighbors_table(&v)
                }
            }
            Show::Routes {
                prefix,
                peer,
                received,
                advertised,
                domain,
            } => {
                let table = if *received {
                    Table::Received
                } else if *advertised {
                    Table::Advertised
                } else {
                    Table::Loc
                };
                let v = client
                    .routes_in(domain.as_deref(), prefix.as_deref(), peer.as_deref(), table)
                    .map_err(|e| e.to_string())?;
                if json {
                    to_json(&v)
                } else {
                    routes_table(&v)
                }
            }
            Show::Domains => {
                let v = client.domains().map_err(|e| e.to_string())?;
                if json {
                    to_json(&v)
                } else {
                    domains_table(&v)
                }
            }
            Show::Fib { prefix, domain } => {
                let v = client
                    .fib_in(domain.as_deref(), prefix.as_deref())
                    .map_err(|e| e.to_string())?;
                if json {
                    to_json(&v)
                } else {
                    fib_table(&v)
                }
            }
            Show::Bfd => {
                let v = client.bfd().map_err(|e| e.to_string())?;
                if json {
                    to_json(&v)
                } else {
                    bfd_table(&v)
                }
            }
        },
        Command::Explain { prefix, domain } => {
            let v = client
                .explain_in(domain.as_deref(), prefix)
                .map_err(|e| e.to_string())?;
            if json {
                to_json(&v.explanation)
            } else {
                v.text
            }
        }
        Command::Watch => return watch(&client, json),
        Command::Reload => {
            let v = client.reload().map_err(|e| e.to_string())?;
            if json {
                to_json(&v)
            } else {
                v.changes.iter().map(|c| format!("{c}\n")).collect()
            }
        }
        Command::Peer { name, action } => {
            use crate::events::Request;
            let name = name.clone();
            let (req, done) = match action {
                PeerAction::Disable => (Request::DisablePeer { name: name.clone() }, "disabled"),
                PeerAction::Enable => (Request::EnablePeer { name: name.clone() }, "enabled"),
                PeerAction::Reset => (Request::ResetPeer { name: name.clone() }, "reset"),
                PeerAction::Refresh => (Request::RefreshPeer { name: name.clone() }, "refreshed"),
            };
            let v = client.request(&req).map_err(|e| e.to_string())?;
            if json {
                to_json(&v)
            } else if v.get("changed") == Some(&serde_json::Value::Bool(false)) {
                format!("peer {name} was already {done}\n")
            } else {
                format!("peer {name} {done}\n")
            }
        }
        Command::Daemon { .. }
        | Command::Config { .. }
        | Command::Manifests { .. }
        | Command::Lab { .. }
        | Command::Completion { .. }
        | Command::Man
        | Command::Cluster { .. } => {
            unreachable!("handled in main")
        }
    };
    print!("{text}");
    Ok(())
}

/// `kroute watch`: each event on its own line, flushed at once (for
/// `| grep` and the like); ends when stdout is closed.
fn watch(client: &Client, json: bool) -> Result<(), String> {
    use std::io::Write;
    let mut stdout = std::io::stdout();
    client
        .watch(|event| {
            let line = if json {
                serde_json::to_string(&event).unwrap_or_default()
            } else {
                watch_line(&event)
            };
            writeln!(stdout, "{line}")
                .and_then(|()| stdout.flush())
                .is_ok()
        })
        .map_err(|e| e.to_string())
}

/// A watch event in words: `TIME  session tor-a Established`.
fn watch_line(event: &crate::api::views::WatchEvent) -> String {
    use crate::api::views::WatchEvent;
    let time = |t: u64| utc(t);
    match event {
        WatchEvent::Session {
            time_unix,
            peer,
            state,
            reason,
        } => {
            let why = reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            let what = if *state == crate::events::SessionState::Established {
                "up (Established)".to_string()
            } else {
                format!("down{why}")
            };
            format!("{}  session {peer} {what}", time(*time_unix))
        }
        WatchEvent::Route {
            time_unix,
            prefix,
            next_hops,
        } => {
            let what = if next_hops.is_empty() {
                "withdrawn".to_string()
            } else {
                format!("via {}", next_hops.join(", "))
            };
            format!("{}  route {prefix} {what}", time(*time_unix))
        }
        WatchEvent::Peer {
            time_unix,
            peer,
            action,
        } => format!("{}  peer {peer} {action} by the operator", time(*time_unix)),
        WatchEvent::Lagged { missed } => {
            format!("(read too slowly: {missed} events missed)")
        }
    }
}

/// `-o json`: the answer, pretty-printed. Through `serde_json::Value` so
/// the keys come in the order they always had (sorted), whatever the
/// order of the view's fields.
fn to_json<T: serde::Serialize>(view: &T) -> String {
    let value = serde_json::to_value(view).unwrap_or_default();
    let mut s = serde_json::to_string_pretty(&value).unwrap_or_default();
    s.push('\n');
    s
}

/// A table cell for an optional value: empty when absent.
fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn duration(secs: u64) -> String {
    if secs == 0 {
        return "-".into();
    }
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h{m:02}m")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// A Unix time as UTC `YYYY-MM-DD HH:MM:SS UTC` and how long ago.
fn when(unix: u64, now: u64) -> String {
    if unix == 0 {
        return "-".to_string();
    }
    format!("{} ({} ago)", utc(unix), duration(now.saturating_sub(unix)))
}

/// A Unix time as UTC `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(unix: u64) -> String {
    let (days, secs) = (unix / 86400, unix % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

fn now_unix() -> u64 {
    crate::api::views::unix_seconds(std::time::SystemTime::now())
}

/// `name: value` lines, the names padded to one width.
fn fields(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}

fn status_text(s: &StatusView) -> String {
    let now = now_unix();
    let rib_text = |rib: &[crate::api::views::FamilyCountView]| {
        rib.iter()
            .map(|f| format!("{}: {} prefixes, {} paths", f.family, f.prefixes, f.paths))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let fib_text = |fib: &std::collections::BTreeMap<String, usize>| {
        if fib.is_empty() {
            "empty".to_string()
        } else {
            fib.iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let (rib, fib) = (rib_text(&s.rib), fib_text(&s.fib));
    // With routing domains the totals above, then each domain's share.
    let domains: Vec<(String, String)> = s
        .domains
        .iter()
        .map(|d| {
            (
                format!("Domain {}", d.name),
                format!(
                    "table {}; RIB {}; FIB {}",
                    crate::config::table_name(d.table),
                    rib_text(&d.rib),
                    fib_text(&d.fib)
                ),
            )
        })
        .collect();
    let mut rows = vec![
        ("Version", s.version.clone()),
        ("Router", format!("AS{} id {}", s.asn, s.router_id)),
        ("Uptime", duration(s.uptime_seconds)),
        (
            "Config",
            s.config_file
                .clone()
                .unwrap_or_else(|| "from Kubernetes (KrouteConfig)".to_string()),
        ),
        ("Config loaded", when(s.config_loaded_unix, now)),
        (
            "Peers",
            format!(
                "{} configured, {} established, {} disabled",
                s.peers_configured, s.peers_established, s.peers_disabled
            ),
        ),
        (
            "Convergence",
            if s.initial_convergence_done {
                "initial convergence done"
            } else {
                "initial convergence in progress"
            }
            .to_string(),
        ),
        ("RIB", rib),
        ("FIB", fib),
    ];
    rows.extend(domains.iter().map(|(k, v)| (k.as_str(), v.clone())));
    fields(&rows) + &bmp_text(s, now)
}

/// One line per BMP collector: its connection, since when, what it got.
fn bmp_text(s: &StatusView, now: u64) -> String {
    let rows: Vec<(String, String)> = s
        .bmp
        .iter()
        .map(|c| {
            let mut v = format!(
                "{} {}, {} messages sent, {} connections",
                c.state,
                when(c.since_unix, now),
                c.messages_sent,
                c.connects
            );
            if let Some(e) = &c.last_error {
                v.push_str(&format!("; last error: {e}"));
            }
            (
                format!("BMP {}", std::net::SocketAddr::new(c.address, c.port)),
                v,
            )
        })
        .collect();
    let rows: Vec<(&str, String)> = rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    fields(&rows)
}

fn families(f: &[wire::Family]) -> String {
    if f.is_empty() {
        return "-".to_string();
    }
    f.iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn chain(c: &rib::policy::PolicyChain) -> String {
    use rib::policy::PolicyChain;
    match c {
        PolicyChain::Unset => "(not set)".to_string(),
        PolicyChain::All => "all".to_string(),
        PolicyChain::None => "none".to_string(),
        PolicyChain::Named(v) => v.join(", "),
    }
}

/// `show neighbor NAME` as text, in the order of vtysh's `show bgp
/// neighbor`: who, session, timers, capabilities, counters, errors.
fn neighbor_text(d: &NeighborDetailView) -> String {
    let n = &d.neighbor;
    let now = now_unix();
    let state = if d.disabled {
        format!("{} (disabled)", n.state)
    } else {
        n.state.to_string()
    };
    let mut rows = vec![
        (
            "Neighbor",
            format!(
                "{} {} port {}, AS {} ({})",
                n.name,
                n.address_text(),
                n.port,
                n.asn_text(),
                d.kind
            ),
        ),
        (
            "Local",
            format!(
                "AS{}, address {}",
                d.local_asn,
                opt_or(n.local_address, "-")
            ),
        ),
        (
            "State",
            format!("{state}, since {}", when(d.last_change_unix, now)),
        ),
        // "-" only while not Established (duration() writes 0 as "-").
        (
            "Uptime",
            match (n.state, n.uptime_seconds) {
                (crate::events::SessionState::Established, 0) => "00:00:00".to_string(),
                (_, secs) => duration(secs),
            },
        ),
        ("Remote router ID", opt_or(n.remote_router_id, "-")),
        (
            "Dynamic",
            n.dynamic.as_ref().map_or("no".to_string(), |d| {
                format!("yes, range {} (template {})", d.range, d.template)
            }),
        ),
        ("Passive", yes_no(d.passive)),
        (
            "Hold time",
            format!(
                "{} s configured, {} negotiated, keepalive {}",
                d.timers.hold_time_configured,
                opt_or(d.timers.hold_time_negotiated.map(|h| format!("{h} s")), "-"),
                opt_or(d.timers.keepalive.map(|k| format!("{k} s")), "-")
            ),
        ),
        ("Connect retry", format!("{} s", d.timers.connect_retry)),
        ("Families configured", families(&d.configured_families)),
        ("Families negotiated", families(&n.families)),
        ("Import policy", chain(&d.import)),
        ("Export policy", chain(&d.export)),
        (
            "Prefixes",
            format!(
                "{} received, {} accepted, {} advertised, {} too big to send",
                n.prefixes_received, n.prefixes_accepted, n.prefixes_advertised, n.prefixes_too_big
            ),
        ),
        ("UPDATEs queued", d.updates_queued.to_string()),
        (
            "Import problems",
            format!(
                "{} treated as withdraw, {} attributes discarded, {} NLRI ignored",
                n.updates_treated_as_withdraw, n.attributes_discarded, n.nlri_ignored
            ),
        ),
        (
            "Route refresh",
            format!(
                "{} ignored, {} coalesced",
                n.route_refresh_ignored, n.route_refresh_coalesced
            ),
        ),
        ("Flaps", n.flaps.to_string()),
        ("Last error", opt_or(n.last_error.as_ref(), "-")),
    ];
    if let Some(h) = &n.held_down {
        rows.push(("Held down", h.clone()));
    }
    rows.push((
        "BFD",
        match (d.bfd_configured, n.bfd) {
            (false, _) => "not configured".to_string(),
            (true, Some(s)) => s.to_string(),
            (true, None) => "configured".to_string(),
        },
    ));
    rows.push((
        "Extended next hop",
        format!(
            "we advertise it: {}; negotiated: {}",
            yes_no(d.extended_next_hop.advertised),
            yes_no(d.extended_next_hop.negotiated)
        ),
    ));
    rows.push((
        "Graceful restart",
        format!(
            "we advertise it: {}; the peer: {}",
            yes_no(d.graceful_restart_advertised),
            match &n.graceful_restart {
                None => "no capability".to_string(),
                Some(g) => format!(
                    "restart time {} s{}, families {}, forwarding kept {}, {} stale routes{}",
                    g.restart_time,
                    if g.restarting { " (restarting)" } else { "" },
                    families(&g.families),
                    families(&g.forwarding_preserved),
                    g.stale_routes,
                    g.stale
                        .as_ref()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default()
                ),
            }
        ),
    ));
    fields(&rows)
}

fn opt_or<T: ToString>(v: Option<T>, none: &str) -> String {
    v.map_or_else(|| none.to_string(), |v| v.to_string())
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

fn neighbors_table(neighbors: &[NeighborView]) -> String {
    // The BFD column only when some peer runs BFD, DOMAIN only with
    // routing domains.
    let with_bfd = neighbors.iter().any(|n| n.bfd.is_some());
    // The DYNAMIC column (range and template) only with dynamic neighbors.
    let with_dynamic = neighbors.iter().any(|n| n.dynamic.is_some());
    let with_domain = neighbors.iter().any(|n| n.domain.is_some());
    let rows = neighbors
        .iter()
        .map(|n| {
            let mut row = vec![
                n.name.clone(),
                n.address_text(),
                n.asn_text(),
                n.state.to_string(),
                duration(n.uptime_seconds),
                n.prefixes_received.to_string(),
                n.prefixes_accepted.to_string(),
                n.prefixes_advertised.to_string(),
                // What import refused or ignored: nothing is lost silently.
                format!(
                    "{}/{}/{}",
                    n.updates_treated_as_withdraw, n.attributes_discarded, n.nlri_ignored
                ),
                opt(n.last_error.as_ref()),
            ];
            if with_bfd {
                row.insert(4, n.bfd.map_or("-".to_string(), |s| s.to_string()));
            }
            if with_dynamic {
                let from = n
                    .dynamic
                    .as_ref()
                    .map_or("-".to_string(), |d| format!("{} ({})", d.range, d.template));
                row.insert(3, from);
            }
            if with_domain {
                row.insert(3, n.domain.clone().unwrap_or_else(|| "default".into()));
            }
            row
        })
        .collect();
    let mut headers = vec![
        "NAME",
        "ADDRESS",
        "ASN",
        "STATE",
        "UPTIME",
        "RECEIVED",
        "ACCEPTED",
        "ADVERTISED",
        "TAW/DISC/IGN",
        "LAST ERROR",
    ];
    if with_bfd {
        headers.insert(4, "BFD");
    }
    if with_dynamic {
        headers.insert(3, "DYNAMIC");
    }
    if with_domain {
        headers.insert(3, "DOMAIN");
    }
    table(&headers, rows)
}

fn domains_table(domains: &[crate::api::views::DomainView]) -> String {
    let rows = domains
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                crate::config::table_name(d.table),
                d.prefixes.to_string(),
                d.fib_installed.to_string(),
                if d.peers.is_empty() {
                    "-".to_string()
                } else {
                    d.peers.join(",")
                },
                if d.rules.is_empty() {
                    "-".to_string()
                } else {
                    d.rules.join("; ")
                },
                if d.imports.is_empty() {
                    "-".to_string()
                } else {
                    d.imports.join("; ")
                },
            ]
        })
        .collect();
    let headers = [
        "NAME",
        "TABLE",
        "PREFIXES",
        "INSTALLED",
        "PEERS",
        "RULES",
        "IMPORTS",
    ];
    table(&headers, rows)
}

/// Microseconds as milliseconds, e.g. "300" or "16.7".
fn ms(us: u64) -> String {
    if us.is_multiple_of(1000) {
        (us / 1000).to_string()
    } else {
        format!("{:.1}", us as f64 / 1000.0)
    }
}

fn bfd_table(sessions: &[BfdSessionView]) -> String {
    let rows = sessions
        .iter()
        .map(|s| {
            vec![
                s.peer.clone(),
                s.address.to_string(),
                s.state.to_string(),
                s.remote_state.to_string(),
                format!("{}/{}", s.local_discriminator, s.remote_discriminator),
                format!(
                    "{}/{}/{}",
                    ms(s.desired_min_tx_us),
                    ms(s.required_min_rx_us),
                    ms(s.tx_interval_us)
                ),
                s.detect_multiplier.to_string(),
                s.detect_time_us.map_or("-".to_string(), ms),
                format!("{}/{}", s.packets_in, s.packets_out),
                s.state_changes.to_string(),
                format!("{}/{}", ms(s.tx_late_max_us), ms(s.rx_gap_max_us)),
                s.diagnostic.clone(),
            ]
        })
        .collect();
    table(
        &[
            "PEER",
            "ADDRESS",
            "STATE",
            "REMOTE",
            "DISCR LOCAL/REMOTE",
            "TX/RX/AGREED MS",
            "MULT",
            "DETECT MS",
            "PKTS IN/OUT",
            "CHANGES",
            "TX LATE/RX GAP MAX MS",
            "DIAGNOSTIC",
        ],
        rows,
    )
}

fn routes_table(routes: &[RouteView]) -> String {
    let rows = routes
        .iter()
        .map(|r| {
            let mark = match (r.best, r.multipath) {
                (true, _) => "*",
                (false, true) => "=",
                _ => " ",
            };
            vec![
                format!("{mark} {}", r.prefix),
                r.next_hops.join(","),
                r.peer.clone(),
                r.as_path.to_string(),
                opt(r.local_pref),
                opt(r.med),
                match &r.stale {
                    Some(s) => format!("{}, stale ({s})", if r.installed { "yes" } else { "no" }),
                    None => if r.installed { "yes" } else { "no" }.to_string(),
                },
            ]
        })
        .collect();
    table(
        &[
            "  PREFIX", "NEXT HOP", "PEER", "AS PATH", "LOCPRF", "MED", "KERNEL",
        ],
        rows,
    )
}

fn fib_table(entries: &[FibEntryView]) -> String {
    let rows = entries
        .iter()
        .map(|e| {
            vec![
                e.prefix.to_string(),
                e.status.clone(),
                e.bgp_next_hops.join(","),
                e.kernel_next_hops.join(","),
            ]
        })
        .collect();
    table(&["PREFIX", "STATUS", "BGP NEXT HOP", "KERNEL"], rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_check_summarises_or_prints_the_canonical_form() {
        let file = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/node.yaml"));
        let checked = check_config(file).unwrap();
        assert_eq!(
            checked.text(false),
            format!(
                "{}: ok (2 peers, 0 policies, 1 advertise entries)\n",
                file.display()
            )
        );
        let yaml = checked.text(true);
        let reparsed = crate::config::parse(&yaml, "printed.yaml").unwrap();
        assert_eq!(reparsed, crate::config::load(file).unwrap());
        let missing = check_config(Path::new("/nonexistent/kroute.yaml")).unwrap_err();
        assert!(missing.to_string().contains("cannot read"), "{missing}");
    }

    #[test]
    fn unix_times_read_as_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_183_999), "2026-12-02 03:59:59 UTC");
        assert_eq!(when(1_000, 1_061), "1970-01-01 00:16:40 UTC (00:01:01 ago)");
        assert_eq!(when(0, 5), "-");
    }

    #[test]
    fn duration_is_readable() {
        assert_eq!(duration(0), "-");
        assert_eq!(duration(3661), "01:01:01");
        assert_eq!(duration(90061), "1d01h01m");
    }
}
