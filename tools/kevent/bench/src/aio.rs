// SPDX-License-Identifier: GPL-2.0

//! Case 7: network AIO throughput and CPU per byte.
//!
//! One connection per run carries a fixed volume (8 MiB; 4 MiB with
//! `--quick`) from a sender to a receiver in messages of 4 KiB, 64 KiB or
//! 1 MiB, over TCP on 127.0.0.1 (and, for 64 KiB messages, a UNIX stream
//! socket pair), with five mechanisms that move the same bytes:
//!
//! - blocking: a sender thread `send()`s each message, a receiver thread
//!   takes it with one `recv(MSG_WAITALL)` (blocking sockets); placed as
//!   `--echo-cpus` says (by default both on CPU 0, where the receiver's
//!   wake-up preempts the sender once a message), and again with the
//!   receiver on CPU 1 (a second row, unless `--echo-cpus split` makes the
//!   first one so): a pair that does not switch context per message;
//! - epoll: one thread drives both ends, non-blocking, edge triggered
//!   (`EPOLLOUT` on the sending end, `EPOLLIN` on the receiving end): it
//!   `send()`s until `EAGAIN`, `recv()`s until `EAGAIN`, and calls
//!   `epoll_wait()` only when neither end can make progress;
//! - io_uring: one thread, `IORING_OP_SEND` and `IORING_OP_RECV` (both with
//!   `MSG_WAITALL`, so a request moves its whole message) from four buffers
//!   per direction. io_uring does not order requests on one socket unless
//!   they are linked, so each direction submits chains of four requests
//!   linked with `IOSQE_IO_LINK`, the next chain once the previous one
//!   completed (1 to 4 in flight per direction); one `io_uring_enter()`
//!   submits and waits;
//! - kevent AIO: one thread, `KEVENT_AIO_SEND` and `KEVENT_AIO_RECV` (with
//!   `KEVENT_REQ_AIO_WAITALL`) requests, four in flight per direction all
//!   the time (the kernel runs one socket's requests in submission order per
//!   direction): each completion collected by `kevent_get_events()` (up to
//!   eight a call) makes the next request of its direction, all of a wait's
//!   new requests going in one `kevent_ctl(ADD)`;
//! - kevent AIO ring: the same requests, buffers and loop on a queue made
//!   with a ready ring (`KEVENT_RING`) of 64 slots (at least four times the
//!   eight requests in flight, so that none finds it full), into which the
//!   kernel writes the completions that succeed. The loop pops them (up to eight at
//!   a time) without a system call, and calls `kevent_get_events(min 1)`,
//!   counted, only when the ring is empty: it returns the completions on the
//!   ready list (failures, and any that found the ring full), or 0 as soon
//!   as the ring holds one, which is then popped. The two kevent rows differ
//!   in the collection only.
//!
//! A second table sends an 8 MiB file (4 MiB with `--quick`; in the temporary
//! directory, `/tmp`, tmpfs in the benchmark guest; unlinked, written and
//! read once before, so it is in the page cache) over TCP in 64 KiB or
//! 1 MiB pieces: `sendfile(2)` in a loop on a blocking socket against
//! `KEVENT_AIO_SENDFILE` requests, four in flight, offsets advancing. The
//! receiver is a thread taking 64 KiB `recv(MSG_WAITALL)`s in both.
//!
//! Every socket has `TCP_NODELAY` (TCP), 30 s `SO_SNDTIMEO`/`SO_RCVTIMEO`,
//! and every wait a 30 s limit, so a stall fails the run instead of hanging
//! it. Timed: from the start (the threaded mechanisms: both threads released
//! by a barrier) to the last message received and checked (and, for
//! io_uring and kevent AIO, the last send completed). The system calls are
//! those of both ends in that time, counted by the `sys.rs` wrappers, per
//! message (sendfile: the sender's, per piece).
//!
//! CPU per byte, three ways, per MiB moved:
//! - wall: elapsed time. Under the instruction-count clock of `dev/kevent
//!   bench` (QEMU `-icount`) the guest clock advances with the
//!   instructions of every vCPU, so it counts the work of all CPUs,
//!   kernel workers included;
//! - process CPU: `getrusage(RUSAGE_SELF)` user + system time of the
//!   benchmark's threads. The loopback receive path runs in whichever task
//!   sends, and io_uring's retries in the submitter (`DEFER_TASKRUN`), but
//!   the network AIO transfers run in kernel workers (the per-CPU system
//!   workqueue) and are *not* in it;
//! - all-CPU busy: the non-idle time of all CPUs from `/proc/stat` (kernel
//!   workers and anything else included), sampled at the scheduler tick, in
//!   `USER_HZ` units (10 ms): too coarse for one run, so pooled over all
//!   the runs of a row, and shown only if they took half a second in all.
//!
//! The kevent rows are "n/a" when the kernel has no AIO source (`main.rs`
//! probes it with a one-byte send, which such a kernel refuses with
//! `EINVAL`), and "kevent AIO ring" also when it has no ready ring (a queue
//! with a ring refused with `EINVAL`).
//!
//! Checks per run: every message (piece) arrives whole and in order; the
//! first word of every 4 KiB block of the stream carries the block's index,
//! checked for every block; the rest of the block is a fixed pattern,
//! checked in full with `--quick` and otherwise on its first and last 64
//! bytes; the AIO and io_uring completions report the full length, in
//! submission order; the receiver sees end of file after the last byte.
//!
//! `KEVENT_BENCH_AIO_DEPTH=N` in the environment (1 to 64; 4 by default)
//! sets the requests in flight per direction of io_uring (its chain
//! length) and kevent AIO, and the sendfile requests in flight, for a sweep.
//!
//! Threads are placed as for echo and stream (`--echo-cpus`): all on CPU 0
//! by default (the AIO work is queued on the CPU that took the wake-up, so
//! its kernel workers run there too), the receiver thread of the blocking
//! and sendfile runs on CPU 1 with `split`, or all unbound with `any`.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types, IoUring};
use kevent::{Event, Events, Queue, QueueFlags, Request, Ring};

use crate::stats::{self, num, per, ratio, Outcome, Table};
use crate::stream;
use crate::stream::Transport;
use crate::sys;
use crate::{EchoCpus, Env, Need};

/// Unit of the data check: every block starts with its index.
const BLOCK: usize = 4096;
/// Bytes checked at each end of a block when not checking everything.
const SAMPLE: usize = 64;
/// Requests in flight per direction (io_uring: per chain): 4, or
/// `KEVENT_BENCH_AIO_DEPTH` (1 to 64) in the environment.
fn depth() -> usize {
    static DEPTH: OnceLock<usize> = OnceLock::new();
    *DEPTH.get_or_init(|| {
        std::env::var("KEVENT_BENCH_AIO_DEPTH")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|d| (1..=64).contains(d))
            .unwrap_or(4)
    })
}

