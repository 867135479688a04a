//! The durable outbox in Spin SQLite and its delivery. Spin runs no background tasks, so due
//! messages are delivered from requests: by `mail.flush`, which a flow component calls after its
//! answer is finished, so no client waits for a relay.
//!
//! No message is lost: a row is only marked sent after the SMTP server accepted it, and a
//! failure leaves it with `attempts + 1` and a later `next_attempt_at`. None is sent twice by two
//! concurrent instances: a row is leased (`locked_until`) by a conditional UPDATE before sending,
//! and only the instance whose UPDATE changed the row sends it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::MailSettings;
use crate::db::{get_int, get_text, int, text, Db};
use crate::bindings::exports::gpt_user::accounts::types::{Error, Message, Timestamp};
use crate::smtp;

/// At most this many messages per flush; the time budget below usually ends a batch first.
const BATCH: i64 = 20;
/// No new message is taken after this much time in one flush, so an instance is not kept busy
/// by a long queue or a slow relay. A send already started runs to its end: see `smtp::send`.
const BUDGET: Duration = Duration::from_secs(5);
/// How long a claimed row belongs to the instance delivering it, then it is due again.
const LEASE_MS: i64 = 120_000;
/// Retry after 30 s, doubling per attempt, at most an hour.
const RETRY_BASE_MS: i64 = 30_000;
const RETRY_MAX_MS: i64 = 3_600_000;

/// Milliseconds since the epoch from `wasi:clocks/wall-clock` (Spin's clock).
pub fn now_ms() -> Timestamp {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A queued message, due at `queued_at`.
pub fn insert(db: &Db, m: Message, queued_at: Timestamp) -> Result<(), Error> {
    db.exec(
        "INSERT INTO outbox (id, recipient, kind, subject, text_body, html_body, queued_at, next_attempt_at) \
         VALUES (lower(hex(randomblob(16))), ?, ?, ?, ?, ?, ?, ?)",
        &[text(m.to), text(m.kind), text(m.subject), text(m.text), text(m.html), int(queued_at), int(queued_at)],
    )?;
    Ok(())
}

/// One row taken from the outbox for delivery.
pub struct Pending {
    pub id: String,
    pub message: Message,
    attempts: i64,
}

/// Delivers what is due now, within [`BUDGET`]. Errors are logged, never returned: the change
/// that queued the mail is committed long before, and whatever is not delivered stays due.
pub fn deliver_due(db: &Db) {
    if let Err(e) = try_deliver_due(db, Instant::now()) {
        eprintln!("spin-adapter: outbox delivery skipped: {e:?}");
    }
}

fn try_deliver_due(db: &Db, started: Instant) -> Result<(), Error> {
    let now = now_ms();
    let due = db.exec(
        "SELECT id, recipient, kind, subject, text_body, html_body, attempts FROM outbox \
         WHERE sent_at IS NULL AND next_attempt_at <= ? AND locked_until <= ? ORDER BY queued_at LIMIT ?",
        &[int(now), int(now), int(BATCH)],
    )?;
    if due.rows.is_empty() {
        return Ok(());
    }
    let settings = MailSettings::load().map_err(Error::Other)?;
    for row in &due.rows {
        if started.elapsed() >= BUDGET {
            break; // the rest stays due for the next request's flush
        }
        let v = &row.values;
        let pending = Pending {
            id: get_text(v, 0),
            message: Message { to: get_text(v, 1), kind: get_text(v, 2), subject: get_text(v, 3), text: get_text(v, 4), html: get_text(v, 5) },
            attempts: get_int(v, 6),
        };
        if !claim(db, &pending.id, now)? {
            continue; // another instance is delivering it
        }
        match smtp::send(&settings, &pending.message) {
            Ok(()) => {
                db.exec(
                    "UPDATE outbox SET sent_at = ?, attempts = attempts + 1, locked_until = 0, last_error = NULL, text_body = '', html_body = '' WHERE id = ?",
                    &[int(now_ms()), text(pending.id.clone())],
                )?;
            }
            Err(why) => {
                eprintln!("spin-adapter: mail {} not delivered (attempt {}): {why}", pending.id, pending.attempts + 1);
                let next = now_ms() + backoff_ms(pending.attempts);
                db.exec(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, locked_until = 0, last_error = ? WHERE id = ?",
                    &[int(next), text(why), text(pending.id.clone())],
                )?;
                // The relay is most likely down for the rest of the batch too; do not keep this
                // instance trying each of them.
                break;
            }
        }
    }
    Ok(())
}

/// Leases a row for this instance; false if someone else holds it or it was sent meanwhile.
fn claim(db: &Db, id: &str, now: Timestamp) -> Result<bool, Error> {
    db.changed(
        "UPDATE outbox SET locked_until = ? WHERE id = ? AND sent_at IS NULL AND locked_until <= ? RETURNING id",
        &[int(now + LEASE_MS), text(id), int(now)],
    )
}

fn backoff_ms(attempts: i64) -> i64 {
    RETRY_BASE_MS.saturating_mul(1i64 << attempts.clamp(0, 20)).min(RETRY_MAX_MS)
}
