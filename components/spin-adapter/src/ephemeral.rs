//! `gpt-user:accounts/ephemeral` on Spin SQLite: the shared SQL layer's `ephemeral` table, as our
//! host keeps it when no Redis is configured. Spin's SQLite has no TTL, and none is needed: every
//! read compares the stored expiry with the caller's clock, and housekeeping (in `mail.flush`)
//! deletes what expired.

use gpt_user_sql::{block_on, ephemeral};

use crate::bindings::exports::gpt_user::accounts::ephemeral::Guest;
use crate::bindings::exports::gpt_user::accounts::types::{Error, Timestamp};
use crate::db::Db;
use crate::Adapter;

impl Guest for Adapter {
    fn put(key: String, value: String, _now: Timestamp, expires_at: Timestamp) -> Result<(), Error> {
        let db = Db::open()?;
        Ok(block_on(ephemeral::put(&mut &db, &key, &value, expires_at))?)
    }

    fn get(key: String, now: Timestamp) -> Result<Option<String>, Error> {
        let db = Db::open()?;
        Ok(block_on(ephemeral::get(&mut &db, &key, now))?)
    }

    /// One upsert statement: SQLite runs one writer at a time, so concurrent calls (from any
    /// instance) each get their own count.
    fn increment(key: String, now: Timestamp, expires_at: Timestamp) -> Result<u32, Error> {
        let db = Db::open()?;
        Ok(block_on(ephemeral::increment(&mut &db, &key, now, expires_at))?)
    }

    fn delete(key: String) -> Result<(), Error> {
        let db = Db::open()?;
        Ok(block_on(ephemeral::delete(&mut &db, &key))?)
    }
}
