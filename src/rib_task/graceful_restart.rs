//! Graceful restart for the router task: the helper side (RFC 4724 §4.2),
//! the clock around the RIB's stale paths (`rib::Rib::peer_restarting`),
//! and the restarting side's selection deferral (§4.1, [`Deferral`]).
//!
//! A GR peer's session is lost (no NOTIFICATION) → its paths stay, stale,
//! for up to its restart time (ours when lower). It comes back → the
//! families it did not keep forwarding for go at once, the rest wait for
//! its End-of-RIB (the RIB drops what was not re-sent) for at most
//! `staleTime`. Either time running out removes what is still stale.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use tracing::{info, warn};
use wire::Family;

use rib::{FibChange, Outputs, PeerId, Rib};

use crate::config::GracefulRestart;
use crate::events::PeerGracefulRestart;

const FAMILIES: [Family; 2] = [Family::Ipv4Unicast, Family::Ipv6Unicast];

/// How long a peer's stale paths may stay, and what we wait for.
#[derive(Debug, Clone, Copy)]
pub(super) struct StaleWait {
    pub(super) until: Instant,
    /// The peer is back: waiting for its End-of-RIB (else for the peer).
    pub(super) peer_back: bool,
}

impl StaleWait {
    /// What `show routes`, `explain` and `show neighbors` say of it.
    pub(super) fn note(&self, now: Instant) -> String {
        let left = self.until.saturating_duration_since(now).as_secs();
        if self.peer_back {
            format!("peer restarted, waiting for its End-of-RIB, {left} s left")
        } else {
            format!("peer restarting, {left} s left")
        }
    }
}

/// A peer as graceful restart sees it.
pub(super) struct GrPeer<'a> {
    pub(super) id: PeerId,
    pub(super) name: &'a str,
    /// Its capability in its last session.
    pub(super) capability: Option<&'a PeerGracefulRestart>,
    /// Our settings for it.
    pub(super) ours: GracefulRestart,
}

/// The peer's session was lost without a NOTIFICATION. None: the peer did
/// not offer graceful restart (withdraw its paths as usual); else the RIB
/// keeps them stale, with the wait (None when nothing was kept).
pub(super) fn session_lost(
    rib: &mut Rib,
    p: &GrPeer,
    out: &mut Outputs,
) -> Option<Option<StaleWait>> {
    // §4.2: only the families in its capability are kept.
    let families = p.capability?.families.clone();
    keep_stale(rib, p, &families, "session lost", out)
}

/// The families whose routes a BFD Down leaves stale (RFC 5882 §4.3.2):
/// when the peer's BFD shares fate with its control plane (C bit clear),
/// a BFD failure may be that control plane restarting, and where the peer
/// says its forwarding survives such a restart (F bit) graceful restart
/// applies; a control-plane-independent BFD (C bit set) failing is a
/// forwarding failure, and without the F bit nothing forwards on: those
/// routes go at once.
pub(super) fn bfd_down_keeps(
    capability: Option<&PeerGracefulRestart>,
    control_plane_independent: bool,
) -> Vec<Family> {
    match capability {
        Some(c) if !control_plane_independent && c.restart_time > 0 => c
            .forwarding_preserved
            .iter()
            .copied()
            .filter(|f| c.families.contains(f))
            .collect(),
        _ => Vec::new(),
    }
}

/// BFD declared the peer down: its routes of `families` stay stale as
/// after a lost session (see [`bfd_down_keeps`]); None when there are none.
pub(super) fn bfd_down(
    rib: &mut Rib,
    p: &GrPeer,
    families: &[Family],
    out: &mut Outputs,
) -> Option<Option<StaleWait>> {
    if families.is_empty() {
        return None;
    }
    keep_stale(rib, p, families, "BFD down (C bit clear, F bit set)", out)
}

/// Keep the peer's paths of `families` stale for its restart time (ours
/// when lower); the others go now.
fn keep_stale(
    rib: &mut Rib,
    p: &GrPeer,
    families: &[Family],
    why: &str,
    out: &mut Outputs,
) -> Option<Option<StaleWait>> {
    let cap = p.capability?;
    let secs = cap.restart_time.min(p.ours.restart_time);
    if secs == 0 || families.is_empty() {
        return None;
    }
    let kept = rib.peer_restarting(p.id);
    let unlisted: Vec<Family> = FAMILIES
        .into_iter()
        .filter(|f| !families.contains(f))
        .collect();
    let stale = kept - rib.remove_stale(p.id, Some(&unlisted), out);
    info!(
        peer = %p.name,
        stale,
        restart_time = secs,
        "{why}; graceful restart: keeping its routes as stale while it restarts"
    );
    Some((stale > 0).then(|| StaleWait {
        until: Instant::now() + Duration::from_secs(u64::from(secs)),
        peer_back: false,
    }))
}

