// SPDX-License-Identifier: GPL-2.0
/*
 * kevent ABI tests: kevent_ctl() and kevent_get_events() from userspace.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/kevent.h>
#include <linux/time_types.h>

#include "../kselftest_harness.h"
#include "kevent_sys.h"

static int fd_flags(int fd)
{
	return fcntl(fd, F_GETFD);
}

TEST(abi_layout)
{
	struct ukevent uk;

	ASSERT_EQ(64, sizeof(uk));
	ASSERT_EQ(0, offsetof(struct ukevent, user_data));
	ASSERT_EQ(32, offsetof(struct ukevent, ret_data));
	ASSERT_EQ(60, offsetof(struct ukevent, reserved));
}

TEST(init_and_close)
{
	char path[64], link[64] = { 0 };
	int fd;

	fd = kevent_init(0);
	ASSERT_LE(0, fd) TH_LOG("KEVENT_CTL_INIT: %s", strerror(errno));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ASSERT_LT(0, readlink(path, link, sizeof(link) - 1));
	ASSERT_STREQ("anon_inode:[kevent]", link);
	ASSERT_EQ(0, fd_flags(fd) & FD_CLOEXEC);
	ASSERT_EQ(0, fcntl(fd, F_GETFL) & O_NONBLOCK);
	ASSERT_EQ(0, close(fd));
}

TEST(init_flags)
{
	int fd;

	fd = kevent_init(KEVENT_CLOEXEC | KEVENT_NONBLOCK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(FD_CLOEXEC, fd_flags(fd) & FD_CLOEXEC);
	ASSERT_EQ(O_NONBLOCK, fcntl(fd, F_GETFL) & O_NONBLOCK);
	close(fd);
}

TEST(init_bad_args)
{
	struct ukevent uk = { 0 };

	EXPECT_EQ(-1, kevent_init(0x8));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, sys_kevent_ctl(0, KEVENT_CTL_INIT, 0, NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, sys_kevent_ctl(-1, KEVENT_CTL_INIT, 0, &uk));
	EXPECT_EQ(EINVAL, errno);
}

TEST(ctl_bad_cmd)
{
	int fd = kevent_init(0);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, sys_kevent_ctl(fd, 0, 0, NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, sys_kevent_ctl(fd, 1000, 0, NULL));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
}

TEST(ctl_bad_fd)
{
	struct ukevent uk = { 0 };
	int pipefd[2];

	EXPECT_EQ(-1, sys_kevent_ctl(-1, KEVENT_CTL_ADD, 1, &uk));
	EXPECT_EQ(EBADF, errno);
	EXPECT_EQ(-1, sys_kevent_ctl(9999, KEVENT_CTL_ADD, 1, &uk));
	EXPECT_EQ(EBADF, errno);
	ASSERT_EQ(0, pipe(pipefd));
	/* Not a kevent queue. */
	EXPECT_EQ(-1, sys_kevent_ctl(pipefd[0], KEVENT_CTL_ADD, 1, &uk));
	EXPECT_EQ(EINVAL, errno);
	close(pipefd[0]);
	close(pipefd[1]);
}

