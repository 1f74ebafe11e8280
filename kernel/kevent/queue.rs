// SPDX-License-Identifier: GPL-2.0

//! The kevent queue (`kevent_user`): one per kevent file descriptor.
//!
//! # Locking
//!
//! * `Queue::index` (a mutex) guards the index of all kevents of the queue (an rbtree keyed by
//!   `(type, id)`) and each kevent's `attached` (its source's side). It is held by every
//!   `kevent_ctl()` command, by delivery in `kevent_get_events()` and by release: these may
//!   sleep (allocation, `->poll`, cancelling a timer).
//! * `Queue::ready` (an interrupt-safe spinlock) guards the ready list, its count and each
//!   kevent's delivery `state`. The notification path takes it, from any context.
//! * A storage's list lock (interrupt-safe spinlock) guards the kevents registered on one source
//!   object.
//!
//! Order: `index` -> storage lock -> `ready`. The queue's wait queue is only woken after `ready`
//! is released; waiters hold `ready` while they queue themselves on it (the `CondVar` protocol).
//!
//! Lifetime: the index owns an `Arc` to each kevent; a kevent on a storage list or on the ready
//! list is always in the index too (it leaves the index only after it was detached from its
//! source, under `index`), so the references the notification path drops are never the last
//! ones, and the last reference to a queue is dropped in process context.

use crate::{
    abi::*,
    event::{Kevent, Key, Request, Wake, READY},
    limit::Charge,
    source::Source,
};
use kernel::{
    bindings, c_str,
    fs::{
        anon_inode::{AnonInodeFile, AnonInodeFops},
        File, LocalFile,
    },
    list::{List, ListArc},
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    seq_file::SeqFile,
    seq_print,
    sync::{
        aref::ARef,
        new_mutex, new_spinlock_irq,
        poll::{PollCondVar, PollTable},
        Arc, ArcBorrow, CondVarDeadlineResult, Mutex, SpinLockIrq,
    },
    time::{Instant, Monotonic},
};

/// Request flags every source accepts.
pub(crate) const COMMON_FLAGS: u32 = KEVENT_REQ_ONESHOT | KEVENT_REQ_ET | KEVENT_REQ_WAKEUP_ALL;

/// The ready list of a queue, guarded by `Queue::ready`.
pub(crate) struct ReadyList {
    list: List<Kevent, READY>,
    /// Number of kevents on `list`.
    nr: usize,
}

impl ReadyList {
    pub(crate) fn push(&mut self, item: ListArc<Kevent, READY>) {
        self.list.push_back(item);
        self.nr += 1;
    }

    /// Number of ready kevents.
    pub(crate) fn len(&self) -> usize {
        self.nr
    }
}

/// The index of a queue's kevents, guarded by `Queue::index`.
pub(crate) struct Index {
    tree: RBTree<Key, Arc<Kevent>>,
}

/// Where delivered events go: userspace, or a buffer in the KUnit tests.
pub(crate) trait Sink {
    /// Copies out one event. On error the event is not consumed.
    fn put(&mut self, uk: &Ukevent) -> Result;
}

/// A kevent queue.
#[pin_data]
pub(crate) struct Queue {
    #[pin]
    pub(crate) index: Mutex<Index>,
    #[pin]
    pub(crate) ready: SpinLockIrq<ReadyList>,
    /// Waiters in `kevent_get_events()` (exclusive) and pollers of the queue file.
    #[pin]
    wait: PollCondVar,
}

/// The file operations of kevent queue files.
static FOPS: AnonInodeFops<Queue> = AnonInodeFops::new();

