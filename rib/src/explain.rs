//! Why: `explain` for one prefix and the `routes` listings.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};
use wire::{AsPath, Prefix};

use crate::attrs::{Attrs, PathInfo, LOCAL_PEER};
use crate::ctx::{Ctx, NhStatus};
use crate::decision::{origin_str, Candidate, Fate};
use crate::table::{Dest, FibState};
use crate::{Rib, RouteQuery, Table};

/// Everything the RIB knows about one prefix and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub prefix: Prefix,
    /// One line: the outcome in short.
    pub summary: String,
    /// A less specific Loc-RIB route covering the prefix, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub covered_by: Option<Prefix>,
    pub paths: Vec<PathExplanation>,
    /// The kernel confirmed the route (with [`Rib::set_fib_confirms`] off:
    /// handed to the FIB and not refused).
    pub installed: bool,
    /// Where the route stands in the kernel; absent: no route wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fib: Option<FibState>,
    /// "installed via ...", "pending: ..." or "not installed: <why>".
    pub kernel: String,
    /// The route's next hops as the FIB writes them to the kernel
    /// ("via inet6 fe80::1 dev eth1"), filled in by the daemon from its
    /// FIB (the RIB does not know interfaces by name); empty: none known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel_next_hops: Vec<String>,
    pub peers: Vec<PeerExport>,
}

/// One path of the prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathExplanation {
    /// Peer name, or "local" for our own origination.
    pub from: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<String>,
    /// The next hop as the peer sent it, before import policy: the
    /// address, and the link-local address after it when the peer sent
    /// both (RFC 2545 §3): "2001:db8::1 fe80::1".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_next_hop: Option<String>,
    /// In JSON a list of segments: `[{"type": "sequence", "asns": [..]}]`.
    pub as_path: AsPath,
    pub origin: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub med: Option<u32>,
    pub communities: Vec<String>,
    pub large_communities: Vec<String>,
    pub accepted: bool,
    /// Import verdict in words ("accepted" or the rejection reason).
    pub import: String,
    pub eligible: bool,
    /// Next-hop state in words.
    pub next_hop_state: String,
    /// "best", "multipath", "lost", "ineligible" or "rejected".
    pub status: String,
    /// Why this status, e.g. "lost to b's path at step: shorter AS_PATH (2 vs 3)".
    pub detail: String,
    /// Kept from a lost session of a graceful restart peer (RFC 4724).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<String>,
}

/// What happened towards one peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerExport {
    pub peer: String,
    pub advertised: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_path: Option<AsPath>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One route in a `routes` listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteView {
    pub prefix: Prefix,
    /// The peer it came from ("local" for originated); for the Advertised
    /// table, the peer it was sent to.
    pub peer: String,
    pub best: bool,
    pub multipath: bool,
    /// In the kernel, confirmed (see [`Explanation::installed`]).
    pub installed: bool,
    /// For the paths of the route given to the FIB when the kernel has not
    /// (yet) installed it: pending or failed. None otherwise (`installed`
    /// says the rest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fib: Option<FibState>,
    pub next_hops: Vec<String>,
    /// In JSON a list of segments: `[{"type": "sequence", "asns": [..]}]`
    /// (`set` for an AS_SET); `[]` for an empty path.
    pub as_path: AsPath,
    pub origin: String,
    #[serde(deserialize_with = "required")]
    pub local_pref: Option<u32>,
    #[serde(deserialize_with = "required")]
    pub med: Option<u32>,
    pub communities: Vec<String>,
    pub large_communities: Vec<String>,
    pub accepted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Kept from a lost session of a graceful restart peer (RFC 4724).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<String>,
}

/// An `Option` always written (`null` for `None`): when reading a view
/// back, missing is an error rather than `None`, so a renamed field is
/// noticed. (serde reads a missing `Option` as `None` unless the field has
/// its own deserializer.)
fn required<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

