//! The BGP decision process (RFC 4271 §9.1.2.2 as practised, with the
//! route-reflection tie-breakers of RFC 4456 §9).
//!
//! [`decide`] runs the RFC's elimination over all candidates at once: each
//! [`Step`] removes the candidates a remaining one beats there, and every
//! loser keeps the step and the path that removed it (a [`Fate`]), which is
//! what `explain` prints. MED compares only paths from the same
//! neighbouring AS, so it is not a total order: a pairwise scan would pick
//! a different best depending on arrival order. [`compare`] is the
//! two-path case. Every step compares with `Ord`, never by subtraction.

use std::cmp::Ordering;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;
use wire::Origin;

/// The facts about one eligible path that the decision process looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// The order of the elimination steps (RFC 4271 §9.1.2.2, with our own
/// origination first and RFC 4456 §9's CLUSTER_LIST length after the
/// router id). [`Step::Equal`] is not a step.
pub const STEPS: [Step; 10] = [
    Step::Originated,
    Step::LocalPref,
    Step::AsPathLen,
    Step::Origin,
    Step::Med,
    Step::EbgpOverIbgp,
    Step::IgpMetric,
    Step::RouterId,
    Step::ClusterListLen,
    Step::PeerAddress,
];

/// How `a` and `b` compare at one step (`Less`: `a` is preferred). MED
/// compares only paths from the same neighbouring AS unless
/// `always_compare_med` (RFC 4271 §9.1.2.2 (c)); across ASes it is
/// `Equal`, which is why MED is not a total order and why the decision
/// eliminates instead of comparing pairwise.
pub fn compare_at(step: Step, a: &Candidate, b: &Candidate, ctx: &DecisionCtx) -> Ordering {
    match step {
        // "Weight": our own origination beats anything learned.
        Step::Originated => b.local.cmp(&a.local),
        Step::LocalPref => b.local_pref.cmp(&a.local_pref),
        Step::AsPathLen => a.as_path_len.cmp(&b.as_path_len),
        Step::Origin => a.origin.cmp(&b.origin),
        Step::Med if ctx.always_compare_med || a.neighbor_as == b.neighbor_as => a.med.cmp(&b.med),
        Step::Med => Ordering::Equal,
        Step::EbgpOverIbgp => b.ebgp.cmp(&a.ebgp),
        Step::IgpMetric => a.igp_metric.cmp(&b.igp_metric),
        Step::RouterId => a.router_id.cmp(&b.router_id),
        Step::ClusterListLen => a.cluster_list_len.cmp(&b.cluster_list_len),
        Step::PeerAddress => a.peer_address.cmp(&b.peer_address),
        Step::Equal => Ordering::Equal,
    }
}

/// Compares two eligible paths step by step: the first step that tells
/// them apart. `Ordering::Less` means `a` is preferred. For two paths this
/// is exactly what the elimination in [`decide`] does; for more, use
/// [`decide`] (MED makes a pairwise scan depend on the order).
pub fn compare(a: &Candidate, b: &Candidate, ctx: &DecisionCtx) -> (Ordering, Step) {
    STEPS
        .iter()
        .map(|&s| (compare_at(s, a, b, ctx), s))
        .find(|(o, _)| o.is_ne())
        .unwrap_or((Ordering::Equal, Step::Equal))
}

/// What the decision made of one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Still in the running (only while [`decide`] works).
    In,
    Best,
    /// In the multipath (ECMP) set with the best path.
    Multipath,
    /// Removed at `step` by candidate `by` (an index into the candidates),
    /// which was still in the running at that step and better there.
    Lost {
        step: Step,
        by: usize,
    },
}

impl Fate {
    /// Equal to the best path through the IGP-cost step (so it could
    /// have been multipath) but not in the multipath set.
    pub fn lost_after_igp_cost(self) -> bool {
        matches!(self, Fate::Lost { step, .. } if step > Step::IgpMetric)
    }
}

/// Removes from the running every candidate that some other candidate in
/// the running beats at `step`. Non-MED steps are total orders: the first
/// best candidate is the one named as the winner. MED (unless compared
/// always) is a minimum per neighbouring AS.
fn eliminate(step: Step, cands: &[Candidate], fates: &mut [Fate], ctx: &DecisionCtx) {
    let in_running = |fates: &[Fate], i: usize| fates[i] == Fate::In;
    if step == Step::Med && !ctx.always_compare_med {
        // Removing a candidate never removes its group's minimum, so the
        // minima found on the go are those of the set before this step.
        for i in 0..cands.len() {
            if !in_running(fates, i) {
                continue;
            }
            let group_best = (0..cands.len())
                .filter(|&j| in_running(fates, j) && cands[j].neighbor_as == cands[i].neighbor_as)
                .min_by_key(|&j| cands[j].med)
                .expect("i itself is in its group");
            if cands[group_best].med < cands[i].med {
                fates[i] = Fate::Lost {
                    step,
                    by: group_best,
                };
            }
        }
        return;
    }
    let mut best = None;
    for i in 0..cands.len() {
        if in_running(fates, i)
            && best.is_none_or(|b: usize| compare_at(step, &cands[i], &cands[b], ctx).is_lt())
        {
            best = Some(i);
        }
    }
    let Some(best) = best else { return };
    for i in 0..cands.len() {
        if in_running(fates, i) && compare_at(step, &cands[best], &cands[i], ctx).is_lt() {
            fates[i] = Fate::Lost { step, by: best };
        }
    }
}

