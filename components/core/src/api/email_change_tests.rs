//! The email change (SPEC §2.3) over the in-memory store and ephemeral store: every state, the
//! time rules with the test clock, the attempt count, and what a failing step leaves behind.

use serde_json::{Value, json};

use super::tests::World;
use super::*;
use crate::ports::{EmailChangeState, Message, SecretPurpose, UserStatus};

const MIN: i64 = 60_000;

/// An active account and a live profile token for it.
fn account(w: &World, email: &str) -> String {
    w.sign_up(email);
    assert_eq!(w.call("POST", "/api/signup/verify", json!({"token": w.last_token()})).status, 200);
    w.advance(MIN);
    assert_eq!(w.call("POST", "/api/profile/init", json!({"email": email})).status, 200);
    w.last_token()
}

fn step(w: &World, name: &str, body: Value) -> Response {
    w.call("POST", &format!("/api/email-change/{name}"), body)
}

fn last_mail(w: &World) -> Message {
    w.store.state.borrow().outbox.last().unwrap().1.clone()
}

/// The code in the last email (FakeL10n renders `kind(code=…,valid-minutes=…)`).
fn last_code(w: &World) -> String {
    let text = last_mail(w).text;
    text.split("code=").nth(1).unwrap()[..6].to_owned()
}

fn status_code(r: &Response) -> (u16, String) {
    (r.status, r.json_body()["code"].as_str().unwrap_or_default().to_owned())
}

fn start(w: &World, token: &str) -> String {
    let r = step(w, "start", json!({"token": token}));
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    r.json_body()["flow"].as_str().unwrap().to_owned()
}

fn wrong(code: &str) -> String {
    format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
}

/// A flow in `enter_new`.
fn confirmed(w: &World, token: &str) -> String {
    let flow = start(w, token);
    let r = step(w, "confirm-current", json!({"token": token, "flow": flow, "code": last_code(w)}));
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    flow
}

fn flow_state(w: &World, id: &str) -> EmailChangeState {
    w.store.state.borrow().email_changes.iter().find(|f| f.id == id).unwrap().state
}

