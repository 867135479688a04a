//! Throughput and latency of the host over HTTP, printed (not asserted).
//!
//! **Table mode** (what `scripts/bench.sh` runs): with `GPT_USER_BENCH_HOST` and
//! `GPT_USER_BENCH_NATIVE` set to the base URLs of two running servers — our release host
//! (`gpt-user serve --dev`) and the native baseline (`gpt-user serve --dev --native`), each on a
//! fresh data dir — it prints one table: for Update_Load with a valid token, SignUp_Verify with an
//! unknown token, SignUp_Init and Auth_Check, req/s, p50 and p99 at 32 connections over a fixed
//! duration (`GPT_USER_BENCH_SECONDS`, default 10) after a warm-up that is not counted
//! (`GPT_USER_BENCH_WARMUP_SECONDS`, default 2), on each server, with the ratio host/native; then
//! the host's RSS (`GPT_USER_BENCH_HOST_PID`) before and after `GPT_USER_BENCH_RSS_REQUESTS`
//! (default 100000) requests. Update_Load and SignUp_Verify are loaded by `wrk` when it is on
//! the PATH (`load/wrk.rs`; our reqwest loop otherwise). With `GPT_USER_BENCH_SPIN` set to the
//! URL of the tests/spin harness served over HTTP (`GPT_USER_BENCH_SERVE=addr cargo bench
//! --profile dev --bench instantiate`), it adds the composed Spin app against the host; with
//! `GPT_USER_BENCH_REAL_SPIN` set to a real `spin up` of spin.toml, that against the host too;
//! `GPT_USER_BENCH_REAL_SPIN_NODELAY`, the same under the TCP_NODELAY shim (`bench/nodelay`).
//!
//! **In-process mode** (neither variable set): `cargo bench --profile dev --bench http`
//! starts a host in this process and prints:
//!
//! - SignUp_Verify-like: POST /api/signup/verify with a well-formed unknown token — the whole
//!   path: hyper → fresh Store + instance → JSON parsing → store lookup in SQLite → 410.
//! - /healthz: the component path without the database.
//! - SignUp_Init: sequential sign-ups (Argon2id m=19456 KiB t=2 inside the wasm guest).
//! - Auth_Check answered 401 for an unknown PIN (checked against a dummy hash) and for a wrong
//!   passphrase (checked against the account's hash), sequential and interleaved, side by side:
//!   both run one Argon2 verification, so their times should be alike (ratio near 1).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

#[path = "load/wrk.rs"]
mod wrk;

