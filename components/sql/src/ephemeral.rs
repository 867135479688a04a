//! `gpt-user:accounts/ephemeral` over the SQL store (table `ephemeral`, migration 4): the backend
//! of our host when no Redis is configured, and of the Spin adapter. Every read checks the
//! expiry against the caller's clock; housekeeping deletes what expired
//! ([`crate::housekeeping::DELETE_EXPIRED_EPHEMERAL`]).

use gpt_user_core::ports::{StoreError, Timestamp};

use crate::{Conn, Row};

pub async fn put<C: Conn>(conn: &mut C, key: &str, value: &str, expires_at: Timestamp) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO ephemeral (key, value, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
        vec![key.into(), value.into(), expires_at.into()],
    )
    .await
}

pub async fn get<C: Conn>(conn: &mut C, key: &str, now: Timestamp) -> Result<Option<String>, StoreError> {
    let rows = conn.query("SELECT value FROM ephemeral WHERE key = $1 AND expires_at > $2", vec![key.into(), now.into()]).await?;
    rows.first().map(|r| r.text(0)).transpose()
}

/// One statement, so concurrent increments each see a different count (the row is locked by
/// the upsert on PostgreSQL; SQLite runs one writer at a time). Placeholders in order of first
/// appearance: Spin's SQLite binds by position.
pub async fn increment<C: Conn>(conn: &mut C, key: &str, now: Timestamp, expires_at: Timestamp) -> Result<u32, StoreError> {
    let rows = conn
        .query(
            "INSERT INTO ephemeral (key, value, expires_at) VALUES ($1, '1', $2) \
             ON CONFLICT (key) DO UPDATE SET \
             value = CASE WHEN ephemeral.expires_at <= $3 THEN '1' \
                          ELSE CAST(CAST(ephemeral.value AS BIGINT) + 1 AS TEXT) END, \
             expires_at = CASE WHEN ephemeral.expires_at <= $3 THEN excluded.expires_at ELSE ephemeral.expires_at END \
             RETURNING value",
            vec![key.into(), expires_at.into(), now.into()],
        )
        .await?;
    let value = rows.first().ok_or_else(|| StoreError::Other("increment returned no row".into()))?.text(0)?;
    value.parse().map_err(|_| StoreError::Other(format!("counter {key:?} holds no number")))
}

pub async fn delete<C: Conn>(conn: &mut C, key: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM ephemeral WHERE key = $1", vec![key.into()]).await
}
