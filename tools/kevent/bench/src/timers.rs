// SPDX-License-Identifier: GPL-2.0

//! Case 2: arming and collecting N one-shot timers.
//!
//! Timer i expires at `t0 + offset(i)`, absolute on `CLOCK_MONOTONIC`,
//! with the offsets spread evenly over [`WINDOW`] in a scrambled order
//! (`i * 7919 mod N`), so that the arming order is not the expiry order.
//! The schedule is the same for every mechanism. Timed: from `t0` (start
//! of arming) to the last expiry collected; "arm" is the part up to the
//! last timer armed. Creating the queue/epoll/ring before, and closing
//! everything after, are not timed.
//!
//! - kevent: `kevent_ctl(ADD)` of up to 1024 `Request::timer_at` per call,
//!   then `kevent_get_events(min 1, max 1024)`.
//! - kevent with a ready ring: the same arming on a queue with a ring of
//!   N slots (the next power of two, at most 65536); expiries are popped
//!   from the ring, up to 1024 at a time, without a system call, and only
//!   when the ring is empty a `kevent_get_events(min 1, max 1024)` returns
//!   those that found it full (took the ready list), or 0 as soon as the
//!   ring holds one. A ring smaller than N, or one that fills while arming
//!   goes on, sends the rest to the ready list.
//! - timerfd + epoll: per timer `timerfd_create`, `timerfd_settime`
//!   (`TFD_TIMER_ABSTIME`) and `epoll_ctl(ADD)`; then `epoll_wait(1024)` and
//!   one `read()` per expired timerfd.
//! - io_uring: one `IORING_OP_TIMEOUT` (`IORING_TIMEOUT_ABS`, count 0) per
//!   timer, submitted 1024 per `io_uring_enter`; collected from the
//!   completion queue, with an `io_uring_enter(GETEVENTS)` only when it is
//!   empty.
//!
//! Checks per run: every timer reported exactly once, never before its
//! deadline, with one expiration (kevent `data() == 1`, ring or ready list,
//! timerfd read 1, io_uring `-ETIME`).

use std::fmt::Write as _;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use io_uring::{opcode, types};
use kevent::{Event, Events, Queue, QueueFlags, Request};

use crate::notify::BATCH;
use crate::stats::{self, num, per, ratio, Table};
use crate::sys;
use crate::{Env, Need};

/// The expiries are spread over this window from the start of arming (unless
/// `KEVENT_BENCH_TIMERS_WINDOW_MS` says otherwise, see [`window`]).
pub const WINDOW: Duration = Duration::from_millis(20);

/// The window of this run: [`WINDOW`], or `KEVENT_BENCH_TIMERS_WINDOW_MS`
/// milliseconds. A window longer than the arming (seconds for 100k timers)
/// arms every timer before its deadline, so that a profile of the case
/// (`dev/kevent iprofile`) counts the work of timers that expire through
/// their hrtimer; the wall times are then the window's.
fn window() -> Duration {
    std::env::var("KEVENT_BENCH_TIMERS_WINDOW_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(WINDOW, Duration::from_millis)
}
const STALL: Duration = Duration::from_secs(30);

fn offset(i: usize, n: usize, w: Duration) -> Duration {
    let slot = (i as u128 * 7919) % n as u128;
    Duration::from_nanos((slot * w.as_nanos() / n as u128) as u64)
}

#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Arming, ns per timer.
    pub arm: f64,
    /// Arming to last expiry collected, ns per timer.
    pub total: f64,
    /// The same, in ms.
    pub total_ms: f64,
    /// Syscalls per timer (arm and collect).
    pub sc: f64,
    /// Share of the timers armed late: their deadline had passed when the
    /// arming of their chunk of [`CHUNK`] ended (see [`late`]).
    pub late: f64,
}

/// Arming is timestamped once per this many timers (a kevent batch, an
/// io_uring submission), so that the share armed late costs the timed
/// region nothing per timer.
const CHUNK: usize = 1024;

/// The share of `n` timers whose deadline had passed when the arming of
/// their chunk ended: chunk `k` (timers `k * CHUNK ..`) ended at `ends[k]`.
fn late(base: Duration, n: usize, w: Duration, ends: &[Duration]) -> f64 {
    let late = (0..n)
        .filter(|&j| {
            ends.get(j / CHUNK)
                .is_some_and(|&end| base + offset(j, n, w) <= end)
        })
        .count();
    late as f64 / n as f64
}

/// Bookkeeping shared by the three mechanisms: what was collected, checked.
struct Collect {
    base: Duration,
    n: usize,
    w: Duration,
    seen: Vec<bool>,
    got: usize,
}

