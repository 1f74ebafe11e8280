// SPDX-License-Identifier: GPL-2.0

//! Tests of the kevent crate against the running kernel, with TAP output.
//!
//! Built as a static musl binary and run as a kselftest in the booted kevent
//! kernel (`kevent_rs_test`); `cargo test --test kernel` runs it on the host
//! too, where it reports that the system calls are missing and skips (exit
//! status 4, `KSFT_SKIP`). Exit status 1 if any test failed.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::panic;
use std::thread;
use std::time::{Duration, Instant};

use std::net::Shutdown;
use std::os::unix::net::UnixStream;

use kevent::{
    monotonic_now, poll, sys, AioQueue, Event, Events, Kind, Queue, QueueFlags, Request, Ring,
    AIO_RECV, AIO_SEND, AIO_SENDFILE, MAX_BATCH, SOCKET_RECV, TIMER_FIRED,
};

type TestResult = Result<(), String>;

/// A test: its TAP name and its function.
type Test = (&'static str, fn() -> TestResult);

/// Fails the test with the location and a message unless `$cond` holds.
macro_rules! check {
    ($cond:expr) => {
        check!($cond, "{}", stringify!($cond))
    };
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!("line {}: {}", line!(), format!($($fmt)+)));
        }
    };
}

/// Unwraps an `io::Result`, failing the test with the location otherwise.
macro_rules! t {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Err(format!("line {}: {}: {}", line!(), stringify!($e), e)),
        }
    };
}

/// Checks that `$e` failed with errno `$errno`.
macro_rules! check_errno {
    ($e:expr, $errno:expr) => {
        match $e {
            Ok(_) => return Err(format!("line {}: {} succeeded", line!(), stringify!($e))),
            Err(e) => check!(
                e.raw_os_error() == Some($errno),
                "{}: {} instead of errno {}",
                stringify!($e),
                e,
                $errno
            ),
        }
    };
}

const SHORT: Duration = Duration::from_millis(30);
const LONG: Duration = Duration::from_secs(2);
const ZERO: Duration = Duration::ZERO;

fn fd_flags(fd: RawFd) -> i32 {
    // SAFETY: F_GETFD takes no pointer argument.
    unsafe { libc::fcntl(fd, libc::F_GETFD) }
}

fn fl_flags(fd: RawFd) -> i32 {
    // SAFETY: F_GETFL takes no pointer argument.
    unsafe { libc::fcntl(fd, libc::F_GETFL) }
}

fn pipe() -> io::Result<(io::PipeReader, io::PipeWriter)> {
    io::pipe()
}

fn raw_id(fd: &impl AsRawFd) -> u64 {
    fd.as_raw_fd() as u64
}

fn queue_create_close() -> TestResult {
    let q = t!(Queue::new());
    let fd = q.as_raw_fd();
    check!(fd >= 0 && fd_flags(fd) >= 0);
    if let Ok(link) = std::fs::read_link(format!("/proc/self/fd/{fd}")) {
        check!(
            link.to_string_lossy() == "anon_inode:[kevent]",
            "fd links to {link:?}"
        );
    }
    drop(q);
    check!(fd_flags(fd) == -1, "fd {fd} still open after drop");
    check!(io::Error::last_os_error().raw_os_error() == Some(libc::EBADF));
    Ok(())
}

fn queue_flags() -> TestResult {
    let cases = [
        (Queue::new(), true, false),
        (Queue::with_flags(QueueFlags::empty()), false, false),
        (Queue::with_flags(QueueFlags::CLOEXEC), true, false),
        (Queue::with_flags(QueueFlags::NONBLOCK), false, true),
        (
            Queue::with_flags(QueueFlags::CLOEXEC | QueueFlags::NONBLOCK),
            true,
            true,
        ),
    ];
    for (i, (q, cloexec, nonblock)) in cases.into_iter().enumerate() {
        let q = t!(q);
        let fd = q.as_raw_fd();
        check!(
            (fd_flags(fd) & libc::FD_CLOEXEC != 0) == cloexec,
            "case {i}: FD_CLOEXEC"
        );
        check!(
            (fl_flags(fd) & libc::O_NONBLOCK != 0) == nonblock,
            "case {i}: O_NONBLOCK"
        );
        if nonblock {
            // A non-blocking queue never sleeps, whatever the timeout.
            let mut ev = Events::with_capacity(1);
            let start = Instant::now();
            check!(t!(q.wait(&mut ev, 1, Some(LONG))) == 0);
            check!(start.elapsed() < LONG / 2, "case {i}: slept");
        }
    }
    Ok(())
}

fn empty_batch() -> TestResult {
    let q = t!(Queue::new());
    check!(t!(q.add(&mut [])) == 0);
    check!(t!(q.remove(&mut [])) == 0);
    check!(t!(q.modify(&mut [])) == 0);
    Ok(())
}

fn add_batch_per_entry_results() -> TestResult {
    let q = t!(Queue::new());
    let far = Duration::from_secs(100);
    let bad_type = Request::from_raw(sys::Ukevent {
        type_: 0,
        ..*Request::timer(10, far, None).raw()
    });
    let unknown_type = Request::from_raw(sys::Ukevent {
        type_: 99,
        ..*Request::timer(11, far, None).raw()
    });
    let reserved = Request::from_raw(sys::Ukevent {
        reserved: 1,
        ..*Request::timer(12, far, None).raw()
    });
    let mut batch = [
        Request::timer(1, far, None),
        Request::timer(1, far, None),
        Request::timer(2, far, None),
        bad_type,
        unknown_type,
        reserved,
        Request::timer(3, far, None),
    ];
    check!(t!(q.add(&mut batch)) == 3);
    let expect = [
        None,
        Some(libc::EEXIST),
        None,
        Some(libc::EINVAL),
        Some(libc::EINVAL),
        Some(libc::EINVAL),
        None,
    ];
    for (i, (req, want)) in batch.iter().zip(expect).enumerate() {
        let got = req.result().map_err(|e| e.raw_os_error());
        check!(
            got == want.map_or(Ok(()), |e| Err(Some(e))),
            "entry {i}: {got:?}, want {want:?}"
        );
    }
    // The failed entries registered nothing.
    let mut keys = [1, 2, 3, 10, 11, 12].map(|id| Request::key(Kind::Timer, id));
    check!(t!(q.remove(&mut keys)) == 3);
    for req in &keys[3..] {
        check!(req.result().err().and_then(|e| e.raw_os_error()) == Some(libc::ENOENT));
    }
    Ok(())
}