/// The names of the mechanisms that depend on [`depth`]: io_uring, kevent
/// AIO, kevent AIO ring, kevent AIO sendfile (made once; names are
/// `&'static str`).
fn depth_names() -> &'static [&'static str; 4] {
    static NAMES: OnceLock<[&'static str; 4]> = OnceLock::new();
    NAMES.get_or_init(|| {
        let d = depth();
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        [
            leak(format!(
                "io_uring SEND/RECV, linked chains of {d} (1 thread)"
            )),
            leak(format!("kevent AIO send/recv, {d} in flight (1 thread)")),
            leak(format!(
                "kevent AIO ring send/recv, {d} in flight (1 thread)"
            )),
            leak(format!("kevent AIO sendfile, {d} in flight")),
        ]
    })
}
const STALL: Duration = Duration::from_secs(30);
const MIB: f64 = (1 << 20) as f64;
/// user_data bit of receives (io_uring and kevent AIO).
const RECV_BIT: u64 = 1 << 63;
/// The receiver's `recv()` size in the sendfile runs.
const FILE_RECV: usize = 64 << 10;

/// Slots of the ready ring of "kevent AIO ring": a power of two, four times
/// the requests in flight (`2 * depth()`), at least 64, at most
/// `KEVENT_RING_MAX_ENTRIES`, so that no completion finds it full.
fn ring_entries() -> u32 {
    let max = kevent::sys::KEVENT_RING_MAX_ENTRIES as usize;
    (4 * 2 * depth()).next_power_of_two().clamp(64, max) as u32
}

/// One table: a transport, a message size and the data per run.
#[derive(Clone, Copy)]
struct Spec {
    transport: Transport,
    msg: usize,
    total: usize,
}

impl Spec {
    fn all(quick: bool) -> Vec<Spec> {
        let total = if quick { 4 << 20 } else { 8 << 20 };
        [
            (Transport::Tcp, 4 << 10),
            (Transport::Tcp, 64 << 10),
            (Transport::Tcp, 1 << 20),
            (Transport::Unix, 64 << 10),
        ]
        .into_iter()
        // For profiling one size alone: KEVENT_BENCH_AIO_MSG=4096 (the sendfile tables too
        // are left out then).
        .filter(|&(_, msg)| only_msg().is_none_or(|m| m == msg))
        .map(|(transport, msg)| Spec {
            transport,
            msg,
            total,
        })
        .collect()
    }

    fn name(self) -> String {
        format!(
            "{}, {} messages",
            match self.transport {
                Transport::Tcp => "TCP 127.0.0.1",
                Transport::Unix => "UNIX stream",
            },
            size_name(self.msg)
        )
    }

    fn messages(self) -> u64 {
        (self.total / self.msg) as u64
    }

    /// 4 KiB blocks per message.
    fn blocks(self) -> u64 {
        (self.msg / BLOCK) as u64
    }
}

fn size_name(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{} KiB", n >> 10)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mech {
    Blocking,
    /// Blocking, the receiver on CPU 1 whatever `--echo-cpus` says.
    BlockingSplit,
    Epoll,
    Uring,
    Aio,
    AioRing,
}

impl Mech {
    const ALL: [Mech; 6] = [
        Mech::Blocking,
        Mech::BlockingSplit,
        Mech::Epoll,
        Mech::Uring,
        Mech::Aio,
        Mech::AioRing,
    ];

    fn name(self) -> &'static str {
        match self {
            Mech::Blocking => "blocking send/recv (2 threads)",
            Mech::BlockingSplit => "blocking send/recv (2 threads), receiver on CPU 1",
            Mech::Epoll => "epoll ET + non-blocking send/recv (1 thread)",
            Mech::Uring => depth_names()[0],
            Mech::Aio => depth_names()[1],
            Mech::AioRing => depth_names()[2],
        }
    }

    fn need(self) -> Need {
        match self {
            Mech::Blocking | Mech::BlockingSplit | Mech::Epoll => Need::Nothing,
            Mech::Uring => Need::Uring,
            Mech::Aio => Need::KeventAio,
            Mech::AioRing => Need::KeventAioRing,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FileMech {
    Sendfile,
    Aio,
}

impl FileMech {
    const ALL: [FileMech; 2] = [FileMech::Sendfile, FileMech::Aio];

    fn name(self) -> &'static str {
        match self {
            FileMech::Sendfile => "sendfile(2), blocking socket",
            FileMech::Aio => depth_names()[3],
        }
    }

    fn need(self) -> Need {
        match self {
            FileMech::Sendfile => Need::Nothing,
            FileMech::Aio => Need::KeventAio,
        }
    }
}

/// One run.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    bytes: u64,
    /// Messages (sendfile: pieces).
    units: u64,
    wall: Duration,
    /// System calls of the measuring thread (the receiver, or the only
    /// thread) and of a separate sender thread.
    sc_main: u64,
    sc_sender: u64,
    cpu: Duration,
    busy: Option<Duration>,
}

impl Sample {
    fn mbps(&self) -> f64 {
        self.bytes as f64 / self.wall.as_secs_f64() / 1e6
    }

    fn ns_per_unit(&self) -> f64 {
        self.wall.as_nanos() as f64 / self.units as f64
    }

    fn sc_per_unit(&self) -> f64 {
        (self.sc_main + self.sc_sender) as f64 / self.units as f64
    }

    fn sender_sc_per_unit(&self) -> f64 {
        self.sc_sender as f64 / self.units as f64
    }

    /// Microseconds of `d` per MiB moved.
    fn us_per_mib(&self, d: Duration) -> f64 {
        d.as_secs_f64() * 1e6 / (self.bytes as f64 / MIB)
    }

    fn wall_per_mib(&self) -> f64 {
        self.us_per_mib(self.wall)
    }

    fn cpu_per_mib(&self) -> f64 {
        self.us_per_mib(self.cpu)
    }

    fn busy_per_mib(&self) -> f64 {
        self.busy.map_or(f64::NAN, |b| self.us_per_mib(b))
    }
}

/// Runs shorter than this in all do not show the tick-sampled busy time.
const BUSY_MIN: Duration = Duration::from_millis(500);

/// The busy time of all CPUs per MiB over all of `v` pooled (one run is
/// too few ticks), if it was read and the runs took [`BUSY_MIN`] in all.
fn pooled_busy_per_mib(v: &[Sample]) -> f64 {
    let wall: Duration = v.iter().map(|s| s.wall).sum();
    let busy: Option<Duration> = v.iter().map(|s| s.busy).sum();
    let bytes: u64 = v.iter().map(|s| s.bytes).sum();
    match busy {
        Some(b) if wall >= BUSY_MIN && bytes > 0 => b.as_secs_f64() * 1e6 / (bytes as f64 / MIB),
        _ => f64::NAN,
    }
}

/// The counters at the start of a timed region.
struct Meter {
    busy: Option<Duration>,
    cpu: Duration,
    sc: u64,
    t0: Instant,
}

impl Meter {
    /// Reads `/proc/stat` and `getrusage()` (not counted: before the
    /// syscall counter is read), then the clock.
    fn start() -> Meter {
        let busy = sys::cpus_busy();
        let cpu = sys::process_cpu();
        let sc = sys::syscalls();
        Meter {
            busy,
            cpu,
            sc,
            t0: Instant::now(),
        }
    }

    /// The clock, the syscall counter, then the rest, in the reverse order.
    fn stop(self, bytes: u64, units: u64) -> Sample {
        let wall = self.t0.elapsed();
        let sc_main = sys::syscalls() - self.sc;
        let cpu = sys::process_cpu().saturating_sub(self.cpu);
        let busy = match (self.busy, sys::cpus_busy()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        Sample {
            bytes,
            units,
            wall,
            sc_main,
            sc_sender: 0,
            cpu,
            busy,
        }
    }
}

// ---------------------------------------------------------------------------
// The data and its check.

fn tag(block: u64) -> u64 {
    0x6b65_7665_0000_0000 ^ block
}

/// The fixed content of every block (its first word is replaced by the tag).
fn block_pattern() -> &'static [u8] {
    static P: OnceLock<Vec<u8>> = OnceLock::new();
    P.get_or_init(|| {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut v = Vec::with_capacity(BLOCK);
        while v.len() < BLOCK {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.extend_from_slice(&x.to_ne_bytes());
        }
        v
    })
}

/// `len` bytes (a multiple of [`BLOCK`]) of blocks, untagged.
fn pattern(len: usize) -> Vec<u8> {
    block_pattern().repeat(len / BLOCK)
}

/// Tags the blocks of `buf` as blocks `first`, `first + 1`, ... of the stream.
#[inline]
fn prepare(buf: &mut [u8], first: u64) {
    for (i, b) in buf.chunks_exact_mut(BLOCK).enumerate() {
        b[..8].copy_from_slice(&tag(first + i as u64).to_ne_bytes());
    }
}

#[inline]
fn word(b: &[u8]) -> u64 {
    u64::from_ne_bytes(b[..8].try_into().unwrap())
}

/// Non-zero if the 64-bit words of `a` and `b` differ (no early exit, so
/// that it vectorises).
#[inline]
fn diff(a: &[u8], b: &[u8]) -> u64 {
    a.chunks_exact(8)
        .zip(b.chunks_exact(8))
        .fold(0, |acc, (x, y)| acc | (word(x) ^ word(y)))
}

/// Checks that `buf` holds blocks `first`, `first + 1`, ... of the stream:
/// every tag, and all of the pattern (`full`) or its first and last
/// [`SAMPLE`] bytes.
#[inline]
fn check(buf: &[u8], first: u64, full: bool) -> Result<(), String> {
    let p = block_pattern();
    for (i, b) in buf.chunks_exact(BLOCK).enumerate() {
        let n = first + i as u64;
        let got = word(b);
        if got != tag(n) {
            return Err(format!(
                "block {n} of the stream starts with {got:#x}, not {:#x}",
                tag(n)
            ));
        }
        let bad = if full {
            diff(&b[8..], &p[8..])
        } else {
            diff(&b[8..SAMPLE], &p[8..SAMPLE]) | diff(&b[BLOCK - SAMPLE..], &p[BLOCK - SAMPLE..])
        };
        if bad != 0 {
            return Err(format!(
                "block {n} of the stream differs from what was sent"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Sockets and threads.

/// A connection (sending end, receiving end) with `TCP_NODELAY` (TCP) and
/// the stall timeouts, non-blocking if `nonblock`.
fn pair(t: Transport, nonblock: bool) -> Result<(OwnedFd, OwnedFd), String> {
    let (tx, rx) = t.connect()?;
    let stall = libc::timeval {
        tv_sec: STALL.as_secs() as _,
        tv_usec: 0,
    };
    for fd in [&tx, &rx] {
        let fd = fd.as_raw_fd();
        let e = |e: io::Error| format!("setsockopt: {e}");
        if t == Transport::Tcp {
            stream::setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, &1i32).map_err(e)?;
        }
        for opt in [libc::SO_SNDTIMEO, libc::SO_RCVTIMEO] {
            stream::setsockopt(fd, libc::SOL_SOCKET, opt, &stall).map_err(e)?;
        }
        if nonblock {
            // SAFETY: no pointers.
            let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
            // SAFETY: no pointers.
            if fl < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) } < 0 {
                return Err(format!("fcntl: {}", io::Error::last_os_error()));
            }
        }
    }
    Ok((tx, rx))
}

/// After the timed region, the sending end closed: `fd` must report end
/// of file, with no byte more.
fn expect_eof(fd: RawFd) -> Result<(), String> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: `p` is a valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, STALL.as_millis() as i32) };
        if r > 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if r == 0 {
            return Err(format!("no end of file after {STALL:?}"));
        }
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(format!("poll for end of file: {e}"));
        }
    }
    let mut b = [0u8; 64];
    // SAFETY: `b` is valid for writes of its length.
    let k = unsafe { libc::recv(fd, b.as_mut_ptr().cast(), b.len(), libc::MSG_DONTWAIT) };
    match k {
        0 => Ok(()),
        k if k > 0 => Err(format!("{k} or more bytes more than sent")),
        _ => Err(format!(
            "recv for end of file: {}",
            io::Error::last_os_error()
        )),
    }
}

