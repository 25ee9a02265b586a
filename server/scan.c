/*
 * Range scans of the native protocol; see server/scan.h for the rounds.
 *
 * Invariant: a scan touches its state only on the origin core, and only
 * between phases, when none of its requests is out (pending == 0). Requests
 * of a local shard may complete inside kv_dispatch, so a phase holds one
 * extra count while it sends, and completions that end a phase while the
 * state machine is already on the stack only flag it (`again`): the rounds
 * run as a loop, never as a recursion, however many of them complete in
 * place.
 */
#include "server/scan.h"

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/log.h"
#include "core/pool.h"
#include "proto/frame.h"
#include "ringkv.pb.h"
#include "server/conn.h"
#include "server/kv.h"
#include "server/node.h"
#include "shard/key_order.h"

/* Value room of a GET; a larger value takes one more trip (server/kv.h). */
#define SCAN_GET_ROOM 256u
/* Answer room a KV_SCAN step gets per key it may examine, on average. A step
 * whose keys are longer stops early (the step contract allows it). */
#define SCAN_STEP_KEY_ROOM 48u
#define SCAN_STEP_MAX_ROOM (1u << 20)
/* Keys a step examines at least, so that a small limit over a run of
 * deleted keys still advances quickly. */
#define SCAN_STEP_MIN_EXAMINE 128u

enum scan_phase {
	SCAN_START,  /* nothing sent yet */
	SCAN_KEYS,   /* KV_SCAN steps out */
	SCAN_VALUES, /* KV_GETs out */
};

struct scan_head {
	const uint8_t *at;  /* next packed key (u32 length + bytes) of a step */
	const uint8_t *end;
};

struct scan {
	struct node_core *core;
	struct conn *conn;
	uint64_t id;             /* the request's id */
	uint32_t limit;          /* pairs wanted */
	uint32_t examine;        /* keys each step examines */
	uint32_t rounds;         /* keys rounds started */
	enum scan_phase phase;
	uint32_t pending;        /* requests of the phase still out */
	bool driving;            /* drive() is on the stack */
	bool again;              /* a phase ended while driving */
	bool exhausted;          /* no key of the range after the cursor */
	bool frame_full;         /* the answer has no room for another pair */
	bool cursor_after;       /* the next round starts after the cursor key */
	bool stale;              /* ScanRequest.stale: steps and GETs are stale reads */
	int status;              /* first failure of a request, else OK */
	const char *error;
	uint32_t shards;
	struct kv_req **steps;   /* [shards]: this round's KV_SCAN steps */
	struct scan_head *heads; /* [shards]: merge positions */
	struct kv_req **pairs;   /* [limit]: GETs in key order */
	uint32_t kept;           /* pairs[0, kept): found in earlier rounds */
	uint32_t count;          /* pairs[0, count): and this round's keys */
	size_t frame_bytes;      /* frame_response_max_size() of the answer */
	uint32_t end_len;        /* 0: no upper bound */
	uint32_t cursor_len;
	uint8_t *end;            /* [max_key] */
	uint8_t *cursor;         /* [max_key] */
};

static void drive(struct scan *s);

static struct pool *pool_of(const struct scan *s)
{
	return &s->core->reactor->pool;
}

static bool below_end(const struct scan *s, const uint8_t *key, size_t len)
{
	return s->end_len == 0 || key_order_cmp(key, len, s->end, s->end_len) < 0;
}

/* Finished: nothing left in the shard, or only keys past end. */
static bool step_finished(const struct kv_req *req, void *arg)
{
	const struct scan *s = arg;
	size_t len;

	return req->done || !below_end(s, kv_answer(req, &len), req->need);
}

static void fail(struct scan *s, int status, const char *error)
{
	if (s->status != ringkv_Status_OK)
		return;
	s->status = status;
	s->error = error;
}

static void fail_oom(struct scan *s)
{
	fail(s, ringkv_Status_RESOURCE_EXHAUSTED, "out of memory for the scan");
}

/* ---- completions ------------------------------------------------------- */

static void step_done(struct node_core *c, struct kv_req *req)
{
	struct scan *s = req->ctx;

	(void)c;
	s->steps[req->part] = req;
	if (--s->pending == 0)
		drive(s);
}

/* The request may be a larger copy of the one sent (kv.c repeats a GET
 * whose value did not fit), hence the store by index. */
static void get_done(struct node_core *c, struct kv_req *req)
{
	struct scan *s = req->ctx;

	(void)c;
	s->pairs[req->part] = req;
	if (--s->pending == 0)
		drive(s);
}

