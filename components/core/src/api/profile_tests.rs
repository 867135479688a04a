//! The profile flow (SPEC §2.2) over the in-memory store: every outcome of Update_Init, the
//! recovery request, Update_Load, Update_Save and the `/profile` page.

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::tests::World;
use super::*;
use crate::domain::{Passphrase, PassphraseHash, Token};
use crate::memory::MemoryStore;
use crate::ports::{Message, Op, Secret, SecretPurpose, StoreError, Timestamp, User, UserStatus};

const NEW_PASSPHRASE: &str = "a brand new passphrase for ann";

/// An active account with the given address; returns its PIN.
fn active(w: &World, email: &str) -> String {
    let pin = w.sign_up(email).json_body()["pin"].as_str().unwrap().to_owned();
    assert_eq!(w.call("POST", "/api/signup/verify", json!({"token": w.last_token()})).status, 200);
    pin
}

fn set_status(w: &World, email: &str, status: UserStatus) {
    w.store.state.borrow_mut().users.iter_mut().filter(|u| u.email == email).for_each(|u| u.status = status);
}

fn user(w: &World, email: &str) -> User {
    w.store.state.borrow().users.iter().find(|u| u.email == email).unwrap().clone()
}

fn outbox(w: &World) -> Vec<Message> {
    w.store.state.borrow().outbox.iter().map(|(_, m)| m.clone()).collect()
}

fn profile_secrets(w: &World) -> Vec<Secret> {
    w.store.state.borrow().secrets.iter().filter(|s| s.purpose == SecretPurpose::Profile).cloned().collect()
}

fn init(w: &World, body: Value) -> Response {
    w.call("POST", "/api/profile/init", body)
}

fn load(w: &World, token: &str) -> Response {
    w.call("POST", "/api/profile/load", json!({"token": token}))
}

fn save(w: &World, body: Value) -> Response {
    w.call("POST", "/api/profile/save", body)
}

/// Asks for a profile link for `email` and returns the token from the email.
fn link(w: &World, email: &str) -> String {
    let r = init(w, json!({"email": email}));
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    assert_eq!(outbox(w).last().unwrap().kind, "profile-link");
    w.last_token()
}

fn code(r: &Response) -> (u16, String) {
    (r.status, r.json_body()["code"].as_str().unwrap_or_default().to_owned())
}

fn body_text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

// ---- Update_Init --------------------------------------------------------------------------

#[test]
fn init_emails_an_active_account_a_one_hour_single_use_profile_link() {
    let w = World::new();
    active(&w, "ann@example.com");
    let r = init(&w, json!({"email": " Ann@Example.com "}));
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    assert_eq!(r.json_body()["message"], "en:profile-link-sent()");
    assert_eq!(r.json_body()["instructions"], "en:profile-link-sent-instructions(minutes=60)");
    let mail = outbox(&w).pop().unwrap();
    assert_eq!((mail.kind.as_str(), mail.to.as_str()), ("profile-link", "ann@example.com"));
    let token = w.last_token();
    assert_eq!(mail.text, format!("en:profile-link(link=http://127.0.0.1:3000/profile#token={token}&lang=en,valid-minutes=60)"));
    assert_eq!(token.len(), 43);
    let secrets = profile_secrets(&w);
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].hash, Token::parse(&token).unwrap().hash().0, "only the SHA-256 is stored");
    assert_eq!(secrets[0].expires_at - secrets[0].created_at, 3600 * 1000);
    assert_eq!(secrets[0].user_id, user(&w, "ann@example.com").id);
    assert!(!body_text(&r).contains(&token), "the token is never in the answer");
}

#[test]
fn init_finds_the_account_by_a_pin_given_as_a_string_or_an_integer() {
    let w = World::new();
    let pin = active(&w, "ann@example.com");
    assert_eq!(init(&w, json!({"pin": pin})).status, 200);
    w.advance(61_000);
    let as_number: u64 = pin.parse().unwrap();
    assert_eq!(init(&w, json!({"pin": as_number})).status, 200);
    let links: Vec<Message> = outbox(&w).into_iter().filter(|m| m.kind == "profile-link").collect();
    assert_eq!(links.len(), 2);
    assert!(links.iter().all(|m| m.to == "ann@example.com"));
}

