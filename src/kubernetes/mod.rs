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

pub mod crd;
pub mod manifest;
pub mod manifests;
pub mod render;
pub mod state;
