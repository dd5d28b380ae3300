//! kroute-bench: full-table benchmark of kroute against BIRD, FRR and GoBGP
//! (and the kernel's own bound). `gen` writes a table as pre-encoded
//! UPDATEs, `blast` replays one over a BGP session, `run` does the whole
//! benchmark in network namespaces and writes BENCHMARKS.md.

mod bfd_responder;
mod bird_sender;
mod blast;
mod encode;
mod failover;
mod idle;
mod kcount;
mod mrt;
mod netns;
mod receivers;
mod reflect;
mod report;
mod rng;
mod run;
mod table;
mod watch;

use std::io::BufRead;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use receivers::{Kind, RECEIVER_ASN, SENDER_ASN};
use table::{GenParams, Table};

#[derive(Parser)]
#[command(name = "kroute-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Args, Clone)]
struct TableArgs {
    /// IPv4 prefixes (with --mrt: at most this many)
    #[arg(long)]
    ipv4: Option<usize>,
    /// IPv6 prefixes (with --mrt: at most this many)
    #[arg(long)]
    ipv6: Option<usize>,
    /// Seed of the generated table
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Read the table from an MRT TABLE_DUMP_V2 RIB dump (uncompressed)
    /// instead of generating one; the first entry of each prefix is used
    #[arg(long)]
    mrt: Option<PathBuf>,
    /// One prefix per UPDATE: every prefix gets its own attribute set (its
    /// group's, with a MED unique to it), as a table of distinct routes
    /// reaches a receiver from BIRD
    #[arg(long)]
    one_per_update: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a table as pre-encoded BGP UPDATE messages (then End-of-RIB)
    Gen {
        #[command(flatten)]
        table: TableArgs,
        /// Next hop of the IPv4 routes (the sender's address)
        #[arg(long, default_value = netns::SENDER_V4)]
        next_hop4: Ipv4Addr,
        /// Next hop of the IPv6 routes
        #[arg(long, default_value = netns::SENDER_V6)]
        next_hop6: Ipv6Addr,
        #[arg(short = 'o', long)]
        output: PathBuf,
    },
    /// Open one BGP session and replay UPDATEs as fast as TCP takes them;
    /// prints events as JSON lines; closes the session at a line on stdin
    /// (or its end)
    Blast {
        /// Connect to the receiver at ADDR:PORT
        #[arg(long, conflicts_with = "listen", required_unless_present = "listen")]
        connect: Option<SocketAddr>,
        /// Wait for the receiver to connect to ADDR:PORT
        #[arg(long)]
        listen: Option<SocketAddr>,
        #[arg(long, default_value_t = SENDER_ASN)]
        asn: u32,
        #[arg(long, default_value = netns::SENDER_V4)]
        router_id: Ipv4Addr,
        #[arg(long, default_value_t = 180)]
        hold_time: u16,
        /// A file written by `gen`; otherwise the table is generated here
        #[arg(long)]
        updates: Option<PathBuf>,
        #[command(flatten)]
        table: TableArgs,
        #[arg(long, default_value = netns::SENDER_V4)]
        next_hop4: Ipv4Addr,
        #[arg(long, default_value = netns::SENDER_V6)]
        next_hop6: Ipv6Addr,
    },
    /// The failover run (bench/README.md): two senders announce the same
    /// table over two links, the receiver converges, the first sender's
    /// link loses carrier; time until the kernel forwards every prefix via
    /// the survivor, and pings lost; Markdown to --out
    Failover {
        #[arg(long, value_delimiter = ',', default_value = "kroute,bird,frr")]
        receivers: Vec<Kind>,
        #[command(flatten)]
        table: TableArgs,
        /// preferred (backup by a longer AS_PATH), ecmp (equal paths), bfd
        /// (as preferred; the first sender goes silent, BFD detects it)
        #[arg(long, value_delimiter = ',', default_value = "preferred,ecmp")]
        variants: Vec<failover::Variant>,
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        #[arg(long, default_value = "target/release/kroute")]
        kroute: PathBuf,
        #[arg(long, default_value = "/tmp/bench-failover.md")]
        out: PathBuf,
        #[arg(long)]
        json: Option<PathBuf>,
        /// Seconds allowed for the load and for the failover each
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        #[arg(long)]
        keep_logs: bool,
        /// kroute with `kernel.backupRoutes: true` (standby routes at metric + 1)
        #[arg(long)]
        backup_routes: bool,
    },
    /// The cluster-scale run (as root, bench/README.md): N nodes, each
    /// announcing 2 pod CIDRs over iBGP to one route reflector (all its
    /// clients); time until every node has every route, RSS, CPU, and one
    /// node's withdrawal; Markdown to --out
    Reflect {
        /// Comma-separated: kroute,bird,frr
        #[arg(long, value_delimiter = ',', default_value = "kroute,bird,frr")]
        receivers: Vec<Kind>,
        /// Nodes (sessions), comma-separated for several points
        #[arg(long, value_delimiter = ',', default_value = "100")]
        peers: Vec<usize>,
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        #[arg(long, default_value = "target/release/kroute")]
        kroute: PathBuf,
        #[arg(long, default_value = "/tmp/bench-reflect.md")]
        out: PathBuf,
        #[arg(long)]
        json: Option<PathBuf>,
        /// Seconds allowed for convergence and for the withdrawal each
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        #[arg(long)]
        keep_logs: bool,
    },
    /// Run the benchmark (as root): every receiver alone in its own network
    /// namespaces, the same table, median of --repeat runs; writes --out.
    /// Without --ipv4/--ipv6/--mrt: the full suite (1M + 200k, 100k + 20k,
    /// and churn on the full table)
    Run {
        /// Comma-separated: kroute,kroute-rib,bird,frr,gobgp,kernel,netlink
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "kroute,kroute-rib,bird,frr,gobgp,kernel,netlink"
        )]
        receivers: Vec<Kind>,
        #[command(flatten)]
        table: TableArgs,
        /// Also run the churn point (alone with --churn and no sizes)
        #[arg(long)]
        churn: bool,
        /// Prefixes flapping in the churn run
        #[arg(long, default_value_t = 5000)]
        churn_prefixes: usize,
        /// Seconds of churn
        #[arg(long, default_value_t = 60)]
        churn_seconds: u64,
        /// Seconds between a withdraw burst and the next
        #[arg(long, default_value_t = 2.0)]
        churn_period: f64,
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// The kroute binary
        #[arg(long, default_value = "target/release/kroute")]
        kroute: PathBuf,
        #[arg(long, default_value = "BENCHMARKS.md")]
        out: PathBuf,
        /// Also write every sample as JSON
        #[arg(long)]
        json: Option<PathBuf>,
        /// Seconds allowed for each phase (default 120 + 1 per 2,000 prefixes)
        #[arg(long)]
        timeout: Option<u64>,
        /// Least milliseconds between two kernel dumps
        #[arg(long, default_value_t = 100)]
        kernel_poll_ms: u64,
        /// Milliseconds between two reads of a daemon's RIB counter
        #[arg(long, default_value_t = 100)]
        rib_poll_ms: u64,
        /// Keep the scratch directory (configs, logs) of a failed run
        #[arg(long)]
        keep_logs: bool,
        /// Who sends the table: the blaster (pre-encoded UPDATEs written as
        /// fast as TCP takes them) or BIRD (static routes exported over
        /// eBGP: what a user peers with); comma-separated for both
        #[arg(long, value_delimiter = ',', default_value = "blaster")]
        sender: Vec<run::SenderKind>,
    },
}

