//! `confirm-current` and `confirm-new`: a code is checked, its attempt counted first.

use super::*;
use crate::api::Request;
use crate::api::profile_init::profile_secret;
use crate::api::signup_init::recovery_url;
use crate::domain::Token;
use crate::ports::StoreError;

/// `POST /api/email-change/confirm-current {token, flow, code}` → `{state: "enter_new"}`.
pub fn confirm_current(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<Response, Failure> {
    run(req, locale, |map| {
        let Step { flow, .. } = checked(ctx, map, EmailChangeState::ConfirmCurrent)?;
        let next = EmailChange { state: EmailChangeState::EnterNew, ..flow.clone() };
        apply_or_lost(ctx, &flow.id, vec![Op::UpdateEmailChange(next)])?;
        forget(ctx, &flow);
        Ok(Response::json(200, &json!({
            "state": EmailChangeState::EnterNew.as_str(),
            "message": ctx.l10n.format(locale, "email-change-confirmed-current", &[]),
        })))
    }, &["token", "flow", "code"])
}

/// `POST /api/email-change/confirm-new {token, flow, code}` → `{state: "done", email, token}`. In
/// one transaction: the flow is done, the address changes and is verified (the unique index
/// decides a race for it: 409 EMAIL_TAKEN), every secret of the user is revoked, a fresh profile
/// token is issued for the page, and the old address gets a notice.
pub fn confirm_new(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<Response, Failure> {
    run(req, locale, |map| {
        let Step { user, flow, now } = checked(ctx, map, EmailChangeState::ConfirmNew)?;
        let new_email = flow.new_email.clone().ok_or(ApiError::Internal)?;
        let token = Token::from_random(ports::random(ctx.env));
        let notice = render(ctx, &user.locale, "email-changed", &user.email, &[
            ("new-email", &mask_email(&new_email)),
            ("link", &recovery_url(ctx)),
        ])?;
        let ops = vec![
            Op::UpdateEmailChange(EmailChange { state: EmailChangeState::Done, ..flow.clone() }),
            Op::ChangeEmail(user.id.clone(), new_email.clone(), now),
            ctx.event(crate::audit::Kind::EmailChangeConfirmed, &user.id, &new_email, None),
            Op::RevokeAllSecrets(user.id.clone()),
            Op::RevokeUserOauth(user.id.clone()),
            Op::InsertSecret(profile_secret(&token, &user.id, now)),
            // A security notice: sent whatever the send limit says.
            Op::EnqueueMail(notice, now),
        ];
        match ctx.store.apply(ops) {
            // Said in conceal mode too: only a code read from the new address's mailbox gets here
            // (a taken address got no code at request-new or resend), and its reader learns
            // nothing the mailbox does not show.
            Err(StoreError::Conflict(field)) if field == "email" => return Err(ApiError::EmailTaken),
            Err(StoreError::NotFound) => return Err(lost_race(ctx, &flow.id)),
            Err(e) => return Err(e.into()),
            Ok(()) => {}
        }
        forget(ctx, &flow);
        Ok(Response::json(200, &json!({
            "state": EmailChangeState::Done.as_str(),
            "message": ctx.l10n.format(locale, "email-change-done", &[("email", &new_email)]),
            "email": new_email,
            "token": token.as_str(),
        })))
    }, &["token", "flow", "code"])
}

/// The right code of a flow in `phase`, or why not. The attempt is counted before the code is
/// looked at; the count is per phase and per flow, so a resend does not reset it. The 5th wrong
/// code kills the flow; any attempt past the 5th is refused unchecked (of many concurrent right
/// guesses at most 5 are compared, and one of those moves the flow).
fn checked(ctx: &Ctx<'_>, map: &Map<String, Value>, phase: EmailChangeState) -> Result<Step, ApiError> {
    let code = Code::parse(json::string(map, "code")?).ok_or_else(|| ApiError::invalid("code", "invalid-code-format"))?;
    let step = load(ctx, map)?;
    let (flow, now) = (&step.flow, step.now);
    expect(flow, &[phase])?;
    if phase == EmailChangeState::ConfirmNew && flow.window_ends_at.is_none_or(|end| now >= end) {
        return Err(ApiError::CodeExpired);
    }
    let tries = ctx.ephemeral.increment(&tries_key(&flow.id, phase), now, flow.expires_at)?;
    if tries > MAX_WRONG_CODES {
        return Err(ApiError::FlowDead);
    }
    let stored = ctx.ephemeral.get(&code_key(&flow.code_ref), now)?.ok_or(ApiError::CodeExpired)?;
    if code.matches(&salt(flow), &stored) {
        return Ok(step);
    }
    let attempts_left = MAX_WRONG_CODES - tries;
    if attempts_left == 0 {
        let dead = EmailChange { state: EmailChangeState::Dead, ..flow.clone() };
        match ctx.store.apply(vec![Op::UpdateEmailChange(dead)]) {
            // Moved on meanwhile (a concurrent right code won): nothing to kill.
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::InvalidCode { attempts_left })
}

fn apply_or_lost(ctx: &Ctx<'_>, id: &str, ops: Vec<Op>) -> Result<(), ApiError> {
    match ctx.store.apply(ops) {
        Err(StoreError::NotFound) => Err(lost_race(ctx, id)),
        other => Ok(other?),
    }
}

/// The used code is no longer looked up (the flow moved on); deleting it only frees space, so a
/// failure here changes no answer.
fn forget(ctx: &Ctx<'_>, flow: &EmailChange) {
    let _ = ctx.ephemeral.delete(&code_key(&flow.code_ref));
}
