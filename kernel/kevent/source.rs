// SPDX-License-Identifier: GPL-2.0

//! The source trait: what every event source implements.
//!
//! A source handles one `KEVENT_TYPE_*`. The core finds it in the table the crate root builds
//! (see `kevent.rs`) and never names a concrete source: adding a source means adding a file
//! that implements [`Source`] and one line to that table, or, for a source outside the crate,
//! registering a `struct kevent_source_ops` (see `extern_source.rs`).

use crate::{
    abi::Ukevent,
    event::{Attach, Kevent, NewKevent},
    queue::Index,
};
use kernel::prelude::*;

/// What the core needs to know of a source, fixed for its life: one call of [`Source::info`]
/// per entry rather than one per property.
#[derive(Clone, Copy)]
pub(crate) struct Info {
    /// The `KEVENT_TYPE_*` this source handles.
    pub(crate) kind: u32,
    /// The event bits this source accepts in `ukevent.event`.
    pub(crate) events: u32,
    /// The request flags this source accepts, beyond the common ones
    /// (`KEVENT_REQ_ONESHOT`, `KEVENT_REQ_ET`, `KEVENT_REQ_WAKEUP_ALL`).
    pub(crate) flags: u32,
    /// The kevent's key in its queue is `(type, id, user_data)`, not `(type, id)`: kevents may
    /// share an `id` (requests in flight on one descriptor), and `user_data` names each.
    /// `KEVENT_CTL_MODIFY`, which would change the key, is `EINVAL` for such a source.
    pub(crate) keyed_by_user_data: bool,
    /// Every kevent of the source is oneshot, as if `KEVENT_REQ_ONESHOT` were set (the
    /// delivered `req_flags` are still those of the request).
    pub(crate) oneshot: bool,
    /// 0, or a positive errno: `KEVENT_CTL_REMOVE` and the close of the descriptor a kevent
    /// follows do not drop the kevent silently, but detach it from its source and, unless a
    /// notification is already pending for it, report it once as broken with `-errno` and its
    /// requested events (a cancelled request). Either way it is removed once that event is
    /// delivered. Only for a `oneshot` source (the core ignores it otherwise).
    pub(crate) cancel_errno: i32,
    /// The source takes batch hints ([`Source::attach`]'s `more`, and [`Source::flush`]).
    pub(crate) batches: bool,
    /// The source takes runs of entries in one call ([`Source::submit_run`]).
    pub(crate) runs: bool,
    /// The source's kevents have level state: [`Attached::recheck`] is called at each delivery
    /// (never otherwise).
    pub(crate) rechecks: bool,
    /// A notification can be narrowed to what is ready now where it is made
    /// ([`Attached::notified`]), so that an edge-triggered or oneshot kevent of a queue with a
    /// ring is written into the ring there. Only with `rechecks`.
    pub(crate) notifies: bool,
}

impl Info {
    /// A source of `kind` that accepts `events`, and none of the other properties.
    pub(crate) const fn new(kind: u32, events: u32) -> Info {
        Info {
            kind,
            events,
            flags: 0,
            keyed_by_user_data: false,
            oneshot: false,
            cancel_errno: 0,
            batches: false,
            runs: false,
            rechecks: false,
            notifies: false,
        }
    }
}

/// An event source.
pub(crate) trait Source: Sync {
    /// What the core needs to know of the source.
    fn info(&self) -> Info;

    /// Checks the source-specific fields of `uk` (`arg`, `arg_fd`, `id`): `EINVAL` if they are
    /// wrong. Called before anything is allocated.
    fn check(&self, uk: &Ukevent) -> Result;

    /// Builds the kevent `new` describes around the source's side of it ([`NewKevent::build`]:
    /// one allocation), and attaches it to the object `uk` names: registers it on the object's
    /// storage (or starts its timer, or adds its wait-queue entry). Process context, may sleep;
    /// under its queue's index mutex, whose guarded `index` the source's side may keep state
    /// under (a [`LockedBy`] of the queue's `index`), so that [`Attached`]'s methods, which all
    /// run under it too, need no lock of their own. If the object is ready at once, the source
    /// reports it with [`Kevent::notify`].
    ///
    /// [`LockedBy`]: kernel::sync::LockedBy
    ///
    /// `KEVENT_CTL_MODIFY` replaces a kevent: it detaches and drops the old one, and attaches a
    /// new one with the new request, so a source needs no separate modify operation.
    ///
    /// `more` is the batch hint, only for a source that batches ([`Info::batches`]): the next entry
    /// of the `kevent_ctl(KEVENT_CTL_ADD)` batch has the same type, id and event, so the object may
    /// hold back what this request would flush out (a socket corks a send); [`Source::flush`]
    /// follows the run.
    ///
    /// Returns [`Built::attached`], or [`Built::finished`] if the kevent is complete already: a
    /// request that the source finished at once, before registering it anywhere, and reported with
    /// [`Kevent::notify_value`] or [`Kevent::notify_broken`]. Nothing is attached then; only for a
    /// oneshot source ([`Info::oneshot`]), whose kevent leaves at that delivery. On error the core
    /// drops the kevent, if built: the source must not have left it on any list of its own.
    ///
    /// [`Built::attached`]: crate::event::Built::attached
    /// [`Built::finished`]: crate::event::Built::finished
    fn attach(
        &self,
        new: NewKevent<'_>,
        uk: &Ukevent,
        more: bool,
        index: &mut Index,
    ) -> Result<Attach>;

