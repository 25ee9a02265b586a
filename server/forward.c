/*
 * Forwarding requests to the leader's node; see server/forward.h and
 * docs/cluster/forwarding.md.
 *
 * Ownership: a forwarded request (struct kv_req) is held by the core that
 * forwarded it (its slot) until the answer, the timeout or the stop; then
 * kv_answer_home gives it back to its origin core, which alone frees it.
 * A slot is touched only by its core. An answer frame that lands on another
 * core is copied into a carrier block of that core's pool, crosses over,
 * and goes back to be freed where it was allocated.
 */
#include "server/forward.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/leaders.h"
#include "cluster/map.h"
#include "cluster/peer_msg.h"
#include "cluster/replica.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/pool.h"
#include "ringkv.pb.h"
#include "server/forward_wire.h"
#include "server/kv.h"
#include "server/node.h"

/* forward id: core (16 bits) | generation (28 bits) | slot (20 bits). */
#define ID_SLOT_BITS 20
#define ID_GEN_BITS 28
#define ID_GEN_MASK ((1u << ID_GEN_BITS) - 1)
#define NO_SLOT UINT32_MAX
/* After the stop, forwards in flight wait at most this for their answers. */
#define STOP_WAIT_US (1000u * 1000u)
/* While forwards are in flight, how often the core looks for a destination
 * whose connection went down (their forwards are answered then, not at
 * the timeout). */
#define WATCH_US (10u * 1000u)
/* A request no route can take yet waits for one, asking again this often
 * (see hold()). */
#define HOLD_RETRY_US (10u * 1000u)
/* Of the slots, at most this many hold requests waiting for a route (those
 * forwarded in from other nodes included), so that the core's own forwards
 * always find slots. */
#define HOLD_MAX (FORWARD_MAX_INFLIGHT / 4)

_Static_assert(FORWARD_MAX_INFLIGHT <= (1u << ID_SLOT_BITS), "slot index fits the id");

struct fwd_slot {
	struct timer timer;
	struct forward_core *fc;
	struct kv_req *req;       /* NULL: free */
	uint64_t to;              /* the node it went to */
	uint64_t deadline_us;
	uint32_t gen;
	uint32_t next_free;
};

struct forward_core {
	struct node_core *core;
	struct timer watch;       /* armed while forwards are in flight */
	struct fwd_slot *slots;   /* [FORWARD_MAX_INFLIGHT] */
	uint32_t free_head;
	uint32_t inflight;
	uint32_t inbound;         /* forwarded in, not yet answered */
	uint64_t *leader;         /* [shards]: leader learned from answers, 0 */
	uint8_t *guess;           /* [shards]: which replica to try next */
	struct peer_msg_buf body; /* encoding scratch, grown to its peak */
	struct peer_msg_buf frame;
	struct peer_msg_limits limits;
	uint64_t timeout_us;
	uint64_t hold_us;         /* longest wait for a route: an election timeout */
	uint32_t holding;         /* slots holding a request (hold()) */
	bool stopping;
	struct forward_stats stats;
};

/* An answer crossing from the core that received it to the slot's core. */
struct carrier {
	struct reactor_msg msg;
	unsigned home;            /* the core whose pool it came from */
	uint64_t id;
	uint32_t len;
	uint8_t bytes[];
};

static struct node_core *core_of(struct reactor *r)
{
	return r->user;
}

static bool op_is_write(uint8_t op)
{
	return kv_op_is_write(op);
}

static void refuse(struct node_core *c, struct kv_req *req, int status, const char *text)
{
	req->status = status;
	req->error = text;
	req->value_len = 0;
	c->forward->stats.refused++;
	kv_answer_home(c, req);
}

/* ---- answers ---------------------------------------------------------------- */

static const char *status_text(int status)
{
	switch (status) {
	case ringkv_Status_NOT_LEADER:
		return "the leader's node answered: not the leader; the request was not applied";
	case ringkv_Status_UNAVAILABLE:
		return "the leader's node answered: unavailable; the request was not applied";
	case ringkv_Status_UNKNOWN:
		return "outcome unknown: it may or may not have been applied";
	case ringkv_Status_RESOURCE_EXHAUSTED:
		return "the leader's node is out of resources; the request was not applied";
	default:
		return "the leader's node answered with an error";
	}
}

