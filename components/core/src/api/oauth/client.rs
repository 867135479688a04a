//! Which client asks (SPEC §2.5): one stored (registered by itself, or made by the operator), or one
//! whose `client_id` is the `https` URL of its **client ID metadata document**
//! (draft-ietf-oauth-client-id-metadata-document): fetched through the runtime's outbound HTTP
//! (which refuses private, loopback and link-local addresses outside dev mode, follows no redirect,
//! limits size and time) and cached in the ephemeral store for an hour.

use serde_json::{Value, json};

use super::{redirect_uri_allowed, sha256_hex};
use crate::api::Ctx;
use crate::ports::{ClientKind, FetchError, OauthClient, StoreError};

/// How long a fetched document is trusted; how long a failed fetch is not retried.
pub const CACHE_TTL_MS: i64 = 3600 * 1000;
pub const FAILURE_TTL_MS: i64 = 60 * 1000;
/// Documents one client address may have fetched a minute (cached ones do not count): a page
/// anyone may open must not make the server fetch any URL at any rate.
pub const FETCHES_PER_MINUTE: u32 = 10;
/// The document's limits: 5 KiB (the draft's recommendation), 5 s.
pub const MAX_BYTES: usize = 5 * 1024;
pub const TIMEOUT_MS: u32 = 5000;

/// The client named `id`; `Ok(None)` if there is none. A metadata document is only read from the
/// cache here: [`fetch_document`] fetched it, if it could, before the request's handler ran.
pub fn find(ctx: &Ctx<'_>, id: &str) -> Result<Option<OauthClient>, StoreError> {
    if !is_document_url(ctx, id) {
        return ctx.store.find_oauth_client(id);
    }
    let now = ctx.env.now();
    let cached = ctx.ephemeral.get(&document_key(id), now)?;
    Ok(cached.and_then(|cached| serde_json::from_str::<Value>(&cached).ok()).and_then(|doc| client_of(id, &doc, now)))
}

/// Before a request that names the client `id` is answered: when `id` is a document URL whose
/// document is neither cached nor failed within the last minute, and this client address has
/// fetches left this minute, fetches it and caches the client it names (or the failure). Awaited
/// by the runtime's async glue, so the instance serves its other requests meanwhile.
pub async fn fetch_document(ctx: &Ctx<'_>, id: &str) -> Result<(), StoreError> {
    if !is_document_url(ctx, id) {
        return Ok(());
    }
    let (now, key) = (ctx.env.now(), document_key(id));
    let failed = format!("oauth-cimd-failed:{}", sha256_hex(id));
    if ctx.ephemeral.get(&key, now)?.is_some() || ctx.ephemeral.get(&failed, now)?.is_some() {
        return Ok(());
    }
    let minute = now.div_euclid(60_000);
    let peer = ctx.origin.get().client.unwrap_or_default();
    let fetches = ctx.ephemeral.increment(&format!("oauth-cimd-fetches:{peer}:{minute}"), now, (minute + 1) * 60_000)?;
    if fetches > FETCHES_PER_MINUTE {
        return Ok(());
    }
    // Why a document was not taken is not said: the page says the client is unknown either way.
    let client = match ctx.fetch.get_json(id, MAX_BYTES, TIMEOUT_MS).await {
        Ok(body) => serde_json::from_slice::<Value>(&body).ok().and_then(|doc| client_of(id, &doc, now)),
        Err(FetchError::Refused(_) | FetchError::Failed(_)) => None,
    };
    match &client {
        Some(c) => ctx.ephemeral.put(
            &key,
            &json!({"client_name": c.name, "redirect_uris": c.redirect_uris, "client_id": id}).to_string(),
            now,
            now + CACHE_TTL_MS,
        ),
        None => ctx.ephemeral.put(&failed, "1", now, now + FAILURE_TTL_MS),
    }
}

fn document_key(id: &str) -> String {
    format!("oauth-cimd:{}", sha256_hex(id))
}

/// Whether a `client_id` names a metadata document: an `https` URL with a path (not `/`), no
/// fragment, no user info, no dot segments; in dev mode also `http` on a loopback host.
pub fn is_document_url(ctx: &Ctx<'_>, id: &str) -> bool {
    let Ok(url) = url::Url::parse(id) else {
        return false;
    };
    let scheme_ok = url.scheme() == "https" || (ctx.settings.dev && url.scheme() == "http" && super::is_loopback(&url));
    let raw_path = id.split_once("://").map(|(_, rest)| rest).and_then(|rest| rest.find('/').map(|i| &rest[i..])).unwrap_or("");
    // An address in the URL is judged here (a name, by the runtime where it resolves it).
    let address_ok = match url.host() {
        Some(url::Host::Ipv4(ip)) => crate::net::refused(ip.into(), ctx.settings.dev).is_none(),
        Some(url::Host::Ipv6(ip)) => crate::net::refused(ip.into(), ctx.settings.dev).is_none(),
        Some(url::Host::Domain(name)) => !name.is_empty() && (ctx.settings.dev || !name.eq_ignore_ascii_case("localhost")),
        None => false,
    };
    scheme_ok
        && address_ok
        && url.path() != "/"
        && url.username().is_empty()
        && url.password().is_none()
        && !id.contains('#')
        && !raw_path.split(['/', '?']).any(|segment| segment == "." || segment == "..")
}

/// The client a document describes, if it is a valid one for `id`: its `client_id` is `id`, its
/// redirect URIs are allowed ones, it is a public client (no secret, auth method `none`).
fn client_of(id: &str, doc: &Value, now: i64) -> Option<OauthClient> {
    let doc = doc.as_object()?;
    if doc.get("client_id").and_then(Value::as_str) != Some(id) || doc.contains_key("client_secret") {
        return None;
    }
    if !matches!(doc.get("token_endpoint_auth_method").and_then(Value::as_str), None | Some("none")) {
        return None;
    }
    let uris: Vec<String> = doc.get("redirect_uris")?.as_array()?.iter().map(|u| u.as_str().map(str::to_owned)).collect::<Option<_>>()?;
    if uris.is_empty() || uris.len() > 10 || !uris.iter().all(|u| redirect_uri_allowed(u)) {
        return None;
    }
    let name = match doc.get("client_name") {
        Some(Value::String(n)) if (1..=200).contains(&n.chars().count()) => n.clone(),
        Some(_) => return None,
        None => url::Url::parse(id).ok()?.host_str()?.to_owned(),
    };
    Some(OauthClient {
        id: id.to_owned(),
        kind: ClientKind::Metadata,
        name,
        redirect_uris: uris,
        secret_hash: None,
        created_at: now,
        expires_at: Some(now + CACHE_TTL_MS),
    })
}