const CONCURRENCY: usize = 32;
const REQUESTS: usize = 4000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if let (Ok(host), Ok(native)) = (std::env::var("GPT_USER_BENCH_HOST"), std::env::var("GPT_USER_BENCH_NATIVE")) {
        return table::run(&host, &native).await;
    }
    let dir = std::env::temp_dir().join(format!("gpt-user-bench-{}", std::process::id()));
    let config = gpt_user::Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.clone(),
        dev: true,
        // The server is measured, not one client's share.
        rate_limit_per_key: 0,
        rate_limit_per_peer: 0,
        max_connections_per_peer: 0,
        max_pending_signups_per_hour: 0,
        ..gpt_user::Config::default()
    };
    let app = gpt_user::Application::build(config).await?;
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(CONCURRENCY).build()?;

    println!("gpt-user HTTP bench — RUST_BACKTRACE={:?}, {} cores, {CONCURRENCY} connections",
        std::env::var("RUST_BACKTRACE").ok(), std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
    let token = "A".repeat(43);
    load(&client, "POST /api/signup/verify (unknown token → 410)", {
        let url = format!("{base}/api/signup/verify");
        move |c: &reqwest::Client| c.post(&url).json(&json!({"token": token}))
    }, 410)
    .await?;
    load(&client, "GET /healthz", {
        let url = format!("{base}/healthz");
        move |c: &reqwest::Client| c.get(&url)
    }, 200)
    .await?;

    let mut latencies = Vec::new();
    let mut pins = Vec::new();
    for i in 0..20 {
        let started = Instant::now();
        let r = client
            .post(format!("{base}/api/signup/init"))
            .json(&json!({"email": format!("bench-{i}@example.com"), "consent": true, "locale": "en", "passphrase": "correct horse battery staple"}))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 201, "sign-up answered {}", r.status());
        latencies.push(started.elapsed());
        let body: serde_json::Value = r.json().await?;
        pins.push(body["pin"].as_str().unwrap_or_default().to_owned());
    }
    report("POST /api/signup/init (sequential, Argon2id in wasm)", &mut latencies, None);

    // Auth_Check, 401 both ways. Each PIN fails at most twice (5 failures are free), so nothing
    // is throttled; the unknown PINs are 12 digits, longer than any the host hands out.
    let url = format!("{base}/api/auth/check");
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    let mut fresh = 0u64;
    let mut unknown_pin = || {
        fresh += 1;
        format!("9{fresh:011}")
    };
    timed_check(&client, &url, &unknown_pin(), WRONG_PASSPHRASE).await?; // warm-up
    timed_check(&client, &url, &pins[0], WRONG_PASSPHRASE).await?;
    for pin in pins.iter().skip(1).chain(pins.iter()) {
        unknown.push(timed_check(&client, &url, &unknown_pin(), WRONG_PASSPHRASE).await?);
        wrong.push(timed_check(&client, &url, pin, WRONG_PASSPHRASE).await?);
    }
    compare(("POST /api/auth/check, unknown PIN → 401", &mut unknown), ("POST /api/auth/check, wrong passphrase → 401", &mut wrong));
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

const WRONG_PASSPHRASE: &str = "wrong horse battery staple";

/// One Auth_Check that must answer 401 INVALID_CREDENTIALS; its latency.
async fn timed_check(client: &reqwest::Client, url: &str, pin: &str, passphrase: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let r = client.post(url).json(&json!({"pin": pin, "passphrase": passphrase})).send().await?;
    let status = r.status();
    r.bytes().await?;
    let elapsed = started.elapsed();
    anyhow::ensure!(status == 401, "Auth_Check of PIN {pin} answered {status}");
    Ok(elapsed)
}

/// Median and p90 of two sequential measurements, side by side, and the ratio of the first to the second.
fn compare(a: (&str, &mut [Duration]), b: (&str, &mut [Duration])) {
    let stats = |latencies: &mut [Duration]| {
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        (pct(0.5), pct(0.9), latencies.len())
    };
    let (a_p50, a_p90, a_n) = stats(a.1);
    let (b_p50, b_p90, b_n) = stats(b.1);
    println!("{:<58} p50 {a_p50:>8.2?}  p90 {a_p90:>8.2?}  (n={a_n})", a.0);
    println!("{:<58} p50 {b_p50:>8.2?}  p90 {b_p90:>8.2?}  (n={b_n})", b.0);
    let ratio = |x: Duration, y: Duration| x.as_secs_f64() / y.as_secs_f64().max(f64::MIN_POSITIVE);
    println!("{:<58} p50 {:>8.2}×  p90 {:>8.2}×", "  ratio unknown PIN / wrong passphrase", ratio(a_p50, b_p50), ratio(a_p90, b_p90));
}

async fn load<F>(client: &reqwest::Client, name: &str, request: F, expect: u16) -> anyhow::Result<()>
where
    F: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let request = Arc::new(request);
    // Warm up connections and the instance pool.
    for _ in 0..200 {
        request(client).send().await?;
    }
    let started = Instant::now();
    let per_task = REQUESTS / CONCURRENCY;
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let client = client.clone();
            let request = request.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let t = Instant::now();
                    let r = request(&client).send().await?;
                    anyhow::ensure!(r.status().as_u16() == expect, "unexpected status {}", r.status());
                    r.bytes().await?;
                    latencies.push(t.elapsed());
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed();
    report(name, &mut all, Some(elapsed));
    Ok(())
}

