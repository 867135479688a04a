#![allow(dead_code)] // each test binary uses part of these helpers
//! `spawn_app()`: a fresh host per test (port 0, its own SQLite file or PostgreSQL database, its
//! own SMTP listener), or — with `GPT_USER_TEST_BASE_URL` and `GPT_USER_TEST_SMTP_LISTEN` — a
//! server that is already running (our host elsewhere, or `spin up`). Every in-process test also
//! checks on drop that no secret it used reached the log.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use gpt_user::manifest::Route;
use serde_json::{Value, json};
use tokio::sync::Notify;

use gpt_user_test_support::smtp::{Inbox, SmtpSink};

pub const PASSPHRASE: &str = "correct horse battery staple";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// SQLite for the store, Redis for the ephemeral store (email-change codes and their
    /// counters): `GPT_USER_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`. Tests sharing one
    /// Redis do not collide: every key names a random flow id or code reference.
    Redis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailMode {
    /// A test SMTP listener, up from the start.
    Smtp,
    /// No SMTP URL: the dev mailbox, read through `/dev/mail`.
    DevMailbox,
    /// An SMTP URL whose listener is not up yet (`TestApp::start_smtp` brings it up).
    SmtpDown,
}

pub struct Options {
    pub backend: Backend,
    pub mail: MailMode,
    pub api_keys: Option<&'static str>,
    pub conceal: bool,
    pub request_timeout_ms: u64,
    pub extra: Vec<(Route, &'static [u8])>,
    /// Dev mode; `None`: on exactly when no API key is configured (the host refuses to start
    /// without a key outside dev mode).
    pub dev: Option<bool>,
    /// Changes to the host's configuration after the fields above are applied (limits, timeouts).
    pub config: Option<fn(&mut gpt_user::Config)>,
    /// The Redis the host keeps its ephemeral values in, whatever the backend (a test's own
    /// `redis-server`); `None`: `Backend::Redis` uses `test_redis_url()`, the others none.
    pub redis_url: Option<String>,
}

impl Options {
    pub fn new(backend: Backend) -> Self {
        Self { backend, mail: MailMode::Smtp, api_keys: None, conceal: false, request_timeout_ms: 10_000, extra: Vec::new(), dev: None, config: None, redis_url: None }
    }
}

/// In-process control over the host: its clock, its database, housekeeping.
pub struct Control {
    pub clock: gpt_user::clock::Clock,
    pub db: sqlx::AnyPool,
    pub housekeep: Box<dyn Fn() -> gpt_user::HousekeepFuture + Send + Sync>,
    /// Where the host serves `/metrics`, if its configuration has it listen.
    pub metrics: Option<std::net::SocketAddr>,
    stop: Arc<Notify>,
    dir: PathBuf,
    /// `(admin URL, database)` of a PostgreSQL database made for this test.
    postgres: Option<(String, String)>,
    /// The database is renamed away (`suspend_postgres_database`) and not yet back.
    suspended: std::sync::atomic::AtomicBool,
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub api_key: Option<String>,
    pub control: Option<Control>,
    smtp_addr: Option<String>,
    inbox: Inbox,
    sink: Mutex<Option<SmtpSink>>,
    dev_mailbox: bool,
    seen: Mutex<HashMap<String, usize>>,
    secrets: Mutex<Vec<String>>,
    /// Email-change codes this test read from mail (see `remember_code`).
    codes: Mutex<Vec<String>>,
    /// The raw body of every email-change answer, searched for codes on drop.
    ec_answers: Mutex<Vec<String>>,
}

/// A parsed email.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Mail {
    /// The token of the first `#token=` link in the text part.
    pub fn token(&self) -> String {
        let after = self.text.split("#token=").nth(1).expect("the mail has a #token= link");
        after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
    }

    pub fn link(&self) -> String {
        self.text.split_whitespace().find(|w| w.starts_with("http")).expect("the mail has a link").to_owned()
    }
}

/// The server under test when it runs elsewhere. Only the black-box binary (`tests/api`) may
/// run so; the in-process binary (`tests/host`) always starts its own host.
fn external() -> Option<(String, String)> {
    if !crate::REMOTE_CAPABLE {
        return None;
    }
    let base = std::env::var("GPT_USER_TEST_BASE_URL").ok().filter(|v| !v.is_empty())?;
    let smtp = std::env::var("GPT_USER_TEST_SMTP_LISTEN").unwrap_or_else(|_| "127.0.0.1:2525".into());
    Some((base.trim_end_matches('/').to_owned(), smtp))
}

