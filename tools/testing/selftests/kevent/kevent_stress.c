// SPDX-License-Identifier: GPL-2.0
/*
 * kevent stress test: a few threads make random kevent_ctl() and
 * kevent_get_events() calls, with plausible and broken arguments, on shared
 * and private queues, pipes and eventfds, for a bounded wall time. Every call
 * must succeed within its bounds or fail with one of its documented errnos;
 * the kernel must survive it (run it under KASAN and lockdep).
 *
 * Each thread has its own xorshift PRNG seeded from its index; the seeds are
 * logged, so that a failing run can be replayed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/kevent.h>
#include <linux/time_types.h>

#include "../kselftest_harness.h"
#include "kevent_sys.h"

#define NSEC_PER_SEC	1000000000LL
#define NSEC_PER_MSEC	1000000LL

#define NR_THREADS	4
#define POOL_SIZE	4
/* Wall time, not a number of calls: under emulation each call is slow. */
#define RUN_NS		(3 * NSEC_PER_SEC)
/* One page of entries, followed by an inaccessible guard page. */
#define BUF_NR		64
#define MSG_LEN		320

/* Every poll bit a kevent may ask for. */
#define POLL_MASK	(POLLIN | POLLPRI | POLLOUT | POLLERR | POLLHUP | POLLRDNORM | \
			 POLLRDBAND | POLLWRNORM | POLLWRBAND | POLLMSG | POLLRDHUP)

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* State every thread sees. */
struct shared {
	struct __test_metadata *metadata;	/* for TH_LOG */
	pthread_mutex_t lock;			/* guards pool[] */
	int pool[POOL_SIZE];			/* shared queues, re-created at random */
	int pipefd[2];				/* O_NONBLOCK */
	int efd;				/* EFD_NONBLOCK */
	long long deadline;			/* CLOCK_MONOTONIC, ns */
};

struct worker {
	struct shared *sh;
	pthread_t thread;
	int idx;
	uint64_t seed;
	uint64_t rnd;
	/* KEVENT_NONBLOCK, closed only by this thread: a NULL timeout never sleeps. */
	int own_queue;
	int own_pipe[2];			/* closed and re-created at random */
	struct ukevent *ctl_buf;		/* BUF_NR entries, then a guard page */
	struct ukevent *ev_buf;			/* BUF_NR entries, then a guard page */
	unsigned long nr_ctl, nr_get, nr_io, nr_churn;
	bool failed;				/* stops the thread */
	char msg[MSG_LEN];			/* the failure */
};

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* A random number in [0, n). */
static uint64_t rnd(struct worker *w, uint64_t n)
{
	return xorshift64(&w->rnd) % n;
}

static bool one_in(struct worker *w, uint64_t n)
{
	return rnd(w, n) == 0;
}

