//! SPEC §2.1 over HTTP, on SQLite and on PostgreSQL: what any server (ours elsewhere, Spin) must answer.

use serde_json::{Value, json};

use crate::helpers::{Backend, PASSPHRASE, email, is_russian, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    signup_answers_201_with_the_pin_and_emails_the_verification_link,
    signup_in_russian_sends_the_email_in_russian,
    verify_activates_the_account_once_and_then_answers_410,
    signup_of_an_active_address_is_409_with_the_recovery_url,
    signup_without_consent_is_422_consent_required,
    thirty_two_concurrent_verifies_of_one_token_have_exactly_one_winner,
    concurrent_signups_of_one_new_address_make_one_account,
    a_second_email_within_a_minute_is_throttled_with_retry_after,
    a_russian_accounts_links_name_russian_and_its_verify_answer_is_russian_in_an_english_browser,
);

async fn signup_answers_201_with_the_pin_and_emails_the_verification_link(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("ann");
    let r = app.sign_up(&to.to_uppercase(), "en").await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let pin = body["pin"].as_str().unwrap();
    assert_eq!(pin.len(), 6);
    assert!(pin.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(body["status"], "pending");
    assert!(body["instructions"].as_str().unwrap().contains(pin));
    assert!(!body.to_string().contains(PASSPHRASE));

    let mail = app.next_mail(&to).await;
    assert_eq!(mail.subject, "Confirm your email address");
    assert!(mail.text.contains(pin), "the PIN is in the text part");
    assert!(mail.html.contains(pin), "the PIN is in the HTML part");
    let link = mail.link();
    assert!(link.starts_with(&format!("{}/signup/verify#token=", app.base)), "{link}");
    assert_eq!(mail.token().len(), 43);
    assert!(mail.html.contains(&link.replace('&', "&amp;")), "the HTML part carries the same link");
    assert!(link.ends_with(&format!("&pin={pin}&lang=en")), "the link names the PIN it belongs to and the account's language: {link}");
    assert!(mail.text.contains("24 hours"), "the email says how long the link is valid");
    assert!(mail.text.contains("If you did not sign up"), "the email says what to do if unasked");
}

async fn signup_in_russian_sends_the_email_in_russian(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("ivan");
    let r = app.sign_up(&to, "ru-RU").await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().starts_with("Почти готово"));
    let mail = app.next_mail(&to).await;
    assert_eq!(mail.subject, "Подтвердите адрес электронной почты");
    assert!(mail.text.contains("Ссылка действительна 24 ч."));
    assert!(mail.html.contains("Подтвердить адрес"));
}

async fn verify_activates_the_account_once_and_then_answers_410(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("bob");
    assert_eq!(app.sign_up(&to, "en").await.status(), 201);
    let token = app.next_mail(&to).await.token();
    let r = app.verify(&token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "active");
    let again = app.verify(&token).await;
    assert_eq!(again.status(), 410);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["code"], "INVALID_TOKEN");
    assert!(body["instructions"].as_str().unwrap().contains("sign you up again"));
    let garbage = app.verify("not-a-token").await;
    assert_eq!(garbage.status(), 410);
}

async fn signup_of_an_active_address_is_409_with_the_recovery_url(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("taken");
    app.active_user(&to).await;
    let r = app.sign_up(&to, "en").await;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "EMAIL_ALREADY_REGISTERED");
    let url = body["recovery_url"].as_str().unwrap();
    assert!(url.ends_with("/profile"), "{url}");
    assert!(body["instructions"].as_str().unwrap().contains(url));
}

async fn signup_without_consent_is_422_consent_required(backend: Backend) {
    let app = spawn_app(backend).await;
    for consent in [json!(false), Value::Null] {
        let r = app.post("/api/signup/init", &json!({"email": email("nc"), "consent": consent, "locale": "ru", "passphrase": PASSPHRASE})).await;
        assert_eq!(r.status(), 422);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "CONSENT_REQUIRED");
        assert!(body["message"].as_str().unwrap().contains("согласие"), "answered in the requested locale");
    }
}

async fn thirty_two_concurrent_verifies_of_one_token_have_exactly_one_winner(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("race");
    app.sign_up(&to, "en").await;
    let token = app.next_mail(&to).await.token();
    let calls = (0..32).map(|_| app.verify(&token));
    let statuses: Vec<u16> = futures::future::join_all(calls).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 410).count(), 31, "{statuses:?}");
}

async fn concurrent_signups_of_one_new_address_make_one_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("dup");
    let calls = (0..6).map(|_| app.sign_up(&to, "en"));
    let responses = futures::future::join_all(calls).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.contains(&201), "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 429), "only created or throttled: {statuses:?}");
    let mut pins = Vec::new();
    for r in responses.into_iter().filter(|r| r.status() == 201) {
        pins.push(r.json::<Value>().await.unwrap()["pin"].clone());
    }
    pins.dedup();
    assert_eq!(pins.len(), 1, "one account, one PIN: {pins:?}");
}

async fn a_second_email_within_a_minute_is_throttled_with_retry_after(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("fast");
    assert_eq!(app.sign_up(&to, "en").await.status(), 201);
    let r = app.sign_up(&to, "en").await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "TOO_MANY_REQUESTS");
}


/// SPEC §3: pages and answers about a known account speak its language, whatever the browser
/// prefers. The emailed links carry the language in their fragment; the verify answer is the
/// account's language even when the browser asks for English.
async fn a_russian_accounts_links_name_russian_and_its_verify_answer_is_russian_in_an_english_browser(backend: Backend) {
    let app = spawn_app(backend).await;
    let to = email("lang");
    let r = app.sign_up(&to, "ru").await;
    assert_eq!(r.status(), 201);
    let pin = r.json::<Value>().await.unwrap()["pin"].as_str().unwrap().to_owned();
    let mail = app.next_mail(&to).await;
    assert!(mail.link().ends_with(&format!("&pin={pin}&lang=ru")), "the verify link names the account's language: {}", mail.link());
    let r = app.client.post(app.url("/api/signup/verify")).header("accept-language", "en-US,en;q=0.9").json(&json!({"token": mail.token(), "pin": pin})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert!(is_russian(answer["message"].as_str().unwrap()), "the verify answer is in the account's language: {answer}");

    assert_eq!(app.profile_init(&json!({"email": to})).await.status(), 200);
    let link = app.next_mail(&to).await.link();
    assert!(link.starts_with(&format!("{}/profile#token=", app.base)) && link.ends_with("&lang=ru"), "the profile link names it too: {link}");
}
