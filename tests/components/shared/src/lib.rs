//! A WASIp3 component for the host's instance-reuse tests (issue 21): every answer is `<what> <n>`,
//! `n` counting the requests this instance has taken (1 on a fresh instance).
//!
//! - `/shared/count`: answers at once;
//! - `/shared/wait/<ms>`: waits `ms` on the clock (an async host call: the instance takes other
//!   requests meanwhile), then answers;
//! - `/shared/panic`: traps; `/shared/loop`: never returns (only the epoch can end it).

#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};

wit_bindgen::generate!({
    world: "wasi:http/service@0.3.0",
    path: "../../../wit",
    generate_all,
});

use exports::wasi::http0_3_0::handler::Guest;
use wasi::http0_3_0::types::{ErrorCode, Fields, Request, Response};

/// Requests this instance has taken.
static TAKEN: AtomicU64 = AtomicU64::new(0);

struct Shared;

impl Guest for Shared {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let n = TAKEN.fetch_add(1, Ordering::SeqCst) + 1;
        let path = request.get_path_with_query().unwrap_or_default();
        let text = match path.as_str() {
            "/shared/panic" => panic!("this component traps on purpose"),
            "/shared/loop" => {
                let mut i: u64 = 0;
                loop {
                    i = std::hint::black_box(i.wrapping_add(1));
                }
            }
            p if p.starts_with("/shared/wait/") => {
                let ms: u64 = p["/shared/wait/".len()..].parse().unwrap_or(1_000);
                wasi::clocks0_3_0::monotonic_clock::wait_for(ms * 1_000_000).await;
                format!("waited {n}")
            }
            _ => format!("count {n}"),
        };
        let (mut body, contents) = wit_stream::new::<u8>();
        let (trailers, trailers_read) = wit_future::new::<Result<Option<Fields>, ErrorCode>>(|| Ok(None));
        let (response, _sent) = Response::new(Fields::new(), Some(contents), trailers_read);
        wit_bindgen::spawn_local(async move {
            body.write_all(text.into_bytes()).await;
            drop(body);
            let _ = trailers.write(Ok(None)).await;
        });
        Ok(response)
    }
}

export!(Shared);
