//! The store and the outbox under several hosts: two dispatchers sharing one outbox through a
//! slow relay, four hosts migrating one fresh database at once; housekeeping by the last
//! sign-up attempt; a status the code does not know cannot be stored.
//!
//! The multi-host tests start `gpt_user::Application`s of their own on one PostgreSQL database
//! (the helpers give each app its own database).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use gpt_user::{Application, Config, Secret};
use gpt_user_test_support::smtp::{Inbox, SinkOptions, SmtpSink};
use serde_json::json;

use crate::helpers::{Backend, PASSPHRASE, drop_postgres_database, email, fresh_postgres_database, init_logging, spawn_app};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// A fresh PostgreSQL database for hosts this test starts; dropped with the value.
struct PgDatabase {
    admin: String,
    name: String,
}

impl PgDatabase {
    async fn fresh() -> Self {
        let (admin, name) = fresh_postgres_database().await;
        Self { admin, name }
    }

    fn url(&self) -> String {
        let (server, _) = self.admin.rsplit_once('/').unwrap();
        format!("{server}/{}", self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        drop_postgres_database(self.admin.clone(), self.name.clone());
    }
}

/// One host of a multi-host test: its own data dir, the shared database and relay.
fn host_config(database_url: &str, smtp: &SmtpSink) -> (Config, PathBuf) {
    let dir = std::env::temp_dir().join(format!("gpt-user-test-{}", uuid::Uuid::new_v4().simple()));
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        dev: true,
        data_dir: dir.clone(),
        database_url: Some(Secret::new(database_url)),
        smtp_url: Some(Secret::new(format!("smtp://{}", smtp.addr))),
        mail_retry_base_ms: 100,
        mail_retry_max_ms: 400,
        mail_poll_ms: 50,
        ..Config::default()
    };
    (config, dir)
}

