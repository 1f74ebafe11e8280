// SPDX-License-Identifier: GPL-2.0

//! The kevent queue (`kevent_user`): one per kevent file descriptor.
//!
//! # Locking
//!
//! * `Queue::index` (a mutex) guards the index of all kevents of the queue (a hash table keyed by
//!   [`Key`]: `(type, id)`, and `user_data` for the sources keyed by it; see `index.rs`) and each
//!   kevent's `attached` (its source's side). It is held for a whole `kevent_ctl()` batch
//!   (`syscalls::apply`), by delivery in `kevent_get_events()` and by release: these may sleep
//!   (allocation, `->poll`, cancelling a timer). It also guards the results kept for delivery
//!   without a kevent (`Index::done`, `done.rs`), which only those fill and empty.
//! * `Queue::ready` (an interrupt-safe spinlock) guards the ready list, its count (and that of
//!   the kept results, for waiters) and each kevent's delivery `state`. The notification path
//!   takes it, from any context.
//! * A storage's list lock (interrupt-safe spinlock) guards the kevents registered on one source
//!   object.
//!
//! Order: `index` -> storage lock -> `ready`. The queue's wait queue is only woken after `ready`
//! is released; waiters hold `ready` while they queue themselves on it (the `CondVar` protocol).
//!
//! Lifetime: the index owns an `Arc` to each kevent; a kevent on a storage list or on the ready
//! list is always in the index too (it leaves the index only after it was detached from its
//! source, under `index`), so the references the notification path drops are never the last
//! ones, and the last reference to a queue is dropped in process context. One exception: a
//! kevent of a source with a cancel errno ([`Info::cancel_errno`]) that `KEVENT_CTL_REMOVE` or
//! a close removes leaves the index detached (keeping its charge), and waits on the ready list
//! for its last delivery (its cancellation, or a completion notified before); delivery and
//! release drop it then. No notification reaches it any more, so this does not change the rule
//! above.

use crate::{
    abi::*,
    done::Done,
    event::{Attach, Kevent, Key, NewKevent, Request, Wake, READY},
    index::{KeventIndex, INDEX},
    limit::{Charge, UserRef},
    ring::{Producer, Ring},
    source::{Info, Source},
};
use core::cmp::Ordering;
use kernel::{
    alloc::kvec::PushError,
    bindings, c_str,
    fs::{
        anon_inode::{AnonInodeFile, AnonInodeFops},
        File, LocalFile,
    },
    list::{List, ListArc},
    mm::virt::VmaNew,
    prelude::*,
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
    /// The kernel's side of the ring, if the queue has one.
    pub(crate) producer: Producer,
    /// Oneshot kevents written into the ring, to leave the queue at the next hold of its index
    /// ([`Queue::reap`]). A kevent on it has `State::reaping` set.
    pub(crate) reap: List<Kevent, READY>,
    /// Number of results kept in `Index::done`, for waiters.
    kept: usize,
}

impl ReadyList {
    pub(crate) fn push(&mut self, item: ListArc<Kevent, READY>) {
        self.list.push_back(item);
        self.nr += 1;
    }

    /// Number of events `kevent_get_events()` can deliver now: ready kevents, and kept results.
    fn deliverable(&self) -> usize {
        self.nr + self.kept
    }
}

/// The index of a queue's kevents, guarded by `Queue::index`.
pub(crate) struct Index {
    table: KeventIndex,
    /// The buffers of delivery, out of here while a delivery runs (under this mutex, so always
    /// here when one starts). An `Option`, not vectors taken with `mem::take`: dropping the empty
    /// vector that leaves behind is a call into the allocator, three per delivery.
    buffers: Option<Buffers>,
    /// Results of requests finished at submission in a queue without a ring, delivered before
    /// the ready list (see [`Queue::post_done`]); made at the first.
    done: Option<Done>,
}

impl Index {
    /// Whether a result kept for delivery without a kevent holds `key`.
    fn holds_kept(&self, key: &Key) -> bool {
        self.done.as_ref().is_some_and(|d| d.holds(key))
    }
}

/// The most entries of a run that one [`Source::submit_run`] takes.
pub(crate) const RUN_MAX: usize = bindings::KEVENT_RUN_MAX as usize;

/// An entry of a run that [`Queue::submit_run`] admitted.
pub(crate) enum Presubmitted {
    /// It finished, and its result is in the ring: nothing more is made for it.
    Posted,
    /// Its charge, taken before the run moved anything, and what the run did with it: `Ok` with
    /// its result if it finished, `Err` with its progress if not, `None` if it did not touch it.
    Charged {
        charge: Charge,
        result: Option<core::result::Result<i64, i64>>,
    },
}

