// SPDX-License-Identifier: GPL-2.0

//! Host unit tests: they make no kevent system call (except where said, and
//! then they accept any error), so they pass on a kernel without kevent.

use super::*;
use core::mem::{offset_of, size_of};
use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The uapi header, as the kernel build sees it.
const HEADER: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../include/uapi/linux/kevent.h"
));

/// This crate's `sys` module, as source text.
const SYS_SOURCE: &str = include_str!("sys.rs");

/// The C library, `tools/lib/kevent/libkevent.h`.
const LIBKEVENT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../lib/kevent/libkevent.h"
));

/// Parses a C integer literal (decimal or hex, optional `U`/`L` suffixes).
fn parse_c_int(text: &str) -> Option<u64> {
    let t = text.trim_end_matches(['u', 'U', 'l', 'L']);
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else {
        t.parse().ok()
    }
}

/// Every `#define KEVENT_* value` of the header, by name.
fn header_defines() -> BTreeMap<String, u64> {
    let mut defs = BTreeMap::new();
    for line in HEADER.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("#define") {
            continue;
        }
        let Some(name) = words.next() else { continue };
        // Function-like macros (KEVENT_RING_SIZE) are checked on their own.
        if !name.starts_with("KEVENT_") || name.contains('(') {
            continue;
        }
        let value = words.next().unwrap_or("");
        let value = value.trim_start_matches('(').trim_end_matches(')');
        let parsed = parse_c_int(value)
            .unwrap_or_else(|| panic!("cannot parse the value {value:?} of {name} in the header"));
        assert!(
            defs.insert(name.to_string(), parsed).is_none(),
            "{name} defined twice in the header"
        );
    }
    defs
}

#[test]
fn header_parser_sees_the_header() {
    let defs = header_defines();
    // A parser that finds nothing would make the comparisons below vacuous.
    assert!(
        defs.len() >= 25,
        "only {} KEVENT_* defines found",
        defs.len()
    );
    assert_eq!(defs.get("KEVENT_CTL_MAX_BATCH"), Some(&1024));
    assert_eq!(defs.get("KEVENT_SOCKET_ERR"), Some(&0x20));
    assert!(HEADER.contains("struct ukevent {"));
}

#[test]
fn every_header_constant_is_in_sys() {
    let ours: BTreeMap<&str, u32> = sys::ALL_CONSTS.iter().copied().collect();
    assert_eq!(ours.len(), sys::ALL_CONSTS.len(), "duplicate name in sys");
    for (name, value) in header_defines() {
        match ours.get(name.as_str()) {
            None => panic!("{name} (= {value:#x}) of the header is missing from sys"),
            Some(&v) => assert_eq!(
                u64::from(v),
                value,
                "{name}: sys has {v:#x}, the header {value:#x}"
            ),
        }
    }
}

#[test]
fn every_sys_constant_is_in_the_header() {
    let defs = header_defines();
    for &(name, value) in sys::ALL_CONSTS {
        match defs.get(name) {
            None => panic!("sys::{name} is not defined in the header"),
            Some(&v) => assert_eq!(
                v,
                u64::from(value),
                "sys::{name} = {value:#x}, header {v:#x}"
            ),
        }
    }
}

#[test]
fn every_kevent_const_of_sys_is_listed() {
    // A KEVENT_* constant defined outside the kevent_consts! macro would
    // escape the two comparisons above: find every one in the source.
    let listed: Vec<&str> = sys::ALL_CONSTS.iter().map(|&(n, _)| n).collect();
    let mut seen = 0;
    for line in SYS_SOURCE.lines() {
        let line = line.trim_start();
        let rest = line.strip_prefix("pub const ").unwrap_or(line);
        if !rest.starts_with("KEVENT_") {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            listed.contains(&name.as_str()),
            "sys::{name} is not in ALL_CONSTS"
        );
        seen += 1;
    }
    assert_eq!(seen, listed.len());
}

#[test]
fn syscall_numbers() {
    assert_eq!(sys::SYS_KEVENT_CTL, 473);
    assert_eq!(sys::SYS_KEVENT_GET_EVENTS, 474);
}

#[test]
fn ukevent_layout() {
    assert_eq!(size_of::<sys::Ukevent>(), 64);
    assert_eq!(core::mem::align_of::<sys::Ukevent>(), 8);
    assert_eq!(offset_of!(sys::Ukevent, user_data), 0);
    assert_eq!(offset_of!(sys::Ukevent, id), 8);
    assert_eq!(offset_of!(sys::Ukevent, type_), 16);
    assert_eq!(offset_of!(sys::Ukevent, event), 20);
    assert_eq!(offset_of!(sys::Ukevent, req_flags), 24);
    assert_eq!(offset_of!(sys::Ukevent, ret_flags), 28);
    assert_eq!(offset_of!(sys::Ukevent, ret_data), 32);
    assert_eq!(offset_of!(sys::Ukevent, arg), 40);
    assert_eq!(offset_of!(sys::Ukevent, arg_fd), 56);
    assert_eq!(offset_of!(sys::Ukevent, reserved), 60);
    // The wrappers are layout-compatible with the raw entry.
    assert_eq!(size_of::<Request>(), 64);
    assert_eq!(size_of::<Event>(), 64);
    assert_eq!(size_of::<libc::timespec>(), 16);
}

#[test]
fn ukevent_default_is_zero() {
    let uk = sys::Ukevent::default();
    // SAFETY: Ukevent is plain old data without padding; viewing its 64
    // bytes as a byte array is valid.
    let bytes: [u8; 64] = unsafe { core::mem::transmute(uk) };
    assert_eq!(bytes, [0; 64]);
}

