//! The real `gpt-user` binary: what it refuses to start with (and that it says what to set), and
//! what dev mode changes (SPEC §5, §7). Each test runs its own process on a free loopback port
//! with its own data directory; no `GPT_USER_*` variable of the caller leaks in. Also the
//! operator's OAuth commands (SPEC §2.5: `clients …`, `users show|revoke-grants`), which need no
//! server: only a database.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Compiling the components at start takes a while on a busy 2-core machine.
const START_WITHIN: Duration = Duration::from_secs(180);
/// A refused configuration is refused before anything slow happens.
const REFUSE_WITHIN: Duration = Duration::from_secs(10);

struct Host {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Host {
    /// Starts `gpt-user serve --data-dir <fresh> [--listen 127.0.0.1:<free port>] <args>` (the
    /// free port unless `args` name an address).
    fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("gpt-user-cli-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gpt-user"));
        for (key, _) in std::env::vars() {
            if key.starts_with("GPT_USER_") {
                cmd.env_remove(key);
            }
        }
        // Compiled components are shared with the other tests; a test may set its own dir.
        cmd.env("GPT_USER_COMPILED_DIR", gpt_user::artifacts::shared_compiled_dir());
        cmd.envs(env.iter().copied()).env("RUST_LOG", "info");
        cmd.args(["serve", "--data-dir", dir.to_str().unwrap()]);
        if !args.contains(&"--listen") {
            cmd.args(["--listen", &addr.to_string()]);
        }
        cmd.args(args);
        // Into a file, not a pipe: a chatty child never blocks on a full pipe.
        let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr).spawn().expect("the binary runs");
        Self { child, addr, dir }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    fn exit_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Waits until `/healthz` answers 200.
    fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + START_WITHIN;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("gpt-user exited with {status}:\n{}", self.stderr());
            }
            if self.request("GET", "/healthz", &[], "").is_some_and(|(status, _)| status == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("gpt-user did not serve within {START_WITHIN:?}:\n{}", self.stderr());
    }

    /// One HTTP/1.1 request on a fresh connection: `(status, body)`, or `None` if not connected.
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Option<(u16, String)> {
        self.exchange(method, path, headers, body).map(|(status, _, body)| (status, body))
    }

    /// [`Host::request`] with the answer's head: `(status, head, body)`.
    fn exchange(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Option<(u16, String, String)> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n", self.addr, body.len());
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        stream.write_all(format!("{head}\r\n{body}").as_bytes()).ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        let status = answer.split_whitespace().nth(1)?.parse().ok()?;
        let (head, body) = answer.split_once("\r\n\r\n").map(|(h, b)| (h.to_owned(), b.to_owned())).unwrap_or_default();
        Some((status, head, body))
    }

    fn sign_up(&self, email: &str, headers: &[(&str, &str)]) -> u16 {
        let body = format!(r#"{{"email":"{email}","consent":true,"locale":"en","passphrase":"correct horse battery staple"}}"#);
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        self.request("POST", "/api/signup/init", &all, &body).expect("answered").0
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The message files in the data dir's mailbox.
fn mailbox_files(host: &Host) -> usize {
    std::fs::read_dir(host.dir.join("mail")).map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".eml")).count()).unwrap_or(0)
}

#[test]
fn serve_without_an_api_key_or_dev_refuses_to_start_and_says_what_to_set() {
    let mut host = Host::start(&[], &[]);
    let status = host.exit_within(REFUSE_WITHIN).expect("it exits");
    assert!(!status.success());
    let stderr = host.stderr();
    assert!(stderr.contains("GPT_USER_API_KEYS") && stderr.contains("--dev"), "{stderr}");
}

#[test]
fn dev_mode_without_a_key_refuses_a_non_loopback_address() {
    let port = free_port().to_string();
    let mut host = Host::start(&["--dev", "--listen", &format!("0.0.0.0:{port}")], &[]);
    let status = host.exit_within(REFUSE_WITHIN).expect("it exits");
    assert!(!status.success());
    assert!(host.stderr().contains("loopback"), "{}", host.stderr());
}

