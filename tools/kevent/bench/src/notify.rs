// SPDX-License-Identifier: GPL-2.0

//! Readiness notification behind one interface, so that the chain, scale
//! and echo loops are the same code for every mechanism and only the
//! notification differs.
//!
//! System calls each `wait()` makes (all counted, see `sys.rs`):
//! - epoll: one `epoll_wait(1024)`.
//! - kevent: one `kevent_get_events(min 1, max 1024)`.
//! - kevent with a ready ring: up to 1024 events popped from the ring, no
//!   system call; only when the ring is empty, one
//!   `kevent_get_events(min 1, max 1024)`, which returns the events that
//!   took the ready list (the ring was full), or 0 as soon as the ring holds
//!   an event, which are then popped.
//! - io_uring: one `io_uring_enter(GETEVENTS, min_complete 1)` only when
//!   the completion queue is empty (it also submits queued re-arms and
//!   removals), then up to 1024 completions are reaped from the ring
//!   without a system call. A multishot poll that ends (no `IORING_CQE_F_MORE`)
//!   is re-armed with an SQE that goes out with the next enter (or an
//!   `io_uring_enter` of its own if the submission queue is full).
//!   Completions of removals and of cancelled polls are not readiness; a
//!   batch of only those makes `wait()` reap (or enter) again.
//!
//! The waits use a long timeout only to turn a lost event into a "stalled"
//! failure instead of a hang; an `EINTR` is retried (and counted).

use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use kevent::{Events, Kind, Queue, QueueFlags, Request, Ring};

use crate::sys;

/// Events per wait call, the same for every mechanism.
pub const BATCH: usize = 1024;

/// A readiness notifier.
pub trait Notifier {
    /// Watches `fd` for input (for a listener: incoming connections) and
    /// reports it as `token`. May be queued until [`Notifier::flush`].
    fn add(&mut self, fd: RawFd, token: u64, listener: bool) -> Result<(), String>;
    /// Applies queued registrations.
    fn flush(&mut self) -> Result<(), String>;
    /// Stops watching `fd` (registered as `token`).
    fn remove(&mut self, fd: RawFd, token: u64) -> Result<(), String>;
    /// One wait for readiness: replaces `ready` with the tokens of ready
    /// fds (at most [`BATCH`]); empty if `timeout` passed without any.
    fn wait(&mut self, ready: &mut Vec<u64>, timeout: Duration) -> Result<(), String>;
}

fn err(what: &str, e: std::io::Error) -> String {
    format!("{what}: {e}")
}

/// epoll, level or edge triggered, `EPOLLIN`.
pub struct Epoll {
    ep: OwnedFd,
    events: u32,
    buf: Vec<libc::epoll_event>,
}

impl Epoll {
    pub fn new(edge: bool) -> Result<Epoll, String> {
        Ok(Epoll {
            ep: sys::epoll_create().map_err(|e| err("epoll_create1", e))?,
            events: libc::EPOLLIN as u32 | if edge { libc::EPOLLET as u32 } else { 0 },
            buf: vec![libc::epoll_event { events: 0, u64: 0 }; BATCH],
        })
    }
}

impl Notifier for Epoll {
    fn add(&mut self, fd: RawFd, token: u64, _listener: bool) -> Result<(), String> {
        sys::epoll_ctl(
            self.ep.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            fd,
            self.events,
            token,
        )
        .map_err(|e| err("epoll_ctl(ADD)", e))
    }

    fn flush(&mut self) -> Result<(), String> {
        Ok(())
    }

    fn remove(&mut self, fd: RawFd, _token: u64) -> Result<(), String> {
        sys::epoll_ctl(self.ep.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, 0, 0)
            .map_err(|e| err("epoll_ctl(DEL)", e))
    }

    #[inline]
    fn wait(&mut self, ready: &mut Vec<u64>, timeout: Duration) -> Result<(), String> {
        ready.clear();
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let n = sys::epoll_wait(self.ep.as_raw_fd(), &mut self.buf, ms)
            .map_err(|e| err("epoll_wait", e))?;
        ready.extend(self.buf[..n].iter().map(|e| e.u64));
        Ok(())
    }
}

