//! What kernel notifications left to look at, and when: links that went
//! down, nexthop objects the kernel deleted, routes of ours someone else
//! touched, whether to resolve next hops again, whether to compare our
//! view with a dump of the kernel table, and the debounce before acting.
//!
//! The kernel guarantee relied on, or rather its absence: when a link goes
//! down the kernel flushes the routes through it and the nexthop objects on
//! it (nh_netdev_event in net/ipv4/nexthop.c) without a notification per
//! route, so what went through it is unknown until written again.

use std::mem;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::msg::KernelHop;

/// Quiet time after a link/address/route notification before next hops are
/// resolved again.
const DEBOUNCE: Duration = Duration::from_millis(60);

/// Touched prefixes gathered one by one up to this many; past it the whole
/// table is compared with a dump instead (one dump is cheaper than
/// looking up that many prefixes, and the list stays bounded).
const TOUCHED_MAX: usize = 16 * 1024;

#[derive(Default)]
pub(crate) struct Recheck {
    /// When to look again (None: nothing to look at).
    due: Option<Instant>,
    /// Gathered until then.
    changes: Changes,
}

/// What the kernel changed behind our back, gathered by [`Recheck`] and
/// taken when it is time to act.
#[derive(Default)]
pub(crate) struct Changes {
    links_down: Vec<u32>,
    /// Our nexthop objects the kernel deleted.
    objects_gone: Vec<Arc<[KernelHop]>>,
    /// Routes of ours in the kernel that someone else added, replaced or
    /// deleted (at most [`TOUCHED_MAX`]; more make `verify`).
    pub touched: Vec<IpNet>,
    /// Resolve every next hop again (anything but `touched` asks for it).
    pub resolve: bool,
    /// Compare our view with a dump of the kernel table.
    pub verify: bool,
    /// Notifications were lost: read links, nexthop objects and routes
    /// again (implies `verify`).
    pub resync: bool,
}

impl Recheck {
    /// Resolves next hops again after the debounce, unless a look is due
    /// already.
    pub(crate) fn soon(&mut self) {
        self.changes.resolve = true;
        self.after_debounce();
    }

    fn after_debounce(&mut self) {
        if self.due.is_none() {
            self.due = Some(Instant::now() + DEBOUNCE);
        }
    }

    /// Resolves next hops again at the next turn.
    pub(crate) fn now(&mut self) {
        self.changes.resolve = true;
        self.due = Some(Instant::now());
    }

    /// Someone else changed these prefixes' routes in our table: they are
    /// looked at after the debounce (so a burst is taken at once).
    pub(crate) fn touched(&mut self, prefixes: Vec<IpNet>) {
        let c = &mut self.changes;
        if !c.verify {
            c.touched.extend(prefixes);
            if c.touched.len() > TOUCHED_MAX {
                c.touched = Vec::new();
                c.verify = true;
            }
        }
        self.after_debounce();
    }

    /// Notifications were lost: everything is read again.
    pub(crate) fn resync(&mut self) {
        self.changes.resync = true;
        self.verify();
    }

    pub(crate) fn due(&self) -> Option<Instant> {
        self.due
    }

    pub(crate) fn link_down(&mut self, index: u32) {
        self.changes.links_down.push(index);
    }

    pub(crate) fn object_gone(&mut self, hops: Arc<[KernelHop]>) {
        self.changes.objects_gone.push(hops);
    }

    /// The kernel table is to be compared with our view (which covers
    /// whatever was touched).
    pub(crate) fn verify(&mut self) {
        self.changes.verify = true;
        self.changes.touched = Vec::new();
    }

    /// If the look is due at `now`: what to look at, taken.
    pub(crate) fn take_if_due(&mut self, now: Instant) -> Option<Changes> {
        if self.due.is_none_or(|t| t > now) {
            return None;
        }
        self.due = None;
        Some(mem::take(&mut self.changes))
    }
}

impl Changes {
    /// Our nexthop object with these hops is gone from the kernel.
    pub(crate) fn object_gone(&mut self, hops: Arc<[KernelHop]>) {
        self.objects_gone.push(hops);
    }

    /// How many objects are gone.
    pub(crate) fn objects_gone(&self) -> usize {
        self.objects_gone.len()
    }

    /// How many links went down.
    pub(crate) fn links_down(&self) -> usize {
        self.links_down.len()
    }

    /// Whether something went away at all.
    pub(crate) fn any_flushed(&self) -> bool {
        !self.links_down.is_empty() || !self.objects_gone.is_empty()
    }

    /// Whether routes installed with `hops` are gone or changed: through a
    /// link that went down, or through an object the kernel deleted (it
    /// flushes the objects of a link that loses carrier, and removes the
    /// member from groups).
    pub(crate) fn flushed(&self, hops: &[KernelHop]) -> bool {
        hops.iter().any(|k| self.links_down.contains(&k.ifindex))
            || self
                .objects_gone
                .iter()
                .any(|g| g[..] == *hops || (g.len() == 1 && hops.contains(&g[0])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::msg::hop;

    #[test]
    fn a_look_waits_for_the_debounce_and_takes_everything_once() {
        let mut r = Recheck::default();
        let start = Instant::now();
        assert!(
            r.take_if_due(start + DEBOUNCE * 10).is_none(),
            "nothing due"
        );
        r.link_down(3);
        r.soon();
        let due = r.due().unwrap();
        r.soon();
        assert_eq!(r.due(), Some(due), "a later notice does not push it back");
        assert!(r.take_if_due(start).is_none(), "not before the debounce");
        let f = r.take_if_due(due).unwrap();
        assert!(f.any_flushed());
        assert!(!f.verify);
        r.now();
        r.verify();
        let f = r.take_if_due(Instant::now()).unwrap();
        assert!(!f.any_flushed(), "taken once");
        assert!(f.verify);
    }

    #[test]
    fn touched_prefixes_are_gathered_bounded_and_need_no_resolution() {
        let mut r = Recheck::default();
        let p: IpNet = "10.0.0.0/24".parse().unwrap();
        r.touched(vec![p]);
        r.touched(vec![p]);
        let due = r.due().expect("scheduled after the debounce");
        let f = r.take_if_due(due).unwrap();
        assert_eq!(f.touched, vec![p, p]);
        assert!(!f.resolve && !f.verify);
        // Past the bound: one comparison with a dump instead.
        r.touched(vec![p; TOUCHED_MAX + 1]);
        r.touched(vec![p]);
        let f = r.take_if_due(r.due().unwrap()).unwrap();
        assert!(f.touched.is_empty() && f.verify);
        r.soon();
        r.resync();
        let f = r.take_if_due(r.due().unwrap()).unwrap();
        assert!(f.resolve && f.verify && f.resync);
    }

    #[test]
    fn flushed_covers_routes_through_a_down_link_or_a_deleted_object() {
        let a = hop("10.0.0.1", 2);
        let b = hop("10.0.1.1", 3);
        let c = hop("10.0.2.1", 4);
        let mut r = Recheck::default();
        r.link_down(2);
        r.object_gone(Arc::from([b]));
        r.object_gone(Arc::from([a, c]));
        r.now();
        let f = r.take_if_due(Instant::now()).unwrap();
        assert!(f.flushed(&[a]), "through the down link");
        assert!(
            f.flushed(&[b, c]),
            "a deleted single object is a group's member"
        );
        assert!(
            !f.flushed(&[c]),
            "a deleted group does not take its members"
        );
        assert!(f.flushed(&[a, c]));
        assert!(!f.flushed(&[hop("10.0.3.1", 5)]));
    }
}
