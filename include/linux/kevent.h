/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kevent: in-kernel interface.
 *
 * The kevent core is a Rust crate under kernel/kevent/. This header is the
 * C side of its interface: the syscall entry points the SYSCALL_DEFINE shims
 * call, and the hooks the VFS calls. See Documentation/kevent.rst.
 */
#ifndef _LINUX_KEVENT_H
#define _LINUX_KEVENT_H

#include <linux/jump_label_ratelimit.h>
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
#else
static inline void kevent_flush(struct file *file, void *owner)
{
}
#endif

#endif /* _LINUX_KEVENT_H */
