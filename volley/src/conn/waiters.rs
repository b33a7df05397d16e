//! Callers waiting for our calls to end.

use volley_proto::CallId;

use crate::completion::Completer;

/// Callers waiting for our calls to end, indexed by call id (the session
/// hands out small ids, reusing freed ones first, so a vector beats a hash
/// map), each with the sequence number of its call: a dropped caller must not
/// cancel a newer call that reused its id.
#[derive(Default)]
pub(super) struct Waiters {
    pub(super) slots: Vec<Option<(u64, Completer)>>,
    pub(super) len: usize,
}

impl Waiters {
    pub(super) fn insert(&mut self, id: CallId, seq: u64, waiter: Completer) {
        let at = id as usize;
        if at >= self.slots.len() {
            self.slots.resize_with(at + 1, || None);
        }
        if self.slots[at].replace((seq, waiter)).is_none() {
            self.len += 1;
        }
    }

    pub(super) fn remove(&mut self, id: CallId) -> Option<Completer> {
        let (_, waiter) = self.slots.get_mut(id as usize)?.take()?;
        self.len -= 1;
        Some(waiter)
    }

    /// Removes the waiter of call `id` if it is still call `seq`'s.
    pub(super) fn remove_if(&mut self, id: CallId, seq: u64) -> bool {
        match self.slots.get(id as usize) {
            Some(Some((s, _))) if *s == seq => self.remove(id).is_some(),
            _ => false,
        }
    }

    /// Gives the table's memory back when no call is waiting.
    pub(super) fn release_if_empty(&mut self) {
        if self.len == 0 {
            self.slots = Vec::new();
        }
    }
}
