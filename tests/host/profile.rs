//! SPEC §2.2 on the in-process host: what needs its clock, its database or its configuration —
//! pending and blocked accounts, expiry, a second link within the hour, hashes at rest, the API
//! key, conceal mode, and a database lost under a save.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, Options, TestApp, email, is_russian, rfc3339_utc_seconds, spawn_app, spawn_with, without_address};
use crate::on_both_backends;

/// Past the per-address send interval (one email of a kind per minute).
const MINUTE: Duration = Duration::from_secs(61);
const NEW_PASSPHRASE: &str = "another long passphrase for the host";
/// Valid in shape but longer than any PIN the host hands out (6 digits).
const UNKNOWN_PIN: &str = "987654321012";

on_both_backends!(
    init_of_a_pending_account_is_409_and_sends_a_new_verification_link,
    a_blocked_account_is_403_on_init_and_on_save,
    a_save_persists_the_locale_and_revokes_the_users_other_profile_links,
    a_profile_link_expires_after_one_hour,
    the_profile_token_and_the_new_passphrase_are_stored_only_as_hashes,
    init_needs_the_api_key_and_the_browser_calls_do_not,
    a_link_asked_for_during_an_email_change_or_a_block_waits_and_follows_it,
);

async fn user_row(app: &TestApp, to: &str) -> (String, String, String) {
    sqlx::query_as("SELECT status, locale, passphrase_hash FROM users WHERE email = $1").bind(to).fetch_one(&app.control().db).await.unwrap()
}

/// Outbox messages of `kind` to `to` (written in the request's own transaction).
async fn queued(app: &TestApp, to: &str, kind: &str) -> i64 {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND kind = $2").bind(to).bind(kind).fetch_one(&app.control().db).await.unwrap();
    n
}

async fn pin_of(app: &TestApp, to: &str) -> String {
    let (pin,): (String,) = sqlx::query_as("SELECT pin FROM users WHERE email = $1").bind(to).fetch_one(&app.control().db).await.unwrap();
    pin
}

async fn error_code(r: reqwest::Response, status: u16) -> String {
    assert_eq!(r.status().as_u16(), status);
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body["code"].as_str().unwrap_or_default().to_owned()
}

