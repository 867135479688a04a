//! A poisoned outbox (issue 19): mail the relay refuses for good is marked dead after one attempt
//! (body wiped, reason kept) and so does not hold up fresh mail; a transient refusal keeps its
//! message for a retry; a message not delivered within a day is given up unsent; housekeeping
//! deletes dead rows after a week. The test SMTP sink refuses `smtp-NNN-…` recipients with NNN
//! (`tests/support/src/smtp.rs`).

use std::time::{Duration, Instant};

use crate::helpers::{Backend, Options, TestApp, email, spawn_with};
use crate::on_both_backends;

on_both_backends!(
    a_sign_up_is_mailed_promptly_behind_a_thousand_messages_the_relay_refuses,
    a_5xx_makes_a_message_dead_with_its_body_wiped_and_a_4xx_keeps_it_for_a_retry,
    a_message_not_delivered_within_a_day_is_given_up_unsent_and_housekept_after_a_week,
);

/// The poisoned rows of the test.
const POISON: usize = 1000;
/// How soon the sign-up's mail must arrive behind them: the normal retry interval on Spin (30 s)
/// and well under the host's retry cap (`mail_retry_max_ms`, 10 min). Without dead mail, a
/// refused message came back after each backoff (here 100–400 ms) and, claimed by queued time,
/// went before the fresh one every time: the sign-up's mail never left.
const PROMPTLY: Duration = Duration::from_secs(30);
const HOUR_MS: u64 = 3_600_000;

