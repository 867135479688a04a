//! `gpt-user:accounts/store` in SQL, for every runtime: the reads, and each operation of `apply`
//! with the contract of `wit/store.wit`. The runtime opens the transaction (SQLite:
//! `BEGIN IMMEDIATE`, so a read-then-write transaction cannot deadlock) and runs
//! [`apply_one`] for each operation in it.

use gpt_user_core::ports::{
    AUTH_LOCK_AFTER, AuthAttempt, Op, PendingReplacement, ProfileUpdate, Secret, SecretPurpose, SendLimit, SignupCap, StoreError, Timestamp, User,
    UserStatus, auth_attempt_refusal, send_limit_wait, signup_cap_wait,
};

use crate::{Conn, Dialect, Param, Row, audit, email_change, oauth, outbox};

const USER_COLUMNS: &str =
    "id, email, pin, passphrase_hash, locale, status, email_verified, consent_at, policy_version, created_at, updated_at";

/// How a user is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKey {
    Id,
    /// Trimmed, lower-cased.
    Email,
    Pin,
}

impl UserKey {
    /// The `users` column it looks in.
    pub fn column(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Email => "email",
            Self::Pin => "pin",
        }
    }
}

pub async fn find_user<C: Conn>(conn: &mut C, key: UserKey, value: &str) -> Result<Option<User>, StoreError> {
    let rows = conn.query(&format!("SELECT {USER_COLUMNS} FROM users WHERE {} = $1", key.column()), vec![value.into()]).await?;
    rows.first().map(user_from).transpose()
}

/// An unexpired secret by hash and purpose (not consumed).
pub async fn find_secret<C: Conn>(conn: &mut C, hash: &str, purpose: SecretPurpose, now: Timestamp) -> Result<Option<Secret>, StoreError> {
    let rows = conn
        .query(
            "SELECT hash, user_id, created_at, expires_at FROM secrets WHERE hash = $1 AND purpose = $2 AND expires_at > $3",
            vec![hash.into(), purpose_str(purpose).into(), now.into()],
        )
        .await?;
    rows.first()
        .map(|r| Ok(Secret { hash: r.text(0)?, purpose, user_id: r.text(1)?, created_at: r.int(2)?, expires_at: r.int(3)? }))
        .transpose()
}

