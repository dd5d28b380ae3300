//! Recorded-input tests: `recorded/DAEMON.rec` holds the BGP messages a real
//! BIRD, FRR or GoBGP sent over three sessions (recorded by
//! `tests/capture_wire.rs` in the workspace root; its header says how). Each
//! line is `SESSION HEX`, one whole message; `#` starts a comment.
//!
//! Every message must decode without error (and every UPDATE without
//! treat-as-withdraw: these are well-formed messages from real speakers) to
//! the value blessed in `recorded/DAEMON.json`; encoding that value must
//! decode back to it, and gives the received bytes back exactly when the
//! sender's encoding is the canonical one ours is (attributes in type-code
//! order, extended length only when needed). Which messages are byte-exact
//! is part of the blessed file, so a change either way shows in review.
//!
//! `WIRE_BLESS=1 cargo test -p wire --test recorded` rewrites the .json
//! files (after a new capture, or when the model changes on purpose).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use wire::*;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/recorded")
}

/// One recorded message: its session tag and bytes.
struct Recorded {
    session: String,
    bytes: Vec<u8>,
}

fn parse_hex(s: &str, at: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "{at}: odd number of hex digits");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("{at}: {e}")))
        .collect()
}

fn read_recording(path: &Path) -> Vec<Recorded> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                return None;
            }
            let at = format!("{}:{}", path.display(), i + 1);
            let (session, hex) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("{at}: want `SESSION HEX`"));
            Some(Recorded {
                session: session.to_string(),
                bytes: parse_hex(hex.trim(), &at),
            })
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Decode every message of `DAEMON.rec` and compare with `DAEMON.json`.
/// Returns the decoded messages per session, for the per-daemon checks.
fn recorded(daemon: &str) -> Vec<(String, Message)> {
    let recording = read_recording(&dir().join(format!("{daemon}.rec")));
    assert!(!recording.is_empty(), "{daemon}: empty recording");
    // The recorder always offers 4-octet ASNs; the session uses them when
    // the daemon's OPEN (the session's first message) does too (RFC 6793).
    let mut codecs: Vec<(String, SessionCodec)> = Vec::new();
    let mut decoded = Vec::new();
    let mut got = Vec::new();
    for (i, r) in recording.iter().enumerate() {
        let at = format!("{daemon} message {} ({})", i + 1, r.session);
        let codec = match codecs.iter().find(|(s, _)| *s == r.session) {
            Some((_, c)) => *c,
            None => SessionCodec::default(),
        };
        let (msg, used) = decode_message(&r.bytes, &codec)
            .unwrap_or_else(|e| panic!("{at}: decode error {e} {:?}", e.0))
            .unwrap_or_else(|| panic!("{at}: incomplete"));
        assert_eq!(used, r.bytes.len(), "{at}: header length vs bytes");
        match &msg {
            Message::Open(o) => {
                assert!(
                    codecs.iter().all(|(s, _)| *s != r.session),
                    "{at}: second OPEN"
                );
                let four_octet_as = o.has_capability(|c| matches!(c, Capability::FourOctetAs(_)));
                codecs.push((r.session.clone(), SessionCodec { four_octet_as }));
            }
            Message::Update(u) => {
                assert!(
                    codecs.iter().any(|(s, _)| *s == r.session),
                    "{at}: UPDATE before OPEN"
                );
                assert_eq!(u.treat_as_withdraw, None, "{at}: treat-as-withdraw");
            }
            _ => {}
        }

        let mut out = Vec::new();
        encode_message(&msg, &codec, &mut out);
        let (back, back_used) = decode_message(&out, &codec)
            .unwrap_or_else(|e| panic!("{at}: our encoding does not decode: {e}"))
            .unwrap_or_else(|| panic!("{at}: our encoding is incomplete"));
        assert_eq!(
            back_used,
            out.len(),
            "{at}: encoded as more than one message"
        );
        assert_eq!(back, msg, "{at}: decode(encode(decode(x))) != decode(x)");
        let byte_exact = out == r.bytes;

        got.push(json!({
            "session": r.session,
            "byte_exact": byte_exact,
            "message": serde_json::to_value(&msg).unwrap(),
        }));
        decoded.push((r.session.clone(), msg));
        if !byte_exact {
            // Shown with --nocapture, to see what differs when blessing.
            eprintln!(
                "{at}: re-encoded differently\n  got  {}\n  want {}",
                hex(&out),
                hex(&r.bytes)
            );
        }
    }

    let got = Value::Array(got);
    let json_path = dir().join(format!("{daemon}.json"));
    if std::env::var_os("WIRE_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(
            &json_path,
            serde_json::to_string_pretty(&got).unwrap() + "\n",
        )
        .unwrap();
    }
    let want_text = std::fs::read_to_string(&json_path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with WIRE_BLESS=1)", json_path.display()));
    let want: Value = serde_json::from_str(&want_text).unwrap();
    let (got, want) = (got.as_array().unwrap(), want.as_array().unwrap());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            g,
            w,
            "{daemon} message {}: differs from {daemon}.json",
            i + 1
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{daemon}: message count vs {daemon}.json"
    );
    decoded
}

