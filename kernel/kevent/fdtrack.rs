// SPDX-License-Identifier: GPL-2.0

//! Registrations follow the descriptor.
//!
//! A kevent registered by file descriptor (poll, socket) belongs to that descriptor in the
//! registering process's fd table, as in kqueue: when the process closes the
//! descriptor (`close()`, `dup2()` over it, close-on-exec, exit) the kevent is removed and drops
//! its reference to the file. A `dup()` of the descriptor does not carry the registration, and
//! closing the duplicate does not remove it; after `fork()` the child's closes do not touch the
//! parent's registrations.
//!
//! Sources keep an [`FdTrack`] in their attachment. The VFS calls [`kevent_file_flush`] from
//! `filp_flush()` while any registration exists (a static key, so the close path pays one
//! patched-out branch otherwise). Lock order: a queue's `index` -> `WATCHES`; the flush takes
//! `WATCHES` alone, then each queue's `index` alone.

//!
//! The registry is a hash table of intrusive lists keyed by the file ([`HashLists`], as a queue's
//! index), under one global mutex: each kevent links itself (list id [`FDTRACK`]), so a
//! registration allocates nothing but, now and then, a larger table. A file's registrations are
//! in one bucket, so the close path walks one bucket of about one registration.

use crate::{event::Kevent, hashlist::HashLists, queue::Queue};
use kernel::{
    bindings,
    ffi::c_void,
    fs::File,
    list::ListArc,
    prelude::*,
    sync::{Arc, ArcBorrow, GlobalGuard, GlobalLockedBy},
};

/// List id of the registry of registrations by descriptor.
pub(crate) const FDTRACK: u64 = 3;

/// A kevent's registration by descriptor, while it is in the registry.
#[derive(Clone, Copy, Default)]
pub(crate) struct Tracked {
    /// The file registered (`struct file *`): the registry's key.
    file: usize,
    /// The registering process's fd table (`struct files_struct *`).
    owner: usize,
    fd: u32,
}

/// What a kevent keeps of its registration by descriptor: guarded by [`WATCHES`].
pub(crate) type TrackedBy = GlobalLockedBy<Tracked, WATCHES>;

/// The registrations by descriptor of all queues, by file.
pub(crate) struct Registry {
    table: HashLists<FDTRACK>,
}

kernel::sync::global_lock! {
    // SAFETY: Initialised in the module initialiser, before any kevent system call can run.
    pub(crate) unsafe(uninit) static WATCHES: Mutex<Registry> = Registry {
        table: HashLists::new(),
    };
}

/// The hash of the file `file` (a `struct file *`).
fn hash(file: usize) -> u64 {
    const M: u64 = 0x9e37_79b9_7f4a_7c15;
    // Files come from a slab: their low bits say little.
    (file as u64 >> 6).wrapping_mul(M)
}

/// Runs `f` on the registry's table, out of `guard` for the call, with a function that hashes a
/// registered kevent (by its registration, which `guard` guards) for the table to resize with.
/// Only to resize: the empty table left in `guard` meanwhile is dropped after, a call into the
/// allocator.
fn with_table<R>(
    guard: &mut WatchesGuard,
    f: impl FnOnce(&mut HashLists<FDTRACK>, &dyn Fn(&Kevent) -> u64) -> R,
) -> R {
    let mut table = core::mem::replace(&mut guard.table, HashLists::new());
    let r = {
        let watches: &WatchesGuard = guard;
        f(&mut table, &|k: &Kevent| {
            hash(k.tracked.as_ref(watches).file)
        })
    };
    guard.table = table;
    r
}

/// The guard of [`WATCHES`].
type WatchesGuard = GlobalGuard<WATCHES>;

/// Initialises the registry. Called once, from the module initialiser.
pub(crate) fn init() {
    // SAFETY: Called exactly once, before first use.
    unsafe { WATCHES.init() };
}

/// Keeps a kevent's registration by `fd` known to the close path until dropped.
pub(crate) struct FdTrack {
    kevent: Arc<Kevent>,
}

