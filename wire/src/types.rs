//! The BGP data model: plain values, no I/O. The codec (`codec/`) turns
//! bytes into these and back; the RIB works only with these.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};
pub use thin_vec::{thin_vec, ThinVec};

/// A prefix of either family. `ipnet::IpNet` is a fixed-size value (no heap),
/// which is what the RIB wants as a map key.
pub type Prefix = IpNet;

/// AS_TRANS (RFC 6793 §9): stands in for a 4-octet ASN towards 2-octet peers.
pub const AS_TRANS: u16 = 23456;

/// The address families kroute speaks (AFI/SAFI pairs, RFC 4760).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    #[serde(rename = "ipv4-unicast")]
    Ipv4Unicast,
    #[serde(rename = "ipv6-unicast")]
    Ipv6Unicast,
}

impl Family {
    pub const AFI_IPV4: u16 = 1;
    pub const AFI_IPV6: u16 = 2;
    pub const SAFI_UNICAST: u8 = 1;

    pub fn afi(self) -> u16 {
        match self {
            Family::Ipv4Unicast => Self::AFI_IPV4,
            Family::Ipv6Unicast => Self::AFI_IPV6,
        }
    }

    pub fn safi(self) -> u8 {
        Self::SAFI_UNICAST
    }

    pub fn from_afi_safi(afi: u16, safi: u8) -> Option<Family> {
        match (afi, safi) {
            (Self::AFI_IPV4, Self::SAFI_UNICAST) => Some(Family::Ipv4Unicast),
            (Self::AFI_IPV6, Self::SAFI_UNICAST) => Some(Family::Ipv6Unicast),
            _ => None,
        }
    }

    pub fn of_prefix(prefix: &Prefix) -> Family {
        match prefix {
            IpNet::V4(_) => Family::Ipv4Unicast,
            IpNet::V6(_) => Family::Ipv6Unicast,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ipv4Unicast => "ipv4-unicast",
            Family::Ipv6Unicast => "ipv6-unicast",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Family {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ipv4-unicast" => Ok(Family::Ipv4Unicast),
            "ipv6-unicast" => Ok(Family::Ipv6Unicast),
            _ => Err(format!(
                "unknown family {s:?} (expected ipv4-unicast or ipv6-unicast)"
            )),
        }
    }
}

/// ORIGIN (RFC 4271 §5.1.1). The order is the decision-process preference:
/// IGP < EGP < INCOMPLETE, lower is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// One AS_PATH segment (RFC 4271 §4.3), owned: what is built, and what
/// the JSON form of a path lists. ASNs are always held as 4 octets; the
/// codec converts for 2-octet sessions (RFC 6793).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "asns", rename_all = "lowercase")]
pub enum AsSegment {
    Sequence(Vec<u32>),
    Set(Vec<u32>),
}

/// One segment of an [`AsPath`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    Sequence(&'a [u32]),
    Set(&'a [u32]),
}

impl<'a> Segment<'a> {
    pub fn asns(self) -> &'a [u32] {
        match self {
            Segment::Sequence(v) | Segment::Set(v) => v,
        }
    }

    pub fn to_owned(self) -> AsSegment {
        match self {
            Segment::Sequence(v) => AsSegment::Sequence(v.to_vec()),
            Segment::Set(v) => AsSegment::Set(v.to_vec()),
        }
    }
}

/// AS_PATH, held flat: each segment is a header word (the set bit, then its
/// length) followed by its ASNs, so a path costs one allocation (a full
/// table holds some 300,000 distinct paths; a list of separately allocated
/// segments cost twice the allocations). Adjacent sequences are merged as
/// they are added: they mean the same on the wire.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct AsPath(ThinVec<u32>);

/// In a segment header: the segment is an AS_SET (else an AS_SEQUENCE).
const SEGMENT_SET: u32 = 1 << 31;

impl AsPath {
    pub fn from_sequence(asns: Vec<u32>) -> AsPath {
        let mut p = AsPath::default();
        p.push(Segment::Sequence(&asns));
        p
    }

    pub fn from_segments(segments: impl IntoIterator<Item = AsSegment>) -> AsPath {
        let mut p = AsPath::default();
        for s in segments {
            p.push(match &s {
                AsSegment::Sequence(v) => Segment::Sequence(v),
                AsSegment::Set(v) => Segment::Set(v),
            });
        }
        p
    }

