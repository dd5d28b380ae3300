//! This node's `KrouteNodeState`: its sessions, the pod CIDRs it
//! advertises, and every other node's pod CIDRs as its kernel has them
//! (next hops) or why not (what `kroute explain` says). Built from the
//! router task's API views ([`status`] is pure), written at most every
//! [`MIN_INTERVAL`] and only when something but an uptime changed (or
//! once a minute, to refresh the uptimes).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use super::state::{
    KrouteNodeState, KrouteNodeStateSpec, KrouteNodeStateStatus, PodRoute, SessionState,
};
use crate::api::views::{ExplainView, FibEntryView, NeighborView};
use crate::events::{ApiCall, ApiSender, Request, Response};

/// The state is written at most this often.
pub const MIN_INTERVAL: Duration = Duration::from_secs(2);
/// ... and at least this often (uptimes).
const REFRESH: Duration = Duration::from_secs(60);

/// Another node's pod CIDR and what this node's router says of it.
pub struct OtherCidr {
    pub node: String,
    pub cidr: IpNet,
    /// `explain`'s summary, asked only when the FIB has no installed route.
    pub explain: Option<ExplainView>,
}

/// The status, from the views (pure).
pub fn status(
    neighbors: &[NeighborView],
    fib: &[FibEntryView],
    others: &[OtherCidr],
    advertised: &[IpNet],
    condition: Condition,
) -> KrouteNodeStateStatus {
    let sessions: Vec<SessionState> = neighbors
        .iter()
        .map(|n| {
            let up = n.state == crate::events::SessionState::Established;
            SessionState {
                peer: n.name.clone(),
                address: n.address.to_string(),
                state: n.state.to_string(),
                uptime_seconds: up.then_some(n.uptime_seconds),
                prefixes_received: n.prefixes_received as u64,
                prefixes_accepted: n.prefixes_accepted as u64,
                prefixes_advertised: n.prefixes_advertised as u64,
                last_error: n.last_error.clone(),
            }
        })
        .collect();
    // A missing route's likeliest cause, named beside the RIB's word.
    let down: Vec<String> = sessions
        .iter()
        .filter(|s| s.state != "Established")
        .map(|s| format!("{} ({})", s.peer, s.state))
        .collect();
    let down_note = if down.is_empty() {
        String::new()
    } else {
        format!("; sessions not Established: {}", down.join(", "))
    };
    let pod_routes: Vec<PodRoute> = others
        .iter()
        .map(|o| {
            let entry = fib.iter().find(|e| e.prefix == o.cidr);
            match entry {
                Some(e) if e.status == "installed" => PodRoute {
                    node: o.node.clone(),
                    pod_cidr: o.cidr.to_string(),
                    installed: true,
                    next_hops: e.kernel_next_hops.clone(),
                    reason: None,
                },
                _ => PodRoute {
                    node: o.node.clone(),
                    pod_cidr: o.cidr.to_string(),
                    installed: false,
                    next_hops: Vec::new(),
                    reason: Some(format!("{}{down_note}", reason(entry, o.explain.as_ref()))),
                },
            }
        })
        .collect();
    let up = sessions.iter().filter(|s| s.state == "Established").count();
    let installed = pod_routes.iter().filter(|r| r.installed).count();
    KrouteNodeStateStatus {
        conditions: vec![condition],
        sessions_summary: format!("{up}/{} Established", sessions.len()),
        pod_routes_summary: format!("{installed}/{} installed", pod_routes.len()),
        sessions,
        advertised_pod_cidrs: advertised.iter().map(|p| p.to_string()).collect(),
        pod_routes,
    }
}

/// Why a pod CIDR is not installed: the FIB's word when it has the
/// prefix, else `explain`'s summary.
fn reason(entry: Option<&FibEntryView>, explain: Option<&ExplainView>) -> String {
    if let Some(e) = entry {
        return match &e.detail {
            Some(d) => format!("kernel: {}: {d}", e.status),
            None => format!("kernel: {}", e.status),
        };
    }
    match explain {
        Some(x) => x.explanation.summary.clone(),
        None => "not in the RIB".to_string(),
    }
}

/// The status without what changes by itself (uptimes), to decide
/// whether a write is due.
fn settled(s: &KrouteNodeStateStatus) -> KrouteNodeStateStatus {
    let mut s = s.clone();
    for x in &mut s.sessions {
        x.uptime_seconds = x.uptime_seconds.map(|_| 0);
    }
    for c in &mut s.conditions {
        c.last_transition_time = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        );
    }
    s
}

pub struct Publisher {
    node: String,
    /// What was last written, and when.
    written: Option<(KrouteNodeStateStatus, Instant)>,
    /// The condition's last transition (kept while its status stays).
    condition: Option<Condition>,
}

impl Publisher {
    pub fn new(node: &str) -> Publisher {
        Publisher {
            node: node.to_string(),
            written: None,
            condition: None,
        }
    }

    /// Whether a write may happen now (rate limit).
    pub fn due(&self) -> bool {
        self.written
            .as_ref()
            .is_none_or(|(_, at)| at.elapsed() >= MIN_INTERVAL)
    }

