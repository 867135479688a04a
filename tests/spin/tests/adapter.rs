//! The adapter's store, ephemeral store and outbox executed for real under wasmtime: a harness
//! stands in for Spin's SQLite with a real SQLite file, and mail goes to a real SMTP sink on
//! 127.0.0.1.

use std::path::PathBuf;
use std::time::Duration;

use gpt_user_spin_tests::artifacts::ADAPTER_WASM;
use gpt_user_spin_tests::harness::{
    EmailChange, EmailChangeState, Error, Harness, Message, Op, ProfileUpdate, Secret, SecretPurpose, SendLimit, User, UserStatus,
};
use gpt_user_test_support::smtp::SmtpSink;

/// A fresh database file per test (tests run in parallel).
fn harness(name: &str, smtp_address: &str) -> Harness {
    let file = gpt_user_spin_tests::fresh_db_file(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("spin-adapter"), name);
    let vars = [("smtp_address", smtp_address), ("mail_from", "gpt-user <no-reply@example.test>")];
    Harness::new(ADAPTER_WASM.as_ref(), file, &vars).unwrap()
}

/// A port nothing listens on: bound, read, closed.
fn closed_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn user(id: &str, email: &str, pin: &str, now: i64) -> User {
    User {
        id: id.into(),
        email: email.into(),
        pin: pin.into(),
        passphrase_hash: "$argon2id$stub".into(),
        locale: "en".into(),
        status: UserStatus::Pending,
        email_verified: false,
        consent_at: now,
        policy_version: "1".into(),
        created_at: now,
        updated_at: now,
    }
}

fn mail(to: &str) -> Message {
    Message { to: to.into(), kind: "signup-verification".into(), subject: "Confirm".into(), text: "PIN 123456".into(), html: "<p>PIN 123456</p>".into() }
}

fn secret(hash: &str, user_id: &str, now: i64) -> Secret {
    Secret { hash: hash.into(), purpose: SecretPurpose::VerifyEmail, user_id: user_id.into(), created_at: now, expires_at: now + 60_000 }
}

#[test]
fn an_inserted_user_is_found_by_email_and_by_pin() {
    let h = harness("insert", &closed_port().to_string());
    let mut a = h.instance().unwrap();
    let now = h.clock.now_ms();
    assert_eq!(a.apply(&[Op::InsertUser(user("u1", "ann@example.com", "123456", now))]).unwrap(), Ok(()));
    let by_email = a.find_user_by_email("ann@example.com").unwrap().unwrap().expect("found by email");
    assert_eq!((by_email.id.as_str(), by_email.pin.as_str(), by_email.status), ("u1", "123456", UserStatus::Pending));
    // Another instance (Spin may create one per request) sees the same database.
    let mut b = h.instance().unwrap();
    assert_eq!(b.find_user_by_pin("123456").unwrap().unwrap().map(|u| u.email), Some("ann@example.com".into()));
    assert_eq!(b.find_user_by_email("nobody@example.com").unwrap(), Ok(None));
}

#[test]
fn a_second_user_with_the_same_email_or_pin_is_a_named_conflict() {
    let h = harness("conflict", &closed_port().to_string());
    let mut a = h.instance().unwrap();
    let now = h.clock.now_ms();
    a.apply(&[Op::InsertUser(user("u1", "ann@example.com", "111111", now))]).unwrap().unwrap();
    let same_email = a.apply(&[Op::InsertUser(user("u2", "ann@example.com", "222222", now))]).unwrap();
    assert_eq!(same_email, Err(Error::Conflict("email".into())));
    let same_pin = a.apply(&[Op::InsertUser(user("u3", "bob@example.com", "111111", now))]).unwrap();
    assert_eq!(same_pin, Err(Error::Conflict("pin".into())));
}

