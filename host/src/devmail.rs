//! `GET /dev/mail` (list) and `GET /dev/mail/<file>` (raw message): the dev mailbox. Served only
//! in dev mode, only when mail goes to the mailbox, and only to loopback clients — the messages
//! hold sign-in links. Housekeeping prunes it like the outbox ([`prune`]).

use std::net::SocketAddr;
use std::path::Path;

use crate::reply;
use crate::runtime::Body;

/// `mailbox` is `Some` only when the mailbox may be shown (dev mode, no SMTP).
pub async fn serve(mailbox: Option<&Path>, peer: SocketAddr, method: &hyper::Method, path: &str) -> hyper::Response<Body> {
    let Some(dir) = mailbox.filter(|_| peer.ip().is_loopback()) else {
        return reply::not_found();
    };
    if method != hyper::Method::GET && method != hyper::Method::HEAD {
        return reply::method_not_allowed("GET, HEAD");
    }
    match path.strip_prefix("/dev/mail/") {
        None | Some("") => list(dir).await,
        Some(name) if message_time(name).is_some() => match tokio::fs::read(dir.join(name)).await {
            Ok(bytes) => reply::with_body(200, "message/rfc822", bytes),
            Err(_) => reply::not_found(),
        },
        Some(_) => reply::not_found(),
    }
}

/// Deletes messages written before `cutoff_ms`. The time is read from the name, which the
/// mailbox writes with the application's clock, so tests that move the clock see it work.
pub async fn prune(dir: &Path, cutoff_ms: i64) -> std::io::Result<u64> {
    let mut deleted = 0;
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if message_time(&name).is_some_and(|t| t < cutoff_ms) {
            tokio::fs::remove_file(entry.path()).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// The write time of a name the mailbox writes (`<millis>-<hex id>.eml`), else `None`: only such
/// names are served or deleted, so no path tricks.
fn message_time(name: &str) -> Option<i64> {
    let (millis, id) = name.strip_suffix(".eml")?.split_once('-')?;
    let valid_id = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid_id || millis.is_empty() || !millis.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    millis.parse().ok()
}

async fn list(dir: &Path) -> hyper::Response<Body> {
    let mut names = Vec::new();
    if let Ok(mut entries) = tokio::fs::read_dir(dir).await {
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            if message_time(&name).is_some() {
                names.push(name);
            }
        }
    }
    names.sort();
    let items: Vec<serde_json::Value> =
        names.iter().map(|n| serde_json::json!({"file": n, "url": format!("/dev/mail/{n}")})).collect();
    reply::with_body(200, "application/json", serde_json::to_vec(&items).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::message_time;

    #[test]
    fn only_names_the_mailbox_writes_are_messages() {
        assert_eq!(message_time("1700000000000-3f9a0c1d-77af.eml"), Some(1_700_000_000_000));
        for bad in ["x-1.eml", "-1.eml", "1-.eml", "1-a.txt", "../1-a.eml", ".1-a.eml.tmp", "1-a/b.eml", "1-a%2F.eml"] {
            assert_eq!(message_time(bad), None, "{bad}");
        }
    }
}
