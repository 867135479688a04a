//! `gpt-user:accounts/mail`: a message on its own goes to the same outbox as `enqueue-mail`.

use crate::db::Db;
use crate::bindings::exports::gpt_user::accounts::mail::Guest;
use crate::bindings::exports::gpt_user::accounts::types::{Error, Message};
use crate::{outbox, Adapter};

impl Guest for Adapter {
    fn enqueue(message: Message) -> Result<(), Error> {
        let db = Db::open()?;
        outbox::insert(&db, message, outbox::now_ms())?;
        outbox::deliver_due(&db);
        Ok(())
    }
}