fn remove_batch_per_entry_results() -> TestResult {
    let q = t!(Queue::new());
    let far = Duration::from_secs(100);
    t!(q.add_one(Request::timer(1, far, None)));
    t!(q.add_one(Request::timer(2, far, None)));
    check_errno!(q.add_one(Request::timer(2, far, None)), libc::EEXIST);
    let mut batch = [
        Request::key(Kind::Timer, 1),
        Request::key(Kind::Timer, 7),
        Request::key(Kind::Timer, 2),
    ];
    check!(t!(q.remove(&mut batch)) == 2);
    t!(batch[0].result());
    check_errno!(batch[1].result(), libc::ENOENT);
    t!(batch[2].result());
    let e = q.remove_one(Kind::Timer, 1).unwrap_err();
    check!(e.kind() == io::ErrorKind::NotFound, "{e}");
    Ok(())
}

fn modify_batch_per_entry_results() -> TestResult {
    let q = t!(Queue::new());
    t!(q.add_one(Request::timer(1, Duration::from_secs(100), None).user_data(1)));
    let bad_event = Request::from_raw(sys::Ukevent {
        event: 0,
        ..*Request::timer(1, ZERO, None).raw()
    });
    let mut batch = [
        Request::timer(1, Duration::from_millis(1), None).user_data(2),
        Request::timer(5, Duration::from_millis(1), None),
        bad_event,
    ];
    check!(t!(q.modify(&mut batch)) == 1);
    t!(batch[0].result());
    check_errno!(batch[1].result(), libc::ENOENT);
    check_errno!(batch[2].result(), libc::EINVAL);
    check_errno!(q.modify_one(Request::timer(9, ZERO, None)), libc::ENOENT);
    // The modified timer was re-armed from now with the new cookie, and the
    // failed entry changed nothing.
    let mut ev = Events::with_capacity(4);
    check!(t!(q.wait(&mut ev, 1, Some(LONG))) == 1);
    let e = &ev.as_slice()[0];
    check!(e.id() == 1 && e.user_data() == 2, "{:?}", e.raw());
    Ok(())
}

fn bad_type_is_einval() -> TestResult {
    let q = t!(Queue::new());
    for type_ in [0, 6, 99, u32::MAX] {
        let req = Request::from_raw(sys::Ukevent {
            type_,
            ..*Request::timer(1, ZERO, None).raw()
        });
        check_errno!(q.add_one(req), libc::EINVAL);
    }
    // Unknown request flags and poll bits are refused as well.
    let (r, _w) = t!(pipe());
    let epollet = Request::from_raw(sys::Ukevent {
        event: poll::IN | (1 << 31),
        ..*Request::poll(r.as_fd(), poll::IN).raw()
    });
    check_errno!(q.add_one(epollet), libc::EINVAL);
    let flags = Request::from_raw(sys::Ukevent {
        req_flags: 0x100,
        ..*Request::timer(1, ZERO, None).raw()
    });
    check_errno!(q.add_one(flags), libc::EINVAL);
    let abstime_poll = Request::from_raw(sys::Ukevent {
        req_flags: sys::KEVENT_REQ_ABSTIME,
        ..*Request::poll(r.as_fd(), poll::IN).raw()
    });
    check_errno!(q.add_one(abstime_poll), libc::EINVAL);
    Ok(())
}

fn timer_fires_with_count() -> TestResult {
    let q = t!(Queue::new());
    let ms = Duration::from_millis(1);
    t!(q.add_one(Request::timer(1, ms, Some(ms)).user_data(11)));
    thread::sleep(SHORT);
    let mut ev = Events::with_capacity(4);
    check!(t!(q.wait(&mut ev, 1, Some(LONG))) == 1);
    let e = &ev.as_slice()[0];
    check!(e.kind() == Some(Kind::Timer) && e.id() == 1 && e.events() == TIMER_FIRED);
    check!(e.data() >= 2, "{} expirations in {SHORT:?}", e.data());
    check!(t!(e.result()) == e.data());
    t!(q.remove_one(Kind::Timer, 1));

    // Without a period: fires once, then stays registered and silent.
    t!(q.add_one(Request::timer(2, ms, None)));
    check!(t!(q.wait(&mut ev, 1, Some(LONG))) == 1);
    check!(ev.as_slice()[0].id() == 2 && ev.as_slice()[0].data() == 1);
    check!(t!(q.wait(&mut ev, 1, Some(SHORT))) == 0);
    t!(q.remove_one(Kind::Timer, 2));
    Ok(())
}

fn timer_at_in_the_past_fires_at_once() -> TestResult {
    let q = t!(Queue::new());
    let now = t!(monotonic_now());
    t!(q.add_one(Request::timer_at(1, ZERO, None)));
    t!(q.add_one(Request::timer_at(2, now, None)));
    let mut ev = Events::with_capacity(4);
    let start = Instant::now();
    check!(t!(q.wait(&mut ev, 2, Some(LONG))) == 2);
    check!(start.elapsed() < LONG / 2);
    // An absolute deadline in the future fires no earlier than it.
    let deadline = t!(monotonic_now()) + Duration::from_millis(20);
    t!(q.add_one(Request::timer_at(3, deadline, None)));
    check!(t!(q.wait(&mut ev, 1, Some(LONG))) == 1);
    check!(t!(monotonic_now()) >= deadline);
    Ok(())
}

fn poll_pipe_level_triggered() -> TestResult {
    let q = t!(Queue::new());
    let (mut r, mut w) = t!(pipe());
    t!(q.add_one(Request::poll(r.as_fd(), poll::IN).user_data(7)));
    let mut ev = Events::with_capacity(4);
    check!(t!(q.wait(&mut ev, 0, Some(ZERO))) == 0);
    t!(w.write_all(b"x"));
    check!(t!(q.wait(&mut ev, 1, Some(LONG))) == 1);
    let e = &ev.as_slice()[0];
    check!(e.kind() == Some(Kind::Poll) && e.id() == raw_id(&r) && e.events() == poll::IN);
    check!(e.user_data() == 7 && e.data() == 0);
    // Still readable: reported again.
    check!(t!(q.wait(&mut ev, 1, Some(ZERO))) == 1);
    check!(t!(q.wait(&mut ev, 1, Some(ZERO))) == 1);
    let mut buf = [0u8; 8];
    check!(t!(r.read(&mut buf)) == 1);
    check!(t!(q.wait(&mut ev, 0, Some(ZERO))) == 0);
    check!(ev.is_empty());
    Ok(())
}

fn poll_pipe_edge_triggered() -> TestResult {
    let q = t!(Queue::new());
    let (r, mut w) = t!(pipe());
    t!(q.add_one(Request::poll(r.as_fd(), poll::IN).edge()));
    let mut ev = Events::with_capacity(4);
    t!(w.write_all(b"x"));
    check!(t!(q.wait(&mut ev, 1, Some(LONG))) == 1);
    check!(ev.as_slice()[0].req_flags() == sys::KEVENT_REQ_ET);
    // Still readable, but no new activity.
    check!(t!(q.wait(&mut ev, 0, Some(ZERO))) == 0);
    // New activity: reported once more.
    t!(w.write_all(b"y"));
    check!(t!(q.wait(&mut ev, 1, Some(LONG))) == 1);
    check!(t!(q.wait(&mut ev, 0, Some(ZERO))) == 0);
    t!(q.remove_one(Kind::Poll, raw_id(&r)));
    Ok(())
}

