// SPDX-License-Identifier: GPL-2.0

//! System calls, counted.
//!
//! Every system call a measured loop makes goes through one of the counted
//! wrappers below, which add one to a per-thread counter and make exactly
//! one system call. The benchmark reads the counter before and after the
//! timed region and reports the difference per event. Counting is per
//! thread, so the echo client (another thread) does not pollute the
//! server's count.
//!
//! The second half of the file has set-up helpers (socket pairs, eventfds,
//! listeners, rings, limits). They are not counted and are never called
//! inside a timed region.

use std::cell::Cell;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use io_uring::{types, IoUring};
use kevent::{Events, Kind, Queue, Request};

thread_local! {
    static SYSCALLS: Cell<u64> = const { Cell::new(0) };
}

#[inline(always)]
fn count() {
    SYSCALLS.with(|c| c.set(c.get() + 1));
}

/// System calls counted so far on this thread.
#[inline]
pub fn syscalls() -> u64 {
    SYSCALLS.with(|c| c.get())
}

#[inline(always)]
fn cvt(ret: isize) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// True if `e` is `EAGAIN`.
#[inline]
pub fn is_eagain(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EAGAIN)
}

// ---------------------------------------------------------------------------
// Counted wrappers: one call, one system call, one count.

/// `read(2)`.
#[inline]
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    count();
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    cvt(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
}

/// `write(2)`.
#[inline]
pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    count();
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
    cvt(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) })
}

/// `send(2)` with `flags`.
#[inline]
pub fn send(fd: RawFd, buf: &[u8], flags: i32) -> io::Result<usize> {
    count();
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
    cvt(unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags) })
}

/// `recv(2)` with `flags`.
#[inline]
pub fn recv(fd: RawFd, buf: &mut [u8], flags: i32) -> io::Result<usize> {
    count();
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    cvt(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) })
}

/// `sendfile(2)` of `len` bytes of `file` from `*offset` to `sock`; the
/// kernel advances `*offset` by the bytes sent.
#[inline]
pub fn sendfile(sock: RawFd, file: RawFd, offset: &mut u64, len: usize) -> io::Result<usize> {
    count();
    let mut off = *offset as libc::off_t;
    // SAFETY: `off` is a valid, writable off_t for the call.
    let r = cvt(unsafe { libc::sendfile(sock, file, &mut off, len) });
    *offset = off as u64;
    r
}

#[inline]
fn is_eintr<T>(r: &io::Result<T>) -> bool {
    matches!(r, Err(e) if e.raw_os_error() == Some(libc::EINTR))
}

// The waits retry on EINTR (each attempt is a system call and is counted):
// a stop and SIGCONT (a debugger, a job-control shell, some sandboxes)
// makes epoll_wait, kevent_get_events and io_uring_enter fail with EINTR
// even without a signal handler.

/// `epoll_wait(2)`; returns the number of events written to `evs`.
#[inline]
pub fn epoll_wait(ep: RawFd, evs: &mut [libc::epoll_event], timeout_ms: i32) -> io::Result<usize> {
    let max = evs.len().min(i32::MAX as usize) as i32;
    loop {
        count();
        // SAFETY: `evs` holds `max` writable entries.
        let r = cvt(unsafe { libc::epoll_wait(ep, evs.as_mut_ptr(), max, timeout_ms) } as isize);
        if !is_eintr(&r) {
            return r;
        }
    }
}

/// `epoll_ctl(2)` with an event of `events` bits and `data` as the cookie.
#[inline]
pub fn epoll_ctl(ep: RawFd, op: i32, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
    count();
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: `ev` is a valid epoll_event for the call.
    cvt(unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) } as isize).map(drop)
}

/// `timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)`. The caller
/// owns the descriptor.
#[inline]
pub fn timerfd_create() -> io::Result<OwnedFd> {
    count();
    // SAFETY: no pointers.
    let fd = cvt(unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    } as isize)?;
    // SAFETY: a new descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `timerfd_settime(fd, TFD_TIMER_ABSTIME, {deadline, no interval})`.
