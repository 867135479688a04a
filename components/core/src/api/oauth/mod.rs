//! gpt-user as an OAuth 2.1 authorization server for its own accounts (SPEC §2.5), and `/mcp` as
//! the resource its access tokens are for.
//!
//! ```text
//! chat ── GET /mcp (no token) ─▶ 401 WWW-Authenticate: Bearer resource_metadata=…
//!      ── GET /.well-known/oauth-protected-resource/mcp, …/oauth-authorization-server (RFC 9728, 8414)
//!      ── POST /oauth/register (RFC 7591) ─▶ client_id, or a client_id that is the https URL of the
//!         client's metadata document (fetched by the runtime's outbound HTTP, cached: [`client`])
//!      ── browser: GET /oauth/authorize?… ─ client + redirect checked first (else an error page, no redirect)
//!            page: POST /api/oauth/sign-in (email + passphrase, Auth_Check's count) ─▶ ticket (10 min)
//!                  POST /api/oauth/consent (ticket, allow) ─▶ redirect ?code&state&iss (code 60 s)
//!      ── POST /oauth/token: code + PKCE verifier ─▶ access (1 h) + refresh (30 d, rotated)
//!                             refresh ─▶ new pair; a spent code or refresh token used again revokes its grant
//!      ── POST /oauth/revoke (RFC 7009)
//! ```
//! Codes and tokens are 256-bit random, stored as SHA-256 only, bound to one grant (user, client,
//! resource); a grant and all its tokens go together. The errors of the token, registration and
//! revocation endpoints are RFC 6749 JSON (`error`, `error_description`), not §4's.

pub mod actions;
pub mod authorize;
pub mod client;
pub mod register;
pub mod resource;
pub mod token;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Ctx, Failure, Request, Response};
use crate::ports::OauthClient;

/// The one scope: act as the signed-in person with the user tools (SPEC §2.5).
pub const SCOPE: &str = "account";
/// Access tokens live one hour, refresh tokens 30 days, codes 60 s, sign-in tickets 10 min.
pub const ACCESS_TTL_MS: i64 = 3600 * 1000;
pub const REFRESH_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
pub const CODE_TTL_MS: i64 = 60 * 1000;
pub const TICKET_TTL_MS: i64 = 10 * 60 * 1000;

/// The well-known documents (RFC 8414, RFC 9728).
pub const AS_METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
pub const RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource/mcp";
/// RFC 9728's document of the person's GPT actions ([`actions::api_resource`]).
pub const API_RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource/api";

/// The resource `/mcp` is, for tokens (RFC 8707): `base_url` + `/mcp`.
pub fn mcp_resource(ctx: &Ctx<'_>) -> String {
    format!("{}{}", ctx.settings.base_url, super::mcp::PATH)
}

/// `GET /.well-known/oauth-authorization-server`.
pub fn metadata(ctx: &Ctx<'_>, _: &Request, _: &str) -> Result<Response, Failure> {
    let base = &ctx.settings.base_url;
    Ok(document(&json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "registration_endpoint": format!("{base}/oauth/register"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "scopes_supported": [SCOPE],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
        "service_documentation": format!("{base}/privacy"),
        "ui_locales_supported": crate::domain::SUPPORTED_LOCALES,
    })))
}

/// `GET /.well-known/oauth-protected-resource/mcp`.
pub fn resource_metadata(ctx: &Ctx<'_>, _: &Request, _: &str) -> Result<Response, Failure> {
    Ok(resource_document(ctx, mcp_resource(ctx)))
}

/// `GET /.well-known/oauth-protected-resource/api`.
pub fn api_resource_metadata(ctx: &Ctx<'_>, _: &Request, _: &str) -> Result<Response, Failure> {
    Ok(resource_document(ctx, actions::api_resource(ctx)))
}

fn resource_document(ctx: &Ctx<'_>, resource: String) -> Response {
    document(&json!({
        "resource": resource,
        "authorization_servers": [ctx.settings.base_url],
        "scopes_supported": [SCOPE],
        "bearer_methods_supported": ["header"],
        "resource_name": "gpt-user",
    }))
}

/// A public JSON document clients may cache for a while.
fn document(value: &Value) -> Response {
    let mut response = Response::json(200, value);
    response.headers.retain(|(name, _)| name != "cache-control");
    response.headers.push(("cache-control".into(), "public, max-age=300".into()));
    response.headers.push(("access-control-allow-origin".into(), "*".into()));
    response
}

