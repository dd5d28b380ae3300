//! Export: what (if anything) the best path of a prefix becomes towards
//! one peer, and the grouping of results into UPDATE messages.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net};
use wire::{
    update_attributes_fit, Community, Family, MpReach, MpUnreach, NextHop, Prefix, RawAttribute,
    SessionCodec, Update,
};

use crate::attrs::{Attrs, PathInfo};
use crate::ctx::{Ctx, NhStatus};
use crate::policy::{PolicyChain, Subject};
use crate::PeerId;

pub(crate) struct Exported {
    /// The attributes to send (next hop in `Attrs::next_hop`), or why not.
    pub result: Result<Attrs, String>,
    /// The result may differ for another prefix with the same best path.
    pub used_prefix: bool,
}

impl Ctx<'_> {
    /// The export pipeline for `best` (the best path of `prefix`) towards
    /// peer `to`. Pure: `explain` calls it too.
    pub(crate) fn export(&self, best: &PathInfo, prefix: &Prefix, to: PeerId) -> Exported {
        if best.peer == to {
            return Exported {
                result: Err("learned from this peer".into()),
                used_prefix: false,
            };
        }
        self.export_to_group(best, prefix, to)
    }

    /// [`Ctx::export`] for the update group of peer `to`, as if `to` were
    /// not the path's source: the group's other members may get the path,
    /// and the group itself never sends a member its own path
    /// (`update_group.rs`).
    pub(crate) fn export_to_group(&self, best: &PathInfo, prefix: &Prefix, to: PeerId) -> Exported {
        let mut used_prefix = false;
        let result = self.export_inner(best, prefix, to, &mut used_prefix);
        Exported {
            result,
            used_prefix,
        }
    }

    fn export_inner(
        &self,
        best: &PathInfo,
        prefix: &Prefix,
        to: PeerId,
        used_prefix: &mut bool,
    ) -> Result<Attrs, String> {
        let peer = self.peers.get(&to).ok_or("peer is not configured")?;
        let session = peer.session.as_ref().ok_or("session not established")?;
        let family = Family::of_prefix(prefix);
        if !session.families.contains(&family) {
            return Err(format!("family {family} not negotiated"));
        }
        let local_asn = self.cfg.local_asn;
        let to_ebgp = peer.cfg.remote_asn != local_asn;
        let a = &best.post.attrs;
        if a.communities.contains(&Community::NO_ADVERTISE) {
            return Err("NO_ADVERTISE community: not sent to any peer".into());
        }
        if to_ebgp && a.communities.contains(&Community::NO_EXPORT) {
            return Err("NO_EXPORT community: not sent to eBGP peers".into());
        }
        // A path leaked from another routing domain is sent as if we
        // originated it (`leak.rs`): its next hop and its iBGP history
        // belong to the other domain.
        let leaked = crate::attrs::is_leak_peer(best.peer);
        let source = (!best.is_local() && !leaked)
            .then(|| self.peers.get(&best.peer))
            .flatten();
        let from_ibgp = source.is_some_and(|s| s.cfg.remote_asn == local_asn);
        let reflect = from_ibgp && !to_ebgp;
        if reflect {
            let s = source.expect("from_ibgp implies a source");
            // RFC 4456 §6: client routes go to everyone, non-client routes
            // to clients only.
            if !s.cfg.route_reflector_client && !peer.cfg.route_reflector_client {
                return Err(format!(
                    "iBGP split horizon: learned from iBGP peer {} and neither it nor {} is a route-reflector client",
                    s.cfg.name, peer.cfg.name
                ));
            }
        }

        let mut attrs = Cow::Borrowed(a);
        let outcome = match &peer.cfg.export {
            PolicyChain::Unset if to_ebgp => return Err(
                "no export policy (RFC 8212: eBGP sessions exchange nothing until a policy is set)"
                    .into(),
            ),
            PolicyChain::Unset | PolicyChain::All => Default::default(),
            PolicyChain::None => return Err("export none".into()),
            PolicyChain::Named(names) => {
                let subject = Subject {
                    prefix,
                    neighbor: &peer.cfg.name,
                };
                let o = self.policies.evaluate(names, subject, &mut attrs);
                *used_prefix = o.used_prefix;
                if let Some(r) = o.rejected {
                    return Err(format!("export: {r}"));
                }
                o
            }
        };

        let mut out = attrs.into_owned();
        out.next_hop = None;
        let path_nh_local = matches!(self.nh_status(best), NhStatus::Local);
        let nh_self = to_ebgp
            || peer.cfg.next_hop_self
            || outcome.next_hop_self
            || best.is_local()
            || leaked
            || path_nh_local;
        if to_ebgp {
            out.as_path
                .prepend(local_asn, 1 + usize::from(outcome.prepend));
            out.local_pref = None;
            if !(outcome.med_set || best.is_local()) {
                out.med = None;
            }
            out.originator_id = None;
            out.cluster_list.clear();
        } else {
            out.as_path.prepend(local_asn, usize::from(outcome.prepend));
            out.local_pref = Some(out.local_pref.unwrap_or(100));
            if reflect {
                if out.originator_id.is_none() {
                    let s = source.expect("reflect implies a source");
                    out.originator_id = s.session.as_ref().map(|i| i.remote_router_id);
                }
                out.cluster_list.insert(0, self.cfg.cluster_id());
            }
        }
        out.unknown.retain(|u| {
            u.flags & RawAttribute::FLAG_OPTIONAL == 0
                || u.flags & RawAttribute::FLAG_TRANSITIVE != 0
        });

        let path_nh = best.post.next_hop;
        // A link-local next hop means nothing on another link.
        let keep = !nh_self
            && !path_nh.address_is_link_local()
            && match (family, path_nh.address) {
                (Family::Ipv4Unicast, IpAddr::V4(_)) | (Family::Ipv6Unicast, IpAddr::V6(_)) => true,
                (Family::Ipv4Unicast, IpAddr::V6(_)) => session.extended_next_hop_v4,
                (Family::Ipv6Unicast, IpAddr::V4(_)) => false,
            };
        // A kept next hop goes as the address only: a link-local address
        // the path came with belongs to another link.
        let next_hop = if keep {
            NextHop::new(path_nh.address)
        } else {
            // Ourselves as an IPv6 next hop: with our link-local address on
            // a shared link (RFC 2545 §3; RFC 8950 §3 for IPv4 NLRI).
            let own_v6 = |v6| NextHop {
                address: IpAddr::V6(v6),
                link_local: session.local_link_local,
                interface: None,
            };
            match family {
                Family::Ipv4Unicast => match (session.local_next_hop_v4, session.local_next_hop_v6)
                {
                    (Some(v4), _) => NextHop::new(IpAddr::V4(v4)),
                    (None, Some(v6)) if session.extended_next_hop_v4 => own_v6(v6),
                    _ => return Err("no IPv4 next hop for this session".into()),
                },
                Family::Ipv6Unicast => match session.local_next_hop_v6 {
                    Some(v6) => own_v6(v6),
                    None => return Err("no IPv6 next hop for this session".into()),
                },
            }
        };
        let exported = Attrs {
            next_hop,
            attrs: out,
        };
        if !fits_one_update(&exported, family) {
            return Err(DOES_NOT_FIT.into());
        }
        Ok(exported)
    }
}

