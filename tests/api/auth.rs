//! SPEC §2.4 over HTTP, on SQLite and on PostgreSQL: Auth_Check (`POST /api/auth/check`, GPT action
//! `authCheck`) as any server (ours elsewhere, Spin) must answer it. What needs the host's clock or
//! database — blocked accounts, the growing delay, the lock after 100 failures and its email, the
//! unlock by a profile save, rehashing, the log — is in `tests/host/auth.rs`.
//!
//! Every answer is read with `Answer::read`, which asserts that the passphrase sent is in neither
//! a header nor the body.

use serde_json::{Value, json};

use crate::helpers::{Answer, Backend, Options, PASSPHRASE, email, spawn_app, spawn_with, unknown_pin};
use crate::on_both_backends;

/// Wrong for every account here (they all use `PASSPHRASE`), long enough to be a secret the log
/// must not show.
const WRONG: &str = "wrong horse battery staple 4c1e";

on_both_backends!(
    an_active_account_answers_200_with_pin_status_locale_and_masked_email,
    a_pin_given_as_a_json_integer_is_checked_like_a_string,
    a_wrong_passphrase_and_an_unknown_pin_get_byte_identical_401_answers,
    the_passphrase_is_compared_exactly_after_nfkc_normalisation,
    a_pending_account_is_403_email_not_verified_only_with_the_right_passphrase,
    malformed_input_is_422_naming_the_field,
    the_check_needs_the_api_key_and_keyless_calls_are_not_counted,
    fifty_concurrent_wrong_guesses_on_one_pin_get_five_401s_and_429s_with_retry_after,
    a_success_resets_the_count_of_failures,
    the_passphrase_never_appears_in_any_answer,
);

/// `ann-…@example.com` → `a***@example.com` (SPEC §2.4: the first character of the local part).
fn masked(address: &str) -> String {
    let (local, domain) = address.split_once('@').unwrap();
    format!("{}***@{domain}", local.chars().next().unwrap())
}

fn assert_active_answer(a: &Answer, pin: &str, address: &str, locale: &str) {
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["pin"], pin, "the PIN as a string: {}", a.body);
    assert_eq!(a.body["status"], "active", "{}", a.body);
    assert_eq!(a.body["locale"], locale, "{}", a.body);
    assert_eq!(a.body["email_masked"], masked(address).as_str(), "{}", a.body);
    assert!(a.body["message"].as_str().is_some_and(|m| !m.is_empty()), "a message: {}", a.body);
    assert!(a.body["instructions"].as_str().is_some_and(|m| !m.is_empty()), "instructions: {}", a.body);
    let text = String::from_utf8_lossy(&a.raw);
    let local = address.split_once('@').unwrap().0;
    assert!(!text.contains(address) && !text.contains(local), "the address is masked, never shown: {text}");
    assert!(!text.contains("argon2"), "no hash: {text}");
}

async fn an_active_account_answers_200_with_pin_status_locale_and_masked_email(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("auth");
    let pin = app.active_user(&to).await;
    let a = app.auth_answer(&json!(pin), PASSPHRASE).await;
    assert_active_answer(&a, &pin, &to, "en");
    assert_eq!(a.body["email_masked"], "a***@example.com", "the first letter, ***, then @domain");
    // A check changes nothing: it passes again (and again).
    for _ in 0..2 {
        assert_active_answer(&app.auth_answer(&json!(pin), PASSPHRASE).await, &pin, &to, "en");
    }

    let ru = email("ru-auth");
    let ru_pin = app.active_user_in(&ru, "ru").await;
    let a = app.auth_answer(&json!(ru_pin), PASSPHRASE).await;
    assert_active_answer(&a, &ru_pin, &ru, "ru");
    assert_eq!(a.body["email_masked"], "r***@example.com");
}