#[test]
fn the_whole_change_moves_the_address_revokes_every_token_and_notifies_the_old_address() {
    let w = World::new();
    let token = account(&w, "ann@example.com");
    let r = step(&w, "start", json!({"token": token}));
    let body = r.json_body();
    assert_eq!((r.status, body["state"].as_str()), (200, Some("confirm_current")), "{body:?}");
    assert_eq!((body["resend_after_s"].as_i64(), body["code_valid_s"].as_i64(), body["sends_left"].as_i64()), (Some(60), Some(600), Some(4)));
    assert_eq!(body["message"], "en:email-change-sent-current(to=a***@example.com)");
    let flow = body["flow"].as_str().unwrap().to_owned();
    assert_eq!(flow.len(), 32, "128 random bits in hex");
    let mail = last_mail(&w);
    assert_eq!((mail.kind.as_str(), mail.to.as_str()), ("email-change-current", "ann@example.com"));
    assert!(mail.text.contains("valid-minutes=10"));
    assert!(!mail.subject.contains(&last_code(&w)));

    let r = step(&w, "confirm-current", json!({"token": token, "flow": flow, "code": last_code(&w)}));
    assert_eq!((r.status, r.json_body()["state"].as_str()), (200, Some("enter_new")));
    let r = step(&w, "check", json!({"token": token, "flow": flow, "email": " Bob@Example.com "}));
    assert_eq!((r.status, r.json_body()["available"].as_bool()), (200, Some(true)));
    let r = step(&w, "request-new", json!({"token": token, "flow": flow, "email": "bob@example.com"}));
    let body = r.json_body();
    assert_eq!((r.status, body["state"].as_str(), body["window_s"].as_i64()), (200, Some("confirm_new"), Some(600)), "{body:?}");
    assert_eq!(body["sends_left"].as_i64(), Some(3), "5 codes per flow: start's code counts");
    let mail = last_mail(&w);
    assert_eq!((mail.kind.as_str(), mail.to.as_str()), ("email-change-new", "bob@example.com"));

    let r = step(&w, "confirm-new", json!({"token": token, "flow": flow, "code": last_code(&w)}));
    let body = r.json_body();
    assert_eq!((r.status, body["state"].as_str(), body["email"].as_str()), (200, Some("done"), Some("bob@example.com")), "{body:?}");
    let fresh = body["token"].as_str().unwrap().to_owned();
    let notice = last_mail(&w);
    assert_eq!((notice.kind.as_str(), notice.to.as_str()), ("email-changed", "ann@example.com"));
    assert!(notice.text.contains("new-email=b***@example.com"), "{}", notice.text);

    let state = w.store.state.borrow().clone();
    let user = &state.users[0];
    assert_eq!((user.email.as_str(), user.email_verified, user.status), ("bob@example.com", true, UserStatus::Active));
    assert_eq!(state.secrets.len(), 1, "every old secret revoked, one fresh profile token");
    assert_eq!(state.secrets[0].purpose, SecretPurpose::Profile);
    assert_eq!(flow_state(&w, &flow), EmailChangeState::Done);
    assert_eq!(status_code(&w.call("POST", "/api/profile/load", json!({"token": token}))), (410, "INVALID_TOKEN".into()));
    let r = w.call("POST", "/api/profile/load", json!({"token": fresh}));
    assert_eq!((r.status, r.json_body()["email"].as_str()), (200, Some("bob@example.com")));
    // The flow is over: a step with the fresh token says so.
    let r = step(&w, "resend", json!({"token": fresh, "flow": flow}));
    assert_eq!((status_code(&r), r.json_body()["state"].as_str()), ((409, "WRONG_STEP".into()), Some("done")));
}

#[test]
fn five_wrong_codes_kill_the_flow_and_the_right_one_then_gets_429() {
    let w = World::new();
    let token = account(&w, "ann@example.com");
    let flow = start(&w, &token);
    let right = last_code(&w);
    for left in (0..5).rev() {
        let r = step(&w, "confirm-current", json!({"token": token, "flow": flow, "code": wrong(&right)}));
        assert_eq!((status_code(&r), r.json_body()["attempts_left"].as_i64()), ((422, "INVALID_CODE".into()), Some(left)));
    }
    assert_eq!(flow_state(&w, &flow), EmailChangeState::Dead);
    let r = step(&w, "confirm-current", json!({"token": token, "flow": flow, "code": right}));
    assert_eq!(status_code(&r), (429, "TOO_MANY_ATTEMPTS".into()));
    assert!(r.header("retry-after").is_none(), "no wait makes a dead flow work");
    w.advance(MIN);
    assert_eq!(status_code(&step(&w, "resend", json!({"token": token, "flow": flow}))), (429, "TOO_MANY_ATTEMPTS".into()));
}

