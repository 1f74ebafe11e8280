// SPDX-License-Identifier: GPL-2.0

//! kevent event sources outside the kevent core.
//!
//! kevent (`kernel/kevent/`) gives a process one queue for events from several sources. The
//! core is a crate of its own and keeps its timer and poll sources inside; a source that lives
//! next to the code it watches (sockets in `net/kevent/`, inodes in `fs/kevent/`) is another
//! crate, and registers with the core through the C interface of `<linux/kevent.h>`: a `struct
//! kevent_source_ops`. This module builds that table from a [`Source`] implementation, so that
//! such a source is written in safe Rust:
//!
//! - [`Source::get`] looks up the object a `struct ukevent` names and returns a reference that
//!   keeps it alive (a [`Source::Ptr`], such as an [`ARef`] or a [`KBox`]); dropping the
//!   reference is the table's `put`;
//! - [`Source::storage`] gives the object's [`Storage`], the `struct kevent_storage` it embeds;
//! - [`Source::recheck`], if implemented, is the level state read at registration and at every
//!   delivery;
//! - [`Source::armed`], if implemented, tells the object that the kevent is registered, so that
//!   what it reports from then on reaches the kevent (an object that starts work of its own, such
//!   as a request of asynchronous I/O, starts it there);
//! - [`Source::start`], if implemented, tries to finish a request at once, before its kevent
//!   is registered anywhere (a send that the socket takes whole);
//! - [`Source::submit`], if implemented (with [`Source::start`]), tries it before any object is
//!   made for it, from the entry alone;
//! - [`Source::submit_run`], if implemented (with [`Source::submit`]), tries a run of entries
//!   for the same object and operation as one operation (a socket sends or receives their
//!   buffers in one call);
//! - [`Source::flush`], if implemented, takes the batch hint: [`Source::armed`] learns that the
//!   next entry of the batch is for the same object and operation (a socket corks a run of sends
//!   into one segment), and [`Source::flush`] follows the run.
//!
//! Constants of the trait say how the core treats the kevents of the source: whether
//! [`Source::get`] checks `arg` and `arg_fd` itself ([`Source::TAKES_ARGS`]), whether a kevent is
//! named by its `user_data` too ([`Source::KEYED_BY_USER_DATA`]), whether every kevent is oneshot
//! ([`Source::ONESHOT`]), and whether removing a kevent reports it cancelled
//! ([`Source::CANCEL_ERRNO`]).
//!
//! The object notifies its kevents through its [`Storage`]: [`Storage::ready`] when it sees
//! activity and, when it dies, [`Storage::fini`] (C objects call `kevent_storage_ready()` and
//! `kevent_storage_fini()` of `<linux/kevent_storage.h>`); an object that fails while it is
//! shared reports it with [`Storage::fail`].
//!
//! ```ignore
//! struct MySource;
//!
//! #[vtable]
//! impl kevent::Source for MySource {
//!     const TYPE: u32 = uapi::KEVENT_TYPE_FOO;
//!     const EVENTS: u32 = uapi::KEVENT_FOO_READY;
//!     type Object = Foo;
//!     type Ptr = ARef<Foo>;
//!
//!     fn get(uk: &kevent::Ukevent) -> Result<ARef<Foo>> {
//!         Foo::lookup(uk.id())
//!     }
//!
//!     fn storage(foo: &Foo) -> &kevent::Storage {
//!         &foo.kevents
//!     }
//! }
//!
//! // From the `init` of a built-in module:
//! kevent::register::<MySource>()?;
//! ```
//!
//! C headers: [`include/linux/kevent.h`](srctree/include/linux/kevent.h),
//! [`include/linux/kevent_storage.h`](srctree/include/linux/kevent_storage.h)
//!
//! Reference: [`Documentation/kevent.rst`](srctree/Documentation/kevent.rst)
//!
//! [`ARef`]: crate::sync::aref::ARef

