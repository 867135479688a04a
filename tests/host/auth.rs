//! SPEC §2.4 on the in-process host: what needs its clock, its database or its configuration —
//! blocked accounts, the delay that grows after 5 failures, the lock after 100 with its one email,
//! the unlock by a profile save, rehashing, clean counts for new PINs, and the log.
//!
//! The delay after `f` consecutive failures (f ≥ 5) is min(2^(f-5) s, 15 min), counted from the
//! start of the last failed attempt; tests move the host's clock past it instead of sleeping.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Answer, Backend, Options, PASSPHRASE, TestApp, captured_log, email, is_russian, spawn_app, spawn_with, unknown_pin};
use crate::on_both_backends;

/// Wrong for every account here (they use `PASSPHRASE`).
const WRONG: &str = "wrong horse battery staple 9a3f";
const NEW_PASSPHRASE: &str = "a new passphrase that unlocks the pin";
const DAY: Duration = Duration::from_secs(24 * 3600);

on_both_backends!(
    a_blocked_account_is_403_account_blocked_only_with_the_right_passphrase,
    after_five_failures_each_attempt_waits_a_delay_doubling_up_to_fifteen_minutes,
    a_hundred_failures_lock_a_pin_known_or_unknown_mail_only_the_owner_once_and_a_new_passphrase_unlocks_it,
    a_successful_check_rehashes_a_hash_made_with_other_argon2_parameters,
    a_newly_allocated_pin_starts_with_a_clean_count,
);

/// A 6-digit PIN (the default length) other than `taken`: no account of the test has it.
fn unknown_pin_like(taken: &str) -> String {
    loop {
        let candidate = (100_000 + uuid::Uuid::new_v4().as_u128() % 900_000).to_string();
        if candidate != taken {
            return candidate;
        }
    }
}

/// Seconds to wait after `failures` consecutive failures (5 or more).
fn delay_s(failures: u32) -> u64 {
    (1u64 << (failures - 5).min(20)).min(15 * 60)
}

/// `(failures, lock_notified)` of a PIN, if it has a row.
async fn failure_row(app: &TestApp, pin: &str) -> Option<(i64, i64)> {
    sqlx::query_as("SELECT failures, lock_notified FROM auth_failures WHERE pin = $1").bind(pin).fetch_optional(&app.control().db).await.unwrap()
}

/// Whether a PIN's count of failures is clear (no row, or a row at 0).
async fn count_is_clear(app: &TestApp, pin: &str) -> bool {
    failure_row(app, pin).await.is_none_or(|(failures, _)| failures == 0)
}

/// Outbox messages of `kind` to `to` (written in the request's own transaction).
async fn queued(app: &TestApp, to: &str, kind: &str) -> i64 {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND kind = $2").bind(to).bind(kind).fetch_one(&app.control().db).await.unwrap();
    n
}

async fn queued_of_kind(app: &TestApp, kind: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE kind = $1").bind(kind).fetch_one(&app.control().db).await.unwrap();
    n
}

async fn stored_hash(app: &TestApp, to: &str) -> String {
    let (hash,): (String,) = sqlx::query_as("SELECT passphrase_hash FROM users WHERE email = $1").bind(to).fetch_one(&app.control().db).await.unwrap();
    hash
}

fn assert_active(a: &Answer, pin: &str) {
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["pin"], pin, "{}", a.body);
    assert_eq!(a.body["status"], "active", "{}", a.body);
}

async fn a_blocked_account_is_403_account_blocked_only_with_the_right_passphrase(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let to = email("blocked");
    let pin = app.active_user(&to).await;
    sqlx::query("UPDATE users SET status = 'blocked' WHERE email = $1").bind(&to).execute(&control.db).await.unwrap();

    let unknown = app.auth_answer(&json!(unknown_pin()), WRONG).await;
    unknown.assert_error(401, "INVALID_CREDENTIALS");
    let wrong = app.auth_answer(&json!(pin), WRONG).await;
    wrong.assert_error(401, "INVALID_CREDENTIALS");
    assert_eq!(wrong.raw, unknown.raw, "a wrong passphrase does not reveal the block");

    let right = app.auth_answer(&json!(pin), PASSPHRASE).await;
    right.assert_error(403, "ACCOUNT_BLOCKED");
    let number: u64 = pin.parse().unwrap();
    app.auth_answer(&json!(number), PASSPHRASE).await.assert_error(403, "ACCOUNT_BLOCKED");

    // Unblocked by the operator, the same check passes.
    sqlx::query("UPDATE users SET status = 'active' WHERE email = $1").bind(&to).execute(&control.db).await.unwrap();
    assert_active(&app.auth_answer(&json!(pin), PASSPHRASE).await, &pin);
}

