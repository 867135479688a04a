//! One message out over SMTP with lettre: its builder writes the MIME (text + HTML alternative),
//! its blocking client speaks SMTP over `std::net`, which Rust std implements on wasm32-wasip2
//! with `wasi:sockets` TCP. Plain SMTP to an IP address: Spin offers no DNS, and the relay is
//! expected on a trusted network (see the README's "Run on Spin").

use std::net::SocketAddr;

use lettre::message::{Mailbox, MultiPart};
use lettre::{Message as Email, SmtpTransport, Transport};

use crate::config::MailSettings;
use gpt_user_core::ports::Message;

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
    // No lettre timeout: with one, socket2 connects non-blocking and then fails with EINVAL on
    // wasm32-wasip2 (measured under wasmtime 48), and lettre takes no connected stream we could
    // time out ourselves. So a relay that accepts the connection but never answers holds this
    // send, and nothing on wasip2 can interrupt it from inside. That is why sending happens only
    // in `mail.flush`, after the client has its answer: the hung send costs this instance, not a
    // request; the row's lease then expires and another flush retries it.
    let transport = SmtpTransport::builder_dangerous(relay.ip().to_string()).port(relay.port()).timeout(None).build();
    transport.send(&email).map(|_| ()).map_err(|e| format!("smtp: {e}"))
}
