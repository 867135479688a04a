//! The store on sqlx: SQLite (a file, the default) or PostgreSQL, one code path through
//! `sqlx::Any`. The statements are the shared SQL layer's (`gpt-user-sql`, which the Spin adapter
//! runs too); this file connects, runs transactions and maps sqlx's errors.

use std::sync::Arc;

use gpt_user_core::ports::{EmailChange, Op, Secret, SecretPurpose, StoreError, User};
use gpt_user_sql::store::{self, UserKey};
use gpt_user_sql::{Conn, Dialect, Param};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Connection as _, Row as _};
use tokio::sync::Notify;

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct SqlStore {
    pub(super) pool: AnyPool,
    pub(super) dialect: Dialect,
    /// Woken when a transaction queued mail, so the dispatcher need not wait for its next poll.
    pub mail_queued: Arc<Notify>,
}

impl SqlStore {
    /// Connects, creating the SQLite file (and its directory) if needed, and migrates.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else {
            anyhow::bail!("unsupported database URL scheme (use sqlite:// or postgres://)");
        };
        if let Some(path) = sqlite_path(url)
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)?;
        }
        // On a connection of its own: on PostgreSQL it holds the migration lock for its session,
        // and closing it is what releases the lock even if the migration fails halfway. First,
        // so that a database that cannot be reached says why (the pool would only time out).
        let mut conn = AnyConnection::connect(url).await.map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
        super::schema::migrate(&mut conn, dialect).await?;
        conn.close().await?;
        let pool = AnyPoolOptions::new()
            .max_connections(if dialect == Dialect::Sqlite { 4 } else { 10 })
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
        if dialect == Dialect::Sqlite {
            // Readers do not block the writer; persistent in the file.
            sqlx::query("PRAGMA journal_mode=WAL").execute(&pool).await?;
        }
        Ok(Self { pool, dialect, mail_queued: Arc::new(Notify::new()) })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Runs `body` on a pooled connection outside a transaction.
    pub(crate) async fn with_conn<T>(
        &self,
        body: impl AsyncFnOnce(&mut SqlxConn<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(error)?;
        body(&mut SqlxConn { conn: &mut conn, dialect: self.dialect }).await
    }

    /// Runs `body` in one transaction: committed if it returns `Ok`, else rolled back.
    pub(crate) async fn transaction<T>(
        &self,
        body: impl AsyncFnOnce(&mut SqlxConn<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // SQLite: take the write lock up front, so a read-then-write transaction cannot deadlock.
        let begin = match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => self.pool.begin().await,
        };
        let mut tx = begin.map_err(error)?;
        let value = body(&mut SqlxConn { conn: &mut tx, dialect: self.dialect }).await?;
        tx.commit().await.map_err(error)?;
        Ok(value)
    }

    pub async fn find_user(&self, key: UserKey, value: &str) -> Result<Option<User>, StoreError> {
        self.with_conn(async |c| store::find_user(c, key, value).await).await
    }

    pub async fn find_secret(&self, hash: &str, purpose: SecretPurpose, now: i64) -> Result<Option<Secret>, StoreError> {
        self.with_conn(async |c| store::find_secret(c, hash, purpose, now).await).await
    }

    pub async fn find_email_change(&self, id: &str) -> Result<Option<EmailChange>, StoreError> {
        self.with_conn(async |c| store::find_email_change(c, id).await).await
    }

    pub async fn find_oauth_client(&self, id: &str) -> Result<Option<gpt_user_core::ports::OauthClient>, StoreError> {
        self.with_conn(async |c| gpt_user_sql::oauth::find_client(c, id).await).await
    }

    pub async fn find_oauth_token(
        &self,
        hash: &str,
    ) -> Result<Option<(gpt_user_core::ports::OauthToken, gpt_user_core::ports::OauthGrant)>, StoreError> {
        self.with_conn(async |c| gpt_user_sql::oauth::find_token(c, hash).await).await
    }

    /// All operations in one transaction; the first failure rolls everything back.
    pub async fn apply(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let queues_mail = ops.iter().any(|op| matches!(op, Op::EnqueueMail(..)));
        self.transaction(async |conn| {
            for op in ops {
                store::apply_one(conn, op).await?;
            }
            Ok(())
        })
        .await?;
        if queues_mail {
            self.mail_queued.notify_one();
        }
        Ok(())
    }

    /// One housekeeping run (`gpt_user_sql::housekeeping::run`) in one transaction: stale pending
    /// accounts (last sign-up attempt before `stale_before`), expired secrets, email changes and
    /// ephemeral values, old delivered mail and stopped failure counts, events more than
    /// `events_retention_days` old. Returns the number of accounts deleted.
    pub async fn housekeep(&self, now: i64, stale_before: i64, events_retention_days: u32) -> Result<u64, StoreError> {
        self.transaction(async |c| gpt_user_sql::housekeeping::run(c, now, stale_before, events_retention_days).await).await
    }
}