fn poll_pipe_oneshot() -> TestResult {
    let q = t!(Queue::new());
    let (r, mut w) = t!(pipe());
    t!(q.add_one(Request::poll(r.as_fd(), poll::IN).oneshot()));
    let mut ev = Events::with_capacity(4);
    t!(w.write_all(b"x"));
    check!(t!(q.wait(&mut ev, 1, Some(LONG))) == 1);
    t!(w.write_all(b"y"));
    check!(t!(q.wait(&mut ev, 1, Some(SHORT))) == 0);
    // Removed after its first delivery.
    check_errno!(q.remove_one(Kind::Poll, raw_id(&r)), libc::ENOENT);
    Ok(())
}

fn wait_timeout_returns_zero() -> TestResult {
    let q = t!(Queue::new());
    let mut ev = Events::with_capacity(4);
    let start = Instant::now();
    check!(t!(q.wait(&mut ev, 1, Some(SHORT))) == 0);
    let took = start.elapsed();
    check!(
        took >= SHORT - Duration::from_millis(1),
        "returned after {took:?}"
    );
    check!(ev.is_empty());
    Ok(())
}

fn wait_deadline() -> TestResult {
    let q = t!(Queue::new());
    let mut ev = Events::with_capacity(4);
    let start = Instant::now();
    check!(t!(q.wait_deadline(&mut ev, 1, ZERO)) == 0);
    let past = t!(monotonic_now()).saturating_sub(Duration::from_millis(5));
    check!(t!(q.wait_deadline(&mut ev, 1, past)) == 0);
    check!(start.elapsed() < LONG / 2);
    let deadline = t!(monotonic_now()) + Duration::from_millis(20);
    check!(t!(q.wait_deadline(&mut ev, 1, deadline)) == 0);
    check!(t!(monotonic_now()) >= deadline);
    Ok(())
}

fn user_data_round_trip() -> TestResult {
    let q = t!(Queue::new());
    let cookie = 0xdead_beef_cafe_f00d;
    t!(q.add_one(
        Request::timer(0xffff_ffff_ffff_fff0, ZERO, None)
            .user_data(cookie)
            .oneshot()
            .wakeup_all()
    ));
    let mut ev = Events::with_capacity(4);
    check!(t!(q.wait(&mut ev, 1, Some(LONG))) == 1);
    let e = &ev.as_slice()[0];
    check!(e.user_data() == cookie, "{:#x}", e.user_data());
    check!(e.id() == 0xffff_ffff_ffff_fff0);
    check!(e.kind() == Some(Kind::Timer));
    check!(e.req_flags() == sys::KEVENT_REQ_ONESHOT | sys::KEVENT_REQ_WAKEUP_ALL);
    check!(!e.is_broken() && e.raw().ret_flags == sys::KEVENT_RET_DONE);
    check!(t!(e.result()) == 1);
    check!(e.raw().arg == [0, 0] && e.raw().arg_fd == 0 && e.raw().reserved == 0);
    Ok(())
}

fn batch_limit() -> TestResult {
    let q = t!(Queue::new());
    let mut batch = vec![Request::key(Kind::Timer, 1); MAX_BATCH + 1];
    check_errno!(q.remove(&mut batch), libc::E2BIG);
    check_errno!(q.add(&mut batch), libc::E2BIG);
    check!(batch.iter().all(|r| r.result().is_err()));
    let mut batch = vec![Request::key(Kind::Timer, 1); MAX_BATCH];
    check!(t!(q.remove(&mut batch)) == 0);
    for req in &batch {
        check_errno!(req.result(), libc::ENOENT);
    }
    Ok(())
}

fn events_reuse() -> TestResult {
    let q = t!(Queue::new());
    let mut batch = [1, 2, 3].map(|id| Request::timer_at(id, ZERO, None).user_data(id * 10));
    check!(t!(q.add(&mut batch)) == 3);
    let mut ev = Events::with_capacity(2);
    check!(t!(q.wait(&mut ev, 2, Some(LONG))) == 2);
    check!(ev.len() == 2 && ev.capacity() == 2);
    let mut seen: Vec<u64> = ev.iter().map(|e| e.id()).collect();
    check!(t!(q.wait(&mut ev, 1, Some(LONG))) == 1);
    check!(ev.len() == 1, "not cleared: {}", ev.len());
    seen.extend((&ev).into_iter().map(|e| e.id()));
    seen.sort_unstable();
    check!(seen == [1, 2, 3], "{seen:?}");
    check!(ev.iter().all(|e| e.user_data() == e.id() * 10));
    check!(t!(q.wait(&mut ev, 0, Some(ZERO))) == 0);
    check!(ev.is_empty());
    Ok(())
}

fn min_waits_for_several() -> TestResult {
    let q = t!(Queue::new());
    let start = Instant::now();
    t!(q.add_one(Request::timer(1, Duration::from_millis(1), None)));
    t!(q.add_one(Request::timer(2, Duration::from_millis(20), None)));
    let mut ev = Events::with_capacity(4);
    check!(t!(q.wait(&mut ev, 2, Some(LONG))) == 2);
    let took = start.elapsed();
    check!(took >= Duration::from_millis(20), "returned after {took:?}");
    Ok(())
}

fn wait_min_above_capacity() -> TestResult {
    let q = t!(Queue::new());
    let mut ev = Events::with_capacity(2);
    let e = q.wait(&mut ev, 3, None).unwrap_err();
    check!(e.kind() == io::ErrorKind::InvalidInput && e.raw_os_error().is_none());
    Ok(())
}

fn not_a_queue_is_einval() -> TestResult {
    let (r, _w) = t!(pipe());
    let q = Queue::from(OwnedFd::from(r));
    let mut ev = Events::with_capacity(1);
    check_errno!(q.wait(&mut ev, 0, Some(ZERO)), libc::EINVAL);
    check_errno!(q.add(&mut [Request::timer(1, ZERO, None)]), libc::EINVAL);
    Ok(())
}

fn wakeup_across_threads() -> TestResult {
    let q = t!(Queue::new());
    let (r, mut w) = t!(pipe());
    t!(q.add_one(Request::poll(r.as_fd(), poll::IN).edge()));
    let waiter = thread::scope(|s| {
        let h = s.spawn(|| {
            let mut ev = Events::with_capacity(4);
            let start = Instant::now();
            let n = q.wait(&mut ev, 1, Some(Duration::from_secs(5)));
            (
                n,
                start.elapsed(),
                ev.iter().map(|e| e.id()).collect::<Vec<_>>(),
            )
        });
        thread::sleep(SHORT);
        let wrote = w.write_all(b"x");
        (wrote, h.join())
    });
    let (wrote, joined) = waiter;
    t!(wrote);
    let (n, took, ids) = joined.map_err(|_| "the waiter panicked".to_string())?;
    check!(t!(n) == 1, "woken with {ids:?}");
    check!(ids == [raw_id(&r)]);
    check!(took < Duration::from_secs(4), "woken after {took:?}");
    Ok(())
}

