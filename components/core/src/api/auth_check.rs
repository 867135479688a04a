//! Auth_Check (`POST /api/auth/check`, GPT action `authCheck`): SPEC §2.4. Also the check behind
//! the `gpt-user:accounts/auth` interface that components of an embedding application import.
//!
//! ```text
//! count the attempt (as a failure) ─┬─ 100 failures ───────────────▶ 423 PIN_LOCKED
//!                                   ├─ in the delay after the 5th+ ─▶ 429 TOO_MANY_ATTEMPTS + Retry-After
//!                                   └─ counted ─▶ one Argon2 verification (unknown PIN: a dummy hash)
//!                                        ├─ no match / no account ─▶ 401 INVALID_CREDENTIALS
//!                                        │     (the 100th failure of an account mails its owner once)
//!                                        └─ match ─▶ reset the count (+ rehash) ─┬─ pending ─▶ 403 EMAIL_NOT_VERIFIED
//!                                                                                ├─ blocked ─▶ 403 ACCOUNT_BLOCKED
//!                                                                                └─ active ──▶ 200 {pin, status, locale, email_masked}
//! ```
//! The attempt is counted before the check, in its own transaction, so concurrent guesses
//! cannot slip past the count; the state of an account is told only to who knows its passphrase.
//! A PIN whose length is not `pin_length` and that no account has is answered `401` uncounted.

use serde_json::{Value, json};

use super::mail::render;
use super::openapi::{OperationDoc, PASSPHRASE_PATTERN, error_response, gpt_action_errors, object_response, pin_pattern};
use super::signup_init::recovery_url;
use super::{ApiError, Ctx, Failure, Request, Response, json};
use crate::domain::passphrase::dummy_hash;
use crate::domain::{Passphrase, PassphraseHash, Pin};
use crate::ports::{self, AuthAttempt, Op, StoreError, User, UserStatus};
use crate::settings::Settings;

/// The longest passphrase a check reads (longer ones cannot be stored, so cannot match).
const MAX_CHECKED: usize = 4096;

/// A chat user whose PIN and passphrase matched, with an active account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub pin: String,
    pub locale: String,
    /// `a***@example.com`: enough for the user to recognise, nothing for anyone else.
    pub email_masked: String,
}

/// Why a check did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The field that is not a PIN or a passphrase at all.
    InvalidInput(&'static str),
    /// Unknown PIN or wrong passphrase: the same answer.
    InvalidCredentials,
    /// Seconds to wait.
    Throttled(u32),
    /// 100 consecutive failures: until the owner sets a new passphrase by profile link.
    Locked,
    EmailNotVerified,
    AccountBlocked,
    Unavailable,
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Throttled(secs) => Self::Throttled(secs),
            StoreError::Locked => Self::Locked,
            _ => Self::Unavailable,
        }
    }
}

/// Checks a PIN and passphrase (SPEC §2.4), counting the attempt.
pub fn check(ctx: &Ctx<'_>, pin: &str, passphrase: &str) -> Result<Account, AuthError> {
    let pin = Pin::parse(pin).map_err(|_| AuthError::InvalidInput("pin"))?;
    let passphrase = Passphrase::parse(passphrase, 1, MAX_CHECKED).map_err(|_| AuthError::InvalidInput("passphrase"))?;
    let pin = pin.as_str().to_owned();
    // New PINs have `pin_length` digits; one of another length can only be an account's from
    // before a change of `pin_length`. Without such an account it is not counted: counting it
    // would store a row for any of 10^12 made-up PINs. It is answered as any unknown PIN, after
    // the same Argon2 run (the length rule is no secret: the schema allows 4 to 12 digits).
    let counted = pin.len() == ctx.settings.pin_length || ctx.store.find_user_by_pin(&pin)?.is_some();
    if counted {
        ctx.store.apply(vec![Op::CountAuthAttempt(AuthAttempt { pin: pin.clone(), now: ctx.env.now() })])?;
    }
    let user = ctx.store.find_user_by_pin(&pin)?;
    // One Argon2 run whether or not the PIN has an account.
    let stored = match &user {
        Some(u) => PassphraseHash(u.passphrase_hash.clone()),
        None => dummy_hash(ctx.settings.argon2),
    };
    let matched = ctx.argon2(|| passphrase.verify(&stored));
    let user = match user {
        Some(user) if matched => user,
        other => {
            if counted {
                notify_if_locked(ctx, &pin, other.as_ref())?;
            }
            return Err(AuthError::InvalidCredentials);
        }
    };
    let mut ops = vec![Op::ResetAuthFailures(pin.clone())];
    if !stored.has_params(ctx.settings.argon2) {
        let new = ctx.argon2(|| passphrase.hash(ports::random(ctx.env), ctx.settings.argon2).0);
        ops.push(Op::Rehash(user.id.clone(), stored.0, new));
    }
    match ctx.store.apply(ops) {
        Ok(()) => {}
        // The passphrase was changed meanwhile (a profile save): keep that one, still reset.
        Err(StoreError::NotFound) => ctx.store.apply(vec![Op::ResetAuthFailures(pin.clone())])?,
        Err(e) => return Err(e.into()),
    }
    match user.status {
        UserStatus::Pending => Err(AuthError::EmailNotVerified),
        UserStatus::Blocked => Err(AuthError::AccountBlocked),
        UserStatus::Active => Ok(Account { pin, locale: user.locale.clone(), email_masked: mask_email(&user.email) }),
    }
}

