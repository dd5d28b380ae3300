//! BMP messages (RFC 7854 §4) as octets. Pure: values in, bytes out.
//!
//! The BGP PDUs inside (OPEN, UPDATE, NOTIFICATION) come from the wire
//! crate's encoder, with 4-octet AS numbers (so the A flag stays clear).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

use wire::{encode_message, Family, Message, Notification, Open, SessionCodec, Update};

/// BMP version 3 (RFC 7854 §4.1).
pub const VERSION: u8 = 3;
/// Common header: version, message length, message type.
pub const COMMON_HEADER_LEN: usize = 6;
/// Per-peer header (RFC 7854 §4.2).
pub const PER_PEER_HEADER_LEN: usize = 42;

/// Message types (RFC 7854 §4.1).
pub mod msg_type {
    pub const ROUTE_MONITORING: u8 = 0;
    pub const STATISTICS_REPORT: u8 = 1;
    pub const PEER_DOWN: u8 = 2;
    pub const PEER_UP: u8 = 3;
    pub const INITIATION: u8 = 4;
    pub const TERMINATION: u8 = 5;
}

/// Per-peer header flags (RFC 7854 §4.2).
pub mod flags {
    /// The peer address is IPv6.
    pub const V: u8 = 0x80;
    /// Post-policy Adj-RIB-In.
    pub const L: u8 = 0x40;
    /// The BGP PDUs use 2-octet AS numbers (never set here).
    pub const A: u8 = 0x20;
}

/// Peer type 0, "Global Instance Peer" (RFC 7854 §4.2): kroute has one
/// routing instance.
pub const PEER_TYPE_GLOBAL: u8 = 0;

/// Who a per-peer header describes, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerHeader {
    pub address: IpAddr,
    pub asn: u32,
    pub bgp_id: Ipv4Addr,
    /// L flag: the routes are post-policy.
    pub post_policy: bool,
    pub timestamp: SystemTime,
}

/// Why a session ended (RFC 7854 §4.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason<'a> {
    /// 1: we closed it with this NOTIFICATION.
    LocalNotification(&'a Notification),
    /// 2: we closed it without a NOTIFICATION; the FSM event (RFC 4271
    /// §8.1, 0 when none applies).
    LocalNoNotification { fsm_event: u16 },
    /// 3: the peer closed it with this NOTIFICATION.
    RemoteNotification(&'a Notification),
    /// 4: the connection closed without a NOTIFICATION.
    RemoteNoNotification,
    /// 5: the peer was removed from the configuration.
    Deconfigured,
}

/// Termination reasons (RFC 7854 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum TerminationReason {
    AdministrativelyClosed = 0,
    PermanentlyAdministrativelyClosed = 4,
}

/// One statistic of a Statistics Report (RFC 7854 §4.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    /// Type 0: prefixes rejected by inbound policy (32-bit counter).
    RejectedPrefixes(u32),
    /// Type 7: routes in the Adj-RIB-In (64-bit gauge).
    AdjRibIn(u64),
    /// Type 8: routes in the Loc-RIB (64-bit gauge).
    LocRib(u64),
    /// Type 9: routes in the Adj-RIB-In of one AFI/SAFI.
    AdjRibInOf(Family, u64),
    /// Type 10: routes in the Loc-RIB of one AFI/SAFI.
    LocRibOf(Family, u64),
    /// Type 11: UPDATEs treated as withdraw (RFC 7606; 32-bit counter).
    TreatAsWithdrawUpdates(u32),
}

fn begin(out: &mut Vec<u8>, ty: u8) {
    out.push(VERSION);
    out.extend_from_slice(&[0; 4]);
    out.push(ty);
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    let len = out.len() as u32;
    out[1..5].copy_from_slice(&len.to_be_bytes());
    out
}

