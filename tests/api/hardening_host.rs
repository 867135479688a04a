//! Dev mode's mailbox on the host: method check and housekeeping.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Backend, MailMode, Options, email, spawn_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_mailbox_answers_other_methods_with_405_and_allow() {
    let mut options = Options::new(Backend::Sqlite);
    options.mail = MailMode::DevMailbox;
    let app = spawn_with(options).await;
    if app.control().is_none() {
        return;
    }
    let r = app.client.post(app.url("/dev/mail")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD");
    assert_eq!(app.get("/dev/mail").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_deletes_dev_mailbox_messages_older_than_7_days() {
    let mut options = Options::new(Backend::Sqlite);
    options.mail = MailMode::DevMailbox;
    let app = spawn_with(options).await;
    let Some(control) = app.control() else { return };
    let old = email("old-mail");
    assert_eq!(app.sign_up(&old, "en").await.status(), 201);
    app.next_mail(&old).await;
    control.clock.advance(Duration::from_secs(8 * 24 * 3600));
    let new = email("new-mail");
    assert_eq!(app.sign_up(&new, "en").await.status(), 201);
    app.next_mail(&new).await;
    (control.housekeep)().await.unwrap();
    let list: Vec<Value> = app.get("/dev/mail").await.json().await.unwrap();
    assert_eq!(list.len(), 1, "only the recent message is left: {list:?}");
    assert_eq!(app.all_mail_to(&new).await.len(), 1);
}