#[test]
fn poll_bits_are_the_epoll_bits() {
    assert_eq!(poll::IN, libc::EPOLLIN as u32);
    assert_eq!(poll::PRI, libc::EPOLLPRI as u32);
    assert_eq!(poll::OUT, libc::EPOLLOUT as u32);
    assert_eq!(poll::ERR, libc::EPOLLERR as u32);
    assert_eq!(poll::HUP, libc::EPOLLHUP as u32);
    assert_eq!(poll::RDNORM, libc::EPOLLRDNORM as u32);
    assert_eq!(poll::RDBAND, libc::EPOLLRDBAND as u32);
    assert_eq!(poll::WRNORM, libc::EPOLLWRNORM as u32);
    assert_eq!(poll::WRBAND, libc::EPOLLWRBAND as u32);
    assert_eq!(poll::MSG, libc::EPOLLMSG as u32);
    assert_eq!(poll::RDHUP, libc::EPOLLRDHUP as u32);
}

#[test]
fn reexported_event_constants() {
    assert_eq!(TIMER_FIRED, sys::KEVENT_TIMER_FIRED);
    assert_eq!(SOCKET_RECV, sys::KEVENT_SOCKET_RECV);
    assert_eq!(SOCKET_SEND, sys::KEVENT_SOCKET_SEND);
    assert_eq!(SOCKET_ACCEPT, sys::KEVENT_SOCKET_ACCEPT);
    assert_eq!(SOCKET_CONNECT, sys::KEVENT_SOCKET_CONNECT);
    assert_eq!(SOCKET_HUP, sys::KEVENT_SOCKET_HUP);
    assert_eq!(SOCKET_ERR, sys::KEVENT_SOCKET_ERR);
    assert_eq!(INODE_CREATE, sys::KEVENT_INODE_CREATE);
    assert_eq!(INODE_REMOVE, sys::KEVENT_INODE_REMOVE);
    assert_eq!(AIO_SEND, sys::KEVENT_AIO_SEND);
    assert_eq!(AIO_RECV, sys::KEVENT_AIO_RECV);
    assert_eq!(AIO_SENDFILE, sys::KEVENT_AIO_SENDFILE);
    assert_eq!(AIO_MAX_LEN, 0x7fff_f000);
    assert_eq!(MAX_BATCH, 1024);
    assert_eq!(MAX_TIMER_NS, (1u64 << 62) - 1);
}

#[test]
fn kind_round_trip() {
    let all = [
        Kind::Timer,
        Kind::Poll,
        Kind::Socket,
        Kind::Inode,
        Kind::Aio,
    ];
    let raws = [
        sys::KEVENT_TYPE_TIMER,
        sys::KEVENT_TYPE_POLL,
        sys::KEVENT_TYPE_SOCKET,
        sys::KEVENT_TYPE_INODE,
        sys::KEVENT_TYPE_AIO,
    ];
    for (kind, raw) in all.into_iter().zip(raws) {
        assert_eq!(kind.raw(), raw);
        assert_eq!(Kind::from_raw(raw), Some(kind));
    }
    assert_eq!(Kind::from_raw(0), None);
    assert_eq!(Kind::from_raw(6), None);
    assert_eq!(Kind::from_raw(u32::MAX), None);
}

#[test]
fn queue_flags() {
    assert_eq!(QueueFlags::empty().bits(), 0);
    assert_eq!(QueueFlags::default(), QueueFlags::empty());
    assert_eq!(QueueFlags::CLOEXEC.bits(), sys::KEVENT_CLOEXEC);
    assert_eq!(QueueFlags::NONBLOCK.bits(), sys::KEVENT_NONBLOCK);
    let both = QueueFlags::CLOEXEC | QueueFlags::NONBLOCK;
    assert_eq!(both.bits(), sys::KEVENT_CLOEXEC | sys::KEVENT_NONBLOCK);
    assert!(both.contains(QueueFlags::NONBLOCK));
    assert!(!QueueFlags::CLOEXEC.contains(QueueFlags::NONBLOCK));
    let mut f = QueueFlags::empty();
    f |= QueueFlags::NONBLOCK;
    assert_eq!(f, QueueFlags::NONBLOCK);
}

#[test]
fn timer_builder() {
    let r = Request::timer(
        42,
        Duration::from_millis(3),
        Some(Duration::from_micros(1500)),
    );
    let uk = r.raw();
    assert_eq!(uk.type_, sys::KEVENT_TYPE_TIMER);
    assert_eq!(uk.event, sys::KEVENT_TIMER_FIRED);
    assert_eq!(uk.id, 42);
    assert_eq!(uk.arg, [3_000_000, 1_500_000]);
    assert_eq!(uk.req_flags, 0);
    assert_eq!(
        (
            uk.user_data,
            uk.ret_flags,
            uk.ret_data,
            uk.arg_fd,
            uk.reserved
        ),
        (0, 0, 0, 0, 0)
    );

    let once = Request::timer(1, Duration::from_nanos(7), None);
    assert_eq!(once.raw().arg, [7, 0]);
    let zero_period = Request::timer(1, Duration::ZERO, Some(Duration::ZERO));
    assert_eq!(zero_period.raw().arg, [0, 0]);
}

#[test]
fn timer_at_sets_abstime() {
    let r = Request::timer_at(9, Duration::new(100, 5), Some(Duration::from_secs(1)));
    let uk = r.raw();
    assert_eq!(uk.type_, sys::KEVENT_TYPE_TIMER);
    assert_eq!(uk.event, sys::KEVENT_TIMER_FIRED);
    assert_eq!(uk.id, 9);
    assert_eq!(uk.req_flags, sys::KEVENT_REQ_ABSTIME);
    assert_eq!(uk.arg, [100_000_000_005, 1_000_000_000]);
    // Modifiers keep ABSTIME.
    let r = r.oneshot().edge();
    assert_eq!(
        r.raw().req_flags,
        sys::KEVENT_REQ_ABSTIME | sys::KEVENT_REQ_ONESHOT | sys::KEVENT_REQ_ET
    );
}