static __printf(2, 3) void fail(struct worker *w, const char *fmt, ...)
{
	struct __test_metadata *_metadata = w->sh->metadata;
	char msg[MSG_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (w->failed)
		return;
	w->failed = true;
	memcpy(w->msg, msg, sizeof(msg));
	TH_LOG("thread %d (seed %#llx): %s", w->idx, (unsigned long long)w->seed, msg);
}

static bool errno_in(int err, const int *set, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (set[i] == err)
			return true;
	return false;
}

/* kevent_ctl() as a whole. */
static const int ctl_errnos[] = {
	EINVAL, EBADF, E2BIG, EFAULT, EMFILE, ENFILE, ENOMEM, ENOSPC,
};

/* One entry of a kevent_ctl() batch (ret_data = -errno). */
static const int entry_errnos[] = {
	EINVAL, EEXIST, ENOENT, EBADF, EPERM, E2BIG, ENOSPC, ENOMEM, ELOOP,
};

static const int get_errnos[] = {
	EBADF, EINVAL, EFAULT, EINTR,
};

#define ERRNO_IN(err, set) errno_in(err, set, ARRAY_SIZE(set))

static int pool_fd(struct worker *w)
{
	int fd;

	pthread_mutex_lock(&w->sh->lock);
	fd = w->sh->pool[rnd(w, POOL_SIZE)];
	pthread_mutex_unlock(&w->sh->lock);
	return fd;
}

static int pick_fd(struct worker *w)
{
	switch (rnd(w, 10)) {
	case 0:
		return -1;
	case 1:
		return rnd(w, 41);
	case 2:
		return w->sh->pipefd[rnd(w, 2)];
	case 3:
		return w->sh->efd;
	case 4:
	case 5:
		return w->own_queue;
	default:
		return pool_fd(w);
	}
}

static __u64 random_id(struct worker *w)
{
	switch (rnd(w, 8)) {
	case 0:
		return w->sh->pipefd[rnd(w, 2)];
	case 1:
		return w->sh->efd;
	case 2:
		return w->own_pipe[rnd(w, 2)];
	case 3:
		return xorshift64(&w->rnd);
	default:
		return rnd(w, 48);
	}
}

static __u32 random_poll_events(struct worker *w)
{
	static const __u32 bits[] = {
		POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLRDNORM,
		POLLRDBAND, POLLWRNORM, POLLWRBAND, POLLMSG, POLLRDHUP,
	};
	__u32 ev = 0;
	int i, n = 1 + rnd(w, 3);

	if (one_in(w, 32))
		return 0;
	if (one_in(w, 32))
		return xorshift64(&w->rnd);
	for (i = 0; i < n; i++)
		ev |= bits[rnd(w, ARRAY_SIZE(bits))];
	return ev;
}

/*
 * A random but mostly plausible entry. Timers expire within 5 ms; periodic
 * ones have a period of 1 to 20 ms and an id below 16, so that a queue holds
 * at most 16 of them and they cannot flood an emulated machine.
 */
static void random_entry(struct worker *w, struct ukevent *uk)
{
	memset(uk, 0, sizeof(*uk));
	uk->user_data = xorshift64(&w->rnd);
	uk->id = random_id(w);
	if (one_in(w, 8))
		uk->type = rnd(w, 7);
	else
		uk->type = one_in(w, 2) ? KEVENT_TYPE_TIMER : KEVENT_TYPE_POLL;
	uk->req_flags = rnd(w, 16);
	if (one_in(w, 32))
		uk->req_flags |= 1u << (4 + rnd(w, 28));
	/* Ignored on input: must be overwritten with the result. */
	uk->ret_flags = 0xdead0000;
	uk->ret_data = 0x5a5a5a5a;
	if (one_in(w, 32))
		uk->reserved = 1 + rnd(w, 3);
	if (one_in(w, 32))
		uk->arg_fd = rnd(w, 41);

	switch (uk->type) {
	case KEVENT_TYPE_TIMER:
		uk->event = one_in(w, 16) ? rnd(w, 4) : KEVENT_TIMER_FIRED;
		uk->arg[0] = rnd(w, 5 * NSEC_PER_MSEC + 1);
		if ((uk->req_flags & KEVENT_REQ_ABSTIME) && one_in(w, 2))
			uk->arg[0] += now_ns();
		if (one_in(w, 4)) {
			uk->arg[1] = NSEC_PER_MSEC + rnd(w, 19 * NSEC_PER_MSEC + 1);
			uk->id = rnd(w, 16);
		}
		/* Out of range: EINVAL. */
		if (one_in(w, 64))
			uk->arg[rnd(w, 2)] = (uint64_t)INT64_MAX / 2 + 1 + rnd(w, 1000);
		break;
	case KEVENT_TYPE_POLL:
		uk->event = random_poll_events(w);
		/* Must be zero: EINVAL. */
		if (one_in(w, 32))
			uk->arg[rnd(w, 2)] = 1 + rnd(w, 1000);
		break;
	default:
		uk->event = xorshift64(&w->rnd);
		break;
	}
}

static unsigned int pick_num(struct worker *w)
{
	switch (rnd(w, 16)) {
	case 0:
		return 0;
	case 1:
	case 2:
	case 3:
		return 1;
	case 4:
		return KEVENT_CTL_MAX_BATCH;
	case 5:
		return KEVENT_CTL_MAX_BATCH + 1;
	case 6:
		return 0xffffffffu;
	case 7:
		return rnd(w, BUF_NR + 1);
	default:
		return rnd(w, 41);
	}
}

/* A buffer for num entries; *avail is how many entries are readable there. */
static struct ukevent *pick_buf(struct worker *w, struct ukevent *base, unsigned int *avail)
{
	unsigned int off;

	switch (rnd(w, 16)) {
	case 0:
		*avail = 0;
		return NULL;
	case 1:
		*avail = 0;
		return (struct ukevent *)1;
	case 2:
		/* The last few entries before the guard page. */
		off = BUF_NR - 1 - rnd(w, 4);
		*avail = BUF_NR - off;
		return base + off;
	default:
		*avail = BUF_NR;
		return base;
	}
}

static void check_entries(struct worker *w, const char *call, struct ukevent *buf,
			  unsigned int num, int ret)
{
	unsigned int i, done = 0;

	for (i = 0; i < num; i++) {
		struct ukevent *uk = &buf[i];

		if (uk->ret_flags == KEVENT_RET_DONE && uk->ret_data == 0) {
			done++;
		} else if (uk->ret_flags != KEVENT_RET_BROKEN || uk->ret_data >= 0 ||
			   uk->ret_data < -4095 || !ERRNO_IN(-uk->ret_data, entry_errnos)) {
			fail(w, "%s: entry %u (type %u id %llu event %#x flags %#x): %#x %lld",
			     call, i, uk->type, (unsigned long long)uk->id, uk->event,
			     uk->req_flags, uk->ret_flags, (long long)uk->ret_data);
			return;
		}
	}
	if (done != (unsigned int)ret)
		fail(w, "%s = %d but %u entries report KEVENT_RET_DONE", call, ret, done);
}

static void do_ctl(struct worker *w)
{
	unsigned int cmd, num, avail, i;
	struct ukevent *buf;
	char call[128];
	int fd, ret, err;

	cmd = one_in(w, 4) ? rnd(w, 7) : KEVENT_CTL_ADD + rnd(w, 3);
	fd = pick_fd(w);
	num = pick_num(w);
	buf = pick_buf(w, w->ctl_buf, &avail);
	if (cmd == KEVENT_CTL_INIT && one_in(w, 2)) {
		/* A well-formed INIT, now and then. */
		fd = -1;
		num = rnd(w, 4);
		buf = NULL;
		avail = 0;
	}
	for (i = 0; i < num && i < avail; i++)
		random_entry(w, &buf[i]);

	errno = 0;
	ret = sys_kevent_ctl(fd, cmd, num, buf);
	err = errno;
	w->nr_ctl++;
	snprintf(call, sizeof(call), "kevent_ctl(%d, %u, %u, %p)", fd, cmd, num, (void *)buf);

	if (ret < 0 && (ret != -1 || !ERRNO_IN(err, ctl_errnos))) {
		fail(w, "%s = %d, errno %d (%s)", call, ret, err, strerror(err));
		return;
	}
	switch (cmd) {
	case KEVENT_CTL_INIT:
		if (fd != -1 || (num & ~(KEVENT_CLOEXEC | KEVENT_NONBLOCK | KEVENT_RING)) ||
		    (buf && !(num & KEVENT_RING))) {
			if (ret != -1 || err != EINVAL)
				fail(w, "%s = %d, errno %d: expected EINVAL", call, ret, err);
		} else if ((num & KEVENT_RING) && !buf) {
			if (ret != -1 || err != EFAULT)
				fail(w, "%s = %d, errno %d: expected EFAULT", call, ret, err);
		} else if (num & KEVENT_RING) {
			/* buf, the ring's parameters, is random bytes or unmapped. */
			if (ret < 0 && err != EINVAL && err != EFAULT && err != EMFILE &&
			    err != ENFILE && err != ENOMEM)
				fail(w, "%s: errno %d (%s)", call, err, strerror(err));
		} else if (ret < 0 && err != EMFILE && err != ENFILE && err != ENOMEM) {
			fail(w, "%s: errno %d (%s)", call, err, strerror(err));
		}
		if (ret >= 0)
			close(ret);
		break;
	case KEVENT_CTL_ADD:
	case KEVENT_CTL_REMOVE:
	case KEVENT_CTL_MODIFY:
		if (num > KEVENT_CTL_MAX_BATCH) {
			if (ret != -1 || err != E2BIG)
				fail(w, "%s = %d, errno %d: expected E2BIG", call, ret, err);
		} else if (fd == -1) {
			if (ret != -1 || err != EBADF)
				fail(w, "%s = %d, errno %d: expected EBADF", call, ret, err);
		} else if (ret >= 0 && (unsigned int)ret > num) {
			fail(w, "%s = %d: more than num", call, ret);
		} else if (ret >= 0 && num > avail) {
			/* The whole batch is read first: a short buffer changes nothing. */
			fail(w, "%s = %d with only %u readable entries", call, ret, avail);
		} else if (ret >= 0) {
			check_entries(w, call, buf, num, ret);
		} else if (err == EFAULT && num <= avail) {
			fail(w, "%s: EFAULT with %u readable entries", call, avail);
		}
		break;
	default:
		if (ret != -1 || err != EINVAL)
			fail(w, "%s = %d, errno %d: expected EINVAL", call, ret, err);
		break;
	}
}

static void check_events(struct worker *w, const char *call, struct ukevent *ev, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		struct ukevent *uk = &ev[i];
		bool ok;

		if (uk->ret_flags == KEVENT_RET_BROKEN)
			ok = uk->ret_data < 0 && uk->ret_data >= -4095;
		else if (uk->ret_flags != KEVENT_RET_DONE)
			ok = false;
		else if (uk->type == KEVENT_TYPE_TIMER)
			ok = uk->event == KEVENT_TIMER_FIRED && uk->ret_data >= 1;
		else if (uk->type == KEVENT_TYPE_POLL)
			ok = uk->event && !(uk->event & ~POLL_MASK);
		else
			ok = uk->type > KEVENT_TYPE_POLL && uk->type <= KEVENT_TYPE_AIO;
		if (!ok) {
			fail(w, "%s: event %d: type %u id %llu event %#x ret %#x %lld",
			     call, i, uk->type, (unsigned long long)uk->id, uk->event,
			     uk->ret_flags, (long long)uk->ret_data);
			return;
		}
	}
}

