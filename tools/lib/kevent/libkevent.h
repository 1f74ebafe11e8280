/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * libkevent.h - header-only helpers for the kevent system calls.
 *
 * kevent gives a process one queue for events from many sources through two
 * system calls, kevent_ctl() and kevent_get_events(), which have no glibc
 * wrappers. This header provides the raw wrappers, a few convenience calls
 * and helpers that fill in a struct ukevent, in the style of liburing's
 * io_uring_prep_*() helpers:
 *
 *	struct ukevent uk[2], ev[8];
 *	int kfd = kevent_queue(KEVENT_CLOEXEC);
 *
 *	kevent_prep_timer(&uk[0], 1, 100000000, 100000000, 0xcafe);
 *	kevent_prep_poll(&uk[1], pipe_fd, EPOLLIN, 0xbeef);
 *	kevent_set_flags(&uk[1], KEVENT_REQ_ET);
 *	if (kevent_add(kfd, uk, 2) != 2)
 *		... kevent_result(&uk[i]) is 0 or -errno for each entry ...
 *	n = kevent_wait(kfd, ev, 1, 8, -1);
 *
 * Network AIO requests (KEVENT_TYPE_AIO) are submitted the same way, or one
 * at a time with aio_send(), aio_recv() and aio_sendfile(); each completes
 * with one event whose ret_data is the byte count or -errno
 * (kevent_aio_result()):
 *
 *	if (aio_recv(kfd, sock, buf, sizeof(buf), 0, 7))
 *		... errno tells why the request was refused ...
 *	n = kevent_wait(kfd, ev, 1, 8, 1000);
 *	... ev[0].user_data == 7, kevent_aio_result(&ev[0]) bytes or -errno ...
 *
 * Sends prepared with kevent_prep_aio_send() (or receives, with
 * kevent_prep_aio_recv()) added one after the other in one kevent_add() on
 * one stream socket are moved together: when nothing waits on the socket,
 * up to 8 of them (128 KiB in all) in one socket call, in order, and small
 * sends leave in full segments, not one segment each. Each still completes
 * with its own event.
 *
 * A queue made with a ready ring (%KEVENT_RING) has the events that need
 * nothing at delivery (timers that are not periodic, inodes, AIO
 * completions, edge-triggered or oneshot socket kevents) written into memory
 * the process maps, and taken from there without a system call; the others
 * still come from kevent_get_events(), which returns as soon as the ring
 * holds an event (0 if it copied none):
 *
 *	struct kevent_ring *ring;
 *	struct kevent_ring_event rev;
 *	size_t len;
 *	int kfd = kevent_queue_ring(KEVENT_CLOEXEC, 256, &ring, &len);
 *
 *	n = kevent_wait(kfd, ev, 1, 8, -1);
 *	... ev[0..n) as above ...
 *	while (kevent_ring_pop(ring, &rev))
 *		... rev.user_data, rev.event, rev.ret_data ...
 *	kevent_ring_unmap(ring, len);
 *
 * syscall() needs _DEFAULT_SOURCE (or _GNU_SOURCE) defined before the first
 * #include of a libc header.
 *
 * Every function that makes a system call makes exactly one, except
 * kevent_queue_ring() (kevent_ctl() and mmap(), and close() if mmap()
 * fails). The calls return like syscall(2): -1 with errno set on failure.
 * See Documentation/kevent.rst for the semantics of every field, flag and
 * error.
 *
 * Installed next to the uapi header <linux/kevent.h> (make headers_install),
 * which it includes; "make -C tools/lib/kevent install" copies it to
 * $(DESTDIR)$(prefix)/include.
 */
#ifndef _LIBKEVENT_H
#define _LIBKEVENT_H

#include <linux/kevent.h>
#include <linux/time_types.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <string.h>
#include <errno.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The same numbers on x86_64 and in the generic system call table. */
#ifndef __NR_kevent_ctl
#define __NR_kevent_ctl 473
#endif
#ifndef __NR_kevent_get_events
#define __NR_kevent_get_events 474
#endif

/*
 * Network AIO (KEVENT_TYPE_AIO), for a <linux/kevent.h> older than it. The
 * values are the ABI's; a current header defines them all.
 */
