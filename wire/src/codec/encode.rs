//! Encoding whole messages: OPEN with its capabilities (grouped into
//! parameters, RFC 9072 when they need more than 255 octets), NOTIFICATION,
//! KEEPALIVE, ROUTE-REFRESH, and UPDATE, split into several messages when
//! one would exceed 4096 octets (RFC 4271 §4).

use super::attributes::{
    attr_hdr_len, encode_path_attributes, mp_next_hop, write_mp_reach, write_mp_unreach,
};
use super::nlri::{max_pfx_size, pfx_size, v4_size, write_v4};
use super::*;

fn begin_msg(out: &mut Vec<u8>, ty: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0xff; 16]);
    out.extend_from_slice(&[0, 0, ty]);
    start
}

fn end_msg(out: &mut [u8], start: usize) {
    let len = (out.len() - start) as u16;
    out[start + 16..start + 18].copy_from_slice(&len.to_be_bytes());
}

/// Append the encoding of `msg` to `out`.
///
/// An UPDATE that does not fit in 4096 octets is split into several UPDATE
/// messages that together carry every withdrawal and every announcement:
/// withdrawal-only messages first, then announcements, each carrying the
/// full attribute set. Announcements whose attributes alone cannot fit in
/// one message are not encoded (RFC 4271 §9.2 leaves them unadvertised);
/// callers can check with [`update_attributes_fit`].
pub fn encode_message(msg: &Message, codec: &SessionCodec, out: &mut Vec<u8>) {
    match msg {
        Message::Keepalive => {
            let s = begin_msg(out, msg_type::KEEPALIVE);
            end_msg(out, s);
        }
        Message::Notification(nt) => {
            let s = begin_msg(out, msg_type::NOTIFICATION);
            out.push(nt.code);
            out.push(nt.subcode);
            let room = MAX_MESSAGE_LEN - HEADER_LEN - 2;
            out.extend_from_slice(&nt.data[..nt.data.len().min(room)]);
            end_msg(out, s);
        }
        Message::RouteRefresh(rr) => {
            let s = begin_msg(out, msg_type::ROUTE_REFRESH);
            out.extend_from_slice(&rr.family.afi().to_be_bytes());
            out.push(0);
            out.push(rr.family.safi());
            end_msg(out, s);
        }
        Message::Open(o) => encode_open(o, out),
        Message::Update(u) => encode_update(u, codec, out),
    }
}

fn encode_capability(c: &Capability, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0, 0]);
    let code_byte = match c {
        Capability::Multiprotocol(f) => {
            out.extend_from_slice(&f.afi().to_be_bytes());
            out.push(0);
            out.push(f.safi());
            cap_code::MULTIPROTOCOL
        }
        Capability::RouteRefresh => cap_code::ROUTE_REFRESH,
        Capability::ExtendedNextHop(entries) => {
            for e in entries {
                out.extend_from_slice(&e.family.afi().to_be_bytes());
                out.extend_from_slice(&u16::from(e.family.safi()).to_be_bytes());
                out.extend_from_slice(&e.next_hop_afi.to_be_bytes());
            }
            cap_code::EXTENDED_NEXT_HOP
        }
        Capability::GracefulRestart {
            restart_state,
            restart_time,
            families,
        } => {
            let ft = (if *restart_state { 0x8000 } else { 0 }) | (restart_time & 0x0fff);
            out.extend_from_slice(&ft.to_be_bytes());
            for f in families {
                out.extend_from_slice(&f.family.afi().to_be_bytes());
                out.push(f.family.safi());
                out.push(if f.forwarding_preserved { 0x80 } else { 0 });
            }
            cap_code::GRACEFUL_RESTART
        }
        Capability::FourOctetAs(a) => {
            out.extend_from_slice(&a.to_be_bytes());
            cap_code::FOUR_OCTET_AS
        }
        Capability::Unknown { code, value } => {
            out.extend_from_slice(value);
            *code
        }
    };
    let len = out.len() - start - 2;
    match u8::try_from(len) {
        Ok(l) => {
            out[start] = code_byte;
            out[start + 1] = l;
        }
        // Cannot be encoded (value over 255 octets): leave it out.
        Err(_) => out.truncate(start),
    }
}

