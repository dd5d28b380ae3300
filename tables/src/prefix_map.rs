//! Prefix-keyed maps: one B-tree per address family, so an IPv4 key costs 5
//! bytes instead of the 18 of `IpNet` (at a million routes the keys are a
//! large part of a table).
//!
//! B-trees rather than hash tables, for memory: a hash table of a million
//! entries doubles in one step (briefly holding both tables) and then sits
//! half empty, where a B-tree grows a node at a time and its leaves stay
//! about two thirds full. Lookups cost a few more cache misses; iteration is
//! in prefix order, and a walk can resume after any key (`range_from`).

use std::collections::BTreeMap;
use std::ops::Bound;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// A map from prefixes to `T`, iterated IPv4 first, then IPv6, each in
/// `IpNet` order.
#[derive(Debug, Clone)]
pub struct PrefixMap<T> {
    v4: BTreeMap<Ipv4Net, T>,
    v6: BTreeMap<Ipv6Net, T>,
}

impl<T> Default for PrefixMap<T> {
    fn default() -> Self {
        PrefixMap {
            v4: BTreeMap::new(),
            v6: BTreeMap::new(),
        }
    }
}

impl<T: Default> PrefixMap<T> {
    /// The entry for `p`, inserted as `T::default()` if absent.
    pub fn entry(&mut self, p: IpNet) -> &mut T {
        self.get_or_insert_with(p, T::default)
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

    pub fn contains(&self, p: &IpNet) -> bool {
        self.get(p).is_some()
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

    /// Hands `p`'s value to `keep` and removes it unless `keep` says true,
    /// with one lookup; None when `p` is absent, else whether it was kept.
    pub fn update_or_remove(
        &mut self,
        p: IpNet,
        keep: impl FnOnce(&mut T) -> bool,
    ) -> Option<bool> {
        use std::collections::btree_map::Entry;
        fn at<K: Ord, T>(e: Entry<'_, K, T>, keep: impl FnOnce(&mut T) -> bool) -> Option<bool> {
            let Entry::Occupied(mut o) = e else {
                return None;
            };
            let kept = keep(o.get_mut());
            if !kept {
                o.remove();
            }
            Some(kept)
        }
        match p {
            IpNet::V4(n) => at(self.v4.entry(n), keep),
            IpNet::V6(n) => at(self.v6.entry(n), keep),
        }
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    pub fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
    }

    pub fn iter(&self) -> impl Iterator<Item = (IpNet, &T)> {
        let v4 = self.v4.iter().map(|(k, v)| (IpNet::V4(*k), v));
        v4.chain(self.v6.iter().map(|(k, v)| (IpNet::V6(*k), v)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (IpNet, &mut T)> {
        let v4 = self.v4.iter_mut().map(|(k, v)| (IpNet::V4(*k), v));
        v4.chain(self.v6.iter_mut().map(|(k, v)| (IpNet::V6(*k), v)))
    }

    pub fn keys(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.v4.values().chain(self.v6.values())
    }

    /// The entries after `after` (from the start when None), in iteration
    /// order: a walk over the map that resumes where it stopped.
    pub fn range_from(&self, after: Option<IpNet>) -> Box<dyn Iterator<Item = (IpNet, &T)> + '_> {
        let v6 = |b: Bound<Ipv6Net>| {
            self.v6
                .range((b, Bound::Unbounded))
                .map(|(k, v)| (IpNet::V6(*k), v))
        };
        match after {
            None => Box::new(self.iter()),
            Some(IpNet::V4(a)) => Box::new(
                self.v4
                    .range((Bound::Excluded(a), Bound::Unbounded))
                    .map(|(k, v)| (IpNet::V4(*k), v))
                    .chain(v6(Bound::Unbounded)),
            ),
            Some(IpNet::V6(a)) => Box::new(v6(Bound::Excluded(a))),
        }
    }

    /// The entries below `bound` (all, when None), highest first (IPv6
    /// above IPv4): a walk down the map that resumes below any key.
    pub fn iter_below(&self, bound: Option<IpNet>) -> Box<dyn Iterator<Item = (IpNet, &T)> + '_> {
        let v4 = |b: Bound<Ipv4Net>| {
            self.v4
                .range((Bound::Unbounded, b))
                .rev()
                .map(|(k, v)| (IpNet::V4(*k), v))
        };
        let v6 = |b: Bound<Ipv6Net>| {
            self.v6
                .range((Bound::Unbounded, b))
                .rev()
                .map(|(k, v)| (IpNet::V6(*k), v))
        };
        match bound {
            None => Box::new(v6(Bound::Unbounded).chain(v4(Bound::Unbounded))),
            Some(IpNet::V6(b)) => Box::new(v6(Bound::Excluded(b)).chain(v4(Bound::Unbounded))),
            Some(IpNet::V4(b)) => Box::new(v4(Bound::Excluded(b))),
        }
    }

    /// As [`PrefixMap::iter_below`], with the values mutable: a walk down
    /// the map that changes what it passes without looking each key up.
    pub fn iter_below_mut(
        &mut self,
        bound: Option<IpNet>,
    ) -> Box<dyn Iterator<Item = (IpNet, &mut T)> + '_> {
        fn down<K: Ord + Copy, T>(
            m: &mut BTreeMap<K, T>,
            b: Bound<K>,
            net: fn(K) -> IpNet,
        ) -> impl Iterator<Item = (IpNet, &mut T)> {
            m.range_mut((Bound::Unbounded, b))
                .rev()
                .map(move |(k, v)| (net(*k), v))
        }
        let (v4, v6) = (&mut self.v4, &mut self.v6);
        match bound {
            None => Box::new(down(v6, Bound::Unbounded, IpNet::V6).chain(down(
                v4,
                Bound::Unbounded,
                IpNet::V4,
            ))),
            Some(IpNet::V6(b)) => Box::new(down(v6, Bound::Excluded(b), IpNet::V6).chain(down(
                v4,
                Bound::Unbounded,
                IpNet::V4,
            ))),
            Some(IpNet::V4(b)) => Box::new(down(v4, Bound::Excluded(b), IpNet::V4)),
        }
    }

    /// Removes and returns up to `n` entries below `bound` (all, when None),
    /// highest first (IPv6 above IPv4).
    pub fn take_below(&mut self, bound: Option<IpNet>, n: usize) -> Vec<(IpNet, T)> {
        let keys: Vec<IpNet> = self.iter_below(bound).take(n).map(|(k, _)| k).collect();
        keys.into_iter()
            .map(|k| (k, self.remove(&k).expect("just seen")))
            .collect()
    }

    /// The entry for `p` if present, else the one of the longest prefix
    /// containing `p`.
    pub fn longest_match(&self, p: &IpNet) -> Option<(IpNet, &T)> {
        self.containing(p, p.prefix_len())
    }

    /// The longest prefix strictly shorter than `p` that contains it.
    pub fn covering(&self, p: &IpNet) -> Option<(IpNet, &T)> {
        let len = p.prefix_len().checked_sub(1)?;
        self.containing(p, len)
    }

    /// The longest prefix of at most `max_len` bits containing `p`.
    fn containing(&self, p: &IpNet, max_len: u8) -> Option<(IpNet, &T)> {
        (0..=max_len).rev().find_map(|len| {
            let q = IpNet::new(p.addr(), len).ok()?.trunc();
            self.get(&q).map(|v| (q, v))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn both_families_in_prefix_order() {
        let mut t: PrefixMap<u32> = PrefixMap::default();
        for (i, p) in ["2001:db8::/32", "10.1.0.0/16", "10.0.0.0/8", "::/0"]
            .iter()
            .enumerate()
        {
            *t.entry(net(p)) = i as u32;
        }
        let keys: Vec<String> = t.keys().map(|k| k.to_string()).collect();
        assert_eq!(keys, ["10.0.0.0/8", "10.1.0.0/16", "::/0", "2001:db8::/32"]);
        assert_eq!(t.get(&net("10.1.0.0/16")), Some(&1));
        assert_eq!(t.remove(&net("::/0")), Some(3));
        assert!(t.get_mut(&net("::/0")).is_none());
        assert_eq!(t.values().count(), 3);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn a_walk_resumes_after_any_key() {
        let mut t: PrefixMap<()> = PrefixMap::default();
        for p in ["10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32", "fd00::/8"] {
            t.insert(net(p), ());
        }
        let from = |a: Option<&str>| -> Vec<String> {
            t.range_from(a.map(net))
                .map(|(k, _)| k.to_string())
                .collect()
        };
        assert_eq!(from(None).len(), 4);
        assert_eq!(
            from(Some("10.0.0.0/8")),
            ["10.1.0.0/16", "2001:db8::/32", "fd00::/8"]
        );
        // A key that is not (or no longer) in the map works too.
        assert_eq!(
            from(Some("10.0.5.0/24")),
            ["10.1.0.0/16", "2001:db8::/32", "fd00::/8"]
        );
        assert_eq!(from(Some("192.0.2.0/24")), ["2001:db8::/32", "fd00::/8"]);
        assert_eq!(from(Some("2001:db8::/32")), ["fd00::/8"]);
        assert!(from(Some("fd00::/8")).is_empty());
    }

    #[test]
    fn walks_down_below_a_bound() {
        let mut t: PrefixMap<()> = PrefixMap::default();
        for p in ["10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32", "fd00::/8"] {
            t.insert(net(p), ());
        }
        let below = |b: Option<&str>| -> Vec<String> {
            t.iter_below(b.map(net))
                .map(|(k, _)| k.to_string())
                .collect()
        };
        assert_eq!(
            below(None),
            ["fd00::/8", "2001:db8::/32", "10.1.0.0/16", "10.0.0.0/8"]
        );
        assert_eq!(
            below(Some("fd00::/8")),
            ["2001:db8::/32", "10.1.0.0/16", "10.0.0.0/8"]
        );
        assert_eq!(below(Some("::/0")), ["10.1.0.0/16", "10.0.0.0/8"]);
        assert_eq!(below(Some("10.1.0.0/16")), ["10.0.0.0/8"]);
        assert!(below(Some("10.0.0.0/8")).is_empty());
    }

    #[test]
    fn walks_down_mutably_as_it_walks_down() {
        let mut t: PrefixMap<u32> = PrefixMap::default();
        for p in ["10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32", "fd00::/8"] {
            t.insert(net(p), 0);
        }
        for b in [None, Some("fd00::/8"), Some("::/0"), Some("10.1.0.0/16")] {
            let b = b.map(net);
            let keys: Vec<IpNet> = t.iter_below(b).map(|(k, _)| k).collect();
            let walked: Vec<IpNet> = t
                .iter_below_mut(b)
                .map(|(k, v)| {
                    *v += 1;
                    k
                })
                .collect();
            assert_eq!(walked, keys, "bound {b:?}");
        }
        // Each value was changed once per walk that passed it.
        let counts: Vec<u32> = t.iter().map(|(_, v)| *v).collect();
        assert_eq!(counts, [4, 3, 2, 1]);
    }

    #[test]
    fn an_entry_is_updated_or_removed_in_one_go() {
        let mut t: PrefixMap<u32> = PrefixMap::default();
        t.insert(net("10.0.0.0/8"), 1);
        t.insert(net("fd00::/8"), 1);
        assert_eq!(t.update_or_remove(net("10.1.0.0/16"), |_| true), None);
        let bump = |v: &mut u32| {
            *v += 1;
            *v < 3
        };
        assert_eq!(t.update_or_remove(net("10.0.0.0/8"), bump), Some(true));
        assert_eq!(t.get(&net("10.0.0.0/8")), Some(&2));
        assert_eq!(t.update_or_remove(net("10.0.0.0/8"), bump), Some(false));
        assert!(!t.contains(&net("10.0.0.0/8")));
        assert_eq!(t.update_or_remove(net("fd00::/8"), |_| false), Some(false));
        assert!(t.is_empty());
    }

    #[test]
    fn takes_highest_first_below_a_bound() {
        let mut t: PrefixMap<()> = PrefixMap::default();
        for p in [
            "10.0.0.0/8",
            "10.1.0.0/16",
            "192.0.2.0/24",
            "2001:db8::/32",
            "fd00::/8",
        ] {
            t.insert(net(p), ());
        }
        let names = |v: Vec<(IpNet, ())>| -> Vec<String> {
            v.into_iter().map(|(k, _)| k.to_string()).collect()
        };
        assert_eq!(
            names(t.take_below(None, 3)),
            ["fd00::/8", "2001:db8::/32", "192.0.2.0/24"]
        );
        // Something above the bound arrives: it waits for the next sweep.
        t.insert(net("2001:db8:1::/48"), ());
        let bound = Some(net("192.0.2.0/24"));
        assert_eq!(
            names(t.take_below(bound, 10)),
            ["10.1.0.0/16", "10.0.0.0/8"]
        );
        assert!(t.take_below(Some(net("10.0.0.0/8")), 10).is_empty());
        assert_eq!(names(t.take_below(None, 10)), ["2001:db8:1::/48"]);
        assert!(t.is_empty());
    }

    #[test]
    fn longest_match_and_covering() {
        let mut t: PrefixMap<u8> = PrefixMap::default();
        t.insert(net("10.0.0.0/8"), 8);
        t.insert(net("10.1.0.0/16"), 16);
        t.insert(net("::/0"), 0);
        let lm = |p: &str| t.longest_match(&net(p)).map(|(k, _)| k.to_string());
        let cov = |p: &str| t.covering(&net(p)).map(|(k, _)| k.to_string());
        assert_eq!(lm("10.1.2.0/24").as_deref(), Some("10.1.0.0/16"));
        assert_eq!(lm("10.1.0.0/16").as_deref(), Some("10.1.0.0/16"));
        assert_eq!(cov("10.1.0.0/16").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(cov("10.0.0.0/8"), None);
        assert_eq!(lm("192.0.2.0/24"), None);
        assert_eq!(lm("2001:db8::/32").as_deref(), Some("::/0"));
        assert_eq!(cov("::/0"), None);
    }
}
