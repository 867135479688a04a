//! The few answers the host gives itself, outside any component: no route, the dev mailbox. Same JSON shape as the components'
//! errors (`{code, message}`), in English: the host has no locale of the request to go by.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::runtime::Body;

pub fn not_found() -> hyper::Response<Body> {
    json(404, r#"{"code":"NOT_FOUND","message":"There is nothing at this address."}"#)
}

/// `405` with the `Allow` header the status requires.
pub fn method_not_allowed(allow: &'static str) -> hyper::Response<Body> {
    let mut resp = json(405, r#"{"code":"METHOD_NOT_ALLOWED","message":"This address does not accept this method."}"#);
    resp.headers_mut().insert("allow", hyper::header::HeaderValue::from_static(allow));
    resp
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
