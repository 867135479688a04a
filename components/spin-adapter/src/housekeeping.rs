//! Housekeeping on Spin (SPEC §2.1.3): the shared `gpt_user_sql::housekeeping::run` — pending
//! accounts not verified within 7 days of their **last** sign-up attempt (`updated_at`, which a
//! re-sign-up sets) with their secrets, expired secrets, email changes and ephemeral values,
//! delivered mail older than 7 days, and audit events older than the default retention (400 days:
//! not a Spin variable).
//!
//! Our host runs this from a timer; Spin runs no background tasks, so the adapter runs it from
//! `mail.flush`, after a request's answer, at most once per [`PERIOD_MS`] across all instances:
//! a one-row table holds the last run, and a conditional upsert (`… DO UPDATE … WHERE last_run
//! <= ? RETURNING`) lets exactly one instance win each period.

use gpt_user_core::ports::{StoreError as Error, Timestamp};
use gpt_user_sql::housekeeping;

use crate::bindings::fermyon::spin::sqlite::Value;
use crate::db::Db;

/// At most one run per this many milliseconds.
pub const PERIOD_MS: i64 = 5 * 60 * 1000;
/// Pending accounts and delivered mail are kept this long.
pub const KEEP_MS: i64 = gpt_user_core::ports::STALE_AFTER_MS;

/// The adapter's own table, created after the shared migrations (idempotent). Not in
/// `schema/001_init.sql`: the host schedules housekeeping itself and has no use for it. Its one
/// row is written by the first claim (an upsert), not here: the schema runs in every fresh
/// instance, and a seeding INSERT would take the write lock on every request.
pub const SCHEMA: [&str; 1] = ["CREATE TABLE IF NOT EXISTS spin_housekeeping (id BIGINT PRIMARY KEY, last_run BIGINT NOT NULL)"];

/// The last run as [`crate::mail`]'s flush reads it, in the same statement as whether mail is
/// due: `None` if housekeeping never ran.
pub const LAST_RUN: &str = "SELECT last_run FROM spin_housekeeping WHERE id = 1";

/// Runs housekeeping if this period's run is still to be done (`last_run` read by the caller,
/// from [`LAST_RUN`]). Errors are logged, never returned: the request is answered already, and a
/// later request tries again.
pub fn run_if_due(db: &Db, now: Timestamp, last_run: Option<Timestamp>) {
    // Most requests find the run not due and take no write lock at all.
    if last_run.is_some_and(|last| last > now - PERIOD_MS) {
        return;
    }
    match try_run(db, now) {
        Ok(Some(deleted)) if deleted > 0 => eprintln!("spin-adapter: housekeeping deleted {deleted} stale pending accounts"),
        Ok(_) => {}
        Err(e) => eprintln!("spin-adapter: housekeeping skipped: {e:?}"),
    }
}

/// `None` when another instance won the period; else the pending accounts deleted.
fn try_run(db: &Db, now: Timestamp) -> Result<Option<usize>, Error> {
    // Claim and deletes in one transaction: if a delete fails, the claim is rolled back too and
    // the next request tries again instead of waiting a whole period.
    db.transaction(|db| {
        // No row yet (never run): inserted, claimed. A row of this period: not updated, and
        // RETURNING yields nothing. Only one instance can move `last_run` past the period.
        let claimed = db.changed(
            "INSERT INTO spin_housekeeping (id, last_run) VALUES (1, ?) \
             ON CONFLICT (id) DO UPDATE SET last_run = excluded.last_run WHERE spin_housekeeping.last_run <= ? RETURNING id",
            &[Value::Integer(now), Value::Integer(now - PERIOD_MS)],
        )?;
        if !claimed {
            return Ok(None); // another instance ran it between our read and our write lock
        }
        let users = gpt_user_sql::block_on(housekeeping::run(&mut &*db, now, now - KEEP_MS, housekeeping::EVENTS_RETENTION_DAYS))?;
        Ok(Some(users as usize))
    })
}
