/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kevent system call wrappers of the selftests, on top of libkevent.h
 * (tools/lib/kevent). Included by path so that the build needs no extra -I:
 * dev/kevent and "make -C tools/testing/selftests/kevent CFLAGS=..." replace
 * the Makefile's CFLAGS.
 */
#ifndef KEVENT_SELFTEST_SYS_H
#define KEVENT_SELFTEST_SYS_H

#include "../../../lib/kevent/libkevent.h"

static inline int sys_kevent_ctl(int fd, unsigned int cmd, unsigned int num,
				 struct ukevent *buf)
{
	return kevent_ctl(fd, cmd, num, buf);
}

static inline int sys_kevent_get_events(int fd, unsigned int min_nr, unsigned int max_nr,
					const struct __kernel_timespec *timeout,
					struct ukevent *buf, unsigned int flags)
{
	return kevent_get_events(fd, min_nr, max_nr, timeout, buf, flags);
}

static inline int kevent_init(unsigned int flags)
{
	return kevent_queue(flags);
}

#endif /* KEVENT_SELFTEST_SYS_H */
