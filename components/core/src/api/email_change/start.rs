//! `start` and `resend`: a code to the address the flow is confirming.

use super::*;
use crate::api::Request;

/// `POST /api/email-change/start {token}` → `{flow, state: "confirm_current", …}`; the code goes
/// to the current address. The user's other flows are deleted.
pub fn start(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<Response, Failure> {
    run(req, locale, |map| {
        let token = parse_token(json::string(map, "token")?)?;
        let (_, user) = holder(ctx, &token)?;
        let now = ctx.env.now();
        let mut flow = EmailChange {
            id: new_id(ctx),
            user_id: user.id.clone(),
            state: EmailChangeState::ConfirmCurrent,
            new_email: None,
            code_ref: String::new(),
            sends: 1,
            last_send_at: now,
            window_ends_at: None,
            created_at: now,
            expires_at: now + FLOW_TTL_MS,
            version: 0,
        };
        let code_ends = now + CODE_TTL_MS;
        let mail = send_code(ctx, &user, &mut flow, &user.email, "email-change-current", now, code_ends)?;
        let started = ctx.event(crate::audit::Kind::EmailChangeStarted, &user.id, &user.email, None);
        ctx.store.apply([vec![Op::StartEmailChange(flow.clone()), started], mail].concat())?;
        let mut body = sent(ctx, locale, &flow, &user.email, now, code_ends);
        body["flow"] = json!(flow.id);
        Ok(Response::json(200, &body))
    }, &["token"])
}

/// `POST /api/email-change/resend {token, flow}`: a new code to the address being confirmed; the
/// previous code stops working, the count of wrong codes goes on.
pub fn resend(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<Response, Failure> {
    run(req, locale, |map| {
        let Step { user, flow, now } = load(ctx, map)?;
        expect(&flow, &[EmailChangeState::ConfirmCurrent, EmailChangeState::ConfirmNew])?;
        let (to, kind, code_ends) = match (flow.state, &flow.new_email, flow.window_ends_at) {
            (EmailChangeState::ConfirmNew, Some(to), Some(window_ends)) => {
                if now >= window_ends {
                    return Err(ApiError::CodeExpired);
                }
                (to.clone(), "email-change-new", (now + CODE_TTL_MS).min(window_ends))
            }
            (EmailChangeState::ConfirmCurrent, _, _) => (user.email.clone(), "email-change-current", now + CODE_TTL_MS),
            // confirm_new without its address or window: not a record we write.
            _ => return Err(ApiError::Internal),
        };
        let wait = flow.last_send_at + RESEND_AFTER_MS - now;
        if wait > 0 {
            return Err(ApiError::Throttled { retry_after: u32::try_from((wait + 999) / 1000).unwrap_or(1) });
        }
        if flow.sends >= MAX_SENDS {
            return Err(ApiError::TooManyCodes);
        }
        let mut next = EmailChange { sends: flow.sends + 1, last_send_at: now, ..flow.clone() };
        let mail = match flow.state {
            // Conceal mode: as at request-new, another account's address gets a decoy, not a code.
            EmailChangeState::ConfirmNew if ctx.settings.conceal_accounts => {
                let owner = other_owner(ctx, &user, &to)?;
                send_new(ctx, &user, &mut next, &to, owner.as_ref(), now, code_ends)?
            }
            _ => send_code(ctx, &user, &mut next, &to, kind, now, code_ends)?,
        };
        match apply_send(ctx, &next, mail) {
            Ok(()) => Ok(Response::json(200, &sent(ctx, locale, &next, &to, now, code_ends))),
            // A concurrent resend just sent one.
            Err(StoreError::NotFound) => Err(ApiError::Throttled { retry_after: (RESEND_AFTER_MS / 1000) as u32 }),
            Err(e) => Err(e.into()),
        }
    }, &["token", "flow"])
}
