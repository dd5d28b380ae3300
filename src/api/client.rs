//! The client side of the API: one request per connection, one answer,
//! decoded into its typed view.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::views::{
    BfdSessionView, ExplainView, FibEntryView, NeighborDetailView, NeighborView, ReloadView,
    RouteView, StatusView, WatchEvent,
};
use crate::events::{Request, Response};

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the kroute daemon at {}: {source} (is `kroute daemon` running? use --socket or -c)",
        socket.display()
    )]
    Connect { socket: PathBuf, source: io::Error },
    /// The socket is there, but we may not write to it.
    #[error("permission denied on {} (needs root or group {group})", socket.display())]
    PermissionDenied { socket: PathBuf, group: String },
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The daemon understood the request and refused it (e.g. a bad prefix).
    #[error("{0}")]
    Daemon(String),
    /// Not a response line at all.
    #[error("bad response from daemon: {0}")]
    BadResponse(serde_json::Error),
    /// A response whose value is not the view this request answers with,
    /// e.g. a field missing or renamed: the path says which.
    #[error("unexpected answer from daemon to {request}: {source}")]
    Decode {
        request: &'static str,
        source: serde_path_to_error::Error<serde_json::Error>,
    },
}

/// A client of one daemon's API socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            socket: socket.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `show neighbors`.
    pub fn neighbors(&self) -> Result<Vec<NeighborView>, ClientError> {
        self.typed(&Request::Neighbors, "neighbors")
    }

    /// `show neighbor NAME`.
    pub fn neighbor(&self, name: &str) -> Result<NeighborDetailView, ClientError> {
        let req = Request::Neighbor {
            name: name.to_string(),
        };
        self.typed(&req, "neighbor")
    }

    /// `kroute watch`: `each` gets every event as it comes, until it
    /// returns false or the daemon closes the stream.
    pub fn watch(&self, mut each: impl FnMut(WatchEvent) -> bool) -> Result<(), ClientError> {
        let mut stream =
            UnixStream::connect(&self.socket).map_err(|source| self.connect_error(source))?;
        let mut line = serde_json::to_vec(&Request::Watch).map_err(io::Error::from)?;
        line.push(b'\n');
        stream.write_all(&line)?;
        let mut lines = BufReader::new(stream);
        loop {
            let mut answer = String::new();
            if lines.read_line(&mut answer)? == 0 {
                return Ok(());
            }
            let value = match serde_json::from_str::<Response>(&answer)
                .map_err(ClientError::BadResponse)?
            {
                Response::Ok(v) => v,
                Response::Error(e) => return Err(ClientError::Daemon(e)),
            };
            if !each(decode(value, "watch")?) {
                return Ok(());
            }
        }
    }

    /// `show status`.
    pub fn status(&self) -> Result<StatusView, ClientError> {
        self.typed(&Request::Status, "status")
    }

    /// `show routes`: the Loc-RIB, or with `received`/`advertised` a peer's
    /// Adj-RIB-In/Out; `prefix` is a prefix or an address (longest match).
    pub fn routes(
        &self,
        prefix: Option<&str>,
        peer: Option<&str>,
        table: rib::Table,
    ) -> Result<Vec<RouteView>, ClientError> {
        self.routes_in(None, prefix, peer, table)
    }

    /// [`Client::routes`] of routing domain `domain` (None: the default).
    pub fn routes_in(
        &self,
        domain: Option<&str>,
        prefix: Option<&str>,
        peer: Option<&str>,
        table: rib::Table,
    ) -> Result<Vec<RouteView>, ClientError> {
        let req = Request::Routes {
            prefix: prefix.map(String::from),
            peer: peer.map(String::from),
            received: table == rib::Table::Received,
            advertised: table == rib::Table::Advertised,
            domain: domain.map(String::from),
        };
        self.typed(&req, "routes")
    }

    /// `show fib`: what the FIB wants in the kernel and its state.
    pub fn fib(&self, prefix: Option<&str>) -> Result<Vec<FibEntryView>, ClientError> {
        self.fib_in(None, prefix)
    }

    /// [`Client::fib`] of routing domain `domain` (None: the default).
    pub fn fib_in(
        &self,
        domain: Option<&str>,
        prefix: Option<&str>,
    ) -> Result<Vec<FibEntryView>, ClientError> {
        let req = Request::Fib {
            prefix: prefix.map(String::from),
            domain: domain.map(String::from),
        };
        self.typed(&req, "fib")
    }

    /// `explain PREFIX`.
    pub fn explain(&self, prefix: &str) -> Result<ExplainView, ClientError> {
        self.explain_in(None, prefix)
    }

    /// [`Client::explain`] in routing domain `domain` (None: the default).
    pub fn explain_in(
        &self,
        domain: Option<&str>,
        prefix: &str,
    ) -> Result<ExplainView, ClientError> {
        let req = Request::Explain {
            prefix: prefix.to_string(),
            domain: domain.map(String::from),
        };
        self.typed(&req, "explain")
    }

    /// `show domains`.
    pub fn domains(&self) -> Result<Vec<crate::api::views::DomainView>, ClientError> {
        self.typed(&Request::Domains, "domains")
    }

    /// `show bfd`: the BFD sessions.
    pub fn bfd(&self) -> Result<Vec<BfdSessionView>, ClientError> {
        self.typed(&Request::Bfd, "bfd")
    }

    /// `reload`: re-read the config file.
    pub fn reload(&self) -> Result<ReloadView, ClientError> {
        self.typed(&Request::Reload, "reload")
    }

    /// One request, its answer's value as sent.
    pub fn request(&self, req: &Request) -> Result<serde_json::Value, ClientError> {
        let mut stream =
            UnixStream::connect(&self.socket).map_err(|source| self.connect_error(source))?;
        let mut line = serde_json::to_vec(req).map_err(io::Error::from)?;
        line.push(b'\n');
        stream.write_all(&line)?;
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer)?;
        match serde_json::from_str::<Response>(&answer).map_err(ClientError::BadResponse)? {
            Response::Ok(v) => Ok(v),
            Response::Error(e) => Err(ClientError::Daemon(e)),
        }
    }

    fn connect_error(&self, source: io::Error) -> ClientError {
        if source.kind() == io::ErrorKind::PermissionDenied {
            return ClientError::PermissionDenied {
                socket: self.socket.clone(),
                group: socket_group(&self.socket),
            };
        }
        ClientError::Connect {
            socket: self.socket.clone(),
            source,
        }
    }

    fn typed<T: DeserializeOwned>(
        &self,
        req: &Request,
        request: &'static str,
    ) -> Result<T, ClientError> {
        decode(self.request(req)?, request)
    }
}

