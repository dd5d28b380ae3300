//! Custom (de)serializers for config values. Each checks its value inside a
//! serde `Visitor`, so the YAML deserializer attaches the value's own line and
//! column to the error (a check made after deserializing would only get the
//! enclosing mapping's position).

use std::fmt;
use std::marker::PhantomData;

use ipnet::IpNet;
use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};
use serde::Serializer;

/// Routing table names (`/etc/iproute2/rt_tables`).
pub(super) const TABLES: &[(&str, u32)] = &[("main", 254), ("local", 255), ("default", 253)];

/// Route protocol names (`/etc/iproute2/rt_protos`); 186 is `bgp` there.
pub(super) const PROTOCOLS: &[(&str, u8)] = &[
    ("bgp", 186),
    ("static", 4),
    ("kernel", 2),
    ("boot", 3),
    ("zebra", 11),
    ("bird", 12),
];

/// An unsigned integer accepted when `valid` says so.
struct Ranged {
    valid: fn(u64) -> bool,
    expecting: &'static str,
}

impl<'de> Visitor<'de> for Ranged {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        if (self.valid)(v) {
            Ok(v)
        } else {
            Err(E::invalid_value(Unexpected::Unsigned(v), &self))
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        match u64::try_from(v) {
            Ok(u) => self.visit_u64(u),
            Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
        }
    }
}

/// `Option` of a [`Ranged`] value: `null` or absent is `None`.
struct OptRanged(Ranged);

impl<'de> Visitor<'de> for OptRanged {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_u64(self.0).map(Some)
    }
}

fn ranged<'de, D: Deserializer<'de>>(
    d: D,
    valid: fn(u64) -> bool,
    expecting: &'static str,
) -> Result<u64, D::Error> {
    d.deserialize_u64(Ranged { valid, expecting })
}

fn opt_ranged<'de, D: Deserializer<'de>>(
    d: D,
    valid: fn(u64) -> bool,
    expecting: &'static str,
) -> Result<Option<u64>, D::Error> {
    d.deserialize_option(OptRanged(Ranged { valid, expecting }))
}

/// The ASN range a router or peer may have: not 0, not 4294967295 (RFC 7300),
/// not 23456 (AS_TRANS, RFC 6793).
pub(super) fn valid_asn(v: u64) -> bool {
    (1..=4_294_967_294).contains(&v) && v != u64::from(wire::AS_TRANS)
}

pub(super) fn asn<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = ranged(
        d,
        valid_asn,
        "an ASN in 1..=4294967294 other than 23456 (AS_TRANS)",
    )?;
    Ok(v as u32)
}

/// Hold time (RFC 4271 §4.2): 0 (no keepalives) or at least 3 seconds.
fn valid_hold_time(v: u64) -> bool {
    v == 0 || (3..=65535).contains(&v)
}

const HOLD_TIME: &str = "a hold time in seconds: 0 or 3..=65535";

pub(super) fn hold_time<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    Ok(ranged(d, valid_hold_time, HOLD_TIME)? as u16)
}

pub(super) fn opt_hold_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    Ok(opt_ranged(d, valid_hold_time, HOLD_TIME)?.map(|v| v as u16))
}

pub(super) fn max_paths<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    Ok(ranged(d, |v| (1..=64).contains(&v), "1..=64")? as usize)
}

pub(super) fn connect_retry<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = ranged(
        d,
        |v| (1..=u64::from(u32::MAX)).contains(&v),
        "seconds, at least 1",
    )?;
    Ok(v as u32)
}

pub(super) fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    Ok(ranged(d, |v| (1..=65535).contains(&v), "a TCP port 1..=65535")? as u16)
}

pub(super) fn allow_as_in<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    Ok(ranged(d, |v| v <= 10, "u8 (0..=10)")? as u8)
}

pub(super) fn multihop<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    let v = opt_ranged(d, |v| (1..=255).contains(&v), "a TTL 1..=255")?;
    Ok(v.map(|v| v as u8))
}

/// A kernel table or protocol: a name from `names` or a number in `lo..=hi`.
struct Named<T: 'static> {
    what: &'static str,
    names: &'static [(&'static str, T)],
    lo: u64,
    hi: u64,
}

