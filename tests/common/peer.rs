//! What every peer daemon driver (BIRD, FRR, GoBGP) offers the scenarios.

use labkit::Netns;

/// One BGP neighbor of a peer daemon.
#[derive(Clone, Debug)]
pub struct PeerNeighbor {
    /// The neighbor's (remote) address.
    pub address: String,
    /// This daemon's address on the link to the neighbor (session source).
    pub local_address: String,
    pub asn: u32,
    /// "ipv4-unicast" and/or "ipv6-unicast".
    pub families: Vec<&'static str>,
    /// IPv4 next hop to announce when ipv4-unicast runs over an IPv6 session.
    pub next_hop_ipv4: Option<String>,
    /// IPv6 next hop to announce when ipv6-unicast runs over an IPv4
    /// session (BIRD only: `next hop address`).
    pub next_hop_ipv6: Option<String>,
}

impl PeerNeighbor {
    pub fn new(address: &str, local_address: &str, asn: u32, families: &[&'static str]) -> Self {
        PeerNeighbor {
            address: address.into(),
            local_address: local_address.into(),
            asn,
            families: families.to_vec(),
            next_hop_ipv4: None,
            next_hop_ipv6: None,
        }
    }
}

/// What a peer daemon is configured with at start.
#[derive(Clone, Debug)]
pub struct PeerSpec {
    pub asn: u32,
    pub router_id: String,
    pub neighbors: Vec<PeerNeighbor>,
    /// Install best BGP paths in the namespace's kernel (BIRD: kernel
    /// protocol, proto `bird`; FRR: zebra always does, proto `bgp`; GoBGP: never).
    pub install_kernel: bool,
}

/// A route in a peer daemon's RIB that it learned over BGP.
pub use labkit::rib::BgpPath as PeerRoute;

/// A real BGP daemon in a namespace, driven by the tests.
pub trait PeerDaemon: Sized {
    /// "bird", "frr", "gobgp": used in names.
    const KIND: &'static str;
    /// Does the daemon install received routes in its namespace kernel?
    const INSTALLS_KERNEL: bool;
    /// Can the driver make the daemon announce an IPv4 next hop for
    /// ipv4-unicast over an IPv6 session (`PeerNeighbor::next_hop_ipv4`)?
    const IPV4_NEXT_HOP_OVER_IPV6: bool;

    fn start(ns: &Netns, spec: PeerSpec) -> Self;
    /// Originate `prefix` (IPv4 or IPv6).
    fn announce(&mut self, prefix: &str) {
        self.announce_prepend(prefix, &[]);
    }
    /// Originate `prefix` with `prepend` in its AS_PATH after the daemon's own
    /// ASN (the path the neighbor sees is `OWN prepend...`).
    fn announce_prepend(&mut self, prefix: &str, prepend: &[u32]);
    fn withdraw(&mut self, prefix: &str);
    /// Routes learned from BGP neighbors (both families, all paths).
    fn rib(&self) -> Vec<PeerRoute>;
    /// Ok when the session with `neighbor` is Established, else Err(state).
    fn session_state(&self, neighbor: &str) -> Result<(), String>;
    /// Kill the daemon hard (SIGKILL), as a crash looks to its neighbors.
    fn kill(&mut self);

    /// Paths for exactly `prefix`.
    fn routes_for(&self, prefix: &str) -> Vec<PeerRoute> {
        self.rib()
            .into_iter()
            .filter(|r| r.prefix == prefix)
            .collect()
    }
}

/// Short summary of a RIB, for failure messages.
pub fn describe_rib(rib: &[PeerRoute]) -> String {
    labkit::rib::describe(rib)
}
