use std::cell::Cell;

use serde_json::{Value, json};

use super::*;
use crate::memory::{MemoryEphemeral, MemoryStore};
use crate::ports::{self, Message, UserStatus};

pub(super) struct FakeL10n;

impl L10n for FakeL10n {
    fn negotiate(&self, requested: &str) -> String {
        if requested.starts_with("ru") { "ru".into() } else { "en".into() }
    }
    fn format(&self, locale: &str, id: &str, args: &[(&str, &str)]) -> String {
        let args: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{locale}:{id}({})", args.join(","))
    }
    fn render_email(&self, locale: &str, kind: &str, to: &str, args: &[(&str, &str)]) -> Result<Message, String> {
        let text = self.format(locale, kind, args);
        Ok(Message { to: to.into(), kind: kind.into(), subject: kind.into(), html: text.clone(), text })
    }
}

pub(super) struct TestEnv {
    pub(super) now: Cell<i64>,
    counter: Cell<u64>,
}

impl Env for TestEnv {
    fn now(&self) -> i64 {
        self.now.get()
    }
    fn fill_random(&self, buf: &mut [u8]) {
        for b in buf {
            // splitmix64: deterministic, no short cycles.
            let mut z = self.counter.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
            self.counter.set(z);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            *b = (z ^ (z >> 31)) as u8;
        }
    }
}

/// The documents outbound HTTPS would find, by URL, with how often each was fetched.
#[derive(Default)]
pub(super) struct FakeFetch {
    pub(super) documents: std::cell::RefCell<std::collections::HashMap<String, Result<Vec<u8>, crate::ports::FetchError>>>,
    pub(super) fetched: Cell<u32>,
}

impl crate::ports::Fetch for FakeFetch {
    fn get_json<'a>(&'a self, url: &'a str, max_bytes: usize, _: u32) -> crate::ports::Fetching<'a> {
        self.fetched.set(self.fetched.get() + 1);
        let found = self.documents.borrow().get(url).cloned();
        Box::pin(std::future::ready(match found {
            Some(Ok(body)) if body.len() > max_bytes => Err(crate::ports::FetchError::Failed("too large".into())),
            Some(found) => found,
            None => Err(crate::ports::FetchError::Failed("404".into())),
        }))
    }
}

/// A store, a clock and settings; requests go to the route table that serves their path.
pub(super) struct World {
    pub(super) store: MemoryStore,
    pub(super) ephemeral: MemoryEphemeral,
    pub(super) fetch: FakeFetch,
    pub(super) env: TestEnv,
    pub(super) settings: Settings,
}

impl World {
    pub(super) fn new() -> Self {
        Self { store: MemoryStore::default(), ephemeral: MemoryEphemeral::default(), fetch: FakeFetch::default(), env: TestEnv { now: Cell::new(1_700_000_000_000), counter: Cell::new(1) }, settings: Settings { dev: true, ..Settings::default() } }
    }

    pub(super) fn call(&self, method: &str, path: &str, body: Value) -> Response {
        let req = Request {
            method: method.into(),
            path: path.into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&body).unwrap(),
            body_too_large: false, query: String::new(),
        };
        self.send(&req)
    }

    pub(super) fn send(&self, req: &Request) -> Response {
        self.send_to(&self.store, req)
    }

    /// Like [`World::send`], with another store in front of the world's.
    pub(super) fn send_to(&self, store: &dyn Store, req: &Request) -> Response {
        self.send_then(store, req, |_| {})
    }

    /// Like [`World::send_to`], with `answered` called on the answer before the deferred work
    /// runs (what the client sees when it has the answer).
    pub(super) fn send_then(&self, store: &dyn Store, req: &Request, answered: impl FnOnce(&Response)) -> Response {
        let ctx = Ctx { store, ephemeral: &self.ephemeral, fetch: &self.fetch, l10n: &FakeL10n, env: &self.env, settings: &self.settings, after: After::default(), origin: Default::default(), metrics: &crate::ports::NoMetrics };
        let routes = COMPONENT_ROUTES.iter().find(|t| t.iter().any(|r| r.path == req.path)).copied().unwrap_or(SIGNUP_ROUTES);
        let response = respond(routes, &ctx, &mut req.clone(), |_| {});
        answered(&response);
        ctx.run_deferred();
        response
    }

    pub(super) fn sign_up(&self, email: &str) -> Response {
        self.call("POST", "/api/signup/init", json!({"email": email, "consent": true, "locale": "en", "passphrase": "correct horse battery staple"}))
    }

    pub(super) fn advance(&self, ms: i64) {
        self.env.now.set(self.env.now.get() + ms);
    }

    /// The token of the last verification link in the outbox.
    pub(super) fn last_token(&self) -> String {
        let state = self.store.state.borrow();
        let text = &state.outbox.last().unwrap().1.text;
        text.split("#token=").nth(1).unwrap().split([',', ')', '&']).next().unwrap().to_owned()
    }
}

