//! The MCP endpoint (`POST /mcp`) over HTTP, on SQLite and on PostgreSQL, as any server (ours
//! elsewhere, Spin) must answer it: the tools are the GPT actions with `/openapi.json`'s request
//! schemas, a `tools/call` is the HTTP action (same answers, same emails, same throttles and
//! failure counts), and protocol mistakes are JSON-RPC errors, never a 500.

use serde_json::{Value, json};

use crate::helpers::{Answer, Backend, Options, PASSPHRASE, TestApp, email, spawn_app, spawn_with};
use crate::on_both_backends;

on_both_backends!(
    tools_list_lists_every_gpt_action_with_the_input_schema_of_openapi_json,
    sign_up_through_mcp_is_the_http_action_with_its_email_and_its_throttle,
    update_init_through_mcp_is_the_http_action_with_its_email_and_its_errors,
    auth_check_through_mcp_answers_and_counts_failures_like_the_http_action,
    protocol_mistakes_are_json_rpc_errors_and_never_a_500,
    initialize_and_server_discover_are_answered_without_a_session,
    the_endpoint_needs_the_service_key_or_a_persons_token,
);

const WRONG: &str = "wrong horse battery staple 77aa";

/// POSTs a JSON-RPC body to `/mcp` as a 2025-11-25 client does after `initialize`; `headers`
/// replace or add to those.
async fn post(app: &TestApp, body: &[u8], headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.client.post(app.url("/mcp")).body(body.to_vec());
    let defaults = [("content-type", "application/json"), ("accept", "application/json, text/event-stream"), ("mcp-protocol-version", "2025-11-25")];
    for (name, value) in defaults.iter().filter(|(n, _)| !headers.iter().any(|(h, _)| h == n)).chain(headers) {
        req = req.header(*name, *value);
    }
    keyed(app, req).send().await.expect("the server answers")
}

/// The service key when the server has one; a keyless server in dev mode takes no `Authorization`
/// (an empty bearer would be a person's token that names nobody).
fn keyed(app: &TestApp, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match &app.api_key {
        Some(key) => req.bearer_auth(key),
        None => req,
    }
}

/// A request's answer, read whole (the passphrase in none of it).
async fn rpc(app: &TestApp, method: &str, params: Value) -> Answer {
    let body = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})).unwrap();
    Answer::read(post(app, &body, &[]).await, PASSPHRASE).await
}

/// A `tools/call` result; it is always a JSON-RPC success (a failed action is `isError`).
async fn call(app: &TestApp, tool: &str, arguments: Value) -> Value {
    app.remember_secret(PASSPHRASE);
    let a = rpc(app, "tools/call", json!({"name": tool, "arguments": arguments})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["id"], 1);
    let result = a.body["result"].clone();
    assert!(result.is_object(), "a result: {}", a.body);
    result
}

/// The HTTP status the result carries, checked against `isError` and the text.
fn status(result: &Value) -> u64 {
    let status = result["_meta"]["gpt-user/httpStatus"].as_u64().unwrap_or_else(|| panic!("the HTTP status: {result}"));
    assert_eq!(result["isError"], !(200..300).contains(&status), "{result}");
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.starts_with(&format!("HTTP {status}")), "the text leads with the status: {text}");
    status
}

fn error_code(a: &Answer) -> i64 {
    a.body["error"]["code"].as_i64().unwrap_or_else(|| panic!("a JSON-RPC error ({}): {}", a.status, a.body))
}

