//! The local control API: newline-delimited JSON over a Unix socket (mode
//! 0660). One request per line, one response per line. The CLI is its only
//! client; `-o json` prints the response's value as is.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::events::RibEvent;
pub use crate::events::{Request, Response};

pub fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A socket file left by a previous run that is no longer served.
    if path.exists() && std::os::unix::net::UnixStream::connect(path).is_err() {
        std::fs::remove_file(path)?;
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(l)
}

pub async fn serve(listener: UnixListener, rib: mpsc::Sender<RibEvent>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let rib = rib.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, rib).await {
                warn!("api connection: {e}");
            }
        });
    }
}

async fn handle(stream: UnixStream, rib: mpsc::Sender<RibEvent>) -> io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::new(rd).lines();
    while let Some(line) = lines.next_line().await? {
        let resp = match serde_json::from_str::<Request>(&line) {
            Err(e) => Response::Error(format!("bad request: {e}")),
            Ok(req) => {
                let (tx, rx) = oneshot::channel();
                if rib
                    .send(RibEvent::Api {
                        request: req,
                        reply: tx,
                    })
                    .await
                    .is_err()
                {
                    Response::Error("daemon is shutting down".into())
                } else {
                    rx.await
                        .unwrap_or_else(|_| Response::Error("request dropped".into()))
                }
            }
        };
        let mut out = serde_json::to_vec(&resp)?;
        out.push(b'\n');
        wr.write_all(&out).await?;
    }
    Ok(())
}

/// Client side: one request, one response.
pub fn call(socket: &PathBuf, req: &Request) -> Result<serde_json::Value, String> {
    use std::io::{BufRead, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).map_err(|e| {
        format!(
            "cannot reach the kroute daemon at {}: {e} (is `kroute daemon` running? use --socket or -c)",
            socket.display()
        )
    })?;
    let mut line = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    line.push(b'\n');
    s.write_all(&line).map_err(|e| e.to_string())?;
    let mut resp = String::new();
    std::io::BufReader::new(s)
        .read_line(&mut resp)
        .map_err(|e| e.to_string())?;
    match serde_json::from_str::<Response>(&resp) {
        Ok(Response::Ok(v)) => Ok(v),
        Ok(Response::Error(e)) => Err(e),
        Err(e) => Err(format!("bad response from daemon: {e}")),
    }
}
