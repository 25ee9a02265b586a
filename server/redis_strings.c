/*
 * The RESP door's string commands beyond GET/SET: GETDEL, GETRANGE/SUBSTR,
 * SETRANGE, GETBIT, SETBIT, BITCOUNT, BITPOS, LCS and INCRBYFLOAT, with
 * Redis 7.0's replies and error texts.
 *
 * Writes are state-machine commands (shard/shard_strings.c), so their
 * result is computed at their place in the log on every replica. Reads
 * fetch the value with an ordinary linearizable GET and compute the answer
 * on the connection's core when it is formatted. Arguments are checked in
 * Redis's order: where Redis looks the key up first (BITCOUNT's range,
 * BITPOS's range), an argument error is kept and answered only when the key
 * exists, as Redis does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "proto/resp.h"
#include "ringkv.pb.h"
#include "server/conn.h"
#include "server/node.h"
#include "server/redis_impl.h"
#include "shard/shard_strings.h"

/* LCS's table of (n+1)(m+1) 4-byte cells is refused past this (Redis
 * bounds it by proto-max-bulk-len, 512 MiB): at most 64 MiB and some tens
 * of milliseconds of this core. */
#define REDIS_LCS_MAX_TABLE (64u << 20)

#define ERR_BIT_OFFSET "ERR bit offset is not an integer or out of range"
#define ERR_BIT_VALUE "ERR bit is not an integer or out of range"
#define ERR_OFFSET_RANGE "ERR offset is out of range"
#define ERR_NOT_FLOAT "ERR value is not a valid float"

static bool parse_int(const struct resp_arg *a, int64_t *v)
{
	return resp_parse_int64(a->data, a->len, v) == 0;
}

/* A bit offset as Redis takes it: an integer, not negative, whose byte is
 * within the value limit. */
static bool parse_bit_offset(struct conn *conn, const struct resp_arg *a, int64_t *v)
{
	return parse_int(a, v) && *v >= 0 &&
	       (uint64_t)*v / 8 < redis_max_value(conn->core);
}

static void answer_error(struct conn *conn, const char *text)
{
	struct reply *r = &conn->redis->scratch;

	reply_reset(r);
	reply_error(conn, r, text);
	redis_reply_now(conn);
}

/* ---- writes ------------------------------------------------------------ */

static void cmd_setrange(struct conn *conn, const struct resp_command *cmd)
{
	int64_t offset;

	if (!parse_int(&cmd->argv[2], &offset)) {
		answer_error(conn, RESP_ERR_NOT_INTEGER);
		return;
	}
	if (offset < 0) {
		answer_error(conn, ERR_OFFSET_RANGE);
		return;
	}
	redis_single_key(conn, cmd, RESP_CMD_SETRANGE, KV_SETRANGE, &cmd->argv[3], 0, offset,
			 NULL);
}

static void cmd_setbit(struct conn *conn, const struct resp_command *cmd)
{
	static const uint8_t bits[2] = { 0, 1 };
	struct resp_arg value;
	int64_t offset, bit;

	if (!parse_bit_offset(conn, &cmd->argv[2], &offset)) {
		answer_error(conn, ERR_BIT_OFFSET);
		return;
	}
	if (!parse_int(&cmd->argv[3], &bit) || (bit != 0 && bit != 1)) {
		answer_error(conn, ERR_BIT_VALUE);
		return;
	}
	memset(&value, 0, sizeof value);
	value.data = &bits[bit];
	value.len = 1;
	redis_single_key(conn, cmd, RESP_CMD_SETBIT, KV_SETBIT, &value, 0, offset, NULL);
}

static void cmd_incrbyfloat(struct conn *conn, const struct resp_command *cmd)
{
	long double incr;

	/* Checked here too, so a malformed increment never enters the log. */
	if (!shard_float_parse(cmd->argv[2].data, cmd->argv[2].len, &incr)) {
		answer_error(conn, ERR_NOT_FLOAT);
		return;
	}
	redis_single_key(conn, cmd, RESP_CMD_INCRBYFLOAT, KV_INCRBYFLOAT, &cmd->argv[2], SET_GET,
			 0, NULL);
}

/* ---- reads: arguments --------------------------------------------------- */

static void cmd_getrange(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id)
{
	struct redis_read_args ra = { 0 };

	if (!parse_int(&cmd->argv[2], &ra.start) || !parse_int(&cmd->argv[3], &ra.end)) {
		answer_error(conn, RESP_ERR_NOT_INTEGER);
		return;
	}
	redis_single_key(conn, cmd, id, KV_GET, NULL, 0, 0, &ra);
}

