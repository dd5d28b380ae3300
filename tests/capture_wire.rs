//! Records real BGP sessions from BIRD 2, FRR and GoBGP as golden inputs for
//! `wire/tests/recorded.rs`. Not part of the normal run: as root,
//!
//! ```text
//! cargo test --test capture_wire -- --ignored
//! WIRE_BLESS=1 cargo test -p wire --test recorded   # then review the diff
//! ```
//!
//! Each daemon runs in its own namespace D, linked by a veth to a namespace K
//! where this test listens on port 179 (no kroute: a minimal speaker that
//! answers OPEN with OPEN + KEEPALIVE, keeps the session alive and records
//! every message received). Three sessions per daemon, configured before K
//! listens:
//!
//! | session   | K address (AS)     | D address (AS)     | families         |
//! |-----------|--------------------|--------------------|------------------|
//! | `ebgp-v4` | 10.1.0.1 (65001)   | 10.1.0.2 (65002)   | IPv4             |
//! | `ebgp-v6` | fd00:1::1 (65001)  | fd00:1::2 (65002)  | IPv6, IPv4 (RFC 8950 where the daemon can) |
//! | `ibgp-v4` | 10.1.0.3 (65002)   | 10.1.0.2 (65002)   | IPv4             |
//!
//! The daemon originates the routes in [`ROUTES`] (BIRD and FRR from their
//! config, so they arrive as the initial UPDATEs; GoBGP one at a time once
//! the sessions are up, see [`Announcer::one_at_a_time`]). Once every
//! session has sent End-of-RIB for each family (or, from a daemon that sends
//! none, has been quiet for 4 s), [`WITHDRAWN`] is withdrawn and the capture
//! ends when every session that had it has withdrawn it.
//!
//! Kept stable between runs: router IDs and addresses are fixed, the veth
//! MACs are fixed (the IPv6 link-local next hops derive from them), FRR's
//! hostname (sent in its FQDN capability) is fixed, and KEEPALIVEs after the
//! first are not recorded (how many arrive depends on timing).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::gobgp::GoBgp;
use common::peer::{PeerDaemon, PeerNeighbor, PeerSpec};
use common::{link_local, netns, test_dir, veth, wait_until};
use labkit::bird::{Bird, BirdSpec};
use labkit::frr::{Frr, FrrSpec};
use labkit::{Netns, ScratchDir};
use wire::*;

const K_EBGP4: &str = "10.1.0.1";
const K_IBGP4: &str = "10.1.0.3";
const K_EBGP6: &str = "fd00:1::1";
const D4: &str = "10.1.0.2";
const D6: &str = "fd00:1::2";
const K_ASN: u32 = 65001;
const D_ASN: u32 = 65002;
const D_ROUTER_ID: &str = "10.255.0.2";
const K_ROUTER_ID: &str = "10.255.0.1";

/// What the daemon originates.
struct Route {
    prefix: &'static str,
    communities: &'static [&'static str],
    large_communities: &'static [&'static str],
    med: Option<u32>,
    /// Only iBGP carries LOCAL_PREF.
    local_pref: Option<u32>,
}

const fn plain(prefix: &'static str) -> Route {
    Route {
        prefix,
        communities: &[],
        large_communities: &[],
        med: None,
        local_pref: None,
    }
}

const ROUTES: &[Route] = &[
    plain("10.200.1.0/24"),
    Route {
        communities: &["65002:100", "65002:200"],
        large_communities: &["65002:1:1"],
        med: Some(50),
        ..plain("10.200.2.0/24")
    },
    plain(WITHDRAWN),
    Route {
        local_pref: Some(200),
        ..plain("10.200.5.0/24")
    },
    Route {
        communities: &["65002:600"],
        ..plain("fd00:200:1::/48")
    },
    plain("fd00:200:2::/48"),
];
const WITHDRAWN: &str = "10.200.3.0/24";

fn out_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("wire/tests/recorded")
}

#[test]
#[ignore = "records golden inputs from real daemons; run as root with --ignored"]
fn capture_bird() {
    capture("bird", &bird_version(), |d| Box::new(BirdCapture::start(d)));
}

#[test]
#[ignore = "records golden inputs from real daemons; run as root with --ignored"]
fn capture_frr() {
    capture("frr", &version(&["/usr/lib/frr/bgpd", "--version"]), |d| {
        Box::new(FrrCapture::start(d))
    });
}

