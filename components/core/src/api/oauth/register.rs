//! `POST /oauth/register`: dynamic client registration (RFC 7591) of public clients — what an MCP
//! client does on its first connection. Open to anyone, so it is capped: at most
//! [`MAX_REGISTRATIONS_PER_HOUR`] new clients an hour, counted in the database.

use serde_json::{Value, json};

use super::{oauth_error, redirect_uri_allowed};
use crate::api::{Ctx, Failure, Request, Response};
use crate::ports::{self, ClientKind, Op, OauthClient, RegistrationCap, StoreError};

/// Self-registered clients per hour, all callers together.
pub const MAX_REGISTRATIONS_PER_HOUR: u32 = 1000;
/// Redirect URIs one client may register, and a client name's length.
const MAX_REDIRECT_URIS: usize = 10;
const MAX_NAME: usize = 200;
const MAX_URI: usize = 2000;

pub fn handle(ctx: &Ctx<'_>, req: &Request, _: &str) -> Result<Response, Failure> {
    let metadata = match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(map)) => map,
        _ => return Ok(oauth_error(400, "invalid_client_metadata", "the body must be a JSON object")),
    };
    let uris: Vec<String> = match metadata.get("redirect_uris") {
        Some(Value::Array(uris)) if !uris.is_empty() && uris.len() <= MAX_REDIRECT_URIS => {
            match uris.iter().map(|u| u.as_str().filter(|u| u.len() <= MAX_URI).map(str::to_owned)).collect::<Option<Vec<_>>>() {
                Some(uris) => uris,
                None => return Ok(oauth_error(400, "invalid_redirect_uri", "redirect_uris must be strings")),
            }
        }
        _ => return Ok(oauth_error(400, "invalid_redirect_uri", "redirect_uris must list 1 to 10 URIs")),
    };
    if !uris.iter().all(|u| redirect_uri_allowed(u)) {
        return Ok(oauth_error(400, "invalid_redirect_uri", "a redirect URI must be https, or http on 127.0.0.1, localhost or [::1], without user info or fragment"));
    }
    let method = metadata.get("token_endpoint_auth_method").and_then(Value::as_str).unwrap_or("none");
    if method != "none" {
        return Ok(oauth_error(400, "invalid_client_metadata", "only public clients register themselves: token_endpoint_auth_method must be none"));
    }
    let listed = |field: &str, allowed: &[&str]| match metadata.get(field) {
        None => true,
        Some(Value::Array(items)) => items.iter().all(|i| i.as_str().is_some_and(|i| allowed.contains(&i))),
        Some(_) => false,
    };
    if !listed("grant_types", &["authorization_code", "refresh_token"]) || !listed("response_types", &["code"]) {
        return Ok(oauth_error(400, "invalid_client_metadata", "grant_types may be authorization_code and refresh_token, response_types code"));
    }
    let name = match metadata.get("client_name") {
        None => "MCP client".to_owned(),
        Some(Value::String(name)) if !name.trim().is_empty() && name.chars().count() <= MAX_NAME && !name.chars().any(char::is_control) => {
            name.trim().to_owned()
        }
        Some(_) => return Ok(oauth_error(400, "invalid_client_metadata", "client_name must be 1 to 200 characters of text")),
    };
    let now = ctx.env.now();
    let client = OauthClient {
        id: crate::domain::token_hex(&ports::random::<16>(ctx.env)),
        kind: ClientKind::Registered,
        name,
        redirect_uris: uris,
        secret_hash: None,
        created_at: now,
        expires_at: None,
    };
    let cap = RegistrationCap { now, window: 3600 * 1000, max: MAX_REGISTRATIONS_PER_HOUR };
    match ctx.store.apply(vec![Op::CheckRegistrationCap(cap), Op::InsertOauthClient(client.clone())]) {
        Ok(()) => {}
        Err(StoreError::Throttled(secs)) => {
            let mut response = oauth_error(429, "temporarily_unavailable", "too many clients registered; try again later");
            response.headers.push(("retry-after".into(), secs.to_string()));
            return Ok(response);
        }
        Err(_) => return Ok(oauth_error(503, "temporarily_unavailable", "the store is unavailable; try again")),
    }
    let mut response = Response::json(201, &json!({
        "client_id": client.id,
        "client_id_issued_at": now / 1000,
        "client_name": client.name,
        "redirect_uris": client.redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": super::SCOPE,
    }));
    response.headers.push(("pragma".into(), "no-cache".into()));
    Ok(response)
}
