//! The few answers the host gives itself, outside any component: no route, a full instance pool,
//! a request that did not arrive in time, a failed component. Same JSON shape as the components'
//! errors (`{code, message}`), in English: the host has no locale of the request to go by.

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
