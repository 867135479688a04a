//! One message out over SMTP: lettre's builder writes the MIME (text + HTML alternative) and the
//! envelope; the SMTP conversation is our own, over `wasi:sockets@0.3.0` TCP with async streams,
//! so that every step has a deadline (issue 21): the connection ([`CONNECT_MS`]), each reply of
//! the relay ([`REPLY_MS`]) and the whole message ([`MESSAGE_MS`]). A relay that accepts the
//! connection and never answers costs the flushing request at most its reply deadline, then the
//! row's lease expires and a later flush retries it; the instance's other requests go on meanwhile
//! (`mail.flush` is an `async func`: waiting here yields to them).
//! (lettre's blocking client could not be given one: with a timeout socket2 connects non-blocking
//! and fails with EINVAL on wasm32-wasip2, and without one a silent relay held the send forever.)
//! Plain SMTP to an IP address: Spin offers no DNS, and the relay is expected on a trusted network
//! (see the README's "Run on Spin").
//!
//! The session (greeting, `EHLO`) is apart from the transaction (`MAIL`, `RCPT`, `DATA`), so a
//! failure says whether the relay refused this message ([`Failure::Refused`]) or could not be
//! reached or talked to at all ([`Failure::Relay`]).

use std::future::Future;
use std::net::SocketAddr;

use lettre::Message as Email;
use lettre::message::{Mailbox, MultiPart};
use wit_bindgen::{FutureReader, StreamReader, StreamResult, StreamWriter};

use crate::bindings::wasi::clocks0_3_0::monotonic_clock;
use crate::bindings::wasi::sockets0_3_0::types::{ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress, TcpSocket};
use crate::bindings::wit_stream;
use crate::config::MailSettings;
use gpt_user_core::ports::Message;

/// Milliseconds to connect, for each reply of the relay, and for the whole message.
pub const CONNECT_MS: u64 = 5_000;
pub const REPLY_MS: u64 = 10_000;
pub const MESSAGE_MS: u64 = 30_000;
/// The longest reply taken (all its lines): a relay is not a stream of text to buffer.
const MAX_REPLY: usize = 64 * 1024;

/// Why a message was not delivered.
#[derive(Debug)]
pub enum Failure {
    /// Nothing was learnt about this message: the relay is misconfigured, unreachable, refused
    /// the session (its greeting or `EHLO`), was too slow, or the connection broke. The next
    /// message would fare the same.
    Relay(String),
    /// The relay answered this message's `MAIL`, `RCPT` or `DATA` with `code` (4xx or 5xx).
    Refused { code: u16, reason: String },
    /// The message cannot be built (its recipient is not an address): no relay will take it.
    Invalid(String),
}

pub async fn send(settings: &MailSettings, m: &Message) -> Result<(), Failure> {
    let relay: SocketAddr = settings
        .smtp_address
        .parse()
        .map_err(|_| Failure::Relay(format!("smtp_address {:?} is not IP:port (Spin has no DNS)", settings.smtp_address)))?;
    let from: Mailbox = settings.from.parse().map_err(|e| Failure::Relay(format!("mail_from: {e}")))?;
    let to: Mailbox = m.to.parse().map_err(|e| Failure::Invalid(format!("recipient: {e}")))?;
    let email = Email::builder()
        .from(from)
        .to(to)
        .subject(m.subject.clone())
        .multipart(MultiPart::alternative_plain_html(m.text.clone(), m.html.clone()))
        .map_err(|e| Failure::Invalid(format!("message: {e}")))?;
    let envelope = email.envelope();
    let relay_failed = |e: String| Failure::Relay(format!("smtp: {e}"));
    let mut session = Session::connect(relay).await.map_err(relay_failed)?;
    // The session: the greeting and EHLO (lettre's default name without its `hostname` feature).
    expect(session.reply().await, 220).map_err(relay_failed)?;
    expect(session.command("EHLO 127.0.0.1").await, 250).map_err(relay_failed)?;
    // The transaction: a refusal here is this message's.
    let sender = envelope.from().map(ToString::to_string).unwrap_or_default();
    let mut steps = vec![(format!("MAIL FROM:<{sender}>"), 250)];
    steps.extend(envelope.to().iter().map(|rcpt| (format!("RCPT TO:<{rcpt}>"), 250)));
    steps.push(("DATA".to_owned(), 354));
    for (line, want) in steps {
        transaction(session.command(&line).await, want)?;
    }
    transaction(session.data(&email.formatted()).await, 250)?;
    // QUIT is a courtesy: the message is the relay's now, whatever it answers.
    let _ = session.send_all(b"QUIT\r\n".to_vec()).await;
    Ok(())
}

/// A reply with the code wanted (any of its class, 2xx or 3xx), else why not.
fn expect(reply: Result<(u16, String), String>, want: u16) -> Result<(), String> {
    match reply? {
        (code, _) if code / 100 == want / 100 => Ok(()),
        (code, text) => Err(format!("the relay answered {code} {text}")),
    }
}

