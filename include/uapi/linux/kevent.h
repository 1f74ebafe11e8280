/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kevent: generic kernel event processing.
 *
 * One queue (a kevent file descriptor, made by KEVENT_CTL_INIT) holds
 * interests ("kevents") in events from many sources: timers, pollable
 * files, sockets, inodes (directory entries created and removed) and
 * network AIO requests (send, receive and sendfile on a socket, each
 * completed by one event). kevent_ctl() adds, modifies and removes kevents
 * in batches; kevent_get_events() collects ready ones.
 *
 * Every field is fixed width and the layout is the same for 32- and 64-bit
 * userspace. See Documentation/kevent.rst for the semantics of each field,
 * flag and error code.
 */
#ifndef _UAPI_LINUX_KEVENT_H
#define _UAPI_LINUX_KEVENT_H

#include <linux/types.h>

/* kevent_ctl() commands. */
#define KEVENT_CTL_INIT		1	/* fd = -1, num = KEVENT_* flags, buf = NULL or ring params */
#define KEVENT_CTL_ADD		2
#define KEVENT_CTL_REMOVE	3
#define KEVENT_CTL_MODIFY	4

/*
 * KEVENT_CTL_INIT flags (passed in num). Their own values, the same on every
 * architecture (O_CLOEXEC is not), so that this header needs no <fcntl.h>.
 */
#define KEVENT_CLOEXEC		0x1	/* close on exec */
#define KEVENT_NONBLOCK		0x2	/* kevent_get_events() never sleeps */
#define KEVENT_RING		0x4	/* a ready ring: buf is a struct kevent_ring_params */

/* Largest num accepted by one kevent_ctl() call; more is E2BIG. */
#define KEVENT_CTL_MAX_BATCH	1024

/* kevent_get_events() flags. */
#define KEVENT_WAIT_ABSTIME	0x1	/* timeout is a CLOCK_MONOTONIC deadline */

/* Event source types (ukevent.type). Zero is never valid. */
#define KEVENT_TYPE_TIMER	1
#define KEVENT_TYPE_POLL	2
#define KEVENT_TYPE_SOCKET	3
#define KEVENT_TYPE_INODE	4
#define KEVENT_TYPE_AIO		5

/* KEVENT_TYPE_TIMER events. */
#define KEVENT_TIMER_FIRED	0x1

/* KEVENT_TYPE_POLL events are the EPOLLIN/EPOLLOUT/... bits of <linux/eventpoll.h>. */

/* KEVENT_TYPE_SOCKET events. */
#define KEVENT_SOCKET_RECV	0x01	/* data or EOF readable */
#define KEVENT_SOCKET_SEND	0x02	/* write space */
#define KEVENT_SOCKET_ACCEPT	0x04	/* a connection is waiting */
#define KEVENT_SOCKET_CONNECT	0x08	/* an outgoing connect finished */
#define KEVENT_SOCKET_HUP	0x10	/* peer closed or shut down */
#define KEVENT_SOCKET_ERR	0x20	/* socket error, -errno in ret_data */

/* KEVENT_TYPE_INODE events; ret_data is the inode number of the entry. */
#define KEVENT_INODE_CREATE	0x1	/* an entry was created in the directory */
#define KEVENT_INODE_REMOVE	0x2	/* an entry was removed, or the inode itself */

