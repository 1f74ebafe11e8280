// SPDX-License-Identifier: GPL-2.0

//! kevent: generic kernel event processing.
//!
//! A kevent queue (`kevent_user` in the 2006 design) is a file on the anonymous inode, made by
//! `kevent_ctl(-1, KEVENT_CTL_INIT, flags, NULL)`. Userspace registers interests ("kevents") in
//! it with `kevent_ctl()` and collects ready ones with `kevent_get_events()`.
//!
//! One concept a file: [`abi`] (the uapi types), [`event`] (one kevent), [`storage`] (the
//! kevents of one source object), [`hashlist`] (the hash table of kevents behind a queue's
//! [`index`] and the registry of registrations by descriptor, [`fdtrack`]), [`source`] (the
//! trait every source implements), [`queue`] (a queue: index, ready list, waiting and delivery;
//! its locking is documented there), [`syscalls`] (the system calls). The sources ([`timer`],
//! [`poll`], and the sources outside the crate registered through the C API of
//! [`extern_source`]: sockets, inodes) are found by the core through [`source_of`], which never
//! names one. The syscall entry points are C shims (`syscalls.c`) that call the `#[export]`
//! functions in [`syscalls`].
//! See Documentation/kevent.rst.

use kernel::prelude::*;

mod abi;
mod done;
mod event;
pub mod extern_source;
pub mod fdtrack;
mod hashlist;
mod index;
mod limit;
mod nest;
mod poll;
mod queue;
mod ring;
mod source;
mod storage;
pub mod syscalls;
mod timer;

#[cfg(CONFIG_KEVENT_KUNIT_TEST)]
mod engine_tests;
#[cfg(CONFIG_KEVENT_KUNIT_TEST)]
mod extern_tests;

use source::Source;

/// The event sources of the crate, one a `KEVENT_TYPE_*`.
static SOURCES: &[&dyn Source] = &[&timer::TimerSource, &poll::PollSource];

/// The source of events of type `ty`, if there is one: one of the crate's, or one registered
/// through the C API.
pub(crate) fn source_of(ty: u32) -> Option<&'static dyn Source> {
    SOURCES
        .iter()
        .copied()
        .find(|s| s.info().kind == ty)
        .or_else(|| extern_source::find(ty).map(|s| s as &'static dyn Source))
}

module! {
    type: KeventModule,
    name: "kevent",
    authors: ["kevent maintainers"],
    description: "Generic kernel event processing",
    license: "GPL",
}

struct KeventModule;

impl kernel::Module for KeventModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        fdtrack::init();
        limit::init();
        nest::init();
        Ok(KeventModule)
    }
}
