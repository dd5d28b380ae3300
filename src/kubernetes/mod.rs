//! Kubernetes mode (`kroute daemon --kubernetes`): the node's configuration
//! rendered from cluster-scoped `KrouteConfig` objects, pod CIDRs and
//! Service addresses advertised from the API, and the node's routing health
//! written back as a `KrouteNodeState`.
//!
//! Layout: `crd` (the `KrouteConfig` resource), `state` (the
//! `KrouteNodeState` resource); the CRDs are generated from their types.
//! The daemon side: `client` (connecting), `watch` (the reflectors),
//! `run` (the task that renders, applies and advertises), `advertise`
//! (pure: pod CIDRs and Service addresses to originate), `cache` (the
//! last config on disk), `conditions` (the `Valid` condition), `cilium`
//! (the part of `CiliumNode` kroute reads).

pub mod advertise;
pub mod cache;
pub mod cilium;
pub mod client;
pub mod cluster_check;
pub mod conditions;
pub mod crd;
pub mod run;
pub mod state;
pub mod watch;

pub use run::{start, Cluster, Options};

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Secret};
use kube::ResourceExt;

use crate::config::{self, Config};
use crd::KrouteConfig;

/// The config for `node` from the `KrouteConfig`s that select it.
///
/// Interim, until the renderer (`render.rs`: templates, conflicts,
/// `passwordSecretRef`) is merged: exactly one selecting config, its
/// sections taken as they are.
pub fn render_for_node(
    configs: &[Arc<KrouteConfig>],
    node: &Node,
    _secrets: &[Arc<Secret>],
) -> Result<Config, String> {
    let selecting: Vec<&Arc<KrouteConfig>> = configs
        .iter()
        .filter(|c| {
            c.spec
                .node_selector
                .as_ref()
                .is_none_or(|s| advertise::selector_matches(s, node.labels()))
        })
        .collect();
    let cfg = match selecting.as_slice() {
        [] => return Err(format!("no KrouteConfig selects node {}", node.name_any())),
        [one] => one,
        many => {
            return Err(format!(
                "several KrouteConfigs select node {}: {}",
                node.name_any(),
                many.iter()
                    .map(|c| c.name_any())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    };
    let mut doc = serde_json::Map::new();
    let s = &cfg.spec;
    for (key, v) in [
        ("router", &s.router),
        ("api", &s.api),
        ("kernel", &s.kernel),
        ("peers", &s.peers),
        ("policies", &s.policies),
        ("advertise", &s.advertise),
    ] {
        if let Some(v) = v {
            doc.insert(key.to_string(), v.clone());
        }
    }
    let yaml = serde_yaml_ng::to_string(&doc).map_err(|e| e.to_string())?;
    config::parse(&yaml, &format!("KrouteConfig {}", cfg.name_any())).map_err(|e| e.to_string())
}