/// Whether this binary targets a server elsewhere (`GPT_USER_TEST_BASE_URL`): its store is
/// whatever that server has, so tests that differ only by backend run once (`on_every_store!`).
pub fn external_server() -> bool {
    external().is_some()
}

/// The Redis of `Backend::Redis` (`GPT_USER_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`).
pub fn test_redis_url() -> String {
    std::env::var("GPT_USER_TEST_REDIS_URL").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "redis://127.0.0.1:6379".into())
}

/// `host:port` of a `redis://[user:pass@]host[:port][/db]` URL.
fn redis_addr(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    if host.contains(':') { host.to_owned() } else { format!("{host}:6379") }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_with(Options::new(backend)).await
}

pub async fn spawn_with(options: Options) -> TestApp {
    init_logging();
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().unwrap();
    if let Some((base, smtp)) = external() {
        let sink = SmtpSink::start(&smtp).await.unwrap_or_else(|e| panic!("cannot listen for SMTP on {smtp}: {e}"));
        let api_key = std::env::var("GPT_USER_TEST_API_KEY").ok();
        return TestApp::new(base, client, api_key, None, Some(smtp), sink.inbox.clone(), Some(sink), false);
    }

    let dir = std::env::temp_dir().join(format!("gpt-user-test-{}", uuid::Uuid::new_v4().simple()));
    let (smtp_url, sink, smtp_addr) = match options.mail {
        MailMode::Smtp => {
            let sink = SmtpSink::start("127.0.0.1:0").await.unwrap();
            (Some(format!("smtp://{}", sink.addr)), Some(sink), None)
        }
        MailMode::SmtpDown => {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            (Some(format!("smtp://127.0.0.1:{port}")), None, Some(format!("127.0.0.1:{port}")))
        }
        MailMode::DevMailbox => (None, None, None),
    };
    let postgres = match options.backend {
        Backend::Sqlite | Backend::Redis => None,
        Backend::Postgres => Some(fresh_postgres_database().await),
    };
    let redis_url = options.redis_url.clone().or_else(|| (options.backend == Backend::Redis).then(test_redis_url));
    if options.redis_url.is_none()
        && let Some(url) = &redis_url
    {
        let addr = redis_addr(url);
        tokio::net::TcpStream::connect(&addr).await.unwrap_or_else(|e| panic!("Redis is reachable at {addr} (GPT_USER_TEST_REDIS_URL): {e}"));
    }
    let database_url = postgres.as_ref().map(|(admin, name)| {
        let (server, _) = admin.rsplit_once('/').unwrap();
        gpt_user::Secret::new(format!("{server}/{name}"))
    });
    let mut config = gpt_user::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.clone(),
        database_url,
        redis_url: redis_url.map(gpt_user::Secret::new),
        smtp_url: smtp_url.map(gpt_user::Secret::new),
        api_keys: gpt_user::Secret::new(options.api_keys.unwrap_or_default()),
        dev: options.dev.unwrap_or(options.api_keys.is_none()),
        conceal_accounts: options.conceal,
        request_timeout_ms: options.request_timeout_ms,
        mail_retry_base_ms: 100,
        mail_retry_max_ms: 400,
        mail_poll_ms: 100,
        // The suites call faster than one client may; the limits' own tests set them.
        rate_limit_per_key: 0,
        rate_limit_per_peer: 0,
        max_connections_per_peer: 0,
        compiled_dir: Some(gpt_user::artifacts::shared_compiled_dir()),
        ..gpt_user::Config::default()
    };
    if let Some(configure) = options.config {
        configure(&mut config);
    }
    let app = gpt_user::Application::build_with(config, options.extra).await.expect("the app starts");
    let base = format!("http://{}", app.local_addr());
    let control = Control {
        clock: app.clock(),
        db: app.db(),
        housekeep: Box::new(app.housekeeper()),
        metrics: app.metrics_addr(),
        stop: app.stopper(),
        dir,
        postgres,
        suspended: Default::default(),
    };
    tokio::spawn(app.run_until_stopped());
    let inbox = sink.as_ref().map(|s| s.inbox.clone()).unwrap_or_default();
    let api_key = options.api_keys.map(|k| k.split(',').next().unwrap_or_default().to_owned());
    let dev = options.mail == MailMode::DevMailbox;
    let app = TestApp::new(base, client, api_key, Some(control), smtp_addr, inbox, sink, dev);
    if let Some(key) = &app.api_key {
        app.remember_secret(key);
    }
    app
}

