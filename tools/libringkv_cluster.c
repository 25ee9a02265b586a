/*
 * libringkv: the cluster map and status requests, and routing by the map
 * (see libringkv.h, "the cluster").
 *
 * The router keeps one map and one connection per node (index of the map's
 * node list), opened when first used. A request goes to the leader the map
 * names (the shard's first replica when none is known), marked no_forward.
 * Its answer decides: a status other than NOT_LEADER and UNAVAILABLE is
 * final; NOT_LEADER moves the shard's leader to the hint (if any) and
 * refreshes the map; UNAVAILABLE (leadership moving) and transport failures
 * (connection closed or refused: the node is skipped for a second)
 * wait a little and try again, on another replica for a node that is down.
 * Attempts are bounded by RKV_ROUTER_ATTEMPTS, and each call by the timeout.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/errors.h"
#include "proto/frame.h"
#include "proto/frame_move.h"
#include "shard/route.h"
#include "tools/libringkv.h"
#include "tools/libringkv_private.h"

/* ---- the map and the status ----------------------------------------------- */

static void copy_text(char *dst, size_t cap, struct frame_slice s)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;

	memcpy(dst, s.data, n);
	dst[n] = '\0';
}

/* Grows an array of `size`-byte items to hold one more; 0 or -ENOMEM. */
static int grow(void **items, size_t count, size_t *cap, size_t size)
{
	void *p;
	size_t n;

	if (count < *cap)
		return 0;
	n = *cap ? 2 * *cap : 16;
	p = realloc(*items, n * size);
	if (!p)
		return -ENOMEM;
	*items = p;
	*cap = n;
	return 0;
}

struct map_build {
	struct rkv_cluster_map *m;
	size_t node_cap, shard_cap;
};

static int map_node(void *arg, const struct frame_map_node *n)
{
	struct map_build *b = arg;
	struct rkv_node *x;

	if (grow((void **)&b->m->nodes, b->m->node_count, &b->node_cap, sizeof *x))
		return -ENOMEM;
	x = &b->m->nodes[b->m->node_count++];
	x->id = n->id;
	copy_text(x->peer, sizeof x->peer, n->peer);
	copy_text(x->client, sizeof x->client, n->client);
	copy_text(x->resp, sizeof x->resp, n->resp);
	return 0;
}

static int map_shard(void *arg, const struct frame_map_shard *s)
{
	struct map_build *b = arg;
	struct rkv_shard *x;

	if (grow((void **)&b->m->shards, b->m->shard_count, &b->shard_cap, sizeof *x))
		return -ENOMEM;
	x = &b->m->shards[b->m->shard_count++];
	memset(x, 0, sizeof *x);
	x->id = s->id;
	x->slot_start = s->slot_start;
	x->slot_end = s->slot_end;
	x->leader = s->leader;
	x->term = s->term;
	for (uint32_t i = 0; i < s->replica_count && i < RKV_MAX_REPLICAS; i++) {
		x->replicas[i].node = s->replicas[i].node;
		x->replicas[i].core = s->replicas[i].core;
		x->replica_count++;
	}
	return 0;
}

void rkv_cluster_map_free(struct rkv_cluster_map *m)
{
	if (!m)
		return;
	free(m->nodes);
	free(m->shards);
	free(m);
}

/* Shards must come in id order with contiguous slot ranges covering every
 * slot: the router relies on it. */
static bool map_valid(const struct rkv_cluster_map *m)
{
	uint32_t next = 0;

	if (m->slots != ROUTE_SLOTS || m->shard_count == 0 || m->node_count == 0)
		return false;
	for (size_t i = 0; i < m->shard_count; i++) {
		if (m->shards[i].id != i || m->shards[i].slot_start != next ||
		    m->shards[i].slot_end <= next || m->shards[i].replica_count == 0)
			return false;
		next = m->shards[i].slot_end;
	}
	return next == ROUTE_SLOTS;
}

