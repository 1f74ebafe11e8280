// SPDX-License-Identifier: GPL-2.0

//! Userspace bindings for kevent, the Linux generic kernel event queue.
//!
//! kevent gives a process one queue for events from many sources
//! (high-resolution timers, any pollable file, sockets, inodes) and for the
//! completions of network AIO requests, through two system calls:
//! `kevent_ctl()` makes a queue and adds, modifies and removes kevents in
//! batches; `kevent_get_events()` collects ready events. See
//! `Documentation/kevent.rst` in the kernel tree for the semantics of every
//! field, flag and error code.
//!
//! # One method, one system call
//!
//! Every method of [`Queue`] makes exactly one system call: [`Queue::new`]
//! and [`Queue::with_flags`] one `kevent_ctl(KEVENT_CTL_INIT)`,
//! [`Queue::add`], [`Queue::modify`], [`Queue::remove`] and their `_one`
//! forms one `kevent_ctl()`, [`Queue::wait`] and [`Queue::wait_deadline`] one
//! `kevent_get_events()`. Nothing is split, retried or cached behind the
//! caller's back (a batch longer than [`MAX_BATCH`] fails with `E2BIG`, as
//! the kernel says; `EINTR` is returned, not retried). The only exception is
//! a caller bug found before the call: [`Queue::wait`] with `min` larger than
//! the capacity of the [`Events`] buffer returns
//! [`io::ErrorKind::InvalidInput`] without a system call. Benchmarks rely on
//! this to count system calls. Dropping a [`Queue`] is one `close()`.
//! The ready ring is the other exception: [`Queue::with_ring`] makes two
//! (the `kevent_ctl()` and the `mmap()` of the ring), [`Ring::map`] two (a
//! `kevent_ctl()` of no entry that checks the descriptor, and the
//! `mmap()`), [`Ring::pop`] none, and dropping a [`Ring`] is one
//! `munmap()`. Nothing else in this crate makes a system call, except
//! [`monotonic_now`] (`clock_gettime()`, normally served by the vDSO).
//!
//! # Errors
//!
//! Errors are [`std::io::Error`]s carrying the kernel's errno
//! ([`io::Error::raw_os_error`]). A batch call succeeds as a whole if the
//! kernel accepted the batch; each entry then carries its own result, read
//! with [`Request::result`]. The `_one` forms return that entry's result
//! directly.
//!
//! # Example
//!
//! A periodic timer and a pipe in one queue:
//!
//! ```no_run
//! use std::io::Write;
//! use std::os::fd::AsFd;
//! use std::time::Duration;
//!
//! use kevent::{poll, Events, Kind, Queue, Request};
//!
//! fn main() -> std::io::Result<()> {
//!     let queue = Queue::new()?;
//!     let (reader, mut writer) = std::io::pipe()?;
//!
//!     let mut batch = [
//!         Request::timer(1, Duration::from_millis(10), Some(Duration::from_millis(10)))
//!             .user_data(100),
//!         Request::poll(reader.as_fd(), poll::IN | poll::HUP)
//!             .user_data(200)
//!             .edge(),
//!     ];
//!     let added = queue.add(&mut batch)?;
//!     assert_eq!(added, 2);
//!     for req in &batch {
//!         req.result()?;
//!     }
//!
//!     writer.write_all(b"hello")?;
//!     let mut events = Events::with_capacity(16);
//!     let n = queue.wait(&mut events, 1, Some(Duration::from_secs(1)))?;
//!     println!("{n} events");
//!     for ev in &events {
//!         match ev.kind() {
//!             Some(Kind::Timer) => println!("timer {} fired {} times", ev.id(), ev.data()),
//!             Some(Kind::Poll) => println!("fd {} ready: {:#x}", ev.id(), ev.events()),
//!             _ => {}
//!         }
//!     }
//!
//!     queue.remove_one(Kind::Timer, 1)?;
//!     Ok(())
//! }
//! ```
//!
//! # The ready ring
//!
//! A queue made with [`Queue::with_ring`] has a ring of ready events shared
//! with the kernel: [`Ring::pop`] takes one without a system call. The
//! kernel writes there the events of the kevents that need nothing at
//! delivery: timers that are not periodic, inodes, AIO completions, and the
//! edge-triggered ([`Request::edge`]) or oneshot kevents of sockets. Every
//! other event, and any that finds the ring full ([`Ring::overflow`] counts
//! them), takes the ready list as without a ring: collect both. Once the
//! ring is empty, [`Queue::wait`] sleeps until either has an event; it
//! counts those of the ring towards its `min` and returns (with 0 events, if
//! none came from the ready list) as soon as the ring holds one.
//!
//! ```no_run
//! use std::io::Write;
//! use std::os::fd::AsFd;
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//!
//! use kevent::{Events, Queue, QueueFlags, Request, SOCKET_RECV};
//!
//! fn main() -> std::io::Result<()> {
//!     let (queue, ring) = Queue::with_ring(QueueFlags::CLOEXEC, 256)?;
//!     let (a, mut b) = UnixStream::pair()?;
//!     // Edge triggered: its events go to the ring.
//!     queue.add_one(Request::socket(a.as_fd(), SOCKET_RECV).edge().user_data(1))?;
//!     // Oneshot and not periodic: into the ring, and out of the queue.
//!     queue.add_one(Request::timer(2, Duration::from_millis(5), None).oneshot())?;
//!     b.write_all(b"hello")?;
//!
//!     let mut events = Events::with_capacity(64);
//!     let mut seen = 0;
//!     while seen < 2 {
//!         // No system call while the ring has events.
//!         for ev in ring.drain() {
//!             println!("ring: {:?} {} events {:#x}", ev.kind(), ev.id(), ev.events());
//!             seen += 1;
//!         }
//!         // Returns at once if the ring got an event meanwhile.
//!         queue.wait(&mut events, 1, Some(Duration::from_secs(1)))?;
//!         for ev in &events {
//!             println!("ready list: {:?} {}", ev.kind(), ev.id());
//!             seen += 1;
//!         }
//!     }
//!     Ok(())
//! }
//! ```
//!
//! Any number of threads may pop from one [`Ring`] (it is `Send` and
//! `Sync`), each event taken once; [`Ring::map`] maps the ring of a queue
//! received from another process. The ring outlives its [`Queue`]: it is
//! unmapped when dropped.
//!
//! # Network AIO
//!
//! [`Request::aio_send`], [`Request::aio_recv`] and [`Request::aio_sendfile`]
//! build asynchronous socket requests, submitted like any other entry with
//! [`Queue::add`] or [`Queue::add_one`]. A request is named by its socket's
//! descriptor and its `user_data` (many may be in flight on one socket, in
//! submission order per direction), is always oneshot, and completes with
//! exactly one event: [`Event::result`] is the number of bytes transferred,
//! or the error (`ECANCELED` if it was cancelled with [`Queue::remove_aio`]
//! or its socket descriptor was closed before it completed). Sends (or
//! receives) on one stream socket that follow each other in one batch are
//! moved together by the kernel: when nothing waits on the socket, up to 8
//! (128 KiB in all) in one socket call, in order, and small sends leave in
//! full segments; each still completes with its own event.
//!
//! ```no_run
//! use std::os::fd::AsFd;
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//!
//! use kevent::{Events, Queue, Request};
//!
//! fn main() -> std::io::Result<()> {
//!     let queue = Queue::new()?;
//!     let (a, b) = UnixStream::pair()?;
//!     let out = b"hello".to_vec();
//!     let mut input = vec![0u8; 5];
//!     // SAFETY: neither buffer is touched, moved out of or dropped while the
//!     // kernel may use it: until every submitted request's event has been
//!     // collected below; on an early return they are leaked.
//!     let mut batch = unsafe {
//!         [
//!             Request::aio_recv(b.as_fd(), &mut input, true, 1),
//!             Request::aio_send(a.as_fd(), &out, 2),
//!         ]
//!     };
//!     // Each entry that took effect completes with exactly one event.
//!     let mut pending = queue.add(&mut batch)?;
//!     let mut events = Events::with_capacity(2);
//!     while pending > 0 {
//!         let n = queue.wait(&mut events, 1, Some(Duration::from_secs(5)));
//!         if !matches!(n, Ok(1..)) {
//!             // Still lent to the kernel: never give the memory back.
//!             std::mem::forget((out, input));
//!             return Err(n.err().unwrap_or(std::io::ErrorKind::TimedOut.into()));
//!         }
//!         for ev in &events {
//!             println!("request {}: {:?}", ev.user_data(), ev.result());
//!             pending -= 1;
//!         }
//!     }
//!     assert_eq!(&input, b"hello");
//!     Ok(())
//! }
//! ```
//!
//! ## Safe AIO: [`AioQueue`]
//!
//! [`AioQueue`] takes the buffers by value and keeps them while the kernel
//! may use them: [`AioQueue::send`] and [`AioQueue::recv`] are safe, and
//! [`AioQueue::take`] gives a buffer back once [`AioQueue::wait`] collected
//! its request's event (or [`AioQueue::cancel`] stopped it). It costs a map
//! update per request; the `unsafe` constructors below cost nothing.
//!
//! ## Why [`Request::aio_send`] and [`Request::aio_recv`] are `unsafe`
//!
//! The kernel reads (send) or writes (receive) the caller's buffer after
//! [`Queue::add`] has returned, until the request ends (its event is
//! collected, or a `REMOVE` or the close of its socket cancels it), so the
//! buffer must outlive the request in the kernel. The borrow checker cannot
//! see that end: a guard that held the borrow until completion would end it
//! early if leaked (`mem::forget` is safe), the completion may be collected
//! by another thread or process sharing the queue, or never (a queue lives
//! while any descriptor of it is open), and nothing tells a delivered
//! [`Event`] from one built with [`Event::from_raw`]. A safe API has to take
//! ownership of the buffers and keep them in the queue, which [`Queue`] does
//! not do (one method, one system call, no state): [`AioQueue`] does. So
//! [`Request::aio_send`] and [`Request::aio_recv`] are `unsafe fn`s whose
//! contract is that the memory stays lent until the request ends; the rest
//! of the public API stays safe:
//!
//! - [`Request::aio_sendfile`] involves no user memory and is safe;
//! - [`Request::from_raw`] clears the arguments of an AIO entry that would
//!   name memory (any but sendfile), so that the kernel refuses it with
//!   `EINVAL`: hand-built send and receive entries need
//!   [`Request::from_raw_unchecked`], which is `unsafe` with the same
//!   contract.
//!
//! # The raw ABI
//!
//! [`sys`] mirrors `include/uapi/linux/kevent.h` ([`sys::Ukevent`], the
//! ring's structures and every `KEVENT_*` constant) and has the raw system
//! calls, for callers that build entries by hand. [`Request::from_raw`] and
//! [`Request::raw`] convert.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod ring;
pub mod sys;