impl Control {
    /// The URL another process opens this host's database with (the operator CLI): the test's
    /// PostgreSQL database, or the SQLite file in the data dir (`Config::database_url`).
    pub fn database_url(&self) -> String {
        match &self.postgres {
            Some((admin, name)) => {
                let (server, _) = admin.rsplit_once('/').unwrap();
                format!("{server}/{name}")
            }
            None => format!("sqlite://{}", self.dir.join("gpt-user.db").display()),
        }
    }

    /// The host's data directory (its SQLite file, dev mailbox); removed with the app.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Drops this test's PostgreSQL database under the running host (its connections are cut).
    pub async fn kill_postgres_database(&self) {
        let (admin, name) = self.postgres.clone().expect("a PostgreSQL test");
        tokio::task::spawn_blocking(move || drop_postgres_database(admin, name)).await.unwrap();
    }

    /// Takes this test's PostgreSQL database away from the running host without losing it: no new
    /// connections, the open ones cut, then renamed, so the host finds it missing (3D000) as after
    /// `kill_postgres_database` — until `resume_postgres_database` puts it back unchanged.
    pub async fn suspend_postgres_database(&self) {
        use sqlx::Connection as _;
        let (admin, name) = self.postgres.clone().expect("a PostgreSQL test");
        let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).execute(&mut conn).await.unwrap();
        let terminate = format!("SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()");
        let mut last_error = None;
        // Terminated backends take a moment to go; a database in use cannot be renamed.
        for _ in 0..100 {
            sqlx::query(&terminate).execute(&mut conn).await.unwrap();
            match sqlx::query(&format!("ALTER DATABASE {name} RENAME TO {name}_away")).execute(&mut conn).await {
                Ok(_) => {
                    last_error = None;
                    break;
                }
                Err(e) => last_error = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Some(e) = last_error {
            panic!("cannot take the database away: {e}");
        }
        self.suspended.store(true, std::sync::atomic::Ordering::SeqCst);
        sqlx::query(&format!("ALTER DATABASE {name}_away ALLOW_CONNECTIONS true")).execute(&mut conn).await.unwrap();
    }

    /// Puts back the database `suspend_postgres_database` took away; the host reconnects.
    pub async fn resume_postgres_database(&self) {
        use sqlx::Connection as _;
        let (admin, name) = self.postgres.clone().expect("a PostgreSQL test");
        let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("ALTER DATABASE {name}_away RENAME TO {name}")).execute(&mut conn).await.unwrap();
        self.suspended.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

pub use gpt_user_test_support::postgres::{drop_postgres_database, fresh_postgres_database};

impl TestApp {
    #[allow(clippy::too_many_arguments)]
    fn new(base: String, client: reqwest::Client, api_key: Option<String>, control: Option<Control>, smtp_addr: Option<String>, inbox: Inbox, sink: Option<SmtpSink>, dev_mailbox: bool) -> Self {
        Self {
            base,
            client,
            api_key,
            control,
            smtp_addr,
            inbox,
            sink: Mutex::new(sink),
            dev_mailbox,
            seen: Default::default(),
            secrets: Default::default(),
            codes: Default::default(),
            ec_answers: Default::default(),
        }
    }

    /// A secret the log must not contain anywhere (a substring check: for secrets long enough not
    /// to occur by chance; a 6-digit code goes to `remember_code`).
    pub fn remember_secret(&self, secret: &str) {
        self.secrets.lock().unwrap().push(secret.to_owned());
    }

    /// An email-change code the log must not show and no answer may carry. The log is searched for
    /// it as a word of its own (as the regex `\b<code>\b` would), not as a substring: a log is
    /// full of digits (timestamps to the microsecond, durations, hashes), and a plain substring
    /// check of 6 digits would fail by chance. The answers are searched as substrings.
    pub fn remember_code(&self, code: &str) {
        self.codes.lock().unwrap().push(code.to_owned());
    }

    /// The in-process controls. Tests that need them live in the in-process binary (`tests/host`),
    /// which never targets a remote server, so they always assert.
    pub fn control(&self) -> &Control {
        self.control.as_ref().expect("this test needs the in-process host: it belongs in tests/host, not in the black-box suite")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST JSON (with the API key if the app has one).
    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).json(body);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        req.send().await.expect("the server answers")
    }

    /// POST raw bytes with a content type (with the API key if the app has one).
    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).header("content-type", content_type).body(body);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        req.send().await.expect("the server answers")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("the server answers")
    }

    pub async fn sign_up(&self, email: &str, locale: &str) -> reqwest::Response {
        self.sign_up_with(email, locale, PASSPHRASE).await
    }

    pub async fn sign_up_with(&self, email: &str, locale: &str, passphrase: &str) -> reqwest::Response {
        self.remember_secret(passphrase);
        self.post("/api/signup/init", &json!({"email": email, "consent": true, "locale": locale, "passphrase": passphrase})).await
    }

    pub async fn verify(&self, token: &str) -> reqwest::Response {
        self.post("/api/signup/verify", &json!({"token": token})).await
    }

    /// Signs up and verifies; returns the PIN.
    pub async fn active_user(&self, email: &str) -> String {
        self.active_user_in(email, "en").await
    }

    /// Signs up in `locale` and verifies; returns the PIN.
    pub async fn active_user_in(&self, email: &str, locale: &str) -> String {
        let r = self.sign_up(email, locale).await;
        assert_eq!(r.status(), 201);
        let pin = r.json::<Value>().await.unwrap()["pin"].as_str().unwrap().to_owned();
        let token = self.next_mail(email).await.token();
        assert_eq!(self.verify(&token).await.status(), 200);
        pin
    }

    /// Update_Init (GPT action) with this body.
    pub async fn profile_init(&self, body: &Value) -> reqwest::Response {
        self.post("/api/profile/init", body).await
    }

    /// The recovery page's "send me a link" (browser API).
    pub async fn profile_request(&self, email: &str) -> reqwest::Response {
        self.post("/api/profile/request", &json!({"email": email})).await
    }

    /// Update_Load (browser API).
    pub async fn profile_load(&self, token: &str) -> reqwest::Response {
        self.post("/api/profile/load", &json!({"token": token})).await
    }

    /// Update_Save (browser API) with this body; a passphrase in it is a secret the log must not show.
    pub async fn profile_save(&self, body: &Value) -> reqwest::Response {
        if let Some(passphrase) = body["passphrase"].as_str() {
            self.remember_secret(passphrase);
        }
        self.post("/api/profile/save", body).await
    }

    /// Asks for a profile link by email (Update_Init, which must answer 200) and returns the
    /// token of the emailed `{base}/profile#token=…` link.
    pub async fn profile_link_token(&self, email: &str) -> String {
        let r = self.profile_init(&json!({"email": email})).await;
        assert_eq!(r.status(), 200, "Update_Init for {email}");
        let mail = self.next_mail(email).await;
        assert!(mail.text.contains(&format!("{}/profile#token=", self.base)), "a profile link: {}", mail.text);
        mail.token()
    }

    /// Auth_Check (GPT action) with `pin` as given (a string of digits or a JSON integer). The
    /// passphrase is a secret the log must not show; shorter test inputs (under 15 characters,
    /// which a log could hold by chance) are not recorded.
    pub async fn auth_check(&self, pin: &Value, passphrase: &str) -> reqwest::Response {
        if passphrase.chars().count() >= 15 {
            self.remember_secret(passphrase);
        }
        self.post("/api/auth/check", &json!({"pin": pin, "passphrase": passphrase})).await
    }

    /// Auth_Check read whole (see [`Answer`]); asserts that the passphrase appears nowhere in the
    /// answer, headers included.
    pub async fn auth_answer(&self, pin: &Value, passphrase: &str) -> Answer {
        Answer::read(self.auth_check(pin, passphrase).await, passphrase).await
    }

    /// Waits (up to 20 s) for the next message to `to` not returned before.
    pub async fn next_mail(&self, to: &str) -> Mail {
        self.try_next_mail(to, Duration::from_secs(20)).await.unwrap_or_else(|| panic!("no mail to {to} arrived"))
    }

    pub async fn try_next_mail(&self, to: &str, wait: Duration) -> Option<Mail> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let all = self.all_mail_to(to).await;
            let seen = *self.seen.lock().unwrap().get(to).unwrap_or(&0);
            if let Some(mail) = all.get(seen) {
                self.seen.lock().unwrap().insert(to.to_owned(), seen + 1);
                let mail = mail.clone();
                if mail.text.contains("#token=") {
                    self.remember_secret(&mail.token());
                }
                return Some(mail);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            let arrived = self.inbox.arrived.notified();
            let _ = tokio::time::timeout(Duration::from_millis(100), arrived).await;
        }
    }

    /// Every message to `to` so far, in arrival order.
    pub async fn all_mail_to(&self, to: &str) -> Vec<Mail> {
        let raws: Vec<Vec<u8>> = if self.dev_mailbox {
            let list: Vec<Value> = self.get("/dev/mail").await.json().await.unwrap();
            let mut raws = Vec::new();
            for item in list {
                let bytes = self.get(item["url"].as_str().unwrap()).await.bytes().await.unwrap();
                raws.push(bytes.to_vec());
            }
            raws
        } else {
            self.inbox.messages.lock().unwrap().iter().filter(|m| m.recipients.iter().any(|r| r == to)).map(|m| m.raw.clone()).collect()
        };
        raws.iter().map(|raw| parse_mail(raw)).filter(|m| m.to == to).collect()
    }

    /// `host:port` of the SMTP relay the host sends to (up or not yet), if it has one.
    pub fn smtp_relay(&self) -> Option<String> {
        self.smtp_addr.clone().or_else(|| self.sink.lock().unwrap().as_ref().map(|s| s.addr.to_string()))
    }

    /// Brings up the SMTP listener of a `MailMode::SmtpDown` app.
    pub async fn start_smtp(&self) {
        let addr = self.smtp_addr.clone().expect("an SmtpDown app");
        let sink = SmtpSink::start_with(&addr, self.inbox.clone()).await.unwrap();
        *self.sink.lock().unwrap() = Some(sink);
    }
}