#[test]
fn a_secret_is_consumed_only_once_and_activation_needs_a_pending_user() {
    let h = harness("secret", &closed_port().to_string());
    let mut a = h.instance().unwrap();
    let now = h.clock.now_ms();
    a.apply(&[Op::InsertUser(user("u1", "ann@example.com", "111111", now)), Op::InsertSecret(secret("h1", "u1", now))]).unwrap().unwrap();
    assert!(a.find_secret("h1", SecretPurpose::VerifyEmail, now).unwrap().unwrap().is_some());
    assert_eq!(a.find_secret("h1", SecretPurpose::VerifyEmail, now + 120_000).unwrap(), Ok(None), "expired");
    let redeem = [Op::ConsumeSecret(("h1".into(), SecretPurpose::VerifyEmail, "u1".into(), now)), Op::Activate(("u1".into(), now))];
    assert_eq!(a.apply(&redeem).unwrap(), Ok(()));
    assert_eq!(a.apply(&redeem).unwrap(), Err(Error::NotFound), "the second redemption finds nothing");
    assert_eq!(a.apply(&[Op::Activate(("u1".into(), now))]).unwrap(), Err(Error::NotFound), "already active");
    let active = a.find_user_by_email("ann@example.com").unwrap().unwrap().unwrap();
    assert!(active.email_verified && active.status == UserStatus::Active);
}

#[test]
fn a_profile_update_changes_only_an_active_user_and_keeps_the_passphrase_unless_given() {
    let h = harness("profile", &closed_port().to_string());
    let mut a = h.instance().unwrap();
    let now = h.clock.now_ms();
    a.apply(&[Op::InsertUser(user("u1", "ann@example.com", "111111", now))]).unwrap().unwrap();
    let update = |passphrase_hash: Option<&str>| {
        Op::UpdateProfile(ProfileUpdate { user_id: "u1".into(), locale: "ru".into(), passphrase_hash: passphrase_hash.map(Into::into), now: now + 1 })
    };
    assert_eq!(a.apply(&[update(None)]).unwrap(), Err(Error::NotFound), "a pending user has no profile to edit");
    a.apply(&[Op::Activate(("u1".into(), now))]).unwrap().unwrap();
    a.apply(&[update(None)]).unwrap().unwrap();
    let kept = a.find_user_by_id("u1").unwrap().unwrap().expect("found by id");
    assert_eq!((kept.locale.as_str(), kept.passphrase_hash.as_str(), kept.updated_at), ("ru", "$argon2id$stub", now + 1));
    a.apply(&[update(Some("$argon2id$new"))]).unwrap().unwrap();
    assert_eq!(a.find_user_by_id("u1").unwrap().unwrap().unwrap().passphrase_hash, "$argon2id$new");
    assert_eq!(a.find_user_by_id("nobody").unwrap(), Ok(None));
}

#[test]
fn a_failing_apply_leaves_nothing_behind() {
    let h = harness("rollback", &closed_port().to_string());
    let mut a = h.instance().unwrap();
    let now = h.clock.now_ms();
    let ops = [
        Op::InsertUser(user("u1", "ann@example.com", "111111", now)),
        Op::InsertSecret(secret("h1", "u1", now)),
        Op::EnqueueMail((mail("ann@example.com"), now)),
        Op::Activate(("nobody".into(), now)),
    ];
    assert_eq!(a.apply(&ops).unwrap(), Err(Error::NotFound));
    assert_eq!(a.find_user_by_email("ann@example.com").unwrap(), Ok(None));
    assert_eq!(a.find_secret("h1", SecretPurpose::VerifyEmail, now).unwrap(), Ok(None));
    // The queued mail was rolled back with the rest: the send limit sees nothing.
    let limit = SendLimit { to: "ann@example.com".into(), kind: "signup-verification".into(), now, min_interval: 60_000, max_in_window: 1, window: 3_600_000 };
    assert_eq!(a.apply(&[Op::CheckSendLimit(limit)]).unwrap(), Ok(()));
    // And the connection is usable afterwards (the transaction was closed).
    assert_eq!(a.apply(&[Op::InsertUser(user("u1", "ann@example.com", "111111", now))]).unwrap(), Ok(()));
}