fn stalled(what: &str, done: u64, n: u64) -> String {
    format!("no completion for {STALL:?}: {what} {done} of {n}")
}

/// Buffers lent to the kernel by AIO and io_uring requests: raw
/// allocations without a destructor, so that an error or a panic with
/// requests in flight leaks them instead of freeing memory the kernel may
/// still use. [`Lent::free`] gives them back once no request uses them.
struct Lent {
    bufs: Vec<*mut [u8]>,
}

impl Lent {
    fn new(n: usize, init: &[u8]) -> Lent {
        Lent {
            bufs: (0..n)
                .map(|_| Box::into_raw(init.to_vec().into_boxed_slice()))
                .collect(),
        }
    }

    /// Buffer `i`.
    ///
    /// # Safety
    ///
    /// No request using it is in flight, and the slice is gone before one
    /// is submitted.
    #[allow(clippy::mut_from_ref)]
    unsafe fn get(&mut self, i: usize) -> &mut [u8] {
        // SAFETY: a live allocation, not used by the kernel (the caller's
        // promise); `&mut self` makes this the only slice of it.
        unsafe { &mut *self.bufs[i] }
    }

    /// The buffer of message `seq`: they are used in turn.
    fn slot(&self, seq: u64) -> usize {
        (seq % self.bufs.len() as u64) as usize
    }