/* Puts a decoded answer into the origin's request. */
static void apply_reply(struct node_core *c, struct kv_req *req, const struct fwd_reply *r)
{
	size_t used = (size_t)req->key_len + req->arg_len;
	size_t room = req->cap - used;
	uint8_t *out = req->data + used;
	uint32_t max_key = c->node->cfg.max_key;

	req->status = r->status;
	req->result = r->result;
	req->existed = r->existed;
	req->applied = r->applied;
	req->done = r->done;
	req->integer = r->integer;
	req->leader_hint = r->leader_hint;
	req->value_len = 0;
	req->need = 0;
	req->error = NULL;
	if (req->op == KV_SCAN && r->status == ringkv_Status_OK) {
		if (r->resume.len > max_key || room < max_key || r->value.len > room - max_key) {
			req->status = ringkv_Status_INTERNAL;
			req->error = "a forwarded SCAN step's answer does not fit "
				     "(do the nodes run with different --max-key?)";
			return;
		}
		memcpy(out, r->resume.data, r->resume.len);
		req->need = r->resume.len;
		memcpy(out + max_key, r->value.data, r->value.len);
		req->value_len = r->value.len;
		return;
	}
	if (r->value.len) {
		if (r->value.len <= room) {
			memcpy(out, r->value.data, r->value.len);
			req->value_len = r->value.len;
		} else if (req->op == KV_GET) {
			/* The origin repeats the read with room for it. */
			req->status = KV_STATUS_NEED_ROOM;
			req->need = r->value.len;
		} else {
			/* A previous value larger than the room: the rare
			 * malloc'd path, as in kv.c's write_done. */
			req->big = malloc(r->value.len);
			if (!req->big) {
				req->status = ringkv_Status_RESOURCE_EXHAUSTED;
				req->error = "out of memory for the previous value";
				return;
			}
			memcpy(req->big, r->value.data, r->value.len);
			req->value_len = r->value.len;
		}
	}
	if (r->status != ringkv_Status_OK && r->status != ringkv_Status_NOT_FOUND) {
		/* The text goes into the answer room when it fits (it is
		 * free: error answers carry no value), else a generic one. */
		if (req->value_len == 0 && r->error.len > 0 && r->error.len < room &&
		    req->status != KV_STATUS_NEED_ROOM) {
			memcpy(out, r->error.data, r->error.len);
			out[r->error.len] = '\0';
			req->error = (const char *)out;
		} else {
			req->error = status_text(r->status);
		}
	}
}

/* The first free slot, for `req` going to node `to` (0: held, not sent).
 * Precondition: one is free. A new generation: no late answer for its
 * last use can take it for its own. */
static struct fwd_slot *slot_take(struct forward_core *fc, struct kv_req *req, uint64_t to)
{
	struct fwd_slot *s;

	assert(fc->free_head != NO_SLOT);
	s = &fc->slots[fc->free_head];
	fc->free_head = s->next_free;
	fc->inflight++;
	s->gen = (s->gen + 1) & ID_GEN_MASK;
	s->req = req;
	s->to = to;
	return s;
}

static void slot_release(struct forward_core *fc, struct fwd_slot *s)
{
	uint32_t idx = (uint32_t)(s - fc->slots);

	reactor_timer_cancel(fc->core->reactor, &s->timer);
	s->req = NULL;
	s->next_free = fc->free_head;
	fc->free_head = idx;
	fc->inflight--;
}

