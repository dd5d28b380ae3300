//! Path attributes one by one (RFC 4271 §4.3 and §5, RFC 1997, RFC 4456,
//! RFC 4760, RFC 6793, RFC 8092): parsed from an UPDATE's attribute area
//! with the per-attribute RFC 7606 §7 checks, and emitted in type-code
//! order. MP_REACH_NLRI / MP_UNREACH_NLRI are parsed here whole; on the
//! encode side only their writers are here, because `encode` chooses which
//! prefixes go into each message.

use std::net::IpAddr;

use super::as_path::{as_path_wire_len, merge_as4_path, parse_as_path, write_as_path};
use super::nlri::{parse_family_prefixes, write_pfx};
use super::rfc7606::{self, AttrState};
use super::*;

const F_OPT: u8 = RawAttribute::FLAG_OPTIONAL;
const F_TRANS: u8 = RawAttribute::FLAG_TRANSITIVE;
const F_PARTIAL: u8 = RawAttribute::FLAG_PARTIAL;
const F_EXT: u8 = RawAttribute::FLAG_EXTENDED_LENGTH;
/// Well-known attributes: optional bit clear, transitive bit set.
const WELL_KNOWN: u8 = F_TRANS;
const OPT_TRANS: u8 = F_OPT | F_TRANS;
const OPT_NON_TRANS: u8 = F_OPT;

/// AS4_PATH / AS4_AGGREGATOR as received on a 2-octet session, kept aside
/// until the whole attribute list is read (RFC 6793 §4.2.3).
#[derive(Default)]
pub(super) struct As4Attrs {
    path: Option<AsPath>,
    aggregator: Option<Aggregator>,
}

impl As4Attrs {
    /// RFC 6793 §4.2.3: rebuild AS_PATH and AGGREGATOR from their AS4_*
    /// counterparts, unless an OLD speaker aggregated (then both AS4_* are
    /// stale and ignored).
    pub fn reconcile(self, a: &mut PathAttributes, have_as_path: bool) {
        match a.aggregator {
            Some(ag) if ag.asn != u32::from(AS_TRANS) => {}
            _ => {
                if let (Some(ag), Some(ag4)) = (a.aggregator.as_mut(), self.aggregator) {
                    *ag = ag4;
                }
                if let Some(p4) = self.path {
                    if have_as_path {
                        a.as_path = merge_as4_path(&a.as_path, p4);
                    }
                }
            }
        }
    }
}

