// SPDX-License-Identifier: GPL-2.0

//! Sources outside the crate: the C API of `<linux/kevent.h>` and `<linux/kevent_storage.h>`.
//!
//! Kbuild makes each Rust object outside `rust/` its own crate, and the socket (`net/kevent/`)
//! and inode (`fs/kevent/`) sources live next to the code they hook, so they cannot implement
//! [`Source`] themselves. Instead each registers a `struct kevent_source_ops` at boot with
//! [`kevent_register_source`] (a Rust source builds it with `kernel::kevent::register()`, see
//! `rust/kernel/kevent.rs`), and [`ExternSource`] adapts it to the [`Source`] and [`Attached`]
//! traits: `get` looks the object up and returns its `struct kevent_storage` and a reference to
//! it, the core installs a [`Storage`] there on first use (see `storage.rs`) and enqueues the
//! kevent, `recheck` gives the level state, `armed` tells the object that the kevent is
//! registered (a source of requests may instead finish one at once, `start`, before anything is
//! registered) and `put` drops the reference. The table also says how the core treats the
//! source's kevents: whether it checks `arg` and `arg_fd` itself (`takes_args`), whether they
//! are keyed by `user_data` too, always oneshot, and cancelled with an errno rather than dropped
//! silently (`cancel_errno`); see `<linux/kevent.h>`. Their objects call
//! [`__kevent_storage_ready`] and [`__kevent_storage_fini`] (through the inline wrappers of
//! `<linux/kevent_storage.h>`, which cost one branch while nothing is registered).
//!
//! The registered tables live in a small fixed array, written once per source at boot and read
//! without locks after. The array needs no initialisation, so a source may register from any
//! initcall, before or after the crate's module initialiser runs.

use crate::{
    abi::*,
    event::{Attach, Built, Kevent, NewKevent},
    fdtrack::FdTrack,
    queue::{Index, Queue},
    source::{Attached, Info, Source},
    storage::{self, Storage},
};
use kernel::{
    bindings,
    ffi::{c_int, c_uint, c_void},
    fs::{File, LocalFile},
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{ordering, Atomic},
        Arc, ArcBorrow, LockedBy,
    },
};

/// The most sources that can register (today: sockets and inodes).
const MAX_SOURCES: usize = 4;

/// An empty slot.
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Atomic<*const bindings::kevent_source_ops> = Atomic::new(core::ptr::null());

/// The registered sources; a slot, once set, is never cleared.
static REGISTERED: [Atomic<*const bindings::kevent_source_ops>; MAX_SOURCES] = [EMPTY; MAX_SOURCES];

/// A source registered through the C API: its operations table.
#[repr(transparent)]
pub(crate) struct ExternSource(bindings::kevent_source_ops);

impl ExternSource {
    /// Views an operations table as a source.
    ///
    /// # Safety
    ///
    /// `ops` is valid for `'a` and its callbacks follow the contract of `struct
    /// kevent_source_ops` in `<linux/kevent.h>`.
    pub(crate) unsafe fn from_ops<'a>(ops: *const bindings::kevent_source_ops) -> &'a ExternSource {
        // SAFETY: `ExternSource` is a transparent wrapper of the table, valid for `'a` per the
        // safety requirements.
        unsafe { &*ops.cast::<ExternSource>() }
    }

    /// Checks a table before it is registered.
    fn valid(&self) -> bool {
        let o = &self.0;
        o.type_ != 0
            && o.events != 0
            && o.get.is_some()
            && o.put.is_some()
            && !(o.weak && (o.recheck.is_some() || o.follows_fd))
            && (0..=bindings::MAX_ERRNO as c_int).contains(&o.cancel_errno)
            // A cancelled kevent is delivered once, then removed: a request.
            && (o.cancel_errno == 0 || o.oneshot)
            && (o.start.is_none() || o.oneshot)
            && (o.submit.is_none() || o.start.is_some())
            && (o.submit_run.is_none() || o.submit.is_some())
            && (o.notified.is_none() || o.recheck.is_some())
    }

