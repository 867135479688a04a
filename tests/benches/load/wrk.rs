//! Load from `wrk` (Debian's package; `scripts/bench.sh` installs it): a C load generator that
//! costs a server's cheap requests far less CPU than our reqwest loop, which on 2 cores shared
//! with the servers was the bottleneck of the read-path rows (it measured ~4k req/s where wrk
//! measures ~20k on the same host). Used for the rows whose requests are all alike (no per-
//! connection account), both servers the same way.

use std::process::Command;
use std::time::Duration;

/// What one run measured.
pub struct Run {
    pub rate: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub requests: u64,
    /// Answers outside 2xx/3xx.
    pub non_2xx: u64,
    pub socket_errors: u64,
}

/// The `wrk` binary, if there is one on the PATH (or in `GPT_USER_BENCH_WRK`).
pub fn find() -> Option<String> {
    let wrk = std::env::var("GPT_USER_BENCH_WRK").unwrap_or_else(|_| "wrk".into());
    Command::new(&wrk).arg("--version").output().ok().map(|_| wrk)
}

/// The one request wrk sends again and again.
pub struct Request<'a> {
    pub method: &'a str,
    pub url: String,
    /// Sent as JSON.
    pub body: Option<&'a str>,
    pub origin: Option<&'a str>,
}

/// `connections` connections on one wrk thread sending `request` for `warmup` (not counted),
/// then for `duration`.
pub fn run(wrk: &str, request: &Request<'_>, connections: usize, warmup: Duration, duration: Duration) -> anyhow::Result<Run> {
    let script = tempfile_with(&lua(request.method, request.body, request.origin))?;
    let go = |d: Duration| -> anyhow::Result<String> {
        let out = Command::new(wrk)
            .args(["-t1", &format!("-c{connections}"), &format!("-d{}s", d.as_secs().max(1)), "--latency", "-s"])
            .arg(&script)
            .arg(&request.url)
            .output()?;
        anyhow::ensure!(out.status.success(), "wrk failed: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    if !warmup.is_zero() {
        go(warmup)?;
    }
    let out = go(duration);
    let _ = std::fs::remove_file(&script);
    parse(&out?)
}

fn lua(method: &str, body: Option<&str>, origin: Option<&str>) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
    let mut lua = format!("wrk.method = {}\n", quote(method));
    if let Some(body) = body {
        lua += &format!("wrk.body = {}\nwrk.headers[\"content-type\"] = \"application/json\"\n", quote(body));
    }
    if let Some(origin) = origin {
        lua += &format!("wrk.headers[\"origin\"] = {}\n", quote(origin));
    }
    lua
}

fn tempfile_with(text: &str) -> anyhow::Result<std::path::PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!("gpt-user-wrk-{}-{}.lua", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, text)?;
    Ok(path)
}

/// wrk's report: `Requests/sec:`, the `--latency` percentiles, the request count, and the
/// `Non-2xx or 3xx responses:` / `Socket errors:` lines when present.
fn parse(out: &str) -> anyhow::Result<Run> {
    let mut run = Run { rate: f64::NAN, p50: Duration::MAX, p99: Duration::MAX, requests: 0, non_2xx: 0, socket_errors: 0 };
    for line in out.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", rate] => run.rate = rate.parse()?,
            ["50%", t] => run.p50 = duration(t)?,
            ["99%", t] => run.p99 = duration(t)?,
            [n, "requests", "in", ..] => run.requests = n.parse()?,
            ["Non-2xx", "or", "3xx", "responses:", n] => run.non_2xx = n.parse()?,
            ["Socket", "errors:", rest @ ..] => {
                run.socket_errors = rest.iter().filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok()).sum()
            }
            _ => {}
        }
    }
    anyhow::ensure!(run.rate.is_finite() && run.p99 != Duration::MAX && run.requests > 0, "unexpected wrk output:\n{out}");
    Ok(run)
}

/// `812.00us`, `1.54ms`, `2.01s`, `1.00m` as wrk prints them.
fn duration(t: &str) -> anyhow::Result<Duration> {
    let split = t.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(|| anyhow::anyhow!("no unit in {t}"))?;
    let (n, unit) = t.split_at(split);
    let n: f64 = n.parse()?;
    let seconds = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        _ => anyhow::bail!("unknown unit in {t}"),
    };
    Ok(Duration::from_secs_f64(seconds))
}
