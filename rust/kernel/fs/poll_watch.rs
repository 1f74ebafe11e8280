// SPDX-License-Identifier: GPL-2.0

//! Watching a file's readiness through its `->poll` wait queues, as epoll does.
//!
//! A [`PollWatch`] calls the file's `->poll` once with a poll table whose queue function adds a
//! wait-queue entry with its own wake function to each wait queue the file names. From then on,
//! every wake-up of those queues calls [`PollWake::wake`] with the poll key. Dropping the watch
//! removes the entries. Wait queues that are freed while watched (`POLLFREE`, see
//! `wake_up_pollfree()`) are handled as epoll handles them.
//!
//! C headers: [`include/linux/poll.h`](srctree/include/linux/poll.h),
//! [`include/linux/wait.h`](srctree/include/linux/wait.h)

use crate::{
    bindings,
    ffi::{c_int, c_uint, c_void},
    fs::File,
    prelude::*,
    sync::{aref::ARef, rcu, Arc, ArcBorrow},
    types::Opaque,
};
use core::{
    marker::PhantomPinned,
    ptr,
    sync::atomic::{AtomicPtr, Ordering},
};

/// What a [`PollWatch`] calls when a watched wait queue is woken.
pub trait PollWake: Send + Sync {
    /// A watched wait queue was woken with poll key `events` (0 if the waker gave none).
    ///
    /// Runs in atomic context (possibly hard interrupt) under the wait queue's lock: it must not
    /// sleep, and must not wake the wait queue it was called from. `this` may be turned into an
    /// `Arc` to hand work to process context.
    fn wake(this: ArcBorrow<'_, Self>, events: u32);
}

/// `POLLFREE` from `<uapi/asm-generic/poll.h>` (its `__force` cast hides it from bindgen): the
/// wait queue is being freed. [`PollWake::wake`] sees it once; the watch then stops.
pub const POLLFREE: u32 = 0x4000;

/// The most wait queues one file may register from its `->poll` (a tty uses two).
pub const MAX_WAIT_QUEUES: usize = 2;

/// One wait-queue entry of a watch.
#[repr(C)]
struct Entry {
    wait: Opaque<bindings::wait_queue_entry>,
    /// The wait queue the entry is on; null when not on one (never added, or `POLLFREE`).
    head: AtomicPtr<bindings::wait_queue_head>,
}

/// A watch on one file's `->poll` wait queues, calling `T::wake`.
///
/// # Invariants
///
/// Every entry whose `head` is non-null is on that wait queue, with `private` pointing at this
/// watch; the file (and so its wait queues, except those released with `POLLFREE`) stays alive
/// while the watch exists.
#[pin_data(PinnedDrop)]
pub struct PollWatch<T: PollWake> {
    entries: [Entry; MAX_WAIT_QUEUES],
    target: Arc<T>,
    file: ARef<File>,
    /// Readiness the file reported when the watch started.
    initial: u32,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: The entries are only touched under their wait queue's lock or by their owner; the
// rest is `Send`.
unsafe impl<T: PollWake> Send for PollWatch<T> {}
// SAFETY: As above; shared access only reads `target` and `file`.
unsafe impl<T: PollWake> Sync for PollWatch<T> {}

/// The poll table handed to `->poll`, with the watch it fills.
#[repr(C)]
struct Table<T: PollWake> {
    pt: bindings::poll_table,
    watch: *const PollWatch<T>,
    used: usize,
    overflow: bool,
}

impl<T: PollWake> PollWatch<T> {
    /// Starts watching `file`; `target` is called on every wake-up from now on.
    ///
    /// Fails with `EPERM` if the file cannot be polled (as `epoll_ctl()` does), and with `E2BIG`
    /// if its `->poll`
    /// registers more than [`MAX_WAIT_QUEUES`] wait queues.
    pub fn new(file: ARef<File>, target: Arc<T>) -> impl PinInit<Self, Error> {
        // SAFETY: The closure initialises every field of `*slot` or fails, leaving nothing
        // registered; the watch is pinned, so the entries' addresses stay valid.
        unsafe {
            pin_init::pin_init_from_closure(move |slot: *mut Self| {
                // SAFETY: `file` is a valid file.
                if (*(*file.as_ptr()).f_op).poll.is_none() {
                    return Err(EPERM);
                }
                for i in 0..MAX_WAIT_QUEUES {
                    let e = ptr::addr_of_mut!((*slot).entries[i]);
                    ptr::write(
                        e,
                        Entry {
                            wait: Opaque::uninit(),
                            head: AtomicPtr::new(ptr::null_mut()),
                        },
                    );
                }
                ptr::write(ptr::addr_of_mut!((*slot).target), target);
                ptr::write(ptr::addr_of_mut!((*slot).file), file);
                ptr::write(ptr::addr_of_mut!((*slot).initial), 0);
                let mut table = Table::<T> {
                    pt: core::mem::zeroed(),
                    watch: slot,
                    used: 0,
                    overflow: false,
                };
                bindings::init_poll_funcptr(&mut table.pt, Some(Self::queue_proc));
                let mask = bindings::vfs_poll((*slot).file.as_ptr(), &mut table.pt);
                if table.overflow {
                    // SAFETY: Removes what was added and drops the fields written above.
                    Self::unregister(slot);
                    ptr::drop_in_place(ptr::addr_of_mut!((*slot).target));
                    ptr::drop_in_place(ptr::addr_of_mut!((*slot).file));
                    return Err(E2BIG);
                }
                ptr::write(ptr::addr_of_mut!((*slot).initial), mask);
                Ok(())
            })
        }
    }