pub use ring::{Ring, RingDrain};

use std::fmt;
use std::io;
use std::ops::{BitOr, BitOrAssign};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::ptr;
use std::time::Duration;

use sys::Ukevent;

/// The largest batch one [`Queue::add`], [`Queue::modify`] or
/// [`Queue::remove`] call accepts (`KEVENT_CTL_MAX_BATCH`); a longer one
/// fails with `E2BIG`.
pub const MAX_BATCH: usize = sys::KEVENT_CTL_MAX_BATCH as usize;

/// The largest timer expiry or period the ABI accepts, in nanoseconds:
/// 2^62 - 1 (about 146 years). Longer [`Duration`]s given to
/// [`Request::timer`] and [`Request::timer_at`] are saturated to it.
pub const MAX_TIMER_NS: u64 = (1 << 62) - 1;

/// Timer event: the timer expired (`KEVENT_TIMER_FIRED`).
pub const TIMER_FIRED: u32 = sys::KEVENT_TIMER_FIRED;
/// Socket event: data or EOF readable (`KEVENT_SOCKET_RECV`).
pub const SOCKET_RECV: u32 = sys::KEVENT_SOCKET_RECV;
/// Socket event: write space (`KEVENT_SOCKET_SEND`).
pub const SOCKET_SEND: u32 = sys::KEVENT_SOCKET_SEND;
/// Socket event: a connection is waiting (`KEVENT_SOCKET_ACCEPT`).
pub const SOCKET_ACCEPT: u32 = sys::KEVENT_SOCKET_ACCEPT;
/// Socket event: an outgoing connect finished (`KEVENT_SOCKET_CONNECT`).
pub const SOCKET_CONNECT: u32 = sys::KEVENT_SOCKET_CONNECT;
/// Socket event: peer closed or shut down (`KEVENT_SOCKET_HUP`).
pub const SOCKET_HUP: u32 = sys::KEVENT_SOCKET_HUP;
/// Socket event: socket error, `-errno` in the data (`KEVENT_SOCKET_ERR`).
pub const SOCKET_ERR: u32 = sys::KEVENT_SOCKET_ERR;
/// Inode event: an entry was created (`KEVENT_INODE_CREATE`).
pub const INODE_CREATE: u32 = sys::KEVENT_INODE_CREATE;
/// Inode event: an entry was removed (`KEVENT_INODE_REMOVE`).
pub const INODE_REMOVE: u32 = sys::KEVENT_INODE_REMOVE;
/// AIO event: a send completed (`KEVENT_AIO_SEND`).
pub const AIO_SEND: u32 = sys::KEVENT_AIO_SEND;
/// AIO event: a receive completed (`KEVENT_AIO_RECV`).
pub const AIO_RECV: u32 = sys::KEVENT_AIO_RECV;
/// AIO event: a sendfile completed (`KEVENT_AIO_SENDFILE`).
pub const AIO_SENDFILE: u32 = sys::KEVENT_AIO_SENDFILE;

