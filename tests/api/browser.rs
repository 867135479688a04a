//! The verify page in a real browser: Debian's Chromium driven through chromedriver (WebDriver).
//! Opening the emailed link verifies nobody; the click does.

use std::time::Duration;

use fantoccini::Locator;

use crate::chromium::Chromedriver;
use crate::helpers::{Backend, email, spawn_app};

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