/* The slot's core: an answer for forward `id` (bytes untrusted). */
static void reply_local(struct node_core *c, uint64_t from, uint64_t id, const uint8_t *bytes,
			size_t len)
{
	struct forward_core *fc = c->forward;
	uint32_t idx = (uint32_t)(id & ((1u << ID_SLOT_BITS) - 1));
	uint32_t gen = (uint32_t)(id >> ID_SLOT_BITS) & ID_GEN_MASK;
	struct fwd_slot *s;
	struct kv_req *req;
	struct fwd_reply r;

	if (idx >= FORWARD_MAX_INFLIGHT) {
		fc->stats.late++;
		return;
	}
	s = &fc->slots[idx];
	if (!s->req || s->gen != gen || s->to != from) {
		fc->stats.late++; /* timed out already, or not ours */
		return;
	}
	req = s->req;
	slot_release(fc, s);
	fc->stats.answered++;
	if (fwd_reply_decode(bytes, len, &r) != 0) {
		log_warn("forward: malformed answer from node %" PRIu64, from);
		req->status = op_is_write(req->op) ? ringkv_Status_UNKNOWN
						   : ringkv_Status_UNAVAILABLE;
		req->error = op_is_write(req->op) ? "outcome unknown: the leader's node sent an "
						    "unreadable answer"
						  : "the leader's node sent an unreadable answer";
		req->value_len = 0;
	} else {
		apply_reply(c, req, &r);
		if (r.leader_hint && req->shard < c->node->shards)
			fc->leader[req->shard] = r.leader_hint;
	}
	kv_answer_home(c, req);
}

static void carrier_free(struct reactor *r, struct reactor_msg *m)
{
	pool_free(&r->pool, m);
}

static void carrier_in(struct reactor *r, struct reactor_msg *m)
{
	struct carrier *k = (struct carrier *)m;
	uint64_t from;

	memcpy(&from, k->bytes, sizeof from);
	reply_local(core_of(r), from, k->id, k->bytes + sizeof from, k->len);
	k->msg.handle = carrier_free;
	reactor_send(r, k->home, &k->msg);
}

static void on_reply(struct node_core *c, uint64_t from, const struct peer_msg_forward_reply *fr)
{
	unsigned core = (unsigned)(fr->forward_id >> (ID_SLOT_BITS + ID_GEN_BITS));
	struct carrier *k;

	if (core == c->reactor->id) {
		reply_local(c, from, fr->forward_id, fr->response.data, fr->response.len);
		return;
	}
	if (core >= c->node->cores) {
		c->forward->stats.late++;
		return;
	}
	/* Without memory the forward times out: its client still gets an
	 * answer. */
	k = pool_alloc_large(&c->reactor->pool, sizeof *k + sizeof from + fr->response.len);
	if (!k) {
		c->forward->stats.late++;
		return;
	}
	k->msg.handle = carrier_in;
	k->home = c->reactor->id;
	k->id = fr->forward_id;
	k->len = fr->response.len;
	memcpy(k->bytes, &from, sizeof from);
	memcpy(k->bytes + sizeof from, fr->response.data, fr->response.len);
	reactor_send(c->reactor, core, &k->msg);
}

/* The forward in `s` gets no answer: a write's outcome is unknown (the
 * frame may have been delivered), a read may be retried. */
static void give_up(struct fwd_slot *s, const char *write_why, const char *read_why)
{
	struct forward_core *fc = s->fc;
	struct kv_req *req = s->req;

	slot_release(fc, s);
	if (req->shard < fc->core->node->shards) {
		/* Whoever we thought led may be gone: try another replica. */
		fc->leader[req->shard] = 0;
		fc->guess[req->shard]++;
	}
	req->value_len = 0;
	if (op_is_write(req->op)) {
		req->status = ringkv_Status_UNKNOWN;
		req->error = write_why;
	} else {
		req->status = ringkv_Status_UNAVAILABLE;
		req->error = read_why;
	}
	kv_answer_home(fc->core, req);
}

static void timed_out(struct timer *t, void *arg)
{
	struct fwd_slot *s = arg;
	struct forward_core *fc = s->fc;

	(void)t;
	fc->stats.timeouts++;
	give_up(s, fc->stopping ? "outcome unknown: the node stopped before the leader's node "
				  "answered; the write may or may not have been applied"
				: "outcome unknown: the leader's node did not answer in time; "
				  "the write may or may not have been applied",
		"the leader's node did not answer in time");
}

