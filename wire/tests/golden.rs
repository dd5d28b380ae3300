//! Golden byte tests: each `golden/NAME.hex` (hand-built, `#` comments and
//! whitespace ignored) decodes to the value in `golden/NAME.json`, and
//! encoding that value gives back `NAME.out.hex` if present, else the input.
//!
//! `WIRE_BLESS=1 cargo test -p wire --test golden` rewrites the .json files
//! from the decoder (only when the model changes on purpose; review the diff).

use std::path::PathBuf;

use wire::*;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn read_hex(path: &std::path::Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let digits: String = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    assert!(
        digits.len().is_multiple_of(2),
        "{}: odd number of hex digits",
        path.display()
    );
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex"))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Decode `NAME.hex`, compare with `NAME.json`, re-encode; returns the value.
fn golden(name: &str, four_octet_as: bool) -> Message {
    let codec = SessionCodec { four_octet_as };
    let input = read_hex(&dir().join(format!("{name}.hex")));
    let (msg, used) = decode_message(&input, &codec)
        .unwrap_or_else(|e| panic!("{name}: decode error {e} {:?}", e.0))
        .unwrap_or_else(|| panic!("{name}: incomplete"));
    assert_eq!(used, input.len(), "{name}: header length vs bytes");

    let json_path = dir().join(format!("{name}.json"));
    let got = serde_json::to_value(&msg).unwrap();
    if std::env::var_os("WIRE_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(
            &json_path,
            serde_json::to_string_pretty(&got).unwrap() + "\n",
        )
        .unwrap();
    }
    let want_text = std::fs::read_to_string(&json_path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with WIRE_BLESS=1)", json_path.display()));
    let want: serde_json::Value = serde_json::from_str(&want_text).unwrap();
    assert_eq!(got, want, "{name}: decoded value differs from {name}.json");
    // The JSON is also a faithful description of the value.
    let back: Message = serde_json::from_value(want).unwrap();
    assert_eq!(back, msg, "{name}: JSON round trip");

    let out_path = dir().join(format!("{name}.out.hex"));
    let expected = if out_path.exists() {
        read_hex(&out_path)
    } else {
        input
    };
    let mut out = Vec::new();
    encode_message(&msg, &codec, &mut out);
    assert_eq!(hex(&out), hex(&expected), "{name}: encoding");
    msg
}

fn update(m: Message) -> Update {
    match m {
        Message::Update(u) => u,
        other => panic!("not an UPDATE: {other:?}"),
    }
}

fn open(m: Message) -> Open {
    match m {
        Message::Open(o) => o,
        other => panic!("not an OPEN: {other:?}"),
    }
}

#[test]
fn open_basic() {
    let o = open(golden("open_basic", true));
    assert_eq!(o.asn, 65001);
    assert_eq!(
        o.families().collect::<Vec<_>>(),
        [Family::Ipv4Unicast, Family::Ipv6Unicast]
    );
    assert!(o.has_capability(|c| *c == Capability::RouteRefresh));
}

#[test]
fn open_two_params() {
    let o = open(golden("open_two_params", true));
    assert_eq!(o, open(golden("open_basic", true)));
}

#[test]
fn open_full() {
    let o = open(golden("open_full", false));
    assert_eq!(o.asn, 4_200_000_001);
    assert_eq!(o.hold_time, 90);
    assert!(o.has_capability(|c| *c == Capability::FourOctetAs(4_200_000_001)));
    assert!(o.has_capability(|c| *c
        == Capability::GracefulRestart {
            restart_state: true,
            restart_time: 120,
            families: vec![
                GracefulRestartFamily {
                    family: Family::Ipv4Unicast,
                    forwarding_preserved: true
                },
                GracefulRestartFamily {
                    family: Family::Ipv6Unicast,
                    forwarding_preserved: false
                },
            ],
        }));
    assert!(o.has_capability(|c| *c
        == Capability::ExtendedNextHop(vec![ExtendedNextHopEntry {
            family: Family::Ipv4Unicast,
            next_hop_afi: 2
        }])));
    assert!(o.has_capability(|c| *c
        == Capability::Unknown {
            code: 1,
            value: vec![0, 1, 0, 128]
        }));
}

#[test]
fn keepalive() {
    assert_eq!(golden("keepalive", true), Message::Keepalive);
}

