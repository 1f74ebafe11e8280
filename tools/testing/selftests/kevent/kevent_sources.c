// SPDX-License-Identifier: GPL-2.0
/*
 * kevent socket and inode sources: KEVENT_TYPE_SOCKET on TCP (IPv4), UDP
 * and UNIX stream/datagram sockets, KEVENT_TYPE_INODE on tmpfs, and both
 * mixed with timer and poll kevents in one queue.
 *
 * Needs 127.0.0.1 on lo and a tmpfs at /tmp; the unmount test needs
 * CAP_SYS_ADMIN (it is skipped otherwise).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/kevent.h>
#include <linux/time_types.h>

#include "../kselftest_harness.h"
#include "kevent_sys.h"

#define SOCK_ALL (KEVENT_SOCKET_RECV | KEVENT_SOCKET_SEND | KEVENT_SOCKET_ACCEPT | \
		  KEVENT_SOCKET_CONNECT | KEVENT_SOCKET_HUP | KEVENT_SOCKET_ERR)
#define INODE_ALL (KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE)

static struct ukevent inode_ev(int fd, __u32 events, __u32 flags)
{
	struct ukevent uk = {
		.user_data = 0x1d0000 + fd,
		.id = fd,
		.type = KEVENT_TYPE_INODE,
		.event = events,
		.req_flags = flags,
	};
	return uk;
}

/* Waits up to @ms for at least one event. */
static int wait_ev(int kfd, struct ukevent *buf, unsigned int max, int ms)
{
	struct __kernel_timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (ms % 1000) * 1000000LL,
	};

	return sys_kevent_get_events(kfd, 1, max, &ts, buf, 0);
}

/*
 * Waits up to @ms until a kevent of @type and @id reports one of @want (or
 * is broken); the events of other kevents are dropped. 1 if seen, with the
 * event in *@out.
 */
static int wait_for(int kfd, __u32 type, __u64 id, __u32 want, int ms,
		    struct ukevent *out)
{
	struct ukevent ev[16];
	struct timespec t0, t;
	int i, n;

