//! `gpt-user:accounts/mail`: `enqueue` writes to the same outbox as `store.op.enqueue-mail`;
//! `flush`, called by the flow after its answer is finished, is where Spin delivers mail and
//! runs housekeeping. It is the adapter's one async export: while it waits for a relay, the
//! instance serves its other requests (their store calls enter this adapter meanwhile). One flush
//! at a time per instance: a second one, while the first talks to the relay, returns at once. A
//! flush after a request that queued no mail looks at the outbox at most once a second.

use std::cell::Cell;

use gpt_user_core::ports::{StoreError, Timestamp};

use crate::bindings::exports::gpt_user::accounts::mail::Guest;
use crate::bindings::exports::gpt_user::accounts::types::{Error, Message};
use crate::bindings::fermyon::spin::sqlite::Value;
use crate::db::Db;
use crate::{housekeeping, outbox, Adapter};

impl Guest for Adapter {
    fn enqueue(message: Message) -> Result<(), Error> {
        let db = Db::open()?;
        gpt_user_sql::block_on(gpt_user_sql::outbox::enqueue(&mut &db, message.into(), outbox::now_ms()))?;
        queued();
        Ok(())
    }

    async fn flush() {
        if FLUSHING.replace(true) {
            return;
        }
        let _done = Flushing;
        let now = outbox::now_ms();
        // Mail this instance queued is looked for at once; otherwise the outbox at most once per
        // `LOOK_EVERY_MS`.
        let queued = QUEUED.replace(false);
        if !queued && LAST_LOOK.get().is_some_and(|last| (0..LOOK_EVERY_MS).contains(&(now - last))) {
            return;
        }
        LAST_LOOK.set(Some(now));
        match Db::open() {
            Ok(db) => {
                match due(&db, now) {
                    Ok((last_run, mail_due)) => {
                        // Housekeeping first: it is a few bounded statements, while a send to a
                        // relay that hangs takes up to its deadline (`smtp::MESSAGE_MS`) and
                        // would otherwise delay it.
                        housekeeping::run_if_due(&db, now, last_run);
                        if mail_due {
                            outbox::deliver_due(&db).await;
                        }
                    }
                    Err(e) => eprintln!("spin-adapter: flush skipped: {e:?}"),
                }
            }
            Err(e) => eprintln!("spin-adapter: flush skipped: {e:?}"),
        }
    }
}

/// Unless this instance queued mail since, a flush looks at the outbox (and whether housekeeping
/// is due) at most once per this many ms of the wall clock: most requests (reads, `/healthz`)
/// queue none, and a statement saved per request counts on Spin; a retry (backoff 30 s and more)
/// or housekeeping (every 5 min) is delayed by at most this much.
const LOOK_EVERY_MS: Timestamp = 1_000;

thread_local! {
    /// Set while a flush of this instance runs.
    static FLUSHING: Cell<bool> = const { Cell::new(false) };
    /// When a flush of this instance last looked at the outbox.
    static LAST_LOOK: Cell<Option<Timestamp>> = const { Cell::new(None) };
    /// Whether this instance queued mail since its last look.
    static QUEUED: Cell<bool> = const { Cell::new(false) };
}

/// This instance committed a message to the outbox: its next flush looks for it at once.
pub fn queued() {
    QUEUED.set(true);
}

/// Clears [`FLUSHING`] when the flush ends, however it ends.
struct Flushing;

impl Drop for Flushing {
    fn drop(&mut self) {
        FLUSHING.set(false);
    }
}

/// Housekeeping's last run and whether any mail is due, in one statement: on Spin every request
/// flushes, nearly always to find neither to do.
fn due(db: &Db, now: Timestamp) -> Result<(Option<Timestamp>, bool), StoreError> {
    let sql = format!("SELECT ({}), EXISTS (SELECT 1 FROM outbox WHERE {})", housekeeping::LAST_RUN, gpt_user_sql::outbox::DUE_AT_1);
    let result = db.exec(&sql, &[Value::Integer(now)])?;
    Ok(match result.rows.first().map(|r| r.values.as_slice()) {
        Some([last_run, due]) => (
            if let Value::Integer(last) = last_run { Some(*last) } else { None },
            matches!(due, Value::Integer(n) if *n != 0),
        ),
        _ => (None, true),
    })
}
