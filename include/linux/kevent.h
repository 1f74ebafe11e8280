/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kevent: in-kernel interface.
 *
 * The kevent core is a Rust crate under kernel/kevent/. This header is the
 * C side of its interface: the syscall entry points the SYSCALL_DEFINE shims
 * call. See Documentation/kevent.rst.
 */
#ifndef _LINUX_KEVENT_H
#define _LINUX_KEVENT_H

#include <linux/types.h>
#include <linux/time_types.h>
#include <uapi/linux/kevent.h>

/* Implemented in Rust (kernel/kevent/kevent.rs). */
long kevent_sys_ctl(int fd, unsigned int cmd, unsigned int num,
		    void __user *buf);
long kevent_sys_get_events(int fd, unsigned int min_nr, unsigned int max_nr,
			   const struct __kernel_timespec __user *timeout,
			   void __user *buf, unsigned int flags);

#endif /* _LINUX_KEVENT_H */
