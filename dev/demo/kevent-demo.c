// SPDX-License-Identifier: GPL-2.0
/*
 * kevent demo: runs in the booted kevent kernel (dev/kevent run).
 *
 * One queue, four sources: a 100 ms periodic timer, a pipe a child writes
 * to, a TCP listener on 127.0.0.1 the child connects to (socket source:
 * ACCEPT, then RECV and HUP on the accepted connection) and a directory in
 * which the child creates and removes a file (inode source: CREATE and
 * REMOVE with the entry's inode number). The child follows a fixed
 * schedule of about half a second; the demo ends when it has seen every
 * part through (or, as a failure, after DEADLINE_MS). A kernel without the
 * socket or inode source rejects that entry with EINVAL: the demo says so
 * and goes on without it.
 *
 * Network AIO completes through the same queue: the demo sends a file in
 * /tmp over a UNIX socket pair with aio_sendfile() while an aio_recv()
 * (KEVENT_REQ_AIO_WAITALL) on the other end waits for all of it; each
 * request is one event with its byte count, and the received bytes are
 * compared with the file. A kernel without the AIO source rejects both
 * requests with EINVAL, and the demo goes on without them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <libkevent.h>		/* tools/lib/kevent */

#define DIR_PATH	"/tmp/kevent-demo"
#define AIO_PATH	"/tmp/kevent-demo-aio"
#define AIO_LEN		(256 * 1024)	/* more than a UNIX socket buffer holds */
#define FILE_PATH	DIR_PATH "/file"
#define LINE		"hello over TCP from the child\n"
#define DEADLINE_MS	1000	/* give up then; normally done after about 480 ms */

/* user_data of each kevent: the part of the demo it belongs to. */
enum { UD_TIMER = 1, UD_PIPE, UD_LISTENER, UD_CONN, UD_DIR, UD_SENDFILE, UD_RECV };
static const char *const part_name[] = {
	[UD_TIMER] = "timer", [UD_PIPE] = "pipe", [UD_LISTENER] = "socket",
	[UD_CONN] = "socket", [UD_DIR] = "inode", [UD_SENDFILE] = "aio sendfile",
	[UD_RECV] = "aio recv",
};

/* Parts still to be seen through: the main loop runs until none is left. */
#define WAIT_PIPE	0x1
#define WAIT_TCP	0x2
#define WAIT_DIR	0x4
#define WAIT_SENDFILE	0x8
#define WAIT_RECV	0x10

static struct timespec t0;	/* when the queue was filled; the child's clock too */
static int aio_matches(void);

static double ms_since_t0(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0.tv_sec) * 1e3 + (t.tv_nsec - t0.tv_nsec) / 1e6;
}

/* One line of the event log: the time since t0, then the text. */
static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
	va_list ap;

	printf("  %7.1f ms  ", ms_since_t0());
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static const char *errname(int err)
{
	const char *s = strerrorname_np(err);

	return s ? s : "unknown errno";
}

static const char *inode_events(__u32 events)
{
	switch (events & (KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE)) {
	case KEVENT_INODE_CREATE:
		return "CREATE";
	case KEVENT_INODE_REMOVE:
		return "REMOVE";
	case KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE:
		return "CREATE|REMOVE";	/* both before one delivery: the last inode */
	}
	return "no event";
}

/* The WAIT_* bit of the part a kevent belongs to. */
static int wait_bit(int ud)
{
	switch (ud) {
	case UD_PIPE:
		return WAIT_PIPE;
	case UD_LISTENER:
	case UD_CONN:
		return WAIT_TCP;
	case UD_DIR:
		return WAIT_DIR;
	case UD_SENDFILE:
		return WAIT_SENDFILE;
	case UD_RECV:
		return WAIT_RECV;
	}
	return 0;
}

/* The child sleeps until @ms after t0 (one schedule for both processes). */
static void sleep_until(int ms)
{
	struct timespec t = t0;

	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000;
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
		;
}

