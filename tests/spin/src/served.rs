//! The app as Spin runs it, executed under wasmtime: the sign-up component with the adapter
//! plugged in ([`crate::compose`]), served as a `wasi:http/handler@0.3` component by
//! `wasmtime_wasi_http::handler::ProxyHandler` — the dispatcher Spin 4's HTTP trigger uses — with
//! Spin's defaults: an instance serves up to 128 requests, 16 at a time, and is dropped after
//! [`IDLE_KEEP`] without work; with this harness's Spin SQLite, Spin variables resolved from
//! `spin.toml` the way `spin up` resolves them, and the movable clock.
//!
//! [`App::send`] returns as soon as the answer's head and body are complete and hands back a
//! task that ends once the instance has finished the request's work (`mail.flush` after the
//! answer) — the instance is then idle, free for the next: the tests measure the answer, not the
//! guest.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::task::JoinHandle;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::handler::{self, HandlerState, ProxyHandler, ProxyPre, ShouldAccept, WorkerStatus};

use crate::artifacts::{ADAPTER_WASM, FLOW_COMPONENTS, WORKSPACE_ROOT};
use crate::harness::{HostState, TestClock};
use crate::{compose, spin_sqlite, spin_variables};

/// A complete answer and how long it took from the request to its last body byte.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    pub elapsed: Duration,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Spin's `--max-instance-reuse-count` default.
pub const MAX_REUSE: usize = 128;
/// Spin's `--max-instance-concurrent-reuse-count` default.
pub const MAX_CONCURRENT: usize = 16;
/// How long an instance without work is kept for the next request.
pub const IDLE_KEEP: Duration = Duration::from_secs(1);

/// The composed app, compiled once, with the environment its instances get.
pub struct App {
    handler: ProxyHandler<Instances>,
    /// Requests sent so far.
    sent: AtomicU64,
    pub sqlite_file: PathBuf,
    pub clock: TestClock,
}

/// How the app's instances are made (the handler's state).
struct Instances {
    engine: Engine,
    pre: ProxyPre<HostState>,
    sqlite_file: PathBuf,
    clock: TestClock,
    vars: HashMap<String, String>,
    progress: Arc<Progress>,
}

/// What the instances have done: the tests wait for a request's work to end.
#[derive(Default)]
struct Progress {
    /// Requests any instance has taken.
    started: AtomicU64,
    /// All requests up to this many were finished, work after the answer included.
    done_through: tokio::sync::watch::Sender<u64>,
    /// Instances made so far.
    instances: AtomicU64,
    /// The live instances, by number, and whether each is idle.
    idle: std::sync::Mutex<HashMap<u64, bool>>,
}

impl Progress {
    /// Instance `id` is idle (`Some(true)`), busy (`Some(false)`) or gone (`None`); once every
    /// live instance is idle, every request taken so far is done.
    fn set(&self, id: u64, idle: Option<bool>) {
        let mut instances = self.idle.lock().unwrap();
        match idle {
            Some(idle) => instances.insert(id, idle),
            None => instances.remove(&id),
        };
        if instances.values().all(|idle| *idle) {
            let started = self.started.load(Ordering::SeqCst);
            self.done_through.send_if_modified(|done| std::mem::replace(done, started) != started);
        }
    }
}

impl HandlerState for Instances {
    type StoreData = HostState;
    type WorkerExpiration = Idle;
    type WorkerState = Worker;

    fn instantiate(&self) -> impl Future<Output = wasmtime::Result<handler::Instance<HostState, Idle, Worker>>> + Send {
        async move {
            let state = HostState::new(&self.clock, self.vars.clone(), self.sqlite_file.clone());
            let mut store = Store::new(&self.engine, state);
            let proxy = self.pre.instantiate_async(&mut store).await?;
            let id = self.progress.instances.fetch_add(1, Ordering::SeqCst);
            self.progress.set(id, Some(false));
            Ok(handler::Instance {
                store,
                proxy,
                view: |s: &mut HostState| s.http(),
                expiration: Idle { id, progress: self.progress.clone(), wake: None },
                state: Worker { id, progress: self.progress.clone() },
            })
        }
    }
}