/// The buffers of a delivery ([`Queue::deliver`]), allocated with the queue; empty between
/// deliveries.
struct Buffers {
    /// Room for the kevents one delivery round takes off the ready list ([`DELIVERY_CHUNK`]).
    scratch: KVec<Taken>,
    /// Room for the events of one round, copied to userspace at once.
    staging: KVec<Ukevent>,
    /// Room for the kevents of one round to decide about under `ready` once delivered (queue
    /// again if notified meanwhile, else leave the ready list): an array, not a list, so that
    /// they are not linked and unlinked once more each.
    checks: KVec<ListArc<Kevent, READY>>,
}

impl Buffers {
    fn new() -> Result<Buffers> {
        Ok(Buffers {
            scratch: KVec::with_capacity(DELIVERY_CHUNK, GFP_KERNEL_ACCOUNT)?,
            staging: KVec::with_capacity(DELIVERY_CHUNK, GFP_KERNEL_ACCOUNT)?,
            checks: KVec::with_capacity(DELIVERY_CHUNK, GFP_KERNEL_ACCOUNT)?,
        })
    }
}

/// How many kevents delivery takes off the ready list per round trip of the `ready` lock.
const DELIVERY_CHUNK: usize = 32;

/// A kevent taken off the ready list for delivery, with the state it had then.
struct Taken {
    item: ListArc<Kevent, READY>,
    req: Request,
    fired: u32,
    data: i64,
    broken: Option<i64>,
    /// Leaves at its delivery: a oneshot request, or a source whose kevents all are.
    oneshot: bool,
    /// Has an event in the round's staging buffer.
    report: bool,
    /// Level triggered and still ready at delivery.
    still_ready: bool,
}

/// Where delivered events go: userspace, or a buffer in the KUnit tests.
pub(crate) trait Sink {
    /// Copies out one event. On error the event is not consumed.
    fn put(&mut self, uk: &Ukevent) -> Result;

    /// Copies out `uks` in order: returns how many were consumed, and the error that stopped
    /// the copy if not all were.
    fn put_all(&mut self, uks: &[Ukevent]) -> (usize, Option<Error>) {
        for (i, uk) in uks.iter().enumerate() {
            if let Err(e) = self.put(uk) {
                return (i, Some(e));
            }
        }
        (uks.len(), None)
    }
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
    /// The counter its kevents are charged to: the creator's user.
    user: UserRef,
    /// The ready ring the process maps, if the queue was made with `KEVENT_RING`.
    pub(crate) ring: Option<Ring>,
}

/// The file operations of kevent queue files.
static FOPS: AnonInodeFops<Queue> = AnonInodeFops::new();

