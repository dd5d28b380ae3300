//! `KrouteNodeState`: one per node (named after it, owned by its Node),
//! the node's routing health as kroute sees it.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The node this state describes.
#[derive(CustomResource, Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "kroute.io",
    version = "v1alpha1",
    kind = "KrouteNodeState",
    shortname = "kns",
    status = "KrouteNodeStateStatus",
    printcolumn = r#"{"name":"Sessions","type":"string","jsonPath":".status.sessionsSummary"}"#,
    printcolumn = r#"{"name":"Pod routes","type":"string","jsonPath":".status.podRoutesSummary"}"#,
    printcolumn = r#"{"name":"Config","type":"string","jsonPath":".status.conditions[?(@.type==\"Valid\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct KrouteNodeStateSpec {
    /// The Node's name (also this object's name).
    pub node_name: String,
}

/// The node's sessions and routes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KrouteNodeStateStatus {}
