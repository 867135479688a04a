//! SPEC §2.3 over HTTP: the six email-change steps as any server (ours elsewhere, Spin) must answer
//! them, each test on SQLite, on PostgreSQL, and on SQLite with Redis holding the codes (against a
//! server elsewhere, once). Every code read from mail is remembered: on drop the test fails if one
//! shows in the log or in any email-change answer. What needs the host's clock, database or
//! configuration — resend cooldown and send count over time, code TTL, the new-address window,
//! flow expiry, a second start, blocked accounts, two users racing for one address, Redis stopped
//! mid-flow — is in `tests/host/email_change.rs`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Answer, Backend, EcFlow, email, is_russian, masked, spawn_app, words, wrong_code};
use crate::on_every_store;

on_every_store!(
    the_whole_change_moves_the_address_revokes_the_old_token_and_tells_the_old_address,
    five_wrong_codes_kill_the_flow_and_every_further_step_is_429_too_many_attempts,
    attempts_are_counted_per_code_phase_and_five_wrong_codes_for_the_new_address_kill_the_flow_too,
    steps_out_of_order_answer_409_wrong_step_with_the_flows_state,
    an_unknown_flow_and_another_users_flow_are_404_flow_not_found,
    a_second_start_within_a_minute_is_429_and_the_first_flow_goes_on,
    check_answers_available_email_taken_or_invalid_input_and_changes_nothing,
    check_answers_ten_times_per_flow_then_429_too_many_checks_and_the_flow_goes_on,
    request_new_refuses_a_taken_same_or_invalid_address_and_sends_nothing,
    a_code_that_is_not_six_digits_is_422_naming_code_and_costs_no_attempt,
    missing_or_mistyped_fields_are_422_naming_the_field,
    a_malformed_or_unknown_token_is_410_invalid_token,
    calls_from_another_origin_are_403_and_change_nothing,
    a_resend_within_sixty_seconds_is_429_with_retry_after_and_the_code_still_works,
    answers_follow_accept_language_and_mails_follow_the_accounts_locale,
    thirty_two_concurrent_confirm_new_with_the_right_code_have_exactly_one_winner,
    thirty_two_concurrent_confirm_current_with_the_right_code_move_the_flow_once,
    thirty_two_concurrent_wrong_codes_use_exactly_five_attempts,
);

/// Every step after start, with a body valid in shape (`code` and `email` as given).
fn every_step(code: &str, address: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("resend", json!({})),
        ("confirm-current", json!({"code": code})),
        ("check", json!({"email": address})),
        ("request-new", json!({"email": address})),
        ("confirm-new", json!({"code": code})),
    ]
}

