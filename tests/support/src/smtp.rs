//! A real SMTP server on loopback for the tests: speaks enough ESMTP for lettre (EHLO, MAIL,
//! RCPT, DATA, RSET, NOOP, QUIT), keeps every message it accepts, un-dot-stuffed.
//! Async tests use [`SmtpSink::start`]; synchronous ones (wasmtime calls) [`SmtpSink::spawn_thread`].
//! [`SinkOptions`] make it a slow relay ([`SmtpSink::start_with_options`]).
//!
//! A recipient whose local part is `smtp-NNN` or starts with `smtp-NNN-` (a 4xx or 5xx code, e.g.
//! `smtp-550-3@example.test`) is refused at `RCPT` with that code, as a relay refuses an unknown
//! mailbox (550) or greylists one (450); [`Inbox::refused`] records each refusal.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Inbox {
    pub messages: Arc<Mutex<Vec<Received>>>,
    pub arrived: Arc<Notify>,
    /// Every recipient refused at `RCPT` so far (see the module's doc), in order.
    pub refused: Arc<Mutex<Vec<String>>>,
}

impl Inbox {
    /// Every message so far, as text.
    pub fn raw_messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().iter().map(|m| String::from_utf8_lossy(&m.raw).into_owned()).collect()
    }
}

#[derive(Clone, Debug)]
pub struct Received {
    pub recipients: Vec<String>,
    pub raw: Vec<u8>,
}

/// How the sink behaves; the default is a fast, well-behaved relay.
#[derive(Clone, Copy, Debug, Default)]
pub struct SinkOptions {
    /// Wait this long after the end of DATA before accepting (`250`), like a relay that scans
    /// or forwards before it answers. A client that hangs up meanwhile has not handed the
    /// message over: it is not kept (RFC 5321 §4.1.1.4 leaves it to the server; real relays
    /// drop it, which is what makes an abandoned send safe to retry).
    pub delay_after_data: Duration,
}

pub struct SmtpSink {
    pub addr: SocketAddr,
    pub inbox: Inbox,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    pub async fn start(addr: &str) -> anyhow::Result<Self> {
        Self::start_with(addr, Inbox::default()).await
    }

    /// Starts listening at `addr` delivering into an existing inbox (to restart after an outage).
    pub async fn start_with(addr: &str, inbox: Inbox) -> anyhow::Result<Self> {
        Self::start_with_options(addr, inbox, SinkOptions::default()).await
    }

    /// Like [`SmtpSink::start_with`], behaving as `options` say.
    pub async fn start_with_options(addr: &str, inbox: Inbox, options: SinkOptions) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let accept_inbox = inbox.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let inbox = accept_inbox.clone();
                tokio::spawn(async move {
                    let _ = session(stream, inbox, options).await;
                });
            }
        });
        Ok(Self { addr, inbox, task })
    }
}

impl SmtpSink {
    /// Starts a sink at `addr` on a thread with its own runtime, for tests without one.
    /// Returns its address and inbox; it runs until the process ends.
    pub fn spawn_thread(addr: SocketAddr) -> anyhow::Result<(SocketAddr, Inbox)> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                match SmtpSink::start(&addr.to_string()).await {
                    Ok(sink) => {
                        let _ = tx.send(Ok((sink.addr, sink.inbox.clone())));
                        std::future::pending::<()>().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        });
        rx.recv()?
    }
}

async fn session(stream: TcpStream, inbox: Inbox, options: SinkOptions) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 localhost ESMTP test sink\r\n").await?;
    let mut recipients = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-localhost\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("MAIL FROM") || upper.starts_with("NOOP") {
            b"250 OK\r\n"
        } else if upper.starts_with("RSET") {
            recipients.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO") {
            let addr = line[8..].trim().trim_start_matches('<').split('>').next().unwrap_or_default().to_owned();
            if let Some(code) = refusal(&addr) {
                inbox.refused.lock().unwrap().push(addr.clone());
                let text = if code >= 500 { "5.1.1 mailbox unavailable" } else { "4.2.0 try again later" };
                write.write_all(format!("{code} {text}: <{addr}>\r\n").as_bytes()).await?;
                continue;
            }
            recipients.push(addr);
            b"250 OK\r\n"
        } else if upper.starts_with("DATA") {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut raw = Vec::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                raw.extend_from_slice(unstuffed.as_bytes());
            }
            if !options.delay_after_data.is_zero() {
                line.clear();
                tokio::select! {
                    () = tokio::time::sleep(options.delay_after_data) => {}
                    // The client hung up (or spoke out of turn) before our answer: not accepted.
                    _ = lines.read_line(&mut line) => return Ok(()),
                }
            }
            inbox.messages.lock().unwrap().push(Received { recipients: std::mem::take(&mut recipients), raw });
            inbox.arrived.notify_waiters();
            b"250 OK queued\r\n"
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}

/// The code `addr` is refused with: its local part is `smtp-NNN` or starts with `smtp-NNN-`.
fn refusal(addr: &str) -> Option<u16> {
    let local = addr.split('@').next()?.strip_prefix("smtp-")?;
    let code = local.get(..3)?;
    if !(local.len() == 3 || local[3..].starts_with('-')) {
        return None;
    }
    code.parse().ok().filter(|c| (400..600).contains(c))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_recipient_names_its_refusal() {
        assert_eq!(super::refusal("smtp-550-7@example.test"), Some(550));
        assert_eq!(super::refusal("smtp-450@example.test"), Some(450));
        assert_eq!(super::refusal("smtp-5500@example.test"), None);
        assert_eq!(super::refusal("smtp-250-x@example.test"), None);
        assert_eq!(super::refusal("ann@example.test"), None);
    }
}
