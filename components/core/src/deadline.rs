//! One combinator for the WASIp3 guests (the flow's linger on a request body and its fetch of a
//! client's metadata document, the Spin adapter's SMTP steps): a piece of work raced against a
//! clock wait, so that nothing waits on a peer alone.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

/// `work`'s output if it ends before `deadline` does, else `None`. The loser is dropped: in a
/// WASIp3 guest, a stream read or write or an async import call in progress is cancelled.
pub async fn within<F: Future>(deadline: impl Future<Output = ()>, work: F) -> Option<F::Output> {
    let (mut work, mut deadline) = (pin!(work), pin!(deadline));
    std::future::poll_fn(|cx| match work.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(Some(out)),
        Poll::Pending => deadline.as_mut().poll(cx).map(|()| None),
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::future::{pending, ready};
    use std::task::{Context, Waker};

    use super::*;

    fn now<T>(f: impl Future<Output = T>) -> Poll<T> {
        pin!(f).poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn the_work_wins_if_it_is_done_and_the_deadline_if_the_work_is_not() {
        assert_eq!(now(within(ready(()), ready(7))), Poll::Ready(Some(7)), "done work beats a passed deadline");
        assert_eq!(now(within(ready(()), pending::<u8>())), Poll::Ready(None));
        assert_eq!(now(within(pending(), pending::<u8>())), Poll::Pending, "neither: it waits");
    }
}
