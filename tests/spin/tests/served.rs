//! The composed apps (each flow component + Spin adapter) served as an HTTP handler under wasmtime,
//! with the Spin variables of `spin.toml`: GPT actions are closed by default, and the answer
//! never waits for the SMTP relay: mail goes out in `mail.flush`, after the answer. Also the example
//! of an embedding application (`examples/orders` + our auth component + the adapter) on the same
//! database as the sign-up component.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use gpt_user_spin_tests::artifacts::{ADAPTER_WASM, EXAMPLE_ORDERS_WASM, FLOW_COMPONENTS};
use gpt_user_spin_tests::harness::{Harness, Message};
use gpt_user_spin_tests::compose::plug_into;
use gpt_user_spin_tests::served::App;
use gpt_user_test_support::smtp::SmtpSink;

const KEY: &str = "test-service-key";

/// A fresh database file per test (tests run in parallel).
fn db_file(name: &str) -> PathBuf {
    gpt_user_spin_tests::fresh_db_file(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("spin-served"), name)
}

/// A port nothing listens on: bound, read, closed.
fn closed_port() -> String {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string()
}

/// A relay that accepts connections and never says a word (no `220` greeting): the SMTP client
/// waits for it forever. Each accepted connection is reported on the channel and kept open.
fn silent_relay() -> (SocketAddr, mpsc::Receiver<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if tx.send(stream).is_err() {
                return;
            }
        }
    });
    (addr, rx)
}

