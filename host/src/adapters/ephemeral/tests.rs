//! Both backends against real servers: a `redis-server` the test starts on a free port, a SQLite
//! file, a fresh PostgreSQL database (`GPT_USER_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Every backend passes the same contract; Redis
//! also shows its outages answer `unavailable` in time and end by themselves; the SQL table is
//! cleared of what expired by housekeeping (with the expired email changes).

use std::time::{Duration, Instant};

use gpt_user_core::ports::StoreError;
use gpt_user_test_support::postgres::PgDatabase;
use gpt_user_test_support::redis::RedisServer;

use super::redis::DEADLINE;
use super::{Backend, RedisBackend, SqlBackend, logged};
use crate::adapters::store::SqlStore;
use crate::bindings::types::Error;

/// A fixed caller's clock, far from the wall clock: expiry must follow it, not Redis's TTL.
const NOW: i64 = 1_000_000_000_000;
const MINUTE: i64 = 60_000;

/// The contract of `wit/ephemeral.wit`, on the caller's clock.
async fn values_expire_on_the_callers_clock(b: &dyn Backend) {
    assert_eq!(b.get("ec:code:a", NOW).await.unwrap(), None, "nothing stored yet");
    b.put("ec:code:a", "hash|with|bars", NOW, NOW + 10 * MINUTE).await.unwrap();
    assert_eq!(b.get("ec:code:a", NOW).await.unwrap().as_deref(), Some("hash|with|bars"));
    assert_eq!(b.get("ec:code:a", NOW + 10 * MINUTE - 1).await.unwrap().as_deref(), Some("hash|with|bars"));
    assert_eq!(b.get("ec:code:a", NOW + 10 * MINUTE).await.unwrap(), None, "expired at expires_at");
    // A put replaces the value and its expiry.
    b.put("ec:code:a", "second", NOW + 20 * MINUTE, NOW + 21 * MINUTE).await.unwrap();
    assert_eq!(b.get("ec:code:a", NOW + 20 * MINUTE).await.unwrap().as_deref(), Some("second"));
    b.delete("ec:code:a").await.unwrap();
    assert_eq!(b.get("ec:code:a", NOW + 20 * MINUTE).await.unwrap(), None, "deleted");
    b.delete("ec:code:a").await.unwrap();
    // Already expired when stored (Redis still needs a positive TTL).
    b.put("ec:code:b", "late", NOW, NOW - 1).await.unwrap();
    assert_eq!(b.get("ec:code:b", NOW).await.unwrap(), None);
}

async fn counters_count_until_they_expire_then_start_again(b: &dyn Backend) {
    let key = "ec:tries:flow:confirm_current";
    for n in 1..=3 {
        assert_eq!(b.increment(key, NOW + n as i64, NOW + 10 * MINUTE).await.unwrap(), n);
    }
    // A later expiry given with a live counter does not extend it.
    assert_eq!(b.increment(key, NOW + 10 * MINUTE - 1, NOW + 99 * MINUTE).await.unwrap(), 4);
    assert_eq!(b.increment(key, NOW + 10 * MINUTE, NOW + 20 * MINUTE).await.unwrap(), 1, "expired: starts again");
    assert_eq!(b.increment(key, NOW + 19 * MINUTE, NOW + 30 * MINUTE).await.unwrap(), 2, "lives until the new expiry");
    assert_eq!(b.increment(key, NOW + 20 * MINUTE, NOW + 30 * MINUTE).await.unwrap(), 1);
    b.delete(key).await.unwrap();
    assert_eq!(b.increment(key, NOW + 20 * MINUTE, NOW + 30 * MINUTE).await.unwrap(), 1, "deleted: starts again");
}

/// 32 calls at once each get their own count.
async fn concurrent_increments_each_get_their_own_count(b: std::sync::Arc<dyn Backend>) {
    let calls = (0..32).map(|_| {
        let b = b.clone();
        tokio::spawn(async move { b.increment("ec:tries:race:confirm_new", NOW, NOW + MINUTE).await })
    });
    let mut counts: Vec<u32> = join_all(calls).await.into_iter().map(|r| r.unwrap()).collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=32).collect::<Vec<u32>>());
}

async fn join_all<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.unwrap());
    }
    out
}

async fn the_whole_contract(b: std::sync::Arc<dyn Backend>) {
    values_expire_on_the_callers_clock(&*b).await;
    counters_count_until_they_expire_then_start_again(&*b).await;
    concurrent_increments_each_get_their_own_count(b).await;
}

