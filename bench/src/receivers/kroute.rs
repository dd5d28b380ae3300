//! kroute: one process; `kernel.install: true` (or false, for the RIB
//! alone), the sender as one passive
//! eBGP peer with `import: all`, the API socket in the scratch directory.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;

use kroute::config::{Config, Listen, Peer, Router};
use rib::policy::PolicyChain;
use serde_json::Value;

use super::{check, query, Ctx, Receiver, PEER_NAME, RECEIVER_ASN, SENDER_ASN};
use crate::netns::{Proc, RECEIVER_V4, SENDER_V4};

pub struct Kroute {
    proc: Proc,
    bin: PathBuf,
    socket: PathBuf,
    log: PathBuf,
}

/// The receiver's config: the sender as one passive eBGP peer, both
/// families, everything imported, nothing exported.
pub fn config(socket: &std::path::Path, install: bool) -> Config {
    let mut c = Config::new(Router {
        listen: Some(Listen {
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 179,
        }),
        ..Router::new(RECEIVER_ASN, lit(RECEIVER_V4))
    });
    c.api.socket = socket.to_path_buf();
    c.kernel.install = install;
    c.peers.push(Peer {
        passive: true,
        import: PolicyChain::All,
        export: PolicyChain::None,
        ..Peer::new(PEER_NAME, IpAddr::V4(lit(SENDER_V4)), SENDER_ASN)
    });
    c
}

fn lit(addr: &str) -> Ipv4Addr {
    addr.parse().expect("an address constant")
}

impl Kroute {
    pub fn start(ctx: &Ctx, install: bool) -> io::Result<Kroute> {
        if !ctx.kroute_bin.exists() {
            return Err(io::Error::other(format!(
                "no kroute binary at {} (cargo build --release -p kroute, or --kroute PATH)",
                ctx.kroute_bin.display()
            )));
        }
        let conf = ctx.dir.join("kroute.yaml");
        let socket = ctx.dir.join("kroute.sock");
        std::fs::write(&conf, config(&socket, install).to_yaml())?;
        let log = ctx.dir.join("kroute.log");
        let mut cmd = ctx.ns.command(&ctx.kroute_bin)?;
        cmd.arg("-c")
            .arg(&conf)
            .arg("daemon")
            .env("RUST_LOG", "info");
        let proc = Proc::spawn("kroute", &mut cmd, &log)?;
        Ok(Kroute {
            proc,
            bin: ctx.kroute_bin.clone(),
            socket,
            log,
        })
    }
}

/// `prefixesAccepted` of the sender's session in `show neighbors -o json`.
pub fn parse_accepted(v: &Value) -> Option<u64> {
    let list = v.as_array()?;
    let n = list
        .iter()
        .find(|n| n.get("name").and_then(Value::as_str) == Some(PEER_NAME))?;
    n.get("prefixesAccepted")?.as_u64()
}

impl Receiver for Kroute {
    fn pids(&self) -> Vec<i32> {
        vec![self.proc.pid()]
    }

    fn rib_count(&self) -> Option<u64> {
        let out = query(
            Command::new(&self.bin)
                .arg("--socket")
                .arg(&self.socket)
                .args(["-o", "json", "show", "neighbors"]),
        )?;
        let v: Value = serde_json::from_str(&out).ok()?;
        parse_accepted(&v)
    }

    fn check_alive(&mut self) -> Result<(), String> {
        check(&mut [&mut self.proc])
    }

    fn logs(&self) -> String {
        self.log.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn accepted() {
        let v = serde_json::json!([
            {"name": "other", "prefixesAccepted": 1},
            {"name": "blaster", "state": "established", "prefixesAccepted": 10000}
        ]);
        assert_eq!(super::parse_accepted(&v), Some(10_000));
    }

    #[test]
    fn config_round_trips() {
        let c = super::config(std::path::Path::new("/tmp/k.sock"), false);
        assert_eq!(kroute::config::parse(&c.to_yaml(), "bench.yaml"), Ok(c));
    }
}