#[test]
fn init_uses_the_email_when_both_are_given() {
    let w = World::new();
    let ann_pin = active(&w, "ann@example.com");
    active(&w, "bob@example.com");
    assert_eq!(init(&w, json!({"email": "bob@example.com", "pin": ann_pin})).status, 200);
    assert_eq!(outbox(&w).last().unwrap().to, "bob@example.com");
}

#[test]
fn init_for_an_unknown_email_or_pin_is_404_user_not_found() {
    let w = World::new();
    for body in [json!({"email": "nobody@example.com"}), json!({"pin": "987654"}), json!({"pin": 987_654})] {
        let r = init(&w, body);
        assert_eq!(code(&r), (404, "USER_NOT_FOUND".into()));
        assert_eq!(r.json_body()["message"], "en:error-user-not-found()");
        assert_eq!(r.json_body()["instructions"], "en:instructions-user-not-found(url=)");
    }
    assert!(outbox(&w).is_empty());
}

#[test]
fn init_for_a_pending_account_resends_the_verification_link_and_is_409() {
    let w = World::new();
    let pin = w.sign_up("ann@example.com").json_body()["pin"].as_str().unwrap().to_owned();
    let first = w.last_token();
    w.advance(61_000);
    let r = init(&w, json!({"pin": pin}));
    assert_eq!(code(&r), (409, "EMAIL_NOT_VERIFIED".into()));
    assert_eq!(r.json_body()["instructions"], "en:instructions-email-not-verified(url=)");
    let mail = outbox(&w).pop().unwrap();
    assert_eq!(mail.kind, "signup-verification");
    let token = w.last_token();
    assert_ne!(token, first);
    assert!(mail.text.contains(&format!("link=http://127.0.0.1:3000/signup/verify#token={token}&pin={pin}")), "{}", mail.text);
    assert!(profile_secrets(&w).is_empty());
    assert_eq!(w.call("POST", "/api/signup/verify", json!({"token": token, "pin": pin})).status, 200, "the new link verifies");
}

#[test]
fn init_for_a_blocked_account_is_403_and_sends_nothing() {
    let w = World::new();
    active(&w, "ann@example.com");
    set_status(&w, "ann@example.com", UserStatus::Blocked);
    let before = outbox(&w).len();
    let r = init(&w, json!({"email": "ann@example.com"}));
    assert_eq!(code(&r), (403, "ACCOUNT_BLOCKED".into()));
    assert_eq!(r.json_body()["instructions"], "en:instructions-account-blocked(url=)");
    assert_eq!(outbox(&w).len(), before);
    assert!(profile_secrets(&w).is_empty());
}

#[test]
fn a_second_link_within_a_minute_is_throttled_and_writes_nothing() {
    let w = World::new();
    active(&w, "ann@example.com");
    link(&w, "ann@example.com");
    let r = init(&w, json!({"email": "ann@example.com"}));
    assert_eq!(code(&r), (429, "TOO_MANY_REQUESTS".into()));
    assert_eq!(r.header("retry-after"), Some("60"));
    assert_eq!(profile_secrets(&w).len(), 1);
    // A pending account's verification email follows the same limit (sign-up just sent one).
    w.sign_up("bob@example.com");
    assert_eq!(init(&w, json!({"email": "bob@example.com"})).status, 429);
}

#[test]
fn init_input_errors_name_the_field() {
    let w = World::new();
    let pin = active(&w, "ann@example.com");
    let cases = [
        (json!({}), "email"),
        (json!({"email": null, "pin": null}), "email"),
        (json!({"email": "nope"}), "email"),
        (json!({"email": 5}), "email"),
        (json!({"email": ""}), "email"),
        (json!({"pin": "12a456"}), "pin"),
        (json!({"pin": "012345"}), "pin"),
        (json!({"pin": ""}), "pin"),
        (json!({"pin": 12.5}), "pin"),
        (json!({"pin": -123_456}), "pin"),
        (json!({"pin": 1e30}), "pin"),
        (json!({"pin": 123_456_789_012_345_u64}), "pin"),
        (json!({"pin": true}), "pin"),
        (json!({"pin": [1]}), "pin"),
        (json!({"email": "ann@example.com", "pin": {"a": 1}}), "pin"),
        (json!({"pin": pin, "email": "bad"}), "email"),
        (json!({"pin": pin, "locale": "en"}), "locale"),
    ];
    for (body, field) in cases {
        let r = init(&w, body.clone());
        assert_eq!(code(&r), (422, "INVALID_INPUT".into()), "{body}");
        assert_eq!(r.json_body()["field"], field, "{body}");
    }
    assert_eq!(init(&w, json!([1])).status, 400);
    assert!(profile_secrets(&w).is_empty());
}

