//! Routing domains (issue 16, seed 003): a node attached to an "internet"
//! uplink (BIRD: a default route and ten prefixes, into table 100, used by
//! traffic from the node's pod CIDR through an `ip rule`) and a "cluster"
//! uplink (FRR: the other nodes' pod CIDRs, into table main), with one
//! prefix announced by both. Real daemons in namespaces; the kernel tables,
//! the rules and forwarding are checked as a user would (`ip route show
//! table`, `ip rule`, `ip route get`, ping). Also the config errors.
//! Needs root, BIRD 2 and FRR (see `common/mod.rs`).

mod common;

use std::collections::BTreeSet;

use common::bird::Bird;
use common::frr::Frr;
use common::kroute::{self as k, Kroute};
use common::{netns, veth, wait_until, PeerDaemon, PeerNeighbor, PeerSpec, CONVERGE};
use kroute::config::{parse, Domain, DomainImport, DomainRule};
use labkit::Netns;

const ROUTER: &str = "router:\n  asn: 65000\n  routerId: 10.0.0.1\n";

/// `ROUTER`, one peer in domain `peer_domain` and `domains` as given
/// (YAML lines indented by 2).
fn with_domains(domains: &str, peer_domain: &str) -> String {
    format!(
        "{ROUTER}domains:\n{domains}peers:\n  - name: up\n    address: 10.0.0.2\n    asn: 65001\n    domain: {peer_domain}\n"
    )
}

const INTERNET: &str = "  - name: internet\n    table: 100\n    rules:\n      - from: 10.244.1.0/24\n        priority: 1000\n";

