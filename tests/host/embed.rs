//! Embedding (SPEC §2.4, issue 9): the example component of an embedding application
//! (`examples/orders`) with our auth component plugged into its `gpt-user:accounts/auth` import, as
//! `wac plug` composes them, served by our host at `/api/orders` beside our own components. Its GPT
//! action answers only when our check accepts the PIN and passphrase, and refuses as Auth_Check does.

use std::time::Duration;

use serde_json::{Value, json};

use gpt_user::manifest::Route;

use crate::compose::plug_into;
use crate::helpers::{Backend, Options, PASSPHRASE, TestApp, email, spawn_with};

/// A wrong passphrase long enough for the log check to look for it.
const WRONG: &str = "not the passphrase at all";

fn built(file: &str) -> Vec<u8> {
    let path = std::path::Path::new(gpt_user::artifacts::WASM_DIR).join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (built by host/build.rs)", path.display()))
}

/// `examples/orders` with `components/auth` plugged in, at `/api/orders`.
fn orders_route() -> (Route, &'static [u8]) {
    let composed = plug_into(&built("gpt_user_example_orders.wasm"), &built("gpt_user_auth.wasm")).expect("auth plugs into the example");
    (Route { path: "/api/orders".into(), wildcard: false, component: "orders".into() }, Box::leak(composed.into_boxed_slice()))
}

async fn order(app: &TestApp, pin: &str, passphrase: &str, item: &str) -> (u16, Value) {
    app.remember_secret(passphrase);
    let r = app.post("/api/orders", &json!({"pin": pin, "passphrase": passphrase, "item": item})).await;
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn signed_up(app: &TestApp, email: &str) -> String {
    let r = app.sign_up(email, "en").await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["pin"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_composed_with_our_auth_component_places_an_order_only_for_a_checked_active_user() {
    let mut options = Options::new(Backend::Sqlite);
    options.extra = vec![orders_route()];
    let app = spawn_with(options).await;
    let pin = app.active_user(&email("orders")).await;

    let (status, body) = order(&app, &pin, WRONG, "tea").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("INVALID_CREDENTIALS")), "{body}");
    assert!(body.get("order").is_none(), "{body}");

    let (status, body) = order(&app, &pin, PASSPHRASE, "tea").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["order"], json!({"item": "tea", "pin": pin}), "{body}");

    let (status, body) = order(&app, &pin, PASSPHRASE, "").await;
    assert_eq!((status, body["code"].as_str(), body["field"].as_str()), (422, Some("INVALID_INPUT"), Some("item")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_refuses_a_pending_account_as_auth_check_does() {
    let mut options = Options::new(Backend::Sqlite);
    options.extra = vec![orders_route()];
    let app = spawn_with(options).await;
    let pin = signed_up(&app, &email("pending")).await;

    let (status, body) = order(&app, &pin, PASSPHRASE, "tea").await;
    assert_eq!((status, body["code"].as_str()), (403, Some("EMAIL_NOT_VERIFIED")), "{body}");
    let check = app.auth_check(&json!(pin), PASSPHRASE).await;
    assert_eq!(check.status(), 403, "our own action agrees");
    assert_eq!(check.json::<Value>().await.unwrap()["code"], "EMAIL_NOT_VERIFIED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_and_our_auth_check_share_one_failure_count_per_pin() {
    let mut options = Options::new(Backend::Sqlite);
    options.extra = vec![orders_route()];
    let app = spawn_with(options).await;
    let pin = app.active_user(&email("shared")).await;

    // Eight failures through the example, the clock moved past the delay before each so all count;
    // then the PIN waits 8 s (delay(8) = 2^3 s) for our own action and for the example alike:
    // the count lives in the store, not in either component.
    for _ in 0..8 {
        app.control().clock.advance(Duration::from_secs(60));
        assert_eq!(order(&app, &pin, WRONG, "tea").await.0, 401);
    }
    let check = app.auth_check(&json!(pin), PASSPHRASE).await;
    assert_eq!(check.status(), 429, "the example's failures count for /api/auth/check");
    let r = app.post("/api/orders", &json!({"pin": pin, "passphrase": PASSPHRASE, "item": "tea"})).await;
    assert_eq!(r.status(), 429);
    let retry_after: u32 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "Retry-After: {retry_after}");
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "TOO_MANY_ATTEMPTS");
}
