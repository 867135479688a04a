//! The adapter executed for real under wasmtime, with this harness standing in for Spin: a
//! `fermyon:spin/sqlite@2.0.0` host over a real SQLite file (rusqlite; Spin's own host is built
//! on rusqlite too, and reports errors as `io(<sqlite message>)` like this one), `wasi:config`
//! for Spin variables, full WASI p2 and p3 with TCP to loopback, and a wall clock tests can move.
//! The adapter imports WASIp3 (`mail.flush` is an async export talking SMTP over
//! `wasi:sockets@0.3.0`), so its store is driven async: each [`Adapter`] method blocks on the
//! instance's own tokio runtime (multi-threaded: WASI p2's sync output, the adapter's stderr,
//! blocks in place), and `flush` runs in the store's event loop.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::{spin_sqlite, spin_variables};
use std::collections::HashMap;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "gpt-user:accounts/provider",
        additional_derives: [PartialEq],
        exports: { default: async },
    });
}

pub use bindings::exports::gpt_user::accounts::store::{EmailChange, EmailChangeState, Op, PendingReplacement, ProfileUpdate, SendLimit};
pub use bindings::gpt_user::accounts::types::{Error, Message, Secret, SecretPurpose, User, UserStatus};

/// Per-instance state, like Spin's per-instance state.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub(crate) vars: HashMap<String, String>,
    pub(crate) sqlite_file: PathBuf,
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

impl HostState {
    /// What Spin gives an instance: stderr, TCP to the (loopback) network, the test's clock.
    pub(crate) fn new(clock: &TestClock, vars: HashMap<String, String>, sqlite_file: PathBuf) -> Self {
        Self::with_stderr(clock, vars, sqlite_file, None)
    }

    /// Like [`HostState::new`], stderr into `stderr` if given (tests read what an instance logs).
    pub(crate) fn with_stderr(clock: &TestClock, vars: HashMap<String, String>, sqlite_file: PathBuf, stderr: Option<MemoryOutputPipe>) -> Self {
        let mut wasi = WasiCtx::builder();
        match stderr {
            Some(pipe) => wasi.stderr(pipe),
            None => wasi.inherit_stderr(),
        };
        wasi.allow_tcp(true).inherit_network().wall_clock(clock.clone());
        Self { wasi: wasi.build(), http: WasiHttpCtx::new(), table: ResourceTable::new(), vars, sqlite_file }
    }

    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

/// The real clock plus an offset the test controls (in ms), so a retry is due without sleeping.
#[derive(Clone, Default)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    pub fn now_ms(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64 + self.0.load(Ordering::SeqCst)
    }
}

impl HostWallClock for TestClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.now_ms() as u64)
    }
}

/// What this harness offers of Spin's platform: WASI p2 and p3, `wasi:config/store`, Spin SQLite.
pub fn add_platform_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi::p3::add_to_linker(linker)?;
    spin_variables::add_to_linker(linker)?;
    spin_sqlite::add_to_linker(linker)
}

/// A compiled adapter and the environment its instances get.
pub struct Harness {
    engine: Engine,
    pre: bindings::ProviderPre<HostState>,
    pub sqlite_file: PathBuf,
    pub clock: TestClock,
    vars: Vec<(String, String)>,
    /// Where instances write stderr; `None`: the test's stderr.
    pub stderr: Option<MemoryOutputPipe>,
}

impl Harness {
    /// The adapter at `wasm`, with its database at `sqlite_file` and Spin variables `vars`.
    pub fn new(wasm: &Path, sqlite_file: PathBuf, vars: &[(&str, &str)]) -> wasmtime::Result<Self> {
        let mut config = wasmtime::Config::new();
        crate::with_shared_compile_cache(&mut config).map_err(|e| wasmtime::format_err!("{e:#}"))?;
        let engine = Engine::new(&config)?;
        let component = Component::from_file(&engine, wasm)?;
        let mut linker = Linker::new(&engine);
        add_platform_to_linker(&mut linker)?;
        let pre = bindings::ProviderPre::new(linker.instantiate_pre(&component)?)?;
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Ok(Self { engine, pre, sqlite_file, clock: TestClock::default(), vars, stderr: None })
    }

