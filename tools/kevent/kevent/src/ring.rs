// SPDX-License-Identifier: GPL-2.0

//! The ready ring of a queue made with `KEVENT_RING` ([`Queue::with_ring`]).
//!
//! The ring is memory shared with the kernel, which writes events into it,
//! and with every other consumer (threads of this process, other processes
//! that map the same queue). Nothing about it is trusted: every access to it
//! is atomic, so that whatever anyone else writes there (a process breaking
//! the protocol) only loses or repeats events, never breaks memory safety;
//! the mapping's length and the mask of the positions come from this side,
//! never from the shared header.

use std::fmt;
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

use crate::sys::{self, KeventRing, KeventRingEvent, Ukevent};
use crate::{Event, Queue, QueueFlags};

/// The ring's header as this side accesses it: `struct kevent_ring`, every
/// field atomic.
#[repr(C)]
pub(crate) struct RawHeader {
    pub(crate) head: AtomicU64,
    _pad0: [AtomicU64; 7],
    pub(crate) tail: AtomicU64,
    pub(crate) overflow: AtomicU64,
    pub(crate) entries: AtomicU32,
    _pad1: AtomicU32,
    _pad2: [AtomicU64; 5],
}

const _: () = assert!(size_of::<RawHeader>() == size_of::<KeventRing>());
const _: () = assert!(offset_of!(RawHeader, head) == offset_of!(KeventRing, head));
const _: () = assert!(offset_of!(RawHeader, tail) == offset_of!(KeventRing, tail));
const _: () = assert!(offset_of!(RawHeader, overflow) == offset_of!(KeventRing, overflow));
const _: () = assert!(offset_of!(RawHeader, entries) == offset_of!(KeventRing, entries));

/// One slot as this side accesses it: `struct kevent_ring_event`, every
/// field atomic.
#[repr(C)]
pub(crate) struct RawSlot {
    pub(crate) seq: AtomicU64,
    pub(crate) user_data: AtomicU64,
    pub(crate) id: AtomicU64,
    pub(crate) type_: AtomicU32,
    pub(crate) event: AtomicU32,
    pub(crate) req_flags: AtomicU32,
    pub(crate) ret_flags: AtomicU32,
    pub(crate) ret_data: AtomicI64,
    pub(crate) reserved: [AtomicU64; 2],
}

const _: () = assert!(size_of::<RawSlot>() == size_of::<KeventRingEvent>());
const _: () = assert!(offset_of!(RawSlot, seq) == offset_of!(KeventRingEvent, seq));
const _: () = assert!(offset_of!(RawSlot, user_data) == offset_of!(KeventRingEvent, user_data));
const _: () = assert!(offset_of!(RawSlot, id) == offset_of!(KeventRingEvent, id));
const _: () = assert!(offset_of!(RawSlot, type_) == offset_of!(KeventRingEvent, type_));
const _: () = assert!(offset_of!(RawSlot, event) == offset_of!(KeventRingEvent, event));
const _: () = assert!(offset_of!(RawSlot, req_flags) == offset_of!(KeventRingEvent, req_flags));
const _: () = assert!(offset_of!(RawSlot, ret_flags) == offset_of!(KeventRingEvent, ret_flags));
const _: () = assert!(offset_of!(RawSlot, ret_data) == offset_of!(KeventRingEvent, ret_data));
const _: () = assert!(offset_of!(RawSlot, reserved) == offset_of!(KeventRingEvent, reserved));

impl RawSlot {
    /// The event in the slot. Only the arguments of [`Ukevent`] are missing
    /// from a slot; they are zero.
    fn read(&self) -> Event {
        Event::from_raw(Ukevent {
            user_data: self.user_data.load(Ordering::Relaxed),
            id: self.id.load(Ordering::Relaxed),
            type_: self.type_.load(Ordering::Relaxed),
            event: self.event.load(Ordering::Relaxed),
            req_flags: self.req_flags.load(Ordering::Relaxed),
            ret_flags: self.ret_flags.load(Ordering::Relaxed),
            ret_data: self.ret_data.load(Ordering::Relaxed),
            arg: [0, 0],
            arg_fd: 0,
            reserved: 0,
        })
    }
}

/// The ready ring of a queue: events collected without a system call.
///
/// Made with its queue by [`Queue::with_ring`], or mapped again from a
/// queue's descriptor by [`Ring::map`]. The kernel writes into the ring the
/// events of the kevents that need nothing at delivery (timers that are not
/// periodic, inodes, AIO completions, and the edge-triggered or oneshot
/// kevents of sockets); every other event, and those that find the ring
/// full, take the queue's ready list, collected with [`Queue::wait`] as
/// without a ring. A oneshot kevent written into the ring leaves its queue
/// there (its key is free at the next `kevent_ctl()`).
///
/// [`Queue::wait`] counts the events in the ring towards its `min` and
/// returns (with 0 events if none came from the ready list) as soon as the
/// ring holds one, so a loop that pops until [`Ring::pop`] says `None`, then
/// waits, never sleeps while the ring holds events.
///
/// A `Ring` is the mapping only: it stays valid after its [`Queue`] is
/// dropped (the kernel keeps the memory while it is mapped), and dropping
/// it unmaps it (one `munmap()`). Any number of threads may pop at once
/// (`Ring` is `Send` and `Sync`): each event is taken once.
pub struct Ring {
    /// The start of the mapping: the header.
    base: NonNull<RawHeader>,
    /// The mapping's length in bytes: at least the header and `entries`
    /// slots.
    len: usize,
    /// Number of slots, a power of two, at least 2.
    entries: u32,
}

