//! `wasi:http` request/response to and from the core's plain types: the incoming request and the
//! answer, and the outbound `GET`, on `wasi:http@0.3.0` (async streams).

use std::future::Future;

use gpt_user_core::api::{LINGER_BYTES, LINGER_MS, MAX_BODY, Request, Response};
use gpt_user_core::ports::FetchError;
use wit_bindgen::StreamResult;

use crate::wasi::http0_3_0::types::{self as p3, ErrorCode, Method};
use crate::{wit_future, wit_stream};

/// The request head: method, path and headers; the body is read later, only if the head passes.
pub fn read_head(request: &p3::Request) -> Request {
    let method = match request.get_method() {
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
    let path_with_query = request.get_path_with_query().unwrap_or_else(|| "/".to_owned());
    let without_fragment = path_with_query.split('#').next().unwrap_or("/");
    let (path, query) = without_fragment.split_once('?').unwrap_or((without_fragment, ""));
    let (path, query) = (path.to_owned(), query.to_owned());
    let headers = request
        .get_headers()
        .copy_all()
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), String::from_utf8_lossy(&value).into_owned()))
        .collect();
    Request { method, path, query, headers, body: Vec::new(), body_too_large: false }
}

/// The request's body stream, opened on first use: read (up to `MAX_BODY`) only if the head
/// passes, and after the answer discarded for a bounded time ([`RequestBody::linger`]).
pub struct RequestBody {
    request: Option<p3::Request>,
    /// `None` once the client's end closed: a stream may not be read after that.
    stream: Option<wit_bindgen::StreamReader<u8>>,
}

impl RequestBody {
    pub fn new(request: p3::Request) -> Self {
        Self { request: Some(request), stream: None }
    }

    /// Reads up to `max` bytes into `into`; `false` once the client's end is closed.
    async fn read(&mut self, into: &mut Vec<u8>, max: usize) -> bool {
        if let Some(request) = self.request.take() {
            // Nothing to report back about the request: the writer is dropped, the runtime reads `Ok`.
            let (_, handled) = wit_future::new::<Result<(), ErrorCode>>(|| Ok(()));
            let (stream, _trailers) = p3::Request::consume_body(request, handled);
            self.stream = Some(stream);
        }
        let Some(stream) = self.stream.as_mut() else { return false };
        let (result, chunk) = stream.read(Vec::with_capacity(max)).await;
        into.extend_from_slice(&chunk);
        if matches!(result, StreamResult::Complete(_)) {
            return true;
        }
        self.stream = None;
        false
    }

    /// Reads the body into `req`, at most `MAX_BODY` bytes; one byte more marks it too large
    /// (and the rest is left for [`RequestBody::linger`]).
    pub async fn read_into(&mut self, req: &mut Request) {
        let mut body = Vec::new();
        while body.len() <= MAX_BODY {
            let room = MAX_BODY + 1 - body.len();
            if !self.read(&mut body, room).await {
                break;
            }
        }
        req.body_too_large = body.len() > MAX_BODY;
        body.truncate(MAX_BODY);
        req.body = body;
    }

    /// After the answer: takes in and discards what the client still sends, for at most
    /// `LINGER_MS` and `LINGER_BYTES`, so that it reads our answer instead of a reset. Waits
    /// with a timeout, never on the client alone.
    pub async fn linger(mut self) {
        if self.request.is_none() && self.stream.is_none() {
            // Read to its end already (the usual case): nothing to wait for, no timer to start.
            return;
        }
        let drain = async {
            let mut seen = 0;
            let mut chunk = Vec::new();
            while seen < LINGER_BYTES && self.read(&mut chunk, 64 * 1024).await {
                seen += chunk.len() as u64;
                chunk.clear();
            }
        };
        gpt_user_core::deadline::within(crate::wasi::clocks0_3_0::monotonic_clock::wait_for(LINGER_MS * 1_000_000), drain).await;
    }
}