/// Message-ID → how many times the relay accepted it.
fn deliveries(inbox: &Inbox) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for m in inbox.messages.lock().unwrap().iter() {
        let parsed = mail_parser::MessageParser::default().parse(&m.raw).expect("a parsable message");
        *seen.entry(parsed.message_id().unwrap_or_default().to_owned()).or_default() += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_deliver_every_outbox_message_exactly_once_through_a_relay_slower_than_the_lease() {
    init_logging();
    // Every message takes the relay 1 s to accept; a lease lasts 500 ms unless renewed.
    let sink = SmtpSink::start_with_options("127.0.0.1:0", Inbox::default(), SinkOptions { delay_after_data: Duration::from_secs(1) })
        .await
        .unwrap();
    let db = PgDatabase::fresh().await;
    let mut apps = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..2 {
        let (mut config, dir) = host_config(&db.url(), &sink);
        config.mail_lease_ms = 500;
        apps.push(Application::build(config).await.expect("the host starts"));
        dirs.push(dir);
    }

    // Queued before either dispatcher runs, so both race for the same rows from the start.
    let pool = apps[0].db();
    let now = gpt_user::clock::system_now_ms();
    let mut ids = Vec::new();
    for i in 0..10 {
        let id = uuid::Uuid::new_v4().simple().to_string();
        sqlx::query(
            "INSERT INTO outbox (id, recipient, kind, subject, text_body, html_body, queued_at, next_attempt_at) \
             VALUES ($1, $2, 'test', $3, 'text', '<p>html</p>', $4, $4)",
        )
        .bind(&id)
        .bind(email("lease"))
        .bind(format!("message {i}"))
        .bind(now + i)
        .execute(&pool)
        .await
        .unwrap();
        ids.push(id);
    }
    let stoppers: Vec<_> = apps.iter().map(Application::stopper).collect();
    for app in apps {
        tokio::spawn(app.run_until_stopped());
    }

    let mut unsent = i64::MAX;
    for _ in 0..600 {
        (unsent,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetch_one(&pool).await.unwrap();
        if unsent == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(unsent, 0, "every message was marked sent");
    // A duplicate still on its way would arrive within one relay delay.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for stop in &stoppers {
        stop.notify_waiters();
    }

    let seen = deliveries(&sink.inbox);
    for id in &ids {
        assert_eq!(seen.get(&format!("{id}@gpt-user")).copied().unwrap_or(0), 1, "message {id} delivered exactly once: {seen:?}");
    }
    assert_eq!(seen.values().sum::<usize>(), ids.len(), "nothing else was delivered: {seen:?}");
    let (leased,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE lease_id IS NOT NULL OR text_body <> ''").fetch_one(&pool).await.unwrap();
    assert_eq!(leased, 0, "sent rows hold no lease and no body");
    pool.close().await;
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_hosts_starting_at_once_on_a_fresh_postgres_database_all_come_up_and_serve() {
    init_logging();
    let sink = SmtpSink::start("127.0.0.1:0").await.unwrap();
    let db = PgDatabase::fresh().await;
    let configs: Vec<(Config, PathBuf)> = (0..4).map(|_| host_config(&db.url(), &sink)).collect();
    let builds = configs.iter().map(|(config, _)| Application::build(config.clone()));
    let results = futures::future::join_all(builds).await;
    let mut apps = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(app) => apps.push(app),
            Err(e) => panic!("host {i} did not start: {e:#}"),
        }
    }
    let (versions,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM schema_migrations").fetch_one(&apps[0].db()).await.unwrap();
    let migrations = gpt_user_sql::schema::MIGRATIONS.len() as i64;
    assert_eq!(versions, migrations, "each migration is recorded once");

    // The last host to come up serves a sign-up end to end.
    let app = apps.pop().unwrap();
    let (base, stop, pool) = (format!("http://{}", app.local_addr()), app.stopper(), app.db());
    tokio::spawn(app.run_until_stopped());
    let to = email("migrate");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = client
        .post(format!("{base}/api/signup/init"))
        .json(&json!({"email": to, "consent": true, "locale": "en", "passphrase": PASSPHRASE}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (status,): (String,) = sqlx::query_as("SELECT status FROM users WHERE email = $1").bind(&to).fetch_one(&pool).await.unwrap();
    assert_eq!(status, "pending");
    stop.notify_waiters();
    pool.close().await;
    drop(apps);
    for (_, dir) in configs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

async fn pending_user_exists(db: &sqlx::AnyPool, email: &str) -> bool {
    let found: Option<(String,)> = sqlx::query_as("SELECT status FROM users WHERE email = $1").bind(email).fetch_optional(db).await.unwrap();
    found.is_some_and(|(status,)| status == "pending")
}

async fn a_pending_account_is_deleted_seven_days_after_its_last_sign_up_not_its_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let to = email("housekeep");
    assert_eq!(app.sign_up(&to, "en").await.status(), 201);
    app.next_mail(&to).await;

    control.clock.advance(6 * DAY);
    assert_eq!(app.sign_up(&to, "en").await.status(), 201, "a re-sign-up replaces the pending account");
    app.next_mail(&to).await;

    // Day 8 after the first sign-up, day 2 after the last one.
    control.clock.advance(2 * DAY);
    assert_eq!((control.housekeep)().await.unwrap(), 0);
    assert!(pending_user_exists(&control.db, &to).await, "kept: the last attempt is 2 days old");

    control.clock.advance(5 * DAY - Duration::from_secs(60));
    assert_eq!((control.housekeep)().await.unwrap(), 0);
    assert!(pending_user_exists(&control.db, &to).await, "kept: the last attempt is a minute short of 7 days old");

    control.clock.advance(Duration::from_secs(120));
    assert_eq!((control.housekeep)().await.unwrap(), 1);
    assert!(!pending_user_exists(&control.db, &to).await, "deleted 7 days after the last attempt");
}

async fn the_database_refuses_a_user_row_with_an_unknown_status(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let insert = |status: &'static str| {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        sqlx::query(
            "INSERT INTO users (id, email, pin, passphrase_hash, locale, status, email_verified, consent_at, policy_version, created_at, updated_at) \
             VALUES ($1, $2, $3, 'x', 'en', $4, 0, 0, '1', 0, 0)",
        )
        .bind(tag.clone())
        .bind(format!("{tag}@example.com"))
        .bind(tag[..12].to_owned())
        .bind(status)
        .execute(&control.db)
    };
    let refused = insert("frozen").await.expect_err("an unknown status is refused");
    let sqlx::Error::Database(db_error) = &refused else { panic!("not a database error: {refused}") };
    // PostgreSQL: check_violation; SQLite: SQLITE_CONSTRAINT_CHECK.
    let code = db_error.code().unwrap_or_default().into_owned();
    assert!(code == "23514" || code == "275", "a CHECK violation, got {code}: {db_error}");
    assert!(db_error.message().contains("users_status_check") || db_error.message().contains("CHECK constraint failed"), "{db_error}");
    for known in ["pending", "active", "blocked"] {
        insert(known).await.unwrap_or_else(|e| panic!("{known} is stored: {e}"));
    }
}

crate::on_both_backends!(
    a_pending_account_is_deleted_seven_days_after_its_last_sign_up_not_its_first,
    the_database_refuses_a_user_row_with_an_unknown_status,
);
