//! `gpt-user:accounts/store` for the components, over [`SqlStore`].

mod outbox;
pub mod schema;
mod sql;

pub use outbox::OutboxRow;
pub use sql::SqlStore;

use crate::bindings::store::{self, Op};
use crate::bindings::types::{self, Error, Secret, SecretPurpose, User};
use crate::runtime::HostState;

impl types::Host for HostState {}

impl store::Host for HostState {
    async fn find_user_by_email(&mut self, email: String) -> Result<Option<User>, Error> {
        self.shared.store.find_user(false, &email).await
    }

    async fn find_user_by_pin(&mut self, pin: String) -> Result<Option<User>, Error> {
        self.shared.store.find_user(true, &pin).await
    }

    async fn find_secret(&mut self, hash: String, purpose: SecretPurpose, now: i64) -> Result<Option<Secret>, Error> {
        self.shared.store.find_secret(&hash, purpose, now).await
    }

    async fn apply(&mut self, ops: Vec<Op>) -> Result<(), Error> {
        self.shared.store.apply(ops).await
    }
}
