//! The token endpoint (`POST /oauth/token`: `authorization_code` with PKCE, `refresh_token` with
//! rotation) and the revocation endpoint (`POST /oauth/revoke`, RFC 7009).
//!
//! ```text
//! client authenticated (public: client_id; operator client: its secret, Basic or in the body)
//! authorization_code ─ code of this client, unexpired, redirect_uri equal, S256(verifier) = challenge
//!     ├─ already spent ─▶ the grant is revoked (what the first use issued too) ─▶ 400 invalid_grant
//!     └─ spend it ─▶ access (1 h) + refresh (30 d)
//! refresh_token ─ of this client, unexpired
//!     ├─ already spent ─▶ the grant (the whole family) is revoked ─▶ 400 invalid_grant
//!     └─ spend it ─▶ new access + new refresh
//! ```
//! A spend is a conditional change: of two concurrent uses of one code or refresh token one wins,
//! and the other is a reuse.

use base64::Engine as _;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::{ACCESS_TTL_MS, Form, REFRESH_TTL_MS, oauth_error, s256, sha256_hex};
use crate::api::{Ctx, Failure, Request, Response};
use crate::audit::Kind;
use crate::domain::Token;
use crate::ports::{self, OauthClient, OauthGrant, OauthToken, Op, StoreError, TokenKind, UserStatus};

/// An RFC 6749 error: status, `error`, description.
type OauthError = (u16, &'static str, &'static str);

const UNAVAILABLE: OauthError = (503, "temporarily_unavailable", "the store is unavailable; try again");

fn answer(result: Result<Response, OauthError>) -> Result<Response, Failure> {
    Ok(result.unwrap_or_else(|(status, error, description)| oauth_error(status, error, description)))
}

/// `POST /oauth/token`.
pub fn handle(ctx: &Ctx<'_>, req: &Request, _: &str) -> Result<Response, Failure> {
    answer(token(ctx, req))
}

