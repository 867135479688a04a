//! wasmtime: one `Engine` (pooling allocator, epoch ticks), and per component one
//! `wasmtime_wasi_http::handler::ProxyHandler` — the dispatcher `wasmtime serve` and Spin use —
//! whose workers each own a `Store` and an instance with memory limits. A `wasi:http/handler@0.3`
//! component's instance serves up to [`MAX_REUSE`] requests, [`MAX_CONCURRENT`] at a time; a
//! `wasi:http@0.2` one (the example, test components) one request at a time.
//!
//! The whole request, from its headers on, runs under one deadline: the host reads a small body
//! before it takes a slot (see [`crate::body`]), a semaphore sized to the pool turns a full pool
//! into `503 BUSY`, the request's expiry ends it at the deadline, and the instance's own expiry
//! (polled outside wasm, so a runaway loop cannot hold it) ends an instance whose work outlives
//! the deadline. A trap or an expired instance ends every request it was serving with a `500`;
//! the next request gets a fresh instance.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, combinators::UnsyncBoxBody};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::handler::{self, ExpirationError, HandlerState, InstantiationError, ProxyHandler, ProxyPre, ShouldAccept, WorkerStatus};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::adapters::ephemeral;
use crate::adapters::store::SqlStore;
use crate::bindings::Imports;
use crate::body::GuestBody;
use crate::clock::Clock;
use crate::limits::Slots;
use crate::reply;

pub type Body = UnsyncBoxBody<Bytes, anyhow::Error>;

/// One epoch tick; deadlines are counted in ticks.
const TICK: Duration = Duration::from_millis(10);
/// Guest output kept per instance (panic messages end up here), logged when the instance ends.
const GUEST_OUTPUT_LIMIT: usize = 16 * 1024;
/// Requests one instance serves before it is replaced (Spin's default): a leak in a component
/// cannot grow without bound.
pub const MAX_REUSE: usize = 128;
/// Requests one instance serves at once (Spin's default). The dispatcher gives an instance a
/// second request only while every one it has waits on I/O, so an Argon2 hash (CPU) is not shared
/// with another request's; the others wait for their host calls (store, mail) concurrently.
pub const MAX_CONCURRENT: usize = 16;
/// An instance with nothing to do is kept this long for the next request, then freed.
const IDLE_KEEP: Duration = Duration::from_secs(2);

/// What every request's host state shares.
pub struct Shared {
    pub store: SqlStore,
    /// Codes and counters: Redis when configured, else the store's `ephemeral` table.
    pub ephemeral: Arc<dyn ephemeral::Backend>,
    pub texts: gpt_user_l10n::Texts,
    pub variables: HashMap<String, String>,
    pub clock: Clock,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The rules of the components' outbound HTTP.
    pub outbound: Arc<crate::outbound::Policy>,
}

/// Per-instance store data: nothing in it belongs to one request.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limits: StoreLimits,
    outbound: crate::outbound::Hooks,
    pub shared: Arc<Shared>,
    /// Counts this instance in `component_instances` until its store is dropped.
    _alive: crate::metrics::Held,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.outbound }
    }
}

/// Component instances in the process-wide pool unless a configuration asks for more.
const DEFAULT_POOL: usize = 256;

/// The process-wide engine and its epoch ticker. Compiled components are cached by content, so
/// several applications in one process (tests) compile each component once.
struct EngineCache {
    engine: Engine,
    /// Component instances the pool holds; an application may not admit more at once.
    capacity: usize,
    components: std::sync::Mutex<HashMap<usize, Component>>,
}

fn engine_cache(instances: usize, compiled_dir: Option<&Path>) -> anyhow::Result<&'static EngineCache> {
    static CACHE: OnceLock<EngineCache> = OnceLock::new();
    if let Some(c) = CACHE.get() {
        return Ok(c);
    }
    let capacity = instances.max(DEFAULT_POOL);
    let engine = new_engine(capacity, compiled_dir)?;
    let ticker = engine.weak();
    std::thread::Builder::new().name("epoch-ticker".into()).spawn(move || {
        while let Some(engine) = ticker.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(TICK);
        }
    })?;
    Ok(CACHE.get_or_init(|| EngineCache { engine, capacity, components: Default::default() }))
}

