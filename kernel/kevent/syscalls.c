// SPDX-License-Identifier: GPL-2.0
/*
 * kevent syscall entry points: thin shims into the Rust core (kevent.rs).
 */
#include <linux/kevent.h>
#include <linux/syscalls.h>

SYSCALL_DEFINE4(kevent_ctl, int, fd, unsigned int, cmd, unsigned int, num,
		struct ukevent __user *, buf)
{
	return kevent_sys_ctl(fd, cmd, num, buf);
}

SYSCALL_DEFINE6(kevent_get_events, int, fd, unsigned int, min_nr,
		unsigned int, max_nr,
		const struct __kernel_timespec __user *, timeout,
		struct ukevent __user *, buf, unsigned int, flags)
{
	return kevent_sys_get_events(fd, min_nr, max_nr, timeout, buf, flags);
}
