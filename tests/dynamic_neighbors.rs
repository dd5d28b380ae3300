//! Dynamic neighbors (`router.listen.ranges`) and `asn: external |
//! internal`, with real FRR and BIRD nodes in namespaces connecting to
//! kroute (active on their side); config errors with file:line:key.
//!
//! Topology: kroute in namespace K; node i (1-based) in its own namespace,
//! linked to K by a veth, K = 10.i.0.1/24, node = 10.i.0.2/24.

mod common;

use std::time::Duration;

use common::bird::Bird;
use common::frr::Frr;
use common::kroute::{self as k, Kroute};
use common::peer::{PeerDaemon, PeerNeighbor, PeerSpec};
use common::{kernel, netns, route_via, veth, wait_until, CONVERGE};
use kroute::config::{parse, Config, ListenRange, Peer, PeerAsn};
use kroute::events::SessionState;
use labkit::Netns;

const KROUTE_ASN: u32 = 65001;
const NODE_ASN: u32 = 65002;
/// What node i announces.
fn node_prefix(i: usize) -> String {
    format!("10.10{i}.0.0/24")
}
/// What kroute announces.
const ADV4: &str = "192.0.2.0/24";

/// kroute's address on link i and node i's.
fn k_addr(i: usize) -> String {
    format!("10.{i}.0.1")
}
fn node_addr(i: usize) -> String {
    format!("10.{i}.0.2")
}

struct Lab {
    // Drop order: daemons, then namespaces.
    kroute: Kroute,
    k_ns: Netns,
    node_ns: Vec<(usize, Netns)>,
}

impl Lab {
    /// kroute with `tweak`ed config and one namespace per link index in
    /// `links` (the nodes are started by the test).
    fn new(tag: &str, links: &[usize], tweak: impl FnOnce(&mut Config)) -> Lab {
        let k_ns = netns(&format!("k{tag}"));
        let mut node_ns = Vec::new();
        for &i in links {
            let ns = netns(&format!("n{i}{tag}"));
            veth(
                &k_ns,
                &ns,
                &[&format!("{}/24", k_addr(i))],
                &[&format!("{}/24", node_addr(i))],
            );
            node_ns.push((i, ns));
        }
        let mut cfg = k::config(KROUTE_ASN, "10.255.0.1");
        cfg.advertise = k::advertise(&[ADV4]);
        tweak(&mut cfg);
        let kroute = Kroute::start(&k_ns, cfg);
        Lab {
            kroute,
            k_ns,
            node_ns,
        }
    }

    fn ns(&self, i: usize) -> &Netns {
        &self.node_ns.iter().find(|(j, _)| *j == i).unwrap().1
    }

    /// A node daemon on link i with AS `asn`, one IPv4 session to kroute,
    /// announcing its prefix.
    fn node<P: PeerDaemon>(&self, i: usize, asn: u32) -> P {
        let mut p = P::start(self.ns(i), Self::spec(i, asn));
        p.announce(&node_prefix(i));
        p
    }

    /// BIRD as [`Lab::node`], with `options` in its protocol for kroute.
    fn bird_with(&self, i: usize, asn: u32, options: &str) -> Bird {
        let k = k_addr(i);
        let mut p = Bird::start_with(self.ns(i), Self::spec(i, asn), &[(&k, options)]);
        p.announce(&node_prefix(i));
        p
    }

    fn spec(i: usize, asn: u32) -> PeerSpec {
        PeerSpec {
            asn,
            router_id: node_addr(i),
            neighbors: vec![PeerNeighbor::new(
                &k_addr(i),
                &node_addr(i),
                KROUTE_ASN,
                &["ipv4-unicast"],
            )],
            install_kernel: true,
        }
    }

    fn wait_kernel_via(&self, i: usize) {
        let prefix = node_prefix(i);
        wait_until(
            CONVERGE,
            &format!("{prefix} via node {i}"),
            || match route_via(&self.k_ns, &prefix) {
                Some(nhs) if nhs.iter().any(|(gw, _)| *gw == node_addr(i)) => Ok(()),
                other => Err(format!("{other:?}; {}", kernel::describe(&self.k_ns))),
            },
        );
    }

