//! SPEC §2.3 on the in-process host: the time rules on its clock (no sleeps) — the resend
//! cooldown, at most 5 codes per address, the code TTL, the new-address window (default and
//! configured), flow expiry — attempts that survive resends, a second start, blocked accounts, what
//! is stored, two users racing for one address, and Redis stopped mid-flow. Each test runs on
//! SQLite, PostgreSQL and SQLite with Redis holding the codes, unless it says otherwise. Every
//! code read from mail is remembered: the drop check fails if one shows in the log or an answer.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Answer, Backend, EcFlow, EcUser, Options, TestApp, email, masked, spawn_app, spawn_with, words, wrong_code};
use crate::on_every_store;

/// Past the resend cooldown and the per-address send interval (one email of a kind per minute).
const MINUTE: Duration = Duration::from_secs(61);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

on_every_store!(
    a_resend_waits_sixty_seconds_then_sends_a_new_code_and_the_old_one_stops_working,
    at_most_five_codes_go_out_in_one_flow_to_both_addresses_together,
    a_code_is_valid_for_ten_minutes,
    in_a_longer_window_the_new_address_code_still_lives_ten_minutes_and_a_resend_renews_it,
    the_new_address_window_closes_after_600_seconds_by_default,
    a_host_with_a_shorter_window_says_so_and_closes_it_then,
    a_flow_expires_one_hour_after_start_whatever_token_is_used,
    attempts_survive_resends_and_five_wrong_codes_then_the_right_one_is_429,
    attempts_for_the_new_address_survive_a_resend_too,
    a_second_start_replaces_the_first_flow,
    a_blocked_account_is_403_account_blocked_on_every_step,
    after_the_change_the_old_address_is_free_and_only_the_fresh_token_is_left,
    two_users_confirming_the_same_new_address_at_once_get_one_200_and_one_409,
);