/// The peer is Established again (before the RIB hears of it): stale
/// paths of families it did not keep forwarding for, or that the new
/// session lacks, go now (§4.2); the rest wait for its End-of-RIB.
pub(super) fn session_back(
    rib: &mut Rib,
    p: &GrPeer,
    negotiated: &[Family],
    out: &mut Outputs,
) -> Option<StaleWait> {
    let kept: Vec<Family> = p
        .capability
        .map(|cap| {
            cap.forwarding_preserved
                .iter()
                .copied()
                .filter(|f| negotiated.contains(f))
                .collect()
        })
        .unwrap_or_default();
    let lost: Vec<Family> = FAMILIES.into_iter().filter(|f| !kept.contains(f)).collect();
    let removed = rib.remove_stale(p.id, Some(&lost), out);
    let stale = rib.stale_count(p.id);
    info!(
        peer = %p.name,
        removed,
        stale,
        stale_time = p.ours.stale_time,
        "restarted peer is back; its stale routes wait for End-of-RIB"
    );
    (stale > 0).then(|| StaleWait {
        until: Instant::now() + Duration::from_secs(u64::from(p.ours.stale_time)),
        peer_back: true,
    })
}

/// Each second: the wait is over when End-of-RIB removed the last stale
/// path; when it ran out, what is still stale is removed.
pub(super) fn tick(
    rib: &mut Rib,
    id: PeerId,
    name: &str,
    wait: StaleWait,
    now: Instant,
    out: &mut Outputs,
) -> Option<StaleWait> {
    if rib.stale_count(id) == 0 {
        return None;
    }
    if now < wait.until {
        return Some(wait);
    }
    let removed = rib.remove_stale(id, None, out);
    warn!(
        peer = %name,
        removed,
        "graceful restart: {}; its stale routes are removed",
        if wait.peer_back {
            "no End-of-RIB within staleTime"
        } else {
            "the peer did not come back within its restart time"
        }
    );
    None
}

/// RFC 4724 §4.1, the restarting speaker: "the Restarting Speaker MUST
/// NOT perform route selection until it has received End-of-RIB from all
/// its peers (or the Selection_Deferral_Timer expired)". The RIB decides
/// as routes arrive (so it can answer `explain` and tell the peers), but
/// what it wants in the kernel is held here, latest per prefix, while the
/// kernel keeps forwarding on the previous run's routes; when the wait is
/// over the result goes to the FIB in one pass and only then the
/// previous run's leftovers are removed. A prefix that exists before and
/// after is replaced in place, never missing; ECMP sets do not shrink and
/// grow again as the sessions come up one by one. Every routing domain's
/// FIB changes are held alike (each domain's table kept the previous
/// run's routes too), and released with the default domain's.
#[derive(Debug, Default)]
pub(super) struct Deferral {
    held: BTreeMap<IpNet, FibChange>,
    /// The same, per routing domain (`domains[].name`).
    domains: BTreeMap<String, BTreeMap<IpNet, FibChange>>,
}

impl Deferral {
    /// Keep `changes` back (a later change of a prefix replaces an earlier).
    pub(super) fn hold(&mut self, changes: Vec<FibChange>) {
        for c in changes {
            self.held.insert(c.prefix, c);
        }
    }

    /// [`Deferral::hold`] for routing domain `domain`'s FIB.
    pub(super) fn hold_in(&mut self, domain: &str, changes: Vec<FibChange>) {
        if changes.is_empty() {
            return;
        }
        let held = self.domains.entry(domain.to_string()).or_default();
        for c in changes {
            held.insert(c.prefix, c);
        }
    }

    /// Domain `domain` is gone (a reload removed it): nothing of it is
    /// held any more (its FIB empties its table itself).
    pub(super) fn forget(&mut self, domain: &str) {
        self.domains.remove(domain);
    }

    /// Changes held, over all domains.
    pub(super) fn len(&self) -> usize {
        self.held.len() + self.domains.values().map(BTreeMap::len).sum::<usize>()
    }