impl Collect {
    fn new(base: Duration, n: usize, w: Duration) -> Collect {
        Collect {
            base,
            n,
            w,
            seen: vec![false; n],
            got: 0,
        }
    }

    #[inline]
    fn one(&mut self, id: u64, now: Duration) -> Result<(), String> {
        let i = id as usize;
        if i >= self.n {
            return Err(format!("expiry of unknown timer {id}"));
        }
        if self.seen[i] {
            return Err(format!("timer {i} reported twice"));
        }
        let deadline = self.base + offset(i, self.n, self.w);
        if deadline > now {
            return Err(format!(
                "timer {i} reported {:?} before its deadline",
                deadline - now
            ));
        }
        self.seen[i] = true;
        self.got += 1;
        Ok(())
    }

    fn done(&self) -> bool {
        self.got == self.n
    }

    fn stalled(&self) -> String {
        format!(
            "no expiry for {STALL:?} with {} of {} collected",
            self.got, self.n
        )
    }
}

fn sample(n: usize, t_arm: Duration, t_total: Duration, sc: u64, late: f64) -> Sample {
    Sample {
        arm: t_arm.as_nanos() as f64 / n as f64,
        total: t_total.as_nanos() as f64 / n as f64,
        total_ms: t_total.as_secs_f64() * 1e3,
        sc: sc as f64 / n as f64,
        late,
    }
}

/// Checks a kevent timer expiry.
#[inline]
fn check_expiry(ev: &Event) -> Result<(), String> {
    if ev.is_broken() || ev.events() & kevent::TIMER_FIRED == 0 || ev.data() != 1 {
        return Err(format!(
            "timer {}: events {:#x}, data {}, broken {}",
            ev.user_data(),
            ev.events(),
            ev.data(),
            ev.is_broken()
        ));
    }
    Ok(())
}

/// kevent timers, on a queue with a ready ring if `ring`.
fn run_kevent(n: usize, ring: bool) -> Result<Sample, String> {
    let w = window();
    let (q, ring) = if ring {
        let max = kevent::sys::KEVENT_RING_MAX_ENTRIES as usize;
        let entries = n.max(1).next_power_of_two().min(max) as u32;
        let (q, r) = Queue::with_ring(QueueFlags::CLOEXEC, entries)
            .map_err(|e| format!("kevent queue with a ring: {e}"))?;
        (q, Some(r))
    } else {
        (
            Queue::new().map_err(|e| format!("kevent queue: {e}"))?,
            None,
        )
    };
    let mut events = Events::with_capacity(BATCH);
    let mut popped: Vec<Event> = Vec::with_capacity(BATCH);
    let mut batch: Vec<Request> = Vec::with_capacity(CHUNK);
    let mut ends = Vec::with_capacity(n / CHUNK + 1);

    let sc0 = sys::syscalls();
    let base = sys::mono_now();
    let t0 = Instant::now();
    let mut c = Collect::new(base, n, w);
    let mut i = 0;
    while i < n {
        let end = (i + CHUNK).min(n);
        batch.clear();
        batch.extend((i..end).map(|j| {
            Request::timer_at(j as u64, base + offset(j, n, w), None).user_data(j as u64)
        }));
        let k = sys::kq_add(&q, &mut batch).map_err(|e| format!("kevent_ctl(ADD): {e}"))?;
        if k != batch.len() {
            let e = batch.iter().find_map(|r| r.result().err());
            return Err(format!(
                "kevent_ctl(ADD): {k} of {} took effect: {e:?}",
                batch.len()
            ));
        }
        ends.push(sys::mono_now());
        i = end;
    }
    let t_arm = t0.elapsed();
    // With a ring: whether the last kevent_get_events() returned nothing
    // (the ring got an event, or STALL passed).
    let mut waited_empty = false;
    while !c.done() {
        if let Some(ring) = &ring {
            // The ring first, without a system call; the time is taken after
            // the events, as after a kevent_get_events().
            popped.clear();
            popped.extend(ring.drain().take(BATCH));
            if !popped.is_empty() {
                let now = sys::mono_now();
                for ev in &popped {
                    check_expiry(ev)?;
                    c.one(ev.user_data(), now)?;
                }
                waited_empty = false;
                continue;
            }
            if waited_empty {
                return Err(c.stalled());
            }
        }
        let k = sys::kq_wait(&q, &mut events, 1, Some(STALL))
            .map_err(|e| format!("kevent_get_events: {e}"))?;
        if k == 0 {
            if ring.is_none() {
                return Err(c.stalled());
            }
            waited_empty = true;
            continue;
        }
        let now = sys::mono_now();
        for ev in &events {
            check_expiry(ev)?;
            c.one(ev.user_data(), now)?;
        }
    }
    let t_total = t0.elapsed();
    let sc = sys::syscalls() - sc0;
    drop(ring);
    drop(q);
    Ok(sample(n, t_arm, t_total, sc, late(base, n, w, &ends)))
}

