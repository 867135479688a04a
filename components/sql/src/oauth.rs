//! OAuth clients, grants, codes and tokens (`oauth_*`, migration 8; SPEC §2.5): the reads and the
//! operations of `apply` that write them, for [`crate::store`], the operator and housekeeping.

use gpt_user_core::audit::{Kind, event_by};
use gpt_user_core::ports::{
    Actor, ClientKind, OauthClient, OauthGrant, OauthToken, RegistrationCap, StoreError, Timestamp, TokenKind, signup_cap_wait,
};

use crate::{Conn, Row};

const CLIENT_COLUMNS: &str = "id, kind, name, redirect_uris, secret_hash, created_at, expires_at";
const GRANT_COLUMNS: &str = "g.id, g.user_id, g.client_id, g.resource, g.scope, g.created_at";
const TOKEN_COLUMNS: &str = "t.hash, t.kind, t.grant_id, t.created_at, t.expires_at, t.spent_at, t.redirect_uri, t.code_challenge";

pub async fn find_client<C: Conn>(conn: &mut C, id: &str) -> Result<Option<OauthClient>, StoreError> {
    let rows = conn.query(&format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE id = $1"), vec![id.into()]).await?;
    rows.first().map(client_from).transpose()
}

/// A code or token by hash with its grant; none once the grant is revoked (its rows are deleted).
pub async fn find_token<C: Conn>(conn: &mut C, hash: &str) -> Result<Option<(OauthToken, OauthGrant)>, StoreError> {
    let rows = conn
        .query(
            &format!("SELECT {TOKEN_COLUMNS}, {GRANT_COLUMNS} FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id WHERE t.hash = $1"),
            vec![hash.into()],
        )
        .await?;
    rows.first().map(|r| Ok((token_from(r)?, grant_from(r, 8)?))).transpose()
}

pub async fn insert_client<C: Conn>(conn: &mut C, c: OauthClient) -> Result<(), StoreError> {
    let uris = serde_json::to_string(&c.redirect_uris).map_err(|e| StoreError::Other(e.to_string()))?;
    conn.execute(&format!("INSERT INTO oauth_clients ({CLIENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"), vec![
        c.id.into(),
        c.kind.as_str().into(),
        c.name.into(),
        uris.into(),
        c.secret_hash.into(),
        c.created_at.into(),
        c.expires_at.into(),
    ])
    .await
}

pub async fn insert_grant<C: Conn>(conn: &mut C, g: OauthGrant) -> Result<(), StoreError> {
    conn.execute("INSERT INTO oauth_grants (id, user_id, client_id, resource, scope, created_at) VALUES ($1, $2, $3, $4, $5, $6)", vec![
        g.id.into(),
        g.user_id.into(),
        g.client_id.into(),
        g.resource.into(),
        g.scope.into(),
        g.created_at.into(),
    ])
    .await
}

pub async fn insert_token<C: Conn>(conn: &mut C, t: OauthToken) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO oauth_tokens (hash, kind, grant_id, created_at, expires_at, spent_at, redirect_uri, code_challenge) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        vec![
            t.hash.into(),
            t.kind.as_str().into(),
            t.grant_id.into(),
            t.created_at.into(),
            t.expires_at.into(),
            t.spent_at.into(),
            t.redirect_uri.into(),
            t.code_challenge.into(),
        ],
    )
    .await
}

/// Marks a code or refresh token used: a conditional change, so of two concurrent uses one wins.
pub async fn spend<C: Conn>(conn: &mut C, hash: &str, now: Timestamp) -> Result<(), StoreError> {
    let rows = conn
        .query(
            "UPDATE oauth_tokens SET spent_at = $1 WHERE hash = $2 AND spent_at IS NULL AND expires_at > $1 \
             AND grant_id IN (SELECT id FROM oauth_grants) RETURNING hash",
            vec![now.into(), hash.into()],
        )
        .await?;
    if rows.is_empty() { Err(StoreError::NotFound) } else { Ok(()) }
}

/// Deletes a grant and every code and token issued under it.
pub async fn revoke_grant<C: Conn>(conn: &mut C, grant_id: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM oauth_tokens WHERE grant_id = $1", vec![grant_id.into()]).await?;
    conn.execute("DELETE FROM oauth_grants WHERE id = $1", vec![grant_id.into()]).await
}

/// Deletes every grant of a user, with its codes and tokens: a new passphrase or address, a block,
/// a deletion (SPEC §2.5).
pub async fn revoke_user<C: Conn>(conn: &mut C, user_id: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM oauth_tokens WHERE grant_id IN (SELECT id FROM oauth_grants WHERE user_id = $1)", vec![user_id.into()]).await?;
    conn.execute("DELETE FROM oauth_grants WHERE user_id = $1", vec![user_id.into()]).await
}