#[test]
fn fd_builders_take_the_id_from_the_fd() {
    let (reader, writer) = std::io::pipe().unwrap();
    let rfd = reader.as_fd().as_raw_fd() as u64;
    let wfd = writer.as_fd().as_raw_fd() as u64;
    assert_ne!(rfd, wfd);

    let p = Request::poll(reader.as_fd(), poll::IN | poll::HUP);
    assert_eq!(p.raw().type_, sys::KEVENT_TYPE_POLL);
    assert_eq!(p.raw().id, rfd);
    assert_eq!(p.raw().event, poll::IN | poll::HUP);
    assert_eq!(p.raw().arg, [0, 0]);
    assert_eq!(p.raw().req_flags, 0);

    let s = Request::socket(writer.as_fd(), SOCKET_SEND | SOCKET_ERR);
    assert_eq!(s.raw().type_, sys::KEVENT_TYPE_SOCKET);
    assert_eq!(s.raw().id, wfd);
    assert_eq!(s.raw().event, SOCKET_SEND | SOCKET_ERR);

    let i = Request::inode(reader.as_fd(), INODE_CREATE);
    assert_eq!(i.raw().type_, sys::KEVENT_TYPE_INODE);
    assert_eq!(i.raw().id, rfd);
    assert_eq!(i.raw().event, INODE_CREATE);
}

#[test]
fn key_builder() {
    let k = Request::key(Kind::Poll, 17);
    let expect = sys::Ukevent {
        id: 17,
        type_: sys::KEVENT_TYPE_POLL,
        ..Default::default()
    };
    assert_eq!(*k.raw(), expect);
}

#[test]
fn modifiers_set_flags_and_user_data() {
    let base = Request::timer(1, Duration::from_millis(1), None);
    assert_eq!(base.edge().raw().req_flags, sys::KEVENT_REQ_ET);
    assert_eq!(base.oneshot().raw().req_flags, sys::KEVENT_REQ_ONESHOT);
    assert_eq!(
        base.wakeup_all().raw().req_flags,
        sys::KEVENT_REQ_WAKEUP_ALL
    );
    let all = base.edge().oneshot().wakeup_all().user_data(u64::MAX);
    assert_eq!(
        all.raw().req_flags,
        sys::KEVENT_REQ_ET | sys::KEVENT_REQ_ONESHOT | sys::KEVENT_REQ_WAKEUP_ALL
    );
    assert_eq!(all.raw().user_data, u64::MAX);
    // The rest of the entry is unchanged.
    assert_eq!(all.raw().arg, base.raw().arg);
    assert_eq!(all.raw().id, 1);
    assert_eq!(base.user_data(5).user_data(6).raw().user_data, 6);
}

#[test]
fn durations_saturate() {
    let max = MAX_TIMER_NS;
    assert_eq!(timer_ns(Duration::ZERO), 0);
    assert_eq!(timer_ns(Duration::from_nanos(max)), max);
    assert_eq!(timer_ns(Duration::from_nanos(max + 1)), max);
    assert_eq!(timer_ns(Duration::from_nanos(u64::MAX)), max);
    assert_eq!(timer_ns(Duration::MAX), max);
    let r = Request::timer(1, Duration::MAX, Some(Duration::MAX));
    assert_eq!(r.raw().arg, [max, max]);
    let r = Request::timer_at(1, Duration::from_secs(u64::MAX), None);
    assert_eq!(r.raw().arg, [max, 0]);
}

#[test]
fn timeouts_saturate() {
    let ts = timespec(Duration::new(3, 250));
    assert_eq!((ts.tv_sec, ts.tv_nsec), (3, 250));
    let ts = timespec(Duration::MAX);
    assert_eq!((ts.tv_sec, ts.tv_nsec), (i64::MAX, 999_999_999));
    let ts = timespec(Duration::from_secs(i64::MAX as u64 + 1));
    assert_eq!((ts.tv_sec, ts.tv_nsec), (i64::MAX, 0));
}

fn with_result(ret_flags: u32, ret_data: i64) -> Request {
    Request::from_raw(sys::Ukevent {
        ret_flags,
        ret_data,
        ..*Request::timer(1, Duration::ZERO, None).raw()
    })
}

#[test]
fn request_result() {
    assert!(with_result(sys::KEVENT_RET_DONE, 0).result().is_ok());

    let e = with_result(sys::KEVENT_RET_BROKEN, -i64::from(libc::EEXIST))
        .result()
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
    let e = with_result(sys::KEVENT_RET_BROKEN, -i64::from(libc::ENOENT))
        .result()
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);

    // Neither flag: never submitted.
    let e = with_result(0, 0).result().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Other);
    assert_eq!(e.raw_os_error(), None);

    // Nonsense from a hand-built entry is an error, not a panic.
    for bad in [0, 5, i64::MIN, i64::from(i32::MIN) - 1] {
        let e = with_result(sys::KEVENT_RET_BROKEN, bad)
            .result()
            .unwrap_err();
        assert_eq!(e.raw_os_error(), None, "ret_data {bad}");
    }
}

#[test]
fn request_raw_round_trip() {
    let uk = sys::Ukevent {
        user_data: 1,
        id: 2,
        type_: 99,
        event: 3,
        req_flags: 4,
        ret_flags: 5,
        ret_data: -6,
        arg: [7, 8],
        arg_fd: 9,
        reserved: 10,
    };
    assert_eq!(*Request::from_raw(uk).raw(), uk);
    assert_eq!(*Event::from_raw(uk).raw(), uk);
}

#[test]
fn event_accessors() {
    let ev = Event::from_raw(sys::Ukevent {
        user_data: 0xfeed,
        id: 12,
        type_: sys::KEVENT_TYPE_TIMER,
        event: sys::KEVENT_TIMER_FIRED,
        req_flags: sys::KEVENT_REQ_ET,
        ret_flags: sys::KEVENT_RET_DONE,
        ret_data: 3,
        ..Default::default()
    });
    assert_eq!(ev.user_data(), 0xfeed);
    assert_eq!(ev.id(), 12);
    assert_eq!(ev.kind(), Some(Kind::Timer));
    assert_eq!(ev.events(), TIMER_FIRED);
    assert_eq!(ev.req_flags(), sys::KEVENT_REQ_ET);
    assert!(!ev.is_broken());
    assert_eq!(ev.data(), 3);
    assert_eq!(ev.result().unwrap(), 3);

    let broken = Event::from_raw(sys::Ukevent {
        type_: sys::KEVENT_TYPE_POLL,
        ret_flags: sys::KEVENT_RET_BROKEN,
        ret_data: -i64::from(libc::ENODEV),
        ..Default::default()
    });
    assert_eq!(broken.kind(), Some(Kind::Poll));
    assert!(broken.is_broken());
    assert_eq!(broken.data(), -i64::from(libc::ENODEV));
    assert_eq!(
        broken.result().unwrap_err().raw_os_error(),
        Some(libc::ENODEV)
    );

    let unknown = Event::from_raw(sys::Ukevent {
        type_: 77,
        ..Default::default()
    });
    assert_eq!(unknown.kind(), None);
}

