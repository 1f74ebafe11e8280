// SPDX-License-Identifier: GPL-2.0

//! The raw kevent ABI: a mirror of `include/uapi/linux/kevent.h` and the two
//! system calls.
//!
//! Everything here has the name and value it has in the C header (the unit
//! tests parse the header and compare). Use the safe API of the crate root
//! unless you need to build entries by hand; [`kevent_ctl`] and
//! [`kevent_get_events`] are `unsafe` because they take raw pointers.
//!
//! See `Documentation/kevent.rst` for the meaning of every field, flag and
//! error code.

use core::mem::{offset_of, size_of};

/// The system call number of `kevent_ctl()`.
///
/// 473 on x86_64 and in the generic system call table
/// (`include/uapi/asm-generic/unistd.h`), which the newer architectures use.
#[cfg(target_arch = "x86_64")]
pub const SYS_KEVENT_CTL: libc::c_long = 473;
/// The system call number of `kevent_get_events()` (474 on x86_64).
#[cfg(target_arch = "x86_64")]
pub const SYS_KEVENT_GET_EVENTS: libc::c_long = 474;

/// The system call number of `kevent_ctl()` in the generic system call table.
#[cfg(not(target_arch = "x86_64"))]
pub const SYS_KEVENT_CTL: libc::c_long = 473;
/// The system call number of `kevent_get_events()` in the generic system
/// call table.
#[cfg(not(target_arch = "x86_64"))]
pub const SYS_KEVENT_GET_EVENTS: libc::c_long = 474;

// The timeout of kevent_get_events() is a `struct __kernel_timespec` (two
// 64-bit fields). `libc::timespec` has that layout only on 64-bit targets.
#[cfg(not(target_pointer_width = "64"))]
compile_error!("the kevent crate supports 64-bit targets only (libc::timespec must match struct __kernel_timespec)");

const _: () = assert!(size_of::<libc::timespec>() == 16);
const _: () = assert!(offset_of!(libc::timespec, tv_sec) == 0);
const _: () = assert!(offset_of!(libc::timespec, tv_nsec) == 8);