fn run_timerfd(n: usize) -> Result<Sample, String> {
    let w = window();
    let ep = sys::epoll_create().map_err(|e| format!("epoll_create1: {e}"))?;
    let ep = ep.as_raw_fd();
    let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; BATCH];
    let mut fds: Vec<OwnedFd> = Vec::with_capacity(n);
    let mut buf = [0u8; 8];
    let mut ends = Vec::with_capacity(n / CHUNK + 1);

    let sc0 = sys::syscalls();
    let base = sys::mono_now();
    let t0 = Instant::now();
    let mut c = Collect::new(base, n, w);
    for j in 0..n {
        let fd = sys::timerfd_create().map_err(|e| format!("timerfd_create: {e}"))?;
        sys::timerfd_settime_abs(fd.as_raw_fd(), base + offset(j, n, w))
            .map_err(|e| format!("timerfd_settime: {e}"))?;
        sys::epoll_ctl(
            ep,
            libc::EPOLL_CTL_ADD,
            fd.as_raw_fd(),
            libc::EPOLLIN as u32,
            j as u64,
        )
        .map_err(|e| format!("epoll_ctl(ADD): {e}"))?;
        fds.push(fd);
        if (j + 1) % CHUNK == 0 || j + 1 == n {
            ends.push(sys::mono_now());
        }
    }
    let t_arm = t0.elapsed();
    while !c.done() {
        let k = sys::epoll_wait(ep, &mut evs, STALL.as_millis() as i32)
            .map_err(|e| format!("epoll_wait: {e}"))?;
        if k == 0 {
            return Err(c.stalled());
        }
        let now = sys::mono_now();
        for e in &evs[..k] {
            let id = e.u64;
            let fd = fds
                .get(id as usize)
                .ok_or_else(|| format!("event for unknown timer {id}"))?;
            match sys::read(fd.as_raw_fd(), &mut buf) {
                Ok(8) if u64::from_ne_bytes(buf) == 1 => {}
                Ok(8) => {
                    return Err(format!(
                        "timerfd {id}: {} expirations",
                        u64::from_ne_bytes(buf)
                    ))
                }
                r => return Err(format!("read timerfd {id}: {r:?}")),
            }
            c.one(id, now)?;
        }
    }
    let t_total = t0.elapsed();
    let sc = sys::syscalls() - sc0;
    drop(fds);
    Ok(sample(n, t_arm, t_total, sc, late(base, n, w, &ends)))
}

fn run_uring(n: usize) -> Result<Sample, String> {
    let w = window();
    let mut ring = sys::new_ring(1024, n.clamp(4096, 65536) as u32)
        .map_err(|e| format!("io_uring_setup: {e}"))?;
    // The timespecs must stay put until submitted: allocated once, filled
    // inside the timed region (they depend on t0).
    let mut ts = vec![types::Timespec::new(); n];
    let mut ends = Vec::with_capacity(n / CHUNK + 1);

    let sc0 = sys::syscalls();
    let base = sys::mono_now();
    let t0 = Instant::now();
    let mut c = Collect::new(base, n, w);
    for (j, t) in ts.iter_mut().enumerate() {
        *t = types::Timespec::from(base + offset(j, n, w));
    }
    for (j, t) in ts.iter().enumerate() {
        let sqe = opcode::Timeout::new(t as *const types::Timespec)
            .flags(types::TimeoutFlags::ABS)
            .build()
            .user_data(j as u64);
        // SAFETY: `ts` outlives the submission (the kernel copies the
        // timespec when it takes the SQE).
        while unsafe { ring.submission().push(&sqe) }.is_err() {
            sys::uring_submit(&ring).map_err(|e| format!("io_uring_enter: {e}"))?;
            ends.push(sys::mono_now());
        }
    }
    sys::uring_submit(&ring).map_err(|e| format!("io_uring_enter: {e}"))?;
    ends.push(sys::mono_now());
    let t_arm = t0.elapsed();
    while !c.done() {
        if ring.completion().is_empty() {
            sys::uring_wait(&ring, 1, STALL).map_err(|e| format!("io_uring_enter: {e}"))?;
            if ring.completion().is_empty() {
                return Err(c.stalled());
            }
        }
        let now = sys::mono_now();
        for cqe in ring.completion().take(BATCH) {
            if cqe.result() != -libc::ETIME {
                return Err(format!(
                    "timeout {}: result {} (expected -ETIME)",
                    cqe.user_data(),
                    cqe.result()
                ));
            }
            c.one(cqe.user_data(), now)?;
        }
    }
    let t_total = t0.elapsed();
    let sc = sys::syscalls() - sc0;
    drop(ring);
    drop(ts);
    Ok(sample(n, t_arm, t_total, sc, late(base, n, w, &ends)))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mech {
    Kevent,
    KeventRing,
    Timerfd,
    Uring,
}

impl Mech {
    const ALL: [Mech; 4] = [Mech::Timerfd, Mech::Kevent, Mech::KeventRing, Mech::Uring];

    fn name(self) -> &'static str {
        match self {
            Mech::Kevent => "kevent timers",
            Mech::KeventRing => "kevent timers ring",
            Mech::Timerfd => "timerfd + epoll",
            Mech::Uring => "io_uring timeouts",
        }
    }

    fn need(self) -> Need {
        match self {
            Mech::Kevent => Need::Kevent,
            Mech::KeventRing => Need::KeventRing,
            Mech::Timerfd => Need::Nothing,
            Mech::Uring => Need::Uring,
        }
    }

    fn run(self, n: usize) -> Result<Sample, String> {
        match self {
            Mech::Kevent => run_kevent(n, false),
            Mech::KeventRing => run_kevent(n, true),
            Mech::Timerfd => run_timerfd(n),
            Mech::Uring => run_uring(n),
        }
    }
}

