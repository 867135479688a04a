//! The official MCP Python SDK's OAuth client (`scripts/mcp-oauth-client.py`) run against a server
//! under test, the mail it needs read from the server's SMTP conversation; shared by the black-box
//! suite (`tests/api/oauth.rs`) and the in-process one (`tests/host/oauth.rs`).

use serde_json::{Value, json};

use crate::helpers::{PASSPHRASE, TestApp};

/// How the SDK's client signs the person in on the authorize page's API.
pub enum Way {
    Passphrase,
    /// A code emailed on the page's request: the test reads it from the mail and gives it to the client.
    Code,
    /// A new person signs up in this language; the test gives the client the verification link.
    SignUp(&'static str),
}

/// Runs the SDK's client against `app` as the person `email` (`extra`: more of the driver's
/// arguments); its one-line JSON summary. The
/// client asks for what only a mailbox has (`NEED_CODE`, `NEED_LINK` on its stdout) and is
/// answered on its stdin from the mail the server sent.
pub async fn sdk_client(app: &TestApp, email: &str, way: Way, extra: &[&str]) -> Value {
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
        .args(extra)
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
pub fn assert_acts_as(summary: &Value, email: &str) {
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["tools"], json!(["requestProfileLink", "whoAmI"]), "{summary}");
    assert_eq!(summary["who"]["email"], email, "{summary}");
    assert_eq!(summary["who"]["status"], "active");
    assert_eq!(summary["refreshed"], true);
}