/// Why a route is not advertised to a peer when its attributes are too big.
pub(crate) const DOES_NOT_FIT: &str = "not advertised: attributes do not fit in 4096 bytes";

/// True if an UPDATE announcing one prefix of `family` (the longest one)
/// with `attrs` fits in 4096 octets (RFC 4271 §4; kroute does not do
/// RFC 8654 extended messages). A route that does not fit is not
/// advertised at all: RFC 4271 §9.2 leaves it unadvertised, and a
/// previously advertised version is withdrawn because the Adj-RIB-Out
/// records it as not sent.
///
/// The RIB does not know whether the session negotiated 4-octet ASNs, which
/// changes the AS_PATH encoding (2-octet sessions carry AS4_PATH too), so
/// the route must fit either way. Only an AS_PATH of several hundred ASNs
/// can fit one encoding and not the other.
fn fits_one_update(attrs: &Attrs, family: Family) -> bool {
    if clearly_fits(&attrs.attrs) {
        return true;
    }
    let longest: Prefix = match family {
        Family::Ipv4Unicast => "255.255.255.255/32".parse().expect("valid prefix"),
        Family::Ipv6Unicast => "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"
            .parse()
            .expect("valid prefix"),
    };
    let probe = make_update(attrs, family, vec![longest]);
    [false, true]
        .into_iter()
        .all(|four_octet_as| update_attributes_fit(&probe, &SessionCodec { four_octet_as }))
}