pub fn sizes(quick: bool) -> Vec<usize> {
    // For profiling one size alone: KEVENT_BENCH_TIMERS_N=100000.
    if let Some(n) = std::env::var("KEVENT_BENCH_TIMERS_N")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return vec![n];
    }
    if quick {
        vec![1000, 10_000]
    } else {
        vec![1000, 10_000, 100_000]
    }
}

pub fn run(env: &Env) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Timers\n\n\
         N one-shot timers with absolute CLOCK_MONOTONIC deadlines spread over \
         {} ms from the start of arming (the same scrambled schedule for every \
         mechanism). total = start of arming to the last expiry collected; arm = \
         start of arming to the last timer armed; both per timer. When arming \
         takes longer than the window, timers expire while it goes on and \
         \"arm\" includes that expiry work. \"armed late\": the share of \
         timers whose deadline had passed when the arming of their chunk of \
         {CHUNK} ended (timestamped once a chunk: a kevent batch, an io_uring \
         submission, 1024 timerfds); such a timer expires at once (an \
         hrtimer interrupt for timerfd and io_uring; in kevent_ctl() itself \
         for kevent). Ratios are to timerfd + epoll (medians). {} runs each.\n",
        window().as_millis(),
        env.runs
    );
    for n in sizes(env.quick) {
        eprintln!("timers: N={n}");
        let results = env.compare(
            &Mech::ALL,
            |m| (m.name(), m.need()),
            |m| m.run(n),
            |s| {
                format!(
                    "arm {} ns/timer, total {} ns/timer ({} ms), {} syscalls/timer, \
                     {:.0}% armed late",
                    num(s.arm),
                    num(s.total),
                    num(s.total_ms),
                    per(s.sc),
                    s.late * 100.0
                )
            },
        );
        let mut t = Table::new(
            format!("Timers: N = {n}"),
            &[
                "mechanism",
                "total ns/timer (median)",
                "min–max",
                "total / timerfd+epoll",
                "arm ns/timer (median)",
                "min–max",
                "arm / timerfd+epoll",
                "total ms (median)",
                "syscalls/timer",
                "armed late",
            ],
        );
        let base = results
            .iter()
            .find(|r| r.0 == Mech::Timerfd)
            .and_then(|r| r.1.samples())
            .map(|v| {
                (
                    stats::summarize_by(v, |s| s.total).median,
                    stats::summarize_by(v, |s| s.arm).median,
                )
            })
            .unwrap_or((f64::NAN, f64::NAN));
        for (m, o) in &results {
            if t.row_outcome(&[m.name()], o) {
                continue;
            }
            let v = o.samples().unwrap_or_default();
            let total = stats::summarize_by(v, |s| s.total);
            let arm = stats::summarize_by(v, |s| s.arm);
            t.row(vec![
                m.name().into(),
                num(total.median),
                stats::range(&total),
                ratio(total.median, base.0),
                num(arm.median),
                stats::range(&arm),
                ratio(arm.median, base.1),
                num(stats::summarize_by(v, |s| s.total_ms).median),
                per(stats::summarize_by(v, |s| s.sc).median),
                format!("{:.0}%", stats::summarize_by(v, |s| s.late).median * 100.0),
            ]);
        }
        out += &t.render();
        out.push('\n');
    }
    out
}