fn report(name: &str, latencies: &mut [Duration], elapsed: Option<Duration>) {
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let rate = elapsed.map(|e| format!("{:>8.0} req/s", latencies.len() as f64 / e.as_secs_f64())).unwrap_or_default();
    println!("{name:<58} {rate}  p50 {:>8.2?}  p99 {:>8.2?}  (n={})", pct(0.5), pct(0.99), latencies.len());
}

/// The table of `scripts/bench.sh`: two running servers, the same load on each.
mod table {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use serde_json::{Value, json};

    use super::CONCURRENCY;

    const PASSPHRASE: &str = "correct horse battery staple";

    fn env_u64(key: &str, default: u64) -> u64 {
        std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    }

    /// What a scenario needs from one server: an active account's PIN and a live profile token.
    struct Server {
        name: &'static str,
        base: String,
        /// One active account's PIN per connection.
        pins: Vec<String>,
        profile_token: String,
    }

    #[derive(Clone, Copy)]
    struct Stats {
        rate: f64,
        p50: Duration,
        p99: Duration,
        n: usize,
        errors: u64,
    }

    pub async fn run(host: &str, native: &str) -> anyhow::Result<()> {
        let seconds = env_u64("GPT_USER_BENCH_SECONDS", 10);
        let warmup = env_u64("GPT_USER_BENCH_WARMUP_SECONDS", 2);
        let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(CONCURRENCY).timeout(Duration::from_secs(30)).build()?;
        let servers = [setup(&client, "host", host).await?, setup(&client, "native", native).await?];
        let (duration, warmup) = (Duration::from_secs(seconds), Duration::from_secs(warmup));

        println!("gpt-user benchmark — {} cores, {CONCURRENCY} connections, {seconds} s per cell after {} s warm-up; host = release `gpt-user serve`, native = `gpt-user serve --native`",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), warmup.as_secs());
        let wrk = super::wrk::find();
        println!(
            "load generator: {} for Update_Load and SignUp_Verify; this program's reqwest loop for SignUp_Init and Auth_Check (unique addresses, one account per connection)",
            if wrk.is_some() { "wrk (1 thread)" } else { "this program's reqwest loop (no wrk on the PATH)" }
        );
        let scenarios: [(&str, u16); 4] = [
            ("Update_Load, valid token (200)", 200),
            ("SignUp_Verify, unknown token (410)", 410),
            ("SignUp_Init (201, Argon2id)", 201),
            ("Auth_Check, correct passphrase (200)", 200),
        ];
        let mut rows = Vec::new();
        for (i, (name, expect)) in scenarios.iter().enumerate() {
            let mut cells = Vec::new();
            for server in &servers {
                let stats = measure(&client, server, i, *expect, warmup, duration).await?;
                eprintln!("  {name} on {}: {:.0} req/s, p50 {:.2?}, p99 {:.2?} (n={}, errors={})", server.name, stats.rate, stats.p50, stats.p99, stats.n, stats.errors);
                cells.push(stats);
            }
            rows.push((*name, cells[0], cells[1]));
        }

        println!();
        println!("| {:<38} | {:>9} | {:>10} | {:>10} | {:>9} | {:>10} | {:>10} | {:>12} | {:>10} |", "scenario", "host r/s", "host p50", "host p99", "nat. r/s", "nat. p50", "nat. p99", "r/s h/n", "p50 h/n");
        println!("|{:-<40}|{:->11}|{:->12}|{:->12}|{:->11}|{:->12}|{:->12}|{:->14}|{:->12}|", "", "", "", "", "", "", "", "", "");
        for (name, h, n) in &rows {
            println!(
                "| {name:<38} | {:>9.0} | {:>10} | {:>10} | {:>9.0} | {:>10} | {:>10} | {:>11.2}× | {:>9.2}× |",
                h.rate, ms(&h.p50), ms(&h.p99), n.rate, ms(&n.p50), ms(&n.p99),
                h.rate / n.rate.max(f64::MIN_POSITIVE),
                h.p50.as_secs_f64() / n.p50.as_secs_f64().max(f64::MIN_POSITIVE),
            );
        }
        let errors: u64 = rows.iter().map(|(_, h, n)| h.errors + n.errors).sum();
        if errors > 0 {
            println!("({errors} requests answered an unexpected status or failed; not counted)");
        }

