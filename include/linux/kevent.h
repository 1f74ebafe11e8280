/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kevent: in-kernel interface.
 *
 * The kevent core is a Rust crate under kernel/kevent/. This header is the
 * C side of its interface: the syscall entry points the SYSCALL_DEFINE shims
 * call, the hooks the VFS calls, and the API of event sources that live
 * outside the core (struct kevent_source_ops; the storage their objects
 * embed is in <linux/kevent_storage.h>). See Documentation/kevent.rst.
 */
#ifndef _LINUX_KEVENT_H
#define _LINUX_KEVENT_H

#include <linux/jump_label_ratelimit.h>
#include <linux/kevent_storage.h>
#include <linux/types.h>
#include <linux/time_types.h>
#include <uapi/linux/kevent.h>

struct file;
struct files_struct;

/* Implemented in Rust (kernel/kevent/kevent.rs). */
long kevent_sys_ctl(int fd, unsigned int cmd, unsigned int num,
		    void __user *buf);
long kevent_sys_get_events(int fd, unsigned int min_nr, unsigned int max_nr,
			   const struct __kernel_timespec __user *timeout,
			   void __user *buf, unsigned int flags);

#ifdef CONFIG_KEVENT
/* Per-user limit on registered kevents (kernel/kevent/sysctl.c). */
extern long kevent_max_user_kevents;

/*
 * Registrations follow the descriptor: when a process closes an fd (close,
 * dup2 over it, close-on-exec, exit), kevents it registered by that fd go.
 * filp_flush() calls kevent_flush(); it costs one patched-out branch while no
 * kevent is registered by fd anywhere.
 */
extern struct static_key_false_deferred kevent_fd_key;

/* Implemented in Rust (kernel/kevent/fdtrack.rs). */
void kevent_file_flush(struct file *file, void *owner);
/* Implemented in C (kernel/kevent/files.c). */
bool kevent_fd_maps_to(struct files_struct *files, unsigned int fd,
		       struct file *file);
void *kevent_current_files(void);
bool kevent_file_is_epoll(struct file *file);
void kevent_fd_track_get(void);
void kevent_fd_track_put(void);

static inline void kevent_flush(struct file *file, void *owner)
{
	if (static_branch_unlikely(&kevent_fd_key.key))
		kevent_file_flush(file, owner);
}

