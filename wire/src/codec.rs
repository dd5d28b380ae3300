//! Decode and encode BGP messages: RFC 4271 (BGP-4), RFC 4760 (multiprotocol),
//! RFC 5492 (capabilities), RFC 6793 (4-octet ASNs), RFC 7606 (revised UPDATE
//! error handling), RFC 8950 (IPv4 NLRI with IPv6 next hop), RFC 2918/7313
//! (ROUTE-REFRESH), RFC 4724 (graceful restart), RFC 9072 (extended optional
//! parameters length).
//!
//! The decoder never panics and never allocates more than a small multiple of
//! the message (at most 4096 octets) whatever the length fields say.
//!
//! Choices worth knowing (see also the comments at each site):
//! - ROUTE-REFRESH for a family we do not speak, or with a non-zero RFC 7313
//!   subtype (BoRR/EoRR, we never advertise enhanced route refresh), is
//!   ignored as RFC 2918 §4 / RFC 7313 §5 require: the decoder skips it and
//!   decodes the message after it (the returned `used` covers both). If no
//!   whole message follows, `Ok(None)` is returned and the ignored message is
//!   skipped again on the next call.
//! - A path attribute whose length overruns the path attribute area (or a
//!   trailing fragment shorter than an attribute header) is handled with
//!   treat-as-withdraw as RFC 7606 §4 requires, because the Total Path
//!   Attribute Length still locates the NLRI. If the overrunning attribute
//!   is MP_REACH_NLRI/MP_UNREACH_NLRI the NLRI cannot be located and the
//!   session is reset with 3/1 (RFC 7606 §3 j).
//! - Every error in MP_REACH_NLRI/MP_UNREACH_NLRI (flags, lengths, next hop
//!   length, NLRI encoding) resets the session with 3/9 Optional Attribute
//!   Error (RFC 4760 §7, RFC 7606 §7.11); classic NLRI / withdrawn routes
//!   encoding errors reset with 3/10 Invalid Network Field (RFC 7606 §5.3).
//! - AS_PATH segments AS_CONFED_SEQUENCE/AS_CONFED_SET (we do not implement
//!   confederations, RFC 5065) make the AS_PATH unusable: treat-as-withdraw.
//!   Adjacent AS_SEQUENCE segments are merged on decode (the encoder splits
//!   at 255 ASNs again).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::notification as n;
use crate::types::*;

/// RFC 4271 §4: no message is longer than 4096 octets.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// RFC 4271 §4.1: marker (16) + length (2) + type (1).
pub const HEADER_LEN: usize = 19;

/// Message type codes (RFC 4271 §4.1, RFC 2918 §3).
pub mod msg_type {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

/// Path attribute type codes.
pub mod attr_type {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITIES: u8 = 32;
}

/// Capability codes (RFC 5492 registry).
pub mod cap_code {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_NEXT_HOP: u8 = 5;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
}

/// OPEN optional parameter type carrying capabilities (RFC 5492 §4).
const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072 marker for the extended optional parameters encoding.
const PARAM_EXTENDED: u8 = 255;

const SEG_SET: u8 = 1;
const SEG_SEQUENCE: u8 = 2;
const SEG_CONFED_SEQUENCE: u8 = 3;
const SEG_CONFED_SET: u8 = 4;

const F_OPT: u8 = RawAttribute::FLAG_OPTIONAL;
const F_TRANS: u8 = RawAttribute::FLAG_TRANSITIVE;
const F_PARTIAL: u8 = RawAttribute::FLAG_PARTIAL;
const F_EXT: u8 = RawAttribute::FLAG_EXTENDED_LENGTH;
/// Well-known attributes: optional bit clear, transitive bit set.
const WELL_KNOWN: u8 = F_TRANS;
const OPT_TRANS: u8 = F_OPT | F_TRANS;
const OPT_NON_TRANS: u8 = F_OPT;

/// What the two ends negotiated that changes the encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionCodec {
    /// Both sides sent the 4-octet ASN capability (RFC 6793): AS_PATH and
    /// AGGREGATOR carry 4-octet ASNs; otherwise 2-octet with AS4_PATH.
    pub four_octet_as: bool,
}