    fn ptr(&self, i: usize) -> *mut u8 {
        self.bufs[i].cast()
    }

    fn len(&self, i: usize) -> usize {
        self.bufs[i].len()
    }

    /// Frees the buffers.
    ///
    /// # Safety
    ///
    /// No request using any of them is in flight.
    unsafe fn free(self) {
        for b in self.bufs {
            // SAFETY: made by Box::into_raw in new(), freed once.
            drop(unsafe { Box::from_raw(b) });
        }
    }
}

/// What the receiver thread of a threaded run takes: `total` bytes in
/// `recv()`s of `size` bytes; `units` are what per-unit numbers divide by.
#[derive(Clone, Copy)]
struct Plan {
    total: u64,
    size: usize,
    units: u64,
    full: bool,
}

/// Both threads reach `ready`; the receiver then starts its meter and both
/// go.
struct Start {
    ready: Barrier,
    go: Barrier,
}

/// The receiver of the threaded runs: blocking `recv(MSG_WAITALL)`s of
/// `plan.size` bytes, each checked.
fn blocking_receiver(rx: OwnedFd, plan: Plan, start: &Start) -> Result<Sample, String> {
    let raw = rx.as_raw_fd();
    let mut buf = sys::touched(plan.size);
    let blocks = (plan.size / BLOCK) as u64;
    let n = plan.total / plan.size as u64;
    start.ready.wait();
    let m = Meter::start();
    start.go.wait();
    for c in 0..n {
        let mut got = 0;
        while got < plan.size {
            match sys::recv(raw, &mut buf[got..], libc::MSG_WAITALL) {
                Ok(0) => {
                    return Err(format!(
                        "end of file after {} of {} bytes",
                        c * plan.size as u64 + got as u64,
                        plan.total
                    ))
                }
                Ok(k) => got += k,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) if sys::is_eagain(&e) => {
                    return Err(format!(
                        "no data for {STALL:?} after {} bytes",
                        c * plan.size as u64 + got as u64
                    ))
                }
                Err(e) => return Err(format!("recv: {e}")),
            }
        }
        check(&buf, c * blocks, plan.full)?;
    }
    let s = m.stop(plan.total, plan.units);
    expect_eof(raw)?;
    Ok(s)
}

/// A run with a receiver thread (see [`blocking_receiver`]) and `sender`,
/// called on this thread once both are ready, which sends everything on
/// `tx`, closes it and returns its system calls.
fn threaded(
    pin: EchoCpus,
    tx: OwnedFd,
    rx: OwnedFd,
    plan: Plan,
    sender: impl FnOnce(OwnedFd) -> Result<u64, String>,
) -> Result<Sample, String> {
    let start = Start {
        ready: Barrier::new(2),
        go: Barrier::new(2),
    };
    thread::scope(|sc| {
        let st = &start;
        let recv = thread::Builder::new()
            .name("aio-receiver".into())
            .spawn_scoped(sc, move || {
                match pin {
                    EchoCpus::Same => sys::pin_to(0),
                    EchoCpus::Split => sys::pin_to(1),
                    EchoCpus::Any => true,
                };
                blocking_receiver(rx, plan, st)
            })
            .map_err(|e| format!("spawning the receiver: {e}"))?;
        let saved = sys::affinity();
        if pin != EchoCpus::Any {
            sys::pin_to(0);
        }
        start.ready.wait();
        start.go.wait();
        let sent = sender(tx);
        if let Some(a) = saved {
            sys::set_affinity(&a);
        }
        let got = recv
            .join()
            .map_err(|p| format!("receiver panicked: {:?}", p.downcast_ref::<&str>()))?;
        // The receiver's error is the cause when both failed (a sender's
        // EPIPE follows a receiver that gave up).
        match (sent, got) {
            (Ok(sc), Ok(mut s)) => {
                s.sc_sender = sc;
                Ok(s)
            }
            (_, Err(e)) => Err(format!("receiver: {e}")),
            (Err(e), _) => Err(format!("sender: {e}")),
        }
    })
}

/// Runs `f` with this thread on CPU 0 (unless `--echo-cpus any`).
fn pinned<T>(pin: EchoCpus, f: impl FnOnce() -> T) -> T {
    let saved = sys::affinity();
    if pin != EchoCpus::Any {
        sys::pin_to(0);
    }
    let r = f();
    if let Some(a) = saved {
        sys::set_affinity(&a);
    }
    r
}

// ---------------------------------------------------------------------------
// The mechanisms.

fn run_blocking(s: Spec, pin: EchoCpus, full: bool) -> Result<Sample, String> {
    let (tx, rx) = pair(s.transport, false)?;
    let plan = Plan {
        total: s.total as u64,
        size: s.msg,
        units: s.messages(),
        full,
    };
    let mut buf = pattern(s.msg);
    threaded(pin, tx, rx, plan, move |tx| {
        let raw = tx.as_raw_fd();
        let sc0 = sys::syscalls();
        for seq in 0..s.messages() {
            prepare(&mut buf, seq * s.blocks());
            let mut off = 0;
            while off < s.msg {
                match sys::send(raw, &buf[off..], libc::MSG_NOSIGNAL) {
                    Ok(k) => off += k,
                    Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                    Err(e) => return Err(format!("send of message {seq}: {e}")),
                }
            }
        }
        Ok(sys::syscalls() - sc0)
    })
}

fn run_epoll(s: Spec, full: bool) -> Result<Sample, String> {
    let (tx, rx) = pair(s.transport, true)?;
    let (txr, rxr) = (tx.as_raw_fd(), rx.as_raw_fd());
    let ep = sys::epoll_create().map_err(|e| format!("epoll_create1: {e}"))?;
    let epr = ep.as_raw_fd();
    let et = libc::EPOLLET as u32;
    sys::epoll_ctl(epr, libc::EPOLL_CTL_ADD, txr, libc::EPOLLOUT as u32 | et, 0)
        .and_then(|_| sys::epoll_ctl(epr, libc::EPOLL_CTL_ADD, rxr, libc::EPOLLIN as u32 | et, 1))
        .map_err(|e| format!("epoll_ctl: {e}"))?;
    let mut sbuf = pattern(s.msg);
    let mut rbuf = sys::touched(s.msg);
    let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 2];
    let n = s.messages();
    let (mut sseq, mut soff, mut rseq, mut roff) = (0u64, 0usize, 0u64, 0usize);
    // Edge triggered: an end is tried until EAGAIN, then waits for its event.
    let (mut can_send, mut can_recv) = (true, true);
    let m = Meter::start();
    while rseq < n {
        while can_send && sseq < n {
            if soff == 0 {
                prepare(&mut sbuf, sseq * s.blocks());
            }
            match sys::send(txr, &sbuf[soff..], libc::MSG_NOSIGNAL) {
                Ok(k) => {
                    soff += k;
                    if soff == s.msg {
                        soff = 0;
                        sseq += 1;
                    }
                }
                Err(e) if sys::is_eagain(&e) => can_send = false,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(format!("send of message {sseq}: {e}")),
            }
        }
        while can_recv && rseq < n {
            match sys::recv(rxr, &mut rbuf[roff..], 0) {
                Ok(0) => return Err(format!("end of file in message {rseq}")),
                Ok(k) => {
                    roff += k;
                    if roff == s.msg {
                        check(&rbuf, rseq * s.blocks(), full)?;
                        roff = 0;
                        rseq += 1;
                    }
                }
                Err(e) if sys::is_eagain(&e) => can_recv = false,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(format!("recv: {e}")),
            }
        }
        if rseq < n && !can_recv && (!can_send || sseq == n) {
            let k = sys::epoll_wait(epr, &mut evs, STALL.as_millis() as i32)
                .map_err(|e| format!("epoll_wait: {e}"))?;
            if k == 0 {
                return Err(stalled("message", rseq, n));
            }
            for e in &evs[..k] {
                if e.u64 == 0 {
                    can_send = true;
                } else {
                    can_recv = true;
                }
            }
        }
    }
    let sample = m.stop(s.total as u64, n);
    drop(tx);
    expect_eof(rxr)?;
    Ok(sample)
}

