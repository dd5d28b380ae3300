//! RIB conformance: every directory under `tests/conformance/` is a scenario,
//! an event sequence replayed into a fresh [`Rib`] and compared with the
//! expected files beside it. Adding a scenario is adding a directory.
//!
//! `events.jsonl`: one JSON event per line (blank lines and lines starting
//! with `#` are comments). The first event may be `config`; the rest:
//!
//! ```text
//! {"config": {"localAsn": 65000, "routerId": "10.0.0.1", "maxPaths": 4, "multipathRelax": false}}
//! {"addPeer": {"id": 1, "name": "tor-a", "address": "192.0.2.1", "asn": 65101, "import": "all", "export": "all"}}
//! {"peerUp": {"id": 1, "routerId": "192.0.2.1", "families": ["ipv4-unicast"], "extendedNextHopV4": false}}
//! {"announce": {"peer": 1, "prefixes": ["10.8.0.0/16"], "nextHop": "192.0.2.1", "asPath": [65101], "med": 5, "localPref": 200, "communities": ["65101:1"]}}
//! {"withdraw": {"peer": 1, "prefixes": ["10.8.0.0/16"]}}
//! {"update": {"peer": 1, "update": <a wire::Update as JSON, as in wire/tests/golden>}}
//! {"recorded": {"peer": 1, "file": "bird", "session": "ebgp-v4", "from": 0, "to": 3}}
//! {"nexthop": {"address": "192.0.2.1", "state": "reachable", "metric": 0}}   (or "local", "unreachable")
//! {"peerDown": {"id": 1}}
//! {"explain": "10.8.1.0/24"}
//! ```
//!
//! `recorded` feeds the UPDATEs of one session of a real daemon's capture,
//! `wire/tests/recorded/FILE.rec` (`from`/`to`: a range of that session's
//! UPDATEs, by index, end exclusive; default all).
//!
//! Expected files (`RIB_BLESS=1 cargo test -p rib --test conformance`
//! rewrites them; review the diff):
//! * `outputs.json`: per event with any output, the FIB changes, UPDATEs
//!   sent (null, false and empty fields left out; End-of-RIB named) and next
//!   hops to watch;
//! * `loc_rib.json`: the Loc-RIB at the end ([`Rib::routes`]);
//! * `explain.txt`: the text of every `explain` event, at its point.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rib::policy::PolicyChain;
use rib::*;
use serde::Deserialize;
use serde_json::{json, Value};
use wire::{
    AsPath, Community, Family, LargeCommunity, Message, MpReach, MpUnreach, NextHop, Origin,
    PathAttributes, Prefix, SessionCodec, Update,
};

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
enum Event {
    Config(ConfigEvent),
    AddPeer(AddPeer),
    PeerUp(PeerUp),
    Announce(Announce),
    Withdraw(Withdraw),
    Update { peer: PeerId, update: Update },
    Recorded(Recorded),
    Nexthop(Nexthop),
    PeerDown { id: PeerId },
    Explain(Prefix),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigEvent {
    local_asn: u32,
    router_id: Ipv4Addr,
    #[serde(default = "four")]
    max_paths: usize,
    #[serde(default)]
    multipath_relax: bool,
}

fn four() -> usize {
    4
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AddPeer {
    id: PeerId,
    name: String,
    address: IpAddr,
    asn: u32,
    #[serde(default = "both_families")]
    families: Vec<Family>,
    /// "all", "none" or "unset" (RFC 8212 default); default "all".
    #[serde(default = "all")]
    import: String,
    #[serde(default = "all")]
    export: String,
    #[serde(default)]
    route_reflector_client: bool,
}

fn both_families() -> Vec<Family> {
    vec![Family::Ipv4Unicast, Family::Ipv6Unicast]
}

fn all() -> String {
    "all".into()
}

fn chain(s: &str) -> PolicyChain {
    match s {
        "all" => PolicyChain::All,
        "none" => PolicyChain::None,
        "unset" => PolicyChain::Unset,
        other => PolicyChain::Named(vec![other.to_string()]),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PeerUp {
    id: PeerId,
    router_id: Ipv4Addr,
    #[serde(default = "both_families")]
    families: Vec<Family>,
    #[serde(default)]
    next_hop_v4: Option<Ipv4Addr>,
    #[serde(default)]
    next_hop_v6: Option<std::net::Ipv6Addr>,
    #[serde(default)]
    extended_next_hop_v4: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Announce {
    peer: PeerId,
    prefixes: Vec<Prefix>,
    next_hop: IpAddr,
    #[serde(default)]
    as_path: Vec<u32>,
    #[serde(default)]
    med: Option<u32>,
    #[serde(default)]
    local_pref: Option<u32>,
    #[serde(default)]
    communities: Vec<Community>,
    #[serde(default)]
    large_communities: Vec<LargeCommunity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Withdraw {
    peer: PeerId,
    prefixes: Vec<Prefix>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Recorded {
    peer: PeerId,
    file: String,
    session: String,
    #[serde(default)]
    from: usize,
    #[serde(default)]
    to: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Nexthop {
    address: IpAddr,
    /// "reachable" (with `metric`), "local" or "unreachable" (with `reason`).
    state: String,
    #[serde(default)]
    metric: u32,
    #[serde(default)]
    reason: String,
}

// The RIB's FIB contract and next-hop state, read and built only here (their
// paths may move to a shared crate).
fn fib_json(out: &Outputs) -> Vec<Value> {
    out.fib
        .iter()
        .map(|c| {
            let hops: Vec<String> = c.next_hops.iter().map(|h| h.to_string()).collect();
            let backup: Vec<String> = c.backup.iter().map(|h| h.to_string()).collect();
            if backup.is_empty() {
                json!({ "prefix": c.prefix, "nextHops": hops })
            } else {
                json!({ "prefix": c.prefix, "nextHops": hops, "backup": backup })
            }
        })
        .collect()
}

fn nexthop_state(n: &Nexthop) -> NexthopState {
    match n.state.as_str() {
        "reachable" => NexthopState::Reachable { metric: n.metric },
        "local" => NexthopState::Local,
        "unreachable" => NexthopState::Unreachable(n.reason.clone()),
        other => panic!("unknown next-hop state {other:?}"),
    }
}

/// Classic NLRI for IPv4 with an IPv4 next hop, MP_REACH otherwise
/// (IPv6, or IPv4 with an IPv6 next hop as RFC 8950).
fn announcement(a: &Announce) -> Vec<Update> {
    let attributes = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: AsPath::from_sequence(a.as_path.clone()),
        med: a.med,
        local_pref: a.local_pref,
        communities: a.communities.iter().copied().collect(),
        large_communities: a.large_communities.iter().copied().collect(),
        ..Default::default()
    };
    let mut out = Vec::new();
    for family in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
        let prefixes: Vec<Prefix> = a
            .prefixes
            .iter()
            .filter(|p| Family::of_prefix(p) == family)
            .copied()
            .collect();
        if prefixes.is_empty() {
            continue;
        }
        out.push(match (family, a.next_hop) {
            (Family::Ipv4Unicast, IpAddr::V4(nh)) => Update {
                attributes: PathAttributes {
                    next_hop: Some(nh),
                    ..attributes.clone()
                },
                nlri: prefixes
                    .iter()
                    .map(|p| match p {
                        Prefix::V4(n) => *n,
                        Prefix::V6(_) => unreachable!(),
                    })
                    .collect(),
                ..Default::default()
            },
            _ => Update {
                attributes: attributes.clone(),
                mp_reach: Some(MpReach {
                    family,
                    next_hop: NextHop::new(a.next_hop),
                    nlri: prefixes,
                }),
                ..Default::default()
            },
        });
    }
    out
}

fn withdrawal(w: &Withdraw) -> Update {
    let v6: Vec<Prefix> = w
        .prefixes
        .iter()
        .filter(|p| matches!(p, Prefix::V6(_)))
        .copied()
        .collect();
    Update {
        withdrawn: w
            .prefixes
            .iter()
            .filter_map(|p| match p {
                Prefix::V4(n) => Some(*n),
                Prefix::V6(_) => None,
            })
            .collect(),
        mp_unreach: (!v6.is_empty()).then_some(MpUnreach {
            family: Family::Ipv6Unicast,
            withdrawn: v6,
        }),
        ..Default::default()
    }
}

/// The UPDATEs of `session` in `wire/tests/recorded/FILE.rec`, decoded with
/// the session's 4-octet-AS setting (from its OPEN).
fn recorded_updates(r: &Recorded) -> Vec<Update> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../wire/tests/recorded")
        .join(format!("{}.rec", r.file));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut codec = SessionCodec::default();
    let mut updates = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some((session, hex)) = line.split_once(' ') else {
            continue;
        };
        if session != r.session {
            continue;
        }
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        let (msg, _) = wire::decode_message(&bytes, &codec)
            .expect("recorded message decodes")
            .expect("whole message");
        match msg {
            Message::Open(o) => {
                codec.four_octet_as =
                    o.has_capability(|c| matches!(c, wire::Capability::FourOctetAs(_)))
            }
            Message::Update(u) => updates.push(u),
            _ => {}
        }
    }
    assert!(
        !updates.is_empty(),
        "{}: no UPDATE in session {}",
        path.display(),
        r.session
    );
    let to = r.to.unwrap_or(updates.len()).min(updates.len());
    updates[r.from..to].to_vec()
}

/// JSON without the fields that say nothing (null, false, empty), so that
/// the expected UPDATEs show what they carry.
fn prune(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, prune(v)))
                .filter(|(_, v)| match v {
                    Value::Null | Value::Bool(false) => false,
                    Value::Array(a) => !a.is_empty(),
                    Value::Object(o) => !o.is_empty(),
                    _ => true,
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(prune).collect()),
        other => other,
    }
}

/// What one scenario produced.
struct Run {
    outputs: Vec<Value>,
    explains: String,
    loc_rib: Value,
}

fn run(dir: &Path) -> Run {
    let events_path = dir.join("events.jsonl");
    let text = std::fs::read_to_string(&events_path)
        .unwrap_or_else(|e| panic!("{}: {e}", events_path.display()));
    let mut rib: Option<Rib> = None;
    let mut names = std::collections::BTreeMap::new();
    let mut run = Run {
        outputs: Vec::new(),
        explains: String::new(),
        loc_rib: Value::Null,
    };
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let at = format!("{}:{line_no}", events_path.display());
        let event: Event = serde_json::from_str(trimmed).unwrap_or_else(|e| panic!("{at}: {e}"));
        if let Event::Config(c) = &event {
            assert!(rib.is_none(), "{at}: config must come first");
            rib = Some(Rib::new(RibConfig {
                local_asn: c.local_asn,
                router_id: c.router_id,
                cluster_id: None,
                max_paths: c.max_paths,
                multipath_relax: c.multipath_relax,
                always_compare_med: false,
                install: true,
                policies: Vec::new(),
            }));
            continue;
        }
        let rib = rib.get_or_insert_with(|| panic!("{at}: the first event must be config"));
        let mut out = Outputs::default();
        match event {
            Event::Config(_) => unreachable!(),
            Event::AddPeer(a) => {
                names.insert(a.id, a.name.clone());
                rib.add_peer(
                    a.id,
                    PeerConfig {
                        name: a.name,
                        address: a.address,
                        remote_asn: a.asn,
                        families: a.families,
                        allow_as_in: 0,
                        next_hop_self: false,
                        route_reflector_client: a.route_reflector_client,
                        enforce_first_as: true,
                        import: chain(&a.import),
                        export: chain(&a.export),
                    },
                );
            }
            Event::PeerUp(u) => rib.peer_up(
                u.id,
                SessionInfo {
                    remote_router_id: u.router_id,
                    families: u.families,
                    local_next_hop_v4: u.next_hop_v4,
                    local_next_hop_v6: u.next_hop_v6,
                    extended_next_hop_v4: u.extended_next_hop_v4,
                    local_link_local: None,
                    interface: None,
                },
                &mut out,
            ),
            Event::Announce(a) => {
                for u in announcement(&a) {
                    rib.receive(a.peer, u, &mut out);
                }
            }
            Event::Withdraw(w) => {
                rib.receive(w.peer, withdrawal(&w), &mut out);
            }
            Event::Update { peer, update } => {
                rib.receive(peer, update, &mut out);
            }
            Event::Recorded(r) => {
                for u in recorded_updates(&r) {
                    rib.receive(r.peer, u, &mut out);
                }
            }
            Event::Nexthop(n) => rib.set_nexthop(n.address, nexthop_state(&n), &mut out),
            Event::PeerDown { id } => rib.peer_down(id, &mut out),
            Event::Explain(prefix) => {
                run.explains += &format!("== line {line_no}: explain {prefix}\n");
                run.explains += &rib.explain(&prefix).to_string();
                if !run.explains.ends_with('\n') {
                    run.explains.push('\n');
                }
                continue;
            }
        }
        if out == Outputs::default() {
            continue;
        }
        let updates: Vec<Value> = out
            .updates
            .iter()
            .map(|(to, u)| {
                let name = names.get(to).cloned().unwrap_or_else(|| to.to_string());
                let mut v =
                    json!({ "to": name, "update": prune(serde_json::to_value(u).unwrap()) });
                if let Some(f) = u.end_of_rib() {
                    v["endOfRib"] = json!(f);
                }
                v
            })
            .collect();
        run.outputs.push(json!({
            "line": line_no,
            "event": trimmed,
            "fib": fib_json(&out),
            "updates": updates,
            "watchNexthops": out.watch_nexthops,
        }));
    }
    let rib = rib.unwrap_or_else(|| panic!("{}: no events", events_path.display()));
    run.loc_rib = serde_json::to_value(rib.routes(&RouteQuery::default())).unwrap();
    run
}

fn bless() -> bool {
    std::env::var_os("RIB_BLESS").is_some_and(|v| v == "1")
}

/// Compare `got` with the file `path` (rewritten first when blessing).
fn expect_file(path: &Path, got: &str, failures: &mut Vec<String>) {
    if bless() {
        std::fs::write(path, got).unwrap();
    }
    match std::fs::read_to_string(path) {
        Ok(want) if want == got => {}
        Ok(want) => {
            let first = got
                .lines()
                .zip(want.lines())
                .position(|(g, w)| g != w)
                .unwrap_or_else(|| got.lines().count().min(want.lines().count()));
            failures.push(format!(
                "{} differs from the run, first at line {}:\n  got:  {}\n  want: {}",
                path.display(),
                first + 1,
                got.lines().nth(first).unwrap_or("(end)"),
                want.lines().nth(first).unwrap_or("(end)")
            ));
        }
        Err(e) => failures.push(format!("{}: {e} (run with RIB_BLESS=1)", path.display())),
    }
}

#[test]
fn conformance_scenarios() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .expect("tests/conformance")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("events.jsonl").exists())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no scenario in tests/conformance");
    let mut failures = Vec::new();
    for dir in &dirs {
        let run = run(dir);
        let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap() + "\n";
        expect_file(
            &dir.join("outputs.json"),
            &pretty(&Value::Array(run.outputs)),
            &mut failures,
        );
        expect_file(
            &dir.join("loc_rib.json"),
            &pretty(&run.loc_rib),
            &mut failures,
        );
        expect_file(&dir.join("explain.txt"), &run.explains, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "{} expected files differ ({} scenarios):\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}
