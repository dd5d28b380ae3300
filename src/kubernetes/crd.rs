//! The custom resources of group `kroute.io`. The CRDs `kroute manifests`
//! prints are generated from these types.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One configuration for every node it selects. Its sections are those of
/// the configuration file (see the README's config reference); any value
/// may be a template filled from the Node (`${node.name}`,
/// `${node.internalIPv4}`, `${node.labels['key']}`, ...), which is why the
/// CRD leaves the sections' shape to kroute: an ASN written as
/// `${node.labels['asn']}` is a string until it is rendered for a node.
#[derive(CustomResource, Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "kroute.io",
    version = "v1alpha1",
    kind = "KrouteConfig",
    shortname = "kcfg",
    status = "KrouteConfigStatus",
    printcolumn = r#"{"name":"Valid","type":"string","jsonPath":".status.conditions[?(@.type==\"Valid\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Valid\")].reason"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Valid\")].message"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
// Unknown keys are refused, as in the file: the API server prunes them
// (structural schema), but `kroute config check` reads the manifest itself.
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KrouteConfigSpec {
    /// The nodes this config applies to; absent: every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<LabelSelector>,
    /// The file's `router` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub router: Option<serde_json::Value>,
    /// The file's `api` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub api: Option<serde_json::Value>,
    /// The file's `kernel` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub kernel: Option<serde_json::Value>,
    /// The file's `log` section. The log starts before the first config
    /// is rendered, so in Kubernetes mode it takes `--log-format` (the
    /// DaemonSet's args); this section is read and checked like the file's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub log: Option<serde_json::Value>,
    /// The file's `peers` list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_list")]
    pub peers: Option<serde_json::Value>,
    /// The file's `peerTemplates` list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_list")]
    pub peer_templates: Option<serde_json::Value>,
    /// The file's `policies` list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_list")]
    pub policies: Option<serde_json::Value>,
    /// The file's `advertise` list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_list")]
    pub advertise: Option<serde_json::Value>,
    /// The file's `domains` list (routing domains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_list")]
    pub domains: Option<serde_json::Value>,
    /// The file's `bmp` list (BMP collectors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_list")]
    pub bmp: Option<serde_json::Value>,
}

/// What the nodes found when they rendered this config.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KrouteConfigStatus {
    /// `Valid` (and others): a bad value or a conflict names the node and
    /// the key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

fn any_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

fn any_list(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": { "type": "object", "x-kubernetes-preserve-unknown-fields": true }
    })
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::*;

    #[test]
    fn the_config_crd_is_cluster_scoped_in_group_kroute_io() {
        let crd = KrouteConfig::crd();
        assert_eq!(crd.spec.group, "kroute.io");
        assert_eq!(crd.spec.scope, "Cluster");
        assert_eq!(crd.spec.names.kind, "KrouteConfig");
    }
}