async fn init_of_a_pending_account_is_409_and_sends_a_new_verification_link(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let to = email("pend");
    let r = app.sign_up(&to, "en").await;
    assert_eq!(r.status(), 201);
    let pin = r.json::<Value>().await.unwrap()["pin"].as_str().unwrap().to_owned();
    let first = app.next_mail(&to).await;
    control.clock.advance(MINUTE);

    let mut tokens = vec![first.token()];
    for body in [json!({"email": to}), json!({"pin": pin})] {
        let r = app.profile_init(&body).await;
        assert_eq!(r.status(), 409, "{body}");
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["code"], "EMAIL_NOT_VERIFIED", "{answer}");
        assert!(answer["instructions"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
        let mail = app.next_mail(&to).await;
        assert_eq!(mail.subject, first.subject, "the verification email again");
        let link = mail.link();
        assert!(link.starts_with(&format!("{}/signup/verify#token=", app.base)), "{link}");
        assert!(link.contains(&format!("&pin={pin}&")), "the same PIN: {link}");
        assert_eq!(mail.token().len(), 43);
        assert!(!tokens.contains(&mail.token()), "a fresh token");
        tokens.push(mail.token());
        control.clock.advance(MINUTE);
    }
    let (profile_tokens,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM secrets WHERE purpose = 'profile'").fetch_one(&control.db).await.unwrap();
    assert_eq!(profile_tokens, 0, "no profile link for a pending account");
    assert_eq!(queued(&app, &to, "profile-link").await, 0);

    assert_eq!(app.verify(tokens.last().unwrap()).await.status(), 200, "the re-sent link activates the account");
    let token = app.profile_link_token(&to).await;
    assert_eq!(app.profile_load(&token).await.status(), 200, "then the account gets profile links");
}

async fn a_blocked_account_is_403_on_init_and_on_save(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let to = email("blocked");
    let pin = app.active_user(&to).await;
    let token = app.profile_link_token(&to).await;
    let (_, _, hash) = user_row(&app, &to).await;
    sqlx::query("UPDATE users SET status = 'blocked' WHERE email = $1").bind(&to).execute(&control.db).await.unwrap();
    control.clock.advance(MINUTE);

    for body in [json!({"email": to}), json!({"pin": pin})] {
        let r = app.profile_init(&body).await;
        assert_eq!(r.status(), 403, "{body}");
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["code"], "ACCOUNT_BLOCKED", "{answer}");
        assert!(answer["instructions"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
    }
    assert_eq!(queued(&app, &to, "profile-link").await, 1, "no new link for a blocked account");

    // A link issued before the block does not save.
    let r = app.profile_save(&json!({"token": token, "locale": "ru", "passphrase": NEW_PASSPHRASE})).await;
    assert_eq!(error_code(r, 403).await, "ACCOUNT_BLOCKED");
    assert_eq!(user_row(&app, &to).await, ("blocked".to_owned(), "en".to_owned(), hash), "nothing changed");
    assert_eq!(queued(&app, &to, "passphrase-changed").await, 0);
    // The recovery page still answers 200 and sends nothing.
    assert_eq!(app.profile_request(&to).await.status(), 200);
    assert_eq!(queued(&app, &to, "profile-link").await, 1);
}

async fn a_save_persists_the_locale_and_revokes_the_users_other_profile_links(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let to = email("revoke");
    app.active_user(&to).await;
    let first = app.profile_link_token(&to).await;
    control.clock.advance(MINUTE);
    assert_eq!(app.profile_request(&to).await.status(), 200);
    let second = app.next_mail(&to).await.token();
    assert_ne!(first, second);
    assert_eq!(app.profile_load(&second).await.status(), 200);

    let r = app.profile_save(&json!({"token": second, "locale": "ru"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.profile_load(&first).await.status(), 410, "the save revoked the user's other profile link");
    assert_eq!(app.profile_save(&json!({"token": first, "locale": "en"})).await.status(), 410);
    assert_eq!(app.profile_load(&second).await.status(), 410, "and used its own");
    let (status, locale, _) = user_row(&app, &to).await;
    assert_eq!((status.as_str(), locale.as_str()), ("active", "ru"));
    assert_eq!(queued(&app, &to, "passphrase-changed").await, 0, "no notice when the passphrase stays");

    // The next link comes in the new locale and shows it.
    control.clock.advance(MINUTE);
    assert_eq!(app.profile_init(&json!({"email": to})).await.status(), 200);
    let mail = app.next_mail(&to).await;
    assert!(is_russian(&mail.subject), "the profile link is mailed in the account's locale: {}", mail.subject);
    let profile: Value = app.profile_load(&mail.token()).await.json().await.unwrap();
    assert_eq!(profile["locale"], "ru");
}

async fn a_profile_link_expires_after_one_hour(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let to = email("expire");
    app.active_user(&to).await;
    let token = app.profile_link_token(&to).await;
    control.clock.advance(Duration::from_secs(59 * 60));
    assert_eq!(app.profile_load(&token).await.status(), 200, "valid for the whole hour");
    control.clock.advance(Duration::from_secs(2 * 60));
    assert_eq!(error_code(app.profile_load(&token).await, 410).await, "INVALID_TOKEN");
    let r = app.profile_save(&json!({"token": token, "locale": "ru"})).await;
    assert_eq!(error_code(r, 410).await, "INVALID_TOKEN");
    assert_eq!(user_row(&app, &to).await.1, "en", "nothing was saved");
}

async fn the_profile_token_and_the_new_passphrase_are_stored_only_as_hashes(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let to = email("hashes");
    app.active_user(&to).await;
    let token = app.profile_link_token(&to).await;
    let rows: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT hash, created_at, expires_at FROM secrets WHERE purpose = 'profile'").fetch_all(&control.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    use sha2::Digest as _;
    let expected: String = sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(rows[0].0, expected, "the token is kept as its SHA-256 only");
    assert_eq!(rows[0].2 - rows[0].1, 3600 * 1000, "a profile link lives one hour");

    // created_at of the answer is the stored one, to the second.
    let (created_ms,): (i64,) = sqlx::query_as("SELECT created_at FROM users WHERE email = $1").bind(&to).fetch_one(&control.db).await.unwrap();
    let profile: Value = app.profile_load(&token).await.json().await.unwrap();
    let created = profile["created_at"].as_str().unwrap();
    assert_eq!(rfc3339_utc_seconds(created), Some(created_ms.div_euclid(1000)), "{created} is the account's creation time in UTC");
    let (_, _, old_hash) = user_row(&app, &to).await;

    let r = app.profile_save(&json!({"token": token, "passphrase": NEW_PASSPHRASE})).await;
    assert_eq!(r.status(), 200);
    let (_, locale, new_hash) = user_row(&app, &to).await;
    assert_eq!(locale, "en");
    assert_ne!(new_hash, old_hash, "the passphrase changed");
    assert!(new_hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{new_hash}");
    assert!(!new_hash.contains(NEW_PASSPHRASE));
    assert_eq!(queued(&app, &to, "passphrase-changed").await, 1, "the notice is queued with the save");
    let notice = app.next_mail(&to).await;
    assert!(notice.text.contains(&format!("{}/profile", app.base)), "{}", notice.text);
}

async fn init_needs_the_api_key_and_the_browser_calls_do_not(backend: Backend) {
    let mut options = Options::new(backend);
    options.api_keys = Some("profile-key-3e7a91c0");
    let app = spawn_with(options).await;
    let to = email("key");
    app.active_user(&to).await;
    let none = app.client.post(app.url("/api/profile/init")).json(&json!({"email": to})).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.json::<Value>().await.unwrap()["code"], "API_KEY_REQUIRED");
    let wrong = app.client.post(app.url("/api/profile/init")).bearer_auth("profile-key-3e7a91c1").json(&json!({"email": to})).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(queued(&app, &to, "profile-link").await, 0, "nothing is sent without the key");

    let r = app.client.post(app.url("/api/profile/request")).json(&json!({"email": to})).send().await.unwrap();
    assert_eq!(r.status(), 200, "the recovery page needs no key");
    let token = app.next_mail(&to).await.token();
    let r = app.client.post(app.url("/api/profile/load")).json(&json!({"token": token})).send().await.unwrap();
    assert_eq!(r.status(), 200, "the profile page needs no key");
    let r = app.client.post(app.url("/api/profile/save")).json(&json!({"token": token, "locale": "ru"})).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conceal_mode_answers_every_init_outcome_alike_and_mails_only_where_due() {
    let mut options = Options::new(Backend::Sqlite);
    options.conceal = true;
    let app = spawn_with(options).await;
    let control = app.control();
    let (unknown, pending, active, blocked) = (email("pc-unknown"), email("pc-pending"), email("pc-active"), email("pc-blocked"));
    for to in [&pending, &active, &blocked] {
        assert_eq!(app.sign_up(to, "en").await.status(), 200);
    }
    for to in [&active, &blocked] {
        let token = app.next_mail(to).await.token();
        assert_eq!(app.verify(&token).await.status(), 200);
    }
    let signup_mail = app.next_mail(&pending).await;
    sqlx::query("UPDATE users SET status = 'blocked' WHERE email = $1").bind(&blocked).execute(&control.db).await.unwrap();
    let (pending_pin, active_pin, blocked_pin) = (pin_of(&app, &pending).await, pin_of(&app, &active).await, pin_of(&app, &blocked).await);
    control.clock.advance(MINUTE);

    // By email, then by PIN (the second call for pending and active is throttled).
    let by_email = [&unknown, &pending, &active, &blocked].map(|to| (to.clone(), json!({"email": to})));
    let by_pin = [
        (String::new(), json!({"pin": UNKNOWN_PIN})),
        (pending.clone(), json!({"pin": pending_pin})),
        (active.clone(), json!({"pin": active_pin})),
        (blocked.clone(), json!({"pin": blocked_pin})),
    ];
    let mut answers: Vec<(u16, Value)> = Vec::new();
    for (to, body) in by_email.iter().chain(by_pin.iter()) {
        let r = app.profile_init(body).await;
        let status = r.status().as_u16();
        let answer: Value = r.json().await.unwrap();
        let answer = if to.is_empty() { answer } else { without_address(answer, to) };
        assert_eq!(status, 200, "{body}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()) && answer["instructions"].is_string(), "{answer}");
        answers.push((status, answer));
    }
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer, &answers[0], "call {i} answers like an unknown address");
    }
    // Bad input is still named.
    let r = app.profile_init(&json!({"pin": "12ab56"})).await;
    assert_eq!(r.status(), 422);

    // Mail only where due: the pending account's verification again, the active account's link
    // once, nothing for the blocked or the unknown address. The answers came first: wait for the
    // mail of the work done after them.
    let resent = app.next_mail(&pending).await;
    let link = app.next_mail(&active).await;
    assert_eq!(queued(&app, &pending, "signup-verification").await, 2, "sign-up and one re-send");
    assert_eq!(queued(&app, &active, "profile-link").await, 1, "one link; the throttled call sent nothing");
    assert_eq!(queued(&app, &blocked, "profile-link").await, 0);
    let (to_unknown,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE recipient = $1").bind(&unknown).fetch_one(&control.db).await.unwrap();
    assert_eq!(to_unknown, 0);
    let (to_blocked,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE recipient = $1").bind(&blocked).fetch_one(&control.db).await.unwrap();
    assert_eq!(to_blocked, 1, "only its sign-up email");

    assert!(resent.link().starts_with(&format!("{}/signup/verify#token=", app.base)), "{}", resent.link());
    assert!(resent.link().contains(&format!("&pin={pending_pin}&")), "{}", resent.link());
    assert_ne!(resent.token(), signup_mail.token());
    assert!(link.link().starts_with(&format!("{}/profile#token=", app.base)), "{}", link.link());
    assert_eq!(app.profile_load(&link.token()).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_while_the_database_is_lost_is_503_save_failed_and_writes_nothing() {
    let app = spawn_app(Backend::Postgres).await;
    let control = app.control();
    let to = email("lost");
    app.active_user(&to).await;
    let token = app.profile_link_token(&to).await;
    let before = user_row(&app, &to).await;

    control.suspend_postgres_database().await;
    let r = app.profile_save(&json!({"token": token, "locale": "ru", "passphrase": NEW_PASSPHRASE})).await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "SAVE_FAILED", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body["instructions"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    control.resume_postgres_database().await;

    // Back: nothing was written, and the link still works.
    assert_eq!(user_row(&app, &to).await, before, "locale and passphrase unchanged");
    assert_eq!(queued(&app, &to, "passphrase-changed").await, 0, "no notice for a save that did not happen");
    let r = app.profile_load(&token).await;
    assert_eq!(r.status(), 200, "the link still works");
    assert_eq!(r.json::<Value>().await.unwrap()["locale"], "en");
    let r = app.profile_save(&json!({"token": token, "locale": "ru", "passphrase": NEW_PASSPHRASE})).await;
    assert_eq!(r.status(), 200, "the retry saves");
    let (_, locale, hash) = user_row(&app, &to).await;
    assert_eq!(locale, "ru");
    assert_ne!(hash, before.2);
    assert!(is_russian(&app.next_mail(&to).await.subject), "the notice of the retried save");
}

/// A profile link asked for while another transaction changes the account — an email change's
/// confirm-new, or an operator's block, each of which revokes every token before it commits —
/// waits for it (the issue takes the user's row lock) and is then answered as the account is
/// now: no token issued for the old state, no link mailed to the address the account left.
/// The other transaction is the test's own, held open as the barrier.
async fn a_link_asked_for_during_an_email_change_or_a_block_waits_and_follows_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let db = &app.control().db;
    for (tag, change) in [
        ("barrier-move", "UPDATE users SET email = $2 WHERE id = $1"),
        ("barrier-block", "UPDATE users SET status = 'blocked' WHERE id = $1 AND $2 <> ''"),
    ] {
        let to = email(tag);
        let pin = app.active_user(&to).await;
        let (id,): (String,) = sqlx::query_as("SELECT id FROM users WHERE email = $1").bind(&to).fetch_one(db).await.unwrap();
        let moved_to = email(&format!("{tag}-new"));
        let before = queued(&app, &to, "profile-link").await;

        let mut barrier = db.begin().await.unwrap();
        sqlx::query(change).bind(&id).bind(&moved_to).execute(&mut *barrier).await.unwrap();
        sqlx::query("DELETE FROM secrets WHERE user_id = $1").bind(&id).execute(&mut *barrier).await.unwrap();
        // Asked for by the old address (the move) or by PIN (the block), while the change is open.
        let body = if tag == "barrier-move" { json!({"email": to}) } else { json!({"pin": pin}) };
        let asked = tokio::spawn({
            let (client, url, key) = (app.client.clone(), app.url("/api/profile/init"), app.api_key.clone());
            async move {
                let r = client.post(url).json(&body);
                let r = match key { Some(k) => r.bearer_auth(k), None => r }.send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        });
        tokio::time::sleep(Duration::from_millis(800)).await;
        barrier.commit().await.unwrap();
        let (status, answer) = asked.await.unwrap();

        let expected = if tag == "barrier-move" { (404, "USER_NOT_FOUND") } else { (403, "ACCOUNT_BLOCKED") };
        assert_eq!((status, answer["code"].as_str().unwrap_or_default()), expected, "{tag}: answered as the account is now: {answer}");
        let (tokens,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM secrets WHERE user_id = $1").bind(&id).fetch_one(db).await.unwrap();
        assert_eq!(tokens, 0, "{tag}: no token outlived the revocation");
        assert_eq!(queued(&app, &to, "profile-link").await, before, "{tag}: no link mailed for the old state");
    }
}