fn run_uring(s: Spec, full: bool) -> Result<Sample, String> {
    let (tx, rx) = pair(s.transport, false)?;
    let mut ring = sys::new_ring(2 * depth() as u32, 4 * depth() as u32)
        .map_err(|e| format!("io_uring_setup: {e}"))?;
    let mut sl = Lent::new(depth(), &pattern(s.msg));
    let mut rl = Lent::new(depth(), &vec![0u8; s.msg]);
    let r = uring_loop(
        &mut ring,
        tx.as_raw_fd(),
        rx.as_raw_fd(),
        s,
        full,
        &mut sl,
        &mut rl,
    );
    drop(ring);
    // On an error, requests may be in flight: the buffers stay leaked.
    let sample = r?;
    // SAFETY: every request completed (its completion was reaped).
    unsafe {
        sl.free();
        rl.free();
    }
    drop(tx);
    expect_eof(rx.as_raw_fd())?;
    Ok(sample)
}

fn uring_loop(
    ring: &mut IoUring,
    tx: RawFd,
    rx: RawFd,
    s: Spec,
    full: bool,
    sl: &mut Lent,
    rl: &mut Lent,
) -> Result<Sample, String> {
    let n = s.messages();
    let depth = depth() as u64;
    let (mut ssub, mut sdone, mut rsub, mut rdone) = (0u64, 0u64, 0u64, 0u64);
    let mut cqes: Vec<(u64, i32)> = Vec::with_capacity(4 * depth as usize);
    let m = Meter::start();
    loop {
        // A new chain in a direction once the previous one completed.
        if sdone == ssub && ssub < n {
            let c = (n - ssub).min(depth);
            for j in 0..c {
                let seq = ssub + j;
                let slot = (seq % depth) as usize;
                // SAFETY: the slot's previous send completed.
                prepare(unsafe { sl.get(slot) }, seq * s.blocks());
                let mut sqe = opcode::Send::new(types::Fd(tx), sl.ptr(slot), sl.len(slot) as u32)
                    .flags(libc::MSG_WAITALL | libc::MSG_NOSIGNAL)
                    .build()
                    .user_data(seq);
                if j + 1 < c {
                    sqe = sqe.flags(squeue::Flags::IO_LINK);
                }
                // SAFETY: the buffer stays allocated and unwritten until the
                // completion is reaped (Lent: leaked unless freed after).
                unsafe { ring.submission().push(&sqe) }
                    .map_err(|_| "submission queue full".to_string())?;
            }
            ssub += c;
        }
        if rdone == rsub && rsub < n {
            let c = (n - rsub).min(depth);
            for j in 0..c {
                let seq = rsub + j;
                let slot = (seq % depth) as usize;
                let mut sqe = opcode::Recv::new(types::Fd(rx), rl.ptr(slot), rl.len(slot) as u32)
                    .flags(libc::MSG_WAITALL)
                    .build()
                    .user_data(RECV_BIT | seq);
                if j + 1 < c {
                    sqe = sqe.flags(squeue::Flags::IO_LINK);
                }
                // SAFETY: the buffer stays allocated, and is not accessed,
                // until the completion is reaped.
                unsafe { ring.submission().push(&sqe) }
                    .map_err(|_| "submission queue full".to_string())?;
            }
            rsub += c;
        }
        if sdone == n && rdone == n {
            break;
        }
        if ring.completion().is_empty() {
            // Submits the new chains and waits.
            sys::uring_wait(ring, 1, STALL).map_err(|e| format!("io_uring_enter: {e}"))?;
            if ring.completion().is_empty() {
                return Err(stalled("message", rdone, n));
            }
        }
        cqes.clear();
        cqes.extend(ring.completion().map(|c| (c.user_data(), c.result())));
        for &(ud, res) in &cqes {
            let seq = ud & !RECV_BIT;
            let what = if ud & RECV_BIT != 0 { "recv" } else { "send" };
            if res < 0 {
                return Err(format!(
                    "{what} of message {seq}: {}",
                    io::Error::from_raw_os_error(-res)
                ));
            }
            if res as usize != s.msg {
                return Err(format!("{what} of message {seq}: {res} bytes"));
            }
            if ud & RECV_BIT == 0 {
                if seq != sdone {
                    return Err(format!("send {seq} completed, {sdone} expected"));
                }
                sdone += 1;
            } else {
                if seq != rdone {
                    return Err(format!("recv {seq} completed, {rdone} expected"));
                }
                // SAFETY: the receive completed; the slot is not resubmitted
                // before the slice is gone.
                check(
                    unsafe { rl.get((seq % depth) as usize) },
                    seq * s.blocks(),
                    full,
                )?;
                rdone += 1;
            }
        }
    }
    Ok(m.stop(s.total as u64, n))
}

/// Submits `batch` (one `kevent_ctl(ADD)`), which must take effect whole.
fn submit(q: &Queue, batch: &mut Vec<Request>) -> Result<(), String> {
    let n = sys::kq_add(q, batch).map_err(|e| format!("kevent_ctl(ADD): {e}"))?;
    for r in batch.iter() {
        r.result()
            .map_err(|e| format!("AIO request {}: {e}", r.raw().user_data & !RECV_BIT))?;
    }
    if n != batch.len() {
        return Err(format!("{n} of {} requests added", batch.len()));
    }
    batch.clear();
    Ok(())
}