/// The largest length (or sendfile count) of one AIO request, 0x7fff_f000
/// bytes (the kernel's `MAX_RW_COUNT`); a longer one fails with `EINVAL`,
/// as does a length of 0.
pub const AIO_MAX_LEN: usize = 0x7fff_f000;

/// The events of poll kevents: the `EPOLL*` bits of `<linux/eventpoll.h>`.
///
/// Only these bits are accepted; edge triggering and oneshot are request
/// flags ([`Request::edge`], [`Request::oneshot`]), not `EPOLLET` and
/// `EPOLLONESHOT`. Unlike epoll, [`ERR`](poll::ERR) and [`HUP`](poll::HUP)
/// are not implied: a kevent reports only the bits it asked for.
pub mod poll {
    /// Readable (`EPOLLIN`).
    pub const IN: u32 = 0x0001;
    /// Urgent data readable (`EPOLLPRI`).
    pub const PRI: u32 = 0x0002;
    /// Writable (`EPOLLOUT`).
    pub const OUT: u32 = 0x0004;
    /// Error condition (`EPOLLERR`).
    pub const ERR: u32 = 0x0008;
    /// Hang-up (`EPOLLHUP`).
    pub const HUP: u32 = 0x0010;
    /// Normal data readable (`EPOLLRDNORM`).
    pub const RDNORM: u32 = 0x0040;
    /// Priority band data readable (`EPOLLRDBAND`).
    pub const RDBAND: u32 = 0x0080;
    /// Normal data writable (`EPOLLWRNORM`).
    pub const WRNORM: u32 = 0x0100;
    /// Priority band data writable (`EPOLLWRBAND`).
    pub const WRBAND: u32 = 0x0200;
    /// Message available (`EPOLLMSG`).
    pub const MSG: u32 = 0x0400;
    /// Peer closed its writing half (`EPOLLRDHUP`).
    pub const RDHUP: u32 = 0x2000;
}

/// The type of an event source (`KEVENT_TYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Kind {
    /// A high-resolution timer (`KEVENT_TYPE_TIMER`); the id is any number.
    Timer = sys::KEVENT_TYPE_TIMER,
    /// `->poll` readiness of a file (`KEVENT_TYPE_POLL`); the id is the fd.
    Poll = sys::KEVENT_TYPE_POLL,
    /// A socket (`KEVENT_TYPE_SOCKET`); the id is the fd.
    Socket = sys::KEVENT_TYPE_SOCKET,
    /// An inode (`KEVENT_TYPE_INODE`); the id is the fd it was registered
    /// with.
    Inode = sys::KEVENT_TYPE_INODE,
    /// A network AIO request (`KEVENT_TYPE_AIO`); the id is the socket's fd,
    /// and the id with the `user_data` names the request.
    Aio = sys::KEVENT_TYPE_AIO,
}

impl Kind {
    /// The `KEVENT_TYPE_*` value.
    pub fn raw(self) -> u32 {
        self as u32
    }

    /// The kind with `KEVENT_TYPE_*` value `raw`, or `None` for an unknown
    /// value.
    pub fn from_raw(raw: u32) -> Option<Kind> {
        match raw {
            sys::KEVENT_TYPE_TIMER => Some(Kind::Timer),
            sys::KEVENT_TYPE_POLL => Some(Kind::Poll),
            sys::KEVENT_TYPE_SOCKET => Some(Kind::Socket),
            sys::KEVENT_TYPE_INODE => Some(Kind::Inode),
            sys::KEVENT_TYPE_AIO => Some(Kind::Aio),
            _ => None,
        }
    }
}

/// Flags of a new queue ([`Queue::with_flags`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct QueueFlags(u32);

impl QueueFlags {
    /// The descriptor is close-on-exec (`KEVENT_CLOEXEC`).
    pub const CLOEXEC: QueueFlags = QueueFlags(sys::KEVENT_CLOEXEC);
    /// The file is `O_NONBLOCK`: [`Queue::wait`] never sleeps
    /// (`KEVENT_NONBLOCK`).
    pub const NONBLOCK: QueueFlags = QueueFlags(sys::KEVENT_NONBLOCK);

    /// No flags.
    pub const fn empty() -> QueueFlags {
        QueueFlags(0)
    }

    /// The `KEVENT_*` bits, as passed to `KEVENT_CTL_INIT`.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: QueueFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for QueueFlags {
    type Output = QueueFlags;

    fn bitor(self, rhs: QueueFlags) -> QueueFlags {
        QueueFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for QueueFlags {
    fn bitor_assign(&mut self, rhs: QueueFlags) {
        self.0 |= rhs.0;
    }
}

/// Converts a return value of one of the raw system calls.
fn check(ret: i64) -> io::Result<i64> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The error of a `ret_data` that holds `-errno`.
fn errno_error(ret_data: i64) -> io::Error {
    match ret_data.checked_neg().map(i32::try_from) {
        Some(Ok(errno)) if errno > 0 => io::Error::from_raw_os_error(errno),
        _ => io::Error::other(format!("kevent: invalid error code {ret_data} in ret_data")),
    }
}

/// Whether the kernel would read or write user memory for `uk`: an AIO entry
/// other than sendfile (send, receive, or bits the crate does not know).
fn lends_memory(uk: &Ukevent) -> bool {
    uk.type_ == sys::KEVENT_TYPE_AIO && uk.event != sys::KEVENT_AIO_SENDFILE
}

/// Saturates `d` to the nanoseconds the timer ABI accepts.
fn timer_ns(d: Duration) -> u64 {
    d.as_nanos().min(u128::from(MAX_TIMER_NS)) as u64
}

/// `d` as a `struct __kernel_timespec`; seconds beyond `i64::MAX` saturate.
fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// The current `CLOCK_MONOTONIC` time, the clock of [`Request::timer_at`]
/// and [`Queue::wait_deadline`].
///
/// One `clock_gettime()` call (normally served by the vDSO, without
/// entering the kernel).
pub fn monotonic_now() -> io::Result<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the
    // call.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // CLOCK_MONOTONIC is never negative and tv_nsec is below 10^9.
    Ok(Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    ))
}

/// A kevent queue: an owned kevent file descriptor.
///
/// Every method makes exactly one system call (see the [crate
/// documentation](crate)). A queue may be shared between threads: the
/// kernel serialises the calls.
#[derive(Debug)]
pub struct Queue {
    fd: OwnedFd,
}

