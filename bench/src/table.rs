//! The routing table the sender replays: groups of prefixes, each group
//! sharing one attribute set (as real tables do, and as a receiver that
//! interns attributes exploits). Either generated from a seed or read from an
//! MRT RIB dump (`mrt.rs`).

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use wire::{AsPath, Community, LargeCommunity, Origin, PathAttributes, Prefix};

use crate::rng::Rng;

/// Prefixes of one family sharing one attribute set. The next hop is not part
/// of the attributes here: the sender sets its own when encoding.
#[derive(Debug, Clone)]
pub struct Group {
    pub attrs: PathAttributes,
    pub prefixes: Vec<Prefix>,
}

#[derive(Debug, Clone, Default)]
pub struct Table {
    pub groups: Vec<Group>,
}

impl Table {
    pub fn prefixes(&self) -> impl Iterator<Item = &Prefix> + '_ {
        self.groups.iter().flat_map(|g| g.prefixes.iter())
    }

    /// (IPv4, IPv6) prefix counts.
    pub fn counts(&self) -> (usize, usize) {
        let v4 = self
            .prefixes()
            .filter(|p| matches!(p, IpNet::V4(_)))
            .count();
        (v4, self.prefixes().count() - v4)
    }

    pub fn len(&self) -> usize {
        self.groups.iter().map(|g| g.prefixes.len()).sum()
    }

    /// Every prefix in its own attribute set (its group's attributes with a
    /// MED unique to the prefix), so every UPDATE carries one prefix: what
    /// a table whose routes differ in their attributes looks like on the
    /// wire, and what a BIRD sender writes for such a table. It measures a
    /// receiver's cost per UPDATE message rather than per prefix.
    pub fn one_per_update(&self) -> Table {
        let mut out = Table::default();
        let mut med = 0u32;
        for g in &self.groups {
            for p in &g.prefixes {
                let mut attrs = g.attrs.clone();
                attrs.med = Some(med);
                med += 1;
                out.groups.push(Group {
                    attrs,
                    prefixes: vec![*p],
                });
            }
        }
        out
    }

    /// `n` prefixes spread evenly over the table (for the churn run), each
    /// with its group's attributes, as groups again.
    pub fn sample(&self, n: usize) -> Table {
        let total = self.len();
        if n == 0 || total == 0 {
            return Table::default();
        }
        let step = (total / n.min(total)).max(1);
        let mut out = Table::default();
        let mut i = 0usize;
        let mut taken = 0usize;
        for g in &self.groups {
            let mut picked = Vec::new();
            for p in &g.prefixes {
                if i.is_multiple_of(step) && taken < n {
                    picked.push(*p);
                    taken += 1;
                }
                i += 1;
            }
            if !picked.is_empty() {
                out.groups.push(Group {
                    attrs: g.attrs.clone(),
                    prefixes: picked,
                });
            }
        }
        out
    }
}

/// What a generated table looks like.
#[derive(Debug, Clone, Copy)]
pub struct GenParams {
    pub ipv4: usize,
    pub ipv6: usize,
    pub seed: u64,
    /// First ASN of every AS path (eBGP: the sender's own).
    pub sender_asn: u32,
    /// Never used in a path (the receiver would drop it as a loop).
    pub receiver_asn: u32,
}

/// IPv4 prefix lengths, per 10,000: /24 64 %, /22–/23 20 %, /16–/21 15 %,
/// /8–/15 1 %. The short lengths get 1 % rather than more because there are
/// only ~56k distinct /8–/15 prefixes in unicast space; real tables hold a
/// few thousand of them.
const V4_LENGTHS: &[(u32, u8)] = &[
    (6400, 24),
    (1000, 23),
    (1000, 22),
    (350, 21),
    (400, 20),
    (350, 19),
    (150, 18),
    (100, 17),
    (150, 16),
    (50, 15),
    (25, 14),
    (13, 13),
    (6, 12),
    (3, 11),
    (1, 10),
    (1, 9),
    (1, 8),
];