#[test]
fn events_capacity() {
    assert_eq!(Events::with_capacity(0).capacity(), 1);
    assert_eq!(Events::with_capacity(1).capacity(), 1);
    assert_eq!(Events::with_capacity(64).capacity(), 64);
    let ev = Events::with_capacity(8);
    assert_eq!(ev.len(), 0);
    assert!(ev.is_empty());
    assert_eq!(ev.iter().count(), 0);
    assert_eq!((&ev).into_iter().count(), 0);
    assert!(ev.buf.capacity() >= 8);
}

#[test]
fn events_capacity_is_clamped_to_u32() {
    // The clamp is computed before any allocation; an allocation this large
    // fails (or is only reserved) without a panic.
    let ev = Events::with_capacity(usize::MAX);
    assert_eq!(ev.capacity(), u32::MAX as usize);
    assert!(ev.is_empty());
}

#[test]
fn events_view_the_buffer() {
    let mut ev = Events::with_capacity(4);
    for i in 0..3 {
        ev.buf.push(sys::Ukevent {
            id: i,
            user_data: 100 + i,
            ..Default::default()
        });
    }
    assert_eq!(ev.len(), 3);
    let ids: Vec<u64> = ev.iter().map(Event::id).collect();
    assert_eq!(ids, [0, 1, 2]);
    let cookies: Vec<u64> = (&ev).into_iter().map(|e| e.user_data()).collect();
    assert_eq!(cookies, [100, 101, 102]);
    assert_eq!(ev.as_slice()[2].id(), 2);
    ev.clear();
    assert!(ev.is_empty());
    assert_eq!(ev.capacity(), 4);
}

/// A `Queue` around a descriptor that is not a kevent queue (`/dev/null`).
fn fake_queue() -> Queue {
    let file = std::fs::File::open("/dev/null").unwrap();
    Queue::from(OwnedFd::from(file))
}

#[test]
fn wait_min_above_capacity_is_invalid_input() {
    let q = fake_queue();
    let mut ev = Events::with_capacity(2);
    ev.buf.push(sys::Ukevent::default());
    // No system call: the error carries no errno (a kevent system call on
    // this descriptor would fail with ENOSYS or EINVAL).
    let e = q.wait(&mut ev, 3, None).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(e.raw_os_error(), None);
    let e = q
        .wait_deadline(&mut ev, usize::MAX, Duration::ZERO)
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(e.raw_os_error(), None);
    // The buffer is left alone.
    assert_eq!(ev.len(), 1);
}

#[test]
fn failed_batch_leaves_entries_unsubmitted() {
    // One kevent_ctl() on a descriptor that is not a queue: it fails as a
    // whole (ENOSYS without kevent, EINVAL with it), and the stale results
    // of the entries are cleared first.
    let q = fake_queue();
    let mut batch = [
        with_result(sys::KEVENT_RET_DONE, 0),
        with_result(sys::KEVENT_RET_BROKEN, -1),
    ];
    let e = q.add(&mut batch).unwrap_err();
    assert!(e.raw_os_error().is_some());
    for req in &batch {
        assert_eq!(req.result().unwrap_err().kind(), io::ErrorKind::Other);
    }
}

#[test]
fn queue_fd_conversions() {
    let file = std::fs::File::open("/dev/null").unwrap();
    let raw = file.as_raw_fd();
    let q = Queue::from(OwnedFd::from(file));
    assert_eq!(q.as_raw_fd(), raw);
    assert_eq!(q.as_fd().as_raw_fd(), raw);
    let back = q.into_raw_fd();
    assert_eq!(back, raw);
    // SAFETY: `back` is the descriptor the queue gave up, owned by no one.
    drop(unsafe { OwnedFd::from_raw_fd(back) });
}

#[test]
fn monotonic_now_advances() {
    let a = monotonic_now().unwrap();
    let b = monotonic_now().unwrap();
    assert!(b >= a);
    assert!(a > Duration::ZERO);
}

#[test]
fn kind_display() {
    assert_eq!(Kind::Timer.to_string(), "timer");
    assert_eq!(Kind::Aio.to_string(), "aio");
}

/// The `#define NAME value` lines of `text` whose name starts with `prefix`
/// (each name once; a repeated define must have the same value).
fn defines_of(text: &str, prefix: &str) -> BTreeMap<String, u64> {
    let mut defs = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("#define") {
            continue;
        }
        let Some(name) = words.next() else { continue };
        if !name.starts_with(prefix) {
            continue;
        }
        let Some(value) = words.next().and_then(parse_c_int) else {
            continue;
        };
        if let Some(old) = defs.insert(name.to_string(), value) {
            assert_eq!(old, value, "{name} defined twice with different values");
        }
    }
    defs
}

#[test]
fn the_aio_abi_is_in_the_header() {
    let defs = header_defines();
    assert_eq!(defs.get("KEVENT_TYPE_AIO"), Some(&5));
    assert_eq!(defs.get("KEVENT_AIO_SEND"), Some(&0x1));
    assert_eq!(defs.get("KEVENT_AIO_RECV"), Some(&0x2));
    assert_eq!(defs.get("KEVENT_AIO_SENDFILE"), Some(&0x4));
    assert_eq!(defs.get("KEVENT_REQ_AIO_WAITALL"), Some(&0x10));
}