#ifndef KEVENT_AIO_SEND
#define KEVENT_AIO_SEND		0x1
#endif
#ifndef KEVENT_AIO_RECV
#define KEVENT_AIO_RECV		0x2
#endif
#ifndef KEVENT_AIO_SENDFILE
#define KEVENT_AIO_SENDFILE	0x4
#endif
#ifndef KEVENT_REQ_AIO_WAITALL
#define KEVENT_REQ_AIO_WAITALL	0x10
#endif

/**
 * kevent_ctl() - the kevent_ctl() system call
 * @fd:		the queue, or -1 for %KEVENT_CTL_INIT
 * @cmd:	%KEVENT_CTL_INIT, %KEVENT_CTL_ADD, %KEVENT_CTL_REMOVE or
 *		%KEVENT_CTL_MODIFY
 * @num:	the number of entries in @buf (at most %KEVENT_CTL_MAX_BATCH);
 *		the %KEVENT_* flags for %KEVENT_CTL_INIT
 * @buf:	@num entries, each of which receives its result; NULL for
 *		%KEVENT_CTL_INIT
 *
 * Return: a new queue descriptor (%KEVENT_CTL_INIT) or the number of entries
 * that took effect; -1 with errno set on error.
 */
static inline int kevent_ctl(int fd, unsigned int cmd, unsigned int num,
			     struct ukevent *buf)
{
	return (int)syscall(__NR_kevent_ctl, fd, cmd, num, buf);
}

/**
 * kevent_get_events() - the kevent_get_events() system call
 * @fd:		the queue
 * @min_nr:	wait until at least this many events are ready (at most
 *		@max_nr; 0 never sleeps)
 * @max_nr:	the size of @buf in entries, at least 1
 * @timeout:	NULL to wait without a limit; a relative timeout, or with
 *		%KEVENT_WAIT_ABSTIME an absolute CLOCK_MONOTONIC deadline
 * @buf:	receives the events
 * @flags:	0 or %KEVENT_WAIT_ABSTIME
 *
 * Return: the number of events copied to @buf (0 to @max_nr); -1 with errno
 * set on error.
 */
static inline int kevent_get_events(int fd, unsigned int min_nr,
				    unsigned int max_nr,
				    const struct __kernel_timespec *timeout,
				    struct ukevent *buf, unsigned int flags)
{
	return (int)syscall(__NR_kevent_get_events, fd, min_nr, max_nr,
			    timeout, buf, flags);
}

/**
 * kevent_queue() - make a kevent queue
 * @flags:	%KEVENT_CLOEXEC and/or %KEVENT_NONBLOCK, or 0
 *
 * One kevent_ctl(%KEVENT_CTL_INIT) call.
 *
 * Return: the new queue's file descriptor; -1 with errno set on error.
 */
static inline int kevent_queue(unsigned int flags)
{
	return kevent_ctl(-1, KEVENT_CTL_INIT, flags, NULL);
}

/**
 * kevent_add() - register kevents
 * @fd:		the queue
 * @uk:		@n entries, prepared with the kevent_prep_*() helpers
 * @n:		the number of entries, at most %KEVENT_CTL_MAX_BATCH
 *
 * One kevent_ctl(%KEVENT_CTL_ADD) call. A failing entry does not stop the
 * ones after it; kevent_result() tells each entry's result.
 *
 * Return: the number of entries that took effect; -1 with errno set if the
 * call failed as a whole (nothing took effect).
 */
static inline int kevent_add(int fd, struct ukevent *uk, unsigned int n)
{
	return kevent_ctl(fd, KEVENT_CTL_ADD, n, uk);
}

/**
 * kevent_modify() - change the request of kevents and re-arm them
 * @fd:		the queue
 * @uk:		@n entries, each naming a kevent by (type, id) and holding its
 *		new request
 * @n:		the number of entries, at most %KEVENT_CTL_MAX_BATCH
 *
 * One kevent_ctl(%KEVENT_CTL_MODIFY) call. Per-entry results as for
 * kevent_add(); an entry naming no kevent fails with %ENOENT.
 *
 * Return: the number of entries that took effect; -1 with errno set if the
 * call failed as a whole.
 */
static inline int kevent_modify(int fd, struct ukevent *uk, unsigned int n)
{
	return kevent_ctl(fd, KEVENT_CTL_MODIFY, n, uk);
}

