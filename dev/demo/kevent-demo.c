// SPDX-License-Identifier: GPL-2.0
/*
 * kevent demo: runs in the booted kevent kernel (dev/kevent run).
 * One queue, two sources: a periodic timer and a pipe a child writes to.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1e3 + (t.tv_nsec - t0->tv_nsec) / 1e6;
}

int main(void)
{
	struct ukevent reg[2] = {
		{ .user_data = 1, .id = 1, .type = KEVENT_TYPE_TIMER,
		  .event = KEVENT_TIMER_FIRED, .arg = { 100000000, 100000000 } },
		{ .user_data = 2, .type = KEVENT_TYPE_POLL, .event = POLLIN | POLLHUP },
	};
	struct ukevent ev[8];
	struct timespec t0;
	int kfd, p[2], done = 0, i, n;
	char buf[64];

	printf("kevent demo: a 100 ms periodic timer and a pipe in one queue\n");
	kfd = kevent_ctl(-1, KEVENT_CTL_INIT, KEVENT_CLOEXEC, NULL);
	if (kfd < 0 || pipe(p)) {
		perror("kevent_ctl(KEVENT_CTL_INIT) or pipe");
		return 1;
	}
	reg[1].id = p[0];
	n = kevent_ctl(kfd, KEVENT_CTL_ADD, 2, reg);
	printf("  kevent_ctl(ADD, 2 entries) -> %d (ret_flags %#x, %#x)\n", n,
	       reg[0].ret_flags, reg[1].ret_flags);
	if (n != 2)
		return 1;
	if (fork() == 0) {
		/* The writer: three messages, then it closes its end. */
		close(p[0]);
		for (i = 1; i <= 3; i++) {
			usleep(150000);
			n = snprintf(buf, sizeof(buf), "message %d", i);
			if (write(p[1], buf, n) != n)
				_exit(1);
		}
		_exit(0);
	}
	close(p[1]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!done) {
		n = kevent_get_events(kfd, 1, 8, NULL, ev, 0);
		if (n < 0) {
			perror("kevent_get_events");
			return 1;
		}
		for (i = 0; i < n; i++) {
			if (ev[i].type == KEVENT_TYPE_TIMER) {
				printf("  %7.1f ms  timer %llu fired (%lld expirations)\n",
				       ms_since(&t0), (unsigned long long)ev[i].id,
				       (long long)ev[i].ret_data);
			} else if (ev[i].event & POLLIN) {
				ssize_t r = read(p[0], buf, sizeof(buf) - 1);

				buf[r > 0 ? r : 0] = 0;
				printf("  %7.1f ms  pipe fd %llu readable: \"%s\"\n", ms_since(&t0),
				       (unsigned long long)ev[i].id, buf);
				if (r == 0)
					done = 1;
			} else if (ev[i].event & POLLHUP) {
				printf("  %7.1f ms  pipe fd %llu: writer closed (POLLHUP)\n",
				       ms_since(&t0), (unsigned long long)ev[i].id);
				done = 1;
			}
		}
	}
	wait(NULL);
	/* The pipe's registration follows its descriptor. */
	close(p[0]);
	reg[1].ret_flags = 0;
	n = kevent_ctl(kfd, KEVENT_CTL_REMOVE, 1, &reg[1]);
	printf("  after close(pipe): REMOVE -> %d, ret_data %lld (%s)\n", n,
	       (long long)reg[1].ret_data, strerrorname_np(-reg[1].ret_data));
	close(kfd);
	return 0;
}
