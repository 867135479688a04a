//! The authorization endpoint (`GET /oauth/authorize`, a page) and the browser API its page calls
//! (`POST /api/oauth/sign-in`, `POST /api/oauth/consent`).
//!
//! ```text
//! GET /oauth/authorize?client_id&redirect_uri&…
//!   ├─ unknown client, or redirect_uri not one of its own ─▶ 400 error page (never a redirect)
//!   ├─ response_type ≠ code, no S256 challenge (public client), other resource or scope
//!   │                                                      ─▶ 303 redirect_uri?error=…&state&iss
//!   └─ the page: client's name, redirect's host
//! sign-in {client_id, redirect_uri, email, passphrase}
//!   ── the account's PIN counted as Auth_Check counts it (delay after 5, lock at 100)
//!   ── 200 {ticket, email}: a ticket (10 min, single use) bound to the account, client and redirect
//! consent {ticket, allow, every parameter again}
//!   ├─ deny ─▶ {redirect: redirect_uri?error=access_denied&state&iss}
//!   └─ allow ─▶ grant + code (60 s, bound to client, redirect, challenge, resource, user)
//!               ─▶ {redirect: redirect_uri?code&state&iss}
//! ```

use serde_json::{Map, Value, json};

use super::{CODE_TTL_MS, Form, SCOPE, TICKET_TTL_MS, mcp_resource, redirect_registered, sha256_hex};
use crate::api::auth_check::{self, AuthError};
use crate::api::pages::{authorize_error_page, authorize_page};
use crate::api::{ApiError, Ctx, Failure, Request, Response, json};
use crate::audit::Kind;
use crate::domain::passphrase::dummy_hash;
use crate::api::mail::{render, send_limit};
use crate::api::signup_init::{self, VERIFY_TTL_MS};
use crate::domain::{Code, Email, Invalid, Locale, Passphrase, Token};
use crate::ports::{self, ClientKind, OauthClient, OauthGrant, OauthToken, Op, StoreError, TokenKind, User, UserStatus};

