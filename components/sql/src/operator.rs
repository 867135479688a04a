//! What the operator's CLI (`gpt-user users …`, `gpt-user outbox …`) reads and changes, for any
//! runtime's [`Conn`]. The caller runs each change in one transaction, the account lookup
//! included, so a change acts on the row it found. Nothing here reads a secret's hash, a
//! passphrase hash or a message's subject or body: what the CLI never prints, it never has.

use gpt_user_core::audit::{Kind, event_by};
use gpt_user_core::ports::{Actor, StoreError, Timestamp, UserStatus};

use crate::store::{UserKey, status_from};
use crate::{Conn, Param, Row, audit};

const ACCOUNT_COLUMNS: &str = "id, pin, email, status, email_verified, locale, created_at, updated_at, blocked_reason";

/// An account as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub pin: String,
    pub email: String,
    pub status: UserStatus,
    pub email_verified: bool,
    pub locale: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub blocked_reason: Option<String>,
}

/// An account with the counts `users show` adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDetails {
    pub account: Account,
    /// Unexpired secrets (links, codes) of the account.
    pub open_tokens: i64,
    /// Unsent messages to its address.
    pub queued_mail: i64,
    /// Consecutive failed Auth_Checks of its PIN.
    pub auth_failures: i64,
}

/// Which accounts `users list` shows, newest first.
#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    pub status: Option<UserStatus>,
    /// A case-insensitive substring of the address.
    pub email_like: Option<String>,
    pub limit: i64,
}

pub async fn list_accounts<C: Conn>(conn: &mut C, filter: &AccountFilter) -> Result<Vec<Account>, StoreError> {
    let mut conditions = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    if let Some(status) = filter.status {
        params.push(status.as_str().into());
        conditions.push(format!("status = ${}", params.len()));
    }
    if let Some(part) = &filter.email_like {
        params.push(like_pattern(part).into());
        conditions.push(format!("email LIKE ${} ESCAPE '\\'", params.len()));
    }
    params.push(filter.limit.into());
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM users{} ORDER BY created_at DESC, id LIMIT ${}",
        if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) },
        params.len()
    );
    conn.query(&sql, params).await?.iter().map(account_from).collect()
}

pub async fn find_account<C: Conn>(conn: &mut C, key: UserKey, value: &str) -> Result<Option<Account>, StoreError> {
    let rows = conn.query(&format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE {} = $1", key.column()), vec![value.into()]).await?;
    rows.first().map(account_from).transpose()
}

pub async fn details<C: Conn>(conn: &mut C, account: Account, now: Timestamp) -> Result<AccountDetails, StoreError> {
    let open_tokens = count(conn, "SELECT COUNT(*) FROM secrets WHERE user_id = $1 AND expires_at > $2", vec![
        account.id.as_str().into(),
        now.into(),
    ])
    .await?;
    let queued_mail =
        count(conn, "SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND sent_at IS NULL AND dead_at IS NULL", vec![
            account.email.as_str().into(),
        ])
        .await?;
    let rows = conn.query("SELECT failures FROM auth_failures WHERE pin = $1", vec![account.pin.as_str().into()]).await?;
    let auth_failures = rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0);
    Ok(AccountDetails { account, open_tokens, queued_mail, auth_failures })
}

/// Blocks the account (again, if it is blocked: a new reason replaces the old, none keeps it) and
/// deletes every secret it has, so no link or code of it works any more; a `blocked` event keeps
/// the reason. Returns how many of the secrets were still valid (the tokens revoked).
pub async fn block<C: Conn>(conn: &mut C, account: &Account, reason: Option<&str>, now: Timestamp) -> Result<i64, StoreError> {
    let user_id = account.id.as_str();
    let rows = conn
        .query(
            "UPDATE users SET status = 'blocked', blocked_reason = COALESCE($1, blocked_reason), updated_at = $2 WHERE id = $3 RETURNING id",
            vec![reason.map(str::to_owned).into(), now.into(), user_id.into()],
        )
        .await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    let revoked = conn.query("DELETE FROM secrets WHERE user_id = $1 RETURNING expires_at", vec![user_id.into()]).await?;
    crate::oauth::revoke_user(conn, user_id).await?;
    let mut valid = 0;
    for row in &revoked {
        valid += i64::from(row.int(0)? > now);
    }
    audit::record(conn, event_by(Actor::Operator, now, Kind::Blocked, user_id, &account.email, reason.map(str::to_owned))).await?;
    Ok(valid)
}