    /// Calls `get`: the object's storage and a reference that keeps the object alive.
    fn get(&'static self, uk: &Ukevent) -> Result<(*mut bindings::kevent_storage, ObjectRef)> {
        let get = self.0.get.ok_or(EINVAL)?;
        let mut st: *mut bindings::kevent_storage = core::ptr::null_mut();
        let mut obj: *mut c_void = core::ptr::null_mut();
        // SAFETY: `uk` is a valid `struct ukevent` (the uapi and bindings types are the same C
        // type); the out-pointers are valid.
        let ret = unsafe {
            get(
                (&raw const uk.0).cast::<bindings::ukevent>(),
                &mut st,
                &mut obj,
            )
        };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        let object = ObjectRef { src: self, obj };
        if st.is_null() {
            return Err(EINVAL);
        }
        Ok((st, object))
    }
}

/// Registers the source `ops`. Called from initcalls, before the first `kevent_ctl()` of its
/// type; registrations are not serialised against each other.
fn register(ops: &'static ExternSource) -> Result {
    if !ops.valid() {
        return Err(EINVAL);
    }
    let ty = ops.0.type_;
    if crate::source_of(ty).is_some() {
        return Err(EEXIST);
    }
    let ptr: *const bindings::kevent_source_ops = &ops.0;
    for slot in REGISTERED.iter() {
        // Release: the table is complete before a reader can see it.
        if slot
            .cmpxchg(core::ptr::null(), ptr, ordering::Release)
            .is_ok()
        {
            return Ok(());
        }
    }
    Err(EBUSY)
}

/// The registered source of type `ty`, if there is one.
pub(crate) fn find(ty: u32) -> Option<&'static ExternSource> {
    REGISTERED.iter().find_map(|slot| {
        let ptr = slot.load(ordering::Acquire);
        if ptr.is_null() {
            return None;
        }
        // SAFETY: Only tables given to `kevent_register_source`, which live forever, are stored.
        let src = unsafe { ExternSource::from_ops(ptr) };
        (src.0.type_ == ty).then_some(src)
    })
}