fn load_table(t: &TableArgs, default: (usize, usize)) -> Result<(Table, String), String> {
    let (table, what) = load_grouped(t, default)?;
    if t.one_per_update {
        return Ok((
            table.one_per_update(),
            format!("{what}, one prefix per UPDATE (each its own MED)"),
        ));
    }
    Ok((table, what))
}

fn load_grouped(t: &TableArgs, default: (usize, usize)) -> Result<(Table, String), String> {
    match &t.mrt {
        Some(path) => {
            let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let (table, stats) = mrt::read(&data, SENDER_ASN, RECEIVER_ASN, t.ipv4, t.ipv6)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let (v4, v6) = table.counts();
            eprintln!(
                "{}: {} records, {v4} IPv4 + {v6} IPv6 prefixes in {} attribute sets, {} skipped",
                path.display(),
                stats.records,
                table.groups.len(),
                stats.skipped
            );
            Ok((table, format!("MRT dump `{}`", path.display())))
        }
        None => {
            let p = GenParams {
                ipv4: t.ipv4.unwrap_or(default.0),
                ipv6: t.ipv6.unwrap_or(default.1),
                seed: t.seed,
                sender_asn: SENDER_ASN,
                receiver_asn: RECEIVER_ASN,
            };
            Ok((
                table::generate(&p),
                format!("generated, seed {} (bench/src/table.rs)", t.seed),
            ))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Cmd::Gen {
            table,
            next_hop4,
            next_hop6,
            output,
        } => gen(&table, next_hop4, next_hop6, &output),
        Cmd::Blast {
            connect,
            listen,
            asn,
            router_id,
            hold_time,
            updates,
            table,
            next_hop4,
            next_hop6,
        } => {
            let target = match (connect, listen) {
                (Some(a), _) => blast::Target::Connect(a),
                (None, Some(a)) => blast::Target::Listen(a),
                (None, None) => unreachable!("clap requires one"),
            };
            let params = blast::SessionParams {
                local_asn: asn,
                router_id,
                hold_time,
                target,
                connect_timeout: Duration::from_secs(300),
            };
            blast_cmd(params, updates, &table, next_hop4, next_hop6)
        }
        Cmd::Failover {
            receivers,
            table,
            variants,
            repeat,
            kroute,
            out,
            json,
            timeout,
            keep_logs,
            backup_routes,
        } => failover_cmd(
            &receivers,
            &table,
            &variants,
            repeat,
            &failover::Opts {
                kroute_bin: kroute,
                timeout: Duration::from_secs(timeout),
                keep_logs,
                backup_routes,
            },
            &out,
            json,
        ),
        Cmd::Reflect {
            receivers,
            peers,
            repeat,
            kroute,
            out,
            json,
            timeout,
            keep_logs,
        } => reflect_cmd(
            &receivers,
            &peers,
            repeat,
            &reflect::Opts {
                kroute_bin: kroute,
                timeout: Duration::from_secs(timeout),
                keep_logs,
            },
            &out,
            json,
        ),
        Cmd::Run {
            receivers,
            table,
            churn,
            churn_prefixes,
            churn_seconds,
            churn_period,
            repeat,
            kroute,
            out,
            json,
            timeout,
            kernel_poll_ms,
            rib_poll_ms,
            keep_logs,
            sender,
        } => {
            if churn && sender.contains(&run::SenderKind::Bird) {
                eprintln!("kroute-bench: the churn run needs the blaster as the sender");
                return ExitCode::FAILURE;
            }
            let opts = run::Opts {
                kroute_bin: kroute,
                timeout: timeout.map(Duration::from_secs),
                rib_poll: Duration::from_millis(rib_poll_ms),
                kernel_poll: Duration::from_millis(kernel_poll_ms),
                keep_logs,
                sender: run::SenderKind::Blaster,
            };
            let churn_cfg = (
                churn_prefixes,
                Duration::from_secs(churn_seconds),
                Duration::from_secs_f64(churn_period / 2.0),
            );
            run_cmd(
                &receivers,
                &sender,
                &table,
                churn,
                churn_cfg,
                repeat,
                &opts,
                &out,
                json,
                kernel_poll_ms,
                rib_poll_ms,
            )
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kroute-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn gen(t: &TableArgs, nh4: Ipv4Addr, nh6: Ipv6Addr, output: &PathBuf) -> Result<(), String> {
    let (table, _) = load_table(t, (1_000_000, 200_000))?;
    let mut buf = Vec::new();
    let nh = encode::NextHops { v4: nh4, v6: nh6 };
    let n = encode::announce(&table, &nh, &mut buf);
    encode::end_of_rib(&mut buf);
    std::fs::write(output, &buf).map_err(|e| format!("{}: {e}", output.display()))?;
    let (v4, v6) = table.counts();
    eprintln!(
        "{}: {v4} IPv4 + {v6} IPv6 prefixes, {} attribute sets, {n} UPDATEs + 2 End-of-RIB, {} bytes",
        output.display(),
        table.groups.len(),
        buf.len()
    );
    Ok(())
}

fn blast_cmd(
    params: blast::SessionParams,
    updates: Option<PathBuf>,
    t: &TableArgs,
    nh4: Ipv4Addr,
    nh6: Ipv6Addr,
) -> Result<(), String> {
    let buf = match updates {
        Some(p) => std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?,
        None => {
            let (table, _) = load_table(t, (1_000_000, 200_000))?;
            let mut buf = Vec::new();
            encode::announce(&table, &encode::NextHops { v4: nh4, v6: nh6 }, &mut buf);
            encode::end_of_rib(&mut buf);
            buf
        }
    };
    let (ctl_tx, ctl_rx) = mpsc::channel();
    let (ev_tx, ev_rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Any line on stdin, or its end, closes the session.
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        let _ = ctl_tx.send(blast::Control::Close);
    });
    let t0 = Instant::now();
    let printer = std::thread::spawn(move || {
        let ms = |at: Instant| (at - t0).as_secs_f64() * 1000.0;
        let mut est = None;
        for ev in ev_rx {
            let line = match ev {
                blast::Event::Established { at, peer } => {
                    est = Some(at);
                    serde_json::json!({"event": "established", "ms": ms(at),
                        "peerAsn": peer.asn, "peerHoldTime": peer.hold_time})
                }
                blast::Event::Sent {
                    at,
                    bytes,
                    messages,
                } => serde_json::json!({"event": "sent", "ms": ms(at), "bytes": bytes,
                    "messages": messages,
                    "sinceEstablishedMs": est.map(|e| (at - e).as_secs_f64() * 1000.0)}),
                blast::Event::PeerGone { at, why } => {
                    serde_json::json!({"event": "peerGone", "ms": ms(at), "why": why})
                }
                blast::Event::Closed { at } => serde_json::json!({"event": "closed", "ms": ms(at)}),
                blast::Event::ChurnPhase { .. } | blast::Event::ChurnDone => continue,
            };
            println!("{line}");
        }
    });
    let r = blast::run_session(&params, &buf, ctl_rx, ev_tx);
    let _ = printer.join();
    r
}

fn label(v4: usize, v6: usize) -> String {
    let f = |n: usize| {
        if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
            format!("{}M", n / 1_000_000)
        } else if n >= 1000 && n.is_multiple_of(1000) {
            format!("{}k", n / 1000)
        } else {
            n.to_string()
        }
    };
    format!("{} IPv4 + {} IPv6", f(v4), f(v6))
}

fn failover_cmd(
    kinds: &[Kind],
    t: &TableArgs,
    variants: &[failover::Variant],
    repeat: usize,
    opts: &failover::Opts,
    out: &PathBuf,
    json: Option<PathBuf>,
) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("failover needs root (network namespaces, kernel routes)".into());
    }
    if let Some(k) = kinds.iter().find(|k| k.is_bound() || !k.programs_kernel()) {
        return Err(format!(
            "{k} does not program the kernel: no failover to measure"
        ));
    }
    netns::install_signal_cleanup();
    let load_start = loadavg();
    let (table, src) = load_table(t, (100_000, 20_000))?;
    let (v4, v6) = table.counts();
    let mut samples = Vec::new();
    for rep in 1..=repeat {
        for &variant in variants {
            for &k in kinds {
                let waited = idle::wait_idle(Duration::from_secs(30));
                if waited > 2.0 {
                    eprintln!("  (waited {waited:.0} s for the machine to settle)");
                }
                let s = failover::measure(k, variant, &table, opts, rep);
                eprintln!(
                    "  {k:<6} {variant:?} run {rep}: converged {} s,{} failover {} s, pings lost {} of {}{}",
                    fmt_opt(s.converge_s),
                    s.detect_s.map_or(String::new(), |d| format!(" detected {d:.3} s,")),
                    fmt_opt(s.failover_s),
                    s.pings_lost.map_or("-".into(), |v| v.to_string()),
                    s.pings_sent.map_or("-".into(), |v| v.to_string()),
                    s.error.as_ref().map_or(String::new(), |e| format!(" FAILED: {e}"))
                );
                samples.push(s);
            }
        }
    }
    let versions: Vec<String> = kinds
        .iter()
        .map(|&k| {
            format!(
                "* {}: {}",
                k.label(),
                receivers::version(k, &opts.kroute_bin)
            )
        })
        .collect();
    let header = format!(
        "## Failover: {}\n\n* Command: `{}`\n* Date: {}\n* Machine: {}\n* Load average at the start: {}, at the end: {}\n* Table: {src}, {v4} IPv4 + {v6} IPv6 prefixes, announced by both senders\n{}\n",
        label(v4, v6),
        std::env::args()
            .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
            .collect::<Vec<_>>()
            .join(" "),
        command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        report::machine(),
        load_start,
        loadavg(),
        versions.join("\n"),
    );
    let md = failover::report(&samples, &header);
    std::fs::write(out, &md).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!("wrote {}", out.display());
    if let Some(j) = json {
        let text = serde_json::to_string_pretty(&samples).map_err(|e| e.to_string())?;
        std::fs::write(&j, text).map_err(|e| format!("{}: {e}", j.display()))?;
    }
    if samples.iter().any(|s| s.error.is_some()) {
        return Err("some runs failed (see the report)".into());
    }
    Ok(())
}