    /// A run of consecutive `KEVENT_CTL_ADD` entries with the same type, id and event, attached
    /// with `more` (all but the last), ended with `uk`: flushes out what they held back. Called
    /// once per run after its last entry, whether or not that entry, or any of the run, was
    /// added. Process context, may sleep; under the queue's index mutex (held for the whole
    /// batch).
    fn flush(&self, _uk: &Ukevent) {}

    /// Tries the entries `run` (2 to [`RUN_MAX`] consecutive `KEVENT_CTL_ADD` entries with the
    /// same type, id and event, each checked and charged by the core) as one operation, as
    /// the source would try them one after the other before anything is made for them; only for
    /// a source with [`Info::runs`]. Returns how many finished, from the first on, with their
    /// results (a value, or `-errno`) in `results`; after them, `results` holds the progress of
    /// the first entry that did not finish (0 if it was not touched, nor any after it). Process
    /// context, may sleep; under the queue's index mutex.
    ///
    /// [`RUN_MAX`]: crate::queue::RUN_MAX
    fn submit_run(&self, _run: &[Ukevent], _results: &mut [i64]) -> usize {
        0
    }

    /// [`Source::attach`] for an entry of a run that [`Source::submit_run`] finished (`Ok` with
    /// its result) or made progress on (`Err` with the progress): reports it, or makes and
    /// attaches its kevent to go on from there. Only for a source with [`Info::runs`].
    fn attach_submitted(
        &self,
        _new: NewKevent<'_>,
        _uk: &Ukevent,
        _more: bool,
        _index: &mut Index,
        _submitted: core::result::Result<i64, i64>,
    ) -> Result<Attach> {
        Err(EINVAL)
    }
}

/// The source's side of one kevent: the tail of the kevent's allocation ([`KeventOf`]).
///
/// [`KeventOf`]: crate::event::KeventOf
///
/// Its drop runs when the kevent's last reference goes, in process context, after
/// [`Attached::detach`] if it was attached; it must not sleep. Every method runs under the
/// kevent's queue's index mutex, and gets its guarded `index` as proof (see [`Source::attach`]).
/// `kevent` is the kevent whose tail `self` is.
pub(crate) trait Attached: Send + Sync {
    /// Detaches the kevent: when this returns, the source will not notify it again and holds
    /// no reference to it. Called once, if the kevent was attached. Process context, may sleep.
    fn detach(&self, kevent: &Kevent, index: &mut Index);

    /// Level-triggered re-check at delivery: the events of the kevent's request that are ready
    /// now, or [`None`] if the source has no level state (its events are reported as they
    /// fired, once). A source whose result is level state too (a socket's pending error) may
    /// replace the result to report, `data`. Only while attached, and only for a source whose
    /// [`Info::rechecks`] is set. Process context, may sleep.
    fn recheck(
        &self,
        _kevent: &Kevent,
        _events: u32,
        _data: &mut i64,
        _index: &Index,
    ) -> Option<u32> {
        None
    }

    /// What a notification of `events` (as the object gave them, not masked) means is ready now,
    /// of `requested`, and in `data` the result to report, for a kevent written into its queue's
    /// ring: the re-check of [`Attached::recheck`], made where the kevent is notified, under the
    /// storage's lock and the queue's ready lock, in any context; it must not sleep. Only for a
    /// source whose [`Info::notifies`] is set, and only from a notification of the kevent's own
    /// object while the kevent is on its storage (or while [`Source::attach`] runs), so that
    /// the object is alive. [`None`] if the source cannot tell.
    fn notified(
        &self,
        _kevent: &Kevent,
        _events: u32,
        _requested: u32,
        _data: &mut i64,
    ) -> Option<u32> {
        None
    }

    /// The kevent is about to be delivered with result `data`: returns the result to report.
    /// A source that counts lazily adds to it here, and may re-arm (a periodic timer does
    /// both). Only while attached, when something fired, and only for a kevent built with
    /// [`NewKevent::with_delivering`]. Process context, may sleep.
    ///
    /// [`NewKevent::with_delivering`]: crate::event::NewKevent::with_delivering
    fn delivering(&self, _kevent: &Kevent, data: i64, _index: &mut Index) -> i64 {
        data
    }
}
