//! The pages in a real browser: Debian's Chromium driven through chromedriver (WebDriver).
//! Verify: opening the emailed link verifies nobody; the click does. Profile: the emailed link
//! edits the profile once; the recovery page answers alike for every address.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::{Value, json};

use crate::chromium::Chromedriver;
use crate::helpers::{Backend, email, is_russian, spawn_app, without_address};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emailed_link_verifies_only_after_a_click_in_chromium() {
    let app = spawn_app(Backend::Sqlite).await;
    let to = email("browser");
    assert_eq!(app.sign_up(&to, "ru").await.status(), 201);
    let link = app.next_mail(&to).await.link();

    let driver = Chromedriver::start().await;
    let browser = driver.client("ru-RU,ru").await;
    browser.goto(&link).await.unwrap();
    let title = browser.find(Locator::Css("h1")).await.unwrap().text().await.unwrap();
    assert_eq!(title, "Подтвердите адрес электронной почты", "the page speaks the browser's language");
    if let Some(control) = &app.control {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status,): (String,) = sqlx::query_as("SELECT status FROM users WHERE email = $1").bind(&to).fetch_one(&control.db).await.unwrap();
        assert_eq!(status, "pending", "opening the link verifies nobody");
    }

    browser.find(Locator::Id("confirm")).await.unwrap().click().await.unwrap();
    let result = browser.wait().at_most(Duration::from_secs(15)).for_element(Locator::Css("#result.ok")).await.expect("the page reports success");
    assert!(result.text().await.unwrap().contains("подтверждён"));
    let url = browser.current_url().await.unwrap();
    assert!(url.fragment().is_none(), "the token is dropped from the address bar: {url}");
    browser.close().await.unwrap();

    if let Some(control) = &app.control {
        let (status,): (String,) = sqlx::query_as("SELECT status FROM users WHERE email = $1").bind(&to).fetch_one(&control.db).await.unwrap();
        assert_eq!(status, "active");
    }
    let token = link.split("#token=").nth(1).unwrap();
    assert_eq!(app.verify(token).await.status(), 410, "the link is spent");
}

