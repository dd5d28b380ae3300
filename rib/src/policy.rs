//! Routing policy: named lists of rules applied at import and export.
//!
//! These types are both the configuration schema (deserialized from the
//! YAML config, camelCase, unknown keys rejected) and the input to the
//! evaluator. Semantics:
//!
//! * A peer's `import`/`export` is `all`, `none`, or a list of policy names.
//! * A policy is an ordered list of rules. A rule whose `match` holds (every
//!   given condition holds; an absent condition always holds) applies its
//!   `set` actions, then its `action`: `accept` or `reject` ends evaluation,
//!   `continue` (the default) goes on to the next rule, keeping the changes.
//! * After the last rule of the last policy in the list, the route is
//!   rejected ("no rule accepted it").
//! * A peer with no `import` (or `export`) at all: iBGP peers accept
//!   everything; eBGP peers exchange nothing (RFC 8212).

use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use wire::{Community, Family, LargeCommunity};

/// A named policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    pub name: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    #[serde(default, rename = "match")]
    pub matches: Match,
    #[serde(default)]
    pub set: Set,
    #[serde(default)]
    pub action: Action,
}

/// Conditions; all given ones must hold. A list condition holds when any of
/// its entries matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Match {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefixes: Vec<PrefixMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<Community>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub large_communities: Vec<LargeCommunity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_path: Option<AsPathMatch>,
    /// Peer names: at import the peer the route came from, at export the
    /// peer it is going to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub neighbors: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AsPathMatch {
    /// The path contains this ASN anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<u32>,
    /// The last ASN of the path (the originator) is this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub originated_by: Option<u32>,
    /// Path length (RFC 4271 §9.1.2.2 a counting) at least / at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
}

/// Modifications applied when a rule matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Set {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub med: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_communities: Vec<Community>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_communities: Vec<Community>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_large_communities: Vec<LargeCommunity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_large_communities: Vec<LargeCommunity>,
    /// Lengthen the AS_PATH by this many prepends. At export: our own ASN,
    /// on top of the one eBGP always prepends. At import: the neighbour's
    /// AS, as if it had prepended itself (FRR's and BIRD's semantics): the
    /// peer's ASN on eBGP sessions, the path's first (neighbouring) AS on
    /// iBGP sessions, nothing for an iBGP path with an empty AS_PATH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepend_as_path: Option<u8>,
    /// At export: our own address as next hop.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub next_hop_self: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Accept,
    Reject,
    #[default]
    Continue,
}

/// A prefix filter entry, written `PREFIX [ge N] [le M]` in config, e.g.
/// `10.0.0.0/8 ge 24 le 24`. Without ge/le only the exact prefix matches;
/// with them, any more-specific prefix of `prefix` whose length is in
/// `[ge, le]` (ge defaults to the prefix length, le to the family maximum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrefixMatch {
    pub prefix: IpNet,
    pub ge: Option<u8>,
    pub le: Option<u8>,
}

impl PrefixMatch {
    pub fn matches(&self, p: &IpNet) -> bool {
        if self.ge.is_none() && self.le.is_none() {
            return p == &self.prefix;
        }
        let max = self.prefix.max_prefix_len();
        let lo = self.ge.unwrap_or(self.prefix.prefix_len());
        let hi = self.le.unwrap_or(max);
        self.prefix.contains(p) && (lo..=hi).contains(&p.prefix_len())
    }
}

impl fmt::Display for PrefixMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.prefix)?;
        if let Some(ge) = self.ge {
            write!(f, " ge {ge}")?;
        }
        if let Some(le) = self.le {
            write!(f, " le {le}")?;
        }
        Ok(())
    }
}

