// SPDX-License-Identifier: GPL-2.0
/*
 * kevent demo: runs in the booted kevent kernel (dev/kevent run).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/kevent.h>
#include <linux/time_types.h>

#define __NR_kevent_ctl 473
#define __NR_kevent_get_events 474

static long kevent_ctl(int fd, unsigned int cmd, unsigned int num, struct ukevent *buf)
{
	return syscall(__NR_kevent_ctl, fd, cmd, num, buf);
}

static long kevent_get_events(int fd, unsigned int min_nr, unsigned int max_nr,
			      const struct __kernel_timespec *ts, struct ukevent *buf,
			      unsigned int flags)
{
	return syscall(__NR_kevent_get_events, fd, min_nr, max_nr, ts, buf, flags);
}

static void show(const char *what, long ret)
{
	if (ret < 0)
		printf("  %-52s -> -1 %s\n", what, strerrorname_np(errno));
	else
		printf("  %-52s -> %ld\n", what, ret);
}

int main(void)
{
	struct __kernel_timespec ts = { 0, 20 * 1000 * 1000 };
	struct ukevent uk[4];
	char link[64] = "", path[64];
	long fd;

	printf("kevent demo: the two syscalls answering in a booted kernel\n");
	fd = kevent_ctl(-1, KEVENT_CTL_INIT, KEVENT_CLOEXEC, NULL);
	show("kevent_ctl(-1, KEVENT_CTL_INIT, KEVENT_CLOEXEC, NULL)", fd);
	if (fd < 0)
		return 1;
	snprintf(path, sizeof(path), "/proc/self/fd/%ld", fd);
	if (readlink(path, link, sizeof(link) - 1) > 0)
		printf("  fd %ld is %s\n", fd, link);
	show("kevent_ctl(-1, KEVENT_CTL_INIT, 0x4, NULL)",
	     kevent_ctl(-1, KEVENT_CTL_INIT, 4, NULL));
	show("kevent_ctl(fd, 99, 0, NULL)", kevent_ctl(fd, 99, 0, NULL));
	show("kevent_ctl(fd, KEVENT_CTL_ADD, 100000, buf)",
	     kevent_ctl(fd, KEVENT_CTL_ADD, 100000, uk));
	show("kevent_ctl(0 /* stdin */, KEVENT_CTL_ADD, 1, buf)",
	     kevent_ctl(0, KEVENT_CTL_ADD, 1, uk));
	memset(uk, 0, sizeof(uk));
	uk[0].type = 0xff;
	show("kevent_ctl(fd, KEVENT_CTL_ADD, 1, {type=0xff})", kevent_ctl(fd, KEVENT_CTL_ADD, 1, uk));
	printf("  %-52s    ret_flags=%#x ret_data=%lld\n", "", uk[0].ret_flags,
	       (long long)uk[0].ret_data);
	show("kevent_get_events(fd, 1, 4, {0, 20ms}, buf, 0)",
	     kevent_get_events(fd, 1, 4, &ts, uk, 0));
	show("kevent_get_events(fd, 2, 1, NULL, buf, 0)",
	     kevent_get_events(fd, 2, 1, NULL, uk, 0));
	show("close(fd)", close(fd));
	return 0;
}
