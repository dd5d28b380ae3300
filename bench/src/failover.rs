//! The failover run: two senders announce the same table to one receiver,
//! over two links; the receiver converges; then the first sender's end of
//! its link goes down (the receiver's side loses carrier). Measured: the
//! time until the kernel forwards every prefix through the second link
//! only (a census of the main table by outgoing link, nexthop objects
//! resolved), and the packets a ping into the table (100 per second) lost.
//!
//! Variants: `preferred` (the second sender's AS_PATH is one longer, so
//! the first is best and the second a backup), `ecmp` (equal paths, both
//! installed), and `bfd`: as `preferred`, but the first sender silently
//! stops answering (every packet dropped in its namespace, the link stays
//! up) and the receiver learns it from BFD (`bfd_responder.rs`).

use std::ffi::CString;
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver as Rx, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde::Serialize;

use crate::bfd_responder::Responder as BfdResponder;
use crate::blast::{self, Control, Event, SessionParams, Target};
use crate::encode::{self, NextHops};
use crate::kcount::{Census, ChangeClock, RouteCounter};
use crate::netns::{self, enter_thread, Trio};
use crate::receivers::{self, Ctx, Kind, PEER2_NAME, PEER_NAME, SENDER_ASN};
use crate::report::median;
use crate::table::Table;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    Preferred,
    Ecmp,
    Bfd,
}

impl std::str::FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> Result<Variant, String> {
        match s {
            "preferred" => Ok(Variant::Preferred),
            "ecmp" => Ok(Variant::Ecmp),
            "bfd" => Ok(Variant::Bfd),
            _ => Err(format!("unknown variant {s:?} (preferred, ecmp, bfd)")),
        }
    }
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::Preferred => "preferred path lost (backup by AS_PATH)",
            Variant::Ecmp => "one of two ECMP paths lost",
            Variant::Bfd => {
                "preferred sender silently stops answering, detected by BFD (backup by AS_PATH)"
            }
        }
    }

    /// The first sender is the best path, the second its backup.
    fn has_backup(self) -> bool {
        matches!(self, Variant::Preferred | Variant::Bfd)
    }
}

/// How long the receiver and the responders get to bring BFD Up once the
/// table is in (it runs from the session's start; this is slack).
const BFD_UP_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Opts {
    pub kroute_bin: std::path::PathBuf,
    /// Budget for the load and for the failover each.
    pub timeout: Duration,
    pub keep_logs: bool,
    /// kroute with `kernel.backupRoutes: true`.
    pub backup_routes: bool,
}

/// The receiver's loopback address the pings come from (both senders route
/// it back over their own link).
const PING_SOURCE: &str = "10.254.0.1";
/// Pings per second.
const PING_RATE: u32 = 100;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub receiver: Kind,
    pub variant: Variant,
    pub run: usize,
    pub prefixes: u64,
    /// Both sessions up → the kernel holds every prefix as converged.
    pub converge_s: Option<f64>,
    /// Both sessions up → every prefix forwards via the preferred sender
    /// (with kroute's backup routes: before its standbys are all in).
    pub primaries_s: Option<f64>,
    /// Carrier lost (or, `bfd`, packets dropped) → the kernel forwards
    /// no route via the lost link any more (every prefix via the
    /// survivor, as the full census after it proves): the notification
    /// estimate inside the polls' bounds (see [`resolve`]).
    pub failover_s: Option<f64>,
    /// `bfd`: packets dropped → the receiver reports the first session
    /// down (its CLI polled back to back; an upper bound by one poll).
    pub detect_s: Option<f64>,
    pub pings_sent: Option<u64>,
    pub pings_lost: Option<u64>,
    /// The full census that proved the failover (on an error, the last
    /// census seen).
    pub census: Option<Census>,
    /// The bounds `failover_s` lies in: the start of the last filtered
    /// poll that still found a route via the lost link (or the failure),
    /// and the end of the first that found none.
    pub failover_lo_s: Option<f64>,
    pub failover_hi_s: Option<f64>,
    /// `failover_s` is a notification's arrival inside the bounds (else
    /// the upper bound).
    pub failover_by_event: Option<bool>,
    /// The dump time of the first filtered poll that found no route via
    /// the lost link.
    pub census_dump_s: Option<f64>,
    /// Failure → the end of the full census that found every prefix via
    /// the survivor (the proof; an upper bound by one full dump).
    pub proof_s: Option<f64>,
    /// The first full census after the filtered poll was the proof (else
    /// a prefix was still missing or elsewhere then, and `failover_s` is
    /// the proof's end).
    pub proof_first: Option<bool>,
    pub error: Option<String>,
}

