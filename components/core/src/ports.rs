//! The ports a flow needs; each mirrors a WIT interface of `gpt-user:accounts` (see `wit/`).

/// Milliseconds since the Unix epoch.
pub type Timestamp = i64;

/// Housekeeping deletes pending accounts this long after their last sign-up attempt, and
/// delivered mail this long after delivery (SPEC §2.1.3); every runtime uses this one value.
pub const STALE_AFTER_MS: i64 = 7 * 24 * 3600 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Pending,
    Active,
    Blocked,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Blocked => "blocked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub pin: String,
    pub passphrase_hash: String,
    pub locale: String,
    pub status: UserStatus,
    pub email_verified: bool,
    pub consent_at: Timestamp,
    pub policy_version: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretPurpose {
    VerifyEmail,
    Profile,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub hash: String,
    pub purpose: SecretPurpose,
    pub user_id: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub to: String,
    pub kind: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendLimit {
    pub to: String,
    pub kind: String,
    pub now: Timestamp,
    pub min_interval: i64,
    pub max_in_window: u32,
    pub window: i64,
}

/// The cap on new pending accounts (SignUp_Init): at most `max_pending` created within `window`
/// ms before `now` that are still pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignupCap {
    pub now: Timestamp,
    pub window: i64,
    pub max_pending: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingReplacement {
    pub user_id: String,
    /// The new PIN: a replaced registration never keeps the PIN an earlier caller was given.
    pub pin: String,
    pub passphrase_hash: String,
    pub locale: String,
    pub consent_at: Timestamp,
    pub policy_version: String,
    pub now: Timestamp,
}

/// New profile values of an active account (Update_Save).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub user_id: String,
    pub locale: String,
    /// A new Argon2id PHC string, or `None` to keep the passphrase.
    pub passphrase_hash: Option<String>,
    pub now: Timestamp,
}

/// One Auth_Check attempt on a PIN (SPEC §2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthAttempt {
    pub pin: String,
    pub now: Timestamp,
}

/// Where an email change stands (SPEC §2.3); see `api::email_change` for the diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailChangeState {
    ConfirmCurrent,
    EnterNew,
    ConfirmNew,
    Done,
    Dead,
}

impl EmailChangeState {
    /// The stable snake_case name (stored, and shown in `WRONG_STEP` answers).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConfirmCurrent => "confirm_current",
            Self::EnterNew => "enter_new",
            Self::ConfirmNew => "confirm_new",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::ConfirmCurrent, Self::EnterNew, Self::ConfirmNew, Self::Done, Self::Dead].into_iter().find(|st| st.as_str() == s)
    }
}

/// An email change as stored (`wit/store.wit`, record `email-change`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChange {
    pub id: String,
    pub user_id: String,
    pub state: EmailChangeState,
    pub new_email: Option<String>,
    /// Names the live code in the [`Ephemeral`] store; new for every code sent.
    pub code_ref: String,
    /// Codes sent to the address being confirmed now.
    pub sends: u32,
    pub last_send_at: Timestamp,
    pub window_ends_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// The version this copy was read at; an update is written only if it is still current.
    pub version: u32,
}

/// Free Auth_Check failures per PIN before each further attempt waits.
pub const AUTH_FREE_FAILURES: i64 = 5;
/// Consecutive failures after which a PIN is locked until its owner sets a new passphrase.
pub const AUTH_LOCK_AFTER: i64 = 100;
const AUTH_BASE_DELAY_MS: i64 = 1000;
const AUTH_MAX_DELAY_MS: i64 = 15 * 60 * 1000;

/// Why an Auth_Check attempt may not run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRefusal {
    Locked,
    /// Seconds to wait.
    Wait(u32),
}

