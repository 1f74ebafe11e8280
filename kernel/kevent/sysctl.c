// SPDX-License-Identifier: GPL-2.0
/*
 * kevent: /proc/sys/fs/kevent/max_user_kevents, the per-user limit on
 * registered kevents (like epoll's max_user_watches). Enforced by limit.rs.
 */
#include <linux/init.h>
#include <linux/kevent.h>
#include <linux/mm.h>
#include <linux/sysctl.h>

/* Estimated memory one kevent costs: the kevent, its rbtree node, its source state. */
#define KEVENT_COST	256

long kevent_max_user_kevents __read_mostly;

static long long_zero;
static long long_max = LONG_MAX;

static const struct ctl_table kevent_table[] = {
	{
		.procname	= "max_user_kevents",
		.data		= &kevent_max_user_kevents,
		.maxlen		= sizeof(kevent_max_user_kevents),
		.mode		= 0644,
		.proc_handler	= proc_doulongvec_minmax,
		.extra1		= &long_zero,
		.extra2		= &long_max,
	},
};

static int __init kevent_sysctl_init(void)
{
	struct sysinfo si;

	si_meminfo(&si);
	/* Allow the top 4% of low memory to be used for kevents, per user. */
	kevent_max_user_kevents = (((si.totalram - si.totalhigh) / 25) << PAGE_SHIFT) /
		KEVENT_COST;
	register_sysctl_init("fs/kevent", kevent_table);
	return 0;
}
fs_initcall(kevent_sysctl_init);
