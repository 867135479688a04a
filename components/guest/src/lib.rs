//! What every flow component shares, so that a component is its route table and one line:
//!
//! ```ignore
//! gpt_user_guest::flow_component!(gpt_user_core::api::SIGNUP_ROUTES);
//! ```
//!
//! - the one `wit_bindgen::generate!` of the `flow` world (`gpt-user:accounts` store, mail,
//!   ephemeral, l10n, `wasi:config/store`, `wasi:http/client@0.3.0`, and the export
//!   `wasi:http/handler@0.3.0`);
//! - the core's ports over those imports ([`ports`]);
//! - the `wasi:http` glue ([`http`]) and [`serve`], which answers a request from a route table:
//!   the head is judged first, the body read only if it passes, what may wait on the network
//!   awaited (a client's metadata document), the response returned, and then
//!   — in a task of the instance, after the client has its whole answer — the route's deferred
//!   work and, when due ([`flush_due`]), `mail.flush()`;
//! - [`with_ctx`], the same ports for a component's own exports (`components/auth`).
//!
//! An instance serves many requests, several at a time (WASIp3: Spin reuses one for up to 128
//! requests, our host likewise). What lives for the instance: the settings (read once) and when it
//! last flushed mail. What lives for a request: its `Ctx` (deferred work, audit origin) and its
//! body — nothing of one request is kept for the next.

pub mod http;
pub mod ports;

pub use wasip2;
#[doc(hidden)]
pub use wit_bindgen;

use std::cell::Cell;

use gpt_user_core::api::{self, Route};
use gpt_user_core::ports::Timestamp;
use gpt_user_core::settings::{InvalidSetting, Settings};

use crate::wasi::http0_3_0::types::{ErrorCode, Request as WasiRequest, Response as WasiResponse};

wit_bindgen::generate!({
    world: "flow",
    path: "../../wit",
    generate_all,
    pub_export_macro: true,
    export_macro_name: "export_flow",
    default_bindings_module: "::gpt_user_guest",
});

/// Runs `f` with the core's ports over the WIT imports and the settings of this instance — what a
/// request's flow runs with, and what a component's own exports call the core with. A variable
/// set to a value the service cannot use is an error (logged): nothing runs with a setting the
/// operator did not choose.
pub fn with_ctx<R>(f: impl FnOnce(&api::Ctx<'_>) -> R) -> Result<R, InvalidSetting> {
    let settings = settings().as_ref().map_err(Clone::clone)?;
    Ok(f(&ctx(settings)))
}

/// This instance's settings, read from `wasi:config` on first use: the runtime's variables do not
/// change while an instance lives. An unusable variable is logged once per instance, with its value.
fn settings() -> &'static Result<Settings, InvalidSetting> {
    thread_local! {
        static SETTINGS: &'static Result<Settings, InvalidSetting> = Box::leak(Box::new(
            ports::settings().inspect_err(|invalid| eprintln!("gpt-user: refusing to serve, variable {invalid}")),
        ));
    }
    SETTINGS.with(|s| *s)
}

/// A request's ports: every field but the settings is the request's own.
fn ctx(settings: &Settings) -> api::Ctx<'_> {
    api::Ctx {
        store: &ports::WitStore,
        ephemeral: &ports::WitEphemeral,
        fetch: &ports::WasiFetch,
        l10n: &ports::WitL10n,
        env: &ports::WasiEnv,
        settings,
        after: api::After::default(),
        origin: Default::default(),
        metrics: &ports::WitMetrics,
    }
}