pub fn measure(kind: Kind, variant: Variant, table: &Table, opts: &Opts, run: usize) -> Sample {
    let (v4, v6) = table.counts();
    let mut s = Sample {
        receiver: kind,
        variant,
        run,
        prefixes: (v4 + v6) as u64,
        converge_s: None,
        primaries_s: None,
        failover_s: None,
        detect_s: None,
        pings_sent: None,
        pings_lost: None,
        census: None,
        failover_lo_s: None,
        failover_hi_s: None,
        failover_by_event: None,
        census_dump_s: None,
        proof_s: None,
        proof_first: None,
        error: None,
    };
    let stem = netns::unique(&format!("f{}", &kind.as_str()[..2]));
    let mut dir = match netns::scratch_dir(std::env::temp_dir().join(&stem)) {
        Ok(d) => d,
        Err(e) => {
            s.error = Some(format!("scratch directory: {e}"));
            return s;
        }
    };
    if let Err(e) = run_once(kind, variant, table, opts, &stem, dir.path(), &mut s) {
        s.error = Some(e);
        if opts.keep_logs {
            netns::keep_dir(&mut dir);
            eprintln!("  logs kept in {}", dir.path().display());
        }
    }
    s
}

fn run_once(
    kind: Kind,
    variant: Variant,
    table: &Table,
    opts: &Opts,
    stem: &str,
    dir: &std::path::Path,
    s: &mut Sample,
) -> Result<(), String> {
    let trio = Trio::create(stem).map_err(|e| format!("namespaces: {e}"))?;
    let target = ping_target(table).ok_or("the table has no IPv4 prefix to ping")?;
    setup_ping_addresses(&trio, &target).map_err(|e| format!("ping addresses: {e}"))?;

    let ctx = Ctx {
        ns: &trio.receiver,
        dir: dir.to_path_buf(),
        kroute_bin: opts.kroute_bin.clone(),
        failover: true,
        backup_routes: opts.backup_routes && kind == Kind::Kroute,
        bfd: variant == Variant::Bfd,
    };
    // Declared after the namespaces: stopped before they go.
    let mut responders = Vec::new();
    if variant == Variant::Bfd {
        for (ns, local, receiver) in [
            (&trio.sender, netns::SENDER_V4, netns::RECEIVER_V4),
            (&trio.sender2, netns::SENDER2_V4, netns::RECEIVER2_V4),
        ] {
            responders.push(BfdResponder::start(ns, local, receiver)?);
        }
    }
    let mut rx = receivers::start(kind, &ctx).map_err(|e| e.to_string())?;
    let with_logs = |rx: &dyn receivers::Receiver, e: String| format!("{e} (logs: {})", rx.logs());
    rx.wait_ready(kind)?;

    let census = CensusPoller::start(&trio.receiver)?;
    let (first, second) = updates(table, variant);
    let (ev_tx, ev_rx) = mpsc::channel();
    let (ctl1, ctl1_rx) = mpsc::channel();
    let (ctl2, ctl2_rx) = mpsc::channel();
    spawn_sender(
        trio.sender.name(),
        netns::SENDER_V4,
        netns::RECEIVER_V4,
        first,
        ctl1_rx,
        ev_tx.clone(),
    );
    spawn_sender(
        trio.sender2.name(),
        netns::SENDER2_V4,
        netns::RECEIVER2_V4,
        second,
        ctl2_rx,
        ev_tx,
    );
    let result = (|| {
        let est = wait_both_established(&ev_rx, &mut *rx)?;
        let standbys = ctx.backup_routes;
        let converged = |c: &Census| match variant {
            // With backup routes, converged once the standbys are in too.
            Variant::Preferred | Variant::Bfd if standbys => {
                c.first == s.prefixes && c.shadowed == s.prefixes
            }
            Variant::Preferred | Variant::Bfd => c.first == s.prefixes,
            Variant::Ecmp => c.both == s.prefixes,
        };
        if variant.has_backup() {
            let primaries = |c: &Census| c.first == s.prefixes;
            let (at, _, _) = census.wait(est, opts.timeout, &mut *rx, primaries, &mut s.census)?;
            s.primaries_s = Some(at.saturating_duration_since(est).as_secs_f64());
        }
        let (at, _, _) = census.wait(est, opts.timeout, &mut *rx, converged, &mut s.census)?;
        s.converge_s = Some(at.saturating_duration_since(est).as_secs_f64());
        for r in &mut responders {
            r.wait_up(BFD_UP_TIMEOUT)?;
        }
        // A session BFD took down on the way (a flap) is not coming back:
        // the blast senders do not reconnect. Say so instead of timing out.
        for peer in [PEER_NAME, PEER2_NAME] {
            if rx.session_established(peer) == Some(false) {
                return Err(format!("session {peer} down before the failure"));
            }
        }
        // Settled: nothing the receiver still does should count.
        thread::sleep(Duration::from_secs(2));

        let mut ping = start_ping(&trio, &target)?;
        thread::sleep(Duration::from_secs(1));
        census.prepare_failure(opts.timeout)?;
        let lost_at = Instant::now();
        if variant == Variant::Bfd {
            silence(&trio.sender)?;
            census.set_mode(Mode::Lost);
            let down = wait_session_down(&*rx, lost_at, opts.timeout)?;
            s.detect_s = Some(down.saturating_duration_since(lost_at).as_secs_f64());
        } else {
            trio.sender
                .ip(&["link", "set", Trio::sender_if(), "down"])
                .map_err(|e| format!("link down: {e}"))?;
            census.set_mode(Mode::Lost);
        }
        let waited = wait_failover(&census, lost_at, opts.timeout, &mut *rx, s.prefixes);
        thread::sleep(Duration::from_secs(1));
        let (sent, received) = stop_ping(&mut ping)?;
        s.pings_sent = Some(sent);
        s.pings_lost = Some(sent.saturating_sub(received));
        let f = waited?;
        let secs = |t: Instant| Some(t.saturating_duration_since(lost_at).as_secs_f64());
        s.failover_s = secs(f.resolved.at);
        s.failover_lo_s = secs(f.resolved.lo);
        s.failover_hi_s = secs(f.resolved.hi);
        s.failover_by_event = Some(f.resolved.by_event);
        s.census_dump_s = Some(f.resolved.dump.as_secs_f64());
        s.proof_s = secs(f.proof_end);
        s.proof_first = Some(f.proof_first);
        s.census = Some(f.proof);
        Ok(())
    })();
    census.stop();
    // The sessions end with the namespaces; a Cease first where it can go.
    let _ = ctl1.send(Control::Close);
    let _ = ctl2.send(Control::Close);
    result.map_err(|e| with_logs(&*rx, e))
}