static int child_failed;

static void child_error(const char *what)
{
	fprintf(stderr, "  child: %s: %s\n", what, strerror(errno));
	child_failed = 1;
}

static void child_pipe_write(int wfd, int i)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "message %d", i);

	if (write(wfd, buf, n) != n)
		child_error("write(pipe)");
}

/*
 * The child: three pipe messages; if @port, a TCP connection that sends
 * LINE and closes; if @dir, a file created and removed in DIR_PATH. Then it
 * exits, which closes the pipe's write end. Its steps are 50 ms apart and
 * fall between the timer's ticks.
 */
static void child(int wfd, int port, int dir)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int s = -1, f;

	sleep_until(75);
	child_pipe_write(wfd, 1);
	if (port) {
		sleep_until(125);
		sa.sin_port = htons(port);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa))) {
			child_error("connect(127.0.0.1)");
			if (s >= 0)
				close(s);
			s = -1;
		}
	}
	if (s >= 0) {
		sleep_until(175);
		if (send(s, LINE, strlen(LINE), MSG_NOSIGNAL) != (ssize_t)strlen(LINE))
			child_error("send");
	}
	sleep_until(225);
	child_pipe_write(wfd, 2);
	if (s >= 0) {
		sleep_until(275);
		close(s);
	}
	if (dir) {
		sleep_until(325);
		f = open(FILE_PATH, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		if (f < 0)
			child_error("creat(" FILE_PATH ")");
		else
			close(f);
	}
	sleep_until(375);
	child_pipe_write(wfd, 3);
	if (dir) {
		sleep_until(425);
		if (unlink(FILE_PATH))
			child_error("unlink(" FILE_PATH ")");
	}
	sleep_until(475);
	_exit(child_failed);
}

