//! BENCHMARKS.md: medians per receiver and point, ratios to BIRD and to the
//! kernel bound, the machine, the versions and the exact command.

use std::fmt::Write as _;
use std::fs;

use crate::receivers::Kind;
use crate::run::Sample;

pub struct PointInfo {
    pub label: String,
    pub v4: usize,
    pub v6: usize,
    pub attribute_sets: usize,
    pub messages: usize,
    pub bytes: usize,
    /// (prefixes, seconds, period seconds) for a churn point.
    pub churn: Option<(usize, f64, f64)>,
}

pub struct Meta {
    pub command: String,
    pub date: String,
    pub machine: String,
    /// /proc/loadavg's 1/5/15-minute figures at the start and the end.
    pub load: String,
    pub versions: Vec<(Kind, String)>,
    pub repeat: usize,
    pub source: String,
    pub kernel_poll_ms: u64,
    pub rib_poll_ms: u64,
}

pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".to_string(), |(_, m)| m.trim().to_string());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores ({model}), {:.1} GiB RAM, Linux {}",
        mem_kib as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Median of one figure over the successful runs of `kind` at `point`.
fn med(
    samples: &[Sample],
    kind: Kind,
    point: &str,
    f: impl Fn(&Sample) -> Option<f64>,
) -> Option<f64> {
    median(
        samples
            .iter()
            .filter(|s| s.receiver == kind && s.point == point && s.error.is_none())
            .filter_map(f)
            .collect(),
    )
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.digits$}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "n/a".into(),
    }
}

/// The ratio of medians, then the spread of the per-run ratios: run `r`
/// of `kind` over run `r` of `base` (the runs of one repetition follow
/// each other, so they share the machine's load), min–max over the
/// repetitions where both succeeded.
fn ratio_spread(
    samples: &[Sample],
    kind: Kind,
    base: Kind,
    point: &str,
    f: impl Fn(&Sample) -> Option<f64>,
) -> String {
    let of = |k: Kind| -> Vec<(usize, f64)> {
        samples
            .iter()
            .filter(|s| s.receiver == k && s.point == point && s.error.is_none())
            .filter_map(|s| Some((s.rep, f(s)?)))
            .collect()
    };
    let (ours, theirs) = (of(kind), of(base));
    let mut per_run: Vec<f64> = ours
        .iter()
        .filter_map(|(rep, a)| {
            let (_, b) = theirs.iter().find(|(r, _)| r == rep)?;
            (*b > 0.0).then(|| a / b)
        })
        .collect();
    let mid = ratio(
        median(ours.iter().map(|(_, v)| *v).collect()),
        median(theirs.iter().map(|(_, v)| *v).collect()),
    );
    per_run.sort_by(f64::total_cmp);
    match (per_run.first(), per_run.last()) {
        (Some(lo), Some(hi)) if per_run.len() > 1 => format!("{mid} ({lo:.2}–{hi:.2})"),
        _ => mid,
    }
}

fn rss_mib(s: &Sample) -> Option<f64> {
    s.peak_rss_kib.map(|k| k as f64 / 1024.0)
}

fn bytes_per_route(s: &Sample) -> Option<f64> {
    let (peak, idle) = (s.peak_rss_kib?, s.idle_rss_kib?);
    (s.expected > 0).then(|| peak.saturating_sub(idle) as f64 * 1024.0 / s.expected as f64)
}

fn runs_note(samples: &[Sample], kind: Kind, point: &str) -> String {
    let all: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.receiver == kind && s.point == point)
        .collect();
    let failed = all.iter().filter(|s| s.error.is_some()).count();
    if failed == 0 {
        format!("{}", all.len())
    } else {
        format!("{} ({failed} failed)", all.len())
    }
}

