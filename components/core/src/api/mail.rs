//! What every flow that sends email shares: SPEC §5's throttle (at most one email of a kind per
//! address per minute, ten per hour, checked by the store inside the same transaction that queues
//! the message) and rendering through the l10n port.

use super::{ApiError, Ctx};
use crate::ports::{Message, SendLimit};

pub const HOUR_MS: i64 = 3600 * 1000;
/// At least this long between two emails of one kind to one address.
pub const SEND_MIN_INTERVAL_MS: i64 = 60 * 1000;
/// At most this many emails of one kind to one address per hour.
pub const SEND_MAX_PER_HOUR: u32 = 10;

/// The send limit for a rendered message, to go into the same `apply` as its `EnqueueMail`.
pub fn send_limit(ctx: &Ctx<'_>, mail: &Message) -> SendLimit {
    SendLimit {
        to: mail.to.clone(),
        kind: mail.kind.clone(),
        now: ctx.env.now(),
        min_interval: SEND_MIN_INTERVAL_MS,
        max_in_window: SEND_MAX_PER_HOUR,
        window: HOUR_MS,
    }
}

/// An email of `kind` in `locale`; an unknown kind is a bug (logged by the adapter), not input.
pub fn render(ctx: &Ctx<'_>, locale: &str, kind: &str, to: &str, args: &[(&str, &str)]) -> Result<Message, ApiError> {
    ctx.l10n.render_email(locale, kind, to, args).map_err(|_| ApiError::Internal)
}
