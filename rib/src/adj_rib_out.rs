//! The Adj-RIB-Out of one peer, and what is still to be sent to it.
//!
//! Pull model: the decision process only records, per prefix, the state
//! the peer should have ([`AdjRibOut::want`]); the session takes the next
//! UPDATEs when its writer has room ([`AdjRibOut::pull`]). A prefix whose
//! wanted state changes while the peer is slow is recorded once, last
//! state wins, so a slow peer costs memory in proportion to the prefixes
//! that differ, never to the number of changes; and a prefix that flaps
//! back to what was sent costs nothing at all. What `sent` holds is what
//! was handed to the session: a state is recorded there only when it is
//! pulled, never before.

use std::sync::Arc;

use wire::{Family, Prefix, Update};

use crate::attrs::Attrs;
use crate::export::{end_of_rib, UpdateBuilder};
use crate::table::PrefixMap;
use crate::PeerId;

#[derive(Default)]
pub(crate) struct AdjRibOut {
    /// What the peer was sent: the Adj-RIB-Out proper (RFC 4271 §3.2).
    sent: PrefixMap<Arc<Attrs>>,
    /// Prefixes whose wanted state differs from `sent`: the attributes to
    /// announce, or None to withdraw.
    dirty: PrefixMap<Option<Arc<Attrs>>>,
    /// End-of-RIB markers (RFC 4724 §2) to send once the initial table is
    /// out, i.e. the first time nothing is dirty.
    end_of_rib: Vec<Family>,
    /// ROUTE-REFRESH answers (RFC 2918 §4) under way, each a walk over
    /// `sent` that resumes after the prefix last re-sent.
    refreshes: Vec<RefreshWalk>,
}

struct RefreshWalk {
    family: Family,
    after: Option<Prefix>,
}

/// One pull's share for a peer.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Pulled {
    /// The UPDATEs, in order.
    pub updates: Vec<Update>,
    /// Families whose ROUTE-REFRESH answer is complete with these UPDATEs.
    pub refreshed: Vec<Family>,
}

/// The highest IPv4 prefix: a walk of IPv6 prefixes starts after it (every
/// IPv4 key sorts before every IPv6 key in a [`PrefixMap`]).
fn last_v4() -> Prefix {
    "255.255.255.255/32".parse().expect("valid prefix")
}

impl AdjRibOut {
    /// A new session's: the whole table is still to send, then End-of-RIB
    /// for each of `families`.
    pub fn new(families: Vec<Family>) -> AdjRibOut {
        AdjRibOut {
            end_of_rib: families,
            ..Default::default()
        }
    }

    /// The attributes sent for `prefix`, if any.
    pub fn get(&self, prefix: &Prefix) -> Option<&Arc<Attrs>> {
        self.sent.get(prefix)
    }

    pub fn longest_match(&self, prefix: &Prefix) -> Option<(Prefix, &Arc<Attrs>)> {
        self.sent.longest_match(prefix)
    }

    /// What was sent, in prefix order.
    pub fn iter(&self) -> impl Iterator<Item = (Prefix, &Arc<Attrs>)> {
        self.sent.iter()
    }

    /// Prefixes advertised.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    /// Prefixes whose new state is still to send.
    pub fn queued(&self) -> usize {
        self.dirty.len()
    }

    /// Something is left to pull: changes, End-of-RIB or a refresh answer.
    pub fn has_work(&self) -> bool {
        !self.dirty.is_empty() || !self.end_of_rib.is_empty() || !self.refreshes.is_empty()
    }

    /// The peer should now have `want` for `prefix` (None: nothing).
    pub fn want(&mut self, prefix: Prefix, want: Option<Arc<Attrs>>) {
        let same = match (self.sent.get(&prefix), &want) {
            (None, None) => true,
            (Some(old), Some(new)) => Arc::ptr_eq(old, new),
            _ => false,
        };
        if same {
            self.dirty.remove(&prefix);
        } else {
            self.dirty.insert(prefix, want);
        }
    }

    /// The peer asked for `family` again (RFC 2918). The FSM lets at most
    /// one request per family be in flight; a repeat while one is under
    /// way is folded into it.
    pub fn refresh(&mut self, family: Family) {
        if self.refreshes.iter().all(|r| r.family != family) {
            let after = (family == Family::Ipv6Unicast).then(last_v4);
            self.refreshes.push(RefreshWalk { family, after });
        }
    }

