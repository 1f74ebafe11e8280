// SPDX-License-Identifier: GPL-2.0
/*
 * kevent ready ring (KEVENT_CTL_INIT with KEVENT_RING): the creation
 * parameters and mmap() of the queue and their errors, the ring's header,
 * which kevents the kernel writes into the ring (timers that are not
 * periodic, inodes, AIO completions, edge-triggered and oneshot socket
 * kevents) and which take the ready list (level-triggered sockets, poll
 * kevents, periodic timers, broken reports, events that find the ring full),
 * oneshot kevents leaving their queue once written, kevent_get_events() and
 * poll() waking for ring events, and many threads consuming one ring.
 *
 * The ring is consumed with kevent_ring_pop() of libkevent.h. Every wait is
 * bounded. Needs 127.0.0.1 on lo and a tmpfs at /tmp.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/kevent.h>
#include <linux/time_types.h>

#include "../kselftest_harness.h"
#include "kevent_sys.h"

#define WAIT_MS		5000	/* longest wait for an event that must come */

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static long page_size(void)
{
	return sysconf(_SC_PAGESIZE);
}

/* kevent_ctl(KEVENT_CTL_INIT) with @params as its buf. */
static int ring_init(unsigned int flags, const void *params)
{
	return kevent_ctl(-1, KEVENT_CTL_INIT, flags, (struct ukevent *)params);
}

/*
 * kevent_get_events() waiting up to @ms for one event: returns at once,
 * with 0, if the ring holds one.
 */
static int wait_ev(int kfd, struct ukevent *buf, unsigned int max, int ms)
{
	struct __kernel_timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (ms % 1000) * 1000000LL,
	};

	return kevent_get_events(kfd, 1, max, &ts, buf, 0);
}

/* kevent_get_events(min_nr 1) with a zero timeout. */
static int get_now(int kfd, struct ukevent *buf, unsigned int max)
{
	struct __kernel_timespec zero = { 0, 0 };

	return kevent_get_events(kfd, 1, max, &zero, buf, 0);
}

static __u64 ring_head(struct kevent_ring *ring)
{
	return __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);
}

static __u64 ring_tail(struct kevent_ring *ring)
{
	return __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
}

static __u64 ring_overflow(struct kevent_ring *ring)
{
	return __atomic_load_n(&ring->overflow, __ATOMIC_ACQUIRE);
}

static __u64 slot_seq(struct kevent_ring *ring, unsigned int i)
{
	return __atomic_load_n(&ring->events[i].seq, __ATOMIC_ACQUIRE);
}

/*
 * Waits up to @ms until the kernel has written @n events into the ring
 * since it was made (tail >= @n). kevent_get_events() returns at once while
 * the ring holds an event, so between two calls the wait is a short sleep.
 * Returns 0, or -1 on timeout or if an event came from the ready list
 * instead (in @stray, if not NULL).
 */
static int wait_tail(int kfd, struct kevent_ring *ring, __u64 n, int ms,
		     struct ukevent *stray)
{
	long long end = now_ms() + ms;
	struct ukevent ev[8];
	int r;

	while (ring_tail(ring) < n) {
		long long left = end - now_ms();

		if (left <= 0)
			return -1;
		r = wait_ev(kfd, ev, 8, (int)left);
		if (r > 0) {
			if (stray)
				*stray = ev[0];
			return -1;
		}
		if (r == 0 && ring_tail(ring) < n && ring_tail(ring) != ring_head(ring))
			usleep(1000);
	}
	return 0;
}

static struct ukevent timer_ev(__u64 id, __u64 first_ns, __u64 period_ns, __u32 flags)
{
	struct ukevent uk;

	kevent_prep_timer(&uk, id, first_ns, period_ns, 0xabc000 + id);
	uk.req_flags = flags;
	return uk;
}

static struct ukevent key(__u32 type, __u64 id)
{
	struct ukevent uk;

	kevent_prep_key(&uk, type, id);
	return uk;
}

