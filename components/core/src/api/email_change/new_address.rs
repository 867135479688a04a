//! `check` and `request-new`: the new address, then a code to it.
//!
//! Outside conceal mode an address another account has (pending ones too) is refused with
//! `409 EMAIL_TAKEN`. In conceal mode (`conceal_accounts`) it is answered exactly as a free one —
//! same status, same body, the same work — but no code goes to it: the flow keeps a code hash
//! that no code matches (so every code entered at `confirm-new` is a wrong one, counted, until
//! the flow dies) and the address's owner gets a notice, as a repeated sign-up does.

use super::*;
use crate::api::Request;
use crate::domain::{Email, Invalid};

/// `POST /api/email-change/check {token, flow, email}` → `{available: true}`. At most
/// [`MAX_CHECKS`] per flow (then `429 TOO_MANY_CHECKS`), in every mode: outside conceal mode each
/// check tells whether an address has an account.
pub fn check(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<Response, Failure> {
    run(req, locale, |map| {
        let email = parse_email(map)?;
        let step = load(ctx, map)?;
        expect(&step.flow, &[EmailChangeState::EnterNew])?;
        count_check(ctx, &step.flow, step.now)?;
        let owner = owner(ctx, &step.user, &email)?;
        refuse_taken(ctx, owner.as_ref())?;
        let message_id = if ctx.settings.conceal_accounts { "email-change-check-concealed" } else { "email-change-available" };
        Ok(Response::json(200, &json!({
            "available": true,
            "message": ctx.l10n.format(locale, message_id, &[]),
        })))
    }, &["token", "flow", "email"])
}

/// `POST /api/email-change/request-new {token, flow, email}` → `{state: "confirm_new", window_s, …}`:
/// checks as `check`, sends a code to the new address and opens the window to enter it.
pub fn request_new(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<Response, Failure> {
    run(req, locale, |map| {
        let email = parse_email(map)?;
        let Step { user, flow, now } = load(ctx, map)?;
        expect(&flow, &[EmailChangeState::EnterNew])?;
        let owner = owner(ctx, &user, &email)?;
        refuse_taken(ctx, owner.as_ref())?;
        // The count runs on from the codes sent to the current address: 5 per flow in all.
        if flow.sends >= MAX_SENDS {
            return Err(ApiError::TooManyCodes);
        }
        let window_s = ctx.settings.email_change_window_s;
        let window_ends = now + i64::from(window_s) * 1000;
        let code_ends = (now + CODE_TTL_MS).min(window_ends);
        let mut next = EmailChange {
            state: EmailChangeState::ConfirmNew,
            new_email: Some(email.as_str().to_owned()),
            sends: flow.sends + 1,
            last_send_at: now,
            window_ends_at: Some(window_ends),
            ..flow.clone()
        };
        let mail = send_new(ctx, &user, &mut next, email.as_str(), owner.as_ref(), now, code_ends)?;
        match apply_send(ctx, &next, mail) {
            Err(StoreError::NotFound) => return Err(lost_race(ctx, &flow.id)),
            Err(e) => return Err(e.into()),
            Ok(()) => {}
        }
        let mut body = sent(ctx, locale, &next, email.as_str(), now, code_ends);
        body["window_s"] = json!(window_s);
        Ok(Response::json(200, &body))
    }, &["token", "flow", "email"])
}

fn parse_email(map: &Map<String, Value>) -> Result<Email, ApiError> {
    Email::parse(json::string(map, "email")?).map_err(|Invalid(r)| ApiError::invalid("email", r))
}

/// The account that has `email`; the user's own address is refused as input.
fn owner(ctx: &Ctx<'_>, user: &User, email: &Email) -> Result<Option<User>, ApiError> {
    if email.as_str() == user.email {
        return Err(ApiError::invalid("email", "invalid-same-email"));
    }
    Ok(ctx.store.find_user_by_email(email.as_str())?)
}

/// A taken address is refused outside conceal mode; in conceal mode it goes on as a free one.
fn refuse_taken(ctx: &Ctx<'_>, owner: Option<&User>) -> Result<(), ApiError> {
    match owner {
        Some(_) if !ctx.settings.conceal_accounts => Err(ApiError::EmailTaken),
        _ => Ok(()),
    }
}

/// Counts a check of this flow (under its id, until it expires) before the address is looked up.
fn count_check(ctx: &Ctx<'_>, flow: &EmailChange, now: Timestamp) -> Result<(), ApiError> {
    let checks = ctx.ephemeral.increment(&checks_key(&flow.id), now, flow.expires_at)?;
    if checks > MAX_CHECKS { Err(ApiError::TooManyChecks) } else { Ok(()) }
}

fn checks_key(flow_id: &str) -> String {
    format!("ec:checks:{flow_id}")
}
