//! Email change (SPEC §2.3): six browser steps on the profile page, authorised by the profile
//! token (never consumed here) and bound to a stored flow record (Kratos' shape, STYLE #7).
//!
//! ```text
//!           start                confirm-current            request-new              confirm-new
//!  (token) ──────▶ confirm_current ──────────────▶ enter_new ──────────▶ confirm_new ──────────▶ done
//!                   │ ▲ resend                      │ ▲ check             │ ▲ resend
//!                   └─┘                             └─┘                   └─┘
//!  the 5th wrong code in confirm_current or confirm_new ──▶ dead: every step 429 TOO_MANY_ATTEMPTS
//!  1 h after start, any state ──▶ 410 FLOW_EXPIRED;  a step of another state ──▶ 409 WRONG_STEP
//!  a new start deletes the user's other flows ──▶ 404 FLOW_NOT_FOUND
//! ```
//! Every step: parse → [`load`] (token holder, flow of that user, `valid(now)`) → [`expect`] the
//! state (explicit arms for `dead` and every other state) → act. A state change is one `apply`
//! conditional on the version the step read, so of concurrent steps exactly one moves the flow.
//! Codes (salted SHA-256) and their attempt counters live in the ephemeral store: a code under a
//! fresh `code_ref` per send (a code stored by a send whose `apply` failed is never looked up),
//! the count of attempts per code phase under the flow id (a resend does not reset it), and the
//! count of `check`s under the flow id.
//!
//! Conceal mode: a new address another account has is answered as a free one at `check`,
//! `request-new`, `resend` and `confirm-new` (see `send_new`); its owner gets a notice, never a code.

mod confirm;
mod new_address;
mod start;

pub use confirm::{confirm_current, confirm_new};
pub use new_address::{check, request_new};
pub use start::{resend, start};

use serde_json::{Map, Value, json};

use super::auth_check::mask_email;
use super::mail::{render, send_limit};
use super::profile_load::{holder, parse_token};
use super::signup_init::recovery_url;
use super::{ApiError, Ctx, Failure, Request, Response, json};
use crate::domain::{Code, token_hex};
use crate::ports::{self, EmailChange, EmailChangeState, Op, StoreError, Timestamp, User};

/// A flow lives this long after start, whatever its state.
pub const FLOW_TTL_MS: i64 = 3600 * 1000;
/// A code is valid this long after it was sent (in `confirm_new` at most until the window ends).
pub const CODE_TTL_MS: i64 = 10 * 60 * 1000;
/// At least this long between two codes of one flow.
pub const RESEND_AFTER_MS: i64 = 60 * 1000;
/// Codes that may be sent in one flow, to both addresses together (SPEC §2.3: 5 per flow).
pub const MAX_SENDS: u32 = 5;
/// Wrong codes after which the flow is dead.
pub const MAX_WRONG_CODES: u32 = 5;
/// `check`s one flow may make; the page checks an address when its field changes.
pub const MAX_CHECKS: u32 = 10;

/// What every step after start works on.
struct Step {
    user: User,
    flow: EmailChange,
    now: Timestamp,
}

/// Runs a step and attaches the negotiated locale to its error.
fn run(req: &Request, locale: &str, step: impl FnOnce(&Map<String, Value>) -> Result<Response, ApiError>, fields: &[&str]) -> Result<Response, Failure> {
    json::object(&req.body, fields).and_then(|map| step(&map)).map_err(|e| (e, locale.to_owned()))
}

/// The holder of the profile token, its flow, and the time; a flow of another user is as unknown
/// as a missing one, and an expired one is gone whatever its state.
fn load(ctx: &Ctx<'_>, map: &Map<String, Value>) -> Result<Step, ApiError> {
    let token = parse_token(json::string(map, "token")?)?;
    let id = json::string(map, "flow")?.trim();
    let (_, user) = holder(ctx, &token)?;
    // Ids are 32 hex digits; anything far off is not looked up.
    let flow = if id.is_empty() || id.len() > 64 { None } else { ctx.store.find_email_change(id)? };
    let flow = flow.filter(|f| f.user_id == user.id).ok_or(ApiError::FlowNotFound)?;
    let now = ctx.env.now();
    if now >= flow.expires_at {
        return Err(ApiError::FlowExpired);
    }
    Ok(Step { user, flow, now })
}

/// The step belongs to one of `states`; a dead flow answers 429 to every step.
fn expect(flow: &EmailChange, states: &[EmailChangeState]) -> Result<(), ApiError> {
    match flow.state {
        s if states.contains(&s) => Ok(()),
        EmailChangeState::Dead => Err(ApiError::FlowDead),
        s @ (EmailChangeState::ConfirmCurrent | EmailChangeState::EnterNew | EmailChangeState::ConfirmNew | EmailChangeState::Done) => {
            Err(ApiError::WrongStep { state: s.as_str() })
        }
    }
}

