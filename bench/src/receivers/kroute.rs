//! kroute (labkit's launcher): one process; `kernel.install: true` (or
//! false, for the RIB alone), the sender as one passive eBGP peer with
//! `import: all`, the API socket in the scratch directory, read through
//! kroute's typed API client.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use kroute::api::{Client, NeighborView};
use kroute::config::{Bfd, Config, Listen, Peer, Router};
use kroute::events::SessionState;
use labkit::kroute::{self as kroute_lab, KrouteSpec};
use rib::policy::PolicyChain;

use super::receiver::{
    Ctx, Receiver, BFD_INTERVAL_MS, BFD_MULTIPLIER, PEER2_NAME, PEER_NAME, RECEIVER_ASN, SENDER_ASN,
};
use crate::netns::{RECEIVER_V4, SENDER2_V4, SENDER_V4};

pub struct Kroute {
    daemon: kroute_lab::Kroute,
    api: Client,
}

/// The receiver's config: the sender as one passive eBGP peer, both
/// families, everything imported, nothing exported.
pub fn config(socket: &std::path::Path, install: bool, failover: bool) -> Config {
    let mut c = Config::new(Router {
        listen: Some(Listen {
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 179,
            ranges: Vec::new(),
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
    if failover {
        // Equal paths from the two senders are installed together; the
        // FIB follows carrier loss by itself (nothing to switch on).
        c.router.max_paths = 4;
        c.peers.push(Peer {
            passive: true,
            import: PolicyChain::All,
            export: PolicyChain::None,
            ..Peer::new(PEER2_NAME, IpAddr::V4(lit(SENDER2_V4)), SENDER_ASN)
        });
    }
    c
}

fn lit(addr: &str) -> Ipv4Addr {
    addr.parse().expect("an address constant")
}

impl Kroute {
    pub fn start(ctx: &Ctx, install: bool) -> labkit::Result<Kroute> {
        let socket = ctx.dir.join("kroute.sock");
        let spec = KrouteSpec {
            own_process_group: true,
            ..KrouteSpec::in_dir(&ctx.kroute_bin, &ctx.dir, {
                let mut c = config(&socket, install, ctx.failover);
                c.kernel.backup_routes = ctx.backup_routes;
                if ctx.bfd {
                    for p in &mut c.peers {
                        p.bfd = Some(Bfd {
                            interval: BFD_INTERVAL_MS,
                            multiplier: BFD_MULTIPLIER,
                        });
                    }
                }
                c.to_yaml()
            })
        };
        let daemon = kroute_lab::Kroute::start(ctx.ns, spec)?;
        let api = Client::new(daemon.socket());
        Ok(Kroute { daemon, api })
    }
}

/// `prefixesAccepted` of the sender's session.
pub fn accepted(neighbors: &[NeighborView]) -> Option<u64> {
    let n = neighbors.iter().find(|n| n.name == PEER_NAME)?;
    Some(n.prefixes_accepted as u64)
}

impl Receiver for Kroute {
    fn pids(&self) -> Vec<u32> {
        self.daemon.pid().into_iter().collect()
    }

    fn rib_count(&self) -> Option<u64> {
        accepted(&self.api.neighbors().ok()?)
    }

    fn session_established(&self, peer: &str) -> Option<bool> {
        let all = self.api.neighbors().ok()?;
        let n = all.iter().find(|n| n.name == peer)?;
        Some(n.state == SessionState::Established)
    }

    fn check_alive(&mut self) -> Result<(), String> {
        self.daemon.check_alive().map_err(|e| e.to_string())
    }

    fn logs(&self) -> String {
        self.daemon.spec().log.display().to_string()
    }

    fn stop(&mut self, grace: Duration) -> labkit::Result<()> {
        self.daemon.stop(grace).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kroute::config::Peer;

    #[test]
    fn accepted_is_the_senders_session() {
        let c = config(std::path::Path::new("/tmp/k.sock"), true, false);
        let other = Peer::new("other", "10.0.0.9".parse().unwrap(), 65009);
        let views: Vec<_> = [(&other, 1), (&c.peers[0], 10_000)]
            .into_iter()
            .map(|(peer, accepted)| {
                let mut v = NeighborView::new(
                    peer,
                    &Default::default(),
                    Default::default(),
                    Default::default(),
                );
                v.prefixes_accepted = accepted;
                v
            })
            .collect();
        assert_eq!(accepted(&views), Some(10_000));
        assert_eq!(accepted(&views[..1]), None);
    }

    #[test]
    fn config_round_trips() {
        let c = config(std::path::Path::new("/tmp/k.sock"), false, false);
        assert_eq!(kroute::config::parse(&c.to_yaml(), "bench.yaml"), Ok(c));
    }
}
