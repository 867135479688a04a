//! Drains the outbox: claims due messages (a lease, so several hosts can share one database),
//! sends them, marks them sent, or schedules a retry with exponential backoff.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;

use super::Transport;
use crate::adapters::store::SqlStore;
use crate::clock::Clock;

/// How long a claimed message stays ours before another dispatcher may take it.
const LEASE_MS: i64 = 120_000;
const BATCH: i64 = 20;

pub struct Dispatcher {
    pub store: SqlStore,
    pub transport: Transport,
    pub from: Mailbox,
    pub clock: Clock,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub poll: Duration,
}

impl Dispatcher {
    /// Runs until `stop` is notified.
    pub async fn run(self: Arc<Self>, stop: Arc<tokio::sync::Notify>) {
        loop {
            while self.deliver_due().await > 0 {}
            tokio::select! {
                () = self.store.mail_queued.notified() => {}
                () = tokio::time::sleep(self.poll) => {}
                () = stop.notified() => return,
            }
        }
    }

    /// Delivers what is due now; returns how many messages were attempted.
    pub async fn deliver_due(&self) -> usize {
        let now = self.clock.now_ms();
        let rows = match self.store.claim_due(now, now + LEASE_MS, BATCH).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the outbox");
                return 0;
            }
        };
        for row in &rows {
            match self.transport.send(&self.from, row, self.clock.now_ms()).await {
                Ok(()) => {
                    tracing::info!(message_id = %row.id, attempts = row.attempts + 1, "mail delivered");
                    if let Err(e) = self.store.mark_sent(&row.id, self.clock.now_ms()).await {
                        tracing::error!(message_id = %row.id, error = %e, "mail delivered but not marked sent");
                    }
                }
                Err(e) => {
                    let delay = self.backoff(row.attempts);
                    tracing::warn!(message_id = %row.id, attempts = row.attempts + 1, retry_in_ms = delay.as_millis() as u64, error = %e, "mail delivery failed");
                    let next = self.clock.now_ms() + delay.as_millis() as i64;
                    if let Err(e) = self.store.mark_failed(&row.id, next, &e.to_string()).await {
                        tracing::error!(message_id = %row.id, error = %e, "cannot record a failed delivery");
                    }
                }
            }
        }
        rows.len()
    }

    fn backoff(&self, attempts: i64) -> Duration {
        let factor = 1u32 << attempts.clamp(0, 20) as u32;
        self.retry_base.saturating_mul(factor).min(self.retry_max)
    }
}
