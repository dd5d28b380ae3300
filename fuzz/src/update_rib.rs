//! Target `update_rib`: UPDATEs from two peers decoded and fed into a
//! [`Rib`], which decides and exports; what it sends is encoded, decoded
//! and applied to a model of each peer, and what it asks of the FIB to a
//! model of the kernel.
//!
//! Input: one octet of settings, then events. Settings bits: 0/1 peer 1/2
//! negotiated 4-octet ASNs (RFC 6793); 2 peer 2 is iBGP (else eBGP, AS
//! 65003); 3 RFC 8950 extended next hop for IPv4; 4 ECMP (4 paths, else
//! 1); 5 multipath across ASes; 6 at the end peer 2 goes down instead of
//! withdrawing. Each event is one control octet: bit 0 chooses the peer,
//! bits 1-3 the event: 0-4 the next BGP message of that peer's stream (the
//! bytes after the control octet, framed by the message's own header;
//! an error resets the session), 5 a next-hop state change (two more
//! octets: which watched next hop, which state), 6 the session goes down,
//! or up again, 7 a ROUTE-REFRESH (bit 4: family). While a peer is down
//! its messages are read and dropped.
//!
//! Properties, after every event: no panic; every UPDATE sent goes to a
//! peer whose session is up, encodes within 4096 octets and survives the
//! round trip ([`roundtrip::check`]); every path in the Loc-RIB is an
//! accepted path of the Adj-RIB-In and every prefix the FIB was given has
//! a best path; the per-peer counters match the tables; the Adj-RIB-Out is
//! what the peer was sent (unless an announcement could not be encoded,
//! `update_attributes_fit`). At the end, withdrawing everything (or the
//! session going down) leaves every table, the FIB and each peer's view
//! empty, and no interned attributes behind.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use rib::policy::PolicyChain;
use rib::{
    NexthopState, Outputs, PeerConfig, PeerId, Rib, RibConfig, RouteQuery, SessionInfo, Table,
};
use wire::codec::HEADER_LEN;
use wire::{
    decode_message, encode_message, update_attributes_fit, Family, Message, MpUnreach, Prefix,
    SessionCodec, Update,
};

use crate::roundtrip;

const LOCAL_ASN: u32 = 65000;
/// Peer 1 is AS 65002, the AS of the recorded BIRD, FRR and GoBGP
/// sessions the corpus is seeded from.
const PEER_ASN: [u32; 2] = [65002, 65003];
const PEERS: [PeerId; 2] = [1, 2];

fn name(id: PeerId) -> String {
    format!("p{id}")
}

struct Harness {
    rib: Rib,
    codecs: [SessionCodec; 2],
    sessions: [SessionInfo; 2],
    up: [bool; 2],
    /// The FIB as the RIB asked for it.
    fib: BTreeMap<Prefix, usize>,
    /// What each peer holds from us: the prefixes announced and not withdrawn.
    sent: [BTreeSet<Prefix>; 2],
    /// Next hops the RIB watches now, in the order it asked.
    watched: Vec<IpAddr>,
}

fn idx(id: PeerId) -> usize {
    PEERS.iter().position(|p| *p == id).expect("known peer")
}

impl Harness {
    fn new(settings: u8) -> Harness {
        let bit = |n: u8| settings & (1 << n) != 0;
        let mut rib = Rib::new(RibConfig {
            local_asn: LOCAL_ASN,
            router_id: "10.0.0.1".parse().unwrap(),
            cluster_id: None,
            max_paths: if bit(4) { 4 } else { 1 },
            multipath_relax: bit(5),
            always_compare_med: bit(6),
            install: true,
            policies: Vec::new(),
        });
        let families = vec![Family::Ipv4Unicast, Family::Ipv6Unicast];
        for (i, id) in PEERS.iter().enumerate() {
            let ibgp = i == 1 && bit(2);
            rib.add_peer(
                *id,
                PeerConfig {
                    name: name(*id),
                    address: format!("192.0.2.{id}").parse().unwrap(),
                    remote_asn: if ibgp { LOCAL_ASN } else { PEER_ASN[i] },
                    families: families.clone(),
                    allow_as_in: 0,
                    enforce_first_as: true,
                    next_hop_self: false,
                    route_reflector_client: false,
                    import: PolicyChain::All,
                    export: PolicyChain::All,
                },
            );
        }
        let session = |id: PeerId| SessionInfo {
            remote_router_id: format!("192.0.2.{id}").parse().unwrap(),
            families: families.clone(),
            local_next_hop_v4: Some("10.0.0.1".parse().unwrap()),
            local_next_hop_v6: Some("fd00::1".parse().unwrap()),
            extended_next_hop_v4: bit(3),
            local_link_local: None,
            interface: None,
        };
        let codec = |n: u8| SessionCodec {
            four_octet_as: bit(n),
        };
        let mut h = Harness {
            rib,
            codecs: [codec(0), codec(1)],
            sessions: [session(1), session(2)],
            up: [false; 2],
            fib: BTreeMap::new(),
            sent: Default::default(),
            watched: Vec::new(),
        };
        for id in PEERS {
            h.peer_up(id);
        }
        h
    }

