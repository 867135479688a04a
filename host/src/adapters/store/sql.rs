//! The store on sqlx: SQLite (a file, the default) or PostgreSQL, one code path through
//! `sqlx::Any` with portable SQL. Dialect differences are confined to [`Dialect`].

use std::sync::Arc;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Connection as _, Row};
use tokio::sync::Notify;

use crate::bindings::store::{Op, PendingReplacement, SendLimit};
use crate::bindings::types::{Error, Message, Secret, SecretPurpose, User, UserStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct SqlStore {
    pub(super) pool: AnyPool,
    pub(super) dialect: Dialect,
    /// Woken when a transaction queued mail, so the dispatcher need not wait for its next poll.
    pub mail_queued: Arc<Notify>,
}

const USER_COLUMNS: &str =
    "id, email, pin, passphrase_hash, locale, status, email_verified, consent_at, policy_version, created_at, updated_at";

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
        if dialect == Dialect::Sqlite {
            let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            let path = path.split('?').next().unwrap_or_default();
            if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
        }
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
        // On a connection of its own: on PostgreSQL it holds the migration lock for its session,
        // and closing it is what releases the lock even if the migration fails halfway.
        let mut conn = AnyConnection::connect(url).await.map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
        super::schema::migrate(&mut conn, dialect).await?;
        conn.close().await?;
        Ok(Self { pool, dialect, mail_queued: Arc::new(Notify::new()) })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn find_user(&self, by_pin: bool, value: &str) -> Result<Option<User>, Error> {
        let column = if by_pin { "pin" } else { "email" };
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {column} = $1");
        let row = sqlx::query(&sql).bind(value).fetch_optional(&self.pool).await.map_err(error)?;
        row.map(|r| user_from_row(&r)).transpose().map_err(error)
    }

    pub async fn find_secret(&self, hash: &str, purpose: SecretPurpose, now: i64) -> Result<Option<Secret>, Error> {
        let row = sqlx::query(
            "SELECT hash, user_id, created_at, expires_at FROM secrets WHERE hash = $1 AND purpose = $2 AND expires_at > $3",
        )
        .bind(hash)
        .bind(purpose_str(purpose))
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(error)?;
        row.map(|r| {
            Ok(Secret {
                hash: r.try_get("hash")?,
                purpose,
                user_id: r.try_get("user_id")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
        .map_err(error)
    }

    /// All operations in one transaction; the first failure rolls everything back.
    pub async fn apply(&self, ops: Vec<Op>) -> Result<(), Error> {
        // SQLite: take the write lock up front, so a read-then-write transaction cannot deadlock.
        let begin = match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => self.pool.begin().await,
        };
        let mut tx = begin.map_err(error)?;
        let queues_mail = ops.iter().any(|op| matches!(op, Op::EnqueueMail(_)));
        for op in ops {
            self.apply_one(&mut tx, op).await?;
        }
        tx.commit().await.map_err(error)?;
        if queues_mail {
            self.mail_queued.notify_one();
        }
        Ok(())
    }

    async fn apply_one(&self, conn: &mut AnyConnection, op: Op) -> Result<(), Error> {
        match op {
            Op::InsertUser(u) => {
                let sql = format!("INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)");
                sqlx::query(&sql)
                    .bind(u.id)
                    .bind(u.email)
                    .bind(u.pin)
                    .bind(u.passphrase_hash)
                    .bind(u.locale)
                    .bind(status_str(u.status))
                    .bind(i64::from(u.email_verified))
                    .bind(u.consent_at)
                    .bind(u.policy_version)
                    .bind(u.created_at)
                    .bind(u.updated_at)
                    .run(conn)
                    .await?;
            }
            Op::ReplacePending(PendingReplacement { user_id, pin, passphrase_hash, locale, consent_at, policy_version, now }) => {
                let changed = sqlx::query(
                    "UPDATE users SET pin = $1, passphrase_hash = $2, locale = $3, consent_at = $4, policy_version = $5, updated_at = $6 \
                     WHERE id = $7 AND status = 'pending'",
                )
                .bind(pin)
                .bind(passphrase_hash)
                .bind(locale)
                .bind(consent_at)
                .bind(policy_version)
                .bind(now)
                .bind(user_id)
                .run(conn)
                .await?;
                require(changed)?;
            }
            Op::Activate((user_id, now)) => {
                let changed = sqlx::query(
                    "UPDATE users SET status = 'active', email_verified = 1, updated_at = $1 WHERE id = $2 AND status = 'pending'",
                )
                .bind(now)
                .bind(user_id)
                .run(conn)
                .await?;
                require(changed)?;
            }
            Op::InsertSecret(s) => {
                sqlx::query("INSERT INTO secrets (hash, purpose, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(s.hash)
                    .bind(purpose_str(s.purpose))
                    .bind(s.user_id)
                    .bind(s.created_at)
                    .bind(s.expires_at)
                    .run(conn)
                    .await?;
            }
            Op::ConsumeSecret((hash, purpose, user_id, now)) => {
                let changed = sqlx::query("DELETE FROM secrets WHERE hash = $1 AND purpose = $2 AND user_id = $3 AND expires_at > $4")
                    .bind(hash)
                    .bind(purpose_str(purpose))
                    .bind(user_id)
                    .bind(now)
                    .run(conn)
                    .await?;
                require(changed)?;
            }
            Op::RevokeSecrets((user_id, purpose)) => {
                sqlx::query("DELETE FROM secrets WHERE user_id = $1 AND purpose = $2")
                    .bind(user_id)
                    .bind(purpose_str(purpose))
                    .run(conn)
                    .await?;
            }
            Op::CheckSendLimit(limit) => self.check_send_limit(conn, limit).await?,
            Op::EnqueueMail((Message { to, kind, subject, text, html }, queued_at)) => {
                sqlx::query(
                    "INSERT INTO outbox (id, recipient, kind, subject, text_body, html_body, queued_at, next_attempt_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(uuid::Uuid::new_v4().simple().to_string())
                .bind(to)
                .bind(kind)
                .bind(subject)
                .bind(text)
                .bind(html)
                .bind(queued_at)
                .run(conn)
                .await?;
            }
        }
        Ok(())
    }

    async fn check_send_limit(&self, conn: &mut AnyConnection, l: SendLimit) -> Result<(), Error> {
        if self.dialect == Dialect::Postgres {
            // Serialise concurrent checks for one recipient until commit (SQLite's write lock does this).
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))::text")
                .bind(format!("{}|{}", l.to, l.kind))
                .execute(&mut *conn)
                .await
                .map_err(error)?;
        }
        let recent: Vec<(i64,)> = sqlx::query_as("SELECT queued_at FROM outbox WHERE recipient = $1 AND kind = $2 AND queued_at > $3")
            .bind(&l.to)
            .bind(&l.kind)
            .bind(l.now - l.window)
            .fetch_all(&mut *conn)
            .await
            .map_err(error)?;
        let recent: Vec<i64> = recent.into_iter().map(|(t,)| t).collect();
        match gpt_user_core::ports::send_limit_wait(l.now, l.min_interval, l.max_in_window, l.window, &recent) {
            Some(secs) => Err(Error::Throttled(secs)),
            None => Ok(()),
        }
    }

    /// Deletes pending accounts whose last sign-up attempt (`updated_at`, which a re-sign-up
    /// moves) is before `pending_before`, expired secrets and delivered mail older than
    /// `sent_before`. Returns the number of accounts deleted.
    pub async fn housekeep(&self, now: i64, pending_before: i64, sent_before: i64) -> Result<u64, sqlx::Error> {
        use gpt_user_sql::housekeeping::{DELETE_SECRETS, DELETE_SENT_MAIL, DELETE_STALE_PENDING_USERS};
        let mut tx = self.pool.begin().await?;
        sqlx::query(DELETE_SECRETS).bind(now).bind(pending_before).execute(&mut *tx).await?;
        let users = sqlx::query(DELETE_STALE_PENDING_USERS).bind(pending_before).fetch_all(&mut *tx).await?;
        sqlx::query(DELETE_SENT_MAIL).bind(sent_before).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(users.len() as u64)
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

/// Runs one statement of a transaction; the number of rows it changed.
trait Run {
    async fn run(self, conn: &mut AnyConnection) -> Result<u64, Error>;
}

impl<'q> Run for sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    async fn run(self, conn: &mut AnyConnection) -> Result<u64, Error> {
        self.execute(conn).await.map(|done| done.rows_affected()).map_err(error)
    }
}

fn require(rows: u64) -> Result<(), Error> {
    if rows == 0 { Err(Error::NotFound) } else { Ok(()) }
}

fn user_from_row(r: &AnyRow) -> Result<User, sqlx::Error> {
    let status: String = r.try_get("status")?;
    // A status we do not know is not "pending": reading it as one would let a sign-up replace
    // the account. The schema's CHECK keeps such rows out; this is the second line.
    let status = status_from(&status).ok_or_else(|| sqlx::Error::Decode(format!("unknown user status {status:?}").into()))?;
    Ok(User {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        pin: r.try_get("pin")?,
        passphrase_hash: r.try_get("passphrase_hash")?,
        locale: r.try_get("locale")?,
        status,
        email_verified: r.try_get::<i64, _>("email_verified")? != 0,
        consent_at: r.try_get("consent_at")?,
        policy_version: r.try_get("policy_version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn status_from(s: &str) -> Option<UserStatus> {
    [UserStatus::Pending, UserStatus::Active, UserStatus::Blocked].into_iter().find(|status| status_str(*status) == s)
}

fn status_str(s: UserStatus) -> &'static str {
    match s {
        UserStatus::Pending => "pending",
        UserStatus::Active => "active",
        UserStatus::Blocked => "blocked",
    }
}

fn purpose_str(p: SecretPurpose) -> &'static str {
    match p {
        SecretPurpose::VerifyEmail => "verify-email",
        SecretPurpose::Profile => "profile",
    }
}

/// Backend errors become the WIT variant; unique violations name their field. Logged once here.
fn error(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let what = format!("{} {}", db.constraint().unwrap_or_default(), db.message());
            let field = ["email", "pin", "hash", "id"].into_iter().find(|f| what.contains(&format!("_{f}_key")) || what.contains(&format!(".{f}")));
            Error::Conflict(field.unwrap_or("unique").to_owned())
        }
        sqlx::Error::Database(db) if db.code().as_deref().is_some_and(is_transient) => {
            tracing::warn!(error = %e, "database unavailable");
            Error::Unavailable("database unavailable".into())
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => {
            tracing::warn!(error = %e, "database unavailable");
            Error::Unavailable("database unavailable".into())
        }
        _ => {
            tracing::error!(error = %e, "database error");
            Error::Other("database error".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_decoder_refuses_what_it_does_not_know() {
        for status in [UserStatus::Pending, UserStatus::Active, UserStatus::Blocked] {
            assert_eq!(status_from(status_str(status)), Some(status));
        }
        for unknown in ["", "frozen", "Pending", "active "] {
            assert_eq!(status_from(unknown), None, "{unknown:?}");
        }
    }
}
