// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the engine, driven by a fake source whose readiness the tests set.

use crate::{
    abi::*,
    event::{Attach, Kevent, NewKevent},
    queue::{Index, Queue, Sink},
    source::{Attached, Info, Source},
    storage::Storage,
};
use kernel::{
    prelude::*,
    sync::{
        atomic::{ordering, Atomic},
        Arc,
    },
    time::{Delta, Instant, Monotonic},
};

const FAKE_TYPE: u32 = 0x7fff_0001;
const IN: u32 = 0x1;
const OUT: u32 = 0x2;

/// A source object: a storage and a level the tests set.
#[pin_data]
struct FakeObj {
    #[pin]
    storage: Storage,
    level: Atomic<u32>,
}

impl FakeObj {
    fn new() -> Arc<FakeObj> {
        Arc::pin_init(
            pin_init!(FakeObj {
                storage <- Storage::new(),
                level: Atomic::new(0),
            }),
            GFP_KERNEL,
        )
        .unwrap()
    }

    /// The object becomes ready for `events` (level) and notifies them (edge).
    fn fire(&self, events: u32) {
        self.level.store(events, ordering::Relaxed);
        self.storage.ready(events, 1);
    }
}

struct FakeSource(Arc<FakeObj>);

struct FakeAttached(Arc<FakeObj>);

impl Attached for FakeAttached {
    fn detach(&self, kevent: &Kevent, _index: &mut Index) {
        self.0.storage.dequeue(kevent);
    }

    fn recheck(
        &self,
        _kevent: &Kevent,
        events: u32,
        _data: &mut i64,
        _index: &Index,
    ) -> Option<u32> {
        Some(self.0.level.load(ordering::Relaxed) & events)
    }
}

impl Source for FakeSource {
    fn info(&self) -> Info {
        Info {
            rechecks: true,
            ..Info::new(FAKE_TYPE, IN | OUT)
        }
    }

    fn check(&self, uk: &Ukevent) -> Result {
        if uk.0.arg_fd != 0 {
            return Err(EINVAL);
        }
        Ok(())
    }

    fn attach(
        &self,
        new: NewKevent<'_>,
        uk: &Ukevent,
        _more: bool,
        _index: &mut Index,
    ) -> Result<Attach> {
        let built = new.build(FakeAttached(self.0.clone()))?;
        let kevent = built.kevent().as_arc_borrow();
        self.0.storage.enqueue(kevent)?;
        let now = self.0.level.load(ordering::Relaxed) & uk.0.event;
        if now != 0 {
            Kevent::notify(kevent, now, 0);
        }
        Ok(built.attached())
    }
}

/// A sink into a vector, which faults after `room` events.
pub(crate) struct VecSink {
    pub(crate) got: KVec<Ukevent>,
    room: usize,
}

impl VecSink {
    pub(crate) fn new(room: usize) -> Self {
        VecSink {
            got: KVec::new(),
            room,
        }
    }
}

impl Sink for VecSink {
    fn put(&mut self, uk: &Ukevent) -> Result {
        if self.got.len() >= self.room {
            return Err(EFAULT);
        }
        self.got.push(*uk, GFP_KERNEL)?;
        Ok(())
    }
}

/// A queue that is released (as its file would be) when the test drops it: a queue's index
/// and its kevents reference each other until then.
pub(crate) struct TestQueue(Arc<Queue>);

impl TestQueue {
    pub(crate) fn new() -> TestQueue {
        TestQueue(Queue::new(None).unwrap())
    }

    /// A queue with a ready ring of `entries` slots.
    pub(crate) fn with_ring(entries: u32) -> TestQueue {
        let params = kernel::uapi::kevent_ring_params {
            entries,
            flags: 0,
            reserved: [0; 3],
        };
        TestQueue(Queue::new(Some(crate::ring::Ring::new(&params).unwrap())).unwrap())
    }

    pub(crate) fn as_arc_borrow(&self) -> kernel::sync::ArcBorrow<'_, Queue> {
        self.0.as_arc_borrow()
    }
}

impl core::ops::Deref for TestQueue {
    type Target = Queue;

    fn deref(&self) -> &Queue {
        &self.0
    }
}

impl Drop for TestQueue {
    fn drop(&mut self) {
        self.0.release_all();
    }
}

/// A queue, a source object and the fake source that serves it.
fn setup() -> (TestQueue, Arc<FakeObj>, FakeSource) {
    let obj = FakeObj::new();
    (TestQueue::new(), obj.clone(), FakeSource(obj))
}

fn uk(id: u64, event: u32, flags: u32) -> Ukevent {
    let mut uk = Ukevent::zeroed();
    uk.0.type_ = FAKE_TYPE;
    uk.0.id = id;
    uk.0.event = event;
    uk.0.req_flags = flags;
    uk.0.user_data = 0x1000 + id;
    uk
}

