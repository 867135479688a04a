//! `Application`: config → adapters → runtime → HTTP server ([`crate::server`]), plus the
//! background work (mail dispatcher, housekeeping). Tests start it on port 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::adapters::ephemeral::{self, RedisBackend, SqlBackend};
use crate::adapters::mail::{Dispatcher, Transport};
use crate::adapters::store::SqlStore;
use crate::clock::Clock;
use crate::config::Config;
use crate::limits::{Rate, RateLimiter, Slots};
use crate::manifest::{Manifest, Route};
use crate::metrics::Metrics;
use crate::native::NativeRuntime;
use crate::runtime::{Limits, Runtime, Shared};
use crate::server::{Handler, Server};
use crate::{artifacts, devmail};

/// Pending accounts are deleted this long after their last sign-up attempt; delivered mail and
/// dev-mailbox messages are kept as long.
const PENDING_TTL_MS: i64 = gpt_user_core::ports::STALE_AFTER_MS;

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    manifest: Arc<Manifest>,
    runtime: Handler,
    dispatcher: Arc<Dispatcher>,
    store: SqlStore,
    clock: Clock,
    /// The dev mailbox directory, when mail goes there.
    mailbox: Option<std::path::PathBuf>,
    dev: bool,
    header_read_timeout: Duration,
    max_connections: usize,
    max_connections_per_peer: usize,
    limiter: RateLimiter,
    /// In dev mode: the base URL, the one name besides loopback ones requests may be sent to.
    dev_base_url: Option<String>,
    housekeeping_interval: Duration,
    /// Audit events are deleted this many days after they happened.
    events_retention_days: u32,
    metrics: Arc<Metrics>,
    /// Where `/metrics` is served (`Config::metrics_listen`), apart from the public listener.
    metrics_listener: Option<TcpListener>,
    stop: Arc<Notify>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, Vec::new()).await
    }

    /// Like [`Application::build`], plus components served at extra routes (tests use this for
    /// a component that traps).
    pub async fn build_with(config: Config, extra: Vec<(Route, &'static [u8])>) -> anyhow::Result<Self> {
        Self::build_inner(config, extra, false).await
    }

    /// The benchmark's native baseline (`gpt-user serve --native`, see [`crate::native`]): the
    /// same routes, adapters and server, the core compiled natively instead of the components.
    pub async fn build_native(config: Config) -> anyhow::Result<Self> {
        Self::build_inner(config, Vec::new(), true).await
    }

    async fn build_inner(config: Config, extra: Vec<(Route, &'static [u8])>, native: bool) -> anyhow::Result<Self> {
        // First, before anything slow: a refused configuration answers at once.
        config.validate()?;
        let keys = config.api_keys();
        let mut manifest = Manifest::parse(artifacts::SPIN_TOML)?;
        let mut components: Vec<(String, &'static [u8])> = Vec::new();
        for (id, source) in &manifest.sources {
            let bytes = artifacts::component(source).with_context(|| format!("component {id} ({source}) is not embedded"))?;
            components.push((id.clone(), bytes));
        }
        for (route, bytes) in extra {
            components.push((route.component.clone(), bytes));
            manifest.routes.insert(0, route);
        }

        let store = SqlStore::connect(&config.database_url()).await?;
        let clock = Clock::default();
        let listener = listen(config.listen, config.max_connections).with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let mut variables = manifest.variables.clone();
        let base_url = base_url_of(&config, addr);
        variables.extend(config.variables(base_url));

        let ephemeral = ephemeral_backend(&config, &store).await?;
        let metrics = Metrics::new();
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| format!("cannot listen for metrics on {addr}"))?),
            None => None,
        };
        let shared = Arc::new(Shared {
            store: store.clone(),
            ephemeral,
            texts: gpt_user_l10n::Texts::new(),
            variables,
            clock: clock.clone(),
            metrics: metrics.clone(),
            outbound: Arc::new(crate::outbound::Policy::new(config.dev, config.outbound_ca_file.as_deref())?),
        });
        let limits = Limits {
            timeout: Duration::from_millis(config.request_timeout_ms),
            memory_limit: config.memory_limit_mib << 20,
            max_instances: config.max_instances,
            reserved_instances_percent: config.reserved_instances_percent,
            compiled_dir: Some(config.compiled_dir()),
        };
        let runtime = if native {
            Handler::Native(Arc::new(NativeRuntime::new(shared, limits.timeout, Slots::new(limits.max_instances, limits.reserved_instances_percent))?))
        } else {
            Handler::Wasm(Arc::new(Runtime::new(&components, shared, limits)?))
        };

        let smtp_url = config.smtp_url.as_ref().map(|s| s.expose().to_owned());
        let transport = Transport::new(smtp_url.as_deref(), config.mailbox_dir())?;
        let mailbox = matches!(transport, Transport::Mailbox(_)).then(|| config.mailbox_dir());
        let dispatcher = Arc::new(Dispatcher {
            store: store.clone(),
            transport,
            from: config.mail_from.parse().context("mail_from is not a valid address")?,
            clock: clock.clone(),
            retry_base: Duration::from_millis(config.mail_retry_base_ms),
            retry_max: Duration::from_millis(config.mail_retry_max_ms),
            poll: Duration::from_millis(config.mail_poll_ms),
            lease: Duration::from_millis(config.mail_lease_ms),
            metrics: metrics.clone(),
        });
        if config.dev {
            tracing::warn!(%addr, keys = keys.len(), "dev mode: not for production");
        }
        match (&mailbox, config.dev) {
            (Some(dir), true) => tracing::info!(dir = %dir.display(), "no SMTP URL: mail goes to the dev mailbox, listed at /dev/mail"),
            (Some(dir), false) => tracing::warn!(dir = %dir.display(), "no SMTP URL: mail goes to the dev mailbox (not served outside dev mode)"),
            (None, _) => tracing::info!("mail is delivered by SMTP"),
        }
        Ok(Self {
            listener,
            addr,
            manifest: Arc::new(manifest),
            runtime,
            dispatcher,
            store,
            clock,
            mailbox,
            dev: config.dev,
            header_read_timeout: Duration::from_millis(config.header_read_timeout_ms),
            max_connections: config.max_connections,
            max_connections_per_peer: config.max_connections_per_peer,
            limiter: RateLimiter::new(
                Rate { per_second: config.rate_limit_per_key, burst: config.rate_limit_per_key_burst },
                Rate { per_second: config.rate_limit_per_peer, burst: config.rate_limit_per_peer_burst },
                keys,
            ),
            dev_base_url: config.dev.then(|| base_url_of(&config, addr)),
            housekeeping_interval: Duration::from_secs(config.housekeeping_interval_s.max(1)),
            events_retention_days: config.events_retention_days,
            metrics,
            metrics_listener,
            stop: Arc::new(Notify::new()),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/metrics` is served, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The clock shared by the components and the adapters (tests move it forward).
    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }

    /// A handle that stops the server, the dispatcher and housekeeping.
    pub fn stopper(&self) -> Arc<Notify> {
        self.stop.clone()
    }

    /// The database pool, for tests and operator tools.
    pub fn db(&self) -> sqlx::AnyPool {
        self.store.pool().clone()
    }

    /// Runs housekeeping once at the application's clock; returns deleted pending accounts.
    /// Dev-mailbox messages older than delivered mail's retention go too.
    pub fn housekeeper(&self) -> impl Fn() -> HousekeepFuture + Send + Sync + 'static {
        let store = self.store.clone();
        let clock = self.clock.clone();
        let mailbox = self.mailbox.clone();
        let events_retention_days = self.events_retention_days;
        move || {
            let store = store.clone();
            let mailbox = mailbox.clone();
            let now = clock.now_ms();
            Box::pin(async move {
                let deleted = store.housekeep(now, now - PENDING_TTL_MS, events_retention_days).await.map_err(anyhow::Error::from)?;
                if let Some(dir) = mailbox {
                    match devmail::prune(&dir, now - PENDING_TTL_MS).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(deleted = n, "deleted dev-mailbox messages older than 7 days"),
                        Err(e) => tracing::warn!(error = %e, "pruning the dev mailbox failed"),
                    }
                }
                Ok(deleted)
            })
        }
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let stop = self.stop.clone();
        tokio::spawn(self.dispatcher.clone().run(stop.clone()));
        let housekeep = self.housekeeper();
        let interval = self.housekeeping_interval;
        let hk_stop = stop.clone();
        tokio::spawn(async move {
            loop {
                match housekeep().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "deleted pending accounts older than 7 days"),
                    Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
                }
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = hk_stop.notified() => return,
                }
            }
        });
        if let Some(listener) = self.metrics_listener {
            let exporter = crate::metrics::Exporter { metrics: self.metrics.clone(), store: self.store.clone(), clock: self.clock.clone() };
            tracing::info!(addr = %listener.local_addr()?, "metrics are served at /metrics");
            tokio::spawn(exporter.serve(listener, stop.clone()));
        }
        tracing::info!(addr = %self.addr, "gpt-user is serving");
        let server = Server {
            manifest: self.manifest,
            runtime: self.runtime,
            mailbox: self.mailbox.filter(|_| self.dev),
            header_read_timeout: self.header_read_timeout,
            max_connections: self.max_connections,
            max_connections_per_peer: self.max_connections_per_peer,
            limiter: self.limiter,
            texts: gpt_user_l10n::Texts::new(),
            dev_base_url: self.dev_base_url,
            metrics: self.metrics,
        };
        server.run(self.listener, stop).await;
        Ok(())
    }
}

/// The public origin: the configured one, else the address actually bound (port 0 in tests).
fn base_url_of(config: &Config, addr: SocketAddr) -> String {
    match &config.base_url {
        Some(_) => config.base_url(),
        None => format!("http://{addr}"),
    }
}

/// The ephemeral store: Redis when `redis_url` is set, else the store's `ephemeral` table. A Redis
/// that does not answer at start is reported, not fatal: the email-change steps answer 503 until
/// it is up, and everything else works.
async fn ephemeral_backend(config: &Config, store: &SqlStore) -> anyhow::Result<Arc<dyn ephemeral::Backend>> {
    let Some(url) = config.redis_url() else {
        return Ok(Arc::new(SqlBackend(store.clone())));
    };
    let redis = RedisBackend::new(url)?;
    match redis.ping().await {
        Ok(()) => tracing::info!("email-change codes are kept in Redis"),
        Err(e) => tracing::warn!(error = %e, "Redis does not answer: email-change steps answer 503 until it does"),
    }
    Ok(Arc::new(redis))
}

/// Binds `addr` with a listen backlog of `max_connections` (the kernel caps it at `somaxconn`).
/// `TcpListener::bind` uses 128, like std: a burst of more new connections than that overflows
/// the accept queue and the kernel resets some of them (seen with 300 at once) — and the server
/// relies on the backlog to hold connections beyond `max_connections` until a slot frees.
fn listen(addr: SocketAddr, max_connections: usize) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(u32::try_from(max_connections).unwrap_or(u32::MAX).max(128))
}

/// One housekeeping run (see [`Application::housekeeper`]): deleted pending accounts.
pub type HousekeepFuture = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<u64>> + Send>>;
