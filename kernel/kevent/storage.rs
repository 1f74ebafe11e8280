// SPDX-License-Identifier: GPL-2.0

//! `kevent_storage`: the list of kevents registered on one source object.
//!
//! A source object (a socket, an inode, a file being polled) embeds or points to a [`Storage`].
//! When the object sees activity, it calls [`Storage::ready`] with an event mask; every kevent on
//! the list that asked for one of those events is made ready.
//!
//! # Objects outside the crate
//!
//! A C object embeds a `struct kevent_storage` (`<linux/kevent_storage.h>`): one pointer, NULL
//! until the first kevent is registered on the object. [`install`] then allocates a [`Storage`]
//! and publishes an `Arc` to it there (`Arc::into_raw`, with a compare-and-exchange: of two racing
//! registrations, the loser frees its allocation and uses the winner's). That reference is the
//! object's; [`slot_fini`] takes it back (exchange with NULL) when the object dies, reports every
//! kevent still on the list as broken and drops it. Each attached kevent holds an `Arc` of its
//! own, so a detach that runs after the object's death finds the storage alive, and the kevent no
//! longer on its list (dequeueing it is then a no-op).
//!
//! Rule: `ready` and `fini` on one object are serialised by the object's lifetime: the object
//! calls `fini` when nothing can make it call `ready` any more (socket destruction, inode
//! eviction), and a registration holds a reference to the object (its source's `get`) while it
//! installs and enqueues, so `fini` cannot run then either.

use crate::event::{Kevent, STORAGE};
use kernel::{
    bindings,
    ffi::c_void,
    list::{List, ListArc},
    prelude::*,
    sync::{
        atomic::{ordering, Atomic},
        new_spinlock_irq, Arc, ArcBorrow, SpinLockIrq,
    },
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

impl Storage {
    /// A new, empty storage.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Storage {
            list <- new_spinlock_irq!(List::new(), "kevent_storage"),
        })
    }

    /// Adds `kevent` to the storage. `EBUSY` if it is already on a storage.
    pub(crate) fn enqueue(&self, kevent: ArcBorrow<'_, Kevent>) -> Result {
        let item = ListArc::<Kevent, STORAGE>::try_from_arc(kevent.into()).map_err(|_| EBUSY)?;
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

    // Used by the KUnit fake source; the C-API sources go through `slot_ready`.
    #[cfg_attr(not(CONFIG_KEVENT_KUNIT_TEST), allow(dead_code))]
    /// Reports `events` with result `data` to every kevent registered here.
    ///
    /// Never sleeps and never allocates.
    pub(crate) fn ready(&self, events: u32, data: i64) {
        let list = self.list.lock();
        for kevent in list.iter() {
            Kevent::notify(kevent, events, data);
        }
    }

    /// Reports `events` with result `data` to every kevent registered here; `data` replaces the
    /// result of an earlier notification not delivered yet (a value, not a count).
    ///
    /// Never sleeps and never allocates.
    pub(crate) fn ready_value(&self, events: u32, data: i64) {
        let list = self.list.lock();
        for kevent in list.iter() {
            Kevent::notify_value(kevent, events, data);
        }
    }

    /// Reports every kevent registered here as broken with `errno`, and with `events` (those
    /// of its request) as the events that failed, and empties the storage: the source object is
    /// going away, or failed.
    pub(crate) fn fini(&self, events: u32, errno: i64) {
        let mut list = self.list.lock();
        while let Some(item) = list.pop_front() {
            Kevent::notify_broken(item.as_arc_borrow(), events, errno);
        }
    }

    // Used by the KUnit fake source; the C-API sources go through `slot_ready`.
    #[cfg_attr(not(CONFIG_KEVENT_KUNIT_TEST), allow(dead_code))]
    /// Whether no kevent is registered here.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.lock().is_empty()
    }
}