/// An engine whose pool holds `instances` concurrent component instances (each with up to 4
/// core instances, 2 memories and 2 tables, and one async stack). With `compiled_dir`, compiled
/// components are kept there by wasmtime's cache (keyed by the component's bytes and the engine's
/// settings) and loaded instead of compiled at the next start: ~0.1 s instead of seconds of
/// Cranelift per process. The directory holds native code the host will run, so it must be
/// writable by the service's user only (the data dir is).
fn new_engine(instances: usize, compiled_dir: Option<&Path>) -> anyhow::Result<Engine> {
    let n = u32::try_from(instances).context("max_instances is too large")?;
    let mut pooling = wasmtime::PoolingAllocationConfig::default();
    pooling
        .total_component_instances(n)
        .total_core_instances(4 * n)
        .total_memories(2 * n)
        .total_tables(2 * n)
        .total_stacks(n)
        .max_memory_size(256 << 20)
        // Reset only the pages a request dirtied (Linux >= 6.7), up to 4 MiB, instead of
        // unmapping them: the guest's 1 MiB shadow stack alone would otherwise cost an madvise
        // and TLB shootdowns per request.
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(4 << 20)
        .table_keep_resident(64 << 10)
        .async_stack_keep_resident(64 << 10);
    let mut config = wasmtime::Config::new();
    config
        .epoch_interruption(true)
        .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling))
        // WASIp3: component-model async (`wasi:http/handler@0.3`, concurrent requests).
        .concurrency_support(true);
    if let Some(dir) = compiled_dir {
        let dir = std::path::absolute(dir).with_context(|| format!("compiled-component cache {}", dir.display()))?;
        let mut cache = wasmtime::CacheConfig::new();
        cache.with_directory(&dir);
        let cache = wasmtime::Cache::new(cache).map_err(|e| anyhow::anyhow!("compiled-component cache {}: {e}", dir.display()))?;
        config.cache(Some(cache));
    }
    Engine::new(&config).map_err(|e| anyhow::anyhow!("cannot create the wasm engine: {e}"))
}

/// What one application allows a request.
pub struct Limits {
    /// From the request's headers to the component's answer: body, instantiation, the call.
    pub timeout: Duration,
    /// Linear memory of one instance, in bytes.
    pub memory_limit: usize,
    /// Requests inside components at once.
    pub max_instances: usize,
    /// Percent of them GPT requests may not take ([`Slots`]).
    pub reserved_instances_percent: u32,
    /// Where compiled components are kept between starts (see [`new_engine`]); the first
    /// application of a process decides it for the process.
    pub compiled_dir: Option<PathBuf>,
}

/// The components an application serves, by component id.
pub struct Runtime {
    components: HashMap<String, ProxyHandler<Instances>>,
    shared: Arc<Shared>,
    timeout: Duration,
    /// One permit per request inside a component: sized to the pool (or below it), so a full
    /// pool is a quick `503 BUSY`, not an instantiation error; GPT requests get only part.
    slots: Slots,
}

/// Why a request ended without the component's answer.
enum Failure {
    /// The pool had no free instance.
    Busy,
    /// The request deadline passed (in the guest, or in a host call it waited on).
    Deadline,
    Error(anyhow::Error),
}

impl Runtime {
    pub fn new(components: &[(String, &'static [u8])], shared: Arc<Shared>, limits: Limits) -> anyhow::Result<Self> {
        let Limits { timeout, memory_limit, max_instances, reserved_instances_percent, compiled_dir } = limits;
        let cache = engine_cache(max_instances, compiled_dir.as_deref())?;
        anyhow::ensure!(
            max_instances <= cache.capacity,
            "max_instances = {max_instances} exceeds this process's instance pool ({})",
            cache.capacity
        );
        let engine = cache.engine.clone();
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        wasmtime_wasi::p3::add_to_linker(&mut linker).map_err(anyhow::Error::from)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        wasmtime_wasi_http::p3::add_to_linker(&mut linker).map_err(anyhow::Error::from)?;
        Imports::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s).map_err(anyhow::Error::from)?;
        let mut handlers = HashMap::new();
        for (id, bytes) in components {
            let component = {
                let mut compiled = cache.components.lock().expect("component cache lock");
                let key = bytes.as_ptr() as usize;
                match compiled.get(&key) {
                    Some(c) => c.clone(),
                    None => {
                        let started = Instant::now();
                        let c = Component::new(&engine, bytes).map_err(anyhow::Error::from).with_context(|| format!("compiling component {id}"))?;
                        tracing::info!(component = %id, ms = started.elapsed().as_millis() as u64, "compiled component");
                        compiled.insert(key, c.clone());
                        c
                    }
                }
            };
            let pre = linker.instantiate_pre(&component).map_err(anyhow::Error::from).with_context(|| format!("linking component {id}"))?;
            let pre = match wasmtime_wasi_http::p3::bindings::ServicePre::new(pre.clone()) {
                Ok(p3) => ProxyPre::P3(p3),
                Err(_) => ProxyPre::P2(
                    wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre).map_err(anyhow::Error::from).with_context(|| format!("component {id} is not an HTTP handler"))?,
                ),
            };
            let instances = Instances { component: id.clone(), engine: engine.clone(), pre, shared: shared.clone(), memory_limit, timeout };
            handlers.insert(id.clone(), ProxyHandler::new(instances));
        }
        let slots = Slots::new(max_instances, reserved_instances_percent).observed(max_instances, shared.metrics.clone());
        Ok(Self { components: handlers, shared, timeout, slots })
    }