/// Defines the `KEVENT_*` constants and, for the tests, a table of all of
/// them by name.
macro_rules! kevent_consts {
    ($($(#[$attr:meta])* $name:ident = $value:expr;)*) => {
        $($(#[$attr])* pub const $name: u32 = $value;)*

        /// Every `KEVENT_*` constant of this module, by name.
        #[cfg(test)]
        pub(crate) const ALL_CONSTS: &[(&str, u32)] = &[$((stringify!($name), $name)),*];
    };
}

kevent_consts! {
    /// `kevent_ctl()` command: make a queue (`fd` = -1, `num` = flags,
    /// `buf` = NULL, or a [`KeventRingParams`] with [`KEVENT_RING`]);
    /// returns its file descriptor.
    KEVENT_CTL_INIT = 1;
    /// `kevent_ctl()` command: register kevents.
    KEVENT_CTL_ADD = 2;
    /// `kevent_ctl()` command: remove kevents, by `(type, id)`.
    KEVENT_CTL_REMOVE = 3;
    /// `kevent_ctl()` command: change the request of kevents and re-arm them.
    KEVENT_CTL_MODIFY = 4;

    /// `KEVENT_CTL_INIT` flag: the new descriptor is close-on-exec.
    KEVENT_CLOEXEC = 0x1;
    /// `KEVENT_CTL_INIT` flag: the new file is `O_NONBLOCK`;
    /// `kevent_get_events()` never sleeps.
    KEVENT_NONBLOCK = 0x2;
    /// `KEVENT_CTL_INIT` flag: the queue has a ready ring, which the process
    /// maps (`mmap()` of the queue's descriptor, offset 0, `MAP_SHARED`,
    /// readable and writable); `buf` points to a [`KeventRingParams`].
    KEVENT_RING = 0x4;

    /// The largest `num` of one `kevent_ctl()` call; more is `E2BIG`.
    KEVENT_CTL_MAX_BATCH = 1024;

    /// `kevent_get_events()` flag: the timeout is an absolute
    /// `CLOCK_MONOTONIC` deadline.
    KEVENT_WAIT_ABSTIME = 0x1;

    /// Event source type: a high-resolution timer; `id` is any number.
    KEVENT_TYPE_TIMER = 1;
    /// Event source type: `->poll` readiness of a file; `id` is the fd.
    KEVENT_TYPE_POLL = 2;
    /// Event source type: a socket; `id` is the fd.
    KEVENT_TYPE_SOCKET = 3;
    /// Event source type: an inode; `id` is a descriptor of it.
    KEVENT_TYPE_INODE = 4;
    /// Event source type: a network AIO request; `id` is the socket's fd and
    /// `(type, id, user_data)` names the request.
    KEVENT_TYPE_AIO = 5;

    /// Timer event: the timer expired.
    KEVENT_TIMER_FIRED = 0x1;

    /// Socket event: data or EOF readable.
    KEVENT_SOCKET_RECV = 0x01;
    /// Socket event: write space.
    KEVENT_SOCKET_SEND = 0x02;
    /// Socket event: a connection is waiting.
    KEVENT_SOCKET_ACCEPT = 0x04;
    /// Socket event: an outgoing connect finished.
    KEVENT_SOCKET_CONNECT = 0x08;
    /// Socket event: peer closed or shut down.
    KEVENT_SOCKET_HUP = 0x10;
    /// Socket event: socket error, `-errno` in `ret_data`.
    KEVENT_SOCKET_ERR = 0x20;

    /// Inode event: an entry was created.
    KEVENT_INODE_CREATE = 0x1;
    /// Inode event: an entry was removed.
    KEVENT_INODE_REMOVE = 0x2;

    /// AIO request: send `arg[1]` bytes from the buffer at address `arg[0]`.
    KEVENT_AIO_SEND = 0x1;
    /// AIO request: receive up to `arg[1]` bytes into the buffer at address
    /// `arg[0]`.
    KEVENT_AIO_RECV = 0x2;
    /// AIO request: send `arg[1]` bytes of the regular file `arg_fd` from
    /// offset `arg[0]`.
    KEVENT_AIO_SENDFILE = 0x4;

    /// Request flag: removed after its first delivery.
    KEVENT_REQ_ONESHOT = 0x01;
    /// Request flag: edge triggered, reported once per new activity.
    KEVENT_REQ_ET = 0x02;
    /// Request flag: wake every waiter, not just one.
    KEVENT_REQ_WAKEUP_ALL = 0x04;
    /// Request flag (timers only): `arg[0]` is an absolute `CLOCK_MONOTONIC`
    /// time.
    KEVENT_REQ_ABSTIME = 0x08;
    /// Request flag (AIO receive only): complete only when the full length
    /// arrived, or at end of file, or on error.
    KEVENT_REQ_AIO_WAITALL = 0x10;

    /// Return flag: `kevent_ctl()`: the entry took effect; delivery: a
    /// normal event.
    KEVENT_RET_DONE = 0x01;
    /// Return flag: `kevent_ctl()`: the entry failed; delivery: the source is
    /// gone or failed. `ret_data` is `-errno` in both cases.
    KEVENT_RET_BROKEN = 0x02;

    /// The largest ring, in slots ([`KeventRingParams::entries`]).
    KEVENT_RING_MAX_ENTRIES = 65536;
}

/// `struct ukevent`: one kevent, as registered and as delivered.
///
/// 64 bytes, fixed-width fields, no implicit padding, the same layout for
/// 32- and 64-bit userspace.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Ukevent {
    /// Opaque cookie, returned unchanged with every event.
    pub user_data: u64,
    /// What to watch: a file descriptor (poll, socket, inode, AIO) or a
    /// caller-chosen timer id; `(type_, id)` names the kevent in its queue.
    pub id: u64,
    /// `KEVENT_TYPE_*` (`type` in C).
    pub type_: u32,
    /// Requested event mask; on delivery, the events that fired.
    pub event: u32,
    /// `KEVENT_REQ_*`.
    pub req_flags: u32,
    /// `KEVENT_RET_*`, written by the kernel.
    pub ret_flags: u32,
    /// Result: a count (timer expirations, AIO bytes), an inode number or a
    /// `-errno`.
    pub ret_data: i64,
    /// Per-type arguments (timer: `arg[0]` expiry in ns, relative or
    /// absolute, `arg[1]` period in ns or 0; AIO: buffer address and length,
    /// or file offset and count for sendfile); zero otherwise.
    pub arg: [u64; 2],
    /// AIO sendfile: the source file descriptor; zero otherwise.
    pub arg_fd: u32,
    /// Must be zero.
    pub reserved: u32,
}

const _: () = assert!(size_of::<Ukevent>() == 64);
const _: () = assert!(core::mem::align_of::<Ukevent>() == 8);
const _: () = assert!(offset_of!(Ukevent, user_data) == 0);
const _: () = assert!(offset_of!(Ukevent, id) == 8);
const _: () = assert!(offset_of!(Ukevent, type_) == 16);
const _: () = assert!(offset_of!(Ukevent, event) == 20);
const _: () = assert!(offset_of!(Ukevent, req_flags) == 24);
const _: () = assert!(offset_of!(Ukevent, ret_flags) == 28);
const _: () = assert!(offset_of!(Ukevent, ret_data) == 32);
const _: () = assert!(offset_of!(Ukevent, arg) == 40);
const _: () = assert!(offset_of!(Ukevent, arg_fd) == 56);
const _: () = assert!(offset_of!(Ukevent, reserved) == 60);

/// `struct kevent_ring_params`: the `buf` of `KEVENT_CTL_INIT` with
/// [`KEVENT_RING`].
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct KeventRingParams {
    /// Number of slots: a power of two, 1 to [`KEVENT_RING_MAX_ENTRIES`].
    pub entries: u32,
    /// Must be zero.
    pub flags: u32,
    /// Must be zero.
    pub reserved: [u64; 3],
}

const _: () = assert!(size_of::<KeventRingParams>() == 32);
const _: () = assert!(core::mem::align_of::<KeventRingParams>() == 8);
const _: () = assert!(offset_of!(KeventRingParams, entries) == 0);
const _: () = assert!(offset_of!(KeventRingParams, flags) == 4);
const _: () = assert!(offset_of!(KeventRingParams, reserved) == 8);

/// `struct kevent_ring_event`: one slot of the ready ring.
///
/// 64 bytes (one cache line). The fields after `seq` are those of
/// [`Ukevent`] without the arguments.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct KeventRingEvent {
    /// The slot's sequence number: the slot is free for position `p` when it
    /// is `p`, and holds the event of position `p` when it is `p + 1`.
    pub seq: u64,
    /// As in [`Ukevent`].
    pub user_data: u64,
    /// As in [`Ukevent`].
    pub id: u64,
    /// As in [`Ukevent`] (`type` in C).
    pub type_: u32,
    /// The events that fired.
    pub event: u32,
    /// As in [`Ukevent`].
    pub req_flags: u32,
    /// [`KEVENT_RET_DONE`].
    pub ret_flags: u32,
    /// As in [`Ukevent`].
    pub ret_data: i64,
    /// Zero.
    pub reserved: [u64; 2],
}

const _: () = assert!(size_of::<KeventRingEvent>() == 64);
const _: () = assert!(core::mem::align_of::<KeventRingEvent>() == 8);
const _: () = assert!(offset_of!(KeventRingEvent, seq) == 0);
const _: () = assert!(offset_of!(KeventRingEvent, user_data) == 8);
const _: () = assert!(offset_of!(KeventRingEvent, id) == 16);
const _: () = assert!(offset_of!(KeventRingEvent, type_) == 24);
const _: () = assert!(offset_of!(KeventRingEvent, event) == 28);
const _: () = assert!(offset_of!(KeventRingEvent, req_flags) == 32);
const _: () = assert!(offset_of!(KeventRingEvent, ret_flags) == 36);
const _: () = assert!(offset_of!(KeventRingEvent, ret_data) == 40);
const _: () = assert!(offset_of!(KeventRingEvent, reserved) == 48);

/// `struct kevent_ring`: the header of the mapped ring, at offset 0 of the
/// queue's descriptor, followed by the slots.
///
/// `head` and `tail` are in separate cache lines. The process shares this
/// memory with the kernel and with every other consumer: access it
/// atomically (the crate's [`Ring`](crate::Ring) does).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct KeventRing {
    /// The next position to take; advanced by the consumers only.
    pub head: u64,
    /// Padding.
    pub __pad0: [u64; 7],
    /// The next position the kernel writes (for information: a consumer
    /// goes by the slots' `seq`).
    pub tail: u64,
    /// Events that found the ring full and took the ready list.
    pub overflow: u64,
    /// Number of slots, a power of two, at least 2.
    pub entries: u32,
    /// Padding.
    pub __pad1: u32,
    /// Padding.
    pub __pad2: [u64; 5],
    /// The slots (`entries` of them); slot `i` starts with `seq` = `i`.
    pub events: [KeventRingEvent; 0],
}

const _: () = assert!(size_of::<KeventRing>() == 128);
const _: () = assert!(core::mem::align_of::<KeventRing>() == 8);
const _: () = assert!(offset_of!(KeventRing, head) == 0);
const _: () = assert!(offset_of!(KeventRing, tail) == 64);
const _: () = assert!(offset_of!(KeventRing, overflow) == 72);
const _: () = assert!(offset_of!(KeventRing, entries) == 80);
const _: () = assert!(offset_of!(KeventRing, events) == 128);

/// `KEVENT_RING_SIZE(entries)`: the bytes of the ring of a queue with
/// `entries` slots, the length to `mmap()` before rounding up to pages.
pub const fn kevent_ring_size(entries: u32) -> u64 {
    size_of::<KeventRing>() as u64 + entries as u64 * size_of::<KeventRingEvent>() as u64
}

/// The raw `kevent_ctl()` system call.
///
/// Returns what the system call returns: a file descriptor
/// (`KEVENT_CTL_INIT`) or the number of entries that took effect, or -1 with
/// `errno` set.
///
/// # Safety
///
/// `buf` must be null or point to `num` entries that are valid for reads and
/// writes for the duration of the call (the kernel writes each entry's
/// result back). For `KEVENT_CTL_INIT`, `buf` is null, or with
/// [`KEVENT_RING`] in `num` points to a readable [`KeventRingParams`] (cast
/// to `*mut Ukevent`). An invalid pointer makes the kernel fail with `EFAULT`, but
/// writes through a pointer that happens to be valid memory of something
/// else corrupt it.
pub unsafe fn kevent_ctl(fd: i32, cmd: u32, num: u32, buf: *mut Ukevent) -> i64 {
    // SAFETY: the caller guarantees `buf` is valid as documented; the other
    // arguments are plain integers, widened to the register size the
    // variadic `syscall()` reads.
    unsafe {
        libc::syscall(
            SYS_KEVENT_CTL,
            libc::c_long::from(fd),
            libc::c_ulong::from(cmd),
            libc::c_ulong::from(num),
            buf,
        ) as i64
    }
}

/// The raw `kevent_get_events()` system call.
///
/// `timeout` is a `struct __kernel_timespec` in the kernel; on the 64-bit
/// targets this crate supports, `libc::timespec` has the same layout.
/// Returns the number of events copied to `buf`, or -1 with `errno` set.
///
/// # Safety
///
/// `timeout` must be null or point to a readable `timespec`; `buf` must point
/// to `max_nr` entries valid for writes for the duration of the call.
pub unsafe fn kevent_get_events(
    fd: i32,
    min_nr: u32,
    max_nr: u32,
    timeout: *const libc::timespec,
    buf: *mut Ukevent,
    flags: u32,
) -> i64 {
    // SAFETY: the caller guarantees `timeout` and `buf` are valid as
    // documented; the other arguments are plain integers.
    unsafe {
        libc::syscall(
            SYS_KEVENT_GET_EVENTS,
            libc::c_long::from(fd),
            libc::c_ulong::from(min_nr),
            libc::c_ulong::from(max_nr),
            timeout,
            buf,
            libc::c_ulong::from(flags),
        ) as i64
    }
}