/**
 * kevent_remove() - remove kevents
 * @fd:		the queue
 * @uk:		@n entries, each naming a kevent by (type, id), for example
 *		prepared with kevent_prep_key(); an AIO request by (type, id,
 *		user_data), prepared with kevent_prep_aio_key()
 * @n:		the number of entries, at most %KEVENT_CTL_MAX_BATCH
 *
 * One kevent_ctl(%KEVENT_CTL_REMOVE) call. Per-entry results as for
 * kevent_add(); an entry naming no kevent fails with %ENOENT. Removing an
 * AIO request that has not completed cancels it: see kevent_aio_cancel().
 *
 * Return: the number of entries that took effect; -1 with errno set if the
 * call failed as a whole.
 */
static inline int kevent_remove(int fd, struct ukevent *uk, unsigned int n)
{
	return kevent_ctl(fd, KEVENT_CTL_REMOVE, n, uk);
}

/**
 * kevent_wait() - wait for events, with a timeout in milliseconds
 * @fd:		the queue
 * @buf:	receives the events
 * @min_nr:	wait until at least this many events are ready (at most
 *		@max_nr; 0 never sleeps)
 * @max_nr:	the size of @buf in entries, at least 1
 * @timeout_ms:	relative timeout in milliseconds; negative (-1) waits
 *		without a limit, 0 does not sleep
 *
 * One kevent_get_events() call. A signal ends the wait with %EINTR; it is
 * not restarted.
 *
 * Return: the number of events copied to @buf (0 on timeout); -1 with errno
 * set on error.
 */
static inline int kevent_wait(int fd, struct ukevent *buf, unsigned int min_nr,
			      unsigned int max_nr, int timeout_ms)
{
	struct __kernel_timespec ts;

	if (timeout_ms < 0)
		return kevent_get_events(fd, min_nr, max_nr, NULL, buf, 0);
	ts.tv_sec = timeout_ms / 1000;
	ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
	return kevent_get_events(fd, min_nr, max_nr, &ts, buf, 0);
}

/**
 * kevent_monotonic_ns() - the current CLOCK_MONOTONIC time in nanoseconds
 *
 * The clock of kevent_prep_timer_abs() and of %KEVENT_WAIT_ABSTIME
 * deadlines. Normally served by the vDSO, without a system call.
 *
 * Return: the time in nanoseconds, or 0 if clock_gettime() failed.
 */
static inline __u64 kevent_monotonic_ns(void)
{
	struct timespec t;

	if (clock_gettime(CLOCK_MONOTONIC, &t))
		return 0;
	return (__u64)t.tv_sec * 1000000000ULL + (__u64)t.tv_nsec;
}

/**
 * kevent_prep_timer() - prepare a relative timer kevent
 * @uk:		the entry, zeroed first
 * @id:		the timer's id in its queue, any number
 * @first_ns:	first expiry, nanoseconds from now (at most 2^62 - 1)
 * @period_ns:	period in nanoseconds, 0 for a timer that fires once (at most
 *		2^62 - 1)
 * @user_data:	cookie returned with every event
 *
 * Each delivery reports %KEVENT_TIMER_FIRED with ret_data = the number of
 * expirations since the previous one.
 */
static inline void kevent_prep_timer(struct ukevent *uk, __u64 id,
				     __u64 first_ns, __u64 period_ns,
				     __u64 user_data)
{
	memset(uk, 0, sizeof(*uk));
	uk->user_data = user_data;
	uk->id = id;
	uk->type = KEVENT_TYPE_TIMER;
	uk->event = KEVENT_TIMER_FIRED;
	uk->arg[0] = first_ns;
	uk->arg[1] = period_ns;
}

/**
 * kevent_prep_timer_abs() - prepare an absolute timer kevent
 * @uk:		the entry, zeroed first
 * @id:		the timer's id in its queue, any number
 * @deadline_ns: first expiry, an absolute CLOCK_MONOTONIC time in
 *		nanoseconds (see kevent_monotonic_ns()); a time already past
 *		fires at once
 * @period_ns:	period in nanoseconds, 0 for a timer that fires once
 * @user_data:	cookie returned with every event
 *
 * Like kevent_prep_timer(), with %KEVENT_REQ_ABSTIME set.
 */