static void do_get_events(struct worker *w)
{
	struct __kernel_timespec ts = { 0, 0 }, *tsp = &ts;
	unsigned int min_nr, max_nr, flags, avail;
	bool bad_args;
	struct ukevent *buf;
	char call[160];
	int fd, ret, err;

	fd = pick_fd(w);
	switch (rnd(w, 16)) {
	case 0:
		max_nr = 0;
		break;
	case 1:
		max_nr = BUF_NR + 1 + rnd(w, KEVENT_CTL_MAX_BATCH);
		break;
	case 2:
		max_nr = 0xffffffffu;
		break;
	default:
		max_nr = 1 + rnd(w, BUF_NR);
		break;
	}
	if (one_in(w, 3))
		min_nr = 0;
	else if (one_in(w, 16))
		min_nr = max_nr + 1 + rnd(w, 4);
	else
		min_nr = rnd(w, (uint64_t)max_nr + 1);
	buf = pick_buf(w, w->ev_buf, &avail);

	switch (rnd(w, 16)) {
	case 0:
		flags = KEVENT_WAIT_ABSTIME;
		break;
	case 1:
		flags = 0x80;
		break;
	default:
		flags = 0;
		break;
	}

	switch (rnd(w, 16)) {
	case 0:
	case 1:
		/* Never sleeps: min_nr 0, or our own non-blocking queue. */
		if (min_nr == 0 || fd == w->own_queue)
			tsp = NULL;
		break;
	case 2:
	case 3:
		break;	/* zero: poll */
	case 4:
		ts.tv_nsec = one_in(w, 2) ? -1 - (long long)rnd(w, 1000) :
					    NSEC_PER_SEC + (long long)rnd(w, 1000);
		break;
	case 5:
		ts.tv_sec = -1 - (long long)rnd(w, 1000);
		break;
	case 6:
		tsp = one_in(w, 2) ? (void *)8 : (void *)(w->ev_buf + BUF_NR);
		break;
	default:
		/* At most 2 ms from now, relative or absolute. */
		ts.tv_nsec = rnd(w, 2 * NSEC_PER_MSEC + 1);
		if (flags & KEVENT_WAIT_ABSTIME) {
			long long t = now_ns() + ts.tv_nsec;

			ts.tv_sec = t / NSEC_PER_SEC;
			ts.tv_nsec = t % NSEC_PER_SEC;
		}
		break;
	}

	errno = 0;
	ret = sys_kevent_get_events(fd, min_nr, max_nr, tsp, buf, flags);
	err = errno;
	w->nr_get++;
	snprintf(call, sizeof(call), "kevent_get_events(%d, %u, %u, %p, %p, %#x)",
		 fd, min_nr, max_nr, (void *)tsp, (void *)buf, flags);

	bad_args = max_nr == 0 || min_nr > max_nr || (flags & ~KEVENT_WAIT_ABSTIME);
	if (ret < 0 && (ret != -1 || !ERRNO_IN(err, get_errnos)))
		fail(w, "%s = %d, errno %d (%s)", call, ret, err, strerror(err));
	else if (bad_args && (ret != -1 || err != EINVAL))
		fail(w, "%s = %d, errno %d: expected EINVAL", call, ret, err);
	else if (!bad_args && fd == -1 && (ret != -1 || err != EBADF))
		fail(w, "%s = %d, errno %d: expected EBADF", call, ret, err);
	else if (ret >= 0 && (unsigned int)ret > max_nr)
		fail(w, "%s = %d: more than max_nr", call, ret);
	else if (ret > 0 && (unsigned int)ret > avail)
		fail(w, "%s = %d: only %u entries writable", call, ret, avail);
	else if (ret > 0)
		check_events(w, call, buf, ret);
}

