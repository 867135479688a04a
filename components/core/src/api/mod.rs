//! HTTP-shaped entry points: a plain [`Request`] in, a plain [`Response`] out.
//! Components translate `wasi:http` to these; tests call them directly.
//!
//! Every component declares its routes as a table of [`Route`]s. A request is answered in two
//! phases so that nothing is read from a client that may not send it: [`respond`] judges the head
//! (route, method, API key, origin, content type, declared length) and only if it passes asks
//! the caller to read the body, then runs the route's handler. Work whose time would tell the
//! caller something (which account an address has) a handler defers ([`Ctx::defer`]) until the
//! answer is written: the caller of [`respond`] runs it with [`Ctx::run_deferred`].

mod after;
pub mod auth_check;
pub mod email_change;
mod error;
pub mod json;
pub mod mail;
pub mod mcp;
pub mod oauth;
pub mod openapi;
mod pages;
pub(crate) mod profile_init;
mod profile_load;
mod profile_save;
pub(crate) mod signup_init;
mod signup_verify;
pub mod time;

pub use after::After;
pub use error::ApiError;

use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ports::{Env, Ephemeral, L10n, Store};
use crate::settings::{InvalidSetting, Settings};

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY: usize = 64 * 1024;

/// A request body nobody read to its end (a `413`, an answer from the head alone) is still taken
/// in and discarded after the answer, for this long and up to [`LINGER_BYTES`] — nginx's
/// lingering close: closing a connection with unread data resets it, and a client still sending
/// would see the reset instead of the answer. The guest does it after its response (on Spin too),
/// the host for its own answers.
pub const LINGER_MS: u64 = 2000;
pub const LINGER_BYTES: u64 = 64 << 20;

/// What a flow sees of an HTTP request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// The query string, without `?` (empty if none).
    pub query: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body was cut at [`MAX_BODY`].
    pub body_too_large: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether a runtime must read (or linger over) this request's body: `false` only for a
    /// `GET` or `HEAD` whose head announces none — no `Transfer-Encoding` and no `Content-Length`
    /// other than 0 (RFC 9112 §6.3) — which is nearly every read. No route reads the body of a
    /// `GET`; any other method's body is read, announced or not.
    pub fn may_have_body(&self) -> bool {
        let announced = self.header("transfer-encoding").is_some() || self.header("content-length").is_some_and(|_| self.content_length() != Some(0));
        announced || !matches!(self.method.as_str(), "GET" | "HEAD")
    }

    /// The length the head declares; `None` if it declares none or one that is not a number.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.trim().parse().ok())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: &Value) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type".into(), "application/json; charset=utf-8".into()),
                ("cache-control".into(), "no-store".into()),
            ],
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    /// The JSON body, for tests.
    pub fn json_body(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The ports and settings one request runs with.
pub struct Ctx<'a> {
    pub store: &'a dyn Store,
    pub ephemeral: &'a dyn Ephemeral,
    /// Outbound HTTPS for client ID metadata documents (SPEC §2.5).
    pub fetch: &'a dyn crate::ports::Fetch,
    pub l10n: &'a dyn L10n,
    pub env: &'a dyn Env,
    pub settings: &'a Settings,
    /// Work for after the answer; empty unless a handler deferred some.
    pub after: After,
    /// Who the request comes from, for its audit events (set by [`respond`]).
    pub origin: crate::audit::RequestOrigin,
    pub metrics: &'a dyn crate::ports::Metrics,
}

impl Ctx<'_> {
    /// Runs `work` (one Argon2id hash or check) and reports its time as `argon2`.
    pub fn argon2<T>(&self, work: impl FnOnce() -> T) -> T {
        let started = self.env.monotonic_ns();
        let out = work();
        self.metrics.observe("argon2", self.env.monotonic_ns().saturating_sub(started) as f64 / 1e9);
        out
    }

    /// An audit event of this request, now, about the account `user_id` with address `email`
    /// (see [`crate::audit`]): an operation for the `apply` of the change it records.
    pub fn event(&self, kind: crate::audit::Kind, user_id: &str, email: &str, detail: Option<String>) -> crate::ports::Op {
        crate::audit::event(&self.origin.get(), self.env.now(), kind, user_id, email, detail)
    }
}