TEST(ctl_batch_limits)
{
	struct ukevent uk = { 0 };
	int fd = kevent_init(0);

	ASSERT_LE(0, fd);
	EXPECT_EQ(0, sys_kevent_ctl(fd, KEVENT_CTL_ADD, 0, NULL));
	EXPECT_EQ(-1, sys_kevent_ctl(fd, KEVENT_CTL_ADD, KEVENT_CTL_MAX_BATCH + 1, &uk));
	EXPECT_EQ(E2BIG, errno);
	EXPECT_EQ(-1, sys_kevent_ctl(fd, KEVENT_CTL_ADD, 0xffffffffu, &uk));
	EXPECT_EQ(E2BIG, errno);
	/* num entries are read before any takes effect: a short buffer faults. */
	EXPECT_EQ(-1, sys_kevent_ctl(fd, KEVENT_CTL_ADD, 1, NULL));
	EXPECT_EQ(EFAULT, errno);
	close(fd);
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct ukevent timer_ev(__u64 id, __u64 first_ns, __u64 period_ns, __u32 flags)
{
	struct ukevent uk = {
		.user_data = 0xabc000 + id,
		.id = id,
		.type = KEVENT_TYPE_TIMER,
		.event = KEVENT_TIMER_FIRED,
		.req_flags = flags,
		.arg = { first_ns, period_ns },
	};
	return uk;
}

static struct ukevent poll_ev(int fd, __u32 events, __u32 flags)
{
	struct ukevent uk = {
		.user_data = 0xfd000 + fd,
		.id = fd,
		.type = KEVENT_TYPE_POLL,
		.event = events,
		.req_flags = flags,
	};
	return uk;
}

TEST(ctl_entry_results)
{
	struct ukevent uk[2];
	int fd = kevent_init(0);

	ASSERT_LE(0, fd);
	memset(uk, 0, sizeof(uk));
	uk[0].type = 0;			/* never a valid type */
	uk[1].type = 0xffff;		/* unknown type */
	uk[1].reserved = 1;		/* and a non-zero reserved field */
	EXPECT_EQ(0, sys_kevent_ctl(fd, KEVENT_CTL_ADD, 2, uk));
	EXPECT_EQ(KEVENT_RET_BROKEN, uk[0].ret_flags);
	EXPECT_EQ(-EINVAL, uk[0].ret_data);
	EXPECT_EQ(KEVENT_RET_BROKEN, uk[1].ret_flags);
	EXPECT_EQ(-EINVAL, uk[1].ret_data);
	close(fd);
}

TEST(get_events_bad_args)
{
	struct __kernel_timespec ts = { 0, 0 };
	struct ukevent uk;
	int fd = kevent_init(0);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, sys_kevent_get_events(-1, 0, 1, &ts, &uk, 0));
	EXPECT_EQ(EBADF, errno);
	EXPECT_EQ(-1, sys_kevent_get_events(0, 0, 1, &ts, &uk, 0));
	EXPECT_TRUE(errno == EINVAL || errno == EBADF);
	EXPECT_EQ(-1, sys_kevent_get_events(fd, 0, 0, &ts, &uk, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, sys_kevent_get_events(fd, 2, 1, &ts, &uk, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, sys_kevent_get_events(fd, 0, 1, &ts, &uk, 0x80));
	EXPECT_EQ(EINVAL, errno);
	ts.tv_nsec = 1000000000;
	EXPECT_EQ(-1, sys_kevent_get_events(fd, 1, 1, &ts, &uk, 0));
	EXPECT_EQ(EINVAL, errno);
	ts.tv_sec = -1;
	ts.tv_nsec = 0;
	EXPECT_EQ(-1, sys_kevent_get_events(fd, 1, 1, &ts, &uk, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, sys_kevent_get_events(fd, 1, 1, (void *)8, &uk, 0));
	EXPECT_EQ(EFAULT, errno);
	close(fd);
}

TEST(get_events_timeouts)
{
	struct __kernel_timespec ts = { 0, 0 };
	struct timespec t0, t1;
	struct ukevent uk;
	long elapsed_ms;
	int fd = kevent_init(0), nb = kevent_init(KEVENT_NONBLOCK);

	ASSERT_LE(0, fd);
	ASSERT_LE(0, nb);
	/* A zero timeout polls; a non-blocking queue never sleeps. */
	EXPECT_EQ(0, sys_kevent_get_events(fd, 1, 1, &ts, &uk, 0));
	EXPECT_EQ(0, sys_kevent_get_events(nb, 1, 1, NULL, &uk, 0));

	ts.tv_nsec = 50 * 1000 * 1000;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	EXPECT_EQ(0, sys_kevent_get_events(fd, 1, 1, &ts, &uk, 0));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	elapsed_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	EXPECT_LE(45, elapsed_ms);

	/* An absolute deadline in the past returns at once. */
	ts.tv_sec = 0;
	ts.tv_nsec = 1;
	EXPECT_EQ(0, sys_kevent_get_events(fd, 1, 1, &ts, &uk, KEVENT_WAIT_ABSTIME));
	close(fd);
	close(nb);
}

static void on_alarm(int sig)
{
}

TEST(get_events_eintr)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	struct ukevent uk;
	int fd = kevent_init(0);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	alarm(1);
	EXPECT_EQ(-1, sys_kevent_get_events(fd, 1, 1, NULL, &uk, 0));
	EXPECT_EQ(EINTR, errno);
	close(fd);
}

TEST(fdinfo)
{
	char path[64], buf[1024];
	int kfd = kevent_init(0), fd;
	ssize_t n;

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, add1(kfd, timer_ev(7, 1000000000000ULL, 0, KEVENT_REQ_ET)));
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", kfd);
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	n = read(fd, buf, sizeof(buf) - 1);
	ASSERT_LT(0, n);
	buf[n] = 0;
	EXPECT_NE(NULL, strstr(buf, "kevents:\t1\nready:\t0\n")) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "type: 1 id: 7 event: 0x1 flags: 0x2 data: 0xabc007\n"))
		TH_LOG("%s", buf);
	close(fd);
	close(kfd);
}

TEST(ctl_errors)
{
	struct ukevent uk[3];
	int kfd = kevent_init(0);

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, add1(kfd, timer_ev(1, 1000000000000ULL, 0, 0)));
	/* Duplicate (type, id). */
	EXPECT_EQ(-1, add1(kfd, timer_ev(1, 1000, 0, 0)));
	EXPECT_EQ(EEXIST, errno);
	/* Unknown event bit, unknown flag, zero mask, non-zero reserved, bad args. */
	uk[0] = timer_ev(2, 1000, 0, 0);
	uk[0].event = 0x2;
	EXPECT_EQ(-1, add1(kfd, uk[0]));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, add1(kfd, timer_ev(2, 1000, 0, 0x100)));
	EXPECT_EQ(EINVAL, errno);
	uk[0] = timer_ev(2, 1000, 0, 0);
	uk[0].event = 0;
	EXPECT_EQ(-1, add1(kfd, uk[0]));
	EXPECT_EQ(EINVAL, errno);
	uk[0] = timer_ev(2, 1000, 0, 0);
	uk[0].reserved = 1;
	EXPECT_EQ(-1, add1(kfd, uk[0]));
	EXPECT_EQ(EINVAL, errno);
	uk[0] = timer_ev(2, 1000, 0, 0);
	uk[0].arg_fd = 3;
	EXPECT_EQ(-1, add1(kfd, uk[0]));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, add1(kfd, timer_ev(2, ~0ULL, 0, 0)));
	EXPECT_EQ(EINVAL, errno);
	/* Remove or modify of an unknown kevent. */
	EXPECT_EQ(-1, ctl1(kfd, KEVENT_CTL_REMOVE, timer_ev(9, 0, 0, 0)));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, ctl1(kfd, KEVENT_CTL_MODIFY, timer_ev(9, 1000, 0, 0)));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(0, ctl1(kfd, KEVENT_CTL_REMOVE, timer_ev(1, 0, 0, 0)));
	EXPECT_EQ(-1, ctl1(kfd, KEVENT_CTL_REMOVE, timer_ev(1, 0, 0, 0)));
	EXPECT_EQ(ENOENT, errno);
	close(kfd);
}

