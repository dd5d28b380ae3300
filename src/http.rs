//! The HTTP listener (`api.http`): HTTP/1.1, `GET` (and `HEAD`) only.
//!
//! * `/healthz`: 200 while the process runs (the liveness probe: it does
//!   not depend on the router task, so a busy RIB is not a dead process);
//! * `/readyz`: 200 once the daemon is [`Readiness::Ready`], else 503 with
//!   the reason (the readiness probe);
//! * `/metrics`: Prometheus exposition, asked of the router task at each
//!   scrape ([`crate::metrics`]).
//!
//! Routes are a table of path → handler ([`Routes`]); a handler is async,
//! so one that must ask another task (`/metrics`) is one `.route(...)`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tracing::{debug, warn};

use crate::events::Readiness;

/// Connections served at once; more wait in the kernel's accept queue.
/// Probes and a scraper need a handful.
const MAX_CONNECTIONS: usize = 32;
/// A client that has not sent its request headers by then is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The content type of a plain-text reply.
pub const TEXT: &str = "text/plain; charset=utf-8";

/// What a handler answers: status, body and its content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: StatusCode,
    pub body: String,
    pub content_type: &'static str,
}

impl Reply {
    /// 200 with a plain-text body.
    pub fn ok(body: impl Into<String>) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: body.into(),
            content_type: TEXT,
        }
    }
}

type ReplyFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;
type Handler = Box<dyn Fn() -> ReplyFuture + Send + Sync>;

/// Path → handler.
#[derive(Default)]
pub struct Routes {
    routes: Vec<(&'static str, Handler)>,
}

impl Routes {
    pub fn new() -> Routes {
        Routes::default()
    }

    /// Serve `path` (exact match, query ignored) with `handler`.
    pub fn route<F, Fut>(mut self, path: &'static str, handler: F) -> Routes
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        self.routes
            .push((path, Box::new(move || Box::pin(handler()) as ReplyFuture)));
        self
    }

    /// `/healthz` and `/readyz`, reading readiness from `ready`.
    pub fn health(ready: watch::Receiver<Readiness>) -> Routes {
        Routes::new()
            .route("/healthz", || async { Reply::ok("ok\n") })
            .route("/readyz", move || {
                let state = ready.borrow().clone();
                async move {
                    match state {
                        Readiness::Ready => Reply::ok("ready\n"),
                        Readiness::NotReady(why) => Reply {
                            status: StatusCode::SERVICE_UNAVAILABLE,
                            body: format!("not ready: {why}\n"),
                            content_type: TEXT,
                        },
                    }
                }
            })
    }

    async fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let Some((_, handler)) = self.routes.iter().find(|(p, _)| *p == req.uri().path()) else {
            return text(StatusCode::NOT_FOUND, "not found\n".to_string());
        };
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".to_string());
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        let reply = handler().await;
        // HEAD: hyper sends the headers (Content-Length included) and
        // leaves the body out.
        typed(reply.status, reply.body, reply.content_type)
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    typed(status, body, TEXT)
}

fn typed(status: StatusCode, body: String, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Bind the listener (at start, so a taken port fails the start).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serve `routes` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, routes: Routes) {
    let routes = Arc::new(routes);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and the like: wait instead of spinning.
                warn!("http: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let routes = routes.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let routes = routes.clone();
                async move { Ok::<_, std::convert::Infallible>(routes.answer(&req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                debug!(%peer, "http: connection: {e}");
            }
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    /// One request, the whole answer (the server closes after `Connection: close`).
    async fn get(addr: SocketAddr, method: &str, path: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    async fn start(routes: Routes) -> SocketAddr {
        let l = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(serve(l, routes));
        addr
    }

    #[tokio::test]
    async fn readyz_follows_readiness_and_healthz_is_always_ok() {
        let (tx, rx) = watch::channel(Readiness::NotReady("initial convergence".into()));
        let addr = start(Routes::health(rx)).await;
        let r = get(addr, "GET", "/readyz").await;
        assert!(r.starts_with("HTTP/1.1 503"), "{r}");
        assert!(r.ends_with("not ready: initial convergence\n"), "{r}");
        assert!(get(addr, "GET", "/healthz")
            .await
            .starts_with("HTTP/1.1 200"));
        tx.send_replace(Readiness::Ready);
        let r = get(addr, "GET", "/readyz?verbose").await;
        assert!(
            r.starts_with("HTTP/1.1 200") && r.ends_with("ready\n"),
            "{r}"
        );
    }

    #[tokio::test]
    async fn unknown_paths_and_methods_are_refused() {
        let (_tx, rx) = watch::channel(Readiness::Ready);
        let addr = start(Routes::health(rx)).await;
        assert!(get(addr, "GET", "/metrics")
            .await
            .starts_with("HTTP/1.1 404"));
        let r = get(addr, "POST", "/healthz").await;
        assert!(r.starts_with("HTTP/1.1 405"), "{r}");
        assert!(r.to_lowercase().contains("allow: get, head"), "{r}");
        let r = get(addr, "HEAD", "/healthz").await;
        assert!(
            r.starts_with("HTTP/1.1 200") && r.ends_with("\r\n\r\n"),
            "{r}"
        );
    }

    #[test]
    fn api_http_is_checked_like_every_key() {
        let c = |http: &str| {
            crate::config::parse(
                &format!("router: {{ asn: 65001, routerId: 10.0.0.1 }}\napi: {{ http: {http} }}\n"),
                "k.yaml",
            )
        };
        let ok = c("{ address: 10.0.0.1, port: 9179 }").unwrap();
        assert_eq!(ok.api.http.as_ref().unwrap().port, 9179);
        assert_eq!(crate::config::parse(&ok.to_yaml(), "k.yaml").unwrap(), ok);
        let e = c("{ address: 10.0.0.1, port: 179 }").unwrap_err();
        assert_eq!(e.path, "api.http.port");
        assert!(e.message.contains("BGP listener"), "{e}");
        let e = c("{ address: 10.0.0.1 }").unwrap_err();
        assert_eq!(e.path, "api.http.port");
        let e = c("{ address: 10.0.0.1, port: 0 }").unwrap_err();
        assert!(e.message.contains("1..=65535"), "{e}");
        let e = c("{ address: 10.0.0.1, port: 80, tls: true }").unwrap_err();
        assert!(e.message.contains("unknown key \"tls\""), "{e}");
    }

    #[tokio::test]
    async fn a_route_is_one_line() {
        let addr = start(Routes::new().route("/metrics", || async { Reply::ok("up 1\n") })).await;
        assert!(get(addr, "GET", "/metrics").await.ends_with("up 1\n"));
    }
}
