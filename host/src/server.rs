//! The HTTP side: the accept loop, its limits, and routing to components or the dev mailbox.
//!
//! Slow clients must not exhaust the host, so every resource a client can hold is bounded:
//! - **connections** by a semaphore taken *before* `accept`: when all are in use, new connections
//!   wait in the kernel's listen backlog (backpressure) instead of being accepted and closed.
//!   A waiting client is served as soon as a slot frees, and slots free quickly because of:
//! - **header time**: hyper's header-read timeout (it also ends an idle kept-alive connection
//!   that sends no next request);
//! - **request time**: the body and the component run under the request deadline
//!   ([`Runtime::handle`]);
//! - **instances**: a full pool answers `503 BUSY` at once.
//!
//! One client's share is bounded too ([`crate::limits`]): open connections per address, a rate
//! per service key and per address on GPT actions and `/mcp` (`429`), and a part of the instance
//! pool the GPT routes cannot take. In dev mode only requests addressed to this machine are
//! answered (`421` otherwise: DNS rebinding).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tracing::Instrument as _;

use crate::limits::{PeerConnections, RateLimiter};
use crate::manifest::Manifest;
use crate::native::NativeRuntime;
use crate::runtime::{Body, Runtime};
use crate::{devmail, reply};

/// The header that carries a request's id to the component and back to the client.
pub const REQUEST_ID: hyper::header::HeaderName = hyper::header::HeaderName::from_static(gpt_user_core::api::REQUEST_ID);

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What answers a routed request: the flow components on wasmtime, or the benchmark's native
/// baseline of the same core ([`crate::native`]).
pub enum Handler {
    Wasm(Arc<Runtime>),
    Native(Arc<NativeRuntime>),
}

impl Handler {
    async fn handle(&self, component: &str, req: hyper::Request<hyper::body::Incoming>, gpt: bool) -> hyper::Response<Body> {
        match self {
            Self::Wasm(runtime) => runtime.handle(component, req, gpt).await,
            Self::Native(native) => native.handle(component, req, gpt).await,
        }
    }
}