/// kevent AIO send/recv, on a queue with a ready ring of [`ring_entries`]
/// slots if `ring` (the only difference: where completions are collected).
fn run_aio(s: Spec, full: bool, ring: bool) -> Result<Sample, String> {
    let (tx, rx) = pair(s.transport, false)?;
    let (q, ring) = if ring {
        let (q, r) = Queue::with_ring(QueueFlags::CLOEXEC, ring_entries())
            .map_err(|e| format!("kevent queue with a ring: {e}"))?;
        (q, Some(r))
    } else {
        let q = Queue::new().map_err(|e| format!("kevent queue: {e}"))?;
        (q, None)
    };
    let mut sl = Lent::new(depth(), &pattern(s.msg));
    let mut rl = Lent::new(depth(), &vec![0u8; s.msg]);
    let r = aio_loop(
        &q,
        ring.as_ref(),
        tx.as_fd(),
        rx.as_fd(),
        s,
        full,
        &mut sl,
        &mut rl,
    );
    // Releasing the queue (its descriptor and its ring's mapping) cancels
    // what is still in flight after an error; the buffers stay leaked then
    // all the same.
    drop(ring);
    drop(q);
    let sample = r?;
    // SAFETY: every request's completion was collected.
    unsafe {
        sl.free();
        rl.free();
    }
    drop(tx);
    expect_eof(rx.as_raw_fd())?;
    Ok(sample)
}

/// The request sending message `seq` from its slot, tagged first.
///
/// # Safety
///
/// The slot's previous request completed; the returned request lends it.
unsafe fn aio_send(tx: BorrowedFd<'_>, sl: &mut Lent, seq: u64, blocks: u64) -> Request {
    let slot = sl.slot(seq);
    // SAFETY: not in flight (the caller's promise).
    prepare(unsafe { sl.get(slot) }, seq * blocks);
    // SAFETY: `Lent` keeps the buffer allocated, and the caller unwritten,
    // until the completion is collected (leaked if it may never be).
    unsafe {
        Request::aio_send(
            tx,
            std::slice::from_raw_parts(sl.ptr(slot), sl.len(slot)),
            seq,
        )
    }
}

/// The request receiving message `seq` into its slot.
///
/// # Safety
///
/// As for [`aio_send`].
unsafe fn aio_recv(rx: BorrowedFd<'_>, rl: &mut Lent, seq: u64) -> Request {
    let slot = rl.slot(seq);
    // SAFETY: as in aio_send; no slice of the buffer is live until the
    // completion is collected.
    unsafe {
        Request::aio_recv(
            rx,
            std::slice::from_raw_parts_mut(rl.ptr(slot), rl.len(slot)),
            true,
            RECV_BIT | seq,
        )
    }
}

/// One collection of completions, returned from `evs` or `popped`; empty
/// if [`STALL`] passed without any. Without a ring: one counted
/// `kevent_get_events(min 1)`. With one: the completions popped from the
/// ring, without a system call; only when it is empty, one counted
/// `kevent_get_events(min 1)`, which returns those on the ready list
/// (failed requests, and completions that found the ring full), or 0 as
/// soon as the ring holds one, which is then popped. At most `max` are
/// popped at a time.
#[inline]
fn collect<'a>(
    q: &Queue,
    ring: Option<&Ring>,
    evs: &'a mut Events,
    popped: &'a mut Vec<Event>,
    max: usize,
) -> Result<&'a [Event], String> {
    if let Some(ring) = ring {
        popped.clear();
        popped.extend(ring.drain().take(max));
        if !popped.is_empty() {
            return Ok(popped);
        }
    }
    let k = sys::kq_wait(q, evs, 1, Some(STALL)).map_err(|e| format!("kevent_get_events: {e}"))?;
    if let (0, Some(ring)) = (k, ring) {
        popped.extend(ring.drain().take(max));
        return Ok(popped);
    }
    Ok(evs.as_slice())
}

#[allow(clippy::too_many_arguments)]
fn aio_loop(
    q: &Queue,
    ring: Option<&Ring>,
    tx: BorrowedFd<'_>,
    rx: BorrowedFd<'_>,
    s: Spec,
    full: bool,
    sl: &mut Lent,
    rl: &mut Lent,
) -> Result<Sample, String> {
    let n = s.messages();
    let depth = depth();
    let first = n.min(depth as u64);
    let mut evs = Events::with_capacity(2 * depth);
    let mut popped = Vec::with_capacity(2 * depth);
    let mut batch = Vec::with_capacity(2 * depth);
    let (mut sdone, mut rdone) = (0u64, 0u64);
    let m = Meter::start();
    for seq in 0..first {
        // SAFETY: nothing submitted yet.
        batch.push(unsafe { aio_send(tx, sl, seq, s.blocks()) });
    }
    for seq in 0..first {
        // SAFETY: nothing submitted yet.
        batch.push(unsafe { aio_recv(rx, rl, seq) });
    }
    submit(q, &mut batch)?;
    let (mut ssub, mut rsub) = (first, first);
    while sdone < n || rdone < n {
        let got = collect(q, ring, &mut evs, &mut popped, 2 * depth)?;
        if got.is_empty() {
            return Err(stalled("message", rdone, n));
        }
        for ev in got {
            let seq = ev.user_data() & !RECV_BIT;
            let (what, fd, next) = match ev.events() {
                kevent::AIO_SEND => ("send", tx, sdone),
                kevent::AIO_RECV => ("recv", rx, rdone),
                e => return Err(format!("unexpected event {e:#x}")),
            };
            let res = ev
                .result()
                .map_err(|e| format!("{what} of message {seq}: {e}"))?;
            if ev.id() != fd.as_raw_fd() as u64 || seq != next {
                return Err(format!(
                    "{what} completion for fd {} message {seq}: message {next} expected",
                    ev.id()
                ));
            }
            if res as usize != s.msg {
                return Err(format!("{what} of message {seq}: {res} bytes"));
            }
            if ev.events() == kevent::AIO_SEND {
                sdone += 1;
                if ssub < n {
                    // SAFETY: its slot's send (message ssub - depth, the
                    // one just completed) is done.
                    batch.push(unsafe { aio_send(tx, sl, ssub, s.blocks()) });
                    ssub += 1;
                }
            } else {
                // SAFETY: the receive completed; the slot is resubmitted
                // below, after the slice is gone.
                check(unsafe { rl.get(rl.slot(seq)) }, seq * s.blocks(), full)?;
                rdone += 1;
                if rsub < n {
                    // SAFETY: its slot's receive just completed and was read.
                    batch.push(unsafe { aio_recv(rx, rl, rsub) });
                    rsub += 1;
                }
            }
        }
        if !batch.is_empty() {
            submit(q, &mut batch)?;
        }
    }
    Ok(m.stop(s.total as u64, n))
}

