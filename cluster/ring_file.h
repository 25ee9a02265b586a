/*
 * Replacing a small file durably through a core's io_uring ring, without
 * blocking the reactor: openat(NAME.tmp) -> write -> fsync -> close ->
 * renameat(NAME.tmp, NAME) -> fsync of the directory, NAME relative to the
 * directory's descriptor (a short name, not a path: a replica holds two of
 * these, and PATH_MAX buffers made most of its memory). A crash at any point
 * leaves the old file or the new one, whole (the rename is the commit).
 * One write at a time per `struct ring_file`; the records built on it
 * (replica_conf.c, replica_move.c's hosting record) coalesce what changes
 * meanwhile into the next write.
 *
 * A core holds at most RING_FILE_OPEN_MAX temporary files open at once;
 * writes beyond that wait their turn, in order, and count as in flight
 * (not idle) while they wait. A node's first start rewrites a marker for
 * every replica at about the same moment: at 10,000 replicas, each holding
 * its directory's descriptor, one more descriptor each ran the node out of
 * its open-file limit (EMFILE).
 */
#ifndef RINGKV_CLUSTER_RING_FILE_H
#define RINGKV_CLUSTER_RING_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "io/ring.h"

struct ring_file;
/* The write ended: res 0 (durable), or the negative errno of the step that
 * failed (then the old file is still in place, or the new one if only the
 * directory's fsync failed). */
typedef void ring_file_done_fn(struct ring_file *f, int res);

/* Temporary files a core holds open at once (ring_file_write). */
#define RING_FILE_OPEN_MAX 64u

/* Names of our own making: "shard-4294967295.joining" is 24 bytes. */
#define RING_FILE_NAME_MAX 40

struct ring_file {
	char name[RING_FILE_NAME_MAX];
	char tmp[RING_FILE_NAME_MAX + 4];
	struct io_ring *io;
	int dir_fd;               /* the directory holding name */
	ring_file_done_fn *done;
	void *arg;                /* the owner's */
	/* private */
	const void *data;         /* the caller keeps it until done */
	size_t len;
	int step;                 /* of the write in flight; 0: idle */
	int fd;
	int res;
	struct io_op op;
	struct ring_file *next_waiting; /* in the core's queue for an open slot */
};

/* Sets the target, `name` in the directory of dir_fd (shorter than
 * RING_FILE_NAME_MAX); no I/O. */
void ring_file_init(struct ring_file *f, struct io_ring *io, int dir_fd, const char *name,
		    ring_file_done_fn *done, void *arg);
/* Starts replacing the file with data[0..len), at once or when the core has
 * an open slot (RING_FILE_OPEN_MAX). Precondition: idle. done runs later,
 * from a completion. */
void ring_file_write(struct ring_file *f, const void *data, size_t len);
static inline bool ring_file_idle(const struct ring_file *f)
{
	return f->step == 0;
}
/* Temporary files this core holds open now, and writes waiting for a slot
 * (for tests and metrics). */
unsigned ring_file_open_now(void);
unsigned ring_file_waiting_now(void);
/* The core of this thread is freed, its ring with it: forgets its writes
 * waiting for a slot and its open slots (their owners go with the core,
 * their operations with the ring), so that a core started later on this
 * thread (tests start many) begins with none. */
void ring_file_forget_all(void);

#endif
