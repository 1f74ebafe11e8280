/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kevent: the storage an event source object embeds.
 *
 * An object that kevents can be registered on (a socket, an inode) embeds a
 * struct kevent_storage and makes three calls on it: kevent_storage_init()
 * when it is made, kevent_storage_ready() when it sees activity, and
 * kevent_storage_fini() when it dies. This header is small on purpose, so
 * that <net/sock.h> and <linux/fs.h> can include it; the rest of the
 * in-kernel interface is in <linux/kevent.h>. See Documentation/kevent.rst.
 */
#ifndef _LINUX_KEVENT_STORAGE_H
#define _LINUX_KEVENT_STORAGE_H

#include <linux/compiler.h>
#include <linux/types.h>

/**
 * struct kevent_storage - the kevents registered on one object
 * @list: %NULL until the first kevent is registered on the object; then
 *	owned by the kevent core (kernel/kevent/storage.rs) until
 *	kevent_storage_fini(). Never touched by the object otherwise.
 *
 * One pointer: an object nobody watches pays 8 bytes (on 64-bit) and one
 * predictable branch on each notification.
 */
struct kevent_storage {
	void *list;
};

#ifdef CONFIG_KEVENT
/* Implemented in Rust (kernel/kevent/extern_source.rs). */
void __kevent_storage_ready(struct kevent_storage *st, u32 events, s64 data);
void __kevent_storage_fini(struct kevent_storage *st, int err);

/* Whether any kevent was ever registered on the object. */
static inline bool kevent_storage_active(const struct kevent_storage *st)
{
	return unlikely(READ_ONCE(st->list) != NULL);
}

/**
 * kevent_storage_init - initialise the storage of a new object
 * @st: the storage
 */
static inline void kevent_storage_init(struct kevent_storage *st)
{
	st->list = NULL;
}

/**
 * kevent_storage_ready - the object saw activity
 * @st: its storage
 * @events: the KEVENT_* event bits that may be ready now (a source with a
 *	level re-check may pass a coarse mask: delivery narrows it)
 * @data: the result to report (an inode number, ...); it replaces the
 *	result of an earlier notification not delivered yet
 *
 * Any context, hard interrupts included; never sleeps. One predictable
 * branch while no kevent was ever registered on the object. A caller that
 * changes the object's state and then calls this must order the two with a
 * full barrier if a kevent's registration can race with it (registration
 * installs the list with a full barrier, then re-checks the state).
 */
static inline void kevent_storage_ready(struct kevent_storage *st, u32 events,
					s64 data)
{
	if (kevent_storage_active(st))
		__kevent_storage_ready(st, events, data);
}

/**
 * kevent_storage_fini - the object is going away
 * @st: its storage
 * @err: a negative errno: every kevent still registered is reported once
 *	as broken with it, then removed from its queue
 *
 * Must not run concurrently with kevent_storage_ready() or with a
 * registration on the same object: the object's lifetime rules guarantee
 * it (it is called when nothing can reach the object any more). May be
 * called from any context; never sleeps.
 */
static inline void kevent_storage_fini(struct kevent_storage *st, int err)
{
	if (kevent_storage_active(st))
		__kevent_storage_fini(st, err);
}
#else
static inline bool kevent_storage_active(const struct kevent_storage *st)
{
	return false;
}

static inline void kevent_storage_init(struct kevent_storage *st)
{
}

static inline void kevent_storage_ready(struct kevent_storage *st, u32 events,
					s64 data)
{
}

static inline void kevent_storage_fini(struct kevent_storage *st, int err)
{
}
#endif

#endif /* _LINUX_KEVENT_STORAGE_H */
