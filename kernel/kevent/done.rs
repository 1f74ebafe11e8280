// SPDX-License-Identifier: GPL-2.0

//! Results of requests that finished as they were submitted, kept for delivery without a kevent.
//!
//! A request that its source finishes inside the `kevent_ctl()` that submits it (a send the
//! socket takes whole) has a final result and nothing left to do. In a queue with a ring its
//! event is written into the ring there; in a queue without one it would need a kevent (an
//! allocation, the ready list, and the kevent's removal at delivery) only to carry that result to
//! `kevent_get_events()`. The queue keeps such results in a small buffer instead, allocated at
//! its first use: [`Done`], a FIFO of finished entries with their keys, guarded by the queue's
//! index mutex (results are kept by `kevent_ctl()` and delivered by `kevent_get_events()`, both
//! under it). A kept result holds its key as its kevent would have until delivered: an `ADD` of
//! the same key fails with `EEXIST`, and a `REMOVE` of it succeeds and leaves the result to be
//! delivered. A result that finds the buffer full (or that cannot wait behind the ready list, see
//! `Queue::post_done`) takes a kevent after all, as before.

use crate::{abi::Ukevent, event::Key};
use kernel::prelude::*;

/// How many results one queue keeps: 8 KiB of entries.
pub(crate) const DONE_SLOTS: usize = 128;

/// A kept result: the entry to deliver, and the key it holds.
#[derive(Clone, Copy)]
struct Kept {
    uk: Ukevent,
    key: Key,
}

/// A FIFO of up to [`DONE_SLOTS`] finished entries.
///
/// # Invariants
///
/// `slots.len() == DONE_SLOTS`, `head < DONE_SLOTS` and `len <= DONE_SLOTS`.
pub(crate) struct Done {
    slots: KVec<Kept>,
    head: usize,
    len: usize,
}

impl Done {
    /// An empty buffer (`ENOMEM`).
    pub(crate) fn new() -> Result<Done> {
        let unused = Kept {
            uk: Ukevent::zeroed(),
            key: Key {
                ty: 0,
                id: 0,
                user_data: 0,
            },
        };
        let slots = KVec::from_elem(unused, DONE_SLOTS, GFP_KERNEL_ACCOUNT)?;
        // INVARIANT: `DONE_SLOTS` slots, empty.
        Ok(Done {
            slots,
            head: 0,
            len: 0,
        })
    }

    /// Number of results kept.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer has no room.
    pub(crate) fn is_full(&self) -> bool {
        self.len == DONE_SLOTS
    }

    /// Whether a kept result holds `key`.
    pub(crate) fn holds(&self, key: &Key) -> bool {
        (0..self.len).any(|k| {
            self.slots
                .get((self.head + k) % DONE_SLOTS)
                .is_some_and(|kept| kept.key == *key)
        })
    }

    /// Appends `uk`, which holds `key`, unless the buffer is full: returns whether it did.
    pub(crate) fn push(&mut self, uk: Ukevent, key: Key) -> bool {
        if self.len == DONE_SLOTS {
            return false;
        }
        let i = (self.head + self.len) % DONE_SLOTS;
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = Kept { uk, key };
            // INVARIANT: `len` was below `DONE_SLOTS`.
            self.len += 1;
            return true;
        }
        false
    }

    /// Appends up to `max` results from the head to `out` (within its capacity), leaving them
    /// here: [`Done::consume`] drops those that were delivered.
    pub(crate) fn peek(&self, max: usize, out: &mut KVec<Ukevent>) {
        for k in 0..self.len.min(max) {
            let Some(kept) = self.slots.get((self.head + k) % DONE_SLOTS) else {
                break;
            };
            if out.push_within_capacity(kept.uk).is_err() {
                break;
            }
        }
    }

    /// Drops the first `n` results (those [`Done::peek`] gave and were delivered).
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        // INVARIANT: `head` stays below `DONE_SLOTS` and `len` does not grow.
        self.head = (self.head + n) % DONE_SLOTS;
        self.len -= n;
    }
}

#[kunit_tests(kevent_done)]
mod tests {
    use super::*;

    fn entry(user_data: u64) -> Ukevent {
        let mut uk = Ukevent::zeroed();
        uk.0.user_data = user_data;
        uk
    }

    fn key(user_data: u64) -> Key {
        Key {
            ty: 5,
            id: 3,
            user_data,
        }
    }

    #[test]
    fn fifo_fills_and_wraps() -> Result {
        let mut done = Done::new()?;
        let mut out = KVec::with_capacity(DONE_SLOTS, GFP_KERNEL)?;
        for i in 0..DONE_SLOTS as u64 {
            assert!(done.push(entry(i), key(i)));
        }
        assert!(done.is_full() && done.holds(&key(5)) && !done.holds(&key(999)));
        // Full: refused, nothing lost.
        assert!(!done.push(entry(999), key(999)));
        assert_eq!(done.len(), DONE_SLOTS);
        // Peeking keeps them; consuming drops what was delivered, from the head.
        done.peek(3, &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!((out[0].0.user_data, out[2].0.user_data), (0, 2));
        done.consume(2);
        assert_eq!(done.len(), DONE_SLOTS - 2);
        out.clear();
        done.peek(1, &mut out);
        assert_eq!(out[0].0.user_data, 2);
        // Room again, at the tail, past the end of the slots.
        assert!(done.push(entry(1000), key(1000)) && done.push(entry(1001), key(1001)));
        assert!(!done.push(entry(1002), key(1002)));
        done.consume(DONE_SLOTS - 2);
        out.clear();
        done.peek(DONE_SLOTS, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].0.user_data, out[1].0.user_data), (1000, 1001));
        // Delivered results hold their keys no more.
        assert!(!done.holds(&key(5)) && done.holds(&key(1001)));
        // Consuming more than is kept empties it.
        done.consume(5);
        assert_eq!(done.len(), 0);
        // Peeking respects the output's room.
        for i in 0..10 {
            assert!(done.push(entry(i), key(i)));
        }
        let mut small = KVec::with_capacity(4, GFP_KERNEL)?;
        done.peek(10, &mut small);
        assert_eq!(small.len(), 4);
        Ok(())
    }
}