impl Queue {
    /// Creates an empty queue, with `ring` as its ready ring if it has one.
    pub(crate) fn new(ring: Option<Ring>) -> Result<Arc<Queue>> {
        let buffers = Buffers::new()?;
        let user = UserRef::current()?;
        Arc::pin_init(
            pin_init!(Queue {
                index <- new_mutex!(
                    Index {
                        table: KeventIndex::new(),
                        buffers: Some(buffers),
                        done: None,
                    },
                    "kevent_index"
                ),
                ready <- new_spinlock_irq!(
                    ReadyList {
                        list: List::new(),
                        nr: 0,
                        producer: Producer::default(),
                        reap: List::new(),
                        kept: 0,
                    },
                    "kevent_ready"
                ),
                wait <- kernel::new_poll_condvar!("kevent_wait"),
                user,
                ring,
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Creates a new queue and a file for it, with `ring` as its ready ring if it has one.
    /// `flags` may hold `O_NONBLOCK`.
    pub(crate) fn new_file(flags: u32, ring: Option<Ring>) -> Result<ARef<File>> {
        FOPS.create_file(
            c_str!("[kevent]"),
            Queue::new(ring)?,
            bindings::O_RDWR | (flags & bindings::O_NONBLOCK),
        )
    }

    /// Returns the queue behind `file`, or `EINVAL` if `file` is not a kevent queue.
    pub(crate) fn from_file(file: &LocalFile) -> Result<ArcBorrow<'_, Queue>> {
        FOPS.data(file).ok_or(EINVAL)
    }

    /// Wakes waiters after a kevent became ready. Called without `ready` held.
    ///
    /// Every caller changed the ready list under `ready`, which waiters hold while they queue
    /// themselves on `wait` (and pollers take after queueing), so a waiter either saw the change
    /// or is visible to the lockless check: nobody waiting costs no wait-queue lock, as in
    /// `ep_poll_callback()`.
    pub(crate) fn wake(&self, wake: Wake) {
        if matches!(wake, Wake::None) || !self.wait.has_waiters() {
            return;
        }
        match wake {
            Wake::None => {}
            Wake::One => self.wait.notify_one(),
            Wake::All => self.wait.notify_all(),
        }
    }

    /// Number of events ready for `kevent_get_events()`: ready kevents, and kept results.
    pub(crate) fn nr_ready(&self) -> usize {
        self.ready.lock().deliverable()
    }

    /// Keeps `uk`, the final result of a request that finished as it was submitted, which
    /// holds `key` until it is delivered, for delivery without a kevent, and wakes a waiter:
    /// returns whether it did. Only while no kevent is ready, so that kept results, delivered
    /// first, are always older than the ready kevents; and only while the buffer (made here, at
    /// the first use) has room. Under `index`, in process context.
    pub(crate) fn post_done(&self, index: &mut Index, uk: &Ukevent, key: Key) -> bool {
        if index.done.is_none() {
            match Done::new() {
                Ok(made) => index.done = Some(made),
                Err(_) => return false,
            }
        }
        let Some(done) = index.done.as_mut() else {
            return false;
        };
        if done.is_full() {
            return false;
        }
        {
            let mut ready = self.ready.lock();
            if ready.nr != 0 {
                return false;
            }
            // Counted before it is kept: a waiter that sees it delivers under `index`, which we
            // hold until it is.
            ready.kept += 1;
        }
        // Cannot fail: there is room, and only holders of `index` fill it.
        done.push(*uk, key);
        self.wake(if uk.0.req_flags & KEVENT_REQ_WAKEUP_ALL != 0 {
            Wake::All
        } else {
            Wake::One
        });
        true
    }

    /// Number of events waiting in the ring (0 without one), under `ready`.
    fn in_ring(&self, ready: &ReadyList) -> usize {
        self.ring
            .as_ref()
            .map_or(0, |ring| ring.pending(&ready.producer))
    }

    /// Oneshot kevents written into the ring leave the queue, under `index`: as a delivered
    /// oneshot kevent does, they leave the index and are detached from their source. Called
    /// before the index is used, so that a key a consumed event freed is free.
    pub(crate) fn reap(&self, index: &mut Index) {
        if self.ring.is_none() {
            return;
        }
        let mut reap = {
            let mut ready = self.ready.lock();
            if ready.reap.is_empty() {
                return;
            }
            let reap = core::mem::replace(&mut ready.reap, List::new());
            for kevent in reap.iter() {
                kevent.state.access_mut(&mut ready).reaping = false;
            }
            reap
        };
        while let Some(item) = reap.pop_front() {
            // Still in the index unless the close of its descriptor cancelled it (it is detached
            // then, and kept its charge for this).
            if let Some(kevent) = index.table.remove_kevent(&item) {
                kevent.detach_src(index);
            }
            item.uncharge(index);
        }
    }

    /// Number of kevents in the index.
    #[cfg_attr(not(CONFIG_KEVENT_KUNIT_TEST), allow(dead_code))]
    pub(crate) fn nr_kevents(&self) -> usize {
        self.index.lock().table.len()
    }

    /// Checks the fields of `uk` every source shares (`info` describes its source), then the
    /// source's own.
    fn check(src: &dyn Source, info: &Info, uk: &Ukevent) -> Result {
        let u = &uk.0;
        if u.reserved != 0
            || u.event == 0
            || u.event & !info.events != 0
            || u.req_flags & !(COMMON_FLAGS | info.flags) != 0
        {
            return Err(EINVAL);
        }
        src.check(uk)
    }

    /// `KEVENT_CTL_ADD` of one kevent (see [`Queue::add_locked`]).
    #[cfg_attr(not(CONFIG_KEVENT_KUNIT_TEST), allow(dead_code))]
    pub(crate) fn add(
        self: ArcBorrow<'_, Self>,
        src: &dyn Source,
        uk: &Ukevent,
        more: bool,
    ) -> Result {
        self.add_locked(&mut self.index.lock(), src, uk, more)
    }

    /// `KEVENT_CTL_REMOVE` of one kevent (see [`Queue::remove_locked`]).
    #[cfg_attr(not(CONFIG_KEVENT_KUNIT_TEST), allow(dead_code))]
    pub(crate) fn remove(&self, src: &dyn Source, uk: &Ukevent) -> Result {
        self.remove_locked(&mut self.index.lock(), src, uk)
    }

    /// `KEVENT_CTL_MODIFY` of one kevent (see [`Queue::modify_locked`]).
    #[cfg_attr(not(CONFIG_KEVENT_KUNIT_TEST), allow(dead_code))]
    pub(crate) fn modify(self: ArcBorrow<'_, Self>, src: &dyn Source, uk: &Ukevent) -> Result {
        self.modify_locked(&mut self.index.lock(), src, uk)
    }

    /// `KEVENT_CTL_ADD` of one kevent, under `index`, this queue's index (a `kevent_ctl()` batch
    /// holds it for all its entries, see `syscalls::apply`); `more` is the batch hint for its
    /// source (see [`Source::attach`]).
    pub(crate) fn add_locked(
        self: ArcBorrow<'_, Self>,
        index: &mut Index,
        src: &dyn Source,
        uk: &Ukevent,
        more: bool,
    ) -> Result {
        self.add_with(index, src, &src.info(), uk, more)
    }

    /// [`Queue::add_locked`] with `info`, what `src` says of itself.
    pub(crate) fn add_with(
        self: ArcBorrow<'_, Self>,
        index: &mut Index,
        src: &dyn Source,
        info: &Info,
        uk: &Ukevent,
        more: bool,
    ) -> Result {
        Self::admit(index, src, info, uk)?;
        self.attach(index, src, info, uk, more)
    }

    /// Checks the `KEVENT_CTL_ADD` entry `uk` of the source `src` (`EINVAL`), and that its key
    /// is free (`EEXIST`): returns the key.
    fn admit(index: &Index, src: &dyn Source, info: &Info, uk: &Ukevent) -> Result<Key> {
        Self::check(src, info, uk)?;
        let key = Key::of(uk, info);
        if index.table.contains(&key) || index.holds_kept(&key) {
            return Err(EEXIST);
        }
        Ok(key)
    }

    /// Tries the `KEVENT_CTL_ADD` entries `run` (consecutive entries with the same type, id and
    /// event, of a source with [`Info::runs`]) as one operation ([`Source::submit_run`]), under
    /// `index`. Only the longest prefix (of at most [`RUN_MAX`] entries) whose entries would all
    /// be added, as far as the core can tell before the source acts, is tried: each entry is
    /// admitted (checked, its key free and not shared with an entry before it) and its charge
    /// taken, so that once data moved no entry can fail for a reason of the core's. `out[j]` is
    /// set for each admitted entry `j`, with its charge and what the run did with it, to be passed
    /// to [`Queue::add_presubmitted`] (an entry the run did not touch, or of a prefix too short to
    /// try, goes on as any entry, without being admitted and charged again). Returns the length
    /// of the prefix.
    pub(crate) fn submit_run(
        &self,
        index: &mut Index,
        src: &dyn Source,
        info: &Info,
        run: &[Ukevent],
        out: &mut [Option<Presubmitted>; RUN_MAX],
    ) -> usize {
        let mut charges: [Option<Charge>; RUN_MAX] = Default::default();
        let mut n = 0;
        for (j, uk) in run.iter().take(RUN_MAX).enumerate() {
            let Ok(key) = Self::admit(index, src, info, uk) else {
                break;
            };
            if run[..j].iter().any(|e| Key::of(e, info) == key) {
                break;
            }
            let Ok(charge) = self.user.charge() else {
                break;
            };
            charges[j] = Some(charge);
            n = j + 1;
        }
        let mut results = [0i64; RUN_MAX];
        // A reservation makes room for every later insertion (see `HashLists::reserve_one`).
        let k = if n >= 2 && index.table.reserve_one().is_ok() {
            src.submit_run(&run[..n], &mut results[..n]).min(n)
        } else {
            0
        };
        let posted = self.post_run(info, &run[..k], &results[..k]);
        for (j, (charge, out)) in charges.iter_mut().zip(out.iter_mut()).enumerate().take(n) {
            if posted[j] {
                *out = Some(Presubmitted::Posted);
                continue;
            }
            let result = match (j.cmp(&k), results[j]) {
                (Ordering::Less, r) => Some(Ok(r)),
                (Ordering::Equal, p) if p > 0 => Some(Err(p)),
                _ => None,
            };
            *out = charge
                .take()
                .map(|charge| Presubmitted::Charged { charge, result });
        }
        n
    }

    /// Writes the results of the finished entries `run` of a run into the ring, under one hold of
    /// the ready lock, as [`NewKevent::post_finished`] would one by one: those that need nothing
    /// more (a value, of a source without level state), while the ring has room. Wakes a waiter
    /// for each (all for one with `KEVENT_REQ_WAKEUP_ALL`). Returns which were written.
    fn post_run(&self, info: &Info, run: &[Ukevent], results: &[i64]) -> [bool; RUN_MAX] {
        let mut posted = [false; RUN_MAX];
        let Some(ring) = self.ring.as_ref().filter(|_| !info.rechecks) else {
            return posted;
        };
        let (mut one, mut all) = (0, false);
        let mut ready = self.ready.lock();
        for ((uk, &r), done) in run.iter().zip(results).zip(posted.iter_mut()) {
            // A failure takes a kevent, as it would alone.
            if r < 0 {
                continue;
            }
            let ev = Request::of(uk).ring_event(&Key::of(uk, info), uk.0.event, r);
            // A full ring is counted in its overflow by the kevent of each entry that follows.
            if !ring.try_post(&mut ready.producer, &ev) {
                break;
            }
            *done = true;
            if uk.0.req_flags & KEVENT_REQ_WAKEUP_ALL != 0 {
                all = true;
            } else {
                one += 1;
            }
        }
        drop(ready);
        if all {
            self.wake(Wake::All);
        } else {
            for _ in 0..one {
                self.wake(Wake::One);
            }
        }
        posted
    }

    /// `KEVENT_CTL_REMOVE` of one kevent of the source `src`, under `index`.
    ///
    /// A kevent of a source with a cancel errno is cancelled rather than dropped (see
    /// [`Queue::cancel`]).
    pub(crate) fn remove_locked(
        &self,
        index: &mut Index,
        src: &dyn Source,
        uk: &Ukevent,
    ) -> Result {
        let key = Key::of(uk, &src.info());
        let Some(kevent) = index.table.remove(&key) else {
            // A kept result stays to be delivered, as the event of a finished kevent does.
            return if index.holds_kept(&key) {
                Ok(())
            } else {
                Err(ENOENT)
            };
        };
        if kevent.cancel_errno != 0 {
            self.cancel(index, &kevent);
        } else {
            self.detach(index, &kevent);
        }
        Ok(())
    }

    /// `KEVENT_CTL_MODIFY` of one kevent, under `index`: new mask, flags and cookie; re-armed.
    ///
    /// The kevent is replaced: the old one is detached and removed (what fired under the old
    /// request is forgotten), and a new one attached with the new request, under the same hold
    /// of the index. If that fails the kevent is gone, and the entry reports why.
    ///
    /// `EINVAL` for a source keyed by `user_data`: the new cookie would be a new key.
    pub(crate) fn modify_locked(
        self: ArcBorrow<'_, Self>,
        index: &mut Index,
        src: &dyn Source,
        uk: &Ukevent,
    ) -> Result {
        let info = src.info();
        if info.keyed_by_user_data {
            return Err(EINVAL);
        }
        Self::check(src, &info, uk)?;
        let key = Key::of(uk, &info);
        let old = index.table.remove(&key).ok_or(ENOENT)?;
        self.detach(index, &old);
        drop(old);
        self.attach(index, src, &info, uk, false)
    }

    /// Builds and attaches a kevent for `uk`, whose key is free (through its source `src`), and
    /// indexes it.
    fn attach(
        self: ArcBorrow<'_, Self>,
        index: &mut Index,
        src: &dyn Source,
        info: &Info,
        uk: &Ukevent,
        more: bool,
    ) -> Result {
        let pre = Presubmitted::Charged {
            charge: self.user.charge()?,
            result: None,
        };
        self.add_presubmitted(index, src, info, uk, more, pre)
    }

    /// `KEVENT_CTL_ADD` of the entry `uk` of a run that [`Queue::submit_run`] admitted (`pre`),
    /// under `index` (or, from [`Queue::attach`], of any entry, just charged): the entry was
    /// checked and charged, and nothing was added since with its key. An entry the run finished
    /// or made progress on is added with that; one it did not touch, as any entry.
    pub(crate) fn add_presubmitted(
        self: ArcBorrow<'_, Self>,
        index: &mut Index,
        src: &dyn Source,
        info: &Info,
        uk: &Ukevent,
        more: bool,
        pre: Presubmitted,
    ) -> Result {
        let Presubmitted::Charged { charge, result } = pre else {
            // Reported already.
            return Ok(());
        };
        index.table.reserve_one()?;
        let mut built = None;
        let new = NewKevent::new(
            self,
            info,
            Key::of(uk, info),
            Request::of(uk),
            charge,
            &mut built,
        );
        let attached = match result {
            Some(submitted) => src.attach_submitted(new, uk, more, index, submitted),
            None => src.attach(new, uk, more, index),
        };
        self.index_attached(index, built, attached)
    }

    /// After [`Source::attach`] (or [`Source::attach_submitted`]) returned `attached`, with the
    /// kevent it built (if any) in `built`: indexes the kevent, or drops it after a failure.
    fn index_attached(
        &self,
        index: &mut Index,
        built: Option<ListArc<Kevent, INDEX>>,
        attached: Result<Attach>,
    ) -> Result {
        match attached {
            // `Attach` is only made from what `build` made: `built` holds the kevent.
            // The request finished and was reported without a kevent: nothing to index.
            Ok(attach) if attach.is_posted() => Ok(()),
            Ok(attach) => {
                let item = built.ok_or(EINVAL)?;
                if attach.is_attached() {
                    item.set_attached(index);
                }
                index.table.insert(item);
                Ok(())
            }
            Err(e) => {
                // The source did not keep it; make sure it is on no list of ours either.
                if let Some(item) = built {
                    item.uncharge(index);
                    self.unlink(&item);
                }
                Err(e)
            }
        }
    }

    /// Removes `kevent` from its queue if it is still there (its descriptor was closed).
    pub(crate) fn remove_kevent(kevent: &Arc<Kevent>) {
        let queue = &kevent.queue;
        let mut index = queue.index.lock();
        let Some(removed) = index.table.remove_kevent(kevent) else {
            return;
        };
        if kevent.cancel_errno != 0 {
            queue.cancel(&mut index, kevent);
        } else {
            queue.detach(&mut index, kevent);
        }
        drop(index);
        drop(removed);
    }

    /// Takes `kevent` off the ready list (or the `reap` list), if it is on it, and stops its
    /// notifications.
    fn unlink(&self, kevent: &Kevent) {
        let mut ready = self.ready.lock();
        let st = kevent.state.access_mut(&mut ready);
        st.dead = true;
        let item = if core::mem::take(&mut st.reaping) {
            // SAFETY: A kevent with `reaping` set is on its queue's `reap` list.
            unsafe { ready.reap.remove(kevent) }
        } else {
            // SAFETY: A kevent's `READY` links are only used for its own queue's ready list, its
            // `reap` list while `reaping` is set (it is not), and a delivery's local list, which
            // exists only under `index`, held by the callers of `detach`, and only for kevents
            // `deliver` has not handed to `detach`.
            let item = unsafe { ready.list.remove(kevent) };
            if item.is_some() {
                ready.nr -= 1;
            }
            item
        };
        drop(ready);
        drop(item);
    }

    /// Detaches a kevent removed from the index: from its source, then from the ready list.
    fn detach(&self, index: &mut Index, kevent: &Kevent) {
        kevent.detach_src(index);
        kevent.uncharge(index);
        self.unlink(kevent);
    }

    /// Cancels a kevent removed from the index (`KEVENT_CTL_REMOVE`, or the close of its
    /// descriptor) whose source has a cancel errno: detaches it from its source, then reports it
    /// broken with `-cancel_errno` unless a notification is already pending for it. Either way
    /// it stays on the ready list, out of the index, until that last event is delivered (or the
    /// queue released).
    ///
    /// Race-free against a notification from the source: the detach takes the kevent off its
    /// storage under the storage's lock, so a notification either came before (and is pending,
    /// kept) or finds the kevent gone.
    ///
    /// The kevent keeps its charge against the per-user limit until then, so that cancelled
    /// kevents nobody collects cannot pile up beyond it.
    fn cancel(&self, index: &mut Index, kevent: &Arc<Kevent>) {
        kevent.detach_src(index);
        Kevent::notify_cancelled(kevent.as_arc_borrow(), -i64::from(kevent.cancel_errno));
    }

    /// Removes every kevent: the queue file is being released.
    pub(crate) fn release_all(&self) {
        let mut index = self.index.lock();
        self.reap(&mut index);
        // Take the whole table: one walk, not a lookup per kevent.
        let mut table = index.table.take_all();
        for list in table.iter_mut() {
            while let Some(kevent) = list.pop_front() {
                self.detach(&mut index, &kevent);
            }
        }
        // What is left on the ready list is cancelled kevents, out of the index and detached,
        // whose last event nobody will collect now.
        let mut cancelled = {
            let mut ready = self.ready.lock();
            ready.nr = 0;
            core::mem::replace(&mut ready.list, List::new())
        };
        while let Some(kevent) = cancelled.pop_front() {
            kevent.uncharge(&mut index);
        }
        drop(index);
        drop(table);
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
            let in_ring;
            {
                let mut ready = self.ready.lock();
                while ready.deliverable() + self.in_ring(&ready) < min_nr && !timed_out {
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
                            if ready.deliverable() == 0 && self.in_ring(&ready) == 0 {
                                return Err(EINTR);
                            }
                            signalled = true;
                            timed_out = true;
                        }
                        CondVarDeadlineResult::Timeout => timed_out = true,
                        CondVarDeadlineResult::Woken => {}
                    }
                }
                in_ring = self.in_ring(&ready);
            }
            let n = self.deliver(max_nr, sink)?;
            // Interrupted, and the kevents that were ready turned out stale: nothing copied.
            if n == 0 && signalled && in_ring == 0 {
                return Err(EINTR);
            }
            // Level-triggered kevents found no longer ready are not reported: if that left
            // nothing to report and time remains, wait again. Events in the ring are the
            // caller's to take: it returns at once for them.
            if n > 0 || timed_out || min_nr == 0 || in_ring > 0 {
                return Ok(n);
            }
        }
    }

