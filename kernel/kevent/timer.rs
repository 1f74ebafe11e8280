// SPDX-License-Identifier: GPL-2.0

//! The timer source (`KEVENT_TYPE_TIMER`): one high-resolution timer per kevent, no fd.
//!
//! `id` is any caller-chosen number; `arg[0]` is the first expiry in nanoseconds, relative to
//! now or, with `KEVENT_REQ_ABSTIME`, an absolute `CLOCK_MONOTONIC` time; `arg[1]` is the period
//! in nanoseconds (0: fires once). Each delivery reports `KEVENT_TIMER_FIRED` with the number
//! of expirations since the previous delivery in `ret_data`. A timer is its own storage: the
//! hrtimer callback (hard interrupt context) notifies its one kevent directly.
//!
//! A timer armed with a first expiry that has passed fires in `kevent_ctl()` itself, without an
//! hrtimer: its event is ready when the call returns.
//!
//! A periodic timer is not restarted from its callback: like timerfd, it is re-armed when its
//! event is delivered, counting the periods that passed meanwhile. So a tiny period costs one
//! interrupt per delivery, not a storm of interrupts.

use crate::{
    abi::*,
    event::{Attach, Kevent, KeventOf, NewKevent},
    queue::Index,
    source::{Attached, Info, Source},
};
use kernel::{
    prelude::*,
    sync::{
        atomic::{ordering, Atomic},
        Arc, ArcBorrow, LockedBy,
    },
    time::{
        hrtimer::{
            AbsoluteMode, ArcHrTimerHandle, HrTimer, HrTimerCallback, HrTimerCallbackContext,
            HrTimerPointer, HrTimerRestart,
        },
        Delta, Instant, Monotonic,
    },
};

/// The timer source.
pub(crate) struct TimerSource;

/// The longest period or relative expiry accepted, in nanoseconds: about 146 years, so that
/// `now + expiry` cannot overflow `ktime_t`.
const MAX_NS: u64 = (i64::MAX / 2) as u64;

impl Source for TimerSource {
    fn info(&self) -> Info {
        Info {
            flags: KEVENT_REQ_ABSTIME,
            ..Info::new(KEVENT_TYPE_TIMER, KEVENT_TIMER_FIRED)
        }
    }

