//! The BGP decision process (RFC 4271 §9.1.2.2 as practised, with the
//! route-reflection tie-breakers of RFC 4456 §9).
//!
//! [`compare`] is a pure function over two [`Candidate`]s that returns which
//! one is preferred and the [`Step`] that decided it. Every step compares
//! with `Ord`, never by subtraction.

use std::cmp::Ordering;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;
use wire::Origin;

/// The facts about one eligible path that the decision process looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Locally originated: always preferred over learned paths.
    pub local: bool,
    /// LOCAL_PREF as used for the decision (100 when absent or eBGP-learned).
    pub local_pref: u32,
    pub as_path_len: usize,
    pub origin: Origin,
    /// MED; absent counts as 0.
    pub med: u32,
    /// First AS of the AS_PATH (the neighbouring AS), if any.
    pub neighbor_as: Option<u32>,
    pub ebgp: bool,
    /// Cost to the next hop (0 for local next hops).
    pub igp_metric: u32,
    /// ORIGINATOR_ID if present, else the BGP identifier of the peer.
    pub router_id: Ipv4Addr,
    pub cluster_list_len: usize,
    pub peer_address: IpAddr,
}

/// Tunables of the decision process.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecisionCtx {
    /// Compare MED between paths from different neighbouring ASes too.
    pub always_compare_med: bool,
}

/// The step at which a comparison was decided, in decision order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Step {
    Originated,
    LocalPref,
    AsPathLen,
    Origin,
    Med,
    EbgpOverIbgp,
    IgpMetric,
    RouterId,
    ClusterListLen,
    PeerAddress,
    /// No step told them apart.
    Equal,
}

