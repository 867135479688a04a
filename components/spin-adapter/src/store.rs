//! `gpt-user:accounts/store` on Spin SQLite, with the contract of `wit/store.wit`; the SQL
//! mirrors the host's SQL store so both runtimes behave alike on the same schema.

use gpt_user_core::ports::send_limit_wait;

use crate::db::{get_int, get_text, int, text, Db};
use crate::bindings::exports::gpt_user::accounts::store::{Guest, Op, PendingReplacement, SendLimit};
use crate::bindings::exports::gpt_user::accounts::types::{Error, Secret, SecretPurpose, Timestamp, User, UserStatus};
use crate::bindings::fermyon::spin::sqlite::Value;
use crate::{outbox, Adapter};

const USER_COLUMNS: &str =
    "id, email, pin, passphrase_hash, locale, status, email_verified, consent_at, policy_version, created_at, updated_at";

impl Guest for Adapter {
    fn find_user_by_email(email: String) -> Result<Option<User>, Error> {
        find_user("email", email)
    }

    fn find_user_by_pin(pin: String) -> Result<Option<User>, Error> {
        find_user("pin", pin)
    }

    fn find_secret(hash: String, purpose: SecretPurpose, now: Timestamp) -> Result<Option<Secret>, Error> {
        let db = Db::open()?;
        let found = db.exec(
            "SELECT hash, user_id, created_at, expires_at FROM secrets WHERE hash = ? AND purpose = ? AND expires_at > ?",
            &[text(hash), text(purpose_str(purpose)), int(now)],
        )?;
        Ok(found.rows.first().map(|r| Secret {
            hash: get_text(&r.values, 0),
            purpose,
            user_id: get_text(&r.values, 1),
            created_at: get_int(&r.values, 2),
            expires_at: get_int(&r.values, 3),
        }))
    }

    fn apply(ops: Vec<Op>) -> Result<(), Error> {
        let db = Db::open()?;
        // Queued mail is not delivered here: the flow has not answered yet, and a relay that
        // hangs would hang the answer. The flow calls `mail.flush` after its answer.
        db.transaction(|db| ops.into_iter().try_for_each(|op| apply_one(db, op)))
    }
}

fn find_user(column: &str, value: String) -> Result<Option<User>, Error> {
    let db = Db::open()?;
    let found = db.exec(&format!("SELECT {USER_COLUMNS} FROM users WHERE {column} = ?"), &[text(value)])?;
    found.rows.first().map(|r| user_from(&r.values)).transpose()
}

fn apply_one(db: &Db, op: Op) -> Result<(), Error> {
    match op {
        Op::InsertUser(u) => {
            db.exec(
                &format!("INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                &[
                    text(u.id),
                    text(u.email),
                    text(u.pin),
                    text(u.passphrase_hash),
                    text(u.locale),
                    text(status_str(u.status)),
                    int(i64::from(u.email_verified)),
                    int(u.consent_at),
                    text(u.policy_version),
                    int(u.created_at),
                    int(u.updated_at),
                ],
            )?;
        }
        Op::ReplacePending(PendingReplacement { user_id, pin, passphrase_hash, locale, consent_at, policy_version, now }) => {
            require(db.changed(
                "UPDATE users SET pin = ?, passphrase_hash = ?, locale = ?, consent_at = ?, policy_version = ?, updated_at = ? \
                 WHERE id = ? AND status = 'pending' RETURNING id",
                &[text(pin), text(passphrase_hash), text(locale), int(consent_at), text(policy_version), int(now), text(user_id)],
            )?)?;
        }
        Op::Activate((user_id, now)) => {
            require(db.changed(
                "UPDATE users SET status = 'active', email_verified = 1, updated_at = ? \
                 WHERE id = ? AND status = 'pending' RETURNING id",
                &[int(now), text(user_id)],
            )?)?;
        }
        Op::InsertSecret(s) => {
            db.exec(
                "INSERT INTO secrets (hash, purpose, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                &[text(s.hash), text(purpose_str(s.purpose)), text(s.user_id), int(s.created_at), int(s.expires_at)],
            )?;
        }
        Op::ConsumeSecret((hash, purpose, user_id, now)) => {
            // A conditional DELETE: of two concurrent redemptions only one sees a changed row.
            require(db.changed(
                "DELETE FROM secrets WHERE hash = ? AND purpose = ? AND user_id = ? AND expires_at > ? RETURNING hash",
                &[text(hash), text(purpose_str(purpose)), text(user_id), int(now)],
            )?)?;
        }
        Op::RevokeSecrets((user_id, purpose)) => {
            db.exec("DELETE FROM secrets WHERE user_id = ? AND purpose = ?", &[text(user_id), text(purpose_str(purpose))])?;
        }
        Op::CheckSendLimit(limit) => check_send_limit(db, limit)?,
        Op::EnqueueMail((message, queued_at)) => outbox::insert(db, message, queued_at)?,
    }
    Ok(())
}

/// Core's one throttle rule over this recipient's recent outbox rows of this kind. Runs inside
/// the IMMEDIATE transaction, so concurrent checks for one address are serialised.
fn check_send_limit(db: &Db, l: SendLimit) -> Result<(), Error> {
    let recent = db.exec(
        "SELECT queued_at FROM outbox WHERE recipient = ? AND kind = ? AND queued_at > ?",
        &[text(l.to.clone()), text(l.kind.clone()), int(l.now - l.window)],
    )?;
    let recent: Vec<i64> = recent.rows.iter().map(|r| get_int(&r.values, 0)).collect();
    match send_limit_wait(l.now, l.min_interval, l.max_in_window, l.window, &recent) {
        Some(secs) => Err(Error::Throttled(secs)),
        None => Ok(()),
    }
}

/// A conditional change that found nothing to change is `not-found` (and aborts the apply).
fn require(changed: bool) -> Result<(), Error> {
    if changed { Ok(()) } else { Err(Error::NotFound) }
}

/// A status we do not know is an error, not "pending": reading it as pending would let a
/// sign-up replace the account. The schema's CHECK keeps such rows out; this is the second line.
fn user_from(v: &[Value]) -> Result<User, Error> {
    let status = get_text(v, 5);
    let Some(status) = [UserStatus::Pending, UserStatus::Active, UserStatus::Blocked].into_iter().find(|s| status_str(*s) == status) else {
        eprintln!("spin-adapter: a user row has an unknown status {status:?}");
        return Err(Error::Other("unknown user status".into()));
    };
    Ok(User {
        id: get_text(v, 0),
        email: get_text(v, 1),
        pin: get_text(v, 2),
        passphrase_hash: get_text(v, 3),
        locale: get_text(v, 4),
        status,
        email_verified: get_int(v, 6) != 0,
        consent_at: get_int(v, 7),
        policy_version: get_text(v, 8),
        created_at: get_int(v, 9),
        updated_at: get_int(v, 10),
    })
}

fn status_str(s: UserStatus) -> &'static str {
    match s {
        UserStatus::Pending => "pending",
        UserStatus::Active => "active",
        UserStatus::Blocked => "blocked",
    }
}

/// The same spelling as the host's store, so a database file means the same on both runtimes.
fn purpose_str(p: SecretPurpose) -> &'static str {
    match p {
        SecretPurpose::VerifyEmail => "verify-email",
        SecretPurpose::Profile => "profile",
    }
}