use crate::{
    bindings,
    error::{to_result, VTABLE_DEFAULT_ERROR},
    module::this_module,
    prelude::*,
    types::{ForeignOwnable, Opaque},
};
use core::{marker::PhantomData, ops::Deref};

/// A `struct ukevent` as a source sees it: the entry of `kevent_ctl()` being registered.
///
/// The core has checked the fields common to every source before the source sees the entry:
/// `event` is a non-zero subset of [`Source::EVENTS`], `req_flags` holds only the common flags
/// and [`Source::FLAGS`], `reserved` is zero and, unless [`Source::TAKES_ARGS`], `arg` and
/// `arg_fd` are zero.
#[repr(transparent)]
pub struct Ukevent(bindings::ukevent);

impl Ukevent {
    /// Creates a reference to a [`Ukevent`] from a valid pointer.
    ///
    /// # Safety
    ///
    /// `ptr` points to a valid `struct ukevent` that is not modified for the duration of `'a`.
    pub unsafe fn from_raw<'a>(ptr: *const bindings::ukevent) -> &'a Self {
        // SAFETY: `Ukevent` is a transparent wrapper of `struct ukevent`, valid and unmodified
        // for `'a` per the safety requirements.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The caller's value, copied into every event delivered for the kevent.
    pub fn user_data(&self) -> u64 {
        self.0.user_data
    }

    /// With the type, the kevent's name in its queue: for most sources, the file descriptor
    /// that names the object to watch.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The events the kevent asks for.
    pub fn event(&self) -> u32 {
        self.0.event
    }

    /// The kevent's `KEVENT_REQ_*` flags.
    pub fn req_flags(&self) -> u32 {
        self.0.req_flags
    }

    /// The per-type arguments, as given; zero unless the source takes arguments
    /// ([`Source::TAKES_ARGS`]).
    pub fn arg(&self) -> [u64; 2] {
        self.0.arg
    }

    /// The per-type file descriptor argument, as given; zero unless the source takes arguments
    /// ([`Source::TAKES_ARGS`]).
    pub fn arg_fd(&self) -> u32 {
        self.0.arg_fd
    }
}

/// The kevents registered on one object: a `struct kevent_storage`.
///
/// An object that kevents can be registered on embeds one. It is one pointer, `NULL` until the
/// first kevent is registered on the object; the kevent core then installs its list of kevents
/// there. The object reports activity with [`Storage::ready`] and its death with
/// [`Storage::fini`], which also runs when the storage is dropped.
///
/// # Invariants
///
/// `self.0` is a valid `struct kevent_storage`, whose pointer is only accessed by the kevent
/// core's functions.
#[repr(transparent)]
pub struct Storage(Opaque<bindings::kevent_storage>);

// SAFETY: The kevent core accesses the storage's pointer atomically and its list under its own
// lock, so a storage may be used and dropped from any thread.
unsafe impl Send for Storage {}

// SAFETY: `ready` may run on several threads at once; `fini`, which may not run concurrently with
// `ready`, takes `&mut self`, and `fail`, its shared form, is unsafe with that requirement.
unsafe impl Sync for Storage {}

impl Storage {
    /// A storage with no kevent registered on it (`kevent_storage_init()`).
    pub const fn new() -> Self {
        // INVARIANT: A `NULL` pointer is an empty storage.
        Self(Opaque::new(bindings::kevent_storage {
            list: core::ptr::null_mut(),
        }))
    }

    /// Creates a reference to the [`Storage`] a C object embeds.
    ///
    /// # Safety
    ///
    /// `ptr` points to a valid `struct kevent_storage` for the duration of `'a`, whose object
    /// does not call `kevent_storage_fini()` on it (does not die) during `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::kevent_storage) -> &'a Self {
        // SAFETY: `Storage` is a transparent wrapper of `struct kevent_storage`, valid for `'a`
        // per the safety requirements.
        //
        // INVARIANT: Only the kevent core's functions access the pointer while the object is
        // alive.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// Returns a raw pointer to the `struct kevent_storage`.
    pub fn as_raw(&self) -> *mut bindings::kevent_storage {
        self.0.get()
    }