fn transaction(reply: Result<(u16, String), String>, want: u16) -> Result<(), Failure> {
    match reply {
        Ok((code, _)) if code / 100 == want / 100 => Ok(()),
        Ok((code, text)) => Err(Failure::Refused { code, reason: format!("smtp: {code} {text}") }),
        Err(e) => Err(Failure::Relay(format!("smtp: {e}"))),
    }
}

/// One SMTP connection. Fields drop in order: the streams before the socket they came from.
struct Session {
    output: StreamWriter<u8>,
    /// What `send` reports at its end; kept so the runtime goes on transmitting.
    _sent: FutureReader<Result<(), ErrorCode>>,
    input: StreamReader<u8>,
    _received: FutureReader<Result<(), ErrorCode>>,
    _socket: TcpSocket,
    /// What was read past the last reply.
    pending: Vec<u8>,
    /// The whole message's deadline, on the monotonic clock (ns).
    until: u64,
}

impl Session {
    async fn connect(relay: SocketAddr) -> Result<Self, String> {
        let started = monotonic_clock::now();
        let until = started + MESSAGE_MS * 1_000_000;
        let (family, remote) = match relay {
            SocketAddr::V4(a) => {
                let [x, y, z, w] = a.ip().octets();
                (IpAddressFamily::Ipv4, IpSocketAddress::Ipv4(Ipv4SocketAddress { port: a.port(), address: (x, y, z, w) }))
            }
            SocketAddr::V6(a) => {
                let s = a.ip().segments();
                let address = (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
                (IpAddressFamily::Ipv6, IpSocketAddress::Ipv6(Ipv6SocketAddress { port: a.port(), flow_info: 0, address, scope_id: a.scope_id() }))
            }
        };
        let socket = TcpSocket::create(family).map_err(|e| format!("socket: {e:?}"))?;
        let connect_until = (started + CONNECT_MS * 1_000_000).min(until);
        match within(connect_until, socket.connect(remote)).await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(format!("connect to {relay}: {e:?}")),
            None => return Err(format!("no connection to {relay} within {CONNECT_MS} ms")),
        }
        let (output, to_send) = wit_stream::new::<u8>();
        let sent = socket.send(to_send);
        let (input, received) = socket.receive();
        Ok(Self { output, _sent: sent, input, _received: received, _socket: socket, pending: Vec::new(), until })
    }

    /// The instant a reply must come by: [`REPLY_MS`] from now, within the message's deadline.
    fn reply_deadline(&self) -> u64 {
        (monotonic_clock::now() + REPLY_MS * 1_000_000).min(self.until)
    }

    /// The next reply: its code and text (lines joined), all its lines read by the deadline.
    async fn reply(&mut self) -> Result<(u16, String), String> {
        let until = self.reply_deadline();
        let mut text = String::new();
        loop {
            while let Some(end) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.pending.drain(..end + 2).collect();
                let line = String::from_utf8_lossy(&line[..end]).into_owned();
                let code = line.get(..3).and_then(|c| c.parse::<u16>().ok()).ok_or_else(|| format!("not an SMTP reply: {line:?}"))?;
                text.push_str(line.get(4..).unwrap_or_default().trim());
                match line.as_bytes().get(3) {
                    Some(b'-') => text.push(' '),
                    _ => return Ok((code, text)),
                }
            }
            if self.pending.len() + text.len() > MAX_REPLY {
                return Err("a reply longer than 64 KiB".into());
            }
            let Some((result, chunk)) = within(until, self.input.read(Vec::with_capacity(16 * 1024))).await else {
                return Err(format!("no reply within {REPLY_MS} ms"));
            };
            self.pending.extend_from_slice(&chunk);
            if !matches!(result, StreamResult::Complete(_)) {
                return Err("the relay closed the connection".into());
            }
        }
    }

    async fn command(&mut self, line: &str) -> Result<(u16, String), String> {
        self.send_all(format!("{line}\r\n").into_bytes()).await?;
        self.reply().await
    }

    /// The message after `DATA`: dot-stuffed, ended by `CRLF . CRLF`; the relay's reply.
    async fn data(&mut self, formatted: &[u8]) -> Result<(u16, String), String> {
        let mut out = Vec::with_capacity(formatted.len() + 64);
        for line in formatted.split_inclusive(|&b| b == b'\n') {
            if line.first() == Some(&b'.') {
                out.push(b'.');
            }
            out.extend_from_slice(line);
        }
        if !out.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.send_all(out).await?;
        self.reply().await
    }

    /// Hands all of `bytes` to the runtime's sender, by the message's deadline.
    async fn send_all(&mut self, bytes: Vec<u8>) -> Result<(), String> {
        match within(self.until, self.output.write_all(bytes)).await {
            Some(rest) if rest.is_empty() => Ok(()),
            Some(_) => Err("the relay closed the connection".to_owned()),
            None => Err(format!("the relay took no more within {MESSAGE_MS} ms")),
        }
    }
}

/// `work`'s output if it ends before the monotonic instant `until` (ns), else `None`.
fn within<F: Future>(until: u64, work: F) -> impl Future<Output = Option<F::Output>> {
    gpt_user_core::deadline::within(monotonic_clock::wait_until(until), work)
}