TEST(ctl_batch_bad_entry_in_middle)
{
	struct ukevent uk[3];
	int kfd = kevent_init(0);

	ASSERT_LE(0, kfd);
	uk[0] = timer_ev(1, 1000000000000ULL, 0, 0);
	uk[1] = timer_ev(2, 1000000000000ULL, 0, 0);
	uk[1].type = 99;
	uk[2] = timer_ev(3, 1000000000000ULL, 0, 0);
	uk[0].ret_flags = uk[2].ret_flags = 0xff;	/* ignored on input */
	EXPECT_EQ(2, sys_kevent_ctl(kfd, KEVENT_CTL_ADD, 3, uk));
	EXPECT_EQ(KEVENT_RET_DONE, uk[0].ret_flags);
	EXPECT_EQ(0, uk[0].ret_data);
	EXPECT_EQ(KEVENT_RET_BROKEN, uk[1].ret_flags);
	EXPECT_EQ(-EINVAL, uk[1].ret_data);
	EXPECT_EQ(KEVENT_RET_DONE, uk[2].ret_flags);
	/* The two good ones are really there. */
	EXPECT_EQ(2, sys_kevent_ctl(kfd, KEVENT_CTL_REMOVE, 3, uk));
	EXPECT_EQ(-ENOENT, uk[1].ret_data);
	close(kfd);
}

TEST(timer_oneshot_relative)
{
	struct ukevent ev[4];
	long long t0 = now_ns(), dt;
	int kfd = kevent_init(0);

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, add1(kfd, timer_ev(7, 30000000, 0, 0)));
	EXPECT_EQ(0, poll_now(kfd, ev, 4));
	ASSERT_EQ(1, sys_kevent_get_events(kfd, 1, 4, NULL, ev, 0));
	dt = now_ns() - t0;
	EXPECT_LE(30000000, dt);
	EXPECT_EQ(7, ev[0].id);
	EXPECT_EQ(0xabc007, ev[0].user_data);
	EXPECT_EQ(KEVENT_TYPE_TIMER, ev[0].type);
	EXPECT_EQ(KEVENT_TIMER_FIRED, ev[0].event);
	EXPECT_EQ(KEVENT_RET_DONE, ev[0].ret_flags);
	EXPECT_EQ(1, ev[0].ret_data);
	/* It fired once: nothing more. */
	usleep(50000);
	EXPECT_EQ(0, poll_now(kfd, ev, 4));
	close(kfd);
}

TEST(timer_periodic_counts)
{
	struct ukevent ev[4];
	int kfd = kevent_init(0);

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, add1(kfd, timer_ev(1, 10000000, 10000000, 0)));
	usleep(205000);
	ASSERT_EQ(1, poll_now(kfd, ev, 4));
	/* About 20 expirations since registration, counted in one event. */
	EXPECT_LE(15, ev[0].ret_data);
	EXPECT_GE(22, ev[0].ret_data);
	TH_LOG("expirations in 205 ms at 10 ms: %lld", (long long)ev[0].ret_data);
	ASSERT_EQ(1, sys_kevent_get_events(kfd, 1, 4, NULL, ev, 0));
	EXPECT_LE(1, ev[0].ret_data);
	EXPECT_GE(3, ev[0].ret_data);
	close(kfd);
}

TEST(timer_tiny_period_counts_at_delivery)
{
	struct ukevent ev[1];
	long long t0 = now_ns(), t1, t2, t3;
	int kfd = kevent_init(0);

	ASSERT_LE(0, kfd);
	/* 1 us period: counted at delivery, not an interrupt per period. */
	ASSERT_EQ(0, add1(kfd, timer_ev(1, 1000, 1000, 0)));
	t1 = now_ns();
	usleep(100000);
	t2 = now_ns();
	ASSERT_EQ(1, poll_now(kfd, ev, 1));
	t3 = now_ns();
	TH_LOG("%lld expirations in %lld us", (long long)ev[0].ret_data, (t3 - t0) / 1000);
	/*
	 * Counted when delivered, between t2 and t3: every period from the
	 * first expiry (1 us after the add, which ended at t1) to t2 has passed,
	 * and none after t3. Bounds on measured times only, so that a loaded
	 * host that stalls the guest cannot fail the test.
	 */
	EXPECT_LE((t2 - t1) / 1000 - 1, ev[0].ret_data);
	EXPECT_GE((t3 - t0) / 1000 + 1, ev[0].ret_data);
	/* Re-armed: it fires again. */
	ASSERT_EQ(1, sys_kevent_get_events(kfd, 1, 1, NULL, ev, 0));
	EXPECT_LE(1, ev[0].ret_data);
	close(kfd);
}