int rkv_cluster_map(struct rkv_client *c, struct rkv_cluster_map **out)
{
	struct map_build b = { 0 };
	struct frame_cluster_handlers h = { .on_node = map_node, .on_shard = map_shard, .arg = &b };
	struct frame_cluster_answer a;
	struct rkv_result res;
	const uint8_t *payload;
	size_t len;
	int rc;

	*out = NULL;
	rc = libringkv_call_raw(c, FRAME_OP_CLUSTER_MAP, false, NULL, 0, NULL, 0, &res, &payload,
				&len);
	if (rc != 0)
		return rc;
	b.m = calloc(1, sizeof *b.m);
	if (!b.m)
		return -ENOMEM;
	rc = frame_decode_cluster_answer(payload, len, &a, &h);
	if (rc == 0 && !a.has_map)
		rc = RKV_EPROTO;
	if (rc != 0) {
		rkv_cluster_map_free(b.m);
		libringkv_set_error(c, rc == -ENOMEM ? "out of memory"
					: "the server's answer holds no valid cluster map "
					  "(an older server?)");
		return rc == -ENOMEM ? rc : RKV_EPROTO;
	}
	b.m->version = a.map.version;
	b.m->cluster_id = a.map.cluster_id;
	b.m->epoch = a.map.epoch;
	b.m->node_id = a.map.node_id;
	b.m->slots = a.map.slots;
	if (!map_valid(b.m)) {
		rkv_cluster_map_free(b.m);
		libringkv_set_error(c, "the server's cluster map does not cover the slots");
		return RKV_EPROTO;
	}
	*out = b.m;
	return 0;
}

const struct rkv_shard *rkv_cluster_map_shard(const struct rkv_cluster_map *m,
					      const void *key, size_t key_len)
{
	/* The function of clusters made by this build. A cluster made before
	 * hash tags places tagged keys by the whole key: they then cost a
	 * NOT_LEADER round trip, never a wrong answer (the node routes by its
	 * own recorded function). The map does not carry it yet. */
	uint32_t slot = route_slot_fn(ROUTE_SLOT_FN_DEFAULT, key, key_len);
	size_t lo = 0, hi = m->shard_count;

	while (lo + 1 < hi) { /* the last shard whose start is <= slot */
		size_t mid = lo + (hi - lo) / 2;

		if (m->shards[mid].slot_start <= slot)
			lo = mid;
		else
			hi = mid;
	}
	return &m->shards[lo];
}

struct status_build {
	struct rkv_cluster_status *st;
	size_t rep_cap, peer_cap;
};

static int status_replica(void *arg, const struct frame_replica_status *r)
{
	struct status_build *b = arg;
	struct rkv_replica_status *x;

	if (grow((void **)&b->st->replicas, b->st->replica_count, &b->rep_cap, sizeof *x))
		return -ENOMEM;
	x = &b->st->replicas[b->st->replica_count++];
	memset(x, 0, sizeof *x);
	x->shard = r->shard;
	x->core = r->core;
	copy_text(x->role, sizeof x->role, r->role);
	x->term = r->term;
	x->leader = r->leader;
	x->commit = r->commit;
	x->applied = r->applied;
	x->last_index = r->last_index;
	x->persisted = r->persisted;
	x->snapshot_index = r->snapshot_index;
	x->proposals = r->proposals;
	x->reads = r->reads;
	x->apply_stopped = r->apply_stopped;
	x->sleeping = r->sleeping;
	copy_text(x->snapshot, sizeof x->snapshot, r->snapshot);
	for (uint32_t i = 0; i < r->follower_count && i < 16; i++) {
		x->followers[i].node = r->followers[i].node;
		x->followers[i].match = r->followers[i].match;
		x->followers[i].lag = r->followers[i].lag;
		x->follower_count++;
	}
	return 0;
}