/* Ends a phase's sending: its last completion may already have come. */
static void sent(struct scan *s)
{
	if (--s->pending == 0)
		s->again = true;
}

/* ---- phases ------------------------------------------------------------ */

/* One KV_SCAN step per shard from the cursor. */
static void start_keys(struct scan *s)
{
	uint32_t max_key = s->core->node->cfg.max_key;
	size_t room = (size_t)s->examine * SCAN_STEP_KEY_ROOM;

	/* The resume key, and always room for one whole key, so a step that
	 * is not done has examined at least one key. */
	if (room > SCAN_STEP_MAX_ROOM)
		room = SCAN_STEP_MAX_ROOM;
	room += (size_t)max_key + 4 + max_key;
	s->phase = SCAN_KEYS;
	s->rounds++;
	s->pending = 1;
	for (uint32_t i = 0; i < s->shards; i++) {
		struct kv_req *req = kv_req_new(s->core, s->cursor_len, (uint32_t)room);

		if (!req) {
			fail_oom(s);
			break;
		}
		req->complete = step_done;
		req->ctx = s;
		req->part = i;
		req->op = KV_SCAN;
		req->shard = i;
		req->key_len = s->cursor_len;
		if (s->cursor_len)
			memcpy(req->data, s->cursor, s->cursor_len);
		req->flags = (s->cursor_after ? KV_SCAN_AFTER : 0) | (s->stale ? KV_STALE : 0);
		req->limit = s->examine;
		s->steps[i] = req;
		s->pending++;
		kv_dispatch(s->core, req);
	}
	sent(s);
}

/* One KV_GET per key merged in this round. */
static void start_values(struct scan *s)
{
	s->phase = SCAN_VALUES;
	s->pending = 1;
	for (uint32_t i = s->kept; i < s->count; i++) {
		s->pending++;
		kv_dispatch(s->core, s->pairs[i]);
	}
	sent(s);
}

static void free_steps(struct scan *s)
{
	for (uint32_t i = 0; i < s->shards; i++) {
		if (s->steps[i])
			kv_req_free(s->core, s->steps[i]);
		s->steps[i] = NULL;
	}
}

static void set_cursor(struct scan *s, const uint8_t *key, size_t len)
{
	memcpy(s->cursor, key, len);
	s->cursor_len = (uint32_t)len;
	s->cursor_after = true;
}

/* The smallest unmerged key of any step, or -1 when none is left. */
static int smallest_head(const struct scan *s, const uint8_t **key, uint32_t *len)
{
	int best = -1;

	for (uint32_t i = 0; i < s->shards; i++) {
		const struct scan_head *h = &s->heads[i];
		uint32_t klen;

		if (h->at >= h->end)
			continue;
		memcpy(&klen, h->at, 4);
		if (best < 0 || key_order_cmp(h->at + 4, klen, *key, *len) < 0) {
			best = (int)i;
			*key = h->at + 4;
			*len = klen;
		}
	}
	return best;
}

/*
 * The steps are back: merge their keys into GETs (pairs[kept, count)),
 * move the cursor past them and free the steps.
 */