TEST(timer_absolute)
{
	struct ukevent ev[1];
	long long deadline = now_ns() + 40000000;
	int kfd = kevent_init(0);

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, add1(kfd, timer_ev(1, deadline, 0, KEVENT_REQ_ABSTIME)));
	ASSERT_EQ(1, sys_kevent_get_events(kfd, 1, 1, NULL, ev, 0));
	EXPECT_LE(deadline, now_ns());
	/* An absolute time in the past fires in kevent_ctl(): ready at once. */
	ASSERT_EQ(0, add1(kfd, timer_ev(2, 1, 0, KEVENT_REQ_ABSTIME)));
	ASSERT_EQ(1, poll_now(kfd, ev, 1));
	EXPECT_EQ(2, ev[0].id);
	EXPECT_EQ(1, ev[0].ret_data);
	close(kfd);
}

TEST(timer_periodic_from_the_past)
{
	struct ukevent ev[1];
	long long start = now_ns() - 25000000, t;
	int kfd = kevent_init(0);

	ASSERT_LE(0, kfd);
	/* First expiry 25 ms ago, period 20 ms: it fired in kevent_ctl(). */
	ASSERT_EQ(0, add1(kfd, timer_ev(1, start, 20000000, KEVENT_REQ_ABSTIME)));
	ASSERT_EQ(1, poll_now(kfd, ev, 1));
	t = now_ns();
	/* Counted at delivery: the expiries at start and start + 20 ms, and more if stalled. */
	EXPECT_LE(2, ev[0].ret_data);
	EXPECT_GE((t - start) / 20000000 + 1, ev[0].ret_data);
	/* Re-armed on the period's grid (start + 40 ms or later), not from the delivery. */
	ASSERT_EQ(1, sys_kevent_get_events(kfd, 1, 1, NULL, ev, 0));
	EXPECT_LE(start + 40000000, now_ns());
	EXPECT_LE(1, ev[0].ret_data);
	close(kfd);
}

TEST(timer_modify_rearms)
{
	struct ukevent ev[1], uk;
	int kfd = kevent_init(0);

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, add1(kfd, timer_ev(1, 1000000000000ULL, 0, 0)));
	uk = timer_ev(1, 10000000, 0, 0);
	uk.user_data = 4242;
	ASSERT_EQ(0, ctl1(kfd, KEVENT_CTL_MODIFY, uk));
	ASSERT_EQ(1, sys_kevent_get_events(kfd, 1, 1, NULL, ev, 0));
	EXPECT_EQ(4242, ev[0].user_data);
	close(kfd);
}

TEST(timer_oneshot_flag_removes)
{
	struct ukevent ev[1];
	int kfd = kevent_init(0);

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, add1(kfd, timer_ev(1, 1000000, 1000000, KEVENT_REQ_ONESHOT)));
	ASSERT_EQ(1, sys_kevent_get_events(kfd, 1, 1, NULL, ev, 0));
	EXPECT_EQ(-1, ctl1(kfd, KEVENT_CTL_REMOVE, timer_ev(1, 0, 0, 0)));
	EXPECT_EQ(ENOENT, errno);
	usleep(20000);
	EXPECT_EQ(0, poll_now(kfd, ev, 1));
	close(kfd);
}

TEST(poll_pipe_level_triggered)
{
	struct ukevent ev[2];
	int p[2], kfd = kevent_init(0);
	char c;

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(0, add1(kfd, poll_ev(p[0], POLLIN, 0)));
	EXPECT_EQ(0, poll_now(kfd, ev, 2));
	ASSERT_EQ(1, write(p[1], "x", 1));
	ASSERT_EQ(1, poll_now(kfd, ev, 2));
	EXPECT_EQ(p[0], ev[0].id);
	EXPECT_EQ(POLLIN, ev[0].event);
	EXPECT_EQ(0xfd000 + p[0], ev[0].user_data);
	/* Still readable: reported again. */
	EXPECT_EQ(1, poll_now(kfd, ev, 2));
	ASSERT_EQ(1, read(p[0], &c, 1));
	/* Drained: not reported, even though it was queued. */
	EXPECT_EQ(0, poll_now(kfd, ev, 2));
	close(p[0]);
	close(p[1]);
	close(kfd);
}

TEST(poll_pipe_edge_triggered)
{
	struct ukevent ev[2];
	int p[2], kfd = kevent_init(0);

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(0, add1(kfd, poll_ev(p[0], POLLIN, KEVENT_REQ_ET)));
	ASSERT_EQ(1, write(p[1], "x", 1));
	EXPECT_EQ(1, poll_now(kfd, ev, 2));
	/* Still readable, but no new activity. */
	EXPECT_EQ(0, poll_now(kfd, ev, 2));
	ASSERT_EQ(1, write(p[1], "y", 1));
	EXPECT_EQ(1, poll_now(kfd, ev, 2));
	close(p[0]);
	close(p[1]);
	close(kfd);
}

