// SPDX-License-Identifier: GPL-2.0

//! kevent: the network AIO source (`KEVENT_TYPE_AIO`).
//!
//! A kevent of this type is a request: send a buffer on a socket, receive into one, or send part
//! of a regular file (`KEVENT_AIO_SEND`, `_RECV`, `_SENDFILE`, exactly one). `id` is the
//! socket's descriptor; `user_data` names the request, so that many can be in flight on one
//! socket. The request completes with one event: `KEVENT_RET_DONE` with the number of bytes
//! moved, or `KEVENT_RET_BROKEN` with `-errno`. See Documentation/kevent.rst, "Network AIO",
//! for the semantics and every error.
//!
//! # What the core does for us
//!
//! The source's table ([`AioSource`]) asks the core for: arguments it checks itself
//! (`TAKES_ARGS`), the flag `KEVENT_REQ_AIO_WAITALL`, kevents keyed by `(type, id, user_data)`
//! (`KEYED_BY_USER_DATA`; `KEVENT_CTL_MODIFY` is `EINVAL`), oneshot kevents (`ONESHOT`: one
//! completion, then the kevent is gone), the descriptor followed (`FOLLOWS_FD`: closing it
//! removes the request), and cancellation reported with `-ECANCELED` (`CANCEL_ERRNO`): when
//! `KEVENT_CTL_REMOVE` or a close removes a request, the core detaches it (we stop it, see
//! below) and reports it cancelled, unless its completion was notified before.
//!
//! # Objects
//!
//! - [`AioRequest`] (in an `Arc`): one request. It embeds the [`Storage`] its kevent registers
//!   on, and reports through it: [`Storage::ready`] with its operation bit and the byte count on
//!   success, [`Storage::fail`] on failure. It holds the socket's file and, while it runs, its
//!   buffer (its address, then its pinned pages) or its sendfile's file; once queued, its
//!   context and its submitter's credentials.
//!   The core holds it by an `Arc` (`Source::Ptr`); its `put` (when the kevent is detached)
//!   stops the request ([`AioRequest::stop`]).
//! - [`AioSock`] (in an `Arc`): the context of one socket with requests: a reference to the
//!   socket's file, one [`PollWatch`] on the socket's wait queue, a FIFO of requests in each
//!   direction (send and sendfile; receive) and the work item that runs them. Found through
//!   [`SOCKS`], a map from the `struct sock` to its context, made when a request of the socket is
//!   queued and the socket has none, and removed when its last queued request finishes.
//!
//! # Execution
//!
//! Requests on one socket run in submission order in each direction: only the head of each FIFO
//! transfers. Queued requests run in the context's work item (or a pass of it in `armed`, below),
//! never in the socket's callbacks: the [`PollWatch`] wake function (any wake-up of the socket's
//! wait queue: data, room, a state change, an error; atomic context) only queues the work. The work
//! runs each head with non-blocking I/O (`MSG_DONTWAIT | MSG_NOSIGNAL`) until the socket says
//! `EAGAIN` (the head waits for the next wake-up), the request completes (the next one becomes the
//! head) or the run's budget is spent: [`BUDGET`] bytes per direction per run, after which the work
//! queues itself again, at the tail, so that one busy connection cannot starve the others sharing
//! the worker. Send and receive move data between the socket and the request's user pages, pinned
//! when it is queued (`pin_user_pages_fast()`, `FOLL_WRITE` for receive), through an `ITER_BVEC`
//! iterator. A sendfile sends the file's cached pages as they are, as `sendfile()` does
//! (`MSG_SPLICE_PAGES`: the socket takes references to the pages, nothing is copied), if the file's
//! page cache is its data (tmpfs, a local file system: see `kevent_aio_cache_is_data()`); a page
//! that is not cached (or a file whose cache must be revalidated, on a network file system) is read
//! (`kernel_read()`, at most [`SENDFILE_CHUNK`] bytes at a time, into a buffer of the request),
//! which brings it into the cache, and that is sent. The work runs with the credentials of each
//! request's submitter (`override_creds()`), so that the LSM checks of `sock_sendmsg()` and of the
//! read see the submitter, not the worker.
//!
//! A request whose socket is ready at submission completes inline, in `armed` (so in the
//! submitter's `kevent_ctl()`), with the same non-blocking calls and budget:
//!
//! - If the socket has no context (no request of any direction queued on it), the request's first
//!   pass moves data straight between the socket and the user's buffer (`import_ubuf()`: the
//!   submitter's address space is the current one), and a request it completes is reported at
//!   once: nothing is pinned, and no context or watch is made. Only what is left is pinned and
//!   queued on a context, made then. For a send or receive this pass is the source's `submit`,
//!   which runs from the entry alone ([`Plan`]), before the core asks `get` for an
//!   [`AioRequest`]: a request it completes costs no request at all (no allocation), and in a
//!   queue with a ring no kevent either. A request it leaves unfinished is made then, and takes
//!   over what the pass moved (`start` with the progress). A sendfile's pass there sends only
//!   what is in the page cache (`Sendfile::send_direct`); one whose next page must be read is
//!   left to `start` (a first pass there too, if `submit` moved nothing), whose request keeps
//!   what it reads.
//! - Otherwise the request is pinned and queued, and its context runs one pass here.
//!
//! Either way the work is queued only if the pass leaves something to do. For small messages this
//! saves the two context switches of a work item, the pinning and the context of a request;
//! `kevent_aio.inline_submit=0` on the command line turns it off (every request is pinned,
//! queued, and run by the work), for comparison (see the AIO case of `kevent-bench`).
//!
//! The first pass without a context takes no lock of the socket's requests: a request submitted
//! at the same moment from another thread may find no context either and run its pass too,
//! interleaving its bytes with this one's, as two concurrent `send()` calls may. Requests that
//! one thread submits (or that are submitted after one another) are never reordered: a request
//! finds the context of any unfinished request before it.
//!
//! The work is queued on the per-CPU system workqueue ([`workqueue::system`]) from the CPU that
//! took the wake-up: that is where the network stack just handled the socket, so its data and
//! state are hot in that CPU's cache, and no other CPU has to be interrupted to run it. (A run
//! that is already executing elsewhere finishes there first: a work item never runs twice at
//! once.)
//!
//! No wake-up is lost: the workqueue clears the work's pending bit, with a full barrier, before it
//! runs the work. A wake-up that comes after that queues the work again (so a run that just saw
//! `EAGAIN` is followed by another); one that came before is covered by the run, which transfers
//! after the barrier. The pending bit is the flag that a wake-up sets and a run clears before its
//! pass.
//!
//! # Locking
//!
//! - [`SOCKS`] is split into [`SOCK_BUCKETS`] buckets by a hash of the `struct sock` address; the
//!   mutex of a bucket guards its rbtree and the count of requests of each context in it. Taken by
//!   submission and when requests finish, in process context, one bucket at a time: two sockets
//!   contend only if they share a bucket. (A per-socket pointer, a field of `struct sock` as
//!   `sk_kevent` is, would need no lookup at all, for one more pointer in every socket.)
//! - `AioSock::io` (a mutex) guards a context's FIFOs and its watch. The work holds it for a whole
//!   pass, across the socket calls; so does a queued request's `put`, which therefore waits for a
//!   pass that uses the request.
//! - `AioRequest::io` (a mutex) guards a request's state ([`ReqIo`]): taken inside its context's
//!   `io` by the work and by `put`, alone by `armed` and by `put` of a request never queued.
//!
//! Order: a kevent queue's locks (its index mutex, held around `get`, `armed` and `put`, and around
//! `armed` the core's per-kevent mutex too) -> a bucket of [`SOCKS`] -> `AioSock::io` ->
//! `AioRequest::io` -> the socket's lock (in the socket calls), page locks (unpinning) and the
//! kevent storage lock (reports) -> the kevent queue's ready lock. No two buckets are ever held at
//! once. `armed` holds no lock of the request or context across its first pass. A bucket and `io`
//! are never held by the work while it takes the other, nor by `put`. The wake function takes none
//! of them: it only queues the work, so a watch can be dropped under `io`.
//!
//! # Lifetimes
//!
//! - A request is counted as a user of its context from when `armed` finds or makes the context
//!   until it finishes (the work completes it, or it is stopped; or, in `armed`, its buffer could
//!   not be pinned): when the count drops to zero the context leaves [`SOCKS`] and drops its watch
//!   (the watch holds a reference to the context: dropping it breaks that cycle). The context
//!   itself is freed with its last reference: its requests, and a work item still queued.
//! - A request's pages stay pinned, and its sendfile file open, until it finishes: they are
//!   dropped by the work when it completes the request, or by its `put`. A request is linked in
//!   its context's FIFO only while queued; the work touches a request's pages only while it is
//!   linked and under `io`, and `put` unlinks it under `io`, so after `put` nothing writes into
//!   the submitter's memory and no work touches the request. The request's memory goes with its
//!   last reference (the core's, or the FIFO's).
//! - A request reports exactly once, when it finishes, from the work or from `armed` (its first
//!   pass completed it, or its buffer could not be pinned), and only from `armed` on: before it,
//!   the kevent may not be on the storage yet and a report could be lost. A request stopped by
//!   `put` reports nothing: the core reports the cancellation.
//!
//! Data that a request moved before it was cancelled is not reported; the bytes of a stream are
//! then partly sent or consumed. A request whose transfer finishes at the very moment it is
//! cancelled may be reported cancelled although its data moved: its report is lost if the core
//! detached the kevent first.

