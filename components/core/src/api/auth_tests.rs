//! Auth_Check (SPEC §2.4) over the in-memory store: every answer, the count of failures, the
//! delay, the lock and its one email, the reset by a profile save, one Argon2 run per check, and
//! the rehash to the configured parameters.

use serde_json::{Value, json};

use super::tests::World;
use super::*;
use crate::domain::passphrase::argon2_verifications;
use crate::domain::{Argon2Params, Passphrase, PassphraseHash};
use crate::ports::{AUTH_LOCK_AFTER, UserStatus};

const PASSPHRASE: &str = "correct horse battery staple";
const WRONG: &str = "not the passphrase of anyone";

fn active(w: &World, email: &str) -> String {
    let pin = w.sign_up(email).json_body()["pin"].as_str().unwrap().to_owned();
    assert_eq!(w.call("POST", "/api/signup/verify", json!({"token": w.last_token()})).status, 200);
    pin
}

fn check(w: &World, pin: Value, passphrase: &str) -> Response {
    w.call("POST", "/api/auth/check", json!({"pin": pin, "passphrase": passphrase}))
}

fn code(r: &Response) -> (u16, String) {
    (r.status, r.json_body()["code"].as_str().unwrap_or_default().to_owned())
}

fn mails_of_kind(w: &World, kind: &str) -> usize {
    w.store.state.borrow().outbox.iter().filter(|(_, m)| m.kind == kind).count()
}

/// Fails `n` times, moving the clock past each delay so every attempt is counted.
fn fail(w: &World, pin: &str, n: usize) {
    for _ in 0..n {
        let r = check(w, json!(pin), WRONG);
        let r = if r.status == 429 {
            w.advance(i64::from(r.header("retry-after").unwrap().parse::<u32>().unwrap()) * 1000);
            check(w, json!(pin), WRONG)
        } else {
            r
        };
        assert_eq!(code(&r).1, "INVALID_CREDENTIALS", "{:?}", r.json_body());
    }
}

#[test]
fn the_right_passphrase_of_an_active_account_is_200_with_the_masked_address() {
    let w = World::new();
    let pin = active(&w, "ann@example.com");
    for given in [json!(pin), json!(pin.parse::<u64>().unwrap())] {
        let r = check(&w, given, PASSPHRASE);
        let body = r.json_body();
        assert_eq!(r.status, 200, "{body:?}");
        assert_eq!((body["pin"].as_str(), body["status"].as_str()), (Some(pin.as_str()), Some("active")));
        assert_eq!((body["locale"].as_str(), body["email_masked"].as_str()), (Some("en"), Some("a***@example.com")));
        assert!(!body.to_string().contains(PASSPHRASE));
    }
}

#[test]
fn an_unknown_pin_and_a_wrong_passphrase_get_the_same_401_after_one_argon2_run_each() {
    let w = World::new();
    let pin = active(&w, "ann@example.com");
    let before = argon2_verifications();
    let wrong = check(&w, json!(pin), WRONG);
    assert_eq!(argon2_verifications(), before + 1, "a wrong passphrase: one verification");
    let unknown = check(&w, json!("987654"), WRONG);
    assert_eq!(argon2_verifications(), before + 2, "an unknown PIN: one verification, against the dummy hash");
    assert_eq!(code(&wrong), (401, "INVALID_CREDENTIALS".into()));
    assert_eq!((wrong.status, wrong.json_body()), (unknown.status, unknown.json_body()), "the same answer");
}

#[test]
fn the_state_of_an_account_is_told_only_after_its_passphrase_matched() {
    let w = World::new();
    let pending = w.sign_up("pat@example.com").json_body()["pin"].as_str().unwrap().to_owned();
    assert_eq!(code(&check(&w, json!(pending), PASSPHRASE)), (403, "EMAIL_NOT_VERIFIED".into()));
    assert_eq!(code(&check(&w, json!(pending), WRONG)), (401, "INVALID_CREDENTIALS".into()));
    let blocked = active(&w, "bob@example.com");
    w.store.state.borrow_mut().users.iter_mut().filter(|u| u.pin == blocked).for_each(|u| u.status = UserStatus::Blocked);
    assert_eq!(code(&check(&w, json!(blocked), PASSPHRASE)), (403, "ACCOUNT_BLOCKED".into()));
    assert_eq!(code(&check(&w, json!(blocked), WRONG)), (401, "INVALID_CREDENTIALS".into()));
}