static void cmd_getbit(struct conn *conn, const struct resp_command *cmd)
{
	struct redis_read_args ra = { 0 };

	if (!parse_bit_offset(conn, &cmd->argv[2], &ra.start)) {
		answer_error(conn, ERR_BIT_OFFSET);
		return;
	}
	redis_single_key(conn, cmd, RESP_CMD_GETBIT, KV_GET, NULL, 0, 0, &ra);
}

/*
 * OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ key, OBJECT HELP. A read of the key
 * (nil when it does not exist, as Redis); the answer is derived from the
 * value, ringkv keeping no encodings, counts or access times:
 * ENCODING is what Redis's SET would choose for these bytes ("int" for a
 * canonical integer of at most 20 characters, "embstr" up to 44 bytes,
 * "raw" beyond), REFCOUNT Redis's shared-integer answer for 0-9999 else 1,
 * IDLETIME 0, FREQ Redis's error for a policy that does not count.
 */
enum { OBJECT_ENCODING = 1, OBJECT_REFCOUNT, OBJECT_IDLETIME, OBJECT_FREQ };

static void cmd_object(struct conn *conn, const struct resp_command *cmd)
{
	static const char *const names[] = { "encoding", "refcount", "idletime", "freq" };
	struct redis_read_args ra = { 0 };
	struct resp_command keyed;
	struct reply *r = &conn->redis->scratch;

	for (unsigned i = 0; i < 4 && !ra.start; i++)
		if (redis_arg_is(&cmd->argv[1], names[i]))
			ra.start = i + 1;
	if (ra.start && cmd->argc == 3) {
		/* The key is argv[2]: shifted so redis_single_key finds it. */
		keyed = (struct resp_command){ cmd->argv + 1, cmd->argc - 1, cmd->is_inline };
		redis_single_key(conn, &keyed, RESP_CMD_OBJECT, KV_GET, NULL, 0, 0, &ra);
		return;
	}
	reply_reset(r);
	if (ra.start) {
		reply_errorf(conn, r, "ERR wrong number of arguments for 'object|%s' command",
			     names[ra.start - 1]);
	} else if (redis_arg_is(&cmd->argv[1], "HELP") && cmd->argc == 2) {
		/* ringkv's own words (Redis's client libraries only show it). */
		static const char *const help[] = {
			"OBJECT <subcommand> <key>: what ringkv can tell of a key's value.",
			"ENCODING <key>",
			"    int, embstr or raw: what Redis would choose for the value's bytes.",
			"REFCOUNT <key>",
			"    2147483647 for the integers 0-9999 (shared by Redis), else 1.",
			"IDLETIME <key>",
			"    Always 0: ringkv keeps no access times.",
			"FREQ <key>",
			"    Refused: no access frequency is kept.",
			"HELP",
			"    This text.",
		};

		reply_array(conn, r, sizeof help / sizeof help[0]);
		for (size_t i = 0; i < sizeof help / sizeof help[0]; i++)
			reply_simple(conn, r, help[i]);
	} else {
		reply_errorf(conn, r, "ERR unknown subcommand '%.*s'. Try OBJECT HELP.",
			     (int)(cmd->argv[1].len < 64 ? cmd->argv[1].len : 64),
			     (const char *)cmd->argv[1].data);
	}
	redis_reply_now(conn);
}

/* Whether Redis would store these bytes as an integer: a canonical long. */
static bool object_is_int(const uint8_t *v, size_t len, int64_t *out)
{
	char text[24];

	if (len == 0 || len > 20 || resp_parse_int64(v, len, out) != 0)
		return false;
	return (size_t)snprintf(text, sizeof text, "%lld", (long long)*out) == len &&
	       !memcmp(text, v, len);
}

/* BITCOUNT key [start end [BYTE|BIT]] and BITPOS key bit [start [end
 * [BYTE|BIT]]]: the range arguments from argv[first]. */
static void parse_range(const struct resp_command *cmd, size_t first, bool end_optional,
			struct redis_read_args *ra)
{
	size_t n = cmd->argc - first;

