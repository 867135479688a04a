//! In-memory ports for unit tests of the core (never used by a runtime).

use std::cell::{Cell, RefCell};

use crate::ports::{
    AUTH_LOCK_AFTER, ClientKind, EmailChange, OauthClient, OauthGrant, OauthToken, Ephemeral, Event, Message, Op, Secret, SecretPurpose, Store, StoreError, Timestamp, User,
    UserStatus,
};

/// A store whose `apply` works on a copy and swaps it in on success: all or nothing.
#[derive(Default, Clone)]
pub struct MemoryStore {
    pub state: RefCell<State>,
    /// When set, every call fails with `Unavailable`.
    pub down: Cell<bool>,
}

#[derive(Default, Clone, Debug)]
pub struct State {
    pub users: Vec<User>,
    pub secrets: Vec<Secret>,
    /// `(created_at, message)`.
    pub outbox: Vec<(Timestamp, Message)>,
    /// PIN → consecutive failed checks, the last one's time, whether the lock was mailed.
    pub auth_failures: std::collections::BTreeMap<String, (i64, Timestamp, bool)>,
    pub email_changes: Vec<EmailChange>,
    /// The audit trail, in order.
    pub events: Vec<Event>,
    pub oauth_clients: Vec<OauthClient>,
    pub oauth_grants: Vec<OauthGrant>,
    pub oauth_tokens: Vec<OauthToken>,
}

impl MemoryStore {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.get() { Err(StoreError::Unavailable("down".into())) } else { Ok(()) }
    }
}

impl Store for MemoryStore {
    fn find_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.check()?;
        Ok(self.state.borrow().users.iter().find(|u| u.email == email).cloned())
    }

    fn find_user_by_pin(&self, pin: &str) -> Result<Option<User>, StoreError> {
        self.check()?;
        Ok(self.state.borrow().users.iter().find(|u| u.pin == pin).cloned())
    }

    fn find_user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.check()?;
        Ok(self.state.borrow().users.iter().find(|u| u.id == id).cloned())
    }

    fn find_secret(&self, hash: &str, purpose: SecretPurpose, now: Timestamp) -> Result<Option<Secret>, StoreError> {
        self.check()?;
        Ok(self.state.borrow().secrets.iter().find(|s| s.hash == hash && s.purpose == purpose && s.expires_at > now).cloned())
    }

    fn find_email_change(&self, id: &str) -> Result<Option<EmailChange>, StoreError> {
        self.check()?;
        Ok(self.state.borrow().email_changes.iter().find(|f| f.id == id).cloned())
    }

    fn find_oauth_client(&self, id: &str) -> Result<Option<OauthClient>, StoreError> {
        self.check()?;
        Ok(self.state.borrow().oauth_clients.iter().find(|c| c.id == id).cloned())
    }

    fn find_oauth_token(&self, hash: &str) -> Result<Option<(OauthToken, OauthGrant)>, StoreError> {
        self.check()?;
        let s = self.state.borrow();
        let token = s.oauth_tokens.iter().find(|t| t.hash == hash);
        Ok(token.and_then(|t| s.oauth_grants.iter().find(|g| g.id == t.grant_id).map(|g| (t.clone(), g.clone()))))
    }

    fn apply(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.check()?;
        let mut s = self.state.borrow().clone();
        for op in ops {
            apply_one(&mut s, op)?;
        }
        *self.state.borrow_mut() = s;
        Ok(())
    }
}

