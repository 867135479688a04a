//! Update_Save (`POST /api/profile/save`, browser): SPEC §2.2 step 3.
//!
//! ```text
//! invalid input ──────────────▶ 422 (nothing read or written: the token stays usable)
//! bad/used/expired token ─────▶ 410 INVALID_TOKEN
//! blocked account ────────────▶ 403 ACCOUNT_BLOCKED
//! token of an active account ─▶ one apply: consume token, update profile, revoke the other
//!                               profile tokens (+ passphrase-changed notice) ─▶ 200 {message, locale}
//!                               store unavailable ─▶ 503 SAVE_FAILED (nothing written)
//! ```
//! The token is consumed inside the transaction that saves, so of many concurrent saves with
//! one token exactly one wins; the others find it gone (410).

use crate::audit::Kind;
use serde_json::json;

use super::mail::render;
use super::profile_load::{holder_known, parse_token};
use super::signup_init::recovery_url;
use super::{ApiError, Ctx, Failure, Request, Response, json};
use crate::domain::{Invalid, Locale, Passphrase, Token};
use crate::ports::{self, Op, ProfileUpdate, Secret, SecretPurpose, StoreError, User};

struct Input {
    token: Token,
    locale: Option<Locale>,
    passphrase: Option<Passphrase>,
}

/// Errors once the token named an account speak the account's language; before, the negotiated one.
pub fn handle(ctx: &Ctx<'_>, req: &Request, negotiated: &str) -> Result<Response, Failure> {
    let input = parse(ctx, &req.body).map_err(|e| (e, negotiated.to_owned()))?;
    // Whether the read or the write failed, nothing was written and the token still works.
    save(ctx, input).map_err(|(e, known)| {
        let locale = known.unwrap_or_else(|| negotiated.to_owned());
        match e {
            ApiError::Unavailable => (ApiError::SaveFailed, locale),
            e => (e, locale),
        }
    })
}

fn parse(ctx: &Ctx<'_>, body: &[u8]) -> Result<Input, ApiError> {
    let map = json::object(body, &["token", "locale", "passphrase"])?;
    let token = json::string(&map, "token")?;
    let locale = json::opt_string(&map, "locale")?;
    let passphrase = json::opt_string(&map, "passphrase")?;
    let token = parse_token(token)?;
    let locale = locale.map(|raw| Locale::parse(raw).map_err(|Invalid(r)| ApiError::invalid("locale", r))).transpose()?;
    let (min, max) = (ctx.settings.passphrase_min, ctx.settings.passphrase_max);
    let passphrase = passphrase
        .map(|raw| Passphrase::parse(raw, min, max).map_err(|Invalid(r)| ApiError::invalid("passphrase", r)))
        .transpose()?;
    if locale.is_none() && passphrase.is_none() {
        return Err(ApiError::invalid("locale", "invalid-nothing-to-save"));
    }
    Ok(Input { token, locale, passphrase })
}

/// Saves and answers in the account's (possibly new) locale; an error with the account's locale
/// once the token named it.
fn save(ctx: &Ctx<'_>, input: Input) -> Result<Response, (ApiError, Option<String>)> {
    let (secret, user) = holder_known(ctx, &input.token)?;
    let known = user.locale.clone();
    save_for(ctx, input, secret, user).map_err(|e| (e, Some(known)))
}

fn save_for(ctx: &Ctx<'_>, input: Input, secret: Secret, user: User) -> Result<Response, ApiError> {
    let now = ctx.env.now();
    let locale_changed = input.locale.as_ref().is_some_and(|l| l.as_str() != user.locale);
    let locale = input.locale.map_or(user.locale, |l| l.as_str().to_owned());
    // Hashed only once the token is known good: Argon2 is not spent on guesses.
    let passphrase_hash = input.passphrase.map(|p| ctx.argon2(|| p.hash(ports::random(ctx.env), ctx.settings.argon2).0));
    let changed = passphrase_hash.is_some();
    let mut ops = vec![Op::ConsumeSecret(secret.hash, SecretPurpose::Profile, user.id.clone(), now)];
    if changed {
        // Recorded only if the PIN is locked now: the new passphrase below lifts the lock.
        ops.push(crate::audit::only_if_pin_locked(ctx.event(Kind::AuthUnlocked, &user.id, &user.email, None)));
        ops.push(ctx.event(Kind::PassphraseChanged, &user.id, &user.email, None));
        // Every chat signed in with the old passphrase must sign in again (SPEC §2.5).
        ops.push(Op::RevokeUserOauth(user.id.clone()));
    }
    if locale_changed {
        ops.push(ctx.event(Kind::LocaleChanged, &user.id, &user.email, Some(locale.clone())));
    }
    ops.extend([
        Op::UpdateProfile(ProfileUpdate { user_id: user.id.clone(), locale: locale.clone(), passphrase_hash, now }),
        Op::RevokeSecrets(user.id, SecretPurpose::Profile),
    ]);
    if changed {
        // A security notice goes out whatever the send limit says: no CheckSendLimit.
        let mail = render(ctx, &locale, "passphrase-changed", &user.email, &[("link", &recovery_url(ctx))])?;
        ops.push(Op::EnqueueMail(mail, now));
    }
    match ctx.store.apply(ops) {
        Ok(()) => {
            let id = if changed { "profile-saved-passphrase" } else { "profile-saved" };
            Ok(Response::json(200, &json!({"message": ctx.l10n.format(&locale, id, &[]), "locale": locale})))
        }
        // Consumed by a concurrent save, or the account changed state under us.
        Err(StoreError::NotFound) => Err(ApiError::InvalidProfileToken),
        Err(e) => Err(e.into()),
    }
}