static void merge_keys(struct scan *s)
{
	uint32_t max_key = s->core->node->cfg.max_key;
	const uint8_t *bound = NULL, *last = NULL;
	uint32_t bound_len = 0, last_len = 0, want = s->limit - s->kept;
	bool all_finished, more = false;
	const uint8_t *key = NULL;
	uint32_t key_len = 0;

	for (uint32_t i = 0; i < s->shards; i++) {
		const struct kv_req *req = s->steps[i];
		const uint8_t *resume;
		size_t len;

		s->heads[i] = (struct scan_head){ NULL, NULL };
		if (!req)
			continue; /* not sent: the scan already failed */
		if (req->status != ringkv_Status_OK) {
			fail(s, req->status, req->error ? req->error : "scan step failed");
			continue;
		}
		resume = kv_answer(req, &len);
		if (req->need > max_key ||
		    (size_t)max_key + len > (size_t)req->cap - req->key_len - req->arg_len) {
			fail(s, ringkv_Status_INTERNAL, "malformed scan step");
			continue;
		}
		s->heads[i] = (struct scan_head){ resume + max_key,
						  resume + max_key + req->value_len };
	}
	if (s->status != ringkv_Status_OK)
		goto out;

	/* Keys up to the bound are complete (kv_scan_bound). */
	all_finished = !kv_scan_bound(s->steps, s->shards, step_finished, s, &bound, &bound_len);
	if (all_finished)
		bound = NULL;
	while (s->count - s->kept < want) {
		int i = smallest_head(s, &key, &key_len);
		struct kv_req *get;

		if (i < 0)
			break;
		if (!below_end(s, key, key_len) ||
		    (bound && key_order_cmp(key, key_len, bound, bound_len) > 0))
			break;
		if (key_len > max_key) {
			fail(s, ringkv_Status_INTERNAL, "key longer than the key limit");
			goto out;
		}
		get = kv_req_new(s->core, key_len, SCAN_GET_ROOM);
		if (!get) {
			fail_oom(s);
			goto out;
		}
		get->complete = get_done;
		get->ctx = s;
		get->part = s->count;
		get->op = KV_GET;
		get->flags = s->stale ? KV_STALE : 0;
		get->shard = kv_shard_of(s->core, key, key_len);
		get->key_len = key_len;
		memcpy(get->data, key, key_len);
		s->pairs[s->count++] = get;
		s->heads[i].at += 4 + key_len;
		last = key;
		last_len = key_len;
	}
	if (s->count - s->kept == want && want > 0) {
		/* Enough keys: is any candidate left behind them? */
		int i = smallest_head(s, &key, &key_len);

		more = i >= 0 && below_end(s, key, key_len) &&
		       (!bound || key_order_cmp(key, key_len, bound, bound_len) <= 0);
		s->exhausted = all_finished && !more;
		set_cursor(s, last, last_len);
	} else if (all_finished) {
		s->exhausted = true;
	} else if (s->count == s->kept && s->cursor_after &&
		   key_order_cmp(bound, bound_len, s->cursor, s->cursor_len) <= 0) {
		/* A step that is not done always examines a key past the
		 * cursor; if none did, looping would never end. */
		fail(s, ringkv_Status_INTERNAL, "scan made no progress");
	} else {
		set_cursor(s, bound, bound_len);
	}
out:
	free_steps(s);
}

/*
 * This round's GETs are back: keep the pairs still present, in key order,
 * while the answer frame has room for them.
 */
static void collect_values(struct scan *s)
{
	size_t budget = (size_t)s->core->node->limits.max_frame + FRAME_HEADER_SIZE;
	uint32_t out = s->kept;

	for (uint32_t i = s->kept; i < s->count; i++) {
		struct kv_req *req = s->pairs[i];
		size_t add;

		if (s->status != ringkv_Status_OK || s->frame_full ||
		    req->status == ringkv_Status_NOT_FOUND) {
			/* Failed, full, or deleted since the keys round. */
			kv_req_free(s->core, req);
			continue;
		}
		if (req->status != ringkv_Status_OK) {
			fail(s, req->status, req->error ? req->error : "read failed");
			kv_req_free(s->core, req);
			continue;
		}
		add = frame_pair_max_size(req->key_len, req->value_len);
		/* The first pair goes in whatever its size, so the client
		 * always advances (max_frame exceeds max_key + max_value). */
		if (out > 0 && s->frame_bytes + add > budget) {
			s->frame_full = true;
			kv_req_free(s->core, req);
			continue;
		}
		s->frame_bytes += add;
		s->pairs[out++] = req;
	}
	s->kept = s->count = out;
}

/* Encodes the answer, frees the scan and releases its connection slot. */
static void finish(struct scan *s)
{
	struct conn *conn = s->conn;
	struct frame_response resp = { .id = s->id, .status = s->status, .error = s->error };
	struct frame_kv *kvs = NULL;

	assert(s->pending == 0);
	if (s->status == ringkv_Status_OK && s->kept > 0) {
		kvs = pool_alloc(pool_of(s), (size_t)s->kept * sizeof *kvs);
		if (!kvs) {
			resp.status = ringkv_Status_RESOURCE_EXHAUSTED;
			resp.error = "out of memory for the scan answer";
		}
	}
	if (kvs) {
		for (uint32_t i = 0; i < s->kept; i++) {
			const struct kv_req *req = s->pairs[i];
			size_t len;
			const uint8_t *value = kv_answer(req, &len);

			kvs[i].key = (struct frame_slice){ req->data, req->key_len };
			kvs[i].value = (struct frame_slice){ value, (uint32_t)len };
		}
		resp.pairs = kvs;
		resp.pair_count = s->kept;
	}
	{
		size_t need = frame_response_max_size(&resp);
		uint8_t *out = conn_out_reserve(conn, need);

		if (out) {
			int n = frame_encode_response(&resp, out, need);

			if (n < 0)
				panic("frame_encode_response overflowed its own bound");
			conn_out_commit(conn, (size_t)n);
		}
	}
	if (kvs)
		pool_free(pool_of(s), kvs);
	for (uint32_t i = 0; i < s->count; i++)
		kv_req_free(s->core, s->pairs[i]);
	free_steps(s);
	pool_free(pool_of(s), s);
	conn->reads_inflight--;
	conn_request_done(conn);
}

