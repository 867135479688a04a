//! The per-request cost of the app as Spin runs it (issue 10), without Spin: the sign-up flow
//! component with the Spin adapter plugged in, served under wasmtime by this crate's harness
//! ([`App`]: `ProxyHandler` with Spin 4's instance reuse for WASIp3 handlers, the harness's SQLite
//! host) — the proxy for `spin up`. In-process, no HTTP: `GET /healthz` is
//! the instantiation plus the core's `negotiate`; SignUp_Verify with an unknown token adds the
//! JSON and one store lookup. Printed by `scripts/bench.sh` under the host/native table;
//! `cargo bench --profile dev --bench instantiate` alone.
//!
//! With `GPT_USER_BENCH_SERVE=ADDR` it serves the same app over HTTP/1.1 on `ADDR` instead (as
//! Spin's trigger serves it: instances reused), so that
//! a load generator can compare it with our host over the same sockets (`scripts/bench.sh`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gpt_user_spin_tests::served::App;

const CONCURRENCY: usize = 32;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("GPT_USER_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let warmup: u64 = std::env::var("GPT_USER_BENCH_WARMUP_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let dir = std::env::temp_dir().join(format!("gpt-user-spin-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let app = Arc::new(App::new(dir.join("spin.db"), &[("dev", "true")])?);
    if let Ok(addr) = std::env::var("GPT_USER_BENCH_SERVE") {
        return serve(app, &addr).await;
    }
    println!();
    println!("composed Spin app (signup flow + adapter), instances reused as Spin 4 reuses them, tests/spin harness under wasmtime, in-process (no HTTP), {CONCURRENCY} concurrent, {seconds} s after {warmup} s warm-up:");
    for (name, expect, verify) in [("GET /healthz (200)", 200, false), ("SignUp_Verify, unknown token (410)", 410, true)] {
        let (rate, mut latencies) = run(&app, verify, expect, Duration::from_secs(warmup), Duration::from_secs(seconds)).await?;
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        println!("  {name:<38} {rate:>8.0} req/s  p50 {:>8.2} ms  p99 {:>8.2} ms  (n={})", ms(pct(0.5)), ms(pct(0.99)), latencies.len());
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn run(app: &Arc<App>, verify: bool, expect: u16, warmup: Duration, duration: Duration) -> anyhow::Result<(f64, Vec<Duration>)> {
    let started = Instant::now();
    let (measure_from, end) = (started + warmup, started + warmup + duration);
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let t = Instant::now();
                    if t >= end {
                        return anyhow::Ok(latencies);
                    }
                    let (answer, guest) = if verify {
                        app.post("/api/signup/verify", &serde_json::json!({"token": "A".repeat(43)}), None).await?
                    } else {
                        app.send(hyper::Request::get("http://127.0.0.1:3000/healthz").body(Bytes::new())?).await?
                    };
                    // The instance is done when its task is: count that, as a server's slot would.
                    guest.await??;
                    let done = Instant::now();
                    anyhow::ensure!(answer.status == expect, "answered {} instead of {expect}", answer.status);
                    if t >= measure_from && done <= end {
                        latencies.push(done - t);
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    anyhow::ensure!(!all.is_empty(), "no request completed in the window");
    Ok((all.len() as f64 / duration.as_secs_f64(), all))
}

/// The app behind a plain hyper HTTP/1.1 server, until the process is killed.
async fn serve(app: Arc<App>, addr: &str) -> anyhow::Result<()> {
    use http_body_util::{BodyExt, Full};
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("composed Spin app served on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let app = app.clone();
                async move {
                    let (mut parts, body) = req.into_parts();
                    // The harness's requests carry the authority the guest expects.
                    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                    parts.uri = format!("http://127.0.0.1:3000{path}").parse()?;
                    let body = body.collect().await?.to_bytes();
                    // The instance may still run after its answer (mail flush), as on Spin.
                    let (answer, _guest) = app.send(hyper::Request::from_parts(parts, body)).await?;
                    anyhow::Ok(hyper::Response::builder().status(answer.status).body(Full::new(answer.body))?)
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        });
    }
}