pub struct Server {
    pub manifest: Arc<Manifest>,
    pub runtime: Handler,
    /// The dev mailbox, when it may be shown (dev mode, no SMTP).
    pub mailbox: Option<PathBuf>,
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    /// Open connections per client address (0: no cap but `max_connections`).
    pub max_connections_per_peer: usize,
    pub limiter: RateLimiter,
    /// The texts of the host's localized answers (`429 RATE_LIMITED`).
    pub texts: gpt_user_l10n::Texts,
    /// In dev mode, the base URL: requests must be addressed to a loopback name or to it.
    pub dev_base_url: Option<String>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl Server {
    /// Serves connections until `stop` is notified.
    pub async fn run(self, listener: TcpListener, stop: Arc<Notify>) {
        let stopped = stop.notified();
        tokio::pin!(stopped);
        // Registered now, so a stop between two accepts is not missed.
        stopped.as_mut().enable();
        let connections = Arc::new(Semaphore::new(self.max_connections));
        let peers = PeerConnections::new(self.max_connections_per_peer);
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new()).header_read_timeout(self.header_read_timeout).keep_alive(true);
        let server = Arc::new(self);
        loop {
            let permit = tokio::select! {
                permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                () = &mut stopped => return,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                () = &mut stopped => return,
            };
            // Over its address's cap: told so and closed at once, so one client cannot hold every
            // connection slot (slow sockets) while others wait in the backlog.
            let Some(counted) = peers.enter(peer.ip()) else {
                drop(permit);
                server.metrics.throttled("connections_per_client");
                refuse(stream);
                continue;
            };
            let server = server.clone();
            let http = http.clone();
            let open = server.metrics.connection_opened();
            tokio::spawn(async move {
                let _permit = (permit, counted, open);
                let service = hyper::service::service_fn(move |req| {
                    let server = server.clone();
                    async move { Ok::<_, std::convert::Infallible>(server.route(req, peer).await) }
                });
                if let Err(e) = http.serve_connection(TokioIo::new(stream), service).await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
    }

    /// Answers one request under its id: a new one (a client's `X-Request-Id` is replaced, so
    /// the id in our logs is always ours), given to the component in `X-Request-Id`, returned in
    /// the answer's, and on every log line of the request (its span). The component also gets
    /// the client's address, for its audit events.
    async fn route(&self, mut req: hyper::Request<hyper::body::Incoming>, peer: SocketAddr) -> hyper::Response<Body> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let header = hyper::header::HeaderValue::from_str(&id).expect("hex is a header value");
        req.headers_mut().insert(REQUEST_ID, header.clone());
        // The client's address as Spin passes it (a client's own header of that name is replaced).
        let client = hyper::header::HeaderValue::from_str(&peer.to_string()).expect("an address is a header value");
        req.headers_mut().insert(gpt_user_core::api::CLIENT_ADDR, client);
        let mut response = self.answer(req, peer).instrument(tracing::info_span!("request", request_id = %id)).await;
        response.headers_mut().insert(REQUEST_ID, header);
        response
    }

    async fn answer(&self, req: hyper::Request<hyper::body::Incoming>, peer: SocketAddr) -> hyper::Response<Body> {
        // The path only: query strings are not logged (our links carry tokens in the fragment,
        // which browsers never send, but a client could put anything in a query).
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        let started = std::time::Instant::now();
        // For the metrics: the route's pattern (bounded, unlike paths) and who answered.
        let mut labels = ("unrouted".to_owned(), "host".to_owned());
        let response = if self.dev_base_url.as_deref().is_some_and(|base| !crate::limits::dev_host_allowed(host(&req), base)) {
            reply::misdirected()
        } else if path == "/dev/mail" || path.starts_with("/dev/mail/") {
            labels.0 = "/dev/mail".into();
            devmail::serve(self.mailbox.as_deref(), peer, &method, &path).await
        } else {
            match self.manifest.route(&path) {
                Some(route) => {
                    let pattern = || if route.wildcard { format!("{}/...", route.path) } else { route.path.clone() };
                    labels = (gpt_user_core::api::known_path(&path).map_or_else(pattern, str::to_owned), route.component.clone());
                    let gpt = gpt_user_core::api::is_gpt_path(&path);
                    let authorization = || req.headers().get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
                    match if gpt { self.limiter.take(authorization(), peer.ip(), std::time::Instant::now()) } else { Ok(()) } {
                        Ok(()) => self.runtime.handle(&route.component, req, gpt).await,
                        Err(retry_after) => {
                            self.metrics.throttled("rate_limit");
                            let accept_language = req.headers().get(hyper::header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
                            reply::rate_limited(&self.texts, accept_language, retry_after)
                        }
                    }
                }
                None => reply::not_found(),
            }
        };
        let status = response.status().as_u16();
        self.metrics.request(&labels.0, &labels.1, status, started.elapsed());
        tracing::info!(%method, path = %truncated(&path), status, ms = started.elapsed().as_millis() as u64, "request");
        response
    }
}

/// The name a request was sent to: an absolute-form target's authority, else `Host`.
fn host<B>(req: &hyper::Request<B>) -> Option<&str> {
    req.uri().authority().map(|a| a.as_str()).or_else(|| req.headers().get(hyper::header::HOST).map(|v| v.to_str().unwrap_or("\u{0}")))
}

/// Tells a connection over its address's cap why it is closed, without reading it or waiting:
/// a new connection's send buffer is empty, so the short answer is written at once or not at all.
fn refuse(stream: tokio::net::TcpStream) {
    let _ = stream.try_write(&reply::too_many_connections());
}

/// Paths are client input: keep log lines bounded.
fn truncated(path: &str) -> &str {
    match path.char_indices().nth(200) {
        Some((i, _)) => &path[..i],
        None => path,
    }
}
