//! `gpt-user:accounts/mail`: `enqueue` writes to the same outbox as `store.op.enqueue-mail`;
//! `flush`, called by the flow after its answer is finished, is where Spin delivers mail and
//! runs housekeeping. It is the adapter's one async export: while it waits for a relay, the
//! instance serves its other requests (their store calls enter this adapter meanwhile). One flush
//! at a time per instance: a second one, while the first talks to the relay, returns at once.

use gpt_user_core::ports::{StoreError, Timestamp};

use crate::bindings::exports::gpt_user::accounts::mail::Guest;
use crate::bindings::exports::gpt_user::accounts::types::{Error, Message};
use crate::bindings::fermyon::spin::sqlite::Value;
use crate::db::Db;
use crate::{housekeeping, outbox, Adapter};

impl Guest for Adapter {
    fn enqueue(message: Message) -> Result<(), Error> {
        let db = Db::open()?;
        Ok(gpt_user_sql::block_on(gpt_user_sql::outbox::enqueue(&mut &db, message.into(), outbox::now_ms()))?)
    }

    async fn flush() {
        if FLUSHING.replace(true) {
            return;
        }
        let _done = Flushing;
        match Db::open() {
            Ok(db) => {
                let now = outbox::now_ms();
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

thread_local! {
    /// Set while a flush of this instance runs.
    static FLUSHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Clears [`FLUSHING`] when the flush ends, however it ends.
struct Flushing;

impl Drop for Flushing {
    fn drop(&mut self) {
        FLUSHING.set(false);
    }
}

/// Housekeeping's last run and whether any mail is due, in one statement: on Spin every request
/// flushes, nearly always to find neither to do, and each statement is prepared afresh on a new
/// connection.
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
