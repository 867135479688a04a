//! One typed configuration, layered: defaults < `gpt-user.toml` in the data dir < `GPT_USER_*`
//! environment variables < command-line flags. Secrets are wrapped so they cannot be printed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use gpt_user_core::domain::Argon2Params;
use serde::{Deserialize, Serialize};

/// A string that never shows up in `Debug` output or logs.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A configuration the host refuses to start with.
#[derive(Debug)]
pub struct ConfigError(String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Linear memory an instance needs besides Argon2's `m_kib` (the component's own heap, stack and
/// data; measured by `a_cost_that_fills_the_memory_limit_is_refused_at_start`).
const ARGON2_HEADROOM_MIB: usize = 8;

/// How the server writes its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address to serve on (`GPT_USER_LISTEN`).
    pub listen: SocketAddr,
    /// Where the SQLite file, the dev mailbox and `gpt-user.toml` live (`GPT_USER_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Public origin used in emailed links; default `http://<listen>`.
    pub base_url: Option<String>,
    /// `sqlite://…` or `postgres://…`; default a SQLite file in the data dir.
    pub database_url: Option<Secret>,
    /// `redis://[user:password@]host:port[/db]`: email-change codes and their attempt counters
    /// live there; default (unset or empty) the database's `ephemeral` table.
    pub redis_url: Option<Secret>,
    /// `smtp://host:port` (plain or `?tls=required` for STARTTLS) or `smtps://…`, with optional
    /// `user:pass@`; default: the dev mailbox `DATA_DIR/mail/`.
    pub smtp_url: Option<Secret>,
    /// From address of every email.
    pub mail_from: String,
    /// Service API keys for GPT actions, comma-separated.
    pub api_keys: Secret,
    /// Local development (`GPT_USER_DEV`, `gpt-user serve --dev`): GPT actions may run without a
    /// key (then only on a loopback address) and `/dev/mail` is served to loopback peers.
    pub dev: bool,
    /// Non-enumerating sign-up answers.
    pub conceal_accounts: bool,
    /// Digits of a new PIN, 4..=12.
    pub pin_length: usize,
    pub policy_version: String,
    /// Argon2id cost of new passphrase hashes (memory KiB, iterations, lanes); a successful
    /// Auth_Check rehashes a stored hash made with other values.
    pub argon2_m_kib: u32,
    pub argon2_t: u32,
    pub argon2_p: u32,
    /// Wall-clock budget of one request from its headers on: reading the body and running the
    /// component, host calls included.
    pub request_timeout_ms: u64,
    /// A client must send a request's headers (or the next request's, on a kept-alive
    /// connection) within this time, else the connection is closed.
    pub header_read_timeout_ms: u64,
    /// Open connections at most; beyond it new connections wait in the listen backlog.
    pub max_connections: usize,
    /// Requests inside components at once (the instance pool); beyond it `503 BUSY`.
    pub max_instances: usize,
    /// Linear-memory limit of one component instance.
    pub memory_limit_mib: usize,
    /// First retry delay of a failed delivery; doubles per attempt up to `mail_retry_max_ms`.
    pub mail_retry_base_ms: u64,
    pub mail_retry_max_ms: u64,
    /// How often the dispatcher looks for due mail even when not woken.
    pub mail_poll_ms: u64,
    /// How long a message claimed by a dispatcher is its own without renewal (renewed while it is
    /// being sent); after that, another host may take it over.
    pub mail_lease_ms: u64,
    /// How often housekeeping runs (pending accounts older than 7 days, expired secrets).
    pub housekeeping_interval_s: u64,
    /// How long after `request-new` the code sent to the new address may be entered, 60..=3600.
    pub email_change_window_s: u32,
    /// One client's share (see `crate::limits`). GPT actions and `/mcp`: requests per second per
    /// service key and per client address (0: no limit), each with a burst; beyond them `429`.
    pub rate_limit_per_key: u32,
    pub rate_limit_per_key_burst: u32,
    pub rate_limit_per_peer: u32,
    pub rate_limit_per_peer_burst: u32,
    /// Open connections per client address (0: only `max_connections`).
    pub max_connections_per_peer: usize,
    /// Share of `max_instances` (percent, 0..=90) that GPT actions and `/mcp` may not take: kept
    /// for browser and public routes.
    pub reserved_instances_percent: u32,
    /// New pending accounts per hour, counted in the shared database (0: no cap).
    pub max_pending_signups_per_hour: u32,
    /// Audit events are kept this many days (`GPT_USER_EVENTS_RETENTION_DAYS`, 1..=36500), then
    /// housekeeping deletes them.
    pub events_retention_days: u32,
    /// Where Prometheus metrics are served at `/metrics` (`GPT_USER_METRICS_LISTEN`, e.g.
    /// `127.0.0.1:9464`); unset: nowhere. Never on the public listener.
    pub metrics_listen: Option<SocketAddr>,
    /// The server's log lines (`GPT_USER_LOG_FORMAT`): `text` for people (default) or `json`,
    /// one object per line for a log pipeline. Every line of a request carries its id, the
    /// `X-Request-Id` of the answer.
    pub log_format: LogFormat,
    /// Where compiled components are kept between starts (`GPT_USER_COMPILED_DIR`); default
    /// `DATA_DIR/compiled`. Native code the host runs: writable by the service's user only.
    pub compiled_dir: Option<PathBuf>,
    /// PEM certificates trusted for outbound HTTPS (a client ID metadata document, SPEC §2.5)
    /// besides the Mozilla roots (`GPT_USER_OUTBOUND_CA_FILE`): a private CA's clients.
    pub outbound_ca_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            data_dir: PathBuf::from(".gpt-user"),
            base_url: None,
            database_url: None,
            redis_url: None,
            smtp_url: None,
            mail_from: "gpt-user <no-reply@localhost>".into(),
            api_keys: Secret::default(),
            dev: false,
            conceal_accounts: false,
            pin_length: 6,
            policy_version: "1".into(),
            argon2_m_kib: Argon2Params::default().m_kib,
            argon2_t: Argon2Params::default().t,
            argon2_p: Argon2Params::default().p,
            request_timeout_ms: 10_000,
            header_read_timeout_ms: 10_000,
            max_connections: 1024,
            max_instances: 256,
            memory_limit_mib: 64,
            mail_retry_base_ms: 2_000,
            mail_retry_max_ms: 600_000,
            mail_poll_ms: 1_000,
            mail_lease_ms: 120_000,
            housekeeping_interval_s: 3_600,
            email_change_window_s: 600,
            rate_limit_per_key: 20,
            rate_limit_per_key_burst: 40,
            rate_limit_per_peer: 20,
            rate_limit_per_peer_burst: 40,
            max_connections_per_peer: 64,
            reserved_instances_percent: 25,
            max_pending_signups_per_hour: 1000,
            events_retention_days: gpt_user_sql::housekeeping::EVENTS_RETENTION_DAYS,
            metrics_listen: None,
            log_format: LogFormat::Text,
            compiled_dir: None,
            outbound_ca_file: None,
        }
    }
}