/// The decision process by elimination (RFC 4271 §9.1.2.2): each step in
/// [`STEPS`] order removes from the set every candidate a remaining one
/// beats at that step, until one is left (or, all steps equal, the first
/// left wins). Then the multipath set: the candidates that were still in
/// the running after the IGP-cost step (equal to the best through it),
/// learned, from the best path's neighbouring AS (or, with `relax`, any:
/// AS_PATH lengths are equal there), at most `max_paths` with the best, in
/// candidate order. eBGP and iBGP never mix (they part at step (d)).
///
/// Writes each candidate's [`Fate`] to `fates` (same length as `cands`;
/// the caller owns the buffer, so a decision allocates nothing) and
/// returns the best's index, `None` for no candidates. The best does not
/// depend on the order of `cands` except among candidates equal at every
/// step.
pub fn decide(
    cands: &[Candidate],
    max_paths: usize,
    relax: bool,
    ctx: &DecisionCtx,
    fates: &mut [Fate],
) -> Option<usize> {
    assert_eq!(cands.len(), fates.len(), "one fate per candidate");
    fates.fill(Fate::In);
    for step in STEPS {
        eliminate(step, cands, fates, ctx);
    }
    let best = fates.iter().position(|f| *f == Fate::In)?;
    fates[best] = Fate::Best;
    for f in fates.iter_mut() {
        if *f == Fate::In {
            *f = Fate::Lost {
                step: Step::Equal,
                by: best,
            };
        }
    }
    let b = &cands[best];
    let mut width = 1;
    for i in 0..cands.len() {
        if width >= max_paths.max(1) {
            break;
        }
        let c = &cands[i];
        if fates[i].lost_after_igp_cost()
            && !b.local
            && !c.local
            && (relax || c.neighbor_as == b.neighbor_as)
        {
            fates[i] = Fate::Multipath;
            width += 1;
        }
    }
    Some(best)
}

