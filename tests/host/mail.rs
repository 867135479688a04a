//! The outbox: the dev mailbox, and an SMTP outage that delays mail but loses none.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Backend, MailMode, Options, email, spawn_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_the_email_lands_in_the_dev_mailbox() {
    let mut options = Options::new(Backend::Sqlite);
    options.mail = MailMode::DevMailbox;
    let app = spawn_with(options).await;
    let to = email("dev");
    let r = app.sign_up(&to, "en").await;
    assert_eq!(r.status(), 201);
    let pin = r.json::<Value>().await.unwrap()["pin"].as_str().unwrap().to_owned();
    let mail = app.next_mail(&to).await;
    assert_eq!(mail.subject, "Confirm your email address");
    assert!(mail.text.contains(&pin));
    assert_eq!(app.verify(&mail.token()).await.status(), 200);
    let list: Vec<Value> = app.get("/dev/mail").await.json().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(app.get("/dev/mail/..%2Fgpt-user.db").await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_outage_delays_mail_and_delivers_it_exactly_once() {
    let mut options = Options::new(Backend::Sqlite);
    options.mail = MailMode::SmtpDown;
    let app = spawn_with(options).await;
    let control = app.control();
    let to = email("outage");
    assert_eq!(app.sign_up(&to, "en").await.status(), 201, "sign-up does not wait for mail");

    // The dispatcher tries, fails and keeps the message.
    let mut attempts = 0;
    for _ in 0..100 {
        let row: (i64, Option<i64>) = sqlx::query_as("SELECT attempts, sent_at FROM outbox WHERE recipient = $1").bind(&to).fetch_one(&control.db).await.unwrap();
        assert_eq!(row.1, None);
        attempts = row.0;
        if attempts >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(attempts >= 2, "delivery was retried while the server was down");

    app.start_smtp().await;
    let mail = app.next_mail(&to).await;
    assert_eq!(mail.subject, "Confirm your email address");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.all_mail_to(&to).await.len(), 1, "delivered exactly once");
    let (sent,): (Option<i64>,) = sqlx::query_as("SELECT sent_at FROM outbox WHERE recipient = $1").bind(&to).fetch_one(&control.db).await.unwrap();
    assert!(sent.is_some());
}