    /// The object saw activity: reports `events` to every kevent registered on it that asked
    /// for one of them, with the result `data` (an inode number, ...; it replaces the result of
    /// an earlier notification not delivered yet).
    ///
    /// Any context, hard interrupts included; never sleeps. If a registration can race with the
    /// change of state reported here, order the change before this call with a full barrier:
    /// a registration installs its kevent with a full barrier, then re-checks the state.
    pub fn ready(&self, events: u32, data: i64) {
        // SAFETY: By the type invariants the storage is valid; `fini` takes `&mut self` (or, for
        // a C object's storage, runs only once the object is dead, see `from_raw`), and the
        // callers of `fail` guarantee that it does not run concurrently with this, so neither
        // can run concurrently.
        unsafe { bindings::__kevent_storage_ready(self.as_raw(), events, data) }
    }

    /// The object is going away: every kevent still registered on it is reported once as broken
    /// with `err`, then removed from its queue. The storage is empty afterwards.
    ///
    /// Any context; never sleeps.
    pub fn fini(&mut self, err: Error) {
        // SAFETY: By the type invariants the storage is valid, and `&mut self` guarantees that no
        // `ready` and no registration (which borrows the storage through `Source::storage`) runs
        // on it.
        unsafe { bindings::__kevent_storage_fini(self.as_raw(), err.to_errno()) }
    }

    /// The object failed at `events` (a request's operation; or 0): like [`Storage::fini`], for
    /// an object that is still shared (an `Arc`'s contents): every kevent registered on it is
    /// reported once as broken with `err` and with the bits of `events` it requested, then
    /// removed from its queue, and the storage is empty afterwards
    /// (`kevent_storage_fail()`).
    ///
    /// Any context; never sleeps. After it, [`Storage::ready`] reports nothing (no kevent is
    /// registered), and a new registration would start a new list.
    ///
    /// # Safety
    ///
    /// No [`Storage::ready`], no other [`Storage::fail`] and no registration of a kevent on this
    /// storage (which goes through [`Source::storage`]) runs concurrently with this call. (The
    /// object's reference to the list is dropped here; one of them would use it.) A source
    /// guarantees it by reporting each object's outcome once, from one place, after
    /// [`Source::armed`].
    pub unsafe fn fail(&self, events: u32, err: Error) {
        // SAFETY: By the type invariants the storage is valid; the caller guarantees that no
        // `ready`, `fail` or registration runs concurrently, and `fini` needs `&mut self`.
        unsafe { bindings::__kevent_storage_fail(self.as_raw(), events, err.to_errno()) }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        // A no-op unless a kevent was ever registered and `fini` was not called.
        self.fini(ENODEV);
    }
}

/// How the hooks of a [`Source`] that act on a request ([`Source::armed`], [`Source::start`])
/// see its object: borrowed through its [`Source::Ptr`] (a `&Object` for an [`ARef`] or a
/// [`KBox`], an [`ArcBorrow`] for an [`Arc`], from which the source may take a reference of its
/// own).
///
/// [`ARef`]: crate::sync::aref::ARef
/// [`Arc`]: crate::sync::Arc
/// [`ArcBorrow`]: crate::sync::ArcBorrow
pub type Borrowed<'a, T> = <<T as Source>::Ptr as ForeignOwnable>::Borrowed<'a>;

/// An event source outside the kevent core: one `KEVENT_TYPE_*`.
///
/// Implemented by a type that is never instantiated; its table, built by [`register`], is a
/// `struct kevent_source_ops` (see `<linux/kevent.h>`).
#[vtable]
pub trait Source {
    /// The `KEVENT_TYPE_*` this source serves (not zero).
    const TYPE: u32;

