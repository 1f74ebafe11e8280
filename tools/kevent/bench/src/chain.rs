// SPDX-License-Identifier: GPL-2.0

//! Case 1, the chain of libevent's test/bench.c.
//!
//! n socket pairs (`AF_UNIX`, `SOCK_STREAM`, non-blocking); a bytes are
//! written at the start into pairs spread evenly (pair `i * (n / a)`), and
//! each time a read end is reported readable the callback reads it and,
//! while writes remain (w in all), writes what it read to the next pair
//! (`(idx + 1) mod n`). The run ends when all a + w bytes have been read.
//!
//! The callback reads up to 64 bytes in one `read()` and forwards what it
//! read in one `write()`. Two bytes meet in one pair only when one token
//! catches up with another; reading both at once keeps edge-triggered
//! mechanisms correct (libevent's one-byte read would strand the second
//! byte under edge triggering) and is the same work for every mechanism.
//!
//! An "event" is one byte passed along the chain, a + w per run, the same
//! for every mechanism; ns/event and syscalls/event divide by it.
//! "deliveries/event" is how many readiness reports the mechanism handed
//! to the callback per byte (below 1 when bytes met; above 1 when reports
//! were stale and the read found nothing).
//!
//! The mechanisms' loops are those of `notify.rs`, which says which system
//! calls each makes. "kevent ET ring (socket)" is the socket source, edge
//! triggered, on a queue with a ready ring of a power of two of at least 2n
//! slots (at most 65536): the events are popped from the ring, and
//! `kevent_get_events()` is called only when it is empty.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::notify::{self, Notifier, BATCH};
use crate::stats::{self, num, per, ratio, Outcome, Table};
use crate::sys;
use crate::{Env, Need};

/// How long a wait may see nothing before the run is declared stalled.
pub const STALL: Duration = Duration::from_secs(30);

/// Sweep points (n, a, w).
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub n: usize,
    pub a: usize,
    pub w: u64,
}

/// A run passes at least this many events (rounds of a small chain).
const MIN_EVENTS: u64 = 2000;

impl Spec {
    /// Rounds per run: enough for [`MIN_EVENTS`].
    pub fn rounds(&self) -> usize {
        MIN_EVENTS.div_ceil(self.a as u64 + self.w) as usize
    }
}

/// n socket pairs.
pub struct Pairs {
    _owned: Vec<(OwnedFd, OwnedFd)>,
    pub rd: Vec<RawFd>,
    pub wr: Vec<RawFd>,
}

impl Pairs {
    pub fn new(n: usize) -> Result<Pairs, String> {
        let mut owned = Vec::with_capacity(n);
        for _ in 0..n {
            owned.push(sys::socketpair().map_err(|e| format!("socketpair: {e}"))?);
        }
        let rd = owned.iter().map(|p| p.0.as_raw_fd()).collect();
        let wr = owned.iter().map(|p| p.1.as_raw_fd()).collect();
        Ok(Pairs {
            _owned: owned,
            rd,
            wr,
        })
    }
}

const PAYLOAD: [u8; 64] = [b'e'; 64];

/// The state of one run of the chain.
pub struct Chain<'a> {
    rd: &'a [RawFd],
    wr: &'a [RawFd],
    writes_left: u64,
    consumed: u64,
    total: u64,
    deliveries: u64,
    spurious: u64,
    buf: [u8; 64],
}

impl<'a> Chain<'a> {
    /// Writes the a initial bytes (outside the timed region). Returns the
    /// chain and the pairs written.
    pub fn start(p: &'a Pairs, a: usize, w: u64) -> Result<(Chain<'a>, Vec<usize>), String> {
        let n = p.rd.len();
        let space = n / a;
        let init: Vec<usize> = (0..a).map(|i| i * space).collect();
        for &i in &init {
            match sys::write(p.wr[i], b"e") {
                Ok(1) => {}
                r => return Err(format!("initial write to pair {i}: {r:?}")),
            }
        }
        Ok((
            Chain {
                rd: &p.rd,
                wr: &p.wr,
                writes_left: w,
                consumed: 0,
                total: a as u64 + w,
                deliveries: 0,
                spurious: 0,
                buf: [0; 64],
            },
            init,
        ))
    }