#[test]
fn libkevent_agrees_with_sys() {
    // libkevent.h defines the AIO constants under #ifndef for older uapi
    // headers, and the largest AIO length: the same values as here.
    let defs = defines_of(LIBKEVENT, "KEVENT_");
    let ours: BTreeMap<&str, u32> = sys::ALL_CONSTS.iter().copied().collect();
    let mut seen = 0;
    for (name, value) in &defs {
        if name == "KEVENT_AIO_LEN_MAX" {
            assert_eq!(*value, AIO_MAX_LEN as u64);
            continue;
        }
        let Some(&v) = ours.get(name.as_str()) else {
            panic!("libkevent.h defines {name}, which sys does not have");
        };
        assert_eq!(u64::from(v), *value, "{name}");
        seen += 1;
    }
    assert!(
        seen >= 4,
        "only {seen} fallback constants found in libkevent.h"
    );
    assert!(defs.contains_key("KEVENT_AIO_LEN_MAX"));
}

/// A socket-like descriptor for the builders (they record its number only).
fn some_fds() -> (std::io::PipeReader, std::io::PipeWriter) {
    std::io::pipe().unwrap()
}

#[test]
fn aio_send_builder() {
    let (sock, _w) = some_fds();
    let buf = [7u8; 100];
    // SAFETY: the request is never submitted.
    let r = unsafe { Request::aio_send(sock.as_fd(), &buf, 0xfeed) };
    let expect = sys::Ukevent {
        user_data: 0xfeed,
        id: sock.as_raw_fd() as u64,
        type_: sys::KEVENT_TYPE_AIO,
        event: sys::KEVENT_AIO_SEND,
        arg: [buf.as_ptr() as usize as u64, 100],
        ..Default::default()
    };
    assert_eq!(*r.raw(), expect);
    // user_data names the request: the modifier renames it.
    assert_eq!(r.user_data(3).raw().user_data, 3);
}

#[test]
fn aio_recv_builder() {
    let (sock, _w) = some_fds();
    let mut buf = vec![0u8; 4096];
    let addr = buf.as_ptr() as usize as u64;
    // SAFETY: the requests are never submitted.
    let (r, w) = unsafe {
        (
            Request::aio_recv(sock.as_fd(), &mut buf, false, 1),
            Request::aio_recv(sock.as_fd(), &mut buf, true, 2),
        )
    };
    for (req, flags, ud) in [(r, 0, 1), (w, sys::KEVENT_REQ_AIO_WAITALL, 2)] {
        let uk = req.raw();
        assert_eq!(uk.type_, sys::KEVENT_TYPE_AIO);
        assert_eq!(uk.event, sys::KEVENT_AIO_RECV);
        assert_eq!(uk.id, sock.as_raw_fd() as u64);
        assert_eq!(uk.req_flags, flags);
        assert_eq!(uk.user_data, ud);
        assert_eq!(uk.arg, [addr, 4096]);
        assert_eq!(
            (uk.arg_fd, uk.reserved, uk.ret_flags, uk.ret_data),
            (0, 0, 0, 0)
        );
    }
    // An empty buffer is passed as it is (the kernel says EINVAL).
    // SAFETY: never submitted.
    let e = unsafe { Request::aio_recv(sock.as_fd(), &mut [], false, 3) };
    assert_eq!(e.raw().arg[1], 0);
}

#[test]
fn aio_sendfile_builder() {
    let (sock, file) = some_fds();
    let r = Request::aio_sendfile(sock.as_fd(), file.as_fd(), 1 << 40, 65536, 9);
    let expect = sys::Ukevent {
        user_data: 9,
        id: sock.as_raw_fd() as u64,
        type_: sys::KEVENT_TYPE_AIO,
        event: sys::KEVENT_AIO_SENDFILE,
        arg: [1 << 40, 65536],
        arg_fd: file.as_raw_fd() as u32,
        ..Default::default()
    };
    assert_eq!(*r.raw(), expect);
}

#[test]
fn aio_key_builder() {
    let k = Request::aio_key(12, u64::MAX);
    let expect = sys::Ukevent {
        user_data: u64::MAX,
        id: 12,
        type_: sys::KEVENT_TYPE_AIO,
        ..Default::default()
    };
    assert_eq!(*k.raw(), expect);
}

#[test]
fn from_raw_lends_no_memory() {
    let aio = |event| sys::Ukevent {
        id: 3,
        type_: sys::KEVENT_TYPE_AIO,
        event,
        user_data: 5,
        req_flags: sys::KEVENT_REQ_AIO_WAITALL,
        arg: [0x1000, 64],
        ..Default::default()
    };
    // Send, receive, several or unknown bits: the memory is not named.
    for event in [
        sys::KEVENT_AIO_SEND,
        sys::KEVENT_AIO_RECV,
        sys::KEVENT_AIO_SEND | sys::KEVENT_AIO_RECV,
        sys::KEVENT_AIO_SENDFILE | sys::KEVENT_AIO_RECV,
        0x8,
        1 << 31,
        0,
    ] {
        let r = Request::from_raw(aio(event));
        assert_eq!(r.raw().arg, [0, 0], "event {event:#x}");
        // The rest is kept.
        assert_eq!(
            *r.raw(),
            sys::Ukevent {
                arg: [0, 0],
                ..aio(event)
            }
        );
        // SAFETY: never submitted.
        let u = unsafe { Request::from_raw_unchecked(aio(event)) };
        assert_eq!(*u.raw(), aio(event));
    }
    // Sendfile names a file offset and count: kept.
    let f = Request::from_raw(aio(sys::KEVENT_AIO_SENDFILE));
    assert_eq!(*f.raw(), aio(sys::KEVENT_AIO_SENDFILE));
    // Other types are untouched, whatever their arguments.
    for type_ in [sys::KEVENT_TYPE_TIMER, sys::KEVENT_TYPE_POLL, 0, 99] {
        let uk = sys::Ukevent {
            type_,
            ..aio(sys::KEVENT_AIO_RECV)
        };
        assert_eq!(*Request::from_raw(uk).raw(), uk);
    }
    // Round trip of a built request: an event or a copy of the raw entry
    // cannot be used to lend memory either.
    let (sock, _w) = some_fds();
    let mut buf = [0u8; 8];
    // SAFETY: never submitted.
    let r = unsafe { Request::aio_recv(sock.as_fd(), &mut buf, false, 1) };
    assert_eq!(Request::from_raw(*r.raw()).raw().arg, [0, 0]);
}

