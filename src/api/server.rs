//! The daemon's side of the API: accept connections, read one request per
//! line, forward it to the router task and write its answer back.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::config::GroupName;
use crate::events::{ApiCall, ApiSender, Request, Response, RibEvent};

/// Bind the API socket, replacing a stale socket file of a previous run:
/// mode 0660, owned by us (root) and by `group` if one is configured, so
/// that group's members may use the CLI.
pub fn bind(path: &Path, group: Option<&GroupName>) -> io::Result<UnixListener> {
    let gid = group.map(group_id).transpose()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A socket file left by a previous run that is no longer served.
    if path.exists() && std::os::unix::net::UnixStream::connect(path).is_err() {
        std::fs::remove_file(path)?;
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid))?;
    }
    Ok(l)
}

/// The gid of `api.group`.
fn group_id(group: &GroupName) -> io::Result<u32> {
    let name = match group {
        GroupName::Id(gid) => return Ok(*gid),
        GroupName::Name(name) => name,
    };
    let not_found = || {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("api.group: no group named {name:?}"),
        )
    };
    let cname = std::ffi::CString::new(name.as_str()).map_err(|_| not_found())?;
    // SAFETY: all-zero is a valid `struct group` to be filled in.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated name, out-pointers and a buffer of the given length.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    if found.is_null() {
        return Err(not_found());
    }
    Ok(grp.gr_gid)
}

/// Serve API connections; runs until the daemon exits. Requests go to
/// `api`, `watch` streams are asked of `rib`.
pub async fn serve(listener: UnixListener, rib: mpsc::Sender<RibEvent>, api: ApiSender) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (rib, api) = (rib.clone(), api.clone());
        tokio::spawn(async move {
            if let Err(e) = handle(stream, rib, api).await {
                warn!("api connection: {e}");
            }
        });
    }
}

/// The longest request line read; a longer one gets an error and the
/// connection is closed (no client can make the daemon buffer more).
pub const MAX_REQUEST_LINE: usize = 64 * 1024;

/// The next request line without its newline; `None` at the end. A line
/// longer than [`MAX_REQUEST_LINE`] is an error of kind `InvalidData`.
async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(rd: &mut R) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    // One byte more than allowed, to tell "exactly at the cap" from "over".
    let n = rd
        .take(MAX_REQUEST_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_REQUEST_LINE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("request line longer than {MAX_REQUEST_LINE} bytes"),
        ));
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "request is not UTF-8"))
}

async fn handle(stream: UnixStream, rib: mpsc::Sender<RibEvent>, api: ApiSender) -> io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    loop {
        let line = match next_line(&mut rd).await {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let mut out = serde_json::to_vec(&Response::Error(format!("bad request: {e}")))?;
                out.push(b'\n');
                wr.write_all(&out).await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let resp = match serde_json::from_str::<Request>(&line) {
            Err(e) => Response::Error(format!("bad request: {e}")),
            Ok(Request::Watch) => return watch(&rib, &mut wr).await,
            Ok(req) => {
                let (tx, rx) = oneshot::channel();
                if api
                    .send(ApiCall {
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
}

/// `kroute watch`: one line per event (a [`Response::Ok`] with a
/// `WatchEvent`) until the client goes away or the daemon exits.
async fn watch(
    rib: &mpsc::Sender<RibEvent>,
    wr: &mut tokio::net::unix::OwnedWriteHalf,
) -> io::Result<()> {
    use tokio::sync::broadcast::error::RecvError;
    let (tx, rx) = oneshot::channel();
    let events = match rib.send(RibEvent::Watch { reply: tx }).await {
        Ok(()) => rx.await.ok(),
        Err(_) => None,
    };
    let Some(mut events) = events else {
        let mut out = serde_json::to_vec(&Response::Error("daemon is shutting down".into()))?;
        out.push(b'\n');
        return wr.write_all(&out).await;
    };
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(missed)) => crate::api::views::WatchEvent::Lagged { missed },
            Err(RecvError::Closed) => return Ok(()),
        };
        let mut out = serde_json::to_vec(&Response::Ok(serde_json::to_value(event)?))?;
        out.push(b'\n');
        // Fails once the client has closed: the watch ends.
        wr.write_all(&out).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(input: Vec<u8>) -> Vec<io::Result<Option<String>>> {
        let mut rd = BufReader::new(&input[..]);
        let mut out = Vec::new();
        loop {
            let r = next_line(&mut rd).await;
            let end = !matches!(r, Ok(Some(_)));
            out.push(r);
            if end {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn request_lines_are_read_up_to_the_cap() {
        let mut input = b"{\"request\":\"neighbors\"}\nlast".to_vec();
        let at_cap = "x".repeat(MAX_REQUEST_LINE);
        input.extend_from_slice(format!("\n{at_cap}\n").as_bytes());
        let got: Vec<Option<String>> = lines_of(input)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            got,
            vec![
                Some("{\"request\":\"neighbors\"}".into()),
                Some("last".into()),
                Some(at_cap),
                None
            ]
        );
    }

    #[tokio::test]
    async fn a_longer_line_is_an_error_not_a_bigger_buffer() {
        let mut input = "y".repeat(MAX_REQUEST_LINE + 1).into_bytes();
        input.extend_from_slice(b"\n{\"request\":\"neighbors\"}\n");
        let got = lines_of(input).await;
        assert_eq!(got.len(), 1);
        let e = got.into_iter().next().unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // And a stream without any newline is cut off at the cap too.
        let endless = vec![b'z'; 4 * MAX_REQUEST_LINE];
        let got = lines_of(endless).await;
        assert_eq!(got.len(), 1);
        assert!(got[0].is_err());
    }
}