impl Queue {
    /// Creates an empty queue.
    pub(crate) fn new() -> Result<Arc<Queue>> {
        Arc::pin_init(
            pin_init!(Queue {
                index <- new_mutex!(Index { tree: RBTree::new() }, "kevent_index"),
                ready <- new_spinlock_irq!(
                    ReadyList { list: List::new(), nr: 0 },
                    "kevent_ready"
                ),
                wait <- kernel::new_poll_condvar!("kevent_wait"),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Creates a new queue and a file for it. `flags` may hold `O_NONBLOCK`.
    pub(crate) fn new_file(flags: u32) -> Result<ARef<File>> {
        FOPS.create_file(
            c_str!("[kevent]"),
            Queue::new()?,
            bindings::O_RDWR | (flags & bindings::O_NONBLOCK),
        )
    }

    /// Returns the queue behind `file`, or `EINVAL` if `file` is not a kevent queue.
    pub(crate) fn from_file(file: &LocalFile) -> Result<ArcBorrow<'_, Queue>> {
        FOPS.data(file).ok_or(EINVAL)
    }

    /// Wakes waiters after a kevent became ready. Called without `ready` held.
    pub(crate) fn wake(&self, wake: Wake) {
        match wake {
            Wake::None => {}
            Wake::One => self.wait.notify_one(),
            Wake::All => self.wait.notify_all(),
        }
    }

    /// Number of ready kevents.
    pub(crate) fn nr_ready(&self) -> usize {
        self.ready.lock().len()
    }

    /// Checks the fields of `uk` every source shares.
    fn check(src: &dyn Source, uk: &Ukevent) -> Result {
        let u = &uk.0;
        if u.reserved != 0
            || u.event == 0
            || u.event & !src.events() != 0
            || u.req_flags & !(COMMON_FLAGS | src.flags()) != 0
        {
            return Err(EINVAL);
        }
        src.check(uk)
    }

    /// `KEVENT_CTL_ADD` of one kevent.
    pub(crate) fn add(self: ArcBorrow<'_, Self>, src: &dyn Source, uk: &Ukevent) -> Result {
        Self::check(src, uk)?;
        let key = Key::of(uk);
        let req = Request::of(uk);
        let this: Arc<Queue> = self.into();
        let mut index = self.index.lock();
        if index.tree.get(&key).is_some() {
            return Err(EEXIST);
        }
        let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        let kevent = Kevent::new(&this, key, req, Charge::new()?)?;
        match src.attach(&kevent, uk) {
            Ok(attached) => {
                *kevent.attached.access_mut(&mut index) = Some(attached);
                index.tree.insert(node.into_node(key, kevent));
                Ok(())
            }
            Err(e) => {
                // The source did not keep it; make sure it is on no list of ours either.
                kevent.uncharge(&mut index);
                self.unlink(&kevent);
                Err(e)
            }
        }
    }

    /// `KEVENT_CTL_REMOVE` of one kevent.
    pub(crate) fn remove(&self, uk: &Ukevent) -> Result {
        let key = Key::of(uk);
        let mut index = self.index.lock();
        let kevent = index.tree.remove(&key).ok_or(ENOENT)?;
        self.detach(&mut index, &kevent);
        Ok(())
    }

    /// `KEVENT_CTL_MODIFY` of one kevent: new mask, flags and cookie; re-armed.
    pub(crate) fn modify(&self, src: &dyn Source, uk: &Ukevent) -> Result {
        Self::check(src, uk)?;
        let key = Key::of(uk);
        let mut index = self.index.lock();
        let kevent = index.tree.get(&key).ok_or(ENOENT)?.clone();
        // Re-arm: detach first, so that nothing the old attachment reports is taken for the new
        // request; then attach with the new request. If that fails the kevent is removed, and
        // the entry reports why.
        if let Some(old) = kevent.take_attached(&mut index) {
            old.detach(&kevent);
        }
        {
            let mut ready = self.ready.lock();
            let st = kevent.state.access_mut(&mut ready);
            st.req = Request::of(uk);
            // Forget what fired under the old request.
            st.fired = 0;
            st.data = 0;
            st.broken = None;
        }
        match src.attach(&kevent, uk) {
            Ok(attached) => {
                *kevent.attached.access_mut(&mut index) = Some(attached);
                Ok(())
            }
            Err(e) => {
                index.tree.remove(&key);
                kevent.uncharge(&mut index);
                self.unlink(&kevent);
                Err(e)
            }
        }
    }

    /// Removes `kevent` from its queue if it is still there (its descriptor was closed).
    pub(crate) fn remove_kevent(kevent: &Arc<Kevent>) {
        let queue = &kevent.queue;
        let mut index = queue.index.lock();
        match index.tree.get(&kevent.key) {
            Some(k) if Arc::ptr_eq(k, kevent) => {}
            _ => return,
        }
        let removed = index.tree.remove(&kevent.key);
        queue.detach(&mut index, kevent);
        drop(index);
        drop(removed);
    }

    /// Takes `kevent` off the ready list, if it is on it, and stops its notifications.
    fn unlink(&self, kevent: &Kevent) {
        let mut ready = self.ready.lock();
        kevent.state.access_mut(&mut ready).dead = true;
        // SAFETY: A kevent's `READY` links are only used for its own queue's ready list (and a
        // delivery's local list, which exists only under `index`, held by the callers of
        // `detach`, and only for kevents `deliver` has not handed to `detach`).
        let item = unsafe { ready.list.remove(kevent) };
        if item.is_some() {
            ready.nr -= 1;
        }
        drop(ready);
        drop(item);
    }

    /// Detaches a kevent removed from the index: from its source, then from the ready list.
    fn detach(&self, index: &mut Index, kevent: &Kevent) {
        if let Some(attached) = kevent.take_attached(index) {
            attached.detach(kevent);
        }
        kevent.uncharge(index);
        self.unlink(kevent);
    }

    /// Removes every kevent: the queue file is being released.
    pub(crate) fn release_all(&self) {
        let mut index = self.index.lock();
        while let Some(cursor) = index.tree.cursor_front_mut() {
            let (_, node) = cursor.remove_current();
            let (_, kevent) = node.to_key_value();
            self.detach(&mut index, &kevent);
        }
    }

    /// Waits until at least `min_nr` kevents are ready, `deadline` passes or a signal arrives,
    /// then delivers up to `max_nr` of them to `sink`.
    ///
    /// Returns the number delivered; `EINTR` if a signal arrived before any event was ready;
    /// `EFAULT` if not even the first event could be copied (it stays queued).
    pub(crate) fn get_events(
        &self,
        min_nr: usize,
        max_nr: usize,
        deadline: Option<Instant<Monotonic>>,
        nonblock: bool,
        sink: &mut dyn Sink,
    ) -> Result<usize> {
        loop {
            let mut timed_out = nonblock;
            let mut signalled = false;
            {
                let mut ready = self.ready.lock();
                while ready.len() < min_nr && !timed_out {
                    if let Some(d) = deadline {
                        if Instant::<Monotonic>::now().as_nanos() >= d.as_nanos() {
                            timed_out = true;
                            break;
                        }
                    }
                    // A waiter that needs more than one event waits non-exclusively, so that
                    // it never takes a wake-up another waiter could use.
                    let woken = if min_nr > 1 {
                        self.wait
                            .wait_interruptible_until_shared(&mut ready, deadline)
                    } else {
                        self.wait.wait_interruptible_until(&mut ready, deadline)
                    };
                    match woken {
                        CondVarDeadlineResult::Signal => {
                            if ready.len() == 0 {
                                return Err(EINTR);
                            }
                            signalled = true;
                            timed_out = true;
                        }
                        CondVarDeadlineResult::Timeout => timed_out = true,
                        CondVarDeadlineResult::Woken => {}
                    }
                }
            }
            let n = self.deliver(max_nr, sink)?;
            // Interrupted, and the kevents that were ready turned out stale: nothing copied.
            if n == 0 && signalled {
                return Err(EINTR);
            }
            // Level-triggered kevents found no longer ready are not reported: if that left
            // nothing to report and time remains, wait again.
            if n > 0 || timed_out || min_nr == 0 {
                return Ok(n);
            }
        }
    }

    /// Delivers up to `max_nr` ready kevents to `sink`.
    fn deliver(&self, max_nr: usize, sink: &mut dyn Sink) -> Result<usize> {
        let mut index = self.index.lock();
        // Take the ready kevents; notifications for them meanwhile only update their state.
        let mut local = List::<Kevent, READY>::new();
        let mut nr_local;
        {
            let mut ready = self.ready.lock();
            local.push_all_back(&mut ready.list);
            nr_local = core::mem::take(&mut ready.nr);
        }
        let mut requeue = List::<Kevent, READY>::new();
        let mut nr_requeue = 0;
        let mut delivered = 0;
        let mut fault = None;
        while delivered < max_nr {
            let Some(item) = local.pop_front() else {
                break;
            };
            nr_local -= 1;
            let (req, fired, data, broken) = {
                let mut ready = self.ready.lock();
                let st = item.state.access_mut(&mut ready);
                let taken = (st.req, st.fired, st.data, st.broken.take());
                st.fired = 0;
                st.data = 0;
                taken
            };
            let level = req.flags & (KEVENT_REQ_ET | KEVENT_REQ_ONESHOT) == 0;
            let mut events = fired;
            let mut data = data;
            let mut still_ready = false;
            if broken.is_none() {
                let attached = item.attached.access(&index).clone();
                if let (Some(a), true) = (&attached, fired != 0) {
                    data = a.clone().delivering(&item, data);
                }
                if let Some(now) = attached.and_then(|a| a.recheck(&item, req.event, &mut data)) {
                    // Report what is ready now, not what was once.
                    events = now & req.event;
                    still_ready = level && events != 0;
                }
            }
            if events != 0 || broken.is_some() {
                let mut uk = Ukevent::zeroed();
                uk.0.user_data = req.user_data;
                uk.0.id = item.key.id;
                uk.0.type_ = item.key.ty;
                uk.0.event = events;
                uk.0.req_flags = req.flags;
                match broken {
                    Some(errno) => {
                        uk.0.ret_flags = KEVENT_RET_BROKEN;
                        uk.0.ret_data = errno;
                    }
                    None => {
                        uk.0.ret_flags = KEVENT_RET_DONE;
                        uk.0.ret_data = data;
                    }
                }
                if let Err(e) = sink.put(&uk) {
                    // Not consumed: give the state back and keep the kevent first in line.
                    let mut ready = self.ready.lock();
                    let st = item.state.access_mut(&mut ready);
                    st.fired |= fired;
                    st.data = st.data.saturating_add(data);
                    if st.broken.is_none() {
                        st.broken = broken;
                    }
                    drop(ready);
                    local.push_front(item);
                    nr_local += 1;
                    fault = Some(e);
                    break;
                }
                delivered += 1;
                if req.flags & KEVENT_REQ_ONESHOT != 0 || broken.is_some() {
                    if let Some(kevent) = index.tree.remove(&item.key) {
                        drop(item);
                        self.detach(&mut index, &kevent);
                    }
                    continue;
                }
            }
            // Keep it ready if it still is (level), or if it fired again meanwhile.
            let mut ready = self.ready.lock();
            let st = item.state.access_mut(&mut ready);
            if still_ready || st.fired != 0 || st.broken.is_some() {
                drop(ready);
                requeue.push_back(item);
                nr_requeue += 1;
            } else {
                // Dropped under `ready`, so that a notification either saw it queued (and left
                // its events in `state`, seen above) or finds it free to queue.
                drop(item);
            }
        }
        // Undelivered kevents go back first, in order; re-armed level ones at the tail.
        {
            let mut ready = self.ready.lock();
            local.push_all_back(&mut ready.list);
            core::mem::swap(&mut local, &mut ready.list);
            ready.list.push_all_back(&mut requeue);
            ready.nr += nr_local + nr_requeue;
        }
        if nr_local + nr_requeue > 0 {
            self.wake(Wake::One);
        }
        match fault {
            Some(e) if delivered == 0 => Err(e),
            _ => Ok(delivered),
        }
    }
}

#[vtable]
impl AnonInodeFile for Queue {
    type Ptr = Arc<Queue>;

    fn release(queue: Arc<Queue>, _file: &File) {
        queue.release_all();
    }

    fn show_fdinfo(queue: ArcBorrow<'_, Queue>, m: &SeqFile, _file: &File) {
        let index = queue.index.lock();
        seq_print!(
            m,
            "kevents:\t{}\nready:\t{}\n",
            index.tree.iter().count(),
            queue.nr_ready()
        );
        for (key, kevent) in index.tree.iter() {
            let ready = queue.ready.lock();
            let st = kevent.state.access(&ready);
            seq_print!(
                m,
                "type: {} id: {} event: {:#x} flags: {:#x} data: {:#x}\n",
                key.ty,
                key.id,
                st.req.event,
                st.req.flags,
                st.req.user_data
            );
        }
    }

    fn poll(queue: ArcBorrow<'_, Queue>, file: &File, table: PollTable<'_>) -> u32 {
        table.register_wait(file, &queue.wait);
        if queue.nr_ready() > 0 {
            bindings::POLLIN | bindings::POLLRDNORM
        } else {
            0
        }
    }
}
