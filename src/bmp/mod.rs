//! BMP, the BGP Monitoring Protocol (RFC 7854): the router reports its
//! peers and what they send to one or more collectors.
//!
//! [`Bmp`] lives in the router task, which calls it as sessions come and
//! go and UPDATEs arrive (the sink); it encodes ([`encode`]) and queues the
//! messages to each collector's task ([`collector`]), which owns the TCP
//! connection. A collector that (re)connects is brought up to date on the
//! router task's next tick: Peer Up for every Established peer, then each
//! peer's Adj-RIB-In as Route Monitoring, pre- and/or post-policy (the L
//! flag), each view ending with an End-of-RIB per family; live events
//! follow. Statistics Reports go out every `statisticsInterval`.

pub mod collector;
pub mod encode;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rib::attrs::Attrs;
use rib::{PeerId, Rib};
use wire::{Family, MpReach, MpUnreach, Prefix, Update};

use crate::api::views::{unix_seconds, BmpCollectorView};
use crate::config::{BmpCollector, BmpMonitoring};
use crate::events::{SessionEnd, SessionOpens};
use collector::{Handle, LinkState};
use encode::{DownReason, PeerHeader, Stat};

/// The RIB a peer's routes live in (its routing domain's).
pub type RibOf<'a> = &'a dyn Fn(PeerId) -> &'a Rib;

/// A peer with an Established session, as BMP describes it.
struct UpPeer {
    address: IpAddr,
    asn: u32,
    bgp_id: std::net::Ipv4Addr,
    /// The Peer Up message, encoded when the session came up (every new
    /// collector gets the same one).
    peer_up: Vec<u8>,
    families: Vec<Family>,
}

impl UpPeer {
    fn header(&self, post_policy: bool, timestamp: SystemTime) -> PeerHeader {
        PeerHeader {
            address: self.address,
            asn: self.asn,
            bgp_id: self.bgp_id,
            post_policy,
            timestamp,
        }
    }
}

/// One configured collector, seen from the router task.
struct Collector {
    cfg: BmpCollector,
    handle: Handle,
    /// The connection that has had its initial dump (0 = none yet).
    synced: u64,
    /// The connection the queue overflowed on: nothing more is queued for
    /// it (the collector task drops it and connects again).
    overflowed: u64,
    last_stats: Instant,
}

impl Collector {
    fn wants(&self, m: BmpMonitoring) -> bool {
        self.cfg.monitoring.contains(&m)
    }

    /// The connection live events go to, if it is up to date.
    fn live(&self) -> Option<u64> {
        let e = self.handle.epoch();
        (e != 0 && e == self.synced).then_some(e)
    }

    fn send(&mut self, epoch: u64, bytes: Vec<u8>) {
        if self.overflowed == epoch {
            return;
        }
        if !self.handle.send(epoch, bytes) {
            self.overflowed = epoch;
        }
    }
}

/// The sink the router task feeds; see the module documentation.
#[derive(Default)]
pub struct Bmp {
    collectors: Vec<Collector>,
    peers: BTreeMap<PeerId, UpPeer>,
    sys_name: String,
    sys_descr: String,
}

/// The host name, for Initiation's sysName (the UTS namespace's).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "kroute".to_string())
}

impl Bmp {
    pub fn new(router_id: std::net::Ipv4Addr, asn: u32) -> Bmp {
        Bmp {
            collectors: Vec::new(),
            peers: BTreeMap::new(),
            sys_name: host_name(),
            sys_descr: format!(
                "kroute {}, AS {asn}, router ID {router_id}",
                env!("CARGO_PKG_VERSION")
            ),
        }
    }

    /// Start, keep or stop collectors to match `cfgs` (start and reload).
    /// A collector whose settings changed is restarted.
    pub fn configure(&mut self, cfgs: &[BmpCollector]) {
        let old = std::mem::take(&mut self.collectors);
        for c in old {
            if cfgs.contains(&c.cfg) {
                self.collectors.push(c);
            } else {
                c.handle
                    .stop("collector removed from the configuration", None);
            }
        }
        for cfg in cfgs {
            if self.collectors.iter().any(|c| c.cfg == *cfg) {
                continue;
            }
            let addr = SocketAddr::new(cfg.address, cfg.port);
            let limit = cfg.queue_limit_mib as usize * 1024 * 1024;
            let initiation = encode::initiation(&self.sys_name, &self.sys_descr);
            self.collectors.push(Collector {
                cfg: cfg.clone(),
                handle: Handle::spawn(addr, limit, initiation),
                synced: 0,
                overflowed: 0,
                last_stats: Instant::now(),
            });
        }
        // Config order, for `show status`.
        self.collectors
            .sort_by_key(|c| cfgs.iter().position(|x| *x == c.cfg));
    }