    /// The readiness the file reported when the watch started.
    pub fn initial(&self) -> u32 {
        self.initial
    }

    /// The file's readiness now (its `->poll` without a table). May sleep.
    pub fn poll_now(&self) -> u32 {
        // SAFETY: The file is valid; a null table only asks for the mask.
        unsafe { bindings::vfs_poll(self.file.as_ptr(), ptr::null_mut()) }
    }

    /// The watched file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The queue function of our poll table: adds an entry to `head`.
    ///
    /// # Safety
    ///
    /// Called by `->poll` with the `poll_table` of a [`Table<T>`] built by [`PollWatch::new`].
    unsafe extern "C" fn queue_proc(
        _file: *mut bindings::file,
        head: *mut bindings::wait_queue_head,
        pt: *mut bindings::poll_table,
    ) {
        // SAFETY: `pt` is the first field of a `Table<T>` (`repr(C)`).
        let table = unsafe { &mut *pt.cast::<Table<T>>() };
        if table.used == MAX_WAIT_QUEUES {
            table.overflow = true;
            return;
        }
        // SAFETY: `table.watch` is the watch being initialised; its entries were written.
        let entry = unsafe { &(*table.watch).entries[table.used] };
        table.used += 1;
        let wait = entry.wait.get();
        // SAFETY: `wait` is valid and pinned memory; `head` is a live wait queue.
        unsafe {
            bindings::init_waitqueue_func_entry(wait, Some(Self::wake_fn));
            (*wait).private = table.watch.cast_mut().cast::<c_void>();
        }
        entry.head.store(head, Ordering::Release);
        // SAFETY: As above.
        unsafe { bindings::add_wait_queue(head, wait) };
    }

    /// The wake function of our entries.
    ///
    /// # Safety
    ///
    /// Called by the wait-queue code, under the queue's lock, for an entry added by
    /// [`Self::queue_proc`].
    unsafe extern "C" fn wake_fn(
        wait: *mut bindings::wait_queue_entry,
        _mode: c_uint,
        _sync: c_int,
        key: *mut c_void,
    ) -> c_int {
        // SAFETY: `private` was set to the watch, which outlives its registered entries.
        let watch = unsafe { &*(*wait).private.cast::<PollWatch<T>>() };
        let events = key as usize as u32;
        T::wake(watch.target.as_arc_borrow(), events);
        if events & POLLFREE != 0 {
            // The wait queue is going away: leave it now, as epoll does. `wake_up_pollfree()`
            // frees it only after an RCU grace period, which covers `unregister`.
            // SAFETY: We hold the wait queue's lock; the entry is on it.
            unsafe { bindings::list_del_init(&raw mut (*wait).entry) };
            for e in &watch.entries {
                if ptr::eq(e.wait.get(), wait) {
                    e.head.store(ptr::null_mut(), Ordering::Release);
                }
            }
        }
        1
    }

    /// Removes every registered entry from its wait queue.
    ///
    /// # Safety
    ///
    /// `this` is a watch whose entries were initialised.
    unsafe fn unregister(this: *mut Self) {
        for i in 0..MAX_WAIT_QUEUES {
            // SAFETY: The entries were initialised.
            let entry = unsafe { &(*this).entries[i] };
            let _rcu = rcu::read_lock();
            let head = entry.head.load(Ordering::Acquire);
            if !head.is_null() {
                // SAFETY: The entry is on `head`, which RCU keeps alive even if it is being
                // released with `POLLFREE` (then `remove_wait_queue` finds the entry unlinked).
                unsafe { bindings::remove_wait_queue(head, entry.wait.get()) };
            }
        }
    }
}

#[pinned_drop]
impl<T: PollWake> PinnedDrop for PollWatch<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: The watch was fully initialised; removing the entries does not move it.
        unsafe { Self::unregister(self.get_unchecked_mut()) };
    }
}