    /// Runs one request through a component, all of it under the request deadline. Never
    /// fails: a client too slow to send its body gets `408`, a full pool `503 BUSY` (for a GPT
    /// request: its part of the pool), anything else that goes wrong a `500`.
    pub async fn handle(&self, component: &str, req: hyper::Request<hyper::body::Incoming>, gpt: bool) -> hyper::Response<Body> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let (parts, body) = req.into_parts();
        let body = match GuestBody::read_by(body, deadline).await {
            Ok(body) => body,
            Err(answer) => return answer,
        };
        // Taken only once the body is here: slow clients hold no instance.
        let Some(slot) = self.slots.try_take(gpt) else {
            self.shared.metrics.busy(gpt);
            return reply::busy();
        };
        let complete = body.completion();
        let result = self.run(component, hyper::Request::from_parts(parts, body), deadline).await;
        drop(slot);
        match result {
            Ok(resp) => resp,
            Err(Failure::Busy) => {
                tracing::warn!(component, "instance pool exhausted");
                self.shared.metrics.busy(gpt);
                reply::busy()
            }
            // Still waiting for the client: its fault, not the component's.
            Err(Failure::Deadline) if !complete.load(Ordering::Acquire) => reply::request_timeout(),
            Err(Failure::Deadline) => {
                tracing::error!(component, "component exceeded the request deadline");
                self.shared.metrics.deadline_hit(component);
                reply::internal_error()
            }
            Err(Failure::Error(e)) => {
                tracing::error!(component, error = %format!("{e:#}"), "component failed");
                reply::internal_error()
            }
        }
    }

    async fn run(&self, component: &str, req: hyper::Request<GuestBody>, deadline: tokio::time::Instant) -> Result<hyper::Response<Body>, Failure> {
        let handler = self.components.get(component).with_context(|| format!("no component {component}")).map_err(Failure::Error)?;
        let request_id = req.headers().get(gpt_user_core::api::REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let req = req.map(|body| body.map_err(wasmtime_wasi_http::Error::Hyper).boxed_unsync());
        // The dispatcher ends the request at its deadline if the instance can still be polled;
        // this timeout ends it even if not.
        match tokio::time::timeout_at(deadline, handler.handle(Started { deadline, request_id }, req)).await {
            Ok(Ok(resp)) => Ok(resp.map(|body| body.map_err(anyhow::Error::from).boxed_unsync())),
            Err(_) => Err(Failure::Deadline),
            Ok(Err(e)) if e.is::<ExpirationError>() => Err(Failure::Deadline),
            Ok(Err(e)) => match e.downcast_ref::<InstantiationError<Started>>() {
                Some(failed) if is_pool_exhausted(&failed.error) => Err(Failure::Busy),
                Some(failed) => Err(Failure::Error(anyhow::anyhow!("instantiation failed: {:#}", failed.error))),
                None => Err(Failure::Error(anyhow::Error::from(e))),
            },
        }
    }
}

/// How one component's instances are made, what they accept and when they end
/// ([`ProxyHandler`]'s application state).
struct Instances {
    component: String,
    engine: Engine,
    pre: ProxyPre<HostState>,
    shared: Arc<Shared>,
    memory_limit: usize,
    timeout: Duration,
}

impl HandlerState for Instances {
    type StoreData = HostState;
    type WorkerExpiration = Expiry;
    type WorkerState = Worker;

