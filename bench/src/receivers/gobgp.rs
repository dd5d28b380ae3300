//! GoBGP (labkit's launcher; the engine inside Cilium's BGP control
//! plane): RIB only, it never programs the kernel. Its gRPC API listens on
//! 127.0.0.1 inside the receiver namespace, so the `gobgp` CLI runs there
//! too.

use std::time::Duration;

use labkit::gobgp::{self, GobgpConfig, GobgpSpec, Neighbor};

use super::receiver::{check, Ctx, Receiver, RECEIVER_ASN, SENDER_ASN};
use crate::netns::{RECEIVER_V4, SENDER_V4};

pub struct Gobgp {
    daemon: gobgp::Gobgp,
}

pub fn config() -> GobgpConfig {
    GobgpConfig {
        asn: RECEIVER_ASN,
        router_id: RECEIVER_V4.into(),
        port: None,
        neighbors: vec![Neighbor {
            address: SENDER_V4.into(),
            peer_as: SENDER_ASN,
            passive: true,
            families: vec!["ipv4-unicast".into(), "ipv6-unicast".into()],
            ..Neighbor::default()
        }],
    }
}

impl Gobgp {
    pub fn start(ctx: &Ctx) -> labkit::Result<Gobgp> {
        let spec = GobgpSpec {
            log_level: "warn".into(),
            args: vec!["--pprof-disable".into(), "-p".into()],
            own_process_group: true,
            ..GobgpSpec::new(&ctx.dir, config().render())
        };
        let daemon = gobgp::Gobgp::start(ctx.ns, &spec)?;
        Ok(Gobgp { daemon })
    }
}

impl Receiver for Gobgp {
    fn pids(&self) -> Vec<u32> {
        vec![self.daemon.pid()]
    }

    fn rib_count(&self) -> Option<u64> {
        let v = self.daemon.cli().json(&["neighbor"]).ok()?;
        gobgp::parse_accepted(&v).or(Some(0))
    }

    fn check_alive(&mut self) -> Result<(), String> {
        check(self.daemon.process())
    }

    fn logs(&self) -> String {
        self.daemon.log_path().display().to_string()
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
    fn gobgpd_toml_waits_for_the_sender() {
        assert_contains_all(
            &config().render(),
            &[
                "  as = 65001\n",
                "    neighbor-address = \"10.255.255.1\"\n",
                "    passive-mode = true\n",
                "      afi-safi-name = \"ipv6-unicast\"\n",
            ],
        );
    }
}
