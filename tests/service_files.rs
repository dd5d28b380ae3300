//! `deploy/systemd/kroute.service`: it parses (sections, known keys, the
//! hardening the issue asks for), its commands are kroute's real command
//! lines and its binary is where the README installs it;
//! `systemd-analyze verify` (and `security --offline`) accept it when
//! systemd-analyze is installed; and the user and capabilities it gives
//! kroute are enough: kroute as uid 65534 with exactly its
//! `AmbientCapabilities` (and `CapabilityBoundingSet`, no new privileges)
//! binds port 179, establishes a session with BIRD and installs its route.
//! The last test needs root and `bird2` (see `common/mod.rs`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::bird::Bird;
use common::kroute::{self as k, BIN};
use common::peer::{PeerDaemon, PeerNeighbor, PeerSpec};
use common::scenarios::{ADV4, KROUTE_ASN, PEER_ASN, V4};
use common::{netns, test_dir, veth, wait_until, CONVERGE};
use kroute::api::Client;
use kroute::events::SessionState;
use labkit::Spawn;

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/systemd/kroute.service");
const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");

/// section → key → values (a key may repeat).
type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// Parses the unit file as systemd.syntax(7) does (no continuation lines
/// in ours).
fn parse_unit(text: &str) -> Unit {
    let mut unit = Unit::new();
    let mut section: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(!line.ends_with('\\'), "line {}: continuation", n + 1);
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.to_string());
            unit.entry(name.to_string()).or_default();
            continue;
        }
        let s = section
            .as_ref()
            .unwrap_or_else(|| panic!("line {}: key before any section", n + 1));
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("line {}: not KEY=VALUE: {line}", n + 1));
        unit.get_mut(s)
            .unwrap()
            .entry(key.trim().to_string())
            .or_default()
            .push(value.trim().to_string());
    }
    unit
}

fn one<'a>(unit: &'a Unit, section: &str, key: &str) -> &'a str {
    let v = unit
        .get(section)
        .and_then(|s| s.get(key))
        .unwrap_or_else(|| panic!("[{section}] {key}= missing"));
    assert_eq!(v.len(), 1, "[{section}] {key}= more than once");
    &v[0]
}

/// Keys of systemd.unit(5), systemd.service(5), systemd.exec(5),
/// systemd.kill(5) and systemd.resource-control(5) this unit may use: a
/// misspelt key is ignored by systemd with a warning, so it is an error here.
const KNOWN: &[(&str, &[&str])] = &[
    (
        "Unit",
        &[
            "Description",
            "Documentation",
            "After",
            "Wants",
            "Requires",
            "Before",
        ],
    ),
    (
        "Service",
        &[
            "Type",
            "NotifyAccess",
            "User",
            "Group",
            "ExecStartPre",
            "ExecStart",
            "ExecReload",
            "Restart",
            "RestartSec",
            "TimeoutStartSec",
            "TimeoutStopSec",
            "RuntimeDirectory",
            "RuntimeDirectoryMode",
            "StateDirectory",
            "StateDirectoryMode",
            "CapabilityBoundingSet",
            "AmbientCapabilities",
            "NoNewPrivileges",
            "ProtectSystem",
            "ReadWritePaths",
            "ProtectHome",
            "PrivateTmp",
            "PrivateDevices",
            "ProtectKernelTunables",
            "ProtectKernelModules",
            "ProtectKernelLogs",
            "ProtectControlGroups",
            "ProtectClock",
            "ProtectHostname",
            "RestrictAddressFamilies",
            "RestrictNamespaces",
            "RestrictRealtime",
            "RestrictSUIDSGID",
            "LockPersonality",
            "MemoryDenyWriteExecute",
            "SystemCallArchitectures",
            "UMask",
            "LimitNOFILE",
        ],
    ),
    ("Install", &["WantedBy"]),
];

