// SPDX-License-Identifier: GPL-2.0

//! The index of a queue's kevents: a hash table of intrusive lists.
//!
//! Every kevent of a queue is in its index, found by its [`Key`] for `KEVENT_CTL_MODIFY` and
//! `KEVENT_CTL_REMOVE`, for the check of `KEVENT_CTL_ADD` that the key is free, and when a oneshot
//! kevent leaves at its delivery. The index is a [`HashLists`] (see `hashlist.rs`: each kevent
//! linked through a list link of its own, list id [`INDEX`], so adding a kevent allocates nothing
//! for it; a lookup walks one bucket of at most about one kevent whatever the number of kevents).
//! This is kqueue's structure for its identifiers; an rbtree (as epoll's, whose node C embeds in
//! the item) would need a node allocated per kevent in Rust.
//!
//! The hash is keyed with a random number of the queue, so that a process cannot choose
//! identifiers that all fall in one bucket without knowing it (and that would only slow its own
//! queue). Iteration follows the buckets: it has no order.
//!
//! The index is guarded by the queue's `index` mutex (it is a field of `queue::Index`).

use crate::{
    event::{Kevent, Key},
    hashlist::HashLists,
};
use kernel::{
    bindings,
    list::{List, ListArc},
    prelude::*,
    sync::{Arc, ArcBorrow},
};

/// List id of a queue's index.
pub(crate) const INDEX: u64 = 2;

/// The kevents of one queue, by key.
pub(crate) struct KeventIndex {
    table: HashLists<INDEX>,
    /// The hash key.
    seed: u64,
}

/// The hash of `key` with the hash key `seed`.
fn hash(seed: u64, key: &Key) -> u64 {
    const M: u64 = 0x9e37_79b9_7f4a_7c15;
    let h = (key.id ^ seed).wrapping_mul(M)
        ^ key
            .user_data
            .wrapping_add(u64::from(key.ty))
            .rotate_left(29);
    h.wrapping_mul(M)
}

impl KeventIndex {
    /// An empty index.
    pub(crate) fn new() -> Self {
        KeventIndex {
            table: HashLists::new(),
            // SAFETY: No requirements; any value is fine as a hash key.
            seed: unsafe { bindings::get_random_u64() },
        }
    }

    /// The number of kevents.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The kevent of `key`.
    pub(crate) fn get(&self, key: &Key) -> Option<ArcBorrow<'_, Kevent>> {
        self.table
            .bucket(hash(self.seed, key))?
            .iter()
            .find(|k| k.key == *key)
    }

    /// Whether the key is taken.
    pub(crate) fn contains(&self, key: &Key) -> bool {
        self.get(key).is_some()
    }

    /// Makes room for one more kevent (see [`HashLists::reserve_one`]): `ENOMEM` only if the
    /// index has no table and none can be allocated.
    pub(crate) fn reserve_one(&mut self) -> Result {
        let seed = self.seed;
        self.table.reserve_one(|k| hash(seed, &k.key))
    }

    /// Adds `item`, whose key is not taken, after [`KeventIndex::reserve_one`] succeeded.
    pub(crate) fn insert(&mut self, item: ListArc<Kevent, INDEX>) {
        let h = hash(self.seed, &item.key);
        // Not reserved (cannot happen): dropping `item` unindexes it.
        drop(self.table.insert(h, item));
    }

    /// Removes the kevent of `key`.
    pub(crate) fn remove(&mut self, key: &Key) -> Option<Arc<Kevent>> {
        let kevent = Arc::<Kevent>::from(self.get(key)?);
        self.remove_kevent(&kevent)
    }

    /// Removes `kevent` if it is in this index.
    pub(crate) fn remove_kevent(&mut self, kevent: &Kevent) -> Option<Arc<Kevent>> {
        let seed = self.seed;
        // SAFETY: A kevent's `INDEX` links are used by its queue's index alone, and a kevent in it
        // is in the bucket of its key's hash (with this index's seed): if it is not in that bucket,
        // it is in no list with the id `INDEX`.
        let item = unsafe { self.table.remove(hash(seed, &kevent.key), kevent) }?;
        self.table.shrink(|k| hash(seed, &k.key));
        Some(item.into_arc())
    }

    /// Takes every kevent out: the index is empty (and has no table) after this.
    pub(crate) fn take_all(&mut self) -> KVVec<List<Kevent, INDEX>> {
        self.table.take_all()
    }

    /// Every kevent, in no order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = ArcBorrow<'_, Kevent>> {
        self.table.lists().flat_map(|list| list.iter())
    }
}
