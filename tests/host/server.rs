//! The host under slow, idle and greedy clients (SPEC §5): header and body reads are bounded in
//! time, connections in number, and a full instance pool answers `503 BUSY` + `Retry-After`.
//! Also dev mode's mailbox: method check and housekeeping. All traffic is to 127.0.0.1.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use gpt_user::manifest::Route;

use crate::helpers::{Backend, MailMode, Options, TestApp, email, spawn_with};

const TRICKLERS: usize = 300;

pub(crate) fn trap_route() -> (Route, &'static [u8]) {
    test_component_route("trap")
}

/// A test component (`tests/components/<name>`) served at `/<name>/*`.
pub(crate) fn test_component_route(name: &str) -> (Route, &'static [u8]) {
    let path = std::path::Path::new(gpt_user::artifacts::WASM_DIR).join(format!("gpt_user_test_{name}.wasm"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (Route { path: format!("/{name}"), wildcard: true, component: name.into() }, Box::leak(bytes.into_boxed_slice()))
}

fn addr(app: &TestApp) -> SocketAddr {
    app.base.trim_start_matches("http://").parse().unwrap()
}

/// How a connection ended: the bytes the server sent before it closed, or `None` if it was
/// still open after `within`.
async fn read_until_closed(stream: &mut (impl AsyncReadExt + Unpin), within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn status_line(answer: &[u8]) -> String {
    String::from_utf8_lossy(answer).lines().next().unwrap_or_default().to_owned()
}

/// Sends complete headers declaring a 200-byte body, then one byte a second. Returns what the
/// server sent and how long after the headers it closed the connection.
async fn trickle(addr: SocketAddr, headers_sent: tokio::sync::mpsc::Sender<()>) -> (Option<Vec<u8>>, Duration) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let head = "POST /api/signup/init HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n";
    writer.write_all(head.as_bytes()).await.expect("headers sent");
    let sent_at = Instant::now();
    headers_sent.send(()).await.unwrap();
    let drip = tokio::spawn(async move {
        for _ in 0..200 {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let answer = read_until_closed(&mut reader, Duration::from_secs(20)).await;
    drip.abort();
    (answer, sent_at.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_up_is_served_while_300_clients_trickle_their_bodies_and_they_are_cut_off_at_the_deadline() {
    let mut options = Options::new(Backend::Sqlite);
    options.request_timeout_ms = 3_000;
    let app = spawn_with(options).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(TRICKLERS);
    let tricklers: Vec<_> = (0..TRICKLERS).map(|_| tokio::spawn(trickle(addr(&app), tx.clone()))).collect();
    for _ in 0..TRICKLERS {
        tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("every trickler connected and sent its headers");
    }

    let started = Instant::now();
    let r = app.sign_up(&email("beside-tricklers"), "en").await;
    let took = started.elapsed();
    assert_eq!(r.status(), 201);
    eprintln!("sign-up beside {TRICKLERS} tricklers: {} ms", took.as_millis());
    assert!(took < Duration::from_secs(2), "the sign-up took {took:?}");

    let mut answered_408 = 0;
    let (mut first, mut last) = (Duration::MAX, Duration::ZERO);
    let mut first_answer = String::new();
    for t in tricklers {
        let (answer, after) = t.await.unwrap();
        let answer = answer.expect("the server closed the trickler's connection");
        if after < first {
            first_answer = status_line(&answer);
        }
        (first, last) = (first.min(after), last.max(after));
        if !answer.is_empty() {
            assert!(status_line(&answer).starts_with("HTTP/1.1 408"), "{}", status_line(&answer));
            answered_408 += 1;
        }
    }
    eprintln!("{answered_408} of {TRICKLERS} tricklers read a 408; closed {}..{} ms after their headers", first.as_millis(), last.as_millis());
    assert!(last < Duration::from_millis(3_000 + 4_000), "a trickler was closed only after {last:?}");
    assert!(first >= Duration::from_millis(2_900), "a trickler was cut before the deadline ({first:?}, answer {first_answer:?})");
    assert_eq!(app.sign_up(&email("after-tricklers"), "en").await.status(), 201, "no instance is left held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_instance_pool_get_503_busy_with_retry_after() {
    let mut options = Options::new(Backend::Sqlite);
    options.extra = vec![trap_route()];
    options.config = Some(|c| c.max_instances = 2);
    let app = spawn_with(options).await;
    // Long enough that all six arrive while the first two still sleep, even on a loaded machine.
    let requests = (0..6).map(|_| app.get("/trap/sleep/2500"));
    let answers = futures::future::join_all(requests).await;
    let mut served = 0;
    for r in answers {
        match r.status().as_u16() {
            200 => served += 1,
            503 => {
                assert_eq!(r.headers()["retry-after"], "1");
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["code"], "BUSY");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(served, 2, "exactly the pool's two instances were used");
    assert_eq!(app.get("/trap/fine").await.status(), 200, "the instances are free again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_waiting_in_a_host_call_is_stopped_at_the_deadline_and_its_instance_freed() {
    let mut options = Options::new(Backend::Sqlite);
    options.extra = vec![trap_route()];
    options.request_timeout_ms = 1_000;
    options.config = Some(|c| c.max_instances = 1);
    let app = spawn_with(options).await;
    let started = Instant::now();
    let r = app.get("/trap/sleep/5000").await;
    assert_eq!(r.status(), 500, "the component, not the client, overran");
    assert!(started.elapsed() < Duration::from_millis(2_500), "ended after {:?}", started.elapsed());
    assert_eq!(app.get("/trap/fine").await.status(), 200, "the only instance is free again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_of_every_size_reach_the_component_whole() {
    let mut options = Options::new(Backend::Sqlite);
    options.extra = vec![trap_route()];
    let app = spawn_with(options).await;
    for len in [0, 1_000, 64 * 1024, 100 * 1024] {
        let r = app.client.post(app.url("/trap/echo")).body(vec![b'x'; len]).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), len.to_string(), "Content-Length {len}");
    }
    // Chunked, longer than what the host buffers: the buffered part and the rest, in order.
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    let chunk = vec![b'y'; 100 * 1024];
    s.write_all(b"POST /trap/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").await.unwrap();
    for _ in 0..2 {
        s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.unwrap();
        s.write_all(&chunk).await.unwrap();
        s.write_all(b"\r\n").await.unwrap();
    }
    s.write_all(b"0\r\n\r\n").await.unwrap();
    let answer = read_until_closed(&mut s, Duration::from_secs(10)).await.expect("answered");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(&format!("\r\n{}\r\n", 2 * chunk.len())), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_finish_its_headers_is_disconnected() {
    let mut options = Options::new(Backend::Sqlite);
    options.config = Some(|c| c.header_read_timeout_ms = 500);
    let app = spawn_with(options).await;
    let mut partial = TcpStream::connect(addr(&app)).await.unwrap();
    partial.write_all(b"POST /api/signup/init HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap();
    let started = Instant::now();
    assert!(read_until_closed(&mut partial, Duration::from_secs(5)).await.is_some(), "closed");
    assert!(started.elapsed() < Duration::from_secs(3), "closed after {:?}", started.elapsed());

    // A kept-alive connection that sends no next request is closed the same way.
    let mut idle = TcpStream::connect(addr(&app)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let answer = read_until_closed(&mut idle, Duration::from_secs(5)).await.expect("closed when idle");
    assert!(status_line(&answer).starts_with("HTTP/1.1 200"), "{}", status_line(&answer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_max_connections_a_client_waits_until_a_connection_frees_instead_of_failing() {
    let mut options = Options::new(Backend::Sqlite);
    options.config = Some(|c| {
        c.max_connections = 2;
        c.header_read_timeout_ms = 1_500;
    });
    let app = spawn_with(options).await;
    // Two silent connections hold both slots until the header timeout ends them.
    let _a = TcpStream::connect(addr(&app)).await.unwrap();
    let _b = TcpStream::connect(addr(&app)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), 200, "served, not refused");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1_000), "served at once ({waited:?}): the limit did not hold");
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_mailbox_answers_other_methods_with_405_and_allow() {
    let mut options = Options::new(Backend::Sqlite);
    options.mail = MailMode::DevMailbox;
    let app = spawn_with(options).await;
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
    let control = app.control();
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
