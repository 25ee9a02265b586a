/*
 * Range scans of the native protocol: keys in [start, end) with their
 * values, in key order across every shard of the node.
 *
 * A scan is a small state machine on the core of the client's connection
 * (the origin), driven by the completions of the requests it sends:
 *
 *   keys:   one KV_SCAN step to every shard, from the cursor (the start key,
 *           inclusive, on the first round; the last key merged, exclusive,
 *           after). Each step examines up to `limit` keys of its shard and
 *           answers the live ones and the key it stopped at (its resume key).
 *   merge:  the steps' keys are merged in key order, keeping those below
 *           `end` and at most the smallest resume key of the shards that are
 *           not finished: up to there every shard has been examined, so no
 *           key can be missing (the rule of the RESP SCAN, server/redis.c).
 *   values: one KV_GET per merged key. A key deleted since the keys round is
 *           left out.
 *
 * The rounds repeat from the last merged key while the answer has fewer
 * than `limit` pairs, shards are unfinished and the answer frame has room,
 * at most SCAN_MAX_ROUNDS times; an answer with no pair yet goes on until
 * it finds one or the range ends, so an answer without pairs always means
 * the range is exhausted. A scan is not a snapshot: writes between (or
 * during) the rounds may or may not be seen (docs/ARCHITECTURE.md, "Range
 * scans").
 */
#ifndef RINGKV_SERVER_SCAN_H
#define RINGKV_SERVER_SCAN_H

struct node_core;
struct conn;
struct frame_request;

/* Rounds (keys + values) after which a scan answers with what it has. */
#define SCAN_MAX_ROUNDS 8u

/*
 * Starts the scan `req` (op FRAME_OP_SCAN, limit already normalised by the
 * decoder) of `conn`; bounds longer than --max-key are answered
 * INVALID_ARGUMENT. Counts it in conn->inflight; the answer is queued on
 * the connection (which stays alive until then) when it is complete. Copies
 * what it needs from `req`, which may go away on return.
 */
void scan_submit(struct node_core *c, struct conn *conn, const struct frame_request *req);

#endif
