// SPDX-License-Identifier: GPL-2.0

//! The ready ring: events a queue made with `KEVENT_RING` writes where they are notified, into
//! memory the process maps, so that it collects them without a system call.
//!
//! The layout and the consumers' protocol are those of `struct kevent_ring` in
//! `<uapi/linux/kevent.h>`: a header (the consumers' `head`, the kernel's `tail` and `overflow`,
//! `entries`) and `entries` slots of one cache line each, every slot with a sequence number. The
//! kernel writes position `p` into slot `p & (entries - 1)` only when that slot's `seq` is `p`
//! (free: its previous event was consumed, or it was never used), then stores `seq = p + 1`; a
//! consumer claims position `p` by moving `head` from `p` to `p + 1`, copies the event and
//! stores `seq = p + entries`, which frees the slot for the next lap. Many threads may consume;
//! the kernel is the only producer, serialised by the queue's ready lock.
//!
//! Nothing the process writes is trusted: the kernel only compares a slot's `seq` with the
//! position it means to write, and reads `head` only to count the events waiting (for
//! `kevent_get_events()` and `poll()`). A process that breaks the protocol loses or repeats its
//! own events, nothing else.

use crate::abi::KEVENT_RET_DONE;
use kernel::{
    mm::{shared_buffer::SharedBuffer, virt::VmaNew},
    prelude::*,
    sync::atomic::{ordering, Atomic},
    uapi::{kevent_ring, kevent_ring_event, kevent_ring_params, KEVENT_RING_MAX_ENTRIES},
};

// The layout of the uapi header, which its comment and userspace rely on.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(kevent_ring, head) == 0);
    assert!(offset_of!(kevent_ring, tail) == 64);
    assert!(offset_of!(kevent_ring, overflow) == 72);
    assert!(offset_of!(kevent_ring, entries) == 80);
    assert!(size_of::<kevent_ring>() == 128);
    assert!(size_of::<kevent_ring_event>() == 64);
    assert!(offset_of!(kevent_ring_event, seq) == 0);
    assert!(offset_of!(kevent_ring_event, ret_data) == 40);
};

/// Offsets in the header of the fields the kernel reads or writes after creation.
const HEAD: usize = core::mem::offset_of!(kevent_ring, head);
const TAIL: usize = core::mem::offset_of!(kevent_ring, tail);
const OVERFLOW: usize = core::mem::offset_of!(kevent_ring, overflow);

/// Bytes of the header, where the slots start.
const HEADER: usize = core::mem::size_of::<kevent_ring>();
/// Bytes of one slot.
const SLOT: usize = core::mem::size_of::<kevent_ring_event>();

/// One event, as the kernel writes it into a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RingEvent {
    pub(crate) user_data: u64,
    pub(crate) id: u64,
    pub(crate) ty: u32,
    pub(crate) event: u32,
    pub(crate) req_flags: u32,
    pub(crate) ret_data: i64,
}

/// The kernel's side of a ring, guarded by its queue's ready lock (in `ReadyList`).
#[derive(Default)]
pub(crate) struct Producer {
    /// The next position to write.
    tail: u64,
    /// Events that found the ring full.
    overflow: u64,
}

impl Producer {
    /// Events that found the ring full (the tests' view of the header's `overflow`).
    #[cfg(CONFIG_KEVENT_KUNIT_TEST)]
    pub(crate) fn overflow(&self) -> u64 {
        self.overflow
    }
}

/// A queue's ring: the shared memory, its size fixed at creation.
///
/// # Invariants
///
/// `buf` holds at least `HEADER + entries * SLOT` bytes; `entries` is a power of two.
pub(crate) struct Ring {
    buf: SharedBuffer,
    entries: u32,
}

impl Ring {
    /// A ring with the parameters of `KEVENT_CTL_INIT`: `EINVAL` unless `entries` is a power of
    /// two up to `KEVENT_RING_MAX_ENTRIES` and the rest is zero. Every slot starts free for its
    /// first position (`seq` = its index).
    pub(crate) fn new(params: &kevent_ring_params) -> Result<Ring> {
        let entries = params.entries;
        // At least two: a slot's `seq` tells a free slot (`pos`) from a written one (`pos + 1`)
        // only if the next lap's position differs from both, `pos + entries` with `entries >= 2`;
        // with one slot a writer would take the slot whose event is still unread.
        if !entries.is_power_of_two()
            || entries < 2
            || entries > KEVENT_RING_MAX_ENTRIES
            || params.flags != 0
            || params.reserved != [0; 3]
        {
            return Err(EINVAL);
        }
        let buf = SharedBuffer::new(HEADER + entries as usize * SLOT, GFP_KERNEL_ACCOUNT)?;
        // INVARIANT: Checked above; the buffer has room for the header and the slots.
        let ring = Ring { buf, entries };
        // SAFETY: The header is within the buffer; nobody maps it yet.
        unsafe { (&raw mut (*ring.header()).entries).write_volatile(entries) };
        for i in 0..u64::from(entries) {
            ring.seq(i).store(i, ordering::Relaxed);
            let slot = ring.slot(i);
            // SAFETY: The slot is within the buffer; nobody maps it yet. Its `ret_flags` is the
            // same for every event (`reserved` stays zero): `post` does not write them again.
            unsafe { (&raw mut (*slot).ret_flags).write_volatile(KEVENT_RET_DONE) };
        }
        Ok(ring)
    }