static inline void kevent_prep_timer_abs(struct ukevent *uk, __u64 id,
					 __u64 deadline_ns, __u64 period_ns,
					 __u64 user_data)
{
	kevent_prep_timer(uk, id, deadline_ns, period_ns, user_data);
	uk->req_flags = KEVENT_REQ_ABSTIME;
}

/* Common part of the kevent_prep_*() helpers that watch a file descriptor. */
static inline void __kevent_prep_fd(struct ukevent *uk, __u32 type, int fd,
				    __u32 events, __u64 user_data)
{
	memset(uk, 0, sizeof(*uk));
	uk->user_data = user_data;
	uk->id = (__u64)(unsigned int)fd;
	uk->type = type;
	uk->event = events;
}

/**
 * kevent_prep_poll() - prepare a kevent on the ->poll readiness of a file
 * @uk:		the entry, zeroed first
 * @fd:		the file descriptor to watch (the registration follows it:
 *		closing @fd removes the kevent)
 * @events:	EPOLLIN, EPOLLOUT, ... bits (not EPOLLET or EPOLLONESHOT: use
 *		kevent_set_flags() with %KEVENT_REQ_ET or %KEVENT_REQ_ONESHOT)
 * @user_data:	cookie returned with every event
 */
static inline void kevent_prep_poll(struct ukevent *uk, int fd, __u32 events,
				    __u64 user_data)
{
	__kevent_prep_fd(uk, KEVENT_TYPE_POLL, fd, events, user_data);
}

/**
 * kevent_prep_socket() - prepare a socket kevent
 * @uk:		the entry, zeroed first
 * @fd:		the socket
 * @events:	%KEVENT_SOCKET_* bits
 * @user_data:	cookie returned with every event
 *
 * Registration is by socket descriptor (TCP, UDP, UNIX stream and
 * datagram) and follows the descriptor; %KEVENT_SOCKET_ERR reports the
 * socket error as -errno in ret_data.
 */
static inline void kevent_prep_socket(struct ukevent *uk, int fd,
				      __u32 events, __u64 user_data)
{
	__kevent_prep_fd(uk, KEVENT_TYPE_SOCKET, fd, events, user_data);
}

/**
 * kevent_prep_inode() - prepare an inode kevent
 * @uk:		the entry, zeroed first
 * @fd:		a file descriptor of the inode
 * @events:	%KEVENT_INODE_* bits
 * @user_data:	cookie returned with every event
 *
 * @fd may be O_PATH. The kevent does not pin the inode and outlives @fd;
 * events report the child's inode number in ret_data, and eviction or
 * unmount reports the kevent once as broken.
 */
static inline void kevent_prep_inode(struct ukevent *uk, int fd,
				     __u32 events, __u64 user_data)
{
	__kevent_prep_fd(uk, KEVENT_TYPE_INODE, fd, events, user_data);
}

/**
 * kevent_prep_key() - prepare an entry that names a kevent, for removal
 * @uk:		the entry, zeroed first
 * @type:	%KEVENT_TYPE_*
 * @id:		the kevent's id: the timer id or the file descriptor
 *
 * For kevent_remove(), which looks only at the type and id (and, for
 * %KEVENT_TYPE_AIO, at user_data: use kevent_prep_aio_key()).
 */
static inline void kevent_prep_key(struct ukevent *uk, __u32 type, __u64 id)
{
	memset(uk, 0, sizeof(*uk));
	uk->id = id;
	uk->type = type;
}

/**
 * kevent_set_flags() - add request flags to a prepared entry
 * @uk:		the entry
 * @req_flags:	%KEVENT_REQ_ONESHOT, %KEVENT_REQ_ET, %KEVENT_REQ_WAKEUP_ALL
 *
 * ORs @req_flags into the entry's flags, so that %KEVENT_REQ_ABSTIME set by
 * kevent_prep_timer_abs() and %KEVENT_REQ_AIO_WAITALL set by
 * kevent_prep_aio_recv() stay.
 */
static inline void kevent_set_flags(struct ukevent *uk, __u32 req_flags)
{
	uk->req_flags |= req_flags;
}

