// SPDX-License-Identifier: GPL-2.0
/*
 * kevent network AIO (KEVENT_TYPE_AIO): send, receive and sendfile requests
 * on TCP (IPv4 loopback) and UNIX stream sockets. Data integrity from 1 byte
 * to 16 MiB, many requests on many sockets, ordering per socket and
 * direction, end of file, WAITALL, errors reported in the completion
 * (reset, bad buffer), runs (consecutive requests of one kevent_ctl() on one
 * socket and direction, which the kernel may serve in one socket call: each
 * must still complete as if they had run one after the other),
 * cancellation by REMOVE and by close, the queue closed or its process gone
 * with requests in flight, sendfile, and every error of the kevent_ctl()
 * entry.
 *
 * Every wait is bounded: a request that never completes fails its test
 * instead of hanging it. Buffers of a request that may still be in flight
 * when a test fails are never freed. Needs 127.0.0.1 on lo and a tmpfs
 * (memfd_create(), or /tmp).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/kevent.h>
#include <linux/time_types.h>

#include "../kselftest_harness.h"
#include "kevent_sys.h"	/* libkevent.h: AIO constants under #ifndef */

#define WAIT_MS		20000	/* longest wait for the completions of a step */
#define BIG_WAIT_MS	120000	/* ... for 16 MiB transfers on a slow machine */
#define QUIET_MS	100	/* how long "nothing more comes" is watched */
#define MiB		(1024 * 1024)

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/*
 * Collects up to @n events into @ev, until all @n came or @ms passed.
 * Returns how many came, or -1 if kevent_get_events() failed.
 */
static int collect(int kfd, struct ukevent *ev, int n, int ms)
{
	long long end = now_ms() + ms;
	int got = 0, r;

	while (got < n) {
		long long left = end - now_ms();

		if (left <= 0)
			break;
		r = kevent_wait(kfd, ev + got, 1, n - got, (int)left);
		if (r < 0 && errno != EINTR)
			return -1;
		if (r > 0)
			got += r;
	}
	return got;
}

/* Whether no event comes within @ms. */
static int quiet(int kfd, int ms)
{
	struct ukevent ev;

	return kevent_wait(kfd, &ev, 1, 1, ms) == 0;
}

/* The only event of @ev[0..n) with @user_data, or NULL (none, or several). */
static const struct ukevent *find_ev(const struct ukevent *ev, int n, __u64 user_data)
{
	const struct ukevent *hit = NULL;
	int i;

	for (i = 0; i < n; i++) {
		if (ev[i].user_data != user_data)
			continue;
		if (hit)
			return NULL;
		hit = &ev[i];
	}
	return hit;
}

/* The only event of @ev[0..n) of the request (@fd, @user_data), or NULL. */
static const struct ukevent *find_req(const struct ukevent *ev, int n, int fd,
				      __u64 user_data)
{
	const struct ukevent *hit = NULL;
	int i;

	for (i = 0; i < n; i++) {
		if (ev[i].user_data != user_data || ev[i].id != (__u64)fd)
			continue;
		if (hit)
			return NULL;
		hit = &ev[i];
	}
	return hit;
}

/* Expects @e to be a completion of an AIO request on @fd: @op, @bytes. */
static void expect_done(struct __test_metadata *_metadata, const struct ukevent *e,
			int fd, __u32 op, long long bytes)
{
	ASSERT_NE(NULL, e);
	EXPECT_EQ(KEVENT_TYPE_AIO, e->type);
	EXPECT_EQ((__u64)fd, e->id);
	EXPECT_EQ(op, e->event);
	EXPECT_EQ(KEVENT_RET_DONE, e->ret_flags);
	EXPECT_EQ(bytes, e->ret_data);
	EXPECT_EQ(bytes, kevent_aio_result(e));
}

/* Expects @e to report an AIO request on @fd as failed with @err. */
static void expect_broken(struct __test_metadata *_metadata, const struct ukevent *e,
			  int fd, int err)
{
	ASSERT_NE(NULL, e);
	EXPECT_EQ(KEVENT_TYPE_AIO, e->type);
	EXPECT_EQ((__u64)fd, e->id);
	EXPECT_EQ(KEVENT_RET_BROKEN, e->ret_flags);
	EXPECT_EQ(-err, e->ret_data);
	EXPECT_EQ(-err, kevent_aio_result(e));
}

static void fill(unsigned char *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 131 + seed * 17 + (i >> 9) + (i >> 17));
}

/* A buffer of @len bytes filled with pattern @seed; never NULL. */
static unsigned char *pattern(size_t len, unsigned int seed)
{
	unsigned char *p = malloc(len ? len : 1);

	if (!p)
		abort();
	fill(p, len, seed);
	return p;
}

/* A zeroed buffer of @len bytes; never NULL. */
static unsigned char *zeroed(size_t len)
{
	unsigned char *p = calloc(1, len ? len : 1);

	if (!p)
		abort();
	return p;
}

/*
 * A buffer of @len bytes, every page written (a send pins its pages: not
 * the shared zero page of untouched memory); never NULL.
 */
static unsigned char *filled(size_t len)
{
	unsigned char *p = malloc(len ? len : 1);

	if (!p)
		abort();
	memset(p, 0x5a, len);
	return p;
}

/* Reads exactly @len bytes, waiting at most @ms for each piece; returns the bytes read. */
static size_t read_full(int fd, void *buf, size_t len, int ms)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, ms) <= 0)
			break;
		r = recv(fd, (char *)buf + got, len - got, MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			break;
		got += r;
	}
	return got;
}

/*
 * Sends @msg on @s and expects it, alone, on @r after a pause in which a
 * receive request still alive by mistake would have taken it.
 */
static void expect_own_data(struct __test_metadata *_metadata, int s, int r, const char *msg)
{
	size_t len = strlen(msg);
	char got[64];

	ASSERT_GT(sizeof(got), len);
	ASSERT_EQ((ssize_t)len, send(s, msg, len, 0));
	usleep(100000);
	ASSERT_EQ(len, read_full(r, got, len, WAIT_MS)) TH_LOG("\"%s\" lost", msg);
	EXPECT_EQ(0, memcmp(got, msg, len));
}

/* Reads and drops what arrives on @fd until nothing came for @ms; returns the bytes. */
static size_t drain_quiet(int fd, int ms)
{
	static char buf[65536];
	size_t total = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, ms) <= 0)
			return total;
		r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			return total;
		total += r;
	}
}

/* Whether @fd holds at least @len bytes to read within @ms (FIONREAD). */
static int wait_inq(int fd, size_t len, int ms)
{
	long long end = now_ms() + ms;
	int n;

	for (;;) {
		if (ioctl(fd, FIONREAD, &n))
			return 0;
		if (n >= 0 && (size_t)n >= len)
			return 1;
		if (now_ms() >= end)
			return 0;
		usleep(1000);
	}
}

/* Whether the end of the stream reached @fd (its peer shut down writing) within @ms. */
static int wait_rdhup(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };
	long long end = now_ms() + ms;

	while (now_ms() < end) {
		p.revents = 0;
		if (poll(&p, 1, (int)(end - now_ms())) > 0 && (p.revents & POLLRDHUP))
			return 1;
	}
	return 0;
}

/*
 * Sends @len bytes of @data on @fd with send(), in pieces of 10, 5000, 1
 * and 8000 bytes, then the rest in one. Returns 0, or -1 if a send fell short.
 */
static int send_pieces(int fd, const unsigned char *data, size_t len)
{
	static const size_t piece[] = { 10, 5000, 1, 8000, (size_t)-1 };
	size_t i, n, off = 0;

	for (i = 0; off < len && i < ARRAY_SIZE(piece); i++) {
		n = len - off < piece[i] ? len - off : piece[i];
		if (send(fd, data + off, n, 0) != (ssize_t)n)
			return -1;
		off += n;
	}
	return 0;
}

/*
 * A page of address space with nothing mapped: a hole between two
 * mappings, which no larger mapping reuses. Never NULL.
 */
static unsigned char *unmapped_page(void)
{
	const size_t pg = getpagesize();
	unsigned char *p = mmap(NULL, 3 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED || munmap(p + pg, pg))
		abort();
	return p + pg;
}

/* A connected TCP pair over 127.0.0.1. */
static int tcp_pair(int sv[2])
{
	struct sockaddr_in a = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	unsigned short port;
	int l = tcp_listener(&port);

	if (l < 0)
		return -1;
	a.sin_port = htons(port);
	sv[0] = socket(AF_INET, SOCK_STREAM, 0);
	if (sv[0] < 0 || connect(sv[0], (struct sockaddr *)&a, sizeof(a))) {
		close(l);
		return -1;
	}
	sv[1] = accept(l, NULL, NULL);
	close(l);
	return sv[1] < 0 ? -1 : 0;
}

/* A connected stream pair: TCP over 127.0.0.1 (AF_INET) or UNIX. */
static int stream_pair(int family, int sv[2])
{
	if (family == AF_INET)
		return tcp_pair(sv);
	return socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
}

/* A regular file on tmpfs with @len bytes of pattern @seed. */
static int tmpfs_file(size_t len, unsigned int seed)
{
	unsigned char *data = pattern(len, seed);
	char path[] = "/tmp/kevent-aio.XXXXXX";
	int fd;

	fd = memfd_create("kevent-aio", MFD_CLOEXEC);
	if (fd < 0) {
		fd = mkstemp(path);
		if (fd >= 0)
			unlink(path);
	}
	if (fd >= 0 && write(fd, data, len) != (ssize_t)len) {
		close(fd);
		fd = -1;
	}
	free(data);
	return fd;
}

/*
 * Sends @len bytes from @s to @r through one queue, with one WAITALL
 * receive, or (@waitall 0) with receives submitted one after the other until
 * everything arrived, each completing with what it got. Checks the data.
 */
static void round_trip(struct __test_metadata *_metadata, int kfd, int s, int r,
		       size_t len, int waitall, int ms)
{
	unsigned char *out = pattern(len, (unsigned int)len + waitall);
	unsigned char *in = zeroed(len);
	struct ukevent ev[2];
	int sent = 0, nrecv = 0;
	size_t off = 0;
	long long end;

	if (waitall) {
		ASSERT_EQ(0, aio_recv(kfd, r, in, len, KEVENT_REQ_AIO_WAITALL, 2));
		ASSERT_EQ(0, aio_send(kfd, s, out, len, 1));
		ASSERT_EQ(2, collect(kfd, ev, 2, ms));
		expect_done(_metadata, find_ev(ev, 2, 1), s, KEVENT_AIO_SEND, len);
		expect_done(_metadata, find_ev(ev, 2, 2), r, KEVENT_AIO_RECV, len);
	} else {
		ASSERT_EQ(0, aio_send(kfd, s, out, len, 1));
		ASSERT_EQ(0, aio_recv(kfd, r, in, len, 0, 2));
		end = now_ms() + ms;
		while (!sent || off < len) {
			ASSERT_LT(now_ms(), end) TH_LOG("%zu of %zu bytes", off, len);
			ASSERT_EQ(1, collect(kfd, ev, 1, (int)(end - now_ms())));
			if (ev[0].user_data == 1) {
				ASSERT_FALSE(sent);
				expect_done(_metadata, &ev[0], s, KEVENT_AIO_SEND, len);
				sent = 1;
				continue;
			}
			/* Each receive gets more than nothing and no more than asked. */
			ASSERT_EQ(2 + nrecv, ev[0].user_data);
			ASSERT_EQ(KEVENT_RET_DONE, ev[0].ret_flags);
			ASSERT_LT(0, ev[0].ret_data);
			ASSERT_GE((long long)(len - off), ev[0].ret_data);
			off += ev[0].ret_data;
			nrecv++;
			if (off < len)
				ASSERT_EQ(0, aio_recv(kfd, r, in + off, len - off, 0, 2 + nrecv));
		}
	}
	EXPECT_EQ(0, memcmp(out, in, len));
	EXPECT_TRUE(quiet(kfd, 0));
	free(out);
	free(in);
}