/// Where the README's install line puts the binary
/// (`install -m 0755 target/release/kroute PATH`).
fn readme_binary_path() -> String {
    let readme = std::fs::read_to_string(README).unwrap();
    let line = readme
        .lines()
        .find(|l| l.contains("install -m 0755 target/release/kroute "))
        .expect("the README installs the binary with `install -m 0755 target/release/kroute PATH`");
    line.split("target/release/kroute ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// `line` split into words, with the unit's binary replaced by the built
/// one and `/etc/kroute/kroute.yaml` by `config`.
fn command(line: &str, bin: &str, config: &Path) -> Vec<String> {
    line.split_whitespace()
        .map(|w| match w {
            w if w == bin => BIN.to_string(),
            "/etc/kroute/kroute.yaml" => config.display().to_string(),
            w => w.to_string(),
        })
        .collect()
}

fn run(argv: &[String]) -> std::process::Output {
    Command::new(&argv[0]).args(&argv[1..]).output().unwrap()
}

#[test]
fn the_unit_parses_and_its_commands_are_kroute_command_lines() {
    let unit = parse_unit(&std::fs::read_to_string(UNIT).unwrap());
    for (section, keys) in &unit {
        let known = KNOWN
            .iter()
            .find(|(s, _)| s == section)
            .unwrap_or_else(|| panic!("unknown section [{section}]"))
            .1;
        for key in keys.keys() {
            assert!(
                known.contains(&key.as_str()),
                "unknown key [{section}] {key}="
            );
        }
    }
    assert_eq!(one(&unit, "Service", "Type"), "notify");
    assert_eq!(one(&unit, "Service", "Restart"), "on-failure");
    assert_eq!(one(&unit, "Service", "ProtectSystem"), "strict");
    assert_eq!(one(&unit, "Service", "NoNewPrivileges"), "yes");
    assert_eq!(one(&unit, "Install", "WantedBy"), "multi-user.target");
    let caps = |key| {
        let mut v: Vec<&str> = one(&unit, "Service", key).split_whitespace().collect();
        v.sort();
        v
    };
    let three = ["CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"];
    assert_eq!(caps("CapabilityBoundingSet"), three);
    assert_eq!(caps("AmbientCapabilities"), three);
    // ProtectSystem=strict: everything read-only but what kroute writes.
    let writable: Vec<&str> = one(&unit, "Service", "ReadWritePaths")
        .split_whitespace()
        .collect();
    assert_eq!(writable, ["/run/kroute", "/var/lib/kroute"]);
    assert_eq!(one(&unit, "Service", "RuntimeDirectory"), "kroute");
    assert_eq!(one(&unit, "Service", "StateDirectory"), "kroute");

    // The binary is where the README installs it; the daemon's config
    // and API socket are the defaults the CLI finds without flags.
    let bin = readme_binary_path();
    let start = one(&unit, "Service", "ExecStart");
    assert_eq!(start, format!("{bin} daemon -c /etc/kroute/kroute.yaml"));
    let pre = one(&unit, "Service", "ExecStartPre");
    let reload = one(&unit, "Service", "ExecReload");
    assert!(pre.starts_with(&format!("{bin} config check ")), "{pre}");
    assert!(
        reload.starts_with(&format!("{bin} ")) && reload.ends_with(" reload"),
        "{reload}"
    );

    // ExecStartPre passes a good config and fails a bad one with its place.
    let dir = test_dir("unit-check");
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node.yaml");
    let out = run(&command(pre, &bin, &good));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = dir.path().join("kroute.yaml");
    std::fs::write(&bad, "router:\n  asn: 65001\n  routerid: 10.0.0.1\n").unwrap();
    let out = run(&command(pre, &bin, &bad));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("kroute.yaml:3:"), "{stderr}");
    // ExecReload's words are a command kroute knows (it fails here only
    // for want of a daemon, and says so).
    let out = run(&command(reload, &bin, &good));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("unrecognized") && !stderr.contains("Usage:"),
        "{stderr}"
    );
}

