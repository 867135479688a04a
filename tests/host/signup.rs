//! SPEC §2.1 on the in-process host: what needs its clock, its database or its configuration.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, Options, PASSPHRASE, email, spawn_app, spawn_with};
use crate::on_both_backends;

on_both_backends!(
    an_expired_verification_link_answers_410,
    a_second_signup_of_a_pending_address_replaces_it_with_a_new_pin_and_revokes_the_old_link,
    housekeeping_deletes_pending_accounts_after_seven_days,
    gpt_actions_need_the_api_key_when_keys_are_configured,
    passphrases_and_tokens_are_stored_only_as_hashes,
);

async fn an_expired_verification_link_answers_410(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let to = email("late");
    app.sign_up(&to, "en").await;
    let token = app.next_mail(&to).await.token();
    control.clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert_eq!(app.verify(&token).await.status(), 410);
    let (status,): (String,) = sqlx::query_as("SELECT status FROM users WHERE email = $1").bind(&to).fetch_one(&control.db).await.unwrap();
    assert_eq!(status, "pending");
}

async fn a_second_signup_of_a_pending_address_replaces_it_with_a_new_pin_and_revokes_the_old_link(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let to = email("twice");
    let first: Value = app.sign_up(&to, "en").await.json().await.unwrap();
    let old_token = app.next_mail(&to).await.token();
    control.clock.advance(Duration::from_secs(61));
    let r = app.sign_up_with(&to, "ru", "a different long passphrase").await;
    assert_eq!(r.status(), 201);
    let second: Value = r.json().await.unwrap();
    assert_ne!(second["pin"], first["pin"], "a new PIN: the earlier caller's PIN is not handed on");
    let new_mail = app.next_mail(&to).await;
    assert!(new_mail.text.contains(second["pin"].as_str().unwrap()), "the email shows the new PIN");
    assert_eq!(new_mail.subject, "Подтвердите адрес электронной почты", "the new locale is used");
    assert_eq!(app.verify(&old_token).await.status(), 410, "the old link is revoked");
    assert_eq!(app.verify(&new_mail.token()).await.status(), 200);
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE email = $1").bind(&to).fetch_one(&control.db).await.unwrap();
    assert_eq!(n, 1);
}

async fn housekeeping_deletes_pending_accounts_after_seven_days(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let pending = email("pending");
    let active = email("active");
    app.sign_up(&pending, "en").await;
    app.active_user(&active).await;
    control.clock.advance(Duration::from_secs(6 * 24 * 3600));
    assert_eq!((control.housekeep)().await.unwrap(), 0, "six days old: kept");
    control.clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert_eq!((control.housekeep)().await.unwrap(), 1);
    let emails: Vec<(String,)> = sqlx::query_as("SELECT email FROM users").fetch_all(&control.db).await.unwrap();
    assert_eq!(emails, vec![(active,)], "only the verified account is left");
    let (secrets,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM secrets").fetch_one(&control.db).await.unwrap();
    assert_eq!(secrets, 0);
}

async fn gpt_actions_need_the_api_key_when_keys_are_configured(backend: Backend) {
    let mut options = Options::new(backend);
    options.api_keys = Some("test-key-one-5d1c9e,test-key-two-77af01");
    let app = spawn_with(options).await;
    let body = json!({"email": email("key"), "consent": true, "locale": "en", "passphrase": PASSPHRASE});
    let url = app.url("/api/signup/init");
    let none = app.client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    assert_eq!(none.json::<Value>().await.unwrap()["code"], "API_KEY_REQUIRED");
    let wrong = app.client.post(&url).bearer_auth("test-key-one-5d1c9f").json(&body).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let short = app.client.post(&url).bearer_auth("t").json(&body).send().await.unwrap();
    assert_eq!(short.status(), 401);
    let second = app.client.post(&url).bearer_auth("test-key-two-77af01").json(&body).send().await.unwrap();
    assert_eq!(second.status(), 201);
}

async fn passphrases_and_tokens_are_stored_only_as_hashes(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let to = email("hash");
    app.sign_up(&to, "en").await;
    let token = app.next_mail(&to).await.token();
    let (hash,): (String,) = sqlx::query_as("SELECT passphrase_hash FROM users WHERE email = $1").bind(&to).fetch_one(&control.db).await.unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    assert!(!hash.contains(PASSPHRASE));
    let (stored,): (String,) = sqlx::query_as("SELECT hash FROM secrets").fetch_one(&control.db).await.unwrap();
    use sha2::Digest as _;
    let expected: String = sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(stored, expected, "the token is kept as its SHA-256 only");
    // The mail was delivered (we read it): its bodies, which held the link, are gone from the outbox.
    let mut rows: Vec<(String, String, Option<i64>)> = Vec::new();
    for _ in 0..50 {
        rows = sqlx::query_as("SELECT text_body, html_body, sent_at FROM outbox").fetch_all(&control.db).await.unwrap();
        if rows.iter().all(|r| r.2.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].0.as_str(), rows[0].1.as_str()), ("", ""), "no token stays in the outbox after delivery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_answers_503_not_500() {
    let app = spawn_app(Backend::Postgres).await;
    let control = app.control();
    assert_eq!(app.sign_up(&email("before"), "en").await.status(), 201);
    control.kill_postgres_database().await;
    let r = app.sign_up(&email("during"), "en").await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE");
    assert!(!body.to_string().to_lowercase().contains("database"), "no internals in the body: {body}");
    assert_eq!(app.verify(&"A".repeat(43)).await.status(), 503);
}

/// The largest Argon2 cost `Config::validate` lets through for an instance's memory limit
/// (the limit less 8 MiB) still hashes: sign-up and Auth_Check answer, nothing traps. A cost
/// above it is refused at start, so it can never make every sign-up a `500`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_argon2_cost_the_memory_limit_admits_signs_up_and_checks() {
    let mut options = Options::new(Backend::Sqlite);
    options.config = Some(|c| {
        c.memory_limit_mib = 32;
        c.argon2_m_kib = 24 << 10;
    });
    let app = spawn_with(options).await;
    let pin = app.active_user(&email("big-argon2")).await;
    let a = app.auth_answer(&json!(pin), PASSPHRASE).await;
    assert_eq!(a.status, 200, "{}", a.body);

    let mut refused = gpt_user::Config { dev: true, memory_limit_mib: 32, argon2_m_kib: (24 << 10) + 1, ..gpt_user::Config::default() };
    let err = refused.validate().unwrap_err().to_string();
    assert!(err.contains("GPT_USER_ARGON2_M_KIB"), "{err}");
    refused.memory_limit_mib = 33;
    assert!(refused.validate().is_ok(), "a larger memory limit admits it");
}
