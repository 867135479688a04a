//! The page files themselves: every script parses (`node --check`), and every page's CSP allows
//! exactly the inline script and stylesheet it carries.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{AUTHORIZE_SCRIPT_CSP, authorize_error_page, authorize_page};
use crate::api::tests::World;
use crate::api::{After, Ctx, Request, Response};
use crate::ports::{L10n, Message};

const PAGES: &[&str] = &["/signup/verify", "/profile", "/privacy"];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api/pages")
}

/// The page files with extension `ext`, sorted.
fn files(ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

fn get(path: &str, accept_language: &str) -> (String, String) {
    let r = World::new().send(&Request {
        method: "GET".into(),
        path: path.into(),
        headers: vec![("accept-language".into(), accept_language.into())],
        body: Vec::new(),
        body_too_large: false,
        query: String::new(),
    });
    assert_eq!(r.status, 200, "{path}");
    let csp = r.header("content-security-policy").expect("a CSP").to_owned();
    (String::from_utf8(r.body).unwrap(), csp)
}

/// The contents of every `<tag>…</tag>` in `html`.
fn inline<'h>(html: &'h str, tag: &str) -> Vec<&'h str> {
    html.split(&format!("<{tag}>")).skip(1).map(|rest| rest.split(&format!("</{tag}>")).next().unwrap()).collect()
}

/// The sources of one CSP directive, e.g. `script-src`.
fn directive(csp: &str, name: &str) -> Vec<String> {
    let found = csp.split(';').map(str::trim).find(|d| d.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name} in {csp}"));
    found.split_whitespace().skip(1).map(str::to_owned).collect()
}

fn source(text: &str) -> String {
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes())))
}

/// Texts as the API tests' fake writes them, `locale:id(name=value,…)` (that one is private to
/// `api::tests`).
struct FakeL10n;

impl L10n for FakeL10n {
    fn negotiate(&self, requested: &str) -> String {
        if requested.starts_with("ru") { "ru".into() } else { "en".into() }
    }
    fn format(&self, locale: &str, id: &str, args: &[(&str, &str)]) -> String {
        let args: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{locale}:{id}({})", args.join(","))
    }
    fn render_email(&self, locale: &str, kind: &str, to: &str, args: &[(&str, &str)]) -> Result<Message, String> {
        let text = self.format(locale, kind, args);
        Ok(Message { to: to.into(), kind: kind.into(), subject: kind.into(), html: text.clone(), text })
    }
}