	if (n == 0)
		return;
	if ((n == 1 && !end_optional) || n > 3) {
		ra->error = RESP_ERR_SYNTAX;
		return;
	}
	if (!parse_int(&cmd->argv[first], &ra->start) ||
	    (n >= 2 && !parse_int(&cmd->argv[first + 1], &ra->end))) {
		ra->error = RESP_ERR_NOT_INTEGER;
		return;
	}
	ra->ranged = true;
	ra->end_given = n >= 2;
	if (n == 3) {
		if (redis_arg_is(&cmd->argv[first + 2], "BIT"))
			ra->bits = true;
		else if (!redis_arg_is(&cmd->argv[first + 2], "BYTE"))
			ra->error = RESP_ERR_SYNTAX;
	}
}

static void cmd_bitcount(struct conn *conn, const struct resp_command *cmd)
{
	struct redis_read_args ra = { 0 };

	parse_range(cmd, 2, false, &ra);
	redis_single_key(conn, cmd, RESP_CMD_BITCOUNT, KV_GET, NULL, 0, 0, &ra);
}

static void cmd_bitpos(struct conn *conn, const struct resp_command *cmd)
{
	struct redis_read_args ra = { 0 };
	int64_t bit;

	if (!parse_int(&cmd->argv[2], &bit)) {
		answer_error(conn, RESP_ERR_NOT_INTEGER);
		return;
	}
	if (bit != 0 && bit != 1) {
		answer_error(conn, "ERR The bit argument must be 1 or 0.");
		return;
	}
	ra.bit = (uint8_t)bit;
	parse_range(cmd, 3, true, &ra);
	redis_single_key(conn, cmd, RESP_CMD_BITPOS, KV_GET, NULL, 0, 0, &ra);
}

static void cmd_lcs(struct conn *conn, const struct resp_command *cmd)
{
	struct redis_read_args ra = { 0 };

	for (size_t i = 3; i < cmd->argc; i++) {
		const struct resp_arg *a = &cmd->argv[i];

		if (redis_arg_is(a, "IDX")) {
			ra.idx = true;
		} else if (redis_arg_is(a, "LEN")) {
			ra.len = true;
		} else if (redis_arg_is(a, "WITHMATCHLEN")) {
			ra.with_match_len = true;
		} else if (redis_arg_is(a, "MINMATCHLEN") && i + 1 < cmd->argc) {
			if (!parse_int(&cmd->argv[++i], &ra.start)) {
				answer_error(conn, RESP_ERR_NOT_INTEGER);
				return;
			}
			if (ra.start < 0)
				ra.start = 0;
		} else {
			answer_error(conn, RESP_ERR_SYNTAX);
			return;
		}
	}
	if (ra.idx && ra.len) {
		answer_error(conn, "ERR If you want both the length and indexes, please just use IDX.");
		return;
	}
	redis_two_keys(conn, cmd, RESP_CMD_LCS, &ra);
}

bool redis_cmd_string(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id)
{
	switch (id) {
	case RESP_CMD_GETDEL:
		redis_single_key(conn, cmd, id, KV_DELETE, NULL, SET_GET, 0, NULL);
		return true;
	case RESP_CMD_SETRANGE:
		cmd_setrange(conn, cmd);
		return true;
	case RESP_CMD_SETBIT:
		cmd_setbit(conn, cmd);
		return true;
	case RESP_CMD_INCRBYFLOAT:
		cmd_incrbyfloat(conn, cmd);
		return true;
	case RESP_CMD_GETRANGE:
	case RESP_CMD_SUBSTR:
		cmd_getrange(conn, cmd, id);
		return true;
	case RESP_CMD_GETBIT:
		cmd_getbit(conn, cmd);
		return true;
	case RESP_CMD_BITCOUNT:
		cmd_bitcount(conn, cmd);
		return true;
	case RESP_CMD_BITPOS:
		cmd_bitpos(conn, cmd);
		return true;
	case RESP_CMD_LCS:
		cmd_lcs(conn, cmd);
		return true;
	case RESP_CMD_OBJECT:
		cmd_object(conn, cmd);
		return true;
	case RESP_CMD_DEBUG:
		redis_cmd_debug(conn, cmd); /* server/redis_expiry.c */
		return true;
	default:
		return false;
	}
}

/* ---- reads: answers ------------------------------------------------------ */

/*
 * Redis's range rule (GETRANGE, BITCOUNT, BITPOS): negative indexes count
 * from the end of a string of `total` units, both ends are clamped to it.
 * False for an empty range.
 */
static bool clamp_range(int64_t total, int64_t *start, int64_t *end)
{
	if (*start < 0 && *end < 0 && *start > *end)
		return false;
	if (*start < 0)
		*start += total;
	if (*end < 0)
		*end += total;
	if (*start < 0)
		*start = 0;
	if (*end < 0)
		*end = 0;
	if (*end >= total)
		*end = total - 1;
	return *start <= *end && total > 0;
}

