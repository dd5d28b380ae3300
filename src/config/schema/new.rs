//! Config values built in code (by `kroute lab`, the tests and the bench),
//! with the same defaults as a file that leaves the keys out.

use std::net::{IpAddr, Ipv4Addr};

use rib::policy::PolicyChain;

use super::{Api, Config, Kernel, Peer, Router};

impl Config {
    /// Only `router`: API socket and kernel as their defaults, no peers,
    /// nothing advertised, no policies.
    pub fn new(router: Router) -> Config {
        Config {
            router,
            api: Api::default(),
            kernel: Kernel::default(),
            peers: Vec::new(),
            advertise: Vec::new(),
            policies: Vec::new(),
            log: super::Log::default(),
            bmp: Vec::new(),
            domains: Vec::new(),
        }
    }
}

impl Router {
    /// `router: { asn, routerId }` and nothing else.
    pub fn new(asn: u32, router_id: Ipv4Addr) -> Router {
        Router {
            asn,
            router_id,
            listen: super::default_listen(),
            cluster_id: None,
            max_paths: super::default_max_paths(),
            multipath_relax: false,
            always_compare_med: false,
            hold_time: super::default_hold_time(),
            connect_retry: super::default_connect_retry(),
            graceful_restart: super::GracefulRestart::default(),
        }
    }
}

impl Peer {
    /// A peer given only `name`, `address` and `asn`.
    pub fn new(name: &str, address: IpAddr, asn: u32) -> Peer {
        Peer {
            name: name.to_string(),
            address,
            interface: None,
            port: super::default_port(),
            asn: super::PeerAsn::Number(asn),
            local_address: None,
            passive: false,
            multihop: None,
            families: super::default_families(),
            hold_time: None,
            allow_as_in: 0,
            next_hop_self: false,
            route_reflector_client: false,
            enforce_first_as: true,
            import: PolicyChain::Unset,
            export: PolicyChain::Unset,
            password: None,
            password_file: None,
            password_secret_ref: None,
            local_users: super::default_local_users(),
            ttl_security: None,
            max_prefixes: None,
            send_hold_time: None,
            next_hop_ipv4: None,
            next_hop_ipv6: None,
            extended_next_hop: None,
            bfd: None,
            graceful_restart: None,
            domain: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_values_have_the_file_defaults() {
        let text = "router: { asn: 65001, routerId: 10.0.0.1 }\n\
                    peers:\n  - { name: up, address: \"fd00::2\", asn: 65002 }\n";
        let parsed = crate::config::parse(text, "t.yaml").unwrap();
        let mut built = Config::new(Router::new(65001, Ipv4Addr::new(10, 0, 0, 1)));
        built
            .peers
            .push(Peer::new("up", "fd00::2".parse().unwrap(), 65002));
        assert_eq!(parsed, built);
    }
}
