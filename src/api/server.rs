//! The daemon's side of the API: accept connections, read one request per
//! line, forward it to the router task and write its answer back.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::events::{Request, Response, RibEvent};

/// Bind the API socket, replacing a stale socket file of a previous run.
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

/// Serve API connections; runs until the daemon exits.
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