TEST(poll_ready_at_registration_and_hup)
{
	struct ukevent ev[2];
	int p[2], kfd = kevent_init(0);

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(1, write(p[1], "x", 1));
	ASSERT_EQ(0, add1(kfd, poll_ev(p[0], POLLIN | POLLHUP, 0)));
	ASSERT_EQ(1, poll_now(kfd, ev, 2));
	EXPECT_EQ(POLLIN, ev[0].event);
	close(p[1]);
	ASSERT_EQ(1, poll_now(kfd, ev, 2));
	EXPECT_EQ(POLLIN | POLLHUP, ev[0].event);
	close(p[0]);
	close(kfd);
}

TEST(poll_eventfd_and_write_side)
{
	struct ukevent ev[4];
	uint64_t one = 1;
	int efd = eventfd(0, 0), p[2], kfd = kevent_init(0), n, i, seen = 0;

	ASSERT_LE(0, kfd);
	ASSERT_LE(0, efd);
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(0, add1(kfd, poll_ev(efd, POLLIN, 0)));
	ASSERT_EQ(0, add1(kfd, poll_ev(p[1], POLLOUT, 0)));
	n = poll_now(kfd, ev, 4);
	ASSERT_EQ(1, n);
	EXPECT_EQ(p[1], ev[0].id);
	ASSERT_EQ(8, write(efd, &one, 8));
	n = poll_now(kfd, ev, 4);
	ASSERT_EQ(2, n);
	for (i = 0; i < n; i++)
		seen |= ev[i].id == efd ? 1 : ev[i].id == p[1] ? 2 : 4;
	EXPECT_EQ(3, seen);
	close(efd);
	close(p[0]);
	close(p[1]);
	close(kfd);
}

TEST(poll_bad_targets)
{
	char path[] = "/tmp/kevent-regular-XXXXXX";
	int kfd = kevent_init(0), other = kevent_init(0), rfd;

	ASSERT_LE(0, kfd);
	EXPECT_EQ(-1, add1(kfd, poll_ev(9999, POLLIN, 0)));
	EXPECT_EQ(EBADF, errno);
	/* No ->poll. */
	rfd = mkstemp(path);
	ASSERT_LE(0, rfd);
	unlink(path);
	EXPECT_EQ(-1, add1(kfd, poll_ev(rfd, POLLIN, 0)));
	EXPECT_EQ(EPERM, errno);
	close(rfd);
	close(other);
	close(kfd);
}

TEST(get_events_efault_loses_nothing)
{
	struct ukevent ev[2];
	int kfd = kevent_init(0);

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, add1(kfd, timer_ev(1, 1000, 0, 0)));
	usleep(10000);
	EXPECT_EQ(-1, sys_kevent_get_events(kfd, 1, 2, NULL, (void *)16, 0));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(1, poll_now(kfd, ev, 2));
	EXPECT_EQ(1, ev[0].id);
	EXPECT_EQ(1, ev[0].ret_data);
	close(kfd);
}

TEST(queue_is_pollable)
{
	struct pollfd pfd;
	struct epoll_event ee = { .events = EPOLLIN };
	int kfd = kevent_init(0), epfd = epoll_create1(0);

	ASSERT_LE(0, kfd);
	ASSERT_LE(0, epfd);
	pfd.fd = kfd;
	pfd.events = POLLIN;
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	ASSERT_EQ(0, epoll_ctl(epfd, EPOLL_CTL_ADD, kfd, &ee));
	ASSERT_EQ(0, add1(kfd, timer_ev(1, 20000000, 0, 0)));
	ASSERT_EQ(1, epoll_wait(epfd, &ee, 1, 2000));
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLIN, pfd.revents);
	close(epfd);
	close(kfd);
}

struct waiter {
	int kfd;
	int got;
};

static void *wait_one(void *arg)
{
	struct waiter *w = arg;
	struct __kernel_timespec ts = { 0, 400000000 };
	struct ukevent ev;

	w->got = sys_kevent_get_events(w->kfd, 1, 1, &ts, &ev, 0);
	return NULL;
}

TEST(exclusive_wakeup)
{
	struct waiter w[4];
	pthread_t t[4];
	int kfd = kevent_init(0), i, total = 0, woken = 0;

	ASSERT_LE(0, kfd);
	for (i = 0; i < 4; i++) {
		w[i].kfd = kfd;
		ASSERT_EQ(0, pthread_create(&t[i], NULL, wait_one, &w[i]));
	}
	usleep(50000);
	/* One event, edge triggered: exactly one waiter gets it. */
	ASSERT_EQ(0, add1(kfd, timer_ev(1, 20000000, 0, KEVENT_REQ_ET)));
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		total += w[i].got;
		woken += w[i].got > 0;
	}
	EXPECT_EQ(1, total);
	EXPECT_EQ(1, woken);
	close(kfd);
}

struct min_waiter {
	int kfd;
	unsigned int min_nr;
	int got;
	long long ns;
};

