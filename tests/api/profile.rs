//! SPEC §2.2 over HTTP, on SQLite and on PostgreSQL: Update_Init, Update_Load, Update_Save and the
//! recovery page's request, as any server (ours elsewhere, Spin) must answer them. What needs the
//! host's clock or database — a pending account (its sign-up mail throttles the re-send for a
//! minute), blocked accounts, expiry, a second link within the minute, conceal mode, a lost
//! database — is in `tests/host/profile.rs`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::helpers::{Backend, PASSPHRASE, email, is_russian, rfc3339_utc_seconds, spawn_app, without_address};
use crate::on_both_backends;

/// A valid new passphrase (the old one is `PASSPHRASE`).
const NEW_PASSPHRASE: &str = "a brand new passphrase for the profile page";
/// Valid in shape but longer than any PIN this server hands out (6 digits by default).
const UNKNOWN_PIN: &str = "987654321012";

on_both_backends!(
    init_by_email_answers_200_and_emails_a_profile_link,
    init_by_pin_accepts_a_string_and_a_json_integer,
    init_with_email_and_pin_uses_the_email,
    init_of_an_unknown_email_or_pin_is_404_user_not_found,
    a_second_init_within_a_minute_is_throttled_with_retry_after,
    bad_init_input_is_422_naming_the_field,
    the_profile_link_email_of_a_russian_account_is_in_russian,
    load_shows_the_profile_and_does_not_consume_the_token,
    load_of_a_bad_or_unknown_token_is_410,
    save_changes_the_locale_and_answers_in_the_new_locale,
    a_passphrase_change_emails_a_notice_in_the_accounts_new_locale,
    a_refused_save_is_422_naming_the_field_and_leaves_the_token_usable,
    a_saved_link_is_spent_for_load_and_save,
    sixteen_concurrent_saves_with_one_token_have_exactly_one_winner,
    request_answers_alike_for_existing_pending_and_unknown_addresses,
    browser_calls_from_another_origin_are_refused,
);

/// Asserts an error answer: status, code and a message; returns the body.
async fn assert_error(r: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status().as_u16(), status);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "a message: {body}");
    body
}

async fn assert_error_with_instructions(r: reqwest::Response, status: u16, code: &str) -> Value {
    let body = assert_error(r, status, code).await;
    assert!(body["instructions"].as_str().is_some_and(|m| !m.is_empty()), "instructions for the assistant: {body}");
    body
}

async fn init_by_email_answers_200_and_emails_a_profile_link(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("prof");
    app.active_user(&to).await;
    let r = app.profile_init(&json!({"email": to.to_uppercase()})).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body["instructions"].as_str().is_some_and(|m| !m.is_empty()), "{body}");

    let mail = app.next_mail(&to).await;
    let token = mail.token();
    assert_eq!(token.len(), 43, "256 bits in base64url: {token}");
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
    assert!(!body.to_string().contains(&token), "the token reaches only the mailbox: {body}");
    let link = format!("{}/profile#token={token}", app.base);
    assert!(mail.link().starts_with(&link), "the link opens the profile page with the token in the fragment: {}", mail.link());
    assert!(mail.text.contains(&link), "the text part carries the link");
    assert!(mail.html.contains(&link), "the HTML part carries the same link");
    assert!(!mail.subject.is_empty() && !is_russian(&mail.subject), "an English subject for an English account: {}", mail.subject);
    assert!(mail.text.contains("60"), "the email says how long the link is valid (60 minutes): {}", mail.text);
    assert_eq!(app.profile_load(&token).await.status(), 200, "the emailed token opens the profile");
}

async fn init_by_pin_accepts_a_string_and_a_json_integer(backend: Backend) {
    let app = spawn_app(backend).await;
    let (by_string, by_integer) = (email("pin-s"), email("pin-i"));
    let pin_s = app.active_user(&by_string).await;
    let pin_i = app.active_user(&by_integer).await;

    let r = app.profile_init(&json!({"pin": pin_s})).await;
    assert_eq!(r.status(), 200, "PIN as a string");
    let mail = app.next_mail(&by_string).await;
    assert!(mail.text.contains(&format!("{}/profile#token=", app.base)), "{}", mail.text);
    assert_eq!(app.profile_load(&mail.token()).await.json::<Value>().await.unwrap()["pin"], pin_s.as_str());

    let number: u64 = pin_i.parse().unwrap();
    let r = app.profile_init(&json!({"pin": number})).await;
    assert_eq!(r.status(), 200, "PIN as a JSON integer");
    let mail = app.next_mail(&by_integer).await;
    assert!(mail.text.contains(&format!("{}/profile#token=", app.base)), "{}", mail.text);
    let profile: Value = app.profile_load(&mail.token()).await.json().await.unwrap();
    assert_eq!(profile["pin"], pin_i.as_str(), "the integer named this account");
    assert_eq!(profile["email"], by_integer.as_str());
}

