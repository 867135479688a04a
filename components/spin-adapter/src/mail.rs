//! `gpt-user:accounts/mail`: `enqueue` writes to the same outbox as `store.op.enqueue-mail`;
//! `flush`, called by the flow after its answer is finished, is where Spin delivers mail and
//! runs housekeeping.

use crate::bindings::exports::gpt_user::accounts::mail::Guest;
use crate::bindings::exports::gpt_user::accounts::types::{Error, Message};
use crate::db::Db;
use crate::{housekeeping, outbox, Adapter};

impl Guest for Adapter {
    fn enqueue(message: Message) -> Result<(), Error> {
        let db = Db::open()?;
        Ok(gpt_user_sql::block_on(gpt_user_sql::outbox::enqueue(&mut &db, message.into(), outbox::now_ms()))?)
    }

    fn flush() {
        match Db::open() {
            Ok(db) => {
                // Housekeeping first: it is a few bounded statements, while a send to a relay
                // that hangs never returns (see `smtp::send`) and would otherwise starve it.
                housekeeping::run_if_due(&db, outbox::now_ms());
                outbox::deliver_due(&db);
            }
            Err(e) => eprintln!("spin-adapter: flush skipped: {e:?}"),
        }
        // The request is over: the flow calls `flush` last.
        Db::close();
    }
}
