//! The per-prefix destination record.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tables::Id;
pub use tables::PrefixMap;

use crate::attrs::PathInfo;
use crate::PeerId;

/// The paths of a destination. One path is held inline (the common case:
/// a prefix learned from one peer costs no allocation besides the map
/// slot); more spill into a boxed vector. Beside them, in every variant so
/// they sit in the enum's padding: the size of the multipath set (`u8`,
/// its members at the front, best first; 0 = no best path), what the
/// kernel said about the FIB's set, and the next-hop set last given to the
/// FIB (an id in the RIB's `nhsets`; None: nothing, or a withdrawal).
#[derive(Debug)]
enum Paths {
    Empty(FibState, Option<Id>),
    One(Arc<PathInfo>, u8, FibState, Option<Id>),
    // Boxed on purpose: a thin pointer keeps `Dest` at 16 bytes.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<Arc<PathInfo>>>, u8, FibState, Option<Id>),
}

/// Where the next-hop set last given to the FIB stands in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FibState {
    /// Handed to the FIB; the kernel has not confirmed it yet.
    Pending,
    /// The kernel confirmed it (`FibStatus::Installed`).
    Installed,
    /// The kernel refused it (`FibStatus::Failed`; the RIB keeps the words).
    Failed,
}

/// Everything the RIB keeps per prefix: Adj-RIB-In (all peers' paths,
/// with their import verdicts), the Loc-RIB selection and what went to the
/// FIB. 16 bytes.
#[derive(Debug)]
pub struct Dest {
    paths: Paths,
}

impl Default for Dest {
    fn default() -> Self {
        Dest {
            paths: Paths::Empty(FibState::Pending, None),
        }
    }
}

impl Dest {
    pub fn paths(&self) -> &[Arc<PathInfo>] {
        match &self.paths {
            Paths::Empty(..) => &[],
            Paths::One(p, ..) => std::slice::from_ref(p),
            Paths::Many(v, ..) => v,
        }
    }

    /// The next-hop set last given to the FIB (None: none).
    pub fn fib(&self) -> Option<Id> {
        self.fib_parts().1
    }

    /// What the kernel said about [`Dest::fib`] (meaningless when it is
    /// None).
    pub fn fib_state(&self) -> FibState {
        self.fib_parts().0
    }

    fn fib_parts(&self) -> (FibState, Option<Id>) {
        match &self.paths {
            Paths::Empty(s, f) | Paths::One(_, _, s, f) | Paths::Many(_, _, s, f) => (*s, *f),
        }
    }

    /// Records a new set given to the FIB: pending until the kernel answers.
    pub fn set_fib(&mut self, set: Option<Id>) {
        match &mut self.paths {
            Paths::Empty(s, f) | Paths::One(_, _, s, f) | Paths::Many(_, _, s, f) => {
                (*s, *f) = (FibState::Pending, set)
            }
        }
    }

