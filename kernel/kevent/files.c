// SPDX-License-Identifier: GPL-2.0
/*
 * kevent: C glue for "registrations follow the descriptor". The logic is in
 * fdtrack.rs; this is what Rust cannot reach: a static key and a locked
 * lookup in an fd table.
 */
#include <linux/fs.h>
#include <linux/eventpoll.h>
#include <linux/fdtable.h>
#include <linux/kevent.h>

/*
 * On while any kevent is registered by file descriptor. Turned off a second
 * after the last one goes, so that adding and removing one kevent in a loop
 * does not patch the close path's code every time.
 */
DEFINE_STATIC_KEY_DEFERRED_FALSE(kevent_fd_key, HZ);

bool kevent_fd_maps_to(struct files_struct *files, unsigned int fd,
		       struct file *file)
{
	bool same;

	/* At exit, close_files() closes every fd without clearing the table. */
	if (!atomic_read(&files->count))
		return false;
	spin_lock(&files->file_lock);
	same = files_lookup_fd_locked(files, fd) == file;
	spin_unlock(&files->file_lock);
	return same;
}

/* The fd table of the current task: the owner filp_flush() will be given. */
void *kevent_current_files(void)
{
	return current->files;
}

void kevent_fd_track_get(void)
{
	static_branch_inc(&kevent_fd_key.key);
}

void kevent_fd_track_put(void)
{
	static_branch_slow_dec_deferred(&kevent_fd_key);
}

/* Whether @file is an epoll instance: the poll source refuses those (no nesting yet). */
bool kevent_file_is_epoll(struct file *file)
{
	return IS_ENABLED(CONFIG_EPOLL) && is_file_epoll(file);
}