/// The header a runtime gives the client's address in (`IP:port`): Spin's name, which our host
/// sets too (replacing a client's).
pub const CLIENT_ADDR: &str = "spin-client-addr";

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// A GPT action: JSON, and the service API key (outside dev mode a key must be configured).
    Gpt,
    /// The browser API: JSON, same origin.
    Browser,
    /// Pages and documents anyone may GET, and the OAuth endpoints (which check their own input).
    Public,
    /// A protected resource (`/mcp`): JSON, and the service key (as [`Audience::Gpt`]) or a
    /// person's OAuth access token (SPEC §2.5), which the handler resolves.
    Mcp,
    /// The person's GPT actions (SPEC §2.5): a person's OAuth access token, which the handler
    /// resolves; JSON for a request with a body.
    Person,
}

/// An error with the locale to word it in.
pub type Failure = (ApiError, String);

/// A step of a flow: the request (body read) and the negotiated locale.
pub type Handler = fn(&Ctx<'_>, &Request, &str) -> Result<Response, Failure>;

/// A GPT action's operation object for `/openapi.json`.
pub type Operation = fn(&Settings) -> Value;

/// A GPT action: where it is served, its contract in `/openapi.json` and what calling it does
/// (the MCP tool annotations), next to its handler.
pub struct Action {
    pub method: &'static str,
    pub path: &'static str,
    pub operation: Operation,
    pub effects: Effects,
}

/// What calling an action does to the world, as an MCP client reads it (`readOnlyHint`,
/// `destructiveHint`, `idempotentHint`): clients ask the user before calls that are not read-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effects {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
}

/// Creates an account and sends an email; for a pending address it replaces the earlier
/// registration (passphrase, PIN, links): destructive, and each call issues a new PIN and link.
pub const SIGNUP_INIT: Action = Action {
    method: "POST",
    path: "/api/signup/init",
    operation: signup_init::operation,
    effects: Effects { read_only: false, destructive: true, idempotent: false },
};
/// Issues a profile link and emails it to the account's own address; overwrites nothing, but
/// each call sends another email (throttled).
pub const UPDATE_INIT: Action = Action {
    method: "POST",
    path: "/api/profile/init",
    operation: profile_init::operation,
    effects: Effects { read_only: false, destructive: false, idempotent: false },
};
/// Changes no account, but counts every failure on the PIN (delay after 5, lock after 100):
/// not read-only, not idempotent.
pub const AUTH_CHECK: Action = Action {
    method: "POST",
    path: "/api/auth/check",
    operation: auth_check::operation,
    effects: Effects { read_only: false, destructive: false, idempotent: false },
};

/// Every GPT action of every component: what `/openapi.json` describes. Actions, not route
/// tables, so the component that serves the document does not link the other components' handlers.
pub const GPT_ACTIONS: &[Action] = &[SIGNUP_INIT, UPDATE_INIT, AUTH_CHECK];

/// One entry of a component's route table.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub audience: Audience,
    pub handler: Handler,
}

impl Route {
    /// The route of a GPT action (API key, JSON).
    pub const fn action(action: &Action, handler: Handler) -> Self {
        Self { method: action.method, path: action.path, audience: Audience::Gpt, handler }
    }
}

/// The route table of every flow component (tests check them against [`GPT_ACTIONS`] and `spin.toml`).
pub const COMPONENT_ROUTES: &[&[Route]] = &[SIGNUP_ROUTES, PROFILE_ROUTES, EMAIL_CHANGE_ROUTES, AUTH_ROUTES, MCP_ROUTES, OAUTH_ROUTES];

const SIGNUP_INIT_ROUTE: Route = Route::action(&SIGNUP_INIT, signup_init::handle);
const UPDATE_INIT_ROUTE: Route = Route::action(&UPDATE_INIT, profile_init::handle);
const AUTH_CHECK_ROUTE: Route = Route::action(&AUTH_CHECK, auth_check::handle);