#[test]
fn systemd_analyze_accepts_the_unit() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze not installed: the parse test above is the check");
        return;
    }
    // verify wants the ExecStart binaries to exist: a copy of the unit
    // pointing at the built one.
    let dir = test_dir("unit-verify");
    let bin = readme_binary_path();
    let copy = dir.path().join("kroute.service");
    std::fs::write(
        &copy,
        std::fs::read_to_string(UNIT).unwrap().replace(&bin, BIN),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // verify exits 0 on unknown keys too, only warning: any output fails.
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    // The hardening as systemd scores it (0 best, 10 worst; "OK" <= 4.9).
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=40"])
        .arg(&copy)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
}

#[test]
fn the_units_user_and_capabilities_are_enough_for_a_session() {
    let unit = parse_unit(&std::fs::read_to_string(UNIT).unwrap());
    let caps: Vec<String> = one(&unit, "Service", "AmbientCapabilities")
        .split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    let caps = caps.join(",");

    let k_ns = netns("ksvc");
    let b_ns = netns("bsvc");
    let (k4, b4) = ("10.1.0.1", "10.1.0.2");
    let _v = veth(&k_ns, &b_ns, &[&format!("{k4}/24")], &[&format!("{b4}/24")]);
    // The directory stands for /etc/kroute, /run/kroute and the journal.
    let dir = test_dir("unit-caps");
    std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
    let config = dir.path().join("kroute.yaml");
    let socket = dir.path().join("kroute.sock");
    let mut cfg = k::config(KROUTE_ASN, "10.255.0.1");
    cfg.peers.push(k::peer("bird", b4, PEER_ASN, &[V4]));
    cfg.advertise = k::advertise(&[ADV4]);
    cfg.api.socket = socket.clone();
    std::fs::write(&config, labkit::kroute::to_yaml(&cfg).unwrap()).unwrap();

    let conf = config.to_str().unwrap();
    let mut daemon = Spawn::new(
        "kroute-as-nobody",
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            &format!("--inh-caps=-all,{caps}"),
            &format!("--ambient-caps=-all,{caps}"),
            &format!("--bounding-set=-all,{caps}"),
            "--no-new-privs",
            BIN,
            "daemon",
            "-c",
            conf,
        ],
    )
    .netns(&k_ns)
    .log(&dir.path().join("kroute.log"))
    .start()
    .unwrap();
    let client = Client::new(&socket);
    wait_until(Duration::from_secs(10), "the API answers", || {
        daemon.check_alive().map_err(|e| e.to_string())?;
        client.neighbors().map_err(|e| e.to_string())
    });
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid())).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("65534")),
        "{status}"
    );

    let mut bird = Bird::start(
        &b_ns,
        PeerSpec {
            asn: PEER_ASN,
            router_id: b4.into(),
            neighbors: vec![PeerNeighbor::new(k4, b4, KROUTE_ASN, &[V4])],
            install_kernel: false,
        },
    );
    bird.announce("10.122.1.0/24");
    wait_until(CONVERGE, "session up and the route in the kernel", || {
        daemon.check_alive().map_err(|e| e.to_string())?;
        let n = client.neighbors().map_err(|e| e.to_string())?;
        let up = n.iter().any(|n| n.state == SessionState::Established);
        let routes = k_ns
            .output(&["ip", "route", "show", "10.122.1.0/24", "proto", "bgp"])
            .map_err(|e| e.to_string())?;
        let routes = String::from_utf8_lossy(&routes.stdout).to_string();
        (up && routes.contains(&format!("via {b4}")))
            .then_some(())
            .ok_or_else(|| format!("{n:?} {routes:?}\n{}", daemon.log_tail(10)))
    });
    // kroute's own prefix reached BIRD over the session it accepted or made.
    wait_until(CONVERGE, "BIRD has kroute's prefix", || {
        (!bird.routes_for(ADV4).is_empty())
            .then_some(())
            .ok_or_else(|| format!("{:?}", bird.rib()))
    });
    // The reload command of the unit works against it.
    let reload = one(&unit, "Service", "ExecReload");
    let bin = readme_binary_path();
    let out = run(&command(reload, &bin, &config));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    daemon.stop(Duration::from_secs(10)).unwrap();
}
