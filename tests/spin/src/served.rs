//! The app as Spin runs it, executed under wasmtime: the sign-up component with the adapter
//! plugged in ([`crate::compose`]), served as a `wasi:http` handler (`ProxyPre`), with this
//! harness's Spin SQLite, Spin variables resolved from `spin.toml` the way `spin up` resolves
//! them, and the movable clock.
//!
//! [`App::send`] returns as soon as the answer's head and body are complete and hands back the
//! guest's task separately: a flow goes on working after its answer (`mail.flush`), and the
//! tests measure the answer, not the guest.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::task::JoinHandle;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

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

/// The composed app, compiled once, with the environment its instances get.
pub struct App {
    engine: Engine,
    pre: ProxyPre<HostState>,
    pub sqlite_file: PathBuf,
    pub clock: TestClock,
    vars: HashMap<String, String>,
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
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        spin_variables::add_to_linker(&mut linker)?;
        spin_sqlite::add_to_linker(&mut linker)?;
        let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
        let vars = component_variables(&Path::new(WORKSPACE_ROOT).join("spin.toml"), variables_of, overrides)?;
        Ok(Self { engine, pre, sqlite_file, clock: TestClock::default(), vars })
    }

    /// Serves one request in a fresh instance (as Spin 4.1 does for WASI 0.2 handlers). Returns
    /// the answer once complete, and the guest's task, which may still be running.
    pub async fn send(&self, req: hyper::Request<Bytes>) -> anyhow::Result<(Answer, JoinHandle<anyhow::Result<()>>)> {
        let state = HostState::new(&self.clock, self.vars.clone(), self.sqlite_file.clone());
        let mut store = Store::new(&self.engine, state);
        let req = req.map(Full::new);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store.data_mut().http().new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = self.pre.clone();
        let started = Instant::now();
        let guest = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await?;
            Ok(())
        });
        let response = match receiver.await {
            Ok(Ok(response)) => response,
            Ok(Err(code)) => bail!("the app answered with an error code: {code:?}"),
            Err(_) => {
                guest.await??;
                bail!("the app never set a response");
            }
        };
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
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
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