/// A message that cannot be handled by treat-as-withdraw or attribute
/// discard: the session must send this NOTIFICATION and close (RFC 7606 §3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", crate::notification::describe(.0.code, .0.subcode))]
pub struct DecodeError(pub Notification);

impl DecodeError {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> DecodeError {
        DecodeError(Notification {
            code,
            subcode,
            data,
        })
    }
    pub fn code(&self) -> u8 {
        self.0.code
    }
    pub fn subcode(&self) -> u8 {
        self.0.subcode
    }
    /// The NOTIFICATION to send to the peer before closing.
    pub fn notification(&self) -> &Notification {
        &self.0
    }
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn v4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

fn v6(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Decode one message from the front of `buf`. `Ok(None)` means `buf` does
/// not yet hold a whole message; `Ok(Some((msg, used)))` consumed `used` bytes.
pub fn decode_message(
    buf: &[u8],
    codec: &SessionCodec,
) -> Result<Option<(Message, usize)>, DecodeError> {
    let mut off = 0;
    loop {
        let b = &buf[off..];
        if b.len() < HEADER_LEN {
            return Ok(None);
        }
        if b[..16].iter().any(|&x| x != 0xff) {
            return Err(DecodeError::new(
                n::MESSAGE_HEADER_ERROR,
                n::header::CONNECTION_NOT_SYNCHRONIZED,
                Vec::new(),
            ));
        }
        let len = usize::from(be16(&b[16..18]));
        let ty = b[18];
        let bad_len = || {
            DecodeError::new(
                n::MESSAGE_HEADER_ERROR,
                n::header::BAD_MESSAGE_LENGTH,
                (len as u16).to_be_bytes().to_vec(),
            )
        };
        if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&len) {
            return Err(bad_len());
        }
        let len_ok = match ty {
            msg_type::OPEN => len >= HEADER_LEN + 10,
            msg_type::UPDATE => len >= HEADER_LEN + 4,
            msg_type::NOTIFICATION => len >= HEADER_LEN + 2,
            msg_type::KEEPALIVE => len == HEADER_LEN,
            msg_type::ROUTE_REFRESH => len == HEADER_LEN + 4,
            _ => {
                return Err(DecodeError::new(
                    n::MESSAGE_HEADER_ERROR,
                    n::header::BAD_MESSAGE_TYPE,
                    vec![ty],
                ))
            }
        };
        if !len_ok {
            return Err(bad_len());
        }
        if b.len() < len {
            return Ok(None);
        }
        let body = &b[HEADER_LEN..len];
        let msg = match ty {
            msg_type::OPEN => Message::Open(decode_open(body)?),
            msg_type::UPDATE => Message::Update(decode_update(body, codec)?),
            msg_type::NOTIFICATION => Message::Notification(Notification {
                code: body[0],
                subcode: body[1],
                data: body[2..].to_vec(),
            }),
            msg_type::KEEPALIVE => Message::Keepalive,
            _ => {
                // ROUTE-REFRESH: AFI(2) subtype/reserved(1) SAFI(1).
                let afi = be16(&body[0..2]);
                let subtype = body[2];
                match Family::from_afi_safi(afi, body[3]) {
                    Some(family) if subtype == 0 => Message::RouteRefresh(RouteRefresh { family }),
                    // Not a family we advertised, or a BoRR/EoRR we never
                    // negotiated: ignore it (RFC 2918 §4, RFC 7313 §5).
                    _ => {
                        off += len;
                        continue;
                    }
                }
            }
        };
        return Ok(Some((msg, off + len)));
    }
}

fn open_err(subcode: u8) -> DecodeError {
    DecodeError::new(n::OPEN_MESSAGE_ERROR, subcode, Vec::new())
}

fn decode_open(body: &[u8]) -> Result<Open, DecodeError> {
    let version = body[0];
    if version != 4 {
        // Data: the largest version we support (RFC 4271 §6.2).
        return Err(DecodeError::new(
            n::OPEN_MESSAGE_ERROR,
            n::open::UNSUPPORTED_VERSION_NUMBER,
            vec![0, 4],
        ));
    }
    let my_as = be16(&body[1..3]);
    let hold_time = be16(&body[3..5]);
    if hold_time == 1 || hold_time == 2 {
        return Err(open_err(n::open::UNACCEPTABLE_HOLD_TIME));
    }
    let router_id = v4(&body[5..9]);
    let mut opt_len = usize::from(body[9]);
    let mut params = &body[10..];
    // RFC 9072: Non-Ext OP Len 255 and Non-Ext OP Type 255 mean a 2-octet
    // total length follows and every parameter has a 2-octet length.
    let extended = opt_len == 255 && params.first() == Some(&PARAM_EXTENDED);
    if extended {
        if params.len() < 3 {
            return Err(open_err(n::UNSPECIFIC));
        }
        opt_len = usize::from(be16(&params[1..3]));
        params = &params[3..];
    }
    if params.len() != opt_len {
        return Err(open_err(n::UNSPECIFIC));
    }
    let hdr = if extended { 3 } else { 2 };
    let mut capabilities = Vec::new();
    while !params.is_empty() {
        if params.len() < hdr {
            return Err(open_err(n::UNSPECIFIC));
        }
        let ptype = params[0];
        let plen = if extended {
            usize::from(be16(&params[1..3]))
        } else {
            usize::from(params[1])
        };
        let rest = &params[hdr..];
        if rest.len() < plen {
            return Err(open_err(n::UNSPECIFIC));
        }
        let (value, rest) = rest.split_at(plen);
        params = rest;
        if ptype != PARAM_CAPABILITIES {
            return Err(open_err(n::open::UNSUPPORTED_OPTIONAL_PARAMETER));
        }
        decode_capabilities(value, &mut capabilities)?;
    }
    let four = capabilities.iter().find_map(|c| match c {
        Capability::FourOctetAs(a) => Some(*a),
        _ => None,
    });
    let asn = four.unwrap_or(u32::from(my_as));
    if asn == 0 {
        // RFC 7607: AS 0 is never a valid peer AS.
        return Err(open_err(n::open::BAD_PEER_AS));
    }
    if router_id.is_unspecified() {
        // RFC 6286 §2.2: the identifier must be non-zero.
        return Err(open_err(n::open::BAD_BGP_IDENTIFIER));
    }
    Ok(Open {
        version,
        asn,
        hold_time,
        router_id,
        capabilities,
    })
}

fn decode_capabilities(mut b: &[u8], out: &mut Vec<Capability>) -> Result<(), DecodeError> {
    let bad = || open_err(n::UNSPECIFIC);
    while !b.is_empty() {
        if b.len() < 2 {
            return Err(bad());
        }
        let code = b[0];
        let len = usize::from(b[1]);
        if b.len() < 2 + len {
            return Err(bad());
        }
        let v = &b[2..2 + len];
        b = &b[2 + len..];
        let cap = match code {
            cap_code::MULTIPROTOCOL => {
                if len != 4 {
                    return Err(bad());
                }
                match Family::from_afi_safi(be16(v), v[3]) {
                    Some(f) => Capability::Multiprotocol(f),
                    None => Capability::Unknown {
                        code,
                        value: v.to_vec(),
                    },
                }
            }
            cap_code::ROUTE_REFRESH => Capability::RouteRefresh,
            cap_code::EXTENDED_NEXT_HOP => {
                if len % 6 != 0 {
                    return Err(bad());
                }
                let entries = v
                    .chunks_exact(6)
                    .filter_map(|e| {
                        let safi = u8::try_from(be16(&e[2..4])).ok()?;
                        Some(ExtendedNextHopEntry {
                            family: Family::from_afi_safi(be16(e), safi)?,
                            next_hop_afi: be16(&e[4..6]),
                        })
                    })
                    .collect();
                Capability::ExtendedNextHop(entries)
            }
            cap_code::GRACEFUL_RESTART => {
                if len < 2 || (len - 2) % 4 != 0 {
                    return Err(bad());
                }
                let ft = be16(v);
                // Families we do not speak are dropped; so is the RFC 8538
                // N bit, which the model does not carry.
                let families = v[2..]
                    .chunks_exact(4)
                    .filter_map(|e| {
                        Some(GracefulRestartFamily {
                            family: Family::from_afi_safi(be16(e), e[2])?,
                            forwarding_preserved: e[3] & 0x80 != 0,
                        })
                    })
                    .collect();
                Capability::GracefulRestart {
                    restart_state: ft & 0x8000 != 0,
                    restart_time: ft & 0x0fff,
                    families,
                }
            }
            cap_code::FOUR_OCTET_AS => {
                if len != 4 {
                    return Err(bad());
                }
                Capability::FourOctetAs(be32(v))
            }
            _ => Capability::Unknown {
                code,
                value: v.to_vec(),
            },
        };
        out.push(cap);
    }
    Ok(())
}

/// Parse a sequence of (length, prefix) NLRI encodings (RFC 4271 §4.3,
/// RFC 4760 §5). `push` gets the 16-byte left-aligned address and length.
fn parse_prefixes(
    mut b: &[u8],
    max_len: u8,
    mut push: impl FnMut(&[u8; 16], u8),
) -> Result<(), ()> {
    while let Some((&len, rest)) = b.split_first() {
        if len > max_len {
            return Err(());
        }
        let nbytes = usize::from(len).div_ceil(8);
        if rest.len() < nbytes {
            return Err(());
        }
        let mut a = [0u8; 16];
        a[..nbytes].copy_from_slice(&rest[..nbytes]);
        push(&a, len);
        b = &rest[nbytes..];
    }
    Ok(())
}

fn parse_v4_prefixes(b: &[u8], out: &mut Vec<Ipv4Net>) -> Result<(), ()> {
    parse_prefixes(b, 32, |a, len| {
        if let Ok(p) = Ipv4Net::new(v4(a), len) {
            out.push(p.trunc());
        }
    })
}

fn parse_family_prefixes(b: &[u8], family: Family, out: &mut Vec<Prefix>) -> Result<(), ()> {
    match family {
        Family::Ipv4Unicast => parse_prefixes(b, 32, |a, len| {
            if let Ok(p) = Ipv4Net::new(v4(a), len) {
                out.push(IpNet::V4(p.trunc()));
            }
        }),
        Family::Ipv6Unicast => parse_prefixes(b, 128, |a, len| {
            if let Ok(p) = Ipv6Net::new(Ipv6Addr::from(*a), len) {
                out.push(IpNet::V6(p.trunc()));
            }
        }),
    }
}

/// AS_PATH / AS4_PATH value (RFC 4271 §4.3, RFC 7606 §7.2). Adjacent
/// AS_SEQUENCEs come out merged (equivalent on the wire).
fn parse_as_path(mut b: &[u8], asn_len: usize) -> Result<AsPath, &'static str> {
    let mut path = AsPath::default();
    let mut asns: Vec<u32> = Vec::new();
    while !b.is_empty() {
        if b.len() < 2 {
            return Err("truncated segment header");
        }
        let ty = b[0];
        let count = usize::from(b[1]);
        if count == 0 {
            return Err("zero-length segment");
        }
        let bytes = count * asn_len;
        if b.len() - 2 < bytes {
            return Err("segment overruns attribute");
        }
        asns.clear();
        asns.extend(b[2..2 + bytes].chunks_exact(asn_len).map(|c| {
            if asn_len == 4 {
                be32(c)
            } else {
                u32::from(be16(c))
            }
        }));
        path.push(match ty {
            SEG_SET => Segment::Set(&asns),
            SEG_SEQUENCE => Segment::Sequence(&asns),
            SEG_CONFED_SEQUENCE | SEG_CONFED_SET => {
                return Err("confederation segment (confederations not supported)")
            }
            _ => return Err("unknown segment type"),
        });
        b = &b[2 + bytes..];
    }
    Ok(path)
}

