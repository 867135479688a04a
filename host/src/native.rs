//! The native baseline of the benchmark (issue 10; `scripts/bench.sh`): the same `gpt-user-core`
//! route tables the flow components serve, compiled natively and run over the same adapters
//! ([`SqlStore`], the ephemeral backend, the outbox through `Op::EnqueueMail`, the Fluent texts)
//! behind the same [`crate::server`] (connection limit, header timeout, request deadline, instance
//! slots) — so the only difference from `gpt-user serve` is the wasm layer. It is started by the
//! hidden `gpt-user serve --native`, used by the benchmark only.
//!
//! The core's ports are synchronous and the adapters async. Each request's `respond` runs on
//! tokio's blocking pool (`spawn_blocking`) and every port call waits for its adapter future with
//! `Handle::block_on` there — a thread per request in flight, never a worker blocked, the
//! simplest shape that neither helps nor hurts the baseline. As in the guest
//! (`components/guest`), the settings are read per request, the body is read only once the
//! head has passed the core's guard, and a route's deferred work runs after the answer is out.

use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gpt_user_core::Settings;
use gpt_user_core::api::{self, Ctx, MAX_BODY, Route};
use gpt_user_core::ports::{self, EmailChange, Env, Ephemeral, L10n, Op, Secret, SecretPurpose, Store, StoreError, Timestamp, User};
use gpt_user_sql::store::UserKey;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Body as _;
use tokio::runtime::Handle;
use tokio::time::Instant;

use crate::body::GuestBody;
use crate::limits::Slots;
use crate::reply;
use crate::runtime::{Body, Shared};

/// The core's route table of each component of `spin.toml`, as each flow component's
/// `flow_component!` line names it.
fn routes(component: &str) -> Option<&'static [Route]> {
    Some(match component {
        "signup" => api::SIGNUP_ROUTES,
        "profile" => api::PROFILE_ROUTES,
        "email-change" => api::EMAIL_CHANGE_ROUTES,
        "auth" => api::AUTH_ROUTES,
        "mcp" => api::MCP_ROUTES,
        "oauth" => api::OAUTH_ROUTES,
        _ => return None,
    })
}