/// kevent, with the poll source (`poll::IN`) or the socket source
/// (`SOCKET_RECV`, `SOCKET_ACCEPT` for listeners); level or edge triggered;
/// with or without a ready ring.
pub struct Kevent {
    q: Queue,
    /// The queue's ready ring, if it has one: popped before each
    /// `kevent_get_events()`.
    ring: Option<Ring>,
    socket: bool,
    edge: bool,
    pending: Vec<Request>,
    events: Events,
}

impl Kevent {
    pub fn new(socket: bool, edge: bool) -> Result<Kevent, String> {
        Ok(Kevent {
            q: Queue::new().map_err(|e| err("kevent queue", e))?,
            ring: None,
            socket,
            edge,
            pending: Vec::with_capacity(kevent::MAX_BATCH),
            events: Events::with_capacity(BATCH),
        })
    }

    /// The socket source, edge triggered, on a queue with a ready ring for
    /// `n` fds: a power of two of at least `2 * n` slots, at most
    /// `KEVENT_RING_MAX_ENTRIES` (what does not fit takes the ready list).
    pub fn with_ring(n: usize) -> Result<Kevent, String> {
        let max = kevent::sys::KEVENT_RING_MAX_ENTRIES as usize;
        let entries = n.saturating_mul(2).max(1).next_power_of_two().min(max) as u32;
        let (q, ring) = Queue::with_ring(QueueFlags::CLOEXEC, entries)
            .map_err(|e| err("kevent queue with a ring", e))?;
        Ok(Kevent {
            q,
            ring: Some(ring),
            socket: true,
            edge: true,
            pending: Vec::with_capacity(kevent::MAX_BATCH),
            events: Events::with_capacity(BATCH),
        })
    }

    fn kind(&self) -> Kind {
        if self.socket {
            Kind::Socket
        } else {
            Kind::Poll
        }
    }
}

impl Notifier for Kevent {
    fn add(&mut self, fd: RawFd, token: u64, listener: bool) -> Result<(), String> {
        // SAFETY: the caller keeps `fd` open while it is registered; the
        // request only records its number.
        let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
        let req = if self.socket {
            let ev = if listener {
                kevent::SOCKET_ACCEPT
            } else {
                kevent::SOCKET_RECV
            };
            Request::socket(bfd, ev)
        } else {
            Request::poll(bfd, kevent::poll::IN)
        };
        let req = req.user_data(token);
        self.pending.push(if self.edge { req.edge() } else { req });
        if self.pending.len() == kevent::MAX_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let n = sys::kq_add(&self.q, &mut self.pending).map_err(|e| err("kevent_ctl(ADD)", e))?;
        for r in &self.pending {
            r.result().map_err(|e| err("kevent_ctl(ADD) entry", e))?;
        }
        if n != self.pending.len() {
            return Err(format!(
                "kevent_ctl(ADD): {n} of {} took effect",
                self.pending.len()
            ));
        }
        self.pending.clear();
        Ok(())
    }

    fn remove(&mut self, fd: RawFd, _token: u64) -> Result<(), String> {
        sys::kq_remove_one(&self.q, self.kind(), fd as u64)
            .map_err(|e| err("kevent_ctl(REMOVE)", e))
    }

    #[inline]
    fn wait(&mut self, ready: &mut Vec<u64>, timeout: Duration) -> Result<(), String> {
        ready.clear();
        // The ring first: no system call while it has events.
        if let Some(ring) = &self.ring {
            pop_ring(ring, ready)?;
            if !ready.is_empty() {
                return Ok(());
            }
        }
        sys::kq_wait(&self.q, &mut self.events, 1, Some(timeout))
            .map_err(|e| err("kevent_get_events", e))?;
        for ev in &self.events {
            token(ev, ready)?;
        }
        // None from the ready list: the ring got one (or the wait timed out).
        if let (true, Some(ring)) = (ready.is_empty(), &self.ring) {
            pop_ring(ring, ready)?;
        }
        Ok(())
    }
}