/// Walk the path attribute area `p` into `u`, noting in `st` what the
/// RFC 7606 rules need. `Err` is a session reset.
pub(super) fn decode_attributes(
    mut p: &[u8],
    codec: &SessionCodec,
    u: &mut Update,
    st: &mut AttrState,
) -> Result<As4Attrs, DecodeError> {
    let asn_len = if codec.four_octet_as { 4 } else { 2 };
    let mut as4 = As4Attrs::default();
    while !p.is_empty() {
        let flags = p[0];
        let hdr = if flags & F_EXT != 0 { 4 } else { 3 };
        if p.len() < hdr {
            rfc7606::overrun(p.get(1).copied(), st)?;
            return Ok(as4);
        }
        let ty = p[1];
        let len = if hdr == 4 {
            usize::from(be16(&p[2..4]))
        } else {
            usize::from(p[2])
        };
        if p.len() - hdr < len {
            rfc7606::overrun(Some(ty), st)?;
            return Ok(as4);
        }
        let whole = &p[..hdr + len];
        let v = &p[hdr..hdr + len];
        p = &p[hdr + len..];

        if st.dup(ty) {
            rfc7606::duplicate(ty, st)?;
            continue;
        }
        let ot = flags & (F_OPT | F_TRANS);
        let a = &mut u.attributes;
        // RFC 7606 §3 c: Optional/Transitive bits in conflict with the
        // attribute's definition make it malformed.
        let flags_ok = |want: u8| ot == want;
        let name = attr_name(ty);
        match ty {
            attr_type::ORIGIN => {
                let o = match v {
                    [0] => Some(Origin::Igp),
                    [1] => Some(Origin::Egp),
                    [2] => Some(Origin::Incomplete),
                    _ => None,
                };
                match o {
                    Some(o) if flags_ok(WELL_KNOWN) => {
                        a.origin = Some(o);
                        st.have_origin = true;
                    }
                    _ => st.withdraw(|| "malformed ORIGIN: bad flags, length or value".into()),
                }
            }
            attr_type::AS_PATH => {
                if !flags_ok(WELL_KNOWN) {
                    st.withdraw(|| "malformed AS_PATH: bad flags".into());
                    continue;
                }
                match parse_as_path(v, asn_len) {
                    Ok(path) => {
                        a.as_path = path;
                        st.have_as_path = true;
                    }
                    Err(why) => st.withdraw(|| format!("malformed AS_PATH: {why}")),
                }
            }
            attr_type::NEXT_HOP => {
                if flags_ok(WELL_KNOWN) && len == 4 {
                    a.next_hop = Some(v4(v));
                    st.have_next_hop = true;
                } else {
                    st.withdraw(|| "malformed NEXT_HOP: bad flags or length".into());
                }
            }
            attr_type::MULTI_EXIT_DISC | attr_type::LOCAL_PREF => {
                let want = if ty == attr_type::LOCAL_PREF {
                    WELL_KNOWN
                } else {
                    OPT_NON_TRANS
                };
                if flags_ok(want) && len == 4 {
                    if ty == attr_type::LOCAL_PREF {
                        a.local_pref = Some(be32(v));
                    } else {
                        a.med = Some(be32(v));
                    }
                } else {
                    st.withdraw(|| format!("malformed {name}: bad flags or length"));
                }
            }
            attr_type::ATOMIC_AGGREGATE => {
                // RFC 7606 §7.6: attribute discard.
                if flags_ok(WELL_KNOWN) && len == 0 {
                    a.atomic_aggregate = true;
                } else {
                    st.discard(|| format!("malformed {name}: bad flags or length, discarded"));
                }
            }
            attr_type::AGGREGATOR => {
                // RFC 7606 §7.7: attribute discard.
                if flags_ok(OPT_TRANS) && len == 2 + asn_len + 2 {
                    let (asn, addr) = if asn_len == 4 {
                        (be32(v), v4(&v[4..]))
                    } else {
                        (u32::from(be16(v)), v4(&v[2..]))
                    };
                    a.aggregator = Some(Aggregator { asn, address: addr });
                } else {
                    st.discard(|| format!("malformed {name}: bad flags or length, discarded"));
                }
            }
            attr_type::COMMUNITIES => {
                if flags_ok(OPT_TRANS) && len > 0 && len % 4 == 0 {
                    a.communities = v.chunks_exact(4).map(|c| Community(be32(c))).collect();
                } else {
                    st.withdraw(|| "malformed COMMUNITIES: bad flags or length".into());
                }
            }
            attr_type::LARGE_COMMUNITIES => {
                // RFC 8092 §6.
                if flags_ok(OPT_TRANS) && len > 0 && len % 12 == 0 {
                    a.large_communities = v
                        .chunks_exact(12)
                        .map(|c| LargeCommunity {
                            global: be32(c),
                            local1: be32(&c[4..]),
                            local2: be32(&c[8..]),
                        })
                        .collect();
                } else {
                    st.withdraw(|| "malformed LARGE_COMMUNITIES: bad flags or length".into());
                }
            }
            attr_type::ORIGINATOR_ID => {
                if flags_ok(OPT_NON_TRANS) && len == 4 {
                    a.originator_id = Some(v4(v));
                } else {
                    st.withdraw(|| "malformed ORIGINATOR_ID: bad flags or length".into());
                }
            }
            attr_type::CLUSTER_LIST => {
                if flags_ok(OPT_NON_TRANS) && len > 0 && len % 4 == 0 {
                    a.cluster_list = v.chunks_exact(4).map(v4).collect();
                } else {
                    st.withdraw(|| "malformed CLUSTER_LIST: bad flags or length".into());
                }
            }
            attr_type::AS4_PATH => {
                // RFC 6793 §4.1: a NEW speaker discards AS4_PATH from a NEW
                // speaker; §6: a malformed one is discarded.
                if !codec.four_octet_as {
                    as4.path = flags_ok(OPT_TRANS)
                        .then(|| parse_as_path(v, 4).ok())
                        .flatten();
                    if as4.path.is_none() {
                        st.discard(|| format!("malformed {name}: discarded (RFC 6793 §6)"));
                    }
                }
            }
            attr_type::AS4_AGGREGATOR => {
                if codec.four_octet_as {
                    // RFC 6793 §4.1: ignored from a NEW speaker.
                } else if flags_ok(OPT_TRANS) && len == 8 {
                    as4.aggregator = Some(Aggregator {
                        asn: be32(v),
                        address: v4(&v[4..]),
                    });
                } else {
                    st.discard(|| format!("malformed {name}: discarded (RFC 6793 §6)"));
                }
            }
            attr_type::MP_REACH_NLRI | attr_type::MP_UNREACH_NLRI => {
                let bad = || rfc7606::mp_error(whole);
                if !flags_ok(OPT_NON_TRANS) {
                    return Err(bad());
                }
                let known = if ty == attr_type::MP_REACH_NLRI {
                    u.mp_reach = decode_mp_reach(v).map_err(|_| bad())?;
                    u.mp_reach.is_some()
                } else {
                    u.mp_unreach = decode_mp_unreach(v).map_err(|_| bad())?;
                    u.mp_unreach.is_some()
                };
                if !known {
                    // RFC 4760 §7: NLRI of an AFI/SAFI we do not speak are
                    // ignored; the attribute is well-formed (length >= 3
                    // was checked), so the AFI/SAFI can be named.
                    let (afi, safi) = (be16(v), v[2]);
                    st.discard(|| format!("{name}: AFI/SAFI {afi}/{safi} not supported, ignored"));
                }
            }
            _ => {
                if flags & F_OPT == 0 {
                    return Err(rfc7606::unrecognized_well_known(whole));
                }
                a.unknown.push(RawAttribute {
                    flags,
                    type_code: ty,
                    value: v.to_vec(),
                });
            }
        }
    }
    Ok(as4)
}

