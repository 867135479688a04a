//! The OAuth authorize page (SPEC §2.5) in a real browser: Debian's Chromium driven through
//! chromedriver (WebDriver), as in `browser.rs`. A person signs in with the keyboard alone (the
//! email field has the focus, Tab to the passphrase, Enter), allows with Enter on the focused
//! button, and lands on the client's local callback with `code`, `state` and `iss`; the code is
//! then exchanged for tokens as a client does. In English and in Russian (the browser's language),
//! and once with Deny: the callback gets `access_denied` and no code. And a new person: the
//! account is created on the page, the emailed link opened in the same browser verifies it and
//! brings the person back to the consent step, in both languages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fantoccini::Locator;
use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
use fantoccini::key::Key;
use serde_json::{Value, json};

use crate::chromium::Chromedriver;
use crate::helpers::{Backend, Options, PASSPHRASE, TestApp, email, is_russian, spawn_with};

/// PKCE S256 (RFC 7636 Appendix B): the verifier and its challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const CLIENT_NAME: &str = "Browser test";

/// A server with a service key, as in `oauth.rs`: `/mcp` then needs the key or a person's token.
async fn app() -> TestApp {
    let mut options = Options::new(Backend::Sqlite);
    options.api_keys = Some("oauth-browser-service-key-51d2");
    spawn_with(options).await
}

