//! The Secrets `peers[].passwordSecretRef` names, read by name in kroute's
//! namespace: the RBAC of `kroute manifests` lets kroute `get` exactly
//! those (no list, no watch). Read again when the configs change and every
//! [`REFRESH`] (a rotated key is picked up); a Secret that cannot be read
//! while the API server is away keeps its last value.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use tracing::warn;

use super::crd::KrouteConfig;
use super::render::SecretSource;

/// How often the named Secrets are read again.
pub const REFRESH: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct Secrets {
    /// By name; absent: not there (`get` said 404) or never read.
    read: BTreeMap<String, Secret>,
    /// The names the configs had at the last read, and when.
    last: Option<(BTreeSet<String>, Instant)>,
}

/// The Secret names the configs' `passwordSecretRef`s give, taken as
/// written (the RBAC's `resourceNames` must name them too).
pub fn names(configs: &[Arc<KrouteConfig>]) -> BTreeSet<String> {
    configs
        .iter()
        .flat_map(|c| c.spec.peers.iter())
        .filter_map(|peers| peers.as_array())
        .flatten()
        .filter_map(|p| p.get("passwordSecretRef")?.get("name")?.as_str())
        .map(String::from)
        .collect()
}

impl Secrets {
    /// Read the named Secrets when the names changed or [`REFRESH`] has
    /// passed. True when a read happened (the config may render
    /// differently).
    pub async fn refresh(
        &mut self,
        client: &kube::Client,
        namespace: &str,
        configs: &[Arc<KrouteConfig>],
    ) -> bool {
        let wanted = names(configs);
        let due = match &self.last {
            None => true,
            Some((names, at)) => *names != wanted || at.elapsed() >= REFRESH,
        };
        if !due {
            return false;
        }
        let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
        self.read.retain(|name, _| wanted.contains(name));
        for name in &wanted {
            match api.get_opt(name).await {
                Ok(Some(s)) => {
                    self.read.insert(name.clone(), s);
                }
                Ok(None) => {
                    self.read.remove(name);
                }
                Err(e) => {
                    warn!(secret = %name, %namespace, "cannot read the Secret (keeping what was read before): {e}");
                }
            }
        }
        self.last = Some((wanted, Instant::now()));
        true
    }
}

impl SecretSource for Secrets {
    fn secret(&self, name: &str, key: &str) -> Result<String, String> {
        let secret = self
            .read
            .get(name)
            .ok_or_else(|| format!("no Secret {name:?} in kroute's namespace (or kroute may not read it: `kroute manifests --secret {name}`)"))?;
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