    /// Appends a segment (an empty one adds nothing; a sequence after a
    /// sequence extends it).
    pub fn push(&mut self, segment: Segment<'_>) {
        let asns = segment.asns();
        if asns.is_empty() {
            return;
        }
        let set = matches!(segment, Segment::Set(_));
        if !set {
            if let Some(h) = self.last_header() {
                if self.0[h] & SEGMENT_SET == 0 {
                    self.0[h] += u32::try_from(asns.len()).expect("segment length");
                    self.0.extend(asns.iter().copied());
                    return;
                }
            }
        }
        let len = u32::try_from(asns.len()).expect("segment length");
        self.0.push(if set { SEGMENT_SET | len } else { len });
        self.0.extend(asns.iter().copied());
    }

    /// Index of the last segment's header.
    fn last_header(&self) -> Option<usize> {
        let mut i = 0;
        let mut last = None;
        while i < self.0.len() {
            last = Some(i);
            i += 1 + (self.0[i] & !SEGMENT_SET) as usize;
        }
        last
    }

    pub fn segments(&self) -> impl Iterator<Item = Segment<'_>> + '_ {
        let mut rest = &self.0[..];
        std::iter::from_fn(move || {
            let (&h, tail) = rest.split_first()?;
            let (asns, next) = tail.split_at((h & !SEGMENT_SET) as usize);
            rest = next;
            Some(if h & SEGMENT_SET != 0 {
                Segment::Set(asns)
            } else {
                Segment::Sequence(asns)
            })
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Path length for the decision process (RFC 4271 §9.1.2.2 a): an AS_SET
    /// counts as one, each ASN of a sequence as one.
    pub fn path_len(&self) -> usize {
        self.segments()
            .map(|s| match s {
                Segment::Sequence(v) => v.len(),
                Segment::Set(_) => 1,
            })
            .sum()
    }

    /// How many times `asn` appears anywhere in the path (loop detection).
    pub fn count(&self, asn: u32) -> usize {
        self.asns().filter(|a| *a == asn).count()
    }

    pub fn asns(&self) -> impl Iterator<Item = u32> + '_ {
        self.segments().flat_map(|s| s.asns().iter().copied())
    }

    /// The neighbouring AS: first ASN of a leading AS_SEQUENCE (RFC 4271 §9.1.2.2 c).
    pub fn first_asn(&self) -> Option<u32> {
        match self.segments().next() {
            Some(Segment::Sequence(v)) => v.first().copied(),
            _ => None,
        }
    }

    /// The originating AS: last ASN of a trailing AS_SEQUENCE.
    pub fn origin_asn(&self) -> Option<u32> {
        match self.segments().last() {
            Some(Segment::Sequence(v)) => v.last().copied(),
            _ => None,
        }
    }

    /// Prepend `asn` `count` times to the leading sequence (RFC 4271 §5.1.2).
    pub fn prepend(&mut self, asn: u32, count: usize) {
        if count == 0 {
            return;
        }
        let n = u32::try_from(count).expect("prepend count");
        // A sequence segment holds at most 255 ASNs on the wire; the codec
        // splits longer ones, so the model may hold any length.
        match self.0.first_mut() {
            Some(h) if *h & SEGMENT_SET == 0 => {
                *h += n;
                self.0.splice(1..1, std::iter::repeat_n(asn, count));
            }
            _ => {
                let front = std::iter::once(n).chain(std::iter::repeat_n(asn, count));
                self.0.splice(0..0, front);
            }
        }
    }
}

impl fmt::Debug for AsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.segments()).finish()
    }
}

impl fmt::Display for AsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in self.segments() {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let parts: Vec<String> = seg.asns().iter().map(|a| a.to_string()).collect();
            match seg {
                Segment::Sequence(_) => f.write_str(&parts.join(" "))?,
                Segment::Set(_) => write!(f, "{{{}}}", parts.join(","))?,
            }
        }
        Ok(())
    }
}

// The JSON form lists the segments, as `AsSegment`s.
impl Serialize for AsPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.segments().map(Segment::to_owned))
    }
}

impl<'de> Deserialize<'de> for AsPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<AsSegment>::deserialize(d).map(AsPath::from_segments)
    }
}

/// A standard community (RFC 1997), printed `ASN:VALUE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xFFFF_FF03);
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0 >> 16, self.0 & 0xFFFF)
    }
}

impl FromStr for Community {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "no-export" => return Ok(Community::NO_EXPORT),
            "no-advertise" => return Ok(Community::NO_ADVERTISE),
            "no-export-subconfed" => return Ok(Community::NO_EXPORT_SUBCONFED),
            _ => {}
        }
        let bad = || format!("invalid community {s:?} (expected ASN:VALUE, each 0-65535)");
        let (a, b) = s.split_once(':').ok_or_else(bad)?;
        let a: u16 = a.parse().map_err(|_| bad())?;
        let b: u16 = b.parse().map_err(|_| bad())?;
        Ok(Community((u32::from(a) << 16) | u32::from(b)))
    }
}

