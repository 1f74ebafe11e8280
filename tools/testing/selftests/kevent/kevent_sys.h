/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Raw kevent system call wrappers shared by the kevent selftests.
 */
#ifndef KEVENT_SELFTEST_SYS_H
#define KEVENT_SELFTEST_SYS_H

#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kevent.h>
#include <linux/time_types.h>

#ifndef __NR_kevent_ctl
#define __NR_kevent_ctl 473
#endif
#ifndef __NR_kevent_get_events
#define __NR_kevent_get_events 474
#endif

static inline int sys_kevent_ctl(int fd, unsigned int cmd, unsigned int num,
				 struct ukevent *buf)
{
	return syscall(__NR_kevent_ctl, fd, cmd, num, buf);
}

static inline int sys_kevent_get_events(int fd, unsigned int min_nr, unsigned int max_nr,
					const struct __kernel_timespec *timeout,
					struct ukevent *buf, unsigned int flags)
{
	return syscall(__NR_kevent_get_events, fd, min_nr, max_nr, timeout, buf, flags);
}

static inline int kevent_init(unsigned int flags)
{
	return sys_kevent_ctl(-1, KEVENT_CTL_INIT, flags, NULL);
}

#endif /* KEVENT_SELFTEST_SYS_H */
