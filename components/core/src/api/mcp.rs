//! `POST /mcp`: the GPT actions as MCP tools — a stateless JSON-RPC 2.0 server over streamable
//! HTTP (one JSON answer per POST, no session), for MCP 2026-07-28 clients and for clients that
//! still begin with `initialize` (2025-11-25 and earlier).
//!
//! ```text
//! POST /mcp ─ API key, JSON (respond's guard, as every GPT action) ─ Accept ─ Origin ─ parse
//!   ├─ not JSON ──────────────────────────▶ 400 -32700
//!   ├─ batch / not a request ─────────────▶ 400 -32600
//!   ├─ notification or response ──────────▶ 202, no body
//!   ├─ modern (_meta protocolVersion) ─ headers agree? ─ no ─▶ 400 -32020 / -32022
//!   └─ method ─┬─ server/discover, initialize (legacy), ping (legacy)
//!              ├─ tools/list ─ GPT_ACTIONS: operationId, description, request schema, effects
//!              ├─ tools/call ─ the action's own route through `respond` ─▶ {structuredContent, isError}
//!              └─ other ─────▶ -32601 (404 for a modern request, 200 for a legacy one)
//! ```
//! A tool is its [`Action`]: the input schema is the request schema of the action's `operation`
//! (what `/openapi.json` shows), and `tools/call` answers exactly what the HTTP action answers —
//! outcomes, emails, throttles — as a tool result, an error status as `isError: true`.

use serde_json::{Map, Value, json};

use super::openapi::request_schema;
use super::{Action, Ctx, Failure, GPT_ACTIONS, GPT_ROUTES, Request, Response, oauth, respond};
use crate::ports::User;
use crate::settings::Settings;

/// Where the endpoint is served.
pub const PATH: &str = "/mcp";
/// The stateless revision: version and capabilities in every request's `_meta`.
pub const MODERN: &str = "2026-07-28";
/// Revisions that begin with `initialize`, newest first. A request with neither `_meta` nor an
/// `MCP-Protocol-Version` header is 2025-03-26 (the rule of the 2025-06-18 transport).
pub const LEGACY: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const PERSON_INSTRUCTIONS: &str = "You act for the person who signed in to gpt-user when connecting this chat. whoAmI tells who that is (email, PIN, status, language). requestProfileLink emails them a link to change their passphrase, language or email address; tell them to open it. Never ask for their passphrase in the chat.";
const INSTRUCTIONS: &str = "Accounts a person creates and uses from this chat. signUpInit registers an email with a passphrase and returns a public PIN; the person must open the emailed link. updateInit emails a link to change the profile. authCheck proves a PIN and passphrase belong together. Never repeat a passphrase back. Each tool result carries the HTTP answer of the action; follow its instructions.";

/// JSON-RPC error codes: JSON-RPC 2.0's and MCP 2026-07-28's.
mod code {
    pub const PARSE: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const HEADER_MISMATCH: i64 = -32020;
    pub const UNSUPPORTED_VERSION: i64 = -32022;
}

/// The request's protocol era.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Era {
    Modern,
    Legacy,
}

/// A JSON-RPC error answer: HTTP status, id, code, message, data.
struct RpcError {
    status: u16,
    code: i64,
    message: String,
    data: Option<Value>,
}

fn rpc_error(status: u16, code: i64, message: impl Into<String>) -> RpcError {
    RpcError { status, code, message: message.into(), data: None }
}

/// Who calls: a chat with the service key (the GPT actions as tools), or a chat acting for the
/// person its OAuth access token names (SPEC §2.5: that person's tools only).
pub enum Caller {
    Service,
    Person(User),
}

/// The request carries a configured service key, or needs none: dev mode with no key configured
/// and no `Authorization` at all (a token, if sent, is taken as a token).
pub fn service_key(ctx: &Ctx<'_>, req: &Request) -> bool {
    let (keys, authorization) = (&ctx.settings.api_keys, req.header("authorization"));
    if keys.is_empty() { ctx.settings.dev && authorization.is_none() } else { super::api_key_ok(keys, authorization) }
}

fn caller(ctx: &Ctx<'_>, req: &Request) -> Result<Caller, super::ApiError> {
    if service_key(ctx, req) {
        return Ok(Caller::Service);
    }
    let bearer = req.header("authorization").and_then(super::bearer).unwrap_or("");
    match oauth::resource::user_of(ctx, bearer, &oauth::mcp_resource(ctx))? {
        Some(user) => Ok(Caller::Person(user)),
        None => Err(oauth::resource::required(ctx, true, oauth::RESOURCE_METADATA_PATH)),
    }
}

