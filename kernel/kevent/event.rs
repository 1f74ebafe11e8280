// SPDX-License-Identifier: GPL-2.0

//! One kevent: one interest of one queue in one source of events.
//!
//! A kevent is on up to four lists: its queue's index of all kevents (a hash table of lists,
//! list id [`INDEX`], keyed by `(type, id)`, or `(type, id, user_data)` for a source keyed by
//! `user_data`, see `index.rs`; it owns a reference),
//! its queue's ready list (while ready, list id [`READY`]), the list of its storage (while
//! attached to one, list id [`STORAGE`]), and a bucket of the registry of registrations by
//! descriptor (while registered by one, list id [`FDTRACK`], see `fdtrack.rs`).
//!
//! The source's side of a kevent (its [`Attached`]: a timer, a wait-queue entry, a reference to
//! an object) is the unsized tail of the kevent's own allocation: a source builds a
//! [`KeventOf<A>`] around its `A` ([`NewKevent::build`]), and the core keeps it as a [`Kevent`],
//! a `KeventOf<dyn Attached>`. One allocation per kevent; its list links point back at the whole
//! value ([`ListLinksSelfPtr`]), as Rust Binder's `DTRWrap<dyn DeliverToRead>` does.

use crate::{
    abi::*,
    fdtrack::{Tracked, TrackedBy, FDTRACK},
    index::INDEX,
    limit::Charge,
    queue::{Index, Queue, ReadyList},
    ring::RingEvent,
    source::{Attached, Info},
};
use kernel::{
    alloc::Flags,
    list::{AtomicTracker, ListArc, ListLinksSelfPtr, TryNewListArc},
    prelude::*,
    sync::{Arc, ArcBorrow, LockedBy},
};

/// List id of a queue's ready list.
pub(crate) const READY: u64 = 0;
/// List id of a storage's list.
pub(crate) const STORAGE: u64 = 1;

/// What names a kevent in its queue.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) struct Key {
    pub(crate) ty: u32,
    pub(crate) id: u64,
    /// The entry's `user_data` for a source keyed by it ([`Info::keyed_by_user_data`]), so
    /// that several kevents may share one `id` (requests in flight on one descriptor); 0 for the
    /// others.
    pub(crate) user_data: u64,
}

impl Key {
    /// The key `uk` names for the source of its type, described by `info`.
    pub(crate) fn of(uk: &Ukevent, info: &Info) -> Key {
        Key {
            ty: uk.0.type_,
            id: uk.0.id,
            user_data: if info.keyed_by_user_data {
                uk.0.user_data
            } else {
                0
            },
        }
    }
}

/// What userspace asked for; changed by `KEVENT_CTL_MODIFY`.
#[derive(Clone, Copy)]
pub(crate) struct Request {
    pub(crate) user_data: u64,
    pub(crate) event: u32,
    pub(crate) flags: u32,
}

impl Request {
    /// The entry that reports `events` of this request on the kevent of `key`: broken with
    /// `errno` (negative), or done with `data`.
    pub(crate) fn report(&self, key: &Key, events: u32, broken: Option<i64>, data: i64) -> Ukevent {
        let mut uk = Ukevent::zeroed();
        uk.0.user_data = self.user_data;
        uk.0.id = key.id;
        uk.0.type_ = key.ty;
        uk.0.event = events;
        uk.0.req_flags = self.flags;
        (uk.0.ret_flags, uk.0.ret_data) = match broken {
            Some(errno) => (KEVENT_RET_BROKEN, errno),
            None => (KEVENT_RET_DONE, data),
        };
        uk
    }

    /// The ring event that reports `events` of this request on the kevent of `key`, with `data`.
    pub(crate) fn ring_event(&self, key: &Key, events: u32, data: i64) -> RingEvent {
        RingEvent {
            user_data: self.user_data,
            id: key.id,
            ty: key.ty,
            event: events,
            req_flags: self.flags,
            ret_data: data,
        }
    }

    /// The request in `uk`.
    pub(crate) fn of(uk: &Ukevent) -> Request {
        Request {
            user_data: uk.0.user_data,
            event: uk.0.event,
            flags: uk.0.req_flags,
        }
    }
}