// The SQL store's `ephemeral` table (no Redis): on SQLite and on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_are_stored_only_as_salted_hashes_with_their_expiry_in_sqlite() {
    codes_are_stored_only_as_salted_hashes_with_their_expiry(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_are_stored_only_as_salted_hashes_with_their_expiry_in_postgresql() {
    codes_are_stored_only_as_salted_hashes_with_their_expiry(Backend::Postgres).await
}

/// Asserts 422 INVALID_CODE with `left` attempts left.
fn assert_invalid_code(a: &Answer, left: u64) {
    a.expect(422, "INVALID_CODE");
    assert_eq!(a.body["attempts_left"], left, "{}", a.body);
}

/// Asserts 429 TOO_MANY_ATTEMPTS without Retry-After.
fn assert_dead(a: &Answer, step: &str) {
    assert_eq!((a.status, a.body["code"].as_str()), (429, Some("TOO_MANY_ATTEMPTS")), "{step}: {}", a.body);
    assert!(a.retry_after.is_none(), "{step}: a dead flow has no Retry-After");
}

/// Outbox messages of `kind` to `to` (written in the request's own transaction).
async fn queued(app: &TestApp, to: &str, kind: &str) -> i64 {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND kind = $2").bind(to).bind(kind).fetch_one(&app.control().db).await.unwrap();
    n
}

/// What a step may change in the stored flow: `(state, code_ref, sends, last_send_at, version)`.
async fn flow_row(app: &TestApp, id: &str) -> Option<(String, String, i64, i64, i64)> {
    sqlx::query_as("SELECT state, code_ref, sends, last_send_at, version FROM email_changes WHERE id = $1")
        .bind(id)
        .fetch_optional(&app.control().db)
        .await
        .unwrap()
}

async fn resend_ok(app: &TestApp, flow: &EcFlow, sends_left: u64) -> Value {
    let a = app.ec(flow, "resend", json!({})).await;
    let body = a.ok().clone();
    assert_eq!(body["resend_after_s"], 60, "{body}");
    assert_eq!(body["sends_left"], sends_left, "{body}");
    assert!(body["code_valid_s"].as_u64().is_some_and(|s| (1..=600).contains(&s)), "{body}");
    body
}

async fn a_resend_waits_sixty_seconds_then_sends_a_new_code_and_the_old_one_stops_working(backend: Backend) {
    let app = spawn_app(backend).await;
    let clock = &app.control().clock;
    let user = app.ec_user("ec-cool").await;
    let (flow, first) = app.ec_started(&user).await;

    let a = app.ec(&flow, "resend", json!({})).await;
    a.expect(429, "TOO_MANY_REQUESTS");
    // Seconds rounded up; real time passes too (reading the mail).
    assert!(a.retry_after.is_some_and(|s| (50..=60).contains(&s)), "Retry-After {:?}", a.retry_after);
    clock.advance(secs(30));
    let a = app.ec(&flow, "resend", json!({})).await;
    a.expect(429, "TOO_MANY_REQUESTS");
    assert!(a.retry_after.is_some_and(|s| (20..=30).contains(&s)), "the rest of the minute: {:?}", a.retry_after);
    assert!(app.try_next_mail(&user.email, Duration::from_secs(1)).await.is_none(), "no code sent within the minute");

    clock.advance(secs(30));
    let body = resend_ok(&app, &flow, 3).await;
    assert_eq!(body["state"], "confirm_current", "{body}");
    assert_eq!(body["code_valid_s"], 600, "{body}");
    assert!(body["message"].as_str().unwrap().contains(&masked(&user.email)), "{body}");
    let second = app.next_code(&user.email).await;
    if second != first {
        assert_invalid_code(&app.ec(&flow, "confirm-current", json!({"code": first})).await, 4);
    }
    assert_eq!(app.ec(&flow, "confirm-current", json!({"code": second})).await.ok()["state"], "enter_new");
}

async fn at_most_five_codes_go_out_in_one_flow_to_both_addresses_together(backend: Backend) {
    let app = spawn_app(backend).await;
    let clock = &app.control().clock;

    // All five to the current address: then no code goes to a new one either.
    let user = app.ec_user("ec-five").await;
    let (flow, mut code) = app.ec_started(&user).await;
    for left in [3, 2, 1, 0] {
        clock.advance(MINUTE);
        resend_ok(&app, &flow, left).await;
        code = app.next_code(&user.email).await;
    }
    clock.advance(MINUTE);
    let a = app.ec(&flow, "resend", json!({})).await;
    a.expect(429, "TOO_MANY_CODES");
    assert!(a.retry_after.is_none(), "waiting does not help: start again");
    assert!(app.try_next_mail(&user.email, Duration::from_secs(1)).await.is_none(), "no sixth code");
    assert_eq!(queued(&app, &user.email, "email-change-current").await, 5);
    assert_eq!(app.ec(&flow, "confirm-current", json!({"code": code})).await.ok()["state"], "enter_new", "the latest code works");
    let new = email("ec-five-new");
    app.ec(&flow, "request-new", json!({"email": new})).await.expect(429, "TOO_MANY_CODES");
    assert_eq!(queued(&app, &new, "email-change-new").await, 0, "the new address got nothing");

    // Two to the current address, then three to the new one: five in all.
    let user = app.ec_user("ec-five-b").await;
    let (flow, _) = app.ec_started(&user).await;
    clock.advance(MINUTE);
    resend_ok(&app, &flow, 3).await;
    let code = app.next_code(&user.email).await;
    assert_eq!(app.ec(&flow, "confirm-current", json!({"code": code})).await.ok()["state"], "enter_new");
    let new = email("ec-five-b-new");
    let a = app.ec(&flow, "request-new", json!({"email": new})).await;
    assert_eq!(a.ok()["sends_left"], 2, "the count runs on across request-new");
    let mut code = app.next_code(&new).await;
    for left in [1, 0] {
        clock.advance(MINUTE);
        assert_eq!(resend_ok(&app, &flow, left).await["state"], "confirm_new");
        code = app.next_code(&new).await;
    }
    clock.advance(MINUTE);
    let a = app.ec(&flow, "resend", json!({})).await;
    a.expect(429, "TOO_MANY_CODES");
    assert!(a.retry_after.is_none());
    assert_eq!(queued(&app, &user.email, "email-change-current").await + queued(&app, &new, "email-change-new").await, 5, "five codes per flow");
    let a = app.ec(&flow, "confirm-new", json!({"code": code})).await;
    app.remember_secret(a.ok()["token"].as_str().unwrap());
    assert_eq!(a.body["email"], new.as_str());
}

async fn a_code_is_valid_for_ten_minutes(backend: Backend) {
    let app = spawn_app(backend).await;
    let clock = &app.control().clock;
    let (ann, bob) = (app.ec_user("ec-ttl-a").await, app.ec_user("ec-ttl-b").await);
    let (ann_flow, ann_code) = app.ec_started(&ann).await;
    let (bob_flow, bob_code) = app.ec_started(&bob).await;

    // A few seconds of margin: real time passes too (Bob's start, reading mail).
    clock.advance(secs(595));
    assert_eq!(app.ec(&ann_flow, "confirm-current", json!({"code": ann_code})).await.ok()["state"], "enter_new", "valid near the end of its 10 minutes");
    clock.advance(secs(6));
    let a = app.ec(&bob_flow, "confirm-current", json!({"code": bob_code})).await;
    a.expect(410, "CODE_EXPIRED");
    assert!(a.retry_after.is_none());

    // A new code for the same flow (an hour is long enough for it).
    resend_ok(&app, &bob_flow, 3).await;
    let bob_code = app.next_code(&bob.email).await;
    assert_eq!(app.ec(&bob_flow, "confirm-current", json!({"code": bob_code})).await.ok()["state"], "enter_new");
}

async fn in_a_longer_window_the_new_address_code_still_lives_ten_minutes_and_a_resend_renews_it(backend: Backend) {
    let mut options = Options::new(backend);
    options.config = Some(|c| c.email_change_window_s = 1200); // LEAD: check field name (GPT_USER_EMAIL_CHANGE_WINDOW_S)
    let app = spawn_with(options).await;
    let clock = &app.control().clock;
    let user = app.ec_user("ec-longwin").await;
    let new = email("ec-longwin-new");
    let flow = app.ec_entering_new(&user).await;
    let a = app.ec(&flow, "request-new", json!({"email": new})).await;
    assert_eq!(a.ok()["window_s"], 1200, "{}", a.body);
    assert_eq!(a.body["code_valid_s"], 600, "a code lives 10 minutes: {}", a.body);
    let code = app.next_code(&new).await;

    clock.advance(secs(601));
    app.ec(&flow, "confirm-new", json!({"code": code})).await.expect(410, "CODE_EXPIRED");
    let body = resend_ok(&app, &flow, 2).await;
    assert_eq!(body["state"], "confirm_new");
    let code = app.next_code(&new).await;
    let a = app.ec(&flow, "confirm-new", json!({"code": code})).await;
    app.remember_secret(a.ok()["token"].as_str().unwrap());
    assert_eq!(a.body["state"], "done");
}

async fn the_new_address_window_closes_after_600_seconds_by_default(backend: Backend) {
    let app = spawn_app(backend).await;
    let clock = &app.control().clock;
    let user = app.ec_user("ec-window").await;
    let new = email("ec-window-new");
    let flow = app.ec_entering_new(&user).await;
    let a = app.ec(&flow, "request-new", json!({"email": new})).await;
    assert_eq!(a.ok()["window_s"], 600, "{}", a.body);
    let code = app.next_code(&new).await;

    // A few seconds of margin: real time passes too (reading the mail).
    clock.advance(secs(590));
    assert_invalid_code(&app.ec(&flow, "confirm-new", json!({"code": wrong_code(&code)})).await, 4);
    clock.advance(secs(11));
    app.ec(&flow, "confirm-new", json!({"code": code})).await.expect(410, "CODE_EXPIRED");
    app.ec(&flow, "resend", json!({})).await.expect(410, "CODE_EXPIRED");
    assert!(app.try_next_mail(&new, Duration::from_secs(1)).await.is_none(), "no code after the window");
    let r = app.profile_load(&user.token).await;
    assert_eq!(r.json::<Value>().await.unwrap()["email"], user.email.as_str(), "nothing changed");

    // Start again: a new flow, and the old one is gone.
    let (again, code) = app.ec_started(&user).await;
    app.ec(&flow, "confirm-new", json!({"code": code})).await.expect(404, "FLOW_NOT_FOUND");
    assert_eq!(app.ec(&again, "confirm-current", json!({"code": code})).await.ok()["state"], "enter_new");
}

async fn a_host_with_a_shorter_window_says_so_and_closes_it_then(backend: Backend) {
    let mut options = Options::new(backend);
    options.config = Some(|c| c.email_change_window_s = 120); // LEAD: check field name (GPT_USER_EMAIL_CHANGE_WINDOW_S)
    let app = spawn_with(options).await;
    let clock = &app.control().clock;
    let user = app.ec_user("ec-short").await;
    let new = email("ec-short-new");
    let flow = app.ec_entering_new(&user).await;
    let a = app.ec(&flow, "request-new", json!({"email": new})).await;
    let body = a.ok();
    assert_eq!(body["window_s"], 120, "{body}");
    assert!(body["code_valid_s"].as_u64().is_some_and(|s| (1..=120).contains(&s)), "a code does not outlive the window: {body}");
    app.next_code(&new).await;

    clock.advance(MINUTE);
    let body = resend_ok(&app, &flow, 2).await;
    assert!(body["code_valid_s"].as_u64().is_some_and(|s| s <= 59), "the rest of the window: {body}");
    let code = app.next_code(&new).await;
    clock.advance(secs(50)); // 111 s and a little real time into the 120
    assert_invalid_code(&app.ec(&flow, "confirm-new", json!({"code": wrong_code(&code)})).await, 4);
    clock.advance(secs(10));
    app.ec(&flow, "confirm-new", json!({"code": code})).await.expect(410, "CODE_EXPIRED");
    app.ec(&flow, "resend", json!({})).await.expect(410, "CODE_EXPIRED");
    let r = app.profile_load(&user.token).await;
    assert_eq!(r.json::<Value>().await.unwrap()["email"], user.email.as_str(), "nothing changed");
}

async fn a_flow_expires_one_hour_after_start_whatever_token_is_used(backend: Backend) {
    let app = spawn_app(backend).await;
    let clock = &app.control().clock;
    let user = app.ec_user("ec-expiry").await;
    let flow = app.ec_entering_new(&user).await;
    let free = email("ec-expiry-new");

    // The profile token lives an hour too: a second link, taken later, outlives the flow.
    clock.advance(secs(50 * 60));
    let later = flow.with_token(&app.profile_link_token(&user.email).await);
    assert_eq!(app.ec(&later, "check", json!({"email": free})).await.ok()["available"], true, "a flow answers to any token of its user");
    clock.advance(secs(9 * 60));
    assert_eq!(app.ec(&later, "check", json!({"email": free})).await.ok()["available"], true, "alive at 59 minutes");
    clock.advance(secs(2 * 60));
    let steps = [
        ("resend", json!({})),
        ("confirm-current", json!({"code": "123456"})),
        ("check", json!({"email": free})),
        ("request-new", json!({"email": free})),
        ("confirm-new", json!({"code": "123456"})),
    ];
    for (step, extra) in steps {
        let a = app.ec(&later, step, extra).await;
        a.expect(410, "FLOW_EXPIRED");
        assert!(a.retry_after.is_none(), "{step}");
    }
    assert!(app.try_next_mail(&free, Duration::from_secs(1)).await.is_none());
    // Start again with the later token.
    let (again, code) = app.ec_started(&EcUser { token: later.token.clone(), ..user.clone() }).await;
    assert_eq!(app.ec(&again, "confirm-current", json!({"code": code})).await.ok()["state"], "enter_new");
}

async fn attempts_survive_resends_and_five_wrong_codes_then_the_right_one_is_429(backend: Backend) {
    let app = spawn_app(backend).await;
    let clock = &app.control().clock;
    let user = app.ec_user("ec-survive").await;
    let (flow, code) = app.ec_started(&user).await;
    for left in [4, 3, 2] {
        assert_invalid_code(&app.ec(&flow, "confirm-current", json!({"code": wrong_code(&code)})).await, left);
    }
    clock.advance(MINUTE);
    resend_ok(&app, &flow, 3).await;
    let code = app.next_code(&user.email).await;
    assert_invalid_code(&app.ec(&flow, "confirm-current", json!({"code": wrong_code(&code)})).await, 1);
    clock.advance(MINUTE);
    resend_ok(&app, &flow, 2).await;
    let code = app.next_code(&user.email).await;
    assert_invalid_code(&app.ec(&flow, "confirm-current", json!({"code": wrong_code(&code)})).await, 0);
    assert_dead(&app.ec(&flow, "confirm-current", json!({"code": code})).await, "the right code after five wrong ones");
    clock.advance(MINUTE);
    assert_dead(&app.ec(&flow, "resend", json!({})).await, "resend of a dead flow");
    assert!(app.try_next_mail(&user.email, Duration::from_secs(1)).await.is_none(), "a dead flow sends nothing");

    // Starting again gives a new flow with a clean count.
    let (again, code) = app.ec_started(&user).await;
    assert_invalid_code(&app.ec(&again, "confirm-current", json!({"code": wrong_code(&code)})).await, 4);
    assert_eq!(app.ec(&again, "confirm-current", json!({"code": code})).await.ok()["state"], "enter_new");
}

async fn attempts_for_the_new_address_survive_a_resend_too(backend: Backend) {
    let app = spawn_app(backend).await;
    let clock = &app.control().clock;
    let user = app.ec_user("ec-survive-new").await;
    let new = email("ec-survive-new-to");
    let (flow, code) = app.ec_confirming_new(&user, &new).await;
    for left in [4, 3, 2] {
        assert_invalid_code(&app.ec(&flow, "confirm-new", json!({"code": wrong_code(&code)})).await, left);
    }
    clock.advance(MINUTE);
    resend_ok(&app, &flow, 2).await;
    let code = app.next_code(&new).await;
    for left in [1, 0] {
        assert_invalid_code(&app.ec(&flow, "confirm-new", json!({"code": wrong_code(&code)})).await, left);
    }
    assert_dead(&app.ec(&flow, "confirm-new", json!({"code": code})).await, "the right new code after five wrong ones");
    let r = app.profile_load(&user.token).await;
    assert_eq!(r.json::<Value>().await.unwrap()["email"], user.email.as_str(), "the address did not change");
    assert_eq!(queued(&app, &user.email, "email-changed").await, 0);
}

async fn a_second_start_replaces_the_first_flow(backend: Backend) {
    let app = spawn_app(backend).await;
    let clock = &app.control().clock;
    let user = app.ec_user("ec-replace").await;
    let (first, first_code) = app.ec_started(&user).await;
    clock.advance(MINUTE);
    let (second, second_code) = app.ec_started(&user).await;
    assert_ne!(first.flow, second.flow);
    let steps = [
        ("resend", json!({})),
        ("confirm-current", json!({"code": first_code})),
        ("check", json!({"email": email("ec-replace-new")})),
        ("request-new", json!({"email": email("ec-replace-new")})),
        ("confirm-new", json!({"code": first_code})),
    ];
    for (step, extra) in steps {
        app.ec(&first, step, extra).await.expect(404, "FLOW_NOT_FOUND");
    }
    assert!(flow_row(&app, &first.flow).await.is_none(), "the first flow is deleted");
    if first_code != second_code {
        assert_invalid_code(&app.ec(&second, "confirm-current", json!({"code": first_code})).await, 4);
    }
    assert_eq!(app.ec(&second, "confirm-current", json!({"code": second_code})).await.ok()["state"], "enter_new");
}

async fn a_blocked_account_is_403_account_blocked_on_every_step(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let user = app.ec_user("ec-blocked").await;
    let (flow, code) = app.ec_started(&user).await;
    sqlx::query("UPDATE users SET status = 'blocked' WHERE email = $1").bind(&user.email).execute(&control.db).await.unwrap();
    control.clock.advance(MINUTE);
    app.email_change("start", &json!({"token": user.token})).await.expect(403, "ACCOUNT_BLOCKED");
    let steps = [
        ("resend", json!({})),
        ("confirm-current", json!({"code": code})),
        ("check", json!({"email": email("ec-blocked-new")})),
        ("request-new", json!({"email": email("ec-blocked-new")})),
        ("confirm-new", json!({"code": code})),
    ];
    for (step, extra) in steps {
        app.ec(&flow, step, extra).await.expect(403, "ACCOUNT_BLOCKED");
    }
    assert_eq!(queued(&app, &user.email, "email-change-current").await, 1, "nothing sent to a blocked account");
    assert_eq!(flow_row(&app, &flow.flow).await.unwrap().0, "confirm_current", "the flow did not move");
}

async fn after_the_change_the_old_address_is_free_and_only_the_fresh_token_is_left(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let user = app.ec_user("ec-after").await;
    let new = email("ec-after-new");
    // A second profile link, also revoked by the change.
    control.clock.advance(MINUTE);
    let other_token = app.profile_link_token(&user.email).await;
    let (flow, code) = app.ec_confirming_new(&user, &new).await;
    let a = app.ec(&flow, "confirm-new", json!({"code": code})).await;
    let fresh = a.ok()["token"].as_str().unwrap().to_owned();
    app.remember_secret(&fresh);

    let (address, verified): (String, i64) = sqlx::query_as("SELECT email, email_verified FROM users WHERE pin = $1").bind(&user.pin).fetch_one(&control.db).await.unwrap();
    assert_eq!((address.as_str(), verified), (new.as_str(), 1), "the new address, verified");
    let hashes: Vec<(String, String)> = sqlx::query_as("SELECT hash, purpose FROM secrets WHERE user_id = (SELECT id FROM users WHERE pin = $1)")
        .bind(&user.pin)
        .fetch_all(&control.db)
        .await
        .unwrap();
    use sha2::Digest as _;
    let expected: String = sha2::Sha256::digest(fresh.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hashes, [(expected, "profile".to_owned())], "every secret of the user is revoked but the fresh profile token");
    assert_eq!(app.profile_load(&other_token).await.status(), 410, "the other link too");
    assert_eq!(flow_row(&app, &flow.flow).await.unwrap().0, "done");
    assert_eq!(queued(&app, &user.email, "email-changed").await, 1, "the notice is queued with the change");

    // A minute later (sign-up mail is throttled per address) the old address signs up anew.
    control.clock.advance(MINUTE);
    let r = app.sign_up(&user.email, "en").await;
    assert_eq!(r.status(), 201, "the old address is free");
    let body: Value = r.json().await.unwrap();
    assert_ne!(body["pin"], user.pin.as_str(), "a new account");
    let r = app.sign_up(&new, "en").await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "EMAIL_ALREADY_REGISTERED");
}