/* Reads everything queued on @fd (non-blocking). */
static void drain(int fd)
{
	char buf[256];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/* Expects @rev to be the RECV of the socket kevent on @fd with @flags. */
static void expect_sock_rev(struct __test_metadata *_metadata,
			    const struct kevent_ring_event *rev, int fd, __u32 flags)
{
	EXPECT_EQ(0x50c000 + fd, rev->user_data);
	EXPECT_EQ((__u64)fd, rev->id);
	EXPECT_EQ(KEVENT_TYPE_SOCKET, rev->type);
	EXPECT_EQ(KEVENT_SOCKET_RECV, rev->event);
	EXPECT_EQ(flags, rev->req_flags);
	EXPECT_EQ(KEVENT_RET_DONE, rev->ret_flags);
	EXPECT_EQ(0, rev->ret_data);
	EXPECT_EQ(0, rev->reserved[0]);
	EXPECT_EQ(0, rev->reserved[1]);
}

TEST(layout)
{
	EXPECT_EQ(32, sizeof(struct kevent_ring_params));
	EXPECT_EQ(128, sizeof(struct kevent_ring));
	EXPECT_EQ(0, offsetof(struct kevent_ring, head));
	EXPECT_EQ(64, offsetof(struct kevent_ring, tail));
	EXPECT_EQ(72, offsetof(struct kevent_ring, overflow));
	EXPECT_EQ(80, offsetof(struct kevent_ring, entries));
	EXPECT_EQ(128, offsetof(struct kevent_ring, events));
	EXPECT_EQ(64, sizeof(struct kevent_ring_event));
	EXPECT_EQ(0, offsetof(struct kevent_ring_event, seq));
	EXPECT_EQ(40, offsetof(struct kevent_ring_event, ret_data));
	EXPECT_EQ(128 + 64, KEVENT_RING_SIZE(1));
	EXPECT_EQ(128 + 64 * (__u64)KEVENT_RING_MAX_ENTRIES,
		  KEVENT_RING_SIZE(KEVENT_RING_MAX_ENTRIES));
}

TEST(init_errors)
{
	static const __u32 bad_entries[] = {
		0, 3, 6, 100, KEVENT_RING_MAX_ENTRIES + 1, KEVENT_RING_MAX_ENTRIES * 2,
		0x80000000u, 0xffffffffu,
	};
	struct kevent_ring_params p = { .entries = 4 }, q;
	const long pg = page_size();
	unsigned int i;
	char *m;
	int fd;

	/* KEVENT_RING with no parameters, or parameters that cannot be read. */
	EXPECT_EQ(-1, ring_init(KEVENT_RING, NULL));
	EXPECT_EQ(EFAULT, errno);
	m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, m);
	ASSERT_EQ(0, mprotect(m + pg, pg, PROT_NONE));
	EXPECT_EQ(-1, ring_init(KEVENT_RING, m + pg));
	EXPECT_EQ(EFAULT, errno);
	/* Half of them readable: entries 4, flags 0, reserved[0] 0. */
	memcpy(m + pg - 16, &p, 16);
	EXPECT_EQ(-1, ring_init(KEVENT_RING, m + pg - 16));
	EXPECT_EQ(EFAULT, errno);
	munmap(m, 2 * pg);

	/* Parameters without KEVENT_RING. */
	EXPECT_EQ(-1, ring_init(0, &p));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ring_init(KEVENT_CLOEXEC | KEVENT_NONBLOCK, &p));
	EXPECT_EQ(EINVAL, errno);

	/* Bad parameters. */
	for (i = 0; i < ARRAY_SIZE(bad_entries); i++) {
		q = p;
		q.entries = bad_entries[i];
		EXPECT_EQ(-1, ring_init(KEVENT_RING, &q)) TH_LOG("entries %u", q.entries);
		EXPECT_EQ(EINVAL, errno);
	}
	q = p;
	q.flags = 1;
	EXPECT_EQ(-1, ring_init(KEVENT_RING, &q));
	EXPECT_EQ(EINVAL, errno);
	q.flags = 0x80000000u;
	EXPECT_EQ(-1, ring_init(KEVENT_RING, &q));
	EXPECT_EQ(EINVAL, errno);
	for (i = 0; i < 3; i++) {
		q = p;
		q.reserved[i] = 1ULL << 63;
		EXPECT_EQ(-1, ring_init(KEVENT_RING, &q)) TH_LOG("reserved[%u]", i);
		EXPECT_EQ(EINVAL, errno);
	}

	/* An unknown flag, or a descriptor, with good parameters. */
	EXPECT_EQ(-1, ring_init(KEVENT_RING | 0x8, &p));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, kevent_ctl(0, KEVENT_CTL_INIT, KEVENT_RING, (struct ukevent *)&p));
	EXPECT_EQ(EINVAL, errno);

	/* One slot: too few for a slot's seq to tell free from unread. */
	q = p;
	q.entries = 1;
	EXPECT_EQ(-1, ring_init(KEVENT_RING, &q));
	EXPECT_EQ(EINVAL, errno);

	/* The limits themselves, and the other flags with a ring. */
	q.entries = 2;
	fd = ring_init(KEVENT_RING, &q);
	EXPECT_LE(0, fd);
	close(fd);
	q.entries = KEVENT_RING_MAX_ENTRIES;
	fd = ring_init(KEVENT_RING, &q);
	EXPECT_LE(0, fd) TH_LOG("%u entries: %s", q.entries, strerror(errno));
	close(fd);
	fd = ring_init(KEVENT_RING | KEVENT_CLOEXEC | KEVENT_NONBLOCK, &p);
	ASSERT_LE(0, fd);
	EXPECT_EQ(FD_CLOEXEC, fcntl(fd, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(O_NONBLOCK, fcntl(fd, F_GETFL) & O_NONBLOCK);
	close(fd);
}

TEST(mmap_errors)
{
	struct kevent_ring_params p = { .entries = 256 };
	const long pg = page_size();
	size_t len = kevent_ring_len(256);
	struct kevent_ring *r;
	void *m;
	int kfd, fd;

	ASSERT_EQ(0, len % pg);
	ASSERT_LE(KEVENT_RING_SIZE(256), len);
	ASSERT_GT(KEVENT_RING_SIZE(256) + pg, len);

	/* A queue without a ring has nothing to map. */
	kfd = kevent_queue(0);
	ASSERT_LE(0, kfd);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, kfd, 0));
	EXPECT_EQ(ENODEV, errno);
	close(kfd);

	fd = ring_init(KEVENT_RING, &p);
	ASSERT_LE(0, fd);
	/* Longer than the ring rounded up to pages. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, len + pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
	EXPECT_EQ(EINVAL, errno);
	/* Any offset but 0, even within the ring. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, pg));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, pg));
	EXPECT_EQ(EINVAL, errno);
	/* Private or executable. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, len, PROT_READ | PROT_WRITE | PROT_EXEC,
				   MAP_SHARED, fd, 0));
	EXPECT_EQ(EPERM, errno);

	/* The whole ring, its first page, or its exact size. */
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	r = m;
	EXPECT_EQ(256, r->entries);
	EXPECT_EQ(255, slot_seq(r, 255));
	munmap(m, len);
	m = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	r = m;
	EXPECT_EQ(256, r->entries);
	munmap(m, pg);
	m = mmap(NULL, KEVENT_RING_SIZE(256), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	r = m;
	EXPECT_EQ(255, slot_seq(r, 255));
	munmap(m, KEVENT_RING_SIZE(256));
	close(fd);
}

TEST(header_initial_state)
{
	static const unsigned int sizes[] = { 2, 8, KEVENT_RING_MAX_ENTRIES };
	struct kevent_ring *ring;
	struct kevent_ring_event rev;
	unsigned int i, j, bad;
	size_t len;
	int kfd;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		kfd = kevent_queue_ring(0, sizes[i], &ring, &len);
		ASSERT_LE(0, kfd) TH_LOG("%u entries: %s", sizes[i], strerror(errno));
		EXPECT_EQ(kevent_ring_len(sizes[i]), len);
		EXPECT_EQ(sizes[i], ring->entries);
		EXPECT_EQ(0, ring_head(ring));
		EXPECT_EQ(0, ring_tail(ring));
		EXPECT_EQ(0, ring_overflow(ring));
		for (j = 0, bad = 0; j < sizes[i]; j++) {
			if (slot_seq(ring, j) != j && !bad++)
				TH_LOG("%u entries: slot %u has seq %llu", sizes[i], j,
				       (unsigned long long)slot_seq(ring, j));
		}
		EXPECT_EQ(0, bad);
		/* Empty: nothing to take. */
		EXPECT_EQ(0, kevent_ring_pop(ring, &rev));
		EXPECT_EQ(0, ring_head(ring));
		kevent_ring_unmap(ring, len);
		close(kfd);
	}
}

