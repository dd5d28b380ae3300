//! Reading manifests from YAML text, for `kroute config check FILE --node
//! NODE_YAML`: the `KrouteConfig`s of FILE (one or several documents, or a
//! `kind: List` as `kubectl get krouteconfigs -o yaml` prints it) and the
//! Node (`kubectl get node NAME -o yaml`). Errors name the file, the
//! document and the key path.

use k8s_openapi::api::core::v1::Node;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_yaml_ng::Value;

use super::crd::KrouteConfig;

const API_VERSION: &str = "kroute.io/v1alpha1";

/// Whether `text` holds Kubernetes objects (some document has a `kind`)
/// rather than a config file (which has no such key).
pub fn is_manifest(text: &str) -> bool {
    serde_yaml_ng::Deserializer::from_str(text).any(|doc| {
        Value::deserialize(doc)
            .ok()
            .is_some_and(|v| v.get("kind").is_some())
    })
}

/// The documents of `text` that are not empty, with their index.
fn documents(text: &str, file: &str) -> Result<Vec<(usize, Value)>, String> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let v = Value::deserialize(doc)
            .map_err(|e| format!("{file}: document {}: YAML syntax error: {e}", i + 1))?;
        if !v.is_null() {
            out.push((i, v));
        }
    }
    Ok(out)
}

/// Where an object is in the file: its document (0-based) and, in a
/// `kind: List`, its index in `items`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub document: usize,
    pub item: Option<usize>,
}

impl Origin {
    /// `FILE:LINE:COLUMN` of key path `path` inside this object (of the
    /// deepest node on the way when the key is absent; just `FILE` when
    /// even that cannot be found).
    pub fn place(&self, text: &str, file: &str, path: &str) -> String {
        let path = match self.item {
            Some(i) if path.is_empty() => format!("items[{i}]"),
            Some(i) => format!("items[{i}].{path}"),
            None => path.to_string(),
        };
        match crate::config::position(text, self.document, &path) {
            Some((line, column)) => format!("{file}:{line}:{column}"),
            None => file.to_string(),
        }
    }

    /// `document 2` or `document 1, items[3]`.
    fn describe(&self) -> String {
        match self.item {
            Some(j) => format!("document {}, items[{j}]", self.document + 1),
            None => format!("document {}", self.document + 1),
        }
    }
}

/// `v` as a `T`; the error is placed at its key.
fn typed<T: DeserializeOwned>(
    v: Value,
    text: &str,
    file: &str,
    origin: Origin,
    what: &str,
) -> Result<T, String> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let place = origin.place(text, file, &path);
        let key = if path.is_empty() {
            String::new()
        } else {
            format!(" {path}:")
        };
        format!("{place}: {what}:{key} {}", e.into_inner())
    })
}

fn str_of<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// Every `KrouteConfig` in `text` and where it is; any other kind, or a
/// name given twice, is an error.
pub fn configs(text: &str, file: &str) -> Result<Vec<(KrouteConfig, Origin)>, String> {
    let mut items = Vec::new();
    for (document, doc) in documents(text, file)? {
        if str_of(&doc, "kind") == Some("List") {
            let list = doc.get("items").and_then(Value::as_sequence).cloned();
            for (j, item) in list.unwrap_or_default().into_iter().enumerate() {
                let item_origin = Origin {
                    document,
                    item: Some(j),
                };
                items.push((item_origin, item));
            }
        } else {
            let origin = Origin {
                document,
                item: None,
            };
            items.push((origin, doc));
        }
    }
    let mut configs: Vec<(KrouteConfig, Origin)> = Vec::new();
    for (origin, item) in items {
        let what = origin.describe();
        let at = |path: &str| format!("{}: {what}", origin.place(text, file, path));
        let (kind, version) = (str_of(&item, "kind"), str_of(&item, "apiVersion"));
        if kind != Some("KrouteConfig") || version != Some(API_VERSION) {
            return Err(format!(
                "{}: expected apiVersion {API_VERSION}, kind KrouteConfig (found {}, {})",
                at("kind"),
                version.unwrap_or("no apiVersion"),
                kind.unwrap_or("no kind")
            ));
        }
        let c: KrouteConfig = typed(item, text, file, origin, &what)?;
        let name = c.metadata.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(format!("{}: metadata.name is missing", at("metadata")));
        }
        if configs
            .iter()
            .any(|(o, _)| o.metadata.name.as_deref() == Some(&name))
        {
            return Err(format!(
                "{}: KrouteConfig {name:?} is given twice",
                at("metadata.name")
            ));
        }
        configs.push((c, origin));
    }
    if configs.is_empty() {
        return Err(format!("{file}: no KrouteConfig in the file"));
    }
    Ok(configs)
}

