//! Answers every request `200 ok <n>`, `n` counting the requests this instance has served: on a
//! runtime that reuses instances `n` grows, on one that does not it is always 1. See Cargo.toml.

use std::sync::atomic::{AtomicU64, Ordering};

/// Requests this instance has served.
static SERVED: AtomicU64 = AtomicU64::new(0);

fn body() -> Vec<u8> {
    format!("ok {}\n", SERVED.fetch_add(1, Ordering::Relaxed) + 1).into_bytes()
}

#[cfg(not(feature = "p2"))]
mod p3 {
    wit_bindgen::generate!({ world: "probe", path: "wit", generate_all });

    use exports::wasi::http::handler::Guest;
    use wasi::http::types::{ErrorCode, Fields, Request, Response};

    struct Probe;

    impl Guest for Probe {
        async fn handle(_request: Request) -> Result<Response, ErrorCode> {
            let headers = Fields::new();
            let _ = headers.append("content-type", b"text/plain");
            let (mut body, contents) = wit_stream::new::<u8>();
            let (trailers, trailers_read) = wit_future::new::<Result<Option<Fields>, ErrorCode>>(|| Ok(None));
            let (response, _sent) = Response::new(headers, Some(contents), trailers_read);
            // The body is written after `handle` returned the response, as a flow's would be.
            wit_bindgen::spawn_local(async move {
                body.write_all(super::body()).await;
                drop(body);
                let _ = trailers.write(Ok(None)).await;
            });
            Ok(response)
        }
    }

    export!(Probe);
}

#[cfg(feature = "p2")]
mod p2 {
    use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

    struct Probe;

    impl wasip2::exports::http::incoming_handler::Guest for Probe {
        fn handle(_request: IncomingRequest, out: ResponseOutparam) {
            let headers = Fields::new();
            let _ = headers.append("content-type", b"text/plain");
            let response = OutgoingResponse::new(headers);
            let Ok(body) = response.body() else { return };
            ResponseOutparam::set(out, Ok(response));
            if let Ok(stream) = body.write() {
                let _ = stream.blocking_write_and_flush(&super::body());
            }
            let _ = OutgoingBody::finish(body, None);
        }
    }

    wasip2::http::proxy::export!(Probe);
}