/* Two mappings of one ring are the same memory. */
TEST(mappings_are_shared)
{
	struct kevent_ring *ring, *other;
	struct kevent_ring_event rev;
	struct ukevent ev[4];
	size_t len;
	int kfd, sv[2];

	kfd = kevent_queue_ring(0, 4, &ring, &len);
	ASSERT_LE(0, kfd);
	other = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, kfd, 0);
	ASSERT_NE(MAP_FAILED, other);
	ASSERT_NE(ring, other);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, add1(kfd, sock_ev(sv[1], KEVENT_SOCKET_RECV, KEVENT_REQ_ET)));
	ASSERT_EQ(1, write(sv[0], "x", 1));
	EXPECT_EQ(0, wait_ev(kfd, ev, 4, WAIT_MS));
	EXPECT_EQ(1, ring_tail(ring));
	EXPECT_EQ(1, ring_tail(other));
	ASSERT_EQ(1, kevent_ring_pop(other, &rev));
	expect_sock_rev(_metadata, &rev, sv[1], KEVENT_REQ_ET);
	EXPECT_EQ(1, ring_head(ring));
	EXPECT_EQ(0, kevent_ring_pop(ring, &rev));
	munmap(other, len);
	kevent_ring_unmap(ring, len);
	close(sv[0]);
	close(sv[1]);
	close(kfd);
}

TEST(socket_et_to_ring)
{
	struct kevent_ring *ring;
	struct kevent_ring_event rev;
	struct ukevent ev[4], uk;
	size_t len;
	int kfd, sv[2];

	kfd = kevent_queue_ring(0, 8, &ring, &len);
	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, add1(kfd, sock_ev(sv[1], KEVENT_SOCKET_RECV, KEVENT_REQ_ET)));
	EXPECT_EQ(0, get_now(kfd, ev, 4));
	EXPECT_EQ(0, ring_tail(ring));

	ASSERT_EQ(1, write(sv[0], "x", 1));
	/* Returns at once, with nothing from the ready list. */
	EXPECT_EQ(0, wait_ev(kfd, ev, 4, WAIT_MS));
	EXPECT_EQ(0, get_now(kfd, ev, 4));
	EXPECT_EQ(0, poll_now(kfd, ev, 4));
	EXPECT_EQ(1, ring_tail(ring));
	EXPECT_EQ(0, ring_head(ring));
	EXPECT_EQ(0, ring_overflow(ring));
	EXPECT_EQ(1, slot_seq(ring, 0));
	EXPECT_EQ(1, slot_seq(ring, 1));

	ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
	EXPECT_EQ(1, rev.seq);
	expect_sock_rev(_metadata, &rev, sv[1], KEVENT_REQ_ET);
	EXPECT_EQ(1, ring_head(ring));
	/* The slot is free for the next lap. */
	EXPECT_EQ(8, slot_seq(ring, 0));
	kevent_ring_to_ukevent(&rev, &uk);
	EXPECT_EQ(rev.user_data, uk.user_data);
	EXPECT_EQ((__u64)sv[1], uk.id);
	EXPECT_EQ(KEVENT_TYPE_SOCKET, uk.type);
	EXPECT_EQ(KEVENT_SOCKET_RECV, uk.event);
	EXPECT_EQ(KEVENT_REQ_ET, uk.req_flags);
	EXPECT_EQ(0, kevent_result(&uk));

	/* Consumed: the ring is empty and nothing is ready. */
	EXPECT_EQ(0, kevent_ring_pop(ring, &rev));
	EXPECT_EQ(0, get_now(kfd, ev, 4));
	EXPECT_EQ(1, ring_tail(ring));
	/* Edge triggered: the byte still waiting is no new activity. */
	EXPECT_EQ(0, wait_ev(kfd, ev, 4, 50));
	EXPECT_EQ(1, ring_tail(ring));
	kevent_ring_unmap(ring, len);
	close(sv[0]);
	close(sv[1]);
	close(kfd);
}

/* Each notification of an edge-triggered socket kevent is an event of its own. */
TEST(socket_et_each_notification)
{
	struct kevent_ring *ring;
	struct kevent_ring_event rev;
	struct ukevent ev[4];
	size_t len;
	int kfd, sv[2];

	kfd = kevent_queue_ring(0, 8, &ring, &len);
	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, add1(kfd, sock_ev(sv[1], KEVENT_SOCKET_RECV, KEVENT_REQ_ET)));
	ASSERT_EQ(1, write(sv[0], "a", 1));
	ASSERT_EQ(1, write(sv[0], "b", 1));
	EXPECT_EQ(0, wait_ev(kfd, ev, 4, WAIT_MS));
	EXPECT_EQ(2, ring_tail(ring));
	ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
	expect_sock_rev(_metadata, &rev, sv[1], KEVENT_REQ_ET);
	ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
	expect_sock_rev(_metadata, &rev, sv[1], KEVENT_REQ_ET);
	EXPECT_EQ(2, rev.seq);
	EXPECT_EQ(0, kevent_ring_pop(ring, &rev));
	EXPECT_EQ(0, ring_overflow(ring));
	kevent_ring_unmap(ring, len);
	close(sv[0]);
	close(sv[1]);
	close(kfd);
}

/* Many laps of a small ring: the sequence numbers go on. */
TEST(ring_wraps)
{
	struct kevent_ring *ring;
	struct kevent_ring_event rev;
	struct ukevent ev[4];
	size_t len;
	int kfd, sv[2];
	__u64 i;

	kfd = kevent_queue_ring(0, 2, &ring, &len);
	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, add1(kfd, sock_ev(sv[1], KEVENT_SOCKET_RECV, KEVENT_REQ_ET)));
	for (i = 0; i < 11; i++) {
		ASSERT_EQ(1, write(sv[0], "x", 1));
		ASSERT_EQ(0, wait_ev(kfd, ev, 4, WAIT_MS)) TH_LOG("lap %llu", (unsigned long long)i);
		ASSERT_EQ(i + 1, ring_tail(ring));
		ASSERT_EQ(i + 1, slot_seq(ring, i & 1));
		ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
		EXPECT_EQ(i + 1, rev.seq);
		expect_sock_rev(_metadata, &rev, sv[1], KEVENT_REQ_ET);
		EXPECT_EQ(i + 2, slot_seq(ring, i & 1));
		EXPECT_EQ(i + 1, ring_head(ring));
		EXPECT_EQ(0, kevent_ring_pop(ring, &rev));
		drain(sv[1]);
	}
	EXPECT_EQ(0, ring_overflow(ring));
	kevent_ring_unmap(ring, len);
	close(sv[0]);
	close(sv[1]);
	close(kfd);
}