#[test]
fn conceal_mode_answers_every_init_outcome_like_a_sent_link() {
    let mut w = World::new();
    let (active_, pending, blocked, unknown) = ("active@example.com", "pending@example.com", "blocked@example.com", "unknown@example.com");
    let blocked_pin = active(&w, blocked);
    set_status(&w, blocked, UserStatus::Blocked);
    let active_pin = active(&w, active_);
    w.sign_up(pending);
    w.settings.conceal_accounts = true;
    w.advance(61_000);
    let sent_before = outbox(&w).len();
    let bodies = [
        json!({"email": active_}),
        json!({"email": pending}),
        json!({"email": blocked}),
        json!({"email": unknown}),
        json!({"pin": blocked_pin}),
        json!({"pin": "987654"}),
    ];
    let mut answers = Vec::new();
    for round in 0..2 {
        // Round 1 repeats within a minute: the active and pending addresses are throttled now.
        for body in &bodies {
            let r = init(&w, body.clone());
            answers.push((round, body.clone(), r.status, r.json_body(), r.headers.clone()));
        }
    }
    let first = &answers[0];
    assert_eq!(first.2, 200);
    assert_eq!(first.3["message"], "en:profile-link-concealed()");
    for a in &answers {
        assert_eq!((a.2, &a.3, &a.4), (first.2, &first.3, &first.4), "{} (round {}) answers like a sent link", a.1, a.0);
    }
    let sent: Vec<(String, String)> = outbox(&w)[sent_before..].iter().map(|m| (m.to.clone(), m.kind.clone())).collect();
    assert_eq!(sent, [(active_.to_owned(), "profile-link".to_owned()), (pending.to_owned(), "signup-verification".to_owned())]);
    assert_eq!(init(&w, json!({"pin": active_pin, "x": 1})).status, 422, "bad input is still refused");
}

// ---- The recovery page's request ----------------------------------------------------------

#[test]
fn the_recovery_request_answers_alike_for_every_address_and_sends_what_init_sends() {
    let w = World::new();
    active(&w, "active@example.com");
    active(&w, "blocked@example.com");
    set_status(&w, "blocked@example.com", UserStatus::Blocked);
    w.sign_up("pending@example.com");
    w.advance(61_000);
    let sent_before = outbox(&w).len();
    let mut answers = Vec::new();
    for _ in 0..2 {
        for email in ["active@example.com", "pending@example.com", "blocked@example.com", "unknown@example.com"] {
            let r = w.call("POST", "/api/profile/request", json!({"email": email}));
            answers.push((email, r.status, r.json_body()));
        }
    }
    for a in &answers {
        assert_eq!((a.1, &a.2), (200, &json!({"message": "en:profile-request-sent()"})), "{}", a.0);
    }
    let kinds: Vec<String> = outbox(&w)[sent_before..].iter().map(|m| format!("{} {}", m.to, m.kind)).collect();
    assert_eq!(kinds, ["active@example.com profile-link", "pending@example.com signup-verification"]);
    for (body, field) in [(json!({"email": "nope"}), "email"), (json!({}), "email"), (json!({"pin": "123456"}), "pin")] {
        let r = w.call("POST", "/api/profile/request", body);
        assert_eq!((r.status, r.json_body()["field"].as_str()), (422, Some(field)));
    }
}

// ---- Update_Load --------------------------------------------------------------------------