/// Asserts 409 WRONG_STEP naming `state`.
fn assert_wrong_step(a: &Answer, state: &str, step: &str) {
    assert_eq!((a.status, a.body["code"].as_str()), (409, Some("WRONG_STEP")), "{step}: {}", a.body);
    assert_eq!(a.body["state"], state, "{step}: {}", a.body);
    assert!(a.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{step}: {}", a.body);
}

/// Asserts 422 INVALID_CODE with `left` attempts left.
fn assert_invalid_code(a: &Answer, left: u64) {
    a.expect(422, "INVALID_CODE");
    assert_eq!(a.body["attempts_left"], left, "{}", a.body);
    assert!(a.retry_after.is_none(), "no Retry-After for a wrong code");
}

/// Asserts 429 TOO_MANY_ATTEMPTS without Retry-After (waiting does not help: start again).
fn assert_dead(a: &Answer, step: &str) {
    assert_eq!((a.status, a.body["code"].as_str()), (429, Some("TOO_MANY_ATTEMPTS")), "{step}: {}", a.body);
    assert!(a.retry_after.is_none(), "{step}: a dead flow has no Retry-After");
}

/// Asserts 422 INVALID_INPUT naming `field`.
fn assert_invalid_input(a: &Answer, field: &str, what: &str) {
    assert_eq!((a.status, a.body["code"].as_str()), (422, Some("INVALID_INPUT")), "{what}: {}", a.body);
    assert_eq!(a.body["field"], field, "{what}: {}", a.body);
    assert!(a.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {}", a.body);
}

/// Asserts 429 TOO_MANY_REQUESTS with a Retry-After of at most a minute.
fn assert_throttled(a: &Answer) {
    a.expect(429, "TOO_MANY_REQUESTS");
    let retry = a.retry_after.expect("Retry-After");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
}

async fn the_whole_change_moves_the_address_revokes_the_old_token_and_tells_the_old_address(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.ec_user("ec-old").await;
    let new = email("ec-new");

    let (flow, started) = app.ec_start(&user.token).await;
    let message = started.body["message"].as_str().unwrap();
    assert!(message.contains(&masked(&user.email)) && !message.contains(&user.email), "start names the current address masked: {message}");
    let (mail, code) = app.next_code_mail(&user.email).await;
    assert!(!mail.subject.is_empty() && !is_russian(&mail.subject), "an English subject for an English account: {}", mail.subject);
    assert!(words(&mail.text).any(|w| w == "10"), "the mail says how long the code is valid (10 minutes): {}", mail.text);
    assert!(!mail.text.contains("#token="), "a code mail carries no profile link");

    let a = app.ec(&flow, "confirm-current", json!({"code": code})).await;
    assert_eq!(a.ok()["state"], "enter_new");
    let a = app.ec(&flow, "check", json!({"email": new})).await;
    assert_eq!(a.ok()["available"], true);

    let a = app.ec(&flow, "request-new", json!({"email": new})).await;
    let body = a.ok();
    assert_eq!(body["state"], "confirm_new", "{body}");
    assert_eq!(body["window_s"], 600, "the default window: {body}");
    assert_eq!(body["resend_after_s"], 60, "{body}");
    assert_eq!(body["sends_left"], 3, "5 codes per flow, the one to the current address counted: {body}");
    assert!(body["code_valid_s"].as_u64().is_some_and(|s| (1..=600).contains(&s)), "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(&masked(&new)), "request-new names the new address masked: {message}");
    let (mail, code_new) = app.next_code_mail(&new).await;
    assert!(words(&mail.text).any(|w| w == "10"), "{}", mail.text);

    let a = app.ec(&flow, "confirm-new", json!({"code": code_new})).await;
    let body = a.ok().clone();
    assert_eq!(body["state"], "done", "{body}");
    assert_eq!(body["email"], new.as_str(), "{body}");
    let fresh = body["token"].as_str().unwrap_or_else(|| panic!("a fresh profile token: {body}")).to_owned();
    app.remember_secret(&fresh);
    assert_eq!(fresh.len(), 43, "256 bits in base64url: {fresh}");
    assert_ne!(fresh, user.token);

    // Every token of the user is revoked, the one used included; the fresh one shows the new address.
    let r = app.profile_load(&user.token).await;
    Answer::read(r, &user.token).await.expect(410, "INVALID_TOKEN");
    let r = app.profile_load(&fresh).await;
    assert_eq!(r.status(), 200);
    let profile: Value = r.json().await.unwrap();
    assert_eq!(profile["email"], new.as_str(), "{profile}");
    assert_eq!(profile["email_verified"], true, "{profile}");
    assert_eq!(profile["pin"], user.pin.as_str(), "the same account: {profile}");
    assert_eq!(profile["status"], "active", "{profile}");

    // The old address is told, with the new address masked and the recovery page.
    let notice = app.next_mail(&user.email).await;
    assert!(!notice.subject.is_empty() && !is_russian(&notice.subject), "{}", notice.subject);
    assert!(notice.text.contains(&masked(&new)) && !notice.text.contains(&new), "the new address, masked: {}", notice.text);
    assert!(notice.text.contains(&format!("{}/profile", app.base)) && !notice.text.contains("#token="), "the recovery page: {}", notice.text);
    assert!(!words(&notice.text).any(|w| w == code || w == code_new), "no code in the notice");
    assert!(app.try_next_mail(&new, Duration::from_secs(1)).await.is_none(), "nothing more to the new address");

    // The old address belongs to no account now; the new one is taken.
    let r = app.profile_init(&json!({"email": user.email})).await;
    assert_eq!(r.status(), 404, "no account has the old address");
    let r = app.sign_up(&new, "en").await;
    assert_eq!(r.status(), 409, "the new address is registered");
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "EMAIL_ALREADY_REGISTERED");
    let token = app.profile_link_token(&new).await;
    let profile: Value = app.profile_load(&token).await.json().await.unwrap();
    assert_eq!(profile["pin"], user.pin.as_str(), "profile links go to the new address: {profile}");
}

async fn five_wrong_codes_kill_the_flow_and_every_further_step_is_429_too_many_attempts(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.ec_user("ec-dead").await;
    let (flow, code) = app.ec_started(&user).await;
    let wrong = wrong_code(&code);
    for left in [4, 3, 2, 1, 0] {
        assert_invalid_code(&app.ec(&flow, "confirm-current", json!({"code": wrong})).await, left);
    }
    assert_dead(&app.ec(&flow, "confirm-current", json!({"code": code})).await, "the right code after five wrong ones");
    for (step, extra) in every_step(&code, &email("ec-dead-new")) {
        assert_dead(&app.ec(&flow, step, extra).await, step);
    }
    assert!(app.try_next_mail(&user.email, Duration::from_secs(1)).await.is_none(), "a dead flow sends no code");
    let r = app.profile_load(&user.token).await;
    assert_eq!(r.status(), 200, "the profile token still works");
    assert_eq!(r.json::<Value>().await.unwrap()["email"], user.email.as_str(), "nothing changed");
}

async fn attempts_are_counted_per_code_phase_and_five_wrong_codes_for_the_new_address_kill_the_flow_too(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.ec_user("ec-phase").await;
    let new = email("ec-phase-new");
    let (flow, code) = app.ec_started(&user).await;
    for left in [4, 3, 2, 1] {
        assert_invalid_code(&app.ec(&flow, "confirm-current", json!({"code": wrong_code(&code)})).await, left);
    }
    let a = app.ec(&flow, "confirm-current", json!({"code": code})).await;
    assert_eq!(a.ok()["state"], "enter_new", "the right code on the last attempt");

    let code_new = app.ec_request_new(&flow, &new).await;
    for left in [4, 3, 2, 1, 0] {
        assert_invalid_code(&app.ec(&flow, "confirm-new", json!({"code": wrong_code(&code_new)})).await, left);
    }
    assert_dead(&app.ec(&flow, "confirm-new", json!({"code": code_new})).await, "the right new code after five wrong ones");
    assert_dead(&app.ec(&flow, "resend", json!({})).await, "resend");
    let r = app.profile_load(&user.token).await;
    assert_eq!(r.status(), 200, "the profile token still works");
    assert_eq!(r.json::<Value>().await.unwrap()["email"], user.email.as_str(), "the address did not change");
    assert!(app.try_next_mail(&user.email, Duration::from_secs(1)).await.is_none(), "no notice: nothing changed");
}

async fn steps_out_of_order_answer_409_wrong_step_with_the_flows_state(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.ec_user("ec-order").await;
    let new = email("ec-order-new");
    let (flow, code) = app.ec_started(&user).await;

    for (step, extra) in [("check", json!({"email": new})), ("request-new", json!({"email": new})), ("confirm-new", json!({"code": code}))] {
        assert_wrong_step(&app.ec(&flow, step, extra).await, "confirm_current", step);
    }
    assert!(app.try_next_mail(&new, Duration::from_secs(1)).await.is_none(), "a refused request-new sends nothing");
    // A step of the wrong state is not an attempt.
    assert_invalid_code(&app.ec(&flow, "confirm-current", json!({"code": wrong_code(&code)})).await, 4);
    assert_eq!(app.ec(&flow, "confirm-current", json!({"code": code})).await.ok()["state"], "enter_new");

    for (step, extra) in [("confirm-current", json!({"code": code})), ("confirm-new", json!({"code": code})), ("resend", json!({}))] {
        assert_wrong_step(&app.ec(&flow, step, extra).await, "enter_new", step);
    }
    let code_new = app.ec_request_new(&flow, &new).await;

    let other = email("ec-order-other");
    for (step, extra) in [("confirm-current", json!({"code": code_new})), ("check", json!({"email": other})), ("request-new", json!({"email": other}))] {
        assert_wrong_step(&app.ec(&flow, step, extra).await, "confirm_new", step);
    }
    assert_invalid_code(&app.ec(&flow, "confirm-new", json!({"code": wrong_code(&code_new)})).await, 4);
    let a = app.ec(&flow, "confirm-new", json!({"code": code_new})).await;
    let fresh = a.ok()["token"].as_str().unwrap().to_owned();
    app.remember_secret(&fresh);

    // After done: the fresh token finds the flow, which takes no step; the old token is revoked.
    let done = flow.with_token(&fresh);
    for (step, extra) in every_step(&code_new, &other) {
        assert_wrong_step(&app.ec(&done, step, extra).await, "done", step);
    }
    for (step, extra) in every_step(&code_new, &other) {
        app.ec(&flow, step, extra).await.expect(410, "INVALID_TOKEN");
    }
    let r = app.profile_load(&fresh).await;
    assert_eq!(r.json::<Value>().await.unwrap()["email"], new.as_str(), "the steps after done changed nothing");
}

async fn an_unknown_flow_and_another_users_flow_are_404_flow_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let (ann, bob) = (app.ec_user("ec-ann").await, app.ec_user("ec-bob").await);
    let (flow, code) = app.ec_started(&ann).await;
    let free = email("ec-nf-new");

    let unknown = EcFlow { token: ann.token.clone(), flow: uuid::Uuid::new_v4().simple().to_string() };
    for (step, extra) in every_step(&code, &free) {
        app.ec(&unknown, step, extra).await.expect(404, "FLOW_NOT_FOUND");
    }
    // Bob's token with Ann's flow, even with Ann's right code: as unknown as a missing flow.
    let foreign = flow.with_token(&bob.token);
    for (step, extra) in every_step(&code, &free) {
        app.ec(&foreign, step, extra).await.expect(404, "FLOW_NOT_FOUND");
    }
    assert!(app.try_next_mail(&ann.email, Duration::from_secs(1)).await.is_none(), "Bob's resend sent Ann nothing");

    // Ann's flow is untouched: no attempt was counted, and it still takes her code.
    assert_invalid_code(&app.ec(&flow, "confirm-current", json!({"code": wrong_code(&code)})).await, 4);
    assert_eq!(app.ec(&flow, "confirm-current", json!({"code": code})).await.ok()["state"], "enter_new");
}

async fn a_second_start_within_a_minute_is_429_and_the_first_flow_goes_on(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.ec_user("ec-twice").await;
    let (flow, code) = app.ec_started(&user).await;
    assert_throttled(&app.email_change("start", &json!({"token": user.token})).await);
    assert!(app.try_next_mail(&user.email, Duration::from_secs(1)).await.is_none(), "the throttled start sent nothing");
    assert_eq!(app.ec(&flow, "confirm-current", json!({"code": code})).await.ok()["state"], "enter_new", "the first flow was kept");
}

async fn check_answers_available_email_taken_or_invalid_input_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.ec_user("ec-check").await;
    let taken = email("ec-taken");
    app.active_user(&taken).await;
    let flow = app.ec_entering_new(&user).await;
    let free = email("ec-free");

    let a = app.ec(&flow, "check", json!({"email": free})).await;
    assert_eq!(a.ok()["available"], true);
    assert_eq!(app.ec(&flow, "check", json!({"email": free.to_uppercase()})).await.ok()["available"], true, "addresses are compared lower-cased");
    for address in [taken.clone(), taken.to_uppercase()] {
        app.ec(&flow, "check", json!({"email": address})).await.expect(409, "EMAIL_TAKEN");
    }
    let cases = [
        (json!(user.email), "the current address"),
        (json!(user.email.to_uppercase()), "the current address in capitals"),
        (json!("not-an-address"), "not an address"),
        (json!(format!("{}@example.com", "a".repeat(300))), "too long"),
        (json!(42), "not a string"),
        (Value::Null, "null"),
    ];
    for (address, what) in cases {
        assert_invalid_input(&app.ec(&flow, "check", json!({"email": address})).await, "email", what);
    }
    assert_invalid_input(&app.ec(&flow, "check", json!({})).await, "email", "missing");
    assert!(app.try_next_mail(&free, Duration::from_secs(1)).await.is_none(), "check sends nothing");
    // Still waiting for the new address.
    app.ec_request_new(&flow, &free).await;
}