/// Headers a wasi:http guest never sees (wasmtime-wasi-http's default filter): removed here too,
/// so the core judges the same head.
const FORBIDDEN_HEADERS: [&str; 9] =
    ["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "transfer-encoding", "upgrade", "host", "http2-settings"];

pub struct NativeRuntime {
    shared: Arc<Shared>,
    timeout: Duration,
    /// Requests inside the core at once, as the wasm runtime's instance slots.
    slots: Slots,
    urandom: Arc<std::fs::File>,
}

impl NativeRuntime {
    pub fn new(shared: Arc<Shared>, timeout: Duration, slots: Slots) -> anyhow::Result<Self> {
        let urandom = std::fs::File::open("/dev/urandom")?;
        Ok(Self { shared, timeout, slots, urandom: Arc::new(urandom) })
    }

    /// Like [`crate::runtime::Runtime::handle`]: body under the deadline, then a slot, then the
    /// core; `408`, `503 BUSY` and `500` as there.
    pub async fn handle(&self, component: &str, req: hyper::Request<hyper::body::Incoming>, gpt: bool) -> hyper::Response<Body> {
        let Some(routes) = routes(component) else {
            tracing::error!(component, "no native route table for this component");
            return reply::internal_error();
        };
        let deadline = Instant::now() + self.timeout;
        let (parts, body) = req.into_parts();
        let mut body = match GuestBody::read_by(body, deadline).await {
            Ok(body) => body,
            Err(answer) => return answer,
        };
        let Some(slot) = self.slots.try_take(gpt) else {
            return reply::busy();
        };
        let head = api::Request {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or("").to_owned(),
            headers: parts
                .headers
                .iter()
                .filter(|(name, _)| !FORBIDDEN_HEADERS.contains(&name.as_str()))
                .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
                .collect(),
            body: Vec::new(),
            body_too_large: false,
        };
        let shared = self.shared.clone();
        let urandom = self.urandom.clone();
        let handle = Handle::current();
        // The answer leaves through `answered` before the deferred work runs, as the guest writes
        // its response before running it; the slot is held until that work is done.
        let (answered, answer) = tokio::sync::oneshot::channel();
        tokio::task::spawn_blocking(move || {
            let ports = Ports { shared: &shared, handle: &handle, deadline, urandom: &urandom };
            // `Config::validate` checked the same variables at start, so this refusal is the guest's twin only.
            let (settings, invalid) = match Settings::from_lookup(|key| shared.variables.get(key).cloned()) {
                Ok(settings) => (settings, None),
                Err(invalid) => (Settings::default(), Some(invalid)),
            };
            let ctx = Ctx { store: &ports, ephemeral: &ports, fetch: &gpt_user_core::ports::NoFetch, l10n: &ports, env: &ports, settings: &settings, after: api::After::default(), origin: Default::default(), metrics: &gpt_user_core::ports::NoMetrics };
            let mut req = head;
            let response = match invalid {
                Some(invalid) => api::refuse_config(&ctx, &req, &invalid),
                None => api::respond(routes, &ctx, &mut req, |req| {
                    (req.body, req.body_too_large) = handle.block_on(read_rest(&mut body, deadline));
                }),
            };
            let _ = answered.send(response);
            ctx.run_deferred();
            drop(slot);
        });
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(response)) => {
                let mut builder = hyper::Response::builder().status(response.status);
                for (name, value) in &response.headers {
                    builder = builder.header(name, value);
                }
                builder.body(Full::new(Bytes::from(response.body)).map_err(|never| match never {}).boxed_unsync()).unwrap_or_else(|e| {
                    tracing::error!(component, error = %e, "the core answered an invalid response");
                    reply::internal_error()
                })
            }
            // The task ended without an answer: it panicked.
            Ok(Err(_)) => {
                tracing::error!(component, "the core panicked");
                reply::internal_error()
            }
            Err(_) => {
                tracing::error!(component, "the core exceeded the request deadline");
                reply::internal_error()
            }
        }
    }
}

/// The body as the guest reads it: at most `MAX_BODY` kept, and whether it was longer.
async fn read_rest(body: &mut GuestBody, deadline: Instant) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while !body.is_end_stream() {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            _ => break,
        };
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            let room = MAX_BODY.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
            // Past `MAX_BODY` the answer is known (413); as in the guest, the rest lingers after the
            // answer — here when the dropped `GuestBody` discards it.
            if seen > MAX_BODY {
                break;
            }
        }
    }
    (kept, seen > MAX_BODY)
}

/// The core's ports for one request, over the shared adapters.
struct Ports<'a> {
    shared: &'a Shared,
    handle: &'a Handle,
    deadline: Instant,
    urandom: &'a std::fs::File,
}

impl Ports<'_> {
    /// Waits for an adapter call on this blocking thread, under the request deadline (as the
    /// wasm runtime's timeout ends host calls).
    fn wait<T>(&self, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        self.handle
            .block_on(tokio::time::timeout_at(self.deadline, call))
            .unwrap_or_else(|_| Err(StoreError::Unavailable("request deadline".into())))
    }

    /// The ephemeral adapter's failure as the guest sees it (`adapters::ephemeral::reported`).
    fn ephemeral<T>(&self, op: &'static str, key: &str, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        crate::adapters::ephemeral::reported(&*self.shared.ephemeral, op, key, self.wait(call))
    }
}

impl Store for Ports<'_> {
    fn find_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.wait(self.shared.store.find_user(UserKey::Email, email))
    }

    fn find_user_by_pin(&self, pin: &str) -> Result<Option<User>, StoreError> {
        self.wait(self.shared.store.find_user(UserKey::Pin, pin))
    }

    fn find_user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.wait(self.shared.store.find_user(UserKey::Id, id))
    }

    fn find_secret(&self, hash: &str, purpose: SecretPurpose, now: Timestamp) -> Result<Option<Secret>, StoreError> {
        self.wait(self.shared.store.find_secret(hash, purpose, now))
    }

    fn find_email_change(&self, id: &str) -> Result<Option<EmailChange>, StoreError> {
        self.wait(self.shared.store.find_email_change(id))
    }

    fn find_oauth_client(&self, id: &str) -> Result<Option<gpt_user_core::ports::OauthClient>, StoreError> {
        self.wait(self.shared.store.find_oauth_client(id))
    }

    fn find_oauth_token(&self, hash: &str) -> Result<Option<(gpt_user_core::ports::OauthToken, gpt_user_core::ports::OauthGrant)>, StoreError> {
        self.wait(self.shared.store.find_oauth_token(hash))
    }

    fn apply(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.wait(self.shared.store.apply(ops))
    }
}

