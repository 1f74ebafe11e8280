// SPDX-License-Identifier: GPL-2.0

//! The system calls: argument checks and dispatch.
//!
//! Each `#[export]` function is called by its `SYSCALL_DEFINE` shim in `syscalls.c`; its
//! signature is checked against the prototype in `<linux/kevent.h>`.

use crate::{
    abi::*,
    queue::{Index, Presubmitted, Queue, Sink, RUN_MAX},
    ring::Ring,
    source::{Info, Source},
};
use core::mem::{size_of, MaybeUninit};
use kernel::{
    bindings,
    ffi::{c_int, c_long, c_uint, c_void},
    fs::{file::FileDescriptorReservation, LocalFile},
    prelude::*,
    sync::{aref::ARef, ArcBorrow},
    time::{Instant, Monotonic},
    transmute::AsBytes,
    uaccess::{UserPtr, UserSlice, UserSliceWriter},
};

fn to_long(res: Result<usize>) -> c_long {
    match res {
        Ok(n) => n as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

/// Looks up the kevent queue file `fd`: `EBADF` if it is not open, `EINVAL` if it is not a
/// kevent queue.
fn queue_file(fd: c_int) -> Result<ARef<LocalFile>> {
    let fd = u32::try_from(fd).map_err(|_| EBADF)?;
    let file = LocalFile::fget(fd)?;
    Queue::from_file(&file)?;
    Ok(file)
}

/// Checks the arguments of `kevent_ctl()` that do not need the queue.
pub(crate) fn check_ctl(fd: c_int, cmd: c_uint, num: c_uint, buf_is_null: bool) -> Result {
    match cmd {
        KEVENT_CTL_INIT => {
            // `buf` is the ring's parameters with `KEVENT_RING`, and NULL without.
            if fd != -1 || num & !INIT_FLAGS != 0 || (num & KEVENT_RING == 0 && !buf_is_null) {
                return Err(EINVAL);
            }
        }
        KEVENT_CTL_ADD | KEVENT_CTL_REMOVE | KEVENT_CTL_MODIFY => {
            if num > KEVENT_CTL_MAX_BATCH {
                return Err(E2BIG);
            }
        }
        _ => return Err(EINVAL),
    }
    Ok(())
}

/// `KEVENT_CTL_INIT`: a new queue, with a ring if `flags` has `KEVENT_RING` (its parameters at
/// `buf`: `EFAULT` if they cannot be read, `EINVAL` if they are wrong).
fn init(flags: u32, buf: UserPtr) -> Result<usize> {
    let ring = if flags & KEVENT_RING != 0 {
        let len = size_of::<kevent_ring_params>();
        let params = UserSlice::new(buf, len).reader().read::<RingParams>()?;
        Some(Ring::new(&params.0)?)
    } else {
        None
    };
    let cloexec = if flags & KEVENT_CLOEXEC != 0 {
        bindings::O_CLOEXEC
    } else {
        0
    };
    let nonblock = if flags & KEVENT_NONBLOCK != 0 {
        bindings::O_NONBLOCK
    } else {
        0
    };
    let fdr = FileDescriptorReservation::get_unused_fd_flags(cloexec)?;
    let file = Queue::new_file(nonblock, ring)?;
    let fd = fdr.reserved_fd();
    fdr.fd_install(file);
    Ok(fd as usize)
}

/// Applies one entry of a `kevent_ctl()` batch with the source of its type, if there is one;
/// `more` is the batch hint of an added entry.
fn ctl_one(
    queue: ArcBorrow<'_, Queue>,
    index: &mut Index,
    cmd: c_uint,
    uk: &Ukevent,
    src: Option<(&dyn Source, &Info)>,
    more: bool,
    pre: Option<Presubmitted>,
) -> Result {
    if uk.0.reserved != 0 {
        return Err(EINVAL);
    }
    match cmd {
        // No source for the type: nothing of that type can be registered.
        KEVENT_CTL_REMOVE => queue.remove_locked(index, src.ok_or(ENOENT)?.0, uk),
        KEVENT_CTL_ADD => {
            let (src, info) = src.ok_or(EINVAL)?;
            match pre {
                Some(pre) => queue.add_presubmitted(index, src, info, uk, more, pre),
                None => queue.add_with(index, src, info, uk, more),
            }
        }
        _ => queue.modify_locked(index, src.ok_or(EINVAL)?.0, uk),
    }
}

/// Whether `a` and `b` name the same object and operation: the same type, id and event.
fn same_run(a: &Ukevent, b: &Ukevent) -> bool {
    a.0.type_ == b.0.type_ && a.0.id == b.0.id && a.0.event == b.0.event
}

/// Applies the entries of a `kevent_ctl()` batch in order, with the sources `source_of` finds,
/// writing each one's result into it; returns how many took effect. The whole batch is applied
/// under one hold of the queue's index mutex, as `epoll_ctl()` holds `ep->mtx` for its one entry
/// (a batch has at most `KEVENT_CTL_MAX_BATCH` entries, so a delivery waits for one batch at
/// most), and the sources' [`Source::flush`] runs under it too.
///
/// The batch hint: an added entry whose source takes hints ([`Info::batches`]) and whose next
/// entry has the same type, id and event is attached with `more`, and the source's
/// [`Source::flush`] runs after the last entry of such a run, whatever became of the run's
/// entries.
///
/// Runs: at the first of such consecutive `KEVENT_CTL_ADD` entries (and again every [`RUN_MAX`]
/// entries of a longer run), a source that takes runs ([`Info::runs`]) tries up to [`RUN_MAX`]
/// of them as one operation ([`Queue::submit_run`]); the entries it finished or started are then
/// added with that ([`Queue::add_presubmitted`]), in order, and the others as any entry.
pub(crate) fn apply(
    queue: ArcBorrow<'_, Queue>,
    cmd: c_uint,
    batch: &mut [Ukevent],
    source_of: fn(u32) -> Option<&'static dyn Source>,
) -> usize {
    let mut index = queue.index.lock();
    queue.reap(&mut index);
    let mut done = 0;
    // The previous entry was added with `more`: this one ends or continues its run.
    let mut in_run = false;
    // The source of the previous entry's type, and what it says of itself: looked up once for
    // a run of entries of one type.
    let mut last: Option<(u32, Option<(&'static dyn Source, Info)>)> = None;
    // What the last run tried did for its entries `run_at..run_end`.
    let mut pre: [Option<Presubmitted>; RUN_MAX] = Default::default();
    let (mut run_at, mut run_end) = (0, 0);
    for i in 0..batch.len() {
        let next_same = matches!(batch.get(i..i + 2), Some([uk, next]) if same_run(uk, next));
        let Some(ty) = batch.get(i).map(|uk| uk.0.type_) else {
            break;
        };
        let found = match last {
            Some((t, found)) if t == ty => found,
            _ => {
                let found = source_of(ty).map(|s| (s, s.info()));
                last = Some((ty, found));
                found
            }
        };
        let src = found.as_ref().map(|(s, info)| (*s, info));
        let more = cmd == KEVENT_CTL_ADD && next_same && src.is_some_and(|(_, i)| i.batches);
        if let Some((s, info)) = src {
            if cmd == KEVENT_CTL_ADD && next_same && info.runs && i >= run_end {
                let end = batch.len().min(i + RUN_MAX);
                let n = 1 + batch[i..end]
                    .windows(2)
                    .take_while(|w| same_run(&w[0], &w[1]))
                    .count();
                // The entries after the prefix the core admitted may start a run of their own.
                let admitted = queue.submit_run(&mut index, s, info, &batch[i..i + n], &mut pre);
                (run_at, run_end) = (i, i + admitted.max(1));
            }
        }
        let this = if i < run_end {
            pre.get_mut(i - run_at).and_then(Option::take)
        } else {
            None
        };
        let Some(uk) = batch.get_mut(i) else {
            break;
        };
        match ctl_one(queue, &mut index, cmd, uk, src, more, this) {
            Ok(()) => {
                uk.0.ret_flags = KEVENT_RET_DONE;
                uk.0.ret_data = 0;
                done += 1;
            }
            Err(e) => {
                uk.0.ret_flags = KEVENT_RET_BROKEN;
                uk.0.ret_data = e.to_errno().into();
            }
        }
        if in_run && !more {
            // The run ends here; its entries share the type, so its source is this one's.
            if let Some((src, _)) = src {
                src.flush(uk);
            }
        }
        in_run = more;
    }
    done
}

fn ctl(fd: c_int, cmd: c_uint, num: c_uint, buf: UserPtr) -> Result<usize> {
    check_ctl(fd, cmd, num, buf.as_const_ptr().is_null())?;
    if cmd == KEVENT_CTL_INIT {
        return init(num, buf);
    }
    let file = queue_file(fd)?;
    let queue = Queue::from_file(&file)?;
    let num = num as usize;
    if num == 0 {
        return Ok(0);
    }
    // `num <= KEVENT_CTL_MAX_BATCH`, so this cannot overflow.
    let len = num * UKEVENT_SIZE;
    let (mut reader, mut writer) = UserSlice::new(buf, len).reader_writer();
    // Read the whole batch first, in one copy: a fault here changes nothing.
    let mut batch = KVec::<Ukevent>::with_capacity(num, GFP_KERNEL)?;
    let spare = batch.spare_capacity_mut();
    // SAFETY: `spare` has room for at least `num` entries, `len` bytes, which may be
    // uninitialised.
    let bytes = unsafe {
        core::slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<MaybeUninit<u8>>(), len)
    };
    reader.read_raw(bytes)?;
    // SAFETY: `read_raw` initialised the bytes of the first `num` entries, and any bytes are a
    // valid `Ukevent` (it is `FromBytes`).
    unsafe { batch.inc_len(num) };
    let done = apply(queue, cmd, &mut batch, crate::source_of);
    // The entries took effect whether or not their results can be written back. One copy out;
    // after a fault, entry by entry up to it.
    if writer.write_slice(batch.as_bytes()).is_err() {
        let mut writer = UserSlice::new(buf, len).writer();
        for uk in batch.iter() {
            if writer.write(uk).is_err() {
                break;
            }
        }
    }
    Ok(done)
}

/// Checks the arguments of `kevent_get_events()` that do not need the queue.
pub(crate) fn check_get_events(min_nr: c_uint, max_nr: c_uint, flags: c_uint) -> Result {
    if flags & !WAIT_FLAGS != 0 || max_nr == 0 || min_nr > max_nr {
        return Err(EINVAL);
    }
    Ok(())
}

/// Copies delivered events to userspace.
struct UserSink(UserSliceWriter);

impl Sink for UserSink {
    fn put(&mut self, uk: &Ukevent) -> Result {
        self.0.write(uk)
    }

    fn put_all(&mut self, uks: &[Ukevent]) -> (usize, Option<Error>) {
        // One copy for the whole round. A failed copy does not move the writer, and does not
        // say how far it got: then copy one at a time from the same place to find out.
        if self.0.write_slice(uks.as_bytes()).is_ok() {
            return (uks.len(), None);
        }
        for (i, uk) in uks.iter().enumerate() {
            if let Err(e) = self.put(uk) {
                return (i, Some(e));
            }
        }
        (uks.len(), None)
    }
}

/// Reads the `kevent_get_events()` timeout: `None` waits forever, otherwise the deadline.
fn read_deadline(timeout: UserPtr, flags: c_uint) -> Result<Option<Instant<Monotonic>>> {
    if timeout.as_const_ptr().is_null() {
        return Ok(None);
    }
    let mut r = UserSlice::new(timeout, size_of::<bindings::__kernel_timespec>()).reader();
    let mut ts = bindings::__kernel_timespec::default();
    // SAFETY: `__kernel_timespec` is two integers: any bytes are a valid value.
    let bytes = unsafe {
        core::slice::from_raw_parts_mut(
            (&raw mut ts).cast::<u8>(),
            size_of::<bindings::__kernel_timespec>(),
        )
    };
    r.read_slice(bytes)?;
    let ns = timespec_to_ns(&ts)?;
    let deadline = if flags & KEVENT_WAIT_ABSTIME != 0 {
        ns
    } else {
        Instant::<Monotonic>::now().as_nanos().saturating_add(ns)
    };
    // `ns` is non-negative, so is `deadline`.
    Ok(Instant::from_nanos(deadline))
}

fn get_events(
    fd: c_int,
    min_nr: c_uint,
    max_nr: c_uint,
    timeout: UserPtr,
    buf: UserPtr,
    flags: c_uint,
) -> Result<usize> {
    check_get_events(min_nr, max_nr, flags)?;
    let file = queue_file(fd)?;
    let queue = Queue::from_file(&file)?;
    let deadline = read_deadline(timeout, flags)?;
    let nonblock = file.flags() & bindings::O_NONBLOCK != 0;
    let len = (max_nr as usize).checked_mul(UKEVENT_SIZE).ok_or(EINVAL)?;
    let mut sink = UserSink(UserSlice::new(buf, len).writer());
    queue.get_events(
        min_nr as usize,
        max_nr as usize,
        deadline,
        nonblock,
        &mut sink,
    )
}

/// `kevent_ctl(fd, cmd, num, buf)`.
///
/// # Safety
///
/// Called only by the syscall shim; `buf` is an unchecked user pointer.
#[export]
pub unsafe extern "C" fn kevent_sys_ctl(
    fd: c_int,
    cmd: c_uint,
    num: c_uint,
    buf: *mut c_void,
) -> c_long {
    to_long(ctl(fd, cmd, num, UserPtr::from_ptr(buf)))
}

/// `kevent_get_events(fd, min_nr, max_nr, timeout, buf, flags)`.
///
/// # Safety
///
/// Called only by the syscall shim; `timeout` and `buf` are unchecked user pointers.
#[export]
pub unsafe extern "C" fn kevent_sys_get_events(
    fd: c_int,
    min_nr: c_uint,
    max_nr: c_uint,
    timeout: *const bindings::__kernel_timespec,
    buf: *mut c_void,
    flags: c_uint,
) -> c_long {
    to_long(get_events(
        fd,
        min_nr,
        max_nr,
        UserPtr::from_ptr(timeout.cast_mut().cast()),
        UserPtr::from_ptr(buf),
        flags,
    ))
}

#[kunit_tests(kevent_syscalls)]
mod tests {
    use super::*;

    #[test]
    fn ctl_commands() {
        assert_eq!(check_ctl(-1, KEVENT_CTL_INIT, 0, true), Ok(()));
        assert_eq!(check_ctl(-1, KEVENT_CTL_INIT, INIT_FLAGS, true), Ok(()));
        assert_eq!(check_ctl(3, KEVENT_CTL_INIT, 0, true), Err(EINVAL));
        assert_eq!(check_ctl(-1, KEVENT_CTL_INIT, 0, false), Err(EINVAL));
        assert_eq!(check_ctl(-1, KEVENT_CTL_INIT, 0x8, true), Err(EINVAL));
        // The ring's parameters are read (or fault) later; NULL is `EFAULT` then.
        assert_eq!(check_ctl(-1, KEVENT_CTL_INIT, KEVENT_RING, false), Ok(()));
        assert_eq!(check_ctl(-1, KEVENT_CTL_INIT, KEVENT_RING, true), Ok(()));
        assert_eq!(
            check_ctl(-1, KEVENT_CTL_INIT, KEVENT_CLOEXEC, false),
            Err(EINVAL)
        );
        assert_eq!(check_ctl(3, 0, 0, true), Err(EINVAL));
        assert_eq!(check_ctl(3, 99, 0, true), Err(EINVAL));
    }

    #[test]
    fn ctl_batch_limit() {
        for cmd in [KEVENT_CTL_ADD, KEVENT_CTL_REMOVE, KEVENT_CTL_MODIFY] {
            assert_eq!(check_ctl(3, cmd, KEVENT_CTL_MAX_BATCH, false), Ok(()));
            assert_eq!(
                check_ctl(3, cmd, KEVENT_CTL_MAX_BATCH + 1, false),
                Err(E2BIG)
            );
            assert_eq!(check_ctl(3, cmd, u32::MAX, false), Err(E2BIG));
        }
    }

    #[test]
    fn get_events_args() {
        assert_eq!(check_get_events(0, 1, 0), Ok(()));
        assert_eq!(check_get_events(1, 1, KEVENT_WAIT_ABSTIME), Ok(()));
        assert_eq!(check_get_events(0, 0, 0), Err(EINVAL));
        assert_eq!(check_get_events(2, 1, 0), Err(EINVAL));
        assert_eq!(check_get_events(1, 1, 2), Err(EINVAL));
    }
}