/// The one Node in `text`.
pub fn node(text: &str, file: &str) -> Result<Node, String> {
    let mut docs = documents(text, file)?;
    if docs.len() != 1 {
        return Err(format!(
            "{file}: expected one Node (kubectl get node NAME -o yaml), found {} documents",
            docs.len()
        ));
    }
    let (document, doc) = docs.remove(0);
    if str_of(&doc, "kind") != Some("Node") {
        return Err(format!(
            "{file}: expected kind Node, found {}",
            str_of(&doc, "kind").unwrap_or("no kind")
        ));
    }
    let origin = Origin {
        document,
        item: None,
    };
    let node: Node = typed(doc, text, file, origin, "Node")?;
    if node.metadata.name.as_deref().unwrap_or_default().is_empty() {
        return Err(format!("{file}: metadata.name is missing"));
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "apiVersion: kroute.io/v1alpha1\nkind: KrouteConfig\nmetadata: { name: a }\nspec: {}\n---\n\
                       apiVersion: kroute.io/v1alpha1\nkind: KrouteConfig\nmetadata: { name: b }\nspec: {}\n";

    #[test]
    fn several_documents_or_a_list_give_the_configs() {
        assert!(is_manifest(TWO));
        assert!(!is_manifest("router: { asn: 1, routerId: 10.0.0.1 }\n"));
        let names = |cs: Vec<(KrouteConfig, Origin)>| -> Vec<String> {
            cs.into_iter()
                .filter_map(|(c, _)| c.metadata.name)
                .collect()
        };
        assert_eq!(names(configs(TWO, "f.yaml").unwrap()), ["a", "b"]);
        let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: kroute.io/v1alpha1\n  kind: KrouteConfig\n  metadata: { name: c }\n  spec: {}\n";
        assert_eq!(names(configs(list, "f.yaml").unwrap()), ["c"]);
    }

    #[test]
    fn other_kinds_bad_keys_and_duplicates_are_named() {
        let e = configs(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n",
            "f.yaml",
        )
        .unwrap_err();
        assert!(
            e.starts_with("f.yaml:2:7: document 1: expected apiVersion kroute.io/v1alpha1"),
            "{e}"
        );
        let bad = TWO.replace(
            "metadata: { name: b }\nspec: {}",
            "metadata: { name: b }\nspec: { nodeSelector: { matchLabels: [] } }",
        );
        let e = configs(&bad, "f.yaml").unwrap_err();
        assert!(
            e.starts_with("f.yaml:9:38: document 2: spec.nodeSelector.matchLabels: "),
            "{e}"
        );
        let e = configs(&TWO.replace("name: b", "name: a"), "f.yaml").unwrap_err();
        assert!(e.contains("\"a\" is given twice"), "{e}");
    }

    #[test]
    fn the_node_file_holds_one_node() {
        let n = node(
            "apiVersion: v1\nkind: Node\nmetadata: { name: n1 }\n",
            "n.yaml",
        )
        .unwrap();
        assert_eq!(n.metadata.name.as_deref(), Some("n1"));
        let e = node(TWO, "n.yaml").unwrap_err();
        assert!(e.contains("found 2 documents"), "{e}");
        let e = node(
            "apiVersion: v1\nkind: Node\nmetadata: { name: n1 }\nstatus: { addresses: 3 }\n",
            "n.yaml",
        )
        .unwrap_err();
        assert!(
            e.starts_with("n.yaml:4:22: Node: status.addresses: "),
            "{e}"
        );
    }
}
