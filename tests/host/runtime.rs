//! The host survives misbehaving components, and refuses unsafe configurations.

use serde_json::Value;

use crate::helpers::{Backend, Options, captured_log, email, spawn_app, spawn_with};
use crate::server::{test_component_route, trap_route};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_component_writes_is_logged_under_its_request_id() {
    let mut options = Options::new(Backend::Sqlite);
    options.extra = vec![trap_route()];
    let app = spawn_with(options).await;
    let r = app.get("/trap/panic").await;
    assert_eq!(r.status(), 500);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    // The guest's panic message is logged when its instance ends (here: at the trap), with the
    // ids of the requests the instance served.
    let mut found = None;
    for _ in 0..100 {
        // The output is the field's value, over several lines: the log line is the one that starts it.
        let log = captured_log();
        found = log.contains("this component traps on purpose").then(|| log.lines().find(|l| l.contains("component wrote to stdout/stderr component=trap")).map(str::to_owned)).flatten();
        if found.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let line = found.unwrap_or_else(|| panic!("the component's output was logged:\n{}", captured_log().lines().filter(|l| l.contains(&id) || l.contains("component")).collect::<Vec<_>>().join("\n")));
    assert!(line.contains(&format!("requests={id}")), "with the answer's X-Request-Id {id}: {line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_component_answers_500_and_the_next_request_is_served() {
    let mut options = Options::new(Backend::Sqlite);
    options.request_timeout_ms = 1_500;
    options.extra = vec![trap_route()];
    let app = spawn_with(options).await;
    for path in ["/trap/panic", "/trap/loop", "/trap/memory"] {
        let r = app.get(path).await;
        assert_eq!(r.status(), 500, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "INTERNAL");
        assert!(!body.to_string().contains("wasm"), "no internals in the body");
        let ok = app.get("/trap/fine").await;
        assert_eq!(ok.status(), 200, "the component serves again after {path}");
    }
    assert_eq!(app.sign_up(&email("after"), "en").await.status(), 201, "other components are unaffected");
}

/// The WASIp3 test component (`tests/components/shared`) served at `/shared/*`.
async fn shared_app(request_timeout_ms: u64) -> crate::helpers::TestApp {
    let mut options = Options::new(Backend::Sqlite);
    options.request_timeout_ms = request_timeout_ms;
    options.extra = vec![test_component_route("shared")];
    spawn_with(options).await
}

async fn text(r: reqwest::Response) -> (u16, String) {
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasip3_instance_serves_request_after_request() {
    let app = shared_app(5_000).await;
    for n in 1..=3 {
        assert_eq!(text(app.get("/shared/count").await).await, (200, format!("count {n}")), "the same instance, its {n}th request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_in_one_of_several_concurrent_requests_answers_each_500_and_the_instance_is_replaced() {
    let app = std::sync::Arc::new(shared_app(5_000).await);
    assert_eq!(text(app.get("/shared/count").await).await, (200, "count 1".to_owned()));
    // Three requests wait on the clock in the instance (sent 100 ms apart: the dispatcher gives
    // an instance another request once its requests wait); then one traps in it.
    let mut waiting = Vec::new();
    for _ in 0..3 {
        waiting.push(tokio::spawn({ let app = app.clone(); async move { (app.get("/shared/wait/2000").await, std::time::Instant::now()) } }));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let started = std::time::Instant::now();
    let trapped = app.get("/shared/panic").await;
    assert_eq!(trapped.status(), 500);
    let mut shared = 0;
    for w in waiting {
        let (response, answered) = w.await.unwrap();
        let (status, body) = text(response).await;
        // Under load the dispatcher may have started a second instance for one of them: that
        // one finishes its wait. None is left hanging, none gets anything but these two answers.
        if status == 200 {
            assert!(body.starts_with("waited "), "{body}");
            continue;
        }
        shared += 1;
        assert_eq!(status, 500, "a request sharing the trapped instance is answered 500: {body}");
        assert!(answered - started < std::time::Duration::from_millis(1_500), "answered at the trap, not at its own end: {:?}", answered - started);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], "INTERNAL");
        assert!(!body.to_string().contains("wasm"), "no internals in the body");
    }
    assert!(shared >= 1, "at least one waiting request shared the trapped instance");
    assert_eq!(text(app.get("/shared/count").await).await, (200, "count 1".to_owned()), "a fresh instance serves the next request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_epoch_deadline_ends_a_runaway_request_on_a_shared_instance_and_the_instance_is_replaced() {
    let app = std::sync::Arc::new(shared_app(1_500).await);
    assert_eq!(text(app.get("/shared/count").await).await, (200, "count 1".to_owned()));
    // One request waits on the clock; another then spins in the same instance, so the first
    // can never be resumed: both end at the deadline with a 500, and the instance with them.
    let waiting = tokio::spawn({ let app = app.clone(); async move { app.get("/shared/wait/500").await } });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let runaway = app.get("/shared/loop").await;
    assert_eq!(runaway.status(), 500);
    let elapsed = started.elapsed();
    assert!(elapsed < std::time::Duration::from_millis(3_000), "ended at the 1.5 s deadline, not never: {elapsed:?}");
    let (status, body) = text(waiting.await.unwrap()).await;
    // Under load the dispatcher may have given the runaway a second instance: the wait then
    // ends normally. Otherwise it shared the runaway's instance and gets a clean 500.
    if status == 200 {
        assert!(body.starts_with("waited "), "{body}");
    } else {
        assert_eq!(status, 500, "{body}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["code"], "INTERNAL");
    }
    assert_eq!(text(app.get("/shared/count").await).await, (200, "count 1".to_owned()), "a fresh instance serves the next request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_refuses_a_public_address_without_an_api_key() {
    let config = gpt_user::Config {
        listen: "0.0.0.0:0".parse().unwrap(),
        data_dir: std::env::temp_dir().join(format!("gpt-user-refuse-{}", uuid::Uuid::new_v4().simple())),
        ..gpt_user::Config::default()
    };
    let err = gpt_user::Application::build(config).await.err().expect("refused");
    assert!(err.to_string().contains("GPT_USER_API_KEYS"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_sign_up_leaves_no_secret_in_the_log() {
    let mut options = Options::new(Backend::Sqlite);
    options.api_keys = Some("log-check-key-3f9a0c1d");
    let app = spawn_with(options).await;
    let to = email("log");
    assert_eq!(app.sign_up(&to, "en").await.status(), 201);
    let token = app.next_mail(&to).await.token();
    assert_eq!(app.verify(&token).await.status(), 200);
    // The dispatcher logs the delivery once it has marked the message sent, a moment after the
    // sink has it.
    let mut log = captured_log();
    for _ in 0..100 {
        if log.contains("mail delivered") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        log = captured_log();
    }
    assert!(log.contains("mail delivered"), "the log was captured");
    for secret in [crate::helpers::PASSPHRASE, token.as_str(), "log-check-key-3f9a0c1d"] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
    drop(spawn_app(Backend::Sqlite).await);
}