static int status_peer(void *arg, const struct frame_peer_status *p)
{
	struct status_build *b = arg;
	struct rkv_peer_status *x;

	if (grow((void **)&b->st->peers, b->st->peer_count, &b->peer_cap, sizeof *x))
		return -ENOMEM;
	x = &b->st->peers[b->st->peer_count++];
	*x = (struct rkv_peer_status){
		.node = p->node, .reachable = p->reachable,
		.connected_cores = p->connected_cores, .cores = p->cores,
		.bytes_sent = p->bytes_sent, .bytes_received = p->bytes_received,
		.queued_bytes = p->queued_bytes, .dropped_frames = p->dropped_frames,
		.reconnects = p->reconnects, .last_error = p->last_error,
	};
	return 0;
}

void rkv_cluster_status_free(struct rkv_cluster_status *st)
{
	if (!st)
		return;
	free(st->replicas);
	free(st->peers);
	free(st);
}

int rkv_cluster_status(struct rkv_client *c, struct rkv_cluster_status **out)
{
	struct status_build b = { 0 };
	struct frame_cluster_handlers h = { .on_replica = status_replica,
					    .on_peer = status_peer, .arg = &b };
	struct frame_cluster_answer a;
	struct rkv_result res;
	const uint8_t *payload;
	size_t len;
	int rc;

	*out = NULL;
	rc = libringkv_call_raw(c, FRAME_OP_CLUSTER_STATUS, false, NULL, 0, NULL, 0, &res,
				&payload, &len);
	if (rc != 0)
		return rc;
	b.st = calloc(1, sizeof *b.st);
	if (!b.st)
		return -ENOMEM;
	rc = frame_decode_cluster_answer(payload, len, &a, &h);
	if (rc == 0 && !a.has_status)
		rc = RKV_EPROTO;
	if (rc != 0) {
		rkv_cluster_status_free(b.st);
		libringkv_set_error(c, "the server's answer holds no valid cluster status");
		return rc == -ENOMEM ? rc : RKV_EPROTO;
	}
	b.st->node_id = a.cluster_status.node_id;
	b.st->cluster_id = a.cluster_status.cluster_id;
	b.st->cores = a.cluster_status.cores;
	*out = b.st;
	return 0;
}

/* ---- the router ------------------------------------------------------------- */

#define RKV_ROUTER_DOWN_MS 1000 /* a node that failed is skipped this long */

struct rkv_router {
	char *seeds;                  /* comma-separated, as given */
	int connect_timeout_ms;
	int timeout_ms;
	struct rkv_cluster_map *map;
	struct rkv_client **conns;    /* [map->node_count], NULL until used */
	int64_t *down_until;          /* [map->node_count]: a node that failed is
				       * skipped until then (ms, CLOCK_MONOTONIC) */
	char seed_used[RKV_ADDRESS_MAX]; /* the seed that gave the first map */
	struct rkv_router_stats stats;
	char error[2048];
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool is_down(const struct rkv_router *r, size_t i)
{
	return r->down_until[i] > now_ms();
}

static void router_close_conns(struct rkv_router *r)
{
	if (r->map)
		for (size_t i = 0; i < r->map->node_count; i++)
			rkv_close(r->conns[i]);
	free(r->conns);
	free(r->down_until);
	r->conns = NULL;
	r->down_until = NULL;
}

/* The address to dial for node index i: its client address, or for the
 * node that answered with none (a one-node cluster on a wildcard), the
 * seed the map came from. */
static const char *node_address(const struct rkv_router *r, size_t i)
{
	if (r->map->nodes[i].client[0])
		return r->map->nodes[i].client;
	if (r->map->nodes[i].id == r->map->node_id && r->seed_used[0])
		return r->seed_used;
	return NULL;
}

static struct rkv_client *node_conn(struct rkv_router *r, size_t i)
{
	const char *addr;
	char err[256];