    /// The event bits it accepts in `ukevent.event` (not zero).
    const EVENTS: u32;

    /// `ukevent.id` is a file descriptor, and the registration follows it as a poll kevent's
    /// does: closing the descriptor removes the kevent. The core looks the descriptor up before
    /// [`Source::get`] (`EBADF`; `O_PATH` descriptors are refused).
    const FOLLOWS_FD: bool = false;

    /// The kevent does not keep the object alive: the [`Source::Ptr`] is dropped as soon as the
    /// kevent is on the object's storage, and the object's death reaches the kevent through
    /// [`Storage::fini`]. A weak source has no [`Source::recheck`] and does not follow the
    /// descriptor.
    const WEAK: bool = false;

    /// The request flags the source accepts beyond the common ones (`KEVENT_REQ_ONESHOT`,
    /// `KEVENT_REQ_ET`, `KEVENT_REQ_WAKEUP_ALL`); the core refuses any other with `EINVAL`.
    const FLAGS: u32 = 0;

    /// `arg` and `arg_fd` are the source's: [`Source::get`] sees them as given ([`Ukevent::arg`],
    /// [`Ukevent::arg_fd`]) and checks them. Otherwise the core requires them to be zero.
    const TAKES_ARGS: bool = false;

    /// A kevent is named in its queue by `(type, id, user_data)`, not `(type, id)`: several
    /// kevents of the source may share an `id`. `KEVENT_CTL_MODIFY`, which would change the
    /// key, is `EINVAL` for them.
    const KEYED_BY_USER_DATA: bool = false;

    /// Every kevent of the source is removed after its first delivery, as if
    /// `KEVENT_REQ_ONESHOT` were set.
    const ONESHOT: bool = false;

    /// 0, or a positive errno (below `MAX_ERRNO`): `KEVENT_CTL_REMOVE` of a kevent, and the close
    /// of the descriptor it follows, detach it (the [`Source::Ptr`] is dropped) and, unless a
    /// notification of the object is already pending for it, report it once as broken with
    /// `-CANCEL_ERRNO` and its requested events; the kevent is removed once that event, or the
    /// pending one, is delivered. With 0 they remove it silently. Only for a [`Source::ONESHOT`]
    /// source.
    const CANCEL_ERRNO: i32 = 0;

    /// The objects of this source (a socket, an inode...).
    type Object: Send + Sync;

    /// A reference to an object that keeps it, and so its [`Storage`], alive, such as an
    /// [`ARef`], an [`Arc`] or a [`KBox`]. Dropping it may sleep.
    ///
    /// [`ARef`]: crate::sync::aref::ARef
    /// [`Arc`]: crate::sync::Arc
    type Ptr: for<'a> ForeignOwnable<Borrowed<'a>: Deref<Target = Self::Object>> + Send + Sync;

    /// Looks up the object `uk` names. Process context, may sleep.
    ///
    /// An error is reported in the entry's `ret_data`.
    fn get(uk: &Ukevent) -> Result<Self::Ptr>;

    /// The storage of `obj`.
    fn storage(obj: &Self::Object) -> &Storage;

    /// The core is done with the [`Source::Ptr`] of `obj` (the table's `put`): the kevent was
    /// detached (removed, cancelled, its descriptor closed, delivered, its queue released), or
    /// never registered. Called once per [`Source::get`], right before the reference is dropped,
    /// whether or not it is the last one: a request stops here. Process context, may sleep.
    fn put(_obj: &Self::Object) {}