fn encode_open(o: &Open, out: &mut Vec<u8>) {
    let s = begin_msg(out, msg_type::OPEN);
    out.push(o.version);
    let my_as = u16::try_from(o.asn).unwrap_or(AS_TRANS);
    out.extend_from_slice(&my_as.to_be_bytes());
    out.extend_from_slice(&o.hold_time.to_be_bytes());
    out.extend_from_slice(&o.router_id.octets());

    let mut caps = Vec::new();
    let mut bounds = Vec::with_capacity(o.capabilities.len());
    for c in &o.capabilities {
        encode_capability(c, &mut caps);
        bounds.push(caps.len());
    }
    // Group whole capabilities into parameters of at most 255 octets.
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut gstart = 0;
    let mut prev = 0;
    for &end in &bounds {
        if end - gstart > 255 {
            groups.push((gstart, prev));
            gstart = prev;
        }
        prev = end;
    }
    if prev > gstart {
        groups.push((gstart, prev));
    }
    let total: usize = groups.iter().map(|(a, b)| 2 + b - a).sum();
    if total <= 255 {
        out.push(total as u8);
        for (a, b) in groups {
            out.push(PARAM_CAPABILITIES);
            out.push((b - a) as u8);
            out.extend_from_slice(&caps[a..b]);
        }
    } else {
        // RFC 9072 extended optional parameters: one parameter holds all.
        let room = MAX_MESSAGE_LEN - (out.len() - s) - 3 - 3;
        let caps = &caps[..bounds
            .iter()
            .copied()
            .take_while(|&e| e <= room)
            .last()
            .unwrap_or(0)];
        out.extend_from_slice(&[255, PARAM_EXTENDED]);
        out.extend_from_slice(&((caps.len() + 3) as u16).to_be_bytes());
        out.push(PARAM_CAPABILITIES);
        out.extend_from_slice(&(caps.len() as u16).to_be_bytes());
        out.extend_from_slice(caps);
    }
    end_msg(out, s);
}

/// How many items from the front of `items` fit in `budget` octets, and
/// their total size.
#[inline]
fn take_fit<T>(items: &[T], budget: usize, size: impl Fn(&T) -> usize) -> (usize, usize) {
    let mut used = 0;
    for (i, it) in items.iter().enumerate() {
        let s = size(it);
        if used + s > budget {
            return (i, used);
        }
        used += s;
    }
    (items.len(), used)
}

/// True if every announcement of `u` can be encoded, i.e. its path
/// attributes (with the MP_REACH next hop) leave room for at least one
/// prefix in an UPDATE. When false, [`encode_message`] leaves out the
/// announcements that do not fit (withdrawals are always sent).
pub fn update_attributes_fit(u: &Update, codec: &SessionCodec) -> bool {
    let mut attrs = Vec::new();
    encode_path_attributes(&u.attributes, codec, true, &mut attrs);
    let room = MAX_MESSAGE_LEN - HEADER_LEN - 4;
    let mp_ok = u.mp_reach.as_ref().is_none_or(|r| {
        let fixed = 4 + 5 + mp_next_hop(&r.next_hop, r.family).1 + attrs.len();
        fixed + max_pfx_size(r.family) <= room
    });
    mp_ok && (u.nlri.is_empty() || attrs.len() + 5 <= room)
}