    fn header(&self) -> *mut kevent_ring {
        self.buf.as_ptr().cast()
    }

    /// Sets the header's `u64` at byte `off`, for the process to read (`WRITE_ONCE()`).
    fn set_header_u64(&self, off: usize, v: u64) {
        // SAFETY: As in `header_u64`; one aligned volatile store, as `WRITE_ONCE()`.
        unsafe { self.buf.as_ptr().add(off).cast::<u64>().write_volatile(v) }
    }

    /// The header's `u64` at byte `off`.
    fn header_u64(&self, off: usize) -> &Atomic<u64> {
        // SAFETY: `off` is the offset of an aligned `u64` field of the header (`HEAD`, `TAIL` or
        // `OVERFLOW`), within the buffer, which lives as long as `self`; the process accesses it
        // atomically too.
        unsafe { Atomic::from_ptr(self.buf.as_ptr().add(off).cast::<u64>()) }
    }

    /// The slot of position `pos`.
    fn slot(&self, pos: u64) -> *mut kevent_ring_event {
        let i = (pos & u64::from(self.entries - 1)) as usize;
        // SAFETY: By the type invariants the buffer has room for `entries` slots after the
        // header, and `i < entries`.
        unsafe { self.buf.as_ptr().add(HEADER + i * SLOT).cast() }
    }

    /// The sequence number of the slot of position `pos`.
    fn seq(&self, pos: u64) -> &Atomic<u64> {
        // SAFETY: `seq` is an aligned `u64` within the buffer (see `slot`), which lives as long
        // as `self`; the process accesses it atomically too.
        unsafe { Atomic::from_ptr(&raw mut (*self.slot(pos)).seq) }
    }

    /// Writes `ev` at the producer's tail, unless the ring is full there: returns whether it
    /// did. On a full ring the overflow count grows.
    pub(crate) fn post(&self, p: &mut Producer, ev: &RingEvent) -> bool {
        if self.try_post(p, ev) {
            return true;
        }
        p.overflow += 1;
        self.set_header_u64(OVERFLOW, p.overflow);
        false
    }

    /// Like [`Ring::post`], but a full ring is not counted in its overflow (the caller reports
    /// the event another way, which counts it).
    pub(crate) fn try_post(&self, p: &mut Producer, ev: &RingEvent) -> bool {
        let pos = p.tail;
        // Acquire: the consumer that freed the slot has finished copying it.
        if self.seq(pos).load(ordering::Acquire) != pos {
            return false;
        }
        let slot = self.slot(pos);
        // SAFETY: The slot is within the buffer (see `slot`). The process may access it at any
        // time, so every field is written with one volatile store of its own. `ret_flags` and
        // `reserved` were set when the ring was made: a process that changes them in a slot
        // only confuses itself.
        unsafe {
            (&raw mut (*slot).user_data).write_volatile(ev.user_data);
            (&raw mut (*slot).id).write_volatile(ev.id);
            (&raw mut (*slot).type_).write_volatile(ev.ty);
            (&raw mut (*slot).event).write_volatile(ev.event);
            (&raw mut (*slot).req_flags).write_volatile(ev.req_flags);
            (&raw mut (*slot).ret_data).write_volatile(ev.ret_data);
        }
        // Release: the event is visible before the slot is.
        self.seq(pos).store(pos.wrapping_add(1), ordering::Release);
        p.tail = pos.wrapping_add(1);
        self.set_header_u64(TAIL, p.tail);
        true
    }

    /// How many events wait in the ring: what the producer wrote and the consumers did not claim
    /// (0 if the head the process wrote makes no sense).
    pub(crate) fn pending(&self, p: &Producer) -> usize {
        let head = self.header_u64(HEAD).load(ordering::Relaxed);
        let n = p.tail.wrapping_sub(head);
        if n > u64::from(self.entries) {
            0
        } else {
            n as usize
        }
    }

    /// Maps the ring into the VMA a `mmap()` of the queue sets up (see [`SharedBuffer::map`]).
    pub(crate) fn map(&self, vma: &VmaNew) -> Result {
        self.buf.map(vma)
    }