/// [`decide`] returning the multipath set (indices into `cands`, best
/// first, then the others in candidate order, at most `max_paths`).
pub fn select(cands: &[Candidate], max_paths: usize, relax: bool, ctx: &DecisionCtx) -> Vec<usize> {
    let mut fates = vec![Fate::In; cands.len()];
    let Some(best) = decide(cands, max_paths, relax, ctx, &mut fates) else {
        return Vec::new();
    };
    let mut set = vec![best];
    set.extend((0..cands.len()).filter(|&i| fates[i] == Fate::Multipath));
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
                    ..r
                },
                Step::LocalPref,
            ),
            (
                Candidate {
                    as_path_len: 3,
                    ..r
                },
                Step::AsPathLen,
            ),
            (
                Candidate {
                    origin: Origin::Egp,
                    ..r
                },
                Step::Origin,
            ),
            (
                Candidate {
                    origin: Origin::Incomplete,
                    ..r
                },
                Step::Origin,
            ),
            (Candidate { med: 20, ..r }, Step::Med),
            (Candidate { ebgp: false, ..r }, Step::EbgpOverIbgp),
            (Candidate { igp_metric: 6, ..r }, Step::IgpMetric),
            (
                Candidate {
                    router_id: Ipv4Addr::new(10, 0, 0, 2),
                    ..r
                },
                Step::RouterId,
            ),
            (
                Candidate {
                    cluster_list_len: 1,
                    ..r
                },
                Step::ClusterListLen,
            ),
            (
                Candidate {
                    peer_address: "192.0.2.2".parse().unwrap(),
                    ..r
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
            let cands: Vec<Candidate> = p.iter().map(|&i| set[i]).collect();
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
        let cands = vec![b, costlier, other_as, a];
        assert_eq!(select(&cands, 4, false, &ctx), vec![3, 0]);
        assert_eq!(select(&cands, 4, true, &ctx), vec![3, 0, 2]);
        assert_eq!(select(&cands, 1, true, &ctx), vec![3]);
        // eBGP and iBGP never share a multipath set.
        let ibgp = Candidate { ebgp: false, ..b };
        assert_eq!(select(&[a, ibgp], 4, true, &ctx), vec![0]);
        // Nor does our own origination.
        let local = Candidate { local: true, ..b };
        assert_eq!(select(&[local, a], 4, true, &ctx), vec![0]);
    }

    /// Issue 12's set: B (AS 65011, MED 20, id .1), C (AS 65012, no MED,
    /// id .2), A (AS 65011, MED 10, id .3), otherwise equal.
    fn bca() -> [Candidate; 3] {
        let path = |asn, med, id: u8| Candidate {
            med,
            neighbor_as: Some(asn),
            router_id: Ipv4Addr::new(10, 0, 0, id),
            peer_address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, id)),
            ..reference()
        };
        [path(65011, 20, 1), path(65012, 0, 2), path(65011, 10, 3)]
    }

    #[test]
    fn med_by_elimination_in_every_arrival_order() {
        let ctx = DecisionCtx::default();
        let [b, c, a] = bca();
        let perms = permutations(3);
        assert_eq!(perms.len(), 6);
        for p in perms {
            let set = bca();
            let cands: Vec<Candidate> = p.iter().map(|&i| set[i]).collect();
            let at = |x: &Candidate| cands.iter().position(|y| y == x).unwrap();
            let mut fates = vec![Fate::In; 3];
            let best = decide(&cands, 1, false, &ctx, &mut fates);
            // §9.1.2.2 (c): B goes on MED within AS 65011 (to A); then C
            // and A differ first at the router id, and C's is lower.
            assert_eq!(best, Some(at(&c)), "order {p:?}");
            assert_eq!(
                fates[at(&b)],
                Fate::Lost {
                    step: Step::Med,
                    by: at(&a)
                },
                "order {p:?}"
            );
            assert_eq!(
                fates[at(&a)],
                Fate::Lost {
                    step: Step::RouterId,
                    by: at(&c)
                },
                "order {p:?}"
            );
            assert_eq!(select(&cands, 1, false, &ctx), vec![at(&c)]);
        }
    }

    #[test]
    fn always_compare_med_across_neighbour_ases() {
        let always = DecisionCtx {
            always_compare_med: true,
        };
        let [b, c, a] = bca();
        for p in permutations(3) {
            let set = bca();
            let cands: Vec<Candidate> = p.iter().map(|&i| set[i]).collect();
            let at = |x: &Candidate| cands.iter().position(|y| y == x).unwrap();
            let mut fates = vec![Fate::In; 3];
            // C has no MED, which counts as 0, the lowest: C wins at MED
            // and removes both others there.
            assert_eq!(decide(&cands, 1, false, &always, &mut fates), Some(at(&c)));
            for x in [&a, &b] {
                assert_eq!(
                    fates[at(x)],
                    Fate::Lost {
                        step: Step::Med,
                        by: at(&c)
                    }
                );
            }
            // With MED 15 on C, A (MED 10) wins on MED over C and B ...
            let c15 = Candidate { med: 15, ..c };
            let cands: Vec<Candidate> = cands
                .iter()
                .map(|x| if *x == c { c15 } else { *x })
                .collect();
            let mut fates = vec![Fate::In; 3];
            assert_eq!(decide(&cands, 1, false, &always, &mut fates), Some(at(&a)));
            assert_eq!(
                fates[at(&c)],
                Fate::Lost {
                    step: Step::Med,
                    by: at(&a)
                }
            );
            // ... while compared within ASes only, C still wins on router id.
            let mut fates = vec![Fate::In; 3];
            let ctx = DecisionCtx::default();
            assert_eq!(decide(&cands, 1, false, &ctx, &mut fates), Some(at(&c)));
        }
    }

    #[test]
    fn multipath_on_the_surviving_set() {
        let ctx = DecisionCtx::default();
        // B loses on MED, so it is no ECMP partner even with relax; A and
        // C are equal through the IGP cost and differ only in AS.
        let [b, c, a] = bca();
        let cands = [b, c, a];
        assert_eq!(select(&cands, 4, true, &ctx), vec![1, 2]);
        assert_eq!(select(&cands, 4, false, &ctx), vec![1]);
        let mut fates = [Fate::In; 3];
        decide(&cands, 4, true, &ctx, &mut fates);
        assert_eq!(
            fates,
            [
                Fate::Lost {
                    step: Step::Med,
                    by: 2
                },
                Fate::Best,
                Fate::Multipath
            ]
        );
        // Width 1 leaves A out, and says it lost at the router id.
        decide(&cands, 1, true, &ctx, &mut fates);
        assert!(fates[2].lost_after_igp_cost());
        assert_eq!(decide(&[], 4, true, &ctx, &mut []), None);
    }
}