/* A level-triggered socket kevent needs its re-check at delivery: the ready list. */
TEST(socket_lt_to_ready_list)
{
	struct kevent_ring *ring;
	struct kevent_ring_event rev;
	struct ukevent ev[4];
	size_t len;
	int kfd, sv[2];

	kfd = kevent_queue_ring(0, 8, &ring, &len);
	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, add1(kfd, sock_ev(sv[1], KEVENT_SOCKET_RECV, 0)));
	ASSERT_EQ(1, write(sv[0], "x", 1));
	ASSERT_EQ(1, wait_ev(kfd, ev, 4, WAIT_MS));
	EXPECT_EQ((__u64)sv[1], ev[0].id);
	EXPECT_EQ(KEVENT_TYPE_SOCKET, ev[0].type);
	EXPECT_EQ(KEVENT_SOCKET_RECV, ev[0].event);
	EXPECT_EQ(KEVENT_RET_DONE, ev[0].ret_flags);
	/* Level: reported again while the byte waits, never into the ring. */
	EXPECT_EQ(1, get_now(kfd, ev, 4));
	EXPECT_EQ(0, ring_tail(ring));
	EXPECT_EQ(0, slot_seq(ring, 0));
	EXPECT_EQ(0, kevent_ring_pop(ring, &rev));
	ASSERT_EQ(1, write(sv[0], "y", 1));
	EXPECT_EQ(1, wait_ev(kfd, ev, 4, WAIT_MS));
	drain(sv[1]);
	EXPECT_EQ(0, get_now(kfd, ev, 4));
	EXPECT_EQ(0, ring_tail(ring));
	EXPECT_EQ(0, ring_overflow(ring));
	kevent_ring_unmap(ring, len);
	close(sv[0]);
	close(sv[1]);
	close(kfd);
}

/* Poll kevents, edge-triggered or oneshot too, take the ready list. */
TEST(poll_to_ready_list)
{
	struct kevent_ring *ring;
	struct ukevent ev[4];
	long long end;
	int kfd, a[2], b[2], got = 0, seen = 0, i, n;
	size_t len;

	kfd = kevent_queue_ring(0, 8, &ring, &len);
	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, pipe(a));
	ASSERT_EQ(0, pipe(b));
	ASSERT_EQ(0, add1(kfd, (struct ukevent){ .user_data = 1, .id = a[0],
						.type = KEVENT_TYPE_POLL, .event = POLLIN,
						.req_flags = KEVENT_REQ_ET }));
	ASSERT_EQ(0, add1(kfd, (struct ukevent){ .user_data = 2, .id = b[0],
						.type = KEVENT_TYPE_POLL, .event = POLLIN,
						.req_flags = KEVENT_REQ_ONESHOT }));
	ASSERT_EQ(1, write(a[1], "x", 1));
	ASSERT_EQ(1, write(b[1], "x", 1));
	for (end = now_ms() + WAIT_MS; got < 2 && now_ms() < end; got += n) {
		n = wait_ev(kfd, ev, 4, 100);
		ASSERT_LE(0, n);
		if (n == 0)
			ASSERT_EQ(0, ring_tail(ring));
		for (i = 0; i < n; i++) {
			EXPECT_EQ(KEVENT_TYPE_POLL, ev[i].type);
			EXPECT_EQ(POLLIN, ev[i].event);
			seen |= 1 << ev[i].user_data;
		}
	}
	EXPECT_EQ(2, got);
	EXPECT_EQ(6, seen);
	EXPECT_EQ(0, ring_tail(ring));
	EXPECT_EQ(0, get_now(kfd, ev, 4));
	kevent_ring_unmap(ring, len);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	close(kfd);
}

/* Timers that are not periodic go to the ring; a oneshot one leaves its queue. */
TEST(timer_to_ring)
{
	struct kevent_ring *ring;
	struct kevent_ring_event rev;
	struct ukevent ev[4];
	long long t0;
	size_t len;
	int kfd;

	kfd = kevent_queue_ring(0, 8, &ring, &len);
	ASSERT_LE(0, kfd);
	t0 = now_ms();
	ASSERT_EQ(0, add1(kfd, timer_ev(7, 20000000, 0, KEVENT_REQ_ONESHOT)));
	EXPECT_EQ(0, ring_tail(ring));
	ASSERT_EQ(0, wait_ev(kfd, ev, 4, WAIT_MS));
	EXPECT_LE(19, now_ms() - t0);
	ASSERT_EQ(1, ring_tail(ring));
	ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
	EXPECT_EQ(7, rev.id);
	EXPECT_EQ(0xabc007, rev.user_data);
	EXPECT_EQ(KEVENT_TYPE_TIMER, rev.type);
	EXPECT_EQ(KEVENT_TIMER_FIRED, rev.event);
	EXPECT_EQ(KEVENT_REQ_ONESHOT, rev.req_flags);
	EXPECT_EQ(KEVENT_RET_DONE, rev.ret_flags);
	EXPECT_EQ(1, rev.ret_data);
	/* The oneshot kevent left: its id is free, and the new one fires too. */
	ASSERT_EQ(0, add1(kfd, timer_ev(7, 1000000, 0, KEVENT_REQ_ONESHOT)));
	ASSERT_EQ(0, wait_ev(kfd, ev, 4, WAIT_MS));
	ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
	EXPECT_EQ(7, rev.id);
	EXPECT_EQ(-1, ctl1(kfd, KEVENT_CTL_REMOVE, key(KEVENT_TYPE_TIMER, 7)));
	EXPECT_EQ(ENOENT, errno);

	/* Neither oneshot nor periodic: the ring too. */
	ASSERT_EQ(0, add1(kfd, timer_ev(8, 1000000, 0, 0)));
	ASSERT_EQ(0, wait_ev(kfd, ev, 4, WAIT_MS));
	ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
	EXPECT_EQ(8, rev.id);
	EXPECT_EQ(0, rev.req_flags);
	EXPECT_EQ(1, rev.ret_data);

	/* An absolute time in the past fires in kevent_ctl(): in the ring at once. */
	ASSERT_EQ(0, add1(kfd, timer_ev(9, 1, 0, KEVENT_REQ_ABSTIME)));
	EXPECT_EQ(4, ring_tail(ring));
	ASSERT_EQ(0, wait_tail(kfd, ring, 4, WAIT_MS, NULL));
	ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
	EXPECT_EQ(9, rev.id);
	EXPECT_EQ(KEVENT_REQ_ABSTIME, rev.req_flags);
	EXPECT_EQ(1, rev.ret_data);

	EXPECT_EQ(0, kevent_ring_pop(ring, &rev));
	EXPECT_EQ(0, get_now(kfd, ev, 4));
	EXPECT_EQ(0, ring_overflow(ring));
	kevent_ring_unmap(ring, len);
	close(kfd);
}