/// The delivery state of a kevent, guarded by its queue's ready lock.
pub(crate) struct State {
    pub(crate) req: Request,
    /// Events that fired since the last delivery.
    pub(crate) fired: u32,
    /// Accumulated result since the last delivery (for example timer expirations).
    pub(crate) data: i64,
    /// The source is gone or failed: deliver once with `KEVENT_RET_BROKEN` and `-errno`.
    pub(crate) broken: Option<i64>,
    /// Removed from its queue: notifications are ignored from now on.
    pub(crate) dead: bool,
    /// A oneshot kevent written into the ring, on the ready list's `reap` list until it leaves
    /// its queue (see [`Queue::reap`]).
    pub(crate) reaping: bool,
}

/// A registered kevent, with the source's side of it, `A`, in the same allocation.
///
/// Built by its source ([`NewKevent::build`]) as a `KeventOf<A>`, used by the core as a
/// [`Kevent`].
#[pin_data]
pub(crate) struct KeventOf<A: ?Sized> {
    pub(crate) key: Key,
    /// Its source makes every kevent oneshot ([`Info::oneshot`]), whatever its request says.
    pub(crate) oneshot: bool,
    /// Its source has level state ([`Info::rechecks`]).
    pub(crate) rechecks: bool,
    /// Its source's [`Attached::delivering`] is called ([`NewKevent::with_delivering`]).
    pub(crate) delivering: bool,
    /// Its queue has a ring, and the kevent needs nothing at delivery: its notifications are
    /// written into the ring ([`Kevent::mark`]).
    pub(crate) ring: bool,
    /// A positive errno with which `KEVENT_CTL_REMOVE` and the close of the descriptor the
    /// kevent follows report it, if not already notified ([`Info::cancel_errno`]); 0: they
    /// remove it silently.
    pub(crate) cancel_errno: i32,
    pub(crate) queue: Arc<Queue>,
    #[pin]
    ready_links: ListLinksSelfPtr<Kevent, READY>,
    #[pin]
    ready_track: AtomicTracker<READY>,
    #[pin]
    storage_links: ListLinksSelfPtr<Kevent, STORAGE>,
    #[pin]
    storage_track: AtomicTracker<STORAGE>,
    #[pin]
    index_links: ListLinksSelfPtr<Kevent, INDEX>,
    #[pin]
    fd_links: ListLinksSelfPtr<Kevent, FDTRACK>,
    #[pin]
    fd_track: AtomicTracker<FDTRACK>,
    /// Its registration by descriptor, while in the registry of them (`fdtrack.rs`).
    pub(crate) tracked: TrackedBy,
    pub(crate) state: LockedBy<State, ReadyList>,
    /// The source attached `src` and has not detached it yet ([`Attached::detach`] is due).
    attached: LockedBy<bool, Index>,
    /// The kevent's charge against its user's limit, released when it leaves the index.
    charge: LockedBy<Option<Charge>, Index>,
    /// The source's side of the kevent. Its methods run under the queue's index mutex.
    #[pin]
    pub(crate) src: A,
}

/// A kevent as the core sees it: its source's side is any [`Attached`].
pub(crate) type Kevent = KeventOf<dyn Attached>;

kernel::list::impl_list_arc_safe! {
    impl ListArcSafe<READY> for Kevent { tracked_by ready_track: AtomicTracker<READY>; }
    impl ListArcSafe<STORAGE> for Kevent { tracked_by storage_track: AtomicTracker<STORAGE>; }
    // The index's reference is made with the kevent, and is the only one.
    impl{A: ?Sized} ListArcSafe<INDEX> for KeventOf<A> { untracked; }
    impl ListArcSafe<FDTRACK> for Kevent { tracked_by fd_track: AtomicTracker<FDTRACK>; }
}
kernel::list::impl_list_item! {
    impl ListItem<READY> for Kevent { using ListLinksSelfPtr { self.ready_links }; }
    impl ListItem<STORAGE> for Kevent { using ListLinksSelfPtr { self.storage_links }; }
    impl ListItem<INDEX> for Kevent { using ListLinksSelfPtr { self.index_links }; }
    impl ListItem<FDTRACK> for Kevent { using ListLinksSelfPtr { self.fd_links }; }
}