/// An answer read whole: its status, `Retry-After` in seconds, the body's bytes and its JSON.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub raw: Vec<u8>,
    pub body: Value,
}

impl Answer {
    /// Reads `r`, asserting that `secret` (when 15 characters or more: shorter test inputs could
    /// occur by chance) is in neither a header nor the body, and that the body is JSON.
    pub async fn read(r: reqwest::Response, secret: &str) -> Self {
        let status = r.status().as_u16();
        let checked = secret.chars().count() >= 15;
        for (name, value) in r.headers() {
            assert!(!checked || !String::from_utf8_lossy(value.as_bytes()).contains(secret), "the secret is in the {name} header");
        }
        let retry_after = r.headers().get("retry-after").map(|v| {
            let v = v.to_str().expect("an ASCII Retry-After");
            v.parse::<u64>().unwrap_or_else(|_| panic!("Retry-After in seconds, not {v:?}"))
        });
        let raw = r.bytes().await.expect("the body is read").to_vec();
        let text = String::from_utf8_lossy(&raw).into_owned();
        assert!(!checked || !text.contains(secret), "the secret is in the answer ({status}): {text}");
        let body = serde_json::from_slice(&raw).unwrap_or_else(|e| panic!("a JSON answer ({status}, {e}): {text}"));
        Self { status, retry_after, raw, body }
    }

