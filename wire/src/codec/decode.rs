//! Decoding whole messages: the header, OPEN with its capabilities
//! (RFC 4271 §4.2, RFC 5492, RFC 9072), NOTIFICATION, KEEPALIVE,
//! ROUTE-REFRESH and the frame of an UPDATE (RFC 4271 §4.3); path
//! attributes are decoded in `attributes`.

use super::attributes::decode_attributes;
use super::nlri::parse_v4_prefixes;
use super::rfc7606::{check_mandatory, update_err, AttrState};
use super::*;
use crate::notification as n;

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
    let as4 = decode_attributes(pa, codec, &mut u, &mut st)?;
    // RFC 6793 §4.2.3, 2-octet sessions only (on 4-octet sessions the AS4_*
    // attributes were discarded while parsing).
    if !codec.four_octet_as {
        as4.reconcile(&mut u.attributes, st.have_as_path);
    }
    check_mandatory(&u, &mut st);
    st.report_into(&mut u);
    Ok(u)
}
