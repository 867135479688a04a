//! Auth_Check (SPEC §2.4) as a component, in two ways over the same core function
//! (`gpt_user_core::api::auth_check::check`), so the passphrase is checked in one place:
//!
//! - `POST /api/auth/check`, the GPT action `authCheck`, served from the route table like every
//!   flow component;
//! - the export `gpt-user:accounts/auth` (`wit/auth.wit`), which a component of an embedding
//!   application imports once this one is plugged into it (`wac plug`; see `examples/orders`).
//!
//! Both count the attempt on the PIN in the store, so they share one failure count. The export
//! does not call `mail.flush()`: its caller is waiting for the answer. A lock email it queues goes
//! out from the host's dispatcher, or on Spin from the next flow request's flush.

gpt_user_guest::flow_component!(gpt_user_core::api::AUTH_ROUTES);

use gpt_user_core::api::auth_check::{self, Account, AuthError};

/// The export's binding (world `auth-provider`); the canonical-ABI glue needs `unsafe`.
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        world: "auth-provider",
        path: "../../wit",
    });

    use super::AuthExport;
    export!(AuthExport);
}

use bindings::exports::gpt_user::accounts::auth::{self as wit, Guest};

struct AuthExport;

impl Guest for AuthExport {
    fn check(pin: String, passphrase: String) -> Result<wit::Account, wit::AuthError> {
        // An unusable variable was logged by `with_ctx`; the caller learns only that the check cannot run.
        let checked = gpt_user_guest::with_ctx(|ctx| auth_check::check(ctx, &pin, &passphrase)).unwrap_or(Err(AuthError::Unavailable));
        checked.map(account).map_err(auth_error)
    }
}

fn account(a: Account) -> wit::Account {
    wit::Account { pin: a.pin, locale: a.locale, email_masked: a.email_masked }
}

fn auth_error(e: AuthError) -> wit::AuthError {
    match e {
        AuthError::InvalidInput(field) => wit::AuthError::InvalidInput(field.to_owned()),
        AuthError::InvalidCredentials => wit::AuthError::InvalidCredentials,
        AuthError::Throttled(seconds) => wit::AuthError::Throttled(seconds),
        AuthError::Locked => wit::AuthError::Locked,
        AuthError::EmailNotVerified => wit::AuthError::EmailNotVerified,
        AuthError::AccountBlocked => wit::AuthError::AccountBlocked,
        AuthError::Unavailable => wit::AuthError::Unavailable,
    }
}