	if (r->conns[i])
		return r->conns[i];
	addr = node_address(r, i);
	if (!addr) {
		snprintf(r->error, sizeof r->error, "node %llu: no client address known",
			 (unsigned long long)r->map->nodes[i].id);
		return NULL;
	}
	if (rkv_connect_timeout(addr, r->connect_timeout_ms, &r->conns[i], err, sizeof err) != 0) {
		snprintf(r->error, sizeof r->error, "node %llu at %s: %s",
			 (unsigned long long)r->map->nodes[i].id, addr, err);
		r->conns[i] = NULL;
		r->down_until[i] = now_ms() + RKV_ROUTER_DOWN_MS;
		r->stats.unreachable++;
		return NULL;
	}
	rkv_set_timeout(r->conns[i], r->timeout_ms);
	return r->conns[i];
}

static void drop_conn(struct rkv_router *r, size_t i)
{
	rkv_close(r->conns[i]);
	r->conns[i] = NULL;
	r->down_until[i] = now_ms() + RKV_ROUTER_DOWN_MS;
	r->stats.unreachable++;
}

static int node_index(const struct rkv_cluster_map *m, uint64_t id)
{
	for (size_t i = 0; i < m->node_count; i++)
		if (m->nodes[i].id == id)
			return (int)i;
	return -1;
}

/*
 * Installs a fresh map. Same cluster, same nodes: keep the connections,
 * and per shard keep the leader known for the higher term (a node that
 * holds no replica of a shard may know less than we do).
 */
static void install_map(struct rkv_router *r, struct rkv_cluster_map *m)
{
	bool same = r->map && r->map->cluster_id == m->cluster_id &&
		    r->map->node_count == m->node_count &&
		    r->map->shard_count == m->shard_count;

	for (size_t i = 0; same && i < m->node_count; i++)
		same = r->map->nodes[i].id == m->nodes[i].id &&
		       strcmp(r->map->nodes[i].client, m->nodes[i].client) == 0;
	if (same) {
		for (size_t s = 0; s < m->shard_count; s++)
			if (r->map->shards[s].term > m->shards[s].term) {
				m->shards[s].leader = r->map->shards[s].leader;
				m->shards[s].term = r->map->shards[s].term;
			}
		/* Another answering node: keep the seed only if it says so. */
		if (m->node_id != r->map->node_id)
			m->node_id = r->map->node_id;
		rkv_cluster_map_free(r->map);
		r->map = m;
		return;
	}
	router_close_conns(r);
	rkv_cluster_map_free(r->map);
	r->map = m;
	r->conns = calloc(m->node_count, sizeof *r->conns);
	r->down_until = calloc(m->node_count, sizeof *r->down_until);
}

/* A map from the seeds (the first that answers). */
static int fetch_from_seeds(struct rkv_router *r, struct rkv_cluster_map **out)
{
	char *list = strdup(r->seeds), *save = NULL, *addr;
	int rc = -ENOENT;

	if (!list)
		return -ENOMEM;
	for (addr = strtok_r(list, ",", &save); addr; addr = strtok_r(NULL, ",", &save)) {
		struct rkv_client *c;
		char err[256];

		rc = rkv_connect_timeout(addr, r->connect_timeout_ms, &c, err, sizeof err);
		if (rc != 0) {
			snprintf(r->error, sizeof r->error, "%s: %s", addr, err);
			continue;
		}
		rkv_set_timeout(c, r->timeout_ms);
		rc = rkv_cluster_map(c, out);
		if (rc != 0)
			snprintf(r->error, sizeof r->error, "%s: %s", addr, rkv_last_error(c));
		rkv_close(c);
		if (rc == 0) {
			snprintf(r->seed_used, sizeof r->seed_used, "%s", addr);
			break;
		}
	}
	free(list);
	return rc;
}

/* Nodes whose client address m does not know (a node learns a peer's from
 * the hello of the peer's first connection to it). */
static size_t addresses_missing(const struct rkv_cluster_map *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->node_count; i++)
		n += !m->nodes[i].client[0] && m->nodes[i].id != m->node_id;
	return n;
}

/* Fills the client addresses m lacks from `other`, a map of the same
 * cluster. */