/// `(sent_at, attempts)` of every outbox row.
fn outbox(app: &App) -> Vec<(Option<i64>, i64)> {
    let db = rusqlite::Connection::open(&app.sqlite_file).unwrap();
    let mut stmt = db.prepare("SELECT sent_at, attempts FROM outbox").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_api_key_or_dev_mode_gpt_actions_answer_403_api_key_not_configured() {
    // spin.toml's defaults: api_keys empty, dev "false".
    let app = App::new(db_file("closed"), &[("smtp_address", &closed_port())]).unwrap();
    let (answer, guest) = app.sign_up("ann@example.com", None).await.unwrap();
    assert_eq!(answer.status, 403, "{answer:?}");
    assert_eq!(answer.json()["code"], "API_KEY_NOT_CONFIGURED", "{answer:?}");
    guest.await.unwrap().unwrap();
    assert!(outbox(&app).is_empty(), "nobody was signed up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_dev_mode_gpt_actions_run_without_an_api_key() {
    let app = App::new(db_file("dev"), &[("dev", "true"), ("smtp_address", &closed_port())]).unwrap();
    let (answer, guest) = app.sign_up("ann@example.com", None).await.unwrap();
    assert_eq!(answer.status, 201, "{answer:?}");
    assert_eq!(answer.json()["status"], "pending");
    guest.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_our_host_the_component_names_each_answer_with_a_request_id_and_its_audit_events() {
    // Spin sets no X-Request-Id: the component makes one, or keeps a well-formed one of a proxy.
    let app = App::new(db_file("request-id"), &[("dev", "true"), ("smtp_address", &closed_port())]).unwrap();
    let (first, guest) = app.sign_up("rid@example.com", None).await.unwrap();
    guest.await.unwrap().unwrap();
    let (second, guest) = app.send(hyper::Request::get("http://127.0.0.1:3000/healthz").body(bytes::Bytes::new()).unwrap()).await.unwrap();
    guest.await.unwrap().unwrap();
    let id = |a: &gpt_user_spin_tests::served::Answer| a.headers.get("x-request-id").expect("an id").to_str().unwrap().to_owned();
    assert_eq!(id(&first).len(), 32);
    // The sign-up's audit event, written through the adapter's SQLite, names that request.
    let db = rusqlite::Connection::open(&app.sqlite_file).unwrap();
    let (kind, actor, request): (String, String, Option<String>) =
        db.query_row("SELECT kind, actor, request_id FROM events", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
    assert_eq!((kind.as_str(), actor.as_str(), request), ("account-created", "chat", Some(id(&first))));
    assert_ne!(id(&first), id(&second), "one per request");
    let proxied = hyper::Request::get("http://127.0.0.1:3000/healthz").header("x-request-id", "proxy-1234").body(bytes::Bytes::new()).unwrap();
    let (third, guest) = app.send(proxied).await.unwrap();
    guest.await.unwrap().unwrap();
    assert_eq!(id(&third), "proxy-1234");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_never_answers_does_not_delay_the_sign_up_answer_and_frees_the_instance_at_its_deadline() {
    let (relay, connections) = silent_relay();
    let app = App::new(db_file("hung"), &[("api_keys", KEY), ("smtp_address", &relay.to_string())]).unwrap();
    let answered = tokio::time::timeout(Duration::from_secs(2), app.sign_up("ann@example.com", Some(KEY))).await;
    let (answer, guest) = answered.expect("the whole answer within 2 s although the relay is silent").unwrap();
    assert_eq!(answer.status, 201, "{answer:?}");
    eprintln!("answer complete after {:?} with the relay silent", answer.elapsed);

    // After the answer the flush connects to the relay and waits for its greeting...
    let mut held = connections.recv_timeout(Duration::from_secs(20)).expect("the flush tried to deliver after the answer");
    assert!(!guest.is_finished(), "the guest is still waiting for the relay: the answer did not wait with it");
    assert_eq!(outbox(&app), vec![(None, 0)], "the message stays queued, not sent, no attempt counted yet");
    // Meanwhile the same instance serves other requests: the flush waits in an async call, so its
    // instance is not blocked (a sync wait would hold every request sent to it for 10 s).
    let started = std::time::Instant::now();
    let healthz = hyper::Request::get("http://127.0.0.1:3000/healthz").body(bytes::Bytes::new()).unwrap();
    let (health, _) = tokio::time::timeout(Duration::from_secs(2), app.send(healthz)).await.expect("/healthz during the hang").unwrap();
    assert_eq!(health.status, 200, "{health:?}");
    let (bob, _) = tokio::time::timeout(Duration::from_secs(2), app.sign_up("bob@example.com", Some(KEY))).await.expect("a sign-up during the hang").unwrap();
    assert_eq!(bob.status, 201, "{bob:?}");
    eprintln!("/healthz and a second sign-up answered in {:?} while the relay hangs", started.elapsed());
    assert_eq!(app.instances(), 1, "both were served by the instance whose flush waits for the relay");
    assert!(!guest.is_finished(), "the first flush still waits for the relay");
    // ... until the reply deadline (the adapter's `smtp::REPLY_MS`, 10 s): then the instance is
    // free again, the attempt is counted and the messages stay queued for a later flush (the
    // second request's flush found one running in its instance and left the outbox to it).
    let ended = tokio::time::timeout(Duration::from_secs(40), guest).await;
    ended.expect("the guest ends at the SMTP deadline instead of never").unwrap().unwrap();
    let mut rows = outbox(&app);
    rows.sort();
    assert_eq!(rows, vec![(None, 0), (None, 1)], "one failed attempt, both messages still queued");
    assert!(connections.try_recv().is_err(), "one connection to the relay: the second flush did not open another");
    held.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let closed = match std::io::Read::read(&mut held, &mut [0u8; 64]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe),
    };
    assert!(closed, "the client closed its connection to the silent relay");
}

/// Instance reuse (issue 21): requests of two users, one after the other, go through one
/// instance, then two more at once (the dispatcher gives one instance a second request only
/// while its first waits, else starts another); each answer and each mail is its user's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_through_one_instance_each_get_their_own_answer_and_mail() {
    let sink = SmtpSink::start("127.0.0.1:0").await.unwrap();
    let app = App::new(db_file("isolation"), &[("api_keys", KEY), ("smtp_address", &sink.addr.to_string())]).unwrap();
    let body = |email: &str, locale: &str, passphrase: &str| serde_json::json!({"email": email, "consent": true, "locale": locale, "passphrase": passphrase});
    let (ann, guest) = app.post("/api/signup/init", &body("ann@example.com", "en", "ann's own passphrase 1"), Some(KEY)).await.unwrap();
    guest.await.unwrap().unwrap();
    let (bob, guest) = app.post("/api/signup/init", &body("bob@example.com", "ru", "пароль боба номер два"), Some(KEY)).await.unwrap();
    guest.await.unwrap().unwrap();
    assert_eq!(app.instances(), 1, "one instance served both users");
    let (cat_body, dan_body) = (body("cat@example.com", "en", "cat's own passphrase 3"), body("dan@example.com", "ru", "пароль дэна номер четыре"));
    let (cat, dan) = tokio::join!(app.post("/api/signup/init", &cat_body, Some(KEY)), app.post("/api/signup/init", &dan_body, Some(KEY)));
    let (cat, cat_guest) = cat.unwrap();
    let (dan, dan_guest) = dan.unwrap();
    cat_guest.await.unwrap().unwrap();
    dan_guest.await.unwrap().unwrap();
    assert!(app.instances() <= 2, "the reused instance and at most one more: {}", app.instances());

    let answers = [("ann@example.com", "en", &ann), ("bob@example.com", "ru", &bob), ("cat@example.com", "en", &cat), ("dan@example.com", "ru", &dan)];
    let mut pins = std::collections::HashSet::new();
    for (email, locale, answer) in answers {
        assert_eq!(answer.status, 201, "{email}: {answer:?}");
        let json = answer.json();
        assert!(json["message"].as_str().unwrap().contains(email), "{email}'s answer names {email}: {json}");
        let cyrillic = json["message"].as_str().unwrap().chars().any(|c| ('а'..='я').contains(&c));
        assert_eq!(cyrillic, locale == "ru", "{email}'s answer is in {locale}: {json}");
        assert!(pins.insert(json["pin"].as_str().unwrap().to_owned()), "a PIN of its own: {json}");
    }
    let messages = sink.inbox.raw_messages();
    assert_eq!(messages.len(), 4, "one mail per user");
    for (email, locale, answer) in answers {
        let pin = answer.json()["pin"].as_str().unwrap().to_owned();
        let mine: Vec<_> = messages.iter().map(|m| mail_parser::MessageParser::default().parse(m.as_bytes()).unwrap()).filter(|m| m.to().and_then(|t| t.first()).and_then(|t| t.address()) == Some(email)).collect();
        assert_eq!(mine.len(), 1, "{email} gets one mail");
        let text = mine[0].body_text(0).unwrap().into_owned();
        assert!(text.contains(&pin), "{email}'s mail shows {email}'s PIN");
        for (other, _, other_answer) in answers.iter().filter(|(e, _, _)| *e != email) {
            assert!(!text.contains(other_answer.json()["pin"].as_str().unwrap()), "{email}'s mail shows nothing of {other}");
        }
        let russian = text.chars().any(|c| ('а'..='я').contains(&c));
        assert_eq!(russian, locale == "ru", "{email}'s mail is in {locale}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_up_mail_is_delivered_by_the_flush_after_the_answer() {
    let sink = SmtpSink::start("127.0.0.1:0").await.unwrap();
    let app = App::new(db_file("delivered"), &[("api_keys", KEY), ("smtp_address", &sink.addr.to_string())]).unwrap();
    let (answer, guest) = app.sign_up("ann@example.com", Some(KEY)).await.unwrap();
    assert_eq!(answer.status, 201, "{answer:?}");
    let pin = answer.json()["pin"].as_str().expect("a PIN").to_owned();
    guest.await.unwrap().unwrap();

    let messages = sink.inbox.raw_messages();
    assert_eq!(messages.len(), 1, "one verification mail, delivered before the guest ended");
    let parsed = mail_parser::MessageParser::default().parse(messages[0].as_bytes()).unwrap();
    assert_eq!(parsed.to().and_then(|t| t.first()).and_then(|t| t.address()), Some("ann@example.com"));
    assert!(parsed.body_text(0).unwrap().contains(&pin), "the mail shows the PIN of the answer");
    let rows = outbox(&app);
    assert!(matches!(rows.as_slice(), [(Some(_), 1)]), "marked sent after one attempt: {rows:?}");
}

/// `GET /healthz`, answered 200, its work after the answer done.
async fn healthz(app: &App) {
    let req = hyper::Request::get("http://127.0.0.1:3000/healthz").body(bytes::Bytes::new()).unwrap();
    let (answer, guest) = app.send(req).await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    guest.await.unwrap().unwrap();
}

/// Mail queued by another instance (through the adapter alone, on the same database).
async fn enqueued_elsewhere(app: &App, relay: &str, to: &str) {
    let (file, relay, to) = (app.sqlite_file.clone(), relay.to_owned(), to.to_owned());
    tokio::task::spawn_blocking(move || {
        let other = Harness::new(ADAPTER_WASM.as_ref(), file, &[("smtp_address", relay.as_str())]).unwrap();
        let message = Message { to, kind: "signup-verification".into(), subject: "Confirm".into(), text: "PIN 123456".into(), html: "<p>PIN 123456</p>".into() };
        other.instance().unwrap().enqueue(&message).unwrap().unwrap();
    })
    .await
    .unwrap();
}

/// The guest flushes after a request that queued mail at once, and otherwise at most once a
/// second per instance (on Spin the flush is the dearest step of a cheap read): mail another
/// instance queued goes out with the next flush, within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_flushes_after_its_own_mail_at_once_and_otherwise_at_most_once_a_second() {
    let sink = SmtpSink::start("127.0.0.1:0").await.unwrap();
    let relay = sink.addr.to_string();
    let app = App::new(db_file("flush-due"), &[("api_keys", KEY), ("smtp_address", &relay)]).unwrap();
    healthz(&app).await;
    enqueued_elsewhere(&app, &relay, "bob@example.com").await;
    healthz(&app).await;
    assert!(sink.inbox.raw_messages().is_empty(), "within a second of its last flush, a request that queued nothing does not flush");
    let (answer, guest) = app.sign_up("ann@example.com", Some(KEY)).await.unwrap();
    assert_eq!(answer.status, 201, "{answer:?}");
    guest.await.unwrap().unwrap();
    assert_eq!(sink.inbox.raw_messages().len(), 2, "its own mail makes a flush at once, which delivers all that is due");
    enqueued_elsewhere(&app, &relay, "cat@example.com").await;
    healthz(&app).await;
    assert_eq!(sink.inbox.raw_messages().len(), 2, "within the second: no flush");
    app.clock.advance(Duration::from_millis(1_000));
    healthz(&app).await;
    assert_eq!(sink.inbox.raw_messages().len(), 3, "a second later the next request flushes and finds the other instance's mail");
    assert_eq!(app.instances(), 1, "one instance served them all");
}

/// Signs ann@example.com up through `signup` and opens the verification link `sink` received.
async fn activate_ann(signup: &App, sink: &SmtpSink) {
    let (answer, guest) = signup.sign_up("ann@example.com", Some(KEY)).await.unwrap();
    assert_eq!(answer.status, 201, "{answer:?}");
    guest.await.unwrap().unwrap();
    let (answer, _) = signup.post("/api/signup/verify", &serde_json::json!({"token": token_of_last_mail(sink)}), None).await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// The token of the link in the newest message to arrive.
fn token_of_last_mail(sink: &SmtpSink) -> String {
    let messages = sink.inbox.raw_messages();
    let last = messages.last().expect("a message arrived");
    let text = mail_parser::MessageParser::default().parse(last.as_bytes()).unwrap().body_text(0).unwrap().into_owned();
    let at = text.find("#token=").unwrap_or_else(|| panic!("a link with a token: {text}")) + "#token=".len();
    text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profile_component_edits_an_account_the_sign_up_component_made_on_one_database() {
    let sink = SmtpSink::start("127.0.0.1:0").await.unwrap();
    let vars = [("api_keys", KEY), ("smtp_address", &sink.addr.to_string())];
    let db = db_file("profile");
    let signup = App::new(db.clone(), &vars).unwrap();
    let profile = App::component("profile", db, &vars).unwrap();

    activate_ann(&signup, &sink).await;

    let (answer, guest) = profile.post("/api/profile/init", &serde_json::json!({"email": "ann@example.com"}), Some(KEY)).await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    guest.await.unwrap().unwrap();
    let token = token_of_last_mail(&sink);
    assert_eq!(token.len(), 43, "a profile link was mailed by the profile component's flush");
    let (loaded, _) = profile.post("/api/profile/load", &serde_json::json!({"token": token}), None).await.unwrap();
    assert_eq!((loaded.status, loaded.json()["email"].as_str()), (200, Some("ann@example.com")), "{loaded:?}");
    let (saved, _) = profile.post("/api/profile/save", &serde_json::json!({"token": token, "locale": "ru"}), None).await.unwrap();
    assert_eq!((saved.status, saved.json()["locale"].as_str()), (200, Some("ru")), "{saved:?}");
    let (again, _) = profile.post("/api/profile/load", &serde_json::json!({"token": token}), None).await.unwrap();
    assert_eq!((again.status, again.json()["code"].as_str()), (410, Some("INVALID_TOKEN")), "the save used the link");
    let (unknown, _) = profile.post("/api/profile/init", &serde_json::json!({"pin": 987654321}), Some(KEY)).await.unwrap();
    assert_eq!((unknown.status, unknown.json()["code"].as_str()), (404, Some("USER_NOT_FOUND")), "{unknown:?}");
}

/// The code in the newest message to arrive: its only run of 6 digits.
fn code_of_last_mail(sink: &SmtpSink) -> String {
    let messages = sink.inbox.raw_messages();
    let text = mail_parser::MessageParser::default().parse(messages.last().expect("a message").as_bytes()).unwrap().body_text(0).unwrap().into_owned();
    let digits: Vec<&str> = text.split(|c: char| !c.is_ascii_digit()).filter(|run| run.len() == 6).collect();
    assert_eq!(digits.len(), 1, "one code in {text}");
    digits[0].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_email_change_component_changes_an_address_with_codes_kept_in_the_adapters_sqlite() {
    let sink = SmtpSink::start("127.0.0.1:0").await.unwrap();
    let vars = [("api_keys", KEY), ("smtp_address", &sink.addr.to_string())];
    let db = db_file("email-change");
    let signup = App::new(db.clone(), &vars).unwrap();
    let profile = App::component("profile", db.clone(), &vars).unwrap();
    let change = App::component("email-change", db, &vars).unwrap();

    activate_ann(&signup, &sink).await;
    let (_, guest) = profile.post("/api/profile/init", &serde_json::json!({"email": "ann@example.com"}), Some(KEY)).await.unwrap();
    guest.await.unwrap().unwrap();
    let token = token_of_last_mail(&sink);

    let step = |name: &str, body: serde_json::Value| {
        let change = &change;
        let path = format!("/api/email-change/{name}");
        async move {
            let (answer, guest) = change.post(&path, &body, None).await.unwrap();
            guest.await.unwrap().unwrap();
            answer
        }
    };
    let started = step("start", serde_json::json!({"token": token})).await;
    assert_eq!(started.status, 200, "{started:?}");
    let flow = started.json()["flow"].as_str().unwrap().to_owned();
    let wrong = step("confirm-current", serde_json::json!({"token": token, "flow": flow, "code": "000000"})).await;
    let right = code_of_last_mail(&sink);
    if right != "000000" {
        assert_eq!((wrong.status, wrong.json()["attempts_left"].as_i64()), (422, Some(4)), "{wrong:?}");
    }
    let confirmed = step("confirm-current", serde_json::json!({"token": token, "flow": flow, "code": right})).await;
    assert_eq!((confirmed.status, confirmed.json()["state"].as_str()), (200, Some("enter_new")), "{confirmed:?}");
    let requested = step("request-new", serde_json::json!({"token": token, "flow": flow, "email": "bob@example.com"})).await;
    assert_eq!((requested.status, requested.json()["window_s"].as_i64()), (200, Some(600)), "{requested:?}");
    let done = step("confirm-new", serde_json::json!({"token": token, "flow": flow, "code": code_of_last_mail(&sink)})).await;
    assert_eq!((done.status, done.json()["email"].as_str()), (200, Some("bob@example.com")), "{done:?}");
    let fresh = done.json()["token"].as_str().unwrap().to_owned();
    let (loaded, _) = profile.post("/api/profile/load", &serde_json::json!({"token": fresh}), None).await.unwrap();
    assert_eq!((loaded.status, loaded.json()["email"].as_str()), (200, Some("bob@example.com")), "{loaded:?}");
    let (old, _) = profile.post("/api/profile/load", &serde_json::json!({"token": token}), None).await.unwrap();
    assert_eq!(old.status, 410, "every old token was revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_composed_for_spin_places_an_order_only_for_an_active_account_the_sign_up_component_made() {
    let sink = SmtpSink::start("127.0.0.1:0").await.unwrap();
    let vars = [("api_keys", KEY), ("smtp_address", &sink.addr.to_string())];
    let db = db_file("orders");
    let signup = App::new(db.clone(), &vars).unwrap();
    // examples/orders ← components/auth ← the Spin adapter, as the README's two `wac plug` do.
    let read = |path: &str| std::fs::read(path).unwrap();
    let (_, auth) = FLOW_COMPONENTS.iter().find(|(id, _)| *id == "auth").expect("spin.toml has the auth component");
    let composed = plug_into(&plug_into(&read(EXAMPLE_ORDERS_WASM), &read(auth)).unwrap(), &read(ADAPTER_WASM)).unwrap();
    let orders = App::composed(&composed, "auth", db, &vars).unwrap();

    let (answer, guest) = signup.sign_up("ann@example.com", Some(KEY)).await.unwrap();
    assert_eq!(answer.status, 201, "{answer:?}");
    let pin = answer.json()["pin"].as_str().unwrap().to_owned();
    guest.await.unwrap().unwrap();
    let order = |passphrase: &str| serde_json::json!({"pin": pin, "passphrase": passphrase, "item": "tea"});

    let (pending, _) = orders.post("/api/orders", &order("correct horse battery staple"), None).await.unwrap();
    assert_eq!((pending.status, pending.json()["code"].as_str()), (403, Some("EMAIL_NOT_VERIFIED")), "{pending:?}");
    let (verified, _) = signup.post("/api/signup/verify", &serde_json::json!({"token": token_of_last_mail(&sink)}), None).await.unwrap();
    assert_eq!(verified.status, 200, "{verified:?}");

    let (wrong, _) = orders.post("/api/orders", &order("not the passphrase at all"), None).await.unwrap();
    assert_eq!((wrong.status, wrong.json()["code"].as_str()), (401, Some("INVALID_CREDENTIALS")), "{wrong:?}");
    let (placed, _) = orders.post("/api/orders", &order("correct horse battery staple"), None).await.unwrap();
    assert_eq!(placed.status, 201, "{placed:?}");
    assert_eq!(placed.json()["order"], serde_json::json!({"item": "tea", "pin": pin}));
}

/// A Spin variable set to a value the service cannot use is not replaced by its default: every
/// route answers `503 CONFIG_INVALID` naming the variable and what it accepts (the same rules the
/// host's `Config::validate` refuses to start with), and good values of the same variables work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_variable_is_refused_by_name_and_a_good_one_works() {
    let relay = closed_port();
    for (variable, bad, accepts) in [
        ("pin_length", "20", "between 4 and 12"),
        ("pin_length", "six", "between 4 and 12"),
        ("argon2_m_kib", "64MiB", "between 8192 and 262144"),
        ("argon2_t", "11", "between 1 and 10"),
        ("argon2_p", "0", "between 1 and 8"),
        ("email_change_window_s", "15", "between 60 and 3600"),
        ("dev", "enabled", "true or false"),
        ("conceal_accounts", "maybe", "true or false"),
        ("base_url", "accounts.example.com", "http://"),
        ("smtp_address", "mail.example.com:25", "IP address"),
    ] {
        let smtp = if variable == "smtp_address" { bad } else { relay.as_str() };
        let app = App::new(db_file(&format!("bad-{variable}")), &[(variable, bad), ("dev", "true"), ("smtp_address", smtp)]).unwrap();
        let (answer, guest) = app.sign_up("ann@example.com", None).await.unwrap();
        guest.await.unwrap().unwrap();
        let body = answer.json();
        assert_eq!((answer.status, body["code"].as_str(), body["variable"].as_str()), (503, Some("CONFIG_INVALID"), Some(variable)), "{variable} = {bad}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(variable) && message.contains(accepts), "{variable} = {bad}: {message}");
        assert!(!message.contains(bad), "the value itself is for the operator's log, not the answer: {message}");
        let health = hyper::Request::get("http://127.0.0.1:3000/healthz").body(bytes::Bytes::new()).unwrap();
        let (health, guest) = app.send(health).await.unwrap();
        guest.await.unwrap().unwrap();
        assert_eq!((health.status, health.json()["code"].as_str()), (503, Some("CONFIG_INVALID")), "every route refuses: {variable}");
        assert!(outbox(&app).is_empty(), "{variable} = {bad}: nobody was signed up");
    }

    let app = App::new(db_file("good-variables"), &[
        ("dev", "TRUE"),
        ("smtp_address", &relay),
        ("pin_length", " 8 "),
        ("argon2_m_kib", "8192"),
        ("argon2_t", "1"),
        ("argon2_p", "1"),
        ("email_change_window_s", "60"),
        ("conceal_accounts", "false"),
        ("base_url", "https://accounts.example.com/"),
    ])
    .unwrap();
    let (answer, guest) = app.sign_up("ann@example.com", None).await.unwrap();
    guest.await.unwrap().unwrap();
    assert_eq!(answer.status, 201, "{answer:?}");
    assert_eq!(answer.json()["pin"].as_str().map(str::len), Some(8), "pin_length = 8 was taken: {answer:?}");
}

/// A form `POST` to the OAuth component (the token endpoint).
async fn form(app: &App, path: &str, pairs: &[(&str, &str)]) -> gpt_user_spin_tests::served::Answer {
    let body: String = pairs.iter().map(|(k, v)| format!("{k}={}", v.replace('+', "%2B").replace('/', "%2F").replace(':', "%3A"))).collect::<Vec<_>>().join("&");
    let req = hyper::Request::post(format!("http://127.0.0.1:3000{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(bytes::Bytes::from(body))
        .unwrap();
    app.send(req).await.unwrap().0
}

/// SPEC §2.5 on the Spin path: the OAuth component composed with the adapter registers a client,
/// signs a person in, gives a code for their consent, exchanges it (PKCE S256, RFC 7636's example
/// pair) and refreshes the tokens, rotating them; the MCP component on the same database takes the
/// access token and names the person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth_component_runs_a_whole_authorization_code_flow_with_refresh() {
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const REDIRECT: &str = "http://127.0.0.1:5555/callback";
    let sink = SmtpSink::start("127.0.0.1:0").await.unwrap();
    let vars = [("api_keys", KEY), ("smtp_address", &sink.addr.to_string())];
    let db = db_file("oauth");
    let signup = App::new(db.clone(), &vars).unwrap();
    let oauth = App::component("oauth", db.clone(), &vars).unwrap();
    let mcp = App::component("mcp", db, &vars).unwrap();
    activate_ann(&signup, &sink).await;

    let (registered, _) = oauth.post("/oauth/register", &serde_json::json!({"client_name": "Spin test", "redirect_uris": [REDIRECT]}), None).await.unwrap();
    assert_eq!(registered.status, 201, "{registered:?}");
    let client_id = registered.json()["client_id"].as_str().unwrap().to_owned();
    let (page, _) = oauth
        .send(hyper::Request::get(format!("http://127.0.0.1:3000/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcallback&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256")).body(bytes::Bytes::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(page.status, 200, "{page:?}");
    // Signs ann in on the page's API, allows (the redirect carries `state` and `iss`) and exchanges
    // the code with its verifier: the token answer.
    let tokens_by_consent = || {
        let (oauth, client_id) = (&oauth, &client_id);
        async move {
            let sign_in = serde_json::json!({"client_id": client_id, "redirect_uri": REDIRECT, "email": "ann@example.com", "passphrase": "correct horse battery staple"});
            let (signed_in, _) = oauth.post("/api/oauth/sign-in", &sign_in, None).await.unwrap();
            assert_eq!(signed_in.status, 200, "{signed_in:?}");
            let consent = serde_json::json!({
                "ticket": signed_in.json()["ticket"], "allow": true, "client_id": client_id, "redirect_uri": REDIRECT,
                "response_type": "code", "state": "s", "code_challenge": CHALLENGE, "code_challenge_method": "S256"
            });
            let (allowed, _) = oauth.post("/api/oauth/consent", &consent, None).await.unwrap();
            assert_eq!(allowed.status, 200, "{allowed:?}");
            let redirect = allowed.json()["redirect"].as_str().unwrap().to_owned();
            assert!(redirect.contains("state=s") && redirect.contains("iss="), "{redirect}");
            let code = redirect.split("code=").nth(1).unwrap().split('&').next().unwrap().to_owned();
            let tokens = form(oauth, "/oauth/token", &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("client_id", client_id), ("code_verifier", VERIFIER)]).await;
            assert_eq!(tokens.status, 200, "{tokens:?}");
            tokens
        }
    };
    let tokens = tokens_by_consent().await;
    let refreshed = form(&oauth, "/oauth/token", &[("grant_type", "refresh_token"), ("refresh_token", tokens.json()["refresh_token"].as_str().unwrap()), ("client_id", &client_id)]).await;
    assert_eq!(refreshed.status, 200, "{refreshed:?}");
    assert_ne!(refreshed.json()["refresh_token"], tokens.json()["refresh_token"], "rotated");
    let reused = form(&oauth, "/oauth/token", &[("grant_type", "refresh_token"), ("refresh_token", tokens.json()["refresh_token"].as_str().unwrap()), ("client_id", &client_id)]).await;
    assert_eq!((reused.status, reused.json()["error"].as_str()), (400, Some("invalid_grant")));

    let who = |token: String| {
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoAmI", "arguments": {}}});
        let req = hyper::Request::post("http://127.0.0.1:3000/mcp")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("authorization", format!("Bearer {token}"))
            .body(bytes::Bytes::from(body.to_string()))
            .unwrap();
        let mcp = &mcp;
        async move { mcp.send(req).await.unwrap().0 }
    };
    // The reuse revoked the family: the refreshed access token is gone too.
    let answer = who(refreshed.json()["access_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    // A fresh authorization: its access token names the person on the MCP component.
    let tokens = tokens_by_consent().await;
    let answer = who(tokens.json()["access_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["result"]["structuredContent"]["email"], "ann@example.com", "{answer:?}");
}

/// Serves `document` at any path over plain HTTP on 127.0.0.1 (one answer per connection); with
/// `None`, takes each connection and never answers. The URL of `/client.json` on it.
async fn document_server(document: Option<&'static str>) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/client.json", listener.local_addr().unwrap().port());
    let body = document.map(|d| d.replace("{url}", &url));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut connection, _)) = listener.accept().await {
            let Some(body) = &body else {
                held.push(connection);
                continue;
            };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && connection.read(&mut byte).await.is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let answer = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            let _ = connection.write_all(answer.as_bytes()).await;
        }
    });
    url
}

fn authorize_request(client_id: &str) -> hyper::Request<bytes::Bytes> {
    let query = format!(
        "response_type=code&client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcallback&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        client_id.replace(':', "%3A").replace('/', "%2F")
    );
    hyper::Request::get(format!("http://127.0.0.1:3000/oauth/authorize?{query}")).body(bytes::Bytes::new()).unwrap()
}

/// SPEC §2.5 on the Spin path: the OAuth component fetches a client's metadata document through
/// `wasi:http/client@0.3.0` (dev mode: plain HTTP on loopback) and names the client on its page.
/// A document server that never answers holds up only the request that named it, and not its
/// instance: the fetch waits in an async call, so the same instance answers the requests that come
/// meanwhile (a blocking wait took it out of service: they needed a second instance), and the
/// waiting request is answered at the fetch's 5 s deadline (this harness's outbound has none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth_component_fetches_a_metadata_document_and_a_silent_document_server_holds_up_only_its_request() {
    let oauth = App::component("oauth", db_file("cimd"), &[("dev", "true"), ("smtp_address", &closed_port())]).unwrap();
    let named = document_server(Some(r#"{"client_id": "{url}", "client_name": "Served Chat", "redirect_uris": ["http://127.0.0.1:5555/callback"]}"#)).await;
    let (page, _) = oauth.send(authorize_request(&named)).await.unwrap();
    assert_eq!(page.status, 200, "{page:?}");
    assert!(String::from_utf8_lossy(&page.body).contains("Served Chat"), "the page names the document's client");

    let silent = document_server(None).await;
    let waiting = async {
        let (answer, _) = oauth.send(authorize_request(&silent)).await.unwrap();
        (answer, std::time::Instant::now())
    };
    let meanwhile = async {
        // Long enough for the waiting request's fetch to be under way, well inside its 5 s.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for _ in 0..3 {
            let req = hyper::Request::get("http://127.0.0.1:3000/.well-known/oauth-authorization-server").body(bytes::Bytes::new()).unwrap();
            let (answer, _) = oauth.send(req).await.unwrap();
            assert_eq!(answer.status, 200, "{answer:?}");
        }
        std::time::Instant::now()
    };
    let ((waited, waited_until), answered_at) = tokio::join!(waiting, meanwhile);
    assert_eq!(waited.status, 400, "at the fetch's deadline the client is unknown: {waited:?}");
    assert!(waited.elapsed >= Duration::from_secs(4) && waited.elapsed < Duration::from_secs(8), "ended by the fetch's 5 s deadline: {waited:?}");
    assert!(answered_at < waited_until, "the other requests were answered while the fetch waited");
    assert_eq!(oauth.instances(), 1, "one instance served them all");
}
