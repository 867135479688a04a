//! `gpt-user:accounts/store` for the components, over [`SqlStore`].

mod outbox;
pub mod schema;
mod sql;

pub use gpt_user_sql::outbox::OutboxRow;
pub use sql::{SqlStore, sqlite_path};

use gpt_user_sql::store::UserKey;

use crate::bindings::store::{self, EmailChange, Op};
use crate::bindings::types::{self, Error, Secret, SecretPurpose, User};
use crate::metrics::Tally;
use crate::runtime::HostState;

impl types::Host for HostState {}

impl store::Host for HostState {
    async fn find_user_by_email(&mut self, email: String) -> Result<Option<User>, Error> {
        find_user(&self.shared.store, UserKey::Email, &email).await
    }

    async fn find_user_by_pin(&mut self, pin: String) -> Result<Option<User>, Error> {
        find_user(&self.shared.store, UserKey::Pin, &pin).await
    }

    async fn find_user_by_id(&mut self, id: String) -> Result<Option<User>, Error> {
        find_user(&self.shared.store, UserKey::Id, &id).await
    }

    async fn find_secret(&mut self, hash: String, purpose: SecretPurpose, now: i64) -> Result<Option<Secret>, Error> {
        Ok(self.shared.store.find_secret(&hash, purpose.into(), now).await?.map(Into::into))
    }

    async fn find_email_change(&mut self, id: String) -> Result<Option<EmailChange>, Error> {
        Ok(self.shared.store.find_email_change(&id).await?.map(Into::into))
    }

    async fn find_oauth_client(&mut self, id: String) -> Result<Option<store::OauthClient>, Error> {
        Ok(self.shared.store.find_oauth_client(&id).await?.map(Into::into))
    }

    async fn find_oauth_token(&mut self, hash: String) -> Result<Option<(store::OauthToken, store::OauthGrant)>, Error> {
        Ok(self.shared.store.find_oauth_token(&hash).await?.map(|(t, g)| (t.into(), g.into())))
    }

    async fn apply(&mut self, ops: Vec<Op>) -> Result<(), Error> {
        let ops: Vec<gpt_user_core::ports::Op> = ops.into_iter().map(Into::into).collect();
        let tally = Tally::of(&ops);
        let result = self.shared.store.apply(ops).await;
        self.shared.metrics.applied(&tally, &result);
        Ok(result?)
    }
}

async fn find_user(store: &SqlStore, key: UserKey, value: &str) -> Result<Option<User>, Error> {
    Ok(store.find_user(key, value).await?.map(Into::into))
}
