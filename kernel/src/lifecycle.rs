//! The ends of the FIB's life: the initial sync, which removes the routes a
//! previous run left behind once this run's are in, and shutdown, which
//! removes ours (unless they are to stay).
//!
//! The kernel guarantee relied on: a route is keyed by (table, prefix,
//! metric) for RTM_NEWROUTE with NLM_F_REPLACE, so writing a prefix with the
//! metric a previous run used replaced that run's route in place, and only
//! leftovers under another metric or not written again are to be removed.

use ipnet::IpNet;

use crate::table::Current;
use crate::writer::{Op, Track};

/// Routes of a previous run, kept until the daemon says the initial routes
/// are handed over (every peer sent End-of-RIB, RFC 4724 §2, or a deadline
/// passed): removing them sooner would drop prefixes about to be written
/// again.
pub(crate) struct InitialSync {
    /// (prefix, metric) of each; None once synced.
    leftovers: Option<Vec<(IpNet, u32)>>,
    requested: bool,
}

impl InitialSync {
    pub(crate) fn new(leftovers: Vec<(IpNet, u32)>) -> InitialSync {
        InitialSync {
            leftovers: Some(leftovers),
            requested: false,
        }
    }

    /// Leftovers not removed yet (all of them until the sync runs).
    pub(crate) fn leftover_count(&self) -> usize {
        self.leftovers.as_ref().map_or(0, Vec::len)
    }

    pub(crate) fn request(&mut self) {
        self.requested = true;
    }

    /// Whether the initial sync has run: routes and objects of our
    /// protocol that we do not want are strays from then on.
    pub(crate) fn done(&self) -> bool {
        self.leftovers.is_none()
    }

    /// The leftovers, if the sync was requested since last asked and has
    /// not run yet (it runs once).
    pub(crate) fn take_due(&mut self) -> Option<Vec<(IpNet, u32)>> {
        if !std::mem::take(&mut self.requested) {
            return None;
        }
        self.leftovers.take()
    }
}

/// The deletions that remove a previous run's `leftovers`: all but those
/// this run has installed with the same metric (`current` says what we
/// hold at a metric: our own, or the standby's next one), which our writes
/// replaced. Untracked: our view does not follow.
pub(crate) fn leftover_removals(
    leftovers: Vec<(IpNet, u32)>,
    current: impl Fn(&IpNet, u32) -> Current,
) -> Vec<Op> {
    leftovers
        .into_iter()
        .filter(|(p, m)| !matches!(current(p, *m), Current::Installed(_)))
        .map(|(prefix, metric)| Op::Delete {
            prefix,
            metric,
            track: Track::No,
        })
        .collect()
}

/// The deletions that remove ours at shutdown: every prefix the kernel may
/// hold, tracked.
pub(crate) fn shutdown_removals(in_kernel: impl Iterator<Item = IpNet>, metric: u32) -> Vec<Op> {
    in_kernel
        .map(|prefix| Op::Delete {
            prefix,
            metric,
            track: Track::Outcome,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use tables::{Id, Numbered};

    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn deleted(ops: &[Op]) -> Vec<(String, u32, Track)> {
        ops.iter()
            .map(|op| match op {
                Op::Delete {
                    prefix,
                    metric,
                    track,
                } => (prefix.to_string(), *metric, *track),
                other => panic!("not a deletion: {other:?}"),
            })
            .collect()
    }

    fn some_id() -> Id {
        let mut n: Numbered<u32> = Numbered::default();
        n.acquire(&1, || 1.into())
    }

    #[test]
    fn leftovers_replaced_in_place_stay_the_rest_go() {
        let id = some_id();
        let current = |p: &IpNet, m: u32| match (p.to_string().as_str(), m) {
            ("10.0.0.0/24" | "10.0.1.0/24", 20) => Current::Installed(id),
            ("10.0.2.0/24", 20) => Current::Failed,
            _ => Current::Absent,
        };
        let leftovers = vec![
            (net("10.0.0.0/24"), 20), // replaced by ours
            (net("10.0.1.0/24"), 30), // ours went in beside it
            (net("10.0.2.0/24"), 20), // ours was refused
            (net("10.0.3.0/24"), 20), // not wanted any more
        ];
        assert_eq!(
            deleted(&leftover_removals(leftovers, current)),
            [
                ("10.0.1.0/24".into(), 30, Track::No),
                ("10.0.2.0/24".into(), 20, Track::No),
                ("10.0.3.0/24".into(), 20, Track::No),
            ]
        );
    }

    #[test]
    fn the_initial_sync_runs_once_when_requested() {
        let mut s = InitialSync::new(vec![(net("10.0.0.0/24"), 20)]);
        assert_eq!(s.leftover_count(), 1);
        assert_eq!(s.take_due(), None, "not requested yet");
        s.request();
        assert_eq!(s.take_due(), Some(vec![(net("10.0.0.0/24"), 20)]));
        assert_eq!(s.leftover_count(), 0, "synced");
        assert_eq!(s.take_due(), None);
        s.request();
        assert_eq!(s.take_due(), None, "synced already");
    }

    #[test]
    fn shutdown_removes_what_the_kernel_may_hold_tracked() {
        let ops = shutdown_removals([net("10.0.0.0/24"), net("fd00::/64")].into_iter(), 20);
        assert_eq!(
            deleted(&ops),
            [
                ("10.0.0.0/24".into(), 20, Track::Outcome),
                ("fd00::/64".into(), 20, Track::Outcome)
            ]
        );
    }
}