/* A periodic timer counts its expirations at delivery: the ready list. */
TEST(periodic_timer_to_ready_list)
{
	struct kevent_ring *ring;
	struct ukevent ev[4];
	size_t len;
	int kfd;

	kfd = kevent_queue_ring(0, 8, &ring, &len);
	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, add1(kfd, timer_ev(1, 10000000, 10000000, 0)));
	ASSERT_EQ(1, wait_ev(kfd, ev, 4, WAIT_MS));
	EXPECT_EQ(1, ev[0].id);
	EXPECT_EQ(KEVENT_TIMER_FIRED, ev[0].event);
	EXPECT_LE(1, ev[0].ret_data);
	/* Re-armed at delivery: it fires again, to the ready list again. */
	ASSERT_EQ(1, wait_ev(kfd, ev, 4, WAIT_MS));
	EXPECT_EQ(1, ev[0].id);
	EXPECT_EQ(0, ring_tail(ring));
	EXPECT_EQ(0, slot_seq(ring, 0));
	EXPECT_EQ(0, ctl1(kfd, KEVENT_CTL_REMOVE, key(KEVENT_TYPE_TIMER, 1)));
	kevent_ring_unmap(ring, len);
	close(kfd);
}

/* Oneshot socket kevents, level or edge triggered, go to the ring and leave. */
TEST(oneshot_socket_leaves_queue)
{
	static const __u32 flags[2] = { KEVENT_REQ_ONESHOT, KEVENT_REQ_ONESHOT | KEVENT_REQ_ET };
	struct kevent_ring *ring;
	struct kevent_ring_event rev;
	struct ukevent ev[4];
	int kfd, sv[2][2], i;
	size_t len;

	kfd = kevent_queue_ring(0, 8, &ring, &len);
	ASSERT_LE(0, kfd);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]));
		ASSERT_EQ(0, add1(kfd, sock_ev(sv[i][1], KEVENT_SOCKET_RECV, flags[i])));
	}
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(1, write(sv[i][0], "x", 1));
		ASSERT_EQ(0, wait_tail(kfd, ring, i + 1, WAIT_MS, NULL));
		ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
		expect_sock_rev(_metadata, &rev, sv[i][1], flags[i]);
	}
	/* Gone: more data is not reported, and REMOVE finds nothing. */
	for (i = 0; i < 2; i++)
		ASSERT_EQ(1, write(sv[i][0], "y", 1));
	EXPECT_EQ(0, wait_ev(kfd, ev, 4, 50));
	EXPECT_EQ(2, ring_tail(ring));
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(-1, ctl1(kfd, KEVENT_CTL_REMOVE, key(KEVENT_TYPE_SOCKET, sv[i][1])));
		EXPECT_EQ(ENOENT, errno);
	}
	/* The key is free: added again, reported again. */
	for (i = 0; i < 2; i++) {
		drain(sv[i][1]);
		ASSERT_EQ(0, add1(kfd, sock_ev(sv[i][1], KEVENT_SOCKET_RECV, flags[i])));
		ASSERT_EQ(1, write(sv[i][0], "z", 1));
		ASSERT_EQ(0, wait_tail(kfd, ring, 3 + i, WAIT_MS, NULL));
		ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
		expect_sock_rev(_metadata, &rev, sv[i][1], flags[i]);
	}
	EXPECT_EQ(0, kevent_ring_pop(ring, &rev));
	EXPECT_EQ(0, get_now(kfd, ev, 4));
	kevent_ring_unmap(ring, len);
	for (i = 0; i < 2; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
	close(kfd);
}

/*
 * A ring of 2 and 4 edge-triggered kevents: 2 in the ring, 2 on the ready
 * list, counted in overflow. A kevent waiting on the ready list is not
 * written into the ring, even when the ring has room again.
 */
TEST(overflow)
{
	struct kevent_ring *ring;
	struct kevent_ring_event rev;
	struct ukevent ev[8];
	int kfd, sv[4][2], i, n, seen = 0;
	long long t0;
	size_t len;

	kfd = kevent_queue_ring(0, 2, &ring, &len);
	ASSERT_LE(0, kfd);
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]));
		ASSERT_EQ(0, add1(kfd, sock_ev(sv[i][1], KEVENT_SOCKET_RECV, KEVENT_REQ_ET)));
	}
	for (i = 0; i < 4; i++)
		ASSERT_EQ(1, write(sv[i][0], "x", 1));
	EXPECT_EQ(2, ring_tail(ring));
	EXPECT_EQ(2, ring_overflow(ring));

	/* The first two in the ring, in order. */
	ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
	expect_sock_rev(_metadata, &rev, sv[0][1], KEVENT_REQ_ET);
	/* Room again, but the kevent of sv[2] waits on the ready list: it merges there. */
	ASSERT_EQ(1, write(sv[2][0], "y", 1));
	EXPECT_EQ(2, ring_tail(ring));
	EXPECT_EQ(2, ring_overflow(ring));

	/* min_nr counts the ring's event: 1 + 2 >= 3, no wait. */
	t0 = now_ms();
	{
		struct __kernel_timespec ts = { .tv_sec = WAIT_MS / 1000 };

		n = kevent_get_events(kfd, 3, 8, &ts, ev, 0);
	}
	EXPECT_GT(WAIT_MS / 2, now_ms() - t0);
	ASSERT_EQ(2, n);
	for (i = 0; i < n; i++) {
		EXPECT_EQ(KEVENT_TYPE_SOCKET, ev[i].type);
		EXPECT_EQ(KEVENT_SOCKET_RECV, ev[i].event);
		EXPECT_EQ(KEVENT_RET_DONE, ev[i].ret_flags);
		if (ev[i].id == (__u64)sv[2][1])
			seen |= 4;
		if (ev[i].id == (__u64)sv[3][1])
			seen |= 8;
	}
	EXPECT_EQ(12, seen);
	ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
	expect_sock_rev(_metadata, &rev, sv[1][1], KEVENT_REQ_ET);
	EXPECT_EQ(0, kevent_ring_pop(ring, &rev));
	EXPECT_EQ(0, get_now(kfd, ev, 8));

	/* Delivered: new activity goes to the ring again. */
	ASSERT_EQ(1, write(sv[3][0], "z", 1));
	EXPECT_EQ(0, wait_ev(kfd, ev, 8, WAIT_MS));
	EXPECT_EQ(3, ring_tail(ring));
	EXPECT_EQ(2, ring_overflow(ring));
	ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
	expect_sock_rev(_metadata, &rev, sv[3][1], KEVENT_REQ_ET);
	kevent_ring_unmap(ring, len);
	for (i = 0; i < 4; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
	close(kfd);
}