    fn check(&self, uk: &Ukevent) -> Result {
        let u = &uk.0;
        if u.arg[0] > MAX_NS || u.arg[1] > MAX_NS || u.arg_fd != 0 {
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
        let queue = new.queue();
        // A periodic timer counts the periods that passed, and re-arms, at delivery.
        let new = if uk.0.arg[1] != 0 {
            new.with_delivering()
        } else {
            new
        };
        let built = new.build(try_pin_init!(TimerKevent {
            timer <- HrTimer::new(),
            // Bounded by `MAX_NS` in `check`.
            period: uk.0.arg[1] as i64,
            fired_at: Atomic::new(-1),
            handle: LockedBy::new(&queue.index, None),
            me: LockedBy::new(&queue.index, None),
        }))?;
        TimerKevent::arm(built.kevent(), uk, index);
        Ok(built.attached())
    }
}

/// The timer of one kevent, in the kevent's allocation ([`KeventOf<TimerKevent>`]).
#[pin_data]
struct TimerKevent {
    #[pin]
    timer: HrTimer<KeventOf<TimerKevent>>,
    /// Period in nanoseconds; 0 for a oneshot timer.
    period: i64,
    /// When the timer last fired (its expiry, in ns of `CLOCK_MONOTONIC`), until re-armed; -1
    /// when it has not fired since.
    fired_at: Atomic<i64>,
    /// The running timer; dropping it cancels the timer. Not touched by the callback; guarded
    /// by the queue's index mutex, held by `attach` and every method of [`Attached`].
    handle: LockedBy<Option<ArcHrTimerHandle<KeventOf<TimerKevent>>>, Index>,
    /// A periodic timer's own kevent, to start the timer again at delivery; `None` for a oneshot
    /// timer, and once detached (which breaks this cycle).
    me: LockedBy<Option<Arc<KeventOf<TimerKevent>>>, Index>,
}

impl TimerKevent {
    /// Starts the timer of `kevent` as `uk` says. Process context.
    ///
    /// A first expiry that has passed already fires here and now, as the timer's callback would
    /// at once: starting an hrtimer in the past only raises its interrupt, after an rbtree
    /// insert that the interrupt undoes. A periodic timer is then re-armed at delivery, as after
    /// any expiry.
    fn arm(kevent: &Arc<KeventOf<TimerKevent>>, uk: &Ukevent, index: &mut Index) {
        let u = &uk.0;
        // Bounded by `MAX_NS` in `check`.
        let first = u.arg[0] as i64;
        let now = Instant::<Monotonic>::now();
        let expires = if u.req_flags & KEVENT_REQ_ABSTIME != 0 {
            Instant::<Monotonic>::from_nanos(first).unwrap_or(now)
        } else {
            now + Delta::from_nanos(first)
        };
        let this = &kevent.src;
        if this.period != 0 {
            *this.me.access_mut(index) = Some(kevent.clone());
        }
        if expires.as_nanos() <= now.as_nanos() {
            this.fired_at.store(expires.as_nanos(), ordering::Release);
            Kevent::notify(kevent.as_arc_borrow(), KEVENT_TIMER_FIRED, 1);
            return;
        }
        let handle = kevent.clone().start(expires);
        *this.handle.access_mut(index) = Some(handle);
    }
}

impl HrTimerCallback for KeventOf<TimerKevent> {
    type Pointer<'a> = Arc<Self>;

    fn run(this: ArcBorrow<'_, Self>, _ctx: HrTimerCallbackContext<'_, Self>) -> HrTimerRestart {
        this.src
            .fired_at
            .store(this.src.timer.expires().as_nanos(), ordering::Release);
        Kevent::notify(this, KEVENT_TIMER_FIRED, 1);
        // A periodic timer is re-armed at delivery (`Attached::delivering`).
        HrTimerRestart::NoRestart
    }
}

kernel::impl_has_hr_timer! {
    impl HasHrTimer<Self> for KeventOf<TimerKevent> {
        mode: AbsoluteMode<Monotonic>, field: self.src.timer
    }
}

impl Attached for TimerKevent {
    fn detach(&self, _kevent: &Kevent, index: &mut Index) {
        // Dropping the handle cancels the timer and waits for a running callback; after that
        // the timer holds no reference to the kevent.
        let handle = self.handle.access_mut(index).take();
        drop(handle);
        let me = self.me.access_mut(index).take();
        drop(me);
    }

    fn delivering(&self, _kevent: &Kevent, data: i64, index: &mut Index) -> i64 {
        let fired_at = self.fired_at.load(ordering::Acquire);
        if self.period == 0 || fired_at < 0 {
            return data;
        }
        let Some(me) = self.me.access(index).clone() else {
            return data;
        };
        // It fired at `fired_at` (counted in `data`); the periods that passed since are
        // expirations too. Re-arm at the first one still to come.
        let now = Instant::<Monotonic>::now().as_nanos();
        let passed = (now.saturating_sub(fired_at) / self.period).saturating_add(1);
        let next = fired_at.saturating_add(passed.saturating_mul(self.period));
        self.fired_at.store(-1, ordering::Relaxed);
        // The timer is not running (it does not restart itself): cancelling the old handle is
        // immediate.
        let old = self.handle.access_mut(index).take();
        drop(old);
        let expires = Instant::<Monotonic>::from_nanos(next).unwrap_or(Instant::now());
        let handle = me.start(expires);
        *self.handle.access_mut(index) = Some(handle);
        data.saturating_add(passed - 1)
    }
}
