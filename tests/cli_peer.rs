//! `kroute show neighbor|status` and `kroute peer NAME disable|enable|
//! refresh` against the daemon with a BIRD 2 peer: what the operator sees
//! in the kernel, in BIRD and in the CLI. Needs root and `bird2`.

mod common;

use std::time::Duration;

use common::bird::Bird;
use common::kroute as k;
use common::scenarios::{Topo, ADV4, P4, PEER_ASN};
use common::{route_via, wait_until, PeerDaemon, CONVERGE};
use kroute::api::views::{NeighborDetailView, StatusView, SCHEMA_VERSION};
use kroute::events::SessionState;

fn detail(t: &Topo<Bird>, name: &str) -> NeighborDetailView {
    let json = t.kroute.cli_ok(&["show", "neighbor", name, "-o", "json"]);
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// BIRD's "Import updates: received" for its session with kroute.
fn updates_received_by_bird(t: &Topo<Bird>) -> u64 {
    let text = t.peers[0].protocol_all(&t.links[0].k4);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("Import updates:"))
        .unwrap_or_else(|| panic!("no import update stats in:\n{text}"));
    line.split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unreadable: {line}"))
}

#[test]
fn show_neighbor_and_status_describe_a_live_session() {
    let mut t = Topo::<Bird>::p2p("clishow", 1, false, |c| {
        c.advertise = k::advertise(&[ADV4]);
    });
    t.peers[0].announce(P4);
    t.wait_kernel_via(P4, &[1]);
    let name = Topo::<Bird>::v4_name(1);

    let d = detail(&t, &name);
    assert_eq!(d.schema_version, SCHEMA_VERSION);
    assert_eq!(d.neighbor.state, SessionState::Established);
    assert_eq!(d.kind, "ebgp");
    assert!(!d.disabled);
    assert_eq!(d.neighbor.families, [wire::Family::Ipv4Unicast]);
    let negotiated = d
        .timers
        .hold_time_negotiated
        .expect("a negotiated hold time");
    assert_eq!(d.timers.keepalive, Some(negotiated / 3));
    assert_eq!(d.neighbor.prefixes_accepted, 1);
    let text = t.kroute.cli_ok(&["show", "neighbor", &name]);
    for want in [
        "Established",
        "Families negotiated  ipv4-unicast",
        "1 received, 1 accepted",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }
    let e = t.kroute.cli_raw(&["show", "neighbor", "nobody"]);
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("no peer named \"nobody\""));

    // The AS path in JSON is a list of segments.
    let json = t.kroute.cli_ok(&["show", "routes", P4, "-o", "json"]);
    let routes: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        routes[0]["asPath"],
        serde_json::json!([{"type": "sequence", "asns": [PEER_ASN]}]),
        "{routes}"
    );

    let json = t.kroute.cli_ok(&["show", "status", "-o", "json"]);
    let s: StatusView = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(s.router_id.to_string(), "10.255.0.1");
    assert_eq!(
        s.config_file,
        Some(t.kroute.config_path().display().to_string())
    );
    assert_eq!((s.peers_configured, s.peers_established), (1, 1));
    let v4 = &s.rib[0];
    assert_eq!(v4.family, wire::Family::Ipv4Unicast);
    // P4 from BIRD and our own ADV4.
    assert_eq!(v4.prefixes, 2, "{s:?}");
    assert!(s.fib.get("installed").copied().unwrap_or(0) >= 1, "{s:?}");
    let text = t.kroute.cli_ok(&["show", "status"]);
    assert!(
        text.contains("1 configured, 1 established, 0 disabled"),
        "{text}"
    );
    t.kroute.stop();
}

#[test]
fn disable_stays_down_across_reload_until_enable() {
    let mut t = Topo::<Bird>::p2p("clidis", 1, false, |_| {});
    t.peers[0].announce(P4);
    t.wait_kernel_via(P4, &[1]);
    let name = Topo::<Bird>::v4_name(1);

    let out = t.kroute.cli_ok(&["peer", &name, "disable"]);
    assert_eq!(out, format!("peer {name} disabled\n"));
    t.wait_kernel_absent(P4);
    wait_until(CONVERGE, "BIRD to see the administrative shutdown", || {
        let all = t.peers[0].protocol_all(&t.links[0].k4);
        if all.contains("Administrative shutdown") {
            Ok(())
        } else {
            Err(all)
        }
    });
    let d = detail(&t, &name);
    assert!(d.disabled);
    assert_ne!(d.neighbor.state, SessionState::Established);
    assert!(d
        .neighbor
        .last_error
        .unwrap_or_default()
        .contains("disabled"));
    let again = t.kroute.cli_ok(&["peer", &name, "disable"]);
    assert_eq!(again, format!("peer {name} was already disabled\n"));

    // A reload does not bring it back, nor does BIRD reconnecting (its
    // connect retry is 2 s).
    t.kroute.reload();
    std::thread::sleep(Duration::from_secs(5));
    assert!(t.kroute.established(&name).is_err());
    assert!(t.peers[0].session_state(&t.links[0].k4).is_err());
    assert_eq!(route_via(&t.k_ns, P4), None);
    assert!(detail(&t, &name).disabled);

    t.kroute.cli_ok(&["peer", &name, "enable"]);
    t.wait_kernel_via(P4, &[1]);
    t.wait_established();
    assert!(!detail(&t, &name).disabled);
    t.kroute.stop();
}