/*
 * Forwards to a node whose connection went down (killed, restarted) are
 * answered now rather than at their timeout (seconds): the transport has
 * no "peer down" callback, so the core looks every WATCH_US while any
 * forward is in flight. Only destinations seen down are scanned for.
 */
static void watch_fired(struct timer *t, void *arg)
{
	struct forward_core *fc = arg;
	struct node_core *c = fc->core;
	const struct cluster_map *map = cluster_core_map(c->cluster);
	uint64_t self = cluster_core_self(c->cluster);
	uint64_t down[CLUSTER_MAP_MAX_NODES];
	unsigned ndown = 0;

	(void)t;
	for (unsigned i = 0; i < map->node_count; i++)
		if (map->nodes[i].id != self &&
		    !cluster_core_peer_connected(c->cluster, map->nodes[i].id))
			down[ndown++] = map->nodes[i].id;
	for (uint32_t i = 0; ndown > 0 && fc->inflight > 0 && i < FORWARD_MAX_INFLIGHT; i++) {
		struct fwd_slot *s = &fc->slots[i];

		if (!s->req)
			continue;
		for (unsigned d = 0; d < ndown; d++)
			if (s->to == down[d]) {
				fc->stats.lost++;
				give_up(s, "outcome unknown: the connection to the leader's node "
					   "went down before it answered; the write may or may not "
					   "have been applied",
					"the connection to the leader's node went down before it "
					"answered");
				break;
			}
	}
	if (fc->inflight > 0)
		reactor_timer_arm(c->reactor, &fc->watch, WATCH_US, watch_fired, fc);
}

/* ---- sending ---------------------------------------------------------------- */

/* The frame encoded in fc->frame, to node `to` (control class). */
static int send_frame(struct node_core *c, uint64_t to)
{
	struct forward_core *fc = c->forward;

	return cluster_core_send_control(c->cluster, to, fc->frame.data + PEER_MSG_HEADER_SIZE,
					 fc->frame.len - PEER_MSG_HEADER_SIZE);
}

static void send_forward(struct node_core *c, struct kv_req *req, uint64_t to)
{
	struct forward_core *fc = c->forward;
	size_t used = (size_t)req->key_len + req->arg_len;
	struct fwd_request fr = {
		.op = req->op,
		.flags = req->flags,
		.hops = (uint8_t)(req->hops + 1),
		.shard = req->shard,
		.integer = req->integer,
		.limit = req->limit,
		.room = (uint32_t)(req->cap - used),
		.key_len = req->key_len,
		.arg_len = req->arg_len,
		.value_len = op_is_write(req->op) ? req->value_len : 0,
		.data = req->data,
	};
	struct peer_msg_forward f;
	struct fwd_slot *s;
	uint64_t timeout;
	int rv;

	if (fc->free_head == NO_SLOT) {
		refuse(c, req, ringkv_Status_RESOURCE_EXHAUSTED,
		       "too many requests forwarded to other nodes from this core; "
		       "not applied, retry later");
		return;
	}
	s = slot_take(fc, req, to);
	fc->body.len = 0;
	fc->frame.len = 0;
	f.forward_id = (uint64_t)c->reactor->id << (ID_SLOT_BITS + ID_GEN_BITS) |
		       (uint64_t)s->gen << ID_SLOT_BITS | (uint32_t)(s - fc->slots);
	f.group = req->shard;
	rv = fwd_request_encode(&fc->body, &fr);
	if (rv == 0) {
		f.request.data = fc->body.data;
		f.request.len = (uint32_t)fc->body.len;
		rv = peer_msg_encode_forward(&fc->frame, &fc->limits, &f);
	}
	if (rv == 0)
		rv = send_frame(c, to);
	if (rv != 0) {
		const char *why = rv == -ENOBUFS ? "the queue to the leader's node is full; "
						   "not applied, retry later"
				  : rv == -ESHUTDOWN ? "the node is stopping; not applied"
				  : rv == RKV_ETOOLARGE ? "the request is too large to forward"
				  : "the leader's node cannot be reached; not applied";

		slot_release(fc, s);
		refuse(c, req, ringkv_Status_UNAVAILABLE, why);
		return;
	}
	/* Inner hops wait less, so the hop nearest the trouble answers. */
	timeout = fc->timeout_us * (FORWARD_MAX_HOPS + 1 - req->hops) / (FORWARD_MAX_HOPS + 1);
	if (fc->stopping && timeout > STOP_WAIT_US)
		timeout = STOP_WAIT_US;
	s->deadline_us = c->reactor->now_us + timeout;
	reactor_timer_arm(c->reactor, &s->timer, timeout, timed_out, s);
	if (!timer_armed(&fc->watch))
		reactor_timer_arm(c->reactor, &fc->watch, WATCH_US, watch_fired, fc);
	fc->stats.sent++;
}

