//! Housekeeping on Spin, run by the adapter's `mail.flush` (after a request's answer) at most once
//! per 5 minutes, executed under wasmtime with the harness's movable clock and a real SQLite file:
//! stale pending accounts, expired secrets, email changes and ephemeral values, old sent mail.

use std::path::PathBuf;
use std::time::Duration;

use gpt_user_spin_tests::artifacts::ADAPTER_WASM;
use gpt_user_spin_tests::harness::{Harness, Op, Secret, SecretPurpose, User, UserStatus};

const DAY_MS: i64 = 24 * 3600 * 1000;

fn harness(name: &str) -> Harness {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("spin-housekeeping");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.db"));
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    // No outbox row here is due, so the relay is never contacted.
    Harness::new(ADAPTER_WASM.as_ref(), file, &[("smtp_address", "127.0.0.1:9")]).unwrap()
}

/// A user whose account was created at `created` and last changed (a sign-up attempt) at `updated`.
fn user(id: &str, pin: &str, status: UserStatus, created: i64, updated: i64) -> User {
    User {
        id: id.into(),
        email: format!("{id}@example.com"),
        pin: pin.into(),
        passphrase_hash: "$argon2id$stub".into(),
        locale: "en".into(),
        status,
        email_verified: status != UserStatus::Pending,
        consent_at: updated,
        policy_version: "1".into(),
        created_at: created,
        updated_at: updated,
    }
}

fn secret(hash: &str, user_id: &str, expires_at: i64) -> Op {
    Op::InsertSecret(Secret { hash: hash.into(), purpose: SecretPurpose::VerifyEmail, user_id: user_id.into(), created_at: expires_at - DAY_MS, expires_at })
}

fn ids(h: &Harness, sql: &str) -> Vec<String> {
    let db = rusqlite::Connection::open(&h.sqlite_file).unwrap();
    let mut stmt = db.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

fn users(h: &Harness) -> Vec<String> {
    ids(h, "SELECT id FROM users ORDER BY id")
}

#[test]
fn stale_pending_accounts_expired_secrets_email_changes_ephemeral_values_and_old_sent_mail_are_deleted_the_rest_is_kept() {
    let h = harness("deletes");
    let mut a = h.instance().unwrap();
    let now = h.clock.now_ms();
    a.apply(&[
        Op::InsertUser(user("stale", "100001", UserStatus::Pending, now - 8 * DAY_MS, now - 8 * DAY_MS)),
        // Created long ago, but signed up again yesterday: the last attempt counts.
        Op::InsertUser(user("resigned", "100002", UserStatus::Pending, now - 30 * DAY_MS, now - DAY_MS)),
        Op::InsertUser(user("fresh", "100003", UserStatus::Pending, now, now)),
        Op::InsertUser(user("active", "100004", UserStatus::Active, now - 30 * DAY_MS, now - 30 * DAY_MS)),
        secret("stale-link", "stale", now + DAY_MS),
        secret("fresh-link", "fresh", now + DAY_MS),
        secret("fresh-expired", "fresh", now - 1),
    ])
    .unwrap()
    .unwrap();
    let db = rusqlite::Connection::open(&h.sqlite_file).unwrap();
    for (id, sent_at) in [("sent-old", Some(now - 8 * DAY_MS)), ("sent-new", Some(now - DAY_MS)), ("queued-old", None)] {
        db.execute(
            "INSERT INTO outbox (id, recipient, kind, subject, text_body, html_body, queued_at, next_attempt_at, sent_at) \
             VALUES (?1, 'x@example.com', 'k', 's', '', '', ?2, ?3, ?4)",
            rusqlite::params![id, now - 9 * DAY_MS, now + DAY_MS, sent_at],
        )
        .unwrap();
    }

    // Values and counters of the ephemeral store, and email changes, go once expired.
    a.put("ec:code:old", "h", now - 2_000, now).unwrap().unwrap();
    a.put("ec:code:live", "h", now, now + 1_000).unwrap().unwrap();
    a.increment("ec:tries:old:confirm_current", now - 2_000, now - 1).unwrap().unwrap();
    for (id, expires_at) in [("change-old", now), ("change-live", now + 3_600_000)] {
        db.execute(
            "INSERT INTO email_changes (id, user_id, state, code_ref, sends, last_send_at, created_at, expires_at, version) \
             VALUES (?1, 'active', 'confirm_current', 'r', 1, ?2, ?2, ?3, 0)",
            rusqlite::params![id, expires_at - 3_600_000, expires_at],
        )
        .unwrap();
    }

    a.flush().unwrap();
    assert_eq!(ids(&h, "SELECT key FROM ephemeral ORDER BY key"), ["ec:code:live"]);
    assert_eq!(ids(&h, "SELECT id FROM email_changes ORDER BY id"), ["change-live"]);
    assert_eq!(users(&h), ["active", "fresh", "resigned"]);
    assert_eq!(ids(&h, "SELECT hash FROM secrets ORDER BY hash"), ["fresh-link"]);
    assert_eq!(ids(&h, "SELECT id FROM outbox ORDER BY id"), ["queued-old", "sent-new"], "unsent mail is never deleted");
}

#[test]
fn housekeeping_runs_at_most_once_per_five_minutes_whichever_instance_flushes() {
    let h = harness("period");
    let mut a = h.instance().unwrap();
    a.flush().unwrap(); // the first flush runs it (nothing to delete) and starts the period
    let now = h.clock.now_ms();
    a.apply(&[Op::InsertUser(user("stale", "100001", UserStatus::Pending, now - 8 * DAY_MS, now - 8 * DAY_MS))]).unwrap().unwrap();

    h.clock.advance(Duration::from_secs(4 * 60));
    a.flush().unwrap();
    h.instance().unwrap().flush().unwrap();
    assert_eq!(users(&h), ["stale"], "a second run within the period does nothing, in any instance");

    h.clock.advance(Duration::from_secs(61));
    h.instance().unwrap().flush().unwrap();
    assert!(users(&h).is_empty(), "the next period's first flush deletes it");
}
