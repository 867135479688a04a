//! One Spin SQLite connection per call, the schema created on first use, and the mapping of
//! SQLite failures onto the store's error variant (never SQL text to the flow).

use std::sync::atomic::{AtomicBool, Ordering};

use crate::bindings::exports::gpt_user::accounts::types::Error;
use crate::bindings::fermyon::spin::sqlite::{Connection, Error as SqlError, QueryResult, Value};

/// The portable schema, shared with the host; run as is, statement by statement.
const SCHEMA: &str = include_str!("../../../schema/001_init.sql");

/// Set once the DDL ran in this instance (Spin reuses instances; the DDL is idempotent). Cleared
/// when SQLite reports a missing table, so a database replaced under a living instance costs one
/// failed call, not all later ones.
static SCHEMA_READY: AtomicBool = AtomicBool::new(false);

/// The schema's statements (the file ends each one with `;` at the end of a line), then the
/// adapter's own tables.
pub fn schema_statements() -> impl Iterator<Item = String> {
    let shared = SCHEMA.split(";\n").filter_map(|chunk| {
        let sql: Vec<&str> = chunk.lines().filter(|l| !l.trim_start().starts_with("--")).collect();
        let sql = sql.join("\n").trim().trim_end_matches(';').to_owned();
        (!sql.is_empty()).then_some(sql)
    });
    shared.chain(crate::housekeeping::SCHEMA.iter().map(|s| (*s).to_owned()))
}

pub struct Db {
    conn: Connection,
}

impl Db {
    /// Opens Spin's `default` database (`sqlite_databases = ["default"]`) with the schema in place.
    pub fn open() -> Result<Self, Error> {
        let db = Self { conn: Connection::open("default").map_err(error)? };
        if !SCHEMA_READY.load(Ordering::Acquire) {
            for sql in schema_statements() {
                db.exec(&sql, &[])?;
            }
            SCHEMA_READY.store(true, Ordering::Release);
        }
        Ok(db)
    }

    pub fn exec(&self, sql: &str, params: &[Value]) -> Result<QueryResult, Error> {
        self.conn.execute(sql, params).map_err(|e| {
            if matches!(&e, SqlError::Io(msg) if msg.contains("no such table")) {
                SCHEMA_READY.store(false, Ordering::Release);
            }
            error(e)
        })
    }

    /// Runs a conditional change written with `RETURNING`; true if it changed a row.
    /// (`fermyon:spin/sqlite@2.0.0` has no `changes()`; RETURNING answers in the same statement.)
    pub fn changed(&self, sql: &str, params: &[Value]) -> Result<bool, Error> {
        Ok(!self.exec(sql, params)?.rows.is_empty())
    }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`; any error rolls everything back.
    /// IMMEDIATE takes the write lock first, so two read-then-write transactions cannot deadlock.
    pub fn transaction<T>(&self, body: impl FnOnce(&Self) -> Result<T, Error>) -> Result<T, Error> {
        self.exec("BEGIN IMMEDIATE", &[])?;
        let outcome = body(self).and_then(|value| self.exec("COMMIT", &[]).map(|_| value));
        if outcome.is_err() {
            // Ignore the rollback's own error: the first error is the one the caller can act on,
            // and a failed COMMIT may already have ended the transaction.
            let _ = self.exec("ROLLBACK", &[]);
        }
        outcome
    }
}

pub fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

pub fn int(i: i64) -> Value {
    Value::Integer(i)
}

/// Column `i` of a row as text (NULL and numbers are rendered, never a panic).
pub fn get_text(values: &[Value], i: usize) -> String {
    match values.get(i) {
        Some(Value::Text(s)) => s.clone(),
        Some(Value::Integer(n)) => n.to_string(),
        Some(Value::Real(r)) => r.to_string(),
        _ => String::new(),
    }
}

/// Column `i` of a row as an integer (0 for NULL).
pub fn get_int(values: &[Value], i: usize) -> i64 {
    match values.get(i) {
        Some(Value::Integer(n)) => *n,
        Some(Value::Real(r)) => *r as i64,
        Some(Value::Text(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// SQLite failures as the store's error. Spin reports SQLite's own message in `io(..)`, so a
/// unique clash is recognised by it (`UNIQUE constraint failed: users.email`).
pub fn error(e: SqlError) -> Error {
    match e {
        SqlError::Io(msg) if msg.contains("UNIQUE constraint failed") => {
            let field = ["email", "pin", "hash", "id"].into_iter().find(|f| msg.contains(&format!(".{f}")));
            Error::Conflict(field.unwrap_or("unique").to_owned())
        }
        SqlError::Io(msg) if msg.contains("database is locked") || msg.contains("busy") => {
            Error::Unavailable("database busy".into())
        }
        SqlError::Io(msg) => {
            eprintln!("spin-adapter: sqlite error: {msg}");
            Error::Other("database error".into())
        }
        SqlError::DatabaseFull => Error::Unavailable("database full".into()),
        other => {
            // NoSuchDatabase / AccessDenied: a manifest mistake (sqlite_databases, inheritance).
            eprintln!("spin-adapter: sqlite unusable: {other:?}");
            Error::Other(format!("database not usable: {other:?}"))
        }
    }
}