impl Config {
    /// Defaults, then `DATA_DIR/gpt-user.toml`, then `GPT_USER_*`. The data dir itself may come
    /// from the environment or the caller (`data_dir` wins over both).
    pub fn load(data_dir: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let env = || Env::prefixed("GPT_USER_").ignore(&["TEST_BASE_URL", "TEST_SMTP_LISTEN"]);
        let dir = match data_dir {
            Some(d) => d.to_path_buf(),
            None => Figment::from(Serialized::defaults(Config::default())).merge(env()).extract::<Config>()?.data_dir,
        };
        let mut config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(dir.join("gpt-user.toml")))
            .merge(env())
            .extract()?;
        config.data_dir = dir;
        Ok(config)
    }

    /// The variables the components read (`wasi:config/store`), as Spin variables of the same
    /// names would give them; `base_url` is the public origin links point to.
    pub fn variables(&self, base_url: String) -> Vec<(String, String)> {
        [
            ("base_url", base_url),
            ("api_keys", self.api_keys().join(",")),
            ("dev", self.dev.to_string()),
            ("pin_length", self.pin_length.to_string()),
            ("conceal_accounts", self.conceal_accounts.to_string()),
            ("policy_version", self.policy_version.clone()),
            ("argon2_m_kib", self.argon2_m_kib.to_string()),
            ("argon2_t", self.argon2_t.to_string()),
            ("argon2_p", self.argon2_p.to_string()),
            ("mail_from", self.mail_from.clone()),
            ("email_change_window_s", self.email_change_window_s.to_string()),
            ("max_pending_signups_per_hour", self.max_pending_signups_per_hour.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Refuses configurations the host must not run with; the message says what to set.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // The components' own rules (one definition for both runtimes; Spin answers 503 CONFIG_INVALID
        // where the host refuses to start).
        let variables = self.variables(self.base_url());
        gpt_user_core::Settings::from_lookup(|key| variables.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
            .map_err(|invalid| ConfigError(format!("{invalid} (GPT_USER_{})", invalid.variable.to_uppercase())))?;
        // Argon2's memory lives in the instance's linear memory, beside the component's own.
        let argon2_limit_kib = (self.memory_limit_mib.saturating_sub(ARGON2_HEADROOM_MIB) << 10) as u64;
        if u64::from(self.argon2_m_kib) > argon2_limit_kib {
            return Err(ConfigError(format!(
                "argon2_m_kib = {} does not fit an instance's memory: with memory_limit_mib = {} it may be at most {argon2_limit_kib} \
                 (GPT_USER_ARGON2_M_KIB, or raise GPT_USER_MEMORY_LIMIT_MIB to at least {})",
                self.argon2_m_kib,
                self.memory_limit_mib,
                (u64::from(self.argon2_m_kib) >> 10) + ARGON2_HEADROOM_MIB as u64 + 1
            )));
        }
        if let Some(url) = self.redis_url() {
            // The URL itself is never quoted: it may hold a password.
            redis::Client::open(url).map_err(|e| {
                ConfigError(format!(
                    "GPT_USER_REDIS_URL is not a usable Redis URL ({e}): use redis://[user:password@]host:port[/db], \
                     or leave it unset to keep email-change codes in the database"
                ))
            })?;
        }
        for (name, value) in [
            ("request_timeout_ms", self.request_timeout_ms),
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("max_connections", self.max_connections as u64),
            ("max_instances", self.max_instances as u64),
        ] {
            if value == 0 {
                return Err(ConfigError(format!("{name} must be greater than 0 (GPT_USER_{})", name.to_uppercase())));
            }
        }
        self.validate_limits()?;
        if self.api_keys().is_empty() {
            if !self.dev {
                return Err(ConfigError(
                    "no GPT API key configured: set GPT_USER_API_KEYS (comma-separated service keys), \
                     or run `gpt-user serve --dev` (GPT_USER_DEV=true) for local development"
                        .into(),
                ));
            }
            if !self.listen.ip().is_loopback() {
                return Err(ConfigError(format!(
                    "refusing to serve on {} in dev mode without a GPT API key: listen on a loopback address \
                     (--listen 127.0.0.1:3000), or set GPT_USER_API_KEYS",
                    self.listen
                )));
            }
        }
        Ok(())
    }

    /// The limits on one client's share: a reserve the GPT routes may take all of, or a rate
    /// with no burst, is a mistake.
    fn validate_limits(&self) -> Result<(), ConfigError> {
        if !(1..=36_500).contains(&self.events_retention_days) {
            return Err(ConfigError(format!(
                "events_retention_days must be between 1 and 36500, not {} (GPT_USER_EVENTS_RETENTION_DAYS)",
                self.events_retention_days
            )));
        }
        if self.reserved_instances_percent > 90 {
            return Err(ConfigError(format!(
                "reserved_instances_percent must be between 0 and 90, not {} (GPT_USER_RESERVED_INSTANCES_PERCENT)",
                self.reserved_instances_percent
            )));
        }
        for (name, rate, burst) in [
            ("rate_limit_per_key", self.rate_limit_per_key, self.rate_limit_per_key_burst),
            ("rate_limit_per_peer", self.rate_limit_per_peer, self.rate_limit_per_peer_burst),
        ] {
            if rate > 0 && burst == 0 {
                return Err(ConfigError(format!(
                    "{name}_burst must be at least 1 when {name} is set (GPT_USER_{}_BURST)",
                    name.to_uppercase()
                )));
            }
        }
        Ok(())
    }

    pub fn base_url(&self) -> String {
        self.base_url.clone().unwrap_or_else(|| format!("http://{}", self.listen)).trim_end_matches('/').to_owned()
    }

    /// The configured URL, or the SQLite file in the data dir (also when the URL is set empty).
    pub fn database_url(&self) -> String {
        match self.database_url.as_ref().filter(|url| !url.expose().trim().is_empty()) {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("gpt-user.db").display()),
        }
    }

    /// The Redis URL, unless unset or empty.
    pub fn redis_url(&self) -> Option<&str> {
        self.redis_url.as_ref().map(Secret::expose).filter(|url| !url.trim().is_empty())
    }

    pub fn api_keys(&self) -> Vec<String> {
        self.api_keys.expose().split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned).collect()
    }

    pub fn mailbox_dir(&self) -> PathBuf {
        self.data_dir.join("mail")
    }

    /// Where compiled components are kept between starts.
    pub fn compiled_dir(&self) -> PathBuf {
        self.compiled_dir.clone().unwrap_or_else(|| self.data_dir.join("compiled"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let c = Config { api_keys: Secret::new("k-123"), redis_url: Some(Secret::new("redis://:pw-456@h:6379")), ..Config::default() };
        let printed = format!("{c:?}");
        assert!(!printed.contains("k-123") && !printed.contains("pw-456"), "{printed}");
    }

    #[test]
    fn email_change_windows_outside_60_to_3600_seconds_are_refused() {
        for (window, ok) in [(59, false), (60, true), (600, true), (3600, true), (3601, false), (0, false)] {
            let c = Config { dev: true, email_change_window_s: window, ..Config::default() };
            assert_eq!(c.validate().is_ok(), ok, "email_change_window_s {window}");
        }
        let err = Config { dev: true, email_change_window_s: 30, ..Config::default() }.validate().unwrap_err().to_string();
        assert!(err.contains("GPT_USER_EMAIL_CHANGE_WINDOW_S") && err.contains("between 60 and 3600"), "{err}");
    }

    #[test]
    fn a_redis_url_that_does_not_parse_is_refused_without_being_quoted() {
        let with = |url: &str| Config { dev: true, redis_url: Some(Secret::new(url)), ..Config::default() };
        assert!(with("redis://127.0.0.1:6379/0").validate().is_ok());
        assert!(with("redis://:secret@127.0.0.1:6379").validate().is_ok());
        assert!(with("  ").validate().is_ok(), "empty: the database holds the codes");
        assert_eq!(with("").redis_url(), None);
        for bad in ["http://pw-789@127.0.0.1:6379", "127.0.0.1:6379", "rediss://pw-789@127.0.0.1:6379"] {
            let err = with(bad).validate().unwrap_err().to_string();
            assert!(err.contains("GPT_USER_REDIS_URL") && !err.contains("pw-789"), "{bad}: {err}");
        }
    }

    #[test]
    fn without_a_key_only_dev_mode_on_loopback_starts() {
        let err = Config::default().validate().unwrap_err().to_string();
        assert!(err.contains("GPT_USER_API_KEYS") && err.contains("--dev"), "{err}");
        assert!(Config { dev: true, ..Config::default() }.validate().is_ok());
        let public = Config { dev: true, listen: "0.0.0.0:3000".parse().unwrap(), ..Config::default() };
        assert!(public.validate().unwrap_err().to_string().contains("loopback"));
        let keyed = Config { api_keys: Secret::new("k"), listen: "0.0.0.0:3000".parse().unwrap(), ..Config::default() };
        assert!(keyed.validate().is_ok());
    }

    #[test]
    fn argon2_costs_outside_their_ranges_are_refused() {
        assert!(Config { dev: true, argon2_t: 3, ..Config::default() }.validate().is_ok());
        let err = Config { dev: true, argon2_m_kib: 64, ..Config::default() }.validate().unwrap_err().to_string();
        assert!(err.contains("argon2_m_kib") && err.contains("GPT_USER_ARGON2_M_KIB"), "{err}");
        assert!(Config { dev: true, argon2_p: 0, ..Config::default() }.validate().is_err());
    }

    #[test]
    fn an_argon2_cost_that_does_not_fit_an_instances_memory_is_refused() {
        let fits = Config { dev: true, memory_limit_mib: 64, argon2_m_kib: 56 << 10, ..Config::default() };
        assert!(fits.validate().is_ok());
        let err = Config { argon2_m_kib: (56 << 10) + 1, ..fits.clone() }.validate().unwrap_err().to_string();
        assert!(err.contains("GPT_USER_ARGON2_M_KIB") && err.contains("GPT_USER_MEMORY_LIMIT_MIB") && err.contains("57344"), "{err}");
        assert!(Config { memory_limit_mib: 128, argon2_m_kib: 120 << 10, ..fits }.validate().is_ok());
    }

    #[test]
    fn the_components_rules_are_the_hosts_one_definition_each() {
        // A value the components would refuse on Spin is refused at start, naming the variable.
        let err = Config { dev: true, base_url: Some("accounts.example.com".into()), ..Config::default() }.validate().unwrap_err().to_string();
        assert!(err.contains("base_url") && err.contains("GPT_USER_BASE_URL"), "{err}");
    }

    #[test]
    fn pin_lengths_outside_4_to_12_are_refused() {
        for (len, ok) in [(3, false), (4, true), (12, true), (13, false), (0, false)] {
            let c = Config { dev: true, pin_length: len, ..Config::default() };
            assert_eq!(c.validate().is_ok(), ok, "pin_length {len}");
        }
        let err = Config { dev: true, pin_length: 3, ..Config::default() }.validate().unwrap_err().to_string();
        assert!(err.contains("pin_length") && err.contains("between 4 and 12"), "{err}");
    }

    #[test]
    fn limits_that_cannot_work_are_refused() {
        assert!(Config { dev: true, reserved_instances_percent: 90, rate_limit_per_key: 0, rate_limit_per_key_burst: 0, ..Config::default() }.validate().is_ok());
        let err = Config { dev: true, reserved_instances_percent: 95, ..Config::default() }.validate().unwrap_err().to_string();
        assert!(err.contains("GPT_USER_RESERVED_INSTANCES_PERCENT"), "{err}");
        let err = Config { dev: true, rate_limit_per_peer_burst: 0, ..Config::default() }.validate().unwrap_err().to_string();
        assert!(err.contains("GPT_USER_RATE_LIMIT_PER_PEER_BURST"), "{err}");
    }

    #[test]
    // figment's `Jail` wants its own (large) error type from the closure.
    #[allow(clippy::result_large_err)]
    fn file_and_environment_layer_over_defaults() {
        let dir = std::env::temp_dir().join(format!("gpt-user-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("gpt-user.toml"), "pin_length = 8\nmail_from = \"a@b.co\"\n").unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("GPT_USER_PIN_LENGTH", "9");
            jail.set_env("GPT_USER_DEV", "true");
            let c = Config::load(Some(&dir)).unwrap();
            assert_eq!(c.pin_length, 9);
            assert!(c.dev);
            assert_eq!(c.mail_from, "a@b.co");
            assert_eq!(c.data_dir, dir);
            Ok(())
        });
    }
}
