//! Rendering: the `KrouteConfig`s that select a Node become this node's
//! [`Config`]. Pure: the configs, the Node and a [`SecretSource`] in, a
//! config or an error naming the node, the config and the key out.
//!
//! 1. **Select**: a config applies when its `nodeSelector` (a Kubernetes
//!    LabelSelector: `matchLabels`, `matchExpressions` with `In`, `NotIn`,
//!    `Exists`, `DoesNotExist`) matches the Node's labels; no selector, or
//!    an empty one, selects every node.
//! 2. **Fill**: every string value may hold templates: `${node.name}`,
//!    `${node.internalIPv4}`, `${node.internalIPv6}` (the first
//!    `InternalIP` of that family in `status.addresses`),
//!    `${node.labels['KEY']}`, `${node.annotations['KEY']}`; `$${` is a
//!    literal `${`. A value that is one template and nothing else is then
//!    read as YAML reads a plain scalar, so `asn: ${node.labels['asn']}`
//!    with the label `"65001"` is the number 65001, as `asn: 65001` is in
//!    a file. A missing label, annotation or address is an error.
//! 3. **Merge** the selected configs, in name order:
//!    * `router`, `api`, `kernel`, `log`: set by one config only; two configs
//!      setting the same section conflict.
//!    * `peers`, `peerTemplates`, `policies`, `advertise`: concatenated. A
//!      peer, template or policy name defined twice (in one config or in
//!      two) conflicts. A peer may use a template of another config.
//! 4. **Check**: the merged document is read by the file's own parser and
//!    checks ([`crate::config::parse_with_secrets`]), so a config renders
//!    to exactly what the same YAML in a file gives; `passwordSecretRef`
//!    is resolved through the [`SecretSource`]. Errors found there are
//!    traced back to the config and the key path they came from.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use serde_json::{Map, Value};

use super::crd::KrouteConfig;
use super::selector::selector_matches;
use crate::config::{self, Config, SecretRef};

/// Secrets in kroute's namespace, for `peers[].passwordSecretRef`.
pub trait SecretSource {
    /// The value of `key` in Secret `name`, or why there is none (the
    /// message ends up in the [`RenderError`]).
    fn secret(&self, name: &str, key: &str) -> Result<String, String>;
}

/// `(secret name, key) -> value`.
impl SecretSource for BTreeMap<(String, String), String> {
    fn secret(&self, name: &str, key: &str) -> Result<String, String> {
        self.get(&(name.to_string(), key.to_string()))
            .cloned()
            .ok_or_else(|| format!("Secret {name:?} has no key {key:?} (or does not exist)"))
    }
}

/// For checking a manifest with no cluster at hand (`kroute config check
/// --node`): every Secret exists and holds a placeholder key, so the rest
/// of the config is checked and the key is never printed.
pub struct PlaceholderSecrets;

impl SecretSource for PlaceholderSecrets {
    fn secret(&self, _name: &str, _key: &str) -> Result<String, String> {
        Ok("<from the Secret>".to_string())
    }
}

/// A node's config and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub config: Config,
    /// The names of the `KrouteConfig`s that selected the node, in the
    /// order they were merged.
    pub configs: Vec<String>,
}

/// Why a node has no config: the node, the configs involved (one for a bad
/// value, two for a conflict, all selected ones for a problem of the
/// merged whole, none when nothing selects the node) and the key path
/// inside the config (`spec.router.asn`; in a conflict, inside the last
/// config named).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RenderError {
    pub node: String,
    pub configs: Vec<String>,
    /// Empty when the error is not about one key.
    pub path: String,
    pub message: String,
}

