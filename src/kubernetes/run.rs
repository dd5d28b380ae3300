//! The Kubernetes task: from the watched objects to the router task.
//!
//! ```text
//! API server ──watch──▶ stores (watch.rs) ──changed──▶ this task
//!   this task ──RibEvent::ApplyConfig (rendered config)──▶ router task
//!   this task ──RibEvent::ClusterOriginations (pod CIDRs, Services)──▶ router task
//!   this task ──cache (cache.rs)──▶ disk;  conditions / KrouteNodeState ──▶ API server
//! ```
//!
//! Nothing is computed from a store before its first full list: at start
//! with the API server away kroute runs the cached config and prefixes,
//! and while it is away the stores keep their objects, so an outage
//! changes nothing. A config that does not render or apply is not applied:
//! the last good one keeps running and the error becomes a condition.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use super::advertise;
use super::cache;
use super::conditions::Conditions;
use super::secrets::Secrets;
use super::watch::Watches;
use crate::config::{Config, PodCidrSource};
use crate::events::{ApiSender, RibEvent};

/// `kroute daemon --kubernetes` options.
#[derive(Debug, Clone)]
pub struct Options {
    pub kubeconfig: Option<PathBuf>,
    /// This node's name (`NODE_NAME`, from the downward API).
    pub node: String,
    /// Where the cache lives (`--state-dir`).
    pub state_dir: PathBuf,
    /// Where `passwordSecretRef` Secrets are read.
    pub namespace: String,
    /// `--socket`: the API socket, whatever the rendered config says.
    pub socket: Option<PathBuf>,
}

/// How long start waits for the API server before it uses the cache.
const START_WAIT: Duration = Duration::from_secs(5);
/// Changes arriving together (a Service and its EndpointSlice) are
/// computed once.
const SETTLE: Duration = Duration::from_millis(50);

pub struct Cluster {
    opts: Options,
    pub(super) client: kube::Client,
    pub(super) watches: Watches,
    /// The config the router task runs.
    applied: Config,
    /// What the router task was last told to originate.
    originated: Vec<rib::Origination>,
    pub(super) conditions: Conditions,
    node_state: super::node_state::Publisher,
    secrets: Secrets,
    /// The last config the router task refused.
    refused: Option<Config>,
    /// What the cache on disk holds, once written or read.
    cached: Option<(Config, Vec<rib::Origination>)>,
}