fn load_table(out: &mut String, samples: &[Sample], kinds: &[Kind], point: &str) {
    out.push_str(
        "| receiver | runs | Established → RIB (s) | × BIRD | Established → kernel (s) | × BIRD | × bound | × floor | \
         drop → kernel empty (s) | × BIRD | × bound | × floor | peak RSS (MiB) | × BIRD | bytes / route | CPU (s) | × BIRD |\n",
    );
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for &k in kinds {
        let rib = med(samples, k, point, |s| s.rib_s);
        let kern = med(samples, k, point, |s| s.kernel_s);
        let drop = med(samples, k, point, |s| s.drop_s);
        let mem = med(samples, k, point, rss_mib);
        let cpu = med(samples, k, point, |s| s.cpu_s);
        let bpr = med(samples, k, point, bytes_per_route);
        let (kern_s, drop_s) = if k.programs_kernel() {
            (num(kern, 2), num(drop, 2))
        } else {
            ("n/a (no kernel)".into(), "n/a (no kernel)".into())
        };
        let (mem_s, bpr_s) = if k.is_bound() {
            // `ip`'s own RSS says nothing about the routes' memory.
            ("n/a".into(), "n/a".into())
        } else {
            (num(mem, 0), num(bpr, 0))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            k.label(),
            runs_note(samples, k, point),
            if k.is_bound() {
                "n/a".into()
            } else {
                num(rib, 2)
            },
            ratio_spread(samples, k, Kind::Bird, point, |s| s.rib_s),
            kern_s,
            ratio_spread(samples, k, Kind::Bird, point, |s| s.kernel_s),
            ratio_spread(samples, k, Kind::Kernel, point, |s| s.kernel_s),
            ratio_spread(samples, k, Kind::Netlink, point, |s| s.kernel_s),
            drop_s,
            ratio_spread(samples, k, Kind::Bird, point, |s| s.drop_s),
            ratio_spread(samples, k, Kind::Kernel, point, |s| s.drop_s),
            ratio_spread(samples, k, Kind::Netlink, point, |s| s.drop_s),
            mem_s,
            if k.is_bound() {
                "n/a".into()
            } else {
                ratio_spread(samples, k, Kind::Bird, point, rss_mib)
            },
            bpr_s,
            num(cpu, 2),
            ratio_spread(samples, k, Kind::Bird, point, |s| s.cpu_s),
        );
    }
}

fn churn_table(out: &mut String, samples: &[Sample], kinds: &[Kind], point: &str) {
    out.push_str(
        "| receiver | runs | phases reached | lag median (ms) | × BIRD | withdraw / announce median (ms) | \
         lag p90 (ms) | lag max (ms) | last announce → all back (ms) | × BIRD |\n",
    );
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for &k in kinds {
        if !k.programs_kernel() || k.is_bound() {
            continue;
        }
        let c = |f: fn(&crate::run::ChurnStats) -> Option<f64>| {
            med(samples, k, point, |s| s.churn.as_ref().and_then(f))
        };
        let reached = c(|c| Some(c.reached as f64));
        let phases = c(|c| Some(c.phases as f64));
        let fin = c(|c| c.final_ms);
        let _ = writeln!(
            out,
            "| {} | {} | {} of {} | {} | {} | {} / {} | {} | {} | {} | {} |",
            k.label(),
            runs_note(samples, k, point),
            num(reached, 0),
            num(phases, 0),
            num(c(|c| c.lag_median_ms), 0),
            ratio_spread(samples, k, Kind::Bird, point, |s| s
                .churn
                .as_ref()?
                .lag_median_ms),
            num(c(|c| c.withdraw_median_ms), 0),
            num(c(|c| c.announce_median_ms), 0),
            num(c(|c| c.lag_p90_ms), 0),
            num(c(|c| c.lag_max_ms), 0),
            num(fin, 0),
            ratio_spread(samples, k, Kind::Bird, point, |s| s
                .churn
                .as_ref()?
                .final_ms),
        );
    }
}

