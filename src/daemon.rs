//! `kroute daemon`: wire the tasks together and run until SIGTERM/SIGINT.
//!
//! ```text
//! listener ──Incoming──▶ router task (RIB, peers) ──RouteChange──▶ FIB task (netlink)
//! sessions ◀──PeerCmd──┘        ▲  ▲                ◀──FibEvent───┘
//! API socket ──Request──────────┘  └── SIGHUP (reload)
//! ```

use std::net::SocketAddr;
use std::path::Path;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use crate::config::{self, Config};
use crate::events::RibEvent;
use crate::rib_task::RouterTask;
use crate::session::socket;

pub fn fib_config(c: &Config) -> kernel::FibConfig {
    kernel::FibConfig {
        table: c.kernel.table,
        protocol: c.kernel.protocol,
        metric: c.kernel.metric,
        install: c.kernel.install,
        keep_on_exit: c.kernel.keep_on_exit,
        nexthop_objects: c.kernel.nexthop_objects,
    }
}

pub async fn run(config_path: &Path) -> Result<(), String> {
    let cfg = config::load(config_path).map_err(|e| e.to_string())?;
    info!(
        asn = cfg.router.asn,
        router_id = %cfg.router.router_id,
        peers = cfg.peers.len(),
        table = %config::table_name(cfg.kernel.table),
        protocol = %config::protocol_name(cfg.kernel.protocol),
        install = cfg.kernel.install,
        "kroute starting"
    );
    let (fib_tx, fib_rx) = mpsc::unbounded_channel();
    let fib = kernel::Fib::start(fib_config(&cfg), fib_tx)
        .map_err(|e| format!("cannot open netlink (are you root?): {e}"))?;
    let api_listener = crate::api::bind(&cfg.api.socket)
        .map_err(|e| format!("api socket {}: {e}", cfg.api.socket.display()))?;
    // Bounded: when the RIB falls behind, session readers stop reading and
    // TCP pushes back on the sender instead of memory growing.
    let (ev_tx, ev_rx) = mpsc::channel::<RibEvent>(16);

    if let Some(listen) = &cfg.router.listen {
        let addr = SocketAddr::new(listen.address, listen.port);
        let listener = socket::listen(addr).map_err(|e| format!("listen on {addr}: {e}"))?;
        for p in cfg.peers.iter().filter(|p| p.password.is_some()) {
            if let Err(e) =
                socket::listener_md5(&listener, p.address, p.password.as_deref().unwrap_or(""))
            {
                warn!(peer = %p.name, "TCP-MD5 on listener: {e}");
            }
        }
        info!(%addr, "listening for BGP connections");
        let tx = ev_tx.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, remote)) => {
                        let remote = socket::unmap(remote.ip());
                        if tx
                            .send(RibEvent::Incoming { stream, remote })
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Err(e) => warn!("accept: {e}"),
                }
            }
        });
    }

    tokio::spawn(crate::api::serve(api_listener, ev_tx.clone()));
    let router = RouterTask::new(config_path.to_path_buf(), cfg.clone(), fib, ev_tx.clone());
    let router = tokio::spawn(router.run(ev_rx, fib_rx));

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