/* Whether a new queue carries a UNIX round trip: nothing broke. */
static void fresh_queue_works(struct __test_metadata *_metadata)
{
	int kfd = kevent_init(0), sv[2];

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	round_trip(_metadata, kfd, sv[0], sv[1], 4096, 1, WAIT_MS);
	close(sv[0]);
	close(sv[1]);
	close(kfd);
}

FIXTURE(stream) {
	int kfd;
	int s, r;	/* s sends to r (and r to s) */
};

FIXTURE_VARIANT(stream) {
	int family;
};

FIXTURE_VARIANT_ADD(stream, tcp) {
	.family = AF_INET,
};

FIXTURE_VARIANT_ADD(stream, unix) {
	.family = AF_UNIX,
};

FIXTURE_SETUP(stream)
{
	int sv[2];

	self->s = self->r = -1;
	/* A send to a closed peer fails with EPIPE: no signal wanted. */
	signal(SIGPIPE, SIG_IGN);
	self->kfd = kevent_init(0);
	ASSERT_LE(0, self->kfd);
	ASSERT_EQ(0, stream_pair(variant->family, sv));
	self->s = sv[0];
	self->r = sv[1];
}

FIXTURE_TEARDOWN(stream)
{
	if (self->s >= 0)
		close(self->s);
	if (self->r >= 0)
		close(self->r);
	close(self->kfd);
}

TEST_F(stream, size_1)
{
	round_trip(_metadata, self->kfd, self->s, self->r, 1, 1, WAIT_MS);
	round_trip(_metadata, self->kfd, self->s, self->r, 1, 0, WAIT_MS);
}

TEST_F(stream, size_4k)
{
	round_trip(_metadata, self->kfd, self->s, self->r, 4096, 1, WAIT_MS);
	round_trip(_metadata, self->kfd, self->s, self->r, 4096, 0, WAIT_MS);
}

TEST_F(stream, size_64k)
{
	round_trip(_metadata, self->kfd, self->s, self->r, 64 * 1024, 1, WAIT_MS);
	round_trip(_metadata, self->kfd, self->s, self->r, 64 * 1024, 0, WAIT_MS);
}

TEST_F_TIMEOUT(stream, size_1m, 120)
{
	round_trip(_metadata, self->kfd, self->s, self->r, MiB, 1, BIG_WAIT_MS / 2);
	round_trip(_metadata, self->kfd, self->s, self->r, MiB, 0, BIG_WAIT_MS / 2);
}

TEST_F_TIMEOUT(stream, size_16m, 300)
{
	round_trip(_metadata, self->kfd, self->s, self->r, 16 * MiB, 1, BIG_WAIT_MS);
	round_trip(_metadata, self->kfd, self->s, self->r, 16 * MiB, 0, BIG_WAIT_MS);
}

/* Both directions of one socket at once: they do not wait for each other. */
TEST_F_TIMEOUT(stream, full_duplex, 120)
{
	size_t len = MiB;
	unsigned char *a = pattern(len, 1), *b = pattern(len, 2);
	unsigned char *at_r = zeroed(len), *at_s = zeroed(len);
	struct ukevent uk[4], ev[4];

	kevent_prep_aio_recv(&uk[0], self->r, at_r, len, KEVENT_REQ_AIO_WAITALL, 1);
	kevent_prep_aio_recv(&uk[1], self->s, at_s, len, KEVENT_REQ_AIO_WAITALL, 2);
	kevent_prep_aio_send(&uk[2], self->s, a, len, 3);
	kevent_prep_aio_send(&uk[3], self->r, b, len, 4);
	ASSERT_EQ(4, kevent_add(self->kfd, uk, 4));
	ASSERT_EQ(4, collect(self->kfd, ev, 4, BIG_WAIT_MS / 2));
	expect_done(_metadata, find_ev(ev, 4, 1), self->r, KEVENT_AIO_RECV, len);
	expect_done(_metadata, find_ev(ev, 4, 2), self->s, KEVENT_AIO_RECV, len);
	expect_done(_metadata, find_ev(ev, 4, 3), self->s, KEVENT_AIO_SEND, len);
	expect_done(_metadata, find_ev(ev, 4, 4), self->r, KEVENT_AIO_SEND, len);
	EXPECT_EQ(0, memcmp(a, at_r, len));
	EXPECT_EQ(0, memcmp(b, at_s, len));
	free(a);
	free(b);
	free(at_r);
	free(at_s);
}

#define NORDER 8

/*
 * Requests on one socket run in submission order per direction: WAITALL
 * receive k gets exactly the bytes of send k; receives without WAITALL,
 * taken in submission order, see a prefix of the stream.
 */
TEST_F(stream, order_per_direction)
{
	unsigned char *out[NORDER], *in[NORDER], *stream, *got;
	struct ukevent uk[NORDER * 2], ev[NORDER * 2];
	size_t len[NORDER], total = 0, off = 0, piece = 2000;
	const struct ukevent *e;
	int k;

	for (k = 0; k < NORDER; k++) {
		len[k] = 1000 + 777 * k;
		out[k] = pattern(len[k], 100 + k);
		in[k] = zeroed(len[k]);
		kevent_prep_aio_recv(&uk[k], self->r, in[k], len[k],
				     KEVENT_REQ_AIO_WAITALL, 100 + k);
		kevent_prep_aio_send(&uk[NORDER + k], self->s, out[k], len[k], k);
	}
	/* The receives first, in one batch; then the sends, in another. */
	ASSERT_EQ(NORDER, kevent_add(self->kfd, uk, NORDER));
	ASSERT_EQ(NORDER, kevent_add(self->kfd, uk + NORDER, NORDER));
	ASSERT_EQ(2 * NORDER, collect(self->kfd, ev, 2 * NORDER, WAIT_MS));
	for (k = 0; k < NORDER; k++) {
		expect_done(_metadata, find_ev(ev, 2 * NORDER, k), self->s,
			    KEVENT_AIO_SEND, len[k]);
		expect_done(_metadata, find_ev(ev, 2 * NORDER, 100 + k), self->r,
			    KEVENT_AIO_RECV, len[k]);
		EXPECT_EQ(0, memcmp(out[k], in[k], len[k])) TH_LOG("request %d", k);
	}

	/* Sends first, then receives of at most one send's size each. */
	for (k = 0; k < 4; k++) {
		kevent_prep_aio_send(&uk[k], self->s, out[k], len[k], 200 + k);
		total += len[k];
	}
	stream = zeroed(total);
	got = zeroed(4 * piece);
	for (k = 0; k < 4; k++) {
		memcpy(stream + off, out[k], len[k]);
		off += len[k];
		kevent_prep_aio_recv(&uk[4 + k], self->r, got + k * piece, piece, 0, 300 + k);
	}
	/*
	 * 8662 bytes sent: 3 receives of 2000 bytes cannot take them all, so
	 * each of the 4 gets some (the receives run in order).
	 */
	ASSERT_EQ(4, kevent_add(self->kfd, uk, 4));
	ASSERT_EQ(4, kevent_add(self->kfd, uk + 4, 4));
	ASSERT_EQ(8, collect(self->kfd, ev, 8, WAIT_MS));
	off = 0;
	for (k = 0; k < 4; k++) {
		expect_done(_metadata, find_ev(ev, 8, 200 + k), self->s, KEVENT_AIO_SEND, len[k]);
		e = find_ev(ev, 8, 300 + k);
		ASSERT_NE(NULL, e);
		ASSERT_EQ(KEVENT_RET_DONE, e->ret_flags);
		ASSERT_LT(0, e->ret_data);
		ASSERT_GE((long long)piece, e->ret_data);
		EXPECT_EQ(0, memcmp(stream + off, got + k * piece, e->ret_data))
			TH_LOG("receive %d: %lld bytes at %zu", k, (long long)e->ret_data, off);
		off += e->ret_data;
	}
	/* The rest is still in the socket, next in line. */
	ASSERT_GE(total, off);
	ASSERT_EQ(total - off, read_full(self->r, got, total - off, WAIT_MS));
	EXPECT_EQ(0, memcmp(stream + off, got, total - off));
	EXPECT_TRUE(quiet(self->kfd, 0));
	for (k = 0; k < NORDER; k++) {
		free(out[k]);
		free(in[k]);
	}
	free(stream);
	free(got);
}

#define NCORK	4
#define CORK_LEN	100

/*
 * Consecutive sends on one socket in one kevent_ctl() are corked together
 * (MSG_MORE, all but the last), and whatever becomes of the run's last entry
 * the run is pushed out: the peer gets every byte the completed sends queued,
 * in order, when the last send of the run completes (a), fails at its first
 * byte (b: a bad buffer, reported in its completion), or is refused by
 * kevent_ctl() (c: a duplicate request, never started).
 */
TEST_F(stream, batch_of_sends)
{
	unsigned char *out = pattern(NCORK * CORK_LEN, 7), got[NCORK * CORK_LEN];
	struct ukevent uk[NCORK + 1], ev[NCORK + 1];
	const size_t all = NCORK * CORK_LEN;
	int k, last;

	for (last = 0; last < 3; last++) {
		for (k = 0; k < NCORK; k++)
			kevent_prep_aio_send(&uk[k], self->s, out + k * CORK_LEN, CORK_LEN,
					     100 * last + k);
		if (last == 0)
			ASSERT_EQ(NCORK, kevent_add(self->kfd, uk, NCORK));
		if (last == 1) {
			kevent_prep_aio_send(&uk[NCORK], self->s, NULL, CORK_LEN, 100 + NCORK);
			ASSERT_EQ(NCORK + 1, kevent_add(self->kfd, uk, NCORK + 1));
		}
		if (last == 2) {
			/* The same key as the first entry: EEXIST, never started. */
			kevent_prep_aio_send(&uk[NCORK], self->s, out, CORK_LEN, 200);
			ASSERT_EQ(NCORK, kevent_add(self->kfd, uk, NCORK + 1));
			EXPECT_EQ(KEVENT_RET_BROKEN, uk[NCORK].ret_flags);
			EXPECT_EQ(-EEXIST, uk[NCORK].ret_data);
		}
		ASSERT_EQ(all, read_full(self->r, got, all, WAIT_MS))
			TH_LOG("round %d: sends held back", last);
		EXPECT_EQ(0, memcmp(out, got, all));
		ASSERT_EQ(NCORK + (last == 1), collect(self->kfd, ev, NCORK + (last == 1), WAIT_MS));
		for (k = 0; k < NCORK; k++)
			expect_done(_metadata, find_ev(ev, NCORK + (last == 1), 100 * last + k),
				    self->s, KEVENT_AIO_SEND, CORK_LEN);
		if (last == 1)
			expect_broken(_metadata, find_ev(ev, NCORK + 1, 100 + NCORK), self->s,
				      EFAULT);
		EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
	}
	EXPECT_EQ(0, drain_quiet(self->r, QUIET_MS));
	free(out);
}

