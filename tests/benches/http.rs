//! Throughput and latency of the host over HTTP, printed (not asserted):
//! `cargo bench -p gpt-user-tests --bench http` (or `scripts/bench.sh`).
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

const CONCURRENCY: usize = 32;
const REQUESTS: usize = 4000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("gpt-user-bench-{}", std::process::id()));
    let config = gpt_user::Config { listen: "127.0.0.1:0".parse()?, data_dir: dir.clone(), dev: true, ..gpt_user::Config::default() };
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
