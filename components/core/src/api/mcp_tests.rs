use serde_json::{Value, json};

use super::*;
use crate::api::tests::World;

const PASSPHRASE: &str = "correct horse battery staple";

/// A POST to `/mcp` with the headers a 2025-11-25 client sends, plus `extra`.
fn post(w: &World, body: &[u8], extra: &[(&str, &str)]) -> Response {
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("accept".to_owned(), "application/json, text/event-stream".to_owned()),
        ("mcp-protocol-version".to_owned(), "2025-11-25".to_owned()),
    ];
    for (name, value) in extra {
        headers.retain(|(n, _)| n != name);
        if !value.is_empty() {
            headers.push(((*name).to_owned(), (*value).to_owned()));
        }
    }
    w.send(&Request { method: "POST".into(), path: PATH.into(), headers, body: body.to_vec(), body_too_large: false, query: String::new() })
}

fn rpc(w: &World, method: &str, params: Value) -> Response {
    post(w, &serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params})).unwrap(), &[])
}

/// A 2026-07-28 request: `_meta` in the body and the headers that mirror it.
fn modern(w: &World, method: &str, mut params: Value, name: &str) -> Response {
    params["_meta"] = json!({META_VERSION: MODERN, "io.modelcontextprotocol/clientCapabilities": {}});
    let body = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": "m1", "method": method, "params": params})).unwrap();
    post(w, &body, &[("mcp-protocol-version", MODERN), ("mcp-method", method), ("mcp-name", name)])
}

fn error_code(r: &Response) -> i64 {
    r.json_body()["error"]["code"].as_i64().unwrap_or_else(|| panic!("a JSON-RPC error: {:?}", r.json_body()))
}

fn call(w: &World, tool: &str, arguments: Value) -> Value {
    let r = rpc(w, "tools/call", json!({"name": tool, "arguments": arguments}));
    assert_eq!(r.status, 200);
    r.json_body()["result"].clone()
}

#[test]
fn tools_are_exactly_the_gpt_actions_with_the_openapi_request_schemas_and_decided_effects() {
    let w = World::new();
    let r = rpc(&w, "tools/list", json!({}));
    assert_eq!(r.status, 200);
    let tools = r.json_body()["result"]["tools"].as_array().unwrap().clone();
    assert_eq!(tools.len(), GPT_ACTIONS.len());
    let doc = super::super::openapi::schema(&w.settings);
    for (tool, action) in tools.iter().zip(GPT_ACTIONS) {
        let operation = &doc["paths"][action.path][action.method.to_ascii_lowercase()];
        assert_eq!(tool["name"], operation["operationId"]);
        assert_eq!(tool["description"], operation["description"]);
        assert_eq!(tool["inputSchema"], operation["requestBody"]["content"]["application/json"]["schema"]);
        assert_eq!(tool["inputSchema"]["type"], "object");
        for hint in ["readOnlyHint", "destructiveHint", "idempotentHint"] {
            assert!(tool["annotations"][hint].is_boolean(), "{hint} of {}", tool["name"]);
        }
    }
    let destructive = |name: &str| tools.iter().find(|t| t["name"] == name).unwrap()["annotations"]["destructiveHint"].clone();
    assert_eq!(destructive("signUpInit"), true, "it replaces a pending registration");
    assert_eq!(destructive("authCheck"), false);
}

