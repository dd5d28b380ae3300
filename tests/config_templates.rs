//! Peer templates (`peerTemplates`, `peers[].template`): how peers are
//! expanded, every error with its file:line:key, and a reload that changes
//! a template reaching a BIRD peer.

mod common;

use common::bird::{proto_name, Bird};
use common::peer::PeerDaemon;
use common::scenarios::{Topo, C4, P4, P6, PEER_ASN};
use common::{wait_until, CONVERGE};
use kroute::config::{parse, Bfd, Config};
use rib::policy::PolicyChain;
use wire::Family;

const ROUTER: &str = "router: { asn: 65000, routerId: 10.0.0.1 }\n";

fn ok(body: &str) -> Config {
    let text = format!("{ROUTER}{body}");
    parse(&text, "t.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn err(body: &str) -> String {
    let text = format!("{ROUTER}{body}");
    match parse(&text, "t.yaml") {
        Ok(c) => panic!("accepted:\n{text}\n{c:?}"),
        Err(e) => e.to_string(),
    }
}

const NODES: &str = "\
peerTemplates:
  - name: nodes
    asn: 65000
    families: [ipv4-unicast]
    holdTime: 30
    routeReflectorClient: true
    bfd: true
    password: s3cret
    import: none
";

#[test]
fn peers_take_the_template_keys_they_do_not_set() {
    let dir = common::test_dir("tplpw");
    let pw = dir.path().join("n2.key");
    std::fs::write(&pw, "n2-key\n").unwrap();
    let c = ok(&format!(
        "{NODES}\
peers:
  - {{ name: n1, address: 10.0.1.1, template: nodes }}
  - {{ name: n2, address: 10.0.1.2, template: nodes, holdTime: 9, import: all, passwordFile: {} }}
  - {{ name: up, address: 10.0.0.254, asn: 65100 }}
",
        pw.display()
    ));
    let [n1, n2, up] = &c.peers[..] else {
        panic!("{:?}", c.peers)
    };
    assert_eq!(n1.asn, 65000);
    assert_eq!(n1.families, vec![Family::Ipv4Unicast]);
    assert_eq!(n1.hold_time, Some(30));
    assert!(n1.route_reflector_client);
    assert_eq!(n1.bfd, Some(Bfd::default()));
    assert_eq!(n1.password.as_ref().unwrap().as_bytes(), b"s3cret");
    assert_eq!(n1.import, PolicyChain::None);
    // The peer's own keys win; its passwordFile replaces the template's
    // password (they exclude each other).
    assert_eq!(n2.hold_time, Some(9));
    assert_eq!(n2.import, PolicyChain::All);
    assert_eq!(n2.password.as_ref().unwrap().as_bytes(), b"n2-key");
    assert_eq!(n2.password_file.as_deref(), Some(pw.as_path()));
    // A peer without a template is untouched.
    assert_eq!(up.hold_time, None);
    assert!(!up.route_reflector_client);
}

#[test]
fn print_shows_the_expanded_peers_and_reads_back_the_same() {
    let c = ok(&format!(
        "{NODES}peers:\n  - {{ name: n1, address: 10.0.1.1, template: nodes }}\n"
    ));
    let printed = c.to_yaml();
    assert!(!printed.contains("peerTemplates"), "{printed}");
    assert!(!printed.contains("template:"), "{printed}");
    assert!(printed.contains("holdTime: 30"), "{printed}");
    assert_eq!(parse(&printed, "printed.yaml").unwrap(), c);
}

#[test]
fn the_same_peers_written_out_give_the_same_config() {
    let templated = ok(&format!(
        "{NODES}peers:\n  - {{ name: n1, address: 10.0.1.1, template: nodes, holdTime: 9 }}\n"
    ));
    let plain = ok("peers:\n  - { name: n1, address: 10.0.1.1, asn: 65000, families: [ipv4-unicast], \
                    holdTime: 9, routeReflectorClient: true, bfd: true, password: s3cret, import: none }\n");
    assert_eq!(templated, plain);
}

#[test]
fn an_unknown_template_names_the_peers_key() {
    let e = err(&format!(
        "{NODES}peers:\n  - {{ name: n1, address: 10.0.1.1, template: node }}\n"
    ));
    assert_eq!(
        e,
        "t.yaml:12:46: peers[0].template: template \"node\" is not defined (defined: nodes)"
    );
    let e = err("peers:\n  - { name: n1, address: 10.0.1.1, template: nodes }\n");
    assert_eq!(
        e,
        "t.yaml:3:46: peers[0].template: template \"nodes\" is not defined (no peerTemplates are defined)"
    );
}

#[test]
fn a_bad_key_or_value_in_a_template_is_reported_at_the_template() {
    let e = err("peerTemplates:\n  - name: t\n    asn: 65001\n    holdTim: 30\n");
    assert_eq!(
        e,
        "t.yaml:5:5: peerTemplates[0]: unknown key \"holdTim\" (did you mean holdTime?)"
    );
    let e = err("peerTemplates:\n  - name: t\n    holdTime: 2\n");
    assert_eq!(e, "t.yaml:4:15: peerTemplates[0].holdTime: invalid value: integer `2`, expected a hold time in seconds: 0 or 3..=65535");
    let e = err("peerTemplates:\n  - { name: t, asn: 0 }\n");
    assert!(e.starts_with("t.yaml:3:21: peerTemplates[0].asn: "), "{e}");
}

#[test]
fn name_and_address_are_a_peers_own() {
    let e = err("peerTemplates:\n  - name: t\n    address: 10.0.0.2\n");
    assert_eq!(e, "t.yaml:4:14: peerTemplates[0].address: `address` is not allowed in a template: it belongs to each peer");
    let e = err("peerTemplates:\n  - name: t\n    template: u\n");
    assert_eq!(
        e,
        "t.yaml:4:15: peerTemplates[0].template: `template` is not allowed in a template: templates do not nest"
    );
    let e = err("peerTemplates:\n  - asn: 65001\n");
    assert_eq!(
        e,
        "t.yaml:3:5: peerTemplates[0].name: required key is missing"
    );
    let e = err("peerTemplates:\n  - { name: \"a b\" }\n");
    assert!(
        e.starts_with("t.yaml:3:13: peerTemplates[0].name: template name \"a b\" contains"),
        "{e}"
    );
}

#[test]
fn a_template_name_defined_twice_is_an_error() {
    let e = err("peerTemplates:\n  - { name: t, asn: 65001 }\n  - { name: t, asn: 65002 }\n");
    assert_eq!(
        e,
        "t.yaml:4:13: peerTemplates[1].name: template \"t\" is already defined at peerTemplates[0]"
    );
}

#[test]
fn a_check_on_a_key_from_the_template_points_at_the_template_and_names_the_peer() {
    // routeReflectorClient from the template, on an eBGP peer.
    let e = err(&format!(
        "{NODES}peers:\n  - {{ name: n1, address: 10.0.1.1, template: nodes, asn: 65001 }}\n"
    ));
    assert_eq!(e, "t.yaml:7:27: peerTemplates[0].routeReflectorClient: in peer \"n1\" (peers[0], template \"nodes\"): only an iBGP peer can be a route reflector client (peer AS 65001 is not router AS 65000)");
    // A peer's own key stays at the peer.
    let e = err(&format!(
        "{NODES}peers:\n  - {{ name: n1, address: 10.0.1.1, template: nodes, allowAsIn: 11 }}\n"
    ));
    assert!(e.starts_with("t.yaml:12:64: peers[0].allowAsIn: "), "{e}");
    // A required key neither sets.
    let e = err("peerTemplates:\n  - { name: t }\npeers:\n  - { name: n1, address: 10.0.1.1, template: t }\n");
    assert_eq!(e, "t.yaml:5:5: peers[0].asn: required key is missing");
    let e = err("peerTemplates:\n  - { name: t }\npeers:\n  - { name: n1, address: 10.0.1.1, template: t, bogus: 1 }\n");
    // (The list of accepted keys after it grows with the schema.)
    assert!(
        e.starts_with("t.yaml:5:49: peers[0]: unknown key \"bogus\" (expected one of: name, "),
        "{e}"
    );
}

/// The hold time BIRD agreed with kroute (`Hold timer: LEFT/AGREED`).
fn bird_hold_time(bird: &Bird, neighbor: &str) -> Result<u32, String> {
    let all = bird.protocol_all(neighbor);
    all.lines()
        .find_map(|l| l.trim().strip_prefix("Hold timer:"))
        .and_then(|v| v.trim().rsplit('/').next()?.trim().parse().ok())
        .ok_or_else(|| format!("no hold timer (session not up?):\n{all}"))
}

/// kroute's config file with its BIRD peers written through templates:
/// the IPv4 session's `birds` (hold time and import policy as given), the
/// IPv6 session's `birds6`, always what the peer had written out.
fn templated(t: &Topo<Bird>, hold_time: u16, import: &str) -> String {
    let mut plain = t.kroute.config.clone();
    let peers = std::mem::take(&mut plain.peers);
    let base = t.kroute.yaml_of(&plain);
    let mut text = format!(
        "{base}peerTemplates:\n\
         \x20 - {{ name: birds, asn: {PEER_ASN}, families: [ipv4-unicast], \
         holdTime: {hold_time}, import: {import}, export: all }}\n\
         \x20 - {{ name: birds6, asn: {PEER_ASN}, families: [ipv6-unicast], import: all, export: all }}\n\
         peers:\n"
    );
    for p in &peers {
        let template = if p.address.is_ipv4() {
            "birds"
        } else {
            "birds6"
        };
        text += &format!(
            "  - {{ name: {}, address: \"{}\", template: {template} }}\n",
            p.name, p.address
        );
    }
    text
}

/// A reload that changes a template reaches the peer that uses it: its
/// import policy (a route leaves the kernel, no session reset) and its hold
/// time (the session resets and BIRD agrees the new one; BIRD proposes 9 s,
/// the lower proposal wins, RFC 4271 §4.2). The peer whose template did not
/// change, and whose keys are what they were before templates, is never
/// reset.
#[test]
fn reload_applies_a_template_change_to_its_peer() {
    let mut t = Topo::<Bird>::p2p("tplr", 1, true, |_| {});
    t.peers[0].announce(P4);
    t.peers[0].announce(C4);
    t.peers[0].announce(P6);
    t.wait_established();
    t.wait_kernel_via(P4, &[1]);
    t.wait_kernel_via(P6, &[1]);
    let k4 = t.links[0].k4.clone();
    let k6 = t.links[0].k6.clone();
    // Sessions kroute reset for a config change: the NOTIFICATIONs BIRD got.
    let resets = |t: &Topo<Bird>, neighbor: &str| {
        let proto = proto_name(neighbor);
        let log = t.peers[0].log();
        log.lines()
            .filter(|l| l.contains(&proto) && l.contains("Other configuration change"))
            .count()
    };

    let apply = |t: &mut Topo<Bird>, hold_time: u16, import: &str| {
        let text = templated(t, hold_time, import);
        t.kroute.write_config_text(&text);
        t.kroute.cli_ok(&["reload"]);
    };
    apply(&mut t, 6, "all");
    wait_until(
        CONVERGE,
        "BIRD to agree hold time 6",
        || match bird_hold_time(&t.peers[0], &k4)? {
            6 => Ok(()),
            h => Err(format!("hold time {h}")),
        },
    );
    t.wait_established();
    t.wait_kernel_via(P4, &[1]);
    assert_eq!(resets(&t, &k4), 1, "a new hold time resets the session");

    // An import policy in the template: nothing from the peer is used.
    apply(&mut t, 6, "none");
    t.wait_kernel_absent(P4);
    t.wait_kernel_absent(C4);
    assert_eq!(resets(&t, &k4), 1, "a policy change resets nothing");

    // Back to all, and a new hold time.
    apply(&mut t, 4, "all");
    wait_until(
        CONVERGE,
        "BIRD to agree hold time 4",
        || match bird_hold_time(&t.peers[0], &k4)? {
            4 => Ok(()),
            h => Err(format!("hold time {h}")),
        },
    );
    t.wait_kernel_via(P4, &[1]);
    t.wait_kernel_via(C4, &[1]);
    t.wait_kernel_via(P6, &[1]);
    assert_eq!(resets(&t, &k4), 2);
    assert_eq!(
        resets(&t, &k6),
        0,
        "the IPv6 session's config never changed"
    );
    t.kroute.established(&Topo::<Bird>::v6_name(1)).unwrap();
}

#[test]
fn a_key_given_twice_is_named_also_in_a_templated_file() {
    let e = err("peerTemplates:\n  - name: t\n    holdTime: 30\n    holdTime: 31\n");
    assert_eq!(
        e,
        "t.yaml:5:15: peerTemplates[0].holdTime: key \"holdTime\" is given more than once"
    );
    let e = err("peers:\n  - { name: n1, address: 10.0.1.1, template: t, asn: 1, asn: 2 }\n");
    assert!(
        e.starts_with("t.yaml:3:")
            && e.contains("peers[0].asn: key \"asn\" is given more than once"),
        "{e}"
    );
}

#[test]
fn a_number_is_a_name_as_for_peers() {
    let c = ok("peerTemplates:\n  - { name: 65001, asn: 65001 }\n\
                peers:\n  - { name: n1, address: 10.0.1.1, template: 65001 }\n");
    assert_eq!(c.peers[0].asn, 65001);
    let e = err("peerTemplates:\n  - { name: [a], asn: 65001 }\n");
    assert_eq!(
        e,
        "t.yaml:3:13: peerTemplates[0].name: a template name is a string"
    );
}