	/* By time, not iterations: a ready level-triggered kevent ends waits at once. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= ms)
			break;
		n = wait_ev(kfd, ev, 16, 10);
		for (i = 0; i < n; i++) {
			if (ev[i].type != type || ev[i].id != id)
				continue;
			if ((ev[i].event & want) || (ev[i].ret_flags & KEVENT_RET_BROKEN)) {
				*out = ev[i];
				return 1;
			}
		}
	}
	return 0;
}

static int tcp_connect(unsigned short port, int nonblock)
{
	struct sockaddr_in a = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A connected TCP pair over 127.0.0.1. */
static int tcp_pair(int sv[2])
{
	unsigned short port;
	int l = tcp_listener(&port);

	if (l < 0)
		return -1;
	sv[0] = tcp_connect(port, 0);
	sv[1] = sv[0] < 0 ? -1 : accept(l, NULL, NULL);
	close(l);
	return sv[1] < 0 ? -1 : 0;
}

/* Two UDP sockets on 127.0.0.1, connected to each other. */
static int udp_pair(int sv[2])
{
	struct sockaddr_in a[2];
	socklen_t len = sizeof(a[0]);
	int i;

	for (i = 0; i < 2; i++) {
		memset(&a[i], 0, sizeof(a[i]));
		a[i].sin_family = AF_INET;
		a[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sv[i] = socket(AF_INET, SOCK_DGRAM, 0);
		if (sv[i] < 0 || bind(sv[i], (struct sockaddr *)&a[i], sizeof(a[i])) ||
		    getsockname(sv[i], (struct sockaddr *)&a[i], &len))
			return -1;
	}
	if (connect(sv[0], (struct sockaddr *)&a[1], sizeof(a[1])) ||
	    connect(sv[1], (struct sockaddr *)&a[0], sizeof(a[0])))
		return -1;
	return 0;
}

/* Reads everything queued on @fd (non-blocking). */
static void drain(int fd)
{
	char buf[4096];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/*
 * The RECV contract of one socket type, level- and edge-triggered: @rfd
 * receives what @wfd sends. A level-triggered kevent is reported while
 * data waits; an edge-triggered one once per arrival.
 */
static void check_recv_lt_et(struct __test_metadata *_metadata, int rfd, int wfd)
{
	struct ukevent ev[4];
	int lt = kevent_init(0), et = kevent_init(0);

	ASSERT_LE(0, lt);
	ASSERT_LE(0, et);
	ASSERT_EQ(0, add1(lt, sock_ev(rfd, KEVENT_SOCKET_RECV, 0)));
	ASSERT_EQ(0, add1(et, sock_ev(rfd, KEVENT_SOCKET_RECV, KEVENT_REQ_ET)));
	EXPECT_EQ(0, poll_now(lt, ev, 4));
	EXPECT_EQ(0, poll_now(et, ev, 4));

	ASSERT_EQ(1, send(wfd, "a", 1, 0));
	ASSERT_EQ(1, wait_ev(lt, ev, 4, 1000));
	EXPECT_EQ(KEVENT_SOCKET_RECV, ev[0].event);
	EXPECT_EQ(KEVENT_TYPE_SOCKET, ev[0].type);
	EXPECT_EQ((__u64)rfd, ev[0].id);
	EXPECT_EQ(0x50c000 + rfd, ev[0].user_data);
	EXPECT_EQ(KEVENT_RET_DONE, ev[0].ret_flags);
	EXPECT_EQ(0, ev[0].ret_data);
	/* Level: still readable, reported again. */
	EXPECT_EQ(1, poll_now(lt, ev, 4));
	/* Edge: once. */
	EXPECT_EQ(1, poll_now(et, ev, 4));
	EXPECT_EQ(0, poll_now(et, ev, 4));
	ASSERT_EQ(1, send(wfd, "b", 1, 0));
	EXPECT_EQ(1, wait_ev(et, ev, 4, 1000));
	/* Drained: neither reports. */
	drain(rfd);
	EXPECT_EQ(0, poll_now(lt, ev, 4));
	EXPECT_EQ(0, poll_now(et, ev, 4));
	close(lt);
	close(et);
}

TEST(socket_bad_registrations)
{
	struct ukevent uk;
	int kfd = kevent_init(0), p[2], sv[2];

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	EXPECT_EQ(-1, add1(kfd, sock_ev(p[0], KEVENT_SOCKET_RECV, 0)));
	EXPECT_EQ(ENOTSOCK, errno);
	EXPECT_EQ(-1, add1(kfd, sock_ev(999, KEVENT_SOCKET_RECV, 0)));
	EXPECT_EQ(EBADF, errno);
	EXPECT_EQ(-1, add1(kfd, sock_ev(sv[0], 0x40, 0)));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, add1(kfd, sock_ev(sv[0], 0, 0)));
	EXPECT_EQ(EINVAL, errno);
	uk = sock_ev(sv[0], KEVENT_SOCKET_RECV, 0);
	uk.arg[0] = 1;
	EXPECT_EQ(-1, add1(kfd, uk));
	EXPECT_EQ(EINVAL, errno);
	uk = sock_ev(sv[0], KEVENT_SOCKET_RECV, KEVENT_REQ_ABSTIME);
	EXPECT_EQ(-1, add1(kfd, uk));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, add1(kfd, sock_ev(sv[0], SOCK_ALL, 0)));
	EXPECT_EQ(-1, add1(kfd, sock_ev(sv[0], SOCK_ALL, 0)));
	EXPECT_EQ(EEXIST, errno);
	/* Closing the descriptor removes the registration, as for poll kevents. */
	close(sv[0]);
	EXPECT_EQ(-1, ctl1(kfd, KEVENT_CTL_REMOVE, sock_ev(sv[0], SOCK_ALL, 0)));
	EXPECT_EQ(ENOENT, errno);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
	close(kfd);
}

TEST(tcp_nonblocking_connect_and_accept)
{
	struct ukevent ev;
	unsigned short port;
	int kfd = kevent_init(0), l, c, s;

	ASSERT_LE(0, kfd);
	l = tcp_listener(&port);
	ASSERT_LE(0, l);
	ASSERT_EQ(0, add1(kfd, sock_ev(l, KEVENT_SOCKET_ACCEPT, 0)));
	/* Registered before connect(): the completion is reported. */
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ASSERT_LE(0, c);
	ASSERT_EQ(0, add1(kfd, sock_ev(c, KEVENT_SOCKET_CONNECT | KEVENT_SOCKET_SEND,
				       KEVENT_REQ_ONESHOT)));
	{
		struct sockaddr_in a = {
			.sin_family = AF_INET,
			.sin_port = htons(port),
			.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
		};
		int r = connect(c, (struct sockaddr *)&a, sizeof(a));

		ASSERT_TRUE(r == 0 || errno == EINPROGRESS);
	}
	ASSERT_EQ(1, wait_for(kfd, KEVENT_TYPE_SOCKET, c, KEVENT_SOCKET_CONNECT, 2000, &ev));
	EXPECT_EQ(KEVENT_SOCKET_CONNECT | KEVENT_SOCKET_SEND, ev.event);
	EXPECT_EQ(KEVENT_RET_DONE, ev.ret_flags);
	/* The listener has the connection waiting; level triggered until accepted. */
	ASSERT_EQ(1, wait_for(kfd, KEVENT_TYPE_SOCKET, l, KEVENT_SOCKET_ACCEPT, 2000, &ev));
	EXPECT_EQ(KEVENT_SOCKET_ACCEPT, ev.event);
	ASSERT_EQ(1, poll_now(kfd, &ev, 1));
	EXPECT_EQ((__u64)l, ev.id);
	s = accept(l, NULL, NULL);
	ASSERT_LE(0, s);
	EXPECT_EQ(0, poll_now(kfd, &ev, 1));
	/* The oneshot kevent on the client is gone. */
	EXPECT_EQ(-1, ctl1(kfd, KEVENT_CTL_REMOVE, sock_ev(c, KEVENT_SOCKET_CONNECT, 0)));
	EXPECT_EQ(ENOENT, errno);
	close(s);
	close(c);
	close(l);
	close(kfd);
}

TEST(tcp_accept_many_pending)
{
	struct ukevent ev[4];
	unsigned short port;
	int lt = kevent_init(0), et = kevent_init(0), l, i, n, c[32], s;

	ASSERT_LE(0, lt);
	ASSERT_LE(0, et);
	l = tcp_listener(&port);
	ASSERT_LE(0, l);
	ASSERT_EQ(0, add1(lt, sock_ev(l, KEVENT_SOCKET_ACCEPT, 0)));
	ASSERT_EQ(0, add1(et, sock_ev(l, KEVENT_SOCKET_ACCEPT, KEVENT_REQ_ET)));
	for (i = 0; i < 32; i++) {
		c[i] = tcp_connect(port, 0);
		ASSERT_LE(0, c[i]);
	}
	/* Let the last handshakes reach the accept queue. */
	usleep(50000);
	/* Many connections, one kevent: one event per call. */
	ASSERT_EQ(1, wait_ev(lt, ev, 4, 1000));
	EXPECT_EQ(KEVENT_SOCKET_ACCEPT, ev[0].event);
	ASSERT_EQ(1, wait_ev(et, ev, 4, 1000));
	EXPECT_EQ(0, poll_now(et, ev, 4));
	/* Level: reported until the last one is accepted. */
	for (n = 0; n < 32; n++) {
		ASSERT_EQ(1, wait_ev(lt, ev, 4, 1000));
		s = accept(l, NULL, NULL);
		ASSERT_LE(0, s);
		close(s);
	}
	EXPECT_EQ(0, poll_now(lt, ev, 4));
	EXPECT_EQ(0, poll_now(et, ev, 4));
	/* A new connection is new activity for the edge-triggered kevent. */
	s = tcp_connect(port, 0);
	ASSERT_LE(0, s);
	EXPECT_EQ(1, wait_ev(et, ev, 4, 1000));
	close(s);
	for (i = 0; i < 32; i++)
		close(c[i]);
	close(l);
	close(lt);
	close(et);
}

TEST(tcp_recv_level_and_edge)
{
	int sv[2];

	ASSERT_EQ(0, tcp_pair(sv));
	check_recv_lt_et(_metadata, sv[1], sv[0]);
	close(sv[0]);
	close(sv[1]);
}

TEST(tcp_send_space)
{
	struct ukevent ev;
	int sv[2], kfd = kevent_init(0), size = 4096, full = 0, blocked = 0, i, got;
	char buf[4096] = { 0 };

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, tcp_pair(sv));
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	ASSERT_EQ(0, add1(kfd, sock_ev(sv[0], KEVENT_SOCKET_SEND, 0)));
	/* Connected with room: level triggered SEND at once. */
	ASSERT_EQ(1, wait_ev(kfd, &ev, 1, 1000));
	EXPECT_EQ(KEVENT_SOCKET_SEND, ev.event);
	/* Fill both buffers until a send would block, and stays blocked. */
	for (i = 0; i < 100 && blocked < 3; i++) {
		if (send(sv[0], buf, sizeof(buf), MSG_DONTWAIT) < 0) {
			ASSERT_EQ(EAGAIN, errno);
			blocked++;
			usleep(20000);
		} else {
			blocked = 0;
			i = 0;
			ASSERT_LT(++full, 100000);
		}
	}
	ASSERT_EQ(3, blocked);
	EXPECT_EQ(0, poll_now(kfd, &ev, 1));
	/* The peer reads: room again, reported without polling the socket. */
	for (i = 0, got = 0; i < 200 && !got; i++) {
		drain(sv[1]);
		got = wait_for(kfd, KEVENT_TYPE_SOCKET, sv[0], KEVENT_SOCKET_SEND, 10, &ev);
	}
	ASSERT_EQ(1, got);
	close(sv[0]);
	close(sv[1]);
	close(kfd);
}

