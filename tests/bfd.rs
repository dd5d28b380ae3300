//! BFD (RFC 5880/5881) against FRR's bfdd and BIRD's `protocol bfd`: the
//! session comes Up on both sides; when the peer silently stops answering
//! (its daemons SIGSTOPped: no carrier change, the TCP session stays
//! open), kroute's kernel routes via it leave within a detection time
//! (300 ms × 3 here; the bound asserted is a generous 3 s, the time
//! measured is printed); when it answers again, BFD and the routes come
//! back. Needs root, `frr` and `bird2` (see `common/mod.rs`).

mod common;

use std::time::{Duration, Instant};

use common::kroute::{self as k, Kroute};
use common::{netns, route_via, test_dir, veth, wait_until, Stopped, CONVERGE};
use kroute::api::views::{BfdSessionView, BfdState};
use kroute::api::Client;
use labkit::bird::{self as lb, BgpProtocol, BirdConfig, Channel, StaticProtocol, StaticRoute};
use labkit::frr::{self as lf, BgpdConfig, FrrSpec, Neighbor};
use labkit::{Afi, Netns};

const KROUTE_ASN: u32 = 65001;
const PEER_ASN: u32 = 65002;
const K4: &str = "10.1.0.1";
const P4: &str = "10.1.0.2";

/// The link to the peer and what the peer announces over it.
struct Link {
    /// kroute's address, the peer's, their prefix length.
    k: &'static str,
    p: &'static str,
    len: u8,
    afi: Afi,
    prefix: &'static str,
    /// The gateway of kroute's kernel route to `prefix`.
    via: &'static str,
}

const V4: Link = Link {
    k: K4,
    p: P4,
    len: 24,
    afi: Afi::Ipv4,
    prefix: "10.100.0.0/24",
    via: P4,
};
const V6: Link = Link {
    k: "fd00:1::1",
    p: "fd00:1::2",
    len: 64,
    afi: Afi::Ipv6,
    prefix: "fd00:100::/48",
    via: "fd00:1::2",
};
/// Two hops: kroute — router (10.1.0.254 | 10.2.0.254) — peer.
const MULTIHOP: Link = Link {
    k: K4,
    p: "10.2.0.2",
    len: 24,
    afi: Afi::Ipv4,
    prefix: "10.100.0.0/24",
    via: "10.1.0.254",
};

impl Link {
    fn between(&self, k_ns: &Netns, p_ns: &Netns) {
        veth(
            k_ns,
            p_ns,
            &[&format!("{}/{}", self.k, self.len)],
            &[&format!("{}/{}", self.p, self.len)],
        );
    }

    fn family(&self) -> &'static str {
        match self.afi {
            Afi::Ipv4 => "ipv4-unicast",
            Afi::Ipv6 => "ipv6-unicast",
        }
    }
}
/// What a 300 ms × 3 session may take to notice, with a wide margin for a
/// loaded test machine (the expected time is about 0.9 s).
const DETECT_BOUND: Duration = Duration::from_secs(3);

/// kroute in `k_ns` with one BFD peer across `l` (300 ms × 3), `hops`
/// router hops away (`multihop`, above 1 a multihop BFD session).
fn kroute_with_bfd_peer(k_ns: &Netns, l: &Link, hops: Option<u8>) -> Kroute {
    let mut cfg = k::config(KROUTE_ASN, "10.255.0.1");
    let mut peer = k::peer("peer", l.p, PEER_ASN, &[l.family()]);
    peer.local_address = Some(l.k.parse().unwrap());
    peer.multihop = hops;
    peer.bfd = Some(kroute::config::Bfd {
        interval: 300,
        multiplier: 3,
    });
    cfg.peers.push(peer);
    Kroute::start(k_ns, cfg)
}

fn bfd_sessions(k: &Kroute) -> Vec<BfdSessionView> {
    Client::new(k.socket())
        .bfd()
        .unwrap_or_else(|e| panic!("show bfd: {e}"))
}

fn kroute_bfd_state(k: &Kroute) -> Result<BfdSessionView, String> {
    bfd_sessions(k)
        .into_iter()
        .find(|s| s.peer == "peer")
        .ok_or_else(|| "no BFD session for peer".to_string())
}

fn wait_kroute_bfd(k: &Kroute, state: BfdState) -> BfdSessionView {
    wait_until(CONVERGE, &format!("kroute's BFD session {state}"), || {
        let s = kroute_bfd_state(k)?;
        if s.state == state {
            Ok(s)
        } else {
            Err(format!("{s:?}"))
        }
    })
}

