//! The few answers the host gives itself, outside any component: no route, a full instance pool,
//! a request that did not arrive in time, a failed component, a client over its share. Same JSON
//! shape as the components' errors (`{code, message}`), in English — except `429 RATE_LIMITED`,
//! which answers GPT clients from the same texts as the components' answers, in the language of
//! `Accept-Language`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::runtime::Body;

/// Seconds a client is asked to wait after `503 BUSY`: instances free up within a request's
/// time, and most requests take milliseconds.
const BUSY_RETRY_AFTER_S: u32 = 1;

pub fn not_found() -> hyper::Response<Body> {
    json(404, r#"{"code":"NOT_FOUND","message":"There is nothing at this address."}"#)
}

/// `405` with the `Allow` header the status requires.
pub fn method_not_allowed(allow: &'static str) -> hyper::Response<Body> {
    let mut resp = json(405, r#"{"code":"METHOD_NOT_ALLOWED","message":"This address does not accept this method."}"#);
    resp.headers_mut().insert("allow", hyper::header::HeaderValue::from_static(allow));
    resp
}

/// Every instance is in use: try again shortly.
pub fn busy() -> hyper::Response<Body> {
    let mut resp = json(503, r#"{"code":"BUSY","message":"The server is busy. Please try again in a moment."}"#);
    resp.headers_mut().insert("retry-after", BUSY_RETRY_AFTER_S.into());
    resp
}

/// A GPT client over its rate (`crate::limits::RateLimiter`): `429` + `Retry-After`, localized.
pub fn rate_limited(texts: &gpt_user_l10n::Texts, accept_language: &str, retry_after: u32) -> hyper::Response<Body> {
    let locale = texts.negotiate(accept_language);
    let seconds = retry_after.to_string();
    let body = serde_json::json!({
        "code": "RATE_LIMITED",
        "message": texts.format(locale, "error-rate-limited", &[("seconds", &seconds)]),
        "instructions": texts.format(locale, "instructions-rate-limited", &[("seconds", &seconds)]),
    });
    let mut resp = with_body(429, "application/json; charset=utf-8", body.to_string().into_bytes());
    resp.headers_mut().insert("retry-after", retry_after.into());
    resp
}

/// Dev mode and a `Host` that is not this machine's (DNS rebinding): `421 Misdirected Request`,
/// the status for a request this server will not answer for the name it was sent to.
pub fn misdirected() -> hyper::Response<Body> {
    json(
        421,
        r#"{"code":"HOST_NOT_ALLOWED","message":"In dev mode this server answers only requests addressed to localhost, 127.0.0.1 or [::1] (or to GPT_USER_BASE_URL's host): open it by one of those names."}"#,
    )
}

/// Written to a connection over its address's cap before it is closed, unread: the raw bytes,
/// since no HTTP connection is served on it.
pub fn too_many_connections() -> Vec<u8> {
    let body = r#"{"code":"TOO_MANY_CONNECTIONS","message":"Too many open connections from your address. Please try again in a moment."}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json; charset=utf-8\r\nretry-after: {BUSY_RETRY_AFTER_S}\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The client did not send its request body within the request deadline. The connection is
/// closed: whatever it still sends is not read.
pub fn request_timeout() -> hyper::Response<Body> {
    let mut resp = json(408, r#"{"code":"REQUEST_TIMEOUT","message":"The request did not arrive in time."}"#);
    resp.headers_mut().insert("connection", hyper::header::HeaderValue::from_static("close"));
    resp
}

/// The request body could not be read (broken chunked encoding, connection reset).
pub fn bad_request() -> hyper::Response<Body> {
    let mut resp = json(400, r#"{"code":"BAD_REQUEST","message":"The request body could not be read."}"#);
    resp.headers_mut().insert("connection", hyper::header::HeaderValue::from_static("close"));
    resp
}

/// A generic 500: no detail leaves the host.
pub fn internal_error() -> hyper::Response<Body> {
    json(500, r#"{"code":"INTERNAL","message":"Something went wrong on our side. Please try again later."}"#)
}

pub fn with_body(status: u16, content_type: &str, body: Vec<u8>) -> hyper::Response<Body> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed_unsync())
        .expect("valid response")
}

fn json(status: u16, body: &'static str) -> hyper::Response<Body> {
    with_body(status, "application/json; charset=utf-8", body.as_bytes().to_vec())
}
