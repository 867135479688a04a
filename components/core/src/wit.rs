//! Conversions between the core's port types ([`crate::ports`]) and the types that a WIT binding
//! generator (wit-bindgen in a guest, wasmtime's `bindgen!` in a host) makes of `wit/types.wit`
//! and `wit/store.wit`. Both generators spell records, variants and enums alike, so one macro
//! serves the guest crate, our host and the Spin adapter: a field or an operation is mapped here
//! once, not in each of them.
//!
//! ```text
//! mod convert {
//!     use crate::bindings::{store, types};
//!     gpt_user_core::wit_conversions!();
//! }
//! ```
//! It expects `types` and `store` in scope and implements `From` both ways for every type.

/// See the [module documentation](crate::wit).
#[macro_export]
macro_rules! wit_conversions {
    () => {
        $crate::__wit_record!($crate::ports::User, types::User {
            id, email, pin, passphrase_hash, locale, status, email_verified, consent_at, policy_version, created_at, updated_at
        });
        $crate::__wit_record!($crate::ports::Secret, types::Secret { hash, purpose, user_id, created_at, expires_at });
        $crate::__wit_record!($crate::ports::Message, types::Message { to, kind, subject, text, html });
        $crate::__wit_record!($crate::ports::SendLimit, store::SendLimit { to, kind, now, min_interval, max_in_window, window });
        $crate::__wit_record!($crate::ports::SignupCap, store::SignupCap { now, window, max_pending });
        $crate::__wit_record!($crate::ports::PendingReplacement, store::PendingReplacement {
            user_id, pin, passphrase_hash, locale, consent_at, policy_version, now
        });
        $crate::__wit_record!($crate::ports::AuthAttempt, store::AuthAttempt { pin, now });
        $crate::__wit_record!($crate::ports::ProfileUpdate, store::ProfileUpdate { user_id, locale, passphrase_hash, now });
        $crate::__wit_enum!($crate::ports::UserStatus, types::UserStatus { Pending, Active, Blocked });
        $crate::__wit_enum!($crate::ports::SecretPurpose, types::SecretPurpose { VerifyEmail, Profile });
        $crate::__wit_record!($crate::ports::EmailChange, store::EmailChange {
            id, user_id, state, new_email, code_ref, sends, last_send_at, window_ends_at, created_at, expires_at, version
        });
        $crate::__wit_enum!($crate::ports::EmailChangeState, store::EmailChangeState { ConfirmCurrent, EnterNew, ConfirmNew, Done, Dead });
        $crate::__wit_record!($crate::ports::Event, store::Event {
            at, user_id, email_hash, kind, actor, client, request_id, detail, if_pin_locked
        });
        $crate::__wit_enum!($crate::ports::Actor, store::Actor { Chat, Browser, Operator, System });
        $crate::__wit_enum!($crate::ports::ClientKind, store::ClientKind { Registered, Operator, Metadata });
        $crate::__wit_record!($crate::ports::OauthClient, store::OauthClient {
            id, kind, name, redirect_uris, secret_hash, created_at, expires_at
        });
        $crate::__wit_record!($crate::ports::OauthGrant, store::OauthGrant { id, user_id, client_id, resource, scope, created_at });
        $crate::__wit_enum!($crate::ports::TokenKind, store::TokenKind { Code, Access, Refresh });
        $crate::__wit_record!($crate::ports::OauthToken, store::OauthToken {
            hash, kind, grant_id, created_at, expires_at, spent_at, redirect_uri, code_challenge
        });
        $crate::__wit_record!($crate::ports::RegistrationCap, store::RegistrationCap { now, window, max });

        impl From<types::Error> for $crate::ports::StoreError {
            fn from(e: types::Error) -> Self {
                match e {
                    types::Error::Conflict(field) => Self::Conflict(field),
                    types::Error::NotFound => Self::NotFound,
                    types::Error::Throttled(secs) => Self::Throttled(secs),
                    types::Error::Locked => Self::Locked,
                    types::Error::Unavailable(why) => Self::Unavailable(why),
                    types::Error::Other(why) => Self::Other(why),
                }
            }
        }

        impl From<$crate::ports::StoreError> for types::Error {
            fn from(e: $crate::ports::StoreError) -> Self {
                use $crate::ports::StoreError as E;
                match e {
                    E::Conflict(field) => Self::Conflict(field),
                    E::NotFound => Self::NotFound,
                    E::Throttled(secs) => Self::Throttled(secs),
                    E::Locked => Self::Locked,
                    E::Unavailable(why) => Self::Unavailable(why),
                    E::Other(why) => Self::Other(why),
                }
            }
        }

        impl From<store::Op> for $crate::ports::Op {
            fn from(op: store::Op) -> Self {
                match op {
                    store::Op::InsertUser(u) => Self::InsertUser(u.into()),
                    store::Op::ReplacePending(r) => Self::ReplacePending(r.into()),
                    store::Op::Activate((id, now)) => Self::Activate(id, now),
                    store::Op::UpdateProfile(p) => Self::UpdateProfile(p.into()),
                    store::Op::InsertSecret(s) => Self::InsertSecret(s.into()),
                    store::Op::ConsumeSecret((hash, purpose, user, now)) => Self::ConsumeSecret(hash, purpose.into(), user, now),
                    store::Op::RevokeSecrets((user, purpose)) => Self::RevokeSecrets(user, purpose.into()),
                    store::Op::CheckSendLimit(l) => Self::CheckSendLimit(l.into()),
                    store::Op::CheckSignupCap(c) => Self::CheckSignupCap(c.into()),
                    store::Op::CountAuthAttempt(a) => Self::CountAuthAttempt(a.into()),
                    store::Op::ResetAuthFailures(pin) => Self::ResetAuthFailures(pin),
                    store::Op::NotifyLock(pin) => Self::NotifyLock(pin),
                    store::Op::Rehash((user, old, new)) => Self::Rehash(user, old, new),
                    store::Op::StartEmailChange(f) => Self::StartEmailChange(f.into()),
                    store::Op::UpdateEmailChange(f) => Self::UpdateEmailChange(f.into()),
                    store::Op::ChangeEmail((user, email, now)) => Self::ChangeEmail(user, email, now),
                    store::Op::RevokeAllSecrets(user) => Self::RevokeAllSecrets(user),
                    store::Op::EnqueueMail((m, at)) => Self::EnqueueMail(m.into(), at),
                    store::Op::GuardUser((user, email, status)) => Self::GuardUser(user, email, status.into()),
                    store::Op::RecordEvent(e) => Self::RecordEvent(e.into()),
                    store::Op::InsertOauthClient(c) => Self::InsertOauthClient(c.into()),
                    store::Op::InsertOauthGrant(g) => Self::InsertOauthGrant(g.into()),
                    store::Op::InsertOauthToken(t) => Self::InsertOauthToken(t.into()),
                    store::Op::SpendOauthToken((hash, now)) => Self::SpendOauthToken(hash, now),
                    store::Op::RevokeOauthGrant(grant) => Self::RevokeOauthGrant(grant),
                    store::Op::RevokeUserOauth(user) => Self::RevokeUserOauth(user),
                    store::Op::CheckRegistrationCap(c) => Self::CheckRegistrationCap(c.into()),
                }
            }
        }

        impl From<$crate::ports::Op> for store::Op {
            fn from(op: $crate::ports::Op) -> Self {
                use $crate::ports::Op;
                match op {
                    Op::InsertUser(u) => Self::InsertUser(u.into()),
                    Op::ReplacePending(r) => Self::ReplacePending(r.into()),
                    Op::Activate(id, now) => Self::Activate((id, now)),
                    Op::UpdateProfile(p) => Self::UpdateProfile(p.into()),
                    Op::InsertSecret(s) => Self::InsertSecret(s.into()),
                    Op::ConsumeSecret(hash, purpose, user, now) => Self::ConsumeSecret((hash, purpose.into(), user, now)),
                    Op::RevokeSecrets(user, purpose) => Self::RevokeSecrets((user, purpose.into())),
                    Op::CheckSendLimit(l) => Self::CheckSendLimit(l.into()),
                    Op::CheckSignupCap(c) => Self::CheckSignupCap(c.into()),
                    Op::CountAuthAttempt(a) => Self::CountAuthAttempt(a.into()),
                    Op::ResetAuthFailures(pin) => Self::ResetAuthFailures(pin),
                    Op::NotifyLock(pin) => Self::NotifyLock(pin),
                    Op::Rehash(user, old, new) => Self::Rehash((user, old, new)),
                    Op::StartEmailChange(f) => Self::StartEmailChange(f.into()),
                    Op::UpdateEmailChange(f) => Self::UpdateEmailChange(f.into()),
                    Op::ChangeEmail(user, email, now) => Self::ChangeEmail((user, email, now)),
                    Op::RevokeAllSecrets(user) => Self::RevokeAllSecrets(user),
                    Op::EnqueueMail(m, at) => Self::EnqueueMail((m.into(), at)),
                    Op::GuardUser(user, email, status) => Self::GuardUser((user, email, status.into())),
                    Op::RecordEvent(e) => Self::RecordEvent(e.into()),
                    Op::InsertOauthClient(c) => Self::InsertOauthClient(c.into()),
                    Op::InsertOauthGrant(g) => Self::InsertOauthGrant(g.into()),
                    Op::InsertOauthToken(t) => Self::InsertOauthToken(t.into()),
                    Op::SpendOauthToken(hash, now) => Self::SpendOauthToken((hash, now)),
                    Op::RevokeOauthGrant(grant) => Self::RevokeOauthGrant(grant),
                    Op::RevokeUserOauth(user) => Self::RevokeUserOauth(user),
                    Op::CheckRegistrationCap(c) => Self::CheckRegistrationCap(c.into()),
                }
            }
        }
    };
}

/// A record with the same field names on both sides; each field converted with `Into`.
#[doc(hidden)]
#[macro_export]
macro_rules! __wit_record {
    ($core:ty, $wit:ty { $($field:ident),* $(,)? }) => {
        impl From<$wit> for $core {
            fn from(v: $wit) -> Self {
                Self { $($field: v.$field.into()),* }
            }
        }
        impl From<$core> for $wit {
            fn from(v: $core) -> Self {
                Self { $($field: v.$field.into()),* }
            }
        }
    };
}

/// An enum with the same case names on both sides.
#[doc(hidden)]
#[macro_export]
macro_rules! __wit_enum {
    ($core:ty, $wit:ty { $($case:ident),* $(,)? }) => {
        impl From<$wit> for $core {
            fn from(v: $wit) -> Self {
                type Wit = $wit;
                match v { $(Wit::$case => Self::$case),* }
            }
        }
        impl From<$core> for $wit {
            fn from(v: $core) -> Self {
                type Core = $core;
                match v { $(Core::$case => Self::$case),* }
            }
        }
    };
}