    /// The read callback for pair `idx`. Returns the pair written to, if
    /// any.
    #[inline]
    pub fn on_readable(&mut self, idx: usize) -> Result<Option<usize>, String> {
        if idx >= self.rd.len() {
            return Err(format!("event for unknown token {idx}"));
        }
        self.deliveries += 1;
        let got = match sys::read(self.rd[idx], &mut self.buf) {
            Ok(0) => return Err(format!("EOF on pair {idx}")),
            Ok(k) => k,
            Err(e) if sys::is_eagain(&e) => {
                self.spurious += 1;
                return Ok(None);
            }
            Err(e) => return Err(format!("read pair {idx}: {e}")),
        };
        self.consumed += got as u64;
        let k = (got as u64).min(self.writes_left) as usize;
        if k == 0 {
            return Ok(None);
        }
        let next = if idx + 1 == self.rd.len() { 0 } else { idx + 1 };
        match sys::write(self.wr[next], &PAYLOAD[..k]) {
            Ok(m) if m == k => {}
            r => return Err(format!("write {k} to pair {next}: {r:?}")),
        }
        self.writes_left -= k as u64;
        Ok(Some(next))
    }

    #[inline]
    pub fn done(&self) -> bool {
        self.consumed >= self.total
    }

    fn progress(&self) -> String {
        format!("{} of {} bytes read", self.consumed, self.total)
    }

    /// Checks the run: every byte read exactly once, every write made, and
    /// every pair empty.
    fn finish(&mut self) -> Result<(), String> {
        if self.consumed != self.total || self.writes_left != 0 {
            return Err(format!(
                "{}, {} writes left",
                self.progress(),
                self.writes_left
            ));
        }
        for (i, &fd) in self.rd.iter().enumerate() {
            match sys::read(fd, &mut self.buf) {
                Err(e) if sys::is_eagain(&e) => {}
                r => return Err(format!("pair {i} not empty after the run: {r:?}")),
            }
        }
        Ok(())
    }
}

/// One run's numbers, per event (byte passed).
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub ns: f64,
    pub sc: f64,
    pub deliv: f64,
    pub spurious: u64,
}

/// Starts a run, times `drive` and checks the result.
///
/// The chain is run `rounds` times back to back (each round starts from
/// the a initial writes and is checked after, untimed) and the timed parts
/// are added up, so that a small chain still makes a measurable run.
pub fn measure(
    p: &Pairs,
    a: usize,
    w: u64,
    rounds: usize,
    mut drive: impl FnMut(&mut Chain<'_>, &[usize]) -> Result<(), String>,
) -> Result<Sample, String> {
    let (mut dt, mut sc, mut ev, mut deliv, mut spurious) = (Duration::ZERO, 0, 0, 0, 0);
    for _ in 0..rounds {
        let (mut c, init) = Chain::start(p, a, w)?;
        let sc0 = sys::syscalls();
        let t0 = Instant::now();
        drive(&mut c, &init)?;
        dt += t0.elapsed();
        sc += sys::syscalls() - sc0;
        c.finish()?;
        ev += c.total;
        deliv += c.deliveries;
        spurious += c.spurious;
    }
    let ev = ev as f64;
    Ok(Sample {
        ns: dt.as_nanos() as f64 / ev,
        sc: sc as f64 / ev,
        deliv: deliv as f64 / ev,
        spurious,
    })
}

/// The floor: the same reads and writes, driven by a userspace FIFO of the
/// pairs that hold a byte (each pair at most once in it, like a ready
/// list). No notification system call.
pub struct Floor {
    fifo: VecDeque<usize>,
    queued: Vec<bool>,
}

impl Floor {
    pub fn new(n: usize) -> Floor {
        Floor {
            fifo: VecDeque::with_capacity(n),
            queued: vec![false; n],
        }
    }

    pub fn drive(&mut self, c: &mut Chain<'_>, init: &[usize]) -> Result<(), String> {
        self.fifo.clear();
        self.queued.iter_mut().for_each(|q| *q = false);
        for &i in init {
            self.queued[i] = true;
            self.fifo.push_back(i);
        }
        while !c.done() {
            let Some(i) = self.fifo.pop_front() else {
                return Err(format!("floor FIFO empty with {}", c.progress()));
            };
            self.queued[i] = false;
            if let Some(next) = c.on_readable(i)? {
                if !self.queued[next] {
                    self.queued[next] = true;
                    self.fifo.push_back(next);
                }
            }
        }
        Ok(())
    }
}

/// The event loop: wait for up to [`BATCH`] ready pairs, run the callback
/// for each, until all bytes are read.
pub fn drive_notified(
    nt: &mut dyn Notifier,
    c: &mut Chain<'_>,
    ready: &mut Vec<u64>,
) -> Result<(), String> {
    while !c.done() {
        nt.wait(ready, STALL)?;
        if ready.is_empty() {
            return Err(format!("no event for {STALL:?} with {}", c.progress()));
        }
        for &t in ready.iter() {
            c.on_readable(t as usize)?;
            if c.done() {
                break;
            }
        }
    }
    Ok(())
}

/// The mechanisms compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mech {
    Floor,
    EpollLt,
    EpollEt,
    UringPoll,
    KeventLt,
    KeventEt,
    KeventSocketEt,
    KeventSocketEtRing,
}

