//! SPEC §2.1 over HTTP, on SQLite and on PostgreSQL.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, Options, PASSPHRASE, email, spawn_app, spawn_with};
use crate::on_both_backends;

on_both_backends!(
    signup_answers_201_with_the_pin_and_emails_the_verification_link,
    signup_in_russian_sends_the_email_in_russian,
    verify_activates_the_account_once_and_then_answers_410,
    an_expired_verification_link_answers_410,
    a_second_signup_of_a_pending_address_replaces_it_keeps_the_pin_and_revokes_the_old_link,
    signup_of_an_active_address_is_409_with_the_recovery_url,
    signup_without_consent_is_422_consent_required,
    thirty_two_concurrent_verifies_of_one_token_have_exactly_one_winner,
    concurrent_signups_of_one_new_address_make_one_account,
    a_second_email_within_a_minute_is_throttled_with_retry_after,
    housekeeping_deletes_pending_accounts_after_seven_days,
    gpt_actions_need_the_api_key_when_keys_are_configured,
    conceal_mode_answers_alike_for_new_and_taken_addresses,
    passphrases_and_tokens_are_stored_only_as_hashes,
);

async fn signup_answers_201_with_the_pin_and_emails_the_verification_link(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("ann");
    let r = app.sign_up(&to.to_uppercase(), "en").await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let pin = body["pin"].as_str().unwrap();
    assert_eq!(pin.len(), 6);
    assert!(pin.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(body["status"], "pending");
    assert!(body["instructions"].as_str().unwrap().contains(pin));
    assert!(!body.to_string().contains(PASSPHRASE));

    let mail = app.next_mail(&to).await;
    assert_eq!(mail.subject, "Confirm your email address");
    assert!(mail.text.contains(pin), "the PIN is in the text part");
    assert!(mail.html.contains(pin), "the PIN is in the HTML part");
    let link = mail.link();
    assert!(link.starts_with(&format!("{}/signup/verify#token=", app.base)), "{link}");
    assert_eq!(mail.token().len(), 43);
    assert!(mail.html.contains(&link), "the HTML part carries the same link");
    assert!(mail.text.contains("24 hours"), "the email says how long the link is valid");
    assert!(mail.text.contains("If you did not sign up"), "the email says what to do if unasked");
}

async fn signup_in_russian_sends_the_email_in_russian(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("ivan");
    let r = app.sign_up(&to, "ru-RU").await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().starts_with("Почти готово"));
    let mail = app.next_mail(&to).await;
    assert_eq!(mail.subject, "Подтвердите адрес электронной почты");
    assert!(mail.text.contains("Ссылка действительна 24 ч."));
    assert!(mail.html.contains("Подтвердить адрес"));
}

async fn verify_activates_the_account_once_and_then_answers_410(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("bob");
    assert_eq!(app.sign_up(&to, "en").await.status(), 201);
    let token = app.next_mail(&to).await.token();
    let r = app.verify(&token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "active");
    let again = app.verify(&token).await;
    assert_eq!(again.status(), 410);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["code"], "INVALID_TOKEN");
    assert!(body["instructions"].as_str().unwrap().contains("sign you up again"));
    let garbage = app.verify("not-a-token").await;
    assert_eq!(garbage.status(), 410);
}

async fn an_expired_verification_link_answers_410(backend: Backend) {
    let app = spawn_app(backend).await;
    let Some(control) = app.control() else { return };
    let to = email("late");
    app.sign_up(&to, "en").await;
    let token = app.next_mail(&to).await.token();
    control.clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert_eq!(app.verify(&token).await.status(), 410);
    let (status,): (String,) = sqlx::query_as("SELECT status FROM users WHERE email = $1").bind(&to).fetch_one(&control.db).await.unwrap();
    assert_eq!(status, "pending");
}

async fn a_second_signup_of_a_pending_address_replaces_it_keeps_the_pin_and_revokes_the_old_link(backend: Backend) {
    let app = spawn_app(backend).await;
    let Some(control) = app.control() else { return };
    let to = email("twice");
    let first: Value = app.sign_up(&to, "en").await.json().await.unwrap();
    let old_token = app.next_mail(&to).await.token();
    control.clock.advance(Duration::from_secs(61));
    let r = app.sign_up_with(&to, "ru", "a different long passphrase").await;
    assert_eq!(r.status(), 201);
    let second: Value = r.json().await.unwrap();
    assert_eq!(second["pin"], first["pin"], "the PIN is kept");
    let new_mail = app.next_mail(&to).await;
    assert_eq!(new_mail.subject, "Подтвердите адрес электронной почты", "the new locale is used");
    assert_eq!(app.verify(&old_token).await.status(), 410, "the old link is revoked");
    assert_eq!(app.verify(&new_mail.token()).await.status(), 200);
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE email = $1").bind(&to).fetch_one(&control.db).await.unwrap();
    assert_eq!(n, 1);
}

