//! The last config rendered for this node and the prefixes the API gave
//! it, kept on the node's disk (`--state-dir`, default `/var/lib/kroute`).
//! When the API server is unreachable at start, kroute starts from here:
//! a Kubernetes outage must never withdraw a route.
//!
//! One JSON file, `kubernetes-cache.json`, written whole to a temporary
//! file and renamed (a crash never leaves half a cache), mode 0600 (the
//! config may hold TCP-MD5 keys read from Secrets).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use wire::{Community, LargeCommunity, Prefix};

use crate::config::{self, Config};

const FILE: &str = "kubernetes-cache.json";

/// What was last applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Cached {
    pub config: Config,
    pub originations: Vec<rib::Origination>,
    /// When it was written (seconds since the epoch).
    pub written_at: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OnDisk {
    node: String,
    written_at: u64,
    /// The canonical YAML (`Config::to_yaml`): read back by the config
    /// parser, so a cache is checked like any config.
    config: String,
    /// The values of the Secrets the config names (`passwordSecretRef`):
    /// a start from the cache has no API to read them from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    secrets: Vec<SecretOnDisk>,
    originations: Vec<OriginationOnDisk>,
}

#[derive(Serialize, Deserialize)]
struct SecretOnDisk {
    name: String,
    key: String,
    value: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OriginationOnDisk {
    prefix: Prefix,
    #[serde(default)]
    communities: Vec<Community>,
    #[serde(default)]
    large_communities: Vec<LargeCommunity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    local_pref: Option<u32>,
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// Write the cache for `node`.
pub fn store(
    state_dir: &Path,
    node: &str,
    config: &Config,
    originations: &[rib::Origination],
) -> Result<(), String> {
    let disk = OnDisk {
        node: node.to_string(),
        written_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        config: config.to_yaml(),
        secrets: config
            .peers
            .iter()
            .filter_map(|p| {
                let r = p.password_secret_ref.as_ref()?;
                let key = p.password.as_ref()?;
                Some(SecretOnDisk {
                    name: r.name.clone(),
                    key: r.key.clone(),
                    value: String::from_utf8_lossy(key.as_bytes()).into_owned(),
                })
            })
            .collect(),
        originations: originations
            .iter()
            .map(|o| OriginationOnDisk {
                prefix: o.prefix,
                communities: o.communities.clone(),
                large_communities: o.large_communities.clone(),
                local_pref: o.local_pref,
            })
            .collect(),
    };
    let text = serde_json::to_vec_pretty(&disk).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(state_dir).map_err(|e| format!("{}: {e}", state_dir.display()))?;
    let final_path = path(state_dir);
    let tmp = state_dir.join(format!("{FILE}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(&text)
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &final_path).map_err(|e| format!("{}: {e}", final_path.display()))
}

/// Read the cache; `Ok(None)` when there is none. A cache written for
/// another node is an error (a copied state directory).
pub fn load(state_dir: &Path, node: &str) -> Result<Option<Cached>, String> {
    let p = path(state_dir);
    let text = match std::fs::read(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", p.display())),
    };
    let disk: OnDisk =
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", p.display()))?;
    if disk.node != node {
        return Err(format!(
            "{}: written for node {:?}, this is {node:?}",
            p.display(),
            disk.node
        ));
    }
    let secrets = |r: &config::SecretRef| {
        disk.secrets
            .iter()
            .find(|s| s.name == r.name && s.key == r.key)
            .map(|s| s.value.clone())
            .ok_or_else(|| format!("Secret {}/{} is not in the cache", r.name, r.key))
    };
    let config = config::parse_with_secrets(
        &disk.config,
        &format!("{} (config)", p.display()),
        Some(&secrets),
    )
    .map_err(|e| e.to_string())?;
    Ok(Some(Cached {
        config,
        originations: disk
            .originations
            .into_iter()
            .map(|o| rib::Origination {
                prefix: o.prefix,
                communities: o.communities,
                large_communities: o.large_communities,
                local_pref: o.local_pref,
            })
            .collect(),
        written_at: disk.written_at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_cache_reads_back_for_its_node_only() {
        let dir = std::env::temp_dir().join(format!("kroute-cache-test-{}", std::process::id()));
        let config = config::parse(
            "router: { asn: 65001, routerId: 10.0.0.1 }\nadvertise: [{ podCIDRs: true }]\n",
            "t.yaml",
        )
        .unwrap();
        let o = vec![rib::Origination {
            prefix: "10.244.1.0/24".parse().unwrap(),
            communities: Vec::new(),
            large_communities: Vec::new(),
            local_pref: Some(200),
        }];
        store(&dir, "w1", &config, &o).unwrap();
        // It may hold TCP-MD5 keys.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path(&dir)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let back = load(&dir, "w1").unwrap().unwrap();
        assert_eq!(back.config, config);
        assert_eq!(back.originations, o);
        assert!(load(&dir, "w2")
            .unwrap_err()
            .contains("written for node \"w1\""));
        assert!(load(&dir.join("none"), "w1").unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A node whose TCP-MD5 key comes from a Secret must be able to start
    /// from the cache while the API is away: the key is kept with it.
    #[test]
    fn a_cached_config_with_a_secret_password_reads_back_with_its_key() {
        let dir = std::env::temp_dir().join(format!("kroute-cache-secret-{}", std::process::id()));
        let yaml = "router: { asn: 65001, routerId: 10.0.0.1 }\npeers:\n  - name: tor\n    address: 10.0.0.2\n    asn: 65000\n    passwordSecretRef: { name: bgp, key: tor }\n";
        let secrets = |r: &config::SecretRef| {
            assert_eq!((r.name.as_str(), r.key.as_str()), ("bgp", "tor"));
            Ok("s3cret".to_string())
        };
        let config = config::parse_with_secrets(yaml, "t.yaml", Some(&secrets)).unwrap();
        store(&dir, "w1", &config, &[]).unwrap();
        let back = load(&dir, "w1").unwrap().unwrap();
        assert_eq!(back.config, config);
        let key = back.config.peers[0].password.as_ref().expect("the key");
        assert_eq!(key.as_bytes(), b"s3cret");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
