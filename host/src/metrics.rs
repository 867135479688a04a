//! Prometheus metrics of one application (issue 22), in the text exposition format on a listener of
//! their own (`GPT_USER_METRICS_LISTEN`, off by default, never the public port).
//!
//! `prometheus-client` (the Prometheus project's own Rust client): typed label sets, no global
//! registry (each application — several in one test process — has its own), the OpenMetrics text
//! format, and nothing else pulled in.
//!
//! What is counted where:
//! - requests by route pattern, component and status, and their latency, in [`crate::server`];
//!   open connections, and connections refused over a client's cap, there too;
//! - the instance pool (requests in components, capacity, live instances, `503 BUSY`) and deadline
//!   hits in [`crate::runtime`];
//! - account events (sign-ups, verifications, profile saves, email changes) and Auth_Check
//!   outcomes from the operations the components commit through the store adapter — counted only
//!   once their transaction committed;
//! - throttled answers by kind: the host's rate limit and per-client connection cap, and the
//!   store's send limit, sign-up cap and Auth_Check delay;
//! - mail: sends, failures by class, deaths, SMTP time and the time from queueing to delivery, in
//!   the dispatcher; the outbox by state and the age of its oldest undelivered message are read
//!   from the database at each scrape (so every host of a shared database reports the same
//!   outbox);
//! - ephemeral-store errors (Redis or the database table) in its adapter.
//!
//! - what only a component sees — each Argon2id run's time, and the email change's own refusals —
//!   through `gpt-user:accounts/metrics` ([`crate::adapters::metrics`]).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use gpt_user_core::ports::{Op, StoreError};


