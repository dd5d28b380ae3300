//! Graceful restart, the helper side (RFC 4724 §4.2), for the router task:
//! the clock around the RIB's stale paths (`rib::Rib::peer_restarting`).
//!
//! A GR peer's session is lost (no NOTIFICATION) → its paths stay, stale,
//! for up to its restart time (ours when lower). It comes back → the
//! families it did not keep forwarding for go at once, the rest wait for
//! its End-of-RIB (the RIB drops what was not re-sent) for at most
//! `staleTime`. Either time running out removes what is still stale.

use std::time::{Duration, Instant};

use tracing::{info, warn};
use wire::Family;

use rib::{Outputs, PeerId, Rib};

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
    let cap = p.capability?;
    let secs = cap.restart_time.min(p.ours.restart_time);
    if secs == 0 || cap.families.is_empty() {
        return None;
    }
    let kept = rib.peer_restarting(p.id);
    // §4.2: only the families in its capability are kept.
    let unlisted: Vec<Family> = FAMILIES
        .into_iter()
        .filter(|f| !cap.families.contains(f))
        .collect();
    let stale = kept - rib.remove_stale(p.id, Some(&unlisted), out);
    info!(
        peer = %p.name,
        stale,
        restart_time = secs,
        "session lost; graceful restart: keeping its routes as stale while it restarts"
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
