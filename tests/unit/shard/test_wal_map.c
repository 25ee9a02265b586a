/*
 * shard/wal_map.c: how much to preallocate, and the order of a store: a
 * process killed in the middle of a large store leaves a prefix of the bytes
 * in the file and zeros after it (what WAL recovery calls a torn tail),
 * never a hole (what glibc's memcpy leaves for large copies, which it does
 * several pages at a time, interleaved; recovery must call that corruption).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "shard/wal_map.h"

#define MIB (1u << 20)

static void test_grow_target(void **state)
{
	struct wal_map m = { .base = (uint8_t *)1, .len = 64 * MIB, .alloc = 16 };

	(void)state;
	/* Ahead: the need plus the step, rounded up to the granule (a chunk
	 * where FALLOCATE makes the space, a page where zeros are written). */
	assert_int_equal(wal_map_grow_target(&m, 100, 4 * MIB, MIB), 5 * MIB);
	assert_int_equal(wal_map_grow_target(&m, 100, 4 * MIB, 4096), 4 * MIB + 4096);
	assert_int_equal(wal_map_grow_target(&m, 4096, 8192, 4096), 12288);
	assert_int_equal(wal_map_grow_target(&m, 100, 64 * 1024, 8192), 72 * 1024);
	/* Exact (after a failure): the need rounded up to a page, whatever
	 * the granule. */
	assert_int_equal(wal_map_grow_target(&m, 100, 0, MIB), 4096);
	assert_int_equal(wal_map_grow_target(&m, 4097, 0, MIB), 8192);
	assert_int_equal(wal_map_grow_target(&m, 4097, 0, 4096), 8192);
	/* Never past the mapping, never below what the file holds. */
	assert_int_equal(wal_map_grow_target(&m, 63 * MIB, 4 * MIB, MIB), 64 * MIB);
	assert_int_equal(wal_map_grow_target(&m, 63 * MIB, 4 * MIB, 4096), 64 * MIB);
	m.alloc = 10 * MIB;
	assert_int_equal(wal_map_grow_target(&m, 100, 0, MIB), 10 * MIB);
	assert_int_equal(wal_map_grow_target(&m, 100, 4096, 4096), 10 * MIB);
	assert_int_equal(wal_map_grow_target(&m, 10 * MIB, 4096, 4096), 10 * MIB + 4096);
}

static void test_store_and_allocated(void **state)
{
	char path[] = "/tmp/ringkv-walmap-XXXXXX";
	int fd = mkstemp(path);
	struct wal_map m;
	uint8_t back[64];

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(fallocate(fd, 0, 0, 8192), 0);
	assert_int_equal(wal_map_open(&m, fd, 4 * MIB), 0);
	assert_int_equal(m.alloc, 8192);
	assert_true(m.len >= 4 * MIB);
	/* Unaligned start and length: head bytes, words, tail bytes. */
	wal_map_store(&m, 3, "a store that is not aligned at all", 34);
	assert_int_equal(pread(fd, back, 40, 0), 40);
	assert_memory_equal(back + 3, "a store that is not aligned at all", 34);
	assert_int_equal(back[0] | back[1] | back[2] | back[37] | back[38], 0);
	wal_map_allocated(&m, 4096); /* never shrinks */
	assert_int_equal(m.alloc, 8192);
	wal_map_release(&m, 8192);  /* below one chunk: nothing to hand back */
	assert_int_equal(m.released, 0);
	wal_map_close(&m);
	assert_null(m.base);
	close(fd);
	unlink(path);
}

#define KILL_SIZE (32 * MIB)
#define KILL_TRIALS 40

static uint8_t pattern_at(size_t i)
{
	return (uint8_t)(i % 251 + 1); /* never zero */
}

/* Child: maps the file, says it is ready, stores KILL_SIZE bytes at once. */
static void store_child(int fd, int ready)
{
	uint8_t *src = malloc(KILL_SIZE);
	struct wal_map m;

	if (!src || wal_map_open(&m, fd, KILL_SIZE) != 0)
		_exit(2);
	for (size_t i = 0; i < KILL_SIZE; i++)
		src[i] = pattern_at(i);
	if (write(ready, "r", 1) != 1)
		_exit(2);
	wal_map_store(&m, 0, src, KILL_SIZE);
	_exit(0);
}

static void test_kill_mid_store_leaves_prefix(void **state)
{
	uint8_t *back = malloc(KILL_SIZE);
	unsigned cut = 0;

	(void)state;
	assert_non_null(back);
	srand((unsigned)time(NULL));
	for (int trial = 0; trial < KILL_TRIALS; trial++) {
		char path[] = "/tmp/ringkv-walmap-XXXXXX";
		int fd = mkstemp(path), pipefd[2], status;
		size_t prefix = 0, watch;
		pid_t pid;
		char c;

		assert_true(fd >= 0);
		assert_int_equal(fallocate(fd, 0, 0, KILL_SIZE), 0);
		assert_int_equal(pipe(pipefd), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(pipefd[0]);
			store_child(fd, pipefd[1]);
		}
		close(pipefd[1]);
		assert_int_equal(read(pipefd[0], &c, 1), 1);
		/* Kill once the store has passed a random point (not after a
		 * sleep, which a fast or a loaded machine would make miss). */
		watch = KILL_SIZE / 10 + (size_t)rand() % (KILL_SIZE * 8 / 10);
		for (int spin = 0; spin < 2000000; spin++) {
			uint8_t b = 0;

			assert_int_equal(pread(fd, &b, 1, (off_t)watch), 1);
			if (b != 0)
				break;
		}
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		close(pipefd[0]);

		assert_int_equal(pread(fd, back, KILL_SIZE, 0), KILL_SIZE);
		while (prefix < KILL_SIZE && back[prefix] == pattern_at(prefix))
			prefix++;
		for (size_t i = prefix; i < KILL_SIZE; i++)
			if (back[i] != 0)
				fail_msg("trial %d: byte %zu written after a hole at %zu", trial,
					 i, prefix);
		if (prefix > 0 && prefix < KILL_SIZE)
			cut++;
		if (getenv("DEBUG_WALMAP"))
			printf("trial %d: prefix %zu\n", trial, prefix);
		close(fd);
		unlink(path);
	}
	free(back);
	/* (With memcpy in wal_map_store this test fails in most runs.) The
	 * kills must land inside stores for the check above to mean
	 * anything: nearly all do (the rest of a 32 MiB store after the watched
	 * byte takes milliseconds). */
	printf("%u of %d kills landed inside the store\n", cut, KILL_TRIALS);
	assert_true(cut >= 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grow_target),
		cmocka_unit_test(test_store_and_allocated),
		cmocka_unit_test(test_kill_mid_store_leaves_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