static int bit_at(const uint8_t *v, int64_t pos)
{
	return (v[pos / 8] >> (7 - pos % 8)) & 1;
}

static int64_t bitcount(const uint8_t *v, size_t len, const struct redis_read_args *ra)
{
	int64_t start = 0, end = (int64_t)len - 1, count = 0;

	if (ra->ranged) {
		start = ra->start;
		end = ra->end;
		if (!clamp_range(ra->bits ? (int64_t)len * 8 : (int64_t)len, &start, &end))
			return 0;
		if (ra->bits) {
			/* Whole bytes by table, the partial ends bit by bit. */
			while (start <= end && start % 8)
				count += bit_at(v, start++);
			while (start <= end && (end + 1) % 8)
				count += bit_at(v, end--);
			if (start > end)
				return count;
			start /= 8;
			end = (end + 1) / 8 - 1;
		}
	}
	for (int64_t i = start; i <= end; i++)
		count += __builtin_popcount(v[i]);
	return count;
}

static int64_t bitpos(const uint8_t *v, size_t len, const struct redis_read_args *ra)
{
	int64_t first = 0, last = (int64_t)len * 8 - 1;
	uint8_t skip = ra->bit ? 0x00 : 0xff; /* a byte without the bit sought */

	if (ra->ranged) {
		int64_t start = ra->start;
		int64_t end = ra->end_given ? ra->end : ra->bits ? (int64_t)len * 8 - 1 : (int64_t)len - 1;

		if (!clamp_range(ra->bits ? (int64_t)len * 8 : (int64_t)len, &start, &end))
			return -1;
		first = ra->bits ? start : start * 8;
		last = ra->bits ? end : end * 8 + 7;
	} else if (len == 0) {
		return -1;
	}
	for (int64_t pos = first; pos <= last;) {
		if (pos % 8 == 0 && pos + 7 <= last && v[pos / 8] == skip) {
			pos += 8;
			continue;
		}
		if (bit_at(v, pos) == ra->bit)
			return pos;
		pos++;
	}
	/* No clear bit: past the end the string counts as zeros, unless the
	 * caller fixed the end of the range. */
	if (ra->bit == 0 && !ra->end_given)
		return last + 1;
	return -1;
}

/* The answer of a single-key string read to value v (found: the key
 * exists). */
void redis_format_read(struct conn *conn, struct reply *r, enum resp_cmd_id id,
		       const struct redis_read_args *ra, bool found, const uint8_t *v, size_t len)
{
	int64_t start, end;

	if (!found)
		len = 0;
	switch (id) {
	case RESP_CMD_GETRANGE:
	case RESP_CMD_SUBSTR:
		start = ra->start;
		end = ra->end;
		if (!clamp_range((int64_t)len, &start, &end))
			reply_bulk(conn, r, "", 0);
		else
			reply_bulk(conn, r, v + start, (size_t)(end - start + 1));
		return;
	case RESP_CMD_GETBIT:
		reply_int(conn, r, (uint64_t)ra->start / 8 < len ? bit_at(v, ra->start) : 0);
		return;
	case RESP_CMD_BITCOUNT:
		if (!found)
			reply_int(conn, r, 0);
		else if (ra->error)
			reply_error(conn, r, ra->error);
		else
			reply_int(conn, r, bitcount(v, len, ra));
		return;
	case RESP_CMD_BITPOS:
		/* A key that does not exist is an endless run of zeros. */
		if (!found)
			reply_int(conn, r, ra->bit ? -1 : 0);
		else if (ra->error)
			reply_error(conn, r, ra->error);
		else
			reply_int(conn, r, bitpos(v, len, ra));
		return;
	case RESP_CMD_OBJECT: {
		int64_t n;
		bool is_int = found && object_is_int(v, len, &n);

		if (!found)
			reply_null(conn, r);
		else if (ra->start == OBJECT_ENCODING)
			reply_str(conn, r, is_int ? "int" : len <= 44 ? "embstr" : "raw");
		else if (ra->start == OBJECT_REFCOUNT)
			reply_int(conn, r, is_int && n >= 0 && n < 10000 ? 2147483647 : 1);
		else if (ra->start == OBJECT_IDLETIME)
			reply_int(conn, r, 0);
		else
			reply_error(conn, r, "ERR An LFU maxmemory policy is not selected, access "
				    "frequency not tracked. Please note that when switching between "
				    "policies at runtime LRU and LFU data will take some time to "
				    "adjust.");
		return;
	}
	default:
		reply_error(conn, r, "ERR internal error: unexpected reply");
		return;
	}
}

