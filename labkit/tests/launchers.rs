//! One namespace test per launcher: start, ready, a query, stop, and no
//! process or namespace left behind. Needs root and the Debian packages
//! `iproute2`, `bird2`, `frr`, `gobgpd` (root in group `frrvty`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use labkit::netns::unique_name;
use labkit::{bird, frr, gobgp, kroute, veth, wait_for, Afi, Netns, ProcId, ScratchDir, Setup};

const GRACE: Duration = Duration::from_secs(5);

/// Removed at the end of the test, kept if it fails.
fn scratch(tag: &str) -> ScratchDir {
    ScratchDir::create(std::env::temp_dir().join(unique_name("labkit", tag))).unwrap()
}

/// Two namespaces joined by a veth, 10.9.0.1/30 + fd09::1/64 on `a`.
fn pair(tag: &str) -> (Netns, Netns) {
    let a = Netns::create(&unique_name("lk", &format!("{tag}a")), &Setup::ROUTER).unwrap();
    let b = Netns::create(&unique_name("lk", &format!("{tag}b")), &Setup::ROUTER).unwrap();
    veth(&a, "eth0", &b, "eth0").unwrap();
    a.add_addr("eth0", "10.9.0.1/30").unwrap();
    a.add_addr("eth0", "fd09::1/64").unwrap();
    b.add_addr("eth0", "10.9.0.2/30").unwrap();
    b.add_addr("eth0", "fd09::2/64").unwrap();
    (a, b)
}

fn gone(ids: &[ProcId], namespaces: &[String]) {
    for id in ids {
        assert!(!id.alive(), "pid {} still runs", id.pid);
    }
    for ns in namespaces {
        assert!(!Netns::exists(ns), "namespace {ns} left behind");
    }
}

#[test]
fn netns_veth_link_local_detach_and_reopen() {
    let (a, b) = pair("nv");
    let ll = a.wait_link_local("eth0", Duration::from_secs(10)).unwrap();
    assert_eq!(ll.segments()[0], 0xfe80);
    a.wait_dad_done("eth0", Duration::from_secs(10)).unwrap();
    // The link works: b reaches a.
    b.run(&["ping", "-c", "1", "-W", "2", "10.9.0.1"]).unwrap();
    let err = a.run(&["false"]).unwrap_err().to_string();
    assert!(err.contains(a.name()), "{err}");

    let kept = a.detach();
    assert!(Netns::exists(&kept));
    let reopened = Netns::open(&kept).unwrap();
    drop(reopened); // re-opened: not deleted on drop
    assert!(Netns::exists(&kept));
    Netns::open(&kept).unwrap().delete().unwrap();
    let b_name = b.name().to_string();
    drop(b);
    gone(&[], &[kept, b_name]);
}

#[test]
fn thread_in_namespace_sees_its_links() {
    let (a, _b) = pair("th");
    let names = a
        .spawn_thread(|| std::fs::read_to_string("/proc/net/dev").unwrap())
        .join()
        .unwrap()
        .unwrap();
    assert!(names.contains("eth0:"), "{names}");
}

#[test]
fn bird_starts_answers_and_stops() {
    let (a, b) = pair("bi");
    let dir = scratch("bird");
    let conf = bird::BirdConfig {
        router_id: "10.9.0.1".into(),
        bgp: vec![bird::BgpProtocol {
            name: "peer".into(),
            local_address: "10.9.0.1".into(),
            local_as: 65001,
            neighbor_address: "10.9.0.2".into(),
            neighbor_as: 65002,
            options: vec!["passive on;".into()],
            channels: vec![bird::Channel::all(Afi::Ipv4)],
        }],
        ..Default::default()
    };
    let mut bird = bird::Bird::start(&a, &bird::BirdSpec::new(dir.path(), conf.render())).unwrap();
    let line = bird.protocol_line("peer").unwrap().unwrap();
    assert!(line.contains("BGP"), "{line}");
    // Reconfigured with a second protocol, BIRD shows it.
    let mut more = conf.clone();
    more.bgp.push(bird::BgpProtocol {
        name: "peer2".into(),
        neighbor_address: "10.9.0.3".into(),
        ..conf.bgp[0].clone()
    });
    bird.configure(&more.render()).unwrap();
    wait_for("protocol peer2", Duration::from_secs(10), || {
        bird.protocol_line("peer2").ok().flatten()
    })
    .unwrap();
    assert!(bird.configure("protocol nonsense;").is_err());
    let id = bird.process().id();
    bird.stop(GRACE).unwrap();
    let names = [a.name().to_string(), b.name().to_string()];
    drop((a, b));
    gone(&[id], &names);
}