pub fn handle(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<Response, Failure> {
    let caller = caller(ctx, req).map_err(|e| (e, locale.to_owned()))?;
    let sse = match accepts(req.header("accept")) {
        Some(sse) => sse,
        None => return Ok(error_answer(false, &Value::Null, rpc_error(406, code::INVALID_REQUEST, "Not Acceptable: accept application/json or text/event-stream"))),
    };
    // DNS rebinding: a page whose name resolves to this server sends its own Host, so only the
    // configured origin is trusted here (the browser API also trusts `http://{Host}`).
    if req.header("origin").is_some_and(|o| o.trim_end_matches('/') != ctx.settings.base_url) {
        return Ok(error_answer(sse, &Value::Null, rpc_error(403, code::INVALID_REQUEST, "Forbidden: the Origin is not this server")));
    }
    let message: Value = match serde_json::from_slice(&req.body) {
        Ok(message) => message,
        Err(_) => return Ok(error_answer(sse, &Value::Null, rpc_error(400, code::PARSE, "Parse error"))),
    };
    let Value::Object(message) = message else {
        let what = if message.is_array() { "batches are not supported" } else { "a message is a JSON object" };
        return Ok(error_answer(sse, &Value::Null, rpc_error(400, code::INVALID_REQUEST, format!("Invalid Request: {what}"))));
    };
    let id = message.get("id").cloned();
    let answer = match (message.get("method"), &id) {
        // A notification, or the client's answer to nothing we asked: accepted, nothing to say.
        (Some(Value::String(_)), None) if message.get("jsonrpc") == Some(&json!("2.0")) => return Ok(accepted()),
        (None, Some(_)) if message.contains_key("result") || message.contains_key("error") => return Ok(accepted()),
        _ => request(ctx, req, &message, &caller),
    };
    let id = id.filter(|id| id.is_string() || id.is_number()).unwrap_or(Value::Null);
    Ok(match answer {
        Ok(result) => answer_json(sse, 200, &json!({"jsonrpc": "2.0", "id": id, "result": result})),
        Err(e) => error_answer(sse, &id, e),
    })
}

/// A request: its shape, its era's headers, then its method.
fn request(ctx: &Ctx<'_>, req: &Request, message: &Map<String, Value>, caller: &Caller) -> Result<Value, RpcError> {
    let invalid = |what: &str| rpc_error(400, code::INVALID_REQUEST, format!("Invalid Request: {what}"));
    if message.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(invalid("jsonrpc must be \"2.0\""));
    }
    if !message.get("id").is_some_and(|id| id.is_string() || id.as_i64().is_some()) {
        return Err(invalid("id must be a string or an integer"));
    }
    let Some(Value::String(method)) = message.get("method") else {
        return Err(invalid("method must be a string"));
    };
    let params = match message.get("params") {
        None => Map::new(),
        Some(Value::Object(params)) => params.clone(),
        Some(_) => return Err(rpc_error(200, code::INVALID_PARAMS, "Invalid params: params must be an object")),
    };
    let era = era(req, method, &params)?;
    let not_found = || {
        let status = if era == Era::Modern { 404 } else { 200 };
        rpc_error(status, code::METHOD_NOT_FOUND, format!("Method not found: {method}"))
    };
    let result = match (method.as_str(), era) {
        ("server/discover", _) => discover(caller),
        ("initialize", Era::Legacy) => initialize(&params, caller),
        ("ping", Era::Legacy) => json!({}),
        ("tools/list", _) => tools_list(ctx.settings, era, caller),
        ("tools/call", _) => match caller {
            Caller::Service => call(ctx, req, &params)?,
            Caller::Person(user) => call_as_person(ctx, user, &params)?,
        },
        _ => return Err(not_found()),
    };
    Ok(shaped(result, era))
}

/// Modern requests declare their version in `_meta` and mirror it, the method and the tool name
/// in headers, which must agree with the body (a gateway may act on the headers alone).
/// `server/discover` is answered to any caller: it is how a client learns the versions.
fn era(req: &Request, method: &str, params: &Map<String, Value>) -> Result<Era, RpcError> {
    let header = req.header("mcp-protocol-version").map(str::trim);
    let declared = params.get("_meta").and_then(|m| m.get(META_VERSION));
    let mismatch = |what: &str| rpc_error(400, code::HEADER_MISMATCH, format!("Header mismatch: {what}"));
    let Some(declared) = declared else {
        return match header {
            _ if method == "server/discover" || method == "initialize" => Ok(Era::Legacy),
            None => Ok(Era::Legacy),
            Some(v) if LEGACY.contains(&v) => Ok(Era::Legacy),
            Some(MODERN) => Err(mismatch("MCP-Protocol-Version is 2026-07-28 but _meta declares no protocolVersion")),
            Some(v) => Err(unsupported(v)),
        };
    };
    let Some(declared) = declared.as_str() else {
        return Err(rpc_error(200, code::INVALID_PARAMS, "Invalid params: _meta protocolVersion must be a string"));
    };
    if declared != MODERN {
        return Err(unsupported(declared));
    }
    if header != Some(declared) {
        return Err(mismatch("MCP-Protocol-Version must equal _meta protocolVersion"));
    }
    if req.header("mcp-method").map(str::trim) != Some(method) {
        return Err(mismatch("Mcp-Method must equal the method"));
    }
    if method == "tools/call" && req.header("mcp-name").map(str::trim) != params.get("name").and_then(Value::as_str) {
        return Err(mismatch("Mcp-Name must equal params.name"));
    }
    Ok(Era::Modern)
}