/// The route of every GPT action: what `tools/call` of the MCP endpoint runs (through [`respond`],
/// as if the action had been called over HTTP).
pub const GPT_ROUTES: &[Route] = &[SIGNUP_INIT_ROUTE, UPDATE_INIT_ROUTE, AUTH_CHECK_ROUTE];

/// Routes of the sign-up component (it also serves the documents every deployment has).
pub const SIGNUP_ROUTES: &[Route] = &[
    SIGNUP_INIT_ROUTE,
    Route { method: "POST", path: "/api/signup/verify", audience: Audience::Browser, handler: signup_verify::handle },
    Route { method: "GET", path: "/signup/verify", audience: Audience::Public, handler: pages::verify },
    Route { method: "GET", path: "/privacy", audience: Audience::Public, handler: pages::privacy },
    Route { method: "GET", path: "/openapi.json", audience: Audience::Public, handler: openapi::document },
    Route { method: "GET", path: "/healthz", audience: Audience::Public, handler: healthz },
];

/// Routes of the profile component: edit by emailed link (SPEC §2.2).
pub const PROFILE_ROUTES: &[Route] = &[
    UPDATE_INIT_ROUTE,
    Route { method: "POST", path: "/api/profile/request", audience: Audience::Browser, handler: profile_init::request },
    Route { method: "POST", path: "/api/profile/load", audience: Audience::Browser, handler: profile_load::handle },
    Route { method: "POST", path: "/api/profile/save", audience: Audience::Browser, handler: profile_save::handle },
    Route { method: "GET", path: "/profile", audience: Audience::Public, handler: pages::profile },
];

/// Routes of the email-change component (SPEC §2.3): the profile page's browser API.
pub const EMAIL_CHANGE_ROUTES: &[Route] = &[
    Route { method: "POST", path: "/api/email-change/start", audience: Audience::Browser, handler: email_change::start },
    Route { method: "POST", path: "/api/email-change/resend", audience: Audience::Browser, handler: email_change::resend },
    Route { method: "POST", path: "/api/email-change/confirm-current", audience: Audience::Browser, handler: email_change::confirm_current },
    Route { method: "POST", path: "/api/email-change/check", audience: Audience::Browser, handler: email_change::check },
    Route { method: "POST", path: "/api/email-change/request-new", audience: Audience::Browser, handler: email_change::request_new },
    Route { method: "POST", path: "/api/email-change/confirm-new", audience: Audience::Browser, handler: email_change::confirm_new },
];

/// Routes of the auth component: Auth_Check (SPEC §2.4); the component also exports the check
/// as `gpt-user:accounts/auth` for components of an embedding application.
pub const AUTH_ROUTES: &[Route] = &[AUTH_CHECK_ROUTE];

/// Routes of the MCP component: the GPT actions as MCP tools. `POST /mcp` is guarded like a GPT
/// action (API key, JSON); its `tools/call` runs [`GPT_ROUTES`], so the component links every
/// action's handler.
pub const MCP_ROUTES: &[Route] = &[Route { method: "POST", path: mcp::PATH, audience: Audience::Mcp, handler: mcp::handle }];

