//! The outbox side of [`SqlStore`] for the mail dispatcher: the shared layer's claim, renew and
//! marks (`gpt_user_sql::outbox`, which explains the lease), on a pooled connection.

use gpt_user_core::ports::StoreError;
use gpt_user_sql::outbox::{self, OutboxRow};

use super::sql::SqlStore;

impl SqlStore {
    /// Claims the message due soonest (killing those too old on the way) until `lock_until`, or `None` if nothing is due.
    pub async fn claim_next(&self, now: i64, lock_until: i64) -> Result<Option<OutboxRow>, StoreError> {
        self.with_conn(async |c| outbox::claim_next(c, now, lock_until).await).await
    }

    /// Extends our lease to `lock_until`; false if the row is no longer ours.
    pub async fn renew_lease(&self, row: &OutboxRow, lock_until: i64) -> Result<bool, StoreError> {
        self.with_conn(async |c| outbox::renew_lease(c, row, lock_until).await).await
    }

    /// Marks a message delivered (and drops its bodies); false if the row is not ours any more.
    pub async fn mark_sent(&self, row: &OutboxRow, now: i64) -> Result<bool, StoreError> {
        self.with_conn(async |c| outbox::mark_sent(c, row, now).await).await
    }

    /// Records a failed attempt and when to try again; false if the row is not ours any more.
    pub async fn mark_failed(&self, row: &OutboxRow, next_attempt_at: i64, why: &str) -> Result<bool, StoreError> {
        self.with_conn(async |c| outbox::mark_failed(c, row, next_attempt_at, why).await).await
    }

    /// Messages by state and the oldest undelivered one's queue time (for the metrics).
    pub async fn outbox_summary(&self) -> Result<gpt_user_sql::operator::OutboxSummary, StoreError> {
        self.with_conn(async |c| gpt_user_sql::operator::outbox_summary(c).await).await
    }

    /// Marks a message refused for good: dead, its bodies wiped, `why` kept; false if the row is
    /// not ours any more.
    pub async fn mark_dead(&self, row: &OutboxRow, now: i64, why: &str) -> Result<bool, StoreError> {
        self.with_conn(async |c| outbox::mark_dead(c, row, now, why, true).await).await
    }
}
