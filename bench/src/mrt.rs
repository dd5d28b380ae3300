//! Read a real RIB dump: MRT TABLE_DUMP_V2 (RFC 6396 §4.3), the format of
//! RouteViews' and RIPE RIS's `bview`/`rib` files (decompress them first).
//! The first RIB entry of each prefix is taken; prefixes sharing an
//! attribute set become one group, exactly as the sender will pack them.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use wire::{
    Aggregator, AsPath, AsSegment, Community, LargeCommunity, Origin, PathAttributes, Prefix,
};

use crate::table::{Group, Table};

const TABLE_DUMP_V2: u16 = 13;
const PEER_INDEX_TABLE: u16 = 1;
const RIB_IPV4_UNICAST: u16 = 2;
const RIB_IPV6_UNICAST: u16 = 4;
/// RFC 8050: the same with a path identifier per entry.
const RIB_IPV4_UNICAST_ADDPATH: u16 = 8;
const RIB_IPV6_UNICAST_ADDPATH: u16 = 10;

#[derive(Debug, Default, Clone, Copy)]
pub struct MrtStats {
    pub records: usize,
    pub rib_records: usize,
    /// Prefixes dropped: the receiver's ASN is in the path (it would reject
    /// them as a loop), or over the --ipv4/--ipv6 limit.
    pub skipped: usize,
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Attributes worth replaying from one RIB entry. The next hop, LOCAL_PREF
/// and the non-transitive ones are the dumping router's business; the
/// sender's ASN is prepended as an eBGP speaker would.
fn parse_attrs(mut b: &[u8], sender_asn: u32) -> Result<PathAttributes, String> {
    let mut a = PathAttributes::default();
    let mut path = Vec::new();
    while !b.is_empty() {
        if b.len() < 3 {
            return Err("truncated attribute header".into());
        }
        let flags = b[0];
        let ty = b[1];
        let (len, hdr) = if flags & 0x10 != 0 {
            if b.len() < 4 {
                return Err("truncated attribute header".into());
            }
            (usize::from(be16(&b[2..4])), 4)
        } else {
            (usize::from(b[2]), 3)
        };
        if b.len() < hdr + len {
            return Err(format!("attribute {ty} overruns the entry"));
        }
        let v = &b[hdr..hdr + len];
        b = &b[hdr + len..];
        match ty {
            1 if len == 1 => {
                a.origin = Some(match v[0] {
                    0 => Origin::Igp,
                    1 => Origin::Egp,
                    _ => Origin::Incomplete,
                })
            }
            // AS_PATH: always 4-octet ASNs in TABLE_DUMP_V2 (RFC 6396 §4.3.4).
            2 => {
                let mut s = v;
                while s.len() >= 2 {
                    let (seg_ty, n) = (s[0], usize::from(s[1]));
                    if s.len() < 2 + 4 * n {
                        return Err("truncated AS_PATH segment".into());
                    }
                    let asns: Vec<u32> = s[2..2 + 4 * n].chunks_exact(4).map(be32).collect();
                    path.push(if seg_ty == 1 {
                        AsSegment::Set(asns)
                    } else {
                        AsSegment::Sequence(asns)
                    });
                    s = &s[2 + 4 * n..];
                }
            }
            4 if len == 4 => a.med = Some(be32(v)),
            6 => a.atomic_aggregate = true,
            7 if len == 8 => {
                a.aggregator = Some(Aggregator {
                    asn: be32(v),
                    address: Ipv4Addr::new(v[4], v[5], v[6], v[7]),
                })
            }
            8 => a.communities = v.chunks_exact(4).map(|c| Community(be32(c))).collect(),
            32 => {
                a.large_communities = v
                    .chunks_exact(12)
                    .map(|c| LargeCommunity {
                        global: be32(c),
                        local1: be32(&c[4..]),
                        local2: be32(&c[8..]),
                    })
                    .collect()
            }
            _ => {}
        }
    }
    a.origin.get_or_insert(Origin::Incomplete);
    a.as_path = AsPath::from_segments(path);
    a.as_path.prepend(sender_asn, 1);
    Ok(a)
}

fn parse_prefix(b: &[u8], v6: bool) -> Result<(Prefix, usize), String> {
    let len = *b.first().ok_or("truncated prefix")?;
    let n = usize::from(len).div_ceil(8);
    if b.len() < 1 + n || len > if v6 { 128 } else { 32 } {
        return Err("bad prefix".into());
    }
    let mut a = [0u8; 16];
    a[..n].copy_from_slice(&b[1..1 + n]);
    let p = if v6 {
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), len).map_err(|e| e.to_string())?)
    } else {
        let v = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
        IpNet::V4(Ipv4Net::new(v, len).map_err(|e| e.to_string())?)
    };
    Ok((p.trunc(), 1 + n))
}