TEST(tcp_peer_close_hup)
{
	struct ukevent ev;
	int sv[2], kfd = kevent_init(0);

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, tcp_pair(sv));
	ASSERT_EQ(0, add1(kfd, sock_ev(sv[1], KEVENT_SOCKET_RECV | KEVENT_SOCKET_HUP, 0)));
	EXPECT_EQ(0, poll_now(kfd, &ev, 1));
	close(sv[0]);
	ASSERT_EQ(1, wait_for(kfd, KEVENT_TYPE_SOCKET, sv[1], KEVENT_SOCKET_HUP, 2000, &ev));
	/* EOF is readable too. */
	EXPECT_EQ(KEVENT_SOCKET_RECV | KEVENT_SOCKET_HUP, ev.event);
	EXPECT_EQ(KEVENT_RET_DONE, ev.ret_flags);
	close(sv[1]);
	close(kfd);
}

TEST(tcp_reset_reports_error)
{
	struct linger lin = { .l_onoff = 1, .l_linger = 0 };
	struct ukevent ev;
	int sv[2], kfd = kevent_init(0), err;
	socklen_t len = sizeof(err);

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, tcp_pair(sv));
	ASSERT_EQ(0, add1(kfd, sock_ev(sv[1], KEVENT_SOCKET_ERR | KEVENT_SOCKET_HUP, 0)));
	ASSERT_EQ(0, setsockopt(sv[0], SOL_SOCKET, SO_LINGER, &lin, sizeof(lin)));
	close(sv[0]);	/* sends a RST */
	ASSERT_EQ(1, wait_for(kfd, KEVENT_TYPE_SOCKET, sv[1], KEVENT_SOCKET_ERR, 2000, &ev));
	EXPECT_EQ(KEVENT_SOCKET_ERR | KEVENT_SOCKET_HUP, ev.event);
	EXPECT_EQ(-ECONNRESET, ev.ret_data);
	/* Level triggered: the error stays until it is read. */
	ASSERT_EQ(1, poll_now(kfd, &ev, 1));
	EXPECT_EQ(-ECONNRESET, ev.ret_data);
	ASSERT_EQ(0, getsockopt(sv[1], SOL_SOCKET, SO_ERROR, &err, &len));
	EXPECT_EQ(ECONNRESET, err);
	ASSERT_EQ(1, poll_now(kfd, &ev, 1));
	EXPECT_EQ(KEVENT_SOCKET_HUP, ev.event);
	EXPECT_EQ(0, ev.ret_data);
	close(sv[1]);
	close(kfd);
}

