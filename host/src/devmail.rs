//! `GET /dev/mail` (list) and `GET /dev/mail/<file>` (raw message): the dev mailbox, only when no
//! SMTP server is configured and only to loopback clients.

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::runtime::Body;

pub async fn serve(mailbox: Option<&Path>, peer: SocketAddr, path: &str) -> hyper::Response<Body> {
    let Some(dir) = mailbox.filter(|_| peer.ip().is_loopback()) else {
        return not_found();
    };
    match path.strip_prefix("/dev/mail/") {
        None | Some("") => list(dir).await,
        Some(name) if is_message_name(name) => match tokio::fs::read(dir.join(name)).await {
            Ok(bytes) => response(200, "message/rfc822", bytes),
            Err(_) => not_found(),
        },
        Some(_) => not_found(),
    }
}

/// Only names the mailbox writes (`<millis>-<hex id>.eml`): no path tricks.
fn is_message_name(name: &str) -> bool {
    name.ends_with(".eml") && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') && !name.starts_with('.')
}

async fn list(dir: &Path) -> hyper::Response<Body> {
    let mut names = Vec::new();
    if let Ok(mut entries) = tokio::fs::read_dir(dir).await {
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_message_name(&name) {
                names.push(name);
            }
        }
    }
    names.sort();
    let items: Vec<serde_json::Value> =
        names.iter().map(|n| serde_json::json!({"file": n, "url": format!("/dev/mail/{n}")})).collect();
    response(200, "application/json", serde_json::to_vec(&items).unwrap_or_default())
}

pub fn not_found() -> hyper::Response<Body> {
    response(404, "application/json", br#"{"code":"NOT_FOUND","message":"There is nothing at this address."}"#.to_vec())
}

fn response(status: u16, content_type: &str, body: Vec<u8>) -> hyper::Response<Body> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed_unsync())
        .expect("valid response")
}
