//! `kroute config check` warnings: configs that are valid but almost
//! surely not what the operator meant. They never fail the check.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use rib::policy::PolicyChain;

/// One warning, placed like a config error: file, line, key path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigWarning {
    /// The key path, as errors print it (`peers[1].import`).
    pub key: String,
    /// 1-based line of the key (or of the nearest enclosing key present).
    pub line: Option<usize>,
    pub message: String,
}

/// The warnings for `c`, read from `text` (the file it was parsed from, to
/// place them).
pub fn warnings(c: &Config, text: &str) -> Vec<ConfigWarning> {
    let mut out = Vec::new();
    let mut warn = |key: String, message: String| {
        let line = crate::config::position(text, 0, &key).map(|(line, _)| line);
        out.push(ConfigWarning { key, line, message });
    };
    for (i, p) in c.peers.iter().enumerate() {
        if !p.is_ibgp(c.router.asn) {
            // RFC 8212 §3: with no policy an eBGP speaker neither accepts
            // nor sends routes.
            for (key, chain, what) in [
                ("import", &p.import, "accepted from it"),
                ("export", &p.export, "sent to it"),
            ] {
                if *chain == PolicyChain::Unset {
                    warn(
                        format!("peers[{i}].{key}"),
                        format!(
                            "eBGP peer {:?} has no {key} policy: no route is {what} (RFC 8212); \
                             set `{key}: all` or name a policy",
                            p.name
                        ),
                    );
                }
            }
        }
        if p.passive && c.router.listen.is_none() {
            warn(
                format!("peers[{i}].passive"),
                format!(
                    "peer {:?} is passive (waits to be connected to) but router.listen is null \
                     (no listener): its session can never come up",
                    p.name
                ),
            );
        }
    }
    let importing = c.peers.iter().filter(|p| imports_something(c, p)).count();
    if c.router.max_paths > 1 && importing < 2 {
        warn(
            "router.maxPaths".to_string(),
            format!(
                "maxPaths is {} but only {importing} peer(s) may give a path: a route never has \
                 more than one, so there is no multipath",
                c.router.max_paths
            ),
        );
    }
    out
}

/// The peer's import may accept a route (each peer gives at most one path
/// per prefix).
fn imports_something(c: &Config, p: &crate::config::Peer) -> bool {
    match &p.import {
        PolicyChain::None => false,
        PolicyChain::Unset => p.is_ibgp(c.router.asn),
        PolicyChain::All | PolicyChain::Named(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Vec<ConfigWarning> {
        let c = crate::config::parse(yaml, "t.yaml").unwrap();
        warnings(&c, yaml)
    }

    #[test]
    fn ebgp_without_policy_passive_without_listener_and_lone_multipath_warn() {
        let yaml = "router:\n  asn: 65000\n  routerId: 10.0.0.1\n  listen: null\n  maxPaths: 4\n\
                    peers:\n  - name: tor\n    address: 192.0.2.1\n    asn: 65101\n    passive: true\n";
        let w = check(yaml);
        let keys: Vec<&str> = w.iter().map(|w| w.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "peers[0].import",
                "peers[0].export",
                "peers[0].passive",
                "router.maxPaths"
            ]
        );
        assert!(w[0].message.contains("RFC 8212"), "{}", w[0].message);
        // Absent keys are placed at their peer's entry; present ones on
        // their own line.
        assert_eq!(w[0].line, Some(7));
        assert_eq!(w[2].line, Some(10));
        assert_eq!(w[3].line, Some(5));
    }

    #[test]
    fn a_sensible_config_has_none() {
        let yaml = "router: { asn: 65000, routerId: 10.0.0.1, maxPaths: 2 }\n\
                    peers:\n  - { name: a, address: 192.0.2.1, asn: 65101, import: all, export: all }\n\
                    \x20 - { name: b, address: 192.0.2.2, asn: 65000, passive: true }\n";
        assert_eq!(check(yaml), []);
    }
}
