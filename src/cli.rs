//! The command line: the client commands format what the daemon's API
//! returns, as aligned tables (like `birdc`/`gobgp`) or as JSON (`-o json`).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::Value;

use crate::api::{self, Request};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the router (foreground; logs to stderr, RUST_LOG sets the level)
    Daemon,
    /// Show neighbors, routes or the kernel FIB
    Show {
        #[command(subcommand)]
        what: Show,
    },
    /// Explain every decision about a prefix: import, best path, kernel, export
    Explain { prefix: String },
    /// Re-read the config file and apply only what changed
    Reload,
    /// Configuration file tools
    Config {
        #[command(subcommand)]
        what: ConfigCmd,
    },
    /// The seed clusters on this machine, in network namespaces, with kroute
    /// on every node (root only)
    Lab {
        #[command(subcommand)]
        what: crate::lab::LabCmd,
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
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Parse and validate a config file; prints the first error with file:line
    Check {
        file: PathBuf,
        /// Also print the config in canonical form, every default spelled out
        #[arg(long)]
        print: bool,
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

/// Run a client command; returns the process exit code.
pub fn run_client(cli: &Cli) -> Result<(), String> {
    let req = match &cli.command {
        Command::Show { what } => match what {
            Show::Neighbors => Request::Neighbors,
            Show::Routes {
                prefix,
                peer,
                received,
                advertised,
            } => Request::Routes {
                prefix: prefix.clone(),
                peer: peer.clone(),
                received: *received,
                advertised: *advertised,
            },
            Show::Fib { prefix } => Request::Fib {
                prefix: prefix.clone(),
            },
        },
        Command::Explain { prefix } => Request::Explain {
            prefix: prefix.clone(),
        },
        Command::Reload => Request::Reload,
        Command::Daemon | Command::Config { .. } | Command::Lab { .. } => {
            unreachable!("handled in main")
        }
    };
    let value = api::call(&cli.socket_path()?, &req)?;
    if cli.output == Output::Json {
        let shown = match (&req, &value) {
            (Request::Explain { .. }, v) => v.get("explanation").cloned().unwrap_or(Value::Null),
            (_, v) => v.clone(),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&shown).unwrap_or_default()
        );
        return Ok(());
    }
    match req {
        Request::Neighbors => print_neighbors(&value),
        Request::Routes { .. } => print_routes(&value),
        Request::Fib { .. } => print_fib(&value),
        Request::Explain { .. } => {
            print!(
                "{}",
                value.get("text").and_then(Value::as_str).unwrap_or("")
            )
        }
        Request::Reload => {
            for c in value
                .get("changes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                println!("{}", c.as_str().unwrap_or(""));
            }
        }
    }
    Ok(())
}

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
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

/// Print rows as columns separated by two spaces, each as wide as its
/// widest cell.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<String>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
    out
}

fn print_neighbors(v: &Value) {
    let rows = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            vec![
                s(n, "name"),
                s(n, "address"),
                s(n, "asn"),
                s(n, "state"),
                duration(n.get("uptimeSeconds").and_then(Value::as_u64).unwrap_or(0)),
                s(n, "prefixesReceived"),
                s(n, "prefixesAccepted"),
                s(n, "prefixesAdvertised"),
                s(n, "lastError"),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "NAME",
                "ADDRESS",
                "ASN",
                "STATE",
                "UPTIME",
                "RECEIVED",
                "ACCEPTED",
                "ADVERTISED",
                "LAST ERROR"
            ],
            rows
        )
    );
}

fn print_routes(v: &Value) {
    let rows = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let best = r.get("best").and_then(Value::as_bool).unwrap_or(false);
            let multi = r.get("multipath").and_then(Value::as_bool).unwrap_or(false);
            let mark = match (best, multi) {
                (true, _) => "*",
                (false, true) => "=",
                _ => " ",
            };
            let installed = match r.get("installed").and_then(Value::as_bool) {
                Some(true) => "yes",
                Some(false) => "no",
                None => "",
            };
            vec![
                format!("{mark} {}", s(r, "prefix")),
                s(r, "nextHops"),
                s(r, "peer"),
                s(r, "asPath"),
                s(r, "localPref"),
                s(r, "med"),
                installed.to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["  PREFIX", "NEXT HOP", "PEER", "AS PATH", "LOCPRF", "MED", "KERNEL"],
            rows
        )
    );
}

fn print_fib(v: &Value) {
    let rows = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            vec![
                s(r, "prefix"),
                s(r, "status"),
                s(r, "bgpNextHops"),
                s(r, "kernelNextHops"),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["PREFIX", "STATUS", "BGP NEXT HOP", "KERNEL"], rows)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["A", "LONG HEADER", "C"],
            vec![vec!["xxxx".into(), "y".into(), "z".into()]],
        );
        assert_eq!(t, "A     LONG HEADER  C\nxxxx  y            z\n");
    }

    #[test]
    fn duration_is_readable() {
        assert_eq!(duration(0), "-");
        assert_eq!(duration(3661), "01:01:01");
        assert_eq!(duration(90061), "1d01h01m");
    }
}
