//! Where claimed messages go: an SMTP server (lettre) or the dev mailbox (`DIR/mail/*.eml`).

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::adapters::store::OutboxRow;

pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Mailbox(PathBuf),
}

/// Why a message was not delivered.
#[derive(Debug)]
pub struct Failure {
    /// Trying again cannot help: the relay refused this message for good
    /// ([`gpt_user_sql::outbox::is_permanent_refusal`]), or it cannot be built (its recipient is
    /// not an address). The dispatcher marks it dead.
    pub permanent: bool,
    pub error: anyhow::Error,
}

impl Failure {
    fn permanent(error: impl Into<anyhow::Error>) -> Self {
        Self { permanent: true, error: error.into() }
    }

    fn transient(error: impl Into<anyhow::Error>) -> Self {
        Self { permanent: false, error: error.into() }
    }

    /// A relay's refusal is permanent if its reply code says so; a connection, TLS or
    /// authentication failure, a timeout or a 4xx is not.
    fn smtp(error: lettre::transport::smtp::Error) -> Self {
        let permanent = error.status().map(u16::from).is_some_and(gpt_user_sql::outbox::is_permanent_refusal);
        Self { permanent, error: error.into() }
    }
}

impl Transport {
    /// SMTP from a `smtp://` / `smtps://` URL, else the dev mailbox directory.
    pub fn new(smtp_url: Option<&str>, mailbox_dir: PathBuf) -> anyhow::Result<Self> {
        match smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|_| anyhow::anyhow!("invalid SMTP URL (expected smtp://host:port or smtps://host:port)"))?
                    .timeout(Some(Duration::from_secs(15)))
                    .build();
                Ok(Self::Smtp(transport))
            }
            None => {
                std::fs::create_dir_all(&mailbox_dir)?;
                Ok(Self::Mailbox(mailbox_dir))
            }
        }
    }

    /// Connects to the SMTP server of `url` as a delivery would (TLS and login included), sends
    /// `NOOP` and quits, all within `within`: what `gpt-user check` reports.
    pub async fn probe(url: &str, within: Duration) -> anyhow::Result<()> {
        let transport: AsyncSmtpTransport<Tokio1Executor> = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| anyhow::anyhow!("invalid SMTP URL (expected smtp://host:port or smtps://host:port)"))?
            .timeout(Some(within))
            .build();
        match tokio::time::timeout(within, transport.test_connection()).await {
            Err(_) => anyhow::bail!("no answer within {} s", within.as_secs()),
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(false)) => anyhow::bail!("the server did not answer NOOP"),
            Ok(Ok(true)) => Ok(()),
        }
    }

    /// Builds the MIME message (plain text + HTML alternatives) and delivers it.
    pub async fn send(&self, from: &Mailbox, row: &OutboxRow, now_ms: i64) -> Result<(), Failure> {
        let to: Mailbox = row.message.to.parse().map_err(|e| Failure::permanent(anyhow::anyhow!("recipient: {e}")))?;
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(row.message.subject.clone())
            .message_id(Some(format!("<{}@gpt-user>", row.id)))
            .multipart(MultiPart::alternative_plain_html(row.message.text.clone(), row.message.html.clone()))
            .map_err(Failure::permanent)?;
        match self {
            Self::Smtp(smtp) => {
                smtp.send(message).await.map_err(Failure::smtp)?;
            }
            Self::Mailbox(dir) => {
                // Write then rename: a reader never sees half a message.
                let name = format!("{now_ms}-{}.eml", row.id);
                let tmp = dir.join(format!(".{name}.tmp"));
                tokio::fs::write(&tmp, message.formatted()).await.map_err(Failure::transient)?;
                tokio::fs::rename(&tmp, dir.join(name)).await.map_err(Failure::transient)?;
            }
        }
        Ok(())
    }
}