impl<T: Copy + TryFrom<u64> + 'static> Named<T> {
    fn expected(&self) -> String {
        let names: Vec<&str> = self.names.iter().map(|(n, _)| *n).collect();
        format!(
            "one of {} or a number {}..={}",
            names.join(", "),
            self.lo,
            self.hi
        )
    }

    fn number<E: de::Error>(&self, v: u64, unexpected: Unexpected<'_>) -> Result<T, E> {
        if (self.lo..=self.hi).contains(&v) {
            if let Ok(t) = T::try_from(v) {
                return Ok(t);
            }
        }
        Err(E::invalid_value(unexpected, &self.expected().as_str()))
    }
}

impl<'de, T: Copy + TryFrom<u64> + 'static> Visitor<'de> for Named<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} name or number ({})", self.what, self.expected())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.number(v, Unexpected::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        match u64::try_from(v) {
            Ok(u) => self.visit_u64(u),
            Err(_) => Err(E::invalid_value(
                Unexpected::Signed(v),
                &self.expected().as_str(),
            )),
        }
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        if let Some((_, v)) = self.names.iter().find(|(n, _)| *n == s) {
            return Ok(*v);
        }
        if let Ok(v) = s.parse::<u64>() {
            return self.number(v, Unexpected::Str(s));
        }
        Err(E::custom(format_args!(
            "unknown {} {s:?} (expected {})",
            self.what,
            self.expected()
        )))
    }
}

pub(super) fn table<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    d.deserialize_any(Named {
        what: "routing table",
        names: TABLES,
        lo: 1,
        hi: u64::from(u32::MAX),
    })
}

pub(super) fn protocol<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    d.deserialize_any(Named {
        what: "route protocol",
        names: PROTOCOLS,
        lo: 1,
        hi: 255,
    })
}

pub(super) fn ser_table<S: Serializer>(v: &u32, s: S) -> Result<S::Ok, S::Error> {
    match TABLES.iter().find(|(_, n)| n == v) {
        Some((name, _)) => s.serialize_str(name),
        None => s.serialize_u32(*v),
    }
}

pub(super) fn ser_protocol<S: Serializer>(v: &u8, s: S) -> Result<S::Ok, S::Error> {
    match PROTOCOLS.iter().find(|(_, n)| n == v) {
        Some((name, _)) => s.serialize_str(name),
        None => s.serialize_u8(*v),
    }
}

/// A prefix whose host bits must be clear.
struct StrictPrefix(IpNet);

impl<'de> Deserialize<'de> for StrictPrefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V(PhantomData<StrictPrefix>);
        impl Visitor<'_> for V {
            type Value = StrictPrefix;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a prefix ADDRESS/LENGTH")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<StrictPrefix, E> {
                let p: IpNet = s.parse().map_err(|_| {
                    E::custom(format_args!(
                        "invalid prefix {s:?} (expected ADDRESS/LENGTH, e.g. 10.0.0.0/24 or fd00::/64)"
                    ))
                })?;
                if p.trunc() != p {
                    return Err(E::custom(format_args!(
                        "prefix {p} has host bits set (did you mean {}?)",
                        p.trunc()
                    )));
                }
                Ok(StrictPrefix(p))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

pub(super) fn prefixes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let v = Vec::<StrictPrefix>::deserialize(d)?;
    Ok(v.into_iter().map(|p| p.0).collect())
}

/// `ttlSecurity`: `true` (hops 1), `false` (off) or `{hops: N}`, 1..=254.
pub(super) fn ttl_security<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Hops {
        #[serde(deserialize_with = "gtsm_hops")]
        hops: u8,
    }
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Gtsm {
        On(bool),
        Hops(Hops),
    }
    match Option::<Gtsm>::deserialize(d)? {
        None | Some(Gtsm::On(false)) => Ok(None),
        Some(Gtsm::On(true)) => Ok(Some(1)),
        Some(Gtsm::Hops(h)) => Ok(Some(h.hops)),
    }
}

fn gtsm_hops<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    Ok(ranged(
        d,
        |v| (1..=254).contains(&v),
        "router hops to the peer, 1..=254",
    )? as u8)
}

pub(super) fn ser_ttl_security<S: Serializer>(v: &Option<u8>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    match v {
        None => s.serialize_bool(false),
        Some(1) => s.serialize_bool(true),
        Some(hops) => {
            let mut st = s.serialize_struct("TtlSecurity", 1)?;
            st.serialize_field("hops", hops)?;
            st.end()
        }
    }
}