fn strings<T: ToString>(v: &[T]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

fn as_path_of(a: &Attrs) -> AsPath {
    a.attrs.as_path.clone()
}

impl Ctx<'_> {
    fn nh_words(&self, p: &PathInfo) -> String {
        let nh = p.post.next_hop;
        match self.nh_status(p) {
            NhStatus::Originated => "next hop: ourselves (locally originated)".into(),
            NhStatus::Unresolved => format!("next hop {nh} not yet resolved"),
            NhStatus::Unreachable(r) => format!("next hop {nh} unreachable: {r}"),
            NhStatus::Local => format!("next hop {nh} is local"),
            NhStatus::OwnAddress => format!(
                "next hop {nh} is one of our own addresses: semantically incorrect, treated as withdrawn (RFC 4271 §6.3)"
            ),
            NhStatus::Reachable(m) => format!("next hop {nh} reachable (IGP cost {m})"),
        }
    }

    fn installed(&self, rib: &Rib, prefix: &Prefix, dest: &Dest) -> (bool, String) {
        let Some(best) = dest.best() else {
            return (false, "not installed: no usable path".into());
        };
        if best.peer == LOCAL_PEER || dest.path_of(LOCAL_PEER).is_some() {
            return (false, "not installed: locally originated".into());
        }
        if !self.cfg.install {
            return (
                false,
                "not installed: install disabled (kernel.install is false)".into(),
            );
        }
        if self.nh_status(best) == NhStatus::Local {
            return (false, "not installed: next hop is local".into());
        }
        let set = |id| strings(&rib.ints.nhsets.get(id).best).join(", ");
        match (dest.fib(), rib.fib_state_of(dest)) {
            (Some(id), Some(FibState::Installed)) => (true, format!("installed via {}", set(id))),
            (Some(id), Some(FibState::Pending)) => (
                false,
                format!(
                    "pending: handed to the kernel via {}, not confirmed yet",
                    set(id)
                ),
            ),
            (Some(_), Some(FibState::Failed)) => (
                false,
                format!(
                    "not installed: kernel error: {}",
                    rib.fib_failed.get(prefix).map_or("unknown", |e| e.as_str())
                ),
            ),
            _ => (false, "not installed: no reachable next hop".into()),
        }
    }

    /// The decision over `dest` per path index: each eligible path's
    /// candidate and fate, with the loser's `by` turned into the winning
    /// path's index and candidate.
    fn verdicts(&self, dest: &Dest) -> Vec<Option<Verdict>> {
        self.with_decision(dest, |idx, cands, fates| {
            let mut out: Vec<Option<Verdict>> = vec![None; dest.paths().len()];
            for (k, &i) in idx.iter().enumerate() {
                out[i] = Some(Verdict {
                    cand: cands[k],
                    fate: fates[k],
                    by: match fates[k] {
                        Fate::Lost { by, .. } => Some((idx[by], cands[by])),
                        _ => None,
                    },
                });
            }
            out
        })
    }

    fn explain_path(&self, dest: &Dest, i: usize, verdict: Option<&Verdict>) -> PathExplanation {
        let p = &dest.paths()[i];
        let a = &p.post.attrs;
        let peer = self.peers.get(&p.peer);
        let eligible = self.eligible(p);
        let (status, detail) = if let Some(r) = &p.rejected {
            ("rejected", format!("rejected at import: {r}"))
        } else if !eligible {
            ("ineligible", self.nh_words(p))
        } else if i == 0 && dest.nbest() > 0 {
            (
                "best",
                if p.is_local() {
                    "best: locally originated".to_string()
                } else {
                    "best path".to_string()
                },
            )
        } else if i < dest.nbest() {
            (
                "multipath",
                "multipath (equal to best through IGP cost)".into(),
            )
        } else {
            ("lost", self.lost_detail(dest, verdict))
        };
        PathExplanation {
            from: self.peer_name(p.peer),
            // A leak source has no address of its own.
            peer_address: peer
                .filter(|_| !crate::attrs::is_leak_peer(p.peer))
                .map(|q| q.cfg.address.to_string()),
            next_hop: (!p.is_local()).then(|| p.post.next_hop.to_string()),
            sent_next_hop: (!p.is_local()).then(|| {
                let nh = &p.pre.next_hop;
                match nh.link_local {
                    Some(ll) => format!("{} {ll}", nh.address),
                    None => nh.address.to_string(),
                }
            }),
            as_path: as_path_of(&p.post),
            origin: a.origin.map_or("-", origin_str).to_string(),
            local_pref: a.local_pref,
            med: a.med,
            communities: strings(&a.communities),
            large_communities: strings(&a.large_communities),
            accepted: p.accepted(),
            import: p
                .rejected
                .as_deref()
                .map_or_else(|| "accepted".to_string(), |r| format!("rejected: {r}")),
            eligible,
            next_hop_state: self.nh_words(p),
            status: status.into(),
            detail,
            stale: None,
        }
    }

    /// A loser's step and the path that removed it there (RFC 4271
    /// §9.1.2.2's elimination: that path may itself lose later).
    fn lost_detail(&self, dest: &Dest, verdict: Option<&Verdict>) -> String {
        let (Some(best), Some(v)) = (dest.best(), verdict) else {
            return "no best path".into();
        };
        let (Fate::Lost { step, .. }, Some((by_path, by))) = (v.fate, v.by) else {
            return "no best path".into();
        };
        let who = self.peer_name(dest.paths()[by_path].peer);
        let c = &v.cand;
        let how = format!("lost to {who}'s path at step: {}", step.describe(&by, c));
        if !v.fate.lost_after_igp_cost() || best.is_local() {
            return how;
        }
        let b = self.candidate(best);
        let why = if self.cfg.max_paths > 1
            && b.neighbor_as != c.neighbor_as
            && !self.cfg.multipath_relax
        {
            format!(
                "different neighbour AS ({} vs {}) and multipathRelax is off",
                fmt_as(b.neighbor_as),
                fmt_as(c.neighbor_as)
            )
        } else {
            format!("maxPaths {} reached", self.cfg.max_paths)
        };
        format!("equal to best through IGP cost but not multipath ({why}); {how}")
    }
}