/* Activity on the polled files: reads and writes that never block. */
static void do_io(struct worker *w)
{
	uint64_t one = 1, cnt;
	char buf[16];
	ssize_t r;

	w->nr_io++;
	switch (rnd(w, 6)) {
	case 0:
		r = write(w->sh->pipefd[1], "k", 1);
		break;
	case 1:
		r = read(w->sh->pipefd[0], buf, sizeof(buf));
		break;
	case 2:
		r = write(w->sh->efd, &one, sizeof(one));
		break;
	case 3:
		r = read(w->sh->efd, &cnt, sizeof(cnt));
		break;
	case 4:
		r = write(w->own_pipe[1], "k", 1);
		break;
	default:
		r = read(w->own_pipe[0], buf, sizeof(buf));
		break;
	}
	(void)r;
}

/* Closes and re-creates a shared queue, or this thread's pipe. */
static void do_churn(struct worker *w)
{
	int i;

	w->nr_churn++;
	if (one_in(w, 2)) {
		pthread_mutex_lock(&w->sh->lock);
		i = rnd(w, POOL_SIZE);
		if (w->sh->pool[i] >= 0)
			close(w->sh->pool[i]);
		w->sh->pool[i] = kevent_init(rnd(w, 4));
		pthread_mutex_unlock(&w->sh->lock);
		return;
	}
	close(w->own_pipe[0]);
	close(w->own_pipe[1]);
	if (pipe2(w->own_pipe, O_NONBLOCK)) {
		w->own_pipe[0] = -1;
		w->own_pipe[1] = -1;
	}
}