/// A large community (RFC 8092), printed `GLOBAL:LOCAL1:LOCAL2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global: u32,
    pub local1: u32,
    pub local2: u32,
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

impl FromStr for LargeCommunity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "invalid large community {s:?} (expected GLOBAL:LOCAL1:LOCAL2, each 0-4294967295)"
            )
        };
        let mut it = s.split(':');
        let mut next = || -> Result<u32, String> {
            it.next().ok_or_else(bad)?.parse::<u32>().map_err(|_| bad())
        };
        let lc = LargeCommunity {
            global: next()?,
            local1: next()?,
            local2: next()?,
        };
        if it.next().is_some() {
            return Err(bad());
        }
        Ok(lc)
    }
}

macro_rules! serde_via_string {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_via_string!(Community);
serde_via_string!(LargeCommunity);

/// AGGREGATOR (RFC 4271 §5.1.7), ASN widened to 4 octets (RFC 6793).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// A path attribute kroute does not interpret, kept to pass on. The codec
/// sets the Partial bit when re-encoding an optional transitive one
/// (RFC 4271 §5); optional non-transitive ones are dropped by the RIB on export.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RawAttribute {
    pub flags: u8,
    pub type_code: u8,
    pub value: Vec<u8>,
}

impl RawAttribute {
    pub const FLAG_OPTIONAL: u8 = 0x80;
    pub const FLAG_TRANSITIVE: u8 = 0x40;
    pub const FLAG_PARTIAL: u8 = 0x20;
    pub const FLAG_EXTENDED_LENGTH: u8 = 0x10;
}

/// The next hop carried with reachable NLRI: NEXT_HOP for IPv4 in the classic
/// NLRI field, or the MP_REACH next hop (RFC 4760 §3). An IPv6 MP_REACH next
/// hop may carry a global and a link-local address (RFC 2545 §3); an IPv4
/// prefix may have an IPv6 next hop (RFC 8950).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NextHop {
    pub address: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_local: Option<Ipv6Addr>,
    /// The interface (index) the link-local address (`link_local`, or
    /// `address` when it is link-local) belongs to: the link of the
    /// session the route came over. Local knowledge, never on the wire
    /// (the decoder leaves it empty, the RIB fills it in); a link-local
    /// address means nothing without it (RFC 4291 §2.5.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<NonZeroU32>,
}

impl NextHop {
    pub fn new(address: IpAddr) -> NextHop {
        NextHop {
            address,
            link_local: None,
            interface: None,
        }
    }

    /// `address` is an IPv6 link-local address (fe80::/10).
    pub fn address_is_link_local(&self) -> bool {
        matches!(self.address, IpAddr::V6(a) if a.is_unicast_link_local())
    }

    /// A link-local-only next hop on a known interface: reachable exactly
    /// while that link is, nothing to resolve.
    pub fn on_link_only(&self) -> Option<NonZeroU32> {
        self.interface.filter(|_| self.address_is_link_local())
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.link_local {
            Some(ll) => write!(f, "{} ({})", self.address, ll),
            None => write!(f, "{}", self.address),
        }
    }
}

/// The path attributes of an UPDATE other than MP_REACH_NLRI/MP_UNREACH_NLRI
/// (those carry NLRI and live in [`Update`]). AS4_PATH and AS4_AGGREGATOR
/// are merged into `as_path`/`aggregator` by the decoder (RFC 6793 §4.2.3)
/// and produced again by the encoder for 2-octet sessions, so they never
/// appear here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathAttributes {
    pub origin: Option<Origin>,
    pub as_path: AsPath,
    /// The classic NEXT_HOP attribute (IPv4 only).
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    pub communities: ThinVec<Community>,
    pub large_communities: ThinVec<LargeCommunity>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: ThinVec<Ipv4Addr>,
    /// Attributes not interpreted here, in the order received.
    pub unknown: ThinVec<RawAttribute>,
}

/// MP_REACH_NLRI (RFC 4760 §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MpReach {
    pub family: Family,
    pub next_hop: NextHop,
    pub nlri: Vec<Prefix>,
}

/// MP_UNREACH_NLRI (RFC 4760 §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MpUnreach {
    pub family: Family,
    pub withdrawn: Vec<Prefix>,
}

/// An UPDATE message (RFC 4271 §4.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Update {
    pub withdrawn: Vec<Ipv4Net>,
    pub attributes: PathAttributes,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    pub nlri: Vec<Ipv4Net>,
    /// Set by the decoder when RFC 7606 "treat-as-withdraw" applies: every
    /// prefix in `nlri` and `mp_reach` must be handled as withdrawn. The
    /// string says why, for logs and `explain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treat_as_withdraw: Option<String>,
    /// Set by the decoder for each attribute it discarded (RFC 7606 §2
    /// "attribute discard", RFC 6793 §6), or an MP_*_NLRI of a family it
    /// does not speak: the attribute and the reason, one line each. The
    /// routes themselves stand.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attribute_discards: Vec<String>,
}