    pub fn set_fib_state(&mut self, state: FibState) {
        match &mut self.paths {
            Paths::Empty(s, _) | Paths::One(_, _, s, _) | Paths::Many(_, _, s, _) => *s = state,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.paths().is_empty()
    }

    /// Size of the multipath set (0 = no best path).
    pub fn nbest(&self) -> usize {
        match &self.paths {
            Paths::Empty(..) => 0,
            Paths::One(_, n, ..) | Paths::Many(_, n, ..) => usize::from(*n),
        }
    }

    pub fn best(&self) -> Option<&Arc<PathInfo>> {
        (self.nbest() > 0).then(|| &self.paths()[0])
    }

    pub fn path_of(&self, peer: PeerId) -> Option<&Arc<PathInfo>> {
        self.paths().iter().find(|p| p.peer == peer)
    }

    /// Adds or replaces the path from `p.peer`; returns the replaced one.
    /// The selection must be recomputed afterwards.
    pub fn upsert(&mut self, p: Arc<PathInfo>) -> Option<Arc<PathInfo>> {
        let (state, fib) = self.fib_parts();
        match &mut self.paths {
            Paths::Empty(..) => {
                self.paths = Paths::One(p, 0, state, fib);
                None
            }
            Paths::One(old, ..) if old.peer == p.peer => Some(std::mem::replace(old, p)),
            Paths::One(..) => {
                let Paths::One(old, n, ..) =
                    std::mem::replace(&mut self.paths, Paths::Empty(state, fib))
                else {
                    unreachable!()
                };
                self.paths = Paths::Many(Box::new(vec![old, p]), n, state, fib);
                None
            }
            Paths::Many(v, ..) => match v.iter_mut().find(|o| o.peer == p.peer) {
                Some(o) => Some(std::mem::replace(o, p)),
                None => {
                    v.push(p);
                    None
                }
            },
        }
    }

    /// Removes the path from `peer`, if any.
    pub fn remove(&mut self, peer: PeerId) -> Option<Arc<PathInfo>> {
        let (state, fib) = self.fib_parts();
        match &mut self.paths {
            Paths::Empty(..) => None,
            Paths::One(p, ..) if p.peer == peer => {
                let Paths::One(p, ..) =
                    std::mem::replace(&mut self.paths, Paths::Empty(state, fib))
                else {
                    unreachable!()
                };
                Some(p)
            }
            Paths::One(..) => None,
            Paths::Many(v, n, ..) => {
                let i = v.iter().position(|o| o.peer == peer)?;
                let old = v.remove(i);
                if v.len() == 1 {
                    let n = *n;
                    let last = v.pop().expect("one left");
                    self.paths = Paths::One(last, n, state, fib);
                }
                Some(old)
            }
        }
    }

    /// Replaces every path with `f(path)` (re-import after a policy change).
    pub fn map_paths(&mut self, mut f: impl FnMut(&Arc<PathInfo>) -> Arc<PathInfo>) {
        match &mut self.paths {
            Paths::Empty(..) => {}
            Paths::One(p, ..) => *p = f(p),
            Paths::Many(v, ..) => v.iter_mut().for_each(|p| *p = f(p)),
        }
    }

    /// Records the selection: `order` lists path indices, multipath set
    /// first (best first), `nbest` of them; the rest follow in their
    /// present order. `order` holds distinct indices. In place: a decision
    /// allocates nothing.
    pub fn set_selection(&mut self, order: &[usize], nbest: usize) {
        let n = u8::try_from(nbest).unwrap_or(u8::MAX);
        match &mut self.paths {
            Paths::Empty(..) => {}
            Paths::One(_, m, ..) => *m = n.min(1),
            Paths::Many(v, m, ..) => {
                *m = n;
                for (k, &i) in order.iter().enumerate() {
                    // Moving a path to slot k shifts the unmoved ones before
                    // it by one, so path i now sits at k plus the unmoved
                    // paths that were before it.
                    let moved_before = order[..k].iter().filter(|&&j| j < i).count();
                    let at = k + i - moved_before;
                    v[k..=at].rotate_right(1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_stay_small() {
        assert_eq!(std::mem::size_of::<Dest>(), 16);
        assert_eq!(std::mem::size_of::<ipnet::Ipv4Net>(), 5);
    }

    #[test]
    fn selection_moves_the_chosen_to_the_front_in_order() {
        let attrs = Arc::new(crate::attrs::Attrs {
            next_hop: wire::NextHop::new("192.0.2.1".parse().unwrap()),
            attrs: Default::default(),
        });
        let path = |peer| {
            Arc::new(PathInfo {
                peer,
                pre: attrs.clone(),
                post: attrs.clone(),
                rejected: None,
            })
        };
        let mut d = Dest::default();
        for peer in 1..=5 {
            d.upsert(path(peer));
        }
        d.set_selection(&[3, 1, 4], 2);
        let peers: Vec<PeerId> = d.paths().iter().map(|p| p.peer).collect();
        assert_eq!(peers, vec![4, 2, 5, 1, 3]);
        assert_eq!(d.nbest(), 2);
        d.set_selection(&[0], 1);
        let peers: Vec<PeerId> = d.paths().iter().map(|p| p.peer).collect();
        assert_eq!(peers, vec![4, 2, 5, 1, 3]);
    }
}
