//! The ephemeral store in Redis (`GPT_USER_REDIS_URL`).
//!
//! Expiry is judged on the caller's clock, as on every backend: a value is stored as
//! `<expires_at>|<value>` and a read compares `expires_at` with the caller's `now` (a test moves
//! that clock; Redis's TTL runs on the wall clock). The native TTL (`PX`, from `expires_at - now`)
//! only frees the space. A counter is a hash `{n, exp}` changed by one Lua script, so concurrent
//! increments each get their own count and an expired counter starts again at 1.
//!
//! One multiplexed connection, re-established after an outage ([`ConnectionManager`]). Every call
//! has [`DEADLINE`]: a Redis that is down or hangs answers `unavailable` within it instead of
//! holding the request. A call whose connection turns out dead is tried once more on the new one
//! (for `increment` that may count one attempt twice: the strict side).

use std::future::Future;
use std::time::Duration;

use gpt_user_core::ports::{StoreError, Timestamp};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, RedisResult, Script, ServerErrorKind};

use super::Backend;

/// The most one call may take, reconnecting included.
pub const DEADLINE: Duration = Duration::from_secs(2);
/// Connecting, and waiting for one reply: within [`DEADLINE`], leaving room for the one retry.
const STEP_TIMEOUT: Duration = Duration::from_millis(900);

/// `KEYS[1]` the counter, `ARGV[1]` now, `ARGV[2]` expires_at, `ARGV[3]` native TTL in ms.
/// Timestamps are milliseconds, exact in Lua's doubles.
const INCREMENT: &str = r"
local exp = tonumber(redis.call('HGET', KEYS[1], 'exp'))
if exp == nil or exp <= tonumber(ARGV[1]) then
    redis.call('HSET', KEYS[1], 'n', 1, 'exp', ARGV[2])
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return 1
end
return redis.call('HINCRBY', KEYS[1], 'n', 1)
";

pub struct RedisBackend {
    conn: ConnectionManager,
    increment: Script,
}

impl RedisBackend {
    /// Checks the URL and prepares the connection without opening it (needs a Tokio runtime): a
    /// Redis that is down at start makes the calls answer `unavailable` until it is up; it does
    /// not keep the host from starting. The error never contains the URL (it may hold a password).
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("GPT_USER_REDIS_URL is not a usable Redis URL: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(STEP_TIMEOUT))
            .set_response_timeout(Some(STEP_TIMEOUT))
            // A failed reconnect fails the waiting calls; the next call starts another. Few, short
            // retries: a long backoff would outlast every request's deadline.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| anyhow::anyhow!("cannot set up the Redis connection: {e}"))?;
        Ok(Self { conn, increment: Script::new(INCREMENT) })
    }

    /// `PING`, within the deadline (the host tells at start whether Redis answers).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await.map(drop) }).await
    }

    /// Runs `call` on the connection under [`DEADLINE`], once more if the connection was dead.
    async fn run<T, F, Fut>(&self, call: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let attempts = async {
            match call(self.conn.clone()).await {
                // The manager started reconnecting when it saw the dead connection; the second
                // call waits for that connection.
                Err(e) if is_connection_lost(&e) => call(self.conn.clone()).await,
                other => other,
            }
        };
        match tokio::time::timeout(DEADLINE, attempts).await {
            Ok(result) => result.map_err(error),
            Err(_) => Err(StoreError::Unavailable(format!("redis: no answer within {} ms", DEADLINE.as_millis()))),
        }
    }
}

#[async_trait::async_trait]
impl Backend for RedisBackend {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn put(&self, key: &str, value: &str, now: Timestamp, expires_at: Timestamp) -> Result<(), StoreError> {
        let stored = format!("{expires_at}|{value}");
        let ttl = native_ttl(now, expires_at);
        self.run(|mut c| {
            let cmd = redis::cmd("SET").arg(key).arg(&stored).arg("PX").arg(ttl).clone();
            async move { cmd.exec_async(&mut c).await }
        })
        .await
    }

    async fn get(&self, key: &str, now: Timestamp) -> Result<Option<String>, StoreError> {
        let stored = self
            .run(|mut c| {
                let cmd = redis::cmd("GET").arg(key).clone();
                async move { cmd.query_async::<Option<String>>(&mut c).await }
            })
            .await?;
        let Some(stored) = stored else { return Ok(None) };
        let (expires_at, value) = stored
            .split_once('|')
            .and_then(|(exp, value)| Some((exp.parse::<Timestamp>().ok()?, value)))
            .ok_or_else(|| StoreError::Other("redis: a value without its expiry".into()))?;
        Ok((expires_at > now).then(|| value.to_owned()))
    }

    async fn increment(&self, key: &str, now: Timestamp, expires_at: Timestamp) -> Result<u32, StoreError> {
        let ttl = native_ttl(now, expires_at);
        let count = self
            .run(|mut c| {
                let mut invocation = self.increment.key(key);
                invocation.arg(now).arg(expires_at).arg(ttl);
                async move { invocation.invoke_async::<i64>(&mut c).await }
            })
            .await?;
        u32::try_from(count).map_err(|_| StoreError::Other(format!("redis: counter out of range ({count})")))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.run(|mut c| {
            let cmd = redis::cmd("DEL").arg(key).clone();
            async move { cmd.exec_async(&mut c).await }
        })
        .await
    }
}

/// Redis's own TTL in ms: at least 1 (`PX 0` is refused), whatever the caller's clock says.
fn native_ttl(now: Timestamp, expires_at: Timestamp) -> i64 {
    expires_at.saturating_sub(now).max(1)
}

/// The connection broke or could not be made (not a slow reply: that used up its time already).
fn is_connection_lost(e: &RedisError) -> bool {
    (e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal()) && !e.is_timeout()
}

/// Redis's errors as the store's. A reply that does not parse is named by its kind only: the
/// detail could quote the value.
fn error(e: RedisError) -> StoreError {
    match e.kind() {
        ErrorKind::Io => StoreError::Unavailable(format!("redis: {e}")),
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly,
        ) => StoreError::Unavailable(format!("redis: {e}")),
        kind @ (ErrorKind::Parse | ErrorKind::UnexpectedReturnType) => StoreError::Other(format!("redis: unexpected reply ({kind:?})")),
        _ if e.is_connection_dropped() || e.is_timeout() => StoreError::Unavailable(format!("redis: {e}")),
        _ => StoreError::Other(format!("redis: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::native_ttl;

    #[test]
    fn the_native_ttl_is_the_time_left_and_never_below_one_ms() {
        assert_eq!(native_ttl(1_000, 61_000), 60_000);
        assert_eq!(native_ttl(1_000, 1_000), 1);
        assert_eq!(native_ttl(5_000, 1_000), 1);
    }
}
