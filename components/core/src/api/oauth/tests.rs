//! The OAuth flows (SPEC §2.5) over the in-memory store: the whole authorization-code flow with
//! PKCE and refresh, and each refusal the issue lists, with its exact answer.

use serde_json::{Value, json};

use super::*;
use crate::api::tests::World;
use crate::api::{Request, Response};
use crate::ports::UserStatus;

const PASSPHRASE: &str = "correct horse battery staple";
const REDIRECT: &str = "http://127.0.0.1:5555/callback";
const KEY: &str = "service-key-of-the-test";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-this-is-long-enough";

/// A GPT action with the world's service key.
fn gpt(w: &World, path: &str, body: Value) -> Response {
    let bearer = format!("Bearer {KEY}");
    send(w, "POST", path, "", &[("content-type", "application/json"), ("authorization", &bearer)], serde_json::to_vec(&body).unwrap())
}

fn sign_up(w: &World, email: &str) -> Response {
    gpt(w, "/api/signup/init", json!({"email": email, "consent": true, "locale": "en", "passphrase": PASSPHRASE}))
}

fn active(w: &World, email: &str) -> String {
    let pin = sign_up(w, email).json_body()["pin"].as_str().unwrap().to_owned();
    assert_eq!(w.call("POST", "/api/signup/verify", json!({"token": w.last_token()})).status, 200);
    pin
}