use core::marker::PhantomData;
use kernel::{
    bindings,
    cred::Credential,
    ffi::{c_int, c_short, c_uint, c_ulong},
    fs::{
        poll_watch::{PollWake, PollWatch},
        File, LocalFile,
    },
    kevent::{self, RunDone, Storage, Submitted, Ukevent, RUN_MAX},
    list::{AtomicTracker, List, ListArc, ListLinks, TryNewListArc},
    page::{PAGE_MASK, PAGE_SIZE},
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    sync::{
        aref::ARef, lock::mutex::MutexGuard, new_mutex, Arc, ArcBorrow, LockedBy, Mutex, SetOnce,
    },
    uapi::{
        KEVENT_AIO_RECV, KEVENT_AIO_SEND, KEVENT_AIO_SENDFILE, KEVENT_REQ_AIO_WAITALL,
        KEVENT_TYPE_AIO,
    },
    workqueue::{self, impl_has_work, new_work, Work, WorkItem},
};

module! {
    type: AioSource,
    name: "kevent_aio",
    authors: ["kevent maintainers"],
    description: "kevent network AIO source",
    license: "GPL",
    params: {
        inline_submit: bool {
            default: true,
            description: "Run a request's first pass in kevent_ctl() (kevent_aio.inline_submit=0: always in the work item)",
        },
        submit_runs: bool {
            default: true,
            description: "Move a run of requests in one socket call (0: one call a request)",
        },
    },
}

/// The largest length of one request: `MAX_RW_COUNT` of `<linux/fs.h>`, as for `read()`.
const MAX_RW_COUNT: usize = (i32::MAX as usize) & PAGE_MASK;

/// The bytes one run of a context's work moves in each direction before it queues itself again.
const BUDGET: usize = 128 * 1024;

/// The most a sendfile reads from its file at once, the size of its buffer.
const SENDFILE_CHUNK: usize = 64 * 1024;

/// How many pages one call of `pin_user_pages_fast()` pins.
const PIN_BATCH: usize = 64;

/// How many buckets, each with its own mutex, the map of contexts ([`SOCKS`]) is split into.
const SOCK_BUCKETS: usize = 64;

/// The contexts of one bucket of [`SOCKS`], by their `struct sock`.
type SockMap = RBTree<usize, Arc<AioSock>>;

/// The map from a socket's `struct sock` to its context, in [`SOCK_BUCKETS`] buckets chosen by a
/// hash of the address: submissions and completions on two sockets share a mutex only if their
/// sockets share a bucket.
#[pin_data]
struct Socks {
    #[pin]
    buckets: [Mutex<SockMap>; SOCK_BUCKETS],
}

impl Socks {
    /// The bucket of the socket whose `struct sock` is `sk`.
    fn bucket(&self, sk: usize) -> &Mutex<SockMap> {
        // A multiplicative hash (as `hash_64()`): its top bits depend on all of the address.
        let h = (sk as u64).wrapping_mul(0x61c8_8646_80b5_83eb) >> (64 - SOCK_BUCKETS.ilog2());
        &self.buckets[h as usize % SOCK_BUCKETS]
    }
}

/// The map of contexts. Made in the module initialiser, before the source is registered, so
/// before any request can be submitted; the source is built in, so it is never freed.
static SOCKS: SetOnce<Pin<KBox<Socks>>> = SetOnce::new();

/// The bucket of [`SOCKS`] of the socket whose `struct sock` is `sk`: `None` only before the
/// module initialiser made the map, when no request exists.
fn sock_bucket(sk: usize) -> Option<&'static Mutex<SockMap>> {
    SOCKS.as_ref().map(|socks| socks.bucket(sk))
}

/// The network AIO source.
struct AioSource;

impl kernel::Module for AioSource {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let socks = KBox::pin_init(
            pin_init!(Socks {
                buckets <- pin_init::pin_init_array_from_fn(|_| {
                    new_mutex!(RBTree::new(), "kevent_aio_socks")
                }),
            }),
            GFP_KERNEL,
        )?;
        SOCKS.populate(socks);
        kevent::register::<AioSource>().inspect_err(|e| {
            pr_err!("cannot register the network AIO source: {}\n", e.to_errno());
        })?;
        Ok(AioSource)
    }
}

#[vtable]
impl kevent::Source for AioSource {
    const TYPE: u32 = KEVENT_TYPE_AIO;
    const EVENTS: u32 = KEVENT_AIO_SEND | KEVENT_AIO_RECV | KEVENT_AIO_SENDFILE;
    const FOLLOWS_FD: bool = true;
    const FLAGS: u32 = KEVENT_REQ_AIO_WAITALL;
    const TAKES_ARGS: bool = true;
    const KEYED_BY_USER_DATA: bool = true;
    const ONESHOT: bool = true;
    const CANCEL_ERRNO: i32 = bindings::ECANCELED as i32;

    type Object = AioRequest;
    type Ptr = Arc<AioRequest>;

    /// Checks the request and prepares it: `EINVAL`, `EBADF`, `ENOTSOCK` or `ENOMEM` fail the
    /// entry. A buffer that cannot be pinned does not: the request completes at once with that
    /// error (`EFAULT`) when it is armed.
    fn get(uk: &Ukevent) -> Result<Arc<AioRequest>> {
        AioRequest::new(uk)
    }

    fn storage(req: &AioRequest) -> &Storage {
        &req.storage
    }

    /// The kevent is detached (removed, cancelled, its descriptor closed, delivered, its queue
    /// released): stops the request if it has not finished.
    fn put(req: &AioRequest) {
        req.stop();
    }

    /// The request's kevent is registered: the request may start, and report. With `more`, a
    /// send on a stream socket that completes at once is corked (`MSG_MORE`): the next entry of
    /// the batch is another send on the socket, and `flush` follows the run.
    fn armed(req: ArcBorrow<'_, AioRequest>, more: bool) {
        AioRequest::start(req, more);
    }