    /// Up to `budget` prefixes' UPDATEs, recorded as sent. Changes come
    /// first, in prefix order; End-of-RIB once no change is left of the
    /// initial table; refresh answers take at least half the budget while
    /// they run, so steady churn cannot hold one back for ever.
    pub fn pull(&mut self, peer: PeerId, budget: usize) -> Pulled {
        let budget = budget.max(1);
        let mut b = UpdateBuilder::default();
        let mut refreshed = Vec::new();
        let mut left = budget;
        if !self.refreshes.is_empty() {
            left -= self.walk_refreshes(peer, budget.div_ceil(2), &mut b, &mut refreshed);
        }
        left -= self.take_dirty(peer, left, &mut b);
        if left > 0 && !self.refreshes.is_empty() {
            self.walk_refreshes(peer, left, &mut b, &mut refreshed);
        }
        let mut updates = Vec::new();
        b.flush_into(&mut updates);
        if self.dirty.is_empty() {
            updates.extend(self.end_of_rib.drain(..).map(end_of_rib));
        }
        Pulled { updates, refreshed }
    }

    /// The first `max` changes; returns how many.
    fn take_dirty(&mut self, peer: PeerId, max: usize, b: &mut UpdateBuilder) -> usize {
        let keys: Vec<Prefix> = self.dirty.keys().take(max).collect();
        for p in &keys {
            let want = self.dirty.remove(p).expect("just listed");
            self.apply(peer, *p, want, b);
        }
        keys.len()
    }

    fn apply(
        &mut self,
        peer: PeerId,
        prefix: Prefix,
        want: Option<Arc<Attrs>>,
        b: &mut UpdateBuilder,
    ) {
        match want {
            Some(a) => {
                b.announce(peer, &a, prefix);
                self.sent.insert(prefix, a);
            }
            None => {
                if self.sent.remove(&prefix).is_some() {
                    b.withdraw(peer, prefix);
                }
            }
        }
    }

