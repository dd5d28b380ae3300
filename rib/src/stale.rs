//! Graceful restart, the receiving (helper) side (RFC 4724 §4.2): the
//! paths of a peer whose session was lost are kept, marked stale, until
//! the peer is back and has re-sent them (End-of-RIB ends the wait) or the
//! daemon gives up on it. The clock lives with the caller: the RIB only
//! knows which paths are stale. This is the bookkeeping; the event
//! handlers that use it are `Rib::peer_restarting` and
//! `Rib::remove_stale` (rib.rs).

use std::collections::{BTreeSet, HashMap};

use wire::{Family, Prefix};

use crate::PeerId;

/// What a stale path's `stale` field says (see `Rib::stale_note`).
pub(crate) const STALE_NOTE: &str = "peer restarting";

/// Per peer, the prefixes whose path from it is stale.
#[derive(Debug, Default)]
pub(crate) struct StaleRoutes {
    by_peer: HashMap<PeerId, BTreeSet<Prefix>>,
}

impl StaleRoutes {
    /// The peer re-sent (announced or withdrew) these prefixes: their
    /// paths are current again.
    pub(crate) fn refreshed(&mut self, id: PeerId, prefixes: &[Prefix]) {
        if let Some(set) = self.by_peer.get_mut(&id) {
            for p in prefixes {
                set.remove(p);
            }
            if set.is_empty() {
                self.by_peer.remove(&id);
            }
        }
    }

    /// The peer's paths are gone (a session end without restart).
    pub(crate) fn forget(&mut self, id: PeerId) {
        self.by_peer.remove(&id);
    }

    pub(crate) fn is_stale(&self, id: PeerId, prefix: &Prefix) -> bool {
        self.by_peer.get(&id).is_some_and(|s| s.contains(prefix))
    }

    /// Marks these paths of `id` stale (with those already stale).
    /// Returns how many are stale now.
    pub(crate) fn mark(&mut self, id: PeerId, prefixes: impl IntoIterator<Item = Prefix>) -> usize {
        let set = self.by_peer.entry(id).or_default();
        set.extend(prefixes);
        let n = set.len();
        if n == 0 {
            self.by_peer.remove(&id);
        }
        n
    }

    pub(crate) fn count(&self, id: PeerId) -> usize {
        self.by_peer.get(&id).map_or(0, |s| s.len())
    }

    /// Takes the stale prefixes of `id` in `families` (all when None).
    pub(crate) fn take(&mut self, id: PeerId, families: Option<&[Family]>) -> Vec<Prefix> {
        let Some(set) = self.by_peer.get_mut(&id) else {
            return Vec::new();
        };
        let taken: Vec<Prefix> = set
            .iter()
            .filter(|p| families.is_none_or(|f| f.contains(&Family::of_prefix(p))))
            .copied()
            .collect();
        for p in &taken {
            set.remove(p);
        }
        if set.is_empty() {
            self.by_peer.remove(&id);
        }
        taken
    }
}
