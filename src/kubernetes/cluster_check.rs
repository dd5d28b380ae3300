//! `kroute cluster check`: every node's `KrouteNodeState` read, printed
//! as the matrix of nodes (rows: where the route should be installed) ×
//! pod CIDRs (columns: whose CIDR), ✓ or the reason it is missing. Exit
//! status 1 when any pair is missing (or a node has no state yet).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use kube::api::ListParams;
use kube::{Api, ResourceExt};
use serde::Serialize;

use super::state::KrouteNodeState;
use crate::output::Output;

/// One node's view of one other node's pod CIDR.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pair {
    /// Where the route should be.
    pub node: String,
    /// Whose CIDR it is.
    pub owner: String,
    #[serde(rename = "podCIDR")]
    pub pod_cidr: String,
    pub installed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The pairs the states say, plus one missing pair per (node, CIDR) that a
/// node's state does not mention at all (a node with no state, or one
/// that does not know the CIDR).
pub fn pairs(states: &[KrouteNodeState]) -> Vec<Pair> {
    // Every advertised CIDR, by owner.
    let mut cidrs: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for s in states {
        let st = s.status.clone().unwrap_or_default();
        for c in &st.advertised_pod_cidrs {
            cidrs
                .entry(c.clone())
                .or_insert_with(|| (s.name_any(), Vec::new()));
        }
        for r in &st.pod_routes {
            cidrs
                .entry(r.pod_cidr.clone())
                .or_insert_with(|| (r.node.clone(), Vec::new()));
        }
    }
    let mut out = Vec::new();
    for s in states {
        let name = s.name_any();
        let st = s.status.clone().unwrap_or_default();
        for (cidr, (owner, _)) in &cidrs {
            if *owner == name {
                continue;
            }
            let pair = match st.pod_routes.iter().find(|r| &r.pod_cidr == cidr) {
                Some(r) => Pair {
                    node: name.clone(),
                    owner: owner.clone(),
                    pod_cidr: cidr.clone(),
                    installed: r.installed,
                    reason: if r.installed { None } else { r.reason.clone() },
                },
                None => Pair {
                    node: name.clone(),
                    owner: owner.clone(),
                    pod_cidr: cidr.clone(),
                    installed: false,
                    reason: Some(
                        "not in this node's state (no route, or the state is not written yet)"
                            .into(),
                    ),
                },
            };
            out.push(pair);
        }
    }
    out
}

/// The matrix as text: a row per node, a column per pod CIDR, and the
/// reasons listed under it.
pub fn matrix(states: &[KrouteNodeState], pairs: &[Pair]) -> String {
    let mut columns: Vec<(String, String)> = pairs
        .iter()
        .map(|p| (p.owner.clone(), p.pod_cidr.clone()))
        .collect();
    columns.sort();
    columns.dedup();
    let mut header = vec!["NODE".to_string()];
    header.extend(columns.iter().map(|(o, c)| format!("{c} ({o})")));
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for s in states {
        let name = s.name_any();
        let mut row = vec![name.clone()];
        for (owner, cidr) in &columns {
            let cell = if *owner == name {
                "-".to_string()
            } else {
                match pairs.iter().find(|p| p.node == name && &p.pod_cidr == cidr) {
                    Some(p) if p.installed => "✓".to_string(),
                    Some(p) => {
                        notes.push(format!(
                            "{name}: {cidr} of {owner}: {}",
                            p.reason.as_deref().unwrap_or("missing")
                        ));
                        format!("✗ [{}]", notes.len())
                    }
                    None => "?".to_string(),
                }
            };
            row.push(cell);
        }
        rows.push(row);
    }
    let headers: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut out = crate::output::table(&headers, rows);
    for (i, n) in notes.iter().enumerate() {
        out.push_str(&format!("[{}] {n}\n", i + 1));
    }
    let missing = pairs.iter().filter(|p| !p.installed).count();
    out.push_str(&if missing == 0 {
        format!("all {} pairs installed\n", pairs.len())
    } else {
        format!("{missing} of {} pairs missing\n", pairs.len())
    });
    out
}

/// The command.
pub fn main(kubeconfig: Option<&Path>, output: Output) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kroute: {e}");
            return ExitCode::FAILURE;
        }
    };
    let states = rt.block_on(async {
        let client = match kubeconfig {
            Some(p) => super::client::connect(Some(p)).await?,
            None => kube::Client::try_default()
                .await
                .map_err(|e| format!("Kubernetes client: {e}"))?,
        };
        let api: Api<KrouteNodeState> = Api::all(client);
        api.list(&ListParams::default())
            .await
            .map(|l| l.items)
            .map_err(|e| format!("cannot list KrouteNodeStates: {e}"))
    });
    let mut states = match states {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kroute cluster check: {e}");
            return ExitCode::from(2);
        }
    };
    states.sort_by_key(|s| s.name_any());
    let pairs = pairs(&states);
    match output {
        Output::Json => {
            let v = serde_json::json!({
                "nodes": states.iter().map(|s| s.name_any()).collect::<Vec<_>>(),
                "pairs": pairs,
                "missing": pairs.iter().filter(|p| !p.installed).count(),
            });
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        Output::Table => print!("{}", matrix(&states, &pairs)),
    }
    if states.is_empty() {
        eprintln!(
            "kroute cluster check: no KrouteNodeStates (is kroute running with --kubernetes?)"
        );
        return ExitCode::FAILURE;
    }
    if pairs.iter().all(|p| p.installed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::state::{KrouteNodeStateSpec, KrouteNodeStateStatus, PodRoute};

    fn state(name: &str, own: &str, routes: &[(&str, &str, Option<&str>)]) -> KrouteNodeState {
        let mut s = KrouteNodeState::new(
            name,
            KrouteNodeStateSpec {
                node_name: name.into(),
            },
        );
        s.status = Some(KrouteNodeStateStatus {
            advertised_pod_cidrs: vec![own.into()],
            pod_routes: routes
                .iter()
                .map(|(node, cidr, reason)| PodRoute {
                    node: node.to_string(),
                    pod_cidr: cidr.to_string(),
                    installed: reason.is_none(),
                    next_hops: Vec::new(),
                    reason: reason.map(String::from),
                })
                .collect(),
            ..Default::default()
        });
        s
    }

    #[test]
    fn a_missing_pair_is_named_with_its_reason() {
        let states = vec![
            state("a", "10.244.0.0/24", &[("b", "10.244.1.0/24", None)]),
            state(
                "b",
                "10.244.1.0/24",
                &[("a", "10.244.0.0/24", Some("no path: nothing received"))],
            ),
        ];
        let p = pairs(&states);
        assert_eq!(p.len(), 2);
        let text = matrix(&states, &p);
        assert!(text.contains("✓"), "{text}");
        assert!(
            text.contains("b: 10.244.0.0/24 of a: no path: nothing received"),
            "{text}"
        );
        assert!(text.contains("1 of 2 pairs missing"), "{text}");
    }

    #[test]
    fn a_node_without_a_word_on_a_cidr_counts_as_missing() {
        let states = vec![
            state("a", "10.244.0.0/24", &[]),
            state("b", "10.244.1.0/24", &[]),
        ];
        let p = pairs(&states);
        assert_eq!(p.iter().filter(|p| !p.installed).count(), 2);
    }
}