fn unsupported(requested: &str) -> RpcError {
    let supported: Vec<&str> = std::iter::once(MODERN).chain(LEGACY.iter().copied()).collect();
    let mut e = rpc_error(400, code::UNSUPPORTED_VERSION, "Unsupported protocol version");
    e.data = Some(json!({"supported": supported, "requested": requested}));
    e
}

fn server_info() -> Value {
    json!({"name": "gpt-user", "version": env!("CARGO_PKG_VERSION")})
}

fn capabilities() -> Value {
    json!({"tools": {"listChanged": false}})
}

/// `server/discover` (2026-07-28). `cacheScope: private`: the answer is behind the service key.
fn instructions(caller: &Caller) -> &'static str {
    match caller {
        Caller::Service => INSTRUCTIONS,
        Caller::Person(_) => PERSON_INSTRUCTIONS,
    }
}

fn discover(caller: &Caller) -> Value {
    let supported: Vec<&str> = std::iter::once(MODERN).chain(LEGACY.iter().copied()).collect();
    json!({
        "supportedVersions": supported,
        "capabilities": capabilities(),
        "instructions": instructions(caller),
        "ttlMs": 300_000,
        "cacheScope": "private",
        "_meta": {"io.modelcontextprotocol/serverInfo": server_info()}
    })
}

/// `initialize` of a 2025-era client: its version if we speak it, else our newest legacy one.
/// No session: every later request stands on its own.
fn initialize(params: &Map<String, Value>, caller: &Caller) -> Value {
    let asked = params.get("protocolVersion").and_then(Value::as_str).unwrap_or("");
    let version = LEGACY.iter().find(|v| **v == asked).copied().unwrap_or(LEGACY[0]);
    json!({"protocolVersion": version, "capabilities": capabilities(), "serverInfo": server_info(), "instructions": instructions(caller)})
}

/// Modern results say they are complete (no input is asked of the client).
fn shaped(mut result: Value, era: Era) -> Value {
    if era == Era::Modern {
        result["resultType"] = json!("complete");
    }
    result
}

/// A GPT action as an MCP tool.
pub fn tool(action: &Action, settings: &Settings) -> Value {
    let operation = (action.operation)(settings);
    let effects = action.effects;
    json!({
        "name": operation["operationId"],
        "title": operation["summary"],
        "description": operation["description"],
        "inputSchema": request_schema(&operation),
        "annotations": {
            "title": operation["summary"],
            "readOnlyHint": effects.read_only,
            "destructiveHint": effects.destructive,
            "idempotentHint": effects.idempotent,
        }
    })
}


fn tools_list(settings: &Settings, era: Era, caller: &Caller) -> Value {
    let tools: Vec<Value> = match caller {
        Caller::Service => GPT_ACTIONS.iter().map(|a| tool(a, settings)).collect(),
        Caller::Person(_) => person_tools(settings),
    };
    let mut result = json!({"tools": tools});
    if era == Era::Modern {
        result["ttlMs"] = json!(300_000);
        result["cacheScope"] = json!("private");
    }
    result
}

