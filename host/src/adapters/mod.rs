//! The host side of our WIT interfaces. Each adapter implements the generated `Host` trait on
//! [`HostState`](crate::runtime::HostState) over a backend that lives in its own module:
//! `store` → sqlx (SQLite | PostgreSQL), `ephemeral` → Redis | the store's table,
//! `mail` → outbox + dispatcher (SMTP | dev mailbox), `l10n` → the Fluent bundles of
//! `gpt-user-l10n`, `metrics` → the application's Prometheus metrics, `config` → `wasi:config/store`.

pub mod config;
pub mod ephemeral;
pub mod l10n;
pub mod mail;
pub mod metrics;
pub mod store;
