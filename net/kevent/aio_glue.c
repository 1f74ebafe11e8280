// SPDX-License-Identifier: GPL-2.0
/*
 * kevent network AIO source: the C glue of aio.rs (see aio_glue.h).
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/pagemap.h>
#include <linux/shmem_fs.h>
#include <linux/uaccess.h>

#include "aio_glue.h"

u32 kevent_aio_file_mode(struct file *file)
{
	fmode_t mode = file->f_mode;

	return (mode & FMODE_READ ? KEVENT_AIO_FILE_READ : 0) |
	       (mode & FMODE_CAN_READ ? KEVENT_AIO_FILE_CAN_READ : 0);
}

/* The caller's subjective credentials, without a reference (take one). */
const struct cred *kevent_aio_current_cred(void)
{
	return current_cred();
}

/* Run the work of a request as its submitter: returns the old credentials. */
const struct cred *kevent_aio_override_creds(const struct cred *cred)
{
	return override_creds(cred);
}

void kevent_aio_revert_creds(const struct cred *old)
{
	revert_creds(old);
}

/*
 * Whether @file's page cache is its data, so that a sendfile may send cached
 * pages without going through the file system: tmpfs, a file system whose
 * splice_read is the generic one, or one on a block device. Not a network
 * or FUSE file system, which must revalidate its cache on read.
 */
bool kevent_aio_cache_is_data(struct file *file)
{
	return shmem_mapping(file->f_mapping) ||
	       file->f_op->splice_read == filemap_splice_read ||
	       (file_inode(file)->i_sb->s_type->fs_flags & FS_REQUIRES_DEV);
}

/* The up-to-date page of @file at @index, with a reference; NULL if not cached. */
struct page *kevent_aio_cached_page(struct file *file, pgoff_t index)
{
	struct folio *folio = filemap_get_folio(file->f_mapping, index);

	if (IS_ERR(folio))
		return NULL;
	if (!folio_test_uptodate(folio)) {
		folio_put(folio);
		return NULL;
	}
	return folio_file_page(folio, index);
}

void kevent_aio_put_page(struct page *page)
{
	put_page(page);
}

loff_t kevent_aio_file_size(struct file *file)
{
	return i_size_read(file_inode(file));
}

/*
 * Charges @npages pages that a request pins to the current process's
 * pinned_vm, against RLIMIT_MEMLOCK unless the caller has CAP_IPC_LOCK, as
 * RDMA charges its long-term pins. Returns the mm, grabbed, to uncharge with
 * kevent_aio_uncharge_pinned(); NULL if that is over the limit.
 */
struct mm_struct *kevent_aio_charge_pinned(unsigned long npages)
{
	struct mm_struct *mm = current->mm;
	unsigned long limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;

	if (!mm)
		return NULL;
	if (atomic64_add_return(npages, &mm->pinned_vm) > limit &&
	    !capable(CAP_IPC_LOCK)) {
		atomic64_sub(npages, &mm->pinned_vm);
		return NULL;
	}
	mmgrab(mm);
	return mm;
}

void kevent_aio_uncharge_pinned(struct mm_struct *mm, unsigned long npages)
{
	atomic64_sub(npages, &mm->pinned_vm);
	mmdrop(mm);
}

/*
 * A socket file: send out what sends with MSG_MORE held back, as splice does
 * at its end (->splice_eof: TCP pushes its pending frames, UDP its corked
 * datagram). A no-op for a socket that holds nothing back.
 */
void kevent_aio_push(struct file *file)
{
	if (file->f_op->splice_eof)
		file->f_op->splice_eof(file);
}

/* Whether @len bytes at @addr may be user memory (access_ok()). */
bool kevent_aio_access_ok(u64 addr, size_t len)
{
	return access_ok(u64_to_user_ptr(addr), len);
}