#[test]
fn load_shows_the_profile_with_an_rfc3339_creation_time_and_keeps_the_token() {
    let w = World::new();
    w.env.now.set(1_709_251_199_000); // 2024-02-29T23:59:59Z, a leap day
    let pin = active(&w, "ann@example.com");
    let token = link(&w, "ann@example.com");
    let r = load(&w, &token);
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    assert_eq!(r.json_body(), json!({
        "pin": pin,
        "email": "ann@example.com",
        "email_verified": true,
        "locale": "en",
        "status": "active",
        "created_at": "2024-02-29T23:59:59Z",
    }));
    assert_eq!(load(&w, &token).status, 200, "loading does not consume the token");
    assert!(!body_text(&r).contains(&token));
}

#[test]
fn load_answers_410_for_a_malformed_unknown_foreign_or_expired_token() {
    let w = World::new();
    w.sign_up("pending@example.com");
    let verification = w.last_token();
    active(&w, "ann@example.com");
    let token = link(&w, "ann@example.com");
    let unknown = Token::from_random([9; 32]);
    for bad in ["", "abc", &"A".repeat(44), unknown.as_str(), &verification] {
        let r = load(&w, bad);
        assert_eq!(code(&r), (410, "INVALID_TOKEN".into()), "{bad:?}");
        assert_eq!(r.json_body()["instructions"], "en:instructions-invalid-profile-token(url=)");
    }
    w.advance(3600 * 1000);
    assert_eq!(load(&w, &token).status, 410, "expired after one hour");
    for (body, field) in [(json!({}), "token"), (json!({"token": 5}), "token"), (json!({"token": token, "pin": 1}), "pin")] {
        let r = w.call("POST", "/api/profile/load", body);
        assert_eq!((r.status, r.json_body()["field"].as_str()), (422, Some(field)));
    }
}

#[test]
fn load_and_save_for_a_blocked_account_are_403_and_keep_the_token() {
    let w = World::new();
    active(&w, "ann@example.com");
    let token = link(&w, "ann@example.com");
    set_status(&w, "ann@example.com", UserStatus::Blocked);
    assert_eq!(code(&load(&w, &token)), (403, "ACCOUNT_BLOCKED".into()));
    assert_eq!(code(&save(&w, json!({"token": token, "locale": "ru"}))), (403, "ACCOUNT_BLOCKED".into()));
    assert_eq!(profile_secrets(&w).len(), 1);
    assert_eq!(user(&w, "ann@example.com").locale, "en");
}

// ---- Update_Save --------------------------------------------------------------------------

#[test]
fn saving_a_locale_answers_in_it_consumes_the_token_and_revokes_the_other_links() {
    let w = World::new();
    active(&w, "ann@example.com");
    let older = link(&w, "ann@example.com");
    w.advance(61_000);
    let token = link(&w, "ann@example.com");
    let before = user(&w, "ann@example.com");
    let mails = outbox(&w).len();
    let r = save(&w, json!({"token": token, "locale": "ru-RU"}));
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    assert_eq!(r.json_body(), json!({"message": "ru:profile-saved()", "locale": "ru"}));
    let after = user(&w, "ann@example.com");
    assert_eq!(after.locale, "ru");
    assert_eq!(after.passphrase_hash, before.passphrase_hash);
    assert_eq!(after.updated_at, w.env.now.get());
    assert_eq!(outbox(&w).len(), mails, "no notice without a new passphrase");
    assert!(profile_secrets(&w).is_empty());
    assert_eq!(save(&w, json!({"token": token, "locale": "en"})).status, 410, "used");
    assert_eq!(load(&w, &older).status, 410, "revoked");
}

