//! One message out over SMTP: lettre's builder writes the MIME (text + HTML alternative) and the
//! envelope; the SMTP conversation is our own, over `wasi:sockets` TCP with non-blocking streams
//! and pollables, so that every step has a deadline (issue 21): the connection
//! ([`CONNECT_MS`]), each reply of the relay ([`REPLY_MS`]) and the whole message
//! ([`MESSAGE_MS`]). A relay that accepts the connection and never answers costs this instance
//! at most the message's deadline, then the row's lease expires and a later flush retries it.
//! (lettre's blocking client could not be given one: with a timeout socket2 connects non-blocking
//! and fails with EINVAL on wasm32-wasip2, and without one a silent relay held the send forever.)
//! Plain SMTP to an IP address: Spin offers no DNS, and the relay is expected on a trusted network
//! (see the README's "Run on Spin").
//!
//! The session (greeting, `EHLO`) is apart from the transaction (`MAIL`, `RCPT`, `DATA`), so a
//! failure says whether the relay refused this message ([`Failure::Refused`]) or could not be
//! reached or talked to at all ([`Failure::Relay`]).

use std::net::SocketAddr;

use lettre::Message as Email;
use lettre::message::{Mailbox, MultiPart};
use wasip2::clocks::monotonic_clock;
use wasip2::io::poll::{Pollable, poll};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};
use wasip2::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress};
use wasip2::sockets::tcp::TcpSocket;

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

pub fn send(settings: &MailSettings, m: &Message) -> Result<(), Failure> {
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
    let mut session = Session::connect(relay).map_err(relay_failed)?;
    // The session: the greeting and EHLO (lettre's default name without its `hostname` feature).
    expect(session.reply(), 220).map_err(relay_failed)?;
    expect(session.command("EHLO 127.0.0.1"), 250).map_err(relay_failed)?;
    // The transaction: a refusal here is this message's.
    let sender = envelope.from().map(ToString::to_string).unwrap_or_default();
    let mut steps = vec![(format!("MAIL FROM:<{sender}>"), 250)];
    steps.extend(envelope.to().iter().map(|rcpt| (format!("RCPT TO:<{rcpt}>"), 250)));
    steps.push(("DATA".to_owned(), 354));
    for (line, want) in steps {
        transaction(session.command(&line), want)?;
    }
    transaction(session.data(&email.formatted()), 250)?;
    // QUIT is a courtesy: the message is the relay's now, whatever it answers.
    let _ = session.send_all(b"QUIT\r\n");
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

/// One SMTP connection. Fields drop in order: the streams are children of the socket.
struct Session {
    input: InputStream,
    output: OutputStream,
    _socket: TcpSocket,
    /// What was read past the last reply.
    pending: Vec<u8>,
    /// The whole message's deadline, on the monotonic clock (ns).
    until: u64,
}

impl Session {
    fn connect(relay: SocketAddr) -> Result<Self, String> {
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
        let socket = wasip2::sockets::tcp_create_socket::create_tcp_socket(family).map_err(|e| format!("socket: {e:?}"))?;
        let network = wasip2::sockets::instance_network::instance_network();
        socket.start_connect(&network, remote).map_err(|e| format!("connect to {relay}: {e:?}"))?;
        let connect_until = (started + CONNECT_MS * 1_000_000).min(until);
        let (input, output) = loop {
            match socket.finish_connect() {
                Ok(streams) => break streams,
                Err(ErrorCode::WouldBlock) => {
                    if !ready(&socket.subscribe(), connect_until) {
                        return Err(format!("no connection to {relay} within {CONNECT_MS} ms"));
                    }
                }
                Err(e) => return Err(format!("connect to {relay}: {e:?}")),
            }
        };
        Ok(Self { input, output, _socket: socket, pending: Vec::new(), until })
    }

    /// The instant a reply must come by: [`REPLY_MS`] from now, within the message's deadline.
    fn reply_deadline(&self) -> u64 {
        (monotonic_clock::now() + REPLY_MS * 1_000_000).min(self.until)
    }

    /// The next reply: its code and text (lines joined), all its lines read by the deadline.
    fn reply(&mut self) -> Result<(u16, String), String> {
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
            match self.input.read(16 * 1024) {
                Ok(bytes) if bytes.is_empty() => {
                    if !ready(&self.input.subscribe(), until) {
                        return Err(format!("no reply within {REPLY_MS} ms"));
                    }
                }
                Ok(bytes) => self.pending.extend_from_slice(&bytes),
                Err(StreamError::Closed) => return Err("the relay closed the connection".into()),
                Err(StreamError::LastOperationFailed(e)) => return Err(format!("read: {}", e.to_debug_string())),
            }
        }
    }

    fn command(&mut self, line: &str) -> Result<(u16, String), String> {
        self.send_all(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// The message after `DATA`: dot-stuffed, ended by `CRLF . CRLF`; the relay's reply.
    fn data(&mut self, formatted: &[u8]) -> Result<(u16, String), String> {
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
        self.send_all(&out)?;
        self.reply()
    }

    /// Writes all of `bytes` and flushes them, by the message's deadline.
    fn send_all(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        while !bytes.is_empty() {
            let n = bytes.len().min(usize::try_from(self.writable()?).unwrap_or(usize::MAX));
            self.output.write(&bytes[..n]).map_err(write_failed)?;
            bytes = &bytes[n..];
        }
        self.output.flush().map_err(write_failed)?;
        // The flush is done when the stream takes writes again.
        self.writable().map(drop)
    }

    /// How many bytes the stream takes now, once it takes any, by the message's deadline.
    fn writable(&self) -> Result<u64, String> {
        loop {
            match self.output.check_write().map_err(write_failed)? {
                0 if !ready(&self.output.subscribe(), self.until) => return Err(format!("the relay took no more within {MESSAGE_MS} ms")),
                0 => {}
                room => return Ok(room),
            }
        }
    }
}

fn write_failed(e: StreamError) -> String {
    match e {
        StreamError::Closed => "the relay closed the connection".to_owned(),
        StreamError::LastOperationFailed(e) => format!("write: {}", e.to_debug_string()),
    }
}

/// Waits for `pollable` until the monotonic instant `until`: whether it became ready.
fn ready(pollable: &Pollable, until: u64) -> bool {
    let now = monotonic_clock::now();
    if now >= until {
        return pollable.ready();
    }
    let timer = monotonic_clock::subscribe_instant(until);
    poll(&[pollable, &timer]).contains(&0)
}