/// One operation of an `apply`, inside the caller's transaction. A conditional change that finds
/// nothing to change is `NotFound`, which aborts the whole `apply`.
pub async fn apply_one<C: Conn>(conn: &mut C, op: Op) -> Result<(), StoreError> {
    match op {
        Op::InsertUser(u) => {
            // A PIN counted as unknown before starts clean with its account.
            reset_auth_failures(conn, &u.pin).await?;
            let status = status_str(u.status);
            conn.execute(&format!("INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"), vec![
                u.id.into(),
                u.email.into(),
                u.pin.into(),
                u.passphrase_hash.into(),
                u.locale.into(),
                status.into(),
                i64::from(u.email_verified).into(),
                u.consent_at.into(),
                u.policy_version.into(),
                u.created_at.into(),
                u.updated_at.into(),
            ])
            .await
        }
        Op::ReplacePending(PendingReplacement { user_id, pin, passphrase_hash, locale, consent_at, policy_version, now }) => {
            reset_auth_failures(conn, &pin).await?;
            changed(conn, "UPDATE users SET pin = $1, passphrase_hash = $2, locale = $3, consent_at = $4, policy_version = $5, \
                 updated_at = $6 WHERE id = $7 AND status = 'pending' RETURNING id", vec![
                pin.into(),
                passphrase_hash.into(),
                locale.into(),
                consent_at.into(),
                policy_version.into(),
                now.into(),
                user_id.into(),
            ])
            .await
        }
        Op::Activate(user_id, now) => {
            changed(
                conn,
                "UPDATE users SET status = 'active', email_verified = 1, updated_at = $1 WHERE id = $2 AND status = 'pending' RETURNING id",
                vec![now.into(), user_id.into()],
            )
            .await
        }
        Op::UpdateProfile(ProfileUpdate { user_id, locale, passphrase_hash, now }) => {
            // A new passphrase (SPEC §2.4) resets the PIN's failures and lifts a lock; a save of the
            // locale alone leaves both, or anyone who can open the mailbox's link for a moment
            // would clear a guesser's delay without replacing the guessed-at passphrase.
            if passphrase_hash.is_some() {
                conn.execute("DELETE FROM auth_failures WHERE pin IN (SELECT pin FROM users WHERE id = $1)", vec![user_id.as_str().into()]).await?;
            }
            changed(
                conn,
                "UPDATE users SET locale = $1, passphrase_hash = COALESCE($2, passphrase_hash), updated_at = $3 \
                 WHERE id = $4 AND status = 'active' RETURNING id",
                vec![locale.into(), passphrase_hash.into(), now.into(), user_id.into()],
            )
            .await
        }
        Op::InsertSecret(s) => {
            conn.execute(
                "INSERT INTO secrets (hash, purpose, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                vec![s.hash.into(), purpose_str(s.purpose).into(), s.user_id.into(), s.created_at.into(), s.expires_at.into()],
            )
            .await
        }
        Op::ConsumeSecret(hash, purpose, user_id, now) => {
            // A conditional DELETE: of two concurrent redemptions only one sees a deleted row.
            changed(
                conn,
                "DELETE FROM secrets WHERE hash = $1 AND purpose = $2 AND user_id = $3 AND expires_at > $4 RETURNING hash",
                vec![hash.into(), purpose_str(purpose).into(), user_id.into(), now.into()],
            )
            .await
        }
        Op::RevokeSecrets(user_id, purpose) => {
            conn.execute("DELETE FROM secrets WHERE user_id = $1 AND purpose = $2", vec![user_id.into(), purpose_str(purpose).into()]).await
        }
        Op::CheckSendLimit(limit) => check_send_limit(conn, limit).await,
        Op::CheckSignupCap(cap) => check_signup_cap(conn, cap).await,
        Op::CountAuthAttempt(attempt) => count_auth_attempt(conn, attempt).await,
        Op::ResetAuthFailures(pin) => reset_auth_failures(conn, &pin).await,
        Op::NotifyLock(pin) => {
            changed(
                conn,
                "UPDATE auth_failures SET lock_notified = 1 WHERE pin = $1 AND failures >= $2 AND lock_notified = 0 RETURNING pin",
                vec![pin.into(), AUTH_LOCK_AFTER.into()],
            )
            .await
        }
        Op::Rehash(user_id, old, new) => {
            changed(conn, "UPDATE users SET passphrase_hash = $1 WHERE id = $2 AND passphrase_hash = $3 RETURNING id", vec![
                new.into(),
                user_id.into(),
                old.into(),
            ])
            .await
        }
        Op::StartEmailChange(flow) => email_change::start(conn, flow).await,
        Op::UpdateEmailChange(flow) => email_change::update(conn, flow).await,
        Op::ChangeEmail(user_id, email, now) => email_change::change_email(conn, &user_id, &email, now).await,
        Op::RevokeAllSecrets(user_id) => conn.execute("DELETE FROM secrets WHERE user_id = $1", vec![user_id.into()]).await,
        // A no-op update: PostgreSQL takes the row lock (waiting for a transaction that changes
        // the row, then judging its new version), SQLite's write transaction serialises anyway.
        Op::GuardUser(user_id, email, status) => {
            changed(
                conn,
                "UPDATE users SET updated_at = updated_at WHERE id = $1 AND email = $2 AND status = $3 RETURNING id",
                vec![user_id.into(), email.into(), status_str(status).into()],
            )
            .await
        }
        Op::EnqueueMail(message, queued_at) => outbox::enqueue(conn, message, queued_at).await,
        Op::RecordEvent(event) => audit::record(conn, event).await,
        Op::InsertOauthClient(client) => oauth::insert_client(conn, client).await,
        Op::InsertOauthGrant(grant) => oauth::insert_grant(conn, grant).await,
        Op::InsertOauthToken(token) => oauth::insert_token(conn, token).await,
        Op::SpendOauthToken(hash, now) => oauth::spend(conn, &hash, now).await,
        Op::RevokeOauthGrant(grant) => oauth::revoke_grant(conn, &grant).await,
        Op::RevokeUserOauth(user) => oauth::revoke_user(conn, &user).await,
        Op::CheckRegistrationCap(cap) => oauth::check_registration_cap(conn, cap).await,
    }
}

/// An email change by id.
pub async fn find_email_change<C: Conn>(conn: &mut C, id: &str) -> Result<Option<gpt_user_core::ports::EmailChange>, StoreError> {
    email_change::find(conn, id).await
}

/// Runs a conditional change written with `RETURNING`; `NotFound` if it changed no row.
async fn changed<C: Conn>(conn: &mut C, sql: &str, params: Vec<Param>) -> Result<(), StoreError> {
    if conn.query(sql, params).await?.is_empty() { Err(StoreError::NotFound) } else { Ok(()) }
}

/// The core's one throttle rule over this recipient's recent outbox rows of this kind, inside the
/// transaction that queues the message, so concurrent checks for one address are serialised
/// (SQLite: the write lock of `BEGIN IMMEDIATE`; PostgreSQL: an advisory lock until commit).
async fn check_send_limit<C: Conn>(conn: &mut C, l: SendLimit) -> Result<(), StoreError> {
    lock_key(conn, format!("{}|{}", l.to, l.kind)).await?;
    let rows = conn
        .query(
            "SELECT queued_at FROM outbox WHERE recipient = $1 AND kind = $2 AND queued_at > $3",
            vec![l.to.as_str().into(), l.kind.as_str().into(), (l.now - l.window).into()],
        )
        .await?;
    let recent = rows.iter().map(|r| r.int(0)).collect::<Result<Vec<_>, _>>()?;
    match send_limit_wait(l.now, l.min_interval, l.max_in_window, l.window, &recent) {
        Some(secs) => Err(StoreError::Throttled(secs)),
        None => Ok(()),
    }
}