async fn tools_list_lists_every_gpt_action_with_the_input_schema_of_openapi_json(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let a = rpc(&app, "tools/list", json!({})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let tools = a.body["result"]["tools"].as_array().expect("tools").clone();
    // The service key's tools are the actions under the document's default (service key)
    // security; a person's actions (their own `oauth2` security) are tools of a person's token.
    let mut operations = Vec::new();
    for item in doc["paths"].as_object().unwrap().values() {
        operations.extend(item.as_object().unwrap().values().filter(|op| op.get("security").is_none()).cloned());
    }
    assert_eq!(operations.len(), 3, "the three service actions: {operations:?}");
    assert_eq!(tools.len(), operations.len(), "one tool per GPT action: {tools:?}");
    for op in &operations {
        let tool = tools.iter().find(|t| t["name"] == op["operationId"]).unwrap_or_else(|| panic!("a tool for {}", op["operationId"]));
        assert_eq!(tool["inputSchema"], op["requestBody"]["content"]["application/json"]["schema"], "{}", tool["name"]);
        assert_eq!(tool["description"], op["description"]);
        for hint in ["readOnlyHint", "destructiveHint", "idempotentHint"] {
            assert!(tool["annotations"][hint].is_boolean(), "{} {hint}", tool["name"]);
        }
    }
}

async fn sign_up_through_mcp_is_the_http_action_with_its_email_and_its_throttle(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("mcp-signup");
    let args = json!({"email": to, "consent": true, "locale": "en", "passphrase": PASSPHRASE});
    let result = call(&app, "signUpInit", args.clone()).await;
    assert_eq!(status(&result), 201, "{result}");
    let body = &result["structuredContent"];
    let pin = body["pin"].as_str().expect("the PIN").to_owned();
    assert_eq!(body["status"], "pending");
    assert!(body["instructions"].as_str().is_some_and(|s| !s.is_empty()), "the action's instructions: {body}");
    let mail = app.next_mail(&to).await;
    assert!(mail.text.contains(&pin), "the verification email shows the PIN");

    // The same throttle as the HTTP action, whichever way the second call comes.
    let result = call(&app, "signUpInit", args.clone()).await;
    assert_eq!(status(&result), 429, "{result}");
    assert_eq!(result["structuredContent"]["code"], "TOO_MANY_REQUESTS");
    assert!(result["_meta"]["gpt-user/retryAfter"].as_u64().is_some_and(|s| s > 0), "{result}");
    assert_eq!(app.sign_up(&to, "en").await.status(), 429, "the HTTP action shares the throttle");

    // Bad input: the action's 422 as a tool error, not a protocol error.
    let result = call(&app, "signUpInit", json!({"email": to, "consent": false, "locale": "en", "passphrase": PASSPHRASE})).await;
    assert_eq!(status(&result), 422);
    assert_eq!(result["structuredContent"]["code"], "CONSENT_REQUIRED");
    let result = call(&app, "signUpInit", json!({"email": "not-an-address", "consent": true, "locale": "en", "passphrase": PASSPHRASE})).await;
    assert_eq!((status(&result), result["structuredContent"]["field"].clone()), (422, json!("email")));
}

async fn update_init_through_mcp_is_the_http_action_with_its_email_and_its_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("mcp-profile");
    let pin = app.active_user(&to).await;
    let result = call(&app, "updateInit", json!({"pin": pin})).await;
    assert_eq!(status(&result), 200, "{result}");
    assert!(result["structuredContent"]["instructions"].as_str().is_some_and(|s| !s.is_empty()));
    let mail = app.next_mail(&to).await;
    assert!(mail.text.contains(&format!("{}/profile#token=", app.base)), "a profile link: {}", mail.text);

    let result = call(&app, "updateInit", json!({"email": to})).await;
    assert_eq!((status(&result), result["structuredContent"]["code"].clone()), (429, json!("TOO_MANY_REQUESTS")));
    let http = app.profile_init(&json!({"email": to})).await;
    assert_eq!(http.status(), 429, "the HTTP action shares the throttle");

    let result = call(&app, "updateInit", json!({"email": email("mcp-nobody")})).await;
    assert_eq!((status(&result), result["structuredContent"]["code"].clone()), (404, json!("USER_NOT_FOUND")));
    let result = call(&app, "updateInit", json!({})).await;
    assert_eq!((status(&result), result["structuredContent"]["code"].clone()), (422, json!("INVALID_INPUT")));
}

async fn auth_check_through_mcp_answers_and_counts_failures_like_the_http_action(backend: Backend) {
    let app = spawn_app(backend).await;
    app.remember_secret(WRONG);
    let to = email("mcp-auth");
    let pin = app.active_user(&to).await;
    let http = app.auth_answer(&json!(pin), PASSPHRASE).await;
    let result = call(&app, "authCheck", json!({"pin": pin, "passphrase": PASSPHRASE})).await;
    assert_eq!(status(&result), 200);
    assert_eq!(result["structuredContent"], http.body, "the same answer as the HTTP action");
    assert!(!result.to_string().contains(PASSPHRASE));

    // Five free failures through MCP; the sixth attempt, over HTTP, waits: one count per PIN.
    for _ in 0..5 {
        let result = call(&app, "authCheck", json!({"pin": pin, "passphrase": WRONG})).await;
        assert_eq!((status(&result), result["structuredContent"]["code"].clone()), (401, json!("INVALID_CREDENTIALS")));
    }
    let http = app.auth_answer(&json!(pin), WRONG).await;
    http.assert_error(429, "TOO_MANY_ATTEMPTS");
    let result = call(&app, "authCheck", json!({"pin": pin, "passphrase": WRONG})).await;
    assert_eq!((status(&result), result["structuredContent"]["code"].clone()), (429, json!("TOO_MANY_ATTEMPTS")));
    assert!(result["_meta"]["gpt-user/retryAfter"].as_u64().is_some(), "{result}");
}

