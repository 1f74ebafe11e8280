// SPDX-License-Identifier: GPL-2.0

//! A hash table of intrusive lists of kevents.
//!
//! Two tables find kevents by a key: a queue's index (`index.rs`, by [`Key`]) and the registry of
//! registrations by descriptor (`fdtrack.rs`, by file). Both are a [`HashLists`]: a power of two
//! of lists, each kevent linked through a list link of its own (the list id `ID`), so adding a
//! kevent allocates nothing for it; only the table of buckets is allocated. The table grows
//! [`GROWTH`] times larger when the kevents would outnumber the buckets, and as many times smaller
//! when they fall below an eighth of them, so a lookup walks one bucket of at most about one
//! kevent whatever the number, and an add and a remove cost O(1) amortised. Growing by four rather
//! than two moves each kevent a third as often (a third of a move per kevent added, not one), for
//! at most four buckets (32 bytes) per kevent.
//!
//! The table does not know the keys: its user hashes a key to a well-mixed 64-bit number (its top
//! bits pick the bucket) and gives the hash of each kevent to the calls that need one. It is
//! guarded by its user's lock.
//!
//! [`Key`]: crate::event::Key

use crate::event::Kevent;
use kernel::{
    list::{List, ListArc, ListItem},
    prelude::*,
};

/// The fewest buckets of a table that has any.
const MIN_BUCKETS: usize = 16;

/// How many times larger (or smaller) a table gets when it is resized.
const GROWTH: usize = 4;

/// Kevents by the hash of a key, in lists of id `ID`.
pub(crate) struct HashLists<const ID: u64>
where
    Kevent: ListItem<ID>,
{
    /// A power of two of lists, or none before the first kevent.
    buckets: KVVec<List<Kevent, ID>>,
    /// `64 - log2(buckets.len())`: a hash shifted right by it is a bucket number (64, an empty
    /// table's, gives bucket 0, never used).
    shift: u32,
    /// The number of kevents.
    nr: usize,
}

impl<const ID: u64> HashLists<ID>
where
    Kevent: ListItem<ID>,
{
    /// An empty table.
    pub(crate) const fn new() -> Self {
        HashLists {
            buckets: KVVec::new(),
            shift: 64,
            nr: 0,
        }
    }

    /// The number of kevents.
    pub(crate) fn len(&self) -> usize {
        self.nr
    }

    /// The bucket a kevent whose key hashes to `hash` is in, if the table has any.
    pub(crate) fn bucket(&self, hash: u64) -> Option<&List<Kevent, ID>> {
        self.buckets.get(Self::slot(hash, self.shift))
    }

    fn slot(hash: u64, shift: u32) -> usize {
        hash.checked_shr(shift).unwrap_or(0) as usize
    }

    /// Whether one more kevent would outnumber the buckets: [`HashLists::reserve_one`] would
    /// resize.
    pub(crate) fn is_full(&self) -> bool {
        self.nr >= self.buckets.len()
    }

    /// Whether the kevents are below an eighth of the buckets: [`HashLists::shrink`] would
    /// resize.
    pub(crate) fn is_sparse(&self) -> bool {
        let n = self.buckets.len();
        n > MIN_BUCKETS && self.nr < n / 8
    }

    /// Makes room for one more kevent: grows the table if the kevents would outnumber the
    /// buckets, moving each kevent to the bucket of its hash, `hash_of(kevent)`. Fails
    /// (`ENOMEM`) only if the table has no bucket and none can be allocated; a table that
    /// cannot grow keeps working, with longer buckets.
    pub(crate) fn reserve_one(&mut self, hash_of: impl Fn(&Kevent) -> u64) -> Result {
        if !self.is_full() {
            return Ok(());
        }
        let n = self.buckets.len();
        match self.resize((n * GROWTH).max(MIN_BUCKETS), hash_of) {
            Err(e) if self.buckets.is_empty() => Err(e),
            _ => Ok(()),
        }
    }

    /// Adds `item`, whose key hashes to `hash`, after [`HashLists::reserve_one`] succeeded.
    /// Returns `item` if there was no room (there is none without a successful reserve).
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        item: ListArc<Kevent, ID>,
    ) -> Option<ListArc<Kevent, ID>> {
        match self.buckets.get_mut(Self::slot(hash, self.shift)) {
            Some(list) => {
                list.push_back(item);
                self.nr += 1;
                None
            }
            None => Some(item),
        }
    }

    /// Removes `kevent`, whose key hashes to `hash`, if it is in this table. The caller then
    /// calls [`HashLists::shrink`] (if [`HashLists::is_sparse`]).
    ///
    /// # Safety
    ///
    /// The links of id `ID` of a kevent are used by this table alone, and a kevent in it is in the
    /// bucket of its key's hash: so that if `kevent` is not in the bucket of `hash`, it is in no
    /// list of id `ID`.
    pub(crate) unsafe fn remove(
        &mut self,
        hash: u64,
        kevent: &Kevent,
    ) -> Option<ListArc<Kevent, ID>> {
        let list = self.buckets.get_mut(Self::slot(hash, self.shift))?;
        // SAFETY: By the function's safety requirements, `kevent` is in this list or in no list
        // of id `ID`.
        let item = unsafe { list.remove(kevent) }?;
        self.nr -= 1;
        Some(item)
    }

    /// Shrinks the table if it is below an eighth full, to a table at most half full (far from
    /// growing again), moving each kevent to the bucket of its hash, `hash_of(kevent)`. Best
    /// effort: a table that cannot shrink just stays large.
    pub(crate) fn shrink(&mut self, hash_of: impl Fn(&Kevent) -> u64) {
        if self.is_sparse() {
            let _ = self.resize((self.buckets.len() / GROWTH).max(MIN_BUCKETS), hash_of);
        }
    }

    /// Moves every kevent into a table of `n` buckets (a power of two), to the bucket of its
    /// hash, `hash_of(kevent)`.
    fn resize(&mut self, n: usize, hash_of: impl Fn(&Kevent) -> u64) -> Result {
        let mut buckets = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
        for _ in 0..n {
            // Cannot fail: the capacity is `n`.
            buckets
                .push_within_capacity(List::new())
                .map_err(|_| ENOMEM)?;
        }
        let shift = 64 - n.trailing_zeros();
        let mut old = core::mem::replace(&mut self.buckets, buckets);
        self.shift = shift;
        for list in old.iter_mut() {
            while let Some(item) = list.pop_front() {
                let slot = Self::slot(hash_of(&item), shift);
                if let Some(to) = self.buckets.get_mut(slot) {
                    to.push_back(item);
                }
            }
        }
        Ok(())
    }

    /// Takes every kevent out: the table is empty (and has no buckets) after this.
    pub(crate) fn take_all(&mut self) -> KVVec<List<Kevent, ID>> {
        self.nr = 0;
        self.shift = 64;
        core::mem::replace(&mut self.buckets, KVVec::new())
    }

    /// Every list of the table, in no order.
    pub(crate) fn lists(&self) -> impl Iterator<Item = &List<Kevent, ID>> {
        self.buckets.iter()
    }
}