static void fill_addresses(struct rkv_cluster_map *m, const struct rkv_cluster_map *other)
{
	if (other->cluster_id != m->cluster_id || other->node_count != m->node_count)
		return;
	for (size_t i = 0; i < m->node_count; i++) {
		if (m->nodes[i].client[0] || other->nodes[i].id != m->nodes[i].id)
			continue;
		memcpy(m->nodes[i].client, other->nodes[i].client, sizeof m->nodes[i].client);
		memcpy(m->nodes[i].resp, other->nodes[i].resp, sizeof m->nodes[i].resp);
	}
}

/* When m lacks some client addresses: the maps of the other nodes (each
 * knows its own) fill them in, as far as they answer. */
static void complete_addresses(struct rkv_router *r, struct rkv_cluster_map *m)
{
	for (size_t i = 0; r->map && i < m->node_count && addresses_missing(m) > 0; i++) {
		struct rkv_cluster_map *other = NULL;
		struct rkv_client *c;

		if (i >= r->map->node_count || m->nodes[i].id == m->node_id || is_down(r, i) ||
		    !(c = node_conn(r, i)))
			continue;
		if (rkv_cluster_map(c, &other) < 0)
			drop_conn(r, i);
		if (other)
			fill_addresses(m, other);
		rkv_cluster_map_free(other);
	}
}

int rkv_router_refresh(struct rkv_router *r)
{
	struct rkv_cluster_map *m = NULL;
	int rc = -ENOENT;

	r->stats.refreshes++;
	/* Known nodes first (not those that failed), then the seeds. */
	for (size_t i = 0; r->map && i < r->map->node_count && !m; i++) {
		struct rkv_client *c;

		if (is_down(r, i) || !(c = node_conn(r, i)))
			continue;
		rc = rkv_cluster_map(c, &m);
		if (rc < 0)
			drop_conn(r, i);
		else if (rc > 0)
			snprintf(r->error, sizeof r->error, "%s", rkv_last_error(c));
	}
	if (!m)
		rc = fetch_from_seeds(r, &m);
	if (rc != 0)
		return rc;
	if (r->map)
		fill_addresses(m, r->map);
	install_map(r, m);
	if (!r->conns || !r->down_until)
		return -ENOMEM;
	if (addresses_missing(r->map) > 0)
		complete_addresses(r, r->map);
	return 0;
}

