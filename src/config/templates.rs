//! Peer templates: `peerTemplates: [{ name, ...peer keys }]` and
//! `peers[].template: NAME`.
//!
//! Expansion works on the YAML document before it is read as a [`Config`]:
//! a peer that names a template gets every key of the template it does not
//! set itself (a key the peer sets replaces the template's value whole, and
//! any of `password`, `passwordFile`, `passwordSecretRef` on the peer
//! replaces all three of the template's). The expanded document has no
//! `peerTemplates` and no `template` keys, so everything after it (the
//! checks, `config check --print`, the reload diff) sees plain peers, as if
//! each had been written out in full.
//!
//! Working on the document rather than on a typed template keeps every
//! peer key usable in a template without a second, all-optional copy of
//! [`Peer`]; a template's values are checked by reading the template as a
//! peer (with stand-ins for the keys only a peer has), so a bad value is
//! reported at the template's own line.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use super::error::{ConfigError, KeyPath, Seg};
use super::schema::{Config, Peer};

const TEMPLATES: &str = "peerTemplates";
const TEMPLATE: &str = "template";

/// Keys only a peer has: what makes it one session.
const PEER_ONLY: [&str; 3] = ["address", "interface", TEMPLATE];

/// The TCP-MD5 key's sources: a peer giving one replaces all of the
/// template's (they exclude each other).
const PASSWORD_KEYS: [&str; 3] = ["password", "passwordFile", "passwordSecretRef"];

/// The document `text` with its templates expanded, if it uses any; `None`
/// when it has neither `peerTemplates` nor a peer with `template` (or is not
/// a plain YAML mapping: the ordinary parse reports why).
pub(super) fn expand(text: &str, file: &str) -> Option<Result<Expanded, ConfigError>> {
    let doc = match serde_yaml_ng::from_str::<Value>(text) {
        Ok(Value::Mapping(doc)) => doc,
        Ok(_) => return None,
        // A YAML mapping value refuses a key given twice, without a key
        // path: find it with one (else `peerTemplates` would look unknown).
        Err(_) => return unique_keys(text, file).err().map(Err),
    };
    let uses_templates = doc.contains_key(TEMPLATES)
        || peers_of(&doc).any(|p| p.as_mapping().is_some_and(|m| m.contains_key(TEMPLATE)))
        || ranges_of(&doc).next().is_some();
    if !uses_templates {
        return None;
    }
    Some(Expansion::of(doc, text, file))
}

/// Every mapping of `text` has each key once.
fn unique_keys(text: &str, file: &str) -> Result<(), ConfigError> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize::<_, UniqueKeys>(de)
        .map(|_| ())
        .map_err(|e| ConfigError::from_serde(file, text, e))
}

/// Walks a document, failing at the second occurrence of a key in a
/// mapping (with serde's "duplicate field" wording, as the typed parse).
struct UniqueKeys;

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen: Vec<Value> = Vec::new();
        while let Some(key) = map.next_key::<Value>()? {
            if seen.contains(&key) {
                let name = key
                    .as_str()
                    .map_or_else(|| format!("{key:?}"), str::to_string);
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate field `{name}`"
                )));
            }
            map.next_value::<UniqueKeys>()?;
            seen.push(key);
        }
        Ok(UniqueKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeys)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(UniqueKeys)
    }
    fn visit_none<E>(self) -> Result<Self, E> {
        Ok(UniqueKeys)
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, e: A) -> Result<Self, A::Error> {
        use serde::de::VariantAccess;
        let (_, v) = e.variant::<Value>()?;
        v.newtype_variant::<UniqueKeys>()
    }
}

/// A name as YAML gives it: `nodes`, or a plain `65001` read as a string
/// (as a peer's `name` is).
fn name_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn peers_of(doc: &Mapping) -> impl Iterator<Item = &Value> {
    doc.get("peers")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
}

