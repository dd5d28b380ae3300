//! The route reflector under test, configured as its experts would for a
//! cluster fabric (bench/README.md, "The cluster-scale run"): every node
//! an iBGP route-reflector client, accepted from the link's prefix without
//! a line per node where the daemon can, both families, best paths into
//! the kernel (the reflector is a ToR / gateway node that forwards too).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use labkit::bird::{Bird, BirdSpec};
use labkit::frr::{self, Frr, FrrSpec};
use labkit::kroute::{Kroute, KrouteSpec};
use labkit::Netns;

use super::fleet::{Node, ASN, LINK_V4, REFLECTOR_V4};
use crate::receivers::Kind;

/// kroute: one dynamic-neighbor range over the link, its template an
/// iBGP route-reflector client exchanging everything.
pub fn kroute_config(socket: &Path, n: usize) -> String {
    format!(
        "router:
  asn: {ASN}
  routerId: {REFLECTOR_V4}
  listen:
    address: 0.0.0.0
    ranges:
      - {{ prefix: {LINK_V4}, template: nodes, limit: {limit} }}
peerTemplates:
  - {{ name: nodes, asn: {ASN}, routeReflectorClient: true, import: all, export: all }}
api:
  socket: {socket}
kernel:
  install: true
",
        limit = n.max(1),
        socket = socket.display()
    )
}

/// BIRD 2: one `template bgp` (`rr client`; `direct`: the nodes are on
/// the link, so their next hops resolve directly instead of through an
/// IGP table, which iBGP would otherwise expect) and a protocol per node from it, as
/// generated configs for BIRD do (Calico's, for one); kernel protocols
/// export every best path.
pub fn bird_config(log: &Path, nodes: &[Node]) -> String {
    let mut c = format!(
        "log \"{}\" {{ warning, error, fatal }};
router id {REFLECTOR_V4};
protocol device {{ }}
protocol kernel kernel4 {{ ipv4 {{ import none; export all; }}; }}
protocol kernel kernel6 {{ ipv6 {{ import none; export all; }}; }}
template bgp nodes {{
  local {REFLECTOR_V4} as {ASN};
  rr client;
  passive on;
  direct;
  ipv4 {{ import all; export all; }};
  ipv6 {{ import all; export all; }};
}}
",
        log.display()
    );
    for (i, node) in nodes.iter().enumerate() {
        let _ = writeln!(
            c,
            "protocol bgp n{i} from nodes {{ neighbor {} as {ASN}; }}",
            node.v4
        );
    }
    c
}

/// FRR: a peer-group of route-reflector clients filled by `bgp listen
/// range` (dynamic neighbors, one update group: FRR encodes once for the
/// group), `bgp listen limit` raised from its default of 100.
pub fn frr_config(hostname: &str, n: usize) -> String {
    format!(
        "frr defaults traditional
hostname {hostname}
!
router bgp {ASN}
 bgp router-id {REFLECTOR_V4}
 bgp listen limit {limit}
 neighbor nodes peer-group
 neighbor nodes remote-as internal
 bgp listen range {LINK_V4} peer-group nodes
 !
 address-family ipv4 unicast
  neighbor nodes route-reflector-client
 exit-address-family
 !
 address-family ipv6 unicast
  neighbor nodes activate
  neighbor nodes route-reflector-client
 exit-address-family
!
",
        limit = n.clamp(1, 5000)
    )
}

pub enum Reflector {
    Kroute(Kroute),
    Bird(Bird),
    Frr(Frr),
}

impl Reflector {
    pub fn start(
        kind: Kind,
        ns: &Netns,
        dir: &Path,
        kroute_bin: &Path,
        nodes: &[Node],
    ) -> labkit::Result<Reflector> {
        let r = match kind {
            Kind::Kroute => {
                let socket = dir.join("kroute.sock");
                let spec = KrouteSpec {
                    own_process_group: true,
                    ..KrouteSpec::in_dir(kroute_bin, dir, kroute_config(&socket, nodes.len()))
                };
                Reflector::Kroute(Kroute::start(ns, spec)?)
            }
            Kind::Bird => {
                let spec = BirdSpec {
                    own_process_group: true,
                    ..BirdSpec::new(dir, bird_config(&dir.join("bird.messages.log"), nodes))
                };
                Reflector::Bird(Bird::start(ns, &spec)?)
            }
            Kind::Frr => {
                let name = ns.name();
                crate::netns::register_dir(frr::run_dir(name));
                let spec = FrrSpec {
                    zebra_args: vec!["-s".into(), "90000000".into()],
                    own_process_group: true,
                    ..FrrSpec::new(name, frr_config(name, nodes.len()))
                };
                Reflector::Frr(Frr::start(ns, &spec)?)
            }
            other => {
                return Err(labkit::Error::Other(format!(
                    "{other} is not a route reflector here (kroute, bird, frr)"
                )))
            }
        };
        crate::netns::register_pids(&r.pids());
        Ok(r)
    }

    pub fn pids(&self) -> Vec<u32> {
        match self {
            Reflector::Kroute(k) => k.pid().into_iter().collect(),
            Reflector::Bird(b) => vec![b.pid()],
            Reflector::Frr(f) => f.pids(),
        }
    }

    pub fn check_alive(&mut self) -> Result<(), String> {
        match self {
            Reflector::Kroute(k) => k.check_alive().map_err(|e| e.to_string()),
            Reflector::Bird(b) => b.process().check_alive().map_err(|e| e.to_string()),
            Reflector::Frr(f) => f.check_alive().map_err(|e| e.to_string()),
        }
    }

    pub fn stop(&mut self) {
        let grace = Duration::from_secs(10);
        let r = match self {
            Reflector::Kroute(k) => k.stop(grace).map(drop),
            Reflector::Bird(b) => b.stop(grace),
            Reflector::Frr(f) => f.stop(grace),
        };
        if let Err(e) = r {
            eprintln!("kroute-bench: stopping the reflector: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_contains_all(text: &str, parts: &[&str]) {
        for part in parts {
            assert!(text.contains(part), "{part:?} missing in\n{text}");
        }
    }

    #[test]
    fn kroute_config_parses_with_the_range_and_template() {
        let text = kroute_config(Path::new("/tmp/k.sock"), 1000);
        let c = kroute::config::parse(&text, "reflect.yaml").expect("kroute reads it");
        let range = &c.router.listen.as_ref().expect("listen").ranges[0];
        assert_eq!(range.limit, 1000);
        assert!(range.peer.route_reflector_client);
    }

    #[test]
    fn bird_and_frr_configs_name_every_node_or_the_range() {
        let nodes: Vec<Node> = (0..3).map(Node::new).collect();
        let b = bird_config(Path::new("/tmp/b.log"), &nodes);
        assert_contains_all(
            &b,
            &[
                "  rr client;\n",
                "protocol bgp n2 from nodes { neighbor 10.200.0.4 as 65001; }",
            ],
        );
        if labkit::cmd::find_program("bird").is_some() {
            let dir = std::env::temp_dir().join(format!("kb-reflect-bird-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let parsed = labkit::bird::write_config(&dir.join("bird.conf"), &b);
            let _ = std::fs::remove_dir_all(&dir);
            parsed.unwrap();
        }
        let f = frr_config("kb-1-r", 1000);
        assert_contains_all(
            &f,
            &[
                " bgp listen limit 1000\n",
                " bgp listen range 10.200.0.0/16 peer-group nodes\n",
                "  neighbor nodes route-reflector-client\n",
            ],
        );
    }
}
