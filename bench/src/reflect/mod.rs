//! The cluster-scale run (`kroute-bench reflect`, bench/README.md): N
//! nodes, each announcing its two pod CIDRs over iBGP to one route
//! reflector, all N its clients. Two namespaces joined by one veth link;
//! the nodes are sessions of this process (`fleet.rs`) from N addresses on
//! its end. Measured per reflector: from the first session Established
//! until every node holds every other node's CIDRs, peak RSS and memory
//! per session, CPU seconds, and the time for one node's withdrawal to
//! leave every other node.

mod daemons;
mod fleet;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use labkit::{procfs, veth, Netns, Setup};

use crate::receivers::Kind;
use crate::report::median;
use daemons::Reflector;
pub use fleet::ASN;
use fleet::{Fleet, Node, Shared, LINK_V6_LEN, REFLECTOR_V4, REFLECTOR_V6};

pub struct Opts {
    pub kroute_bin: PathBuf,
    pub timeout: Duration,
    pub keep_logs: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub receiver: Kind,
    pub nodes: usize,
    pub run: usize,
    /// First to last session Established (context).
    pub all_established_s: Option<f64>,
    /// First session Established → half of them: whether the spread is
    /// a few late sessions or the whole storm being slow.
    pub half_established_s: Option<f64>,
    /// First session Established → every node holds every other's CIDRs.
    pub converge_s: Option<f64>,
    /// Last session Established → every node holds every other's CIDRs
    /// (the reflection alone, without the daemon's session start-up).
    pub after_last_up_s: Option<f64>,
    /// One node's withdrawal written → gone from every other node.
    pub withdraw_s: Option<f64>,
    pub idle_rss_kib: Option<u64>,
    pub peak_rss_kib: Option<u64>,
    pub cpu_s: Option<f64>,
    pub error: Option<String>,
}

impl Sample {
    /// (peak − idle) / N.
    pub fn kib_per_session(&self) -> Option<f64> {
        Some((self.peak_rss_kib? as f64 - self.idle_rss_kib? as f64) / self.nodes as f64)
    }
}

const LINK_S: &str = "eth-s";
const LINK_R: &str = "eth-r";

/// The two namespaces: the nodes' (every node's address on its end of
/// the link) and the reflector's.
struct Lab {
    nodes: Netns,
    reflector: Netns,
}

fn create_netns(name: &str) -> labkit::Result<Netns> {
    crate::netns::register_netns(name);
    Netns::create(name, &Setup::BARE)
}

impl Lab {
    fn create(n: usize) -> labkit::Result<Lab> {
        let stem = crate::netns::unique("rr");
        let nodes = create_netns(&format!("{stem}-n"))?;
        let reflector = create_netns(&format!("{stem}-r"))?;
        veth(&nodes, LINK_S, &reflector, LINK_R)?;
        reflector.add_addr(LINK_R, &format!("{REFLECTOR_V4}/16"))?;
        reflector.add_addr(LINK_R, &format!("{REFLECTOR_V6}/{LINK_V6_LEN}"))?;
        // Every node's address in one `ip -batch` (a thousand `ip addr
        // add`s would take seconds); IPv6 `nodad` so it is usable at once.
        let mut batch = String::new();
        for node in (0..n).map(Node::new) {
            let _ = writeln!(batch, "addr add {}/16 dev {LINK_S}", node.v4);
            let _ = writeln!(
                batch,
                "addr add {}/{LINK_V6_LEN} dev {LINK_S} nodad",
                node.v6
            );
        }
        ip_batch(&nodes, &batch)?;
        // The neighbour tables' limits are the host's (init namespace
        // only, shared by all): the reflector holds one entry per node.
        let gc = "/proc/sys/net/ipv4/neigh/default/gc_thresh3";
        if let Some(limit) = std::fs::read_to_string(gc)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            if limit < n + 64 {
                eprintln!("  warning: {gc} is {limit}, near {n} nodes: ARP entries may overflow");
            }
        }
        Ok(Lab { nodes, reflector })
    }
}