/// The file of a `sqlite:` URL; `None` for other databases.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    Some(std::path::PathBuf::from(rest.split('?').next().unwrap_or_default()))
}

/// A sqlx connection (pooled, or inside a transaction) as the shared layer's [`Conn`].
pub(crate) struct SqlxConn<'c> {
    conn: &'c mut AnyConnection,
    dialect: Dialect,
}

fn bind<'q>(sql: &'q str, params: Vec<Param>) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    params.into_iter().fold(sqlx::query(sql), |q, p| match p {
        Param::Text(s) => q.bind(s),
        Param::Int(i) => q.bind(i),
        Param::Null => q.bind(None::<String>),
        Param::NullInt => q.bind(None::<i64>),
    })
}

impl Conn for SqlxConn<'_> {
    type Row = SqlxRow;

    fn dialect(&self) -> Dialect {
        self.dialect
    }

    async fn execute(&mut self, sql: &str, params: Vec<Param>) -> Result<(), StoreError> {
        bind(sql, params).execute(&mut *self.conn).await.map(drop).map_err(error)
    }

    async fn query(&mut self, sql: &str, params: Vec<Param>) -> Result<Vec<SqlxRow>, StoreError> {
        let rows = bind(sql, params).fetch_all(&mut *self.conn).await.map_err(error)?;
        Ok(rows.into_iter().map(SqlxRow).collect())
    }

    fn new_id(&mut self) -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }
}

pub(crate) struct SqlxRow(AnyRow);

impl SqlxRow {
    fn get<T>(&self, i: usize) -> Result<T, StoreError>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        self.0.try_get(i).map_err(error)
    }
}

impl gpt_user_sql::Row for SqlxRow {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.get(i)
    }

    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.get(i)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.get(i)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.get(i)
    }
}

/// Error codes that mean "not now" rather than "wrong": SQLite busy/locked; PostgreSQL
/// connection exceptions (08), shutdown (57P0x), a missing database (3D000), insufficient
/// resources (53), serialization failures and deadlocks (40001, 40P01).
fn is_transient(code: &str) -> bool {
    matches!(code, "5" | "6" | "261" | "262" | "517" | "3D000" | "40001" | "40P01")
        || code.starts_with("08")
        || code.starts_with("57P")
        || code.starts_with("53")
}

/// Backend errors become the store's; unique violations name their field. Logged once here,
/// never returned as SQL text.
pub(super) fn error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(gpt_user_sql::conflict_field(&format!("{} {}", db.constraint().unwrap_or_default(), db.message())))
        }
        sqlx::Error::Database(db) if db.code().as_deref().is_some_and(is_transient) => {
            tracing::warn!(error = %e, "database unavailable");
            StoreError::Unavailable("database unavailable".into())
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => {
            tracing::warn!(error = %e, "database unavailable");
            StoreError::Unavailable("database unavailable".into())
        }
        _ => {
            tracing::error!(error = %e, "database error");
            StoreError::Other("database error".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::sqlite_path;

    #[test]
    fn the_file_of_a_sqlite_url_is_found_and_other_urls_have_none() {
        assert_eq!(sqlite_path("sqlite:///srv/x/gpt-user.db?mode=rwc"), Some(PathBuf::from("/srv/x/gpt-user.db")));
        assert_eq!(sqlite_path("sqlite:rel/a.db"), Some(PathBuf::from("rel/a.db")));
        assert_eq!(sqlite_path("postgres://u@h/db"), None);
    }
}