/// Answers one request from `routes` over the WIT imports; while a variable is unusable, every
/// request gets `503 CONFIG_INVALID` naming it.
pub async fn serve(routes: &'static [Route], request: WasiRequest) -> Result<WasiResponse, ErrorCode> {
    static DEFAULTS: std::sync::LazyLock<Settings> = std::sync::LazyLock::new(Settings::default);
    let mut req = http::read_head(&request);
    // A GET or HEAD that announces no body is answered without opening its body stream: nothing
    // to read, nothing to linger over (each stream operation is a call into the runtime).
    let mut body = req.may_have_body().then(|| http::RequestBody::new(request));
    let settings = settings();
    let ctx = ctx(settings.as_ref().unwrap_or(&DEFAULTS));
    // One id for the answer's header and the request's audit events.
    let request_id = api::request_id(&req, ctx.env);
    req.headers.retain(|(name, _)| !name.eq_ignore_ascii_case(api::REQUEST_ID));
    req.headers.push((api::REQUEST_ID.into(), request_id.clone()));
    let mut response = match settings {
        Ok(_) => match api::admit(routes, &ctx, &req) {
            Ok(admitted) => {
                if let Some(body) = body.as_mut() {
                    body.read_into(&mut req).await;
                }
                admitted.prepare(&ctx, &req).await;
                admitted.answer(&ctx, &req)
            }
            Err(answer) => answer,
        },
        Err(invalid) => api::refuse_config(&ctx, &req, invalid),
    };
    response.headers.push((api::REQUEST_ID.into(), request_id));
    let (response, written, sent) = http::response(response);
    wit_bindgen::spawn_local(async move {
        written.await;
        // What the client still sends is read and dropped, so it gets the answer, not a reset
        // (and the runtime can report the answer sent).
        if let Some(body) = body {
            body.linger().await;
        }
        // The client has its whole answer: now the work whose time it must not see. (Run any
        // earlier, it would hold the instance while the runtime still sends the answer's end.)
        sent.await;
        ctx.run_deferred();
        // Now the runtime may deliver mail (Spin) or not (our host: its dispatcher does). Async:
        // while it waits for a relay, the instance serves its other requests.
        if flush_due(ctx.env.now()) {
            gpt_user::accounts::mail::flush().await;
        }
    });
    Ok(response)
}

/// A request of this instance committed mail to the outbox (`store.apply` with `enqueue-mail`):
/// the flush after it comes at once.
pub(crate) fn mail_queued() {
    MAIL.with(|m| m.queued.set(true));
}

/// Whether the request ending now calls `mail.flush`: after a request of this instance queued
/// mail, at once; otherwise at most once per [`FLUSH_EVERY_MS`] of the wall clock. Most requests
/// (reads, `/healthz`) queue none, and on Spin the call is the costliest step of a cheap request
/// (an async call into the adapter, which then reads the outbox); mail another instance queued,
/// a retry (backoff 30 s and more) or housekeeping (every 5 min) waits at most this much longer.
fn flush_due(now: Timestamp) -> bool {
    MAIL.with(|m| {
        let queued = m.queued.replace(false);
        if !queued && m.last_flush.get().is_some_and(|last| (0..FLUSH_EVERY_MS).contains(&(now - last))) {
            return false;
        }
        m.last_flush.set(Some(now));
        true
    })
}

/// See [`flush_due`].
const FLUSH_EVERY_MS: Timestamp = 1_000;

/// What this instance knows of its mail: whether a request queued some since the last flush, and
/// when it last called `mail.flush` (ms, wall clock).
#[derive(Default)]
struct Mail {
    queued: Cell<bool>,
    last_flush: Cell<Option<Timestamp>>,
}

thread_local! {
    static MAIL: Mail = Mail::default();
}

/// Makes the crate it is used in a flow component: exports `wasi:http/handler@0.3.0` serving
/// the given route table (a `&'static [gpt_user_core::api::Route]`).
#[macro_export]
macro_rules! flow_component {
    ($routes:expr) => {
        struct FlowComponent;

        impl $crate::exports::wasi::http0_3_0::handler::Guest for FlowComponent {
            async fn handle(request: $crate::wasi::http0_3_0::types::Request) -> Result<$crate::wasi::http0_3_0::types::Response, $crate::wasi::http0_3_0::types::ErrorCode> {
                $crate::serve($routes, request).await
            }
        }

        $crate::export_flow!(FlowComponent with_types_in $crate);
    };
}
