//! The `kroute` binary: parse the command line and call into the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use kroute::cli::{self, Cli, ClusterCmd, Command, ConfigCmd, KubernetesArgs, LogFormat};
use kroute::{daemon, lab};

/// Two glibc settings that keep a full table's transient buffers from
/// staying resident (measured with kroute-bench, 1M + 200k routes):
/// * glibc gives every thread that allocates under contention its own heap
///   arena (up to 8 per core), and memory freed in one arena is not reused
///   by another: with the RIB and the FIB worker handing a full table
///   between threads that cost ~35 MB of peak RSS. Two arenas keep the
///   threads from contending (one made some runs 20 MB larger).
/// * Allocations of 128 KiB and more (batches of route changes, decoded
///   UPDATEs, netlink buffers) are mmapped and so returned to the system
///   when freed. By default glibc raises that threshold to the size of each
///   such block freed, after which the batches came from the heap and left
///   it fragmented: peak RSS 185-217 MiB over three runs, 183-191 MiB with
///   the threshold fixed.
///
/// Must run before any thread starts.
fn tune_malloc() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets allocator parameters; called while the
    // process has one thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Log lines on stderr at `RUST_LOG` (default info): text, with colour
/// only when stderr is a terminal (a file or journald gets no escape
/// codes), or one JSON object per line.
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Daemon {
            log_format,
            kubernetes,
        } if kubernetes.kubernetes => {
            // The config (and its `log.format`) comes from the cluster
            // later: the flag or text.
            kubernetes_daemon(&cli, log_format.unwrap_or_default(), kubernetes)
        }
        Command::Daemon { log_format, .. } => {
            let Some(path) = cli.config.clone() else {
                eprintln!(
                    "kroute daemon needs a config file: kroute daemon -c FILE (or --kubernetes)"
                );
                return ExitCode::from(2);
            };
            tune_malloc();
            // The flag wins; else the config's `log.format`. A config that
            // does not load is reported by the daemon, in text.
            let format = log_format.unwrap_or_else(|| {
                kroute::config::load(&path)
                    .map(|c| c.log.format)
                    .unwrap_or_default()
            });
            init_logs(format);
            run_daemon(daemon::run(&path))
        }
        Command::Config {
            what: ConfigCmd::Check { file, print, node },
        } => cli::config_check_main(file, node.as_deref(), *print, cli.output),
        Command::Completion { .. } | Command::Man => {
            match cli::generate(&cli.command, &mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("kroute: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Cluster {
            what: ClusterCmd::Check { kubeconfig },
        } => kroute::kubernetes::cluster_check::main(kubeconfig.as_deref(), cli.output),
        Command::Manifests {
            image,
            secrets,
            http_port,
        } => {
            let options = kroute::kubernetes::manifests::Options {
                image: image.clone(),
                secrets: secrets.clone(),
                http_port: *http_port,
            };
            print!("{}", kroute::kubernetes::manifests::all(&options));
            ExitCode::SUCCESS
        }
        Command::Lab { what } => match lab::run(what, cli.output) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kroute lab: {e}");
                ExitCode::FAILURE
            }
        },
        _ => match cli::run_client(&cli) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kroute: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `kroute daemon --kubernetes`: the config rendered from the cluster.
fn kubernetes_daemon(cli: &Cli, log_format: LogFormat, k: &KubernetesArgs) -> ExitCode {
    let node = match std::env::var("NODE_NAME") {
        Ok(n) if !n.is_empty() => n,
        _ => {
            eprintln!(
                "kroute daemon --kubernetes needs NODE_NAME (from the downward API: spec.nodeName)"
            );
            return ExitCode::from(2);
        }
    };
    tune_malloc();
    if std::env::var_os("RUST_LOG").is_none() {
        // kube's client logs every failed connection at ERROR; kroute's
        // watchers say it once per outage (and when the watch resumes).
        std::env::set_var("RUST_LOG", "info,kube_client::client::builder=off");
    }
    init_logs(log_format);
    let opts = kroute::kubernetes::Options {
        kubeconfig: k.kubeconfig.clone(),
        node,
        state_dir: k.state_dir.clone(),
        namespace: k.namespace.clone(),
        socket: cli.socket.clone(),
    };
    let cache = kroute::kubernetes::cache::path(&opts.state_dir);
    let run = async move {
        let (config, cluster) = kroute::kubernetes::start(opts).await?;
        daemon::run_config(config, &cache, Some(cluster)).await
    };
    run_daemon(run)
}

/// Run the daemon's future on a multi-threaded runtime; a panic in any
/// task ends the process (non-zero), an error is printed.
fn run_daemon(run: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    daemon::install_panic_exit();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kroute: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kroute: {e}");
            ExitCode::FAILURE
        }
    }
}