/// A kevent to add (`KEVENT_CTL_ADD`, or the new kevent of `KEVENT_CTL_MODIFY`): what the core
/// made of the entry, for [`Source::attach`] to build the kevent around the source's side of it.
pub(crate) struct NewKevent<'a> {
    queue: ArcBorrow<'a, Queue>,
    key: Key,
    req: Request,
    oneshot: bool,
    rechecks: bool,
    delivering: bool,
    ring: bool,
    /// What the source reports is final: no re-check or count at delivery changes it.
    direct: bool,
    cancel_errno: i32,
    charge: Charge,
    /// Where [`NewKevent::build`] leaves the index's reference, for the core.
    built: &'a mut Option<ListArc<Kevent, INDEX>>,
}

impl<'a> NewKevent<'a> {
    /// What the core needs to add a kevent of the source described by `info` with `key` and
    /// `req` to `queue`; [`NewKevent::build`] leaves the kevent in `built`.
    pub(crate) fn new(
        queue: ArcBorrow<'a, Queue>,
        info: &Info,
        key: Key,
        req: Request,
        charge: Charge,
        built: &'a mut Option<ListArc<Kevent, INDEX>>,
    ) -> Self {
        let edge = req.flags & (KEVENT_REQ_ET | KEVENT_REQ_ONESHOT) != 0 || info.oneshot;
        NewKevent {
            queue,
            key,
            req,
            oneshot: info.oneshot,
            rechecks: info.rechecks,
            delivering: false,
            // A level re-check at delivery is all a kevent without `delivering()` needs there:
            // none without level state, and the one where it is notified for an edge.
            ring: queue.ring.is_some() && (!info.rechecks || (info.notifies && edge)),
            direct: !info.rechecks,
            // Cancellation is for requests: a cancelled kevent must leave at its delivery.
            cancel_errno: if info.oneshot { info.cancel_errno } else { 0 },
            charge,
            built,
        }
    }