/**
 * kevent_result() - the result of one entry of a kevent_ctl() batch
 * @uk:		the entry, after kevent_add(), kevent_modify() or
 *		kevent_remove()
 *
 * Return: 0 if the entry took effect (%KEVENT_RET_DONE), -errno if it failed
 * (%KEVENT_RET_BROKEN), -%EINVAL if it carries neither flag (it was not
 * processed, or the call failed as a whole and the flags were clear on
 * input) or a broken entry holds no valid -errno. On a delivered event,
 * -errno if its source is gone, else 0.
 */
static inline int kevent_result(const struct ukevent *uk)
{
	if (uk->ret_flags & KEVENT_RET_BROKEN)
		return uk->ret_data < 0 && uk->ret_data >= -4095 ?
		       (int)uk->ret_data : -EINVAL;
	if (uk->ret_flags & KEVENT_RET_DONE)
		return 0;
	return -EINVAL;
}

/*
 * Network AIO (%KEVENT_TYPE_AIO). A request is a kevent named by (type,
 * socket descriptor, user_data), so a socket may have many in flight; it is
 * always oneshot and completes with exactly one event: %KEVENT_RET_DONE with
 * the op bit in event and the byte count in ret_data, or %KEVENT_RET_BROKEN
 * with -errno (-%ECANCELED if it was removed or its socket descriptor
 * closed before it completed). Requests on one socket run in submission
 * order, per direction. Closing the queue (its last descriptor) frees the
 * requests in flight without reporting them.
 *
 * The buffer of a send or receive is pinned at submission and used by the
 * kernel until the request ends: until its event has been collected, or a
 * kevent_remove() (kevent_aio_cancel()) or close() of the socket descriptor
 * that cancelled it returned, or the queue was released. Meanwhile the
 * buffer of a receive must not be read or written, nor that of a send
 * written, and neither may be freed for reuse. A bad address is not
 * refused by kevent_ctl(): the request completes at once, broken with
 * -%EFAULT. See Documentation/kevent.rst, "Network AIO".
 */

/* Largest length or count of one AIO request (the kernel's MAX_RW_COUNT). */
#ifndef KEVENT_AIO_LEN_MAX
#define KEVENT_AIO_LEN_MAX	0x7ffff000UL
#endif

/**
 * kevent_prep_aio_send() - prepare a network AIO send
 * @uk:		the entry, zeroed first
 * @sockfd:	the socket (a connected stream socket), below 2^31
 * @buf:	the data, @len bytes, not to be written until the request
 *		ended
 * @len:	1 to %KEVENT_AIO_LEN_MAX bytes (anything else is %EINVAL)
 * @user_data:	names the request among those on @sockfd in this queue
 *		(a duplicate is %EEXIST) and is returned with its event
 *
 * Completes once all @len bytes are sent (ret_data = @len), or fails with
 * -errno (-%EPIPE, -%ECONNRESET, -%EFAULT, ...).
 */
static inline void kevent_prep_aio_send(struct ukevent *uk, int sockfd,
					const void *buf, size_t len,
					__u64 user_data)
{
	__kevent_prep_fd(uk, KEVENT_TYPE_AIO, sockfd, KEVENT_AIO_SEND,
			 user_data);
	uk->arg[0] = (__u64)(unsigned long)buf;
	uk->arg[1] = (__u64)len;
}

/**
 * kevent_prep_aio_recv() - prepare a network AIO receive
 * @uk:		the entry, zeroed first
 * @sockfd:	the socket, below 2^31
 * @buf:	receives the data, @len bytes; not to be touched until the
 *		request ended
 * @len:	1 to %KEVENT_AIO_LEN_MAX bytes (anything else is %EINVAL)
 * @flags:	0, or %KEVENT_REQ_AIO_WAITALL to complete only when @len bytes
 *		arrived (or at end of file, or on error); receives only
 * @user_data:	names the request among those on @sockfd in this queue
 *		(a duplicate is %EEXIST) and is returned with its event
 *
 * Completes with ret_data = the bytes received: more than 0 as soon as data
 * arrived (at most 128 KiB on a stream socket; all @len with
 * %KEVENT_REQ_AIO_WAITALL, unless end of file came first), 0 at end of
 * file; or fails with -errno.
 */
static inline void kevent_prep_aio_recv(struct ukevent *uk, int sockfd,
					void *buf, size_t len,
					unsigned int flags, __u64 user_data)
{
	__kevent_prep_fd(uk, KEVENT_TYPE_AIO, sockfd, KEVENT_AIO_RECV,
			 user_data);
	uk->req_flags = flags;
	uk->arg[0] = (__u64)(unsigned long)buf;
	uk->arg[1] = (__u64)len;
}

