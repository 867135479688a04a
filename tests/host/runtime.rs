//! The host survives misbehaving components, and refuses unsafe configurations.

use serde_json::Value;

use gpt_user::manifest::Route;

use crate::helpers::{Backend, Options, captured_log, email, spawn_app, spawn_with};

fn trap_component() -> &'static [u8] {
    let path = std::path::Path::new(gpt_user::artifacts::WASM_DIR).join("gpt_user_test_trap.wasm");
    Box::leak(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).into_boxed_slice())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_component_answers_500_and_the_next_request_is_served() {
    let mut options = Options::new(Backend::Sqlite);
    options.request_timeout_ms = 1_500;
    options.extra = vec![(Route { path: "/trap".into(), wildcard: true, component: "trap".into() }, trap_component())];
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