/// How long an AIO test waits for a completion before it fails.
const AIO_WAIT: Duration = Duration::from_secs(10);

/// A buffer lent to the kernel by an AIO request. It is leaked, so that a
/// test that fails (returns early) while requests are in flight never frees
/// memory the kernel may still write: the contract of `Request::aio_send`
/// and `Request::aio_recv` holds whatever happens.
fn lent(len: usize, fill: impl Fn(usize) -> u8) -> &'static mut [u8] {
    Box::leak((0..len).map(fill).collect::<Vec<u8>>().into_boxed_slice())
}

fn pattern(seed: usize) -> impl Fn(usize) -> u8 {
    move |i| (i.wrapping_mul(31).wrapping_add(seed * 7 + i / 251)) as u8
}

/// Collects exactly `n` events within `AIO_WAIT`, failing on a timeout or
/// an extra event.
fn collect(q: &Queue, n: usize) -> Result<Vec<Event>, String> {
    collect_by(n, |ev, left| q.wait(ev, 1, Some(left)))
}

/// Calls `wait(events, time left)` until `n` events came, within `AIO_WAIT`.
fn collect_by(
    n: usize,
    mut wait: impl FnMut(&mut Events, Duration) -> io::Result<usize>,
) -> Result<Vec<Event>, String> {
    let mut got = Vec::new();
    let mut ev = Events::with_capacity(64);
    let deadline = Instant::now() + AIO_WAIT;
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "{} of {n} completions after {AIO_WAIT:?}",
                got.len()
            ));
        }
        wait(&mut ev, left).map_err(|e| format!("wait: {e}"))?;
        got.extend(ev.iter().copied());
    }
    if got.len() > n {
        return Err(format!("{} completions, expected {n}", got.len()));
    }
    Ok(got)
}

/// The one event of `events` with this `user_data`.
fn by_cookie(events: &[Event], user_data: u64) -> Result<Event, String> {
    let mut it = events.iter().filter(|e| e.user_data() == user_data);
    match (it.next(), it.next()) {
        (Some(e), None) => Ok(*e),
        _ => Err(format!("not exactly one event for {user_data}: {events:?}")),
    }
}

fn aio_unix_round_trip() -> TestResult {
    let q = t!(Queue::new());
    let (a, b) = t!(UnixStream::pair());
    const LEN: usize = 256 * 1024;
    let out = lent(LEN, pattern(1));
    let input = lent(LEN, |_| 0);
    // SAFETY: both buffers are leaked (see `lent`) and not touched until
    // their completions are collected.
    let mut batch = unsafe {
        [
            Request::aio_recv(b.as_fd(), input, true, 10),
            Request::aio_send(a.as_fd(), out, 20),
        ]
    };
    check!(t!(q.add(&mut batch)) == 2);
    let evs = collect(&q, 2)?;
    let recv = by_cookie(&evs, 10)?;
    let send = by_cookie(&evs, 20)?;
    check!(
        recv.kind() == Some(Kind::Aio) && recv.id() == raw_id(&b),
        "{:?}",
        recv.raw()
    );
    check!(
        recv.events() == AIO_RECV && !recv.is_broken(),
        "{:?}",
        recv.raw()
    );
    check!(t!(recv.result()) == LEN as i64, "{:?}", recv.raw());
    check!(
        send.kind() == Some(Kind::Aio) && send.id() == raw_id(&a),
        "{:?}",
        send.raw()
    );
    check!(
        send.events() == AIO_SEND && t!(send.result()) == LEN as i64,
        "{:?}",
        send.raw()
    );
    check!(input[..] == out[..], "the data differs");
    // Oneshot: the requests are gone.
    check_errno!(q.remove_aio(raw_id(&b), 10), libc::ENOENT);
    check!(t!(q.wait(&mut Events::with_capacity(4), 0, Some(ZERO))) == 0);
    Ok(())
}

/// Waits on an `AioQueue` until `n` events came.
fn collect_aio(q: &AioQueue, n: usize) -> Result<Vec<Event>, String> {
    collect_by(n, |ev, left| q.wait(ev, 1, Some(left)))
}

/// An event naming the AIO request `(id, user_data)`, built by hand.
fn forged(id: u64, user_data: u64) -> Event {
    Event::from_raw(sys::Ukevent {
        type_: sys::KEVENT_TYPE_AIO,
        id,
        user_data,
        ret_flags: sys::KEVENT_RET_DONE,
        ..sys::Ukevent::default()
    })
}

fn aio_queue_round_trip() -> TestResult {
    let q = t!(AioQueue::new());
    let (a, b) = t!(UnixStream::pair());
    const LEN: usize = 256 * 1024;
    let out: Vec<u8> = (0..LEN).map(pattern(3)).collect();
    check!(q.recv(b.as_fd(), vec![0; LEN], true, 10).is_ok());
    check!(q.send(a.as_fd(), out.clone(), 20).is_ok());
    // The same (socket, user_data) again: refused, the buffer given back.
    let again = q.send(a.as_fd(), vec![7; 3], 20);
    check!(
        matches!(&again, Err(e) if e.error.raw_os_error() == Some(libc::EEXIST) && e.buf == [7; 3]),
        "{again:?}"
    );
    let evs = collect_aio(&q, 2)?;
    let recv = by_cookie(&evs, 10)?;
    let send = by_cookie(&evs, 20)?;
    check!(t!(recv.result()) == LEN as i64, "{:?}", recv.raw());
    check!(t!(send.result()) == LEN as i64, "{:?}", send.raw());
    let got = q.take(&recv).ok_or("no receive buffer")?;
    check!(got == out, "the data differs");
    check!(q.take(&send).ok_or("no send buffer")? == out);
    // Taken once.
    check!(q.take(&recv).is_none() && q.take(&send).is_none());
    // A bad buffer length is the entry's error, the buffer given back.
    let empty = q.recv(b.as_fd(), Vec::new(), false, 30);
    check!(
        matches!(&empty, Err(e) if e.error.raw_os_error() == Some(libc::EINVAL)),
        "{empty:?}"
    );
    Ok(())
}

fn aio_queue_cancel_and_drop() -> TestResult {
    let (mut a, mut b) = t!(UnixStream::pair());
    {
        let q = t!(AioQueue::new());
        check!(q.recv(b.as_fd(), vec![0; 64], false, 1).is_ok());
        check!(q.recv(b.as_fd(), vec![0; 64], false, 2).is_ok());
        // A forged event takes nothing back: the request is in flight.
        check!(q.take(&forged(raw_id(&b), 1)).is_none());
        // Cancelled: the buffer can be taken at once, and the event comes.
        t!(q.cancel(b.as_fd(), 1));
        check!(q.take(&forged(raw_id(&b), 1)).map(|v| v.len()) == Some(64));
        let evs = collect_aio(&q, 1)?;
        let ev = by_cookie(&evs, 1)?;
        check!(
            ev.is_broken() && ev.data() == -(libc::ECANCELED as i64),
            "{:?}",
            ev.raw()
        );
        // Dropped with request 2 in flight: it is cancelled first.
    }
    // Nothing consumes what is written now: it is all still there to read.
    t!(a.write_all(b"after"));
    let mut got = [0u8; 5];
    t!(b.read_exact(&mut got));
    check!(&got == b"after");
    Ok(())
}

