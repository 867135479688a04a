//! Update_Init (`POST /api/profile/init`, GPT action) and the recovery page's "send me a link"
//! (`POST /api/profile/request`, browser): SPEC §2.2 step 1.
//!
//! ```text
//! active user ──▶ profile token (1 h) + mail profile-link ──────▶ 200 {message, instructions}
//! pending user ─▶ verification token (24 h) + mail, as sign-up ─▶ 409 EMAIL_NOT_VERIFIED
//! blocked user ─▶ nothing ──────────────────────────────────────▶ 403 ACCOUNT_BLOCKED
//! no user ──────▶ nothing ──────────────────────────────────────▶ 404 USER_NOT_FOUND
//! throttled ────▶ nothing ──────────────────────────────────────▶ 429 TOO_MANY_REQUESTS
//! ```
//! Conceal mode (Init) and the browser request (always: no API key guards it) answer every
//! outcome above with one 200, so the answer never tells whether an account exists. Only bad
//! input (422) answers otherwise. Their time must not tell it either (an unknown address costs one
//! read, an active one a render and a committed write): they answer once the input is parsed and
//! do the work after the answer is written ([`Ctx::defer`]); a store that fails then is the
//! adapter's to log, and the caller, told "if an account matches", may ask again.

use crate::audit::Kind;
use serde_json::{Value, json};

use super::mail::{render, send_limit};
use super::openapi::{OperationDoc, EMAIL_PATTERN, error_response, gpt_action_errors, object_response, pin_pattern};
use super::signup_init::{recovery_url, verification_ops};
use super::{ApiError, Ctx, Failure, Request, Response, json};
use crate::domain::{Email, Invalid, Pin, Token};
use crate::ports::{self, Op, Secret, SecretPurpose, StoreError, Timestamp, User, UserStatus};
use crate::settings::Settings;

/// Profile links live one hour.
pub const PROFILE_TTL_MS: i64 = 3600 * 1000;

/// Who the caller means.
enum Lookup {
    Email(Email),
    Pin(Pin),
}