#[test]
fn notification_shutdown() {
    let Message::Notification(n) = golden("notification_shutdown", true) else {
        panic!()
    };
    assert_eq!((n.code, n.subcode), (6, 2));
    assert_eq!(n.shutdown_communication().as_deref(), Some("maintenance"));
}

#[test]
fn route_refresh_ipv6() {
    assert_eq!(
        golden("route_refresh_ipv6", true),
        Message::RouteRefresh(RouteRefresh {
            family: Family::Ipv6Unicast
        })
    );
}

#[test]
fn update_ipv4_classic() {
    let u = update(golden("update_ipv4_classic", true));
    let want = Update {
        withdrawn: vec!["192.0.2.0/24".parse().unwrap()],
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: AsPath::from_sequence(vec![65001, 4_200_000_000, 65002]),
            next_hop: Some("10.0.0.1".parse().unwrap()),
            med: Some(100),
            local_pref: Some(200),
            communities: thin_vec!["65001:100".parse().unwrap(), Community::NO_EXPORT],
            ..Default::default()
        },
        nlri: vec![
            "10.1.0.0/16".parse().unwrap(),
            "10.2.3.0/24".parse().unwrap(),
            "0.0.0.0/0".parse().unwrap(),
        ],
        ..Default::default()
    };
    assert_eq!(u, want);
}

#[test]
fn update_mp_ipv6() {
    let u = update(golden("update_mp_ipv6", true));
    let r = u.mp_reach.as_ref().unwrap();
    assert_eq!(r.family, Family::Ipv6Unicast);
    assert_eq!(
        r.next_hop.address,
        "2001:db8::1".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(r.next_hop.link_local, Some("fe80::1".parse().unwrap()));
    assert_eq!(
        r.nlri,
        vec![
            "2001:db8:1::/48".parse().unwrap(),
            "2001:db8:ff00::/40".parse().unwrap()
        ]
    );
    assert_eq!(
        u.attributes.large_communities,
        vec!["65001:1:2".parse().unwrap()]
    );
    assert_eq!(u.treat_as_withdraw, None);
}

#[test]
fn update_mp_unreach_ipv6() {
    let u = update(golden("update_mp_unreach_ipv6", true));
    let w = u.mp_unreach.as_ref().unwrap();
    assert_eq!(w.family, Family::Ipv6Unicast);
    assert_eq!(w.withdrawn.len(), 2);
    assert_eq!(u.end_of_rib(), None);
}

#[test]
fn update_ipv4_nh6() {
    let u = update(golden("update_ipv4_nh6", true));
    let nh = u.next_hop_for(Family::Ipv4Unicast).unwrap();
    assert_eq!(nh, NextHop::new("2001:db8::1".parse().unwrap()));
    assert_eq!(
        u.mp_reach.unwrap().nlri,
        vec!["198.51.100.0/24".parse().unwrap()]
    );
}

#[test]
fn update_as4_2octet() {
    let u = update(golden("update_as4_2octet", false));
    assert_eq!(
        u.attributes.as_path,
        AsPath::from_sequence(vec![65001, 4_200_000_001, 65002])
    );
    assert_eq!(
        u.attributes.aggregator,
        Some(Aggregator {
            asn: 4_200_000_001,
            address: "192.0.2.1".parse().unwrap()
        })
    );
    assert!(u.attributes.unknown.is_empty());
}

#[test]
fn update_as4_merge() {
    let u = update(golden("update_as4_merge", false));
    assert_eq!(
        u.attributes.as_path,
        AsPath::from_sequence(vec![65010, 65001, 4_200_000_001])
    );
}

#[test]
fn update_unknown_attrs() {
    let u = update(golden("update_unknown_attrs", true));
    assert_eq!(u.attributes.unknown.len(), 2);
    assert_eq!(u.attributes.unknown[0].flags, 0xc0);
    assert_eq!(u.attributes.unknown[0].type_code, 99);
    assert_eq!(u.treat_as_withdraw, None);
}

#[test]
fn eor_ipv4() {
    let u = update(golden("eor_ipv4", true));
    assert_eq!(u.end_of_rib(), Some(Family::Ipv4Unicast));
}

#[test]
fn eor_ipv6() {
    let u = update(golden("eor_ipv6", true));
    assert_eq!(u.end_of_rib(), Some(Family::Ipv6Unicast));
}
