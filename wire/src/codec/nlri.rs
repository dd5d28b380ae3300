//! NLRI prefix encodings: (length, prefix) sequences (RFC 4271 §4.3,
//! RFC 4760 §5), for classic IPv4 and for the MP_*_NLRI families.

use std::net::Ipv6Addr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::v4;
use crate::types::{Family, Prefix};

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

pub(super) fn parse_v4_prefixes(b: &[u8], out: &mut Vec<Ipv4Net>) -> Result<(), ()> {
    parse_prefixes(b, 32, |a, len| {
        if let Ok(p) = Ipv4Net::new(v4(a), len) {
            out.push(p.trunc());
        }
    })
}

pub(super) fn parse_family_prefixes(
    b: &[u8],
    family: Family,
    out: &mut Vec<Prefix>,
) -> Result<(), ()> {
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

/// Wire size of one prefix of `family` (0 if it is of the other family and
/// so is left out).
#[inline]
pub(super) fn pfx_size(p: &Prefix, family: Family) -> usize {
    match (p, family) {
        (IpNet::V4(n), Family::Ipv4Unicast) => 1 + usize::from(n.prefix_len()).div_ceil(8),
        (IpNet::V6(n), Family::Ipv6Unicast) => 1 + usize::from(n.prefix_len()).div_ceil(8),
        _ => 0,
    }
}

#[inline]
pub(super) fn v4_size(p: &Ipv4Net) -> usize {
    1 + usize::from(p.prefix_len()).div_ceil(8)
}

#[inline]
pub(super) fn write_v4(p: &Ipv4Net, out: &mut Vec<u8>) {
    let n = usize::from(p.prefix_len()).div_ceil(8);
    out.push(p.prefix_len());
    out.extend_from_slice(&p.network().octets()[..n]);
}

#[inline]
pub(super) fn write_pfx(p: &Prefix, family: Family, out: &mut Vec<u8>) {
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

/// The largest encoding of one prefix of `family`.
pub(super) fn max_pfx_size(family: Family) -> usize {
    match family {
        Family::Ipv4Unicast => 5,
        Family::Ipv6Unicast => 17,
    }
}
