//! Conceal mode (SPEC §2.1, `privacy.conceal_accounts`): SignUp_Init gives the same status and body,
//! in similar time, whether the address is new, pending, active or blocked — also when throttled.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{Backend, Options, email, spawn_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conceal_mode_answers_every_outcome_alike_in_status_body_and_time() {
    let mut options = Options::new(Backend::Sqlite);
    options.conceal = true;
    let app = spawn_with(options).await;
    let control = app.control();
    let (new, pending, active, blocked) = (email("c-new"), email("c-pending"), email("c-active"), email("c-blocked"));
    for to in [&pending, &active, &blocked] {
        assert_eq!(app.sign_up(to, "en").await.status(), 200);
    }
    for to in [&active, &blocked] {
        let token = app.next_mail(to).await.token();
        assert_eq!(app.verify(&token).await.status(), 200);
    }
    sqlx::query("UPDATE users SET status = 'blocked' WHERE email = $1").bind(&blocked).execute(&control.db).await.unwrap();
    control.clock.advance(Duration::from_secs(61));

    // Five calls per outcome: the first sends an email, the four after it are throttled.
    let mut reference: Option<(u16, Value)> = None;
    let mut medians = Vec::new();
    for to in [&new, &pending, &active, &blocked] {
        let mut times = Vec::new();
        for call in 0..5 {
            let started = Instant::now();
            let r = app.sign_up(to, "en").await;
            times.push(started.elapsed());
            let status = r.status().as_u16();
            let mut body: Value = r.json().await.unwrap();
            let message = body["message"].as_str().unwrap().replace(to.as_str(), "EMAIL");
            body["message"] = Value::String(message);
            match &reference {
                None => reference = Some((status, body)),
                Some(expected) => assert_eq!(&(status, body), expected, "{to} call {call} answers like a new address"),
            }
        }
        times.sort();
        medians.push((to.clone(), times[2]));
    }
    assert_eq!(reference.unwrap().0, 200);
    let fastest = medians.iter().map(|m| m.1).min().unwrap();
    let slowest = medians.iter().map(|m| m.1).max().unwrap();
    assert!(slowest < fastest * 3, "median times within 3x: {medians:?}");
    // The owners of taken addresses were told by email instead.
    assert_eq!(app.next_mail(&active).await.subject, "Someone tried to sign up with your address");
    assert_eq!(app.next_mail(&blocked).await.subject, "Someone tried to sign up with your address");
}
