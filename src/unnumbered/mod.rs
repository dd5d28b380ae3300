//! BGP unnumbered (`peers[].interface`): one discovery task per interface
//! peer finds the neighbour's IPv6 link-local address and follows the
//! link; the peer task ([`crate::session`]) connects to what it publishes.
//!
//! * The neighbour's address is the source of its Router Advertisements
//!   and Router Solicitations on the link (RFC 4861 §4.1/§4.2; checked in
//!   [`ra`]). A connection it opens to us tells the peer task too.
//! * We send an RS when the link comes up (a router answers at once, not
//!   at its next periodic RA) and an RA every [`RA_INTERVAL`] and in
//!   answer to an RS, with router lifetime 0: FRR's unnumbered peers learn
//!   our address from our RAs, and hosts must not take us as their default
//!   router.
//! * The link going down (or away) is published at once; the session
//!   goes Idle (no NOTIFICATION: the link is gone) and starts again once
//!   the link is up and the neighbour known.

pub mod link;
pub mod ra;

use std::net::{Ipv6Addr, SocketAddrV6};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, info, warn};

/// Between our Router Advertisements. RFC 4861 §6.2.1 allows 4 s at the
/// least; FRR's zebra sends every 10 s on its unnumbered interfaces.
pub const RA_INTERVAL: Duration = Duration::from_secs(4);

/// How often the link is looked at when netlink cannot tell us.
const POLL: Duration = Duration::from_secs(1);

/// What the discovery task publishes about its interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Link {
    /// The interface exists, is up and has carrier: its index.
    pub up: Option<u32>,
    /// The neighbour's link-local address, learned while the link is up.
    pub neighbour: Option<Ipv6Addr>,
}

impl Link {
    /// Where to connect to the neighbour: its link-local address with the
    /// interface as scope.
    pub fn remote(&self, port: u16) -> Option<SocketAddrV6> {
        Some(SocketAddrV6::new(self.neighbour?, port, 0, self.up?))
    }
}

/// What one received packet teaches: the neighbour's address, if any.
/// Pure, for the tests: an RA or RS from a link-local source names it.
fn learned(
    packet: &[u8],
    hop_limit: u8,
    source: Ipv6Addr,
) -> Result<(ra::Message, Option<Ipv6Addr>), ra::Reject> {
    let m = ra::decode(packet, hop_limit, source)?;
    Ok((m, source.is_unicast_link_local().then_some(source)))
}

/// Start discovery on `ifname` for peer `peer`; the receiver sees each
/// change. The task ends when every receiver is gone.
pub fn spawn(peer: String, ifname: String) -> watch::Receiver<Link> {
    let (tx, rx) = watch::channel(Link::default());
    tokio::spawn(run(peer, ifname, tx));
    rx
}

async fn run(peer: String, ifname: String, tx: watch::Sender<Link>) {
    let events = match link::LinkEvents::open() {
        Ok(e) => Some(e),
        Err(e) => {
            warn!(
                peer,
                interface = ifname,
                "no netlink link events, polling the link every second: {e}"
            );
            None
        }
    };
    let changed = || async {
        match &events {
            Some(ev) => {
                if ev.changed().await.is_err() {
                    tokio::time::sleep(POLL).await;
                }
            }
            None => tokio::time::sleep(POLL).await,
        }
    };
    loop {
        if tx.is_closed() {
            return;
        }
        let Some((ifindex, true)) = link::link_state(&ifname) else {
            publish(&tx, &peer, &ifname, Link::default());
            tokio::select! {
                _ = changed() => {}
                _ = tx.closed() => return,
            }
            continue;
        };
        let sock = match link::RouterDiscovery::open(&ifname, ifindex) {
            Ok(s) => s,
            Err(e) => {
                warn!(peer, interface = ifname, "router discovery socket: {e}");
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        publish(
            &tx,
            &peer,
            &ifname,
            Link {
                up: Some(ifindex),
                neighbour: None,
            },
        );
        // Errors while our link-local address is still tentative: the
        // next RA goes out a few seconds later.
        if let Err(e) = sock.send(&ra::solicitation(), link::ALL_ROUTERS).await {
            debug!(peer, interface = ifname, "sending RS: {e}");
        }
        let mut ticks = tokio::time::interval(RA_INTERVAL);
        let mut buf = [0u8; 1500];
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                _ = changed() => {
                    if link::link_state(&ifname) != Some((ifindex, true)) {
                        break;
                    }
                }
                _ = ticks.tick() => {
                    if let Err(e) = sock.send(&ra::advertisement(), link::ALL_NODES).await {
                        debug!(peer, interface = ifname, "sending RA: {e}");
                    }
                }
                got = sock.recv(&mut buf) => {
                    let (n, source, hop_limit) = match got {
                        Ok(r) => r,
                        Err(e) => {
                            warn!(peer, interface = ifname, "router discovery socket: {e}");
                            break;
                        }
                    };
                    match learned(&buf[..n], hop_limit, source) {
                        Ok((m, neighbour)) => {
                            if let Some(a) = neighbour {
                                let mut now = *tx.borrow();
                                now.neighbour = Some(a);
                                publish(&tx, &peer, &ifname, now);
                            }
                            if m == ra::Message::Solicitation {
                                // §6.2.6: answering to all-nodes is allowed.
                                let _ = sock.send(&ra::advertisement(), link::ALL_NODES).await;
                            }
                        }
                        Err(why) => debug!(peer, interface = ifname, %source, "ignored: {why}"),
                    }
                }
            }
        }
        publish(&tx, &peer, &ifname, Link::default());
    }
}

/// Publish `link` if it changed, with a log line.
fn publish(tx: &watch::Sender<Link>, peer: &str, ifname: &str, link: Link) {
    tx.send_if_modified(|now| {
        if *now == link {
            return false;
        }
        match (link.up, link.neighbour) {
            (None, _) if now.up.is_some() => info!(peer, interface = ifname, "link down"),
            (None, _) => debug!(peer, interface = ifname, "link not up"),
            (Some(_), None) => info!(
                peer,
                interface = ifname,
                "link up, looking for the neighbour"
            ),
            (Some(_), Some(a)) => {
                info!(peer, interface = ifname, neighbour = %a, "neighbour learned")
            }
        }
        *now = link;
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_neighbour_is_the_source_of_its_ra_or_rs() {
        let ll: Ipv6Addr = "fe80::2".parse().unwrap();
        assert_eq!(
            learned(&ra::advertisement(), 255, ll),
            Ok((ra::Message::Advertisement { router_lifetime: 0 }, Some(ll)))
        );
        assert_eq!(
            learned(&ra::solicitation(), 255, ll),
            Ok((ra::Message::Solicitation, Some(ll)))
        );
        // An RS from a host without an address yet names nobody.
        assert_eq!(
            learned(&ra::solicitation(), 255, Ipv6Addr::UNSPECIFIED),
            Ok((ra::Message::Solicitation, None))
        );
        assert!(learned(&ra::advertisement(), 64, ll).is_err());
    }

    #[test]
    fn the_remote_needs_both_the_link_and_the_neighbour() {
        let ll: Ipv6Addr = "fe80::2".parse().unwrap();
        assert_eq!(
            Link {
                up: Some(7),
                neighbour: None
            }
            .remote(179),
            None
        );
        assert_eq!(
            Link {
                up: None,
                neighbour: Some(ll)
            }
            .remote(179),
            None
        );
        assert_eq!(
            Link {
                up: Some(7),
                neighbour: Some(ll)
            }
            .remote(179),
            Some(SocketAddrV6::new(ll, 179, 0, 7))
        );
    }
}
