//! The command line: the client commands print the daemon's typed API
//! answers ([`crate::api::views`]) as aligned tables (like `birdc`/`gobgp`)
//! or as JSON (`-o json`).

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use rib::Table;

use crate::api::views::BfdSessionView;
use crate::api::{Client, FibEntryView, NeighborView, RouteView};
use crate::config::ConfigError;
use crate::output::{table, Output};

pub const DEFAULT_SOCKET: &str = "/run/kroute/kroute.sock";

#[derive(Parser, Debug)]
#[command(
    name = "kroute",
    version,
    about = "BGP node router for bare-metal Kubernetes: learns routes, installs them in the kernel, explains every decision"
)]
pub struct Cli {
    /// API socket of the daemon (default: from -c FILE, else /run/kroute/kroute.sock)
    #[arg(long, global = true)]
    pub socket: Option<PathBuf>,
    /// Config file (the daemon's; the CLI reads api.socket from it)
    #[arg(short = 'c', long = "config", global = true)]
    pub config: Option<PathBuf>,
    /// Output format
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
    /// Show neighbors, routes or the kernel FIB
    Show {
        #[command(subcommand)]
        what: Show,
    },
    /// Explain every decision about a prefix: import, best path, kernel, export
    Explain { prefix: String },
    /// Re-read the config file and apply only what changed
    Reload,
    /// Act on one peer: `kroute peer NAME reset`
    Peer {
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
    /// The seed clusters on this machine, in network namespaces, with kroute
    /// on every node (root only)
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
    /// BGP sessions and their prefix counts
    Neighbors,
    /// Loc-RIB paths, or what a peer sent (--received) or was sent (--advertised)
    Routes {
        prefix: Option<String>,
        #[arg(long)]
        peer: Option<String>,
        #[arg(long, requires = "peer", conflicts_with = "advertised")]
        received: bool,
        #[arg(long, requires = "peer")]
        advertised: bool,
    },
    /// Routes kroute wants in the kernel and their state
    Fib { prefix: Option<String> },
    /// BFD sessions: discriminators, state, intervals, counters
    Bfd,
}

#[derive(Subcommand, Debug)]
pub enum PeerAction {
    /// Start a peer that `maxPrefixes` holds down, or reset its session
    /// (Cease/4) and connect again
    Reset,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Parse and validate a config file, or a KrouteConfig manifest rendered
    /// for a Node (--node); prints the first error with file and key
    Check {
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

/// `kroute config check FILE [--print]`: what to print if the file is
/// valid (a summary, or with `print` the canonical YAML).
pub fn check_config(file: &Path, print: bool) -> Result<String, ConfigError> {
    let c = crate::config::load(file)?;
    Ok(checked(&file.display().to_string(), c, print))
}

/// The summary line, or with `print` the canonical YAML with its secrets
/// kept secret: inline passwords are printed redacted, those from
/// `passwordFile` or `passwordSecretRef` not at all (the reference is).
fn checked(what: &str, mut c: crate::config::Config, print: bool) -> String {
    if print {
        for p in &mut c.peers {
            if p.password.as_ref().is_some_and(|pw| !pw.from_file()) {
                p.password = Some(crate::config::Password::redacted());
            }
        }
        return c.to_yaml();
    }
    format!(
        "{what}: ok ({} peers, {} policies, {} advertise entries)\n",
        c.peers.len(),
        c.policies.len(),
        c.advertise.len()
    )
}

/// `kroute config check FILE [--node NODE_YAML] [--print]`: a config file
/// as [`check_config`], or a `KrouteConfig` manifest rendered for the Node
/// in `node` (Secrets are not read: a `passwordSecretRef` gets a
/// placeholder key, never printed).
pub fn check(file: &Path, node: Option<&Path>, print: bool) -> Result<String, String> {
    use crate::kubernetes::{manifest, render};
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| format!("{}: cannot read: {e}", p.display()))
    };
    let text = read(file)?;
    let name = file.display().to_string();
    match (manifest::is_manifest(&text), node) {
        (false, None) => check_config(file, print).map_err(|e| e.to_string()),
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
            Ok(checked(&what, r.config, print))
        }
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
            } => {
                let table = if *received {
                    Table::Received
                } else if *advertised {
                    Table::Advertised
                } else {
                    Table::Loc
                };
                let v = client
                    .routes(prefix.as_deref(), peer.as_deref(), table)
                    .map_err(|e| e.to_string())?;
                if json {
                    to_json(&v)
                } else {
                    routes_table(&v)
                }
            }
            Show::Fib { prefix } => {
                let v = client.fib(prefix.as_deref()).map_err(|e| e.to_string())?;
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
        Command::Explain { prefix } => {
            let v = client.explain(prefix).map_err(|e| e.to_string())?;
            if json {
                to_json(&v.explanation)
            } else {
                v.text
            }
        }
        Command::Reload => {
            let v = client.reload().map_err(|e| e.to_string())?;
            if json {
                to_json(&v)
            } else {
                v.changes.iter().map(|c| format!("{c}\n")).collect()
            }
        }
        Command::Peer {
            name,
            action: PeerAction::Reset,
        } => {
            let req = crate::events::Request::ResetPeer { name: name.clone() };
            let v = client.request(&req).map_err(|e| e.to_string())?;
            if json {
                to_json(&v)
            } else {
                format!("peer {name} reset\n")
            }
        }
        Command::Daemon { .. }
        | Command::Config { .. }
        | Command::Manifests { .. }
        | Command::Lab { .. }
        | Command::Cluster { .. } => {
            unreachable!("handled in main")
        }
    };
    print!("{text}");
    Ok(())
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

fn neighbors_table(neighbors: &[NeighborView]) -> String {
    // The BFD column only when some peer runs BFD.
    let with_bfd = neighbors.iter().any(|n| n.bfd.is_some());
    let rows = neighbors
        .iter()
        .map(|n| {
            let mut row = vec![
                n.name.clone(),
                n.address.to_string(),
                n.asn.to_string(),
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
                r.as_path.clone(),
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
        let summary = check_config(file, false).unwrap();
        assert_eq!(
            summary,
            format!(
                "{}: ok (2 peers, 0 policies, 1 advertise entries)\n",
                file.display()
            )
        );
        let yaml = check_config(file, true).unwrap();
        let reparsed = crate::config::parse(&yaml, "printed.yaml").unwrap();
        assert_eq!(reparsed, crate::config::load(file).unwrap());
        let missing = check_config(Path::new("/nonexistent/kroute.yaml"), false).unwrap_err();
        assert!(missing.to_string().contains("cannot read"), "{missing}");
    }

    #[test]
    fn duration_is_readable() {
        assert_eq!(duration(0), "-");
        assert_eq!(duration(3661), "01:01:01");
        assert_eq!(duration(90061), "1d01h01m");
    }
}
