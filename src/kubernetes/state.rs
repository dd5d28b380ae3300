//! `KrouteNodeState`: one per node (named after it, owned by its Node),
//! the node's routing health as kroute sees it. Written by the node's
//! kroute (`node_state.rs`), read by `kroute cluster check` and
//! `kubectl get kroutenodestates`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
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
pub struct KrouteNodeStateStatus {
    /// `Valid`: the cluster's config rendered and applied on this node.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// "2/3 Established".
    #[serde(default)]
    pub sessions_summary: String,
    /// "5/6 installed".
    #[serde(default)]
    pub pod_routes_summary: String,
    #[serde(default)]
    pub sessions: Vec<SessionState>,
    /// The pod CIDRs this node advertises.
    #[serde(default, rename = "advertisedPodCIDRs")]
    pub advertised_pod_cidrs: Vec<String>,
    /// Every other node's pod CIDRs, as this node's kernel has them.
    #[serde(default)]
    pub pod_routes: Vec<PodRoute>,
}

/// One BGP session.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionState {
    pub peer: String,
    pub address: String,
    /// The BGP FSM state (`Established`, `Active`, ...).
    pub state: String,
    /// Seconds Established (absent when not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_seconds: Option<u64>,
    pub prefixes_received: u64,
    pub prefixes_accepted: u64,
    pub prefixes_advertised: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Another node's pod CIDR in this node's kernel.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodRoute {
    /// The node the CIDR belongs to.
    pub node: String,
    #[serde(rename = "podCIDR")]
    pub pod_cidr: String,
    pub installed: bool,
    /// The kernel route's next hops, when installed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_hops: Vec<String>,
    /// Why not, as `kroute explain` says it, when missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