#[test]
fn the_send_limit_throttles_by_the_recipients_recent_outbox_rows() {
    let h = harness("throttle", &closed_port().to_string());
    let mut a = h.instance().unwrap();
    let now = h.clock.now_ms();
    let limit = |now| SendLimit { to: "ann@example.com".into(), kind: "signup-verification".into(), now, min_interval: 60_000, max_in_window: 2, window: 3_600_000 };
    let send = |now| [Op::CheckSendLimit(limit(now)), Op::EnqueueMail((mail("ann@example.com"), now))];
    assert_eq!(a.apply(&send(now)).unwrap(), Ok(()));
    assert_eq!(a.apply(&send(now + 1_000)).unwrap(), Err(Error::Throttled(59)), "min interval");
    assert_eq!(a.apply(&send(now + 61_000)).unwrap(), Ok(()));
    let Err(Error::Throttled(secs)) = a.apply(&send(now + 200_000)).unwrap() else { panic!("window full") };
    assert_eq!(secs, 3_400, "until the first of the window expires");
    let other = SendLimit { to: "bob@example.com".into(), ..limit(now + 2_000) };
    assert_eq!(a.apply(&[Op::CheckSendLimit(other)]).unwrap(), Ok(()), "another recipient is not throttled");
}

#[test]
fn queued_mail_survives_a_relay_outage_and_is_delivered_exactly_once() {
    // Reserve a port, close it: the first delivery attempt finds no relay.
    let relay = closed_port();
    let h = harness("mail", &relay.to_string());
    let mut a = h.instance().unwrap();
    let now = h.clock.now_ms();
    a.apply(&[Op::EnqueueMail((mail("ann@example.com"), now))]).unwrap().unwrap();
    a.flush().unwrap();

    // Now the relay is up, but the message waits for its backoff (30 s): nothing is sent yet.
    let (_, mailbox) = SmtpSink::spawn_thread(relay).unwrap();
    a.flush().unwrap();
    assert!(mailbox.raw_messages().is_empty(), "retried before its backoff");

    h.clock.advance(Duration::from_secs(31));
    let mut b = h.instance().unwrap();
    b.flush().unwrap();
    let messages = mailbox.raw_messages();
    assert_eq!(messages.len(), 1, "delivered once after the outage");
    let parsed = mail_parser::MessageParser::default().parse(messages[0].as_bytes()).unwrap();
    assert_eq!(parsed.subject(), Some("Confirm"));
    assert_eq!(parsed.from().and_then(|f| f.first()).and_then(|f| f.address()), Some("no-reply@example.test"));
    assert_eq!(parsed.to().and_then(|t| t.first()).and_then(|t| t.address()), Some("ann@example.com"));
    assert!(parsed.body_text(0).unwrap().contains("PIN 123456"));
    assert!(parsed.body_html(0).unwrap().contains("<p>PIN 123456</p>"));

    // Later calls, from any instance and however much later, never send it again.
    h.clock.advance(Duration::from_secs(7_200));
    a.flush().unwrap();
    b.enqueue(&mail("bob@example.com")).unwrap().unwrap();
    b.flush().unwrap();
    let messages = mailbox.raw_messages();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(messages[1].contains("bob@example.com"));
}

#[test]
fn neither_apply_nor_enqueue_delivers_mail_only_flush_does() {
    let (relay, mailbox) = SmtpSink::spawn_thread("127.0.0.1:0".parse().unwrap()).unwrap();
    let h = harness("flush", &relay.to_string());
    let mut a = h.instance().unwrap();
    let now = h.clock.now_ms();
    a.apply(&[Op::EnqueueMail((mail("ann@example.com"), now))]).unwrap().unwrap();
    a.enqueue(&mail("bob@example.com")).unwrap().unwrap();
    assert!(mailbox.raw_messages().is_empty(), "delivered inline, before the flow could answer");
    a.flush().unwrap();
    let messages = mailbox.raw_messages();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    a.flush().unwrap();
    assert_eq!(mailbox.raw_messages().len(), 2, "a second flush sends nothing again");
}

#[test]
fn texts_come_from_the_embedded_bundles() {
    let h = harness("l10n", &closed_port().to_string());
    let mut a = h.instance().unwrap();
    assert_eq!(a.negotiate("ru-RU,ru;q=0.9,en;q=0.8").unwrap(), "ru");
    let args = [("link".to_owned(), "https://x/signup/verify#token=t".to_owned()), ("pin".to_owned(), "123456".to_owned()), ("valid-hours".to_owned(), "24".to_owned())];
    let m = a.render_email("en", "signup-verification", "ann@example.com", &args).unwrap().unwrap();
    assert!(m.text.contains("123456") && m.to == "ann@example.com");
    assert!(a.render_email("en", "no-such-kind", "ann@example.com", &[]).unwrap().is_err());
}

