// SPDX-License-Identifier: GPL-2.0

//! The index of a queue's kevents: a hash table of intrusive lists.
//!
//! Every kevent of a queue is in its index, found by its [`Key`] for `KEVENT_CTL_MODIFY` and
//! `KEVENT_CTL_REMOVE`, for the check of `KEVENT_CTL_ADD` that the key is free, and when a oneshot
//! kevent leaves at its delivery. The index links each kevent through a list link of its own
//! (list id [`INDEX`]), so adding a kevent allocates nothing for it: only the table of buckets is
//! allocated, and it grows four times larger when the kevents outnumber the buckets (and four times
//! smaller when they fall below an eighth), so a lookup walks one bucket of at most about one
//! kevent whatever the number of kevents, and an add and a remove cost O(1) amortised. Growing by
//! four rather than two moves each kevent a third as often (a third of a move per kevent added, not
//! one), for at most four buckets (64 bytes) per kevent. This is kqueue's structure for its
//! identifiers; an rbtree (as epoll's, whose node C embeds in the item) would need a node allocated
//! per kevent in Rust.
//!
//! The hash is keyed with a random number of the queue, so that a process cannot choose
//! identifiers that all fall in one bucket without knowing it (and that would only slow its own
//! queue). Iteration follows the buckets: it has no order.
//!
//! The index is guarded by the queue's `index` mutex (it is a field of `queue::Index`).

use crate::event::{Kevent, Key};
use kernel::{
    bindings,
    list::{List, ListArc},
    prelude::*,
    sync::{Arc, ArcBorrow},
};

/// List id of a queue's index.
pub(crate) const INDEX: u64 = 2;

/// The fewest buckets of a table that has any.
const MIN_BUCKETS: usize = 16;

/// How many times larger (or smaller) the table gets when it is resized.
const GROWTH: usize = 4;

/// The kevents of one queue, by key.
pub(crate) struct KeventIndex {
    /// A power of two of lists, or none before the first kevent.
    buckets: KVVec<List<Kevent, INDEX>>,
    /// `64 - log2(buckets.len())`: a hash shifted right by it is a bucket number.
    shift: u32,
    /// The number of kevents.
    nr: usize,
    /// The hash key.
    seed: u64,
}

impl KeventIndex {
    /// An empty index.
    pub(crate) fn new() -> Self {
        KeventIndex {
            buckets: KVVec::new(),
            shift: 64,
            nr: 0,
            // SAFETY: No requirements; any value is fine as a hash key.
            seed: unsafe { bindings::get_random_u64() },
        }
    }

    /// The number of kevents.
    pub(crate) fn len(&self) -> usize {
        self.nr
    }

    /// The bucket of `key` (the table has buckets).
    fn slot(&self, key: &Key) -> usize {
        const M: u64 = 0x9e37_79b9_7f4a_7c15;
        let h = (key.id ^ self.seed).wrapping_mul(M)
            ^ key
                .user_data
                .wrapping_add(u64::from(key.ty))
                .rotate_left(29);
        // An empty table's `shift` is 64: bucket 0, never used.
        h.wrapping_mul(M).checked_shr(self.shift).unwrap_or(0) as usize
    }

    /// The bucket `key` would be in, if the table has any.
    fn bucket(&self, key: &Key) -> Option<&List<Kevent, INDEX>> {
        if self.buckets.is_empty() {
            return None;
        }
        self.buckets.get(self.slot(key))
    }

    /// The kevent of `key`.
    pub(crate) fn get(&self, key: &Key) -> Option<ArcBorrow<'_, Kevent>> {
        self.bucket(key)?.iter().find(|k| k.key == *key)
    }

    /// Whether the key is taken.
    pub(crate) fn contains(&self, key: &Key) -> bool {
        self.get(key).is_some()
    }

    /// Makes room for one more kevent: grows the table if the kevents would outnumber the
    /// buckets. Fails (`ENOMEM`) only if the table has no bucket and none can be allocated; a
    /// table that cannot grow keeps working, with longer buckets.
    pub(crate) fn reserve_one(&mut self) -> Result {
        if self.nr < self.buckets.len() {
            return Ok(());
        }
        let want = (self.buckets.len() * GROWTH).max(MIN_BUCKETS);
        match self.resize(want) {
            Err(e) if self.buckets.is_empty() => Err(e),
            _ => Ok(()),
        }
    }

    /// Adds `item`, whose key is not taken, after [`KeventIndex::reserve_one`] succeeded.
    pub(crate) fn insert(&mut self, item: ListArc<Kevent, INDEX>) {
        let slot = self.slot(&item.key);
        if let Some(list) = self.buckets.get_mut(slot) {
            list.push_back(item);
            self.nr += 1;
        }
        // Else: not reserved (cannot happen); dropping `item` unindexes it.
    }

    /// Removes the kevent of `key`.
    pub(crate) fn remove(&mut self, key: &Key) -> Option<Arc<Kevent>> {
        let kevent = Arc::<Kevent>::from(self.get(key)?);
        self.remove_kevent(&kevent)
    }

    /// Removes `kevent` if it is in this index.
    pub(crate) fn remove_kevent(&mut self, kevent: &Kevent) -> Option<Arc<Kevent>> {
        if self.buckets.is_empty() {
            return None;
        }
        let slot = self.slot(&kevent.key);
        // SAFETY: A kevent is in no index but its queue's, and there in the bucket of its key: if
        // it is not in this bucket, it is in no list with the id `INDEX`.
        let item = unsafe { self.buckets.get_mut(slot)?.remove(kevent) }?;
        self.nr -= 1;
        let len = self.buckets.len();
        // Below an eighth, to a table at most half full: far from growing again.
        if len > MIN_BUCKETS && self.nr < len / 8 {
            // Best effort: a table that cannot shrink just stays large.
            let _ = self.resize((len / GROWTH).max(MIN_BUCKETS));
        }
        Some(item.into_arc())
    }

    /// Moves every kevent into a table of `n` buckets (a power of two).
    fn resize(&mut self, n: usize) -> Result {
        let mut buckets = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
        for _ in 0..n {
            // Cannot fail: the capacity is `n`.
            buckets
                .push_within_capacity(List::new())
                .map_err(|_| ENOMEM)?;
        }
        let mut old = core::mem::replace(&mut self.buckets, buckets);
        self.shift = 64 - n.trailing_zeros();
        for list in old.iter_mut() {
            while let Some(item) = list.pop_front() {
                let slot = self.slot(&item.key);
                if let Some(to) = self.buckets.get_mut(slot) {
                    to.push_back(item);
                }
            }
        }
        Ok(())
    }

    /// Takes every kevent out: the index is empty (and has no table) after this.
    pub(crate) fn take_all(&mut self) -> KVVec<List<Kevent, INDEX>> {
        self.nr = 0;
        self.shift = 64;
        core::mem::replace(&mut self.buckets, KVVec::new())
    }

    /// Every kevent, in no order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = ArcBorrow<'_, Kevent>> {
        self.buckets.iter().flat_map(|list| list.iter())
    }
}
