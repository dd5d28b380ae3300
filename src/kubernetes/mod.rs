//! Kubernetes mode (`kroute daemon --kubernetes`): the node's configuration
//! rendered from cluster-scoped `KrouteConfig` objects, pod CIDRs and
//! Service addresses advertised from the API, and the node's routing health
//! written back as a `KrouteNodeState`.
//!
//! Layout: `crd` (the `KrouteConfig` resource), `render` (a node's config
//! from the configs that select it), `state` (the
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
pub mod node_state;
pub mod render;
pub mod run;
pub mod state;
pub mod watch;

pub use run::{start, Cluster, Options};

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Secret};
use kube::ResourceExt;

use crd::KrouteConfig;

/// The config for `node` from the `KrouteConfig`s that select it
/// ([`render::render`]), `passwordSecretRef` read from `secrets`.
pub fn render_for_node(
    configs: &[Arc<KrouteConfig>],
    node: &Node,
    secrets: &[Arc<Secret>],
) -> Result<render::Rendered, render::RenderError> {
    let configs: Vec<KrouteConfig> = configs.iter().map(|c| KrouteConfig::clone(c)).collect();
    render::render(&configs, node, &Secrets(secrets))
}

/// The Secrets the watcher holds (kroute's namespace only).
struct Secrets<'a>(&'a [Arc<Secret>]);

impl render::SecretSource for Secrets<'_> {
    fn secret(&self, name: &str, key: &str) -> Result<String, String> {
        let secret = self
            .0
            .iter()
            .find(|s| s.name_any() == name)
            .ok_or_else(|| format!("no Secret {name:?} in kroute's namespace"))?;
        if let Some(v) = secret.string_data.as_ref().and_then(|d| d.get(key)) {
            return Ok(v.clone());
        }
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .ok_or_else(|| format!("Secret {name:?} has no key {key:?}"))?;
        String::from_utf8(bytes.0.clone())
            .map_err(|_| format!("Secret {name:?} key {key:?} is not UTF-8 text"))
    }
}
