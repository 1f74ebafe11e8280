// SPDX-License-Identifier: GPL-2.0

//! The poll source (`KEVENT_TYPE_POLL`): any file with `->poll` (pipes, eventfds, ttys,
//! sockets, ...).
//!
//! `id` is the file descriptor; `event` is a mask of `POLL*`/`EPOLL*` bits. The kevent adds a
//! wait-queue entry with its own wake function to the file's wait queues (as epoll does, never a
//! polling loop); a wake-up notifies the kevent with the poll key, and delivery re-checks the
//! file's `->poll`, so the result reports which of the requested bits are ready.
//!
//! Watching a kevent queue or an epoll instance nests wake-ups: the watched object's wait queue
//! is woken under its lock, and notifying our queue there would take one queue's locks inside
//! another's (or, through an epoll instance watching us back, our own). For those files the wake
//! function only records the events and queues a work item that notifies from process context.
//! Queues watching queues are also checked for loops and depth (`nest.rs`, `ELOOP`).

use crate::{
    abi::*,
    event::{Attach, Kevent, KeventOf, NewKevent},
    fdtrack::FdTrack,
    nest::Edge,
    queue::{Index, Queue},
    source::{Attached, Info, Source},
};
use kernel::{
    bindings,
    fs::{
        poll_watch::{PollWake, PollWatch, POLLFREE},
        LocalFile,
    },
    prelude::*,
    sync::{new_spinlock_irq, Arc, ArcBorrow, LockedBy, SpinLockIrq},
    workqueue::{self, impl_has_work, new_work, Work, WorkItem},
};

/// The poll source.
pub(crate) struct PollSource;

/// The poll bits a kevent may ask for.
const POLL_EVENTS: u32 = bindings::POLLIN
    | bindings::POLLPRI
    | bindings::POLLOUT
    | bindings::POLLERR
    | bindings::POLLHUP
    | bindings::POLLRDNORM
    | bindings::POLLRDBAND
    | bindings::POLLWRNORM
    | bindings::POLLWRBAND
    | bindings::POLLMSG
    | bindings::POLLRDHUP;

impl Source for PollSource {
    fn info(&self) -> Info {
        Info {
            rechecks: true,
            ..Info::new(KEVENT_TYPE_POLL, POLL_EVENTS)
        }
    }

    fn check(&self, uk: &Ukevent) -> Result {
        let u = &uk.0;
        if u.arg != [0, 0] || u.arg_fd != 0 {
            return Err(EINVAL);
        }
        Ok(())
    }

    fn attach(
        &self,
        new: NewKevent<'_>,
        uk: &Ukevent,
        _more: bool,
        index: &mut Index,
    ) -> Result<Attach> {
        let fd = u32::try_from(uk.0.id).map_err(|_| EBADF)?;
        let local = LocalFile::fget(fd)?;
        let queue = new.queue();
        // A queue watching a queue: no loops, no deep chains.
        let edge = match Queue::from_file(&local) {
            Ok(watched) => Some(Edge::new(
                &*queue as *const Queue as usize,
                &*watched as *const Queue as usize,
            )?),
            Err(_) => None,
        };
        // SAFETY: `local` is a valid file.
        let deferred = edge.is_some() || unsafe { bindings::kevent_file_is_epoll(local.as_ptr()) };
        // SAFETY: `fget` gave us a reference of our own, and we never use `fdget_pos`.
        let file = unsafe { LocalFile::assume_no_fdget_pos(local) };
        let built = new.build(try_pin_init!(PollTarget {
            deferred,
            pending <- new_spinlock_irq!(0, "kevent_poll_pending"),
            work <- new_work!("kevent_poll_work"),
            watch: LockedBy::new(&queue.index, None),
        }))?;
        let kevent = built.kevent();
        let track = FdTrack::new(kevent.as_arc_borrow(), &file, fd)?;
        // A close() that ran between `fget` and `FdTrack::new` did not see the registration.
        // SAFETY: The current task's fd table is valid during the system call.
        if !unsafe {
            bindings::kevent_fd_maps_to(bindings::kevent_current_files().cast(), fd, file.as_ptr())
        } {
            return Err(EBADF);
        }
        let watch = KBox::pin_init(PollWatch::new(file, kevent.clone()), GFP_KERNEL_ACCOUNT)?;
        let initial = watch.initial();
        // The watch holds a reference to the kevent, which holds the watch: `detach`, which the
        // core calls on every kevent attached, breaks that cycle.
        *kevent.src.watch.access_mut(index) = Some((watch, track, edge));
        if initial & uk.0.event != 0 {
            Kevent::notify(kevent.as_arc_borrow(), initial, 0);
        }
        Ok(built.attached())
    }
}

/// The poll side of one kevent, in the kevent's allocation ([`KeventOf<PollTarget>`], which is
/// what the wake function reaches).
#[pin_data]
struct PollTarget {
    /// Notify from a work item (the file is a queue or an epoll instance).
    deferred: bool,
    /// Events recorded for the work item.
    #[pin]
    pending: SpinLockIrq<u32>,
    #[pin]
    work: Work<KeventOf<PollTarget>>,
    /// The watch and its registration by descriptor; `None` once detached. Guarded by the
    /// queue's index mutex (`->poll` may sleep), held by `attach` and every method of
    /// [`Attached`].
    watch: LockedBy<
        Option<(
            Pin<KBox<PollWatch<KeventOf<PollTarget>>>>,
            FdTrack,
            Option<Edge>,
        )>,
        Index,
    >,
}

impl_has_work! {
    impl HasWork<Self> for KeventOf<PollTarget> { self.src.work }
}

impl WorkItem for KeventOf<PollTarget> {
    type Pointer = Arc<Self>;

    fn run(this: Arc<Self>) {
        let events = core::mem::take(&mut *this.src.pending.lock());
        Kevent::notify(this.as_arc_borrow(), events, 0);
    }
}

impl PollWake for KeventOf<PollTarget> {
    fn wake(this: ArcBorrow<'_, Self>, events: u32) {
        if events & POLLFREE != 0 {
            // The file's wait queue is going away: report the kevent once as broken.
            Kevent::notify_broken(this, 0, ENODEV.to_errno().into());
            return;
        }
        // A waker without a key says only "something changed": let delivery find out what.
        let events = if events == 0 { POLL_EVENTS } else { events };
        if !this.src.deferred {
            Kevent::notify(this, events, 0);
            return;
        }
        *this.src.pending.lock() |= events;
        // If already queued, the work item will see these events too. The watch holds another
        // reference, so dropping this one is never the last.
        let _ = workqueue::system().enqueue(Arc::<Self>::from(this));
    }
}

impl Attached for PollTarget {
    fn detach(&self, _kevent: &Kevent, index: &mut Index) {
        // Dropping the watch removes its wait-queue entries: no wake-up runs after that. The
        // registration by descriptor goes with it.
        let watch = self.watch.access_mut(index).take();
        drop(watch);
    }

    fn recheck(
        &self,
        _kevent: &Kevent,
        events: u32,
        _data: &mut i64,
        index: &Index,
    ) -> Option<u32> {
        let watch = self.watch.access(index);
        Some(watch.as_ref().map_or(0, |(w, _, _)| w.poll_now() & events))
    }
}