#[test]
fn wrong_codes_count_across_resends_and_a_malformed_code_is_not_counted() {
    let w = World::new();
    let token = account(&w, "ann@example.com");
    let flow = start(&w, &token);
    for bad in ["12345", "abcdef", ""] {
        let r = step(&w, "confirm-current", json!({"token": token, "flow": flow, "code": bad}));
        assert_eq!((status_code(&r), r.json_body()["field"].as_str()), ((422, "INVALID_INPUT".into()), Some("code")));
    }
    let first = last_code(&w);
    for left in [4, 3] {
        let r = step(&w, "confirm-current", json!({"token": token, "flow": flow, "code": wrong(&first)}));
        assert_eq!(r.json_body()["attempts_left"].as_i64(), Some(left));
    }
    w.advance(MIN);
    assert_eq!(step(&w, "resend", json!({"token": token, "flow": flow})).status, 200);
    // The replaced code is now a wrong one, and counts as such: the resend reset nothing.
    let r = step(&w, "confirm-current", json!({"token": token, "flow": flow, "code": first}));
    assert_eq!((status_code(&r), r.json_body()["attempts_left"].as_i64()), ((422, "INVALID_CODE".into()), Some(2)));
    let second = last_code(&w);
    let r = step(&w, "confirm-current", json!({"token": token, "flow": flow, "code": wrong(&second)}));
    assert_eq!(r.json_body()["attempts_left"].as_i64(), Some(1));
    w.advance(MIN);
    assert_eq!(step(&w, "resend", json!({"token": token, "flow": flow})).status, 200);
    let r = step(&w, "confirm-current", json!({"token": token, "flow": flow, "code": wrong(&last_code(&w))}));
    assert_eq!(r.json_body()["attempts_left"].as_i64(), Some(0));
    let r = step(&w, "confirm-current", json!({"token": token, "flow": flow, "code": last_code(&w)}));
    assert_eq!(status_code(&r), (429, "TOO_MANY_ATTEMPTS".into()), "5 wrong codes over 3 sends, then the right one");
}

#[test]
fn resend_waits_60_s_sends_at_most_5_codes_and_a_code_lives_10_minutes() {
    let w = World::new();
    let token = account(&w, "ann@example.com");
    let flow = start(&w, &token);
    w.advance(59_000);
    let r = step(&w, "resend", json!({"token": token, "flow": flow}));
    assert_eq!((status_code(&r), r.header("retry-after")), ((429, "TOO_MANY_REQUESTS".into()), Some("1")));
    for left in (0..4).rev() {
        w.advance(MIN);
        let r = step(&w, "resend", json!({"token": token, "flow": flow}));
        assert_eq!((r.status, r.json_body()["sends_left"].as_i64()), (200, Some(left)), "{:?}", r.json_body());
    }
    w.advance(MIN);
    assert_eq!(status_code(&step(&w, "resend", json!({"token": token, "flow": flow}))), (429, "TOO_MANY_CODES".into()));
    let code = last_code(&w);
    w.advance(10 * MIN - MIN);
    let r = step(&w, "confirm-current", json!({"token": token, "flow": flow, "code": code}));
    assert_eq!(status_code(&r), (410, "CODE_EXPIRED".into()));
}

#[test]
fn the_new_address_window_and_the_flow_hour_end_the_change() {
    let mut w = World::new();
    w.settings.email_change_window_s = 120;
    let token = account(&w, "ann@example.com");
    let flow = confirmed(&w, &token);
    let r = step(&w, "request-new", json!({"token": token, "flow": flow, "email": "bob@example.com"}));
    assert_eq!((r.json_body()["window_s"].as_i64(), r.json_body()["code_valid_s"].as_i64()), (Some(120), Some(120)));
    assert!(last_mail(&w).text.contains("valid-minutes=2"));
    let code = last_code(&w);
    w.advance(120_000);
    assert_eq!(status_code(&step(&w, "confirm-new", json!({"token": token, "flow": flow, "code": code}))), (410, "CODE_EXPIRED".into()));
    assert_eq!(status_code(&step(&w, "resend", json!({"token": token, "flow": flow}))), (410, "CODE_EXPIRED".into()));
    assert_eq!(w.store.state.borrow().users[0].email, "ann@example.com");

    let w = World::new();
    let token = account(&w, "ann@example.com");
    let flow = start(&w, &token);
    w.advance(3600 * 1000);
    // The profile token lives an hour too; a fresh one shows the flow's own expiry.
    assert_eq!(w.call("POST", "/api/profile/init", json!({"email": "ann@example.com"})).status, 200);
    let token = w.last_token();
    assert_eq!(status_code(&step(&w, "resend", json!({"token": token, "flow": flow}))), (410, "FLOW_EXPIRED".into()));
}