#[test]
fn bad_input_is_422_naming_the_field() {
    let w = World::new();
    for (body, field) in [
        (json!({"pin": "12a", "passphrase": PASSPHRASE}), "pin"),
        (json!({"pin": -5, "passphrase": PASSPHRASE}), "pin"),
        (json!({"passphrase": PASSPHRASE}), "pin"),
        (json!({"pin": "123456"}), "passphrase"),
        (json!({"pin": "123456", "passphrase": ""}), "passphrase"),
    ] {
        let r = w.call("POST", "/api/auth/check", body.clone());
        assert_eq!((code(&r), r.json_body()["field"].as_str()), ((422, "INVALID_INPUT".into()), Some(field)), "{body}");
    }
    assert!(w.store.state.borrow().auth_failures.is_empty(), "nothing was counted");
}

#[test]
fn after_five_failures_each_attempt_waits_a_doubling_delay_and_a_success_resets_the_count() {
    let w = World::new();
    let pin = active(&w, "ann@example.com");
    fail(&w, &pin, 5);
    let r = check(&w, json!(pin), PASSPHRASE);
    assert_eq!((code(&r), r.header("retry-after")), ((429, "TOO_MANY_ATTEMPTS".into()), Some("1")), "even the right passphrase waits");
    w.advance(1000);
    assert_eq!(code(&check(&w, json!(pin), WRONG)).0, 401, "the 6th attempt after the delay");
    assert_eq!(check(&w, json!(pin), WRONG).header("retry-after"), Some("2"), "the delay doubled");
    w.advance(2000);
    assert_eq!(check(&w, json!(pin), PASSPHRASE).status, 200);
    fail(&w, &pin, 5);
    assert_eq!(check(&w, json!(pin), WRONG).status, 429, "counted from zero again after the success");
}

#[test]
fn the_hundredth_failure_locks_the_pin_mails_the_owner_once_and_a_profile_save_unlocks_it() {
    let w = World::new();
    let pin = active(&w, "ann@example.com");
    fail(&w, &pin, AUTH_LOCK_AFTER as usize);
    assert_eq!(mails_of_kind(&w, "pin-locked"), 1, "the owner is told");
    assert_eq!(code(&check(&w, json!(pin), PASSPHRASE)), (423, "PIN_LOCKED".into()), "even the right passphrase");
    w.advance(24 * 3600 * 1000);
    assert_eq!(code(&check(&w, json!(pin), WRONG)).0, 423, "a lock does not expire");
    assert_eq!(mails_of_kind(&w, "pin-locked"), 1, "and is mailed once");

    assert_eq!(w.call("POST", "/api/profile/init", json!({"pin": pin})).status, 200);
    let token = w.last_token();
    let new = "a new passphrase after the lock";
    assert_eq!(w.call("POST", "/api/profile/save", json!({"token": token, "passphrase": new})).status, 200);
    assert_eq!(check(&w, json!(pin), new).status, 200, "the new passphrase unlocks the PIN");
}

#[test]
fn an_unknown_pin_locks_too_without_mail_and_a_new_account_with_it_starts_clean() {
    let w = World::new();
    fail(&w, "987654", AUTH_LOCK_AFTER as usize);
    assert_eq!(code(&check(&w, json!("987654"), WRONG)).0, 423);
    assert!(w.store.state.borrow().outbox.is_empty(), "nobody to tell");
    // A sign-up that draws this PIN gets it unlocked.
    w.store.state.borrow_mut().auth_failures.insert("123456789".into(), (AUTH_LOCK_AFTER, 0, false));
    let user = crate::ports::User {
        id: "u9".into(),
        email: "new@example.com".into(),
        pin: "123456789".into(),
        passphrase_hash: String::new(),
        locale: "en".into(),
        status: UserStatus::Active,
        email_verified: true,
        consent_at: 0,
        policy_version: "1".into(),
        created_at: 0,
        updated_at: 0,
    };
    crate::ports::Store::apply(&w.store, vec![crate::ports::Op::InsertUser(user)]).unwrap();
    assert!(!w.store.state.borrow().auth_failures.contains_key("123456789"));
}