#[test]
fn a_tool_call_answers_what_the_http_action_answers_as_structured_content() {
    let w = World::new();
    let args = json!({"email": "ann@example.com", "consent": true, "locale": "en", "passphrase": PASSPHRASE});
    let result = call(&w, "signUpInit", args.clone());
    assert_eq!(result["isError"], false);
    assert_eq!(result["_meta"]["gpt-user/httpStatus"], 201);
    assert_eq!(result["structuredContent"]["status"], "pending");
    assert!(result["content"][0]["text"].as_str().unwrap().starts_with("HTTP 201"));
    assert_eq!(w.store.state.borrow().outbox.len(), 1, "the verification email is queued");

    // An error of the action is a tool error with the action's body, not a JSON-RPC error.
    let result = call(&w, "signUpInit", json!({"email": "not an address", "consent": true, "locale": "en", "passphrase": PASSPHRASE}));
    assert_eq!(result["isError"], true);
    assert_eq!(result["_meta"]["gpt-user/httpStatus"], 422);
    assert_eq!(result["structuredContent"]["code"], "INVALID_INPUT");
    assert_eq!(result["structuredContent"]["field"], "email");

    let result = call(&w, "authCheck", json!({"pin": "123456", "passphrase": "wrong horse battery staple"}));
    assert_eq!((result["isError"].clone(), result["structuredContent"]["code"].clone()), (json!(true), json!("INVALID_CREDENTIALS")));
    let result = call(&w, "updateInit", json!({"email": "nobody@example.com"}));
    assert_eq!(result["structuredContent"]["code"], "USER_NOT_FOUND");
    assert!(!result.to_string().contains(PASSPHRASE), "the passphrase is never echoed");
}

#[test]
fn a_throttled_action_gives_its_retry_after_in_the_result() {
    let w = World::new();
    let args = json!({"email": "bob@example.com", "consent": true, "locale": "en", "passphrase": PASSPHRASE});
    call(&w, "signUpInit", args.clone());
    let result = call(&w, "signUpInit", args);
    assert_eq!(result["_meta"]["gpt-user/httpStatus"], 429, "{result}");
    assert!(result["_meta"]["gpt-user/retryAfter"].as_u64().is_some_and(|s| s > 0));
    assert!(result["content"][0]["text"].as_str().unwrap().contains("Retry-After"));
}

#[test]
fn protocol_errors_are_json_rpc_errors_with_the_right_codes_and_statuses() {
    let w = World::new();
    let r = post(&w, b"{not json", &[]);
    assert_eq!((r.status, error_code(&r)), (400, -32700));
    assert_eq!(r.json_body()["id"], Value::Null);
    let r = post(&w, br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#, &[]);
    assert_eq!((r.status, error_code(&r)), (400, -32600), "no batches");
    let r = post(&w, b"42", &[]);
    assert_eq!((r.status, error_code(&r)), (400, -32600));
    let r = post(&w, br#"{"jsonrpc":"1.0","id":1,"method":"tools/list"}"#, &[]);
    assert_eq!((r.status, error_code(&r)), (400, -32600));
    let r = rpc(&w, "resources/list", json!({}));
    assert_eq!((r.status, error_code(&r), r.json_body()["id"].clone()), (200, -32601, json!(7)));
    let r = rpc(&w, "tools/call", json!({"name": "dropTables", "arguments": {}}));
    assert_eq!(error_code(&r), -32602, "an unknown tool");
    let r = rpc(&w, "tools/call", json!({"name": "authCheck", "arguments": "pin=1"}));
    assert_eq!(error_code(&r), -32602, "arguments that are not an object");
    let r = rpc(&w, "tools/list", json!([1]));
    assert_eq!(error_code(&r), -32602);
}

#[test]
fn notifications_and_responses_are_accepted_without_a_body() {
    let w = World::new();
    for body in [json!({"jsonrpc": "2.0", "method": "notifications/initialized"}), json!({"jsonrpc": "2.0", "id": 3, "result": {}})] {
        let r = post(&w, &serde_json::to_vec(&body).unwrap(), &[]);
        assert_eq!((r.status, r.body.len()), (202, 0));
    }
}

#[test]
fn initialize_is_answered_for_a_2025_client_without_a_session() {
    let w = World::new();
    let r = rpc(&w, "initialize", json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}));
    let result = &r.json_body()["result"];
    assert_eq!(result["protocolVersion"], "2025-11-25");
    assert!(result["capabilities"]["tools"].is_object());
    assert!(r.header("mcp-session-id").is_none());
    let r = rpc(&w, "initialize", json!({"protocolVersion": "2099-01-01"}));
    assert_eq!(r.json_body()["result"]["protocolVersion"], LEGACY[0], "our newest legacy version for an unknown one");
}

