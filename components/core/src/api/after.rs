//! Work a route leaves for after its answer (issue 19): what the answer must not wait for,
//! because its time would tell the caller which way the work went (an unknown address costs one
//! read, a known one a render and a committed write).
//!
//! A handler queues a closure with [`Ctx::defer`] and answers at once; whoever writes the answer
//! to the client calls [`Ctx::run_deferred`] once the client has all of it — the guest's `serve`
//! before `mail.flush()`, the native baseline after handing the response to the server, tests
//! right after `respond`. The work runs with the same ports and settings, and its failures are
//! the adapters' to log: the answer is already out.

use std::cell::RefCell;

use super::Ctx;

type Work = Box<dyn FnOnce(&Ctx<'_>)>;

/// The queue of one request's deferred work (the [`Ctx::after`] field).
#[derive(Default)]
pub struct After(RefCell<Vec<Work>>);

impl Ctx<'_> {
    /// Runs `work` after the answer is written (see the module docs).
    pub fn defer(&self, work: impl FnOnce(&Ctx<'_>) + 'static) {
        self.after.0.borrow_mut().push(Box::new(work));
    }

    /// Runs the deferred work, in the order it was queued (and any it queues in turn).
    pub fn run_deferred(&self) {
        loop {
            let queued = std::mem::take(&mut *self.after.0.borrow_mut());
            if queued.is_empty() {
                return;
            }
            for work in queued {
                work(self);
            }
        }
    }
}

impl Drop for After {
    /// A request's work dropped unrun would be a silent loss (a link never sent): a caller of
    /// `respond` that forgot [`Ctx::run_deferred`]. Caught in debug builds (tests).
    fn drop(&mut self) {
        debug_assert!(std::thread::panicking() || self.0.get_mut().is_empty(), "deferred work dropped without running");
    }
}
