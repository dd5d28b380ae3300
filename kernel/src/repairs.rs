//! How often a route of ours that someone else changed is put back. A
//! repair is one rewrite after the debounce; but another writer that
//! insists on the same (table, protocol, metric) slot — a second routing
//! daemon on the node, a script in a loop — would make each side undo the
//! other forever. So a prefix is repaired at once at most
//! [`REPAIRS_AT_ONCE`] times per [`WINDOW`]; past that its next repair
//! waits for the window to end, and the worker says so at warn.

use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::hash::FastMap;

pub(crate) const WINDOW: Duration = Duration::from_secs(10);
pub(crate) const REPAIRS_AT_ONCE: u32 = 5;

/// Past this many prefixes remembered, those whose window ended are
/// dropped (the map stays as small as the fight).
const PRUNE_AT: usize = 4096;

#[derive(Default)]
pub(crate) struct Repairs {
    recent: FastMap<IpNet, Recent>,
}

struct Recent {
    count: u32,
    since: Instant,
}

/// When a touched prefix is to be written again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    Now,
    At(Instant),
}

impl Repairs {
    /// Counts a repair of `prefix` at `now` and says when it may happen.
    pub(crate) fn repair(&mut self, prefix: IpNet, now: Instant) -> When {
        if self.recent.len() >= PRUNE_AT {
            self.recent.retain(|_, r| now < r.since + WINDOW);
        }
        let r = self.recent.entry(prefix).or_insert(Recent {
            count: 0,
            since: now,
        });
        if now >= r.since + WINDOW {
            *r = Recent {
                count: 0,
                since: now,
            };
        }
        r.count += 1;
        if r.count <= REPAIRS_AT_ONCE {
            When::Now
        } else {
            When::At(r.since + WINDOW)
        }
    }

    /// `prefix` is no longer ours to repair (withdrawn).
    pub(crate) fn forget(&mut self, prefix: &IpNet) {
        self.recent.remove(prefix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fight_is_repaired_a_few_times_then_once_per_window() {
        let mut r = Repairs::default();
        let p: IpNet = "10.0.0.0/24".parse().unwrap();
        let q: IpNet = "10.0.1.0/24".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..REPAIRS_AT_ONCE {
            assert_eq!(r.repair(p, t0 + Duration::from_millis(i as u64)), When::Now);
        }
        assert_eq!(
            r.repair(p, t0 + Duration::from_secs(1)),
            When::At(t0 + WINDOW)
        );
        assert_eq!(
            r.repair(q, t0 + Duration::from_secs(1)),
            When::Now,
            "per prefix"
        );
        assert_eq!(r.repair(p, t0 + WINDOW), When::Now, "a new window");
        r.forget(&p);
        assert!(!r.recent.contains_key(&p));
    }
}
