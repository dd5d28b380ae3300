//! BIRD 2: one `bird` process; a `kernel` protocol per family exports every
//! best path into the main table.

use std::io;
use std::path::PathBuf;
use std::process::Command;

use super::{check, query, Ctx, Receiver, PEER_NAME, RECEIVER_ASN, SENDER_ASN};
use crate::netns::{Proc, RECEIVER_V4, SENDER_V4};

pub struct Bird {
    proc: Proc,
    ctl: PathBuf,
    log: PathBuf,
}

pub fn config(log: &std::path::Path) -> String {
    format!(
        r#"log "{log}" {{ warning, error, fatal }};
router id {RECEIVER_V4};

protocol device {{ }}

protocol kernel kernel4 {{
  ipv4 {{ import none; export all; }};
}}

protocol kernel kernel6 {{
  ipv6 {{ import none; export all; }};
}}

protocol bgp {PEER_NAME} {{
  local {RECEIVER_V4} as {RECEIVER_ASN};
  neighbor {SENDER_V4} as {SENDER_ASN};
  passive on;
  connect delay time 1;
  connect retry time 1;
  ipv4 {{ import all; export none; }};
  ipv6 {{ import all; export none; }};
}}
"#,
        log = log.display()
    )
}

impl Bird {
    pub fn start(ctx: &Ctx) -> io::Result<Bird> {
        let conf = ctx.dir.join("bird.conf");
        let ctl = ctx.dir.join("bird.ctl");
        let log = ctx.dir.join("bird.log");
        std::fs::write(&conf, config(&log))?;
        let mut cmd = ctx.ns.command("bird")?;
        cmd.arg("-f")
            .arg("-c")
            .arg(&conf)
            .arg("-s")
            .arg(&ctl)
            .arg("-P")
            .arg(ctx.dir.join("bird.pid"));
        let proc = Proc::spawn("bird", &mut cmd, &ctx.dir.join("bird.out"))?;
        Ok(Bird { proc, ctl, log })
    }
}

/// Sum of "Routes: N imported" over the protocol's channels.
pub fn parse_imported(out: &str) -> u64 {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Routes:"))
        .filter_map(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

impl Receiver for Bird {
    fn pids(&self) -> Vec<i32> {
        vec![self.proc.pid()]
    }

    fn rib_count(&self) -> Option<u64> {
        let out = query(Command::new("birdc").arg("-s").arg(&self.ctl).args([
            "show",
            "protocols",
            "all",
            PEER_NAME,
        ]))?;
        out.contains(PEER_NAME).then(|| parse_imported(&out))
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
    fn imported_counts() {
        let out = "blaster    BGP        ---        up     11:02:03.123  Established\n\
            \x20 Channel ipv4\n    State:          UP\n    Routes:         8000 imported, 0 exported, 8000 preferred\n\
            \x20 Channel ipv6\n    Routes:         2000 imported, 0 exported, 2000 preferred\n";
        assert_eq!(super::parse_imported(out), 10_000);
    }
}