impl Mech {
    pub const ALL: [Mech; 8] = [
        Mech::Floor,
        Mech::EpollLt,
        Mech::EpollEt,
        Mech::UringPoll,
        Mech::KeventLt,
        Mech::KeventEt,
        Mech::KeventSocketEt,
        Mech::KeventSocketEtRing,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mech::Floor => "floor (userspace FIFO)",
            Mech::EpollLt => "epoll LT",
            Mech::EpollEt => "epoll ET",
            Mech::UringPoll => "io_uring poll multishot",
            Mech::KeventLt => "kevent LT (poll source)",
            Mech::KeventEt => "kevent ET (poll source)",
            Mech::KeventSocketEt => "kevent ET (socket source)",
            Mech::KeventSocketEtRing => "kevent ET ring (socket)",
        }
    }

    pub fn need(self) -> Need {
        match self {
            Mech::Floor | Mech::EpollLt | Mech::EpollEt => Need::Nothing,
            Mech::UringPoll => Need::Uring,
            Mech::KeventLt | Mech::KeventEt => Need::Kevent,
            Mech::KeventSocketEt => Need::KeventSocket,
            Mech::KeventSocketEtRing => Need::KeventSocketRing,
        }
    }

    /// A new notifier of this kind for up to `n` fds (not for the floor).
    pub fn notifier(self, n: usize) -> Result<Box<dyn Notifier>, String> {
        Ok(match self {
            Mech::Floor => return Err("the floor has no notifier".into()),
            Mech::EpollLt => Box::new(notify::Epoll::new(false)?),
            Mech::EpollEt => Box::new(notify::Epoll::new(true)?),
            Mech::UringPoll => Box::new(notify::Uring::new(n)?),
            Mech::KeventLt => Box::new(notify::Kevent::new(false, false)?),
            Mech::KeventEt => Box::new(notify::Kevent::new(false, true)?),
            Mech::KeventSocketEt => Box::new(notify::Kevent::new(true, true)?),
            Mech::KeventSocketEtRing => Box::new(notify::Kevent::with_ring(n)?),
        })
    }
}

/// One run of `m`: registration (untimed), the timed chain, the checks,
/// the tear-down (untimed).
fn run_one(m: Mech, p: &Pairs, s: Spec) -> Result<Sample, String> {
    let rounds = s.rounds();
    if m == Mech::Floor {
        let mut f = Floor::new(s.n);
        return measure(p, s.a, s.w, rounds, |c, init| f.drive(c, init));
    }
    let mut nt = m.notifier(s.n)?;
    for (i, &fd) in p.rd.iter().enumerate() {
        nt.add(fd, i as u64, false)?;
    }
    nt.flush()?;
    let mut ready = Vec::with_capacity(BATCH);
    measure(p, s.a, s.w, rounds, |c, _| {
        drive_notified(&mut *nt, c, &mut ready)
    })
}

