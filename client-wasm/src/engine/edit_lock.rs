//! [`EditLock`]: the order in which an engine's edits are stored.
//!
//! The document's order of commits and the order of their updates in `pending` must agree, and a
//! rollback must never drop another edit's stored ops. Without this lock two edits in flight on
//! one tab could store a dependent update before its dependency (or a failed write could roll back
//! a stored edit from memory) — found by the fault simulation.
//!
//! An edit takes a [`Ticket`] when it commits to the document, before any `await`, and stores
//! when its ticket is served: tickets are served in the order they were taken, so updates are
//! stored in the order their ops were made, even when an edit commits (and is shown to the other
//! tabs) while the previous one's write is still in flight. A ticket dropped before its turn (its
//! future was dropped) is skipped.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::task::{Poll, Waker};

/// Serves tickets in the order they were taken.
#[derive(Default)]
pub(super) struct EditLock {
    /// The next ticket to hand out.
    next: Cell<u64>,
    /// The ticket whose turn it is.
    serving: Cell<u64>,
    /// Tickets dropped before their turn.
    abandoned: RefCell<BTreeSet<u64>>,
    waiters: RefCell<Vec<Waker>>,
}

/// A place in the order ([`EditLock::ticket`]); [`Ticket::wait`] until it is served.
pub(super) struct Ticket<'a> {
    lock: &'a EditLock,
    n: u64,
    served: bool,
}

/// Held while an edit stores; the next ticket is served when it drops.
pub(super) struct EditGuard<'a>(&'a EditLock);

impl EditLock {
    /// Takes the next place in the order.
    pub(super) fn ticket(&self) -> Ticket<'_> {
        let n = self.next.get();
        self.next.set(n + 1);
        Ticket {
            lock: self,
            n,
            served: false,
        }
    }

    /// A ticket, waited for.
    pub(super) async fn lock(&self) -> EditGuard<'_> {
        self.ticket().wait().await
    }

    /// Serves the next ticket not abandoned, and wakes the waiters.
    fn advance(&self) {
        let mut next = self.serving.get() + 1;
        while self.abandoned.borrow_mut().remove(&next) {
            next += 1;
        }
        self.serving.set(next);
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters {
            w.wake();
        }
    }
}

impl<'a> Ticket<'a> {
    /// Waits until every ticket taken before this one was served.
    pub(super) async fn wait(mut self) -> EditGuard<'a> {
        let lock = self.lock;
        let n = self.n;
        std::future::poll_fn(|cx| {
            if lock.serving.get() == n {
                Poll::Ready(())
            } else {
                lock.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        self.served = true;
        EditGuard(lock)
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.served {
            return;
        }
        if self.lock.serving.get() == self.n {
            self.lock.advance();
        } else {
            self.lock.abandoned.borrow_mut().insert(self.n);
        }
    }
}

impl Drop for EditGuard<'_> {
    fn drop(&mut self) {
        self.0.advance();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn tickets_are_served_in_the_order_taken_and_a_dropped_one_is_skipped() {
        let lock = EditLock::default();
        let first = lock.ticket();
        let second = lock.ticket();
        let third = lock.ticket();
        let fourth = lock.ticket();
        // The second waits for the first even when it asks first.
        let mut waiting = Box::pin(second.wait());
        assert!(waiting.as_mut().now_or_never().is_none());
        let guard = first
            .wait()
            .now_or_never()
            .expect("the first ticket is served at once");
        drop(third); // abandoned before its turn
        drop(guard);
        let guard = waiting
            .now_or_never()
            .expect("the second is served after the first");
        let mut last = Box::pin(fourth.wait());
        assert!(
            last.as_mut().now_or_never().is_none(),
            "not before the second is done"
        );
        drop(guard);
        assert!(
            last.now_or_never().is_some(),
            "the dropped third is skipped"
        );
    }
}