#[test]
fn saving_a_passphrase_stores_its_hash_and_emails_a_notice_in_the_new_locale() {
    let w = World::new();
    active(&w, "ann@example.com");
    let token = link(&w, "ann@example.com");
    let r = save(&w, json!({"token": token, "locale": "ru", "passphrase": NEW_PASSPHRASE}));
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    assert_eq!(r.json_body()["message"], "ru:profile-saved-passphrase()");
    assert!(!body_text(&r).contains(NEW_PASSPHRASE) && !body_text(&r).contains(&token));
    let hash = PassphraseHash(user(&w, "ann@example.com").passphrase_hash);
    assert!(Passphrase::parse(NEW_PASSPHRASE, 15, 256).unwrap().verify(&hash));
    assert!(!Passphrase::parse("correct horse battery staple", 15, 256).unwrap().verify(&hash));
    let notice = outbox(&w).pop().unwrap();
    assert_eq!((notice.kind.as_str(), notice.to.as_str()), ("passphrase-changed", "ann@example.com"));
    assert_eq!(notice.text, "ru:passphrase-changed(link=http://127.0.0.1:3000/profile)");
    assert!(!notice.text.contains(NEW_PASSPHRASE));
}

#[test]
fn a_passphrase_notice_is_never_dropped_by_the_send_limit() {
    let w = World::new();
    active(&w, "ann@example.com");
    let token = link(&w, "ann@example.com");
    let now = w.env.now.get();
    let earlier = Message { to: "ann@example.com".into(), kind: "passphrase-changed".into(), subject: String::new(), text: String::new(), html: String::new() };
    w.store.state.borrow_mut().outbox.extend((0..10).map(|i| (now - 1000 * (i + 1), earlier.clone())));
    assert_eq!(save(&w, json!({"token": token, "passphrase": NEW_PASSPHRASE})).status, 200);
    assert_eq!(outbox(&w).iter().filter(|m| m.kind == "passphrase-changed").count(), 11);
    assert_eq!(outbox(&w).pop().unwrap().text, "en:passphrase-changed(link=http://127.0.0.1:3000/profile)", "the kept locale");
}

#[test]
fn a_refused_save_changes_nothing_and_leaves_the_token_usable() {
    let w = World::new();
    active(&w, "ann@example.com");
    let token = link(&w, "ann@example.com");
    let before = w.store.state.borrow().clone();
    let cases = [
        (json!({"token": token}), "locale"),
        (json!({"token": token, "locale": null, "passphrase": null}), "locale"),
        (json!({"token": token, "locale": "xx"}), "locale"),
        (json!({"token": token, "locale": 5}), "locale"),
        (json!({"token": token, "passphrase": "too short"}), "passphrase"),
        (json!({"token": token, "passphrase": "x".repeat(257)}), "passphrase"),
        (json!({"token": token, "passphrase": "long enough but\u{7}with a bell"}), "passphrase"),
        (json!({"token": token, "locale": "ru", "passphrase": "too short"}), "passphrase"),
        (json!({"token": token, "locale": "ru", "email": "x@example.com"}), "email"),
        (json!({"locale": "ru"}), "token"),
        (json!({"token": 1, "locale": "ru"}), "token"),
    ];
    for (body, field) in cases {
        let r = save(&w, body.clone());
        assert_eq!(code(&r), (422, "INVALID_INPUT".into()), "{body}");
        assert_eq!(r.json_body()["field"], field, "{body}");
    }
    assert_eq!(code(&save(&w, json!({"token": "abc", "locale": "ru"}))), (410, "INVALID_TOKEN".into()));
    let after = w.store.state.borrow().clone();
    assert_eq!((after.users, after.secrets, after.outbox.len()), (before.users, before.secrets, before.outbox.len()));
    assert_eq!(save(&w, json!({"token": token, "locale": "ru"})).status, 200, "the token still works");
}

#[test]
fn passphrase_length_follows_the_settings() {
    let mut w = World::new();
    w.settings.passphrase_min = 20;
    active(&w, "ann@example.com");
    let token = link(&w, "ann@example.com");
    assert_eq!(save(&w, json!({"token": token, "passphrase": "nineteen characters"})).json_body()["field"], "passphrase");
    assert_eq!(save(&w, json!({"token": token, "passphrase": "twenty characters ok"})).status, 200);
}

/// Reads a secret as it was before any save committed, as a save running concurrently with
/// others would: only the transaction's consume decides who wins.
struct Snapshot<'a> {
    store: &'a MemoryStore,
    secret: Secret,
}

