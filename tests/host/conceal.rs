//! Conceal mode (SPEC §2.1, `privacy.conceal_accounts`): every route a browser or a chat can call
//! with an address or a PIN answers alike — status, body (but for the address) and median time —
//! whether an account has it or not: SignUp_Init (new, pending, active or blocked, also when
//! throttled), Update_Init by email and by PIN and the recovery page's link request, every step of
//! the email change towards a taken or a free address, and Auth_Check (unknown PIN or wrong
//! passphrase; outside conceal mode too).

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Answer, Backend, EcFlow, Options, PASSPHRASE, TestApp, email, masked, spawn_with, without_address};

/// How far apart the slowest and the fastest outcome's median time may be.
const RATIO: u32 = 3;

/// Times one call.
async fn timed<T>(call: impl Future<Output = T>) -> (Duration, T) {
    let started = Instant::now();
    let out = call.await;
    (started.elapsed(), out)
}

/// The median of `times`.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Asserts that the medians of every outcome are within [`RATIO`] of each other.
fn assert_alike_in_time(what: &str, medians: &[(String, Duration)]) {
    let fastest = medians.iter().map(|m| m.1).min().unwrap();
    let slowest = medians.iter().map(|m| m.1).max().unwrap();
    assert!(slowest < fastest * RATIO, "{what}: median times within {RATIO}x: {medians:?}");
}