fn send(w: &World, method: &str, path: &str, query: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Response {
    let req = Request {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        headers: headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(),
        body,
        body_too_large: false,
    };
    w.send(&req)
}

fn form(w: &World, path: &str, pairs: &[(&str, &str)]) -> Response {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    send(w, "POST", path, "", &[("content-type", "application/x-www-form-urlencoded")], body.into_bytes())
}

fn register(w: &World, uris: &[&str]) -> Response {
    w.call("POST", "/oauth/register", json!({"client_name": "Test <b>chat</b>", "redirect_uris": uris, "token_endpoint_auth_method": "none"}))
}

fn client(w: &World) -> String {
    let r = register(w, &[REDIRECT]);
    assert_eq!(r.status, 201, "{:?}", r.json_body());
    r.json_body()["client_id"].as_str().unwrap().to_owned()
}

fn challenge() -> String {
    s256(VERIFIER).unwrap()
}

fn query(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

fn authorize(w: &World, client_id: &str, redirect: &str, extra: &[(&str, &str)]) -> Response {
    let c = challenge();
    let mut pairs = vec![("response_type", "code"), ("client_id", client_id), ("redirect_uri", redirect), ("state", "st-1")];
    pairs.extend([("code_challenge", c.as_str()), ("code_challenge_method", "S256")]);
    pairs.retain(|(n, _)| !extra.iter().any(|(e, _)| e == n));
    pairs.extend(extra.iter().filter(|(_, v)| !v.is_empty()).copied());
    send(w, "GET", "/oauth/authorize", &query(&pairs), &[], Vec::new())
}

fn sign_in(w: &World, client_id: &str, email: &str, passphrase: &str) -> Response {
    w.call("POST", "/api/oauth/sign-in", json!({"client_id": client_id, "redirect_uri": REDIRECT, "email": email, "passphrase": passphrase}))
}

fn consent(w: &World, client_id: &str, ticket: &str, allow: bool) -> Response {
    w.call("POST", "/api/oauth/consent", json!({
        "ticket": ticket, "allow": allow, "client_id": client_id, "redirect_uri": REDIRECT, "response_type": "code",
        "code_challenge": challenge(), "code_challenge_method": "S256", "state": "st-1", "resource": null, "scope": "account"
    }))
}

/// The parameters of a redirect.
fn params(location: &str) -> Vec<(String, String)> {
    url::Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

fn param(location: &str, name: &str) -> Option<String> {
    params(location).into_iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// Signs in and allows: the code.
fn code_for(w: &World, client_id: &str, email: &str) -> String {
    let r = sign_in(w, client_id, email, PASSPHRASE);
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    let r = consent(w, client_id, r.json_body()["ticket"].as_str().unwrap(), true);
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    let redirect = r.json_body()["redirect"].as_str().unwrap().to_owned();
    assert!(redirect.starts_with(REDIRECT), "{redirect}");
    assert_eq!(param(&redirect, "state").as_deref(), Some("st-1"));
    assert_eq!(param(&redirect, "iss").as_deref(), Some(w.settings.base_url.as_str()));
    param(&redirect, "code").unwrap()
}

fn exchange(w: &World, client_id: &str, code: &str, verifier: &str) -> Response {
    form(w, "/oauth/token", &[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", client_id),
        ("code_verifier", verifier),
    ])
}

fn refresh(w: &World, client_id: &str, refresh_token: &str) -> Response {
    form(w, "/oauth/token", &[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client_id)])
}

fn error_of(r: &Response) -> (u16, String) {
    (r.status, r.json_body()["error"].as_str().unwrap_or_default().to_owned())
}

fn mcp(w: &World, authorization: Option<&str>, body: Value) -> Response {
    let mut headers = vec![("content-type", "application/json"), ("accept", "application/json, text/event-stream")];
    let bearer = authorization.map(|t| format!("Bearer {t}"));
    if let Some(b) = &bearer {
        headers.push(("authorization", b));
    }
    send(w, "POST", "/mcp", "", &headers, serde_json::to_vec(&body).unwrap())
}

fn who_am_i(w: &World, token: &str) -> Response {
    mcp(w, Some(token), json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoAmI", "arguments": {}}}))
}

/// A world with a service key: `/mcp` then needs a key or a token.
fn keyed() -> World {
    let mut w = World::new();
    w.settings.dev = false;
    w.settings.api_keys = vec![KEY.into()];
    w
}

#[test]
fn a_chat_gets_tokens_for_the_person_who_signed_in_and_refreshes_them() {
    let w = keyed();
    active(&w, "ann@example.com");
    let client_id = client(&w);
    let page = authorize(&w, &client_id, REDIRECT, &[]);
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    let html = String::from_utf8(page.body.clone()).unwrap();
    assert!(html.contains("Test &lt;b&gt;chat&lt;/b&gt;") && html.contains("127.0.0.1"), "the client's name, escaped, and the redirect's host");
    let code = code_for(&w, &client_id, "ann@example.com");
    let r = exchange(&w, &client_id, &code, VERIFIER);
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    let tokens = r.json_body();
    assert_eq!((tokens["token_type"].as_str(), tokens["expires_in"].as_i64(), tokens["scope"].as_str()), (Some("Bearer"), Some(3600), Some("account")));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let access = tokens["access_token"].as_str().unwrap();
    let listed = mcp(&w, Some(access), json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).json_body();
    let names: Vec<&str> = listed["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["whoAmI", "requestProfileLink"]);
    let who = who_am_i(&w, access).json_body();
    assert_eq!(who["result"]["structuredContent"]["email"], "ann@example.com", "{who}");
    assert_eq!(who["result"]["structuredContent"]["status"], "active");
    // The service key still lists the GPT actions.
    let service = mcp(&w, Some(KEY), json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).json_body();
    assert!(service["result"]["tools"].as_array().unwrap().iter().any(|t| t["name"] == "signUpInit"));

    // Refresh: a new pair; the old refresh token used again revokes the whole family.
    let first_refresh = tokens["refresh_token"].as_str().unwrap();
    let r = refresh(&w, &client_id, first_refresh);
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    let renewed = r.json_body();
    assert_ne!(renewed["refresh_token"], tokens["refresh_token"], "rotated");
    let new_access = renewed["access_token"].as_str().unwrap();
    assert_eq!(who_am_i(&w, new_access).status, 200);
    assert_eq!(error_of(&refresh(&w, &client_id, first_refresh)), (400, "invalid_grant".into()));
    let r = who_am_i(&w, new_access);
    assert_eq!(r.status, 401, "the family is revoked: {:?}", r.json_body());
    assert!(r.header("www-authenticate").unwrap().contains("error=\"invalid_token\""));
    assert_eq!(error_of(&refresh(&w, &client_id, renewed["refresh_token"].as_str().unwrap())), (400, "invalid_grant".into()));
    let kinds: Vec<String> = w.store.state.borrow().events.iter().map(|e| e.kind.clone()).collect();
    assert!(kinds.contains(&"oauth-authorized".into()) && kinds.contains(&"oauth-revoked".into()), "{kinds:?}");
}

#[test]
fn the_documents_name_the_endpoints_and_a_caller_without_a_token_learns_where_to_get_one() {
    let w = keyed();
    let meta = send(&w, "GET", AS_METADATA_PATH, "", &[], Vec::new()).json_body();
    assert_eq!(meta["issuer"], w.settings.base_url);
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    assert_eq!(meta["client_id_metadata_document_supported"], true, "SPEC §2.5: client ID metadata documents");
    assert_eq!(meta["token_endpoint"], format!("{}/oauth/token", w.settings.base_url));
    let resource = send(&w, "GET", RESOURCE_METADATA_PATH, "", &[], Vec::new()).json_body();
    assert_eq!(resource["resource"], format!("{}/mcp", w.settings.base_url));
    assert_eq!(resource["authorization_servers"], json!([w.settings.base_url]));
    let r = mcp(&w, None, json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        format!("Bearer resource_metadata=\"{}{RESOURCE_METADATA_PATH}\", scope=\"account\"", w.settings.base_url)
    );
    let r = mcp(&w, Some("not-a-token"), json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
    assert_eq!((r.status, r.json_body()["code"].as_str()), (401, Some("INVALID_ACCESS_TOKEN")));
}

#[test]
fn an_unknown_client_or_a_redirect_it_did_not_register_gets_a_page_and_no_redirect() {
    let w = keyed();
    let client_id = client(&w);
    let refused = [
        ("unknown-client", REDIRECT),
        (client_id.as_str(), "https://evil.example/callback"),
        (client_id.as_str(), "http://127.0.0.1:5555/other"),
        (client_id.as_str(), "http://user@127.0.0.1:5555/callback"),
        (client_id.as_str(), "http://127.0.0.1:5555/callback#frag"),
        (client_id.as_str(), ""),
    ];
    for (id, redirect) in refused {
        let r = authorize(&w, id, redirect, &[("redirect_uri", redirect)]);
        assert_eq!(r.status, 400, "{id} {redirect}");
        assert_eq!(r.header("location"), None, "{id} {redirect}");
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert!(!String::from_utf8_lossy(&r.body).contains(redirect) || redirect.is_empty(), "the page does not link the redirect");
    }
    // A loopback redirect may name another port (RFC 8252 §7.3); a non-loopback one may not.
    assert_eq!(authorize(&w, &client_id, "http://127.0.0.1:6000/callback", &[("redirect_uri", "http://127.0.0.1:6000/callback")]).status, 200);
    let r = register(&w, &["https://chat.example/cb"]);
    let https_client = r.json_body()["client_id"].as_str().unwrap().to_owned();
    let r = authorize(&w, &https_client, "https://chat.example:8443/cb", &[("redirect_uri", "https://chat.example:8443/cb")]);
    assert_eq!((r.status, r.header("location")), (400, None));
}

#[test]
fn registration_accepts_https_and_loopback_redirects_only() {
    let w = keyed();
    for bad in ["http://chat.example/cb", "https://u:p@chat.example/cb", "https://chat.example/cb#x", "javascript:alert(1)", "cursor://cb"] {
        assert_eq!(error_of(&register(&w, &[bad])), (400, "invalid_redirect_uri".into()), "{bad}");
    }
    assert_eq!(error_of(&register(&w, &[])), (400, "invalid_redirect_uri".into()));
    let confidential = w.call("POST", "/oauth/register", json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic"}));
    assert_eq!(error_of(&confidential), (400, "invalid_client_metadata".into()));
    for good in ["https://chat.example/cb", "http://localhost:1/cb", "http://[::1]:9/cb", "http://127.0.0.1/cb?x=1"] {
        assert_eq!(register(&w, &[good]).status, 201, "{good}");
    }
}

#[test]
fn a_request_without_s256_pkce_or_with_another_resource_is_sent_back_with_its_error_state_and_iss() {
    let w = keyed();
    let client_id = client(&w);
    let cases = [
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("response_type", "token")], "unsupported_response_type"),
        (vec![("resource", "https://other.example/mcp")], "invalid_target"),
        (vec![("scope", "admin")], "invalid_scope"),
    ];
    for (extra, error) in cases {
        let r = authorize(&w, &client_id, REDIRECT, &extra);
        assert_eq!(r.status, 303, "{extra:?}");
        let location = r.header("location").unwrap();
        assert!(location.starts_with(REDIRECT), "{location}");
        assert_eq!(param(location, "error").as_deref(), Some(error), "{extra:?}");
        assert_eq!(param(location, "state").as_deref(), Some("st-1"));
        assert_eq!(param(location, "iss").as_deref(), Some(w.settings.base_url.as_str()));
    }
}

#[test]
fn a_code_works_once_with_its_verifier_within_a_minute_and_its_reuse_revokes_what_it_gave() {
    let w = keyed();
    active(&w, "ann@example.com");
    let client_id = client(&w);
    let code = code_for(&w, &client_id, "ann@example.com");
    assert_eq!(error_of(&exchange(&w, &client_id, &code, "wrong-verifier-wrong-verifier-wrong-verifier-1")), (400, "invalid_grant".into()));
    let other = client(&w);
    assert_eq!(error_of(&exchange(&w, &other, &code, VERIFIER)), (400, "invalid_grant".into()), "another client's code");
    let r = exchange(&w, &client_id, &code, VERIFIER);
    assert_eq!(r.status, 200);
    let access = r.json_body()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(who_am_i(&w, &access).status, 200);
    assert_eq!(error_of(&exchange(&w, &client_id, &code, VERIFIER)), (400, "invalid_grant".into()));
    assert_eq!(who_am_i(&w, &access).status, 401, "the first use's tokens are revoked");

    let late = code_for(&w, &client_id, "ann@example.com");
    w.advance(CODE_TTL_MS + 1);
    assert_eq!(error_of(&exchange(&w, &client_id, &late, VERIFIER)), (400, "invalid_grant".into()));
    let r = form(&w, "/oauth/token", &[("grant_type", "password"), ("client_id", &client_id)]);
    assert_eq!(error_of(&r), (400, "unsupported_grant_type".into()));
    let r = form(&w, "/oauth/token", &[("grant_type", "authorization_code"), ("code", &late), ("client_id", "nobody")]);
    assert_eq!(error_of(&r), (401, "invalid_client".into()));
}

#[test]
fn a_token_is_refused_by_another_resource_and_after_revocation_or_a_new_passphrase() {
    let w = keyed();
    active(&w, "ann@example.com");
    let client_id = client(&w);
    let code = code_for(&w, &client_id, "ann@example.com");
    let tokens = exchange(&w, &client_id, &code, VERIFIER).json_body();
    let access = tokens["access_token"].as_str().unwrap();
    let ctx_user = |resource: &str| {
        let ctx = crate::api::Ctx {
            store: &w.store,
            ephemeral: &w.ephemeral,
            fetch: &w.fetch,
            l10n: &crate::api::tests::FakeL10n,
            env: &w.env,
            settings: &w.settings,
            after: Default::default(),
            origin: Default::default(),
            metrics: &crate::ports::NoMetrics,
        };
        resource::user_of(&ctx, access, resource).unwrap().map(|u| u.email)
    };
    assert_eq!(ctx_user(&format!("{}/mcp", w.settings.base_url)).as_deref(), Some("ann@example.com"));
    assert_eq!(ctx_user("https://other.example/mcp"), None);
    let r = form(&w, "/oauth/token", &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap()), ("client_id", &client_id), ("resource", "https://other.example/mcp")]);
    assert_eq!(error_of(&r), (400, "invalid_target".into()));

    assert_eq!(form(&w, "/oauth/revoke", &[("token", access), ("client_id", &client_id)]).status, 200);
    assert_eq!(who_am_i(&w, access).status, 401);
    assert_eq!(form(&w, "/oauth/revoke", &[("token", "unknown"), ("client_id", &client_id)]).status, 200, "RFC 7009: unknown tokens too");

    // A new grant, then a new passphrase on the profile page: every token of the account goes.
    let code = code_for(&w, &client_id, "ann@example.com");
    let access = exchange(&w, &client_id, &code, VERIFIER).json_body()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(who_am_i(&w, &access).status, 200);
    assert_eq!(gpt(&w, "/api/profile/init", json!({"email": "ann@example.com"})).status, 200);
    let token = w.last_token();
    let r = w.call("POST", "/api/profile/save", json!({"token": token, "passphrase": "a brand new passphrase of ann"}));
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    assert_eq!(who_am_i(&w, &access).status, 401);
    assert!(w.store.state.borrow().oauth_grants.is_empty());
}

#[test]
fn pending_and_blocked_accounts_cannot_sign_in_and_failures_count_with_auth_check() {
    let w = keyed();
    let client_id = client(&w);
    sign_up(&w, "pat@example.com");
    let r = sign_in(&w, &client_id, "pat@example.com", PASSPHRASE);
    assert_eq!((r.status, r.json_body()["code"].as_str()), (403, Some("EMAIL_NOT_VERIFIED")));
    let pin = active(&w, "ann@example.com");
    w.store.state.borrow_mut().users.iter_mut().find(|u| u.pin == pin).unwrap().status = UserStatus::Blocked;
    let r = sign_in(&w, &client_id, "ann@example.com", PASSPHRASE);
    assert_eq!((r.status, r.json_body()["code"].as_str()), (403, Some("ACCOUNT_BLOCKED")));
    let r = sign_in(&w, &client_id, "nobody@example.com", PASSPHRASE);
    assert_eq!((r.status, r.json_body()["code"].as_str()), (401, Some("INVALID_CREDENTIALS")));
    let r = w.call("POST", "/api/oauth/sign-in", json!({"client_id": "nobody", "redirect_uri": REDIRECT, "email": "ann@example.com", "passphrase": PASSPHRASE}));
    assert_eq!((r.status, r.json_body()["code"].as_str()), (400, Some("OAUTH_CLIENT_INVALID")));

    // Five failures on the page, the sixth try waits — at Auth_Check; and the other way round.
    let bob = active(&w, "bob@example.com");
    for _ in 0..5 {
        assert_eq!(sign_in(&w, &client_id, "bob@example.com", "not the passphrase of bob").status, 401);
    }
    let r = gpt(&w, "/api/auth/check", json!({"pin": bob, "passphrase": PASSPHRASE}));
    assert_eq!((r.status, r.json_body()["code"].as_str()), (429, Some("TOO_MANY_ATTEMPTS")));
    let cy = active(&w, "cy@example.com");
    for _ in 0..5 {
        assert_eq!(gpt(&w, "/api/auth/check", json!({"pin": cy, "passphrase": "not the passphrase of cy"})).status, 401);
    }
    let r = sign_in(&w, &client_id, "cy@example.com", PASSPHRASE);
    assert_eq!((r.status, r.json_body()["code"].as_str()), (429, Some("TOO_MANY_ATTEMPTS")));
    assert!(r.header("retry-after").is_some());
}

#[test]
fn a_ticket_is_spent_once_and_deny_sends_access_denied() {
    let w = keyed();
    active(&w, "ann@example.com");
    let client_id = client(&w);
    let ticket = sign_in(&w, &client_id, "ann@example.com", PASSPHRASE).json_body()["ticket"].as_str().unwrap().to_owned();
    let r = consent(&w, &client_id, &ticket, false);
    let redirect = r.json_body()["redirect"].as_str().unwrap().to_owned();
    assert_eq!(param(&redirect, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&redirect, "code"), None);
    assert_eq!(consent(&w, &client_id, &ticket, true).status, 410, "the ticket was spent by the denial");
    let ticket = sign_in(&w, &client_id, "ann@example.com", PASSPHRASE).json_body()["ticket"].as_str().unwrap().to_owned();
    let other = client(&w);
    assert_eq!(consent(&w, &other, &ticket, true).status, 410, "bound to the client it was issued for");
    w.advance(TICKET_TTL_MS + 1);
    assert_eq!(consent(&w, &client_id, &ticket, true).status, 410, "expired");
}

/// The code of the last sign-in code email (the test texts are `locale:kind(code=…,…)`).
fn last_code(w: &World) -> String {
    let state = w.store.state.borrow();
    let (_, mail) = state.outbox.iter().rev().find(|(_, m)| m.kind == "oauth-sign-in-code").expect("a sign-in code email");
    mail.text.split("code=").nth(1).unwrap()[..6].to_owned()
}

fn send_code(w: &World, client_id: &str, email: &str) -> Response {
    w.call("POST", "/api/oauth/send-code", json!({"client_id": client_id, "redirect_uri": REDIRECT, "email": email}))
}

fn sign_in_code(w: &World, client_id: &str, email: &str, code: &str) -> Response {
    w.call("POST", "/api/oauth/sign-in", json!({"client_id": client_id, "redirect_uri": REDIRECT, "email": email, "code": code}))
}

#[test]
fn an_emailed_code_signs_in_once_and_five_wrong_ones_end_it() {
    let w = keyed();
    active(&w, "ann@example.com");
    let client_id = client(&w);
    let mails = |w: &World| w.store.state.borrow().outbox.iter().filter(|(_, m)| m.kind == "oauth-sign-in-code").count();
    // An unknown address: the same answer, no mail.
    assert_eq!(send_code(&w, &client_id, "nobody@example.com").status, 200);
    assert_eq!(mails(&w), 0);
    assert_eq!(send_code(&w, &client_id, "ann@example.com").status, 200);
    assert_eq!(mails(&w), 1);
    let code = last_code(&w);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let r = sign_in_code(&w, &client_id, "ann@example.com", wrong);
    assert_eq!((r.status, r.json_body()["code"].as_str()), (422, Some("INVALID_CODE")));
    let r = sign_in_code(&w, &client_id, "ann@example.com", &code);
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    let ticket = r.json_body()["ticket"].as_str().unwrap().to_owned();
    assert_eq!(consent(&w, &client_id, &ticket, true).status, 200);
    assert_eq!(sign_in_code(&w, &client_id, "ann@example.com", &code).status, 410, "spent");

    // Within the minute the send limit holds the next code back, and the spent one stays spent.
    assert_eq!(send_code(&w, &client_id, "ann@example.com").status, 200);
    assert_eq!(mails(&w), 1);
    w.advance(61_000);
    assert_eq!(send_code(&w, &client_id, "ann@example.com").status, 200);
    assert_eq!(mails(&w), 2);
    let code = last_code(&w);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for left in (0..5).rev() {
        let r = sign_in_code(&w, &client_id, "ann@example.com", wrong);
        assert_eq!((r.status, r.json_body()["code"].as_str()), (422, Some("INVALID_CODE")), "{left}");
    }
    let r = sign_in_code(&w, &client_id, "ann@example.com", &code);
    assert_eq!((r.status, r.json_body()["code"].as_str()), (410, Some("CODE_EXPIRED")), "the sixth try is refused, the right code too");
    // Another client's page cannot use the code either.
    w.advance(61_000);
    send_code(&w, &client_id, "ann@example.com");
    let other = client(&w);
    assert_eq!(sign_in_code(&w, &other, "ann@example.com", &last_code(&w)).status, 410);
    w.advance(SIGN_IN_CODE_TTL_MS_FOR_TESTS + 1);
    assert_eq!(sign_in_code(&w, &client_id, "ann@example.com", &last_code(&w)).status, 410, "expired");
}

const SIGN_IN_CODE_TTL_MS_FOR_TESTS: i64 = authorize::SIGN_IN_CODE_TTL_MS;

#[test]
fn a_new_person_signs_up_on_the_page_and_the_verification_link_finishes_the_authorization() {
    let w = keyed();
    let client_id = client(&w);
    let mut body = json!({
        "email": "new@example.com", "passphrase": PASSPHRASE, "consent": true, "locale": "ru",
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "state": "st-1",
        "code_challenge": challenge(), "code_challenge_method": "S256", "scope": "account"
    });
    body["consent"] = json!(false);
    let r = w.call("POST", "/api/oauth/sign-up", body.clone());
    assert_eq!((r.status, r.json_body()["code"].as_str()), (422, Some("CONSENT_REQUIRED")));
    body["consent"] = json!(true);
    let r = w.call("POST", "/api/oauth/sign-up", body.clone());
    assert_eq!(r.status, 201, "{:?}", r.json_body());
    let pin = r.json_body()["pin"].as_str().unwrap().to_owned();
    let link = {
        let state = w.store.state.borrow();
        let (_, mail) = state.outbox.iter().rev().find(|(_, m)| m.kind == "signup-verification").unwrap();
        mail.text.clone()
    };
    let oauth = link.split("&oauth=").nth(1).expect("the link names the authorization")[..32].to_owned();
    let r = w.call("POST", "/api/signup/verify", json!({"token": w.last_token(), "pin": pin, "oauth": oauth}));
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    let next = r.json_body()["continue"].as_str().unwrap().to_owned();
    assert!(next.starts_with(&format!("{}/oauth/authorize?", w.settings.base_url)), "{next}");
    let (page, fragment) = next.split_once('#').unwrap();
    assert!(page.contains(&format!("client_id={client_id}")) && page.contains("state=st-1"), "{page}");
    let ticket = url::form_urlencoded::parse(fragment.as_bytes()).find(|(n, _)| n == "ticket").unwrap().1.into_owned();
    let r = consent(&w, &client_id, &ticket, true);
    let redirect = r.json_body()["redirect"].as_str().unwrap().to_owned();
    let code = param(&redirect, "code").unwrap();
    let tokens = exchange(&w, &client_id, &code, VERIFIER).json_body();
    let who = who_am_i(&w, tokens["access_token"].as_str().unwrap()).json_body();
    assert_eq!(who["result"]["structuredContent"]["email"], "new@example.com");
    assert_eq!(who["result"]["structuredContent"]["locale"], "ru");
    // The authorization is finished once: a second verification (there is none: the token is spent).
    let r = w.call("POST", "/api/signup/verify", json!({"token": w.last_token(), "pin": pin, "oauth": oauth}));
    assert_eq!(r.status, 410);
}

#[test]
fn a_gpt_with_oauth_gets_tokens_for_the_persons_actions_not_for_mcp() {
    let w = keyed();
    active(&w, "ann@example.com");
    // An operator client (what `gpt-user clients add` makes): a secret, no PKCE, no resource.
    let secret = "operator-client-secret-of-the-test-0123456789";
    w.store.state.borrow_mut().oauth_clients.push(crate::ports::OauthClient {
        id: "gpt-client".into(),
        kind: crate::ports::ClientKind::Operator,
        name: "My GPT".into(),
        redirect_uris: vec!["https://chatgpt.com/aip/g-123/oauth/callback".into()],
        secret_hash: Some(sha256_hex(secret)),
        created_at: 0,
        expires_at: None,
    });
    let redirect = "https://chatgpt.com/aip/g-123/oauth/callback";
    let q = query(&[("response_type", "code"), ("client_id", "gpt-client"), ("redirect_uri", redirect), ("state", "s"), ("scope", "account")]);
    assert_eq!(send(&w, "GET", "/oauth/authorize", &q, &[], Vec::new()).status, 200, "no PKCE for a confidential client");
    let ticket = w.call("POST", "/api/oauth/sign-in", json!({"client_id": "gpt-client", "redirect_uri": redirect, "email": "ann@example.com", "passphrase": PASSPHRASE})).json_body()["ticket"].as_str().unwrap().to_owned();
    let r = w.call("POST", "/api/oauth/consent", json!({"ticket": ticket, "allow": true, "client_id": "gpt-client", "redirect_uri": redirect, "response_type": "code", "state": "s", "scope": "account"}));
    let code = param(r.json_body()["redirect"].as_str().unwrap(), "code").unwrap();
    let exchange = |auth: &str| {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", redirect)])
            .finish();
        send(&w, "POST", "/oauth/token", "", &[("content-type", "application/x-www-form-urlencoded"), ("authorization", auth)], body.into_bytes())
    };
    use base64::Engine as _;
    let basic = |id: &str, s: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{s}")));
    assert_eq!(error_of(&exchange(&basic("gpt-client", "wrong"))), (401, "invalid_client".into()));
    let r = exchange(&basic("gpt-client", secret));
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    let access = r.json_body()["access_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {access}");
    let r = send(&w, "GET", "/api/me", "", &[("authorization", &bearer)], Vec::new());
    assert_eq!((r.status, r.json_body()["email"].as_str()), (200, Some("ann@example.com")));
    // A body that is not `{}` is refused (schemathesis found `[null, null]` accepted), before any mail.
    let json_body = |body: &str| send(&w, "POST", "/api/me/profile-link", "", &[("authorization", &bearer), ("content-type", "application/json")], body.into());
    assert_eq!((json_body("[null, null]").status, json_body("[null, null]").json_body()["code"].clone()), (400, json!("INVALID_JSON")));
    assert_eq!(json_body(r#"{"email": "eve@example.com"}"#).status, 422);
    assert_eq!(w.store.state.borrow().outbox.iter().filter(|(_, m)| m.kind == "profile-link").count(), 0);
    let r = send(&w, "POST", "/api/me/profile-link", "", &[("authorization", &bearer)], Vec::new());
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    assert_eq!(w.store.state.borrow().outbox.iter().filter(|(_, m)| m.kind == "profile-link").count(), 1);
    assert_eq!(who_am_i(&w, &access).status, 401, "a token for the actions is refused by /mcp");
    let r = send(&w, "GET", "/api/me", "", &[], Vec::new());
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().contains("/.well-known/oauth-protected-resource/api"));
    // And an MCP client's token is refused by the actions.
    let client_id = client(&w);
    let mcp_code = code_for(&w, &client_id, "ann@example.com");
    let mcp_access = exchange_code(&w, &client_id, &mcp_code);
    let r = send(&w, "GET", "/api/me", "", &[("authorization", &format!("Bearer {mcp_access}"))], Vec::new());
    assert_eq!(r.status, 401);
}

fn exchange_code(w: &World, client_id: &str, code: &str) -> String {
    exchange(w, client_id, code, VERIFIER).json_body()["access_token"].as_str().unwrap().to_owned()
}

const DOCUMENT_URL: &str = "https://chat.example.com/oauth/client.json";

fn publish(w: &World, url: &str, doc: Value) {
    w.fetch.documents.borrow_mut().insert(url.to_owned(), Ok(serde_json::to_vec(&doc).unwrap()));
}

#[test]
fn a_client_id_metadata_document_names_a_client_that_signs_in_and_is_cached() {
    let w = keyed();
    active(&w, "cim@example.com");
    publish(&w, DOCUMENT_URL, json!({"client_id": DOCUMENT_URL, "client_name": "Metadata Chat", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}));
    let page = authorize(&w, DOCUMENT_URL, REDIRECT, &[]);
    assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
    assert!(String::from_utf8_lossy(&page.body).contains("Metadata Chat"), "the page names the document's client");
    let code = code_for(&w, DOCUMENT_URL, "cim@example.com");
    let tokens = exchange(&w, DOCUMENT_URL, &code, VERIFIER);
    assert_eq!(tokens.status, 200, "{:?}", tokens.json_body());
    assert_eq!(w.fetch.fetched.get(), 1, "fetched once, then cached");
    let refreshed = refresh(&w, DOCUMENT_URL, tokens.json_body()["refresh_token"].as_str().unwrap());
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.json_body());
    // After the cache's hour the document is read again.
    w.env.now.set(w.env.now.get() + client::CACHE_TTL_MS + 1);
    assert_eq!(authorize(&w, DOCUMENT_URL, REDIRECT, &[]).status, 200);
    assert_eq!(w.fetch.fetched.get(), 2);
}

#[test]
fn a_metadata_document_that_is_wrong_or_unreadable_makes_an_unknown_client_and_no_redirect() {
    let w = keyed();
    let bad = [
        ("https://a.example.com/c.json", json!({"client_id": "https://other.example.com/c.json", "redirect_uris": [REDIRECT]})),
        ("https://b.example.com/c.json", json!({"client_id": "https://b.example.com/c.json", "redirect_uris": ["http://evil.example.com/cb"]})),
        ("https://c.example.com/c.json", json!({"client_id": "https://c.example.com/c.json", "redirect_uris": [REDIRECT], "client_secret": "s"})),
        ("https://d.example.com/c.json", json!({"client_id": "https://d.example.com/c.json", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic"})),
        ("https://e.example.com/c.json", json!({"client_id": "https://e.example.com/c.json", "redirect_uris": []})),
        ("https://f.example.com/c.json", json!(["not", "an", "object"])),
    ];
    for (url, doc) in &bad {
        publish(&w, url, doc.clone());
    }
    w.fetch.documents.borrow_mut().insert("https://g.example.com/c.json".into(), Err(crate::ports::FetchError::Refused("a private address".into())));
    w.fetch.documents.borrow_mut().insert("https://h.example.com/c.json".into(), Ok(vec![b' '; client::MAX_BYTES + 1]));
    let urls: Vec<&str> = bad.iter().map(|(u, _)| *u).chain(["https://g.example.com/c.json", "https://h.example.com/c.json", "https://nowhere.example.com/c.json"]).collect();
    for url in urls {
        let page = authorize(&w, url, REDIRECT, &[]);
        assert_eq!(page.status, 400, "{url}");
        assert!(page.header("location").is_none(), "{url}: no redirect");
        assert_eq!(exchange(&w, url, "whatever", VERIFIER).json_body()["error"], "invalid_client", "{url}");
    }
    // A URL that is not a document's: not https, a root path, a fragment, dot segments, user info.
    publish(&w, "https://i.example.com/", json!({"client_id": "https://i.example.com/", "redirect_uris": [REDIRECT]}));
    let before = w.fetch.fetched.get();
    for url in [
        "https://i.example.com/", "https://i.example.com/a/../c.json", "https://u:p@i.example.com/c.json", "https://i.example.com/c.json#x", "ftp://i.example.com/c.json",
        // An address that is not a public one (SPEC §2.5), outside dev mode: not even asked.
        "https://127.0.0.1:8443/c.json", "https://localhost/c.json", "https://[::1]/c.json", "https://10.0.0.7/c.json",
        "https://192.168.1.1/c.json", "https://169.254.169.254/latest/meta-data", "https://[fd00::1]/c.json", "https://[fe80::1]/c.json",
    ] {
        assert_eq!(authorize(&w, url, REDIRECT, &[]).status, 400, "{url}");
    }
    assert_eq!(w.fetch.fetched.get(), before, "none of those is fetched");
}

#[test]
fn a_loopback_http_document_is_taken_in_dev_mode_only() {
    let url = "http://127.0.0.1:4444/client.json";
    let mut w = keyed();
    publish(&w, url, json!({"client_id": url, "redirect_uris": [REDIRECT]}));
    w.settings.dev = false;
    assert_eq!(authorize(&w, url, REDIRECT, &[]).status, 400, "outside dev mode an http client_id is no document");
    assert_eq!(w.fetch.fetched.get(), 0);
    w.settings.dev = true;
    let page = authorize(&w, url, REDIRECT, &[]);
    assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
    assert!(String::from_utf8_lossy(&page.body).contains("127.0.0.1"), "no client_name: the host names it");
}

#[test]
fn one_client_address_makes_the_server_fetch_at_most_ten_documents_a_minute() {
    let w = keyed();
    let url = |i: u32| format!("https://c{i}.example.com/client.json");
    for i in 0..12 {
        publish(&w, &url(i), json!({"client_id": url(i), "redirect_uris": [REDIRECT]}));
    }
    w.env.now.set(w.env.now.get().div_euclid(60_000) * 60_000);
    for i in 0..client::FETCHES_PER_MINUTE {
        assert_eq!(authorize(&w, &url(i), REDIRECT, &[]).status, 200, "{}", url(i));
    }
    assert_eq!(authorize(&w, &url(10), REDIRECT, &[]).status, 400, "the eleventh document of the minute is not fetched");
    assert_eq!(w.fetch.fetched.get(), client::FETCHES_PER_MINUTE);
    assert_eq!(authorize(&w, &url(0), REDIRECT, &[]).status, 200, "a cached document still names its client");
    w.env.now.set(w.env.now.get() + 60_000);
    assert_eq!(authorize(&w, &url(11), REDIRECT, &[]).status, 200, "the next minute fetches again");
    assert_eq!(w.fetch.fetched.get(), client::FETCHES_PER_MINUTE + 1);
}

#[test]
fn a_request_to_an_oauth_endpoint_names_its_client_wherever_it_carries_it_and_no_other_request_does() {
    let req = |path: &str, query: &str, headers: &[(&str, &str)], body: &str| Request {
        method: "POST".into(),
        path: path.into(),
        query: query.into(),
        headers: headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(),
        body: body.as_bytes().to_vec(),
        body_too_large: false,
    };
    use base64::Engine as _;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:", "https%3A%2F%2Fb.example%2Fc.json")));
    let cases = [
        (req("/oauth/authorize", "response_type=code&client_id=https%3A%2F%2Fq.example%2Fc.json", &[], ""), Some("https://q.example/c.json")),
        (req("/oauth/token", "", &form, "grant_type=refresh_token&client_id=https%3A%2F%2Ff.example%2Fc.json"), Some("https://f.example/c.json")),
        (req("/oauth/revoke", "", &[("authorization", &basic)], ""), Some("https://b.example/c.json")),
        (req("/api/oauth/consent", "", &[("content-type", "application/json")], r#"{"client_id": "https://j.example/c.json"}"#), Some("https://j.example/c.json")),
        (req("/api/oauth/sign-in", "", &[], r#"{"email": "a@example.com"}"#), None),
        (req("/api/signup/init", "", &[("content-type", "application/json")], r#"{"client_id": "https://s.example/c.json"}"#), None),
        (req("/mcp", "client_id=https%3A%2F%2Fm.example%2Fc.json", &[], ""), None),
    ];
    for (request, named) in cases {
        assert_eq!(client_named(&request).as_deref(), named, "{} {}", request.path, request.query);
    }
}
