//! `gpt-user serve [--dev] [--listen ADDR] [--data-dir DIR]`. A refused configuration exits
//! non-zero with a message on stderr that says what to set.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The message and its causes, not a backtrace: this is what an operator acts on.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { dev, listen, data_dir } => {
            let mut config = gpt_user::Config::load(data_dir.as_deref())?;
            if let Some(listen) = listen {
                config.listen = listen;
            }
            config.dev |= dev;
            let app = gpt_user::Application::build(config).await?;
            let stop = app.stopper();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    tracing::info!("shutting down");
                    stop.notify_waiters();
                }
            });
            app.run_until_stopped().await
        }
    }
}