#[test]
fn a_database_replaced_under_a_living_instance_is_kept_by_it_and_a_new_instance_creates_the_tables_again() {
    let h = harness("replaced", &closed_port().to_string());
    let mut a = h.instance().unwrap();
    assert_eq!(a.find_user_by_email("ann@example.com").unwrap(), Ok(None));
    // The adapter keeps its connection for the instance, across requests (`flush` ends one).
    a.flush().unwrap();
    std::fs::remove_file(&h.sqlite_file).unwrap();
    assert_eq!(a.find_user_by_email("ann@example.com").unwrap(), Ok(None), "the instance goes on with the file it opened");
    a.flush().unwrap();
    let mut b = h.instance().unwrap();
    assert_eq!(b.find_user_by_email("ann@example.com").unwrap(), Ok(None), "a new instance creates the schema in the new file");
    let db = rusqlite::Connection::open(&h.sqlite_file).unwrap();
    let tables: i64 = db.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'users'", [], |r| r.get(0)).unwrap();
    assert_eq!(tables, 1);
}

#[test]
fn ephemeral_values_expire_on_the_callers_clock_without_a_native_ttl() {
    let h = harness("ephemeral-expiry", &closed_port().to_string());
    let mut a = h.instance().unwrap();
    let now = h.clock.now_ms();
    assert_eq!(a.get("ec:code:r1", now).unwrap(), Ok(None));
    a.put("ec:code:r1", "hash-1", now, now + 1_000).unwrap().unwrap();
    assert_eq!(a.get("ec:code:r1", now + 999).unwrap(), Ok(Some("hash-1".into())));
    // Another instance (Spin may create one per request) reads the same value and the same expiry.
    let mut b = h.instance().unwrap();
    assert_eq!(b.get("ec:code:r1", now + 999).unwrap(), Ok(Some("hash-1".into())));
    assert_eq!(b.get("ec:code:r1", now + 1_000).unwrap(), Ok(None), "expired at expires_at");
    // No TTL removed it: the row is still there, the read judged it (housekeeping deletes it).
    let db = rusqlite::Connection::open(&h.sqlite_file).unwrap();
    let rows: i64 = db.query_row("SELECT COUNT(*) FROM ephemeral WHERE key = 'ec:code:r1'", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 1);
    // A put replaces value and expiry; a delete removes it, and deleting nothing is no error.
    a.put("ec:code:r1", "hash-2", now + 2_000, now + 3_000).unwrap().unwrap();
    assert_eq!(a.get("ec:code:r1", now + 2_999).unwrap(), Ok(Some("hash-2".into())));
    a.delete("ec:code:r1").unwrap().unwrap();
    a.delete("ec:code:r1").unwrap().unwrap();
    assert_eq!(a.get("ec:code:r1", now + 2_000).unwrap(), Ok(None));
}

#[test]
fn an_ephemeral_counter_counts_until_it_expires_then_starts_again_at_one() {
    let h = harness("ephemeral-counter", &closed_port().to_string());
    let mut a = h.instance().unwrap();
    let now = h.clock.now_ms();
    let key = "ec:tries:flow:confirm_current";
    assert_eq!(a.increment(key, now, now + 1_000).unwrap(), Ok(1));
    assert_eq!(a.increment(key, now + 500, now + 9_999).unwrap(), Ok(2), "a live counter keeps its expiry");
    assert_eq!(h.instance().unwrap().increment(key, now + 999, now + 9_999).unwrap(), Ok(3));
    assert_eq!(a.increment(key, now + 1_000, now + 2_000).unwrap(), Ok(1), "expired: starts again");
    assert_eq!(a.increment(key, now + 1_999, now + 5_000).unwrap(), Ok(2), "until the new expiry");
    assert_eq!(a.increment(key, now + 2_000, now + 5_000).unwrap(), Ok(1));
}

