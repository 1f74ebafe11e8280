// SPDX-License-Identifier: GPL-2.0
/*
 * kevent network AIO source: the C glue of aio.rs (see aio_glue.h).
 */
#include <linux/cred.h>
#include <linux/fs.h>

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
