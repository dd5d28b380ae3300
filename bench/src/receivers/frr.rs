//! FRR (labkit's launcher): zebra (owns the kernel; batches its netlink
//! writes through its dataplane thread) and bgpd, one instance per
//! namespace with `-N NAME` (see shared/INTEROP-NOTES.md), in the
//! foreground so the PIDs we start are the daemons'.

use std::time::Duration;

use labkit::frr::{self, BgpdConfig, FrrSpec, Neighbor};
use labkit::Afi;

use super::receiver::{
    Ctx, Receiver, BFD_INTERVAL_MS, BFD_MULTIPLIER, PEER2_NAME, PEER_NAME, RECEIVER_ASN, SENDER_ASN,
};
use crate::netns::{self, RECEIVER_V4, SENDER2_V4, SENDER_V4};

pub struct Frr {
    daemon: frr::Frr,
}

pub fn config(name: &str, failover: bool, bfd: bool) -> BgpdConfig {
    let neighbor = |address: &str| Neighbor {
        address: address.into(),
        remote_as: SENDER_ASN,
        passive: true,
        // Timers in bfdd's `peer` (see `bfdd_config`).
        bfd,
        connect_timer: Some(1),
        families: vec![(Afi::Ipv4, Vec::new()), (Afi::Ipv6, Vec::new())],
        ..Neighbor::default()
    };
    let mut neighbors = vec![neighbor(SENDER_V4)];
    if failover {
        // FRR's defaults already react to carrier loss at once (`bgp
        // fast-external-failover`, zebra's link tracking) and install up
        // to 64 equal eBGP paths; nothing to switch on.
        neighbors.push(neighbor(SENDER2_V4));
    }
    BgpdConfig {
        hostname: name.into(),
        asn: RECEIVER_ASN,
        router_id: RECEIVER_V4.into(),
        default_ipv4_unicast: true,
        neighbors,
        extra: if bfd {
            let mut e = format!("router bgp {RECEIVER_ASN}\n");
            for n in [SENDER_V4, SENDER2_V4] {
                e += &format!(" neighbor {n} bfd profile {BFD_PROFILE}\n");
            }
            e + "exit\n!\n"
        } else {
            String::new()
        },
        ..BgpdConfig::default()
    }
}

/// The bfdd profile both neighbors use.
const BFD_PROFILE: &str = "bench";

/// bfdd with one profile at the bench's timers (FRR's default is 300 ms
/// × 3). A profile, not `peer` blocks: bgpd's session keys (local
/// address, interface) need not match a hand-written peer's.
fn bfdd_config(name: &str) -> String {
    format!(
        "hostname {name}\n!\nbfd\n profile {BFD_PROFILE}\n  receive-interval {BFD_INTERVAL_MS}\n  \
         transmit-interval {BFD_INTERVAL_MS}\n  detect-multiplier {BFD_MULTIPLIER}\n exit\nexit\n!\n"
    )
}

/// The address of the receiver's session named `peer`.
fn peer_address(peer: &str) -> Option<&'static str> {
    match peer {
        PEER_NAME => Some(SENDER_V4),
        PEER2_NAME => Some(SENDER2_V4),
        _ => None,
    }
}

impl Frr {
    pub fn start(ctx: &Ctx) -> labkit::Result<Frr> {
        let name = ctx.ns.name();
        netns::register_dir(frr::run_dir(name));
        let spec = FrrSpec {
            bfdd_conf: ctx.bfd.then(|| bfdd_config(name)),
            // The netlink receive buffer Debian's /etc/frr/daemons sets.
            zebra_args: vec!["-s".into(), "90000000".into()],
            own_process_group: true,
            ..FrrSpec::new(name, config(name, ctx.failover, ctx.bfd).render())
        };
        let daemon = frr::Frr::start(ctx.ns, &spec)?;
        Ok(Frr { daemon })
    }
}

impl Receiver for Frr {
    fn pids(&self) -> Vec<u32> {
        self.daemon.pids()
    }

    fn rib_count(&self) -> Option<u64> {
        let v = self.daemon.vtysh_json("show bgp summary json").ok()?;
        frr::parse_pfx_rcd(&v).or(Some(0))
    }

    fn session_established(&self, peer: &str) -> Option<bool> {
        let state = self.daemon.neighbor_state(peer_address(peer)?).ok()??;
        Some(state == "Established")
    }

    fn check_alive(&mut self) -> Result<(), String> {
        self.daemon.check_alive().map_err(|e| e.to_string())
    }

    fn logs(&self) -> String {
        format!("{}/{{zebra,bgpd}}.log", self.daemon.run_dir().display())
    }

    /// bgpd first, zebra (which removes the routes from the kernel) last.
    fn stop(&mut self, grace: Duration) -> labkit::Result<()> {
        self.daemon.stop(grace)
    }
}

#[cfg(test)]
mod tests {
    use super::super::receiver::assert_contains_all;
    use super::*;

    #[test]
    fn bgpd_conf_has_the_passive_sender_in_both_families() {
        let c = config("kb-1-r", false, false).render();
        assert_contains_all(
            &c,
            &[
                "router bgp 65001\n",
                " neighbor 10.255.255.1 remote-as 65000\n",
                " neighbor 10.255.255.1 passive\n",
                " neighbor 10.255.255.1 timers connect 1\n",
                " address-family ipv6 unicast\n  neighbor 10.255.255.1 activate\n",
            ],
        );
        assert!(!c.contains("no bgp default ipv4-unicast"), "{c}");
    }

    #[test]
    fn bfd_variant_puts_both_neighbors_on_the_bench_profile() {
        let c = config("kb-1-r", true, true).render();
        assert_contains_all(
            &c,
            &[
                " neighbor 10.255.255.1 bfd profile bench\n",
                " neighbor 10.255.254.1 bfd profile bench\n",
            ],
        );
        assert_contains_all(
            &bfdd_config("kb-1-r"),
            &[
                " profile bench\n",
                "  receive-interval 100\n",
                "  transmit-interval 100\n",
                "  detect-multiplier 3\n",
            ],
        );
        assert!(!config("kb-1-r", true, false).render().contains("bfd"));
    }
}
