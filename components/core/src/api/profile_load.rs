//! Update_Load (`POST /api/profile/load`, browser): SPEC §2.2 step 2. Reads, never consumes.
//!
//! ```text
//! token of an active account ─▶ 200 {pin, email, email_verified, locale, status, created_at}
//! token of a blocked account ─▶ 403 ACCOUNT_BLOCKED
//! malformed/unknown/used/expired token ─▶ 410 INVALID_TOKEN
//! ```

use serde_json::json;

use super::time::rfc3339;
use super::{ApiError, Ctx, Failure, Request, Response, json};
use crate::domain::Token;
use crate::ports::{Secret, SecretPurpose, User, UserStatus};

/// Errors about a known account (blocked) speak its language; the others the negotiated one.
pub fn handle(ctx: &Ctx<'_>, req: &Request, negotiated: &str) -> Result<Response, Failure> {
    load(ctx, req).map_err(|(e, known)| (e, known.unwrap_or_else(|| negotiated.to_owned())))
}

fn load(ctx: &Ctx<'_>, req: &Request) -> Result<Response, (ApiError, Option<String>)> {
    let unknown = |e: ApiError| -> (ApiError, Option<String>) { (e, None) };
    let map = json::object(&req.body, &["token"]).map_err(unknown)?;
    let token = parse_token(json::string(&map, "token").map_err(unknown)?).map_err(unknown)?;
    let (_, user) = holder_known(ctx, &token)?;
    Ok(Response::json(200, &json!({
        "pin": user.pin,
        "email": user.email,
        "email_verified": user.email_verified,
        "locale": user.locale,
        "status": user.status.as_str(),
        "created_at": rfc3339(user.created_at),
    })))
}

/// A string that cannot be one of our tokens is as gone as a used one.
pub(super) fn parse_token(raw: &str) -> Result<Token, ApiError> {
    Token::parse(raw).ok_or(ApiError::InvalidProfileToken)
}

/// The live profile token and the account it was issued to, which must still be active.
pub(super) fn holder(ctx: &Ctx<'_>, token: &Token) -> Result<(Secret, User), ApiError> {
    holder_known(ctx, token).map_err(|(e, _)| e)
}

/// [`holder`], and with an error the locale of the account the token names, if it names one.
pub(super) fn holder_known(ctx: &Ctx<'_>, token: &Token) -> Result<(Secret, User), (ApiError, Option<String>)> {
    let unknown = |e: ApiError| -> (ApiError, Option<String>) { (e, None) };
    let secret = ctx.store.find_secret(&token.hash().0, SecretPurpose::Profile, ctx.env.now()).map_err(|e| unknown(e.into()))?;
    let secret = secret.ok_or(unknown(ApiError::InvalidProfileToken))?;
    let user = ctx.store.find_user_by_id(&secret.user_id).map_err(|e| unknown(e.into()))?.ok_or(unknown(ApiError::InvalidProfileToken))?;
    match user.status {
        UserStatus::Active => Ok((secret, user)),
        UserStatus::Blocked => Err((ApiError::AccountBlocked, Some(user.locale))),
        // Profile tokens are issued to active accounts only, and none goes back to pending.
        UserStatus::Pending => Err(unknown(ApiError::InvalidProfileToken)),
    }
}
