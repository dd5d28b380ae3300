//! The part of Cilium's `CiliumNode` (cilium.io/v2, cluster-scoped, one per
//! node, named after it) that kroute reads: `spec.ipam.podCIDRs`, which
//! Cilium's cluster-pool IPAM fills (leaving `Node.spec.podCIDRs` empty).
//! Every other field is ignored, so any Cilium version's objects decode.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[kube(group = "cilium.io", version = "v2", kind = "CiliumNode")]
#[serde(rename_all = "camelCase")]
pub struct CiliumNodeSpec {
    #[serde(default)]
    pub ipam: CiliumIpamSpec,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CiliumIpamSpec {
    /// The pod CIDRs allocated to this node.
    #[serde(default, rename = "podCIDRs")]
    pub pod_cidrs: Vec<String>,
}