struct writer {
	int fd;
	int delay_ms;
	int ret;
};

static void *writer_thread(void *arg)
{
	struct writer *w = arg;

	usleep(w->delay_ms * 1000);
	w->ret = (int)write(w->fd, "x", 1);
	return NULL;
}

/* kevent_get_events() sleeps until the ring holds an event. */
TEST(get_events_waits_for_ring)
{
	struct kevent_ring *ring;
	struct kevent_ring_event rev;
	struct ukevent ev[4];
	struct writer w;
	pthread_t t;
	long long t0, dt;
	int kfd, sv[2];
	size_t len;

	kfd = kevent_queue_ring(0, 8, &ring, &len);
	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, add1(kfd, sock_ev(sv[1], KEVENT_SOCKET_RECV, KEVENT_REQ_ET)));
	/* Empty ring, nothing ready: a zero timeout returns at once, a short one expires. */
	t0 = now_ms();
	EXPECT_EQ(0, get_now(kfd, ev, 4));
	EXPECT_GT(1000, now_ms() - t0);
	t0 = now_ms();
	EXPECT_EQ(0, wait_ev(kfd, ev, 4, 50));
	EXPECT_LE(45, now_ms() - t0);

	w.fd = sv[0];
	w.delay_ms = 100;
	w.ret = 0;
	ASSERT_EQ(0, pthread_create(&t, NULL, writer_thread, &w));
	t0 = now_ms();
	EXPECT_EQ(0, wait_ev(kfd, ev, 4, WAIT_MS));
	dt = now_ms() - t0;
	pthread_join(t, NULL);
	EXPECT_EQ(1, w.ret);
	EXPECT_GT(WAIT_MS - 500, dt);
	EXPECT_EQ(1, ring_tail(ring));
	ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
	expect_sock_rev(_metadata, &rev, sv[1], KEVENT_REQ_ET);
	kevent_ring_unmap(ring, len);
	close(sv[0]);
	close(sv[1]);
	close(kfd);
}

/* poll() and epoll of the queue say POLLIN while the ring holds an event. */
TEST(poll_and_epoll)
{
	struct epoll_event ee = { .events = EPOLLIN };
	struct kevent_ring *ring;
	struct kevent_ring_event rev;
	struct pollfd pfd;
	int kfd, epfd, sv[2];
	size_t len;

	kfd = kevent_queue_ring(0, 8, &ring, &len);
	ASSERT_LE(0, kfd);
	epfd = epoll_create1(0);
	ASSERT_LE(0, epfd);
	ASSERT_EQ(0, epoll_ctl(epfd, EPOLL_CTL_ADD, kfd, &ee));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, add1(kfd, sock_ev(sv[1], KEVENT_SOCKET_RECV, KEVENT_REQ_ET)));
	pfd.fd = kfd;
	pfd.events = POLLIN;
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	EXPECT_EQ(0, epoll_wait(epfd, &ee, 1, 0));

	ASSERT_EQ(1, write(sv[0], "x", 1));
	pfd.revents = 0;
	ASSERT_EQ(1, poll(&pfd, 1, WAIT_MS));
	EXPECT_EQ(POLLIN, pfd.revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL));
	ASSERT_EQ(1, epoll_wait(epfd, &ee, 1, WAIT_MS));
	EXPECT_TRUE(ee.events & EPOLLIN);
	/* Still there until taken. */
	EXPECT_EQ(1, poll(&pfd, 1, 0));

	ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
	pfd.revents = 0;
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	EXPECT_EQ(0, pfd.revents);
	EXPECT_EQ(0, epoll_wait(epfd, &ee, 1, 0));
	kevent_ring_unmap(ring, len);
	close(sv[0]);
	close(sv[1]);
	close(epfd);
	close(kfd);
}

/*
 * Many consumers: 4 threads take events from a 64-slot ring (and from the
 * ready list, where what finds the ring full goes) while 2000 oneshot timers
 * fire; each timer is seen exactly once.
 */
#define MC_TIMERS	2000
#define MC_THREADS	4
#define MC_BATCH	100
#define MC_UD(id)	(0x7000000000ULL + (id))

static struct {
	int kfd;
	struct kevent_ring *ring;
	long long deadline;
	int seen[MC_TIMERS];
	int total, from_ring, from_list, bad, errors;
} mc;

static void mc_count(__u64 id, __u64 user_data, __u32 type, __u32 event,
		     __u32 ret_flags, __s64 ret_data)
{
	if (id >= MC_TIMERS || user_data != MC_UD(id) || type != KEVENT_TYPE_TIMER ||
	    event != KEVENT_TIMER_FIRED || ret_flags != KEVENT_RET_DONE || ret_data != 1) {
		__atomic_fetch_add(&mc.bad, 1, __ATOMIC_RELAXED);
		return;
	}
	__atomic_fetch_add(&mc.seen[id], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&mc.total, 1, __ATOMIC_RELAXED);
}