fn updates<'a>(
    msgs: &'a [(String, Message)],
    session: &'a str,
) -> impl Iterator<Item = &'a Update> {
    msgs.iter().filter_map(move |(s, m)| match m {
        Message::Update(u) if s == session => Some(u),
        _ => None,
    })
}

/// What every daemon was told to send (see `tests/capture_wire.rs`), checked
/// on the decoded values so that a blessed golden cannot hide a decoder bug
/// that loses an attribute.
fn check_capture_content(daemon: &str, msgs: &[(String, Message)], sends_eor: bool) {
    let sessions = ["ebgp-v4", "ebgp-v6", "ibgp-v4"];
    for s in sessions {
        assert!(
            msgs.iter()
                .any(|(t, m)| t == s && matches!(m, Message::Open(_))),
            "{daemon} {s}: no OPEN"
        );
    }
    let attrs_of = |session: &str, prefix: &str| -> PathAttributes {
        let p: Prefix = prefix.parse().unwrap();
        updates(msgs, session)
            .find(|u| {
                u.nlri.iter().any(|n| Prefix::V4(*n) == p)
                    || u.mp_reach.as_ref().is_some_and(|r| r.nlri.contains(&p))
            })
            .unwrap_or_else(|| panic!("{daemon} {session}: {prefix} not announced"))
            .attributes
            .clone()
    };
    // Communities and large communities on eBGP and iBGP alike.
    for s in ["ebgp-v4", "ibgp-v4"] {
        let a = attrs_of(s, "10.200.2.0/24");
        let c: Vec<String> = a.communities.iter().map(|c| c.to_string()).collect();
        assert_eq!(c, ["65002:100", "65002:200"], "{daemon} {s}");
        let lc: Vec<String> = a.large_communities.iter().map(|c| c.to_string()).collect();
        assert_eq!(lc, ["65002:1:1"], "{daemon} {s}");
    }
    // eBGP: the daemon's ASN first; iBGP: LOCAL_PREF, empty AS_PATH.
    let e = attrs_of("ebgp-v4", "10.200.1.0/24");
    assert_eq!(e.as_path.first_asn(), Some(65002), "{daemon}");
    assert_eq!(e.local_pref, None, "{daemon}: LOCAL_PREF on eBGP");
    let i = attrs_of("ibgp-v4", "10.200.5.0/24");
    assert_eq!(i.local_pref, Some(200), "{daemon}");
    assert!(i.as_path.is_empty(), "{daemon}: iBGP AS_PATH {}", i.as_path);
    // IPv6 over the IPv6 session.
    let v6: Prefix = "fd00:200:1::/48".parse().unwrap();
    let r = updates(msgs, "ebgp-v6")
        .filter_map(|u| u.mp_reach.as_ref())
        .find(|r| r.nlri.contains(&v6))
        .unwrap_or_else(|| panic!("{daemon}: {v6} not announced"));
    assert_eq!(r.family, Family::Ipv6Unicast);
    assert_eq!(
        r.next_hop.address,
        "fd00:1::2".parse::<std::net::IpAddr>().unwrap(),
        "{daemon}"
    );
    // End-of-RIB (RFC 4724 §2) for every family of every session, from the
    // daemons that send it (GoBGP does only with graceful restart enabled).
    if sends_eor {
        for (s, families) in [
            ("ebgp-v4", &[Family::Ipv4Unicast][..]),
            ("ibgp-v4", &[Family::Ipv4Unicast]),
            ("ebgp-v6", &[Family::Ipv4Unicast, Family::Ipv6Unicast]),
        ] {
            for f in families {
                assert!(
                    updates(msgs, s).any(|u| u.end_of_rib() == Some(*f)),
                    "{daemon} {s}: no End-of-RIB for {f}"
                );
            }
        }
    }
    // The withdrawal, on both IPv4 sessions.
    let w: Prefix = "10.200.3.0/24".parse().unwrap();
    for s in ["ebgp-v4", "ibgp-v4"] {
        assert!(
            updates(msgs, s).any(|u| u.withdrawn.iter().any(|p| Prefix::V4(*p) == w)),
            "{daemon} {s}: no withdrawal of {w}"
        );
    }
}

#[test]
fn bird() {
    let msgs = recorded("bird");
    check_capture_content("bird", &msgs, true);
}

#[test]
fn frr() {
    let msgs = recorded("frr");
    check_capture_content("frr", &msgs, true);
}

#[test]
fn gobgp() {
    let msgs = recorded("gobgp");
    check_capture_content("gobgp", &msgs, false);
}