// SAFETY: the mapping is owned by the `Ring` and unmapped only by its drop;
// every access to the shared memory goes through atomics, so sharing a `Ring`
// between threads, or moving it to another, is sound.
unsafe impl Send for Ring {}
// SAFETY: see `Send`: `&Ring` only reads and writes the memory atomically.
unsafe impl Sync for Ring {}

/// The system's page size.
fn page_size() -> usize {
    // SAFETY: sysconf() takes no pointer.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// The length to map for a ring of `entries` slots (`KEVENT_RING_SIZE`
/// rounded up to pages), or `EINVAL` if `entries` is not a power of two
/// from 2 to `KEVENT_RING_MAX_ENTRIES`.
pub(crate) fn map_len(entries: u32) -> io::Result<usize> {
    if !entries.is_power_of_two() || !(2..=sys::KEVENT_RING_MAX_ENTRIES).contains(&entries) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // At most 128 + 65536 * 64 bytes: no overflow.
    Ok((sys::kevent_ring_size(entries) as usize).next_multiple_of(page_size()))
}

impl Ring {
    /// Maps the ring of the queue `fd` with `entries` slots (one `mmap()`;
    /// one `munmap()` more if the mapping is refused), without checking
    /// that `fd` is a kevent queue.
    pub(crate) fn map_fd(fd: BorrowedFd<'_>, entries: u32) -> io::Result<Ring> {
        let len = map_len(entries)?;
        // SAFETY: a new mapping at an address the kernel chooses; nothing
        // existing is replaced.
        let addr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `addr` is a new mapping of `len` bytes, owned by nobody
        // else: the `Ring` takes it over and unmaps it when dropped.
        unsafe { Ring::from_mapping(addr, len, entries) }
    }

    /// Takes over the mapping of `len` bytes at `addr`, a ring of `entries`
    /// slots, checking that its header says `entries`. On error the mapping
    /// is unmapped.
    ///
    /// # Safety
    ///
    /// `addr` must be the start of a mapping of `len` bytes, page aligned,
    /// readable and writable, that nothing else unmaps or remaps while the
    /// returned `Ring` lives, and that is only ever accessed atomically.
    pub(crate) unsafe fn from_mapping(
        addr: *mut libc::c_void,
        len: usize,
        entries: u32,
    ) -> io::Result<Ring> {
        let ring = Ring {
            base: NonNull::new(addr.cast()).ok_or(io::ErrorKind::InvalidInput)?,
            len,
            entries,
        };
        // Dropping `ring` on an error below unmaps the memory.
        let fits = map_len(entries).is_ok_and(|need| need <= len);
        if !fits || ring.header().entries.load(Ordering::Relaxed) != entries {
            // Not the ring of this size: its slots may lie beyond `len`.
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        Ok(ring)
    }

    /// Maps the ring of `queue`, made with `entries` slots (its creator's
    /// [`Queue::with_ring`], possibly in another process: a descriptor
    /// inherited or received with `SCM_RIGHTS`), as a new [`Ring`].
    ///
    /// Two system calls: a `kevent_ctl()` of no entry (`EINVAL` if `queue`
    /// is not a kevent queue) and the `mmap()`. Errors: `ENODEV` if the
    /// queue has no ring; `EINVAL` if `entries` is not its number of slots
    /// (one `munmap()` more if the `mmap()` succeeded), or not a power of two
    /// up to `KEVENT_RING_MAX_ENTRIES` (no system call).
    pub fn map(queue: &Queue, entries: u32) -> io::Result<Ring> {
        map_len(entries)?;
        // A regular file mapped as a ring would raise SIGBUS beyond its
        // end: make sure this is a kevent queue first.
        queue.add(&mut [])?;
        Ring::map_fd(queue.as_fd(), entries)
    }

    fn header(&self) -> &RawHeader {
        // SAFETY: the mapping starts with the header (`from_mapping` checked
        // that it is long enough) and lives as long as `self`; its fields
        // are atomics, valid for any bits.
        unsafe { self.base.as_ref() }
    }

    /// The slot of position `pos`.
    fn slot(&self, pos: u64) -> &RawSlot {
        let i = (pos & u64::from(self.entries - 1)) as usize;
        // SAFETY: `i < entries`, and the mapping holds the header and
        // `entries` slots (checked by `from_mapping`); it lives as long as
        // `self`, and slots are atomics, valid for any bits.
        unsafe {
            &*self
                .base
                .as_ptr()
                .cast::<u8>()
                .add(size_of::<RawHeader>() + i * size_of::<RawSlot>())
                .cast::<RawSlot>()
        }
    }

    /// Gives up the mapping without unmapping it: its address and length.
    #[cfg(test)]
    pub(crate) fn into_raw(self) -> (*mut libc::c_void, usize) {
        let this = std::mem::ManuallyDrop::new(self);
        (this.base.as_ptr().cast(), this.len)
    }

    /// The raw header, for the tests' fake producer.
    #[cfg(test)]
    pub(crate) fn raw_header(&self) -> &RawHeader {
        self.header()
    }

    /// The raw slot of position `pos`, for the tests' fake producer.
    #[cfg(test)]
    pub(crate) fn raw_slot(&self, pos: u64) -> &RawSlot {
        self.slot(pos)
    }

    /// Takes the next event, or returns `None` if the ring is empty. No
    /// system call.
    ///
    /// Follows the consumers' protocol of `<linux/kevent.h>`, so that any
    /// number of threads and processes may pop from one ring, each event
    /// taken once. The event's arguments ([`Event::raw`]'s `arg` and
    /// `arg_fd`) are zero; ring events are never broken (broken reports take
    /// the ready list).
    pub fn pop(&self) -> Option<Event> {
        let head = &self.header().head;
        let entries = u64::from(self.entries);
        let mut pos = head.load(Ordering::Relaxed);
        loop {
            let slot = self.slot(pos);
            // Acquire: the event the kernel (or the fake producer) wrote
            // before it published the slot is visible.
            let seq = slot.seq.load(Ordering::Acquire);
            let diff = seq.wrapping_sub(pos.wrapping_add(1)) as i64;
            if diff == 0 {
                match head.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        let ev = slot.read();
                        // Release: the copy is done before the producer
                        // may write the slot again.
                        slot.seq.store(pos.wrapping_add(entries), Ordering::Release);
                        return Some(ev);
                    }
                    // `pos` is now the current head.
                    Err(cur) => pos = cur,
                }
            } else if diff < 0 {
                // Not written yet: empty.
                return None;
            } else {
                // Another consumer took `pos` and freed the slot: the head
                // moved on. A head that did not is a broken ring (someone
                // wrote the slot or the head outside the protocol): call it
                // empty rather than spin on it.
                let cur = head.load(Ordering::Relaxed);
                if cur == pos {
                    return None;
                }
                pos = cur;
            }
        }
    }

    /// Pops events until the ring is found empty (see [`Ring::pop`]).
    pub fn drain(&self) -> RingDrain<'_> {
        RingDrain { ring: self }
    }

    /// Events that found the ring full and took the ready list instead,
    /// since the queue was made (the header's `overflow`, written by the
    /// kernel).
    pub fn overflow(&self) -> u64 {
        self.header().overflow.load(Ordering::Relaxed)
    }

    /// The number of slots.
    pub fn entries(&self) -> u32 {
        self.entries
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: the mapping is this ring's alone (see `from_mapping`) and
        // no reference into it outlives `self`. An error (impossible for a
        // mapping made here) leaves the memory mapped, which is safe.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = self.header();
        f.debug_struct("Ring")
            .field("entries", &self.entries)
            .field("head", &h.head.load(Ordering::Relaxed))
            .field("tail", &h.tail.load(Ordering::Relaxed))
            .field("overflow", &h.overflow.load(Ordering::Relaxed))
            .finish()
    }
}

