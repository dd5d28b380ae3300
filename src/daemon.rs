//! `kroute daemon`: wire the tasks together and run until SIGTERM/SIGINT.
//!
//! ```text
//! listener ──Incoming──▶ router task (RIB, peers) ──FibChange───▶ FIB task (netlink)
//! sessions ◀──PeerCmd──┘        ▲  ▲                ◀──FibEvent───┘
//! API socket ──Request──────────┘  └── SIGHUP (reload)
//! listener ◀──watch<AccessList>── router task (peers, passwords, GTSM; on reload)
//! BFD task ──RibEvent::Bfd──▶ router task ──BfdCmd (sessions on start/reload)──▶ BFD task
//! router task ──watch<Readiness>──▶ HTTP listener (api.http: /healthz, /readyz)
//! HTTP listener ──Request::Metrics──▶ router task (/metrics, at scrape time)
//! watch<Readiness> ──▶ sd_notify READY=1 ($NOTIFY_SOCKET, `crate::notify`)
//! ```
//!
//! The listener ([`crate::listener`]) closes connections that may not be
//! the peer they claim before they reach the router task. A panic in any
//! task ends the process ([`install_panic_exit`]).

use std::net::SocketAddr;
use std::path::Path;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info};

use crate::config::{self, Config};
use crate::events::{Incoming, RibEvent};
use crate::listener::{access_list, Listener};
use crate::rib_task::RouterTask;
use crate::session::socket;

/// Test builds only: `KROUTE_TEST_PANIC=<task>` makes that task panic when
/// it starts, so tests can check that a panic anywhere ends the process
/// (see `install_panic_exit`).
fn test_panic_point(task: &str) {
    if cfg!(debug_assertions) && std::env::var("KROUTE_TEST_PANIC").is_ok_and(|v| v == task) {
        panic!("KROUTE_TEST_PANIC={task}: test-triggered panic");
    }
}

/// Make a panic in any thread or task end the process with status 101.
///
/// Tokio catches a task's panic and keeps the other tasks running: a dead
/// router task would leave sessions Established that nothing routes for
/// (a zombie). Exiting instead lets systemd / Kubernetes restart kroute.
/// Nothing is cleaned up on this path: the kernel routes stay (as after
/// SIGKILL, whatever `keepOnExit` says) and the next start adopts them,
/// and peers see the TCP connection close.
pub fn install_panic_exit() {
    let print = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        error!("panic, exiting: {info}");
        print(info);
        std::process::exit(101);
    }));
}

pub async fn run(config_path: &Path) -> Result<(), String> {
    let cfg = config::load(config_path).map_err(|e| e.to_string())?;
    run_config(cfg, config_path, None).await
}

/// `run` with the config given; with `cluster` (Kubernetes mode) the
/// config comes from the cluster and `config_path` is only named in logs.
pub async fn run_config(
    cfg: Config,
    config_path: &Path,
    cluster: Option<crate::kubernetes::Cluster>,
) -> Result<(), String> {
    let process = crate::metrics::Process {
        started: std::time::SystemTime::now(),
    };
    info!(
        asn = cfg.router.asn,
        router_id = %cfg.router.router_id,
        peers = cfg.peers.len(),
        table = %config::table_name(cfg.kernel.table),
        protocol = %config::protocol_name(cfg.kernel.protocol),
        install = cfg.kernel.install,
        "kroute starting"
    );
    // FIB -> router events. The other direction, changes to the FIB, is
    // bounded inside `Fib::apply` (the router waits while the FIB's queue
    // is full); this one stays unbounded so that the FIB never waits for
    // the router, and the two can never wait on each other. It grows only
    // with the FIB's writes (one confirmation per write step), that is
    // with what the bounded direction let through.
    let (fib_tx, fib_rx) = mpsc::unbounded_channel();
    let fib = kernel::Fib::start(crate::domains::fib_config(&cfg), fib_tx)
        .map_err(|e| format!("cannot open netlink (are you root?): {e}"))?;
    let api_listener = crate::api::bind(&cfg.api.socket, cfg.api.group.as_ref())
        .map_err(|e| format!("api socket {}: {e}", cfg.api.socket.display()))?;
    // Bounded: when the RIB falls behind, session readers stop reading and
    // TCP pushes back on the sender instead of memory growing.
    let (ev_tx, ev_rx) = mpsc::channel::<RibEvent>(16);
    // Accepted connections, on their own channel (see events::Incoming).
    let (incoming_tx, incoming_rx) = mpsc::channel::<Incoming>(64);
    // Control API requests, on their own channel (see events::ApiCall).
    let (api_tx, api_rx) = mpsc::channel(64);

    // The router task republishes the peers on reload; the listener reads them.
    let (access_tx, access_rx) = watch::channel(access_list(&cfg));
    if let Some(listen) = &cfg.router.listen {
        let addr = SocketAddr::new(listen.address, listen.port);
        let socket = socket::listen(addr).map_err(|e| format!("listen on {addr}: {e}"))?;
        let listener = Listener::new(socket, access_rx);
        info!(%addr, "listening for BGP connections");
        tokio::spawn(listener.run(incoming_tx));
    }

    tokio::spawn(crate::api::serve(
        api_listener,
        ev_tx.clone(),
        api_tx.clone(),
    ));
    let (ready_tx, ready_rx) = watch::channel(crate::events::Readiness::NotReady(
        "initial convergence: waiting for every peer's End-of-RIB".to_string(),
    ));
    // systemd (Type=notify): READY=1 with /readyz, not at start.
    tokio::spawn(crate::notify::ready_when(ready_rx.clone()));
    if let Some(http) = &cfg.api.http {
        let addr = SocketAddr::new(http.address, http.port);
        let l = crate::http::bind(addr)
            .await
            .map_err(|e| format!("api.http {addr}: {e}"))?;
        info!(%addr, "serving /healthz, /readyz and /metrics");
        let router = api_tx.clone();
        let routes = crate::http::Routes::health(ready_rx.clone()).route("/metrics", move || {
            crate::metrics::scrape(router.clone(), process)
        });
        tokio::spawn(crate::http::serve(l, routes));
    }
    let bfd = crate::bfd::spawn(ev_tx.clone());
    // Each routing domain's FIB, in this namespace like the default one.
    let domains = crate::domains::Domains::start(&cfg)?;
    let router = RouterTask::new(
        config_path.to_path_buf(),
        cfg.clone(),
        fib,
        ev_tx.clone(),
        access_tx,
        bfd,
        api_rx,
    )
    .with_readiness(ready_tx)
    .with_domains(domains);
    let router = match cluster {
        Some(cluster) => {
            tokio::spawn(cluster.run(ev_tx.clone(), api_tx.clone()));
            router.config_from_cluster()
        }
        None => router,
    };
    let router = tokio::spawn(async move {
        test_panic_point("rib");
        router.run(ev_rx, incoming_rx, fib_rx).await
    });

    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                info!("SIGHUP: reloading {}", config_path.display());
                let _ = ev_tx.send(RibEvent::Reload).await;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    info!("shutting down");
    crate::notify::stopping();
    let (done_tx, done_rx) = oneshot::channel();
    if ev_tx
        .send(RibEvent::Shutdown { done: done_tx })
        .await
        .is_ok()
    {
        let _ = done_rx.await;
    }
    if let Err(e) = router.await {
        error!("router task: {e}");
    }
    let _ = std::fs::remove_file(&cfg.api.socket);
    Ok(())
}
