//! `check` and `request-new`: the new address, then a code to it.

use super::*;
use crate::api::Request;
use crate::domain::{Email, Invalid};
use crate::ports::StoreError;

/// `POST /api/email-change/check {token, flow, email}` → `{available: true}`.
pub fn check(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<Response, Failure> {
    run(req, locale, |map| {
        let email = parse_email(map)?;
        let step = load(ctx, map)?;
        expect(&step.flow, &[EmailChangeState::EnterNew])?;
        available(ctx, &step.user, &email)?;
        Ok(Response::json(200, &json!({
            "available": true,
            "message": ctx.l10n.format(locale, "email-change-available", &[]),
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
        available(ctx, &user, &email)?;
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
        let mail = send_code(ctx, &user, &mut next, email.as_str(), "email-change-new", now, code_ends)?;
        match ctx.store.apply([vec![Op::UpdateEmailChange(next.clone())], mail].concat()) {
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
    Email::parse(json::string(map, "email")?).map_err(|Invalid(reason)| ApiError::invalid("email", reason))
}

/// Not the current address, and no other account's.
fn available(ctx: &Ctx<'_>, user: &User, email: &Email) -> Result<(), ApiError> {
    if email.as_str() == user.email {
        return Err(ApiError::invalid("email", "invalid-same-email"));
    }
    match ctx.store.find_user_by_email(email.as_str())? {
        Some(_) => Err(ApiError::EmailTaken),
        None => Ok(()),
    }
}
