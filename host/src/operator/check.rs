//! `gpt-user check`: what would stop a deployment from starting or working, one line per item,
//! before it is started.

use std::time::Duration;

use gpt_user_sql::operator::{self as sql, AccountFilter};

use super::output;
use super::redact::{mask_url, scrub, without_credentials};
use crate::Config;
use crate::adapters::ephemeral::RedisBackend;
use crate::adapters::mail::Transport;

/// The configuration, the database and (when configured) Redis and the SMTP server.
#[derive(clap::Args, Debug)]
pub struct Check {
    /// Data directory (SQLite file, gpt-user.toml) [default: ./.gpt-user].
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Check the configuration as `serve --dev` would run it (no API key needed).
    #[arg(long)]
    dev: bool,
}

/// How long the SMTP server may take to greet, log us in and answer.
const SMTP_WITHIN: Duration = Duration::from_secs(5);

/// Prints `ok: <item>` or `error: <item>: <why>` per item; true if all are ok.
pub async fn check(Check { data_dir, dev }: Check) -> anyhow::Result<bool> {
    let mut all_ok = true;
    let mut report = |item: &str, outcome: Result<String, String>| -> anyhow::Result<()> {
        let line = match outcome {
            Ok(detail) if detail.is_empty() => format!("ok: {item}\n"),
            Ok(detail) => format!("ok: {item} {detail}\n"),
            Err(why) => {
                all_ok = false;
                format!("error: {item}: {why}\n")
            }
        };
        output::print(&line)
    };
    let mut config = match Config::load(data_dir.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            // Nothing else can be checked without it.
            report("config", Err(format!("cannot read the configuration: {e}")))?;
            return Ok(false);
        }
    };
    config.dev |= dev;
    report("config", config.validate().map(|()| String::new()).map_err(|e| e.to_string()))?;
    report("database", database(&config).await)?;
    if let Some(url) = config.redis_url() {
        report("redis", redis(url).await.map(|()| mask_url(url)).map_err(|why| format!("{}: {}", mask_url(url), scrub(&why, url))))?;
    }
    if let Some(url) = config.smtp_url.as_ref().map(|url| url.expose()).filter(|url| !url.trim().is_empty()) {
        // Reaching the server is checked, not the login: a relay may take mail without one.
        let outcome = Transport::probe(&without_credentials(url), SMTP_WITHIN).await.map_err(|e| scrub(&e.to_string(), url));
        report("smtp", outcome.map(|()| mask_url(url)).map_err(|why| format!("{}: {why}", mask_url(url))))?;
    }
    Ok(all_ok)
}

/// Connects and answers `PING` within the ephemeral store's deadline (2 s).
async fn redis(url: &str) -> Result<(), String> {
    let backend = RedisBackend::new(url).map_err(|e| e.to_string())?;
    backend.ping().await.map_err(|e| e.to_string())
}

/// Connects, migrates (as `serve` would) and reads.
async fn database(config: &Config) -> Result<String, String> {
    let store = super::connect(config).await.map_err(|e| e.to_string())?;
    let filter = AccountFilter { limit: 1, ..AccountFilter::default() };
    store.with_conn(async |c| sql::list_accounts(c, &filter).await).await.map_err(|e| super::store_error(e).to_string())?;
    Ok(mask_url(&config.database_url()))
}