/// Runs the action's route as an HTTP request with the arguments as its body and the caller's
/// key and languages, and returns its answer as a tool result.
fn call(ctx: &Ctx<'_>, req: &Request, params: &Map<String, Value>) -> Result<Value, RpcError> {
    let invalid = |what: String| rpc_error(200, code::INVALID_PARAMS, format!("Invalid params: {what}"));
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return Err(invalid("name must be a tool name".into()));
    };
    let action = GPT_ACTIONS
        .iter()
        .find(|a| (a.operation)(ctx.settings)["operationId"] == name)
        .ok_or_else(|| invalid(format!("unknown tool {name:?}")))?;
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(a @ Value::Object(_)) => a.clone(),
        Some(_) => return Err(invalid("arguments must be an object".into())),
    };
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    // The request's id and client address too: the action's audit events name this request.
    for name in ["authorization", "accept-language", "host", super::REQUEST_ID, super::CLIENT_ADDR] {
        if let Some(value) = req.header(name) {
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    let mut inner = Request {
        method: action.method.to_owned(),
        path: action.path.to_owned(),
        headers,
        body: serde_json::to_vec(&arguments).unwrap_or_default(),
        body_too_large: false, query: String::new(),
    };
    let answer = respond(GPT_ROUTES, ctx, &mut inner, |_| {});
    Ok(tool_result(&answer))
}

/// The tools of a chat acting for a signed-in person: the person's GPT actions, none of which
/// takes an argument or a secret.
fn person_tools(settings: &Settings) -> Vec<Value> {
    oauth::actions::PERSON_ACTIONS
        .iter()
        .map(|action| {
            let mut tool = tool(action, settings);
            tool["inputSchema"] = json!({"type": "object", "properties": {}, "additionalProperties": false});
            tool
        })
        .collect()
}

fn person_tool_name(action: &Action, settings: &Settings) -> String {
    (action.operation)(settings)["operationId"].as_str().unwrap_or_default().to_owned()
}

/// A person's tool: `whoAmI` reads their account, `requestProfileLink` is Update_Init for it.
fn call_as_person(ctx: &Ctx<'_>, user: &User, params: &Map<String, Value>) -> Result<Value, RpcError> {
    let invalid = |what: String| rpc_error(200, code::INVALID_PARAMS, format!("Invalid params: {what}"));
    match params.get("arguments") {
        None | Some(Value::Null) => {}
        Some(Value::Object(a)) if a.is_empty() => {}
        Some(_) => return Err(invalid("this tool takes no arguments".into())),
    }
    use oauth::actions::{REQUEST_PROFILE_LINK, WHO_AM_I};
    let answer = match params.get("name").and_then(Value::as_str) {
        Some(name) if name == person_tool_name(&WHO_AM_I, ctx.settings) => Response::json(200, &oauth::actions::who(user)),
        Some(name) if name == person_tool_name(&REQUEST_PROFILE_LINK, ctx.settings) => super::profile_init::for_person(ctx, user),
        Some(name) => return Err(invalid(format!("unknown tool {name:?}"))),
        None => return Err(invalid("name must be a tool name".into())),
    };
    Ok(tool_result(&answer))
}

/// The action's JSON answer as structured content, with a text that leads with the status.
fn tool_result(answer: &Response) -> Value {
    let body = answer.json_body();
    let retry = answer.header("retry-after").map(|s| format!(", Retry-After: {s} s")).unwrap_or_default();
    let text = format!("HTTP {}{retry}: {body}", answer.status);
    let mut meta = json!({"gpt-user/httpStatus": answer.status});
    if let Some(seconds) = answer.header("retry-after").and_then(|s| s.parse::<u64>().ok()) {
        meta["gpt-user/retryAfter"] = json!(seconds);
    }
    json!({
        "content": [{"type": "text", "text": text}],
        "structuredContent": body,
        "isError": !(200..300).contains(&answer.status),
        "_meta": meta
    })
}

fn accepted() -> Response {
    Response { status: 202, headers: vec![("cache-control".into(), "no-store".into())], body: Vec::new() }
}

fn error_answer(sse: bool, id: &Value, e: RpcError) -> Response {
    let mut error = json!({"code": e.code, "message": e.message});
    if let Some(data) = e.data {
        error["data"] = data;
    }
    answer_json(sse, e.status, &json!({"jsonrpc": "2.0", "id": id, "error": error}))
}

/// One JSON-RPC message, as JSON or — to a client that accepts only an event stream — as one
/// server-sent event.
fn answer_json(sse: bool, status: u16, message: &Value) -> Response {
    let mut response = Response::json(status, message);
    if sse && status != 202 {
        let mut body = b"event: message\ndata: ".to_vec();
        body.extend_from_slice(&response.body);
        body.extend_from_slice(b"\n\n");
        response.body = body;
        response.headers.retain(|(n, _)| n != "content-type");
        response.headers.push(("content-type".into(), "text/event-stream".into()));
    }
    response
}

/// `Some(false)`: answer JSON; `Some(true)`: the client takes only an event stream; `None`: it
/// takes neither (406). Clients must list both; a bare `*/*` or `application/*` is taken as JSON.
fn accepts(accept: Option<&str>) -> Option<bool> {
    let types: Vec<String> = accept?
        .split(',')
        .map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .collect();
    let has = |t: &str| types.iter().any(|x| x == t);
    if has("application/json") || has("application/*") || has("*/*") {
        Some(false)
    } else if has("text/event-stream") {
        Some(true)
    } else {
        None
    }
}

#[cfg(test)]
#[path = "mcp_tests.rs"]
mod tests;