/// The one throttling rule of Auth_Check, given the PIN's consecutive `failures` and the time of
/// the last one: free for the first 5, then a delay doubling from 1 s up to 15 min after each
/// failure, and locked from the 100th on. Every store adapter applies it in `count-auth-attempt`.
pub fn auth_attempt_refusal(failures: i64, last_failure_at: Timestamp, now: Timestamp) -> Option<AuthRefusal> {
    if failures >= AUTH_LOCK_AFTER {
        return Some(AuthRefusal::Locked);
    }
    if failures < AUTH_FREE_FAILURES {
        return None;
    }
    let delay = AUTH_BASE_DELAY_MS.saturating_mul(1i64 << (failures - AUTH_FREE_FAILURES).min(30)).min(AUTH_MAX_DELAY_MS);
    // At most one delay: an attempt that started before the last failure was counted (concurrent
    // checks) waits no longer than one that started after it.
    let wait = (last_failure_at + delay - now).min(delay);
    (wait > 0).then(|| AuthRefusal::Wait(u32::try_from((wait + 999) / 1000).unwrap_or(u32::MAX)))
}

impl From<AuthRefusal> for StoreError {
    fn from(r: AuthRefusal) -> Self {
        match r {
            AuthRefusal::Locked => Self::Locked,
            AuthRefusal::Wait(secs) => Self::Throttled(secs),
        }
    }
}

/// What kind of OAuth client (SPEC §2.5): registered by itself (RFC 7591), made by the operator
/// (confidential, with a secret), or read from a client ID metadata document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    Registered,
    Operator,
    Metadata,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::Operator => "operator",
            Self::Metadata => "metadata",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Registered, Self::Operator, Self::Metadata].into_iter().find(|k| k.as_str() == s)
    }
}

/// An OAuth client as stored (`wit/store.wit`'s `oauth-client`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OauthClient {
    pub id: String,
    pub kind: ClientKind,
    pub name: String,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// SHA-256 (hex) of an operator client's secret.
    pub secret_hash: Option<String>,
    pub created_at: Timestamp,
    /// A metadata document's cache expiry.
    pub expires_at: Option<Timestamp>,
}

/// One authorization a person gave a client: the family of its code and tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OauthGrant {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    /// The resource (RFC 8707) its tokens are for.
    pub resource: String,
    pub scope: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Code,
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Code, Self::Access, Self::Refresh].into_iter().find(|k| k.as_str() == s)
    }
}

/// An authorization code, access or refresh token as stored: its SHA-256 only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OauthToken {
    pub hash: String,
    pub kind: TokenKind,
    pub grant_id: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// When a code or refresh token was used (it is kept, so that a second use is recognised).
    pub spent_at: Option<Timestamp>,
    /// A code's redirect URI and PKCE challenge.
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
}

/// One change within [`Store::apply`]; see `wit/store.wit` for the contract of each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    InsertUser(User),
    ReplacePending(PendingReplacement),
    /// `(user id, now)`: pending → active, email verified.
    Activate(String, Timestamp),
    InsertSecret(Secret),
    /// `(hash, purpose, user id, now)`.
    ConsumeSecret(String, SecretPurpose, String, Timestamp),
    RevokeSecrets(String, SecretPurpose),
    CheckSendLimit(SendLimit),
    /// `throttled(seconds)` while the cap on new pending accounts is reached.
    CheckSignupCap(SignupCap),
    /// An active user's locale and (if given) passphrase; `NotFound` unless the user is active.
    UpdateProfile(ProfileUpdate),
    CountAuthAttempt(AuthAttempt),
    /// `pin`.
    ResetAuthFailures(String),
    /// `pin`.
    NotifyLock(String),
    /// `(user id, old hash, new hash)`.
    Rehash(String, String, String),
    /// A new email change; the user's other email changes are deleted.
    StartEmailChange(EmailChange),
    /// Written only if the stored version is still the record's; `NotFound` otherwise.
    UpdateEmailChange(EmailChange),
    /// `(user id, new email, now)`: an active user's address, marked verified; `Conflict("email")`.
    ChangeEmail(String, String, Timestamp),
    /// `user id`: every secret of the user.
    RevokeAllSecrets(String),
    /// `(message, queued at)`.
    EnqueueMail(Message, Timestamp),
    /// `(user id, email, status)`: the user's row lock, nothing changed; `NotFound` unless the
    /// user still has this address and status (a link issued after it cannot race an address
    /// change, a block or a delete).
    GuardUser(String, String, UserStatus),
    /// An entry of the audit trail ([`crate::audit`]).
    RecordEvent(Event),
    /// A new OAuth client; `Conflict("id")` if the id is taken (a metadata document's is replaced).
    InsertOauthClient(OauthClient),
    InsertOauthGrant(OauthGrant),
    InsertOauthToken(OauthToken),
    /// `(hash, now)`: a code or refresh token is used: it must be unspent, unexpired and of a live
    /// grant; `NotFound` otherwise, so of two concurrent uses one wins.
    SpendOauthToken(String, Timestamp),
    /// `grant id`: the grant and every code and token of it.
    RevokeOauthGrant(String),
    /// `user id`: every grant of the user, with its codes and tokens.
    RevokeUserOauth(String),
    /// Fails with `throttled(seconds)` while `max` clients registered themselves in the `window`
    /// ms before `now`.
    CheckRegistrationCap(RegistrationCap),
}