#[test]
fn steps_out_of_order_name_the_state_and_other_users_flows_are_not_found() {
    let w = World::new();
    let ann = account(&w, "ann@example.com");
    let bob = account(&w, "bob@example.com");
    let flow = start(&w, &ann);
    let r = step(&w, "check", json!({"token": ann, "flow": flow, "email": "new@example.com"}));
    assert_eq!((status_code(&r), r.json_body()["state"].as_str()), ((409, "WRONG_STEP".into()), Some("confirm_current")));
    let r = step(&w, "confirm-new", json!({"token": ann, "flow": flow, "code": "123456"}));
    assert_eq!(status_code(&r), (409, "WRONG_STEP".into()));
    assert_eq!(status_code(&step(&w, "resend", json!({"token": bob, "flow": flow}))), (404, "FLOW_NOT_FOUND".into()));
    assert_eq!(status_code(&step(&w, "resend", json!({"token": ann, "flow": "0".repeat(32)}))), (404, "FLOW_NOT_FOUND".into()));
    w.advance(MIN);
    let newer = start(&w, &ann);
    assert_ne!(newer, flow);
    assert_eq!(status_code(&step(&w, "resend", json!({"token": ann, "flow": flow}))), (404, "FLOW_NOT_FOUND".into()), "replaced by the newer start");
    assert_eq!(status_code(&step(&w, "start", json!({"token": "nope"}))), (410, "INVALID_TOKEN".into()));
    assert_eq!(status_code(&step(&w, "resend", json!({"token": ann}))), (422, "INVALID_INPUT".into()));
}

#[test]
fn the_new_address_must_differ_be_valid_and_belong_to_nobody() {
    let w = World::new();
    let ann = account(&w, "ann@example.com");
    account(&w, "bob@example.com");
    let flow = confirmed(&w, &ann);
    for (email, expected) in [("ANN@example.com", (422, "INVALID_INPUT")), ("not an address", (422, "INVALID_INPUT")), ("bob@example.com", (409, "EMAIL_TAKEN"))] {
        for name in ["check", "request-new"] {
            let r = step(&w, name, json!({"token": ann, "flow": flow, "email": email}));
            assert_eq!(status_code(&r), (expected.0, expected.1.to_owned()), "{name} {email}");
        }
    }
    assert_eq!(flow_state(&w, &flow), EmailChangeState::EnterNew, "a refused address changes nothing");
}

#[test]
fn an_address_taken_between_request_new_and_confirm_new_is_409_and_nothing_changes() {
    let w = World::new();
    let ann = account(&w, "ann@example.com");
    let flow = confirmed(&w, &ann);
    step(&w, "request-new", json!({"token": ann, "flow": flow, "email": "new@example.com"}));
    let code = last_code(&w);
    w.sign_up("new@example.com");
    let before = w.store.state.borrow().secrets.len();
    let r = step(&w, "confirm-new", json!({"token": ann, "flow": flow, "code": code}));
    assert_eq!(status_code(&r), (409, "EMAIL_TAKEN".into()));
    let state = w.store.state.borrow();
    assert_eq!(state.users[0].email, "ann@example.com");
    assert_eq!(state.secrets.len(), before, "no token revoked or issued");
    assert!(state.outbox.iter().all(|(_, m)| m.kind != "email-changed"));
}

#[test]
fn an_unavailable_ephemeral_store_is_503_and_leaves_the_flow_as_it_was() {
    let w = World::new();
    let ann = account(&w, "ann@example.com");
    w.ephemeral.down.set(true);
    assert_eq!(status_code(&step(&w, "start", json!({"token": ann}))), (503, "SERVICE_UNAVAILABLE".into()));
    assert!(w.store.state.borrow().email_changes.is_empty());
    w.ephemeral.down.set(false);
    w.advance(MIN);
    let flow = start(&w, &ann);
    let code = last_code(&w);
    let mails = w.store.state.borrow().outbox.len();
    w.ephemeral.down.set(true);
    assert_eq!(status_code(&step(&w, "confirm-current", json!({"token": ann, "flow": flow, "code": code}))), (503, "SERVICE_UNAVAILABLE".into()));
    w.advance(MIN);
    assert_eq!(status_code(&step(&w, "resend", json!({"token": ann, "flow": flow}))), (503, "SERVICE_UNAVAILABLE".into()));
    assert_eq!(w.store.state.borrow().outbox.len(), mails, "no code mailed while codes cannot be stored");
    w.ephemeral.down.set(false);
    let r = step(&w, "confirm-current", json!({"token": ann, "flow": flow, "code": code}));
    assert_eq!(r.status, 200, "the flow goes on: {:?}", r.json_body());
}

