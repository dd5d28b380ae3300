//! This node's verdict on its config, written as the `Valid` condition of
//! the `KrouteConfig`s that select it (and kept for the node's state).
//!
//! Many nodes share one `KrouteConfig`, and a condition type appears once
//! in a status: a node that fails writes `Valid=False` with its name in the
//! message; a node that renders fine sets `Valid=True` again only where
//! the `False` names it, so one healthy node never hides another's error.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use tracing::{info, warn};

use super::crd::KrouteConfig;
use super::watch::Watches;

pub const VALID: &str = "Valid";

pub struct Conditions {
    node: String,
    /// `None`: the config rendered and applied; else why not.
    problem: Option<String>,
    /// What was last written to the API server.
    published: Option<Option<String>>,
}

impl Conditions {
    pub fn new(node: &str) -> Conditions {
        Conditions {
            node: node.to_string(),
            problem: None,
            published: None,
        }
    }

    pub fn set_valid(&mut self) {
        if self.problem.take().is_some() {
            info!(node = %self.node, "the cluster's config is valid again");
        }
    }

    pub fn set_invalid(&mut self, message: String) {
        if self.problem.as_ref() != Some(&message) {
            warn!(node = %self.node, "cluster config not applied, still running the last good one: {message}");
            self.problem = Some(message);
        }
    }

    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// The node's own condition (for its `KrouteNodeState`).
    pub fn condition(&self) -> Condition {
        self.make(self.problem.clone())
    }

    fn make(&self, problem: Option<String>) -> Condition {
        let (status, reason, message) = match problem {
            None => (
                "True",
                "Applied",
                format!("node {}: rendered and applied", self.node),
            ),
            Some(p) => (
                "False",
                "NotApplied",
                format!("node {}: {p} (running the last good config)", self.node),
            ),
        };
        Condition {
            type_: VALID.to_string(),
            status: status.to_string(),
            reason: reason.to_string(),
            message,
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
            observed_generation: None,
        }
    }

    /// Write the condition to the configs that select this node, when it
    /// changed since the last write.
    pub async fn publish(&mut self, client: &kube::Client, watches: &Watches) {
        if self.published.as_ref() == Some(&self.problem) {
            return;
        }
        let Some(node) = watches
            .nodes
            .objects()
            .into_iter()
            .find(|n| n.name_any() == self.node)
        else {
            return;
        };
        let api: Api<KrouteConfig> = Api::all(client.clone());
        let prefix = format!("node {}:", self.node);
        for cfg in watches.configs.objects() {
            let selected = super::render::selects(&cfg, &node).unwrap_or(true);
            if !selected {
                continue;
            }
            let current = cfg
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == VALID));
            let ours = current.is_some_and(|c| c.message.starts_with(&prefix));
            let write = match &self.problem {
                Some(_) => true,
                // Clear only our own error (or set the first verdict).
                None => current.is_none() || (ours && current.is_some_and(|c| c.status == "False")),
            };
            if !write {
                continue;
            }
            let mut conditions: Vec<Condition> = cfg
                .status
                .iter()
                .flat_map(|s| s.conditions.iter())
                .filter(|c| c.type_ != VALID)
                .cloned()
                .collect();
            conditions.push(self.make(self.problem.clone()));
            let patch = serde_json::json!({ "status": { "conditions": conditions } });
            if let Err(e) = api
                .patch_status(
                    &cfg.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                warn!(config = %cfg.name_any(), "cannot write the Valid condition: {e}");
                return;
            }
        }
        self.published = Some(self.problem.clone());
    }
}