    fn instantiate(&self) -> impl Future<Output = wasmtime::Result<handler::Instance<HostState, Expiry, Worker>>> + Send {
        async move {
            let output = MemoryOutputPipe::new(GUEST_OUTPUT_LIMIT);
            let wasi = WasiCtx::builder()
                .wall_clock(self.shared.clock.clone())
                .stdout(output.clone())
                .stderr(output.clone())
                .build();
            let state = HostState {
                wasi,
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
                limits: StoreLimitsBuilder::new().memory_size(self.memory_limit).instances(64).trap_on_grow_failure(true).build(),
                outbound: crate::outbound::Hooks(self.shared.outbound.clone()),
                shared: self.shared.clone(),
                _alive: self.shared.metrics.instance_alive(),
            };
            let mut store = Store::new(&self.engine, state);
            store.limiter(|s| &mut s.limits);
            // Every tick, wasm code yields to the runtime: the instance's expiry is polled then,
            // so a guest in a loop is ended at its deadline ([`Expiry`]).
            store.set_epoch_deadline(1);
            store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
            let proxy = tokio::time::timeout(self.timeout, self.pre.instantiate_async(&mut store))
                .await
                .map_err(|_| wasmtime::format_err!("instantiating {} took longer than the request deadline", self.component))??;
            Ok(handler::Instance {
                store,
                proxy,
                view: |s: &mut HostState| s.http(),
                expiration: Expiry { timeout: self.timeout, wake: None },
                // A WASIp2 handler is written for one request per instance.
                state: Worker { component: self.component.clone(), output, reuse: matches!(self.pre, ProxyPre::P3(_)), served: Default::default() },
            })
        }
    }
}

/// When an instance ends: once its oldest unfinished work (a request, or what a component does
/// after answering) is older than the request deadline, or after [`IDLE_KEEP`] with nothing to do.
struct Expiry {
    timeout: Duration,
    wake: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl handler::WorkerExpiration for Expiry {
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>, status: WorkerStatus, start: Instant) -> Poll<()> {
        let at = tokio::time::Instant::from_std(start) + if status == WorkerStatus::Idle { IDLE_KEEP } else { self.timeout };
        let wake = self.wake.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if wake.deadline() != at {
            wake.as_mut().reset(at);
        }
        wake.as_mut().poll(cx)
    }
}

/// What the dispatcher is given with a request.
struct Started {
    deadline: tokio::time::Instant,
    /// The request's `X-Request-Id` (set by the server).
    request_id: String,
}

/// Request ids an instance's output is logged with: the most recent this many.
const SERVED_IDS: usize = 16;

/// One instance's rules and its output.
struct Worker {
    component: String,
    output: MemoryOutputPipe,
    /// Whether the instance may serve more than one request.
    reuse: bool,
    /// The ids of the last [`SERVED_IDS`] requests the instance took.
    served: std::sync::Mutex<std::collections::VecDeque<String>>,
}

impl handler::WorkerState for Worker {
    type StoreData = HostState;
    type RequestData = Started;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= if self.reuse { MAX_REUSE } else { 1 } {
            ShouldAccept::Never
        } else if concurrent >= MAX_CONCURRENT {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(&self, _: wasmtime::StoreContextMut<'_, HostState>, started: Started, _: wasmtime::component::GuestTaskId) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        let mut served = self.served.lock().expect("served ids lock");
        if served.len() == SERVED_IDS {
            served.pop_front();
        }
        served.push_back(started.request_id);
        Box::pin(tokio::time::sleep_until(started.deadline))
    }

    fn drop(&self, store: Store<HostState>, result: wasmtime::Result<()>) {
        // The instance goes back to the pool first.
        drop(store);
        // The instance's output, with the requests it served: what it wrote belongs to one of them.
        let component = &self.component;
        let requests = Vec::from(std::mem::take(&mut *self.served.lock().expect("served ids lock"))).join(" ");
        let output = self.output.contents();
        if !output.is_empty() {
            tracing::warn!(component = %component, requests = %requests, output = %String::from_utf8_lossy(&output).trim_end(), "component wrote to stdout/stderr");
        }
        if let Err(e) = result {
            tracing::error!(component = %component, requests = %requests, error = %format!("{e:#}"), "component instance ended with an error; the requests it was serving were answered 500");
        }
    }
}

/// Whether instantiation failed because the pooling allocator is full (instances, memories,
/// tables or stacks): the request may succeed a moment later.
fn is_pool_exhausted(e: &wasmtime::Error) -> bool {
    e.is::<wasmtime::PoolConcurrencyLimitError>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid component: the header, no sections.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

    #[tokio::test]
    async fn a_full_instance_pool_is_recognised_as_busy() {
        let engine = new_engine(1, None).unwrap();
        let component = Component::new(&engine, EMPTY_COMPONENT).unwrap();
        let linker = Linker::<()>::new(&engine);
        let mut first = Store::new(&engine, ());
        let _held = linker.instantiate_async(&mut first, &component).await.unwrap();
        let mut second = Store::new(&engine, ());
        let err = linker.instantiate_async(&mut second, &component).await.expect_err("the pool is full");
        assert!(is_pool_exhausted(&err), "{err}");
        drop(first);
        assert!(linker.instantiate_async(&mut second, &component).await.is_ok(), "a freed slot is reused");
    }
}