/// Lifts a block: `active` if the address was verified, else `pending` (which housekeeping then
/// deletes in its time, as any unverified sign-up). `None` if the account is not blocked.
pub async fn unblock<C: Conn>(conn: &mut C, account: &Account, now: Timestamp) -> Result<Option<UserStatus>, StoreError> {
    let rows = conn
        .query(
            "UPDATE users SET status = CASE WHEN email_verified = 1 THEN 'active' ELSE 'pending' END, blocked_reason = NULL, \
             updated_at = $1 WHERE id = $2 AND status = 'blocked' RETURNING status",
            vec![now.into(), account.id.as_str().into()],
        )
        .await?;
    let unblocked = rows.first().map(|r| status(&r.text(0)?)).transpose()?;
    if unblocked.is_some() {
        audit::record(conn, event_by(Actor::Operator, now, Kind::Unblocked, &account.id, &account.email, None)).await?;
    }
    Ok(unblocked)
}

/// Deletes the account with its secrets, its email changes, its unsent mail and its PIN's count
/// of failed checks. Delivered mail stays until housekeeping: it holds no body, and it is the
/// record of what was sent. `NotFound` if the account is gone. The email changes are deleted here,
/// not left to `ON DELETE CASCADE`: SQLite enforces foreign keys only on connections that ask. The
/// account's events stay (they hold no address, only its hash), with a `deleted` one.
pub async fn delete<C: Conn>(conn: &mut C, account: &Account, now: Timestamp) -> Result<(), StoreError> {
    audit::record(conn, event_by(Actor::Operator, now, Kind::Deleted, &account.id, &account.email, None)).await?;
    conn.execute("DELETE FROM secrets WHERE user_id = $1", vec![account.id.as_str().into()]).await?;
    conn.execute("DELETE FROM email_changes WHERE user_id = $1", vec![account.id.as_str().into()]).await?;
    crate::oauth::revoke_user(conn, &account.id).await?;
    conn.execute("DELETE FROM outbox WHERE recipient = $1 AND sent_at IS NULL", vec![account.email.as_str().into()]).await?;
    conn.execute("DELETE FROM auth_failures WHERE pin = $1", vec![account.pin.as_str().into()]).await?;
    let rows = conn.query("DELETE FROM users WHERE id = $1 RETURNING id", vec![account.id.as_str().into()]).await?;
    if rows.is_empty() { Err(StoreError::NotFound) } else { Ok(()) }
}

/// Where a message is: `pending` (no attempt yet), `failed` (at least one failed attempt, to be
/// tried again), `sent`, or `dead` (refused for good or too old: never tried again, bodies wiped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailState {
    Pending,
    Failed,
    Sent,
    Dead,
}

impl MailState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Failed => "failed",
            Self::Sent => "sent",
            Self::Dead => "dead",
        }
    }

    fn condition(self) -> &'static str {
        match self {
            Self::Pending => "sent_at IS NULL AND dead_at IS NULL AND attempts = 0",
            Self::Failed => "sent_at IS NULL AND dead_at IS NULL AND attempts > 0",
            Self::Sent => "sent_at IS NOT NULL",
            Self::Dead => "dead_at IS NOT NULL",
        }
    }

    fn of(sent_at: Option<Timestamp>, dead_at: Option<Timestamp>, attempts: i64) -> Self {
        match (sent_at, dead_at, attempts) {
            (Some(_), _, _) => Self::Sent,
            (None, Some(_), _) => Self::Dead,
            (None, None, 0) => Self::Pending,
            (None, None, _) => Self::Failed,
        }
    }
}

/// An outbox row without its subject and bodies (a body may hold a live link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: String,
    pub recipient: String,
    pub kind: String,
    pub state: MailState,
    pub attempts: i64,
    pub queued_at: Timestamp,
    pub next_attempt_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub dead_at: Option<Timestamp>,
    /// The last failure; for a dead message, why it is dead (an SMTP reply, or its age).
    pub last_error: Option<String>,
}

/// How many messages are in each state, and the oldest live (pending or failed) one's queue time:
/// what the metrics endpoint reports of the outbox (one scan, at scrape time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxSummary {
    pub pending: i64,
    pub failed: i64,
    pub sent: i64,
    pub dead: i64,
    pub oldest_live_queued_at: Option<Timestamp>,
}

pub async fn outbox_summary<C: Conn>(conn: &mut C) -> Result<OutboxSummary, StoreError> {
    let [pending, failed, sent, dead] = [MailState::Pending, MailState::Failed, MailState::Sent, MailState::Dead].map(MailState::condition);
    let sql = format!(
        "SELECT COUNT(CASE WHEN {pending} THEN 1 END), COUNT(CASE WHEN {failed} THEN 1 END), COUNT(CASE WHEN {sent} THEN 1 END), \
         COUNT(CASE WHEN {dead} THEN 1 END), MIN(CASE WHEN sent_at IS NULL AND dead_at IS NULL THEN queued_at END) FROM outbox"
    );
    let rows = conn.query(&sql, vec![]).await?;
    let Some(r) = rows.first() else { return Ok(OutboxSummary::default()) };
    Ok(OutboxSummary { pending: r.int(0)?, failed: r.int(1)?, sent: r.int(2)?, dead: r.int(3)?, oldest_live_queued_at: r.opt_int(4)? })
}