#[test]
fn config_errors_name_the_key_and_say_what_is_wrong() {
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "unknown domain",
            with_domains(INTERNET, "storage"),
            "peers[0].domain",
            "unknown domain \"storage\" (defined: internet)",
        ),
        (
            "unknown domain in advertise",
            format!("{ROUTER}domains:\n{INTERNET}advertise:\n  - prefixes: [10.244.1.0/24]\n    domain: inet\n"),
            "advertise[0].domain",
            "unknown domain \"inet\"",
        ),
        (
            "duplicate table",
            with_domains(&format!("{INTERNET}  - name: storage\n    table: 100\n"), "internet"),
            "domains[1].table",
            "table 100 is already the table of domains[0] (\"internet\")",
        ),
        (
            "table main",
            with_domains("  - name: internet\n    table: main\n", "internet"),
            "domains[0].table",
            "table 254 is the kernel's main table",
        ),
        (
            "table local",
            with_domains("  - name: internet\n    table: 255\n", "internet"),
            "domains[0].table",
            "table 255 is the kernel's local table",
        ),
        (
            "table of kernel.table",
            format!(
                "{}kernel:\n  table: 100\n",
                with_domains(INTERNET, "internet")
            ),
            "domains[0].table",
            "table 100 is kernel.table",
        ),
        (
            "unknown table name",
            with_domains("  - name: internet\n    table: uplinks\n", "internet"),
            "domains[0].table",
            "no routing table named \"uplinks\"",
        ),
        (
            "rule priority clash",
            with_domains(
                &format!("{INTERNET}  - name: storage\n    table: 200\n    rules:\n      - fwmark: 7\n        priority: 1000\n"),
                "internet",
            ),
            "domains[1].rules[0].priority",
            "priority 1000 is already used by domains[0].rules[0]",
        ),
        (
            "kernel rule priority",
            with_domains(
                "  - name: internet\n    table: 100\n    rules:\n      - iif: eth1\n        priority: 32766\n",
                "internet",
            ),
            "domains[0].rules[0].priority",
            "priority 32766 is out of range",
        ),
        (
            "two selectors",
            with_domains(
                "  - name: internet\n    table: 100\n    rules:\n      - from: 10.244.1.0/24\n        fwmark: 1\n        priority: 10\n",
                "internet",
            ),
            "domains[0].rules[0]",
            "a rule needs exactly one of `from`, `to`, `fwmark`, `iif`",
        ),
        (
            "host bits",
            with_domains(
                "  - name: internet\n    table: 100\n    rules:\n      - to: 10.244.1.1/24\n        priority: 10\n",
                "internet",
            ),
            "domains[0].rules[0].to",
            "10.244.1.1/24 has host bits set (did you mean 10.244.1.0/24?)",
        ),
        (
            "leak from an unknown domain",
            with_domains(&format!("{INTERNET}    importFrom:\n      - {{ domain: storage, policy: all }}\n"), "internet"),
            "domains[0].importFrom[0].domain",
            "unknown domain \"storage\" (defined: internet; the default domain is \"default\")",
        ),
        (
            "leak from itself",
            with_domains(&format!("{INTERNET}    importFrom:\n      - {{ domain: internet, policy: all }}\n"), "internet"),
            "domains[0].importFrom[0].domain",
            "domain \"internet\" cannot import from itself",
        ),
        (
            "leak without a policy",
            with_domains(&format!("{INTERNET}    importFrom:\n      - {{ domain: default }}\n"), "internet"),
            "domains[0].importFrom[0].policy",
            "a leak needs a policy",
        ),
        (
            "leak through an unknown policy",
            with_domains(&format!("{INTERNET}    importFrom:\n      - {{ domain: default, policy: pods }}\n"), "internet"),
            "domains[0].importFrom[0].policy",
            "policy \"pods\" is not defined (no policies are defined)",
        ),
        (
            "the same source twice",
            with_domains(&format!("{INTERNET}    importFrom:\n      - {{ domain: default, policy: all }}\n      - {{ domain: default, policy: all }}\n"), "internet"),
            "domains[0].importFrom[1].domain",
            "domain \"default\" is already imported from at importFrom[0]",
        ),
        (
            "a domain called default",
            with_domains("  - name: default\n    table: 100\n", "default"),
            "domains[0].name",
            "\"default\" is the default domain's name",
        ),
        (
            "duplicate name",
            with_domains(&format!("{INTERNET}  - name: internet\n    table: 200\n"), "internet"),
            "domains[1].name",
            "domain \"internet\" is already defined at domains[0]",
        ),
    ];
    let mut failures = Vec::new();
    for (what, yaml, path, message) in cases {
        match parse(&yaml, "kroute.yaml") {
            Ok(_) => failures.push(format!("{what}: parsed, expected an error")),
            Err(e) => {
                let shown = e.to_string();
                if !(shown.starts_with("kroute.yaml:") && e.path == path && shown.contains(message))
                {
                    failures.push(format!(
                        "{what}:\n    got      {shown} (path {})\n    expected {path}: ...{message}...",
                        e.path
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn a_valid_domain_config_parses_with_peers_templates_and_advertise() {
    let yaml = format!(
        "{ROUTER}domains:\n{INTERNET}  - name: storage\n    table: 200\n    rules:\n      - fwmark: 0x20\n        priority: 1001\n      - iif: eth2\n        priority: 1002\n      - to: fd00:5::/64\n        priority: 1003\npeerTemplates:\n  - name: uplink\n    asn: 65001\n    domain: internet\npeers:\n  - name: up\n    address: 10.0.0.2\n    template: uplink\n  - name: san\n    address: 10.0.1.2\n    asn: 65002\n    domain: storage\nadvertise:\n  - prefixes: [10.244.1.0/24]\n    domain: internet\n"
    );
    let c = parse(&yaml, "kroute.yaml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.peers[0].domain.as_deref(),
        Some("internet"),
        "from the template"
    );
    assert_eq!(c.peers[1].domain.as_deref(), Some("storage"));
    assert_eq!(c.advertise[0].domain.as_deref(), Some("internet"));
    assert_eq!(c.domains[1].rules[0].fwmark, Some(0x20));
    assert_eq!(c.domains[1].rules[1].iif.as_deref(), Some("eth2"));
}

/// The internet uplink's prefixes besides the default route.
fn internet_prefixes() -> Vec<String> {
    (1..=10).map(|i| format!("203.0.{i}.0/24")).collect()
}

const POD_CIDR: &str = "10.244.1.0/24";
const POD_ADDR: &str = "10.244.1.10";
/// Other nodes' pod CIDRs, from the cluster uplink.
const CLUSTER_PREFIXES: [&str; 2] = ["10.244.2.0/24", "10.244.3.0/24"];
/// Announced by both uplinks.
const OVERLAP: &str = "10.250.0.0/24";
/// An address behind each uplink (on its loopback).
const INTERNET_HOST: &str = "203.0.1.1";
const CLUSTER_HOST: &str = "10.244.2.1";
const OVERLAP_HOST: &str = "10.250.0.1";

struct Node {
    kroute: Kroute,
    bird: Bird,
    frr: Frr,
    _bird_ns: Netns,
    _frr_ns: Netns,
    pod_ns: Netns,
    pod_dev: String,
    k_ns: Netns,
}

/// `proto bgp` routes of table `table` in `ns`: prefix → gateway.
fn table_routes(ns: &Netns, table: &str) -> Result<BTreeSet<(String, String)>, String> {
    let out = ns
        .ip(&["-j", "-4", "route", "show", "table", table, "proto", "bgp"])
        .map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let dst = r["dst"].as_str().unwrap_or("?");
            let dst = if dst == "default" { "0.0.0.0/0" } else { dst };
            let dst = if dst.contains('/') {
                dst.to_string()
            } else {
                format!("{dst}/32")
            };
            // Routes on kernel nexthop objects name the object, not the
            // gateway: read it from the object.
            let gw = match (r["gateway"].as_str(), r["nhid"].as_u64()) {
                (Some(gw), _) => gw.to_string(),
                (None, Some(id)) => nexthop_gateway(ns, id),
                _ => String::new(),
            };
            (dst, gw)
        })
        .collect())
}

/// The gateway of nexthop object `id` (`ip nexthop show id ID`).
fn nexthop_gateway(ns: &Netns, id: u64) -> String {
    let out = ns
        .ip(&["-j", "nexthop", "show", "id", &id.to_string()])
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    v.as_array()
        .and_then(|a| a.first())
        .and_then(|o| o["gateway"].as_str())
        .map_or_else(|| format!("nhid {id}"), str::to_string)
}

/// The `ip rule`s of protocol bgp in `ns`, as (priority, from, table).
fn bgp_rules(ns: &Netns) -> Vec<(u64, String, String)> {
    let mut rules = Vec::new();
    for family in ["-4", "-6"] {
        let out = ns
            .ip(&["-j", family, "rule", "show"])
            .unwrap_or_else(|e| panic!("{e}"));
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        for r in v.as_array().into_iter().flatten() {
            if r["protocol"].as_str() != Some("bgp") {
                continue;
            }
            let src = match (r["src"].as_str(), r["srclen"].as_u64()) {
                (Some(s), Some(l)) => format!("{s}/{l}"),
                (Some(s), None) => s.to_string(),
                _ => "all".to_string(),
            };
            rules.push((
                r["priority"].as_u64().unwrap_or(0),
                src,
                r["table"].as_str().unwrap_or("?").to_string(),
            ));
        }
    }
    rules
}

/// The device and gateway `ip route get` picks in `ns` (`args` after
/// the address, e.g. `from A iif DEV`).
fn route_get(ns: &Netns, addr: &str, args: &[&str]) -> String {
    let mut argv = vec!["route", "get", addr];
    argv.extend_from_slice(args);
    match ns.ip(&argv) {
        Ok(s) => s.lines().next().unwrap_or("").to_string(),
        Err(e) => format!("error: {e}"),
    }
}

fn ping(ns: &Netns, args: &[&str]) -> Result<(), String> {
    let mut argv = vec!["ping", "-c", "1", "-W", "2"];
    argv.extend_from_slice(args);
    ns.run(&argv).map(|_| ()).map_err(|e| e.to_string())
}

const BIRD_ADDR: &str = "10.1.0.2";
const FRR_ADDR: &str = "10.2.0.2";

fn internet_domain() -> Domain {
    Domain {
        name: "internet".into(),
        table: 100,
        rules: vec![DomainRule {
            from: Some(POD_CIDR.parse().unwrap()),
            to: None,
            fwmark: None,
            iif: None,
            priority: 1000,
        }],
        import_from: Vec::new(),
    }
}

impl Node {
    /// The node with its two uplinks; `tweak` may change kroute's config
    /// before it starts.
    fn start(tweak: impl FnOnce(&mut kroute::config::Config)) -> Node {
        let k_ns = netns("kdom");
        let bird_ns = netns("bdom");
        let frr_ns = netns("fdom");
        let pod_ns = netns("pdom");
        veth(
            &k_ns,
            &bird_ns,
            &["10.1.0.1/24"],
            &[&format!("{BIRD_ADDR}/24")],
        );
        veth(
            &k_ns,
            &frr_ns,
            &["10.2.0.1/24"],
            &[&format!("{FRR_ADDR}/24")],
        );
        let pod = veth(
            &k_ns,
            &pod_ns,
            &["10.244.1.1/24"],
            &[&format!("{POD_ADDR}/24")],
        );
        pod_ns
            .ip(&["route", "add", "default", "via", "10.244.1.1"])
            .unwrap_or_else(|e| panic!("{e}"));
        for (ns, addrs) in [
            (&bird_ns, [INTERNET_HOST, OVERLAP_HOST]),
            (&frr_ns, [CLUSTER_HOST, OVERLAP_HOST]),
        ] {
            for a in addrs {
                ns.add_addr("lo", &format!("{a}/32"))
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        }

        let mut cfg = k::config(65001, "10.255.0.1");
        cfg.domains = vec![internet_domain()];
        let mut bird_peer = k::peer("internet", BIRD_ADDR, 65010, &["ipv4-unicast"]);
        bird_peer.domain = Some("internet".into());
        cfg.peers = vec![
            bird_peer,
            k::peer("cluster", FRR_ADDR, 65020, &["ipv4-unicast"]),
        ];
        // The pod CIDR to both: the Internet needs the return route too.
        let mut to_internet = k::advertise(&[POD_CIDR]);
        to_internet[0].domain = Some("internet".into());
        cfg.advertise = k::advertise(&[POD_CIDR]);
        cfg.advertise.extend(to_internet);
        tweak(&mut cfg);
        let kroute = Kroute::start(&k_ns, cfg);

        let spec = |asn: u32, addr: &str, kaddr: &str| PeerSpec {
            asn,
            router_id: addr.to_string(),
            neighbors: vec![PeerNeighbor::new(kaddr, addr, 65001, &["ipv4-unicast"])],
            install_kernel: true,
        };
        let mut bird = Bird::start(&bird_ns, spec(65010, BIRD_ADDR, "10.1.0.1"));
        let mut frr = Frr::start(&frr_ns, spec(65020, FRR_ADDR, "10.2.0.1"));
        bird.announce("0.0.0.0/0");
        for p in internet_prefixes() {
            bird.announce(&p);
        }
        bird.announce(OVERLAP);
        for p in CLUSTER_PREFIXES {
            frr.announce(p);
        }
        frr.announce(OVERLAP);
        Node {
            kroute,
            bird,
            frr,
            _bird_ns: bird_ns,
            _frr_ns: frr_ns,
            pod_ns,
            pod_dev: pod.dev_a,
            k_ns,
        }
    }

    fn want_internet_table() -> BTreeSet<(String, String)> {
        internet_prefixes()
            .into_iter()
            .chain(["0.0.0.0/0".to_string(), OVERLAP.to_string()])
            .map(|p| (p, BIRD_ADDR.to_string()))
            .collect()
    }

    fn want_main_table() -> BTreeSet<(String, String)> {
        CLUSTER_PREFIXES
            .iter()
            .chain(&[OVERLAP])
            .map(|p| (p.to_string(), FRR_ADDR.to_string()))
            .collect()
    }

    fn wait_table(&self, table: &str, want: &BTreeSet<(String, String)>) {
        wait_until(
            CONVERGE,
            &format!("table {table} to hold exactly {want:?}"),
            || {
                let have = table_routes(&self.k_ns, table)?;
                if &have == want {
                    Ok(())
                } else {
                    Err(format!("table {table}: {have:?}"))
                }
            },
        );
    }
}

/// Where kroute's `/metrics` listens in the two-domain tests.
const METRICS_PORT: u16 = 9816;

/// The value of `series` (e.g. `kroute_rib_prefixes{...}`) in a scrape of
/// kroute's `/metrics` from its own namespace.
fn metric(n: &Node, series: &str) -> Result<f64, String> {
    let out = n
        .k_ns
        .output(&[
            "curl",
            "-sS",
            "--max-time",
            "10",
            &format!("http://10.2.0.1:{METRICS_PORT}/metrics"),
        ])
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .ok_or_else(|| format!("{series} not in:\n{text}"))
}

#[test]
fn two_domains_tables_rules_forwarding_and_reload() {
    let mut n = Node::start(|c| {
        c.api.http = Some(kroute::config::HttpListen {
            address: "10.2.0.1".parse().unwrap(),
            port: METRICS_PORT,
        })
    });
    // Both tables exactly: no route of one uplink in the other's table,
    // the overlapping prefix in both, each via its own uplink.
    let internet = Node::want_internet_table();
    let main = Node::want_main_table();
    n.wait_table("100", &internet);
    n.wait_table("main", &main);
    assert_eq!(
        bgp_rules(&n.k_ns),
        vec![(1000, POD_CIDR.to_string(), "100".to_string())],
        "ip rule: exactly kroute's one rule"
    );
    for args in [
        &["route", "show", "table", "100"][..],
        &["route", "show", "table", "main"],
        &["rule", "show"],
    ] {
        println!(
            "ip {}:\n{}",
            args.join(" "),
            n.k_ns.ip(args).unwrap_or_default()
        );
    }

    // Forwarding: the pod's traffic takes the internet domain, the
    // node's own the main table.
    let pod_get = route_get(
        &n.k_ns,
        OVERLAP_HOST,
        &["from", POD_ADDR, "iif", &n.pod_dev],
    );
    assert!(
        pod_get.contains(&format!("via {BIRD_ADDR}")),
        "pod traffic to {OVERLAP_HOST}: {pod_get}"
    );
    let node_get = route_get(&n.k_ns, OVERLAP_HOST, &[]);
    assert!(
        node_get.contains(&format!("via {FRR_ADDR}")),
        "node traffic to {OVERLAP_HOST}: {node_get}"
    );
    let node_internet = route_get(&n.k_ns, INTERNET_HOST, &[]);
    assert!(
        !node_internet.contains(BIRD_ADDR),
        "the node's own traffic must not use the internet table: {node_internet}"
    );
    wait_until(
        CONVERGE,
        "the pod to ping a host behind the internet uplink",
        || ping(&n.pod_ns, &[INTERNET_HOST]),
    );
    wait_until(
        CONVERGE,
        "the node to ping a host behind the cluster uplink",
        || ping(&n.k_ns, &[CLUSTER_HOST]),
    );
    assert!(
        ping(&n.k_ns, &[INTERNET_HOST]).is_err(),
        "the node reached {INTERNET_HOST}: the internet routes leaked into main"
    );

    // Nothing crosses domains: FRR hears only the pod CIDR, not the
    // Internet's routes; BIRD hears the pod CIDR, not the cluster's.
    wait_until(CONVERGE, "FRR to learn the pod CIDR", || {
        let rib = n.frr.rib();
        let got: BTreeSet<String> = rib.iter().map(|r| r.prefix.clone()).collect();
        let leaked: Vec<&String> = got
            .iter()
            .filter(|p| p.starts_with("203.0.") || p.as_str() == "0.0.0.0/0")
            .collect();
        if !leaked.is_empty() {
            return Err(format!("leaked into the cluster: {leaked:?}"));
        }
        got.contains(POD_CIDR)
            .then_some(())
            .ok_or(format!("FRR has {got:?}"))
    });

    // `/metrics` and `show status` count every domain, each labelled:
    // the internet domain's routes (its table's, plus the pod CIDR it
    // originates) and the default domain's (main's, plus the pod CIDR).
    let family = "family=\"ipv4-unicast\"";
    let want = [
        ("internet", internet.len() + 1, internet.len()),
        ("default", main.len() + 1, main.len()),
    ];
    wait_until(CONVERGE, "/metrics to count both domains", || {
        for (domain, prefixes, installed) in want {
            let labels = format!("{{{family},domain=\"{domain}\"}}");
            let p = metric(&n, &format!("kroute_rib_prefixes{labels}"))?;
            let i = metric(&n, &format!("kroute_fib_routes_installed{labels}"))?;
            if (p, i) != (prefixes as f64, installed as f64) {
                return Err(format!(
                    "{domain}: {p} prefixes, {i} installed; want {prefixes}, {installed}"
                ));
            }
        }
        Ok(())
    });
    let status: serde_json::Value =
        serde_json::from_str(&n.kroute.cli_ok(&["show", "status", "-o", "json"])).unwrap();
    let installed = |v: &serde_json::Value| v["fib"]["installed"].as_u64().unwrap_or(0) as usize;
    assert_eq!(
        installed(&status),
        internet.len() + main.len(),
        "show status: the FIB over all domains: {status:#}"
    );
    let domains = status["domains"].as_array().cloned().unwrap_or_default();
    let by_name = |name: &str| domains.iter().find(|d| d["name"] == name).cloned();
    let internet_status = by_name("internet").unwrap_or_else(|| panic!("{status:#}"));
    assert_eq!(internet_status["table"], 100);
    assert_eq!(installed(&internet_status), internet.len(), "{status:#}");
    assert_eq!(
        internet_status["rib"][0]["prefixes"],
        internet.len() + 1,
        "{status:#}"
    );
    let default_status = by_name("default").unwrap_or_else(|| panic!("{status:#}"));
    assert_eq!(installed(&default_status), main.len(), "{status:#}");
    let text = n.kroute.cli_ok(&["show", "status"]);
    println!("kroute show status:\n{text}");
    assert!(
        text.lines().any(|l| l.starts_with("Domain internet")
            && l.contains("table 100")
            && l.contains(&format!("{} installed", internet.len()))),
        "{text}"
    );

    // The CLI names each peer's domain and each domain's table and rule.
    let neighbors = n.kroute.cli_ok(&["show", "neighbors"]);
    assert!(neighbors.contains("DOMAIN"), "{neighbors}");
    let domains = n.kroute.cli_ok(&["show", "domains"]);
    println!("kroute show domains:\n{domains}\nkroute show neighbors:\n{neighbors}");
    assert!(
        domains.contains("internet") && domains.contains("1000: from 10.244.1.0/24 lookup 100"),
        "{domains}"
    );
    let routes = n
        .kroute
        .cli_ok(&["show", "routes", "--domain", "internet", "0.0.0.0/0"]);
    assert!(routes.contains("internet"), "{routes}");
    let explain = n
        .kroute
        .cli_ok(&["explain", OVERLAP, "--domain", "internet"]);
    assert!(explain.contains(BIRD_ADDR), "{explain}");
    let unknown = n.kroute.cli_raw(&["show", "fib", "--domain", "storage"]);
    assert!(!unknown.status.success(), "an unknown domain is an error");

    // A rule deleted by hand is back after a reload (the reload reports it).
    n.k_ns
        .ip(&["rule", "del", "priority", "1000"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bgp_rules(&n.k_ns), vec![]);
    n.kroute.reload();
    assert_eq!(
        bgp_rules(&n.k_ns),
        vec![(1000, POD_CIDR.to_string(), "100".to_string())],
        "the reload puts the rule back"
    );

    // Reload without the domain (and its peer and advertisement, which
    // name it).
    n.kroute.config.domains.clear();
    n.kroute.config.peers.retain(|p| p.name != "internet");
    n.kroute.config.advertise.retain(|a| a.domain.is_none());
    n.kroute.reload();
    n.wait_table("100", &BTreeSet::new());
    n.wait_table("main", &main);
    assert_eq!(bgp_rules(&n.k_ns), vec![], "the domain's rule is gone");

    // And back.
    n.kroute.config.domains = vec![internet_domain()];
    let mut bird_peer = k::peer("internet", BIRD_ADDR, 65010, &["ipv4-unicast"]);
    bird_peer.domain = Some("internet".into());
    n.kroute.config.peers.push(bird_peer);
    let mut to_internet = k::advertise(&[POD_CIDR]);
    to_internet[0].domain = Some("internet".into());
    n.kroute.config.advertise.extend(to_internet);
    n.kroute.reload();
    n.wait_table("100", &internet);
    n.wait_table("main", &main);
    assert_eq!(
        bgp_rules(&n.k_ns),
        vec![(1000, POD_CIDR.to_string(), "100".to_string())]
    );
    wait_until(CONVERGE, "the pod to reach the Internet again", || {
        ping(&n.pod_ns, &[INTERNET_HOST])
    });

    // A clean exit removes the rules with the routes.
    n.kroute.stop();
    assert_eq!(bgp_rules(&n.k_ns), vec![], "rules left after exit");
    n.wait_table("100", &BTreeSet::new());
}

#[test]
fn keep_on_exit_keeps_the_domain_rules_and_routes_across_a_restart() {
    let mut n = Node::start(|c| c.kernel.keep_on_exit = true);
    let internet = Node::want_internet_table();
    let rule = vec![(1000, POD_CIDR.to_string(), "100".to_string())];
    n.wait_table("100", &internet);
    n.kroute.stop();
    // Forwarding survives kroute: the routes and the rule that selects
    // them stay.
    assert_eq!(
        table_routes(&n.k_ns, "100").unwrap_or_else(|e| panic!("{e}")),
        internet
    );
    assert_eq!(bgp_rules(&n.k_ns), rule, "the rule stays with the routes");
    // (BIRD drops its route back to the pods with the session: no ping.)
    let get = route_get(
        &n.k_ns,
        INTERNET_HOST,
        &["from", POD_ADDR, "iif", &n.pod_dev],
    );
    assert!(
        get.contains(&format!("via {BIRD_ADDR}")),
        "kroute stopped: {get}"
    );
    // Started again: the same table and one rule, not two.
    n.kroute.start_again(&n.k_ns);
    wait_until(CONVERGE, "the internet peer to come back", || {
        n.kroute.established("internet")
    });
    n.wait_table("100", &internet);
    assert_eq!(bgp_rules(&n.k_ns), rule);
}

/// The cluster prefix the leak policy lets into the internet domain (the
/// other cluster prefix stays out).
const LEAKED: &str = "10.244.2.0/24";

/// `policies:` with `cluster-to-internet`: LEAKED only.
fn leak_policies() -> Vec<rib::policy::Policy> {
    parse(
        &format!(
            "{ROUTER}policies:\n  - name: cluster-to-internet\n    rules:\n      - match: {{ prefixes: [\"{LEAKED}\"] }}\n        action: accept\n"
        ),
        "policy.yaml",
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .policies
}

/// [`leak_policies`] with `also` let through as well.
fn leak_policies_also(also: &str) -> Vec<rib::policy::Policy> {
    parse(
        &format!(
            "{ROUTER}policies:\n  - name: cluster-to-internet\n    rules:\n      - match: {{ prefixes: [\"{LEAKED}\", \"{also}\"] }}\n        action: accept\n"
        ),
        "policy.yaml",
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .policies
}

/// The prefixes BIRD (the internet uplink) learned from kroute.
fn bird_prefixes(n: &Node) -> BTreeSet<String> {
    n.bird.rib().iter().map(|r| r.prefix.clone()).collect()
}

/// Each peer's flap count (a session reset counts one).
fn flaps(n: &Node) -> Vec<(String, u32, bool)> {
    n.kroute
        .neighbors()
        .into_iter()
        .map(|v| {
            (
                v.name,
                v.flaps,
                v.uptime_seconds > 0 || v.prefixes_received > 0,
            )
        })
        .collect()
}

#[test]
fn a_cluster_route_leaks_into_the_internet_domain_only_by_policy() {
    let mut n = Node::start(|c| c.policies = leak_policies());
    let internet = Node::want_internet_table();
    let main = Node::want_main_table();
    n.wait_table("100", &internet);
    n.wait_table("main", &main);
    wait_until(CONVERGE, "BIRD to learn the pod CIDR", || {
        let got = bird_prefixes(&n);
        got.contains(POD_CIDR)
            .then_some(())
            .ok_or(format!("BIRD has {got:?}"))
    });
    // Without the leak: the cluster's prefix is neither in table 100 nor
    // at the internet peer, and pods reach it through the default route.
    assert!(
        !bird_prefixes(&n).contains(LEAKED),
        "leaked without a policy"
    );
    let pod_get = |n: &Node| {
        route_get(
            &n.k_ns,
            CLUSTER_HOST,
            &["from", POD_ADDR, "iif", &n.pod_dev],
        )
    };
    assert!(pod_get(&n).contains(BIRD_ADDR), "{}", pod_get(&n));
    let before = flaps(&n);

    // Reload adding the leak: the policy's prefix only, with its cluster
    // next hop, in table 100; advertised to BIRD; no session reset.
    n.kroute.config.domains[0].import_from = vec![DomainImport {
        domain: "default".into(),
        policy: serde_json::from_value(serde_json::json!("cluster-to-internet")).unwrap(),
    }];
    n.kroute.reload();
    let mut leaked = internet.clone();
    leaked.insert((LEAKED.to_string(), FRR_ADDR.to_string()));
    n.wait_table("100", &leaked);
    n.wait_table("main", &main);
    wait_until(CONVERGE, "BIRD to learn the leaked prefix", || {
        let got = bird_prefixes(&n);
        if got.contains(CLUSTER_PREFIXES[1]) {
            return Err(format!("more than the policy allows leaked: {got:?}"));
        }
        got.contains(LEAKED)
            .then_some(())
            .ok_or(format!("BIRD has {got:?}"))
    });
    assert!(
        !bird_prefixes(&n).contains(CLUSTER_PREFIXES[1]),
        "the policy lets only {LEAKED} through"
    );
    assert!(
        pod_get(&n).contains(FRR_ADDR),
        "pod traffic to the cluster host: {}",
        pod_get(&n)
    );
    wait_until(
        CONVERGE,
        "the pod to ping the cluster host through the leak",
        || ping(&n.pod_ns, &[CLUSTER_HOST]),
    );
    let explain = n
        .kroute
        .cli_ok(&["explain", LEAKED, "--domain", "internet"]);
    println!("kroute explain {LEAKED} --domain internet:\n{explain}");
    assert!(explain.contains("leaked from domain default"), "{explain}");
    let domains = n.kroute.cli_ok(&["show", "domains"]);
    println!("kroute show domains:\n{domains}");
    assert!(
        domains.contains("default via cluster-to-internet: 1 accepted"),
        "{domains}"
    );
    assert_eq!(flaps(&n), before, "the reload reset a session");

    // A reload changing the policy's contents (the leak's name stays)
    // judges the leaked paths again: the second cluster prefix comes in
    // too, sessions untouched.
    n.kroute.config.policies = leak_policies_also(CLUSTER_PREFIXES[1]);
    n.kroute.reload();
    let mut wider = leaked.clone();
    wider.insert((CLUSTER_PREFIXES[1].to_string(), FRR_ADDR.to_string()));
    n.wait_table("100", &wider);
    n.kroute.config.policies = leak_policies();
    n.kroute.reload();
    n.wait_table("100", &leaked);
    assert_eq!(flaps(&n), before, "the reload reset a session");

    // Withdrawn in the source domain: gone from table 100 and from BIRD.
    n.frr.withdraw(LEAKED);
    n.wait_table("100", &internet);
    wait_until(CONVERGE, "BIRD to lose the leaked prefix", || {
        let got = bird_prefixes(&n);
        (!got.contains(LEAKED))
            .then_some(())
            .ok_or(format!("BIRD still has {got:?}"))
    });
    // Back in the source: leaked again.
    n.frr.announce(LEAKED);
    n.wait_table("100", &leaked);

    // Reload removing the leak: gone again, sessions untouched.
    n.kroute.config.domains[0].import_from.clear();
    n.kroute.reload();
    n.wait_table("100", &internet);
    n.wait_table("main", &main);
    wait_until(CONVERGE, "BIRD to lose the prefix no longer leaked", || {
        let got = bird_prefixes(&n);
        (!got.contains(LEAKED))
            .then_some(())
            .ok_or(format!("BIRD still has {got:?}"))
    });
    assert_eq!(flaps(&n), before, "the reload reset a session");
}

/// The gateways of table `table`'s `proto bgp` route for `prefix` in
/// `ns`, sorted (through nexthop objects and groups where kroute uses
/// them); empty: no route.
fn table_gateways(ns: &Netns, table: &str, prefix: &str) -> Vec<String> {
    let out = ns
        .ip(&[
            "-j", "-4", "route", "show", "table", table, "exact", prefix, "proto", "bgp",
        ])
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    let mut gws = Vec::new();
    for r in v.as_array().into_iter().flatten() {
        if let Some(nhs) = r["nexthops"].as_array() {
            gws.extend(
                nhs.iter()
                    .filter_map(|h| h["gateway"].as_str().map(str::to_string)),
            );
        } else if let Some(gw) = r["gateway"].as_str() {
            gws.push(gw.to_string());
        } else if let Some(id) = r["nhid"].as_u64() {
            let out = ns
                .ip(&["-j", "nexthop", "show", "id", &id.to_string()])
                .unwrap_or_default();
            let o: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
            let o = &o[0];
            match o["group"].as_array() {
                Some(group) => gws.extend(
                    group
                        .iter()
                        .filter_map(|m| m["id"].as_u64())
                        .map(|id| nexthop_gateway(ns, id)),
                ),
                None => gws.extend(o["gateway"].as_str().map(str::to_string)),
            }
        }
    }
    gws.sort();
    gws
}

/// The selection deferral (RFC 4724 §4.1) holds a routing domain's kernel
/// changes too: an ECMP route of the internet domain (table 100) over
/// BIRD and FRR stays exactly as the previous run left it while kroute
/// restarts after SIGKILL and only BIRD is back (FRR held off by a
/// blackhole towards kroute in its namespace), polled every 100 ms; it is
/// released when FRR is back. Without the deferral in the domain the
/// route would shrink to BIRD's next hop for as long as FRR is away.
#[test]
fn selection_deferral_holds_a_domain_table_over_a_restart() {
    const ECMP: &str = "10.201.0.0/24";
    let k_ns = netns("kdgr");
    let a_ns = netns("adgr");
    let b_ns = netns("bdgr");
    veth(
        &k_ns,
        &a_ns,
        &["10.1.0.1/24"],
        &[&format!("{BIRD_ADDR}/24")],
    );
    veth(&k_ns, &b_ns, &["10.2.0.1/24"], &[&format!("{FRR_ADDR}/24")]);
    let mut cfg = k::config(65001, "10.255.0.1");
    cfg.router.hold_time = 9;
    cfg.router.connect_retry = 2;
    cfg.router.multipath_relax = true;
    cfg.router.graceful_restart.enabled = true;
    cfg.domains = vec![internet_domain()];
    for (name, addr, asn) in [("a", BIRD_ADDR, 65010), ("b", FRR_ADDR, 65020)] {
        let mut p = k::peer(name, addr, asn, &["ipv4-unicast"]);
        p.domain = Some("internet".into());
        cfg.peers.push(p);
    }
    let mut kroute = Kroute::start(&k_ns, cfg);
    let spec = |asn: u32, addr: &str, kaddr: &str| PeerSpec {
        asn,
        router_id: addr.to_string(),
        neighbors: vec![PeerNeighbor::new(kaddr, addr, 65001, &["ipv4-unicast"])],
        install_kernel: false,
    };
    let mut bird = Bird::start(&a_ns, spec(65010, BIRD_ADDR, "10.1.0.1"));
    let mut frr = Frr::start(&b_ns, spec(65020, FRR_ADDR, "10.2.0.1"));
    bird.announce(ECMP);
    frr.announce(ECMP);
    let both = vec![BIRD_ADDR.to_string(), FRR_ADDR.to_string()];
    let check = |ns: &Netns| -> Result<(), String> {
        let gws = table_gateways(ns, "100", ECMP);
        if gws == both {
            Ok(())
        } else {
            Err(format!("{ECMP} in table 100 via {gws:?}"))
        }
    };
    wait_until(
        CONVERGE,
        "the ECMP route over BIRD and FRR in table 100",
        || check(&k_ns),
    );

    // Polled from a thread of its own, every 100 ms.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ns_name = k_ns.name().to_string();
    let (s, both_w) = (stop.clone(), both.clone());
    let watcher = std::thread::spawn(move || {
        let ns = Netns::open(&ns_name).unwrap_or_else(|e| panic!("{e}"));
        let (mut polls, mut misses) = (0usize, Vec::new());
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            let gws = table_gateways(&ns, "100", ECMP);
            if gws != both_w {
                misses.push(gws);
            }
            polls += 1;
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        (polls, misses)
    });
    kroute.kill();
    let hold_off = ["route", "add", "blackhole", "10.2.0.1/32"];
    b_ns.ip(&hold_off).unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(std::time::Duration::from_secs(1));
    kroute.start_again(&k_ns);
    wait_until(CONVERGE, "kroute's session to BIRD again", || {
        kroute.established("a")
    });
    // BIRD is back, FRR is not: the route is still the previous run's.
    std::thread::sleep(std::time::Duration::from_secs(4));
    check(&k_ns).unwrap_or_else(|e| panic!("while FRR is away: {e}"));
    assert!(
        !kroute.log_tails(400).contains("selection deferral over"),
        "the deferral ended without FRR"
    );
    b_ns.ip(&["route", "del", "blackhole", "10.2.0.1/32"])
        .unwrap_or_else(|e| panic!("{e}"));
    wait_until(CONVERGE, "kroute's session to FRR again", || {
        kroute.established("b")
    });
    wait_until(CONVERGE, "the selection deferral to end", || {
        if kroute.log_tails(400).contains("selection deferral over") {
            Ok(())
        } else {
            Err("not yet".into())
        }
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (polls, misses) = watcher.join().expect("watcher");
    assert!(polls > 40, "{polls} polls");
    assert!(
        misses.is_empty(),
        "table 100 changed over kroute's restart ({} polls of {polls}), first: {:?}",
        misses.len(),
        misses.first()
    );
    check(&k_ns).unwrap_or_else(|e| panic!("{e}"));
    drop((bird, frr));
}
