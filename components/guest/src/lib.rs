//! What every flow component shares, so that a component is its route table and one line:
//!
//! ```ignore
//! gpt_user_guest::flow_component!(gpt_user_core::api::SIGNUP_ROUTES);
//! ```
//!
//! - the one `wit_bindgen::generate!` of the `imports` world (`gpt-user:accounts` store, mail,
//!   ephemeral, l10n, and `wasi:config/store`);
//! - the core's ports over those imports ([`ports`]);
//! - the `wasi:http` glue ([`http`]) and [`serve`], which answers a request from a route table:
//!   the head is judged first, the body read only if it passes, the response written, and then
//!   the route's deferred work and `mail.flush()` run — after the client has its whole answer;
//! - [`with_ctx`], the same ports for a component's own exports (`components/auth`).

pub mod http;
pub mod ports;

pub use wasip2;

use gpt_user_core::api::{self, Route};
use gpt_user_core::settings::{InvalidSetting, Settings};
use wasip2::http::types::{IncomingRequest, ResponseOutparam};

wit_bindgen::generate!({
    world: "imports",
    path: "../../wit",
    generate_all,
});

/// Runs `f` with the core's ports over the WIT imports and the settings of this instance — what a
/// request's flow runs with, and what a component's own exports call the core with. A variable
/// set to a value the service cannot use is an error (logged): nothing runs with a setting the
/// operator did not choose.
pub fn with_ctx<R>(f: impl FnOnce(&api::Ctx<'_>) -> R) -> Result<R, InvalidSetting> {
    Ok(with_settings(&settings()?, f))
}

/// This instance's settings; an unusable variable is logged once per call, with its value.
fn settings() -> Result<Settings, InvalidSetting> {
    ports::settings().inspect_err(|invalid| eprintln!("gpt-user: refusing to serve, variable {invalid}"))
}

fn with_settings<R>(settings: &Settings, f: impl FnOnce(&api::Ctx<'_>) -> R) -> R {
    f(&api::Ctx {
        store: &ports::WitStore,
        ephemeral: &ports::WitEphemeral,
        fetch: &ports::WasiFetch,
        l10n: &ports::WitL10n,
        env: &ports::WasiEnv,
        settings,
        after: api::After::default(),
        origin: Default::default(),
        metrics: &ports::WitMetrics,
    })
}

/// Answers one request from `routes` over the WIT imports; while a variable is unusable, every
/// request gets `503 CONFIG_INVALID` naming it.
pub fn serve(routes: &[Route], request: IncomingRequest, out: ResponseOutparam) {
    let mut req = http::read_head(&request);
    let mut body = http::RequestBody::new(&request);
    let settings = settings();
    let defaults = Settings::default();
    with_settings(settings.as_ref().unwrap_or(&defaults), |ctx| {
        // One id for the answer's header and the request's audit events.
        let request_id = api::request_id(&req, ctx.env);
        req.headers.retain(|(name, _)| !name.eq_ignore_ascii_case(api::REQUEST_ID));
        req.headers.push((api::REQUEST_ID.into(), request_id.clone()));
        let mut response = match &settings {
            Ok(_) => api::respond(routes, ctx, &mut req, |req| body.read_into(req)),
            Err(invalid) => api::refuse_config(ctx, &req, invalid),
        };
        response.headers.push((api::REQUEST_ID.into(), request_id));
        http::write_response(out, response);
        // The client has its whole answer: now the work whose time it must not see.
        ctx.run_deferred();
    });
    // What the client still sends is read and dropped, so it gets the answer, not a reset.
    body.linger();
    // The client has its whole answer; now the runtime may deliver mail (Spin) or not (host).
    gpt_user::accounts::mail::flush();
}

/// Makes the crate it is used in a flow component: exports `wasi:http/incoming-handler`
/// serving the given route table (a `&'static [gpt_user_core::api::Route]`).
#[macro_export]
macro_rules! flow_component {
    ($routes:expr) => {
        struct FlowComponent;

        impl $crate::wasip2::exports::http::incoming_handler::Guest for FlowComponent {
            fn handle(request: $crate::wasip2::http::types::IncomingRequest, out: $crate::wasip2::http::types::ResponseOutparam) {
                $crate::serve($routes, request, out)
            }
        }

        $crate::wasip2::http::proxy::export!(FlowComponent);
    };
}
