// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the C source API (`extern_source.rs`, the C side of `storage.rs`), driven by
//! fake `struct kevent_source_ops` tables whose objects the tests own: a source with level state,
//! a weak one, and a source of requests that takes arguments and an extra flag, is keyed by
//! `user_data`, oneshot, cancelled with an errno and told when its kevents are armed.

use crate::{
    abi::*,
    engine_tests::{poll, TestQueue, VecSink},
    extern_source::{self, ExternSource},
    source::Source,
    storage, syscalls,
};
use kernel::{
    bindings,
    ffi::{c_int, c_uint, c_void},
    prelude::*,
    sync::atomic::{ordering, Atomic},
    types::Opaque,
};

const FAKE_TYPE: u32 = 0x7fff_0002;
const REQ_TYPE: u32 = 0x7fff_0003;
const IN: u32 = 0x1;
const OUT: u32 = 0x2;
/// The extra request flag the request source accepts.
const REQ_FLAG: u32 = 0x10;
/// An `arg[1]` the request source's `get` refuses with `E2BIG`.
const BAD_ARG: u64 = 0xbad;
/// An `arg[1]` that `get` refuses too, after `submit` moved something (2).
const BAD_ARG_LATE: u64 = 0xbad2;
/// The result the fake re-check reports with `OUT`.
const OUT_DATA: i64 = -32;

/// A C source object: an embedded `struct kevent_storage`, a level and a reference count.
struct FakeObj {
    storage: Opaque<bindings::kevent_storage>,
    level: Atomic<u32>,
    refs: Atomic<i32>,
    /// Times `armed` was called.
    armed: Atomic<u32>,
    /// What the object reports (with result 1) as soon as it is armed.
    on_armed: Atomic<u32>,
    /// Times `armed` was called with `KEVENT_ARMED_MORE`.
    armed_more: Atomic<u32>,
    /// Times `flush` was called for an entry that names this object.
    flushed: Atomic<u32>,
    /// The result with which `start` finishes a request on this object ([`NOT_NOW`]: it does
    /// not).
    finish_now: Atomic<i64>,
    /// The result with which `submit` finishes a request on this object ([`NOT_NOW`]: it does
    /// not, and reports `submit_progress`).
    submit_now: Atomic<i64>,
    submit_progress: Atomic<i64>,
    /// The progress `start` was given after `submit` (-1: never).
    taken_over: Atomic<i64>,
    /// How many entries `submit_run` finishes (with results 100, 101, ...) ...
    run_finish: Atomic<u32>,
    /// ... and the progress it reports for the next one.
    run_progress: Atomic<i64>,
    /// The lengths of the runs `submit_run` was given, a decimal digit each, the first one
    /// highest.
    runs: Atomic<u64>,
}

/// `finish_now` of an object whose requests `start` does not finish.
const NOT_NOW: i64 = i64::MIN;

impl FakeObj {
    fn new() -> KBox<FakeObj> {
        KBox::new(
            FakeObj {
                storage: Opaque::new(bindings::kevent_storage {
                    list: core::ptr::null_mut(),
                }),
                level: Atomic::new(0),
                refs: Atomic::new(0),
                armed: Atomic::new(0),
                on_armed: Atomic::new(0),
                armed_more: Atomic::new(0),
                flushed: Atomic::new(0),
                finish_now: Atomic::new(NOT_NOW),
                submit_now: Atomic::new(NOT_NOW),
                submit_progress: Atomic::new(0),
                taken_over: Atomic::new(-1),
                run_finish: Atomic::new(0),
                run_progress: Atomic::new(0),
                runs: Atomic::new(0),
            },
            GFP_KERNEL,
        )
        .unwrap()
    }

    /// The `id` that names this object to the fake `get`.
    fn id(&self) -> u64 {
        self as *const FakeObj as usize as u64
    }

    /// What the embedding object would call on activity.
    fn fire(&self, events: u32, data: i64) {
        self.level.store(events, ordering::Relaxed);
        // SAFETY: The storage is valid, and `fini` is only called by the tests, after this.
        unsafe { extern_source::__kevent_storage_ready(self.storage.get(), events, data) };
    }

    /// What the embedding object would call when it dies.
    fn fini(&self, err: c_int) {
        // SAFETY: The storage is valid; the tests never call `fire` or add after this.
        unsafe { extern_source::__kevent_storage_fini(self.storage.get(), err) };
    }

    fn installed(&self) -> bool {
        // SAFETY: The storage is valid; nothing runs concurrently in these tests.
        !unsafe { (*self.storage.get()).list }.is_null()
    }

    fn refs(&self) -> i32 {
        self.refs.load(ordering::Relaxed)
    }
}

impl Drop for FakeObj {
    fn drop(&mut self) {
        // The object dies: free its storage as a real object would.
        self.fini(EPIPE.to_errno());
    }
}

/// The `get` of the fake sources, once they found the address of the object.
///
/// # Safety
///
/// `addr` is 0 or the address of a live `FakeObj`; the out-pointers are valid.
unsafe fn fake_hold(
    addr: u64,
    st: *mut *mut bindings::kevent_storage,
    obj: *mut *mut c_void,
) -> c_int {
    if addr == 0 {
        return EBADF.to_errno();
    }
    // SAFETY: Per the safety requirements.
    let fake = unsafe { &*(addr as usize as *const FakeObj) };
    fake.refs.add(1, ordering::Relaxed);
    // SAFETY: The out-pointers are valid.
    unsafe {
        *st = fake.storage.get();
        *obj = (fake as *const FakeObj).cast_mut().cast::<c_void>();
    }
    0
}

unsafe extern "C" fn fake_get(
    uk: *const bindings::ukevent,
    st: *mut *mut bindings::kevent_storage,
    obj: *mut *mut c_void,
) -> c_int {
    // SAFETY: The core passes a valid entry.
    let id = unsafe { (*uk).id };
    // SAFETY: The tests put the address of a live `FakeObj` (or 0) in `id`; the out-pointers
    // are valid.
    unsafe { fake_hold(id, st, obj) }
}

/// The request source's `get`: the object is named by `arg[0]` (so that many kevents with one
/// `id` can name different objects), and `arg[1]` must not be [`BAD_ARG`].
unsafe extern "C" fn fake_req_get(
    uk: *const bindings::ukevent,
    st: *mut *mut bindings::kevent_storage,
    obj: *mut *mut c_void,
) -> c_int {
    // SAFETY: The core passes a valid entry.
    let arg = unsafe { (*uk).arg };
    if arg[1] == BAD_ARG || arg[1] == BAD_ARG_LATE {
        return E2BIG.to_errno();
    }
    // SAFETY: The tests put the address of a live `FakeObj` (or 0) in `arg[0]`; the out-pointers
    // are valid.
    unsafe { fake_hold(arg[0], st, obj) }
}