/**
 * kevent_prep_aio_sendfile() - prepare a network AIO sendfile
 * @uk:		the entry, zeroed first
 * @sockfd:	the socket, below 2^31
 * @filefd:	the source, a regular file open for reading (else %EINVAL,
 *		or %EBADF if not open for reading)
 * @offset:	where to start in @filefd (negative, or a range past 2^63 - 1,
 *		is %EINVAL); the file position is neither used nor changed
 * @count:	1 to %KEVENT_AIO_LEN_MAX bytes (anything else is %EINVAL)
 * @user_data:	names the request among those on @sockfd in this queue
 *		(a duplicate is %EEXIST) and is returned with its event
 *
 * Completes with ret_data = the bytes sent: @count, fewer if the file ends
 * first, 0 if @offset is at or past its end; or fails with -errno. No user
 * memory is involved.
 */
static inline void kevent_prep_aio_sendfile(struct ukevent *uk, int sockfd,
					    int filefd, off_t offset,
					    size_t count, __u64 user_data)
{
	__kevent_prep_fd(uk, KEVENT_TYPE_AIO, sockfd, KEVENT_AIO_SENDFILE,
			 user_data);
	uk->arg[0] = (__u64)offset;
	uk->arg[1] = (__u64)count;
	uk->arg_fd = (__u32)filefd;
}

/**
 * kevent_prep_aio_key() - prepare an entry that names an AIO request
 * @uk:		the entry, zeroed first
 * @sockfd:	the request's socket descriptor
 * @user_data:	the request's user_data
 *
 * For kevent_remove(): an AIO request is named by (type, id, user_data).
 */
static inline void kevent_prep_aio_key(struct ukevent *uk, int sockfd,
				       __u64 user_data)
{
	kevent_prep_key(uk, KEVENT_TYPE_AIO, (__u64)(unsigned int)sockfd);
	uk->user_data = user_data;
}

/**
 * kevent_aio_result() - the result of a delivered AIO event
 * @ev:		an event of a %KEVENT_TYPE_AIO request
 *
 * Return: the byte count of a completed request (%KEVENT_RET_DONE, 0 or
 * more), or -errno if it failed or was cancelled (%KEVENT_RET_BROKEN;
 * -%EINVAL if the event carries neither flag or no valid -errno).
 */
static inline __s64 kevent_aio_result(const struct ukevent *ev)
{
	if (ev->ret_flags & KEVENT_RET_BROKEN)
		return kevent_result(ev);
	if ((ev->ret_flags & KEVENT_RET_DONE) && ev->ret_data >= 0)
		return ev->ret_data;
	return -EINVAL;
}

/*
 * One kevent_ctl() call on one entry: 0 if it took effect, else -1 with
 * errno set to the call's error or the entry's own.
 */
static inline int __kevent_ctl_one(int fd, unsigned int cmd,
				   struct ukevent *uk)
{
	int ret = kevent_ctl(fd, cmd, 1, uk);

	if (ret < 0)
		return -1;
	if (ret == 1)
		return 0;
	errno = -kevent_result(uk);
	return -1;
}

/**
 * aio_send() - submit one network AIO send
 * @kfd:	the queue
 * @sockfd:	the socket
 * @buf:	the data, @len bytes
 * @len:	1 to %KEVENT_AIO_LEN_MAX bytes
 * @user_data:	names the request (unique per socket and queue)
 *
 * One kevent_ctl(%KEVENT_CTL_ADD) call, as kevent_prep_aio_send() and
 * kevent_add() would make it. @buf must not be written or freed until the
 * request ended (see above).
 *
 * Return: 0 if the request was submitted (its result comes as an event);
 * -1 with errno set to the call's error or the entry's own (%EINVAL,
 * %EBADF, %ENOTSOCK, %EEXIST, ...) if it was not.
 */
static inline int aio_send(int kfd, int sockfd, const void *buf, size_t len,
			   __u64 user_data)
{
	struct ukevent uk;

	kevent_prep_aio_send(&uk, sockfd, buf, len, user_data);
	return __kevent_ctl_one(kfd, KEVENT_CTL_ADD, &uk);
}

