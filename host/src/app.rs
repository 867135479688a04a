//! `Application`: config → adapters → runtime → HTTP server. Tests start it on port 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::adapters::mail::{Dispatcher, Transport};
use crate::adapters::store::SqlStore;
use crate::clock::Clock;
use crate::config::Config;
use crate::manifest::{Manifest, Route};
use crate::runtime::{Runtime, Shared};
use crate::{artifacts, devmail, reply};

/// Pending accounts are deleted this long after sign-up; delivered mail is kept as long.
const PENDING_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    manifest: Arc<Manifest>,
    runtime: Arc<Runtime>,
    dispatcher: Arc<Dispatcher>,
    store: SqlStore,
    clock: Clock,
    /// The dev mailbox directory, when mail goes there.
    mailbox: Option<std::path::PathBuf>,
    dev: bool,
    housekeeping_interval: Duration,
    stop: Arc<Notify>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, Vec::new()).await
    }

    /// Like [`Application::build`], plus components served at extra routes (tests use this for
    /// a component that traps).
    pub async fn build_with(config: Config, extra: Vec<(Route, &'static [u8])>) -> anyhow::Result<Self> {
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
        let listener = TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let mut variables = manifest.variables.clone();
        let base_url = match &config.base_url {
            Some(_) => config.base_url(),
            None => format!("http://{addr}"),
        };
        variables.insert("base_url".into(), base_url);
        variables.insert("api_keys".into(), keys.join(","));
        variables.insert("dev".into(), config.dev.to_string());
        variables.insert("pin_length".into(), config.pin_length.to_string());
        variables.insert("conceal_accounts".into(), config.conceal_accounts.to_string());
        variables.insert("policy_version".into(), config.policy_version.clone());
        variables.insert("mail_from".into(), config.mail_from.clone());

        let shared = Arc::new(Shared { store: store.clone(), texts: gpt_user_l10n::Texts::new(), variables, clock: clock.clone() });
        let runtime = Runtime::new(&components, shared, Duration::from_millis(config.request_timeout_ms), config.memory_limit_mib << 20)?;

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
            runtime: Arc::new(runtime),
            dispatcher,
            store,
            clock,
            mailbox,
            dev: config.dev,
            housekeeping_interval: Duration::from_secs(config.housekeeping_interval_s.max(1)),
            stop: Arc::new(Notify::new()),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
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
        move || {
            let store = store.clone();
            let mailbox = mailbox.clone();
            let now = clock.now_ms();
            Box::pin(async move {
                let deleted = store.housekeep(now, now - PENDING_TTL_MS, now - PENDING_TTL_MS).await.map_err(anyhow::Error::from)?;
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
        tracing::info!(addr = %self.addr, "gpt-user is serving");
        let server = Arc::new(Server { manifest: self.manifest, runtime: self.runtime, mailbox: self.mailbox.filter(|_| self.dev) });
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                () = stop.notified() => return Ok(()),
            };
            let server = server.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let server = server.clone();
                    async move { Ok::<_, std::convert::Infallible>(server.route(req, peer).await) }
                });
                if let Err(e) = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service).await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
    }
}

/// One housekeeping run (see [`Application::housekeeper`]): deleted pending accounts.
pub type HousekeepFuture = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<u64>> + Send>>;

struct Server {
    manifest: Arc<Manifest>,
    runtime: Arc<Runtime>,
    /// The dev mailbox, when it may be shown (dev mode, no SMTP).
    mailbox: Option<std::path::PathBuf>,
}

impl Server {
    async fn route(&self, req: hyper::Request<hyper::body::Incoming>, peer: SocketAddr) -> hyper::Response<crate::runtime::Body> {
        // The path only: query strings are not logged (our links carry tokens in the fragment,
        // which browsers never send, but a client could put anything in a query).
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        let started = std::time::Instant::now();
        let response = if path == "/dev/mail" || path.starts_with("/dev/mail/") {
            devmail::serve(self.mailbox.as_deref(), peer, &method, &path).await
        } else {
            match self.manifest.route(&path) {
                Some(route) => self.runtime.handle(&route.component, req).await,
                None => reply::not_found(),
            }
        };
        tracing::info!(%method, path = %truncated(&path), status = response.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
        response
    }
}

/// Paths are client input: keep log lines bounded.
fn truncated(path: &str) -> &str {
    match path.char_indices().nth(200) {
        Some((i, _)) => &path[..i],
        None => path,
    }
}