static void *wait_min(void *arg)
{
	struct min_waiter *w = arg;
	struct __kernel_timespec ts = { 1, 0 };
	struct ukevent ev[2];
	long long t0 = now_ns();

	w->got = sys_kevent_get_events(w->kfd, w->min_nr, 2, &ts, ev, 0);
	w->ns = now_ns() - t0;
	return NULL;
}

static long ctxt_switches(pid_t tid)
{
	char path[64], line[128];
	long n = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

struct herd_waiter {
	int kfd;
	pid_t tid;
	int got;
};

static void *herd_wait(void *arg)
{
	struct herd_waiter *w = arg;
	struct __kernel_timespec ts = { 1, 500000000 };
	struct ukevent ev;

	w->tid = syscall(SYS_gettid);
	w->got = sys_kevent_get_events(w->kfd, 1, 1, &ts, &ev, 0);
	return NULL;
}

/* How many of three blocked waiters one ready kevent wakes. */
static int count_woken(struct __test_metadata *_metadata, __u32 flags)
{
	struct herd_waiter w[3];
	long before[3];
	pthread_t t[3];
	int kfd = kevent_init(0), i, woken = 0, got = 0;

	for (i = 0; i < 3; i++) {
		w[i].kfd = kfd;
		w[i].tid = 0;
		pthread_create(&t[i], NULL, herd_wait, &w[i]);
	}
	usleep(200000);
	for (i = 0; i < 3; i++)
		before[i] = ctxt_switches(w[i].tid);
	add1(kfd, timer_ev(1, 1000000, 0, KEVENT_REQ_ET | flags));
	usleep(300000);
	/* A waiter that was woken and went back to sleep has switched again. */
	for (i = 0; i < 3; i++)
		woken += w[i].got > 0 || ctxt_switches(w[i].tid) > before[i];
	for (i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		got += w[i].got;
	}
	EXPECT_EQ(1, got);
	close(kfd);
	return woken;
}

TEST(exclusive_vs_wakeup_all)
{
	EXPECT_EQ(1, count_woken(_metadata, 0));
	EXPECT_EQ(3, count_woken(_metadata, KEVENT_REQ_WAKEUP_ALL));
}

TEST(mixed_min_nr_waiters)
{
	struct min_waiter a = { .min_nr = 2 }, b = { .min_nr = 1 };
	pthread_t ta, tb;
	int kfd = kevent_init(0);

	ASSERT_LE(0, kfd);
	a.kfd = b.kfd = kfd;
	/* The waiter that needs two events must not swallow the wake-up for one. */
	ASSERT_EQ(0, pthread_create(&ta, NULL, wait_min, &a));
	usleep(50000);
	ASSERT_EQ(0, pthread_create(&tb, NULL, wait_min, &b));
	usleep(50000);
	ASSERT_EQ(0, add1(kfd, timer_ev(1, 20000000, 0, KEVENT_REQ_ET)));
	pthread_join(tb, NULL);
	pthread_join(ta, NULL);
	EXPECT_EQ(1, a.got + b.got);
	EXPECT_EQ(1, b.got);
	EXPECT_GT(500000000LL, b.ns);
	close(kfd);
}

TEST(many_registrations)
{
	static struct ukevent uk[KEVENT_CTL_MAX_BATCH];
	int kfd = kevent_init(0), b, i;

	ASSERT_LE(0, kfd);
	for (b = 0; b < 12; b++) {
		for (i = 0; i < KEVENT_CTL_MAX_BATCH; i++)
			uk[i] = timer_ev(b * KEVENT_CTL_MAX_BATCH + i, 1000000000000ULL, 0, 0);
		ASSERT_EQ(KEVENT_CTL_MAX_BATCH,
			  sys_kevent_ctl(kfd, KEVENT_CTL_ADD, KEVENT_CTL_MAX_BATCH, uk));
	}
	for (b = 0; b < 12; b += 2) {
		for (i = 0; i < KEVENT_CTL_MAX_BATCH; i++)
			uk[i] = timer_ev(b * KEVENT_CTL_MAX_BATCH + i, 0, 0, 0);
		ASSERT_EQ(KEVENT_CTL_MAX_BATCH,
			  sys_kevent_ctl(kfd, KEVENT_CTL_REMOVE, KEVENT_CTL_MAX_BATCH, uk));
	}
	/* Close with 6144 kevents still registered frees them. */
	close(kfd);
}

TEST(per_user_limit)
{
	const char *path = "/proc/sys/fs/kevent/max_user_kevents";
	char old[32] = "";
	int i, fd, status, kfd = kevent_init(0);
	pid_t pid;
	ssize_t n;

	ASSERT_LE(0, kfd);
	fd = open(path, O_RDWR);
	ASSERT_LE(0, fd) TH_LOG("%s: %s", path, strerror(errno));
	n = read(fd, old, sizeof(old) - 1);
	ASSERT_LT(0, n);
	TH_LOG("default max_user_kevents: %s", old);
	ASSERT_LT(1000, atol(old));
	ASSERT_EQ(2, pwrite(fd, "4\n", 2, 0));
	close(kfd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* A user of its own, so that nothing else is charged to it. */
		if (setresuid(4242, 4242, 4242))
			_exit(10);
		kfd = kevent_init(0);
		for (i = 0; i < 4; i++)
			if (add1(kfd, timer_ev(i, 1000000000000ULL, 0, 0)))
				_exit(11);
		if (add1(kfd, timer_ev(4, 1000000000000ULL, 0, 0)) == 0 || errno != ENOSPC)
			_exit(12);
		/* Removing one frees its charge. */
		if (ctl1(kfd, KEVENT_CTL_REMOVE, timer_ev(0, 0, 0, 0)) ||
		    add1(kfd, timer_ev(4, 1000000000000ULL, 0, 0)))
			_exit(13);
		/* Closing the queue frees them all. */
		close(kfd);
		kfd = kevent_init(0);
		for (i = 0; i < 4; i++)
			if (add1(kfd, timer_ev(i, 1000000000000ULL, 0, 0)))
				_exit(14);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ((ssize_t)strlen(old), pwrite(fd, old, strlen(old), 0));
	close(fd);
}

/* Registrations follow the descriptor: close removes them and frees the file. */
TEST(close_removes_registration)
{
	struct sigaction sa = { .sa_handler = SIG_IGN };
	struct ukevent ev[1];
	int p[2], kfd = kevent_init(0);

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, sigaction(SIGPIPE, &sa, NULL));
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(0, add1(kfd, poll_ev(p[0], POLLIN, 0)));
	ASSERT_EQ(1, write(p[1], "x", 1));
	ASSERT_EQ(1, poll_now(kfd, ev, 1));
	close(p[0]);
	/* No event for a closed fd, and no registration left... */
	EXPECT_EQ(0, poll_now(kfd, ev, 1));
	EXPECT_EQ(-1, ctl1(kfd, KEVENT_CTL_REMOVE, poll_ev(p[0], POLLIN, 0)));
	EXPECT_EQ(ENOENT, errno);
	/* ...and nothing keeps the read end alive. */
	EXPECT_EQ(-1, write(p[1], "x", 1));
	EXPECT_EQ(EPIPE, errno);
	close(p[1]);
	close(kfd);
}

TEST(dup_does_not_carry_registration)
{
	struct ukevent ev[1];
	int p[2], d, kfd = kevent_init(0);

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(0, add1(kfd, poll_ev(p[0], POLLIN, 0)));
	d = dup(p[0]);
	ASSERT_LE(0, d);
	/* Closing the duplicate leaves the registration on p[0]. */
	close(d);
	ASSERT_EQ(1, write(p[1], "x", 1));
	ASSERT_EQ(1, poll_now(kfd, ev, 1));
	EXPECT_EQ(p[0], ev[0].id);
	/* dup2 over the registered fd is a close of it. */
	d = dup(p[1]);
	ASSERT_EQ(p[0], dup2(d, p[0]));
	EXPECT_EQ(-1, ctl1(kfd, KEVENT_CTL_REMOVE, poll_ev(p[0], POLLIN, 0)));
	EXPECT_EQ(ENOENT, errno);
	close(d);
	close(p[0]);
	close(p[1]);
	close(kfd);
}

TEST(fork_child_close_keeps_parent_registration)
{
	struct ukevent ev[1];
	int p[2], status, kfd = kevent_init(0);
	pid_t pid;

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(0, add1(kfd, poll_ev(p[0], POLLIN, 0)));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* The child shares the queue; its closes are its own. */
		close(p[0]);
		_exit(write(p[1], "x", 1) == 1 ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(1, poll_now(kfd, ev, 1));
	EXPECT_EQ(p[0], ev[0].id);
	close(p[0]);
	close(p[1]);
	close(kfd);
}

TEST(exit_removes_registrations)
{
	int p[2], status, kfd = kevent_init(0);
	pid_t pid;

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		/* Registered by the child's fd table, on the shared queue. */
		_exit(add1(kfd, poll_ev(p[0], POLLIN, 0)) ? 1 : 0);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	/* The child's exit closed its fds, and its registration went with them. */
	EXPECT_EQ(-1, ctl1(kfd, KEVENT_CTL_REMOVE, poll_ev(p[0], POLLIN, 0)));
	EXPECT_EQ(ENOENT, errno);
	close(p[0]);
	close(p[1]);
	close(kfd);
}

TEST(nested_queue)
{
	struct ukevent ev[2];
	int outer = kevent_init(0), inner = kevent_init(0);

	ASSERT_LE(0, outer);
	ASSERT_LE(0, inner);
	ASSERT_EQ(0, add1(outer, poll_ev(inner, POLLIN, 0)));
	EXPECT_EQ(0, poll_now(outer, ev, 2));
	ASSERT_EQ(0, add1(inner, timer_ev(1, 20000000, 0, 0)));
	/* The inner queue becoming ready wakes a waiter on the outer one. */
	ASSERT_EQ(1, sys_kevent_get_events(outer, 1, 2, NULL, ev, 0));
	EXPECT_EQ(inner, ev[0].id);
	EXPECT_EQ(POLLIN, ev[0].event);
	/* Level triggered: reported until the inner queue is drained. */
	ASSERT_EQ(1, poll_now(inner, ev, 2));
	EXPECT_EQ(0, poll_now(outer, ev, 2));
	/* A loop is refused. */
	EXPECT_EQ(-1, add1(inner, poll_ev(outer, POLLIN, 0)));
	EXPECT_EQ(ELOOP, errno);
	EXPECT_EQ(-1, add1(outer, poll_ev(outer, POLLIN, 0)));
	EXPECT_EQ(ELOOP, errno);
	close(inner);
	close(outer);
}

TEST(nesting_depth)
{
	int q[6], i;

	for (i = 0; i < 6; i++)
		ASSERT_LE(0, q[i] = kevent_init(0));
	/* q0 -> q1 -> q2 -> q3 -> q4: four levels, as epoll allows. */
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, add1(q[i], poll_ev(q[i + 1], POLLIN, 0)));
	EXPECT_EQ(-1, add1(q[4], poll_ev(q[5], POLLIN, 0)));
	EXPECT_EQ(ELOOP, errno);
	/* Removing a link makes room again. */
	ASSERT_EQ(0, ctl1(q[0], KEVENT_CTL_REMOVE, poll_ev(q[1], POLLIN, 0)));
	EXPECT_EQ(0, add1(q[4], poll_ev(q[5], POLLIN, 0)));
	for (i = 0; i < 6; i++)
		close(q[i]);
}

TEST(kevent_epoll_loop_does_not_hang)
{
	struct epoll_event ee = { .events = EPOLLIN };
	struct ukevent ev[4];
	struct __kernel_timespec ts = { 1, 0 };
	int kfd = kevent_init(0), epfd = epoll_create1(0), n, i, timer = 0, ep = 0;

	ASSERT_LE(0, kfd);
	ASSERT_LE(0, epfd);
	/* kevent -> epoll -> the same kevent: wake-ups through epoll are deferred. */
	ASSERT_EQ(0, epoll_ctl(epfd, EPOLL_CTL_ADD, kfd, &ee));
	ASSERT_EQ(0, add1(kfd, poll_ev(epfd, POLLIN, 0)));
	ASSERT_EQ(0, add1(kfd, timer_ev(1, 10000000, 0, 0)));
	/*
	 * The timer is reported. The epoll kevent may or may not be: the epoll
	 * instance is readable only while this queue has ready kevents, and the
	 * delivery re-check can find it stale. What matters is that the loop of
	 * wake-ups ends and nothing deadlocks.
	 */
	for (i = 0; i < 3 && !timer; i++) {
		n = sys_kevent_get_events(kfd, 1, 4, &ts, ev, 0);
		ASSERT_LE(0, n);
		while (n-- > 0) {
			timer |= ev[n].type == KEVENT_TYPE_TIMER;
			ep |= ev[n].type == KEVENT_TYPE_POLL && ev[n].id == (unsigned int)epfd;
		}
	}
	EXPECT_TRUE(timer);
	TH_LOG("epoll kevent reported: %s", ep ? "yes" : "no");
	close(epfd);
	close(kfd);
}

TEST(poll_socketpair)
{
	struct ukevent ev[2];
	int sv[2], kfd = kevent_init(0);
	char c;

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, add1(kfd, poll_ev(sv[0], POLLIN | POLLRDHUP, KEVENT_REQ_ET)));
	EXPECT_EQ(0, poll_now(kfd, ev, 2));
	ASSERT_EQ(1, write(sv[1], "x", 1));
	ASSERT_EQ(1, poll_now(kfd, ev, 2));
	EXPECT_EQ(POLLIN, ev[0].event);
	ASSERT_EQ(1, read(sv[0], &c, 1));
	ASSERT_EQ(0, shutdown(sv[1], SHUT_WR));
	ASSERT_EQ(1, poll_now(kfd, ev, 2));
	EXPECT_EQ(POLLIN | POLLRDHUP, ev[0].event);
	close(sv[0]);
	close(sv[1]);
	close(kfd);
}