    /// The queue the kevent is for (its `index` is the lock a source's state may be
    /// [`LockedBy`]).
    pub(crate) fn queue(&self) -> ArcBorrow<'a, Queue> {
        self.queue
    }

    /// The kevent's source's side counts or re-arms at delivery: [`Attached::delivering`] is
    /// called when something fired (never otherwise).
    pub(crate) fn with_delivering(self) -> Self {
        NewKevent {
            delivering: true,
            ring: false,
            direct: false,
            ..self
        }
    }

    /// Reports a request that finished with `result` (a value, or `-errno`) before its kevent
    /// was built (see [`Source::attach`]), without a kevent: returns whether it did. A value goes
    /// straight into the queue's ring; in a queue without a ring, the result is kept for
    /// `kevent_get_events()` ([`Queue::post_done`]). `false` if the kevent would need something
    /// at delivery, the ring or the buffer is full, or (with a ring) the request failed: the
    /// caller then builds the kevent and notifies it, which takes the ready list.
    ///
    /// The event is the one the kevent would have delivered: the request's events, its cookie
    /// and `result`, its key's type and id.
    pub(crate) fn post_finished(&self, result: i64, index: &mut Index) -> bool {
        if !self.direct {
            return false;
        }
        let Some(ring) = self.queue.ring.as_ref() else {
            let broken = (result < 0).then_some(result);
            let uk = self.req.report(&self.key, self.req.event, broken, result);
            return self.queue.post_done(index, &uk, self.key);
        };
        if !self.ring || result < 0 {
            return false;
        }
        let ev = self.req.ring_event(&self.key, self.req.event, result);
        let posted = {
            let mut ready = self.queue.ready.lock();
            // A full ring is counted in its overflow by the kevent's own notification.
            ring.try_post(&mut ready.producer, &ev)
        };
        if posted {
            self.queue
                .wake(if self.req.flags & KEVENT_REQ_WAKEUP_ALL != 0 {
                    Wake::All
                } else {
                    Wake::One
                });
        }
        posted
    }

    /// The kevent's request finished before it was built, and [`NewKevent::post_finished`]
    /// reported it: no kevent is made, nothing is attached or indexed, and the charge is
    /// returned.
    pub(crate) fn posted(self) -> Attach {
        Attach(AttachKind::Posted)
    }

    /// Allocates the kevent, with `src` as the source's side of it. The core indexes it once
    /// [`Source::attach`] returns with it attached or finished; if `attach` fails, the core
    /// takes it off its lists and drops it.
    pub(crate) fn build<A: Attached + 'static, E>(self, src: impl PinInit<A, E>) -> Result<Built<A>>
    where
        Error: From<E>,
    {
        self.build_with(src, GFP_KERNEL_ACCOUNT)
    }

    /// Like [`NewKevent::build`], for the kevent of a request that finished (or moved data)
    /// before it: the allocation is not charged to the memory cgroup, whose limit would make it
    /// fail, and the request's result be lost, after the request did its work. Such a kevent
    /// lives until its one event is delivered, and counts against the per-user limit as any
    /// other (its charge was taken before the request started).
    pub(crate) fn build_finished<A: Attached + 'static, E>(
        self,
        src: impl PinInit<A, E>,
    ) -> Result<Built<A>>
    where
        Error: From<E>,
    {
        self.build_with(src, GFP_KERNEL)
    }

    fn build_with<A: Attached + 'static, E>(
        self,
        src: impl PinInit<A, E>,
        flags: Flags,
    ) -> Result<Built<A>>
    where
        Error: From<E>,
    {
        let queue = self.queue;
        let item = ListArc::pin_init(
            try_pin_init!(KeventOf::<A> {
                key: self.key,
                oneshot: self.oneshot,
                rechecks: self.rechecks,
                delivering: self.delivering,
                ring: self.ring,
                cancel_errno: self.cancel_errno,
                queue: queue.into(),
                ready_links <- ListLinksSelfPtr::new(),
                ready_track <- AtomicTracker::new(),
                storage_links <- ListLinksSelfPtr::new(),
                storage_track <- AtomicTracker::new(),
                index_links <- ListLinksSelfPtr::new(),
                fd_links <- ListLinksSelfPtr::new(),
                fd_track <- AtomicTracker::new(),
                tracked: TrackedBy::new(Tracked::default()),
                state: LockedBy::new(
                    &queue.ready,
                    State {
                        req: self.req,
                        fired: 0,
                        data: 0,
                        broken: None,
                        dead: false,
                        reaping: false,
                    },
                ),
                attached: LockedBy::new(&queue.index, false),
                charge: LockedBy::new(&queue.index, Some(self.charge)),
                src <- src,
            }),
            flags,
        )?;
        let kevent = item.as_arc().clone();
        *self.built = Some(item);
        Ok(Built(kevent))
    }
}

/// A kevent [`NewKevent::build`] made, for [`Source::attach`] to attach.
pub(crate) struct Built<A: Attached>(Arc<KeventOf<A>>);

impl<A: Attached> Built<A> {
    /// The kevent.
    pub(crate) fn kevent(&self) -> &Arc<KeventOf<A>> {
        &self.0
    }

    /// The source attached the kevent: [`Attached::detach`] is called when it goes.
    pub(crate) fn attached(self) -> Attach {
        Attach(AttachKind::Attached)
    }

    /// The kevent is complete already (see [`Source::attach`]): nothing is attached.
    pub(crate) fn finished(self) -> Attach {
        Attach(AttachKind::Finished)
    }
}

/// What [`Source::attach`] did: only [`Built`] and [`NewKevent::posted`] make one (its field is
/// private to this module, so a source cannot make one without building a kevent, or reporting
/// its request's result without one).
pub(crate) struct Attach(AttachKind);

#[derive(Clone, Copy, PartialEq, Eq)]
enum AttachKind {
    /// [`Built::attached`].
    Attached,
    /// [`Built::finished`].
    Finished,
    /// [`NewKevent::posted`]: no kevent was built.
    Posted,
}