impl Queue {
    /// Makes a new queue, close-on-exec (`KEVENT_CTL_INIT` with
    /// `KEVENT_CLOEXEC`).
    pub fn new() -> io::Result<Queue> {
        Queue::with_flags(QueueFlags::CLOEXEC)
    }

    /// Makes a new queue with `flags` (`KEVENT_CTL_INIT`). Without
    /// [`QueueFlags::CLOEXEC`] the descriptor is inherited across `execve()`.
    pub fn with_flags(flags: QueueFlags) -> io::Result<Queue> {
        // SAFETY: KEVENT_CTL_INIT with a null buffer reads and writes no
        // memory.
        let ret =
            unsafe { sys::kevent_ctl(-1, sys::KEVENT_CTL_INIT, flags.bits(), ptr::null_mut()) };
        Queue::from_init(ret)
    }

    /// The queue of the return value `ret` of a `KEVENT_CTL_INIT`.
    fn from_init(ret: i64) -> io::Result<Queue> {
        let fd = check(ret)?;
        let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        // SAFETY: on success KEVENT_CTL_INIT returns a new file descriptor
        // that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Queue { fd })
    }

    /// One `kevent_ctl(cmd)` call on `batch`.
    fn ctl(&self, cmd: u32, batch: &mut [Request]) -> io::Result<usize> {
        // The kernel ignores these on input; clearing them makes
        // Request::result() say "not submitted" if the call fails as a whole.
        for req in batch.iter_mut() {
            req.0.ret_flags = 0;
            req.0.ret_data = 0;
        }
        // A batch longer than u32::MAX is passed as u32::MAX entries, which
        // the kernel refuses with E2BIG like any batch above the maximum.
        let num = u32::try_from(batch.len()).unwrap_or(u32::MAX);
        let buf = if batch.is_empty() {
            ptr::null_mut()
        } else {
            batch.as_mut_ptr().cast::<Ukevent>()
        };
        // SAFETY: `Request` is `repr(transparent)` over `Ukevent`, so `buf`
        // points to `batch.len() >= num` entries, valid for reads and writes
        // while `batch` is borrowed mutably, for the whole call.
        let ret = unsafe { sys::kevent_ctl(self.fd.as_raw_fd(), cmd, num, buf) };
        Ok(check(ret)? as usize)
    }

    /// Registers the kevents of `batch` (one `kevent_ctl(KEVENT_CTL_ADD)`).
    ///
    /// Returns the number of entries that took effect; each entry's own
    /// result is in it afterwards ([`Request::result`]): a failing entry
    /// (`EEXIST`, `EINVAL`, `EBADF`, ...) does not stop the ones after it. An
    /// error means the kernel refused the whole batch and nothing took
    /// effect: `E2BIG` if `batch` is longer than [`MAX_BATCH`] (it is never
    /// split), `EINVAL` if this is not a kevent queue.
    pub fn add(&self, batch: &mut [Request]) -> io::Result<usize> {
        self.ctl(sys::KEVENT_CTL_ADD, batch)
    }

    /// Replaces the request of the kevents named by the `(kind, id)` of each
    /// entry of `batch` and re-arms them (one
    /// `kevent_ctl(KEVENT_CTL_MODIFY)`). Results as for [`Queue::add`]; an
    /// entry naming no kevent fails with `ENOENT`.
    pub fn modify(&self, batch: &mut [Request]) -> io::Result<usize> {
        self.ctl(sys::KEVENT_CTL_MODIFY, batch)
    }

    /// Removes the kevents named by the `(kind, id)` of each entry of `batch`
    /// (one `kevent_ctl(KEVENT_CTL_REMOVE)`; see [`Request::key`]). Results
    /// as for [`Queue::add`]; an entry naming no kevent fails with `ENOENT`.
    pub fn remove(&self, batch: &mut [Request]) -> io::Result<usize> {
        self.ctl(sys::KEVENT_CTL_REMOVE, batch)
    }

    /// One `kevent_ctl(cmd)` call on one entry, returning its result.
    fn ctl_one(&self, cmd: u32, req: Request) -> io::Result<()> {
        let mut batch = [req];
        self.ctl(cmd, &mut batch)?;
        batch[0].result()
    }

    /// Registers one kevent (one `kevent_ctl(KEVENT_CTL_ADD)`). The error is
    /// the call's or, if the call succeeded, the entry's own (`EEXIST`, ...).
    pub fn add_one(&self, req: Request) -> io::Result<()> {
        self.ctl_one(sys::KEVENT_CTL_ADD, req)
    }

    /// Modifies one kevent (one `kevent_ctl(KEVENT_CTL_MODIFY)`). The error is
    /// the call's or the entry's own (`ENOENT`, ...).
    pub fn modify_one(&self, req: Request) -> io::Result<()> {
        self.ctl_one(sys::KEVENT_CTL_MODIFY, req)
    }

    /// Removes the kevent `(kind, id)` (one `kevent_ctl(KEVENT_CTL_REMOVE)`).
    /// The error is the call's or the entry's own (`ENOENT` if there is no
    /// such kevent). For an AIO request, which is also named by its
    /// `user_data`, use [`Queue::remove_aio`].
    pub fn remove_one(&self, kind: Kind, id: u64) -> io::Result<()> {
        self.ctl_one(sys::KEVENT_CTL_REMOVE, Request::key(kind, id))
    }

    /// Cancels the AIO request `(id, user_data)`, `id` being its socket's
    /// descriptor (one `kevent_ctl(KEVENT_CTL_REMOVE)`; see
    /// [`Request::aio_key`]).
    ///
    /// A request that has not completed is cancelled: its event is still
    /// delivered, once, broken with `ECANCELED`. A request that already
    /// completed keeps its completion. Either way, once this returns `Ok` the
    /// kernel no longer uses the request's buffer. The error is the call's or
    /// the entry's own (`ENOENT` if there is no such request: its event was
    /// collected, or it was cancelled already).
    pub fn remove_aio(&self, id: u64, user_data: u64) -> io::Result<()> {
        self.ctl_one(sys::KEVENT_CTL_REMOVE, Request::aio_key(id, user_data))
    }