TEST(tcp_connect_refused)
{
	struct ukevent ev;
	unsigned short port;
	int kfd = kevent_init(0), l, c;

	ASSERT_LE(0, kfd);
	/* A port nobody listens on. */
	l = tcp_listener(&port);
	ASSERT_LE(0, l);
	close(l);
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ASSERT_LE(0, c);
	ASSERT_EQ(0, add1(kfd, sock_ev(c, KEVENT_SOCKET_CONNECT | KEVENT_SOCKET_ERR,
				       KEVENT_REQ_ET)));
	{
		struct sockaddr_in a = {
			.sin_family = AF_INET,
			.sin_port = htons(port),
			.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
		};
		int r = connect(c, (struct sockaddr *)&a, sizeof(a));

		ASSERT_TRUE(r == -1 && (errno == EINPROGRESS || errno == ECONNREFUSED));
		if (errno == ECONNREFUSED)
			SKIP(goto out, "connect failed synchronously");
	}
	ASSERT_EQ(1, wait_for(kfd, KEVENT_TYPE_SOCKET, c, KEVENT_SOCKET_ERR, 2000, &ev));
	EXPECT_EQ(KEVENT_SOCKET_ERR, ev.event);
	EXPECT_EQ(-ECONNREFUSED, ev.ret_data);
out:
	close(c);
	close(kfd);
}