/* The receives of recv_run_fills_in_order, in submission order. */
static const struct {
	size_t len;
	unsigned int flags;
} recv_run[] = {
	{ 1, 0 },
	{ 4096, KEVENT_REQ_AIO_WAITALL },
	{ 3, 0 },
	{ 16384, KEVENT_REQ_AIO_WAITALL },
	{ 100, 0 },
	{ 7000, KEVENT_REQ_AIO_WAITALL },
	{ 2000, 0 },
	{ 65536, KEVENT_REQ_AIO_WAITALL },
	/* More than a run takes (8): two more, after a run's end. */
	{ 500, 0 },
	{ 3000, KEVENT_REQ_AIO_WAITALL },
};

#define NRECV_RUN	ARRAY_SIZE(recv_run)

/*
 * A batch of receives of different sizes on one socket, with and without
 * WAITALL: the bytes of the stream land in the buffers in submission order,
 * each receive taking the next ones. The data in the socket at submission
 * (sent in 5 pieces) reaches some of them: those it fills complete, one
 * without WAITALL that it fills in part completes with what it got, one
 * with WAITALL waits with it; those after wait for more, which completes
 * them. Three cases: the data ends 40 bytes into receive 4 (no WAITALL),
 * 10000 bytes into receive 3 (WAITALL), or there is none.
 */
TEST_F(stream, recv_run_fills_in_order)
{
	static const struct {
		size_t first;	/* bytes in the socket at submission */
		size_t done;	/* receives they complete */
	} cases[] = {
		{ 1 + 4096 + 3 + 16384 + 40, 5 },
		{ 1 + 4096 + 3 + 10000, 3 },
		{ 0, 0 },
	};
	unsigned char *stream, *rest, *in[NRECV_RUN];
	struct ukevent uk[NRECV_RUN], ev[NRECV_RUN];
	size_t total = 0, first, done, off, n, k, c;
	const struct ukevent *e;

	for (k = 0; k < NRECV_RUN; k++)
		total += recv_run[k].len;
	stream = pattern(total, 77);
	rest = zeroed(total);
	for (c = 0; c < ARRAY_SIZE(cases); c++) {
		first = cases[c].first;
		done = cases[c].done;
		for (k = 0; k < NRECV_RUN; k++) {
			in[k] = zeroed(recv_run[k].len);
			kevent_prep_aio_recv(&uk[k], self->r, in[k], recv_run[k].len,
					     recv_run[k].flags, 100 * c + k);
		}
		ASSERT_EQ(0, send_pieces(self->s, stream, first));
		/* All of it in the socket: what each receive takes is known. */
		ASSERT_TRUE(wait_inq(self->r, first, WAIT_MS)) TH_LOG("case %zu", c);
		ASSERT_EQ(NRECV_RUN, kevent_add(self->kfd, uk, NRECV_RUN));
		ASSERT_EQ(done, collect(self->kfd, ev, done, WAIT_MS)) TH_LOG("case %zu", c);
		EXPECT_TRUE(quiet(self->kfd, QUIET_MS))
			TH_LOG("case %zu: a receive completed without its data", c);
		for (k = 0, off = 0; k < done; k++) {
			n = recv_run[k].len < first - off ? recv_run[k].len : first - off;
			expect_done(_metadata, find_ev(ev, done, 100 * c + k), self->r,
				    KEVENT_AIO_RECV, n);
			off += n;
		}
		ASSERT_GE(first, off);

		/* The rest of the stream completes the others. */
		ASSERT_EQ(0, send_pieces(self->s, stream + first, total - first));
		ASSERT_EQ(NRECV_RUN - done,
			  collect(self->kfd, ev + done, NRECV_RUN - done, WAIT_MS))
			TH_LOG("case %zu", c);
		for (k = 0, off = 0; k < NRECV_RUN; k++) {
			e = find_ev(ev, NRECV_RUN, 100 * c + k);
			ASSERT_NE(NULL, e) TH_LOG("case %zu receive %zu", c, k);
			ASSERT_EQ(KEVENT_RET_DONE, e->ret_flags)
				TH_LOG("case %zu receive %zu: %lld", c, k, (long long)e->ret_data);
			if (recv_run[k].flags & KEVENT_REQ_AIO_WAITALL) {
				ASSERT_EQ(recv_run[k].len, e->ret_data)
					TH_LOG("case %zu receive %zu", c, k);
			} else {
				ASSERT_LT(0, e->ret_data) TH_LOG("case %zu receive %zu", c, k);
				ASSERT_GE((long long)recv_run[k].len, e->ret_data)
					TH_LOG("case %zu receive %zu", c, k);
			}
			n = e->ret_data;
			expect_done(_metadata, e, self->r, KEVENT_AIO_RECV, n);
			EXPECT_EQ(0, memcmp(in[k], stream + off, n))
				TH_LOG("case %zu receive %zu: %zu bytes at %zu", c, k, n, off);
			off += n;
		}
		/* What they did not take is in the socket, next in line. */
		ASSERT_GE(total, off);
		ASSERT_EQ(total - off, read_full(self->r, rest, total - off, WAIT_MS));
		EXPECT_EQ(0, memcmp(rest, stream + off, total - off)) TH_LOG("case %zu", c);
		EXPECT_EQ(0, drain_quiet(self->r, 0));
		EXPECT_TRUE(quiet(self->kfd, 0));
		for (k = 0; k < NRECV_RUN; k++)
			free(in[k]);
	}
	free(stream);
	free(rest);
}

#define NSEND_RUN	12

/*
 * A batch of sends of different sizes on one socket: each completes with
 * its length, and the peer gets their bytes in submission order and nothing
 * else. The send buffer is made smaller than the large ones, so that the
 * batch cannot be queued at once: the large one first, in the middle, with
 * 8 sends before it (past the end of a run) or behind a send still waiting
 * for room (the batch queued behind it).
 */
TEST_F_TIMEOUT(stream, send_run_in_order, 120)
{
	static const struct {
		size_t lead;		/* a send submitted before the batch, or 0 */
		size_t len[NSEND_RUN];	/* the batch, up to the first 0 */
	} rounds[] = {
		{ 0, { 1, 3, 4096, 100, 256 * 1024, 7, 1000, 65536 } },
		{ 0, { 256 * 1024, 1, 65536, 3, 4096, 7, 100, 1000 } },
		{ 0, { 1, 2, 3, 4, 5, 6, 7, 8, 256 * 1024, 9, 10, 11 } },
		{ MiB, { 1, 3, 4096, 100, 256 * 1024, 7, 1000, 65536 } },
	};
	unsigned char *out[NSEND_RUN], *lead = NULL, *got;
	struct ukevent uk[NSEND_RUN], ev[NSEND_RUN + 1];
	size_t total, off, round, n, k, len;
	int sndbuf = 64 * 1024;	/* doubled by the kernel: 128 KiB */

	ASSERT_EQ(0, setsockopt(self->s, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)));
	for (round = 0; round < ARRAY_SIZE(rounds); round++) {
		total = rounds[round].lead;
		for (n = 0; n < NSEND_RUN && rounds[round].len[n]; n++) {
			len = rounds[round].len[n];
			out[n] = pattern(len, 10 * round + n);
			kevent_prep_aio_send(&uk[n], self->s, out[n], len, 100 * round + n);
			total += len;
		}
		got = zeroed(total);
		if (rounds[round].lead) {
			lead = pattern(rounds[round].lead, 99);
			ASSERT_EQ(0, aio_send(self->kfd, self->s, lead, rounds[round].lead, 99));
			/* It waits for room: the batch is queued behind it. */
			EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
		}
		ASSERT_EQ(n, kevent_add(self->kfd, uk, n));
		ASSERT_EQ(total, read_full(self->r, got, total, WAIT_MS))
			TH_LOG("round %zu: sends held back", round);
		ASSERT_EQ(n + !!lead, collect(self->kfd, ev, n + !!lead, WAIT_MS))
			TH_LOG("round %zu", round);
		off = 0;
		if (lead) {
			expect_done(_metadata, find_ev(ev, n + 1, 99), self->s, KEVENT_AIO_SEND,
				    rounds[round].lead);
			EXPECT_EQ(0, memcmp(got, lead, rounds[round].lead));
			off = rounds[round].lead;
		}
		for (k = 0; k < n; k++) {
			len = rounds[round].len[k];
			expect_done(_metadata, find_ev(ev, n + !!lead, 100 * round + k), self->s,
				    KEVENT_AIO_SEND, len);
			EXPECT_EQ(0, memcmp(got + off, out[k], len))
				TH_LOG("round %zu send %zu: %zu bytes at %zu", round, k, len, off);
			off += len;
		}
		EXPECT_EQ(0, drain_quiet(self->r, QUIET_MS)) TH_LOG("round %zu", round);
		EXPECT_TRUE(quiet(self->kfd, 0));
		for (k = 0; k < n; k++)
			free(out[k]);
		free(lead);
		lead = NULL;
		free(got);
	}
}

/*
 * A name already taken in a run of receives: the entry is refused with
 * EEXIST, takes no data and writes nothing; the entries around it are
 * requests as if it were not there. The name is that of the entry before
 * it in the batch (the second or the third of three), or of a request
 * submitted before the batch (finished and kept, when the data is there at
 * submission; waiting, when it comes after).
 */
