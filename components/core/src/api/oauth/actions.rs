//! The person's GPT actions (SPEC §2.5): what a chat signed in with OAuth may do for the person its
//! access token names — `whoAmI` (`GET /api/me`) and `requestProfileLink`
//! (`POST /api/me/profile-link`). The same two are the MCP tools of a token (`/mcp`). None takes a
//! secret; a token is accepted only if it was issued for [`api_resource`] (these actions) or, for
//! the tools, for `/mcp`.

use serde_json::{Map, Value, json};

use super::resource::{required, user_of};
use crate::api::openapi::{error_response, object_response};
use crate::api::{Action, ApiError, Ctx, Effects, Failure, Request, Response};
use crate::ports::User;
use crate::settings::Settings;

/// The resource (RFC 8707) of the person's GPT actions: `base_url` + `/api`.
pub fn api_resource(ctx: &Ctx<'_>) -> String {
    format!("{}/api", ctx.settings.base_url)
}

pub const WHO_AM_I: Action = Action {
    method: "GET",
    path: "/api/me",
    operation: who_am_i_operation,
    effects: Effects { read_only: true, destructive: false, idempotent: true },
};

/// Emails a link, throttled (Update_Init's rules): not read-only, not idempotent.
pub const REQUEST_PROFILE_LINK: Action = Action {
    method: "POST",
    path: "/api/me/profile-link",
    operation: profile_link_operation,
    effects: Effects { read_only: false, destructive: false, idempotent: false },
};

/// The person's actions, in `/openapi.json` under the `oauth2` scheme, and as MCP tools.
pub const PERSON_ACTIONS: &[Action] = &[WHO_AM_I, REQUEST_PROFILE_LINK];

/// What `whoAmI` answers: the account, no secret.
pub fn who(user: &User) -> Value {
    json!({
        "email": user.email,
        "pin": user.pin,
        "status": user.status.as_str(),
        "locale": user.locale,
        "created_at": crate::api::time::rfc3339(user.created_at),
    })
}

/// The person the request's access token names, for these actions.
fn person(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<User, Failure> {
    let bearer = req.header("authorization").and_then(crate::api::bearer).unwrap_or("");
    match user_of(ctx, bearer, &api_resource(ctx)) {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err((required(ctx, true, super::API_RESOURCE_METADATA_PATH), locale.to_owned())),
        Err(e) => Err((ApiError::from(e), locale.to_owned())),
    }
}

pub fn who_am_i(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<Response, Failure> {
    let user = person(ctx, req, locale)?;
    Ok(Response::json(200, &who(&user)))
}

pub fn request_profile_link(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<Response, Failure> {
    let user = person(ctx, req, locale)?;
    // It takes no input; a body, if sent, must say so (`{}`), not be ignored.
    if !req.body.is_empty() {
        crate::api::json::object(&req.body, &[]).map_err(|e| (e, locale.to_owned()))?;
    }
    Ok(crate::api::profile_init::for_person(ctx, &user))
}

/// The answers of both besides their own.
fn person_errors() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("401".into(), error_response("No access token, or one that is unknown, expired, revoked or for another resource: sign in again (WWW-Authenticate names where)."));
    m.insert("429".into(), error_response("Too many calls; retry after Retry-After seconds."));
    m.insert("503".into(), error_response("Temporarily unavailable or busy; retry later."));
    m
}

fn who_am_i_operation(_: &Settings) -> Value {
    let mut responses = person_errors();
    responses.insert("200".into(), object_response("The signed-in person's account.", &["email", "pin", "status", "locale", "created_at"]));
    json!({
        "operationId": "whoAmI",
        "summary": "Who am I",
        "description": "The account of the person who signed in when connecting this chat: email, PIN, status (active), language and when it was created.",
        "x-openai-isConsequential": false,
        "security": [{"oauth2": [super::SCOPE]}],
        "responses": responses
    })
}

fn profile_link_operation(_: &Settings) -> Value {
    let mut responses = person_errors();
    responses.insert("200".into(), object_response("The link is on its way to the person's own address.", &["message", "instructions"]));
    responses.insert("400".into(), error_response("The body is not a JSON object."));
    responses.insert("415".into(), error_response("The body is not sent as application/json."));
    responses.insert("422".into(), error_response("The body names a field; the action takes none."));
    json!({
        "operationId": "requestProfileLink",
        "summary": "Email me a profile link",
        "description": "Emails the signed-in person a link (valid 1 hour) to change their passphrase, language or email address. At most one such email a minute and 10 an hour. Tell them to open it; never ask for their passphrase.",
        "x-openai-isConsequential": false,
        "security": [{"oauth2": [super::SCOPE]}],
        "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {}}}}},
        "responses": responses
    })
}
