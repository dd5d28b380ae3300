//! What the RIB's pure parts (decision, import, export, explain) read: the
//! configured peers, the next hops' states and the interned attributes.
//!
//! The event handlers in `rib.rs` own this state and lend it out as a
//! [`Ctx`]; the parts depend only on this module, never on `rib.rs`.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use tables::fib::FibSets;
use tables::Numbered;
use wire::{NextHop, Origin};

use crate::attrs::{Attrs, Interner, PathInfo, LOCAL_PEER};
use crate::decision::{self, Candidate, DecisionCtx, Fate};
use crate::policy::Policies;
use crate::table::Dest;
use crate::{NexthopState, PeerConfig, PeerId, RibConfig, SessionInfo};

/// A configured peer and its session, if up.
pub(crate) struct Peer {
    pub cfg: PeerConfig,
    pub session: Option<SessionInfo>,
    pub received: usize,
    /// Of `received`, IPv6 prefixes (for per-family `maxPrefixes`).
    pub received_v6: usize,
    pub accepted: usize,
    /// What import refused or ignored on this session (RFC 7606 etc.).
    pub import_errors: crate::ImportCounters,
}

/// The RIB's interned values, shared by every route that uses them.
#[derive(Default)]
pub(crate) struct Interners {
    pub attrs: Interner<Attrs>,
    pub paths: Interner<PathInfo>,
    /// The best and backup next-hop sets given to the FIB, numbered:
    /// `Dest` records both in 4 bytes.
    pub nhsets: Numbered<FibSets>,
}

impl Interners {
    /// Drops interned paths and attributes no route holds any more, when
    /// their sets have grown enough or always with `force`. A path holds
    /// its attributes, so attributes are swept whenever paths went.
    pub fn sweep(&mut self, force: bool) {
        let before = self.paths.len();
        self.paths.sweep(force);
        self.attrs.sweep(force || self.paths.len() < before);
    }
}

/// The read-only state the pure parts (decision, import, export, explain)
/// look at.
pub(crate) struct Ctx<'a> {
    pub cfg: &'a RibConfig,
    pub policies: &'a Policies,
    pub peers: &'a BTreeMap<PeerId, Peer>,
    pub nexthops: &'a HashMap<IpAddr, NexthopState>,
}

/// Paths per prefix up to which a decision keeps its buffers on the stack.
pub(crate) const INLINE_PATHS: usize = 4;

/// A path's next hop as the decision process sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NhStatus<'a> {
    /// Locally originated: no next hop to resolve.
    Originated,
    Unresolved,
    Unreachable(&'a str),
    Local,
    /// One of our own addresses, on a path from a peer that is not on this
    /// node: semantically incorrect (RFC 4271 §6.3), never usable.
    OwnAddress,
    Reachable(u32),
}