TEST_F(stream, run_with_duplicate_user_data)
{
	const size_t len = 10, all = 40;
	unsigned char *stream = pattern(all, 5), in[4][10], got[40];
	struct ukevent uk[3], ev[3];
	int data_first, c, k, refused, ngood, good[3];
	__u64 ud, ud_k, earlier;
	size_t off;

	for (data_first = 1; data_first >= 0; data_first--) {
		/* c 0, 1: entry c + 1 repeats entry c's name; c 2: entry 1 an earlier one's. */
		for (c = 0; c < 3; c++) {
			ud = 1000 * !data_first + 100 * c;
			earlier = ud + 9;
			refused = c == 2 ? 1 : c + 1;
			memset(in, 0xee, sizeof(in));
			ngood = 0;
			if (data_first) {
				ASSERT_EQ(all, send(self->s, stream, all, 0));
				ASSERT_TRUE(wait_inq(self->r, all, WAIT_MS));
			}
			if (c == 2) {
				ASSERT_EQ(0, aio_recv(self->kfd, self->r, in[3], len, 0, earlier));
				good[ngood++] = 3;
			}
			for (k = 0; k < 3; k++) {
				kevent_prep_aio_recv(&uk[k], self->r, in[k], len,
						     k & 1 ? KEVENT_REQ_AIO_WAITALL : 0, ud + k);
				if (k != refused)
					good[ngood++] = k;
			}
			uk[refused].user_data = c == 2 ? earlier : ud + c;
			ASSERT_EQ(2, kevent_add(self->kfd, uk, 3))
				TH_LOG("data_first %d case %d", data_first, c);
			for (k = 0; k < 3; k++) {
				if (k != refused) {
					EXPECT_EQ(0, kevent_result(&uk[k]))
						TH_LOG("data_first %d case %d entry %d",
						       data_first, c, k);
					continue;
				}
				EXPECT_EQ(KEVENT_RET_BROKEN, uk[k].ret_flags);
				EXPECT_EQ(-EEXIST, uk[k].ret_data)
					TH_LOG("data_first %d case %d", data_first, c);
			}
			if (!data_first) {
				EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
				ASSERT_EQ(all, send(self->s, stream, all, 0));
			}
			/* Each request takes the next 10 bytes, in submission order. */
			ASSERT_EQ(ngood, collect(self->kfd, ev, ngood, WAIT_MS));
			for (k = 0, off = 0; k < ngood; k++, off += len) {
				ud_k = good[k] == 3 ? earlier : ud + good[k];
				expect_done(_metadata, find_ev(ev, ngood, ud_k), self->r,
					    KEVENT_AIO_RECV, len);
				EXPECT_EQ(0, memcmp(in[good[k]], stream + off, len))
					TH_LOG("data_first %d case %d request %d",
					       data_first, c, good[k]);
			}
			/* The refused entry's buffer is untouched; the rest is in the socket. */
			for (k = 0; k < (int)len; k++)
				ASSERT_EQ(0xee, in[refused][k]);
			ASSERT_EQ(all - off, read_full(self->r, got, all - off, WAIT_MS));
			EXPECT_EQ(0, memcmp(got, stream + off, all - off));
			EXPECT_EQ(0, drain_quiet(self->r, 0));
			EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
		}
	}
	free(stream);
}

TEST_F(stream, recv_at_eof)
{
	char a[16], b[16];
	struct ukevent ev[2];

	ASSERT_EQ(0, aio_recv(self->kfd, self->r, a, sizeof(a), 0, 1));
	EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
	ASSERT_EQ(0, shutdown(self->s, SHUT_WR));
	/* Pending at the end of file: completes with 0. */
	ASSERT_EQ(1, collect(self->kfd, ev, 1, WAIT_MS));
	EXPECT_EQ(1, ev[0].user_data);
	expect_done(_metadata, &ev[0], self->r, KEVENT_AIO_RECV, 0);
	/* Submitted after it, with or without WAITALL: 0 at once. */
	ASSERT_EQ(0, aio_recv(self->kfd, self->r, a, sizeof(a), 0, 2));
	ASSERT_EQ(0, aio_recv(self->kfd, self->r, b, sizeof(b), KEVENT_REQ_AIO_WAITALL, 3));
	ASSERT_EQ(2, collect(self->kfd, ev, 2, WAIT_MS));
	expect_done(_metadata, find_ev(ev, 2, 2), self->r, KEVENT_AIO_RECV, 0);
	expect_done(_metadata, find_ev(ev, 2, 3), self->r, KEVENT_AIO_RECV, 0);
	EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
}

/*
 * A run of receives that meets the end of the stream: the first gets the
 * 10 bytes sent before it, those after it complete with 0, with WAITALL or
 * not. With the data and the end there at submission (from s to r), or
 * coming after it (from r to s).
 */
TEST_F(stream, recv_run_at_eof)
{
	static const unsigned int flags[4] = { 0, 0, KEVENT_REQ_AIO_WAITALL, 0 };
	unsigned char out[10], in[4][64];
	struct ukevent uk[4], ev[4];
	int data_first, from, to, k;

	fill(out, sizeof(out), 3);
	for (data_first = 1; data_first >= 0; data_first--) {
		from = data_first ? self->s : self->r;
		to = data_first ? self->r : self->s;
		memset(in, 0, sizeof(in));
		for (k = 0; k < 4; k++)
			kevent_prep_aio_recv(&uk[k], to, in[k], sizeof(in[k]), flags[k],
					     10 * data_first + k);
		if (data_first) {
			ASSERT_EQ(sizeof(out), send(from, out, sizeof(out), 0));
			ASSERT_EQ(0, shutdown(from, SHUT_WR));
			ASSERT_TRUE(wait_rdhup(to, WAIT_MS));
		}
		ASSERT_EQ(4, kevent_add(self->kfd, uk, 4));
		if (!data_first) {
			EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
			ASSERT_EQ(sizeof(out), send(from, out, sizeof(out), 0));
			ASSERT_EQ(0, shutdown(from, SHUT_WR));
		}
		ASSERT_EQ(4, collect(self->kfd, ev, 4, WAIT_MS))
			TH_LOG("data_first %d", data_first);
		expect_done(_metadata, find_ev(ev, 4, 10 * data_first), to, KEVENT_AIO_RECV,
			    sizeof(out));
		EXPECT_EQ(0, memcmp(in[0], out, sizeof(out)));
		for (k = 1; k < 4; k++)
			expect_done(_metadata, find_ev(ev, 4, 10 * data_first + k), to,
				    KEVENT_AIO_RECV, 0);
		EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
	}
}

TEST_F(stream, waitall)
{
	unsigned char out[1000], in[1000];
	struct ukevent ev[2];
	long long n;

	fill(out, sizeof(out), 7);
	/* Without WAITALL: as soon as some data arrived. */
	memset(in, 0, sizeof(in));
	ASSERT_EQ(0, aio_recv(self->kfd, self->r, in, sizeof(in), 0, 1));
	ASSERT_EQ(300, send(self->s, out, 300, 0));
	ASSERT_EQ(1, collect(self->kfd, ev, 1, WAIT_MS));
	ASSERT_EQ(KEVENT_RET_DONE, ev[0].ret_flags);
	n = ev[0].ret_data;
	ASSERT_LT(0, n);
	ASSERT_GE(300, n);
	ASSERT_EQ((size_t)(300 - n), read_full(self->r, in + n, 300 - n, WAIT_MS));
	EXPECT_EQ(0, memcmp(out, in, 300));

	/* WAITALL: not before the full length arrived. */
	memset(in, 0, sizeof(in));
	ASSERT_EQ(0, aio_recv(self->kfd, self->r, in, sizeof(in), KEVENT_REQ_AIO_WAITALL, 2));
	ASSERT_EQ(300, send(self->s, out, 300, 0));
	EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
	ASSERT_EQ(400, send(self->s, out + 300, 400, 0));
	EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
	ASSERT_EQ(300, send(self->s, out + 700, 300, 0));
	ASSERT_EQ(1, collect(self->kfd, ev, 1, WAIT_MS));
	EXPECT_EQ(2, ev[0].user_data);
	expect_done(_metadata, &ev[0], self->r, KEVENT_AIO_RECV, 1000);
	EXPECT_EQ(0, memcmp(out, in, sizeof(in)));

	/* WAITALL and the end of file first: what arrived. */
	memset(in, 0, sizeof(in));
	ASSERT_EQ(0, aio_recv(self->kfd, self->r, in, sizeof(in), KEVENT_REQ_AIO_WAITALL, 3));
	ASSERT_EQ(300, send(self->s, out, 300, 0));
	EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
	ASSERT_EQ(0, shutdown(self->s, SHUT_WR));
	ASSERT_EQ(1, collect(self->kfd, ev, 1, WAIT_MS));
	EXPECT_EQ(3, ev[0].user_data);
	expect_done(_metadata, &ev[0], self->r, KEVENT_AIO_RECV, 300);
	EXPECT_EQ(0, memcmp(out, in, 300));
}

/*
 * A send to a peer that went away fails with EPIPE (or ECONNRESET on TCP,
 * where the first send after the close may still succeed: the peer answers
 * it with a reset).
 */
TEST_F(stream, send_to_closed_peer)
{
	char out[4096] = { 1 };
	struct ukevent ev;
	int i;

	close(self->r);
	self->r = -1;
	for (i = 0; i < 20; i++) {
		ASSERT_EQ(0, aio_send(self->kfd, self->s, out, sizeof(out), i));
		ASSERT_EQ(1, collect(self->kfd, &ev, 1, WAIT_MS));
		EXPECT_EQ(i, ev.user_data);
		if (ev.ret_flags != KEVENT_RET_DONE)
			break;
		EXPECT_EQ(AF_INET, variant->family);
		expect_done(_metadata, &ev, self->s, KEVENT_AIO_SEND, sizeof(out));
		usleep(10000);
	}
	ASSERT_EQ(KEVENT_RET_BROKEN, ev.ret_flags);
	EXPECT_TRUE(ev.ret_data == -EPIPE || ev.ret_data == -ECONNRESET)
		TH_LOG("ret_data %lld", (long long)ev.ret_data);
}

/* The peer resets the connection: a pending receive fails with ECONNRESET. */
TEST(tcp_reset)
{
	struct linger lin = { .l_onoff = 1, .l_linger = 0 };
	int kfd = kevent_init(0), sv[2];
	char in[64], out[64] = { 1 };
	struct ukevent ev;

	signal(SIGPIPE, SIG_IGN);
	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, tcp_pair(sv));
	ASSERT_EQ(0, aio_recv(kfd, sv[1], in, sizeof(in), 0, 1));
	EXPECT_TRUE(quiet(kfd, QUIET_MS));
	ASSERT_EQ(0, setsockopt(sv[0], SOL_SOCKET, SO_LINGER, &lin, sizeof(lin)));
	close(sv[0]);	/* sends a RST */
	ASSERT_EQ(1, collect(kfd, &ev, 1, WAIT_MS));
	EXPECT_EQ(1, ev.user_data);
	expect_broken(_metadata, &ev, sv[1], ECONNRESET);
	/* The error was reported once; a send on the dead connection fails too. */
	ASSERT_EQ(0, aio_send(kfd, sv[1], out, sizeof(out), 2));
	ASSERT_EQ(1, collect(kfd, &ev, 1, WAIT_MS));
	EXPECT_EQ(KEVENT_RET_BROKEN, ev.ret_flags);
	EXPECT_TRUE(ev.ret_data == -EPIPE || ev.ret_data == -ECONNRESET)
		TH_LOG("ret_data %lld", (long long)ev.ret_data);
	EXPECT_TRUE(quiet(kfd, QUIET_MS));
	close(sv[1]);
	close(kfd);
}

/*
 * A buffer the process cannot access is not refused by kevent_ctl(): the
 * request fails with EFAULT, and nothing else is harmed.
 */
/*
 * The pages of a waiting request count against RLIMIT_MEMLOCK without
 * CAP_IPC_LOCK: a request over it completes with ENOMEM, and cancelling one
 * gives its pages back. In a child that drops root; exit status = the step
 * that failed.
 */
