//! One client's share of a host (issue 19): what keeps a holder of the service key, or one
//! address, from taking the whole server.
//! - [`RateLimiter`]: token buckets per service key (by the key's SHA-256, never the key) and per
//!   client address for GPT actions and `/mcp`, judged from the head before anything is read or
//!   instantiated; beyond them `429 RATE_LIMITED` + `Retry-After`.
//! - [`Slots`]: the instance pool's permits; GPT requests may hold only part of them, the rest is
//!   kept for browser and public routes (the verify and profile pages and their API).
//! - [`PeerConnections`]: open connections per client address, next to the global cap.
//!
//! All of it lives in one process: with several hosts each counts its own share (the README says
//! so). Behind a proxy every request comes from the proxy's address, so the per-address limits
//! then count the proxy's.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Buckets kept before idle (full) ones are dropped.
const MAX_TRACKED: usize = 16 * 1024;

/// Requests per second and the burst a bucket starts with; `per_second == 0` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Rate {
    fn limits(self) -> Option<Self> {
        (self.per_second > 0).then_some(Self { burst: self.burst.max(1), ..self })
    }
}

/// Whose requests a bucket counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Holder {
    /// The SHA-256 of a configured service key.
    Key([u8; 32]),
    Peer(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Tokens at `now` (refilled, at most the burst).
    fn level(&self, rate: Rate, now: Instant) -> f64 {
        (self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * f64::from(rate.per_second)).min(f64::from(rate.burst))
    }
}

/// Token buckets per service key and per client address.
pub struct RateLimiter {
    per_key: Option<Rate>,
    per_peer: Option<Rate>,
    keys: Vec<String>,
    buckets: Mutex<HashMap<Holder, (Bucket, Rate)>>,
}

impl RateLimiter {
    /// `keys`: the configured service keys (a request is counted against one only if it carries it:
    /// made-up keys cannot grow the table, and are refused by the component anyway).
    pub fn new(per_key: Rate, per_peer: Rate, keys: Vec<String>) -> Self {
        Self { per_key: per_key.limits(), per_peer: per_peer.limits(), keys, buckets: Mutex::default() }
    }