async fn after_five_failures_each_attempt_waits_a_delay_doubling_up_to_fifteen_minutes(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let to = email("delay");
    let pin = app.active_user(&to).await;
    let pin_value = json!(pin);
    for i in 0..5 {
        let a = app.auth_answer(&pin_value, WRONG).await;
        a.assert_error(401, "INVALID_CREDENTIALS");
        assert!(a.retry_after.is_none(), "failure {} waits for nothing", i + 1);
    }

    let mut seen: Vec<(u32, u64)> = Vec::new();
    for failures in 5..=16u32 {
        let delay = delay_s(failures);
        // Twice while the delay runs, the right passphrase too: a throttled attempt is neither
        // checked nor counted (else the delays below would grow faster).
        for passphrase in [WRONG, PASSPHRASE] {
            let a = app.auth_answer(&pin_value, passphrase).await;
            a.assert_error(429, "TOO_MANY_ATTEMPTS");
            let retry = a.retry_after.unwrap_or_else(|| panic!("a 429 has Retry-After: {}", a.body));
            seen.push((failures, retry));
            // Rounded up from the start of the last failure, which was a moment (its Argon2 check)
            // before: the full delay, or a second less for the longer ones.
            assert!(retry <= delay && retry >= delay.saturating_sub(1).max(1), "after {failures} failures Retry-After is about {delay} s: {seen:?}");
        }
        control.clock.advance(Duration::from_secs(delay));
        let a = app.auth_answer(&pin_value, WRONG).await;
        assert_eq!(a.status, 401, "one attempt once the delay after {failures} failures is over: {}", a.body);
    }
    assert_eq!(seen.first().map(|s| s.1), Some(1), "1 s after the 5th failure: {seen:?}");
    assert!(seen.iter().filter(|s| s.0 >= 15).all(|s| s.1 >= 899 && s.1 <= 900), "at most 15 min, not 2^10 s: {seen:?}");
    assert_eq!(failure_row(&app, &pin).await.map(|r| r.0), Some(17), "17 failures counted, none of the throttled attempts");

    // The right passphrase once the delay is over: a success starts the count again.
    control.clock.advance(Duration::from_secs(delay_s(17)));
    assert_active(&app.auth_answer(&pin_value, PASSPHRASE).await, &pin);
    assert!(count_is_clear(&app, &pin).await, "the success reset the count: {:?}", failure_row(&app, &pin).await);
    for i in 0..5 {
        let a = app.auth_answer(&pin_value, WRONG).await;
        assert_eq!(a.status, 401, "failure {} after the success is free again: {}", i + 1, a.body);
    }
    let a = app.auth_answer(&pin_value, WRONG).await;
    a.assert_error(429, "TOO_MANY_ATTEMPTS");
    assert_eq!(a.retry_after, Some(1), "the delay starts again at 1 s: {}", a.body);
}

