//! Housekeeping (SPEC §2.1.3): the statements, and [`run`], which both runtimes run in one
//! transaction.

use gpt_user_core::ports::{AUTH_LOCK_AFTER, StoreError, Timestamp};

/// `$1` now, `$2` the last sign-up attempt before which a pending account is stale: expired
/// secrets, and every secret of a stale pending account.
pub const DELETE_SECRETS: &str = "DELETE FROM secrets WHERE expires_at <= $1 \
     OR user_id IN (SELECT id FROM users WHERE status = 'pending' AND updated_at < $2)";
/// `$1` as `$2` above. `RETURNING` counts the rows on a runtime without a changes count (Spin).
pub const DELETE_STALE_PENDING_USERS: &str = "DELETE FROM users WHERE status = 'pending' AND updated_at < $1 RETURNING id";
/// `$1` delivered, or given up as dead (`gpt_user_sql::outbox::mark_dead`: bodies already
/// wiped, the reason kept for the operator until then), before this.
pub const DELETE_SENT_MAIL: &str =
    "DELETE FROM outbox WHERE (sent_at IS NOT NULL AND sent_at < $1) OR (dead_at IS NOT NULL AND dead_at < $1)";
/// `$1` failed before this, `$2` the lock threshold: counts of failed checks that stopped, unless
/// they locked the PIN of an account (that lock lasts until the owner sets a new passphrase). A
/// lock of a PIN that no account has goes as a count does: nobody can lift it, and each guessed
/// PIN would keep its row forever.
pub const DELETE_OLD_AUTH_FAILURES: &str = "DELETE FROM auth_failures WHERE last_failure_at < $1 \
     AND (failures < $2 OR NOT EXISTS (SELECT 1 FROM users WHERE users.pin = auth_failures.pin))";
/// `$1` now: ephemeral values (codes, counters) past their expiry.
pub const DELETE_EXPIRED_EPHEMERAL: &str = "DELETE FROM ephemeral WHERE expires_at <= $1";
/// `$1` now: email changes past their expiry (1 h after start), whatever their state.
pub const DELETE_EXPIRED_EMAIL_CHANGES: &str = "DELETE FROM email_changes WHERE expires_at <= $1";

/// The audit trail is kept this long by default (`events_retention_days`).
pub const EVENTS_RETENTION_DAYS: u32 = 400;

/// One housekeeping run at `now`, inside the caller's transaction, for every runtime: secrets and
/// pending accounts whose last sign-up attempt is before `stale_before`, delivered and dead mail and
/// stopped counts of failed checks older than it, expired email changes (each unfinished one
/// leaves an `email-change-expired` event, each deleted account a `deleted` one) and ephemeral
/// values, expired OAuth codes and tokens (and grants left with none), and events more than `events_retention_days` old. Returns the pending accounts deleted.
pub async fn run<C: crate::Conn>(conn: &mut C, now: Timestamp, stale_before: Timestamp, events_retention_days: u32) -> Result<u64, StoreError> {
    conn.execute(DELETE_SECRETS, vec![now.into(), stale_before.into()]).await?;
    crate::audit::record_expired_email_changes(conn, now).await?;
    conn.execute(DELETE_EXPIRED_EMAIL_CHANGES, vec![now.into()]).await?;
    crate::audit::record_stale_pending_deletions(conn, now, stale_before).await?;
    let users = conn.query(DELETE_STALE_PENDING_USERS, vec![stale_before.into()]).await?.len() as u64;
    conn.execute(DELETE_SENT_MAIL, vec![stale_before.into()]).await?;
    conn.execute(DELETE_OLD_AUTH_FAILURES, vec![stale_before.into(), AUTH_LOCK_AFTER.into()]).await?;
    conn.execute(DELETE_EXPIRED_EPHEMERAL, vec![now.into()]).await?;
    crate::oauth::delete_expired(conn, now).await?;
    crate::audit::delete_older(conn, now - i64::from(events_retention_days) * 86_400_000).await?;
    Ok(users)
}