/// The cap on self-registered OAuth clients (RFC 7591 registration is open to anyone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationCap {
    pub now: Timestamp,
    pub window: i64,
    pub max: u32,
}

/// Who made an audited change (`wit/store.wit`'s `actor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Chat,
    Browser,
    Operator,
    System,
}

impl Actor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Browser => "browser",
            Self::Operator => "operator",
            Self::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Chat, Self::Browser, Self::Operator, Self::System].into_iter().find(|a| a.as_str() == s)
    }
}

/// One entry of the audit trail as stored (`wit/store.wit`'s `event`; made by [`crate::audit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub at: Timestamp,
    pub user_id: String,
    /// `sha256:<hex>` of the trimmed, lower-cased address ([`crate::audit::email_hash`]).
    pub email_hash: String,
    pub kind: String,
    pub actor: Actor,
    pub client: Option<String>,
    pub request_id: Option<String>,
    pub detail: Option<String>,
    /// Recorded only if the user's PIN is locked at this point of the transaction.
    pub if_pin_locked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("conflict on {0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error("throttled for {0} s")]
    Throttled(u32),
    #[error("locked")]
    Locked,
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store error: {0}")]
    Other(String),
}

/// How long to wait (seconds, at least 1) before another message may be queued under a send
/// limit (`min_interval` ms between two, at most `max_in_window` per `window` ms), given the queue
/// times of the recent messages of that kind to that address; `None` if it may go now.
/// The one rule every store adapter applies for `check-send-limit`.
pub fn send_limit_wait(now: Timestamp, min_interval: i64, max_in_window: u32, window: i64, recent: &[Timestamp]) -> Option<u32> {
    let in_window: Vec<Timestamp> = recent.iter().copied().filter(|t| *t > now - window).collect();
    let secs = |ms: i64| u32::try_from((ms + 999) / 1000).unwrap_or(u32::MAX).max(1);
    let gap_wait = in_window.iter().max().map(|last| last + min_interval - now).filter(|w| *w > 0);
    let count_wait = (in_window.len() >= max_in_window as usize)
        .then(|| in_window.iter().min().map(|first| first + window - now))
        .flatten()
        .filter(|w| *w > 0);
    match (gap_wait, count_wait) {
        (None, None) => None,
        (a, b) => Some(secs(a.unwrap_or(0).max(b.unwrap_or(0)))),
    }
}

/// How long to wait (seconds, at least 1) until fewer than `max_pending` of the pending accounts
/// created within `window` before `now` remain in it, given how many there are and when the
/// oldest of them was created; `None` if another may be created now. The one rule every store
/// adapter applies for `check-signup-cap`.
pub fn signup_cap_wait(now: Timestamp, window: i64, max_pending: u32, in_window: u64, oldest: Option<Timestamp>) -> Option<u32> {
    if in_window < u64::from(max_pending) {
        return None;
    }
    let wait = oldest.map_or(window, |t| t + window - now);
    Some(u32::try_from((wait.max(1) + 999) / 1000).unwrap_or(u32::MAX).max(1))
}

