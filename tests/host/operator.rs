//! The operator's CLI (issue 12): the real `gpt-user` binary, run as a process against the same
//! database as an in-process host (its SQLite file, or its PostgreSQL database), on data made
//! through the HTTP API — list and show, block (the server's answers change at once) and unblock,
//! delete (nothing of the account left), the outbox after an SMTP outage, dead mail, `check`, and
//! bad input.
//! Every test also asserts that no command printed a secret: no token, passphrase, hash, subject
//! or body of a message.
//!
//! The binary is `target/<profile>/gpt-user`, next to this test binary's `deps/`: a workspace run
//! builds it (`host/tests/cli.rs` needs it); a run of this package alone needs
//! `cargo build -p gpt-user --bin gpt-user` first.

use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Backend, MailMode, Options, PASSPHRASE, TestApp, email, rfc3339_utc_seconds, spawn_app, spawn_with, unknown_pin};
use crate::on_both_backends;

/// One command on a busy 2-core machine; an unreachable database must fail well within it.
const CLI_WITHIN: Duration = Duration::from_secs(120);
/// Past the per-address send interval (one email of a kind per minute).
const MINUTE: Duration = Duration::from_secs(61);
const HOUR_MS: u64 = 3_600_000;
/// Wrong for every account here (they use `PASSPHRASE`).
const WRONG: &str = "wrong horse battery staple 51c7";
const UNREACHABLE: &str = "postgres://postgres@127.0.0.1:1/x";
const UNREACHABLE_WITH_PASSWORD: &str = "postgres://postgres:s3cret@127.0.0.1:1/x";
const SMTP_USER: &str = "relay-user-7f3a";
const SMTP_PASSWORD: &str = "relay-pa55word-0d9e";
/// Text that appears in no output of a working panic-free CLI.
const PANIC_SIGNS: [&str; 3] = ["panicked", "RUST_BACKTRACE", "stack backtrace"];

on_both_backends!(
    users_list_and_show_report_the_accounts_with_their_counts,
    blocking_answers_403_at_once_revokes_the_links_and_unblocking_restores_the_account,
    deleting_an_account_asks_first_and_then_leaves_nothing_of_it,
    the_outbox_after_an_smtp_outage_is_listed_retried_and_purged_without_its_bodies,
    dead_mail_is_listed_with_its_reason_and_no_body_and_is_not_retried,
    unknown_accounts_and_malformed_arguments_are_one_line_errors,
    check_says_ok_for_a_good_configuration_and_names_what_is_wrong,
    the_audit_trail_lists_what_the_operator_did_and_outlives_a_deleted_account,
);

// ---------------------------------------------------------------------------------------------
// Running the binary.

/// The `gpt-user` binary: `…/target/debug/deps/host-…` → `…/target/debug/gpt-user`.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe.parent().and_then(Path::parent).expect("the test binary lives in target/<profile>/deps");
    let bin = dir.join(format!("gpt-user{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: build it first (`cargo build -p gpt-user --bin gpt-user`; a workspace run builds it)",
        bin.display()
    );
    bin
}

/// One finished command: its exit code (`None`: killed by a signal) and its output.
#[derive(Debug, Clone)]
struct Run {
    command: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`gpt-user {}` exited with {:?}\n--- stdout\n{}--- stderr\n{}---", self.command, self.code, self.stdout, self.stderr)
    }
}

impl Run {
    fn assert_no_panic(&self) {
        for sign in PANIC_SIGNS {
            assert!(!self.stdout.contains(sign) && !self.stderr.contains(sign), "no panic, no backtrace: {self}");
        }
    }

    /// Exit 0, no panic.
    fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "{self}");
        self.assert_no_panic();
        self
    }

    /// Exit 1 with exactly one line on stderr, `error: …` containing `says`; returns that line.
    fn error(&self, says: &str) -> String {
        assert_eq!(self.code, Some(1), "exit code 1: {self}");
        self.assert_no_panic();
        let lines: Vec<&str> = self.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "exactly one line on stderr: {self}");
        assert!(lines[0].starts_with("error: "), "the line starts with `error: `: {self}");
        assert!(lines[0].contains(says), "the error says `{says}`: {self}");
        lines[0].to_owned()
    }

    /// The non-empty lines of stdout.
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().filter(|l| !l.trim().is_empty()).collect()
    }

    /// The non-empty lines of stdout and stderr (`check` may write either).
    fn all_lines(&self) -> Vec<&str> {
        self.stdout.lines().chain(self.stderr.lines()).filter(|l| !l.trim().is_empty()).collect()
    }

    /// stdout as JSON lines: each one an object.
    fn json_lines(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("a JSON line ({e}): {l}\n{self}"));
                assert!(v.is_object(), "a JSON object per line: {l}\n{self}");
                v
            })
            .collect()
    }
}

/// Reads a pipe to its end on a thread of its own, so a chatty child never blocks on a full pipe.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs `gpt-user <args>` with no `GPT_USER_*` variable of the caller, no log filter and no
/// backtrace asked for (what an operator gets by default), then `env` (an empty value unsets);
/// `stdin` is written to the
/// command's standard input (else it reads end-of-file). Waits up to `CLI_WITHIN`.
fn run_cli(args: &[String], env: &[(String, String)], stdin: Option<&str>, cwd: &Path) -> Run {
    let mut cmd = Command::new(binary());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GPT_USER_") {
            cmd.env_remove(&key);
        }
    }
    for key in ["RUST_LOG", "RUST_BACKTRACE", "RUST_LIB_BACKTRACE"] {
        cmd.env_remove(key);
    }
    for (key, value) in env {
        // An empty value unsets the variable (as if the deployment did not set it).
        if value.is_empty() {
            cmd.env_remove(key);
        } else {
            cmd.env(key, value);
        }
    }
    cmd.args(args).current_dir(cwd);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", binary().display()));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // Closed when dropped: the command reads end-of-file after the input. A command that
        // exits without reading makes this fail, which is its answer to judge, not ours.
        let _ = pipe.write_all(input.as_bytes());
    }
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let deadline = Instant::now() + CLI_WITHIN;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let run = Run { command: args.join(" "), code: status.and_then(|s| s.code()), stdout: out.join().unwrap(), stderr: err.join().unwrap() };
    assert!(status.is_some(), "the command did not finish within {CLI_WITHIN:?}: {run}");
    run
}

