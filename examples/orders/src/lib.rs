//! An example of an embedding application's component: a GPT action of its own,
//! `POST /api/orders {pin, passphrase, item}`, that places an order for the chat user once
//! gpt-user has checked the user's PIN and passphrase.
//!
//! It imports `gpt-user:accounts/auth` (`wit/auth.wit`) and exports `wasi:http/incoming-handler`
//! (world `auth-client`). It never sees a hash or our store: compose it with gpt-user's auth
//! component plugged into its import, and the result runs where our flow components run:
//!
//! ```sh
//! wac plug --plug gpt_user_auth.wasm gpt_user_example_orders.wasm -o orders.wasm
//! ```
//!
//! Every refusal of the check is answered with the status and code of gpt-user's own
//! `POST /api/auth/check`, so an assistant handles both alike. A real application would also
//! check its GPT's service key (`Authorization: Bearer …`) and store the order; this one does
//! neither, to stay short.

use serde_json::{Value, json};
use wasip2::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};
use wasip2::io::streams::StreamError;

wit_bindgen::generate!({
    world: "gpt-user:accounts/auth-client",
    path: "../../wit",
    // The HTTP side comes from the `wasip2` crate; only `auth` is bound here.
    with: {
        "wasi:http/incoming-handler@0.2.12": wasip2::exports::http::incoming_handler,
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
    },
});

use gpt_user::accounts::auth::{self, AuthError};

/// Bodies past this are refused; an order is small.
const MAX_BODY: usize = 16 * 1024;

struct Orders;

impl wasip2::exports::http::incoming_handler::Guest for Orders {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let answer = match (request.method(), path.split('?').next()) {
            (Method::Post, Some("/api/orders")) => match read_body(&request) {
                Some(body) => place_order(&body),
                None => Answer::error(413, "PAYLOAD_TOO_LARGE", "The order is too large.", None),
            },
            (_, Some("/api/orders")) => Answer::error(405, "METHOD_NOT_ALLOWED", "Use POST.", None),
            _ => Answer::error(404, "NOT_FOUND", "No such route.", None),
        };
        answer.send(out);
    }
}

wasip2::http::proxy::export!(Orders);

/// `{pin, passphrase, item}` → 201 `{order: {item, pin}, message}` when gpt-user accepts the PIN
/// and passphrase.
fn place_order(body: &[u8]) -> Answer {
    let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    // The PIN as gpt-user's own action takes it: a string of digits or a JSON integer.
    let pin = match &input["pin"] {
        Value::String(pin) => pin.clone(),
        Value::Number(pin) => pin.to_string(),
        _ => return invalid("pin"),
    };
    let Some(passphrase) = input["passphrase"].as_str() else { return invalid("passphrase") };
    let Some(item) = input["item"].as_str().map(str::trim).filter(|item| !item.is_empty()) else { return invalid("item") };

    match auth::check(&pin, passphrase) {
        Ok(account) => Answer {
            status: 201,
            body: json!({
                "order": {"item": item, "pin": account.pin},
                "message": format!("Order placed: {item}."),
            }),
            retry_after: None,
        },
        Err(refusal) => refused(refusal),
    }
}

/// The answer of gpt-user's `POST /api/auth/check` for the same refusal: status and code, and
/// what the assistant should do next.
fn refused(refusal: AuthError) -> Answer {
    match refusal {
        AuthError::InvalidInput(field) => invalid(&field),
        AuthError::InvalidCredentials => Answer::error(
            401,
            "INVALID_CREDENTIALS",
            "The PIN or the passphrase is wrong.",
            Some("Ask the user for their PIN and passphrase again."),
        ),
        AuthError::Throttled(seconds) => Answer {
            retry_after: Some(seconds),
            ..Answer::error(
                429,
                "TOO_MANY_ATTEMPTS",
                "Too many failed attempts for this PIN.",
                Some(&format!("Wait {seconds} seconds before trying again.")),
            )
        },
        AuthError::Locked => Answer::error(
            423,
            "PIN_LOCKED",
            "This PIN is locked after too many failed attempts.",
            Some("Tell the user to set a new passphrase through a profile link (action updateInit)."),
        ),
        AuthError::EmailNotVerified => Answer::error(
            403,
            "EMAIL_NOT_VERIFIED",
            "The account's email address is not verified yet.",
            Some("Tell the user to open the verification email first."),
        ),
        AuthError::AccountBlocked => Answer::error(403, "ACCOUNT_BLOCKED", "This account is blocked.", None),
        AuthError::Unavailable => Answer::error(503, "SERVICE_UNAVAILABLE", "Please try again in a moment.", None),
    }
}

fn invalid(field: &str) -> Answer {
    Answer { body: json!({"code": "INVALID_INPUT", "message": format!("Invalid {field}."), "field": field}), status: 422, retry_after: None }
}

/// A JSON answer.
struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<u32>,
}

impl Answer {
    fn error(status: u16, code: &str, message: &str, instructions: Option<&str>) -> Self {
        let mut body = json!({"code": code, "message": message});
        if let Some(instructions) = instructions {
            body["instructions"] = json!(instructions);
        }
        Self { status, body, retry_after: None }
    }

    fn send(self, out: ResponseOutparam) {
        let body = self.body.to_string().into_bytes();
        let headers = Fields::new();
        let _ = headers.append("content-type", b"application/json; charset=utf-8");
        let _ = headers.append("content-length", body.len().to_string().as_bytes());
        if let Some(seconds) = self.retry_after {
            let _ = headers.append("retry-after", seconds.to_string().as_bytes());
        }
        let response = OutgoingResponse::new(headers);
        let _ = response.set_status_code(self.status);
        let Ok(outgoing) = response.body() else { return };
        ResponseOutparam::set(out, Ok(response));
        if let Ok(stream) = outgoing.write() {
            for chunk in body.chunks(4096) {
                if stream.blocking_write_and_flush(chunk).is_err() {
                    break;
                }
            }
        }
        let _ = OutgoingBody::finish(outgoing, None);
    }
}

/// The whole request body, or `None` past [`MAX_BODY`].
fn read_body(request: &IncomingRequest) -> Option<Vec<u8>> {
    let incoming = request.consume().ok()?;
    let stream = incoming.stream().ok()?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(MAX_BODY as u64) {
            Ok(chunk) => body.extend_from_slice(&chunk),
            // A body cut short is answered as the JSON it is not.
            Err(StreamError::Closed | StreamError::LastOperationFailed(_)) => return Some(body),
        }
        if body.len() > MAX_BODY {
            return None;
        }
    }
}