    /// Settles delivered kevents (`checks`, then `check`), under `ready`: those notified again
    /// while they were being delivered stay ready (they go to `requeue`; returns how many). The
    /// others leave the ready list: their reference is dropped under `ready`, so that a
    /// notification either saw them queued (and left its events in their state, seen here) or
    /// finds them free to queue.
    #[inline(always)]
    fn settle(
        ready: &mut ReadyList,
        checks: &mut KVec<ListArc<Kevent, READY>>,
        check: &mut List<Kevent, READY>,
        requeue: &mut List<Kevent, READY>,
    ) -> usize {
        if checks.is_empty() && check.is_empty() {
            return 0;
        }
        let mut n = 0;
        let mut rest = checks.drain_all();
        while let Some(item) = rest.next().or_else(|| check.pop_front()) {
            let st = item.state.access_mut(ready);
            if st.fired != 0 || st.broken.is_some() {
                requeue.push_back(item);
                n += 1;
            } else {
                drop(item);
            }
        }
        n
    }

    /// Delivers up to `max_nr` kept results (see [`Queue::post_done`]) to `sink`, oldest first,
    /// through `staging`, a round at a time: returns how many, and the fault that stopped it.
    /// Those not copied stay kept, first in line.
    fn deliver_done(
        &self,
        index: &mut Index,
        max_nr: usize,
        staging: &mut KVec<Ukevent>,
        sink: &mut dyn Sink,
    ) -> (usize, Option<Error>) {
        let mut delivered = 0;
        while delivered < max_nr {
            let Some(done) = index.done.as_mut().filter(|d| d.len() > 0) else {
                break;
            };
            done.peek(max_nr - delivered, staging);
            let (copied, err) = sink.put_all(staging);
            let all = copied == staging.len();
            staging.clear();
            if copied > 0 {
                done.consume(copied);
                self.ready.lock().kept -= copied;
                delivered += copied;
            }
            if err.is_some() || !all {
                return (delivered, err);
            }
        }
        (delivered, None)
    }

