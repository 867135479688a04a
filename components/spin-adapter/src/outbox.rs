//! Delivery of the durable outbox on Spin. Spin runs no background tasks, so due messages are
//! delivered from requests: by `mail.flush`, which a flow component calls after its answer is
//! finished, so no client waits for a relay. Every statement here is a sync call with no wait
//! inside it; only the SMTP conversation waits (yielding to the instance's other requests), so
//! no transaction is ever open across a wait.
//!
//! The queue itself is the shared SQL layer's (`gpt_user_sql::outbox`), the same as our host's:
//! no message is lost (a row is only marked sent after the SMTP server accepted it; a failure
//! leaves it with `attempts + 1` and a later `next_attempt_at`), and none is sent twice by two
//! concurrent instances (a row is claimed under a lease by a conditional UPDATE, and only the
//! claim's holder can mark it). A message the relay refuses for good (a 5xx reply about it) is
//! marked dead at once, its body wiped; so is one still undelivered a day after it was queued.
//!
//! A flush goes on past a message the relay refused (a bad recipient must not hold up the mail
//! queued behind it); it stops at a failure of the relay itself (unreachable, the session refused
//! or broken, `421`), which the next message would meet as well.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gpt_user_core::ports::{StoreError, Timestamp};
use gpt_user_sql::{block_on, outbox};

use crate::config::MailSettings;
use crate::db::Db;
use crate::smtp::{self, Failure};

/// At most this many messages per flush; the time budget below usually ends a batch first.
const BATCH: usize = 20;
/// No new message is taken after this much time in one flush, so an instance is not kept busy
/// by a long queue or a slow relay. A send already started runs to its end, which its own
/// deadlines bound (`smtp::MESSAGE_MS`, well within the lease).
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

/// Delivers what is due now, within [`BUDGET`]. Errors are logged, never returned: the change
/// that queued the mail is committed long before, and whatever is not delivered stays due.
pub async fn deliver_due(db: &Db) {
    if let Err(e) = try_deliver_due(db, Instant::now()).await {
        eprintln!("spin-adapter: outbox delivery skipped: {e:?}");
    }
}

async fn try_deliver_due(db: &Db, started: Instant) -> Result<(), StoreError> {
    let mut settings = None;
    for _ in 0..BATCH {
        if started.elapsed() >= BUDGET {
            break; // the rest stays due for the next request's flush
        }
        let now = now_ms();
        let Some(row) = block_on(outbox::claim_next(&mut &*db, now, now + LEASE_MS))? else {
            break;
        };
        let settings = match &settings {
            Some(s) => s,
            None => settings.insert(MailSettings::load().map_err(StoreError::Other)?),
        };
        let attempt = row.attempts + 1;
        let (why, permanent, relay_down) = match smtp::send(settings, &row.message).await {
            Ok(()) => {
                if !block_on(outbox::mark_sent(&mut &*db, &row, now_ms()))? {
                    eprintln!("spin-adapter: mail {} delivered after its lease ran out", row.id);
                }
                continue;
            }
            Err(Failure::Refused { code, reason }) => (reason, outbox::is_permanent_refusal(code), outbox::ends_session(code)),
            Err(Failure::Invalid(why)) => (why, true, false),
            Err(Failure::Relay(why)) => (why, false, true),
        };
        if permanent {
            eprintln!("spin-adapter: mail {} refused for good (attempt {attempt}), marked dead: {why}", row.id);
            block_on(outbox::mark_dead(&mut &*db, &row, now_ms(), &why, true))?;
        } else {
            eprintln!("spin-adapter: mail {} not delivered (attempt {attempt}): {why}", row.id);
            let next = now_ms() + outbox::backoff_ms(RETRY_BASE_MS, RETRY_MAX_MS, row.attempts);
            block_on(outbox::mark_failed(&mut &*db, &row, next, &why))?;
        }
        if relay_down {
            // The relay itself failed: the rest of the batch would meet it too, so this instance
            // does not keep trying each of them.
            break;
        }
    }
    Ok(())
}