/// `router.listen.ranges`: dynamic neighbors, each naming a template.
fn ranges_of(doc: &Mapping) -> impl Iterator<Item = &Value> {
    doc.get("router")
        .and_then(|r| r.get("listen"))
        .and_then(|l| l.get("ranges"))
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
}

fn ranges_path(i: usize) -> KeyPath {
    KeyPath::default()
        .key("router")
        .key("listen")
        .key("ranges")
        .index(i)
}

/// A document with its templates expanded, and where each expanded peer's
/// keys came from (to place errors about them).
pub(super) struct Expanded {
    /// The expanded document as YAML, for the ordinary parser.
    pub(super) text: String,
    /// By peer index: the template it uses and the keys it took from it.
    used: BTreeMap<usize, Use>,
    /// By `router.listen.ranges` index: the template its `peer` is.
    ranges: BTreeMap<usize, usize>,
}

struct Use {
    template: usize,
    name: String,
    keys: Vec<String>,
}

struct Expansion<'a> {
    text: &'a str,
    file: &'a str,
}

impl Expansion<'_> {
    fn of(mut doc: Mapping, text: &str, file: &str) -> Result<Expanded, ConfigError> {
        let x = Expansion { text, file };
        let templates = match doc.remove(TEMPLATES) {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => x.templates(v)?,
        };
        let mut used = BTreeMap::new();
        if let Some(Value::Sequence(peers)) = doc.get_mut("peers") {
            for (i, peer) in peers.iter_mut().enumerate() {
                if let Some(u) = x.apply(i, peer, &templates)? {
                    used.insert(i, u);
                }
            }
        }
        let mut ranges = BTreeMap::new();
        let listen = doc.get_mut("router").and_then(|r| r.get_mut("listen"));
        if let Some(Value::Sequence(list)) = listen.and_then(|l| l.get_mut("ranges")) {
            for (i, range) in list.iter_mut().enumerate() {
                if let Some(t) = x.apply_range(i, range, &templates)? {
                    ranges.insert(i, t);
                }
            }
        }
        let text = serde_yaml_ng::to_string(&doc).expect("YAML values always serialize");
        Ok(Expanded { text, used, ranges })
    }

    fn error(&self, path: &KeyPath, message: String) -> ConfigError {
        ConfigError::at(self.file, self.text, path, message)
    }

    /// The templates by name, in file order, their keys checked.
    fn templates(&self, list: Value) -> Result<Vec<(String, Mapping)>, ConfigError> {
        let root = KeyPath::default().key(TEMPLATES);
        let Value::Sequence(list) = list else {
            return Err(self.error(&root, "expected a list of peer templates".to_string()));
        };
        let mut out: Vec<(String, Mapping)> = Vec::new();
        for (i, t) in list.into_iter().enumerate() {
            let path = root.index(i);
            let Value::Mapping(t) = t else {
                return Err(self.error(
                    &path,
                    "expected a mapping of peer keys with a `name`".to_string(),
                ));
            };
            let name = match t.get("name").map(name_of) {
                Some(Some(name)) => name,
                Some(None) => {
                    let m = "a template name is a string".to_string();
                    return Err(self.error(&path.key("name"), m));
                }
                None => {
                    let m = "required key is missing".to_string();
                    return Err(self.error(&path.key("name"), m));
                }
            };
            super::validate::check_name(&path.key("name"), "template", &name)
                .map_err(|(p, m)| self.error(&p, m))?;
            if let Some(first) = out.iter().position(|(n, _)| *n == name) {
                return Err(self.error(
                    &path.key("name"),
                    format!("template {name:?} is already defined at {TEMPLATES}[{first}]"),
                ));
            }
            for key in PEER_ONLY {
                if t.contains_key(key) {
                    let why = if key == TEMPLATE {
                        "templates do not nest"
                    } else {
                        "it belongs to each peer"
                    };
                    return Err(self.error(
                        &path.key(key),
                        format!("`{key}` is not allowed in a template: {why}"),
                    ));
                }
            }
            out.push((name, t));
        }
        self.check_values(&out)?;
        Ok(out)
    }

    /// Read every template as a peer, with stand-ins for the keys a template
    /// may leave to its peers, so that a bad key or value is an error at the
    /// template (also when no peer uses it).
    fn check_values(&self, templates: &[(String, Mapping)]) -> Result<(), ConfigError> {
        #[derive(Deserialize)]
        struct AsPeers {
            #[serde(rename = "peerTemplates")]
            _templates: Vec<Peer>,
        }
        let stand_ins = [
            ("address", Value::String("192.0.2.1".to_string())),
            ("asn", Value::Number(64512.into())),
        ];
        let probes: Vec<Value> = templates
            .iter()
            .map(|(_, t)| {
                let mut t = t.clone();
                for (key, value) in &stand_ins {
                    if !t.contains_key(*key) {
                        t.insert(Value::String(key.to_string()), value.clone());
                    }
                }
                Value::Mapping(t)
            })
            .collect();
        let mut doc = Mapping::new();
        doc.insert(TEMPLATES.into(), Value::Sequence(probes));
        let text = serde_yaml_ng::to_string(&doc).expect("YAML values always serialize");
        let de = serde_yaml_ng::Deserializer::from_str(&text);
        serde_path_to_error::deserialize::<_, AsPeers>(de)
            .map(|_| ())
            .map_err(|e| ConfigError::from_serde_derived(self.file, self.text, e))
    }

    /// Range `i`: its `template` becomes `peer`, the template's keys as
    /// one passive peer (the address a stand-in: each connection brings
    /// its own). Returns the template's index.
    fn apply_range(
        &self,
        i: usize,
        range: &mut Value,
        templates: &[(String, Mapping)],
    ) -> Result<Option<usize>, ConfigError> {
        let Value::Mapping(m) = range else {
            return Ok(None); // the parser says what a range is
        };
        let path = ranges_path(i);
        let Some(wanted) = m.remove(TEMPLATE) else {
            if m.contains_key("peer") {
                return Ok(None); // as `config check --print` writes it
            }
            return Err(self.error(
                &path.key(TEMPLATE),
                "required key is missing: the name of the peer template dynamic neighbors from this range are built from".to_string(),
            ));
        };
        let path = path.key(TEMPLATE);
        if m.contains_key("peer") {
            return Err(self.error(
                &path,
                "give `template` or `peer` (what `config check --print` writes for it), not both"
                    .to_string(),
            ));
        }
        let Some(wanted) = name_of(&wanted) else {
            return Err(self.error(&path, "expected a template name".to_string()));
        };
        let Some(index) = templates.iter().position(|(n, _)| *n == wanted) else {
            return Err(self.error(&path, undefined(&wanted, templates)));
        };
        let mut peer = templates[index].1.clone();
        if !peer.contains_key("asn") {
            return Err(self.error(
                &path,
                format!("template {wanted:?} has no `asn`: dynamic neighbors take theirs from the template (a number, `external` or `internal`)"),
            ));
        }
        // The prefix's own address as the stand-in (the parser checks
        // the prefix itself).
        let address = m
            .get("prefix")
            .and_then(Value::as_str)
            .and_then(|p| p.parse::<ipnet::IpNet>().ok())
            .map_or("192.0.2.1".to_string(), |p| p.network().to_string());
        peer.insert("name".into(), Value::String(wanted));
        peer.insert("address".into(), Value::String(address));
        // Dynamic neighbors only ever accept (they have no address to
        // connect to).
        peer.insert("passive".into(), Value::Bool(true));
        m.insert("peer".into(), Value::Mapping(peer));
        Ok(Some(index))
    }

    /// Expand peer `i` if it names a template.
    fn apply(
        &self,
        i: usize,
        peer: &mut Value,
        templates: &[(String, Mapping)],
    ) -> Result<Option<Use>, ConfigError> {
        let Value::Mapping(m) = peer else {
            return Ok(None); // the parser says what a peer is
        };
        let Some(wanted) = m.remove(TEMPLATE) else {
            return Ok(None);
        };
        let path = KeyPath::default().key("peers").index(i).key(TEMPLATE);
        let Some(wanted) = name_of(&wanted) else {
            return Err(self.error(&path, "expected a template name".to_string()));
        };
        let Some(index) = templates.iter().position(|(n, _)| *n == wanted) else {
            return Err(self.error(&path, undefined(&wanted, templates)));
        };
        let own_password = PASSWORD_KEYS.iter().any(|k| m.contains_key(*k));
        let mut keys = Vec::new();
        for (key, value) in &templates[index].1 {
            let Some(k) = key.as_str() else { continue };
            let skip =
                k == "name" || m.contains_key(k) || (own_password && PASSWORD_KEYS.contains(&k));
            if !skip {
                m.insert(key.clone(), value.clone());
                keys.push(k.to_string());
            }
        }
        Ok(Some(Use {
            template: index,
            name: wanted,
            keys,
        }))
    }
}