/// Routes of the OAuth component (SPEC §2.5): the authorization server's documents, endpoints,
/// the authorize page and its browser API.
pub const OAUTH_ROUTES: &[Route] = &[
    Route { method: "GET", path: oauth::AS_METADATA_PATH, audience: Audience::Public, handler: oauth::metadata },
    Route { method: "GET", path: oauth::RESOURCE_METADATA_PATH, audience: Audience::Public, handler: oauth::resource_metadata },
    Route { method: "GET", path: oauth::API_RESOURCE_METADATA_PATH, audience: Audience::Public, handler: oauth::api_resource_metadata },
    Route { method: "GET", path: oauth::actions::WHO_AM_I.path, audience: Audience::Person, handler: oauth::actions::who_am_i },
    Route { method: "POST", path: oauth::actions::REQUEST_PROFILE_LINK.path, audience: Audience::Person, handler: oauth::actions::request_profile_link },
    Route { method: "POST", path: "/oauth/register", audience: Audience::Public, handler: oauth::register::handle },
    Route { method: "GET", path: "/oauth/authorize", audience: Audience::Public, handler: oauth::authorize::page },
    Route { method: "POST", path: "/api/oauth/sign-in", audience: Audience::Browser, handler: oauth::authorize::sign_in },
    Route { method: "POST", path: "/api/oauth/sign-up", audience: Audience::Browser, handler: oauth::authorize::sign_up },
    Route { method: "POST", path: "/api/oauth/send-code", audience: Audience::Browser, handler: oauth::authorize::send_code },
    Route { method: "POST", path: "/api/oauth/consent", audience: Audience::Browser, handler: oauth::authorize::consent },
    Route { method: "POST", path: "/oauth/token", audience: Audience::Public, handler: oauth::token::handle },
    Route { method: "POST", path: "/oauth/revoke", audience: Audience::Public, handler: oauth::token::revoke },
];

fn healthz(_: &Ctx<'_>, _: &Request, _: &str) -> Result<Response, Failure> {
    Ok(Response::json(200, &serde_json::json!({"status": "ok"})))
}

/// Routes of the sign-up component for a request whose body is already read (tests); deferred
/// work runs before the answer is returned.
pub fn handle_signup(ctx: &Ctx<'_>, req: &Request) -> Response {
    let response = respond(SIGNUP_ROUTES, ctx, &mut req.clone(), |_| {});
    ctx.run_deferred();
    response
}

/// Answers `req` from `routes`. The head is judged first; `read_body` fills in the body only if
/// it passes, so a caller without a key or with a declared body over [`MAX_BODY`] is answered
/// before a byte of its body is read. The caller writes the answer, then runs the work a
/// handler deferred ([`Ctx::run_deferred`]).
pub fn respond(routes: &[Route], ctx: &Ctx<'_>, req: &mut Request, read_body: impl FnOnce(&mut Request)) -> Response {
    match admit(routes, ctx, req) {
        Ok(admitted) => {
            read_body(req);
            // Its ports answer at once (tests' documents, or no outbound access at all); one that
            // did not would leave the client unknown, not the caller waiting.
            let _ = std::future::Future::poll(std::pin::pin!(admitted.prepare(ctx, req)), &mut std::task::Context::from_waker(std::task::Waker::noop()));
            admitted.answer(ctx, req)
        }
        Err(answer) => answer,
    }
}

/// A request whose head passed ([`admit`]): its body may be read, then [`Admitted::prepare`]d and
/// [`Admitted::answer`]ed.
pub struct Admitted<'r> {
    route: &'r Route,
    locale: String,
}

/// The first half of [`respond`], for a runtime that reads the body asynchronously: finds the
/// route and judges the head (audience, declared length, content type). `Err` is the answer,
/// given without reading the body.
pub fn admit<'r>(routes: &'r [Route], ctx: &Ctx<'_>, req: &Request) -> Result<Admitted<'r>, Response> {
    let locale = negotiate(ctx, req);
    let route = find(routes, req).map_err(|e| finish(e.into_response(ctx, &locale)))?;
    ctx.origin.set(crate::audit::Origin {
        actor: if matches!(route.audience, Audience::Gpt | Audience::Mcp | Audience::Person) { crate::ports::Actor::Chat } else { crate::ports::Actor::Browser },
        client: req.header(CLIENT_ADDR).and_then(|a| a.parse::<std::net::SocketAddr>().ok()).map(|a| a.ip().to_string()),
        request_id: req.header(REQUEST_ID).map(str::to_owned),
    });
    head_guard(ctx, req, route.audience, &locale).map_err(|(e, locale)| finish(e.into_response(ctx, &locale)))?;
    Ok(Admitted { route, locale })
}

