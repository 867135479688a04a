//! The outbox side of [`SqlStore`]: what the mail dispatcher claims, renews and marks.
//!
//! A claim takes **one** due message and writes a fresh random `lease_id` into its row together
//! with `locked_until`. Every later write of that dispatcher (renew, sent, failed) is conditional
//! on that `lease_id`: once the lease expired and another dispatcher claimed the row, the first
//! one's writes change nothing, and it learns that it no longer owns the message.

use sqlx::Row;

use super::sql::{Dialect, SqlStore};

/// A message claimed for delivery, with the lease that lets us mark it.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: String,
    /// Random id of this claim; not a secret, but it is also not worth a log line.
    pub lease_id: String,
    pub recipient: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attempts: i64,
}

impl SqlStore {
    /// Claims the oldest due message until `lock_until`, or `None` if nothing is due.
    ///
    /// One message, not a batch: a lease then has to cover a single send, and messages further
    /// down the queue stay free for other dispatchers meanwhile.
    pub async fn claim_next(&self, now: i64, lock_until: i64) -> Result<Option<OutboxRow>, sqlx::Error> {
        // PostgreSQL: concurrent claimers skip the row another claim is writing. SQLite has one
        // writer at a time, so the inner SELECT and the UPDATE cannot interleave with another claim.
        let skip_locked = if self.dialect == Dialect::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "UPDATE outbox SET locked_until = $1, lease_id = $2 WHERE id IN (SELECT id FROM outbox \
             WHERE sent_at IS NULL AND next_attempt_at <= $3 AND locked_until <= $3 ORDER BY queued_at LIMIT 1{skip_locked}) \
             AND sent_at IS NULL AND locked_until <= $3 \
             RETURNING id, lease_id, recipient, subject, text_body, html_body, attempts"
        );
        let lease_id = uuid::Uuid::new_v4().simple().to_string();
        let row = sqlx::query(&sql).bind(lock_until).bind(lease_id).bind(now).fetch_optional(&self.pool).await?;
        row.map(|r| {
            Ok(OutboxRow {
                id: r.try_get("id")?,
                lease_id: r.try_get("lease_id")?,
                recipient: r.try_get("recipient")?,
                subject: r.try_get("subject")?,
                text: r.try_get("text_body")?,
                html: r.try_get("html_body")?,
                attempts: r.try_get("attempts")?,
            })
        })
        .transpose()
    }

    /// Extends our lease to `lock_until`; false if the row is no longer ours (another
    /// dispatcher claimed it after our lease ran out, or it was marked meanwhile).
    pub async fn renew_lease(&self, row: &OutboxRow, lock_until: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE outbox SET locked_until = $1 WHERE id = $2 AND lease_id = $3 AND sent_at IS NULL")
            .bind(lock_until)
            .bind(&row.id)
            .bind(&row.lease_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a message delivered and drops its bodies: they hold live links (tokens), which
    /// must not sit in the database in the clear once they are in the mailbox. False if the row
    /// is not ours any more (nothing is changed then).
    pub async fn mark_sent(&self, row: &OutboxRow, now: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE outbox SET sent_at = $1, attempts = attempts + 1, locked_until = 0, lease_id = NULL, last_error = NULL, \
             text_body = '', html_body = '' WHERE id = $2 AND lease_id = $3 AND sent_at IS NULL",
        )
        .bind(now)
        .bind(&row.id)
        .bind(&row.lease_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a failed attempt and when to try again. False if the row is not ours any more.
    pub async fn mark_failed(&self, row: &OutboxRow, next_attempt_at: i64, why: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, locked_until = 0, lease_id = NULL, last_error = $2 \
             WHERE id = $3 AND lease_id = $4 AND sent_at IS NULL",
        )
        .bind(next_attempt_at)
        .bind(why)
        .bind(&row.id)
        .bind(&row.lease_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