/// RFC 6793 §4.2.3: rebuild the path from AS_PATH (2-octet, with AS_TRANS)
/// and AS4_PATH.
fn merge_as4_path(as_path: &AsPath, as4: AsPath) -> AsPath {
    let n2 = as_path.path_len();
    let n4 = as4.path_len();
    if n2 < n4 {
        return as_path.clone();
    }
    let mut need = n2 - n4;
    let mut path = AsPath::default();
    for seg in as_path.segments() {
        if need == 0 {
            break;
        }
        match seg {
            Segment::Sequence(v) => {
                let k = need.min(v.len());
                path.push(Segment::Sequence(&v[..k]));
                need -= k;
            }
            Segment::Set(_) => {
                path.push(seg);
                need -= 1;
            }
        }
    }
    for seg in as4.segments() {
        path.push(seg);
    }
    path
}

#[derive(Default)]
struct AttrState {
    seen: [u64; 4],
    taw: Option<String>,
    have_origin: bool,
    have_as_path: bool,
    have_next_hop: bool,
    as4_path: Option<AsPath>,
    as4_aggregator: Option<Aggregator>,
}

impl AttrState {
    /// Marks `ty` seen; returns true if it already was.
    fn dup(&mut self, ty: u8) -> bool {
        let (w, bit) = (usize::from(ty / 64), 1u64 << (ty % 64));
        let was = self.seen[w] & bit != 0;
        self.seen[w] |= bit;
        was
    }