impl Admitted<'_> {
    /// What may wait on the network before the answer, awaited by the runtime's async glue while
    /// the instance serves its other requests: the metadata document of the client an OAuth
    /// request names ([`oauth::client::fetch_document`]). The handler finds it cached, or finds
    /// the client unknown; a store that fails here fails the handler too.
    pub async fn prepare(&self, ctx: &Ctx<'_>, req: &Request) {
        if let Some(id) = oauth::client_named(req).filter(|_| !req.body_too_large) {
            let _ = oauth::client::fetch_document(ctx, &id).await;
        }
    }

    /// The second half of [`respond`]: the route's answer to the request, its body read and
    /// [`Admitted::prepare`]d.
    pub fn answer(self, ctx: &Ctx<'_>, req: &Request) -> Response {
        let result = if req.body_too_large { Err((ApiError::PayloadTooLarge, self.locale.clone())) } else { (self.route.handler)(ctx, req, &self.locale) };
        finish(result.unwrap_or_else(|(e, locale)| e.into_response(ctx, &locale)))
    }
}

/// The answer to every request while a variable is set to a value the service cannot use
/// (`ctx` carries default settings then): `503 CONFIG_INVALID` naming the variable.
pub fn refuse_config(ctx: &Ctx<'_>, req: &Request, invalid: &InvalidSetting) -> Response {
    let locale = negotiate(ctx, req);
    finish(ApiError::ConfigInvalid { variable: invalid.variable, accepted: invalid.accepted.clone() }.into_response(ctx, &locale))
}

fn negotiate(ctx: &Ctx<'_>, req: &Request) -> String {
    ctx.l10n.negotiate(req.header("accept-language").unwrap_or(""))
}

/// The route for a request, or 404, or 405 with the methods the path allows.
fn find<'r>(routes: &'r [Route], req: &Request) -> Result<&'r Route, ApiError> {
    let mut allowed: Vec<&str> = Vec::new();
    for route in routes.iter().filter(|r| r.path == req.path) {
        if route.method == req.method || (req.method == "HEAD" && route.method == "GET") {
            return Ok(route);
        }
        allowed.push(route.method);
    }
    if allowed.is_empty() {
        return Err(ApiError::NotFound);
    }
    if allowed.contains(&"GET") {
        allowed.push("HEAD");
    }
    Err(ApiError::MethodNotAllowed { allow: allowed.join(", ") })
}

/// Headers every answer carries.
fn finish(mut response: Response) -> Response {
    response.headers.push(("referrer-policy".into(), "no-referrer".into()));
    response.headers.push(("x-content-type-options".into(), "nosniff".into()));
    response
}

/// The checks that need only the head: the audience's rule, then for requests with a body the
/// declared length and the JSON content type.
fn head_guard(ctx: &Ctx<'_>, req: &Request, audience: Audience, locale: &str) -> Result<(), Failure> {
    let fail = |e| Err((e, locale.to_owned()));
    match audience {
        Audience::Public => return Ok(()),
        Audience::Gpt if ctx.settings.api_keys.is_empty() && !ctx.settings.dev => return fail(ApiError::ApiKeyNotConfigured),
        Audience::Gpt if !ctx.settings.api_keys.is_empty() && !api_key_ok(&ctx.settings.api_keys, req.header("authorization")) => {
            return fail(ApiError::ApiKeyRequired);
        }
        Audience::Browser if !same_origin(ctx.settings, req) => return fail(ApiError::ForbiddenOrigin),
        Audience::Mcp if !(mcp::service_key(ctx, req) || req.header("authorization").and_then(bearer).is_some()) => {
            return fail(oauth::resource::required(ctx, false, oauth::RESOURCE_METADATA_PATH));
        }
        Audience::Person if req.header("authorization").and_then(bearer).is_none() => {
            return fail(oauth::resource::required(ctx, false, oauth::API_RESOURCE_METADATA_PATH));
        }
        // Keyless GPT actions on a developer's machine: a page of another site (one that rebinds
        // its name to 127.0.0.1 included: its `Host` is then its own name) must not drive them.
        Audience::Gpt if ctx.settings.dev && req.header("origin").is_some_and(|o| o.trim_end_matches('/') != ctx.settings.base_url) => {
            return fail(ApiError::ForbiddenOrigin);
        }
        _ => {}
    }
    // A person's action reads no body: a GET, or a POST with none, is judged by its token alone.
    if audience == Audience::Person && (req.method == "GET" || req.method == "HEAD" || req.header("content-type").is_none()) {
        return Ok(());
    }
    let declared = req.content_length();
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return fail(ApiError::PayloadTooLarge);
    }
    let is_json = req
        .header("content-type")
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return fail(ApiError::UnsupportedMediaType);
    }
    Ok(())
}