impl Ephemeral for Ports<'_> {
    fn put(&self, key: &str, value: &str, now: Timestamp, expires_at: Timestamp) -> Result<(), StoreError> {
        self.ephemeral("put", key, self.shared.ephemeral.put(key, value, now, expires_at))
    }

    fn get(&self, key: &str, now: Timestamp) -> Result<Option<String>, StoreError> {
        self.ephemeral("get", key, self.shared.ephemeral.get(key, now))
    }

    fn increment(&self, key: &str, now: Timestamp, expires_at: Timestamp) -> Result<u32, StoreError> {
        self.ephemeral("increment", key, self.shared.ephemeral.increment(key, now, expires_at))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.ephemeral("delete", key, self.shared.ephemeral.delete(key))
    }
}

impl L10n for Ports<'_> {
    fn negotiate(&self, requested: &str) -> String {
        self.shared.texts.negotiate(requested).to_owned()
    }

    fn format(&self, locale: &str, id: &str, args: &[(&str, &str)]) -> String {
        self.shared.texts.format(locale, id, args)
    }

    fn render_email(&self, locale: &str, kind: &str, to: &str, args: &[(&str, &str)]) -> Result<ports::Message, String> {
        let m = self.shared.texts.render_email(locale, kind, to, args)?;
        Ok(ports::Message { to: m.to, kind: m.kind, subject: m.subject, text: m.text, html: m.html })
    }
}

impl Env for Ports<'_> {
    fn now(&self) -> Timestamp {
        self.shared.clock.now_ms()
    }

    /// The kernel's randomness, as wasmtime gives the guest's `wasi:random`.
    fn fill_random(&self, buf: &mut [u8]) {
        let mut urandom = self.urandom;
        urandom.read_exact(buf).expect("/dev/urandom is readable");
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// One HTTP/1.1 request on its own connection; the status and the body.
    async fn call(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len());
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw);
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
        let json = text.split_once("\r\n\r\n").and_then(|(_, b)| serde_json::from_str(b).ok()).unwrap_or_default();
        (status, json)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_native_baseline_answers_healthz_and_a_sign_up_as_the_components_do() {
        let dir = std::env::temp_dir().join(format!("gpt-user-native-{}", uuid::Uuid::new_v4()));
        let config = crate::Config { listen: "127.0.0.1:0".parse().unwrap(), data_dir: dir.clone(), dev: true, ..crate::Config::default() };
        let app = crate::Application::build_native(config).await.unwrap();
        let (addr, stop) = (app.local_addr(), app.stopper());
        let served = tokio::spawn(app.run_until_stopped());

        assert_eq!(call(addr, "GET", "/healthz", "").await, (200, serde_json::json!({"status": "ok"})));
        let body = r#"{"email":"native@example.com","consent":true,"locale":"en","passphrase":"correct horse battery staple"}"#;
        let (status, json) = call(addr, "POST", "/api/signup/init", body).await;
        assert_eq!(status, 201, "{json}");
        assert!(json["pin"].as_str().is_some_and(|pin| pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit())), "{json}");
        let (status, json) = call(addr, "POST", "/api/signup/verify", &format!(r#"{{"token":"{}"}}"#, "A".repeat(43))).await;
        assert_eq!((status, json["code"].as_str()), (410, Some("INVALID_TOKEN")), "{json}");
        assert_eq!(call(addr, "GET", "/nowhere", "").await.0, 404);

        stop.notify_waiters();
        served.await.unwrap().unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }
}