/// The failover as measured: when the last route via the lost link left,
/// and the full census after it that proves every prefix via the survivor.
struct Failover {
    resolved: Resolved,
    proof_end: Instant,
    proof: Census,
    proof_first: bool,
}

/// The census's part of the failure begun at `failed` (its mode already
/// `Lost`): the filtered polls until no route is via the lost link, then
/// full censuses until one finds all `prefixes` via the survivor. If the
/// first full census does not (a prefix missing or elsewhere: deleted
/// and not yet added again), the failover is taken at the proof's end.
fn wait_failover(
    census: &CensusPoller,
    failed: Instant,
    timeout: Duration,
    rx: &mut dyn receivers::Receiver,
    prefixes: u64,
) -> Result<Failover, String> {
    let mut resolved = census.wait_lost_link_empty(failed, timeout, rx)?;
    let survivor = |c: &Census| c.second == prefixes;
    let (end, first) = census.next_full(resolved.hi, timeout, rx)?;
    if survivor(&first) {
        return Ok(Failover {
            resolved,
            proof_end: end,
            proof: first,
            proof_first: true,
        });
    }
    let mut last = None;
    let (proof_end, proof, _) = census.wait(end, timeout, rx, survivor, &mut last)?;
    resolved.at = proof_end;
    resolved.by_event = false;
    Ok(Failover {
        resolved,
        proof_end,
        proof,
        proof_first: false,
    })
}