#[test]
#[ignore = "records golden inputs from real daemons; run as root with --ignored"]
fn capture_gobgp() {
    capture("gobgp", &version(&["gobgpd", "--version"]), |d| {
        Box::new(GoBgpCapture::start(d))
    });
}

/// A daemon that originates [`ROUTES`] and can withdraw one of them.
trait Announcer {
    /// False: the routes are in the daemon's config from the start, and its
    /// initial UPDATEs come in a stable order. True: its order is not stable
    /// (GoBGP walks a hash map), so [`capture`] announces the routes one at a
    /// time once the sessions are up, each after the one before has arrived.
    fn one_at_a_time(&self) -> bool {
        false
    }
    fn announce(&mut self, _route: &Route) {
        unreachable!("routes are configured at start")
    }
    fn withdraw(&mut self, prefix: &str);
}

fn capture(kind: &str, version: &str, start: impl FnOnce(&Netns) -> Box<dyn Announcer>) {
    let k = netns(&format!("capk{kind}"));
    let d = netns(&format!("capd{kind}"));
    let v = veth(
        &k,
        &d,
        &[
            &format!("{K_EBGP4}/24"),
            &format!("{K_IBGP4}/24"),
            &format!("{K_EBGP6}/64"),
        ],
        &[&format!("{D4}/24"), &format!("{D6}/64")],
    );
    fix_mac(&k, &v.dev_a, "02:00:00:00:01:01", &format!("{K_EBGP6}/64"));
    fix_mac(&d, &v.dev_b, "02:00:00:00:01:02", &format!("{D6}/64"));

    let mut daemon = start(&d);
    let log = Arc::new(Mutex::new(BTreeMap::<&'static str, SessionLog>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let listeners = bind_in(
        &k,
        &[K_EBGP4, K_IBGP4, K_EBGP6].map(|a| SocketAddr::new(a.parse().unwrap(), 179)),
    );
    let mut threads = Vec::new();
    let accept = |threads: &mut Vec<std::thread::JoinHandle<()>>| {
        for l in &listeners {
            if let Ok((stream, _)) = l.accept() {
                let (log, stop) = (log.clone(), stop.clone());
                threads.push(std::thread::spawn(move || run_session(stream, &log, &stop)));
            }
        }
    };

    if daemon.one_at_a_time() {
        wait_until(Duration::from_secs(60), "OPEN on every session", || {
            accept(&mut threads);
            let log = log.lock().unwrap();
            let open = log.len() == 3 && log.values().all(|s| !s.families.is_empty());
            open.then_some(()).ok_or_else(|| describe(&log))
        });
        for r in ROUTES {
            daemon.announce(r);
            let p: Prefix = r.prefix.parse().unwrap();
            let family = Family::of_prefix(&p);
            wait_until(Duration::from_secs(30), r.prefix, || {
                let log = log.lock().unwrap();
                let done = log
                    .values()
                    .all(|s| !s.families.contains(&family) || s.announced.contains(&p));
                done.then_some(()).ok_or_else(|| describe(&log))
            });
        }
    }
    wait_until(
        Duration::from_secs(60),
        "End-of-RIB on every session",
        || {
            accept(&mut threads);
            let log = log.lock().unwrap();
            let done = log.len() == 3 && log.values().all(|s| s.complete_initial());
            done.then_some(()).ok_or_else(|| describe(&log))
        },
    );
    daemon.withdraw(WITHDRAWN);
    let withdrawn: Prefix = WITHDRAWN.parse().unwrap();
    wait_until(
        Duration::from_secs(30),
        "the withdrawal on every session",
        || {
            let log = log.lock().unwrap();
            let done = log
                .values()
                .all(|s| !s.announced.contains(&withdrawn) || s.withdrawn.contains(&withdrawn));
            done.then_some(()).ok_or_else(|| describe(&log))
        },
    );
    // Anything that follows the withdrawal closely (e.g. a split UPDATE).
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().expect("session thread");
    }
    drop(daemon);

    let log = log.lock().unwrap();
    let path = out_dir().join(format!("{kind}.rec"));
    std::fs::create_dir_all(out_dir()).unwrap();
    std::fs::write(&path, render(kind, version, &log)).unwrap();
    eprintln!("wrote {}", path.display());
}

/// Set a fixed MAC so the link-local address (EUI-64) is the same each run.
/// Taking the link down drops its IPv6 addresses: `v6` is added again.
fn fix_mac(ns: &Netns, dev: &str, mac: &str, v6: &str) {
    let ok = |r: labkit::Result<()>| r.unwrap_or_else(|e| panic!("{e}"));
    ok(ns.set_link(dev, false));
    ok(ns.ip(&["link", "set", dev, "address", mac]).map(|_| ()));
    ok(ns.set_link(dev, true));
    ok(ns.add_addr(dev, v6));
    link_local(ns, dev);
}