    /// Some collector wants live Route Monitoring now: the router task
    /// keeps a copy of each UPDATE for [`Bmp::received`] only then.
    pub fn active(&self) -> bool {
        self.collectors.iter().any(|c| c.live().is_some())
    }

    /// Queue `msg(collector)` to every up-to-date collector.
    fn broadcast(&mut self, mut msg: impl FnMut(&Collector) -> Vec<Vec<u8>>) {
        for c in &mut self.collectors {
            if let Some(epoch) = c.live() {
                for m in msg(c) {
                    c.send(epoch, m);
                }
            }
        }
    }

    /// The session is Established: Peer Up, with the AS and BGP ID of the
    /// peer's OPEN.
    pub fn session_up(&mut self, id: PeerId, families: &[Family], opens: &SessionOpens) {
        let mut p = UpPeer {
            address: opens.remote.ip().to_canonical(),
            asn: opens.received.asn,
            bgp_id: opens.received.router_id,
            peer_up: Vec::new(),
            families: families.to_vec(),
        };
        p.peer_up = encode::peer_up(
            &p.header(false, SystemTime::now()),
            opens.local,
            opens.remote.port(),
            &opens.sent,
            &opens.received,
        );
        let msg = p.peer_up.clone();
        self.peers.insert(id, p);
        self.broadcast(|_| vec![msg.clone()]);
    }

    /// The session ended: Peer Down with the reason (RFC 7854 §4.9).
    pub fn session_down(&mut self, id: PeerId, end: &SessionEnd) {
        let reason = match end {
            SessionEnd::SentNotification(nf) => DownReason::LocalNotification(nf),
            SessionEnd::ReceivedNotification(nf) => DownReason::RemoteNotification(nf),
            SessionEnd::LocalClosed => DownReason::LocalNoNotification { fsm_event: 0 },
            SessionEnd::RemoteClosed => DownReason::RemoteNoNotification,
        };
        self.peer_down(id, reason);
    }

    /// The peer was removed from the configuration (reload).
    pub fn peer_removed(&mut self, id: PeerId) {
        self.peer_down(id, DownReason::Deconfigured);
    }

    /// Its session was stopped by the router with this NOTIFICATION (BFD
    /// down, a reload that changed the session).
    pub fn peer_stopped(&mut self, id: PeerId, nf: &wire::Notification) {
        self.peer_down(id, DownReason::LocalNotification(nf));
    }

    fn peer_down(&mut self, id: PeerId, reason: DownReason<'_>) {
        let Some(p) = self.peers.remove(&id) else {
            return;
        };
        let msg = encode::peer_down(&p.header(false, SystemTime::now()), reason);
        self.broadcast(|_| vec![msg.clone()]);
    }

    /// An UPDATE as the peer sent it (pre-policy), before import.
    pub fn received(&mut self, id: PeerId, u: &Update) {
        let Some(p) = self.peers.get(&id) else {
            return;
        };
        let h = p.header(false, SystemTime::now());
        let mut encoded = None;
        self.broadcast(|c| {
            if !c.wants(BmpMonitoring::PrePolicy) {
                return Vec::new();
            }
            encoded
                .get_or_insert_with(|| encode::route_monitoring(&h, u))
                .clone()
        });
    }

    /// After import of `u`: the post-policy view of its prefixes, read
    /// from the RIB (accepted ones announced with the attributes import
    /// gave them, the others withdrawn).
    pub fn imported(&mut self, id: PeerId, u: &Update, rib: &Rib) {
        if !self
            .collectors
            .iter()
            .any(|c| c.live().is_some() && c.wants(BmpMonitoring::PostPolicy))
        {
            return;
        }
        let Some(p) = self.peers.get(&id) else {
            return;
        };
        let prefixes = u
            .withdrawn
            .iter()
            .map(|n| Prefix::V4(*n))
            .chain(u.nlri.iter().map(|n| Prefix::V4(*n)))
            .chain(
                u.mp_unreach
                    .iter()
                    .flat_map(|m| m.withdrawn.iter().copied()),
            )
            .chain(u.mp_reach.iter().flat_map(|m| m.nlri.iter().copied()));
        let mut view = View::default();
        for prefix in prefixes {
            match rib.adj_rib_in_path(id, &prefix) {
                Some(path) if path.accepted() => view.announce(prefix, &path.post),
                _ => view.withdraw(prefix),
            }
        }
        let h = p.header(true, SystemTime::now());
        let mut msgs = view.encode(&h);
        // The peer's End-of-RIB ends the post-policy view's family too.
        if let Some(f) = u.end_of_rib() {
            msgs.extend(encode::route_monitoring(&h, &end_of_rib(f)));
        }
        self.broadcast(|c| {
            if c.wants(BmpMonitoring::PostPolicy) {
                msgs.clone()
            } else {
                Vec::new()
            }
        });
    }

