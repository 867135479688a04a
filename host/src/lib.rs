//! The gpt-user host: serves the flow components of `spin.toml` on wasmtime, with real adapters
//! for our WIT interfaces (sqlx store, outbox mail with SMTP or a dev mailbox, Fluent l10n), and
//! the operator's commands on the same store ([`operator`]).
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let config = gpt_user::Config::load(None)?;
//! let app = gpt_user::Application::build(config).await?;
//! println!("listening on {}", app.local_addr());
//! app.run_until_stopped().await
//! # }
//! ```

mod adapters;
mod app;
mod bindings;
mod body;
pub mod clock;
pub mod config;
mod devmail;
mod limits;
pub mod manifest;
mod native;
pub mod operator;
mod reply;
mod runtime;
mod server;

pub use app::{Application, HousekeepFuture};
pub use config::{Config, Secret};

/// Build outputs: the embedded `spin.toml` and components (see `build.rs`).
pub mod artifacts {
    include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
}
