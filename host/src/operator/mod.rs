//! The operator's CLI (SPEC §1: the operator works through the host's CLI and config file):
//! `gpt-user users …`, `gpt-user clients …`, `gpt-user outbox …` and `gpt-user check`, on the
//! store the server uses (the same configuration, the same migrations, the statements of
//! `gpt_user_sql::operator` and `gpt_user_sql::oauth`), so it acts on a running deployment at once.
//!
//! Output goes to stdout (an aligned table, or with `--json` one object per line); a failure is
//! one line `error: …` (printed by `main`) and exit code 1. Nothing here prints a token, a code,
//! a passphrase hash, a message body or a credential of a URL; an OAuth client's secret is
//! printed once, by the `clients add` that makes it, and never again.

mod check;
mod clients;
mod events;
mod output;
mod outbox;
mod redact;
mod users;

use std::path::PathBuf;
use std::time::Duration;

use gpt_user_core::ports::StoreError;

pub use check::{Check, check};
pub use clients::{Clients, clients};
pub use events::{Events, events};
pub use outbox::{Outbox, outbox};
pub use users::{Users, users};

use crate::Config;
use crate::adapters::store::{SqlStore, sqlite_path};

/// What every operator command takes.
#[derive(clap::Args, Debug)]
pub struct Common {
    /// Data directory (SQLite file, gpt-user.toml) [default: ./.gpt-user].
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// One JSON object per line instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Asks `question` on stderr, reads one line from stdin: only `y` or `yes` (any case) is a yes.
fn confirm(question: &str) -> anyhow::Result<bool> {
    use std::io::BufRead as _;
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !answer.ends_with('\n') {
        eprintln!(); // end of input: the prompt's line ends here, not in the error after it
    }
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

/// How long connecting to the database may take before the command gives up.
const CONNECT_WITHIN: Duration = Duration::from_secs(15);

/// The configuration of the data dir and the store it names, migrated like the server's.
async fn open(common: &Common) -> anyhow::Result<SqlStore> {
    connect(&load(common)?).await
}

/// The configuration of the data dir (for a command that needs more of it than the store).
fn load(common: &Common) -> anyhow::Result<Config> {
    Config::load(common.data_dir.as_deref()).map_err(|e| anyhow::anyhow!("cannot read the configuration: {e}"))
}

/// Connects to the configured store for every operator command, `check` included. A SQLite file
/// that does not exist is refused, not created: a mistyped `--data-dir` would otherwise show an
/// empty deployment (`gpt-user serve` creates the file).
async fn connect(config: &Config) -> anyhow::Result<SqlStore> {
    let url = config.database_url();
    if let Some(path) = sqlite_path(&url).filter(|path| !path.exists()) {
        anyhow::bail!("no database at {} (check --data-dir or GPT_USER_DATABASE_URL; `gpt-user serve` creates it)", path.display());
    }
    let failed = |why: String| anyhow::anyhow!("cannot open the database {}: {}", redact::mask_url(&url), redact::scrub(&why, &url));
    match tokio::time::timeout(CONNECT_WITHIN, SqlStore::connect(&url)).await {
        Err(_) => Err(failed(format!("no answer within {} s", CONNECT_WITHIN.as_secs()))),
        Ok(Err(e)) => Err(failed(format!("{e:#}").trim_start_matches("cannot open the database: ").to_owned())),
        Ok(Ok(store)) => Ok(store),
    }
}

/// A store failure as the operator reads it (the adapter logs no detail here: the CLI does not log).
fn store_error(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Unavailable(_) => anyhow::anyhow!("the database is unavailable (busy or unreachable); try again"),
        other => anyhow::anyhow!("database error: {other}"),
    }
}