/// The core's cap rule over the clients that registered themselves within the window.
pub async fn check_registration_cap<C: Conn>(conn: &mut C, cap: RegistrationCap) -> Result<(), StoreError> {
    let rows = conn
        .query(
            "SELECT COUNT(*), MIN(created_at) FROM oauth_clients WHERE kind = 'registered' AND created_at > $1",
            vec![(cap.now - cap.window).into()],
        )
        .await?;
    let (count, oldest) = match rows.first() {
        Some(r) => (r.int(0)?, r.opt_int(1)?),
        None => (0, None),
    };
    match signup_cap_wait(cap.now, cap.window, cap.max, u64::try_from(count).unwrap_or(0), oldest) {
        Some(secs) => Err(StoreError::Throttled(secs)),
        None => Ok(()),
    }
}

/// Housekeeping at `now`: expired codes and tokens, then grants left with none.
pub async fn delete_expired<C: Conn>(conn: &mut C, now: Timestamp) -> Result<(), StoreError> {
    conn.execute("DELETE FROM oauth_tokens WHERE expires_at <= $1", vec![now.into()]).await?;
    conn.execute("DELETE FROM oauth_grants WHERE NOT EXISTS (SELECT 1 FROM oauth_tokens WHERE oauth_tokens.grant_id = oauth_grants.id)", vec![])
        .await
}

fn client_from<R: Row>(r: &R) -> Result<OauthClient, StoreError> {
    let kind = r.text(1)?;
    let uris = r.text(3)?;
    Ok(OauthClient {
        id: r.text(0)?,
        kind: ClientKind::parse(&kind).ok_or_else(|| StoreError::Other(format!("unknown client kind {kind:?}")))?,
        name: r.text(2)?,
        redirect_uris: serde_json::from_str(&uris).map_err(|e| StoreError::Other(format!("redirect_uris: {e}")))?,
        secret_hash: r.opt_text(4)?,
        created_at: r.int(5)?,
        expires_at: r.opt_int(6)?,
    })
}

fn grant_from<R: Row>(r: &R, at: usize) -> Result<OauthGrant, StoreError> {
    Ok(OauthGrant {
        id: r.text(at)?,
        user_id: r.text(at + 1)?,
        client_id: r.text(at + 2)?,
        resource: r.text(at + 3)?,
        scope: r.text(at + 4)?,
        created_at: r.int(at + 5)?,
    })
}

fn token_from<R: Row>(r: &R) -> Result<OauthToken, StoreError> {
    let kind = r.text(1)?;
    Ok(OauthToken {
        hash: r.text(0)?,
        kind: TokenKind::parse(&kind).ok_or_else(|| StoreError::Other(format!("unknown token kind {kind:?}")))?,
        grant_id: r.text(2)?,
        created_at: r.int(3)?,
        expires_at: r.int(4)?,
        spent_at: r.opt_int(5)?,
        redirect_uri: r.opt_text(6)?,
        code_challenge: r.opt_text(7)?,
    })
}

// ---------------------------------------------------------------------------------------------
// The operator's view (`gpt-user clients …`, `gpt-user users show|revoke-grants`). Like
// `crate::operator`, it never reads a secret's hash: what the CLI never prints, it never has.

const ENTRY_COLUMNS: &str = "id, kind, name, redirect_uris, created_at, expires_at";

/// A client as the operator sees it: everything but its secret's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientEntry {
    pub id: String,
    pub kind: ClientKind,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub created_at: Timestamp,
    /// A metadata document's cache expiry.
    pub expires_at: Option<Timestamp>,
}

/// A grant as the operator sees it: its client's name (`None` once the client is gone) and how
/// many of its tokens still work at the time asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantEntry {
    pub id: String,
    pub client_id: String,
    pub client_name: Option<String>,
    pub resource: String,
    pub scope: String,
    pub created_at: Timestamp,
    /// Unspent, unexpired refresh tokens (rotation leaves at most one).
    pub live_refresh_tokens: i64,
    /// Unexpired access tokens.
    pub live_access_tokens: i64,
}

/// Clients of every kind, newest first.
pub async fn list_clients<C: Conn>(conn: &mut C, limit: i64) -> Result<Vec<ClientEntry>, StoreError> {
    let rows = conn.query(&format!("SELECT {ENTRY_COLUMNS} FROM oauth_clients ORDER BY created_at DESC, id LIMIT $1"), vec![limit.into()]).await?;
    rows.iter().map(entry_from).collect()
}