#[inline]
pub fn timerfd_settime_abs(fd: RawFd, deadline: Duration) -> io::Result<()> {
    count();
    let its = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: deadline.as_secs() as _,
            tv_nsec: deadline.subsec_nanos() as _,
        },
    };
    // SAFETY: `its` is valid; the old value is not asked for.
    cvt(
        unsafe { libc::timerfd_settime(fd, libc::TFD_TIMER_ABSTIME, &its, std::ptr::null_mut()) }
            as isize,
    )
    .map(drop)
}

/// `kevent_ctl(KEVENT_CTL_ADD)` (the library makes exactly one call).
#[inline]
pub fn kq_add(q: &Queue, batch: &mut [Request]) -> io::Result<usize> {
    count();
    q.add(batch)
}

/// `kevent_ctl(KEVENT_CTL_REMOVE)`.
#[inline]
pub fn kq_remove(q: &Queue, batch: &mut [Request]) -> io::Result<usize> {
    count();
    q.remove(batch)
}

/// `kevent_ctl(KEVENT_CTL_ADD)` of one entry.
#[inline]
pub fn kq_add_one(q: &Queue, req: Request) -> io::Result<()> {
    count();
    q.add_one(req)
}

/// `kevent_ctl(KEVENT_CTL_REMOVE)` of one entry.
#[inline]
pub fn kq_remove_one(q: &Queue, kind: Kind, id: u64) -> io::Result<()> {
    count();
    q.remove_one(kind, id)
}

/// `kevent_get_events()`.
#[inline]
pub fn kq_wait(
    q: &Queue,
    events: &mut Events,
    min: usize,
    timeout: Option<Duration>,
) -> io::Result<usize> {
    loop {
        count();
        let r = q.wait(events, min, timeout);
        if !is_eintr(&r) {
            return r;
        }
    }
}

/// `io_uring_enter()` submitting what is queued, without waiting
/// (`Submitter::submit`: always exactly one system call without SQPOLL).
#[inline]
pub fn uring_submit(ring: &IoUring) -> io::Result<usize> {
    count();
    ring.submitter().submit()
}

/// `io_uring_enter()` submitting what is queued and waiting for `want`
/// completions, at most `timeout` (if the kernel has `IORING_FEAT_EXT_ARG`;
/// otherwise without a limit). A timeout is not an error: the caller finds
/// the completion queue empty.
#[inline]
pub fn uring_wait(ring: &IoUring, want: usize, timeout: Duration) -> io::Result<()> {
    let ts = types::Timespec::from(timeout);
    let args = types::SubmitArgs::new().timespec(&ts);
    loop {
        count();
        let r = if ring.params().is_feature_ext_arg() {
            ring.submitter().submit_with_args(want, &args)
        } else {
            ring.submitter().submit_and_wait(want)
        };
        match r {
            Ok(_) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

// ---------------------------------------------------------------------------
// Set-up helpers: not counted, never inside a timed region.

fn owned(ret: i32) -> io::Result<OwnedFd> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: a new descriptor nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(ret) })
    }
}

/// An `AF_UNIX` `SOCK_STREAM` pair, both ends non-blocking: (read end,
/// write end).
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two new descriptors nothing else owns.
    unsafe { Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))) }
}

/// A non-blocking eventfd with counter 0 (never readable unless written).
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: no pointers.
    owned(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })
}

/// A new epoll instance.
pub fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: no pointers.
    owned(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
}

