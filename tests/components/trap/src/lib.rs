//! A component the host must survive: `/trap/panic` traps, `/trap/loop` never returns,
//! `/trap/memory` allocates without bound, `/trap/sleep/<ms>` waits in a host call (which the
//! epoch deadline cannot interrupt), `/trap/echo` reads the whole body and answers its length.
//! Anything else answers 200.

use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};
use wasip2::io::streams::StreamError;

struct Trap;

impl wasip2::exports::http::incoming_handler::Guest for Trap {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        match request.path_with_query().as_deref() {
            Some("/trap/panic") => panic!("this component traps on purpose"),
            Some("/trap/loop") => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Some("/trap/memory") => {
                let mut hog: Vec<Vec<u8>> = Vec::new();
                loop {
                    hog.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hog);
                }
            }
            Some(path) if path.starts_with("/trap/sleep/") => {
                let ms: u64 = path["/trap/sleep/".len()..].parse().unwrap_or(5_000);
                wasip2::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
                answer(out, b"slept");
            }
            Some("/trap/echo") => {
                let body = request.consume().unwrap();
                let stream = body.stream().unwrap();
                let mut len = 0usize;
                loop {
                    match stream.blocking_read(64 * 1024) {
                        Ok(chunk) => len += chunk.len(),
                        Err(StreamError::Closed) => break,
                        Err(e) => panic!("reading the body failed: {e:?}"),
                    }
                }
                answer(out, len.to_string().as_bytes());
            }
            _ => answer(out, b"ok"),
        }
    }
}

fn answer(out: ResponseOutparam, text: &[u8]) {
    let response = OutgoingResponse::new(Fields::new());
    let body = response.body().unwrap();
    ResponseOutparam::set(out, Ok(response));
    let stream = body.write().unwrap();
    stream.blocking_write_and_flush(text).unwrap();
    drop(stream);
    OutgoingBody::finish(body, None).unwrap();
}

wasip2::http::proxy::export!(Trap);
