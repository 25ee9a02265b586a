/*
 * The fixture of the replicated shard's tests (shard/shard_apply.c:
 * test_shard_apply.c, test_shard_apply_snapshot.c, test_shard_apply_flush.c):
 *   - apply_model.c: NENTRIES log entries of every command over NKEYS keys
 *     (every twentieth a NOOP, every flush_every-th a FLUSH), and a model
 *     of their effect, written from shard/command.h, with the answer each
 *     entry's client should get;
 *   - apply_fixture.c: two replicated shards with 64 KiB memtables on a
 *     real io_uring ring (entries land in SSTables quickly), fed entries,
 *     settled, and checked against the model (gets, one scan, the deadline
 *     index).
 * Include after <cmocka.h>.
 */
#ifndef RINGKV_TESTS_APPLY_FIXTURE_H
#define RINGKV_TESTS_APPLY_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/ring.h"
#include "shard/block_cache.h"
#include "shard/command.h"
#include "shard/shard.h"
#include "shard_test.h"

#define NKEYS 160
#define NENTRIES 4000
#define APPEND_LIMIT 700
#define MEMTABLE (64u << 10)

/* ---- the entries and the model (apply_model.c) ---- */

struct entry {
	uint8_t bytes[400];
	size_t len;
	bool noop;
};

struct model_key {
	bool present;             /* stored, expired or not */
	char value[APPEND_LIMIT + 1];
	size_t len;
	uint64_t deadline;        /* 0: none */
};

/*
 * Expiry in the model (shard/command.h): entry i carries now = MODEL_T0 + i
 * (most of them; now 0 for the others), so the apply step sees keys expire
 * as the log goes on. Deadlines are either near that time (years before
 * this machine's clock: every read sees them expired) or
 * MODEL_FAR_FUTURE + x (after it: reads see the value).
 */
#define MODEL_T0 1000000000000ull          /* 2001 */
#define MODEL_FAR_FUTURE 4000000000000ull  /* 2096 */

/* A client's waiter that keeps its whole answer. */
struct client {
	struct shard_waiter w;
	int done;
	int rv;
	struct shard_result res;
	size_t old_len;
	char old[APPEND_LIMIT + 1];
};

extern struct entry entries[NENTRIES + 1]; /* 1-based, like log indexes */
extern struct model_key model[NKEYS];      /* the state after every entry */
extern unsigned flush_every;               /* make_entries: every flush_every-th
					    * entry is a FLUSH (0: none) */
extern struct client clients[NENTRIES + 1];

/* Entries 1..NENTRIES from `seed`, applied to the model as they are made,
 * so model[] is the state after all of them. */
void make_entries(uint64_t seed);
/* Key k's name, "key%04u" (out: 16 bytes). */
void key_name(char *out, unsigned k);
/* What a read sees of key k, by this machine's clock. */
bool model_visible(unsigned k);
/* A struct client's waiter callback. */
void client_done(struct shard_waiter *w, int rv, const struct shard_result *res);
/* Every entry answered once, as the model says. */
void check_answers(void);

/* ---- driving shards (apply_fixture.c) ---- */

struct hooks {
	uint64_t flushed[256];  /* flushed indexes reported, in order */
	unsigned nflushed;
	unsigned ready;         /* on_apply_ready calls */
};

struct fixture {
	char dir[64];
	struct io_ring io;
	struct block_cache *cache;
	struct shard *s[2];
	struct hooks hooks[2];
};

/* The replicated shard in f->dir/name as f->s[slot] (apply_limit 0: the
 * default); its hooks record into f->hooks[slot]. */
struct shard *open_rep(struct fixture *f, int slot, const char *name, uint64_t apply_limit);
/* cmocka setup and teardown of each test: *state is a struct fixture. */
int apply_fixture_setup(void **state);
int apply_fixture_teardown(void **state);
/* One turn of the ring (flushing both shards' queued work first). */
void turn(struct fixture *f);
/* Turns until both shards are idle with no background work. */
void settle(struct fixture *f);
/* Hands entry `index` to s (shard_apply's code). */
int apply_entry(struct shard *s, uint64_t index, struct shard_waiter *w);
/* Hands in entries [from, to], turning the ring while the shard refuses and
 * every turn_every entries; `with_clients`: each with its client's waiter,
 * asking for the prior value. */
void apply_range_as(struct fixture *f, struct shard *s, uint64_t from, uint64_t to,
		    unsigned turn_every, bool with_clients);
void apply_range(struct fixture *f, struct shard *s, uint64_t from, uint64_t to,
		 unsigned turn_every);
/* Command c as entry `index` (shard_apply's code). */
int apply_cmd(struct shard *s, uint64_t index, struct command c, struct shard_waiter *w);
/* Every key of the model read back by get and (`scan`) by one scan, and
 * nothing else. */
void check_model_keys(struct fixture *f, struct shard *s, bool scan);
/* The deadline index agrees with the model; `whole`: it holds every
 * stored key with a deadline. */
void check_index_entries(struct shard *s, bool whole);
/* A rebuild step's callback: counts into *(int *)arg. */
void rebuild_step_done(void *arg);
/* Rebuild steps until the index is complete; `with_model`: checked
 * against the model at each step and at the end. */
void rebuild_index(struct fixture *f, struct shard *s, bool with_model);
/* The keys, the deadline index, and the index rebuilt: all as the model. */
void check_model(struct fixture *f, struct shard *s);
/* A restart of the shard in `slot`: reopened at its flushed index, the log
 * above it handed in again, it holds the model. */
void reopen_replay(struct fixture *f, int slot, const char *name);
/* The entries of `seed` into shard "a" (a leader: one at a time, a client
 * on each) and "b" (a follower: as fast as it takes them); settled, every
 * client told what the model says. */
void feed_two_paces(struct fixture *f, uint64_t seed);
/* A snapshot chunk read and its answer. */
struct chunk_io {
	struct shard_snapshot_chunk c;
	int done;
	int rv;
};

/* The receiver's side, blocking: every file of `snap`, read in chunks
 * through the sender's ring, staged for the shard at `dir`. */
void ship(struct fixture *f, struct shard_snapshot *snap, const char *dir);

#endif