    /// Asserts an error answer for the assistant: status, code, a message and instructions.
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["code"], code, "{}", self.body);
        assert!(self.body["message"].as_str().is_some_and(|m| !m.is_empty()), "a message: {}", self.body);
        assert!(self.body["instructions"].as_str().is_some_and(|m| !m.is_empty()), "instructions for the assistant: {}", self.body);
        self
    }
}

pub fn parse_mail(raw: &[u8]) -> Mail {
    let msg = mail_parser::MessageParser::default().parse(raw).expect("a parsable message");
    let to = msg.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or_default().to_owned();
    Mail {
        to,
        subject: msg.subject().unwrap_or_default().to_owned(),
        text: msg.text_bodies().next().and_then(|p| p.text_contents()).unwrap_or_default().to_owned(),
        html: msg.html_bodies().next().and_then(|p| p.text_contents()).unwrap_or_default().to_owned(),
    }
}

/// What identifies a delivered message: its `Message-ID` (our host's is `<outbox id@gpt-user>`, the same
/// for every attempt at one outbox row), else the SHA-256 of its text and HTML parts.
pub fn delivery_id(raw: &[u8]) -> String {
    use sha2::Digest as _;
    let msg = mail_parser::MessageParser::default().parse(raw).expect("a parsable message");
    if let Some(id) = msg.message_id().filter(|id| !id.is_empty()) {
        return id.to_owned();
    }
    let mut hash = sha2::Sha256::new();
    hash.update(msg.text_bodies().next().and_then(|p| p.text_contents()).unwrap_or_default());
    hash.update([0u8]);
    hash.update(msg.html_bodies().next().and_then(|p| p.text_contents()).unwrap_or_default());
    format!("sha256:{:x}", hash.finalize())
}

impl TestApp {
    /// Every message this test's SMTP listener has received so far, in arrival order.
    pub fn inbox_messages(&self) -> Vec<gpt_user_test_support::smtp::Received> {
        self.inbox.messages.lock().unwrap().clone()
    }

