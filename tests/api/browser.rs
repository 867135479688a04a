//! The verify page in a real browser: Debian's Chromium driven through chromedriver (WebDriver).
//! Opening the emailed link verifies nobody; the click does.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::{Backend, email, spawn_app};

struct Chromedriver {
    child: Child,
    url: String,
    profile: std::path::PathBuf,
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Chromedriver {
    async fn start() -> Self {
        let binary = std::env::var("GPT_USER_TEST_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary} ({e}): install Debian's chromium and chromium-driver (.ci/run does)"));
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = std::env::temp_dir().join(format!("gpt-user-chromium-{}", uuid::Uuid::new_v4().simple()));
        Self { child, url: format!("http://127.0.0.1:{port}"), profile }
    }

    async fn client(&self, accept_language: &str) -> fantoccini::Client {
        let binary = std::env::var("GPT_USER_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": binary,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         format!("--user-data-dir={}", self.profile.display())],
                "prefs": {"intl.accept_languages": accept_language},
            }),
        );
        // chromedriver is on loopback: plain HTTP, no TLS stack needed.
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps).connect(&self.url).await.expect("chromedriver accepts a session")
    }
}

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