async fn a_hundred_failures_lock_a_pin_known_or_unknown_mail_only_the_owner_once_and_a_new_passphrase_unlocks_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let to = email("lock");
    let pin = app.active_user(&to).await;
    // Of the configured length: a PIN of another length that no account has is not counted.
    let stranger = unknown_pin_like(&pin);
    let (outbox_before,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox").fetch_one(&control.db).await.unwrap();

    // 100 failures on the account's PIN and on a PIN nobody has, each once the delay is over.
    for failures in 0..100u32 {
        if failures >= 5 {
            control.clock.advance(Duration::from_secs(delay_s(failures)));
        }
        for p in [&pin, &stranger] {
            let a = app.auth_answer(&json!(p), WRONG).await;
            assert_eq!(a.status, 401, "failure {} of PIN {p}: {}", failures + 1, a.body);
        }
        if failures == 98 {
            assert_eq!(queued_of_kind(&app, "pin-locked").await, 0, "no email before the 100th failure");
        }
    }

    // Locked: even the right passphrase, long after the last delay, is refused — and alike for
    // both PINs, so the lock tells nothing about whether a PIN has an account.
    control.clock.advance(DAY);
    for passphrase in [WRONG, PASSPHRASE] {
        let known = app.auth_answer(&json!(pin), passphrase).await;
        known.assert_error(423, "PIN_LOCKED");
        let unknown = app.auth_answer(&json!(stranger), passphrase).await;
        unknown.assert_error(423, "PIN_LOCKED");
        assert_eq!(known.raw, unknown.raw, "one answer for a locked PIN, with or without an account");
    }
    let number: u64 = pin.parse().unwrap();
    app.auth_answer(&json!(number), PASSPHRASE).await.assert_error(423, "PIN_LOCKED");

    // One email, to the owner, and none for the unknown PIN.
    assert_eq!(queued(&app, &to, "pin-locked").await, 1, "the owner is emailed once");
    assert_eq!(queued_of_kind(&app, "pin-locked").await, 1, "nobody else is emailed");
    let (outbox_after,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox").fetch_one(&control.db).await.unwrap();
    assert_eq!(outbox_after, outbox_before + 1, "the lock email is the only new message");
    let (notified,): (i64,) = sqlx::query_as("SELECT lock_notified FROM auth_failures WHERE pin = $1").bind(&pin).fetch_one(&control.db).await.unwrap();
    assert_eq!(notified, 1);
    let (failures, _) = failure_row(&app, &stranger).await.expect("an unknown PIN is counted too");
    assert!(failures >= 100, "{failures}");

    let mail = app.next_mail(&to).await;
    assert!(!mail.subject.is_empty() && !is_russian(&mail.subject), "in the account's locale (en): {}", mail.subject);
    assert!(mail.text.contains(&pin), "the email names the PIN: {}", mail.text);
    let recovery = format!("{}/profile", app.base);
    assert!(mail.text.contains(&recovery) && mail.html.contains(&recovery), "it links the profile page: {}", mail.text);
    for secret in [PASSPHRASE, WRONG] {
        assert!(!mail.text.contains(secret) && !mail.html.contains(secret), "no passphrase in the email");
    }
    assert!(app.try_next_mail(&to, Duration::from_secs(2)).await.is_none(), "one email only");

    // Time does not unlock the owner's PIN, nor does housekeeping a week later; the lock of the PIN
    // that no account has is housekept then (issue 19 item 4): such rows would otherwise stay forever.
    control.clock.advance(8 * DAY);
    (control.housekeep)().await.unwrap();
    app.auth_answer(&json!(pin), PASSPHRASE).await.assert_error(423, "PIN_LOCKED");
    assert!(failure_row(&app, &stranger).await.is_none(), "the old lock of a PIN without an account is gone");
    app.auth_answer(&json!(stranger), PASSPHRASE).await.assert_error(401, "INVALID_CREDENTIALS");

    // A save of the locale alone through the profile link does not unlock (SPEC §2.4: only a new
    // passphrase does), nor does it clear the count.
    let token = app.profile_link_token(&to).await;
    assert_eq!(app.profile_save(&json!({"token": token, "locale": "ru"})).await.status(), 200);
    app.auth_answer(&json!(pin), PASSPHRASE).await.assert_error(423, "PIN_LOCKED");
    assert!(failure_row(&app, &pin).await.is_some_and(|(failures, _)| failures >= 100), "the count stays");
    control.clock.advance(Duration::from_secs(61));

    // The owner sets a new passphrase through the profile link: unlocked.
    let token = app.profile_link_token(&to).await;
    let r = app.profile_save(&json!({"token": token, "passphrase": NEW_PASSPHRASE})).await;
    assert_eq!(r.status(), 200);
    let notice = app.next_mail(&to).await;
    assert_ne!(notice.subject, mail.subject, "the passphrase-change notice, not another lock email");
    assert!(count_is_clear(&app, &pin).await, "the save reset the count: {:?}", failure_row(&app, &pin).await);
    assert_active(&app.auth_answer(&json!(pin), NEW_PASSPHRASE).await, &pin);
    // The old passphrase is simply wrong now, with a fresh count.
    for _ in 0..5 {
        app.auth_answer(&json!(pin), PASSPHRASE).await.assert_error(401, "INVALID_CREDENTIALS");
    }
    let locks = app.all_mail_to(&to).await.into_iter().filter(|m| m.subject == mail.subject).count();
    assert_eq!(locks, 1, "never a second lock email");
}

/// An Argon2id PHC string of `passphrase` with m = 8192 KiB, t = 1, p = 1 (not the configured ones).
fn hash_with_other_parameters(passphrase: &str) -> String {
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    let params = argon2::Params::new(8192, 1, 1, None).unwrap();
    let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params).hash_password(passphrase.as_bytes(), &salt).unwrap().to_string()
}