fn tlv(out: &mut Vec<u8>, ty: u16, value: &[u8]) {
    out.extend_from_slice(&ty.to_be_bytes());
    // Information TLVs carry short strings; longer ones are cut.
    let value = &value[..value.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// 16 octets; an IPv4 address in the last 4, the rest zero (§4.2).
fn address16(out: &mut Vec<u8>, a: IpAddr) {
    match a.to_canonical() {
        IpAddr::V4(v4) => {
            out.extend_from_slice(&[0; 12]);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
    }
}

fn per_peer(out: &mut Vec<u8>, h: &PeerHeader) {
    out.push(PEER_TYPE_GLOBAL);
    let mut f = 0;
    if h.address.to_canonical().is_ipv6() {
        f |= flags::V;
    }
    if h.post_policy {
        f |= flags::L;
    }
    out.push(f);
    // Peer distinguisher: zero for a global instance peer.
    out.extend_from_slice(&[0; 8]);
    address16(out, h.address);
    out.extend_from_slice(&h.asn.to_be_bytes());
    out.extend_from_slice(&h.bgp_id.octets());
    let t = h.timestamp.duration_since(UNIX_EPOCH).unwrap_or_default();
    out.extend_from_slice(&(t.as_secs() as u32).to_be_bytes());
    out.extend_from_slice(&t.subsec_micros().to_be_bytes());
}

fn bgp_pdu(out: &mut Vec<u8>, m: &Message) {
    let codec = SessionCodec {
        four_octet_as: true,
    };
    encode_message(m, &codec, out);
}

/// Initiation (§4.3): sysDescr (type 1) and sysName (type 2).
pub fn initiation(sys_name: &str, sys_descr: &str) -> Vec<u8> {
    let mut out = Vec::new();
    begin(&mut out, msg_type::INITIATION);
    tlv(&mut out, 1, sys_descr.as_bytes());
    tlv(&mut out, 2, sys_name.as_bytes());
    finish(out)
}

/// Termination (§4.5): a string (type 0) and the reason (type 1).
pub fn termination(reason: TerminationReason, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    begin(&mut out, msg_type::TERMINATION);
    tlv(&mut out, 0, text.as_bytes());
    tlv(&mut out, 1, &(reason as u16).to_be_bytes());
    finish(out)
}

/// Peer Up (§4.10): our end of the connection, the peer's port, and the
/// OPENs as sent and as received.
pub fn peer_up(
    h: &PeerHeader,
    local: SocketAddr,
    remote_port: u16,
    sent: &Open,
    received: &Open,
) -> Vec<u8> {
    let mut out = Vec::new();
    begin(&mut out, msg_type::PEER_UP);
    per_peer(&mut out, h);
    address16(&mut out, local.ip());
    out.extend_from_slice(&local.port().to_be_bytes());
    out.extend_from_slice(&remote_port.to_be_bytes());
    bgp_pdu(&mut out, &Message::Open(sent.clone()));
    bgp_pdu(&mut out, &Message::Open(received.clone()));
    finish(out)
}

/// Peer Down (§4.9).
pub fn peer_down(h: &PeerHeader, reason: DownReason<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    begin(&mut out, msg_type::PEER_DOWN);
    per_peer(&mut out, h);
    match reason {
        DownReason::LocalNotification(nf) => {
            out.push(1);
            bgp_pdu(&mut out, &Message::Notification(nf.clone()));
        }
        DownReason::LocalNoNotification { fsm_event } => {
            out.push(2);
            out.extend_from_slice(&fsm_event.to_be_bytes());
        }
        DownReason::RemoteNotification(nf) => {
            out.push(3);
            bgp_pdu(&mut out, &Message::Notification(nf.clone()));
        }
        DownReason::RemoteNoNotification => out.push(4),
        DownReason::Deconfigured => out.push(5),
    }
    finish(out)
}

/// Route Monitoring (§4.6): one BMP message per BGP UPDATE. An UPDATE
/// larger than 4096 octets is split by the wire encoder; each part gets
/// its own message.
pub fn route_monitoring(h: &PeerHeader, update: &Update) -> Vec<Vec<u8>> {
    let mut pdus = Vec::new();
    bgp_pdu(&mut pdus, &Message::Update(update.clone()));
    let mut out = Vec::new();
    let mut rest = &pdus[..];
    // Each BGP message: 16-octet marker, 2-octet length, type.
    while rest.len() >= 19 {
        let len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
        let (pdu, tail) = rest.split_at(len.min(rest.len()));
        let mut m = Vec::with_capacity(COMMON_HEADER_LEN + PER_PEER_HEADER_LEN + pdu.len());
        begin(&mut m, msg_type::ROUTE_MONITORING);
        per_peer(&mut m, h);
        m.extend_from_slice(pdu);
        out.push(finish(m));
        rest = tail;
    }
    out
}

/// Statistics Report (§4.8).
pub fn statistics(h: &PeerHeader, stats: &[Stat]) -> Vec<u8> {
    let mut out = Vec::new();
    begin(&mut out, msg_type::STATISTICS_REPORT);
    per_peer(&mut out, h);
    out.extend_from_slice(&(stats.len() as u32).to_be_bytes());
    for s in stats {
        match *s {
            Stat::RejectedPrefixes(n) => tlv(&mut out, 0, &n.to_be_bytes()),
            Stat::AdjRibIn(n) => tlv(&mut out, 7, &n.to_be_bytes()),
            Stat::LocRib(n) => tlv(&mut out, 8, &n.to_be_bytes()),
            Stat::AdjRibInOf(f, n) => tlv(&mut out, 9, &afi_safi_gauge(f, n)),
            Stat::LocRibOf(f, n) => tlv(&mut out, 10, &afi_safi_gauge(f, n)),
            Stat::TreatAsWithdrawUpdates(n) => tlv(&mut out, 11, &n.to_be_bytes()),
        }
    }
    finish(out)
}

/// AFI (2 octets), SAFI (1), 64-bit gauge (§4.8, types 9 and 10).
fn afi_safi_gauge(f: Family, n: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(11);
    v.extend_from_slice(&f.afi().to_be_bytes());
    v.push(f.safi());
    v.extend_from_slice(&n.to_be_bytes());
    v
}

#[cfg(test)]
mod tests;