/// A conditional update found the flow changed by a concurrent step: answer as the flow now is.
fn lost_race(ctx: &Ctx<'_>, id: &str) -> ApiError {
    match ctx.store.find_email_change(id) {
        Ok(Some(flow)) => expect(&flow, &[]).err().unwrap_or(ApiError::Internal),
        Ok(None) => ApiError::FlowNotFound,
        Err(e) => e.into(),
    }
}

fn code_key(code_ref: &str) -> String {
    format!("ec:code:{code_ref}")
}

fn tries_key(flow_id: &str, phase: EmailChangeState) -> String {
    format!("ec:tries:{flow_id}:{}", phase.as_str())
}

fn salt(flow: &EmailChange) -> String {
    format!("{}:{}", flow.id, flow.code_ref)
}

/// A fresh random id (128 bits, hex).
fn new_id(ctx: &Ctx<'_>) -> String {
    token_hex(&ports::random::<16>(ctx.env))
}

/// Issues a code for `flow` (which gets a new `code_ref`): stores its hash until `code_ends` and
/// returns the operations that queue its email to `to` under the send limit. Written to the
/// ephemeral store first: if the `apply` with these operations fails, the code is never looked up.
fn send_code(ctx: &Ctx<'_>, user: &User, flow: &mut EmailChange, to: &str, kind: &str, now: Timestamp, code_ends: Timestamp) -> Result<Vec<Op>, ApiError> {
    let code = Code::generate(|| u32::from_le_bytes(ports::random(ctx.env)));
    flow.code_ref = new_id(ctx);
    let minutes = ((code_ends - now + 59_999) / 60_000).to_string();
    let mail = render(ctx, &user.locale, kind, to, &[("code", code.as_str()), ("valid-minutes", &minutes)])?;
    ctx.ephemeral.put(&code_key(&flow.code_ref), &code.hash(&salt(flow)), now, code_ends)?;
    Ok(vec![Op::CheckSendLimit(send_limit(ctx, &mail)), Op::EnqueueMail(mail, now)])
}

/// The code to the new address `to` — or, when `owner` (another account) has it, which only
/// conceal mode lets get this far, a decoy with the same work: the flow gets a fresh `code_ref`
/// whose stored hash is random (no code hashes to it, so every code entered is wrong, as a
/// mistyped one is), and the owner a notice in their language instead of the code.
fn send_new(ctx: &Ctx<'_>, user: &User, flow: &mut EmailChange, to: &str, owner: Option<&User>, now: Timestamp, code_ends: Timestamp) -> Result<Vec<Op>, ApiError> {
    let Some(owner) = owner else {
        return send_code(ctx, user, flow, to, "email-change-new", now, code_ends);
    };
    flow.code_ref = new_id(ctx);
    let notice = render(ctx, &owner.locale, "email-change-taken", &owner.email, &[("link", &recovery_url(ctx))])?;
    ctx.ephemeral.put(&code_key(&flow.code_ref), &token_hex(&ports::random::<32>(ctx.env)), now, code_ends)?;
    Ok(vec![Op::CheckSendLimit(send_limit(ctx, &notice)), Op::EnqueueMail(notice, now)])
}

/// Another account that has `email` (conceal mode's question at a resend: the address may have
/// been taken or freed since `request-new`).
fn other_owner(ctx: &Ctx<'_>, user: &User, email: &str) -> Result<Option<User>, ApiError> {
    Ok(ctx.store.find_user_by_email(email)?.filter(|owner| owner.id != user.id))
}

/// Moves the flow to `next` and queues the mail of its send, in one `apply`. In conceal mode a
/// send to the new address that is throttled goes on without its mail: `429` would tell that
/// the address got a mail a moment ago — for a taken one, its owner's notice (sign-up drops a
/// throttled mail the same way).
fn apply_send(ctx: &Ctx<'_>, next: &EmailChange, mail: Vec<Op>) -> Result<(), StoreError> {
    let update = Op::UpdateEmailChange(next.clone());
    match ctx.store.apply([vec![update.clone()], mail].concat()) {
        Err(StoreError::Throttled(_)) if ctx.settings.conceal_accounts && next.state == EmailChangeState::ConfirmNew => ctx.store.apply(vec![update]),
        other => other,
    }
}

/// The answer after a code was sent to `to` (in conceal mode to a new address: if it may be used).
fn sent(ctx: &Ctx<'_>, locale: &str, flow: &EmailChange, to: &str, now: Timestamp, code_ends: Timestamp) -> Value {
    let message_id = match flow.state {
        EmailChangeState::ConfirmNew if ctx.settings.conceal_accounts => "email-change-sent-new-concealed",
        EmailChangeState::ConfirmNew => "email-change-sent-new",
        _ => "email-change-sent-current",
    };
    json!({
        "state": flow.state.as_str(),
        "message": ctx.l10n.format(locale, message_id, &[("to", &mask_email(to))]),
        "resend_after_s": RESEND_AFTER_MS / 1000,
        "code_valid_s": (code_ends - now) / 1000,
        "sends_left": MAX_SENDS.saturating_sub(flow.sends),
    })
}
