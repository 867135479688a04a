//! The resource side: who an access token names, for `/mcp` (SPEC §2.5). A token is accepted only
//! by the resource it was issued for, unexpired, of a grant not revoked, of an active account.

use crate::api::Ctx;
use crate::domain::Token;
use crate::ports::{StoreError, TokenKind, User, UserStatus};

/// `401` for a protected resource's caller without a usable credential: where to get a token.
pub fn required(ctx: &Ctx<'_>, invalid_token: bool, metadata_path: &str) -> crate::api::ApiError {
    let resource_metadata = format!("{}{metadata_path}", ctx.settings.base_url);
    crate::api::ApiError::AuthorizationRequired { resource_metadata, invalid_token }
}

/// The account an access token for `resource` names; `Ok(None)` for a token that is unknown,
/// expired, revoked, another resource's, or of an account that is no longer active.
pub fn user_of(ctx: &Ctx<'_>, bearer: &str, resource: &str) -> Result<Option<User>, StoreError> {
    let Some(token) = Token::parse(bearer) else { return Ok(None) };
    let Some((stored, grant)) = ctx.store.find_oauth_token(&token.hash().0)? else { return Ok(None) };
    if stored.kind != TokenKind::Access || stored.expires_at <= ctx.env.now() || grant.resource != resource {
        return Ok(None);
    }
    Ok(ctx.store.find_user_by_id(&grant.user_id)?.filter(|u| u.status == UserStatus::Active))
}
