//! The host survives misbehaving components, and refuses unsafe configurations.

use serde_json::Value;

use crate::helpers::{Backend, Options, captured_log, email, spawn_app, spawn_with};
use crate::server::trap_route;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_component_writes_is_logged_under_its_request_id() {
    let mut options = Options::new(Backend::Sqlite);
    options.extra = vec![trap_route()];
    let app = spawn_with(options).await;
    let r = app.get("/trap/panic").await;
    assert_eq!(r.status(), 500);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    // The guest's panic message is logged from the task that ran it, once the call ended.
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
    assert!(line.contains(&format!("request_id={id}")), "under the answer's X-Request-Id {id}: {line}");
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
