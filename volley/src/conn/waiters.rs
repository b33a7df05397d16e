//! Callers waiting for our calls to end.

use volley_proto::CallId;

use crate::completion::Completer;

/// A waiting caller: the sequence number of its call (a dropped caller must
/// not cancel a newer call that reused its id) and where its result goes.
type Waiter = Option<(u64, Completer)>;

/// Callers waiting for our calls to end, indexed by call id (the session
/// hands out small ids, reusing freed ones first, so a vector beats a hash
/// map).
#[derive(Default)]
pub(super) struct Waiters {
    /// Call id 0's: a connection making one call at a time (most, and each
    /// connection of a call to a room) only ever uses id 0, kept here in the
    /// connection's state rather than in a table a cache line away (one miss
    /// less at each call and each answer of a cold connection).
    first: Waiter,
    /// Ids from 1 on, id `n` at `n - 1`.
    rest: Vec<Waiter>,
    len: usize,
}

impl Waiters {
    pub(super) fn insert(&mut self, id: CallId, seq: u64, waiter: Completer) {
        let slot = match id as usize {
            0 => &mut self.first,
            at => {
                if at > self.rest.len() {
                    self.rest.resize_with(at, || None);
                }
                &mut self.rest[at - 1]
            }
        };
        if slot.replace((seq, waiter)).is_none() {
            self.len += 1;
        }
    }

    fn slot(&mut self, id: CallId) -> Option<&mut Waiter> {
        match id as usize {
            0 => Some(&mut self.first),
            at => self.rest.get_mut(at - 1),
        }
    }

    pub(super) fn remove(&mut self, id: CallId) -> Option<Completer> {
        let (_, waiter) = self.slot(id)?.take()?;
        self.len -= 1;
        Some(waiter)
    }

    /// Removes the waiter of call `id` if it is still call `seq`'s.
    pub(super) fn remove_if(&mut self, id: CallId, seq: u64) -> bool {
        match self.slot(id) {
            Some(Some((s, _))) if *s == seq => self.remove(id).is_some(),
            _ => false,
        }
    }

    /// Gives the table's memory back when no call is waiting.
    pub(super) fn release_if_empty(&mut self) {
        if self.len == 0 {
            self.rest = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Waiters;
    use crate::completion::Slots;

    /// Id 0 lives apart from the rest: each id still finds its own waiter,
    /// a stale sequence number removes nothing, and the count stays right.
    #[test]
    fn each_call_id_finds_its_own_waiter() {
        let mut slots = Slots::default();
        let mut waiters = Waiters::default();
        for (id, seq) in [(0, 10), (2, 12), (1, 11)] {
            let (waiter, _done) = slots.completion(None);
            waiters.insert(id, seq, waiter);
        }
        assert_eq!(waiters.len, 3);
        assert!(!waiters.remove_if(0, 11), "another call's sequence number");
        assert!(waiters.remove_if(0, 10));
        assert!(waiters.remove(0).is_none(), "already gone");
        assert!(waiters.remove_if(2, 12));
        assert!(waiters.remove(1).is_some());
        assert!(waiters.remove(3).is_none(), "never there");
        assert_eq!(waiters.len, 0);
        waiters.release_if_empty();
        assert_eq!(waiters.rest.capacity(), 0);
    }
}
