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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <libkevent.h>		/* tools/lib/kevent */

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1e3 + (t.tv_nsec - t0->tv_nsec) / 1e6;
}

int main(void)
{
	struct ukevent reg[2], ev[8];
	struct timespec t0;
	int kfd, p[2], done = 0, i, n;
	char buf[64];

	printf("kevent demo: a 100 ms periodic timer and a pipe in one queue\n");
	kfd = kevent_queue(KEVENT_CLOEXEC);
	if (kfd < 0 || pipe(p)) {
		perror("kevent_ctl(KEVENT_CTL_INIT) or pipe");
		return 1;
	}
	kevent_prep_timer(&reg[0], 1, 100000000, 100000000, 1);
	kevent_prep_poll(&reg[1], p[0], POLLIN | POLLHUP, 2);
	n = kevent_add(kfd, reg, 2);
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
		n = kevent_wait(kfd, ev, 1, 8, -1);
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
	kevent_prep_key(&reg[1], KEVENT_TYPE_POLL, p[0]);
	n = kevent_remove(kfd, &reg[1], 1);
	printf("  after close(pipe): REMOVE -> %d, ret_data %lld (%s)\n", n,
	       (long long)reg[1].ret_data, strerrorname_np(-kevent_result(&reg[1])));
	close(kfd);
	return 0;
}