/// Issue 19 item 1: outside conceal mode each check tells whether an address has an account, so
/// a flow gets ten.
async fn check_answers_ten_times_per_flow_then_429_too_many_checks_and_the_flow_goes_on(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.ec_user("ec-checks").await;
    let flow = app.ec_entering_new(&user).await;
    for i in 0..10 {
        let a = app.ec(&flow, "check", json!({"email": email("ec-checks-free")})).await;
        assert_eq!(a.status, 200, "check {i}: {}", a.body);
    }
    let free = email("ec-checks-free");
    let a = app.ec(&flow, "check", json!({"email": free})).await;
    a.expect(429, "TOO_MANY_CHECKS");
    assert!(a.body["instructions"].as_str().is_some_and(|s| !s.is_empty()), "{}", a.body);
    assert!(a.retry_after.is_none(), "no wait helps within this flow");
    // The flow still takes an address.
    app.ec_request_new(&flow, &free).await;
}

async fn request_new_refuses_a_taken_same_or_invalid_address_and_sends_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.ec_user("ec-reqnew").await;
    let taken = email("ec-reqnew-taken");
    app.active_user(&taken).await;
    let flow = app.ec_entering_new(&user).await;

    app.ec(&flow, "request-new", json!({"email": taken})).await.expect(409, "EMAIL_TAKEN");
    assert!(app.try_next_mail(&taken, Duration::from_secs(1)).await.is_none(), "no code to another account's address");
    assert_invalid_input(&app.ec(&flow, "request-new", json!({"email": user.email})).await, "email", "the current address");
    assert_invalid_input(&app.ec(&flow, "request-new", json!({"email": "not-an-address"})).await, "email", "not an address");
    assert_invalid_input(&app.ec(&flow, "request-new", json!({"email": ["x@example.com"]})).await, "email", "not a string");
    assert!(app.try_next_mail(&user.email, Duration::from_secs(1)).await.is_none());

    // The flow still waits for an address (check answers only then) and takes a free one.
    let free = email("ec-reqnew-free");
    assert_eq!(app.ec(&flow, "check", json!({"email": free})).await.ok()["available"], true);
    app.ec_request_new(&flow, &free).await;
}