/// Why the client or its redirect cannot be trusted: said on the page, never by redirect.
enum ClientProblem {
    /// A Fluent id of the page's message.
    Page(&'static str),
    Store,
}

/// A valid authorization request.
struct Authorization {
    client: OauthClient,
    redirect_uri: String,
    code_challenge: Option<String>,
    resource: String,
    scope: String,
}

/// The parameters of a request, from the query or from the page's JSON.
type Param<'p> = &'p dyn Fn(&'static str) -> Result<Option<String>, &'static str>;

/// The client and its redirect URI, checked before anything else (SPEC §2.5).
fn client_and_redirect(ctx: &Ctx<'_>, param: Param<'_>) -> Result<(OauthClient, String), ClientProblem> {
    let client_id = param("client_id").ok().flatten().ok_or(ClientProblem::Page("page-authorize-unknown-client"))?;
    let client = match super::client::find(ctx, &client_id) {
        Ok(Some(client)) => client,
        Ok(None) => return Err(ClientProblem::Page("page-authorize-unknown-client")),
        Err(_) => return Err(ClientProblem::Store),
    };
    let redirect_uri = param("redirect_uri").ok().flatten().ok_or(ClientProblem::Page("page-authorize-bad-redirect"))?;
    if !redirect_registered(&client, &redirect_uri) {
        return Err(ClientProblem::Page("page-authorize-bad-redirect"));
    }
    Ok((client, redirect_uri))
}

/// The rest of the request, once the client and redirect are known good; an error here is sent
/// back to the client by redirect: `(error, description)`.
fn authorization(ctx: &Ctx<'_>, client: OauthClient, redirect_uri: String, param: Param<'_>) -> Result<Authorization, (&'static str, &'static str)> {
    let get = |name| param(name).map_err(|_| ("invalid_request", "a parameter is given more than once"));
    // Read for its duplicates only: the answer carries the state as given.
    get("state")?;
    if get("response_type")?.as_deref() != Some("code") {
        return Err(("unsupported_response_type", "response_type must be code"));
    }
    let code_challenge = get("code_challenge")?;
    let method = get("code_challenge_method")?;
    match (&code_challenge, method.as_deref()) {
        (Some(challenge), Some("S256")) if is_challenge(challenge) => {}
        (Some(_), Some("S256")) => return Err(("invalid_request", "code_challenge is not an S256 challenge")),
        (Some(_), _) => return Err(("invalid_request", "code_challenge_method must be S256")),
        // Only a confidential client (a GPT's OAuth action, which does not send PKCE) may go without.
        (None, _) if client.kind == ClientKind::Operator => {}
        (None, _) => return Err(("invalid_request", "code_challenge (S256) is required")),
    }
    // A GPT's OAuth action (an operator client) sends no `resource`: its tokens are for the
    // person's GPT actions; any other client's, for `/mcp`.
    let resource = match get("resource")? {
        None if client.kind == ClientKind::Operator => super::actions::api_resource(ctx),
        None => mcp_resource(ctx),
        Some(r) if r == mcp_resource(ctx) || r == super::actions::api_resource(ctx) => r,
        Some(_) => return Err(("invalid_target", "the resources are this server's /mcp and /api")),
    };
    let scope = match get("scope")? {
        None => SCOPE.to_owned(),
        Some(s) if s.split(' ').filter(|s| !s.is_empty()).all(|s| s == SCOPE) => SCOPE.to_owned(),
        Some(_) => return Err(("invalid_scope", "the only scope is account")),
    };
    Ok(Authorization { client, redirect_uri, code_challenge, resource, scope })
}

/// An S256 challenge is base64url of 32 bytes: 43 characters.
fn is_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `redirect_uri` with the answer's parameters added, and `iss` (RFC 9207).
fn redirect_to(ctx: &Ctx<'_>, redirect_uri: &str, pairs: &[(&str, &str)], state: Option<&str>) -> String {
    let Ok(mut url) = url::Url::parse(redirect_uri) else { return redirect_uri.to_owned() };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in pairs {
            query.append_pair(name, value);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", &ctx.settings.base_url);
    }
    url.into()
}

/// `GET /oauth/authorize`: the page, an error page, or an error redirect.
pub fn page(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<Response, Failure> {
    let form = Form::query(&req.query);
    let param = |name: &'static str| form.get(name).map(|v| v.map(str::to_owned));
    let (client, redirect_uri) = match client_and_redirect(ctx, &param) {
        Ok(found) => found,
        Err(ClientProblem::Page(id)) => return Ok(authorize_error_page(ctx, locale, 400, id)),
        Err(ClientProblem::Store) => return Err((ApiError::Unavailable, locale.to_owned())),
    };
    let state = form.get("state").ok().flatten().map(str::to_owned);
    match authorization(ctx, client, redirect_uri.clone(), &param) {
        Ok(a) => {
            let host = url::Url::parse(&a.redirect_uri).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
            Ok(authorize_page(ctx, locale, &a.client.name, &host))
        }
        Err((error, description)) => Ok(see_other(&redirect_to(ctx, &redirect_uri, &[("error", error), ("error_description", description)], state.as_deref()))),
    }
}

fn see_other(location: &str) -> Response {
    Response { status: 303, headers: vec![("location".into(), location.to_owned()), ("cache-control".into(), "no-store".into())], body: Vec::new() }
}

/// The page's JSON as parameters: strings, absent or null.
fn json_param(map: &Map<String, Value>) -> impl Fn(&'static str) -> Result<Option<String>, &'static str> + '_ {
    move |name| match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(name),
    }
}

/// The key of a sign-in ticket in the ephemeral store: bound to the client and redirect it was
/// issued for (another client's page cannot spend it).
fn ticket_key(ticket: &Token, client_id: &str, redirect_uri: &str) -> String {
    format!("oauth-ticket:{}", sha256_hex(&format!("{}\n{client_id}\n{redirect_uri}", ticket.as_str())))
}

/// `POST /api/oauth/sign-in` `{client_id, redirect_uri, email, passphrase | code}` → `{ticket, email}`.
pub fn sign_in(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<Response, Failure> {
    let at = |e| (e, locale.to_owned());
    let map = json::object(&req.body, &["client_id", "redirect_uri", "email", "passphrase", "code"]).map_err(at)?;
    let (client, redirect_uri) = client_of(ctx, &map).map_err(at)?;
    let email = Email::parse(json::string(&map, "email").map_err(at)?).map_err(|Invalid(r)| at(ApiError::invalid("email", r)))?;
    let user = match (json::opt_string(&map, "passphrase").map_err(at)?, json::opt_string(&map, "code").map_err(at)?) {
        (Some(passphrase), None) => by_passphrase(ctx, &email, passphrase),
        (None, Some(code)) => by_code(ctx, &email, &client.id, code),
        (Some(_), Some(_)) => Err(ApiError::invalid("code", "invalid-unknown-field")),
        (None, None) => Err(ApiError::invalid("passphrase", "invalid-missing")),
    }
    .map_err(at)?;
    let now = ctx.env.now();
    let ticket = Token::from_random(ports::random(ctx.env));
    ctx.ephemeral
        .put(&ticket_key(&ticket, &client.id, &redirect_uri), &user.id, now, now + TICKET_TTL_MS)
        .map_err(|e| at(e.into()))?;
    Ok(Response::json(200, &json!({"ticket": ticket.as_str(), "email": user.email})))
}

/// The account of `email` if `passphrase` is its own: Auth_Check's count, delay and lock.
fn by_passphrase(ctx: &Ctx<'_>, email: &Email, passphrase: &str) -> Result<User, ApiError> {
    let user = match ctx.store.find_user_by_email(email.as_str())? {
        Some(user) => user,
        None => {
            // The same Argon2 run as for an account, so the time does not tell it apart.
            if let Ok(p) = Passphrase::parse(passphrase, 1, 4096) {
                ctx.argon2(|| p.verify(&dummy_hash(ctx.settings.argon2)));
            }
            return Err(ApiError::InvalidSignIn);
        }
    };
    // Auth_Check itself, on the account's PIN: one count of failures for both ways in.
    auth_check::check(ctx, &user.pin, passphrase).map_err(|e| match e {
        AuthError::InvalidCredentials => ApiError::InvalidSignIn,
        e => auth_check::api_error(e),
    })?;
    Ok(user)
}

/// Sign-in codes live 10 minutes; the 5th wrong one ends the code.
pub const SIGN_IN_CODE_TTL_MS: i64 = 10 * 60 * 1000;
const MAX_CODE_TRIES: u32 = 5;

/// Where the newest code of an address for a client is named, and where a code and its tries are.
fn latest_code_key(email: &Email, client_id: &str) -> String {
    format!("oauth-code-for:{}", sha256_hex(&format!("{}\n{client_id}", email.as_str())))
}

fn code_key(code_ref: &str) -> String {
    format!("oauth-code:{code_ref}")
}

/// The account of `email` if `code` is the newest one emailed to it for this client: 5 tries,
/// counted before the code is compared; the right one is spent.
fn by_code(ctx: &Ctx<'_>, email: &Email, client_id: &str, code: &str) -> Result<User, ApiError> {
    let code = Code::parse(code).ok_or_else(|| ApiError::invalid("code", "invalid-code-format"))?;
    let now = ctx.env.now();
    let latest = latest_code_key(email, client_id);
    let code_ref = ctx.ephemeral.get(&latest, now)?.ok_or(ApiError::SignInCodeExpired)?;
    let tries = ctx.ephemeral.increment(&format!("{}:tries", code_key(&code_ref)), now, now + SIGN_IN_CODE_TTL_MS)?;
    let stored = ctx.ephemeral.get(&code_key(&code_ref), now)?.ok_or(ApiError::SignInCodeExpired)?;
    if tries > MAX_CODE_TRIES {
        return Err(ApiError::SignInCodeExpired);
    }
    let (user_id, hash) = stored.split_once('|').ok_or(ApiError::Internal)?;
    if !code.matches(&code_ref, hash) {
        ctx.metrics.count("too-many-codes");
        return Err(ApiError::SignInCodeInvalid { attempts_left: MAX_CODE_TRIES - tries });
    }
    ctx.ephemeral.delete(&code_key(&code_ref))?;
    ctx.ephemeral.delete(&latest)?;
    let user = ctx.store.find_user_by_id(user_id)?.filter(|u| u.email == email.as_str()).ok_or(ApiError::SignInCodeExpired)?;
    match user.status {
        UserStatus::Active => Ok(user),
        UserStatus::Pending => Err(ApiError::AuthEmailNotVerified),
        UserStatus::Blocked => Err(ApiError::AccountBlocked),
    }
}

/// `POST /api/oauth/send-code` `{client_id, redirect_uri, email}`: one answer whether or not an
/// active account has the address; the code is made and mailed after the answer (its time must
/// not tell either), under §5's send limits.
pub fn send_code(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<Response, Failure> {
    let at = |e| (e, locale.to_owned());
    let map = json::object(&req.body, &["client_id", "redirect_uri", "email"]).map_err(at)?;
    let (client, _) = client_of(ctx, &map).map_err(at)?;
    let email = Email::parse(json::string(&map, "email").map_err(at)?).map_err(|Invalid(r)| at(ApiError::invalid("email", r)))?;
    ctx.defer(move |ctx| {
        let _ = email_code(ctx, &email, &client.id);
    });
    let minutes = (SIGN_IN_CODE_TTL_MS / 60_000).to_string();
    Ok(Response::json(200, &json!({"message": ctx.l10n.format(locale, "oauth-code-sent", &[("minutes", &minutes)])})))
}

/// Emails an active account a sign-in code. The code is stored under a new name first; only once
/// its mail is queued (the send limit passed) does it become the address's newest code, so a
/// throttled request never replaces a code that was sent.
fn email_code(ctx: &Ctx<'_>, email: &Email, client_id: &str) -> Result<(), ApiError> {
    let Some(user) = ctx.store.find_user_by_email(email.as_str())?.filter(|u| u.status == UserStatus::Active) else {
        return Ok(());
    };
    let now = ctx.env.now();
    let code = Code::generate(|| u32::from_le_bytes(ports::random(ctx.env)));
    let code_ref = crate::domain::token_hex(&ports::random::<16>(ctx.env));
    let minutes = (SIGN_IN_CODE_TTL_MS / 60_000).to_string();
    let mail = render(ctx, &user.locale, "oauth-sign-in-code", &user.email, &[("code", code.as_str()), ("valid-minutes", &minutes)])?;
    ctx.ephemeral.put(&code_key(&code_ref), &format!("{}|{}", user.id, code.hash(&code_ref)), now, now + SIGN_IN_CODE_TTL_MS)?;
    ctx.store.apply(vec![
        Op::GuardUser(user.id.clone(), user.email.clone(), UserStatus::Active),
        Op::CheckSendLimit(send_limit(ctx, &mail)),
        Op::EnqueueMail(mail, now),
    ])?;
    ctx.ephemeral.put(&latest_code_key(email, client_id), &code_ref, now, now + SIGN_IN_CODE_TTL_MS)?;
    Ok(())
}

/// The client and redirect of the page's JSON: `400 OAUTH_CLIENT_INVALID` if they are not good.
fn client_of(ctx: &Ctx<'_>, map: &Map<String, Value>) -> Result<(OauthClient, String), ApiError> {
    match client_and_redirect(ctx, &json_param(map)) {
        Ok(found) => Ok(found),
        Err(ClientProblem::Page(_)) => Err(ApiError::OauthClientInvalid),
        Err(ClientProblem::Store) => Err(ApiError::Unavailable),
    }
}


/// `POST /api/oauth/consent` → `{redirect}`: the code (allow) or `access_denied` (deny).
pub fn consent(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<Response, Failure> {
    let at = |e| (e, locale.to_owned());
    let fields: Vec<&str> = AUTHORIZATION_PARAMS.iter().copied().chain(["ticket", "allow"]).collect();
    let map = json::object(&req.body, &fields).map_err(at)?;
    let (client, redirect_uri) = client_of(ctx, &map).map_err(at)?;
    let param = json_param(&map);
    let state = param("state").ok().flatten();
    let redirect = |pairs: &[(&str, &str)]| Ok(Response::json(200, &json!({"redirect": redirect_to(ctx, &redirect_uri, pairs, state.as_deref())})));
    let authorization = match authorization(ctx, client, redirect_uri.clone(), &param) {
        Ok(a) => a,
        Err((error, description)) => return redirect(&[("error", error), ("error_description", description)]),
    };
    let allow = json::opt_bool(&map, "allow").map_err(at)?.ok_or_else(|| at(ApiError::invalid("allow", "invalid-missing")))?;
    let ticket = Token::parse(json::string(&map, "ticket").map_err(at)?).ok_or_else(|| at(ApiError::InvalidToken))?;
    let user_id = spend_ticket(ctx, &ticket_key(&ticket, &authorization.client.id, &redirect_uri)).map_err(at)?;
    if !allow {
        return redirect(&[("error", "access_denied"), ("error_description", "the person did not allow access")]);
    }
    let user = ctx.store.find_user_by_id(&user_id).map_err(|e| at(e.into()))?.ok_or_else(|| at(ApiError::InvalidToken))?;
    match user.status {
        UserStatus::Active => {}
        UserStatus::Pending => return Err(at(ApiError::AuthEmailNotVerified)),
        UserStatus::Blocked => return Err(at(ApiError::AccountBlocked)),
    }
    let now = ctx.env.now();
    let code = Token::from_random(ports::random(ctx.env));
    let grant = OauthGrant {
        id: crate::domain::token_hex(&ports::random::<16>(ctx.env)),
        user_id: user.id.clone(),
        client_id: authorization.client.id.clone(),
        resource: authorization.resource,
        scope: authorization.scope,
        created_at: now,
    };
    let token = OauthToken {
        hash: code.hash().0,
        kind: TokenKind::Code,
        grant_id: grant.id.clone(),
        created_at: now,
        expires_at: now + CODE_TTL_MS,
        spent_at: None,
        redirect_uri: Some(redirect_uri.clone()),
        code_challenge: authorization.code_challenge,
    };
    let ops = vec![
        // Under the account's row lock, as it is now: a block or a new address in between wins.
        Op::GuardUser(user.id.clone(), user.email.clone(), UserStatus::Active),
        Op::InsertOauthGrant(grant),
        Op::InsertOauthToken(token),
        ctx.event(Kind::OauthAuthorized, &user.id, &user.email, Some(authorization.client.id.clone())),
    ];
    match ctx.store.apply(ops) {
        Ok(()) => redirect(&[("code", code.as_str())]),
        Err(StoreError::NotFound) => Err(at(ApiError::InvalidToken)),
        Err(e) => Err(at(e.into())),
    }
}

/// The authorization parameters the page sends back with each step.
const AUTHORIZATION_PARAMS: [&str; 8] = ["response_type", "client_id", "redirect_uri", "code_challenge", "code_challenge_method", "state", "resource", "scope"];

fn pending_key(id: &str) -> String {
    format!("oauth-pending:{id}")
}

/// `POST /api/oauth/sign-up` `{email, passphrase, consent, locale, every authorization parameter}`:
/// SignUp_Init for a new person on the authorize page. The authorization waits (as long as the
/// verification link lives) under an id the link carries (`#…&oauth=<id>`): the browser that opens
/// the link verifies the account and goes on to the consent step ([`after_verification`]).
pub fn sign_up(ctx: &Ctx<'_>, req: &Request, locale: &str) -> Result<Response, Failure> {
    let at = |e| (e, locale.to_owned());
    let fields: Vec<&str> = AUTHORIZATION_PARAMS.iter().copied().chain(["email", "passphrase", "consent", "locale"]).collect();
    let map = json::object(&req.body, &fields).map_err(at)?;
    let (client, redirect_uri) = client_of(ctx, &map).map_err(at)?;
    let param = json_param(&map);
    if authorization(ctx, client, redirect_uri, &param).is_err() {
        return Err(at(ApiError::OauthClientInvalid));
    }
    let lang = Locale::parse(json::string(&map, "locale").map_err(at)?).map_err(|Invalid(r)| at(ApiError::invalid("locale", r)))?;
    let at = |e| (e, lang.as_str().to_owned());
    if json::opt_bool(&map, "consent").map_err(at)? != Some(true) {
        return Err(at(ApiError::ConsentRequired));
    }
    let email = Email::parse(json::string(&map, "email").map_err(at)?).map_err(|Invalid(r)| at(ApiError::invalid("email", r)))?;
    let passphrase = Passphrase::parse(json::string(&map, "passphrase").map_err(at)?, ctx.settings.passphrase_min, ctx.settings.passphrase_max)
        .map_err(|Invalid(r)| at(ApiError::invalid("passphrase", r)))?;
    let now = ctx.env.now();
    let id = crate::domain::token_hex(&ports::random::<16>(ctx.env));
    let saved: Map<String, Value> =
        AUTHORIZATION_PARAMS.iter().filter_map(|name| param(name).ok().flatten().map(|v| ((*name).to_owned(), Value::String(v)))).collect();
    ctx.ephemeral.put(&pending_key(&id), &Value::Object(saved).to_string(), now, now + VERIFY_TTL_MS).map_err(|e| at(e.into()))?;
    let input = signup_init::Input { email, locale: lang.clone(), passphrase, oauth: Some(id) };
    signup_init::sign_up(ctx, &input).map_err(at)
}

/// After the verification link of a sign-up on the authorize page activated `user`: where this
/// browser goes on, the authorize page with the authorization's parameters and a sign-in ticket in
/// the fragment (never sent to a server). `None` if the authorization is gone or no longer valid.
pub fn after_verification(ctx: &Ctx<'_>, id: &str, user: &User) -> Option<String> {
    let now = ctx.env.now();
    let saved = ctx.ephemeral.get(&pending_key(id), now).ok()??;
    let _ = ctx.ephemeral.delete(&pending_key(id));
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&saved) else { return None };
    let param = json_param(&map);
    let (client, redirect_uri) = client_and_redirect(ctx, &param).ok()?;
    let authorization = authorization(ctx, client, redirect_uri, &param).ok()?;
    let ticket = Token::from_random(ports::random(ctx.env));
    let key = ticket_key(&ticket, &authorization.client.id, &authorization.redirect_uri);
    ctx.ephemeral.put(&key, &user.id, now, now + TICKET_TTL_MS).ok()?;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(AUTHORIZATION_PARAMS.iter().filter_map(|name| param(name).ok().flatten().map(|v| (*name, v))))
        .finish();
    let fragment = url::form_urlencoded::Serializer::new(String::new()).append_pair("ticket", ticket.as_str()).append_pair("email", &user.email).finish();
    Some(format!("{}/oauth/authorize?{query}#{fragment}", ctx.settings.base_url))
}

/// A ticket's account, once: the first spend wins (a counter beside it), and the ticket goes.
fn spend_ticket(ctx: &Ctx<'_>, key: &str) -> Result<String, ApiError> {
    let now = ctx.env.now();
    let user_id = ctx.ephemeral.get(key, now)?.ok_or(ApiError::InvalidToken)?;
    if ctx.ephemeral.increment(&format!("{key}:spent"), now, now + TICKET_TTL_MS)? != 1 {
        return Err(ApiError::InvalidToken);
    }
    ctx.ephemeral.delete(key)?;
    Ok(user_id)
}