    fn withdraw(&mut self, why: impl FnOnce() -> String) {
        if self.taw.is_none() {
            self.taw = Some(why());
        }
    }
}

fn attr_name(ty: u8) -> &'static str {
    match ty {
        attr_type::ORIGIN => "ORIGIN",
        attr_type::AS_PATH => "AS_PATH",
        attr_type::NEXT_HOP => "NEXT_HOP",
        attr_type::MULTI_EXIT_DISC => "MULTI_EXIT_DISC",
        attr_type::LOCAL_PREF => "LOCAL_PREF",
        attr_type::ATOMIC_AGGREGATE => "ATOMIC_AGGREGATE",
        attr_type::AGGREGATOR => "AGGREGATOR",
        attr_type::COMMUNITIES => "COMMUNITIES",
        attr_type::ORIGINATOR_ID => "ORIGINATOR_ID",
        attr_type::CLUSTER_LIST => "CLUSTER_LIST",
        attr_type::MP_REACH_NLRI => "MP_REACH_NLRI",
        attr_type::MP_UNREACH_NLRI => "MP_UNREACH_NLRI",
        attr_type::AS4_PATH => "AS4_PATH",
        attr_type::AS4_AGGREGATOR => "AS4_AGGREGATOR",
        attr_type::LARGE_COMMUNITIES => "LARGE_COMMUNITIES",
        _ => "attribute",
    }
}

