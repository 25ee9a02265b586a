/*
 * cluster/ring_file.c: a small file replaced durably through the ring, and
 * the core's bound on temporary files open at once (RING_FILE_OPEN_MAX):
 * a node's first start rewrites a marker for each of its 10,000 replicas
 * at about the same moment, and ran out of descriptors without it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster/ring_file.h"

#define WRITES 300u

struct fixture {
	char dir[64];
	int dir_fd;
	struct io_ring io;
	struct ring_file files[WRITES];
	char text[WRITES][16];
	int res[WRITES];
	unsigned done;
	unsigned max_open;
};

static void written(struct ring_file *f, int res)
{
	struct fixture *fx = f->arg;

	fx->res[f - fx->files] = res;
	fx->done++;
}

static int open_descriptors(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);
	char err[128];

	assert_non_null(fx);
	snprintf(fx->dir, sizeof fx->dir, "/tmp/ringkv-ring-file-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	fx->dir_fd = open(fx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fx->dir_fd >= 0);
	assert_int_equal(io_ring_init(&fx->io, 256, err, sizeof err), 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char name[RING_FILE_NAME_MAX];

	io_ring_exit(&fx->io);
	for (unsigned i = 0; i < WRITES; i++) {
		snprintf(name, sizeof name, "marker-%u", i);
		unlinkat(fx->dir_fd, name, 0);
	}
	close(fx->dir_fd);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* Runs the ring until every write ended, noting the most temporary files
 * open at once; bounded in time. */
static void run(struct fixture *fx, unsigned writes)
{
	for (unsigned pass = 0; fx->done < writes && pass < 100000; pass++) {
		assert_int_equal(io_ring_submit_wait(&fx->io, 10000), 0);
		io_ring_dispatch(&fx->io);
		if (ring_file_open_now() > fx->max_open)
			fx->max_open = ring_file_open_now();
	}
	assert_int_equal(fx->done, writes);
}

/* Many more writes than slots: at most RING_FILE_OPEN_MAX temporary files
 * are open at once (by the counter and by the process's descriptors), the
 * rest wait and are not idle while they wait, and every one ends durable
 * with its own content. */
static void test_writes_beyond_the_slots_wait_their_turn(void **state)
{
	struct fixture *fx = *state;
	char name[RING_FILE_NAME_MAX], back[16];
	int base = open_descriptors();

	for (unsigned i = 0; i < WRITES; i++) {
		snprintf(name, sizeof name, "marker-%u", i);
		ring_file_init(&fx->files[i], &fx->io, fx->dir_fd, name, written, fx);
		snprintf(fx->text[i], sizeof fx->text[i], "v%u", i * 7);
		fx->res[i] = 1;
		ring_file_write(&fx->files[i], fx->text[i], strlen(fx->text[i]));
		assert_false(ring_file_idle(&fx->files[i]));
	}
	assert_int_equal(ring_file_open_now(), RING_FILE_OPEN_MAX);
	assert_int_equal(ring_file_waiting_now(), WRITES - RING_FILE_OPEN_MAX);
	for (unsigned pass = 0; fx->done < WRITES && pass < 100000; pass++) {
		assert_int_equal(io_ring_submit_wait(&fx->io, 10000), 0);
		io_ring_dispatch(&fx->io);
		assert_true(ring_file_open_now() <= RING_FILE_OPEN_MAX);
		/* the ring's own descriptors came before base */
		assert_true(open_descriptors() <= base + (int)RING_FILE_OPEN_MAX);
	}
	assert_int_equal(fx->done, WRITES);
	assert_int_equal(ring_file_open_now(), 0);
	assert_int_equal(ring_file_waiting_now(), 0);
	for (unsigned i = 0; i < WRITES; i++) {
		int fd;
		ssize_t n;

		assert_int_equal(fx->res[i], 0);
		assert_true(ring_file_idle(&fx->files[i]));
		snprintf(name, sizeof name, "marker-%u", i);
		fd = openat(fx->dir_fd, name, O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		n = read(fd, back, sizeof back);
		close(fd);
		assert_int_equal(n, (ssize_t)strlen(fx->text[i]));
		assert_memory_equal(back, fx->text[i], (size_t)n);
	}
}

/* A write whose temporary file cannot be opened gives its slot back: with
 * the directory's descriptor a regular file, every open fails (ENOTDIR),
 * and the writes waiting behind the failed ones still all end. */
static void test_failed_open_gives_the_slot_back(void **state)
{
	struct fixture *fx = *state;
	char name[RING_FILE_NAME_MAX];
	int file_fd = openat(fx->dir_fd, "not-a-dir", O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	assert_true(file_fd >= 0);
	for (unsigned i = 0; i < WRITES; i++) {
		snprintf(name, sizeof name, "marker-%u", i);
		ring_file_init(&fx->files[i], &fx->io, file_fd, name, written, fx);
		fx->res[i] = 1;
		ring_file_write(&fx->files[i], "x", 1);
	}
	run(fx, WRITES);
	for (unsigned i = 0; i < WRITES; i++)
		assert_int_equal(fx->res[i], -ENOTDIR);
	assert_int_equal(ring_file_open_now(), 0);
	assert_int_equal(ring_file_waiting_now(), 0);
	close(file_fd);
	unlinkat(fx->dir_fd, "not-a-dir", 0);
}

/* A core freed with writes in flight and waiting (cluster_core_finish):
 * ring_file_forget_all leaves the thread's next core no slot taken and no
 * write queued (a freed replica's write, resumed later, wrote through a
 * ring that is gone), and that core's first write opens at once. */
static void test_a_freed_core_leaves_no_queue(void **state)
{
	struct fixture *fx = *state;
	char name[RING_FILE_NAME_MAX], err[128];

	for (unsigned i = 0; i < WRITES; i++) {
		snprintf(name, sizeof name, "marker-%u", i);
		ring_file_init(&fx->files[i], &fx->io, fx->dir_fd, name, written, fx);
		ring_file_write(&fx->files[i], "x", 1);
	}
	assert_int_equal(ring_file_waiting_now(), WRITES - RING_FILE_OPEN_MAX);
	io_ring_exit(&fx->io);
	ring_file_forget_all();
	assert_int_equal(ring_file_open_now(), 0);
	assert_int_equal(ring_file_waiting_now(), 0);

	assert_int_equal(io_ring_init(&fx->io, 256, err, sizeof err), 0);
	fx->done = 0;
	fx->res[0] = 1;
	ring_file_init(&fx->files[0], &fx->io, fx->dir_fd, "marker-0", written, fx);
	ring_file_write(&fx->files[0], "y", 1);
	assert_int_equal(ring_file_open_now(), 1);
	assert_int_equal(ring_file_waiting_now(), 0);
	run(fx, 1);
	assert_int_equal(fx->res[0], 0);
	assert_int_equal(ring_file_open_now(), 0);
	for (unsigned i = 0; i < RING_FILE_OPEN_MAX; i++) {
		snprintf(name, sizeof name, "marker-%u.tmp", i);
		unlinkat(fx->dir_fd, name, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_writes_beyond_the_slots_wait_their_turn, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_failed_open_gives_the_slot_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_freed_core_leaves_no_queue, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