/// `run_cli` off the async runtime's workers (the host under test runs on them).
async fn cli(args: &[&str], env: &[(String, String)], stdin: Option<&str>, cwd: &Path) -> Run {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env = env.to_vec();
    let stdin = stdin.map(str::to_owned);
    let cwd = cwd.to_path_buf();
    tokio::task::spawn_blocking(move || run_cli(&args, &env, stdin.as_deref(), &cwd))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// The operator of one test's host: runs commands against its database with its configuration
/// (the data dir, an API key as a deployment has), keeps everything they printed and the
/// secrets none of it may contain.
struct Operator {
    env: Vec<(String, String)>,
    dir: PathBuf,
    printed: Mutex<Vec<(String, String)>>,
    secrets: Mutex<Vec<String>>,
}

impl Operator {
    fn of(app: &TestApp) -> Self {
        let control = app.control();
        let dir = control.data_dir().to_path_buf();
        // A PostgreSQL host writes nothing there; the commands run in it.
        std::fs::create_dir_all(&dir).unwrap();
        let key = format!("operator-test-key-{}", uuid::Uuid::new_v4().simple());
        let env = vec![
            ("GPT_USER_DATABASE_URL".to_owned(), control.database_url()),
            ("GPT_USER_DATA_DIR".to_owned(), dir.display().to_string()),
            ("GPT_USER_API_KEYS".to_owned(), key.clone()),
        ];
        let op = Self { env, dir, printed: Default::default(), secrets: Default::default() };
        for secret in [PASSPHRASE, WRONG, "$argon2", key.as_str()] {
            op.secret(secret);
        }
        op
    }

    fn secret(&self, secret: &str) {
        let mut secrets = self.secrets.lock().unwrap();
        if !secret.is_empty() && !secrets.iter().any(|s| s == secret) {
            secrets.push(secret.to_owned());
        }
    }

    /// `gpt-user <args>` with this host's configuration.
    async fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[], None).await
    }

    /// Also with `env` (over this host's) and `stdin`.
    async fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
        let mut all = self.env.clone();
        all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let run = cli(args, &all, stdin, &self.dir).await;
        self.printed.lock().unwrap().push((run.command.clone(), format!("{}\n{}", run.stdout, run.stderr)));
        run
    }

    /// `gpt-user <args> --json`, which must succeed: its JSON lines.
    async fn json(&self, args: &[&str]) -> Vec<Value> {
        let mut all = args.to_vec();
        all.push("--json");
        let run = self.run(&all).await;
        run.ok();
        run.json_lines()
    }

    /// `users show <who> --json`: the one record.
    async fn show(&self, who: &str) -> Value {
        let lines = self.json(&["users", "show", who]).await;
        assert_eq!(lines.len(), 1, "one record: {lines:?}");
        lines.into_iter().next().unwrap()
    }

    /// Adds the secrets now in the database: passphrase hashes, token hashes, and the links'
    /// tokens and the subjects of every message.
    async fn harvest(&self, app: &TestApp) {
        let db = &app.control().db;
        let hashes: Vec<(String,)> = sqlx::query_as("SELECT passphrase_hash FROM users").fetch_all(db).await.unwrap();
        let tokens: Vec<(String,)> = sqlx::query_as("SELECT hash FROM secrets").fetch_all(db).await.unwrap();
        for (secret,) in hashes.iter().chain(&tokens) {
            self.secret(secret);
        }
        let mail: Vec<(String, String, String)> = sqlx::query_as("SELECT subject, text_body, html_body FROM outbox").fetch_all(db).await.unwrap();
        for (subject, text, html) in &mail {
            self.secret(subject);
            for token in link_tokens(text).into_iter().chain(link_tokens(html)) {
                self.secret(&token);
            }
        }
    }

    /// No command of the test printed a secret (the database's are harvested once more).
    async fn assert_nothing_secret_printed(&self, app: &TestApp) {
        self.harvest(app).await;
        let printed = self.printed.lock().unwrap();
        assert!(!printed.is_empty());
        for secret in self.secrets.lock().unwrap().iter() {
            for (command, output) in printed.iter() {
                // The secret itself stays out of the failure message too.
                assert!(!output.contains(secret.as_str()), "`gpt-user {command}` printed a secret ({} characters)", secret.len());
            }
        }
    }
}

/// The tokens of the `…token=…` links in a message body.
fn link_tokens(body: &str) -> Vec<String> {
    body.split("token=")
        .skip(1)
        .map(|after| after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect::<String>())
        .filter(|t| t.len() >= 16)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reading records and the database.

/// A field that is a string (or, leniently, a number) as text.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("a string: {other}"),
    }
}

fn count(v: &Value, key: &str) -> i64 {
    v[key].as_i64().unwrap_or_else(|| panic!("`{key}` is a number: {v}"))
}

/// JSON `true` (or 1) / `false` (or 0).
fn flag(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) if n.as_i64() == Some(1) => true,
        Value::Number(n) if n.as_i64() == Some(0) => false,
        other => panic!("a boolean: {other}"),
    }
}

/// Seconds since the epoch of an RFC 3339 UTC field.
fn time_s(v: &Value, key: &str) -> i64 {
    let s = v[key].as_str().unwrap_or_else(|| panic!("`{key}` is a string: {v}"));
    rfc3339_utc_seconds(s).unwrap_or_else(|| panic!("`{key}` is an RFC 3339 UTC time: {v}"))
}

fn now_s() -> i64 {
    gpt_user::clock::system_now_ms() / 1000
}

/// The record of `to` among `rows` (by `email`, or `recipient` for the outbox).
fn find<'a>(rows: &'a [Value], key: &str, to: &str) -> Option<&'a Value> {
    rows.iter().find(|r| r[key].as_str() == Some(to))
}

const USER_KEYS: [&str; 7] = ["pin", "email", "status", "email_verified", "locale", "created_at", "blocked_reason"];
const SHOW_KEYS: [&str; 4] = ["updated_at", "open_tokens", "queued_mail", "auth_failures"];
const OUTBOX_KEYS: [&str; 10] =
    ["id", "recipient", "kind", "state", "attempts", "queued_at", "next_attempt_at", "sent_at", "dead_at", "last_error"];

fn assert_keys(v: &Value, keys: &[&str]) {
    for key in keys {
        assert!(v.get(key).is_some(), "the record has `{key}`: {v}");
    }
    for never in ["passphrase", "passphrase_hash", "hash", "token", "code", "subject", "body", "text_body", "html_body"] {
        assert!(v.get(never).is_none(), "no `{never}` in an operator's record: {v}");
    }
}

async fn user_id(app: &TestApp, to: &str) -> String {
    let (id,): (String,) = sqlx::query_as("SELECT id FROM users WHERE email = $1").bind(to).fetch_one(&app.control().db).await.unwrap();
    id
}

async fn users_with_email(app: &TestApp, to: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE email = $1").bind(to).fetch_one(&app.control().db).await.unwrap();
    n
}

async fn secrets_of(app: &TestApp, id: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM secrets WHERE user_id = $1").bind(id).fetch_one(&app.control().db).await.unwrap();
    n
}

async fn email_changes_of(app: &TestApp, id: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM email_changes WHERE user_id = $1").bind(id).fetch_one(&app.control().db).await.unwrap();
    n
}