fn apply_one(s: &mut State, op: Op) -> Result<(), StoreError> {
    match op {
        Op::InsertUser(u) => {
            if s.users.iter().any(|x| x.email == u.email) {
                return Err(StoreError::Conflict("email".into()));
            }
            if s.users.iter().any(|x| x.pin == u.pin) {
                return Err(StoreError::Conflict("pin".into()));
            }
            s.auth_failures.remove(&u.pin);
            s.users.push(u);
        }
        Op::ReplacePending(r) => {
            if s.users.iter().any(|x| x.pin == r.pin && x.id != r.user_id) {
                return Err(StoreError::Conflict("pin".into()));
            }
            let u = s.users.iter_mut().find(|u| u.id == r.user_id && u.status == UserStatus::Pending).ok_or(StoreError::NotFound)?;
            s.auth_failures.remove(&r.pin);
            u.pin = r.pin;
            u.passphrase_hash = r.passphrase_hash;
            u.locale = r.locale;
            u.consent_at = r.consent_at;
            u.policy_version = r.policy_version;
            u.updated_at = r.now;
        }
        Op::Activate(id, now) => {
            let u = s.users.iter_mut().find(|u| u.id == id && u.status == UserStatus::Pending).ok_or(StoreError::NotFound)?;
            u.status = UserStatus::Active;
            u.email_verified = true;
            u.updated_at = now;
        }
        Op::InsertSecret(secret) => s.secrets.push(secret),
        Op::ConsumeSecret(hash, purpose, user_id, now) => {
            let i = s
                .secrets
                .iter()
                .position(|x| x.hash == hash && x.purpose == purpose && x.user_id == user_id && x.expires_at > now)
                .ok_or(StoreError::NotFound)?;
            s.secrets.remove(i);
        }
        Op::RevokeSecrets(user_id, purpose) => s.secrets.retain(|x| !(x.user_id == user_id && x.purpose == purpose)),
        Op::CheckSendLimit(l) => {
            let recent: Vec<Timestamp> = s
                .outbox
                .iter()
                .filter(|(at, m)| m.to == l.to && m.kind == l.kind && *at > l.now - l.window)
                .map(|(at, _)| *at)
                .collect();
            if let Some(retry) = crate::ports::send_limit_wait(l.now, l.min_interval, l.max_in_window, l.window, &recent) {
                return Err(StoreError::Throttled(retry));
            }
        }
        Op::CheckSignupCap(c) => {
            let created: Vec<Timestamp> =
                s.users.iter().filter(|u| u.status == UserStatus::Pending && u.created_at > c.now - c.window).map(|u| u.created_at).collect();
            if let Some(retry) = crate::ports::signup_cap_wait(c.now, c.window, c.max_pending, created.len() as u64, created.iter().min().copied()) {
                return Err(StoreError::Throttled(retry));
            }
        }
        Op::UpdateProfile(p) => {
            let u = s.users.iter_mut().find(|u| u.id == p.user_id && u.status == UserStatus::Active).ok_or(StoreError::NotFound)?;
            u.locale = p.locale;
            if let Some(hash) = p.passphrase_hash {
                s.auth_failures.remove(&u.pin);
                u.passphrase_hash = hash;
            }
            u.updated_at = p.now;
        }
        Op::CountAuthAttempt(a) => {
            let (failures, last, notified) = s.auth_failures.get(&a.pin).copied().unwrap_or((0, 0, false));
            if let Some(refusal) = crate::ports::auth_attempt_refusal(failures, last, a.now) {
                return Err(refusal.into());
            }
            s.auth_failures.insert(a.pin, (failures + 1, a.now, notified));
        }
        Op::ResetAuthFailures(pin) => {
            s.auth_failures.remove(&pin);
        }
        Op::NotifyLock(pin) => match s.auth_failures.get_mut(&pin) {
            Some((failures, _, notified)) if *failures >= AUTH_LOCK_AFTER && !*notified => *notified = true,
            _ => return Err(StoreError::NotFound),
        },
        Op::Rehash(user_id, old, new) => {
            let u = s.users.iter_mut().find(|u| u.id == user_id && u.passphrase_hash == old).ok_or(StoreError::NotFound)?;
            u.passphrase_hash = new;
        }
        Op::StartEmailChange(flow) => {
            s.email_changes.retain(|f| f.user_id != flow.user_id);
            s.email_changes.push(flow);
        }
        Op::UpdateEmailChange(flow) => {
            let stored = s.email_changes.iter_mut().find(|f| f.id == flow.id && f.version == flow.version).ok_or(StoreError::NotFound)?;
            *stored = EmailChange { version: flow.version + 1, ..flow };
        }
        Op::ChangeEmail(user_id, email, now) => {
            if s.users.iter().any(|u| u.email == email && u.id != user_id) {
                return Err(StoreError::Conflict("email".into()));
            }
            let u = s.users.iter_mut().find(|u| u.id == user_id && u.status == UserStatus::Active).ok_or(StoreError::NotFound)?;
            u.email = email;
            u.email_verified = true;
            u.updated_at = now;
        }
        Op::RevokeAllSecrets(user_id) => s.secrets.retain(|x| x.user_id != user_id),
        Op::EnqueueMail(m, at) => s.outbox.push((at, m)),
        Op::GuardUser(user_id, email, status) => {
            s.users.iter().find(|u| u.id == user_id && u.email == email && u.status == status).ok_or(StoreError::NotFound)?;
        }
        Op::RecordEvent(e) => {
            let locked = || {
                let pin = s.users.iter().find(|u| u.id == e.user_id).map(|u| u.pin.clone());
                pin.and_then(|pin| s.auth_failures.get(&pin).copied()).is_some_and(|(failures, ..)| failures >= AUTH_LOCK_AFTER)
            };
            if !e.if_pin_locked || locked() {
                s.events.push(e);
            }
        }
        Op::InsertOauthClient(c) => {
            if s.oauth_clients.iter().any(|x| x.id == c.id) {
                return Err(StoreError::Conflict("id".into()));
            }
            s.oauth_clients.push(c);
        }
        Op::InsertOauthGrant(g) => s.oauth_grants.push(g),
        Op::InsertOauthToken(t) => s.oauth_tokens.push(t),
        Op::SpendOauthToken(hash, now) => {
            let grants = &s.oauth_grants;
            let token = s
                .oauth_tokens
                .iter_mut()
                .find(|t| t.hash == hash && t.spent_at.is_none() && t.expires_at > now && grants.iter().any(|g| g.id == t.grant_id))
                .ok_or(StoreError::NotFound)?;
            token.spent_at = Some(now);
        }
        Op::RevokeOauthGrant(grant) => {
            s.oauth_grants.retain(|g| g.id != grant);
            s.oauth_tokens.retain(|t| t.grant_id != grant);
        }
        Op::RevokeUserOauth(user) => {
            let gone: Vec<String> = s.oauth_grants.iter().filter(|g| g.user_id == user).map(|g| g.id.clone()).collect();
            s.oauth_grants.retain(|g| g.user_id != user);
            s.oauth_tokens.retain(|t| !gone.contains(&t.grant_id));
        }
        Op::CheckRegistrationCap(cap) => {
            let recent: Vec<Timestamp> = s
                .oauth_clients
                .iter()
                .filter(|c| c.kind == ClientKind::Registered && c.created_at > cap.now - cap.window)
                .map(|c| c.created_at)
                .collect();
            if let Some(secs) = crate::ports::signup_cap_wait(cap.now, cap.window, cap.max, recent.len() as u64, recent.iter().min().copied()) {
                return Err(StoreError::Throttled(secs));
            }
        }
    }
    Ok(())
}