impl Attach {
    /// Whether the kevent was attached ([`Built::attached`]) rather than finished at once.
    pub(crate) fn is_attached(&self) -> bool {
        self.0 == AttachKind::Attached
    }

    /// Whether the request finished without a kevent ([`NewKevent::posted`]).
    pub(crate) fn is_posted(&self) -> bool {
        self.0 == AttachKind::Posted
    }
}

/// How a notification's result combines with the one accumulated since the last delivery.
#[derive(Clone, Copy)]
enum Data {
    /// A count: added (timer expirations).
    Add(i64),
    /// A value: replaces it (the last one wins).
    Set(i64),
}

/// Whom to wake after a kevent became ready.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Wake {
    None,
    One,
    All,
}

impl Kevent {
    /// Reports `events` (and `data`, added to the result) from the source.
    ///
    /// This is the notification path: it may run in hard or soft interrupt context, never
    /// allocates and never sleeps. A kevent that is not already ready goes to the tail of its
    /// queue's ready list and one waiter (or all, with `KEVENT_REQ_WAKEUP_ALL`) is woken.
    pub(crate) fn notify(this: ArcBorrow<'_, Kevent>, events: u32, data: i64) {
        Self::notify_with(this, events, Data::Add(data), None);
    }

    /// Like [`Kevent::notify`], but `data` is a value (an inode number, ...), not a count: it
    /// replaces the result of an earlier notification not delivered yet.
    pub(crate) fn notify_value(this: ArcBorrow<'_, Kevent>, events: u32, data: i64) {
        Self::notify_with(this, events, Data::Set(data), None);
    }

    /// The notification path: marks the kevent under its queue's ready lock, then wakes.
    ///
    /// The kevent is reached through `this` once: each dereference of a pointer to a [`Kevent`]
    /// finds where the value starts in its `Arc` from the alignment of its source's side (a
    /// dynamic one), so the hot paths keep a plain reference instead.
    #[inline(always)]
    fn notify_with(this: ArcBorrow<'_, Kevent>, events: u32, data: Data, broken: Option<i64>) {
        let kevent: &Kevent = &this;
        let queue: &Queue = &kevent.queue;
        let wake = {
            let mut ready = queue.ready.lock();
            Self::mark(this, kevent, &mut ready, events, data, broken)
        };
        queue.wake(wake);
    }

    /// Reports that the source is gone or failed with `errno` (negative): the kevent is
    /// delivered once with `KEVENT_RET_BROKEN`, and with `events` (those of its request) added
    /// to what fired: the events that failed, if the source says (a failed request's operation).
    pub(crate) fn notify_broken(this: ArcBorrow<'_, Kevent>, events: u32, errno: i64) {
        Self::notify_with(this, events, Data::Add(0), Some(errno));
    }

    /// Reports the kevent as broken with `errno` (negative), with the events of its request,
    /// unless a notification or a broken report is pending for it (then that one is kept): the
    /// kevent was cancelled. Called once the kevent is detached from its source, so that no
    /// notification can follow; one that came before wins.
    pub(crate) fn notify_cancelled(this: ArcBorrow<'_, Kevent>, errno: i64) {
        let kevent: &Kevent = &this;
        let wake = {
            let mut ready = kevent.queue.ready.lock();
            let st = kevent.state.access(&ready);
            if st.fired != 0 || st.broken.is_some() {
                Wake::None
            } else {
                let events = st.req.event;
                Self::mark(this, kevent, &mut ready, events, Data::Add(0), Some(errno))
            }
        };
        kevent.queue.wake(wake);
    }