impl Store for Snapshot<'_> {
    fn find_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.store.find_user_by_email(email)
    }
    fn find_user_by_pin(&self, pin: &str) -> Result<Option<User>, StoreError> {
        self.store.find_user_by_pin(pin)
    }
    fn find_user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.store.find_user_by_id(id)
    }
    fn find_secret(&self, _: &str, _: SecretPurpose, _: Timestamp) -> Result<Option<Secret>, StoreError> {
        Ok(Some(self.secret.clone()))
    }
    fn find_email_change(&self, id: &str) -> Result<Option<crate::ports::EmailChange>, StoreError> {
        self.store.find_email_change(id)
    }
    fn find_oauth_client(&self, id: &str) -> Result<Option<crate::ports::OauthClient>, StoreError> {
        self.store.find_oauth_client(id)
    }
    fn find_oauth_token(&self, hash: &str) -> Result<Option<(crate::ports::OauthToken, crate::ports::OauthGrant)>, StoreError> {
        self.store.find_oauth_token(hash)
    }
    fn apply(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.store.apply(ops)
    }
}

#[test]
fn of_sixteen_saves_with_one_token_exactly_one_wins() {
    let w = World::new();
    active(&w, "ann@example.com");
    let token = link(&w, "ann@example.com");
    let stale = Snapshot { store: &w.store, secret: profile_secrets(&w).remove(0) };
    let request = |passphrase: String| Request {
        method: "POST".into(),
        path: "/api/profile/save".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(&json!({"token": token, "passphrase": passphrase})).unwrap(),
        body_too_large: false, query: String::new(),
    };
    let statuses: Vec<u16> = (0..16).map(|i| w.send_to(&stale, &request(format!("{NEW_PASSPHRASE} {i:02}"))).status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 410).count(), 15, "{statuses:?}");
    assert_eq!(outbox(&w).iter().filter(|m| m.kind == "passphrase-changed").count(), 1);
    let hash = PassphraseHash(user(&w, "ann@example.com").passphrase_hash);
    assert!(Passphrase::parse(&format!("{NEW_PASSPHRASE} 00"), 15, 256).unwrap().verify(&hash), "the first save is the one kept");
}

/// Reads work, every write fails: the database went away between the two.
pub(super) struct WritesFail<'a>(pub(super) &'a MemoryStore);

impl Store for WritesFail<'_> {
    fn find_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.0.find_user_by_email(email)
    }
    fn find_user_by_pin(&self, pin: &str) -> Result<Option<User>, StoreError> {
        self.0.find_user_by_pin(pin)
    }
    fn find_user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.0.find_user_by_id(id)
    }
    fn find_secret(&self, hash: &str, purpose: SecretPurpose, now: Timestamp) -> Result<Option<Secret>, StoreError> {
        self.0.find_secret(hash, purpose, now)
    }
    fn find_email_change(&self, id: &str) -> Result<Option<crate::ports::EmailChange>, StoreError> {
        self.0.find_email_change(id)
    }
    fn find_oauth_client(&self, id: &str) -> Result<Option<crate::ports::OauthClient>, StoreError> {
        self.0.find_oauth_client(id)
    }
    fn find_oauth_token(&self, hash: &str) -> Result<Option<(crate::ports::OauthToken, crate::ports::OauthGrant)>, StoreError> {
        self.0.find_oauth_token(hash)
    }
    fn apply(&self, _: Vec<Op>) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection reset".into()))
    }
}

#[test]
fn a_store_outage_during_save_is_503_save_failed_with_nothing_written() {
    let w = World::new();
    active(&w, "ann@example.com");
    let token = link(&w, "ann@example.com");
    let before = w.store.state.borrow().clone();
    let body = json!({"token": token, "locale": "ru", "passphrase": NEW_PASSPHRASE});
    w.store.down.set(true);
    let r = save(&w, body.clone());
    w.store.down.set(false);
    assert_eq!(code(&r), (503, "SAVE_FAILED".into()));
    assert_eq!(r.json_body()["message"], "en:error-save-failed()");
    assert_eq!(r.json_body()["instructions"], "en:instructions-save-failed(url=)");
    let req = Request {
        method: "POST".into(),
        path: "/api/profile/save".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(&body).unwrap(),
        body_too_large: false, query: String::new(),
    };
    assert_eq!(code(&w.send_to(&WritesFail(&w.store), &req)), (503, "SAVE_FAILED".into()));
    let after = w.store.state.borrow().clone();
    assert_eq!((&after.users, &after.secrets, after.outbox.len()), (&before.users, &before.secrets, before.outbox.len()));
    assert_eq!(save(&w, body).status, 200, "the token still works afterwards");
}