/// One eligible path's outcome in the decision.
#[derive(Clone, Copy)]
struct Verdict {
    cand: Candidate,
    fate: Fate,
    /// For a loser: the index of the path that removed it, and its
    /// candidate.
    by: Option<(usize, Candidate)>,
}

fn fmt_as(a: Option<u32>) -> String {
    a.map_or_else(|| "none".into(), |a| format!("AS{a}"))
}

impl Rib {
    /// Everything known about `prefix`, with reasons.
    pub fn explain(&self, prefix: &Prefix) -> crate::Explanation {
        let prefix = prefix.trunc();
        let ctx = self.ctx();
        let covered_by = self
            .table
            .covering(&prefix)
            .and_then(|(q, d)| d.best().map(|_| q));
        let Some(dest) = self.table.get(&prefix) else {
            let summary = match covered_by {
                Some(q) => format!(
                    "no path for {prefix}; it is covered by the less specific route {q} in Loc-RIB"
                ),
                None => format!("no path for {prefix}, and no less specific route covers it"),
            };
            return Explanation {
                prefix,
                summary,
                covered_by,
                paths: Vec::new(),
                installed: false,
                fib: None,
                kernel: "not installed: no path".into(),
                kernel_next_hops: Vec::new(),
                peers: Vec::new(),
            };
        };
        let verdicts = ctx.verdicts(dest);
        let paths: Vec<PathExplanation> = (0..dest.paths().len())
            .map(|i| PathExplanation {
                stale: self.stale_note(dest.paths()[i].peer, &prefix),
                ..ctx.explain_path(dest, i, verdicts[i].as_ref())
            })
            .collect();
        let (installed, kernel) = ctx.installed(self, &prefix, dest);
        let rib_fib = self.fib_state_of(dest);
        let best = dest.best();
        let peers = self
            .peers
            .iter()
            // Leak sources are fed, never sent to.
            .filter(|(id, _)| !crate::attrs::is_leak_peer(**id))
            .map(|(id, peer)| {
                let sent = self.group(*id).and_then(|g| g.sent_for(*id, &prefix));
                let name = peer.cfg.name.clone();
                match (sent, best) {
                    (Some(a), _) => PeerExport {
                        peer: name,
                        advertised: true,
                        next_hop: Some(a.next_hop.to_string()),
                        as_path: Some(as_path_of(a)),
                        reason: None,
                    },
                    (None, None) => PeerExport {
                        peer: name,
                        advertised: false,
                        next_hop: None,
                        as_path: None,
                        reason: Some("no best path to advertise".into()),
                    },
                    (None, Some(b)) => PeerExport {
                        peer: name,
                        advertised: false,
                        next_hop: None,
                        as_path: None,
                        reason: Some(
                            ctx.export(b, &prefix, *id)
                                .result
                                .err()
                                .unwrap_or_else(|| "not yet sent".into()),
                        ),
                    },
                }
            })
            .collect();
        let summary = match best {
            None if dest.paths().iter().all(|p| !p.accepted()) => {
                format!("{prefix}: every path was rejected at import")
            }
            None => format!("{prefix}: no usable path (next hops not reachable)"),
            Some(b) => {
                let mp = dest.nbest();
                let via = if b.is_local() {
                    "locally originated".to_string()
                } else {
                    format!("best via {}", ctx.peer_name(b.peer))
                };
                if mp > 1 {
                    format!("{prefix}: {via}, {mp} paths multipath")
                } else {
                    format!("{prefix}: {via}")
                }
            }
        };
        Explanation {
            prefix,
            summary,
            covered_by,
            paths,
            installed,
            fib: rib_fib,
            kernel,
            kernel_next_hops: Vec::new(),
            peers,
        }
    }