/*
 * Moves on after a phase ended (or at the start). Returns false once the
 * scan has answered and is freed.
 */
static bool advance(struct scan *s)
{
	bool gone = s->conn->dead || s->conn->fd_closed;

	switch (s->phase) {
	case SCAN_START:
		if (!below_end(s, s->cursor, s->cursor_len)) {
			s->exhausted = true;
			break;
		}
		start_keys(s);
		return true;
	case SCAN_KEYS:
		merge_keys(s);
		if (s->status != ringkv_Status_OK || gone)
			break;
		if (s->count > s->kept) {
			start_values(s);
			return true;
		}
		if (s->exhausted)
			break;
		/* Only deleted keys this round: an answer without pairs would
		 * read as the end, so go on (see scan.h). */
		start_keys(s);
		return true;
	case SCAN_VALUES:
		collect_values(s);
		if (s->status != ringkv_Status_OK || gone || s->frame_full ||
		    s->kept == s->limit || s->exhausted)
			break;
		if (s->rounds >= SCAN_MAX_ROUNDS && s->kept > 0)
			break;
		start_keys(s);
		return true;
	}
	finish(s);
	return false;
}

static void drive(struct scan *s)
{
	if (s->driving) {
		s->again = true;
		return;
	}
	s->driving = true;
	do {
		s->again = false;
		if (!advance(s))
			return; /* freed */
	} while (s->again);
	s->driving = false;
}

void scan_submit(struct node_core *c, struct conn *conn, const struct frame_request *req)
{
	uint32_t max_key = c->node->cfg.max_key;
	uint32_t shards = c->node->shards;
	size_t size = sizeof(struct scan);
	struct scan *s;
	uint8_t *p;

	assert(req->op == FRAME_OP_SCAN);
	assert(req->limit > 0 && req->limit <= FRAME_SCAN_MAX_LIMIT);
	/* The decoder holds the client's bounds to --max-key, but a bound
	 * may come from elsewhere (a user's key prefix cuts the range): one
	 * the cursor buffers cannot take is an error, never an overflow. */
	if (req->key.len > max_key || req->end.len > max_key) {
		conn_reply(conn, req->id, ringkv_Status_INVALID_ARGUMENT, NULL, 0,
			   "scan bound longer than --max-key");
		return;
	}
	size += (size_t)shards * (sizeof(struct kv_req *) + sizeof(struct scan_head));
	size += (size_t)req->limit * sizeof(struct kv_req *);
	size += 2 * (size_t)max_key;
	s = pool_alloc(&c->reactor->pool, size);
	if (!s) {
		conn_reply(conn, req->id, ringkv_Status_RESOURCE_EXHAUSTED, NULL, 0,
			   "out of memory for the scan");
		return;
	}
	memset(s, 0, sizeof *s);
	p = (uint8_t *)(s + 1);
	s->steps = (struct kv_req **)p;
	p += (size_t)shards * sizeof(struct kv_req *);
	s->pairs = (struct kv_req **)p;
	p += (size_t)req->limit * sizeof(struct kv_req *);
	s->heads = (struct scan_head *)p;
	p += (size_t)shards * sizeof(struct scan_head);
	s->end = p;
	s->cursor = p + max_key;
	memset(s->steps, 0, (size_t)shards * sizeof(struct kv_req *));

	s->core = c;
	s->conn = conn;
	s->id = req->id;
	s->limit = req->limit;
	s->examine = req->limit < SCAN_STEP_MIN_EXAMINE ? SCAN_STEP_MIN_EXAMINE : req->limit;
	s->shards = shards;
	s->status = ringkv_Status_OK;
	s->phase = SCAN_START;
	s->frame_bytes = frame_response_max_size(&(struct frame_response){ 0 });
	if (req->end.len)
		memcpy(s->end, req->end.data, req->end.len);
	s->end_len = req->end.len;
	if (req->key.len)
		memcpy(s->cursor, req->key.data, req->key.len);
	s->cursor_len = req->key.len;
	s->cursor_after = false; /* the start key is inclusive */
	s->stale = req->stale;
	conn->inflight++;
	conn->reads_inflight++;
	drive(s);
}
