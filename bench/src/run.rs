//! One measurement: fresh namespaces, one receiver, the same pre-encoded
//! table, and the clock read at the moments that matter. Each receiver runs
//! alone (the machine is small), in its own namespaces, which are deleted
//! afterwards whatever happened.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc::{self, Receiver as Rx, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use labkit::{procfs, Netns, ScratchDir};
use serde::Serialize;

use crate::bird_sender::{self, BirdEvent};
use crate::blast::{self, Control, Event, SessionParams, Target};
use crate::encode::{self, NextHops};
use crate::netns::{self, enter_thread, Pair};
use crate::receivers::{self, Ctx, Kind, SENDER_ASN};
use crate::table::Table;
use crate::watch::{Poller, Reach, Tally, Watcher};

/// What one point of the benchmark sends.
pub struct Prepared {
    pub label: String,
    pub table: Table,
    pub v4: usize,
    pub v6: usize,
    /// UPDATEs for the whole table, then End-of-RIB.
    pub updates: Arc<Vec<u8>>,
    pub messages: usize,
    pub churn: Option<Churn>,
}

pub struct Churn {
    pub prefixes: HashSet<IpNet>,
    pub withdraw: Arc<Vec<u8>>,
    pub announce: Arc<Vec<u8>>,
    pub duration: Duration,
    pub half_period: Duration,
}

pub fn next_hops() -> NextHops {
    NextHops {
        v4: netns::SENDER_V4.parse().expect("valid"),
        v6: netns::SENDER_V6.parse().expect("valid"),
    }
}

impl Prepared {
    pub fn new(label: String, table: Table, churn: Option<(usize, Duration, Duration)>) -> Self {
        let nh = next_hops();
        let mut updates = Vec::new();
        let messages = encode::announce(&table, &nh, &mut updates);
        encode::end_of_rib(&mut updates);
        let (v4, v6) = table.counts();
        let churn = churn.map(|(n, duration, half_period)| {
            let flap = table.sample(n);
            let mut withdraw = Vec::new();
            encode::withdraw(&flap, &mut withdraw);
            let mut announce = Vec::new();
            encode::announce(&flap, &nh, &mut announce);
            Churn {
                prefixes: flap.prefixes().copied().collect(),
                withdraw: Arc::new(withdraw),
                announce: Arc::new(announce),
                duration,
                half_period,
            }
        });
        Prepared {
            label,
            table,
            v4,
            v6,
            updates: Arc::new(updates),
            messages,
            churn,
        }
    }

    pub fn expected(&self) -> u64 {
        (self.v4 + self.v6) as u64
    }
}

#[derive(Debug, Clone)]
pub struct Opts {
    pub kroute_bin: PathBuf,
    /// Budget for each phase (load, drop, churn drain).
    pub timeout: Option<Duration>,
    /// How often the daemons' RIB counters are read.
    pub rib_poll: Duration,
    /// Least time between two kernel dumps.
    pub kernel_poll: Duration,
    pub keep_logs: bool,
    pub sender: SenderKind,
}

/// Who sends the table to the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SenderKind {
    /// `blast.rs`: pre-encoded UPDATEs, written as fast as TCP takes them.
    Blaster,
    /// `bird_sender.rs`: BIRD 2 exporting the table as static routes.
    Bird,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChurnStats {
    pub phases: usize,
    /// Phases whose target state (all flapped prefixes gone / back) the
    /// kernel reached before the next phase began.
    pub reached: usize,
    pub lag_median_ms: Option<f64>,
    pub lag_p90_ms: Option<f64>,
    pub lag_max_ms: Option<f64>,
    /// The median over the withdraw phases alone, and the announce phases.
    pub withdraw_median_ms: Option<f64>,
    pub announce_median_ms: Option<f64>,
    /// From the last re-announce to every flapped prefix back in the kernel.
    pub final_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub receiver: Kind,
    pub point: String,
    pub rep: usize,
    pub error: Option<String>,
    pub expected: u64,
    /// Prefixes in the receiver's RIB when the load phase ended.
    pub rib_count: Option<u64>,
    /// Routes in the receiver's kernel table when the load phase ended.
    pub kernel_count: Option<u64>,
    /// Routes left in the kernel after the drop phase.
    pub kernel_after_drop: Option<u64>,
    /// Established → the sender had written everything.
    pub sent_s: Option<f64>,
    pub rib_s: Option<f64>,
    pub kernel_s: Option<f64>,
    pub drop_s: Option<f64>,
    pub idle_rss_kib: Option<u64>,
    pub peak_rss_kib: Option<u64>,
    /// Peak RSS of each process (by its /proc comm), KiB.
    pub peak_rss_kib_by_process: BTreeMap<String, u64>,
    pub cpu_s: Option<f64>,
    pub churn: Option<ChurnStats>,
}