static void *mc_consumer(void *arg)
{
	struct __kernel_timespec ts = { .tv_nsec = 20 * 1000000 };
	struct kevent_ring_event rev;
	struct ukevent ev[64];
	int i, n;

	while (__atomic_load_n(&mc.total, __ATOMIC_RELAXED) < MC_TIMERS &&
	       now_ms() < __atomic_load_n(&mc.deadline, __ATOMIC_RELAXED)) {
		if (kevent_ring_pop(mc.ring, &rev)) {
			if (rev.req_flags != KEVENT_REQ_ONESHOT)
				__atomic_fetch_add(&mc.bad, 1, __ATOMIC_RELAXED);
			mc_count(rev.id, rev.user_data, rev.type, rev.event,
				 rev.ret_flags, rev.ret_data);
			__atomic_fetch_add(&mc.from_ring, 1, __ATOMIC_RELAXED);
			continue;
		}
		/* Empty: wait for the ring, and take what overflowed. */
		n = kevent_get_events(mc.kfd, 1, 64, &ts, ev, 0);
		if (n < 0) {
			if (errno != EINTR)
				__atomic_fetch_add(&mc.errors, 1, __ATOMIC_RELAXED);
			continue;
		}
		for (i = 0; i < n; i++)
			mc_count(ev[i].id, ev[i].user_data, ev[i].type, ev[i].event,
				 ev[i].ret_flags, ev[i].ret_data);
		__atomic_fetch_add(&mc.from_list, n, __ATOMIC_RELAXED);
	}
	return NULL;
}

TEST(multi_consumer)
{
	struct ukevent uk[MC_BATCH];
	pthread_t t[MC_THREADS];
	struct kevent_ring_event rev;
	int i, b, r, started = 0, added = 0, wrong = 0;
	size_t len;

	mc.kfd = kevent_queue_ring(0, 64, &mc.ring, &len);
	ASSERT_LE(0, mc.kfd);
	mc.deadline = now_ms() + 20000;
	for (i = 0; i < MC_THREADS; i++)
		if (!pthread_create(&t[i], NULL, mc_consumer, NULL))
			started++;
	/*
	 * 1 to 5 ms from each batch's kevent_ctl(), in bursts: more than 64
	 * at once, so that some find the ring full. Nothing may return from
	 * the test while the threads run: failures are counted.
	 */
	for (b = 0; b < MC_TIMERS && started == MC_THREADS; b += MC_BATCH) {
		for (i = 0; i < MC_BATCH; i++) {
			__u64 id = b + i;

			kevent_prep_timer(&uk[i], id, 1000000 + (id % 5) * 1000000, 0, MC_UD(id));
			kevent_set_flags(&uk[i], KEVENT_REQ_ONESHOT);
		}
		r = kevent_add(mc.kfd, uk, MC_BATCH);
		if (r > 0)
			added += r;
	}
	if (added != MC_TIMERS || started != MC_THREADS)
		__atomic_store_n(&mc.deadline, 0, __ATOMIC_RELAXED);
	for (i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	ASSERT_EQ(MC_THREADS, started);
	ASSERT_EQ(MC_TIMERS, added);

	TH_LOG("%d from the ring, %d from the ready list, overflow %llu", mc.from_ring,
	       mc.from_list, (unsigned long long)ring_overflow(mc.ring));
	EXPECT_EQ(0, mc.bad);
	EXPECT_EQ(0, mc.errors);
	EXPECT_EQ(MC_TIMERS, mc.total);
	for (i = 0; i < MC_TIMERS; i++) {
		if (mc.seen[i] != 1 && !wrong++)
			TH_LOG("timer %d seen %d times", i, mc.seen[i]);
	}
	EXPECT_EQ(0, wrong);
	/* Each event either written into the ring or counted as overflow. */
	EXPECT_EQ((__u64)mc.from_ring, ring_tail(mc.ring));
	EXPECT_EQ((__u64)mc.from_list, ring_overflow(mc.ring));
	EXPECT_EQ(ring_tail(mc.ring), ring_head(mc.ring));
	EXPECT_EQ(0, kevent_ring_pop(mc.ring, &rev));
	EXPECT_EQ(0, get_now(mc.kfd, uk, MC_BATCH));
	/* Every oneshot timer left the queue. */
	for (b = 0; b < MC_TIMERS; b += MC_BATCH) {
		for (i = 0; i < MC_BATCH; i++)
			uk[i] = key(KEVENT_TYPE_TIMER, b + i);
		EXPECT_EQ(0, kevent_remove(mc.kfd, uk, MC_BATCH));
		EXPECT_EQ(-ENOENT, uk[0].ret_data);
	}
	kevent_ring_unmap(mc.ring, len);
	close(mc.kfd);
}

/* The mapping outlives the queue's descriptor. */
TEST(mapping_survives_close)
{
	struct kevent_ring *ring;
	struct kevent_ring_event rev;
	struct ukevent ev[4];
	int kfd, sv[2];
	size_t len;

	kfd = kevent_queue_ring(0, 4, &ring, &len);
	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, add1(kfd, sock_ev(sv[1], KEVENT_SOCKET_RECV, KEVENT_REQ_ET)));
	ASSERT_EQ(1, write(sv[0], "x", 1));
	ASSERT_EQ(0, wait_ev(kfd, ev, 4, WAIT_MS));
	ASSERT_EQ(0, close(kfd));
	EXPECT_EQ(4, ring->entries);
	EXPECT_EQ(1, ring_tail(ring));
	EXPECT_EQ(0, ring_head(ring));
	ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
	expect_sock_rev(_metadata, &rev, sv[1], KEVENT_REQ_ET);
	EXPECT_EQ(1, ring_head(ring));
	EXPECT_EQ(4, slot_seq(ring, 0));
	kevent_ring_unmap(ring, len);
	close(sv[0]);
	close(sv[1]);
}