/// Durable state (`gpt-user:accounts/store`).
pub trait Store {
    fn find_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;
    fn find_user_by_pin(&self, pin: &str) -> Result<Option<User>, StoreError>;
    fn find_user_by_id(&self, id: &str) -> Result<Option<User>, StoreError>;
    fn find_secret(&self, hash: &str, purpose: SecretPurpose, now: Timestamp) -> Result<Option<Secret>, StoreError>;
    fn find_email_change(&self, id: &str) -> Result<Option<EmailChange>, StoreError>;
    fn find_oauth_client(&self, id: &str) -> Result<Option<OauthClient>, StoreError>;
    /// A code or token by hash, whatever its state, with its grant (none once the grant is revoked).
    fn find_oauth_token(&self, hash: &str) -> Result<Option<(OauthToken, OauthGrant)>, StoreError>;
    /// All operations in one transaction; the first failure rolls back everything.
    fn apply(&self, ops: Vec<Op>) -> Result<(), StoreError>;
}

/// Short-lived values with an expiry on the caller's clock (`gpt-user:accounts/ephemeral`):
/// email-change codes and their attempt counters.
pub trait Ephemeral {
    fn put(&self, key: &str, value: &str, now: Timestamp, expires_at: Timestamp) -> Result<(), StoreError>;
    fn get(&self, key: &str, now: Timestamp) -> Result<Option<String>, StoreError>;
    /// The new count; a missing or expired counter starts again at 1.
    fn increment(&self, key: &str, now: Timestamp, expires_at: Timestamp) -> Result<u32, StoreError>;
    fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// Outbound HTTPS of a small public document: an OAuth client ID metadata document (SPEC §2.5).
/// The runtime enforces what the flow cannot see: the resolved address (never private, loopback or
/// link-local outside dev mode), no redirects, TLS. On our host and on Spin this is
/// `wasi:http/client@0.3.0`, each runtime applying its address rules. Async: an instance serves
/// many requests at once, and a slow document server must hold up only the request that named it.
pub trait Fetch {
    /// `GET url` with `accept: application/json`: the body of a `200`, at most `max_bytes`, all
    /// within `timeout_ms`.
    fn get_json<'a>(&'a self, url: &'a str, max_bytes: usize, timeout_ms: u32) -> Fetching<'a>;
}

/// A fetch under way ([`Fetch::get_json`]).
pub type Fetching<'a> = std::pin::Pin<Box<dyn Future<Output = Result<Vec<u8>, FetchError>> + 'a>>;

/// Why a fetch gave no document; said in the log, never to the person beyond "cannot be read".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The runtime refused the address (private, loopback, link-local) or the URL.
    Refused(String),
    /// Unreachable, TLS, a status other than 200, too large or too slow.
    Failed(String),
}

/// No outbound access (tests of the core, and runtimes without it).
pub struct NoFetch;

impl Fetch for NoFetch {
    fn get_json<'a>(&'a self, _: &'a str, _: usize, _: u32) -> Fetching<'a> {
        Box::pin(std::future::ready(Err(FetchError::Refused("no outbound access".into()))))
    }
}

/// Texts (`gpt-user:accounts/l10n`).
pub trait L10n {
    fn negotiate(&self, requested: &str) -> String;
    fn format(&self, locale: &str, id: &str, args: &[(&str, &str)]) -> String;
    fn render_email(&self, locale: &str, kind: &str, to: &str, args: &[(&str, &str)]) -> Result<Message, String>;
}

/// Time and randomness, injected so tests control them.
pub trait Env {
    fn now(&self) -> Timestamp;
    fn fill_random(&self, buf: &mut [u8]);
    /// A monotonic clock in nanoseconds, for durations; by default the wall clock's milliseconds.
    fn monotonic_ns(&self) -> u64 {
        u64::try_from(self.now()).unwrap_or(0).saturating_mul(1_000_000)
    }
}

/// What a flow reports for its runtime's metrics (`wit/metrics.wit`); the names are the fixed
/// ones listed there.
pub trait Metrics {
    fn observe(&self, name: &'static str, seconds: f64);
    fn count(&self, name: &'static str);
}

/// Reports nothing (unit tests, the benchmark's native baseline).
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn observe(&self, _: &'static str, _: f64) {}
    fn count(&self, _: &'static str) {}
}

/// `N` random bytes from an [`Env`].
pub fn random<const N: usize>(env: &dyn Env) -> [u8; N] {
    let mut buf = [0u8; N];
    env.fill_random(&mut buf);
    buf
}
