//! The audit trail (issue 22): every account change writes its event in the transaction of the
//! change — the actor, the client's address, the request's id, never a secret or an address — a
//! step the store fails half-way leaves neither, and housekeeping records expired email changes and
//! the pending accounts it deletes, and keeps events for the retention only.

use std::time::Duration;

use gpt_user_core::audit::email_hash;
use serde_json::json;

use crate::helpers::{Backend, PASSPHRASE, TestApp, email, spawn_app};

/// One row of `events`, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    kind: String,
    actor: String,
    user_id: String,
    email_hash: String,
    client: Option<String>,
    request_id: Option<String>,
    detail: Option<String>,
}

type Columns = (String, String, String, String, Option<String>, Option<String>, Option<String>);

async fn events(app: &TestApp) -> Vec<Row> {
    let rows: Vec<Columns> = sqlx::query_as("SELECT kind, actor, user_id, email_hash, client, request_id, detail FROM events ORDER BY at, seq")
        .fetch_all(&app.control().db)
        .await
        .unwrap();
    rows.into_iter()
        .map(|(kind, actor, user_id, email_hash, client, request_id, detail)| Row { kind, actor, user_id, email_hash, client, request_id, detail })
        .collect()
}

async fn events_of(app: &TestApp, user_id: &str) -> Vec<Row> {
    events(app).await.into_iter().filter(|e| e.user_id == user_id).collect()
}

async fn user_id(app: &TestApp, to: &str) -> String {
    let (id,): (String,) = sqlx::query_as("SELECT id FROM users WHERE email = $1").bind(to).fetch_one(&app.control().db).await.unwrap();
    id
}

fn request_id(r: &reqwest::Response) -> String {
    r.headers()["x-request-id"].to_str().unwrap().to_owned()
}

/// Every column of every event, for a search for secrets.
async fn dump(app: &TestApp) -> String {
    events(app).await.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>().join("\n")
}

crate::on_both_backends!(
    every_change_of_an_account_leaves_its_event_with_who_did_it_and_no_secret,
    a_step_the_store_fails_half_way_leaves_neither_its_change_nor_its_event,
);

async fn every_change_of_an_account_leaves_its_event_with_who_did_it_and_no_secret(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("audit");
    let signed = app.sign_up(&to, "en").await;
    assert_eq!(signed.status(), 201);
    let signup_request = request_id(&signed);
    let token = app.next_mail(&to).await.token();
    let verified = app.verify(&token).await;
    assert_eq!(verified.status(), 200);
    let verify_request = request_id(&verified);
    let link = app.profile_link_token(&to).await;
    let new_passphrase = "a new passphrase for the audit test";
    let saved = app.profile_save(&json!({"token": link, "passphrase": new_passphrase, "locale": "ru"})).await;
    assert_eq!(saved.status(), 200);
    let save_request = request_id(&saved);
    let id = user_id(&app, &to).await;

    let trail = events_of(&app, &id).await;
    let kinds: Vec<&str> = trail.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["account-created", "account-verified", "profile-link-requested", "passphrase-changed", "locale-changed"], "{trail:#?}");
    let actors: Vec<&str> = trail.iter().map(|e| e.actor.as_str()).collect();
    assert_eq!(actors, ["chat", "browser", "chat", "browser", "browser"]);
    assert_eq!(trail[0].request_id.as_deref(), Some(signup_request.as_str()), "the answer's X-Request-Id");
    assert_eq!(trail[1].request_id.as_deref(), Some(verify_request.as_str()));
    assert_eq!(trail[3].request_id.as_deref(), Some(save_request.as_str()));
    assert_eq!(trail[4].detail.as_deref(), Some("ru"), "the new locale");
    for e in &trail {
        assert_eq!(e.client.as_deref(), Some("127.0.0.1"), "{e:?}");
        assert_eq!(e.email_hash, email_hash(&to));
    }

    // An email change: started and confirmed, the latter under the new address's hash.
    let user = app.ec_user("audit-ec").await;
    let new = email("audit-ec-new");
    let (flow, code) = app.ec_confirming_new(&user, &new).await;
    app.ec(&flow, "confirm-new", json!({"code": code})).await.ok();
    let ec_id = user_id(&app, &new).await;
    let trail = events_of(&app, &ec_id).await;
    let kinds: Vec<&str> = trail.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds[kinds.len() - 2..], ["email-change-started", "email-change-confirmed"], "{trail:#?}");
    assert_eq!(trail[trail.len() - 2].email_hash, email_hash(&user.email));
    assert_eq!(trail.last().unwrap().email_hash, email_hash(&new));

    // A sign-up through MCP's tools/call: the action's event names the /mcp request.
    let by_mcp = email("audit-mcp");
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "signUpInit",
        "arguments": {"email": by_mcp, "consent": true, "locale": "en", "passphrase": PASSPHRASE}}});
    let r = app.client.post(app.url("/mcp")).header("accept", "application/json, text/event-stream").header("mcp-protocol-version", "2025-11-25").json(&call).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mcp_request = request_id(&r);
    let created = events_of(&app, &user_id(&app, &by_mcp).await).await;
    assert_eq!((created[0].kind.as_str(), created[0].actor.as_str()), ("account-created", "chat"));
    assert_eq!(created[0].request_id.as_deref(), Some(mcp_request.as_str()));
    assert_eq!(created[0].client.as_deref(), Some("127.0.0.1"));

    // No secret, and no address, in any column of any event.
    let all = dump(&app).await;
    for secret in [PASSPHRASE, new_passphrase, token.as_str(), link.as_str(), user.token.as_str(), code.as_str(), to.as_str(), new.as_str(), by_mcp.as_str()] {
        assert!(!all.contains(secret), "an event holds a secret or an address ({} characters)", secret.len());
    }
}

