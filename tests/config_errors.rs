//! The config loader: every example parses and round-trips, and every bad
//! config is rejected with an error naming the file, line and key path.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use kroute::config::{self, parse, Config};
use rib::policy::PolicyChain;
use wire::{Family, LargeCommunity};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    assert!(v.len() >= 4, "examples missing: {v:?}");
    v
}

#[test]
fn every_example_parses() {
    for path in examples() {
        if let Err(e) = config::load(&path) {
            panic!("{e}");
        }
    }
}

#[test]
fn every_example_round_trips() {
    for path in examples() {
        let first = config::load(&path).unwrap();
        let printed = first.to_yaml();
        let second = parse(&printed, "printed.yaml")
            .unwrap_or_else(|e| panic!("{}: {e}\n{printed}", path.display()));
        assert_eq!(first, second, "{}:\n{printed}", path.display());
        // Printing is canonical: a second print is the same text.
        assert_eq!(printed, second.to_yaml());
    }
}

#[test]
fn issue_example_values() {
    let c = config::load(&root().join("examples/node.yaml")).unwrap();
    assert_eq!(c.router.asn, 4_210_101_011);
    assert_eq!(c.router.router_id, Ipv4Addr::new(10, 101, 254, 11));
    let listen = c.router.listen.as_ref().unwrap();
    assert_eq!(listen.address, "::".parse::<IpAddr>().unwrap());
    assert_eq!(listen.port, 179);
    assert_eq!(c.router.max_paths, 1);
    assert_eq!(c.router.hold_time, 90);
    assert_eq!(c.router.connect_retry, 5);
    assert!(!c.router.always_compare_med, "RFC 4271: MED within one AS");
    assert_eq!(c.api.socket, Path::new("/run/kroute/kroute.sock"));
    assert!(c.kernel.install);
    assert_eq!(c.kernel.table, 254);
    assert_eq!(c.kernel.protocol, 186);
    assert_eq!(c.kernel.metric, 20);
    assert_eq!(c.peers.len(), 2);
    let cilium = &c.peers[0];
    assert_eq!(cilium.address, "::1".parse::<IpAddr>().unwrap());
    assert_eq!(cilium.port, 1790);
    assert!(cilium.passive);
    assert_eq!(cilium.import, PolicyChain::All);
    assert_eq!(cilium.export, PolicyChain::None);
    assert_eq!(cilium.ttl(c.router.asn), 1);
    let up = &c.peers[1];
    assert_eq!(up.port, 179);
    assert_eq!(up.allow_as_in, 1);
    assert_eq!(up.hold_time_or(&c.router), 90);
    assert_eq!(up.families, vec![Family::Ipv4Unicast, Family::Ipv6Unicast]);
    assert_eq!(
        c.advertise[0].prefixes,
        vec!["fd00:101:fe::11/128".parse().unwrap()]
    );
    assert_eq!(
        c.advertise[0].large_communities,
        vec!["4200001000:0:100".parse::<LargeCommunity>().unwrap()]
    );
}

#[test]
fn defaults_and_alternatives() {
    let c = parse(
        "router: { asn: 65000, routerId: 10.0.0.1, listen: null }\n\
         kernel: { table: 100, protocol: 99 }\n\
         peers:\n\
         \x20 - { name: rr, address: 10.0.0.2, asn: 65000, routeReflectorClient: true }\n\
         \x20 - { name: ebgp, address: 10.0.0.3, asn: 65001, multihop: 3, holdTime: 0 }\n",
        "alt.yaml",
    )
    .unwrap();
    assert_eq!(c.router.listen, None);
    assert_eq!(c.kernel.table, 100);
    assert_eq!(c.kernel.protocol, 99);
    assert_eq!(config::table_name(c.kernel.table), "100");
    assert_eq!(config::protocol_name(c.kernel.protocol), "99");
    assert_eq!(config::table_name(254), "main");
    assert_eq!(config::protocol_name(186), "bgp");
    assert_eq!(c.peers[0].import, PolicyChain::Unset);
    assert_eq!(c.peers[0].ttl(65000), 255);
    assert_eq!(c.peers[1].ttl(65000), 3);
    assert_eq!(c.peers[1].hold_time_or(&c.router), 0);
    // Absent listen means [::]:179; null means do not listen; both print
    // back to the same config.
    let again = parse(&c.to_yaml(), "again.yaml").unwrap();
    assert_eq!(c, again);
    let minimal: Config = parse("router: { asn: 65000, routerId: 10.0.0.1 }", "m.yaml").unwrap();
    assert_eq!(minimal.router.listen.unwrap().port, 179);
    assert!(minimal.peers.is_empty());
    // Table and protocol names.
    let named = parse(
        "router: { asn: 65000, routerId: 10.0.0.1 }\nkernel: { table: local, protocol: bird }\n",
        "n.yaml",
    )
    .unwrap();
    assert_eq!((named.kernel.table, named.kernel.protocol), (255, 12));
}