        if let Some(pid) = std::env::var("GPT_USER_BENCH_HOST_PID").ok().filter(|p| !p.is_empty()) {
            let requests = env_u64("GPT_USER_BENCH_RSS_REQUESTS", 100_000);
            let before = vm_rss(&pid)?;
            let started = Instant::now();
            let errors = fixed_count(&client, &servers[0], requests).await?;
            let after = vm_rss(&pid)?;
            println!();
            println!(
                "host RSS (VmRSS of pid {pid}): {before} KiB before, {after} KiB after {requests} requests (SignUp_Verify unknown token and Update_Load alternating, {CONCURRENCY} connections, {:.1} s, {errors} unexpected){}",
                started.elapsed().as_secs_f64(),
                format_args!(" — {:+} KiB", after as i64 - before as i64),
            );
        }

        if let (Some(spin), Some(wrk)) = (std::env::var("GPT_USER_BENCH_SPIN").ok().filter(|u| !u.is_empty()), &wrk) {
            let title = "composed Spin app (tests/spin harness: flow + adapter, WASIp3 instances reused as Spin 4 reuses them, its SQLite host; served over HTTP)";
            spin_path(title, wrk, &servers[0].base, spin.trim_end_matches('/'), warmup, duration)?;
        }
        if let (Some(spin), Some(wrk)) = (std::env::var("GPT_USER_BENCH_REAL_SPIN").ok().filter(|u| !u.is_empty()), &wrk) {
            let title = "real `spin up` of the spin.toml named above (Spin's HTTP trigger, SQLite and variables; WASIp3 components: instances reused, 128 requests, 16 at once; WASIp2: one per request)";
            spin_path(title, wrk, &servers[0].base, spin.trim_end_matches('/'), warmup, duration)?;
        }
        if let (Some(spin), Some(wrk)) = (std::env::var("GPT_USER_BENCH_REAL_SPIN_NODELAY").ok().filter(|u| !u.is_empty()), &wrk) {
            let title = "the same `spin up` with TCP_NODELAY on its accepted connections (LD_PRELOAD shim bench/nodelay, benchmark only: what Spin serves once its trigger sets it)";
            spin_path(title, wrk, &servers[0].base, spin.trim_end_matches('/'), warmup, duration)?;
        }

