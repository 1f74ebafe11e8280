// SPDX-License-Identifier: GPL-2.0

//! kevent: generic kernel event processing.
//!
//! A kevent queue (`kevent_user` in the 2006 design) is a file on the anonymous inode, made by
//! `kevent_ctl(-1, KEVENT_CTL_INIT, flags, NULL)`. Userspace registers interests ("kevents") in
//! it with `kevent_ctl()` and collects ready ones with `kevent_get_events()`.
//!
//! This crate is the core: the queue, the two system calls and the checks on their arguments.
//! The syscall entry points are C shims (`syscalls.c`) that call the `#[export]` functions in
//! [`syscalls`]. See Documentation/kevent.rst.

use kernel::prelude::*;

mod abi;
mod queue;
pub mod syscalls;

module! {
    type: Kevent,
    name: "kevent",
    authors: ["kevent maintainers"],
    description: "Generic kernel event processing",
    license: "GPL",
}

struct Kevent;

impl kernel::Module for Kevent {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Kevent)
    }
}