fn wait_route(k_ns: &Netns, l: &Link) {
    wait_until(
        CONVERGE,
        &format!("{} via {} in kroute's kernel", l.prefix, l.via),
        || match route_via(k_ns, l.prefix) {
            // On a shared link the peer's global + link-local IPv6 next
            // hop is installed via the link-local.
            Some(nhs)
                if nhs.iter().any(|(gw, _)| {
                    gw == l.via || (l.via.contains(':') && gw.starts_with("fe80:"))
                }) =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        },
    )
}

/// The scenario, once the peer daemon runs with BFD and announces
/// `l.prefix`: `peer_bfd_up` says whether the peer sees its session Up;
/// `pids` are the peer's processes to freeze.
fn detect_and_recover(
    k_ns: &Netns,
    kroute: &Kroute,
    l: &Link,
    who: &str,
    pids: Vec<u32>,
    peer_bfd_up: &dyn Fn() -> Result<(), String>,
) {
    wait_route(k_ns, l);
    let up = wait_kroute_bfd(kroute, BfdState::Up);
    wait_until(CONVERGE, "the peer's BFD session Up", peer_bfd_up);
    assert_ne!(up.remote_discriminator, 0);
    assert_eq!(up.tx_interval_us, 300_000, "agreed after the Poll: {up:?}");
    assert_eq!(up.detect_time_us, Some(900_000), "{up:?}");
    assert_eq!(
        kroute.neighbor("peer").and_then(|n| n.bfd),
        Some(BfdState::Up),
        "show neighbors has the BFD state"
    );
    let table = kroute.cli_ok(&["show", "bfd"]);
    assert!(table.contains("peer") && table.contains("Up"), "{table}");
    let neighbors = kroute.cli_ok(&["show", "neighbors"]);
    assert!(neighbors.contains("BFD"), "{neighbors}");

    // Silence: the peer's processes freeze; links and TCP stay.
    let stopped = Stopped::stop(pids);
    let t0 = Instant::now();
    let gone = loop {
        if route_via(k_ns, l.prefix).is_none() {
            break t0.elapsed();
        }
        assert!(
            t0.elapsed() < DETECT_BOUND,
            "{} still in the kernel {:?} after the peer went silent; BFD: {:?}",
            l.prefix,
            t0.elapsed(),
            kroute_bfd_state(kroute)
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    println!(
        "BFD ({who}): {} left kroute's kernel {gone:?} after the peer went silent",
        l.prefix
    );
    let down = wait_kroute_bfd(kroute, BfdState::Down);
    assert_eq!(
        down.diagnostic, "control detection time expired",
        "{down:?}"
    );
    assert_eq!(down.remote_discriminator, 0, "RFC 5880 §6.8.1");
    // Up (through Init, or at once when the peer was in Init), Down.
    assert!(down.state_changes >= 2, "{down:?}");
    let n = kroute.neighbor("peer").expect("peer still configured");
    assert_eq!(n.bfd, Some(BfdState::Down));

    // The peer answers again: BFD and the routes come back.
    drop(stopped);
    let back = wait_kroute_bfd(kroute, BfdState::Up);
    // The freeze outlasted the detection time, measured from the peer's
    // last packet: it shows as the peer's longest silence.
    assert!(
        back.rx_gap_max_us >= 900_000,
        "the peer's silence not counted: {back:?}"
    );
    wait_until(CONVERGE, "the peer's BFD session Up again", peer_bfd_up);
    wait_route(k_ns, l);
}

#[test]
fn frr_bfdd_failure_detected_and_recovered() {
    frr_case(&V4, "4");
}

#[test]
fn frr_bfdd_failure_detected_and_recovered_ipv6() {
    frr_case(&V6, "6");
}

fn frr_case(l: &Link, tag: &str) {
    let who = &format!("FRR, IPv{tag}");
    let k_ns = netns(&format!("kbfdf{tag}"));
    let f_ns = netns(&format!("fbfdf{tag}"));
    l.between(&k_ns, &f_ns);
    let bgpd = BgpdConfig {
        hostname: f_ns.name().to_string(),
        asn: PEER_ASN,
        router_id: P4.to_string(),
        timers: Some((3, 9)),
        graceful_restart_disable: true,
        neighbors: vec![Neighbor {
            address: l.k.to_string(),
            remote_as: KROUTE_ASN,
            connect_timer: Some(2),
            update_source: Some(l.p.to_string()),
            advertisement_interval: Some(0),
            bfd: true,
            families: vec![(l.afi, vec![])],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut spec = FrrSpec::new(f_ns.name(), bgpd.render());
    spec.bfdd_conf = Some(lf::bfdd_config(
        f_ns.name(),
        &[lf::BfdPeer {
            address: l.k.to_string(),
            local_address: Some(l.p.to_string()),
            receive_interval_ms: 300,
            transmit_interval_ms: 300,
            detect_multiplier: 3,
        }],
    ));
    let frr = lf::Frr::start(&f_ns, &spec).unwrap_or_else(|e| panic!("{e}"));
    frr.vtysh(&[
        "conf t",
        &format!("router bgp {PEER_ASN}"),
        &format!("address-family {} unicast", l.afi.name()),
        &format!("network {}", l.prefix),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let kroute = kroute_with_bfd_peer(&k_ns, l, None);
    let frr_up = || {
        let v = frr
            .vtysh_json("show bfd peers json")
            .map_err(|e| e.to_string())?;
        let peers = v.as_array().cloned().unwrap_or_default();
        match peers.iter().find(|p| p["peer"] == l.k) {
            Some(p) if p["status"] == "up" => Ok(()),
            other => Err(format!("FRR bfd peer {}: {other:?}", l.k)),
        }
    };
    detect_and_recover(&k_ns, &kroute, l, who, frr.pids(), &frr_up);
    drop(kroute);
    drop(frr);
}

#[test]
fn bird_bfd_failure_detected_and_recovered() {
    let k_ns = netns("kbfdb");
    let b_ns = netns("bbfdb");
    V4.between(&k_ns, &b_ns);
    let config = BirdConfig {
        router_id: P4.to_string(),
        device_scan_time: Some(10),
        statics: vec![StaticProtocol {
            name: "s4".into(),
            afi: Afi::Ipv4,
            routes: vec![StaticRoute {
                prefix: V4.prefix.into(),
                attrs: vec![],
            }],
        }],
        bgp: vec![BgpProtocol {
            name: "kroute".into(),
            local_address: P4.into(),
            local_as: PEER_ASN,
            neighbor_address: K4.into(),
            neighbor_as: KROUTE_ASN,
            options: vec![
                "connect delay time 1;".into(),
                "connect retry time 2;".into(),
                "error wait time 1, 4;".into(),
                "hold time 9;".into(),
                "keepalive time 3;".into(),
                "graceful restart off;".into(),
                "bfd on;".into(),
            ],
            channels: vec![Channel::all(Afi::Ipv4)],
        }],
        ..Default::default()
    }
    .render()
        + "protocol bfd {\n  interface \"*\" {\n    min rx interval 300 ms;\n    \
           min tx interval 300 ms;\n    idle tx interval 1000 ms;\n    multiplier 3;\n  };\n}\n";
    let dir = test_dir("bird-bfd");
    let bird = lb::Bird::start(&b_ns, &lb::BirdSpec::new(dir.path(), config))
        .unwrap_or_else(|e| panic!("{e}"));
    let kroute = kroute_with_bfd_peer(&k_ns, &V4, None);
    let bird_up = || {
        let out = bird
            .birdc(&["show", "bfd", "sessions"])
            .map_err(|e| e.to_string())?;
        match out.lines().find(|l| l.trim_start().starts_with(K4)) {
            Some(l) if l.contains("Up") => Ok(()),
            _ => Err(format!("BIRD bfd sessions:\n{out}")),
        }
    };
    detect_and_recover(&k_ns, &kroute, &V4, "BIRD", vec![bird.pid()], &bird_up);
    drop(kroute);
    drop(bird);
}

/// RFC 5882 §4.3.2: BIRD's BFD shares fate with its control plane (C bit
/// clear) and, started in graceful restart recovery (`-R`), it says its
/// forwarding survives a restart (F bit). Frozen, its BFD goes Down: kroute
/// closes the BGP session without a NOTIFICATION and keeps its route in
/// the kernel, stale, instead of removing it (polled every 50 ms); BIRD
/// wakes up, reconnects, re-sends it with End-of-RIB, and nothing is
/// stale any more.
#[test]
fn bird_bfd_down_with_forwarding_state_keeps_routes_stale() {
    let k_ns = netns("kbfdg");
    let b_ns = netns("bbfdg");
    V4.between(&k_ns, &b_ns);
    let config = BirdConfig {
        router_id: P4.to_string(),
        device_scan_time: Some(10),
        statics: vec![StaticProtocol {
            name: "s4".into(),
            afi: Afi::Ipv4,
            routes: vec![StaticRoute {
                prefix: V4.prefix.into(),
                attrs: vec![],
            }],
        }],
        bgp: vec![BgpProtocol {
            name: "kroute".into(),
            local_address: P4.into(),
            local_as: PEER_ASN,
            neighbor_address: K4.into(),
            neighbor_as: KROUTE_ASN,
            options: vec![
                "connect delay time 1;".into(),
                "connect retry time 2;".into(),
                "error wait time 1, 4;".into(),
                "hold time 9;".into(),
                "keepalive time 3;".into(),
                "graceful restart on;".into(),
                "graceful restart time 30;".into(),
                "bfd on;".into(),
            ],
            channels: vec![Channel::all(Afi::Ipv4)],
        }],
        ..Default::default()
    }
    .render()
        + "protocol bfd {\n  interface \"*\" {\n    min rx interval 300 ms;\n    \
           min tx interval 300 ms;\n    idle tx interval 1000 ms;\n    multiplier 3;\n  };\n}\n";
    let dir = test_dir("bird-bfd-gr");
    let bird = lb::Bird::start(
        &b_ns,
        &lb::BirdSpec {
            recovery: true,
            ..lb::BirdSpec::new(dir.path(), config)
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let kroute = kroute_with_bfd_peer(&k_ns, &V4, None);
    wait_route(&k_ns, &V4);
    wait_kroute_bfd(&kroute, BfdState::Up);
    let gr = kroute
        .neighbor("peer")
        .and_then(|n| n.graceful_restart)
        .expect("BIRD's graceful restart capability");
    assert!(
        !gr.forwarding_preserved.is_empty(),
        "bird -R sets the F bit: {gr:?}"
    );

    let stopped = Stopped::stop(vec![bird.pid()]);
    let t0 = Instant::now();
    let down = wait_kroute_bfd(&kroute, BfdState::Down);
    assert!(t0.elapsed() < DETECT_BOUND, "{:?}: {down:?}", t0.elapsed());
    // Well past the detection: still there, stale.
    while t0.elapsed() < Duration::from_secs(4) {
        assert!(
            route_via(&k_ns, V4.prefix).is_some(),
            "{} left the kernel {:?} after BIRD froze",
            V4.prefix,
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let routes = kroute.routes(V4.prefix);
    assert!(
        routes.iter().any(|r| r.stale.is_some()),
        "kept as stale: {routes:?}"
    );
    assert!(
        kroute.log_tails(200).contains("C bit clear"),
        "{}",
        kroute.log_tails(50)
    );

    drop(stopped);
    wait_until(CONVERGE, "BIRD's session Established again", || {
        kroute.established("peer")
    });
    wait_until(CONVERGE, "no stale route left", || {
        let r = kroute.routes(V4.prefix);
        if !r.is_empty() && r.iter().all(|r| r.stale.is_none()) {
            Ok(())
        } else {
            Err(format!("{r:?}"))
        }
    });
    assert!(route_via(&k_ns, V4.prefix).is_some());
    drop(kroute);
    drop(bird);
}

/// The single-hop rules on the wire, with a hand-made peer: kroute sends
/// from a port in 49152–65535 to 3784 and starts slow (1 s, RFC 5880
/// §6.8.3); it takes a packet only with TTL 255 (RFC 5881 §5); a reload
/// with new timers starts a new session, and one that drops `bfd` ends
/// it with AdminDown.
#[test]
fn single_hop_rules_and_reload() {
    use kroute::bfd::fsm::{Session, Timers};
    use kroute::bfd::packet::{ControlPacket, State};
    use std::net::UdpSocket;

    let k_ns = netns("kbfdt");
    let p_ns = netns("pbfdt");
    V4.between(&k_ns, &p_ns);
    let mut kroute = kroute_with_bfd_peer(&k_ns, &V4, None);

    // What kroute sends, seen from the peer's side.
    let (from, first) = p_ns
        .spawn_thread(|| {
            let sock = UdpSocket::bind((P4, 3784)).expect("bind 3784");
            sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 64];
            let (n, from) = sock.recv_from(&mut buf).expect("a BFD packet from kroute");
            (
                from,
                ControlPacket::decode(&buf[..n]).expect("valid packet"),
            )
        })
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(from.ip().to_string(), K4);
    assert!((49152..=65535).contains(&from.port()), "source port {from}");
    assert_eq!(first.state, State::Down);
    assert_eq!(first.your_discr, 0);
    assert_eq!(first.desired_min_tx, 1_000_000, "slow start");
    assert_eq!(first.required_min_rx, 300_000);
    assert_eq!(first.detect_mult, 3);

    // Our peer's Down packet, sent with a TTL.
    let send = |ttl: u32| {
        p_ns.spawn_thread(move || {
            let p = Session::new(0x77, Timers::default()).packet(false);
            let sock = UdpSocket::bind((P4, 49999)).expect("bind");
            sock.set_ttl(ttl).unwrap();
            for _ in 0..3 {
                sock.send_to(&p.encode(), (K4, 3784)).expect("send");
            }
        })
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    };
    send(64);
    std::thread::sleep(Duration::from_millis(300));
    let s = kroute_bfd_state(&kroute).unwrap();
    assert_eq!(s.packets_in, 0, "TTL 64 must be dropped: {s:?}");
    assert_eq!(s.state, BfdState::Down);
    send(255);
    let s = wait_until(CONVERGE, "kroute to take the TTL 255 packets", || {
        let s = kroute_bfd_state(&kroute)?;
        if s.packets_in > 0 {
            Ok(s)
        } else {
            Err(format!("{s:?}"))
        }
    });
    assert_eq!(s.remote_discriminator, 0x77);
    assert_eq!(s.state, BfdState::Init, "Down + remote Down -> Init");

    // New timers: a new session. No `bfd`: no session, no BFD column.
    let discr = s.local_discriminator;
    k::peer_mut(&mut kroute.config, "peer").bfd = Some(kroute::config::Bfd {
        interval: 500,
        multiplier: 5,
    });
    kroute.reload();
    let s = wait_until(CONVERGE, "the session with the new timers", || {
        let s = kroute_bfd_state(&kroute)?;
        if s.detect_multiplier == 5 {
            Ok(s)
        } else {
            Err(format!("{s:?}"))
        }
    });
    assert_ne!(s.local_discriminator, discr);
    assert_eq!(s.required_min_rx_us, 500_000);
    // Removed, the session says AdminDown (RFC 5880 §6.8.16) before it ends.
    let admin_down = p_ns.spawn_thread(|| {
        let sock = UdpSocket::bind((P4, 3784)).expect("bind 3784");
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        loop {
            let (n, _) = sock.recv_from(&mut buf).ok()?;
            let p = ControlPacket::decode(&buf[..n]).ok()?;
            if p.state == State::AdminDown {
                return Some(p);
            }
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    k::peer_mut(&mut kroute.config, "peer").bfd = None;
    kroute.reload();
    let p = admin_down
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("an AdminDown packet");
    assert_eq!(p.diag, kroute::bfd::packet::diag::ADMIN_DOWN);
    wait_until(CONVERGE, "no BFD session", || match bfd_sessions(&kroute) {
        v if v.is_empty() => Ok(()),
        v => Err(format!("{v:?}")),
    });
    assert_eq!(kroute.neighbor("peer").unwrap().bfd, None);
    assert!(!kroute.cli_ok(&["show", "neighbors"]).contains("BFD"));
}

fn parse(peer_keys: &str) -> Result<kroute::config::Config, String> {
    let text = format!(
        "router: {{ asn: 65001, routerId: 10.0.0.1 }}\npeers:\n  - {{ name: p, address: 10.1.0.2, asn: 65002, {peer_keys} }}\n"
    );
    kroute::config::parse(&text, "bfd.yaml").map_err(|e| e.to_string())
}

fn bfd_of(peer_keys: &str) -> Option<kroute::config::Bfd> {
    parse(peer_keys).unwrap_or_else(|e| panic!("{e}")).peers[0].bfd
}

#[test]
fn config_bfd_forms_and_ranges() {
    use kroute::config::Bfd;
    assert_eq!(bfd_of("bfd: true"), Some(Bfd::default()));
    assert_eq!(
        Bfd::default(),
        Bfd {
            interval: 300,
            multiplier: 3
        }
    );
    assert_eq!(bfd_of("bfd: false"), None);
    assert_eq!(bfd_of("passive: false"), None, "off by default");
    assert_eq!(
        bfd_of("bfd: { interval: 100 }"),
        Some(Bfd {
            interval: 100,
            multiplier: 3
        })
    );
    assert_eq!(
        bfd_of("bfd: { interval: 50, multiplier: 5 }"),
        Some(Bfd {
            interval: 50,
            multiplier: 5
        })
    );
    for (keys, says) in [
        ("bfd: { interval: 5 }", "10..=60000"),
        ("bfd: { interval: 60001 }", "10..=60000"),
        ("bfd: { multiplier: 0 }", "multiplier"),
        ("bfd: { intervall: 100 }", "interval"),
        ("bfd: 3", "true, false or"),
    ] {
        let e = parse(keys).expect_err(keys);
        assert!(e.contains(says), "{keys}: {e}");
    }
    // Multihop (RFC 5883) beyond one hop, by `multihop` or GTSM hops.
    let hops = |keys: &str| parse(keys).unwrap().peers[0].bfd_multihop();
    assert_eq!(hops("bfd: true"), None);
    assert_eq!(hops("bfd: true, multihop: 1"), None, "TTL 1: one hop");
    assert_eq!(hops("bfd: true, multihop: 3"), Some(3));
    assert_eq!(hops("bfd: true, ttlSecurity: { hops: 2 }"), Some(2));
    assert_eq!(hops("bfd: true, ttlSecurity: true"), None);
    // Written back and read again, the same.
    let c = parse("bfd: { interval: 50, multiplier: 5 }").unwrap();
    let again = kroute::config::parse(&c.to_yaml(), "again.yaml").unwrap();
    assert_eq!(again, c);
}

/// RFC 5883: FRR two hops away (`multihop: 2` here, `ebgp-multihop 2`
/// and a multihop bfdd peer there): port 4784, TTL 254 on arrival.
#[test]
fn frr_bfdd_multihop_failure_detected_and_recovered() {
    let l = &MULTIHOP;
    let who = "FRR, multihop";
    let k_ns = netns("kbfdm");
    let r_ns = netns("rbfdm");
    let f_ns = netns("fbfdm");
    veth(&k_ns, &r_ns, &[&format!("{K4}/24")], &["10.1.0.254/24"]);
    veth(&r_ns, &f_ns, &["10.2.0.254/24"], &[&format!("{}/24", l.p)]);
    k_ns.ip(&["route", "add", "10.2.0.0/24", "via", "10.1.0.254"])
        .unwrap_or_else(|e| panic!("{e}"));
    f_ns.ip(&["route", "add", "10.1.0.0/24", "via", "10.2.0.254"])
        .unwrap_or_else(|e| panic!("{e}"));
    let bgpd = BgpdConfig {
        hostname: f_ns.name().to_string(),
        asn: PEER_ASN,
        router_id: l.p.to_string(),
        timers: Some((3, 9)),
        graceful_restart_disable: true,
        neighbors: vec![Neighbor {
            address: K4.to_string(),
            remote_as: KROUTE_ASN,
            connect_timer: Some(2),
            update_source: Some(l.p.to_string()),
            advertisement_interval: Some(0),
            families: vec![(Afi::Ipv4, vec![])],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut spec = FrrSpec::new(f_ns.name(), bgpd.render());
    spec.bfdd_conf = Some(format!(
        "hostname {}\n!\nbfd\n peer {K4} multihop local-address {}\n  \
         receive-interval 300\n  transmit-interval 300\n  detect-multiplier 3\n exit\nexit\n!\n",
        f_ns.name(),
        l.p
    ));
    let frr = lf::Frr::start(&f_ns, &spec).unwrap_or_else(|e| panic!("{e}"));
    frr.vtysh(&[
        "conf t",
        &format!("router bgp {PEER_ASN}"),
        &format!("neighbor {K4} ebgp-multihop 2"),
        "address-family ipv4 unicast",
        &format!("network {}", l.prefix),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let kroute = kroute_with_bfd_peer(&k_ns, l, Some(2));
    let frr_up = || {
        let v = frr
            .vtysh_json("show bfd peers json")
            .map_err(|e| e.to_string())?;
        let peers = v.as_array().cloned().unwrap_or_default();
        match peers.iter().find(|p| p["peer"] == K4) {
            Some(p) if p["status"] == "up" && p["multihop"] == true => Ok(()),
            other => Err(format!("FRR bfd peer {K4}: {other:?}")),
        }
    };
    detect_and_recover(&k_ns, &kroute, l, who, frr.pids(), &frr_up);
    drop(kroute);
    drop(frr);
    drop(r_ns);
}