fn aio_recv_sees_eof_and_partial_data() -> TestResult {
    let q = t!(Queue::new());
    let (mut a, b) = t!(UnixStream::pair());
    let first = lent(100, |_| 0);
    let second = lent(100, |_| 0);
    // SAFETY: leaked buffers, read only after their completions.
    unsafe {
        t!(q.add_one(Request::aio_recv(b.as_fd(), first, false, 1)));
        t!(q.add_one(Request::aio_recv(b.as_fd(), second, false, 2)));
    }
    // Without WAITALL a receive completes with what arrived; the second
    // one, queued behind it, sees the end of file.
    t!(a.write_all(b"abc"));
    let evs = collect(&q, 1)?;
    check!(
        evs[0].user_data() == 1 && t!(evs[0].result()) == 3,
        "{:?}",
        evs[0].raw()
    );
    check!(&first[..3] == b"abc");
    t!(a.shutdown(Shutdown::Write));
    let evs = collect(&q, 1)?;
    check!(
        evs[0].user_data() == 2 && t!(evs[0].result()) == 0,
        "{:?}",
        evs[0].raw()
    );
    Ok(())
}

fn aio_cancel_pending_recv() -> TestResult {
    let q = t!(Queue::new());
    let (mut a, mut b) = t!(UnixStream::pair());
    let buf = lent(64, |_| 0xee);
    // SAFETY: leaked buffer, checked only after the ECANCELED event.
    t!(q.add_one(unsafe { Request::aio_recv(b.as_fd(), buf, false, 0xc0) }));
    check!(t!(q.wait(&mut Events::with_capacity(4), 0, Some(SHORT))) == 0);
    t!(q.remove_aio(raw_id(&b), 0xc0));
    // Delivered once, as cancelled.
    let evs = collect(&q, 1)?;
    let e = &evs[0];
    check!(
        e.kind() == Some(Kind::Aio) && e.user_data() == 0xc0,
        "{:?}",
        e.raw()
    );
    check!(e.is_broken(), "{:?}", e.raw());
    check_errno!(e.result(), libc::ECANCELED);
    check!(t!(q.wait(&mut Events::with_capacity(4), 0, Some(SHORT))) == 0);
    check_errno!(q.remove_aio(raw_id(&b), 0xc0), libc::ENOENT);
    // The cancelled request took no data and wrote nothing.
    t!(a.write_all(b"xyz"));
    t!(b.set_read_timeout(Some(LONG)));
    let mut got = [0u8; 8];
    check!(t!(b.read(&mut got)) == 3 && &got[..3] == b"xyz");
    check!(buf.iter().all(|&c| c == 0xee));
    Ok(())
}

fn aio_close_socket_cancels() -> TestResult {
    let q = t!(Queue::new());
    let (a, b) = t!(UnixStream::pair());
    let id = raw_id(&b);
    for ud in 1..=3 {
        let buf = lent(16, |_| 0);
        // SAFETY: leaked buffer.
        t!(q.add_one(unsafe { Request::aio_recv(b.as_fd(), buf, true, ud) }));
    }
    drop(b);
    let evs = collect(&q, 3)?;
    for ud in 1..=3 {
        let e = by_cookie(&evs, ud)?;
        check!(e.id() == id && e.is_broken(), "{:?}", e.raw());
        check_errno!(e.result(), libc::ECANCELED);
    }
    drop(a);
    Ok(())
}

fn aio_sendfile_from_a_file() -> TestResult {
    let q = t!(Queue::new());
    let (a, mut b) = t!(UnixStream::pair());
    let path = std::env::temp_dir().join(format!("kevent-rs-sendfile-{}", std::process::id()));
    let data: Vec<u8> = (0..10_000).map(pattern(3)).collect();
    t!(std::fs::write(&path, &data));
    let file = t!(std::fs::File::open(&path));
    let _ = std::fs::remove_file(&path);
    t!(b.set_read_timeout(Some(LONG)));
    // (offset, count, expected bytes)
    let cases = [
        (0, 10_000, 10_000),
        (1000, 5000, 5000),
        (9000, 5000, 1000),
        (10_000, 10, 0),
        (50_000, 10, 0),
    ];
    for (i, &(offset, count, want)) in cases.iter().enumerate() {
        let ud = 100 + i as u64;
        t!(q.add_one(Request::aio_sendfile(
            a.as_fd(),
            file.as_fd(),
            offset,
            count,
            ud
        )));
        let evs = collect(&q, 1)?;
        let e = &evs[0];
        check!(
            e.user_data() == ud && e.events() == AIO_SENDFILE,
            "{:?}",
            e.raw()
        );
        check!(t!(e.result()) == want as i64, "case {i}: {:?}", e.raw());
        let mut got = vec![0u8; want];
        t!(b.read_exact(&mut got));
        let start = offset as usize;
        // Past the end of the file nothing is sent, and there is nothing to compare.
        check!(
            want == 0 || got[..] == data[start..start + want],
            "case {i}: data differs"
        );
    }
    Ok(())
}

fn aio_bad_requests() -> TestResult {
    let q = t!(Queue::new());
    let (a, b) = t!(UnixStream::pair());
    let (r, _w) = t!(pipe());
    let buf = lent(32, |_| 0);
    // SAFETY: leaked buffer; the failing entries lend nothing.
    unsafe {
        // Not a socket; an empty buffer.
        check_errno!(
            q.add_one(Request::aio_recv(r.as_fd(), buf, false, 1)),
            libc::ENOTSOCK
        );
        check_errno!(
            q.add_one(Request::aio_recv(b.as_fd(), &mut [], false, 1)),
            libc::EINVAL
        );
        check_errno!(
            q.add_one(Request::aio_send(a.as_fd(), &[], 1)),
            libc::EINVAL
        );
        // A duplicate name.
        t!(q.add_one(Request::aio_recv(b.as_fd(), buf, false, 7)));
        let other = lent(32, |_| 0);
        check_errno!(
            q.add_one(Request::aio_recv(b.as_fd(), other, false, 7)),
            libc::EEXIST
        );
        // MODIFY of an AIO request.
        check_errno!(
            q.modify_one(Request::aio_recv(b.as_fd(), other, false, 7)),
            libc::EINVAL
        );
    }
    // A hand-built receive through the safe from_raw() names no memory.
    let raw = sys::Ukevent {
        id: raw_id(&b),
        type_: sys::KEVENT_TYPE_AIO,
        event: sys::KEVENT_AIO_RECV,
        user_data: 8,
        arg: [buf.as_ptr() as usize as u64, 32],
        ..Default::default()
    };
    check_errno!(q.add_one(Request::from_raw(raw)), libc::EINVAL);
    // The pending request is intact: cancel it.
    t!(q.remove_aio(raw_id(&b), 7));
    let evs = collect(&q, 1)?;
    check_errno!(evs[0].result(), libc::ECANCELED);
    Ok(())
}