async fn init_with_email_and_pin_uses_the_email(backend: Backend) {
    let app = spawn_app(backend).await;
    let (by_email, by_pin) = (email("wins"), email("loses"));
    app.active_user(&by_email).await;
    let other_pin = app.active_user(&by_pin).await;

    let r = app.profile_init(&json!({"email": by_email, "pin": other_pin})).await;
    assert_eq!(r.status(), 200);
    let mail = app.next_mail(&by_email).await;
    let profile: Value = app.profile_load(&mail.token()).await.json().await.unwrap();
    assert_eq!(profile["email"], by_email.as_str(), "the link is for the account of the email");

    // Nothing went to the PIN's account: its own request is not throttled.
    let r = app.profile_init(&json!({"pin": other_pin})).await;
    assert_eq!(r.status(), 200, "no profile link was sent to the PIN's account before");
    assert!(app.next_mail(&by_pin).await.text.contains("/profile#token="));

    // The email is used alone: an unknown email with a known PIN is not found.
    let r = app.profile_init(&json!({"email": email("nobody"), "pin": other_pin})).await;
    assert_error_with_instructions(r, 404, "USER_NOT_FOUND").await;
}

async fn init_of_an_unknown_email_or_pin_is_404_user_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let number: u64 = UNKNOWN_PIN.parse().unwrap();
    for body in [json!({"email": email("nobody")}), json!({"pin": UNKNOWN_PIN}), json!({"pin": number})] {
        let r = app.profile_init(&body).await;
        assert_eq!(r.status(), 404, "{body}");
        assert_error_with_instructions(r, 404, "USER_NOT_FOUND").await;
    }
}

async fn a_second_init_within_a_minute_is_throttled_with_retry_after(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("again");
    let pin = app.active_user(&to).await;
    assert_eq!(app.profile_init(&json!({"email": to})).await.status(), 200);
    app.next_mail(&to).await;
    // By PIN this time: the limit is per address, however the account is named.
    let r = app.profile_init(&json!({"pin": pin})).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_error(r, 429, "TOO_MANY_REQUESTS").await;
}

async fn bad_init_input_is_422_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "email"),
        (json!({"email": "not-an-address"}), "email"),
        (json!({"email": 42}), "email"),
        (json!({"email": format!("{}@example.com", "a".repeat(300))}), "email"),
        (json!({"pin": "12ab56"}), "pin"),
        (json!({"pin": "0123456"}), "pin"),
        (json!({"pin": "123"}), "pin"),
        (json!({"pin": ""}), "pin"),
        (json!({"pin": -123456}), "pin"),
        (json!({"pin": 123456.5}), "pin"),
        (json!({"pin": true}), "pin"),
        (json!({"pin": ["123456"]}), "pin"),
    ];
    for (body, field) in cases {
        let r = app.profile_init(&body).await;
        assert_eq!(r.status(), 422, "{body}");
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["code"], "INVALID_INPUT", "{body}");
        assert_eq!(answer["field"], field, "{body}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
}

async fn the_profile_link_email_of_a_russian_account_is_in_russian(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("ru-prof");
    app.active_user_in(&to, "ru").await;
    assert_eq!(app.profile_init(&json!({"email": to})).await.status(), 200);
    let mail = app.next_mail(&to).await;
    assert!(is_russian(&mail.subject), "a Russian subject: {}", mail.subject);
    assert!(is_russian(&mail.text), "a Russian text part: {}", mail.text);
    assert!(is_russian(&mail.html), "a Russian HTML part");
    let link = format!("{}/profile#token={}", app.base, mail.token());
    assert_eq!(mail.token().len(), 43);
    assert!(mail.text.contains(&link) && mail.html.contains(&link), "both parts carry the link");
    assert!(mail.text.contains("60"), "the email says how long the link is valid: {}", mail.text);
}

async fn load_shows_the_profile_and_does_not_consume_the_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("load");
    let pin = app.active_user(&to).await;
    let token = app.profile_link_token(&to).await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    for _ in 0..2 {
        let r = app.profile_load(&token).await;
        assert_eq!(r.status(), 200, "loading does not consume the link");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["pin"], pin.as_str(), "{body}");
        assert_eq!(body["email"], to.as_str());
        assert_eq!(body["email_verified"], true);
        assert_eq!(body["locale"], "en");
        assert_eq!(body["status"], "active");
        let created = body["created_at"].as_str().unwrap_or_else(|| panic!("created_at is a string: {body}"));
        let seconds = rfc3339_utc_seconds(created).unwrap_or_else(|| panic!("created_at is RFC 3339 UTC: {created}"));
        assert!((seconds - now).abs() < 600, "created_at is the sign-up time, not {created}");
        assert!(!body.to_string().contains("argon2") && body.get("passphrase_hash").is_none(), "no passphrase hash: {body}");
    }
    let r = app.profile_save(&json!({"token": token, "locale": "ru"})).await;
    assert_eq!(r.status(), 200, "the loaded link still saves");
}