impl FromStr for PrefixMatch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut words = s.split_whitespace();
        let p = words
            .next()
            .ok_or_else(|| "empty prefix match".to_string())?;
        let prefix: IpNet = p
            .parse()
            .map_err(|_| format!("invalid prefix {p:?} (expected ADDRESS/LENGTH)"))?;
        if prefix.trunc() != prefix {
            return Err(format!(
                "prefix {prefix} has host bits set (did you mean {}?)",
                prefix.trunc()
            ));
        }
        let mut m = PrefixMatch {
            prefix,
            ge: None,
            le: None,
        };
        while let Some(w) = words.next() {
            let v = words
                .next()
                .ok_or_else(|| format!("{w:?} needs a length after it"))?;
            let n: u8 = v
                .parse()
                .map_err(|_| format!("invalid length {v:?} after {w:?}"))?;
            if n < prefix.prefix_len() || n > prefix.max_prefix_len() {
                return Err(format!(
                    "{w} {n} is outside {}..={} for {prefix}",
                    prefix.prefix_len(),
                    prefix.max_prefix_len()
                ));
            }
            match w {
                "ge" => m.ge = Some(n),
                "le" => m.le = Some(n),
                _ => return Err(format!("unexpected {w:?} (expected ge or le)")),
            }
        }
        if let (Some(ge), Some(le)) = (m.ge, m.le) {
            if ge > le {
                return Err(format!("ge {ge} is greater than le {le}"));
            }
        }
        Ok(m)
    }
}

impl Serialize for PrefixMatch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PrefixMatch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a peer's `import` or `export` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PolicyChain {
    /// Not configured: iBGP accepts all, eBGP nothing (RFC 8212).
    #[default]
    Unset,
    All,
    None,
    Named(Vec<String>),
}

impl Serialize for PolicyChain {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PolicyChain::Unset => s.serialize_none(),
            PolicyChain::All => s.serialize_str("all"),
            PolicyChain::None => s.serialize_str("none"),
            PolicyChain::Named(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for PolicyChain {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Option::<Raw>::deserialize(d)? {
            None => PolicyChain::Unset,
            Some(Raw::One(s)) if s == "all" => PolicyChain::All,
            Some(Raw::One(s)) if s == "none" => PolicyChain::None,
            Some(Raw::One(s)) => PolicyChain::Named(vec![s]),
            Some(Raw::Many(v)) => PolicyChain::Named(v),
        })
    }
}

// ---------------------------------------------------------------------------
// Evaluator
// ---------------------------------------------------------------------------

/// What a route is being judged as: the prefix and the neighbour named by
/// `neighbors` matches (source peer at import, destination peer at export).
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub prefix: &'a IpNet,
    pub neighbor: &'a str,
}

/// The outcome of running a chain of named policies over one route.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// `None` = accepted; `Some(reason)` = rejected and why.
    pub rejected: Option<String>,
    /// Some evaluated condition looked at the prefix: the result may differ
    /// for another prefix with the same attributes (callers cache on this).
    pub used_prefix: bool,
    /// Sum of `prependAsPath` of the rules that applied.
    pub prepend: u8,
    /// Some applied rule asked for next-hop-self.
    pub next_hop_self: bool,
    /// Some applied rule set the MED.
    pub med_set: bool,
}

/// The configured policies, indexed by name.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    by_name: std::collections::HashMap<String, Policy>,
}

