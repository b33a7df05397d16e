//! Calls made while the driver is busy: queued apart from the session.

use std::time::Duration;

use volley_proto::RemoteId;

use crate::completion::{Completer, Slots};
use crate::error::FunctionError;

/// Calls made while the driver is busy (or soon will be), under a lock of
/// their own; the driver moves them into the session once per round.
///
/// A caller taking the session's lock for each call would pull the
/// session's state (call table, deadlines, output buffer) to its core and the
/// driver would pull it back: several cache lines crossing cores per call.
/// Appending here touches only this queue, which the driver takes whole.
// In declaration order (`repr(C)`): a lone call takes its slot on the
// lock's own cache line.
#[repr(C)]
pub(crate) struct Outbox {
    /// Result slots of ended calls, for the next calls: taken and given
    /// back by callers. Under this lock, which a call made while the driver
    /// is busy holds anyway: under one of their own, such a call took two
    /// more atomic operations on one more line (pipelined calls,
    /// `volley-bench --profile pipelined`, medians of eight 3-s runs: 808 →
    /// 791 and 809 → 800 ns of CPU a call).
    pub(super) slots: Slots,
    /// The session has closed: no more calls.
    pub(super) closed: bool,
    pub(super) calls: Vec<Queued>,
    /// The queued calls' payloads, one after another.
    pub(super) bytes: Vec<u8>,
}

/// A call waiting in the [`Outbox`].
pub(crate) struct Queued {
    pub(super) remote: RemoteId,
    pub(super) timeout: Duration,
    /// Where its payload ends in the outbox's bytes.
    pub(super) end: usize,
    pub(super) seq: u64,
    pub(super) waiter: Completer,
}

/// What the driver takes from the [`Outbox`] in one go, and buffers to swap
/// in for it.
#[derive(Default)]
pub(crate) struct OutboxBatch {
    pub(super) calls: Vec<Queued>,
    pub(super) bytes: Vec<u8>,
    /// Calls that could not be made, with why, to be told without the lock.
    pub(super) failed: Vec<(Completer, FunctionError)>,
}

impl OutboxBatch {
    /// Hands the failed calls their errors. Call without holding a lock.
    pub(crate) fn deliver_failed(&mut self) {
        // Called every round of the driver, almost always with none: an
        // empty `drain` still costs its set-up and drop.
        if self.failed.is_empty() {
            return;
        }
        for (waiter, error) in self.failed.drain(..) {
            waiter.complete(Err(error));
        }
    }

    /// A quiet connection gives the buffers back.
    pub(crate) fn release(&mut self) {
        *self = Self::default();
    }
}
