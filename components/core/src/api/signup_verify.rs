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
use crate::ports::{Op, SecretPurpose, StoreError};

pub fn handle(ctx: &Ctx<'_>, req: &Request, negotiated: &str) -> Result<Response, Failure> {
    let locale = verify(ctx, req).map_err(|e| (e, negotiated.to_owned()))?;
    Ok(Response::json(200, &json!({
        "status": "active",
        "message": ctx.l10n.format(&locale, "signup-verified", &[]),
    })))
}

/// Activates the token's account; its locale.
fn verify(ctx: &Ctx<'_>, req: &Request) -> Result<String, ApiError> {
    let map = json::object(&req.body, &["token", "pin"])?;
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
        Ok(()) => Ok(user.locale),
        Err(StoreError::NotFound) => Err(ApiError::InvalidToken),
        Err(e) => Err(e.into()),
    }
}
