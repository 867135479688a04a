//! Mail: `gpt-user:accounts/mail` writes to the outbox table; the [`Dispatcher`] drains it with
//! retries and backoff through a [`Transport`] (lettre SMTP, or the dev mailbox directory).
//! An SMTP outage delays mail; it never drops it. Bodies are never logged.

mod dispatcher;
mod transport;

pub use dispatcher::Dispatcher;
pub use transport::Transport;

use crate::bindings::mail;
use crate::bindings::types::{Error, Message};
use crate::runtime::HostState;

impl mail::Host for HostState {
    async fn enqueue(&mut self, message: Message) -> Result<(), Error> {
        let now = self.shared.clock.now_ms();
        Ok(self.shared.store.apply(vec![gpt_user_core::ports::Op::EnqueueMail(message.into(), now)]).await?)
    }
}

impl<U> mail::HostWithStore<U> for wasmtime::component::HasSelf<HostState> {
    /// Nothing to do here: the [`Dispatcher`] delivers the outbox on its own schedule.
    async fn flush(_: &wasmtime::component::Accessor<U, Self>) {}
}