/// `Authorization: Bearer <key>` (scheme case-insensitive, RFC 9110) against every configured key.
/// Both sides are hashed first, so the comparison takes the same time whatever the lengths.
pub(crate) fn api_key_ok(keys: &[String], authorization: Option<&str>) -> bool {
    let Some(given) = authorization.and_then(bearer) else {
        return false;
    };
    let given = Sha256::digest(given.as_bytes());
    keys.iter().fold(false, |ok, key| ok | bool::from(Sha256::digest(key.as_bytes()).ct_eq(&given)))
}

/// Whether `path` is served to GPT clients (a GPT action or `/mcp`), as the route tables say:
/// what a runtime rate-limits per key and per client, and keeps from the instances reserved for
/// browsers.
pub fn is_gpt_path(path: &str) -> bool {
    COMPONENT_ROUTES.iter().flat_map(|routes| routes.iter()).any(|r| matches!(r.audience, Audience::Gpt | Audience::Mcp | Audience::Person) && r.path == path)
}

/// The header that names a request, in the answer (and in the runtime's logs). Our host sets its
/// own id on every request (a client's is replaced); Spin sets none, so there a component takes
/// a well-formed id of the caller (a proxy's in front of Spin) or makes one.
pub const REQUEST_ID: &str = "x-request-id";

/// The id of `req` (see [`REQUEST_ID`]): the header's if it is 1..=64 characters of
/// `[A-Za-z0-9._:-]`, else 32 random hex digits.
pub fn request_id(req: &Request, env: &dyn Env) -> String {
    let well_formed = |id: &&str| (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    match req.header(REQUEST_ID).filter(well_formed) {
        Some(id) => id.to_owned(),
        None => crate::domain::token_hex(&crate::ports::random::<16>(env)),
    }
}

/// `path` if a component has a route for it: a bounded set of names a runtime may label its
/// request metrics with (a client's path is not).
pub fn known_path(path: &str) -> Option<&'static str> {
    COMPONENT_ROUTES.iter().flat_map(|routes| routes.iter()).map(|r| r.path).find(|p| *p == path)
}

/// The SHA-256 of the configured key an `Authorization` header carries, if it carries one (the
/// comparison as [`api_key_ok`]'s): what a runtime counts a key's requests by, never the key itself.
pub fn configured_key_hash(keys: &[String], authorization: Option<&str>) -> Option<[u8; 32]> {
    let given: [u8; 32] = Sha256::digest(authorization.and_then(bearer)?.as_bytes()).into();
    let mut found = None;
    for key in keys {
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        if bool::from(hash[..].ct_eq(&given[..])) {
            found = Some(hash);
        }
    }
    found
}

pub(crate) fn bearer(header: &str) -> Option<&str> {
    let (scheme, credentials) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim()).filter(|c| !c.is_empty())
}

/// A browser call is accepted without `Origin` (not a cross-site browser request) or when
/// `Origin` is the configured base URL or the host the request was sent to.
fn same_origin(settings: &Settings, req: &Request) -> bool {
    let Some(origin) = req.header("origin") else {
        return true;
    };
    let origin = origin.trim_end_matches('/');
    origin == settings.base_url
        || req.header("host").is_some_and(|host| origin == format!("http://{host}") || origin == format!("https://{host}"))
}

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod email_change_tests;
#[cfg(test)]
mod profile_tests;
#[cfg(test)]
mod tests;