    /// Re-sends up to `max` prefixes of the refresh walks (a prefix with a
    /// change queued gets the change instead); returns how many.
    fn walk_refreshes(
        &mut self,
        peer: PeerId,
        max: usize,
        b: &mut UpdateBuilder,
        refreshed: &mut Vec<Family>,
    ) -> usize {
        let mut done = 0;
        while done < max {
            let Some(walk) = self.refreshes.first() else {
                break;
            };
            let family = walk.family;
            let step: Vec<(Prefix, Arc<Attrs>)> = self
                .sent
                .range_from(walk.after)
                .take_while(|(p, _)| Family::of_prefix(p) == family)
                .take(max - done)
                .map(|(p, a)| (p, a.clone()))
                .collect();
            let finished = step.len() < max - done;
            done += step.len();
            if let Some((last, _)) = step.last() {
                self.refreshes[0].after = Some(*last);
            }
            for (p, a) in step {
                match self.dirty.remove(&p) {
                    Some(want) => self.apply(peer, p, want, b),
                    None => b.announce(peer, &a, p),
                }
            }
            if finished {
                self.refreshes.remove(0);
                refreshed.push(family);
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use wire::{NextHop, PathAttributes};

    fn attrs(med: u32) -> Arc<Attrs> {
        Arc::new(Attrs {
            next_hop: NextHop::new(IpAddr::from([192, 0, 2, 1])),
            attrs: PathAttributes {
                med: Some(med),
                ..Default::default()
            },
        })
    }

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    /// (announced prefixes with their MED, withdrawn prefixes) of `u`.
    fn contents(updates: &[Update]) -> (Vec<(Prefix, Option<u32>)>, Vec<Prefix>) {
        let mut ann = Vec::new();
        let mut wd = Vec::new();
        for u in updates {
            wd.extend(u.withdrawn.iter().map(|n| Prefix::V4(*n)));
            if let Some(r) = &u.mp_unreach {
                wd.extend(r.withdrawn.iter().copied());
            }
            ann.extend(u.nlri.iter().map(|n| (Prefix::V4(*n), u.attributes.med)));
            if let Some(r) = &u.mp_reach {
                ann.extend(r.nlri.iter().map(|n| (*n, u.attributes.med)));
            }
        }
        (ann, wd)
    }

    #[test]
    fn a_prefix_that_changes_many_times_costs_one_entry_and_sends_its_last_state() {
        let mut adj = AdjRibOut::default();
        let sets: Vec<Arc<Attrs>> = (0..1000).map(attrs).collect();
        for a in &sets {
            adj.want(p("10.0.0.0/24"), Some(a.clone()));
            adj.want(p("10.0.1.0/24"), Some(a.clone()));
        }
        assert_eq!(adj.queued(), 2);
        let (ann, wd) = contents(&adj.pull(1, 100).updates);
        assert_eq!(
            ann,
            vec![(p("10.0.0.0/24"), Some(999)), (p("10.0.1.0/24"), Some(999))]
        );
        assert!(wd.is_empty());
        assert_eq!(adj.len(), 2);
        // Flapping away and back to what was sent: nothing to send.
        adj.want(p("10.0.0.0/24"), None);
        adj.want(p("10.0.0.0/24"), Some(sets[999].clone()));
        assert!(!adj.has_work());
        // Withdrawn: sent once, and only what was advertised.
        adj.want(p("10.0.0.0/24"), None);
        adj.want(p("10.9.0.0/24"), Some(sets[0].clone()));
        adj.want(p("10.9.0.0/24"), None);
        let (ann, wd) = contents(&adj.pull(1, 100).updates);
        assert!(ann.is_empty());
        assert_eq!(wd, vec![p("10.0.0.0/24")]);
        assert_eq!(adj.get(&p("10.0.0.0/24")), None);
    }

    #[test]
    fn the_budget_bounds_a_pull_and_nothing_unpulled_counts_as_sent() {
        let mut adj = AdjRibOut::new(vec![Family::Ipv4Unicast]);
        let a = attrs(1);
        for i in 0..10u8 {
            adj.want(format!("10.0.{i}.0/24").parse().unwrap(), Some(a.clone()));
        }
        let first = adj.pull(1, 4);
        assert_eq!(contents(&first.updates).0.len(), 4);
        assert!(first.updates.iter().all(|u| u.end_of_rib().is_none()));
        assert_eq!((adj.len(), adj.queued()), (4, 6));
        assert_eq!(adj.get(&p("10.0.4.0/24")), None, "not pulled, not sent");
        let second = adj.pull(1, 6);
        assert_eq!(contents(&second.updates).0.len(), 6);
        // End-of-RIB right after the last of the initial table.
        assert_eq!(
            second.updates.last().unwrap().end_of_rib(),
            Some(Family::Ipv4Unicast)
        );
        assert!(!adj.has_work());
        // Not again.
        adj.want(p("10.1.0.0/24"), Some(a));
        let third = adj.pull(1, 10);
        assert!(third.updates.iter().all(|u| u.end_of_rib().is_none()));
    }

    #[test]
    fn a_refresh_resends_the_family_in_steps_and_says_when_it_is_complete() {
        let mut adj = AdjRibOut::default();
        let a = attrs(1);
        for i in 0..6u8 {
            adj.want(format!("10.0.{i}.0/24").parse().unwrap(), Some(a.clone()));
            adj.want(
                format!("2001:db8:{i}::/48").parse().unwrap(),
                Some(a.clone()),
            );
        }
        adj.pull(1, 100);
        adj.refresh(Family::Ipv6Unicast);
        adj.refresh(Family::Ipv6Unicast);
        // A change queued meanwhile goes out in its place, once.
        let b = attrs(2);
        adj.want(p("2001:db8:1::/48"), Some(b.clone()));
        let first = adj.pull(1, 4);
        assert!(first.refreshed.is_empty());
        let (ann, _) = contents(&first.updates);
        assert_eq!(ann.len(), 4);
        let second = adj.pull(1, 4);
        assert_eq!(second.refreshed, vec![Family::Ipv6Unicast]);
        let (more, _) = contents(&second.updates);
        let all: Vec<_> = ann.into_iter().chain(more).collect();
        assert_eq!(all.len(), 6, "each IPv6 prefix once: {all:?}");
        assert!(all.iter().all(|(p, _)| matches!(p, Prefix::V6(_))));
        assert!(all.contains(&(p("2001:db8:1::/48"), Some(2))));
        assert!(!adj.has_work());
        // An empty family is answered at once.
        let mut empty = AdjRibOut::default();
        empty.refresh(Family::Ipv4Unicast);
        assert_eq!(empty.pull(1, 10).refreshed, vec![Family::Ipv4Unicast]);
    }
}
