/*
 * State-machine commands: the payload of a WAL record, and later of a Raft log
 * entry. Applying the same commands in the same order gives the same state, so
 * a command holds everything its effect depends on.
 *
 * Encoding (little-endian): u8 op, u32 key_len, key bytes, then for PUT u32
 * value_len and value bytes. Decoding checks every length against the buffer.
 */
#ifndef RINGKV_SHARD_COMMAND_H
#define RINGKV_SHARD_COMMAND_H

#include <stddef.h>
#include <stdint.h>

enum command_op {
	COMMAND_PUT = 1,
	COMMAND_DELETE = 2,
};

struct command {
	enum command_op op;
	const uint8_t *key;   /* borrowed */
	uint32_t key_len;
	const uint8_t *value; /* borrowed; NULL for DELETE */
	uint32_t value_len;
};

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

#endif