fn reflect_cmd(
    kinds: &[Kind],
    sizes: &[usize],
    repeat: usize,
    opts: &reflect::Opts,
    out: &std::path::Path,
    json: Option<PathBuf>,
) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("reflect needs root (network namespaces, kernel routes)".into());
    }
    netns::install_signal_cleanup();
    let load_start = loadavg();
    let header = || {
        let versions: Vec<String> = kinds
            .iter()
            .map(|&k| {
                format!(
                    "* {}: {}",
                    k.label(),
                    receivers::version(k, &opts.kroute_bin)
                )
            })
            .collect();
        format!(
            "## Cluster scale: route reflector, {} nodes\n\n* Command: `{}`\n* Date: {}\n* Machine: {}\n* Load average at the start: {}, at the end: {}\n* Each node: iBGP (AS {}), one IPv4 /24 + one IPv6 /64 pod CIDR; the reflector has every node as a route-reflector client and installs its best paths in the kernel\n{}\n",
            sizes.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", "),
            std::env::args()
                .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
                .collect::<Vec<_>>()
                .join(" "),
            command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            report::machine(),
            load_start,
            loadavg(),
            reflect::ASN,
            versions.join("\n"),
        )
    };
    reflect::run(kinds, sizes, repeat, opts, out, header, json.as_deref())
}