    /// No message was sent twice: every message this test's SMTP listener received has a delivery id
    /// of its own ([`delivery_id`]). Checked on drop in every mode, against a server elsewhere too
    /// (several hosts behind a balancer, `scripts/multihost.sh`). With `GPT_USER_TEST_MAIL_LOG` the
    /// ids are also appended to that file, one a line, so a run can check that a copy did not reach a
    /// later test's listener either.
    fn check_mail_delivered_once(&self) {
        let ids: Vec<String> = self.inbox.messages.lock().unwrap().iter().map(|m| delivery_id(&m.raw)).collect();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for id in &ids {
            *counts.entry(id.as_str()).or_default() += 1;
        }
        let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "a message was delivered more than once (id, copies): {twice:?}");
        if let Some(path) = std::env::var_os("GPT_USER_TEST_MAIL_LOG").filter(|p| !p.is_empty()) {
            use std::io::Write as _;
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("GPT_USER_TEST_MAIL_LOG can be appended to");
            let lines: String = ids.iter().map(|id| format!("{id}\n")).collect();
            file.write_all(lines.as_bytes()).expect("GPT_USER_TEST_MAIL_LOG is written");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.check_mail_delivered_once();
            let codes = self.codes.lock().unwrap();
            for answer in self.ec_answers.lock().unwrap().iter() {
                for code in codes.iter() {
                    assert!(!answer.contains(code.as_str()), "an email-change answer carries a code that was mailed: {answer}");
                }
            }
        }
        let Some(control) = &self.control else { return };
        control.stop.notify_waiters();
        let _ = std::fs::remove_dir_all(&control.dir);
        if let Some((admin, name)) = control.postgres.clone() {
            if control.suspended.load(std::sync::atomic::Ordering::SeqCst) {
                drop_postgres_database(admin.clone(), format!("{name}_away"));
            }
            drop_postgres_database(admin, name);
        }
        if std::thread::panicking() {
            return;
        }
        let log = String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned();
        for secret in self.secrets.lock().unwrap().iter() {
            assert!(!log.contains(secret.as_str()), "a secret used by this test appears in the log");
        }
        let logged: std::collections::HashSet<&str> = words(&log).filter(|w| w.len() == 6).collect();
        for code in self.codes.lock().unwrap().iter() {
            assert!(!logged.contains(code.as_str()), "an email-change code used by this test appears in the log");
        }
    }
}

/// The words of `text` as a regex's `\b` delimits them: maximal runs of letters, digits and `_`.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty())
}

/// Whether `s` has Cyrillic letters: a Russian text (the English ones have none).
pub fn is_russian(s: &str) -> bool {
    s.chars().any(|c| matches!(c, 'А'..='я' | 'Ё' | 'ё'))
}

/// A JSON answer with `address` replaced in its string fields, to compare answers about
/// different addresses.
pub fn without_address(mut body: Value, address: &str) -> Value {
    if let Some(fields) = body.as_object_mut() {
        for value in fields.values_mut() {
            if let Some(s) = value.as_str() {
                *value = Value::String(s.replace(address, "EMAIL"));
            }
        }
    }
    body
}

/// Seconds since the epoch of an RFC 3339 UTC time (`2026-11-26T04:02:37Z`, optionally with a
/// fraction of a second); `None` if `s` is not one.
pub fn rfc3339_utc_seconds(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if !s.is_ascii() || b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[b.len() - 1] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = s.get(from..to)?;
        if part.bytes().all(|c| c.is_ascii_digit()) { part.parse().ok() } else { None }
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let fraction = &s[19..s.len() - 1];
    let fraction_ok = fraction.is_empty() || (fraction.len() > 1 && fraction.starts_with('.') && fraction[1..].bytes().all(|c| c.is_ascii_digit()));
    if !fraction_ok || !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// A unique address for one test.
pub fn email(tag: &str) -> String {
    format!("{tag}-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A PIN valid in shape (12 digits, the first non-zero) that no account has: servers hand out
/// 6 by default. Unique per call, so tests sharing a server elsewhere never share its count of
/// failed checks.
pub fn unknown_pin() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 100_000_000_000;
    format!("9{n:011}")
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(Default::default)
}

/// Everything the host logs (debug and up) goes into a buffer the tests search for secrets.
pub fn init_logging() {
    struct Writer;
    impl std::io::Write for Writer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            log_buffer().lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter("debug,cranelift_codegen=info,wasmtime_cranelift=info,hyper=info,rustls=info")
        .with_writer(|| Writer)
        .with_ansi(false)
        .try_init();
}

/// The whole captured log so far.
pub fn captured_log() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

/// Generates one test per backend from `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::helpers::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::helpers::Backend::Postgres).await }
            )*
        }
    };
}

