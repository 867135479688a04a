//! `wasi:http` request/response to and from the core's plain types.

use gpt_user_core::api::{MAX_BODY, Request, Response};
use wasip2::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};
use wasip2::io::streams::StreamError;

/// A body past `MAX_BODY` that declared no length (chunked) is drained up to this much, so the
/// client is likely to see our 413 rather than a reset; a declared length over `MAX_BODY` is
/// refused from the head alone, before any byte is read.
const DRAIN_LIMIT: usize = 1024 * 1024;

/// The request head: method, path and headers; the body is read later, only if the head passes.
pub fn read_head(request: &IncomingRequest) -> Request {
    let method = match request.method() {
        Method::Get => "GET".to_owned(),
        Method::Post => "POST".to_owned(),
        Method::Put => "PUT".to_owned(),
        Method::Delete => "DELETE".to_owned(),
        Method::Head => "HEAD".to_owned(),
        Method::Options => "OPTIONS".to_owned(),
        Method::Patch => "PATCH".to_owned(),
        Method::Connect => "CONNECT".to_owned(),
        Method::Trace => "TRACE".to_owned(),
        Method::Other(m) => m,
    };
    let path_with_query = request.path_with_query().unwrap_or_else(|| "/".to_owned());
    let path = path_with_query.split(['?', '#']).next().unwrap_or("/").to_owned();
    let headers = request
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), String::from_utf8_lossy(&value).into_owned()))
        .collect();
    Request { method, path, headers, body: Vec::new(), body_too_large: false }
}

/// Reads the body into `req`, keeping at most `MAX_BODY` bytes.
pub fn read_body(request: &IncomingRequest, req: &mut Request) {
    (req.body, req.body_too_large) = body(request);
}

fn body(request: &IncomingRequest) -> (Vec<u8>, bool) {
    let Ok(incoming) = request.consume() else {
        return (Vec::new(), false);
    };
    let Ok(stream) = incoming.stream() else {
        return (Vec::new(), false);
    };
    let mut body = Vec::new();
    let mut seen = 0usize;
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                seen += chunk.len();
                if body.len() < MAX_BODY {
                    let room = MAX_BODY - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                if seen > DRAIN_LIMIT {
                    break;
                }
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(_)) => break,
        }
    }
    (body, seen > MAX_BODY)
}

pub fn write_response(out: ResponseOutparam, response: Response) {
    let headers = Fields::new();
    for (name, value) in &response.headers {
        // Our own header names and values are valid; a failure here would be a bug, not input.
        let _ = headers.append(name, value.as_bytes());
    }
    headers.append("content-length", response.body.len().to_string().as_bytes()).ok();
    let outgoing = OutgoingResponse::new(headers);
    outgoing.set_status_code(response.status).ok();
    let Ok(body) = outgoing.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(outgoing));
    if let Ok(stream) = body.write() {
        for chunk in response.body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
    OutgoingBody::finish(body, None).ok();
}
