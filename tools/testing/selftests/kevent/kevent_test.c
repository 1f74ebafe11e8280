// SPDX-License-Identifier: GPL-2.0
/*
 * kevent ABI tests: kevent_ctl() and kevent_get_events() from userspace.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/kevent.h>
#include <linux/time_types.h>

#include "../kselftest_harness.h"

#ifndef __NR_kevent_ctl
#define __NR_kevent_ctl 473
#endif
#ifndef __NR_kevent_get_events
#define __NR_kevent_get_events 474
#endif

static int sys_kevent_ctl(int fd, unsigned int cmd, unsigned int num, struct ukevent *buf)
{
	return syscall(__NR_kevent_ctl, fd, cmd, num, buf);
}

static int sys_kevent_get_events(int fd, unsigned int min_nr, unsigned int max_nr,
				 const struct __kernel_timespec *timeout,
				 struct ukevent *buf, unsigned int flags)
{
	return syscall(__NR_kevent_get_events, fd, min_nr, max_nr, timeout, buf, flags);
}

static int kevent_init(unsigned int flags)
{
	return sys_kevent_ctl(-1, KEVENT_CTL_INIT, flags, NULL);
}

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

	EXPECT_EQ(-1, kevent_init(0x4));
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

TEST_HARNESS_MAIN