#[test]
fn a_code_whose_send_did_not_commit_is_never_accepted() {
    let w = World::new();
    let ann = account(&w, "ann@example.com");
    let flow = start(&w, &ann);
    let code = last_code(&w);
    w.advance(MIN);
    // The write fails after the new code was put in the ephemeral store.
    let req = Request {
        method: "POST".into(),
        path: "/api/email-change/resend".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(&json!({"token": ann, "flow": flow})).unwrap(),
        body_too_large: false, query: String::new(),
    };
    assert_eq!(w.send_to(&super::profile_tests::WritesFail(&w.store), &req).status, 503);
    assert_eq!(w.ephemeral.values.borrow().keys().filter(|k| k.starts_with("ec:code:")).count(), 2, "the stray code is stored");
    let r = step(&w, "confirm-current", json!({"token": ann, "flow": flow, "code": code}));
    assert_eq!(r.status, 200, "the mailed code still works: {:?}", r.json_body());
}

// ---- Enumeration (issue 19 item 1) --------------------------------------------------------

#[test]
fn check_answers_ten_times_per_flow_then_429_too_many_checks_and_a_new_flow_counts_again() {
    let w = World::new();
    let ann = account(&w, "ann@example.com");
    account(&w, "bob@example.com");
    let flow = confirmed(&w, &ann);
    for i in 0..email_change::MAX_CHECKS {
        // Taken and free alike are counted (outside conceal mode each answer tells them apart).
        let (email, expected) = if i % 2 == 0 { ("bob@example.com", 409) } else { ("new@example.com", 200) };
        assert_eq!(step(&w, "check", json!({"token": ann, "flow": flow, "email": email})).status, expected, "check {i}");
    }
    for email in ["new@example.com", "bob@example.com"] {
        let r = step(&w, "check", json!({"token": ann, "flow": flow, "email": email}));
        assert_eq!(status_code(&r), (429, "TOO_MANY_CHECKS".into()), "{email}");
        assert_eq!(r.json_body()["message"], "en:error-too-many-checks()");
        assert_eq!(r.json_body()["instructions"], "en:instructions-too-many-checks(url=)");
        assert!(r.header("retry-after").is_none(), "no wait helps within this flow");
    }
    assert_eq!(status_code(&step(&w, "check", json!({"token": ann, "flow": flow, "email": "nope"}))), (422, "INVALID_INPUT".into()), "bad input is named first");
    let r = step(&w, "request-new", json!({"token": ann, "flow": flow, "email": "new@example.com"}));
    assert_eq!(r.status, 200, "the flow goes on: {:?}", r.json_body());
    w.advance(MIN);
    let newer = confirmed(&w, &ann);
    assert_eq!(step(&w, "check", json!({"token": ann, "flow": newer, "email": "new@example.com"})).status, 200);
}

/// `body` with the masked form of `email` replaced, for comparing answers about two addresses.
fn unmasked(body: Value, email: &str) -> String {
    body.to_string().replace(&crate::api::auth_check::mask_email(email), "ADDRESS")
}