/// An email change of the user, as the flow stores it (started, a code sent to the current address).
async fn start_email_change(app: &TestApp, id: &str) {
    let now = app.control().clock.now_ms();
    sqlx::query(
        "INSERT INTO email_changes (id, user_id, state, code_ref, sends, last_send_at, created_at, expires_at, version) \
         VALUES ($1, $2, 'confirm_current', $3, 1, $4, $5, $6, 0)",
    )
    .bind(uuid::Uuid::new_v4().simple().to_string())
    .bind(id)
    .bind(uuid::Uuid::new_v4().simple().to_string())
    .bind(now)
    .bind(now)
    .bind(now + 3_600_000)
    .execute(&app.control().db)
    .await
    .unwrap();
}

async fn unsent_to(app: &TestApp, to: &str) -> i64 {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND sent_at IS NULL").bind(to).fetch_one(&app.control().db).await.unwrap();
    n
}

async fn failure_rows(app: &TestApp, pin: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM auth_failures WHERE pin = $1").bind(pin).fetch_one(&app.control().db).await.unwrap();
    n
}

/// Waits (up to 20 s) until every message to `to` is marked sent: a message can reach the relay
/// a moment before its row says so.
async fn wait_until_sent(app: &TestApp, to: &str) {
    for _ in 0..200 {
        if unsent_to(app, to).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the mail to {to} was never marked sent");
}

/// Queues a message to `to` that no dispatcher tries for a day (unsent, no attempt yet), with
/// `body` as its text; returns its id.
async fn queue_held_mail(app: &TestApp, to: &str, body: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let now = gpt_user::clock::system_now_ms();
    sqlx::query(
        "INSERT INTO outbox (id, recipient, kind, subject, text_body, html_body, queued_at, next_attempt_at) \
         VALUES ($1, $2, 'operator-test', 'A held message for the operator test', $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(to)
    .bind(body)
    .bind(format!("<p>{body}</p>"))
    .bind(now)
    .bind(now + 24 * HOUR_MS as i64)
    .execute(&app.control().db)
    .await
    .unwrap();
    id
}

/// `n` wrong Auth_Checks of `pin` (5 or fewer: none is throttled).
async fn fail_checks(app: &TestApp, pin: &str, n: usize) {
    for _ in 0..n {
        assert_eq!(app.auth_check(&json!(pin), WRONG).await.status(), 401);
    }
}

/// The error code of an answer with `status`.
async fn error_code(r: reqwest::Response, status: u16) -> String {
    assert_eq!(r.status().as_u16(), status);
    let body: Value = r.json().await.unwrap();
    body["code"].as_str().unwrap_or_default().to_owned()
}

// ---------------------------------------------------------------------------------------------
// users list / show

async fn users_list_and_show_report_the_accounts_with_their_counts(backend: Backend) {
    let app = spawn_app(backend).await;
    let op = Operator::of(&app);
    let (a, b, c) = (email("op-list-a"), email("op-list-b"), email("op-list-c"));
    let pin_a = app.active_user(&a).await;
    let r = app.sign_up(&b, "ru").await;
    assert_eq!(r.status(), 201);
    let pin_b = r.json::<Value>().await.unwrap()["pin"].as_str().unwrap().to_owned();
    op.secret(&app.next_mail(&b).await.token());
    let pin_c = app.active_user(&c).await;

    // The table: a header, then a row per account, the columns aligned.
    let table = op.run(&["users", "list"]).await;
    table.ok();
    let lines = table.lines();
    let header = lines.first().unwrap_or_else(|| panic!("a header: {table}")).to_lowercase();
    for column in ["pin", "email", "status"] {
        assert!(header.contains(column), "the header names `{column}`: {table}");
    }
    let email_column = header.find("email").unwrap();
    for (to, pin, status) in [(&a, &pin_a, "active"), (&b, &pin_b, "pending"), (&c, &pin_c, "active")] {
        let row = lines.iter().find(|l| l.contains(to.as_str())).unwrap_or_else(|| panic!("a row for {to}: {table}"));
        assert!(row.contains(pin.as_str()) && row.contains(status), "{to}: PIN {pin}, {status}: {table}");
        assert_eq!(row.find(to.as_str()), Some(email_column), "the email column is aligned with its header: {table}");
    }

    // JSON lines: every key, the values of each account.
    let rows = op.json(&["users", "list"]).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in &rows {
        assert_keys(row, &USER_KEYS);
        let created = time_s(row, "created_at");
        assert!((created - now_s()).abs() < 600, "created just now: {row}");
        assert!(row["blocked_reason"].is_null(), "{row}");
    }
    let row_a = find(&rows, "email", &a).unwrap_or_else(|| panic!("{a} listed: {rows:?}"));
    assert_eq!(text(&row_a["pin"]), pin_a);
    assert_eq!(row_a["status"], "active");
    assert!(flag(&row_a["email_verified"]), "{row_a}");
    assert_eq!(row_a["locale"], "en");
    let row_b = find(&rows, "email", &b).unwrap_or_else(|| panic!("{b} listed: {rows:?}"));
    assert_eq!((text(&row_b["pin"]), row_b["status"].clone(), row_b["locale"].clone()), (pin_b.clone(), json!("pending"), json!("ru")));
    assert!(!flag(&row_b["email_verified"]), "{row_b}");
    assert_eq!(rows[0]["email"], c, "newest first: {rows:?}");

    // Filters.
    let pending = op.json(&["users", "list", "--status", "pending"]).await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["email"], b);
    let active = op.json(&["users", "list", "--status", "active"]).await;
    assert_eq!(active.len(), 2, "{active:?}");
    assert!(find(&active, "email", &a).is_some() && find(&active, "email", &c).is_some(), "{active:?}");
    assert!(op.json(&["users", "list", "--status", "blocked"]).await.is_empty());
    let unique_a = a.split('@').next().unwrap().to_uppercase();
    let like = op.json(&["users", "list", "--email-like", &unique_a]).await;
    assert_eq!(like.len(), 1, "a case-insensitive substring: {like:?}");
    assert_eq!(like[0]["email"], a);
    let newest = op.json(&["users", "list", "--limit", "1"]).await;
    assert_eq!(newest.len(), 1, "{newest:?}");
    assert_eq!(newest[0]["email"], c, "the newest account");
    assert_eq!(op.json(&["users", "list", "--limit", "2"]).await.len(), 2);

    // Counts: an open profile link, a message waiting, three failed checks.
    op.secret(&app.profile_link_token(&a).await);
    wait_until_sent(&app, &a).await;
    let marker = format!("held-body-{}", uuid::Uuid::new_v4().simple());
    op.secret(&marker);
    queue_held_mail(&app, &a, &marker).await;
    fail_checks(&app, &pin_a, 3).await;

    let by_email = op.show(&format!("  {}  ", a.to_uppercase())).await;
    assert_keys(&by_email, &USER_KEYS);
    assert_keys(&by_email, &SHOW_KEYS);
    assert_eq!(by_email["email"], a, "the address is trimmed and lower-cased: {by_email}");
    assert_eq!(text(&by_email["pin"]), pin_a);
    assert_eq!(by_email["status"], "active");
    assert!(by_email["blocked_reason"].is_null(), "{by_email}");
    assert_eq!(count(&by_email, "open_tokens"), 1, "the profile link: {by_email}");
    assert_eq!(count(&by_email, "queued_mail"), 1, "the held message: {by_email}");
    assert_eq!(count(&by_email, "auth_failures"), 3, "{by_email}");
    assert!(time_s(&by_email, "updated_at") >= time_s(&by_email, "created_at"), "{by_email}");
    let by_pin = op.show(&pin_a).await;
    assert_eq!(by_pin, by_email, "the same account by PIN");

    let pending_b = op.show(&pin_b).await;
    assert_eq!(pending_b["email"], b);
    assert_eq!(count(&pending_b, "open_tokens"), 1, "its verification link: {pending_b}");
    assert_eq!(count(&pending_b, "auth_failures"), 0, "{pending_b}");
    assert_eq!(count(&op.show(&c).await, "open_tokens"), 0, "its verification link was used");

    // The table form: `key  value` lines.
    let table = op.run(&["users", "show", &pin_a]).await;
    table.ok();
    let value_of = |key: &str| -> String {
        let line = table.lines().into_iter().find(|l| l.split_whitespace().next() == Some(key)).unwrap_or_else(|| panic!("a `{key}` line: {table}"));
        line.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
    };
    assert_eq!(value_of("email"), a);
    assert_eq!(value_of("pin"), pin_a);
    assert_eq!(value_of("status"), "active");
    assert_eq!(value_of("open_tokens"), "1");
    assert_eq!(value_of("queued_mail"), "1");
    assert_eq!(value_of("auth_failures"), "3");

    // The data dir alone names the SQLite file, as for `serve`.
    if backend == Backend::Sqlite {
        let dir = op.dir.display().to_string();
        let run = op.run_with(&["users", "show", pin_a.as_str(), "--data-dir", dir.as_str()], &[("GPT_USER_DATABASE_URL", ""), ("GPT_USER_DATA_DIR", "")], None).await;
        run.ok();
        assert!(run.stdout.contains(&a), "{run}");
    }
    op.assert_nothing_secret_printed(&app).await;
}

// ---------------------------------------------------------------------------------------------
// users block / unblock

async fn blocking_answers_403_at_once_revokes_the_links_and_unblocking_restores_the_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let op = Operator::of(&app);
    let to = email("op-block");
    let pin = app.active_user(&to).await;
    let id = user_id(&app, &to).await;
    let link = app.profile_link_token(&to).await;
    op.secret(&link);
    assert_eq!(app.profile_load(&link).await.status(), 200, "the link works before the block");
    control.clock.advance(MINUTE);

    let reason = "spam from this address (ticket 42)";
    let run = op.run(&["users", "block", &to, "--reason", reason]).await;
    run.ok();
    assert!(run.stdout.contains(&format!("blocked {to} (PIN {pin})")), "{run}");
    assert!(run.stdout.contains("revoked 1 token"), "its profile link: {run}");
    assert_eq!(secrets_of(&app, &id).await, 0, "every token of the account is gone");

    // The server answers differently at once.
    let r = app.profile_init(&json!({"email": to})).await;
    assert_eq!(error_code(r, 403).await, "ACCOUNT_BLOCKED", "Update_Init by email");
    let r = app.profile_init(&json!({"pin": pin})).await;
    assert_eq!(error_code(r, 403).await, "ACCOUNT_BLOCKED", "Update_Init by PIN");
    app.auth_answer(&json!(pin), PASSPHRASE).await.assert_error(403, "ACCOUNT_BLOCKED");
    let r = app.sign_up(&to, "en").await;
    assert_eq!(error_code(r, 409).await, "EMAIL_ALREADY_REGISTERED", "the address stays taken");
    let r = app.profile_load(&link).await;
    assert_eq!(error_code(r, 410).await, "INVALID_TOKEN", "the link issued before the block was revoked, not just refused");

    let shown = op.show(&to).await;
    assert_eq!(shown["status"], "blocked", "{shown}");
    assert_eq!(shown["blocked_reason"], reason, "{shown}");
    assert_eq!(count(&shown, "open_tokens"), 0, "{shown}");
    let table = op.run(&["users", "show", &to]).await;
    table.ok();
    assert!(table.stdout.contains(reason), "the table shows the reason: {table}");
    let blocked = op.json(&["users", "list", "--status", "blocked"]).await;
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert_eq!((blocked[0]["email"].clone(), blocked[0]["blocked_reason"].clone()), (json!(to), json!(reason)));

    // Again, by PIN, as JSON: fine, nothing left to revoke.
    let again = op.json(&["users", "block", &pin]).await;
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(text(&again[0]["pin"]), pin);
    assert_eq!(again[0]["email"], to);
    assert_eq!(again[0]["status"], "blocked");
    assert_eq!(count(&again[0], "revoked_tokens"), 0, "{}", again[0]);

    // Unblocked (by PIN), the account works again: Auth_Check, a new profile link.
    let run = op.run(&["users", "unblock", &pin]).await;
    run.ok();
    assert!(run.stdout.contains(&format!("unblocked {to} (PIN {pin}): active")), "{run}");
    let shown = op.show(&pin).await;
    assert_eq!(shown["status"], "active", "{shown}");
    assert!(shown["blocked_reason"].is_null(), "the reason is cleared: {shown}");
    let answer = app.auth_answer(&json!(pin), PASSPHRASE).await;
    assert_eq!((answer.status, answer.body["status"].clone()), (200, json!("active")), "{}", answer.body);
    let fresh = app.profile_link_token(&to).await;
    op.secret(&fresh);
    assert_eq!(app.profile_load(&fresh).await.status(), 200);
    assert_eq!(app.profile_load(&link).await.status(), 410, "the revoked link stays dead");

    // Unblocking an account that is not blocked is an error.
    op.run(&["users", "unblock", &to]).await.error(&format!("account {to} is not blocked"));

    // A pending account goes back to pending.
    let pending = email("op-block-pending");
    let r = app.sign_up(&pending, "en").await;
    assert_eq!(r.status(), 201);
    let pending_pin = r.json::<Value>().await.unwrap()["pin"].as_str().unwrap().to_owned();
    let verification = app.next_mail(&pending).await.token();
    op.secret(&verification);
    let run = op.run(&["users", "block", &pending_pin]).await;
    run.ok();
    assert!(run.stdout.contains("revoked 1 token"), "its verification link: {run}");
    assert_eq!(app.verify(&verification).await.status(), 410, "the verification link is revoked too");
    let run = op.run(&["users", "unblock", &pending]).await;
    run.ok();
    assert!(run.stdout.contains(&format!("unblocked {pending} (PIN {pending_pin}): pending")), "{run}");
    assert_eq!(op.show(&pending).await["status"], "pending");
    op.assert_nothing_secret_printed(&app).await;
}