/// A page rendered by its function with a fresh world's ports: the authorize pages' route checks
/// the client before it renders them, and these tests are about the markup.
fn render(page: impl FnOnce(&Ctx<'_>) -> Response) -> (Response, String) {
    let w = World::new();
    let ctx = Ctx { store: &w.store, ephemeral: &w.ephemeral, fetch: &w.fetch, l10n: &FakeL10n, env: &w.env, settings: &w.settings, after: After::default(), origin: Default::default(), metrics: &crate::ports::NoMetrics };
    let r = page(&ctx);
    let html = String::from_utf8(r.body.clone()).unwrap();
    (r, html)
}

/// Checks that the CSP of `page` allows exactly its inline script and stylesheet, and adds them to
/// `served`.
fn check_inline_assets(page: &str, html: &str, csp: &str, served: &mut String) {
    let scripts = inline(html, "script");
    let styles = inline(html, "style");
    assert_eq!(html.matches("<script").count(), scripts.len(), "{page}: every script is a plain inline one");
    assert_eq!(html.matches("<style").count(), styles.len(), "{page}: every style is a plain inline one");
    let expected = |parts: &[&str]| if parts.is_empty() { vec!["'none'".to_owned()] } else { parts.iter().map(|p| source(p)).collect() };
    assert_eq!(directive(csp, "script-src"), expected(&scripts), "{page}: script-src");
    assert_eq!(directive(csp, "style-src"), expected(&styles), "{page}: style-src");
    assert_eq!(styles.len(), 1, "{page}: the one stylesheet");
    for part in scripts.iter().chain(&styles) {
        served.push_str(part);
    }
}

#[test]
fn every_pages_csp_hashes_are_those_of_its_inline_script_and_style() {
    let mut served = String::new();
    for page in PAGES {
        for language in ["en", "ru"] {
            let (html, csp) = get(page, language);
            check_inline_assets(page, &html, &csp, &mut served);
        }
    }
    let (page, html) = render(|ctx| authorize_page(ctx, "en", "Chat", "127.0.0.1"));
    check_inline_assets("authorize", &html, page.header("content-security-policy").unwrap(), &mut served);
    let (page, html) = render(|ctx| authorize_error_page(ctx, "ru", 400, "page-authorize-unknown-client"));
    check_inline_assets("authorize error", &html, page.header("content-security-policy").unwrap(), &mut served);
    // Every script and stylesheet file is served by some page (build.rs lists them per page).
    for file in files("js").into_iter().chain(files("css")) {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(served.contains(&text), "{} is part of no page's script or style", file.display());
    }
}

#[test]
fn every_page_script_passes_node_check() {
    let scripts = files("js");
    assert!(scripts.len() >= 4, "the page scripts: {scripts:?}");
    // Never a quiet pass: without node this test fails (the MCP conformance step needs node too).
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => panic!("node is not installed: it checks the page scripts (install Node.js)"),
    }
    for script in scripts {
        let out = Command::new("node").arg("--check").arg(&script).output().unwrap();
        assert!(out.status.success(), "node --check {}: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    }
}

// ---- The OAuth authorize page (SPEC §2.5) ----------------------------------------------------

#[test]
fn the_authorize_page_escapes_the_client_and_host_and_runs_only_its_own_script() {
    let (r, html) = render(|ctx| authorize_page(ctx, "en", "<script>alert(1)</script> & co", "evil.example\"><img src=x>"));
    assert_eq!(r.status, 200);
    let client = "<strong>&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</strong>";
    assert!(html.contains(&format!("en:page-authorize-intro(client={client},host=<strong>evil.example&quot;&gt;&lt;img src=x&gt;</strong>)")), "{html}");
    assert!(html.contains(&format!("en:page-authorize-consent(client={client},email=<strong id=\"consent-email\"></strong>)")), "{html}");
    assert!(!html.contains("alert(1)</script>") && !html.contains("<img"), "{html}");
    assert_eq!(html.matches("<script").count(), 1, "only the page's own script");
    let csp = r.header("content-security-policy").unwrap();
    assert_eq!(directive(csp, "script-src"), [AUTHORIZE_SCRIPT_CSP]);
    assert_eq!(directive(csp, "script-src"), [source(inline(&html, "script")[0])]);
    assert_eq!((directive(csp, "connect-src"), directive(csp, "form-action")), (vec!["'self'".to_owned()], vec!["'none'".to_owned()]));
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[test]
fn the_authorize_page_signs_in_then_asks_for_consent_by_keyboard() {
    let (_, html) = render(|ctx| authorize_page(ctx, "ru", "Chat", "127.0.0.1"));
    assert!(html.starts_with("<!doctype html><html lang=\"ru\">"));
    assert!(html.contains(r#"<form id="sign-in" method="post">"#));
    assert!(html.contains(r#"<label for="email">ru:page-authorize-email()</label>"#) && html.contains(r#"<label for="passphrase">ru:page-authorize-passphrase()</label>"#));
    assert!(html.contains(r#"<input id="email" name="email" type="email" autocomplete="username" maxlength="254" required autofocus>"#));
    assert!(html.contains(r#"<input id="passphrase" name="passphrase" type="password" autocomplete="current-password" required>"#));
    assert!(html.contains(r#"<button id="sign-in-button" type="submit">ru:page-authorize-sign-in()</button>"#));
    assert!(html.contains(r#"<section id="consent" hidden>"#), "consent waits for the sign-in");
    assert!(html.contains(r#"<button id="allow" type="button">ru:page-authorize-allow()</button>"#) && html.contains(r#"<button id="deny" type="button">ru:page-authorize-deny()</button>"#));
    assert!(html.contains(r#"<p id="result" role="alert" data-signing-in="ru:page-authorize-signing-in()""#));
    let script = inline(&html, "script")[0];
    for step in [
        "new URLSearchParams(location.search)", "e.preventDefault()", "'/api/oauth/sign-in'", "'/api/oauth/consent'", "allow.focus()",
        "status === 410", "location.assign(j.redirect)", "'Accept-Language': document.documentElement.lang",
    ] {
        assert!(script.contains(step), "{step}");
    }
    for name in ["response_type", "client_id", "redirect_uri", "code_challenge", "code_challenge_method", "state", "resource", "scope"] {
        assert!(script.contains(&format!("'{name}'")), "{name} is read from the address");
    }
    let markup = html.replace(script, "").to_ascii_lowercase();
    assert!(!markup.contains("style=") && !markup.contains(" onclick") && !markup.contains(" onsubmit"), "the CSP allows no inline styles or handlers");
    // A client named like the placeholder stays a name: one element for the address, empty.
    let (_, html) = render(|ctx| authorize_page(ctx, "en", "{email}", "127.0.0.1"));
    assert!(html.contains("(client=<strong>{email}</strong>,email=<strong id=\"consent-email\"></strong>)"), "{html}");
    assert_eq!(html.matches("id=\"consent-email\"").count(), 1);
}

#[test]
fn the_authorize_error_page_says_why_with_its_status_and_no_script_or_link() {
    for (status, id) in [(400, "page-authorize-unknown-client"), (400, "page-authorize-bad-redirect"), (422, "page-authorize-bad-request")] {
        let (r, html) = render(|ctx| authorize_error_page(ctx, "ru", status, id));
        assert_eq!(r.status, status, "{id}");
        assert!(html.contains(&format!("<p class=\"error\">ru:{id}()</p>")), "{html}");
        assert!(html.contains("ru:page-authorize-error-title()") && html.contains("ru:page-authorize-go-back()"), "{html}");
        assert!(!html.contains("<script") && !html.contains("<a ") && !html.contains("href"), "{html}");
        assert_eq!(directive(r.header("content-security-policy").unwrap(), "script-src"), ["'none'"]);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    }
}

// ---- Pages in the account's language (SPEC §3: the user's locale when known) ---------------

fn post(w: &World, path: &str, body: serde_json::Value, accept_language: &str) -> crate::api::Response {
    w.send(&Request {
        method: "POST".into(),
        path: path.into(),
        headers: vec![("content-type".into(), "application/json".into()), ("accept-language".into(), accept_language.into())],
        body: serde_json::to_vec(&body).unwrap(),
        body_too_large: false,
        query: String::new(),
    })
}

/// The `link=` argument of the last mail (the fake L10n writes the arguments out).
fn last_link(w: &World) -> String {
    let state = w.store.state.borrow();
    let (_, mail) = state.outbox.last().expect("a mail");
    mail.text.split("link=").nth(1).unwrap().split(',').next().unwrap().to_owned()
}

fn sign_up_in(w: &World, email: &str, locale: &str) -> String {
    let r = post(w, "/api/signup/init", serde_json::json!({"email": email, "consent": true, "locale": locale, "passphrase": "correct horse battery staple"}), "en");
    assert_eq!(r.status, 201, "{:?}", r.json_body());
    r.json_body()["pin"].as_str().unwrap().to_owned()
}

#[test]
fn the_emailed_links_name_the_accounts_language_in_their_fragment() {
    let w = World::new();
    let pin = sign_up_in(&w, "ann@example.com", "ru");
    let token = w.last_token();
    assert_eq!(last_link(&w), format!("http://127.0.0.1:3000/signup/verify#token={token}&pin={pin}&lang=ru"));
    assert_eq!(post(&w, "/api/signup/verify", serde_json::json!({"token": token, "pin": pin}), "en").status, 200);
    let r = post(&w, "/api/profile/request", serde_json::json!({"email": "ann@example.com"}), "en-US,en");
    assert_eq!(r.status, 200);
    assert_eq!(last_link(&w), format!("http://127.0.0.1:3000/profile#token={}&lang=ru", w.last_token()));
    sign_up_in(&w, "bob@example.com", "en");
    assert!(last_link(&w).ends_with("&lang=en"), "{}", last_link(&w));
}

#[test]
fn the_verify_answer_speaks_the_accounts_language_not_the_browsers() {
    let w = World::new();
    let pin = sign_up_in(&w, "ann@example.com", "ru");
    let r = post(&w, "/api/signup/verify", serde_json::json!({"token": w.last_token(), "pin": pin}), "en-US,en;q=0.9");
    assert_eq!(r.status, 200);
    assert_eq!(r.json_body()["message"], "ru:signup-verified()");
    // Without the PIN too; and an English account in a Russian browser hears English.
    sign_up_in(&w, "bob@example.com", "en");
    let r = post(&w, "/api/signup/verify", serde_json::json!({"token": w.last_token()}), "ru");
    assert_eq!(r.json_body()["message"], "en:signup-verified()");
    sign_up_in(&w, "cy@example.com", "ru");
    let r = post(&w, "/api/signup/verify", serde_json::json!({"token": w.last_token()}), "en");
    assert_eq!(r.json_body()["message"], "ru:signup-verified()");
    // An unknown token names no account: the browser's language.
    let r = post(&w, "/api/signup/verify", serde_json::json!({"token": "A".repeat(43)}), "ru");
    assert_eq!(r.status, 410);
    assert!(r.json_body()["message"].as_str().unwrap().starts_with("ru:"), "{:?}", r.json_body());
}

#[test]
fn the_page_scripts_take_the_links_language_and_ask_the_api_in_the_pages_language() {
    for page in ["/signup/verify", "/profile"] {
        let (html, _) = get(page, "en");
        let script = inline(&html, "script")[0];
        assert!(script.contains(".get('lang')"), "{page}: the fragment's lang is read");
        assert!(script.contains("'Accept-Language': lang") && script.contains("DOMParser"), "{page}: the page fetches itself in that language");
        assert!(script.contains("'Accept-Language': document.documentElement.lang"), "{page}: the API calls ask for the page's language");
    }
    let (html, _) = get("/profile", "en");
    assert!(inline(&html, "script")[0].contains("Intl.DateTimeFormat(document.documentElement.lang"), "dates in the reader's format");
}

#[test]
fn load_and_save_refuse_a_blocked_account_in_its_language_and_an_unknown_token_in_the_browsers() {
    let w = World::new();
    let pin = sign_up_in(&w, "ann@example.com", "ru");
    assert_eq!(post(&w, "/api/signup/verify", serde_json::json!({"token": w.last_token(), "pin": pin}), "en").status, 200);
    assert_eq!(post(&w, "/api/profile/request", serde_json::json!({"email": "ann@example.com"}), "en").status, 200);
    let token = w.last_token();
    w.store.state.borrow_mut().users.iter_mut().for_each(|u| u.status = crate::ports::UserStatus::Blocked);
    for (path, body) in [("/api/profile/load", serde_json::json!({"token": token})), ("/api/profile/save", serde_json::json!({"token": token, "locale": "en"}))] {
        let r = post(&w, path, body, "en-US,en");
        assert_eq!((r.status, r.json_body()["code"].as_str()), (403, Some("ACCOUNT_BLOCKED")), "{path}");
        assert!(r.json_body()["message"].as_str().unwrap().starts_with("ru:"), "{path}: {:?}", r.json_body());
    }
    let unknown = "A".repeat(43);
    for (path, body) in [("/api/profile/load", serde_json::json!({"token": unknown})), ("/api/profile/save", serde_json::json!({"token": unknown, "locale": "ru"}))] {
        let r = post(&w, path, body, "en");
        assert_eq!(r.status, 410, "{path}");
        assert!(r.json_body()["message"].as_str().unwrap().starts_with("en:"), "{path}: {:?}", r.json_body());
    }
}