async fn a_pin_given_as_a_json_integer_is_checked_like_a_string(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("int");
    let pin = app.active_user(&to).await;
    let number: u64 = pin.parse().unwrap();
    let a = app.auth_answer(&json!(number), PASSPHRASE).await;
    assert_active_answer(&a, &pin, &to, "en");

    // An integer is checked as the same PIN for failures too: a wrong passphrase is 401.
    let a = app.auth_answer(&json!(number), WRONG).await;
    a.assert_error(401, "INVALID_CREDENTIALS");
    let unknown: u64 = unknown_pin().parse().unwrap();
    let b = app.auth_answer(&json!(unknown), PASSPHRASE).await;
    b.assert_error(401, "INVALID_CREDENTIALS");
    assert_eq!(a.raw, b.raw, "one answer for an unknown PIN and a wrong passphrase");
}

async fn a_wrong_passphrase_and_an_unknown_pin_get_byte_identical_401_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("wrong");
    let pin = app.active_user(&to).await;

    let reference = app.auth_answer(&json!(unknown_pin()), PASSPHRASE).await;
    reference.assert_error(401, "INVALID_CREDENTIALS");
    assert!(reference.retry_after.is_none(), "a first failure waits for nothing");

    // Four wrong passphrases on the account (the fifth attempt is still free): any length is
    // checked — a passphrase too short or too long to be set is simply wrong, not invalid input.
    let long = "y".repeat(300);
    for wrong in [WRONG, "Correct horse battery staple", "short", long.as_str()] {
        let a = app.auth_answer(&json!(pin), wrong).await;
        a.assert_error(401, "INVALID_CREDENTIALS");
        assert_eq!(a.raw, reference.raw, "a wrong passphrase ({} chars) answers like an unknown PIN", wrong.len());
        assert!(!String::from_utf8_lossy(&a.raw).contains(&pin), "the answer does not tell which PIN was tried");
    }
    // Another unknown PIN, as an integer, with another passphrase: the same bytes again.
    let unknown: u64 = unknown_pin().parse().unwrap();
    let a = app.auth_answer(&json!(unknown), WRONG).await;
    assert_eq!(a.raw, reference.raw);

    // The right passphrase still passes after four failures.
    assert_active_answer(&app.auth_answer(&json!(pin), PASSPHRASE).await, &pin, &to, "en");
}

async fn the_passphrase_is_compared_exactly_after_nfkc_normalisation(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("nfkc");
    // "ﬁ" (U+FB01) is "fi" after NFKC; a fullwidth "Ａ" is "A".
    let typed = "\u{FB01}ne horse battery staple \u{FF21}";
    let r = app.sign_up_with(&to, "en", typed).await;
    assert_eq!(r.status(), 201);
    let pin = r.json::<Value>().await.unwrap()["pin"].as_str().unwrap().to_owned();
    let token = app.next_mail(&to).await.token();
    assert_eq!(app.verify(&token).await.status(), 200);

    assert_active_answer(&app.auth_answer(&json!(pin), typed).await, &pin, &to, "en");
    assert_active_answer(&app.auth_answer(&json!(pin), "fine horse battery staple A").await, &pin, &to, "en");
    for wrong in ["fine horse battery staple a", "Fine horse battery staple A", "fine  horse battery staple A"] {
        app.auth_answer(&json!(pin), wrong).await.assert_error(401, "INVALID_CREDENTIALS");
    }
}

async fn a_pending_account_is_403_email_not_verified_only_with_the_right_passphrase(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("pending");
    let r = app.sign_up(&to, "en").await;
    assert_eq!(r.status(), 201);
    let pin = r.json::<Value>().await.unwrap()["pin"].as_str().unwrap().to_owned();

    let unknown = app.auth_answer(&json!(unknown_pin()), WRONG).await;
    unknown.assert_error(401, "INVALID_CREDENTIALS");
    let wrong = app.auth_answer(&json!(pin), WRONG).await;
    wrong.assert_error(401, "INVALID_CREDENTIALS");
    assert_eq!(wrong.raw, unknown.raw, "a wrong passphrase does not reveal that the account is pending");

    let right = app.auth_answer(&json!(pin), PASSPHRASE).await;
    right.assert_error(403, "EMAIL_NOT_VERIFIED");
    assert_ne!(right.body["instructions"], unknown.body["instructions"], "the assistant is told what to do now: {}", right.body);

    // Verified, the same check passes.
    let token = app.next_mail(&to).await.token();
    assert_eq!(app.verify(&token).await.status(), 200);
    assert_active_answer(&app.auth_answer(&json!(pin), PASSPHRASE).await, &pin, &to, "en");
}

