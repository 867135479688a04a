//! One message out over SMTP with lettre: its builder writes the MIME (text + HTML alternative),
//! its blocking client speaks SMTP over `std::net`, which Rust std implements on wasm32-wasip2
//! with `wasi:sockets` TCP. Plain SMTP to an IP address: Spin offers no DNS, and the relay is
//! expected on a trusted network (see the README's "Run on Spin").
//!
//! The session is opened (greeting, `EHLO`) apart from the transaction (`MAIL`, `RCPT`, `DATA`),
//! so a failure says whether the relay refused this message ([`Failure::Refused`]) or could not
//! be reached or talked to at all ([`Failure::Relay`]).

use std::net::SocketAddr;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::client::SmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::Message as Email;

use crate::config::MailSettings;
use gpt_user_core::ports::Message;

/// Why a message was not delivered.
#[derive(Debug)]
pub enum Failure {
    /// Nothing was learnt about this message: the relay is misconfigured, unreachable, refused
    /// the session (its greeting or `EHLO`), or the connection broke. The next message would
    /// fare the same.
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
    // No timeout: with one, socket2 connects non-blocking and then fails with EINVAL on
    // wasm32-wasip2 (measured under wasmtime 48), and lettre takes no connected stream we could
    // time out ourselves. So a relay that accepts the connection but never answers holds this
    // send, and nothing on wasip2 can interrupt it from inside. That is why sending happens only
    // in `mail.flush`, after the client has its answer: the hung send costs this instance, not a
    // request; the row's lease then expires and another flush retries it. The `EHLO` name is
    // lettre's default without the `hostname` feature (`127.0.0.1`), as `SmtpTransport` sends.
    let mut session = SmtpConnection::connect::<SocketAddr>(relay, None, &ClientId::default(), None, None)
        .map_err(|e| Failure::Relay(format!("smtp: {e}")))?;
    match session.send(email.envelope(), &email.formatted()) {
        Ok(_) => {
            let _ = session.quit();
            Ok(())
        }
        // lettre has hung up already (QUIT on a reply, or the broken connection).
        Err(e) => Err(match e.status() {
            Some(code) => Failure::Refused { code: code.into(), reason: format!("smtp: {e}") },
            None => Failure::Relay(format!("smtp: {e}")),
        }),
    }
}
