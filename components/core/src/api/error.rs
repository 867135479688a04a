//! The one place where flow errors become HTTP statuses and localized JSON bodies.

use serde_json::{Map, Value, json};

use super::{Ctx, Response};
use crate::ports::StoreError;
use crate::settings::Accepted;

/// Everything an endpoint can answer besides success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("body is not a JSON object")]
    InvalidJson,
    #[error("body too large")]
    PayloadTooLarge,
    #[error("content type is not JSON")]
    UnsupportedMediaType,
    /// `reason` is a message id of the rule that failed.
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: String, reason: &'static str },
    #[error("consent required")]
    ConsentRequired,
    #[error("email already registered")]
    EmailAlreadyRegistered { recovery_url: String },
    #[error("invalid token")]
    InvalidToken,
    /// A profile token that is malformed, unknown, used or expired: the same `INVALID_TOKEN`
    /// as [`ApiError::InvalidToken`], with the way to a new profile link.
    #[error("invalid profile token")]
    InvalidProfileToken,
    /// No account has the email address or PIN (Update_Init outside conceal mode).
    #[error("user not found")]
    UserNotFound,
    /// The account is pending; a fresh verification email was sent (Update_Init).
    #[error("email not verified")]
    EmailNotVerified,
    #[error("account blocked")]
    AccountBlocked,
    /// Update_Save could not be written; nothing was, and the token still works.
    #[error("save failed")]
    SaveFailed,
    /// Auth_Check: unknown PIN or wrong passphrase (one answer for both).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Auth_Check: the PIN waits after repeated failures.
    #[error("too many attempts")]
    TooManyAttempts { retry_after: u32 },
    /// Auth_Check: 100 consecutive failures; the owner must set a new passphrase.
    #[error("pin locked")]
    PinLocked,
    /// Auth_Check: the passphrase matched a pending account (403, where Update_Init says 409).
    #[error("email not verified")]
    AuthEmailNotVerified,
    /// Email change: no such flow, another user's, or one replaced by a newer start.
    #[error("flow not found")]
    FlowNotFound,
    /// Email change: an hour has passed since start.
    #[error("flow expired")]
    FlowExpired,
    /// Email change: the step does not belong to the state the flow is in.
    #[error("wrong step")]
    WrongStep { state: &'static str },
    /// Email change: a wrong code; `attempts_left` before the flow dies.
    #[error("invalid code")]
    InvalidCode { attempts_left: u32 },
    /// Email change: 5 wrong codes killed the flow; no wait makes it work again.
    #[error("flow dead")]
    FlowDead,
    /// Email change: the code's 10 minutes, or the new address's window, are over.
    #[error("code expired")]
    CodeExpired,
    /// Email change: 5 codes were sent to this address in this flow.
    #[error("too many codes")]
    TooManyCodes,
    /// Email change: another account has the address.
    #[error("email taken")]
    EmailTaken,
    /// Email change: the flow made its 10 `check`s. No wait helps (no Retry-After): the flow can
    /// still send its code to an address (`request-new`), or a new start counts again.
    #[error("too many checks")]
    TooManyChecks,
    #[error("throttled")]
    Throttled { retry_after: u32 },
    /// SignUp_Init: the cap on new pending accounts per hour is reached, for every address alike.
    #[error("sign-ups busy")]
    SignupsBusy { retry_after: u32 },
    #[error("unavailable")]
    Unavailable,
    /// No or a wrong service key (401 with `WWW-Authenticate: Bearer`, RFC 9110).
    #[error("api key required")]
    ApiKeyRequired,
    /// Outside dev mode with no key configured, GPT actions are closed to everyone.
    #[error("no api key configured")]
    ApiKeyNotConfigured,
    #[error("cross-origin request")]
    ForbiddenOrigin,
    #[error("no such route")]
    NotFound,
    /// `allow` is the value of the `Allow` header.
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    /// The authorize page's sign-in: unknown address or wrong passphrase (one answer for both).
    #[error("invalid sign-in")]
    InvalidSignIn,
    /// The authorize page's emailed code is wrong; `attempts_left` before it is spent.
    #[error("invalid sign-in code")]
    SignInCodeInvalid { attempts_left: u32 },
    /// The authorize page's emailed code: none, expired, or 5 wrong ones entered.
    #[error("sign-in code expired")]
    SignInCodeExpired,
    /// The authorize page's client or redirect URI is unknown (SPEC §2.5): nothing is redirected.
    #[error("oauth client invalid")]
    OauthClientInvalid,
    /// A protected resource (`/mcp`) without a service key or a valid access token: `401` with
    /// `WWW-Authenticate: Bearer resource_metadata="…"` (RFC 9728), `error="invalid_token"` if one
    /// was given.
    #[error("authorization required")]
    AuthorizationRequired { resource_metadata: String, invalid_token: bool },
    /// A bug or a broken adapter; details were logged, none are returned.
    #[error("internal error")]
    Internal,
    /// A variable is set to a value the service cannot use; every route answers this until the
    /// operator fixes it. Names the variable and what it accepts, never its value.
    #[error("configuration invalid")]
    ConfigInvalid { variable: &'static str, accepted: Accepted },
}

impl ApiError {
    pub fn invalid(field: &str, reason: &'static str) -> Self {
        Self::InvalidInput { field: field.to_owned(), reason }
    }

    /// `(status, code, message id, instructions id)`.
    fn parts(&self) -> (u16, &'static str, &'static str, Option<&'static str>) {
        match self {
            Self::InvalidJson => (400, "INVALID_JSON", "error-invalid-json", None),
            Self::PayloadTooLarge => (413, "PAYLOAD_TOO_LARGE", "error-payload-too-large", None),
            Self::UnsupportedMediaType => (415, "UNSUPPORTED_MEDIA_TYPE", "error-unsupported-media-type", None),
            Self::InvalidInput { .. } => (422, "INVALID_INPUT", "error-invalid-input", None),
            Self::ConsentRequired => (422, "CONSENT_REQUIRED", "error-consent-required", Some("instructions-consent-required")),
            Self::EmailAlreadyRegistered { .. } => {
                (409, "EMAIL_ALREADY_REGISTERED", "error-email-already-registered", Some("instructions-email-already-registered"))
            }
            Self::InvalidToken => (410, "INVALID_TOKEN", "error-invalid-token", Some("instructions-invalid-token")),
            Self::InvalidProfileToken => (410, "INVALID_TOKEN", "error-invalid-token", Some("instructions-invalid-profile-token")),
            Self::UserNotFound => (404, "USER_NOT_FOUND", "error-user-not-found", Some("instructions-user-not-found")),
            Self::EmailNotVerified => (409, "EMAIL_NOT_VERIFIED", "error-email-not-verified", Some("instructions-email-not-verified")),
            Self::AccountBlocked => (403, "ACCOUNT_BLOCKED", "error-account-blocked", Some("instructions-account-blocked")),
            Self::SaveFailed => (503, "SAVE_FAILED", "error-save-failed", Some("instructions-save-failed")),
            Self::InvalidCredentials => (401, "INVALID_CREDENTIALS", "error-invalid-credentials", Some("instructions-invalid-credentials")),
            Self::TooManyAttempts { .. } => (429, "TOO_MANY_ATTEMPTS", "error-too-many-attempts", Some("instructions-too-many-attempts")),
            Self::PinLocked => (423, "PIN_LOCKED", "error-pin-locked", Some("instructions-pin-locked")),
            Self::AuthEmailNotVerified => (403, "EMAIL_NOT_VERIFIED", "error-email-not-verified", Some("instructions-auth-email-not-verified")),
            Self::FlowNotFound => (404, "FLOW_NOT_FOUND", "error-flow-not-found", Some("instructions-flow-not-found")),
            Self::FlowExpired => (410, "FLOW_EXPIRED", "error-flow-expired", Some("instructions-flow-expired")),
            Self::WrongStep { .. } => (409, "WRONG_STEP", "error-wrong-step", Some("instructions-wrong-step")),
            Self::InvalidCode { .. } => (422, "INVALID_CODE", "error-invalid-code", Some("instructions-invalid-code")),
            Self::FlowDead => (429, "TOO_MANY_ATTEMPTS", "error-flow-dead", Some("instructions-flow-dead")),
            Self::CodeExpired => (410, "CODE_EXPIRED", "error-code-expired", Some("instructions-code-expired")),
            Self::TooManyCodes => (429, "TOO_MANY_CODES", "error-too-many-codes", Some("instructions-too-many-codes")),
            Self::EmailTaken => (409, "EMAIL_TAKEN", "error-email-taken", Some("instructions-email-taken")),
            Self::TooManyChecks => (429, "TOO_MANY_CHECKS", "error-too-many-checks", Some("instructions-too-many-checks")),
            Self::Throttled { .. } => (429, "TOO_MANY_REQUESTS", "error-throttled", None),
            Self::SignupsBusy { .. } => (429, "RATE_LIMITED", "error-signups-busy", Some("instructions-signups-busy")),
            Self::Unavailable => (503, "SERVICE_UNAVAILABLE", "error-unavailable", None),
            Self::ApiKeyRequired => (401, "API_KEY_REQUIRED", "error-api-key-required", None),
            Self::ApiKeyNotConfigured => (403, "API_KEY_NOT_CONFIGURED", "error-api-key-not-configured", None),
            Self::ForbiddenOrigin => (403, "FORBIDDEN_ORIGIN", "error-forbidden-origin", None),
            Self::NotFound => (404, "NOT_FOUND", "error-not-found", None),
            Self::MethodNotAllowed { .. } => (405, "METHOD_NOT_ALLOWED", "error-method-not-allowed", None),
            Self::InvalidSignIn => (401, "INVALID_CREDENTIALS", "error-invalid-sign-in", None),
            Self::SignInCodeInvalid { .. } => (422, "INVALID_CODE", "error-sign-in-code-invalid", None),
            Self::SignInCodeExpired => (410, "CODE_EXPIRED", "error-sign-in-code-expired", None),
            Self::OauthClientInvalid => (400, "OAUTH_CLIENT_INVALID", "error-oauth-client-invalid", Some("instructions-oauth-client-invalid")),
            Self::AuthorizationRequired { invalid_token: false, .. } => (401, "AUTHORIZATION_REQUIRED", "error-authorization-required", None),
            Self::AuthorizationRequired { invalid_token: true, .. } => (401, "INVALID_ACCESS_TOKEN", "error-invalid-access-token", None),
            Self::Internal => (500, "INTERNAL", "error-internal", None),
            Self::ConfigInvalid { .. } => (503, "CONFIG_INVALID", "error-config-invalid", Some("instructions-config-invalid")),
        }
    }

    /// The JSON error response `{code, message, instructions?, field?, ...}` in `locale`.
    pub fn into_response(self, ctx: &Ctx<'_>, locale: &str) -> Response {
        // The refusals only a flow makes, for the runtime's throttle metrics (the others are
        // counted from the store operations that refuse).
        match self {
            Self::TooManyChecks => ctx.metrics.count("too-many-checks"),
            Self::FlowDead => ctx.metrics.count("too-many-codes"),
            _ => {}
        }
        let (status, code, message_id, instructions_id) = self.parts();
        let l10n = ctx.l10n;
        let mut body = Map::new();
        body.insert("code".into(), json!(code));
        let message = match &self {
            Self::InvalidInput { field, reason } => {
                // A rule may name the configured PIN length (`invalid-pin`); others ignore it.
                let reason = l10n.format(locale, reason, &[("length", &ctx.settings.pin_length.to_string())]);
                l10n.format(locale, message_id, &[("field", field), ("reason", &reason)])
            }
            Self::Throttled { retry_after } | Self::TooManyAttempts { retry_after } | Self::SignupsBusy { retry_after } => {
                l10n.format(locale, message_id, &[("seconds", &retry_after.to_string())])
            }
            Self::WrongStep { state } => l10n.format(locale, message_id, &[("state", state)]),
            Self::InvalidCode { attempts_left } | Self::SignInCodeInvalid { attempts_left } => {
                l10n.format(locale, message_id, &[("attempts", &attempts_left.to_string())])
            }
            Self::ConfigInvalid { variable, accepted } => {
                let accepted = match accepted {
                    Accepted::Range { min, max } => l10n.format(locale, "config-accepts-range", &[("min", &min.to_string()), ("max", &max.to_string())]),
                    Accepted::Flag => l10n.format(locale, "config-accepts-flag", &[]),
                    Accepted::HttpUrl => l10n.format(locale, "config-accepts-http-url", &[]),
                    Accepted::SocketAddress => l10n.format(locale, "config-accepts-socket-address", &[]),
                };
                l10n.format(locale, message_id, &[("variable", variable), ("accepted", &accepted)])
            }
            _ => l10n.format(locale, message_id, &[]),
        };
        body.insert("message".into(), json!(message));
        if let Some(id) = instructions_id {
            let url = match &self {
                Self::EmailAlreadyRegistered { recovery_url } => recovery_url.as_str(),
                _ => "",
            };
            let instructions = match &self {
                Self::TooManyAttempts { retry_after } | Self::SignupsBusy { retry_after } => {
                    l10n.format(locale, id, &[("seconds", &retry_after.to_string())])
                }
                _ => l10n.format(locale, id, &[("url", url)]),
            };
            body.insert("instructions".into(), json!(instructions));
        }
        match &self {
            Self::InvalidInput { field, .. } => {
                body.insert("field".into(), json!(field));
            }
            Self::EmailAlreadyRegistered { recovery_url } => {
                body.insert("recovery_url".into(), json!(recovery_url));
            }
            Self::WrongStep { state } => {
                body.insert("state".into(), json!(state));
            }
            Self::InvalidCode { attempts_left } => {
                body.insert("attempts_left".into(), json!(attempts_left));
            }
            Self::ConfigInvalid { variable, .. } => {
                body.insert("variable".into(), json!(variable));
            }
            _ => {}
        }
        let mut response = Response::json(status, &Value::Object(body));
        match self {
            Self::Throttled { retry_after } | Self::TooManyAttempts { retry_after } | Self::SignupsBusy { retry_after } => {
                response.headers.push(("retry-after".into(), retry_after.to_string()))
            }
            Self::ApiKeyRequired => response.headers.push(("www-authenticate".into(), "Bearer".into())),
            Self::AuthorizationRequired { resource_metadata, invalid_token } => {
                let error = if invalid_token { ", error=\"invalid_token\"" } else { "" };
                let challenge = format!("Bearer resource_metadata=\"{resource_metadata}\", scope=\"{}\"{error}", super::oauth::SCOPE);
                response.headers.push(("www-authenticate".into(), challenge));
            }
            Self::ConfigInvalid { .. } => response.headers.push(("retry-after".into(), "60".into())),
            Self::MethodNotAllowed { allow } => response.headers.push(("allow".into(), allow)),
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Throttled(retry_after) => Self::Throttled { retry_after },
            StoreError::Unavailable(_) => Self::Unavailable,
            StoreError::Conflict(_) | StoreError::NotFound | StoreError::Locked | StoreError::Other(_) => Self::Internal,
        }
    }
}
