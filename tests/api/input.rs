//! Bad input gets a 4xx with a JSON error naming the problem — never a 500.

use serde_json::{Value, json};

use crate::helpers::{Backend, PASSPHRASE, email, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sign_up_input_gets_a_named_4xx_and_never_a_500() {
    let app = spawn_app(Backend::Sqlite).await;
    let good = json!({"email": email("in"), "consent": true, "locale": "en", "passphrase": PASSPHRASE});
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        serde_json::to_vec(&b).unwrap()
    };
    let without = |k: &str| {
        let mut b = good.clone();
        b.as_object_mut().unwrap().remove(k);
        serde_json::to_vec(&b).unwrap()
    };
    /// (body, content type, status, code, field)
    type Case<'a> = (Vec<u8>, &'a str, u16, &'a str, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (b"{\"email\": ".to_vec(), "application/json", 400, "INVALID_JSON", None),
        (Vec::new(), "application/json", 400, "INVALID_JSON", None),
        (b"[1,2]".to_vec(), "application/json", 400, "INVALID_JSON", None),
        (b"\"text\"".to_vec(), "application/json", 400, "INVALID_JSON", None),
        (serde_json::to_vec(&good).unwrap(), "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE", None),
        (with("email", json!(42)), "application/json", 422, "INVALID_INPUT", Some("email")),
        (with("consent", json!("yes")), "application/json", 422, "INVALID_INPUT", Some("consent")),
        (with("locale", json!(["en"])), "application/json", 422, "INVALID_INPUT", Some("locale")),
        (with("passphrase", json!({"a": 1})), "application/json", 422, "INVALID_INPUT", Some("passphrase")),
        (with("unexpected", json!(1)), "application/json", 422, "INVALID_INPUT", Some("unexpected")),
        (without("email"), "application/json", 422, "INVALID_INPUT", Some("email")),
        (with("email", json!("not-an-address")), "application/json", 422, "INVALID_INPUT", Some("email")),
        (with("email", json!(format!("{}@example.com", "a".repeat(300)))), "application/json", 422, "INVALID_INPUT", Some("email")),
        (with("locale", json!("xx")), "application/json", 422, "INVALID_INPUT", Some("locale")),
        (with("passphrase", json!("too short")), "application/json", 422, "INVALID_INPUT", Some("passphrase")),
        (with("passphrase", json!("x".repeat(257))), "application/json", 422, "INVALID_INPUT", Some("passphrase")),
    ];
    for (body, content_type, status, code, field) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        let r = app.post_raw("/api/signup/init", content_type, body).await;
        assert_eq!(r.status().as_u16(), status, "{shown}");
        let json: Value = r.json().await.unwrap_or_else(|_| panic!("a JSON error body for {shown}"));
        assert_eq!(json["code"], code, "{shown}");
        assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()), "{shown}");
        assert_eq!(json["field"].as_str(), field, "{shown}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_verify_input_and_wrong_methods_are_4xx() {
    let app = spawn_app(Backend::Sqlite).await;
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        ("POST", "/api/signup/verify", b"{}".to_vec(), 422),
        ("POST", "/api/signup/verify", br#"{"token": 5}"#.to_vec(), 422),
        ("POST", "/api/signup/verify", br#"{"token": "x", "more": 1}"#.to_vec(), 422),
        ("POST", "/api/signup/verify", b"nonsense".to_vec(), 400),
        ("GET", "/api/signup/init", Vec::new(), 405),
        ("PUT", "/api/signup/verify", Vec::new(), 405),
        ("GET", "/api/signup/nothing-here", Vec::new(), 404),
    ];
    for (method, path, body, status) in cases {
        let r = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
        let json: Value = r.json().await.unwrap();
        assert!(json["code"].is_string(), "{method} {path}");
    }
    let cross = app
        .client
        .post(app.url("/api/signup/verify"))
        .header("origin", "https://evil.example")
        .json(&json!({"token": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verify_page_asks_for_one_click_in_the_browser_language() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = app.client.get(app.url("/signup/verify")).header("accept-language", "ru-RU,ru;q=0.9").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'sha256-"), "{csp}");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let html = r.text().await.unwrap();
    assert!(html.contains("<title>Подтвердите адрес электронной почты</title>"));
    assert!(html.contains("<button id=\"confirm\""), "verification waits for a click");
    assert!(!html.contains("http://") && !html.contains("https://"), "no third-party assets");
    let en = app.get("/signup/verify").await.text().await.unwrap();
    assert!(en.contains("Confirm your email address"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_only_the_gpt_actions() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.keys().collect::<Vec<_>>(), vec!["/api/auth/check", "/api/me", "/api/me/profile-link", "/api/profile/init", "/api/signup/init"]);
    assert_eq!(doc["security"], json!([{"apiKey": []}]), "the service key by default");
    assert_eq!(doc["paths"]["/api/me"]["get"]["operationId"], "whoAmI");
    assert_eq!(doc["paths"]["/api/me"]["get"]["security"], json!([{"oauth2": ["account"]}]), "a person's action");
    assert_eq!(doc["paths"]["/api/me/profile-link"]["post"]["operationId"], "requestProfileLink");
    assert_eq!(doc["paths"]["/api/me/profile-link"]["post"]["security"], json!([{"oauth2": ["account"]}]));
    assert_eq!(doc["paths"]["/api/auth/check"]["post"]["operationId"], "authCheck");
    assert_eq!(doc["paths"]["/api/auth/check"]["post"]["x-openai-isConsequential"], false, "it changes no account");
    assert_eq!(doc["paths"]["/api/signup/init"]["post"]["operationId"], "signUpInit");
    assert_eq!(doc["paths"]["/api/signup/init"]["post"]["x-openai-isConsequential"], true, "it creates an account");
    assert_eq!(doc["paths"]["/api/profile/init"]["post"]["operationId"], "updateInit");
    assert_eq!(doc["paths"]["/api/profile/init"]["post"]["x-openai-isConsequential"], false, "it only emails the owner a link");
    fn descriptions(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, v)| {
                if k == "description" {
                    out.push(v.as_str().unwrap_or_default().to_owned());
                }
                descriptions(v, out);
            }),
            Value::Array(a) => a.iter().for_each(|v| descriptions(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    descriptions(&doc, &mut all);
    assert!(all.iter().all(|d| d.chars().count() <= 300), "descriptions stay within 300 characters");
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_privacy_policy_is_served_in_the_browser_language() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = app.client.get(app.url("/privacy")).header("accept-language", "ru").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'none'"));
    let html = r.text().await.unwrap();
    assert!(html.contains("<h1>Политика конфиденциальности</h1>"));
    assert!(html.contains("Версия 1."));
    let en = app.get("/privacy").await.text().await.unwrap();
    assert!(en.contains("Argon2id") && en.contains("7 days"), "says what is kept and for how long");
}

/// Sends a request head announcing `length` body bytes, sends no body, and returns the status code
/// of the answer if one comes within 3 s (a server that waits for the body answers nothing).
async fn answer_to_a_head_alone(app: &crate::helpers::TestApp, length: usize, key: Option<&str>) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    let head = format!(
        "POST /api/signup/init HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{auth}Content-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(3), stream.read(&mut buf)).await.ok()?.ok()?;
    // "HTTP/1.1 413 Payload Too Large" -> "413"
    String::from_utf8_lossy(&buf[..n]).split_whitespace().nth(1).map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_over_64_kib_is_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app(Backend::Sqlite).await;
    let host = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let auth = app.api_key.as_ref().map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    // No Content-Length: the size is known only by reading, and the whole body is sent.
    let body = vec![b' '; 100_000];
    let head = format!("POST /api/signup/init HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{auth}Transfer-Encoding: chunked\r\n\r\n{:x}\r\n", body.len());
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    stream.write_all(b"\r\n0\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("PAYLOAD_TOO_LARGE") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf)).await.expect("an answer").unwrap();
        assert!(n > 0, "the server answered: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 413 "), "{}", String::from_utf8_lossy(&answer));
}

/// A client that sends its whole (too large) chunked body before it reads, as simple HTTP clients
/// do, gets the `413`: the server takes in and discards the rest for a while before it closes,
/// instead of resetting the connection under the client's writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_streams_8_mib_before_reading_gets_the_413_not_a_reset() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app(Backend::Sqlite).await;
    let host = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let auth = app.api_key.as_ref().map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    let head = format!("POST /api/signup/init HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{auth}Transfer-Encoding: chunked\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
    for n in 0..128 {
        stream.write_all(chunk.as_bytes()).await.unwrap_or_else(|e| panic!("chunk {n} of 128 (64 KiB each) not taken: {e}"));
    }
    stream.write_all(b"0\r\n\r\n").await.expect("the whole body was taken");
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("PAYLOAD_TOO_LARGE") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf)).await.expect("an answer").expect("no reset");
        assert!(n > 0, "the server answered: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 413 "), "{}", String::from_utf8_lossy(&answer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_declared_body_and_a_missing_key_are_answered_before_any_body_is_sent() {
    let app = spawn_app(Backend::Sqlite).await;
    let ten_mib = 10 * 1024 * 1024;
    let status = answer_to_a_head_alone(&app, ten_mib, app.api_key.as_deref()).await;
    assert_eq!(status.as_deref(), Some("413"), "413 from the head alone");
    if app.api_key.is_some() {
        let status = answer_to_a_head_alone(&app, ten_mib, None).await;
        assert_eq!(status.as_deref(), Some("401"), "the key is checked before the body");
        let status = answer_to_a_head_alone(&app, ten_mib, Some("wrong-key")).await;
        assert_eq!(status.as_deref(), Some("401"));
    }
}
