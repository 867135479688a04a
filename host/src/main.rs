//! `gpt-user serve [--listen ADDR] [--data-dir DIR]`.

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
        /// Address to listen on [default: 127.0.0.1:3000].
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Data directory (SQLite file, dev mailbox, gpt-user.toml) [default: ./.gpt-user].
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { listen, data_dir } => {
            let mut config = gpt_user::Config::load(data_dir.as_deref())?;
            if let Some(listen) = listen {
                config.listen = listen;
            }
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