/// Parse a whole dump. `max_v4`/`max_v6` cap the prefixes taken (in file
/// order); `receiver_asn` paths are left out.
pub fn read(
    data: &[u8],
    sender_asn: u32,
    receiver_asn: u32,
    max_v4: Option<usize>,
    max_v6: Option<usize>,
) -> Result<(Table, MrtStats), String> {
    let mut stats = MrtStats::default();
    let mut index: [HashMap<PathAttributes, usize>; 2] = [HashMap::new(), HashMap::new()];
    let mut groups: Vec<Group> = Vec::new();
    let (mut n4, mut n6) = (0usize, 0usize);
    let mut off = 0;
    while off < data.len() {
        if data.len() - off < 12 {
            return Err(format!("truncated MRT header at offset {off}"));
        }
        let h = &data[off..off + 12];
        let (ty, sub, len) = (be16(&h[4..6]), be16(&h[6..8]), be32(&h[8..12]) as usize);
        let body = data
            .get(off + 12..off + 12 + len)
            .ok_or_else(|| format!("MRT record at offset {off} overruns the file"))?;
        off += 12 + len;
        stats.records += 1;
        if ty != TABLE_DUMP_V2 || sub == PEER_INDEX_TABLE {
            continue;
        }
        let (v6, addpath) = match sub {
            RIB_IPV4_UNICAST => (false, false),
            RIB_IPV6_UNICAST => (true, false),
            RIB_IPV4_UNICAST_ADDPATH => (false, true),
            RIB_IPV6_UNICAST_ADDPATH => (true, true),
            _ => continue,
        };
        stats.rib_records += 1;
        let err = |e: String| format!("RIB record at offset {}: {e}", off - 12 - len);
        if body.len() < 4 {
            return Err(err("truncated".into()));
        }
        let (prefix, used) = parse_prefix(&body[4..], v6).map_err(err)?;
        let rest = &body[4 + used..];
        if rest.len() < 2 || be16(rest) == 0 {
            continue;
        }
        // First entry: peer index (2), originated time (4), [path id (4)],
        // attribute length (2), attributes.
        let e = &rest[2..];
        let skip = 6 + if addpath { 4 } else { 0 };
        if e.len() < skip + 2 {
            return Err(err("truncated RIB entry".into()));
        }
        let alen = usize::from(be16(&e[skip..]));
        let attrs = e
            .get(skip + 2..skip + 2 + alen)
            .ok_or_else(|| err("attributes overrun the entry".into()))?;
        let (count, cap) = if v6 {
            (&mut n6, max_v6)
        } else {
            (&mut n4, max_v4)
        };
        if cap.is_some_and(|c| *count >= c) {
            stats.skipped += 1;
            continue;
        }
        let attrs = parse_attrs(attrs, sender_asn).map_err(err)?;
        if attrs.as_path.count(receiver_asn) > 0 {
            stats.skipped += 1;
            continue;
        }
        *count += 1;
        // Groups are per family: one index per family.
        let gi = *index[usize::from(v6)]
            .entry(attrs.clone())
            .or_insert_with(|| {
                groups.push(Group {
                    attrs,
                    prefixes: Vec::new(),
                });
                groups.len() - 1
            });
        groups[gi].prefixes.push(prefix);
    }
    Ok((Table { groups }, stats))
}

