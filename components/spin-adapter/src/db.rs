//! One Spin SQLite connection per instance, the schema migrated on first use, the shared SQL
//! layer's [`Conn`] over it, and the mapping of SQLite failures onto the store's errors (never
//! SQL text to the flow).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use gpt_user_core::ports::StoreError;
use gpt_user_sql::schema::{CREATE_SCHEMA_MIGRATIONS, MIGRATIONS, statements};
use gpt_user_sql::{Conn, Dialect, Param, Row};

use crate::bindings::fermyon::spin::sqlite::{Connection, Error as SqlError, QueryResult, Value};

/// Set once this instance found the schema complete (Spin reuses instances). Cleared when SQLite
/// reports a missing table, so a database replaced under a living instance costs one failed call,
/// not all later ones.
static SCHEMA_READY: AtomicBool = AtomicBool::new(false);

/// Set once this instance checked for dev mode (see [`crate::config::warn_if_dev`]).
static DEV_CHECKED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The instance's connection, opened by its first call and kept for the instance's life
    /// (Spin reuses a WASIp3 instance for up to 128 requests): each `open` is a new SQLite
    /// connection on Spin's side, which reads and parses the whole schema again on its first
    /// statement (issue 10: a request made two or three of them; issue 21: now one per instance).
    /// An instance therefore keeps the database file it opened even if the file is replaced
    /// meanwhile; the next instance opens the new one. Dropped when Spin calls it invalid.
    static CONNECTION: RefCell<Option<Rc<Connection>>> = const { RefCell::new(None) };
}

pub struct Db {
    conn: Rc<Connection>,
}

impl Db {
    /// Spin's `default` database (`sqlite_databases = ["default"]`) with the schema in place.
    pub fn open() -> Result<Self, StoreError> {
        // A flow uses the database in every request (`mail.flush` at least): the first use is
        // this instance's start.
        if !DEV_CHECKED.swap(true, Ordering::AcqRel) {
            crate::config::warn_if_dev();
        }
        let conn = match CONNECTION.with_borrow(Clone::clone) {
            Some(conn) => conn,
            None => {
                let conn = Rc::new(Connection::open("default").map_err(error)?);
                // Readers do not block the writer, and a commit appends to the log instead of
                // rewriting pages under a rollback journal (persistent in the file; our host sets
                // the same). Best effort: a database that refuses it still works.
                let _ = conn.execute("PRAGMA journal_mode=WAL", &[]);
                CONNECTION.set(Some(conn.clone()));
                conn
            }
        };
        let db = Self { conn };
        if !SCHEMA_READY.load(Ordering::Acquire) {
            db.migrate()?;
            SCHEMA_READY.store(true, Ordering::Release);
        }
        Ok(db)
    }

    /// Applies the shared migrations the database lacks, each version once and recorded in
    /// `schema_migrations` as our host does (a migration may `ALTER TABLE`, which must not run
    /// twice), all in one `BEGIN IMMEDIATE` transaction: of several fresh instances on a new
    /// database, the first applies them and the others, once they have the lock, find them
    /// applied. A plain read decides first, so a fresh instance on an up-to-date database — on
    /// Spin, nearly every request — takes no write lock. Then the adapter's own tables.
    fn migrate(&self) -> Result<(), StoreError> {
        let latest = MIGRATIONS.last().map_or(0, |(version, _)| *version);
        let (applied, own_tables) = self.applied();
        if applied >= latest && own_tables {
            return Ok(());
        }
        if applied < latest {
            self.transaction(|db| {
                db.exec(CREATE_SCHEMA_MIGRATIONS, &[])?;
                for (version, sql) in MIGRATIONS {
                    let done = db.exec("SELECT version FROM schema_migrations WHERE version = $1", &[Value::Integer(version)])?;
                    if !done.rows.is_empty() {
                        continue;
                    }
                    for statement in statements(sql) {
                        db.exec(&statement, &[])?;
                    }
                    db.exec("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", &[
                        Value::Integer(version),
                        Value::Integer(crate::outbox::now_ms()),
                    ])?;
                }
                Ok(())
            })?;
        }
        for sql in crate::housekeeping::SCHEMA {
            self.exec(sql, &[])?;
        }
        Ok(())
    }

