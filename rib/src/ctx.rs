//! What the RIB's pure parts (decision, import, export, explain) read: the
//! configured peers, the next hops' states and the interned attributes.
//!
//! The event handlers in `rib.rs` own this state and lend it out as a
//! [`Ctx`]; the parts depend only on this module, never on `rib.rs`.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use tables::Numbered;
use wire::{NextHop, Origin};

use crate::attrs::{Attrs, Interner, NhSet, PathInfo, LOCAL_PEER};
use crate::decision::{self, Candidate, DecisionCtx};
use crate::policy::Policies;
use crate::table::Dest;
use crate::{NexthopState, PeerConfig, PeerId, RibConfig, SessionInfo};

/// A configured peer and its session, if up.
pub(crate) struct Peer {
    pub cfg: PeerConfig,
    pub session: Option<SessionInfo>,
    pub received: usize,
    pub accepted: usize,
}

/// The RIB's interned values, shared by every route that uses them.
#[derive(Default)]
pub(crate) struct Interners {
    pub attrs: Interner<Attrs>,
    pub paths: Interner<PathInfo>,
    /// The next-hop sets given to the FIB, numbered: `Dest` records one
    /// in 4 bytes.
    pub nhsets: Numbered<NhSet>,
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

/// A path's next hop as the decision process sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NhStatus<'a> {
    /// Locally originated: no next hop to resolve.
    Originated,
    Unresolved,
    Unreachable(&'a str),
    Local,
    Reachable(u32),
}

impl<'a> Ctx<'a> {
    pub fn nh_status(&self, p: &PathInfo) -> NhStatus<'a> {
        if p.is_local() {
            return NhStatus::Originated;
        }
        match self.nexthops.get(&p.post.next_hop.address) {
            None => NhStatus::Unresolved,
            Some(NexthopState::Unreachable(r)) => NhStatus::Unreachable(r),
            Some(NexthopState::Local) => NhStatus::Local,
            Some(NexthopState::Reachable { metric }) => NhStatus::Reachable(*metric),
        }
    }

    /// Accepted by import and its next hop is usable (RFC 4271 §9.1.2.1).
    pub fn eligible(&self, p: &PathInfo) -> bool {
        p.accepted()
            && !matches!(
                self.nh_status(p),
                NhStatus::Unresolved | NhStatus::Unreachable(_)
            )
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
            router_id: if p.is_local() {
                self.cfg.router_id
            } else {
                a.originator_id.unwrap_or(peer_router_id)
            },
            cluster_list_len: a.cluster_list.len(),
            peer_address: peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |q| q.cfg.address),
        }
    }

    pub fn decision_ctx(&self) -> DecisionCtx {
        DecisionCtx::default()
    }

    /// Runs the decision over `dest` and records the selection.
    pub fn decide(&self, dest: &mut Dest) {
        let paths = dest.paths();
        if paths.len() == 1 {
            let n = usize::from(self.eligible(&paths[0]));
            dest.set_selection(&[0], n);
            return;
        }
        // Canonical order (by peer address, locals first) so the outcome
        // never depends on arrival order.
        let mut idx: Vec<(usize, Candidate)> = paths
            .iter()
            .enumerate()
            .filter(|(_, p)| self.eligible(p))
            .map(|(i, p)| (i, self.candidate(p)))
            .collect();
        idx.sort_by(|a, b| {
            (!a.1.local, a.1.peer_address, paths[a.0].peer).cmp(&(
                !b.1.local,
                b.1.peer_address,
                paths[b.0].peer,
            ))
        });
        let cands: Vec<Candidate> = idx.iter().map(|(_, c)| c.clone()).collect();
        let sel = decision::select(
            &cands,
            self.cfg.max_paths,
            self.cfg.multipath_relax,
            &self.decision_ctx(),
        );
        let order: Vec<usize> = sel.iter().map(|&i| idx[i].0).collect();
        dest.set_selection(&order, order.len());
    }

    /// The next-hop set the FIB should hold for `dest`, `None` for nothing.
    pub fn fib_set(&self, dest: &Dest) -> Option<Vec<NextHop>> {
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