    fn peer_up(&mut self, id: PeerId) {
        let mut out = Outputs::default();
        self.up[idx(id)] = true;
        self.rib
            .peer_up(id, self.sessions[idx(id)].clone(), &mut out);
        self.apply(out);
    }

    fn peer_down(&mut self, id: PeerId) {
        let mut out = Outputs::default();
        self.rib.peer_down(id, &mut out);
        // The session is gone, and with it everything the peer had from us.
        self.up[idx(id)] = false;
        self.sent[idx(id)].clear();
        self.apply(out);
    }

    fn receive(&mut self, id: PeerId, u: Update) {
        let mut out = Outputs::default();
        self.rib.receive(id, u, &mut out);
        self.apply(out);
    }

    /// Plays the daemon's part for `out`: next hops to watch are resolved
    /// (reachable), FIB changes applied, UPDATEs sent.
    fn apply(&mut self, out: Outputs) {
        let mut pending = vec![out];
        while let Some(out) = pending.pop() {
            for c in &out.fib {
                if c.next_hops.is_empty() {
                    self.fib.remove(&c.prefix);
                } else {
                    self.fib.insert(c.prefix, c.next_hops.len());
                }
            }
            for (id, u) in &out.updates {
                self.send(*id, u);
            }
            // A next hop the last path using it left is unwatched; a new
            // user watches it again (the two lists never share an address).
            for nh in &out.unwatch_nexthops {
                assert!(self.watched.contains(nh), "{nh} unwatched but not watched");
                assert!(
                    !out.watch_nexthops.contains(nh),
                    "{nh} watched and unwatched at once"
                );
                self.watched.retain(|w| w != nh);
            }
            for nh in out.watch_nexthops {
                assert!(!self.watched.contains(&nh), "{nh} asked for twice");
                self.watched.push(nh);
                let mut more = Outputs::default();
                self.rib
                    .set_nexthop(nh, NexthopState::Reachable { metric: 0 }, &mut more);
                pending.push(more);
            }
        }
    }

    fn send(&mut self, id: PeerId, u: &Update) {
        let i = idx(id);
        assert!(self.up[i], "UPDATE for {} whose session is down", name(id));
        assert!(u.treat_as_withdraw.is_none());
        let codec = self.codecs[i];
        // Issue 12: the RIB holds back (and explains) a route whose
        // attributes cannot fit one UPDATE; it never hands one over.
        assert!(
            update_attributes_fit(u, &codec),
            "an UPDATE to {} whose attributes cannot fit 4096 octets",
            name(id)
        );
        let msg = Message::Update(u.clone());
        roundtrip::check(&msg, &codec);
        for m in roundtrip::reencode(&msg, &codec) {
            let Message::Update(b) = m else {
                unreachable!()
            };
            for p in b.withdrawn.iter().map(|n| Prefix::V4(*n)) {
                self.sent[i].remove(&p);
            }
            for p in b.mp_unreach.iter().flat_map(|r| r.withdrawn.iter()) {
                self.sent[i].remove(p);
            }
            self.sent[i].extend(b.nlri.iter().map(|n| Prefix::V4(*n)));
            self.sent[i].extend(b.mp_reach.iter().flat_map(|r| r.nlri.iter().copied()));
        }
    }

    fn routes(&self, table: Table, peer: Option<PeerId>) -> Vec<rib::RouteView> {
        self.rib.routes(&RouteQuery {
            prefix: None,
            peer,
            table,
        })
    }

    fn check(&self) {
        let received: BTreeSet<(Prefix, String, bool)> = self
            .routes(Table::Received, None)
            .into_iter()
            .map(|r| (r.prefix, r.peer, r.accepted))
            .collect();
        let loc = self.routes(Table::Loc, None);
        let mut best = BTreeSet::new();
        for r in &loc {
            assert!(r.accepted, "rejected path in the Loc-RIB: {r:?}");
            assert!(
                received.contains(&(r.prefix, r.peer.clone(), true)),
                "Loc-RIB path not in the Adj-RIB-In: {r:?}"
            );
            if r.best {
                assert!(best.insert(r.prefix), "two best paths for {}", r.prefix);
            }
        }
        for p in self.fib.keys() {
            assert!(best.contains(p), "FIB route {p} without a best path");
        }
        for id in PEERS {
            let i = idx(id);
            let counters = self.rib.peer_counters(id);
            let mine = received.iter().filter(|(_, peer, _)| *peer == name(id));
            assert_eq!(counters.received, mine.clone().count(), "received count");
            assert_eq!(
                counters.accepted,
                mine.filter(|(_, _, accepted)| *accepted).count(),
                "accepted count"
            );
            let advertised: BTreeSet<Prefix> = self
                .routes(Table::Advertised, Some(id))
                .into_iter()
                .map(|r| r.prefix)
                .collect();
            assert_eq!(counters.advertised, advertised.len(), "advertised count");
            if !self.up[i] {
                assert!(
                    advertised.is_empty(),
                    "{} is down: {advertised:?}",
                    name(id)
                );
                assert_eq!(counters.received, 0, "{} is down", name(id));
            }
            assert_eq!(advertised, self.sent[i], "Adj-RIB-Out is not what was sent");
        }
    }