pub(crate) fn poll(q: &Queue, max: usize) -> VecSink {
    let mut sink = VecSink::new(usize::MAX);
    let n = q
        .get_events(0, max, Some(Instant::now()), true, &mut sink)
        .unwrap();
    assert_eq!(n, sink.got.len());
    sink
}

#[kunit_tests(kevent_engine)]
mod tests {
    use super::*;

    #[test]
    fn add_remove_errors() {
        let (q, obj, src) = setup();
        assert_eq!(q.as_arc_borrow().add(&src, &uk(1, IN, 0), false), Ok(()));
        assert_eq!(
            q.as_arc_borrow().add(&src, &uk(1, IN, 0), false),
            Err(EEXIST)
        );
        assert_eq!(
            q.as_arc_borrow().add(&src, &uk(2, 0, 0), false),
            Err(EINVAL)
        );
        assert_eq!(
            q.as_arc_borrow().add(&src, &uk(2, 0x4, 0), false),
            Err(EINVAL)
        );
        assert_eq!(
            q.as_arc_borrow().add(&src, &uk(2, IN, 0x80), false),
            Err(EINVAL)
        );
        let mut bad = uk(2, IN, 0);
        bad.0.reserved = 1;
        assert_eq!(q.as_arc_borrow().add(&src, &bad, false), Err(EINVAL));
        assert_eq!(q.remove(&src, &uk(2, IN, 0)), Err(ENOENT));
        assert_eq!(q.as_arc_borrow().modify(&src, &uk(2, IN, 0)), Err(ENOENT));
        assert_eq!(q.remove(&src, &uk(1, IN, 0)), Ok(()));
        assert!(obj.storage.is_empty());
        assert_eq!(q.remove(&src, &uk(1, IN, 0)), Err(ENOENT));
    }

    #[test]
    fn index_grows_and_shrinks() {
        let (q, obj, src) = setup();
        const N: u64 = 3000;
        let id = |i: u64| i.wrapping_mul(7919) ^ (i << 40);
        for i in 0..N {
            assert_eq!(
                q.as_arc_borrow().add(&src, &uk(id(i), IN, 0), false),
                Ok(())
            );
        }
        assert_eq!(q.nr_kevents(), N as usize);
        // Every key is found after the table grew.
        for i in 0..N {
            assert_eq!(
                q.as_arc_borrow().add(&src, &uk(id(i), IN, 0), false),
                Err(EEXIST)
            );
        }
        obj.fire(IN);
        assert_eq!(q.nr_ready(), N as usize);
        // Removed once each, the odd ones first; the table shrinks under the others.
        for i in (1..N).step_by(2) {
            assert_eq!(q.remove(&src, &uk(id(i), IN, 0)), Ok(()));
            assert_eq!(q.remove(&src, &uk(id(i), IN, 0)), Err(ENOENT));
        }
        assert_eq!(q.nr_kevents(), (N / 2) as usize);
        assert_eq!(q.nr_ready(), (N / 2) as usize);
        for i in (0..N).step_by(2) {
            assert_eq!(q.as_arc_borrow().modify(&src, &uk(id(i), OUT, 0)), Ok(()));
            assert_eq!(q.remove(&src, &uk(id(i), OUT, 0)), Ok(()));
        }
        assert_eq!(q.nr_kevents(), 0);
        assert_eq!(q.nr_ready(), 0);
        assert!(obj.storage.is_empty());
        // Still usable once empty.
        assert_eq!(q.as_arc_borrow().add(&src, &uk(5, IN, 0), false), Ok(()));
        assert_eq!(q.nr_kevents(), 1);
    }