unsafe extern "C" fn fake_armed(obj: *mut c_void, flags: c_uint) {
    // SAFETY: `obj` is what `fake_req_get` returned, a live `FakeObj`.
    let fake = unsafe { &*obj.cast::<FakeObj>() };
    fake.armed.add(1, ordering::Relaxed);
    if flags & bindings::KEVENT_ARMED_MORE != 0 {
        fake.armed_more.add(1, ordering::Relaxed);
    }
    let events = fake.on_armed.load(ordering::Relaxed);
    if events != 0 {
        // The object starts at once and reports: it must reach the kevent.
        fake.fire(events, 1);
    }
}

/// The request source's `start`: finishes the request with the object's `finish_now`, if set;
/// after `submit`, records the progress it was given.
unsafe extern "C" fn fake_start(obj: *mut c_void, flags: c_uint, result: *mut i64) -> c_int {
    // SAFETY: `obj` is what `fake_req_get` returned, a live `FakeObj`.
    let fake = unsafe { &*obj.cast::<FakeObj>() };
    if flags & bindings::KEVENT_START_SUBMITTED != 0 {
        // SAFETY: `result` is valid, and holds the progress of `submit`.
        fake.taken_over.store(unsafe { *result }, ordering::Relaxed);
        return 0;
    }
    let now = fake.finish_now.load(ordering::Relaxed);
    if now == NOT_NOW {
        return 0;
    }
    // SAFETY: `result` is a valid out-pointer.
    unsafe { *result = now };
    1
}

/// The `submit` of the request source with one: finishes the request with the object's
/// `submit_now`, if set, else reports `submit_progress` (nothing for an entry `get` refuses
/// outright, 2 for one it refuses after `submit` moved something).
unsafe extern "C" fn fake_submit(
    uk: *const bindings::ukevent,
    _flags: c_uint,
    result: *mut i64,
) -> c_int {
    // SAFETY: The core passes a valid entry.
    let arg = unsafe { (*uk).arg };
    let (done, value) = match arg[1] {
        BAD_ARG => (0, 0),
        BAD_ARG_LATE => (0, 2),
        _ => {
            // SAFETY: The tests put the address of a live `FakeObj` in `arg[0]`.
            let fake = unsafe { &*(arg[0] as usize as *const FakeObj) };
            match fake.submit_now.load(ordering::Relaxed) {
                NOT_NOW => (0, fake.submit_progress.load(ordering::Relaxed)),
                now => (1, now),
            }
        }
    };
    // SAFETY: `result` is a valid out-pointer.
    unsafe { *result = value };
    done
}

/// The `submit_run` of the request source with one: records the run's length on the object its
/// first entry names, and finishes its `run_finish` first entries (with 100, 101, ...), with
/// `run_progress` for the next.
unsafe extern "C" fn fake_submit_run(
    uk: *const bindings::ukevent,
    n: c_uint,
    results: *mut i64,
) -> c_int {
    // SAFETY: The core passes a valid entry.
    let addr = unsafe { (*uk).arg[0] };
    // SAFETY: The tests put the address of a live `FakeObj` in `arg[0]`.
    let fake = unsafe { &*(addr as usize as *const FakeObj) };
    fake.runs.store(
        fake.runs.load(ordering::Relaxed) * 10 + u64::from(n),
        ordering::Relaxed,
    );
    let k = fake.run_finish.load(ordering::Relaxed).min(n);
    for j in 0..k {
        // SAFETY: `results` has room for `n` values.
        unsafe { *results.add(j as usize) = 100 + i64::from(j) };
    }
    if k < n {
        // SAFETY: As above.
        unsafe { *results.add(k as usize) = fake.run_progress.load(ordering::Relaxed) };
    }
    k as c_int
}

/// The request source's `flush`: counts the call on the object the entry names.
unsafe extern "C" fn fake_flush(uk: *const bindings::ukevent) {
    // SAFETY: The core passes a valid entry.
    let addr = unsafe { (*uk).arg[0] };
    if addr != 0 {
        // SAFETY: The tests put the address of a live `FakeObj` (or 0) in `arg[0]`.
        let fake = unsafe { &*(addr as usize as *const FakeObj) };
        fake.flushed.add(1, ordering::Relaxed);
    }
}

unsafe extern "C" fn fake_put(obj: *mut c_void) {
    // SAFETY: `obj` is what `fake_get` returned, a live `FakeObj`.
    let fake = unsafe { &*obj.cast::<FakeObj>() };
    fake.refs.add(-1, ordering::Relaxed);
}

/// The fake `notified`: what the object's level says of `requested` (as `fake_recheck`), and
/// the notification's `events` as the result, so that a test sees which mask it was given.
unsafe extern "C" fn fake_notified(
    obj: *mut c_void,
    events: u32,
    requested: u32,
    data: *mut i64,
) -> u32 {
    // SAFETY: `obj` is what `fake_get` returned, a live `FakeObj`.
    let fake = unsafe { &*obj.cast::<FakeObj>() };
    // SAFETY: `data` is a valid out-pointer.
    unsafe { *data = i64::from(events) };
    fake.level.load(ordering::Relaxed) & requested
}

unsafe extern "C" fn fake_recheck(obj: *mut c_void, events: u32, data: *mut i64) -> u32 {
    // SAFETY: `obj` is what `fake_get` returned, a live `FakeObj`.
    let fake = unsafe { &*obj.cast::<FakeObj>() };
    let ready = fake.level.load(ordering::Relaxed) & events;
    if ready & OUT != 0 {
        // SAFETY: `data` is a valid out-pointer.
        unsafe { *data = OUT_DATA };
    }
    ready
}

/// A fake table: a source with level state, or a weak one without.
const fn fake_ops(weak: bool) -> bindings::kevent_source_ops {
    // SAFETY: All zeroes is a valid table: integers, `false` and `None` callbacks.
    let mut ops: bindings::kevent_source_ops = unsafe { core::mem::zeroed() };
    ops.type_ = FAKE_TYPE;
    ops.events = IN | OUT;
    ops.weak = weak;
    ops.get = Some(fake_get);
    ops.put = Some(fake_put);
    if !weak {
        ops.recheck = Some(fake_recheck);
    }
    ops
}

/// A source of requests: arguments, an extra flag, keyed by `user_data`, oneshot, cancelled
/// with `ECANCELED`, armed.
const fn req_ops(cancel_errno: c_int) -> bindings::kevent_source_ops {
    // SAFETY: All zeroes is a valid table: integers, `false` and `None` callbacks.
    let mut ops: bindings::kevent_source_ops = unsafe { core::mem::zeroed() };
    ops.type_ = REQ_TYPE;
    ops.events = IN | OUT;
    ops.flags = REQ_FLAG;
    ops.takes_args = true;
    ops.keyed_by_user_data = true;
    ops.oneshot = true;
    ops.cancel_errno = cancel_errno;
    ops.get = Some(fake_req_get);
    ops.put = Some(fake_put);
    ops.armed = Some(fake_armed);
    ops.flush = Some(fake_flush);
    ops.start = Some(fake_start);
    ops
}