    /// One `kevent_get_events()` call into `events`.
    fn get_events(
        &self,
        events: &mut Events,
        min: usize,
        timeout: Option<Duration>,
        flags: u32,
    ) -> io::Result<usize> {
        if min > events.cap {
            // A caller bug: fail before any system call.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "kevent: wait for more events than the buffer holds",
            ));
        }
        events.reserve()?;
        let ts = timeout.map(timespec);
        let ts_ptr = ts
            .as_ref()
            .map_or(ptr::null(), |ts| ts as *const libc::timespec);
        let spare = events.buf.spare_capacity_mut();
        // `cap` <= u32::MAX (see Events::with_capacity) and, after
        // reserve(), <= spare.len().
        let max = events.cap.min(spare.len());
        let buf = spare.as_mut_ptr().cast::<Ukevent>();
        // SAFETY: `ts_ptr` is null or points to `ts`, alive until the call
        // returns; `buf` points to the spare capacity of `events.buf`, at
        // least `max` entries, valid for writes while `events` is borrowed
        // mutably. `min <= cap` and `max <= u32::MAX` make the casts exact.
        let ret = unsafe {
            sys::kevent_get_events(
                self.fd.as_raw_fd(),
                min as u32,
                max as u32,
                ts_ptr,
                buf,
                flags,
            )
        };
        let n = (check(ret)? as usize).min(max);
        // SAFETY: the kernel wrote `n` complete entries (its return value,
        // never more than `max`) to the start of the spare capacity; every
        // bit pattern is a valid `Ukevent`.
        unsafe { events.buf.set_len(n) };
        Ok(n)
    }

    /// Waits for ready events and copies up to `events.capacity()` of them
    /// into `events` (one `kevent_get_events()` call), replacing its
    /// contents; returns how many.
    ///
    /// Waits until at least `min` events are ready, `timeout` passes
    /// (relative, on `CLOCK_MONOTONIC`; `None` waits without a limit, a zero
    /// timeout does not sleep) or a signal arrives (`EINTR`, not retried).
    /// The result may be below `min` (timeout, a non-blocking queue, events
    /// found stale at delivery). On a queue with a ring
    /// ([`Queue::with_ring`]) the events in the ring count towards `min`,
    /// and the call returns as soon as the ring holds one, with the events
    /// of the ready list only (0 if none): pop the ring's with [`Ring::pop`].
    /// `min` larger than `events.capacity()` is a caller bug:
    /// [`io::ErrorKind::InvalidInput`], without a system call. Timeouts too
    /// long for the ABI saturate (in effect, no limit).
    pub fn wait(
        &self,
        events: &mut Events,
        min: usize,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        self.get_events(events, min, timeout, 0)
    }

    /// Like [`Queue::wait`], with an absolute `CLOCK_MONOTONIC` deadline
    /// (`KEVENT_WAIT_ABSTIME`; see [`monotonic_now`]). A deadline already
    /// past does not sleep.
    pub fn wait_deadline(
        &self,
        events: &mut Events,
        min: usize,
        deadline: Duration,
    ) -> io::Result<usize> {
        self.get_events(events, min, Some(deadline), sys::KEVENT_WAIT_ABSTIME)
    }
}

impl AsFd for Queue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Queue {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl IntoRawFd for Queue {
    fn into_raw_fd(self) -> RawFd {
        self.fd.into_raw_fd()
    }
}

impl From<OwnedFd> for Queue {
    /// Wraps a descriptor of a kevent queue (for example one passed with
    /// `SCM_RIGHTS` or inherited). A descriptor that is not a kevent queue is
    /// not detected here: every call on the result fails with `EINVAL`.
    fn from(fd: OwnedFd) -> Queue {
        Queue { fd }
    }
}

impl From<Queue> for OwnedFd {
    /// The queue's descriptor.
    fn from(queue: Queue) -> OwnedFd {
        queue.fd
    }
}

/// One entry of a [`Queue::add`], [`Queue::modify`] or [`Queue::remove`]
/// batch: a [`sys::Ukevent`] built for a kind of source, and afterwards its
/// result.
///
/// Built with a constructor and chained modifiers:
///
/// ```
/// use std::time::Duration;
/// use kevent::Request;
///
/// let req = Request::timer(7, Duration::from_millis(5), None)
///     .user_data(0xabc)
///     .oneshot();
/// assert_eq!(req.raw().id, 7);
/// ```
#[repr(transparent)]
#[derive(Clone, Copy, Debug)]
pub struct Request(Ukevent);

impl Request {
    fn new(kind: Kind, id: u64, event: u32) -> Request {
        Request(Ukevent {
            id,
            type_: kind.raw(),
            event,
            ..Ukevent::default()
        })
    }

    /// A timer `id` (any number) that fires `first` from now and then every
    /// `period` (`None`, or a zero period, fires once). Each delivery
    /// reports [`TIMER_FIRED`] with the number of expirations since the
    /// previous one.
    ///
    /// Durations above [`MAX_TIMER_NS`] (2^62 - 1 ns, about 146 years) are
    /// saturated to it.
    pub fn timer(id: u64, first: Duration, period: Option<Duration>) -> Request {
        let mut req = Request::new(Kind::Timer, id, TIMER_FIRED);
        req.0.arg = [timer_ns(first), period.map_or(0, timer_ns)];
        req
    }

    /// A timer `id` that fires at `deadline`, an absolute `CLOCK_MONOTONIC`
    /// time (`KEVENT_REQ_ABSTIME`; see [`monotonic_now`]); a time already
    /// past fires at once. `period` and saturation as in [`Request::timer`].
    pub fn timer_at(id: u64, deadline: Duration, period: Option<Duration>) -> Request {
        let mut req = Request::timer(id, deadline, period);
        req.0.req_flags |= sys::KEVENT_REQ_ABSTIME;
        req
    }

    /// Watches the `->poll` readiness of `fd` for `events`, [`poll`] bits.
    ///
    /// The request records the descriptor's number only. The registration
    /// follows the descriptor: it is removed when the descriptor is closed.
    pub fn poll(fd: BorrowedFd<'_>, events: u32) -> Request {
        Request::new(Kind::Poll, fd.as_raw_fd() as u64, events)
    }

    /// Watches the socket `fd` for `events`, `SOCKET_*` bits (no kernel
    /// source yet: the entry fails with `EINVAL`).
    pub fn socket(fd: BorrowedFd<'_>, events: u32) -> Request {
        Request::new(Kind::Socket, fd.as_raw_fd() as u64, events)
    }

    /// Watches the inode of `fd` for `events`, `INODE_*` bits (no kernel
    /// source yet: the entry fails with `EINVAL`).
    pub fn inode(fd: BorrowedFd<'_>, events: u32) -> Request {
        Request::new(Kind::Inode, fd.as_raw_fd() as u64, events)
    }

    /// Names the kevent `(kind, id)`, for [`Queue::remove`] (for a poll
    /// kevent, `id` is the descriptor's number). An AIO request is named by
    /// its `user_data` too: see [`Request::aio_key`].
    pub fn key(kind: Kind, id: u64) -> Request {
        Request::new(kind, id, 0)
    }

    /// An AIO request on socket `sock`, with the cookie `user_data`.
    fn aio(sock: BorrowedFd<'_>, event: u32, user_data: u64) -> Request {
        Request::new(Kind::Aio, sock.as_raw_fd() as u64, event).user_data(user_data)
    }