#[test]
fn refresh_sends_the_adj_rib_out_again_and_keeps_the_session() {
    let mut t = Topo::<Bird>::p2p("clirefr", 1, false, |c| {
        c.advertise = k::advertise(&[ADV4]);
    });
    t.peers[0].announce(P4);
    t.wait_kernel_via(P4, &[1]);
    t.wait_established();
    let name = Topo::<Bird>::v4_name(1);
    wait_until(
        CONVERGE,
        "BIRD to receive kroute's route",
        || match updates_received_by_bird(&t) {
            0 => Err("no update yet".to_string()),
            _ => Ok(()),
        },
    );
    let before = updates_received_by_bird(&t);
    let flaps = detail(&t, &name).neighbor.flaps;

    let out = t.kroute.cli_ok(&["peer", &name, "refresh", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["refreshed"], serde_json::json!(["ipv4-unicast"]), "{v}");
    wait_until(CONVERGE, "BIRD to receive the Adj-RIB-Out again", || {
        let now = updates_received_by_bird(&t);
        if now > before {
            Ok(())
        } else {
            Err(format!("import updates received: {now} (was {before})"))
        }
    });
    let d = detail(&t, &name);
    assert_eq!(d.neighbor.state, SessionState::Established);
    assert_eq!(d.neighbor.flaps, flaps, "refresh reset the session");
    t.wait_kernel_via(P4, &[1]);
    t.kroute.stop();
}

/// `kroute watch -o json` as a child process; its lines arrive on a
/// channel. Killed (by its handle) on drop.
struct Watch {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl Watch {
    fn start(socket: &std::path::Path) -> Watch {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kroute"))
            .arg("--socket")
            .arg(socket)
            .args(["watch", "-o", "json"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not one JSON object per line: {e}: {line}"));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Watch { child, lines }
    }

    /// The next event matching `want`, skipping others; panics after
    /// `CONVERGE` with what was seen.
    fn expect(&self, what: &str, want: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = std::time::Instant::now() + CONVERGE;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(v) if want(&v) => return v,
                Ok(v) => seen.push(v),
                Err(_) => break,
            }
        }
        panic!("no {what} event; saw {seen:?}");
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn watch_streams_session_and_route_events() {
    let mut t = Topo::<Bird>::p2p("cliwatch", 1, false, |_| {});
    t.wait_established();
    let name = Topo::<Bird>::v4_name(1);
    let w = Watch::start(&t.kroute.socket());
    // The watch is live once it reports an event: a refresh makes one.
    wait_until(CONVERGE, "the watch to report a refresh", || {
        t.kroute.cli_ok(&["peer", &name, "refresh"]);
        match w.lines.recv_timeout(Duration::from_millis(300)) {
            Ok(v) if v["event"] == "peer" && v["action"] == "refreshed" => Ok(()),
            Ok(v) => Err(format!("other event: {v}")),
            Err(_) => Err("no event yet".to_string()),
        }
    });
    t.peers[0].announce(P4);
    let ev = w.expect("route added", |v| {
        v["event"] == "route" && v["prefix"] == P4
    });
    assert_eq!(ev["nextHops"], serde_json::json!([t.links[0].p4]), "{ev}");
    assert!(ev["timeUnix"].as_u64().unwrap() > 1_600_000_000, "{ev}");

    t.kroute.cli_ok(&["peer", &name, "disable"]);
    w.expect("operator action", |v| {
        v["event"] == "peer" && v["peer"] == name.as_str() && v["action"] == "disabled"
    });
    w.expect("route withdrawn", |v| {
        v["event"] == "route" && v["prefix"] == P4 && v["nextHops"] == serde_json::json!([])
    });
    t.kroute.cli_ok(&["peer", &name, "enable"]);
    w.expect("session up", |v| {
        v["event"] == "session" && v["peer"] == name.as_str() && v["state"] == "Established"
    });
    w.expect("route back", |v| v["event"] == "route" && v["prefix"] == P4);
    t.peers[0].kill();
    let down = w.expect("session down", |v| {
        v["event"] == "session" && v["peer"] == name.as_str() && v["state"] == "Idle"
    });
    assert!(down["reason"].is_string(), "{down}");
    drop(w);
    t.kroute.stop();
}