/* A directory's inode kevent has no level state: the ring. */
TEST(inode_to_ring)
{
	struct kevent_ring *ring;
	struct kevent_ring_event rev;
	struct ukevent ev[4];
	char dir[64], path[128];
	struct stat st;
	int kfd, d;
	size_t len;

	kfd = kevent_queue_ring(0, 8, &ring, &len);
	ASSERT_LE(0, kfd);
	snprintf(dir, sizeof(dir), "/tmp/kevent-ring.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(dir));
	d = open(dir, O_PATH);
	ASSERT_LE(0, d);
	ASSERT_EQ(0, add1(kfd, (struct ukevent){ .user_data = 0x1d0, .id = d,
						.type = KEVENT_TYPE_INODE,
						.event = KEVENT_INODE_CREATE |
							 KEVENT_INODE_REMOVE }));
	snprintf(path, sizeof(path), "%s/file", dir);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	ASSERT_EQ(0, stat(path, &st));
	ASSERT_EQ(0, wait_ev(kfd, ev, 4, WAIT_MS));
	ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
	EXPECT_EQ(0x1d0, rev.user_data);
	EXPECT_EQ((__u64)d, rev.id);
	EXPECT_EQ(KEVENT_TYPE_INODE, rev.type);
	EXPECT_EQ(KEVENT_INODE_CREATE, rev.event);
	EXPECT_EQ(0, rev.req_flags);
	EXPECT_EQ(KEVENT_RET_DONE, rev.ret_flags);
	EXPECT_EQ(st.st_ino, (__u64)rev.ret_data);
	ASSERT_EQ(0, unlink(path));
	ASSERT_EQ(0, wait_ev(kfd, ev, 4, WAIT_MS));
	ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
	EXPECT_EQ(KEVENT_INODE_REMOVE, rev.event);
	EXPECT_EQ(st.st_ino, (__u64)rev.ret_data);
	EXPECT_EQ(0, kevent_ring_pop(ring, &rev));
	EXPECT_EQ(0, get_now(kfd, ev, 4));
	EXPECT_EQ(2, ring_tail(ring));
	kevent_ring_unmap(ring, len);
	close(d);
	rmdir(dir);
	close(kfd);
}

/*
 * AIO completions go to the ring (the request leaves its queue); a broken
 * one, to the ready list. The buffers are static: a request still in flight
 * when a test fails never writes freed memory.
 */
TEST(aio_to_ring)
{
	static char in[64], in4[4], out[] = "hello";
	struct kevent_ring *ring;
	struct kevent_ring_event rev;
	struct ukevent ev[4];
	const long pg = page_size();
	int kfd, sv[2];
	size_t len;
	void *none;

	kfd = kevent_queue_ring(0, 8, &ring, &len);
	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));

	/* A receive waiting for data. */
	ASSERT_EQ(0, aio_recv(kfd, sv[1], in, sizeof(in), 0, 77));
	EXPECT_EQ(0, get_now(kfd, ev, 4));
	EXPECT_EQ(0, ring_tail(ring));
	ASSERT_EQ(5, send(sv[0], "hello", 5, 0));
	ASSERT_EQ(0, wait_tail(kfd, ring, 1, WAIT_MS, &ev[0]))
		TH_LOG("ready list: ret_flags %u ret_data %lld", ev[0].ret_flags,
		       (long long)ev[0].ret_data);
	ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
	EXPECT_EQ(77, rev.user_data);
	EXPECT_EQ((__u64)sv[1], rev.id);
	EXPECT_EQ(KEVENT_TYPE_AIO, rev.type);
	EXPECT_EQ(KEVENT_AIO_RECV, rev.event);
	EXPECT_EQ(0, rev.req_flags);
	EXPECT_EQ(KEVENT_RET_DONE, rev.ret_flags);
	EXPECT_EQ(5, rev.ret_data);
	EXPECT_EQ(0, memcmp(in, "hello", 5));
	/* Completed and written: the request is gone. */
	EXPECT_EQ(-1, kevent_aio_cancel(kfd, sv[1], 77));
	EXPECT_EQ(ENOENT, errno);

	/* WAITALL: one event when the buffer is full. */
	ASSERT_EQ(0, aio_recv(kfd, sv[1], in4, sizeof(in4), KEVENT_REQ_AIO_WAITALL, 79));
	ASSERT_EQ(2, send(sv[0], "ab", 2, 0));
	ASSERT_EQ(2, send(sv[0], "cd", 2, 0));
	ASSERT_EQ(0, wait_tail(kfd, ring, 2, WAIT_MS, NULL));
	ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
	EXPECT_EQ(79, rev.user_data);
	EXPECT_EQ(KEVENT_REQ_AIO_WAITALL, rev.req_flags);
	EXPECT_EQ(4, rev.ret_data);
	EXPECT_EQ(0, memcmp(in4, "abcd", 4));

	/* A send. */
	ASSERT_EQ(0, aio_send(kfd, sv[0], out, 5, 78));
	ASSERT_EQ(0, wait_tail(kfd, ring, 3, WAIT_MS, NULL));
	ASSERT_EQ(1, kevent_ring_pop(ring, &rev));
	EXPECT_EQ(78, rev.user_data);
	EXPECT_EQ((__u64)sv[0], rev.id);
	EXPECT_EQ(KEVENT_AIO_SEND, rev.event);
	EXPECT_EQ(KEVENT_RET_DONE, rev.ret_flags);
	EXPECT_EQ(5, rev.ret_data);
	/* It finished as it was submitted: written without a kevent, its name free. */
	EXPECT_EQ(-1, kevent_aio_cancel(kfd, sv[0], 78));
	EXPECT_EQ(ENOENT, errno);
	ASSERT_EQ(5, recv(sv[1], in, sizeof(in), 0));

	/* A send from memory that cannot be read: broken, the ready list. */
	none = mmap(NULL, pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, none);
	ASSERT_EQ(0, aio_send(kfd, sv[0], none, pg, 80));
	ASSERT_EQ(1, wait_ev(kfd, ev, 4, WAIT_MS));
	EXPECT_EQ(80, ev[0].user_data);
	EXPECT_EQ(KEVENT_TYPE_AIO, ev[0].type);
	EXPECT_EQ(KEVENT_RET_BROKEN, ev[0].ret_flags);
	EXPECT_EQ(-EFAULT, ev[0].ret_data);
	EXPECT_EQ(3, ring_tail(ring));
	EXPECT_EQ(0, ring_overflow(ring));
	EXPECT_EQ(0, kevent_ring_pop(ring, &rev));
	kevent_ring_unmap(ring, len);
	close(sv[0]);
	close(sv[1]);
	close(kfd);
}

TEST_HARNESS_MAIN
