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

kernel::sync::global_lock! {
    // SAFETY: Initialised in the module initialiser, before any kevent system call can run.
    unsafe(uninit) static WATCHES: Mutex<Option<RBTree<usize, KVec<Entry>>>> = None;
}

/// Initialises the registry. Called once, from the module initialiser.
pub(crate) fn init() {
    // SAFETY: Called exactly once, before first use.
    unsafe { WATCHES.init() };
}

/// Keeps a kevent's registration by `fd` known to the close path until dropped.
pub(crate) struct FdTrack {
    file: usize,
    kevent: Arc<Kevent>,
}

impl FdTrack {
    /// Records that `kevent` was registered by descriptor `fd` of the current process, which
    /// refers to `file`.
    pub(crate) fn new(kevent: &Arc<Kevent>, file: &File, fd: u32) -> Result<FdTrack> {
        // SAFETY: No preconditions.
        let owner = unsafe { bindings::kevent_current_files() } as usize;
        let key = file.as_ptr() as usize;
        let entry = Entry {
            owner,
            fd,
            kevent: kevent.clone(),
        };
        let mut guard = WATCHES.lock();
        let tree = guard.get_or_insert_with(RBTree::new);
        match tree.get_mut(&key) {
            Some(list) => list.push(entry, GFP_KERNEL_ACCOUNT)?,
            None => {
                let mut list = KVec::new();
                list.push(entry, GFP_KERNEL_ACCOUNT)?;
                tree.try_create_and_insert(key, list, GFP_KERNEL_ACCOUNT)?;
            }
        }
        drop(guard);
        // SAFETY: No preconditions; paired with the `kevent_fd_track_put` in `drop`.
        unsafe { bindings::kevent_fd_track_get() };
        Ok(FdTrack {
            file: key,
            kevent: kevent.clone(),
        })
    }
}

impl Drop for FdTrack {
    fn drop(&mut self) {
        let mut guard = WATCHES.lock();
        if let Some(tree) = guard.as_mut() {
            let mut now_empty = false;
            if let Some(list) = tree.get_mut(&self.file) {
                if let Some(i) = list
                    .iter()
                    .position(|e| Arc::ptr_eq(&e.kevent, &self.kevent))
                {
                    let _ = list.remove(i);
                }
                now_empty = list.is_empty();
            }
            if now_empty {
                tree.remove(&self.file);
            }
        }
        drop(guard);
        // SAFETY: Pairs with the `kevent_fd_track_get` in `FdTrack::new`.
        unsafe { bindings::kevent_fd_track_put() };
    }
}

/// Called by `filp_flush()` when `owner` (an fd table) closes a descriptor of `file`: removes
/// the kevents `owner` registered by a descriptor that no longer refers to `file`.
///
/// # Safety
///
/// `file` is a valid file and `owner` the `fl_owner_t` of the flush.
#[export]
pub unsafe extern "C" fn kevent_file_flush(file: *mut bindings::file, owner: *mut c_void) {
    let mut victims = KVec::<Arc<Kevent>>::new();
    {
        let guard = WATCHES.lock();
        let Some(list) = guard.as_ref().and_then(|t| t.get(&(file as usize))) else {
            return;
        };
        for e in list.iter().filter(|e| e.owner == owner as usize) {
            // SAFETY: `owner` is the fd table of the flush, alive for its duration; `file` is
            // valid.
            let still = unsafe { bindings::kevent_fd_maps_to(owner.cast(), e.fd, file) };
            if !still && victims.push(e.kevent.clone(), GFP_KERNEL).is_err() {
                break;
            }
        }
    }
    for kevent in victims {
        Queue::remove_kevent(&kevent);
    }
}