/**
 * struct kevent_source_ops - an event source outside the kevent core
 * @type: the KEVENT_TYPE_* it serves
 * @events: the event bits it accepts in ukevent.event
 * @flags: the request flags it accepts beyond the common ones
 *	(KEVENT_REQ_ONESHOT, KEVENT_REQ_ET, KEVENT_REQ_WAKEUP_ALL); any other
 *	bit in ukevent.req_flags is -EINVAL
 * @follows_fd: ukevent.id is a file descriptor and the registration follows
 *	it, as a poll kevent's does: closing that descriptor removes the
 *	kevent. The core looks the descriptor up (it must not be O_PATH).
 * @weak: the kevent must not keep the object alive: @put runs as soon as
 *	the kevent is on the object's storage, and the object's death reaches
 *	the kevent through kevent_storage_fini(). A weak source has no
 *	@recheck and does not follow the descriptor.
 * @takes_args: ukevent.arg and ukevent.arg_fd are the source's: @get sees
 *	them as given and checks them itself. Otherwise the core requires them
 *	to be zero.
 * @keyed_by_user_data: a kevent is named in its queue by (type, id,
 *	user_data), not (type, id), so that several kevents may share an id
 *	(several requests in flight on one descriptor); KEVENT_CTL_REMOVE names
 *	one by all three, and KEVENT_CTL_MODIFY, which would change the key,
 *	is -EINVAL.
 * @oneshot: every kevent of the source is removed after its first
 *	delivery, as if KEVENT_REQ_ONESHOT were set (the delivered req_flags
 *	are those of the request).
 * @cancel_errno: 0, or a positive errno: KEVENT_CTL_REMOVE and the close
 *	of the descriptor a kevent follows do not drop the kevent silently,
 *	but detach it (@put runs) and, unless a notification of the object is
 *	already pending for it, report it once as broken with -@cancel_errno
 *	and its requested events (a cancelled request); the kevent is
 *	removed once that event, or the pending one, is delivered. A
 *	notification that reached the kevent before the detach wins.
 *	Releasing the queue drops such kevents without a report. Only for a
 *	@oneshot source.
 * @get: look up the object @uk names (process context, may sleep). On
 *	success, store its storage in *@storage and an opaque reference in
 *	*@priv that keeps the object (and so the storage) alive until
 *	@put(*@priv), and return 0; otherwise a negative errno, reported in
 *	the entry's ret_data. @uk's event is within @events and its req_flags
 *	within the common flags and @flags; its arg and arg_fd are zero unless
 *	@takes_args.
 * @put: drop the reference @get returned (process context, may sleep).
 * @recheck: the level state, at registration and at each delivery (process
 *	context, may sleep): the events of @events that are ready now, and in
 *	*@data the result to report (it is 0 on entry). %NULL if the source
 *	has no level state: its events are then reported as they fired.
 * @notified: optional, only with @recheck: what a notification of @events
 *	(the mask given to kevent_storage_ready()) means is ready now, of
 *	@requested, and in *@data the result to report (0 on entry). Called
 *	where the object notifies its storage (any context, under the
 *	storage's lock; it must not sleep; the object is alive) for an
 *	edge-triggered or oneshot kevent of a queue with a ring, which is then
 *	written into the ring there; without it, such kevents take the ready
 *	list and @recheck at delivery. A source whose callbacks pass coarse
 *	masks narrows them here: from what the callback that notified means,
 *	or by reading the object's state as @recheck does.
 * @armed: optional: the kevent @priv was got for is registered (on the
 *	object's storage, and re-checked). Called once per registration, in
 *	process context, before the kevent_ctl() entry completes; from now on
 *	kevent_storage_ready() and kevent_storage_fini() on the object reach
 *	the kevent, while before they could be lost. An object that starts
 *	work of its own for the kevent (a request) starts it here, not in
 *	@get. @flags is 0 or KEVENT_ARMED_MORE (only for a source with
 *	@flush): the next entry of the same kevent_ctl() batch has the same
 *	type, id and event, so the object may hold back what this request
 *	would flush out (a socket corks a send with MSG_MORE).
 * @start: optional, only for a @oneshot source of requests: try to finish
 *	the request @priv names at once, right after @get and before the
 *	kevent is registered anywhere (process context, may sleep; @flags as
 *	for @armed). Return 1 with its result in *@result (a value >= 0, or
 *	-errno) if it is finished: the core reports it (KEVENT_RET_DONE with
 *	the value, or KEVENT_RET_BROKEN with the errno, and the request's
 *	events), calls @put and registers nothing: no storage, no
 *	registration by descriptor, no @recheck or @armed. Return 0 if it is
 *	not finished (it may have made progress, which the object keeps):
 *	registration goes on (the core then calls @get's lookup of the
 *	descriptor, if @follows_fd), and @armed continues the request. A
 *	registration that fails after a @start that returned 0 fails the
 *	request, reported in its event, not the kevent_ctl() entry: the
 *	request may have made progress.
 * @submit: optional, only with @start: try to finish the request @uk
 *	describes at once, before @get and without an object (process
 *	context, may sleep; @flags as for @armed; @uk checked as for @get).
 *	Return 1 with its result in *@result (a value >= 0, or -errno) if it
 *	is finished: the core reports it as for @start and calls nothing else
 *	for it. Return 0 if it is not, with the progress made in *@result (0
 *	or more, e.g. bytes moved; 0 if nothing was done, e.g. for an entry
 *	@get would refuse): the core then calls @get, and @start with
 *	KEVENT_START_SUBMITTED and that progress in *@result, which the object
 *	takes over (its @start then returns 0 without trying again). If @get
 *	or the kevent fails after progress was made, the request is reported
 *	broken, in its event if a kevent could be made, else in the entry.
 * @submit_run: optional, only with @submit: try the @n entries
 *	@uk[0..@n-1] of a run (consecutive kevent_ctl(KEVENT_CTL_ADD) entries
 *	with the same type, id and event; 2 <= @n <= KEVENT_RUN_MAX) as one
 *	operation on their object, moving what @submit would move for each
 *	one after the other (a socket sends or receives the run's buffers in
 *	one call). The core has checked every entry as for @get, and charged
 *	it, so that none can fail once the run moved data. Same context as
 *	@submit. Return k, the number of entries finished from the first on
 *	(0 to @n), with their results in @results[0..k-1] (values >= 0, or
 *	-errno), as @submit would return them. If k < @n, @results[k] > 0 is
 *	the progress of entry k, which did not finish (the core goes on as
 *	after @submit returned 0 with it), and 0 means entry k was not
 *	touched; entries after k are never touched. Untouched entries go
 *	through @submit, one by one, as any entry. A source that cannot run
 *	these entries together (or only some) returns 0 with @results[0] = 0.
 * @flush: optional: a run of consecutive kevent_ctl(KEVENT_CTL_ADD) entries
 *	with the same type, id and event, armed with KEVENT_ARMED_MORE (all
 *	but the last), ended with @uk: flush out what they held back (process
 *	context, may sleep). Called once per run, after the run's last entry,
 *	whether or not that entry or any other of the run was added, so that
 *	nothing held back waits for a request that never came. Its result is
 *	not reported; the object @uk names may be gone by then.
 *
 * Registered once, at boot, with kevent_register_source(); the table must
 * live forever. The core never names a source: it finds this table by
 * @type.
 */