// ---- Routes, page and schema --------------------------------------------------------------

#[test]
fn profile_browser_calls_from_another_origin_are_refused() {
    let w = World::new();
    for path in ["/api/profile/request", "/api/profile/load", "/api/profile/save"] {
        let req = Request {
            method: "POST".into(),
            path: path.into(),
            headers: vec![("content-type".into(), "application/json".into()), ("origin".into(), "https://evil.example".into())],
            body: br#"{"email":"ann@example.com"}"#.to_vec(),
            body_too_large: false, query: String::new(),
        };
        assert_eq!(code(&w.send(&req)), (403, "FORBIDDEN_ORIGIN".into()), "{path}");
    }
}

fn page(w: &World, accept_language: &str) -> Response {
    w.send(&Request {
        method: "GET".into(),
        path: "/profile".into(),
        headers: vec![("accept-language".into(), accept_language.into())],
        body: Vec::new(),
        body_too_large: false, query: String::new(),
    })
}

#[test]
fn the_profile_page_has_the_editor_and_the_recovery_form_under_a_strict_csp() {
    let w = World::new();
    let r = page(&w, "en");
    assert_eq!(r.status, 200);
    let html = body_text(&r);
    for id in [
        r#"<section id="profile" hidden>"#,
        r#"id="pin""#,
        r#"id="email""#,
        r#"id="verified""#,
        r#"id="status""#,
        r#"id="created""#,
        r#"<select id="locale"><option value="en">"#,
        r#"<option value="ru">"#,
        r#"<input id="passphrase" type="password""#,
        r#"<input id="passphrase2" type="password""#,
        r#"<p id="passphrase-rule" class="rule" data-min="15" data-max="256""#,
        r#"<button id="save""#,
        r#"<p id="result" role="status""#,
        r#"<section id="email-change" hidden>"#,
        r#"<section id="recovery" hidden>"#,
        r#"<input id="recovery-email""#,
        r#"<button id="recovery-send""#,
        r#"id="recovery-result""#,
    ] {
        assert!(html.contains(id), "{id} missing");
    }
    assert!(html.contains("en:page-profile-passphrase-rule(min=15,max=256)"));
    let csp = r.header("content-security-policy").unwrap();
    let script = html.split("<script>").nth(1).unwrap().split("</script>").next().unwrap();
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()));
    assert!(csp.contains(&format!("script-src 'sha256-{hash}';")), "{csp}");
    assert!(csp.starts_with("default-src 'none';") && csp.contains("connect-src 'self'"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(html.matches("<script").count(), 1, "one script, the hashed one");
    let markup = html.replace(script, "").to_ascii_lowercase();
    let inline_handler = markup.match_indices(" on").any(|(i, _)| {
        let rest = &markup[i + 3..];
        let name = rest.chars().take_while(char::is_ascii_lowercase).count();
        name > 0 && rest[name..].starts_with('=')
    });
    assert!(!inline_handler, "no inline event handlers: the CSP would block them");
    assert!(!markup.contains("style=") && !markup.contains("src=") && !markup.contains("href="), "no inline styles or outside assets");
    assert!(script.contains("history.replaceState"), "the fragment leaves the address bar");
}

#[test]
fn the_profile_page_speaks_the_browsers_language() {
    let w = World::new();
    let html = body_text(&page(&w, "ru-RU,ru;q=0.9"));
    assert!(html.starts_with("<!doctype html><html lang=\"ru\">"));
    assert!(html.contains("ru:page-profile-title()") && html.contains("ru:page-profile-recovery-intro(minutes=60)"));
}

#[test]
fn update_init_is_in_the_schema_as_a_non_consequential_action() {
    let doc = openapi::schema(&Settings::default());
    let op = &doc["paths"]["/api/profile/init"]["post"];
    assert_eq!(op["operationId"], "updateInit");
    assert_eq!(op["x-openai-isConsequential"], false);
    assert!(op["description"].as_str().unwrap().chars().count() <= 300);
    assert!(op["description"].as_str().unwrap().contains("60 minutes"));
    assert_eq!(op["requestBody"]["content"]["application/json"]["schema"]["properties"]["pin"]["pattern"], "^[1-9][0-9]{3,11}$");
    for status in ["200", "403", "404", "409", "422", "429", "503"] {
        assert!(op["responses"][status].is_object(), "{status}");
    }
    for path in ["/api/profile/request", "/api/profile/load", "/api/profile/save", "/profile"] {
        assert!(doc["paths"][path].is_null(), "{path} is not a GPT action");
    }
}

/// Counts the calls made to the store in front of it.
struct Counted<'a>(&'a MemoryStore, std::cell::Cell<usize>);