static void *worker_fn(void *arg)
{
	struct worker *w = arg;
	unsigned long n = 0;

	while (!w->failed && now_ns() < w->sh->deadline) {
		n++;
		if (one_in(w, 200)) {
			do_churn(w);
			continue;
		}
		switch (rnd(w, 20)) {
		case 0 ... 8:
			do_ctl(w);
			break;
		case 9 ... 16:
			do_get_events(w);
			break;
		default:
			do_io(w);
			break;
		}
	}
	close(w->own_queue);
	close(w->own_pipe[0]);
	close(w->own_pipe[1]);
	return NULL;
}

/* Two pages of BUF_NR entries, each followed by a PROT_NONE guard page. */
static struct ukevent *guarded_bufs(void)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t len = BUF_NR * sizeof(struct ukevent);
	char *p;

	if (len > (size_t)page)
		return NULL;
	p = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p + page, page, PROT_NONE) || mprotect(p + 3 * page, page, PROT_NONE)) {
		munmap(p, 4 * page);
		return NULL;
	}
	/* Each buffer ends exactly where its guard page begins. */
	return (struct ukevent *)(p + page - len);
}

TEST(random_args)
{
	static struct worker workers[NR_THREADS];
	struct sigaction sa = { .sa_handler = SIG_IGN };
	long page = sysconf(_SC_PAGESIZE);
	struct shared sh = { .metadata = _metadata };
	struct ukevent *bufs[NR_THREADS];
	int i;

	ASSERT_EQ(0, sigaction(SIGPIPE, &sa, NULL));
	ASSERT_EQ(0, pthread_mutex_init(&sh.lock, NULL));
	for (i = 0; i < POOL_SIZE; i++) {
		sh.pool[i] = kevent_init(i & KEVENT_NONBLOCK);
		ASSERT_LE(0, sh.pool[i]) TH_LOG("KEVENT_CTL_INIT: %s", strerror(errno));
	}
	ASSERT_EQ(0, pipe2(sh.pipefd, O_NONBLOCK));
	sh.efd = eventfd(0, EFD_NONBLOCK);
	ASSERT_LE(0, sh.efd);

	for (i = 0; i < NR_THREADS; i++) {
		struct worker *w = &workers[i];

		bufs[i] = guarded_bufs();
		ASSERT_NE(NULL, bufs[i]);
		w->sh = &sh;
		w->idx = i;
		w->seed = (i + 1) * 0x9e3779b97f4a7c15ULL;
		w->rnd = w->seed;
		w->ctl_buf = bufs[i];
		w->ev_buf = (struct ukevent *)((char *)bufs[i] + 2 * page);
		w->own_queue = kevent_init(KEVENT_NONBLOCK);
		ASSERT_LE(0, w->own_queue);
		ASSERT_EQ(0, pipe2(w->own_pipe, O_NONBLOCK));
		TH_LOG("thread %d: seed %#llx", i, (unsigned long long)w->seed);
	}

	sh.deadline = now_ns() + RUN_NS;
	for (i = 0; i < NR_THREADS; i++)
		ASSERT_EQ(0, pthread_create(&workers[i].thread, NULL, worker_fn, &workers[i]));
	for (i = 0; i < NR_THREADS; i++)
		ASSERT_EQ(0, pthread_join(workers[i].thread, NULL));

	for (i = 0; i < POOL_SIZE; i++)
		if (sh.pool[i] >= 0)
			close(sh.pool[i]);
	close(sh.pipefd[0]);
	close(sh.pipefd[1]);
	close(sh.efd);
	pthread_mutex_destroy(&sh.lock);

	for (i = 0; i < NR_THREADS; i++) {
		struct worker *w = &workers[i];

		TH_LOG("thread %d: %lu kevent_ctl, %lu kevent_get_events, %lu io, %lu churn",
		       i, w->nr_ctl, w->nr_get, w->nr_io, w->nr_churn);
		munmap((char *)bufs[i] - (page - BUF_NR * sizeof(struct ukevent)), 4 * page);
		EXPECT_FALSE(w->failed)
			TH_LOG("thread %d (seed %#llx): first failure: %s",
			       i, (unsigned long long)w->seed, w->msg);
	}
}

TEST_HARNESS_MAIN