impl Sample {
    fn new(receiver: Kind, p: &Prepared, rep: usize) -> Sample {
        Sample {
            receiver,
            point: p.label.clone(),
            rep,
            error: None,
            expected: p.expected(),
            rib_count: None,
            kernel_count: None,
            kernel_after_drop: None,
            sent_s: None,
            rib_s: None,
            kernel_s: None,
            drop_s: None,
            idle_rss_kib: None,
            peak_rss_kib: None,
            peak_rss_kib_by_process: BTreeMap::new(),
            cpu_s: None,
            churn: None,
        }
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn phase_timeout(opts: &Opts, expected: u64) -> Duration {
    opts.timeout
        .unwrap_or_else(|| Duration::from_secs(120 + expected / 2000))
}

/// Run one receiver once. Errors end up in `Sample::error`; whatever was
/// measured before stays.
pub fn measure(kind: Kind, p: &Prepared, opts: &Opts, rep: usize) -> Sample {
    let mut s = Sample::new(kind, p, rep);
    let stem = netns::unique(&kind.as_str()[..2]);
    let mut dir = match netns::scratch_dir(std::env::temp_dir().join(&stem)) {
        Ok(d) => d,
        Err(e) => {
            s.error = Some(format!("scratch directory: {e}"));
            return s;
        }
    };
    let result = match kind {
        Kind::Kernel => kernel_bound(p, opts, &stem, &dir, &mut s),
        Kind::Netlink => netlink_floor(p, opts, &stem, &mut s),
        _ => daemon(kind, p, opts, &stem, &dir, &mut s),
    };
    if let Err(e) = result {
        s.error = Some(e);
    }
    if s.error.is_some() && opts.keep_logs {
        netns::keep_dir(&mut dir);
        eprintln!("  logs kept in {}", dir.path().display());
    }
    s
}

/// The tally's shortest pause between readings (see `Tally::start`).
const TALLY_INTERVAL: Duration = Duration::from_millis(20);

/// The earlier of two times something was seen done.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn daemon(
    kind: Kind,
    p: &Prepared,
    opts: &Opts,
    stem: &str,
    dir: &ScratchDir,
    s: &mut Sample,
) -> Result<(), String> {
    let expected = p.expected();
    let timeout = phase_timeout(opts, expected);
    let pair = Pair::create(stem).map_err(|e| format!("namespaces: {e}"))?;
    let ctx = Ctx {
        backup_routes: false,
        ns: &pair.receiver,
        dir: dir.path().to_path_buf(),
        kroute_bin: opts.kroute_bin.clone(),
        failover: false,
        bfd: false,
    };
    let mut rx = receivers::start(kind, &ctx).map_err(|e| e.to_string())?;
    let with_logs = |rx: &dyn receivers::Receiver, e: String| format!("{e} (logs: {})", rx.logs());

    rx.wait_ready(kind)?;
    let poller = Poller::start(&pair.receiver, opts.kernel_poll).map_err(|e| e.to_string())?;
    let base = poller
        .fresh(Instant::now(), Duration::from_secs(30))
        .ok_or("no kernel count")?
        .counts
        .total();
    // The load's and the drop's end are timed by the tally (a reading
    // every ~0.1 s at 1M routes) and by the dumps, whichever sees it first.
    let start_tally = || -> Result<(Tally, u64), String> {
        let t = Tally::start(&pair.receiver, TALLY_INTERVAL).map_err(|e| e.to_string())?;
        let base = t
            .fresh(Instant::now(), Duration::from_secs(30))
            .ok_or("no kernel route statistics")?;
        Ok((t, base))
    };
    let (mut tally, tally_base) = start_tally()?;
    if kind.programs_kernel() {
        tally.watch(Reach::AtLeast(tally_base + expected));
    }
    let pids = rx.pids();
    let cpu0 = procfs::sum_cpu(&pids);
    s.idle_rss_kib = procfs::sum_mem(&pids).map(|m| m.rss_kib);

    let (ctl_tx, ctl_rx) = mpsc::channel();
    let (ev_tx, ev_rx) = mpsc::channel();
    let sender = match opts.sender {
        SenderKind::Blaster => spawn_sender(&pair, p.updates.clone(), ctl_rx, ev_tx),
        SenderKind::Bird => spawn_bird_sender(&pair, dir, p.table.clone(), ctl_rx, ev_tx)?,
    };
    let result = (|| {
        let limit = match opts.sender {
            SenderKind::Blaster => Duration::from_secs(90),
            SenderKind::Bird => Duration::from_secs(90) + bird_sender::START_TIMEOUT * 2,
        };
        let est = wait_established(&ev_rx, &mut *rx, limit)?;

        // Load: until the RIB and the kernel hold every prefix.
        let mut sent = None;
        let mut rib_at = None;
        let mut kernel_at = None;
        let mut last_rib = 0;
        loop {
            for ev in ev_rx.try_iter() {
                match ev {
                    SenderEvent::Blast(Event::Sent { at, .. }) => sent = Some(at),
                    SenderEvent::Blast(Event::PeerGone { why, .. }) => {
                        return Err(format!("session dropped during the load: {why}"))
                    }
                    SenderEvent::Failed(e) => return Err(format!("sender: {e}")),
                    _ => {}
                }
            }
            rx.check_alive()?;
            if rib_at.is_none() {
                if let Some(c) = rx.rib_count() {
                    last_rib = c;
                    if c >= expected {
                        rib_at = Some(Instant::now());
                    }
                }
            }
            let obs = poller.latest();
            if kernel_at.is_none() && kind.programs_kernel() {
                let dumped = obs
                    .filter(|o| o.counts.total().saturating_sub(base) >= expected)
                    .map(|o| o.end);
                kernel_at = earliest(tally.reached(), dumped);
            }
            if rib_at.is_some() && (kernel_at.is_some() || !kind.programs_kernel()) {
                break;
            }
            if est.elapsed() > timeout {
                s.rib_count = Some(last_rib);
                s.kernel_count = obs.map(|o| o.counts.total().saturating_sub(base));
                return Err(format!(
                    "load not complete after {:.0} s: RIB {last_rib}, kernel {} of {expected}",
                    timeout.as_secs_f64(),
                    s.kernel_count.unwrap_or(0)
                ));
            }
            thread::sleep(opts.rib_poll);
        }
        s.sent_s = sent.map(|t| secs(t - est));
        s.rib_s = rib_at.map(|t| secs(t - est));
        s.kernel_s = kernel_at.map(|t| secs(t.saturating_duration_since(est)));
        s.rib_count = rx.rib_count();
        let o = poller
            .fresh(Instant::now(), timeout)
            .ok_or("no kernel count")?;
        s.kernel_count = Some(o.counts.total().saturating_sub(base));
        if let Some(e) = poller.error().or(tally.error()) {
            return Err(e);
        }
        if kind.programs_kernel() && s.kernel_count < Some(expected) {
            // The tally counts every route of the namespace: some other
            // route than the receiver's must have made up the number.
            return Err(format!(
                "the route statistics said the load was complete, a dump counts {} of {expected}",
                s.kernel_count.unwrap_or(0)
            ));
        }

        if let Some(c) = &p.churn {
            if kind.programs_kernel() {
                poller.set_paused(true);
                drop(tally);
                let stats = churn(&pair, c, &ctl_tx, &ev_rx, timeout);
                poller.set_paused(false);
                s.churn = Some(stats?);
                tally = start_tally()?.0;
            }
        }

        // Drop: close the session, wait for the kernel to be empty again.
        tally.watch(Reach::AtMost(tally_base));
        let _ = ctl_tx.send(Control::Close);
        let closed = loop {
            match ev_rx.recv_timeout(Duration::from_secs(30)) {
                Ok(SenderEvent::Blast(Event::Closed { at }))
                | Ok(SenderEvent::Bird(BirdEvent::Closed(at))) => break at,
                Ok(SenderEvent::Failed(e)) => return Err(format!("sender: {e}")),
                Ok(_) => {}
                Err(_) => return Err("the sender did not close the session".into()),
            }
        };
        if kind.programs_kernel() {
            loop {
                rx.check_alive()?;
                let o = poller.latest().filter(|o| o.start >= closed);
                let dumped = o.filter(|o| o.counts.total() <= base).map(|o| o.end);
                if let Some(at) = earliest(tally.reached(), dumped) {
                    s.drop_s = Some(secs(at.saturating_duration_since(closed)));
                    s.kernel_after_drop = Some(0);
                    break;
                }
                if closed.elapsed() > timeout {
                    let left = o.map(|o| o.counts.total().saturating_sub(base));
                    s.kernel_after_drop = left;
                    return Err(match poller.error() {
                        Some(e) => e,
                        None => format!(
                            "{} routes still in the kernel {:.0} s after the drop",
                            left.map_or("?".into(), |n| n.to_string()),
                            timeout.as_secs_f64()
                        ),
                    });
                }
                thread::sleep(Duration::from_millis(20));
            }
        } else {
            let o = poller
                .fresh(Instant::now(), timeout)
                .ok_or("no kernel count")?;
            s.kernel_after_drop = Some(o.counts.total().saturating_sub(base));
        }
        // VmHWM: the peak over the whole run, drop included.
        s.peak_rss_kib = procfs::sum_mem(&pids).map(|m| m.hwm_kib);
        for pid in &pids {
            if let (Some(m), Ok(comm)) = (
                procfs::Mem::read(*pid),
                fs::read_to_string(format!("/proc/{pid}/comm")),
            ) {
                s.peak_rss_kib_by_process
                    .insert(comm.trim().to_string(), m.hwm_kib);
            }
        }
        s.cpu_s = match (cpu0, procfs::sum_cpu(&pids)) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        Ok(())
    })();
    drop(ctl_tx);
    let _ = sender.join();
    result.map_err(|e| with_logs(&*rx, e))
}

enum SenderEvent {
    Blast(Event),
    Bird(BirdEvent),
    Failed(String),
}

fn spawn_bird_sender(
    pair: &Pair,
    dir: &ScratchDir,
    table: Table,
    ctl: Rx<Control>,
    ev: Sender<SenderEvent>,
) -> Result<thread::JoinHandle<()>, String> {
    let ns = Netns::open(pair.sender.name()).map_err(|e| format!("sender namespace: {e}"))?;
    let dir = dir.path().join("sender");
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(thread::spawn(move || {
        let (btx, brx) = mpsc::channel();
        let fwd_ev = ev.clone();
        let fwd = thread::spawn(move || {
            for e in brx {
                if fwd_ev.send(SenderEvent::Bird(e)).is_err() {
                    break;
                }
            }
        });
        if let Err(e) = bird_sender::run(&ns, &dir, &table, ctl, btx) {
            let _ = ev.send(SenderEvent::Failed(e));
        }
        let _ = fwd.join();
    }))
}

fn spawn_sender(
    pair: &Pair,
    updates: Arc<Vec<u8>>,
    ctl: Rx<Control>,
    ev: Sender<SenderEvent>,
) -> thread::JoinHandle<()> {
    let ns = pair.sender.name().to_string();
    thread::spawn(move || {
        if let Err(e) = enter_thread(&ns) {
            let _ = ev.send(SenderEvent::Failed(format!(
                "entering the sender namespace: {e}"
            )));
            return;
        }
        let params = SessionParams {
            local_asn: SENDER_ASN,
            router_id: netns::SENDER_V4.parse().expect("valid"),
            hold_time: 180,
            target: Target::Connect(SocketAddr::new(
                netns::RECEIVER_V4.parse().expect("valid"),
                179,
            )),
            connect_timeout: Duration::from_secs(60),
        };
        let (btx, brx) = mpsc::channel();
        let fwd_ev = ev.clone();
        let fwd = thread::spawn(move || {
            for e in brx {
                if fwd_ev.send(SenderEvent::Blast(e)).is_err() {
                    break;
                }
            }
        });
        if let Err(e) = blast::run_session(&params, &updates, ctl, btx) {
            let _ = ev.send(SenderEvent::Failed(e));
        }
        let _ = fwd.join();
    })
}

/// `limit`: the BIRD sender first loads the table, which takes minutes.
fn wait_established(
    ev: &Rx<SenderEvent>,
    rx: &mut dyn receivers::Receiver,
    limit: Duration,
) -> Result<Instant, String> {
    let deadline = Instant::now() + limit;
    loop {
        match ev.recv_timeout(Duration::from_millis(200)) {
            Ok(SenderEvent::Blast(Event::Established { at, peer })) => {
                let fams: Vec<_> = peer.families().collect();
                if fams.len() < 2 {
                    return Err(format!("the receiver negotiated only {fams:?}"));
                }
                return Ok(at);
            }
            Ok(SenderEvent::Bird(BirdEvent::Established(at))) => return Ok(at),
            Ok(SenderEvent::Failed(e)) => return Err(format!("sender: {e}")),
            Ok(_) => {}
            Err(_) => {
                rx.check_alive()?;
                if Instant::now() > deadline {
                    return Err(format!("no session within {} s", limit.as_secs()));
                }
            }
        }
    }
}

fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    Some(sorted[i])
}

