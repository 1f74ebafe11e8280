// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the C source API (`extern_source.rs`, the C side of `storage.rs`), driven by
//! fake `struct kevent_source_ops` tables whose objects the tests own.

use crate::{
    abi::*,
    engine_tests::{poll, TestQueue},
    extern_source::{self, ExternSource},
    storage,
};
use kernel::{
    bindings,
    ffi::{c_int, c_void},
    prelude::*,
    sync::atomic::{ordering, Atomic},
    types::Opaque,
};

const FAKE_TYPE: u32 = 0x7fff_0002;
const IN: u32 = 0x1;
const OUT: u32 = 0x2;
/// The result the fake re-check reports with `OUT`.
const OUT_DATA: i64 = -32;

/// A C source object: an embedded `struct kevent_storage`, a level and a reference count.
struct FakeObj {
    storage: Opaque<bindings::kevent_storage>,
    level: Atomic<u32>,
    refs: Atomic<i32>,
}

impl FakeObj {
    fn new() -> KBox<FakeObj> {
        KBox::new(
            FakeObj {
                storage: Opaque::new(bindings::kevent_storage {
                    list: core::ptr::null_mut(),
                }),
                level: Atomic::new(0),
                refs: Atomic::new(0),
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

unsafe extern "C" fn fake_get(
    uk: *const bindings::ukevent,
    st: *mut *mut bindings::kevent_storage,
    obj: *mut *mut c_void,
) -> c_int {
    // SAFETY: The core passes a valid entry.
    let id = unsafe { (*uk).id };
    if id == 0 {
        return EBADF.to_errno();
    }
    // SAFETY: The tests put the address of a live `FakeObj` in `id`.
    let fake = unsafe { &*(id as usize as *const FakeObj) };
    fake.refs.add(1, ordering::Relaxed);
    // SAFETY: The out-pointers are valid.
    unsafe {
        *st = fake.storage.get();
        *obj = (fake as *const FakeObj).cast_mut().cast::<c_void>();
    }
    0
}

unsafe extern "C" fn fake_put(obj: *mut c_void) {
    // SAFETY: `obj` is what `fake_get` returned, a live `FakeObj`.
    let fake = unsafe { &*obj.cast::<FakeObj>() };
    fake.refs.add(-1, ordering::Relaxed);
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

static LEVEL_OPS: bindings::kevent_source_ops = fake_ops(false);
static WEAK_OPS: bindings::kevent_source_ops = fake_ops(true);

fn level_src() -> &'static ExternSource {
    // SAFETY: A static table that follows the contract.
    unsafe { ExternSource::from_ops(&LEVEL_OPS) }
}

fn weak_src() -> &'static ExternSource {
    // SAFETY: A static table that follows the contract.
    unsafe { ExternSource::from_ops(&WEAK_OPS) }
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
    fn install_on_first_add_and_refs() {
        // The queue goes first: its kevents drop their references to the object.
        let obj = FakeObj::new();
        let q = TestQueue::new();
        assert!(!obj.installed());
        assert_eq!(
            q.as_arc_borrow().add(level_src(), &uk(obj.id(), IN, 0)),
            Ok(())
        );
        assert!(obj.installed());
        assert_eq!(obj.refs(), 1);
        assert_eq!(q.remove(&uk(obj.id(), IN, 0)), Ok(()));
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
            q.as_arc_borrow().add(level_src(), &uk(0, IN, 0)),
            Err(EBADF)
        );
        let mut bad = uk(obj.id(), IN, 0);
        bad.0.arg[1] = 1;
        assert_eq!(q.as_arc_borrow().add(level_src(), &bad), Err(EINVAL));
        let mut bad = uk(obj.id(), IN, 0);
        bad.0.arg_fd = 3;
        assert_eq!(q.as_arc_borrow().add(level_src(), &bad), Err(EINVAL));
        assert_eq!(
            q.as_arc_borrow().add(level_src(), &uk(obj.id(), 0x4, 0)),
            Err(EINVAL)
        );
        assert_eq!(obj.refs(), 0);
    }

    #[test]
    fn level_recheck_narrows_and_reports_data() {
        let obj = FakeObj::new();
        let q = TestQueue::new();
        q.as_arc_borrow()
            .add(level_src(), &uk(obj.id(), IN | OUT, 0))
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
        assert_eq!(q.remove(&uk(obj.id(), IN, 0)), Ok(()));
        assert_eq!(obj.refs(), 0);
    }

    #[test]
    fn ready_at_registration() {
        let obj = FakeObj::new();
        let q = TestQueue::new();
        obj.level.store(IN, ordering::Relaxed);
        q.as_arc_borrow()
            .add(level_src(), &uk(obj.id(), IN, KEVENT_REQ_ET))
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
            .add(weak_src(), &uk(obj.id(), IN | OUT, 0))
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
            .add(weak_src(), &uk(obj.id(), IN, 0))
            .unwrap();
        // The same object, another kevent in another queue.
        let second = uk(obj.id(), OUT, 0);
        let q2 = TestQueue::new();
        q2.as_arc_borrow().add(weak_src(), &second).unwrap();
        obj.fini(ENOENT.to_errno());
        assert!(!obj.installed());
        let got = poll(&q, 8).got;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.ret_flags, KEVENT_RET_BROKEN);
        assert_eq!(got[0].0.ret_data, ENOENT.to_errno().into());
        // Removed after the report.
        assert_eq!(q.remove(&uk(obj.id(), IN, 0)), Err(ENOENT));
        // The other kevent was reported broken too; removing it before delivery detaches it
        // from a storage that is no longer installed: a no-op dequeue.
        assert_eq!(q2.remove(&second), Ok(()));
        assert_eq!(poll(&q2, 8).got.len(), 0);
        // Later activity reaches nobody.
        obj.fire(IN, 1);
        assert_eq!(poll(&q, 8).got.len(), 0);
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