async fn signup_of_an_active_address_is_409_with_the_recovery_url(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("taken");
    app.active_user(&to).await;
    let r = app.sign_up(&to, "en").await;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "EMAIL_ALREADY_REGISTERED");
    let url = body["recovery_url"].as_str().unwrap();
    assert!(url.ends_with("/profile"), "{url}");
    assert!(body["instructions"].as_str().unwrap().contains(url));
}

async fn signup_without_consent_is_422_consent_required(backend: Backend) {
    let app = spawn_app(backend).await;
    for consent in [json!(false), Value::Null] {
        let r = app.post("/api/signup/init", &json!({"email": email("nc"), "consent": consent, "locale": "ru", "passphrase": PASSPHRASE})).await;
        assert_eq!(r.status(), 422);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "CONSENT_REQUIRED");
        assert!(body["message"].as_str().unwrap().contains("согласие"), "answered in the requested locale");
    }
}

async fn thirty_two_concurrent_verifies_of_one_token_have_exactly_one_winner(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("race");
    app.sign_up(&to, "en").await;
    let token = app.next_mail(&to).await.token();
    let calls = (0..32).map(|_| app.verify(&token));
    let statuses: Vec<u16> = futures::future::join_all(calls).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 410).count(), 31, "{statuses:?}");
}

async fn concurrent_signups_of_one_new_address_make_one_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("dup");
    let calls = (0..6).map(|_| app.sign_up(&to, "en"));
    let responses = futures::future::join_all(calls).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.contains(&201), "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 429), "only created or throttled: {statuses:?}");
    let mut pins = Vec::new();
    for r in responses.into_iter().filter(|r| r.status() == 201) {
        pins.push(r.json::<Value>().await.unwrap()["pin"].clone());
    }
    pins.dedup();
    assert_eq!(pins.len(), 1, "one account, one PIN: {pins:?}");
}

async fn a_second_email_within_a_minute_is_throttled_with_retry_after(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("fast");
    assert_eq!(app.sign_up(&to, "en").await.status(), 201);
    let r = app.sign_up(&to, "en").await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "TOO_MANY_REQUESTS");
}

async fn housekeeping_deletes_pending_accounts_after_seven_days(backend: Backend) {
    let app = spawn_app(backend).await;
    let Some(control) = app.control() else { return };
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
    if app.control().is_none() {
        return;
    }
    let body = json!({"email": email("key"), "consent": true, "locale": "en", "passphrase": PASSPHRASE});
    let url = app.url("/api/signup/init");
    let none = app.client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(none.status(), 403);
    assert_eq!(none.json::<Value>().await.unwrap()["code"], "API_KEY_REQUIRED");
    let wrong = app.client.post(&url).bearer_auth("test-key-one-5d1c9f").json(&body).send().await.unwrap();
    assert_eq!(wrong.status(), 403);
    let second = app.client.post(&url).bearer_auth("test-key-two-77af01").json(&body).send().await.unwrap();
    assert_eq!(second.status(), 201);
}

async fn conceal_mode_answers_alike_for_new_and_taken_addresses(backend: Backend) {
    let mut options = Options::new(backend);
    options.conceal = true;
    let app = spawn_with(options).await;
    if app.control().is_none() {
        return;
    }
    let to = email("hidden");
    let first = app.sign_up(&to, "en").await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert!(first.get("pin").is_none());
    let token = app.next_mail(&to).await.token();
    assert_eq!(app.verify(&token).await.status(), 200);
    let again = app.sign_up(&to, "en").await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["status"], first["status"]);
    assert_eq!(app.next_mail(&to).await.subject, "Someone tried to sign up with your address");
}

async fn passphrases_and_tokens_are_stored_only_as_hashes(backend: Backend) {
    let app = spawn_app(backend).await;
    let Some(control) = app.control() else { return };
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
    let Some(control) = app.control() else { return };
    assert_eq!(app.sign_up(&email("before"), "en").await.status(), 201);
    control.kill_postgres_database().await;
    let r = app.sign_up(&email("during"), "en").await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE");
    assert!(!body.to_string().to_lowercase().contains("database"), "no internals in the body: {body}");
    assert_eq!(app.verify(&"A".repeat(43)).await.status(), 503);
}
