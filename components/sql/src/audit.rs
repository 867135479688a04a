//! The audit trail in SQL (`events`, schema 007; see `gpt_user_core::audit`): appended by `apply`'s
//! `record-event`, by the operator's commands and by housekeeping, each in the transaction of the
//! change it records; read by `gpt-user events`; deleted only past the retention.

use gpt_user_core::audit::{Kind, event_by};
use gpt_user_core::ports::{AUTH_LOCK_AFTER, Actor, Event, StoreError, Timestamp};

use crate::{Conn, Param, Row};

const COLUMNS: &str = "at, user_id, email_hash, kind, actor, client, request_id, detail";

/// Appends `e` — unless it is to be recorded only while the user's PIN is locked and it is not.
pub async fn record<C: Conn>(conn: &mut C, e: Event) -> Result<(), StoreError> {
    if e.if_pin_locked {
        let locked = conn
            .query(
                "SELECT 1 FROM users u JOIN auth_failures a ON a.pin = u.pin WHERE u.id = $1 AND a.failures >= $2",
                vec![e.user_id.as_str().into(), AUTH_LOCK_AFTER.into()],
            )
            .await?;
        if locked.is_empty() {
            return Ok(());
        }
    }
    let id = conn.new_id();
    conn.execute(
        &format!("INSERT INTO events (id, seq, {COLUMNS}) VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM events), $2, $3, $4, $5, $6, $7, $8, $9)"),
        vec![
            id.into(),
            e.at.into(),
            e.user_id.into(),
            e.email_hash.into(),
            e.kind.into(),
            e.actor.as_str().into(),
            e.client.into(),
            e.request_id.into(),
            e.detail.into(),
        ],
    )
    .await
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// The account's id, or (for an account that is gone, or to find every account that ever had
    /// it) the hash of an address: either matches.
    pub user_id: Option<String>,
    pub email_hash: Option<String>,
    pub since: Option<Timestamp>,
    pub kind: Option<Kind>,
    pub limit: i64,
}

/// Oldest first, at most `filter.limit`.
pub async fn list<C: Conn>(conn: &mut C, filter: &EventFilter) -> Result<Vec<Event>, StoreError> {
    let mut conditions = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    let bind = |params: &mut Vec<Param>, p: Param| {
        params.push(p);
        format!("${}", params.len())
    };
    match (&filter.user_id, &filter.email_hash) {
        (Some(id), Some(hash)) => {
            let (a, b) = (bind(&mut params, id.as_str().into()), bind(&mut params, hash.as_str().into()));
            conditions.push(format!("(user_id = {a} OR email_hash = {b})"));
        }
        (Some(id), None) => conditions.push(format!("user_id = {}", bind(&mut params, id.as_str().into()))),
        (None, Some(hash)) => conditions.push(format!("email_hash = {}", bind(&mut params, hash.as_str().into()))),
        (None, None) => {}
    }
    if let Some(since) = filter.since {
        conditions.push(format!("at >= {}", bind(&mut params, since.into())));
    }
    if let Some(kind) = filter.kind {
        conditions.push(format!("kind = {}", bind(&mut params, kind.as_str().into())));
    }
    let filter_sql = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    // The newest `limit`, shown oldest first.
    let limit = bind(&mut params, filter.limit.into());
    let sql = format!("SELECT {COLUMNS} FROM (SELECT {COLUMNS}, seq FROM events{filter_sql} ORDER BY at DESC, seq DESC LIMIT {limit}) newest ORDER BY at, seq");
    let rows = conn.query(&sql, params).await?;
    rows.iter()
        .map(|r| {
            Ok(Event {
                at: r.int(0)?,
                user_id: r.text(1)?,
                email_hash: r.text(2)?,
                kind: r.text(3)?,
                actor: Actor::parse(&r.text(4)?).ok_or_else(|| StoreError::Other("an event with an unknown actor".into()))?,
                client: r.opt_text(5)?,
                request_id: r.opt_text(6)?,
                detail: r.opt_text(7)?,
                if_pin_locked: false,
            })
        })
        .collect()
}

/// Housekeeping, in its transaction at `now`: an event for every email change that expires now
/// unfinished (neither done nor dead), before `housekeeping::DELETE_EXPIRED_EMAIL_CHANGES` deletes it.
pub async fn record_expired_email_changes<C: Conn>(conn: &mut C, now: Timestamp) -> Result<u64, StoreError> {
    let sql = "SELECT u.id, u.email FROM email_changes f JOIN users u ON u.id = f.user_id \
               WHERE f.expires_at <= $1 AND f.state NOT IN ('done', 'dead')";
    record_by_system(conn, now, Kind::EmailChangeExpired, None, sql, vec![now.into()]).await
}

/// Housekeeping, in its transaction at `now`: a `deleted` event for every pending account whose
/// last sign-up attempt is before `stale_before`, before `housekeeping::DELETE_STALE_PENDING_USERS`
/// deletes it.
pub async fn record_stale_pending_deletions<C: Conn>(conn: &mut C, now: Timestamp, stale_before: Timestamp) -> Result<u64, StoreError> {
    let sql = "SELECT id, email FROM users WHERE status = 'pending' AND updated_at < $1";
    record_by_system(conn, now, Kind::Deleted, Some("not verified within 7 days"), sql, vec![stale_before.into()]).await
}

/// A `kind` event by the system for each account `(id, email)` that `sql` selects.
async fn record_by_system<C: Conn>(
    conn: &mut C,
    now: Timestamp,
    kind: Kind,
    detail: Option<&str>,
    sql: &str,
    params: Vec<Param>,
) -> Result<u64, StoreError> {
    let rows = conn.query(sql, params).await?;
    let accounts: Vec<(String, String)> = rows.iter().map(|r| Ok((r.text(0)?, r.text(1)?))).collect::<Result<_, StoreError>>()?;
    for (user_id, email) in &accounts {
        record(conn, event_by(Actor::System, now, kind, user_id, email, detail.map(str::to_owned))).await?;
    }
    Ok(accounts.len() as u64)
}

/// Housekeeping: events older than `before` (the retention); how many.
pub async fn delete_older<C: Conn>(conn: &mut C, before: Timestamp) -> Result<u64, StoreError> {
    Ok(conn.query("DELETE FROM events WHERE at < $1 RETURNING id", vec![before.into()]).await?.len() as u64)
}

/// An erasure request that asks for the trail too: every event of the account id or of the
/// address hash; how many.
pub async fn erase<C: Conn>(conn: &mut C, user_id: Option<&str>, email_hash: Option<&str>) -> Result<u64, StoreError> {
    let rows = conn
        .query(
            "DELETE FROM events WHERE user_id = $1 OR email_hash = $2 RETURNING id",
            vec![user_id.map(str::to_owned).into(), email_hash.map(str::to_owned).into()],
        )
        .await?;
    Ok(rows.len() as u64)
}