async fn a_code_that_is_not_six_digits_is_422_naming_code_and_costs_no_attempt(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.ec_user("ec-format").await;
    let new = email("ec-format-new");
    let (flow, code) = app.ec_started(&user).await;
    let not_codes = [
        json!("12345"),
        json!("1234567"),
        json!("12a456"),
        json!("12 456"),
        json!(""),
        json!("١٢٣٤٥٦"), // Arabic-Indic digits: digits, but not ASCII ones
        json!(123456),
        Value::Null,
        json!(true),
        json!(["123456"]),
    ];
    for bad in &not_codes {
        assert_invalid_input(&app.ec(&flow, "confirm-current", json!({"code": bad})).await, "code", &bad.to_string());
    }
    assert_invalid_code(&app.ec(&flow, "confirm-current", json!({"code": wrong_code(&code)})).await, 4);
    assert_eq!(app.ec(&flow, "confirm-current", json!({"code": code})).await.ok()["state"], "enter_new");

    let code_new = app.ec_request_new(&flow, &new).await;
    for bad in &not_codes {
        assert_invalid_input(&app.ec(&flow, "confirm-new", json!({"code": bad})).await, "code", &bad.to_string());
    }
    assert_invalid_code(&app.ec(&flow, "confirm-new", json!({"code": wrong_code(&code_new)})).await, 4);
    let a = app.ec(&flow, "confirm-new", json!({"code": code_new})).await;
    app.remember_secret(a.ok()["token"].as_str().unwrap());
    assert_eq!(a.body["state"], "done");
}