async fn load_of_a_bad_or_unknown_token_is_410(backend: Backend) {
    let app = spawn_app(backend).await;
    for token in ["A".repeat(43), "not-a-token".to_owned()] {
        let r = app.profile_load(&token).await;
        assert_eq!(r.status(), 410, "{token:?}");
        assert_error_with_instructions(r, 410, "INVALID_TOKEN").await;
    }
    let r = app.profile_save(&json!({"token": "A".repeat(43), "locale": "ru"})).await;
    assert_error(r, 410, "INVALID_TOKEN").await;
}

async fn save_changes_the_locale_and_answers_in_the_new_locale(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("locale");
    app.active_user(&to).await;
    let token = app.profile_link_token(&to).await;
    let r = app.profile_save(&json!({"token": token, "locale": "ru"})).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["locale"], "ru", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(is_russian(message), "answered in the account's new locale: {message}");
}

async fn a_passphrase_change_emails_a_notice_in_the_accounts_new_locale(backend: Backend) {
    let app = spawn_app(backend).await;
    let recovery = format!("{}/profile", app.base);

    // English account, changed to Russian together with the passphrase: a Russian notice.
    let to = email("newpass-ru");
    app.active_user(&to).await;
    let token = app.profile_link_token(&to).await;
    let r = app.profile_save(&json!({"token": token, "locale": "ru", "passphrase": NEW_PASSPHRASE})).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["locale"], "ru");
    assert!(is_russian(body["message"].as_str().unwrap()), "{body}");
    assert!(!body.to_string().contains(NEW_PASSPHRASE));
    let notice = app.next_mail(&to).await;
    assert!(is_russian(&notice.subject), "the notice is in the new locale: {}", notice.subject);
    assert!(is_russian(&notice.text), "{}", notice.text);
    assert!(notice.text.contains(&recovery) && notice.html.contains(&recovery), "it links the recovery page: {}", notice.text);
    assert!(!notice.text.contains("#token="), "the recovery page, not a profile link: {}", notice.text);
    assert!(!notice.text.contains(NEW_PASSPHRASE) && !notice.html.contains(NEW_PASSPHRASE));

    // English account, passphrase only: an English notice.
    let to = email("newpass-en");
    app.active_user(&to).await;
    let token = app.profile_link_token(&to).await;
    let r = app.profile_save(&json!({"token": token, "passphrase": NEW_PASSPHRASE})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["locale"], "en", "the locale is kept");
    let notice = app.next_mail(&to).await;
    assert!(!notice.subject.is_empty() && !is_russian(&notice.subject), "{}", notice.subject);
    assert!(notice.text.contains(&recovery), "{}", notice.text);
    assert!(!notice.text.contains("#token="));
}

async fn a_refused_save_is_422_naming_the_field_and_leaves_the_token_usable(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("refused");
    app.active_user(&to).await;
    let token = app.profile_link_token(&to).await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"token": token, "passphrase": "short-pass-7x"}), "passphrase"),
        (json!({"token": token, "passphrase": "y".repeat(257)}), "passphrase"),
        (json!({"token": token, "locale": "ru", "passphrase": "short-pass-7x"}), "passphrase"),
        (json!({"token": token, "locale": "xx"}), "locale"),
        (json!({"token": token, "locale": "xx", "passphrase": NEW_PASSPHRASE}), "locale"),
        (json!({"token": token}), "locale"),
    ];
    for (body, field) in cases {
        let r = app.profile_save(&body).await;
        assert_eq!(r.status(), 422, "{field}: {}", body["locale"]);
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["code"], "INVALID_INPUT");
        assert_eq!(answer["field"], field, "{answer}");
        let r = app.profile_load(&token).await;
        assert_eq!(r.status(), 200, "a refused save leaves the link usable");
        assert_eq!(r.json::<Value>().await.unwrap()["locale"], "en", "nothing was saved");
    }
    let r = app.profile_save(&json!({"token": token, "locale": "ru", "passphrase": NEW_PASSPHRASE})).await;
    assert_eq!(r.status(), 200, "the link still saves");
    assert!(is_russian(&app.next_mail(&to).await.subject), "one notice, for the save that happened");
}

