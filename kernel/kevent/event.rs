// SPDX-License-Identifier: GPL-2.0

//! One kevent: one interest of one queue in one source of events.
//!
//! A kevent is on up to four lists: its queue's index of all kevents (a hash table of lists,
//! list id [`INDEX`], keyed by `(type, id)`, or `(type, id, user_data)` for a source keyed by
//! `user_data`, see `index.rs`; it owns a reference),
//! its queue's ready list (while ready, list id [`READY`]), the list of its storage (while
//! attached to one, list id [`STORAGE`]), and a bucket of the registry of registrations by
//! descriptor (while registered by one, list id [`FDTRACK`], see `fdtrack.rs`).

use crate::{
    abi::*,
    fdtrack::{Tracked, TrackedBy, FDTRACK},
    index::INDEX,
    limit::Charge,
    queue::{Index, Queue, ReadyList},
    source::{Attached, Source},
};
use kernel::{
    list::{AtomicTracker, ListArc, ListLinks, TryNewListArc},
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
    /// The entry's `user_data` for a source keyed by it ([`Source::keyed_by_user_data`]), so
    /// that several kevents may share one `id` (requests in flight on one descriptor); 0 for the
    /// others.
    pub(crate) user_data: u64,
}

impl Key {
    /// The key `uk` names for the source `src` of its type.
    pub(crate) fn of(uk: &Ukevent, src: &dyn Source) -> Key {
        Key {
            ty: uk.0.type_,
            id: uk.0.id,
            user_data: if src.keyed_by_user_data() {
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
}

/// A registered kevent.
#[pin_data]
pub(crate) struct Kevent {
    pub(crate) key: Key,
    /// Its source makes every kevent oneshot ([`Source::oneshot`]), whatever its request says.
    pub(crate) oneshot: bool,
    /// A positive errno with which `KEVENT_CTL_REMOVE` and the close of the descriptor the
    /// kevent follows report it, if not already notified ([`Source::cancel_errno`]); 0: they
    /// remove it silently.
    pub(crate) cancel_errno: i32,
    pub(crate) queue: Arc<Queue>,
    #[pin]
    ready_links: ListLinks<READY>,
    #[pin]
    ready_track: AtomicTracker<READY>,
    #[pin]
    storage_links: ListLinks<STORAGE>,
    #[pin]
    storage_track: AtomicTracker<STORAGE>,
    #[pin]
    index_links: ListLinks<INDEX>,
    #[pin]
    fd_links: ListLinks<FDTRACK>,
    #[pin]
    fd_track: AtomicTracker<FDTRACK>,
    /// Its registration by descriptor, while in the registry of them (`fdtrack.rs`).
    pub(crate) tracked: TrackedBy,
    pub(crate) state: LockedBy<State, ReadyList>,
    /// The source's side of this kevent, guarded by the queue's control lock.
    pub(crate) attached: LockedBy<Option<Arc<dyn Attached>>, Index>,
    /// The kevent's charge against its user's limit, released when it leaves the index.
    charge: LockedBy<Option<Charge>, Index>,
}

kernel::list::impl_list_arc_safe! {
    impl ListArcSafe<READY> for Kevent { tracked_by ready_track: AtomicTracker<READY>; }
    impl ListArcSafe<STORAGE> for Kevent { tracked_by storage_track: AtomicTracker<STORAGE>; }
    // The index's reference is made with the kevent, and is the only one.
    impl ListArcSafe<INDEX> for Kevent { untracked; }
    impl ListArcSafe<FDTRACK> for Kevent { tracked_by fd_track: AtomicTracker<FDTRACK>; }
}
kernel::list::impl_list_item! {
    impl ListItem<READY> for Kevent { using ListLinks { self.ready_links }; }
    impl ListItem<STORAGE> for Kevent { using ListLinks { self.storage_links }; }
    impl ListItem<INDEX> for Kevent { using ListLinks { self.index_links }; }
    impl ListItem<FDTRACK> for Kevent { using ListLinks { self.fd_links }; }
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
    /// Allocates a kevent of the source `src` for `queue`, not yet attached to it nor indexed;
    /// the reference returned is the index's.
    pub(crate) fn new(
        queue: ArcBorrow<'_, Queue>,
        src: &dyn Source,
        key: Key,
        req: Request,
        charge: Charge,
    ) -> Result<ListArc<Kevent, INDEX>> {
        ListArc::pin_init(
            try_pin_init!(Kevent {
                key,
                oneshot: src.oneshot(),
                // Cancellation is for requests: a cancelled kevent must leave at its delivery.
                cancel_errno: if src.oneshot() { src.cancel_errno() } else { 0 },
                queue: queue.into(),
                ready_links <- ListLinks::new(),
                ready_track <- AtomicTracker::new(),
                storage_links <- ListLinks::new(),
                storage_track <- AtomicTracker::new(),
                index_links <- ListLinks::new(),
                fd_links <- ListLinks::new(),
                fd_track <- AtomicTracker::new(),
                tracked: TrackedBy::new(Tracked::default()),
                state: LockedBy::new(
                    &queue.ready,
                    State {
                        req,
                        fired: 0,
                        data: 0,
                        broken: None,
                        dead: false,
                    },
                ),
                attached: LockedBy::new(&queue.index, None),
                charge: LockedBy::new(&queue.index, Some(charge)),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Reports `events` (and `data`, added to the result) from the source.
    ///
    /// This is the notification path: it may run in hard or soft interrupt context, never
    /// allocates and never sleeps. A kevent that is not already ready goes to the tail of its
    /// queue's ready list and one waiter (or all, with `KEVENT_REQ_WAKEUP_ALL`) is woken.
    pub(crate) fn notify(this: ArcBorrow<'_, Kevent>, events: u32, data: i64) {
        let wake = {
            let mut ready = this.queue.ready.lock();
            let wake = Self::mark(this, &mut ready, events, Data::Add(data), None);
            drop(ready);
            wake
        };
        this.queue.wake(wake);
    }

    /// Like [`Kevent::notify`], but `data` is a value (an inode number, ...), not a count: it
    /// replaces the result of an earlier notification not delivered yet.
    pub(crate) fn notify_value(this: ArcBorrow<'_, Kevent>, events: u32, data: i64) {
        let wake = {
            let mut ready = this.queue.ready.lock();
            let wake = Self::mark(this, &mut ready, events, Data::Set(data), None);
            drop(ready);
            wake
        };
        this.queue.wake(wake);
    }

    /// Reports that the source is gone or failed with `errno` (negative): the kevent is
    /// delivered once with `KEVENT_RET_BROKEN`, and with `events` (those of its request) added
    /// to what fired: the events that failed, if the source says (a failed request's operation).
    pub(crate) fn notify_broken(this: ArcBorrow<'_, Kevent>, events: u32, errno: i64) {
        let wake = {
            let mut ready = this.queue.ready.lock();
            Self::mark(this, &mut ready, events, Data::Add(0), Some(errno))
        };
        this.queue.wake(wake);
    }

    /// Reports the kevent as broken with `errno` (negative), with the events of its request,
    /// unless a notification or a broken report is pending for it (then that one is kept): the
    /// kevent was cancelled. Called once the kevent is detached from its source, so that no
    /// notification can follow; one that came before wins.
    pub(crate) fn notify_cancelled(this: ArcBorrow<'_, Kevent>, errno: i64) {
        let wake = {
            let mut ready = this.queue.ready.lock();
            let st = this.state.access(&ready);
            if st.fired != 0 || st.broken.is_some() {
                Wake::None
            } else {
                let events = st.req.event;
                Self::mark(this, &mut ready, events, Data::Add(0), Some(errno))
            }
        };
        this.queue.wake(wake);
    }

    fn mark(
        this: ArcBorrow<'_, Kevent>,
        ready: &mut ReadyList,
        events: u32,
        data: Data,
        broken: Option<i64>,
    ) -> Wake {
        let st = this.state.access_mut(ready);
        let events = events & st.req.event;
        if st.dead || (events == 0 && broken.is_none()) {
            return Wake::None;
        }
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

    /// Takes the source's side of the kevent, if attached.
    pub(crate) fn take_attached(&self, index: &mut Index) -> Option<Arc<dyn Attached>> {
        self.attached.access_mut(index).take()
    }

    /// Releases the kevent's charge against its user's limit.
    pub(crate) fn uncharge(&self, index: &mut Index) {
        drop(self.charge.access_mut(index).take());
    }
}