async fn missing_or_mistyped_fields_are_422_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.ec_user("ec-fields").await;
    let (flow, code) = app.ec_started(&user).await;
    let (t, f) = (user.token.as_str(), flow.flow.as_str());
    let free = email("ec-fields-new");
    let cases: Vec<(&str, Value, &str)> = vec![
        ("start", json!({}), "token"),
        ("start", json!({"token": 42}), "token"),
        ("start", json!({"token": null}), "token"),
        ("resend", json!({"token": t}), "flow"),
        ("resend", json!({"token": t, "flow": 7}), "flow"),
        ("resend", json!({"flow": f}), "token"),
        ("confirm-current", json!({"token": t, "flow": f}), "code"),
        ("confirm-current", json!({"token": t, "code": code}), "flow"),
        ("confirm-current", json!({"flow": f, "code": code}), "token"),
        ("confirm-current", json!({"token": [t], "flow": f, "code": code}), "token"),
        ("check", json!({"token": t, "flow": f}), "email"),
        ("check", json!({"token": t, "email": free}), "flow"),
        ("request-new", json!({"token": t, "flow": f}), "email"),
        ("request-new", json!({"token": t, "flow": {"id": f}, "email": free}), "flow"),
        ("confirm-new", json!({"token": t, "flow": f}), "code"),
        ("confirm-new", json!({"flow": f, "code": code}), "token"),
    ];
    for (step, body, field) in cases {
        assert_invalid_input(&app.email_change(step, &body).await, field, &format!("{step} {body}"));
    }
    // Not JSON at all: a 4xx with a JSON error, never a 500.
    for (content_type, body) in [("application/json", b"{\"token\": ".to_vec()), ("application/json", b"nonsense".to_vec()), ("text/plain", b"{}".to_vec())] {
        let r = app.client.post(app.url("/api/email-change/start")).header("content-type", content_type).body(body).send().await.unwrap();
        let status = r.status().as_u16();
        assert!((400..500).contains(&status), "{content_type}: {status}");
        let answer: Value = r.json().await.unwrap_or_else(|_| panic!("a JSON error body ({content_type})"));
        assert!(answer["code"].is_string(), "{answer}");
    }
    assert!(app.try_next_mail(&user.email, Duration::from_secs(1)).await.is_none(), "no refused call sent a code");
    // Nothing was counted.
    assert_invalid_code(&app.ec(&flow, "confirm-current", json!({"code": wrong_code(&code)})).await, 4);
    assert_eq!(app.ec(&flow, "confirm-current", json!({"code": code})).await.ok()["state"], "enter_new");
}