#[test]
fn an_out_of_range_pin_length_is_refused_at_start() {
    for length in ["3", "13"] {
        let mut host = Host::start(&["--dev"], &[("GPT_USER_PIN_LENGTH", length)]);
        let status = host.exit_within(REFUSE_WITHIN).expect("it exits");
        assert!(!status.success(), "pin_length {length}");
        let stderr = host.stderr();
        assert!(stderr.contains("pin_length") && stderr.contains("between 4 and 12"), "{stderr}");
    }
}

#[test]
fn an_out_of_range_email_change_window_or_a_bad_redis_url_is_refused_at_start() {
    for window in ["59", "3601"] {
        let mut host = Host::start(&["--dev"], &[("GPT_USER_EMAIL_CHANGE_WINDOW_S", window)]);
        let status = host.exit_within(REFUSE_WITHIN).expect("it exits");
        assert!(!status.success(), "email_change_window_s {window}");
        let stderr = host.stderr();
        assert!(stderr.contains("GPT_USER_EMAIL_CHANGE_WINDOW_S") && stderr.contains("between 60 and 3600"), "{stderr}");
    }
    let mut host = Host::start(&["--dev"], &[("GPT_USER_REDIS_URL", "http://user:s3cret@127.0.0.1:6379")]);
    let status = host.exit_within(REFUSE_WITHIN).expect("it exits");
    assert!(!status.success());
    let stderr = host.stderr();
    assert!(stderr.contains("GPT_USER_REDIS_URL") && !stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn serve_dev_serves_without_a_key_and_lists_the_dev_mailbox() {
    let mut host = Host::start(&["--dev"], &[]);
    host.wait_until_serving();
    assert_eq!(host.sign_up("cli-dev@example.com", &[]), 201, "GPT actions need no key in dev mode");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = host.request("GET", "/dev/mail", &[], "").expect("answered");
        assert_eq!(status, 200);
        if body.contains(".eml") {
            break;
        }
        assert!(Instant::now() < deadline, "the message never showed up in /dev/mail: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_dev_mailbox_is_not_served_outside_dev_mode_even_to_loopback() {
    let mut host = Host::start(&[], &[("GPT_USER_API_KEYS", "cli-test-key-8c1e")]);
    host.wait_until_serving();
    assert_eq!(host.sign_up("cli-prod@example.com", &[("Authorization", "Bearer cli-test-key-8c1e")]), 201);
    let deadline = Instant::now() + Duration::from_secs(20);
    while mailbox_files(&host) == 0 {
        assert!(Instant::now() < deadline, "the message was never written to the mailbox directory");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(host.request("GET", "/dev/mail", &[], "").expect("answered").0, 404);
    let name = std::fs::read_dir(host.dir.join("mail")).unwrap().flatten().find(|e| e.file_name().to_string_lossy().ends_with(".eml")).unwrap().file_name();
    let path = format!("/dev/mail/{}", name.to_string_lossy());
    assert_eq!(host.request("GET", &path, &[], "").expect("answered").0, 404);
}

/// The value of header `name` in an answer's head.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().filter_map(|l| l.split_once(':')).find(|(n, _)| n.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned())
}

/// `jq` over the host's log file: its exit status and output.
fn jq(host: &Host, args: &[&str]) -> (bool, String) {
    let out = Command::new("jq")
        .args(args)
        .arg(host.dir.join("stderr.log"))
        .output()
        .expect("jq is installed (scripts/setup.sh --test installs it)");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn json_logs_parse_line_by_line_and_carry_the_request_id_of_each_answer() {
    let mut host = Host::start(&["--dev"], &[("GPT_USER_LOG_FORMAT", "json")]);
    host.wait_until_serving();
    let body = r#"{"email":"cli-json@example.com","consent":true,"locale":"en","passphrase":"correct horse battery staple"}"#;
    let headers = [("Content-Type", "application/json"), ("X-Request-Id", "chosen-by-the-client")];
    let (status, head, _) = host.exchange("POST", "/api/signup/init", &headers, body).expect("answered");
    assert_eq!(status, 201);
    let id = header(&head, "x-request-id").expect("the answer names its request");
    assert!(id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()), "our own id, not the client's: {id}");
    let (status, head, _) = host.exchange("GET", "/no/such/route", &[], "").expect("answered");
    assert_eq!(status, 404);
    let other = header(&head, "x-request-id").expect("the host's own answers too");
    assert_ne!(other, id);

    // Every line is one JSON object (`fromjson` fails the run on any other line).
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let (ok, out) = jq(&host, &["-R", "-c", "fromjson"]);
        assert!(ok, "a log line is not JSON:\n{}", host.stderr());
        if out.contains(&other) || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(lines.lines().count() >= 3, "{lines}");
    let (ok, of_request) = jq(&host, &["-c", "--arg", "id", &id, "select(.span.request_id == $id)"]);
    assert!(ok);
    let request_line = of_request.lines().find(|l| l.contains(r#""message":"request""#)).unwrap_or_else(|| panic!("no request line for {id}:\n{lines}"));
    assert!(request_line.contains(r#""status":201"#) && request_line.contains(r#""path":"/api/signup/init""#), "{request_line}");
    assert!(!host.stderr().contains("correct horse battery staple"), "no passphrase in the log");
}

#[test]
fn an_unknown_log_format_is_refused_at_start() {
    let mut host = Host::start(&["--dev"], &[("GPT_USER_LOG_FORMAT", "xml")]);
    let status = host.exit_within(REFUSE_WITHIN).expect("it exits");
    assert!(!status.success());
    let stderr = host.stderr();
    assert!(stderr.to_lowercase().contains("log_format") && stderr.contains("json"), "{stderr}");
}

/// A data directory of its own for the operator's commands, with an empty SQLite file: they refuse
/// a database that does not exist (`serve` creates it), and the first one migrates it. Removed on
/// drop.
struct DataDir(PathBuf);

impl DataDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("gpt-user-cli-operator-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::File::create(dir.join("gpt-user.db")).unwrap();
        Self(dir)
    }

    /// `gpt-user <args> --data-dir <dir>` with `env` (no `GPT_USER_*` variable of the caller) and
    /// `stdin` as its input: `(exit code, stdout, stderr)`.
    fn run(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gpt-user"));
        for (key, _) in std::env::vars() {
            if key.starts_with("GPT_USER_") {
                cmd.env_remove(key);
            }
        }
        cmd.envs(env.iter().copied()).args(args).args(["--data-dir", self.0.to_str().unwrap()]);
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the binary runs");
        // A command that asks nothing may have exited already: a closed pipe is no failure here.
        let _ = child.stdin.take().expect("piped").write_all(stdin.as_bytes());
        let out = child.wait_with_output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Runs `body` on a connection of its own to the SQLite file.
    fn db<T>(&self, body: impl AsyncFnOnce(&mut sqlx::SqliteConnection) -> T) -> T {
        use sqlx::Connection as _;
        let url = format!("sqlite://{}", self.0.join("gpt-user.db").display());
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let out = body(&mut conn).await;
            conn.close().await.unwrap();
            out
        })
    }

    fn execute(&self, sql: &str) {
        self.db(async |c| {
            sqlx::query(sql).execute(c).await.unwrap();
        })
    }

    fn count(&self, sql: &str) -> i64 {
        self.db(async |c| sqlx::query_scalar::<_, i64>(sql).fetch_one(c).await.unwrap())
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn an_operator_client_shows_its_secret_once_and_the_operator_lists_and_revokes_grants() {
    let dir = DataDir::new();
    let base = [("GPT_USER_BASE_URL", "https://users.example.com")];
    let callback = "https://chatgpt.com/aip/g-0123abcd/oauth/callback";

    // `clients add`: the id, the secret once with the warning, the URLs of the configured base.
    let (code, out, err) = dir.run(&["clients", "add", "--name", "Test GPT", "--redirect-uri", callback], "", &base);
    assert_eq!(code, Some(0), "{out}{err}");
    let value = |key: &str| -> String {
        let line = out.lines().find(|l| l.split_whitespace().next() == Some(key)).unwrap_or_else(|| panic!("a `{key}` line: {out}"));
        line.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
    };
    let (id, secret) = (value("client_id"), value("client_secret"));
    assert!(id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()), "{out}");
    assert!(secret.len() == 43 && secret.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "256 bits, base64url: {out}");
    assert_eq!(out.matches(secret.as_str()).count(), 1, "the secret is printed once: {out}");
    assert!(out.contains("will not be shown again"), "{out}");
    assert_eq!(value("name"), "Test GPT");
    assert_eq!(value("redirect_uris"), callback);
    assert_eq!(value("authorization_url"), "https://users.example.com/oauth/authorize");
    assert_eq!(value("token_url"), "https://users.example.com/oauth/token");
    assert_eq!(value("scope"), "account");

    // The database keeps the secret's SHA-256 only.
    let hash = gpt_user_core::api::oauth::sha256_hex(&secret);
    let stored: Vec<(String, String, Option<String>)> =
        dir.db(async |c| sqlx::query_as("SELECT id, kind, secret_hash FROM oauth_clients").fetch_all(c).await.unwrap());
    assert_eq!(stored, [(id.clone(), "operator".to_owned(), Some(hash.clone()))]);

    // A redirect URI that is neither https nor loopback is refused, and nothing is stored.
    let (code, _, err) = dir.run(&["clients", "add", "--name", "Bad", "--redirect-uri", "http://example.com/cb"], "", &base);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.starts_with("error: not an allowed redirect URI"), "{err}");
    assert_eq!(dir.count("SELECT COUNT(*) FROM oauth_clients"), 1);

    // `clients list`, a table and JSON lines: the client, never its secret or hash.
    let (code, table, err) = dir.run(&["clients", "list"], "", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(table.starts_with("client_id") && table.contains(&id) && table.contains("Test GPT") && table.contains(callback), "{table}");
    let (code, json, err) = dir.run(&["clients", "list", "--json"], "", &[]);
    assert_eq!(code, Some(0), "{err}");
    let listed: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(listed.len(), 1, "{json}");
    let mut keys: Vec<&str> = listed[0].as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["client_id", "created_at", "kind", "name", "redirect_uris"], "{json}");
    assert_eq!(listed[0]["client_id"], serde_json::json!(id));
    assert_eq!((listed[0]["kind"].as_str(), listed[0]["name"].as_str()), (Some("operator"), Some("Test GPT")));
    assert_eq!(listed[0]["redirect_uris"], serde_json::json!([callback]));
    for output in [&table, &json] {
        assert!(!output.contains(&secret) && !output.contains(&hash), "no secret, no hash: {output}");
    }

    // A user with a grant to the client: a live refresh token (expires in 2100), an expired access token.
    dir.execute(
        "INSERT INTO users (id, email, pin, passphrase_hash, locale, status, email_verified, consent_at, policy_version, created_at, updated_at) \
         VALUES ('user-ann', 'ann@example.com', '482910', 'not-a-hash', 'en', 'active', 1, 0, 'v1', 0, 0)",
    );
    let grant = |grant_id: &str| {
        dir.execute(&format!(
            "INSERT INTO oauth_grants (id, user_id, client_id, resource, scope, created_at) \
             VALUES ('{grant_id}', 'user-ann', '{id}', 'https://users.example.com/mcp', 'account', 1000)"
        ));
        for (kind, expires_at) in [("refresh", 4_102_444_800_000_i64), ("access", 2000)] {
            dir.execute(&format!(
                "INSERT INTO oauth_tokens (hash, kind, grant_id, created_at, expires_at) VALUES ('{grant_id}-{kind}', '{kind}', '{grant_id}', 1000, {expires_at})"
            ));
        }
    };
    let grants_and_tokens = || (dir.count("SELECT COUNT(*) FROM oauth_grants"), dir.count("SELECT COUNT(*) FROM oauth_tokens"));
    let revoked_events = || dir.count("SELECT COUNT(*) FROM events WHERE kind = 'oauth-revoked' AND actor = 'operator' AND user_id = 'user-ann'");
    grant("grant-1");

    // `users show` lists the grant, as a table after the account's lines and in the JSON object.
    let (code, table, err) = dir.run(&["users", "show", "ann@example.com"], "", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(table.lines().any(|l| l.split_whitespace().eq(["oauth_grants", "1"])), "{table}");
    let row = table.lines().find(|l| l.starts_with(id.as_str())).unwrap_or_else(|| panic!("a row of the grant: {table}"));
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        [id.as_str(), "Test", "GPT", "https://users.example.com/mcp", "account", "1970-01-01T00:00:01Z", "1", "0"],
        "{table}"
    );
    let (code, json, err) = dir.run(&["users", "show", "482910", "--json"], "", &[]);
    assert_eq!(code, Some(0), "{err}");
    let shown: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(
        shown["oauth_grants"],
        serde_json::json!([{
            "client_id": id, "client_name": "Test GPT", "resource": "https://users.example.com/mcp", "scope": "account",
            "created_at": "1970-01-01T00:00:01Z", "live_refresh_tokens": 1, "live_access_tokens": 0
        }]),
        "{json}"
    );

    // `users revoke-grants` asks first: "n" keeps everything, "y" revokes.
    let (code, _, err) = dir.run(&["users", "revoke-grants", "ann@example.com"], "n\n", &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("Revoke every OAuth grant of ann@example.com") && err.contains("error: not revoked"), "{err}");
    assert_eq!((grants_and_tokens(), revoked_events()), ((1, 2), 0));
    let (code, out, err) = dir.run(&["users", "revoke-grants", "ann@example.com"], "y\n", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "revoked 1 grants of ann@example.com (PIN 482910)\n");
    assert_eq!((grants_and_tokens(), revoked_events()), ((0, 0), 1));

    // With --yes it does not ask; with nothing left to revoke it says so and records nothing.
    grant("grant-2");
    let (code, out, err) = dir.run(&["users", "revoke-grants", "482910", "--yes", "--json"], "", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "{\"pin\":\"482910\",\"email\":\"ann@example.com\",\"revoked_grants\":1}\n");
    assert!(!err.contains("[y/N]"), "{err}");
    assert_eq!((grants_and_tokens(), revoked_events()), ((0, 0), 2));
    let (code, out, err) = dir.run(&["users", "revoke-grants", "482910", "--yes"], "", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "revoked 0 grants of ann@example.com (PIN 482910)\n");
    assert_eq!(revoked_events(), 2);

    // `clients remove` asks first too, then deletes the client with its grants and their tokens.
    grant("grant-3");
    let (code, _, err) = dir.run(&["clients", "remove", &id], "no\n", &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("error: not removed"), "{err}");
    assert_eq!((dir.count("SELECT COUNT(*) FROM oauth_clients"), grants_and_tokens()), (1, (1, 2)));
    let (code, out, err) = dir.run(&["clients", "remove", &id, "--yes"], "", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, format!("removed client {id} (\"Test GPT\"); revoked 1 grants\n"));
    assert_eq!((dir.count("SELECT COUNT(*) FROM oauth_clients"), grants_and_tokens(), revoked_events()), (0, (0, 0), 3));
    let (code, out, err) = dir.run(&["clients", "list", "--json"], "", &[]);
    assert_eq!((code, out.as_str()), (Some(0), ""), "{err}");
    let (code, _, err) = dir.run(&["clients", "remove", &id, "--yes"], "", &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&format!("no client with id {id}")), "{err}");
}