/// The level source, able to narrow a notification where it is made (`notified`).
const fn notified_ops() -> bindings::kevent_source_ops {
    let mut ops = fake_ops(false);
    ops.notified = Some(fake_notified);
    ops
}

static LEVEL_OPS: bindings::kevent_source_ops = fake_ops(false);
static NOTIFIED_OPS: bindings::kevent_source_ops = notified_ops();
static WEAK_OPS: bindings::kevent_source_ops = fake_ops(true);
static REQ_OPS: bindings::kevent_source_ops = req_ops(bindings::ECANCELED as c_int);
static SUBMIT_OPS: bindings::kevent_source_ops = submit_ops();
static RUN_OPS: bindings::kevent_source_ops = run_ops();

/// The source of requests with `submit` and `submit_run`.
const fn run_ops() -> bindings::kevent_source_ops {
    let mut ops = submit_ops();
    ops.submit_run = Some(fake_submit_run);
    ops
}

/// The source of [`REQ_TYPE`] with runs, for [`syscalls::apply`].
fn run_source_of(ty: u32) -> Option<&'static dyn Source> {
    // SAFETY: A static table that follows the contract.
    (ty == REQ_TYPE).then(|| unsafe { ExternSource::from_ops(&RUN_OPS) } as &dyn Source)
}

/// The source of requests, with `submit`.
const fn submit_ops() -> bindings::kevent_source_ops {
    let mut ops = req_ops(bindings::ECANCELED as c_int);
    ops.submit = Some(fake_submit);
    ops
}

fn submit_src() -> &'static ExternSource {
    // SAFETY: A static table that follows the contract.
    unsafe { ExternSource::from_ops(&SUBMIT_OPS) }
}

fn level_src() -> &'static ExternSource {
    // SAFETY: A static table that follows the contract.
    unsafe { ExternSource::from_ops(&LEVEL_OPS) }
}

fn notified_src() -> &'static ExternSource {
    // SAFETY: A static table that follows the contract.
    unsafe { ExternSource::from_ops(&NOTIFIED_OPS) }
}

fn weak_src() -> &'static ExternSource {
    // SAFETY: A static table that follows the contract.
    unsafe { ExternSource::from_ops(&WEAK_OPS) }
}

fn req_src() -> &'static ExternSource {
    // SAFETY: A static table that follows the contract.
    unsafe { ExternSource::from_ops(&REQ_OPS) }
}

/// The sources of the tests' types, for [`syscalls::apply`].
fn test_source_of(ty: u32) -> Option<&'static dyn Source> {
    match ty {
        REQ_TYPE => Some(req_src()),
        FAKE_TYPE => Some(level_src()),
        _ => None,
    }
}

/// A request on "descriptor" 5 for the object `obj`, named by `user_data`.
fn req(obj: &FakeObj, user_data: u64, event: u32) -> Ukevent {
    let mut uk = Ukevent::zeroed();
    uk.0.type_ = REQ_TYPE;
    uk.0.id = 5;
    uk.0.event = event;
    uk.0.user_data = user_data;
    uk.0.arg = [obj.id(), 1];
    uk.0.arg_fd = 7;
    uk
}

/// `-ECANCELED`, as delivered.
fn ecanceled() -> i64 {
    -i64::from(bindings::ECANCELED)
}

fn uk(id: u64, event: u32, flags: u32) -> Ukevent {
    let mut uk = Ukevent::zeroed();
    uk.0.type_ = FAKE_TYPE;
    uk.0.id = id;
    uk.0.event = event;
    uk.0.req_flags = flags;
    uk.0.user_data = 0x2000 + id;
    uk
}

#[kunit_tests(kevent_extern_source)]
mod tests {
    use super::*;