const ROUTER: &str = "router:\n  asn: 65000\n  routerId: 10.0.0.1\n";

/// `ROUTER` plus one eBGP peer; the peer's keys start at line 6.
fn with_peer(extra: &str) -> String {
    format!("{ROUTER}peers:\n  - name: up\n    address: 10.0.0.2\n    asn: 65001\n{extra}")
}

/// `ROUTER` plus one BGP unnumbered peer on eth1; its keys start at line 6.
fn unnumbered(extra: &str) -> String {
    format!("{ROUTER}peers:\n  - name: up\n    interface: eth1\n    asn: external\n{extra}")
}

struct Bad {
    what: &'static str,
    yaml: String,
    line: usize,
    path: &'static str,
    message: &'static str,
}

fn bad(
    what: &'static str,
    yaml: impl Into<String>,
    line: usize,
    path: &'static str,
    message: &'static str,
) -> Bad {
    Bad {
        what,
        yaml: yaml.into(),
        line,
        path,
        message,
    }
}

fn bad_configs() -> Vec<Bad> {
    vec![
        bad("unknown top-level key", format!("{ROUTER}peer: []\n"), 4, "", "unknown key \"peer\" (did you mean peers?)"),
        bad("unknown key in router", "router:\n  asn: 65000\n  routerid: 10.0.0.1\n", 3, "router", "unknown key \"routerid\" (did you mean routerId?)"),
        bad("unknown key in a peer", with_peer("    allowasin: 1\n"), 8, "peers[0]", "unknown key \"allowasin\" (did you mean allowAsIn?)"),
        bad("unknown key far from any", with_peer("    colour: blue\n"), 8, "peers[0]", "unknown key \"colour\" (expected one of: name, address"),
        bad(
            "unknown key in a policy rule",
            format!("{ROUTER}policies:\n  - name: p\n    rules:\n      - match: {{ prefix: [10.0.0.0/8] }}\n"),
            7,
            "policies[0].rules[0].match",
            "unknown key \"prefix\" (did you mean prefixes?)",
        ),
        bad("wrong type", "router:\n  asn: sixty\n  routerId: 10.0.0.1\n", 2, "router.asn", "invalid type: string \"sixty\""),
        bad("backupRoutes without nexthop objects", format!("{ROUTER}kernel:\n  nexthopObjects: false\n  backupRoutes: true\n"), 6, "kernel.backupRoutes", "backupRoutes needs nexthopObjects: true"),
        bad("wrong type for a section", format!("{ROUTER}peers: yes\n"), 4, "peers", "invalid type"),
        bad("ASN 0", "router:\n  asn: 0\n  routerId: 10.0.0.1\n", 2, "router.asn", "invalid value: integer `0`, expected an ASN"),
        bad("ASN 23456", with_peer("").replace("65001", "23456"), 7, "peers[0].asn", "23456 (AS_TRANS)"),
        bad("ASN too large", "router:\n  asn: 4294967295\n  routerId: 10.0.0.1\n", 2, "router.asn", "integer `4294967295`"),
        bad("bad routerId", "router:\n  asn: 65000\n  routerId: 10.0.0.300\n", 3, "router.routerId", "invalid IPv4 address"),
        bad("routerId 0.0.0.0", "router:\n  asn: 65000\n  routerId: 0.0.0.0\n", 3, "router.routerId", "must not be 0.0.0.0"),
        bad("bad prefix", format!("{ROUTER}advertise:\n  - prefixes: [10.0.0.0/8, 10.0.0/8]\n"), 5, "advertise[0].prefixes[1]", "invalid prefix \"10.0.0/8\""),
        bad("host bits set", format!("{ROUTER}advertise:\n  - prefixes:\n      - fd00::1/64\n"), 6, "advertise[0].prefixes[0]", "did you mean fd00::/64?"),
        bad("advertise nothing", format!("{ROUTER}advertise:\n  - communities: [\"1:1\"]\n"), 5, "advertise[0]", "give `prefixes`, `interfaces`, `podCIDRs` or `services`"),
        bad("podCIDRs not a flag or source", format!("{ROUTER}advertise:\n  - podCIDRs: maybe\n"), 5, "advertise[0].podCIDRs", "expected `true`, `false` or `{ source: node | ciliumNode }`"),
        bad("services advertising nothing", format!("{ROUTER}advertise:\n  - services: {{ loadBalancerIPs: false, externalIPs: false }}\n"), 5, "advertise[0].services", "advertises nothing"),
        bad("services selector operator", format!("{ROUTER}advertise:\n  - services:\n      selector: {{ matchExpressions: [{{ key: a, operator: Maybe }}] }}\n"), 6, "advertise[0].services.selector", "Maybe"),
        bad(
            "duplicate peer name",
            with_peer("  - name: up\n    address: 10.0.0.3\n    asn: 65002\n"),
            8,
            "peers[1].name",
            "peer name \"up\" is already used by peers[0]",
        ),
        bad("bad peer name", with_peer("").replace("name: up", "name: \"up stream\""), 5, "peers[0].name", "contains ' '"),
        bad(
            "same address and port",
            with_peer("  - name: other\n    address: 10.0.0.2\n    asn: 65002\n"),
            9,
            "peers[1].address",
            "peers[0] already has address 10.0.0.2 port 179",
        ),
        bad(
            "undefined policy",
            format!("{}policies:\n  - name: pods-out\n    rules: []\n", with_peer("    import: pods-in\n")),
            8,
            "peers[0].import",
            "policy \"pods-in\" is not defined (defined: pods-out)",
        ),
        bad("undefined export policy", with_peer("    export:\n      - out\n"), 9, "peers[0].export", "policy \"out\" is not defined (no policies are defined)"),
        bad("import not a name", with_peer("    import: { all: true }\n"), 8, "peers[0].import", "expected `all`, `none`, a policy name or a list"),
        bad(
            "duplicate policy",
            format!("{ROUTER}policies:\n  - name: p\n    rules: []\n  - name: p\n    rules: []\n"),
            7,
            "policies[1].name",
            "policy \"p\" is already defined at policies[0]",
        ),
        bad(
            "undefined neighbor in a policy",
            format!("{}policies:\n  - name: p\n    rules:\n      - match: {{ neighbors: [up, down] }}\n", with_peer("")),
            11,
            "policies[0].rules[0].match.neighbors[1]",
            "peer \"down\" is not defined",
        ),
        bad(
            "policy prefix with host bits",
            format!("{ROUTER}policies:\n  - name: p\n    rules:\n      - match:\n          prefixes:\n            - 10.0.0.0/8 le 24\n            - 10.1.0.1/16 le 24\n"),
            10,
            "policies[0].rules[0].match.prefixes[1]",
            "prefix 10.1.0.1/16 has host bits set (did you mean 10.1.0.0/16?)",
        ),
        bad(
            "policy action typo",
            format!("{ROUTER}policies:\n  - name: p\n    rules:\n      - set: {{ localPref: 200 }}\n        action: acept\n"),
            8,
            "policies[0].rules[0].action",
            "unknown value \"acept\" (did you mean accept?)",
        ),
        bad(
            "bad port in flow style",
            "router:\n  asn: 65000\n  routerId: 10.0.0.1\n  listen: { address: \"::\", port: 0 }\n",
            4,
            "router.listen.port",
            "expected a TCP port",
        ),
        bad(
            "unknown key in flow style",
            "router:\n  asn: 65000\n  routerId: 10.0.0.1\n  listen: { adress: \"::\" }\n",
            4,
            "router.listen",
            "unknown key \"adress\" (did you mean address?)",
        ),
        bad("bad family", with_peer("    families: [ipv4-unicast, ipv6]\n"), 8, "peers[0].families[1]", "unknown value \"ipv6\""),
        bad("family typo", with_peer("    families:\n      - ipv6-unicats\n"), 9, "peers[0].families[0]", "did you mean ipv6-unicast?"),
        bad("duplicate family", with_peer("    families: [ipv6-unicast, ipv6-unicast]\n"), 8, "peers[0].families[1]", "listed twice"),
        bad("no family", with_peer("    families: []\n"), 8, "peers[0].families", "at least one family"),
        bad(
            "bad community",
            format!("{ROUTER}advertise:\n  - prefixes: [10.0.0.0/24]\n    communities:\n      - \"65000:1\"\n      - \"65000:70000\"\n"),
            8,
            "advertise[0].communities[1]",
            "invalid community \"65000:70000\"",
        ),
        bad(
            "bad large community",
            format!("{ROUTER}advertise:\n  - prefixes: [10.0.0.0/24]\n    largeCommunities: [\"1:2\"]\n"),
            6,
            "advertise[0].largeCommunities[0]",
            "invalid large community \"1:2\"",
        ),
        bad("allowAsIn out of range", with_peer("    allowAsIn: 300\n"), 8, "peers[0].allowAsIn", "invalid value: integer `300`, expected u8 (0..=10)"),
        bad("allowAsIn 11", with_peer("    allowAsIn: 11\n"), 8, "peers[0].allowAsIn", "expected u8 (0..=10)"),
        bad("hold time 2", with_peer("    holdTime: 2\n"), 8, "peers[0].holdTime", "0 or 3..=65535"),
        bad("maxPaths 0", "router:\n  asn: 65000\n  routerId: 10.0.0.1\n  maxPaths: 0\n", 4, "router.maxPaths", "1..=64"),
        bad("port 0", with_peer("    port: 0\n"), 8, "peers[0].port", "a TCP port 1..=65535"),
        bad("bad table name", format!("{ROUTER}kernel:\n  table: mian\n"), 5, "kernel.table", "unknown routing table \"mian\" (expected one of main, local, default"),
        bad("table 0", format!("{ROUTER}kernel:\n  table: 0\n"), 5, "kernel.table", "invalid value: integer `0`"),
        bad("bad protocol name", format!("{ROUTER}kernel: {{ protocol: bgpd }}\n"), 4, "kernel.protocol", "unknown route protocol \"bgpd\" (expected one of bgp, static, kernel, boot, zebra, bird"),
        bad("protocol 256", format!("{ROUTER}kernel:\n  install: true\n  protocol: 256\n"), 6, "kernel.protocol", "integer `256`"),
        bad(
            "routeReflectorClient on an eBGP peer",
            with_peer("    routeReflectorClient: true\n"),
            8,
            "peers[0].routeReflectorClient",
            "only an iBGP peer can be a route reflector client",
        ),
        bad(
            "extendedNextHop without ipv4-unicast",
            with_peer("    families: [ipv6-unicast]\n    extendedNextHop: true\n"),
            9,
            "peers[0].extendedNextHop",
            "extended next hop (RFC 8950) carries IPv4 routes",
        ),
        bad("extendedNextHop not a bool", with_peer("    extendedNextHop: yes please\n"), 8, "peers[0].extendedNextHop", "expected a boolean"),
        bad("password too long", with_peer(&format!("    password: {}\n", "x".repeat(81))), 8, "peers[0].password", "1..=80 bytes"),
        bad("localAddress family", with_peer("    localAddress: fd00::1\n"), 8, "peers[0].localAddress", "different families"),
        bad("missing router", "api:\n  socket: /tmp/k.sock\n", 1, "router", "required key is missing"),
        bad("missing routerId", "router:\n  asn: 65000\n", 2, "router.routerId", "required key is missing"),
        bad("missing peer asn", format!("{ROUTER}peers:\n  - name: up\n    address: 10.0.0.2\n"), 5, "peers[0].asn", "required key is missing"),
        bad("empty file", "", 1, "router", "the file is empty"),
        bad("only comments", "# kroute\n\n", 1, "router", "the file is empty"),
        bad("YAML syntax error", "router:\n  asn: 65000\n routerId: 10.0.0.1\n", 3, "", "YAML syntax error"),
        bad("YAML syntax error in flow", "router: { asn: 65000, routerId: [10.0.0.1 }\n", 1, "", "YAML syntax error"),
        bad("duplicate key", "router:\n  asn: 65000\n  asn: 65001\n  routerId: 10.0.0.1\n", 3, "router.asn", "key \"asn\" is given more than once"),
        // BGP unnumbered (`interface` peers): what needs an address is refused.
        bad("peer without address or interface", format!("{ROUTER}peers:\n  - name: up\n    asn: 65001\n"), 5, "peers[0]", "give the peer's address, or `interface`"),
        bad("interface and address", with_peer("    interface: eth1\n"), 6, "peers[0].address", "give either `address` or `interface`"),
        bad("interface named twice", unnumbered("    bfd: false\n  - { name: up2, interface: eth1, asn: external }\n"), 9, "peers[1].interface", "interface eth1 is already peers[0]'s"),
        bad("bad interface name", unnumbered("").replace("eth1", "eth/1"), 6, "peers[0].interface", "is not an interface name"),
        bad("interface peer with bfd", unnumbered("    bfd: true\n"), 8, "peers[0].bfd", "bfd is not supported on an interface peer"),
        bad("interface peer with password", unnumbered("    password: secret\n"), 8, "peers[0].password", "password is not supported on an interface peer"),
        bad("interface peer passive", unnumbered("    passive: true\n"), 8, "peers[0].passive", "passive is not supported on an interface peer"),
        bad("interface peer multihop", unnumbered("    multihop: 2\n"), 8, "peers[0].multihop", "multihop is not supported on an interface peer"),
        bad("interface peer localAddress", unnumbered("    localAddress: 10.0.0.1\n"), 8, "peers[0].localAddress", "localAddress is not supported on an interface peer"),
    ]
}

