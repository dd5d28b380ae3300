//! Turn a table into the exact bytes the sender writes, before any clock
//! starts: UPDATEs (split into ≤4096-octet messages by kroute's encoder),
//! End-of-RIB markers, and the withdraw/announce bursts of the churn run.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use wire::codec::SessionCodec;
use wire::{
    encode_message, Capability, Family, Message, MpReach, MpUnreach, NextHop, Open, Update,
};

use crate::table::Table;

/// Every session the sender opens negotiates 4-octet ASNs (all the
/// receivers do); the pre-encoded bytes depend on it.
pub const CODEC: SessionCodec = SessionCodec {
    four_octet_as: true,
};

#[derive(Debug, Clone, Copy)]
pub struct NextHops {
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
}

/// Append the UPDATEs announcing every group of `table`; returns how many
/// UPDATE messages were written.
pub fn announce(table: &Table, nh: &NextHops, out: &mut Vec<u8>) -> usize {
    let before = out.len();
    for g in &table.groups {
        let Some(first) = g.prefixes.first() else {
            continue;
        };
        let mut u = Update {
            attributes: g.attrs.clone(),
            ..Update::default()
        };
        match first {
            IpNet::V4(_) => {
                u.attributes.next_hop = Some(nh.v4);
                u.nlri = g
                    .prefixes
                    .iter()
                    .filter_map(|p| match p {
                        IpNet::V4(n) => Some(*n),
                        IpNet::V6(_) => None,
                    })
                    .collect();
            }
            IpNet::V6(_) => {
                u.attributes.next_hop = None;
                u.mp_reach = Some(MpReach {
                    family: Family::Ipv6Unicast,
                    next_hop: NextHop::new(IpAddr::V6(nh.v6)),
                    nlri: g.prefixes.clone(),
                });
            }
        }
        encode_message(&Message::Update(u), &CODEC, out);
    }
    count_messages(&out[before..])
}

/// Append UPDATEs withdrawing every prefix of `table`.
pub fn withdraw(table: &Table, out: &mut Vec<u8>) -> usize {
    let before = out.len();
    let (v4, v6): (Vec<&IpNet>, Vec<&IpNet>) =
        table.prefixes().partition(|p| matches!(p, IpNet::V4(_)));
    if !v4.is_empty() {
        let u = Update {
            withdrawn: v4
                .iter()
                .filter_map(|p| match p {
                    IpNet::V4(n) => Some(*n),
                    IpNet::V6(_) => None,
                })
                .collect(),
            ..Update::default()
        };
        encode_message(&Message::Update(u), &CODEC, out);
    }
    if !v6.is_empty() {
        let u = Update {
            mp_unreach: Some(MpUnreach {
                family: Family::Ipv6Unicast,
                withdrawn: v6.into_iter().copied().collect(),
            }),
            ..Update::default()
        };
        encode_message(&Message::Update(u), &CODEC, out);
    }
    count_messages(&out[before..])
}

/// Append the End-of-RIB markers (RFC 4724 §2) for both families.
pub fn end_of_rib(out: &mut Vec<u8>) {
    encode_message(&Message::Update(Update::default()), &CODEC, out);
    let u = Update {
        mp_unreach: Some(MpUnreach {
            family: Family::Ipv6Unicast,
            withdrawn: Vec::new(),
        }),
        ..Update::default()
    };
    encode_message(&Message::Update(u), &CODEC, out);
}

pub fn open(asn: u32, router_id: Ipv4Addr, hold_time: u16) -> Vec<u8> {
    let o = Open {
        version: 4,
        asn,
        hold_time,
        router_id,
        capabilities: vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::Multiprotocol(Family::Ipv6Unicast),
            Capability::RouteRefresh,
            Capability::FourOctetAs(asn),
        ],
    };
    let mut out = Vec::new();
    encode_message(&Message::Open(o), &CODEC, &mut out);
    out
}

pub fn keepalive() -> Vec<u8> {
    let mut out = Vec::new();
    encode_message(&Message::Keepalive, &CODEC, &mut out);
    out
}

/// NOTIFICATION Cease / Administrative Shutdown (RFC 4486).
pub fn cease() -> Vec<u8> {
    let mut out = Vec::new();
    let n = wire::Notification {
        code: 6,
        subcode: 2,
        data: Vec::new(),
    };
    encode_message(&Message::Notification(n), &CODEC, &mut out);
    out
}

/// Number of whole BGP messages in `b` (walks the length fields).
pub fn count_messages(mut b: &[u8]) -> usize {
    let mut n = 0;
    while b.len() >= 19 {
        let len = usize::from(u16::from_be_bytes([b[16], b[17]]));
        if len < 19 || len > b.len() {
            break;
        }
        b = &b[len..];
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{generate, GenParams};
    use std::collections::HashSet;
    use wire::decode_message;

    /// Every prefix comes back out of kroute's decoder, with the right next
    /// hop, and no message exceeds 4096 octets.
    #[test]
    fn round_trip_through_the_decoder() {
        let t = generate(&GenParams {
            ipv4: 3000,
            ipv6: 700,
            seed: 9,
            sender_asn: 65000,
            receiver_asn: 65001,
        });
        let nh = NextHops {
            v4: "10.255.255.1".parse().unwrap(),
            v6: "fd00:6b62::1".parse().unwrap(),
        };
        let mut buf = Vec::new();
        let n = announce(&t, &nh, &mut buf);
        end_of_rib(&mut buf);
        assert!(n >= t.groups.len());
        let mut seen = HashSet::new();
        let mut eor = 0;
        let mut b = &buf[..];
        while !b.is_empty() {
            let (msg, used) = decode_message(b, &CODEC).unwrap().expect("whole message");
            assert!(used <= 4096);
            b = &b[used..];
            let Message::Update(u) = msg else {
                panic!("not an UPDATE")
            };
            if u.end_of_rib().is_some() {
                eor += 1;
                continue;
            }
            assert!(u.treat_as_withdraw.is_none());
            assert_eq!(u.attributes.as_path.first_asn(), Some(65000));
            for p in &u.nlri {
                assert_eq!(u.attributes.next_hop, Some(nh.v4));
                assert!(seen.insert(IpNet::V4(*p)));
            }
            if let Some(r) = &u.mp_reach {
                assert_eq!(r.next_hop.address, IpAddr::V6(nh.v6));
                for p in &r.nlri {
                    assert!(seen.insert(*p));
                }
            }
        }
        assert_eq!(eor, 2);
        assert_eq!(seen.len(), 3700);

        let mut w = Vec::new();
        withdraw(&t.sample(100), &mut w);
        let mut gone = 0;
        let mut b = &w[..];
        while !b.is_empty() {
            let (msg, used) = decode_message(b, &CODEC).unwrap().unwrap();
            b = &b[used..];
            if let Message::Update(u) = msg {
                gone += u.withdrawn.len() + u.mp_unreach.map_or(0, |m| m.withdrawn.len());
            }
        }
        assert_eq!(gone, 100);
    }
}