fn churn(
    pair: &Pair,
    c: &Churn,
    ctl: &Sender<Control>,
    ev: &Rx<SenderEvent>,
    timeout: Duration,
) -> Result<ChurnStats, String> {
    let watcher =
        Watcher::start(&pair.receiver, c.prefixes.clone()).map_err(|e| format!("watch: {e}"))?;
    ctl.send(Control::Churn {
        withdraw: c.withdraw.clone(),
        announce: c.announce.clone(),
        duration: c.duration,
        half_period: c.half_period,
    })
    .map_err(|_| "sender gone")?;
    let mut phases: Vec<(Instant, bool)> = Vec::new();
    let deadline = Instant::now() + c.duration + timeout;
    loop {
        match ev.recv_timeout(Duration::from_secs(1)) {
            Ok(SenderEvent::Blast(Event::ChurnPhase { at, withdraw })) => {
                phases.push((at, withdraw))
            }
            Ok(SenderEvent::Blast(Event::ChurnDone)) => break,
            Ok(SenderEvent::Blast(Event::PeerGone { why, .. })) => {
                return Err(format!("session dropped during churn: {why}"))
            }
            Ok(SenderEvent::Failed(e)) => return Err(format!("sender: {e}")),
            Ok(_) => {}
            Err(_) if Instant::now() > deadline => return Err("churn did not finish".into()),
            Err(_) => {}
        }
        if let Some(e) = watcher.error() {
            return Err(e);
        }
    }
    let last = phases.last().map(|p| p.0).ok_or("no churn phase")?;
    let final_deadline = Instant::now() + timeout;
    let final_at = loop {
        let (t, _) = watcher.snapshot();
        if let Some(at) = t.full.iter().copied().find(|at| *at >= last) {
            break at;
        }
        if let Some(e) = watcher.error() {
            return Err(e);
        }
        if Instant::now() > final_deadline {
            return Err("flapped prefixes not all back in the kernel after churn".into());
        }
        thread::sleep(Duration::from_millis(20));
    };
    let (t, _) = watcher.snapshot();
    let mut lags = Vec::new();
    let (mut withdraws, mut announces) = (Vec::new(), Vec::new());
    for (i, (at, withdraw)) in phases.iter().enumerate() {
        let until = phases.get(i + 1).map(|p| p.0);
        let hits = if *withdraw { &t.empty } else { &t.full };
        if let Some(h) = hits
            .iter()
            .find(|h| **h >= *at && until.is_none_or(|u| **h < u))
        {
            let ms = (*h - *at).as_secs_f64() * 1000.0;
            lags.push(ms);
            if *withdraw {
                withdraws.push(ms);
            } else {
                announces.push(ms);
            }
        }
    }
    let reached = lags.len();
    for l in [&mut lags, &mut withdraws, &mut announces] {
        l.sort_by(f64::total_cmp);
    }
    Ok(ChurnStats {
        phases: phases.len(),
        reached,
        lag_median_ms: percentile(&lags, 0.5),
        lag_p90_ms: percentile(&lags, 0.9),
        lag_max_ms: lags.last().copied(),
        withdraw_median_ms: percentile(&withdraws, 0.5),
        announce_median_ms: percentile(&announces, 0.5),
        final_ms: Some((final_at - last).as_secs_f64() * 1000.0),
    })
}