/// `sql` run on the test's database, on a connection of its own (a trigger that fails a
/// statement, and its removal).
async fn exec(app: &TestApp, sql: &str) {
    use sqlx::Connection as _;
    let mut conn = sqlx::AnyConnection::connect(&app.control().database_url()).await.unwrap();
    sqlx::raw_sql(sql).execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.unwrap();
}

/// A trigger that fails every `operation` on `table`, as a store that dies mid-transaction does.
async fn fail_on(app: &TestApp, backend: Backend, operation: &str, table: &str) {
    match backend {
        Backend::Postgres => {
            exec(app, "CREATE OR REPLACE FUNCTION gpt_user_test_fail() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'the store died'; END $$ LANGUAGE plpgsql").await;
            exec(app, &format!("CREATE TRIGGER gpt_user_test_fail BEFORE {operation} ON {table} FOR EACH ROW EXECUTE FUNCTION gpt_user_test_fail()")).await;
        }
        _ => exec(app, &format!("CREATE TRIGGER gpt_user_test_fail BEFORE {operation} ON {table} BEGIN SELECT RAISE(ABORT, 'the store died'); END")).await,
    }
}

async fn heal(app: &TestApp, table: &str, backend: Backend) {
    let on = if backend == Backend::Postgres { format!(" ON {table}") } else { String::new() };
    exec(app, &format!("DROP TRIGGER gpt_user_test_fail{on}")).await;
}

async fn a_step_the_store_fails_half_way_leaves_neither_its_change_nor_its_event(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("audit-fail");
    assert_eq!(app.sign_up(&to, "en").await.status(), 201);
    let token = app.next_mail(&to).await.token();
    let id = user_id(&app, &to).await;
    let status = async || -> String {
        let (s,): (String,) = sqlx::query_as("SELECT status FROM users WHERE id = $1").bind(&id).fetch_one(&app.control().db).await.unwrap();
        s
    };

    // The event's write fails after the activation's: the activation is rolled back with it.
    fail_on(&app, backend, "INSERT", "events").await;
    let r = app.verify(&token).await;
    assert!(r.status().is_server_error(), "{}", r.status());
    assert_eq!(status().await, "pending", "no change without its event");
    heal(&app, "events", backend).await;

    // The activation fails (the event comes after it in the transaction): no event either.
    fail_on(&app, backend, "UPDATE", "users").await;
    let r = app.verify(&token).await;
    assert!(r.status().is_server_error(), "{}", r.status());
    assert!(!events_of(&app, &id).await.iter().any(|e| e.kind == "account-verified"), "no event without its change");
    heal(&app, "users", backend).await;

    // Healed, the same link works (it was never consumed) and both are written once.
    assert_eq!(app.verify(&token).await.status(), 200);
    assert_eq!(status().await, "active");
    let verified = events_of(&app, &id).await.into_iter().filter(|e| e.kind == "account-verified").count();
    assert_eq!(verified, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_records_an_unfinished_email_change_and_a_deleted_pending_account_and_keeps_events_for_the_retention() {
    let app = spawn_app(Backend::Sqlite).await;
    let control = app.control();
    let user = app.ec_user("audit-hk").await;
    let pending = email("audit-hk-pending");
    assert_eq!(app.sign_up(&pending, "en").await.status(), 201);
    let pending_id = user_id(&app, &pending).await;
    app.ec_started(&user).await;
    let id = user_id(&app, &user.email).await;
    let before = events_of(&app, &id).await.len();
    assert!(before >= 4, "created, verified, link, started");

    // Past the flow's hour: housekeeping deletes it and says so.
    control.clock.advance(Duration::from_secs(2 * 3600));
    (control.housekeep)().await.unwrap();
    let trail = events_of(&app, &id).await;
    let expired = trail.last().unwrap();
    assert_eq!((expired.kind.as_str(), expired.actor.as_str()), ("email-change-expired", "system"), "{trail:#?}");
    assert_eq!((expired.client.as_deref(), expired.request_id.as_deref()), (None, None));
    (control.housekeep)().await.unwrap();
    assert_eq!(events_of(&app, &id).await.len(), before + 1, "recorded once");

    // 400 days on (the default retention), what happened before is gone; a new event stays.
    control.clock.advance(Duration::from_secs(400 * 86_400 - 3600));
    assert_eq!(app.profile_request(&user.email).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    control.clock.advance(Duration::from_secs(2 * 3600));
    (control.housekeep)().await.unwrap();
    let kinds: Vec<String> = events_of(&app, &id).await.into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["profile-link-requested"], "only the event inside the retention is kept");
    // The pending account housekeeping deleted on the way: its `deleted` event, by the system.
    let gone = events_of(&app, &pending_id).await;
    assert_eq!(gone.len(), 1, "{gone:#?}");
    assert_eq!((gone[0].kind.as_str(), gone[0].actor.as_str(), gone[0].detail.as_deref()), ("deleted", "system", Some("not verified within 7 days")));
}
