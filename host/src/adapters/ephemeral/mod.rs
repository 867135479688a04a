//! `gpt-user:accounts/ephemeral` for the components: short-lived values (email-change codes,
//! their attempt counters) whose expiry is on the caller's clock. Spin's factor shape: a small
//! [`Backend`] trait, `ephemeral::Host` implemented once on top of it, and each backend in its own
//! module — [`SqlBackend`] (the store's `ephemeral` table, the default) and [`RedisBackend`]
//! (`GPT_USER_REDIS_URL`). A backend's failure is logged here, once, with the operation and the
//! key (never the value: codes are stored as their hashes, still not for a log), and reaches the
//! guest as the WIT `error`: `unavailable` when the backend cannot be reached (the flow answers
//! 503), `other` otherwise.

mod redis;
mod sql;

pub use self::redis::RedisBackend;
pub use self::sql::SqlBackend;

use gpt_user_core::ports::{StoreError, Timestamp};

use crate::bindings::ephemeral;
use crate::metrics::Metrics;
use crate::bindings::types::Error;
use crate::runtime::HostState;

/// Where ephemeral values live; the contract of each method is the WIT interface's
/// (`wit/ephemeral.wit`). Errors carry the backend's detail for the log; the guest never sees it.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// `sql` or `redis`, for logs.
    fn name(&self) -> &'static str;
    async fn put(&self, key: &str, value: &str, now: Timestamp, expires_at: Timestamp) -> Result<(), StoreError>;
    async fn get(&self, key: &str, now: Timestamp) -> Result<Option<String>, StoreError>;
    async fn increment(&self, key: &str, now: Timestamp, expires_at: Timestamp) -> Result<u32, StoreError>;
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}

impl ephemeral::Host for HostState {
    async fn put(&mut self, key: String, value: String, now: Timestamp, expires_at: Timestamp) -> Result<(), Error> {
        let result = self.shared.ephemeral.put(&key, &value, now, expires_at).await;
        logged(&*self.shared.ephemeral, &self.shared.metrics, "put", &key, result)
    }

    async fn get(&mut self, key: String, now: Timestamp) -> Result<Option<String>, Error> {
        let result = self.shared.ephemeral.get(&key, now).await;
        logged(&*self.shared.ephemeral, &self.shared.metrics, "get", &key, result)
    }

    async fn increment(&mut self, key: String, now: Timestamp, expires_at: Timestamp) -> Result<u32, Error> {
        let result = self.shared.ephemeral.increment(&key, now, expires_at).await;
        logged(&*self.shared.ephemeral, &self.shared.metrics, "increment", &key, result)
    }

    async fn delete(&mut self, key: String) -> Result<(), Error> {
        let result = self.shared.ephemeral.delete(&key).await;
        logged(&*self.shared.ephemeral, &self.shared.metrics, "delete", &key, result)
    }
}

/// [`reported`] and counted, as the WIT error the guest gets.
fn logged<T>(backend: &dyn Backend, metrics: &Metrics, op: &'static str, key: &str, result: Result<T, StoreError>) -> Result<T, Error> {
    if result.is_err() {
        metrics.ephemeral_error();
    }
    reported(backend, op, key, result).map_err(Into::into)
}

/// The one place a backend's failure is logged and turned into what a flow may act on
/// (`unavailable` or `other`, without the backend's detail): for the components and for the
/// benchmark's native baseline alike.
pub(crate) fn reported<T>(backend: &dyn Backend, op: &'static str, key: &str, result: Result<T, StoreError>) -> Result<T, StoreError> {
    result.map_err(|e| {
        tracing::warn!(backend = backend.name(), op, key, error = %e, "ephemeral store failed");
        match e {
            StoreError::Unavailable(_) => StoreError::Unavailable("ephemeral store unavailable".into()),
            _ => StoreError::Other("ephemeral store error".into()),
        }
    })
}

#[cfg(test)]
mod tests;
