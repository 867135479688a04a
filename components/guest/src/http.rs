//! `wasi:http` request/response to and from the core's plain types.

use gpt_user_core::api::{LINGER_BYTES, LINGER_MS, MAX_BODY, Request, Response};
use wasip2::clocks::monotonic_clock;
use wasip2::http::types::{Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};
use wasip2::io::poll;
use wasip2::io::streams::{InputStream, StreamError};

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
    let without_fragment = path_with_query.split('#').next().unwrap_or("/");
    let (path, query) = without_fragment.split_once('?').unwrap_or((without_fragment, ""));
    let (path, query) = (path.to_owned(), query.to_owned());
    let headers = request
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), String::from_utf8_lossy(&value).into_owned()))
        .collect();
    Request { method, path, query, headers, body: Vec::new(), body_too_large: false }
}

/// The request's body stream, opened on first use: read (up to `MAX_BODY`) only if the head
/// passes, and after the answer discarded for a bounded time ([`RequestBody::linger`]).
pub struct RequestBody<'r> {
    request: &'r IncomingRequest,
    // The stream is a child of the body: declared first, dropped first.
    opened: Option<(InputStream, IncomingBody)>,
}

impl<'r> RequestBody<'r> {
    pub fn new(request: &'r IncomingRequest) -> Self {
        Self { request, opened: None }
    }

    fn stream(&mut self) -> Option<&InputStream> {
        if self.opened.is_none() {
            let body = self.request.consume().ok()?;
            let stream = body.stream().ok()?;
            self.opened = Some((stream, body));
        }
        self.opened.as_ref().map(|(stream, _)| stream)
    }

    /// Reads the body into `req`, at most `MAX_BODY` bytes; one byte more marks it too large
    /// (and the rest is left for [`RequestBody::linger`]).
    pub fn read_into(&mut self, req: &mut Request) {
        let Some(stream) = self.stream() else { return };
        let mut body = Vec::new();
        while body.len() <= MAX_BODY {
            match stream.blocking_read((MAX_BODY + 1 - body.len()) as u64) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed | StreamError::LastOperationFailed(_)) => break,
            }
        }
        req.body_too_large = body.len() > MAX_BODY;
        body.truncate(MAX_BODY);
        req.body = body;
    }

    /// After the answer: takes in and discards what the client still sends, for at most
    /// `LINGER_MS` and `LINGER_BYTES`, so that it reads our answer instead of a reset. Waits
    /// with a timeout, never on the client alone.
    pub fn linger(mut self) {
        let Some(stream) = self.stream() else { return };
        let deadline = monotonic_clock::subscribe_duration(LINGER_MS * 1_000_000);
        let mut seen = 0u64;
        while seen < LINGER_BYTES {
            let readable = stream.subscribe();
            if poll::poll(&[&readable, &deadline]).contains(&1) {
                break;
            }
            match stream.read(64 * 1024) {
                Ok(chunk) => seen += chunk.len() as u64,
                Err(StreamError::Closed | StreamError::LastOperationFailed(_)) => break,
            }
        }
    }
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

/// `GET url` through `wasi:http/outgoing-handler`: the body of a `200`, at most `max_bytes`, all
/// within `timeout_ms` (the runtime applies its address rules: our host's `outbound` module,
/// Spin's `allowed_outbound_hosts` and `block_networks`). No redirect is followed: a `3xx` is a
/// failure like any status but 200.
pub fn get(url: &str, accept: &str, max_bytes: usize, timeout_ms: u32) -> Result<Vec<u8>, gpt_user_core::ports::FetchError> {
    use gpt_user_core::ports::FetchError::{Failed, Refused};
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{ErrorCode, OutgoingRequest, RequestOptions, Scheme};
    let parsed = url.split_once("://").map(|(scheme, rest)| {
        let (authority, path) = rest.find(['/', '?']).map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
        (scheme, authority, if path.starts_with('?') { format!("/{path}") } else { path.to_owned() })
    });
    let Some((scheme, authority, path)) = parsed else { return Err(Refused("not a URL".into())) };
    let scheme = match scheme {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        _ => return Err(Refused("neither https nor http".into())),
    };
    let budget_ns = u64::from(timeout_ms) * 1_000_000;
    let started = monotonic_clock::now();
    let remaining = || budget_ns.saturating_sub(monotonic_clock::now().saturating_sub(started)).max(1);
    let headers = Fields::new();
    headers.append("accept", accept.as_bytes()).map_err(|_| Failed("header".into()))?;
    let request = OutgoingRequest::new(headers);
    let set = request.set_scheme(Some(&scheme)).is_ok() && request.set_authority(Some(authority)).is_ok() && request.set_path_with_query(Some(&path)).is_ok();
    if !set {
        return Err(Refused("not a URL".into()));
    }
    let options = RequestOptions::new();
    let _ = (options.set_connect_timeout(Some(budget_ns)), options.set_first_byte_timeout(Some(budget_ns)), options.set_between_bytes_timeout(Some(budget_ns)));
    let body = request.body().map_err(|_| Failed("body".into()))?;
    let refused = |e: ErrorCode| match e {
        ErrorCode::DestinationIpProhibited | ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpUnroutable => Refused(format!("{e:?}")),
        e => Failed(format!("{e:?}")),
    };
    let pending = outgoing_handler::handle(request, Some(options)).map_err(refused)?;
    OutgoingBody::finish(body, None).map_err(|e| Failed(format!("{e:?}")))?;
    // Pollables are children of what they watch: each is dropped before its parent.
    let response = {
        let (ready, deadline) = (pending.subscribe(), monotonic_clock::subscribe_duration(remaining()));
        poll::poll(&[&ready, &deadline]);
        pending.get()
    };
    let response = match response {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(refused(e)),
        Some(Err(())) => return Err(Failed("no response".into())),
        None => return Err(Failed("timed out".into())),
    };
    if response.status() != 200 {
        return Err(Failed(format!("status {}", response.status())));
    }
    let incoming = response.consume().map_err(|_| Failed("body".into()))?;
    let stream = incoming.stream().map_err(|_| Failed("body".into()))?;
    let mut out = Vec::new();
    loop {
        {
            let (readable, deadline) = (stream.subscribe(), monotonic_clock::subscribe_duration(remaining()));
            poll::poll(&[&readable, &deadline]);
        }
        if monotonic_clock::now().saturating_sub(started) >= budget_ns {
            return Err(Failed("timed out".into()));
        }
        match stream.read((max_bytes + 1 - out.len()) as u64) {
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(out),
            Err(StreamError::LastOperationFailed(_)) => return Err(Failed("read".into())),
        }
        if out.len() > max_bytes {
            return Err(Failed("too large".into()));
        }
    }
}