async fn two_users_confirming_the_same_new_address_at_once_get_one_200_and_one_409(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let (ann, bob) = (app.ec_user("ec-race-ann").await, app.ec_user("ec-race-bob").await);
    let target = email("ec-contested");
    let (ann_flow, bob_flow) = (app.ec_entering_new(&ann).await, app.ec_entering_new(&bob).await);
    let ann_code = app.ec_request_new(&ann_flow, &target).await;
    control.clock.advance(MINUTE); // one email of a kind per address per minute
    let bob_code = app.ec_request_new(&bob_flow, &target).await;

    let (a, b) = tokio::join!(
        app.ec(&ann_flow, "confirm-new", json!({"code": ann_code})),
        app.ec(&bob_flow, "confirm-new", json!({"code": bob_code})),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{} / {}", a.body, b.body);
    let (winner, loser, won, lost) = if a.status == 200 { (&ann, &bob, &a, &b) } else { (&bob, &ann, &b, &a) };
    lost.expect(409, "EMAIL_TAKEN");
    let fresh = won.body["token"].as_str().unwrap();
    app.remember_secret(fresh);

    let (owners,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE email = $1").bind(&target).fetch_one(&control.db).await.unwrap();
    assert_eq!(owners, 1);
    let profile: Value = app.profile_load(fresh).await.json().await.unwrap();
    assert_eq!((profile["email"].as_str(), profile["pin"].as_str()), (Some(target.as_str()), Some(winner.pin.as_str())));
    let r = app.profile_load(&loser.token).await;
    assert_eq!(r.status(), 200, "the loser's token was not revoked");
    assert_eq!(r.json::<Value>().await.unwrap()["email"], loser.email.as_str(), "the loser keeps its address");
    assert_eq!(queued(&app, &winner.email, "email-changed").await, 1);
    assert_eq!(queued(&app, &loser.email, "email-changed").await, 0, "no notice for a change that did not happen");
}

async fn codes_are_stored_only_as_salted_hashes_with_their_expiry(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let user = app.ec_user("ec-hash").await;
    let (flow, code) = app.ec_started(&user).await;
    let rows: Vec<(String, String, i64)> = sqlx::query_as("SELECT key, value, expires_at FROM ephemeral").fetch_all(&control.db).await.unwrap();
    let codes: Vec<&(String, String, i64)> = rows.iter().filter(|(key, _, _)| key.starts_with("ec:code:")).collect();
    assert_eq!(codes.len(), 1, "one live code: {rows:?}");
    let (_, hash, expires_at) = codes[0];
    assert_eq!(hash.len(), 64, "a SHA-256 in hex: {hash}");
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{hash}");
    assert_ne!(hash.as_str(), code);
    use sha2::Digest as _;
    let unsalted: String = sha2::Sha256::digest(code.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert_ne!(hash, &unsalted, "salted: a table of a million hashes does not serve every flow");
    for (key, value, _) in &rows {
        assert!(!words(key).any(|w| w == code) && !words(value).any(|w| w == code), "the code itself is not stored: {key} = {value}");
    }
    let (state, code_ref, sends, last_send_at, _) = flow_row(&app, &flow.flow).await.unwrap();
    assert_eq!((state.as_str(), sends), ("confirm_current", 1));
    assert!(!words(&code_ref).any(|w| w == code));
    assert_eq!(*expires_at - last_send_at, 600_000, "the code lives 10 minutes from its send");
}

/// Checks the log check for codes itself: a code counts only as a word of its own, so the
/// microseconds of a timestamp or digits inside a hash do not match, and a code logged as a
/// value does.
#[test]
fn the_log_check_finds_a_code_as_a_word_and_not_inside_other_digits() {
    let log = "2026-11-26T04:02:37.123456Z DEBUG hash=ab123456cd elapsed=0.1234567 id=9123456";
    assert!(!words(log).any(|w| w == "123456"));
    for leaked in ["code=123456", "{\"code\":\"123456\"}", "your code 123456.", "code: 123456\n"] {
        assert!(words(leaked).any(|w| w == "123456"), "{leaked}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_stopped_a_step_is_503_writes_nothing_and_the_flow_goes_on_once_redis_is_back() {
    // Declared before the app, so the host stops before its Redis does.
    let mut redis = gpt_user_test_support::redis::RedisServer::start_persistent().unwrap();
    let mut options = Options::new(Backend::Redis);
    options.redis_url = Some(redis.url());
    let app = spawn_with(options).await;
    let clock = &app.control().clock;
    let user = app.ec_user("ec-redis").await;
    let probe = app.ec_user("ec-redis-probe").await;
    let new = email("ec-redis-new");
    let (flow, code) = app.ec_started(&user).await;
    let (probe_flow, probe_code) = app.ec_started(&probe).await;
    let before = flow_row(&app, &flow.flow).await.expect("the flow is stored");

    redis.stop();
    let a = app.ec(&flow, "confirm-current", json!({"code": code})).await;
    a.expect(503, "SERVICE_UNAVAILABLE");
    clock.advance(MINUTE);
    app.ec(&flow, "resend", json!({})).await.expect(503, "SERVICE_UNAVAILABLE");
    app.email_change("start", &json!({"token": user.token})).await.expect(503, "SERVICE_UNAVAILABLE");
    assert_eq!(flow_row(&app, &flow.flow).await, Some(before), "nothing half-written: the flow is as it was");
    assert_eq!(queued(&app, &user.email, "email-change-current").await, 1, "no code mailed while Redis was down");
    assert!(app.try_next_mail(&user.email, Duration::from_secs(1)).await.is_none());

    redis.restart().unwrap();
    // The host reconnects on its own; a call or two may still fail while it does. A probe flow of
    // another user tells when Redis answers again (its wrong codes are its own business).
    let mut back = false;
    for _ in 0..4 {
        let a = app.ec(&probe_flow, "confirm-current", json!({"code": wrong_code(&probe_code)})).await;
        if a.status == 422 {
            back = true;
            break;
        }
        a.expect(503, "SERVICE_UNAVAILABLE");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(back, "the steps work again once Redis is back");

    // The failed steps counted no attempt, and code 1 (kept by Redis) still works.
    assert_invalid_code(&app.ec(&flow, "confirm-current", json!({"code": wrong_code(&code)})).await, 4);
    assert_eq!(app.ec(&flow, "confirm-current", json!({"code": code})).await.ok()["state"], "enter_new");
    let code_new = app.ec_request_new(&flow, &new).await;
    let a = app.ec(&flow, "confirm-new", json!({"code": code_new})).await;
    app.remember_secret(a.ok()["token"].as_str().unwrap());
    assert_eq!(a.body["email"], new.as_str());
}