/**
 * aio_recv() - submit one network AIO receive
 * @kfd:	the queue
 * @sockfd:	the socket
 * @buf:	receives the data, @len bytes
 * @len:	1 to %KEVENT_AIO_LEN_MAX bytes
 * @flags:	0 or %KEVENT_REQ_AIO_WAITALL
 * @user_data:	names the request (unique per socket and queue)
 *
 * One kevent_ctl(%KEVENT_CTL_ADD) call, as kevent_prep_aio_recv() and
 * kevent_add() would make it. @buf must not be touched or freed until the
 * request ended (see above).
 *
 * Return: as for aio_send().
 */
static inline int aio_recv(int kfd, int sockfd, void *buf, size_t len,
			   unsigned int flags, __u64 user_data)
{
	struct ukevent uk;

	kevent_prep_aio_recv(&uk, sockfd, buf, len, flags, user_data);
	return __kevent_ctl_one(kfd, KEVENT_CTL_ADD, &uk);
}

/**
 * aio_sendfile() - submit one network AIO sendfile
 * @kfd:	the queue
 * @sockfd:	the socket
 * @filefd:	the source, a regular file
 * @offset:	where to start in @filefd, not negative
 * @count:	1 to %KEVENT_AIO_LEN_MAX bytes
 * @user_data:	names the request (unique per socket and queue)
 *
 * One kevent_ctl(%KEVENT_CTL_ADD) call.
 *
 * Return: as for aio_send().
 */
static inline int aio_sendfile(int kfd, int sockfd, int filefd, off_t offset,
			       size_t count, __u64 user_data)
{
	struct ukevent uk;

	kevent_prep_aio_sendfile(&uk, sockfd, filefd, offset, count,
				 user_data);
	return __kevent_ctl_one(kfd, KEVENT_CTL_ADD, &uk);
}

/**
 * kevent_aio_cancel() - cancel one network AIO request
 * @kfd:	the queue
 * @sockfd:	the request's socket descriptor
 * @user_data:	the request's user_data
 *
 * One kevent_ctl(%KEVENT_CTL_REMOVE) call. A request that has not
 * completed is cancelled: its event is delivered once, broken with
 * -%ECANCELED. A request that completed before keeps its completion. Either
 * way, once this returns 0 the kernel no longer uses the request's buffer.
 * (Not aio_cancel(): POSIX <aio.h> has that name.)
 *
 * Return: 0 if the entry took effect; -1 with errno set otherwise (%ENOENT:
 * no such request: its event was collected, or it was cancelled already).
 */
static inline int kevent_aio_cancel(int kfd, int sockfd, __u64 user_data)
{
	struct ukevent uk;

	kevent_prep_aio_key(&uk, sockfd, user_data);
	return __kevent_ctl_one(kfd, KEVENT_CTL_REMOVE, &uk);
}

/*
 * The ready ring (%KEVENT_RING), for a <linux/kevent.h> that has it. See the
 * comment above struct kevent_ring there for the protocol kevent_ring_pop()
 * implements.
 */
#ifdef KEVENT_RING

/**
 * kevent_ring_len() - the length to map of the ring of a queue
 * @entries:	the ring's slots, as given to kevent_queue_ring()
 *
 * %KEVENT_RING_SIZE(@entries) rounded up to the page size: the most that
 * mmap() of the queue accepts.
 *
 * Return: the length in bytes (%KEVENT_RING_SIZE(@entries) itself if the
 * page size is unknown: mmap() rounds it up the same way).
 */
static inline size_t kevent_ring_len(unsigned int entries)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t len = (size_t)KEVENT_RING_SIZE(entries);

	if (pg <= 0)
		return len;
	return (len + (size_t)pg - 1) / (size_t)pg * (size_t)pg;
}

/**
 * kevent_queue_ring() - make a kevent queue with a ready ring, and map it
 * @flags:	%KEVENT_CLOEXEC and/or %KEVENT_NONBLOCK, or 0 (%KEVENT_RING is
 *		added)
 * @entries:	the ring's slots: a power of two, 2 to
 *		%KEVENT_RING_MAX_ENTRIES (anything else is %EINVAL)
 * @ring:	receives the ring, mapped readable and writable and shared
 * @len:	receives the length of the mapping, for kevent_ring_unmap()
 *
 * kevent_ctl(%KEVENT_CTL_INIT) with a struct kevent_ring_params, then mmap()
 * of the whole ring (kevent_ring_len()). The mapping stays valid after the
 * queue is closed, until kevent_ring_unmap(); *@ring and *@len are set only
 * on success.
 *
 * Return: the new queue's file descriptor; -1 with errno set on error (the
 * queue is closed again if the mapping failed).
 */
