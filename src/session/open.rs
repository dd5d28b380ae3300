//! OPEN messages: what we send and what we agree on with the peer
//! (RFC 4271 §4.2 and §6.2, RFC 5492 capabilities). Pure functions.

use std::net::Ipv4Addr;
use std::time::Instant;

use crate::config::PeerAsn;
pub use crate::events::PeerGracefulRestart;
use wire::notification as n;
use wire::{
    Capability, ExtendedNextHopEntry, Family, GracefulRestartFamily, Notification, Open,
    SessionCodec, AS_TRANS,
};

/// What we announce about ourselves to one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalOpen {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub hold_time: u16,
    pub families: Vec<Family>,
    /// Advertise the graceful restart capability (RFC 4724 §3); none:
    /// do not advertise it.
    pub graceful_restart: Option<LocalGracefulRestart>,
    /// Advertise the extended next hop capability (RFC 8950 §3) for IPv4
    /// unicast with IPv6 next hops, if IPv4 unicast is one of `families`.
    pub extended_next_hop: bool,
}

/// What our graceful restart capability says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalGracefulRestart {
    /// Seconds the peer should wait for us to come back (12 bits).
    pub restart_time: u16,
    /// Until then we set the R bit: we have just restarted, the peer must
    /// not wait for our End-of-RIB before sending its routes (RFC 4724
    /// §4.1). The daemon's start plus its initial convergence deadline.
    pub restarting_until: Option<Instant>,
    /// The F bit of every family: our forwarding state (the kernel routes)
    /// survives a restart of the daemon.
    pub forwarding_preserved: bool,
}

/// The outcome of a successful OPEN exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub remote_router_id: Ipv4Addr,
    /// The AS in the peer's OPEN (the one learned for `asn: external`).
    pub remote_asn: u32,
    pub hold_time: u16,
    /// Send a KEEPALIVE this often (a third of the hold time, RFC 4271 §4.4).
    pub keepalive_secs: u16,
    pub families: Vec<Family>,
    pub codec: SessionCodec,
    /// The peer's graceful restart capability, if it sent one.
    pub peer_graceful_restart: Option<PeerGracefulRestart>,
    /// RFC 8950 negotiated for IPv4 unicast over IPv6 next hops: both
    /// sides advertised it (§3: a speaker sends such routes only to a
    /// peer that advertised the capability, and accepts them only if it
    /// advertised it itself).
    pub extended_next_hop_v4: bool,
}

/// The RFC 8950 capability entry kroute advertises: IPv4 unicast NLRI
/// (AFI 1, SAFI 1) with IPv6 next hops (next hop AFI 2).
const ENH_V4_OVER_V6: ExtendedNextHopEntry = ExtendedNextHopEntry {
    family: Family::Ipv4Unicast,
    next_hop_afi: 2,
};

/// Whether `open` carries the RFC 8950 entry for IPv4 unicast over IPv6.
fn has_enh_v4_over_v6(open: &Open) -> bool {
    open.has_capability(
        |c| matches!(c, Capability::ExtendedNextHop(e) if e.contains(&ENH_V4_OVER_V6)),
    )
}

/// Whether our OPEN to this peer carries it.
fn advertises_enh(l: &LocalOpen) -> bool {
    l.extended_next_hop && l.families.contains(&Family::Ipv4Unicast)
}

/// Our OPEN, sent at `now` (the graceful restart R bit depends on it).
pub fn local_open(l: &LocalOpen, now: Instant) -> Open {
    let mut caps: Vec<Capability> = l
        .families
        .iter()
        .map(|f| Capability::Multiprotocol(*f))
        .collect();
    if advertises_enh(l) {
        caps.push(Capability::ExtendedNextHop(vec![ENH_V4_OVER_V6]));
    }
    caps.push(Capability::RouteRefresh);
    caps.push(Capability::FourOctetAs(l.asn));
    if let Some(gr) = &l.graceful_restart {
        caps.push(Capability::GracefulRestart {
            restart_state: gr.restarting_until.is_some_and(|t| now < t),
            restart_time: gr.restart_time.min(0x0fff),
            families: l
                .families
                .iter()
                .map(|f| GracefulRestartFamily {
                    family: *f,
                    forwarding_preserved: gr.forwarding_preserved,
                })
                .collect(),
        });
    }
    Open {
        version: 4,
        asn: l.asn,
        hold_time: l.hold_time,
        router_id: l.router_id,
        capabilities: caps,
    }
}