impl fmt::Display for RenderError {
    /// `KrouteConfig "fabric", node "n3": spec.router.asn: label 'kroute.io/asn' is missing`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted: Vec<String> = self.configs.iter().map(|c| format!("{c:?}")).collect();
        match quoted.as_slice() {
            [] => {}
            [one] => write!(f, "KrouteConfig {one}, ")?,
            [init @ .., last] => write!(f, "KrouteConfigs {} and {last}, ", init.join(", "))?,
        }
        write!(f, "node {:?}: ", self.node)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Render the configs that select `node` into its config. The order of
/// `configs` does not matter (they are merged in name order).
pub fn render(
    configs: &[KrouteConfig],
    node: &Node,
    secrets: &dyn SecretSource,
) -> Result<Rendered, RenderError> {
    let facts = NodeFacts::of(node);
    let mut sorted: Vec<&KrouteConfig> = configs.iter().collect();
    sorted.sort_by_key(|c| c.name_any());
    let mut selected = Vec::new();
    for c in sorted {
        if selects(c, node)? {
            selected.push(c);
        }
    }
    if selected.is_empty() {
        return Err(RenderError {
            node: facts.name.clone(),
            configs: Vec::new(),
            path: String::new(),
            message: "no KrouteConfig selects this node".to_string(),
        });
    }
    let mut merged = Merged::default();
    for c in &selected {
        let spec = filled_spec(c, &facts)?;
        merged.add(&c.name_any(), spec, &facts.name)?;
    }
    merged.check_names(&facts.name)?;
    let (doc, sources) = merged.into_document();
    let text = serde_yaml_ng::to_string(&doc).expect("JSON values always serialize to YAML");
    let lookup = |r: &SecretRef| secrets.secret(&r.name, &r.key);
    let config = config::parse_with_secrets(&text, "<rendered>", Some(&lookup))
        .map_err(|e| sources.trace(&facts.name, &e.path, &e.message))?;
    Ok(Rendered {
        config,
        configs: selected.iter().map(|c| c.name_any()).collect(),
    })
}

/// Whether `config`'s `nodeSelector` selects `node`; a malformed selector
/// is an error naming its key.
pub fn selects(config: &KrouteConfig, node: &Node) -> Result<bool, RenderError> {
    let Some(sel) = &config.spec.node_selector else {
        return Ok(true);
    };
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    selector_matches(sel, labels).map_err(|(path, message)| RenderError {
        node: node.name_any(),
        configs: vec![config.name_any()],
        path: format!("spec.nodeSelector{path}"),
        message,
    })
}

/// What templates may read from the Node.
struct NodeFacts {
    name: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    ipv4: Option<String>,
    ipv6: Option<String>,
}

impl NodeFacts {
    fn of(node: &Node) -> NodeFacts {
        let internal: Vec<IpAddr> = node
            .status
            .iter()
            .flat_map(|s| s.addresses.iter().flatten())
            .filter(|a| a.type_ == "InternalIP")
            .filter_map(|a| a.address.parse().ok())
            .collect();
        NodeFacts {
            name: node.name_any(),
            labels: node.labels().clone(),
            annotations: node.annotations().clone(),
            ipv4: internal.iter().find(|a| a.is_ipv4()).map(|a| a.to_string()),
            ipv6: internal.iter().find(|a| a.is_ipv6()).map(|a| a.to_string()),
        }
    }

    /// The value of one template expression (the text between `${` and `}`).
    fn lookup(&self, expr: &str) -> Result<String, String> {
        let expr = expr.trim();
        match expr {
            "node.name" => return Ok(self.name.clone()),
            "node.internalIPv4" => {
                return self
                    .ipv4
                    .clone()
                    .ok_or_else(|| "the node has no IPv4 InternalIP in status.addresses".into())
            }
            "node.internalIPv6" => {
                return self
                    .ipv6
                    .clone()
                    .ok_or_else(|| "the node has no IPv6 InternalIP in status.addresses".into())
            }
            _ => {}
        }
        for (prefix, what, map) in [
            ("node.labels[", "label", &self.labels),
            ("node.annotations[", "annotation", &self.annotations),
        ] {
            let Some(rest) = expr.strip_prefix(prefix) else {
                continue;
            };
            let key = rest
                .strip_suffix(']')
                .and_then(|q| unquote(q.trim()))
                .ok_or_else(|| {
                    format!("in ${{{expr}}}: write the {what} key quoted, {prefix}'KEY']")
                })?;
            return map
                .get(key)
                .cloned()
                .ok_or_else(|| format!("{what} '{key}' is missing"));
        }
        Err(format!(
            "unknown template ${{{expr}}} (expected node.name, node.internalIPv4, \
             node.internalIPv6, node.labels['KEY'] or node.annotations['KEY'])"
        ))
    }