/// One UPDATE as `encode_message` writes it (split in several when it
/// does not fit one message), without wrapping it in a [`Message`].
pub fn encode_update(u: &Update, codec: &SessionCodec, out: &mut Vec<u8>) {
    let mut attrs = Vec::with_capacity(128);
    let reachable = !u.nlri.is_empty() || u.mp_reach.is_some();
    encode_path_attributes(&u.attributes, codec, reachable, &mut attrs);

    let wd_bytes: usize = u.withdrawn.iter().map(v4_size).sum();
    let nlri_bytes: usize = u.nlri.iter().map(v4_size).sum();
    let reach = u.mp_reach.as_ref().map(|r| {
        let nh = mp_next_hop(&r.next_hop, r.family);
        let bytes: usize = r.nlri.iter().map(|p| pfx_size(p, r.family)).sum();
        (r, nh, bytes)
    });
    let reach_attr = reach
        .as_ref()
        .map_or(0, |(_, nh, b)| 5 + nh.1 + b + attr_hdr_len(5 + nh.1 + b));
    let unreach = u.mp_unreach.as_ref().map(|r| {
        let bytes: usize = r.withdrawn.iter().map(|p| pfx_size(p, r.family)).sum();
        (r, bytes)
    });
    let unreach_attr = unreach
        .as_ref()
        .map_or(0, |(_, b)| 3 + b + attr_hdr_len(3 + b));
    let pa_len = reach_attr + unreach_attr + attrs.len();
    let total = HEADER_LEN + 4 + wd_bytes + pa_len + nlri_bytes;

    if total <= MAX_MESSAGE_LEN {
        let s = begin_msg(out, msg_type::UPDATE);
        out.extend_from_slice(&(wd_bytes as u16).to_be_bytes());
        for p in &u.withdrawn {
            write_v4(p, out);
        }
        out.extend_from_slice(&(pa_len as u16).to_be_bytes());
        if let Some((r, nh, b)) = &reach {
            write_mp_reach(out, r.family, nh, &r.nlri, *b);
        }
        if let Some((r, b)) = &unreach {
            write_mp_unreach(out, r.family, &r.withdrawn, *b);
        }
        out.extend_from_slice(&attrs);
        for p in &u.nlri {
            write_v4(p, out);
        }
        end_msg(out, s);
        return;
    }

    // Too big for one message: split. An empty MP_UNREACH / MP_REACH carries
    // nothing here (and sent alone an empty MP_UNREACH would be End-of-RIB),
    // so empty parts are left out.
    const ROOM: usize = MAX_MESSAGE_LEN - HEADER_LEN - 4;

    // 1. Classic withdrawals.
    let mut rest = &u.withdrawn[..];
    while !rest.is_empty() {
        let (k, bytes) = take_fit(rest, ROOM, v4_size);
        let s = begin_msg(out, msg_type::UPDATE);
        out.extend_from_slice(&(bytes as u16).to_be_bytes());
        for p in &rest[..k] {
            write_v4(p, out);
        }
        out.extend_from_slice(&[0, 0]);
        end_msg(out, s);
        rest = &rest[k..];
    }

    // 2. MP_UNREACH withdrawals.
    if let Some((r, _)) = &unreach {
        let mut rest = &r.withdrawn[..];
        while !rest.is_empty() {
            let (k, bytes) = take_fit(rest, ROOM - 4 - 3, |p| pfx_size(p, r.family));
            let s = begin_msg(out, msg_type::UPDATE);
            out.extend_from_slice(&[0, 0]);
            let vlen = 3 + bytes;
            out.extend_from_slice(&((attr_hdr_len(vlen) + vlen) as u16).to_be_bytes());
            write_mp_unreach(out, r.family, &rest[..k], bytes);
            end_msg(out, s);
            rest = &rest[k..];
        }
    }

    // 3. Announcements, each with the full attribute set.
    if let Some((r, nh, _)) = &reach {
        let fixed = 4 + 5 + nh.1 + attrs.len();
        if let Some(budget) = ROOM
            .checked_sub(fixed)
            .filter(|b| *b >= max_pfx_size(r.family))
        {
            let mut rest = &r.nlri[..];
            while !rest.is_empty() {
                let (k, bytes) = take_fit(rest, budget, |p| pfx_size(p, r.family));
                if bytes > 0 {
                    let s = begin_msg(out, msg_type::UPDATE);
                    out.extend_from_slice(&[0, 0]);
                    let vlen = 5 + nh.1 + bytes;
                    let pa = attr_hdr_len(vlen) + vlen + attrs.len();
                    out.extend_from_slice(&(pa as u16).to_be_bytes());
                    write_mp_reach(out, r.family, nh, &rest[..k], bytes);
                    out.extend_from_slice(&attrs);
                    end_msg(out, s);
                }
                rest = &rest[k..];
            }
        }
    }
    if let Some(budget) = ROOM.checked_sub(attrs.len()).filter(|b| *b >= 5) {
        let mut rest = &u.nlri[..];
        while !rest.is_empty() {
            let (k, _) = take_fit(rest, budget, v4_size);
            let s = begin_msg(out, msg_type::UPDATE);
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
            out.extend_from_slice(&attrs);
            for p in &rest[..k] {
                write_v4(p, out);
            }
            end_msg(out, s);
            rest = &rest[k..];
        }
    }
}

#[cfg(test)]
mod tests {
    //! Splitting UPDATEs whose attributes come close to the 4096-octet
    //! limit, for each way an announcement is carried: classic NLRI,
    //! MP_REACH with an IPv6 global + link-local next hop, and IPv4 NLRI
    //! with an IPv6 next hop (RFC 8950).
    use std::net::IpAddr;

    use ipnet::{IpNet, Ipv4Net, Ipv6Net};

    use super::super::decode_message;
    use super::*;

    fn attrs(communities: usize) -> PathAttributes {
        PathAttributes {
            origin: Some(Origin::Igp),
            as_path: AsPath::from_sequence(vec![65001, 4_200_000_000]),
            communities: (0..communities as u32).map(Community).collect(),
            ..Default::default()
        }
    }