#[test]
fn frr_with_bfdd_starts_answers_and_stops() {
    let (a, b) = pair("fr");
    let instance = a.name().to_string();
    let bgpd = frr::BgpdConfig {
        hostname: instance.clone(),
        asn: 65001,
        router_id: "10.9.0.1".into(),
        neighbors: vec![frr::Neighbor {
            address: "10.9.0.2".into(),
            remote_as: 65002,
            bfd: true,
            families: vec![(Afi::Ipv4, vec![])],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut spec = frr::FrrSpec::new(&instance, bgpd.render());
    spec.bfdd_conf = Some(frr::bfdd_config(
        &instance,
        &[frr::BfdPeer {
            address: "10.9.0.2".into(),
            local_address: Some("10.9.0.1".into()),
            receive_interval_ms: 300,
            transmit_interval_ms: 300,
            detect_multiplier: 3,
        }],
    ));
    let mut f = frr::Frr::start(&a, &spec).unwrap();
    let ids: Vec<ProcId> = [frr::Daemon::Zebra, frr::Daemon::Bgpd, frr::Daemon::Bfdd]
        .map(|d| f.daemon(d).expect("daemon runs").id())
        .to_vec();
    let n = f.vtysh_json("show bgp neighbors 10.9.0.2 json").unwrap();
    assert_eq!(n["10.9.0.2"]["remoteAs"], 65002, "{n}");
    let peers = f.vtysh_json("show bfd peers json").unwrap();
    assert!(
        peers.to_string().contains("10.9.0.2"),
        "bfdd has the peer: {peers}"
    );
    assert!(f.vtysh(&["show nonsense"]).is_err());
    let dir = f.run_dir().to_path_buf();
    drop(f);
    assert!(!dir.exists(), "run dir {} left behind", dir.display());
    let names = [a.name().to_string(), b.name().to_string()];
    drop((a, b));
    gone(&ids, &names);
}

#[test]
fn gobgp_starts_answers_and_stops() {
    let (a, b) = pair("go");
    let dir = scratch("gobgp");
    let conf = gobgp::GobgpConfig {
        asn: 65001,
        router_id: "10.9.0.1".into(),
        port: Some(-1),
        neighbors: vec![gobgp::Neighbor {
            address: "10.9.0.2".into(),
            peer_as: 65002,
            families: vec!["ipv4-unicast".into()],
            ..Default::default()
        }],
    };
    let mut g = gobgp::Gobgp::start(&a, &gobgp::GobgpSpec::new(dir.path(), conf.render())).unwrap();
    let global = g.cli().json(&["global"]).unwrap();
    assert_eq!(global["asn"], 65001, "{global}");
    assert_eq!(global["listen_port"], -1, "{global}");
    g.cli()
        .run(&["global", "rib", "add", "-a", "ipv4", "10.99.0.0/24"])
        .unwrap();
    let rib = g.cli().json(&["global", "rib", "-a", "ipv4"]).unwrap();
    assert!(rib.get("10.99.0.0/24").is_some(), "{rib}");
    let id = g.process().id();
    g.stop(GRACE).unwrap();
    let names = [a.name().to_string(), b.name().to_string()];
    drop((a, b));
    gone(&[id], &names);
}

/// The kroute binary of this workspace, built by `cargo build -p kroute`
/// (or named by KROUTE_BIN).
fn kroute_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KROUTE_BIN") {
        return Some(p.into());
    }
    // CARGO_TARGET_TMPDIR is TARGET/tmp; the binary is TARGET/debug/kroute.
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../debug/kroute");
    p.is_file().then_some(p)
}

#[test]
fn kroute_starts_answers_restarts_and_stops() {
    let Some(bin) = kroute_bin() else {
        panic!("no kroute binary: run `cargo build -p kroute` first, or set KROUTE_BIN");
    };
    let (a, b) = pair("kr");
    let dir = scratch("kroute");
    let yaml = format!(
        "router:\n  asn: 65001\n  routerId: 10.9.0.1\napi:\n  socket: \"{}\"\n\
         kernel: {{ install: false }}\npeers:\n  - name: b\n    address: \"10.9.0.2\"\n    \
         asn: 65002\n    families: [ipv4-unicast]\n    import: all\n    export: all\n",
        dir.file("kroute.sock").display()
    );
    let mut k =
        kroute::Kroute::start(&a, kroute::KrouteSpec::in_dir(&bin, dir.path(), yaml)).unwrap();
    let neighbors = k.cli_json(&["show", "neighbors"]).unwrap();
    assert_eq!(neighbors[0]["name"], "b", "{neighbors}");
    let first = k.process().unwrap().id();
    k.restart().unwrap();
    let second = k.process().unwrap().id();
    assert!(!first.alive());
    assert_ne!(first, second);
    let status = k.stop(GRACE).unwrap().unwrap();
    assert!(status.success(), "kroute exits 0 on SIGTERM: {status}");
    assert!(k.cli(&["show", "neighbors"]).is_err());
    let names = [a.name().to_string(), b.name().to_string()];
    drop((a, b));
    gone(&[first, second], &names);
}
