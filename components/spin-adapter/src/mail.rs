//! `gpt-user:accounts/mail`: `enqueue` writes to the same outbox as `store.op.enqueue-mail`;
//! `flush`, called by the flow after its answer is finished, is where Spin delivers mail and
//! runs housekeeping. It is the adapter's one async export: while it waits for a relay, the
//! instance serves its other requests (their store calls enter this adapter meanwhile). One flush
//! at a time per instance: a second one, while the first talks to the relay, returns at once.
//! Every flush looks at the outbox; how often to flush is the flow's (the guest crate flushes
//! after a request that queued mail, otherwise at most once a second).

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
        Ok(())
    }

    async fn flush() {
        if FLUSHING.replace(true) {
            return;
        }
        let _done = Flushing;
        let now = outbox::now_ms();
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

thread_local! {
    /// Set while a flush of this instance runs.
    static FLUSHING: Cell<bool> = const { Cell::new(false) };
}

/// Clears [`FLUSHING`] when the flush ends, however it ends.
struct Flushing;

impl Drop for Flushing {
    fn drop(&mut self) {
        FLUSHING.set(false);
    }
}

/// Housekeeping's last run and whether any mail is due, in one statement: a flush nearly always
/// finds neither to do.
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