pub fn markdown(meta: &Meta, points: &[PointInfo], kinds: &[Kind], samples: &[Sample]) -> String {
    let mut o = String::new();
    o.push_str("# Benchmarks: kroute, BIRD, FRR and GoBGP to a full kernel table\n\n");
    o.push_str(
        "Written by `kroute-bench run` (bench/README.md explains the harness and how to rerun \
         it). Every figure is the median of the runs listed; ratios are this receiver's median \
         over BIRD's (× BIRD) or over the kernel's own bound (× bound); lower is better. \
         In brackets after a ratio: the lowest and highest ratio of one run to the other \
         receiver's run of the same repetition.\n\n",
    );
    let _ = writeln!(o, "* Command: `{}`", meta.command);
    let _ = writeln!(o, "* Date: {}", meta.date);
    let _ = writeln!(o, "* Machine: {}", meta.machine);
    let _ = writeln!(o, "* Load average (1, 5, 15 min; other work on the machine skews times, less so CPU seconds): {}", meta.load);
    let _ = writeln!(o, "* Table: {}", meta.source);
    let _ = writeln!(o, "* Runs per point: {}", meta.repeat);
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let _ = writeln!(o, "* Receivers in this run: {}", names.join(", "));
    for (k, v) in &meta.versions {
        let _ = writeln!(o, "* {}: {}", k.label(), v);
    }
    o.push('\n');
    for p in points {
        let _ = writeln!(o, "## {}\n", p.label);
        let _ = writeln!(
            o,
            "{} IPv4 + {} IPv6 prefixes in {} attribute sets, sent as {} UPDATE messages ({:.1} MiB).\n",
            p.v4,
            p.v6,
            p.attribute_sets,
            p.messages,
            p.bytes as f64 / 1024.0 / 1024.0
        );
        match p.churn {
            None => load_table(&mut o, samples, kinds, &p.label),
            Some((n, secs, period)) => {
                let _ = writeln!(
                    o,
                    "After the full load, {n} prefixes spread over the table are withdrawn and \
                     re-announced in turn, one burst every {:.1} s, for {secs:.0} s. Lag: from \
                     the burst leaving the sender to the kernel holding none (withdraw) or all \
                     (announce) of them, from route events. A phase counts as reached only if \
                     that happened before the next burst. The first × BIRD is of the lag \
                     median, the second of the last announce.\n",
                    period / 2.0
                );
                churn_table(&mut o, samples, kinds, &p.label);
            }
        }
        o.push('\n');
    }
    let _ = write!(
        o,
        "## How to read this\n\n\
         * **Established → RIB**: from the sender seeing the session Established to the daemon's \
         own counter (kroute `show neighbors` prefixesAccepted, `birdc show protocols all` \
         imported, FRR `show bgp summary json` pfxRcd, `gobgp neighbor` accepted) reaching every \
         prefix; read every {} ms.\n\
         * **Established → kernel**: until the kernel, asked in the receiver namespace, holds \
         every prefix: the earlier of the first reading of its route statistics \
         (`/proc/net/fib_triestat`, `/proc/net/rt6_stats`; every 20 ms or twice a reading's \
         duration, about 0.1 s at 1M routes) at the count before the load plus every prefix, \
         and the end of the first netlink dump of the main table holding every prefix (dumps \
         back to back at most every {} ms or twice a dump's duration, about 3 s at 1M); a dump \
         after the load must count every prefix as the receiver's. Upper bounds by at most one \
         reading.\n\
         * **drop → kernel empty**: the sender sends a Cease NOTIFICATION and closes TCP; until a \
         statistics reading is back at the count before the load, or a dump finds none of the \
         routes left.\n\
         * **peak RSS**: VmHWM summed over the receiver's processes (FRR: zebra + bgpd). \
         **bytes / route**: (peak RSS − RSS when idle before the session) / prefixes.\n\
         * **CPU**: user + system seconds of the receiver's processes from just before the \
         session to the kernel being empty again; kernel work done in a daemon's netlink calls \
         counts as its system time.\n\
         * **kernel bound**: `ip -batch` of `route add P nhid N proto 186` (one nexthop object \
         per family shared by all routes), then `route del`; `ip` waits for an ack per route. \
         Its CPU is `ip`'s user + system time. This is the bound the issue asked for; `ip` \
         parses every line and waits for an ack per route, so a daemon can beat it.\n\
         * **kernel floor**: the harness itself sends the same RTM_NEWROUTE (then RTM_DELROUTE) \
         requests, one nhid per family, in 64 KiB `send` batches without a per-route ack (only \
         the last asks for one); CPU is that thread's user + system time, which includes the \
         kernel's work. No daemon can program the kernel faster than this. **× bound** / \
         **× floor** are ratios to these two.\n\
         * **GoBGP** keeps routes in its RIB only; it does not program the kernel, so its kernel \
         columns are n/a (the harness checks that its kernel table stays empty).\n\
         * The sender is `kroute-bench blast`: pre-encoded UPDATEs written with large writes over \
         one session, about 4 prefixes per attribute set; its write finishing is recorded per \
         run (sentS in the raw data) to show it is not the bottleneck.\n\n",
        meta.rib_poll_ms, meta.kernel_poll_ms
    );
    o.push_str("## Every run\n\n<details><summary>raw samples</summary>\n\n");
    o.push_str(
        "| point | receiver | run | sent (s) | RIB (s) | kernel (s) | drop (s) | idle RSS (KiB) | peak RSS (KiB) | CPU (s) | RIB / kernel / after drop | error |\n",
    );
    o.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|\n");
    for s in samples {
        let opt = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} / {} | {} |",
            s.point,
            s.receiver,
            s.rep,
            num(s.sent_s, 2),
            num(s.rib_s, 2),
            num(s.kernel_s, 2),
            num(s.drop_s, 2),
            opt(s.idle_rss_kib),
            if s.peak_rss_kib_by_process.len() > 1 {
                let parts: Vec<String> = s
                    .peak_rss_kib_by_process
                    .iter()
                    .map(|(n, k)| format!("{n} {k}"))
                    .collect();
                format!("{} ({})", opt(s.peak_rss_kib), parts.join(", "))
            } else {
                opt(s.peak_rss_kib)
            },
            num(s.cpu_s, 2),
            opt(s.rib_count),
            opt(s.kernel_count),
            opt(s.kernel_after_drop),
            s.error.as_deref().unwrap_or("").replace('|', "\\|"),
        );
    }
    o.push_str("\n</details>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        assert_eq!(ratio(Some(3.0), Some(2.0)), "1.50×");
        assert_eq!(ratio(Some(3.0), None), "n/a");
    }
}