/// Template `wanted` is not among `templates`: which are.
fn undefined(wanted: &str, templates: &[(String, Mapping)]) -> String {
    let defined = if templates.is_empty() {
        format!("no {TEMPLATES} are defined")
    } else {
        let names: Vec<&str> = templates.iter().map(|(n, _)| n.as_str()).collect();
        format!("defined: {}", names.join(", "))
    };
    format!("template {wanted:?} is not defined ({defined})")
}

impl Expanded {
    /// An error about the expanded document, placed in the file: one about
    /// a key a peer took from its template is reported at the template's
    /// key, naming the peer.
    pub(super) fn place(
        &self,
        err: ConfigError,
        text: &str,
        config: Option<&Config>,
    ) -> ConfigError {
        let path = KeyPath::parse(&err.path);
        if let Some(e) = self.place_range(&err, &path, text) {
            return e;
        }
        let (Some(Seg::Key(list)), Some(Seg::Index(i)), Some(Seg::Key(key))) =
            (path.0.first(), path.0.get(1), path.0.get(2))
        else {
            return err;
        };
        let Some(u) = self
            .used
            .get(i)
            .filter(|u| list == "peers" && u.keys.contains(key))
        else {
            return err;
        };
        let mut at = KeyPath::default().key(TEMPLATES).index(u.template);
        at.0.extend(path.0[2..].iter().cloned());
        let peer = config
            .and_then(|c| c.peers.get(*i))
            .map_or(String::new(), |p| format!("peer {:?} ", p.name));
        ConfigError::at(
            &err.file,
            text,
            &at,
            format!(
                "in {peer}(peers[{i}], template {:?}): {}",
                u.name, err.message
            ),
        )
    }

    /// An error in a range's `peer` (made from a template) is placed at
    /// the template's key; errors about a key the range's `peer` does not
    /// take from its template (name, address, passive) at the range.
    fn place_range(&self, err: &ConfigError, path: &KeyPath, text: &str) -> Option<ConfigError> {
        let [Seg::Key(r), Seg::Key(l), Seg::Key(list), Seg::Index(i), Seg::Key(peer), rest @ ..] =
            path.0.as_slice()
        else {
            return None;
        };
        if (r.as_str(), l.as_str(), list.as_str(), peer.as_str())
            != ("router", "listen", "ranges", "peer")
        {
            return None;
        }
        let template = *self.ranges.get(i)?;
        let mut at = KeyPath::default().key(TEMPLATES).index(template);
        at.0.extend(rest.iter().cloned());
        Some(ConfigError::at(
            &err.file,
            text,
            &at,
            format!(
                "in router.listen.ranges[{i}] (dynamic neighbors): {}",
                err.message
            ),
        ))
    }
}