/// Connect, watch, and find the config to start with: rendered from the
/// cluster, or the cache when the API server does not answer in time.
pub async fn start(opts: Options) -> Result<(Config, Cluster), String> {
    let client = super::client::connect(opts.kubeconfig.as_deref()).await?;
    let watches = Watches::start(&client);
    let mut secrets = Secrets::default();
    let cached = cache::load(&opts.state_dir, &opts.node)?;
    let deadline = Instant::now() + START_WAIT;
    let mut last_note = Instant::now();
    let (config, originated) = loop {
        if watches.config_synced() {
            secrets
                .refresh(&client, &opts.namespace, &watches.configs.objects())
                .await;
            match render(&watches, &opts, &secrets) {
                Ok(c) => {
                    // A source not listed yet (no CiliumNode CRD yet, say):
                    // what was cached until it is.
                    let o = cluster_originations(&c, &watches, &opts.node)
                        .or_else(|| cached.as_ref().map(|c| c.originations.clone()))
                        .unwrap_or_default();
                    info!(node = %opts.node, "config rendered from the cluster");
                    break (c, o);
                }
                Err(e) => match &cached {
                    Some(c) => {
                        warn!(node = %opts.node, "the cluster's config does not render ({e}): starting from the cached config");
                        break (c.config.clone(), c.originations.clone());
                    }
                    None if last_note.elapsed() > Duration::from_secs(10) => {
                        warn!(node = %opts.node, "waiting for a config: {e}");
                        last_note = Instant::now();
                    }
                    None => {}
                },
            }
        } else if Instant::now() >= deadline {
            if let Some(c) = &cached {
                warn!(
                    node = %opts.node,
                    cache = %cache::path(&opts.state_dir).display(),
                    written_at = c.written_at,
                    "the API server does not answer: starting from the cached config and prefixes"
                );
                break (c.config.clone(), c.originations.clone());
            }
            if last_note.elapsed() > Duration::from_secs(10) {
                warn!(node = %opts.node, "the API server does not answer and there is no cached config yet: waiting");
                last_note = Instant::now();
            }
        }
        tokio::select! {
            _ = watches.changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    };
    let cluster = Cluster {
        conditions: Conditions::new(&opts.node),
        node_state: super::node_state::Publisher::new(&opts.node),
        secrets,
        refused: None,
        cached: cached.map(|c| (c.config, c.originations)),
        opts,
        client,
        watches,
        applied: config.clone(),
        originated,
    };
    Ok((config, cluster))
}

/// The config for this node from the `KrouteConfig`s, with `--socket`.
fn render(watches: &Watches, opts: &Options, secrets: &Secrets) -> Result<Config, String> {
    let node = watches
        .nodes
        .objects()
        .into_iter()
        .find(|n| n.name_any() == opts.node)
        .ok_or_else(|| format!("no Node named {:?} (NODE_NAME)", opts.node))?;
    let mut config = super::render_for_node(&watches.configs.objects(), &node, secrets)
        .map_err(|e| e.to_string())?
        .config;
    if let Some(s) = &opts.socket {
        config.api.socket = s.clone();
    }
    Ok(config)
}

/// The prefixes the API gives `config`'s `advertise`, or `None` while a
/// store they come from has not been listed yet (keep the last ones).
fn cluster_originations(
    config: &Config,
    watches: &Watches,
    node: &str,
) -> Option<Vec<rib::Origination>> {
    let needs = |f: &dyn Fn(&crate::config::Advertise) -> bool| config.advertise.iter().any(f);
    let pods_from =
        |s| move |a: &crate::config::Advertise| a.pod_cidrs.is_some_and(|p| p.source == s);
    if (needs(&pods_from(PodCidrSource::Node)) && !watches.nodes.synced())
        || (needs(&pods_from(PodCidrSource::CiliumNode)) && !watches.cilium_nodes.synced())
        || (needs(&|a| a.services.is_some())
            && !(watches.services.synced() && watches.endpoint_slices.synced()))
    {
        return None;
    }
    Some(advertise::originations(
        &config.advertise,
        &watches.view(node),
    ))
}

impl Cluster {
    /// Until the daemon ends: apply what the cluster says (to `router`);
    /// the node's state is read through `api`.
    pub async fn run(mut self, router: mpsc::Sender<RibEvent>, api: ApiSender) {
        if router
            .send(RibEvent::ClusterOriginations(self.originated.clone()))
            .await
            .is_err()
        {
            return;
        }
        // What changed while starting, and the first cache write.
        if !self.sync(&router).await {
            return;
        }
        let mut tick = tokio::time::interval(super::node_state::MIN_INTERVAL);
        loop {
            tokio::select! {
                _ = self.watches.changed.notified() => {
                    tokio::time::sleep(SETTLE).await;
                    if !self.sync(&router).await {
                        return;
                    }
                }
                // Secrets are read, not watched: a rotated key shows here.
                _ = tick.tick() => {
                    if !self.sync(&router).await {
                        return;
                    }
                }
            }
            self.publish(&api).await;
        }
    }

    /// Bring the router task in line with the stores. False when the
    /// router task is gone.
    async fn sync(&mut self, router: &mpsc::Sender<RibEvent>) -> bool {
        if !self.watches.config_synced() {
            return true;
        }
        if !self.watches.api_unreachable() {
            self.secrets
                .refresh(
                    &self.client,
                    &self.opts.namespace,
                    &self.watches.configs.objects(),
                )
                .await;
        }
        match render(&self.watches, &self.opts, &self.secrets) {
            Err(e) => self.conditions.set_invalid(e),
            Ok(c) if c == self.applied => self.conditions.set_valid(),
            // Refused already (e.g. an ASN change needs a restart): not
            // offered again every tick; the condition still says why.
            Ok(c) if self.refused.as_ref() == Some(&c) => {}
            Ok(c) => {
                let (done, answer) = oneshot::channel();
                let ev = RibEvent::ApplyConfig {
                    config: Box::new(c.clone()),
                    done,
                };
                if router.send(ev).await.is_err() {
                    return false;
                }
                match answer.await {
                    Ok(Ok(changes)) => {
                        info!(node = %self.opts.node, "cluster config applied: {}", changes.join("; "));
                        self.applied = c;
                        self.refused = None;
                        self.conditions.set_valid();
                    }
                    Ok(Err(e)) => {
                        self.refused = Some(c);
                        self.conditions.set_invalid(e);
                    }
                    Err(_) => return false,
                }
            }
        }
        if let Some(o) = cluster_originations(&self.applied, &self.watches, &self.opts.node) {
            if o != self.originated {
                self.originated = o.clone();
                if router.send(RibEvent::ClusterOriginations(o)).await.is_err() {
                    return false;
                }
            }
        }
        self.store_cache();
        true
    }

    /// Write the cache when what runs differs from what it holds (most
    /// API events change neither, and each write is fsynced).
    fn store_cache(&mut self) {
        let now = (self.applied.clone(), self.originated.clone());
        if self.cached.as_ref() == Some(&now) {
            return;
        }
        match cache::store(&self.opts.state_dir, &self.opts.node, &now.0, &now.1) {
            Ok(()) => self.cached = Some(now),
            Err(e) => error!("cannot write the cache: {e}"),
        }
    }

    /// Conditions and the node's state, to the API server (skipped while
    /// it is away: they are written again when it is back).
    async fn publish(&mut self, router: &ApiSender) {
        if self.watches.api_unreachable() || !self.watches.config_synced() {
            return;
        }
        self.conditions.publish(&self.client, &self.watches).await;
        if !self.node_state.due() {
            return;
        }
        let Some(node) = self
            .watches
            .nodes
            .objects()
            .into_iter()
            .find(|n| n.name_any() == self.opts.node)
        else {
            return;
        };
        let source = self
            .applied
            .advertise
            .iter()
            .find_map(|a| a.pod_cidrs)
            .map_or(PodCidrSource::Node, |p| p.source);
        let view = self.watches.view(&self.opts.node);
        let (own, others): (Vec<_>, Vec<_>) = advertise::all_pod_cidrs(source, &view)
            .into_iter()
            .partition(|(n, _)| *n == self.opts.node);
        let advertised = own
            .into_iter()
            .map(|(_, p)| p)
            .filter(|p| self.originated.iter().any(|o| o.prefix == *p))
            .collect();
        self.node_state
            .publish(
                &self.client,
                router,
                &node,
                others,
                advertised,
                self.conditions.condition(),
            )
            .await;
    }
}