impl FdTrack {
    /// Records that `kevent` was registered by descriptor `fd` of the current process, which
    /// refers to `file`. A kevent is registered by one descriptor at a time (re-arming drops the
    /// old `FdTrack` first): `EINVAL` otherwise.
    pub(crate) fn new(kevent: ArcBorrow<'_, Kevent>, file: &File, fd: u32) -> Result<FdTrack> {
        // SAFETY: No preconditions.
        let owner = unsafe { bindings::kevent_current_files() } as usize;
        let file = file.as_ptr() as usize;
        let item = ListArc::<Kevent, FDTRACK>::try_from_arc(kevent.into()).map_err(|_| EINVAL)?;
        let mut guard = WATCHES.lock();
        // On error, dropping `item` unregisters nothing: it is in no list.
        if guard.table.is_full() {
            with_table(&mut guard, |table, hash_of| table.reserve_one(hash_of))?;
        }
        *kevent.tracked.as_mut(&mut guard) = Tracked { file, owner, fd };
        // Cannot fail after the reserve; dropping an unregistered `item` unregisters nothing.
        drop(guard.table.insert(hash(file), item));
        drop(guard);
        // SAFETY: No preconditions; paired with the `kevent_fd_track_put` in `drop`.
        unsafe { bindings::kevent_fd_track_get() };
        Ok(FdTrack {
            kevent: kevent.into(),
        })
    }
}

/// Takes `kevent` out of the registry, if it is there (and shrinks the table if it is below an
/// eighth full).
fn unregister(guard: &mut WatchesGuard, kevent: &Kevent) -> Option<ListArc<Kevent, FDTRACK>> {
    let h = hash(kevent.tracked.as_ref(guard).file);
    // SAFETY: A kevent's `FDTRACK` links are used only by the registry, and a registered kevent
    // is in the bucket of the hash of its `tracked.file` (resizing moves it with that key): if it
    // is not in that bucket, it is in no `FDTRACK` list.
    let item = unsafe { guard.table.remove(h, kevent) }?;
    if guard.table.is_sparse() {
        with_table(guard, |table, hash_of| table.shrink(hash_of));
    }
    Some(item)
}

impl Drop for FdTrack {
    fn drop(&mut self) {
        // Already gone if a flush took it.
        let removed = {
            let mut guard = WATCHES.lock();
            unregister(&mut guard, &self.kevent)
        };
        drop(removed);
        // SAFETY: Pairs with the `kevent_fd_track_get` in `FdTrack::new`.
        unsafe { bindings::kevent_fd_track_put() };
    }
}

/// Called by `filp_flush()` when `owner` (an fd table) closes a descriptor of `file`: removes
/// the kevents `owner` registered by a descriptor that no longer refers to `file`.
///
/// One victim at a time: it is taken out of the registry under `WATCHES`, then removed from its
/// queue with `WATCHES` released. Nothing is allocated, so no victim can be missed.
///
/// # Safety
///
/// `file` is a valid file and `owner` the `fl_owner_t` of the flush.
#[export]
pub unsafe extern "C" fn kevent_file_flush(file: *mut bindings::file, owner: *mut c_void) {
    let file_key = file as usize;
    loop {
        let victim = {
            let mut guard = WATCHES.lock();
            let found = guard.table.bucket(hash(file_key)).and_then(|list| {
                list.iter()
                    .find(|k| {
                        let t = k.tracked.as_ref(&guard);
                        t.file == file_key
                            && t.owner == owner as usize
                            // SAFETY: `owner` is the fd table of the flush, alive for its
                            // duration; `file` is valid.
                            && !unsafe { bindings::kevent_fd_maps_to(owner.cast(), t.fd, file) }
                    })
                    .map(Arc::<Kevent>::from)
            });
            let Some(kevent) = found else {
                return;
            };
            drop(unregister(&mut guard, &kevent));
            kevent
        };
        Queue::remove_kevent(&victim);
    }
}
