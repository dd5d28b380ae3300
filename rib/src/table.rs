//! The per-prefix destination record.

use std::sync::Arc;

use tables::Id;
pub use tables::PrefixMap;

use crate::attrs::PathInfo;
use crate::PeerId;

/// The paths of a destination. One path is held inline (the common case:
/// a prefix learned from one peer costs no allocation besides the map
/// slot); more spill into a boxed vector. Beside them, in every variant so
/// they sit in the enum's padding: the size of the multipath set (`u8`,
/// its members at the front, best first; 0 = no best path) and the
/// next-hop set last given to the FIB (an id in the RIB's `nhsets`; None:
/// nothing, or a withdrawal).
#[derive(Debug)]
enum Paths {
    Empty(Option<Id>),
    One(Arc<PathInfo>, u8, Option<Id>),
    // Boxed on purpose: a thin pointer keeps `Dest` at 16 bytes.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<Arc<PathInfo>>>, u8, Option<Id>),
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
            paths: Paths::Empty(None),
        }
    }
}

impl Dest {
    pub fn paths(&self) -> &[Arc<PathInfo>] {
        match &self.paths {
            Paths::Empty(_) => &[],
            Paths::One(p, ..) => std::slice::from_ref(p),
            Paths::Many(v, ..) => v,
        }
    }

    /// The next-hop set last given to the FIB (None: none).
    pub fn fib(&self) -> Option<Id> {
        match &self.paths {
            Paths::Empty(f) | Paths::One(_, _, f) | Paths::Many(_, _, f) => *f,
        }
    }

    pub fn set_fib(&mut self, set: Option<Id>) {
        match &mut self.paths {
            Paths::Empty(f) | Paths::One(_, _, f) | Paths::Many(_, _, f) => *f = set,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.paths().is_empty()
    }

    /// Size of the multipath set (0 = no best path).
    pub fn nbest(&self) -> usize {
        match &self.paths {
            Paths::Empty(_) => 0,
            Paths::One(_, n, _) | Paths::Many(_, n, _) => usize::from(*n),
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
        let fib = self.fib();
        match &mut self.paths {
            Paths::Empty(_) => {
                self.paths = Paths::One(p, 0, fib);
                None
            }
            Paths::One(old, ..) if old.peer == p.peer => Some(std::mem::replace(old, p)),
            Paths::One(..) => {
                let Paths::One(old, n, _) = std::mem::replace(&mut self.paths, Paths::Empty(fib))
                else {
                    unreachable!()
                };
                self.paths = Paths::Many(Box::new(vec![old, p]), n, fib);
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
        let fib = self.fib();
        match &mut self.paths {
            Paths::Empty(_) => None,
            Paths::One(p, ..) if p.peer == peer => {
                let Paths::One(p, ..) = std::mem::replace(&mut self.paths, Paths::Empty(fib))
                else {
                    unreachable!()
                };
                Some(p)
            }
            Paths::One(..) => None,
            Paths::Many(v, n, _) => {
                let i = v.iter().position(|o| o.peer == peer)?;
                let old = v.remove(i);
                if v.len() == 1 {
                    let n = *n;
                    let last = v.pop().expect("one left");
                    self.paths = Paths::One(last, n, fib);
                }
                Some(old)
            }
        }
    }

    /// Replaces every path with `f(path)` (re-import after a policy change).
    pub fn map_paths(&mut self, mut f: impl FnMut(&Arc<PathInfo>) -> Arc<PathInfo>) {
        match &mut self.paths {
            Paths::Empty(_) => {}
            Paths::One(p, ..) => *p = f(p),
            Paths::Many(v, ..) => v.iter_mut().for_each(|p| *p = f(p)),
        }
    }

    /// Records the selection: `order` lists path indices, multipath set
    /// first (best first), `nbest` of them; the rest follow.
    pub fn set_selection(&mut self, order: &[usize], nbest: usize) {
        let n = u8::try_from(nbest).unwrap_or(u8::MAX);
        match &mut self.paths {
            Paths::Empty(_) => {}
            Paths::One(_, m, _) => *m = n.min(1),
            Paths::Many(v, m, _) => {
                *m = n;
                let old = std::mem::take(&mut **v);
                let mut slots: Vec<Option<Arc<PathInfo>>> = old.into_iter().map(Some).collect();
                for &i in order {
                    if let Some(p) = slots[i].take() {
                        v.push(p);
                    }
                }
                v.extend(slots.into_iter().flatten());
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
}