    /// Delivers up to `max_nr` ready kevents to `sink`, after the kept results.
    ///
    /// Kevents are taken off the head of the ready list, with their state, up to
    /// [`DELIVERY_CHUNK`] per hold of `ready`; the ones that must stay ready are put back after
    /// each round with one more. Those that the call does not deliver stay at the head, in order;
    /// level-triggered kevents that are still ready go to the tail when the call ends.
    fn deliver(&self, max_nr: usize, sink: &mut dyn Sink) -> Result<usize> {
        let mut index = self.index.lock();
        self.reap(&mut index);
        let Buffers {
            scratch: mut batch,
            mut staging,
            mut checks,
        } = match index.buffers.take() {
            Some(buffers) => buffers,
            // Cannot happen (see `Index::buffers`); a delivery could do with new ones all the same.
            None => Buffers::new()?,
        };
        // Kevents to queue again at the end of the call, and delivered ones to settle at the next
        // hold of `ready` (the next round's, or the last one's): `checks`, and `check` for any
        // beyond its room (there are none: it has room for a round).
        let mut requeue = List::<Kevent, READY>::new();
        let mut nr_requeue = 0;
        let mut check = List::<Kevent, READY>::new();
        // Taken, not delivered (after a fault): back to the head.
        let mut back = List::<Kevent, READY>::new();
        let mut nr_back = 0;
        let (mut delivered, mut fault) = self.deliver_done(&mut index, max_nr, &mut staging, sink);
        while delivered < max_nr && fault.is_none() {
            {
                let mut ready = self.ready.lock();
                nr_requeue += Self::settle(&mut ready, &mut checks, &mut check, &mut requeue);
                let want = (max_nr - delivered).min(batch.capacity());
                while batch.len() < want {
                    let Some(item) = ready.list.pop_front() else {
                        break;
                    };
                    ready.nr -= 1;
                    let kevent: &Kevent = &item;
                    let st = kevent.state.access_mut(&mut ready);
                    let taken = Taken {
                        req: st.req,
                        fired: core::mem::take(&mut st.fired),
                        data: core::mem::take(&mut st.data),
                        broken: st.broken.take(),
                        oneshot: st.req.flags & KEVENT_REQ_ONESHOT != 0 || kevent.oneshot,
                        report: false,
                        still_ready: false,
                        item,
                    };
                    // Cannot fail: `want` is at most the capacity.
                    if let Err(PushError(t)) = batch.push_within_capacity(taken) {
                        let st = t.item.state.access_mut(&mut ready);
                        st.fired = t.fired;
                        st.data = t.data;
                        st.broken = t.broken;
                        ready.list.push_front(t.item);
                        ready.nr += 1;
                        break;
                    }
                }
            }
            if batch.is_empty() {
                break;
            }
            // What each kevent reports, staged for one copy to userspace.
            for t in batch.iter_mut() {
                // Reached through the `ListArc` once (see `Kevent::notify_with`).
                let kevent: &Kevent = &t.item;
                let level = t.req.flags & KEVENT_REQ_ET == 0 && !t.oneshot;
                let mut events = t.fired;
                if t.broken.is_none() && kevent.is_attached(&index) {
                    let src = &kevent.src;
                    if t.fired != 0 && kevent.delivering {
                        t.data = src.delivering(kevent, t.data, &mut index);
                    }
                    let now = if kevent.rechecks {
                        src.recheck(kevent, t.req.event, &mut t.data, &index)
                    } else {
                        None
                    };
                    if let Some(now) = now {
                        // Report what is ready now, not what was once.
                        events = now & t.req.event;
                        t.still_ready = level && events != 0;
                    }
                }
                if events == 0 && t.broken.is_none() {
                    continue;
                }
                let uk = t.req.report(&kevent.key, events, t.broken, t.data);
                // Cannot fail: the staging buffer has room for a whole round.
                if staging.push_within_capacity(uk).is_ok() {
                    t.report = true;
                }
            }
            let (copied, err) = sink.put_all(&staging);
            staging.clear();
            if err.is_some() {
                fault = err;
            }
            let mut reported = 0;
            let mut rest = batch.drain_all();
            while let Some(t) = rest.next() {
                if t.report {
                    reported += 1;
                    if reported > copied {
                        // Not consumed: give the state back (with that of the rest of the
                        // round) and keep them first in line.
                        let mut ready = self.ready.lock();
                        for t in Iterator::chain(core::iter::once(t), rest.by_ref()) {
                            let st = t.item.state.access_mut(&mut ready);
                            st.fired |= t.fired;
                            st.data = st.data.saturating_add(t.data);
                            if st.broken.is_none() {
                                st.broken = t.broken;
                            }
                            back.push_back(t.item);
                            nr_back += 1;
                        }
                        break;
                    }
                    delivered += 1;
                    if t.oneshot || t.broken.is_some() {
                        // Still in the index, unless it was cancelled: then it is detached
                        // already, and its key may name a new kevent.
                        if let Some(kevent) = index.table.remove_kevent(&t.item) {
                            // Out of the index, so only its source can notify it, and not once
                            // detached. Until then `t.item` keeps it off the ready list (it is
                            // being delivered), so it never gets there again, and is not
                            // unlinked from it, unlike what `KEVENT_CTL_REMOVE` detaches.
                            kevent.detach_src(&mut index);
                        }
                        // Cancelled, or just removed: its charge is all it has left.
                        t.item.uncharge(&mut index);
                        continue;
                    }
                }
                if t.still_ready {
                    requeue.push_back(t.item);
                    nr_requeue += 1;
                } else if let Err(PushError(item)) = checks.push_within_capacity(t.item) {
                    check.push_back(item);
                }
            }
        }
        // The last round's kevents are settled with the rest: undelivered kevents go back first,
        // in order; re-armed level ones, and the delivered ones notified meanwhile, at the tail.
        // With none of these, `ready` is only needed to pass a wake-up on to another waiter.
        let pending = !checks.is_empty() || !check.is_empty() || nr_back + nr_requeue > 0;
        let more = if pending || self.wait.has_waiters() {
            let mut ready = self.ready.lock();
            nr_requeue += Self::settle(&mut ready, &mut checks, &mut check, &mut requeue);
            back.push_all_back(&mut ready.list);
            core::mem::swap(&mut back, &mut ready.list);
            ready.list.push_all_back(&mut requeue);
            ready.nr += nr_back + nr_requeue;
            ready.deliverable() > 0
        } else {
            false
        };
        index.buffers = Some(Buffers {
            scratch: batch,
            staging,
            checks,
        });
        drop(index);
        if more {
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

    /// Maps the queue's ring: `ENODEV` for a queue without one.
    fn mmap(queue: ArcBorrow<'_, Queue>, _file: &File, vma: &VmaNew) -> Result {
        queue.ring.as_ref().ok_or(ENODEV)?.map(vma)
    }

    fn show_fdinfo(queue: ArcBorrow<'_, Queue>, m: &SeqFile, _file: &File) {
        let index = queue.index.lock();
        seq_print!(
            m,
            "kevents:\t{}\nready:\t{}\n",
            index.table.len(),
            queue.nr_ready()
        );
        for kevent in index.table.iter() {
            let key = kevent.key;
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
        let ready = queue.ready.lock();
        if ready.deliverable() > 0 || queue.in_ring(&ready) > 0 {
            bindings::POLLIN | bindings::POLLRDNORM
        } else {
            0
        }
    }
}
