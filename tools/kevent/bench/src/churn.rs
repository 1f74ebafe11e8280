// SPDX-License-Identifier: GPL-2.0

//! Case 3: registration churn. N eventfds (made once, never signalled) are
//! registered for input and then unregistered, timed from the first
//! registration to the last removal; the queue, epoll instance or ring is
//! made before and closed after.
//!
//! - epoll: one `epoll_ctl(ADD)` per fd, then one `epoll_ctl(DEL)` per fd.
//! - kevent, batched: `kevent_ctl(ADD)` of 1024 poll kevents per call, then
//!   `kevent_ctl(REMOVE)` of 1024 per call.
//! - kevent, one per call: `kevent_ctl(ADD)` and `kevent_ctl(REMOVE)` of
//!   one entry each (what an epoll-style caller would do).
//! - io_uring: `IORING_OP_POLL_ADD` (single shot) SQEs, 1024 per
//!   `io_uring_enter`, then `IORING_OP_POLL_REMOVE` SQEs, 1024 per
//!   `io_uring_enter` that also waits for their 2048 completions (the
//!   removal's and the cancelled poll's).

use std::fmt::Write as _;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use io_uring::{opcode, types};
use kevent::{Kind, Queue, Request};

use crate::stats::{self, num, per, ratio, Table};
use crate::sys;
use crate::{Env, Need};

const N: usize = 10_000;
const CHUNK: usize = 1024;
const REMOVE_TAG: u64 = 1 << 63;

#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// ns per add + remove pair.
    pub ns: f64,
    /// Syscalls per fd (add and remove).
    pub sc: f64,
}

fn timed(n: usize, f: impl FnOnce() -> Result<(), String>) -> Result<Sample, String> {
    let sc0 = sys::syscalls();
    let t0 = Instant::now();
    f()?;
    let dt = t0.elapsed();
    Ok(Sample {
        ns: dt.as_nanos() as f64 / n as f64,
        sc: (sys::syscalls() - sc0) as f64 / n as f64,
    })
}

fn run_epoll(fds: &[RawFd]) -> Result<Sample, String> {
    let ep = sys::epoll_create().map_err(|e| format!("epoll_create1: {e}"))?;
    let ep = ep.as_raw_fd();
    timed(fds.len(), || {
        for (i, &fd) in fds.iter().enumerate() {
            sys::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32, i as u64)
                .map_err(|e| format!("epoll_ctl(ADD): {e}"))?;
        }
        for &fd in fds {
            sys::epoll_ctl(ep, libc::EPOLL_CTL_DEL, fd, 0, 0)
                .map_err(|e| format!("epoll_ctl(DEL): {e}"))?;
        }
        Ok(())
    })
}

fn check_batch(what: &str, k: usize, batch: &[Request]) -> Result<(), String> {
    if let Some(e) = batch.iter().find_map(|r| r.result().err()) {
        return Err(format!("{what} entry: {e}"));
    }
    if k != batch.len() {
        return Err(format!("{what}: {k} of {} took effect", batch.len()));
    }
    Ok(())
}

