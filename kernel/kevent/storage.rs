// SPDX-License-Identifier: GPL-2.0

//! `kevent_storage`: the list of kevents registered on one source object.
//!
//! A source object (a socket, an inode, a file being polled) embeds or points to a [`Storage`].
//! When the object sees activity, it calls [`Storage::ready`] with an event mask; every kevent on
//! the list that asked for one of those events is made ready.

use crate::event::{Kevent, STORAGE};
use kernel::{
    list::{List, ListArc},
    prelude::*,
    sync::{new_spinlock_irq, Arc, SpinLockIrq},
};

/// The kevents registered on one source object.
///
/// The list lock is an interrupt-safe spinlock: [`Storage::ready`] runs in the contexts the
/// source notifies from, hard and soft interrupts included. Lock order: a storage lock is taken
/// before a queue's ready lock.
#[pin_data]
pub(crate) struct Storage {
    #[pin]
    list: SpinLockIrq<List<Kevent, STORAGE>>,
}

// Only the KUnit fake source uses a storage until the socket and inode sources exist.
#[cfg_attr(not(CONFIG_KEVENT_KUNIT_TEST), allow(dead_code))]
impl Storage {
    /// A new, empty storage.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Storage {
            list <- new_spinlock_irq!(List::new(), "kevent_storage"),
        })
    }

    /// Adds `kevent` to the storage. `EBUSY` if it is already on a storage.
    pub(crate) fn enqueue(&self, kevent: &Arc<Kevent>) -> Result {
        let item = ListArc::<Kevent, STORAGE>::try_from_arc(kevent.clone()).map_err(|_| EBUSY)?;
        self.list.lock().push_back(item);
        Ok(())
    }

    /// Removes `kevent` from the storage, if it is on it.
    pub(crate) fn dequeue(&self, kevent: &Kevent) {
        // SAFETY: A kevent is only ever on the list of the storage it was enqueued on, so it is
        // either on this list or on none.
        let item = unsafe { self.list.lock().remove(kevent) };
        drop(item);
    }

    /// Reports `events` with result `data` to every kevent registered here.
    ///
    /// Never sleeps and never allocates.
    pub(crate) fn ready(&self, events: u32, data: i64) {
        let list = self.list.lock();
        for kevent in list.iter() {
            Kevent::notify(kevent, events, data);
        }
    }

    /// Reports every kevent registered here as broken with `errno` and empties the storage:
    /// the source object is going away.
    pub(crate) fn fini(&self, errno: i64) {
        let mut list = self.list.lock();
        while let Some(item) = list.pop_front() {
            Kevent::notify_broken(item.as_arc_borrow(), errno);
        }
    }

    /// Whether no kevent is registered here.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.lock().is_empty()
    }
}
