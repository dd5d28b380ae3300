//! Import: the checks a received path passes before it may be used, each
//! with a reason kept for `explain`, then the peer's import policy chain;
//! the whole-UPDATE semantic checks that make it a treat-as-withdraw; and
//! the counters and rate-limited log of what was refused or ignored.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wire::{Family, Prefix, Update};

use crate::attrs::{Attrs, PathInfo};
use crate::ctx::{Ctx, Interners};
use crate::import_report::ImportReport;
use crate::policy::{PolicyChain, Subject};
use crate::{PeerConfig, PeerId, SessionInfo};

/// What import made of one path.
pub(crate) struct Imported {
    pub info: Arc<PathInfo>,
    /// The verdict may differ for another prefix with the same attributes.
    pub used_prefix: bool,
}

/// Runs the import checks and policy for the path `pre` of `prefix` from
/// `peer_id`, interning the result.
pub(crate) fn import_path(
    ctx: &Ctx<'_>,
    ints: &mut Interners,
    peer_id: PeerId,
    pre: &Arc<Attrs>,
    prefix: &Prefix,
) -> Imported {
    let (post, rejected, used_prefix) = match judge(ctx, peer_id, pre, prefix) {
        Judged::Rejected(reason, used) => (pre.clone(), Some(Arc::<str>::from(reason)), used),
        Judged::Accepted(Cow::Borrowed(_), used) => (pre.clone(), None, used),
        Judged::Accepted(Cow::Owned(a), used) => (
            ints.attrs.intern(Attrs {
                next_hop: pre.next_hop,
                attrs: a,
            }),
            None,
            used,
        ),
    };
    let info = ints.paths.intern(PathInfo {
        peer: peer_id,
        pre: pre.clone(),
        post,
        rejected,
    });
    Imported { info, used_prefix }
}

enum Judged<'a> {
    Accepted(Cow<'a, wire::PathAttributes>, bool),
    Rejected(String, bool),
}

fn judge<'a>(ctx: &Ctx<'_>, peer_id: PeerId, pre: &'a Attrs, prefix: &Prefix) -> Judged<'a> {
    let Some(peer) = ctx.peers.get(&peer_id) else {
        return Judged::Rejected("peer is not configured".into(), false);
    };
    let local_asn = ctx.cfg.local_asn;
    let a = &pre.attrs;
    let ebgp = peer.cfg.remote_asn != local_asn;

    let seen = a.as_path.count(local_asn);
    if seen > usize::from(peer.cfg.allow_as_in) {
        return Judged::Rejected(
            format!(
                "AS path loop: contains local AS {local_asn} ({seen} times, allowAsIn {})",
                peer.cfg.allow_as_in
            ),
            false,
        );
    }
    if !ebgp {
        if a.originator_id == Some(ctx.cfg.router_id) {
            return Judged::Rejected(
                format!(
                    "ORIGINATOR_ID {} is our router id: our own route reflected back (RFC 4456 §8)",
                    ctx.cfg.router_id
                ),
                false,
            );
        }
        let cluster = ctx.cfg.cluster_id();
        if a.cluster_list.contains(&cluster) {
            return Judged::Rejected(
                format!(
                    "CLUSTER_LIST contains our cluster id {cluster}: reflection loop (RFC 4456 §8)"
                ),
                false,
            );
        }
    }

    let mut attrs = Cow::Borrowed(a);
    // RFC 4271 §5.1.5: LOCAL_PREF received over eBGP is ignored.
    if ebgp && attrs.local_pref.is_some() {
        attrs.to_mut().local_pref = None;
    }
    let names =
        match &peer.cfg.import {
            PolicyChain::Unset if ebgp => return Judged::Rejected(
                "no import policy (RFC 8212: eBGP sessions exchange nothing until a policy is set)"
                    .into(),
                false,
            ),
            PolicyChain::Unset | PolicyChain::All => return Judged::Accepted(attrs, false),
            PolicyChain::None => return Judged::Rejected("import none".into(), false),
            PolicyChain::Named(names) => names,
        };
    let subject = Subject {
        prefix,
        neighbor: &peer.cfg.name,
    };
    let outcome = ctx.policies.evaluate(names, subject, &mut attrs);
    if let Some(reason) = outcome.rejected {
        return Judged::Rejected(format!("import: {reason}"), outcome.used_prefix);
    }
    if outcome.prepend > 0 {
        // Inbound, prepending lengthens the path as if the neighbour had
        // prepended itself (FRR's and BIRD's import semantics): the peer's
        // AS for eBGP, for iBGP the path's neighbouring AS. Our own AS
        // would make the path look like a loop to our iBGP neighbours.
        let neighbor_as = if ebgp {
            Some(peer.cfg.remote_asn)
        } else {
            attrs.as_path.first_asn()
        };
        if let Some(asn) = neighbor_as {
            attrs
                .to_mut()
                .as_path
                .prepend(asn, usize::from(outcome.prepend));
        }
    }
    Judged::Accepted(attrs, outcome.used_prefix)
}

