//! SignUp_Verify (`POST /api/signup/verify`, browser only): SPEC §2.1 step 2.
//! The token is consumed and the user activated in one transaction, so of many concurrent
//! redemptions exactly one wins. The page sends the PIN it showed the reader (from the link's
//! fragment); a PIN that is not the token's account's refuses the token, so what the reader
//! checked is what gets activated. The answer speaks the account's language (SPEC §3: the user's
//! locale when known), whatever the browser prefers; errors, where no account is known, the
//! negotiated one.

use serde_json::json;

use super::{ApiError, Ctx, Failure, Request, Response, json};
use crate::audit::Kind;
use crate::domain::Token;
use crate::ports::{Op, SecretPurpose, StoreError, User};

pub fn handle(ctx: &Ctx<'_>, req: &Request, negotiated: &str) -> Result<Response, Failure> {
    let (user, oauth) = verify(ctx, req).map_err(|e| (e, negotiated.to_owned()))?;
    let mut answer = json!({
        "status": "active",
        "message": ctx.l10n.format(&user.locale, "signup-verified", &[]),
    });
    // A sign-up on the OAuth authorize page: this browser goes on to the consent step.
    if let Some(next) = oauth.and_then(|id| super::oauth::authorize::after_verification(ctx, &id, &user)) {
        answer["continue"] = json!(next);
        answer["message"] = json!(ctx.l10n.format(&user.locale, "signup-verified-continue", &[]));
    }
    Ok(Response::json(200, &answer))
}

/// Activates the token's account; the account, and the authorization its link finishes if any.
fn verify(ctx: &Ctx<'_>, req: &Request) -> Result<(User, Option<String>), ApiError> {
    let map = json::object(&req.body, &["token", "pin", "oauth"])?;
    let oauth = json::opt_string(&map, "oauth")?.map(str::to_owned);
    let raw = json::string(&map, "token")?;
    let pin = json::opt_string(&map, "pin")?;
    let token = Token::parse(raw).ok_or(ApiError::InvalidToken)?;
    let hash = token.hash().0;
    let now = ctx.env.now();
    let secret = ctx.store.find_secret(&hash, SecretPurpose::VerifyEmail, now)?.ok_or(ApiError::InvalidToken)?;
    let owner = match pin {
        Some(pin) => ctx.store.find_user_by_pin(pin)?,
        None => ctx.store.find_user_by_id(&secret.user_id)?,
    };
    let user = owner.filter(|u| u.id == secret.user_id).ok_or(ApiError::InvalidToken)?;
    let ops = vec![
        Op::ConsumeSecret(hash, SecretPurpose::VerifyEmail, secret.user_id.clone(), now),
        Op::Activate(secret.user_id, now),
        ctx.event(Kind::AccountVerified, &user.id, &user.email, None),
    ];
    match ctx.store.apply(ops) {
        Ok(()) => Ok((User { status: crate::ports::UserStatus::Active, ..user }, oauth)),
        Err(StoreError::NotFound) => Err(ApiError::InvalidToken),
        Err(e) => Err(e.into()),
    }
}
