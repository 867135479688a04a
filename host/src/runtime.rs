//! wasmtime: one `Engine` (pooling allocator, epoch interruption), one pre-instantiated
//! `ProxyPre` per component, and a fresh `Store` per request with memory limits and a deadline.
//! The whole request, from its headers on, runs under one deadline: the host reads a small body
//! before it takes an instance (see [`crate::body`]), a semaphore sized to the pool turns a full
//! pool into `503 BUSY`, and a timeout ends host calls the epoch cannot interrupt. A trap or a
//! component past its deadline ends that request with a 500; the next gets a fresh instance.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tracing::Instrument as _;
use bytes::Bytes;
use http_body_util::{BodyExt, combinators::UnsyncBoxBody};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::adapters::ephemeral;
use crate::adapters::store::SqlStore;
use crate::bindings::Imports;
use crate::body::GuestBody;
use crate::clock::Clock;
use crate::limits::{Slot, Slots};
use crate::reply;

pub type Body = UnsyncBoxBody<Bytes, anyhow::Error>;

/// One epoch tick; deadlines are counted in ticks.
const TICK: Duration = Duration::from_millis(10);
/// Guest output kept per request (panic messages end up here).
const GUEST_OUTPUT_LIMIT: usize = 16 * 1024;

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

/// Per-request store data.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limits: StoreLimits,
    outbound: crate::outbound::Hooks,
    pub shared: Arc<Shared>,
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
        // WASI 0.2 only: no component-model async, and no backtrace capture per Store drop.
        .concurrency_support(false);
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
    engine: Engine,
    components: HashMap<String, ProxyPre<HostState>>,
    shared: Arc<Shared>,
    timeout: Duration,
    memory_limit: usize,
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

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Error(e)
    }
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
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        Imports::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s).map_err(anyhow::Error::from)?;
        let mut pres = HashMap::new();
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
            pres.insert(id.clone(), ProxyPre::new(pre).map_err(anyhow::Error::from).with_context(|| format!("component {id} is not an HTTP handler"))?);
        }
        let slots = Slots::new(max_instances, reserved_instances_percent).observed(max_instances, shared.metrics.clone());
        Ok(Self { engine, components: pres, shared, timeout, memory_limit, slots })
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
        match self.run(component, hyper::Request::from_parts(parts, body), deadline, slot).await {
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

    async fn run(&self, component: &str, req: hyper::Request<GuestBody>, deadline: tokio::time::Instant, slot: Slot) -> Result<hyper::Response<Body>, Failure> {
        let pre = self.components.get(component).with_context(|| format!("no component {component}"))?.clone();
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
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        // The epoch interrupts wasm code at the deadline; the timeout below also ends host
        // calls the guest waits on (a trickling body, a sleep).
        let epoch_deadline = deadline.into_std();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= epoch_deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store.data_mut().http().new_incoming_request(Scheme::Http, req).map_err(anyhow::Error::from)?;
        let out = store.data_mut().http().new_response_outparam(sender).map_err(anyhow::Error::from)?;
        let component_name = component.to_owned();
        let task = tokio::task::spawn(async move {
            let call = async {
                let proxy = pre.instantiate_async(&mut store).await.map_err(|e| {
                    if is_pool_exhausted(&e) { Failure::Busy } else { Failure::Error(anyhow::Error::from(e)) }
                })?;
                proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await.map_err(|e| Failure::Error(e.into()))
            };
            let result = tokio::time::timeout_at(deadline, call).await.unwrap_or(Err(Failure::Deadline));
            // The instance goes back to the pool before the slot does.
            drop(store);
            drop(slot);
            let guest_output = output.contents();
            if !guest_output.is_empty() {
                tracing::warn!(component = %component_name, output = %String::from_utf8_lossy(&guest_output).trim_end(), "component wrote to stdout/stderr");
            }
            result
        }
        // The request's span: what the component's call logs (adapters, its output) names the request.
        .instrument(tracing::Span::current()));

        match receiver.await {
            Ok(Ok(resp)) => Ok(resp.map(|body| body.map_err(anyhow::Error::from).boxed_unsync())),
            Ok(Err(code)) => Err(anyhow::anyhow!("component answered with an error code: {code:?}").into()),
            Err(_) => match task.await {
                Ok(Ok(())) => Err(anyhow::anyhow!("component never set a response").into()),
                Ok(Err(failure)) => Err(failure),
                Err(e) => Err(anyhow::Error::from(e).into()),
            },
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