/*
 * A node holding a replica of `shard`, for a request this node cannot
 * serve: any holder knows its leader (or learns it first). Starts at the
 * shard's rotating guess (moved on by timeouts) and prefers a holder this
 * core is connected to. 0 when there is none but this node.
 */
static uint64_t pick_holder(struct node_core *c, uint32_t shard, uint64_t self)
{
	struct forward_core *fc = c->forward;
	uint64_t ids[CLUSTER_MAP_MAX_NODES], fallback = 0;
	unsigned n = cluster_map_replica_ids(cluster_core_map(c->cluster), shard, ids);

	for (unsigned k = 0; k < n; k++) {
		uint64_t id = ids[(fc->guess[shard] + k) % n];

		if (id == self)
			continue;
		if (cluster_core_peer_connected(c->cluster, id))
			return id;
		if (!fallback)
			fallback = id;
	}
	return fallback;
}

static void held_retry(struct timer *t, void *arg)
{
	struct fwd_slot *s = arg;
	struct forward_core *fc = s->fc;
	struct kv_req *req = s->req;

	(void)t;
	slot_release(fc, s);
	fc->holding--;
	kv_route_again(fc->core, req);
}

/*
 * A request that no route can take yet -- no leader known (a first
 * election, or one replacing a dead leader), or the leader's node not
 * connected from this core (its connection still being made) -- waits in
 * a slot and is routed again every HOLD_RETRY_US, for at most an election
 * timeout from when it was first held. Nothing was sent, so refusing it
 * after that stays safe to retry. False: not held (stopping, no slot free,
 * HOLD_MAX held already, or its time is up); the caller refuses it.
 */
static bool hold(struct node_core *c, struct kv_req *req)
{
	struct forward_core *fc = c->forward;
	uint64_t now = c->reactor->now_us;
	struct fwd_slot *s;

	if (fc->stopping || fc->free_head == NO_SLOT || fc->holding >= HOLD_MAX)
		return false;
	if (!req->hold_until_us)
		req->hold_until_us = now + fc->hold_us;
	if (now + HOLD_RETRY_US > req->hold_until_us)
		return false;
	s = slot_take(fc, req, 0);
	fc->holding++;
	s->deadline_us = req->hold_until_us;
	reactor_timer_arm(c->reactor, &s->timer, HOLD_RETRY_US, held_retry, s);
	fc->stats.held++;
	return true;
}

static uint64_t announced_leader(const struct node_core *c, uint32_t shard)
{
	uint64_t leader, term;

	cluster_leaders_get(cluster_core_leaders(c->cluster), shard, c->reactor->now_us, &leader,
			    &term);
	return leader;
}