/// Rate limit for import problem log lines: one line per peer and line
/// text per `window`, then the number suppressed meanwhile. At most
/// `MAX_KEYS` texts are tracked; past that a peer's further texts share
/// one limit, so a peer inventing reasons cannot grow this map.
pub struct ImportLog {
    window: Duration,
    seen: HashMap<(PeerId, Arc<str>), LogSlot>,
}

struct LogSlot {
    since: Instant,
    suppressed: u64,
}

const MAX_KEYS: usize = 256;

impl ImportLog {
    pub fn new(window: Duration) -> ImportLog {
        ImportLog {
            window,
            seen: HashMap::new(),
        }
    }

    /// Should `line` from `peer` be logged at `now`? `Some(n)`: yes, and
    /// `n` identical lines were suppressed since the previous one.
    pub fn admit(&mut self, peer: PeerId, line: &str, now: Instant) -> Option<u64> {
        if self.seen.len() >= MAX_KEYS {
            let window = self.window;
            // Expired slots go; a count they held is lost, not the line.
            self.seen
                .retain(|_, s| now.duration_since(s.since) < window);
        }
        let key: Arc<str> =
            if self.seen.len() >= MAX_KEYS && !self.seen.contains_key(&(peer, Arc::from(line))) {
                Arc::from("(other import problems)")
            } else {
                Arc::from(line)
            };
        match self.seen.get_mut(&(peer, key.clone())) {
            Some(s) if now.duration_since(s.since) < self.window => {
                s.suppressed += 1;
                None
            }
            Some(s) => {
                let n = s.suppressed;
                *s = LogSlot {
                    since: now,
                    suppressed: 0,
                };
                Some(n)
            }
            None => {
                self.seen.insert(
                    (peer, key),
                    LogSlot {
                        since: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

/// The prefix of every rejection reason that is a treat-as-withdraw: such
/// a path is kept (as rejected, for `explain` and `maxPrefixes`) but is
/// never re-judged by a reload.
pub(crate) const TREAT_AS_WITHDRAW: &str = "treat-as-withdraw";

pub(crate) fn is_treat_as_withdraw(p: &PathInfo) -> bool {
    p.rejected
        .as_deref()
        .is_some_and(|r| r.starts_with(TREAT_AS_WITHDRAW))
}

/// The rejected path kept for a prefix of an UPDATE treated as withdrawn.
pub(crate) fn withdrawn_path(
    ints: &mut Interners,
    peer_id: PeerId,
    pre: &Arc<Attrs>,
    why: &Arc<str>,
) -> Arc<PathInfo> {
    ints.paths.intern(PathInfo {
        peer: peer_id,
        pre: pre.clone(),
        post: pre.clone(),
        rejected: Some(why.clone()),
    })
}

/// What happens to `u` from `peer` on `session` before any of its paths
/// is stored: NLRI of a family the session did not negotiate are dropped
/// (RFC 4760 §6: ignored, and counted; withdrawals too), and the UPDATE is
/// a treat-as-withdraw if the decoder said so (RFC 7606) or a semantic
/// check fails. The decoder's attribute discards move to the report.
pub(crate) fn screen(
    peer: &PeerConfig,
    local_asn: u32,
    session: &SessionInfo,
    u: &mut Update,
) -> ImportReport {
    let mut report = ImportReport {
        attribute_discards: std::mem::take(&mut u.attribute_discards),
        ..Default::default()
    };
    let mut ignore = |n: usize, f: Family| {
        if n > 0 && !session.families.contains(&f) {
            report.ignored_nlri += n;
            report.ignored_family = Some(f);
            return true;
        }
        false
    };
    if ignore(u.withdrawn.len() + u.nlri.len(), Family::Ipv4Unicast) {
        u.withdrawn.clear();
        u.nlri.clear();
    }
    if u.mp_unreach
        .as_ref()
        .is_some_and(|w| ignore(w.withdrawn.len(), w.family))
    {
        u.mp_unreach = None;
    }
    if u.mp_reach
        .as_ref()
        .is_some_and(|r| ignore(r.nlri.len(), r.family))
    {
        u.mp_reach = None;
    }
    report.treat_as_withdraw = u
        .treat_as_withdraw
        .take()
        .or_else(|| {
            (!u.nlri.is_empty() && u.attributes.next_hop.is_none())
                .then(|| "missing well-known attribute NEXT_HOP".to_string())
        })
        .or_else(|| semantic_error(peer, local_asn, session, u));
    report
}

/// RFC 4271 §6.3 semantic checks of a whole UPDATE from `peer` on
/// `session`; `Some(reason)` makes it a treat-as-withdraw (RFC 7606 §2).
fn semantic_error(
    peer: &PeerConfig,
    local_asn: u32,
    session: &SessionInfo,
    u: &Update,
) -> Option<String> {
    let reach_v4 = !u.nlri.is_empty();
    let reach_mp = u.mp_reach.as_ref().filter(|r| !r.nlri.is_empty());
    if !reach_v4 && reach_mp.is_none() {
        return None;
    }
    if let Some(why) = first_as_error(peer, local_asn, &u.attributes.as_path) {
        return Some(why);
    }
    if reach_v4 {
        if let Some(nh) = u.attributes.next_hop {
            if let Some(why) = bad_next_hop(IpAddr::V4(nh)) {
                return Some(format!("NEXT_HOP {nh} {why} (RFC 4271 §6.3)"));
            }
        }
    }
    if let Some(r) = reach_mp {
        return mp_next_hop_error(r.next_hop.address, r.family, session);
    }
    None
}

/// Why a path whose next hop is one of our own addresses is treated as
/// withdrawn (RFC 4271 §6.3: semantically incorrect; RFC 7606 §7.3).
pub(crate) fn own_next_hop_reason(nh: IpAddr) -> String {
    format!("next hop {nh} is one of our own addresses (RFC 4271 §6.3)")
}

/// The part of a reason that says `enforceFirstAs` rejected the path.
const FIRST_AS_RULE: &str = "(RFC 4271 §6.3, enforceFirstAs)";

/// With `enforceFirstAs` on an eBGP session, the AS_PATH must start with
/// the peer's AS (RFC 4271 §6.3).
fn first_as_error(peer: &PeerConfig, local_asn: u32, as_path: &wire::AsPath) -> Option<String> {
    if !peer.enforce_first_as || peer.remote_asn == local_asn {
        return None;
    }
    let first = as_path.first_asn();
    if first == Some(peer.remote_asn) {
        return None;
    }
    let first = first.map_or_else(|| "none".to_string(), |a| a.to_string());
    Some(format!(
        "AS_PATH: first AS {first} is not the peer's AS {} {FIRST_AS_RULE}",
        peer.remote_asn
    ))
}

fn mp_next_hop_error(nh: IpAddr, family: Family, session: &SessionInfo) -> Option<String> {
    if let Some(why) = bad_next_hop(nh) {
        return Some(format!("MP_REACH_NLRI next hop {nh} {why} (RFC 4271 §6.3)"));
    }
    if family == Family::Ipv4Unicast && nh.is_ipv6() && !session.extended_next_hop_v4 {
        return Some(format!(
            "MP_REACH_NLRI: IPv6 next hop {nh} for IPv4 NLRI without the extended next hop capability (RFC 8950 §2)"
        ));
    }
    None
}

/// What a reload makes of a stored path's treat-as-withdraw standing.
pub(crate) enum Standing {
    /// Unchanged: run import as usual (or keep a treat-as-withdraw).
    Unchanged,
    /// `enforceFirstAs` now rejects it: treat as withdrawn, with why.
    Withdraw(String),
    /// It was withdrawn by `enforceFirstAs` only, which no longer applies:
    /// judge it again.
    Rejudge,
}

/// Of the semantic checks, only `enforceFirstAs` depends on the
/// configuration: a reload that changes it applies to the paths already
/// received (the stored path keeps the UPDATE's attributes). Every other
/// treat-as-withdraw stands until the peer sends the route again.
pub(crate) fn standing_after_reload(ctx: &Ctx<'_>, p: &PathInfo, prefix: &Prefix) -> Standing {
    let Some(peer) = ctx.peers.get(&p.peer) else {
        return Standing::Unchanged;
    };
    let first_as = first_as_error(&peer.cfg, ctx.cfg.local_asn, &p.pre.attrs.as_path);
    let withdrawn_by_rule = p
        .rejected
        .as_deref()
        .is_some_and(|r| r.starts_with(TREAT_AS_WITHDRAW) && r.contains(FIRST_AS_RULE));
    match (is_treat_as_withdraw(p), first_as) {
        (false, Some(why)) => Standing::Withdraw(why),
        (true, None) if withdrawn_by_rule => {
            // The first AS check came first: the next hop was never
            // checked. The session is needed for that (a stale path of a
            // restarting peer has none: it stays as it is).
            let Some(session) = &peer.session else {
                return Standing::Unchanged;
            };
            let nh = p.pre.next_hop.address;
            let family = Family::of_prefix(prefix);
            let why = match (family, nh) {
                (Family::Ipv4Unicast, IpAddr::V4(a)) => {
                    bad_next_hop(nh).map(|w| format!("NEXT_HOP {a} {w} (RFC 4271 §6.3)"))
                }
                _ => mp_next_hop_error(nh, family, session),
            };
            match why {
                Some(why) => Standing::Withdraw(why),
                None => Standing::Rejudge,
            }
        }
        _ => Standing::Unchanged,
    }
}

/// A next hop no route can use, whatever the FIB says.
fn bad_next_hop(a: IpAddr) -> Option<&'static str> {
    if a.is_unspecified() {
        Some("is unspecified")
    } else if a.is_multicast() || a == IpAddr::V4(std::net::Ipv4Addr::BROADCAST) {
        Some("is not a unicast address")
    } else {
        None
    }
}