// ---------------------------------------------------------------------------------------------
// users delete

async fn deleting_an_account_asks_first_and_then_leaves_nothing_of_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let control = app.control();
    let op = Operator::of(&app);
    let (to, other, keep) = (email("op-delete"), email("op-delete-other"), email("op-keep"));
    let pin = app.active_user(&to).await;
    let other_pin = app.active_user(&other).await;
    let keep_pin = app.active_user(&keep).await;
    let (id, other_id, keep_id) = (user_id(&app, &to).await, user_id(&app, &other).await, user_id(&app, &keep).await);
    // Something of each kind: a token, a message waiting, failed checks.
    for account in [&to, &other, &keep] {
        op.secret(&app.profile_link_token(account).await);
        wait_until_sent(&app, account).await;
        let marker = format!("held-body-{}", uuid::Uuid::new_v4().simple());
        op.secret(&marker);
        queue_held_mail(&app, account, &marker).await;
    }
    for account_pin in [&pin, &other_pin, &keep_pin] {
        fail_checks(&app, account_pin, 2).await;
    }
    for account_id in [&id, &other_id, &keep_id] {
        start_email_change(&app, account_id).await;
    }
    op.harvest(&app).await;

    // Without --yes it asks on stderr; anything but y/yes keeps the account.
    for answer in [Some("n\n"), Some("maybe\n"), None] {
        let run = op.run_with(&["users", "delete", &to], &[], answer).await;
        assert_eq!(run.code, Some(1), "answered {answer:?}: {run}");
        run.assert_no_panic();
        assert!(run.stderr.contains(&format!("Delete the account {to} (PIN {pin})")) && run.stderr.contains("[y/N]"), "the question: {run}");
        assert!(run.stderr.contains("error: not deleted"), "{run}");
        assert!(!run.stdout.contains("deleted"), "{run}");
        assert_eq!(users_with_email(&app, &to).await, 1, "still there after {answer:?}");
    }
    assert_eq!(op.show(&to).await["status"], "active");

    // "y" deletes it.
    let run = op.run_with(&["users", "delete", &to], &[], Some("y\n")).await;
    run.ok();
    assert!(run.stdout.contains(&format!("deleted {to} (PIN {pin})")), "{run}");
    // --yes does not ask (by PIN, nothing on stdin).
    let run = op.run(&["users", "delete", &other_pin, "--yes"]).await;
    run.ok();
    assert!(run.stdout.contains(&format!("deleted {other} (PIN {other_pin})")), "{run}");

    for (account, account_pin, account_id) in [(&to, &pin, &id), (&other, &other_pin, &other_id)] {
        op.run(&["users", "show", account]).await.error("no account");
        op.run(&["users", "show", account_pin]).await.error("no account");
        assert_eq!(users_with_email(&app, account).await, 0, "no user row for {account}");
        assert_eq!(secrets_of(&app, account_id).await, 0, "no token of {account}");
        assert_eq!(unsent_to(&app, account).await, 0, "no mail waiting for {account}");
        assert_eq!(failure_rows(&app, account_pin).await, 0, "no failed checks of {account}'s PIN");
        assert_eq!(email_changes_of(&app, account_id).await, 0, "no email change of {account}");
    }
    // The other account keeps all of its own.
    let kept = op.show(&keep).await;
    assert_eq!(
        (count(&kept, "open_tokens"), count(&kept, "queued_mail"), count(&kept, "auth_failures")),
        (1, 1, 2),
        "nothing of another account goes: {kept}"
    );
    assert_eq!(secrets_of(&app, &keep_id).await, 1);
    assert_eq!(failure_rows(&app, &keep_pin).await, 1);
    assert_eq!(email_changes_of(&app, &keep_id).await, 1);

    // Deleting again: there is no such account.
    op.run(&["users", "delete", &to, "--yes"]).await.error("no account");

    // The address is free: it signs up anew (past the minute between two emails of a kind).
    control.clock.advance(MINUTE);
    let r = app.sign_up(&to, "en").await;
    assert_eq!(r.status(), 201, "the address signs up again");
    op.secret(&app.next_mail(&to).await.token());
    let anew = op.show(&to).await;
    assert_eq!(anew["status"], "pending", "{anew}");
    assert_eq!(count(&anew, "auth_failures"), 0, "{anew}");
    op.assert_nothing_secret_printed(&app).await;
}

