//! One message out over SMTP with lettre: its builder writes the MIME (text + HTML alternative),
//! its blocking client speaks SMTP over `std::net`, which Rust std implements on wasm32-wasip2
//! with `wasi:sockets` TCP. Plain SMTP to an IP address: Spin offers no DNS, and the relay is
//! expected on a trusted network (see `docs/spin.md`).

use std::net::SocketAddr;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{Message as Email, SmtpTransport, Transport};

use crate::config::MailSettings;
use crate::bindings::gpt_user::accounts::types::Message;

/// Well below the outbox lease, so a hanging relay cannot outlive the claim on a row.
const TIMEOUT: Duration = Duration::from_secs(15);

pub fn send(settings: &MailSettings, m: &Message) -> Result<(), String> {
    let relay: SocketAddr = settings
        .smtp_address
        .parse()
        .map_err(|_| format!("smtp_address {:?} is not IP:port (Spin has no DNS)", settings.smtp_address))?;
    let from: Mailbox = settings.from.parse().map_err(|e| format!("mail_from: {e}"))?;
    let to: Mailbox = m.to.parse().map_err(|e| format!("recipient: {e}"))?;
    let email = Email::builder()
        .from(from)
        .to(to)
        .subject(m.subject.clone())
        .multipart(MultiPart::alternative_plain_html(m.text.clone(), m.html.clone()))
        .map_err(|e| format!("message: {e}"))?;
    let transport = SmtpTransport::builder_dangerous(relay.ip().to_string()).port(relay.port()).timeout(Some(TIMEOUT)).build();
    transport.send(&email).map(|_| ()).map_err(|e| format!("smtp: {e}"))
}