#[cfg(test)]
pub mod tests {
    use super::*;

    fn record(sub: u16, body: &[u8]) -> Vec<u8> {
        let mut r = vec![0, 0, 0, 0];
        r.extend_from_slice(&TABLE_DUMP_V2.to_be_bytes());
        r.extend_from_slice(&sub.to_be_bytes());
        r.extend_from_slice(&(body.len() as u32).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    fn rib(seq: u32, prefix: &[u8], attrs: &[&[u8]]) -> Vec<u8> {
        let mut b = seq.to_be_bytes().to_vec();
        b.extend_from_slice(prefix);
        b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        for a in attrs {
            b.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // peer index, time
            b.extend_from_slice(&(a.len() as u16).to_be_bytes());
            b.extend_from_slice(a);
        }
        b
    }

    /// A two-peer dump: 10.1.0.0/16 and 10.2.0.0/16 share attributes,
    /// 2001:db8::/32 has its own, and one path holds the receiver's ASN.
    pub fn sample_dump() -> Vec<u8> {
        let attrs_a: &[u8] = &[
            0x40, 1, 1, 0, // ORIGIN IGP
            0x40, 2, 10, 2, 2, 0, 0, 0x0d, 0x1c, 0, 0, 0x0b, 0x62, // AS_PATH 3356 2914
            0x80, 4, 4, 0, 0, 0, 50, // MED 50
            0xc0, 8, 4, 0x0d, 0x1c, 0, 1, // COMMUNITY 3356:1
            0x40, 3, 4, 192, 0, 2, 1, // NEXT_HOP (dropped)
        ];
        let attrs_b: &[u8] = &[0x40, 1, 1, 2, 0x40, 2, 6, 2, 1, 0, 0, 0x19, 0x35];
        let looped: &[u8] = &[0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9];
        let mut d = record(PEER_INDEX_TABLE, &[0; 8]);
        d.extend(record(
            RIB_IPV4_UNICAST,
            &rib(0, &[16, 10, 1], &[attrs_a, attrs_b]),
        ));
        d.extend(record(RIB_IPV4_UNICAST, &rib(1, &[16, 10, 2], &[attrs_a])));
        d.extend(record(
            RIB_IPV4_UNICAST,
            &rib(2, &[24, 10, 3, 0], &[looped]),
        ));
        d.extend(record(
            RIB_IPV6_UNICAST,
            &rib(3, &[32, 0x20, 0x01, 0x0d, 0xb8], &[attrs_b]),
        ));
        d
    }

    #[test]
    fn reads_first_entry_and_groups() {
        let (t, stats) = read(&sample_dump(), 65000, 65001, None, None).unwrap();
        assert_eq!(stats.rib_records, 4);
        assert_eq!(stats.skipped, 1);
        assert_eq!(t.counts(), (2, 1));
        assert_eq!(t.groups.len(), 2);
        let g = &t.groups[0];
        assert_eq!(g.prefixes.len(), 2);
        assert_eq!(g.attrs.as_path.to_string(), "65000 3356 2914");
        assert_eq!(g.attrs.med, Some(50));
        assert_eq!(g.attrs.communities, vec!["3356:1".parse().unwrap()]);
        assert_eq!(g.attrs.next_hop, None);
        assert_eq!(t.groups[1].prefixes[0].to_string(), "2001:db8::/32");
        assert_eq!(t.groups[1].attrs.origin, Some(Origin::Incomplete));
    }

    #[test]
    fn caps_and_truncation() {
        let (t, _) = read(&sample_dump(), 65000, 65001, Some(1), Some(0)).unwrap();
        assert_eq!(t.counts(), (1, 0));
        let d = sample_dump();
        assert!(read(&d[..d.len() - 3], 65000, 65001, None, None).is_err());
    }
}