/// Whether `poll()` says the queue is readable, without waiting.
fn poll_in(q: &Queue) -> Result<bool, String> {
    let mut pfd = libc::pollfd {
        fd: q.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    match unsafe { libc::poll(&mut pfd, 1, 0) } {
        0 => Ok(false),
        1 => Ok(pfd.revents & libc::POLLIN != 0),
        _ => Err(format!("poll: {}", io::Error::last_os_error())),
    }
}

/// The next event of the ring, waiting up to `LONG` with `Queue::wait`
/// (which returns as soon as the ring holds one); an event that takes the
/// ready list instead fails the test.
fn ring_next(q: &Queue, ring: &Ring) -> Result<Event, String> {
    let deadline = Instant::now() + LONG;
    let mut ev = Events::with_capacity(4);
    loop {
        if let Some(e) = ring.pop() {
            return Ok(e);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no event in the ring after {LONG:?}"));
        }
        match q.wait(&mut ev, 1, Some(left)) {
            Ok(0) => {}
            Ok(_) => return Err(format!("event on the ready list: {:?}", ev.as_slice())),
            Err(e) => return Err(format!("wait: {e}")),
        }
    }
}

/// [`ring_next`], failing the test with the location.
macro_rules! ring_next {
    ($q:expr, $ring:expr) => {
        match ring_next($q, $ring) {
            Ok(e) => e,
            Err(e) => return Err(format!("line {}: {e}", line!())),
        }
    };
}

/// `KEVENT_CTL_INIT` with `KEVENT_RING` and hand-made parameters.
fn raw_ring_init(params: sys::KeventRingParams) -> io::Result<()> {
    let mut params = params;
    // SAFETY: KEVENT_CTL_INIT with KEVENT_RING reads one kevent_ring_params
    // at the pointer, alive for the call.
    let ret = unsafe {
        sys::kevent_ctl(
            -1,
            sys::KEVENT_CTL_INIT,
            sys::KEVENT_CLOEXEC | sys::KEVENT_RING,
            (&mut params as *mut sys::KeventRingParams).cast(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(ret as RawFd) });
    Ok(())
}

fn ring_bad_params_einval() -> TestResult {
    for entries in [
        0,
        1,
        3,
        6,
        100,
        sys::KEVENT_RING_MAX_ENTRIES + 1,
        1 << 17,
        u32::MAX,
    ] {
        check_errno!(Queue::with_ring(QueueFlags::CLOEXEC, entries), libc::EINVAL);
    }
    let good = sys::KeventRingParams {
        entries: 8,
        ..Default::default()
    };
    t!(raw_ring_init(good));
    check_errno!(
        raw_ring_init(sys::KeventRingParams { flags: 1, ..good }),
        libc::EINVAL
    );
    for i in 0..3 {
        let mut p = good;
        p.reserved[i] = 1;
        check_errno!(raw_ring_init(p), libc::EINVAL);
    }
    for entries in [2, 4, sys::KEVENT_RING_MAX_ENTRIES] {
        let (q, ring) = t!(Queue::with_ring(QueueFlags::NONBLOCK, entries));
        check!(ring.entries() == entries && ring.overflow() == 0);
        check!(ring.pop().is_none());
        let fd = q.as_raw_fd();
        check!(fd_flags(fd) & libc::FD_CLOEXEC == 0 && fl_flags(fd) & libc::O_NONBLOCK != 0);
    }
    Ok(())
}

fn ring_map() -> TestResult {
    // A queue without a ring has nothing to map.
    let plain = t!(Queue::new());
    check_errno!(Ring::map(&plain, 8), libc::ENODEV);
    // Not a queue: refused before the mmap().
    let (r, _w) = t!(pipe());
    check_errno!(Ring::map(&Queue::from(OwnedFd::from(r)), 8), libc::EINVAL);

    let (q, ring) = t!(Queue::with_ring(QueueFlags::CLOEXEC, 8));
    // The size must be the ring's: smaller or larger within the same pages
    // is refused by the header check, beyond them by the kernel.
    check_errno!(Ring::map(&q, 4), libc::EINVAL);
    check_errno!(Ring::map(&q, 16), libc::EINVAL);
    check!(Ring::map(&q, 1024).is_err());
    // A second mapping of the same ring: an event taken through one is gone
    // from the other.
    let again = t!(Ring::map(&q, 8));
    check!(again.entries() == 8);
    t!(q.add_one(Request::timer_at(1, ZERO, None).user_data(4)));
    let mut ev = Events::with_capacity(4);
    check!(t!(q.wait(&mut ev, 1, Some(LONG))) == 0);
    let e = again.pop().ok_or("no event through the second mapping")?;
    check!(e.user_data() == 4 && e.id() == 1, "{:?}", e.raw());
    check!(ring.pop().is_none() && again.pop().is_none());
    Ok(())
}

fn ring_socket_edge() -> TestResult {
    let (q, ring) = t!(Queue::with_ring(QueueFlags::CLOEXEC, 8));
    let (a, mut b) = t!(UnixStream::pair());
    t!(q.add_one(Request::socket(a.as_fd(), SOCKET_RECV).edge().user_data(5)));
    check!(!t!(poll_in(&q)));
    t!(b.write_all(b"x"));
    // The event is in the ring: kevent_get_events() returns at once with
    // nothing from the ready list, as often as asked, and poll() says POLLIN.
    let mut ev = Events::with_capacity(4);
    let start = Instant::now();
    check!(t!(q.wait(&mut ev, 1, Some(LONG))) == 0);
    check!(t!(q.wait(&mut ev, 1, Some(LONG))) == 0);
    check!(start.elapsed() < LONG / 2, "slept {:?}", start.elapsed());
    check!(ev.is_empty());
    check!(t!(poll_in(&q)));
    let e = ring.pop().ok_or("no event in the ring")?;
    check!(
        e.kind() == Some(Kind::Socket) && e.id() == raw_id(&a),
        "{:?}",
        e.raw()
    );
    check!(
        e.events() & SOCKET_RECV != 0 && e.user_data() == 5,
        "{:?}",
        e.raw()
    );
    check!(e.req_flags() == sys::KEVENT_REQ_ET, "{:?}", e.raw());
    check!(!e.is_broken() && e.raw().ret_flags == sys::KEVENT_RET_DONE);
    check!(e.raw().arg == [0, 0] && e.raw().arg_fd == 0);
    check!(ring.pop().is_none());
    // Empty again: nothing to report, and the wait sleeps.
    check!(!t!(poll_in(&q)));
    check!(t!(q.wait(&mut ev, 1, Some(SHORT))) == 0);
    // New data is new activity: one more event, in the ring.
    t!(b.write_all(b"y"));
    let e = ring_next!(&q, &ring);
    check!(e.user_data() == 5 && e.events() & SOCKET_RECV != 0);
    check!(ring.pop().is_none() && ring.overflow() == 0);
    // Still readable, but edge triggered: nothing more.
    check!(t!(q.wait(&mut ev, 1, Some(SHORT))) == 0);
    check!(ring.pop().is_none());
    // An edge-triggered kevent stays registered.
    t!(q.remove_one(Kind::Socket, raw_id(&a)));
    Ok(())
}

fn ring_level_triggered_takes_the_ready_list() -> TestResult {
    let (q, ring) = t!(Queue::with_ring(QueueFlags::CLOEXEC, 8));
    let (a, mut b) = t!(UnixStream::pair());
    let (r, mut w) = t!(pipe());
    let ms = Duration::from_millis(1);
    let mut batch = [
        // Level triggered socket, edge-triggered poll source, periodic
        // timer: each needs something at delivery.
        Request::socket(a.as_fd(), SOCKET_RECV).user_data(1),
        Request::poll(r.as_fd(), poll::IN).edge().user_data(2),
        Request::timer(3, ms, Some(ms)).user_data(3),
    ];
    check!(t!(q.add(&mut batch)) == 3);
    t!(b.write_all(b"x"));
    t!(w.write_all(b"x"));
    let mut got = Vec::new();
    let mut ev = Events::with_capacity(8);
    let deadline = Instant::now() + LONG;
    while got.len() < 3 && Instant::now() < deadline {
        t!(q.wait(&mut ev, 1, Some(SHORT)));
        for e in &ev {
            if !got.contains(&e.user_data()) {
                got.push(e.user_data());
            }
        }
    }
    got.sort_unstable();
    check!(got == [1, 2, 3], "{got:?}");
    check!(ring.pop().is_none() && ring.overflow() == 0);
    t!(q.remove_one(Kind::Timer, 3));
    // Level triggered: reported again while readable.
    check!(t!(q.wait(&mut ev, 1, Some(ZERO))) >= 1);
    check!(ev.iter().any(|e| e.user_data() == 1));
    check!(ring.pop().is_none());
    Ok(())
}

fn ring_oneshot_leaves_the_queue() -> TestResult {
    let (q, ring) = t!(Queue::with_ring(QueueFlags::CLOEXEC, 4));
    let ms = Duration::from_millis(1);
    t!(q.add_one(Request::timer(1, ms, None).oneshot().user_data(9)));
    let e = ring_next!(&q, &ring);
    check!(
        e.kind() == Some(Kind::Timer) && e.id() == 1,
        "{:?}",
        e.raw()
    );
    check!(
        e.events() == TIMER_FIRED && t!(e.result()) == 1,
        "{:?}",
        e.raw()
    );
    check!(e.user_data() == 9 && e.req_flags() == sys::KEVENT_REQ_ONESHOT);
    // Written into the ring, it left the queue: the key is free.
    check_errno!(q.remove_one(Kind::Timer, 1), libc::ENOENT);
    t!(q.add_one(Request::timer(1, ms, None).oneshot().user_data(10)));
    let e = ring_next!(&q, &ring);
    check!(e.user_data() == 10);
    // Free at the next kevent_ctl() even if nobody took the event yet.
    t!(q.add_one(Request::timer_at(1, ZERO, None).oneshot().user_data(11)));
    let e = ring_next!(&q, &ring);
    check!(e.user_data() == 11);
    t!(q.add_one(Request::timer_at(1, ZERO, None).oneshot().user_data(12)));
    t!(q.add_one(Request::timer_at(1, ZERO, None).oneshot().user_data(13)));
    let mut uds = vec![ring_next!(&q, &ring).user_data()];
    uds.push(ring_next!(&q, &ring).user_data());
    check!(uds == [12, 13], "{uds:?}");
    // A timer that is not periodic nor oneshot: into the ring, and it stays.
    t!(q.add_one(Request::timer(2, ms, None).user_data(14)));
    let e = ring_next!(&q, &ring);
    check!(e.user_data() == 14 && e.req_flags() == 0);
    t!(q.remove_one(Kind::Timer, 2));
    // A oneshot socket kevent: the same.
    let (a, mut b) = t!(UnixStream::pair());
    t!(q.add_one(
        Request::socket(a.as_fd(), SOCKET_RECV)
            .oneshot()
            .user_data(15)
    ));
    t!(b.write_all(b"x"));
    let e = ring_next!(&q, &ring);
    check!(e.user_data() == 15 && e.kind() == Some(Kind::Socket));
    check_errno!(q.remove_one(Kind::Socket, raw_id(&a)), libc::ENOENT);
    check!(ring.pop().is_none() && ring.overflow() == 0);
    Ok(())
}

fn ring_overflow_takes_the_ready_list() -> TestResult {
    let (q, ring) = t!(Queue::with_ring(QueueFlags::CLOEXEC, 2));
    let mut batch = [1, 2, 3, 4, 5].map(|id| Request::timer_at(id, ZERO, None).user_data(id));
    check!(t!(q.add(&mut batch)) == 5);
    // All five fired with nobody taking them: two in the ring, three on
    // the ready list.
    thread::sleep(SHORT);
    let mut got: Vec<u64> = ring.drain().map(|e| e.user_data()).collect();
    check!(got.len() == 2, "{got:?} in the ring");
    check!(ring.overflow() == 3, "overflow {}", ring.overflow());
    let mut ev = Events::with_capacity(8);
    check!(t!(q.wait(&mut ev, 1, Some(ZERO))) == 3);
    got.extend(ev.iter().map(|e| e.user_data()));
    got.sort_unstable();
    check!(got == [1, 2, 3, 4, 5], "{got:?}");
    check!(ev.iter().all(|e| e.data() == 1 && !e.is_broken()));
    check!(t!(q.wait(&mut ev, 0, Some(ZERO))) == 0 && ring.pop().is_none());
    Ok(())
}

fn ring_outlives_its_queue() -> TestResult {
    let (q, ring) = t!(Queue::with_ring(QueueFlags::CLOEXEC, 4));
    t!(q.add_one(Request::timer_at(1, ZERO, None).user_data(3)));
    check!(t!(q.wait(&mut Events::with_capacity(1), 1, Some(LONG))) == 0);
    drop(q);
    let e = ring.pop().ok_or("no event after the queue was closed")?;
    check!(e.user_data() == 3 && e.id() == 1);
    check!(ring.pop().is_none());
    Ok(())
}

fn ring_aio_completion() -> TestResult {
    let (q, ring) = t!(Queue::with_ring(QueueFlags::CLOEXEC, 8));
    let (a, mut b) = t!(UnixStream::pair());
    const LEN: usize = 1000;
    let out = lent(LEN, pattern(3));
    // SAFETY: the buffer is leaked (see `lent`) and never written.
    t!(q.add_one(unsafe { Request::aio_send(a.as_fd(), out, 7) }));
    let e = ring_next!(&q, &ring);
    check!(
        e.kind() == Some(Kind::Aio) && e.id() == raw_id(&a),
        "{:?}",
        e.raw()
    );
    check!(
        e.events() == AIO_SEND && e.user_data() == 7,
        "{:?}",
        e.raw()
    );
    check!(t!(e.result()) == LEN as i64, "{:?}", e.raw());
    let mut input = vec![0u8; LEN];
    t!(b.read_exact(&mut input));
    check!(input[..] == out[..], "the data differs");
    check_errno!(q.remove_aio(raw_id(&a), 7), libc::ENOENT);
    Ok(())
}

fn ring_two_consumer_threads() -> TestResult {
    // 400 timers over 40 ms, taken by two threads from a ring of 64 (what
    // finds it full comes from the ready list): each exactly once.
    const N: u64 = 400;
    let (q, ring) = t!(Queue::with_ring(QueueFlags::CLOEXEC, 64));
    let base = t!(monotonic_now());
    let mut batch: Vec<Request> = (0..N)
        .map(|i| Request::timer_at(i, base + Duration::from_micros(100 * i), None).user_data(i))
        .collect();
    check!(t!(q.add(&mut batch)) == N as usize);
    let taken = std::sync::atomic::AtomicU64::new(0);
    let deadline = Instant::now() + AIO_WAIT;
    let per_thread: Vec<io::Result<(Vec<u64>, usize)>> = thread::scope(|s| {
        let consumer = || {
            let mut got = Vec::new();
            let mut from_list = 0;
            let mut ev = Events::with_capacity(16);
            while taken.load(std::sync::atomic::Ordering::Relaxed) < N && Instant::now() < deadline
            {
                if let Some(e) = ring.pop() {
                    got.push(e.user_data());
                    taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    continue;
                }
                q.wait(&mut ev, 1, Some(SHORT))?;
                for e in &ev {
                    got.push(e.user_data());
                    from_list += 1;
                    taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Ok((got, from_list))
        };
        let h = [s.spawn(consumer), s.spawn(consumer)];
        h.map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(io::Error::other("panicked")))
        })
        .into_iter()
        .collect()
    });
    let mut all = Vec::new();
    let mut from_list = 0;
    for r in per_thread {
        let (got, n) = t!(r);
        all.extend(got);
        from_list += n;
    }
    all.sort_unstable();
    check!(all.len() as u64 == N, "{} of {N} events", all.len());
    check!(all.iter().copied().eq(0..N), "some taken twice or lost");
    check!(
        from_list as u64 == ring.overflow(),
        "{from_list} from the ready list, overflow {}",
        ring.overflow()
    );
    Ok(())
}

const TESTS: &[Test] = &[
    ("queue_create_close", queue_create_close),
    ("queue_flags", queue_flags),
    ("empty_batch", empty_batch),
    ("add_batch_per_entry_results", add_batch_per_entry_results),
    (
        "remove_batch_per_entry_results",
        remove_batch_per_entry_results,
    ),
    (
        "modify_batch_per_entry_results",
        modify_batch_per_entry_results,
    ),
    ("bad_type_is_einval", bad_type_is_einval),
    ("timer_fires_with_count", timer_fires_with_count),
    (
        "timer_at_in_the_past_fires_at_once",
        timer_at_in_the_past_fires_at_once,
    ),
    ("poll_pipe_level_triggered", poll_pipe_level_triggered),
    ("poll_pipe_edge_triggered", poll_pipe_edge_triggered),
    ("poll_pipe_oneshot", poll_pipe_oneshot),
    ("wait_timeout_returns_zero", wait_timeout_returns_zero),
    ("wait_deadline", wait_deadline),
    ("user_data_round_trip", user_data_round_trip),
    ("batch_limit", batch_limit),
    ("events_reuse", events_reuse),
    ("min_waits_for_several", min_waits_for_several),
    ("wait_min_above_capacity", wait_min_above_capacity),
    ("not_a_queue_is_einval", not_a_queue_is_einval),
    ("wakeup_across_threads", wakeup_across_threads),
    ("aio_unix_round_trip", aio_unix_round_trip),
    (
        "aio_recv_sees_eof_and_partial_data",
        aio_recv_sees_eof_and_partial_data,
    ),
    ("aio_cancel_pending_recv", aio_cancel_pending_recv),
    ("aio_close_socket_cancels", aio_close_socket_cancels),
    ("aio_sendfile_from_a_file", aio_sendfile_from_a_file),
    ("aio_bad_requests", aio_bad_requests),
    ("aio_queue_round_trip", aio_queue_round_trip),
    ("aio_queue_cancel_and_drop", aio_queue_cancel_and_drop),
    ("ring_bad_params_einval", ring_bad_params_einval),
    ("ring_map", ring_map),
    ("ring_socket_edge", ring_socket_edge),
    (
        "ring_level_triggered_takes_the_ready_list",
        ring_level_triggered_takes_the_ready_list,
    ),
    (
        "ring_oneshot_leaves_the_queue",
        ring_oneshot_leaves_the_queue,
    ),
    (
        "ring_overflow_takes_the_ready_list",
        ring_overflow_takes_the_ready_list,
    ),
    ("ring_outlives_its_queue", ring_outlives_its_queue),
    ("ring_aio_completion", ring_aio_completion),
    ("ring_two_consumer_threads", ring_two_consumer_threads),
];

fn main() {
    println!("TAP version 13");
    match Queue::new() {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            println!("1..0 # SKIP no kevent syscalls");
            std::process::exit(4);
        }
        _ => {}
    }
    // Panics become TAP diagnostics, and fail only their test.
    panic::set_hook(Box::new(|info| {
        for line in info.to_string().lines() {
            println!("# {line}");
        }
    }));
    println!("1..{}", TESTS.len());
    let mut failed = 0;
    for (i, (name, test)) in TESTS.iter().enumerate() {
        let start = Instant::now();
        let result = panic::catch_unwind(*test).unwrap_or_else(|_| Err("panicked".into()));
        match result {
            Ok(()) => println!("ok {} - {name}", i + 1),
            Err(msg) => {
                failed += 1;
                println!("# {name}: {msg}");
                println!("not ok {} - {name}", i + 1);
            }
        }
        let took = start.elapsed();
        if took > Duration::from_millis(500) {
            println!("# {name} took {took:?}");
        }
    }
    println!("# {} passed, {failed} failed", TESTS.len() - failed);
    let _ = io::stdout().flush();
    std::process::exit(if failed > 0 { 1 } else { 0 });
}