/// The nextest filter of the black-box runs against a server elsewhere (`.ci/run`,
/// `scripts/multihost.sh`, real Spin): the suite less the per-store variants that only the
/// in-process host can tell apart.
pub const EXTERNAL_FILTER: &str = "binary(api) - test(/^email_change::(postgres|redis)::/)";

/// Refuses to run a test that asserts nothing against a server elsewhere (see [`EXTERNAL_FILTER`]).
pub fn not_against_a_server_elsewhere() {
    assert!(!external_server(), "this variant needs the in-process host; against a server elsewhere run `-E '{EXTERNAL_FILTER}'`");
}

/// Generates one test per store from `async fn name(backend: Backend)`: SQLite, PostgreSQL, and
/// SQLite with Redis holding the ephemeral values. Against a server elsewhere the store is that
/// server's, so only the SQLite variant is run there: the runs against a server filter the others
/// out ([`EXTERNAL_FILTER`]), and run anyway they fail rather than pass without asserting.
#[macro_export]
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::helpers::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::helpers::not_against_a_server_elsewhere();
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::helpers::not_against_a_server_elsewhere();
                    super::$name($crate::helpers::Backend::Redis).await
                }
            )*
        }
    };
}

// ---- Email change (SPEC §2.3) ----

/// The code of an email-change mail (kinds `email-change-current`, `email-change-new`): the only
/// `\b\d{6}\b` in its text part (it may be repeated). Also asserts that the subject does not carry
/// it and the HTML part does. Does not remember it: `TestApp::next_code` does.
pub fn email_change_code(mail: &Mail) -> String {
    let found: Vec<&str> = words(&mail.text).filter(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit())).collect();
    assert!(!found.is_empty(), "no 6-digit code in the text part of the mail to {}: {}", mail.to, mail.text);
    assert!(found.iter().all(|w| *w == found[0]), "the code is the only 6 digits in a row in the text part: {found:?} in {}", mail.text);
    let code = found[0].to_owned();
    assert!(!mail.subject.contains(&code), "the subject never carries the code: {}", mail.subject);
    assert!(mail.html.contains(&code), "the HTML part carries the code too");
    code
}

/// Another 6-digit code than `code` (wrong for sure).
pub fn wrong_code(code: &str) -> String {
    let n: u32 = code.parse().expect("a 6-digit code");
    format!("{:06}", (n + 1) % 1_000_000)
}

/// An address as the email-change messages show it: `a***@example.com`.
pub fn masked(email: &str) -> String {
    let (local, domain) = email.split_once('@').unwrap_or((email, ""));
    let first: String = local.chars().take(1).collect();
    format!("{first}***@{domain}")
}

/// An email-change flow as the page holds it: the profile token and the flow id.
#[derive(Clone, Debug)]
pub struct EcFlow {
    pub token: String,
    pub flow: String,
}

impl EcFlow {
    /// `{token, flow}` plus the fields of `extra` (an object).
    pub fn body(&self, extra: Value) -> Value {
        let mut body = json!({"token": self.token, "flow": self.flow});
        if let Value::Object(fields) = extra {
            for (k, v) in fields {
                body[k] = v;
            }
        }
        body
    }

    /// The same flow with another profile token.
    pub fn with_token(&self, token: &str) -> Self {
        Self { token: token.to_owned(), flow: self.flow.clone() }
    }
}

/// An active account with a profile token, ready to change its address.
#[derive(Clone, Debug)]
pub struct EcUser {
    pub email: String,
    pub pin: String,
    pub token: String,
}

impl Answer {
    /// Asserts an error of the browser API: status, code and a non-empty message (instructions
    /// are optional there).
    pub fn expect(&self, status: u16, code: &str) -> &Self {
        assert_eq!((self.status, self.body["code"].as_str().unwrap_or_default()), (status, code), "{}", self.body);
        assert!(self.body["message"].as_str().is_some_and(|m| !m.is_empty()), "a message: {}", self.body);
        self
    }

    /// Asserts a 200 answer and returns its body.
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "{}", self.body);
        assert!(self.body["message"].as_str().is_some_and(|m| !m.is_empty()), "a message: {}", self.body);
        &self.body
    }
}

