//! SignUp_Init (`POST /api/signup/init`, GPT action): SPEC §2.1 step 1.
//!
//! ```text
//! no user ─────────────▶ insert pending user + token + mail ─▶ 201 {pin}
//! pending user ────────▶ replace credentials and PIN, revoke tokens, new token + mail ─▶ 201 {new pin}
//! active/blocked user ─▶ 409 EMAIL_ALREADY_REGISTERED {recovery_url}
//! ```
//! Conceal mode: every outcome (each also when throttled) answers the same 200, and Argon2 runs
//! on every path, so neither the answer nor its time tells whether the address has an account.
//!
//! A replaced pending registration gets a new PIN (pre-account hijack): the verification email
//! and the verify page show the PIN the link belongs to, so a mailbox owner whose chat gave
//! another PIN sees that someone signed up with their address after them.

use crate::audit::Kind;
use serde_json::{Value, json};

use super::mail::{HOUR_MS, render, send_limit};
use super::openapi::{OperationDoc, EMAIL_PATTERN, PASSPHRASE_PATTERN, error_response, gpt_action_errors, object_response};
use crate::settings::Settings;
use super::{ApiError, Ctx, Failure, Request, Response, json};
use crate::domain::{Email, Locale, Passphrase, Pin, Token};
use crate::domain::Invalid;
use crate::ports::{self, Op, PendingReplacement, Secret, SignupCap, SecretPurpose, StoreError, User, UserStatus};

/// Verification links live 24 h.
pub const VERIFY_TTL_MS: i64 = 24 * 3600 * 1000;
/// Fresh PINs to try when a random one is taken.
const PIN_ATTEMPTS: usize = 16;

pub(super) struct Input {
    pub(super) email: Email,
    pub(super) locale: Locale,
    pub(super) passphrase: Passphrase,
    /// A sign-up from the OAuth authorize page: the id of the authorization its verification
    /// link finishes (`#…&oauth=<id>`).
    pub(super) oauth: Option<String>,
}

pub fn handle(ctx: &Ctx<'_>, req: &Request, negotiated: &str) -> Result<Response, Failure> {
    let (input, locale) = parse(ctx, req, negotiated)?;
    sign_up(ctx, &input).map_err(|e| (e, locale))
}

/// Type checks first (answered in the negotiated language), then the rules of each field
/// (answered in the language the user asked for, once it is known to be valid).
fn parse(ctx: &Ctx<'_>, req: &Request, negotiated: &str) -> Result<(Input, String), Failure> {
    let at = |locale: &str| {
        let locale = locale.to_owned();
        move |e: ApiError| (e, locale)
    };
    let map = json::object(&req.body, &["email", "consent", "locale", "passphrase"]).map_err(at(negotiated))?;
    let email = json::string(&map, "email").map_err(at(negotiated))?;
    let locale = json::string(&map, "locale").map_err(at(negotiated))?;
    let passphrase = json::string(&map, "passphrase").map_err(at(negotiated))?;
    let consent = json::opt_bool(&map, "consent").map_err(at(negotiated))?;

    let locale = Locale::parse(locale).map_err(|Invalid(r)| at(negotiated)(ApiError::invalid("locale", r)))?;
    let lang = locale.as_str();
    if consent != Some(true) {
        return Err(at(lang)(ApiError::ConsentRequired));
    }
    let email = Email::parse(email).map_err(|Invalid(r)| at(lang)(ApiError::invalid("email", r)))?;
    let passphrase = Passphrase::parse(passphrase, ctx.settings.passphrase_min, ctx.settings.passphrase_max)
        .map_err(|Invalid(r)| at(lang)(ApiError::invalid("passphrase", r)))?;
    Ok((Input { email, locale, passphrase, oauth: None }, lang.to_owned()))
}

pub(super) fn sign_up(ctx: &Ctx<'_>, input: &Input) -> Result<Response, ApiError> {
    check_cap(ctx)?;
    // Hashed before anything is looked up, on every path: conceal mode relies on equal timing.
    let hash = ctx.argon2(|| input.passphrase.hash(ports::random(ctx.env), ctx.settings.argon2).0);
    let outcome = match ctx.store.find_user_by_email(input.email.as_str())? {
        Some(user) if user.status == UserStatus::Pending => replace_pending(ctx, input, &user, hash),
        Some(user) => already_registered(ctx, input, &user),
        None => create(ctx, input, hash),
    };
    match outcome {
        // A throttled email is not sent; saying so would tell an account from none.
        Err(ApiError::Throttled { .. }) if ctx.settings.conceal_accounts => Ok(concealed(ctx, input)),
        other => other,
    }
}

