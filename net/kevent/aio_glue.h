/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kevent network AIO source: what its Rust side (aio.rs) cannot reach, the
 * inline helpers of <linux/cred.h> and <linux/pagemap.h>, the fmode_t bits
 * of <linux/fs.h> (their __force casts hide them from bindgen), what a
 * zero-copy sendfile needs of the page cache, the RLIMIT_MEMLOCK charge
 * of pinned pages, and the push of sends corked with MSG_MORE. Each function is a wrapper of
 * one or two helpers or a read of one field; the logic is in aio.rs.
 * Included by rust/bindings/bindings_helper.h.
 */
#ifndef _NET_KEVENT_AIO_GLUE_H
#define _NET_KEVENT_AIO_GLUE_H

#include <linux/types.h>

struct cred;
struct file;
struct mm_struct;
struct page;

/* kevent_aio_file_mode(): the file's f_mode, as facts. */
#define KEVENT_AIO_FILE_READ		0x1	/* FMODE_READ: open for reading */
#define KEVENT_AIO_FILE_CAN_READ	0x2	/* FMODE_CAN_READ: has a read method */

u32 kevent_aio_file_mode(struct file *file);
const struct cred *kevent_aio_current_cred(void);
const struct cred *kevent_aio_override_creds(const struct cred *cred);
void kevent_aio_revert_creds(const struct cred *old);
bool kevent_aio_cache_is_data(struct file *file);
struct page *kevent_aio_cached_page(struct file *file, pgoff_t index);
void kevent_aio_put_page(struct page *page);
loff_t kevent_aio_file_size(struct file *file);
struct mm_struct *kevent_aio_charge_pinned(unsigned long npages);
void kevent_aio_uncharge_pinned(struct mm_struct *mm, unsigned long npages);
void kevent_aio_push(struct file *file);
bool kevent_aio_access_ok(u64 addr, size_t len);

#endif /* _NET_KEVENT_AIO_GLUE_H */