/// A cheap bound that settles nearly every route without building the
/// probe UPDATE (this runs for each exported attribute set, 300k in a full
/// table): the list-valued attributes, counted at their largest encoding
/// (each ASN in both AS_PATH and AS4_PATH at 4 octets), take at most 3072
/// octets. Everything else an UPDATE for one prefix can carry — the
/// header, the fixed-size attributes, MP_REACH with a global and a
/// link-local IPv6 next hop, a /128 — is well under 400 octets.
fn clearly_fits(a: &wire::PathAttributes) -> bool {
    let as_path = a.as_path.asns().count() * 8 + a.as_path.segments().count() * 4;
    let unknown: usize = a.unknown.iter().map(|u| u.value.len() + 4).sum();
    let lists = as_path
        + a.communities.len() * 4
        + a.large_communities.len() * 12
        + a.cluster_list.len() * 4
        + unknown;
    lists <= 3072
}

/// Collects announcements and withdrawals per peer during one event and
/// turns them into UPDATEs, one per distinct attribute set and family.
#[derive(Default)]
pub(crate) struct UpdateBuilder {
    peers: Vec<(PeerId, PeerBatch)>,
}

#[derive(Default)]
struct PeerBatch {
    groups: Vec<(Arc<Attrs>, Family, Vec<Prefix>)>,
    index: HashMap<(*const Attrs, Family), usize>,
    withdraw_v4: Vec<Ipv4Net>,
    withdraw_v6: Vec<Prefix>,
}

impl UpdateBuilder {
    fn batch(&mut self, peer: PeerId) -> &mut PeerBatch {
        // From the end: a caller keyed by source meets one source after
        // another (a shared batch, `UpdateGroup::batch_at`).
        let i = match self.peers.iter().rposition(|(p, _)| *p == peer) {
            Some(i) => i,
            None => {
                self.peers.push((peer, PeerBatch::default()));
                self.peers.len() - 1
            }
        };
        &mut self.peers[i].1
    }

    pub fn announce(&mut self, peer: PeerId, attrs: &Arc<Attrs>, prefix: Prefix) {
        let b = self.batch(peer);
        let family = Family::of_prefix(&prefix);
        let key = (Arc::as_ptr(attrs), family);
        match b.index.get(&key) {
            Some(&i) => b.groups[i].2.push(prefix),
            None => {
                b.index.insert(key, b.groups.len());
                b.groups.push((attrs.clone(), family, vec![prefix]));
            }
        }
    }

    pub fn withdraw(&mut self, peer: PeerId, prefix: Prefix) {
        let b = self.batch(peer);
        match prefix {
            IpNet::V4(n) => b.withdraw_v4.push(n),
            IpNet::V6(_) => b.withdraw_v6.push(prefix),
        }
    }

    /// The UPDATEs of a builder used for one peer only.
    pub fn flush_into(self, out: &mut Vec<Update>) {
        let mut all = Vec::new();
        self.flush(&mut all);
        out.extend(all.into_iter().map(|(_, u)| u));
    }

