/*
 * State-machine commands: the payload of a WAL record, and later of a Raft log
 * entry. Applying the same commands in the same order gives the same state, so
 * a command holds everything its effect depends on.
 *
 * Encoding (little-endian): u8 op, u32 key_len, key bytes, then for every op
 * but DELETE u32 value_len and value bytes; INCRBY's value is its 8-byte
 * signed delta; APPEND ends with a u32 limit on the resulting length (part of
 * the command so that every replica, and every replay, applies the same
 * limit). FLUSH is the op and a zero key length, nothing else. SETRANGE
 * and SETBIT end with a u64 offset (bytes; SETBIT: bits) and the u32 limit;
 * SETBIT's value is one byte, 0 or 1; INCRBYFLOAT's value is the increment
 * as decimal text (checked by the sender; applied as a long double, so every
 * replica must run on the same long double format). Decoding checks every
 * length against the buffer.
 *
 * Effects (shard/shard.c applies them, at run time and at replay alike):
 * PUT sets; DELETE removes; PUT_NX sets only an absent key, PUT_XX only a
 * present one; INCRBY adds delta to a value holding a decimal int64 (absent =
 * 0), failing without change on a non-integer or overflow; APPEND appends,
 * failing without change past `limit`; FLUSH drops every key the shard
 * holds (replicated mode only: shard/shard_drop.c; a WAL shard refuses it);
 * SETRANGE overwrites the value from `offset` (absent = empty, zero-padded;
 * an empty value changes nothing), SETBIT sets one bit (most significant
 * first, zero-padded) and answers the old bit, INCRBYFLOAT adds the
 * increment to a value holding a float and stores it as Redis formats it;
 * each fails without change past `limit` (or, INCRBYFLOAT, on a non-float
 * or a result that is not finite). The effects are in shard/shard_strings.c.
 *
 * Multi-key commands (shard/shard_multi.c), atomic because they are one
 * entry applied by one replica step: MSETNX has an empty key and, as its
 * value, the pairs packed as (u32 key_len, key, u32 value_len, value)...,
 * at least one; it sets every pair when no key of them holds a value, else
 * nothing (applied says which). RENAME, RENAMENX, COPY and COPY_REPLACE
 * have the source key as key and the destination key as value. RENAME
 * moves the source's value to the destination (replacing it) and deletes
 * the source; RENAMENX only when the destination is absent; a source equal
 * to its destination changes nothing. COPY sets the destination to the
 * source's value when the destination is absent, COPY_REPLACE whatever it
 * holds. A missing source fails RENAME* with RKV_ENOTFOUND (res.error) and
 * makes COPY* change nothing; applied says whether the keyspace changed as
 * asked (RENAME of a key onto itself: applied; RENAMENX: not).
 *
 * Expiry (issue #21, shard/value_deadline.h). Any command may be prefixed by
 * AT_TIME: u8 16, u64 now (not 0), then the command; decoded, it is the
 * command with `now` set. `now` is the proposer's clock: the apply step
 * treats a value whose deadline is before `now` as absent (without `now`,
 * as present until its EXPIRE_DELETE applies), and never reads a clock, so
 * every replica and every replay decide alike. PUT_AT is PUT with, after
 * the value, a u64 deadline (0: none) and a flags byte (COMMAND_SET_*: NX,
 * XX, KEEPTTL; NX with XX, or KEEPTTL with a deadline, are refused);
 * applied says whether it wrote. EXPIRE_AT has the key, a u64 deadline (not
 * 0) and a flags byte (COMMAND_EXPIRE_*; NX with another, or GT with LT,
 * refused): on a live key whose deadline the flags allow it sets the
 * deadline, or deletes the key when the deadline is not after `now`;
 * applied says so (EXPIRE's 1/0). PERSIST has the key only: removes a live
 * key's deadline (applied when it had one). EXPIRE_DELETE has the key and
 * a u64 deadline (not 0): deletes the key only if its stored deadline is
 * that one, whatever `now` (the leader decided; a key written again since
 * is kept). Every command that rewrites a value from the old one (INCRBY,
 * APPEND, SETRANGE, SETBIT, INCRBYFLOAT) keeps its deadline; PUT, PUT_NX,
 * PUT_XX and MSETNX write values without one; RENAME and COPY* carry the
 * source's deadline to the destination.
 */
#ifndef RINGKV_SHARD_COMMAND_H
#define RINGKV_SHARD_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum command_op {
	COMMAND_PUT = 1,
	COMMAND_DELETE = 2,
	COMMAND_PUT_NX = 3,
	COMMAND_PUT_XX = 4,
	COMMAND_INCRBY = 5,
	COMMAND_APPEND = 6,
	COMMAND_FLUSH = 7,
	/* 8-29: the RESP door's string commands (shard/shard_strings.c) */
	COMMAND_SETRANGE = 8,
	COMMAND_SETBIT = 9,
	COMMAND_INCRBYFLOAT = 10,
	COMMAND_MSETNX = 11,
	COMMAND_RENAME = 12,
	COMMAND_RENAMENX = 13,
	COMMAND_COPY = 14,
	COMMAND_COPY_REPLACE = 15,
	/* Expiry (issue #21; effects in shard/shard_exec.c) */
	COMMAND_AT_TIME = 16,      /* a prefix, never an op of its own */
	COMMAND_PUT_AT = 17,
	COMMAND_EXPIRE_AT = 18,
	COMMAND_PERSIST = 19,
	COMMAND_EXPIRE_DELETE = 20,
};