#[test]
fn in_conceal_mode_a_taken_new_address_is_answered_as_a_free_one_at_every_step_and_gets_no_code() {
    let mut w = World::new();
    w.settings.conceal_accounts = true;
    let ann = account(&w, "ann@example.com");
    account(&w, "bob@example.com");
    w.sign_up("carl@example.com"); // pending: taken too
    let mut answers: Vec<Vec<(String, u16, String)>> = Vec::new();
    for (round, new) in ["free@example.com", "bob@example.com", "carl@example.com", "free2@example.com"].into_iter().enumerate() {
        w.advance(MIN);
        let flow = confirmed(&w, &ann);
        let body = |extra: Value| {
            let mut b = json!({"token": ann, "flow": flow});
            b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            b
        };
        let mails = w.store.state.borrow().outbox.len();
        let mut seen = Vec::new();
        let mut record = |name: &str, r: Response| seen.push((name.to_owned(), r.status, unmasked(r.json_body(), new)));
        record("check", step(&w, "check", body(json!({"email": new}))));
        record("request-new", step(&w, "request-new", body(json!({"email": new}))));
        record("confirm-new", step(&w, "confirm-new", body(json!({"code": "000000"}))));
        w.advance(MIN);
        record("resend", step(&w, "resend", body(json!({}))));
        for _ in 0..4 {
            record("confirm-new", step(&w, "confirm-new", body(json!({"code": "000001"}))));
        }
        record("resend", step(&w, "resend", body(json!({}))));
        assert_eq!(flow_state(&w, &flow), EmailChangeState::Dead, "{new}: five wrong codes, whatever the address");
        let sent: Vec<(String, String)> = w.store.state.borrow().outbox[mails..].iter().map(|(_, m)| (m.to.clone(), m.kind.clone())).collect();
        if new.starts_with("free") {
            assert_eq!(sent, vec![(new.to_owned(), "email-change-new".to_owned()); 2], "round {round}: two codes to a free address");
        } else {
            // The owner is told instead, at request-new and at the resend; never a code.
            assert!(!sent.is_empty() && sent.iter().all(|(to, kind)| to == new && kind == "email-change-taken"), "round {round}: {sent:?}");
        }
        answers.push(seen);
    }
    for (i, seen) in answers.iter().enumerate() {
        assert_eq!(seen, &answers[0], "round {i} answers like a free address");
    }
    assert_eq!(answers[0][0].1, 200);
    assert!(answers[0][0].2.contains("email-change-check-concealed"), "{:?}", answers[0][0]);
    assert!(answers[0][1].2.contains("email-change-sent-new-concealed(to=ADDRESS)"), "{:?}", answers[0][1]);
    assert_eq!((answers[0][2].1, answers[0][3].1), (422, 200), "a wrong code, then a resend");
    // Nothing ever let a code to bob or carl be entered: their addresses are theirs.
    let state = w.store.state.borrow();
    assert_eq!(state.users.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(), ["ann@example.com", "bob@example.com", "carl@example.com"]);
}

#[test]
fn in_conceal_mode_a_throttled_code_to_the_new_address_is_dropped_and_the_flow_goes_on() {
    let mut w = World::new();
    let ann = account(&w, "ann@example.com");
    let dan = account(&w, "dan@example.com");
    let (ann_flow, dan_flow) = (confirmed(&w, &ann), confirmed(&w, &dan));
    assert_eq!(step(&w, "request-new", json!({"token": ann, "flow": ann_flow, "email": "new@example.com"})).status, 200);
    let r = step(&w, "request-new", json!({"token": dan, "flow": dan_flow, "email": "new@example.com"}));
    assert_eq!(status_code(&r), (429, "TOO_MANY_REQUESTS".into()), "outside conceal mode the second code within a minute waits");

    w.settings.conceal_accounts = true;
    let mails = w.store.state.borrow().outbox.len();
    let r = step(&w, "request-new", json!({"token": dan, "flow": dan_flow, "email": "new@example.com"}));
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    assert_eq!(flow_state(&w, &dan_flow), EmailChangeState::ConfirmNew);
    assert_eq!(w.store.state.borrow().outbox.len(), mails, "no mail: it was throttled");
}