static int memlock_child(void)
{
	const long page = sysconf(_SC_PAGESIZE);
	struct rlimit rl = { 16 * page, 16 * page };
	struct ukevent ev[1];
	unsigned char *buf;
	int kfd, sv[2];

	if (setrlimit(RLIMIT_MEMLOCK, &rl) || setresuid(4242, 4242, 4242))
		return 10;
	kfd = kevent_init(0);
	if (kfd < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return 11;
	buf = mmap(NULL, 64 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return 12;
	/* 8 pages, pinned while the receive waits. */
	if (aio_recv(kfd, sv[1], buf, 8 * page, 0, 1) || !quiet(kfd, QUIET_MS))
		return 13;
	/* 16 more are over the limit of 16. */
	if (aio_recv(kfd, sv[1], buf + 8 * page, 16 * page, 0, 2))
		return 14;
	if (collect(kfd, ev, 1, WAIT_MS) != 1 || ev[0].user_data != 2 ||
	    ev[0].ret_flags != KEVENT_RET_BROKEN || ev[0].ret_data != -ENOMEM)
		return 15;
	/* Cancelled, the first gives its 8 back: 12 fit now. */
	if (kevent_aio_cancel(kfd, sv[1], 1) || collect(kfd, ev, 1, WAIT_MS) != 1 ||
	    ev[0].user_data != 1 || ev[0].ret_data != -ECANCELED)
		return 16;
	if (aio_recv(kfd, sv[1], buf + 24 * page, 12 * page, 0, 3) || !quiet(kfd, QUIET_MS))
		return 17;
	if (write(sv[0], "hello", 5) != 5 || collect(kfd, ev, 1, WAIT_MS) != 1 ||
	    ev[0].user_data != 3 || ev[0].ret_flags != KEVENT_RET_DONE || ev[0].ret_data != 5 ||
	    memcmp(buf + 24 * page, "hello", 5))
		return 18;
	return 0;
}

TEST(memlock_limit)
{
	int status;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(memlock_child());
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST(bad_buffer)
{
	int kfd = kevent_init(0), sv[2], ov[2], i;
	char other_in[16], *none, *gone, *page;
	struct ukevent ev[4];
	const size_t pg = getpagesize();

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, ov));
	none = mmap(NULL, pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, none);
	page = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, page);
	/* A one-page hole between two mappings: no larger mapping reuses it. */
	gone = mmap(NULL, 3 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, gone);
	gone += pg;
	ASSERT_EQ(0, munmap(gone, pg));

	/* A request in flight on another socket, before and after the faults. */
	ASSERT_EQ(0, aio_recv(kfd, ov[1], other_in, sizeof(other_in), 0, 99));

	/* Sends from memory that cannot be read. */
	ASSERT_EQ(0, aio_send(kfd, sv[0], none, pg, 1));
	ASSERT_EQ(0, aio_send(kfd, sv[0], gone, pg, 2));
	ASSERT_EQ(0, aio_send(kfd, sv[0], NULL, 16, 3));
	ASSERT_EQ(3, collect(kfd, ev, 3, WAIT_MS));
	for (i = 1; i <= 3; i++)
		expect_broken(_metadata, find_ev(ev, 3, i), sv[0], EFAULT);

	/* Receives into memory that cannot be written (read-only too). */
	ASSERT_EQ(0, aio_recv(kfd, sv[1], none, pg, 0, 4));
	ASSERT_EQ(5, send(sv[0], "hello", 5, 0));
	ASSERT_EQ(1, collect(kfd, ev, 1, WAIT_MS));
	expect_broken(_metadata, &ev[0], sv[1], EFAULT);
	ASSERT_EQ(0, aio_recv(kfd, sv[1], page, pg, 0, 5));
	ASSERT_EQ(1, collect(kfd, ev, 1, WAIT_MS));
	expect_broken(_metadata, &ev[0], sv[1], EFAULT);
	EXPECT_TRUE(quiet(kfd, QUIET_MS));

	/* The socket, the queue and the other request still work. */
	drain_quiet(sv[1], 50);
	round_trip(_metadata, kfd, sv[0], sv[1], 4096, 1, WAIT_MS);
	ASSERT_EQ(3, send(ov[0], "abc", 3, 0));
	ASSERT_EQ(1, collect(kfd, ev, 1, WAIT_MS));
	expect_done(_metadata, &ev[0], ov[1], KEVENT_AIO_RECV, 3);
	EXPECT_EQ(0, memcmp(other_in, "abc", 3));
	fresh_queue_works(_metadata);
	close(sv[0]);
	close(sv[1]);
	close(ov[0]);
	close(ov[1]);
	close(kfd);
}

/*
 * How many bytes of @stream, at most @most, come before the @len bytes of
 * @got; @most + 1 if none of those places has them.
 */
static size_t skipped(const unsigned char *stream, const unsigned char *got, size_t len,
		      size_t most)
{
	size_t skip;

	for (skip = 0; skip <= most; skip++)
		if (!memcmp(got, stream + skip, len))
			break;
	return skip;
}

/*
 * A bad buffer in a run fails alone, with EFAULT, as it would after the
 * requests before it had run: the others complete as if it were not there.
 * Sends (the bad one first, in the middle, last): the peer gets the good
 * ones' bytes in order, and nothing else. Receives (the bad one first, in
 * the middle; the data there at submission, or coming after it, for
 * WAITALL receives): each good one gets the next bytes of the stream (after
 * the failed one, possibly after as many as it could have taken: nothing
 * says what a failed receive consumed) and the rest stays in the socket.
 */
TEST_F(stream, bad_buffer_in_run)
{
	const size_t len[3] = { 1000, 100, 2000 }, total = 3100;
	unsigned char *stream = pattern(total, 31), *got = zeroed(total);
	unsigned char *bad = unmapped_page(), *out[3], *in[3];
	struct ukevent uk[3], ev[3];
	int data_first, pos, k, found;
	const struct ukevent *e;
	size_t off, skip;
	__u64 ud;

	for (pos = 0; pos < 3; pos++) {
		for (k = 0; k < 3; k++) {
			out[k] = pattern(len[k], 10 * pos + k);
			kevent_prep_aio_send(&uk[k], self->s, k == pos ? bad : out[k], len[k],
					     10 * pos + k);
		}
		ASSERT_EQ(3, kevent_add(self->kfd, uk, 3));
		ASSERT_EQ(total - len[pos], read_full(self->r, got, total - len[pos], WAIT_MS))
			TH_LOG("bad send %d", pos);
		ASSERT_EQ(3, collect(self->kfd, ev, 3, WAIT_MS));
		for (k = 0, off = 0; k < 3; k++) {
			e = find_ev(ev, 3, 10 * pos + k);
			if (k == pos) {
				expect_broken(_metadata, e, self->s, EFAULT);
				continue;
			}
			expect_done(_metadata, e, self->s, KEVENT_AIO_SEND, len[k]);
			EXPECT_EQ(0, memcmp(got + off, out[k], len[k]))
				TH_LOG("bad send %d: send %d at %zu", pos, k, off);
			off += len[k];
		}
		EXPECT_EQ(0, drain_quiet(self->r, QUIET_MS)) TH_LOG("bad send %d", pos);
		EXPECT_TRUE(quiet(self->kfd, 0));
		for (k = 0; k < 3; k++)
			free(out[k]);
	}

	for (data_first = 1; data_first >= 0; data_first--) {
		for (pos = 0; pos < 2; pos++) {
			ud = 100 * (1 + data_first) + 10 * pos;
			for (k = 0; k < 3; k++) {
				in[k] = zeroed(len[k]);
				kevent_prep_aio_recv(&uk[k], self->r, k == pos ? bad : in[k],
						     len[k],
						     data_first ? 0 : KEVENT_REQ_AIO_WAITALL,
						     ud + k);
			}
			/* Enough for each good one even if the bad one took its length. */
			if (data_first) {
				ASSERT_EQ(total, send(self->s, stream, total, 0));
				ASSERT_TRUE(wait_inq(self->r, total, WAIT_MS));
			}
			ASSERT_EQ(3, kevent_add(self->kfd, uk, 3));
			if (!data_first)
				ASSERT_EQ(total, send(self->s, stream, total, 0));
			ASSERT_EQ(3, collect(self->kfd, ev, 3, WAIT_MS))
				TH_LOG("data_first %d bad receive %d", data_first, pos);
			for (k = 0, off = 0, found = 0; k < 3; k++) {
				e = find_ev(ev, 3, ud + k);
				if (k == pos) {
					expect_broken(_metadata, e, self->r, EFAULT);
					continue;
				}
				expect_done(_metadata, e, self->r, KEVENT_AIO_RECV, len[k]);
				if (k > pos && !found) {
					skip = skipped(stream + off, in[k], len[k], len[pos]);
					ASSERT_GE(len[pos], skip)
						TH_LOG("data_first %d bad %d: receive %d misplaced",
						       data_first, pos, k);
					if (skip)
						TH_LOG("the failed receive took %zu bytes", skip);
					off += skip;
					found = 1;
				}
				EXPECT_EQ(0, memcmp(in[k], stream + off, len[k]))
					TH_LOG("data_first %d bad receive %d: receive %d at %zu",
					       data_first, pos, k, off);
				off += len[k];
			}
			ASSERT_EQ(total - off, read_full(self->r, got, total - off, WAIT_MS));
			EXPECT_EQ(0, memcmp(got, stream + off, total - off));
			EXPECT_EQ(0, drain_quiet(self->r, 0));
			EXPECT_TRUE(quiet(self->kfd, 0));
			for (k = 0; k < 3; k++)
				free(in[k]);
		}
	}
	free(stream);
	free(got);
}

/* REMOVE of a pending receive cancels it, once; it took no data. */
TEST_F(stream, cancel_pending_recv)
{
	unsigned char in[64];
	struct ukevent ev[2], key;

	memset(in, 0xee, sizeof(in));
	ASSERT_EQ(0, aio_recv(self->kfd, self->r, in, sizeof(in), 0, 0xc0));
	EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
	/* The entry names the request by (type, socket, user_data). */
	kevent_prep_aio_key(&key, self->r, 0xc0);
	ASSERT_EQ(1, kevent_remove(self->kfd, &key, 1));
	EXPECT_EQ(KEVENT_RET_DONE, key.ret_flags);
	EXPECT_EQ(0, key.ret_data);
	ASSERT_EQ(1, collect(self->kfd, ev, 1, WAIT_MS));
	EXPECT_EQ(0xc0, ev[0].user_data);
	EXPECT_EQ(KEVENT_AIO_RECV, ev[0].event);
	expect_broken(_metadata, &ev[0], self->r, ECANCELED);
	/* Once: nothing more, and the request is gone. */
	EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
	EXPECT_EQ(-1, kevent_aio_cancel(self->kfd, self->r, 0xc0));
	EXPECT_EQ(ENOENT, errno);
	/* The data that comes next is the socket's. */
	expect_own_data(_metadata, self->s, self->r, "xyz");
	for (size_t i = 0; i < sizeof(in); i++)
		ASSERT_EQ(0xee, in[i]);
}

