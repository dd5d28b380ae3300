//! Issue 12, "Nobody let in": who may open a session with kroute, seen from
//! outside against the daemon in a namespace.
//!
//! * a connection from an address that is no configured peer is closed at
//!   accept, and logged once a minute per source, not once per connection;
//! * a peer on a loopback address is only let in from a socket of an
//!   allowed local user (`localUsers`, default root);
//! * GTSM (`ttlSecurity`, RFC 5082): a session with FRR's `ttl-security
//!   hops 1`, and connections arriving with TTL 254 refused;
//! * a reload that changes or removes a password updates the listener's
//!   TCP-MD5 keys (a passive peer comes back), `passwordFile` works and no
//!   secret is printed;
//! * the API socket is 0660 with a configurable group, and the CLI says
//!   "permission denied" when it cannot use it;
//! * a panic in a task ends the process with a non-zero status.
//!
//! Needs root (namespaces, setpriv to other uids) and FRR for the GTSM and
//! MD5 tests.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::frr::Frr;
use common::kroute::{self as kr, Kroute, BIN};
use common::{netns, test_dir, veth, wait_until, PeerDaemon, PeerNeighbor, PeerSpec, CONVERGE};
use kroute::config::{Config, GroupName, Password, Peer, Router};
use kroute::events::SessionState;
use labkit::{Netns, Spawn};

const V4: &[&str] = &["ipv4-unicast"];

/// Run `f` on a thread that has entered `ns`'s network namespace, so the
/// sockets it makes live there (a network namespace is per thread).
fn in_netns<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> T {
    ns.spawn_thread(f)
        .join()
        .expect("netns thread")
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A TCP connection from `src` (port chosen by the kernel) to `dst`, its
/// packets sent with `ttl` (IPv4 TTL or IPv6 hop limit), made inside `ns`.
fn connect_from(ns: &Netns, src: &str, dst: SocketAddr, ttl: u32) -> TcpStream {
    let src: std::net::IpAddr = src.parse().unwrap();
    in_netns(ns, move || {
        use socket2::{Domain, Socket, Type};
        let domain = if dst.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let s = Socket::new(domain, Type::STREAM, None).expect("socket");
        if dst.is_ipv4() {
            s.set_ttl_v4(ttl).expect("IP_TTL");
        } else {
            s.set_unicast_hops_v6(ttl).expect("IPV6_UNICAST_HOPS");
        }
        s.bind(&SocketAddr::new(src, 0).into()).expect("bind");
        s.connect_timeout(&dst.into(), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect {dst}: {e}"));
        s.into()
    })
}

/// What kroute did with a fresh connection within a few seconds.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    /// Closed (FIN or RST) before sending anything.
    Closed,
    /// Sent a BGP OPEN: the connection reached the peer's session.
    Open,
    /// Neither: still open and silent, or other bytes.
    Other(String),
}

fn fate(mut s: TcpStream) -> Fate {
    s.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
    let mut buf = [0u8; 19];
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Fate::Closed,
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && got == 0 => {
                return Fate::Closed
            }
            Err(e) => return Fate::Other(format!("{e} after {got} bytes")),
        }
    }
    fate_of_bytes(&buf[..got])
}

/// RFC 4271 §4.1: 16 bytes of marker, length, type 1 = OPEN.
fn fate_of_bytes(b: &[u8]) -> Fate {
    if b.is_empty() {
        Fate::Closed
    } else if b.len() == 19 && b[..16].iter().all(|x| *x == 0xff) && b[18] == 1 {
        Fate::Open
    } else {
        Fate::Other(format!("{b:02x?}"))
    }
}

/// Lines of kroute's log (all starts) containing every one of `needles`.
fn log_lines(k: &Kroute, needles: &[&str]) -> Vec<String> {
    k.log_tails(100_000)
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .map(String::from)
        .collect()
}

fn passive(p: Peer) -> Peer {
    Peer { passive: true, ..p }
}

/// `setpriv` as nobody/nogroup, with no supplementary groups.
fn as_nobody(argv: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        "--",
    ])
    .args(argv);
    c
}