    /// Runs the request's first pass before its kevent is registered, if its socket has no
    /// context: a request it finishes is reported by the core, which registers nothing for it.
    /// After [`kevent::Source::submit`] (a send or receive), the request only takes over what
    /// that pass moved.
    fn start(
        req: ArcBorrow<'_, AioRequest>,
        more: bool,
        submitted: Option<u64>,
    ) -> Option<Result<i64>> {
        match submitted {
            // `submit` ran the first pass; but a sendfile it did not start (its file must be
            // read) gets its first pass here.
            Some(progress) if req.op != KEVENT_AIO_SENDFILE || progress > 0 => {
                req.take_over(progress);
                None
            }
            _ => {
                let res = req.first_pass(more)?;
                Some(res.map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
            }
        }
    }

    /// The first pass of a send or receive whose socket has no context, straight from the
    /// entry: a request it finishes needs no [`AioRequest`] at all (nor its allocation). What
    /// `get` would refuse, a sendfile, and a request behind others of its socket are left to
    /// `get` and `start`, with nothing done.
    fn submit(uk: &Ukevent, more: bool) -> Submitted {
        if !module_parameters::inline_submit.value() {
            return Submitted::Started(0);
        }
        let Ok(plan) = Plan::of(uk) else {
            return Submitted::Started(0);
        };
        if AioSock::exists(plan.sk) {
            return Submitted::Started(0);
        }
        let finished = |n: usize| Submitted::Finished(Ok(i64::try_from(n).unwrap_or(i64::MAX)));
        if plan.op == KEVENT_AIO_SENDFILE {
            // Only from the page cache: a page that must be read leaves the rest to `start`,
            // whose request keeps what it read.
            let Ok(mut sf) = Sendfile::new(uk.arg_fd(), plan.pos, plan.len) else {
                return Submitted::Started(0);
            };
            let (mut done, mut budget) = (0, BUDGET);
            return match sf.send_direct(plan.socket(), &mut done, &mut budget) {
                Some(Step::Done(Ok(n))) => finished(n),
                Some(Step::Done(Err(e))) => Submitted::Finished(Err(e)),
                _ => Submitted::Started(u64::try_from(done).unwrap_or(u64::MAX)),
            };
        }
        let xfer = Xfer {
            socket: plan.socket(),
            mem: Mem::User(plan.addr),
            len: plan.len,
            stream: plan.stream,
        };
        let (mut done, mut budget) = (0, BUDGET);
        let recv = plan.op == KEVENT_AIO_RECV;
        match xfer.run(
            recv,
            plan.waitall,
            more && plan.stream,
            &mut done,
            &mut budget,
        ) {
            Step::Done(Ok(n)) => finished(n),
            Step::Done(Err(e)) => Submitted::Finished(Err(e)),
            _ => Submitted::Started(u64::try_from(done).unwrap_or(u64::MAX)),
        }
    }

    /// The first passes of a run of sends or receives on one stream socket without a context, in
    /// one socket call over all their buffers (an `ITER_IOVEC`): the bytes of a stream go to, or
    /// come from, the buffers in order, as the passes one after the other would move them. A
    /// receive that gets part of its buffer finishes with it, unless it waits for all. Only the
    /// entries from the first on whose arguments are right and whose buffer is user memory are
    /// taken, at most [`BUDGET`] bytes in all; the others (and any the call did not reach) are
    /// left to `submit`, one by one, which reports their errors.
    fn submit_run(run: &[Ukevent], results: &mut [Result<i64>]) -> RunDone {
        if !module_parameters::inline_submit.value() || !module_parameters::submit_runs.value() {
            return RunDone::NOTHING;
        }
        let Some(Ok(plan)) = run.first().map(Plan::of) else {
            return RunDone::NOTHING;
        };
        // Only a stream's bytes may be split between requests as they come; a sendfile runs
        // alone.
        if !plan.stream || plan.op == KEVENT_AIO_SENDFILE || AioSock::exists(plan.sk) {
            return RunDone::NOTHING;
        }
        let recv = plan.op == KEVENT_AIO_RECV;
        let mut iov: [bindings::iovec; RUN_MAX] = core::array::from_fn(|_| bindings::iovec {
            iov_base: core::ptr::null_mut(),
            iov_len: 0,
        });
        let mut waitall = [false; RUN_MAX];
        let (mut n, mut total) = (0, 0);
        for (uk, (v, w)) in run.iter().zip(iov.iter_mut().zip(waitall.iter_mut())) {
            let Ok((_, all, len, _)) = Plan::args(uk) else {
                break;
            };
            let addr = uk.arg()[0];
            // SAFETY: Only checks the range.
            if len > BUDGET - total || !unsafe { bindings::kevent_aio_access_ok(addr, len) } {
                break;
            }
            *v = bindings::iovec {
                iov_base: addr as usize as *mut core::ffi::c_void,
                iov_len: len,
            };
            *w = all;
            n += 1;
            total += len;
        }
        if n < 2 {
            return RunDone::NOTHING;
        }
        let mut msg = bindings::msghdr::default();
        let dir = if recv {
            bindings::ITER_DEST
        } else {
            bindings::ITER_SOURCE
        };
        // SAFETY: `msg_iter` is a valid iterator to initialise, over `n` buffers of user memory
        // (`access_ok()` above; the copies handle faults) in `iov`, which outlives its use.
        unsafe {
            bindings::iov_iter_init(&mut msg.msg_iter, dir, iov.as_ptr(), n as c_ulong, total)
        };
        // SAFETY: `socket` is the socket of a file `plan` holds; `msg` is a valid message.
        let ret = unsafe {
            if recv {
                bindings::sock_recvmsg(plan.socket(), &mut msg, bindings::MSG_DONTWAIT as c_int)
            } else {
                msg.msg_flags = bindings::MSG_DONTWAIT | bindings::MSG_NOSIGNAL;
                bindings::sock_sendmsg(plan.socket(), &mut msg)
            }
        };
        let mut left = match io_result(ret as isize) {
            // Nothing moved: every entry goes on alone (and waits for the socket). A buffer
            // that faults may be any entry's (the socket copies in pieces, each all or nothing),
            // so the entries are tried alone again, and the one at fault reports it.
            Err(e) if e == EAGAIN || e == EFAULT => return RunDone::NOTHING,
            Ok(0) if !recv => return RunDone::NOTHING,
            // Nothing moved, and the first entry alone would have ended so: with an error of
            // the socket (which the call may have consumed, as `sock_error()` does), or (a
            // receive) at the end of the stream, which the others then find alone.
            res @ (Err(_) | Ok(0)) => {
                results[0] = res.map(|_| 0);
                return RunDone {
                    finished: 1,
                    progress: 0,
                };
            }
            Ok(moved) => moved,
        };
        let mut finished = 0;
        for ((v, &all), res) in iov[..n].iter().zip(&waitall).zip(results.iter_mut()) {
            if left >= v.iov_len || (recv && !all && left > 0) {
                let got = left.min(v.iov_len);
                *res = Ok(got as i64);
                left -= got;
                finished += 1;
            } else {
                // Part of a send, or of a receive that waits for all, goes on from there; an
                // entry that got nothing was not touched.
                return RunDone {
                    finished,
                    progress: left as u64,
                };
            }
        }
        RunDone {
            finished,
            progress: 0,
        }
    }

    /// A run of requests of one operation on one socket ended: if they are sends, push out what
    /// the corked ones held back, whatever became of the run's last entry.
    fn flush(uk: &Ukevent) {
        // Only sends are corked.
        if uk.event() != KEVENT_AIO_SEND {
            return;
        }
        let Ok(fd) = u32::try_from(uk.id()) else {
            return;
        };
        // The descriptor may name another file by now (or none): a push is harmless anywhere.
        if let Ok(file) = LocalFile::fget(fd) {
            // SAFETY: `file` is a valid file; we hold a reference to it. The push only acts on a
            // socket (`->splice_eof`), and does not use the file position.
            unsafe { bindings::kevent_aio_push(file.as_ptr()) };
        }
    }
}

/// The `struct socket` of `file`, which was checked to be a socket's: it lives as long as the
/// file.
fn socket_of(file: &File) -> *mut bindings::socket {
    // SAFETY: `file` is a valid file for the duration of the call.
    unsafe { bindings::sock_from_file(file.as_ptr()) }
}

/// What an entry asks for, checked, with the socket's file: all of a send or receive that its
/// first pass needs, without an allocation.
struct Plan {
    op: u32,
    waitall: bool,
    len: usize,
    /// A sendfile's file offset; 0 for the others.
    pos: i64,
    /// A send's or receive's buffer address; a sendfile's 0.
    addr: u64,
    file: ARef<File>,
    sk: usize,
    stream: bool,
}

impl Plan {
    /// Checks the arguments of the entry `uk` (`EINVAL`): returns its operation, whether it waits
    /// for all (a receive), its length, and a sendfile's file offset (0 for the others).
    fn args(uk: &Ukevent) -> Result<(u32, bool, usize, i64)> {
        let op = uk.event();
        let [arg0, arg1] = uk.arg();
        let waitall = uk.req_flags() & KEVENT_REQ_AIO_WAITALL != 0;
        // One operation a request; waiting for all of it is for receives.
        if !op.is_power_of_two() || (waitall && op != KEVENT_AIO_RECV) {
            return Err(EINVAL);
        }
        let len = usize::try_from(arg1)
            .ok()
            .filter(|n| (1..=MAX_RW_COUNT).contains(n))
            .ok_or(EINVAL)?;
        let pos = if op == KEVENT_AIO_SENDFILE {
            // A file offset, and no overflow at its end.
            let pos = i64::try_from(arg0).map_err(|_| EINVAL)?;
            pos.checked_add(i64::try_from(len)?).ok_or(EINVAL)?;
            pos
        } else {
            if uk.arg_fd() != 0 {
                return Err(EINVAL);
            }
            0
        };
        Ok((op, waitall, len, pos))
    }

