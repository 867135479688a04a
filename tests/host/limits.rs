//! One client's share of the host (issue 19 items 4, 9, 10): the rate limits of GPT actions and
//! `/mcp`, the instances kept for browsers, the connections per address, the cap on pending
//! sign-ups, Auth_Check's PINs of another length, housekeeping of lock rows without an account,
//! dev mode's loopback names — and a key holder flooding the GPT actions while a browser works.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Answer, Backend, MailMode, Options, PASSPHRASE, TestApp, email, spawn_with, unknown_pin};

const KEY: &str = "limits-key-5b0d3e";

fn addr(app: &TestApp) -> SocketAddr {
    app.base.trim_start_matches("http://").parse().unwrap()
}

/// A client whose connections come from `source` (any 127.x address reaches the host on 127.0.0.1).
fn client_from(source: &str) -> reqwest::Client {
    let ip: IpAddr = source.parse().unwrap();
    reqwest::Client::builder().no_proxy().local_address(ip).timeout(Duration::from_secs(30)).build().unwrap()
}

fn sign_up_body(to: &str) -> Value {
    json!({"email": to, "consent": true, "locale": "en", "passphrase": PASSPHRASE})
}

/// Sends `head` on a new connection (closed after the answer) and returns the whole answer.
async fn raw(app: &TestApp, head: &str) -> String {
    let mut s = TcpStream::connect(addr(app)).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await.expect("answered").unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpt_calls_past_a_keys_rate_get_429_rate_limited_with_retry_after_in_the_callers_language() {
    let mut options = Options::new(Backend::Sqlite);
    options.api_keys = Some(KEY);
    options.config = Some(|c| {
        c.rate_limit_per_key = 1;
        c.rate_limit_per_key_burst = 3;
    });
    let app = spawn_with(options).await;
    // Quick answers (422: no Argon2 run), so the bucket hardly refills meanwhile.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(app.post("/api/auth/check", &json!({})).await.status().as_u16());
    }
    assert_eq!(statuses, [422, 422, 422], "the burst");

    // The same key from another address, on every GPT route: one bucket, counted by the key.
    let other = client_from("127.0.0.2");
    let limited = other.post(app.url("/api/auth/check")).bearer_auth(KEY).header("accept-language", "ru").json(&json!({"pin": unknown_pin(), "passphrase": PASSPHRASE})).send().await.unwrap();
    let a = Answer::read(limited, PASSPHRASE).await;
    a.assert_error(429, "RATE_LIMITED");
    assert!((1..=2).contains(&a.retry_after.expect("Retry-After")), "{:?}", a.retry_after);
    assert!(crate::helpers::is_russian(a.body["message"].as_str().unwrap()), "{}", a.body);
    for path in ["/api/profile/init", "/mcp", "/api/signup/init"] {
        let r = app.post(path, &json!({})).await;
        assert_eq!(r.status(), 429, "{path}");
        assert_eq!(Answer::read(r, PASSPHRASE).await.body["message"], "Too many requests. Try again in 1 seconds.", "{path}: English by default");
    }
    // Browser and public routes are not a GPT client's: never limited.
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.post("/api/signup/verify", &json!({"token": "x".repeat(43)})).await.status(), 410);
    // A token a second later.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(app.post("/api/signup/init", &sign_up_body(&email("rate-later"))).await.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_gpt_calls_in_dev_mode_are_limited_per_address() {
    let mut options = Options::new(Backend::Sqlite);
    options.config = Some(|c| {
        c.rate_limit_per_peer = 1;
        c.rate_limit_per_peer_burst = 2;
    });
    let app = spawn_with(options).await;
    let check = |client: reqwest::Client| {
        let url = app.url("/api/auth/check");
        async move { client.post(url).json(&json!({})).send().await.unwrap().status().as_u16() }
    };
    let here = client_from("127.0.0.1");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(check(here.clone()).await);
    }
    assert_eq!(statuses, [422, 422, 429, 429]);
    assert_eq!(check(client_from("127.0.0.3")).await, 422, "another address has its own share");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpt_flood_never_takes_the_instances_kept_for_browser_routes() {
    let mut options = Options::new(Backend::Sqlite);
    options.api_keys = Some(KEY);
    options.config = Some(|c| {
        c.max_instances = 4;
        c.reserved_instances_percent = 25;
        // Each sign-up holds its instance longer.
        c.argon2_t = 4;
    });
    let app = Arc::new(spawn_with(options).await);
    let stop = Arc::new(AtomicBool::new(false));
    let (busy, served) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let flood: Vec<_> = (0..12)
        .map(|t| {
            let (app, stop, busy, served) = (app.clone(), stop.clone(), busy.clone(), served.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let status = app.post("/api/signup/init", &sign_up_body(&email(&format!("pool{t}x{i}")))).await.status().as_u16();
                    match status {
                        503 => busy.fetch_add(1, Ordering::Relaxed),
                        _ => served.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut browser = Vec::new();
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        browser.push(app.get("/signup/verify").await.status().as_u16());
        browser.push(app.post("/api/signup/verify", &json!({"token": "x".repeat(43)})).await.status().as_u16());
    }
    stop.store(true, Ordering::Relaxed);
    for f in flood {
        f.await.unwrap();
    }
    let (busy, served) = (busy.load(Ordering::Relaxed), served.load(Ordering::Relaxed));
    eprintln!("GPT flood: {served} served, {busy} answered 503; browser: {} requests", browser.len());
    assert!(busy > 0, "the GPT flood filled its part of the pool");
    assert!(browser.iter().all(|s| *s == 200 || *s == 410), "no browser request was turned away: {browser:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holding_its_64_connections_leaves_the_rest_to_other_clients() {
    let mut options = Options::new(Backend::Sqlite);
    options.config = Some(|c| {
        c.max_connections = 80;
        c.max_connections_per_peer = 64;
        // Longer than the 80 reads below take (300 ms each for a held connection), so no held
        // connection is closed by the header timeout while they are counted.
        c.header_read_timeout_ms = 60_000;
    });
    let app = spawn_with(options).await;
    // 80 silent connections from 127.0.0.1: without a cap per address they hold every slot
    // until the header timeout.
    let mut silent = Vec::new();
    for _ in 0..80 {
        silent.push(TcpStream::connect(addr(&app)).await.unwrap());
    }
    let mut refused = 0;
    let mut held = 0;
    for s in &mut silent {
        let mut buf = vec![0u8; 512];
        match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                let text = String::from_utf8_lossy(&buf[..n]);
                assert!(text.starts_with("HTTP/1.1 503") && text.contains("TOO_MANY_CONNECTIONS"), "{text}");
                refused += 1;
            }
            Ok(_) => refused += 1,
            Err(_) => held += 1,
        }
    }
    assert_eq!((held, refused), (64, 16), "the address keeps 64 connections");
    let started = Instant::now();
    let r = client_from("127.0.0.2").get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2), "another address was answered after {:?}", started.elapsed());
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_dev_mode_only_requests_addressed_to_loopback_names_are_answered() {
    let mut options = Options::new(Backend::Sqlite);
    options.mail = MailMode::DevMailbox;
    let app = spawn_with(options).await;
    let port = addr(&app).port();
    for host in [format!("rebind.example:{port}"), "evil.example".to_owned(), format!("10.0.0.1:{port}")] {
        for path in ["/healthz", "/dev/mail", "/api/signup/verify"] {
            let answer = raw(&app, &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")).await;
            assert!(answer.starts_with("HTTP/1.1 421"), "{host}{path}: {answer}");
            assert!(answer.contains("HOST_NOT_ALLOWED") && answer.contains("localhost"), "{answer}");
        }
    }
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")] {
        let answer = raw(&app, &format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{host}: {answer}");
    }
    // A keyless GPT action from a page of another site, sent to a loopback name.
    let body = sign_up_body(&email("foreign-origin")).to_string();
    let answer = raw(
        &app,
        &format!(
            "POST /api/signup/init HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://rebind.example:{port}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 403") && answer.contains("FORBIDDEN_ORIGIN"), "{answer}");
}

async fn past_the_cap_every_sign_up_waits_until_pending_accounts_leave_the_hour(backend: Backend) {
    let mut options = Options::new(backend);
    options.api_keys = Some(KEY);
    options.config = Some(|c| c.max_pending_signups_per_hour = 3);
    let app = spawn_with(options).await;
    let control = app.control();
    let first = email("cap0");
    for to in [first.clone(), email("cap1"), email("cap2")] {
        assert_eq!(app.post("/api/signup/init", &sign_up_body(&to)).await.status(), 201);
    }
    control.clock.advance(Duration::from_secs(61));
    for to in [email("cap3"), first.clone()] {
        let a = Answer::read(app.post("/api/signup/init", &sign_up_body(&to)).await, PASSPHRASE).await;
        a.assert_error(429, "RATE_LIMITED");
        let wait = a.retry_after.expect("Retry-After");
        assert!((3_500..=3_540).contains(&wait), "until the first leaves the hour: {wait}");
    }
    // A verified account is no longer pending: room for one more.
    let token = app.next_mail(&first).await.token();
    assert_eq!(app.verify(&token).await.status(), 200);
    assert_eq!(app.post("/api/signup/init", &sign_up_body(&email("cap4"))).await.status(), 201);
    assert_eq!(app.post("/api/signup/init", &sign_up_body(&email("cap5"))).await.status(), 429);
    control.clock.advance(Duration::from_secs(3_600));
    assert_eq!(app.post("/api/signup/init", &sign_up_body(&email("cap6"))).await.status(), 201, "an hour later");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_cap_every_sign_up_waits_until_pending_accounts_leave_the_hour_sqlite() {
    past_the_cap_every_sign_up_waits_until_pending_accounts_leave_the_hour(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_cap_every_sign_up_waits_until_pending_accounts_leave_the_hour_postgres() {
    past_the_cap_every_sign_up_waits_until_pending_accounts_leave_the_hour(Backend::Postgres).await;
}

async fn failure_row(app: &TestApp, pin: &str) -> Option<i64> {
    sqlx::query_scalar::<_, i64>("SELECT failures FROM auth_failures WHERE pin = $1").bind(pin).fetch_optional(&app.control().db).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_of_another_length_is_401_and_leaves_no_row() {
    let app = spawn_with(Options::new(Backend::Sqlite)).await;
    for pin in ["1234", "98765432101"] {
        for _ in 0..6 {
            app.auth_answer(&json!(pin), PASSPHRASE).await.assert_error(401, "INVALID_CREDENTIALS");
        }
        assert_eq!(failure_row(&app, pin).await, None, "{pin}");
    }
    let six = "987650";
    app.auth_answer(&json!(six), PASSPHRASE).await.assert_error(401, "INVALID_CREDENTIALS");
    assert_eq!(failure_row(&app, six).await, Some(1), "a PIN of pin_length is counted");
}

async fn housekeeping_drops_old_lock_rows_of_pins_without_an_account(backend: Backend) {
    let app = spawn_with(Options::new(backend)).await;
    let control = app.control();
    let r = app.sign_up(&email("locked-owner"), "en").await;
    let owned = r.json::<Value>().await.unwrap()["pin"].as_str().unwrap().to_owned();
    let now = control.clock.now_ms();
    let rows = [(owned.as_str(), 100, 0), ("900001", 100, 0), ("900002", 3, 0), ("900003", 100, now)];
    for (pin, failures, at) in rows {
        sqlx::query("INSERT INTO auth_failures (pin, failures, last_failure_at, lock_notified) VALUES ($1, $2, $3, 0)")
            .bind(pin)
            .bind(failures as i64)
            .bind(at)
            .execute(&control.db)
            .await
            .unwrap();
    }
    (control.housekeep)().await.unwrap();
    assert_eq!(failure_row(&app, &owned).await, Some(100), "an account's lock lasts until its owner lifts it");
    assert_eq!(failure_row(&app, "900001").await, None, "nobody can lift this lock: it goes");
    assert_eq!(failure_row(&app, "900002").await, None, "an old count goes, as before");
    assert_eq!(failure_row(&app, "900003").await, Some(100), "a recent lock stays for its week");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_drops_old_lock_rows_of_pins_without_an_account_sqlite() {
    housekeeping_drops_old_lock_rows_of_pins_without_an_account(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_drops_old_lock_rows_of_pins_without_an_account_postgres() {
    housekeeping_drops_old_lock_rows_of_pins_without_an_account(Backend::Postgres).await;
}

/// Acceptance 3 of issue 19: one key holder calls `signUpInit` and `authCheck` at full speed for
/// 30 s (8 loops on loopback), while a browser verifies links and saves profiles: every browser
/// request is answered within 2 s, none with a 5xx. The per-key limit is lowered to 5/s (burst 10):
/// with Argon2 in every call, 8 loops on this 2-core machine reach about 9 calls a second, below
/// the default 20/s, and the test must see the limit work too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_holder_flooding_the_gpt_actions_for_30_s_leaves_the_browser_answered_within_2_s() {
    let mut options = Options::new(Backend::Sqlite);
    options.api_keys = Some(KEY);
    options.config = Some(|c| {
        let defaults = gpt_user::Config::default();
        c.rate_limit_per_key = 5;
        c.rate_limit_per_key_burst = 10;
        c.rate_limit_per_peer = defaults.rate_limit_per_peer;
        c.rate_limit_per_peer_burst = defaults.rate_limit_per_peer_burst;
        c.max_connections_per_peer = defaults.max_connections_per_peer;
    });
    let app = Arc::new(spawn_with(options).await);

    // The browser's work: pending accounts to verify, active ones to save.
    let mut verify_tokens = Vec::new();
    for i in 0..6 {
        let to = email(&format!("flood-verify{i}"));
        assert_eq!(app.sign_up(&to, "en").await.status(), 201);
        verify_tokens.push(app.next_mail(&to).await.token());
    }
    let mut profile_tokens = Vec::new();
    for i in 0..3 {
        let to = email(&format!("flood-save{i}"));
        app.active_user(&to).await;
        profile_tokens.push(app.profile_link_token(&to).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // the key's burst back

    let stop = Arc::new(AtomicBool::new(false));
    let counts: Arc<std::sync::Mutex<std::collections::BTreeMap<(u16, String), usize>>> = Arc::default();
    let flood: Vec<_> = (0..8)
        .map(|t| {
            let (app, stop, counts) = (app.clone(), stop.clone(), counts.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let r = if i.is_multiple_of(2) {
                        app.post("/api/signup/init", &sign_up_body(&email(&format!("flood{t}x{i}")))).await
                    } else {
                        app.post("/api/auth/check", &json!({"pin": format!("{}", 100_000 + (i * 7919 + t) % 900_000), "passphrase": PASSPHRASE})).await
                    };
                    let status = r.status().as_u16();
                    let code = if status == 429 { r.json::<Value>().await.map(|b| b["code"].as_str().unwrap_or_default().to_owned()).unwrap_or_default() } else { String::new() };
                    *counts.lock().unwrap().entry((status, code)).or_default() += 1;
                }
            })
        })
        .collect();

    let started = Instant::now();
    let mut browser: Vec<(&str, u16, Duration)> = Vec::new();
    let mut round = 0;
    while started.elapsed() < Duration::from_secs(30) {
        let token = &verify_tokens[round % verify_tokens.len()];
        let profile = &profile_tokens[round % profile_tokens.len()];
        let locale = if round % 2 == 0 { "ru" } else { "en" };
        let calls: [(&str, _); 4] = [
            ("verify page", app.client.get(app.url("/signup/verify")).send()),
            ("verify", app.client.post(app.url("/api/signup/verify")).json(&json!({"token": token})).send()),
            ("profile load", app.client.post(app.url("/api/profile/load")).json(&json!({"token": profile})).send()),
            ("profile save", app.client.post(app.url("/api/profile/save")).json(&json!({"token": profile, "locale": locale})).send()),
        ];
        for (what, call) in calls {
            let at = Instant::now();
            let r = tokio::time::timeout(Duration::from_secs(10), call).await.expect("answered").unwrap();
            let status = r.status().as_u16();
            let _ = r.bytes().await;
            browser.push((what, status, at.elapsed()));
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for f in flood {
        f.await.unwrap();
    }

    let counts = counts.lock().unwrap().clone();
    let slowest = browser.iter().map(|b| b.2).max().unwrap();
    eprintln!("flood answers by status: {counts:?}; browser: {} requests, slowest {} ms", browser.len(), slowest.as_millis());
    assert!(counts.get(&(429, "RATE_LIMITED".to_owned())).is_some_and(|n| *n > 0), "the key holder was rate-limited: {counts:?}");
    assert!(counts.keys().all(|(s, _)| *s < 500), "no 5xx for the flood either: {counts:?}");
    for (what, status, took) in &browser {
        assert!(*status < 500, "{what}: {status}");
        assert!(*took < Duration::from_secs(2), "{what} took {took:?}");
    }
    let verified = browser.iter().filter(|b| b.0 == "verify" && b.1 == 200).count();
    let saved = browser.iter().filter(|b| b.0 == "profile save" && b.1 == 200).count();
    assert_eq!(verified, verify_tokens.len(), "every link was verified once");
    assert!(saved > 0, "profiles were saved");
}