/// Newest queued first.
pub async fn list_outbox<C: Conn>(conn: &mut C, state: Option<MailState>, limit: i64) -> Result<Vec<OutboxEntry>, StoreError> {
    let filter = state.map(|s| format!(" WHERE {}", s.condition())).unwrap_or_default();
    let sql = format!(
        "SELECT id, recipient, kind, attempts, queued_at, next_attempt_at, sent_at, last_error, dead_at FROM outbox{filter} \
         ORDER BY queued_at DESC, id LIMIT $1"
    );
    let rows = conn.query(&sql, vec![limit.into()]).await?;
    rows.iter()
        .map(|r| {
            let (attempts, sent_at, dead_at) = (r.int(3)?, r.opt_int(6)?, r.opt_int(8)?);
            Ok(OutboxEntry {
                id: r.text(0)?,
                recipient: r.text(1)?,
                kind: r.text(2)?,
                state: MailState::of(sent_at, dead_at, attempts),
                attempts,
                queued_at: r.int(4)?,
                next_attempt_at: r.int(5)?,
                sent_at,
                dead_at,
                last_error: r.opt_text(7)?,
            })
        })
        .collect()
}

/// What [`retry`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retried {
    /// The message is due now.
    Due,
    /// The message is dead: its bodies are gone, so there is nothing to send again.
    Dead,
    /// No unsent message has this id.
    NotFound,
}

/// Makes an unsent, live message due at `now`. A message being sent right now keeps its lease:
/// taking it away would let a second dispatcher send it again. An expired lease does not hold a
/// message back, so there is nothing else to clear. A dead message stays dead.
pub async fn retry<C: Conn>(conn: &mut C, id: &str, now: Timestamp) -> Result<Retried, StoreError> {
    let rows = conn
        .query(
            "UPDATE outbox SET next_attempt_at = $1 WHERE id = $2 AND sent_at IS NULL AND dead_at IS NULL RETURNING id",
            vec![now.into(), id.into()],
        )
        .await?;
    if !rows.is_empty() {
        return Ok(Retried::Due);
    }
    let dead = conn.query("SELECT 1 FROM outbox WHERE id = $1 AND sent_at IS NULL AND dead_at IS NOT NULL", vec![id.into()]).await?;
    Ok(if dead.is_empty() { Retried::NotFound } else { Retried::Dead })
}

/// Makes every failed (not dead) message due at `now`; returns how many.
pub async fn retry_all_failed<C: Conn>(conn: &mut C, now: Timestamp) -> Result<u64, StoreError> {
    let sql = format!("UPDATE outbox SET next_attempt_at = $1 WHERE {} RETURNING id", MailState::Failed.condition());
    Ok(conn.query(&sql, vec![now.into()]).await?.len() as u64)
}

/// Deletes delivered messages sent before `sent_before`; returns how many.
pub async fn purge_sent<C: Conn>(conn: &mut C, sent_before: Timestamp) -> Result<u64, StoreError> {
    let rows = conn.query("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1 RETURNING id", vec![sent_before.into()]).await?;
    Ok(rows.len() as u64)
}

async fn count<C: Conn>(conn: &mut C, sql: &str, params: Vec<Param>) -> Result<i64, StoreError> {
    conn.query(sql, params).await?.first().map_or(Ok(0), |r| r.int(0))
}

fn account_from<R: Row>(r: &R) -> Result<Account, StoreError> {
    Ok(Account {
        id: r.text(0)?,
        pin: r.text(1)?,
        email: r.text(2)?,
        status: status(&r.text(3)?)?,
        email_verified: r.int(4)? != 0,
        locale: r.text(5)?,
        created_at: r.int(6)?,
        updated_at: r.int(7)?,
        blocked_reason: r.opt_text(8)?,
    })
}

fn status(s: &str) -> Result<UserStatus, StoreError> {
    status_from(s).ok_or_else(|| StoreError::Other(format!("unknown user status {s:?}")))
}

/// `%part%` for `LIKE … ESCAPE '\'`, lower-cased like the stored addresses, with `%`, `_` and
/// `\` matching themselves.
fn like_pattern(part: &str) -> String {
    let mut out = String::from("%");
    for c in part.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_filter_is_a_lower_cased_substring_with_wildcards_escaped() {
        assert_eq!(like_pattern(" Ann@Example "), "%ann@example%");
        assert_eq!(like_pattern("a_b%c\\d"), "%a\\_b\\%c\\\\d%");
    }

    #[test]
    fn a_message_is_pending_until_its_first_attempt_and_sent_once_sent() {
        assert_eq!(MailState::of(None, None, 0), MailState::Pending);
        assert_eq!(MailState::of(None, None, 2), MailState::Failed);
        assert_eq!(MailState::of(Some(5), None, 3), MailState::Sent);
        assert_eq!(MailState::of(None, Some(5), 1), MailState::Dead);
        assert_eq!(MailState::of(None, Some(5), 0), MailState::Dead, "given up for its age before any attempt");
    }
}
