//! wasmtime: one `Engine` (pooling allocator, epoch interruption), one pre-instantiated
//! `ProxyPre` per component, and a fresh `Store` per request with memory limits and a deadline.
//! A trap or a timeout ends that request with a 500; the next request gets a fresh instance.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::adapters::store::SqlStore;
use crate::bindings::Imports;
use crate::clock::Clock;

pub type Body = UnsyncBoxBody<Bytes, anyhow::Error>;

/// One epoch tick; deadlines are counted in ticks.
const TICK: Duration = Duration::from_millis(10);
/// Guest output kept per request (panic messages end up here).
const GUEST_OUTPUT_LIMIT: usize = 16 * 1024;

/// What every request's host state shares.
pub struct Shared {
    pub store: SqlStore,
    pub texts: gpt_user_l10n::Texts,
    pub variables: HashMap<String, String>,
    pub clock: Clock,
}

/// Per-request store data.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limits: StoreLimits,
    pub shared: Arc<Shared>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: Default::default() }
    }
}

/// The process-wide engine and its epoch ticker. Compiled components are cached by content, so
/// several applications in one process (tests) compile each component once.
struct EngineCache {
    engine: Engine,
    components: std::sync::Mutex<HashMap<usize, Component>>,
}

fn engine_cache() -> anyhow::Result<&'static EngineCache> {
    static CACHE: OnceLock<EngineCache> = OnceLock::new();
    if let Some(c) = CACHE.get() {
        return Ok(c);
    }
    let engine = new_engine()?;
    let ticker = engine.weak();
    std::thread::Builder::new().name("epoch-ticker".into()).spawn(move || {
        while let Some(engine) = ticker.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(TICK);
        }
    })?;
    Ok(CACHE.get_or_init(|| EngineCache { engine, components: Default::default() }))
}

fn new_engine() -> anyhow::Result<Engine> {
    let mut pooling = wasmtime::PoolingAllocationConfig::default();
    pooling
        .total_component_instances(256)
        .total_core_instances(1024)
        .total_memories(512)
        .total_tables(512)
        .total_stacks(256)
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
    Engine::new(&config).map_err(|e| anyhow::anyhow!("cannot create the wasm engine: {e}"))
}

/// The components an application serves, by component id.
pub struct Runtime {
    engine: Engine,
    components: HashMap<String, ProxyPre<HostState>>,
    shared: Arc<Shared>,
    timeout: Duration,
    memory_limit: usize,
}

impl Runtime {
    pub fn new(components: &[(String, &'static [u8])], shared: Arc<Shared>, timeout: Duration, memory_limit: usize) -> anyhow::Result<Self> {
        let cache = engine_cache()?;
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
        Ok(Self { engine, components: pres, shared, timeout, memory_limit })
    }

    /// Runs one request through a component. Never fails: problems become a 500.
    pub async fn handle(&self, component: &str, req: hyper::Request<hyper::body::Incoming>) -> hyper::Response<Body> {
        match self.try_handle(component, req).await {
            Ok(resp) => resp,
            Err(e) => {
                tracing::error!(component, error = %format!("{e:#}"), "component failed");
                internal_error()
            }
        }
    }

    async fn try_handle(&self, component: &str, req: hyper::Request<hyper::body::Incoming>) -> anyhow::Result<hyper::Response<Body>> {
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
            shared: self.shared.clone(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let deadline = Instant::now() + self.timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
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
            let result: anyhow::Result<()> = async {
                let proxy = pre.instantiate_async(&mut store).await.map_err(anyhow::Error::from)?;
                proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await.map_err(anyhow::Error::from)
            }
            .await;
            let guest_output = output.contents();
            if !guest_output.is_empty() {
                tracing::warn!(component = %component_name, output = %String::from_utf8_lossy(&guest_output).trim_end(), "component wrote to stdout/stderr");
            }
            result
        });

        match receiver.await {
            Ok(Ok(resp)) => Ok(resp.map(|body| body.map_err(anyhow::Error::from).boxed_unsync())),
            Ok(Err(code)) => anyhow::bail!("component answered with an error code: {code:?}"),
            Err(_) => match task.await {
                Ok(Ok(())) => anyhow::bail!("component never set a response"),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(e.into()),
            },
        }
    }
}

/// A generic 500: no detail leaves the host.
pub fn internal_error() -> hyper::Response<Body> {
    let body = r#"{"code":"INTERNAL","message":"Something went wrong on our side. Please try again later."}"#;
    hyper::Response::builder()
        .status(500)
        .header("content-type", "application/json; charset=utf-8")
        .body(Full::new(Bytes::from_static(body.as_bytes())).map_err(|never| match never {}).boxed_unsync())
        .expect("static response is valid")
}