struct kevent_source_ops {
	u32 type;
	u32 events;
	u32 flags;
	bool follows_fd;
	bool weak;
	bool takes_args;
	bool keyed_by_user_data;
	bool oneshot;
	int cancel_errno;
	int (*get)(const struct ukevent *uk, struct kevent_storage **storage,
		   void **priv);
	void (*put)(void *priv);
	u32 (*recheck)(void *priv, u32 events, s64 *data);
	u32 (*notified)(void *priv, u32 events, u32 requested, s64 *data);
	void (*armed)(void *priv, unsigned int flags);
	int (*start)(void *priv, unsigned int flags, s64 *result);
	int (*submit)(const struct ukevent *uk, unsigned int flags,
		      s64 *result);
	void (*flush)(const struct ukevent *uk);
	int (*submit_run)(const struct ukevent *uk, unsigned int n,
			  s64 *results);
};

/* The most entries of a run that one @submit_run takes. */
#define KEVENT_RUN_MAX		8

/* @armed (and @start, @submit) flags. */
#define KEVENT_ARMED_MORE	0x1	/* the next entry is for the same object */
/* @start flag: @submit ran, *result holds its progress */
#define KEVENT_START_SUBMITTED	0x2

/*
 * Implemented in Rust (kernel/kevent/extern_source.rs). 0, or -EINVAL (a
 * bad table: no @get or @put, a zero @type or @events, a @weak source with
 * @recheck or @follows_fd, a @cancel_errno out of 0..MAX_ERRNO or without
 * @oneshot, a @start without @oneshot, a @submit without @start, a
 * @submit_run without @submit, a @notified without @recheck), -EEXIST (the
 * type already has a source) or
 * -EBUSY (no free slot). Registrations are not serialised against each
 * other: make them from initcalls, of any level (the core needs no
 * initialisation for them). Rust sources use kernel::kevent
 * (rust/kernel/kevent.rs).
 */
int kevent_register_source(const struct kevent_source_ops *ops);

/* Implemented in Rust (kernel/kevent/extern_source.rs). */
void __kevent_storage_fail(struct kevent_storage *st, u32 events, int err);

/**
 * kevent_storage_fail - the object failed, and lives on
 * @st: its storage
 * @events: the KEVENT_* event bits that failed (a request's operation), or 0
 * @err: a negative errno
 *
 * Like kevent_storage_fini(), for an object that reports its own failure
 * while others may still hold it: every kevent registered is reported once
 * as broken with @err and with the bits of @events it requested, then
 * removed from its queue. Must not run concurrently with
 * kevent_storage_ready(), another kevent_storage_fail() or a registration
 * on the same object; after it, kevent_storage_ready() reports nothing.
 * Here rather than in <linux/kevent_storage.h>: only sources call it, not
 * the hooks in hot paths.
 */
static inline void kevent_storage_fail(struct kevent_storage *st, u32 events,
				       int err)
{
	if (kevent_storage_active(st))
		__kevent_storage_fail(st, events, err);
}
#else
static inline void kevent_flush(struct file *file, void *owner)
{
}
#endif

#endif /* _LINUX_KEVENT_H */
