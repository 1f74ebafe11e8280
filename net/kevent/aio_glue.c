// SPDX-License-Identifier: GPL-2.0
/*
 * kevent network AIO source: the C glue of aio.rs (see aio_glue.h).
 */
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/pagemap.h>
#include <linux/shmem_fs.h>

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