/// IPv6 prefix lengths, per 1,000: /48 53 %, /32–/47 37 %, /29–/31 5 %,
/// /56 1.5 %, /64 4 %.
const V6_LENGTHS: &[(u32, u8)] = &[
    (530, 48),
    (130, 32),
    (10, 33),
    (10, 34),
    (5, 35),
    (20, 36),
    (5, 37),
    (10, 38),
    (5, 39),
    (40, 40),
    (5, 41),
    (10, 42),
    (5, 43),
    (60, 44),
    (10, 45),
    (20, 46),
    (20, 47),
    (30, 29),
    (10, 30),
    (10, 31),
    (15, 56),
    (40, 64),
];

/// Prefixes per attribute set: mean 4.0, skewed like real tables (many sets
/// with one or two prefixes, a few with a dozen).
const GROUP_SIZES: &[(u32, usize)] = &[
    (30, 1),
    (20, 2),
    (10, 3),
    (10, 4),
    (10, 6),
    (10, 8),
    (10, 12),
];

/// Extra ASNs after the sender's: 0..=5, so paths of 1–6 hops.
const EXTRA_HOPS: &[(u32, usize)] = &[(5, 0), (20, 1), (35, 2), (25, 3), (10, 4), (5, 5)];

fn v4_prefix(rng: &mut Rng, len: u8) -> Ipv4Net {
    loop {
        let a = rng.next_u32();
        let first = a >> 24;
        // Unicast, not 0/8, loopback, the link net (10/8) or class D/E.
        if first == 0 || first == 10 || first == 127 || first >= 224 {
            continue;
        }
        return Ipv4Net::new(Ipv4Addr::from(a), len)
            .expect("length <= 32")
            .trunc();
    }
}

fn v6_prefix(rng: &mut Rng, len: u8) -> Ipv6Net {
    // Global unicast 2000::/3.
    let hi = (rng.next_u64() & !(0b111 << 61)) | (0b001 << 61);
    let a = (u128::from(hi) << 64) | u128::from(rng.next_u64());
    Ipv6Net::new(Ipv6Addr::from(a), len)
        .expect("length <= 128")
        .trunc()
}

fn random_asn(rng: &mut Rng, avoid: [u32; 2]) -> u32 {
    loop {
        let a = if rng.chance(70) {
            1 + rng.below(64_511) as u32
        } else {
            131_072 + rng.below(4_199_999_999 - 131_072) as u32
        };
        if !avoid.contains(&a) {
            return a;
        }
    }
}

fn random_attrs(rng: &mut Rng, p: &GenParams) -> PathAttributes {
    let mut path = vec![p.sender_asn];
    for _ in 0..rng.weighted(EXTRA_HOPS) {
        path.push(random_asn(rng, [p.sender_asn, p.receiver_asn]));
    }
    let origin = if rng.chance(90) {
        Origin::Igp
    } else {
        Origin::Incomplete
    };
    let mut communities = Vec::new();
    if rng.chance(60) {
        for _ in 0..1 + rng.below(4) {
            // Tagged by some AS on the path that fits a standard community.
            let asn = path[rng.below(path.len() as u64) as usize];
            let asn = if asn <= 0xffff {
                asn
            } else {
                p.sender_asn & 0xffff
            };
            communities.push(Community((asn << 16) | rng.below(3000) as u32));
        }
        communities.sort();
        communities.dedup();
    }
    let mut large_communities = Vec::new();
    if rng.chance(5) {
        large_communities.push(LargeCommunity {
            global: *path.last().expect("non-empty"),
            local1: 1 + rng.below(10) as u32,
            local2: rng.below(1000) as u32,
        });
    }
    PathAttributes {
        origin: Some(origin),
        as_path: AsPath::from_sequence(path),
        med: rng.chance(30).then(|| rng.below(1000) as u32),
        communities: communities.into(),
        large_communities: large_communities.into(),
        ..PathAttributes::default()
    }
}

