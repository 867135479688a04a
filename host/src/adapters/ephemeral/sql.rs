//! The ephemeral store in the SQL store's `ephemeral` table (SQLite or PostgreSQL), through the
//! shared SQL layer (`gpt_user_sql::ephemeral`, which the Spin adapter runs too). Every read checks
//! the expiry against the caller's clock; housekeeping deletes expired rows.

use gpt_user_core::ports::{StoreError, Timestamp};
use gpt_user_sql::ephemeral;

use super::Backend;
use crate::adapters::store::SqlStore;

/// On the host's [`SqlStore`] pool; each call one statement outside a transaction.
pub struct SqlBackend(pub SqlStore);

#[async_trait::async_trait]
impl Backend for SqlBackend {
    fn name(&self) -> &'static str {
        "sql"
    }

    async fn put(&self, key: &str, value: &str, _now: Timestamp, expires_at: Timestamp) -> Result<(), StoreError> {
        self.0.with_conn(async |c| ephemeral::put(c, key, value, expires_at).await).await
    }

    async fn get(&self, key: &str, now: Timestamp) -> Result<Option<String>, StoreError> {
        self.0.with_conn(async |c| ephemeral::get(c, key, now).await).await
    }

    async fn increment(&self, key: &str, now: Timestamp, expires_at: Timestamp) -> Result<u32, StoreError> {
        self.0.with_conn(async |c| ephemeral::increment(c, key, now, expires_at).await).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0.with_conn(async |c| ephemeral::delete(c, key).await).await
    }
}