fn update_err(subcode: u8, data: Vec<u8>) -> DecodeError {
    DecodeError::new(n::UPDATE_MESSAGE_ERROR, subcode, data)
}

fn decode_update(body: &[u8], codec: &SessionCodec) -> Result<Update, DecodeError> {
    let malformed = || update_err(n::update::MALFORMED_ATTRIBUTE_LIST, Vec::new());
    let invalid_net = || update_err(n::update::INVALID_NETWORK_FIELD, Vec::new());
    // body.len() >= 4 is guaranteed by the header check.
    let wd_len = usize::from(be16(body));
    let rest = &body[2..];
    if rest.len() < wd_len + 2 {
        return Err(malformed());
    }
    let (wd, rest) = rest.split_at(wd_len);
    let pa_len = usize::from(be16(rest));
    let rest = &rest[2..];
    if rest.len() < pa_len {
        return Err(malformed());
    }
    let (pa, nlri) = rest.split_at(pa_len);

    let mut u = Update::default();
    parse_v4_prefixes(wd, &mut u.withdrawn).map_err(|_| invalid_net())?;
    parse_v4_prefixes(nlri, &mut u.nlri).map_err(|_| invalid_net())?;

    let mut st = AttrState::default();
    decode_attributes(pa, codec, &mut u, &mut st)?;

    // RFC 6793 §4.2.3 (2-octet session only; on 4-octet sessions the AS4_*
    // attributes were discarded while parsing).
    if !codec.four_octet_as {
        let a = &mut u.attributes;
        match a.aggregator {
            Some(ag) if ag.asn != u32::from(AS_TRANS) => {
                // An OLD speaker aggregated: AS4_* are stale, ignore both.
            }
            _ => {
                if let (Some(ag), Some(ag4)) = (a.aggregator.as_mut(), st.as4_aggregator) {
                    *ag = ag4;
                }
                if let Some(p4) = st.as4_path.take() {
                    if st.have_as_path {
                        a.as_path = merge_as4_path(&a.as_path, p4);
                    }
                }
            }
        }
    }

    // RFC 7606 §3 d: missing well-known mandatory attributes.
    let reach_v4 = !u.nlri.is_empty();
    let reach_mp = u.mp_reach.as_ref().is_some_and(|r| !r.nlri.is_empty());
    if reach_v4 || reach_mp {
        if !st.have_origin {
            st.withdraw(|| "missing well-known attribute ORIGIN".into());
        }
        if !st.have_as_path {
            st.withdraw(|| "missing well-known attribute AS_PATH".into());
        }
        if reach_v4 && !st.have_next_hop {
            st.withdraw(|| "missing well-known attribute NEXT_HOP".into());
        }
    }
    u.treat_as_withdraw = st.taw;
    Ok(u)
}