/// The kernel's own bound: the same routes through `ip -batch`, every route
/// pointing at one shared nexthop object per family.
fn kernel_bound(
    p: &Prepared,
    opts: &Opts,
    stem: &str,
    dir: &ScratchDir,
    s: &mut Sample,
) -> Result<(), String> {
    let expected = p.expected();
    let timeout = phase_timeout(opts, expected);
    let pair = bound_namespaces(stem)?;
    let ns = pair.receiver.name().to_string();
    let mut add = String::with_capacity(p.table.len() * 40);
    let mut del = String::with_capacity(p.table.len() * 30);
    for pfx in p.table.prefixes() {
        let nhid = if matches!(pfx, IpNet::V4(_)) { 1 } else { 2 };
        add.push_str(&format!("route add {pfx} nhid {nhid} proto 186\n"));
        del.push_str(&format!("route del {pfx} proto 186\n"));
    }
    let add_file = dir.file("add.batch");
    let del_file = dir.file("del.batch");
    fs::write(&add_file, add).map_err(|e| e.to_string())?;
    fs::write(&del_file, del).map_err(|e| e.to_string())?;
    let poller = Poller::start(&pair.receiver, opts.kernel_poll).map_err(|e| e.to_string())?;
    let base = poller
        .fresh(Instant::now(), Duration::from_secs(30))
        .ok_or("no kernel count")?
        .counts
        .total();

    let (elapsed, usage) = timed_ip_batch(&ns, &add_file)?;
    s.kernel_s = Some(secs(elapsed));
    let o = poller
        .fresh(Instant::now(), timeout)
        .ok_or("no kernel count")?;
    s.kernel_count = Some(o.counts.total().saturating_sub(base));
    let (elapsed, usage2) = timed_ip_batch(&ns, &del_file)?;
    s.drop_s = Some(secs(elapsed));
    let o = poller
        .fresh(Instant::now(), timeout)
        .ok_or("no kernel count")?;
    s.kernel_after_drop = Some(o.counts.total().saturating_sub(base));
    s.cpu_s = Some(usage.cpu_s + usage2.cpu_s);
    s.peak_rss_kib = Some(usage.maxrss_kib.max(usage2.maxrss_kib));
    if let Some(e) = poller.error() {
        return Err(e);
    }
    Ok(())
}