#[test]
fn a_modern_request_is_answered_only_when_its_headers_agree_with_its_body() {
    let w = World::new();
    let r = modern(&w, "server/discover", json!({}), "");
    let result = &r.json_body()["result"];
    assert_eq!(result["supportedVersions"][0], MODERN);
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "gpt-user");

    let r = modern(&w, "tools/call", json!({"name": "authCheck", "arguments": {"pin": "123456", "passphrase": "x"}}), "authCheck");
    assert_eq!(r.json_body()["result"]["resultType"], "complete");
    let r = modern(&w, "tools/call", json!({"name": "authCheck", "arguments": {}}), "signUpInit");
    assert_eq!((r.status, error_code(&r)), (400, -32020), "Mcp-Name disagrees");
    let body = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {META_VERSION: MODERN}}})).unwrap();
    let r = post(&w, &body, &[("mcp-protocol-version", MODERN)]);
    assert_eq!((r.status, error_code(&r)), (400, -32020), "no Mcp-Method");
    let r = post(&w, &body, &[("mcp-protocol-version", "2025-11-25"), ("mcp-method", "tools/list")]);
    assert_eq!((r.status, error_code(&r)), (400, -32020), "versions disagree");
    let body = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {META_VERSION: "2031-01-01"}}})).unwrap();
    let r = post(&w, &body, &[("mcp-protocol-version", "2031-01-01"), ("mcp-method", "tools/list")]);
    assert_eq!((r.status, error_code(&r)), (400, -32022));
    assert_eq!(r.json_body()["error"]["data"]["requested"], "2031-01-01");
    let r = modern(&w, "ping", json!({}), "");
    assert_eq!((r.status, error_code(&r)), (404, -32601), "ping and initialize are gone in 2026-07-28");
    let r = rpc(&w, "ping", json!({}));
    assert_eq!(r.json_body()["result"], json!({}));
    let r = post(&w, br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#, &[("mcp-protocol-version", "1999-01-01")]);
    assert_eq!((r.status, error_code(&r)), (400, -32022));
}

#[test]
fn accept_origin_and_the_key_are_checked() {
    let mut w = World::new();
    let list = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let r = post(&w, list, &[("accept", "text/html")]);
    assert_eq!(r.status, 406);
    let r = post(&w, list, &[("accept", "text/event-stream")]);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert!(String::from_utf8_lossy(&r.body).starts_with("event: message\ndata: {"));
    let r = post(&w, list, &[("origin", "https://evil.example")]);
    assert_eq!(r.status, 403);
    let r = post(&w, list, &[("origin", "http://evil.example"), ("host", "evil.example")]);
    assert_eq!(r.status, 403, "DNS rebinding: the Host is the attacker's too");
    let r = post(&w, list, &[("origin", &w.settings.base_url.clone())]);
    assert_eq!(r.status, 200);

    w.settings = Settings { dev: false, api_keys: vec!["k".into()], ..Settings::default() };
    // Without the key, `/mcp` is an OAuth protected resource (SPEC §2.5): the 401 says where a
    // person's token comes from, with or without a key configured.
    let r = post(&w, list, &[]);
    let challenge = format!("Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", scope=\"account\"", w.settings.base_url);
    assert_eq!((r.status, r.header("www-authenticate")), (401, Some(challenge.as_str())));
    assert_eq!(r.json_body()["code"], "AUTHORIZATION_REQUIRED");
    let r = post(&w, list, &[("authorization", "Bearer k")]);
    assert_eq!(r.status, 200);
    let r = post(&w, list, &[("authorization", "Bearer not-the-key")]);
    assert_eq!((r.status, r.json_body()["code"].as_str()), (401, Some("INVALID_ACCESS_TOKEN")));
    w.settings = Settings { dev: false, ..Settings::default() };
    assert_eq!(post(&w, list, &[]).json_body()["code"], "AUTHORIZATION_REQUIRED");
}