/// Adds the token of `ev` to `ready`, unless it is broken.
#[inline]
fn token(ev: &kevent::Event, ready: &mut Vec<u64>) -> Result<(), String> {
    if ev.is_broken() {
        return Err(format!(
            "broken event for token {}: {}",
            ev.user_data(),
            ev.result().err().map_or("?".into(), |e| e.to_string())
        ));
    }
    ready.push(ev.user_data());
    Ok(())
}

/// Pops events from `ring` into `ready` until it holds [`BATCH`] or the ring
/// is empty.
#[inline]
fn pop_ring(ring: &Ring, ready: &mut Vec<u64>) -> Result<(), String> {
    while ready.len() < BATCH {
        let Some(ev) = ring.pop() else { break };
        token(&ev, ready)?;
    }
    Ok(())
}

/// user_data bit of removal SQEs.
const REMOVE_TAG: u64 = 1 << 63;

/// io_uring `IORING_OP_POLL_ADD` multishot (`POLLIN`).
pub struct Uring {
    ring: IoUring,
    fds: HashMap<u64, RawFd>,
    cqes: Vec<(u64, i32, u32)>,
}

impl Uring {
    /// A ring for up to `n` watched fds.
    pub fn new(n: usize) -> Result<Uring, String> {
        let cq = (2 * n).clamp(4096, 65536) as u32;
        Ok(Uring {
            ring: sys::new_ring(1024, cq).map_err(|e| err("io_uring_setup", e))?,
            fds: HashMap::new(),
            cqes: Vec::with_capacity(BATCH),
        })
    }

    fn push(&mut self, sqe: squeue::Entry) -> Result<(), String> {
        loop {
            // SAFETY: poll SQEs reference no user memory.
            if unsafe { self.ring.submission().push(&sqe) }.is_ok() {
                return Ok(());
            }
            sys::uring_submit(&self.ring).map_err(|e| err("io_uring_enter", e))?;
        }
    }

    fn arm(&mut self, fd: RawFd, token: u64) -> Result<(), String> {
        let sqe = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(token);
        self.push(sqe)
    }
}

impl Notifier for Uring {
    fn add(&mut self, fd: RawFd, token: u64, _listener: bool) -> Result<(), String> {
        self.fds.insert(token, fd);
        self.arm(fd, token)
    }

    fn flush(&mut self) -> Result<(), String> {
        // A poll that fails to arm completes with an error, which wait()
        // reports.
        sys::uring_submit(&self.ring)
            .map(drop)
            .map_err(|e| err("io_uring_enter", e))
    }

    fn remove(&mut self, _fd: RawFd, token: u64) -> Result<(), String> {
        self.fds.remove(&token);
        self.push(
            opcode::PollRemove::new(token)
                .build()
                .user_data(REMOVE_TAG | token),
        )
    }

    #[inline]
    fn wait(&mut self, ready: &mut Vec<u64>, timeout: Duration) -> Result<(), String> {
        ready.clear();
        // Completions of removals and cancelled polls are not readiness:
        // reap again until something is ready or the wait times out.
        while ready.is_empty() {
            if self.ring.completion().is_empty() {
                sys::uring_wait(&self.ring, 1, timeout).map_err(|e| err("io_uring_enter", e))?;
                if self.ring.completion().is_empty() {
                    return Ok(());
                }
            }
            self.cqes.clear();
            self.cqes.extend(
                self.ring
                    .completion()
                    .take(BATCH)
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for i in 0..self.cqes.len() {
                let (ud, res, flags) = self.cqes[i];
                if ud & REMOVE_TAG != 0 || res == -libc::ECANCELED {
                    continue;
                }
                if res < 0 {
                    return Err(format!(
                        "poll completion for token {ud}: {}",
                        std::io::Error::from_raw_os_error(-res)
                    ));
                }
                if !cqueue::more(flags) {
                    if let Some(&fd) = self.fds.get(&ud) {
                        self.arm(fd, ud)?;
                    }
                }
                ready.push(ud);
            }
        }
        Ok(())
    }
}