/// A non-blocking TCP listener on 127.0.0.1 with a port of the kernel's
/// choosing (so a fresh one each time), `SO_REUSEADDR`, backlog 1024.
/// Returns the listener and its port.
pub fn tcp_listener() -> io::Result<(OwnedFd, u16)> {
    // SAFETY: no pointers.
    let fd = owned(unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    setsockopt_int(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    let mut sa = sockaddr_lo(0);
    let len = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `sa` is a valid sockaddr_in of `len` bytes.
    if unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            len,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: no pointers.
    if unsafe { libc::listen(fd.as_raw_fd(), 1024) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut l = len;
    // SAFETY: `sa` has room for a sockaddr_in, `l` says how much.
    if unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut sa as *mut libc::sockaddr_in).cast(),
            &mut l,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok((fd, u16::from_be(sa.sin_port)))
}

fn sockaddr_lo(port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// A blocking connect to 127.0.0.1:`port`; the socket is then made
/// non-blocking and `TCP_NODELAY`.
pub fn tcp_connect(port: u16) -> io::Result<OwnedFd> {
    // SAFETY: no pointers.
    let fd =
        owned(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    let sa = sockaddr_lo(port);
    let len = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // An interrupted connect goes on in the background: retry until it
    // says it is connected.
    let mut retried = false;
    loop {
        // SAFETY: `sa` is a valid sockaddr_in of `len` bytes.
        let r = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_in).cast(),
                len,
            )
        };
        if r == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => retried = true,
            Some(libc::EISCONN) if retried => break,
            Some(libc::EALREADY) if retried => std::thread::sleep(Duration::from_millis(1)),
            _ => return Err(e),
        }
    }
    set_nonblock(fd.as_raw_fd())?;
    setsockopt_int(fd.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)?;
    Ok(fd)
}

/// `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)` with `TCP_NODELAY` on the new
/// socket. `Ok(None)` when no connection is waiting.
pub fn tcp_accept(listener: RawFd) -> io::Result<Option<OwnedFd>> {
    // SAFETY: a null address is allowed.
    let r = unsafe {
        libc::accept4(
            listener,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if is_eagain(&e) { Ok(None) } else { Err(e) };
    }
    let fd = owned(r)?;
    setsockopt_int(fd.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)?;
    Ok(Some(fd))
}

fn setsockopt_int(fd: RawFd, level: i32, opt: i32, v: i32) -> io::Result<()> {
    // SAFETY: `v` is a valid int for the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&v as *const i32).cast(),
            mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn set_nonblock(fd: RawFd) -> io::Result<()> {
    // SAFETY: no pointers.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: no pointers.
    if fl < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Raises `RLIMIT_NOFILE` to `want` (needs root for a hard limit above the
/// current one); otherwise to the hard limit. Returns the soft limit in
/// force afterwards.
pub fn raise_nofile(want: u64) -> u64 {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `cur` is writable.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) };
    if cur.rlim_cur >= want {
        return cur.rlim_cur;
    }
    let new = libc::rlimit {
        rlim_cur: want,
        rlim_max: want.max(cur.rlim_max),
    };
    // SAFETY: `new` is valid.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
        return want;
    }
    let new = libc::rlimit {
        rlim_cur: cur.rlim_max,
        rlim_max: cur.rlim_max,
    };
    // SAFETY: `new` is valid.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
        return cur.rlim_max;
    }
    cur.rlim_cur
}

/// Raises the integer sysctl at `path` to at least `min` if it is lower
/// (for the per-user kevent and epoll limits inside the benchmark guest; a
/// host with a higher value is left alone). Returns a note if it changed
/// something or failed to.
pub fn ensure_sysctl(path: &str, min: u64) -> Option<String> {
    let cur: u64 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    if cur >= min {
        return None;
    }
    match std::fs::write(path, format!("{min}\n")) {
        Ok(()) => Some(format!("{path}: raised {cur} -> {min}")),
        Err(e) => Some(format!("{path}: is {cur}, could not raise to {min}: {e}")),
    }
}

/// `uname -r`, `uname -v` and the machine.
pub fn uname() -> (String, String, String) {
    // SAFETY: an all-zero utsname is valid.
    let mut u: libc::utsname = unsafe { mem::zeroed() };
    // SAFETY: `u` is writable.
    if unsafe { libc::uname(&mut u) } < 0 {
        return ("?".into(), "?".into(), "?".into());
    }
    let s = |f: &[libc::c_char]| {
        let b: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    (s(&u.release), s(&u.version), s(&u.machine))
}

/// Online CPUs.
pub fn cpus() -> usize {
    // SAFETY: no pointers.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as usize
    } else {
        1
    }
}

/// The current `CLOCK_MONOTONIC` time (the clock of `Instant`, absolute
/// timer deadlines and `TFD_TIMER_ABSTIME`). A vDSO call, not counted.
pub fn mono_now() -> Duration {
    kevent::monotonic_now().unwrap_or_default()
}

