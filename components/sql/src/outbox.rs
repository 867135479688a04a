//! The durable outbox (SPEC §3): a message is queued in the transaction of the change it belongs
//! to and delivered later by the runtime (our host's dispatcher; on Spin, `mail.flush`).
//!
//! A claim takes **one** due message and writes a fresh random `lease_id` into its row together
//! with `locked_until`. Every later write of that deliverer (renew, sent, failed) is conditional
//! on that `lease_id`: once the lease expired and another deliverer claimed the row, the first
//! one's writes change nothing, and it learns that it no longer owns the message.
//!
//! A message the relay refuses for good (a 5xx reply about it, [`is_permanent_refusal`]) or not
//! delivered within [`MAX_AGE_MS`] of being queued is **dead** ([`mark_dead`]): never tried again,
//! its subject and bodies wiped (they hold live links and codes), the reason kept in `last_error`.
//! So a queue of undeliverable mail drains instead of being retried for ever ahead of fresh mail.

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
    pub queued_at: Timestamp,
}

/// A message not delivered within this long of being queued is dead: its links have expired or
/// are about to (SPEC: a verification link lasts 24 h, a profile link 1 h), and retrying it for
/// ever would keep its live secrets in the database in the clear. A constant, as the lifetimes.
pub const MAX_AGE_MS: i64 = 24 * 3_600_000;

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

/// The condition of a message a deliverer may claim at `$1` (now): neither sent nor dead, its
/// next attempt due, no live lease. For a caller that asks whether anything is due inside another
/// statement (the Spin adapter's one read per `flush`).
pub const DUE_AT_1: &str = "sent_at IS NULL AND dead_at IS NULL AND next_attempt_at <= $1 AND locked_until <= $1";

/// Claims the due message whose attempt is due soonest until `lock_until`, or `None` if nothing
/// is due. By next attempt, not by queued time: a retry waits its backoff behind fresh mail
/// instead of going before it for as long as it keeps failing.
///
/// A due message older than [`MAX_AGE_MS`] is not returned: it is marked dead on the way (no
/// attempt is made), and the next one is claimed.
///
/// One message, not a batch: a lease then has to cover a single send, and messages further down
/// the queue stay free for other deliverers meanwhile.
pub async fn claim_next<C: Conn>(conn: &mut C, now: Timestamp, lock_until: Timestamp) -> Result<Option<OutboxRow>, StoreError> {
    loop {
        let Some(row) = claim_one(conn, now, lock_until).await? else {
            return Ok(None);
        };
        if row.queued_at > now - MAX_AGE_MS {
            return Ok(Some(row));
        }
        mark_dead(conn, &row, now, "expired: not delivered within 24 h of being queued", false).await?;
    }
}

async fn claim_one<C: Conn>(conn: &mut C, now: Timestamp, lock_until: Timestamp) -> Result<Option<OutboxRow>, StoreError> {
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
         WHERE sent_at IS NULL AND dead_at IS NULL AND next_attempt_at <= $3 AND locked_until <= $4 \
         ORDER BY next_attempt_at, id LIMIT 1{skip_locked}) \
         AND sent_at IS NULL AND dead_at IS NULL AND locked_until <= $5 \
         RETURNING id, lease_id, recipient, kind, subject, text_body, html_body, attempts, queued_at"
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
                queued_at: r.int(8)?,
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
            vec![next_attempt_at.into(), reason(why).into(), row.id.as_str().into(), row.lease_id.as_str().into()],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Marks a message dead: never tried again, its subject and bodies wiped, `why` kept as its last
/// error (an SMTP reply or the age limit; never a body). `attempted`: whether `why` ends an
/// attempt (counted), or the message is given up without one (the last attempt's error is then
/// kept after `why`). False if the row is not ours any more.
pub async fn mark_dead<C: Conn>(conn: &mut C, row: &OutboxRow, now: Timestamp, why: &str, attempted: bool) -> Result<bool, StoreError> {
    let last_error = if attempted { "$3" } else { "$3 || COALESCE(' (last error: ' || last_error || ')', '')" };
    let rows = conn
        .query(
            &format!(
                "UPDATE outbox SET dead_at = $1, attempts = attempts + $2, locked_until = 0, lease_id = NULL, last_error = {last_error}, \
                 subject = '', text_body = '', html_body = '' WHERE id = $4 AND lease_id = $5 AND sent_at IS NULL RETURNING id"
            ),
            vec![now.into(), i64::from(attempted).into(), reason(why).into(), row.id.as_str().into(), row.lease_id.as_str().into()],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Whether an SMTP reply `code` to a message refuses that message for good (RFC 5321 §4.2.1:
/// 5yz is a permanent negative completion), so it is marked dead rather than retried.
///
/// Not the 5xx replies that speak of the session rather than of the message, which would kill
/// every message while the configuration or the relay is at fault: 500–504 (a command the relay
/// did not understand or expect) and 530, 534, 535, 538 (authentication, RFC 4954). A relay that
/// refuses our sender with a 5xx still kills every message it refuses: the reason in
/// `gpt-user outbox list --dead` says so.
pub fn is_permanent_refusal(code: u16) -> bool {
    (500..600).contains(&code) && !(500..=504).contains(&code) && !matches!(code, 530 | 534 | 535 | 538)
}

/// Whether an SMTP reply `code` to a message says the relay cannot take any more now (421: the
/// service is closing the channel), so a batch stops instead of trying the next message.
pub fn ends_session(code: u16) -> bool {
    code == 421
}

/// The reason as stored: one line, at most 300 characters (an SMTP reply can run long).
fn reason(why: &str) -> String {
    let line: String = why.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    line.chars().take(300).collect()
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

    #[test]
    fn a_5xx_about_the_message_is_permanent_a_4xx_or_a_session_reply_is_not() {
        for code in [550, 551, 552, 553, 554, 521, 556] {
            assert!(is_permanent_refusal(code), "{code}");
        }
        for code in [421, 450, 451, 452, 500, 501, 502, 503, 504, 530, 534, 535, 538, 250, 354] {
            assert!(!is_permanent_refusal(code), "{code}");
        }
    }

    #[test]
    fn a_stored_reason_is_one_bounded_line() {
        assert_eq!(reason("550 5.1.1 no\r\nsuch user"), "550 5.1.1 no  such user");
        assert_eq!(reason(&"x".repeat(1000)).len(), 300);
    }
}