#[test]
fn bad_configs_name_file_line_and_key() {
    let mut failures = Vec::new();
    for case in bad_configs() {
        let err = match parse(&case.yaml, "kroute.yaml") {
            Ok(_) => {
                failures.push(format!("{}: parsed, expected an error", case.what));
                continue;
            }
            Err(e) => e,
        };
        let shown = err.to_string();
        println!("{:<38} {shown}", case.what);
        let prefix = format!("kroute.yaml:{}:", case.line);
        let ok = shown.starts_with(&prefix)
            && err.line == case.line
            && err.path == case.path
            && (case.path.is_empty() || shown.contains(&format!(": {}: ", case.path)))
            && shown.contains(case.message);
        if !ok {
            failures.push(format!(
                "{}:\n    got      {shown}\n    expected {prefix}COL: {}: ...{}...",
                case.what, case.path, case.message
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn fixture_files_name_their_path() {
    let dir = root().join("tests/config");
    let path = dir.join("undefined-policy.yaml");
    let err = config::load(&path).unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("{}:11:13: peers[0].import: ", path.display())),
        "{shown}"
    );
    assert!(
        shown.contains("policy \"pods-in\" is not defined (defined: pods-out)"),
        "{shown}"
    );

    let path = dir.join("allow-as-in.yaml");
    let shown = config::load(&path).unwrap_err().to_string();
    assert_eq!(
        shown,
        format!(
            "{}:14:16: peers[1].allowAsIn: invalid value: integer `300`, expected u8 (0..=10)",
            path.display()
        )
    );
}

#[test]
fn unreadable_file_is_named() {
    let err = config::load(Path::new("/nonexistent/kroute.yaml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/kroute.yaml: cannot read:"),
        "{err}"
    );
}

#[test]
fn always_compare_med_parses_and_prints() {
    let c = parse(
        "router: { asn: 65000, routerId: 10.0.0.1, alwaysCompareMed: true }\n",
        "med.yaml",
    )
    .unwrap();
    assert!(c.router.always_compare_med);
    assert!(
        c.to_yaml().contains("alwaysCompareMed: true"),
        "{}",
        c.to_yaml()
    );
    let e = parse(
        "router: { asn: 65000, routerId: 10.0.0.1, alwaysCompareMed: 1 }\n",
        "med.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("alwaysCompareMed"), "{e}");
}

#[test]
fn kubernetes_advertisements_in_a_file_name_the_key() {
    let dir = std::env::temp_dir().join(format!("kroute-k8s-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (key, entry) in [("podCIDRs", "podCIDRs: true"), ("services", "services: {}")] {
        let file = dir.join(format!("{key}.yaml"));
        std::fs::write(
            &file,
            format!("{ROUTER}advertise:\n  - prefixes: [10.0.0.0/24]\n  - {entry}\n"),
        )
        .unwrap();
        let err = kroute::config::load(&file).expect_err("file mode must refuse it");
        let shown = err.to_string();
        assert_eq!(err.line, 6, "{shown}");
        assert_eq!(err.path, format!("advertise[1].{key}"), "{shown}");
        assert!(
            shown.contains("needs Kubernetes mode (`kroute daemon --kubernetes`)"),
            "{shown}"
        );
        // The same text is a valid config for the renderer.
        let text = std::fs::read_to_string(&file).unwrap();
        parse(&text, "rendered").expect("valid in Kubernetes mode");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An `interface` peer parses without an address, has RFC 8950 extended
/// next hop on unless told otherwise, and prints back without the
/// internal stand-in address.
#[test]
fn interface_peers_parse_and_round_trip() {
    let c = parse(
        &unnumbered("  - { name: up2, interface: eth2, asn: 65002, extendedNextHop: false }\n"),
        "u.yaml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.peers[0].interface.as_deref(), Some("eth1"));
    assert!(c.peers[0].extended_next_hop());
    assert!(!c.peers[1].extended_next_hop());
    let printed = c.to_yaml();
    let peers = printed.split("\npeers:").nth(1).expect("a peers section");
    assert!(
        peers.contains("interface: eth1") && !peers.contains("address"),
        "{printed}"
    );
    assert_eq!(parse(&printed, "again.yaml").unwrap(), c);
}