TEST(udp_recv_send)
{
	struct ukevent ev;
	int sv[2], kfd = kevent_init(0);

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, udp_pair(sv));
	/* A datagram socket with room in its send buffer can send. */
	ASSERT_EQ(0, add1(kfd, sock_ev(sv[0], KEVENT_SOCKET_SEND | KEVENT_SOCKET_CONNECT, 0)));
	ASSERT_EQ(1, wait_ev(kfd, &ev, 1, 1000));
	EXPECT_EQ(KEVENT_SOCKET_SEND | KEVENT_SOCKET_CONNECT, ev.event);
	close(kfd);
	check_recv_lt_et(_metadata, sv[1], sv[0]);
	close(sv[0]);
	close(sv[1]);
}

TEST(unix_stream)
{
	struct ukevent ev;
	int sv[2], kfd = kevent_init(0);

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	check_recv_lt_et(_metadata, sv[1], sv[0]);
	ASSERT_EQ(0, add1(kfd, sock_ev(sv[1], SOCK_ALL, 0)));
	ASSERT_EQ(1, wait_ev(kfd, &ev, 1, 1000));
	EXPECT_EQ(KEVENT_SOCKET_SEND | KEVENT_SOCKET_CONNECT, ev.event);
	/* Peer closed: EOF and hang-up, and no more sending. */
	close(sv[0]);
	ASSERT_EQ(1, wait_for(kfd, KEVENT_TYPE_SOCKET, sv[1], KEVENT_SOCKET_HUP, 1000, &ev));
	EXPECT_EQ(KEVENT_SOCKET_RECV | KEVENT_SOCKET_HUP, ev.event & ~KEVENT_SOCKET_CONNECT);
	close(sv[1]);
	close(kfd);
}

TEST(unix_stream_listener)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct ukevent ev;
	socklen_t len;
	int kfd = kevent_init(0), l, c[4], s, i;

	ASSERT_LE(0, kfd);
	/* An abstract address: no file system involved. */
	snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "kevent-test-%d", getpid());
	len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a.sun_path + 1);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	ASSERT_LE(0, l);
	ASSERT_EQ(0, bind(l, (struct sockaddr *)&a, len));
	ASSERT_EQ(0, listen(l, 8));
	ASSERT_EQ(0, add1(kfd, sock_ev(l, KEVENT_SOCKET_ACCEPT | KEVENT_SOCKET_RECV, 0)));
	EXPECT_EQ(0, poll_now(kfd, &ev, 1));
	for (i = 0; i < 4; i++) {
		c[i] = socket(AF_UNIX, SOCK_STREAM, 0);
		ASSERT_LE(0, c[i]);
		ASSERT_EQ(0, connect(c[i], (struct sockaddr *)&a, len));
	}
	ASSERT_EQ(1, wait_ev(kfd, &ev, 1, 1000));
	/* A listener is never "readable": only ACCEPT. */
	EXPECT_EQ(KEVENT_SOCKET_ACCEPT, ev.event);
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(1, poll_now(kfd, &ev, 1));
		s = accept(l, NULL, NULL);
		ASSERT_LE(0, s);
		close(s);
	}
	EXPECT_EQ(0, poll_now(kfd, &ev, 1));
	for (i = 0; i < 4; i++)
		close(c[i]);
	close(l);
	close(kfd);
}

TEST(unix_dgram)
{
	struct ukevent ev;
	int sv[2], kfd = kevent_init(0);

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
	check_recv_lt_et(_metadata, sv[1], sv[0]);
	ASSERT_EQ(0, add1(kfd, sock_ev(sv[0], KEVENT_SOCKET_SEND, KEVENT_REQ_ET)));
	ASSERT_EQ(1, wait_ev(kfd, &ev, 1, 1000));
	EXPECT_EQ(KEVENT_SOCKET_SEND, ev.event);
	EXPECT_EQ(0, poll_now(kfd, &ev, 1));
	/* The datagram is freed when read: write space, new activity. */
	ASSERT_EQ(1, send(sv[0], "x", 1, 0));
	drain(sv[1]);
	ASSERT_EQ(1, wait_ev(kfd, &ev, 1, 1000));
	EXPECT_EQ(KEVENT_SOCKET_SEND, ev.event);
	close(sv[0]);
	close(sv[1]);
	close(kfd);
}

/* A fresh directory on the tmpfs at /tmp. */
static int make_dir(char *path, size_t size)
{
	snprintf(path, size, "/tmp/kevent-src.XXXXXX");
	return mkdtemp(path) ? 0 : -1;
}

static __u64 ino_of(const char *path)
{
	struct stat st;

	if (lstat(path, &st))
		return 0;
	return st.st_ino;
}

