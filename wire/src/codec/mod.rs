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
//!
//! Layout: `decode` and `encode` frame whole messages (OPEN,
//! capabilities, UPDATE splitting); `attributes` parses and emits each path
//! attribute, `as_path` and `nlri` the two variable-length encodings inside
//! them; `rfc7606` holds the error rules that decide, for a malformed
//! UPDATE, between treat-as-withdraw, attribute discard and session reset.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::types::*;

mod as_path;
mod attributes;
mod decode;
mod encode;
mod nlri;
mod rfc7606;

pub use decode::decode_message;
pub use encode::{encode_message, encode_update, update_attributes_fit};

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

/// An attribute type's name for error reasons (decode and the RFC 7606
/// rules both name attributes).
pub(super) fn attr_name(ty: u8) -> &'static str {
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