fn run_mech(m: Mech, s: Spec, pin: EchoCpus, full: bool) -> Result<Sample, String> {
    match m {
        Mech::Blocking => run_blocking(s, pin, full),
        Mech::BlockingSplit => run_blocking(s, EchoCpus::Split, full),
        Mech::Epoll => pinned(pin, || run_epoll(s, full)),
        Mech::Uring => pinned(pin, || run_uring(s, full)),
        Mech::Aio => pinned(pin, || run_aio(s, full, false)),
        Mech::AioRing => pinned(pin, || run_aio(s, full, true)),
    }
}

// ---------------------------------------------------------------------------
// sendfile.

/// An unlinked temporary file of `size` bytes of the stream (blocks 0, 1,
/// ...), written and read back once.
fn make_file(size: usize) -> io::Result<File> {
    let path = std::env::temp_dir().join(format!("kevent-bench-aio.{}", std::process::id()));
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    let _ = std::fs::remove_file(&path);
    let piece = 1 << 20;
    let mut buf = pattern(piece);
    let mut off = 0;
    while off < size {
        let len = piece.min(size - off);
        prepare(&mut buf[..len], (off / BLOCK) as u64);
        f.write_all(&buf[..len])?;
        off += len;
    }
    f.flush()?;
    f.seek(SeekFrom::Start(0))?;
    let mut total = 0;
    loop {
        match f.read(&mut buf)? {
            0 => break,
            k => total += k,
        }
    }
    if total != size {
        return Err(io::Error::other(format!(
            "read back {total} of {size} bytes"
        )));
    }
    Ok(f)
}

fn run_file(
    m: FileMech,
    file: BorrowedFd<'_>,
    size: usize,
    piece: usize,
    pin: EchoCpus,
    full: bool,
) -> Result<Sample, String> {
    let (tx, rx) = pair(Transport::Tcp, false)?;
    let pieces = size.div_ceil(piece) as u64;
    let plan = Plan {
        total: size as u64,
        size: FILE_RECV,
        units: pieces,
        full,
    };
    match m {
        FileMech::Sendfile => threaded(pin, tx, rx, plan, |tx| {
            let sc0 = sys::syscalls();
            let mut off = 0u64;
            while off < size as u64 {
                let len = piece.min(size - off as usize);
                match sys::sendfile(tx.as_raw_fd(), file.as_raw_fd(), &mut off, len) {
                    Ok(0) => return Err(format!("sendfile at {off}: nothing sent")),
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                    Err(e) => return Err(format!("sendfile at {off}: {e}")),
                }
            }
            Ok(sys::syscalls() - sc0)
        }),
        FileMech::Aio => {
            let q = Queue::new().map_err(|e| format!("kevent queue: {e}"))?;
            threaded(pin, tx, rx, plan, |tx| {
                let sc0 = sys::syscalls();
                aio_sendfile_loop(&q, tx.as_fd(), file, size, piece)?;
                // tx is closed on return: the receiver sees end of file.
                Ok(sys::syscalls() - sc0)
            })
        }
    }
}

