//! Sign-in from a chat with OAuth 2.1 (SPEC §2.5) over HTTP, as any server (ours elsewhere, three
//! hosts behind a balancer, Spin) must answer it. The reference client is the official MCP Python
//! SDK (`mcp`, its `OAuthClientProvider`, driven by `scripts/mcp-oauth-client.py`): given nothing
//! but the server's URL it discovers, registers, runs PKCE, signs in on our page's API, gets
//! tokens, lists the person's tools, calls `whoAmI` and refreshes. The refusals are asserted
//! one by one in the core's tests (`components/core/src/api/oauth/tests.rs`); here, those a
//! client sees first over HTTP.

use serde_json::{Value, json};

use crate::helpers::{Backend, Options, PASSPHRASE, TestApp, email, spawn_with};
use crate::on_both_backends;

on_both_backends!(
    the_official_mcp_sdk_signs_in_with_a_passphrase_and_acts_as_that_person,
    the_official_mcp_sdk_signs_in_with_an_emailed_code,
    a_new_person_signs_up_on_the_page_for_the_official_mcp_sdk,
    the_documents_and_the_401_of_mcp_point_to_this_server,
    an_unknown_client_gets_an_error_page_and_no_redirect,
);

/// A server with a service key: `/mcp` then needs the key or a person's token.
async fn app(backend: Backend) -> TestApp {
    let mut options = Options::new(backend);
    options.api_keys = Some("oauth-test-service-key-7c1e");
    spawn_with(options).await
}

/// How the SDK's client signs the person in on the authorize page's API.
enum Way {
    Passphrase,
    /// A code emailed on the page's request: the test reads it from the mail and gives it to the client.
    Code,
    /// A new person signs up in this language; the test gives the client the verification link.
    SignUp(&'static str),
}

/// Runs the SDK's client against `app` as the person `email`; its one-line JSON summary. The
/// client asks for what only a mailbox has (`NEED_CODE`, `NEED_LINK` on its stdout) and is
/// answered on its stdin from the mail the server sent.
async fn sdk_client(app: &TestApp, email: &str, way: Way) -> Value {
    use std::io::{BufRead as _, Write as _};
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/mcp-oauth-client.py");
    let secrets = std::env::temp_dir().join(format!("gpt-user-oauth-secrets-{}", uuid::Uuid::new_v4().simple()));
    let mode = match way {
        Way::Passphrase => vec!["--mode", "passphrase"],
        Way::Code => vec!["--mode", "code"],
        Way::SignUp(locale) => vec!["--mode", "signup", "--locale", locale],
    };
    let mut child = std::process::Command::new("python3")
        .arg(&script)
        .args(["--server", &app.base, "--email", email, "--passphrase", PASSPHRASE, "--secrets-out"])
        .arg(&secrets)
        .args(mode)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the driver");
    // The host under test runs on this runtime: the client's output is read on a thread of its own.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    let mut last = String::new();
    while let Some(line) = rx.recv().await {
        match line.as_str() {
            "NEED_CODE" => {
                let code = crate::helpers::email_change_code(&app.next_mail(email).await);
                app.remember_code(&code);
                writeln!(stdin, "{code}").unwrap();
            }
            "NEED_LINK" => {
                let link = app.next_mail(email).await.link();
                app.remember_secret(&link);
                writeln!(stdin, "{link}").unwrap();
            }
            _ => last = line,
        }
        stdin.flush().unwrap();
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    // Every ticket, code and token the client saw: none may be in the server's log.
    for secret in std::fs::read_to_string(&secrets).unwrap_or_default().lines().filter(|s| s.len() >= 20) {
        app.remember_secret(secret);
    }
    let _ = std::fs::remove_file(&secrets);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the SDK's client failed: {stderr}");
    serde_json::from_str(&last).unwrap_or_else(|e| panic!("one JSON line last ({e}): {last}"))
}

/// What every way in ends with: the person's tools, whoAmI naming them, a refresh.
fn assert_acts_as(summary: &Value, email: &str) {
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["tools"], json!(["requestProfileLink", "whoAmI"]), "{summary}");
    assert_eq!(summary["who"]["email"], email, "{summary}");
    assert_eq!(summary["who"]["status"], "active");
    assert_eq!(summary["refreshed"], true);
}

async fn the_official_mcp_sdk_signs_in_with_a_passphrase_and_acts_as_that_person(backend: Backend) {
    let app = app(backend).await;
    let ann = email("oauth-ann");
    let pin = app.active_user(&ann).await;
    app.remember_secret(PASSPHRASE);
    let summary = sdk_client(&app, &ann, Way::Passphrase).await;
    assert_acts_as(&summary, &ann);
    assert_eq!(summary["who"]["pin"], pin.as_str());
}

async fn the_official_mcp_sdk_signs_in_with_an_emailed_code(backend: Backend) {
    let app = app(backend).await;
    let bo = email("oauth-bo");
    app.active_user(&bo).await;
    app.remember_secret(PASSPHRASE);
    let summary = sdk_client(&app, &bo, Way::Code).await;
    assert_acts_as(&summary, &bo);
}

async fn a_new_person_signs_up_on_the_page_for_the_official_mcp_sdk(backend: Backend) {
    let app = app(backend).await;
    let cy = email("oauth-cy");
    app.remember_secret(PASSPHRASE);
    let summary = sdk_client(&app, &cy, Way::SignUp("ru")).await;
    assert_acts_as(&summary, &cy);
    assert_eq!(summary["who"]["locale"], "ru");
}

async fn the_documents_and_the_401_of_mcp_point_to_this_server(backend: Backend) {
    let app = app(backend).await;
    let r = app.client.post(app.url("/mcp")).header("content-type", "application/json").body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let metadata_url = format!("{}/.well-known/oauth-protected-resource/mcp", app.base);
    assert_eq!(challenge, format!("Bearer resource_metadata=\"{metadata_url}\", scope=\"account\""));
    let resource: Value = app.client.get(&metadata_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(resource["resource"], format!("{}/mcp", app.base));
    assert_eq!(resource["authorization_servers"], json!([app.base]));
    let server: Value = app.client.get(app.url("/.well-known/oauth-authorization-server")).send().await.unwrap().json().await.unwrap();
    assert_eq!(server["issuer"], app.base.as_str());
    assert_eq!(server["authorization_endpoint"], format!("{}/oauth/authorize", app.base));
    assert_eq!(server["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(server["grant_types_supported"], json!(["authorization_code", "refresh_token"]));
}

async fn an_unknown_client_gets_an_error_page_and_no_redirect(backend: Backend) {
    let app = app(backend).await;
    let client = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let query = "response_type=code&client_id=nobody&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&state=s&code_challenge_method=S256\
                 &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let r = client.get(app.url(&format!("/oauth/authorize?{query}"))).header("accept-language", "ru").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'none'"));
    let page = r.text().await.unwrap();
    assert!(!page.contains("evil.example"), "the page offers no way to the unchecked address");
    assert!(crate::helpers::is_russian(&page), "in the browser's language");
    let r = client.post(app.url("/oauth/register")).json(&json!({"redirect_uris": ["http://chat.example/cb"]})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_redirect_uri");
}
