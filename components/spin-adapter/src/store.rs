//! `gpt-user:accounts/store` on Spin SQLite: the shared SQL layer (`gpt-user-sql`, which our host
//! runs too) on [`Db`], each `apply` in one `BEGIN IMMEDIATE` transaction.

use gpt_user_sql::{block_on, store::{self, UserKey}};

use crate::bindings::exports::gpt_user::accounts::store::{EmailChange, Guest, OauthClient, OauthGrant, OauthToken, Op};
use crate::bindings::exports::gpt_user::accounts::types::{Error, Secret, SecretPurpose, Timestamp, User};
use crate::db::Db;
use crate::Adapter;

impl Guest for Adapter {
    fn find_user_by_email(email: String) -> Result<Option<User>, Error> {
        find_user(UserKey::Email, &email)
    }

    fn find_user_by_pin(pin: String) -> Result<Option<User>, Error> {
        find_user(UserKey::Pin, &pin)
    }

    fn find_user_by_id(id: String) -> Result<Option<User>, Error> {
        find_user(UserKey::Id, &id)
    }

    fn find_secret(hash: String, purpose: SecretPurpose, now: Timestamp) -> Result<Option<Secret>, Error> {
        let db = Db::open()?;
        Ok(block_on(store::find_secret(&mut &db, &hash, purpose.into(), now))?.map(Into::into))
    }

    fn find_email_change(id: String) -> Result<Option<EmailChange>, Error> {
        let db = Db::open()?;
        Ok(block_on(store::find_email_change(&mut &db, &id))?.map(Into::into))
    }

    fn find_oauth_client(id: String) -> Result<Option<OauthClient>, Error> {
        let db = Db::open()?;
        Ok(block_on(gpt_user_sql::oauth::find_client(&mut &db, &id))?.map(Into::into))
    }

    fn find_oauth_token(hash: String) -> Result<Option<(OauthToken, OauthGrant)>, Error> {
        let db = Db::open()?;
        Ok(block_on(gpt_user_sql::oauth::find_token(&mut &db, &hash))?.map(|(t, g)| (t.into(), g.into())))
    }

    fn apply(ops: Vec<Op>) -> Result<(), Error> {
        let db = Db::open()?;
        // Queued mail is not delivered here: the flow has not answered yet, and a relay that
        // hangs would hang the answer. The flow calls `mail.flush` after its answer.
        db.transaction(|db| ops.into_iter().try_for_each(|op| block_on(store::apply_one(&mut &*db, op.into()))))?;
        Ok(())
    }
}

fn find_user(key: UserKey, value: &str) -> Result<Option<User>, Error> {
    let db = Db::open()?;
    Ok(block_on(store::find_user(&mut &db, key, value))?.map(Into::into))
}