/// Bind TCP listeners inside `ns`: a thread enters the namespace (setns only
/// changes the calling thread), and the sockets stay in it.
fn bind_in(ns: &Netns, addrs: &[SocketAddr]) -> Vec<TcpListener> {
    let addrs = addrs.to_vec();
    ns.spawn_thread(move || {
        addrs
            .iter()
            .map(|a| {
                let l = TcpListener::bind(a).unwrap_or_else(|e| panic!("bind {a}: {e}"));
                l.set_nonblocking(true).unwrap();
                l
            })
            .collect()
    })
    .join()
    .expect("bind thread")
    .unwrap_or_else(|e| panic!("{e}"))
}

/// What one session delivered.
#[derive(Default)]
struct SessionLog {
    /// Raw messages in arrival order.
    messages: Vec<Vec<u8>>,
    /// Families both OPENs list, and those that sent End-of-RIB.
    families: BTreeSet<Family>,
    eor: BTreeSet<Family>,
    announced: BTreeSet<Prefix>,
    withdrawn: BTreeSet<Prefix>,
    /// Connections after the first for this session (should be 0).
    extra_connections: usize,
    last_message: Option<Instant>,
}

impl SessionLog {
    /// End-of-RIB for every family, or (for a daemon that sends none)
    /// routes received and nothing more for a few seconds.
    fn complete_initial(&self) -> bool {
        let eor = !self.families.is_empty() && self.families.is_subset(&self.eor);
        let quiet = self
            .last_message
            .is_some_and(|t| t.elapsed() > Duration::from_secs(4));
        eor || (quiet && !self.announced.is_empty())
    }

    fn note(&mut self, msg: &Message) {
        match msg {
            Message::Open(o) => self.families = o.families().collect(),
            Message::Update(u) => {
                if let Some(f) = u.end_of_rib() {
                    self.eor.insert(f);
                }
                let reach = u.mp_reach.iter().flat_map(|r| r.nlri.iter().copied());
                self.announced
                    .extend(u.nlri.iter().map(|p| ipnet::IpNet::V4(*p)).chain(reach));
                let unreach = u
                    .mp_unreach
                    .iter()
                    .flat_map(|r| r.withdrawn.iter().copied());
                self.withdrawn.extend(
                    u.withdrawn
                        .iter()
                        .map(|p| ipnet::IpNet::V4(*p))
                        .chain(unreach),
                );
            }
            _ => {}
        }
    }
}