/// MP_REACH_NLRI value (RFC 4760 §3). `Ok(None)`: a family we do not speak.
fn decode_mp_reach(v: &[u8]) -> Result<Option<MpReach>, ()> {
    if v.len() < 5 {
        return Err(());
    }
    let afi = be16(v);
    let safi = v[2];
    let nh_len = usize::from(v[3]);
    // next hop + the reserved (formerly SNPA count) octet
    if v.len() < 4 + nh_len + 1 {
        return Err(());
    }
    let nh = &v[4..4 + nh_len];
    let nlri = &v[4 + nh_len + 1..];
    let Some(family) = Family::from_afi_safi(afi, safi) else {
        return Ok(None);
    };
    let next_hop = match (family, nh_len) {
        (Family::Ipv4Unicast, 4) => NextHop::new(IpAddr::V4(v4(nh))),
        // RFC 8950 for AFI 1; RFC 2545 §3 for AFI 2.
        (_, 16) => NextHop::new(IpAddr::V6(v6(nh))),
        (_, 32) => {
            let ll = v6(&nh[16..]);
            NextHop {
                address: IpAddr::V6(v6(nh)),
                link_local: (!ll.is_unspecified()).then_some(ll),
                interface: None,
            }
        }
        _ => return Err(()),
    };
    let mut prefixes = Vec::new();
    parse_family_prefixes(nlri, family, &mut prefixes)?;
    Ok(Some(MpReach {
        family,
        next_hop,
        nlri: prefixes,
    }))
}

/// MP_UNREACH_NLRI value (RFC 4760 §4). `Ok(None)`: a family we do not speak.
fn decode_mp_unreach(v: &[u8]) -> Result<Option<MpUnreach>, ()> {
    if v.len() < 3 {
        return Err(());
    }
    let Some(family) = Family::from_afi_safi(be16(v), v[2]) else {
        return Ok(None);
    };
    let mut withdrawn = Vec::new();
    parse_family_prefixes(&v[3..], family, &mut withdrawn)?;
    Ok(Some(MpUnreach { family, withdrawn }))
}