async fn a_successful_check_rehashes_a_hash_made_with_other_argon2_parameters(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let to = email("rehash");
    let pin = app.active_user(&to).await;
    let old = hash_with_other_parameters(PASSPHRASE);
    assert!(old.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"), "{old}");
    sqlx::query("UPDATE users SET passphrase_hash = $1 WHERE email = $2").bind(&old).bind(&to).execute(&control.db).await.unwrap();

    app.auth_answer(&json!(pin), WRONG).await.assert_error(401, "INVALID_CREDENTIALS");
    assert_eq!(stored_hash(&app, &to).await, old, "a failed check rehashes nothing");

    assert_active(&app.auth_answer(&json!(pin), PASSPHRASE).await, &pin);
    let new = stored_hash(&app, &to).await;
    assert!(new.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "rehashed with the configured parameters: {new}");
    assert!(!new.contains(PASSPHRASE));

    // The new hash holds the same passphrase, and is kept: its parameters are the configured ones.
    assert_active(&app.auth_answer(&json!(pin), PASSPHRASE).await, &pin);
    assert_eq!(stored_hash(&app, &to).await, new, "no rehash when the parameters match");
    app.auth_answer(&json!(pin), WRONG).await.assert_error(401, "INVALID_CREDENTIALS");
}

async fn a_newly_allocated_pin_starts_with_a_clean_count(backend: Backend) {
    let mut options = Options::new(backend);
    options.config = Some(|c| c.pin_length = 4);
    let app = spawn_with(options).await;
    let control = app.control();
    // Every 4-digit PIN locked, as if each had been guessed 100 times while nobody had it — just now:
    // housekeeping (which may run meanwhile) drops such locks only a week after their last failure.
    sqlx::query(
        "WITH RECURSIVE n(x) AS (SELECT 1000 UNION ALL SELECT x + 1 FROM n WHERE x < 9999) \
         INSERT INTO auth_failures (pin, failures, last_failure_at, lock_notified) SELECT CAST(x AS TEXT), 100, $1, 0 FROM n",
    )
    .bind(gpt_user::clock::system_now_ms())
    .execute(&control.db)
    .await
    .unwrap();
    app.auth_answer(&json!("5555"), PASSPHRASE).await.assert_error(423, "PIN_LOCKED");

    // So the PIN a sign-up allocates was locked; the sign-up starts its count again.
    let to = email("fresh");
    let r = app.sign_up(&to, "en").await;
    assert_eq!(r.status(), 201);
    let pin = r.json::<Value>().await.unwrap()["pin"].as_str().unwrap().to_owned();
    assert_eq!(pin.len(), 4, "{pin}");
    assert!(count_is_clear(&app, &pin).await, "{:?}", failure_row(&app, &pin).await);
    app.auth_answer(&json!(pin), PASSPHRASE).await.assert_error(403, "EMAIL_NOT_VERIFIED");
    app.next_mail(&to).await;

    // A second sign-up of the pending address gets another (locked) PIN: clean as well.
    control.clock.advance(Duration::from_secs(61));
    let r = app.sign_up(&to, "en").await;
    assert_eq!(r.status(), 201);
    let second = r.json::<Value>().await.unwrap()["pin"].as_str().unwrap().to_owned();
    assert_ne!(second, pin);
    assert!(count_is_clear(&app, &second).await, "{:?}", failure_row(&app, &second).await);
    let token = app.next_mail(&to).await.token();
    assert_eq!(app.verify(&token).await.status(), 200);
    assert_active(&app.auth_answer(&json!(second), PASSPHRASE).await, &second);

    // The PINs no sign-up took are still locked.
    let other = ["5555", "5556", "5557"].into_iter().find(|p| *p != pin && *p != second).unwrap();
    app.auth_answer(&json!(other), PASSPHRASE).await.assert_error(423, "PIN_LOCKED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_passphrase_sent_to_the_check_reaches_the_log() {
    let mut options = Options::new(Backend::Sqlite);
    options.api_keys = Some("auth-log-key-0c5e27ab");
    let app = spawn_with(options).await;
    let secret = "the log must never hold this passphrase 51e0";
    let guess = "nor this wrong guess at the passphrase 51e0";
    let to = email("authlog");
    let r = app.sign_up_with(&to, "en", secret).await;
    assert_eq!(r.status(), 201);
    let pin = r.json::<Value>().await.unwrap()["pin"].as_str().unwrap().to_owned();
    app.auth_answer(&json!(pin), secret).await.assert_error(403, "EMAIL_NOT_VERIFIED");
    let token = app.next_mail(&to).await.token();
    assert_eq!(app.verify(&token).await.status(), 200);

    // Every kind of answer, each with a passphrase the log must not hold.
    assert_active(&app.auth_answer(&json!(pin), secret).await, &pin);
    for _ in 0..5 {
        app.auth_answer(&json!(pin), guess).await.assert_error(401, "INVALID_CREDENTIALS");
    }
    app.auth_answer(&json!(pin), secret).await.assert_error(429, "TOO_MANY_ATTEMPTS");
    app.auth_answer(&json!(unknown_pin()), secret).await.assert_error(401, "INVALID_CREDENTIALS");
    for body in [json!({"pin": "12ab56", "passphrase": secret}), json!({"pin": unknown_pin(), "passphrase": format!("{secret}{}", "z".repeat(4097))})] {
        let a = Answer::read(app.post("/api/auth/check", &body).await, secret).await;
        assert_eq!(a.status, 422, "{}", a.body);
    }

    // The host logs each request before answering it.
    let log = captured_log();
    assert!(log.contains("/api/auth/check"), "the checks were logged");
    for s in [secret, guess, "auth-log-key-0c5e27ab"] {
        assert!(!log.contains(s), "a secret reached the log");
    }
}

/// With a tuned Argon2 cost (`argon2_t = 6`, three times the default), an unknown PIN is checked
/// against a dummy hash of the same cost as the accounts' hashes: a wrong passphrase for a known
/// PIN and any passphrase for an unknown one take the same time (medians within 1.5×).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_pin_costs_what_a_known_one_costs_under_a_tuned_argon2() {
    let mut options = Options::new(Backend::Sqlite);
    options.config = Some(|c| c.argon2_t = 6);
    let app = spawn_with(options).await;
    let pin = app.active_user(&email("tuned")).await;
    let unknown = unknown_pin_like(&pin);
    let (mut known_times, mut unknown_times) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        for (which, times) in [(&pin, &mut known_times), (&unknown, &mut unknown_times)] {
            let started = std::time::Instant::now();
            app.auth_answer(&json!(which), WRONG).await.assert_error(401, "INVALID_CREDENTIALS");
            times.push(started.elapsed());
        }
        // Past the delay that follows the 5th failure, so every attempt runs its Argon2.
        app.control().clock.advance(Duration::from_secs(16 * 60));
    }
    known_times.sort();
    unknown_times.sort();
    let (known, unknown) = (known_times[3], unknown_times[3]);
    let (fast, slow) = (known.min(unknown), known.max(unknown));
    assert!(slow.as_secs_f64() < fast.as_secs_f64() * 1.5, "medians within 1.5x: known PIN {known:?}, unknown PIN {unknown:?}");
}