    fn log_has(&self, needle: &str) -> Result<(), String> {
        let log = self.kroute.log_tails(5000);
        if log.contains(needle) {
            Ok(())
        } else {
            Err(format!("no {needle:?} in kroute's log"))
        }
    }

    fn metrics(&self) -> serde_json::Value {
        kroute::api::Client::new(self.kroute.socket())
            .request(&kroute::events::Request::Metrics)
            .unwrap_or_else(|e| panic!("metrics: {e}"))
    }
}

/// A range whose dynamic peers are `asn` with import and export all.
fn range(prefix: &str, limit: u32, asn: PeerAsn) -> ListenRange {
    let prefix: ipnet::IpNet = prefix.parse().unwrap();
    ListenRange {
        prefix,
        limit,
        peer: Peer {
            asn,
            passive: true,
            ..k::peer("nodes", &prefix.network().to_string(), 1, &["ipv4-unicast"])
        },
    }
}

fn with_ranges(ranges: Vec<ListenRange>) -> impl FnOnce(&mut Config) {
    move |c| c.router.listen.as_mut().unwrap().ranges = ranges
}

/// The dynamic neighbor at node i's address, if kroute has one.
fn dynamic(lab: &Lab, i: usize) -> Option<kroute::api::NeighborView> {
    lab.kroute.neighbor(&node_addr(i))
}

