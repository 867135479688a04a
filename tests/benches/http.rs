//! Throughput and latency of the host over HTTP, printed (not asserted):
//! `cargo bench -p gpt-user-tests --bench http` (or `scripts/bench.sh`).
//!
//! - SignUp_Verify-like: POST /api/signup/verify with a well-formed unknown token — the whole
//!   path: hyper → fresh Store + instance → JSON parsing → store lookup in SQLite → 410.
//! - /healthz: the component path without the database.
//! - SignUp_Init: sequential sign-ups (Argon2id m=19456 KiB t=2 inside the wasm guest).

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
    for i in 0..20 {
        let started = Instant::now();
        let r = client
            .post(format!("{base}/api/signup/init"))
            .json(&json!({"email": format!("bench-{i}@example.com"), "consent": true, "locale": "en", "passphrase": "correct horse battery staple"}))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 201, "sign-up answered {}", r.status());
        latencies.push(started.elapsed());
    }
    report("POST /api/signup/init (sequential, Argon2id in wasm)", &mut latencies, None);
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
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