/// Drops an instance after [`IDLE_KEEP`] without work; marks the requests done when it is idle.
struct Idle {
    id: u64,
    progress: Arc<Progress>,
    wake: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl handler::WorkerExpiration for Idle {
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, status: WorkerStatus, start: Instant) -> Poll<()> {
        self.progress.set(self.id, Some(status == WorkerStatus::Idle));
        if status != WorkerStatus::Idle {
            self.wake = None;
            return Poll::Pending;
        }
        let at = tokio::time::Instant::from_std(start + IDLE_KEEP);
        let wake = self.wake.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if wake.deadline() != at {
            wake.as_mut().reset(at);
        }
        wake.as_mut().poll(cx)
    }
}

struct Worker {
    id: u64,
    progress: Arc<Progress>,
}

impl handler::WorkerState for Worker {
    type StoreData = HostState;
    type RequestData = ();

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= MAX_REUSE {
            ShouldAccept::Never
        } else if concurrent >= MAX_CONCURRENT {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(&self, _: wasmtime::StoreContextMut<'_, HostState>, _: (), _: wasmtime::component::GuestTaskId) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        self.progress.started.fetch_add(1, Ordering::SeqCst);
        self.progress.set(self.id, Some(false));
        Box::pin(std::future::pending())
    }

    fn drop(&self, store: Store<HostState>, result: wasmtime::Result<()>) {
        drop(store);
        // `ProxyHandler` reports a worker dropped with its runtime (a test's or the benchmark's
        // end) as "worker panicked": only other errors (traps) are news.
        if let Err(e) = result.map_err(|e| e.to_string())
            && e != "worker panicked"
        {
            eprintln!("harness: instance ended with an error: {e}");
        }
        self.progress.set(self.id, None);
    }
}

impl App {
    /// The composed app with its database at `sqlite_file` and the application variables of
    /// `spin.toml`, `overrides` applied as `spin up --variable name=value` would.
    pub fn new(sqlite_file: PathBuf, overrides: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::component("signup", sqlite_file, overrides)
    }

    /// Like [`App::new`] for the flow component `id` of `spin.toml` (`[component.<id>]`).
    pub fn component(id: &str, sqlite_file: PathBuf, overrides: &[(&str, &str)]) -> anyhow::Result<Self> {
        let read = |path: &str| std::fs::read(path).with_context(|| format!("{path} (built by tests/spin/build.rs)"));
        let (_, wasm) = FLOW_COMPONENTS.iter().find(|(c, _)| *c == id).with_context(|| format!("spin.toml has no component {id}"))?;
        let composed = compose::plug_into(&read(wasm)?, &read(ADAPTER_WASM)?)?;
        Self::composed(&composed, id, sqlite_file, overrides)
    }

    /// An app already composed with the adapter (an embedding application's component, say), run
    /// with the variables of `spin.toml`'s `[component.<variables_of>]`.
    pub fn composed(composed: &[u8], variables_of: &str, sqlite_file: PathBuf, overrides: &[(&str, &str)]) -> anyhow::Result<Self> {
        let engine = spin_like_engine()?;
        let component = Component::new(&engine, composed)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi::p3::add_to_linker(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
        spin_variables::add_to_linker(&mut linker)?;
        spin_sqlite::add_to_linker(&mut linker)?;
        let pre = linker.instantiate_pre(&component)?;
        // Spin serves either kind; an embedding application's own component may still be WASIp2
        // (it then gets a fresh instance per request, as on Spin).
        let pre = match wasmtime_wasi_http::p3::bindings::ServicePre::new(pre.clone()) {
            Ok(p3) => ProxyPre::P3(p3),
            Err(_) => ProxyPre::P2(wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre)?),
        };
        let vars = component_variables(&Path::new(WORKSPACE_ROOT).join("spin.toml"), variables_of, overrides)?;
        let clock = TestClock::default();
        let instances = Instances { engine, pre, sqlite_file: sqlite_file.clone(), clock: clock.clone(), vars, progress: Default::default() };
        Ok(Self { handler: ProxyHandler::new(instances), sent: AtomicU64::new(0), sqlite_file, clock })
    }

    /// Instances made so far: with reuse, one serves request after request.
    pub fn instances(&self) -> u64 {
        self.handler.state().progress.instances.load(Ordering::SeqCst)
    }

