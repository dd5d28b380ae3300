//! Kubernetes mode (`kroute daemon --kubernetes`): the node's configuration
//! rendered from cluster-scoped `KrouteConfig` objects, pod CIDRs and
//! Service addresses advertised from the API, and the node's routing health
//! written back as a `KrouteNodeState`.
//!
//! Layout: `crd` (the `KrouteConfig` resource), `render` (a node's config
//! from the configs that select it), `manifest` (reading KrouteConfig and
//! Node manifests for `config check --node`), `manifests` (what `kroute
//! manifests` prints: CRDs, RBAC, DaemonSet), `state` (the
//! `KrouteNodeState` resource); the CRDs are generated from their types.
//! The daemon side: `client` (connecting), `watch` (the reflectors),
//! `run` (the task that renders, applies and advertises), `advertise`
//! (pure: pod CIDRs and Service addresses to originate), `cache` (the
//! last config on disk), `conditions` (the `Valid` condition), `secrets`
//! (the Secrets `passwordSecretRef` names, read by name), `node_state`
//! (this node's `KrouteNodeState`), `cilium` (the part of `CiliumNode`
//! kroute reads); `cluster_check` is `kroute cluster check`.

pub mod advertise;
pub mod cache;
pub mod cilium;
pub mod client;
pub mod cluster_check;
pub mod conditions;
pub mod crd;
pub mod manifest;
pub mod manifests;
pub mod node_state;
pub mod render;
pub mod run;
pub mod secrets;
pub mod selector;
pub mod state;
pub mod watch;

pub use run::{start, Cluster, Options};

use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

use crd::KrouteConfig;

/// The config for `node` from the `KrouteConfig`s that select it
/// ([`render::render`]), `passwordSecretRef` read from `secrets`.
pub fn render_for_node(
    configs: &[Arc<KrouteConfig>],
    node: &Node,
    secrets: &dyn render::SecretSource,
) -> Result<render::Rendered, render::RenderError> {
    let configs: Vec<KrouteConfig> = configs.iter().map(|c| KrouteConfig::clone(c)).collect();
    render::render(&configs, node, secrets)
}