/* Expects exactly one event, for the inode kevent on @fd, with @event and @ino. */
static void expect_inode_ev(struct __test_metadata *_metadata, int kfd, int fd,
			    __u32 event, __u64 ino)
{
	struct ukevent ev[4];

	ASSERT_EQ(1, poll_now(kfd, ev, 4));
	EXPECT_EQ(KEVENT_TYPE_INODE, ev[0].type);
	EXPECT_EQ((__u64)fd, ev[0].id);
	EXPECT_EQ(KEVENT_RET_DONE, ev[0].ret_flags);
	EXPECT_EQ(event, ev[0].event);
	EXPECT_EQ(ino, (__u64)ev[0].ret_data);
}

TEST(inode_create_and_remove)
{
	char dir[64], other[64], p[128], q[128];
	int kfd = kevent_init(0), d, o, i, n, seen = 0;
	struct ukevent none, ev[4];
	__u64 ino;

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, make_dir(dir, sizeof(dir)));
	ASSERT_EQ(0, make_dir(other, sizeof(other)));
	d = open(dir, O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, d);
	o = open(other, O_PATH);
	ASSERT_LE(0, o);
	ASSERT_EQ(0, add1(kfd, inode_ev(d, INODE_ALL, 0)));
	ASSERT_EQ(0, add1(kfd, inode_ev(o, KEVENT_INODE_REMOVE, 0)));
	EXPECT_EQ(0, poll_now(kfd, &none, 1));

	snprintf(p, sizeof(p), "%s/file", dir);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	expect_inode_ev(_metadata, kfd, d, KEVENT_INODE_CREATE, ino_of(p));

	snprintf(p, sizeof(p), "%s/dir", dir);
	ASSERT_EQ(0, mkdir(p, 0700));
	expect_inode_ev(_metadata, kfd, d, KEVENT_INODE_CREATE, ino_of(p));

	snprintf(p, sizeof(p), "%s/fifo", dir);
	ASSERT_EQ(0, mknod(p, S_IFIFO | 0600, 0));
	expect_inode_ev(_metadata, kfd, d, KEVENT_INODE_CREATE, ino_of(p));

	snprintf(p, sizeof(p), "%s/symlink", dir);
	ASSERT_EQ(0, symlink("file", p));
	expect_inode_ev(_metadata, kfd, d, KEVENT_INODE_CREATE, ino_of(p));

	snprintf(p, sizeof(p), "%s/file", dir);
	snprintf(q, sizeof(q), "%s/link", dir);
	ASSERT_EQ(0, link(p, q));
	expect_inode_ev(_metadata, kfd, d, KEVENT_INODE_CREATE, ino_of(p));

	/* Rename into the watched directory: CREATE here, REMOVE there. */
	snprintf(p, sizeof(p), "%s/moved", other);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	ino = ino_of(p);
	snprintf(q, sizeof(q), "%s/moved", dir);
	ASSERT_EQ(0, rename(p, q));
	n = poll_now(kfd, ev, 4);
	ASSERT_EQ(2, n);
	for (i = 0; i < n; i++) {
		EXPECT_EQ(ino, (__u64)ev[i].ret_data);
		if (ev[i].id == (__u64)d && ev[i].event == KEVENT_INODE_CREATE)
			seen |= 1;
		if (ev[i].id == (__u64)o && ev[i].event == KEVENT_INODE_REMOVE)
			seen |= 2;
	}
	EXPECT_EQ(3, seen);

	/* Removals: unlink and rmdir. */
	ino = ino_of(q);
	ASSERT_EQ(0, unlink(q));
	expect_inode_ev(_metadata, kfd, d, KEVENT_INODE_REMOVE, ino);
	snprintf(p, sizeof(p), "%s/dir", dir);
	ino = ino_of(p);
	ASSERT_EQ(0, rmdir(p));
	expect_inode_ev(_metadata, kfd, d, KEVENT_INODE_REMOVE, ino);
	EXPECT_EQ(0, poll_now(kfd, &none, 1));

	snprintf(p, sizeof(p), "%s/file", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/link", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/fifo", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/symlink", dir);
	unlink(p);
	close(d);
	close(o);
	rmdir(dir);
	rmdir(other);
	close(kfd);
}

