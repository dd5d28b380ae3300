//! Route leaking between routing domains: the paths one domain's RIB
//! takes from another's Loc-RIB, by an explicit import policy.
//!
//! Each source domain is a pseudo-peer of the receiving RIB, with an id in
//! [`LEAK_PEERS`] and no session: its paths are the source's best paths as
//! the source holds them (post-import attributes, original next hop),
//! judged by the leak's policy like a peer's import, decided with the RIB's
//! own paths and installed with their original next hop. Towards the RIB's
//! peers a leaked path is sent like a locally originated one (next hop
//! self, no reflection attributes), since its next hop is in the source
//! domain's context, not theirs. The daemon feeds the pseudo-peer from the
//! source's [`Rib::take_leak_changes`] and [`Rib::leakable`]; a leaked path
//! is never leakable itself, so no route can travel in a circle between
//! domains.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use wire::{Family, Prefix};

use crate::attrs::{is_leak_peer, Attrs};
use crate::ctx::Ctx;
use crate::import::import_path;
use crate::policy::PolicyChain;
use crate::{Outputs, PeerConfig, PeerId, Rib};

/// The pseudo-peer's name, shown as a path's source in `explain` and `show
/// routes`.
pub fn leak_source_name(domain: &str) -> String {
    format!("leaked from domain {domain}")
}

impl Rib {
    /// Paths from domain `domain` arrive as pseudo-peer `id` (in
    /// [`LEAK_PEERS`]) through `policy`. Again with another policy: the
    /// leaked paths are judged again (no change to what the source sent).
    pub fn set_leak_source(
        &mut self,
        id: PeerId,
        domain: &str,
        policy: PolicyChain,
        out: &mut Outputs,
    ) {
        debug_assert!(is_leak_peer(id));
        let cfg = PeerConfig {
            name: leak_source_name(domain),
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            // As iBGP: LOCAL_PREF is kept and there is no RFC 8212 default
            // (the policy is required by the config).
            remote_asn: self.cfg.local_asn,
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            // The source domain accepted the path already.
            allow_as_in: u8::MAX,
            next_hop_self: false,
            route_reflector_client: false,
            enforce_first_as: false,
            import: policy,
            export: PolicyChain::None,
        };
        match self.peers.get(&id) {
            Some(p) if p.cfg == cfg => {}
            Some(_) => self.set_peer_config(id, cfg, out),
            None => self.add_peer(id, cfg),
        }
    }

    /// The leak source `id` is gone: its paths are withdrawn.
    pub fn remove_leak_source(&mut self, id: PeerId, out: &mut Outputs) {
        if self.peers.contains_key(&id) {
            self.remove_peer(id, out);
        }
    }

    /// The leak sources configured, by id.
    pub fn leak_sources(&self) -> Vec<PeerId> {
        self.peers
            .keys()
            .copied()
            .filter(|id| is_leak_peer(*id))
            .collect()
    }

    /// New states of source `id`'s paths: its best path's attributes
    /// (from [`Rib::leakable`] of the source), or None: no path.
    pub fn leak_in(
        &mut self,
        id: PeerId,
        changes: Vec<(Prefix, Option<Attrs>)>,
        out: &mut Outputs,
    ) {
        if !self.peers.contains_key(&id) {
            return;
        }
        let mut touched = Vec::with_capacity(changes.len());
        for (prefix, attrs) in changes {
            match attrs {
                None => {
                    if self
                        .table
                        .get(&prefix)
                        .and_then(|d| d.path_of(id))
                        .is_some()
                    {
                        self.withdraw_path(id, prefix, out);
                        touched.push(prefix);
                    }
                }
                Some(a) => {
                    let pre = self.ints.attrs.intern(a);
                    let have = self.table.get(&prefix).and_then(|d| d.path_of(id));
                    if have.is_some_and(|p| Arc::ptr_eq(&p.pre, &pre)) {
                        continue;
                    }
                    let ctx = Ctx {
                        cfg: &self.cfg,
                        policies: &self.policies,
                        peers: &self.peers,
                        nexthops: &self.nexthops,
                    };
                    let imp = import_path(&ctx, &mut self.ints, id, &pre, &prefix);
                    self.insert_path(id, prefix, imp.info, out);
                    touched.push(prefix);
                }
            }
        }
        self.process_some(touched, out);
    }

    /// Leak source `id`'s paths, for the prefixes it holds (a full resync
    /// compares them with the source's).
    pub fn leaked_prefixes(&self, id: PeerId) -> Vec<Prefix> {
        self.table
            .iter()
            .filter(|(_, d)| d.path_of(id).is_some())
            .map(|(p, _)| p)
            .collect()
    }

    /// Turns on (or off) the record of the prefixes whose paths changed,
    /// for [`Rib::take_leak_changes`]: on while another domain leaks from
    /// this one.
    pub fn set_leak_log(&mut self, on: bool) {
        match (on, self.leak_log.is_some()) {
            (true, false) => self.leak_log = Some(HashSet::new()),
            (false, true) => self.leak_log = None,
            _ => {}
        }
    }

    /// The prefixes decided again since the last call (their best path
    /// may have changed).
    pub fn take_leak_changes(&mut self) -> Vec<Prefix> {
        match &mut self.leak_log {
            Some(log) => log.drain().collect(),
            None => Vec::new(),
        }
    }

    /// What another domain may take of `prefix`: the best path's
    /// attributes after import, with its next hop as installed here. Not
    /// our own originations (each domain originates its own,
    /// `advertise[].domain`) and never a path leaked into this RIB.
    pub fn leakable(&self, prefix: &Prefix) -> Option<Attrs> {
        let best = self.table.get(prefix)?.best()?;
        if best.is_local() || is_leak_peer(best.peer) || !self.ctx().eligible(best) {
            return None;
        }
        Some((*best.post).clone())
    }

    /// Every prefix with a leakable best path ([`Rib::leakable`]).
    pub fn leakable_all(&self) -> Vec<(Prefix, Attrs)> {
        self.table
            .keys()
            .filter_map(|p| self.leakable(&p).map(|a| (p, a)))
            .collect()
    }
}
