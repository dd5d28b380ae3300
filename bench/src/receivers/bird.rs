//! BIRD 2 (labkit's launcher): one `bird` process; a `kernel` protocol per
//! family exports every best path into the main table.

use std::time::Duration;

use labkit::bird::{self, BgpProtocol, BirdConfig, BirdSpec, Channel, KernelProtocol, Log};
use labkit::Afi;

use super::receiver::{
    check, Ctx, Receiver, BFD_INTERVAL_MS, BFD_MULTIPLIER, PEER2_NAME, PEER_NAME, RECEIVER_ASN,
    SENDER_ASN,
};
use crate::netns::{RECEIVER2_V4, RECEIVER_V4, SENDER2_V4, SENDER_V4};

pub struct Bird {
    daemon: bird::Bird,
    /// BIRD's own log (warnings and errors only: logging must not cost
    /// time during the run).
    log: std::path::PathBuf,
}

pub fn config(log: &std::path::Path, failover: bool, bfd: bool) -> BirdConfig {
    let families = [Afi::Ipv4, Afi::Ipv6];
    let session = |name: &str, local: &str, neighbor: &str| {
        let mut options: Vec<String> = [
            "passive on;",
            "connect delay time 1;",
            "connect retry time 1;",
        ]
        .map(String::from)
        .into();
        if failover {
            // Shut the session the moment its link loses carrier (BIRD's
            // fastest reaction; off by default).
            options.push("check link on;".into());
        }
        if bfd {
            // The session goes down with its BFD session (timers in
            // `protocol bfd`, see `bfd_protocol`).
            options.push("bfd on;".into());
        }
        BgpProtocol {
            name: name.into(),
            local_address: local.into(),
            local_as: RECEIVER_ASN,
            neighbor_address: neighbor.into(),
            neighbor_as: SENDER_ASN,
            options,
            channels: families
                .iter()
                .map(|&afi| Channel {
                    export: "none".into(),
                    ..Channel::all(afi)
                })
                .collect(),
        }
    };
    let mut bgp = vec![session(PEER_NAME, RECEIVER_V4, SENDER_V4)];
    if failover {
        bgp.push(session(PEER2_NAME, RECEIVER2_V4, SENDER2_V4));
    }
    BirdConfig {
        log: Log::File {
            path: log.to_path_buf(),
            classes: "warning, error, fatal".into(),
        },
        router_id: RECEIVER_V4.into(),
        device_scan_time: None,
        kernel: families
            .iter()
            .map(|&afi| KernelProtocol {
                name: format!("kernel{}", if afi == Afi::Ipv4 { 4 } else { 6 }),
                afi,
                import: "none".into(),
                export: "all".into(),
                // Equal BGP paths as one multipath kernel route (ECMP).
                merge_paths: failover,
            })
            .collect(),
        statics: Vec::new(),
        bgp,
    }
}

/// What a BIRD operator with a full table sets in its kernel protocols
/// (bench/README.md, "BIRD's kernel protocol"): a netlink receive buffer
/// large enough for the kernel's echo of a full table's writes. With the
/// default (1 MiB) the kernel drops notifications under load ("Kernel
/// dropped some netlink messages, will resync on next scan", dozens of
/// times a load), and the next periodic scan (`scan time`, 60 s) then
/// resyncs the whole table mid-load: the 16 s vs 81 s runs of one table.
const KERNEL_OPTIONS: &str = "netlink rx buffer 268435456;";

fn with_kernel_options(config: String) -> String {
    config
        .lines()
        .map(|l| match l.strip_prefix("protocol kernel ") {
            Some(rest) => match rest.split_once(" { ") {
                Some((name, body)) => {
                    format!("protocol kernel {name} {{ {KERNEL_OPTIONS} {body}\n")
                }
                None => format!("{l}\n"),
            },
            None => format!("{l}\n"),
        })
        .collect()
}