/// Every packet in and out of `ns` dropped: its BGP and BFD go silent,
/// its link keeps carrier.
fn silence(ns: &labkit::Netns) -> Result<(), String> {
    for chain in ["INPUT", "OUTPUT"] {
        let out = ns
            .command("iptables")
            .args(["-w", "-I", chain, "-j", "DROP"])
            .output()
            .map_err(|e| format!("iptables: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "iptables -I {chain} -j DROP in {}: {}",
                ns.name(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(())
}

/// Polls the receiver until it reports the first sender's session down;
/// returns when it answered so.
fn wait_session_down(
    rx: &dyn receivers::Receiver,
    after: Instant,
    timeout: Duration,
) -> Result<Instant, String> {
    loop {
        // None: its CLI did not answer this time (busy); ask again.
        if rx.session_established(PEER_NAME) == Some(false) {
            return Ok(Instant::now());
        }
        if after.elapsed() > timeout {
            return Err(format!(
                "session still up {:.0} s after its packets were dropped",
                timeout.as_secs_f64()
            ));
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Host 1 of the table's first IPv4 prefix.
fn ping_target(table: &Table) -> Option<String> {
    table.prefixes().find_map(|p| match p {
        IpNet::V4(n) if n.prefix_len() < 32 => {
            Some(std::net::Ipv4Addr::from(u32::from(n.network()) + 1).to_string())
        }
        _ => None,
    })
}

/// Both senders answer for the target; the receiver pings from its own
/// loopback address, which each sender routes back over its link.
fn setup_ping_addresses(trio: &Trio, target: &str) -> labkit::Result<()> {
    trio.receiver.add_addr("lo", &format!("{PING_SOURCE}/32"))?;
    for (ns, via) in [
        (&trio.sender, netns::RECEIVER_V4),
        (&trio.sender2, netns::RECEIVER2_V4),
    ] {
        ns.add_addr("lo", &format!("{target}/32"))?;
        ns.ip(&["route", "add", &format!("{PING_SOURCE}/32"), "via", via])?;
    }
    Ok(())
}

/// The two senders' UPDATEs: the same table, each with its own next hop;
/// for `preferred` the second one's AS_PATH is one AS longer.
fn updates(table: &Table, variant: Variant) -> (Arc<Vec<u8>>, Arc<Vec<u8>>) {
    let encode_with = |t: &Table, v4: &str, v6: &str| {
        let nh = NextHops {
            v4: v4.parse().expect("valid"),
            v6: v6.parse().expect("valid"),
        };
        let mut out = Vec::new();
        encode::announce(t, &nh, &mut out);
        encode::end_of_rib(&mut out);
        Arc::new(out)
    };
    let first = encode_with(table, netns::SENDER_V4, netns::SENDER_V6);
    let second = match variant {
        Variant::Ecmp => encode_with(table, netns::SENDER2_V4, netns::SENDER2_V6),
        Variant::Preferred | Variant::Bfd => {
            let mut longer = table.clone();
            for g in &mut longer.groups {
                g.attrs.as_path.prepend(SENDER_ASN, 1);
            }
            encode_with(&longer, netns::SENDER2_V4, netns::SENDER2_V6)
        }
    };
    (first, second)
}

fn spawn_sender(
    ns: &str,
    router_id: &str,
    receiver: &str,
    updates: Arc<Vec<u8>>,
    ctl: Rx<Control>,
    ev: Sender<Result<Event, String>>,
) {
    let ns = ns.to_string();
    let params = SessionParams {
        local_asn: SENDER_ASN,
        router_id: router_id.parse().expect("valid"),
        hold_time: 180,
        target: Target::Connect(SocketAddr::new(
            receiver.parse::<IpAddr>().expect("valid"),
            179,
        )),
        connect_timeout: Duration::from_secs(60),
    };
    thread::spawn(move || {
        if let Err(e) = enter_thread(&ns) {
            let _ = ev.send(Err(format!("entering {ns}: {e}")));
            return;
        }
        let (btx, brx) = mpsc::channel();
        let fwd_ev = ev.clone();
        let fwd = thread::spawn(move || {
            for e in brx {
                if fwd_ev.send(Ok(e)).is_err() {
                    break;
                }
            }
        });
        if let Err(e) = blast::run_session(&params, &updates, ctl, btx) {
            let _ = ev.send(Err(format!("sender in {ns}: {e}")));
        }
        let _ = fwd.join();
    });
}

fn wait_both_established(
    ev: &Rx<Result<Event, String>>,
    rx: &mut dyn receivers::Receiver,
) -> Result<Instant, String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut up = 0;
    loop {
        match ev.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(Event::Established { at, .. })) => {
                up += 1;
                if up == 2 {
                    return Ok(at);
                }
            }
            Ok(Ok(Event::PeerGone { why, .. })) => return Err(format!("session lost: {why}")),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(_)) => {}
            Err(_) => {
                rx.check_alive()?;
                if Instant::now() > deadline {
                    return Err(format!("{up} of 2 sessions up within 90 s"));
                }
            }
        }
    }
}

/// One census: when its dump started and ended, and what it found.
type Observed = (Instant, Instant, Result<Census, String>);

/// What the census thread does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Full censuses back to back (the load, the proof afterwards).
    Full,
    /// Nothing: waiting for the failure to start.
    Idle,
    /// Filtered polls: only the routes still via the lost link.
    Lost,
}

/// One filtered poll after the failure: when its dump ran and how many
/// routes it still found forwarding via the lost link.
#[derive(Debug, Clone, Copy)]
struct LostPoll {
    start: Instant,
    end: Instant,
    via_lost: u64,
}

#[derive(Default)]
struct Shared {
    latest: Option<Observed>,
    /// The census thread saw `Mode::Idle` and is between dumps.
    idle: bool,
    lost_polls: Vec<LostPoll>,
    lost_error: Option<String>,
    /// Arrival times of relevant notifications while recording.
    events: Vec<Instant>,
    recording: bool,
    /// The notification socket overflowed while recording: `events` is
    /// not complete.
    overflowed: bool,
}

/// When the last route via the lost link left, as the polls and the
/// notifications bound it (all times after the failure began).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Resolved {
    /// The estimate: `hi`, or the latest notification before it.
    at: Instant,
    /// The last poll that still found a route via the lost link began
    /// here (or the failure did): the last route left after it.
    lo: Instant,
    /// The first poll that found none ended here.
    hi: Instant,
    /// That poll's dump time.
    dump: Duration,
    by_event: bool,
}

/// The moment the last route via the lost link left, from the polls since
/// the failure began at `failed` and the notifications' arrival times.
/// The first poll that found none bounds it from above (its end, `hi`),
/// the last one before that still found some from below (its start, `lo`;
/// the failure if none did). A route leaves the lost link only by a
/// change the kernel announces (a route replaced or deleted, an object
/// changed) or by the link's own change (the kernel drops its objects and
/// shrinks groups silently, at the carrier change); so with a complete
/// stream the latest notification in (lo, hi] came no earlier than the
/// last route's departure, and is the better upper bound. Without one
/// (the stream overflowed, or nothing arrived there), `hi`.
fn resolve(
    failed: Instant,
    polls: &[LostPoll],
    events: &[Instant],
    complete: bool,
) -> Option<Resolved> {
    let polls: Vec<&LostPoll> = polls.iter().filter(|p| p.start >= failed).collect();
    let done = polls.iter().position(|p| p.via_lost == 0)?;
    let hi = polls[done].end;
    let lo = polls[..done].last().map_or(failed, |p| p.start);
    let latest = events
        .iter()
        .filter(|&&t| t > lo && t <= hi)
        .max()
        .copied()
        .filter(|_| complete);
    Some(Resolved {
        at: latest.unwrap_or(hi),
        lo,
        hi,
        dump: polls[done].end - polls[done].start,
        by_event: latest.is_some(),
    })
}

/// Censuses of the receiver's kernel on a thread inside its namespace
/// (full ones back to back, or during a failure the filtered polls), and
/// a second thread there timestamping route, nexthop and link
/// notifications.
struct CensusPoller {
    shared: Arc<Mutex<Shared>>,
    mode: Arc<Mutex<Mode>>,
    stop: Arc<AtomicBool>,
}

impl CensusPoller {
    fn start(ns: &labkit::Netns) -> Result<CensusPoller, String> {
        let name = ns.name().to_string();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let mode = Arc::new(Mutex::new(Mode::Full));
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, md, st) = (shared.clone(), mode.clone(), stop.clone());
        let (ready_tx, ready_rx) = mpsc::channel();
        thread::spawn(move || {
            let setup = (|| {
                enter_thread(&name).map_err(|e| e.to_string())?;
                let index = |dev: &str| {
                    let c = CString::new(dev).expect("no NUL");
                    // SAFETY: a valid C string; the lookup is in this
                    // thread's namespace.
                    unsafe { libc::if_nametoindex(c.as_ptr()) }
                };
                let links = (index(netns::RECEIVER_IF), index(netns::RECEIVER2_IF));
                if links.0 == 0 || links.1 == 0 {
                    return Err("receiver links not found".to_string());
                }
                let counter = RouteCounter::new().map_err(|e| e.to_string())?;
                let clock = ChangeClock::new(links.0).map_err(|e| e.to_string())?;
                Ok((links, counter, clock))
            })();
            let (links, mut counter, clock) = match setup {
                Ok(v) => {
                    let _ = ready_tx.send(Ok(()));
                    v
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let (sh2, st2) = (sh.clone(), st.clone());
            thread::spawn(move || record_changes(clock, &sh2, &st2));
            while !st.load(Ordering::Relaxed) {
                let mode = *lock(&md);
                lock(&sh).idle = mode == Mode::Idle;
                let start = Instant::now();
                match mode {
                    Mode::Idle => {}
                    Mode::Full => {
                        let c = counter.census(links).map_err(|e| e.to_string());
                        lock(&sh).latest = Some((start, Instant::now(), c));
                    }
                    Mode::Lost => match counter.via_first(links) {
                        Ok(via_lost) => lock(&sh).lost_polls.push(LostPoll {
                            start,
                            end: Instant::now(),
                            via_lost,
                        }),
                        Err(e) => lock(&sh).lost_error = Some(e.to_string()),
                    },
                }
                thread::sleep(Duration::from_millis(1));
            }
        });
        ready_rx
            .recv()
            .map_err(|_| "census thread died".to_string())??;
        Ok(CensusPoller { shared, mode, stop })
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_mode(&self, m: Mode) {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner()) = m;
    }

    /// Stops the censuses (the one under way finishes) and starts
    /// recording notifications: the failure may begin.
    fn prepare_failure(&self, timeout: Duration) -> Result<(), String> {
        self.shared().idle = false;
        self.set_mode(Mode::Idle);
        let t0 = Instant::now();
        while !self.shared().idle {
            if t0.elapsed() > timeout {
                return Err("the census did not pause".into());
            }
            thread::sleep(Duration::from_millis(1));
        }
        let mut s = self.shared();
        s.lost_polls.clear();
        s.events.clear();
        s.overflowed = false;
        s.recording = true;
        Ok(())
    }

    /// The failure has begun at `failed` (and the mode is `Lost`): waits
    /// for a filtered poll that finds no route via the lost link; the
    /// moment, as [`resolve`] makes it. Full censuses resume afterwards.
    fn wait_lost_link_empty(
        &self,
        failed: Instant,
        timeout: Duration,
        rx: &mut dyn receivers::Receiver,
    ) -> Result<Resolved, String> {
        let result = loop {
            {
                let s = self.shared();
                if let Some(e) = &s.lost_error {
                    break Err(format!("filtered census: {e}"));
                }
                if let Some(r) = resolve(failed, &s.lost_polls, &s.events, !s.overflowed) {
                    break Ok(r);
                }
            }
            rx.check_alive()?;
            if failed.elapsed() > timeout {
                let left = self.shared().lost_polls.last().map(|p| p.via_lost);
                break Err(format!(
                    "routes still via the lost link after {:.0} s: {left:?}",
                    timeout.as_secs_f64()
                ));
            }
            thread::sleep(Duration::from_millis(2));
        };
        let mut s = self.shared();
        s.recording = false;
        drop(s);
        self.set_mode(Mode::Full);
        result
    }

    /// Waits until a census whose dump began after `after` satisfies
    /// `done`; returns when that dump ended, and how long it took. `last`
    /// keeps the latest census seen.
    fn wait(
        &self,
        after: Instant,
        timeout: Duration,
        rx: &mut dyn receivers::Receiver,
        done: impl Fn(&Census) -> bool,
        last: &mut Option<Census>,
    ) -> Result<(Instant, Census, Duration), String> {
        loop {
            let obs = self.shared().latest.clone();
            if let Some((start, end, c)) = obs {
                let c = c?;
                if start >= after {
                    *last = Some(c);
                    if done(&c) {
                        return Ok((end, c, end - start));
                    }
                }
            }
            rx.check_alive()?;
            if after.elapsed() > timeout {
                return Err(format!(
                    "not there after {:.0} s; kernel by link: {:?}",
                    timeout.as_secs_f64(),
                    last
                ));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// The first full census whose dump began after `after`.
    fn next_full(
        &self,
        after: Instant,
        timeout: Duration,
        rx: &mut dyn receivers::Receiver,
    ) -> Result<(Instant, Census), String> {
        let mut last = None;
        let (end, c, _) = self.wait(after, timeout, rx, |_| true, &mut last)?;
        Ok((end, c))
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The notification thread: timestamps the datagrams that hold a relevant
/// change while the failure is recorded.
fn record_changes(mut clock: ChangeClock, shared: &Mutex<Shared>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let r = clock.poll();
        let now = Instant::now();
        let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
        match r {
            Ok(true) if s.recording => s.events.push(now),
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => s.overflowed |= s.recording,
            Err(_) => {
                s.overflowed |= s.recording;
                drop(s);
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn start_ping(trio: &Trio, target: &str) -> Result<Child, String> {
    let interval = format!("{:.3}", 1.0 / f64::from(PING_RATE));
    trio.receiver
        .command("ping")
        .args([
            "-q",
            "-n",
            "-i",
            &interval,
            "-I",
            PING_SOURCE,
            "-W",
            "1",
            target,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("ping: {e}"))
}

/// Stops the ping (SIGINT: it prints its summary); (sent, received).
fn stop_ping(ping: &mut Child) -> Result<(u64, u64), String> {
    // SAFETY: signalling our own child by PID.
    unsafe {
        libc::kill(ping.id() as libc::pid_t, libc::SIGINT);
    }
    let out = std::mem::replace(ping, dummy_child()?)
        .wait_with_output()
        .map_err(|e| format!("ping: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_ping(&text).ok_or_else(|| format!("no ping summary in {text:?}"))
}

/// A finished child to leave in place of the one waited for.
fn dummy_child() -> Result<Child, String> {
    std::process::Command::new("true")
        .spawn()
        .map_err(|e| format!("true: {e}"))
}

/// "N packets transmitted, M received, ..." → (N, M).
fn parse_ping(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.contains("packets transmitted"))?;
    let mut nums = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse::<u64>().ok());
    Some((nums.next()??, nums.next()??))
}

/// The Markdown section for BENCHMARKS.md: per variant, per receiver, the
/// median failover time and ping loss with their spread over the runs.
pub fn report(samples: &[Sample], header: &str) -> String {
    let mut out = String::new();
    out += header;
    for variant in [Variant::Preferred, Variant::Ecmp, Variant::Bfd] {
        let of: Vec<&Sample> = samples.iter().filter(|s| s.variant == variant).collect();
        if of.is_empty() {
            continue;
        }
        out += &format!("\n### {}\n\n", variant.label());
        let bfd = variant == Variant::Bfd;
        let common = "every prefix via the survivor (s) | spread (s) | × BIRD | census bounds (s) | full census proof (s) | pings lost (of 100/s) | spread | converge (s) |";
        if bfd {
            out += &format!("| receiver | runs | drop → session down (BFD) (s) | spread (s) | drop → {common}\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        } else {
            out += &format!("| receiver | runs | carrier lost → {common}\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        }
        let bird = median(
            of.iter()
                .filter(|s| s.receiver == Kind::Bird)
                .filter_map(|s| s.failover_s)
                .collect(),
        );
        let mut kinds: Vec<Kind> = Vec::new();
        for s in &of {
            if !kinds.contains(&s.receiver) {
                kinds.push(s.receiver);
            }
        }
        for k in kinds {
            let runs: Vec<&&Sample> = of.iter().filter(|s| s.receiver == k).collect();
            let ok: Vec<f64> = runs.iter().filter_map(|s| s.failover_s).collect();
            // A failed run's ping ran into the timeout: not a loss figure.
            let lost: Vec<f64> = runs
                .iter()
                .filter(|s| s.failover_s.is_some())
                .filter_map(|s| s.pings_lost.map(|l| l as f64))
                .collect();
            let conv: Vec<f64> = runs.iter().filter_map(|s| s.converge_s).collect();
            let lo: Vec<f64> = runs.iter().filter_map(|s| s.failover_lo_s).collect();
            let hi: Vec<f64> = runs.iter().filter_map(|s| s.failover_hi_s).collect();
            let proof: Vec<f64> = runs.iter().filter_map(|s| s.proof_s).collect();
            let bounds = match (median(lo), median(hi)) {
                (Some(a), Some(b)) => format!("{a:.3}–{b:.3}"),
                _ => "n/a".into(),
            };
            let spread = |v: &[f64], digits: usize| match (
                v.iter().cloned().reduce(f64::min),
                v.iter().cloned().reduce(f64::max),
            ) {
                (Some(a), Some(b)) => format!("{a:.digits$}–{b:.digits$}"),
                _ => "n/a".into(),
            };
            let detect: Vec<f64> = runs.iter().filter_map(|s| s.detect_s).collect();
            let detect_cols = if bfd {
                format!(
                    " {} | {} |",
                    median(detect.clone()).map_or("n/a".into(), |v| format!("{v:.3}")),
                    spread(&detect, 3)
                )
            } else {
                String::new()
            };
            let m = median(ok.clone());
            let ratio = match (m, bird) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.3}×", a / b),
                _ => "n/a".into(),
            };
            out += &format!(
                "| {} | {} of {} |{detect_cols} {} | {} | {ratio} | {bounds} | {} | {} | {} | {} |\n",
                k.label(),
                ok.len(),
                runs.len(),
                m.map_or("n/a".into(), |v| format!("{v:.3}")),
                spread(&ok, 3),
                median(proof).map_or("n/a".into(), |v| format!("{v:.3}")),
                median(lost.clone()).map_or("n/a".into(), |v| format!("{v:.0}")),
                spread(&lost, 0),
                median(conv).map_or("n/a".into(), |v| format!("{v:.2}")),
            );
        }
    }
    let errors: Vec<String> = samples
        .iter()
        .filter_map(|s| {
            s.error
                .as_ref()
                .map(|e| format!("* {} {:?} run {}: {e}", s.receiver, s.variant, s.run))
        })
        .collect();
    if !errors.is_empty() {
        out += "\nErrors:\n\n";
        out += &errors.join("\n");
        out += "\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_summaries_parse() {
        let t = "--- 10.0.0.1 ping statistics ---\n812 packets transmitted, 790 received, 2.7% packet loss, time 8123ms\n";
        assert_eq!(parse_ping(t), Some((812, 790)));
        assert_eq!(parse_ping("nothing"), None);
    }

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn poll(t0: Instant, start: u64, end: u64, via_lost: u64) -> LostPoll {
        LostPoll {
            start: at(t0, start),
            end: at(t0, end),
            via_lost,
        }
    }

    #[test]
    fn the_last_route_left_between_the_last_poll_that_saw_one_and_the_first_that_did_not() {
        let t0 = Instant::now();
        let failed = at(t0, 1000);
        let polls = [
            // Under way when the failure began: not counted.
            poll(t0, 900, 1100, 0),
            poll(t0, 1100, 1300, 500),
            poll(t0, 1301, 1400, 20),
            poll(t0, 1401, 1450, 0),
            poll(t0, 1451, 1500, 0),
        ];
        let events = [at(t0, 1001), at(t0, 1350), at(t0, 1420), at(t0, 1460)];
        let r = resolve(failed, &polls, &events, true).unwrap();
        assert_eq!((r.lo, r.hi), (at(t0, 1301), at(t0, 1450)));
        assert_eq!(r.dump, Duration::from_millis(49));
        // The latest change inside the bounds.
        assert_eq!((r.at, r.by_event), (at(t0, 1420), true));
        // Changes were lost: the upper bound.
        let r = resolve(failed, &polls, &events, false).unwrap();
        assert_eq!((r.at, r.by_event), (at(t0, 1450), false));
        // Nothing arrived inside: the upper bound.
        let r = resolve(failed, &polls, &events[..1], true).unwrap();
        assert_eq!((r.at, r.by_event), (at(t0, 1450), false));
        // Not yet done.
        assert_eq!(resolve(failed, &polls[..3], &events, true), None);
    }

    #[test]
    fn a_first_poll_that_finds_none_is_bounded_by_the_failure() {
        let t0 = Instant::now();
        let polls = [poll(t0, 1000, 1030, 0)];
        let events = [at(t0, 999), at(t0, 1002)];
        let r = resolve(at(t0, 1000), &polls, &events, true).unwrap();
        assert_eq!(
            (r.lo, r.hi, r.at),
            (at(t0, 1000), at(t0, 1030), at(t0, 1002))
        );
    }
}
