//! The Spin adapter: a component that **exports** `gpt-user:accounts/{store, ephemeral, mail, l10n}` and
//! implements them with what Spin offers, so a flow component runs on Spin unchanged (Spin plugs
//! this component into it as a component dependency; see `spin.toml` and the README's "Run on Spin").
//!
//! - `store`: Spin SQLite (`fermyon:spin/sqlite@2.0.0`, all sync), tables created on first
//!   use from `schema/001_init.sql`; `apply` is one `BEGIN IMMEDIATE … COMMIT` transaction.
//! - `ephemeral`: the `ephemeral` table in the same database, each value with its expiry (Spin's
//!   SQLite has no TTL; reads compare the expiry with the caller's clock).
//! - `mail`: the outbox table in the same database; due messages are delivered by SMTP (lettre's
//!   builder, our own conversation) over `wasi:sockets@0.3.0` TCP in `flush`, the one async
//!   export, which the flow calls after its answer is finished (never inside `store.apply` or
//!   `enqueue`), retried with backoff by later flushes.
//! - `l10n`: the Fluent bundles of `gpt-user-l10n`, embedded.
//! - `metrics`: dropped (see its module).
//! - housekeeping (stale pending accounts, expired secrets, email changes and ephemeral values,
//!   old sent mail) also runs in `flush`,
//!   at most once per 5 minutes across instances: Spin has no timers.
//!
//! Spin reuses one instance for many requests, several at a time, so the globals are the messages
//! parsed so far, a "schema is created" flag and the SQLite connection, all valid for any
//! request of the instance, and a "flush is running" flag.

mod config;
mod db;
mod ephemeral;
mod housekeeping;
mod l10n;
mod mail;
mod metrics;
mod outbox;
mod smtp;
mod store;

/// Generated bindings of `wit/spin-adapter.wit`; the canonical-ABI glue needs `unsafe`.
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        world: "spin-adapter",
        path: "../../wit",
        generate_all,
    });

    use super::Adapter;
    export!(Adapter);
}

// The WIT types and the core's, converted field by field in one place for every runtime.
mod convert {
    use super::bindings::exports::gpt_user::accounts::{store, types};
    gpt_user_core::wit_conversions!();
}

/// The exported implementation; each interface lives in its own module.
struct Adapter;