impl Step {
    /// Short description, e.g. "shorter AS_PATH".
    pub fn name(self) -> &'static str {
        match self {
            Step::Originated => "locally originated",
            Step::LocalPref => "higher LOCAL_PREF",
            Step::AsPathLen => "shorter AS_PATH",
            Step::Origin => "lower ORIGIN",
            Step::Med => "lower MED",
            Step::EbgpOverIbgp => "eBGP over iBGP",
            Step::IgpMetric => "lower IGP cost to next hop",
            Step::RouterId => "lower router id",
            Step::ClusterListLen => "shorter CLUSTER_LIST",
            Step::PeerAddress => "lower peer address",
            Step::Equal => "equal",
        }
    }

    /// The description with the two values compared, winner first, e.g.
    /// "shorter AS_PATH (2 vs 3)".
    pub fn describe(self, winner: &Candidate, loser: &Candidate) -> String {
        let vs =
            |a: &dyn fmt::Display, b: &dyn fmt::Display| format!("{} ({a} vs {b})", self.name());
        match self {
            Step::LocalPref => vs(&winner.local_pref, &loser.local_pref),
            Step::AsPathLen => vs(&winner.as_path_len, &loser.as_path_len),
            Step::Origin => vs(&origin_str(winner.origin), &origin_str(loser.origin)),
            Step::Med => vs(&winner.med, &loser.med),
            Step::IgpMetric => vs(&winner.igp_metric, &loser.igp_metric),
            Step::RouterId => vs(&winner.router_id, &loser.router_id),
            Step::ClusterListLen => vs(&winner.cluster_list_len, &loser.cluster_list_len),
            Step::PeerAddress => vs(&winner.peer_address, &loser.peer_address),
            Step::Originated | Step::EbgpOverIbgp | Step::Equal => self.name().to_string(),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub fn origin_str(o: Origin) -> &'static str {
    match o {
        Origin::Igp => "igp",
        Origin::Egp => "egp",
        Origin::Incomplete => "incomplete",
    }
}

/// Compares two eligible paths. `Ordering::Less` means `a` is preferred
/// (so sorting ascending puts the best first); the step says why.
pub fn compare(a: &Candidate, b: &Candidate, ctx: &DecisionCtx) -> (Ordering, Step) {
    // "Weight": our own origination beats anything learned.
    let steps: [(Ordering, Step); 10] = [
        (b.local.cmp(&a.local), Step::Originated),
        (b.local_pref.cmp(&a.local_pref), Step::LocalPref),
        (a.as_path_len.cmp(&b.as_path_len), Step::AsPathLen),
        (a.origin.cmp(&b.origin), Step::Origin),
        (
            if ctx.always_compare_med || a.neighbor_as == b.neighbor_as {
                a.med.cmp(&b.med)
            } else {
                Ordering::Equal
            },
            Step::Med,
        ),
        (b.ebgp.cmp(&a.ebgp), Step::EbgpOverIbgp),
        (a.igp_metric.cmp(&b.igp_metric), Step::IgpMetric),
        (a.router_id.cmp(&b.router_id), Step::RouterId),
        (
            a.cluster_list_len.cmp(&b.cluster_list_len),
            Step::ClusterListLen,
        ),
        (a.peer_address.cmp(&b.peer_address), Step::PeerAddress),
    ];
    steps
        .into_iter()
        .find(|(o, _)| o.is_ne())
        .unwrap_or((Ordering::Equal, Step::Equal))
}

/// True when `b` may share a multipath (ECMP) set with the best path `a`:
/// equal through the IGP-cost step, both learned, same neighbouring AS
/// (or, with `relax`, any neighbouring AS: AS_PATH lengths are already
/// equal at this point). eBGP and iBGP never mix (step 5 separates them).
pub fn multipath_with(a: &Candidate, b: &Candidate, relax: bool, ctx: &DecisionCtx) -> bool {
    if a.local || b.local {
        return false;
    }
    let (_, step) = compare(a, b, ctx);
    step > Step::IgpMetric && (relax || a.neighbor_as == b.neighbor_as)
}

/// Picks the best of `cands` and its multipath set (indices into `cands`,
/// best first, at most `max_paths`). The winner does not depend on the
/// order of `cands` as long as the preference is a total order (MED, which
/// only compares within one neighbouring AS, can break that; callers pass
/// candidates in a canonical order to stay deterministic).
pub fn select(cands: &[Candidate], max_paths: usize, relax: bool, ctx: &DecisionCtx) -> Vec<usize> {
    let Some(mut best) = (!cands.is_empty()).then_some(0) else {
        return Vec::new();
    };
    for i in 1..cands.len() {
        if compare(&cands[i], &cands[best], ctx).0 == Ordering::Less {
            best = i;
        }
    }
    let mut set = vec![best];
    for (i, c) in cands.iter().enumerate() {
        if set.len() >= max_paths.max(1) {
            break;
        }
        if i != best && multipath_with(&cands[best], c, relax, ctx) {
            set.push(i);
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Candidate {
        Candidate {
            local: false,
            local_pref: 100,
            as_path_len: 2,
            origin: Origin::Igp,
            med: 10,
            neighbor_as: Some(65001),
            ebgp: true,
            igp_metric: 5,
            router_id: Ipv4Addr::new(10, 0, 0, 1),
            cluster_list_len: 0,
            peer_address: "192.0.2.1".parse().unwrap(),
        }
    }

    /// One variant per step, each worse than the reference in exactly that
    /// step (in the style of OpenBSD bgpd's rde_decide_test).
    fn worse_variants() -> Vec<(Candidate, Step)> {
        let r = reference();
        vec![
            (
                Candidate {
                    local_pref: 90,
                    ..r.clone()
                },
                Step::LocalPref,
            ),
            (
                Candidate {
                    as_path_len: 3,
                    ..r.clone()
                },
                Step::AsPathLen,
            ),
            (
                Candidate {
                    origin: Origin::Egp,
                    ..r.clone()
                },
                Step::Origin,
            ),
            (
                Candidate {
                    origin: Origin::Incomplete,
                    ..r.clone()
                },
                Step::Origin,
            ),
            (
                Candidate {
                    med: 20,
                    ..r.clone()
                },
                Step::Med,
            ),
            (
                Candidate {
                    ebgp: false,
                    ..r.clone()
                },
                Step::EbgpOverIbgp,
            ),
            (
                Candidate {
                    igp_metric: 6,
                    ..r.clone()
                },
                Step::IgpMetric,
            ),
            (
                Candidate {
                    router_id: Ipv4Addr::new(10, 0, 0, 2),
                    ..r.clone()
                },
                Step::RouterId,
            ),
            (
                Candidate {
                    cluster_list_len: 1,
                    ..r.clone()
                },
                Step::ClusterListLen,
            ),
            (
                Candidate {
                    peer_address: "192.0.2.2".parse().unwrap(),
                    ..r.clone()
                },
                Step::PeerAddress,
            ),
        ]
    }

    #[test]
    fn each_step_decides_both_ways() {
        let ctx = DecisionCtx::default();
        let r = reference();
        for (v, step) in worse_variants() {
            assert_eq!(
                compare(&r, &v, &ctx),
                (Ordering::Less, step),
                "ref vs {step:?}"
            );
            assert_eq!(
                compare(&v, &r, &ctx),
                (Ordering::Greater, step),
                "{step:?} vs ref"
            );
        }
        assert_eq!(compare(&r, &r, &ctx), (Ordering::Equal, Step::Equal));
    }

    #[test]
    fn originated_beats_everything() {
        let ctx = DecisionCtx::default();
        let local = Candidate {
            local: true,
            local_pref: 0,
            as_path_len: 50,
            ..reference()
        };
        assert_eq!(
            compare(&local, &reference(), &ctx),
            (Ordering::Less, Step::Originated)
        );
        assert_eq!(
            compare(&reference(), &local, &ctx),
            (Ordering::Greater, Step::Originated)
        );
    }

    #[test]
    fn med_only_within_one_neighbor_as() {
        let ctx = DecisionCtx::default();
        let a = reference();
        let b = Candidate {
            med: 1000,
            neighbor_as: Some(65002),
            router_id: Ipv4Addr::new(10, 0, 0, 0),
            ..reference()
        };
        // Different neighbour AS: MED is skipped, router id decides for b.
        assert_eq!(compare(&a, &b, &ctx), (Ordering::Greater, Step::RouterId));
        let always = DecisionCtx {
            always_compare_med: true,
        };
        assert_eq!(compare(&a, &b, &always), (Ordering::Less, Step::Med));
        // Missing MED is 0 and so wins within the AS.
        let c = Candidate {
            med: 0,
            ..reference()
        };
        assert_eq!(compare(&c, &a, &ctx), (Ordering::Less, Step::Med));
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let ctx = DecisionCtx::default();
        let a = Candidate {
            local_pref: u32::MAX,
            ..reference()
        };
        let b = Candidate {
            local_pref: 0,
            ..reference()
        };
        assert_eq!(compare(&a, &b, &ctx), (Ordering::Less, Step::LocalPref));
        let a = Candidate {
            med: 0,
            ..reference()
        };
        let b = Candidate {
            med: u32::MAX,
            ..reference()
        };
        assert_eq!(compare(&a, &b, &ctx), (Ordering::Less, Step::Med));
    }

    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for p in permutations(n - 1) {
            for i in 0..=p.len() {
                let mut q = p.clone();
                q.insert(i, n - 1);
                out.push(q);
            }
        }
        out
    }

    #[test]
    fn every_permutation_selects_the_same_winner() {
        let ctx = DecisionCtx::default();
        // The reference plus one worse variant per step (unique router ids
        // and addresses would only matter for ties, which these are not).
        let mut set: Vec<Candidate> = vec![reference()];
        set.extend(worse_variants().into_iter().map(|(c, _)| c).take(7));
        let perms = permutations(set.len());
        assert_eq!(perms.len(), 40320);
        for p in perms {
            let cands: Vec<Candidate> = p.iter().map(|&i| set[i].clone()).collect();
            let sel = select(&cands, 1, false, &ctx);
            assert_eq!(cands[sel[0]], reference(), "permutation {p:?}");
        }
    }

    #[test]
    fn multipath_set() {
        let ctx = DecisionCtx::default();
        let a = reference();
        let b = Candidate {
            router_id: Ipv4Addr::new(10, 0, 0, 9),
            peer_address: "192.0.2.9".parse().unwrap(),
            ..reference()
        };
        let other_as = Candidate {
            neighbor_as: Some(65002),
            router_id: Ipv4Addr::new(10, 0, 0, 8),
            ..reference()
        };
        let costlier = Candidate {
            igp_metric: 50,
            router_id: Ipv4Addr::new(10, 0, 0, 0),
            ..reference()
        };
        let cands = vec![b.clone(), costlier, other_as, a.clone()];
        assert_eq!(select(&cands, 4, false, &ctx), vec![3, 0]);
        assert_eq!(select(&cands, 4, true, &ctx), vec![3, 0, 2]);
        assert_eq!(select(&cands, 1, true, &ctx), vec![3]);
        let ibgp = Candidate { ebgp: false, ..b };
        assert!(!multipath_with(&a, &ibgp, true, &ctx));
    }
}
