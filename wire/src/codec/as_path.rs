//! AS_PATH and AS4_PATH values (RFC 4271 §4.3, RFC 6793 §4): segments
//! parsed and written, and the 2-octet path rebuilt with AS4_PATH.

use super::{be16, be32};
use crate::types::{AsPath, Segment, AS_TRANS};

const SEG_SET: u8 = 1;
const SEG_SEQUENCE: u8 = 2;
const SEG_CONFED_SEQUENCE: u8 = 3;
const SEG_CONFED_SET: u8 = 4;

/// AS_PATH / AS4_PATH value (RFC 4271 §4.3, RFC 7606 §7.2). Adjacent
/// AS_SEQUENCEs come out merged (equivalent on the wire).
pub(super) fn parse_as_path(mut b: &[u8], asn_len: usize) -> Result<AsPath, &'static str> {
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
pub(super) fn merge_as4_path(as_path: &AsPath, as4: AsPath) -> AsPath {
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

pub(super) fn as_path_wire_len(p: &AsPath, asn_len: usize) -> usize {
    p.segments()
        .map(|s| {
            let n = s.asns().len();
            n.div_ceil(255) * 2 + n * asn_len
        })
        .sum()
}

pub(super) fn write_as_path(p: &AsPath, asn_len: usize, out: &mut Vec<u8>) {
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