fn bfd(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: the eventfds outlive every queue they are registered in.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

fn run_kevent_batched(fds: &[RawFd]) -> Result<Sample, String> {
    let q = Queue::new().map_err(|e| format!("kevent queue: {e}"))?;
    let mut batch: Vec<Request> = Vec::with_capacity(CHUNK);
    timed(fds.len(), || {
        for (c, chunk) in fds.chunks(CHUNK).enumerate() {
            batch.clear();
            batch.extend(chunk.iter().enumerate().map(|(i, &fd)| {
                Request::poll(bfd(fd), kevent::poll::IN).user_data((c * CHUNK + i) as u64)
            }));
            let k = sys::kq_add(&q, &mut batch).map_err(|e| format!("kevent_ctl(ADD): {e}"))?;
            check_batch("kevent_ctl(ADD)", k, &batch)?;
        }
        for chunk in fds.chunks(CHUNK) {
            batch.clear();
            batch.extend(chunk.iter().map(|&fd| Request::key(Kind::Poll, fd as u64)));
            let k =
                sys::kq_remove(&q, &mut batch).map_err(|e| format!("kevent_ctl(REMOVE): {e}"))?;
            check_batch("kevent_ctl(REMOVE)", k, &batch)?;
        }
        Ok(())
    })
}

fn run_kevent_one(fds: &[RawFd]) -> Result<Sample, String> {
    let q = Queue::new().map_err(|e| format!("kevent queue: {e}"))?;
    timed(fds.len(), || {
        for (i, &fd) in fds.iter().enumerate() {
            sys::kq_add_one(
                &q,
                Request::poll(bfd(fd), kevent::poll::IN).user_data(i as u64),
            )
            .map_err(|e| format!("kevent_ctl(ADD): {e}"))?;
        }
        for &fd in fds {
            sys::kq_remove_one(&q, Kind::Poll, fd as u64)
                .map_err(|e| format!("kevent_ctl(REMOVE): {e}"))?;
        }
        Ok(())
    })
}

fn run_uring(fds: &[RawFd]) -> Result<Sample, String> {
    let mut ring = sys::new_ring(CHUNK as u32, 4 * CHUNK as u32)
        .map_err(|e| format!("io_uring_setup: {e}"))?;
    timed(fds.len(), || {
        for (c, chunk) in fds.chunks(CHUNK).enumerate() {
            {
                let mut sq = ring.submission();
                for (i, &fd) in chunk.iter().enumerate() {
                    let sqe = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
                        .build()
                        .user_data((c * CHUNK + i) as u64);
                    // SAFETY: poll SQEs reference no user memory.
                    unsafe { sq.push(&sqe) }.map_err(|_| "submission queue full".to_string())?;
                }
            }
            sys::uring_submit(&ring).map_err(|e| format!("io_uring_enter: {e}"))?;
        }
        for (c, chunk) in fds.chunks(CHUNK).enumerate() {
            {
                let mut sq = ring.submission();
                for i in 0..chunk.len() {
                    let id = (c * CHUNK + i) as u64;
                    let sqe = opcode::PollRemove::new(id)
                        .build()
                        .user_data(REMOVE_TAG | id);
                    // SAFETY: as above.
                    unsafe { sq.push(&sqe) }.map_err(|_| "submission queue full".to_string())?;
                }
            }
            sys::uring_wait(&ring, 2 * chunk.len(), Duration::from_secs(30))
                .map_err(|e| format!("io_uring_enter: {e}"))?;
            let (mut removed, mut cancelled) = (0, 0);
            for cqe in ring.completion() {
                match (cqe.user_data() & REMOVE_TAG != 0, cqe.result()) {
                    (true, 0) => removed += 1,
                    (false, r) if r == -libc::ECANCELED => cancelled += 1,
                    (rm, r) => {
                        return Err(format!(
                            "unexpected completion: {} {}, result {r}",
                            if rm { "remove" } else { "poll" },
                            cqe.user_data() & !REMOVE_TAG
                        ))
                    }
                }
            }
            if removed != chunk.len() || cancelled != chunk.len() {
                return Err(format!(
                    "{removed} removals and {cancelled} cancelled polls completed for {}",
                    chunk.len()
                ));
            }
        }
        Ok(())
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mech {
    Epoll,
    KeventBatched,
    KeventOne,
    Uring,
}

impl Mech {
    const ALL: [Mech; 4] = [
        Mech::Epoll,
        Mech::KeventBatched,
        Mech::KeventOne,
        Mech::Uring,
    ];

    fn name(self) -> &'static str {
        match self {
            Mech::Epoll => "epoll (epoll_ctl per fd)",
            Mech::KeventBatched => "kevent (1024 per kevent_ctl)",
            Mech::KeventOne => "kevent (1 per kevent_ctl)",
            Mech::Uring => "io_uring (poll add/remove SQEs, 1024 per enter)",
        }
    }

    fn need(self) -> Need {
        match self {
            Mech::Epoll => Need::Nothing,
            Mech::KeventBatched | Mech::KeventOne => Need::Kevent,
            Mech::Uring => Need::Uring,
        }
    }

    fn run(self, fds: &[RawFd]) -> Result<Sample, String> {
        match self {
            Mech::Epoll => run_epoll(fds),
            Mech::KeventBatched => run_kevent_batched(fds),
            Mech::KeventOne => run_kevent_one(fds),
            Mech::Uring => run_uring(fds),
        }
    }
}

pub fn run(env: &Env) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Registration churn\n\n\
         {N} eventfds (never signalled) registered for input, then all removed. \
         Cost per add + remove pair; ratio to epoll (medians). {} runs each.\n",
        env.runs
    );
    eprintln!("churn: N={N}");
    let owned: Result<Vec<OwnedFd>, _> = (0..N).map(|_| sys::eventfd()).collect();
    let owned = match owned {
        Ok(v) => v,
        Err(e) => {
            let _ = writeln!(out, "FAILED: making {N} eventfds: {e}\n");
            return out;
        }
    };
    let fds: Vec<RawFd> = owned.iter().map(|f| f.as_raw_fd()).collect();
    let results = env.compare(
        &Mech::ALL,
        |m| (m.name(), m.need()),
        |m| m.run(&fds),
        |s| format!("{} ns per add+remove, {} syscalls/fd", num(s.ns), per(s.sc)),
    );
    let mut t = Table::new(
        format!("Churn: N = {N}"),
        &[
            "mechanism",
            "ns per add+remove (median)",
            "min–max",
            "ratio to epoll",
            "syscalls/fd",
        ],
    );
    let base = results[0].1.median_of(|s| s.ns).unwrap_or(f64::NAN);
    for (m, o) in &results {
        if t.row_outcome(&[m.name()], o) {
            continue;
        }
        let v = o.samples().unwrap_or_default();
        let ns = stats::summarize_by(v, |s| s.ns);
        t.row(vec![
            m.name().into(),
            num(ns.median),
            stats::range(&ns),
            ratio(ns.median, base),
            per(stats::summarize_by(v, |s| s.sc).median),
        ]);
    }
    out += &t.render();
    out.push('\n');
    out
}