/// The CPU time (user + system) of the whole process so far, all threads
/// (`getrusage(RUSAGE_SELF)`, microsecond resolution).
pub fn process_cpu() -> Duration {
    // SAFETY: an all-zero rusage is valid.
    let mut ru: libc::rusage = unsafe { mem::zeroed() };
    // SAFETY: `ru` is writable.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } < 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The busy time of all CPUs so far: the user, nice, system, irq, softirq
/// and steal columns of the `cpu` line of `/proc/stat`, which counts in
/// `USER_HZ` ticks (sampled at the scheduler tick); `None` if it cannot be
/// read.
pub fn cpus_busy() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest is in user).
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .map(|&i| f.get(i).copied().unwrap_or(0))
        .sum();
    // SAFETY: no pointers.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    Some(Duration::from_nanos(
        busy.saturating_mul(1_000_000_000) / hz,
    ))
}

static URING_DEFER: AtomicBool = AtomicBool::new(false);

/// Probes io_uring once: makes a ring with `IORING_SETUP_SINGLE_ISSUER |
/// IORING_SETUP_DEFER_TASKRUN` (kernel 6.1+; task work runs only in
/// `io_uring_enter`), falling back to a plain ring. Returns a description
/// of the set-up used by every later [`new_ring`].
pub fn uring_probe() -> io::Result<String> {
    match IoUring::<io_uring::squeue::Entry, io_uring::cqueue::Entry>::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(8)
    {
        Ok(r) => {
            URING_DEFER.store(true, Ordering::Relaxed);
            Ok(format!(
                "SINGLE_ISSUER|DEFER_TASKRUN{}",
                if r.params().is_feature_ext_arg() {
                    ""
                } else {
                    ", no EXT_ARG"
                }
            ))
        }
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let r = IoUring::new(8)?;
            Ok(format!(
                "default set-up{}",
                if r.params().is_feature_ext_arg() {
                    ""
                } else {
                    ", no EXT_ARG"
                }
            ))
        }
        Err(e) => Err(e),
    }
}

/// A ring of `sq` submission entries and at least `cq` completion entries
/// (clamped to the kernel's maximum), set up as [`uring_probe`] decided.
/// Must be made on the thread that uses it (single issuer).
pub fn new_ring(sq: u32, cq: u32) -> io::Result<IoUring> {
    let mut b = IoUring::<io_uring::squeue::Entry, io_uring::cqueue::Entry>::builder();
    b.setup_cqsize(cq.max(sq * 2)).setup_clamp();
    if URING_DEFER.load(Ordering::Relaxed) {
        b.setup_single_issuer().setup_defer_taskrun();
    }
    b.build(sq)
}

/// The calling thread's CPU affinity.
pub fn affinity() -> Option<libc::cpu_set_t> {
    // SAFETY: an all-zero cpu_set_t is valid.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    // SAFETY: `set` is writable and of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, mem::size_of::<libc::cpu_set_t>(), &mut set) };
    (r == 0).then_some(set)
}

/// Sets the calling thread's CPU affinity; false if the kernel refused.
pub fn set_affinity(set: &libc::cpu_set_t) -> bool {
    // SAFETY: `set` is valid and of the size passed.
    unsafe { libc::sched_setaffinity(0, mem::size_of::<libc::cpu_set_t>(), set) == 0 }
}

/// Binds the calling thread to `cpu`; false if the kernel refused.
pub fn pin_to(cpu: usize) -> bool {
    // SAFETY: an all-zero cpu_set_t is valid.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    // SAFETY: CPU_SET only writes inside `set` (it checks the index).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    set_affinity(&set)
}

/// A zeroed buffer of `len` bytes whose pages are all mapped: a large `vec![0; len]` is fresh
/// zero pages that the first receive into it would fault in, inside the timed loop (one run of
/// 1 MiB messages would count 256 page faults, each clearing a page, against a mechanism whose
/// receive buffers are new), while the AIO and io_uring buffers are copies, written when made.
pub fn touched(len: usize) -> Vec<u8> {
    let mut v = vec![1u8; len];
    v.fill(0);
    std::hint::black_box(v)
}