async fn a_malformed_or_unknown_token_is_410_invalid_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.ec_user("ec-token").await;
    let (flow, code) = app.ec_started(&user).await;
    let free = email("ec-token-new");
    for token in ["not-a-token".to_owned(), "A".repeat(43), format!("{}x", user.token)] {
        app.email_change("start", &json!({"token": token})).await.expect(410, "INVALID_TOKEN");
        let bad = flow.with_token(&token);
        for (step, extra) in every_step(&code, &free) {
            app.ec(&bad, step, extra).await.expect(410, "INVALID_TOKEN");
        }
    }
    assert!(app.try_next_mail(&user.email, Duration::from_secs(1)).await.is_none(), "nothing was sent");
    assert_invalid_code(&app.ec(&flow, "confirm-current", json!({"code": wrong_code(&code)})).await, 4);
    assert_eq!(app.ec(&flow, "confirm-current", json!({"code": code})).await.ok()["state"], "enter_new");
}

async fn calls_from_another_origin_are_403_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.ec_user("ec-origin").await;
    let evil = |step: &str, body: Value| {
        let request = app.client.post(app.url(&format!("/api/email-change/{step}"))).header("origin", "https://evil.example").json(&body);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(evil("start", json!({"token": user.token})).await, 403);
    assert!(app.try_next_mail(&user.email, Duration::from_secs(2)).await.is_none(), "the refused start sent nothing");

    // The page's own origin is served (and the refused start did not throttle this one).
    let own = [("origin", app.base.as_str())];
    let a = app.email_change_with("start", &json!({"token": user.token}), &own).await;
    let flow = EcFlow { token: user.token.clone(), flow: a.ok()["flow"].as_str().unwrap().to_owned() };
    let code = app.next_code(&user.email).await;
    for (step, extra) in every_step(&code, &email("ec-origin-new")) {
        assert_eq!(evil(step, flow.body(extra)).await, 403, "{step}");
    }
    // The refused confirm-current neither counted nor moved the flow.
    let a = app.email_change_with("confirm-current", &flow.body(json!({"code": wrong_code(&code)})), &own).await;
    assert_invalid_code(&a, 4);
    let a = app.email_change_with("confirm-current", &flow.body(json!({"code": code})), &own).await;
    assert_eq!(a.ok()["state"], "enter_new");
}