async fn protocol_mistakes_are_json_rpc_errors_and_never_a_500(backend: Backend) {
    let app = spawn_app(backend).await;
    let read = |r| Answer::read(r, PASSPHRASE);
    let a = read(post(&app, b"{\"jsonrpc\": \"2.0\", ", &[]).await).await;
    assert_eq!((a.status, error_code(&a), a.body["id"].clone()), (400, -32700, Value::Null));
    let a = read(post(&app, br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#, &[]).await).await;
    assert_eq!((a.status, error_code(&a)), (400, -32600), "a batch");
    for body in [&b"\"tools/list\""[..], b"null", br#"{"jsonrpc":"2.0","id":{},"method":"tools/list"}"#, br#"{"id":1,"method":"tools/list"}"#] {
        let a = read(post(&app, body, &[]).await).await;
        assert_eq!((a.status, error_code(&a)), (400, -32600), "{}", String::from_utf8_lossy(body));
    }
    let a = rpc(&app, "resources/read", json!({"uri": "file:///etc/passwd"})).await;
    assert_eq!((error_code(&a), a.body["id"].clone()), (-32601, json!(1)));
    let a = rpc(&app, "tools/call", json!({"name": "deleteEverything", "arguments": {}})).await;
    assert_eq!(error_code(&a), -32602, "an unknown tool");
    let a = rpc(&app, "tools/call", json!({"name": "authCheck", "arguments": ["123456", PASSPHRASE]})).await;
    assert_eq!(error_code(&a), -32602, "arguments that are not an object");
    let a = rpc(&app, "tools/call", json!({"arguments": {}})).await;
    assert_eq!(error_code(&a), -32602, "no tool name");

    let r = post(&app, br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, &[]).await;
    assert_eq!(r.status(), 202);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = post(&app, br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#, &[("mcp-protocol-version", "1999-01-01")]).await;
    assert_eq!(r.status(), 400, "an unsupported MCP-Protocol-Version");
    let r = keyed(&app, app.client.post(app.url("/mcp")).header("accept", "text/html").header("content-type", "application/json")).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 406, "a client that takes neither JSON nor an event stream");
    let r = keyed(&app, app.client.post(app.url("/mcp")).header("content-type", "text/plain")).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 415);
    let r = post(&app, br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#, &[("origin", "http://evil.example.com")]).await;
    assert_eq!(r.status(), 403, "an Origin other than the server's (DNS rebinding)");
    let r = app.client.get(app.url("/mcp")).header("accept", "text/event-stream").send().await.unwrap();
    assert_eq!(r.status(), 405, "no GET stream");
    assert!(r.headers()["allow"].to_str().unwrap().contains("POST"));
}

async fn initialize_and_server_discover_are_answered_without_a_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "api-test", "version": "1"}}});
    let r = keyed(&app, app.client.post(app.url("/mcp")))
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("mcp-session-id").is_none(), "stateless: no session");
    let a = Answer::read(r, PASSPHRASE).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["result"]["protocolVersion"], "2025-11-25");
    assert!(a.body["result"]["capabilities"]["tools"].is_object());
    assert_eq!(a.body["result"]["serverInfo"]["name"], "gpt-user");

    // 2026-07-28: `_meta` in the body, mirrored by the headers.
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    let discover = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": "d", "method": "server/discover", "params": {"_meta": meta}})).unwrap();
    let modern = [("mcp-protocol-version", "2026-07-28"), ("mcp-method", "server/discover")];
    let a = Answer::read(post(&app, &discover, &modern).await, PASSPHRASE).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let result = &a.body["result"];
    assert_eq!(result["supportedVersions"][0], "2026-07-28");
    assert!(result["supportedVersions"].as_array().unwrap().contains(&json!("2025-11-25")));
    assert!(result["capabilities"]["tools"].is_object());
    assert_eq!(result["resultType"], "complete");
    let list = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": meta}})).unwrap();
    let a = Answer::read(post(&app, &list, &modern).await, PASSPHRASE).await;
    assert_eq!((a.status, error_code(&a)), (400, -32020), "Mcp-Method says server/discover, the body tools/list");
}

async fn the_endpoint_needs_the_service_key_or_a_persons_token(backend: Backend) {
    let mut options = Options::new(backend);
    options.api_keys = Some("mcp-key-31f0c2aa");
    let app = spawn_with(options).await;
    let key = app.api_key.clone().expect("a server with a service key (GPT_USER_TEST_API_KEY): the in-process host always has one");
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_vec();
    let send = |auth: Option<String>| {
        let mut req = app.client.post(app.url("/mcp")).header("content-type", "application/json").header("accept", "application/json, text/event-stream").body(body.clone());
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        req.send()
    };
    // Without the key, `/mcp` is an OAuth protected resource (SPEC §2.5): the 401 says where a
    // person's token comes from; a bearer that is not the key is taken as a token, and refused.
    let metadata = format!("{}/.well-known/oauth-protected-resource/mcp", app.base);
    for (auth, code) in [(None, "AUTHORIZATION_REQUIRED"), (Some(format!("Basic {key}")), "AUTHORIZATION_REQUIRED"), (Some(format!("Bearer {key}x")), "INVALID_ACCESS_TOKEN")] {
        let r = send(auth.clone()).await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with(&format!("Bearer resource_metadata=\"{metadata}\"")), "{challenge}");
        assert_eq!(challenge.contains("error=\"invalid_token\""), code == "INVALID_ACCESS_TOKEN", "{challenge}");
        let a = Answer::read(r, PASSPHRASE).await;
        assert_eq!(a.body["code"], code, "{auth:?}");
    }
    let r = send(Some(format!("bearer {key}"))).await.unwrap();
    assert_eq!(r.status(), 200);
}