/// An ephemeral store: key → (value, expires at); `down` makes every call fail as Redis would.
#[derive(Default)]
pub struct MemoryEphemeral {
    pub values: RefCell<std::collections::BTreeMap<String, (String, Timestamp)>>,
    pub down: Cell<bool>,
}

impl MemoryEphemeral {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.get() { Err(StoreError::Unavailable("down".into())) } else { Ok(()) }
    }
}

impl Ephemeral for MemoryEphemeral {
    fn put(&self, key: &str, value: &str, _now: Timestamp, expires_at: Timestamp) -> Result<(), StoreError> {
        self.check()?;
        self.values.borrow_mut().insert(key.to_owned(), (value.to_owned(), expires_at));
        Ok(())
    }

    fn get(&self, key: &str, now: Timestamp) -> Result<Option<String>, StoreError> {
        self.check()?;
        Ok(self.values.borrow().get(key).filter(|(_, exp)| *exp > now).map(|(v, _)| v.clone()))
    }

    fn increment(&self, key: &str, now: Timestamp, expires_at: Timestamp) -> Result<u32, StoreError> {
        self.check()?;
        let mut values = self.values.borrow_mut();
        let (n, exp) = match values.get(key) {
            Some((v, exp)) if *exp > now => (v.parse::<u32>().unwrap_or(0) + 1, *exp),
            _ => (1, expires_at),
        };
        values.insert(key.to_owned(), (n.to_string(), exp));
        Ok(n)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.check()?;
        self.values.borrow_mut().remove(key);
        Ok(())
    }
}