/* A listening TCP socket on 127.0.0.1, port chosen by the kernel. */
static int tcp_listener(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len)) {
		printf("  TCP listener on 127.0.0.1: %s: no socket part\n", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

/* DIR_PATH, made if needed, empty of our file, opened. */
static int watched_dir(void)
{
	int fd;

	if (mkdir(DIR_PATH, 0755) && errno != EEXIST) {
		printf("  mkdir(" DIR_PATH "): %s: no inode part\n", strerror(errno));
		return -1;
	}
	unlink(FILE_PATH);	/* left over from an interrupted run */
	fd = open(DIR_PATH, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		printf("  open(" DIR_PATH "): %s: no inode part\n", strerror(errno));
	return fd;
}

/* The demo's descriptors and progress, shared by main() and on_event(). */
static struct {
	int kfd, rfd, lfd, cfd, dfd;	/* queue, pipe read end, listener, connection, dir */
	int waiting;			/* WAIT_* */
	int failed;
	int count[UD_RECV + 1];		/* events by user_data */
	int aio_sv[2], aio_file;	/* AIO: the socket pair, the file sent */
	unsigned char *aio_buf;		/* where aio_recv() puts it */
} d = { .lfd = -1, .cfd = -1, .dfd = -1, .aio_sv = { -1, -1 }, .aio_file = -1 };

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Accepts the connection the listener reported and adds it for RECV|HUP. */
static void on_accept(void)
{
	struct ukevent uk;
	int r;

	d.cfd = accept4(d.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (d.cfd < 0) {
		say("socket fd %d: ACCEPT, but accept: %s", d.lfd, strerror(errno));
		goto fail;
	}
	kevent_prep_socket(&uk, d.cfd, KEVENT_SOCKET_RECV | KEVENT_SOCKET_HUP, UD_CONN);
	r = kevent_add(d.kfd, &uk, 1);
	if (r != 1) {
		say("socket fd %d: ACCEPT -> fd %d, but adding it: %s", d.lfd, d.cfd,
		    strerror(r < 0 ? errno : -kevent_result(&uk)));
		close_fd(&d.cfd);
		goto fail;
	}
	say("socket fd %d: ACCEPT -> accepted fd %d, added for RECV|HUP", d.lfd, d.cfd);
	return;
fail:
	d.failed = 1;
	d.waiting &= ~WAIT_TCP;
}

/* Reads what the connection's RECV reported; HUP closes it. */
static void on_conn(__u32 events)
{
	char buf[128];
	ssize_t r;

	if (events & KEVENT_SOCKET_RECV) {
		r = recv(d.cfd, buf, sizeof(buf) - 1, 0);
		if (r > 0) {
			buf[r] = 0;
			buf[strcspn(buf, "\n")] = 0;
			say("socket fd %d: RECV \"%s\"", d.cfd, buf);
		} else if (r < 0 && errno != EAGAIN) {
			say("socket fd %d: RECV, but recv: %s", d.cfd, strerror(errno));
			d.failed = 1;
		}
		/* r == 0 is the end of file, reported with HUP. */
	}
	if (events & KEVENT_SOCKET_HUP) {
		say("socket fd %d: HUP (peer closed)", d.cfd);
		close_fd(&d.cfd);	/* and with it the kevent */
		d.waiting &= ~WAIT_TCP;
	}
}

static void on_event(const struct ukevent *e)
{
	int u = e->user_data, fd = (int)e->id;
	char buf[64];
	ssize_t r;

	if (u < UD_TIMER || u > UD_RECV) {
		say("unexpected event, user_data %llu", (unsigned long long)e->user_data);
		d.failed = 1;
		return;
	}
	d.count[u]++;
	if (e->ret_flags & KEVENT_RET_BROKEN) {
		/* Reported once, then removed by the kernel. */
		say("%s fd %d: broken, %s", part_name[u], fd, errname(-kevent_result(e)));
		d.waiting &= ~wait_bit(u);
		d.failed = 1;
		return;
	}
	switch (u) {
	case UD_TIMER:
		say("timer %d fired (%lld expirations)", fd, (long long)e->ret_data);
		break;
	case UD_PIPE:
		if (e->event & POLLIN) {
			r = read(d.rfd, buf, sizeof(buf) - 1);
			buf[r > 0 ? r : 0] = 0;
			say("pipe fd %d readable: \"%s\"", fd, buf);
		}
		if (e->event & POLLHUP) {
			say("pipe fd %d: writer closed (POLLHUP)", fd);
			close(d.rfd);	/* removes the kevent: it follows the descriptor */
			d.waiting &= ~WAIT_PIPE;
		}
		break;
	case UD_LISTENER:
		on_accept();
		/* One connection is all the demo wants; this removes the kevent. */
		close_fd(&d.lfd);
		break;
	case UD_CONN:
		on_conn(e->event);
		break;
	case UD_DIR:
		say("inode fd %d (" DIR_PATH "): %s, inode %lld", fd, inode_events(e->event),
		    (long long)e->ret_data);
		if (e->event & KEVENT_INODE_REMOVE)
			d.waiting &= ~WAIT_DIR;
		break;
	case UD_SENDFILE:
		say("aio sendfile (" AIO_PATH " -> socket fd %d): done, %lld bytes", fd,
		    (long long)e->ret_data);
		d.waiting &= ~WAIT_SENDFILE;
		break;
	case UD_RECV:
		say("aio recv (socket fd %d, WAITALL): done, %lld bytes, %s", fd,
		    (long long)e->ret_data,
		    e->ret_data == AIO_LEN && aio_matches() ? "the same as the file" :
							     "NOT the file's bytes");
		if (e->ret_data != AIO_LEN || !aio_matches())
			d.failed = 1;
		d.waiting &= ~WAIT_RECV;
		break;
	}
}

/* The byte at @i of the file the AIO part sends. */
static unsigned char aio_byte(size_t i)
{
	return (unsigned char)(i * 7 + i / 251);
}

static int aio_matches(void)
{
	size_t i;

	for (i = 0; i < AIO_LEN; i++)
		if (d.aio_buf[i] != aio_byte(i))
			return 0;
	return 1;
}

/*
 * The AIO part: a file of AIO_LEN bytes in /tmp (tmpfs: in the page cache)
 * and a UNIX stream socket pair. Returns 0, or -1 (and says why) to go on
 * without it.
 */
static int aio_setup(void)
{
	static unsigned char chunk[4096];
	size_t i, off;

	d.aio_buf = calloc(1, AIO_LEN);
	d.aio_file = open(AIO_PATH, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (!d.aio_buf || d.aio_file < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, d.aio_sv)) {
		printf("  AIO set-up: %s: no AIO part\n", strerror(errno));
		return -1;
	}
	for (off = 0; off < AIO_LEN; off += sizeof(chunk)) {
		for (i = 0; i < sizeof(chunk); i++)
			chunk[i] = aio_byte(off + i);
		if (pwrite(d.aio_file, chunk, sizeof(chunk), off) != sizeof(chunk)) {
			printf("  write(" AIO_PATH "): %s: no AIO part\n", strerror(errno));
			return -1;
		}
	}
	return 0;
}

/*
 * Adds the timer, the pipe and, where set up, the listener and the
 * directory in one kevent_ctl(ADD) with a result per entry. Returns the
 * WAIT_* bits of the parts added, or -1 if the timer or pipe failed.
 */
static int add_all(void)
{
	struct ukevent reg[6];
	int i, n, r, u, nreg = 0, added = 0;

	kevent_prep_timer(&reg[nreg++], 1, 100000000, 100000000, UD_TIMER);
	kevent_prep_poll(&reg[nreg++], d.rfd, POLLIN | POLLHUP, UD_PIPE);
	if (d.lfd >= 0)
		kevent_prep_socket(&reg[nreg++], d.lfd, KEVENT_SOCKET_ACCEPT, UD_LISTENER);
	if (d.dfd >= 0)
		kevent_prep_inode(&reg[nreg++], d.dfd, KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE,
				  UD_DIR);
	if (d.aio_file >= 0) {
		/* The receive first: it waits for all of the file. */
		kevent_prep_aio_recv(&reg[nreg++], d.aio_sv[1], d.aio_buf, AIO_LEN,
				     KEVENT_REQ_AIO_WAITALL, UD_RECV);
		kevent_prep_aio_sendfile(&reg[nreg++], d.aio_sv[0], d.aio_file, 0, AIO_LEN,
					 UD_SENDFILE);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	n = kevent_add(d.kfd, reg, nreg);
	if (n < 0) {
		printf("  kevent_ctl(ADD, %d entries): %s\n", nreg, strerror(errno));
		return -1;
	}
	printf("  kevent_ctl(ADD, %d entries) -> %d:", nreg, n);
	for (i = 0; i < nreg; i++) {
		r = kevent_result(&reg[i]);
		printf("%s %s %s", i ? "," : "", part_name[reg[i].user_data],
		       r ? errname(-r) : "ok");
	}
	printf("\n");
	for (i = 0; i < nreg; i++) {
		r = kevent_result(&reg[i]);
		u = reg[i].user_data;
		if (!r) {
			added |= wait_bit(u);
		} else if (u == UD_TIMER || u == UD_PIPE) {
			printf("  the %s kevent failed: %s\n", part_name[u], strerror(-r));
			return -1;
		} else if (r == -EINVAL) {
			printf("  %s source missing (EINVAL): going on without it\n", part_name[u]);
		} else {
			printf("  the %s kevent failed: %s: going on without it\n", part_name[u],
			       strerror(-r));
			d.failed = 1;
		}
	}
	return added;
}

int main(void)
{
	struct ukevent ev[8], uk;
	int p[2], port = 0, wstatus, i, n;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("kevent demo: one queue for a 100 ms timer, a pipe, a TCP socket, a directory\n"
	       "and network AIO (a file sent with aio_sendfile, received with aio_recv)\n");
	d.kfd = kevent_queue(KEVENT_CLOEXEC);
	if (d.kfd < 0) {
		printf("  kevent_ctl(KEVENT_CTL_INIT): %s%s\n", strerror(errno),
		       errno == ENOSYS ? " (not a kernel with kevent)" : "");
		return 1;
	}
	if (pipe2(p, O_CLOEXEC)) {
		printf("  pipe: %s\n", strerror(errno));
		return 1;
	}
	d.rfd = p[0];
	d.lfd = tcp_listener(&port);
	d.dfd = watched_dir();
	if (aio_setup()) {
		close_fd(&d.aio_file);
		close_fd(&d.aio_sv[0]);
		close_fd(&d.aio_sv[1]);
	}
	d.waiting = add_all();
	if (d.waiting < 0)
		return 1;
	/* Parts not watched are left out of the child's schedule too. */
	if (!(d.waiting & WAIT_TCP))
		close_fd(&d.lfd);
	if (!(d.waiting & WAIT_DIR))
		close_fd(&d.dfd);

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		printf("  fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		close(d.kfd);
		close(d.rfd);
		close_fd(&d.lfd);
		close_fd(&d.dfd);
		child(p[1], d.waiting & WAIT_TCP ? port : 0, d.waiting & WAIT_DIR);
	}
	close(p[1]);

	while (d.waiting) {
		int left = DEADLINE_MS - (int)ms_since_t0();

		if (left <= 0) {
			say("timed out, still waiting for:%s%s%s%s%s",
			    d.waiting & WAIT_PIPE ? " pipe" : "",
			    d.waiting & WAIT_TCP ? " socket" : "",
			    d.waiting & WAIT_DIR ? " inode" : "",
			    d.waiting & WAIT_SENDFILE ? " aio-sendfile" : "",
			    d.waiting & WAIT_RECV ? " aio-recv" : "");
			d.failed = 1;
			break;
		}
		/* It may return 0 early (kevents found stale at delivery). */
		n = kevent_wait(d.kfd, ev, 1, 8, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			printf("  kevent_get_events: %s\n", strerror(errno));
			d.failed = 1;
			break;
		}
		for (i = 0; i < n; i++)
			on_event(&ev[i]);
	}

	if (d.waiting & WAIT_PIPE) {
		kill(pid, SIGKILL);
		close(d.rfd);
	}
	if (waitpid(pid, &wstatus, 0) < 0) {
		printf("  waitpid: %s\n", strerror(errno));
		d.failed = 1;
	} else if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus)) {
		printf("  the child failed (wait status %#x)\n", wstatus);
		d.failed = 1;
	}
	/* The pipe's registration went with its descriptor. */
	kevent_prep_key(&uk, KEVENT_TYPE_POLL, d.rfd);
	n = kevent_remove(d.kfd, &uk, 1);
	printf("  after close(pipe): REMOVE -> %d, ret_data %lld (%s)\n", n,
	       (long long)uk.ret_data, errname(-kevent_result(&uk)));
	close(d.kfd);
	close_fd(&d.cfd);
	close_fd(&d.lfd);
	close_fd(&d.dfd);
	close_fd(&d.aio_sv[0]);
	close_fd(&d.aio_sv[1]);
	close_fd(&d.aio_file);
	free(d.aio_buf);
	unlink(AIO_PATH);
	unlink(FILE_PATH);
	rmdir(DIR_PATH);
	printf("kevent demo %s: %d timer, %d pipe, %d socket, %d inode and %d AIO events\n",
	       d.failed ? "FAILED" : "done", d.count[UD_TIMER], d.count[UD_PIPE],
	       d.count[UD_LISTENER] + d.count[UD_CONN], d.count[UD_DIR],
	       d.count[UD_SENDFILE] + d.count[UD_RECV]);
	return d.failed;
}