    /// A fresh adapter instance (Spin may create one per request or reuse one; tests do both).
    pub fn instance(&self) -> wasmtime::Result<Adapter> {
        let state = HostState::with_stderr(&self.clock, self.vars.iter().cloned().collect(), self.sqlite_file.clone(), self.stderr.clone());
        let mut store = Store::new(&self.engine, state);
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let provider = runtime.block_on(self.pre.instantiate_async(&mut store))?;
        Ok(Adapter { store, provider, runtime })
    }
}

/// One adapter instance; its methods are the exported WIT functions.
pub struct Adapter {
    store: Store<HostState>,
    provider: bindings::Provider,
    runtime: tokio::runtime::Runtime,
}

impl Adapter {
    pub fn apply(&mut self, ops: &[Op]) -> wasmtime::Result<Result<(), Error>> {
        self.runtime.block_on(self.provider.gpt_user_accounts_store().call_apply(&mut self.store, ops))
    }

    pub fn find_user_by_email(&mut self, email: &str) -> wasmtime::Result<Result<Option<User>, Error>> {
        self.runtime.block_on(self.provider.gpt_user_accounts_store().call_find_user_by_email(&mut self.store, email))
    }

    pub fn find_user_by_pin(&mut self, pin: &str) -> wasmtime::Result<Result<Option<User>, Error>> {
        self.runtime.block_on(self.provider.gpt_user_accounts_store().call_find_user_by_pin(&mut self.store, pin))
    }

    pub fn find_user_by_id(&mut self, id: &str) -> wasmtime::Result<Result<Option<User>, Error>> {
        self.runtime.block_on(self.provider.gpt_user_accounts_store().call_find_user_by_id(&mut self.store, id))
    }

    pub fn find_secret(&mut self, hash: &str, purpose: SecretPurpose, now: i64) -> wasmtime::Result<Result<Option<Secret>, Error>> {
        self.runtime.block_on(self.provider.gpt_user_accounts_store().call_find_secret(&mut self.store, hash, purpose, now))
    }

    pub fn find_email_change(&mut self, id: &str) -> wasmtime::Result<Result<Option<EmailChange>, Error>> {
        self.runtime.block_on(self.provider.gpt_user_accounts_store().call_find_email_change(&mut self.store, id))
    }

    pub fn put(&mut self, key: &str, value: &str, now: i64, expires_at: i64) -> wasmtime::Result<Result<(), Error>> {
        self.runtime.block_on(self.provider.gpt_user_accounts_ephemeral().call_put(&mut self.store, key, value, now, expires_at))
    }

    pub fn get(&mut self, key: &str, now: i64) -> wasmtime::Result<Result<Option<String>, Error>> {
        self.runtime.block_on(self.provider.gpt_user_accounts_ephemeral().call_get(&mut self.store, key, now))
    }

    pub fn increment(&mut self, key: &str, now: i64, expires_at: i64) -> wasmtime::Result<Result<u32, Error>> {
        self.runtime.block_on(self.provider.gpt_user_accounts_ephemeral().call_increment(&mut self.store, key, now, expires_at))
    }

    pub fn delete(&mut self, key: &str) -> wasmtime::Result<Result<(), Error>> {
        self.runtime.block_on(self.provider.gpt_user_accounts_ephemeral().call_delete(&mut self.store, key))
    }

    pub fn enqueue(&mut self, message: &Message) -> wasmtime::Result<Result<(), Error>> {
        self.runtime.block_on(self.provider.gpt_user_accounts_mail().call_enqueue(&mut self.store, message))
    }

    /// What a flow calls after its answer: delivers due mail and runs housekeeping when due (an
    /// async export: run in the store's event loop).
    pub fn flush(&mut self) -> wasmtime::Result<()> {
        let mail = self.provider.gpt_user_accounts_mail().clone();
        self.runtime.block_on(self.store.run_concurrent(async move |store| mail.call_flush(store).await))?
    }

    pub fn negotiate(&mut self, requested: &str) -> wasmtime::Result<String> {
        self.runtime.block_on(self.provider.gpt_user_accounts_l10n().call_negotiate(&mut self.store, requested))
    }

    pub fn render_email(&mut self, locale: &str, kind: &str, to: &str, args: &[(String, String)]) -> wasmtime::Result<Result<Message, String>> {
        self.runtime.block_on(self.provider.gpt_user_accounts_l10n().call_render_email(&mut self.store, locale, kind, to, args))
    }
}