fn redis_backend(server: &RedisServer) -> std::sync::Arc<dyn Backend> {
    std::sync::Arc::new(RedisBackend::new(&server.url()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_backend_keeps_the_contract() {
    let server = RedisServer::start().unwrap();
    the_whole_contract(redis_backend(&server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_backend_keeps_the_contract() {
    let dir = std::env::temp_dir().join(format!("gpt-user-ephemeral-{}", uuid::Uuid::new_v4().simple()));
    let store = SqlStore::connect(&format!("sqlite://{}?mode=rwc", dir.join("e.db").display())).await.unwrap();
    the_whole_contract(std::sync::Arc::new(SqlBackend(store))).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_backend_keeps_the_contract() {
    let db = PgDatabase::fresh().await;
    let store = SqlStore::connect(&db.url()).await.unwrap();
    the_whole_contract(std::sync::Arc::new(SqlBackend(store.clone()))).await;
    store.pool().close().await;
}

/// Housekeeping deletes the table's expired values and expired email changes, and keeps the rest.
async fn housekeeping_deletes_what_expired(store: SqlStore) {
    let b = SqlBackend(store.clone());
    b.put("ec:code:old", "h", NOW - MINUTE, NOW).await.unwrap();
    b.put("ec:code:live", "h", NOW, NOW + 1).await.unwrap();
    b.increment("ec:tries:old:confirm_new", NOW - MINUTE, NOW - 1).await.unwrap();
    b.increment("ec:tries:live:confirm_new", NOW, NOW + MINUTE).await.unwrap();
    sqlx::query(
        "INSERT INTO users (id, email, pin, passphrase_hash, locale, status, email_verified, consent_at, policy_version, created_at, updated_at) \
         VALUES ('u1', 'ann@example.com', '123456', 'x', 'en', 'active', 1, $1, '1', $2, $3)",
    )
    .bind(NOW)
    .bind(NOW)
    .bind(NOW)
    .execute(store.pool())
    .await
    .unwrap();
    for (id, expires_at) in [("change-old", NOW), ("change-live", NOW + 1)] {
        sqlx::query(
            "INSERT INTO email_changes (id, user_id, state, code_ref, sends, last_send_at, created_at, expires_at, version) \
             VALUES ($1, 'u1', 'confirm_current', 'r', 1, $2, $3, $4, 0)",
        )
        .bind(id)
        .bind(NOW - MINUTE)
        .bind(NOW - MINUTE)
        .bind(expires_at)
        .execute(store.pool())
        .await
        .unwrap();
    }
    store.housekeep(NOW, NOW - 7 * 24 * 60 * MINUTE, gpt_user_sql::housekeeping::EVENTS_RETENTION_DAYS).await.unwrap();
    let keys: Vec<(String,)> = sqlx::query_as("SELECT key FROM ephemeral ORDER BY key").fetch_all(store.pool()).await.unwrap();
    assert_eq!(keys, [("ec:code:live".to_owned(),), ("ec:tries:live:confirm_new".to_owned(),)]);
    let changes: Vec<(String,)> = sqlx::query_as("SELECT id FROM email_changes").fetch_all(store.pool()).await.unwrap();
    assert_eq!(changes, [("change-live".to_owned(),)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_housekeeping_deletes_expired_ephemeral_values_and_email_changes() {
    let dir = std::env::temp_dir().join(format!("gpt-user-ephemeral-{}", uuid::Uuid::new_v4().simple()));
    housekeeping_deletes_what_expired(SqlStore::connect(&format!("sqlite://{}?mode=rwc", dir.join("e.db").display())).await.unwrap()).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_housekeeping_deletes_expired_ephemeral_values_and_email_changes() {
    let db = PgDatabase::fresh().await;
    let store = SqlStore::connect(&db.url()).await.unwrap();
    housekeeping_deletes_what_expired(store.clone()).await;
    store.pool().close().await;
}

/// Redis holds `<expires_at>|<value>` with a native TTL of what is left, only to free the space.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frees_the_space_with_a_native_ttl_only() {
    let server = RedisServer::start().unwrap();
    let b = RedisBackend::new(&server.url()).unwrap();
    b.put("k", "v", NOW, NOW + MINUTE).await.unwrap();
    b.increment("n", NOW, NOW + 2 * MINUTE).await.unwrap();
    let mut raw = redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let stored: String = redis::cmd("GET").arg("k").query_async(&mut raw).await.unwrap();
    assert_eq!(stored, format!("{}|v", NOW + MINUTE));
    for (key, ttl) in [("k", MINUTE), ("n", 2 * MINUTE)] {
        let left: i64 = redis::cmd("PTTL").arg(key).query_async(&mut raw).await.unwrap();
        assert!(0 < left && left <= ttl, "{key}: PTTL {left}");
    }
}

/// Stopped (refused connections) or hanging (no answer): every call answers `unavailable` within
/// the deadline; once the server is back, the next call works on a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outages_answer_unavailable_in_time_and_end_when_redis_is_back() {
    let mut server = RedisServer::start().unwrap();
    let b = RedisBackend::new(&server.url()).unwrap();
    b.put("k", "v", NOW, NOW + MINUTE).await.unwrap();

    server.stop();
    assert_unavailable_in_time(&b).await;
    server.restart().unwrap();
    assert_eq!(b.increment("n", NOW, NOW + MINUTE).await.unwrap(), 1, "the first call after the restart works");
    assert_eq!(b.get("k", NOW).await.unwrap(), None, "a restarted Redis (no persistence) is empty");

    server.pause().unwrap();
    assert_unavailable_in_time(&b).await;
    server.resume().unwrap();
    // Replies to the calls that timed out may still arrive first on the old connection; the
    // manager matches replies to calls, so the next calls see their own answers.
    b.put("k", "back", NOW, NOW + MINUTE).await.unwrap();
    assert_eq!(b.get("k", NOW).await.unwrap().as_deref(), Some("back"));
}

/// A Redis that is down when the backend is made: calls answer `unavailable` until it is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_down_at_start_answers_unavailable_until_it_is_up() {
    let mut server = RedisServer::start().unwrap();
    server.stop();
    let b = RedisBackend::new(&server.url()).unwrap();
    assert!(matches!(b.ping().await, Err(StoreError::Unavailable(_))));
    server.restart().unwrap();
    b.ping().await.unwrap();
    assert_eq!(b.increment("n", NOW, NOW + MINUTE).await.unwrap(), 1);
}

async fn assert_unavailable_in_time(b: &RedisBackend) {
    for call in ["put", "get", "increment", "delete"] {
        let started = Instant::now();
        let result = match call {
            "put" => b.put("k", "v", NOW, NOW + MINUTE).await.map(drop),
            "get" => b.get("k", NOW).await.map(drop),
            "increment" => b.increment("n", NOW, NOW + MINUTE).await.map(drop),
            _ => b.delete("k").await,
        };
        let took = started.elapsed();
        assert!(matches!(result, Err(StoreError::Unavailable(_))), "{call}: {result:?}");
        assert!(took <= DEADLINE + Duration::from_millis(500), "{call} took {took:?}");
    }
}

#[test]
fn a_backend_failure_reaches_the_guest_as_unavailable_or_other_without_its_detail() {
    let (b, metrics) = (NameOnly, crate::metrics::Metrics::new());
    let down = logged::<()>(&b, &metrics, "get", "ec:code:x", Err(StoreError::Unavailable("redis: Connection refused".into())));
    assert!(matches!(&down, Err(Error::Unavailable(why)) if why == "ephemeral store unavailable"), "{down:?}");
    let broken = logged::<()>(&b, &metrics, "get", "ec:code:x", Err(StoreError::Other("redis: WRONGTYPE".into())));
    assert!(matches!(&broken, Err(Error::Other(why)) if why == "ephemeral store error"), "{broken:?}");
    assert!(matches!(logged(&b, &metrics, "get", "ec:code:x", Ok(7)), Ok(7)));
    assert!(metrics.encode().contains("gpt_user_ephemeral_store_errors_total 2\n"), "both failures counted: {}", metrics.encode());
}

/// A backend that is only a name, for [`logged`].
struct NameOnly;

#[async_trait::async_trait]
impl Backend for NameOnly {
    fn name(&self) -> &'static str {
        "test"
    }
    async fn put(&self, _: &str, _: &str, _: i64, _: i64) -> Result<(), StoreError> {
        unreachable!()
    }
    async fn get(&self, _: &str, _: i64) -> Result<Option<String>, StoreError> {
        unreachable!()
    }
    async fn increment(&self, _: &str, _: i64, _: i64) -> Result<u32, StoreError> {
        unreachable!()
    }
    async fn delete(&self, _: &str) -> Result<(), StoreError> {
        unreachable!()
    }
}