    /// The changes held, one per prefix, in prefix order: the default
    /// domain's and, by name, each routing domain's.
    #[allow(clippy::type_complexity)]
    pub(super) fn release(
        self,
    ) -> (
        impl Iterator<Item = FibChange>,
        impl Iterator<Item = (String, Vec<FibChange>)>,
    ) {
        let domains = self
            .domains
            .into_iter()
            .map(|(name, held)| (name, held.into_values().collect()));
        (self.held.into_values(), domains)
    }
}

/// Whether the initial convergence may wait for this peer's End-of-RIB:
/// not when it restarts itself (R bit): it waits for ours before it sends
/// its own (§4.1 excludes such peers, else both would wait for ever).
pub(super) fn waits_for_end_of_rib(capability: Option<&PeerGracefulRestart>) -> bool {
    !capability.is_some_and(|c| c.restarting)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use rib::no_next_hops;
    use wire::NextHop;

    fn change(prefix: &str, hops: &[&str]) -> FibChange {
        FibChange::new(
            prefix.parse().unwrap(),
            Arc::new(
                hops.iter()
                    .map(|a| NextHop::new(a.parse().unwrap()))
                    .collect(),
            ),
        )
    }

    #[test]
    fn deferral_keeps_the_latest_change_per_prefix_in_prefix_order_per_domain() {
        let mut d = Deferral::default();
        d.hold(vec![
            change("fd00:101:224:2::/64", &["fd00:101::fffc"]),
            change("10.0.0.0/24", &["10.1.0.2"]),
        ]);
        // The ECMP set grows as the other upstreams come up; one prefix
        // is withdrawn again.
        d.hold(vec![
            change("fd00:101:224:2::/64", &["fd00:101::fffc", "fd00:101::fffd"]),
            FibChange::new("10.0.0.0/24".parse().unwrap(), no_next_hops()),
        ]);
        d.hold_in("internet", vec![change("0.0.0.0/0", &["10.9.0.1"])]);
        d.hold_in("internet", vec![change("0.0.0.0/0", &["10.9.0.2"])]);
        d.hold_in("storage", vec![change("10.5.0.0/16", &["10.8.0.1"])]);
        d.forget("storage");
        assert_eq!(d.len(), 3);
        let (default, domains) = d.release();
        let domains: Vec<(String, Vec<FibChange>)> = domains.collect();
        assert_eq!(
            domains,
            vec![(
                "internet".to_string(),
                vec![change("0.0.0.0/0", &["10.9.0.2"])]
            )],
            "per domain, the latest change; a forgotten domain's are gone"
        );
        let out: Vec<FibChange> = default.collect();
        assert_eq!(
            out,
            vec![
                FibChange::new("10.0.0.0/24".parse().unwrap(), no_next_hops()),
                change("fd00:101:224:2::/64", &["fd00:101::fffc", "fd00:101::fffd"]),
            ]
        );
    }

    #[test]
    fn bfd_down_keeps_only_forwarding_families_of_a_fate_sharing_bfd() {
        let cap = PeerGracefulRestart {
            restarting: false,
            restart_time: 120,
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            forwarding_preserved: vec![Family::Ipv6Unicast],
        };
        assert_eq!(bfd_down_keeps(Some(&cap), false), [Family::Ipv6Unicast]);
        assert!(
            bfd_down_keeps(Some(&cap), true).is_empty(),
            "C bit: a forwarding failure"
        );
        assert!(bfd_down_keeps(None, false).is_empty(), "no GR");
        let no_f = PeerGracefulRestart {
            forwarding_preserved: vec![],
            ..cap.clone()
        };
        assert!(bfd_down_keeps(Some(&no_f), false).is_empty(), "no F bit");
        let no_time = PeerGracefulRestart {
            restart_time: 0,
            ..cap
        };
        assert!(bfd_down_keeps(Some(&no_time), false).is_empty());
    }

    #[test]
    fn a_restarting_peer_is_not_waited_for() {
        let cap = |restarting| PeerGracefulRestart {
            restarting,
            restart_time: 120,
            families: vec![Family::Ipv6Unicast],
            forwarding_preserved: vec![Family::Ipv6Unicast],
        };
        assert!(
            waits_for_end_of_rib(None),
            "no GR: its End-of-RIB or the grace"
        );
        assert!(waits_for_end_of_rib(Some(&cap(false))));
        assert!(!waits_for_end_of_rib(Some(&cap(true))));
    }
}