impl Policies {
    pub fn new(list: &[Policy]) -> Policies {
        Policies {
            by_name: list.iter().map(|p| (p.name.clone(), p.clone())).collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Policy> {
        self.by_name.get(name)
    }

    /// Whether any of the named policies matches on neighbour names (an
    /// export result that then depends on the peer's name).
    pub fn mentions_neighbors(&self, names: &[String]) -> bool {
        names
            .iter()
            .filter_map(|n| self.get(n))
            .any(|p| p.rules.iter().any(|r| !r.matches.neighbors.is_empty()))
    }

    /// Runs the named policies in order over `attrs`, which set actions
    /// change (cloned on first change only). See the module doc.
    pub fn evaluate(
        &self,
        names: &[String],
        subject: Subject<'_>,
        attrs: &mut std::borrow::Cow<'_, wire::PathAttributes>,
    ) -> Outcome {
        let mut out = Outcome::default();
        for name in names {
            let Some(policy) = self.get(name) else {
                out.rejected = Some(format!("policy {name:?} is not defined"));
                return out;
            };
            for (i, rule) in policy.rules.iter().enumerate() {
                if !rule.matches.holds(subject, attrs, &mut out.used_prefix) {
                    continue;
                }
                rule.set.apply(attrs, &mut out);
                match rule.action {
                    Action::Accept => return out,
                    Action::Reject => {
                        out.rejected = Some(format!(
                            "rejected by policy {name:?} rule {} (of {})",
                            i + 1,
                            policy.rules.len()
                        ));
                        return out;
                    }
                    Action::Continue => {}
                }
            }
        }
        out.rejected = Some(format!(
            "no rule accepted it (policies: {})",
            names.join(", ")
        ));
        out
    }
}

impl Match {
    /// True when every given condition holds. Sets `used_prefix` when a
    /// prefix list was consulted.
    pub fn holds(
        &self,
        subject: Subject<'_>,
        attrs: &wire::PathAttributes,
        used_prefix: &mut bool,
    ) -> bool {
        if let Some(f) = self.family {
            if Family::of_prefix(subject.prefix) != f {
                return false;
            }
        }
        if !self.neighbors.is_empty() && !self.neighbors.iter().any(|n| n == subject.neighbor) {
            return false;
        }
        if !self.communities.is_empty()
            && !self
                .communities
                .iter()
                .any(|c| attrs.communities.contains(c))
        {
            return false;
        }
        if !self.large_communities.is_empty()
            && !self
                .large_communities
                .iter()
                .any(|c| attrs.large_communities.contains(c))
        {
            return false;
        }
        if let Some(m) = &self.as_path {
            if !m.holds(&attrs.as_path) {
                return false;
            }
        }
        if !self.prefixes.is_empty() {
            *used_prefix = true;
            if !self.prefixes.iter().any(|p| p.matches(subject.prefix)) {
                return false;
            }
        }
        true
    }
}

impl AsPathMatch {
    pub fn holds(&self, path: &wire::AsPath) -> bool {
        if let Some(asn) = self.contains {
            if path.count(asn) == 0 {
                return false;
            }
        }
        if let Some(asn) = self.originated_by {
            if path.origin_asn() != Some(asn) {
                return false;
            }
        }
        let len = path.path_len();
        if self.min_length.is_some_and(|m| len < m) || self.max_length.is_some_and(|m| len > m) {
            return false;
        }
        true
    }
}

impl Set {
    fn apply(&self, attrs: &mut std::borrow::Cow<'_, wire::PathAttributes>, out: &mut Outcome) {
        if let Some(lp) = self.local_pref {
            if attrs.local_pref != Some(lp) {
                attrs.to_mut().local_pref = Some(lp);
            }
        }
        if let Some(med) = self.med {
            out.med_set = true;
            if attrs.med != Some(med) {
                attrs.to_mut().med = Some(med);
            }
        }
        for c in &self.remove_communities {
            if attrs.communities.contains(c) {
                attrs.to_mut().communities.retain(|x| x != c);
            }
        }
        for c in &self.add_communities {
            if !attrs.communities.contains(c) {
                attrs.to_mut().communities.push(*c);
            }
        }
        for c in &self.remove_large_communities {
            if attrs.large_communities.contains(c) {
                attrs.to_mut().large_communities.retain(|x| x != c);
            }
        }
        for c in &self.add_large_communities {
            if !attrs.large_communities.contains(c) {
                attrs.to_mut().large_communities.push(*c);
            }
        }
        if let Some(n) = self.prepend_as_path {
            out.prepend = out.prepend.saturating_add(n);
        }
        if self.next_hop_self {
            out.next_hop_self = true;
        }
    }
}