/// A deterministic table: the same parameters give the same groups, in the
/// same order, with the same attributes.
pub fn generate(p: &GenParams) -> Table {
    let mut rng = Rng::new(p.seed);
    let mut seen: HashSet<Prefix> = HashSet::with_capacity(p.ipv4 + p.ipv6);
    let mut groups = Vec::with_capacity((p.ipv4 + p.ipv6) / 3);
    for (want, v6) in [(p.ipv4, false), (p.ipv6, true)] {
        let mut made = 0;
        while made < want {
            let size = rng.weighted(GROUP_SIZES).min(want - made);
            let attrs = random_attrs(&mut rng, p);
            let mut prefixes = Vec::with_capacity(size);
            while prefixes.len() < size {
                let pfx = if v6 {
                    let len = rng.weighted(V6_LENGTHS);
                    // A dense length falls back to the most common one.
                    let mut pfx = IpNet::V6(v6_prefix(&mut rng, len));
                    for _ in 0..64 {
                        if !seen.contains(&pfx) {
                            break;
                        }
                        pfx = IpNet::V6(v6_prefix(&mut rng, len));
                    }
                    while seen.contains(&pfx) {
                        pfx = IpNet::V6(v6_prefix(&mut rng, 48));
                    }
                    pfx
                } else {
                    let len = rng.weighted(V4_LENGTHS);
                    let mut pfx = IpNet::V4(v4_prefix(&mut rng, len));
                    for _ in 0..64 {
                        if !seen.contains(&pfx) {
                            break;
                        }
                        pfx = IpNet::V4(v4_prefix(&mut rng, len));
                    }
                    while seen.contains(&pfx) {
                        pfx = IpNet::V4(v4_prefix(&mut rng, 24));
                    }
                    pfx
                };
                seen.insert(pfx);
                prefixes.push(pfx);
            }
            made += size;
            groups.push(Group { attrs, prefixes });
        }
    }
    Table { groups }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn params(ipv4: usize, ipv6: usize, seed: u64) -> GenParams {
        GenParams {
            ipv4,
            ipv6,
            seed,
            sender_asn: 65000,
            receiver_asn: 65001,
        }
    }

    #[test]
    fn deterministic_and_exact_counts() {
        let a = generate(&params(5000, 1000, 1));
        let b = generate(&params(5000, 1000, 1));
        assert_eq!(a.counts(), (5000, 1000));
        let pa: Vec<_> = a.prefixes().collect();
        let pb: Vec<_> = b.prefixes().collect();
        assert_eq!(pa, pb);
        let c = generate(&params(5000, 1000, 2));
        assert_ne!(pa, c.prefixes().collect::<Vec<_>>());
    }

    #[test]
    fn unique_prefixes_realistic_mix() {
        let t = generate(&params(50_000, 10_000, 3));
        let all: HashSet<_> = t.prefixes().collect();
        assert_eq!(all.len(), 60_000);
        let mut by_len: HashMap<u8, usize> = HashMap::new();
        for p in t.prefixes().filter(|p| matches!(p, IpNet::V4(_))) {
            *by_len.entry(p.prefix_len()).or_default() += 1;
        }
        let share = |l: u8| by_len.get(&l).copied().unwrap_or(0) as f64 / 50_000.0;
        assert!((0.60..0.68).contains(&share(24)), "/24 share {}", share(24));
        let v6_48 = t
            .prefixes()
            .filter(|p| matches!(p, IpNet::V6(n) if n.prefix_len() == 48));
        let s48 = v6_48.count() as f64 / 10_000.0;
        assert!((0.48..0.58).contains(&s48), "/48 share {s48}");
        // About 4 prefixes per attribute set.
        let per_group = 60_000.0 / t.groups.len() as f64;
        assert!((3.5..4.5).contains(&per_group), "{per_group} per group");
        for g in &t.groups {
            let hops = g.attrs.as_path.path_len();
            assert!((1..=6).contains(&hops));
            assert_eq!(g.attrs.as_path.first_asn(), Some(65000));
            assert_eq!(g.attrs.as_path.count(65001), 0);
            let fam = std::mem::discriminant(&g.prefixes[0]);
            assert!(g.prefixes.iter().all(|p| std::mem::discriminant(p) == fam));
        }
    }

    #[test]
    fn sample_spreads() {
        let t = generate(&params(10_000, 2_000, 4));
        let s = t.sample(500);
        assert_eq!(s.len(), 500);
        let (v4, v6) = s.counts();
        assert!(v4 > 300 && v6 > 50, "{v4} {v6}");
    }
}