    /// Checks the entry `uk`: `EINVAL`, `EBADF` or `ENOTSOCK`.
    fn of(uk: &Ukevent) -> Result<Plan> {
        let (op, waitall, len, pos) = Self::args(uk)?;
        let arg0 = uk.arg()[0];

        // The socket, as `sockfd_lookup()` finds it.
        let fd = u32::try_from(uk.id())
            .ok()
            .filter(|&fd| i32::try_from(fd).is_ok())
            .ok_or(EBADF)?;
        let file = LocalFile::fget(fd)?;
        // SAFETY: `file` is a valid file; we hold a reference to it.
        let socket = unsafe { bindings::sock_from_file(file.as_ptr()) };
        if socket.is_null() {
            return Err(ENOTSOCK);
        }
        // SAFETY: `socket` is the socket of `file`, which our reference keeps alive; its `sk` and
        // `type` are set before the file is published.
        let (sk, ty) = unsafe { ((*socket).sk, (*socket).type_) };
        if sk.is_null() {
            return Err(EINVAL);
        }
        let stream = ty == bindings::sock_type_SOCK_STREAM as c_short;
        // SAFETY: `kevent_ctl()` runs no `fdget_pos()` region; the socket's file is only used for
        // socket calls, which do not use the file position.
        let file = unsafe { LocalFile::assume_no_fdget_pos(file) };
        Ok(Plan {
            op,
            waitall,
            len,
            pos,
            addr: if op == KEVENT_AIO_SENDFILE { 0 } else { arg0 },
            file,
            sk: sk as usize,
            stream,
        })
    }