    /// Sends all of `buf` on the socket `sock`, asynchronously
    /// (`KEVENT_AIO_SEND`).
    ///
    /// `user_data` names the request among those of `sock` in the queue (a
    /// second request with the same one fails with `EEXIST` while the first
    /// is in the queue) and comes back in its event. The event reports
    /// [`AIO_SEND`] with `buf.len()` as [`Event::result`], or the error
    /// (`EPIPE`, `ECONNRESET`, ...). `buf` must hold 1 to [`AIO_MAX_LEN`]
    /// bytes, else the entry fails with `EINVAL`. The request records the
    /// descriptor's number and the buffer's address and length.
    ///
    /// # Safety
    ///
    /// The kernel pins `buf` when the request is submitted and reads it in
    /// [`Queue::add`] and after it has returned, until the request ends. For
    /// each submission of the returned request (or of a copy of it) that
    /// succeeds, the memory of `buf` must stay allocated (not freed for
    /// reuse) and must not be written until the request has ended, which is
    /// the first of:
    ///
    /// - its event has been collected from the queue, by any thread or
    ///   process;
    /// - a [`Queue::remove_aio`] (or [`Queue::remove`]) of it returned `Ok`:
    ///   the kernel stops using the buffer before that `REMOVE` returns,
    ///   whether it cancelled the request or found it completed;
    /// - the descriptor `sock` was closed (or replaced with `dup2()`) in the
    ///   submitting process: the close cancels the request before it
    ///   returns;
    /// - the queue was released: every descriptor of it, in every process,
    ///   closed.
    ///
    /// Typically: a heap buffer that is neither dropped nor modified until
    /// then, and leaked if the request might never end.
    ///
    /// Breaking this makes the kernel send memory that was freed and reused,
    /// or read memory while it is written, a data race.
    pub unsafe fn aio_send(sock: BorrowedFd<'_>, buf: &[u8], user_data: u64) -> Request {
        let mut req = Request::aio(sock, sys::KEVENT_AIO_SEND, user_data);
        // The address is exposed to the kernel: the compiler must assume
        // that any later opaque call may access the buffer.
        req.0.arg = [buf.as_ptr() as usize as u64, buf.len() as u64];
        req
    }

    /// Receives into `buf` from the socket `sock`, asynchronously
    /// (`KEVENT_AIO_RECV`).
    ///
    /// The event reports [`AIO_RECV`] with the bytes received as
    /// [`Event::result`]: more than 0 as soon as data arrived (at most 128
    /// KiB on a stream socket) or, if `waitall` (`KEVENT_REQ_AIO_WAITALL`),
    /// `buf.len()` unless end of file came first; 0 at end of file; or the
    /// error. `user_data` and the length as in [`Request::aio_send`].
    ///
    /// # Safety
    ///
    /// The kernel pins `buf` when the request is submitted and writes it in
    /// [`Queue::add`] and after it has returned, until the request ends (as
    /// defined for [`Request::aio_send`]: its event collected, a `REMOVE` of
    /// it or the close of `sock` returned, or the queue released). For each submission of the returned request (or of
    /// a copy of it) that succeeds, the memory of `buf` must stay allocated
    /// (not freed for reuse) and must not be read or written by any means
    /// until then; no reference to it may be live meanwhile.
    ///
    /// Breaking this makes the kernel write memory that was freed and
    /// reused, or memory that Rust code reads or writes at the same time.
    pub unsafe fn aio_recv(
        sock: BorrowedFd<'_>,
        buf: &mut [u8],
        waitall: bool,
        user_data: u64,
    ) -> Request {
        let mut req = Request::aio(sock, sys::KEVENT_AIO_RECV, user_data);
        req.0.arg = [buf.as_mut_ptr() as usize as u64, buf.len() as u64];
        if waitall {
            req.0.req_flags |= sys::KEVENT_REQ_AIO_WAITALL;
        }
        req
    }

    /// Sends `count` bytes of the regular file `file` from `offset` on the
    /// socket `sock`, asynchronously (`KEVENT_AIO_SENDFILE`). The file
    /// position is neither used nor changed.
    ///
    /// The event reports [`AIO_SENDFILE`] with the bytes sent as
    /// [`Event::result`]: `count`, fewer if the file ends first, 0 if
    /// `offset` is at or past its end; or the error. `count` must be 1 to
    /// [`AIO_MAX_LEN`], else the entry fails with `EINVAL`; `user_data` as in
    /// [`Request::aio_send`]. No user memory is involved, so this is safe.
    pub fn aio_sendfile(
        sock: BorrowedFd<'_>,
        file: BorrowedFd<'_>,
        offset: u64,
        count: usize,
        user_data: u64,
    ) -> Request {
        let mut req = Request::aio(sock, sys::KEVENT_AIO_SENDFILE, user_data);
        req.0.arg = [offset, count as u64];
        req.0.arg_fd = file.as_raw_fd() as u32;
        req
    }

    /// Names the AIO request `(id, user_data)`, `id` being its socket's
    /// descriptor, for [`Queue::remove`] (see [`Queue::remove_aio`]).
    pub fn aio_key(id: u64, user_data: u64) -> Request {
        Request::key(Kind::Aio, id).user_data(user_data)
    }

    /// Sets the cookie returned with every event of this kevent.
    #[must_use]
    pub fn user_data(mut self, v: u64) -> Request {
        self.0.user_data = v;
        self
    }

    /// Makes the kevent edge triggered (`KEVENT_REQ_ET`): reported once per
    /// new activity.
    #[must_use]
    pub fn edge(mut self) -> Request {
        self.0.req_flags |= sys::KEVENT_REQ_ET;
        self
    }

    /// Makes the kevent oneshot (`KEVENT_REQ_ONESHOT`): removed after its
    /// first delivery.
    #[must_use]
    pub fn oneshot(mut self) -> Request {
        self.0.req_flags |= sys::KEVENT_REQ_ONESHOT;
        self
    }

    /// Makes readiness of the kevent wake every waiter, not just one
    /// (`KEVENT_REQ_WAKEUP_ALL`).
    #[must_use]
    pub fn wakeup_all(mut self) -> Request {
        self.0.req_flags |= sys::KEVENT_REQ_WAKEUP_ALL;
        self
    }

    /// The entry's result after a [`Queue::add`], [`Queue::modify`] or
    /// [`Queue::remove`] call: `Ok` if it took effect (`KEVENT_RET_DONE`),
    /// the entry's errno if it failed (`KEVENT_RET_BROKEN`), or an
    /// [`io::ErrorKind::Other`] error if it has no result (not submitted, or
    /// the call failed as a whole).
    pub fn result(&self) -> io::Result<()> {
        if self.0.ret_flags & sys::KEVENT_RET_BROKEN != 0 {
            Err(errno_error(self.0.ret_data))
        } else if self.0.ret_flags & sys::KEVENT_RET_DONE != 0 {
            Ok(())
        } else {
            Err(io::Error::other("kevent: entry not submitted"))
        }
    }