void forward_route(struct node_core *c, struct kv_req *req, struct replica *rep)
{
	struct forward_core *fc = c->forward;
	uint64_t self = cluster_core_self(c->cluster);
	uint64_t to;

	/* A replica removed from its group (a move) knows no leader any
	 * more: routed as by a node without one. */
	if (rep && replica_retired(rep))
		rep = NULL;
	if (rep) {
		to = replica_leader(rep);
	} else {
		/* The leader its announcements name (cluster/leaders.h), else
		 * the last hint learnt. */
		to = announced_leader(c, req->shard);
		if (!to)
			to = fc->leader[req->shard];
		if (to && !(req->flags & KV_NO_FORWARD) &&
		    !cluster_core_peer_connected(c->cluster, to))
			to = 0; /* the leader we learned is gone: ask a holder */
		if (!to && !(req->flags & KV_NO_FORWARD))
			to = pick_holder(c, req->shard, self);
	}
	if (to == self)
		to = 0;
	req->leader_hint = to;
	if (req->flags & KV_NO_FORWARD) {
		refuse(c, req, ringkv_Status_NOT_LEADER,
		       rep ? "this node does not lead the key's shard; not applied"
			   : "this node holds no replica of the key's shard; not applied");
		return;
	}
	if (!to) {
		if (hold(c, req))
			return;
		refuse(c, req, ringkv_Status_UNAVAILABLE,
		       "no leader known for the key's shard (an election may be under way); "
		       "not applied, retry shortly");
		return;
	}
	if (req->hops >= FORWARD_MAX_HOPS) {
		refuse(c, req, ringkv_Status_UNAVAILABLE,
		       "no leader known: the request was forwarded as often as allowed without "
		       "reaching the shard's leader; not applied, retry shortly");
		return;
	}
	if (fc->stopping) {
		refuse(c, req, ringkv_Status_UNAVAILABLE, "the node is stopping; not applied");
		return;
	}
	if (!cluster_core_peer_connected(c->cluster, to)) {
		/* Not sent: a frame queued for a peer that is down could be
		 * delivered much later, and its write's outcome would be
		 * unknown; waiting a little for the connection (or for another
		 * leader), then refusing, is safe to retry. */
		if (hold(c, req))
			return;
		refuse(c, req, ringkv_Status_UNAVAILABLE,
		       "the leader's node is not reachable from this node (down, or an "
		       "election is under way); not applied, retry shortly");
		return;
	}
	send_forward(c, req, to);
}

/* ---- requests forwarded in -------------------------------------------------- */

static void send_reply(struct node_core *c, uint64_t to, uint64_t id, const struct fwd_reply *r)
{
	struct forward_core *fc = c->forward;
	struct peer_msg_forward_reply fr;
	int rv;

	fc->body.len = 0;
	fc->frame.len = 0;
	rv = fwd_reply_encode(&fc->body, r);
	if (rv == 0) {
		fr.forward_id = id;
		fr.response.data = fc->body.data;
		fr.response.len = (uint32_t)fc->body.len;
		rv = peer_msg_encode_forward_reply(&fc->frame, &fc->limits, &fr);
	}
	if (rv == 0)
		rv = send_frame(c, to);
	if (rv != 0)
		fc->stats.reply_errors++; /* the origin's timeout answers */
}

static void refuse_inbound(struct node_core *c, uint64_t from, uint64_t id, int status,
			   const char *text)
{
	struct fwd_reply r = {
		.status = status,
		.resume = { (const uint8_t *)"", 0 },
		.value = { (const uint8_t *)"", 0 },
		.error = { (const uint8_t *)text, (uint32_t)strlen(text) },
	};

	c->forward->stats.inbound_refused++;
	send_reply(c, from, id, &r);
}

/* Origin side of a request forwarded in: answer the node it came from. */
static void inbound_complete(struct node_core *c, struct kv_req *req)
{
	struct fwd_reply r = {
		.status = req->status,
		.result = req->result,
		.existed = req->existed,
		.applied = req->applied,
		.done = req->done,
		.integer = req->integer,
		.leader_hint = req->leader_hint,
		.resume = { (const uint8_t *)"", 0 },
		.value = { (const uint8_t *)"", 0 },
		.error = { (const uint8_t *)"", 0 },
	};

	if (req->op == KV_SCAN && req->status == ringkv_Status_OK) {
		const uint8_t *out = req->data + req->key_len + req->arg_len;

		r.resume.data = out;
		r.resume.len = req->need;
		r.value.data = out + c->node->cfg.max_key;
		r.value.len = req->value_len;
	} else if (req->value_len) {
		size_t len;

		r.value.data = kv_answer(req, &len);
		r.value.len = (uint32_t)len;
	}
	if (req->error && req->status != ringkv_Status_OK) {
		r.error.data = (const uint8_t *)req->error;
		r.error.len = (uint32_t)strlen(req->error);
	}
	send_reply(c, req->reply_to, req->id, &r);
	c->forward->inbound--;
	kv_req_free(c, req);
}

