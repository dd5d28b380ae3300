//! Next-hop resolution: the links, every BGP next hop a route or the RIB
//! asked about with its kernel resolution, and what a route's next-hop set
//! comes to in kernel next hops ([`Resolver::desired`]).
//!
//! The kernel guarantee relied on: a lookup (`ip route get fibmatch`)
//! answers with the route the kernel would forward by *now*; nothing tells
//! us when that answer changes, so every next hop is resolved again after
//! any link, address or foreign route change (see `recheck`).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use tokio::sync::mpsc::UnboundedSender;

use crate::hash::{FastMap, FastSet};
use crate::msg::KernelHop;
use crate::query::{Link, Query, Resolved};
use crate::report::FibEvent;
use tables::fib::NexthopState;
use wire::NextHop as BgpNextHop;

/// What we want the kernel to hold for a prefix, from its BGP next hops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Desired {
    Install(Arc<[KernelHop]>),
    Local,
    Unresolved(String),
}

struct NextHop {
    res: Resolved,
    /// Asked for by `watch_nexthops` (events are sent only for these).
    watched: bool,
}

/// A kernel next hop through a link-local address, and the BGP next hops
/// that were seen resolving to it: it forwards for as long as one of them
/// is not `down` (a peer announcing a global and a link-local next hop,
/// RFC 2545 section 3, loses both with its session).
struct ScopedHop {
    hops: Arc<[KernelHop]>,
    via: Vec<IpAddr>,
}

pub(crate) struct Resolver {
    links: HashMap<u32, Link>,
    nexthops: FastMap<IpAddr, NextHop>,
    /// Kernel next hops through a link-local address on a given interface
    /// (see [`scoped_hop`]), one shared slice each, as resolutions are:
    /// every route through the same neighbour shares it.
    scoped: RefCell<FastMap<KernelHop, ScopedHop>>,
    /// Next hops the RIB lost its paths via (`Fib::next_hops_down`):
    /// unreachable for routes, whatever the kernel says, until a change
    /// names them again.
    down: FastSet<IpAddr>,
    /// What a next hop in `down` resolves to.
    session_down: Resolved,
    events: UnboundedSender<FibEvent>,
}

impl Resolver {
    pub(crate) fn new(links: HashMap<u32, Link>, events: UnboundedSender<FibEvent>) -> Resolver {
        Resolver {
            links,
            nexthops: FastMap::default(),
            scoped: RefCell::default(),
            down: FastSet::default(),
            session_down: Resolved::unreachable("its BGP session went down"),
            events,
        }
    }

    pub(crate) fn link_name(&self, index: u32) -> String {
        link_name(&self.links, index)
    }

    /// A link appeared or changed; returns true if it went down.
    pub(crate) fn link_changed(&mut self, index: u32, name: Option<String>, up: bool) -> bool {
        let name = name.unwrap_or_else(|| self.link_name(index));
        let was_up = self.links.get(&index).map(|l| l.up);
        let went_down = was_up == Some(true) && !up;
        if went_down {
            tracing::info!("interface {name} is down");
        } else if was_up == Some(false) && up {
            tracing::info!("interface {name} is up");
        }
        self.links.insert(index, Link { name, up });
        went_down
    }

    pub(crate) fn link_gone(&mut self, index: u32) {
        if let Some(l) = self.links.remove(&index) {
            tracing::info!("interface {} is gone", l.name);
        }
    }

    /// Re-reads the link table; returns the indexes of links that went down
    /// or disappeared since we last knew them.
    pub(crate) fn refresh_links(&mut self, query: &mut Query) -> io::Result<Vec<u32>> {
        let fresh = query.links()?;
        let went_down = links_gone_down(&self.links, &fresh);
        self.links = fresh;
        Ok(went_down)
    }

    /// Resolves `addr` unless it is known already.
    pub(crate) fn ensure(&mut self, query: &mut Query, addr: IpAddr) {
        if !self.nexthops.contains_key(&addr) {
            let links = &self.links;
            let res = query.resolve(addr, &|i| link_name(links, i));
            tracing::debug!("next hop {addr} resolves to {:?}", res);
            self.nexthops.insert(
                addr,
                NextHop {
                    res,
                    watched: false,
                },
            );
        }
    }