/// The pointer of a `struct kevent_storage`, as an atomic.
///
/// # Safety
///
/// `st` points to a valid `struct kevent_storage` for `'a`, whose `list` is only accessed
/// atomically (`READ_ONCE()` in C) while it is shared.
unsafe fn slot<'a>(st: *mut bindings::kevent_storage) -> &'a Atomic<*mut c_void> {
    // SAFETY: `st` is valid and `list` is a pointer-sized, aligned field only accessed atomically,
    // per the safety requirements.
    unsafe { Atomic::from_ptr(&raw mut (*st).list) }
}

/// Returns the storage of the C object whose `struct kevent_storage` is `st`, allocating and
/// installing it if the object has none yet. Process context.
///
/// # Safety
///
/// `st` is valid, and the object that embeds it cannot reach [`slot_fini`] until this returns
/// (the caller holds a reference to the object).
pub(crate) unsafe fn install(st: *mut bindings::kevent_storage) -> Result<Arc<Storage>> {
    // SAFETY: Per the safety requirements.
    let slot = unsafe { slot(st) };
    let cur = slot.load(ordering::Acquire);
    if !cur.is_null() {
        // SAFETY: A non-NULL pointer comes from `Arc::into_raw` below; the object's reference
        // stays until `slot_fini`, which cannot run now.
        return Ok(unsafe { ArcBorrow::<Storage>::from_raw(cur.cast::<Storage>()) }.into());
    }
    let new = Arc::pin_init(Storage::new(), GFP_KERNEL_ACCOUNT)?;
    // The object's reference.
    let raw = Arc::into_raw(new.clone()).cast_mut().cast::<c_void>();
    // Full ordering: the list is published before the caller re-checks the object's state; a
    // notifier that changed the state, issued a full barrier and then saw NULL is thereby seen
    // by that re-check.
    match slot.cmpxchg(core::ptr::null_mut(), raw, ordering::Full) {
        Ok(_) => Ok(new),
        Err(cur) => {
            // Lost the race: take back the reference we did not publish; ours goes with `new`.
            // SAFETY: `raw` comes from `Arc::into_raw` above and was never published.
            drop(unsafe { Arc::<Storage>::from_raw(raw.cast::<Storage>()) });
            drop(new);
            // SAFETY: As above, for the winner's pointer.
            Ok(unsafe { ArcBorrow::<Storage>::from_raw(cur.cast::<Storage>()) }.into())
        }
    }
}

/// The C object whose `struct kevent_storage` is `st` saw `events`, with result `data`.
///
/// # Safety
///
/// `st` is valid, and the object does not reach [`slot_fini`] until this returns.
pub(crate) unsafe fn slot_ready(st: *mut bindings::kevent_storage, events: u32, data: i64) {
    // SAFETY: Per the safety requirements.
    let cur = unsafe { slot(st) }.load(ordering::Acquire);
    if cur.is_null() {
        return;
    }
    // SAFETY: A non-NULL pointer comes from `Arc::into_raw` in `install`; the object's reference
    // stays until `slot_fini`, which cannot run before this returns.
    let storage = unsafe { ArcBorrow::<Storage>::from_raw(cur.cast::<Storage>()) };
    storage.ready_value(events, data);
}

/// The C object whose `struct kevent_storage` is `st` dies, or failed: every kevent on it is
/// reported once as broken with `errno` (negative) and `events` (the events that failed, or 0),
/// and the object's reference to the storage is dropped. The slot is empty afterwards: a later
/// [`slot_ready`] reports nothing, a later [`install`] starts a new list.
///
/// # Safety
///
/// `st` is valid, and no [`slot_ready`], [`install`] or other [`slot_fini`] runs on it
/// concurrently (for a dying object: none can run any more).
pub(crate) unsafe fn slot_fini(st: *mut bindings::kevent_storage, events: u32, errno: i64) {
    // SAFETY: Per the safety requirements.
    let cur = unsafe { slot(st) }.xchg(core::ptr::null_mut(), ordering::Full);
    if cur.is_null() {
        return;
    }
    // SAFETY: A non-NULL pointer comes from `Arc::into_raw` in `install`, and the exchange above
    // made us its only owner.
    let storage = unsafe { Arc::<Storage>::from_raw(cur.cast::<Storage>()) };
    storage.fini(events, errno);
    drop(storage);
}
