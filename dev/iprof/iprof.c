// SPDX-License-Identifier: GPL-2.0
/*
 * iprof: a QEMU TCG plugin that counts the guest instructions executed at
 * each translation-block start address, for an exact instruction profile
 * of the guest kernel (dev/kevent iprofile). Counts are inline adds (no
 * callback per block); with -icount the TCG runs single-threaded, so they
 * need no atomics. At exit it writes "vaddr insns" lines to out=FILE.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define SLOTS (1u << 22)

struct slot {
	uint64_t vaddr;		/* 0: free */
	uint64_t ninsns;
	uint64_t execs;
};

static struct slot *table;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char out_path[4096] = "iprof.out";
static int full;

static struct slot *lookup(uint64_t vaddr, uint64_t n)
{
	uint64_t h = (vaddr ^ (n << 48)) * 0x9e3779b97f4a7c15ull;
	uint32_t i = h >> 42, tries;

	for (tries = 0; tries < SLOTS; tries++, i = (i + 1) & (SLOTS - 1)) {
		struct slot *s = &table[i];

		if (s->vaddr == vaddr && s->ninsns == n)
			return s;
		if (!s->vaddr) {
			s->vaddr = vaddr;
			s->ninsns = n;
			return s;
		}
	}
	return NULL;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	uint64_t vaddr = qemu_plugin_tb_vaddr(tb);
	uint64_t n = qemu_plugin_tb_n_insns(tb);
	struct slot *s;

	if (!vaddr)
		return;
	pthread_mutex_lock(&lock);
	s = lookup(vaddr, n);
	pthread_mutex_unlock(&lock);
	if (!s) {
		full = 1;
		return;
	}
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64,
						 &s->execs, 1);
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
	FILE *f = fopen(out_path, "w");
	uint32_t i;

	if (!f)
		return;
	if (full)
		fprintf(f, "# table full: some blocks not counted\n");
	for (i = 0; i < SLOTS; i++)
		if (table[i].vaddr && table[i].execs)
			fprintf(f, "%" PRIx64 " %" PRIu64 "\n", table[i].vaddr,
				table[i].execs * table[i].ninsns);
	fclose(f);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
					   const qemu_info_t *info,
					   int argc, char **argv)
{
	int i;

	for (i = 0; i < argc; i++)
		if (!strncmp(argv[i], "out=", 4))
			snprintf(out_path, sizeof(out_path), "%s", argv[i] + 4);
	table = calloc(SLOTS, sizeof(*table));
	if (!table)
		return -1;
	qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