fn notification(code: u8, subcode: u8, data: Vec<u8>) -> Notification {
    Notification {
        code,
        subcode,
        data,
    }
}

/// Check the peer's OPEN against what we expect (RFC 4271 §6.2: its AS is
/// the configured one, or of the configured kind) and agree on hold time,
/// families and ASN width.
pub fn negotiate(
    local: &LocalOpen,
    expected: PeerAsn,
    remote: &Open,
) -> Result<Negotiated, Notification> {
    if !expected.accepts(local.asn, remote.asn) {
        // Data: the 2-octet "My AS" field as received (RFC 4271 §6.2).
        let two = u16::try_from(remote.asn).unwrap_or(AS_TRANS);
        return Err(notification(
            n::OPEN_MESSAGE_ERROR,
            n::open::BAD_PEER_AS,
            two.to_be_bytes().to_vec(),
        ));
    }
    let id = remote.router_id;
    // RFC 6286 §2.2: zero is invalid; the same ID as ours is invalid on iBGP.
    if id.is_unspecified() || (id == local.router_id && remote.asn == local.asn) {
        return Err(notification(
            n::OPEN_MESSAGE_ERROR,
            n::open::BAD_BGP_IDENTIFIER,
            id.octets().to_vec(),
        ));
    }
    if remote.hold_time == 1 || remote.hold_time == 2 {
        return Err(notification(
            n::OPEN_MESSAGE_ERROR,
            n::open::UNACCEPTABLE_HOLD_TIME,
            vec![],
        ));
    }
    let hold_time = local.hold_time.min(remote.hold_time);
    let remote_families: Vec<Family> = remote.families().collect();
    let remote_mp = remote.has_capability(|c| matches!(c, Capability::Multiprotocol(_)));
    let families: Vec<Family> = local
        .families
        .iter()
        .copied()
        .filter(|f| {
            if remote_mp {
                remote_families.contains(f)
            } else {
                // No multiprotocol capability at all: plain IPv4 unicast
                // (RFC 4760 §8).
                *f == Family::Ipv4Unicast
            }
        })
        .collect();
    let extended_next_hop_v4 = advertises_enh(local)
        && has_enh_v4_over_v6(remote)
        && families.contains(&Family::Ipv4Unicast);
    let four_octet_as = remote.has_capability(|c| matches!(c, Capability::FourOctetAs(_)));
    let peer_graceful_restart = remote.capabilities.iter().find_map(|c| match c {
        Capability::GracefulRestart {
            restart_state,
            restart_time,
            families,
        } => Some(PeerGracefulRestart {
            restarting: *restart_state,
            restart_time: *restart_time,
            families: families.iter().map(|f| f.family).collect(),
            forwarding_preserved: families
                .iter()
                .filter(|f| f.forwarding_preserved)
                .map(|f| f.family)
                .collect(),
        }),
        _ => None,
    });
    Ok(Negotiated {
        remote_router_id: id,
        remote_asn: remote.asn,
        hold_time,
        keepalive_secs: hold_time / 3,
        families,
        codec: SessionCodec { four_octet_as },
        peer_graceful_restart,
        extended_next_hop_v4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> LocalOpen {
        LocalOpen {
            asn: 4210101011,
            router_id: Ipv4Addr::new(10, 101, 254, 11),
            hold_time: 90,
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            graceful_restart: None,
            extended_next_hop: false,
        }
    }

    fn remote(asn: u32, caps: Vec<Capability>) -> Open {
        Open {
            version: 4,
            asn,
            hold_time: 30,
            router_id: Ipv4Addr::new(10, 0, 0, 2),
            capabilities: caps,
        }
    }

    #[test]
    fn agrees_on_common_families_and_lower_hold_time() {
        let r = remote(
            65000,
            vec![
                Capability::Multiprotocol(Family::Ipv6Unicast),
                Capability::FourOctetAs(65000),
            ],
        );
        let n = negotiate(&local(), PeerAsn::Number(65000), &r).unwrap();
        assert_eq!(n.families, vec![Family::Ipv6Unicast]);
        assert_eq!(n.hold_time, 30);
        assert_eq!(n.keepalive_secs, 10);
        assert!(n.codec.four_octet_as);
    }

    #[test]
    fn no_multiprotocol_means_ipv4_only_and_two_octet() {
        let n = negotiate(&local(), PeerAsn::Number(65000), &remote(65000, vec![])).unwrap();
        assert_eq!(n.families, vec![Family::Ipv4Unicast]);
        assert!(!n.codec.four_octet_as);
    }

    #[test]
    fn wrong_asn_is_bad_peer_as() {
        let e = negotiate(&local(), PeerAsn::Number(65001), &remote(65000, vec![])).unwrap_err();
        assert_eq!((e.code, e.subcode), (2, 2));
    }

    /// `asn: external` takes any AS but ours, `internal` only ours; the
    /// AS is learned from the OPEN.
    #[test]
    fn kinds_accept_their_ases_and_learn_them() {
        let ours = local().asn;
        let n = negotiate(&local(), PeerAsn::External, &remote(65010, vec![])).unwrap();
        assert_eq!(n.remote_asn, 65010);
        let e = negotiate(&local(), PeerAsn::External, &remote(ours, vec![])).unwrap_err();
        assert_eq!((e.code, e.subcode), (2, 2));
        let n = negotiate(&local(), PeerAsn::Internal, &remote(ours, vec![])).unwrap();
        assert_eq!(n.remote_asn, ours);
        let e = negotiate(&local(), PeerAsn::Internal, &remote(65010, vec![])).unwrap_err();
        assert_eq!((e.code, e.subcode), (2, 2));
    }

    #[test]
    fn same_router_id_on_ibgp_is_rejected() {
        let mut r = remote(4210101011, vec![]);
        r.router_id = local().router_id;
        let e = negotiate(&local(), PeerAsn::Number(4210101011), &r).unwrap_err();
        assert_eq!((e.code, e.subcode), (2, 3));
    }

    #[test]
    fn our_open_carries_families_refresh_and_asn4() {
        let o = local_open(&local(), Instant::now());
        assert_eq!(o.families().count(), 2);
        assert!(o.has_capability(|c| *c == Capability::RouteRefresh));
        assert!(o.has_capability(|c| *c == Capability::FourOctetAs(4210101011)));
    }

    #[test]
    fn no_graceful_restart_capability_unless_enabled() {
        let o = local_open(&local(), Instant::now());
        assert!(!o.has_capability(|c| matches!(c, Capability::GracefulRestart { .. })));
    }

    #[test]
    fn graceful_restart_capability_carries_time_and_bits() {
        let mut l = local();
        l.graceful_restart = Some(LocalGracefulRestart {
            restart_time: 120,
            restarting_until: Some(Instant::now() + std::time::Duration::from_secs(30)),
            forwarding_preserved: true,
        });
        let o = local_open(&l, Instant::now());
        let gr = o
            .capabilities
            .iter()
            .find(|c| matches!(c, Capability::GracefulRestart { .. }))
            .expect("GR capability");
        assert_eq!(
            *gr,
            Capability::GracefulRestart {
                restart_state: true,
                restart_time: 120,
                families: vec![
                    GracefulRestartFamily {
                        family: Family::Ipv4Unicast,
                        forwarding_preserved: true
                    },
                    GracefulRestartFamily {
                        family: Family::Ipv6Unicast,
                        forwarding_preserved: true
                    },
                ],
            }
        );
        // And it survives the codec: code 64, R bit and F bits on the wire.
        let mut buf = Vec::new();
        wire::encode_message(
            &wire::Message::Open(o.clone()),
            &SessionCodec::default(),
            &mut buf,
        );
        let (back, used) = wire::decode_message(&buf, &SessionCodec::default())
            .unwrap()
            .unwrap();
        assert_eq!(used, buf.len());
        assert_eq!(back, wire::Message::Open(o));
        // Once the restart is over, the R bit is clear.
        let later = Instant::now() + std::time::Duration::from_secs(31);
        let o = local_open(&l, later);
        assert!(o.has_capability(|c| matches!(
            c,
            Capability::GracefulRestart {
                restart_state: false,
                ..
            }
        )));
    }

    #[test]
    fn peer_graceful_restart_is_decoded_with_forwarding_families() {
        let r = remote(
            65000,
            vec![
                Capability::Multiprotocol(Family::Ipv4Unicast),
                Capability::GracefulRestart {
                    restart_state: false,
                    restart_time: 90,
                    families: vec![
                        GracefulRestartFamily {
                            family: Family::Ipv4Unicast,
                            forwarding_preserved: true,
                        },
                        GracefulRestartFamily {
                            family: Family::Ipv6Unicast,
                            forwarding_preserved: false,
                        },
                    ],
                },
            ],
        );
        let n = negotiate(&local(), PeerAsn::Number(65000), &r).unwrap();
        assert_eq!(
            n.peer_graceful_restart,
            Some(PeerGracefulRestart {
                restarting: false,
                restart_time: 90,
                families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
                forwarding_preserved: vec![Family::Ipv4Unicast],
            })
        );
        let plain = negotiate(&local(), PeerAsn::Number(65000), &remote(65000, vec![])).unwrap();
        assert_eq!(plain.peer_graceful_restart, None);
    }

    fn enh_remote() -> Open {
        remote(
            65000,
            vec![
                Capability::Multiprotocol(Family::Ipv4Unicast),
                Capability::Multiprotocol(Family::Ipv6Unicast),
                Capability::ExtendedNextHop(vec![ExtendedNextHopEntry {
                    family: Family::Ipv4Unicast,
                    next_hop_afi: 2,
                }]),
            ],
        )
    }

    #[test]
    fn extended_next_hop_is_advertised_only_when_configured() {
        let is_enh = |c: &Capability| matches!(c, Capability::ExtendedNextHop(_));
        assert!(!local_open(&local(), Instant::now()).has_capability(is_enh));
        let mut l = local();
        l.extended_next_hop = true;
        let o = local_open(&l, Instant::now());
        assert!(o.has_capability(|c| *c == Capability::ExtendedNextHop(vec![ENH_V4_OVER_V6])));
        // Code 5, AFI 1 / SAFI 1 / next hop AFI 2 on the wire, and back.
        let mut buf = Vec::new();
        wire::encode_message(
            &wire::Message::Open(o.clone()),
            &SessionCodec::default(),
            &mut buf,
        );
        let (back, _) = wire::decode_message(&buf, &SessionCodec::default())
            .unwrap()
            .unwrap();
        assert_eq!(back, wire::Message::Open(o));
        // Without IPv4 unicast there is nothing to carry.
        l.families = vec![Family::Ipv6Unicast];
        assert!(!local_open(&l, Instant::now()).has_capability(is_enh));
    }

    #[test]
    fn extended_next_hop_needs_both_sides() {
        let mut l = local();
        assert!(
            !negotiate(&l, PeerAsn::Number(65000), &enh_remote())
                .unwrap()
                .extended_next_hop_v4
        );
        l.extended_next_hop = true;
        assert!(
            negotiate(&l, PeerAsn::Number(65000), &enh_remote())
                .unwrap()
                .extended_next_hop_v4
        );
        let plain = remote(65000, vec![Capability::Multiprotocol(Family::Ipv4Unicast)]);
        assert!(
            !negotiate(&l, PeerAsn::Number(65000), &plain)
                .unwrap()
                .extended_next_hop_v4
        );
        // The peer's entry for another next hop AFI does not count.
        let other = remote(
            65000,
            vec![Capability::ExtendedNextHop(vec![ExtendedNextHopEntry {
                family: Family::Ipv4Unicast,
                next_hop_afi: 1,
            }])],
        );
        assert!(
            !negotiate(&l, PeerAsn::Number(65000), &other)
                .unwrap()
                .extended_next_hop_v4
        );
    }
}