async fn malformed_input_is_422_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let pin = unknown_pin();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"passphrase": PASSPHRASE}), "pin"),
        (json!({"pin": "12ab56", "passphrase": PASSPHRASE}), "pin"),
        (json!({"pin": "0123456", "passphrase": PASSPHRASE}), "pin"),
        (json!({"pin": "123", "passphrase": PASSPHRASE}), "pin"),
        (json!({"pin": "", "passphrase": PASSPHRASE}), "pin"),
        (json!({"pin": -123456, "passphrase": PASSPHRASE}), "pin"),
        (json!({"pin": 123456.5, "passphrase": PASSPHRASE}), "pin"),
        (json!({"pin": true, "passphrase": PASSPHRASE}), "pin"),
        (json!({"pin": ["123456"], "passphrase": PASSPHRASE}), "pin"),
        (json!({"pin": pin}), "passphrase"),
        (json!({"pin": pin, "passphrase": ""}), "passphrase"),
        (json!({"pin": pin, "passphrase": 42}), "passphrase"),
        (json!({"pin": pin, "passphrase": "a".repeat(4097)}), "passphrase"),
    ];
    for (body, field) in cases {
        let r = app.post("/api/auth/check", &body).await;
        let a = Answer::read(r, PASSPHRASE).await;
        let shown = body.to_string().chars().take(80).collect::<String>();
        assert_eq!(a.status, 422, "{shown}: {}", a.body);
        assert_eq!(a.body["code"], "INVALID_INPUT", "{shown}: {}", a.body);
        assert_eq!(a.body["field"], field, "{shown}: {}", a.body);
        assert!(a.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{shown}: {}", a.body);
    }
    // The refusal says what a PIN looks like: its length (the default 6 on every server the suite
    // targets) and no leading 0 — not just "a number" for `000000`.
    for (pin, locale, says) in [("000000", "en", ["6 digits", "does not start with 0"]), ("012345", "ru", ["6", "не начинается с 0"])] {
        let r = app.client.post(app.url("/api/auth/check")).header("accept-language", locale).json(&json!({"pin": pin, "passphrase": PASSPHRASE}));
        let r = match &app.api_key { Some(key) => r.bearer_auth(key), None => r }.send().await.unwrap();
        let a = Answer::read(r, PASSPHRASE).await;
        assert_eq!((a.status, a.body["field"].as_str()), (422, Some("pin")), "{}", a.body);
        let message = a.body["message"].as_str().unwrap_or_default();
        assert!(says.iter().all(|s| message.contains(s)), "{pin}: {message}");
    }
    // 4096 characters are still checked (and wrong).
    let a = app.auth_answer(&json!(unknown_pin()), &"b".repeat(4096)).await;
    a.assert_error(401, "INVALID_CREDENTIALS");
}

async fn the_check_needs_the_api_key_and_keyless_calls_are_not_counted(backend: Backend) {
    let mut options = Options::new(backend);
    options.api_keys = Some("auth-check-key-6b2d94e1");
    let app = spawn_with(options).await;
    let key = app.api_key.clone().expect("a server with a service key (GPT_USER_TEST_API_KEY): the in-process host always has one");
    let to = email("key");
    let pin = app.active_user(&to).await;
    let url = app.url("/api/auth/check");
    let body = json!({"pin": pin, "passphrase": PASSPHRASE});

    // More keyless calls than the free failures of a PIN.
    for _ in 0..6 {
        let r = app.client.post(&url).json(&body).send().await.unwrap();
        let a = Answer::read(r, PASSPHRASE).await;
        assert_eq!(a.status, 401, "{}", a.body);
        assert_eq!(a.body["code"], "API_KEY_REQUIRED", "{}", a.body);
    }
    let r = app.client.post(&url).bearer_auth(format!("{key}x")).json(&body).send().await.unwrap();
    let a = Answer::read(r, PASSPHRASE).await;
    assert_eq!(a.status, 401, "a wrong key: {}", a.body);
    assert_ne!(a.body["code"], "INVALID_CREDENTIALS", "the key is refused before the passphrase is looked at: {}", a.body);

    // Nothing was counted against the PIN, and the right key passes.
    assert_active_answer(&app.auth_answer(&json!(pin), PASSPHRASE).await, &pin, &to, "en");
}