    #[test]
    fn ready_once_per_activity() {
        let (q, obj, src) = setup();
        q.as_arc_borrow().add(&src, &uk(1, IN, 0), false).unwrap();
        q.as_arc_borrow().add(&src, &uk(2, OUT, 0), false).unwrap();
        assert_eq!(q.nr_ready(), 0);
        obj.fire(IN);
        obj.fire(IN);
        // Only the kevent that asked for IN, and only once.
        assert_eq!(q.nr_ready(), 1);
        let got = poll(&q, 8).got;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.id, 1);
        assert_eq!(got[0].0.user_data, 0x1001);
        assert_eq!(got[0].0.event, IN);
        assert_eq!(got[0].0.ret_flags, KEVENT_RET_DONE);
    }

    #[test]
    fn level_triggered_rechecks() {
        let (q, obj, src) = setup();
        q.as_arc_borrow().add(&src, &uk(1, IN, 0), false).unwrap();
        obj.fire(IN);
        // Still ready: reported again and again.
        assert_eq!(poll(&q, 8).got.len(), 1);
        assert_eq!(poll(&q, 8).got.len(), 1);
        // No longer ready: not reported, even though it was queued.
        obj.level.store(0, ordering::Relaxed);
        assert_eq!(poll(&q, 8).got.len(), 0);
        assert_eq!(q.nr_ready(), 0);
    }

    #[test]
    fn edge_triggered_once() {
        let (q, obj, src) = setup();
        q.as_arc_borrow()
            .add(&src, &uk(1, IN, KEVENT_REQ_ET), false)
            .unwrap();
        obj.fire(IN);
        assert_eq!(poll(&q, 8).got.len(), 1);
        // Still ready, but no new activity.
        assert_eq!(poll(&q, 8).got.len(), 0);
        obj.fire(IN);
        let got = poll(&q, 8).got;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.ret_data, 1);
    }

    #[test]
    fn oneshot_removed_after_delivery() {
        let (q, obj, src) = setup();
        q.as_arc_borrow()
            .add(&src, &uk(1, IN, KEVENT_REQ_ONESHOT), false)
            .unwrap();
        obj.fire(IN);
        assert_eq!(poll(&q, 8).got.len(), 1);
        assert!(obj.storage.is_empty());
        assert_eq!(q.remove(&src, &uk(1, IN, 0)), Err(ENOENT));
        obj.fire(IN);
        assert_eq!(poll(&q, 8).got.len(), 0);
    }

    #[test]
    fn max_and_order() {
        let (q, obj, src) = setup();
        for id in 0..5 {
            q.as_arc_borrow()
                .add(&src, &uk(id, IN, KEVENT_REQ_ET), false)
                .unwrap();
        }
        obj.fire(IN);
        assert_eq!(q.nr_ready(), 5);
        let a = poll(&q, 2).got;
        assert_eq!((a.len(), a[0].0.id, a[1].0.id), (2, 0, 1));
        let b = poll(&q, 8).got;
        assert_eq!((b.len(), b[0].0.id, b[2].0.id), (3, 2, 4));
    }

    #[test]
    fn fault_loses_nothing() {
        let (q, obj, src) = setup();
        for id in 0..3 {
            q.as_arc_borrow()
                .add(&src, &uk(id, IN, KEVENT_REQ_ET), false)
                .unwrap();
        }
        obj.fire(IN);
        let mut none = VecSink::new(0);
        assert_eq!(q.get_events(0, 8, None, true, &mut none), Err(EFAULT));
        let mut one = VecSink::new(1);
        assert_eq!(q.get_events(0, 8, None, true, &mut one), Ok(1));
        assert_eq!(one.got[0].0.id, 0);
        let rest = poll(&q, 8).got;
        assert_eq!((rest.len(), rest[0].0.id, rest[1].0.id), (2, 1, 2));
    }

    #[test]
    fn broken_source_reported_once() {
        let (q, obj, src) = setup();
        q.as_arc_borrow().add(&src, &uk(1, IN, 0), false).unwrap();
        obj.storage.fini(0, EPIPE.to_errno().into());
        let got = poll(&q, 8).got;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.ret_flags, KEVENT_RET_BROKEN);
        assert_eq!(got[0].0.ret_data, EPIPE.to_errno().into());
        // Freed after the report.
        assert_eq!(q.remove(&src, &uk(1, IN, 0)), Err(ENOENT));
    }

    #[test]
    fn modify_rearms() {
        let (q, obj, src) = setup();
        q.as_arc_borrow().add(&src, &uk(1, IN, 0), false).unwrap();
        obj.level.store(OUT, ordering::Relaxed);
        let mut m = uk(1, OUT, 0);
        m.0.user_data = 77;
        assert_eq!(q.as_arc_borrow().modify(&src, &m), Ok(()));
        let got = poll(&q, 8).got;
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0.event, got[0].0.user_data), (OUT, 77));
    }

    #[test]
    fn min_nr_and_timeout() {
        let (q, obj, src) = setup();
        q.as_arc_borrow()
            .add(&src, &uk(1, IN, KEVENT_REQ_ET), false)
            .unwrap();
        q.as_arc_borrow()
            .add(&src, &uk(2, IN, KEVENT_REQ_ET), false)
            .unwrap();
        let mut sink = VecSink::new(8);
        // Nothing ready: waits out the deadline and returns 0.
        let start = Instant::<Monotonic>::now();
        let deadline = start + Delta::from_millis(20);
        assert_eq!(q.get_events(1, 8, Some(deadline), false, &mut sink), Ok(0));
        assert!(Instant::<Monotonic>::now().as_nanos() >= deadline.as_nanos());
        // Fewer than min_nr ready: returns what there is at the deadline.
        obj.fire(IN);
        q.remove(&src, &uk(2, IN, 0)).unwrap();
        let deadline = Instant::<Monotonic>::now() + Delta::from_millis(10);
        assert_eq!(q.get_events(2, 8, Some(deadline), false, &mut sink), Ok(1));
    }

    #[test]
    fn release_frees_everything() {
        let obj = FakeObj::new();
        {
            let q = TestQueue::new();
            let src = FakeSource(obj.clone());
            for id in 0..4 {
                q.as_arc_borrow().add(&src, &uk(id, IN, 0), false).unwrap();
            }
            obj.fire(IN);
            q.release_all();
        }
        assert!(obj.storage.is_empty());
    }
}