    fn v4_prefixes(n: u32) -> Vec<Ipv4Net> {
        (0..n)
            .map(|i| Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 | (i << 8)), 24).unwrap())
            .collect()
    }

    fn v6_prefixes(n: u128) -> Vec<Prefix> {
        (0..n)
            .map(|i| {
                IpNet::V6(Ipv6Net::new(Ipv6Addr::from((0x2001_0db8u128 << 96) | i), 128).unwrap())
            })
            .collect()
    }

    /// Encodes `u`, checks every message is within 4096 octets and carries
    /// the whole attribute set, and returns the announced prefixes.
    fn encode_and_collect(u: &Update, codec: &SessionCodec) -> Vec<Prefix> {
        let mut buf = Vec::new();
        encode_message(&Message::Update(u.clone()), codec, &mut buf);
        let mut rest = &buf[..];
        let mut got = Vec::new();
        while !rest.is_empty() {
            let len = usize::from(be16(&rest[16..18]));
            assert!(len <= MAX_MESSAGE_LEN, "message of {len} octets");
            let (m, used) = decode_message(rest, codec).unwrap().unwrap();
            assert_eq!(used, len);
            let Message::Update(p) = m else {
                panic!("{m:?}")
            };
            assert_eq!(p.treat_as_withdraw, None);
            let mut want = u.attributes.clone();
            if p.mp_reach.is_some() {
                want.next_hop = None;
            }
            assert_eq!(p.attributes, want);
            got.extend(p.nlri.iter().map(|n| IpNet::V4(*n)));
            if let Some(r) = &p.mp_reach {
                assert_eq!(r.next_hop, u.mp_reach.as_ref().unwrap().next_hop);
                got.extend(r.nlri.iter().copied());
            }
            rest = &rest[used..];
        }
        got
    }

    /// Sweeps the community count across the point where one prefix no
    /// longer fits: below it every prefix is carried (split as needed),
    /// from it on nothing is announced and `update_attributes_fit` says
    /// so. Returns the largest count that fits.
    fn sweep(make: impl Fn(PathAttributes) -> Update, want: &[Prefix]) -> usize {
        let mut largest = None;
        for four_octet_as in [false, true] {
            let codec = SessionCodec { four_octet_as };
            for n in 990..1030 {
                let u = make(attrs(n));
                let got = encode_and_collect(&u, &codec);
                if update_attributes_fit(&u, &codec) {
                    assert_eq!(got, want, "{n} communities, {codec:?}");
                    largest = Some(n);
                } else {
                    assert!(got.is_empty(), "{n} communities, {codec:?}");
                }
            }
        }
        let largest = largest.expect("some community count fits");
        assert!(largest < 1029, "the sweep reaches the limit");
        largest
    }

    #[test]
    fn classic_nlri_split_near_the_limit() {
        let nlri = v4_prefixes(300);
        let want: Vec<Prefix> = nlri.iter().map(|n| IpNet::V4(*n)).collect();
        let largest = sweep(
            |a| Update {
                attributes: PathAttributes {
                    next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
                    ..a
                },
                nlri: nlri.clone(),
                ..Default::default()
            },
            &want,
        );
        // ORIGIN 4 + AS_PATH 3+2+8 + NEXT_HOP 7 + COMMUNITIES 4+4n, plus
        // one /24 (4 octets) must fit in 4096 - 23.
        assert_eq!(largest, (4096 - 23 - 4 - 4 - 13 - 7 - 4) / 4);
    }

    #[test]
    fn mp_reach_with_link_local_split_near_the_limit() {
        let nlri = v6_prefixes(200);
        let next_hop = NextHop {
            address: "2001:db8::1".parse().unwrap(),
            link_local: Some("fe80::1".parse().unwrap()),
            interface: None,
        };
        sweep(
            |a| Update {
                attributes: a,
                mp_reach: Some(MpReach {
                    family: Family::Ipv6Unicast,
                    next_hop,
                    nlri: nlri.clone(),
                }),
                ..Default::default()
            },
            &nlri,
        );
    }

    #[test]
    fn ipv4_nlri_with_ipv6_next_hop_split_near_the_limit() {
        let nlri: Vec<Prefix> = v4_prefixes(300).into_iter().map(IpNet::V4).collect();
        sweep(
            |a| Update {
                attributes: a,
                mp_reach: Some(MpReach {
                    family: Family::Ipv4Unicast,
                    next_hop: NextHop::new(IpAddr::V6("2001:db8::1".parse().unwrap())),
                    nlri: nlri.clone(),
                }),
                ..Default::default()
            },
            &nlri,
        );
    }
}