#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// A component's route (`/api/signup/init`), else the route pattern of `spin.toml` that
    /// matched (`/api/signup/...`), `/dev/mail`, or `unrouted`.
    route: String,
    component: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabels {
    component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// Seconds, from 1 ms to ~33 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    connections_open: Gauge,
    instances_in_use: Gauge,
    instances_capacity: Gauge,
    component_instances: Gauge,
    busy: Family<KindLabels, Counter>,
    deadline: Family<ComponentLabels, Counter>,
    account_events: Family<KindLabels, Counter>,
    auth_checks: Family<KindLabels, Counter>,
    throttled: Family<KindLabels, Counter>,
    ephemeral_errors: Counter,
    argon2_seconds: Histogram,
    mail_sent: Counter,
    mail_failed: Family<KindLabels, Counter>,
    mail_smtp_seconds: Histogram,
    mail_delivery_seconds: Histogram,
    outbox: Family<StateLabels, Gauge>,
    outbox_oldest_age_seconds: Gauge<f64, AtomicU64>,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("gpt_user");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "Requests answered, by route pattern, component and status", requests.clone());
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register("http_request_duration_seconds", "Time from a request's headers to its answer", latency.clone());
        let connections_open = Gauge::default();
        registry.register("connections_open", "Open client connections", connections_open.clone());
        let instances_in_use = Gauge::default();
        registry.register("instances_in_use", "Requests inside components now (each holds one of max_instances)", instances_in_use.clone());
        let instances_capacity = Gauge::default();
        registry.register("instances_capacity", "Size of the instance pool (max_instances); the pool never queues: beyond it 503 BUSY", instances_capacity.clone());
        let component_instances = Gauge::default();
        registry.register(
            "component_instances",
            "Component instances alive now, serving or idle (each holds a slot of the pool); one serves up to 128 requests, 16 at a time",
            component_instances.clone(),
        );
        let busy = Family::<KindLabels, Counter>::default();
        registry.register("busy", "Requests answered 503 BUSY because the pool (kind=all) or the GPT routes' part of it (kind=gpt) was full", busy.clone());
        let deadline = Family::<ComponentLabels, Counter>::default();
        registry.register("request_deadline_hits", "Requests stopped at the request deadline inside a component", deadline.clone());
        let account_events = Family::<KindLabels, Counter>::default();
        registry.register(
            "account_events",
            "Committed account changes: signup, signup_replaced, verification, profile_save, passphrase_change, email_change_started, email_change_confirmed",
            account_events.clone(),
        );
        let auth_checks = Family::<KindLabels, Counter>::default();
        registry.register(
            "auth_checks",
            "Auth_Check attempts counted (attempt), succeeded (success), delayed after failures (delayed), refused on a locked PIN (locked), locks notified to their owner (lock)",
            auth_checks.clone(),
        );
        let throttled = Family::<KindLabels, Counter>::default();
        registry.register(
            "throttled",
            "Answers refused to slow a client down: rate_limit, connections_per_client, send_limit, signup_cap, auth_delay, too_many_checks, too_many_codes",
            throttled.clone(),
        );
        let ephemeral_errors = Counter::default();
        registry.register("ephemeral_store_errors", "Failed calls to the ephemeral store (Redis or its database table)", ephemeral_errors.clone());
        let argon2_seconds = latency_histogram();
        registry.register("argon2_seconds", "Time of one Argon2id hash or check of a passphrase, as the component measured it", argon2_seconds.clone());
        let mail_sent = Counter::default();
        registry.register("mail_sent", "Messages the relay accepted", mail_sent.clone());
        let mail_failed = Family::<KindLabels, Counter>::default();
        registry.register("mail_failed", "Failed deliveries: temporary (retried later) or permanent (the message is dead)", mail_failed.clone());
        let mail_smtp_seconds = latency_histogram();
        registry.register("mail_smtp_seconds", "Time of one delivery attempt over SMTP", mail_smtp_seconds.clone());
        let mail_delivery_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 20));
        registry.register("mail_delivery_seconds", "Time from a message's queueing to its delivery", mail_delivery_seconds.clone());
        let outbox = Family::<StateLabels, Gauge>::default();
        registry.register("outbox_messages", "Messages in the outbox (the shared database), by state: pending, failed, sent, dead", outbox.clone());
        let outbox_oldest_age_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "outbox_oldest_undelivered_age_seconds",
            "Age of the oldest message neither delivered nor dead (0 when there is none)",
            outbox_oldest_age_seconds.clone(),
        );
        Arc::new(Self {
            registry,
            requests,
            latency,
            connections_open,
            instances_in_use,
            instances_capacity,
            component_instances,
            busy,
            deadline,
            account_events,
            auth_checks,
            throttled,
            ephemeral_errors,
            argon2_seconds,
            mail_sent,
            mail_failed,
            mail_smtp_seconds,
            mail_delivery_seconds,
            outbox,
            outbox_oldest_age_seconds,
        })
    }

    pub fn request(&self, route: &str, component: &str, status: u16, took: Duration) {
        self.requests.get_or_create(&RequestLabels { route: route.to_owned(), component: component.to_owned(), status }).inc();
        self.latency.get_or_create(&RouteLabels { route: route.to_owned(), component: component.to_owned() }).observe(took.as_secs_f64());
    }

    pub fn connection_opened(&self) -> Held {
        Held::one_of(&self.connections_open)
    }

    /// A request inside a component, until the returned guard drops.
    pub fn instance_taken(&self) -> Held {
        Held::one_of(&self.instances_in_use)
    }

    /// A component instance alive (serving or idle), until the returned guard drops with its store.
    pub fn instance_alive(&self) -> Held {
        Held::one_of(&self.component_instances)
    }

    pub fn set_instance_capacity(&self, capacity: usize) {
        self.instances_capacity.set(capacity as i64);
    }

    pub fn busy(&self, gpt: bool) {
        self.busy.get_or_create(&KindLabels { kind: if gpt { "gpt" } else { "all" } }).inc();
    }

    pub fn deadline_hit(&self, component: &str) {
        self.deadline.get_or_create(&ComponentLabels { component: component.to_owned() }).inc();
    }

    pub fn throttled(&self, kind: &'static str) {
        self.throttled.get_or_create(&KindLabels { kind }).inc();
    }

    /// A duration a component reported (`wit/metrics.wit`); unknown names are ignored.
    pub fn component_observed(&self, name: &str, seconds: f64) {
        if name == "argon2" && seconds.is_finite() && seconds >= 0.0 {
            self.argon2_seconds.observe(seconds);
        }
    }

    /// A refusal a component reported; unknown names are ignored.
    pub fn component_counted(&self, name: &str) {
        match name {
            "too-many-checks" => self.throttled("too_many_checks"),
            "too-many-codes" => self.throttled("too_many_codes"),
            _ => {}
        }
    }

    pub fn ephemeral_error(&self) {
        self.ephemeral_errors.inc();
    }

    pub fn mail_sent(&self, smtp: Duration, since_queued: Duration) {
        self.mail_sent.inc();
        self.mail_smtp_seconds.observe(smtp.as_secs_f64());
        self.mail_delivery_seconds.observe(since_queued.as_secs_f64());
    }

    pub fn mail_failed(&self, permanent: bool, smtp: Duration) {
        self.mail_failed.get_or_create(&KindLabels { kind: if permanent { "permanent" } else { "temporary" } }).inc();
        self.mail_smtp_seconds.observe(smtp.as_secs_f64());
    }

    /// What one `apply` of a component meant, once it ended with `result` (see [`Tally`]).
    pub fn applied(&self, tally: &Tally, result: &Result<(), StoreError>) {
        match result {
            Ok(()) => {
                for &kind in &tally.account {
                    self.account_events.get_or_create(&KindLabels { kind }).inc();
                }
                for &kind in &tally.auth {
                    self.auth_checks.get_or_create(&KindLabels { kind }).inc();
                }
            }
            Err(StoreError::Throttled(_)) => {
                if let Some(kind) = tally.throttle {
                    self.throttled(kind);
                    if kind == "auth_delay" {
                        self.auth_checks.get_or_create(&KindLabels { kind: "delayed" }).inc();
                    }
                }
            }
            Err(StoreError::Locked) if tally.throttle == Some("auth_delay") => {
                self.auth_checks.get_or_create(&KindLabels { kind: "locked" }).inc();
            }
            Err(_) => {}
        }
    }

    /// The outbox as the database has it now (`now` in ms).
    pub fn set_outbox(&self, summary: &gpt_user_sql::operator::OutboxSummary, now: i64) {
        for (state, n) in [("pending", summary.pending), ("failed", summary.failed), ("sent", summary.sent), ("dead", summary.dead)] {
            self.outbox.get_or_create(&StateLabels { state }).set(n);
        }
        let age = summary.oldest_live_queued_at.map_or(0.0, |queued| (now - queued).max(0) as f64 / 1000.0);
        self.outbox_oldest_age_seconds.set(age);
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String does not fail");
        out
    }
}

