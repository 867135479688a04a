//! Sign-in from a chat with OAuth 2.1 (SPEC §2.5) over HTTP, as any server (ours elsewhere, three
//! hosts behind a balancer, Spin) must answer it. The reference client is the official MCP Python
//! SDK (`mcp`, its `OAuthClientProvider`, driven by `scripts/mcp-oauth-client.py`): given nothing
//! but the server's URL it discovers, registers, runs PKCE, signs in on our page's API, gets
//! tokens, lists the person's tools, calls `whoAmI` and refreshes. The refusals are asserted
//! one by one in the core's tests (`components/core/src/api/oauth/tests.rs`); here, those a
//! client sees first over HTTP.

use serde_json::{Value, json};

use crate::helpers::{Backend, Options, PASSPHRASE, TestApp, email, spawn_with};
use crate::oauth_client::{Way, assert_acts_as, sdk_client};
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

async fn the_official_mcp_sdk_signs_in_with_a_passphrase_and_acts_as_that_person(backend: Backend) {
    let app = app(backend).await;
    let ann = email("oauth-ann");
    let pin = app.active_user(&ann).await;
    app.remember_secret(PASSPHRASE);
    let summary = sdk_client(&app, &ann, Way::Passphrase, &[]).await;
    assert_acts_as(&summary, &ann);
    assert_eq!(summary["registered"], true, "with nothing configured the SDK registers itself: {summary}");
    assert_eq!(summary["who"]["pin"], pin.as_str());
}

async fn the_official_mcp_sdk_signs_in_with_an_emailed_code(backend: Backend) {
    let app = app(backend).await;
    let bo = email("oauth-bo");
    app.active_user(&bo).await;
    app.remember_secret(PASSPHRASE);
    let summary = sdk_client(&app, &bo, Way::Code, &[]).await;
    assert_acts_as(&summary, &bo);
}

async fn a_new_person_signs_up_on_the_page_for_the_official_mcp_sdk(backend: Backend) {
    let app = app(backend).await;
    let cy = email("oauth-cy");
    app.remember_secret(PASSPHRASE);
    let summary = sdk_client(&app, &cy, Way::SignUp("ru"), &[]).await;
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
