//! `gpt-user serve [--dev] [--listen ADDR] [--data-dir DIR]`, and the operator's commands
//! `gpt-user users …`, `gpt-user outbox …`, `gpt-user events …`, `gpt-user check` (see
//! `gpt_user::operator`). A refused
//! configuration or a failed command exits 1 with one line `error: …` on stderr.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gpt_user::operator;

#[derive(Parser)]
#[command(name = "gpt-user", version, about = "User accounts created from a chat, finished in a browser")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the flow components over HTTP.
    Serve {
        /// Local development: GPT actions need no API key (loopback only) and `/dev/mail` lists
        /// the dev mailbox. Same as GPT_USER_DEV=true.
        #[arg(long)]
        dev: bool,
        /// Address to listen on [default: 127.0.0.1:3000].
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Data directory (SQLite file, dev mailbox, gpt-user.toml) [default: ./.gpt-user].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The benchmark's native baseline: the same core compiled natively, no wasm
        /// (`scripts/bench.sh` only).
        #[arg(long, hide = true)]
        native: bool,
    },
    /// Accounts: list, show, block, unblock, delete.
    Users(operator::Users),
    /// OAuth clients: add (a confidential client for a GPT, its secret shown once), list, remove.
    Clients(operator::Clients),
    /// Queued mail: list, retry, purge.
    Outbox(operator::Outbox),
    /// The audit trail of account events (list, or erase an account's).
    Events(operator::Events),
    /// Checks the configuration, the database and the SMTP server before a deployment starts.
    Check(operator::Check),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            // The message and its causes, not a backtrace: this is what an operator acts on.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { dev, listen, data_dir, native } => {
            let mut config = gpt_user::Config::load(data_dir.as_deref())?;
            if let Some(listen) = listen {
                config.listen = listen;
            }
            config.dev |= dev;
            // Only the server logs: an operator command's output is its answer, and a failure is
            // one line.
            init_logging(config.log_format);
            let app = if native { gpt_user::Application::build_native(config).await? } else { gpt_user::Application::build(config).await? };
            let stop = app.stopper();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    tracing::info!("shutting down");
                    stop.notify_waiters();
                }
            });
            app.run_until_stopped().await?;
        }
        Command::Users(users) => operator::users(users).await?,
        Command::Clients(clients) => operator::clients(clients).await?,
        Command::Outbox(outbox) => operator::outbox(outbox).await?,
        Command::Events(events) => operator::events(events).await?,
        // Its report says what is wrong, line by line; the exit code sums it up.
        Command::Check(check) => return Ok(if operator::check(check).await? { ExitCode::SUCCESS } else { ExitCode::FAILURE }),
    }
    Ok(ExitCode::SUCCESS)
}

/// Log lines on stderr, filtered by `RUST_LOG` (default `info`): text, or one JSON object per line
/// with the event's fields at the top and its request's id in `span.request_id`.
fn init_logging(format: gpt_user::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        gpt_user::LogFormat::Text => builder.init(),
        gpt_user::LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).init(),
    }
}