/* The deadline and flags of a forwarded expiry write are ones its command
 * accepts (shard/command.h), so a bad peer cannot put a refused entry in
 * the log. */
static bool forward_expiry_ok(const struct fwd_request *fr)
{
	if (fr->op < KV_PUT_AT || fr->op > KV_EXPIRE_DELETE)
		return true;
	if (fr->op == KV_PERSIST)
		return true;
	if (fr->integer < 0 || (fr->op != KV_PUT_AT && fr->integer == 0))
		return false;
	if (fr->op == KV_EXPIRE_DELETE)
		return true;
	return command_flags_valid(fr->op == KV_PUT_AT ? COMMAND_PUT_AT : COMMAND_EXPIRE_AT,
				   fr->limit, (uint64_t)fr->integer);
}

static void on_forward(struct node_core *c, uint64_t from, const struct peer_msg_forward *f)
{
	struct forward_core *fc = c->forward;
	const struct config *cfg = &c->node->cfg;
	uint32_t known = KV_WANT_PRIOR | KV_SCAN_AFTER | KV_STALE | KV_NO_FORWARD;
	uint64_t max_room = (uint64_t)cfg->max_value + 2ull * cfg->max_key + 4 + (1u << 20);
	struct fwd_request fr;
	struct kv_req *req;
	uint32_t room;

	if (fwd_request_decode(f->request.data, f->request.len, &fr) != 0 ||
	    (fr.op > KV_SCAN && fr.op != KV_COUNT && fr.op != KV_FLUSH &&
	     fr.op != KV_SETRANGE && fr.op != KV_SETBIT && fr.op != KV_INCRBYFLOAT &&
	     (fr.op < KV_MSETNX || fr.op > KV_COPY_REPLACE) &&
	     (fr.op < KV_PUT_AT || fr.op > KV_EXPIRE_DELETE)) ||
	    !forward_expiry_ok(&fr) ||
	    (fr.op == KV_SETBIT && (fr.value_len != 1 || fr.data[fr.key_len + fr.arg_len] > 1)) ||
	    ((fr.op == KV_SETRANGE || fr.op == KV_SETBIT) && fr.integer < 0) ||
	    (fr.op == KV_FLUSH && fr.key_len != 0) || (fr.flags & ~known) != 0 ||
	    fr.shard != f->group ||
	    fr.shard >= c->node->shards || fr.key_len > cfg->max_key ||
	    fr.arg_len > cfg->max_key || fr.value_len > cfg->max_value || fr.room > max_room ||
	    fr.hops == 0 || fr.hops > FORWARD_MAX_HOPS ||
	    (fr.op == KV_SCAN && fr.room < 2u * cfg->max_key + 4)) {
		log_debug("forward: malformed request from node %" PRIu64, from);
		refuse_inbound(c, from, f->forward_id, ringkv_Status_INVALID_ARGUMENT,
			       "malformed forwarded request");
		return;
	}
	if (fc->inbound >= FORWARD_MAX_INBOUND) {
		refuse_inbound(c, from, f->forward_id, ringkv_Status_RESOURCE_EXHAUSTED,
			       "too many forwarded requests on the leader's node; not applied");
		return;
	}
	room = fr.room > fr.value_len ? fr.room : fr.value_len;
	req = kv_req_new(c, fr.key_len, fr.arg_len + room);
	if (!req) {
		refuse_inbound(c, from, f->forward_id, ringkv_Status_RESOURCE_EXHAUSTED,
			       "out of memory on the leader's node; not applied");
		return;
	}
	req->complete = inbound_complete;
	req->id = f->forward_id;
	req->reply_to = from;
	req->shard = fr.shard;
	req->op = fr.op;
	req->flags = fr.flags;
	req->hops = fr.hops;
	req->integer = fr.integer;
	req->limit = fr.limit;
	req->key_len = fr.key_len;
	req->arg_len = fr.arg_len;
	req->value_len = fr.value_len;
	memcpy(req->data, fr.data, (size_t)fr.key_len + fr.arg_len + fr.value_len);
	fc->inbound++;
	fc->stats.inbound++;
	kv_dispatch(c, req);
}