impl Counted<'_> {
    fn count(&self) {
        self.1.set(self.1.get() + 1);
    }
}

impl Store for Counted<'_> {
    fn find_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.count();
        self.0.find_user_by_email(email)
    }
    fn find_user_by_pin(&self, pin: &str) -> Result<Option<User>, StoreError> {
        self.count();
        self.0.find_user_by_pin(pin)
    }
    fn find_user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.count();
        self.0.find_user_by_id(id)
    }
    fn find_secret(&self, hash: &str, purpose: SecretPurpose, now: Timestamp) -> Result<Option<Secret>, StoreError> {
        self.count();
        self.0.find_secret(hash, purpose, now)
    }
    fn find_email_change(&self, id: &str) -> Result<Option<crate::ports::EmailChange>, StoreError> {
        self.count();
        self.0.find_email_change(id)
    }
    fn find_oauth_client(&self, id: &str) -> Result<Option<crate::ports::OauthClient>, StoreError> {
        self.count();
        self.0.find_oauth_client(id)
    }
    fn find_oauth_token(&self, hash: &str) -> Result<Option<(crate::ports::OauthToken, crate::ports::OauthGrant)>, StoreError> {
        self.count();
        self.0.find_oauth_token(hash)
    }
    fn apply(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.count();
        self.0.apply(ops)
    }
}

/// Issue 19 item 2: an unknown address costs one read, a known one a render and a committed
/// write — so the answers that must not tell them apart come before either.
#[test]
fn the_recovery_request_and_concealed_init_answer_before_any_store_call_and_send_after() {
    let mut w = World::new();
    let pin = active(&w, "ann@example.com");
    w.settings.conceal_accounts = true;
    let tool_call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "updateInit", "arguments": {"email": "ann@example.com"}}});
    let calls = [
        ("/api/profile/request", json!({"email": "ann@example.com"})),
        ("/api/profile/init", json!({"email": "ann@example.com"})),
        ("/api/profile/init", json!({"pin": pin})),
        // The same action as an MCP tool: its work waits for the MCP answer.
        ("/mcp", tool_call),
        ("/api/profile/request", json!({"email": "nobody@example.com"})),
    ];
    for (i, (path, body)) in calls.into_iter().enumerate() {
        w.advance(61_000);
        let store = Counted(&w.store, std::cell::Cell::new(0));
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if path == "/mcp" {
            headers.push(("accept".into(), "application/json, text/event-stream".into()));
            headers.push(("mcp-protocol-version".into(), "2025-11-25".into()));
        }
        let req = Request { method: "POST".into(), path: path.into(), headers, body: serde_json::to_vec(&body).unwrap(), body_too_large: false, query: String::new() };
        let before = outbox(&w).len();
        let r = w.send_then(&store, &req, |r| {
            assert_eq!(r.status, 200, "{path}: {:?}", r.json_body());
            assert_eq!(store.1.get(), 0, "{path} {body}: answered before the store was asked anything");
        });
        assert_eq!(r.status, 200);
        assert!(store.1.get() > 0, "{path}: the work ran after the answer");
        let expected = if i < 4 { 1 } else { 0 };
        assert_eq!(outbox(&w).len(), before + expected, "{path} {body}: the link went out after the answer");
    }
}