    /// Import policy changed (reload): the post-policy view of every peer
    /// again, rejected prefixes withdrawn.
    pub fn policies_changed(&mut self, ribs: RibOf<'_>) {
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            let msgs = self.dump(id, ribs(id), true, true);
            self.broadcast(|c| {
                if c.wants(BmpMonitoring::PostPolicy) {
                    msgs.clone()
                } else {
                    Vec::new()
                }
            });
        }
    }

    /// Route Monitoring for the peer's whole Adj-RIB-In, one view, with
    /// End-of-RIB per family. `withdraw_rejected`: post-policy, say so for
    /// the prefixes import rejects (after a policy change).
    fn dump(&self, id: PeerId, rib: &Rib, post: bool, withdraw_rejected: bool) -> Vec<Vec<u8>> {
        let Some(p) = self.peers.get(&id) else {
            return Vec::new();
        };
        let mut view = View::default();
        for (prefix, path) in rib.adj_rib_in(id) {
            if !post {
                view.announce(prefix, &path.pre);
            } else if path.accepted() {
                view.announce(prefix, &path.post);
            } else if withdraw_rejected {
                view.withdraw(prefix);
            }
        }
        let h = p.header(post, SystemTime::now());
        let mut msgs = view.encode(&h);
        for f in &p.families {
            msgs.extend(encode::route_monitoring(&h, &end_of_rib(*f)));
        }
        msgs
    }

    /// Every second (the router task's tick): bring newly connected
    /// collectors up to date, send Statistics Reports when due.
    pub fn tick(&mut self, ribs: RibOf<'_>) {
        for i in 0..self.collectors.len() {
            let epoch = self.collectors[i].handle.epoch();
            if epoch != 0 && epoch != self.collectors[i].synced {
                self.sync(i, epoch, ribs);
            }
            let c = &self.collectors[i];
            let interval = Duration::from_secs(u64::from(c.cfg.statistics_interval));
            if c.cfg.statistics_interval > 0 && c.last_stats.elapsed() >= interval {
                self.collectors[i].last_stats = Instant::now();
                if let Some(epoch) = self.collectors[i].live() {
                    for m in self.statistics(ribs) {
                        self.collectors[i].send(epoch, m);
                    }
                }
            }
        }
    }

    /// The initial dump to collector `i` on its connection `epoch`.
    fn sync(&mut self, i: usize, epoch: u64, ribs: RibOf<'_>) {
        let (pre, post) = {
            let c = &self.collectors[i];
            (
                c.wants(BmpMonitoring::PrePolicy),
                c.wants(BmpMonitoring::PostPolicy),
            )
        };
        let mut msgs: Vec<Vec<u8>> = self.peers.values().map(|p| p.peer_up.clone()).collect();
        for id in self.peers.keys() {
            if pre {
                msgs.extend(self.dump(*id, ribs(*id), false, false));
            }
            if post {
                msgs.extend(self.dump(*id, ribs(*id), true, false));
            }
        }
        let c = &mut self.collectors[i];
        c.synced = epoch;
        for m in msgs {
            c.send(epoch, m);
        }
    }

    /// One Statistics Report per Established peer (RFC 7854 §4.8).
    fn statistics(&self, ribs: RibOf<'_>) -> Vec<Vec<u8>> {
        let now = SystemTime::now();
        self.peers
            .iter()
            .map(|(id, p)| {
                let rib = ribs(*id);
                let counts = rib.peer_counters(*id);
                let import = rib.import_counters(*id);
                let mut stats = vec![
                    Stat::RejectedPrefixes((counts.received - counts.accepted) as u32),
                    Stat::TreatAsWithdrawUpdates(import.treat_as_withdraw as u32),
                    Stat::AdjRibIn(counts.received as u64),
                    Stat::LocRib(counts.accepted as u64),
                ];
                for f in &p.families {
                    stats.push(Stat::AdjRibInOf(*f, rib.received_in(*id, *f) as u64));
                }
                encode::statistics(&p.header(false, now), &stats)
            })
            .collect()
    }

    /// Termination to every collector, waiting up to a second for them.
    pub async fn shutdown(&mut self) {
        let mut waits = Vec::new();
        for c in self.collectors.drain(..) {
            let (tx, rx) = tokio::sync::oneshot::channel();
            c.handle.stop("kroute is shutting down", Some(tx));
            waits.push(rx);
        }
        let all = futures_join(waits);
        let _ = tokio::time::timeout(Duration::from_secs(2), all).await;
    }

    /// `show status`: each collector's connection.
    pub fn views(&self) -> Vec<BmpCollectorView> {
        self.collectors
            .iter()
            .map(|c| {
                let s = c.handle.shared.status.lock().unwrap().clone();
                let state = match s.state {
                    LinkState::Connecting => "connecting".to_string(),
                    LinkState::Connected => "connected".to_string(),
                    LinkState::Backoff { retry_in } => {
                        format!("retry in {:.0}s", retry_in.as_secs_f64().ceil())
                    }
                    LinkState::Stopped => "stopped".to_string(),
                };
                BmpCollectorView {
                    address: c.cfg.address,
                    port: c.cfg.port,
                    state,
                    since_unix: unix_seconds(s.since),
                    messages_sent: s.messages_sent,
                    connects: s.connects,
                    queued_bytes: c.handle.shared.queued.load(Ordering::Relaxed),
                    last_error: s.last_error,
                }
            })
            .collect()
    }
}