/// The failure that locks an account's PIN mails its owner, once (the store marks it). Run for
/// unknown PINs too, without mail, so both failures do the same work.
fn notify_if_locked(ctx: &Ctx<'_>, pin: &str, user: Option<&User>) -> Result<(), AuthError> {
    let mut ops = vec![Op::NotifyLock(pin.to_owned())];
    if let Some(user) = user {
        let mail = render(ctx, &user.locale, "pin-locked", &user.email, &[("link", &recovery_url(ctx)), ("pin", pin)])
            .map_err(|_| AuthError::Unavailable)?;
        ops.push(Op::EnqueueMail(mail, ctx.env.now()));
        // With the one notice, in its transaction: `NotifyLock` succeeds once per lock, and only
        // after the failure that made it (the 100th count is a lock only if no success resets it).
        ops.push(ctx.event(crate::audit::Kind::AuthLocked, &user.id, &user.email, None));
    }
    match ctx.store.apply(ops) {
        Ok(()) | Err(StoreError::NotFound) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `ann@example.com` → `a***@example.com`.
pub fn mask_email(email: &str) -> String {
    let (local, domain) = email.rsplit_once('@').unwrap_or((email, ""));
    let first: String = local.chars().take(1).collect();
    format!("{first}***@{domain}")
}

pub fn handle(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<Response, Failure> {
    let at = |e| (e, locale.to_owned());
    let map = json::object(&req.body, &["pin", "passphrase"]).map_err(at)?;
    let pin = json::pin(&map, "pin").map_err(at)?.ok_or_else(|| at(ApiError::invalid("pin", "invalid-missing")))?;
    let passphrase = json::string(&map, "passphrase").map_err(at)?;
    match check(ctx, pin.as_str(), passphrase) {
        Ok(account) => {
            let l = account.locale.as_str();
            Ok(Response::json(200, &json!({
                "pin": account.pin,
                "status": UserStatus::Active.as_str(),
                "locale": account.locale,
                "email_masked": account.email_masked,
                "message": ctx.l10n.format(l, "auth-ok", &[]),
                "instructions": ctx.l10n.format(l, "auth-ok-instructions", &[("pin", &account.pin)]),
            })))
        }
        Err(e) => Err(at(api_error(e))),
    }
}

/// The answer to a failed check: Auth_Check's, and the OAuth sign-in page's (one count, one wording).
pub fn api_error(e: AuthError) -> ApiError {
    match e {
        AuthError::InvalidInput(field) => ApiError::invalid(field, if field == "pin" { "invalid-pin" } else { "invalid-passphrase-checked" }),
        AuthError::InvalidCredentials => ApiError::InvalidCredentials,
        AuthError::Throttled(retry_after) => ApiError::TooManyAttempts { retry_after },
        AuthError::Locked => ApiError::PinLocked,
        AuthError::EmailNotVerified => ApiError::AuthEmailNotVerified,
        AuthError::AccountBlocked => ApiError::AccountBlocked,
        AuthError::Unavailable => ApiError::Unavailable,
    }
}

/// The GPT action's contract in `/openapi.json` (`authCheck`). Not consequential: it changes no
/// account (it counts failures, which only the owner's new passphrase clears).
pub fn operation(settings: &Settings) -> Value {
    let mut responses = gpt_action_errors();
    let fields = ["pin", "status", "locale", "email_masked", "message", "instructions"];
    responses.insert("200".into(), object_response("PIN and passphrase match an active account.", &fields));
    responses.insert("401".into(), error_response("INVALID_CREDENTIALS (unknown PIN or wrong passphrase), or API_KEY_REQUIRED."));
    responses.insert("403".into(), error_response("EMAIL_NOT_VERIFIED or ACCOUNT_BLOCKED (passphrase matched); or no API key configured."));
    responses.insert("423".into(), error_response("PIN_LOCKED: 100 failures; the owner must set a new passphrase by profile link."));
    responses.insert("429".into(), error_response("TOO_MANY_ATTEMPTS: wait Retry-After seconds before trying this PIN again; RATE_LIMITED: too many calls from this key or client."));
    OperationDoc {
        id: "authCheck",
        summary: "Check a PIN and passphrase",
        description: "Proves the user owns the PIN before acting for them. Send the PIN and the passphrase the user typed; never store or repeat the passphrase. Repeated failures are delayed and finally lock the PIN.",
        consequential: false,
        request: json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["pin", "passphrase"],
            "properties": {
                "pin": {"type": "string", "pattern": pin_pattern(), "description": "The user's public PIN (digits)."},
                "passphrase": {"type": "string", "minLength": 1, "maxLength": MAX_CHECKED.max(settings.passphrase_max), "pattern": PASSPHRASE_PATTERN, "description": "The passphrase the user typed for this PIN."}
            }
        }),
        responses,
    }
    .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_address_keeps_the_first_letter_and_the_domain() {
        assert_eq!(mask_email("ann@example.com"), "a***@example.com");
        assert_eq!(mask_email("я@пример.рф"), "я***@пример.рф");
    }
}