    #[test]
    fn ring_takes_what_needs_nothing_at_delivery() {
        let (et, lt, once) = (FakeObj::new(), FakeObj::new(), FakeObj::new());
        let q = TestQueue::with_ring(4);
        let ring = q.ring.as_ref().unwrap();
        let qb = q.as_arc_borrow();
        assert_eq!(
            qb.add(notified_src(), &uk(et.id(), IN, KEVENT_REQ_ET), false),
            Ok(())
        );
        assert_eq!(qb.add(notified_src(), &uk(lt.id(), IN, 0), false), Ok(()));
        assert_eq!(
            qb.add(
                notified_src(),
                &uk(once.id(), IN, KEVENT_REQ_ONESHOT),
                false
            ),
            Ok(())
        );
        // Edge triggered: into the ring, narrowed by `notified`, which saw the whole mask.
        et.fire(IN | OUT, 0);
        assert_eq!(q.nr_ready(), 0);
        let ev = ring.pop().unwrap();
        assert_eq!(
            (ev.id, ev.event, ev.ret_data),
            (et.id(), IN, i64::from(IN | OUT))
        );
        assert_eq!(ev.user_data, 0x2000 + et.id());
        // Each notification is an event of its own.
        et.fire(IN, 0);
        et.fire(IN, 0);
        assert!(ring.pop().is_some() && ring.pop().is_some() && ring.pop().is_none());
        // Nothing ready when notified: dropped.
        et.level.store(0, ordering::Relaxed);
        // SAFETY: The storage is valid; `fini` is only called when the object is dropped.
        unsafe { extern_source::__kevent_storage_ready(et.storage.get(), IN, 0) };
        assert!(ring.pop().is_none());
        assert_eq!(q.nr_ready(), 0);
        // Level triggered: the ready list, and its re-check at delivery.
        lt.fire(IN, 0);
        assert!(ring.pop().is_none());
        assert_eq!(q.nr_ready(), 1);
        assert_eq!(poll(&q, 4).got.len(), 1);
        assert_eq!(q.remove(notified_src(), &uk(lt.id(), IN, 0)), Ok(()));
        assert_eq!(q.nr_ready(), 0);
        // Oneshot: into the ring, then out of the queue at the next hold of its index.
        once.fire(IN, 0);
        assert_eq!(ring.pop().map(|ev| ev.id), Some(once.id()));
        assert_eq!(once.refs(), 1);
        // Still in the queue (with `et`; `lt` was removed) until the next hold of the index.
        assert_eq!(q.nr_kevents(), 2);
        once.fire(IN, 0);
        assert!(ring.pop().is_none());
        q.reap(&mut q.index.lock());
        assert_eq!(q.nr_kevents(), 1);
        assert_eq!(once.refs(), 0);
        assert_eq!(q.remove(notified_src(), &uk(once.id(), IN, 0)), Err(ENOENT));
        // Added again while ready: into the ring by the registration's re-check.
        assert_eq!(
            qb.add(
                notified_src(),
                &uk(once.id(), IN, KEVENT_REQ_ONESHOT),
                false
            ),
            Ok(())
        );
        assert_eq!(ring.pop().map(|ev| ev.id), Some(once.id()));
        // Full: the ready list, counted; a kevent on it is not written into the ring again.
        for _ in 0..4 {
            et.level.store(IN, ordering::Relaxed);
            et.fire(IN, 0);
        }
        et.fire(IN, 0);
        assert_eq!(q.nr_ready(), 1);
        et.fire(IN, 0);
        assert_eq!(q.nr_ready(), 1);
        assert_eq!(ring.pop().map(|ev| ev.id), Some(et.id()));
        et.fire(IN, 0);
        assert_eq!(q.nr_ready(), 1);
        let evs = poll(&q, 4).got;
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].0.id, et.id());
    }

    #[test]
    fn install_on_first_add_and_refs() {
        // The queue goes first: its kevents drop their references to the object.
        let obj = FakeObj::new();
        let q = TestQueue::new();
        assert!(!obj.installed());
        assert_eq!(
            q.as_arc_borrow()
                .add(level_src(), &uk(obj.id(), IN, 0), false),
            Ok(())
        );
        assert!(obj.installed());
        assert_eq!(obj.refs(), 1);
        assert_eq!(q.remove(level_src(), &uk(obj.id(), IN, 0)), Ok(()));
        assert_eq!(obj.refs(), 0);
        // The storage stays installed until the object dies.
        assert!(obj.installed());
        obj.fini(EPIPE.to_errno());
        assert!(!obj.installed());
        // A second fini is a no-op.
        obj.fini(EPIPE.to_errno());
    }

    #[test]
    fn get_errors_and_args() {
        let obj = FakeObj::new();
        let q = TestQueue::new();
        assert_eq!(
            q.as_arc_borrow().add(level_src(), &uk(0, IN, 0), false),
            Err(EBADF)
        );
        let mut bad = uk(obj.id(), IN, 0);
        bad.0.arg[1] = 1;
        assert_eq!(q.as_arc_borrow().add(level_src(), &bad, false), Err(EINVAL));
        let mut bad = uk(obj.id(), IN, 0);
        bad.0.arg_fd = 3;
        assert_eq!(q.as_arc_borrow().add(level_src(), &bad, false), Err(EINVAL));
        assert_eq!(
            q.as_arc_borrow()
                .add(level_src(), &uk(obj.id(), 0x4, 0), false),
            Err(EINVAL)
        );
        assert_eq!(obj.refs(), 0);
    }

    #[test]
    fn level_recheck_narrows_and_reports_data() {
        let obj = FakeObj::new();
        let q = TestQueue::new();
        q.as_arc_borrow()
            .add(level_src(), &uk(obj.id(), IN | OUT, 0), false)
            .unwrap();
        assert_eq!(q.nr_ready(), 0);
        // A coarse notification; the re-check reports only what is ready.
        obj.level.store(OUT, ordering::Relaxed);
        // SAFETY: As in `FakeObj::fire`.
        unsafe { extern_source::__kevent_storage_ready(obj.storage.get(), IN | OUT, 0) };
        let got = poll(&q, 8).got;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.event, OUT);
        assert_eq!(got[0].0.ret_data, OUT_DATA);
        // Level triggered: again while ready, not once it is not.
        assert_eq!(poll(&q, 8).got.len(), 1);
        obj.level.store(0, ordering::Relaxed);
        assert_eq!(poll(&q, 8).got.len(), 0);
        assert_eq!(q.remove(level_src(), &uk(obj.id(), IN, 0)), Ok(()));
        assert_eq!(obj.refs(), 0);
    }

    #[test]
    fn ready_at_registration() {
        let obj = FakeObj::new();
        let q = TestQueue::new();
        obj.level.store(IN, ordering::Relaxed);
        q.as_arc_borrow()
            .add(level_src(), &uk(obj.id(), IN, KEVENT_REQ_ET), false)
            .unwrap();
        let got = poll(&q, 8).got;
        assert_eq!((got.len(), got[0].0.event), (1, IN));
        // Edge triggered: nothing more without new activity.
        assert_eq!(poll(&q, 8).got.len(), 0);
        obj.fire(IN, 0);
        assert_eq!(poll(&q, 8).got.len(), 1);
    }

    #[test]
    fn weak_source_value_data() {
        let obj = FakeObj::new();
        let q = TestQueue::new();
        q.as_arc_borrow()
            .add(weak_src(), &uk(obj.id(), IN | OUT, 0), false)
            .unwrap();
        // Weak: no reference kept once registered.
        assert_eq!(obj.refs(), 0);
        // Values, not counts: the last one wins.
        obj.fire(IN, 41);
        obj.fire(IN, 42);
        let got = poll(&q, 8).got;
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0.event, got[0].0.ret_data), (IN, 42));
        // No level state: reported once per activity.
        assert_eq!(poll(&q, 8).got.len(), 0);
    }

    #[test]
    fn fini_reports_broken_once_and_detach_after_is_safe() {
        let obj = FakeObj::new();
        let q = TestQueue::new();
        q.as_arc_borrow()
            .add(weak_src(), &uk(obj.id(), IN, 0), false)
            .unwrap();
        // The same object, another kevent in another queue.
        let second = uk(obj.id(), OUT, 0);
        let q2 = TestQueue::new();
        q2.as_arc_borrow().add(weak_src(), &second, false).unwrap();
        obj.fini(ENOENT.to_errno());
        assert!(!obj.installed());
        let got = poll(&q, 8).got;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.ret_flags, KEVENT_RET_BROKEN);
        assert_eq!(got[0].0.ret_data, ENOENT.to_errno().into());
        // Removed after the report.
        assert_eq!(q.remove(weak_src(), &uk(obj.id(), IN, 0)), Err(ENOENT));
        // The other kevent was reported broken too; removing it before delivery detaches it
        // from a storage that is no longer installed: a no-op dequeue.
        assert_eq!(q2.remove(weak_src(), &second), Ok(()));
        assert_eq!(poll(&q2, 8).got.len(), 0);
        // Later activity reaches nobody.
        obj.fire(IN, 1);
        assert_eq!(poll(&q, 8).got.len(), 0);
    }

    #[test]
    fn batch_hint_and_flush() {
        let (a, b, l) = (FakeObj::new(), FakeObj::new(), FakeObj::new());
        let q = TestQueue::new();
        let count = |o: &FakeObj| {
            (
                o.armed.load(ordering::Relaxed),
                o.armed_more.load(ordering::Relaxed),
                o.flushed.load(ordering::Relaxed),
            )
        };
        // A run of three of one operation on one descriptor, then another operation on it (a
        // run of one: no hint, no flush); a run of two on another descriptor whose last entry
        // fails; two level kevents with one key (their source takes no hints).
        let mut c = req(&b, 5, IN);
        c.0.id = 6;
        let mut d = req(&b, 6, IN);
        d.0.id = 6;
        d.0.arg[1] = BAD_ARG;
        let entries = [
            req(&a, 1, IN),
            req(&a, 2, IN),
            req(&a, 3, IN),
            req(&a, 4, OUT),
            c,
            d,
            uk(l.id(), IN, 0),
            uk(l.id(), IN, 0),
        ];
        let mut batch = KVec::new();
        for e in entries {
            batch.push(e, GFP_KERNEL).unwrap();
        }
        let done = syscalls::apply(
            q.as_arc_borrow(),
            KEVENT_CTL_ADD,
            &mut batch,
            test_source_of,
        );
        assert_eq!(done, 6);
        // All but the last of a run are armed with the hint; one flush after the run.
        assert_eq!(count(&a), (4, 2, 1));
        // The run's last entry failed (in `get`, so it was never armed): flushed all the same.
        assert_eq!(count(&b), (1, 1, 1));
        assert_eq!(batch[5].0.ret_flags, KEVENT_RET_BROKEN);
        assert_eq!(batch[5].0.ret_data, E2BIG.to_errno().into());
        assert_eq!(batch[7].0.ret_data, EEXIST.to_errno().into());
        assert_eq!(l.refs(), 1);
        // Hints are for additions only.
        let mut batch = KVec::new();
        batch.push(req(&a, 1, IN), GFP_KERNEL).unwrap();
        batch.push(req(&a, 2, IN), GFP_KERNEL).unwrap();
        let done = syscalls::apply(
            q.as_arc_borrow(),
            KEVENT_CTL_REMOVE,
            &mut batch,
            test_source_of,
        );
        assert_eq!(done, 2);
        assert_eq!(count(&a), (4, 2, 1));
    }

    #[test]
    fn runs_are_tried_together() {
        let (a, b) = (FakeObj::new(), FakeObj::new());
        let q = TestQueue::new();
        let apply_to = |q: &TestQueue, entries: &[Ukevent]| {
            let mut batch = KVec::new();
            for e in entries {
                batch.push(*e, GFP_KERNEL).unwrap();
            }
            let done =
                syscalls::apply(q.as_arc_borrow(), KEVENT_CTL_ADD, &mut batch, run_source_of);
            (done, batch)
        };
        let apply = |entries: &[Ukevent]| apply_to(&q, entries);
        let delivered = |max: usize| {
            let mut got: KVec<(u64, i64)> = KVec::new();
            for e in poll(&q, max).got.iter() {
                got.push((e.0.user_data, e.0.ret_data), GFP_KERNEL).unwrap();
            }
            got.sort_unstable();
            got
        };
        // A run of four: two finish in the run, the third made progress in it and goes on from
        // there (its `start` takes the progress over), the fourth was not touched and goes
        // through `submit` (which leaves it to `start` with 0); then a run of one on another
        // object, which is not tried.
        a.run_finish.store(2, ordering::Relaxed);
        a.run_progress.store(5, ordering::Relaxed);
        b.submit_now.store(7, ordering::Relaxed);
        let (done, _) = apply(&[
            req(&a, 1, IN),
            req(&a, 2, IN),
            req(&a, 3, IN),
            req(&a, 4, IN),
            req(&b, 5, OUT),
        ]);
        assert_eq!(done, 5);
        let runs = |o: &FakeObj| o.runs.load(ordering::Relaxed);
        assert_eq!((runs(&a), runs(&b)), (4, 0));
        assert_eq!((a.refs(), a.armed.load(ordering::Relaxed)), (2, 2));
        assert_eq!(a.taken_over.load(ordering::Relaxed), 0);
        assert_eq!(&delivered(8)[..], &[(1, 100), (2, 101), (5, 7)]);
        a.fire(IN, 9);
        assert_eq!(&delivered(8)[..], &[(3, 9), (4, 9)]);
        assert_eq!((q.nr_kevents(), a.refs()), (0, 0));
        // A run is cut before an entry the core refuses or whose key an entry before it in the
        // run has; a new one may start after it. Those entries are added as any, and fail as
        // any: a bad entry with `EINVAL`, the second 10 with `EEXIST` (the result of the first
        // is kept until it is delivered).
        a.run_finish.store(8, ordering::Relaxed);
        a.runs.store(0, ordering::Relaxed);
        let mut bad = req(&a, 12, IN);
        bad.0.reserved = 1;
        let (done, batch) = apply(&[
            req(&a, 10, IN),
            req(&a, 11, IN),
            req(&a, 10, IN),
            req(&a, 13, IN),
            bad,
            req(&a, 14, IN),
            req(&a, 15, IN),
        ]);
        assert_eq!(done, 5);
        assert_eq!(batch[2].0.ret_data, EEXIST.to_errno().into());
        assert_eq!(batch[4].0.ret_data, EINVAL.to_errno().into());
        // Runs of 10 and 11, and of 14 and 15; 13, followed by the bad entry, was alone.
        assert_eq!(runs(&a), 22);
        assert_eq!(a.refs(), 1);
        assert_eq!(
            &delivered(16)[..],
            &[(10, 100), (11, 101), (14, 100), (15, 101)]
        );
        a.fire(IN, 9);
        assert_eq!(&delivered(8)[..], &[(13, 9)]);
        assert_eq!((q.nr_kevents(), a.refs()), (0, 0));
        // At the per-user limit, a run is cut before the entry it cannot charge: with room for
        // two kevents (and none registered), four entries go as two runs of two, all finished
        // into a ring, as they would one by one.
        let r = TestQueue::with_ring(8);
        a.runs.store(0, ordering::Relaxed);
        let limit = &raw mut bindings::kevent_max_user_kevents;
        // SAFETY: The sysctl is a plain `long`; nothing else registers kevents during KUnit.
        let saved = unsafe { limit.read_volatile() };
        // SAFETY: As above. It is put back before anything is asserted.
        unsafe { limit.write_volatile(2) };
        let (done, _) = apply_to(&r, &[20, 21, 22, 23].map(|ud| req(&a, ud, IN)));
        // SAFETY: As above.
        unsafe { limit.write_volatile(saved) };
        assert_eq!((done, runs(&a)), (4, 22));
        let ring = r.ring.as_ref().unwrap();
        let mut got = KVec::new();
        while let Some(ev) = ring.pop() {
            got.push((ev.user_data, ev.ret_data), GFP_KERNEL).unwrap();
        }
        assert_eq!(&got[..], &[(20, 100), (21, 101), (22, 100), (23, 101)]);
        assert_eq!((r.nr_kevents(), a.refs()), (0, 0));
        // A ring with room for two: the run's first results go into it, the third, which
        // finds it full, is reported by a kevent of its own, as one by one.
        let small = TestQueue::with_ring(2);
        let (done, _) = apply_to(&small, &[30, 31, 32].map(|ud| req(&a, ud, IN)));
        assert_eq!(done, 3);
        let ring = small.ring.as_ref().unwrap();
        let (e0, e1) = (ring.pop().unwrap(), ring.pop().unwrap());
        assert_eq!((e0.user_data, e0.ret_data, e1.user_data), (30, 100, 31));
        assert!(ring.pop().is_none());
        let got = poll(&small, 4).got;
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0.user_data, got[0].0.ret_data), (32, 102));
        assert_eq!(small.nr_kevents(), 0);
    }

    #[test]
    fn finished_at_start() {
        let obj = FakeObj::new();
        let q = TestQueue::new();
        let qb = q.as_arc_borrow();
        obj.finish_now.store(7, ordering::Relaxed);
        assert_eq!(qb.add(req_src(), &req(&obj, 1, IN), false), Ok(()));
        // Reported, and nothing registered or kept: no storage, no reference, never armed.
        assert!(!obj.installed());
        assert_eq!(obj.refs(), 0);
        assert_eq!(obj.armed.load(ordering::Relaxed), 0);
        // Kept for delivery without a kevent, holding its key until it is delivered; REMOVE
        // leaves it to be delivered.
        assert_eq!((q.nr_kevents(), q.nr_ready()), (0, 1));
        assert_eq!(qb.add(req_src(), &req(&obj, 1, OUT), false), Err(EEXIST));
        assert_eq!(q.remove(req_src(), &req(&obj, 1, IN)), Ok(()));
        // A failure is reported broken, with the request's event.
        obj.finish_now
            .store(EIO.to_errno().into(), ordering::Relaxed);
        assert_eq!(qb.add(req_src(), &req(&obj, 2, OUT), false), Ok(()));
        assert_eq!((q.nr_kevents(), q.nr_ready()), (0, 2));
        // A request that `start` does not finish is registered and armed as before.
        obj.finish_now.store(NOT_NOW, ordering::Relaxed);
        assert_eq!(qb.add(req_src(), &req(&obj, 3, IN), false), Ok(()));
        assert!(obj.installed());
        assert_eq!((obj.refs(), obj.armed.load(ordering::Relaxed)), (1, 1));
        // Once a kevent is ready, a finished request takes a kevent too, behind it: the kept
        // results, delivered first, are older than every ready kevent.
        obj.fire(IN, 4);
        obj.finish_now.store(8, ordering::Relaxed);
        assert_eq!(qb.add(req_src(), &req(&obj, 4, IN), false), Ok(()));
        assert_eq!(q.nr_kevents(), 2);
        // The same for its kevent.
        assert_eq!(qb.add(req_src(), &req(&obj, 4, OUT), false), Err(EEXIST));
        assert_eq!(q.remove(req_src(), &req(&obj, 4, IN)), Ok(()));
        let got = poll(&q, 8).got;
        assert_eq!(got.len(), 4);
        assert_eq!((got[0].0.user_data, got[0].0.event), (1, IN));
        assert_eq!(
            (got[0].0.ret_flags, got[0].0.ret_data),
            (KEVENT_RET_DONE, 7)
        );
        assert_eq!((got[1].0.user_data, got[1].0.event), (2, OUT));
        assert_eq!(got[1].0.ret_flags, KEVENT_RET_BROKEN);
        assert_eq!(got[1].0.ret_data, EIO.to_errno().into());
        assert_eq!((got[2].0.user_data, got[2].0.ret_data), (3, 4));
        assert_eq!((got[3].0.user_data, got[3].0.ret_data), (4, 8));
        assert_eq!((q.nr_kevents(), q.nr_ready(), obj.refs()), (0, 0, 0));
    }

    #[test]
    fn kept_results_are_not_lost_to_a_fault() {
        let obj = FakeObj::new();
        let q = TestQueue::new();
        let qb = q.as_arc_borrow();
        obj.finish_now.store(5, ordering::Relaxed);
        for i in 1..=3 {
            assert_eq!(qb.add(req_src(), &req(&obj, i, IN), false), Ok(()));
        }
        // A sink that takes one event, then faults: the rest stay kept, first in line.
        let mut sink = VecSink::new(1);
        assert_eq!(q.get_events(1, 8, None, true, &mut sink), Ok(1));
        assert_eq!(sink.got[0].0.user_data, 1);
        assert_eq!(q.nr_ready(), 2);
        let mut sink = VecSink::new(0);
        assert_eq!(q.get_events(1, 8, None, true, &mut sink), Err(EFAULT));
        let got = poll(&q, 8).got;
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].0.user_data, got[1].0.user_data), (2, 3));
        assert_eq!(q.nr_ready(), 0);
    }

    #[test]
    fn finished_at_start_into_the_ring() {
        let obj = FakeObj::new();
        let q = TestQueue::with_ring(2);
        let ring = q.ring.as_ref().unwrap();
        let qb = q.as_arc_borrow();
        obj.finish_now.store(7, ordering::Relaxed);
        // Written into the ring without a kevent: nothing indexed, registered or kept.
        assert_eq!(qb.add(req_src(), &req(&obj, 1, IN), false), Ok(()));
        assert_eq!((q.nr_kevents(), q.nr_ready()), (0, 0));
        assert!(!obj.installed());
        assert_eq!((obj.refs(), obj.armed.load(ordering::Relaxed)), (0, 0));
        let ev = ring.pop().unwrap();
        assert_eq!((ev.ty, ev.id, ev.event), (REQ_TYPE, 5, IN));
        assert_eq!((ev.user_data, ev.ret_data), (1, 7));
        // Its key is free at once.
        assert_eq!(qb.add(req_src(), &req(&obj, 1, OUT), false), Ok(()));
        assert_eq!(qb.add(req_src(), &req(&obj, 2, IN), false), Ok(()));
        assert_eq!(q.nr_kevents(), 0);
        // The ring is full: the next one takes a kevent and the ready list, and keeps its key
        // until it is delivered.
        assert_eq!(qb.add(req_src(), &req(&obj, 3, IN), false), Ok(()));
        assert_eq!((q.nr_kevents(), q.nr_ready()), (1, 1));
        // Counted once, by the kevent's notification.
        assert_eq!(q.ready.lock().producer.overflow(), 1);
        assert_eq!(qb.add(req_src(), &req(&obj, 3, IN), false), Err(EEXIST));
        // A failure is reported broken, on the ready list (the ring reports only successes).
        obj.finish_now
            .store(EIO.to_errno().into(), ordering::Relaxed);
        assert!(ring.pop().is_some() && ring.pop().is_some());
        assert_eq!(qb.add(req_src(), &req(&obj, 4, OUT), false), Ok(()));
        assert!(ring.pop().is_none());
        let got = poll(&q, 8).got;
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].0.user_data, got[0].0.ret_data), (3, 7));
        assert_eq!(got[0].0.ret_flags, KEVENT_RET_DONE);
        assert_eq!(
            (got[1].0.user_data, got[1].0.ret_flags),
            (4, KEVENT_RET_BROKEN)
        );
        assert_eq!(got[1].0.ret_data, EIO.to_errno().into());
        // Not finished: registered and armed, and its completion takes the ring.
        obj.finish_now.store(NOT_NOW, ordering::Relaxed);
        assert_eq!(qb.add(req_src(), &req(&obj, 5, IN), false), Ok(()));
        assert!(obj.installed());
        assert_eq!((obj.refs(), obj.armed.load(ordering::Relaxed)), (1, 1));
        obj.fire(IN, 4);
        let ev = ring.pop().unwrap();
        assert_eq!((ev.user_data, ev.ret_data), (5, 4));
        q.reap(&mut q.index.lock());
        assert_eq!((q.nr_kevents(), obj.refs()), (0, 0));
    }

    #[test]
    fn submitted_before_get() {
        let obj = FakeObj::new();
        let q = TestQueue::new();
        let qb = q.as_arc_borrow();
        let src = submit_src();
        // Finished by `submit`: no object was got; a kevent reports it.
        obj.submit_now.store(9, ordering::Relaxed);
        assert_eq!(qb.add(src, &req(&obj, 1, IN), false), Ok(()));
        assert!(!obj.installed());
        assert_eq!((obj.refs(), obj.armed.load(ordering::Relaxed)), (0, 0));
        obj.submit_now
            .store(EIO.to_errno().into(), ordering::Relaxed);
        assert_eq!(qb.add(src, &req(&obj, 2, OUT), false), Ok(()));
        // What `get` refuses, with nothing moved, fails the entry; after progress, the request.
        let mut bad = req(&obj, 3, IN);
        bad.0.arg[1] = BAD_ARG;
        assert_eq!(qb.add(src, &bad, false), Err(E2BIG));
        let mut late = req(&obj, 4, IN);
        late.0.arg[1] = BAD_ARG_LATE;
        assert_eq!(qb.add(src, &late, false), Ok(()));
        assert_eq!(obj.refs(), 0);
        let got = poll(&q, 8).got;
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0].0.user_data, got[0].0.ret_flags),
            (1, KEVENT_RET_DONE)
        );
        assert_eq!(got[0].0.ret_data, 9);
        assert_eq!(
            (got[1].0.user_data, got[1].0.ret_flags),
            (2, KEVENT_RET_BROKEN)
        );
        assert_eq!(
            (got[1].0.event, got[1].0.ret_data),
            (OUT, EIO.to_errno().into())
        );
        assert_eq!(
            (got[2].0.user_data, got[2].0.ret_flags),
            (4, KEVENT_RET_BROKEN)
        );
        assert_eq!(got[2].0.ret_data, E2BIG.to_errno().into());
        assert_eq!(q.nr_kevents(), 0);
        // Not finished: the object is got, takes the progress over, and is registered and
        // armed; `start` does not run its own first try.
        obj.submit_now.store(NOT_NOW, ordering::Relaxed);
        obj.submit_progress.store(3, ordering::Relaxed);
        obj.finish_now.store(7, ordering::Relaxed);
        assert_eq!(qb.add(src, &req(&obj, 5, IN), false), Ok(()));
        assert_eq!(obj.taken_over.load(ordering::Relaxed), 3);
        assert!(obj.installed());
        assert_eq!((obj.refs(), obj.armed.load(ordering::Relaxed)), (1, 1));
        obj.fire(IN, 4);
        let got = poll(&q, 8).got;
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0.user_data, got[0].0.ret_data), (5, 4));
        assert_eq!((q.nr_kevents(), obj.refs()), (0, 0));
        // With a ring, a finished request is written into it without a kevent.
        let r = TestQueue::with_ring(4);
        obj.submit_now.store(11, ordering::Relaxed);
        assert_eq!(
            r.as_arc_borrow().add(src, &req(&obj, 6, OUT), false),
            Ok(())
        );
        assert_eq!((r.nr_kevents(), r.nr_ready(), obj.refs()), (0, 0, 0));
        let ev = r.ring.as_ref().unwrap().pop().unwrap();
        assert_eq!((ev.user_data, ev.event, ev.ret_data), (6, OUT, 11));
    }

    #[test]
    fn args_and_flags_reach_the_source() {
        let obj = FakeObj::new();
        let q = TestQueue::new();
        // Non-zero `arg` and `arg_fd`, and the extra flag: the source's to check.
        let mut a = req(&obj, 1, IN);
        a.0.req_flags = REQ_FLAG | KEVENT_REQ_ET;
        assert_eq!(q.as_arc_borrow().add(req_src(), &a, false), Ok(()));
        assert_eq!(obj.refs(), 1);
        // `get` sees them as given.
        let mut bad = req(&obj, 2, IN);
        bad.0.arg[1] = BAD_ARG;
        assert_eq!(q.as_arc_borrow().add(req_src(), &bad, false), Err(E2BIG));
        // A flag that neither the core nor the source knows.
        let mut bad = req(&obj, 3, IN);
        bad.0.req_flags = 0x20;
        assert_eq!(q.as_arc_borrow().add(req_src(), &bad, false), Err(EINVAL));
        // The other sources still refuse the extra flag.
        let mut bad = uk(obj.id(), IN, REQ_FLAG);
        bad.0.type_ = FAKE_TYPE;
        assert_eq!(q.as_arc_borrow().add(level_src(), &bad, false), Err(EINVAL));
        assert_eq!(obj.refs(), 1);
    }

    #[test]
    fn keyed_by_user_data() {
        let (a, b) = (FakeObj::new(), FakeObj::new());
        let q = TestQueue::new();
        assert_eq!(
            q.as_arc_borrow().add(req_src(), &req(&a, 1, IN), false),
            Ok(())
        );
        // The same id, another user_data: another kevent.
        assert_eq!(
            q.as_arc_borrow().add(req_src(), &req(&b, 2, OUT), false),
            Ok(())
        );
        assert_eq!(
            q.as_arc_borrow().add(req_src(), &req(&b, 1, OUT), false),
            Err(EEXIST)
        );
        // MODIFY would change the key.
        assert_eq!(
            q.as_arc_borrow().modify(req_src(), &req(&a, 1, IN)),
            Err(EINVAL)
        );
        assert_eq!(q.remove(req_src(), &req(&a, 3, IN)), Err(ENOENT));
        // Each reports its own.
        b.fire(OUT, 9);
        let got = poll(&q, 8).got;
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0.id, got[0].0.user_data), (5, 2));
        assert_eq!((got[0].0.event, got[0].0.ret_data), (OUT, 9));
        assert_eq!((a.refs(), b.refs()), (1, 0));
    }

    #[test]
    fn oneshot_source() {
        let obj = FakeObj::new();
        let q = TestQueue::new();
        // No KEVENT_REQ_ONESHOT in the request: the source makes it oneshot.
        q.as_arc_borrow()
            .add(req_src(), &req(&obj, 1, IN), false)
            .unwrap();
        obj.fire(IN, 3);
        let got = poll(&q, 8).got;
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].0.ret_flags, got[0].0.ret_data),
            (KEVENT_RET_DONE, 3)
        );
        // The request flags are reported as given.
        assert_eq!(got[0].0.req_flags, 0);
        // Removed after its delivery.
        assert_eq!(obj.refs(), 0);
        assert_eq!(q.remove(req_src(), &req(&obj, 1, IN)), Err(ENOENT));
        obj.fire(IN, 4);
        assert_eq!(poll(&q, 8).got.len(), 0);
    }

    #[test]
    fn armed_after_registration() {
        let obj = FakeObj::new();
        let q = TestQueue::new();
        // The object reports as soon as it is armed: the kevent is registered by then.
        obj.on_armed.store(IN, ordering::Relaxed);
        q.as_arc_borrow()
            .add(req_src(), &req(&obj, 1, IN), false)
            .unwrap();
        assert_eq!(obj.armed.load(ordering::Relaxed), 1);
        let got = poll(&q, 8).got;
        assert_eq!((got.len(), got[0].0.event), (1, IN));
        // A failed registration is never armed.
        let mut bad = req(&obj, 2, IN);
        bad.0.arg[1] = BAD_ARG;
        assert_eq!(q.as_arc_borrow().add(req_src(), &bad, false), Err(E2BIG));
        assert_eq!(obj.armed.load(ordering::Relaxed), 1);
    }

    #[test]
    fn remove_cancels_once() {
        let obj = FakeObj::new();
        let q = TestQueue::new();
        q.as_arc_borrow()
            .add(req_src(), &req(&obj, 1, IN), false)
            .unwrap();
        // The entry succeeds; the object is let go at once.
        assert_eq!(q.remove(req_src(), &req(&obj, 1, IN)), Ok(()));
        assert_eq!(obj.refs(), 0);
        // Already cancelled: not in the queue any more.
        assert_eq!(q.remove(req_src(), &req(&obj, 1, IN)), Err(ENOENT));
        // Activity after the cancellation reaches nobody.
        obj.fire(IN, 1);
        // The key is free again at once.
        q.as_arc_borrow()
            .add(req_src(), &req(&obj, 1, OUT), false)
            .unwrap();
        let got = poll(&q, 8).got;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.user_data, 1);
        assert_eq!(got[0].0.ret_flags, KEVENT_RET_BROKEN);
        assert_eq!(got[0].0.ret_data, ecanceled());
        // With the events of its request.
        assert_eq!(got[0].0.event, IN);
        // Reported once; the new kevent is untouched.
        assert_eq!(poll(&q, 8).got.len(), 0);
        obj.fire(OUT, 2);
        let got = poll(&q, 8).got;
        assert_eq!((got.len(), got[0].0.event, got[0].0.ret_data), (1, OUT, 2));
        assert_eq!(obj.refs(), 0);
    }

    #[test]
    fn cancel_keeps_a_pending_completion() {
        let obj = FakeObj::new();
        let q = TestQueue::new();
        q.as_arc_borrow()
            .add(req_src(), &req(&obj, 1, IN), false)
            .unwrap();
        obj.fire(IN, 42);
        assert_eq!(q.remove(req_src(), &req(&obj, 1, IN)), Ok(()));
        let got = poll(&q, 8).got;
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].0.ret_flags, got[0].0.ret_data),
            (KEVENT_RET_DONE, 42)
        );
        assert_eq!(poll(&q, 8).got.len(), 0);
        // A broken report pending is kept too.
        q.as_arc_borrow()
            .add(req_src(), &req(&obj, 2, IN), false)
            .unwrap();
        obj.fini(EPIPE.to_errno());
        assert_eq!(q.remove(req_src(), &req(&obj, 2, IN)), Ok(()));
        let got = poll(&q, 8).got;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.ret_data, EPIPE.to_errno().into());
        assert_eq!(obj.refs(), 0);
    }

    #[test]
    fn fail_reports_the_events_and_reinstalls() {
        let obj = FakeObj::new();
        let q = TestQueue::new();
        q.as_arc_borrow()
            .add(req_src(), &req(&obj, 1, IN), false)
            .unwrap();
        // The object fails at IN and OUT: the kevent reports the bits it asked for.
        // SAFETY: The storage is valid; nothing else runs on it in this test.
        unsafe {
            extern_source::__kevent_storage_fail(obj.storage.get(), IN | OUT, EPIPE.to_errno())
        };
        assert!(!obj.installed());
        let got = poll(&q, 8).got;
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].0.ret_flags, got[0].0.event),
            (KEVENT_RET_BROKEN, IN)
        );
        assert_eq!(got[0].0.ret_data, EPIPE.to_errno().into());
        assert_eq!(obj.refs(), 0);
        // The object lives on: a new registration installs a new list.
        q.as_arc_borrow()
            .add(req_src(), &req(&obj, 2, OUT), false)
            .unwrap();
        assert!(obj.installed());
        obj.fire(OUT, 5);
        let got = poll(&q, 8).got;
        assert_eq!(
            (got.len(), got[0].0.user_data, got[0].0.ret_data),
            (1, 2, 5)
        );
    }

    #[test]
    fn release_drops_cancelled_kevents() {
        let obj = FakeObj::new();
        {
            let q = TestQueue::new();
            for user_data in 1..4 {
                q.as_arc_borrow()
                    .add(req_src(), &req(&obj, user_data, IN), false)
                    .unwrap();
            }
            q.remove(req_src(), &req(&obj, 1, IN)).unwrap();
            obj.fire(IN, 1);
            q.remove(req_src(), &req(&obj, 2, IN)).unwrap();
            assert_eq!(q.nr_ready(), 3);
            // Released with two cancelled kevents out of the index and one indexed, all ready.
        }
        assert_eq!(obj.refs(), 0);
    }

    #[test]
    fn bad_cancel_errno_refused() {
        static NEGATIVE: bindings::kevent_source_ops = req_ops(-1);
        static TOO_BIG: bindings::kevent_source_ops = req_ops(bindings::MAX_ERRNO as c_int + 1);
        static NOT_ONESHOT: bindings::kevent_source_ops = {
            let mut ops = req_ops(bindings::ECANCELED as c_int);
            ops.oneshot = false;
            ops
        };
        // `start` is for requests: only with `oneshot` too.
        static START_NOT_ONESHOT: bindings::kevent_source_ops = {
            let mut ops = req_ops(0);
            ops.oneshot = false;
            ops
        };
        for ops in [&NEGATIVE, &TOO_BIG, &NOT_ONESHOT, &START_NOT_ONESHOT] {
            // SAFETY: A static table; it is refused before anything else.
            let ret = unsafe { extern_source::kevent_register_source(ops) };
            assert_eq!(ret, EINVAL.to_errno());
        }
    }

    #[test]
    fn install_race_loser_uses_winner() {
        let obj = FakeObj::new();
        // SAFETY: The object is alive and not dying.
        let a = unsafe { storage::install(obj.storage.get()) }.unwrap();
        // SAFETY: As above.
        let b = unsafe { storage::install(obj.storage.get()) }.unwrap();
        // The second call found the first one's storage installed, as the loser of a race does.
        assert!(kernel::sync::Arc::ptr_eq(&a, &b));
        assert!(obj.installed());
        drop(a);
        drop(b);
        obj.fini(EPIPE.to_errno());
        assert!(!obj.installed());
    }
}