async fn futures_join(waits: Vec<tokio::sync::oneshot::Receiver<()>>) {
    for w in waits {
        let _ = w.await;
    }
}

/// The End-of-RIB marker of `f` (RFC 4724 §2).
fn end_of_rib(f: Family) -> Update {
    match f {
        Family::Ipv4Unicast => Update::default(),
        f => Update {
            mp_unreach: Some(MpUnreach {
                family: f,
                withdrawn: Vec::new(),
            }),
            ..Update::default()
        },
    }
}

/// A family and an interned attribute set (compared by address).
type GroupKey = (Family, *const Attrs);

/// Prefixes to announce, grouped by their (interned) attributes, and to
/// withdraw: a view of an Adj-RIB-In as few UPDATEs.
#[derive(Default)]
struct View<'a> {
    announce: HashMap<GroupKey, (&'a Arc<Attrs>, Vec<Prefix>)>,
    /// Groups in the order first seen (stable output).
    order: Vec<GroupKey>,
    withdraw: Vec<Prefix>,
}

impl<'a> View<'a> {
    fn announce(&mut self, prefix: Prefix, attrs: &'a Arc<Attrs>) {
        let key = (Family::of_prefix(&prefix), Arc::as_ptr(attrs));
        let group = self.announce.entry(key).or_insert_with(|| {
            self.order.push(key);
            (attrs, Vec::new())
        });
        group.1.push(prefix);
    }

    fn withdraw(&mut self, prefix: Prefix) {
        self.withdraw.push(prefix);
    }

    fn encode(mut self, h: &PeerHeader) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let (v4, v6): (Vec<Prefix>, Vec<Prefix>) = self
            .withdraw
            .iter()
            .partition(|p| matches!(p, Prefix::V4(_)));
        if !v4.is_empty() || !v6.is_empty() {
            let mut u = Update {
                withdrawn: v4
                    .iter()
                    .filter_map(|p| match p {
                        Prefix::V4(n) => Some(*n),
                        Prefix::V6(_) => None,
                    })
                    .collect(),
                ..Update::default()
            };
            if !v6.is_empty() {
                u.mp_unreach = Some(MpUnreach {
                    family: Family::Ipv6Unicast,
                    withdrawn: v6,
                });
            }
            out.extend(encode::route_monitoring(h, &u));
        }
        for key in std::mem::take(&mut self.order) {
            let (attrs, prefixes) = self.announce.remove(&key).expect("kept with its key");
            out.extend(encode::route_monitoring(
                h,
                &announcement(key.0, attrs, prefixes),
            ));
        }
        out
    }
}

/// An UPDATE announcing `prefixes` of family `f` with `a`: IPv4 with an
/// IPv4 next hop in the classic NLRI field, the rest in MP_REACH_NLRI
/// (RFC 4760; an IPv6 next hop for IPv4, RFC 8950).
fn announcement(f: Family, a: &Attrs, prefixes: Vec<Prefix>) -> Update {
    let mut attributes = a.attrs.clone();
    match (f, a.next_hop.address) {
        (Family::Ipv4Unicast, IpAddr::V4(nh)) if a.next_hop.link_local.is_none() => {
            attributes.next_hop = Some(nh);
            Update {
                attributes,
                nlri: prefixes
                    .into_iter()
                    .filter_map(|p| match p {
                        Prefix::V4(n) => Some(n),
                        Prefix::V6(_) => None,
                    })
                    .collect(),
                ..Update::default()
            }
        }
        _ => {
            attributes.next_hop = None;
            Update {
                attributes,
                mp_reach: Some(MpReach {
                    family: f,
                    next_hop: a.next_hop,
                    nlri: prefixes,
                }),
                ..Update::default()
            }
        }
    }
}

#[cfg(test)]
mod tests;
