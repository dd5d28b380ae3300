//! The operator's requests about one peer or the daemon as a whole:
//! `show neighbor NAME`, `show status`, `kroute peer NAME
//! disable|enable|refresh`. Each answers with a view of `api::views`.

use std::collections::BTreeMap;

use tokio::sync::{broadcast, mpsc, watch};
use tracing::info;

use rib::Outputs;
use wire::notification as n;
use wire::Notification;

use super::{peer_config, RouterTask};
use crate::api::views::{
    next_hop_text, unix_seconds, DomainStatusView, ExtendedNextHopView, FamilyCountView,
    NeighborDetailView, StatusView, TimersView, WatchEvent, SCHEMA_VERSION,
};
use crate::events::{PeerCmd, PeerStatus, Reply, Response, SessionState};

fn now_unix() -> u64 {
    unix_seconds(std::time::SystemTime::now())
}

/// Hand an event to the watchers, built only when there is one (a full
/// table's routes arrive at start, mostly with nobody watching).
fn tell(watchers: &broadcast::Sender<WatchEvent>, event: impl FnOnce() -> WatchEvent) {
    if watchers.receiver_count() > 0 {
        let _ = watchers.send(event());
    }
}

/// What a disabled peer's status says, in `show neighbors` too.
pub const DISABLED: &str = "disabled by the operator: `kroute peer NAME enable` starts it";

fn ok<T: serde::Serialize>(v: T) -> Response {
    match serde_json::to_value(v) {
        Ok(v) => Response::Ok(v),
        Err(e) => Response::Error(e.to_string()),
    }
}

fn no_peer(name: &str) -> Response {
    Response::Error(format!("no peer named {name:?}"))
}

// Associated items rather than free functions: the router task names
// them as `Self::…`, so this module is the only one naming the other.
impl RouterTask {
    /// Events kept for a watcher that has not read them yet; one further
    /// behind is told how many it missed ([`WatchEvent::Lagged`]).
    pub(super) const WATCH_BACKLOG: usize = 4096;

    /// A session of `peer` came up or went down.
    pub(super) fn watch_session(
        watchers: &broadcast::Sender<WatchEvent>,
        peer: &str,
        state: SessionState,
        reason: Option<String>,
    ) {
        tell(watchers, || WatchEvent::Session {
            time_unix: now_unix(),
            peer: peer.to_string(),
            state,
            reason,
        });
    }

    /// The handles of a disabled peer, which has no task: commands go nowhere
    /// (a connection it makes is closed at once), its status stays Idle.
    pub(super) fn disabled_peer() -> (mpsc::UnboundedSender<PeerCmd>, watch::Receiver<PeerStatus>) {
        let (cmd, _) = mpsc::unbounded_channel();
        let (_, status) = watch::channel(PeerStatus {
            last_error: Some(DISABLED.to_string()),
            ..PeerStatus::new()
        });
        (cmd, status)
    }

    /// The best routes changed as the kernel is told (`flush`).
    pub(super) fn watch_routes(&self, fib: &[rib::FibChange]) {
        if self.watchers.receiver_count() == 0 {
            return;
        }
        let time_unix = now_unix();
        for change in fib {
            let _ = self.watchers.send(WatchEvent::Route {
                time_unix,
                prefix: change.prefix,
                next_hops: change.next_hops.iter().map(next_hop_text).collect(),
            });
        }
    }

    pub(super) fn watch_peer(&self, peer: &str, action: &str) {
        tell(&self.watchers, || WatchEvent::Peer {
            time_unix: now_unix(),
            peer: peer.to_string(),
            action: action.to_string(),
        });
    }

