/* Replacing a small file durably through the ring: see cluster/ring_file.h. */
#include "cluster/ring_file.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

enum ring_file_step { RF_WAIT = 1, RF_OPEN, RF_WRITE, RF_SYNC, RF_CLOSE, RF_RENAME, RF_DIRSYNC };

/* This core's open temporary files and the writes waiting for a slot, in
 * order (thread-per-core: the thread is the core, nothing shared). */
static _Thread_local struct {
	unsigned open;
	unsigned waiting;
	struct ring_file *head, *tail;
} slots;

unsigned ring_file_open_now(void)
{
	return slots.open;
}

unsigned ring_file_waiting_now(void)
{
	return slots.waiting;
}

void ring_file_forget_all(void)
{
	memset(&slots, 0, sizeof slots);
}

void ring_file_init(struct ring_file *f, struct io_ring *io, int dir_fd, const char *name,
		    ring_file_done_fn *done, void *arg)
{
	/* The names are made by format from numbers, never read from input. */
	assert(strlen(name) < sizeof f->name);
	snprintf(f->name, sizeof f->name, "%s", name);
	snprintf(f->tmp, sizeof f->tmp, "%s.tmp", name);
	f->io = io;
	f->dir_fd = dir_fd;
	f->done = done;
	f->arg = arg;
	f->step = 0;
	f->fd = -1;
}

static void submit(struct ring_file *f, int step)
{
	struct io_uring_sqe *sqe = io_ring_get_sqe(f->io);

	f->step = step;
	io_op_attach(sqe, &f->op);
	switch (step) {
	case RF_OPEN:
		io_uring_prep_openat(sqe, f->dir_fd, f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
				     0644);
		break;
	case RF_WRITE:
		io_uring_prep_write(sqe, f->fd, f->data, (unsigned)f->len, 0);
		break;
	case RF_SYNC:
		io_uring_prep_fsync(sqe, f->fd, 0);
		break;
	case RF_CLOSE:
		io_uring_prep_close(sqe, f->fd);
		break;
	case RF_RENAME:
		io_uring_prep_renameat(sqe, f->dir_fd, f->tmp, f->dir_fd, f->name, 0);
		break;
	case RF_DIRSYNC:
		io_uring_prep_fsync(sqe, f->dir_fd, 0);
		break;
	}
}

/* The temporary file's descriptor is closed (or was never opened): its
 * slot goes to the first write waiting, if any. */
static void release_slot(void)
{
	struct ring_file *next = slots.head;

	if (!next) {
		slots.open--;
		return;
	}
	slots.head = next->next_waiting;
	if (!slots.head)
		slots.tail = NULL;
	next->next_waiting = NULL;
	slots.waiting--;
	submit(next, RF_OPEN);
}

static void finish(struct ring_file *f, int res)
{
	f->step = 0;
	f->done(f, res);
}

static void step_done(struct io_op *op, int res, unsigned flags)
{
	struct ring_file *f = op->data;

	(void)flags;
	switch (f->step) {
	case RF_OPEN:
		if (res < 0) {
			release_slot();
			finish(f, res);
			return;
		}
		f->fd = res;
		f->res = 0;
		submit(f, RF_WRITE);
		return;
	case RF_WRITE:
		if (res != (int)f->len) {
			f->res = res < 0 ? res : -EIO;
			submit(f, RF_CLOSE);
			return;
		}
		submit(f, RF_SYNC);
		return;
	case RF_SYNC:
		if (res < 0)
			f->res = res;
		submit(f, RF_CLOSE);
		return;
	case RF_CLOSE:
		f->fd = -1;
		release_slot();
		if (f->res < 0) {
			finish(f, f->res);
			return;
		}
		submit(f, RF_RENAME);
		return;
	case RF_RENAME:
		if (res < 0) {
			finish(f, res);
			return;
		}
		submit(f, RF_DIRSYNC);
		return;
	case RF_DIRSYNC:
		finish(f, res < 0 ? res : 0);
		return;
	}
}

void ring_file_write(struct ring_file *f, const void *data, size_t len)
{
	f->data = data;
	f->len = len;
	f->op.done = step_done;
	f->op.data = f;
	if (slots.open < RING_FILE_OPEN_MAX) {
		slots.open++;
		submit(f, RF_OPEN);
		return;
	}
	f->step = RF_WAIT;
	f->next_waiting = NULL;
	if (slots.tail)
		slots.tail->next_waiting = f;
	else
		slots.head = f;
	slots.tail = f;
	slots.waiting++;
}
