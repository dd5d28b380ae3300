//! Interned path attributes and paths.
//!
//! A full table holds ~1M prefixes but far fewer distinct attribute sets, so
//! every attribute set lives once behind an `Arc` and routes hold pointers.
//! Interned values compare by pointer ([`Arc::ptr_eq`]).

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use wire::{NextHop, PathAttributes};

use crate::PeerId;

/// The peer id used for locally originated paths.
pub const LOCAL_PEER: PeerId = PeerId::MAX;

/// Peer ids of leak sources, the pseudo-peers through which a routing
/// domain's RIB gets another domain's paths (`leak.rs`): just below
/// [`LOCAL_PEER`], far above what the daemon hands its peers.
pub const LEAK_PEERS: std::ops::RangeInclusive<PeerId> = (LOCAL_PEER - 4096)..=(LOCAL_PEER - 1);

/// Whether `id` is a leak source's pseudo-peer.
pub fn is_leak_peer(id: PeerId) -> bool {
    LEAK_PEERS.contains(&id)
}

/// A path's attributes together with its next hop (NEXT_HOP or the MP_REACH
/// next hop). `attrs.next_hop` is left `None` in the RIB; the encoder side
/// fills it in for IPv4 NLRI sent in the classic NLRI field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attrs {
    pub next_hop: NextHop,
    pub attrs: PathAttributes,
}

/// One path in Adj-RIB-In: where it came from, what arrived and what import
/// made of it. Interned too: all prefixes of one UPDATE share one `PathInfo`.
#[derive(Debug)]
pub struct PathInfo {
    pub peer: PeerId,
    /// As received (pre-policy).
    pub pre: Arc<Attrs>,
    /// After import policy; the same `Arc` as `pre` when nothing changed.
    pub post: Arc<Attrs>,
    /// `None` = accepted, else why import rejected it.
    pub rejected: Option<Arc<str>>,
}

impl PathInfo {
    pub fn accepted(&self) -> bool {
        self.rejected.is_none()
    }
    pub fn is_local(&self) -> bool {
        self.peer == LOCAL_PEER
    }
}

// Interned members compare by pointer, so a PathInfo key is cheap to hash.
impl PartialEq for PathInfo {
    fn eq(&self, o: &Self) -> bool {
        self.peer == o.peer
            && Arc::ptr_eq(&self.pre, &o.pre)
            && Arc::ptr_eq(&self.post, &o.post)
            && self.rejected == o.rejected
    }
}
impl Eq for PathInfo {}
impl Hash for PathInfo {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.peer.hash(h);
        Arc::as_ptr(&self.pre).hash(h);
        Arc::as_ptr(&self.post).hash(h);
        self.rejected.hash(h);
    }
}

/// A set of interned values. `sweep` drops the ones nobody else holds.
#[derive(Debug)]
pub struct Interner<T: Eq + Hash> {
    set: HashSet<Arc<T>>,
    live_after_sweep: usize,
}

impl<T: Eq + Hash> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            set: HashSet::new(),
            live_after_sweep: 0,
        }
    }
}

impl<T: Eq + Hash> Interner<T> {
    pub fn intern(&mut self, v: T) -> Arc<T> {
        if let Some(a) = self.set.get(&v) {
            return a.clone();
        }
        let a = Arc::new(v);
        self.set.insert(a.clone());
        a
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Drops unused entries when the set has doubled since the last sweep
    /// (amortised O(1) per intern), or always with `force`.
    pub fn sweep(&mut self, force: bool) {
        if !force && self.set.len() < 2 * self.live_after_sweep + 1024 {
            return;
        }
        self.set.retain(|a| Arc::strong_count(a) > 1);
        self.live_after_sweep = self.set.len();
    }
}

/// A next-hop set handed to the FIB (few distinct ones exist): the FIB
/// contract's type.
pub use tables::fib::NhSet;