    fn socket(&self) -> *mut bindings::socket {
        socket_of(&self.file)
    }
}

impl AioRequest {
    /// Checks the entry `uk` and makes its request, not started yet: nothing is pinned, and no
    /// context is made, before the request is armed.
    fn new(uk: &Ukevent) -> Result<Arc<AioRequest>> {
        let Plan {
            op,
            waitall,
            len,
            pos,
            addr,
            file,
            sk,
            stream,
        } = Plan::of(uk)?;
        let buf = match op {
            KEVENT_AIO_SENDFILE => Buf::Sendfile(Sendfile::new(uk.arg_fd(), pos, len)?),
            // Checked (and pinned, if need be) when the request starts.
            _ => Buf::User(addr),
        };
        Arc::pin_init(
            pin_init!(AioRequest {
                links <- ListLinks::new(),
                tracker <- AtomicTracker::new(),
                storage: Storage::new(),
                op,
                waitall,
                len,
                file,
                sk,
                stream,
                sock: SetOnce::new(),
                io <- new_mutex!(
                    ReqIo {
                        state: ReqState::Unarmed,
                        done: 0,
                        tried: false,
                        buf,
                        cred: None,
                    },
                    "kevent_aio_req"
                ),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// The core is done with the request (its `put`: the kevent was detached, removed,
    /// cancelled, its descriptor closed, delivered, its queue released): stops the request if it
    /// has not finished. Waits for a pass of the work that uses it; after this, nothing touches
    /// the request's pages. Called once.
    fn stop(&self) {
        let req = self;
        // `put` comes after `armed`, which sets the context (if the request needs one) before it
        // queues the request.
        let Some(sock) = req.sock.as_ref() else {
            // Never queued: finished in `armed`, or never armed.
            let buf = {
                let mut st = req.io.lock();
                st.state = ReqState::Finished;
                core::mem::replace(&mut st.buf, Buf::None)
            };
            drop(buf);
            return;
        };
        let (queued, buf, cred) = {
            let mut io = sock.io.lock();
            let mut st = req.io.lock();
            let was = core::mem::replace(&mut st.state, ReqState::Finished);
            if was == ReqState::Queued {
                // SAFETY: A queued request is on its direction's list of its own context, and
                // never on another list.
                drop(unsafe { io.list_mut(req.dir()).remove(req) });
            }
            (
                was == ReqState::Queued,
                core::mem::replace(&mut st.buf, Buf::None),
                st.cred.take(),
            )
        };
        // Unpins the pages, drops the sendfile's file.
        drop(buf);
        drop(cred);
        if queued {
            sock.release(1);
        }
    }
}

/// Where a request is in its life; guarded by its context's `io`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReqState {
    /// Submitted, its kevent not armed yet (or being armed): not on a context's list.
    Unarmed,
    /// On its context's list, in its direction: the work runs it when it is the head.
    Queued,
    /// Completed, or stopped: reported (or never to be), off the list, its resources dropped.
    Finished,
}

/// The direction of a request: each has its own FIFO on a socket.
#[derive(Clone, Copy)]
enum Dir {
    /// `KEVENT_AIO_SEND` and `KEVENT_AIO_SENDFILE`.
    Send,
    /// `KEVENT_AIO_RECV`.
    Recv,
}

/// What a request transfers with; dropped when it finishes.
enum Buf {
    /// Finished.
    None,
    /// The user buffer of a send or receive, at this address, not pinned: used only in the
    /// submitter's `kevent_ctl()`, by the request's first pass (see [`AioRequest::start`]).
    User(u64),
    /// The pinned pages of a send or receive.
    Pinned(Pinned),
    /// A sendfile.
    Sendfile(Sendfile),
}

/// The state of a request that its context's work and `put` share. Lock order: the context's
/// `io`, then this.
struct ReqIo {
    state: ReqState,
    /// Bytes moved so far.
    done: usize,
    /// Its first pass ran ([`AioRequest::first_pass`]): `start` does not run another.
    tried: bool,
    buf: Buf,
    /// Its submitter's credentials, which the work runs its transfers with; taken when the
    /// request is queued.
    cred: Option<ARef<Credential>>,
}

/// One request.
#[pin_data]
struct AioRequest {
    #[pin]
    links: ListLinks,
    #[pin]
    tracker: AtomicTracker,
    /// Where the request's kevent is registered; the request reports through it.
    storage: Storage,
    /// Its `KEVENT_AIO_*` bit.
    op: u32,
    /// A receive that waits for all of `len` (`KEVENT_REQ_AIO_WAITALL`).
    waitall: bool,
    /// The bytes to move.
    len: usize,
    /// The socket's file.
    file: ARef<File>,
    /// The socket's `struct sock`, the key of its context in [`SOCKS`].
    sk: usize,
    /// A `SOCK_STREAM` socket: its transfers may be split anywhere.
    stream: bool,
    /// Its socket's context, set in `armed` if the request is queued; the request is one of the
    /// context's users from then until it finishes.
    sock: SetOnce<Arc<AioSock>>,
    /// What its transfers use.
    #[pin]
    io: Mutex<ReqIo>,
}

kernel::list::impl_list_arc_safe! {
    impl ListArcSafe<0> for AioRequest { tracked_by tracker: AtomicTracker; }
}
kernel::list::impl_list_item! {
    impl ListItem<0> for AioRequest { using ListLinks { self.links }; }
}

/// What one step of a head request came to.
enum Step {
    /// The socket has no data or no room: wait for the next wake-up.
    Wait,
    /// The run's budget is spent, the request is not complete.
    Budget,
    /// The request is complete: the bytes moved, or why it failed.
    Done(Result<usize>),
}

impl AioRequest {
    fn dir(&self) -> Dir {
        if self.op == KEVENT_AIO_RECV {
            Dir::Recv
        } else {
            Dir::Send
        }
    }

    /// The socket.
    fn socket(&self) -> *mut bindings::socket {
        socket_of(&self.file)
    }

    /// The request's first pass, before its kevent is registered ([`kevent::Source::start`]), in
    /// the submitter's `kevent_ctl()`: if its socket has no context (no request of any direction
    /// in flight), on the user's buffer as it is (no pinning: this is the submitter's address
    /// space). Returns the result if the pass finished the request (the core reports it), or
    /// `None`: the request keeps its buffer and what it moved, and [`AioRequest::start`] goes on.
    /// `None` at once with `kevent_aio.inline_submit=0`.
    ///
    /// `more`: the batch hint; the pass of a send on a stream socket then sends with `MSG_MORE`,
    /// and the source's `flush` pushes it out.
    /// Takes over the `progress` (bytes moved) of the first pass that
    /// [`kevent::Source::submit`] ran for the request: the pass ran, and no other runs before
    /// [`AioRequest::start`].
    fn take_over(&self, progress: u64) {
        let mut guard = self.io.lock();
        let st = &mut *guard;
        st.tried = true;
        st.done = usize::try_from(progress).unwrap_or(self.len).min(self.len);
        // A sendfile's pass sent the file from its offset on, straight from the page cache
        // (nothing read and kept): the rest starts where it stopped.
        if let Buf::Sendfile(sf) = &mut st.buf {
            sf.pos = sf.pos.saturating_add(st.done as i64);
        }
    }

    fn first_pass(&self, more: bool) -> Option<Result<usize>> {
        if !module_parameters::inline_submit.value() {
            return None;
        }
        // Nothing else touches an unarmed request: its buffer is ours until it is queued or
        // finished.
        let (mut buf, mut done) = {
            let mut st = self.io.lock();
            if st.state != ReqState::Unarmed || st.tried {
                return None;
            }
            st.tried = true;
            (core::mem::replace(&mut st.buf, Buf::None), st.done)
        };
        let step = if AioSock::exists(self.sk) {
            // Behind the requests of its socket.
            None
        } else {
            let mut budget = BUDGET;
            Some(self.transfer(&mut buf, &mut done, &mut budget, more && self.stream))
        };
        let mut st = self.io.lock();
        if let Some(Step::Done(res)) = step {
            st.state = ReqState::Finished;
            drop(st);
            drop(buf);
            return Some(res);
        }
        st.buf = buf;
        st.done = done;
        None
    }

    /// The request's kevent is armed ([`kevent::Source::armed`]), in the submitter's
    /// `kevent_ctl()`: the request starts, or goes on after [`AioRequest::first_pass`].
    ///
    /// If its socket has no context (no request of any direction in flight) and no first pass
    /// ran, one runs here, and a request that it completes is reported at once, without a
    /// context. Otherwise (or with `kevent_aio.inline_submit=0`) the buffer is pinned and the
    /// request queued behind the others of its direction on the socket's context, made if need
    /// be; the context then runs a pass here too (`inline_submit`) or kicks its work.
    ///
    /// `more`: the batch hint, as for [`AioRequest::first_pass`].
    fn start(req: ArcBorrow<'_, AioRequest>, more: bool) {
        let inline = module_parameters::inline_submit.value();
        // Nothing else touches an unarmed request: `put` comes after `armed`, and only `armed`
        // queues it. Its buffer is ours until it is queued or finished.
        let (mut buf, mut done, tried) = {
            let mut st = req.io.lock();
            if st.state != ReqState::Unarmed {
                return;
            }
            (
                core::mem::replace(&mut st.buf, Buf::None),
                st.done,
                st.tried,
            )
        };
        let sock = match AioSock::lookup(req.sk) {
            Some(sock) => sock,
            None => {
                if inline && !tried {
                    let mut budget = BUDGET;
                    let more = more && req.stream;
                    if let Step::Done(res) = req.transfer(&mut buf, &mut done, &mut budget, more) {
                        req.finish_unqueued(buf, res);
                        return;
                    }
                }
                match AioSock::get(&req.file, req.sk, req.stream) {
                    Ok(sock) => sock,
                    Err(e) => return req.finish_unqueued(buf, Err(e)),
                }
            }
        };
        // From here on the request is a user of `sock`: `release()` it on every path.
        if let Buf::User(addr) = buf {
            match Pinned::new(addr, req.len, req.op == KEVENT_AIO_RECV) {
                Ok(pages) => buf = Buf::Pinned(pages),
                Err(e) => {
                    req.finish_unqueued(buf, Err(e));
                    sock.release(1);
                    return;
                }
            }
        }
        // SAFETY: The current task's credentials are valid during the system call; the `ARef`
        // takes a reference of its own.
        let cred: ARef<Credential> =
            unsafe { Credential::from_ptr(bindings::kevent_aio_current_cred()) }.into();
        // Cannot fail: `armed` runs once per request.
        let _ = req.sock.populate(sock.clone());
        let queued = {
            let mut io = sock.io.lock();
            let mut st = req.io.lock();
            match ListArc::try_from_arc(req.into()) {
                Ok(item) => {
                    *st = ReqIo {
                        state: ReqState::Queued,
                        done,
                        tried: true,
                        buf,
                        cred: Some(cred),
                    };
                    drop(st);
                    io.list_mut(req.dir()).push_back(item);
                    true
                }
                // Cannot happen: a request is queued once, and only here.
                Err(_) => {
                    st.state = ReqState::Finished;
                    drop(st);
                    drop(buf);
                    false
                }
            }
        };
        if !queued {
            req.report(Err(EINVAL));
            sock.release(1);
        } else if !inline || sock.run_once() {
            // A pass in the work (already queued: the run that is pending will see the request).
            let _ = workqueue::system().enqueue(sock.clone());
        }
    }

    /// The request, never queued, is done with `res` in `start`: drops its buffer and reports.
    fn finish_unqueued(&self, buf: Buf, res: Result<usize>) {
        self.io.lock().state = ReqState::Finished;
        drop(buf);
        self.report(res);
    }

    /// Reports the request's completion through its storage.
    fn report(&self, res: Result<usize>) {
        match res {
            Ok(n) => self
                .storage
                .ready(self.op, i64::try_from(n).unwrap_or(i64::MAX)),
            // SAFETY: A request reports once, when it finishes (under its context's `io`, or
            // in `start` before it is queued), after its kevent was armed, so no registration
            // runs on its storage (`KEVENT_CTL_MODIFY` is refused); and no `ready` either.
            Err(e) => unsafe { self.storage.fail(self.op, e) },
        }
    }

    /// The head request of its direction, off its list now, completed with `res`: drops what it
    /// transferred with (unpins its pages) and reports.
    fn finish(&self, st: &mut ReqIo, res: Result<usize>) {
        st.state = ReqState::Finished;
        drop(core::mem::replace(&mut st.buf, Buf::None));
        drop(st.cred.take());
        self.report(res);
    }

    /// Moves data for the request with `buf`, `done` bytes moved before: in the submitter's
    /// `kevent_ctl()` (any buffer), or, for the head of its direction on its context, in the
    /// work (pinned pages or a sendfile only).
    ///
    /// `more`: a send holds back what it does not fill a segment with (`MSG_MORE`).
    fn transfer(&self, buf: &mut Buf, done: &mut usize, budget: &mut usize, more: bool) -> Step {
        let socket = self.socket();
        let recv = self.op == KEVENT_AIO_RECV;
        let mem = match buf {
            Buf::User(addr) => Mem::User(*addr),
            Buf::Pinned(pages) => Mem::Pinned(pages),
            Buf::Sendfile(sf) => return sf.send(socket, done, budget),
            // Never transferred.
            Buf::None => return Step::Done(Err(EINVAL)),
        };
        let xfer = Xfer {
            socket,
            mem,
            len: self.len,
            stream: self.stream,
        };
        xfer.run(recv, self.waitall, more, done, budget)
    }

    /// [`Self::transfer`] for the head of its direction, in its context's work (or pass), with
    /// its submitter's credentials.
    fn transfer_queued(&self, budget: &mut usize) -> (Step, MutexGuard<'_, ReqIo>) {
        let mut guard = self.io.lock();
        let st = &mut *guard;
        let step = {
            let _cred = st.cred.as_deref().map(AsSubmitter::new);
            match st.buf {
                // Pinned in `start` before it was queued.
                Buf::User(_) => Step::Done(Err(EINVAL)),
                _ => self.transfer(&mut st.buf, &mut st.done, budget, false),
            }
        };
        (step, guard)
    }
}

/// The result of a socket or file call: bytes, or `-errno`.
fn io_result(ret: isize) -> Result<usize> {
    match usize::try_from(ret) {
        Ok(n) => Ok(n),
        Err(_) => Err(Error::from_errno(
            c_int::try_from(ret).unwrap_or(-(bindings::EIO as c_int)),
        )),
    }
}

/// The bytes a send queued, or the step it ends its request's pass with: wait for room (nothing
/// queued, or `EAGAIN`: sending set `SOCK_NOSPACE`, the socket calls back when there is room), or
/// the request's failure.
fn sent(ret: Result<usize>) -> core::result::Result<usize, Step> {
    match ret {
        Ok(0) => Err(Step::Wait),
        Ok(n) => Ok(n),
        Err(e) if e == EAGAIN => Err(Step::Wait),
        Err(e) => Err(Step::Done(Err(e))),
    }
}

/// The most one socket call may move of the `left` bytes of a request: the budget for a stream
/// socket, whose data may be split at any byte; everything for the others, whose sends and
/// receives are messages (a datagram must not be cut in two, nor received into less than it
/// needs).
fn chunk(stream: bool, left: usize, budget: usize) -> usize {
    if stream {
        left.min(budget)
    } else {
        left
    }
}

/// The memory of a send or receive.
enum Mem<'a> {
    /// The user buffer at this address, in the current task's address space.
    User(u64),
    /// Pinned pages.
    Pinned(&'a Pinned),
}

/// A send or receive of `len` bytes between a socket and `mem`.
struct Xfer<'a> {
    socket: *mut bindings::socket,
    mem: Mem<'a>,
    len: usize,
    stream: bool,
}

impl Xfer<'_> {
    /// Sets up in `msg` (a new message) an iterator (`ITER_SOURCE` or `ITER_DEST`, `dir`) over
    /// bytes `at..at + n` of the memory (`at + n <= len`); `EFAULT` if they are not user memory.
    /// In place: a `msghdr` is large enough that returning one costs copies of it.
    fn msg(&self, dir: c_uint, at: usize, n: usize, msg: &mut bindings::msghdr) -> Result {
        match self.mem {
            Mem::Pinned(pages) => {
                pages.msg(dir, at, n, msg);
                Ok(())
            }
            Mem::User(addr) => {
                let start = usize::try_from(addr)
                    .ok()
                    .and_then(|a| a.checked_add(at))
                    .ok_or(EFAULT)?;
                // SAFETY: `msg_iter` is a valid iterator to initialise; `import_ubuf()` checks
                // that the range is user memory (`access_ok()`), and the copies through the
                // iterator handle faults.
                let ret = unsafe {
                    bindings::import_ubuf(
                        dir as c_int,
                        start as *mut core::ffi::c_void,
                        n,
                        &mut msg.msg_iter,
                    )
                };
                if ret < 0 {
                    return Err(Error::from_errno(ret));
                }
                Ok(())
            }
        }
    }

    /// Sends the rest of the memory, or with `recv` receives into it: a receive completes at the
    /// first data, or with `waitall` when the memory is full; at end of file either way. A send
    /// with `more` holds back what does not fill a segment (`MSG_MORE`).
    fn run(
        &self,
        recv: bool,
        waitall: bool,
        more: bool,
        done: &mut usize,
        budget: &mut usize,
    ) -> Step {
        let more = if more { bindings::MSG_MORE } else { 0 };
        let dir = if recv {
            bindings::ITER_DEST
        } else {
            bindings::ITER_SOURCE
        };
        loop {
            let left = self.len - *done;
            if left == 0 {
                return Step::Done(Ok(self.len));
            }
            if *budget == 0 {
                return Step::Budget;
            }
            let mut msg = bindings::msghdr::default();
            if let Err(e) = self.msg(dir, *done, chunk(self.stream, left, *budget), &mut msg) {
                return Step::Done(Err(e));
            }
            // SAFETY: `socket` is the socket of a file the request holds; `msg` is a valid
            // message over memory that `self` keeps for the call (pinned pages of a receive
            // were pinned for writing).
            let ret = unsafe {
                if recv {
                    bindings::sock_recvmsg(self.socket, &mut msg, bindings::MSG_DONTWAIT as c_int)
                } else {
                    msg.msg_flags = bindings::MSG_DONTWAIT | bindings::MSG_NOSIGNAL | more;
                    bindings::sock_sendmsg(self.socket, &mut msg)
                }
            };
            match io_result(ret as isize) {
                Err(e) if e == EAGAIN => return Step::Wait,
                Err(e) => return Step::Done(Err(e)),
                // End of file (or, on a datagram socket, an empty datagram).
                Ok(0) if recv => return Step::Done(Ok(*done)),
                // No room (sending set `SOCK_NOSPACE`: the socket calls back when there is).
                Ok(0) => return Step::Wait,
                Ok(n) => {
                    *done += n.min(left);
                    *budget = budget.saturating_sub(n);
                    if recv && !waitall {
                        return Step::Done(Ok(*done));
                    }
                }
            }
        }
    }
}

/// Runs the code of its scope with a request's submitter's credentials.
struct AsSubmitter<'a> {
    /// The worker's own credentials, given back at the end of the scope.
    old: *const bindings::cred,
    _cred: PhantomData<&'a Credential>,
}

impl<'a> AsSubmitter<'a> {
    fn new(cred: &'a Credential) -> Self {
        // SAFETY: `cred` is valid, and it outlives the guard, which reverts it.
        let old = unsafe { bindings::kevent_aio_override_creds(cred.as_ptr()) };
        AsSubmitter {
            old,
            _cred: PhantomData,
        }
    }
}

impl Drop for AsSubmitter<'_> {
    fn drop(&mut self) {
        // SAFETY: `old` are the credentials `override_creds()` replaced, in this task, which
        // keeps them.
        unsafe { bindings::kevent_aio_revert_creds(self.old) };
    }
}