async fn the_audit_trail_lists_what_the_operator_did_and_outlives_a_deleted_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let op = Operator::of(&app);
    let (to, other) = (email("op-events"), email("op-events-other"));
    let pin = app.active_user(&to).await;
    app.active_user(&other).await;
    let reason = "chargeback (ticket 7)";
    op.run(&["users", "block", &pin, "--reason", reason]).await.ok();
    op.run(&["users", "unblock", &to]).await.ok();
    op.harvest(&app).await;

    let trail = op.json(&["events", "--user", &to]).await;
    let kinds: Vec<&str> = trail.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["account-created", "account-verified", "blocked", "unblocked"], "{trail:?}");
    assert_eq!((trail[2]["actor"].as_str(), trail[2]["detail"].as_str()), (Some("operator"), Some(reason)), "{trail:?}");
    assert_eq!(trail[0]["actor"], "chat");
    assert!(trail[0]["request_id"].as_str().is_some_and(|id| id.len() == 32), "{trail:?}");
    assert!(trail[2]["request_id"].is_null(), "no request: {trail:?}");
    assert!(trail.iter().all(|e| e["at"].as_str().is_some_and(|at| at.ends_with('Z'))), "{trail:?}");
    // By PIN the same; another account's events are not in it.
    assert_eq!(op.json(&["events", "--user", &pin]).await, trail);
    assert_eq!(op.json(&["events", "--kind", "blocked"]).await.len(), 1);
    let all = op.json(&["events"]).await;
    assert_eq!(all.len(), 6, "both accounts: {all:?}");
    assert_eq!(op.json(&["events", "--since", "1d"]).await.len(), 6);
    assert_eq!(op.json(&["events", "--limit", "2"]).await, all[4..], "the newest, oldest first");
    let table = op.run(&["events", "--user", &to]).await;
    table.ok();
    assert!(table.lines()[0].starts_with("at") && table.lines().len() == 5, "a header and four rows: {table}");

    // Deleted, the account keeps its trail (found by its address), now ending in `deleted`.
    op.run(&["users", "delete", &to, "--yes"]).await.ok();
    let after = op.json(&["events", "--user", &to]).await;
    assert_eq!(after.len(), 5, "{after:?}");
    assert_eq!(after[4]["kind"], "deleted");
    assert!(!format!("{after:?}").contains(&to), "no address in the trail");
    op.run(&["events", "--user", &pin]).await.error("no account with PIN");

    // Bad filters are one-line errors.
    op.run(&["events", "--kind", "nonsense"]).await.error("unknown event kind");
    op.run(&["events", "--since", "last week"]).await.error("--since takes a date");
    op.run(&["events", "--since", "2026-02-30"]).await.error("--since takes a date");

    // An erasure that asks for the trail too.
    let run = op.run_with(&["events", "--user", &to, "--erase"], &[], Some("n\n")).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(op.json(&["events", "--user", &to]).await.len(), 5, "kept when not confirmed");
    let run = op.run(&["events", "--user", &to, "--erase", "--yes"]).await;
    run.ok();
    assert!(run.stdout.contains("erased 5 events"), "{run}");
    assert!(op.json(&["events", "--user", &to]).await.is_empty());
    assert_eq!(op.json(&["events"]).await.len(), 2, "the other account's stay");
    op.assert_nothing_secret_printed(&app).await;
}