/// An RFC 6749 error answer (`error`, `error_description`), never cached.
pub fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    let mut response = Response::json(status, &json!({"error": error, "error_description": description}));
    response.headers.push(("pragma".into(), "no-cache".into()));
    if status == 401 {
        response.headers.push(("www-authenticate".into(), "Basic realm=\"gpt-user\"".into()));
    }
    response
}

/// SHA-256 (hex) of a secret: what is stored of codes, tokens, tickets and client secrets.
pub fn sha256_hex(s: &str) -> String {
    crate::domain::token_hex(&Sha256::digest(s.as_bytes()))
}

/// PKCE S256 (RFC 7636): base64url(SHA-256(verifier)), for a verifier of 43..=128 characters of
/// `[A-Za-z0-9-._~]`; `None` for anything else.
pub fn s256(verifier: &str) -> Option<String> {
    use base64::Engine as _;
    let ok = (43..=128).contains(&verifier.len()) && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    ok.then(|| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())))
}

/// What a redirect URI may be (SPEC §2.5, RFC 8252, OAuth 2.1 §2.3): `https` with a host, or
/// `http` on a loopback name or address (any port); never with user info or a fragment.
pub fn redirect_uri_allowed(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else { return false };
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() || uri.contains('#') {
        return false;
    }
    match url.scheme() {
        "https" => url.host_str().is_some_and(|h| !h.is_empty()),
        "http" => is_loopback(&url),
        _ => false,
    }
}

fn is_loopback(url: &url::Url) -> bool {
    matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
}

/// Whether `given` is one of the client's redirect URIs: exactly, except that a loopback `http`
/// URI may name any port (RFC 8252 §7.3: native apps listen on an ephemeral port).
pub fn redirect_registered(client: &OauthClient, given: &str) -> bool {
    if !redirect_uri_allowed(given) {
        return false;
    }
    client.redirect_uris.iter().any(|registered| {
        registered == given
            || match (url::Url::parse(registered), url::Url::parse(given)) {
                (Ok(mut r), Ok(mut g)) if r.scheme() == "http" && is_loopback(&r) && g.scheme() == "http" && is_loopback(&g) => {
                    let _ = (r.set_port(None), g.set_port(None));
                    r == g
                }
                _ => false,
            }
    })
}

/// The `client_id` a request to an OAuth endpoint (`/oauth/…`, `/api/oauth/…`) names, wherever it
/// carries it: the query (`GET /oauth/authorize`), a form or HTTP Basic (`/oauth/token`,
/// `/oauth/revoke`), the page's JSON (`/api/oauth/…`). Its metadata document, if it is one, is
/// fetched before the handler runs ([`client::fetch_document`]).
pub fn client_named(req: &Request) -> Option<String> {
    if !(req.path.starts_with("/oauth/") || req.path.starts_with("/api/oauth/")) {
        return None;
    }
    let named = |form: Form| form.get("client_id").ok().flatten().map(str::to_owned);
    named(Form::query(&req.query))
        .or_else(|| Form::parse(req).and_then(named))
        .or_else(|| serde_json::from_slice::<Value>(&req.body).ok()?.get("client_id")?.as_str().map(str::to_owned))
        .or_else(|| req.header("authorization").and_then(token::basic_credentials).map(|(id, _)| id))
}

/// A form body (`application/x-www-form-urlencoded`) as pairs; `None` if the content type is
/// another. A parameter given twice is an error of the caller's (RFC 6749 §3.1), found by [`Form::get`].
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(req: &Request) -> Option<Self> {
        let form = req
            .header("content-type")
            .and_then(|ct| ct.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        form.then(|| Self(url::form_urlencoded::parse(&req.body).into_owned().collect()))
    }

    pub fn query(query: &str) -> Self {
        Self(url::form_urlencoded::parse(query.as_bytes()).into_owned().collect())
    }

    /// The value of `name`: `Ok(None)` if absent or empty, `Err(name)` if given more than once.
    pub fn get(&self, name: &'static str) -> Result<Option<&str>, &'static str> {
        let mut values = self.0.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(name);
        }
        Ok(first.filter(|v| !v.is_empty()))
    }
}

#[cfg(test)]
mod tests;
