//! GoBGP (labkit's launcher; the engine inside Cilium's BGP control
//! plane): RIB only, it never programs the kernel. Its gRPC API listens on
//! 127.0.0.1 inside the receiver namespace, so the `gobgp` CLI runs there
//! too.

use labkit::gobgp::{self, GobgpConfig, GobgpSpec, Neighbor};

use super::receiver::{check, stop, Ctx, Receiver, RECEIVER_ASN, SENDER_ASN, STOP_GRACE};
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
}

impl Drop for Gobgp {
    fn drop(&mut self) {
        stop(self.daemon.stop(STOP_GRACE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn config_text() {
        let c = config().render();
        for line in [
            "  as = 65001\n",
            "    neighbor-address = \"10.255.255.1\"\n",
            "    passive-mode = true\n",
            "      afi-safi-name = \"ipv6-unicast\"\n",
        ] {
            assert!(c.contains(line), "{line:?} missing in\n{c}");
        }
    }
}