    /// Routes of one table; see [`RouteQuery`].
    pub fn routes(&self, q: &RouteQuery) -> Vec<RouteView> {
        let ctx = self.ctx();
        let mut out = Vec::new();
        match q.table {
            Table::Loc | Table::Received => {
                let loc = q.table == Table::Loc;
                let mut visit = |prefix: Prefix, dest: &Dest| {
                    let fib = self.fib_state_of(dest);
                    for (i, p) in dest.paths().iter().enumerate() {
                        if q.peer.is_some_and(|id| id != p.peer) || (loc && !p.accepted()) {
                            continue;
                        }
                        let best = i == 0 && dest.nbest() > 0;
                        out.push(RouteView {
                            stale: self.stale_note(p.peer, &prefix),
                            ..view(
                                prefix,
                                ctx.peer_name(p.peer),
                                if loc { &p.post } else { &p.pre },
                                p,
                                best,
                                i < dest.nbest(),
                                fib.filter(|_| i < dest.nbest()),
                            )
                        });
                    }
                };
                match &q.prefix {
                    Some(p) => {
                        if let Some((k, d)) = self.table.longest_match(&p.trunc()) {
                            visit(k, d);
                        }
                    }
                    None => self.table.iter().for_each(|(k, d)| visit(k, d)),
                }
            }
            Table::Advertised => {
                for (id, gid) in &self.group_of {
                    if q.peer.is_some_and(|p| p != *id) {
                        continue;
                    }
                    let Some(adj) = self.groups.get(gid) else {
                        continue;
                    };
                    let id = *id;
                    let name = ctx.peer_name(id);
                    let mut push = |prefix: Prefix, a: &Arc<Attrs>| {
                        out.push(RouteView {
                            prefix,
                            peer: name.clone(),
                            best: true,
                            multipath: false,
                            installed: false,
                            fib: None,
                            next_hops: vec![a.next_hop.address.to_string()],
                            as_path: as_path_of(a),
                            origin: a.attrs.origin.map_or("-", origin_str).into(),
                            local_pref: a.attrs.local_pref,
                            med: a.attrs.med,
                            communities: strings(&a.attrs.communities),
                            large_communities: strings(&a.attrs.large_communities),
                            accepted: true,
                            reason: None,
                            stale: None,
                        })
                    };
                    match &q.prefix {
                        Some(p) => {
                            let p = p.trunc();
                            let longest = adj
                                .sent(id)
                                .filter(|(k, _)| k.contains(&p))
                                .max_by_key(|(k, _)| k.prefix_len());
                            if let Some((k, a)) = longest {
                                push(k, a);
                            }
                        }
                        None => adj.sent(id).for_each(|(k, a)| push(k, a)),
                    }
                }
            }
        }
        out.sort_by(|a, b| (a.prefix, !a.best, &a.peer).cmp(&(b.prefix, !b.best, &b.peer)));
        out
    }
}