    /// Takes the event at the head, as a consumer does (the KUnit tests' consumer).
    #[cfg(CONFIG_KEVENT_KUNIT_TEST)]
    pub(crate) fn pop(&self) -> Option<RingEvent> {
        let head = self.header_u64(HEAD);
        let pos = head.load(ordering::Relaxed);
        if self.seq(pos).load(ordering::Acquire) != pos.wrapping_add(1) {
            return None;
        }
        head.store(pos.wrapping_add(1), ordering::Relaxed);
        let slot = self.slot(pos);
        // SAFETY: The slot is within the buffer; nobody else consumes in the tests.
        let ev = unsafe {
            RingEvent {
                user_data: (&raw const (*slot).user_data).read_volatile(),
                id: (&raw const (*slot).id).read_volatile(),
                ty: (&raw const (*slot).type_).read_volatile(),
                event: (&raw const (*slot).event).read_volatile(),
                req_flags: (&raw const (*slot).req_flags).read_volatile(),
                ret_data: (&raw const (*slot).ret_data).read_volatile(),
            }
        };
        self.seq(pos)
            .store(pos.wrapping_add(u64::from(self.entries)), ordering::Release);
        Some(ev)
    }
}

#[kunit_tests(kevent_ring)]
mod tests {
    use super::*;

    fn params(entries: u32) -> kevent_ring_params {
        kevent_ring_params {
            entries,
            flags: 0,
            reserved: [0; 3],
        }
    }

    fn ev(n: u64) -> RingEvent {
        RingEvent {
            user_data: n,
            id: n + 1,
            ty: 3,
            event: 1,
            req_flags: 2,
            ret_data: -(n as i64),
        }
    }

    #[test]
    fn bad_params() {
        for entries in [0, 1, 3, 6, KEVENT_RING_MAX_ENTRIES * 2] {
            assert!(matches!(Ring::new(&params(entries)), Err(e) if e == EINVAL));
        }
        let mut p = params(4);
        p.flags = 1;
        assert!(matches!(Ring::new(&p), Err(e) if e == EINVAL));
        let mut p = params(4);
        p.reserved[2] = 1;
        assert!(matches!(Ring::new(&p), Err(e) if e == EINVAL));
        assert!(Ring::new(&params(2)).is_ok());
        assert!(Ring::new(&params(KEVENT_RING_MAX_ENTRIES)).is_ok());
    }

    #[test]
    fn smallest_ring_never_overwrites() {
        let r = Ring::new(&params(2)).unwrap();
        let mut p = Producer::default();
        assert!(r.try_post(&mut p, &ev(1)));
        assert!(r.try_post(&mut p, &ev(2)));
        // Full: neither slot may be taken before it is read.
        assert!(!r.try_post(&mut p, &ev(3)));
        assert_eq!(r.pop().map(|e| e.user_data), Some(1));
        assert!(r.try_post(&mut p, &ev(4)));
        assert!(!r.try_post(&mut p, &ev(5)));
        assert_eq!(r.pop().map(|e| e.user_data), Some(2));
        assert_eq!(r.pop().map(|e| e.user_data), Some(4));
        assert!(r.pop().is_none());
    }

    #[test]
    fn fills_overflows_and_wraps() -> Result {
        let ring = Ring::new(&params(4))?;
        let mut p = Producer::default();
        assert_eq!(ring.pending(&p), 0);
        assert_eq!(ring.pop(), None);
        for n in 0..4 {
            assert!(ring.post(&mut p, &ev(n)));
        }
        assert_eq!(ring.pending(&p), 4);
        // Full: counted, not written.
        assert!(!ring.post(&mut p, &ev(9)));
        assert_eq!(p.overflow, 1);
        assert_eq!(ring.header_u64(OVERFLOW).load(ordering::Relaxed), 1);
        assert_eq!(ring.pop(), Some(ev(0)));
        assert_eq!(ring.pending(&p), 3);
        // The freed slot takes the next lap's first position.
        assert!(ring.post(&mut p, &ev(4)));
        for n in 1..5 {
            assert_eq!(ring.pop(), Some(ev(n)));
        }
        assert_eq!(ring.pop(), None);
        assert_eq!(ring.pending(&p), 0);
        // Many laps.
        for n in 5..105 {
            assert!(ring.post(&mut p, &ev(n)));
            assert_eq!(ring.pop(), Some(ev(n)));
        }
        assert_eq!(ring.header_u64(TAIL).load(ordering::Relaxed), 105);
        Ok(())
    }

    #[test]
    fn untrusted_head() -> Result {
        let ring = Ring::new(&params(8))?;
        let mut p = Producer::default();
        assert!(ring.post(&mut p, &ev(0)));
        // A head past the tail, or far behind it, counts nothing.
        ring.header_u64(HEAD).store(5, ordering::Relaxed);
        assert_eq!(ring.pending(&p), 0);
        ring.header_u64(HEAD)
            .store(u64::MAX - 100, ordering::Relaxed);
        assert_eq!(ring.pending(&p), 0);
        // A slot whose seq the process broke is never written: the event overflows.
        ring.header_u64(HEAD).store(1, ordering::Relaxed);
        ring.seq(1).store(12345, ordering::Relaxed);
        assert!(!ring.post(&mut p, &ev(1)));
        assert_eq!(p.overflow, 1);
        Ok(())
    }
}