    /// The raw entry.
    pub fn raw(&self) -> &Ukevent {
        &self.0
    }

    /// An entry built by hand, used as it is, except for an AIO entry that
    /// would name user memory (`type_` is `KEVENT_TYPE_AIO` and `event` is
    /// not `KEVENT_AIO_SENDFILE`): its `arg` (address and length) is
    /// cleared, so that the kernel refuses it with `EINVAL` and no safe code
    /// lends memory to the kernel. Use [`Request::from_raw_unchecked`] for
    /// those.
    pub fn from_raw(raw: Ukevent) -> Request {
        let mut req = Request(raw);
        if lends_memory(&raw) {
            req.0.arg = [0, 0];
        }
        req
    }

    /// An entry built by hand, used as it is, AIO send and receive entries
    /// included.
    ///
    /// # Safety
    ///
    /// If `raw` is an AIO entry that names memory (`type_` is
    /// `KEVENT_TYPE_AIO` and `event` is not `KEVENT_AIO_SENDFILE`), the
    /// `arg[1]` bytes at address `arg[0]` are lent to the kernel as in
    /// [`Request::aio_send`] (for `KEVENT_AIO_SEND`) or [`Request::aio_recv`]
    /// (for anything else), whose contracts apply.
    pub unsafe fn from_raw_unchecked(raw: Ukevent) -> Request {
        Request(raw)
    }
}

/// A buffer of events for [`Queue::wait`], reusable across calls.
#[derive(Clone, Debug)]
pub struct Events {
    buf: Vec<Ukevent>,
    cap: usize,
}

impl Events {
    /// A buffer for up to `n` events per wait. `n` is clamped to
    /// `1..=u32::MAX` (the ABI's `max_nr` is 32 bits and at least 1).
    ///
    /// The memory is allocated here; if that fails (an absurd `n`), the
    /// buffer stays empty and the allocation is tried again by each wait,
    /// which fails with [`io::ErrorKind::OutOfMemory`] (before its system
    /// call) until it succeeds.
    pub fn with_capacity(n: usize) -> Events {
        let cap = n.clamp(1, u32::MAX as usize);
        let mut buf = Vec::new();
        // Failure is reported by the next wait (see Events::reserve).
        let _ = buf.try_reserve_exact(cap);
        Events { buf, cap }
    }

    /// Makes sure `buf` can hold `cap` entries.
    fn reserve(&mut self) -> io::Result<()> {
        self.buf.clear();
        self.buf
            .try_reserve_exact(self.cap)
            .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))
    }

    /// The most events one wait returns.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The number of events the last wait returned.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the last wait returned no events.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Forgets the events.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The events of the last wait, in delivery order.
    pub fn as_slice(&self) -> &[Event] {
        // SAFETY: `Event` is `repr(transparent)` over `Ukevent`, so the
        // initialised part of `buf` is a valid slice of `Event`s for as long
        // as `self` is borrowed.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast::<Event>(), self.buf.len()) }
    }

    /// Iterates over the events of the last wait, in delivery order.
    pub fn iter(&self) -> std::slice::Iter<'_, Event> {
        self.as_slice().iter()
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Event;
    type IntoIter = std::slice::Iter<'a, Event>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// One delivered event.
#[repr(transparent)]
#[derive(Clone, Copy, Debug)]
pub struct Event(Ukevent);

impl Event {
    /// The cookie set with [`Request::user_data`].
    pub fn user_data(&self) -> u64 {
        self.0.user_data
    }

    /// The kevent's id: the timer id or the file descriptor.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The kevent's kind, `None` for a type this crate does not know.
    pub fn kind(&self) -> Option<Kind> {
        Kind::from_raw(self.0.type_)
    }

    /// The events reported: for a poll kevent the requested bits ready at
    /// delivery, for a timer [`TIMER_FIRED`], for an AIO request its
    /// operation ([`AIO_SEND`], [`AIO_RECV`] or [`AIO_SENDFILE`]).
    pub fn events(&self) -> u32 {
        self.0.event
    }

    /// The kevent's request flags (`KEVENT_REQ_*`).
    pub fn req_flags(&self) -> u32 {
        self.0.req_flags
    }

    /// Whether the source is gone or failed (`KEVENT_RET_BROKEN`); the
    /// kevent has been removed, and [`Event::result`] has the errno.
    pub fn is_broken(&self) -> bool {
        self.0.ret_flags & sys::KEVENT_RET_BROKEN != 0
    }

    /// The raw `ret_data`: for a timer the number of expirations since the
    /// previous delivery, for a poll kevent 0, for an AIO request the bytes
    /// transferred, for a broken kevent `-errno`.
    pub fn data(&self) -> i64 {
        self.0.ret_data
    }

    /// The data of a normal event, or the errno of a broken one (for an AIO
    /// request: the bytes transferred, or why it failed).
    pub fn result(&self) -> io::Result<i64> {
        if self.is_broken() {
            Err(errno_error(self.0.ret_data))
        } else {
            Ok(self.0.ret_data)
        }
    }

    /// The raw entry.
    pub fn raw(&self) -> &Ukevent {
        &self.0
    }

    /// An event built by hand (for tests of code that handles events).
    pub fn from_raw(raw: Ukevent) -> Event {
        Event(raw)
    }
}

/// A queue that owns the buffers of its network AIO requests: the safe way to
/// send and receive asynchronously.
///
/// [`AioQueue::send`] and [`AioQueue::recv`] take a buffer by value and keep
/// it while the kernel may use it; [`AioQueue::wait`] collects events like
/// [`Queue::wait`] and sets aside the buffer of each AIO request whose event
/// it collected, and [`AioQueue::take`] hands that buffer back (for a
/// receive, the bytes received are its first [`Event::result`] bytes).
/// Only events this queue's `wait` collected release buffers, so a forged
/// [`Event`] cannot take back memory the kernel still uses.
///
/// Other kevents (timers, descriptors, sendfile requests) go through
/// [`AioQueue::queue`]; collect every event with [`AioQueue::wait`], though:
/// the buffer of an AIO request whose event is collected otherwise (with
/// `queue().wait()`, or by another process sharing the descriptor) stays
/// held until the queue is dropped. Dropping the queue cancels the requests
/// still holding buffers (one `REMOVE` each) before it frees them; a buffer
/// whose request cannot be confirmed stopped is leaked, never freed while
/// the kernel may use it.
///
/// Each method makes one system call, except `drop` (one per request still
/// in flight); the buffers are kept in a map under a mutex.
#[derive(Debug)]
pub struct AioQueue {
    queue: Queue,
    bufs: std::sync::Mutex<AioBufs>,
}