fn view(
    prefix: Prefix,
    peer: String,
    a: &Attrs,
    p: &PathInfo,
    best: bool,
    multipath: bool,
    fib: Option<FibState>,
) -> RouteView {
    RouteView {
        prefix,
        peer,
        best,
        multipath,
        installed: fib == Some(FibState::Installed),
        fib: fib.filter(|s| *s != FibState::Installed),
        next_hops: if p.is_local() {
            Vec::new()
        } else {
            vec![a.next_hop.address.to_string()]
        },
        as_path: as_path_of(a),
        origin: a.attrs.origin.map_or("-", origin_str).into(),
        local_pref: a.attrs.local_pref,
        med: a.attrs.med,
        communities: strings(&a.attrs.communities),
        large_communities: strings(&a.attrs.large_communities),
        accepted: p.accepted(),
        reason: p.rejected.as_deref().map(str::to_string),
        stale: None,
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary)?;
        if let Some(q) = self.covered_by {
            if !self.paths.is_empty() {
                writeln!(f, "  (also covered by the less specific route {q})")?;
            }
        }
        if self.paths.is_empty() {
            return Ok(());
        }
        writeln!(f)?;
        writeln!(f, "paths ({}):", self.paths.len())?;
        let w = self.paths.iter().map(|p| p.from.len()).max().unwrap_or(0);
        for p in &self.paths {
            let mark = match p.status.as_str() {
                "best" => '*',
                "multipath" => '=',
                _ => ' ',
            };
            let addr = p
                .peer_address
                .as_deref()
                .map(|a| format!(" ({a})"))
                .unwrap_or_default();
            writeln!(f, "  {mark} {:<w$}{addr}  {}", p.from, p.status)?;
            let path = if p.as_path.is_empty() {
                "(empty)".to_string()
            } else {
                p.as_path.to_string()
            };
            write!(f, "      as-path {path}  origin {}", p.origin)?;
            if let Some(lp) = p.local_pref {
                write!(f, "  local-pref {lp}")?;
            }
            if let Some(m) = p.med {
                write!(f, "  med {m}")?;
            }
            writeln!(f)?;
            if !p.communities.is_empty() {
                writeln!(f, "      communities {}", p.communities.join(" "))?;
            }
            if !p.large_communities.is_empty() {
                writeln!(
                    f,
                    "      large-communities {}",
                    p.large_communities.join(" ")
                )?;
            }
            // As sent, when that says more than the next hop line below:
            // a global + link-local pair (RFC 2545 §3), or another address.
            if let Some(sent) = p
                .sent_next_hop
                .as_ref()
                .filter(|s| Some(*s) != p.next_hop.as_ref())
            {
                writeln!(f, "      sent: {sent}")?;
            }
            writeln!(f, "      {}", p.next_hop_state)?;
            writeln!(f, "      import: {}", p.import)?;
            if let Some(s) = &p.stale {
                writeln!(f, "      stale ({s})")?;
            }
            if p.status != "rejected" && p.status != "ineligible" {
                writeln!(f, "      {}", p.detail)?;
            }
        }
        writeln!(f)?;
        writeln!(f, "kernel: {}", self.kernel)?;
        if !self.kernel_next_hops.is_empty() {
            writeln!(f, "installed: {}", self.kernel_next_hops.join(", "))?;
        }
        if !self.peers.is_empty() {
            writeln!(f)?;
            writeln!(f, "advertised to:")?;
            let w = self.peers.iter().map(|p| p.peer.len()).max().unwrap_or(0);
            for p in &self.peers {
                if p.advertised {
                    writeln!(
                        f,
                        "  {:<w$}  yes  next hop {}  as-path {}",
                        p.peer,
                        p.next_hop.as_deref().unwrap_or("-"),
                        p.as_path
                            .as_ref()
                            .filter(|a| !a.is_empty())
                            .map_or_else(|| "(empty)".to_string(), |a| a.to_string())
                    )?;
                } else {
                    writeln!(
                        f,
                        "  {:<w$}  no   {}",
                        p.peer,
                        p.reason.as_deref().unwrap_or("")
                    )?;
                }
            }
        }
        Ok(())
    }
}
