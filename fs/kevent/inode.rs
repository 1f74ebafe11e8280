// SPDX-License-Identifier: GPL-2.0

//! kevent: the inode source (`KEVENT_TYPE_INODE`).
//!
//! Every `struct inode` holds a `struct kevent_storage`, `i_kevent` (8 bytes; `NULL` until a
//! kevent is registered on the inode; the list itself is allocated on first registration, so an
//! inode nobody watches pays only the pointer). The fsnotify hooks in `<linux/fsnotify.h>` report
//! `KEVENT_INODE_CREATE` and `KEVENT_INODE_REMOVE` with the child's inode number (no name: a
//! kevent carries one 64-bit result).
//!
//! A kevent is registered by a file descriptor of the inode (`O_PATH` is enough) but does not
//! follow it, and does not pin the inode: the file reference taken to find the inode is dropped
//! as soon as the kevent is on the storage (a weak source). When the inode is destroyed,
//! `kevent_inode_destroy()` (`<linux/fsnotify.h>`, called by `__destroy_inode()`) reports its
//! kevents once as broken:
//!
//! - `-ENODEV`: the file system is being unmounted;
//! - `-ENOENT`: the inode's last link went away (it was removed);
//! - `-ESTALE`: it was dropped from the inode cache while still linked (no open file kept it in
//!   memory; register again through a new descriptor).
//!
//! The source has no level state: its events are reported as they fired.
//!
//! See Documentation/kevent.rst.

use kernel::{
    fs::{File, LocalFile},
    kevent::{self, Storage, Ukevent},
    prelude::*,
    sync::aref::ARef,
    uapi::{KEVENT_INODE_CREATE, KEVENT_INODE_REMOVE, KEVENT_TYPE_INODE},
};

module! {
    type: InodeSource,
    name: "kevent_inode",
    authors: ["kevent maintainers"],
    description: "kevent inode source",
    license: "GPL",
}

/// The inode source.
struct InodeSource;

impl kernel::Module for InodeSource {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        kevent::register::<InodeSource>().inspect_err(|e| {
            pr_err!("cannot register the inode source: {}\n", e.to_errno());
        })?;
        Ok(InodeSource)
    }
}

#[vtable]
impl kevent::Source for InodeSource {
    const TYPE: u32 = KEVENT_TYPE_INODE;
    const EVENTS: u32 = KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE;
    const WEAK: bool = true;

    /// A file of the inode, which keeps the inode alive while the kevent is registered.
    type Object = File;
    type Ptr = ARef<File>;

    /// A file of the inode `uk.id` names, a descriptor of any kind, `O_PATH` included.
    fn get(uk: &Ukevent) -> Result<ARef<File>> {
        let fd = u32::try_from(uk.id()).map_err(|_| EBADF)?;
        let file = LocalFile::fget_raw(fd)?;
        // SAFETY: `kevent_ctl()` runs no `fdget_pos()` region, and the file is only used to
        // find its inode.
        Ok(unsafe { LocalFile::assume_no_fdget_pos(file) })
    }

    fn storage(file: &File) -> &Storage {
        // SAFETY: A file's `f_inode` is set before the file is published and never changes, and
        // the file keeps its inode alive. An inode calls `kevent_storage_fini()` on `i_kevent`
        // only when it is destroyed, which cannot happen while `file` is borrowed.
        unsafe { Storage::from_raw(&raw mut (*(*file.as_ptr()).f_inode).i_kevent) }
    }
}