async fn a_resend_within_sixty_seconds_is_429_with_retry_after_and_the_code_still_works(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.ec_user("ec-resend").await;
    let new = email("ec-resend-new");
    let (flow, code) = app.ec_started(&user).await;
    assert_throttled(&app.ec(&flow, "resend", json!({})).await);
    assert!(app.try_next_mail(&user.email, Duration::from_secs(1)).await.is_none(), "the throttled resend sent nothing");
    assert_eq!(app.ec(&flow, "confirm-current", json!({"code": code})).await.ok()["state"], "enter_new", "the code still works");

    let code_new = app.ec_request_new(&flow, &new).await;
    assert_throttled(&app.ec(&flow, "resend", json!({})).await);
    assert!(app.try_next_mail(&new, Duration::from_secs(1)).await.is_none());
    let a = app.ec(&flow, "confirm-new", json!({"code": code_new})).await;
    app.remember_secret(a.ok()["token"].as_str().unwrap());
    assert_eq!(a.body["email"], new.as_str());
}

async fn answers_follow_accept_language_and_mails_follow_the_accounts_locale(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.ec_user_in("ec-ru", "ru").await;
    let new = email("ec-ru-new");
    let ru = [("accept-language", "ru-RU,ru;q=0.9")];

    let a = app.email_change_with("start", &json!({"token": user.token}), &ru).await;
    let message = a.ok()["message"].as_str().unwrap().to_owned();
    assert!(is_russian(&message), "a Russian answer: {message}");
    let flow = EcFlow { token: user.token.clone(), flow: a.body["flow"].as_str().unwrap().to_owned() };
    let (mail, code) = app.next_code_mail(&user.email).await;
    assert!(is_russian(&mail.subject) && is_russian(&mail.text) && is_russian(&mail.html), "a Russian code mail: {}", mail.subject);
    assert!(words(&mail.text).any(|w| w == "10"), "valid 10 minutes: {}", mail.text);

    let wrong = flow.body(json!({"code": wrong_code(&code)}));
    let a = app.email_change_with("confirm-current", &wrong, &ru).await;
    assert_invalid_code(&a, 4);
    let message = a.body["message"].as_str().unwrap();
    assert!(is_russian(message) && words(message).any(|w| w == "4"), "a Russian message with the attempts left: {message}");
    let a = app.email_change("confirm-current", &wrong).await;
    assert_invalid_code(&a, 3);
    assert!(!is_russian(a.body["message"].as_str().unwrap()), "English without Accept-Language: {}", a.body);

    let a = app.email_change_with("confirm-current", &flow.body(json!({"code": code})), &ru).await;
    assert!(is_russian(a.ok()["message"].as_str().unwrap()), "{}", a.body);
    let a = app.email_change_with("request-new", &flow.body(json!({"email": new})), &ru).await;
    assert!(is_russian(a.ok()["message"].as_str().unwrap()), "{}", a.body);
    let (mail, code_new) = app.next_code_mail(&new).await;
    assert!(is_russian(&mail.subject) && is_russian(&mail.text), "the mail to the new address is in the account's locale: {}", mail.subject);
    let a = app.email_change_with("confirm-new", &flow.body(json!({"code": code_new})), &ru).await;
    app.remember_secret(a.ok()["token"].as_str().unwrap());
    assert!(is_russian(a.body["message"].as_str().unwrap()), "{}", a.body);
    let notice = app.next_mail(&user.email).await;
    assert!(is_russian(&notice.subject) && is_russian(&notice.text), "a Russian notice: {}", notice.subject);
}