        if let Some(db) = std::env::var("GPT_USER_BENCH_HOST_DB").ok().filter(|p| !p.is_empty()) {
            scale(&client, &servers[0], &db, warmup, duration).await?;
        }
        Ok(())
    }

    /// A Spin server — the tests/spin harness served over HTTP by its `instantiate` bench, or a
    /// real `spin up` — against our host, both under wrk, the same requests.
    fn spin_path(title: &str, wrk: &str, host: &str, spin: &str, warmup: Duration, duration: Duration) -> anyhow::Result<()> {
        println!();
        println!("{title} vs our host, wrk 1 thread, {CONCURRENCY} connections:");
        println!("| {:<34} | {:>9} | {:>10} | {:>10} | {:>9} | {:>10} | {:>10} | {:>10} |", "request", "spin r/s", "spin p50", "spin p99", "host r/s", "host p50", "host p99", "spin/host");
        println!("|{:-<36}|{:->11}|{:->12}|{:->12}|{:->11}|{:->12}|{:->12}|{:->12}|", "", "", "", "", "", "", "", "");
        let verify = json!({"token": "A".repeat(43)}).to_string();
        let mut unexpected = 0;
        for (name, method, path, body, ok_2xx) in
            [("GET /healthz", "GET", "/healthz", None, true), ("SignUp_Verify, unknown token (410)", "POST", "/api/signup/verify", Some(verify.as_str()), false)]
        {
            // No Origin header: a GPT action's request, answered the same by both.
            let to = |base: &str| super::wrk::Request { method, url: format!("{base}{path}"), body, origin: None };
            let s = super::wrk::run(wrk, &to(spin), CONCURRENCY, warmup, duration)?;
            let h = super::wrk::run(wrk, &to(host), CONCURRENCY, warmup, duration)?;
            for r in [&s, &h] {
                unexpected += r.socket_errors + if ok_2xx { r.non_2xx } else { r.requests - r.non_2xx };
            }
            println!(
                "| {name:<34} | {:>9.0} | {:>10} | {:>10} | {:>9.0} | {:>10} | {:>10} | {:>9.2}× |",
                s.rate, ms(&s.p50), ms(&s.p99), h.rate, ms(&h.p50), ms(&h.p99), s.rate / h.rate.max(f64::MIN_POSITIVE)
            );
        }
        if unexpected > 0 {
            println!("({unexpected} requests answered an unexpected status or failed; counted in the rates above)");
        }
        Ok(())
    }

    /// The read path on the host with its database seeded to 10k and then to 1M active accounts,
    /// each with a live profile token (rows inserted straight into the host's SQLite file).
    async fn scale(client: &reqwest::Client, host: &Server, db: &str, warmup: Duration, duration: Duration) -> anyhow::Result<()> {
        use sqlx::Connection as _;
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(db).busy_timeout(Duration::from_secs(60));
        let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
        println!();
        println!("read path on the host by accounts in the database (seeded: active, with a profile token each):");
        println!("| {:>9} | {:>22} | {:>10} | {:>10} | {:>24} | {:>10} | {:>10} |", "accounts", "Update_Load r/s", "p50", "p99", "SignUp_Verify (410) r/s", "p50", "p99");
        println!("|{:->11}|{:->24}|{:->12}|{:->12}|{:->26}|{:->12}|{:->12}|", "", "", "", "", "", "", "");
        let mut seeded = 0i64;
        for target in [10_000i64, 1_000_000] {
            let started = Instant::now();
            let mut tx = conn.begin().await?;
            sqlx::query(
                "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2) \
                 INSERT INTO users (id, email, pin, passphrase_hash, locale, status, email_verified, consent_at, policy_version, created_at, updated_at) \
                 SELECT 'seed-' || i, 'seed-' || i || '@example.com', printf('8%011d', i), 'seeded', 'en', 'active', 1, ?3, '1', ?3, ?3 FROM n",
            )
            .bind(seeded + 1)
            .bind(target)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2) \
                 INSERT INTO secrets (hash, purpose, user_id, created_at, expires_at) \
                 SELECT printf('seed%060d', i), 'profile', 'seed-' || i, ?3, ?3 + 86400000 FROM n",
            )
            .bind(seeded + 1)
            .bind(target)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            sqlx::query("ANALYZE").execute(&mut conn).await?;
            eprintln!("  seeded {} accounts in {:.1?}", target - seeded, started.elapsed());
            seeded = target;
            let load = measure(client, host, 0, 200, warmup, duration).await?;
            let verify = measure(client, host, 1, 410, warmup, duration).await?;
            let accounts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&mut conn).await?;
            println!(
                "| {accounts:>9} | {:>22.0} | {:>10} | {:>10} | {:>24.0} | {:>10} | {:>10} |",
                load.rate, ms(&load.p50), ms(&load.p99), verify.rate, ms(&verify.p50), ms(&verify.p99)
            );
        }
        Ok(())
    }

    fn ms(d: &Duration) -> String {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }

    fn vm_rss(pid: &str) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or_else(|| anyhow::anyhow!("no VmRSS for pid {pid}"))?;
        Ok(line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// `CONCURRENCY` active accounts (signed up, verified through the dev mailbox) — one per
    /// connection, since concurrent checks of one PIN count as failures until one matches — and
    /// a profile token of the first (Update_Init, from the dev mailbox).
    async fn setup(client: &reqwest::Client, name: &'static str, base: &str) -> anyhow::Result<Server> {
        let base = base.trim_end_matches('/').to_owned();
        let email = |k: usize| format!("bench-owner-{k}-{name}@example.com");
        let mut pins = Vec::new();
        for k in 0..CONCURRENCY {
            let r = client.post(format!("{base}/api/signup/init")).json(&json!({"email": email(k), "consent": true, "locale": "en", "passphrase": PASSPHRASE})).send().await?;
            anyhow::ensure!(r.status() == 201, "{name}: sign-up answered {}", r.status());
            pins.push(r.json::<Value>().await?["pin"].as_str().unwrap_or_default().to_owned());
        }
        for k in 0..CONCURRENCY {
            let token = mail_token(client, &base, &email(k), 0).await?;
            let r = client.post(format!("{base}/api/signup/verify")).header("origin", &base).json(&json!({"token": token})).send().await?;
            anyhow::ensure!(r.status() == 200, "{name}: verify answered {}", r.status());
        }
        let r = client.post(format!("{base}/api/profile/init")).json(&json!({"email": email(0)})).send().await?;
        anyhow::ensure!(r.status() == 200, "{name}: Update_Init answered {}", r.status());
        let profile_token = mail_token(client, &base, &email(0), 1).await?;
        Ok(Server { name, base, pins, profile_token })
    }

    /// The `#token=` of the `nth` message to `to` in the dev mailbox (waits up to 20 s).
    async fn mail_token(client: &reqwest::Client, base: &str, to: &str, nth: usize) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let list: Vec<Value> = client.get(format!("{base}/dev/mail")).send().await?.json().await?;
            let mut tokens = Vec::new();
            for item in &list {
                let raw = client.get(format!("{base}{}", item["url"].as_str().unwrap_or_default())).send().await?.bytes().await?;
                let Some(message) = mail_parser::MessageParser::default().parse(&raw[..]) else { continue };
                let to_matches = message.to().and_then(|a| a.first()).and_then(|a| a.address()).is_some_and(|a| a == to);
                let text = message.body_text(0).unwrap_or_default();
                if let (true, Some(after)) = (to_matches, text.split("#token=").nth(1)) {
                    tokens.push((item["file"].as_str().unwrap_or_default().to_owned(), after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect::<String>()));
                }
            }
            tokens.sort();
            if let Some((_, token)) = tokens.into_iter().nth(nth) {
                return Ok(token);
            }
            anyhow::ensure!(Instant::now() < deadline, "no mail #{nth} to {to} arrived at {base}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Scenario `i` (see `run`) on connection loop `task`: its path, JSON body, and whether it is
    /// a browser call (sent with the server's `Origin`); `seq` makes sign-up addresses unique.
    fn scenario(server: &Server, i: usize, task: usize, seq: u64) -> (&'static str, Value, bool) {
        match i {
            0 => ("/api/profile/load", json!({"token": server.profile_token}), true),
            1 => ("/api/signup/verify", json!({"token": "A".repeat(43)}), true),
            2 => (
                "/api/signup/init",
                json!({"email": format!("bench-{}-{seq}@example.com", server.name), "consent": true, "locale": "en", "passphrase": PASSPHRASE}),
                false,
            ),
            _ => ("/api/auth/check", json!({"pin": server.pins[task % server.pins.len()], "passphrase": PASSPHRASE}), false),
        }
    }

    fn request(client: &reqwest::Client, server: &Server, i: usize, task: usize, seq: u64) -> reqwest::RequestBuilder {
        let (path, body, browser) = scenario(server, i, task, seq);
        let request = client.post(format!("{}{path}", server.base)).json(&body);
        if browser { request.header("origin", &server.base) } else { request }
    }

    /// `CONCURRENCY` loops of requests for `warmup + duration`; latencies of requests started
    /// after the warm-up, rate over the measured window.
    async fn measure(client: &reqwest::Client, server: &Server, i: usize, expect: u16, warmup: Duration, duration: Duration) -> anyhow::Result<Stats> {
        if let (0 | 1, Some(wrk)) = (i, super::wrk::find()) {
            return measure_wrk(&wrk, server, i, expect, warmup, duration);
        }
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let started = Instant::now();
        let (measure_from, end) = (started + warmup, started + warmup + duration);
        let server = Arc::new(Server { name: server.name, base: server.base.clone(), pins: server.pins.clone(), profile_token: server.profile_token.clone() });
        let errors = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|task| {
                let (client, server, errors) = (client.clone(), server.clone(), errors.clone());
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    loop {
                        let t = Instant::now();
                        if t >= end {
                            break;
                        }
                        let ok = match request(&client, &server, i, task, SEQ.fetch_add(1, Ordering::Relaxed)).send().await {
                            Ok(r) => {
                                let ok = r.status().as_u16() == expect;
                                ok & r.bytes().await.is_ok()
                            }
                            Err(_) => false,
                        };
                        let done = Instant::now();
                        if t >= measure_from && done <= end {
                            if ok {
                                latencies.push(done - t);
                            } else {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await?);
        }
        all.sort();
        anyhow::ensure!(!all.is_empty(), "{}: no request of scenario {i} completed in the window", server.name);
        let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
        Ok(Stats { rate: all.len() as f64 / duration.as_secs_f64(), p50: pct(0.5), p99: pct(0.99), n: all.len(), errors: errors.load(Ordering::Relaxed) })
    }

    /// Scenario 0 or 1 (the same request again and again) under wrk instead of our loop.
    fn measure_wrk(wrk: &str, server: &Server, i: usize, expect: u16, warmup: Duration, duration: Duration) -> anyhow::Result<Stats> {
        let base = &server.base;
        let (path, body, browser) = scenario(server, i, 0, 0);
        let origin = browser.then_some(base.as_str());
        let body = body.to_string();
        let request = super::wrk::Request { method: "POST", url: format!("{base}{path}"), body: Some(&body), origin };
        let run = super::wrk::run(wrk, &request, CONCURRENCY, warmup, duration)?;
        // wrk tells only 2xx/3xx from the rest: for a 2xx scenario the rest are unexpected, for
        // a 410 scenario the 2xx/3xx ones.
        let unexpected = if expect < 400 { run.non_2xx } else { run.requests - run.non_2xx };
        Ok(Stats { rate: run.rate, p50: run.p50, p99: run.p99, n: run.requests as usize, errors: unexpected + run.socket_errors })
    }

    /// `count` cheap requests (SignUp_Verify unknown token, Update_Load alternating) at
    /// `CONCURRENCY`; the number that did not answer as expected.
    async fn fixed_count(client: &reqwest::Client, server: &Server, count: u64) -> anyhow::Result<u64> {
        let next = Arc::new(AtomicU64::new(0));
        let server = Arc::new(Server { name: server.name, base: server.base.clone(), pins: server.pins.clone(), profile_token: server.profile_token.clone() });
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|_| {
                let (client, server, next) = (client.clone(), server.clone(), next.clone());
                tokio::spawn(async move {
                    let mut errors = 0u64;
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= count {
                            return errors;
                        }
                        let (i, expect) = if n % 2 == 0 { (1, 410) } else { (0, 200) };
                        match request(&client, &server, i, 0, n).send().await {
                            Ok(r) if r.status().as_u16() == expect => {
                                let _ = r.bytes().await;
                            }
                            _ => errors += 1,
                        }
                    }
                })
            })
            .collect();
        let mut errors = 0;
        for t in tasks {
            errors += t.await?;
        }
        Ok(errors)
    }
}
