/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kevent system call wrappers of the selftests, on top of libkevent.h
 * (tools/lib/kevent). Included by path so that the build needs no extra -I:
 * dev/kevent and "make -C tools/testing/selftests/kevent CFLAGS=..." replace
 * the Makefile's CFLAGS.
 */
#ifndef KEVENT_SELFTEST_SYS_H
#define KEVENT_SELFTEST_SYS_H

#include <errno.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
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

/* One-entry kevent_ctl(): 0, or -1 with errno set to the entry's error. */
static inline int ctl1(int kfd, unsigned int cmd, struct ukevent uk)
{
	int ret = sys_kevent_ctl(kfd, cmd, 1, &uk);

	if (ret == 0)
		errno = -uk.ret_data;
	return ret == 1 ? 0 : -1;
}

static inline int add1(int kfd, struct ukevent uk)
{
	return ctl1(kfd, KEVENT_CTL_ADD, uk);
}

/* A socket kevent on fd, with a cookie that names the fd. */
static inline struct ukevent sock_ev(int fd, __u32 events, __u32 flags)
{
	struct ukevent uk = {
		.user_data = 0x50c000 + fd,
		.id = fd,
		.type = KEVENT_TYPE_SOCKET,
		.event = events,
		.req_flags = flags,
	};
	return uk;
}

/* Events ready now, without waiting. */
static inline int poll_now(int kfd, struct ukevent *buf, unsigned int max)
{
	struct __kernel_timespec zero = { 0, 0 };

	return sys_kevent_get_events(kfd, 0, max, &zero, buf, 0);
}

/* A TCP socket listening on 127.0.0.1, port chosen by the kernel (in *port). */
static inline int tcp_listener(unsigned short *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 128) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

#endif /* KEVENT_SELFTEST_SYS_H */