/*
 * KEVENT_TYPE_AIO events: the operation of one request, exactly one bit.
 * id is the socket's file descriptor; a request is named by (type, id,
 * user_data), so that many can be in flight on one socket (a duplicate is
 * EEXIST; KEVENT_CTL_MODIFY is EINVAL). Requests on one socket run in
 * submission order in each direction (send and sendfile; receive). Every
 * request is oneshot: it completes with one event, KEVENT_RET_DONE with the
 * number of bytes transferred in ret_data, or KEVENT_RET_BROKEN with -errno.
 * KEVENT_CTL_REMOVE of a request not completed yet, or closing id, cancels
 * it: it is reported once, KEVENT_RET_BROKEN with -ECANCELED (bytes it moved
 * are not reported).
 *
 * SEND, RECV: arg[0] is the buffer's address, arg[1] its length
 *	(1..MAX_RW_COUNT), arg_fd 0. A request that cannot complete at
 *	submission has its buffer pinned then, counted against RLIMIT_MEMLOCK
 *	(without CAP_IPC_LOCK); a bad buffer completes the request at once with
 *	-EFAULT, one over that limit with -ENOMEM. SEND completes when
 *	every byte is queued; RECV when data arrived (ret_data > 0) or at end
 *	of file (0), and with KEVENT_REQ_AIO_WAITALL only when the buffer is
 *	full or at end of file.
 * SENDFILE: arg_fd is a regular file open for reading, arg[0] the offset
 *	to read from, arg[1] the count (1..MAX_RW_COUNT); ret_data is the count,
 *	or less if the file ended first (0 if arg[0] is at or past its end).
 *	Cached pages are sent without a copy, as by sendfile(2).
 * Consecutive SEND entries of one kevent_ctl() on one stream socket are
 * corked together (MSG_MORE), so that small sends leave in full segments;
 * the socket is pushed after the last of them, whatever its outcome.
 */
#define KEVENT_AIO_SEND		0x1	/* send a buffer */
#define KEVENT_AIO_RECV		0x2	/* receive into a buffer */
#define KEVENT_AIO_SENDFILE	0x4	/* send part of a file */

/* Request flags (ukevent.req_flags). */
#define KEVENT_REQ_ONESHOT	0x01	/* removed after its first delivery */
#define KEVENT_REQ_ET		0x02	/* edge triggered: once per new activity */
#define KEVENT_REQ_WAKEUP_ALL	0x04	/* wake every waiter, not just one */
#define KEVENT_REQ_ABSTIME	0x08	/* timer: arg[0] is a CLOCK_MONOTONIC deadline */
#define KEVENT_REQ_AIO_WAITALL	0x10	/* AIO RECV: fill the whole buffer (or EOF) */

/* Return flags (ukevent.ret_flags), written by the kernel. */
#define KEVENT_RET_DONE		0x01	/* ctl: entry took effect; event delivered */
#define KEVENT_RET_BROKEN	0x02	/* ctl entry failed, or source gone: -errno in ret_data */

/**
 * struct ukevent - one kevent, as registered and as delivered
 * @user_data:	opaque cookie, returned unchanged with every event
 * @id:		what to watch: an fd (poll, socket, inode, AIO) or a
 *		caller-chosen timer id; (type, id) names the kevent in its queue
 * @type:	KEVENT_TYPE_*
 * @event:	requested event mask; on delivery, the events that fired
 * @req_flags:	KEVENT_REQ_*
 * @ret_flags:	KEVENT_RET_*, written by the kernel
 * @ret_data:	result: a count (timer expirations, AIO bytes transferred),
 *		an inode number (inode) or a -errno
 * @arg:	per-type arguments (timer: arg[0] expiry in ns, relative or
 *		absolute, arg[1] period in ns or 0; AIO: buffer address and
 *		length, or file offset and count for sendfile); zero otherwise
 * @arg_fd:	AIO sendfile: the source file descriptor; zero otherwise
 * @reserved:	must be zero
 */
struct ukevent {
	__u64	user_data;
	__u64	id;
	__u32	type;
	__u32	event;
	__u32	req_flags;
	__u32	ret_flags;
	__s64	ret_data;
	__u64	arg[2];
	__u32	arg_fd;
	__u32	reserved;
};