/// The client's side of the redirect: a local HTTP server that answers every request `200 ok`
/// and records its request line.
struct Callback {
    /// `http://127.0.0.1:PORT/callback`, the registered redirect URI.
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

async fn callback_server() -> Callback {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let seen = seen.clone();
            // One task a connection: a browser may open a socket and send nothing on it.
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                if let Some(line) = String::from_utf8_lossy(&head).lines().next() {
                    seen.lock().unwrap().push(line.to_owned());
                }
                let answer = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let _ = stream.write_all(answer).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Callback { url: format!("http://127.0.0.1:{port}/callback"), requests }
}

/// Registers a public client for `redirect_uri` (RFC 7591); its `client_id`.
async fn register(app: &TestApp, redirect_uri: &str) -> String {
    let r = app.client.post(app.url("/oauth/register")).json(&json!({"client_name": CLIENT_NAME, "redirect_uris": [redirect_uri]})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    body["client_id"].as_str().unwrap_or_else(|| panic!("a client_id: {body}")).to_owned()
}

/// The authorization request a chat app opens in the browser.
fn authorize_url(app: &TestApp, client_id: &str, redirect_uri: &str) -> String {
    let params = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", "xyz"),
        ("scope", "account"),
    ];
    reqwest::Url::parse_with_params(&app.url("/oauth/authorize"), &params).unwrap().to_string()
}

/// Types `text` on the keyboard into whatever has the focus (WebDriver actions, no element named).
async fn type_keys(browser: &fantoccini::Client, text: &str) {
    let mut keys = KeyActions::new("keyboard".to_owned());
    for c in text.chars() {
        keys = keys.then(KeyAction::Down { value: c }).then(KeyAction::Up { value: c });
    }
    browser.perform_actions(keys).await.unwrap();
}

/// Waits until the focused element is `#id` (the page moves the focus itself); panics after 15 s.
async fn focus_is(browser: &fantoccini::Client, id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let focused = match browser.active_element().await {
            Ok(element) => element.attr("id").await.ok().flatten().unwrap_or_default(),
            Err(_) => String::new(),
        };
        if focused == id {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "#{id} never had the focus; #{focused:?} has it");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The element `#id` once it is displayed; panics after 15 s.
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

/// The text of `#id` once `ready` accepts it; panics with the last text after 15 s.
async fn text_when(browser: &fantoccini::Client, id: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let text = match browser.find(Locator::Id(id)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if ready(&text) {
            return text;
        }
        assert!(tokio::time::Instant::now() < deadline, "#{id} never showed the expected text; last: {text:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the browser is on `callback` (the page's `location.assign`) and the callback server
/// got the request; the query's parameters.
async fn landed(browser: &fantoccini::Client, callback: &Callback) -> HashMap<String, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let url = loop {
        let url = browser.current_url().await.unwrap();
        if url.as_str().starts_with(&format!("{}?", callback.url)) {
            break url;
        }
        assert!(tokio::time::Instant::now() < deadline, "the browser never reached the callback; it is on {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let line = format!("GET /callback?{} ", url.query().unwrap_or_default());
    loop {
        if callback.requests.lock().unwrap().iter().any(|l| l.starts_with(&line)) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the callback server never got {line:?}: {:?}", callback.requests.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    url.query_pairs().into_owned().collect()
}

/// Opens the authorize page in `browser`, checks it speaks `lang`, names the client and has the
/// email field focused; signs in as `person` with the keyboard (after one wrong passphrase, if
/// `wrong_first`) and waits for the consent step, which names `person` and focuses Allow.
async fn sign_in(browser: &fantoccini::Client, app: &TestApp, client_id: &str, callback: &Callback, person: &str, lang: &str, wrong_first: bool) {
    browser.goto(&authorize_url(app, client_id, &callback.url)).await.unwrap();
    let page_lang = browser.find(Locator::Css("html")).await.unwrap().attr("lang").await.unwrap().unwrap_or_default();
    assert!(page_lang.starts_with(lang), "the page speaks the browser's language {lang}: lang={page_lang:?}");
    let source = browser.source().await.unwrap();
    assert_eq!(is_russian(&source), lang == "ru", "the page's text is in {lang}");
    let title = browser.title().await.unwrap();
    assert_eq!(is_russian(&title), lang == "ru", "{title}");
    let intro = text_when(browser, "intro", |t| !t.is_empty()).await;
    assert!(intro.contains(CLIENT_NAME), "the page names the client: {intro}");
    assert!(intro.contains("127.0.0.1"), "the page names where it sends the person back: {intro}");
    assert!(!browser.find(Locator::Id("consent")).await.unwrap().is_displayed().await.unwrap(), "consent comes after the sign-in");

    focus_is(browser, "email").await;
    let tab: char = Key::Tab.into();
    let enter: char = Key::Enter.into();
    if wrong_first {
        type_keys(browser, &format!("{person}{tab}a wrong passphrase, typed by mistake{enter}")).await;
        let refused = browser.wait().at_most(Duration::from_secs(15)).for_element(Locator::Css("#result.error")).await.expect("the page says the sign-in failed");
        let said = refused.text().await.unwrap();
        assert!(!said.is_empty(), "a message for a wrong passphrase");
        assert_eq!(is_russian(&said), lang == "ru", "the message is in {lang}: {said}");
        // The page gives the passphrase field back with its text selected: typing replaces it.
        focus_is(browser, "passphrase").await;
        assert!(!browser.find(Locator::Id("consent")).await.unwrap().is_displayed().await.unwrap());
        type_keys(browser, &format!("{PASSPHRASE}{enter}")).await;
    } else {
        type_keys(browser, &format!("{person}{tab}{PASSPHRASE}{enter}")).await;
    }

    shown(browser, "consent").await;
    assert_eq!(text_when(browser, "consent-email", |t| !t.is_empty()).await, person, "the consent names the signed-in person");
    let question = browser.find(Locator::Id("consent-question")).await.unwrap().text().await.unwrap();
    assert!(question.contains(CLIENT_NAME) && question.contains(person), "{question}");
    assert_eq!(is_russian(&question), lang == "ru", "{question}");
    assert!(!browser.find(Locator::Id("sign-in")).await.unwrap().is_displayed().await.unwrap(), "the sign-in form hides");
    focus_is(browser, "allow").await;
}

/// What each browser test starts from: a server, a client registered for a local callback, and
/// Chromium speaking `accept_language` (the browser is declared first: it closes before its driver).
struct Scene {
    app: TestApp,
    callback: Callback,
    client_id: String,
    browser: fantoccini::Client,
    _driver: Chromedriver,
}

async fn scene(accept_language: &str) -> Scene {
    let app = app().await;
    app.remember_secret(PASSPHRASE);
    app.remember_secret(VERIFIER);
    let callback = callback_server().await;
    let client_id = register(&app, &callback.url).await;
    let driver = Chromedriver::start().await;
    let browser = driver.client(accept_language).await;
    Scene { app, callback, client_id, browser, _driver: driver }
}

/// At the consent step with Allow focused: Enter, the browser lands on the callback with a code,
/// `state` and `iss`, and the code is exchanged for tokens as a client does; the access token.
async fn allow_and_exchange(browser: &fantoccini::Client, app: &TestApp, callback: &Callback, client_id: &str) -> String {
    type_keys(browser, &char::from(Key::Enter).to_string()).await;
    let query = landed(browser, callback).await;
    let code = query.get("code").cloned().unwrap_or_else(|| panic!("a code: {query:?}"));
    app.remember_secret(&code);
    assert_eq!(code.len(), 43, "a 256-bit code, base64url: {code}");
    assert_eq!(query.get("state").map(String::as_str), Some("xyz"), "{query:?}");
    assert_eq!(query.get("iss"), Some(&app.base), "{query:?}");
    assert!(!query.contains_key("error"), "{query:?}");

    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", callback.url.as_str()),
        ("client_id", client_id),
        ("code_verifier", VERIFIER),
    ];
    let r = app.client.post(app.url("/oauth/token")).form(&form).send().await.unwrap();
    let status = r.status();
    let tokens: Value = r.json().await.unwrap();
    for name in ["access_token", "refresh_token"] {
        if let Some(token) = tokens[name].as_str() {
            app.remember_secret(token);
        }
    }
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["access_token"].as_str().is_some_and(|t| t.len() >= 20), "an access token: {tokens}");
    assert_eq!(tokens["token_type"], "Bearer", "{tokens}");
    assert_eq!(tokens["scope"], "account", "{tokens}");
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// The whole flow in a browser speaking `lang` (`accept_language` its preference list): sign in,
/// allow with Enter, the code at the callback exchanged for tokens. With `deny_too`, then the same
/// request again, refused with a click on Deny.
async fn authorize_in_chromium(lang: &str, accept_language: &str, deny_too: bool) {
    let Scene { app, callback, client_id, browser, _driver } = scene(accept_language).await;
    let person = email("oauth-page");
    app.active_user(&person).await;

    // Allow: with the keyboard alone.
    sign_in(&browser, &app, &client_id, &callback, &person, lang, lang == "ru").await;
    allow_and_exchange(&browser, &app, &callback, &client_id).await;

    if deny_too {
        // Deny: the same request again, a new sign-in, a click on Deny.
        sign_in(&browser, &app, &client_id, &callback, &person, lang, false).await;
        browser.find(Locator::Id("deny")).await.unwrap().click().await.unwrap();
        let query = landed(&browser, &callback).await;
        assert_eq!(query.get("error").map(String::as_str), Some("access_denied"), "{query:?}");
        assert_eq!(query.get("state").map(String::as_str), Some("xyz"), "{query:?}");
        assert_eq!(query.get("iss"), Some(&app.base), "{query:?}");
        assert!(!query.contains_key("code"), "no code after a refusal: {query:?}");
    }
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorize_page_signs_in_and_allows_with_the_keyboard_in_an_english_chromium() {
    authorize_in_chromium("en", "en-US,en", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorize_page_signs_in_allows_and_denies_in_a_russian_chromium() {
    authorize_in_chromium("ru", "ru-RU,ru", true).await;
}

/// A new person in a browser speaking `lang`: "Create an account" on the authorize page, the
/// emailed link (in that language) opened in the same browser, one click there, and the browser is
/// back at the consent step of the same authorization; Allow lands on the callback with a code
/// that is exchanged for tokens naming an active account in that language.
async fn sign_up_in_chromium(lang: &str, accept_language: &str) {
    let Scene { app, callback, client_id, browser, _driver } = scene(accept_language).await;
    let person = email("oauth-new");

    browser.goto(&authorize_url(&app, &client_id, &callback.url)).await.unwrap();
    focus_is(&browser, "email").await;
    browser.find(Locator::Id("new-account")).await.unwrap().click().await.unwrap();
    shown(&browser, "sign-up").await;
    focus_is(&browser, "su-email").await;
    browser.find(Locator::Id("su-email")).await.unwrap().send_keys(&person).await.unwrap();
    browser.find(Locator::Id("su-passphrase")).await.unwrap().send_keys(PASSPHRASE).await.unwrap();
    browser.find(Locator::Id("su-passphrase2")).await.unwrap().send_keys(PASSPHRASE).await.unwrap();
    browser.find(Locator::Id("su-consent")).await.unwrap().click().await.unwrap();
    browser.find(Locator::Id("sign-up-button")).await.unwrap().click().await.unwrap();
    let said = browser.wait().at_most(Duration::from_secs(15)).for_element(Locator::Css("#result.ok")).await.expect("the page says the account was made");
    let said = said.text().await.unwrap();
    assert_eq!(is_russian(&said), lang == "ru", "{said}");
    assert!(!browser.find(Locator::Id("consent")).await.unwrap().is_displayed().await.unwrap(), "no consent before the address is verified");

    let mail = app.next_mail(&person).await;
    assert_eq!(is_russian(&mail.text), lang == "ru", "the verification email speaks {lang}");
    let link = mail.link();
    app.remember_secret(&link);
    assert!(link.contains("oauth="), "the link carries the authorization it finishes: {link}");
    browser.goto(&link).await.unwrap();
    browser.find(Locator::Id("confirm")).await.unwrap().click().await.unwrap();

    // verify.js follows the answer's `continue`: the authorize page, at the consent step.
    shown(&browser, "consent").await;
    assert!(browser.current_url().await.unwrap().as_str().starts_with(&app.url("/oauth/authorize?")));
    assert_eq!(text_when(&browser, "consent-email", |t| !t.is_empty()).await, person, "the consent names the new person");
    let question = browser.find(Locator::Id("consent-question")).await.unwrap().text().await.unwrap();
    assert_eq!(is_russian(&question), lang == "ru", "{question}");
    focus_is(&browser, "allow").await;
    let access = allow_and_exchange(&browser, &app, &callback, &client_id).await;
    // The token names the new account: whoAmI through /mcp (the resource a registered client's token is for).
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoAmI", "arguments": {}}});
    let r = app.client.post(app.url("/mcp")).bearer_auth(&access).header("accept", "application/json, text/event-stream").header("mcp-protocol-version", "2025-11-25").json(&call).send().await.unwrap();
    let answer: Value = r.json().await.unwrap();
    let who = &answer["result"]["structuredContent"];
    assert_eq!((who["email"].as_str(), who["status"].as_str(), who["locale"].as_str()), (Some(person.as_str()), Some("active"), Some(lang)), "{answer}");
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_person_signs_up_on_the_authorize_page_and_the_link_brings_them_to_consent_in_an_english_chromium() {
    sign_up_in_chromium("en", "en-US,en").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_person_signs_up_on_the_authorize_page_and_the_link_brings_them_to_consent_in_a_russian_chromium() {
    sign_up_in_chromium("ru", "ru-RU,ru").await;
}