// ---------------------------------------------------------------------------------------------
// outbox

/// Retries wait an hour: after the first failed attempt only `outbox retry` brings a message back.
fn hold_retries(config: &mut gpt_user::Config) {
    config.mail_retry_base_ms = HOUR_MS;
    config.mail_retry_max_ms = HOUR_MS;
}

/// Waits (up to 20 s) until `to` has a message with a failed attempt and an error.
async fn wait_until_failed(app: &TestApp, to: &str) {
    for _ in 0..200 {
        let row: Option<(i64, Option<String>)> = sqlx::query_as("SELECT attempts, last_error FROM outbox WHERE recipient = $1 AND sent_at IS NULL")
            .bind(to)
            .fetch_optional(&app.control().db)
            .await
            .unwrap();
        if row.is_some_and(|(attempts, error)| attempts >= 1 && error.is_some()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the mail to {to} never failed");
}

async fn the_outbox_after_an_smtp_outage_is_listed_retried_and_purged_without_its_bodies(backend: Backend) {
    let mut options = Options::new(backend);
    options.mail = MailMode::SmtpDown;
    options.config = Some(hold_retries);
    let app = spawn_with(options).await;
    let op = Operator::of(&app);
    let (first, second) = (email("op-outbox-1"), email("op-outbox-2"));
    assert_eq!(app.sign_up(&first, "en").await.status(), 201);
    assert_eq!(app.sign_up(&second, "en").await.status(), 201);
    wait_until_failed(&app, &first).await;
    wait_until_failed(&app, &second).await;
    op.harvest(&app).await;

    // Listed as failed: recipient, kind, attempts, the error — never the subject or the body.
    let failed = op.json(&["outbox", "list", "--failed"]).await;
    assert_eq!(failed.len(), 2, "{failed:?}");
    for to in [&first, &second] {
        let row = find(&failed, "recipient", to).unwrap_or_else(|| panic!("{to} listed: {failed:?}"));
        assert_keys(row, &OUTBOX_KEYS);
        assert_eq!(row["kind"], "signup-verification", "{row}");
        assert_eq!(row["state"], "failed", "{row}");
        assert!(count(row, "attempts") >= 1, "{row}");
        assert!(row["last_error"].as_str().is_some_and(|e| !e.trim().is_empty()), "why it failed: {row}");
        assert!(row["sent_at"].is_null(), "{row}");
        assert!(time_s(row, "queued_at") <= now_s() + 1, "{row}");
        assert!(time_s(row, "next_attempt_at") > now_s() + 600, "the next attempt is an hour away: {row}");
    }
    let table = op.run(&["outbox", "list", "--failed"]).await;
    table.ok();
    let header = table.lines().first().map(|h| h.to_lowercase()).unwrap_or_default();
    assert!(header.contains("recipient") && header.contains("kind"), "a header: {table}");
    for to in [&first, &second] {
        let row = table.lines().into_iter().find(|l| l.contains(to.as_str())).unwrap_or_else(|| panic!("a row for {to}: {table}"));
        assert!(row.contains("signup-verification") && row.contains("failed"), "{table}");
        let (subject, body): (String, String) =
            sqlx::query_as("SELECT subject, text_body FROM outbox WHERE recipient = $1").bind(to.as_str()).fetch_one(&app.control().db).await.unwrap();
        let token = link_tokens(&body).into_iter().next().expect("the queued body holds the verification link");
        assert!(!table.stdout.contains(&token) && !table.stdout.contains(&subject), "neither the link nor the subject is listed");
    }
    for state in ["--pending", "--sent"] {
        let rows = op.json(&["outbox", "list", state]).await;
        assert!(rows.is_empty(), "nothing is {state}: {rows:?}");
    }
    assert_eq!(op.json(&["outbox", "list"]).await.len(), 2, "all of them by default");
    assert_eq!(op.json(&["outbox", "list", "--failed", "--limit", "1"]).await.len(), 1);
    op.run(&["outbox", "retry", &uuid::Uuid::new_v4().simple().to_string()]).await.error("no unsent message");

    // The relay is back, but the next attempt is an hour away: nothing moves until a retry.
    app.start_smtp().await;
    assert!(app.try_next_mail(&first, Duration::from_millis(1500)).await.is_none(), "no attempt before the retry");

    // One message by its id.
    let first_id = text(&find(&failed, "recipient", &first).unwrap()["id"]);
    let run = op.run(&["outbox", "retry", &first_id]).await;
    run.ok();
    assert!(run.stdout.contains("retrying 1 "), "{run}");
    let mail = app.next_mail(&first).await;
    op.secret(&mail.token());
    assert_eq!(mail.subject, "Confirm your email address");
    wait_until_sent(&app, &first).await;
    assert!(app.try_next_mail(&second, Duration::from_millis(1500)).await.is_none(), "only the message retried");
    let failed = op.json(&["outbox", "list", "--failed"]).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["recipient"], second);

    // The rest at once.
    let run = op.run(&["outbox", "retry", "--all-failed"]).await;
    run.ok();
    assert!(run.stdout.contains("retrying 1 "), "{run}");
    op.secret(&app.next_mail(&second).await.token());
    wait_until_sent(&app, &second).await;
    assert!(op.json(&["outbox", "list", "--failed"]).await.is_empty());

    let sent = op.json(&["outbox", "list", "--sent"]).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    for row in &sent {
        assert_keys(row, &OUTBOX_KEYS);
        assert_eq!(row["state"], "sent", "{row}");
        assert!((time_s(row, "sent_at") - now_s()).abs() < 600, "sent just now: {row}");
        assert!(row["last_error"].is_null(), "{row}");
    }
    op.run(&["outbox", "retry", &first_id]).await.error("no unsent message");

    // A message nobody tried yet is pending, and no purge of sent mail touches it.
    let held = email("op-outbox-held");
    let marker = format!("held-body-{}", uuid::Uuid::new_v4().simple());
    op.secret(&marker);
    let held_id = queue_held_mail(&app, &held, &marker).await;
    let pending = op.json(&["outbox", "list", "--pending"]).await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!((text(&pending[0]["id"]), pending[0]["recipient"].clone(), pending[0]["state"].clone()), (held_id, json!(held), json!("pending")));
    assert_eq!(count(&pending[0], "attempts"), 0);
    assert!(pending[0]["last_error"].is_null());
    assert!(find(&op.json(&["outbox", "list", "--failed"]).await, "recipient", &held).is_none());
    op.harvest(&app).await;

    // Purge: only sent mail, only older than the days given.
    let run = op.run(&["outbox", "purge", "--sent", "--older-than", "1"]).await;
    run.ok();
    assert!(run.stdout.contains("purged 0 "), "sent just now, not a day ago: {run}");
    assert_eq!(op.json(&["outbox", "list", "--sent"]).await.len(), 2);
    let refused = op.run(&["outbox", "purge", "--older-than", "0"]).await;
    assert!(refused.code.is_some_and(|c| c != 0), "--sent is required: {refused}");
    refused.assert_no_panic();
    let run = op.run(&["outbox", "purge", "--sent", "--older-than", "0"]).await;
    run.ok();
    assert!(run.stdout.contains("purged 2 "), "{run}");
    assert!(op.json(&["outbox", "list", "--sent"]).await.is_empty());
    let left = op.json(&["outbox", "list"]).await;
    assert_eq!(left.len(), 1, "the unsent message stays: {left:?}");
    assert_eq!(left[0]["recipient"], held);
    op.assert_nothing_secret_printed(&app).await;
}

/// Mail the relay refused for good (issue 19): listed as `dead` with the relay's reason, never a
/// body (it is wiped), and refused by `outbox retry`. The test sink refuses `smtp-NNN-…` recipients
/// with NNN.
async fn dead_mail_is_listed_with_its_reason_and_no_body_and_is_not_retried(backend: Backend) {
    let mut options = Options::new(backend);
    options.config = Some(hold_retries);
    let app = spawn_with(options).await;
    let op = Operator::of(&app);
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..12];
    let (gone, later) = (format!("smtp-550-gone-{tag}@example.com"), format!("smtp-450-later-{tag}@example.com"));
    let marker = format!("dead-body-{}", uuid::Uuid::new_v4().simple());
    op.secret(&marker);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let now = gpt_user::clock::system_now_ms();
    sqlx::query(
        "INSERT INTO outbox (id, recipient, kind, subject, text_body, html_body, queued_at, next_attempt_at) \
         VALUES ($1, $2, 'profile-link', 'A message the relay refuses', $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(&gone)
    .bind(format!("https://example.test/profile#token={marker}"))
    .bind(format!("<p>{marker}</p>"))
    .bind(now)
    .bind(now)
    .execute(&app.control().db)
    .await
    .unwrap();
    op.secret("A message the relay refuses");
    assert_eq!(app.sign_up(&later, "en").await.status(), 201);
    wait_until_failed(&app, &later).await;
    op.harvest(&app).await;
    for _ in 0..200 {
        let (dead,): (i64,) = sqlx::query_as("SELECT COUNT(dead_at) FROM outbox WHERE id = $1").bind(&id).fetch_one(&app.control().db).await.unwrap();
        if dead == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let dead = op.json(&["outbox", "list", "--dead"]).await;
    assert_eq!(dead.len(), 1, "only the refused message: {dead:?}");
    let row = &dead[0];
    assert_keys(row, &OUTBOX_KEYS);
    assert_eq!((text(&row["id"]), row["recipient"].clone(), row["state"].clone()), (id.clone(), json!(gone), json!("dead")));
    assert_eq!(count(row, "attempts"), 1);
    assert!((time_s(row, "dead_at") - now_s()).abs() < 600, "{row}");
    assert!(row["next_attempt_at"].is_null() && row["sent_at"].is_null(), "no next attempt: {row}");
    let why = text(&row["last_error"]);
    assert!(why.contains("550") && why.contains("mailbox unavailable"), "the relay's reason: {row}");
    let (subject, body): (String, String) =
        sqlx::query_as("SELECT subject, text_body FROM outbox WHERE id = $1").bind(&id).fetch_one(&app.control().db).await.unwrap();
    assert_eq!((subject.as_str(), body.as_str()), ("", ""), "the body is wiped in the database");

    // The table of every message names the state and the reason.
    let table = op.run(&["outbox", "list"]).await;
    table.ok();
    let line = table.lines().into_iter().find(|l| l.contains(gone.as_str())).unwrap_or_else(|| panic!("a row for {gone}: {table}"));
    assert!(line.contains("dead") && line.contains("550"), "{table}");
    let failed = op.json(&["outbox", "list", "--failed"]).await;
    assert_eq!(failed.len(), 1, "the 450 is failed, not dead: {failed:?}");
    assert_eq!(failed[0]["recipient"], later);
    assert!(text(&failed[0]["last_error"]).contains("450"));

    // Nothing to send again: the body is gone.
    op.run(&["outbox", "retry", &id]).await.error("is dead");
    let run = op.run(&["outbox", "retry", "--all-failed"]).await;
    run.ok();
    assert!(run.stdout.contains("retrying 1 "), "the failed one, not the dead one: {run}");
    assert_eq!(op.json(&["outbox", "list", "--dead"]).await.len(), 1);
    op.assert_nothing_secret_printed(&app).await;
}

// ---------------------------------------------------------------------------------------------
// Bad input

async fn unknown_accounts_and_malformed_arguments_are_one_line_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let op = Operator::of(&app);
    let known = email("op-known");
    let known_pin = app.active_user(&known).await;
    let nobody = email("op-nobody");
    let no_pin = unknown_pin();

    for verb in ["show", "block", "unblock", "delete"] {
        let with_yes = |who: &str| -> Vec<String> {
            let mut args = vec!["users".to_owned(), verb.to_owned(), who.to_owned()];
            if verb == "delete" {
                args.push("--yes".to_owned());
            }
            args
        };
        for who in [nobody.as_str(), no_pin.as_str()] {
            let args = with_yes(who);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let line = op.run(&args).await.error("no account with");
            assert!(line.contains(who), "names what was asked for: {line}");
        }
        for malformed in ["abc", "12ab"] {
            let args = with_yes(malformed);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            op.run(&args).await.error(&format!("not an email address or PIN: {malformed}"));
        }
    }
    let line = op.run(&["outbox", "retry", "0123456789abcdef0123456789abcdef"]).await.error("no unsent message");
    assert!(line.contains("0123456789abcdef0123456789abcdef"), "{line}");

    // Nothing happened to the one account there is.
    let shown = op.show(&known_pin).await;
    assert_eq!((shown["email"].clone(), shown["status"].clone()), (json!(known), json!("active")));
    op.assert_nothing_secret_printed(&app).await;
}

/// Commands against a database that is not there: one line, exit 1, no password of the URL.
#[test]
fn an_unreachable_database_is_a_one_line_error_without_the_urls_password() {
    let dir = std::env::temp_dir().join(format!("gpt-user-operator-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    // A SQLite file under a regular file cannot be opened or made.
    let not_a_dir = dir.join("not-a-dir");
    std::fs::write(&not_a_dir, "").unwrap();
    let sqlite = format!("sqlite://{}", not_a_dir.join("gpt-user.db").display());
    let commands: [&[&str]; 5] = [
        &["users", "list"],
        &["users", "list", "--json"],
        &["users", "show", "someone@example.com"],
        &["users", "block", "123456", "--reason", "x"],
        &["outbox", "list", "--failed"],
    ];
    // An unreachable PostgreSQL may take its connect timeout each time: the whole list once.
    for (url, commands) in [(UNREACHABLE, &commands[..1]), (UNREACHABLE_WITH_PASSWORD, &commands[..]), (sqlite.as_str(), &commands[..])] {
        let env = [
            ("GPT_USER_DATABASE_URL".to_owned(), url.to_owned()),
            ("GPT_USER_DATA_DIR".to_owned(), dir.display().to_string()),
            ("GPT_USER_API_KEYS".to_owned(), "operator-test-key-unreachable".to_owned()),
        ];
        for args in commands {
            let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
            let run = run_cli(&args, &env, None, &dir);
            run.error("");
            for secret in ["s3cret", "operator-test-key-unreachable"] {
                assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "no secret of the configuration: {run}");
            }
        }
        let run = run_cli(&["check".to_owned()], &env, None, &dir);
        assert_eq!(run.code, Some(1), "{run}");
        run.assert_no_panic();
        let lines = run.all_lines();
        assert!(lines.iter().any(|l| l.starts_with("ok: config")), "the configuration itself is fine: {run}");
        assert!(lines.iter().any(|l| l.starts_with("error: database")), "{run}");
        assert!(!run.stdout.contains("s3cret") && !run.stderr.contains("s3cret"), "{run}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A data dir without a database (a typo): refused, and nothing is created there.
#[test]
fn a_data_dir_without_a_database_is_refused_not_created() {
    let dir = std::env::temp_dir().join(format!("gpt-user-operator-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let typo = dir.join("no-such-deployment");
    let env = [("GPT_USER_DATABASE_URL".to_owned(), String::new()), ("GPT_USER_DATA_DIR".to_owned(), String::new())];
    for args in [&["users", "list"][..], &["outbox", "list"][..], &["users", "show", "123456"][..]] {
        let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        args.extend(["--data-dir".to_owned(), typo.display().to_string()]);
        let run = run_cli(&args, &env, None, &dir);
        run.error("no database at");
        assert!(!typo.join("gpt-user.db").exists(), "no empty database was made: {run}");
    }
    // `check` reports it as its database item, and creates nothing either.
    let args = ["check".to_owned(), "--dev".to_owned(), "--data-dir".to_owned(), typo.display().to_string()];
    let run = run_cli(&args, &env, None, &dir);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.all_lines().iter().any(|l| l.starts_with("error: database") && l.contains("no database at")), "{run}");
    assert!(!typo.join("gpt-user.db").exists(), "check made no empty database: {run}");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// check

async fn check_says_ok_for_a_good_configuration_and_names_what_is_wrong(backend: Backend) {
    let app = spawn_app(backend).await;
    let op = Operator::of(&app);
    op.secret(SMTP_USER);
    op.secret(SMTP_PASSWORD);
    let relay = app.smtp_relay().expect("the test relay");
    let with_auth = format!("smtp://{SMTP_USER}:{SMTP_PASSWORD}@{relay}");

    let run = op.run_with(&["check"], &[("GPT_USER_SMTP_URL", with_auth.as_str())], None).await;
    run.ok();
    let lines = run.all_lines();
    for line in &lines {
        assert!(line.starts_with("ok: "), "one `ok:` line per item: {run}");
    }
    for item in ["config", "database", "smtp"] {
        assert!(lines.iter().any(|l| l.starts_with(&format!("ok: {item}"))), "`ok: {item}`: {run}");
    }
    let smtp = lines.iter().find(|l| l.starts_with("ok: smtp")).unwrap();
    assert!(smtp.contains(&relay), "the relay's host:port: {run}");

    // No SMTP configured: the dev mailbox; still fine.
    op.run(&["check"]).await.ok();

    // The relay down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let down = format!("smtp://{SMTP_USER}:{SMTP_PASSWORD}@{closed}");
    let run = op.run_with(&["check"], &[("GPT_USER_SMTP_URL", down.as_str())], None).await;
    assert_eq!(run.code, Some(1), "{run}");
    run.assert_no_panic();
    let lines = run.all_lines();
    assert!(lines.iter().any(|l| l.starts_with("error: smtp")), "{run}");
    assert!(lines.iter().any(|l| l.starts_with("ok: database")), "{run}");

    // Redis, when configured: answering, then down (its password never printed).
    let redis = gpt_user_test_support::redis::RedisServer::start().unwrap();
    let run = op.run_with(&["check"], &[("GPT_USER_REDIS_URL", redis.url().as_str())], None).await;
    run.ok();
    let answering = format!("ok: redis redis://127.0.0.1:{}", redis.port());
    assert!(run.all_lines().iter().any(|l| *l == answering), "`{answering}`: {run}");
    let redis_down = format!("redis://:s3cret@{closed}");
    let run = op.run_with(&["check"], &[("GPT_USER_REDIS_URL", redis_down.as_str())], None).await;
    assert_eq!(run.code, Some(1), "{run}");
    run.assert_no_panic();
    assert!(run.all_lines().iter().any(|l| l.starts_with(&format!("error: redis: redis://{closed}: "))), "{run}");
    assert!(!run.stdout.contains("s3cret") && !run.stderr.contains("s3cret"), "{run}");

    // The database unreachable.
    let run = op.run_with(&["check"], &[("GPT_USER_DATABASE_URL", UNREACHABLE_WITH_PASSWORD)], None).await;
    assert_eq!(run.code, Some(1), "{run}");
    run.assert_no_panic();
    assert!(run.all_lines().iter().any(|l| l.starts_with("error: database")), "{run}");
    assert!(!run.stdout.contains("s3cret") && !run.stderr.contains("s3cret"), "{run}");

    // A configuration the server refuses.
    let run = op.run_with(&["check"], &[("GPT_USER_PIN_LENGTH", "3")], None).await;
    assert_eq!(run.code, Some(1), "{run}");
    run.assert_no_panic();
    let lines = run.all_lines();
    let config = lines.iter().find(|l| l.starts_with("error: config")).unwrap_or_else(|| panic!("an `error: config` line: {run}"));
    assert!(config.contains("pin_length"), "says what is wrong: {run}");
    op.assert_nothing_secret_printed(&app).await;
}