TEST(inode_level_is_edge_and_last_value_wins)
{
	struct ukevent ev[4];
	char dir[64], p[128];
	int lt = kevent_init(0), et = kevent_init(0), d, i;

	ASSERT_LE(0, lt);
	ASSERT_LE(0, et);
	ASSERT_EQ(0, make_dir(dir, sizeof(dir)));
	d = open(dir, O_PATH);
	ASSERT_LE(0, d);
	ASSERT_EQ(0, add1(lt, inode_ev(d, KEVENT_INODE_CREATE, 0)));
	ASSERT_EQ(0, add1(et, inode_ev(d, KEVENT_INODE_CREATE, KEVENT_REQ_ET)));
	for (i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/f%d", dir, i);
		close(open(p, O_CREAT | O_WRONLY, 0600));
	}
	/* No level state: one report per batch of activity, in both modes. */
	ASSERT_EQ(1, poll_now(lt, ev, 4));
	EXPECT_EQ(ino_of(p), (__u64)ev[0].ret_data);
	EXPECT_EQ(0, poll_now(lt, ev, 4));
	ASSERT_EQ(1, poll_now(et, ev, 4));
	EXPECT_EQ(ino_of(p), (__u64)ev[0].ret_data);
	EXPECT_EQ(0, poll_now(et, ev, 4));
	for (i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/f%d", dir, i);
		unlink(p);
	}
	/* CREATE only: removals are not reported. */
	EXPECT_EQ(0, poll_now(lt, ev, 4));
	close(d);
	rmdir(dir);
	close(lt);
	close(et);
}

TEST(inode_bad_registrations)
{
	struct ukevent uk;
	char dir[64];
	int kfd = kevent_init(0), d;

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, make_dir(dir, sizeof(dir)));
	d = open(dir, O_PATH);
	ASSERT_LE(0, d);
	EXPECT_EQ(-1, add1(kfd, inode_ev(999, KEVENT_INODE_CREATE, 0)));
	EXPECT_EQ(EBADF, errno);
	EXPECT_EQ(-1, add1(kfd, inode_ev(d, 0x4, 0)));
	EXPECT_EQ(EINVAL, errno);
	uk = inode_ev(d, KEVENT_INODE_CREATE, 0);
	uk.arg_fd = d;
	EXPECT_EQ(-1, add1(kfd, uk));
	EXPECT_EQ(EINVAL, errno);
	close(d);
	rmdir(dir);
	close(kfd);
}

TEST(inode_watched_file_removed_then_evicted)
{
	struct ukevent ev[4];
	char dir[64], p[128];
	int kfd = kevent_init(0), f;
	__u64 ino;

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, make_dir(dir, sizeof(dir)));
	snprintf(p, sizeof(p), "%s/victim", dir);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	ino = ino_of(p);
	f = open(p, O_PATH);
	ASSERT_LE(0, f);
	ASSERT_EQ(0, add1(kfd, inode_ev(f, KEVENT_INODE_REMOVE, 0)));
	/* The open descriptor keeps the inode: its last link going is REMOVE. */
	ASSERT_EQ(0, unlink(p));
	expect_inode_ev(_metadata, kfd, f, KEVENT_INODE_REMOVE, ino);
	/* Closing it evicts the inode: one broken report, then the kevent is gone. */
	close(f);
	ASSERT_EQ(1, wait_ev(kfd, ev, 4, 1000));
	EXPECT_EQ(KEVENT_RET_BROKEN, ev[0].ret_flags);
	EXPECT_EQ(-ENOENT, ev[0].ret_data);
	EXPECT_EQ(0, poll_now(kfd, ev, 4));
	EXPECT_EQ(-1, ctl1(kfd, KEVENT_CTL_REMOVE, inode_ev(f, KEVENT_INODE_REMOVE, 0)));
	EXPECT_EQ(ENOENT, errno);
	rmdir(dir);
	close(kfd);
}

TEST(inode_kevent_does_not_pin)
{
	struct ukevent ev[4];
	char dir[64], p[128];
	int kfd = kevent_init(0), f, id;

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, make_dir(dir, sizeof(dir)));
	snprintf(p, sizeof(p), "%s/victim", dir);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	f = open(p, O_PATH);
	ASSERT_LE(0, f);
	ASSERT_EQ(0, add1(kfd, inode_ev(f, KEVENT_INODE_REMOVE, 0)));
	/* Inode kevents do not follow the descriptor, nor keep the inode. */
	id = f;
	close(f);
	EXPECT_EQ(0, poll_now(kfd, ev, 4));
	ASSERT_EQ(0, unlink(p));
	/* Unlinked and evicted: exactly one broken report. */
	ASSERT_EQ(1, wait_ev(kfd, ev, 4, 1000));
	EXPECT_EQ((__u64)id, ev[0].id);
	EXPECT_EQ(KEVENT_RET_BROKEN, ev[0].ret_flags);
	EXPECT_EQ(-ENOENT, ev[0].ret_data);
	EXPECT_EQ(0, poll_now(kfd, ev, 4));
	rmdir(dir);
	close(kfd);
}