pub async fn find_client_entry<C: Conn>(conn: &mut C, id: &str) -> Result<Option<ClientEntry>, StoreError> {
    let rows = conn.query(&format!("SELECT {ENTRY_COLUMNS} FROM oauth_clients WHERE id = $1"), vec![id.into()]).await?;
    rows.first().map(entry_from).transpose()
}

/// Deletes a client with every grant made to it and their codes and tokens, and records an
/// `oauth-revoked` event by the operator for each account that had such a grant. `None` if no
/// client has the id (nothing is changed); else how many grants were revoked.
pub async fn remove_client<C: Conn>(conn: &mut C, id: &str, now: Timestamp) -> Result<Option<u64>, StoreError> {
    let removed = conn.query("DELETE FROM oauth_clients WHERE id = $1 RETURNING id", vec![id.into()]).await?;
    if removed.is_empty() {
        return Ok(None);
    }
    let holders = conn
        .query("SELECT DISTINCT u.id, u.email FROM oauth_grants g JOIN users u ON u.id = g.user_id WHERE g.client_id = $1", vec![id.into()])
        .await?;
    conn.execute("DELETE FROM oauth_tokens WHERE grant_id IN (SELECT id FROM oauth_grants WHERE client_id = $1)", vec![id.into()]).await?;
    let grants = conn.query("DELETE FROM oauth_grants WHERE client_id = $1 RETURNING id", vec![id.into()]).await?;
    for holder in &holders {
        let (user_id, email) = (holder.text(0)?, holder.text(1)?);
        let detail = Some(format!("client removed: {id}"));
        crate::audit::record(conn, event_by(Actor::Operator, now, Kind::OauthRevoked, &user_id, &email, detail)).await?;
    }
    Ok(Some(grants.len() as u64))
}

/// A user's grants at `now`, newest first, with the count of their live tokens.
pub async fn list_user_grants<C: Conn>(conn: &mut C, user_id: &str, now: Timestamp) -> Result<Vec<GrantEntry>, StoreError> {
    // `now` is `$1`: placeholders are bound in the order they first appear (see the crate docs).
    let rows = conn
        .query(
            "SELECT g.id, g.client_id, c.name, g.resource, g.scope, g.created_at, \
             (SELECT COUNT(*) FROM oauth_tokens t WHERE t.grant_id = g.id AND t.kind = 'refresh' AND t.spent_at IS NULL AND t.expires_at > $1), \
             (SELECT COUNT(*) FROM oauth_tokens t WHERE t.grant_id = g.id AND t.kind = 'access' AND t.expires_at > $1) \
             FROM oauth_grants g LEFT JOIN oauth_clients c ON c.id = g.client_id WHERE g.user_id = $2 ORDER BY g.created_at DESC, g.id",
            vec![now.into(), user_id.into()],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(GrantEntry {
                id: r.text(0)?,
                client_id: r.text(1)?,
                client_name: r.opt_text(2)?,
                resource: r.text(3)?,
                scope: r.text(4)?,
                created_at: r.int(5)?,
                live_refresh_tokens: r.int(6)?,
                live_access_tokens: r.int(7)?,
            })
        })
        .collect()
}

/// The operator's `users revoke-grants`: [`revoke_user`], and an `oauth-revoked` event by the
/// operator if there was a grant to revoke. Returns how many grants there were.
pub async fn revoke_user_by_operator<C: Conn>(conn: &mut C, user_id: &str, email: &str, now: Timestamp) -> Result<u64, StoreError> {
    let rows = conn.query("SELECT COUNT(*) FROM oauth_grants WHERE user_id = $1", vec![user_id.into()]).await?;
    let grants = rows.first().map_or(Ok(0), |r| r.int(0))?;
    revoke_user(conn, user_id).await?;
    if grants > 0 {
        let detail = Some("revoked by the operator".to_owned());
        crate::audit::record(conn, event_by(Actor::Operator, now, Kind::OauthRevoked, user_id, email, detail)).await?;
    }
    Ok(u64::try_from(grants).unwrap_or(0))
}

fn entry_from<R: Row>(r: &R) -> Result<ClientEntry, StoreError> {
    let kind = r.text(1)?;
    let uris = r.text(3)?;
    Ok(ClientEntry {
        id: r.text(0)?,
        kind: ClientKind::parse(&kind).ok_or_else(|| StoreError::Other(format!("unknown client kind {kind:?}")))?,
        name: r.text(2)?,
        redirect_uris: serde_json::from_str(&uris).map_err(|e| StoreError::Other(format!("redirect_uris: {e}")))?,
        created_at: r.int(4)?,
        expires_at: r.opt_int(5)?,
    })
}
