//! Migrations: the numbered files of `schema/`, applied once each, in order, in a transaction.
//!
//! Several hosts may start at once on one fresh database. Without a lock they race: two
//! `CREATE TABLE IF NOT EXISTS` of one table collide in PostgreSQL's catalog, and two hosts that
//! both saw a version missing both apply it. So the whole run is serialised — PostgreSQL: a
//! session-level advisory lock on the migrating connection; SQLite: every version in a
//! `BEGIN IMMEDIATE` transaction (the file's write lock), its "already applied?" check included.

use sqlx::{AnyConnection, Connection as _};

use gpt_user_sql::Dialect;
use gpt_user_sql::schema::{CREATE_SCHEMA_MIGRATIONS, MIGRATIONS, statements};

/// Key of the advisory lock every gpt-user host takes to migrate ("gpt-user" in ASCII).
const MIGRATION_LOCK: i64 = 0x6770_742d_7573_6572;

/// Applies what is missing. Run it on a connection of its own and close that afterwards: on
/// PostgreSQL the lock belongs to the connection's session, so a failure that leaves the unlock
/// undone still releases it when the connection goes.
pub async fn migrate(conn: &mut AnyConnection, dialect: Dialect) -> Result<(), sqlx::Error> {
    if dialect == Dialect::Postgres {
        // `::text`: the Any driver cannot decode `void`.
        sqlx::query("SELECT pg_advisory_lock($1)::text").bind(MIGRATION_LOCK).execute(&mut *conn).await?;
    }
    apply_missing(conn, dialect).await?;
    if dialect == Dialect::Postgres {
        // Only on success: after a failure the caller drops the connection, which unlocks.
        sqlx::query("SELECT pg_advisory_unlock($1)::text").bind(MIGRATION_LOCK).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn apply_missing(conn: &mut AnyConnection, dialect: Dialect) -> Result<(), sqlx::Error> {
    for (version, sql) in MIGRATIONS {
        let mut tx = match dialect {
            Dialect::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => conn.begin().await?,
        };
        sqlx::query(CREATE_SCHEMA_MIGRATIONS).execute(&mut *tx).await?;
        let done: Option<(i64,)> = sqlx::query_as("SELECT version FROM schema_migrations WHERE version = $1")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
        if done.is_some() {
            continue;
        }
        for statement in statements(sql) {
            sqlx::query(&statement).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(version)
            .bind(crate::clock::system_now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(())
}