async fn fifty_concurrent_wrong_guesses_on_one_pin_get_five_401s_and_429s_with_retry_after(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("burst");
    let pin = app.active_user(&to).await;
    let pin_value = json!(pin);
    let calls = (0..50).map(|_| app.auth_answer(&pin_value, WRONG));
    let answers = futures::future::join_all(calls).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    let failed = statuses.iter().filter(|s| **s == 401).count();
    assert!(failed <= 5, "at most 5 guesses were checked: {statuses:?}");
    assert_eq!(failed, 5, "the first 5 failures are free: {statuses:?}");
    for a in &answers {
        match a.status {
            401 => {
                a.assert_error(401, "INVALID_CREDENTIALS");
            }
            429 => {
                a.assert_error(429, "TOO_MANY_ATTEMPTS");
                // All 429s came while the count stood at 5 failures: a delay of 1 s.
                assert_eq!(a.retry_after, Some(1), "Retry-After in seconds: {}", a.body);
            }
            other => panic!("only 401 or 429, not {other}: {}", a.body),
        }
    }
}

async fn a_success_resets_the_count_of_failures(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("reset");
    let pin = app.active_user(&to).await;
    let pin_value = json!(pin);
    for _ in 0..2 {
        for _ in 0..4 {
            app.auth_answer(&pin_value, WRONG).await.assert_error(401, "INVALID_CREDENTIALS");
        }
        // The fifth attempt in a row is free; its success starts the count again.
        assert_active_answer(&app.auth_answer(&pin_value, PASSPHRASE).await, &pin, &to, "en");
    }
    // 4 wrong, 1 right, 4 wrong, 1 right, and now five wrong ones in a row are all checked...
    for i in 0..5 {
        let a = app.auth_answer(&pin_value, WRONG).await;
        assert_eq!(a.status, 401, "failure {} since the last success: {}", i + 1, a.body);
    }
    // ...and the sixth waits, even with the right passphrase: the count runs again.
    let a = app.auth_answer(&pin_value, PASSPHRASE).await;
    a.assert_error(429, "TOO_MANY_ATTEMPTS");
    assert_eq!(a.retry_after, Some(1), "{}", a.body);
}

async fn the_passphrase_never_appears_in_any_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    // Each call below goes through `Answer::read`, which fails on the passphrase in a header or
    // the body; this test makes sure every kind of answer is among them.
    let secret = "a secret passphrase only this test knows 7d0f";
    let to = email("secret");
    let r = app.sign_up_with(&to, "en", secret).await;
    assert_eq!(r.status(), 201);
    let pin = r.json::<Value>().await.unwrap()["pin"].as_str().unwrap().to_owned();
    let pending = app.auth_answer(&json!(pin), secret).await;
    assert_eq!(pending.status, 403);
    let token = app.next_mail(&to).await.token();
    assert_eq!(app.verify(&token).await.status(), 200);

    let mut statuses = vec![pending.status];
    statuses.push(app.auth_answer(&json!(pin), secret).await.status);
    for i in 0..5 {
        let wrong = format!("{secret} but wrong {i}");
        statuses.push(app.auth_answer(&json!(pin), &wrong).await.status);
    }
    statuses.push(app.auth_answer(&json!(pin), secret).await.status);
    statuses.push(app.auth_answer(&json!(unknown_pin()), secret).await.status);
    for body in [json!({"pin": "12ab56", "passphrase": secret}), json!({"pin": pin, "passphrase": format!("{secret}{}", "z".repeat(4097))})] {
        let a = Answer::read(app.post("/api/auth/check", &body).await, secret).await;
        statuses.push(a.status);
    }
    assert_eq!(statuses, [403, 200, 401, 401, 401, 401, 401, 429, 401, 422, 422], "every kind of answer was seen");
}