/// The text of the element `css` once `ready` accepts it (the pages fill their fields from
/// `fetch` answers); panics with the last text after 15 s.
async fn text_when(browser: &fantoccini::Client, css: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let text = match browser.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if ready(&text) {
            return text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{css} never showed the expected text; last: {text:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens `url` as a fresh document (a link that differs from the current address only in its
/// fragment would otherwise not reload the page).
async fn open(browser: &fantoccini::Client, url: &str) {
    browser.goto("about:blank").await.unwrap();
    browser.goto(url).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emailed_profile_link_edits_the_profile_once_in_chromium() {
    const NEW_PASSPHRASE: &str = "a new passphrase typed twice";
    let app = spawn_app(Backend::Sqlite).await;
    let to = email("editor");
    let pin = app.active_user(&to).await;
    assert_eq!(app.profile_init(&json!({"email": to})).await.status(), 200);
    let mail = app.next_mail(&to).await;
    let (link, token) = (mail.link(), mail.token());
    assert!(link.starts_with(&format!("{}/profile#token=", app.base)), "{link}");
    app.remember_secret(NEW_PASSPHRASE);

    let driver = Chromedriver::start().await;
    let browser = driver.client("en-US,en").await;
    browser.goto(&link).await.unwrap();
    assert_eq!(text_when(&browser, "#pin", |t| !t.is_empty()).await, pin, "the page shows the account's PIN");
    assert_eq!(browser.find(Locator::Id("email")).await.unwrap().text().await.unwrap(), to);
    assert!(browser.find(Locator::Id("profile")).await.unwrap().is_displayed().await.unwrap());
    let url = browser.current_url().await.unwrap();
    assert!(url.fragment().is_none(), "the token is dropped from the address bar: {url}");
    let rule = browser.find(Locator::Id("passphrase-rule")).await.unwrap().text().await.unwrap();
    assert!(rule.contains("15"), "the length rule is shown: {rule}");

    // Passphrases that differ: refused by the page, nothing sent (the link still works).
    let result = browser.find(Locator::Id("result")).await.unwrap();
    let mismatch = result.attr("data-mismatch").await.unwrap().unwrap_or_default();
    browser.find(Locator::Id("passphrase")).await.unwrap().send_keys(NEW_PASSPHRASE).await.unwrap();
    browser.find(Locator::Id("passphrase2")).await.unwrap().send_keys("another passphrase entirely").await.unwrap();
    browser.find(Locator::Id("save")).await.unwrap().click().await.unwrap();
    let refused = browser.wait().at_most(Duration::from_secs(15)).for_element(Locator::Css("#result.error")).await.expect("the page refuses differing passphrases");
    assert_eq!(refused.text().await.unwrap(), mismatch);
    assert_eq!(app.profile_load(&token).await.status(), 200, "nothing was saved");

    // Russian, and the passphrase typed twice.
    let again = browser.find(Locator::Id("passphrase2")).await.unwrap();
    again.clear().await.unwrap();
    again.send_keys(NEW_PASSPHRASE).await.unwrap();
    browser.find(Locator::Css("select#locale")).await.unwrap().select_by_value("ru").await.unwrap();
    browser.find(Locator::Id("save")).await.unwrap().click().await.unwrap();
    let saved = browser.wait().at_most(Duration::from_secs(15)).for_element(Locator::Css("#result.ok")).await.expect("the page reports success");
    let text = saved.text().await.unwrap();
    assert!(is_russian(&text), "the success message is in the account's new locale: {text}");
    assert_eq!(app.profile_load(&token).await.status(), 410, "the save used the link");

    // The notice, in Russian, links the recovery page.
    let notice = app.next_mail(&to).await;
    assert!(is_russian(&notice.subject), "{}", notice.subject);
    assert!(notice.text.contains(&format!("{}/profile", app.base)), "{}", notice.text);

    // A reload of the page (its address no longer has the token): the link is used.
    browser.refresh().await.unwrap();
    let reloaded = browser.wait().at_most(Duration::from_secs(15)).for_element(Locator::Css("#result.error")).await.expect("the reloaded page reports the used link");
    let expired_text = reloaded.attr("data-expired").await.unwrap().unwrap_or_default();
    assert_eq!(reloaded.text().await.unwrap(), expired_text, "after a reload the page says the link is used or expired");

    // The link again: used; the editor hides.
    open(&browser, &link).await;
    let expired = browser.find(Locator::Id("result")).await.unwrap().attr("data-expired").await.unwrap().unwrap_or_default();
    assert!(!expired.is_empty());
    let used = browser.wait().at_most(Duration::from_secs(15)).for_element(Locator::Css("#result.error")).await.expect("the page reports the used link");
    assert_eq!(used.text().await.unwrap(), expired, "the page says the link is used or expired");
    assert!(!browser.find(Locator::Id("profile")).await.unwrap().is_displayed().await.unwrap(), "the editor hides");

    // The recovery page: a link for an existing address, the same answer for an unknown one.
    let other = email("recover");
    app.active_user(&other).await;
    let unknown = email("unknown");
    let asked = email("api-unknown");
    let expected: Value = without_address(app.profile_request(&asked).await.json().await.unwrap(), &asked);
    let expected = expected["message"].as_str().unwrap().to_owned();
    let mut shown = Vec::new();
    for address in [&other, &unknown] {
        open(&browser, &app.url("/profile")).await;
        let recovery = browser.wait().at_most(Duration::from_secs(15)).for_element(Locator::Id("recovery")).await.unwrap();
        assert!(recovery.is_displayed().await.unwrap(), "without a token the page offers to send a link");
        assert!(!browser.find(Locator::Id("profile")).await.unwrap().is_displayed().await.unwrap());
        browser.find(Locator::Id("recovery-email")).await.unwrap().send_keys(address).await.unwrap();
        browser.find(Locator::Id("recovery-send")).await.unwrap().click().await.unwrap();
        let answer = browser.wait().at_most(Duration::from_secs(15)).for_element(Locator::Css("#recovery-result.ok")).await.expect("the page shows the answer");
        shown.push(answer.text().await.unwrap().replace(address.as_str(), "EMAIL"));
    }
    assert_eq!(shown[0], shown[1], "the same answer for an existing and an unknown address");
    assert_eq!(shown[0], expected, "the page shows the API's answer");
    browser.close().await.unwrap();

    let mail = app.next_mail(&other).await;
    assert!(mail.link().starts_with(&format!("{}/profile#token=", app.base)), "{}", mail.link());
    assert_eq!(app.profile_load(&mail.token()).await.status(), 200);
    assert!(app.try_next_mail(&unknown, Duration::from_secs(2)).await.is_none(), "no mail to an address without an account");
}