    /// Serves one request as Spin's trigger does (an instance taken from the ones that have
    /// room, else a new one). Returns the answer once complete, and a task that ends once the
    /// request's work is done (the instance idle) — it may still be running.
    pub async fn send(&self, req: hyper::Request<Bytes>) -> anyhow::Result<(Answer, JoinHandle<anyhow::Result<()>>)> {
        let n = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        let req = req.map(|body| Full::new(body).map_err(|never| match never {}).boxed_unsync());
        let started = Instant::now();
        let response = self.handler.handle((), req).await.map_err(|e| anyhow::anyhow!("the app failed: {e:?}"))?;
        let mut done = self.handler.state().progress.done_through.subscribe();
        let guest = tokio::spawn(async move {
            done.wait_for(|&through| through >= n).await.map_err(|_| anyhow::anyhow!("the app is gone"))?;
            Ok(())
        });
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.map_err(|e| anyhow::anyhow!("response body: {e:?}"))?.to_bytes();
        Ok((Answer { status, headers, body, elapsed: started.elapsed() }, guest))
    }

    /// `POST /api/signup/init` as a GPT sends it, with `key` as its bearer token if given.
    pub async fn sign_up(&self, email: &str, key: Option<&str>) -> anyhow::Result<(Answer, JoinHandle<anyhow::Result<()>>)> {
        let body = serde_json::json!({"email": email, "consent": true, "locale": "en", "passphrase": "correct horse battery staple"});
        self.post("/api/signup/init", &body, key).await
    }

    /// A JSON `POST` to `path`, with `key` as its bearer token if given.
    pub async fn post(&self, path: &str, body: &serde_json::Value, key: Option<&str>) -> anyhow::Result<(Answer, JoinHandle<anyhow::Result<()>>)> {
        let mut req = hyper::Request::post(format!("http://127.0.0.1:3000{path}")).header("content-type", "application/json");
        if let Some(key) = key {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        self.send(req.body(Bytes::from(body.to_string()))?).await
    }
}

/// An engine set up as Spin's runtime sets up its own (`spin-core`'s `Config::default`): instances
/// from the pooling allocator (room for 128 concurrent instances of the composed app here), 2 MiB
/// of each linear memory and 512 KiB of each table kept resident between instances, wasmtime's
/// defaults otherwise. With wasmtime's default on-demand allocator, or nothing kept resident,
/// every request would map and unmap (and TLB-flush) its memories — costs Spin does not have,
/// which would hide the app's own in the benchmark.
fn spin_like_engine() -> anyhow::Result<Engine> {
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(128)
        .total_core_instances(128 * 16)
        .total_memories(128 * 4)
        .total_tables(128 * 4)
        .total_stacks(128)
        .max_memory_size(256 << 20)
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(512 << 10);
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling)).concurrency_support(true);
    crate::with_shared_compile_cache(&mut config)?;
    Engine::new(&config).map_err(|e| anyhow::anyhow!("cannot create the wasm engine: {e}"))
}

/// What component `id` sees through `wasi:config`: its `[component.<id>.variables]`, each
/// `{{ name }}` replaced by the application variable (`overrides`, else its `default`).
pub fn component_variables(manifest: &Path, id: &str, overrides: &[(&str, &str)]) -> anyhow::Result<HashMap<String, String>> {
    let m: toml::Table = std::fs::read_to_string(manifest)?.parse()?;
    let declared = m.get("variables").and_then(toml::Value::as_table).context("spin.toml has no [variables]")?;
    let app_value = |name: &str| -> anyhow::Result<String> {
        if let Some((_, value)) = overrides.iter().find(|(k, _)| *k == name) {
            return Ok((*value).to_owned());
        }
        let var = declared.get(name).with_context(|| format!("variable {name} is not declared"))?;
        var.get("default").and_then(toml::Value::as_str).map(str::to_owned).with_context(|| format!("variable {name} has no default"))
    };
    let used = m.get("component").and_then(|c| c.get(id)).and_then(|c| c.get("variables")).and_then(toml::Value::as_table);
    let used = used.with_context(|| format!("no [component.{id}.variables]"))?;
    let mut resolved = HashMap::new();
    for (key, template) in used {
        let mut rest = template.as_str().with_context(|| format!("{key} is not a string"))?;
        let mut value = String::new();
        while let Some(start) = rest.find("{{") {
            let end = rest[start..].find("}}").with_context(|| format!("{key}: unclosed {{{{"))? + start;
            value.push_str(&rest[..start]);
            value.push_str(&app_value(rest[start + 2..end].trim())?);
            rest = &rest[end + 2..];
        }
        value.push_str(rest);
        resolved.insert(key.clone(), value);
    }
    Ok(resolved)
}
