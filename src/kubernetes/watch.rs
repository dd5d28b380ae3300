//! The watchers: one `kube::runtime` reflector per resource kroute reads,
//! each keeping a store of the objects. Every change wakes the Kubernetes
//! task ([`Watches::changed`]).
//! Secrets are read by name instead (`secrets.rs`).
//!
//! While the API server is away the stores keep what they had (the
//! watchers retry with backoff, nothing is removed); when a watch cannot
//! resume (410 Gone) the watcher lists again and its store is replaced
//! only once the whole list has arrived, so a resync never passes through
//! an empty store.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use super::advertise::ClusterView;
use super::cilium::CiliumNode;
use super::crd::KrouteConfig;

/// One resource's store and whether its first list has arrived.
pub struct Watched<K: Resource + 'static>
where
    K::DynamicType: Hash + Eq,
{
    pub store: Store<K>,
    synced: Arc<AtomicBool>,
    /// The last watch request failed (the API server is away).
    failing: Arc<AtomicBool>,
}

impl<K: Resource + Clone + 'static> Watched<K>
where
    K::DynamicType: Hash + Eq + Clone,
{
    /// Its first full list has arrived (the store holds the cluster's
    /// objects, not an empty start).
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }

    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    pub fn objects(&self) -> Vec<Arc<K>> {
        self.store.state()
    }
}

/// The stores kroute computes its config and advertisements from.
pub struct Watches {
    pub nodes: Watched<Node>,
    pub cilium_nodes: Watched<CiliumNode>,
    pub services: Watched<Service>,
    pub endpoint_slices: Watched<EndpointSlice>,
    pub configs: Watched<KrouteConfig>,
    /// Notified on every change of any store.
    pub changed: Arc<Notify>,
}

impl Watches {
    /// Start the watchers. (Secrets are not watched: kroute may only
    /// `get` the ones named, see `secrets.rs`.)
    pub fn start(client: &Client) -> Watches {
        let changed = Arc::new(Notify::new());
        Watches {
            nodes: spawn("nodes", Api::all(client.clone()), &changed),
            cilium_nodes: spawn("ciliumnodes", Api::all(client.clone()), &changed),
            services: spawn("services", Api::all(client.clone()), &changed),
            endpoint_slices: spawn("endpointslices", Api::all(client.clone()), &changed),
            configs: spawn("krouteconfigs", Api::all(client.clone()), &changed),
            changed,
        }
    }

    /// What rendering the config needs has been listed once.
    pub fn config_synced(&self) -> bool {
        self.nodes.synced() && self.configs.synced()
    }

    /// Some watch is failing now (the API server is unreachable).
    pub fn api_unreachable(&self) -> bool {
        self.nodes.failing() || self.configs.failing()
    }

    pub fn view(&self, node: &str) -> ClusterView {
        ClusterView {
            node: node.to_string(),
            nodes: self.nodes.objects(),
            cilium_nodes: self.cilium_nodes.objects(),
            services: self.services.objects(),
            endpoint_slices: self.endpoint_slices.objects(),
        }
    }
}

fn spawn<K>(what: &'static str, api: Api<K>, changed: &Arc<Notify>) -> Watched<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Hash + Eq + Clone + Default,
{
    let (store, writer) = reflector::store();
    let synced = Arc::new(AtomicBool::new(false));
    let failing = Arc::new(AtomicBool::new(false));
    let stream = watcher::watcher(api, watcher::Config::default())
        .backoff(WatchBackoff::new())
        .reflect(writer);
    let (s, f, changed) = (synced.clone(), failing.clone(), changed.clone());
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) => {
                    if f.swap(false, Ordering::Relaxed) {
                        info!(resource = what, "watch resumed");
                    }
                    match ev {
                        Event::InitDone => {
                            if !s.swap(true, Ordering::Relaxed) {
                                debug!(resource = what, "listed");
                            }
                            changed.notify_one();
                        }
                        Event::Init | Event::InitApply(_) => {}
                        Event::Apply(_) | Event::Delete(_) => changed.notify_one(),
                    }
                }
                Err(e) => {
                    if !f.swap(true, Ordering::Relaxed) {
                        warn!(
                            resource = what,
                            "watch failed, retrying (nothing changes meanwhile): {e}"
                        );
                    }
                    changed.notify_one();
                }
            }
        }
    });
    Watched {
        store,
        synced,
        failing,
    }
}

/// The wait between watch retries: 1 s doubling to 10 s, each plus up to
/// a quarter more at random (nodes that lost the API server together do
/// not all retry together). kube's default (client-go's: up to 30 s, plus
/// up to as much again) would leave a node up to a minute behind a
/// recovered API server; a node's six watches every ~10 s are still
/// light on a struggling one.
struct WatchBackoff {
    next: Duration,
    seed: u64,
}

const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

impl WatchBackoff {
    fn new() -> WatchBackoff {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        WatchBackoff {
            next: BACKOFF_MIN,
            seed: u64::from(nanos) ^ (u64::from(std::process::id()) << 32) | 1,
        }
    }

    /// xorshift64: enough to spread retries, no dependency.
    fn random(&mut self) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let base = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        let quarter = base.as_millis() as u64 / 4;
        let jitter = self.random() % (quarter + 1);
        Some(base + Duration::from_millis(jitter))
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_at_most_ten_seconds_and_a_quarter() {
        let mut b = WatchBackoff::new();
        let waits: Vec<Duration> = (&mut b).take(10).collect();
        assert!(
            waits[0] >= BACKOFF_MIN && waits[0] <= BACKOFF_MIN * 5 / 4,
            "{waits:?}"
        );
        assert!(waits.iter().all(|w| *w <= BACKOFF_MAX * 5 / 4), "{waits:?}");
        assert!(waits[9] >= BACKOFF_MAX, "{waits:?}");
        b.reset();
        assert!(b.next().unwrap() <= BACKOFF_MIN * 5 / 4);
    }
}