    /// `show neighbor NAME`.
    pub(super) fn neighbor_detail(&self, name: &str) -> Response {
        let Some(id) = self.peer_id(name) else {
            return no_peer(name);
        };
        let Some(neighbor) = self.neighbors().into_iter().find(|v| v.name == name) else {
            return no_peer(name);
        };
        let e = &self.peers[&id];
        let p = &e.cfg;
        let router = &self.config.router;
        let status = e.status.borrow();
        let ibgp = p.is_ibgp(router.asn);
        ok(NeighborDetailView {
            schema_version: SCHEMA_VERSION,
            disabled: self.disabled.contains(name),
            kind: if ibgp { "ibgp" } else { "ebgp" }.to_string(),
            local_asn: router.asn,
            passive: p.passive,
            configured_families: p.families.clone(),
            import: p.import.clone(),
            export: p.export.clone(),
            timers: TimersView {
                hold_time_configured: p.hold_time_or(router),
                hold_time_negotiated: status.hold_time,
                // RFC 4271 §10: a third of the hold time.
                keepalive: status.hold_time.map(|h| h / 3),
                connect_retry: router.connect_retry,
            },
            updates_queued: self.rib_of(id).queued(id),
            last_change_unix: unix_seconds(status.last_change),
            bfd_configured: p.bfd.is_some(),
            graceful_restart_advertised: p.graceful_restart_or(router).enabled,
            extended_next_hop: ExtendedNextHopView {
                advertised: p.extended_next_hop(),
                negotiated: status.extended_next_hop,
            },
            neighbor,
        })
    }

    /// `show status`. The FIB answers asynchronously, so the reply is sent
    /// from a task once it has.
    pub(super) fn status(&self, reply: Reply) {
        // Counted in the table (no route views built: this runs in the
        // router task, also at a full table).
        let counts = |rib: &rib::Rib| -> Vec<FamilyCountView> {
            rib.family_counts()
                .into_iter()
                .map(|(family, c)| FamilyCountView {
                    family,
                    prefixes: c.prefixes,
                    paths: c.paths,
                })
                .collect()
        };
        // Every routing domain: the default one, then each configured
        // one, with its FIB (asked below).
        let mut domains = vec![(
            DomainStatusView {
                name: crate::config::DEFAULT_DOMAIN.to_string(),
                table: self.config.kernel.table,
                rib: counts(&self.rib),
                fib: BTreeMap::new(),
            },
            self.fib.clone(),
        )];
        for (name, d) in &self.domains.list {
            domains.push((
                DomainStatusView {
                    name: name.clone(),
                    table: d.cfg.table,
                    rib: counts(&d.rib),
                    fib: BTreeMap::new(),
                },
                d.fib.clone(),
            ));
        }
        let mut rib: Vec<FamilyCountView> = Vec::new();
        for (d, _) in &domains {
            for c in &d.rib {
                match rib.iter_mut().find(|x| x.family == c.family) {
                    Some(x) => {
                        x.prefixes += c.prefixes;
                        x.paths += c.paths;
                    }
                    None => rib.push(c.clone()),
                }
            }
        }
        let mut view = StatusView {
            schema_version: SCHEMA_VERSION,
            version: env!("CARGO_PKG_VERSION").to_string(),
            asn: self.config.router.asn,
            router_id: self.config.router.router_id,
            uptime_seconds: self.started.elapsed().as_secs(),
            config_file: (!self.from_cluster).then(|| self.config_path.display().to_string()),
            config_loaded_unix: unix_seconds(self.config_loaded),
            peers_configured: self.peers.len(),
            peers_established: self
                .peers
                .values()
                .filter(|e| e.generation.is_some())
                .count(),
            peers_disabled: self.disabled.len(),
            initial_convergence_done: self.initial_sync_done,
            rib,
            fib: BTreeMap::new(),
            domains: Vec::new(),
            bmp: self.bmp.views(),
        };
        let with_domains = !self.domains.list.is_empty();
        tokio::spawn(async move {
            for (mut d, fib) in domains {
                for entry in fib.entries(None).await {
                    // "failed: <errno>" counted as one status.
                    let status = entry.status.split(':').next().unwrap_or_default();
                    *d.fib.entry(status.to_string()).or_default() += 1;
                    *view.fib.entry(status.to_string()).or_default() += 1;
                }
                if with_domains {
                    view.domains.push(d);
                }
            }
            let _ = reply.send(ok(view));
        });
    }