/// The iterator of [`Ring::drain`]: pops until the ring is found empty.
#[derive(Debug)]
pub struct RingDrain<'a> {
    ring: &'a Ring,
}

impl Iterator for RingDrain<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        self.ring.pop()
    }
}

impl std::iter::FusedIterator for RingDrain<'_> {}

impl Queue {
    /// Makes a new queue with `flags` and a ready ring of `entries` slots
    /// (`KEVENT_CTL_INIT` with `KEVENT_RING`), and maps the ring.
    ///
    /// Two system calls, the `kevent_ctl()` and the `mmap()` (on an error of
    /// the `mmap()`, a `close()` of the new queue too). `entries` must be a
    /// power of two from 1 to 65536 (`KEVENT_RING_MAX_ENTRIES`), else the
    /// kernel refuses it with `EINVAL`, as does a kernel without rings. See
    /// [`Ring`] for which events the ring gets.
    pub fn with_ring(flags: QueueFlags, entries: u32) -> io::Result<(Queue, Ring)> {
        let mut params = sys::KeventRingParams {
            entries,
            ..Default::default()
        };
        let buf = ptr::from_mut(&mut params).cast::<Ukevent>();
        let num = flags.bits() | sys::KEVENT_RING;
        // SAFETY: KEVENT_CTL_INIT with KEVENT_RING reads one
        // `struct kevent_ring_params` at `buf`, `params`, alive for the
        // call, and writes nothing there.
        let ret = unsafe { sys::kevent_ctl(-1, sys::KEVENT_CTL_INIT, num, buf) };
        let queue = Queue::from_init(ret)?;
        let ring = Ring::map_fd(queue.as_fd(), entries)?;
        Ok((queue, ring))
    }
}