fn ip_batch(ns: &Netns, batch: &str) -> labkit::Result<()> {
    use std::io::Write;
    let mut child = ns
        .command("ip")
        .args(["-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| labkit::Error::Other(format!("ip -batch: {e}")))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(batch.as_bytes())
        .map_err(|e| labkit::Error::Other(format!("ip -batch: {e}")))?;
    let out = child
        .wait_with_output()
        .map_err(|e| labkit::Error::Other(format!("ip -batch: {e}")))?;
    if !out.status.success() {
        return Err(labkit::Error::Other(format!(
            "ip -batch in {}: {}",
            ns.name(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// One run of one reflector with `n` nodes.
pub fn measure(kind: Kind, n: usize, opts: &Opts, run: usize) -> Sample {
    let mut s = Sample {
        receiver: kind,
        nodes: n,
        run,
        all_established_s: None,
        half_established_s: None,
        converge_s: None,
        after_last_up_s: None,
        withdraw_s: None,
        idle_rss_kib: None,
        peak_rss_kib: None,
        cpu_s: None,
        error: None,
    };
    if let Err(e) = measure_into(&mut s, opts) {
        s.error = Some(e);
    }
    s
}

fn measure_into(s: &mut Sample, opts: &Opts) -> Result<(), String> {
    let n = s.nodes;
    let lab = Lab::create(n).map_err(|e| e.to_string())?;
    let dir_path = std::env::temp_dir().join(format!("{}-dir", lab.reflector.name()));
    let mut dir = crate::netns::scratch_dir(dir_path).map_err(|e| e.to_string())?;
    let nodes: Vec<Node> = (0..n).map(Node::new).collect();
    let mut rr = Reflector::start(
        s.receiver,
        &lab.reflector,
        dir.path(),
        &opts.kroute_bin,
        &nodes,
    )
    .map_err(|e| e.to_string())?;
    let r = drive(s, &mut rr, &lab, opts);
    rr.stop();
    if r.is_err() && opts.keep_logs {
        crate::netns::keep_dir(&mut dir);
        eprintln!("  logs kept in {}", dir.path().display());
    }
    r
}

/// Wait until `done` or the deadline, checking the reflector is alive.
fn wait(
    rr: &mut Reflector,
    sh: &Shared,
    deadline: Instant,
    what: &str,
    done: impl Fn() -> bool,
) -> Result<(), String> {
    while !done() {
        rr.check_alive()?;
        if Instant::now() > deadline {
            let errors = sh.errors.lock().unwrap_or_else(|e| e.into_inner());
            return Err(format!(
                "timed out waiting for {what} ({} established, {} complete; first errors: {:?})",
                Shared::count(&sh.established),
                Shared::count(&sh.complete),
                errors.iter().take(3).collect::<Vec<_>>()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn drive(s: &mut Sample, rr: &mut Reflector, lab: &Lab, opts: &Opts) -> Result<(), String> {
    let n = s.nodes;
    let pids = rr.pids();
    // Let the daemon settle after its start before taking its idle size.
    std::thread::sleep(Duration::from_secs(1));
    s.idle_rss_kib = procfs::sum_mem(&pids).map(|m| m.rss_kib);
    let cpu0 = procfs::sum_cpu(&pids);

    let deadline = Instant::now() + opts.timeout;
    let fleet = Fleet::start(n, lab.nodes.name(), deadline).map_err(|e| e.to_string())?;
    let sh = std::sync::Arc::clone(&fleet.shared);
    let r = (|| {
        wait(rr, &sh, deadline, "every node to hold every route", || {
            Shared::count(&sh.complete) == n
        })?;
        let first = Shared::earliest(&sh.established).expect("sessions are up");
        let secs = |t: Instant| (t - first).as_secs_f64();
        s.all_established_s = Shared::latest(&sh.established).map(secs);
        let ups: Vec<f64> = (sh.established.iter())
            .filter_map(|t| t.get().copied())
            .map(secs)
            .collect();
        s.half_established_s = median(ups);
        s.converge_s = Shared::latest(&sh.complete).map(secs);
        s.after_last_up_s = s.converge_s.zip(s.all_established_s).map(|(c, u)| c - u);
        if n < 2 {
            return Ok(());
        }
        // Let keepalives and any late work pass, then node 0 withdraws.
        std::thread::sleep(Duration::from_secs(1));
        let at = fleet.withdraw(0)?;
        let deadline = Instant::now() + opts.timeout;
        wait(
            rr,
            &sh,
            deadline,
            "the withdrawal to reach every node",
            || Shared::count(&sh.victim_gone) == n - 1,
        )?;
        s.withdraw_s = Shared::latest(&sh.victim_gone).map(|t| (t - at).as_secs_f64());
        Ok(())
    })();
    s.cpu_s = procfs::sum_cpu(&pids).zip(cpu0).map(|(b, a)| b - a);
    s.peak_rss_kib = procfs::sum_mem(&pids).map(|m| m.hwm_kib);
    fleet.close();
    r
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// Ratio of kroute's median to `other`'s, with the spread over the runs
/// (kroute's run r against the other's run r).
fn ratio(
    samples: &[&Sample],
    kroute: Kind,
    other: Kind,
    f: &dyn Fn(&Sample) -> Option<f64>,
) -> String {
    let of = |k: Kind| -> Vec<&Sample> {
        samples
            .iter()
            .copied()
            .filter(|s| s.receiver == k)
            .collect()
    };
    let (a, b) = (of(kroute), of(other));
    let med = |v: &[&Sample]| median(v.iter().filter_map(|s| f(s)).collect());
    let Some(r) = med(&a).zip(med(&b)).map(|(x, y)| x / y) else {
        return "-".into();
    };
    let per_run: Vec<f64> = a
        .iter()
        .filter_map(|x| {
            let y = b.iter().find(|y| y.run == x.run)?;
            Some(f(x)? / f(y)?)
        })
        .collect();
    let lo = per_run.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = per_run.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if per_run.len() > 1 {
        format!("{r:.2}× ({lo:.2}–{hi:.2})")
    } else {
        format!("{r:.2}×")
    }
}

type Metric = (&'static str, usize, fn(&Sample) -> Option<f64>);

const METRICS: [Metric; 8] = [
    ("first → last session up (s)", 2, |s| s.all_established_s),
    ("first session up → half of them up (s)", 2, |s| {
        s.half_established_s
    }),
    (
        "first session up → every node has every route (s)",
        2,
        |s| s.converge_s,
    ),
    (
        "last session up → every node has every route (s)",
        2,
        |s| s.after_last_up_s,
    ),
    ("one node's withdrawal → gone everywhere (s)", 3, |s| {
        s.withdraw_s
    }),
    ("peak RSS (MiB)", 1, |s| {
        s.peak_rss_kib.map(|k| k as f64 / 1024.0)
    }),
    ("memory per session (KiB)", 1, Sample::kib_per_session),
    ("CPU (s)", 2, |s| s.cpu_s),
];

/// The Markdown section: a table per N (medians, kroute's ratio to each
/// other reflector with its spread), then every sample.
pub fn report(samples: &[Sample], kinds: &[Kind], header: &str) -> String {
    let mut md = String::from(header);
    let mut sizes: Vec<usize> = samples.iter().map(|s| s.nodes).collect();
    sizes.sort_unstable();
    sizes.dedup();
    // kroute's ratio to each other reflector, when kroute ran.
    let others: Vec<Kind> = if kinds.contains(&Kind::Kroute) {
        kinds
            .iter()
            .copied()
            .filter(|k| *k != Kind::Kroute)
            .collect()
    } else {
        Vec::new()
    };
    for n in sizes {
        let at: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.nodes == n && s.error.is_none())
            .collect();
        let runs = kinds
            .iter()
            .map(|k| format!("{k} {}", at.iter().filter(|s| s.receiver == *k).count()))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(md, "\n### {n} nodes (medians; successful runs: {runs})\n");
        let mut head = String::from("| | ");
        head += &kinds
            .iter()
            .map(|k| k.as_str().to_string())
            .collect::<Vec<_>>()
            .join(" | ");
        for o in &others {
            let _ = write!(head, " | kroute ÷ {o}");
        }
        let _ = writeln!(md, "{head} |");
        let _ = writeln!(md, "|---{}|", "|---".repeat(kinds.len() + others.len()));
        for (name, digits, f) in METRICS {
            let mut row = format!("| {name} |");
            for &k in kinds {
                let v = median(
                    at.iter()
                        .filter(|s| s.receiver == k)
                        .filter_map(|s| f(s))
                        .collect(),
                );
                let _ = write!(row, " {} |", fmt(v, digits));
            }
            for &o in &others {
                let _ = write!(row, " {} |", ratio(&at, Kind::Kroute, o, &f));
            }
            let _ = writeln!(md, "{row}");
        }
    }
    md += "\nEvery run (s, MiB, KiB per session):\n\n| reflector | N | run | up | half up | converge | after last up | withdraw | idle RSS | peak RSS | KiB/session | CPU | error |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for s in samples {
        let mib = |k: Option<u64>| fmt(k.map(|k| k as f64 / 1024.0), 1);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.receiver,
            s.nodes,
            s.run,
            fmt(s.all_established_s, 2),
            fmt(s.half_established_s, 2),
            fmt(s.converge_s, 2),
            fmt(s.after_last_up_s, 2),
            fmt(s.withdraw_s, 3),
            mib(s.idle_rss_kib),
            mib(s.peak_rss_kib),
            fmt(s.kib_per_session(), 1),
            fmt(s.cpu_s, 2),
            s.error.as_deref().unwrap_or("")
        );
    }
    md
}

/// `kroute-bench reflect`: every N, every reflector, `repeat` times.
pub fn run(
    kinds: &[Kind],
    sizes: &[usize],
    repeat: usize,
    opts: &Opts,
    out: &Path,
    header: impl Fn() -> String,
    json: Option<&Path>,
) -> Result<(), String> {
    if let Some(k) = kinds
        .iter()
        .find(|k| !matches!(k, Kind::Kroute | Kind::Bird | Kind::Frr))
    {
        return Err(format!(
            "{k} is not a route reflector here (kroute, bird, frr)"
        ));
    }
    if let Some(n) = sizes
        .iter()
        .find(|&&n| !(2..=fleet::MAX_NODES).contains(&n))
    {
        return Err(format!("--peers {n}: between 2 and {}", fleet::MAX_NODES));
    }
    let mut samples = Vec::new();
    for &n in sizes {
        for rep in 1..=repeat {
            for &k in kinds {
                let waited = crate::idle::wait_idle(Duration::from_secs(10));
                if waited > 2.0 {
                    eprintln!("  (waited {waited:.0} s for the machine to settle)");
                }
                let started = Instant::now();
                let s = measure(k, n, opts, rep);
                eprintln!(
                    "  {k:<6} N={n} run {rep}: up {} s (half {} s), converge {} s, withdraw {} s, peak {} MiB, {} KiB/session, CPU {} s{} [{:.0} s]",
                    fmt(s.all_established_s, 2),
                    fmt(s.half_established_s, 2),
                    fmt(s.converge_s, 2),
                    fmt(s.withdraw_s, 3),
                    fmt(s.peak_rss_kib.map(|k| k as f64 / 1024.0), 1),
                    fmt(s.kib_per_session(), 1),
                    fmt(s.cpu_s, 2),
                    s.error.as_ref().map_or(String::new(), |e| format!(" FAILED: {e}")),
                    started.elapsed().as_secs_f64()
                );
                samples.push(s);
            }
        }
    }
    let md = report(&samples, kinds, &header());
    std::fs::write(out, md).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!("wrote {}", out.display());
    if let Some(j) = json {
        let text = serde_json::to_string_pretty(&samples).map_err(|e| e.to_string())?;
        std::fs::write(j, text).map_err(|e| format!("{}: {e}", j.display()))?;
    }
    let failed = samples.iter().filter(|s| s.error.is_some()).count();
    if failed > 0 {
        return Err(format!("{failed} run(s) failed (see the report)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(receiver: Kind, run: usize, converge: f64) -> Sample {
        Sample {
            receiver,
            nodes: 100,
            run,
            all_established_s: Some(0.1),
            half_established_s: Some(0.05),
            converge_s: Some(converge),
            after_last_up_s: Some(converge - 0.1),
            withdraw_s: Some(0.01),
            idle_rss_kib: Some(1000),
            peak_rss_kib: Some(11_000),
            cpu_s: Some(0.5),
            error: None,
        }
    }

    #[test]
    fn report_gives_medians_and_kroutes_ratio_with_its_spread() {
        let samples = [
            sample(Kind::Kroute, 1, 1.0),
            sample(Kind::Bird, 1, 4.0),
            sample(Kind::Kroute, 2, 3.0),
            sample(Kind::Bird, 2, 4.0),
        ];
        let md = report(&samples, &[Kind::Kroute, Kind::Bird], "");
        assert!(
            md.contains("| first session up → every node has every route (s) | 2.00 | 4.00 | 0.50× (0.25–0.75) |"),
            "{md}"
        );
        assert!(
            md.contains("| memory per session (KiB) | 100.0 | 100.0 | 1.00× (1.00–1.00) |"),
            "{md}"
        );
        let alone = report(&samples[1..2], &[Kind::Bird], "");
        assert!(!alone.contains("kroute ÷"), "{alone}");
    }
}
