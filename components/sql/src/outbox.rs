//! The durable outbox (SPEC §3): a message is queued in the transaction of the change it belongs
//! to and delivered later by the runtime (our host's dispatcher; on Spin, `mail.flush`).
//!
//! A claim takes **one** due message and writes a fresh random `lease_id` into its row together
//! with `locked_until`. Every later write of that deliverer (renew, sent, failed) is conditional
//! on that `lease_id`: once the lease expired and another deliverer claimed the row, the first
//! one's writes change nothing, and it learns that it no longer owns the message.

use gpt_user_core::ports::{Message, StoreError, Timestamp};

use crate::{Conn, Dialect, Row};

/// A message claimed for delivery, with the lease that lets its deliverer mark it.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: String,
    /// Random id of this claim; not a secret, but it is also not worth a log line.
    pub lease_id: String,
    pub message: Message,
    /// Attempts before this one.
    pub attempts: i64,
}

/// Queues `m`, due at `queued_at`.
pub async fn enqueue<C: Conn>(conn: &mut C, m: Message, queued_at: Timestamp) -> Result<(), StoreError> {
    let id = conn.new_id();
    conn.execute(
        "INSERT INTO outbox (id, recipient, kind, subject, text_body, html_body, queued_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        vec![id.into(), m.to.into(), m.kind.into(), m.subject.into(), m.text.into(), m.html.into(), queued_at.into(), queued_at.into()],
    )
    .await
}

/// The condition of a message a deliverer may claim at `$1` (now): not sent, its next attempt
/// due, no live lease. For a caller that asks whether anything is due inside another statement
/// (the Spin adapter's one read per `flush`).
pub const DUE_AT_1: &str = "sent_at IS NULL AND next_attempt_at <= $1 AND locked_until <= $1";

/// Claims the oldest due message until `lock_until`, or `None` if nothing is due.
///
/// One message, not a batch: a lease then has to cover a single send, and messages further down
/// the queue stay free for other deliverers meanwhile.
pub async fn claim_next<C: Conn>(conn: &mut C, now: Timestamp, lock_until: Timestamp) -> Result<Option<OutboxRow>, StoreError> {
    // PostgreSQL: concurrent claimers skip the row another claim is writing. SQLite has one writer
    // at a time, so the inner SELECT and the UPDATE cannot interleave with another claim.
    // `id = (SELECT …)`, not `id IN (…)`: PostgreSQL may plan `IN` as a semi join that runs the
    // `LIMIT 1` subquery once per outer row, and then one claim leases every due message (found by
    // `tests/api/mail.rs`: 12 leased, 2 sent, 10 waiting out the lease).
    //
    // SQLite: an UPDATE takes the database's one write lock even when it matches nothing, so a
    // plain read asks first. On Spin every request's `flush` claims, and without this read every
    // request queued behind every other's write lock though nothing was due (issue 10: the
    // composed app's p99 was over 80 ms at 32 concurrent requests).
    if conn.dialect() == Dialect::Sqlite {
        let due = conn.query(&format!("SELECT 1 FROM outbox WHERE {DUE_AT_1} LIMIT 1"), vec![now.into()]).await?;
        if due.is_empty() {
            return Ok(None);
        }
    }
    let skip_locked = if conn.dialect() == Dialect::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "UPDATE outbox SET locked_until = $1, lease_id = $2 WHERE id = (SELECT id FROM outbox \
         WHERE sent_at IS NULL AND next_attempt_at <= $3 AND locked_until <= $4 ORDER BY queued_at LIMIT 1{skip_locked}) \
         AND sent_at IS NULL AND locked_until <= $5 \
         RETURNING id, lease_id, recipient, kind, subject, text_body, html_body, attempts"
    );
    let lease_id = conn.new_id();
    let rows = conn.query(&sql, vec![lock_until.into(), lease_id.into(), now.into(), now.into(), now.into()]).await?;
    rows.first()
        .map(|r| {
            Ok(OutboxRow {
                id: r.text(0)?,
                lease_id: r.text(1)?,
                message: Message { to: r.text(2)?, kind: r.text(3)?, subject: r.text(4)?, text: r.text(5)?, html: r.text(6)? },
                attempts: r.int(7)?,
            })
        })
        .transpose()
}

/// Extends the lease to `lock_until`; false if the row is no longer ours (another deliverer
/// claimed it after our lease ran out, or it was marked meanwhile).
pub async fn renew_lease<C: Conn>(conn: &mut C, row: &OutboxRow, lock_until: Timestamp) -> Result<bool, StoreError> {
    let rows = conn
        .query(
            "UPDATE outbox SET locked_until = $1 WHERE id = $2 AND lease_id = $3 AND sent_at IS NULL RETURNING id",
            vec![lock_until.into(), row.id.as_str().into(), row.lease_id.as_str().into()],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Marks a message delivered and drops its bodies: they hold live links (tokens), which must not
/// sit in the database in the clear once they are in the mailbox. False if the row is not ours
/// any more (nothing is changed then).
pub async fn mark_sent<C: Conn>(conn: &mut C, row: &OutboxRow, now: Timestamp) -> Result<bool, StoreError> {
    let rows = conn
        .query(
            "UPDATE outbox SET sent_at = $1, attempts = attempts + 1, locked_until = 0, lease_id = NULL, last_error = NULL, \
             text_body = '', html_body = '' WHERE id = $2 AND lease_id = $3 AND sent_at IS NULL RETURNING id",
            vec![now.into(), row.id.as_str().into(), row.lease_id.as_str().into()],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Records a failed attempt and when to try again. False if the row is not ours any more.
pub async fn mark_failed<C: Conn>(conn: &mut C, row: &OutboxRow, next_attempt_at: Timestamp, why: &str) -> Result<bool, StoreError> {
    let rows = conn
        .query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, locked_until = 0, lease_id = NULL, last_error = $2 \
             WHERE id = $3 AND lease_id = $4 AND sent_at IS NULL RETURNING id",
            vec![next_attempt_at.into(), why.into(), row.id.as_str().into(), row.lease_id.as_str().into()],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// The wait before the next attempt after `attempts` failed ones: `base` doubled per attempt,
/// at most `max` (milliseconds).
pub fn backoff_ms(base: i64, max: i64, attempts: i64) -> i64 {
    base.saturating_mul(1i64 << attempts.clamp(0, 20)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff_ms(100, 1000, 0), 100);
        assert_eq!(backoff_ms(100, 1000, 3), 800);
        assert_eq!(backoff_ms(100, 1000, 4), 1000);
        assert_eq!(backoff_ms(100, 1000, 999), 1000);
        assert_eq!(backoff_ms(100, 1000, -1), 100);
    }
}