    /// Reports each of `addrs` now, and its every change from now on.
    pub(crate) fn watch(&mut self, query: &mut Query, addrs: Vec<IpAddr>) {
        for addr in addrs {
            self.ensure(query, addr);
            let nh = self.nexthops.get_mut(&addr).expect("just resolved");
            nh.watched = true;
            let _ = self.events.send(FibEvent::Nexthop {
                address: addr,
                state: nh.res.state.clone(),
            });
        }
    }

    /// Stops reporting `addr`. Forgotten now unless a wanted route
    /// (`in_use`) still names it; then when the last one goes
    /// ([`Resolver::unused`]).
    pub(crate) fn unwatch(&mut self, addr: IpAddr, in_use: bool) {
        if in_use {
            if let Some(nh) = self.nexthops.get_mut(&addr) {
                nh.watched = false;
            }
        } else {
            self.nexthops.remove(&addr);
        }
    }

    /// No wanted route names `addr` any more: forgotten unless watched
    /// (so it is neither resolved again on every change nor reported).
    pub(crate) fn unused(&mut self, addr: IpAddr) {
        if self.nexthops.get(&addr).is_some_and(|nh| !nh.watched) {
            self.nexthops.remove(&addr);
        }
    }

    /// Whether `addr` is resolved and followed.
    #[cfg(test)]
    pub(crate) fn knows(&self, addr: &IpAddr) -> bool {
        self.nexthops.contains_key(addr)
    }

    /// Resolves every next hop again; returns those whose resolution
    /// changed (watched ones with a new verdict are reported).
    pub(crate) fn resolve_again(&mut self, query: &mut Query) -> FastSet<IpAddr> {
        let mut changed: FastSet<IpAddr> = FastSet::default();
        let links = &self.links;
        for (addr, nh) in self.nexthops.iter_mut() {
            let res = query.resolve(*addr, &|i| link_name(links, i));
            if res == nh.res {
                continue;
            }
            if res.state != nh.res.state {
                match &res.state {
                    NexthopState::Unreachable(why) => {
                        tracing::info!("next hop {addr} is unreachable: {why}")
                    }
                    NexthopState::Reachable { metric } => {
                        tracing::info!("next hop {addr} is reachable (metric {metric})")
                    }
                    NexthopState::Local => tracing::info!("next hop {addr} is local"),
                }
                if nh.watched {
                    let _ = self.events.send(FibEvent::Nexthop {
                        address: *addr,
                        state: res.state.clone(),
                    });
                }
            }
            nh.res = res;
            changed.insert(*addr);
        }
        changed
    }

    /// Every kernel next hop some reachable BGP next hop resolves to now:
    /// what a nexthop object may still forward on (see `Objects::shrink`).
    pub(crate) fn alive_hops(&self) -> FastSet<KernelHop> {
        let scoped = self.scoped.borrow();
        self.nexthops
            .iter()
            .filter(|(a, nh)| {
                matches!(nh.res.state, NexthopState::Reachable { .. }) && !self.down.contains(a)
            })
            .flat_map(|(_, nh)| nh.res.hops.iter().copied())
            .chain(
                scoped
                    .iter()
                    .filter(|(h, s)| {
                        self.link_up(h.ifindex) && s.via.iter().any(|a| !self.down.contains(a))
                    })
                    .map(|(h, _)| *h),
            )
            .collect()
    }

    fn link_up(&self, index: u32) -> bool {
        self.links.get(&index).is_some_and(|l| l.up)
    }

    /// The RIB lost its paths via `addr`: unreachable for routes until
    /// [`Resolver::revive`]. True if it was not down yet.
    pub(crate) fn set_down(&mut self, addr: IpAddr) -> bool {
        self.down.insert(addr)
    }

    /// A change names `addr` again: it resolves as the kernel says. True
    /// if it was down.
    pub(crate) fn revive(&mut self, addr: &IpAddr) -> bool {
        !self.down.is_empty() && self.down.remove(addr)
    }