/// The core's cap rule over the pending accounts created within the window, counted in the
/// database every host and instance shares (index `users_status_created`). Not serialised:
/// concurrent sign-ups at the cap may pass it by a few.
async fn check_signup_cap<C: Conn>(conn: &mut C, cap: SignupCap) -> Result<(), StoreError> {
    let rows = conn
        .query(
            "SELECT COUNT(*), MIN(created_at) FROM users WHERE status = 'pending' AND created_at > $1",
            vec![(cap.now - cap.window).into()],
        )
        .await?;
    let (count, oldest) = match rows.first() {
        Some(r) => (r.int(0)?, r.opt_int(1)?),
        None => (0, None),
    };
    match signup_cap_wait(cap.now, cap.window, cap.max_pending, u64::try_from(count).unwrap_or(0), oldest) {
        Some(secs) => Err(StoreError::Throttled(secs)),
        None => Ok(()),
    }
}

/// Serialises the transactions that touch one key until commit: PostgreSQL by an advisory lock
/// (`::text`: sqlx's Any driver cannot decode `void`); SQLite's `BEGIN IMMEDIATE` already holds
/// the one write lock.
async fn lock_key<C: Conn>(conn: &mut C, key: String) -> Result<(), StoreError> {
    if conn.dialect() == Dialect::Postgres {
        conn.query("SELECT pg_advisory_xact_lock(hashtext($1))::text", vec![key.into()]).await?;
    }
    Ok(())
}

/// The core's Auth_Check rule over the PIN's count; the attempt is counted (as a failure, until a
/// success resets it) before the passphrase is checked, so concurrent guesses cannot slip past.
async fn count_auth_attempt<C: Conn>(conn: &mut C, AuthAttempt { pin, now }: AuthAttempt) -> Result<(), StoreError> {
    lock_key(conn, format!("auth|{pin}")).await?;
    let rows = conn.query("SELECT failures, last_failure_at FROM auth_failures WHERE pin = $1", vec![pin.as_str().into()]).await?;
    let (failures, last) = match rows.first() {
        Some(r) => (r.int(0)?, r.int(1)?),
        None => (0, 0),
    };
    if let Some(refusal) = auth_attempt_refusal(failures, last, now) {
        return Err(refusal.into());
    }
    conn.execute(
        "INSERT INTO auth_failures (pin, failures, last_failure_at) VALUES ($1, 1, $2)          ON CONFLICT (pin) DO UPDATE SET failures = auth_failures.failures + 1, last_failure_at = excluded.last_failure_at",
        vec![pin.into(), now.into()],
    )
    .await
}

async fn reset_auth_failures<C: Conn>(conn: &mut C, pin: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM auth_failures WHERE pin = $1", vec![pin.into()]).await
}

/// A status we do not know is an error, not "pending": reading it as pending would let a sign-up
/// replace the account. The schema's CHECK keeps such rows out; this is the second line.
fn user_from<R: Row>(r: &R) -> Result<User, StoreError> {
    let status = r.text(5)?;
    let status = status_from(&status).ok_or_else(|| StoreError::Other(format!("unknown user status {status:?}")))?;
    Ok(User {
        id: r.text(0)?,
        email: r.text(1)?,
        pin: r.text(2)?,
        passphrase_hash: r.text(3)?,
        locale: r.text(4)?,
        status,
        email_verified: r.int(6)? != 0,
        consent_at: r.int(7)?,
        policy_version: r.text(8)?,
        created_at: r.int(9)?,
        updated_at: r.int(10)?,
    })
}

pub(crate) fn status_from(s: &str) -> Option<UserStatus> {
    [UserStatus::Pending, UserStatus::Active, UserStatus::Blocked].into_iter().find(|status| status.as_str() == s)
}

fn status_str(s: UserStatus) -> &'static str {
    s.as_str()
}

/// How a purpose is spelled in the `secrets` table.
fn purpose_str(p: SecretPurpose) -> &'static str {
    match p {
        SecretPurpose::VerifyEmail => "verify-email",
        SecretPurpose::Profile => "profile",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_decoder_refuses_what_it_does_not_know() {
        for status in [UserStatus::Pending, UserStatus::Active, UserStatus::Blocked] {
            assert_eq!(status_from(status_str(status)), Some(status));
        }
        for unknown in ["", "frozen", "Pending", "active "] {
            assert_eq!(status_from(unknown), None, "{unknown:?}");
        }
    }
}