async fn thirty_two_concurrent_confirm_new_with_the_right_code_have_exactly_one_winner(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.ec_user("ec-race-new").await;
    let new = email("ec-race-new-to");
    let (flow, code_new) = app.ec_confirming_new(&user, &new).await;
    let body = flow.body(json!({"code": code_new}));
    let answers = futures::future::join_all((0..32).map(|_| app.email_change("confirm-new", &body))).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    // The losers: the flow is done (409), their token revoked or the code gone (410), or past the
    // 5 attempts (429); never a server error.
    assert!(statuses.iter().all(|s| [200, 409, 410, 422, 429].contains(s)), "{statuses:?}");
    let winner = answers.iter().find(|a| a.status == 200).unwrap();
    let fresh = winner.body["token"].as_str().unwrap().to_owned();
    app.remember_secret(&fresh);
    let profile: Value = app.profile_load(&fresh).await.json().await.unwrap();
    assert_eq!(profile["email"], new.as_str());
    app.next_mail(&user.email).await;
    assert!(app.try_next_mail(&user.email, Duration::from_secs(2)).await.is_none(), "one notice to the old address");
}

async fn thirty_two_concurrent_confirm_current_with_the_right_code_move_the_flow_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.ec_user("ec-race-cur").await;
    let (flow, code) = app.ec_started(&user).await;
    let body = flow.body(json!({"code": code}));
    let answers = futures::future::join_all((0..32).map(|_| app.email_change("confirm-current", &body))).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| [200, 409, 410, 422, 429].contains(s)), "{statuses:?}");
    // The flow moved on, and was not killed by the attempts past the fifth.
    let free = email("ec-race-cur-new");
    assert_eq!(app.ec(&flow, "check", json!({"email": free})).await.ok()["available"], true);
    app.ec_request_new(&flow, &free).await;
}

async fn thirty_two_concurrent_wrong_codes_use_exactly_five_attempts(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.ec_user("ec-race-wrong").await;
    let (flow, code) = app.ec_started(&user).await;
    let body = flow.body(json!({"code": wrong_code(&code)}));
    let answers = futures::future::join_all((0..32).map(|_| app.email_change("confirm-current", &body))).await;
    let mut left: Vec<u64> = answers.iter().filter(|a| a.status == 422).map(|a| a.body["attempts_left"].as_u64().unwrap()).collect();
    left.sort_unstable();
    assert_eq!(left, [0, 1, 2, 3, 4], "each attempt counted once, atomically: {:?}", answers.iter().map(|a| a.status).collect::<Vec<_>>());
    for a in answers.iter().filter(|a| a.status != 422) {
        assert_dead(a, "past the fifth attempt");
    }
    assert_dead(&app.ec(&flow, "confirm-current", json!({"code": code})).await, "the right code after the race");
}