    /// The highest migration applied, 0 if none (or no `schema_migrations` table: a new
    /// database, or one made before migrations were recorded here; version 1 and 2 are
    /// idempotent, so such a database is brought up to date like a new one), and whether the
    /// adapter's own table (`housekeeping::SCHEMA`) exists — one statement, as every fresh
    /// instance asks.
    fn applied(&self) -> (i64, bool) {
        let sql = "SELECT (SELECT MAX(version) FROM schema_migrations), \
                   (SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'spin_housekeeping')";
        match self.conn.execute(sql, &[]) {
            Ok(result) => match result.rows.first().map(|r| r.values.as_slice()) {
                Some([version, own]) => {
                    let version = if let Value::Integer(v) = version { *v } else { 0 };
                    (version, matches!(own, Value::Integer(n) if *n > 0))
                }
                _ => (0, false),
            },
            Err(_) => (0, false),
        }
    }

    pub fn exec(&self, sql: &str, params: &[Value]) -> Result<QueryResult, StoreError> {
        self.conn.execute(sql, params).map_err(|e| {
            match &e {
                SqlError::Io(msg) if msg.contains("no such table") => SCHEMA_READY.store(false, Ordering::Release),
                SqlError::InvalidConnection => CONNECTION.set(None),
                _ => {}
            }
            error(e)
        })
    }

    /// Runs a conditional change written with `RETURNING`; true if it changed a row.
    /// (`fermyon:spin/sqlite@2.0.0` has no `changes()`; RETURNING answers in the same statement.)
    pub fn changed(&self, sql: &str, params: &[Value]) -> Result<bool, StoreError> {
        Ok(!self.exec(sql, params)?.rows.is_empty())
    }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`; any error rolls everything back.
    /// IMMEDIATE takes the write lock first, so two read-then-write transactions cannot deadlock.
    pub fn transaction<T>(&self, body: impl FnOnce(&Self) -> Result<T, StoreError>) -> Result<T, StoreError> {
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

/// The shared SQL layer runs on `&Db`: every call is synchronous, driven by `gpt_user_sql::block_on`.
impl Conn for &Db {
    type Row = SpinRow;

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn execute(&mut self, sql: &str, params: Vec<Param>) -> Result<(), StoreError> {
        self.exec(sql, &values(params)).map(drop)
    }

    async fn query(&mut self, sql: &str, params: Vec<Param>) -> Result<Vec<SpinRow>, StoreError> {
        Ok(self.exec(sql, &values(params))?.rows.into_iter().map(|r| SpinRow(r.values)).collect())
    }

    fn new_id(&mut self) -> String {
        let bytes = wasip2::random::random::get_random_bytes(16);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn values(params: Vec<Param>) -> Vec<Value> {
    params
        .into_iter()
        .map(|p| match p {
            Param::Text(s) => Value::Text(s),
            Param::Int(i) => Value::Integer(i),
            Param::Null | Param::NullInt => Value::Null,
        })
        .collect()
}

pub struct SpinRow(Vec<Value>);

impl Row for SpinRow {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        match self.0.get(i) {
            Some(Value::Text(s)) => Ok(s.clone()),
            other => Err(column(i, other)),
        }
    }

    fn int(&self, i: usize) -> Result<i64, StoreError> {
        match self.0.get(i) {
            Some(Value::Integer(n)) => Ok(*n),
            other => Err(column(i, other)),
        }
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.0.get(i) {
            Some(Value::Null) => Ok(None),
            _ => self.text(i).map(Some),
        }
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.0.get(i) {
            Some(Value::Null) => Ok(None),
            _ => self.int(i).map(Some),
        }
    }
}

fn column(i: usize, found: Option<&Value>) -> StoreError {
    eprintln!("spin-adapter: column {i} has an unexpected value type ({:?})", found.map(std::mem::discriminant));
    StoreError::Other("unexpected column type".into())
}

/// SQLite failures as the store's error. Spin reports SQLite's own message in `io(..)`, so a
/// unique clash is recognised by it (`UNIQUE constraint failed: users.email`).
pub fn error(e: SqlError) -> StoreError {
    match e {
        SqlError::Io(msg) if msg.contains("UNIQUE constraint failed") => StoreError::Conflict(gpt_user_sql::conflict_field(&msg)),
        SqlError::Io(msg) if msg.contains("database is locked") || msg.contains("busy") => {
            StoreError::Unavailable("database busy".into())
        }
        SqlError::Io(msg) => {
            eprintln!("spin-adapter: sqlite error: {msg}");
            StoreError::Other("database error".into())
        }
        SqlError::DatabaseFull => StoreError::Unavailable("database full".into()),
        other => {
            // NoSuchDatabase / AccessDenied: a manifest mistake (sqlite_databases, inheritance).
            eprintln!("spin-adapter: sqlite unusable: {other:?}");
            StoreError::Other(format!("database not usable: {other:?}"))
        }
    }
}