static inline int kevent_queue_ring(unsigned int flags, unsigned int entries,
				    struct kevent_ring **ring, size_t *len)
{
	struct kevent_ring_params params;
	size_t size;
	void *p;
	int fd, err;

	memset(&params, 0, sizeof(params));
	params.entries = entries;
	fd = kevent_ctl(-1, KEVENT_CTL_INIT, flags | KEVENT_RING,
			(struct ukevent *)(void *)&params);
	if (fd < 0)
		return -1;
	size = kevent_ring_len(entries);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	*ring = (struct kevent_ring *)p;
	*len = size;
	return fd;
}

/**
 * kevent_ring_pop() - take one event from a ready ring
 * @ring:	the ring, mapped by kevent_queue_ring()
 * @ev:		receives the event
 *
 * Any number of threads may take events from one ring at once: each event
 * is taken by exactly one of them. Makes no system call and never waits:
 * kevent_get_events() (or poll() of the queue) waits for the ring not to
 * be empty. Events are taken in the order the kernel wrote them.
 *
 * Return: 1 with the event in *@ev (its seq is its position + 1, ret_flags
 * %KEVENT_RET_DONE), or 0 if the ring is empty.
 */
static inline int kevent_ring_pop(struct kevent_ring *ring,
				  struct kevent_ring_event *ev)
{
	__u64 mask = (__u64)__atomic_load_n(&ring->entries, __ATOMIC_RELAXED) - 1;
	__u64 pos = __atomic_load_n(&ring->head, __ATOMIC_RELAXED);
	struct kevent_ring_event *slot;
	__u64 seq;

	for (;;) {
		slot = &ring->events[pos & mask];
		/* Pairs with the kernel's release store of seq = pos + 1. */
		seq = __atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE);
		if (seq == pos + 1) {
			/* On failure, pos receives the current head. */
			if (__atomic_compare_exchange_n(&ring->head, &pos, pos + 1,
							0, __ATOMIC_RELAXED,
							__ATOMIC_RELAXED)) {
				*ev = *slot;
				/* The copy is done before the kernel may reuse the slot. */
				__atomic_store_n(&slot->seq, pos + mask + 1,
						 __ATOMIC_RELEASE);
				return 1;
			}
			continue;
		}
		/* Not written yet for this lap: empty. */
		if ((__s64)(seq - (pos + 1)) < 0)
			return 0;
		/* Taken by another thread: look at the head again. */
		pos = __atomic_load_n(&ring->head, __ATOMIC_RELAXED);
	}
}

/**
 * kevent_ring_unmap() - unmap a ring mapped by kevent_queue_ring()
 * @ring:	the ring
 * @len:	the length kevent_queue_ring() returned in its @len
 *
 * The queue may have been closed before or not; an event left in the ring
 * is lost.
 */
static inline void kevent_ring_unmap(struct kevent_ring *ring, size_t len)
{
	munmap(ring, len);
}

/**
 * kevent_ring_to_ukevent() - a ring event as kevent_get_events() reports it
 * @rev:	an event taken by kevent_ring_pop()
 * @uk:		receives it, zeroed first
 *
 * So that the events of the ring and those of kevent_get_events() go to one
 * handler: every field that a ring event has is copied (arg and arg_fd
 * stay zero).
 */
static inline void kevent_ring_to_ukevent(const struct kevent_ring_event *rev,
					  struct ukevent *uk)
{
	memset(uk, 0, sizeof(*uk));
	uk->user_data = rev->user_data;
	uk->id = rev->id;
	uk->type = rev->type;
	uk->event = rev->event;
	uk->req_flags = rev->req_flags;
	uk->ret_flags = rev->ret_flags;
	uk->ret_data = rev->ret_data;
}

#endif /* KEVENT_RING */

#ifdef __cplusplus
}
#endif

#endif /* _LIBKEVENT_H */
