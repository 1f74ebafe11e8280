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

use crate::{event::Kevent, queue::Queue};
use kernel::{bindings, ffi::c_void, fs::File, prelude::*, rbtree::RBTree, sync::Arc};

/// One registration by descriptor.
struct Entry {
    /// The registering process's fd table (`struct files_struct *`).
    owner: usize,
    fd: u32,
    kevent: Arc<Kevent>,
}

/// Names a registration: the file, then the kevent (both as addresses). A file's registrations
/// are adjacent in the tree, so one node per registration is all it takes (no per-file vector
/// to allocate, grow and search), and removing one is a lookup.
type TrackKey = (usize, usize);

kernel::sync::global_lock! {
    // SAFETY: Initialised in the module initialiser, before any kevent system call can run.
    unsafe(uninit) static WATCHES: Mutex<Option<RBTree<TrackKey, Entry>>> = None;
}

/// Initialises the registry. Called once, from the module initialiser.
pub(crate) fn init() {
    // SAFETY: Called exactly once, before first use.
    unsafe { WATCHES.init() };
}

/// Keeps a kevent's registration by `fd` known to the close path until dropped.
pub(crate) struct FdTrack {
    key: TrackKey,
}

impl FdTrack {
    /// Records that `kevent` was registered by descriptor `fd` of the current process, which
    /// refers to `file`.
    pub(crate) fn new(kevent: &Arc<Kevent>, file: &File, fd: u32) -> Result<FdTrack> {
        // SAFETY: No preconditions.
        let owner = unsafe { bindings::kevent_current_files() } as usize;
        let key = (file.as_ptr() as usize, &**kevent as *const Kevent as usize);
        let entry = Entry {
            owner,
            fd,
            kevent: kevent.clone(),
        };
        let node = kernel::rbtree::RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        let mut guard = WATCHES.lock();
        let tree = guard.get_or_insert_with(RBTree::new);
        // A kevent is registered by one descriptor at a time (re-arming drops the old
        // `FdTrack` first), so the key is new.
        tree.insert(node.into_node(key, entry));
        drop(guard);
        // SAFETY: No preconditions; paired with the `kevent_fd_track_put` in `drop`.
        unsafe { bindings::kevent_fd_track_get() };
        Ok(FdTrack { key })
    }
}

impl Drop for FdTrack {
    fn drop(&mut self) {
        // Already gone if a flush took it.
        let removed = WATCHES.lock().as_mut().and_then(|t| t.remove(&self.key));
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
            let Some(tree) = guard.as_mut() else {
                return;
            };
            let mut found = None;
            let mut cursor = tree.cursor_lower_bound_mut(&(file_key, 0));
            while let Some(c) = cursor {
                let (&key, e) = c.current();
                if key.0 != file_key {
                    break;
                }
                if e.owner == owner as usize
                    // SAFETY: `owner` is the fd table of the flush, alive for its duration;
                    // `file` is valid.
                    && !unsafe { bindings::kevent_fd_maps_to(owner.cast(), e.fd, file) }
                {
                    found = Some(key);
                    break;
                }
                cursor = c.move_next();
            }
            match found {
                Some(key) => tree.remove(&key),
                None => return,
            }
        };
        if let Some(e) = victim {
            Queue::remove_kevent(&e.kevent);
        }
    }
}
