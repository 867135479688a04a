//! Mail as any server must send it: each queued message exactly once. Through the round-robin
//! balancer of `scripts/multihost.sh` the requests below land on every host, and every host's
//! dispatcher races for the same outbox: a message claimed twice would arrive twice. (Every test
//! also checks on drop that its SMTP listener got no message twice: `TestApp::check_mail_delivered_once`.)

use std::collections::HashMap;
use std::time::Duration;

use crate::helpers::{Backend, delivery_id, email, spawn_app};
use crate::on_both_backends;

on_both_backends!(twelve_concurrent_sign_ups_get_twelve_messages_each_delivered_exactly_once);

/// How long to wait, after the last expected message arrived, for a copy of one: many dispatcher
/// polls (`GPT_USER_MAIL_POLL_MS` is 100 ms in the tests and in `.ci/run`'s servers) and retries.
const SETTLE: Duration = Duration::from_millis(2_000);

async fn twelve_concurrent_sign_ups_get_twelve_messages_each_delivered_exactly_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let addresses: Vec<String> = (0..12).map(|i| email(&format!("once{i}"))).collect();
    let answers = futures::future::join_all(addresses.iter().map(|to| app.sign_up(to, "en"))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 201), "every sign-up is created: {statuses:?}");
    for to in &addresses {
        app.next_mail(to).await;
    }
    tokio::time::sleep(SETTLE).await;

    let messages = app.inbox_messages();
    let mut ids: HashMap<String, &str> = HashMap::new();
    for m in messages.iter().filter(|m| m.recipients.iter().any(|r| addresses.contains(r))) {
        let id = delivery_id(&m.raw);
        let to = m.recipients.first().map(String::as_str).unwrap_or_default();
        if let Some(before) = ids.insert(id.clone(), to) {
            panic!("message {id} (to {to}) was delivered twice (first to {before})");
        }
    }
    assert_eq!(ids.len(), addresses.len(), "exactly one message per sign-up: {ids:?}");
    for to in &addresses {
        assert_eq!(app.all_mail_to(to).await.len(), 1, "one message to {to}");
    }
}
