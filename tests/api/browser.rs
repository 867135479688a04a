//! The pages in a real browser: Debian's Chromium driven through chromedriver (WebDriver).
//! Verify: opening the emailed link verifies nobody; the click does. Profile: the emailed link
//! edits the profile once; the recovery page answers alike for every address. Email change: both
//! codes typed into the profile page, the new address shown and kept across a reload.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::{Value, json};

use crate::chromium::Chromedriver;
use crate::helpers::{Backend, email, is_russian, spawn_app, without_address, wrong_code};

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

/// The element `#id` once it is displayed (the page reveals its steps one by one); panics after 15 s.
async fn shown(browser: &fantoccini::Client, id: &str) -> fantoccini::elements::Element {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(element) = browser.find(Locator::Id(id)).await
            && element.is_displayed().await.unwrap_or(false)
        {
            return element;
        }
        assert!(tokio::time::Instant::now() < deadline, "#{id} never showed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_email_changes_on_the_profile_page_with_both_codes_in_chromium() {
    /// WebDriver's Tab key: leaves the field, as a person does.
    const TAB: &str = "\u{e004}";
    let app = spawn_app(Backend::Sqlite).await;
    let (old, new) = (email("ec-page"), email("ec-page-new"));
    let pin = app.active_user_in(&old, "ru").await;
    assert_eq!(app.profile_init(&json!({"email": old})).await.status(), 200);
    let mail = app.next_mail(&old).await;
    let (link, token) = (mail.link(), mail.token());

    let driver = Chromedriver::start().await;
    let browser = driver.client("ru-RU,ru").await;
    browser.goto(&link).await.unwrap();
    assert_eq!(text_when(&browser, "#pin", |t| !t.is_empty()).await, pin, "the profile is loaded");

    // Start: a code to the current address, and a countdown to the next one.
    shown(&browser, "ec-start").await.click().await.unwrap();
    let code_input = shown(&browser, "ec-code").await;
    let code = app.next_code(&old).await;
    text_when(&browser, "#ec-countdown", |t| t.chars().any(|c| c.is_ascii_digit())).await;
    browser.find(Locator::Id("ec-resend")).await.expect("a button to ask for a new code");

    // A wrong code: the page says so in its language.
    code_input.send_keys(&wrong_code(&code)).await.unwrap();
    browser.find(Locator::Id("ec-confirm")).await.unwrap().click().await.unwrap();
    let error = text_when(&browser, "#ec-error", |t| !t.is_empty()).await;
    assert!(is_russian(&error), "a localized error for a wrong code: {error}");

    // The right code, then the new address, checked as it is entered.
    code_input.clear().await.unwrap();
    code_input.send_keys(&code).await.unwrap();
    browser.find(Locator::Id("ec-confirm")).await.unwrap().click().await.unwrap();
    let new_input = shown(&browser, "ec-new-email").await;
    new_input.send_keys(&format!("{new}{TAB}")).await.unwrap();
    text_when(&browser, "#ec-check-result", |t| !t.is_empty()).await;
    shown(&browser, "ec-request-new").await.click().await.unwrap();
    let code_new_input = shown(&browser, "ec-code-new").await;
    let code_new = app.next_code(&new).await;
    browser.find(Locator::Id("ec-resend-new")).await.expect("a button to ask for a new code for the new address");
    code_new_input.send_keys(&code_new).await.unwrap();
    browser.find(Locator::Id("ec-confirm-new")).await.unwrap().click().await.unwrap();
    shown(&browser, "ec-done").await;
    text_when(&browser, "#ec-done", |t| t.contains(new.as_str())).await;

    // The link's token is revoked and the old address told.
    assert_eq!(app.profile_load(&token).await.status(), 410, "the change revoked the link");
    let notice = app.next_mail(&old).await;
    assert!(is_russian(&notice.subject), "{}", notice.subject);

    // A reload goes on with the fresh token the change gave the page.
    browser.refresh().await.unwrap();
    assert_eq!(text_when(&browser, "#email", |t| !t.is_empty()).await, new, "the reloaded page shows the new address");
    assert_eq!(text_when(&browser, "#pin", |t| !t.is_empty()).await, pin);
    assert!(browser.find(Locator::Id("profile")).await.unwrap().is_displayed().await.unwrap());
    browser.close().await.unwrap();
}

/// SPEC §3: a Russian account's links opened in an English browser. The verify page and its
/// answer speak Russian (the link's `lang`); the profile page too, its date in the reader's
/// format, and a reload of it still (the tab remembers the language the link named).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_russian_accounts_links_speak_russian_in_an_english_chromium() {
    let app = spawn_app(Backend::Sqlite).await;
    let to = email("lang-page");
    assert_eq!(app.sign_up(&to, "ru").await.status(), 201);
    let link = app.next_mail(&to).await.link();

    let driver = Chromedriver::start().await;
    let browser = driver.client("en-US,en").await;
    browser.goto(&link).await.unwrap();
    let title = text_when(&browser, "h1", is_russian).await;
    assert_eq!(title, "Подтвердите адрес электронной почты", "the page speaks the account's language");
    assert_eq!(browser.title().await.unwrap(), title);
    let button = browser.find(Locator::Id("confirm")).await.unwrap().text().await.unwrap();
    assert!(is_russian(&button), "{button}");
    browser.find(Locator::Id("confirm")).await.unwrap().click().await.unwrap();
    let result = browser.wait().at_most(Duration::from_secs(15)).for_element(Locator::Css("#result.ok")).await.expect("the page reports success");
    let said = result.text().await.unwrap();
    assert!(said.contains("подтверждён"), "the verify answer is in the account's language: {said}");

    assert_eq!(app.profile_init(&json!({"email": to})).await.status(), 200);
    let link = app.next_mail(&to).await.link();
    open(&browser, &link).await;
    text_when(&browser, "#pin", |t| !t.is_empty()).await;
    let title = browser.find(Locator::Css("h1")).await.unwrap().text().await.unwrap();
    assert!(is_russian(&title), "the profile page speaks the account's language: {title}");
    let created = browser.find(Locator::Id("created")).await.unwrap();
    let (shown, iso) = (created.text().await.unwrap(), created.attr("datetime").await.unwrap().unwrap_or_default());
    assert!(!iso.is_empty() && shown != iso && !shown.contains('T'), "a date for people, not the raw ISO {iso}: {shown}");
    assert!(is_russian(&shown), "the date in the page's language: {shown}");
    let label = browser.find(Locator::Css("label[for=passphrase]")).await.unwrap().text().await.unwrap();
    assert!(is_russian(&label), "{label}");

    browser.refresh().await.unwrap();
    text_when(&browser, "#pin", |t| !t.is_empty()).await;
    let title = browser.find(Locator::Css("h1")).await.unwrap().text().await.unwrap();
    assert!(is_russian(&title), "a reload keeps the account's language: {title}");
    browser.close().await.unwrap();
}