    pub fn flush(self, out: &mut Vec<(PeerId, Update)>) {
        for (peer, b) in self.peers {
            if !b.withdraw_v4.is_empty() || !b.withdraw_v6.is_empty() {
                out.push((
                    peer,
                    Update {
                        withdrawn: b.withdraw_v4,
                        mp_unreach: (!b.withdraw_v6.is_empty()).then_some(MpUnreach {
                            family: Family::Ipv6Unicast,
                            withdrawn: b.withdraw_v6,
                        }),
                        ..Default::default()
                    },
                ));
            }
            for (attrs, family, prefixes) in b.groups {
                out.push((peer, make_update(&attrs, family, prefixes)));
            }
        }
    }
}

/// One UPDATE announcing `prefixes` (all of `family`) with `attrs`: IPv4
/// NLRI with an IPv4 next hop go in the classic NLRI field with NEXT_HOP,
/// everything else in MP_REACH_NLRI.
pub(crate) fn make_update(attrs: &Attrs, family: Family, prefixes: Vec<Prefix>) -> Update {
    let mut pa = attrs.attrs.clone();
    match (family, attrs.next_hop.address) {
        (Family::Ipv4Unicast, IpAddr::V4(nh)) => {
            pa.next_hop = Some(nh);
            Update {
                attributes: pa,
                nlri: prefixes
                    .into_iter()
                    .filter_map(|p| match p {
                        IpNet::V4(n) => Some(n),
                        IpNet::V6(_) => None,
                    })
                    .collect(),
                ..Default::default()
            }
        }
        _ => {
            pa.next_hop = None;
            Update {
                attributes: pa,
                mp_reach: Some(MpReach {
                    family,
                    next_hop: attrs.next_hop,
                    nlri: prefixes,
                }),
                ..Default::default()
            }
        }
    }
}

/// The End-of-RIB marker for `family` (RFC 4724 §2).
pub(crate) fn end_of_rib(family: Family) -> Update {
    match family {
        Family::Ipv4Unicast => Update::default(),
        Family::Ipv6Unicast => Update {
            mp_unreach: Some(MpUnreach {
                family,
                withdrawn: Vec::new(),
            }),
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::{Aggregator, AsPath, Origin, PathAttributes};

    /// Every fixed-size attribute, an IPv6 next hop with its link-local
    /// address, and list-valued attributes exactly at `clearly_fits`'
    /// bound: the probe UPDATE must really fit, for both families and both
    /// ASN encodings.
    #[test]
    fn the_cheap_bound_only_passes_what_really_fits() {
        let attrs = |communities: usize| Attrs {
            next_hop: NextHop {
                address: "2001:db8::1".parse().unwrap(),
                link_local: Some("fe80::1".parse().unwrap()),
                interface: None,
            },
            attrs: PathAttributes {
                origin: Some(Origin::Igp),
                as_path: AsPath::from_sequence((0..64).map(|i| 4_200_000_000 + i).collect()),
                next_hop: Some("192.0.2.1".parse().unwrap()),
                med: Some(1),
                local_pref: Some(100),
                atomic_aggregate: true,
                aggregator: Some(Aggregator {
                    asn: 4_200_000_000,
                    address: "192.0.2.1".parse().unwrap(),
                }),
                communities: (0..communities as u32).map(Community).collect(),
                originator_id: Some("192.0.2.9".parse().unwrap()),
                ..Default::default()
            },
        };
        // 64 ASNs in one segment: 64 * 8 + 4 = 516 octets; communities fill
        // the rest of the 3072.
        let at_bound = attrs((3072 - 516) / 4);
        assert!(clearly_fits(&at_bound.attrs));
        assert!(!clearly_fits(&attrs((3072 - 516) / 4 + 1).attrs));
        for family in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
            let longest: Prefix = match family {
                Family::Ipv4Unicast => "255.255.255.255/32".parse().unwrap(),
                Family::Ipv6Unicast => "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"
                    .parse()
                    .unwrap(),
            };
            let probe = make_update(&at_bound, family, vec![longest]);
            for four_octet_as in [false, true] {
                assert!(
                    update_attributes_fit(&probe, &SessionCodec { four_octet_as }),
                    "{family:?}, 4-octet AS {four_octet_as}"
                );
            }
        }
    }
}