    /// Takes one token from the key's and the address's bucket, or from neither: `Err(seconds)`
    /// until a token is there again.
    pub fn take(&self, authorization: Option<&str>, peer: IpAddr, now: Instant) -> Result<(), u32> {
        let mut holders: Vec<(Holder, Rate)> = Vec::with_capacity(2);
        if let Some(rate) = self.per_key
            && let Some(hash) = gpt_user_core::api::configured_key_hash(&self.keys, authorization)
        {
            holders.push((Holder::Key(hash), rate));
        }
        if let Some(rate) = self.per_peer {
            holders.push((Holder::Peer(client(peer)), rate));
        }
        if holders.is_empty() {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED {
            buckets.retain(|_, (bucket, rate)| bucket.level(*rate, now) < f64::from(rate.burst));
        }
        let levels: Vec<f64> = holders
            .iter()
            .map(|(holder, rate)| buckets.get(holder).map_or(f64::from(rate.burst), |(b, _)| b.level(*rate, now)))
            .collect();
        let wait = holders
            .iter()
            .zip(&levels)
            .filter(|(_, level)| **level < 1.0)
            .map(|((_, rate), level)| ((1.0 - level) / f64::from(rate.per_second)).ceil() as u32)
            .max();
        if let Some(seconds) = wait {
            return Err(seconds.max(1));
        }
        for ((holder, rate), level) in holders.into_iter().zip(levels) {
            buckets.insert(holder, (Bucket { tokens: level - 1.0, at: now }, rate));
        }
        Ok(())
    }
}

/// The address a client is counted by: an IPv6 client by its /64 (one host usually has a whole
/// /64), an IPv4-mapped one as IPv4.
pub fn client(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// The instance pool's permits: every request inside a component holds one; a GPT request (a GPT
/// action or `/mcp`) also holds one of the fewer GPT permits, so it can never take the reserve.
pub struct Slots {
    all: Arc<Semaphore>,
    gpt: Arc<Semaphore>,
    /// Counts the slots in use, if observed.
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// A request's place in the pool; released (and no longer counted) on drop.
pub struct Slot {
    _all: OwnedSemaphorePermit,
    _gpt: Option<OwnedSemaphorePermit>,
    _counted: Option<crate::metrics::Held>,
}

impl Slots {
    /// `max_instances` permits, of which `reserved_percent` (rounded down) are not for GPT
    /// requests; GPT requests always have at least one.
    pub fn new(max_instances: usize, reserved_percent: u32) -> Self {
        let reserved = max_instances * reserved_percent.min(100) as usize / 100;
        let gpt = max_instances.saturating_sub(reserved).max(1);
        Self { all: Arc::new(Semaphore::new(max_instances)), gpt: Arc::new(Semaphore::new(gpt)), metrics: None }
    }

    /// These slots (`max_instances` of them), reporting the pool in use to `metrics`.
    pub fn observed(mut self, max_instances: usize, metrics: Arc<crate::metrics::Metrics>) -> Self {
        metrics.set_instance_capacity(max_instances);
        self.metrics = Some(metrics);
        self
    }

    /// A slot now, or `None` (the caller answers `503 BUSY`).
    pub fn try_take(&self, gpt: bool) -> Option<Slot> {
        let gpt = if gpt { Some(self.gpt.clone().try_acquire_owned().ok()?) } else { None };
        let all = self.all.clone().try_acquire_owned().ok()?;
        Some(Slot { _all: all, _gpt: gpt, _counted: self.metrics.as_ref().map(|m| m.instance_taken()) })
    }
}

/// Open connections per client address.
pub struct PeerConnections {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of a client; counted until dropped.
pub struct PeerConnection {
    peers: Arc<PeerConnections>,
    ip: IpAddr,
}

impl PeerConnections {
    /// `max == 0`: no cap per address.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { max, open: Mutex::default() })
    }

    /// Counts a new connection of `peer`, or `None` if the address already has `max` open.
    pub fn enter(self: &Arc<Self>, peer: IpAddr) -> Option<PeerConnection> {
        let ip = client(peer);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if self.max > 0 && *n >= self.max {
            return None;
        }
        *n += 1;
        Some(PeerConnection { peers: self.clone(), ip })
    }
}

impl Drop for PeerConnection {
    fn drop(&mut self) {
        let mut open = self.peers.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// In dev mode the host answers only requests addressed to this machine: `Host` (or an
/// absolute-form target) a loopback name or address, or the configured base URL's. A web page
/// whose name is rebound to 127.0.0.1 sends its own name, and is refused (DNS rebinding).
pub fn dev_host_allowed(host: Option<&str>, base_url: &str) -> bool {
    let Some(host) = host.map(str::trim) else {
        return true; // HTTP/1.0 without Host: not a browser
    };
    let base = base_url.split_once("://").map_or(base_url, |(_, rest)| rest).split('/').next().unwrap_or_default();
    if host.eq_ignore_ascii_case(base) {
        return true;
    }
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(rest, |(addr, _)| addr),
        None => host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(name, _)| name),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate_and_says_how_long_to_wait() {
        let limiter = RateLimiter::new(Rate { per_second: 0, burst: 0 }, Rate { per_second: 2, burst: 3 }, Vec::new());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take(None, ip("10.0.0.1"), t0), Ok(()));
        }
        assert_eq!(limiter.take(None, ip("10.0.0.1"), t0), Err(1));
        assert_eq!(limiter.take(None, ip("10.0.0.2"), t0), Ok(()), "another address has its own bucket");
        assert_eq!(limiter.take(None, ip("10.0.0.1"), t0 + Duration::from_millis(500)), Ok(()), "2/s: one token per 0.5 s");
        assert_eq!(limiter.take(None, ip("10.0.0.1"), t0 + Duration::from_millis(600)), Err(1));
    }

    #[test]
    fn a_configured_key_is_counted_by_its_hash_across_addresses_and_a_made_up_key_is_not_tracked() {
        let keys = vec!["k1".to_owned()];
        let limiter = RateLimiter::new(Rate { per_second: 1, burst: 2 }, Rate { per_second: 0, burst: 0 }, keys);
        let t0 = Instant::now();
        assert_eq!(limiter.take(Some("Bearer k1"), ip("10.0.0.1"), t0), Ok(()));
        assert_eq!(limiter.take(Some("Bearer k1"), ip("10.0.0.2"), t0), Ok(()));
        assert_eq!(limiter.take(Some("Bearer k1"), ip("10.0.0.3"), t0), Err(1), "one bucket for the key");
        for i in 0..100 {
            assert_eq!(limiter.take(Some(&format!("Bearer made-up-{i}")), ip("10.0.0.4"), t0), Ok(()));
        }
        let buckets = limiter.buckets.lock().unwrap();
        assert_eq!(buckets.len(), 1, "only the configured key has a bucket");
        let printed = format!("{:?}", buckets.keys().collect::<Vec<_>>());
        assert!(!printed.contains("k1"), "{printed}");
    }

    #[test]
    fn when_one_bucket_refuses_the_other_is_not_charged() {
        let keys = vec!["k1".to_owned()];
        let limiter = RateLimiter::new(Rate { per_second: 1, burst: 1 }, Rate { per_second: 1, burst: 5 }, keys);
        let t0 = Instant::now();
        assert_eq!(limiter.take(Some("Bearer k1"), ip("10.0.0.1"), t0), Ok(()));
        for _ in 0..10 {
            assert!(limiter.take(Some("Bearer k1"), ip("10.0.0.1"), t0).is_err());
        }
        for _ in 0..4 {
            assert_eq!(limiter.take(None, ip("10.0.0.1"), t0), Ok(()), "the address still has its burst");
        }
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(client(ip("2001:db8:1:2:aaaa::1")), client(ip("2001:db8:1:2:bbbb::9")));
        assert_ne!(client(ip("2001:db8:1:2::1")), client(ip("2001:db8:1:3::1")));
        assert_eq!(client(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
    }

    #[test]
    fn gpt_requests_leave_the_reserved_slots_to_the_others() {
        let slots = Slots::new(4, 25);
        let gpt: Vec<Slot> = (0..3).map(|_| slots.try_take(true).expect("3 of 4 for GPT")).collect();
        assert!(slots.try_take(true).is_none(), "the reserve is not for GPT");
        let browser = slots.try_take(false).expect("the reserved slot");
        assert!(slots.try_take(false).is_none(), "the pool is full");
        drop(gpt);
        assert!(slots.try_take(true).is_some());
        drop(browser);
        assert!(Slots::new(1, 25).try_take(true).is_some(), "a pool of one still serves GPT");
    }

    #[test]
    fn an_address_may_hold_its_cap_of_connections_and_one_more_after_one_closes() {
        let peers = PeerConnections::new(2);
        let a = peers.enter(ip("127.0.0.1")).unwrap();
        let _b = peers.enter(ip("127.0.0.1")).unwrap();
        assert!(peers.enter(ip("127.0.0.1")).is_none());
        assert!(peers.enter(ip("127.0.0.2")).is_some(), "another address");
        drop(a);
        assert!(peers.enter(ip("127.0.0.1")).is_some());
        assert!(PeerConnections::new(0).enter(ip("127.0.0.1")).is_some(), "0: no cap");
    }

    #[test]
    fn dev_mode_answers_loopback_names_and_addresses_and_the_base_url_only() {
        let base = "http://127.0.0.1:3000";
        for host in ["127.0.0.1:3000", "127.0.0.1", "127.1.2.3:80", "localhost:3000", "LOCALHOST", "app.localhost:3000", "[::1]:3000", "[::1]", "localhost.:3000"] {
            assert!(dev_host_allowed(Some(host), base), "{host}");
        }
        for host in ["rebind.example:3000", "evil.example", "10.0.0.1:3000", "[2001:db8::1]:3000", "localhost.evil.example", "127.0.0.1.nip.io:3000", ""] {
            assert!(!dev_host_allowed(Some(host), base), "{host}");
        }
        assert!(dev_host_allowed(None, base));
        assert!(dev_host_allowed(Some("dev.example:8443"), "https://dev.example:8443/"), "the configured base URL's host");
    }
}