static void on_frame(void *arg, uint64_t from, const struct peer_msg_frame *f)
{
	struct node_core *c = arg;

	if (f->kind == PEER_MSG_FORWARD)
		on_forward(c, from, &f->forward);
	else if (f->kind == PEER_MSG_FORWARD_REPLY)
		on_reply(c, from, &f->forward_reply);
}

/* ---- lifecycle -------------------------------------------------------------- */

int forward_core_start(struct node_core *c, uint32_t timeout_ms)
{
	struct forward_core *fc = calloc(1, sizeof *fc);

	if (!fc)
		return -ENOMEM;
	fc->core = c;
	fc->slots = calloc(FORWARD_MAX_INFLIGHT, sizeof *fc->slots);
	fc->leader = calloc(c->node->shards, sizeof *fc->leader);
	fc->guess = calloc(c->node->shards, sizeof *fc->guess);
	if (!fc->slots || !fc->leader || !fc->guess) {
		free(fc->slots);
		free(fc->leader);
		free(fc->guess);
		free(fc);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < FORWARD_MAX_INFLIGHT; i++) {
		fc->slots[i].fc = fc;
		fc->slots[i].next_free = i + 1 < FORWARD_MAX_INFLIGHT ? i + 1 : NO_SLOT;
	}
	fc->free_head = 0;
	peer_msg_buf_init(&fc->body);
	peer_msg_buf_init(&fc->frame);
	peer_msg_limits_default(&fc->limits);
	fc->timeout_us = (uint64_t)timeout_ms * 1000;
	fc->hold_us = (uint64_t)cluster_node_election_timeout_ms(c->node->cluster) * 1000;
	c->forward = fc;
	cluster_core_set_frame_handler(c->cluster, on_frame, c);
	return 0;
}

void forward_core_stop(struct node_core *c)
{
	struct forward_core *fc = c->forward;
	uint64_t limit;

	if (!fc)
		return;
	fc->stopping = true;
	limit = c->reactor->now_us + STOP_WAIT_US;
	for (uint32_t i = 0; i < FORWARD_MAX_INFLIGHT; i++) {
		struct fwd_slot *s = &fc->slots[i];

		/* A held request (to 0: nothing sent) is refused at its next
		 * try, as not applied. */
		if (s->req && s->to && s->deadline_us > limit) {
			s->deadline_us = limit;
			reactor_timer_arm(c->reactor, &s->timer, STOP_WAIT_US, timed_out, s);
		}
	}
}

void forward_core_finish(struct node_core *c)
{
	struct forward_core *fc = c->forward;

	if (!fc)
		return;
	if (c->cluster)
		cluster_core_set_frame_handler(c->cluster, NULL, NULL);
	for (uint32_t i = 0; i < FORWARD_MAX_INFLIGHT; i++)
		reactor_timer_cancel(c->reactor, &fc->slots[i].timer);
	reactor_timer_cancel(c->reactor, &fc->watch);
	peer_msg_buf_free(&fc->body);
	peer_msg_buf_free(&fc->frame);
	free(fc->slots);
	free(fc->leader);
	free(fc->guess);
	free(fc);
	c->forward = NULL;
}

void forward_core_stats(const struct node_core *c, struct forward_stats *out)
{
	if (c->forward)
		*out = c->forward->stats;
	else
		memset(out, 0, sizeof *out);
}