/* Cancelling one request of several on a socket leaves the others in line. */
TEST_F(stream, cancel_middle_request)
{
	char a[16], b[16], c[16];
	struct ukevent ev[2];

	ASSERT_EQ(0, aio_recv(self->kfd, self->r, a, sizeof(a), 0, 1));
	ASSERT_EQ(0, aio_recv(self->kfd, self->r, b, sizeof(b), 0, 2));
	ASSERT_EQ(0, aio_recv(self->kfd, self->r, c, sizeof(c), 0, 3));
	/* Same socket, another user_data: not a request. */
	EXPECT_EQ(-1, kevent_aio_cancel(self->kfd, self->r, 4));
	EXPECT_EQ(ENOENT, errno);
	/* Same user_data, another socket: not a request either. */
	EXPECT_EQ(-1, kevent_aio_cancel(self->kfd, self->s, 2));
	EXPECT_EQ(ENOENT, errno);
	ASSERT_EQ(0, kevent_aio_cancel(self->kfd, self->r, 2));
	ASSERT_EQ(1, collect(self->kfd, ev, 1, WAIT_MS));
	EXPECT_EQ(2, ev[0].user_data);
	expect_broken(_metadata, &ev[0], self->r, ECANCELED);
	ASSERT_EQ(4, send(self->s, "aaaa", 4, 0));
	ASSERT_EQ(1, collect(self->kfd, ev, 1, WAIT_MS));
	EXPECT_EQ(1, ev[0].user_data);
	expect_done(_metadata, &ev[0], self->r, KEVENT_AIO_RECV, 4);
	EXPECT_EQ(0, memcmp(a, "aaaa", 4));
	ASSERT_EQ(4, send(self->s, "cccc", 4, 0));
	ASSERT_EQ(1, collect(self->kfd, ev, 1, WAIT_MS));
	EXPECT_EQ(3, ev[0].user_data);
	expect_done(_metadata, &ev[0], self->r, KEVENT_AIO_RECV, 4);
	EXPECT_EQ(0, memcmp(c, "cccc", 4));
	EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
}

/* REMOVE of a request that completed before it: the completion is kept. */
TEST_F(stream, cancel_completed_keeps_completion)
{
	struct pollfd p = { .fd = self->kfd, .events = POLLIN };
	struct ukevent ev[2];
	char in[16];

	ASSERT_EQ(5, send(self->s, "hello", 5, 0));
	ASSERT_EQ(0, aio_recv(self->kfd, self->r, in, sizeof(in), 0, 7));
	/* Completed, not collected: the queue is readable. */
	ASSERT_EQ(1, poll(&p, 1, WAIT_MS));
	/* The REMOVE succeeds, and the completion stays. */
	EXPECT_EQ(0, kevent_aio_cancel(self->kfd, self->r, 7));
	ASSERT_EQ(1, collect(self->kfd, ev, 1, WAIT_MS));
	EXPECT_EQ(7, ev[0].user_data);
	expect_done(_metadata, &ev[0], self->r, KEVENT_AIO_RECV, 5);
	EXPECT_EQ(0, memcmp(in, "hello", 5));
	EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
	/* Delivered: the name is free. */
	EXPECT_EQ(-1, kevent_aio_cancel(self->kfd, self->r, 7));
	EXPECT_EQ(ENOENT, errno);
}

/*
 * Completions come in the order the requests finished, whether a request
 * finished at submission (its result kept by the queue, no kevent) or later
 * (its kevent queued).
 */
TEST_F(stream, completion_order)
{
	struct pollfd p = { .fd = self->kfd, .events = POLLIN };
	static const char xy[] = "xy", pq[] = "pq";
	struct ukevent ev[2];
	char in[8], two[2];

	/* A receive that waits and finishes, then a send that finishes at once. */
	ASSERT_EQ(0, aio_recv(self->kfd, self->r, in, sizeof(in), 0, 1));
	ASSERT_EQ(3, send(self->s, "abc", 3, 0));
	ASSERT_EQ(1, poll(&p, 1, WAIT_MS));
	ASSERT_EQ(0, aio_send(self->kfd, self->s, xy, 2, 2));
	ASSERT_EQ(2, collect(self->kfd, ev, 2, WAIT_MS));
	expect_done(_metadata, &ev[0], self->r, KEVENT_AIO_RECV, 3);
	EXPECT_EQ(1, ev[0].user_data);
	expect_done(_metadata, &ev[1], self->s, KEVENT_AIO_SEND, 2);
	EXPECT_EQ(2, ev[1].user_data);
	ASSERT_EQ(2, read_full(self->r, two, 2, WAIT_MS));
	EXPECT_EQ(0, memcmp(two, "xy", 2));

	/* A send that finishes at once, then a receive that waits and finishes. */
	ASSERT_EQ(0, aio_send(self->kfd, self->s, pq, 2, 3));
	ASSERT_EQ(0, aio_recv(self->kfd, self->s, in, sizeof(in), 0, 4));
	ASSERT_EQ(1, send(self->r, "z", 1, 0));
	ASSERT_EQ(2, collect(self->kfd, ev, 2, WAIT_MS));
	expect_done(_metadata, &ev[0], self->s, KEVENT_AIO_SEND, 2);
	EXPECT_EQ(3, ev[0].user_data);
	expect_done(_metadata, &ev[1], self->s, KEVENT_AIO_RECV, 1);
	EXPECT_EQ(4, ev[1].user_data);
	EXPECT_EQ('z', in[0]);
	ASSERT_EQ(2, read_full(self->r, two, 2, WAIT_MS));
	EXPECT_EQ(0, memcmp(two, "pq", 2));
	EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
}

/* A send that cannot finish (the peer does not read), cancelled by REMOVE. */
TEST_F(stream, cancel_blocked_send)
{
	size_t len = 32 * MiB;	/* more than both socket buffers hold */
	unsigned char *out = filled(len);
	struct ukevent ev[2];

	ASSERT_EQ(0, aio_send(self->kfd, self->s, out, len, 1));
	EXPECT_TRUE(quiet(self->kfd, 2 * QUIET_MS));
	ASSERT_EQ(0, kevent_aio_cancel(self->kfd, self->s, 1));
	ASSERT_EQ(1, collect(self->kfd, ev, 1, WAIT_MS));
	EXPECT_EQ(KEVENT_AIO_SEND, ev[0].event);
	expect_broken(_metadata, &ev[0], self->s, ECANCELED);
	EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
	/* Cancelled: nothing more is sent (the buffers hold less than len). */
	EXPECT_GT(len, drain_quiet(self->r, 200));
	ASSERT_EQ(1, send(self->s, "m", 1, 0));
	EXPECT_EQ(1, drain_quiet(self->r, 200));
	free(out);
}

/* Closing the socket descriptor cancels every request on it. */
TEST_F(stream, close_socket_cancels)
{
	char a[16], b[16];
	struct ukevent ev[4];
	int r = self->r;

	ASSERT_EQ(0, aio_recv(self->kfd, r, a, sizeof(a), 0, 1));
	ASSERT_EQ(0, aio_recv(self->kfd, r, b, sizeof(b), KEVENT_REQ_AIO_WAITALL, 2));
	EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
	close(r);
	self->r = -1;
	ASSERT_EQ(2, collect(self->kfd, ev, 2, WAIT_MS));
	expect_broken(_metadata, find_ev(ev, 2, 1), r, ECANCELED);
	expect_broken(_metadata, find_ev(ev, 2, 2), r, ECANCELED);
	EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
}

TEST_F(stream, close_socket_cancels_blocked_send)
{
	size_t len = 32 * MiB;
	unsigned char *out = filled(len);
	struct ukevent ev[2];
	int s = self->s;

	ASSERT_EQ(0, aio_send(self->kfd, s, out, len, 1));
	EXPECT_TRUE(quiet(self->kfd, 2 * QUIET_MS));
	close(s);
	self->s = -1;
	ASSERT_EQ(1, collect(self->kfd, ev, 1, WAIT_MS));
	expect_broken(_metadata, &ev[0], s, ECANCELED);
	EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
	free(out);
}

/*
 * Requests in flight when the queue is closed are freed silently: a pending
 * receive takes no data and writes nothing, a blocked send stops.
 */
TEST(close_queue_with_requests_in_flight)
{
	int kfd = kevent_init(0), a[2], b[2], i;
	size_t len = 32 * MiB;
	unsigned char *big = filled(len), in[3][64];

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, a));
	ASSERT_EQ(0, tcp_pair(b));
	memset(in, 0xee, sizeof(in));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, aio_recv(kfd, a[1], in[i], sizeof(in[i]), 0, i));
	ASSERT_EQ(0, aio_send(kfd, b[0], big, len, 10));
	EXPECT_TRUE(quiet(kfd, 2 * QUIET_MS));
	close(kfd);

	expect_own_data(_metadata, a[0], a[1], "xyz");
	for (i = 0; i < 3; i++)
		for (size_t j = 0; j < sizeof(in[i]); j++)
			ASSERT_EQ(0xee, in[i][j]);
	/*
	 * The send stopped: less than len arrives (the socket buffers hold
	 * less), and after it only the marker.
	 */
	EXPECT_GT(len, drain_quiet(b[1], 200));
	expect_own_data(_metadata, b[0], b[1], "marker");
	EXPECT_EQ(0, drain_quiet(b[1], QUIET_MS));
	fresh_queue_works(_metadata);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	free(big);
}

/*
 * A child submits requests and exits with them in flight: in its own
 * queue, and in a queue it shares with its parent. Its exit closes its
 * descriptors: its own queue goes, silently; the socket descriptors its
 * requests were made with cancel them, which the shared queue reports
 * once. The sockets, which the parent still has, lose no data to it.
 */
TEST(child_exits_with_requests_in_flight)
{
	int shared = kevent_init(0), a[2], b[2], n, status;
	struct ukevent ev[4];
	pid_t pid;

	signal(SIGPIPE, SIG_IGN);
	ASSERT_LE(0, shared);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, a));
	ASSERT_EQ(0, tcp_pair(b));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		static char in[2][64];
		size_t len = 32 * MiB;
		unsigned char *big = malloc(len);
		int own = kevent_init(0);

		if (own < 0 || !big)
			_exit(1);
		memset(big, 0x5a, len);
		if (aio_recv(own, a[1], in[0], sizeof(in[0]), 0, 1) ||
		    aio_send(own, b[0], big, len, 2) ||
		    aio_recv(shared, a[1], in[1], sizeof(in[1]), 0, 3))
			_exit(2);
		usleep(50000);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));

	/* The shared queue reports the child's request once, cancelled. */
	n = collect(shared, ev, 1, WAIT_MS);
	ASSERT_EQ(1, n);
	EXPECT_EQ(3, ev[0].user_data);
	EXPECT_EQ(KEVENT_AIO_RECV, ev[0].event);
	expect_broken(_metadata, &ev[0], a[1], ECANCELED);
	EXPECT_TRUE(quiet(shared, QUIET_MS));
	/* No request of the dead child takes the parent's data, or sends more. */
	expect_own_data(_metadata, a[0], a[1], "xyz");
	EXPECT_GT(32 * MiB, drain_quiet(b[1], 200));
	expect_own_data(_metadata, b[0], b[1], "marker");
	EXPECT_EQ(0, drain_quiet(b[1], QUIET_MS));
	/* The shared queue still works, and so does a new one. */
	round_trip(_metadata, shared, a[0], a[1], 4096, 1, WAIT_MS);
	fresh_queue_works(_metadata);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	close(shared);
}