    /// Gather the views and write the state if it changed. `others`: every
    /// other node's pod CIDRs; `advertised`: this node's.
    pub async fn publish(
        &mut self,
        client: &kube::Client,
        router: &ApiSender,
        node: &Node,
        others: Vec<(String, IpNet)>,
        advertised: Vec<IpNet>,
        condition: Condition,
    ) {
        if !self.due() {
            return;
        }
        let Some(neighbors) = ask::<Vec<NeighborView>>(router, Request::Neighbors).await else {
            return;
        };
        let Some(fib) = ask::<Vec<FibEntryView>>(
            router,
            Request::Fib {
                prefix: None,
                domain: None,
            },
        )
        .await
        else {
            return;
        };
        let installed: BTreeMap<IpNet, &FibEntryView> = fib.iter().map(|e| (e.prefix, e)).collect();
        let mut cidrs = Vec::new();
        for (owner, cidr) in others {
            let explain = if installed
                .get(&cidr)
                .is_some_and(|e| e.status == "installed")
            {
                None
            } else {
                let req = Request::Explain {
                    prefix: cidr.to_string(),
                    domain: None,
                };
                ask::<ExplainView>(router, req).await
            };
            cidrs.push(OtherCidr {
                node: owner,
                cidr,
                explain,
            });
        }
        // Keep the transition time while the condition's status stays.
        let condition = match &self.condition {
            Some(c) if c.status == condition.status && c.message == condition.message => c.clone(),
            _ => condition,
        };
        self.condition = Some(condition.clone());
        let st = status(&neighbors, &fib, &cidrs, &advertised, condition);
        if let Some((last, at)) = &self.written {
            if settled(last) == settled(&st) && at.elapsed() < REFRESH {
                return;
            }
        }
        match write(client, node, &st).await {
            Ok(()) => self.written = Some((st, Instant::now())),
            Err(e) => warn!(node = %self.node, "cannot write KrouteNodeState: {e}"),
        }
    }
}

/// Ask the router task; `None` (logged) when it is gone or refuses.
async fn ask<T: serde::de::DeserializeOwned>(router: &ApiSender, request: Request) -> Option<T> {
    let (reply, answer) = oneshot::channel();
    router.send(ApiCall { request, reply }).await.ok()?;
    match answer.await.ok()? {
        Response::Ok(v) => serde_json::from_value(v)
            .map_err(|e| debug!("node state: unexpected answer: {e}"))
            .ok(),
        Response::Error(e) => {
            debug!("node state: {e}");
            None
        }
    }
}

/// Create the object (owned by the Node, so it goes with it) if needed,
/// then replace its status.
async fn write(
    client: &kube::Client,
    node: &Node,
    status: &KrouteNodeStateStatus,
) -> Result<(), kube::Error> {
    let api: Api<KrouteNodeState> = Api::all(client.clone());
    let name = node.name_any();
    if api.get_opt(&name).await?.is_none() {
        let mut obj = KrouteNodeState::new(
            &name,
            KrouteNodeStateSpec {
                node_name: name.clone(),
            },
        );
        obj.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: name.clone(),
            uid: node.uid().unwrap_or_default(),
            controller: Some(false),
            block_owner_deletion: None,
        }]);
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    let patch = serde_json::json!({ "status": status });
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fib_entry(prefix: &str, status: &str, hops: &[&str]) -> FibEntryView {
        FibEntryView {
            prefix: prefix.parse().unwrap(),
            bgp_next_hops: hops.iter().map(|h| h.to_string()).collect(),
            kernel_next_hops: hops.iter().map(|h| format!("via {h} dev eth0")).collect(),
            status: status.into(),
            detail: None,
        }
    }

    fn condition() -> Condition {
        super::super::conditions::Conditions::new("a").condition()
    }

    #[test]
    fn installed_cidrs_carry_next_hops_and_missing_ones_a_reason() {
        let fib = vec![
            fib_entry("10.244.2.0/24", "installed", &["10.99.0.254"]),
            fib_entry("10.244.3.0/24", "next hop unresolved", &["10.5.0.1"]),
        ];
        let others = vec![
            OtherCidr {
                node: "b".into(),
                cidr: "10.244.2.0/24".parse().unwrap(),
                explain: None,
            },
            OtherCidr {
                node: "c".into(),
                cidr: "10.244.3.0/24".parse().unwrap(),
                explain: None,
            },
            OtherCidr {
                node: "d".into(),
                cidr: "10.244.4.0/24".parse().unwrap(),
                explain: None,
            },
        ];
        let s = status(
            &[],
            &fib,
            &others,
            &["10.244.1.0/24".parse().unwrap()],
            condition(),
        );
        assert!(s.pod_routes[0].installed);
        assert_eq!(s.pod_routes[0].next_hops, ["via 10.99.0.254 dev eth0"]);
        assert_eq!(
            s.pod_routes[1].reason.as_deref(),
            Some("kernel: next hop unresolved")
        );
        assert_eq!(s.pod_routes[2].reason.as_deref(), Some("not in the RIB"));
        assert_eq!(s.pod_routes_summary, "1/3 installed");
        assert_eq!(s.advertised_pod_cidrs, ["10.244.1.0/24"]);
    }
}