impl TestApp {
    /// One email-change step (`start`, `resend`, `confirm-current`, `check`, `request-new`,
    /// `confirm-new`) with this body, as the page sends it (no API key), read whole. Every answer
    /// is kept: on drop, none may carry a code this test read from mail.
    pub async fn email_change(&self, step: &str, body: &Value) -> Answer {
        self.email_change_with(step, body, &[]).await
    }

    /// `email_change` with these headers (`accept-language`, `origin`).
    pub async fn email_change_with(&self, step: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
        let mut req = self.client.post(self.url(&format!("/api/email-change/{step}"))).json(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let answer = Answer::read(req.send().await.expect("the server answers"), "").await;
        self.ec_answers.lock().unwrap().push(String::from_utf8_lossy(&answer.raw).into_owned());
        answer
    }

    /// A step of `flow` with `{token, flow}` and the fields of `extra`.
    pub async fn ec(&self, flow: &EcFlow, step: &str, extra: Value) -> Answer {
        self.email_change(step, &flow.body(extra)).await
    }

    /// Start with `token`; asserts the 200 answer of the contract and returns the flow.
    pub async fn ec_start(&self, token: &str) -> (EcFlow, Answer) {
        let a = self.email_change("start", &json!({"token": token})).await;
        let body = a.ok();
        let flow = body["flow"].as_str().unwrap_or_else(|| panic!("start answers the flow id: {body}")).to_owned();
        assert!(flow.len() >= 22, "an opaque id of at least 128 bits: {flow}");
        assert_eq!(body["state"], "confirm_current", "{body}");
        assert_eq!(body["resend_after_s"], 60, "{body}");
        assert_eq!(body["code_valid_s"], 600, "{body}");
        assert_eq!(body["sends_left"], 4, "{body}");
        (EcFlow { token: token.to_owned(), flow }, a)
    }

    /// Waits for the next mail to `to`, which must be an email-change code mail; returns the mail
    /// and its code, remembered (`remember_code`).
    pub async fn next_code_mail(&self, to: &str) -> (Mail, String) {
        let mail = self.next_mail(to).await;
        let code = email_change_code(&mail);
        self.remember_code(&code);
        (mail, code)
    }

    /// The code of the next mail to `to` (see `next_code_mail`).
    pub async fn next_code(&self, to: &str) -> String {
        self.next_code_mail(to).await.1
    }

    /// An active account (English) with a profile token.
    pub async fn ec_user(&self, tag: &str) -> EcUser {
        self.ec_user_in(tag, "en").await
    }

    pub async fn ec_user_in(&self, tag: &str, locale: &str) -> EcUser {
        let to = email(tag);
        let pin = self.active_user_in(&to, locale).await;
        let token = self.profile_link_token(&to).await;
        EcUser { email: to, pin, token }
    }

    /// Starts a flow for `user`; returns it and the code mailed to the current address.
    pub async fn ec_started(&self, user: &EcUser) -> (EcFlow, String) {
        let (flow, _) = self.ec_start(&user.token).await;
        let code = self.next_code(&user.email).await;
        (flow, code)
    }

    /// Starts a flow and confirms the current address: the flow waits for the new address.
    pub async fn ec_entering_new(&self, user: &EcUser) -> EcFlow {
        let (flow, code) = self.ec_started(user).await;
        let a = self.ec(&flow, "confirm-current", json!({"code": code})).await;
        assert_eq!(a.ok()["state"], "enter_new");
        flow
    }

    /// Request-new to `new` from a flow in `enter_new`; asserts the 200 answer and returns the
    /// code mailed to `new`.
    pub async fn ec_request_new(&self, flow: &EcFlow, new: &str) -> String {
        let a = self.ec(flow, "request-new", json!({"email": new})).await;
        let body = a.ok();
        assert_eq!(body["state"], "confirm_new", "{body}");
        assert_eq!(body["resend_after_s"], 60, "{body}");
        // Five codes per flow in all: at least start's code to the current address went before.
        assert!(body["sends_left"].as_u64().is_some_and(|n| n <= 3), "{body}");
        assert!(body["window_s"].as_u64().is_some_and(|w| w > 0), "{body}");
        assert!(body["code_valid_s"].as_u64().is_some_and(|s| s > 0 && s <= 600), "{body}");
        self.next_code(new).await
    }

    /// A flow through confirm-current and request-new to `new`: returns it and the code mailed to `new`.
    pub async fn ec_confirming_new(&self, user: &EcUser, new: &str) -> (EcFlow, String) {
        let flow = self.ec_entering_new(user).await;
        let code = self.ec_request_new(&flow, new).await;
        (flow, code)
    }
}