/// Waits until the work of earlier calls is over — their deferred work and the delivery of the
/// mail it queued (the dispatcher's writes would otherwise wait on SQLite's one writer with the
/// next call): each call is then timed as one caller asking about one address sees it.
async fn quiet(app: &TestApp) {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (unsent,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetch_one(&app.control().db).await.unwrap();
        if unsent == 0 || Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An active account in conceal mode, where sign-up answers without the PIN.
async fn active(app: &TestApp, to: &str) {
    assert_eq!(app.sign_up(to, "en").await.status(), 200);
    let token = app.next_mail(to).await.token();
    assert_eq!(app.verify(&token).await.status(), 200);
}

async fn pin_of(app: &TestApp, to: &str) -> String {
    let (pin,): (String,) = sqlx::query_as("SELECT pin FROM users WHERE email = $1").bind(to).fetch_one(&app.control().db).await.unwrap();
    pin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conceal_mode_answers_every_outcome_alike_in_status_body_and_time() {
    let mut options = Options::new(Backend::Sqlite);
    options.conceal = true;
    let app = spawn_with(options).await;
    let control = app.control();
    let (new, pending, active, blocked) = (email("c-new"), email("c-pending"), email("c-active"), email("c-blocked"));
    for to in [&pending, &active, &blocked] {
        assert_eq!(app.sign_up(to, "en").await.status(), 200);
    }
    for to in [&active, &blocked] {
        let token = app.next_mail(to).await.token();
        assert_eq!(app.verify(&token).await.status(), 200);
    }
    sqlx::query("UPDATE users SET status = 'blocked' WHERE email = $1").bind(&blocked).execute(&control.db).await.unwrap();
    control.clock.advance(Duration::from_secs(61));

    // Five calls per outcome: the first sends an email, the four after it are throttled.
    let mut reference: Option<(u16, Value)> = None;
    let mut medians = Vec::new();
    for to in [&new, &pending, &active, &blocked] {
        let mut times = Vec::new();
        for call in 0..5 {
            let started = Instant::now();
            let r = app.sign_up(to, "en").await;
            times.push(started.elapsed());
            let status = r.status().as_u16();
            let mut body: Value = r.json().await.unwrap();
            let message = body["message"].as_str().unwrap().replace(to.as_str(), "EMAIL");
            body["message"] = Value::String(message);
            match &reference {
                None => reference = Some((status, body)),
                Some(expected) => assert_eq!(&(status, body), expected, "{to} call {call} answers like a new address"),
            }
        }
        times.sort();
        medians.push((to.clone(), times[2]));
    }
    assert_eq!(reference.unwrap().0, 200);
    assert_alike_in_time("SignUp_Init", &medians);
    // The owners of taken addresses were told by email instead.
    assert_eq!(app.next_mail(&active).await.subject, "Someone tried to sign up with your address");
    assert_eq!(app.next_mail(&blocked).await.subject, "Someone tried to sign up with your address");
}

/// Issue 19 item 2: Update_Init in conceal mode and the recovery page's request answer before
/// looking the address or PIN up; the link (or the verification mail) goes after the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conceal_mode_answers_every_link_request_outcome_alike_in_status_body_and_time() {
    let mut options = Options::new(Backend::Sqlite);
    options.conceal = true;
    let app = spawn_with(options).await;
    let control = app.control();
    let (unknown, pending, active_, blocked) = (email("lr-unknown"), email("lr-pending"), email("lr-active"), email("lr-blocked"));
    assert_eq!(app.sign_up(&pending, "en").await.status(), 200);
    for to in [&active_, &blocked] {
        active(&app, to).await;
    }
    sqlx::query("UPDATE users SET status = 'blocked' WHERE email = $1").bind(&blocked).execute(&control.db).await.unwrap();
    let mut pins = Vec::new();
    for to in [&pending, &active_, &blocked] {
        pins.push(pin_of(&app, to).await);
    }
    let unknown_pin = (100_000..).map(|n: u32| n.to_string()).find(|p| !pins.contains(p)).unwrap();
    let outcomes = [(&unknown, unknown_pin.as_str()), (&pending, pins[0].as_str()), (&active_, pins[1].as_str()), (&blocked, pins[2].as_str())];

    // route -> outcome -> times; route -> the first answer.
    let routes = ["request by email", "init by email", "init by PIN"];
    let mut times = vec![vec![Vec::new(); outcomes.len()]; routes.len()];
    let mut reference: Vec<Option<(u16, Value)>> = vec![None; routes.len()];
    // Six minutes apart: every round sends again (one email of a kind per minute, ten an hour).
    for round in 0..7 {
        control.clock.advance(Duration::from_secs(360));
        for (o, (to, pin)) in outcomes.iter().enumerate() {
            for (r, route) in routes.iter().enumerate() {
                quiet(&app).await;
                let (took, response) = match r {
                    0 => timed(app.profile_request(to)).await,
                    1 => timed(app.profile_init(&json!({"email": to}))).await,
                    _ => timed(app.profile_init(&json!({"pin": pin}))).await,
                };
                times[r][o].push(took);
                let status = response.status().as_u16();
                let body = without_address(response.json().await.unwrap(), to);
                match &reference[r] {
                    None => reference[r] = Some((status, body)),
                    Some(expected) => assert_eq!(&(status, body), expected, "{route} for {to} (round {round}) answers like an unknown address"),
                }
            }
        }
    }
    for (r, route) in routes.iter().enumerate() {
        assert_eq!(reference[r].as_ref().unwrap().0, 200, "{route}");
        let medians: Vec<(String, Duration)> = outcomes.iter().zip(&times[r]).map(|((to, _), t)| (to.to_string(), median(t.clone()))).collect();
        assert_alike_in_time(route, &medians);
    }
    // The work was done after the answers: a link to the active account each round, a new
    // verification mail to the pending one, nothing to the others.
    let link = app.next_mail(&active_).await;
    assert!(link.link().starts_with(&format!("{}/profile#token=", app.base)), "{}", link.link());
    assert_eq!(app.profile_load(&link.token()).await.status(), 200);
    for (to, kind, expected) in [(&active_, "profile-link", 7), (&pending, "signup-verification", 8), (&unknown, "profile-link", 0), (&blocked, "profile-link", 0)] {
        // The last round's work may still run: it starts once its answer is out.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND kind = $2").bind(to).bind(kind).fetch_one(&control.db).await.unwrap();
            if n == expected || Instant::now() > deadline {
                assert_eq!(n, expected, "{kind} to {to}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One step of the email change for one outcome: its time, status and body with the new
/// address (and its masked form) replaced.
async fn ec_step(app: &TestApp, flow: &EcFlow, step: &str, extra: Value, new: &str) -> (Duration, (u16, String)) {
    quiet(app).await;
    let (took, a): (Duration, Answer) = timed(app.ec(flow, step, extra)).await;
    (took, (a.status, a.body.to_string().replace(new, "EMAIL").replace(&masked(new), "MASKED")))
}

/// Issue 19 item 1: in conceal mode a new address another account has (active or pending) is
/// answered as a free one at every step — no code is sent to it, its owner gets a notice, and
/// every code entered for it is a wrong one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conceal_mode_answers_a_taken_new_address_like_a_free_one_at_every_email_change_step() {
    let mut options = Options::new(Backend::Sqlite);
    options.conceal = true;
    let app = spawn_with(options).await;
    let control = app.control();
    let user = email("ec-user");
    active(&app, &user).await;
    let token = app.profile_link_token(&user).await;
    let (taken, pending) = (email("ec-taken"), email("ec-pending"));
    active(&app, &taken).await;
    assert_eq!(app.sign_up(&pending, "en").await.status(), 200);
    app.next_mail(&pending).await;

    const STEPS: [&str; 7] = ["start", "confirm-current", "check", "request-new", "confirm-new", "resend", "confirm-new again"];
    // outcome (free, taken) -> step -> times; step -> the free address's answers.
    let mut times = vec![vec![Vec::new(); STEPS.len()]; 2];
    let mut reference: Vec<Vec<(u16, String)>> = Vec::new();
    let mut frees = Vec::new();
    for round in 0..5 {
        let free = email("ec-free");
        frees.push(free.clone());
        let taken_now = if round % 2 == 0 { &taken } else { &pending };
        for (o, new) in [&free, taken_now].into_iter().enumerate() {
            // Past the minute between two codes to the user's address.
            control.clock.advance(Duration::from_secs(61));
            quiet(&app).await;
            let (took, a) = timed(app.ec_start(&token)).await;
            let flow = a.0;
            let mut answers = vec![(a.1.status, String::new())];
            times[o][0].push(took);
            let code = app.next_code(&user).await;
            let mut record = |i: usize, (took, answer): (Duration, (u16, String))| {
                times[o][i].push(took);
                answers.push(answer);
            };
            record(1, ec_step(&app, &flow, "confirm-current", json!({"code": code}), new).await);
            record(2, ec_step(&app, &flow, "check", json!({"email": new}), new).await);
            record(3, ec_step(&app, &flow, "request-new", json!({"email": new}), new).await);
            record(4, ec_step(&app, &flow, "confirm-new", json!({"code": "000000"}), new).await);
            control.clock.advance(Duration::from_secs(61));
            record(5, ec_step(&app, &flow, "resend", json!({}), new).await);
            record(6, ec_step(&app, &flow, "confirm-new", json!({"code": "000001"}), new).await);
            if o == 0 {
                reference.push(answers);
            } else {
                assert_eq!(answers, reference[round], "round {round}: {new} answers like a free address");
            }
        }
    }
    let first = &reference[0];
    assert_eq!(first.iter().map(|a| a.0).collect::<Vec<_>>(), [200, 200, 200, 200, 422, 200, 422], "{first:?}");
    assert!(first[2].1.contains(r#""available":true"#), "{first:?}");
    assert!(first[3].1.contains("MASKED"), "request-new names the address it wrote to: {first:?}");
    for (i, step) in STEPS.iter().enumerate() {
        let medians = [("free".to_owned(), median(times[0][i].clone())), ("taken".to_owned(), median(times[1][i].clone()))];
        assert_alike_in_time(step, &medians);
    }

    // Codes went to the free addresses; the owners of the taken ones got notices, never a code.
    for free in &frees {
        assert_eq!(app.next_code(free).await.len(), 6);
    }
    for owner in [&taken, &pending] {
        let notice = app.next_mail(owner).await;
        assert_eq!(notice.subject, "Someone tried to use your address for another account");
        let (codes,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND kind LIKE 'email-change-%' AND kind <> 'email-change-taken'")
            .bind(owner)
            .fetch_one(&control.db)
            .await
            .unwrap();
        assert_eq!(codes, 0, "no code to {owner}");
    }
    let (emails,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE email IN ($1, $2, $3)").bind(&user).bind(&taken).bind(&pending).fetch_one(&control.db).await.unwrap();
    assert_eq!(emails, 3, "every address stayed with its account");
}

/// Auth_Check (SPEC §2.4; conceal mode or not): an unknown PIN and a known PIN with a wrong
/// passphrase get the same answer in similar time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_check_answers_an_unknown_pin_like_a_wrong_passphrase_in_status_body_and_time() {
    let mut options = Options::new(Backend::Sqlite);
    options.conceal = true;
    let app = spawn_with(options).await;
    let to = email("ac-known");
    active(&app, &to).await;
    let known = pin_of(&app, &to).await;
    let unknown = (100_000..).map(|n: u32| n.to_string()).find(|p| *p != known).unwrap();
    let wrong = format!("{PASSPHRASE} but wrong");
    let mut times = [Vec::new(), Vec::new()];
    let mut answers = Vec::new();
    // Five each: the count of failures waits only after the fifth.
    for _ in 0..5 {
        for (o, pin) in [&known, &unknown].into_iter().enumerate() {
            let (took, a) = timed(app.auth_answer(&json!(pin), &wrong)).await;
            times[o].push(took);
            answers.push((a.status, a.raw));
        }
    }
    assert_eq!(answers[0].0, 401);
    assert!(answers.iter().all(|a| *a == answers[0]), "one answer for both");
    let medians = [("known".to_owned(), median(times[0].clone())), ("unknown".to_owned(), median(times[1].clone()))];
    assert_alike_in_time("Auth_Check", &medians);
}
