//! ICMPv6 Router Solicitation and Router Advertisement (RFC 4861 §4.1,
//! §4.2): encoding ours and checking theirs. Pure: the socket is
//! `link.rs`'s.
//!
//! We only need the neighbour's link-local address (the packet's source)
//! and to be seen by a neighbour that looks for routers (FRR's unnumbered
//! peers learn our address from our RAs). So ours carry no options and a
//! router lifetime of 0: hosts on the link must not pick us as their
//! default router (§4.2, §6.3.4).

use std::net::Ipv6Addr;

pub const ROUTER_SOLICITATION: u8 = 133;
pub const ROUTER_ADVERTISEMENT: u8 = 134;

/// RFC 4861 §6.1.1/§6.1.2: a packet not sent with hop limit 255 may come
/// from off the link and is discarded.
pub const HOP_LIMIT: u8 = 255;

/// A checked RS or RA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    Solicitation,
    Advertisement {
        /// Seconds; 0: the sender is not a default router.
        router_lifetime: u16,
    },
}

/// Why a packet was not taken as an RS or RA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// Another ICMPv6 type (the socket's filter may let some through).
    NotRouterDiscovery(u8),
    HopLimit(u8),
    Code(u8),
    TooShort(usize),
    /// An option of length 0 (§4.6: such packets are discarded).
    BadOption,
    /// RAs must come from a link-local address (§6.1.2).
    SourceNotLinkLocal(Ipv6Addr),
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reject::NotRouterDiscovery(t) => write!(f, "ICMPv6 type {t}, not RS/RA"),
            Reject::HopLimit(h) => write!(f, "hop limit {h}, not 255 (RFC 4861 §6.1.2)"),
            Reject::Code(c) => write!(f, "ICMPv6 code {c}, not 0"),
            Reject::TooShort(n) => write!(f, "{n} octets, too short"),
            Reject::BadOption => f.write_str("an option of length 0"),
            Reject::SourceNotLinkLocal(a) => write!(f, "source {a} is not link-local"),
        }
    }
}

/// Check `packet` (the ICMPv6 message, from its type octet), received with
/// `hop_limit` from `source`. The checksum was checked by the kernel
/// (raw ICMPv6 sockets always verify it, RFC 3542 §3.1).
pub fn decode(packet: &[u8], hop_limit: u8, source: Ipv6Addr) -> Result<Message, Reject> {
    let Some(&kind) = packet.first() else {
        return Err(Reject::TooShort(0));
    };
    // Fixed part: RS 8 octets (§4.1), RA 16 (§4.2).
    let fixed = match kind {
        ROUTER_SOLICITATION => 8,
        ROUTER_ADVERTISEMENT => 16,
        other => return Err(Reject::NotRouterDiscovery(other)),
    };
    if hop_limit != HOP_LIMIT {
        return Err(Reject::HopLimit(hop_limit));
    }
    if packet.len() < fixed {
        return Err(Reject::TooShort(packet.len()));
    }
    if packet[1] != 0 {
        return Err(Reject::Code(packet[1]));
    }
    // Options: (type, length in units of 8 octets, ...).
    let mut rest = &packet[fixed..];
    while rest.len() >= 2 {
        let len = usize::from(rest[1]) * 8;
        if len == 0 || len > rest.len() {
            return Err(Reject::BadOption);
        }
        rest = &rest[len..];
    }
    match kind {
        // An RS from the unspecified address is a host without one yet:
        // no address to learn, but still worth an answer.
        ROUTER_SOLICITATION => Ok(Message::Solicitation),
        _ if !source.is_unicast_link_local() => Err(Reject::SourceNotLinkLocal(source)),
        _ => Ok(Message::Advertisement {
            router_lifetime: u16::from_be_bytes([packet[6], packet[7]]),
        }),
    }
}

/// Our Router Solicitation: no options. The checksum is left 0 for the
/// kernel to fill (raw ICMPv6 sockets compute it, RFC 3542 §3.1).
pub fn solicitation() -> Vec<u8> {
    vec![ROUTER_SOLICITATION, 0, 0, 0, 0, 0, 0, 0]
}

/// Our Router Advertisement: hop limit and timers unspecified (0), no
/// M/O flags, router lifetime 0 (not a default router), no options.
pub fn advertisement() -> Vec<u8> {
    let mut p = vec![0; 16];
    p[0] = ROUTER_ADVERTISEMENT;
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ll() -> Ipv6Addr {
        "fe80::1".parse().unwrap()
    }

    #[test]
    fn ours_decode_as_what_they_are() {
        assert_eq!(
            decode(&solicitation(), 255, ll()),
            Ok(Message::Solicitation)
        );
        assert_eq!(
            decode(&advertisement(), 255, ll()),
            Ok(Message::Advertisement { router_lifetime: 0 })
        );
    }

    #[test]
    fn an_advertisement_with_options_and_a_lifetime() {
        // FRR's: hop limit 64, lifetime 1800 s, reachable 0, retrans 0,
        // source link-layer address (type 1, 1 unit) and MTU (type 5).
        let mut p = vec![
            134, 0, 0x12, 0x34, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        p.extend([1, 1, 0x02, 0, 0, 0, 0, 1]);
        p.extend([5, 1, 0, 0, 0, 0, 0x05, 0xdc]);
        assert_eq!(
            decode(&p, 255, ll()),
            Ok(Message::Advertisement {
                router_lifetime: 1800
            })
        );
    }

    #[test]
    fn off_link_and_malformed_packets_are_refused() {
        assert_eq!(
            decode(&advertisement(), 64, ll()),
            Err(Reject::HopLimit(64))
        );
        assert_eq!(
            decode(&solicitation(), 254, ll()),
            Err(Reject::HopLimit(254))
        );
        let global: Ipv6Addr = "fd00::1".parse().unwrap();
        assert_eq!(
            decode(&advertisement(), 255, global),
            Err(Reject::SourceNotLinkLocal(global))
        );
        assert_eq!(
            decode(&advertisement()[..12], 255, ll()),
            Err(Reject::TooShort(12))
        );
        let mut coded = advertisement();
        coded[1] = 1;
        assert_eq!(decode(&coded, 255, ll()), Err(Reject::Code(1)));
        let mut zero_option = advertisement();
        zero_option.extend([1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(decode(&zero_option, 255, ll()), Err(Reject::BadOption));
        let mut long_option = advertisement();
        long_option.extend([1, 2, 0, 0, 0, 0, 0, 0]);
        assert_eq!(decode(&long_option, 255, ll()), Err(Reject::BadOption));
        // An echo request (128) is not ours to handle.
        assert_eq!(
            decode(&[128, 0, 0, 0, 0, 0, 0, 0], 64, ll()),
            Err(Reject::NotRouterDiscovery(128))
        );
        assert_eq!(decode(&[], 255, ll()), Err(Reject::TooShort(0)));
    }

    #[test]
    fn a_solicitation_from_the_unspecified_address_is_still_one() {
        assert_eq!(
            decode(&solicitation(), 255, Ipv6Addr::UNSPECIFIED),
            Ok(Message::Solicitation)
        );
    }
}