TEST(inode_unmount_with_kevents)
{
	struct ukevent ev[4];
	char mnt[64], p[128];
	int kfd = kevent_init(0), d, f, n, i, broken = 0;

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, make_dir(mnt, sizeof(mnt)));
	if (mount("tmpfs", mnt, "tmpfs", 0, NULL)) {
		rmdir(mnt);
		SKIP(return, "cannot mount a tmpfs: %s", strerror(errno));
	}
	d = open(mnt, O_PATH);
	ASSERT_LE(0, d);
	ASSERT_EQ(0, add1(kfd, inode_ev(d, INODE_ALL, 0)));
	snprintf(p, sizeof(p), "%s/file", mnt);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	f = open(p, O_PATH);
	ASSERT_LE(0, f);
	ASSERT_EQ(0, add1(kfd, inode_ev(f, INODE_ALL, 0)));
	expect_inode_ev(_metadata, kfd, d, KEVENT_INODE_CREATE, ino_of(p));
	close(f);
	close(d);
	ASSERT_EQ(0, umount(mnt));
	/* Both inodes went with the file system: each kevent broken once. */
	for (i = 0; i < 10 && broken < 2; i++) {
		n = wait_ev(kfd, ev, 4, 100);
		while (n-- > 0) {
			EXPECT_EQ(KEVENT_RET_BROKEN, ev[n].ret_flags);
			EXPECT_EQ(-ENODEV, ev[n].ret_data);
			broken++;
		}
	}
	EXPECT_EQ(2, broken);
	EXPECT_EQ(0, poll_now(kfd, ev, 4));
	rmdir(mnt);
	close(kfd);
}

TEST(mixed_batch)
{
	struct ukevent uk[4], ev[8];
	char dir[64], p[128];
	int kfd = kevent_init(0), pp[2], sv[2], d, i, n, seen = 0;
	struct timespec t0, t1;
	long left;

	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, pipe(pp));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, make_dir(dir, sizeof(dir)));
	d = open(dir, O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, d);
	memset(uk, 0, sizeof(uk));
	uk[0].type = KEVENT_TYPE_TIMER;
	uk[0].id = 1000;
	uk[0].event = KEVENT_TIMER_FIRED;
	uk[0].arg[0] = 20000000;
	uk[1].type = KEVENT_TYPE_POLL;
	uk[1].id = pp[0];
	uk[1].event = POLLIN;
	uk[2] = sock_ev(sv[1], KEVENT_SOCKET_RECV, KEVENT_REQ_ET);
	uk[3] = inode_ev(d, KEVENT_INODE_CREATE, KEVENT_REQ_ONESHOT);
	ASSERT_EQ(4, sys_kevent_ctl(kfd, KEVENT_CTL_ADD, 4, uk));
	for (i = 0; i < 4; i++)
		EXPECT_EQ(KEVENT_RET_DONE, uk[i].ret_flags);

	ASSERT_EQ(1, write(pp[1], "x", 1));
	ASSERT_EQ(1, send(sv[0], "y", 1, 0));
	snprintf(p, sizeof(p), "%s/new", dir);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	/*
	 * The level-triggered pipe kevent stays ready (its byte is never read),
	 * so waits return at once: bound the loop by time, not by iterations,
	 * or it ends before the 20 ms timer fires.
	 */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		left = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (seen == 0xf || left >= 2000)
			break;
		n = wait_ev(kfd, ev, 8, 10);
		for (i = 0; i < n; i++) {
			EXPECT_EQ(KEVENT_RET_DONE, ev[i].ret_flags);
			switch (ev[i].type) {
			case KEVENT_TYPE_TIMER:
				seen |= 1;
				break;
			case KEVENT_TYPE_POLL:
				seen |= 2;
				break;
			case KEVENT_TYPE_SOCKET:
				EXPECT_EQ(KEVENT_SOCKET_RECV, ev[i].event);
				seen |= 4;
				break;
			case KEVENT_TYPE_INODE:
				EXPECT_EQ(ino_of(p), (__u64)ev[i].ret_data);
				seen |= 8;
				break;
			}
		}
	}
	EXPECT_EQ(0xf, seen);
	/* The oneshot inode kevent is gone; the others stay. */
	EXPECT_EQ(-1, ctl1(kfd, KEVENT_CTL_REMOVE, uk[3]));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(0, ctl1(kfd, KEVENT_CTL_REMOVE, uk[2]));
	unlink(p);
	close(d);
	rmdir(dir);
	close(sv[0]);
	close(sv[1]);
	close(pp[0]);
	close(pp[1]);
	close(kfd);
}

TEST_HARNESS_MAIN