/* sendfile from a tmpfs file: offsets, a count past the end, an offset past it. */
TEST_F_TIMEOUT(stream, sendfile, 120)
{
	static const struct {
		off_t offset;
		size_t count, sent;
	} cases[] = {
		{ 0, 100000, 100000 },
		{ 1, 1, 1 },
		{ 4095, 8193, 8193 },
		{ 12345, 5000, 5000 },
		{ 90000, 20000, 10000 },	/* the file ends first */
		{ 99999, 10, 1 },
		{ 100000, 10, 0 },		/* at the end */
		{ 200000, 10, 0 },		/* past it */
	};
	const size_t size = 100000, big = 4 * MiB;
	unsigned char *data = pattern(size, 42), *got = zeroed(big), *bigdata;
	struct ukevent uk[4], ev[4];
	size_t i;
	int fd, bfd;

	fd = tmpfs_file(size, 42);
	ASSERT_LE(0, fd);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		ASSERT_EQ(0, aio_sendfile(self->kfd, self->s, fd, cases[i].offset,
					  cases[i].count, 10 + i));
		ASSERT_EQ(1, collect(self->kfd, ev, 1, WAIT_MS));
		EXPECT_EQ(10 + i, ev[0].user_data);
		expect_done(_metadata, &ev[0], self->s, KEVENT_AIO_SENDFILE, cases[i].sent);
		ASSERT_EQ(cases[i].sent, read_full(self->r, got, cases[i].sent, WAIT_MS));
		EXPECT_EQ(0, memcmp(got, data + cases[i].offset, cases[i].sent))
			TH_LOG("case %zu", i);
	}
	/* The file position is neither used nor moved. */
	EXPECT_EQ((off_t)size, lseek(fd, 0, SEEK_CUR));

	/* Several in one batch: sent in submission order. */
	kevent_prep_aio_sendfile(&uk[0], self->s, fd, 50000, 1000, 1);
	kevent_prep_aio_sendfile(&uk[1], self->s, fd, 0, 1000, 2);
	kevent_prep_aio_sendfile(&uk[2], self->s, fd, 99000, 5000, 3);
	kevent_prep_aio_sendfile(&uk[3], self->s, fd, 7, 3, 4);
	ASSERT_EQ(4, kevent_add(self->kfd, uk, 4));
	ASSERT_EQ(4, collect(self->kfd, ev, 4, WAIT_MS));
	expect_done(_metadata, find_ev(ev, 4, 1), self->s, KEVENT_AIO_SENDFILE, 1000);
	expect_done(_metadata, find_ev(ev, 4, 2), self->s, KEVENT_AIO_SENDFILE, 1000);
	expect_done(_metadata, find_ev(ev, 4, 3), self->s, KEVENT_AIO_SENDFILE, 1000);
	expect_done(_metadata, find_ev(ev, 4, 4), self->s, KEVENT_AIO_SENDFILE, 3);
	ASSERT_EQ(3003, read_full(self->r, got, 3003, WAIT_MS));
	EXPECT_EQ(0, memcmp(got, data + 50000, 1000));
	EXPECT_EQ(0, memcmp(got + 1000, data, 1000));
	EXPECT_EQ(0, memcmp(got + 2000, data + 99000, 1000));
	EXPECT_EQ(0, memcmp(got + 3000, data + 7, 3));

	/* A file larger than the socket buffers, read while it is sent. */
	bfd = tmpfs_file(big, 43);
	ASSERT_LE(0, bfd);
	bigdata = pattern(big, 43);
	ASSERT_EQ(0, aio_sendfile(self->kfd, self->s, bfd, 0, big, 99));
	ASSERT_EQ(big, read_full(self->r, got, big, WAIT_MS));
	ASSERT_EQ(1, collect(self->kfd, ev, 1, WAIT_MS));
	expect_done(_metadata, &ev[0], self->s, KEVENT_AIO_SENDFILE, big);
	EXPECT_EQ(0, memcmp(got, bigdata, big));
	EXPECT_TRUE(quiet(self->kfd, 0));
	EXPECT_EQ(0, drain_quiet(self->r, 0));
	close(fd);
	close(bfd);
	free(data);
	free(bigdata);
	free(got);
}

/*
 * sendfile of a sparse memfd: its data pages are cached and sent as they are,
 * its holes are not cached and are read (as zeros); pieces cross from one to
 * the other inside a socket call.
 */
TEST_F_TIMEOUT(stream, sendfile_sparse, 120)
{
	static const struct {
		off_t start;
		size_t len;
	} data_at[] = { { 0, 5000 }, { 70001, 70000 }, { 290000, 10000 } };
	static const struct {
		off_t offset;
		size_t count;
	} cases[] = {
		{ 0, 300000 },		/* all of it */
		{ 4000, 70000 },	/* data, a hole, data */
		{ 20000, 30000 },	/* only a hole */
		{ 139000, 152000 },	/* data, a long hole, data to the end */
	};
	const size_t size = 300000;
	unsigned char *want = zeroed(size), *got = zeroed(size), *data;
	struct ukevent ev[1];
	size_t i;
	int fd;

	fd = memfd_create("kevent-aio-sparse", MFD_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, size));
	for (i = 0; i < ARRAY_SIZE(data_at); i++) {
		data = pattern(data_at[i].len, 50 + i);
		memcpy(want + data_at[i].start, data, data_at[i].len);
		ASSERT_EQ((ssize_t)data_at[i].len,
			  pwrite(fd, data, data_at[i].len, data_at[i].start));
		free(data);
	}
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		ASSERT_EQ(0, aio_sendfile(self->kfd, self->s, fd, cases[i].offset,
					  cases[i].count, 20 + i));
		ASSERT_EQ(cases[i].count, read_full(self->r, got, cases[i].count, WAIT_MS));
		ASSERT_EQ(1, collect(self->kfd, ev, 1, WAIT_MS));
		expect_done(_metadata, &ev[0], self->s, KEVENT_AIO_SENDFILE, cases[i].count);
		EXPECT_EQ(0, memcmp(got, want + cases[i].offset, cases[i].count))
			TH_LOG("case %zu", i);
	}
	EXPECT_EQ(0, drain_quiet(self->r, 0));
	close(fd);
	free(want);
	free(got);
}

/* An entry that must fail with -@err, and leave nothing registered. */
static void expect_refused(struct __test_metadata *_metadata, int kfd, unsigned int cmd,
			   struct ukevent uk, int err, int line)
{
	struct ukevent none;

	EXPECT_EQ(0, sys_kevent_ctl(kfd, cmd, 1, &uk)) TH_LOG("line %d", line);
	EXPECT_EQ(KEVENT_RET_BROKEN, uk.ret_flags) TH_LOG("line %d", line);
	EXPECT_EQ(-err, uk.ret_data) TH_LOG("line %d", line);
	EXPECT_EQ(0, poll_now(kfd, &none, 1)) TH_LOG("line %d", line);
}

#define REFUSED(cmd, uk, err) expect_refused(_metadata, kfd, cmd, uk, err, __LINE__)

#define NR_BUF 64

