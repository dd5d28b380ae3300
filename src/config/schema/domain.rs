//! `domains:` — routing domains: peers whose routes are decided among
//! themselves and installed in their own kernel table, selected by
//! `ip rule`s kroute manages.

use std::fmt;

use ipnet::IpNet;
use rib::policy::PolicyChain;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// `domains[]`: a routing domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Domain {
    /// Unique, `[A-Za-z0-9_.-]+`; named by `peers[].domain` and
    /// `advertise[].domain`.
    pub name: String,
    /// Kernel routing table: a number 1..=65535 or a name from
    /// `/etc/iproute2/rt_tables` (read when the config is loaded).
    #[serde(deserialize_with = "domain_table")]
    pub table: u32,
    /// Policy rules that send traffic to `table`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<DomainRule>,
    /// Routes leaked into this domain from others, each through a policy
    /// (nothing crosses domains otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub import_from: Vec<DomainImport>,
}

/// `domains[].importFrom[]`: the best paths of `domain` (`default`: the
/// default domain) that `policy` accepts become paths of this domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DomainImport {
    pub domain: String,
    /// Policy names (or `all`); required.
    #[serde(default)]
    pub policy: PolicyChain,
}

/// The name `importFrom` uses for the default domain (`kernel.table`).
pub const DEFAULT_DOMAIN: &str = "default";

/// `domains[].rules[]`: one `ip rule` (`priority N <selector> lookup
/// TABLE`); exactly one selector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DomainRule {
    /// Source prefix (`ip rule add from PREFIX`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<IpNet>,
    /// Destination prefix (`ip rule add to PREFIX`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<IpNet>,
    /// Firewall mark (`ip rule add fwmark N`), for IPv4 and IPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
    /// Incoming interface (`ip rule add iif IF`), for IPv4 and IPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iif: Option<String>,
    /// Rule priority, 1..=32765 (0 is the `local` rule, 32766 `main` and
    /// 32767 `default`); unique over all domains.
    pub priority: u32,
}

/// Where iproute2 keeps the table names (the first that exists is read).
const RT_TABLES: &[&str] = &["/etc/iproute2/rt_tables", "/usr/share/iproute2/rt_tables"];

/// Highest table number a domain may use: nexthop object ids are handed
/// out per domain from a range derived from its table (see
/// `kernel::nexthop_ids_of_table`).
pub const MAX_DOMAIN_TABLE: u32 = 65535;

/// The number of table `name` in an `rt_tables` text (`NUMBER NAME` lines,
/// `#` comments).
pub fn table_in(text: &str, name: &str) -> Option<u32> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .find_map(|l| {
            let mut words = l.split_whitespace();
            let number = words.next()?.parse::<u32>().ok()?;
            (words.next()? == name).then_some(number)
        })
}

fn table_named(name: &str) -> Result<u32, String> {
    match name {
        "main" => return Ok(254),
        "local" => return Ok(255),
        "default" => return Ok(253),
        _ => {}
    }
    for path in RT_TABLES {
        if let Ok(text) = std::fs::read_to_string(path) {
            return table_in(&text, name)
                .ok_or_else(|| format!("no routing table named {name:?} in {path}"));
        }
    }
    Err(format!(
        "no routing table named {name:?} (no {} to look it up in)",
        RT_TABLES.join(" or ")
    ))
}

fn domain_table<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = u32;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "a routing table number 1..={MAX_DOMAIN_TABLE} or a name from /etc/iproute2/rt_tables"
            )
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
            match u32::try_from(v) {
                Ok(t) if (1..=MAX_DOMAIN_TABLE).contains(&t) => Ok(t),
                _ => Err(E::custom(format_args!(
                    "table {v} is out of range (1..={MAX_DOMAIN_TABLE})"
                ))),
            }
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
            match u64::try_from(v) {
                Ok(u) => self.visit_u64(u),
                Err(_) => Err(E::custom(format_args!(
                    "table {v} is out of range (1..={MAX_DOMAIN_TABLE})"
                ))),
            }
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<u32, E> {
            if let Ok(v) = s.parse::<u64>() {
                return self.visit_u64(v);
            }
            let t = table_named(s).map_err(E::custom)?;
            if (1..=MAX_DOMAIN_TABLE).contains(&t) {
                Ok(t)
            } else {
                Err(E::custom(format_args!(
                    "table {s:?} is number {t}, out of range for a domain (1..={MAX_DOMAIN_TABLE})"
                )))
            }
        }
    }
    d.deserialize_any(V)
}

impl DomainRule {
    /// How many selectors it has (valid: exactly one).
    pub fn selectors(&self) -> usize {
        usize::from(self.from.is_some())
            + usize::from(self.to.is_some())
            + usize::from(self.fwmark.is_some())
            + usize::from(self.iif.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rt_tables_names_are_found_and_comments_skipped() {
        let text = "# reserved\n255\tlocal\n254 main\n#100 nope\n100 internet # uplink\n";
        assert_eq!(table_in(text, "internet"), Some(100));
        assert_eq!(table_in(text, "main"), Some(254));
        assert_eq!(table_in(text, "nope"), None);
    }
}