/// Namespaces for a bound: nexthop objects 1 (IPv4) and 2 (IPv6) via the
/// sender's addresses.
fn bound_namespaces(stem: &str) -> Result<Pair, String> {
    let pair = Pair::create(stem).map_err(|e| format!("namespaces: {e}"))?;
    let dev = netns::RECEIVER_IF;
    for (id, via) in [("1", netns::SENDER_V4), ("2", netns::SENDER_V6)] {
        pair.receiver
            .ip(&["nexthop", "add", "id", id, "via", via, "dev", dev])
            .map_err(|e| e.to_string())?;
    }
    Ok(pair)
}

/// Run `f` in a thread inside namespace `ns`.
fn in_namespace<T: Send + 'static>(
    ns: &Netns,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    ns.spawn_thread(f)
        .join()
        .map_err(|_| "thread panicked".to_string())?
        .map_err(|e| format!("entering {}: {e}", ns.name()))?
}

/// The kernel's floor: the harness writes the same routes itself in 64 KiB
/// netlink batches, without waiting for an ack per route.
fn netlink_floor(p: &Prepared, opts: &Opts, stem: &str, s: &mut Sample) -> Result<(), String> {
    let timeout = phase_timeout(opts, p.expected());
    let pair = bound_namespaces(stem)?;
    let poller = Poller::start(&pair.receiver, opts.kernel_poll).map_err(|e| e.to_string())?;
    let base = poller
        .fresh(Instant::now(), Duration::from_secs(30))
        .ok_or("no kernel count")?
        .counts
        .total();
    let routes: Arc<Vec<IpNet>> = Arc::new(p.table.prefixes().copied().collect());
    let mut cpu = 0.0;
    for add in [true, false] {
        let r = routes.clone();
        let (elapsed, used) = in_namespace(&pair.receiver, move || {
            let c0 = crate::kcount::thread_cpu_seconds();
            let t0 = Instant::now();
            let refused =
                crate::kcount::batch_routes(&r, 1, 2, add).map_err(|e| format!("netlink: {e}"))?;
            let elapsed = t0.elapsed();
            if refused > 0 {
                return Err(format!("the kernel refused {refused} routes"));
            }
            Ok((elapsed, crate::kcount::thread_cpu_seconds() - c0))
        })?;
        cpu += used;
        let o = poller
            .fresh(Instant::now(), timeout)
            .ok_or("no kernel count")?;
        let n = o.counts.total().saturating_sub(base);
        if add {
            s.kernel_s = Some(secs(elapsed));
            s.kernel_count = Some(n);
        } else {
            s.drop_s = Some(secs(elapsed));
            s.kernel_after_drop = Some(n);
        }
    }
    s.cpu_s = Some(cpu);
    if let Some(e) = poller.error() {
        return Err(e);
    }
    Ok(())
}

