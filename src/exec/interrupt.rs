//! A request to stop a run, set from outside the executor (Ctrl-C in the
//! CLI) and checked by the executor at every await point that may wait long.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// A shared stop request. Clones refer to the same request.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    requested: AtomicBool,
    notify: Notify,
}

impl Interrupt {
    /// Requests the run to stop. The running statement is cancelled on the
    /// server, and the run ends with [`super::ExecError::Interrupted`].
    pub fn request(&self) {
        self.inner.requested.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Returns true once [`Interrupt::request`] was called.
    pub fn is_requested(&self) -> bool {
        self.inner.requested.load(Ordering::SeqCst)
    }

    /// Completes when the stop is requested, at once if it already was.
    pub async fn requested(&self) {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            // Registering before the check closes the race with a request
            // that lands between the two.
            notified.as_mut().enable();
            if self.is_requested() {
                return;
            }
            notified.await;
        }
    }
}