fn text(out: &Output) -> String {
    format!(
        "status {}, stdout {:?}, stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_stranger_is_closed_at_accept_and_logged_once_a_minute() {
    let ns = netns("stranger");
    for addr in ["10.77.0.1/32", "10.77.0.3/32"] {
        ns.add_addr("lo", addr).unwrap_or_else(|e| panic!("{e}"));
    }
    let mut cfg = kr::config(65000, "10.77.0.1");
    cfg.peers
        .push(passive(kr::peer("p", "10.77.0.2", 65001, V4)));
    let k = Kroute::start(&ns, cfg);
    let dst: SocketAddr = "10.77.0.1:179".parse().unwrap();
    for i in 0..5 {
        let s = connect_from(&ns, "10.77.0.3", dst, 64);
        assert_eq!(fate(s), Fate::Closed, "connection {i} from a stranger");
    }
    let lines = log_lines(&k, &["10.77.0.3"]);
    assert_eq!(
        lines.len(),
        1,
        "one log line per source and minute, not one per connection:\n{}",
        lines.join("\n")
    );
    assert!(
        lines[0].contains("not a configured peer") && lines[0].contains("closed at accept"),
        "{}",
        lines[0]
    );
}

/// bash connects to `addr` port 179 and prints what it reads within 4 s,
/// in hex ("" when kroute closes the connection at once).
fn bash_probe(addr: &str) -> String {
    format!(
        "exec 3<>/dev/tcp/{addr}/179 || exit 9; \
         timeout 4 head -c 19 <&3 | od -An -tx1 | tr -d ' \\n'"
    )
}

/// [`bash_probe`] to `addr` inside `ns` as nobody/nogroup (an
/// unprivileged local process).
fn nobody_probe(ns: &Netns, addr: &str) -> Output {
    let probe = bash_probe(addr);
    let mut c = ns.command("setpriv");
    c.args([
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        "--",
    ])
    .args(["bash", "-c", &probe]);
    c.output().expect("setpriv bash")
}

fn hex_fate(out: &Output) -> Fate {
    assert!(out.status.success(), "probe: {}", text(out));
    let hex = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    fate_of_bytes(&bytes)
}

#[test]
fn a_loopback_peer_is_only_let_in_from_an_allowed_local_user() {
    let ns = netns("loopusr");
    let mut cfg = kr::config(65000, "10.0.0.1");
    // The CNI on the node: iBGP over loopback, both families' addresses.
    cfg.peers.push(passive(kr::peer("cni6", "::1", 65000, V4)));
    cfg.peers
        .push(passive(kr::peer("cni4", "127.0.0.1", 65000, V4)));
    let k = Kroute::start(&ns, cfg);

    for addr in ["::1", "127.0.0.1"] {
        // An unprivileged local process pretending to be the CNI.
        let out = nobody_probe(&ns, addr);
        assert_eq!(hex_fate(&out), Fate::Closed, "uid 65534 from {addr}");
        let refused = log_lines(&k, &["uid 65534", "localUsers"]);
        assert!(
            refused.iter().any(|l| l.contains(addr)),
            "no log line refusing uid 65534 from {addr}:\n{}",
            k.log_tails(20)
        );
        // Root (the default localUsers) gets the session's OPEN.
        let out = ns
            .output(&["bash", "-c", &bash_probe(addr)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(hex_fate(&out), Fate::Open, "uid 0 from {addr}");
    }
}

#[test]
fn local_users_lets_another_uid_in() {
    let ns = netns("loopok");
    let mut cfg = kr::config(65000, "10.0.0.1");
    cfg.peers.push(Peer {
        local_users: vec![0, 65534],
        ..passive(kr::peer("cni", "::1", 65000, V4))
    });
    let _k = Kroute::start(&ns, cfg);
    let out = nobody_probe(&ns, "::1");
    assert_eq!(hex_fate(&out), Fate::Open, "uid 65534 is in localUsers");
}

/// kroute in `ns_k` (10.78.0.1, fd00:78::1), FRR in `ns_f` (10.78.0.2,
/// fd00:78::2) on one veth.
struct Pair {
    ns_k: Netns,
    ns_f: Netns,
}

fn pair(tag: &str) -> Pair {
    let ns_k = netns(&format!("{tag}k"));
    let ns_f = netns(&format!("{tag}f"));
    veth(
        &ns_k,
        &ns_f,
        &["10.78.0.1/24", "fd00:78::1/64"],
        &["10.78.0.2/24", "fd00:78::2/64"],
    );
    Pair { ns_k, ns_f }
}

fn require_frr() {
    labkit::cmd::require_program("/usr/lib/frr/bgpd", "frr").unwrap_or_else(|e| panic!("{e}"));
}

fn frr_spec() -> PeerSpec {
    PeerSpec {
        asn: 65002,
        router_id: "10.78.0.2".into(),
        neighbors: vec![PeerNeighbor::new("10.78.0.1", "10.78.0.2", 65000, V4)],
        install_kernel: false,
    }
}

#[test]
fn gtsm_session_with_frr_and_ttl_254_refused() {
    require_frr();
    let t = pair("gtsm");
    let mut cfg = kr::config(65000, "10.78.0.1");
    // `ttlSecurity: true`: directly connected.
    cfg.peers.push(Peer {
        ttl_security: Some(1),
        ..kr::peer("frr", "10.78.0.2", 65002, V4)
    });
    // A passive IPv6 peer for raw connections (nobody else speaks for it),
    // `ttlSecurity: {hops: 1}`.
    cfg.peers.push(Peer {
        ttl_security: Some(1),
        ..passive(kr::peer("raw6", "fd00:78::2", 65003, V4))
    });
    let k = Kroute::start(&t.ns_k, cfg);
    let frr = Frr::start(&t.ns_f, frr_spec());
    frr.vtysh(&[
        "configure terminal",
        "router bgp 65002",
        "neighbor 10.78.0.1 ttl-security hops 1",
    ]);
    // FRR (minimum TTL 255 on its side) only accepts kroute's segments if
    // they are sent with TTL 255, and kroute only FRR's if they arrive so.
    wait_until(CONVERGE, "GTSM session with FRR", || {
        k.established("frr")?;
        frr.session_state("10.78.0.1")
    });

    // One hop too far: TTL 254 on arrival.
    let s = connect_from(&t.ns_f, "10.78.0.2", "10.78.0.1:179".parse().unwrap(), 254);
    assert_eq!(fate(s), Fate::Closed, "IPv4 SYN with TTL 254");
    let s = connect_from(
        &t.ns_f,
        "fd00:78::2",
        "[fd00:78::1]:179".parse().unwrap(),
        254,
    );
    assert_eq!(fate(s), Fate::Closed, "IPv6 SYN with hop limit 254");
    let lines = log_lines(&k, &["fd00:78::2", "TTL 254", "ttlSecurity"]);
    assert!(!lines.is_empty(), "no refusal logged:\n{}", k.log_tails(20));
    // FRR's own first attempts (TTL 1, before `ttl-security`) were refused
    // and logged; the TTL 254 one within the same minute only counted.
    let lines = log_lines(&k, &["10.78.0.2", "ttlSecurity", "below the minimum 255"]);
    assert!(!lines.is_empty(), "no refusal logged:\n{}", k.log_tails(20));
    // Hop limit 255 is let in: the passive peer's session sends its OPEN.
    let s = connect_from(
        &t.ns_f,
        "fd00:78::2",
        "[fd00:78::1]:179".parse().unwrap(),
        255,
    );
    assert_eq!(fate(s), Fate::Open, "IPv6 SYN with hop limit 255");
    // The GTSM session itself was not disturbed.
    k.established("frr").unwrap();
}

fn up(k: &Kroute, frr: &Frr, what: &str) {
    wait_until(CONVERGE, what, || {
        k.established("frr")?;
        frr.session_state("10.78.0.1")
    })
}

#[test]
fn reload_updates_the_listener_md5_keys_of_a_passive_peer() {
    require_frr();
    let t = pair("md5");
    let mut cfg = kr::config(65000, "10.78.0.1");
    cfg.peers.push(Peer {
        password: Some(Password::new("first-secret")),
        ..passive(kr::peer("frr", "10.78.0.2", 65002, V4))
    });
    let mut k = Kroute::start(&t.ns_k, cfg);
    let frr = Frr::start(&t.ns_f, frr_spec());
    let frr_password = |pw: Option<&str>| {
        let cmd = match pw {
            Some(pw) => format!("neighbor 10.78.0.1 password {pw}"),
            None => "no neighbor 10.78.0.1 password".to_string(),
        };
        frr.vtysh(&["configure terminal", "router bgp 65002", &cmd]);
    };
    frr_password(Some("first-secret"));
    up(&k, &frr, "session with the first password");

    // A new password from a file, on both sides. kroute is passive: only
    // FRR's SYNs, signed with the new key, can bring the session back, and
    // the listener drops them unless it has the new key too.
    let pw_file = k.config_path().with_file_name("frr.password");
    std::fs::write(&pw_file, "second-secret\n").unwrap();
    {
        let p = kr::peer_mut(&mut k.config, "frr");
        p.password = None;
        p.password_file = Some(pw_file.clone());
    }
    k.reload();
    assert_ne!(
        k.neighbor("frr").map(|n| n.state),
        Some(SessionState::Established),
        "a new password resets the session"
    );
    frr_password(Some("second-secret"));
    up(&k, &frr, "session with the password from passwordFile");

    // No password on either side: the listener must drop the key.
    kr::peer_mut(&mut k.config, "frr").password_file = None;
    k.reload();
    frr_password(None);
    up(&k, &frr, "session without a password");

    // The secrets appear neither in the log nor in `config check --print`.
    for secret in ["first-secret", "second-secret"] {
        assert!(log_lines(&k, &[secret]).is_empty(), "{secret} in the log");
    }
    kr::peer_mut(&mut k.config, "frr").password = Some(Password::new("first-secret"));
    k.write_config();
    let conf = k.config_path().display().to_string();
    let out = Command::new(BIN)
        .args(["config", "check", &conf, "--print"])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!printed.contains("first-secret"), "{printed}");
    assert!(printed.contains("password: <redacted>"), "{printed}");
    k.stop();
}

#[test]
fn the_api_socket_is_0660_and_the_cli_says_permission_denied() {
    let ns = netns("apiperm");
    let cfg = kr::config(65000, "10.0.0.1");
    let k = Kroute::start(&ns, cfg);
    let sock = k.socket().display().to_string();
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660, "socket mode");
    assert_eq!(meta.uid(), 0, "socket owner");
    let out = as_nobody(&[BIN, "--socket", &sock, "show", "neighbors"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        err.contains(&format!(
            "permission denied on {sock} (needs root or group root)"
        )),
        "{}",
        text(&out)
    );
    assert!(!err.contains("is `kroute daemon` running"), "{err}");
}

/// A config with no listener and no kernel.
fn bare_config() -> Config {
    let mut c = Config::new(Router {
        listen: None,
        ..Router::new(65000, "10.0.0.1".parse().unwrap())
    });
    c.kernel.install = false;
    c
}

#[test]
fn api_group_lets_its_members_use_the_cli() {
    let ns = netns("apigrp");
    let mut cfg = bare_config();
    cfg.api.group = Some(GroupName::Name("nogroup".into()));
    let mut k = Kroute::start(&ns, cfg);
    let sock = k.socket().display().to_string();
    assert_eq!(
        std::fs::metadata(&sock).unwrap().gid(),
        65534,
        "socket group"
    );
    // nobody's primary group is nogroup: enough to use the API.
    let out = as_nobody(&[BIN, "--socket", &sock, "show", "neighbors"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    k.stop();
}

#[test]
fn a_panic_in_a_task_ends_the_process_non_zero() {
    let ns = netns("panic");
    let dir = test_dir("panic");
    let conf = dir.file("kroute.yaml");
    let log = dir.file("kroute.log");
    let mut cfg = bare_config();
    cfg.api.socket = dir.file("kroute.sock");
    let yaml = labkit::kroute::to_yaml(&cfg).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&conf, yaml).unwrap();
    // Not `Kroute::start`: that waits for the API, and this daemon may be
    // gone before it answers.
    let mut p = Spawn::new("kroute", &[BIN, "daemon", "-c", conf.to_str().unwrap()])
        .netns(&ns)
        .env("RUST_LOG", "info")
        .env("KROUTE_TEST_PANIC", "rib")
        .log(&log)
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let start = Instant::now();
    while p.alive() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let still_running = p.alive();
    let status = p
        .stop(Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}"));
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !still_running,
        "the router task panicked but the process kept running (a zombie):\n{log}"
    );
    let status = status.expect("our child");
    assert_eq!(status.code(), Some(101), "exit status {status}:\n{log}");
    assert!(log.contains("panic, exiting"), "{log}");
}