/// A unique address the sink refuses at `RCPT` with `code`.
fn refused(code: u16, tag: &str) -> String {
    format!("smtp-{code}-{tag}-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// `(subject, text_body, html_body, attempts, dead_at, last_error)` of the one message to `to`.
type Row = (String, String, String, i64, Option<i64>, Option<String>);

async fn row(app: &TestApp, to: &str) -> Row {
    sqlx::query_as("SELECT subject, text_body, html_body, attempts, dead_at, last_error FROM outbox WHERE recipient = $1")
        .bind(to)
        .fetch_one(&app.control().db)
        .await
        .unwrap()
}

/// Waits (up to 20 s) until the message to `to` satisfies `done`.
async fn wait_for(app: &TestApp, to: &str, what: &str, done: impl Fn(&Row) -> bool) -> Row {
    for _ in 0..200 {
        let r = row(app, to).await;
        if done(&r) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the mail to {to} never {what}: {:?}", row(app, to).await);
}

async fn a_sign_up_is_mailed_promptly_behind_a_thousand_messages_the_relay_refuses(backend: Backend) {
    // The helpers' retries: 100 ms doubling to 400 ms, a poll every 100 ms.
    let app = spawn_with(Options::new(backend)).await;
    let control = app.control();
    // Queued a minute ago and due since: ahead of anything queued now, by either order.
    let since = control.clock.now_ms() - 60_000;
    let run = &uuid::Uuid::new_v4().simple().to_string()[..12];
    for chunk in 0..POISON / 100 {
        let values: Vec<String> = (chunk * 100..(chunk + 1) * 100)
            .map(|i| {
                format!(
                    "('poison-{run}-{i}', 'smtp-550-{run}-{i}@example.com', 'signup-verification', 'Confirm your email address', \
                     'https://example.test/verify#token=poison-token-{i}', '<a>poison-token-{i}</a>', {since}, {since})"
                )
            })
            .collect();
        sqlx::query(&format!(
            "INSERT INTO outbox (id, recipient, kind, subject, text_body, html_body, queued_at, next_attempt_at) VALUES {}",
            values.join(", ")
        ))
        .execute(&control.db)
        .await
        .unwrap();
    }

    let started = Instant::now();
    let to = email("behind-poison");
    assert_eq!(app.sign_up(&to, "en").await.status(), 201);
    let mail = app.try_next_mail(&to, PROMPTLY).await;
    let took = started.elapsed();
    let (dead, attempts): (i64, Option<i64>) =
        sqlx::query_as("SELECT COUNT(dead_at), CAST(SUM(attempts) AS BIGINT) FROM outbox WHERE recipient LIKE 'smtp-550-%'").fetch_one(&control.db).await.unwrap();
    let mail = mail.unwrap_or_else(|| panic!("no sign-up mail within {PROMPTLY:?} behind {POISON} refused messages ({dead} dead, {attempts:?} attempts)"));
    assert_eq!(mail.subject, "Confirm your email address");
    eprintln!("{backend:?}: the sign-up's mail arrived {took:?} after it, behind {POISON} refused messages");

    // Each refused message was tried once, is dead, and keeps only its reason.
    type Row = (i64, Option<i64>, String, String, String, Option<String>);
    let left: Vec<Row> = sqlx::query_as(
        "SELECT attempts, dead_at, subject, text_body, html_body, last_error FROM outbox WHERE recipient LIKE 'smtp-550-%'",
    )
    .fetch_all(&control.db)
    .await
    .unwrap();
    assert_eq!(left.len(), POISON);
    for (attempts, dead_at, subject, text, html, why) in &left {
        assert_eq!(*attempts, 1, "tried once, never again");
        assert!(dead_at.is_some());
        assert!(subject.is_empty() && text.is_empty() && html.is_empty(), "the body is wiped");
        let why = why.as_deref().unwrap_or_default();
        assert!(why.contains("550") && !why.contains("poison-token"), "{why}");
    }
}

async fn a_5xx_makes_a_message_dead_with_its_body_wiped_and_a_4xx_keeps_it_for_a_retry(backend: Backend) {
    let app = spawn_with(Options::new(backend)).await;
    let (gone, later) = (refused(550, "gone"), refused(450, "later"));
    assert_eq!(app.sign_up(&gone, "en").await.status(), 201, "a sign-up does not wait for its mail");
    assert_eq!(app.sign_up(&later, "ru").await.status(), 201);
    let ok = email("fine");
    assert_eq!(app.sign_up(&ok, "en").await.status(), 201);
    app.next_mail(&ok).await;

    // 550 at RCPT: dead after its one attempt; nothing of the message but the reason.
    let (subject, text, html, attempts, _, why) = wait_for(&app, &gone, "died", |r| r.4.is_some()).await;
    assert_eq!((subject.as_str(), text.as_str(), html.as_str(), attempts), ("", "", "", 1));
    let why = why.expect("the reason is kept");
    assert!(why.contains("550") && why.contains("mailbox unavailable") && !why.contains("token"), "{why}");

    // 450: tried again and again (100–400 ms apart here), its body kept for the next attempt.
    let (_, text, _, attempts, dead_at, why) = wait_for(&app, &later, "was retried", |r| r.3 >= 3).await;
    assert!(dead_at.is_none() && attempts >= 3);
    assert!(text.contains("#token="), "the link waits in the body for the next attempt");
    assert!(why.is_some_and(|w| w.contains("450")));

    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(row(&app, &gone).await.3, 1, "a dead message is never tried again");
}

async fn a_message_not_delivered_within_a_day_is_given_up_unsent_and_housekept_after_a_week(backend: Backend) {
    let mut options = Options::new(backend);
    // A failed message waits an hour for its next attempt.
    options.config = Some(|config| {
        config.mail_retry_base_ms = HOUR_MS;
        config.mail_retry_max_ms = HOUR_MS;
    });
    let app = spawn_with(options).await;
    let control = app.control();
    let later = refused(451, "later");
    assert_eq!(app.sign_up(&later, "en").await.status(), 201);
    let (_, _, _, attempts, _, _) = wait_for(&app, &later, "failed", |r| r.3 == 1).await;

    // A deliverable message held back (due in 23 h): when it comes due it is a day old.
    let held = email("held");
    let now = control.clock.now_ms();
    sqlx::query(
        "INSERT INTO outbox (id, recipient, kind, subject, text_body, html_body, queued_at, next_attempt_at) \
         VALUES ($1, $2, 'signup-verification', 'Confirm your email address', 'held-token-3b9d', '<p>held-token-3b9d</p>', $3, $4)",
    )
    .bind(uuid::Uuid::new_v4().simple().to_string())
    .bind(&held)
    .bind(now)
    .bind(now + 23 * HOUR_MS as i64)
    .execute(&control.db)
    .await
    .unwrap();

    control.clock.advance(Duration::from_secs(24 * 3600 + 60));
    let (subject, text, html, attempts_then, _, why) = wait_for(&app, &later, "expired", |r| r.4.is_some()).await;
    assert_eq!((subject.as_str(), text.as_str(), html.as_str()), ("", "", ""), "the body is wiped");
    assert_eq!(attempts_then, attempts, "given up without another attempt");
    let why = why.unwrap();
    assert!(why.contains("24 h") && why.contains("451"), "the age and the last attempt's error: {why}");
    let (_, text, _, attempts, _, why) = wait_for(&app, &held, "expired", |r| r.4.is_some()).await;
    assert!(text.is_empty() && attempts == 0 && why.is_some_and(|w| w.contains("24 h")));
    assert!(app.try_next_mail(&held, Duration::from_millis(1000)).await.is_none(), "a day late, the link is not sent");

    // Kept for the operator a week, then deleted by housekeeping.
    control.clock.advance(Duration::from_secs(6 * 24 * 3600));
    (control.housekeep)().await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE dead_at IS NOT NULL").fetch_one(&control.db).await.unwrap();
    assert_eq!(n, 2, "six days after they died, still listed");
    control.clock.advance(Duration::from_secs(2 * 24 * 3600));
    (control.housekeep)().await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox").fetch_one(&control.db).await.unwrap();
    assert_eq!(n, 0, "a week after they died, gone");
}