async fn a_saved_link_is_spent_for_load_and_save(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("spent");
    app.active_user(&to).await;
    let token = app.profile_link_token(&to).await;
    assert_eq!(app.profile_save(&json!({"token": token, "locale": "ru"})).await.status(), 200);
    assert_error_with_instructions(app.profile_load(&token).await, 410, "INVALID_TOKEN").await;
    assert_error(app.profile_save(&json!({"token": token, "locale": "en"})).await, 410, "INVALID_TOKEN").await;
    assert_error(app.profile_save(&json!({"token": token, "passphrase": NEW_PASSPHRASE})).await, 410, "INVALID_TOKEN").await;
}

async fn sixteen_concurrent_saves_with_one_token_have_exactly_one_winner(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("race");
    app.active_user(&to).await;
    let token = app.profile_link_token(&to).await;
    let bodies: Vec<Value> = (0..16).map(|i| json!({"token": token, "locale": if i % 2 == 0 { "ru" } else { "en" }})).collect();
    let calls = bodies.iter().map(|body| app.profile_save(body));
    let statuses: Vec<u16> = futures::future::join_all(calls).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 410).count(), 15, "{statuses:?}");
    assert_eq!(app.profile_load(&token).await.status(), 410);
}

async fn request_answers_alike_for_existing_pending_and_unknown_addresses(backend: Backend) {
    let app = spawn_app(backend).await;
    let (known, pending, unknown) = (email("req-known"), email("req-pending"), email("req-unknown"));
    app.active_user(&known).await;
    assert_eq!(app.sign_up(&pending, "en").await.status(), 201);
    app.next_mail(&pending).await;

    let mut answers = Vec::new();
    for to in [&unknown, &pending, &known] {
        let r = app.profile_request(to).await;
        answers.push((r.status().as_u16(), without_address(r.json().await.unwrap(), to)));
    }
    assert_eq!(answers[0].0, 200, "{answers:?}");
    assert!(answers[0].1["message"].as_str().is_some_and(|m| !m.is_empty()), "{answers:?}");
    assert!(answers.iter().all(|a| *a == answers[0]), "one answer for every address: {answers:?}");

    let mail = app.next_mail(&known).await;
    assert!(mail.link().starts_with(&format!("{}/profile#token=", app.base)), "{}", mail.link());
    assert_eq!(mail.token().len(), 43);
    assert_eq!(app.profile_load(&mail.token()).await.status(), 200);
    // Asked before the known address, so its mail would have come first.
    assert!(app.try_next_mail(&unknown, Duration::from_secs(2)).await.is_none(), "no mail to an address without an account");

    // Throttled now, and still the same answer.
    let r = app.profile_request(&known).await;
    assert_eq!((r.status().as_u16(), without_address(r.json().await.unwrap(), &known)), answers[0]);

    let r = app.profile_request("not-an-address").await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "email");
}

async fn browser_calls_from_another_origin_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("origin");
    app.active_user(&to).await;
    let token = app.profile_link_token(&to).await;
    let calls = [
        ("/api/profile/request", json!({"email": to})),
        ("/api/profile/load", json!({"token": token})),
        ("/api/profile/save", json!({"token": token, "locale": "ru", "passphrase": PASSPHRASE})),
    ];
    for (path, body) in calls {
        let r = app.client.post(app.url(path)).header("origin", "https://evil.example").json(&body).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    let r = app.client.post(app.url("/api/profile/load")).header("origin", app.base.as_str()).json(&json!({"token": token})).send().await.unwrap();
    assert_eq!(r.status(), 200, "the page's own origin is served");
    let profile: Value = r.json().await.unwrap();
    assert_eq!(profile["locale"], "en", "the refused save changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profile_page_has_the_verify_pages_security_and_speaks_the_browser_language() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = app.client.get(app.url("/profile")).header("accept-language", "ru-RU,ru;q=0.9").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'sha256-"), "{csp}");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let ru = r.text().await.unwrap();
    for id in ["profile", "pin", "email", "locale", "passphrase", "passphrase2", "passphrase-rule", "save", "result", "recovery", "recovery-email", "recovery-send", "recovery-result"] {
        assert!(ru.contains(&format!("id=\"{id}\"")), "the page has #{id}");
    }
    assert!(ru.contains("<section id=\"email-change\" hidden"), "the email-change section waits for the next issue");
    assert!(!ru.contains("http://") && !ru.contains("https://"), "no third-party assets");
    let title = |html: &str| html.split("<title>").nth(1).and_then(|t| t.split("</title>").next()).unwrap_or_default().to_owned();
    assert!(is_russian(&title(&ru)), "a Russian title: {}", title(&ru));
    let en = app.get("/profile").await.text().await.unwrap();
    assert!(!title(&en).is_empty() && !is_russian(&title(&en)), "an English title by default: {}", title(&en));
}