pub fn handle(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<Response, Failure> {
    let lookup = parse(&req.body).map_err(|e| (e, locale.to_owned()))?;
    if ctx.settings.conceal_accounts {
        send_link_after_answer(ctx, lookup);
        return Ok(concealed(ctx, locale));
    }
    send_link(ctx, &lookup).map(|()| sent(ctx, locale)).map_err(|e| (e, locale.to_owned()))
}

/// `{email}` from the recovery page: Init's work, answered alike for every address.
pub fn request(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<Response, Failure> {
    let at = |e| (e, locale.to_owned());
    let map = json::object(&req.body, &["email"]).map_err(at)?;
    let email = json::string(&map, "email").map_err(at)?;
    let email = Email::parse(email).map_err(|Invalid(r)| at(ApiError::invalid("email", r)))?;
    send_link_after_answer(ctx, Lookup::Email(email));
    Ok(Response::json(200, &json!({"message": ctx.l10n.format(locale, "profile-request-sent", &[])})))
}

/// Update_Init for the person an OAuth access token names (the MCP tool `requestProfileLink`):
/// the link goes to the account's own address, in its language, with Update_Init's throttle.
pub(crate) fn for_person(ctx: &Ctx<'_>, user: &User) -> Response {
    let locale = user.locale.as_str();
    let sent_or_not = Email::parse(&user.email).map_err(|_| ApiError::Internal).and_then(|email| send_link(ctx, &Lookup::Email(email)));
    match sent_or_not {
        Ok(()) => sent(ctx, locale),
        Err(e) => e.into_response(ctx, locale),
    }
}

/// [`send_link`] once the answer is out. Its outcome changes no answer: the ones that tell
/// accounts apart must not, and a failing store or renderer was logged by its adapter.
fn send_link_after_answer(ctx: &Ctx<'_>, lookup: Lookup) {
    ctx.defer(move |ctx| {
        let _ = send_link(ctx, &lookup);
    });
}

/// Every given field must be valid; of a valid pair, the email is used.
fn parse(body: &[u8]) -> Result<Lookup, ApiError> {
    let map = json::object(body, &["email", "pin"])?;
    let email = json::opt_string(&map, "email")?
        .map(|raw| Email::parse(raw).map_err(|Invalid(r)| ApiError::invalid("email", r)))
        .transpose()?;
    let pin = json::pin(&map, "pin")?;
    match (email, pin) {
        (Some(email), _) => Ok(Lookup::Email(email)),
        (None, Some(pin)) => Ok(Lookup::Pin(pin)),
        (None, None) => Err(ApiError::invalid("email", "invalid-email-or-pin-missing")),
    }
}

fn send_link(ctx: &Ctx<'_>, lookup: &Lookup) -> Result<(), ApiError> {
    // The link is issued under the user's row lock, for the address and state read here
    // (`Op::GuardUser`). If they changed in between (an email change, a block, a delete), the
    // account is read again and answered as it is now.
    for _ in 0..2 {
        let user = match lookup {
            Lookup::Email(email) => ctx.store.find_user_by_email(email.as_str())?,
            Lookup::Pin(pin) => ctx.store.find_user_by_pin(pin.as_str())?,
        };
        let user = user.ok_or(ApiError::UserNotFound)?;
        let guard = Op::GuardUser(user.id.clone(), user.email.clone(), user.status);
        let issued = match user.status {
            UserStatus::Active => ctx.store.apply([vec![guard], profile_link_ops(ctx, &user)?].concat()),
            UserStatus::Pending => ctx.store.apply([vec![guard], verification_ops(ctx, &user.locale, &user.email, &user.id, &user.pin, None)?].concat()),
            UserStatus::Blocked => return Err(ApiError::AccountBlocked),
        };
        match (issued, user.status) {
            (Err(StoreError::NotFound), _) => continue,
            (Err(e), _) => return Err(e.into()),
            (Ok(()), UserStatus::Pending) => return Err(ApiError::EmailNotVerified),
            (Ok(()), _) => return Ok(()),
        }
    }
    // Changed twice while we looked: a store this busy with one account is better retried.
    Err(ApiError::Unavailable)
}

/// Throttle, profile token, mail with `{base_url}/profile#token=…&lang=…` in the account's locale.
fn profile_link_ops(ctx: &Ctx<'_>, user: &User) -> Result<Vec<Op>, ApiError> {
    let now = ctx.env.now();
    let token = Token::from_random(ports::random(ctx.env));
    let link = format!("{}#token={}&lang={}", recovery_url(ctx), token.as_str(), user.locale);
    let minutes = valid_minutes();
    let mail = render(ctx, &user.locale, "profile-link", &user.email, &[("link", &link), ("valid-minutes", &minutes)])?;
    Ok(vec![
        Op::CheckSendLimit(send_limit(ctx, &mail)),
        Op::InsertSecret(profile_secret(&token, &user.id, now)),
        Op::EnqueueMail(mail, now),
        ctx.event(Kind::ProfileLinkRequested, &user.id, &user.email, None),
    ])
}

/// A profile token as stored: its hash, for `PROFILE_TTL_MS` from `now`.
pub(super) fn profile_secret(token: &Token, user_id: &str, now: Timestamp) -> Secret {
    Secret { hash: token.hash().0, purpose: SecretPurpose::Profile, user_id: user_id.to_owned(), created_at: now, expires_at: now + PROFILE_TTL_MS }
}

fn valid_minutes() -> String {
    (PROFILE_TTL_MS / 60_000).to_string()
}

fn sent(ctx: &Ctx<'_>, locale: &str) -> Response {
    Response::json(200, &json!({
        "message": ctx.l10n.format(locale, "profile-link-sent", &[]),
        "instructions": ctx.l10n.format(locale, "profile-link-sent-instructions", &[("minutes", &valid_minutes())]),
    }))
}

/// Conceal mode: one answer for every account, and for none.
fn concealed(ctx: &Ctx<'_>, locale: &str) -> Response {
    Response::json(200, &json!({
        "message": ctx.l10n.format(locale, "profile-link-concealed", &[]),
        "instructions": ctx.l10n.format(locale, "profile-link-concealed-instructions", &[("minutes", &valid_minutes())]),
    }))
}

/// The GPT action's contract in `/openapi.json` (`updateInit`). Not consequential: it changes
/// nothing and only emails a link to the address the account already has (throttled), so a
/// caller who names someone else's account gains nothing; ChatGPT need not ask first.
pub fn operation(_: &Settings) -> Value {
    let description = format!(
        "Emails the user a single-use link (valid {} minutes) to a page where they can see their profile and change their language or passphrase. Give the account's email or PIN. Use it when the user wants to change settings or forgot the passphrase.",
        PROFILE_TTL_MS / 60_000
    );
    let mut responses = gpt_action_errors();
    let sent = "A profile link was emailed to the account's address (privacy mode: if the account exists).";
    responses.insert("200".into(), object_response(sent, &["message", "instructions"]));
    responses.insert("403".into(), error_response("ACCOUNT_BLOCKED: the account is blocked; or no service API key is configured."));
    responses.insert("404".into(), error_response("USER_NOT_FOUND: no account has this email or PIN."));
    responses.insert("409".into(), error_response("EMAIL_NOT_VERIFIED: the email is not verified yet; a new verification link was sent."));
    responses.insert("429".into(), error_response("Too many emails to this address; see Retry-After."));
    OperationDoc {
        id: "updateInit",
        summary: "Email a profile link",
        description: &description,
        consequential: false,
        request: json!({
            "type": "object",
            "additionalProperties": false,
            "minProperties": 1,
            "properties": {
                "email": {"type": "string", "maxLength": 254, "pattern": EMAIL_PATTERN, "description": "The account's email address; used when both are given."},
                "pin": {"type": "string", "pattern": pin_pattern(), "description": "The account's public PIN (digits)."}
            }
        }),
        responses,
    }
    .build()
}
