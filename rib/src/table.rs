//! Prefix-keyed tables and the per-prefix destination record.
//!
//! IPv4 and IPv6 live in separate hash maps so an IPv4 key costs 5 bytes,
//! not the 18 of `IpNet` (this matters at 1M entries).

use std::collections::HashMap;
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::attrs::{NhSet, PathInfo};
use crate::PeerId;

/// A map from prefixes to `T`.
#[derive(Debug, Clone)]
pub struct PrefixMap<T> {
    v4: HashMap<Ipv4Net, T>,
    v6: HashMap<Ipv6Net, T>,
}

impl<T> Default for PrefixMap<T> {
    fn default() -> Self {
        PrefixMap {
            v4: HashMap::new(),
            v6: HashMap::new(),
        }
    }
}

impl<T> PrefixMap<T> {
    pub fn get(&self, p: &IpNet) -> Option<&T> {
        match p {
            IpNet::V4(n) => self.v4.get(n),
            IpNet::V6(n) => self.v6.get(n),
        }
    }
    pub fn get_mut(&mut self, p: &IpNet) -> Option<&mut T> {
        match p {
            IpNet::V4(n) => self.v4.get_mut(n),
            IpNet::V6(n) => self.v6.get_mut(n),
        }
    }
    pub fn insert(&mut self, p: IpNet, v: T) -> Option<T> {
        match p {
            IpNet::V4(n) => self.v4.insert(n, v),
            IpNet::V6(n) => self.v6.insert(n, v),
        }
    }
    pub fn remove(&mut self, p: &IpNet) -> Option<T> {
        match p {
            IpNet::V4(n) => self.v4.remove(n),
            IpNet::V6(n) => self.v6.remove(n),
        }
    }
    pub fn get_or_insert_with(&mut self, p: IpNet, f: impl FnOnce() -> T) -> &mut T {
        match p {
            IpNet::V4(n) => self.v4.entry(n).or_insert_with(f),
            IpNet::V6(n) => self.v6.entry(n).or_insert_with(f),
        }
    }
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
    }
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, &T)> {
        self.v4
            .iter()
            .map(|(k, v)| (IpNet::V4(*k), v))
            .chain(self.v6.iter().map(|(k, v)| (IpNet::V6(*k), v)))
    }
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (IpNet, &mut T)> {
        self.v4
            .iter_mut()
            .map(|(k, v)| (IpNet::V4(*k), v))
            .chain(self.v6.iter_mut().map(|(k, v)| (IpNet::V6(*k), v)))
    }
    pub fn keys(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.iter().map(|(k, _)| k)
    }
    /// The entry for `p` if present, else the one of the longest prefix
    /// containing `p`.
    pub fn longest_match(&self, p: &IpNet) -> Option<(IpNet, &T)> {
        (0..=p.prefix_len()).rev().find_map(|len| {
            let q = IpNet::new(p.addr(), len).ok()?.trunc();
            self.get(&q).map(|v| (q, v))
        })
    }
    /// The longest prefix strictly shorter than `p` that contains it.
    pub fn covering(&self, p: &IpNet) -> Option<(IpNet, &T)> {
        (0..p.prefix_len()).rev().find_map(|len| {
            let q = IpNet::new(p.addr(), len).ok()?.trunc();
            self.get(&q).map(|v| (q, v))
        })
    }
}

/// The paths of a destination. One path is held inline (the common case:
/// a prefix learned from one peer costs no allocation besides the map
/// slot); more spill into a boxed vector. The `u8` is the size of the
/// multipath set, whose members are at the front (best first).
#[derive(Debug, Default)]
enum Paths {
    #[default]
    Empty,
    One(Arc<PathInfo>, u8),
    // Boxed on purpose: a thin pointer keeps `Dest` at 24 bytes.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<Arc<PathInfo>>>, u8),
}

/// Everything the RIB keeps per prefix: Adj-RIB-In (all peers' paths,
/// with their import verdicts), the Loc-RIB selection and what went to the
/// FIB. 24 bytes.
#[derive(Debug, Default)]
pub struct Dest {
    paths: Paths,
    /// The next-hop set last sent to the FIB (`None`: nothing installed).
    pub fib: Option<Arc<NhSet>>,
}

impl Dest {
    pub fn paths(&self) -> &[Arc<PathInfo>] {
        match &self.paths {
            Paths::Empty => &[],
            Paths::One(p, _) => std::slice::from_ref(p),
            Paths::Many(v, _) => v,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.paths().is_empty()
    }

    /// Size of the multipath set (0 = no best path).
    pub fn nbest(&self) -> usize {
        match &self.paths {
            Paths::Empty => 0,
            Paths::One(_, n) | Paths::Many(_, n) => usize::from(*n),
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
        match &mut self.paths {
            Paths::Empty => {
                self.paths = Paths::One(p, 0);
                None
            }
            Paths::One(old, _) if old.peer == p.peer => Some(std::mem::replace(old, p)),
            Paths::One(..) => {
                let Paths::One(old, n) = std::mem::take(&mut self.paths) else {
                    unreachable!()
                };
                self.paths = Paths::Many(Box::new(vec![old, p]), n);
                None
            }
            Paths::Many(v, _) => match v.iter_mut().find(|o| o.peer == p.peer) {
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
        match &mut self.paths {
            Paths::Empty => None,
            Paths::One(p, _) if p.peer == peer => {
                let Paths::One(p, _) = std::mem::take(&mut self.paths) else {
                    unreachable!()
                };
                Some(p)
            }
            Paths::One(..) => None,
            Paths::Many(v, n) => {
                let i = v.iter().position(|o| o.peer == peer)?;
                let old = v.remove(i);
                if v.len() == 1 {
                    let n = *n;
                    let last = v.pop().expect("one left");
                    self.paths = Paths::One(last, n);
                }
                Some(old)
            }
        }
    }

    /// Replaces every path with `f(path)` (re-import after a policy change).
    pub fn map_paths(&mut self, mut f: impl FnMut(&Arc<PathInfo>) -> Arc<PathInfo>) {
        match &mut self.paths {
            Paths::Empty => {}
            Paths::One(p, _) => *p = f(p),
            Paths::Many(v, _) => v.iter_mut().for_each(|p| *p = f(p)),
        }
    }

    /// Records the selection: `order` lists path indices, multipath set
    /// first (best first), `nbest` of them; the rest follow.
    pub fn set_selection(&mut self, order: &[usize], nbest: usize) {
        let n = u8::try_from(nbest).unwrap_or(u8::MAX);
        match &mut self.paths {
            Paths::Empty => {}
            Paths::One(_, m) => *m = n.min(1),
            Paths::Many(v, m) => {
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
        assert_eq!(std::mem::size_of::<Dest>(), 24);
        assert_eq!(std::mem::size_of::<Ipv4Net>(), 5);
    }
}