pub(super) fn put_attr_hdr(out: &mut Vec<u8>, flags: u8, ty: u8, len: usize) {
    if len > 255 {
        out.push(flags | F_EXT);
        out.push(ty);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(flags & !F_EXT);
        out.push(ty);
        out.push(len as u8);
    }
}

pub(super) fn attr_hdr_len(len: usize) -> usize {
    if len > 255 {
        4
    } else {
        3
    }
}

fn handled_type(ty: u8) -> bool {
    matches!(ty, 1..=10 | 14 | 15 | 17 | 18 | 32)
}

/// Encode every path attribute except MP_REACH/MP_UNREACH, in type-code
/// order, into `out`. The model cannot tell an empty AS_PATH from a missing
/// one: an empty AS_PATH is written only if `reachable` (the message
/// announces something and so needs the mandatory attribute).
pub(super) fn encode_path_attributes(
    a: &PathAttributes,
    codec: &SessionCodec,
    reachable: bool,
    out: &mut Vec<u8>,
) {
    let asn_len = if codec.four_octet_as { 4 } else { 2 };
    // Unknown attributes: only optional transitive ones are passed on, with
    // the Partial bit set (RFC 4271 §5); unrecognized non-transitive ones
    // are quietly ignored, i.e. not passed on.
    let mut unknown: Vec<&RawAttribute> = a
        .unknown
        .iter()
        .filter(|r| {
            r.flags & OPT_TRANS == OPT_TRANS
                && !handled_type(r.type_code)
                && r.value.len() <= 0xffff
        })
        .collect();
    unknown.sort_by_key(|r| r.type_code);
    let mut unknown = unknown.into_iter().peekable();
    let mut flush_below = |ty: u16, out: &mut Vec<u8>| {
        while let Some(r) = unknown.next_if(|r| u16::from(r.type_code) < ty) {
            let flags = (r.flags & !(F_EXT | 0x0f)) | F_PARTIAL;
            put_attr_hdr(out, flags, r.type_code, r.value.len());
            out.extend_from_slice(&r.value);
        }
    };
    let fits = |len: usize| len <= 0xffff;

    if let Some(o) = a.origin {
        put_attr_hdr(out, WELL_KNOWN, attr_type::ORIGIN, 1);
        out.push(o as u8);
    }
    let plen = as_path_wire_len(&a.as_path, asn_len);
    if fits(plen) && (reachable || !a.as_path.is_empty()) {
        put_attr_hdr(out, WELL_KNOWN, attr_type::AS_PATH, plen);
        write_as_path(&a.as_path, asn_len, out);
    }
    if let Some(nh) = a.next_hop {
        put_attr_hdr(out, WELL_KNOWN, attr_type::NEXT_HOP, 4);
        out.extend_from_slice(&nh.octets());
    }
    if let Some(m) = a.med {
        put_attr_hdr(out, OPT_NON_TRANS, attr_type::MULTI_EXIT_DISC, 4);
        out.extend_from_slice(&m.to_be_bytes());
    }
    if let Some(lp) = a.local_pref {
        put_attr_hdr(out, WELL_KNOWN, attr_type::LOCAL_PREF, 4);
        out.extend_from_slice(&lp.to_be_bytes());
    }
    if a.atomic_aggregate {
        put_attr_hdr(out, WELL_KNOWN, attr_type::ATOMIC_AGGREGATE, 0);
    }
    flush_below(u16::from(attr_type::AGGREGATOR), out);
    if let Some(ag) = a.aggregator {
        put_attr_hdr(out, OPT_TRANS, attr_type::AGGREGATOR, 2 + asn_len + 2);
        if asn_len == 4 {
            out.extend_from_slice(&ag.asn.to_be_bytes());
        } else {
            let asn = u16::try_from(ag.asn).unwrap_or(AS_TRANS);
            out.extend_from_slice(&asn.to_be_bytes());
        }
        out.extend_from_slice(&ag.address.octets());
    }
    if !a.communities.is_empty() && fits(a.communities.len() * 4) {
        put_attr_hdr(
            out,
            OPT_TRANS,
            attr_type::COMMUNITIES,
            a.communities.len() * 4,
        );
        for c in &a.communities {
            out.extend_from_slice(&c.0.to_be_bytes());
        }
    }
    if let Some(id) = a.originator_id {
        put_attr_hdr(out, OPT_NON_TRANS, attr_type::ORIGINATOR_ID, 4);
        out.extend_from_slice(&id.octets());
    }
    if !a.cluster_list.is_empty() && fits(a.cluster_list.len() * 4) {
        put_attr_hdr(
            out,
            OPT_NON_TRANS,
            attr_type::CLUSTER_LIST,
            a.cluster_list.len() * 4,
        );
        for c in &a.cluster_list {
            out.extend_from_slice(&c.octets());
        }
    }
    flush_below(u16::from(attr_type::AS4_PATH), out);
    if !codec.four_octet_as {
        // RFC 6793 §4.2.2: AS4_PATH / AS4_AGGREGATOR towards OLD speakers
        // when some ASN does not fit in 2 octets.
        if a.as_path.asns().any(|x| x > 0xffff) {
            let plen4 = as_path_wire_len(&a.as_path, 4);
            if fits(plen4) {
                put_attr_hdr(out, OPT_TRANS, attr_type::AS4_PATH, plen4);
                write_as_path(&a.as_path, 4, out);
            }
        }
        if let Some(ag) = a.aggregator.filter(|ag| ag.asn > 0xffff) {
            put_attr_hdr(out, OPT_TRANS, attr_type::AS4_AGGREGATOR, 8);
            out.extend_from_slice(&ag.asn.to_be_bytes());
            out.extend_from_slice(&ag.address.octets());
        }
    }
    flush_below(u16::from(attr_type::LARGE_COMMUNITIES), out);
    let lc_len = a.large_communities.len() * 12;
    if !a.large_communities.is_empty() && fits(lc_len) {
        put_attr_hdr(out, OPT_TRANS, attr_type::LARGE_COMMUNITIES, lc_len);
        for c in &a.large_communities {
            out.extend_from_slice(&c.global.to_be_bytes());
            out.extend_from_slice(&c.local1.to_be_bytes());
            out.extend_from_slice(&c.local2.to_be_bytes());
        }
    }
    flush_below(256, out);
}