    /// The level state of `obj`: the events of `events` that are ready now, and in `data` (0 on
    /// entry) the result to report with them.
    ///
    /// Called when a kevent is registered and at each of its deliveries, in every mode; process
    /// context, may sleep. A source without it has no level state: its events are reported as
    /// they fired.
    fn recheck(_obj: &Self::Object, _events: u32, _data: &mut i64) -> u32 {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// What a notification of `events` (the mask given to [`Storage::ready`]) means is ready now
    /// in `obj`, of `requested`, and in `data` (0 on entry) the result to report with them.
    ///
    /// Only with [`Source::recheck`]. Called where the object notifies its [`Storage`], in any
    /// context, under the storage's lock (it must not sleep), for an edge-triggered or oneshot
    /// kevent of a queue with a ring, which is then written into the ring there. Without it,
    /// such kevents take the ready list and [`Source::recheck`] at delivery. A source whose
    /// notifications are coarse narrows them here, from what the callback that notified means
    /// or by reading the object's state as [`Source::recheck`] does.
    fn notified(_obj: &Self::Object, _events: u32, _requested: u32, _data: &mut i64) -> u32 {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The kevent `obj` was got for is registered: from now on, what the object reports through
    /// its [`Storage`] reaches the kevent (before, it could be lost). Called once per
    /// registration, after [`Source::recheck`], in process context, before the `kevent_ctl()`
    /// entry completes; may sleep. An object that starts work of its own for the kevent starts
    /// it here rather than in [`Source::get`].
    ///
    /// `more` (only for a source with [`Source::flush`]): the next entry of the same
    /// `kevent_ctl()` batch has the same type, id and event, so the object may hold back what
    /// this request would flush out (a socket corks a send); [`Source::flush`] follows the run.
    fn armed(_obj: Borrowed<'_, Self>, _more: bool) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Tries to finish the request `obj` at once, right after [`Source::get`] and before its
    /// kevent is registered anywhere (only for a [`Source::ONESHOT`] source of requests);
    /// process context, may sleep; `more` as for [`Source::armed`].
    ///
    /// Returns its result if it is finished: `Ok` with a value (0 or more; the core reports
    /// `KEVENT_RET_DONE` with it), or the error (`KEVENT_RET_BROKEN`). The core then drops the
    /// [`Source::Ptr`] and registers nothing: no storage, no registration by descriptor, no
    /// [`Source::recheck`] or [`Source::armed`]. Returns `None` if the request is not finished
    /// (it may have made progress, which the object keeps): registration goes on, and
    /// [`Source::armed`] continues the request.
    ///
    /// `submitted`: [`Source::submit`] ran for the request and did not finish it, with this
    /// progress, which the object takes over; it should then return `None` without trying again.
    fn start(
        _obj: Borrowed<'_, Self>,
        _more: bool,
        _submitted: Option<u64>,
    ) -> Option<Result<i64>> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Tries to finish the request `uk` describes before [`Source::get`] makes an object for it
    /// (only with [`Source::start`]); process context, may sleep; `more` as for
    /// [`Source::armed`]. A request that the object would finish at once anyway is then done
    /// without the object.
    ///
    /// Returns [`Submitted::Finished`] with its result (as [`Source::start`] returns it): the
    /// core reports it and calls nothing else for it. Otherwise [`Submitted::Started`] with the
    /// progress made (0 if nothing was done, as for an entry that [`Source::get`] refuses): the
    /// core calls [`Source::get`], then [`Source::start`] with that progress.
    fn submit(_uk: &Ukevent, _more: bool) -> Submitted {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Tries the entries `run` (2 to [`RUN_MAX`] consecutive `KEVENT_CTL_ADD` entries with the
    /// same type, id and event) as one operation on their object, moving what
    /// [`Source::submit`] would move for each of them one after the other (only with
    /// [`Source::submit`]); same context as [`Source::submit`]. The core has checked and charged
    /// every entry, so that none fails for a reason of the core's once the run moved data.
    ///
    /// Writes the results of the entries it finished, from the first on, into `results`, and
    /// returns how far it got ([`RunDone`]). Entries that it did not touch go through
    /// [`Source::submit`] one by one, as any entry; returning [`RunDone::NOTHING`] leaves the
    /// whole run to it.
    fn submit_run(_run: &[Ukevent], _results: &mut [Result<i64>]) -> RunDone {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// A run of consecutive `KEVENT_CTL_ADD` entries with the same type, id and event, armed
    /// with `more` (all but the last), ended with `uk`: flushes out what they held back.
    ///
    /// Called once per run, after its last entry, whether or not that entry or any other of the
    /// run was added, so that nothing held back waits for a request that never came. Process
    /// context, may sleep; the object `uk` names may be gone by then.
    fn flush(_uk: &Ukevent) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// Registers the source `T` with the kevent core.
///
/// Registrations are permanent, so only built-in code may register (from the `init` of a
/// built-in `module!`, which runs as an initcall); a loadable module gets `EINVAL`. The core
/// accepts registrations from any initcall, before or after its own initialisation.
///
/// Returns `EINVAL` for a table the core refuses, `EEXIST` if the type already has a source,
/// `EBUSY` if no slot is free.
pub fn register<T: Source>() -> Result {
    if !this_module::<T::OwnerModule>().as_ptr().is_null() {
        return Err(EINVAL);
    }
    // SAFETY: The table is a `'static` constant, and its callbacks follow the contract of
    // `struct kevent_source_ops` (see `SourceVTable`).
    to_result(unsafe { bindings::kevent_register_source(SourceVTable::<T>::build()) })
}

/// What [`Source::submit`] did with a request.
pub enum Submitted {
    /// The request is finished, with this result.
    Finished(Result<i64>),
    /// It is not: the progress it made (0 if none), for [`Source::start`] to take over.
    Started(u64),
}

/// The most entries of a run that one [`Source::submit_run`] takes.
pub const RUN_MAX: usize = bindings::KEVENT_RUN_MAX as usize;

/// How far [`Source::submit_run`] got through a run.
pub struct RunDone {
    /// How many entries finished, from the first on, with the first results.
    pub finished: usize,
    /// The progress of the entry after them, which did not finish (more than 0); 0 if that entry
    /// was not touched. The entries after it are never touched.
    pub progress: u64,
}

impl RunDone {
    /// Nothing was done: every entry goes through [`Source::submit`].
    pub const NOTHING: RunDone = RunDone {
        finished: 0,
        progress: 0,
    };
}

/// The `struct kevent_source_ops` of the source `T`.
struct SourceVTable<T: Source>(PhantomData<T>);

impl<T: Source> SourceVTable<T> {
    /// # Safety
    ///
    /// `uk` points to a valid `struct ukevent` for the duration of the call; `storage` and
    /// `private` are valid for writes.
    unsafe extern "C" fn get(
        uk: *const bindings::ukevent,
        storage: *mut *mut bindings::kevent_storage,
        private: *mut *mut c_void,
    ) -> c_int {
        // SAFETY: The core passes a valid entry that it does not modify during the call.
        let uk = unsafe { Ukevent::from_raw(uk) };
        let ptr = match T::get(uk) {
            Ok(obj) => obj.into_foreign(),
            Err(err) => return err.to_errno(),
        };
        // SAFETY: `ptr` comes from `into_foreign` above and is only given back to `from_foreign`
        // by `put`, which the core calls after it no longer uses the storage returned here.
        let obj = unsafe { <T::Ptr as ForeignOwnable>::borrow(ptr) };
        let st = T::storage(obj.deref()).as_raw();
        // SAFETY: The caller guarantees that the out-pointers are valid for writes.
        unsafe {
            *storage = st;
            *private = ptr;
        }
        0
    }

    /// # Safety
    ///
    /// `private` is a reference returned by `get` and not yet put.
    unsafe extern "C" fn put(private: *mut c_void) {
        // SAFETY: `private` comes from `into_foreign` in `get` and is not put yet; the borrow ends
        // before `from_foreign` below.
        T::put(unsafe { <T::Ptr as ForeignOwnable>::borrow(private) }.deref());
        // SAFETY: `private` comes from `into_foreign` in `get`, and the core puts it only once.
        drop(unsafe { <T::Ptr as ForeignOwnable>::from_foreign(private) });
    }

    /// # Safety
    ///
    /// `private` is a reference returned by `get` and not yet put, and `data` is valid for reads
    /// and writes, for the duration of the call.
    unsafe extern "C" fn recheck(private: *mut c_void, events: u32, data: *mut i64) -> u32 {
        // SAFETY: `private` comes from `into_foreign` in `get`, and `put` cannot run during this
        // call.
        let obj = unsafe { <T::Ptr as ForeignOwnable>::borrow(private) };
        // SAFETY: The caller guarantees that `data` is valid for the duration of the call.
        let data = unsafe { &mut *data };
        T::recheck(obj.deref(), events, data)
    }

    /// # Safety
    ///
    /// `private` is a reference returned by `get` and not yet put, and `data` is valid for reads
    /// and writes, for the duration of the call.
    unsafe extern "C" fn notified(
        private: *mut c_void,
        events: u32,
        requested: u32,
        data: *mut i64,
    ) -> u32 {
        // SAFETY: `private` comes from `into_foreign` in `get`, and `put` cannot run during this
        // call.
        let obj = unsafe { <T::Ptr as ForeignOwnable>::borrow(private) };
        // SAFETY: The caller guarantees that `data` is valid for the duration of the call.
        let data = unsafe { &mut *data };
        T::notified(obj.deref(), events, requested, data)
    }

    /// # Safety
    ///
    /// `private` is a reference returned by `get` and not yet put, for the duration of the call.
    unsafe extern "C" fn armed(private: *mut c_void, flags: c_uint) {
        // SAFETY: `private` comes from `into_foreign` in `get`, and `put` cannot run during this
        // call.
        let obj = unsafe { <T::Ptr as ForeignOwnable>::borrow(private) };
        T::armed(obj, flags & bindings::KEVENT_ARMED_MORE != 0)
    }

    /// # Safety
    ///
    /// `private` is a reference returned by `get` and not yet put, and `result` is valid for
    /// writes, for the duration of the call.
    unsafe extern "C" fn start(private: *mut c_void, flags: c_uint, result: *mut i64) -> c_int {
        // SAFETY: `private` comes from `into_foreign` in `get`, and `put` cannot run during this
        // call.
        let obj = unsafe { <T::Ptr as ForeignOwnable>::borrow(private) };
        let submitted = if flags & bindings::KEVENT_START_SUBMITTED != 0 {
            // SAFETY: The caller guarantees that `result` is valid; with this flag it holds the
            // progress of `submit`.
            Some(u64::try_from(unsafe { *result }).unwrap_or(0))
        } else {
            None
        };
        let value = match T::start(obj, flags & bindings::KEVENT_ARMED_MORE != 0, submitted) {
            None => return 0,
            Some(Ok(v)) => v.max(0),
            Some(Err(e)) => e.to_errno().into(),
        };
        // SAFETY: The caller guarantees that `result` is valid for writes.
        unsafe { *result = value };
        1
    }

    /// # Safety
    ///
    /// `uk` points to a valid `struct ukevent`, and `result` is valid for writes, for the
    /// duration of the call.
    unsafe extern "C" fn submit(
        uk: *const bindings::ukevent,
        flags: c_uint,
        result: *mut i64,
    ) -> c_int {
        // SAFETY: The core passes a valid entry that it does not modify during the call.
        let uk = unsafe { Ukevent::from_raw(uk) };
        let (done, value) = match T::submit(uk, flags & bindings::KEVENT_ARMED_MORE != 0) {
            Submitted::Finished(Ok(v)) => (1, v.max(0)),
            Submitted::Finished(Err(e)) => (1, e.to_errno().into()),
            Submitted::Started(p) => (0, i64::try_from(p).unwrap_or(i64::MAX)),
        };
        // SAFETY: The caller guarantees that `result` is valid for writes.
        unsafe { *result = value };
        done
    }

    /// # Safety
    ///
    /// `uk` points to `n` valid `struct ukevent`s in a row, and `results` is valid for writes of
    /// `n` values, for the duration of the call.
    unsafe extern "C" fn submit_run(
        uk: *const bindings::ukevent,
        n: c_uint,
        results: *mut i64,
    ) -> c_int {
        let n = (n as usize).min(RUN_MAX);
        // SAFETY: `Ukevent` is a transparent wrapper of the C type; the caller guarantees `n`
        // valid entries, which the core does not modify during the call.
        let run = unsafe { core::slice::from_raw_parts(uk.cast::<Ukevent>(), n) };
        let mut res = [Ok(0); RUN_MAX];
        let done = T::submit_run(run, &mut res[..n]);
        let k = done.finished.min(n);
        // SAFETY: The caller guarantees that `results` is valid for writes of `n` values.
        let out = unsafe { core::slice::from_raw_parts_mut(results, n) };
        for (o, r) in out.iter_mut().zip(&res[..k]) {
            *o = match r {
                Ok(v) => (*v).max(0),
                Err(e) => e.to_errno().into(),
            };
        }
        if let Some(o) = out.get_mut(k) {
            *o = i64::try_from(done.progress).unwrap_or(i64::MAX);
        }
        // `k <= RUN_MAX`, which fits.
        k as c_int
    }

    /// # Safety
    ///
    /// `uk` points to a valid `struct ukevent` for the duration of the call.
    unsafe extern "C" fn flush(uk: *const bindings::ukevent) {
        // SAFETY: The core passes a valid entry that it does not modify during the call.
        T::flush(unsafe { Ukevent::from_raw(uk) })
    }

    const OPS: bindings::kevent_source_ops = {
        // The checks of `kevent_register_source()`, at compile time.
        assert!(T::TYPE != 0 && T::EVENTS != 0);
        assert!(!(T::WEAK && (T::HAS_RECHECK || T::FOLLOWS_FD)));
        assert!(T::CANCEL_ERRNO >= 0 && T::CANCEL_ERRNO <= bindings::MAX_ERRNO as i32);
        assert!(T::CANCEL_ERRNO == 0 || T::ONESHOT);
        assert!(!T::HAS_START || T::ONESHOT);
        assert!(!T::HAS_SUBMIT || T::HAS_START);
        assert!(!T::HAS_SUBMIT_RUN || T::HAS_SUBMIT);
        assert!(!T::HAS_NOTIFIED || T::HAS_RECHECK);
        bindings::kevent_source_ops {
            type_: T::TYPE,
            events: T::EVENTS,
            flags: T::FLAGS,
            follows_fd: T::FOLLOWS_FD,
            weak: T::WEAK,
            takes_args: T::TAKES_ARGS,
            keyed_by_user_data: T::KEYED_BY_USER_DATA,
            oneshot: T::ONESHOT,
            cancel_errno: T::CANCEL_ERRNO,
            get: Some(Self::get),
            put: Some(Self::put),
            recheck: if T::HAS_RECHECK {
                Some(Self::recheck)
            } else {
                None
            },
            notified: if T::HAS_NOTIFIED {
                Some(Self::notified)
            } else {
                None
            },
            armed: if T::HAS_ARMED {
                Some(Self::armed)
            } else {
                None
            },
            start: if T::HAS_START {
                Some(Self::start)
            } else {
                None
            },
            submit: if T::HAS_SUBMIT {
                Some(Self::submit)
            } else {
                None
            },
            flush: if T::HAS_FLUSH {
                Some(Self::flush)
            } else {
                None
            },
            submit_run: if T::HAS_SUBMIT_RUN {
                Some(Self::submit_run)
            } else {
                None
            },
        }
    };

    const fn build() -> &'static bindings::kevent_source_ops {
        &Self::OPS
    }
}