/// An FRR and a BIRD node connect into one range (`asn: external`): both
/// sessions come up as dynamic neighbors named by their addresses, routes
/// go both ways, `show neighbors` says where they came from and what AS
/// they were learned with; when a node goes, its neighbor and its routes
/// go with it.
#[test]
fn frr_and_bird_nodes_connect_into_a_range() {
    let lab = Lab::new(
        "dyn",
        &[1, 2],
        with_ranges(vec![range("10.0.0.0/8", 10, PeerAsn::External)]),
    );
    let mut frr: Frr = lab.node(1, NODE_ASN);
    let bird: Bird = lab.node(2, NODE_ASN + 1);
    for i in [1, 2] {
        wait_until(
            CONVERGE,
            &format!("dynamic neighbor {i} Established"),
            || lab.kroute.established(&node_addr(i)),
        );
        lab.wait_kernel_via(i);
    }
    wait_until(CONVERGE, "kroute's prefix at FRR and BIRD", || {
        for (who, rib) in [
            ("FRR", frr.routes_for(ADV4)),
            ("BIRD", bird.routes_for(ADV4)),
        ] {
            if rib.is_empty() {
                return Err(format!("{who} has no {ADV4}"));
            }
        }
        Ok(())
    });
    let n = dynamic(&lab, 1).unwrap();
    let d = n.dynamic.as_ref().expect("marked dynamic");
    assert_eq!(
        (d.range.to_string().as_str(), d.template.as_str()),
        ("10.0.0.0/8", "nodes")
    );
    assert_eq!(n.asn_text(), format!("external ({NODE_ASN} learned)"));
    assert_eq!(dynamic(&lab, 2).unwrap().learned_asn, Some(NODE_ASN + 1));
    let table = lab.kroute.cli_ok(&["show", "neighbors"]);
    assert!(
        table.contains("DYNAMIC") && table.contains("10.0.0.0/8 (nodes)"),
        "{table}"
    );
    // The eBGP rules apply with the learned AS: the path kroute sends
    // BIRD starts with kroute's AS and carries FRR's route with FRR's AS.
    wait_until(CONVERGE, "FRR's prefix at BIRD via kroute", || {
        let r = bird.routes_for(&node_prefix(1));
        match r.first() {
            Some(r) if r.as_path == vec![KROUTE_ASN, NODE_ASN] => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });

    frr.kill();
    wait_until(CONVERGE, "FRR's dynamic neighbor to go", || {
        match dynamic(&lab, 1) {
            None => Ok(()),
            Some(n) => Err(format!("still there: {:?}", n.state)),
        }
    });
    kernel::wait_absent(&lab.k_ns, &node_prefix(1));
    lab.kroute.established(&node_addr(2)).unwrap();
    lab.wait_kernel_via(2);
}

/// An address outside every range is closed at accept (never Established,
/// logged); with `limit: 1` the second node in a range is refused, logged
/// with a count and counted in the metrics.
#[test]
fn outside_the_range_and_over_the_limit_are_refused() {
    // Links 1 and 2 are in 10.0.0.0/14, link 5 is not.
    let lab = Lab::new(
        "dynlim",
        &[1, 2, 5],
        with_ranges(vec![range("10.0.0.0/14", 1, PeerAsn::External)]),
    );
    let b1: Bird = lab.node(1, NODE_ASN);
    let b2: Bird = lab.node(2, NODE_ASN);
    let b5: Bird = lab.node(5, NODE_ASN);
    let up = wait_until(CONVERGE, "one of the two nodes in the range up", || {
        [1, 2]
            .into_iter()
            .find(|&i| lab.kroute.established(&node_addr(i)).is_ok())
            .ok_or_else(|| format!("{:?}", lab.kroute.neighbors()))
    });
    let other = 3 - up;
    wait_until(CONVERGE, "the refusals logged", || {
        lab.log_has("dynamic neighbor refused: its listen range is at its limit")?;
        lab.log_has("not a configured peer's address nor in a listen range")
    });
    let m = lab.metrics();
    let r = &m["ranges"][0];
    assert_eq!(
        (r["peers"].as_u64(), r["limit"].as_u64()),
        (Some(1), Some(1)),
        "{m}"
    );
    assert!(r["refused"].as_u64().unwrap() >= 1, "{m}");
    // Both refused nodes keep trying (BIRD retries after 1-2 s) and never
    // get a session; the one inside stays up.
    std::thread::sleep(Duration::from_secs(4));
    let (b_up, b_other) = if up == 1 { (&b1, &b2) } else { (&b2, &b1) };
    b_up.session_state(&k_addr(up)).unwrap();
    assert!(b_other.session_state(&k_addr(other)).is_err());
    assert!(b5.session_state(&k_addr(5)).is_err());
    assert!(dynamic(&lab, other).is_none_or(|n| n.state != SessionState::Established));
    assert!(dynamic(&lab, 5).is_none());
    assert_eq!(
        lab.kroute.neighbors().len(),
        1,
        "{:?}",
        lab.kroute.neighbors()
    );
    assert!(route_via(&lab.k_ns, &node_prefix(5)).is_none());
}

/// Graceful restart helper rules hold for dynamic neighbors: a node that
/// advertised GR (BIRD `graceful restart on`) and is killed keeps its
/// neighbor entry and its routes (stale, still in the kernel) until it is
/// back; it then comes back as the same dynamic neighbor.
#[test]
fn a_graceful_restart_node_keeps_its_routes_while_it_is_away() {
    let lab = Lab::new(
        "dyngr",
        &[1],
        with_ranges(vec![range("10.0.0.0/8", 10, PeerAsn::External)]),
    );
    let gr = "graceful restart on;";
    let mut bird = lab.bird_with(1, NODE_ASN, gr);
    wait_until(CONVERGE, "dynamic neighbor Established", || {
        lab.kroute.established(&node_addr(1))
    });
    lab.wait_kernel_via(1);
    assert!(dynamic(&lab, 1).unwrap().graceful_restart.is_some());
    bird.kill();
    drop(bird);
    wait_until(
        CONVERGE,
        "the session down, its routes stale",
        || match dynamic(&lab, 1) {
            Some(n) if n.state != SessionState::Established => {
                match n.graceful_restart.as_ref().map(|g| g.stale_routes) {
                    Some(1) => Ok(()),
                    other => Err(format!("stale routes {other:?}")),
                }
            }
            other => Err(format!("{other:?}")),
        },
    );
    // Longer than a dynamic neighbor without a session is kept (5 s).
    std::thread::sleep(Duration::from_secs(7));
    assert!(dynamic(&lab, 1).is_some(), "{:?}", lab.kroute.neighbors());
    lab.wait_kernel_via(1);
    let _bird = lab.bird_with(1, NODE_ASN, gr);
    wait_until(
        CONVERGE,
        "the node back as the same dynamic neighbor",
        || lab.kroute.established(&node_addr(1)),
    );
    lab.wait_kernel_via(1);
    assert_eq!(lab.kroute.neighbors().len(), 1);
    // The entry that waited for it (a new one would have no flap).
    assert_eq!(dynamic(&lab, 1).unwrap().flaps, 1);
}

/// TCP-MD5 (RFC 2385) for a range: one key on the listening socket for the
/// whole prefix. A node with the key gets its session; one with another
/// key never does (the kernel drops its segments).
#[test]
fn a_range_password_signs_its_sessions() {
    let lab = Lab::new("dynmd5", &[1, 2], |c| {
        let mut r = range("10.0.0.0/8", 10, PeerAsn::External);
        r.peer.password = Some(kroute::config::Password::new("s3cret"));
        with_ranges(vec![r])(c)
    });
    let good = lab.bird_with(1, NODE_ASN, "password \"s3cret\";");
    let bad = lab.bird_with(2, NODE_ASN, "password \"other\";");
    wait_until(CONVERGE, "the node with the key Established", || {
        lab.kroute.established(&node_addr(1))
    });
    lab.wait_kernel_via(1);
    good.session_state(&k_addr(1)).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(bad.session_state(&k_addr(2)).is_err());
    assert!(dynamic(&lab, 2).is_none_or(|n| n.state != SessionState::Established));
}

/// kroute's config as a file that builds the range from template `nodes`
/// (hold time and import policy as given); no range with `range: false`.
fn templated(lab: &Lab, hold_time: u16, import: &str, range: bool) -> String {
    use serde_yaml_ng::{from_str, Value};
    let mut c = lab.kroute.config.clone();
    c.router.listen.as_mut().unwrap().ranges.clear();
    let mut doc: Value = from_str(&lab.kroute.yaml_of(&c)).unwrap();
    if range {
        doc["router"]["listen"]["ranges"] =
            from_str("[{ prefix: 10.0.0.0/8, template: nodes, limit: 10 }]").unwrap();
    }
    doc["peerTemplates"] = from_str(&format!(
        "[{{ name: nodes, asn: external, families: [ipv4-unicast], holdTime: {hold_time}, import: {import}, export: all }}]"
    ))
    .unwrap();
    serde_yaml_ng::to_string(&doc).unwrap()
}

/// A reload that changes the range's template reaches its dynamic
/// neighbors as it would configured peers: the same effective config
/// touches nothing, a policy change re-runs import without a reset (same
/// session: uptime goes on, no flap, BIRD saw no NOTIFICATION), a timer
/// change resets the session (it comes back with the new hold time), and
/// removing the range closes its neighbors.
#[test]
fn reload_applies_template_changes_to_dynamic_neighbors() {
    let lab = Lab::new(
        "dynrl",
        &[1],
        with_ranges(vec![range("10.0.0.0/8", 10, PeerAsn::External)]),
    );
    let bird: Bird = lab.node(1, NODE_ASN);
    let name = node_addr(1);
    wait_until(CONVERGE, "dynamic neighbor Established", || {
        lab.kroute.established(&name)
    });
    lab.wait_kernel_via(1);
    let resets = || {
        let proto = common::bird::proto_name(&k_addr(1));
        (bird.log().lines())
            .filter(|l| l.contains(&proto) && l.contains("Other configuration change"))
            .count()
    };
    let reload = |text: String| {
        std::fs::write(lab.kroute.config_path(), text).unwrap();
        lab.kroute.cli_ok(&["reload"])
    };
    let before = dynamic(&lab, 1).unwrap();

    // The router's 90 s hold time, import all: what the range had.
    let said = reload(templated(&lab, 90, "all", true));
    assert!(said.contains("no changes"), "{said}");

    let said = reload(templated(&lab, 90, "none", true));
    assert!(said.contains("policy settings re-applied"), "{said}");
    kernel::wait_absent(&lab.k_ns, &node_prefix(1));
    let after = dynamic(&lab, 1).unwrap();
    assert_eq!(after.state, SessionState::Established);
    assert_eq!(after.flaps, 0);
    assert!(
        after.uptime_seconds >= before.uptime_seconds,
        "{before:?} {after:?}"
    );
    assert_eq!(resets(), 0, "a policy change resets nothing");

    // Below the test BIRD's 9 s, so the agreed hold time shows it (the
    // lower proposal wins, RFC 4271 §4.2).
    let said = reload(templated(&lab, 6, "all", true));
    assert!(said.contains("session reset"), "{said}");
    wait_until(
        CONVERGE,
        "the session back with hold time 6",
        || match dynamic(&lab, 1) {
            Some(n) if n.state == SessionState::Established && n.hold_time == Some(6) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    lab.wait_kernel_via(1);
    assert_eq!(resets(), 1, "a new hold time resets the session once");

    let said = reload(templated(&lab, 6, "all", false));
    assert!(said.contains("removed"), "{said}");
    assert!(dynamic(&lab, 1).is_none(), "{:?}", lab.kroute.neighbors());
    kernel::wait_absent(&lab.k_ns, &node_prefix(1));
    std::thread::sleep(Duration::from_secs(3));
    assert!(bird.session_state(&k_addr(1)).is_err());
    assert!(lab.kroute.neighbors().is_empty());
}

/// `asn: external` on a configured peer: any AS but ours, shown as
/// learned and used as the peer's AS (eBGP path). `asn: internal` with an
/// eBGP node: NOTIFICATION 2/2 Bad Peer AS, logged with what was expected.
#[test]
fn asn_kinds_accept_their_kind_and_refuse_the_other() {
    let lab = Lab::new("dynas", &[1, 2], |c| {
        c.peers.push(Peer {
            asn: PeerAsn::External,
            ..k::peer("frr", &node_addr(1), 1, &["ipv4-unicast"])
        });
        c.peers.push(Peer {
            asn: PeerAsn::Internal,
            ..k::peer("bird", &node_addr(2), 1, &["ipv4-unicast"])
        });
    });
    let frr: Frr = lab.node(1, NODE_ASN);
    let bird: Bird = lab.node(2, NODE_ASN);
    wait_until(CONVERGE, "the external peer Established", || {
        lab.kroute.established("frr")
    });
    lab.wait_kernel_via(1);
    wait_until(CONVERGE, "kroute's prefix at FRR over eBGP", || {
        match frr.routes_for(ADV4).first() {
            Some(r) if r.as_path == vec![KROUTE_ASN] => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let text = lab.kroute.cli_ok(&["show", "neighbor", "frr"]);
    assert!(
        text.contains(&format!("AS external ({NODE_ASN} learned) (ebgp)")),
        "{text}"
    );
    wait_until(CONVERGE, "the wrong kind refused with 2/2", || {
        lab.log_has(&format!(
            "OPEN refused (NOTIFICATION 2/2 Bad Peer AS): the peer says AS {NODE_ASN}, expected internal (our AS {KROUTE_ASN})"
        ))
    });
    assert!(bird.session_state(&k_addr(2)).is_err());
    let n = lab.kroute.neighbor("bird").unwrap();
    assert_ne!(n.state, SessionState::Established);
    assert_eq!(n.asn_text(), "internal");
}

// ------------------------------------------------------------ config

const ROUTER: &str = "router:\n  asn: 65000\n  routerId: 10.0.0.1\n  listen:\n    ranges:\n";
const TEMPLATES: &str =
    "peerTemplates:\n  - { name: nodes, asn: external }\n  - { name: noas, holdTime: 9 }\n";

fn err(ranges: &str, rest: &str) -> String {
    let text = format!("{ROUTER}{ranges}{rest}");
    match parse(&text, "t.yaml") {
        Ok(c) => panic!("accepted:\n{text}\n{c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn range_errors_name_file_line_and_key() {
    let cases = [
        (
            "      - { prefix: 10.0.0.0/16 }\n",
            TEMPLATES,
            "t.yaml:6:9: router.listen.ranges[0].template: required key is missing",
        ),
        (
            "      - { prefix: 10.0.0.0/16, template: racks }\n",
            TEMPLATES,
            "t.yaml:6:42: router.listen.ranges[0].template: template \"racks\" is not defined (defined: nodes, noas)",
        ),
        (
            "      - { prefix: 10.0.0.0/16, template: noas }\n",
            TEMPLATES,
            "t.yaml:6:42: router.listen.ranges[0].template: template \"noas\" has no `asn`",
        ),
        (
            "      - { prefix: 10.0.0.0/16, template: nodes, limit: 0 }\n",
            TEMPLATES,
            "t.yaml:6:56: router.listen.ranges[0].limit: limit 0 would refuse every connection",
        ),
        (
            "      - { prefix: 10.0.0.0/16, template: nodes }\n      - { prefix: 10.0.0.0/16, template: nodes }\n",
            TEMPLATES,
            "t.yaml:7:19: router.listen.ranges[1].prefix: router.listen.ranges[0] already has prefix 10.0.0.0/16",
        ),
        (
            "      - { prefix: 10.0.0.1/16, template: nodes }\n",
            TEMPLATES,
            "t.yaml:6:19: router.listen.ranges[0].prefix: 10.0.0.1/16 has host bits set",
        ),
        (
            "      - { prefix: 10.0.0.0/16, template: nodes }\n",
            "peerTemplates:\n  - { name: nodes, asn: external, bfd: true }\n",
            "t.yaml:8:40: peerTemplates[0].bfd: in router.listen.ranges[0] (dynamic neighbors): bfd is not available for dynamic neighbors",
        ),
        (
            "      - { prefix: 10.0.0.0/16, template: nodes }\n",
            "peerTemplates:\n  - { name: nodes, asn: outside }\n",
            "t.yaml:8:25: peerTemplates[0].asn: invalid value: string \"outside\", expected an ASN in 1..=4294967294 other than 23456 (AS_TRANS), `external` or `internal`",
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .map(|(ranges, rest, want)| (err(ranges, rest), want))
        .filter(|(e, want)| !e.starts_with(*want))
        .map(|(e, want)| format!("got:  {e}\nwant: {want}"))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn asn_kinds_and_ranges_read_back_from_print() {
    let text = format!(
        "{ROUTER}      - {{ prefix: 10.0.0.0/16, template: nodes, limit: 50 }}\n{TEMPLATES}\
         peers:\n  - {{ name: up, address: 10.1.0.1, asn: internal }}\n"
    );
    let c = parse(&text, "t.yaml").unwrap();
    assert_eq!(c.peers[0].asn, PeerAsn::Internal);
    assert!(c.peers[0].is_ibgp(65000));
    let r = &c.router.listen.as_ref().unwrap().ranges[0];
    assert_eq!(
        (r.limit, r.peer.asn, r.peer.passive),
        (50, PeerAsn::External, true)
    );
    assert_eq!(r.peer.ttl(65000), 1, "eBGP: directly connected by default");
    let printed = serde_yaml_ng::to_string(&c).unwrap();
    assert!(
        printed.contains("asn: internal") && printed.contains("asn: external"),
        "{printed}"
    );
    let back = parse(&printed, "printed.yaml").unwrap_or_else(|e| panic!("{e}\n{printed}"));
    assert_eq!(back, c);
}
