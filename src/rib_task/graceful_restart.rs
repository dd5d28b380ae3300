//! Graceful restart, the helper side (RFC 4724 §4.2), in the router task:
//! the clock around the RIB's stale paths (`rib::Rib::peer_restarting`).
//!
//! A GR peer's session is lost (no NOTIFICATION) → its paths stay, stale,
//! for up to its restart time (ours when lower). It comes back → the
//! families it did not keep forwarding for go at once, the rest wait for
//! its End-of-RIB (the RIB drops what was not re-sent) for at most
//! `staleTime`. Either time running out removes what is still stale.

use std::time::{Duration, Instant};

use tracing::{info, warn};
use wire::Family;

use rib::{Outputs, PeerId};

use super::RouterTask;
use crate::events::PeerCmd;

const FAMILIES: [Family; 2] = [Family::Ipv4Unicast, Family::Ipv6Unicast];

/// How long a peer's stale paths may stay, and what we wait for.
#[derive(Debug, Clone, Copy)]
pub(super) struct StaleWait {
    pub(super) until: Instant,
    /// The peer is back: waiting for its End-of-RIB (else for the peer).
    pub(super) peer_back: bool,
}

impl StaleWait {
    /// What `show routes` and `explain` say of a stale path.
    pub(super) fn note(&self, now: Instant) -> String {
        let left = self.until.saturating_duration_since(now).as_secs();
        if self.peer_back {
            format!("peer restarted, waiting for its End-of-RIB, {left} s left")
        } else {
            format!("peer restarting, {left} s left")
        }
    }
}

impl RouterTask {
    /// The session of `peer` was lost without a NOTIFICATION. Returns
    /// false when the peer did not offer graceful restart (its paths are
    /// then withdrawn as usual).
    pub(super) fn peer_restarting(&mut self, peer: PeerId, out: &mut Outputs) -> bool {
        let Some(e) = self.peers.get_mut(&peer) else {
            return false;
        };
        let Some(gr) = &e.graceful_restart else {
            return false;
        };
        let ours = e.cfg.graceful_restart_or(&self.config.router);
        let secs = gr.restart_time.min(ours.restart_time);
        if secs == 0 || gr.families.is_empty() {
            return false;
        }
        let kept = self.rib.peer_restarting(peer);
        // §4.2: only the families in its capability are kept.
        let unlisted: Vec<Family> = FAMILIES
            .into_iter()
            .filter(|f| !gr.families.contains(f))
            .collect();
        let removed = self.rib.remove_stale(peer, Some(&unlisted), out);
        let stale = kept - removed;
        info!(
            peer = %e.cfg.name,
            stale,
            restart_time = secs,
            "session lost; graceful restart: keeping its routes as stale while it restarts"
        );
        e.stale = (stale > 0).then(|| StaleWait {
            until: Instant::now() + Duration::from_secs(u64::from(secs)),
            peer_back: false,
        });
        true
    }

    /// `peer` is Established again (before the RIB hears of it): stale
    /// paths of families it did not keep forwarding for, or that the new
    /// session lacks, go now (§4.2); the rest wait for End-of-RIB.
    pub(super) fn restarted_peer_is_back(
        &mut self,
        peer: PeerId,
        negotiated: &[Family],
        out: &mut Outputs,
    ) {
        let Some(e) = self.peers.get_mut(&peer) else {
            return;
        };
        if e.stale.is_none() {
            return;
        }
        let kept: Vec<Family> = e
            .graceful_restart
            .as_ref()
            .map(|gr| {
                gr.forwarding_preserved
                    .iter()
                    .copied()
                    .filter(|f| negotiated.contains(f))
                    .collect()
            })
            .unwrap_or_default();
        let lost: Vec<Family> = FAMILIES.into_iter().filter(|f| !kept.contains(f)).collect();
        let removed = self.rib.remove_stale(peer, Some(&lost), out);
        let stale = self.rib.stale_count(peer);
        let stale_time = e.cfg.graceful_restart_or(&self.config.router).stale_time;
        info!(
            peer = %e.cfg.name,
            removed,
            stale,
            stale_time,
            "restarted peer is back; its stale routes wait for End-of-RIB"
        );
        e.stale = (stale > 0).then(|| StaleWait {
            until: Instant::now() + Duration::from_secs(u64::from(stale_time)),
            peer_back: true,
        });
    }

    /// Each second: forget waits that End-of-RIB ended, and remove what is
    /// still stale when a wait ran out.
    pub(super) fn check_stale(&mut self, out: &mut Outputs) {
        let now = Instant::now();
        for (id, e) in self.peers.iter_mut() {
            let Some(wait) = e.stale else {
                continue;
            };
            if self.rib.stale_count(*id) == 0 {
                e.stale = None;
            } else if now >= wait.until {
                let removed = self.rib.remove_stale(*id, None, out);
                warn!(
                    peer = %e.cfg.name,
                    removed,
                    "graceful restart: {}; its stale routes are removed",
                    if wait.peer_back {
                        "no End-of-RIB within staleTime"
                    } else {
                        "the peer did not come back within its restart time"
                    }
                );
                e.stale = None;
            }
        }
    }

    /// RFC 4724 §4.1: after a restart, our End-of-RIB tells a helper peer
    /// to drop what we did not re-send; so it waits until we have learned
    /// our routes again (initial convergence: End-of-RIB from every peer,
    /// or the deadline). Only with graceful restart on for the peer.
    pub(super) fn defers_end_of_rib(&self, peer: PeerId) -> bool {
        !self.initial_sync_done
            && self
                .peers
                .get(&peer)
                .is_some_and(|e| e.cfg.graceful_restart_or(&self.config.router).enabled)
    }

    /// The initial convergence is over: send the End-of-RIB markers held
    /// back, after everything queued for the session.
    pub(super) fn send_deferred_end_of_rib(&mut self) {
        for e in self.peers.values_mut() {
            let updates = std::mem::take(&mut e.deferred_eor);
            if let (Some(generation), false) = (e.generation, updates.is_empty()) {
                info!(peer = %e.cfg.name, "initial convergence: sending End-of-RIB");
                let _ = e.cmd.send(PeerCmd::Send {
                    generation,
                    updates,
                });
            }
        }
    }

    /// The note on a stale path of the peer named `name`, with time left.
    pub(super) fn stale_note(&self, name: &str, now: Instant) -> Option<String> {
        self.peers
            .values()
            .find(|e| e.cfg.name == name)
            .and_then(|e| e.stale)
            .map(|w| w.note(now))
    }
}