#[test]
fn a_match_against_a_hash_with_other_parameters_stores_one_with_the_configured_ones() {
    let w = World::new();
    let pin = active(&w, "ann@example.com");
    let light = Argon2Params { m_kib: 8192, t: 1, p: 1 };
    let old = Passphrase::parse(PASSPHRASE, 15, 256).unwrap().hash([3; 16], light).0;
    w.store.state.borrow_mut().users.iter_mut().for_each(|u| u.passphrase_hash = old.clone());
    assert_eq!(check(&w, json!(pin), PASSPHRASE).status, 200);
    let stored = PassphraseHash(w.store.state.borrow().users[0].passphrase_hash.clone());
    assert!(stored.has_params(w.settings.argon2), "rehashed: {}", stored.0);
    assert!(Passphrase::parse(PASSPHRASE, 15, 256).unwrap().verify(&stored));
    assert_eq!(check(&w, json!(pin), PASSPHRASE).status, 200, "the new hash works");
}

#[test]
fn auth_check_is_a_non_consequential_gpt_action_in_the_schema() {
    let w = World::new();
    let doc = w.call("GET", "/openapi.json", Value::Null).json_body();
    let op = &doc["paths"]["/api/auth/check"]["post"];
    assert_eq!((op["operationId"].as_str(), op["x-openai-isConsequential"].as_bool()), (Some("authCheck"), Some(false)));
    assert!(op["description"].as_str().unwrap().chars().count() <= 300);
}

#[test]
fn an_attempt_that_started_before_the_last_failure_was_counted_waits_one_delay_at_most() {
    use crate::ports::{AuthRefusal, auth_attempt_refusal};
    let now = 1_000_000;
    assert_eq!(auth_attempt_refusal(4, now, now), None, "five are free");
    assert_eq!(auth_attempt_refusal(5, now, now), Some(AuthRefusal::Wait(1)));
    assert_eq!(auth_attempt_refusal(5, now + 700, now), Some(AuthRefusal::Wait(1)), "not 2: one delay at most");
    assert_eq!(auth_attempt_refusal(6, now - 1500, now), Some(AuthRefusal::Wait(1)), "2 s after the 6th, 1.5 s gone");
    assert_eq!(auth_attempt_refusal(30, now, now), Some(AuthRefusal::Wait(900)), "capped at 15 min");
    assert_eq!(auth_attempt_refusal(99, 0, now), None, "the delay ran out");
    assert_eq!(auth_attempt_refusal(100, 0, now), Some(AuthRefusal::Locked));
}

#[test]
fn a_pin_of_another_length_without_an_account_is_401_after_one_argon2_run_and_not_counted() {
    let w = World::new();
    let pin = active(&w, "ann@example.com");
    let reference = check(&w, json!("987654"), WRONG);
    for other in ["9876", "98765", "9876543", "987654321012"] {
        let before = argon2_verifications();
        // More than the free failures: a counted PIN would be 429 by the last.
        for _ in 0..7 {
            let r = check(&w, json!(other), WRONG);
            assert_eq!((r.status, r.json_body()), (reference.status, reference.json_body()), "{other}: as an unknown PIN");
        }
        assert_eq!(argon2_verifications(), before + 7, "{other}: one Argon2 run each, as for an unknown PIN");
        assert!(!w.store.state.borrow().auth_failures.contains_key(other), "{other} is not counted");
    }
    // An account whose PIN is of another length (made before `pin_length` changed) is checked
    // and counted as ever.
    let mut w = w;
    w.settings.pin_length = 8;
    fail(&w, &pin, 1);
    assert_eq!(w.store.state.borrow().auth_failures.get(&pin).map(|f| f.0), Some(1), "the old-length PIN is counted");
    assert_eq!(check(&w, json!(pin), PASSPHRASE).status, 200);
}