static const char *self_exe;

/* Re-executed by exec_closes_cloexec_registrations, with the queue it made. */
static int exec_child(int kfd, int fd)
{
	struct ukevent uk = poll_ev(fd, POLLIN, 0);

	/* The close-on-exec fd is gone, and the registration made by it with it. */
	if (fcntl(fd, F_GETFD) != -1)
		return 2;
	if (sys_kevent_ctl(kfd, KEVENT_CTL_REMOVE, 1, &uk) != 0 || uk.ret_data != -ENOENT)
		return 3;
	return 0;
}

TEST(exec_closes_cloexec_registrations)
{
	char kfd_s[16], fd_s[16];
	int p[2], status, kfd;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* The process that registers is the one that execs. */
		kfd = kevent_init(0);
		if (kfd < 0 || pipe2(p, O_CLOEXEC) || add1(kfd, poll_ev(p[0], POLLIN, 0)))
			_exit(8);
		snprintf(kfd_s, sizeof(kfd_s), "%d", kfd);
		snprintf(fd_s, sizeof(fd_s), "%d", p[0]);
		execl(self_exe, self_exe, "--exec-child", kfd_s, fd_s, NULL);
		_exit(9);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--exec-child"))
		return exec_child(atoi(argv[2]), atoi(argv[3]));
	self_exe = "/proc/self/exe";
	return test_harness_run(argc, argv);
}