/// Registers an event source implemented outside the core.
///
/// # Safety
///
/// `ops` points to a table that lives forever and follows the contract of `struct
/// kevent_source_ops`.
#[export]
pub unsafe extern "C" fn kevent_register_source(ops: *const bindings::kevent_source_ops) -> c_int {
    if ops.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: Per the safety requirements.
    match register(unsafe { ExternSource::from_ops(ops) }) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `kevent_storage_ready()`: the object that embeds `st` saw `events`, with result `data`.
///
/// # Safety
///
/// `st` is a valid `struct kevent_storage`, whose object does not call
/// [`__kevent_storage_fini`] until this returns.
#[export]
pub unsafe extern "C" fn __kevent_storage_ready(
    st: *mut bindings::kevent_storage,
    events: u32,
    data: i64,
) {
    // SAFETY: Per the safety requirements.
    unsafe { storage::slot_ready(st, events, data) }
}

/// `kevent_storage_fini()`: the object that embeds `st` dies; its kevents are reported broken
/// with `err` (a negative errno).
///
/// # Safety
///
/// `st` is a valid `struct kevent_storage` on which no `ready` or registration can run any more.
#[export]
pub unsafe extern "C" fn __kevent_storage_fini(st: *mut bindings::kevent_storage, err: c_int) {
    // SAFETY: Per the safety requirements.
    unsafe { storage::slot_fini(st, 0, err.into()) }
}

/// `kevent_storage_fail()`: the object that embeds `st` failed at `events`: its kevents are
/// reported broken with `err` (a negative errno) and those events (of their requests), and taken
/// off the storage.
///
/// # Safety
///
/// `st` is a valid `struct kevent_storage` on which no `ready`, `fail`, `fini` or registration
/// runs concurrently.
#[export]
pub unsafe extern "C" fn __kevent_storage_fail(
    st: *mut bindings::kevent_storage,
    events: u32,
    err: c_int,
) {
    // SAFETY: Per the safety requirements.
    unsafe { storage::slot_fini(st, events, err.into()) }
}

/// A reference to a source object, from its source's `get`; dropping it calls `put`.
///
/// `put` may sleep: it is dropped in process context, by [`Attached::detach`] or when an attach
/// fails.
struct ObjectRef {
    src: &'static ExternSource,
    obj: *mut c_void,
}

// SAFETY: The reference a source's `get` returns may be used and dropped from any process
// context, per the contract of `struct kevent_source_ops`.
unsafe impl Send for ObjectRef {}

// SAFETY: A shared `ObjectRef` only calls the source's `recheck`, `armed` and `start` on the
// reference, which the contract of `struct kevent_source_ops` allows from any process context;
// the core makes those calls on one registration under its queue's index mutex, one at a time.
unsafe impl Sync for ObjectRef {}

/// The `flags` of `armed` and `start` for the batch hint `more`.
fn armed_flags(more: bool) -> u32 {
    if more {
        bindings::KEVENT_ARMED_MORE
    } else {
        0
    }
}

impl ObjectRef {
    /// Tells the object that its kevent is registered, if the source asks to know; `more` is
    /// the batch hint.
    fn armed(&self, more: bool) {
        if let Some(armed) = self.src.0.armed {
            let flags = armed_flags(more);
            // SAFETY: `obj` is the live reference `get` returned.
            unsafe { armed(self.obj, flags) };
        }
    }

    /// Tries to finish the request at once, if the source can (`start`): its result (a value,
    /// or `-errno`), or `None` if it is not finished; `more` is the batch hint. `submitted`: the
    /// progress of the source's `submit`, which ran and did not finish the request; the object
    /// takes it over.
    fn start(&self, more: bool, submitted: Option<i64>) -> Option<i64> {
        let start = self.src.0.start?;
        let mut flags = armed_flags(more);
        let mut result: i64 = 0;
        if let Some(progress) = submitted {
            flags |= bindings::KEVENT_START_SUBMITTED;
            result = progress;
        }
        // SAFETY: `obj` is the live reference `get` returned; `result` is valid for reads and
        // writes.
        let done = unsafe { start(self.obj, flags, &mut result) };
        (done == 1).then_some(result)
    }

    /// The object's level state: the events of `events` ready now, and the result to report.
    fn recheck(&self, events: u32) -> Option<(u32, i64)> {
        let recheck = self.src.0.recheck?;
        let mut data: i64 = 0;
        // SAFETY: `obj` is the live reference `get` returned; `data` is a valid out-pointer.
        let ready = unsafe { recheck(self.obj, events, &mut data) };
        Some((ready & events, data))
    }
}

impl Drop for ObjectRef {
    fn drop(&mut self) {
        if let Some(put) = self.src.0.put {
            // SAFETY: `obj` is the reference `get` returned, dropped exactly once.
            unsafe { put(self.obj) };
        }
    }
}

/// What one attached kevent keeps of its object.
#[derive(Default)]
struct Held {
    /// The object's storage; our own reference, so that a detach after the object's death is
    /// safe. `None` until registered.
    storage: Option<Arc<Storage>>,
    /// The reference to the object; `None` for a weak source, and once detached.
    object: Option<ObjectRef>,
    /// The registration by descriptor and the file it was made on, if the source follows the
    /// descriptor.
    track: Option<(FdTrack, ARef<File>)>,
}

/// The source's side of one kevent of a registered source, in the kevent's allocation.
struct ExternAttached {
    /// Guarded by the queue's index mutex (`put` and `recheck` may sleep), held by `attach` and
    /// every method of [`Attached`].
    held: LockedBy<Held, Index>,
    /// The source's `notified` and the object's reference, for a source with one
    /// ([`Attached::notified`]).
    notified: Option<Notified>,
}

/// A source's `notified`, with the reference it is called on.
struct Notified {
    notified: unsafe extern "C" fn(*mut c_void, u32, u32, *mut i64) -> u32,
    /// The reference `get` returned, which `held.object` keeps (and puts) until the detach.
    obj: *mut c_void,
}

// SAFETY: The contract of `notified` is that it runs in any context, on any CPU, at the same
// time as the other calls on the reference.
unsafe impl Send for Notified {}
// SAFETY: As above.
unsafe impl Sync for Notified {}

impl ExternAttached {
    /// The source's side of the kevent of a request that finished (or failed) before `get`
    /// made an object for it: never attached, it only carries the request's event.
    fn finished(queue: ArcBorrow<'_, Queue>) -> Self {
        ExternAttached {
            held: LockedBy::new(&queue.index, Held::default()),
            notified: None,
        }
    }

    /// The source's side of a kevent of `src` on the object `obj` (a reference `get` returned).
    fn new(src: &ExternSource, obj: &ObjectRef, queue: ArcBorrow<'_, Queue>) -> Self {
        let notified = match (src.0.notified, src.0.recheck) {
            (Some(notified), Some(_)) => Some(Notified {
                notified,
                obj: obj.obj,
            }),
            _ => None,
        };
        ExternAttached {
            held: LockedBy::new(&queue.index, Held::default()),
            notified,
        }
    }
}

impl Source for ExternSource {
    fn info(&self) -> Info {
        let ops = &self.0;
        Info {
            kind: ops.type_,
            events: ops.events,
            flags: ops.flags,
            keyed_by_user_data: ops.keyed_by_user_data,
            oneshot: ops.oneshot,
            cancel_errno: ops.cancel_errno,
            batches: ops.flush.is_some(),
            // `valid()` refuses a `submit_run` without `submit`.
            runs: ops.submit_run.is_some(),
            rechecks: ops.recheck.is_some(),
            notifies: ops.notified.is_some() && ops.recheck.is_some(),
        }
    }

    fn check(&self, uk: &Ukevent) -> Result {
        let u = &uk.0;
        // A source that takes arguments checks them in its `get`.
        if !self.0.takes_args && (u.arg != [0, 0] || u.arg_fd != 0) {
            return Err(EINVAL);
        }
        Ok(())
    }

    fn flush(&self, uk: &Ukevent) {
        if let Some(flush) = self.0.flush {
            // SAFETY: The table's contract: `flush` takes any valid entry, which `uk` is for the
            // duration of the call.
            unsafe { flush((&raw const uk.0).cast::<bindings::ukevent>()) };
        }
    }

    fn attach(
        &self,
        new: NewKevent<'_>,
        uk: &Ukevent,
        more: bool,
        index: &mut Index,
    ) -> Result<Attach> {
        // SAFETY: Every `ExternSource` the core reaches is a registered table (or a test's
        // static one): it lives forever.
        let this: &'static ExternSource = unsafe { ExternSource::from_ops(&self.0) };
        let queue = new.queue();
        if this.0.start.is_none() {
            let file = this.follow(uk)?;
            let got = this.get(uk)?;
            let built = new.build(ExternAttached::new(this, &got.1, queue))?;
            this.register(&built, uk, more, file, got, index)?;
            return Ok(built.attached());
        }
        // A source of requests may finish one at once, before anything is registered: it is
        // reported here, and nothing is attached.
        if this.0.submit.is_some() {
            return this.submit_and_attach(new, uk, more, index, None);
        }
        let got = this.get(uk)?;
        // The request starts before its kevent is built: one that finishes (most do, when the
        // object is ready) is reported without a kevent ever being made (into the ring, or kept
        // for delivery: `NewKevent::post_finished`). Only a request that finds no room there,
        // or does not finish, needs the kevent afterwards, and it is then allocated without the
        // memory cgroup's charge, whose limit could fail it after the request moved data (see
        // `NewKevent::build_finished`).
        let result = got.1.start(more, None);
        if let Some(r) = result {
            if new.post_finished(r, index) {
                drop(got);
                return Ok(new.posted());
            }
        }
        let built = new.build_finished(ExternAttached::new(this, &got.1, queue))?;
        Ok(this.register_started(built, uk, more, got, result, index))
    }

    fn submit_run(&self, run: &[Ukevent], results: &mut [i64]) -> usize {
        let (Some(submit_run), Some(first)) = (self.0.submit_run, run.first()) else {
            return 0;
        };
        let n = run.len().min(results.len());
        // SAFETY: `run` is `n` (or more) valid entries in a row (`Ukevent` is a transparent
        // wrapper of the C type), and `results` has room for `n` values; the table's contract
        // bounds what the source writes and returns by `n`.
        let k = unsafe {
            submit_run(
                (&raw const first.0).cast::<bindings::ukevent>(),
                n as c_uint,
                results.as_mut_ptr(),
            )
        };
        usize::try_from(k).map_or(0, |k| k.min(n))
    }

    fn attach_submitted(
        &self,
        new: NewKevent<'_>,
        uk: &Ukevent,
        more: bool,
        index: &mut Index,
        submitted: core::result::Result<i64, i64>,
    ) -> Result<Attach> {
        // SAFETY: As in `attach`.
        let this: &'static ExternSource = unsafe { ExternSource::from_ops(&self.0) };
        this.submit_and_attach(new, uk, more, index, Some(submitted))
    }
}

impl ExternSource {
    /// Calls `submit`: `Ok` with the request's result if it finished (a value, or `-errno`),
    /// `Err` with its progress if it did not.
    fn submit(&self, uk: &Ukevent, more: bool) -> core::result::Result<i64, i64> {
        let Some(submit) = self.0.submit else {
            return Err(0);
        };
        let mut result: i64 = 0;
        // SAFETY: `uk` is a valid `struct ukevent` (the uapi and bindings types are the same C
        // type); `result` is a valid out-pointer.
        let done = unsafe {
            submit(
                (&raw const uk.0).cast::<bindings::ukevent>(),
                armed_flags(more),
                &mut result,
            )
        };
        if done == 1 {
            Ok(result)
        } else {
            // Progress is never negative; a source that says so made none we can count.
            Err(result.max(0))
        }
    }

    /// [`Source::attach`] for a source with `submit`: the request is tried before anything is
    /// made for it (unless `submitted` says what a run did with it: see `submit_run`). Finished,
    /// it is written into the ring if it can be, or else reported by a kevent made for that
    /// alone; not finished, the object is got and takes the progress over, and registration goes
    /// on as after a `start` that did not finish.
    fn submit_and_attach(
        &'static self,
        new: NewKevent<'_>,
        uk: &Ukevent,
        more: bool,
        index: &mut Index,
        submitted: Option<core::result::Result<i64, i64>>,
    ) -> Result<Attach> {
        let queue = new.queue();
        let progress = match submitted.unwrap_or_else(|| self.submit(uk, more)) {
            Ok(result) => {
                if new.post_finished(result, index) {
                    return Ok(new.posted());
                }
                let built = new.build_finished(ExternAttached::finished(queue))?;
                Self::report(built.kevent().as_arc_borrow(), uk, result);
                return Ok(built.finished());
            }
            Err(progress) => progress,
        };
        let got = match self.get(uk) {
            Ok(got) => got,
            // Nothing moved: the entry fails, as it would have without `submit`.
            Err(e) if progress == 0 => return Err(e),
            // The request moved data: it fails in its event, as a later failure would.
            Err(e) => {
                let built = new.build_finished(ExternAttached::finished(queue))?;
                Self::report(built.kevent().as_arc_borrow(), uk, e.to_errno().into());
                return Ok(built.finished());
            }
        };
        let built = if progress == 0 {
            new.build(ExternAttached::new(self, &got.1, queue))?
        } else {
            new.build_finished(ExternAttached::new(self, &got.1, queue))?
        };
        let result = got.1.start(more, Some(progress));
        Ok(self.register_started(built, uk, more, got, result, index))
    }

    /// After `start` (whose `result` this is, if it finished the request): reports the
    /// finished request on its kevent `built`, or registers the kevent. The request may have
    /// moved data: from here on a failure is the request's, reported in its event as any later
    /// one would be, and `put` stops it.
    fn register_started(
        &'static self,
        built: Built<ExternAttached>,
        uk: &Ukevent,
        more: bool,
        got: (*mut bindings::kevent_storage, ObjectRef),
        result: Option<i64>,
        index: &mut Index,
    ) -> Attach {
        let kevent = built.kevent().as_arc_borrow();
        if let Some(result) = result {
            Self::report(kevent, uk, result);
            drop(got);
            return built.finished();
        }
        match self
            .follow(uk)
            .and_then(|file| self.register(&built, uk, more, file, got, index))
        {
            Ok(()) => built.attached(),
            Err(e) => {
                Kevent::notify_broken(kevent, uk.0.event, e.to_errno().into());
                built.finished()
            }
        }
    }

    /// Reports the result of the request of `uk` on its kevent: a value, or `-errno` (broken).
    fn report(kevent: ArcBorrow<'_, Kevent>, uk: &Ukevent, result: i64) {
        if result < 0 {
            Kevent::notify_broken(kevent, uk.0.event, result);
        } else {
            Kevent::notify_value(kevent, uk.0.event, result);
        }
    }

    /// The file of the descriptor `uk` names and the descriptor, if the source follows it.
    fn follow(&self, uk: &Ukevent) -> Result<Option<(ARef<File>, u32)>> {
        if !self.0.follows_fd {
            return Ok(None);
        }
        let fd = u32::try_from(uk.0.id).map_err(|_| EBADF)?;
        let local = LocalFile::fget(fd)?;
        // SAFETY: `fget` gave us a reference of our own, and we never use `fdget_pos`.
        Ok(Some((unsafe { LocalFile::assume_no_fdget_pos(local) }, fd)))
    }

    /// Registers the kevent `built` on the object `get` returned (`got`): installs its storage,
    /// records the registration by descriptor (`file`), enqueues, re-checks and arms. On error
    /// the kevent is on no list, and `got` is dropped (`put`).
    fn register(
        &self,
        built: &Built<ExternAttached>,
        uk: &Ukevent,
        more: bool,
        file: Option<(ARef<File>, u32)>,
        got: (*mut bindings::kevent_storage, ObjectRef),
        index: &mut Index,
    ) -> Result {
        let kevent = built.kevent();
        let (st, object) = got;
        // SAFETY: `st` is the storage of the object `object` keeps alive, so the object cannot
        // die (and call `kevent_storage_fini`) meanwhile.
        let storage = unsafe { storage::install(st) }?;
        let track = match file {
            Some((file, fd)) => {
                let track = FdTrack::new(kevent.as_arc_borrow(), &file, fd)?;
                // A close() that ran between `fget` and `FdTrack::new` did not see the
                // registration.
                // SAFETY: The current task's fd table is valid during the system call.
                if !unsafe {
                    bindings::kevent_fd_maps_to(
                        bindings::kevent_current_files().cast(),
                        fd,
                        file.as_ptr(),
                    )
                } {
                    return Err(EBADF);
                }
                Some((track, file))
            }
            None => None,
        };
        storage.enqueue(kevent.as_arc_borrow())?;
        let held = kevent.src.held.access_mut(index);
        *held = Held {
            storage: Some(storage),
            object: Some(object),
            track,
        };
        // Enqueued first, then re-checked: activity from here on notifies the kevent, and what
        // happened before is seen by the re-check.
        if let Some((ready, _)) = held.object.as_ref().and_then(|o| o.recheck(uk.0.event)) {
            if ready != 0 {
                Kevent::notify(kevent.as_arc_borrow(), ready, 0);
            }
        }
        // Registered: what the object reports from now on reaches the kevent. Nothing fails
        // after this (the caller only indexes the kevent).
        if let Some(object) = held.object.as_ref() {
            object.armed(more);
        }
        // A weak source's kevents do not keep the object alive; its death reaches them through
        // the storage.
        let weak = if self.0.weak {
            held.object.take()
        } else {
            None
        };
        drop(weak);
        Ok(())
    }
}

impl Attached for ExternAttached {
    fn detach(&self, kevent: &Kevent, index: &mut Index) {
        let held = self.held.access_mut(index);
        // Off the list first: no notification reaches the kevent after this (notifications take
        // the list lock). A no-op if the object died and its storage was finalised.
        if let Some(storage) = held.storage.as_ref() {
            storage.dequeue(kevent);
        }
        let object = held.object.take();
        let track = held.track.take();
        drop(track);
        drop(object);
    }

    fn notified(
        &self,
        _kevent: &Kevent,
        events: u32,
        requested: u32,
        data: &mut i64,
    ) -> Option<u32> {
        let n = self.notified.as_ref()?;
        let mut result: i64 = 0;
        // SAFETY: The core calls this only from a notification of the kevent's object while the
        // kevent is on its storage, or while `attach` holds the reference (see
        // `Attached::notified`): `held.object`, or `attach`'s `got`, keeps `obj` alive, since the
        // detach takes the kevent off the storage before it puts the reference; `result` is a
        // valid out-pointer. `notified` may run in any context.
        let ready = unsafe { (n.notified)(n.obj, events, requested, &mut result) };
        *data = result;
        Some(ready & requested)
    }

    fn recheck(&self, _kevent: &Kevent, events: u32, data: &mut i64, index: &Index) -> Option<u32> {
        let (ready, result) = self.held.access(index).object.as_ref()?.recheck(events)?;
        *data = result;
        Some(ready)
    }
}