#[test]
fn signup_creates_a_pending_user_and_queues_the_link_with_the_pin() {
    let w = World::new();
    let r = w.sign_up(" Ann@Example.com ");
    assert_eq!(r.status, 201, "{:?}", r.json_body());
    let body = r.json_body();
    let pin = body["pin"].as_str().unwrap();
    assert_eq!(pin.len(), 6);
    assert_eq!(body["status"], "pending");
    let state = w.store.state.borrow();
    assert_eq!(state.users[0].email, "ann@example.com");
    assert_eq!(state.users[0].status, UserStatus::Pending);
    assert!(state.users[0].passphrase_hash.starts_with("$argon2id$"));
    assert_eq!(state.secrets.len(), 1);
    let mail = &state.outbox[0].1;
    assert!(mail.text.contains(&format!("pin={pin}")));
    assert!(mail.text.contains("link=http://127.0.0.1:3000/signup/verify#token="));
}

#[test]
fn verify_activates_once_and_then_answers_410() {
    let w = World::new();
    w.sign_up("ann@example.com");
    let token = w.last_token();
    let r = w.call("POST", "/api/signup/verify", json!({"token": token}));
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    assert_eq!(w.store.state.borrow().users[0].status, UserStatus::Active);
    let again = w.call("POST", "/api/signup/verify", json!({"token": token}));
    assert_eq!(again.status, 410);
    assert_eq!(again.json_body()["code"], "INVALID_TOKEN");
}

#[test]
fn an_expired_verification_token_is_gone() {
    let w = World::new();
    w.sign_up("ann@example.com");
    let token = w.last_token();
    w.advance(24 * 3600 * 1000 + 1);
    assert_eq!(w.call("POST", "/api/signup/verify", json!({"token": token})).status, 410);
    assert_eq!(w.store.state.borrow().users[0].status, UserStatus::Pending);
}

#[test]
fn a_second_signup_of_a_pending_address_replaces_it_with_a_new_pin() {
    let w = World::new();
    let first = w.sign_up("ann@example.com").json_body();
    let old_token = w.last_token();
    let old_hash = w.store.state.borrow().users[0].passphrase_hash.clone();
    w.advance(61_000);
    let second = w.call("POST", "/api/signup/init", json!({"email": "ann@example.com", "consent": true, "locale": "ru", "passphrase": "another long passphrase"}));
    assert_eq!(second.status, 201);
    let new_pin = second.json_body()["pin"].as_str().unwrap().to_owned();
    assert_ne!(new_pin, first["pin"].as_str().unwrap(), "the earlier caller's PIN is not handed on");
    let state = w.store.state.borrow().clone();
    assert_eq!(state.users.len(), 1);
    assert_eq!(state.users[0].pin, new_pin);
    assert_eq!(state.users[0].locale, "ru");
    assert_ne!(state.users[0].passphrase_hash, old_hash);
    assert_eq!(state.secrets.len(), 1, "the old link is revoked");
    let mail = &state.outbox.last().unwrap().1;
    assert!(mail.text.contains(&format!("pin={new_pin}")), "the email shows the new PIN");
    assert!(mail.text.contains(&format!("&pin={new_pin}")), "the link carries the PIN it belongs to");
    assert_eq!(w.call("POST", "/api/signup/verify", json!({"token": old_token})).status, 410);
    let token = w.last_token();
    let old_pin = first["pin"].as_str().unwrap();
    assert_eq!(w.call("POST", "/api/signup/verify", json!({"token": token, "pin": old_pin})).status, 410, "a PIN that is not the token's");
    assert_eq!(w.call("POST", "/api/signup/verify", json!({"token": token, "pin": new_pin})).status, 200);
}

#[test]
fn signup_of_an_active_address_is_a_conflict_with_the_recovery_url() {
    let w = World::new();
    w.sign_up("ann@example.com");
    w.call("POST", "/api/signup/verify", json!({"token": w.last_token()}));
    let r = w.sign_up("ann@example.com");
    assert_eq!(r.status, 409);
    assert_eq!(r.json_body()["code"], "EMAIL_ALREADY_REGISTERED");
    assert_eq!(r.json_body()["recovery_url"], "http://127.0.0.1:3000/profile");
}