fn token(ctx: &Ctx<'_>, req: &Request) -> Result<Response, OauthError> {
    let form = Form::parse(req).ok_or((400, "invalid_request", "the body must be application/x-www-form-urlencoded"))?;
    let get = |name| form.get(name).map_err(|_| (400, "invalid_request", "a parameter is given more than once"));
    let client = client(ctx, req, &form)?;
    let (presented, kind) = match get("grant_type")? {
        Some("authorization_code") => (get("code")?.ok_or((400, "invalid_request", "code is required"))?, TokenKind::Code),
        Some("refresh_token") => (get("refresh_token")?.ok_or((400, "invalid_request", "refresh_token is required"))?, TokenKind::Refresh),
        Some(_) => return Err((400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")),
        None => return Err((400, "invalid_request", "grant_type is required")),
    };
    let invalid_grant = (400, "invalid_grant", "the code or refresh token is invalid, expired, used or revoked");
    let hash = Token::parse(presented).ok_or(invalid_grant)?.hash().0;
    let (stored, grant) = ctx.store.find_oauth_token(&hash).map_err(|_| UNAVAILABLE)?.ok_or(invalid_grant)?;
    if stored.kind != kind || grant.client_id != client.id {
        return Err(invalid_grant);
    }
    let now = ctx.env.now();
    if stored.spent_at.is_some() {
        // A second use: someone has a copy. What was issued from it goes (RFC 9700 §4.14.2).
        revoke_grant(ctx, &grant, "reuse")?;
        return Err(invalid_grant);
    }
    if stored.expires_at <= now {
        return Err(invalid_grant);
    }
    if kind == TokenKind::Code {
        if get("redirect_uri")?.is_none_or(|r| Some(r) != stored.redirect_uri.as_deref()) {
            return Err((400, "invalid_grant", "redirect_uri must be the one of the authorization request"));
        }
        match (&stored.code_challenge, get("code_verifier")?) {
            (None, _) => {}
            (Some(challenge), Some(verifier)) if s256(verifier).is_some_and(|v| bool::from(v.as_bytes().ct_eq(challenge.as_bytes()))) => {}
            (Some(_), _) => return Err((400, "invalid_grant", "code_verifier does not match the code_challenge")),
        }
    }
    if get("resource")?.is_some_and(|r| r != grant.resource) {
        return Err((400, "invalid_target", "the grant is for another resource"));
    }
    let user = ctx.store.find_user_by_id(&grant.user_id).map_err(|_| UNAVAILABLE)?.ok_or(invalid_grant)?;
    if user.status != UserStatus::Active {
        return Err(invalid_grant);
    }
    let access = Token::from_random(ports::random(ctx.env));
    let refresh = Token::from_random(ports::random(ctx.env));
    let issued = |token: &Token, kind, ttl| OauthToken {
        hash: token.hash().0,
        kind,
        grant_id: grant.id.clone(),
        created_at: now,
        expires_at: now + ttl,
        spent_at: None,
        redirect_uri: None,
        code_challenge: None,
    };
    let ops = vec![
        Op::SpendOauthToken(hash, now),
        Op::InsertOauthToken(issued(&access, TokenKind::Access, ACCESS_TTL_MS)),
        Op::InsertOauthToken(issued(&refresh, TokenKind::Refresh, REFRESH_TTL_MS)),
    ];
    match ctx.store.apply(ops) {
        Ok(()) => {}
        // A concurrent use spent it first: this one is the reuse.
        Err(StoreError::NotFound) => {
            revoke_grant(ctx, &grant, "reuse")?;
            return Err(invalid_grant);
        }
        Err(_) => return Err(UNAVAILABLE),
    }
    let mut response = Response::json(200, &json!({
        "access_token": access.as_str(),
        "token_type": "Bearer",
        "expires_in": ACCESS_TTL_MS / 1000,
        "refresh_token": refresh.as_str(),
        "scope": grant.scope,
    }));
    response.headers.push(("pragma".into(), "no-cache".into()));
    Ok(response)
}

/// Revokes a grant and records why, against its account.
fn revoke_grant(ctx: &Ctx<'_>, grant: &OauthGrant, why: &str) -> Result<(), OauthError> {
    let mut ops = vec![Op::RevokeOauthGrant(grant.id.clone())];
    if let Some(user) = ctx.store.find_user_by_id(&grant.user_id).map_err(|_| UNAVAILABLE)? {
        ops.push(ctx.event(Kind::OauthRevoked, &user.id, &user.email, Some(format!("{why}: {}", grant.client_id))));
    }
    ctx.store.apply(ops).map_err(|_| UNAVAILABLE)
}

/// The calling client: `client_id` (a public client), or an operator client's id and secret, by
/// HTTP Basic (RFC 6749 §2.3.1: each part form-encoded) or in the body.
fn client(ctx: &Ctx<'_>, req: &Request, form: &Form) -> Result<OauthClient, OauthError> {
    let invalid_client = (401, "invalid_client", "client authentication failed");
    let get = |name| form.get(name).map_err(|_| (400, "invalid_request", "a parameter is given more than once"));
    let basic = req.header("authorization").and_then(basic_credentials);
    let (id, secret) = match (basic, get("client_id")?, get("client_secret")?) {
        (Some(_), _, Some(_)) => return Err((400, "invalid_request", "use one way to authenticate the client")),
        (Some((id, _)), Some(body_id), _) if id != body_id => return Err(invalid_client),
        (Some((id, secret)), _, _) => (id, Some(secret)),
        (None, Some(id), secret) => (id.to_owned(), secret.map(str::to_owned)),
        (None, None, _) => return Err(invalid_client),
    };
    let client = super::client::find(ctx, &id).map_err(|_| UNAVAILABLE)?.ok_or(invalid_client)?;
    match (&client.secret_hash, secret) {
        (None, None) => Ok(client),
        (Some(stored), Some(given)) if bool::from(sha256_hex(&given).as_bytes().ct_eq(stored.as_bytes())) => Ok(client),
        _ => Err(invalid_client),
    }
}

/// `Basic base64(urlencode(id):urlencode(secret))`.
pub(super) fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(value.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| url::form_urlencoded::parse(format!("v={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    Some((unescape(id)?, unescape(secret)?))
}

/// `POST /oauth/revoke` `token=…`: the grant of a code, access or refresh token of this client
/// goes, with all its tokens. `200` for a token that is unknown or another client's too (RFC 7009 §2.2).
pub fn revoke(ctx: &Ctx<'_>, req: &Request, _: &str) -> Result<Response, Failure> {
    answer((|| {
        let form = Form::parse(req).ok_or((400, "invalid_request", "the body must be application/x-www-form-urlencoded"))?;
        let client = client(ctx, req, &form)?;
        let presented = form.get("token").map_err(|_| (400, "invalid_request", "token is given more than once"))?;
        let presented = presented.ok_or((400, "invalid_request", "token is required"))?;
        if let Some(hash) = Token::parse(presented).map(|t| t.hash().0) {
            if let Some((_, grant)) = ctx.store.find_oauth_token(&hash).map_err(|_| UNAVAILABLE)? {
                if grant.client_id == client.id {
                    revoke_grant(ctx, &grant, "revoked by the client")?;
                }
            }
        }
        let mut response = Response::json(200, &json!({}));
        response.headers.push(("pragma".into(), "no-cache".into()));
        Ok(response)
    })())
}
