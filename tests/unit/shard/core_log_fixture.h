/*
 * The fixture of the core log's tests on a real io_uring ring
 * (test_core_log.c, test_core_log_recovery.c, test_core_log_space.c): a log
 * in a fresh directory (under $RINGKV_CORE_LOG_TEST_DIR, default /tmp), opened
 * with the fixture's knobs, whose restore and persisted callbacks record what
 * the log reports (every restored payload checked against fill()'s bytes);
 * and the helpers that stage entries and read segments back by hand.
 * Include after <cmocka.h>.
 */
#ifndef RINGKV_TESTS_CORE_LOG_FIXTURE_H
#define RINGKV_TESTS_CORE_LOG_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/ring.h"
#include "shard/core_log.h"
#include "shard/core_log_format.h"

#define MAXG 1024
#define KIB 1024u

/* What the last open restored of one group. */
struct rgroup {
	bool present;
	struct raft_hard_state hs;
	uint64_t start_index, start_term;
	uint64_t first;
	size_t n;
	uint64_t *terms;   /* term of each restored entry (owned) */
};

struct fx {
	char base[96];         /* the test's directory, removed at teardown */
	char dir[192];         /* the log's directory inside it */
	struct io_ring io;
	struct core_log *log;  /* NULL while closed */
	/* open_log()'s core_log_config */
	uint64_t segment_size;
	uint64_t prealloc;
	unsigned max_syncs;
	bool buffered;
	unsigned mark_delay_ms;
	uint64_t salvage_from;
	char err[512];         /* the last open's error text */
	/* persisted callbacks */
	uint64_t calls;
	uint64_t calls_failed;
	uint64_t last_batch;  /* of the last successful callback */
	uint64_t batch_order; /* callbacks whose batch number went backwards */
	int last_status[MAXG];
	uint64_t durable_index[MAXG];
	uint64_t durable_term[MAXG];
	unsigned hs_durable[MAXG];
	/* restore callbacks */
	struct rgroup rg[MAXG];
	size_t restored;
	int bad_payloads;     /* restored entries whose bytes differ from fill()'s */
};

/* cmocka setup and teardown: a struct fx with 64 KiB segments and
 * preallocation, buffered if $RINGKV_CORE_LOG_BUFFERED is set, and a ring;
 * teardown closes the log (settled), unmounts a tmpfs left on the log's
 * directory and removes the directory. */
int core_log_fixture_setup(void **state);
int core_log_fixture_teardown(void **state);

/* The payload bytes of entry `i` of group `g` in term `t`. */
void fill(uint8_t *p, size_t len, uint64_t g, uint64_t i, uint64_t t);

/* Forgets what the last open restored. */
void clear_restored(struct fx *f);

/* Opens the log with the fixture's knobs (core_log_open's result, the text
 * in f->err); must_open fails the test if it cannot. */
int open_log(struct fx *f);
void must_open(struct fx *f);

/* Runs the ring until the log has nothing pending or in flight, and checks
 * that every batch was called back in order. */
void settle(struct fx *f);

/* A few more passes: retention needs a RETAIN to be durable, then unlinks
 * one segment per pass. */
void settle_long(struct fx *f);

/* Settles and closes the log; reopen() then opens it again. */
void close_log(struct fx *f);
void reopen(struct fx *f);

/* Stages entries [first, first + n) of `g` in `term`, `len` bytes each
 * (n <= 64, len <= 64 KiB); core_log_append's result. */
int append(struct fx *f, uint64_t g, uint64_t first, size_t n, uint64_t term, size_t len);

/* The path of segment `seq`, whether it exists, and the lowest and highest
 * seq present (UINT64_MAX and 0 if none). */
void path_of(struct fx *f, uint64_t seq, char *buf, size_t len);
bool seg_exists(struct fx *f, uint64_t seq);
void seg_range(struct fx *f, uint64_t *lo, uint64_t *hi);

/* Starts a scan of segment `seq` (its first 4 MiB, in a static buffer);
 * false if it is missing. */
bool scan_segment(struct fx *f, uint64_t seq, struct core_log_scanner *s);

/* Offset of the record holding ENTRY(g, index) in segment `seq`, or -1. */
long find_entry(struct fx *f, uint64_t seq, uint64_t g, uint64_t index);

/* The last open restored `n` entries of `g` from `first` on (each of term
 * `term_of_all` unless it is 0), every payload intact. */
void check_group(struct fx *f, uint64_t g, uint64_t first, size_t n, uint64_t term_of_all);

#endif