impl<'a> Ctx<'a> {
    pub fn nh_status(&self, p: &PathInfo) -> NhStatus<'a> {
        if p.is_local() {
            return NhStatus::Originated;
        }
        // A link-local address on the link of the session that sent it is
        // directly connected while the session is up; the FIB installs it
        // on that interface (and follows the link's carrier).
        if p.post.next_hop.on_link_only().is_some() {
            return NhStatus::Reachable(0);
        }
        match self.nexthops.get(&p.post.next_hop.address) {
            None => NhStatus::Unresolved,
            Some(NexthopState::Unreachable(r)) => NhStatus::Unreachable(r),
            Some(NexthopState::Local) if !self.local_next_hop_allowed(p) => NhStatus::OwnAddress,
            Some(NexthopState::Local) => NhStatus::Local,
            Some(NexthopState::Reachable { metric }) => NhStatus::Reachable(*metric),
        }
    }

    /// Accepted by import and its next hop is usable (RFC 4271 §9.1.2.1).
    pub fn eligible(&self, p: &PathInfo) -> bool {
        p.accepted()
            && !matches!(
                self.nh_status(p),
                NhStatus::Unresolved | NhStatus::Unreachable(_) | NhStatus::OwnAddress
            )
    }

    /// RFC 4271 §6.3: a NEXT_HOP that is the receiving speaker's own
    /// address is semantically incorrect and the route is ignored. The
    /// exception is a peer on this node (the CNI on `::1`/`127.0.0.1`, or
    /// any peer whose address is one of ours): every next hop it can give
    /// is one of our addresses, and its routes are kept and re-advertised
    /// with next-hop-self (README "What you just saw"). "Local" is learnt
    /// from the FIB, at receive time when the next hop is watched already,
    /// else when the FIB answers the watch: either way the path becomes a
    /// treat-as-withdraw (`Rib::receive`, `Rib::set_nexthop`); until the
    /// answer the decision sees [`NhStatus::OwnAddress`] here.
    fn local_next_hop_allowed(&self, p: &PathInfo) -> bool {
        self.own_next_hop_allowed(p.peer, p.post.next_hop.address)
    }

    fn own_next_hop_allowed(&self, peer: PeerId, nh: IpAddr) -> bool {
        // A leaked path's next hop was judged in its own domain.
        if crate::attrs::is_leak_peer(peer) {
            return true;
        }
        self.peers.get(&peer).is_none_or(|peer| {
            let addr = peer.cfg.address;
            addr.is_loopback()
                || addr == nh
                || matches!(self.nexthops.get(&addr), Some(NexthopState::Local))
        })
    }

    /// `nh` is known to be one of our own addresses and `peer` may not use
    /// it (see [`Ctx::local_next_hop_allowed`]).
    pub fn own_next_hop_refused(&self, peer: PeerId, nh: IpAddr) -> bool {
        matches!(self.nexthops.get(&nh), Some(NexthopState::Local))
            && !self.own_next_hop_allowed(peer, nh)
    }

    pub fn is_ebgp(&self, peer: PeerId) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|p| p.cfg.remote_asn != self.cfg.local_asn)
    }

    pub fn peer_name(&self, peer: PeerId) -> String {
        if peer == LOCAL_PEER {
            return "local".into();
        }
        self.peers
            .get(&peer)
            .map_or_else(|| format!("peer {peer}"), |p| p.cfg.name.clone())
    }

    pub fn candidate(&self, p: &PathInfo) -> Candidate {
        let a = &p.post.attrs;
        let peer = self.peers.get(&p.peer);
        let ebgp = self.is_ebgp(p.peer);
        let peer_router_id = peer
            .and_then(|q| q.session.as_ref())
            .map_or(Ipv4Addr::UNSPECIFIED, |s| s.remote_router_id);
        Candidate {
            local: p.is_local(),
            // Import already dropped a LOCAL_PREF received over eBGP.
            local_pref: a.local_pref.unwrap_or(100),
            as_path_len: a.as_path.path_len(),
            origin: a.origin.unwrap_or(Origin::Incomplete),
            med: a.med.unwrap_or(0),
            neighbor_as: a.as_path.first_asn(),
            ebgp,
            igp_metric: match self.nh_status(p) {
                NhStatus::Reachable(m) => m,
                _ => 0,
            },
            router_id: if p.is_local() || crate::attrs::is_leak_peer(p.peer) {
                self.cfg.router_id
            } else {
                a.originator_id.unwrap_or(peer_router_id)
            },
            cluster_list_len: a.cluster_list.len(),
            peer_address: peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |q| q.cfg.address),
        }
    }

    pub fn decision_ctx(&self) -> DecisionCtx {
        DecisionCtx {
            always_compare_med: self.cfg.always_compare_med,
        }
    }

    /// Runs the decision over `dest`'s eligible paths and hands `f` the
    /// path indices, candidates and fates, in canonical order (by peer
    /// address, locals first, so the outcome never depends on arrival
    /// order). Up to [`INLINE_PATHS`] paths the buffers live on the stack:
    /// a decision for the common one or two paths allocates nothing.
    pub fn with_decision<R>(
        &self,
        dest: &Dest,
        f: impl FnOnce(&[usize], &[Candidate], &[Fate]) -> R,
    ) -> R {
        let paths = dest.paths();
        let eligible = || (0..paths.len()).filter(|&i| self.eligible(&paths[i]));
        let n = eligible().count();
        let key = |i: usize, c: &Candidate| (!c.local, c.peer_address, paths[i].peer);
        let run = |idx: &mut [usize], cands: &mut [Candidate], fates: &mut [Fate]| {
            for (slot, i) in idx.iter_mut().zip(eligible()) {
                *slot = i;
            }
            for (c, &i) in cands.iter_mut().zip(idx.iter()) {
                *c = self.candidate(&paths[i]);
            }
            // Sort indices and candidates together: a small insertion
            // sort (never allocates, and n is small).
            for k in 1..idx.len() {
                let mut j = k;
                while j > 0 && key(idx[j], &cands[j]) < key(idx[j - 1], &cands[j - 1]) {
                    idx.swap(j, j - 1);
                    cands.swap(j, j - 1);
                    j -= 1;
                }
            }
            decision::decide(
                cands,
                self.cfg.max_paths,
                self.cfg.multipath_relax,
                &self.decision_ctx(),
                fates,
            );
        };
        if n == 0 {
            return f(&[], &[], &[]);
        }
        if n <= INLINE_PATHS {
            let filler = self.candidate(&paths[eligible().next().expect("n > 0")]);
            let mut idx = [0usize; INLINE_PATHS];
            let mut cands = [filler; INLINE_PATHS];
            let mut fates = [Fate::In; INLINE_PATHS];
            run(&mut idx[..n], &mut cands[..n], &mut fates[..n]);
            f(&idx[..n], &cands[..n], &fates[..n])
        } else {
            let filler = self.candidate(&paths[eligible().next().expect("n > 0")]);
            let (mut idx, mut cands, mut fates) = (vec![0; n], vec![filler; n], vec![Fate::In; n]);
            run(&mut idx, &mut cands, &mut fates);
            f(&idx, &cands, &fates)
        }
    }

    /// Runs the decision over `dest` and records the selection.
    pub fn decide(&self, dest: &mut Dest) {
        let paths = dest.paths();
        if paths.len() == 1 {
            let n = usize::from(self.eligible(&paths[0]));
            dest.set_selection(&[0], n);
            return;
        }
        // The selection: best, then the multipath set, in candidate order.
        let mut order = [0usize; INLINE_PATHS];
        let (n, spill) = self.with_decision(dest, |idx, _, fates| {
            let chosen = || {
                let best = fates.iter().position(|f| *f == Fate::Best);
                best.into_iter()
                    .chain((0..fates.len()).filter(|&k| fates[k] == Fate::Multipath))
                    .map(|k| idx[k])
            };
            let n = chosen().count();
            if n <= INLINE_PATHS {
                for (slot, i) in order.iter_mut().zip(chosen()) {
                    *slot = i;
                }
                (n, None)
            } else {
                (n, Some(chosen().collect::<Vec<usize>>()))
            }
        });
        match spill {
            None => dest.set_selection(&order[..n], n),
            Some(v) => dest.set_selection(&v, n),
        }
    }

    /// The next-hop sets the FIB should hold for `dest`: the best (the
    /// multipath set's reachable next hops) and the backup (see
    /// [`Ctx::backup_set`]); `None` for nothing.
    pub fn fib_set(&self, dest: &Dest) -> Option<(Vec<NextHop>, Vec<NextHop>)> {
        let best = self.best_set(dest)?;
        let backup = self.backup_set(dest, &best);
        Some((best, backup))
    }

    /// Where `dest` would go if every next hop of `best` failed: the
    /// multipath set the decision picks among the other paths that are
    /// eligible and reachable through other next hops (RFC 4271 §9.1.2
    /// run on what would be left). Empty when there is none. The FIB
    /// forwards on it as soon as `best` is unreachable, before this RIB has
    /// selected again.
    fn backup_set(&self, dest: &Dest, best: &[NextHop]) -> Vec<NextHop> {
        let n = dest.nbest();
        let paths = dest.paths();
        if paths.len() <= n {
            return Vec::new();
        }
        let mut rest: Vec<&Arc<PathInfo>> = paths[n..]
            .iter()
            .filter(|p| {
                !p.is_local()
                    && self.eligible(p)
                    && matches!(self.nh_status(p), NhStatus::Reachable(_))
                    && !best.contains(&p.post.next_hop)
            })
            .collect();
        if rest.is_empty() {
            return Vec::new();
        }
        // Canonical order, as for the decision itself.
        rest.sort_by_key(|p| {
            self.peers
                .get(&p.peer)
                .map(|q| q.cfg.address)
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        });
        let cands: Vec<Candidate> = rest.iter().map(|p| self.candidate(p)).collect();
        let chosen = decision::select(
            &cands,
            self.cfg.max_paths,
            self.cfg.multipath_relax,
            &self.decision_ctx(),
        );
        let mut v: Vec<NextHop> = chosen.iter().map(|&i| rest[i].post.next_hop).collect();
        v.sort_by_key(|h| (h.address, h.link_local));
        v.dedup();
        v
    }

    /// The reachable next hops of `dest`'s multipath set, `None` for
    /// nothing to install.
    fn best_set(&self, dest: &Dest) -> Option<Vec<NextHop>> {
        if !self.cfg.install {
            return None;
        }
        let n = dest.nbest();
        let best = dest.best()?;
        if best.is_local() || dest.path_of(LOCAL_PEER).is_some() {
            return None;
        }
        if self.nh_status(best) == NhStatus::Local {
            return None;
        }
        let mut v: Vec<NextHop> = dest.paths()[..n]
            .iter()
            .filter(|p| matches!(self.nh_status(p), NhStatus::Reachable(_)))
            .map(|p| p.post.next_hop)
            .collect();
        v.sort_by_key(|h| (h.address, h.link_local));
        v.dedup();
        (!v.is_empty()).then_some(v)
    }
}