impl Update {
    /// True for the End-of-RIB marker of `family` (RFC 4724 §2).
    pub fn end_of_rib(&self) -> Option<Family> {
        let no_attrs = self.attributes == PathAttributes::default();
        if self.withdrawn.is_empty() && self.nlri.is_empty() && self.mp_reach.is_none() {
            match &self.mp_unreach {
                None if no_attrs => return Some(Family::Ipv4Unicast),
                Some(u) if u.withdrawn.is_empty() => return Some(u.family),
                _ => {}
            }
        }
        None
    }

    /// The next hop for the reachable prefixes of `family`, if any.
    pub fn next_hop_for(&self, family: Family) -> Option<NextHop> {
        if let Some(r) = &self.mp_reach {
            if r.family == family {
                return Some(r.next_hop);
            }
        }
        if family == Family::Ipv4Unicast {
            return self
                .attributes
                .next_hop
                .map(|a| NextHop::new(IpAddr::V4(a)));
        }
        None
    }
}

/// A capability advertised in OPEN (RFC 5492).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Capability {
    /// Code 1 (RFC 4760 §8).
    Multiprotocol(Family),
    /// Code 2 (RFC 2918).
    RouteRefresh,
    /// Code 5 (RFC 8950): NLRI family may use next hops of `next_hop_afi`.
    ExtendedNextHop(Vec<ExtendedNextHopEntry>),
    /// Code 64 (RFC 4724 §3).
    GracefulRestart {
        restart_state: bool,
        restart_time: u16,
        families: Vec<GracefulRestartFamily>,
    },
    /// Code 65 (RFC 6793).
    FourOctetAs(u32),
    /// Anything else, kept as is.
    Unknown { code: u8, value: Vec<u8> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtendedNextHopEntry {
    pub family: Family,
    pub next_hop_afi: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GracefulRestartFamily {
    pub family: Family,
    pub forwarding_preserved: bool,
}

/// OPEN (RFC 4271 §4.2). `asn` is the real ASN: the 4-octet capability's
/// value when present, else the 2-octet field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Open {
    pub version: u8,
    pub asn: u32,
    pub hold_time: u16,
    pub router_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

impl Open {
    pub fn families(&self) -> impl Iterator<Item = Family> + '_ {
        self.capabilities.iter().filter_map(|c| match c {
            Capability::Multiprotocol(f) => Some(*f),
            _ => None,
        })
    }

    pub fn has_capability(&self, pred: impl Fn(&Capability) -> bool) -> bool {
        self.capabilities.iter().any(pred)
    }
}

/// NOTIFICATION (RFC 4271 §4.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

/// ROUTE-REFRESH (RFC 2918 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRefresh {
    pub family: Family,
}

// Update is much larger than the other variants; messages are short-lived
// values, so boxing it is not worth the API churn.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_path_segments_merge_prepend_and_keep_their_json_form() {
        let mut p = AsPath::from_segments([
            AsSegment::Set(vec![65003, 65004]),
            AsSegment::Sequence(vec![65005]),
            AsSegment::Sequence(vec![65006]),
            AsSegment::Sequence(vec![]),
        ]);
        assert_eq!(p.to_string(), "{65003,65004} 65005 65006");
        assert_eq!(p.path_len(), 3, "a set counts as one");
        assert_eq!(p.first_asn(), None, "the path starts with a set");
        assert_eq!(p.origin_asn(), Some(65006));
        // Before a leading set, prepending starts a sequence ...
        p.prepend(65001, 2);
        assert_eq!(p.to_string(), "65001 65001 {65003,65004} 65005 65006");
        // ... which the next prepend extends.
        p.prepend(65000, 1);
        assert_eq!(p.to_string(), "65000 65001 65001 {65003,65004} 65005 65006");
        assert_eq!(p.first_asn(), Some(65000));
        assert_eq!(p.count(65001), 2);
        assert_eq!(p.asns().count(), 7);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"[{"type":"sequence","asns":[65000,65001,65001]},{"type":"set","asns":[65003,65004]},{"type":"sequence","asns":[65005,65006]}]"#
        );
        let back: AsPath = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        let mut empty = AsPath::default();
        assert!(empty.is_empty());
        empty.prepend(65000, 1);
        assert_eq!(empty, AsPath::from_sequence(vec![65000]));
    }
}
