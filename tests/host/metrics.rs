//! `/metrics` (issue 22): served on its own listener only, and its counters move as requests drive
//! them — sign-ups and their answers, the pool's `503 BUSY`, Auth_Check failures, an SMTP outage's
//! backlog and its end.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, MailMode, Options, TestApp, email, spawn_with};
use crate::server::trap_route;

pub(crate) fn with_metrics(c: &mut gpt_user::Config) {
    c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
}

/// The exposition of the app's metrics listener, as `name{labels}` → value.
pub(crate) async fn scrape(app: &TestApp) -> Vec<(String, f64)> {
    let addr: SocketAddr = app.control().metrics.expect("the app serves metrics");
    let r = reqwest::get(format!("http://{addr}/metrics")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = r.text().await.unwrap();
    assert!(text.trim_end().ends_with("# EOF"), "a whole exposition: {text}");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("a sample line: {l}"));
            (name.to_owned(), value.parse().unwrap_or_else(|_| panic!("a number: {l}")))
        })
        .collect()
}

/// The value of the sample `name` (with its labels exactly as written), 0 if absent.
pub(crate) fn value(samples: &[(String, f64)], name: &str) -> f64 {
    samples.iter().find(|(n, _)| n == name).map_or(0.0, |(_, v)| *v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ups_and_auth_failures_are_counted_as_answered_and_metrics_are_not_on_the_public_port() {
    let mut options = Options::new(Backend::Sqlite);
    options.config = Some(with_metrics);
    let app = spawn_with(options).await;
    let before = scrape(&app).await;
    assert_eq!(value(&before, r#"gpt_user_account_events_total{kind="signup"}"#), 0.0);

    let mut created = 0;
    let mut pins = Vec::new();
    for i in 0..3 {
        let r = app.sign_up(&email(&format!("metrics{i}")), "en").await;
        assert_eq!(r.status(), 201);
        pins.push(r.json::<Value>().await.unwrap()["pin"].as_str().unwrap().to_owned());
        created += 1;
    }
    let bad = app.post("/api/signup/init", &json!({"email": "not an address", "locale": "en", "consent": true})).await;
    assert_eq!(bad.status(), 422);
    // Wrong passphrases on a PIN: each a counted attempt that does not succeed.
    for _ in 0..2 {
        let r = app.post("/api/auth/check", &json!({"pin": pins[0], "passphrase": "wrong wrong wrong wrong"})).await;
        assert_eq!(r.status(), 401);
    }

    let after = scrape(&app).await;
    assert_eq!(value(&after, r#"gpt_user_account_events_total{kind="signup"}"#), f64::from(created));
    assert_eq!(value(&after, r#"gpt_user_http_requests_total{route="/api/signup/init",component="signup",status="201"}"#), f64::from(created));
    assert_eq!(value(&after, r#"gpt_user_http_requests_total{route="/api/signup/init",component="signup",status="422"}"#), 1.0);
    assert_eq!(value(&after, r#"gpt_user_http_request_duration_seconds_count{route="/api/signup/init",component="signup"}"#), 4.0);
    assert!(value(&after, r#"gpt_user_auth_checks_total{kind="attempt"}"#) >= 2.0);
    assert_eq!(value(&after, r#"gpt_user_auth_checks_total{kind="success"}"#), 0.0);
    // One Argon2 run per sign-up and per check, timed inside the component.
    assert_eq!(value(&after, "gpt_user_argon2_seconds_count"), 5.0);
    assert!(value(&after, "gpt_user_argon2_seconds_sum") > 0.0);
    assert_eq!(value(&after, "gpt_user_instances_capacity"), 256.0);

    // The public listener has no /metrics.
    assert_eq!(app.get("/metrics").await.status(), 404);
    let scraped = scrape(&app).await;
    assert_eq!(
        value(&scraped, r#"gpt_user_http_requests_total{route="unrouted",component="host",status="404"}"#),
        1.0,
        "the public /metrics was an unrouted 404"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_shows_as_busy_answers_and_instances_in_use() {
    let mut options = Options::new(Backend::Sqlite);
    options.extra = vec![trap_route()];
    options.config = Some(|c| {
        with_metrics(c);
        c.max_instances = 2;
    });
    let app = spawn_with(options).await;
    let requests = (0..6).map(|_| app.get("/trap/sleep/2500"));
    let scraping = async {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        scrape(&app).await
    };
    let (answers, during) = futures::future::join(futures::future::join_all(requests), scraping).await;
    let busy = answers.iter().filter(|r| r.status() == 503).count();
    assert_eq!(busy, 4, "two of six were served");
    assert_eq!(value(&during, "gpt_user_instances_in_use"), 2.0, "both instances in use while they sleep");
    assert_eq!(value(&during, "gpt_user_instances_capacity"), 2.0);
    assert_eq!(value(&during, "gpt_user_component_instances"), 2.0, "a WASIp2 component: an instance per request");
    let after = scrape(&app).await;
    assert_eq!(value(&after, r#"gpt_user_busy_total{kind="all"}"#), busy as f64);
    assert_eq!(value(&after, "gpt_user_instances_in_use"), 0.0, "freed");
    assert_eq!(value(&after, r#"gpt_user_http_requests_total{route="/trap/...",component="trap",status="503"}"#), busy as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_outage_raises_the_backlog_and_its_end_lowers_it() {
    let mut options = Options::new(Backend::Sqlite);
    options.mail = MailMode::SmtpDown;
    options.config = Some(with_metrics);
    let app = spawn_with(options).await;
    let to = email("outage-metrics");
    assert_eq!(app.sign_up(&to, "en").await.status(), 201);

    let mut during = Vec::new();
    for _ in 0..100 {
        during = scrape(&app).await;
        if value(&during, r#"gpt_user_mail_failed_total{kind="temporary"}"#) >= 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(value(&during, r#"gpt_user_mail_failed_total{kind="temporary"}"#) >= 2.0, "retried while the relay was down");
    assert_eq!(value(&during, r#"gpt_user_outbox_messages{state="failed"}"#), 1.0, "the backlog");
    assert!(value(&during, "gpt_user_outbox_oldest_undelivered_age_seconds") > 0.0);
    assert_eq!(value(&during, "gpt_user_mail_sent_total"), 0.0);

    app.start_smtp().await;
    app.next_mail(&to).await;
    let mut after = Vec::new();
    for _ in 0..50 {
        after = scrape(&app).await;
        if value(&after, r#"gpt_user_outbox_messages{state="sent"}"#) == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(value(&after, r#"gpt_user_outbox_messages{state="failed"}"#), 0.0, "the backlog is gone");
    assert_eq!(value(&after, r#"gpt_user_outbox_messages{state="sent"}"#), 1.0);
    assert_eq!(value(&after, "gpt_user_outbox_oldest_undelivered_age_seconds"), 0.0);
    assert_eq!(value(&after, "gpt_user_mail_sent_total"), 1.0);
    assert_eq!(value(&after, "gpt_user_mail_delivery_seconds_count"), 1.0);
}