    /// What a route with these BGP next hops should be in the kernel.
    pub(crate) fn desired(&self, nhs: &[BgpNextHop]) -> Desired {
        let state_of = |nh: &BgpNextHop| -> Option<Cow<'_, Resolved>> {
            if self.down.contains(&nh.address) {
                return Some(Cow::Borrowed(&self.session_down));
            }
            let global = self.nexthops.get(&nh.address).map(|n| &n.res);
            match scoped_hop(nh, global) {
                Some(h) if self.link_up(h.ifindex) => {
                    let mut scoped = self.scoped.borrow_mut();
                    let entry = scoped.entry(h).or_insert_with(|| ScopedHop {
                        hops: Arc::from([h]),
                        via: Vec::new(),
                    });
                    if !entry.via.contains(&nh.address) {
                        entry.via.push(nh.address);
                    }
                    let hops = entry.hops.clone();
                    Some(Cow::Owned(Resolved {
                        state: NexthopState::Reachable { metric: 0 },
                        hops,
                    }))
                }
                Some(h) => Some(Cow::Owned(Resolved::unreachable(format!(
                    "interface {} is down",
                    self.link_name(h.ifindex)
                )))),
                None => global.map(Cow::Borrowed),
            }
        };
        desired(nhs, state_of)
    }

    /// A kernel next hop in words, as `ip route` writes it: "via 10.0.0.1
    /// dev eth0", or "via inet6 fe80::1 dev eth0" for another family.
    pub(crate) fn hop_text(&self, prefix: &IpNet, h: &KernelHop) -> String {
        let dev = self.link_name(h.ifindex);
        let family = match (prefix, h.gateway) {
            (IpNet::V4(_), IpAddr::V6(_)) => "inet6 ",
            (IpNet::V6(_), IpAddr::V4(_)) => "inet ",
            _ => "",
        };
        format!("via {family}{} dev {dev}", h.gateway)
    }
}

/// The kernel next hop of a BGP next hop through its link-local address,
/// when it has one on a known interface (the session's link): a
/// link-local-only next hop always; a global + link-local one when the
/// global address is on-link on that same interface (it resolves to
/// itself there), as FRR installs it. Otherwise none: the global address
/// is resolved as usual. `global`: the global address' resolution.
fn scoped_hop(nh: &BgpNextHop, global: Option<&Resolved>) -> Option<KernelHop> {
    let ifindex = nh.interface?.get();
    if nh.address_is_link_local() {
        return Some(KernelHop {
            gateway: nh.address,
            ifindex,
        });
    }
    let ll = nh.link_local?;
    let on_link = KernelHop {
        gateway: nh.address,
        ifindex,
    };
    let r = global?;
    (matches!(r.state, NexthopState::Reachable { .. }) && r.hops[..] == [on_link]).then_some(
        KernelHop {
            gateway: IpAddr::V6(ll),
            ifindex,
        },
    )
}

fn link_name(links: &HashMap<u32, Link>, index: u32) -> String {
    links
        .get(&index)
        .map(|l| l.name.clone())
        .unwrap_or_else(|| format!("if{index}"))
}

/// Links up in `old` that are down or absent in `fresh`.
fn links_gone_down(old: &HashMap<u32, Link>, fresh: &HashMap<u32, Link>) -> Vec<u32> {
    old.iter()
        .filter(|(i, l)| l.up && !fresh.get(i).is_some_and(|f| f.up))
        .map(|(i, _)| *i)
        .collect()
}