    /// `s` with its templates filled in: a string, or when `s` is one
    /// template alone, the value YAML gives the result as a plain scalar.
    fn fill(&self, s: &str) -> Result<Value, String> {
        let mut out = String::new();
        let mut rest = s;
        let mut templates = 0;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            if let Some(after) = tail.strip_prefix("$${") {
                out.push_str("${");
                rest = after;
            } else if let Some(after) = tail.strip_prefix("${") {
                let end = after
                    .find('}')
                    .ok_or_else(|| format!("unterminated ${{ in {s:?}"))?;
                out.push_str(&self.lookup(&after[..end])?);
                templates += 1;
                rest = &after[end + 1..];
            } else {
                out.push('$');
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
        let whole = templates == 1 && s.starts_with("${") && s.ends_with('}') && {
            let inner = &s[2..s.len() - 1];
            !inner.contains('}') && !inner.contains("${")
        };
        if whole {
            if let Ok(v @ (Value::Number(_) | Value::Bool(_))) =
                serde_yaml_ng::from_str::<Value>(&out)
            {
                return Ok(v);
            }
        }
        Ok(Value::String(out))
    }
}

/// `'key'` or `"key"` without the quotes.
fn unquote(q: &str) -> Option<&str> {
    ['\'', '"'].into_iter().find_map(|c| {
        q.strip_prefix(c)
            .and_then(|k| k.strip_suffix(c))
            .filter(|k| !k.is_empty())
    })
}

/// Fill the templates in every string value below `v`; the error carries
/// the key path below `path`.
fn fill_value(v: &mut Value, path: &str, node: &NodeFacts) -> Result<(), (String, String)> {
    match v {
        Value::String(s) => *v = node.fill(s).map_err(|m| (path.to_string(), m))?,
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                fill_value(item, &format!("{path}[{i}]"), node)?;
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                fill_value(item, &format!("{path}.{k}"), node)?;
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// The sections of the config file, in the order the file has them.
const SECTIONS: [&str; 4] = ["router", "api", "kernel", "log"];
const LISTS: [&str; 6] = [
    "peers",
    "peerTemplates",
    "policies",
    "advertise",
    "domains",
    "bmp",
];

/// A config's sections with its templates filled, by section name.
fn filled_spec(c: &KrouteConfig, node: &NodeFacts) -> Result<Map<String, Value>, RenderError> {
    let s = &c.spec;
    let parts = [
        ("router", &s.router),
        ("api", &s.api),
        ("kernel", &s.kernel),
        ("log", &s.log),
        ("peers", &s.peers),
        ("peerTemplates", &s.peer_templates),
        ("policies", &s.policies),
        ("advertise", &s.advertise),
        ("domains", &s.domains),
        ("bmp", &s.bmp),
    ];
    let mut out = Map::new();
    for (key, value) in parts {
        let Some(value) = value.clone().filter(|v| !v.is_null()) else {
            continue;
        };
        let mut value = value;
        fill_value(&mut value, &format!("spec.{key}"), node).map_err(|(path, message)| {
            RenderError {
                node: node.name.clone(),
                configs: vec![c.name_any()],
                path,
                message,
            }
        })?;
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

/// Where an item of the merged document came from.
#[derive(Debug, Clone)]
struct Origin {
    config: String,
    /// Index in that config's list; None for a section.
    index: Option<usize>,
}

/// The selected configs merged so far.
#[derive(Default)]
struct Merged {
    /// The configs added, in order.
    configs: Vec<String>,
    sections: BTreeMap<&'static str, (String, Value)>,
    lists: BTreeMap<&'static str, Vec<(Origin, Value)>>,
}

impl Merged {
    fn add(
        &mut self,
        config: &str,
        mut spec: Map<String, Value>,
        node: &str,
    ) -> Result<(), RenderError> {
        self.configs.push(config.to_string());
        for key in SECTIONS {
            let Some(value) = spec.remove(key) else {
                continue;
            };
            if let Some((first, _)) = self.sections.get(key) {
                return Err(RenderError {
                    node: node.to_string(),
                    configs: vec![first.clone(), config.to_string()],
                    path: format!("spec.{key}"),
                    message: format!(
                        "both configs set `{key}` and select this node; only one may set it"
                    ),
                });
            }
            self.sections.insert(key, (config.to_string(), value));
        }
        for key in LISTS {
            let Some(value) = spec.remove(key) else {
                continue;
            };
            let Value::Array(items) = value else {
                return Err(RenderError {
                    node: node.to_string(),
                    configs: vec![config.to_string()],
                    path: format!("spec.{key}"),
                    message: "expected a list".to_string(),
                });
            };
            let list = self.lists.entry(key).or_default();
            for (i, item) in items.into_iter().enumerate() {
                let origin = Origin {
                    config: config.to_string(),
                    index: Some(i),
                };
                list.push((origin, item));
            }
        }
        Ok(())
    }

    /// Peer and policy names are unique across every selected config.
    fn check_names(&self, node: &str) -> Result<(), RenderError> {
        let lists = [
            ("peers", "peer"),
            ("peerTemplates", "template"),
            ("policies", "policy"),
        ];
        for (list, what) in lists {
            let mut seen: BTreeMap<&str, &Origin> = BTreeMap::new();
            for (origin, item) in self.lists.get(list).into_iter().flatten() {
                let Some(name) = item.get("name").and_then(Value::as_str) else {
                    continue; // the parser names the missing or odd key
                };
                let at = |o: &Origin| format!("spec.{list}[{}]", o.index.unwrap_or(0));
                if let Some(first) = seen.insert(name, origin) {
                    let (configs, elsewhere) = if first.config == origin.config {
                        (vec![origin.config.clone()], at(first))
                    } else {
                        (
                            vec![first.config.clone(), origin.config.clone()],
                            format!("KrouteConfig {:?} at {}", first.config, at(first)),
                        )
                    };
                    return Err(RenderError {
                        node: node.to_string(),
                        configs,
                        path: format!("{}.name", at(origin)),
                        message: format!("{what} name {name:?} is also defined by {elsewhere}"),
                    });
                }
            }
        }
        Ok(())
    }

    /// The merged document, and where each of its parts came from.
    fn into_document(self) -> (Value, Sources) {
        let mut doc = Map::new();
        let mut sources = Sources {
            all: self.configs,
            sections: BTreeMap::new(),
            lists: BTreeMap::new(),
        };
        for key in SECTIONS {
            if let Some((config, value)) = self.sections.get(key) {
                doc.insert(key.to_string(), value.clone());
                sources.sections.insert(key, config.clone());
            }
        }
        for key in LISTS {
            if let Some(items) = self.lists.get(key) {
                let (origins, values): (Vec<Origin>, Vec<Value>) = items.iter().cloned().unzip();
                doc.insert(key.to_string(), Value::Array(values));
                sources.lists.insert(key, origins);
            }
        }
        (Value::Object(doc), sources)
    }
}

/// Traces a key path of the merged document back to a config.
struct Sources {
    all: Vec<String>,
    sections: BTreeMap<&'static str, String>,
    lists: BTreeMap<&'static str, Vec<Origin>>,
}

impl Sources {
    /// The error the parser found at `path` of the merged document, as an
    /// error about the config that holds that key.
    fn trace(&self, node: &str, path: &str, message: &str) -> RenderError {
        let message = self.rewrite_refs(message);
        let (head, rest) = split_head(path);
        let error = |configs: Vec<String>, path: String, message: String| RenderError {
            node: node.to_string(),
            configs,
            path,
            message,
        };
        if let Some(config) = self.sections.get(head) {
            return error(vec![config.clone()], format!("spec.{path}"), message);
        }
        if let Some((list, index)) = parse_item(head) {
            if let Some(o) = self.lists.get(list).and_then(|l| l.get(index)) {
                let path = format!("spec.{list}[{}]{rest}", o.index.unwrap_or(0));
                return error(vec![o.config.clone()], path, message);
            }
        }
        if SECTIONS.contains(&head) && rest.is_empty() {
            // A required section that no selected config sets.
            return error(
                self.all.clone(),
                format!("spec.{head}"),
                format!("{message}: none of the configs that select this node sets it"),
            );
        }
        let path = if path.is_empty() {
            String::new()
        } else {
            format!("spec.{path}")
        };
        error(self.all.clone(), path, message)
    }

    /// `peers[3]` in a parser message (`peers[3] already has address ...`)
    /// as the config item it came from.
    fn rewrite_refs(&self, message: &str) -> String {
        let mut out = String::new();
        let mut rest = message;
        'scan: while !rest.is_empty() {
            for list in LISTS {
                let Some(tail) = rest.strip_prefix(list).and_then(|t| t.strip_prefix('[')) else {
                    continue;
                };
                let digits = tail.find(']').map(|e| &tail[..e]);
                if let Some(o) = digits
                    .and_then(|d| d.parse::<usize>().ok())
                    .and_then(|i| self.lists.get(list)?.get(i))
                {
                    let len = list.len() + 1 + digits.map_or(0, str::len) + 1;
                    out.push_str(&format!(
                        "KrouteConfig {:?} spec.{list}[{}]",
                        o.config,
                        o.index.unwrap_or(0)
                    ));
                    rest = &rest[len..];
                    continue 'scan;
                }
            }
            let ch = rest.chars().next().expect("not empty");
            out.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
        out
    }
}

/// `peers[3].asn` -> (`peers[3]`, `.asn`); `router.asn` -> (`router`, `.asn`).
fn split_head(path: &str) -> (&str, &str) {
    let end = path
        .find('.')
        .map(|dot| match path[..dot].find(']') {
            Some(b) => b + 1,
            None => dot,
        })
        .unwrap_or_else(|| path.find(']').map_or(path.len(), |b| b + 1));
    path.split_at(end)
}

/// `peers[3]` -> (`peers`, 3).
fn parse_item(head: &str) -> Option<(&'static str, usize)> {
    let (name, index) = head.strip_suffix(']')?.split_once('[')?;
    let list = LISTS.into_iter().find(|l| *l == name)?;
    Some((list, index.parse().ok()?))
}

#[cfg(test)]
mod tests;