#[allow(clippy::too_many_arguments)]
fn run_cmd(
    kinds: &[Kind],
    senders: &[run::SenderKind],
    t: &TableArgs,
    churn: bool,
    churn_cfg: (usize, Duration, Duration),
    repeat: usize,
    opts: &run::Opts,
    out: &PathBuf,
    json: Option<PathBuf>,
    kernel_poll_ms: u64,
    rib_poll_ms: u64,
) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("run needs root (network namespaces, kernel routes)".into());
    }
    if repeat == 0 {
        return Err("--repeat must be at least 1".into());
    }
    netns::install_signal_cleanup();
    let load_start = loadavg();

    // (v4, v6, churn) points.
    let sized = t.ipv4.is_some() || t.ipv6.is_some() || t.mrt.is_some();
    let mut specs: Vec<(Option<(usize, usize)>, bool)> = Vec::new();
    if sized {
        specs.push((None, false));
        if churn {
            specs.push((None, true));
        }
    } else if churn {
        specs.push((Some((1_000_000, 200_000)), true));
    } else {
        specs.push((Some((1_000_000, 200_000)), false));
        specs.push((Some((100_000, 20_000)), false));
        specs.push((Some((1_000_000, 200_000)), true));
    }

    let mut samples = Vec::new();
    let mut infos = Vec::new();
    let mut source = String::new();
    let mut failures = Vec::new();
    let points = specs
        .into_iter()
        .flat_map(|spec| senders.iter().map(move |&sender| (spec, sender)));
    for ((size, is_churn), sender) in points {
        let t0 = Instant::now();
        let (table, src) = load_table(t, size.unwrap_or((1_000_000, 200_000)))?;
        source = src;
        let (v4, v6) = table.counts();
        let mut name = label(v4, v6);
        if is_churn {
            name = format!("churn: {} of {name}", churn_cfg.0);
        }
        if sender == run::SenderKind::Bird {
            name = format!("{name}, BIRD sender");
        }
        let opts = &run::Opts {
            sender,
            ..opts.clone()
        };
        let attribute_sets = table.groups.len();
        let prepared = run::Prepared::new(name.clone(), table, is_churn.then_some(churn_cfg));
        eprintln!(
            "== {name}: {} UPDATEs, {:.1} MiB, prepared in {:.1} s",
            prepared.messages,
            prepared.updates.len() as f64 / 1048576.0,
            t0.elapsed().as_secs_f64()
        );
        infos.push(report::PointInfo {
            label: name.clone(),
            v4,
            v6,
            attribute_sets,
            messages: prepared.messages,
            bytes: prepared.updates.len(),
            churn: is_churn.then_some((
                churn_cfg.0,
                churn_cfg.1.as_secs_f64(),
                churn_cfg.2.as_secs_f64() * 2.0,
            )),
        });
        for rep in 1..=repeat {
            for &k in kinds {
                if is_churn && (k.is_bound() || !k.programs_kernel()) {
                    continue;
                }
                let waited = idle::wait_idle(Duration::from_secs(30));
                if waited > 2.0 {
                    eprintln!("  (waited {waited:.0} s for the machine to settle)");
                }
                let started = Instant::now();
                let s = run::measure(k, &prepared, opts, rep);
                let verdict = run::verify(&s);
                eprintln!(
                    "  {k:<6} run {rep}: RIB {} s, kernel {} s, drop {} s, peak RSS {} MiB, CPU {} s{} [{:.0} s]",
                    fmt_opt(s.rib_s),
                    fmt_opt(s.kernel_s),
                    fmt_opt(s.drop_s),
                    s.peak_rss_kib.map_or("-".into(), |k| format!("{:.0}", k as f64 / 1024.0)),
                    fmt_opt(s.cpu_s),
                    match (&verdict, &s.churn) {
                        (Err(e), _) => format!(" FAILED: {e}"),
                        (Ok(()), Some(c)) => format!(
                            ", churn {}/{} phases, median lag {} ms (withdraw {}, announce {}), final {} ms",
                            c.reached,
                            c.phases,
                            fmt_opt(c.lag_median_ms),
                            fmt_opt(c.withdraw_median_ms),
                            fmt_opt(c.announce_median_ms),
                            fmt_opt(c.final_ms)
                        ),
                        _ => String::new(),
                    },
                    started.elapsed().as_secs_f64()
                );
                if let Err(e) = verdict {
                    failures.push(format!("{k} at {name} run {rep}: {e}"));
                }
                samples.push(s);
            }
        }
    }

    let meta = report::Meta {
        command: std::env::args()
            .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
            .collect::<Vec<_>>()
            .join(" "),
        date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        machine: report::machine(),
        load: format!("{load_start} at the start, {} at the end", loadavg()),
        versions: kinds
            .iter()
            .map(|k| (*k, receivers::version(*k, &opts.kroute_bin)))
            .collect(),
        repeat,
        source,
        kernel_poll_ms,
        rib_poll_ms,
    };
    let md = report::markdown(&meta, &infos, kinds, &samples);
    std::fs::write(out, md).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!("wrote {}", out.display());
    if let Some(j) = json {
        let text = serde_json::to_string_pretty(&samples).map_err(|e| e.to_string())?;
        std::fs::write(&j, text).map_err(|e| format!("{}: {e}", j.display()))?;
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} run(s) failed:\n  {}",
            failures.len(),
            failures.join("\n  ")
        ))
    }
}

/// /proc/loadavg's 1/5/15-minute figures.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}"))
}

fn command_line(prog: &str, args: &[&str]) -> String {
    std::process::Command::new(prog)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