fn aio_sendfile_loop(
    q: &Queue,
    tx: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    size: usize,
    piece: usize,
) -> Result<(), String> {
    let n = size.div_ceil(piece) as u64;
    let len = |i: u64| piece.min(size - i as usize * piece);
    let req = |i: u64| Request::aio_sendfile(tx, file, i * piece as u64, len(i), i);
    let mut evs = Events::with_capacity(depth());
    let mut batch: Vec<Request> = (0..n.min(depth() as u64)).map(req).collect();
    let mut sub = batch.len() as u64;
    submit(q, &mut batch)?;
    let mut done = 0u64;
    while done < n {
        let k = sys::kq_wait(q, &mut evs, 1, Some(STALL))
            .map_err(|e| format!("kevent_get_events: {e}"))?;
        if k == 0 {
            return Err(stalled("piece", done, n));
        }
        for ev in &evs {
            let i = ev.user_data();
            let res = ev
                .result()
                .map_err(|e| format!("sendfile of piece {i}: {e}"))?;
            if ev.events() != kevent::AIO_SENDFILE || i != done {
                return Err(format!(
                    "completion {:#x} of piece {i}: piece {done} expected",
                    ev.events()
                ));
            }
            if res as usize != len(i) {
                return Err(format!("sendfile of piece {i}: {res} of {} bytes", len(i)));
            }
            done += 1;
            if sub < n {
                batch.push(req(sub));
                sub += 1;
            }
        }
        if !batch.is_empty() {
            submit(q, &mut batch)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Output.

fn show(s: &Sample) -> String {
    format!(
        "{} MB/s, {} ns/unit, {} syscalls/unit, CPU µs/MiB: process {}, all CPUs {}",
        num(s.mbps()),
        num(s.ns_per_unit()),
        per(s.sc_per_unit()),
        num(s.cpu_per_mib()),
        num(s.busy_per_mib())
    )
}

/// The CPU columns of a row.
fn cpu_cells(v: &[Sample]) -> [String; 3] {
    [
        num(stats::summarize_by(v, Sample::wall_per_mib).median),
        num(stats::summarize_by(v, Sample::cpu_per_mib).median),
        num(pooled_busy_per_mib(v)),
    ]
}

fn message_table(s: Spec, results: &[(Mech, Outcome<Sample>)]) -> Table {
    let rows: Vec<_> = results.iter().map(|(m, o)| (m.name(), o)).collect();
    throughput_table(
        format!("AIO: {}", s.name()),
        ["ratio to blocking", "ns/message", "syscalls/message"],
        Sample::sc_per_unit,
        &rows,
    )
}

fn file_table(piece: usize, size: usize, results: &[(FileMech, Outcome<Sample>)]) -> Table {
    let rows: Vec<_> = results.iter().map(|(m, o)| (m.name(), o)).collect();
    throughput_table(
        format!(
            "AIO sendfile: {} MiB file over TCP 127.0.0.1, {} pieces",
            size >> 20,
            size_name(piece)
        ),
        ["ratio to sendfile(2)", "ns/piece", "sender syscalls/piece"],
        Sample::sender_sc_per_unit,
        &rows,
    )
}

/// A throughput table: MB/s, the ratio to the first row, time and system calls per unit (as
/// `syscalls` counts them), and CPU per MiB; `labels` name the ratio, time and syscall columns.
fn throughput_table(
    title: String,
    labels: [&str; 3],
    syscalls: fn(&Sample) -> f64,
    results: &[(&str, &Outcome<Sample>)],
) -> Table {
    let mut t = Table::new(
        title,
        &[
            "mechanism",
            "MB/s (median)",
            "min–max",
            labels[0],
            labels[1],
            labels[2],
            "wall µs/MiB",
            "process CPU µs/MiB",
            "all-CPU busy µs/MiB",
        ],
    );
    let base = results[0].1.median_of(Sample::mbps).unwrap_or(f64::NAN);
    for &(name, o) in results {
        if t.row_outcome(&[name], o) {
            continue;
        }
        let v = o.samples().unwrap_or_default();
        let mb = stats::summarize_by(v, Sample::mbps);
        let [wall, cpu, busy] = cpu_cells(v);
        t.row(vec![
            name.into(),
            num(mb.median),
            stats::range(&mb),
            ratio(mb.median, base),
            num(stats::summarize_by(v, Sample::ns_per_unit).median),
            per(stats::summarize_by(v, syscalls).median),
            wall,
            cpu,
            busy,
        ]);
    }
    t
}

/// The one message size to run, if `KEVENT_BENCH_AIO_MSG` names one.
fn only_msg() -> Option<usize> {
    std::env::var("KEVENT_BENCH_AIO_MSG")
        .ok()
        .and_then(|v| v.parse().ok())
}

/// The kernel's TCP counters, for a look at retransmissions and drops when profiling one size
/// (`KEVENT_BENCH_AIO_MSG`).
fn tcp_counters() -> String {
    let mut out = String::new();
    for f in ["/proc/net/snmp", "/proc/net/netstat"] {
        if let Ok(t) = std::fs::read_to_string(f) {
            for l in t.lines().filter(|l| l.starts_with("Tcp")) {
                out += l;
                out.push('\n');
            }
        }
    }
    out
}

pub fn run(env: &Env) -> String {
    if only_msg().is_some() {
        eprintln!("TCP counters before the runs:\n{}", tcp_counters());
    }
    let full = env.quick;
    let specs = Spec::all(env.quick);
    let file_size: usize = if env.quick { 4 << 20 } else { 8 << 20 };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Network AIO: throughput and CPU per byte\n\n\
         One connection per run carries {} MiB from a sender to a receiver in \
         messages of 4 KiB, 64 KiB or 1 MiB (TCP over 127.0.0.1 with `TCP_NODELAY`; \
         UNIX stream for 64 KiB). Mechanisms: blocking `send()` / \
         `recv(MSG_WAITALL)` in a sender and a receiver thread (placed as below, \
         and again with the receiver on CPU 1: a pair that does not switch \
         context once a message); one thread with \
         epoll (edge triggered) and non-blocking `send()`/`recv()` on both ends; one \
         thread with io_uring `IORING_OP_SEND`/`IORING_OP_RECV` (`MSG_WAITALL`), \
         linked in chains of {depth} per direction, a new chain when the last \
         completed (io_uring orders requests on a socket only within a chain); one \
         thread with kevent AIO send and receive (`KEVENT_REQ_AIO_WAITALL`) \
         requests, {depth} in flight per direction all the time, completions taken \
         with `kevent_get_events()` and the new requests of a wait submitted in one \
         `kevent_ctl()`; and the same on a queue with a ready ring of {ring} slots \
         (\"kevent AIO ring\"): completions popped from the ring without a system \
         call, `kevent_get_events()` only when it is empty. MB/s = 10^6 bytes/s, \
         from the start to the last message received and checked (and the last \
         send completed). Ratio: MB/s over \
         blocking's (medians). Syscalls: both ends', per message, counted. Data \
         checked (every 4 KiB block's index; the rest of each block {}). {} runs \
         each. {}\n\n\
         CPU per byte, per MiB moved: *wall* is elapsed time; *process CPU* is \
         `getrusage(RUSAGE_SELF)` user + system time of the benchmark's threads, \
         which does **not** include the kernel workers (per-CPU system workqueue) \
         that run the AIO transfers, so kevent AIO's process CPU leaves out most of \
         its work; *all-CPU busy* is the non-idle time of all CPUs from \
         `/proc/stat`, workers included, sampled at the tick in 10 ms units \
         (rough: pooled over all runs, a dash if they took less than {busy_ms} ms \
         in all). The other columns are medians of the runs. Under the \
         instruction-count clock of `dev/kevent bench` the guest clock advances with the instructions of every vCPU, so *wall* is the work \
         of all CPUs, workers included: the figure to compare there.\n",
        specs[0].total >> 20,
        if full {
            "compared in full"
        } else {
            "sampled: its first and last 64 bytes"
        },
        env.runs,
        match env.echo_cpus {
            EchoCpus::Same => {
                "All threads bound to CPU 0 (`--echo-cpus same`); the AIO work is \
                 queued on the CPU that took the wake-up, so it runs on CPU 0 too."
            }
            EchoCpus::Split => {
                "The single-thread mechanisms and the senders bound to CPU 0, the \
                 receiver threads to CPU 1 (`--echo-cpus split`)."
            }
            EchoCpus::Any => "Threads not bound to CPUs (`--echo-cpus any`).",
        },
        busy_ms = BUSY_MIN.as_millis(),
        depth = depth(),
        ring = ring_entries(),
    );
    // With `--echo-cpus split` the first blocking row has its receiver on CPU 1 already.
    let mechs: Vec<Mech> = Mech::ALL
        .into_iter()
        .filter(|&m| m != Mech::BlockingSplit || env.echo_cpus != EchoCpus::Split)
        .collect();
    for s in &specs {
        eprintln!("aio: {}", s.name());
        let s = *s;
        let results = env.compare(
            &mechs,
            |m| (m.name(), m.need()),
            |m| run_mech(m, s, env.echo_cpus, full),
            show,
        );
        out += &message_table(s, &results).render();
        out.push('\n');
    }

    let _ = writeln!(
        out,
        "A {} MiB file (unlinked, in `{}`, in the page cache) sent over TCP \
         127.0.0.1 in pieces: `sendfile(2)` in a loop on a blocking socket (zero \
         copy from the page cache) against kevent AIO sendfile requests, {depth} in \
         flight, offsets advancing (the kernel sends the cached pages, zero copy, \
         up to 64 KiB per socket call). The receiver thread takes 64 KiB \
         `recv(MSG_WAITALL)`s and checks the data as above. Timed from the start to \
         the last byte received. Syscalls: the sender's, per piece.\n",
        file_size >> 20,
        std::env::temp_dir().display(),
        depth = depth()
    );
    match make_file(file_size) {
        Err(e) => {
            let _ = writeln!(out, "FAILED: the file: {e}\n");
        }
        Ok(file) => {
            for piece in [64 << 10, 1 << 20] {
                if only_msg().is_some() {
                    break;
                }
                eprintln!("aio: sendfile, {} pieces", size_name(piece));
                let results = env.compare(
                    &FileMech::ALL,
                    |m| (m.name(), m.need()),
                    |m| run_file(m, file.as_fd(), file_size, piece, env.echo_cpus, full),
                    show,
                );
                out += &file_table(piece, file_size, &results).render();
                out.push('\n');
            }
        }
    }
    if only_msg().is_some() {
        out += "TCP counters after the runs:\n";
        out += &tcp_counters();
    }
    out
}
