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

/// The documents of `text` that are not empty.
fn documents(text: &str, file: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let v = Value::deserialize(doc)
            .map_err(|e| format!("{file}: document {}: YAML syntax error: {e}", i + 1))?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

fn typed<T: DeserializeOwned>(v: Value, at: &str) -> Result<T, String> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            format!("{at}: {}", e.into_inner())
        } else {
            format!("{at}: {path}: {}", e.into_inner())
        }
    })
}

fn str_of<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// Every `KrouteConfig` in `text`; any other kind, or a name given twice,
/// is an error.
pub fn configs(text: &str, file: &str) -> Result<Vec<KrouteConfig>, String> {
    let mut items = Vec::new();
    for (i, doc) in documents(text, file)?.into_iter().enumerate() {
        let at = format!("{file}: document {}", i + 1);
        if str_of(&doc, "kind") == Some("List") {
            let list = doc.get("items").and_then(Value::as_sequence).cloned();
            for (j, item) in list.unwrap_or_default().into_iter().enumerate() {
                items.push((format!("{at}: items[{j}]"), item));
            }
        } else {
            items.push((at, doc));
        }
    }
    let mut configs: Vec<KrouteConfig> = Vec::new();
    for (at, item) in items {
        let (kind, version) = (str_of(&item, "kind"), str_of(&item, "apiVersion"));
        if kind != Some("KrouteConfig") || version != Some(API_VERSION) {
            return Err(format!(
                "{at}: expected apiVersion {API_VERSION}, kind KrouteConfig (found {}, {})",
                version.unwrap_or("no apiVersion"),
                kind.unwrap_or("no kind")
            ));
        }
        let c: KrouteConfig = typed(item, &at)?;
        let name = c.metadata.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(format!("{at}: metadata.name is missing"));
        }
        if configs
            .iter()
            .any(|o| o.metadata.name.as_deref() == Some(&name))
        {
            return Err(format!("{at}: KrouteConfig {name:?} is given twice"));
        }
        configs.push(c);
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
    let doc = docs.remove(0);
    if str_of(&doc, "kind") != Some("Node") {
        return Err(format!(
            "{file}: expected kind Node, found {}",
            str_of(&doc, "kind").unwrap_or("no kind")
        ));
    }
    let node: Node = typed(doc, file)?;
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
        let names = |cs: Vec<KrouteConfig>| -> Vec<String> {
            cs.into_iter().filter_map(|c| c.metadata.name).collect()
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
            e.starts_with("f.yaml: document 1: expected apiVersion kroute.io/v1alpha1"),
            "{e}"
        );
        let bad = TWO.replace(
            "metadata: { name: b }\nspec: {}",
            "metadata: { name: b }\nspec: { nodeSelector: { matchLabels: [] } }",
        );
        let e = configs(&bad, "f.yaml").unwrap_err();
        assert!(
            e.starts_with("f.yaml: document 2: spec.nodeSelector.matchLabels: "),
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
        assert!(e.starts_with("n.yaml: status.addresses: "), "{e}");
    }
}