/// What an `apply` means for the metrics, taken from its operations before they are applied:
/// the account events and Auth_Check outcomes it records if it commits, and the kind of the
/// operation that refuses it if it is throttled (a list holds at most one that can).
#[derive(Debug, Default)]
pub struct Tally {
    account: Vec<&'static str>,
    auth: Vec<&'static str>,
    throttle: Option<&'static str>,
}

impl Tally {
    pub fn of(ops: &[Op]) -> Self {
        let mut tally = Self::default();
        for op in ops {
            match op {
                Op::InsertUser(_) => tally.account.push("signup"),
                Op::ReplacePending(_) => tally.account.push("signup_replaced"),
                Op::Activate(..) => tally.account.push("verification"),
                Op::UpdateProfile(p) if p.passphrase_hash.is_some() => tally.account.push("passphrase_change"),
                Op::UpdateProfile(_) => tally.account.push("profile_save"),
                Op::StartEmailChange(_) => tally.account.push("email_change_started"),
                Op::ChangeEmail(..) => tally.account.push("email_change_confirmed"),
                Op::CountAuthAttempt(_) => {
                    tally.auth.push("attempt");
                    tally.throttle.get_or_insert("auth_delay");
                }
                Op::ResetAuthFailures(_) => tally.auth.push("success"),
                Op::NotifyLock(_) => tally.auth.push("lock"),
                Op::CheckSendLimit(_) => {
                    tally.throttle.get_or_insert("send_limit");
                }
                Op::CheckSignupCap(_) => {
                    tally.throttle.get_or_insert("signup_cap");
                }
                Op::CheckRegistrationCap(_) => {
                    tally.throttle.get_or_insert("registration_cap");
                }
                Op::InsertOauthGrant(_) => tally.account.push("oauth_authorized"),
                _ => {}
            }
        }
        tally
    }
}

/// One of what a gauge counts (an open connection, an instance in use), until dropped.
pub struct Held(Gauge);

impl Held {
    fn one_of(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Serves `GET /metrics` on the metrics listener: the outbox is read from the database first,
/// then every metric is written out. Anything else is `404` (`405` for another method).
pub struct Exporter {
    pub metrics: Arc<Metrics>,
    pub store: crate::adapters::store::SqlStore,
    pub clock: crate::clock::Clock,
}

impl Exporter {
    pub async fn serve(self, listener: tokio::net::TcpListener, stop: Arc<tokio::sync::Notify>) {
        let exporter = Arc::new(self);
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = stop.notified() => return,
            };
            let exporter = exporter.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let exporter = exporter.clone();
                    async move { Ok::<_, std::convert::Infallible>(exporter.answer(&req).await) }
                });
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(Duration::from_secs(10));
                let _ = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
            });
        }
    }

    async fn answer<B>(&self, req: &hyper::Request<B>) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
        let text = |status: u16, body: String| {
            hyper::Response::builder()
                .status(status)
                .header("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
                .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                .expect("a valid response")
        };
        if req.uri().path() != "/metrics" {
            return text(404, "only /metrics is served here\n".into());
        }
        if req.method() != hyper::Method::GET {
            let mut answer = text(405, "GET /metrics\n".into());
            answer.headers_mut().insert(hyper::header::ALLOW, hyper::header::HeaderValue::from_static("GET"));
            return answer;
        }
        match self.store.outbox_summary().await {
            Ok(summary) => self.metrics.set_outbox(&summary, self.clock.now_ms()),
            // The outbox gauges keep their last values; the failure is a log line, not a gap.
            Err(e) => tracing::warn!(error = %e, "metrics: cannot read the outbox"),
        }
        text(200, self.metrics.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_component_reports_is_counted_by_known_names_only() {
        let m = Metrics::new();
        m.component_observed("argon2", 0.05);
        m.component_observed("argon2", f64::NAN);
        m.component_observed("made-up", 1.0);
        m.component_counted("too-many-checks");
        m.component_counted("too-many-codes");
        m.component_counted("made-up");
        let text = m.encode();
        assert!(text.contains("gpt_user_argon2_seconds_count 1\n"), "{text}");
        assert!(text.contains("gpt_user_throttled_total{kind=\"too_many_checks\"} 1\n"), "{text}");
        assert!(text.contains("gpt_user_throttled_total{kind=\"too_many_codes\"} 1\n"), "{text}");
        assert!(!text.contains("made-up") && !text.contains("made_up"), "{text}");
    }
}
