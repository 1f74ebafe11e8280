// SPDX-License-Identifier: GPL-2.0

//! The kevent queue (`kevent_user`): one per kevent file descriptor.

use kernel::{
    bindings, c_str,
    fs::{
        anon_inode::{AnonInodeFile, AnonInodeFops},
        File, LocalFile,
    },
    prelude::*,
    sync::{aref::ARef, new_condvar, new_spinlock, Arc, ArcBorrow, CondVar, SpinLock},
};

/// The state of a queue guarded by its lock.
pub(crate) struct Inner {
    /// Number of kevents ready for delivery.
    pub(crate) nr_ready: usize,
}

/// A kevent queue.
#[pin_data]
pub(crate) struct Queue {
    #[pin]
    pub(crate) inner: SpinLock<Inner>,
    /// Waiters in `kevent_get_events()`.
    #[pin]
    pub(crate) wait: CondVar,
}

/// The file operations of kevent queue files.
static FOPS: AnonInodeFops<Queue> = AnonInodeFops::new();

impl Queue {
    /// Creates a new queue and a file for it. `flags` may hold `O_NONBLOCK`.
    pub(crate) fn new_file(flags: u32) -> Result<ARef<File>> {
        let queue = Arc::pin_init(
            pin_init!(Queue {
                inner <- new_spinlock!(Inner { nr_ready: 0 }, "kevent_queue"),
                wait <- new_condvar!("kevent_wait"),
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        FOPS.create_file(
            c_str!("[kevent]"),
            queue,
            bindings::O_RDWR | (flags & bindings::O_NONBLOCK),
        )
    }

    /// Returns the queue behind `file`, or `EINVAL` if `file` is not a kevent queue.
    pub(crate) fn from_file(file: &LocalFile) -> Result<ArcBorrow<'_, Queue>> {
        FOPS.data(file).ok_or(EINVAL)
    }
}

#[vtable]
impl AnonInodeFile for Queue {
    type Ptr = Arc<Queue>;
}
