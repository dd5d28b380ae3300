//! Graceful restart, the receiving (helper) side (RFC 4724 §4.2): the
//! paths of a peer whose session was lost are kept, marked stale, until
//! the peer is back and has re-sent them (End-of-RIB ends the wait) or the
//! daemon gives up on it. The clock lives with the caller: the RIB only
//! knows which paths are stale.
//!
//! A child module of `rib`, so it may use the event handlers' internals.

use std::collections::{BTreeSet, HashMap};

use wire::{Family, Prefix};

use super::Rib;
use crate::{Outputs, PeerId};

/// What a stale path's `stale` field says (see `Rib::stale_note`).
const STALE_NOTE: &str = "peer restarting";

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

    /// Takes the stale prefixes of `id` in `families` (all when None).
    fn take(&mut self, id: PeerId, families: Option<&[Family]>) -> Vec<Prefix> {
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

impl Rib {
    /// The session of a graceful restart peer was lost (RFC 4724 §4.2):
    /// forget the session and its Adj-RIB-Out, but keep its paths — in
    /// Loc-RIB, in the FIB and in what is advertised to the other peers —
    /// marked stale. Paths still stale from an earlier loss stay stale.
    /// Returns the number of stale paths.
    pub fn peer_restarting(&mut self, id: PeerId) -> usize {
        let Some(peer) = self.peers.get_mut(&id) else {
            return 0;
        };
        peer.session = None;
        self.adj_out.remove(&id);
        let paths: Vec<Prefix> = self
            .table
            .iter()
            .filter(|(_, d)| d.path_of(id).is_some())
            .map(|(p, _)| p)
            .collect();
        let set = self.stale.by_peer.entry(id).or_default();
        set.extend(paths);
        let n = set.len();
        if n == 0 {
            self.stale.by_peer.remove(&id);
        }
        n
    }

    /// Removes the peer's paths still stale in `families` (all when
    /// None), deciding again for them: after its End-of-RIB, when a
    /// family lost its forwarding state, or when the wait ran out.
    /// Returns how many were removed.
    pub fn remove_stale(
        &mut self,
        id: PeerId,
        families: Option<&[Family]>,
        out: &mut Outputs,
    ) -> usize {
        let gone = self.stale.take(id, families);
        if gone.is_empty() {
            return 0;
        }
        out.fib.reserve(gone.len());
        for p in &gone {
            self.withdraw_path(id, *p);
        }
        let mut batch = self.batch_all();
        for p in &gone {
            self.process(*p, &mut batch, out);
        }
        self.finish(batch, out);
        gone.len()
    }

    /// The number of the peer's paths that are stale.
    pub fn stale_count(&self, id: PeerId) -> usize {
        self.stale.by_peer.get(&id).map_or(0, |s| s.len())
    }

    /// `explain` and `routes` say this of a stale path; the daemon, which
    /// has the clock, adds the time left.
    pub(crate) fn stale_note(&self, id: PeerId, prefix: &Prefix) -> Option<String> {
        self.is_stale(id, prefix).then(|| STALE_NOTE.to_string())
    }

    /// Whether the peer's path for `prefix` is stale.
    pub fn is_stale(&self, id: PeerId, prefix: &Prefix) -> bool {
        self.stale.is_stale(id, prefix)
    }
}