/// The decision behind [`Resolver::desired`], given each next hop's
/// resolution (None: not resolved yet). One next hop: its kernel next hops
/// as resolved (shared, not copied: the common case at a full table). More:
/// the union of the reachable ones' kernel next hops (ECMP); none reachable
/// but one local: local; else unresolved, with every reason.
fn desired<'a>(
    nhs: &[BgpNextHop],
    state_of: impl Fn(&BgpNextHop) -> Option<Cow<'a, Resolved>>,
) -> Desired {
    if let [one] = nhs {
        return match state_of(one) {
            Some(r) => match &r.state {
                NexthopState::Reachable { .. } => Desired::Install(r.hops.clone()),
                NexthopState::Local => Desired::Local,
                NexthopState::Unreachable(why) => {
                    Desired::Unresolved(format!("{}: {why}", one.address))
                }
            },
            None => Desired::Unresolved(format!("{}: not resolved yet", one.address)),
        };
    }
    let mut hops: Vec<KernelHop> = Vec::new();
    let mut local = false;
    let mut why = Vec::new();
    for nh in nhs {
        match state_of(nh) {
            Some(r) => match &r.state {
                NexthopState::Reachable { .. } => hops.extend(r.hops.iter().copied()),
                NexthopState::Local => local = true,
                NexthopState::Unreachable(w) => why.push(format!("{}: {w}", nh.address)),
            },
            None => why.push(format!("{}: not resolved yet", nh.address)),
        }
    }
    hops.sort();
    hops.dedup();
    if !hops.is_empty() {
        Desired::Install(Arc::from(hops))
    } else if local {
        Desired::Local
    } else {
        Desired::Unresolved(why.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::msg::hop;

    fn reachable(hops: &[KernelHop]) -> Resolved {
        Resolved {
            state: NexthopState::Reachable { metric: 0 },
            hops: Arc::from(hops),
        }
    }

    fn local() -> Resolved {
        Resolved {
            state: NexthopState::Local,
            hops: Arc::from(Vec::new()),
        }
    }

    fn nhs(addrs: &[&str]) -> Vec<BgpNextHop> {
        addrs
            .iter()
            .map(|a| BgpNextHop::new(a.parse().unwrap()))
            .collect()
    }

    #[test]
    fn unwatched_next_hops_are_forgotten_once_no_route_names_them() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut r = Resolver::new(HashMap::new(), tx);
        let [a, b, c]: [IpAddr; 3] =
            ["10.0.0.1", "10.0.1.1", "10.0.2.1"].map(|s| s.parse().unwrap());
        for addr in [a, b, c] {
            let res = reachable(&[hop("10.0.0.1", 2)]);
            r.nexthops.insert(addr, NextHop { res, watched: true });
        }
        // a: no route names it, forgotten at once; b: still named.
        r.unwatch(a, false);
        r.unwatch(b, true);
        assert!(!r.knows(&a) && r.knows(&b));
        // Its last route gone, b goes; c, still watched, stays.
        r.unused(b);
        r.unused(c);
        assert!(!r.knows(&b) && r.knows(&c));
        // Forgotten ones are resolved again no more (and never reported).
        assert_eq!(r.nexthops.len(), 1);
        assert!(rx.try_recv().is_err());
    }

    /// 10.0.0.1 reachable on two links, 10.0.1.1 on one (shared with the
    /// first), 10.0.2.1 unreachable, ::1 local, 10.0.3.1 never resolved.
    fn known() -> HashMap<IpAddr, Resolved> {
        let a = hop("10.0.0.1", 2);
        let b = hop("10.0.0.1", 3);
        [
            ("10.0.0.1", reachable(&[a, b])),
            ("10.0.1.1", reachable(&[b])),
            ("10.0.2.1", Resolved::unreachable("no route")),
            ("::1", local()),
        ]
        .into_iter()
        .map(|(k, v)| (k.parse().unwrap(), v))
        .collect()
    }

    fn decide(known: &HashMap<IpAddr, Resolved>, addrs: &[&str]) -> Desired {
        desired(&nhs(addrs), |nh| known.get(&nh.address).map(Cow::Borrowed))
    }

    #[test]
    fn one_reachable_next_hop_shares_its_resolution() {
        let k = known();
        let Desired::Install(h) = decide(&k, &["10.0.0.1"]) else {
            panic!("not installed")
        };
        let addr: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(Arc::ptr_eq(&h, &k[&addr].hops), "no copy per route");
    }

    #[test]
    fn several_next_hops_install_the_union_of_the_reachable() {
        let k = known();
        assert_eq!(
            decide(&k, &["10.0.0.1", "10.0.1.1", "10.0.2.1"]),
            Desired::Install(Arc::from([hop("10.0.0.1", 2), hop("10.0.0.1", 3)])),
            "sorted, the shared kernel hop once, the unreachable left out"
        );
    }

    #[test]
    fn local_wins_over_unreachable_but_not_over_reachable() {
        let k = known();
        assert_eq!(decide(&k, &["::1"]), Desired::Local);
        assert_eq!(decide(&k, &["10.0.2.1", "::1"]), Desired::Local);
        assert!(matches!(
            decide(&k, &["10.0.1.1", "::1"]),
            Desired::Install(_)
        ));
    }

    #[test]
    fn unresolved_says_why_for_each_next_hop() {
        let k = known();
        assert_eq!(
            decide(&k, &["10.0.2.1"]),
            Desired::Unresolved("10.0.2.1: no route".into())
        );
        assert_eq!(
            decide(&k, &["10.0.2.1", "10.0.3.1"]),
            Desired::Unresolved("10.0.2.1: no route; 10.0.3.1: not resolved yet".into())
        );
    }

    fn scoped(address: &str, link_local: Option<&str>, ifindex: u32) -> BgpNextHop {
        BgpNextHop {
            link_local: link_local.map(|l| l.parse().unwrap()),
            interface: std::num::NonZeroU32::new(ifindex),
            ..BgpNextHop::new(address.parse().unwrap())
        }
    }

    #[test]
    fn link_local_only_next_hops_go_on_their_interface() {
        assert_eq!(
            scoped_hop(&scoped("fe80::2", None, 7), None),
            Some(hop("fe80::2", 7))
        );
        // Without an interface there is nothing to install it on.
        assert_eq!(scoped_hop(&scoped("fe80::2", None, 0), None), None);
    }

    #[test]
    fn global_plus_link_local_uses_the_link_local_only_when_the_global_is_on_link() {
        let nh = scoped("fd00::2", Some("fe80::2"), 7);
        // fd00::2 on-link on interface 7: via fe80::2 there.
        let on_link = reachable(&[hop("fd00::2", 7)]);
        assert_eq!(scoped_hop(&nh, Some(&on_link)), Some(hop("fe80::2", 7)));
        // Through a router, or on another interface: the global as resolved.
        let routed = reachable(&[hop("fd00::9", 7)]);
        assert_eq!(scoped_hop(&nh, Some(&routed)), None);
        let elsewhere = reachable(&[hop("fd00::2", 8)]);
        assert_eq!(scoped_hop(&nh, Some(&elsewhere)), None);
        assert_eq!(
            scoped_hop(&nh, Some(&Resolved::unreachable("no route"))),
            None
        );
        assert_eq!(scoped_hop(&nh, None), None);
    }

    #[test]
    fn a_link_local_hop_dies_with_the_sessions_of_every_next_hop_through_it() {
        let (events, _rx) = tokio::sync::mpsc::unbounded_channel();
        let links = [(
            7,
            Link {
                name: "eth0".into(),
                up: true,
            },
        )]
        .into_iter()
        .collect();
        let mut r = Resolver::new(links, events);
        let global: IpAddr = "fd00::2".parse().unwrap();
        r.nexthops.insert(
            global,
            NextHop {
                res: reachable(&[hop("fd00::2", 7)]),
                watched: false,
            },
        );
        let ll = hop("fe80::2", 7);
        // The peer's global next hop, with its link-local (RFC 2545).
        let from_global = scoped("fd00::2", Some("fe80::2"), 7);
        assert_eq!(
            r.desired(std::slice::from_ref(&from_global)),
            Desired::Install(Arc::from([ll]))
        );
        assert!(r.alive_hops().contains(&ll));
        r.set_down(global);
        assert!(
            !r.alive_hops().contains(&ll),
            "the link-local hop forwards for the global next hop whose session went down"
        );
        r.revive(&global);
        assert!(r.alive_hops().contains(&ll));

        // Also named on its own (a link-local-only next hop): it lives
        // while either is up.
        let alone: IpAddr = "fe80::2".parse().unwrap();
        r.desired(&[scoped("fe80::2", None, 7)]);
        r.set_down(global);
        assert!(r.alive_hops().contains(&ll));
        r.set_down(alone);
        assert!(!r.alive_hops().contains(&ll));
    }

    #[test]
    fn links_that_went_down_or_away_are_found() {
        let link = |up| Link {
            name: "x".into(),
            up,
        };
        let old: HashMap<u32, Link> = [
            (1, link(true)),
            (2, link(true)),
            (3, link(false)),
            (4, link(true)),
        ]
        .into_iter()
        .collect();
        let fresh: HashMap<u32, Link> = [
            (1, link(true)),
            (2, link(false)),
            (3, link(true)),
            (5, link(true)),
        ]
        .into_iter()
        .collect();
        let mut down = links_gone_down(&old, &fresh);
        down.sort();
        assert_eq!(down, vec![2, 4]);
    }
}
