//! systemd's readiness protocol (`Type=notify`, sd_notify(3)): one
//! datagram of `KEY=VALUE` lines to the unix socket named by
//! `$NOTIFY_SOCKET`. No library is needed: it is a `sendto`.
//!
//! The daemon sends `READY=1` once the router task declares the initial
//! convergence over (the same `watch<Readiness>` as `/readyz`), so
//! `systemctl start kroute` returns when the node routes, and units
//! ordered `After=kroute.service` start then; and `STOPPING=1` when it
//! begins to shut down. Without `$NOTIFY_SOCKET` (not under systemd)
//! nothing is sent.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use tokio::sync::watch;
use tracing::{info, warn};

use crate::events::Readiness;

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Where `$NOTIFY_SOCKET` points: a path, or an abstract socket when it
/// starts with `@` (sd_notify(3)).
fn address(value: &str) -> io::Result<SocketAddr> {
    match value.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
        None if value.starts_with('/') => SocketAddr::from_pathname(value),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{NOTIFY_SOCKET}={value:?} is neither an absolute path nor @abstract"),
        )),
    }
}

/// Send `state` (e.g. "READY=1") to `$NOTIFY_SOCKET`. Ok(false): the
/// variable is not set, nothing sent.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(value) = std::env::var_os(NOTIFY_SOCKET) else {
        return Ok(false);
    };
    let value = value.to_string_lossy();
    let to = address(&value)?;
    let socket = UnixDatagram::unbound()?;
    socket.send_to_addr(state.as_bytes(), &to)?;
    Ok(true)
}

/// Logs a failed notification: systemd then times the start out, which is
/// the message to read.
fn send(state: &str) {
    match notify(state) {
        Ok(true) => info!(state = %state.replace('\n', " "), "told systemd"),
        Ok(false) => {}
        Err(e) => warn!("{NOTIFY_SOCKET}: cannot send {state:?}: {e}"),
    }
}

/// Sends `READY=1` once `ready` says [`Readiness::Ready`] (it never goes
/// back: readiness is the initial convergence).
pub async fn ready_when(mut ready: watch::Receiver<Readiness>) {
    if std::env::var_os(NOTIFY_SOCKET).is_none() {
        return;
    }
    if ready.wait_for(|r| *r == Readiness::Ready).await.is_ok() {
        send("READY=1\nSTATUS=initial convergence done, routing");
    }
}

/// Sends `STOPPING=1`: the daemon is shutting down.
pub fn stopping() {
    send("STOPPING=1\nSTATUS=shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_paths_or_abstract_names() {
        assert_eq!(
            address("/run/systemd/notify")
                .unwrap()
                .as_pathname()
                .unwrap(),
            std::path::Path::new("/run/systemd/notify")
        );
        assert_eq!(
            address("@sd-notify").unwrap().as_abstract_name(),
            Some(&b"sd-notify"[..])
        );
        let e = address("relative/path").unwrap_err();
        assert!(e.to_string().contains("neither an absolute path"), "{e}");
    }
}