/// The segments of a [`Pinned`] buffer: in place for a buffer of up to [`INLINE_PAGES`] pages,
/// allocated for a longer one.
enum Bvecs {
    /// The first `.1` are set.
    Inline([bindings::bio_vec; INLINE_PAGES], usize),
    Heap(KVVec<bindings::bio_vec>),
}

/// How many pages a [`Pinned`] buffer keeps without an allocation.
const INLINE_PAGES: usize = 4;

/// An unset segment.
const NO_BVEC: bindings::bio_vec = bindings::bio_vec {
    bv_page: core::ptr::null_mut(),
    bv_len: 0,
    bv_offset: 0,
};

impl Bvecs {
    /// Room for `nr` segments.
    fn with_capacity(nr: usize) -> Result<Bvecs> {
        if nr <= INLINE_PAGES {
            Ok(Bvecs::Inline([NO_BVEC; INLINE_PAGES], 0))
        } else {
            Ok(Bvecs::Heap(KVVec::with_capacity(nr, GFP_KERNEL_ACCOUNT)?))
        }
    }

    fn as_slice(&self) -> &[bindings::bio_vec] {
        match self {
            Bvecs::Inline(v, n) => v.get(..*n).unwrap_or(&[]),
            Bvecs::Heap(v) => v,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [bindings::bio_vec] {
        match self {
            Bvecs::Inline(v, n) => v.get_mut(..*n).unwrap_or(&mut []),
            Bvecs::Heap(v) => v,
        }
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Appends `bv` within the room made; gives it back if there is none.
    fn push(&mut self, bv: bindings::bio_vec) -> core::result::Result<(), bindings::bio_vec> {
        match self {
            Bvecs::Inline(v, n) => match v.get_mut(*n) {
                Some(slot) => {
                    *slot = bv;
                    *n += 1;
                    Ok(())
                }
                None => Err(bv),
            },
            Bvecs::Heap(v) => v.push_within_capacity(bv).map_err(|e| e.0),
        }
    }
}

/// User pages pinned for a send or a receive, as the segments of a `bio_vec` iterator.
///
/// # Invariants
///
/// Every page of `bvecs` is pinned once (`pin_user_pages_fast()`), and unpinned when this is
/// dropped; the segments hold the buffer's bytes, the first from its `bv_offset`, every other from
/// 0 and, but the last, a whole page. `charged` pages are charged to `mm`'s `pinned_vm`, and `mm`
/// is grabbed, until this is dropped.
struct Pinned {
    bvecs: Bvecs,
    mm: *mut bindings::mm_struct,
    charged: usize,
    /// Pinned for writing (a receive): marked dirty when unpinned.
    write: bool,
}

// SAFETY: Pinned pages may be used and unpinned from any thread, and a grabbed mm's charge given
// back from any; the raw pointers are only dereferenced by the kernel's iterator, unpin and
// uncharge functions.
unsafe impl Send for Pinned {}

impl Pinned {
    /// Pins the `len` bytes of user memory at `addr`, of the current process, for writing if
    /// `write`, and charges them to its `RLIMIT_MEMLOCK`: `EFAULT` (usually) if the memory cannot
    /// be pinned, `ENOMEM` if that is over the limit (without `CAP_IPC_LOCK`) or the list of a
    /// long buffer's pages cannot be allocated.
    fn new(addr: u64, len: usize, write: bool) -> Result<Pinned> {
        let (addr, end) = usize::try_from(addr)
            .ok()
            .and_then(|a| Some((a, a.checked_add(len)?)))
            .ok_or(EFAULT)?;
        let first = addr & PAGE_MASK;
        let nr = (end - first).div_ceil(PAGE_SIZE);
        let bvecs = Bvecs::with_capacity(nr)?;
        // SAFETY: Called in the submitter's system call, whose mm it charges.
        let mm = unsafe { bindings::kevent_aio_charge_pinned(nr as c_ulong) };
        if mm.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: Nothing is pinned yet; `nr` pages are charged to `mm`, grabbed.
        let mut pinned = Pinned {
            bvecs,
            mm,
            charged: nr,
            write,
        };
        let mut flags = bindings::FOLL_LONGTERM as c_uint;
        if write {
            flags |= bindings::FOLL_WRITE as c_uint;
        }
        let mut pages = [core::ptr::null_mut::<bindings::page>(); PIN_BATCH];
        let mut offset = addr - first;
        let mut left = len;
        while pinned.bvecs.len() < nr {
            let want = (nr - pinned.bvecs.len()).min(PIN_BATCH);
            let start = first + pinned.bvecs.len() * PAGE_SIZE;
            // SAFETY: `pages` has room for `want` pointers; `start` is a user address of the
            // current process (checked by the call).
            let got = unsafe {
                bindings::pin_user_pages_fast(
                    start as c_ulong,
                    want as c_int,
                    flags,
                    pages.as_mut_ptr(),
                )
            };
            let got = match usize::try_from(got) {
                Ok(0) => return Err(EFAULT),
                Ok(got) => got.min(want),
                Err(_) => return Err(Error::from_errno(got)),
            };
            for &page in &pages[..got] {
                let n = (PAGE_SIZE - offset).min(left);
                let bv = bindings::bio_vec {
                    bv_page: page,
                    bv_len: n as c_uint,
                    bv_offset: offset as c_uint,
                };
                // INVARIANT: The page is pinned and now in `bvecs`, which has room for `nr`.
                if let Err(mut bv) = pinned.bvecs.push(bv) {
                    // Cannot happen; do not leak the pin.
                    // SAFETY: `bv_page` was pinned above and is in no list.
                    unsafe { bindings::unpin_user_pages_dirty_lock(&mut bv.bv_page, 1, false) };
                }
                left -= n;
                offset = 0;
            }
        }
        Ok(pinned)
    }

    /// The segment that holds byte `at` of the buffer, and the offset of the byte in it.
    fn seek(&self, at: usize) -> (usize, usize) {
        let first = self
            .bvecs
            .as_slice()
            .first()
            .map_or(0, |bv| bv.bv_len as usize);
        if at < first {
            (0, at)
        } else {
            let rest = at - first;
            (1 + rest / PAGE_SIZE, rest % PAGE_SIZE)
        }
    }

    /// Sets up in `msg` (a new message) an iterator (`ITER_SOURCE` or `ITER_DEST`, `dir`) over
    /// bytes `at..at + n` of the buffer (`at + n` at most its length). It points into `self`: use
    /// the message while `self` lives.
    fn msg(&self, dir: c_uint, at: usize, n: usize, msg: &mut bindings::msghdr) {
        let (seg, skip) = self.seek(at);
        let segs = self.bvecs.as_slice().get(seg..).unwrap_or(&[]);
        // SAFETY: `segs` are initialised segments that hold at least `skip + n` bytes (by the type
        // invariants, as `at + n` is at most the buffer's length); `iov_iter_bvec()` only records
        // them, and `iov_iter_advance()` skips `skip` bytes of the first.
        unsafe {
            bindings::iov_iter_bvec(
                &mut msg.msg_iter,
                dir,
                segs.as_ptr(),
                segs.len() as c_ulong,
                skip + n,
            );
            bindings::iov_iter_advance(&mut msg.msg_iter, skip);
        }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        for bv in self.bvecs.as_mut_slice() {
            // SAFETY: By the type invariants the page is pinned, and it is unpinned once, here.
            unsafe { bindings::unpin_user_pages_dirty_lock(&mut bv.bv_page, 1, self.write) };
        }
        // SAFETY: By the type invariants `charged` pages are charged to `mm`, which is grabbed;
        // both are given back once, here.
        unsafe { bindings::kevent_aio_uncharge_pinned(self.mm, self.charged as c_ulong) };
    }
}

/// A sendfile request: its file, where it reads and how much, and what it read and has not sent.
struct Sendfile {
    file: ARef<File>,
    /// The offset of the next read.
    pos: i64,
    /// The bytes to send.
    count: usize,
    /// What the last read returned, allocated at the first.
    buf: KVVec<u8>,
    /// Bytes of `buf` read.
    filled: usize,
    /// Bytes of `buf` sent.
    sent: usize,
    /// The file's page cache is its data: cached pages are sent as they are.
    direct: bool,
}

impl Sendfile {
    /// The file `fd`, if it can be sent from: `EBADF` if it is not open for reading, `EINVAL`
    /// if it is not a regular file read through `->read_iter` (as `kernel_read()` wants it).
    fn new(fd: u32, pos: i64, count: usize) -> Result<Sendfile> {
        let file = LocalFile::fget(fd)?;
        let f = file.as_ptr();
        // SAFETY: `f` is a valid file; we hold a reference to it.
        let mode = unsafe { bindings::kevent_aio_file_mode(f) };
        if mode & bindings::KEVENT_AIO_FILE_READ == 0 {
            return Err(EBADF);
        }
        // SAFETY: A file's `f_inode` and `f_op` are set before the file is published and never
        // change; the file keeps its inode alive, and `f_op` points to static operations.
        let (i_mode, read_iter, read) = unsafe {
            let fop = (*f).f_op;
            (
                (*(*f).f_inode).i_mode,
                (*fop).read_iter.is_some(),
                (*fop).read.is_some(),
            )
        };
        if u32::from(i_mode) & bindings::S_IFMT != bindings::S_IFREG
            || mode & bindings::KEVENT_AIO_FILE_CAN_READ == 0
            || !read_iter
            || read
        {
            return Err(EINVAL);
        }
        // SAFETY: `kevent_ctl()` runs no `fdget_pos()` region; the file is read at offsets of
        // our own (`kernel_read()` with `pos`), never at its file position.
        let file = unsafe { LocalFile::assume_no_fdget_pos(file) };
        // SAFETY: `f` is a valid file; we hold a reference to it.
        let direct = unsafe { bindings::kevent_aio_cache_is_data(f) };
        Ok(Sendfile {
            file,
            pos,
            count,
            buf: KVVec::new(),
            filled: 0,
            sent: 0,
            direct,
        })
    }

    /// Sends what it can of the rest straight from the page cache (see [`Sendfile::send`]):
    /// the step it ends with, or `None` at a page that must be read (and for a file whose cache
    /// is not its data). Nothing is read or kept, so that `done` alone says where it stopped.
    fn send_direct(
        &mut self,
        socket: *mut bindings::socket,
        done: &mut usize,
        budget: &mut usize,
    ) -> Option<Step> {
        loop {
            let left = self.count - *done;
            if left == 0 {
                return Some(Step::Done(Ok(self.count)));
            }
            if *budget == 0 {
                return Some(Step::Budget);
            }
            if !self.direct {
                return None;
            }
            let ret = self.send_cached(socket, left)?;
            let n = match sent(ret) {
                Ok(n) => n.min(left),
                Err(step) => return Some(step),
            };
            self.pos += n as i64;
            *done += n;
            *budget = budget.saturating_sub(n);
        }
    }

    /// Sends up to `left` bytes (at most [`SENDFILE_CHUNK`]) from `pos` straight from the file's
    /// page cache, as `sendfile()` does: the pages, with `MSG_SPLICE_PAGES`, so that the socket
    /// takes references to them instead of copying them (if its protocol can). `None` if the
    /// page at `pos` is not cached and up to date, or `pos` is at the end of the file: then the
    /// file must be read.
    fn send_cached(&self, socket: *mut bindings::socket, left: usize) -> Option<Result<usize>> {
        let f = self.file.as_ptr();
        // SAFETY: `f` is a valid file; we hold a reference to it.
        let size = unsafe { bindings::kevent_aio_file_size(f) };
        let pos = usize::try_from(self.pos).ok()?;
        let end = usize::try_from(size).ok()?;
        let want = left.min(SENDFILE_CHUNK).min(end.checked_sub(pos)?);
        let mut bvecs = [NO_BVEC; SENDFILE_CHUNK / PAGE_SIZE + 1];
        let mut nr = 0;
        let mut len = 0;
        for bv in bvecs.iter_mut() {
            if len == want {
                break;
            }
            let at = pos + len;
            // SAFETY: `f` is a valid file; the page comes with a reference, dropped below.
            let page = unsafe { bindings::kevent_aio_cached_page(f, (at / PAGE_SIZE) as c_ulong) };
            if page.is_null() {
                break;
            }
            let offset = at % PAGE_SIZE;
            let seg = (PAGE_SIZE - offset).min(want - len);
            *bv = bindings::bio_vec {
                bv_page: page,
                bv_len: seg as c_uint,
                bv_offset: offset as c_uint,
            };
            nr += 1;
            len += seg;
        }
        if nr == 0 {
            return None;
        }
        let mut msg = bindings::msghdr::default();
        msg.msg_flags =
            bindings::MSG_SPLICE_PAGES | bindings::MSG_DONTWAIT | bindings::MSG_NOSIGNAL;
        let segs = bvecs.get(..nr).unwrap_or(&[]);
        // SAFETY: `segs` are `nr` segments holding `len` bytes of pages we hold references to;
        // the socket only reads them (`ITER_SOURCE`), and takes its own references to keep them.
        let ret = unsafe {
            bindings::iov_iter_bvec(
                &mut msg.msg_iter,
                bindings::ITER_SOURCE,
                segs.as_ptr(),
                nr as c_ulong,
                len,
            );
            bindings::sock_sendmsg(socket, &mut msg)
        };
        for bv in segs {
            // SAFETY: The reference `kevent_aio_cached_page()` gave us, dropped once.
            unsafe { bindings::kevent_aio_put_page(bv.bv_page) };
        }
        Some(io_result(ret as isize))
    }

    /// Reads and sends the rest of the file's range: complete when `count` bytes are sent, or at
    /// the end of the file.
    fn send(
        &mut self,
        socket: *mut bindings::socket,
        done: &mut usize,
        budget: &mut usize,
    ) -> Step {
        loop {
            if self.sent == self.filled {
                if let Some(step) = self.send_direct(socket, done, budget) {
                    return step;
                }
                let left = self.count - *done;
                if self.buf.is_empty() {
                    // Only a head request holds a buffer.
                    match KVVec::from_elem(0u8, left.min(SENDFILE_CHUNK), GFP_KERNEL) {
                        Ok(buf) => self.buf = buf,
                        Err(_) => return Step::Done(Err(ENOMEM)),
                    }
                }
                let want = left.min(self.buf.len());
                // SAFETY: The file is valid (we hold it) and open for reading; `buf` has room
                // for `want` bytes; `pos` is a valid offset.
                let ret = unsafe {
                    bindings::kernel_read(
                        self.file.as_ptr(),
                        self.buf.as_mut_ptr().cast(),
                        want,
                        &mut self.pos,
                    )
                };
                match io_result(ret) {
                    Err(e) => return Step::Done(Err(e)),
                    // End of file: what was sent is the result.
                    Ok(0) => return Step::Done(Ok(*done)),
                    Ok(n) => {
                        self.filled = n.min(want);
                        self.sent = 0;
                    }
                }
            }
            if *budget == 0 {
                return Step::Budget;
            }
            let chunk = self.buf.get(self.sent..self.filled).unwrap_or(&[]);
            let kv = bindings::kvec {
                iov_base: chunk.as_ptr().cast_mut().cast(),
                iov_len: chunk.len(),
            };
            let mut msg = bindings::msghdr::default();
            msg.msg_flags = bindings::MSG_DONTWAIT | bindings::MSG_NOSIGNAL;
            // SAFETY: `kv` describes `chunk`, which outlives the message; the socket is sent from
            // (`ITER_SOURCE`), never written into it.
            unsafe {
                bindings::iov_iter_kvec(
                    &mut msg.msg_iter,
                    bindings::ITER_SOURCE,
                    &kv,
                    1,
                    chunk.len(),
                )
            };
            // SAFETY: As in `send()`.
            let ret = unsafe { bindings::sock_sendmsg(socket, &mut msg) };
            let n = match sent(io_result(ret as isize)) {
                Ok(n) => n.min(self.filled - self.sent),
                Err(step) => return step,
            };
            self.sent += n;
            *done += n;
            *budget = budget.saturating_sub(n);
        }
    }
}

/// The requests of one socket and what runs them.
#[pin_data]
struct AioSock {
    /// The `struct sock`, the context's key in [`SOCKS`].
    sk: usize,
    /// The socket's file: keeps the socket alive while the context lives.
    file: ARef<File>,
    /// A `SOCK_STREAM` socket: its transfers may be split anywhere.
    stream: bool,
    #[pin]
    io: Mutex<SockIo>,
    #[pin]
    work: Work<AioSock>,
    /// Requests between their submission and their end; the context leaves [`SOCKS`] at 0.
    /// Guarded by the mutex of the context's bucket.
    users: LockedBy<usize, SockMap>,
}

/// A context's requests, and its watch on the socket; guarded by `AioSock::io`.
struct SockIo {
    /// Send and sendfile requests, in submission order: the head one transfers.
    send: List<AioRequest>,
    /// Receive requests, in submission order.
    recv: List<AioRequest>,
    /// The entry on the socket's wait queue, while the context is in [`SOCKS`].
    watch: Option<Pin<KBox<PollWatch<AioSock>>>>,
}

impl SockIo {
    fn list(&self, dir: Dir) -> &List<AioRequest> {
        match dir {
            Dir::Send => &self.send,
            Dir::Recv => &self.recv,
        }
    }

    fn list_mut(&mut self, dir: Dir) -> &mut List<AioRequest> {
        match dir {
            Dir::Send => &mut self.send,
            Dir::Recv => &mut self.recv,
        }
    }
}

impl_has_work! {
    impl HasWork<Self> for AioSock { self.work }
}

impl AioSock {
    /// Whether the socket whose `struct sock` is `sk` has a context.
    fn exists(sk: usize) -> bool {
        sock_bucket(sk).is_some_and(|b| b.lock().get(&sk).is_some())
    }

    /// The context of the socket whose `struct sock` is `sk`, with one more user, if it has one.
    fn lookup(sk: usize) -> Option<Arc<AioSock>> {
        let mut map = sock_bucket(sk)?.lock();
        let sock = map.get(&sk).cloned()?;
        *sock.users.access_mut(&mut map) += 1;
        Some(sock)
    }

    /// The context of the socket of `file`, whose `struct sock` is `sk`, with one more user; made
    /// (and watching the socket) if the socket has none.
    fn get(file: &ARef<File>, sk: usize, stream: bool) -> Result<Arc<AioSock>> {
        let bucket = sock_bucket(sk).ok_or(EINVAL)?;
        let mut map = bucket.lock();
        if let Some(sock) = map.get(&sk).cloned() {
            *sock.users.access_mut(&mut map) += 1;
            return Ok(sock);
        }
        // Everything that can fail first: once the watch exists, the context is published.
        let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        let sock = Arc::pin_init(
            pin_init!(AioSock {
                sk,
                file: file.clone(),
                stream,
                io <- new_mutex!(
                    SockIo {
                        send: List::new(),
                        recv: List::new(),
                        watch: None,
                    },
                    "kevent_aio_sock"
                ),
                work <- new_work!("kevent_aio_sock"),
                users: LockedBy::new(bucket, 1),
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        // From now on a wake-up of the socket queues the work (which finds nothing to do until
        // a request is armed).
        let watch = KBox::pin_init(
            PollWatch::new(file.clone(), sock.clone()),
            GFP_KERNEL_ACCOUNT,
        )?;
        sock.io.lock().watch = Some(watch);
        let _ = map.insert(node.into_node(sk, sock.clone()));
        Ok(sock)
    }

    /// `n` of the context's requests finished: after the last one, the context leaves
    /// [`SOCKS`] and stops watching the socket.
    fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        // A context exists only once the map does.
        let Some(bucket) = sock_bucket(self.sk) else {
            return;
        };
        let removed = {
            let mut map = bucket.lock();
            let users = self.users.access_mut(&mut map);
            *users = users.saturating_sub(n);
            if *users != 0 {
                return;
            }
            let mine = map
                .get(&self.sk)
                .is_some_and(|s| core::ptr::eq::<AioSock>(&**s, self));
            if mine {
                map.remove(&self.sk)
            } else {
                None
            }
        };
        drop(removed);
        // The watch holds a reference to the context: dropping it lets the context go with its
        // last request (or queued run).
        let watch = self.io.lock().watch.take();
        drop(watch);
    }

    /// Runs the head requests of one direction until one must wait for the socket, none is
    /// left, or the run's budget is spent: then returns `true`. Counts in `finished` the
    /// requests it completes.
    fn pass(&self, io: &mut SockIo, dir: Dir, finished: &mut usize) -> bool {
        let mut budget = BUDGET;
        loop {
            let Some(head) = io.list(dir).iter().next().map(Arc::<AioRequest>::from) else {
                return false;
            };
            let (step, mut st) = head.transfer_queued(&mut budget);
            match step {
                Step::Wait => return false,
                Step::Budget => return true,
                Step::Done(res) => {
                    // It is the head: nobody else changes the list while we hold `io`.
                    drop(io.list_mut(dir).pop_front());
                    head.finish(&mut st, res);
                    *finished += 1;
                }
            }
        }
    }
}

impl AioSock {
    /// One run: a pass over each direction, with its own budget. Returns whether a budget was
    /// spent with work left.
    fn run_once(&self) -> bool {
        let mut finished = 0;
        let more = {
            let mut io = self.io.lock();
            let send = self.pass(&mut io, Dir::Send, &mut finished);
            let recv = self.pass(&mut io, Dir::Recv, &mut finished);
            send || recv
        };
        self.release(finished);
        more
    }
}

impl WorkItem for AioSock {
    type Pointer = Arc<AioSock>;

    /// One run of the work item.
    fn run(this: Arc<AioSock>) {
        if this.run_once() {
            // Budget spent with work left: to the tail of this CPU's queue, behind the work of
            // other sockets.
            let _ = workqueue::system().enqueue(this);
        }
    }
}

impl PollWake for AioSock {
    /// The socket's wait queue was woken (data, room, a state change, an error): the heads may
    /// move. Atomic context: only queues the work, on this CPU (see the module documentation).
    fn wake(this: ArcBorrow<'_, Self>, _events: u32) {
        // Already queued: that run will see what woke us. The reference we made goes back (the
        // watch holds another, so this is not the last).
        let _ = workqueue::system().enqueue(Arc::<AioSock>::from(this));
    }
}