#[test]
fn aio_event_accessors() {
    let done = Event::from_raw(sys::Ukevent {
        user_data: 77,
        id: 4,
        type_: sys::KEVENT_TYPE_AIO,
        event: sys::KEVENT_AIO_RECV,
        ret_flags: sys::KEVENT_RET_DONE,
        ret_data: 4096,
        ..Default::default()
    });
    assert_eq!(done.kind(), Some(Kind::Aio));
    assert_eq!(done.events(), AIO_RECV);
    assert_eq!(done.result().unwrap(), 4096);
    let eof = Event::from_raw(sys::Ukevent {
        ret_data: 0,
        ..*done.raw()
    });
    assert_eq!(eof.result().unwrap(), 0);
    let cancelled = Event::from_raw(sys::Ukevent {
        ret_flags: sys::KEVENT_RET_BROKEN,
        ret_data: -i64::from(libc::ECANCELED),
        ..*done.raw()
    });
    assert!(cancelled.is_broken());
    assert_eq!(
        cancelled.result().unwrap_err().raw_os_error(),
        Some(libc::ECANCELED)
    );
}

#[test]
fn remove_aio_on_a_non_queue_fails_whole() {
    // One kevent_ctl() on a descriptor that is not a queue (ENOSYS without
    // kevent, EINVAL with it).
    let q = fake_queue();
    let e = q.remove_aio(3, 4).unwrap_err();
    assert!(e.raw_os_error().is_some());
}

// ---------------------------------------------------------------------------
// The ready ring.

/// The fields of `struct NAME` in the header: name, offset and size, laid
/// out as C does (every field of these structures is naturally aligned), and
/// the size of the structure.
fn c_struct(name: &str) -> (Vec<(String, usize, usize)>, usize) {
    let start = HEADER
        .find(&format!("\nstruct {name} {{\n"))
        .unwrap_or_else(|| panic!("struct {name} not found in the header"));
    let body = &HEADER[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find("};").unwrap()];
    let (mut fields, mut off, mut align) = (Vec::new(), 0usize, 1usize);
    for line in body.lines() {
        let line = line.trim().trim_end_matches(';');
        if line.is_empty() {
            continue;
        }
        let (ty, decl) = line.rsplit_once(char::is_whitespace).unwrap();
        let elem = match ty.trim() {
            "__u64" | "__s64" => 8,
            "__u32" | "__s32" => 4,
            "struct kevent_ring_event" => 64,
            other => panic!("struct {name}: unknown type {other:?}"),
        };
        let (field, count) = match decl.split_once('[') {
            None => (decl, 1),
            // A flexible array member takes no room.
            Some((f, "]")) => (f, 0),
            Some((f, n)) => (f, n.trim_end_matches(']').parse().unwrap()),
        };
        let a = elem.min(8);
        off = off.next_multiple_of(a);
        align = align.max(a);
        fields.push((field.to_string(), off, elem * count));
        off += elem * count;
    }
    (fields, off.next_multiple_of(align))
}

/// `(C name, offset, size)` of each named field of a `sys` structure.
macro_rules! rust_fields {
    ($ty:ty; $($c:literal => $f:ident),* $(,)?) => {{
        let v = <$ty>::default();
        vec![$(($c.to_string(), offset_of!($ty, $f), core::mem::size_of_val(&v.$f))),*]
    }};
}

#[test]
fn sys_structs_match_the_header() {
    let cases = [
        (
            "ukevent",
            size_of::<sys::Ukevent>(),
            rust_fields!(sys::Ukevent;
                "user_data" => user_data, "id" => id, "type" => type_, "event" => event,
                "req_flags" => req_flags, "ret_flags" => ret_flags, "ret_data" => ret_data,
                "arg" => arg, "arg_fd" => arg_fd, "reserved" => reserved),
        ),
        (
            "kevent_ring_params",
            size_of::<sys::KeventRingParams>(),
            rust_fields!(sys::KeventRingParams;
                "entries" => entries, "flags" => flags, "reserved" => reserved),
        ),
        (
            "kevent_ring_event",
            size_of::<sys::KeventRingEvent>(),
            rust_fields!(sys::KeventRingEvent;
                "seq" => seq, "user_data" => user_data, "id" => id, "type" => type_,
                "event" => event, "req_flags" => req_flags, "ret_flags" => ret_flags,
                "ret_data" => ret_data, "reserved" => reserved),
        ),
        (
            "kevent_ring",
            size_of::<sys::KeventRing>(),
            rust_fields!(sys::KeventRing;
                "head" => head, "__pad0" => __pad0, "tail" => tail, "overflow" => overflow,
                "entries" => entries, "__pad1" => __pad1, "__pad2" => __pad2,
                "events" => events),
        ),
    ];
    for (name, size, ours) in cases {
        let (theirs, c_size) = c_struct(name);
        assert_eq!(ours, theirs, "struct {name}: (field, offset, size)");
        assert_eq!(size, c_size, "size of struct {name}");
    }
}

#[test]
fn ring_constants() {
    assert_eq!(sys::KEVENT_RING, 0x4);
    assert_eq!(sys::KEVENT_RING_MAX_ENTRIES, 65536);
    // KEVENT_RING_SIZE(entries), a macro the define parser skips.
    assert!(HEADER.contains(
        "#define KEVENT_RING_SIZE(entries) \\\n\t(sizeof(struct kevent_ring) + \
         (__u64)(entries) * sizeof(struct kevent_ring_event))"
    ));
    assert_eq!(sys::kevent_ring_size(0), 128);
    assert_eq!(sys::kevent_ring_size(1), 192);
    assert_eq!(sys::kevent_ring_size(65536), 128 + (64 << 16));
    assert_eq!(
        sys::kevent_ring_size(u32::MAX),
        128 + 64 * u64::from(u32::MAX)
    );
    // Flags of the same call must not collide.
    assert_eq!(
        sys::KEVENT_RING & (sys::KEVENT_CLOEXEC | sys::KEVENT_NONBLOCK),
        0
    );
}