struct Usage {
    cpu_s: f64,
    maxrss_kib: u64,
}

/// Run `ip -n NS -batch FILE`, timing it and taking its rusage (the kernel
/// work of a netlink request is done in the sender's context, so its system
/// time is the kernel's cost).
fn timed_ip_batch(ns: &str, file: &std::path::Path) -> Result<(Duration, Usage), String> {
    let t0 = Instant::now();
    let child = Command::new("ip")
        .args(["-n", ns, "-batch"])
        .arg(file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("ip -batch: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 on our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let elapsed = t0.elapsed();
    if r != pid {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(format!("ip -batch {} failed", file.display()));
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok((
        elapsed,
        Usage {
            cpu_s: tv(ru.ru_utime) + tv(ru.ru_stime),
            maxrss_kib: ru.ru_maxrss as u64,
        },
    ))
}

/// Expected prefix counts for a receiver at the end of the load phase.
pub fn verify(s: &Sample) -> Result<(), String> {
    if let Some(e) = &s.error {
        return Err(e.clone());
    }
    let want = s.expected;
    if !s.receiver.is_bound() && s.rib_count != Some(want) {
        return Err(format!("RIB holds {:?} of {want}", s.rib_count));
    }
    let kernel_want = if s.receiver.programs_kernel() {
        want
    } else {
        0
    };
    if s.kernel_count != Some(kernel_want) {
        return Err(format!(
            "kernel holds {:?} routes, expected {kernel_want}",
            s.kernel_count
        ));
    }
    if s.kernel_after_drop != Some(0) {
        return Err(format!(
            "kernel holds {:?} routes after the drop",
            s.kernel_after_drop
        ));
    }
    Ok(())
}