fn decode_attributes(
    mut p: &[u8],
    codec: &SessionCodec,
    u: &mut Update,
    st: &mut AttrState,
) -> Result<(), DecodeError> {
    let asn_len = if codec.four_octet_as { 4 } else { 2 };
    while !p.is_empty() {
        let flags = p[0];
        let hdr = if flags & F_EXT != 0 { 4 } else { 3 };
        let overrun = |ty: Option<u8>, st: &mut AttrState| {
            // RFC 7606 §4: treat-as-withdraw, unless the NLRI cannot be
            // located because the overrunning attribute carries it.
            if matches!(
                ty,
                Some(attr_type::MP_REACH_NLRI | attr_type::MP_UNREACH_NLRI)
            ) {
                return Err(update_err(n::update::MALFORMED_ATTRIBUTE_LIST, Vec::new()));
            }
            st.withdraw(|| {
                format!(
                    "{} length overruns the path attributes",
                    attr_name(ty.unwrap_or(0))
                )
            });
            Ok(())
        };
        if p.len() < hdr {
            return overrun(p.get(1).copied(), st);
        }
        let ty = p[1];
        let len = if hdr == 4 {
            usize::from(be16(&p[2..4]))
        } else {
            usize::from(p[2])
        };
        if p.len() - hdr < len {
            return overrun(Some(ty), st);
        }
        let whole = &p[..hdr + len];
        let v = &p[hdr..hdr + len];
        p = &p[hdr + len..];

        if st.dup(ty) {
            // RFC 7606 §3 g.
            if ty == attr_type::MP_REACH_NLRI || ty == attr_type::MP_UNREACH_NLRI {
                return Err(update_err(n::update::MALFORMED_ATTRIBUTE_LIST, Vec::new()));
            }
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
                if !codec.four_octet_as && flags_ok(OPT_TRANS) {
                    st.as4_path = parse_as_path(v, 4).ok();
                }
            }
            attr_type::AS4_AGGREGATOR => {
                if !codec.four_octet_as && flags_ok(OPT_TRANS) && len == 8 {
                    st.as4_aggregator = Some(Aggregator {
                        asn: be32(v),
                        address: v4(&v[4..]),
                    });
                }
            }
            attr_type::MP_REACH_NLRI | attr_type::MP_UNREACH_NLRI => {
                let bad = || update_err(n::update::OPTIONAL_ATTRIBUTE_ERROR, whole.to_vec());
                if !flags_ok(OPT_NON_TRANS) {
                    return Err(bad());
                }
                if ty == attr_type::MP_REACH_NLRI {
                    u.mp_reach = decode_mp_reach(v).map_err(|_| bad())?;
                } else {
                    u.mp_unreach = decode_mp_unreach(v).map_err(|_| bad())?;
                }
            }
            _ => {
                if flags & F_OPT == 0 {
                    return Err(update_err(
                        n::update::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                        whole.to_vec(),
                    ));
                }
                a.unknown.push(RawAttribute {
                    flags,
                    type_code: ty,
                    value: v.to_vec(),
                });
            }
        }
    }
    Ok(())
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

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

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