/// The MP_REACH next hop field: 4, 16 or 32 octets.
pub(super) fn mp_next_hop(nh: &NextHop, family: Family) -> ([u8; 32], usize) {
    let mut b = [0u8; 32];
    match nh.address {
        IpAddr::V4(a) if family == Family::Ipv4Unicast => {
            b[..4].copy_from_slice(&a.octets());
            return (b, 4);
        }
        // An IPv4 next hop for IPv6 NLRI: IPv4-mapped (not expected).
        IpAddr::V4(a) => b[..16].copy_from_slice(&a.to_ipv6_mapped().octets()),
        IpAddr::V6(a) => b[..16].copy_from_slice(&a.octets()),
    }
    match nh.link_local {
        Some(ll) => {
            b[16..].copy_from_slice(&ll.octets());
            (b, 32)
        }
        None => (b, 16),
    }
}

pub(super) fn write_mp_reach(
    out: &mut Vec<u8>,
    family: Family,
    nh: &([u8; 32], usize),
    prefixes: &[Prefix],
    nlri_len: usize,
) {
    let vlen = 5 + nh.1 + nlri_len;
    put_attr_hdr(out, OPT_NON_TRANS, attr_type::MP_REACH_NLRI, vlen);
    out.extend_from_slice(&family.afi().to_be_bytes());
    out.push(family.safi());
    out.push(nh.1 as u8);
    out.extend_from_slice(&nh.0[..nh.1]);
    out.push(0);
    for p in prefixes {
        write_pfx(p, family, out);
    }
}

pub(super) fn write_mp_unreach(
    out: &mut Vec<u8>,
    family: Family,
    prefixes: &[Prefix],
    nlri_len: usize,
) {
    put_attr_hdr(out, OPT_NON_TRANS, attr_type::MP_UNREACH_NLRI, 3 + nlri_len);
    out.extend_from_slice(&family.afi().to_be_bytes());
    out.push(family.safi());
    for p in prefixes {
        write_pfx(p, family, out);
    }
}
