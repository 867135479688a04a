//! HTTP-shaped entry points: a plain [`Request`] in, a plain [`Response`] out.
//! Components translate `wasi:http` to these; tests call them directly.

mod error;
pub mod json;
mod openapi;
mod pages;
mod signup_init;
mod signup_verify;

pub use error::ApiError;

use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::ports::{Env, L10n, Store};
use crate::settings::Settings;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY: usize = 64 * 1024;

/// What a flow sees of an HTTP request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body was cut at [`MAX_BODY`].
    pub body_too_large: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: &Value) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type".into(), "application/json; charset=utf-8".into()),
                ("cache-control".into(), "no-store".into()),
            ],
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    /// The JSON body, for tests.
    pub fn json_body(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// The ports and settings one request runs with.
pub struct Ctx<'a> {
    pub store: &'a dyn Store,
    pub l10n: &'a dyn L10n,
    pub env: &'a dyn Env,
    pub settings: &'a Settings,
}

/// Who may call a route.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Audience {
    /// A GPT action: needs a service API key when keys are configured.
    Gpt,
    /// The browser API: JSON, same origin.
    Browser,
}

/// Routes of the sign-up component.
pub fn handle_signup(ctx: &Ctx<'_>, req: &Request) -> Response {
    let locale = ctx.l10n.negotiate(req.header("accept-language").unwrap_or(""));
    let result = match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/api/signup/init") => guard(ctx, req, Audience::Gpt, &locale).and_then(|()| signup_init::handle(ctx, req, &locale)),
        ("POST", "/api/signup/verify") => {
            guard(ctx, req, Audience::Browser, &locale).and_then(|()| signup_verify::handle(ctx, req, &locale))
        }
        ("GET", "/signup/verify") => Ok(pages::verify(ctx, &locale)),
        ("GET", "/privacy") => Ok(pages::privacy(ctx, &locale)),
        ("GET", "/openapi.json") => Ok(openapi::document(ctx.settings)),
        ("GET", "/healthz") => Ok(Response::json(200, &serde_json::json!({"status": "ok"}))),
        (_, "/api/signup/init" | "/api/signup/verify" | "/signup/verify" | "/privacy" | "/openapi.json" | "/healthz") => {
            Err((ApiError::MethodNotAllowed, locale.clone()))
        }
        _ => Err((ApiError::NotFound, locale.clone())),
    };
    let mut response = result.unwrap_or_else(|(e, locale)| e.into_response(ctx, &locale));
    response.headers.push(("referrer-policy".into(), "no-referrer".into()));
    response.headers.push(("x-content-type-options".into(), "nosniff".into()));
    response
}

/// An error with the locale to word it in.
pub type Failure = (ApiError, String);

/// Checks shared by every POST: body size, JSON content type, then the audience's rule.
fn guard(ctx: &Ctx<'_>, req: &Request, audience: Audience, locale: &str) -> Result<(), Failure> {
    let fail = |e| Err((e, locale.to_owned()));
    if audience == Audience::Gpt && !api_key_ok(&ctx.settings.api_keys, req.header("authorization")) {
        return fail(ApiError::ApiKeyRequired);
    }
    if audience == Audience::Browser && !same_origin(ctx.settings, req) {
        return fail(ApiError::ForbiddenOrigin);
    }
    if req.body_too_large {
        return fail(ApiError::PayloadTooLarge);
    }
    let is_json = req
        .header("content-type")
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return fail(ApiError::UnsupportedMediaType);
    }
    Ok(())
}

/// `Authorization: Bearer <key>` against every configured key, in constant time per key.
fn api_key_ok(keys: &[String], authorization: Option<&str>) -> bool {
    if keys.is_empty() {
        return true;
    }
    let Some(given) = authorization.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim) else {
        return false;
    };
    keys.iter().fold(false, |ok, key| ok | bool::from(key.as_bytes().ct_eq(given.as_bytes())))
}

/// A browser call is accepted without `Origin` (not a cross-site browser request) or when
/// `Origin` is the configured base URL or the host the request was sent to.
fn same_origin(settings: &Settings, req: &Request) -> bool {
    let Some(origin) = req.header("origin") else {
        return true;
    };
    let origin = origin.trim_end_matches('/');
    origin == settings.base_url
        || req.header("host").is_some_and(|host| origin == format!("http://{host}") || origin == format!("https://{host}"))
}

#[cfg(test)]
mod tests;