/*
 * The ready ring (KEVENT_CTL_INIT with KEVENT_RING).
 *
 * A queue made with KEVENT_RING has a ring of ready events that the process
 * maps (mmap() of the queue's descriptor: offset 0, MAP_SHARED, readable and
 * writable, at most KEVENT_RING_SIZE(entries) rounded up to pages), so that
 * events are collected without a system call. The kernel writes an event
 * into the ring when its source notifies it, if the kevent needs nothing at
 * delivery: any kevent of a source without level state (timers that are not
 * periodic, inodes, AIO completions), and the edge-triggered or oneshot
 * kevents of a source that can tell what is ready where it notifies
 * (sockets; a notification that turns out to mean nothing is dropped); a
 * oneshot kevent leaves its queue once written (its key is free at the
 * next kevent_ctl() with entries, or kevent_get_events()). Everything
 * else, broken reports, and events that find the ring full (counted in
 * overflow) take the ready list: kevent_get_events() as without a ring. A
 * kevent on the ready list, or being delivered from it, is not also
 * written into the ring: its events merge there. Each notification written
 * into the ring is an event of its own (on the ready list, notifications
 * not yet delivered merge into one).
 *
 * kevent_get_events() counts the events in the ring towards min_nr: once
 * the ring and the ready list hold min_nr together, it returns what it
 * copied from the ready list (0 if nothing was there); poll() of the queue
 * says POLLIN while the ring holds an event. The queue lives until its last
 * descriptor is closed and its last mapping unmapped.
 *
 * Slots carry sequence numbers, so that any number of threads may consume
 * (each event is taken once). Position p (0, 1, 2, ...) is slot
 * p & (entries - 1). A slot is free for position p when its seq is p; the
 * kernel writes an event for position p into it, then stores seq = p + 1
 * (release). To take one event:
 *
 *	pos = load(&ring->head);
 *	for (;;) {
 *		ev = &ring->events[pos & (ring->entries - 1)];
 *		seq = load_acquire(&ev->seq);
 *		if (seq == pos + 1) {
 *			if (compare_exchange(&ring->head, &pos, pos + 1)) {
 *				copy *ev;
 *				store_release(&ev->seq, pos + ring->entries);
 *				return the copy;
 *			}		(pos now holds the current head)
 *		} else if ((__s64)(seq - (pos + 1)) < 0) {
 *			return empty;
 *		} else {
 *			pos = load(&ring->head);
 *		}
 *	}
 *
 * A slot taken but not yet released (seq not yet stored) is not free: an
 * event for it finds the ring full. A read-only mapping may watch the ring
 * but not take events.
 *
 * The kernel never trusts what the process writes there: a process that
 * breaks the protocol only loses or repeats its own events.
 */

/* Largest ring, in slots. */
#define KEVENT_RING_MAX_ENTRIES	65536

/**
 * struct kevent_ring_params - KEVENT_CTL_INIT's buf with KEVENT_RING
 * @entries:	number of slots: a power of two, 2..KEVENT_RING_MAX_ENTRIES
 * @flags:	must be zero
 * @reserved:	must be zero
 */
struct kevent_ring_params {
	__u32	entries;
	__u32	flags;
	__u64	reserved[3];
};

/**
 * struct kevent_ring_event - one slot of the ring
 * @seq:	the slot's sequence number (see above)
 * @user_data:	as in struct ukevent
 * @id:		as in struct ukevent
 * @type:	as in struct ukevent
 * @event:	the events that fired
 * @req_flags:	as in struct ukevent
 * @ret_flags:	KEVENT_RET_DONE (written when the ring is made)
 * @ret_data:	as in struct ukevent
 * @reserved:	zero
 */
struct kevent_ring_event {
	__u64	seq;
	__u64	user_data;
	__u64	id;
	__u32	type;
	__u32	event;
	__u32	req_flags;
	__u32	ret_flags;
	__s64	ret_data;
	__u64	reserved[2];
};

/**
 * struct kevent_ring - the mapped ring, at offset 0 of the queue's descriptor
 * @head:	the next position to take; advanced by the consumers only
 * @tail:	the next position the kernel writes (for information: a
 *		consumer goes by the slots' seq)
 * @overflow:	events that found the ring full and took the ready list
 * @entries:	number of slots, a power of two
 * @events:	the slots; slot i starts with seq = i
 *
 * @head and @tail are in separate cache lines.
 */
struct kevent_ring {
	__u64	head;
	__u64	__pad0[7];
	__u64	tail;
	__u64	overflow;
	__u32	entries;
	__u32	__pad1;
	__u64	__pad2[5];
	struct kevent_ring_event events[];
};

/* Bytes of the ring of a queue with @entries slots (mmap length, before rounding up). */
#define KEVENT_RING_SIZE(entries) \
	(sizeof(struct kevent_ring) + (__u64)(entries) * sizeof(struct kevent_ring_event))

#endif /* _UAPI_LINUX_KEVENT_H */