/// The cap on new pending accounts per hour (`max_pending_signups_per_hour`), before any Argon2
/// run and whatever the address: past it every sign-up waits alike, so the answer tells nothing
/// about an address (conceal mode too), and a flood neither burns CPU nor fills the PIN space.
fn check_cap(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    let max_pending = ctx.settings.max_pending_signups_per_hour;
    if max_pending == 0 {
        return Ok(());
    }
    match ctx.store.apply(vec![Op::CheckSignupCap(SignupCap { now: ctx.env.now(), window: HOUR_MS, max_pending })]) {
        Err(StoreError::Throttled(retry_after)) => Err(ApiError::SignupsBusy { retry_after }),
        other => other.map_err(ApiError::from),
    }
}

fn create(ctx: &Ctx<'_>, input: &Input, passphrase_hash: String) -> Result<Response, ApiError> {
    let now = ctx.env.now();
    let id = crate::domain::token_hex(&ports::random::<16>(ctx.env));
    for _ in 0..PIN_ATTEMPTS {
        let pin = Pin::generate(ctx.settings.pin_length, || ports::random::<1>(ctx.env)[0]);
        let user = User {
            id: id.clone(),
            email: input.email.as_str().to_owned(),
            pin: pin.as_str().to_owned(),
            passphrase_hash: passphrase_hash.clone(),
            locale: input.locale.as_str().to_owned(),
            status: UserStatus::Pending,
            email_verified: false,
            consent_at: now,
            policy_version: ctx.settings.policy_version.clone(),
            created_at: now,
            updated_at: now,
        };
        let mut ops = vec![Op::InsertUser(user), ctx.event(Kind::AccountCreated, &id, input.email.as_str(), None)];
        ops.extend(link_ops(ctx, input, &id, pin.as_str())?);
        match ctx.store.apply(ops) {
            Ok(()) => return Ok(created(ctx, input, &pin)),
            Err(StoreError::Conflict(field)) if field == "pin" => continue,
            // Someone signed up with this address a moment ago: treat it as theirs to replace or refuse.
            Err(StoreError::Conflict(field)) if field == "email" => {
                return match ctx.store.find_user_by_email(input.email.as_str())? {
                    Some(user) if user.status == UserStatus::Pending => replace_pending(ctx, input, &user, passphrase_hash),
                    Some(user) => already_registered(ctx, input, &user),
                    None => Err(ApiError::Unavailable),
                };
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Unavailable)
}

/// The last sign-up wins until the mailbox owner verifies: new passphrase, locale, consent and
/// PIN (the old one is released), old links revoked.
fn replace_pending(ctx: &Ctx<'_>, input: &Input, user: &User, passphrase_hash: String) -> Result<Response, ApiError> {
    let now = ctx.env.now();
    for _ in 0..PIN_ATTEMPTS {
        let pin = Pin::generate(ctx.settings.pin_length, || ports::random::<1>(ctx.env)[0]);
        let mut ops = vec![
            Op::ReplacePending(PendingReplacement {
                user_id: user.id.clone(),
                pin: pin.as_str().to_owned(),
                passphrase_hash: passphrase_hash.clone(),
                locale: input.locale.as_str().to_owned(),
                consent_at: now,
                policy_version: ctx.settings.policy_version.clone(),
                now,
            }),
            Op::RevokeSecrets(user.id.clone(), SecretPurpose::VerifyEmail),
            ctx.event(Kind::SignupRepeated, &user.id, &user.email, None),
        ];
        ops.extend(link_ops(ctx, input, &user.id, pin.as_str())?);
        match ctx.store.apply(ops) {
            Ok(()) => return Ok(created(ctx, input, &pin)),
            Err(StoreError::Conflict(field)) if field == "pin" => continue,
            // Verified between our read and our write.
            Err(StoreError::NotFound) => return already_registered(ctx, input, user),
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Unavailable)
}

fn already_registered(ctx: &Ctx<'_>, input: &Input, user: &User) -> Result<Response, ApiError> {
    if !ctx.settings.conceal_accounts {
        return Err(ApiError::EmailAlreadyRegistered { recovery_url: recovery_url(ctx) });
    }
    let link = recovery_url(ctx);
    let mail = render(ctx, &user.locale, "signup-existing", &user.email, &[("link", &link)])?;
    let ops = vec![Op::CheckSendLimit(send_limit(ctx, &mail)), Op::EnqueueMail(mail, ctx.env.now())];
    match ctx.store.apply(ops) {
        // A throttled notice is dropped silently: answering differently would reveal the account.
        Ok(()) | Err(StoreError::Throttled(_)) => Ok(concealed(ctx, input)),
        Err(e) => Err(e.into()),
    }
}

fn link_ops(ctx: &Ctx<'_>, input: &Input, user_id: &str, pin: &str) -> Result<Vec<Op>, ApiError> {
    verification_ops(ctx, input.locale.as_str(), input.email.as_str(), user_id, pin, input.oauth.as_deref())
}

/// Operations that send a fresh verification link to `email` in `locale`: throttle, secret,
/// mail. Also Update_Init's answer to a pending account. `oauth`: the authorization the link
/// finishes (a sign-up on the authorize page).
pub(super) fn verification_ops(ctx: &Ctx<'_>, locale: &str, email: &str, user_id: &str, pin: &str, oauth: Option<&str>) -> Result<Vec<Op>, ApiError> {
    let now = ctx.env.now();
    let token = Token::from_random(ports::random(ctx.env));
    // The PIN rides along in the fragment so the page can show which account the link activates,
    // and the locale so the page speaks the account's language in any browser.
    let mut link = format!("{}/signup/verify#token={}&pin={pin}&lang={locale}", ctx.settings.base_url, token.as_str());
    if let Some(id) = oauth {
        link.push_str(&format!("&oauth={id}"));
    }
    let hours = (VERIFY_TTL_MS / HOUR_MS).to_string();
    let mail = render(ctx, locale, "signup-verification", email, &[
        ("link", &link),
        ("pin", pin),
        ("valid-hours", &hours),
    ])?;
    Ok(vec![
        Op::CheckSendLimit(send_limit(ctx, &mail)),
        Op::InsertSecret(Secret {
            hash: token.hash().0,
            purpose: SecretPurpose::VerifyEmail,
            user_id: user_id.to_owned(),
            created_at: now,
            expires_at: now + VERIFY_TTL_MS,
        }),
        Op::EnqueueMail(mail, now),
    ])
}

/// Where a person who already has an account starts recovering it: the profile page (without
/// a token it asks for a profile link; the link adds one in the fragment).
pub(super) fn recovery_url(ctx: &Ctx<'_>) -> String {
    format!("{}/profile", ctx.settings.base_url)
}

fn created(ctx: &Ctx<'_>, input: &Input, pin: &Pin) -> Response {
    if ctx.settings.conceal_accounts {
        return concealed(ctx, input);
    }
    let locale = input.locale.as_str();
    let message = ctx.l10n.format(locale, "signup-created", &[("email", input.email.as_str())]);
    let instructions = ctx.l10n.format(locale, "signup-created-instructions", &[("pin", pin.as_str())]);
    Response::json(201, &json!({
        "pin": pin.as_str(),
        "status": "pending",
        "message": message,
        "instructions": instructions,
    }))
}

/// Conceal mode: the same answer whether or not the address has an account; the PIN is in the email.
fn concealed(ctx: &Ctx<'_>, input: &Input) -> Response {
    let locale = input.locale.as_str();
    Response::json(200, &json!({
        "status": "pending",
        "message": ctx.l10n.format(locale, "signup-concealed", &[("email", input.email.as_str())]),
        "instructions": ctx.l10n.format(locale, "signup-concealed-instructions", &[]),
    }))
}

/// The GPT action's contract in `/openapi.json` (`signUpInit`). Consequential: it creates an
/// account and sends an email, so ChatGPT asks the user before calling it.
pub fn operation(settings: &Settings) -> Value {
    let mut responses = gpt_action_errors();
    let created = "Pending account created; PIN returned, verification email sent.";
    responses.insert("201".into(), object_response(created, &["pin", "status", "message", "instructions"]));
    let concealed = "Accepted (privacy mode): the outcome is in the email.";
    responses.insert("200".into(), object_response(concealed, &["status", "message", "instructions"]));
    responses.insert("409".into(), error_response("The email already has an account; body has recovery_url."));
    responses.insert("422".into(), error_response("Invalid input or consent not given; field names the problem."));
    responses.insert("429".into(), error_response("Too many emails to this address, too many sign-ups this hour, or RATE_LIMITED; see Retry-After."));
    OperationDoc {
        id: "signUpInit",
        summary: "Start a sign-up",
        description: "Registers an account with the user's email, consent, locale and passphrase (15-256 characters). Returns the public PIN; the user must open the verification link sent by email. Never repeat the passphrase back.",
        consequential: true,
        request: json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["email", "consent", "locale", "passphrase"],
            "properties": {
                "email": {"type": "string", "maxLength": 254, "pattern": EMAIL_PATTERN, "description": "The user's email address."},
                "consent": {"type": "boolean", "const": true, "description": "True only if the user agreed to the processing of personal data (see /privacy); without it there is no sign-up."},
                "locale": {"type": "string", "enum": ["en", "ru"], "description": "Language for emails and pages."},
                "passphrase": {"type": "string", "minLength": settings.passphrase_min, "maxLength": settings.passphrase_max, "pattern": PASSPHRASE_PATTERN, "description": "Secret phrase the user will give with the PIN to prove the account is theirs."}
            }
        }),
        responses,
    }
    .build()
}