#[test]
fn concurrent_increments_from_many_instances_each_get_their_own_count() {
    let h = harness("ephemeral-race", &closed_port().to_string());
    let now = h.clock.now_ms();
    h.instance().unwrap().get("warm-up", now).unwrap().unwrap(); // the schema, before the race
    let mut counts: Vec<u32> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..32)
            .map(|_| s.spawn(|| h.instance().unwrap().increment("ec:tries:race:confirm_new", now, now + 60_000).unwrap().unwrap()))
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    counts.sort_unstable();
    assert_eq!(counts, (1..=32).collect::<Vec<u32>>());
}

#[test]
fn a_started_email_change_is_found_by_its_id() {
    let h = harness("email-change", &closed_port().to_string());
    let mut a = h.instance().unwrap();
    let now = h.clock.now_ms();
    let change = EmailChange {
        id: "flow-1".into(),
        user_id: "u1".into(),
        state: EmailChangeState::ConfirmCurrent,
        new_email: None,
        code_ref: "ref-1".into(),
        sends: 1,
        last_send_at: now,
        window_ends_at: None,
        created_at: now,
        expires_at: now + 3_600_000,
        version: 0,
    };
    a.apply(&[Op::InsertUser(user("u1", "ann@example.com", "111111", now)), Op::Activate(("u1".into(), now))]).unwrap().unwrap();
    a.apply(&[Op::StartEmailChange(change.clone())]).unwrap().unwrap();
    assert_eq!(h.instance().unwrap().find_email_change("flow-1").unwrap(), Ok(Some(change)));
    assert_eq!(a.find_email_change("nobody").unwrap(), Ok(None));
}

#[test]
fn a_flush_with_nothing_due_does_not_wait_for_another_instances_write_lock() {
    let h = harness("flush-no-write-lock", &closed_port().to_string());
    let mut a = h.instance().unwrap();
    // The first flush creates the schema and runs housekeeping, which is then not due for 5 min.
    a.flush().unwrap();
    // Another instance holds SQLite's one write lock (a transaction in progress).
    let other = rusqlite::Connection::open(&h.sqlite_file).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    a.flush().unwrap();
    let waited = started.elapsed();
    other.execute_batch("ROLLBACK").unwrap();
    // The harness's busy timeout is 5 s: an UPDATE that claims nothing would still wait for the
    // lock that long and then fail. A plain read first does not wait at all.
    assert!(waited < Duration::from_secs(2), "flush waited {waited:?} for a write lock though no mail was due");
    // With mail due, a flush does claim it once the lock is free.
    let (relay, mailbox) = SmtpSink::spawn_thread("127.0.0.1:0".parse().unwrap()).unwrap();
    let h2 = harness("flush-no-write-lock-due", &relay.to_string());
    let mut b = h2.instance().unwrap();
    b.enqueue(&mail("ann@example.com")).unwrap().unwrap();
    b.flush().unwrap();
    assert_eq!(mailbox.raw_messages().len(), 1);
}

#[test]
fn every_instance_warns_on_stderr_when_dev_mode_is_on_and_only_then() {
    let run = |dev: &str| {
        let mut h = harness(&format!("dev-warning-{dev}"), "127.0.0.1:9");
        let mut vars = vec![("smtp_address", "127.0.0.1:9"), ("dev", dev)];
        vars.retain(|(_, v)| !v.is_empty());
        h = Harness::new(ADAPTER_WASM.as_ref(), h.sqlite_file.clone(), &vars).unwrap();
        let pipe = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(64 * 1024);
        h.stderr = Some(pipe.clone());
        for _ in 0..2 {
            let mut instance = h.instance().unwrap();
            instance.flush().unwrap();
            instance.flush().unwrap();
        }
        String::from_utf8_lossy(&pipe.contents()).into_owned()
    };
    let logged = run("true");
    assert_eq!(logged.matches("WARNING: dev mode is on").count(), 2, "once per instance: {logged}");
    assert!(logged.contains("Never deploy with dev = true"), "{logged}");
    assert!(!run("false").contains("dev mode"));
}