/* One range of an LCS IDX answer: [[a_start, a_end], [b_start, b_end], len?]. */
static void reply_match(struct conn *conn, struct reply *r, const struct redis_read_args *ra,
			uint32_t a_start, uint32_t a_end, uint32_t b_start, uint32_t b_end)
{
	reply_array(conn, r, ra->with_match_len ? 3 : 2);
	reply_array(conn, r, 2);
	reply_int(conn, r, a_start);
	reply_int(conn, r, a_end);
	reply_array(conn, r, 2);
	reply_int(conn, r, b_start);
	reply_int(conn, r, b_end);
	if (ra->with_match_len)
		reply_int(conn, r, (int64_t)a_end - a_start + 1);
}

/*
 * LCS of a[0..n) and b[0..m): the classic table of prefix LCS lengths,
 * then one walk back from its corner that collects the common string and
 * the matching ranges, last ones first, as Redis reports them (on a tie
 * the walk moves left in b, as Redis's does, so equal inputs give equal
 * answers). The ranges are counted first, then written, since RESP2 needs
 * an array's length before its elements.
 */
void redis_format_lcs(struct conn *conn, struct reply *r, const struct redis_read_args *ra,
		      const uint8_t *a, size_t n, const uint8_t *b, size_t m)
{
	uint64_t cells = ((uint64_t)n + 1) * ((uint64_t)m + 1);
	uint32_t *t, total, pass, matches = 0;
	uint8_t *common = NULL;
	size_t w = m + 1;

	if (cells * sizeof *t > REDIS_LCS_MAX_TABLE) {
		reply_errorf(conn, r, "ERR Insufficient memory, transient memory for LCS exceeds "
			     "the limit (%u bytes)", REDIS_LCS_MAX_TABLE);
		return;
	}
	t = malloc(cells * sizeof *t);
	if (!t || !(common = malloc(n < m ? n + 1 : m + 1))) {
		free(t);
		reply_error(conn, r, "ERR Insufficient memory, failed allocating transient memory for LCS");
		return;
	}
	for (size_t i = 0; i <= n; i++) {
		for (size_t j = 0; j <= m; j++) {
			if (i == 0 || j == 0)
				t[i * w + j] = 0;
			else if (a[i - 1] == b[j - 1])
				t[i * w + j] = t[(i - 1) * w + j - 1] + 1;
			else
				t[i * w + j] = t[(i - 1) * w + j] > t[i * w + j - 1] ? t[(i - 1) * w + j]
										: t[i * w + j - 1];
		}
	}
	total = t[n * w + m];
	if (ra->len && !ra->idx) {
		reply_int(conn, r, total);
		goto out;
	}
	/* Pass 0 counts the ranges kept (IDX), pass 1 writes them. */
	for (pass = ra->idx ? 0 : 1; pass < 2; pass++) {
		size_t i = n, j = m;
		uint32_t left = total;
		bool open = false;
		uint32_t a0 = 0, a1 = 0, b0 = 0, b1 = 0;

		if (pass == 1 && ra->idx) {
			reply_map(conn, r, 2);
			reply_str(conn, r, "matches");
			reply_array(conn, r, matches);
		}
		while (i > 0 && j > 0) {
			bool close = false;

			if (a[i - 1] == b[j - 1]) {
				common[--left] = a[i - 1];
				if (!open) {
					open = true;
					a0 = a1 = (uint32_t)(i - 1);
					b0 = b1 = (uint32_t)(j - 1);
				} else {
					a0 = (uint32_t)(i - 1);
					b0 = (uint32_t)(j - 1);
				}
				/* At the first byte of either string: no more. */
				close = a0 == 0 || b0 == 0;
				i--;
				j--;
			} else {
				if (t[(i - 1) * w + j] > t[i * w + j - 1])
					i--;
				else
					j--;
				close = open;
			}
			if (close) {
				if ((uint64_t)a1 - a0 + 1 >= (uint64_t)ra->start) {
					if (pass == 0)
						matches++;
					else if (ra->idx)
						reply_match(conn, r, ra, a0, a1, b0, b1);
				}
				open = false;
			}
		}
	}
	if (ra->idx) {
		reply_str(conn, r, "len");
		reply_int(conn, r, total);
	} else {
		reply_bulk(conn, r, common, total);
	}
out:
	free(t);
	free(common);
}
