//! The audit trail (issue 22): what happened to an account, when, and who did it. Each event is an
//! operation ([`Op::RecordEvent`]) in the same `apply` — one transaction — as the change it
//! records, so there is never a change without its event nor an event without its change; the
//! operator's commands and housekeeping write theirs in their own transactions through the same SQL
//! layer (`gpt_user_sql::audit`).
//!
//! An event never holds a secret, token, code or passphrase — nor an address: the account is named
//! by its id and by [`email_hash`] of its address at the time. So a deleted account's trail stays
//! (ids and hashes name nobody to someone who does not already know the address), and the operator
//! finds it again by the address (`gpt-user events --user ADDRESS` hashes what it is given).

use std::cell::RefCell;

use sha2::{Digest, Sha256};

use crate::ports::{Actor, Event, Op, Timestamp};

/// What happened. The names are the `kind` column's values; new kinds are added at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SignUp_Init made a pending account.
    AccountCreated,
    /// SignUp_Init of a pending address: new PIN and passphrase, the old link revoked.
    SignupRepeated,
    /// The verification link was used: the account is active.
    AccountVerified,
    /// A profile link was sent (Update_Init, or the profile page's own request).
    ProfileLinkRequested,
    PassphraseChanged,
    /// `detail`: the new locale.
    LocaleChanged,
    EmailChangeStarted,
    /// The account has its new address (`email_hash` is the new one's).
    EmailChangeConfirmed,
    /// An email change was left unfinished until it expired (housekeeping).
    EmailChangeExpired,
    /// Auth_Check locked the PIN after too many failures (its owner was emailed).
    AuthLocked,
    /// A new passphrase lifted the lock.
    AuthUnlocked,
    /// `detail`: the operator's reason, if given.
    Blocked,
    Unblocked,
    Deleted,
    /// A person allowed an OAuth client to act as them (`detail`: the client id).
    OauthAuthorized,
    /// Every OAuth grant of the account was revoked, or one grant's family after a reused code or
    /// refresh token (`detail`: why).
    OauthRevoked,
}

impl Kind {
    pub const ALL: [Kind; 16] = [
        Self::AccountCreated,
        Self::SignupRepeated,
        Self::AccountVerified,
        Self::ProfileLinkRequested,
        Self::PassphraseChanged,
        Self::LocaleChanged,
        Self::EmailChangeStarted,
        Self::EmailChangeConfirmed,
        Self::EmailChangeExpired,
        Self::AuthLocked,
        Self::AuthUnlocked,
        Self::Blocked,
        Self::Unblocked,
        Self::Deleted,
        Self::OauthAuthorized,
        Self::OauthRevoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccountCreated => "account-created",
            Self::SignupRepeated => "signup-repeated",
            Self::AccountVerified => "account-verified",
            Self::ProfileLinkRequested => "profile-link-requested",
            Self::PassphraseChanged => "passphrase-changed",
            Self::LocaleChanged => "locale-changed",
            Self::EmailChangeStarted => "email-change-started",
            Self::EmailChangeConfirmed => "email-change-confirmed",
            Self::EmailChangeExpired => "email-change-expired",
            Self::AuthLocked => "auth-locked",
            Self::AuthUnlocked => "auth-unlocked",
            Self::Blocked => "blocked",
            Self::Unblocked => "unblocked",
            Self::Deleted => "deleted",
            Self::OauthAuthorized => "oauth-authorized",
            Self::OauthRevoked => "oauth-revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// `sha256:` and the hex SHA-256 of the trimmed, lower-cased address.
pub fn email_hash(email: &str) -> String {
    format!("sha256:{}", crate::domain::token_hex(&Sha256::digest(email.trim().to_lowercase().as_bytes())))
}

/// Where a request came from, for its events: set by `api::respond` from the request (its id,
/// the client address the runtime passed on, and who the route serves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub actor: Actor,
    pub client: Option<String>,
    pub request_id: Option<String>,
}

impl Default for Origin {
    /// What a call that is no HTTP request has (an embedding application's Auth_Check).
    fn default() -> Self {
        Self { actor: Actor::Chat, client: None, request_id: None }
    }
}

/// The [`Origin`] of the request a context serves (interior: the context is shared by reference).
#[derive(Debug, Default)]
pub struct RequestOrigin(RefCell<Origin>);

impl RequestOrigin {
    pub fn set(&self, origin: Origin) {
        *self.0.borrow_mut() = origin;
    }

    pub fn get(&self) -> Origin {
        self.0.borrow().clone()
    }
}

/// An event of the current request (`origin`) about the account `user_id` with address `email`.
pub fn event(origin: &Origin, at: Timestamp, kind: Kind, user_id: &str, email: &str, detail: Option<String>) -> Op {
    let by = event_by(origin.actor, at, kind, user_id, email, detail);
    Op::RecordEvent(Event { client: origin.client.clone(), request_id: origin.request_id.clone(), ..by })
}

/// `op`, an event, recorded only if the user's PIN is locked at its point of the transaction.
pub fn only_if_pin_locked(op: Op) -> Op {
    match op {
        Op::RecordEvent(e) => Op::RecordEvent(Event { if_pin_locked: true, ..e }),
        other => other,
    }
}

/// An event not made by a request (the operator's commands, housekeeping).
pub fn event_by(actor: Actor, at: Timestamp, kind: Kind, user_id: &str, email: &str, detail: Option<String>) -> Event {
    Event {
        at,
        user_id: user_id.to_owned(),
        email_hash: email_hash(email),
        kind: kind.as_str().to_owned(),
        actor,
        client: None,
        request_id: None,
        detail,
        if_pin_locked: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_distinct_names_that_parse_back() {
        let names: std::collections::HashSet<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), Kind::ALL.len());
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn an_address_is_hashed_as_the_account_stores_it() {
        assert_eq!(email_hash(" Ann@Example.COM "), email_hash("ann@example.com"));
        assert!(email_hash("ann@example.com").starts_with("sha256:"));
        assert_eq!(email_hash("ann@example.com").len(), "sha256:".len() + 64);
        assert!(!email_hash("ann@example.com").contains("ann"));
    }
}
