//! SignUp_Verify (`POST /api/signup/verify`, browser only): SPEC §2.1 step 2.
//! The token is consumed and the user activated in one transaction, so of many concurrent
//! redemptions exactly one wins. The page sends the PIN it showed the reader (from the link's
//! fragment); a PIN that is not the token's account's refuses the token, so what the reader
//! checked is what gets activated.

use serde_json::json;

use super::{ApiError, Ctx, Failure, Request, Response, json};
use crate::domain::Token;
use crate::ports::{Op, SecretPurpose, StoreError};

pub fn handle(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<Response, Failure> {
    verify(ctx, req).map_err(|e| (e, locale.to_owned())).map(|()| {
        Response::json(200, &json!({
            "status": "active",
            "message": ctx.l10n.format(locale, "signup-verified", &[]),
        }))
    })
}

fn verify(ctx: &Ctx<'_>, req: &Request) -> Result<(), ApiError> {
    let map = json::object(&req.body, &["token", "pin"])?;
    let raw = json::string(&map, "token")?;
    let pin = json::opt_string(&map, "pin")?;
    let token = Token::parse(raw).ok_or(ApiError::InvalidToken)?;
    let hash = token.hash().0;
    let now = ctx.env.now();
    let secret = ctx.store.find_secret(&hash, SecretPurpose::VerifyEmail, now)?.ok_or(ApiError::InvalidToken)?;
    if let Some(pin) = pin {
        let owner = ctx.store.find_user_by_pin(pin)?;
        if owner.is_none_or(|u| u.id != secret.user_id) {
            return Err(ApiError::InvalidToken);
        }
    }
    let ops = vec![
        Op::ConsumeSecret(hash, SecretPurpose::VerifyEmail, secret.user_id.clone(), now),
        Op::Activate(secret.user_id, now),
    ];
    match ctx.store.apply(ops) {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(ApiError::InvalidToken),
        Err(e) => Err(e.into()),
    }
}