/* Every error of a kevent_ctl() entry for AIO. */
TEST(ctl_errors)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int kfd = kevent_init(0), sv[2], p[2], mfd, bad, opath, wronly, l;
	int sock_opath = -1;
	struct ukevent uk, batch[3], ev[4];
	static char buf[NR_BUF], buf2[NR_BUF];
	char path[] = "/tmp/kevent-aio-file.XXXXXX";

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, pipe(p));
	mfd = tmpfs_file(100, 1);
	ASSERT_LE(0, mfd);
	wronly = mkstemp(path);
	ASSERT_LE(0, wronly);
	ASSERT_EQ(10, write(wronly, "0123456789", 10));
	close(wronly);
	wronly = open(path, O_WRONLY);
	ASSERT_LE(0, wronly);
	opath = open(path, O_PATH);
	ASSERT_LE(0, opath);
	unlink(path);
	/* An O_PATH descriptor of a bound UNIX socket, if /tmp allows one. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/kevent-aio-sock.%d", getpid());
	unlink(sa.sun_path);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	ASSERT_LE(0, l);
	if (!bind(l, (struct sockaddr *)&sa, sizeof(sa))) {
		sock_opath = open(sa.sun_path, O_PATH);
		unlink(sa.sun_path);
	}
	/* Opened last: its number stays free while the test runs. */
	bad = open("/dev/null", O_RDONLY);
	ASSERT_LE(0, bad);
	close(bad);	/* now not an open descriptor */

	/* EINVAL: a zero or too large length or count. */
	kevent_prep_aio_send(&uk, sv[0], buf, 0, 1);
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);
	kevent_prep_aio_recv(&uk, sv[0], buf, 0, 0, 1);
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);
	kevent_prep_aio_recv(&uk, sv[0], buf, 0, KEVENT_REQ_AIO_WAITALL, 1);
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);
	kevent_prep_aio_sendfile(&uk, sv[0], mfd, 0, 0, 1);
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);
	kevent_prep_aio_send(&uk, sv[0], buf, KEVENT_AIO_LEN_MAX + 1, 1);
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);
	kevent_prep_aio_recv(&uk, sv[0], buf, KEVENT_AIO_LEN_MAX + 1, 0, 1);
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);
	kevent_prep_aio_sendfile(&uk, sv[0], mfd, 0, KEVENT_AIO_LEN_MAX + 1, 1);
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);
	kevent_prep_aio_recv(&uk, sv[0], buf, 1ULL << 40, 0, 1);
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);

	/* EINVAL: not exactly one operation bit. */
	kevent_prep_aio_send(&uk, sv[0], buf, sizeof(buf), 1);
	uk.event = KEVENT_AIO_SEND | KEVENT_AIO_RECV;
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);
	uk.event = KEVENT_AIO_RECV | KEVENT_AIO_SENDFILE;
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);
	uk.event = 0;
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);
	uk.event = 0x8;
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);
	uk.event = KEVENT_AIO_SEND | 0x80000000u;
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);

	/* EINVAL: WAITALL on a send or sendfile. */
	kevent_prep_aio_send(&uk, sv[0], buf, sizeof(buf), 1);
	kevent_set_flags(&uk, KEVENT_REQ_AIO_WAITALL);
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);
	kevent_prep_aio_sendfile(&uk, sv[0], mfd, 0, 10, 1);
	kevent_set_flags(&uk, KEVENT_REQ_AIO_WAITALL);
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);

	/* EINVAL: a sendfile from a file that is not regular, or at a bad offset. */
	kevent_prep_aio_sendfile(&uk, sv[0], p[0], 0, 10, 1);
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);
	kevent_prep_aio_sendfile(&uk, sv[0], mfd, -1, 10, 1);
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);
	kevent_prep_aio_sendfile(&uk, sv[0], mfd, 0, 10, 1);
	uk.arg[0] = (1ULL << 63) - 5;	/* the range passes 2^63 - 1 */
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);

	/* EINVAL: arg_fd on a send or receive; an unknown flag; reserved. */
	kevent_prep_aio_send(&uk, sv[0], buf, sizeof(buf), 1);
	uk.arg_fd = mfd;
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);
	kevent_prep_aio_recv(&uk, sv[0], buf, sizeof(buf), 0, 1);
	uk.arg_fd = mfd;
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);
	kevent_prep_aio_recv(&uk, sv[0], buf, sizeof(buf), 0x20, 1);
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);
	kevent_prep_aio_recv(&uk, sv[0], buf, sizeof(buf), KEVENT_REQ_ABSTIME, 1);
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);
	kevent_prep_aio_recv(&uk, sv[0], buf, sizeof(buf), 0, 1);
	uk.reserved = 1;
	REFUSED(KEVENT_CTL_ADD, uk, EINVAL);

	/* EBADF: the socket, or the file of a sendfile, is not open. */
	kevent_prep_aio_send(&uk, bad, buf, sizeof(buf), 1);
	REFUSED(KEVENT_CTL_ADD, uk, EBADF);
	kevent_prep_aio_recv(&uk, bad, buf, sizeof(buf), 0, 1);
	REFUSED(KEVENT_CTL_ADD, uk, EBADF);
	kevent_prep_aio_sendfile(&uk, bad, mfd, 0, 10, 1);
	REFUSED(KEVENT_CTL_ADD, uk, EBADF);
	kevent_prep_aio_sendfile(&uk, sv[0], bad, 0, 10, 1);
	REFUSED(KEVENT_CTL_ADD, uk, EBADF);
	/* ... or the socket's id is not below 2^31. */
	kevent_prep_aio_recv(&uk, sv[0], buf, sizeof(buf), 0, 1);
	uk.id = 1ULL << 31 | (__u64)sv[0];
	REFUSED(KEVENT_CTL_ADD, uk, EBADF);
	uk.id = 1ULL << 32 | (__u64)sv[0];
	REFUSED(KEVENT_CTL_ADD, uk, EBADF);
	/* EBADF: O_PATH descriptors; a sendfile file not open for reading. */
	kevent_prep_aio_sendfile(&uk, sv[0], opath, 0, 10, 1);
	REFUSED(KEVENT_CTL_ADD, uk, EBADF);
	kevent_prep_aio_sendfile(&uk, sv[0], wronly, 0, 10, 1);
	REFUSED(KEVENT_CTL_ADD, uk, EBADF);
	if (sock_opath >= 0) {
		kevent_prep_aio_recv(&uk, sock_opath, buf, sizeof(buf), 0, 1);
		REFUSED(KEVENT_CTL_ADD, uk, EBADF);
	}

	/* ENOTSOCK: a pipe, a regular file, the queue itself. */
	kevent_prep_aio_recv(&uk, p[0], buf, sizeof(buf), 0, 1);
	REFUSED(KEVENT_CTL_ADD, uk, ENOTSOCK);
	kevent_prep_aio_send(&uk, p[1], buf, sizeof(buf), 1);
	REFUSED(KEVENT_CTL_ADD, uk, ENOTSOCK);
	kevent_prep_aio_sendfile(&uk, mfd, mfd, 0, 10, 1);
	REFUSED(KEVENT_CTL_ADD, uk, ENOTSOCK);
	kevent_prep_aio_recv(&uk, kfd, buf, sizeof(buf), 0, 1);
	REFUSED(KEVENT_CTL_ADD, uk, ENOTSOCK);

	/* The wrappers report the entry's error in errno. */
	EXPECT_EQ(-1, aio_send(kfd, p[1], buf, sizeof(buf), 1));
	EXPECT_EQ(ENOTSOCK, errno);
	EXPECT_EQ(-1, aio_recv(kfd, sv[0], buf, 0, 0, 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, aio_sendfile(kfd, bad, mfd, 0, 1, 1));
	EXPECT_EQ(EBADF, errno);
	EXPECT_EQ(-1, aio_send(-1, sv[0], buf, sizeof(buf), 1));
	EXPECT_EQ(EBADF, errno);

	/* EEXIST: (socket, user_data) names one request in the queue. */
	ASSERT_EQ(0, aio_recv(kfd, sv[1], buf, sizeof(buf), 0, 5));
	EXPECT_EQ(-1, aio_recv(kfd, sv[1], buf2, sizeof(buf2), 0, 5));
	EXPECT_EQ(EEXIST, errno);
	EXPECT_EQ(-1, aio_send(kfd, sv[1], buf2, sizeof(buf2), 5));
	EXPECT_EQ(EEXIST, errno);
	/* Another user_data on the socket, or the same on another socket: fine. */
	ASSERT_EQ(0, aio_recv(kfd, sv[1], buf2, sizeof(buf2), 0, 6));
	ASSERT_EQ(0, aio_recv(kfd, sv[0], buf2, sizeof(buf2), 0, 5));
	/* In one batch: the second of two equal names fails, the others stand. */
	kevent_prep_aio_recv(&batch[0], sv[0], buf, sizeof(buf), 0, 7);
	kevent_prep_aio_recv(&batch[1], sv[0], buf2, sizeof(buf2), 0, 7);
	kevent_prep_aio_recv(&batch[2], sv[0], buf2, 0, 0, 8);
	ASSERT_EQ(1, kevent_add(kfd, batch, 3));
	EXPECT_EQ(0, kevent_result(&batch[0]));
	EXPECT_EQ(-EEXIST, kevent_result(&batch[1]));
	EXPECT_EQ(-EINVAL, kevent_result(&batch[2]));

	/* EINVAL: MODIFY of an AIO request, which stays as it was. */
	kevent_prep_aio_recv(&uk, sv[1], buf2, sizeof(buf2), 0, 5);
	REFUSED(KEVENT_CTL_MODIFY, uk, EINVAL);

	/* The four pending requests are intact: cancel them, once each. */
	EXPECT_EQ(0, kevent_aio_cancel(kfd, sv[1], 5));
	EXPECT_EQ(0, kevent_aio_cancel(kfd, sv[1], 6));
	EXPECT_EQ(0, kevent_aio_cancel(kfd, sv[0], 5));
	EXPECT_EQ(0, kevent_aio_cancel(kfd, sv[0], 7));
	ASSERT_EQ(4, collect(kfd, ev, 4, WAIT_MS));
	expect_broken(_metadata, find_req(ev, 4, sv[1], 5), sv[1], ECANCELED);
	expect_broken(_metadata, find_req(ev, 4, sv[1], 6), sv[1], ECANCELED);
	expect_broken(_metadata, find_req(ev, 4, sv[0], 5), sv[0], ECANCELED);
	expect_broken(_metadata, find_req(ev, 4, sv[0], 7), sv[0], ECANCELED);
	EXPECT_TRUE(quiet(kfd, QUIET_MS));
	/* A name is free again once its request's event was collected. */
	ASSERT_EQ(0, aio_recv(kfd, sv[1], buf, sizeof(buf), 0, 5));
	ASSERT_EQ(0, kevent_aio_cancel(kfd, sv[1], 5));
	ASSERT_EQ(1, collect(kfd, ev, 1, WAIT_MS));
	expect_broken(_metadata, &ev[0], sv[1], ECANCELED);

	if (sock_opath >= 0)
		close(sock_opath);
	close(l);
	close(opath);
	close(wronly);
	close(mfd);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
	close(kfd);
}

#define NPAIRS	64
#define NREQ	8

FIXTURE(queue) {
	int kfd;
};

FIXTURE_SETUP(queue)
{
	signal(SIGPIPE, SIG_IGN);
	self->kfd = kevent_init(0);
	ASSERT_LE(0, self->kfd);
}

FIXTURE_TEARDOWN(queue)
{
	close(self->kfd);
}

/*
 * 64 socket pairs (UNIX and TCP, alternately), each with 8 WAITALL receives
 * and 8 sends of different sizes in flight: 1024 requests in one queue.
 */
TEST_F_TIMEOUT(queue, many_sockets, 180)
{
	static struct ukevent uk[NPAIRS * NREQ], ev[2 * NPAIRS * NREQ];
	static unsigned char *out[NPAIRS][NREQ], *in[NPAIRS][NREQ];
	static unsigned char seen[NPAIRS][NREQ][2];
	static size_t len[NPAIRS][NREQ];
	static int sv[NPAIRS][2];
	int p, k, i, n, dir;

	for (p = 0; p < NPAIRS; p++)
		ASSERT_EQ(0, stream_pair(p & 1 ? AF_INET : AF_UNIX, sv[p]));
	for (p = 0, i = 0; p < NPAIRS; p++) {
		for (k = 0; k < NREQ; k++, i++) {
			len[p][k] = 1000 + 997 * k + 13 * p;
			out[p][k] = pattern(len[p][k], p * NREQ + k);
			in[p][k] = zeroed(len[p][k]);
			kevent_prep_aio_recv(&uk[i], sv[p][1], in[p][k], len[p][k],
					     KEVENT_REQ_AIO_WAITALL, 1 << 16 | p << 8 | k);
		}
	}
	ASSERT_EQ(NPAIRS * NREQ, kevent_add(self->kfd, uk, NPAIRS * NREQ));
	for (p = 0, i = 0; p < NPAIRS; p++)
		for (k = 0; k < NREQ; k++, i++)
			kevent_prep_aio_send(&uk[i], sv[p][0], out[p][k], len[p][k],
					     p << 8 | k);
	ASSERT_EQ(NPAIRS * NREQ, kevent_add(self->kfd, uk, NPAIRS * NREQ));

	n = collect(self->kfd, ev, 2 * NPAIRS * NREQ, BIG_WAIT_MS);
	ASSERT_EQ(2 * NPAIRS * NREQ, n);
	for (i = 0; i < n; i++) {
		dir = ev[i].user_data >> 16;
		p = (ev[i].user_data >> 8) & 0xff;
		k = ev[i].user_data & 0xff;
		ASSERT_TRUE(dir < 2 && p < NPAIRS && k < NREQ)
			TH_LOG("user_data %#llx", (unsigned long long)ev[i].user_data);
		ASSERT_EQ(0, seen[p][k][dir]++) TH_LOG("pair %d request %d twice", p, k);
		expect_done(_metadata, &ev[i], sv[p][dir],
			    dir ? KEVENT_AIO_RECV : KEVENT_AIO_SEND, len[p][k]);
	}
	for (p = 0; p < NPAIRS; p++) {
		for (k = 0; k < NREQ; k++) {
			EXPECT_EQ(0, memcmp(out[p][k], in[p][k], len[p][k]))
				TH_LOG("pair %d request %d", p, k);
			free(out[p][k]);
			free(in[p][k]);
		}
		close(sv[p][0]);
		close(sv[p][1]);
	}
	EXPECT_TRUE(quiet(self->kfd, QUIET_MS));
}

TEST_HARNESS_MAIN
