//! The core's ports over the WIT imports.

use gpt_user_core::ports::{self as core, Env, L10n, Store, StoreError, Timestamp};
use gpt_user_core::Settings;

use crate::gpt_user::accounts::{l10n, store, types};
use crate::wasi::config::store as config;

pub struct WitStore;
pub struct WitL10n;
pub struct WasiEnv;

pub fn settings() -> Settings {
    Settings::from_lookup(|key| config::get(key).ok().flatten())
}

impl Store for WitStore {
    fn find_user_by_email(&self, email: &str) -> Result<Option<core::User>, StoreError> {
        Ok(store::find_user_by_email(email).map_err(error)?.map(user_from))
    }

    fn find_user_by_pin(&self, pin: &str) -> Result<Option<core::User>, StoreError> {
        Ok(store::find_user_by_pin(pin).map_err(error)?.map(user_from))
    }

    fn find_secret(&self, hash: &str, purpose: core::SecretPurpose, now: Timestamp) -> Result<Option<core::Secret>, StoreError> {
        Ok(store::find_secret(hash, purpose_to(purpose), now).map_err(error)?.map(|s| core::Secret {
            hash: s.hash,
            purpose: purpose_from(s.purpose),
            user_id: s.user_id,
            created_at: s.created_at,
            expires_at: s.expires_at,
        }))
    }

    fn apply(&self, ops: Vec<core::Op>) -> Result<(), StoreError> {
        let ops: Vec<store::Op> = ops.into_iter().map(op_to).collect();
        store::apply(&ops).map_err(error)
    }
}

fn op_to(op: core::Op) -> store::Op {
    use core::Op;
    match op {
        Op::InsertUser(u) => store::Op::InsertUser(user_to(u)),
        Op::ReplacePending(r) => store::Op::ReplacePending(store::PendingReplacement {
            user_id: r.user_id,
            pin: r.pin,
            passphrase_hash: r.passphrase_hash,
            locale: r.locale,
            consent_at: r.consent_at,
            policy_version: r.policy_version,
            now: r.now,
        }),
        Op::Activate(id, now) => store::Op::Activate((id, now)),
        Op::InsertSecret(s) => store::Op::InsertSecret(types::Secret {
            hash: s.hash,
            purpose: purpose_to(s.purpose),
            user_id: s.user_id,
            created_at: s.created_at,
            expires_at: s.expires_at,
        }),
        Op::ConsumeSecret(hash, purpose, user, now) => store::Op::ConsumeSecret((hash, purpose_to(purpose), user, now)),
        Op::RevokeSecrets(user, purpose) => store::Op::RevokeSecrets((user, purpose_to(purpose))),
        Op::CheckSendLimit(l) => store::Op::CheckSendLimit(store::SendLimit {
            to: l.to,
            kind: l.kind,
            now: l.now,
            min_interval: l.min_interval,
            max_in_window: l.max_in_window,
            window: l.window,
        }),
        Op::EnqueueMail(m, at) => store::Op::EnqueueMail((message_to(m), at)),
    }
}

fn message_to(m: core::Message) -> types::Message {
    types::Message { to: m.to, kind: m.kind, subject: m.subject, text: m.text, html: m.html }
}

fn user_to(u: core::User) -> types::User {
    types::User {
        id: u.id,
        email: u.email,
        pin: u.pin,
        passphrase_hash: u.passphrase_hash,
        locale: u.locale,
        status: match u.status {
            core::UserStatus::Pending => types::UserStatus::Pending,
            core::UserStatus::Active => types::UserStatus::Active,
            core::UserStatus::Blocked => types::UserStatus::Blocked,
        },
        email_verified: u.email_verified,
        consent_at: u.consent_at,
        policy_version: u.policy_version,
        created_at: u.created_at,
        updated_at: u.updated_at,
    }
}

fn user_from(u: types::User) -> core::User {
    core::User {
        id: u.id,
        email: u.email,
        pin: u.pin,
        passphrase_hash: u.passphrase_hash,
        locale: u.locale,
        status: match u.status {
            types::UserStatus::Pending => core::UserStatus::Pending,
            types::UserStatus::Active => core::UserStatus::Active,
            types::UserStatus::Blocked => core::UserStatus::Blocked,
        },
        email_verified: u.email_verified,
        consent_at: u.consent_at,
        policy_version: u.policy_version,
        created_at: u.created_at,
        updated_at: u.updated_at,
    }
}

fn purpose_to(p: core::SecretPurpose) -> types::SecretPurpose {
    match p {
        core::SecretPurpose::VerifyEmail => types::SecretPurpose::VerifyEmail,
        core::SecretPurpose::Profile => types::SecretPurpose::Profile,
    }
}

fn purpose_from(p: types::SecretPurpose) -> core::SecretPurpose {
    match p {
        types::SecretPurpose::VerifyEmail => core::SecretPurpose::VerifyEmail,
        types::SecretPurpose::Profile => core::SecretPurpose::Profile,
    }
}

fn error(e: types::Error) -> StoreError {
    match e {
        types::Error::Conflict(field) => StoreError::Conflict(field),
        types::Error::NotFound => StoreError::NotFound,
        types::Error::Throttled(secs) => StoreError::Throttled(secs),
        types::Error::Unavailable(why) => StoreError::Unavailable(why),
        types::Error::Other(why) => StoreError::Other(why),
    }
}

impl L10n for WitL10n {
    fn negotiate(&self, requested: &str) -> String {
        l10n::negotiate(requested)
    }

    fn format(&self, locale: &str, id: &str, args: &[(&str, &str)]) -> String {
        l10n::format(locale, id, &owned(args))
    }

    fn render_email(&self, locale: &str, kind: &str, to: &str, args: &[(&str, &str)]) -> Result<core::Message, String> {
        l10n::render_email(locale, kind, to, &owned(args))
            .map(|m| core::Message { to: m.to, kind: m.kind, subject: m.subject, text: m.text, html: m.html })
    }
}

fn owned(args: &[(&str, &str)]) -> Vec<(String, String)> {
    args.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

impl Env for WasiEnv {
    fn now(&self) -> Timestamp {
        let t = wasip2::clocks::wall_clock::now();
        t.seconds as i64 * 1000 + i64::from(t.nanoseconds / 1_000_000)
    }

    fn fill_random(&self, buf: &mut [u8]) {
        let bytes = wasip2::random::random::get_random_bytes(buf.len() as u64);
        buf.copy_from_slice(&bytes);
    }
}
