//! kroute: one process; `kernel.install: true` (or false, for the RIB
//! alone), the sender as one passive
//! eBGP peer with `import: all`, the API socket in the scratch directory.

use std::io;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use super::{check, query, Ctx, Receiver, PEER_NAME, RECEIVER_ASN, SENDER_ASN};
use crate::netns::{Proc, RECEIVER_V4, SENDER_V4};

pub struct Kroute {
    proc: Proc,
    bin: PathBuf,
    socket: PathBuf,
    log: PathBuf,
}

pub fn config(socket: &std::path::Path, install: bool) -> String {
    format!(
        r#"router:
  asn: {RECEIVER_ASN}
  routerId: {RECEIVER_V4}
  listen: {{ address: "0.0.0.0", port: 179 }}
api:
  socket: {socket}
kernel:
  install: {install}
peers:
  - name: {PEER_NAME}
    address: {SENDER_V4}
    asn: {SENDER_ASN}
    passive: true
    families: [ipv4-unicast, ipv6-unicast]
    import: all
    export: none
"#,
        socket = socket.display()
    )
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
        std::fs::write(&conf, config(&socket, install))?;
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
}