#[test]
fn ring_is_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<Ring>();
    both::<RingDrain<'_>>();
}

/// A ring as the kernel sets one up, in anonymous shared memory, with its
/// head and tail at `start` (0 for the kernel's).
fn fake_ring(entries: u32, start: u64) -> Ring {
    let len = (sys::kevent_ring_size(entries) as usize).next_multiple_of(4096);
    // SAFETY: a new anonymous mapping; nothing is replaced.
    let addr = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(addr, libc::MAP_FAILED);
    // SAFETY: the mapping is at least 128 bytes and zeroed; nothing else
    // accesses it yet.
    unsafe {
        let h = &*addr.cast::<ring::RawHeader>();
        h.entries.store(entries, Ordering::Relaxed);
        h.head.store(start, Ordering::Relaxed);
        h.tail.store(start, Ordering::Relaxed);
    }
    // SAFETY: the mapping is new, page aligned, `len` bytes, and only the
    // ring accesses it from now on (atomically).
    let ring = unsafe { Ring::from_mapping(addr, len, entries) }.unwrap();
    // Every slot free for its first position from `start`.
    for pos in start..start + u64::from(entries) {
        ring.raw_slot(pos).seq.store(pos, Ordering::Relaxed);
    }
    ring
}

/// The event the fake producer writes for position `pos`.
fn ring_event(pos: u64) -> sys::KeventRingEvent {
    sys::KeventRingEvent {
        seq: 0,
        user_data: pos,
        id: pos ^ 0x5555,
        type_: sys::KEVENT_TYPE_SOCKET,
        event: (pos as u32) & 0x3f,
        req_flags: sys::KEVENT_REQ_ET,
        ret_flags: sys::KEVENT_RET_DONE,
        ret_data: -(pos as i64),
        reserved: [0; 2],
    }
}

/// Writes `ev` at position `pos` as the kernel does: only if the slot is
/// free for it (`seq == pos`), then `seq = pos + 1` (release). Returns
/// whether it wrote.
fn fake_post(ring: &Ring, pos: u64, ev: &sys::KeventRingEvent) -> bool {
    let slot = ring.raw_slot(pos);
    if slot.seq.load(Ordering::Acquire) != pos {
        return false;
    }
    slot.user_data.store(ev.user_data, Ordering::Relaxed);
    slot.id.store(ev.id, Ordering::Relaxed);
    slot.type_.store(ev.type_, Ordering::Relaxed);
    slot.event.store(ev.event, Ordering::Relaxed);
    slot.req_flags.store(ev.req_flags, Ordering::Relaxed);
    slot.ret_flags.store(ev.ret_flags, Ordering::Relaxed);
    slot.ret_data.store(ev.ret_data, Ordering::Relaxed);
    slot.seq.store(pos.wrapping_add(1), Ordering::Release);
    ring.raw_header()
        .tail
        .store(pos.wrapping_add(1), Ordering::Relaxed);
    true
}

/// Checks that `ev` is what [`ring_event`] wrote for `pos`.
fn assert_ring_event(ev: Option<Event>, pos: u64) {
    let ev = ev.unwrap_or_else(|| panic!("no event for position {pos}"));
    let want = ring_event(pos);
    assert_eq!(ev.user_data(), pos);
    assert_eq!(
        *ev.raw(),
        sys::Ukevent {
            user_data: want.user_data,
            id: want.id,
            type_: want.type_,
            event: want.event,
            req_flags: want.req_flags,
            ret_flags: want.ret_flags,
            ret_data: want.ret_data,
            arg: [0, 0],
            arg_fd: 0,
            reserved: 0,
        }
    );
}

#[test]
fn ring_pop_converts_the_slot() {
    let ring = fake_ring(4, 0);
    assert_eq!(ring.entries(), 4);
    assert_eq!(ring.overflow(), 0);
    assert!(ring.pop().is_none());
    let slot = sys::KeventRingEvent {
        seq: 0,
        user_data: 0xfeed,
        id: 12,
        type_: sys::KEVENT_TYPE_TIMER,
        event: sys::KEVENT_TIMER_FIRED,
        req_flags: sys::KEVENT_REQ_ONESHOT,
        ret_flags: sys::KEVENT_RET_DONE,
        ret_data: 1,
        reserved: [0; 2],
    };
    // Garbage in the slot's reserved words is not copied anywhere.
    ring.raw_slot(0).reserved[0].store(u64::MAX, Ordering::Relaxed);
    assert!(fake_post(&ring, 0, &slot));
    let ev = ring.pop().unwrap();
    assert_eq!(ev.user_data(), 0xfeed);
    assert_eq!(ev.id(), 12);
    assert_eq!(ev.kind(), Some(Kind::Timer));
    assert_eq!(ev.events(), TIMER_FIRED);
    assert_eq!(ev.req_flags(), sys::KEVENT_REQ_ONESHOT);
    assert!(!ev.is_broken());
    assert_eq!(ev.result().unwrap(), 1);
    assert_eq!(ev.raw().arg, [0, 0]);
    assert_eq!((ev.raw().arg_fd, ev.raw().reserved), (0, 0));
    assert!(ring.pop().is_none());
    // The slot is free for the next lap, the head moved on.
    assert_eq!(ring.raw_slot(0).seq.load(Ordering::Relaxed), 4);
    assert_eq!(ring.raw_header().head.load(Ordering::Relaxed), 1);
    ring.raw_header().overflow.store(7, Ordering::Relaxed);
    assert_eq!(ring.overflow(), 7);
    assert!(format!("{ring:?}").contains("overflow: 7"));
}