fn put_attr_hdr(out: &mut Vec<u8>, flags: u8, ty: u8, len: usize) {
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

fn attr_hdr_len(len: usize) -> usize {
    if len > 255 {
        4
    } else {
        3
    }
}

fn as_path_wire_len(p: &AsPath, asn_len: usize) -> usize {
    p.segments()
        .map(|s| {
            let n = s.asns().len();
            n.div_ceil(255) * 2 + n * asn_len
        })
        .sum()
}

fn write_as_path(p: &AsPath, asn_len: usize, out: &mut Vec<u8>) {
    for s in p.segments() {
        let (ty, v) = match s {
            Segment::Sequence(v) => (SEG_SEQUENCE, v),
            Segment::Set(v) => (SEG_SET, v),
        };
        for chunk in v.chunks(255) {
            out.push(ty);
            out.push(chunk.len() as u8);
            for &asn in chunk {
                if asn_len == 4 {
                    out.extend_from_slice(&asn.to_be_bytes());
                } else {
                    let a = u16::try_from(asn).unwrap_or(AS_TRANS);
                    out.extend_from_slice(&a.to_be_bytes());
                }
            }
        }
    }
}

fn handled_type(ty: u8) -> bool {
    matches!(ty, 1..=10 | 14 | 15 | 17 | 18 | 32)
}

/// Encode every path attribute except MP_REACH/MP_UNREACH, in type-code
/// order, into `out`. The model cannot tell an empty AS_PATH from a missing
/// one: an empty AS_PATH is written only if `reachable` (the message
/// announces something and so needs the mandatory attribute).
fn encode_path_attributes(
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

/// Wire size of one prefix of `family` (0 if it is of the other family and
/// so is left out).
#[inline]
fn pfx_size(p: &Prefix, family: Family) -> usize {
    match (p, family) {
        (IpNet::V4(n), Family::Ipv4Unicast) => 1 + usize::from(n.prefix_len()).div_ceil(8),
        (IpNet::V6(n), Family::Ipv6Unicast) => 1 + usize::from(n.prefix_len()).div_ceil(8),
        _ => 0,
    }
}

#[inline]
fn v4_size(p: &Ipv4Net) -> usize {
    1 + usize::from(p.prefix_len()).div_ceil(8)
}

#[inline]
fn write_v4(p: &Ipv4Net, out: &mut Vec<u8>) {
    let n = usize::from(p.prefix_len()).div_ceil(8);
    out.push(p.prefix_len());
    out.extend_from_slice(&p.network().octets()[..n]);
}

#[inline]
fn write_pfx(p: &Prefix, family: Family, out: &mut Vec<u8>) {
    match (p, family) {
        (IpNet::V4(n), Family::Ipv4Unicast) => write_v4(n, out),
        (IpNet::V6(n), Family::Ipv6Unicast) => {
            let k = usize::from(n.prefix_len()).div_ceil(8);
            out.push(n.prefix_len());
            out.extend_from_slice(&n.network().octets()[..k]);
        }
        _ => {}
    }
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

/// The MP_REACH next hop field: 4, 16 or 32 octets.
fn mp_next_hop(nh: &NextHop, family: Family) -> ([u8; 32], usize) {
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

fn write_mp_reach(
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

fn write_mp_unreach(out: &mut Vec<u8>, family: Family, prefixes: &[Prefix], nlri_len: usize) {
    put_attr_hdr(out, OPT_NON_TRANS, attr_type::MP_UNREACH_NLRI, 3 + nlri_len);
    out.extend_from_slice(&family.afi().to_be_bytes());
    out.push(family.safi());
    for p in prefixes {
        write_pfx(p, family, out);
    }
}

/// The largest encoding of one prefix of `family`.
fn max_pfx_size(family: Family) -> usize {
    match family {
        Family::Ipv4Unicast => 5,
        Family::Ipv6Unicast => 17,
    }
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

fn encode_update(u: &Update, codec: &SessionCodec, out: &mut Vec<u8>) {
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
