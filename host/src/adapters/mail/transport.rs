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
    pub async fn send(&self, from: &Mailbox, row: &OutboxRow, now_ms: i64) -> anyhow::Result<()> {
        let message = Message::builder()
            .from(from.clone())
            .to(row.message.to.parse()?)
            .subject(row.message.subject.clone())
            .message_id(Some(format!("<{}@gpt-user>", row.id)))
            .multipart(MultiPart::alternative_plain_html(row.message.text.clone(), row.message.html.clone()))?;
        match self {
            Self::Smtp(smtp) => {
                smtp.send(message).await?;
            }
            Self::Mailbox(dir) => {
                // Write then rename: a reader never sees half a message.
                let name = format!("{now_ms}-{}.eml", row.id);
                let tmp = dir.join(format!(".{name}.tmp"));
                tokio::fs::write(&tmp, message.formatted()).await?;
                tokio::fs::rename(&tmp, dir.join(name)).await?;
            }
        }
        Ok(())
    }
}
