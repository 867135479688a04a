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
mod metrics;
mod native;
mod outbound;
pub mod operator;
mod reply;
mod runtime;
mod server;

pub use app::{Application, HousekeepFuture};
pub use config::{Config, LogFormat, Secret};

/// Build outputs: the embedded `spin.toml` and components (see `build.rs`).
pub mod artifacts {
    include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

    /// A compiled-component cache (`Config::compiled_dir`) beside the build's wasm artifacts,
    /// `target/wasm/compiled`: the test processes of one checkout share it, so each component is
    /// compiled once per build instead of once per test process.
    pub fn shared_compiled_dir() -> std::path::PathBuf {
        std::path::Path::new(WASM_DIR).ancestors().nth(2).expect("WASM_DIR is target/wasm/<target>/release").join("compiled")
    }
}