/// BIRD's BFD: one `protocol bfd` for every interface with the bench's
/// timers (BIRD's own default is 10 ms TX, 1 s idle).
fn bfd_protocol() -> String {
    format!(
        "protocol bfd {{\n  interface \"*\" {{\n    min rx interval {BFD_INTERVAL_MS} ms;\n    \
         min tx interval {BFD_INTERVAL_MS} ms;\n    idle tx interval 1000 ms;\n    \
         multiplier {BFD_MULTIPLIER};\n  }};\n}}\n"
    )
}

impl Bird {
    pub fn start(ctx: &Ctx) -> labkit::Result<Bird> {
        let log = ctx.dir.join("bird.messages.log");
        let mut text = with_kernel_options(config(&log, ctx.failover, ctx.bfd).render());
        if ctx.bfd {
            text += &bfd_protocol();
        }
        let spec = BirdSpec {
            own_process_group: true,
            ..BirdSpec::new(&ctx.dir, text)
        };
        let daemon = bird::Bird::start(ctx.ns, &spec)?;
        Ok(Bird { daemon, log })
    }
}

impl Receiver for Bird {
    fn pids(&self) -> Vec<u32> {
        vec![self.daemon.pid()]
    }

    fn rib_count(&self) -> Option<u64> {
        let out = self
            .daemon
            .birdc(&["show", "protocols", "all", PEER_NAME])
            .ok()?;
        out.contains(PEER_NAME).then(|| bird::parse_imported(&out))
    }

    fn session_established(&self, peer: &str) -> Option<bool> {
        let out = self.daemon.birdc(&["show", "protocols", peer]).ok()?;
        let line = out.lines().find(|l| l.starts_with(peer))?;
        Some(line.contains("Established"))
    }

    fn check_alive(&mut self) -> Result<(), String> {
        check(self.daemon.process())
    }

    fn logs(&self) -> String {
        format!(
            "{}, {}",
            self.log.display(),
            self.daemon.log_path().display()
        )
    }

    fn stop(&mut self, grace: Duration) -> labkit::Result<()> {
        self.daemon.stop(grace)
    }
}

#[cfg(test)]
mod tests {
    use super::super::receiver::assert_contains_all;
    use super::*;

    #[test]
    fn bird_accepts_the_config() {
        let dir = std::env::temp_dir().join(format!("kb-birdconf-{}", std::process::id()));
        let text =
            with_kernel_options(config(&dir.join("bird.messages.log"), false, false).render());
        assert_contains_all(
            &text,
            &[
                "protocol bgp blaster {",
                "  passive on;\n",
                "protocol kernel kernel6 { netlink rx buffer 268435456; ipv6 { import none; export all; }; }",
                "  ipv6 { import all; export none; };",
            ],
        );
        if labkit::cmd::find_program("bird").is_none() {
            eprintln!("bird not installed; not parsed");
            return;
        }
        std::fs::create_dir_all(&dir).unwrap();
        let parsed = labkit::bird::write_config(&dir.join("bird.conf"), &text);
        let _ = std::fs::remove_dir_all(&dir);
        parsed.unwrap();
    }

    #[test]
    fn bird_accepts_the_bfd_config() {
        let dir = std::env::temp_dir().join(format!("kb-birdbfd-{}", std::process::id()));
        let text =
            with_kernel_options(config(&dir.join("log"), true, true).render()) + &bfd_protocol();
        assert_contains_all(
            &text,
            &[
                "protocol bgp blaster2 {",
                "  bfd on;\n",
                "    min rx interval 100 ms;\n",
                "    multiplier 3;\n",
            ],
        );
        if labkit::cmd::find_program("bird").is_none() {
            eprintln!("bird not installed; not parsed");
            return;
        }
        std::fs::create_dir_all(&dir).unwrap();
        let parsed = labkit::bird::write_config(&dir.join("bird.conf"), &text);
        let _ = std::fs::remove_dir_all(&dir);
        parsed.unwrap();
    }
}