/// The buffers of an [`AioQueue`], by `(socket descriptor, user_data)`.
#[derive(Debug, Default)]
struct AioBufs {
    /// Lent to the kernel: their requests are in flight.
    lent: std::collections::HashMap<(u64, u64), Vec<u8>>,
    /// Their requests ended; waiting for [`AioQueue::take`].
    done: std::collections::HashMap<(u64, u64), Vec<u8>>,
}

/// A request an [`AioQueue`] did not submit: why, and the buffer given back.
#[derive(Debug)]
pub struct AioError {
    /// The call's error, or the entry's (`EEXIST`, `EINVAL`, `EBADF`,
    /// `ENOTSOCK`, ...). `EEXIST` also if the queue still holds a buffer for
    /// the same `(socket, user_data)`, completed but not taken yet.
    pub error: io::Error,
    /// The buffer, untouched.
    pub buf: Vec<u8>,
}

impl fmt::Display for AioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kevent AIO request not submitted: {}", self.error)
    }
}

impl std::error::Error for AioError {}

impl From<AioError> for io::Error {
    /// The error alone; the buffer is dropped.
    fn from(e: AioError) -> io::Error {
        e.error
    }
}

impl AioQueue {
    /// Makes a new queue, close-on-exec.
    pub fn new() -> io::Result<AioQueue> {
        Ok(AioQueue {
            queue: Queue::new()?,
            bufs: std::sync::Mutex::new(AioBufs::default()),
        })
    }

    /// The queue, for every other kind of kevent.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    fn bufs(&self) -> std::sync::MutexGuard<'_, AioBufs> {
        // A panic while the lock was held left the maps consistent (each
        // update is one insert or remove).
        self.bufs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Submits an AIO request over `buf`, which it keeps if the kernel took
    /// the request.
    fn submit(
        &self,
        sock: BorrowedFd<'_>,
        mut buf: Vec<u8>,
        user_data: u64,
        make: impl FnOnce(&mut [u8]) -> Request,
    ) -> Result<(), AioError> {
        let key = (sock.as_raw_fd() as u64, user_data);
        let mut bufs = self.bufs();
        if bufs.lent.contains_key(&key) || bufs.done.contains_key(&key) {
            return Err(AioError {
                error: io::Error::from_raw_os_error(libc::EEXIST),
                buf,
            });
        }
        match self.queue.add_one(make(&mut buf)) {
            // The kernel holds the request: the buffer stays here until the
            // request is known to have ended. Moving the `Vec` into the map
            // does not move its heap memory.
            Ok(()) => {
                bufs.lent.insert(key, buf);
                Ok(())
            }
            Err(error) => Err(AioError { error, buf }),
        }
    }

    /// Sends all of `buf` on the socket `sock` (see [`Request::aio_send`]).
    /// The buffer is given back by [`AioQueue::take`] once the request's
    /// event has been collected by [`AioQueue::wait`].
    pub fn send(&self, sock: BorrowedFd<'_>, buf: Vec<u8>, user_data: u64) -> Result<(), AioError> {
        self.submit(sock, buf, user_data, |buf| {
            // SAFETY: the buffer is kept in `lent` until the request has
            // ended (its event collected by `wait`, a `REMOVE` of it returned
            // by `cancel` or `drop`), unread and unwritten by this crate, and
            // only then handed back or freed.
            unsafe { Request::aio_send(sock, buf, user_data) }
        })
    }

    /// Receives into `buf` from the socket `sock` (see [`Request::aio_recv`];
    /// all of `buf` with `waitall`). The buffer is given back by
    /// [`AioQueue::take`], its first [`Event::result`] bytes received.
    pub fn recv(
        &self,
        sock: BorrowedFd<'_>,
        buf: Vec<u8>,
        waitall: bool,
        user_data: u64,
    ) -> Result<(), AioError> {
        self.submit(sock, buf, user_data, |buf| {
            // SAFETY: as in `send`; no reference reaches the buffer while it
            // is in `lent` (the map only moves or drops it).
            unsafe { Request::aio_recv(sock, buf, waitall, user_data) }
        })
    }

    /// Cancels the request `(sock, user_data)` (see [`Queue::remove_aio`]):
    /// its buffer can then be taken at once; its event is still delivered
    /// (broken with `ECANCELED`, or its completion if it came first).
    pub fn cancel(&self, sock: BorrowedFd<'_>, user_data: u64) -> io::Result<()> {
        let key = (sock.as_raw_fd() as u64, user_data);
        let mut bufs = self.bufs();
        self.queue.remove_aio(key.0, key.1)?;
        // The kernel no longer uses the buffer.
        if let Some(buf) = bufs.lent.remove(&key) {
            bufs.done.insert(key, buf);
        }
        Ok(())
    }

    /// Waits for events like [`Queue::wait`]; the buffers of the AIO
    /// requests whose events this collects can then be taken.
    pub fn wait(
        &self,
        events: &mut Events,
        min: usize,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let n = self.queue.wait(events, min, timeout)?;
        let mut bufs = self.bufs();
        for ev in events.iter() {
            if ev.kind() == Some(Kind::Aio) {
                // Delivered by the kernel in this very call: the request
                // ended, and the kernel is done with its buffer.
                let key = (ev.id(), ev.user_data());
                if let Some(buf) = bufs.lent.remove(&key) {
                    bufs.done.insert(key, buf);
                }
            }
        }
        Ok(n)
    }

    /// The buffer of the AIO request `ev` names, if its request ended (its
    /// event collected by [`AioQueue::wait`], or it was cancelled) and the
    /// buffer was not taken yet.
    pub fn take(&self, ev: &Event) -> Option<Vec<u8>> {
        if ev.kind() != Some(Kind::Aio) {
            return None;
        }
        self.bufs().done.remove(&(ev.id(), ev.user_data()))
    }
}

impl Drop for AioQueue {
    fn drop(&mut self) {
        let bufs = std::mem::take(&mut *self.bufs());
        for (key, buf) in bufs.lent {
            // The kernel stops using a buffer before the REMOVE of its request
            // returns; ENOENT: the request ended already (its event
            // collected elsewhere). Otherwise it may still be in use.
            match self.queue.remove_aio(key.0, key.1) {
                Ok(()) => drop(buf),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => drop(buf),
                Err(_) => std::mem::forget(buf),
            }
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Kind::Timer => "timer",
            Kind::Poll => "poll",
            Kind::Socket => "socket",
            Kind::Inode => "inode",
            Kind::Aio => "aio",
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests;
