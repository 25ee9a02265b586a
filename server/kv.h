/*
 * Execution of client requests on the shard that owns their key, wherever the
 * request arrived.
 *
 * A GET for a shard of the receiving core is answered in place. Every other
 * request becomes a struct kv_req allocated from the receiving (origin) core's
 * pool; it travels to the owning core over the SPSC ring, is executed there,
 * and travels back carrying its result. It is freed only by its origin, so no
 * core ever frees another core's memory.
 *
 * A GET value is copied into the request's spare bytes on the owning core; if
 * the value is larger than the spare room, the answer says how much is needed
 * and the origin sends the request again with room for it (a read repeated
 * later is still linearizable: it is a new read).
 */
#ifndef RINGKV_SERVER_KV_H
#define RINGKV_SERVER_KV_H

#include <stdint.h>

#include "core/reactor.h"
#include "proto/frame.h"
#include "shard/shard.h"

struct conn;
struct node_core;

struct kv_req {
	struct reactor_msg msg;   /* first: the cross-core envelope */
	struct shard_waiter waiter;
	struct conn *conn;        /* origin connection; touched on the origin only */
	struct node_core *exec;   /* owning core while it executes the request */
	uint64_t id;              /* the client's request id */
	uint32_t shard;
	uint16_t origin;          /* core that received the request */
	uint8_t op;               /* enum frame_op */
	int status;               /* ringkv_Status of the answer */
	const char *error;        /* static text for non-OK answers, or NULL */
	uint32_t key_len;
	uint32_t value_len;       /* PUT: request value; GET: answer value */
	uint32_t cap;             /* bytes of data[] */
	uint32_t need;            /* GET: value bytes that did not fit */
	uint8_t data[];           /* key, then value */
};

/*
 * Executes or forwards one decoded request that arrived on `conn` of core `c`.
 * The answer is queued on the connection, now or later.
 */
void kv_submit(struct node_core *c, struct conn *conn, const struct frame_request *req);

#endif