    /// `kroute peer NAME disable`: Cease/2 to the peer (RFC 4486 §3
    /// "Administrative Shutdown"), its routes withdrawn, and no session
    /// again until `enable`.
    pub(super) fn disable_peer(&mut self, name: &str, out: &mut Outputs) -> Response {
        let Some(id) = self.peer_id(name) else {
            return no_peer(name);
        };
        if !self.disabled.insert(name.to_string()) {
            return ok(serde_json::json!({ "peer": name, "disabled": true, "changed": false }));
        }
        let e = self.peers.remove(&id).expect("peer_id found it");
        let nf = Notification {
            code: n::CEASE,
            subcode: n::cease::ADMINISTRATIVE_SHUTDOWN,
            data: vec![],
        };
        self.bmp.peer_stopped(id, &nf);
        let _ = e.cmd.send(PeerCmd::Stop(nf));
        // As for any session lost with the link up: the FIB moves what
        // went via the peer before the per-prefix changes.
        let lost = self
            .domains
            .rib_ref(&self.rib, e.cfg.domain.as_deref())
            .next_hops_only_via(id);
        self.domains
            .fib_ref(&self.fib, e.cfg.domain.as_deref())
            .next_hops_down(lost);
        let (rib, out) = self
            .domains
            .rib_out(&mut self.rib, out, e.cfg.domain.as_deref());
        rib.remove_peer(id, out);
        // Back in the registry without a task: `show neighbors` lists it.
        self.add_peer(&e.cfg);
        info!(peer = %name, "disabled by the operator (Cease/2 administrative shutdown sent)");
        self.watch_peer(name, "disabled");
        ok(serde_json::json!({ "peer": name, "disabled": true, "changed": true }))
    }

    /// `kroute peer NAME enable`: a disabled peer gets its session task back.
    pub(super) fn enable_peer(&mut self, name: &str, out: &mut Outputs) -> Response {
        let Some(id) = self.peer_id(name) else {
            return no_peer(name);
        };
        if !self.disabled.remove(name) {
            return ok(serde_json::json!({ "peer": name, "disabled": false, "changed": false }));
        }
        let e = self.peers.remove(&id).expect("peer_id found it");
        let (rib, out) = self
            .domains
            .rib_out(&mut self.rib, out, e.cfg.domain.as_deref());
        rib.remove_peer(id, out);
        self.add_peer(&e.cfg);
        info!(peer = %name, "enabled by the operator");
        self.watch_peer(name, "enabled");
        ok(serde_json::json!({ "peer": name, "disabled": false, "changed": true }))
    }

    /// `kroute peer NAME refresh` (vtysh `clear bgp X soft`): import runs
    /// again over the stored Adj-RIB-In (what changed goes to the RIB and
    /// the kernel), and the whole Adj-RIB-Out is sent again for every
    /// negotiated family, as for a ROUTE-REFRESH (RFC 2918) from the peer.
    pub(super) fn refresh_peer(&mut self, name: &str, out: &mut Outputs) -> Response {
        let Some(id) = self.peer_id(name) else {
            return no_peer(name);
        };
        let e = &self.peers[&id];
        if e.generation.is_none() {
            return Response::Error(format!(
                "peer {name:?} has no Established session to refresh ({})",
                e.status.borrow().state
            ));
        }
        let families = e.status.borrow().families.clone();
        let cfg = peer_config(
            &e.cfg,
            self.config.router.asn,
            e.learned_asn,
            e.learned_address,
        );
        let domain = e.cfg.domain.clone();
        let (rib, out) = self.domains.rib_out(&mut self.rib, out, domain.as_deref());
        rib.set_peer_config(id, cfg, out);
        for &family in &families {
            rib.route_refresh(id, family, out);
        }
        info!(peer = %name, "soft refresh by the operator: import re-run, Adj-RIB-Out sent again");
        self.watch_peer(name, "refreshed");
        ok(serde_json::json!({ "peer": name, "refreshed": families }))
    }
}