#[test]
fn conceal_mode_answers_alike_and_emails_the_owner() {
    let mut w = World::new();
    w.settings.conceal_accounts = true;
    let new = w.sign_up("ann@example.com");
    assert_eq!(new.status, 200);
    assert!(new.json_body().get("pin").is_none());
    w.call("POST", "/api/signup/verify", json!({"token": w.last_token()}));
    let existing = w.sign_up("ann@example.com");
    assert_eq!(existing.status, 200);
    assert_eq!(existing.json_body()["status"], new.json_body()["status"]);
    assert_eq!(w.store.state.borrow().outbox.last().unwrap().1.kind, "signup-existing");
}

#[test]
fn consent_and_fields_are_checked_with_the_field_named() {
    let w = World::new();
    let base = json!({"email": "ann@example.com", "consent": true, "locale": "en", "passphrase": "correct horse battery staple"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        w.call("POST", "/api/signup/init", b)
    };
    let r = with("consent", json!(false));
    assert_eq!((r.status, r.json_body()["code"].as_str()), (422, Some("CONSENT_REQUIRED")));
    for (field, value) in [("email", json!("nope")), ("locale", json!("xx")), ("passphrase", json!("short")), ("email", json!(42))] {
        let r = with(field, value);
        assert_eq!(r.status, 422);
        assert_eq!(r.json_body()["code"], "INVALID_INPUT");
        assert_eq!(r.json_body()["field"], field);
    }
    let r = with("extra", json!(1));
    assert_eq!(r.json_body()["field"], "extra");
    assert!(w.store.state.borrow().users.is_empty());
}

#[test]
fn a_second_email_within_a_minute_is_throttled_and_nothing_is_written() {
    let w = World::new();
    w.sign_up("ann@example.com");
    let before = w.store.state.borrow().clone();
    let r = w.sign_up("ann@example.com");
    assert_eq!(r.status, 429);
    assert!(r.headers.iter().any(|(k, v)| k == "retry-after" && v == "60"));
    let after = w.store.state.borrow().clone();
    assert_eq!(after.users, before.users);
    assert_eq!(after.secrets, before.secrets);
}

#[test]
fn send_limit_allows_ten_an_hour() {
    let now = 10_000_000;
    let wait = |recent: &[i64]| ports::send_limit_wait(now, 60_000, 10, 3_600_000, recent);
    assert_eq!(wait(&[]), None);
    assert_eq!(wait(&[now - 30_000]), Some(30));
    let ten: Vec<i64> = (0..10).map(|i| now - 3_000_000 + i * 100_000).collect();
    assert_eq!(wait(&ten), Some(600));
    assert_eq!(wait(&ten[1..]), None);
    assert_eq!(wait(&[now - 3_700_000]), None, "older than the window");
}

fn sign_up_request(authorization: Option<&str>) -> Request {
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    headers.extend(authorization.map(|a| ("authorization".to_owned(), a.to_owned())));
    Request {
        method: "POST".into(),
        path: "/api/signup/init".into(),
        headers,
        body: br#"{"email":"ann@example.com","consent":true,"locale":"en","passphrase":"correct horse battery staple"}"#.to_vec(),
        body_too_large: false, query: String::new(),
    }
}

#[test]
fn gpt_actions_need_a_configured_key() {
    let mut w = World::new();
    w.settings.api_keys = vec!["k1".into(), "k2-longer".into()];
    for wrong in [None, Some("Bearer k"), Some("Bearer k1x"), Some("Basic k1"), Some("Bearer "), Some("k1")] {
        let r = w.send(&sign_up_request(wrong));
        assert_eq!(r.status, 401, "{wrong:?}");
        assert_eq!(r.json_body()["code"], "API_KEY_REQUIRED");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    assert!(w.store.state.borrow().users.is_empty());
    assert_eq!(w.send(&sign_up_request(Some("bearer k2-longer"))).status, 201, "the scheme is case-insensitive");
}

#[test]
fn without_a_key_gpt_actions_are_closed_outside_dev_mode() {
    let mut w = World::new();
    w.settings.dev = false;
    let r = w.send(&sign_up_request(None));
    assert_eq!(r.status, 403);
    assert_eq!(r.json_body()["code"], "API_KEY_NOT_CONFIGURED");
    assert!(w.store.state.borrow().users.is_empty());
    assert_eq!(w.call("GET", "/healthz", Value::Null).status, 200, "public routes stay open");
    w.settings.dev = true;
    assert_eq!(w.send(&sign_up_request(None)).status, 201);
}

#[test]
fn the_head_is_judged_before_the_body_is_read() {
    let mut w = World::new();
    w.settings.api_keys = vec!["k1".into()];
    let ctx = Ctx { store: &w.store, ephemeral: &w.ephemeral, fetch: &w.fetch, l10n: &FakeL10n, env: &w.env, settings: &w.settings, after: After::default(), origin: Default::default(), metrics: &crate::ports::NoMetrics };
    // The body "arrives" only if the head passed; a refused head never asks for it.
    let answer = |head: &mut Request| {
        let mut read = false;
        let body = sign_up_request(None).body;
        let r = respond(SIGNUP_ROUTES, &ctx, head, |req| {
            read = true;
            req.body = body;
        });
        (r.status, read)
    };
    let mut head = sign_up_request(None);
    head.body.clear();
    assert_eq!(answer(&mut head.clone()), (401, false), "no key: answered from the head");
    head.headers.push(("authorization".into(), "Bearer k1".into()));
    let mut too_large = head.clone();
    too_large.headers.push(("content-length".into(), (MAX_BODY + 1).to_string()));
    assert_eq!(answer(&mut too_large), (413, false), "declared too large");
    head.headers.push(("content-length".into(), "120".into()));
    assert_eq!(answer(&mut head), (201, true), "a good head lets the body be read");
}

#[test]
fn a_wrong_method_is_405_with_allow() {
    let w = World::new();
    let r = w.call("GET", "/api/signup/init", Value::Null);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    let r = w.call("DELETE", "/privacy", Value::Null);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    assert_eq!(w.call("GET", "/nothing", Value::Null).status, 404);
}

#[test]
fn conceal_mode_answers_every_outcome_alike_even_when_throttled() {
    let mut w = World::new();
    w.settings.conceal_accounts = true;
    let (new, pending, active, blocked) = ("new@example.com", "pending@example.com", "active@example.com", "blocked@example.com");
    for e in [pending, active, blocked] {
        w.sign_up(e);
    }
    w.call("POST", "/api/signup/verify", json!({"token": w.last_token()}));
    w.store.state.borrow_mut().users.iter_mut().filter(|u| u.email == active).for_each(|u| u.status = UserStatus::Active);
    w.store.state.borrow_mut().users.iter_mut().filter(|u| u.email == blocked).for_each(|u| u.status = UserStatus::Blocked);
    w.advance(61_000);
    let mut answers = Vec::new();
    for round in 0..2 {
        // Round 1 repeats within a minute: every address is throttled now.
        for e in [new, pending, active, blocked] {
            let r = w.sign_up(e);
            let mut body = r.json_body();
            body["message"] = json!(body["message"].as_str().unwrap().replace(e, "EMAIL"));
            answers.push((round, e, r.status, body));
        }
    }
    let first = &answers[0];
    for a in &answers {
        assert_eq!((a.2, &a.3), (first.2, &first.3), "{} (round {}) answers like a new address", a.1, a.0);
    }
    assert_eq!(first.2, 200);
}

#[test]
fn browser_calls_from_another_origin_are_refused() {
    let w = World::new();
    let req = Request {
        method: "POST".into(),
        path: "/api/signup/verify".into(),
        headers: vec![("content-type".into(), "application/json".into()), ("origin".into(), "https://evil.example".into()), ("host".into(), "127.0.0.1:3000".into())],
        body: br#"{"token":"x"}"#.to_vec(),
        body_too_large: false, query: String::new(),
    };
    assert_eq!(w.send(&req).status, 403);
    assert_eq!(w.send(&req).json_body()["code"], "FORBIDDEN_ORIGIN");
}

#[test]
fn in_dev_mode_gpt_actions_refuse_a_page_of_another_site_even_when_its_name_points_here() {
    let mut w = World::new();
    let with_origin = |origin: &str, host: &str| {
        let mut req = sign_up_request(None);
        req.headers.push(("origin".into(), origin.into()));
        req.headers.push(("host".into(), host.into()));
        req
    };
    // DNS rebinding: the page's own name, resolved to 127.0.0.1, is its Origin and its Host.
    for req in [with_origin("http://rebind.example:3000", "rebind.example:3000"), with_origin("https://evil.example", "127.0.0.1:3000")] {
        let r = w.send(&req);
        assert_eq!((r.status, r.json_body()["code"].as_str()), (403, Some("FORBIDDEN_ORIGIN")));
    }
    assert!(w.store.state.borrow().users.is_empty(), "nothing was done");
    assert_eq!(w.send(&with_origin("http://127.0.0.1:3000/", "127.0.0.1:3000")).status, 201, "the configured origin passes");
    w.advance(61_000);
    assert_eq!(w.send(&sign_up_request(None)).status, 201, "no Origin: not a browser page");
    // With a key and outside dev mode, a GPT action is judged by its key alone.
    w.settings.dev = false;
    w.settings.api_keys = vec!["k1".into()];
    let mut keyed = with_origin("https://evil.example", "evil.example");
    keyed.headers.push(("authorization".into(), "Bearer k1".into()));
    assert_ne!(w.send(&keyed).status, 403);
}

#[test]
fn gpt_paths_and_the_hash_of_a_configured_key_are_known_to_the_runtimes() {
    for path in ["/api/signup/init", "/api/profile/init", "/api/auth/check", "/mcp"] {
        assert!(is_gpt_path(path), "{path}");
    }
    for path in ["/api/signup/verify", "/signup/verify", "/api/profile/save", "/profile", "/healthz", "/api/email-change/start"] {
        assert!(!is_gpt_path(path), "{path}");
    }
    let keys = vec!["k1".to_owned(), "k2".to_owned()];
    let k1 = configured_key_hash(&keys, Some("Bearer k1")).expect("a configured key");
    assert_eq!(configured_key_hash(&keys, Some("bearer  k1 ")), Some(k1));
    assert_ne!(configured_key_hash(&keys, Some("Bearer k2")), Some(k1));
    assert_eq!(k1.as_slice(), Sha256::digest(b"k1").as_slice(), "the hash, not the key");
    for other in [None, Some("Bearer k3"), Some("Basic k1"), Some("k1")] {
        assert_eq!(configured_key_hash(&keys, other), None, "{other:?}");
    }
}

#[test]
fn a_store_outage_is_503_not_500() {
    let w = World::new();
    w.store.down.set(true);
    assert_eq!(w.sign_up("ann@example.com").status, 503);
}

#[test]
fn the_verify_page_carries_a_strict_csp() {
    let w = World::new();
    let r = w.call("GET", "/signup/verify", Value::Null);
    assert_eq!(r.status, 200);
    let csp = &r.headers.iter().find(|(k, _)| k == "content-security-policy").unwrap().1;
    assert!(csp.starts_with("default-src 'none'; script-src 'sha256-"));
    assert!(r.headers.iter().any(|(k, v)| k == "referrer-policy" && v == "no-referrer"));
}

#[test]
fn a_request_keeps_a_well_formed_id_of_its_caller_and_gets_a_random_one_otherwise() {
    let env = TestEnv { now: Cell::new(0), counter: Cell::new(1) };
    let with = |id: &str| Request { method: "GET".into(), path: "/healthz".into(), headers: vec![(REQUEST_ID.into(), id.into())], body: vec![], body_too_large: false, query: String::new() };
    assert_eq!(request_id(&with("lb-7f3a:42_x.y"), &env), "lb-7f3a:42_x.y");
    let none = Request { headers: vec![], ..with("") };
    let made = request_id(&none, &env);
    assert!(made.len() == 32 && made.bytes().all(|b| b.is_ascii_hexdigit()), "{made}");
    assert_ne!(request_id(&none, &env), made, "a new one each time");
    for bad in ["", "has space", "quote\"", &"x".repeat(65), "new\nline"] {
        let id = request_id(&with(bad), &env);
        assert_ne!(id, bad);
        assert_eq!(id.len(), 32, "{bad:?} is replaced");
    }
}

#[test]
fn only_a_get_or_head_that_announces_no_body_is_answered_without_reading_one() {
    let req = |method: &str, headers: &[(&str, &str)]| Request {
        method: method.into(),
        headers: headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(),
        ..Request::default()
    };
    assert!(!req("GET", &[]).may_have_body());
    assert!(!req("HEAD", &[]).may_have_body());
    assert!(!req("GET", &[("content-length", "0")]).may_have_body());
    assert!(!req("GET", &[("content-length", "00")]).may_have_body(), "a zero is a zero however written");
    assert!(req("GET", &[("content-length", "12")]).may_have_body(), "a GET with a body is read (and lingered over)");
    assert!(req("GET", &[("content-length", "x")]).may_have_body(), "a length we cannot read is not taken for none");
    assert!(req("GET", &[("transfer-encoding", "chunked")]).may_have_body());
    assert!(req("POST", &[]).may_have_body(), "a POST is read even when its head announces nothing (HTTP/2 needs no length)");
    assert!(req("POST", &[("content-length", "0")]).may_have_body());
}