    /// Records the notification in the state of `kevent` (which `this` points to), and queues
    /// it if it is not queued yet.
    #[inline(always)]
    fn mark(
        this: ArcBorrow<'_, Kevent>,
        kevent: &Kevent,
        ready: &mut ReadyList,
        events: u32,
        data: Data,
        broken: Option<i64>,
    ) -> Wake {
        let st = kevent.state.access_mut(ready);
        let notified = events;
        let events = events & st.req.event;
        if st.dead || (events == 0 && broken.is_none()) {
            return Wake::None;
        }
        if kevent.ring && broken.is_none() {
            if let Some(wake) = Self::to_ring(this, kevent, ready, notified, events, data) {
                return wake;
            }
        }
        let st = kevent.state.access_mut(ready);
        st.fired |= events;
        st.data = match data {
            Data::Add(n) => st.data.saturating_add(n),
            Data::Set(v) => v,
        };
        if broken.is_some() {
            st.broken = broken;
        }
        let all = st.req.flags & KEVENT_REQ_WAKEUP_ALL != 0;
        match ListArc::<Kevent, READY>::try_from_arc_borrow(this) {
            Some(item) => {
                ready.push(item);
                if all {
                    Wake::All
                } else {
                    Wake::One
                }
            }
            // Already ready (or being delivered): the new events are merged.
            None => Wake::None,
        }
    }

    /// Writes the notification of a kevent whose queue has a ring into the ring (see `ring.rs`),
    /// under the ready lock: returns whom to wake, or [`None`] if it must take the ready list
    /// (the kevent is on it or being delivered, so the events merge there; or the ring is full).
    ///
    /// A source with level state narrows the notification here ([`Attached::notified`]: it was
    /// given the events as `notified`, before they were masked), so that the event says what
    /// is ready now, as delivery's re-check would. A oneshot kevent is dead once written, and
    /// waits on the `reap` list for the next hold of its queue's index to leave the queue
    /// ([`Queue::reap`]).
    #[inline(always)]
    fn to_ring(
        this: ArcBorrow<'_, Kevent>,
        kevent: &Kevent,
        ready: &mut ReadyList,
        notified: u32,
        events: u32,
        data: Data,
    ) -> Option<Wake> {
        let ring = kevent.queue.ring.as_ref()?;
        // On the ready list, or being delivered: the events merge there. Every `ListArc` of
        // `READY` is made under `ready`, which we hold, so a `false` stays `false`.
        if kevent.ready_track.has_list_arc() {
            return None;
        }
        let req = kevent.state.access(ready).req;
        let (events, ret_data) = if kevent.rechecks {
            let mut data = 0;
            let now = kevent
                .src
                .notified(kevent, notified, req.event, &mut data)?;
            (now & req.event, data)
        } else {
            match data {
                Data::Add(v) | Data::Set(v) => (events, v),
            }
        };
        if events == 0 {
            // Nothing is ready now (another reader was first).
            return Some(Wake::None);
        }
        let ev = req.ring_event(&kevent.key, events, ret_data);
        if !ring.post(&mut ready.producer, &ev) {
            return None;
        }
        if req.flags & KEVENT_REQ_ONESHOT != 0 || kevent.oneshot {
            // Cannot fail: there is no `ListArc` (checked above, under `ready`).
            let item = ListArc::<Kevent, READY>::try_from_arc_borrow(this);
            let st = kevent.state.access_mut(ready);
            st.dead = true;
            st.reaping = item.is_some();
            if let Some(item) = item {
                ready.reap.push_back(item);
            }
        }
        Some(if req.flags & KEVENT_REQ_WAKEUP_ALL != 0 {
            Wake::All
        } else {
            Wake::One
        })
    }

    /// Marks the source's side of the kevent attached (see [`Built::attached`]).
    pub(crate) fn set_attached(&self, index: &mut Index) {
        *self.attached.access_mut(index) = true;
    }

    /// Whether the source's side of the kevent is attached.
    pub(crate) fn is_attached(&self, index: &Index) -> bool {
        *self.attached.access(index)
    }

    /// Detaches the kevent from its source, if attached (once: [`Attached::detach`]).
    pub(crate) fn detach_src(&self, index: &mut Index) {
        if core::mem::take(self.attached.access_mut(index)) {
            self.src.detach(self, index);
        }
    }

    /// Releases the kevent's charge against its user's limit.
    pub(crate) fn uncharge(&self, index: &mut Index) {
        drop(self.charge.access_mut(index).take());
    }
}