#define COMMAND_OP_MAX COMMAND_EXPIRE_DELETE

/* PUT_AT's flags */
#define COMMAND_SET_NX 0x1      /* only when the key holds no (live) value */
#define COMMAND_SET_XX 0x2      /* only when it holds one */
#define COMMAND_SET_KEEPTTL 0x4 /* keep the old value's deadline (deadline 0) */
/* EXPIRE_AT's flags (Redis 7.0's EXPIRE options; no deadline = infinite) */
#define COMMAND_EXPIRE_NX 0x1   /* only when the key has no deadline */
#define COMMAND_EXPIRE_XX 0x2   /* only when it has one */
#define COMMAND_EXPIRE_GT 0x4   /* only when the new deadline is later */
#define COMMAND_EXPIRE_LT 0x8   /* only when the new deadline is earlier */

struct command {
	enum command_op op;
	const uint8_t *key;   /* borrowed; FLUSH: none (key_len 0) */
	uint32_t key_len;
	const uint8_t *value; /* borrowed; NULL for DELETE and INCRBY */
	uint32_t value_len;
	int64_t delta;        /* INCRBY */
	uint32_t limit;       /* APPEND, SETRANGE, SETBIT: largest allowed
			       * resulting length */
	uint64_t offset;      /* SETRANGE: byte offset; SETBIT: bit offset */
	uint64_t deadline;    /* PUT_AT, EXPIRE_AT, EXPIRE_DELETE: Unix ms; 0 none */
	uint8_t flags;        /* PUT_AT: COMMAND_SET_*; EXPIRE_AT: COMMAND_EXPIRE_* */
	uint64_t now;         /* the proposer's time (Unix ms), 0 = not given:
			       * encoded as an AT_TIME prefix when not 0 */
};

/* Whether `op` ends with the u64 offset and u32 limit (SETRANGE, SETBIT). */
static inline int command_has_offset(unsigned op)
{
	return op == COMMAND_SETRANGE || op == COMMAND_SETBIT;
}

/* Whether `op` is one of the multi-key commands (MSETNX .. COPY_REPLACE). */
static inline int command_is_multi(unsigned op)
{
	return op >= COMMAND_MSETNX && op <= COMMAND_COPY_REPLACE;
}

/* One pair of an MSETNX value. */
struct command_pair {
	const uint8_t *key, *value; /* into the command's value */
	uint32_t key_len, value_len;
};

/* Bytes one pair takes in an MSETNX value. */
static inline size_t command_pair_size(size_t key_len, size_t value_len)
{
	return 8 + key_len + value_len;
}

/* Writes one pair at `out` (command_pair_size bytes); returns the end. */
uint8_t *command_pair_put(uint8_t *out, const void *key, uint32_t key_len, const void *value,
			  uint32_t value_len);

/*
 * The pair at *pos of a decoded MSETNX's value (start with *pos = 0): 1 with
 * *out set and *pos moved past it, 0 at the end. command_decode checked
 * the packing, so this never fails on a decoded command.
 */
int command_pair_next(const struct command *c, size_t *pos, struct command_pair *out);

/*
 * The most a value can grow by applying `c`, whatever it holds before
 * (bytes; 0 for commands that set a value of known size, and for one
 * that would pass its limit, which writes nothing): what a writer queuing
 * commands must set aside for the commands queued before the next.
 */
uint64_t command_growth(const struct command *c);

/* Bytes command_encode() writes for `c`. */
size_t command_encoded_size(const struct command *c);

/* Writes `c` to `out` (command_encoded_size bytes). Returns the bytes written. */
size_t command_encode(const struct command *c, uint8_t *out);

/*
 * Decodes one command that occupies exactly `len` bytes; key/value point into
 * `buf`. 0, or RKV_ECORRUPT for an unknown op, a length past the end, or
 * trailing bytes.
 */
int command_decode(const uint8_t *buf, size_t len, struct command *out);

/*
 * The key of the encoded command in buf[0..len), without decoding the rest:
 * for a hint (the apply's prefetch), where a full command_decode per entry
 * cost more than the prefetch saved. true with *key and *key_len into buf
 * when the op is known and the key lies within the bytes; false for FLUSH,
 * MSETNX (no key of its own) and anything malformed. It checks nothing
 * else: command_decode decides whether the command is valid.
 */
bool command_peek_key(const uint8_t *buf, size_t len, const uint8_t **key, uint32_t *key_len);

/*
 * Whether `flags` and `deadline` are ones a PUT_AT (op COMMAND_PUT_AT) or
 * an EXPIRE_AT (any other op) accepts: what command_decode checks, for a
 * sender that checks before it proposes.
 */
bool command_flags_valid(unsigned op, uint32_t flags, uint64_t deadline);

#endif