pub fn specs(quick: bool) -> Vec<Spec> {
    // For profiling one size alone: KEVENT_BENCH_CHAIN=100,1,100 (n, a, w).
    if let Some(s) = std::env::var("KEVENT_BENCH_CHAIN").ok().and_then(|v| {
        let mut it = v.split(',').map(|x| x.trim().parse::<u64>().ok());
        Some(Spec {
            n: usize::try_from(it.next()??).ok()?,
            a: usize::try_from(it.next()??).ok()?,
            w: it.next()??,
        })
    }) {
        return vec![s];
    }
    let mut v = vec![
        Spec {
            n: 100,
            a: 1,
            w: 100,
        },
        Spec {
            n: 1000,
            a: 100,
            w: 10_000,
        },
    ];
    if !quick {
        v.push(Spec {
            n: 10_000,
            a: 1000,
            w: 100_000,
        });
    }
    v
}

pub fn show(s: &Sample) -> String {
    format!(
        "{} ns/event, {} syscalls/event, {} deliveries/event ({} stale)",
        num(s.ns),
        per(s.sc),
        per(s.deliv),
        s.spurious
    )
}

pub fn run(env: &Env) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Chain (libevent test/bench.c)\n\n\
         n socket pairs, a active, w writes: each readable pair is read and \
         passes its byte to the next pair. event = one byte passed (a + w per \
         run, the same for every mechanism). Overhead = ns/event − the floor's \
         (same reads and writes, a userspace FIFO instead of notifications). \
         Ratio = overhead / epoll LT's overhead (medians). Waits and reaping \
         take up to {BATCH} events per call. {} runs each.\n",
        env.runs
    );
    for s in specs(env.quick) {
        eprintln!("chain: n={} a={} w={}", s.n, s.a, s.w);
        let title = format!(
            "Chain: n = {}, a = {}, w = {}{}",
            s.n,
            s.a,
            s.w,
            match s.rounds() {
                1 => String::new(),
                r => format!(" ({r} rounds per run)"),
            }
        );
        let pairs = match Pairs::new(s.n) {
            Ok(p) => p,
            Err(e) => {
                let _ = writeln!(out, "### {title}\n\nFAILED: setting up: {e}\n");
                continue;
            }
        };
        let results = env.compare(
            &Mech::ALL,
            |m| (m.name(), m.need()),
            |m| run_one(m, &pairs, s),
            show,
        );
        drop(pairs);
        out += &table(&title, &results).render();
        out.push('\n');
    }
    out
}

fn table(title: &str, results: &[(Mech, Outcome<Sample>)]) -> Table {
    let mut t = Table::new(
        title,
        &[
            "mechanism",
            "ns/event (median)",
            "min–max",
            "overhead above floor (ns/event)",
            "overhead / epoll LT's",
            "syscalls/event",
            "deliveries/event",
        ],
    );
    let med = |m: Mech| {
        results
            .iter()
            .find(|r| r.0 == m)
            .and_then(|r| r.1.median_of(|s| s.ns))
    };
    let floor = med(Mech::Floor);
    let epoll_over = match (med(Mech::EpollLt), floor) {
        (Some(e), Some(f)) => e - f,
        _ => f64::NAN,
    };
    for (m, o) in results {
        if t.row_outcome(&[m.name()], o) {
            continue;
        }
        let v = o.samples().unwrap_or_default();
        let ns = stats::summarize_by(v, |s| s.ns);
        let (over, rel) = match (floor, *m) {
            (_, Mech::Floor) => ("0".to_string(), "—".to_string()),
            (Some(f), _) => (num(ns.median - f), ratio(ns.median - f, epoll_over)),
            (None, _) => ("—".into(), "—".into()),
        };
        t.row(vec![
            m.name().to_string(),
            num(ns.median),
            stats::range(&ns),
            over,
            rel,
            per(stats::summarize_by(v, |s| s.sc).median),
            per(stats::summarize_by(v, |s| s.deliv).median),
        ]);
    }
    t
}
