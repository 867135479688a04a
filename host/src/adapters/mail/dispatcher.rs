//! Drains the outbox: claims one due message at a time under a lease (so several hosts can
//! share one database), sends it, marks it sent, or schedules a retry with exponential backoff.
//!
//! Exactly one dispatcher owns a message while it is being sent:
//! - the claim writes a random lease id into the row; marks are conditional on it, so a
//!   dispatcher whose lease was taken over cannot mark (nor clear) someone else's claim;
//! - the lease is renewed while the send is in flight, so a slow relay never outlives it; a
//!   lease only runs out when its holder stops renewing (a crash, a database outage), and then
//!   another dispatcher takes the message over — mail is never lost;
//! - a dispatcher that finds its lease taken over abandons its send: while the relay has not
//!   answered the end of DATA, hanging up means the message was not handed over.
//!
//! A message is marked sent only after the relay accepted it. A host that dies between the
//! relay's `250` and the mark will have it sent again: at-least-once, never lost — unless it
//! cannot be delivered: a message the relay refuses for good (a 5xx reply about it) is marked
//! dead at once, and one not delivered within a day of being queued when it next comes due
//! (`gpt_user_sql::outbox::mark_dead`, `claim_next`); both keep the reason and wipe the body.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;

use super::Transport;
use super::transport::Failure;
use crate::adapters::store::{OutboxRow, SqlStore};
use crate::clock::Clock;

pub struct Dispatcher {
    pub store: SqlStore,
    pub transport: Transport,
    pub from: Mailbox,
    pub clock: Clock,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub poll: Duration,
    /// How long a claimed message stays ours without renewal before another dispatcher may take
    /// it (`Config::mail_lease_ms`, default 120 s); renewed every third of it while sending.
    pub lease: Duration,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// How one send ended.
enum Outcome {
    Sent,
    Failed(Failure),
    /// Another dispatcher claimed the message while we were sending; we hung up.
    Abandoned,
}

impl Dispatcher {
    /// Runs until `stop` is notified.
    pub async fn run(self: Arc<Self>, stop: Arc<tokio::sync::Notify>) {
        loop {
            while self.deliver_next().await {}
            tokio::select! {
                () = self.store.mail_queued.notified() => {}
                () = tokio::time::sleep(self.poll) => {}
                () = stop.notified() => return,
            }
        }
    }

    /// Claims and delivers one due message; false if none was due (or the outbox is unreadable).
    pub async fn deliver_next(&self) -> bool {
        let now = self.clock.now_ms();
        let row = match self.store.claim_next(now, now + self.lease_ms()).await {
            Ok(Some(row)) => row,
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the outbox");
                return false;
            }
        };
        let attempts = row.attempts + 1;
        let started = std::time::Instant::now();
        let outcome = self.send_holding_lease(&row).await;
        match &outcome {
            Outcome::Sent => {
                let since_queued = Duration::from_millis(u64::try_from(self.clock.now_ms() - row.queued_at).unwrap_or(0));
                self.metrics.mail_sent(started.elapsed(), since_queued);
            }
            Outcome::Failed(failure) => self.metrics.mail_failed(failure.permanent, started.elapsed()),
            Outcome::Abandoned => {}
        }
        match outcome {
            Outcome::Sent => match self.store.mark_sent(&row, self.clock.now_ms()).await {
                Ok(true) => tracing::info!(message_id = %row.id, attempts, "mail delivered"),
                Ok(false) => tracing::warn!(message_id = %row.id, "mail delivered, but another dispatcher holds it now and may deliver it again"),
                Err(e) => tracing::error!(message_id = %row.id, error = %e, "mail delivered but not marked sent"),
            },
            Outcome::Failed(Failure { permanent: true, error }) => {
                tracing::warn!(message_id = %row.id, attempts, error = %error, "mail refused for good: marked dead, its body wiped");
                match self.store.mark_dead(&row, self.clock.now_ms(), &error.to_string()).await {
                    Ok(true) => {}
                    Ok(false) => tracing::info!(message_id = %row.id, "refusal not recorded: another dispatcher holds the message now"),
                    Err(e) => tracing::error!(message_id = %row.id, error = %e, "cannot record a refused delivery"),
                }
            }
            Outcome::Failed(Failure { permanent: false, error: e }) => {
                let delay = self.backoff(row.attempts);
                tracing::warn!(message_id = %row.id, attempts, retry_in_ms = delay.as_millis() as u64, error = %e, "mail delivery failed");
                let next = self.clock.now_ms() + delay.as_millis() as i64;
                match self.store.mark_failed(&row, next, &e.to_string()).await {
                    Ok(true) => {}
                    Ok(false) => tracing::info!(message_id = %row.id, "failed delivery not recorded: another dispatcher holds the message now"),
                    Err(e) => tracing::error!(message_id = %row.id, error = %e, "cannot record a failed delivery"),
                }
            }
            Outcome::Abandoned => {
                tracing::warn!(message_id = %row.id, "lease lost while sending (renewals were late); left to the dispatcher that holds it")
            }
        }
        true
    }

    /// Sends `row`, renewing its lease every third of the lease length until the relay answers.
    async fn send_holding_lease(&self, row: &OutboxRow) -> Outcome {
        let send = self.transport.send(&self.from, row, self.clock.now_ms());
        tokio::pin!(send);
        let every = (self.lease / 3).max(Duration::from_millis(1));
        loop {
            tokio::select! {
                result = &mut send => return result.map_or_else(Outcome::Failed, |()| Outcome::Sent),
                () = tokio::time::sleep(every) => {
                    match self.store.renew_lease(row, self.clock.now_ms() + self.lease_ms()).await {
                        Ok(true) => {}
                        // Dropping `send` closes the SMTP connection before the relay accepted.
                        Ok(false) => return Outcome::Abandoned,
                        // Keep sending: the lease may still hold, and the marks are conditional anyway.
                        Err(e) => tracing::warn!(message_id = %row.id, error = %e, "cannot renew the lease of a message being sent"),
                    }
                }
            }
        }
    }

    fn lease_ms(&self) -> i64 {
        self.lease.as_millis() as i64
    }

    fn backoff(&self, attempts: i64) -> Duration {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let wait = gpt_user_sql::outbox::backoff_ms(ms(self.retry_base), ms(self.retry_max), attempts);
        Duration::from_millis(u64::try_from(wait).unwrap_or(0))
    }
}
