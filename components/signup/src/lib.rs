//! The sign-up flow component: `wasi:http/incoming-handler` over `gpt-user:accounts` imports.
//! Thin by design: HTTP glue here, port implementations in `gpt-user-component-ports`... kept in
//! this crate for now (`ports.rs`), every rule in `gpt-user-core`.

mod http;
mod ports;

use wasip2::http::types::{IncomingRequest, ResponseOutparam};

wit_bindgen::generate!({
    world: "imports",
    path: "../../wit",
    generate_all,
});

struct Component;

impl wasip2::exports::http::incoming_handler::Guest for Component {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        use gpt_user_core::api::{self, SIGNUP_ROUTES};
        let mut req = http::read_head(&request);
        let settings = ports::settings();
        let ctx = api::Ctx { store: &ports::WitStore, l10n: &ports::WitL10n, env: &ports::WasiEnv, settings: &settings };
        // The head decides first: a caller without a key or with an oversized body is answered
        // before a byte of its body is read.
        let response = api::precheck(SIGNUP_ROUTES, &ctx, &req).unwrap_or_else(|| {
            http::read_body(&request, &mut req);
            api::handle(SIGNUP_ROUTES, &ctx, &req)
        });
        http::write_response(out, response);
        // The client has its whole answer; now the runtime may deliver mail (Spin) or not (host).
        gpt_user::accounts::mail::flush();
    }
}

wasip2::http::proxy::export!(Component);