/// An answer's value as the view `T`; `request` names it in the error.
pub fn decode<T: DeserializeOwned>(
    value: serde_json::Value,
    request: &'static str,
) -> Result<T, ClientError> {
    serde_path_to_error::deserialize(value)
        .map_err(|source| ClientError::Decode { request, source })
}

/// One request, its answer's value as sent, errors in words (for callers
/// that read the value themselves; `kroute lab` until it uses [`Client`]).
pub fn call(socket: &PathBuf, req: &Request) -> Result<serde_json::Value, String> {
    Client::new(socket).request(req).map_err(|e| e.to_string())
}

/// The name (else the number) of the group owning `socket`.
fn socket_group(socket: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(gid) = std::fs::metadata(socket).map(|m| m.gid()) else {
        return "?".to_string();
    };
    // SAFETY: all-zero is a valid `struct group` to be filled in.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: out-pointers and a buffer of the given length.
    let rc = unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || grp.gr_name.is_null() {
        return gid.to_string();
    }
    // SAFETY: getgrgid_r set gr_name to a NUL-terminated string in `buf`.
    unsafe { std::ffi::CStr::from_ptr(grp.gr_name) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;
    use std::thread;

    use super::*;

    /// A one-connection daemon stand-in: reads one request line, checks it
    /// is `expect`, answers `answer`.
    struct FakeDaemon {
        dir: PathBuf,
        thread: thread::JoinHandle<()>,
    }

    impl FakeDaemon {
        fn start(name: &str, expect: &'static str, answer: &'static str) -> (Client, FakeDaemon) {
            let dir =
                std::env::temp_dir().join(format!("kroute-client-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let socket = dir.join("api.sock");
            let listener = UnixListener::bind(&socket).unwrap();
            let thread = thread::spawn(move || {
                let (stream, _) = listener.accept().unwrap();
                let mut line = String::new();
                BufReader::new(&stream).read_line(&mut line).unwrap();
                assert_eq!(line.trim_end(), expect);
                (&stream).write_all(answer.as_bytes()).unwrap();
            });
            (Client::new(&socket), FakeDaemon { dir, thread })
        }

        /// Fails the test if the request was not the expected one.
        fn finish(self) {
            self.thread
                .join()
                .expect("the fake daemon saw another request");
            std::fs::remove_dir_all(self.dir).unwrap();
        }
    }

    #[test]
    fn a_typed_answer_is_decoded() {
        let (client, daemon) = FakeDaemon::start(
            "ok",
            r#"{"request":"reload"}"#,
            "{\"ok\":{\"reloaded\":true,\"changes\":[\"peer b added\"]}}\n",
        );
        let v = client.reload().unwrap();
        assert!(v.reloaded);
        assert_eq!(v.changes, ["peer b added"]);
        daemon.finish();
    }

    #[test]
    fn the_daemons_refusal_is_its_words() {
        let (client, daemon) = FakeDaemon::start(
            "refused",
            r#"{"request":"explain","prefix":"nonsense"}"#,
            "{\"error\":\"invalid prefix \\\"nonsense\\\"\"}\n",
        );
        let e = client.explain("nonsense").unwrap_err();
        assert!(matches!(e, ClientError::Daemon(_)), "{e:?}");
        assert_eq!(e.to_string(), "invalid prefix \"nonsense\"");
        daemon.finish();
    }

    #[test]
    fn an_answer_of_the_wrong_shape_names_the_field() {
        let (client, daemon) = FakeDaemon::start(
            "shape",
            r#"{"request":"routes","prefix":"10.0.0.0/8","peer":"a","received":true,"advertised":false}"#,
            "{\"ok\":[{\"prefix\":\"10.0.0.0/8\"}]}\n",
        );
        let e = client
            .routes(Some("10.0.0.0/8"), Some("a"), rib::Table::Received)
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("unexpected answer from daemon to routes: [0]"),
            "{text}"
        );
        assert!(text.contains("missing field"), "{text}");
        daemon.finish();
    }

    #[test]
    fn no_daemon_says_where_it_looked() {
        let socket =
            std::env::temp_dir().join(format!("kroute-client-{}-none.sock", std::process::id()));
        let e = Client::new(&socket).neighbors().unwrap_err();
        assert!(matches!(e, ClientError::Connect { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.starts_with(&format!(
            "cannot reach the kroute daemon at {}",
            socket.display()
        )));
        assert!(text.contains("is `kroute daemon` running?"));
    }

    #[test]
    fn a_closed_connection_is_a_bad_response() {
        let (client, daemon) = FakeDaemon::start("closed", r#"{"request":"neighbors"}"#, "");
        let e = client.neighbors().unwrap_err();
        assert!(matches!(e, ClientError::BadResponse(_)), "{e:?}");
        daemon.finish();
    }
}