int rkv_router_open(const char *seeds, int connect_timeout_ms, struct rkv_router **out,
		    char *err, size_t errlen)
{
	struct rkv_router *r = calloc(1, sizeof *r);
	int rc;

	*out = NULL;
	if (!r || !(r->seeds = strdup(seeds))) {
		free(r);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r->connect_timeout_ms = connect_timeout_ms;
	rc = rkv_router_refresh(r);
	if (rc != 0) {
		snprintf(err, errlen, "no cluster map from %s: %s", seeds, r->error);
		rkv_router_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

void rkv_router_close(struct rkv_router *r)
{
	if (!r)
		return;
	router_close_conns(r);
	rkv_cluster_map_free(r->map);
	free(r->seeds);
	free(r);
}

void rkv_router_set_timeout(struct rkv_router *r, int timeout_ms)
{
	r->timeout_ms = timeout_ms;
	for (size_t i = 0; r->map && i < r->map->node_count; i++)
		if (r->conns[i])
			rkv_set_timeout(r->conns[i], timeout_ms);
}

const struct rkv_cluster_map *rkv_router_map(const struct rkv_router *r)
{
	return r->map;
}

const char *rkv_router_last_error(const struct rkv_router *r)
{
	return r->error;
}

void rkv_router_stats(const struct rkv_router *r, struct rkv_router_stats *out)
{
	*out = r->stats;
}

static void pause_ms(int attempt)
{
	int ms = attempt < 6 ? 10 << attempt : 500; /* 10, 20, ... 320, then 500 ms */
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* The node index to try for `shard`: its leader unless down, else the
 * first replica that is not down; -1 when all are. */
static int pick_node(const struct rkv_router *r, const struct rkv_shard *sh)
{
	int i = sh->leader ? node_index(r->map, sh->leader) : -1;

	if (i >= 0 && !is_down(r, (size_t)i))
		return i;
	for (unsigned k = 0; k < sh->replica_count; k++) {
		i = node_index(r->map, sh->replicas[k].node);
		if (i >= 0 && !is_down(r, (size_t)i))
			return i;
	}
	return -1;
}

/* A NOT_LEADER hint worth following: another node of the map, not down. */
static bool hint_usable(const struct rkv_router *r, uint64_t hint, uint64_t asked)
{
	int k = hint ? node_index(r->map, hint) : -1;

	return hint && hint != asked && k >= 0 && !is_down(r, (size_t)k);
}

static int routed(struct rkv_router *r, int op, const void *key, size_t key_len,
		  const void *value, size_t value_len, void **out, size_t *out_len)
{
	int rc = -ENOENT;

	r->stats.requests++;
	for (int attempt = 0; attempt < RKV_ROUTER_ATTEMPTS; attempt++) {
		const struct rkv_shard *sh = rkv_cluster_map_shard(r->map, key, key_len);
		uint32_t shard = sh->id;
		struct frame_cluster_answer a;
		struct rkv_result res;
		struct rkv_client *c;
		const uint8_t *payload;
		size_t len;
		int i;

		if (attempt > 0)
			r->stats.retries++;
		i = pick_node(r, sh);
		if (i < 0) {
			/* Every replica failed: look again from scratch. */
			pause_ms(attempt);
			memset(r->down_until, 0, r->map->node_count * sizeof *r->down_until);
			rkv_router_refresh(r);
			continue;
		}
		c = node_conn(r, (size_t)i);
		if (!c) {
			/* Refused, or its address is not known yet: skip it
			 * for a while, ask the others for a fresher map. */
			rc = RKV_ECLOSED;
			r->down_until[i] = now_ms() + RKV_ROUTER_DOWN_MS;
			rkv_router_refresh(r);
			continue;
		}
		rc = libringkv_call_raw(c, op, true, key, key_len, value, value_len, &res,
					&payload, &len);
		if (rc < 0) {
			snprintf(r->error, sizeof r->error, "node %llu: %s",
				 (unsigned long long)r->map->nodes[i].id, rkv_last_error(c));
			drop_conn(r, (size_t)i);
			continue;
		}
		if (rc == RKV_STATUS_NOT_LEADER) {
			uint64_t hint = 0, epoch = 0, asked = r->map->nodes[i].id;

			r->stats.not_leader++;
			if (frame_decode_cluster_answer(payload, len, &a, NULL) == 0) {
				hint = a.leader_hint;
				epoch = a.map_epoch;
			}
			snprintf(r->error, sizeof r->error, "%s", rkv_last_error(c));
			/* Refetch the map when membership changed (a larger
			 * epoch than the cached map's), when the server sends
			 * none (older), or when the hint is no use below; a
			 * leader change within one epoch needs only the hint. */
			if (epoch == 0 || epoch > r->map->epoch)
				rkv_router_refresh(r);
			else if (!hint_usable(r, hint, asked))
				rkv_router_refresh(r);
			if (hint_usable(r, hint, asked)) {
				/* The hint is newer than any map: the node that
				 * gave it took part in the shard's term. Go now. */
				r->map->shards[shard].leader = hint;
				continue;
			}
			/* No usable hint: an election is under way, or the
			 * map is behind. Wait a little before the next try. */
			if (r->map->shards[shard].leader == asked)
				r->map->shards[shard].leader = 0;
			pause_ms(attempt);
			continue;
		}
		if (rc == RKV_STATUS_UNAVAILABLE) {
			snprintf(r->error, sizeof r->error, "%s", rkv_last_error(c));
			pause_ms(attempt);
			continue;
		}
		if (rc == RKV_STATUS_OK && out &&
		    libringkv_copy_value(c, &res, out, out_len) != 0)
			return -ENOMEM;
		if (rc != RKV_STATUS_OK)
			snprintf(r->error, sizeof r->error, "%s", rkv_last_error(c));
		return rc;
	}
	return rc;
}

int rkv_router_get(struct rkv_router *r, const void *key, size_t key_len, void **value,
		   size_t *value_len)
{
	size_t len = 0;
	void *v = NULL;
	int rc = routed(r, FRAME_OP_GET, key, key_len, NULL, 0, &v, &len);

	if (value)
		*value = v;
	else
		free(v);
	if (value_len)
		*value_len = len;
	return rc;
}

int rkv_router_put(struct rkv_router *r, const void *key, size_t key_len, const void *value,
		   size_t value_len)
{
	return routed(r, FRAME_OP_PUT, key, key_len, value, value_len, NULL, NULL);
}

int rkv_router_del(struct rkv_router *r, const void *key, size_t key_len)
{
	return routed(r, FRAME_OP_DELETE, key, key_len, NULL, 0, NULL, NULL);
}

/* ---- moving a shard replica -------------------------------------------------- */

const char *rkv_move_phase_name(uint32_t phase)
{
	static const char *const names[] = {
		"none", "host", "learner", "catchup", "promote", "transfer",
		"remove", "drop", "done", "failed", "handed-on", "cancelling", "cancelled",
	};

	return phase < sizeof names / sizeof names[0] ? names[phase] : "?";
}

int rkv_shard_move(struct rkv_client *c, uint32_t shard, uint64_t from_node, uint64_t to_node,
		   uint32_t to_core, int status_only, struct rkv_move *out,
		   uint64_t *leader_hint)
{
	struct rkv_move_request q = { .shard = shard, .from_node = from_node,
				      .to_node = to_node, .to_core = to_core,
				      .status_only = status_only };

	return rkv_shard_move_ask(c, &q, out, leader_hint);
}

int rkv_shard_move_ask(struct rkv_client *c, const struct rkv_move_request *r,
		       struct rkv_move *out, uint64_t *leader_hint)
{
	struct frame_move_req q = { .shard = r->shard, .from_node = r->from_node,
				    .to_node = r->to_node, .to_core = r->to_core,
				    .status_only = r->status_only != 0,
				    .cancel = r->cancel != 0, .rate = r->rate,
				    .transfer_leader = r->transfer_leader != 0 };
	struct frame_move m;
	struct frame_slice error;
	struct rkv_result res;
	const uint8_t *payload;
	size_t len;
	uint64_t id;
	int rc, status;
	bool has;

	memset(out, 0, sizeof *out);
	if (leader_hint)
		*leader_hint = 0;
	rc = libringkv_call_move(c, &q, &res, &payload, &len);
	if (rc < 0 || !payload)
		return rc;
	if (rc == RKV_STATUS_NOT_LEADER && leader_hint)
		frame_decode_response_hint(payload, len, leader_hint);
	if (frame_decode_move_answer(payload, len, &id, &status, &error, &m, &has) != 0) {
		libringkv_set_error(c, "the server's answer to the move is not valid");
		return RKV_EPROTO;
	}
	if (has) {
		out->shard = m.shard;
		out->phase = m.phase;
		out->from_node = m.from_node;
		out->to_node = m.to_node;
		out->to_core = m.to_core;
		out->snapshot_bytes = m.snapshot_bytes;
		out->log_lag = m.log_lag;
		out->elapsed_ms = m.elapsed_ms;
		out->next_leader = m.next_leader;
		out->snapshot_total = m.snapshot_total;
		out->rate = m.rate;
		out->cancelled_in = m.cancelled_in;
		copy_text(out->reason, sizeof out->reason, error);
	}
	if (rc == 0 && !has) {
		libringkv_set_error(c, "the server's answer holds no move (an older server?)");
		return RKV_EPROTO;
	}
	return rc;
}