#[test]
fn ring_fills_and_wraps() {
    let ring = fake_ring(4, 0);
    let mut tail = 0;
    // Full after 4: the producer finds the next slot taken.
    for _ in 0..4 {
        assert!(fake_post(&ring, tail, &ring_event(tail)));
        tail += 1;
    }
    assert!(!fake_post(&ring, tail, &ring_event(tail)));
    assert_ring_event(ring.pop(), 0);
    // The freed slot takes position 4.
    assert!(fake_post(&ring, tail, &ring_event(tail)));
    tail += 1;
    for pos in 1..5 {
        assert_ring_event(ring.pop(), pos);
    }
    assert!(ring.pop().is_none());
    // Many laps, with 1 to 4 events in the ring at a time.
    let mut head = 5;
    for round in 0..200u64 {
        let k = round % 4 + 1;
        for _ in 0..k {
            assert!(fake_post(&ring, tail, &ring_event(tail)));
            tail += 1;
        }
        for _ in 0..k {
            assert_ring_event(ring.pop(), head);
            head += 1;
        }
        assert!(ring.pop().is_none());
    }
    assert_eq!(ring.raw_header().head.load(Ordering::Relaxed), tail);
}

#[test]
fn ring_drain_takes_everything() {
    let ring = fake_ring(8, 0);
    for pos in 0..6 {
        assert!(fake_post(&ring, pos, &ring_event(pos)));
    }
    let got: Vec<u64> = ring.drain().map(|e| e.user_data()).collect();
    assert_eq!(got, [0, 1, 2, 3, 4, 5]);
    assert_eq!(ring.drain().count(), 0);
}

#[test]
fn ring_positions_wrap_around_u64() {
    // The kernel starts at 0 and would take centuries to get here; the
    // arithmetic must still hold.
    let start = u64::MAX - 5;
    let ring = fake_ring(4, start);
    let mut tail = start;
    let mut head = start;
    for _ in 0..5 {
        for _ in 0..3 {
            assert!(fake_post(&ring, tail, &ring_event(tail)));
            tail = tail.wrapping_add(1);
        }
        for _ in 0..3 {
            assert_ring_event(ring.pop(), head);
            head = head.wrapping_add(1);
        }
        assert!(ring.pop().is_none());
    }
    assert!(head < start, "positions did not wrap");
}

#[test]
fn ring_broken_by_others_is_empty_not_a_hang() {
    let ring = fake_ring(4, 0);
    assert!(fake_post(&ring, 0, &ring_event(0)));
    // A seq ahead of the head that nobody advanced (only a consumer breaking
    // the protocol does that): empty, no spinning.
    ring.raw_slot(0).seq.store(9, Ordering::Relaxed);
    assert!(ring.pop().is_none());
    // A head far ahead of the slots: empty.
    ring.raw_slot(0).seq.store(1, Ordering::Relaxed);
    ring.raw_header().head.store(1000, Ordering::Relaxed);
    assert!(ring.pop().is_none());
    // A header that says another size is refused, whatever it says later.
    ring.raw_header().entries.store(1 << 30, Ordering::Relaxed);
    assert_eq!(ring.entries(), 4);
    ring.raw_header().head.store(0, Ordering::Relaxed);
    assert_ring_event(ring.pop(), 0);
}

#[test]
fn ring_mapping_checks() {
    for bad in [0, 1, 3, 6, sys::KEVENT_RING_MAX_ENTRIES + 1, u32::MAX] {
        assert_eq!(
            ring::map_len(bad).unwrap_err().raw_os_error(),
            Some(libc::EINVAL)
        );
        // No system call: EINVAL even where there is no kevent.
        let e = Ring::map(&fake_queue(), bad).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{bad}");
    }
    let page = ring::map_len(2).unwrap();
    assert!(page >= 4096 && page.is_power_of_two());
    assert_eq!(ring::map_len(64).unwrap(), page.max(8192));
    assert_eq!(
        ring::map_len(65536).unwrap(),
        (128 + (64usize << 16)).next_multiple_of(page)
    );
    // Not a kevent queue: refused before any mmap() (ENOSYS without kevent,
    // EINVAL with it).
    let e = Ring::map(&fake_queue(), 8).unwrap_err();
    assert!(matches!(
        e.raw_os_error(),
        Some(libc::ENOSYS | libc::EINVAL)
    ));

    // A mapping whose header gives another size is refused (and unmapped).
    let (addr, len) = fake_ring(8, 0).into_raw();
    // SAFETY: the mapping of the forgotten ring, which nothing else uses.
    let e = unsafe { Ring::from_mapping(addr, len, 4) }.unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
}

#[test]
fn ring_many_consumers() {
    // One producer following the kernel's rule, three consumers: every event
    // is taken exactly once, and each consumer sees increasing positions.
    const N: u64 = 50_000;
    let ring = fake_ring(8, 0);
    let taken = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let per_consumer: Vec<Vec<u64>> = std::thread::scope(|s| {
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let mut got = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        match ring.pop() {
                            Some(ev) => {
                                let pos = ev.user_data();
                                assert_ring_event(Some(ev), pos);
                                got.push(pos);
                                taken.fetch_add(1, Ordering::Relaxed);
                            }
                            None => std::thread::yield_now(),
                        }
                    }
                    got
                })
            })
            .collect();
        for pos in 0..N {
            // Full: wait for the consumers, as the kernel would overflow.
            while !fake_post(&ring, pos, &ring_event(pos)) {
                std::thread::yield_now();
            }
        }
        while taken.load(Ordering::Relaxed) < N {
            std::thread::yield_now();
        }
        stop.store(true, Ordering::Relaxed);
        consumers.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all = Vec::with_capacity(N as usize);
    for got in &per_consumer {
        assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order");
        all.extend_from_slice(got);
    }
    all.sort_unstable();
    assert_eq!(all.len() as u64, N);
    assert!(all.iter().enumerate().all(|(i, &p)| p == i as u64));
    assert!(ring.pop().is_none());
}
