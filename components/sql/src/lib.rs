//! The SQL layer both runtimes run — our host through sqlx (SQLite, PostgreSQL), the Spin adapter
//! through Spin's SQLite — so every statement, column list, row codec and rule is written once:
//!
//! - [`store`]: the reads and every operation of `gpt-user:accounts/store`'s `apply`;
//! - [`audit`]: the audit trail (`events`): appended, listed, expired, erased;
//! - [`outbox`]: queueing, claiming under a lease, marking, and the retry backoff;
//! - [`email_change`]: the email-change flow records;
//! - [`ephemeral`]: short-lived values (email-change codes, counters) when no Redis holds them;
//! - [`oauth`]: OAuth clients, grants, codes and tokens;
//! - [`housekeeping`]: the retention deletes;
//! - [`schema`]: the migrations and how a migration file is split into statements;
//! - [`operator`]: what the operator's CLI reads and changes (accounts, the outbox).
//!
//! A runtime supplies a connection ([`Conn`]: run a statement, run a query) and the transaction
//! around [`store::apply_one`]. Placeholders are `$1..$n` in order of appearance, which sqlx and
//! SQLite's positional binding both accept. A statement whose effect must be known (a conditional
//! change) says `RETURNING`, and is run as a query: Spin's SQLite has no count of changed rows.
//!
//! The functions are `async` for sqlx; a synchronous runtime (Spin) implements [`Conn`] with plain
//! calls and drives them with [`block_on`], which never waits.

pub mod audit;
pub mod email_change;
pub mod ephemeral;
pub mod housekeeping;
pub mod oauth;
pub mod operator;
pub mod outbox;
pub mod schema;
pub mod store;

use std::future::Future;

use gpt_user_core::ports::StoreError;

/// Which SQL a statement may use beyond the portable subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Text(String),
    Int(i64),
    /// A text `NULL`.
    Null,
    /// An integer `NULL` (PostgreSQL types a bound `NULL`: a text one does not fit a BIGINT column).
    NullInt,
}

impl From<String> for Param {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<&str> for Param {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl From<i64> for Param {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<Option<i64>> for Param {
    fn from(i: Option<i64>) -> Self {
        i.map_or(Self::NullInt, Self::Int)
    }
}

impl From<Option<String>> for Param {
    fn from(s: Option<String>) -> Self {
        s.map_or(Self::Null, Self::Text)
    }
}

/// One result row, read by column position (the statements here name their columns in order).
pub trait Row {
    fn text(&self, i: usize) -> Result<String, StoreError>;
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    /// A nullable column: `None` for SQL `NULL`.
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
}

/// A database connection (inside a transaction for [`store::apply_one`]). Implementations map
/// their own failures onto [`StoreError`] — a unique violation through [`conflict_field`].
#[allow(async_fn_in_trait)]
pub trait Conn {
    type Row: Row;
    fn dialect(&self) -> Dialect;
    /// Runs a statement whose rows, if any, are not needed.
    async fn execute(&mut self, sql: &str, params: Vec<Param>) -> Result<(), StoreError>;
    async fn query(&mut self, sql: &str, params: Vec<Param>) -> Result<Vec<Self::Row>, StoreError>;
    /// A fresh random id (32 hex digits) for a new row.
    fn new_id(&mut self) -> String;
}

/// The field a unique-constraint failure is about, from the backend's message and constraint
/// name: PostgreSQL names the constraint (`users_email_key`), SQLite the column
/// (`UNIQUE constraint failed: users.email`). `unique` if none is recognised.
pub fn conflict_field(what: &str) -> String {
    ["email", "pin", "hash", "id"]
        .into_iter()
        .find(|f| what.contains(&format!("_{f}_key")) || what.contains(&format!(".{f}")))
        .unwrap_or("unique")
        .to_owned()
}

/// Drives a future of a synchronous [`Conn`] to its end. Such a future never waits: it is ready
/// on its first poll; were it not, it is polled again.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_name_their_field_on_both_backends() {
        assert_eq!(conflict_field("users_email_key duplicate key value violates unique constraint"), "email");
        assert_eq!(conflict_field("UNIQUE constraint failed: users.pin"), "pin");
        assert_eq!(conflict_field("something else"), "unique");
    }
}
