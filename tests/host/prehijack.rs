//! Pre-account hijack (SPEC §2.1): a later sign-up with someone else's address gets a new PIN,
//! and the page the emailed link opens shows that PIN before the click, so the mailbox owner can
//! see it is not the PIN their chat gave them.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::Value;

use crate::chromium::Chromedriver;
use crate::helpers::{Backend, email, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_victim_sees_the_attackers_pin_on_the_page_before_the_click_in_chromium() {
    let app = spawn_app(Backend::Sqlite).await;
    let control = app.control();
    let victim = email("victim");
    let r = app.sign_up(&victim, "en").await;
    let victims_pin = r.json::<Value>().await.unwrap()["pin"].as_str().unwrap().to_owned();
    app.next_mail(&victim).await;
    control.clock.advance(Duration::from_secs(61));
    let r = app.sign_up_with(&victim, "en", "the attacker's own long passphrase").await;
    assert_eq!(r.status(), 201);
    let attackers_pin = r.json::<Value>().await.unwrap()["pin"].as_str().unwrap().to_owned();
    assert_ne!(attackers_pin, victims_pin, "the replaced registration has a new PIN");
    let mail = app.next_mail(&victim).await;
    assert!(mail.text.contains(&attackers_pin) && !mail.text.contains(&victims_pin), "the email shows the PIN its link belongs to");

    let driver = Chromedriver::start().await;
    let browser = driver.client("en-US,en").await;
    browser.goto(&mail.link()).await.unwrap();
    let shown = browser.find(Locator::Id("pin")).await.unwrap();
    assert_eq!(shown.text().await.unwrap(), attackers_pin, "the page shows the PIN before the click");
    let check = browser.find(Locator::Id("pin-check")).await.unwrap();
    assert!(check.is_displayed().await.unwrap());
    assert!(check.text().await.unwrap().contains("Check that it is the PIN your chat gave you"));
    browser.close().await.unwrap();
    let (status,): (String,) = sqlx::query_as("SELECT status FROM users WHERE email = $1").bind(&victim).fetch_one(&control.db).await.unwrap();
    assert_eq!(status, "pending", "nothing is activated before the click");

    // The page sends the PIN it showed; a link whose PIN is not the token's account's is refused.
    let token = mail.token();
    let r = app.post("/api/signup/verify", &serde_json::json!({"token": token, "pin": victims_pin})).await;
    assert_eq!(r.status(), 410);
    let r = app.post("/api/signup/verify", &serde_json::json!({"token": token, "pin": attackers_pin})).await;
    assert_eq!(r.status(), 200);
}