    /// Every peer withdraws all it sent (one UPDATE, through the encoder,
    /// which splits it); peer 2 may go down first instead.
    fn withdraw_everything(&mut self, peer2_goes_down: bool) {
        if peer2_goes_down && self.up[1] {
            self.peer_down(2);
        }
        for id in PEERS {
            if !self.up[idx(id)] {
                continue;
            }
            let mine = self.routes(Table::Received, Some(id));
            let mut u = Update::default();
            let mut v6 = Vec::new();
            for r in mine {
                match r.prefix {
                    Prefix::V4(n) => u.withdrawn.push(n),
                    p => v6.push(p),
                }
            }
            if !v6.is_empty() {
                u.mp_unreach = Some(MpUnreach {
                    family: Family::Ipv6Unicast,
                    withdrawn: v6,
                });
            }
            let codec = self.codecs[idx(id)];
            let mut bytes = Vec::new();
            encode_message(&Message::Update(u), &codec, &mut bytes);
            let mut rest = &bytes[..];
            while let Ok(Some((Message::Update(w), used))) = decode_message(rest, &codec) {
                self.receive(id, w);
                rest = &rest[used..];
            }
            assert!(rest.is_empty(), "withdrawal did not decode");
        }
        self.check();
        for (table, what) in [
            (Table::Loc, "Loc-RIB"),
            (Table::Received, "Adj-RIB-In"),
            (Table::Advertised, "Adj-RIB-Out"),
        ] {
            let left = self.routes(table, None);
            assert!(left.is_empty(), "{what} not empty: {left:?}");
        }
        assert!(self.fib.is_empty(), "FIB not empty: {:?}", self.fib);
        for (i, s) in self.sent.iter().enumerate() {
            assert!(s.is_empty(), "{} still has {s:?}", name(PEERS[i]));
        }
        self.rib.compact();
        assert_eq!(self.rib.interned(), (0, 0), "interned values left behind");
    }
}

pub fn run(data: &[u8]) {
    let Some((&settings, mut rest)) = data.split_first() else {
        return;
    };
    let mut h = Harness::new(settings);
    while let Some((&ctl, tail)) = rest.split_first() {
        rest = tail;
        let id = PEERS[usize::from(ctl & 1)];
        let i = idx(id);
        match (ctl >> 1) & 7 {
            0..=4 => {
                let codec = h.codecs[i];
                match decode_message(rest, &codec) {
                    Ok(Some((msg, used))) => {
                        rest = &rest[used..];
                        if !h.up[i] {
                            continue;
                        }
                        match msg {
                            Message::Update(u) => h.receive(id, u),
                            Message::RouteRefresh(rr) => {
                                let mut out = Outputs::default();
                                h.rib.route_refresh(id, rr.family, &mut out);
                                h.apply(out);
                            }
                            _ => {}
                        }
                    }
                    Ok(None) => break,
                    // The session resets (RFC 4271 §6); the stream goes on
                    // after the bad message if its length can be trusted.
                    Err(_) => {
                        if h.up[i] {
                            h.peer_down(id);
                            h.peer_up(id);
                        }
                        let len = rest
                            .get(16..18)
                            .map_or(0, |l| usize::from(u16::from_be_bytes([l[0], l[1]])));
                        if len < HEADER_LEN || len > rest.len() {
                            break;
                        }
                        rest = &rest[len..];
                    }
                }
            }
            5 => {
                let [which, state, tail @ ..] = rest else {
                    break;
                };
                rest = tail;
                if h.watched.is_empty() {
                    continue;
                }
                let nh = h.watched[usize::from(*which) % h.watched.len()];
                let state = match state & 3 {
                    0 => NexthopState::Reachable {
                        metric: u32::from(state >> 2),
                    },
                    1 => NexthopState::Unreachable("fuzz".into()),
                    2 => NexthopState::Local,
                    _ => NexthopState::Reachable { metric: 0 },
                };
                let mut out = Outputs::default();
                h.rib.set_nexthop(nh, state, &mut out);
                h.apply(out);
            }
            // The session goes down, or comes back up.
            6 if h.up[i] => h.peer_down(id),
            6 => h.peer_up(id),
            _ => {
                let family = if ctl & 0x10 != 0 {
                    Family::Ipv6Unicast
                } else {
                    Family::Ipv4Unicast
                };
                if h.up[i] {
                    let mut out = Outputs::default();
                    h.rib.route_refresh(id, family, &mut out);
                    h.apply(out);
                }
            }
        }
        h.check();
    }
    h.withdraw_everything(settings & 0x40 != 0);
}
