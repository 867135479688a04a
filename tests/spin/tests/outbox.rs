//! A poisoned outbox on Spin (issue 19): a flush goes on past a recipient the relay refuses, a
//! 5xx makes the message dead (body wiped, reason kept), a 4xx keeps it for a retry, a message
//! not delivered within a day is given up unsent, and housekeeping deletes dead rows after a
//! week. The adapter under wasmtime with the harness's movable clock, a real SQLite file and a
//! real SMTP sink that refuses `smtp-NNN-…` recipients with NNN.

use std::path::PathBuf;
use std::time::Duration;

use gpt_user_spin_tests::artifacts::ADAPTER_WASM;
use gpt_user_spin_tests::harness::{Harness, Message, Op};
use gpt_user_test_support::smtp::SmtpSink;

const HOUR: Duration = Duration::from_secs(3600);

fn harness(name: &str, smtp_address: &str) -> Harness {
    let file = gpt_user_spin_tests::fresh_db_file(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("spin-outbox"), name);
    let vars = [("smtp_address", smtp_address), ("mail_from", "gpt-user <no-reply@example.test>")];
    Harness::new(ADAPTER_WASM.as_ref(), file, &vars).unwrap()
}

/// A message whose body holds a live-looking link, so a wiped body is seen to be wiped.
fn mail(to: &str) -> Message {
    Message {
        to: to.into(),
        kind: "signup-verification".into(),
        subject: "Confirm".into(),
        text: "https://example.test/verify#token=live-token-7c1e".into(),
        html: "<a href=\"https://example.test/verify#token=live-token-7c1e\">verify</a>".into(),
    }
}

/// `(subject, text_body, html_body, attempts, dead_at, last_error)` of the message to `to`.
type Row = (String, String, String, i64, Option<i64>, Option<String>);

fn row(h: &Harness, to: &str) -> Row {
    let db = rusqlite::Connection::open(&h.sqlite_file).unwrap();
    db.query_row("SELECT subject, text_body, html_body, attempts, dead_at, last_error FROM outbox WHERE recipient = ?1", [to], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
    })
    .unwrap()
}

fn recipients(raw: &[String]) -> Vec<String> {
    raw.iter()
        .map(|m| {
            let parsed = mail_parser::MessageParser::default().parse(m.as_bytes()).unwrap();
            parsed.to().and_then(|t| t.first()).and_then(|t| t.address()).unwrap_or_default().to_owned()
        })
        .collect()
}

#[test]
fn a_flush_goes_on_past_refused_recipients_and_a_5xx_makes_the_message_dead() {
    let (relay, mailbox) = SmtpSink::spawn_thread("127.0.0.1:0".parse().unwrap()).unwrap();
    let h = harness("refused-first", &relay.to_string());
    let mut a = h.instance().unwrap();
    let now = h.clock.now_ms();
    // Claimed in this order (by next attempt, which is the queued time of a fresh message): the
    // refused recipients first.
    let (refused, greylisted) = ("smtp-550-gone@example.test", "smtp-450-later@example.test");
    for (i, to) in [refused, greylisted, "ann@example.test", "bob@example.test"].into_iter().enumerate() {
        a.apply(&[Op::EnqueueMail((mail(to), now - 1000 + i as i64))]).unwrap().unwrap();
    }
    a.flush().unwrap();

    assert_eq!(recipients(&mailbox.raw_messages()), ["ann@example.test", "bob@example.test"], "the mail behind the refusals is delivered");
    assert_eq!(*mailbox.refused.lock().unwrap(), [refused, greylisted]);

    // 550: dead after one attempt, nothing of the message left but the reason.
    let (subject, text, html, attempts, dead_at, why) = row(&h, refused);
    assert_eq!((subject.as_str(), text.as_str(), html.as_str(), attempts), ("", "", "", 1), "the body is wiped");
    assert!(dead_at.is_some());
    let why = why.expect("the reason is kept");
    assert!(why.contains("550") && why.contains("mailbox unavailable") && !why.contains("live-token"), "{why}");

    // 450: kept whole for a retry after its backoff (30 s).
    let (_, text, _, attempts, dead_at, why) = row(&h, greylisted);
    assert!(text.contains("live-token") && attempts == 1 && dead_at.is_none(), "{text} {attempts} {dead_at:?}");
    assert!(why.is_some_and(|w| w.contains("450")));
    h.clock.advance(Duration::from_secs(31));
    let mut b = h.instance().unwrap();
    b.flush().unwrap();
    assert_eq!(*mailbox.refused.lock().unwrap(), [refused, greylisted, greylisted], "the 4xx is retried, the dead message never");
    assert_eq!(mailbox.raw_messages().len(), 2);
    assert_eq!(row(&h, greylisted).3, 2);
}

#[test]
fn a_message_not_delivered_within_a_day_is_given_up_unsent_and_housekept_after_a_week() {
    let (relay, mailbox) = SmtpSink::spawn_thread("127.0.0.1:0".parse().unwrap()).unwrap();
    let h = harness("expired", &relay.to_string());
    let mut a = h.instance().unwrap();
    let greylisted = "smtp-451-slow@example.test";
    a.enqueue(&mail(greylisted)).unwrap().unwrap();
    a.flush().unwrap();
    assert_eq!(row(&h, greylisted).3, 1, "tried once");

    // Retried every hour at most; after 24 h it is dead without another attempt, its reason
    // saying why and what the last attempt met.
    for _ in 0..23 {
        h.clock.advance(HOUR);
        h.instance().unwrap().flush().unwrap();
    }
    let (_, text, _, attempts, dead_at, _) = row(&h, greylisted);
    assert!(dead_at.is_none() && text.contains("live-token"), "still trying at 23 h");
    h.clock.advance(HOUR + Duration::from_secs(60));
    h.instance().unwrap().flush().unwrap();
    let (subject, text, html, attempts_then, dead_at, why) = row(&h, greylisted);
    assert!(dead_at.is_some(), "dead after 24 h");
    assert_eq!((subject.as_str(), text.as_str(), html.as_str()), ("", "", ""));
    assert_eq!(attempts_then, attempts, "no attempt once a day has passed");
    let why = why.unwrap();
    assert!(why.contains("24 h") && why.contains("451"), "{why}");
    assert!(mailbox.raw_messages().is_empty());

    // Housekeeping (every 5 min, from a flush) deletes dead rows a week after they died.
    h.clock.advance(Duration::from_secs(8 * 24 * 3600));
    h.instance().unwrap().flush().unwrap();
    let db = rusqlite::Connection::open(&h.sqlite_file).unwrap();
    let left: i64 = db.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0)).unwrap();
    assert_eq!(left, 0);
}
