//! GoBGP (the engine inside Cilium's BGP control plane): RIB only, it never
//! programs the kernel. Its gRPC API listens on 127.0.0.1 inside the
//! receiver namespace, so the `gobgp` CLI runs there too.

use std::io;
use std::path::PathBuf;

use serde_json::Value;

use super::{check, query, Ctx, Receiver, RECEIVER_ASN, SENDER_ASN};
use crate::netns::{command_in, Proc, RECEIVER_V4, SENDER_V4};

pub struct Gobgp {
    proc: Proc,
    ns: PathBuf,
    log: PathBuf,
}

pub fn config() -> String {
    format!(
        r#"[global.config]
  as = {RECEIVER_ASN}
  router-id = "{RECEIVER_V4}"

[[neighbors]]
  [neighbors.config]
    neighbor-address = "{SENDER_V4}"
    peer-as = {SENDER_ASN}
  [neighbors.transport.config]
    passive-mode = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
"#
    )
}

impl Gobgp {
    pub fn start(ctx: &Ctx) -> io::Result<Gobgp> {
        let conf = ctx.dir.join("gobgpd.toml");
        std::fs::write(&conf, config())?;
        let log = ctx.dir.join("gobgpd.log");
        let mut cmd = ctx.ns.command("gobgpd")?;
        cmd.arg("-f")
            .arg(&conf)
            .args(["--api-hosts", "127.0.0.1:50051", "--pprof-disable", "-p"])
            .args(["-l", "warn"]);
        let proc = Proc::spawn("gobgpd", &mut cmd, &log)?;
        Ok(Gobgp {
            proc,
            ns: ctx.ns.path(),
            log,
        })
    }
}

/// Sum of `accepted` over the first neighbor's families.
pub fn parse_accepted(v: &Value) -> Option<u64> {
    let n = v.as_array()?.first()?;
    let fams = n.get("afi_safis")?.as_array()?;
    Some(
        fams.iter()
            .filter_map(|f| f.get("state")?.get("accepted")?.as_u64())
            .sum(),
    )
}

impl Receiver for Gobgp {
    fn pids(&self) -> Vec<i32> {
        vec![self.proc.pid()]
    }

    fn rib_count(&self) -> Option<u64> {
        let mut cmd = command_in(&self.ns, "gobgp").ok()?;
        let out = query(cmd.args(["-u", "127.0.0.1", "-p", "50051", "neighbor", "-j"]))?;
        let v: Value = serde_json::from_str(&out).ok()?;
        parse_accepted(&v).or(Some(0))
    }

    fn check_alive(&mut self) -> Result<(), String> {
        check(&mut [&mut self.proc])
    }

    fn logs(&self) -> String {
        self.log.display().to_string()
    }
}