fn describe(log: &BTreeMap<&'static str, SessionLog>) -> String {
    log.iter()
        .map(|(tag, s)| {
            format!(
                "{tag}: {} messages, families {:?}, EoR {:?}, withdrawn {:?}",
                s.messages.len(),
                s.families,
                s.eor,
                s.withdrawn
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Which session a connection is, by the local address it reached, and
/// what K says in its OPEN there.
fn session_of(local: IpAddr) -> (&'static str, Open) {
    let (tag, asn, enhe) = match local.to_string().as_str() {
        K_EBGP4 => ("ebgp-v4", K_ASN, false),
        K_IBGP4 => ("ibgp-v4", D_ASN, false),
        K_EBGP6 => ("ebgp-v6", K_ASN, true),
        other => panic!("connection to unexpected address {other}"),
    };
    let mut capabilities = vec![
        Capability::Multiprotocol(Family::Ipv4Unicast),
        Capability::Multiprotocol(Family::Ipv6Unicast),
        Capability::RouteRefresh,
        Capability::FourOctetAs(asn),
        // Graceful-restart aware, no families (RFC 4724 §3): BIRD sends
        // End-of-RIB only to such peers.
        Capability::GracefulRestart {
            restart_state: false,
            restart_time: 0,
            families: Vec::new(),
        },
    ];
    if enhe {
        // RFC 8950 §3: IPv4 unicast NLRI with an IPv6 next hop.
        capabilities.push(Capability::ExtendedNextHop(vec![ExtendedNextHopEntry {
            family: Family::Ipv4Unicast,
            next_hop_afi: 2,
        }]));
    }
    let open = Open {
        version: 4,
        asn,
        hold_time: 90,
        router_id: K_ROUTER_ID.parse().unwrap(),
        capabilities,
    };
    (tag, open)
}

/// Answer the peer's OPEN with OPEN + KEEPALIVE, send a KEEPALIVE every
/// second (the daemons ask for 9 s hold times), record what arrives until
/// `stop`, then close with a Cease NOTIFICATION.
fn run_session(
    mut stream: TcpStream,
    log: &Mutex<BTreeMap<&'static str, SessionLog>>,
    stop: &AtomicBool,
) {
    let (tag, our_open) = session_of(stream.local_addr().unwrap().ip());
    {
        let mut log = log.lock().unwrap();
        let s = log.entry(tag).or_default();
        if !s.messages.is_empty() {
            s.extra_connections += 1;
            return;
        }
    }
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut codec = SessionCodec::default();
    let mut buf = Vec::new();
    let mut opened = false;
    let mut keepalives = 0;
    let mut last_keepalive = Instant::now();
    let send = |stream: &mut TcpStream, msg: &Message, codec: &SessionCodec| {
        let mut out = Vec::new();
        encode_message(msg, codec, &mut out);
        stream.write_all(&out).expect("send");
    };
    while !stop.load(Ordering::SeqCst) {
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => panic!("{tag}: peer closed the session"),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{tag}: read: {e}"),
        }
        // Whole messages by the header's length field: recorded as received,
        // whatever the decoder makes of them.
        while buf.len() >= 19 && buf.len() >= usize::from(u16::from_be_bytes([buf[16], buf[17]])) {
            let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
            let raw: Vec<u8> = buf.drain(..len).collect();
            let (msg, _) = decode_message(&raw, &codec)
                .unwrap_or_else(|e| panic!("{tag}: decode: {e}"))
                .unwrap_or_else(|| panic!("{tag}: incomplete message"));
            if let Message::Open(o) = &msg {
                codec.four_octet_as = o.has_capability(|c| matches!(c, Capability::FourOctetAs(_)));
                send(&mut stream, &Message::Open(our_open.clone()), &codec);
                send(&mut stream, &Message::Keepalive, &codec);
                opened = true;
            }
            if msg == Message::Keepalive {
                keepalives += 1;
                if keepalives > 1 {
                    continue;
                }
            }
            let mut log = log.lock().unwrap();
            let s = log.get_mut(tag).unwrap();
            if let Message::Open(o) = &msg {
                s.note(&msg);
                // Only families both ends listed are negotiated.
                let ours: BTreeSet<Family> = our_open.families().collect();
                s.families = o.families().filter(|f| ours.contains(f)).collect();
            } else {
                s.note(&msg);
            }
            s.messages.push(raw);
            s.last_message = Some(Instant::now());
        }
        if opened && last_keepalive.elapsed() >= Duration::from_secs(1) {
            send(&mut stream, &Message::Keepalive, &codec);
            last_keepalive = Instant::now();
        }
    }
    let cease = Notification {
        code: notification::CEASE,
        subcode: 2, // Administrative Shutdown (RFC 4486)
        data: Vec::new(),
    };
    let _ = stream.write_all(&{
        let mut out = Vec::new();
        encode_message(&Message::Notification(cease), &codec, &mut out);
        out
    });
}

fn render(kind: &str, version: &str, log: &BTreeMap<&'static str, SessionLog>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# BGP messages {kind} sent to a minimal speaker, recorded by tests/capture_wire.rs\n\
         # ({version}). Format: one message per line, `SESSION HEX`, whole (header\n\
         # included), in the order received on that session; KEEPALIVEs after the\n\
         # first are left out. '#' starts a comment. Sessions (K = recorder, D = {kind}):\n\
         #   ebgp-v4  K 10.1.0.1 AS 65001  <- D 10.1.0.2 AS 65002, IPv4\n\
         #   ebgp-v6  K fd00:1::1 AS 65001 <- D fd00:1::2 AS 65002, IPv6 + IPv4 (RFC 8950)\n\
         #   ibgp-v4  K 10.1.0.3 AS 65002  <- D 10.1.0.2 AS 65002, IPv4\n\
         # Once every session had its routes, D withdrew {WITHDRAWN}."
    );
    for (tag, session) in log {
        assert_eq!(
            session.extra_connections, 0,
            "{tag}: reconnected during capture"
        );
        for m in &session.messages {
            let hex: String = m.iter().map(|b| format!("{b:02x}")).collect();
            let _ = writeln!(s, "{tag} {hex}");
        }
    }
    s
}

fn version(argv: &[&str]) -> String {
    let out = labkit::cmd::output(argv).unwrap_or_else(|e| panic!("{e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    text.lines()
        .next()
        .unwrap_or("unknown version")
        .trim()
        .to_string()
}

fn bird_version() -> String {
    version(&["bird", "--version"])
}

fn neighbors() -> Vec<PeerNeighbor> {
    vec![
        PeerNeighbor::new(K_EBGP4, D4, K_ASN, &["ipv4-unicast"]),
        PeerNeighbor::new(K_EBGP6, D6, K_ASN, &["ipv4-unicast", "ipv6-unicast"]),
        PeerNeighbor::new(K_IBGP4, D4, D_ASN, &["ipv4-unicast"]),
    ]
}

fn spec() -> PeerSpec {
    PeerSpec {
        asn: D_ASN,
        router_id: D_ROUTER_ID.into(),
        neighbors: neighbors(),
        install_kernel: false,
    }
}

// ---------------------------------------------------------------------------
// BIRD: its own config, because the routes carry attributes the common
// driver's static routes cannot express.
// ---------------------------------------------------------------------------

struct BirdCapture {
    // Field order = drop order: BIRD (stopped by PID) before its directory.
    bird: Bird,
    _dir: ScratchDir,
}

impl BirdCapture {
    fn config(routes: &[&Route]) -> String {
        let mut c = format!("log stderr all;\nrouter id {D_ROUTER_ID};\nprotocol device {{}}\n");
        for fam in ["ipv4", "ipv6"] {
            c += &format!("protocol static s_{fam} {{\n  {fam};\n");
            for r in routes
                .iter()
                .filter(|r| r.prefix.contains(':') == (fam == "ipv6"))
            {
                let mut attrs = String::new();
                for cm in r.communities {
                    let (a, b) = cm.split_once(':').unwrap();
                    attrs += &format!(" bgp_community.add(({a},{b}));");
                }
                for lc in r.large_communities {
                    attrs += &format!(" bgp_large_community.add(({}));", lc.replace(':', ","));
                }
                if let Some(m) = r.med {
                    attrs += &format!(" bgp_med = {m};");
                }
                if let Some(lp) = r.local_pref {
                    attrs += &format!(" bgp_local_pref = {lp};");
                }
                c += &format!("  route {} blackhole", r.prefix);
                if !attrs.is_empty() {
                    c += &format!(" {{{attrs} }}");
                }
                c += ";\n";
            }
            c += "}\n";
        }
        for (name, n) in ["ebgp4", "ebgp6", "ibgp4"].iter().zip(neighbors()) {
            c += &format!(
                "protocol bgp {name} {{\n  local {} as {D_ASN};\n  neighbor {} as {};\n",
                n.local_address, n.address, n.asn
            );
            // `graceful restart aware`: BIRD sends End-of-RIB only when
            // both ends have the GR capability.
            c += "  connect delay time 1;\n  connect retry time 2;\n  hold time 9;\n  keepalive time 3;\n  graceful restart aware;\n";
            if n.asn == D_ASN {
                c += "  direct;\n";
            }
            for fam in &n.families {
                let (f, enhe) = match (*fam, n.address.contains(':')) {
                    ("ipv4-unicast", true) => ("ipv4", " extended next hop on;"),
                    ("ipv4-unicast", false) => ("ipv4", ""),
                    _ => ("ipv6", ""),
                };
                c += &format!("  {f} {{ import none; export all;{enhe} }};\n");
            }
            c += "}\n";
        }
        c
    }

    fn start(ns: &Netns) -> BirdCapture {
        let dir = test_dir("capture-bird");
        let config = Self::config(&ROUTES.iter().collect::<Vec<_>>());
        let bird =
            Bird::start(ns, &BirdSpec::new(dir.path(), config)).unwrap_or_else(|e| panic!("{e}"));
        BirdCapture { bird, _dir: dir }
    }
}

impl Announcer for BirdCapture {
    fn withdraw(&mut self, prefix: &str) {
        let rest: Vec<&Route> = ROUTES.iter().filter(|r| r.prefix != prefix).collect();
        self.bird
            .configure(&Self::config(&rest))
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

// ---------------------------------------------------------------------------
// FRR: its own config too: the common driver names the instance (and so the
// hostname FRR sends in its FQDN capability) after the namespace, whose name
// holds the test's PID. zebra + bgpd through labkit, as in `common/frr.rs`.
// ---------------------------------------------------------------------------

/// Dropping it stops bgpd, then zebra, and removes the run directory.
struct FrrCapture(Frr);

impl FrrCapture {
    fn config() -> String {
        let mut c = "frr defaults traditional\nhostname capture-frr\n!\n".to_string();
        for (i, r) in ROUTES.iter().enumerate() {
            c += &format!("route-map CAP-{i} permit 10\n");
            if !r.communities.is_empty() {
                c += &format!(" set community {}\n", r.communities.join(" "));
            }
            if !r.large_communities.is_empty() {
                c += &format!(" set large-community {}\n", r.large_communities.join(" "));
            }
            if let Some(m) = r.med {
                c += &format!(" set metric {m}\n");
            }
            if let Some(lp) = r.local_pref {
                c += &format!(" set local-preference {lp}\n");
            }
            c += "!\n";
        }
        c += &format!("router bgp {D_ASN}\n bgp router-id {D_ROUTER_ID}\n");
        c += " no bgp ebgp-requires-policy\n no bgp network import-check\n";
        c += " no bgp default ipv4-unicast\n timers bgp 3 9\n bgp graceful-restart-disable\n";
        for n in neighbors() {
            let a = &n.address;
            c += &format!(" neighbor {a} remote-as {}\n", n.asn);
            c += &format!(" neighbor {a} timers connect 2\n");
            c += &format!(" neighbor {a} update-source {}\n", n.local_address);
            c += &format!(" neighbor {a} advertisement-interval 0\n");
            if a.contains(':') {
                // RFC 8950: IPv4 routes with IPv6 next hops on this session.
                c += &format!(" neighbor {a} capability extended-nexthop\n");
            }
        }
        for (fam, afi) in [("ipv4-unicast", "ipv4"), ("ipv6-unicast", "ipv6")] {
            c += &format!(" address-family {afi} unicast\n");
            for (i, r) in ROUTES.iter().enumerate() {
                if r.prefix.contains(':') == (afi == "ipv6") {
                    c += &format!("  network {} route-map CAP-{i}\n", r.prefix);
                }
            }
            for n in neighbors().iter().filter(|n| n.families.contains(&fam)) {
                c += &format!("  neighbor {} activate\n", n.address);
            }
            c += " exit-address-family\n";
        }
        c
    }

    fn start(ns: &Netns) -> FrrCapture {
        // The instance is the namespace's name (unique), the hostname fixed.
        let spec = FrrSpec {
            zebra_conf: "hostname capture-frr\n".into(),
            ..FrrSpec::new(ns.name(), Self::config())
        };
        FrrCapture(Frr::start(ns, &spec).unwrap_or_else(|e| panic!("{e}")))
    }
}

impl Announcer for FrrCapture {
    fn withdraw(&mut self, prefix: &str) {
        let no_network = format!("no network {prefix}");
        let router = format!("router bgp {D_ASN}");
        // vtysh's `%` error lines are errors here.
        self.0
            .vtysh(&[
                "conf t",
                &router,
                "address-family ipv4 unicast",
                &no_network,
            ])
            .unwrap_or_else(|e| panic!("vtysh {no_network}: {e}"));
    }
}

// ---------------------------------------------------------------------------
// GoBGP: the common driver, routes and attributes through the gobgp CLI.
// ---------------------------------------------------------------------------

struct GoBgpCapture(GoBgp);

impl GoBgpCapture {
    fn start(ns: &Netns) -> GoBgpCapture {
        GoBgpCapture(GoBgp::start(ns, spec()))
    }
}

impl Announcer for GoBgpCapture {
    fn one_at_a_time(&self) -> bool {
        true
    }

    fn announce(&mut self, r: &Route) {
        let afi = if r.prefix.contains(':') {
            "ipv6"
        } else {
            "ipv4"
        };
        let mut args: Vec<String> = ["global", "rib", "add", "-a", afi, r.prefix]
            .map(String::from)
            .to_vec();
        if !r.communities.is_empty() {
            args.extend(["community".into(), r.communities.join(",")]);
        }
        if !r.large_communities.is_empty() {
            args.extend(["large-community".into(), r.large_communities.join(",")]);
        }
        if let Some(m) = r.med {
            args.extend(["med".into(), m.to_string()]);
        }
        if let Some(lp) = r.local_pref {
            args.extend(["local-pref".into(), lp.to_string()]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        // Panics (with its stderr) when the CLI fails.
        self.0.cli(&refs);
    }

    fn withdraw(&mut self, prefix: &str) {
        self.0.withdraw(prefix);
    }
}