/// The core's answer as a `wasi:http` response, the future that writes its body (it resolves once
/// the runtime has taken the whole answer), and the runtime's report that the answer was sent.
/// The runtime may send the answer's end only after the request's body was consumed (see
/// [`RequestBody::linger`]), and only while the instance is not busy: work the client must not
/// wait for goes after the report.
pub fn response(response: Response) -> (p3::Response, impl Future<Output = ()>, impl Future<Output = ()>) {
    let headers = p3::Fields::new();
    for (name, value) in &response.headers {
        // Our own header names and values are valid; a failure here would be a bug, not input.
        let _ = headers.append(name, value.as_bytes());
    }
    let _ = headers.append("content-length", response.body.len().to_string().as_bytes());
    let (mut contents, contents_read) = wit_stream::new::<u8>();
    let (trailers, trailers_read) = wit_future::new::<Result<Option<p3::Fields>, ErrorCode>>(|| Ok(None));
    let (outgoing, sent) = p3::Response::new(headers, Some(contents_read), trailers_read);
    let _ = outgoing.set_status_code(response.status);
    let body = response.body;
    let written = async move {
        if !body.is_empty() {
            contents.write_all(body).await;
        }
        drop(contents);
        let _ = trailers.write(Ok(None)).await;
    };
    (outgoing, written, async move {
        let _ = sent.await;
    })
}

/// `GET url` through `wasi:http/client@0.3.0`: the body of a `200`, at most `max_bytes`, all
/// within `timeout_ms` (the runtime applies its address rules: our host's `outbound` module,
/// Spin's `allowed_outbound_hosts` and `block_networks`). No redirect is followed: a `3xx` is a
/// failure like any status but 200. Async, under one deadline: while the server is slow, the
/// instance serves its other requests, and at the deadline the call is dropped (cancelled).
pub async fn get(url: &str, accept: &str, max_bytes: usize, timeout_ms: u32) -> Result<Vec<u8>, FetchError> {
    let deadline = crate::wasi::clocks0_3_0::monotonic_clock::wait_for(u64::from(timeout_ms) * 1_000_000);
    gpt_user_core::deadline::within(deadline, fetch(url, accept, max_bytes)).await.unwrap_or_else(|| Err(FetchError::Failed("timed out".into())))
}

async fn fetch(url: &str, accept: &str, max_bytes: usize) -> Result<Vec<u8>, FetchError> {
    use FetchError::{Failed, Refused};
    let parsed = url.split_once("://").map(|(scheme, rest)| {
        let (authority, path) = rest.find(['/', '?']).map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
        (scheme, authority, if path.starts_with('?') { format!("/{path}") } else { path.to_owned() })
    });
    let Some((scheme, authority, path)) = parsed else { return Err(Refused("not a URL".into())) };
    let scheme = match scheme {
        "https" => p3::Scheme::Https,
        "http" => p3::Scheme::Http,
        _ => return Err(Refused("neither https nor http".into())),
    };
    let headers = p3::Fields::new();
    headers.append("accept", accept.as_bytes()).map_err(|_| Failed("header".into()))?;
    // No body, no trailers: the writer is dropped, the runtime reads `Ok(None)`.
    let (_, trailers) = wit_future::new::<Result<Option<p3::Fields>, ErrorCode>>(|| Ok(None));
    let (request, _) = p3::Request::new(headers, None, trailers, None);
    let set = request.set_scheme(Some(&scheme)).is_ok() && request.set_authority(Some(authority)).is_ok() && request.set_path_with_query(Some(&path)).is_ok();
    if !set {
        return Err(Refused("not a URL".into()));
    }
    let response = crate::wasi::http0_3_0::client::send(request).await.map_err(|e| match e {
        ErrorCode::DestinationIpProhibited | ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpUnroutable => Refused(format!("{e:?}")),
        e => Failed(format!("{e:?}")),
    })?;
    if response.get_status_code() != 200 {
        return Err(Failed(format!("status {}", response.get_status_code())));
    }
    let (_, handled) = wit_future::new::<Result<(), ErrorCode>>(|| Ok(()));
    let (mut stream, _trailers) = p3::Response::consume_body(response, handled);
    let mut out = Vec::new();
    loop {
        let (result, chunk) = stream.read(Vec::with_capacity(max_bytes + 1 - out.len())).await;
        out.extend_from_slice(&chunk);
        if out.len() > max_bytes {
            return Err(Failed("too large".into()));
        }
        if !matches!(result, StreamResult::Complete(_)) {
            return Ok(out);
        }
    }
}
