/*
 * libFuzzer harness for the peer codec (cluster/peer_msg.c).
 *
 * Each input is used twice: as a raw frame payload, and as the recipe for a
 * valid Raft batch that is encoded and then damaged at a position the input
 * chooses (so the fuzzer reaches the deep decoding paths without having to
 * discover protobuf by itself); a third run builds a SnapshotRequest the
 * same way. Whatever decodes is encoded again and
 * decoded again, and must give the same messages and fields. Both runs use
 * the default limits and tiny ones, so the too-large paths run too.
 * Invariants: only documented return codes, every returned slice inside the
 * payload, no crash, no sanitizer report.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/peer_msg.h"
#include "core/errors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

#define SCRATCH 32

static struct raft_entry scratch_a[SCRATCH], scratch_b[SCRATCH];
static struct peer_msg_buf again; /* grown once, reused across inputs */

static bool inside(const void *p, size_t n, const uint8_t *base, size_t len)
{
	const uint8_t *q = p;

	return q != NULL && q >= base && n <= len && q <= base + len - n;
}

static bool slice_eq(struct peer_msg_slice a, struct peer_msg_slice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

static void check_msg_eq(const struct raft_msg *a, const struct raft_msg *b)
{
	CHECK(a->type == b->type && a->reject == b->reject && a->done == b->done);
	CHECK(a->from == b->from && a->to == b->to && a->term == b->term);
	CHECK(a->index == b->index && a->log_term == b->log_term);
	CHECK(a->commit == b->commit && a->hint == b->hint);
	CHECK(a->context == b->context && a->offset == b->offset);
	CHECK(a->n_entries == b->n_entries && a->len == b->len);
	CHECK(a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
	for (uint32_t i = 0; i < a->n_entries; i++) {
		const struct raft_entry *x = &a->entries[i], *y = &b->entries[i];

		CHECK(x->term == y->term && x->type == y->type && x->len == y->len);
		CHECK(x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
	}
	CHECK((a->conf == NULL) == (b->conf == NULL));
	if (a->conf != NULL) {
		CHECK(a->conf->n == b->conf->n);
		for (uint32_t i = 0; i < a->conf->n; i++)
			CHECK(a->conf->servers[i].id == b->conf->servers[i].id &&
			      a->conf->servers[i].role == b->conf->servers[i].role);
	}
}

static void check_msg_inside(const struct raft_msg *m, const uint8_t *p, size_t n)
{
	CHECK(inside(m->data, m->len, p, n));
	CHECK(m->n_entries == 0 || m->entries != NULL);
	for (uint32_t i = 0; i < m->n_entries; i++)
		CHECK(inside(m->entries[i].data, m->entries[i].len, p, n));
}

/* Re-encodes a decoded Raft batch; the copy must read back the same. */
static void round_trip_raft(const uint8_t *payload, size_t len,
			    const struct peer_msg_limits *l)
{
	struct peer_msg_frame a, b;
	struct peer_msg_batch batch;
	struct raft_msg ma, mb;
	uint64_t ga, gb;
	size_t frame_len;
	int ra, rb;

	CHECK(peer_msg_decode(&a, payload, len, l, scratch_a, SCRATCH) == 0);
	again.len = 0;
	CHECK(peer_msg_batch_begin(&again, &batch) == 0);
	while ((ra = peer_msg_next(&a, &ga, &ma)) == 1)
		/* A canonical encoding is never longer than what decoded. */
		CHECK(peer_msg_batch_add(&again, &batch, l, ga, &ma) == 0);
	if (ra != 0)
		return; /* a bad message: the batch is refused from there on */
	CHECK(batch.n_msgs == a.n_msgs);
	frame_len = peer_msg_batch_end(&again, &batch);
	CHECK(frame_len == again.len && frame_len <= PEER_MSG_HEADER_SIZE + len);

	CHECK(peer_msg_decode(&a, payload, len, l, scratch_a, SCRATCH) == 0);
	CHECK(peer_msg_decode(&b, again.data + PEER_MSG_HEADER_SIZE,
			      frame_len - PEER_MSG_HEADER_SIZE, l, scratch_b,
			      SCRATCH) == 0);
	CHECK(b.kind == PEER_MSG_RAFT && b.n_msgs == a.n_msgs);
	for (;;) {
		ra = peer_msg_next(&a, &ga, &ma);
		rb = peer_msg_next(&b, &gb, &mb);
		CHECK(ra == rb);
		if (ra != 1)
			break;
		CHECK(ga == gb);
		check_msg_eq(&ma, &mb);
	}
}

/* Re-encodes any other decoded kind and compares the fields. */
static void round_trip_other(const struct peer_msg_frame *a,
			     const struct peer_msg_limits *l)
{
	struct peer_msg_frame b;
	const uint8_t *payload;
	size_t frame_len = 0;

	again.len = 0;
	switch (a->kind) {
	case PEER_MSG_HELLO:
		CHECK(peer_msg_encode_hello(&again, &a->hello) == 0);
		break;
	case PEER_MSG_HELLO_REPLY:
		CHECK(peer_msg_encode_hello_reply(&again, &a->hello_reply) == 0);
		break;
	case PEER_MSG_SNAPSHOT_CHUNK:
		CHECK(peer_msg_encode_chunk(&again, l, &a->chunk) == 0);
		break;
	case PEER_MSG_FORWARD:
		CHECK(peer_msg_encode_forward(&again, l, &a->forward) == 0);
		break;
	case PEER_MSG_FORWARD_REPLY:
		CHECK(peer_msg_encode_forward_reply(&again, l, &a->forward_reply) == 0);
		break;
	case PEER_MSG_SNAPSHOT_REQUEST:
		CHECK(peer_msg_encode_snapshot_request(&again, &a->snapshot_request) == 0);
		break;
	case PEER_MSG_PLACEMENT:
		CHECK(peer_msg_encode_placement(&again, &a->placement) == 0);
		break;
	case PEER_MSG_LEADERS: {
		static struct peer_msg_leader entries[PEER_MSG_MAX_LEADERS];
		struct peer_msg_leaders_iter it;
		uint32_t n = 0;

		peer_msg_leaders_begin(&it, &a->leaders);
		while (peer_msg_leaders_next(&it, &entries[n]) == 1)
			CHECK(++n <= PEER_MSG_MAX_LEADERS);
		CHECK(n == a->leaders.count);
		CHECK(peer_msg_encode_leaders(&again, entries, n) == 0);
		break;
	}
	case PEER_MSG_HEARTBEATS: {
		static struct peer_msg_beat beats[PEER_MSG_MAX_BEATS];
		struct peer_msg_heartbeats_iter it;
		uint32_t n = 0;

		peer_msg_heartbeats_begin(&it, &a->heartbeats);
		while (peer_msg_heartbeats_next(&it, &beats[n]) == 1)
			CHECK(++n <= PEER_MSG_MAX_BEATS);
		CHECK(n == a->heartbeats.count);
		CHECK(peer_msg_encode_heartbeats(&again, beats, n) == 0);
		break;
	}
	default:
		CHECK(0);
	}
	CHECK(peer_msg_peek(again.data, again.len, l, &frame_len) == 0);
	CHECK(frame_len == again.len);
	payload = again.data + PEER_MSG_HEADER_SIZE;
	CHECK(peer_msg_decode(&b, payload, frame_len - PEER_MSG_HEADER_SIZE, l,
			      NULL, 0) == 0);
	CHECK(b.kind == a->kind);
	switch (a->kind) {
	case PEER_MSG_HELLO:
		CHECK(a->hello.cluster_id == b.hello.cluster_id &&
		      a->hello.node_id == b.hello.node_id &&
		      a->hello.from_core == b.hello.from_core &&
		      a->hello.to_core == b.hello.to_core &&
		      a->hello.version == b.hello.version &&
		      a->hello.to_node_id == b.hello.to_node_id &&
		      a->hello.data_dir_id == b.hello.data_dir_id &&
		      a->hello.data_dir_new == b.hello.data_dir_new &&
		      a->hello.boot_id == b.hello.boot_id);
		break;
	case PEER_MSG_HELLO_REPLY:
		CHECK(a->hello_reply.ok == b.hello_reply.ok &&
		      slice_eq(a->hello_reply.reason, b.hello_reply.reason) &&
		      a->hello_reply.cluster_id == b.hello_reply.cluster_id &&
		      a->hello_reply.node_id == b.hello_reply.node_id &&
		      a->hello_reply.version == b.hello_reply.version);
		break;
	case PEER_MSG_SNAPSHOT_CHUNK:
		CHECK(a->chunk.group == b.chunk.group && a->chunk.index == b.chunk.index &&
		      a->chunk.term == b.chunk.term && a->chunk.offset == b.chunk.offset &&
		      a->chunk.crc32c == b.chunk.crc32c && a->chunk.last == b.chunk.last &&
		      a->chunk.stream == b.chunk.stream && a->chunk.seq == b.chunk.seq &&
		      slice_eq(a->chunk.file, b.chunk.file) &&
		      slice_eq(a->chunk.data, b.chunk.data));
		break;
	case PEER_MSG_FORWARD:
		CHECK(a->forward.forward_id == b.forward.forward_id &&
		      a->forward.group == b.forward.group &&
		      slice_eq(a->forward.request, b.forward.request));
		break;
	case PEER_MSG_SNAPSHOT_REQUEST:
		CHECK(a->snapshot_request.group == b.snapshot_request.group &&
		      a->snapshot_request.applied == b.snapshot_request.applied &&
		      a->snapshot_request.restart_stream == b.snapshot_request.restart_stream &&
		      a->snapshot_request.boot_id == b.snapshot_request.boot_id &&
		      a->snapshot_request.stream_seen == b.snapshot_request.stream_seen);
		break;
	case PEER_MSG_PLACEMENT:
		CHECK(memcmp(&a->placement, &b.placement, sizeof a->placement) == 0);
		break;
	case PEER_MSG_LEADERS: {
		struct peer_msg_leaders_iter ia, ib;
		struct peer_msg_leader ea, eb;
		int ra, rb;

		CHECK(a->leaders.count == b.leaders.count);
		peer_msg_leaders_begin(&ia, &a->leaders);
		peer_msg_leaders_begin(&ib, &b.leaders);
		do {
			ra = peer_msg_leaders_next(&ia, &ea);
			rb = peer_msg_leaders_next(&ib, &eb);
			CHECK(ra == rb);
			CHECK(ra == 0 || memcmp(&ea, &eb, sizeof ea) == 0);
		} while (ra == 1);
		break;
	}
	case PEER_MSG_HEARTBEATS: {
		struct peer_msg_heartbeats_iter ia, ib;
		struct peer_msg_beat ea, eb;
		int ra, rb;

		CHECK(a->heartbeats.count == b.heartbeats.count);
		peer_msg_heartbeats_begin(&ia, &a->heartbeats);
		peer_msg_heartbeats_begin(&ib, &b.heartbeats);
		do {
			ra = peer_msg_heartbeats_next(&ia, &ea);
			rb = peer_msg_heartbeats_next(&ib, &eb);
			CHECK(ra == rb);
			CHECK(ra == 0 || memcmp(&ea, &eb, sizeof ea) == 0);
		} while (ra == 1);
		break;
	}
	default:
		CHECK(a->forward_reply.forward_id == b.forward_reply.forward_id &&
		      slice_eq(a->forward_reply.response, b.forward_reply.response));
		break;
	}
}

/* Decodes one payload (an exact-size heap copy, so ASan sees overreads). */
static void run_payload(const uint8_t *data, size_t size, const struct peer_msg_limits *l)
{
	uint8_t *p = malloc(size ? size : 1);
	struct peer_msg_frame f;
	struct raft_msg m;
	uint64_t group;
	int rv;

	CHECK(p != NULL);
	memcpy(p, data, size);
	rv = peer_msg_decode(&f, p, size, l, scratch_a, SCRATCH);
	CHECK(rv == 0 || rv == RKV_EPROTO || rv == RKV_EINVAL ||
	      rv == RKV_ETOOLARGE || rv == RKV_ECORRUPT);
	if (rv != 0)
		goto out;
	switch (f.kind) {
	case PEER_MSG_RAFT:
		CHECK(f.n_msgs >= 1 && f.n_msgs <= l->max_msgs);
		while ((rv = peer_msg_next(&f, &group, &m)) == 1) {
			struct peer_msg_frame one;
			struct raft_msg copy;
			uint64_t group2;

			check_msg_inside(&m, p, size);
			CHECK(m.n_entries <= l->max_entries && m.len <= l->max_data_bytes);
			/* Its own bytes decode alone to the same message. */
			CHECK(inside(f.msg_bytes.data, f.msg_bytes.len, p, size));
			CHECK(peer_msg_decode_one(&one, f.msg_bytes.data, f.msg_bytes.len,
						  l, scratch_b, SCRATCH, &group2,
						  &copy) == 0);
			CHECK(group2 == group);
			check_msg_eq(&m, &copy);
		}
		CHECK(rv == 0 || rv == RKV_EPROTO || rv == RKV_EINVAL ||
		      rv == RKV_ETOOLARGE);
		round_trip_raft(p, size, l);
		break;
	case PEER_MSG_HELLO:
		CHECK(f.hello.node_id != 0 && f.hello.version != 0);
		round_trip_other(&f, l);
		break;
	case PEER_MSG_HELLO_REPLY:
		CHECK(inside(f.hello_reply.reason.data, f.hello_reply.reason.len, p, size));
		round_trip_other(&f, l);
		break;
	case PEER_MSG_SNAPSHOT_CHUNK:
		CHECK(inside(f.chunk.file.data, f.chunk.file.len, p, size));
		CHECK(inside(f.chunk.data.data, f.chunk.data.len, p, size));
		round_trip_other(&f, l);
		break;
	case PEER_MSG_FORWARD:
		CHECK(inside(f.forward.request.data, f.forward.request.len, p, size));
		round_trip_other(&f, l);
		break;
	case PEER_MSG_FORWARD_REPLY:
		CHECK(inside(f.forward_reply.response.data, f.forward_reply.response.len,
			     p, size));
		round_trip_other(&f, l);
		break;
	case PEER_MSG_SNAPSHOT_REQUEST:
	case PEER_MSG_PLACEMENT:
		round_trip_other(&f, l);
		break;
	case PEER_MSG_LEADERS:
		CHECK(f.leaders.count <= PEER_MSG_MAX_LEADERS);
		CHECK(inside(f.leaders.shard.data, f.leaders.shard.len, p, size));
		CHECK(inside(f.leaders.term.data, f.leaders.term.len, p, size));
		CHECK(inside(f.leaders.conf_index.data, f.leaders.conf_index.len, p, size));
		round_trip_other(&f, l);
		break;
	case PEER_MSG_HEARTBEATS:
		CHECK(f.heartbeats.count <= PEER_MSG_MAX_BEATS);
		for (int k = 0; k < 5; k++)
			CHECK(inside(f.heartbeats.list[k].data, f.heartbeats.list[k].len, p, size));
		round_trip_other(&f, l);
		break;
	default:
		CHECK(0);
	}
out:
	free(p);
}

/* Reads the recipe's bytes; zeros once it runs out. */
struct recipe {
	const uint8_t *p;
	size_t n;
};

static uint64_t take(struct recipe *r, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++) {
		v = v << 8 | (r->n ? *r->p : 0);
		if (r->n) {
			r->p++;
			r->n--;
		}
	}
	return v;
}

/*
 * Damages one whole encoded frame as the recipe says -- flips a byte, cuts
 * the frame, or both; or leaves it whole -- and decodes it. `width`: recipe
 * bytes per position.
 */
static void damage_and_run(struct peer_msg_buf *out, struct recipe *r, unsigned width,
			   const struct peer_msg_limits *l)
{
	size_t at, frame_len = 0;

	CHECK(peer_msg_peek(out->data, out->len, l, &frame_len) == 0);
	CHECK(frame_len == out->len);
	at = (size_t)take(r, width) % out->len;
	if (at >= PEER_MSG_HEADER_SIZE)
		out->data[at] ^= (uint8_t)take(r, 1);
	at = (size_t)take(r, width);
	frame_len = at > PEER_MSG_HEADER_SIZE && at < out->len ? at : out->len;
	run_payload(out->data + PEER_MSG_HEADER_SIZE, frame_len - PEER_MSG_HEADER_SIZE, l);
}

/* Builds a valid batch from the input, damages it, and decodes it. */
static void run_recipe(const uint8_t *data, size_t size, const struct peer_msg_limits *l)
{
	static const uint8_t bytes[64] = "the quick brown fox jumps over the lazy dog 0123456789";
	struct recipe r = { data, size };
	struct raft_entry entries[4][4];
	struct raft_msg msgs[4];
	struct raft_conf conf;
	struct peer_msg_batch batch;
	struct peer_msg_buf out;
	uint32_t n = (uint32_t)(take(&r, 1) % 4) + 1;
	int rv;

	conf.n = (uint32_t)(take(&r, 1) % 4);
	for (uint32_t i = 0; i < conf.n; i++) {
		conf.servers[i].id = i + 1 + (take(&r, 1) << 8);
		conf.servers[i].role = take(&r, 1) & 1 ? RAFT_VOTER : RAFT_LEARNER;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct raft_msg *m = &msgs[i];
		uint64_t flags = take(&r, 1);

		memset(m, 0, sizeof(*m));
		m->type = (uint32_t)(take(&r, 1) % RAFT_MSG_TIMEOUT_NOW) + 1;
		m->reject = flags & 1;
		m->done = flags & 2;
		m->from = take(&r, 1) + 1;
		m->to = take(&r, 8) | 1;
		m->term = take(&r, 2);
		m->index = take(&r, 8);
		m->commit = take(&r, 3);
		m->hint = take(&r, 1);
		m->context = take(&r, 4);
		m->offset = take(&r, 2);
		m->n_entries = (uint32_t)(take(&r, 1) % 5);
		for (uint32_t k = 0; k < m->n_entries; k++) {
			entries[i][k].term = take(&r, 2);
			entries[i][k].type = (uint32_t)(take(&r, 1) % 3) + 1;
			entries[i][k].len = (uint32_t)(take(&r, 1) % sizeof(bytes));
			entries[i][k].data = (void *)(uintptr_t)bytes;
		}
		m->entries = entries[i];
		m->len = (uint32_t)(take(&r, 1) % sizeof(bytes));
		m->data = bytes;
		m->conf = flags & 4 ? &conf : NULL;
	}
	peer_msg_buf_init(&out);
	CHECK(peer_msg_batch_begin(&out, &batch) == 0);
	for (uint32_t i = 0; i < n; i++) {
		rv = peer_msg_batch_add(&out, &batch, l, take(&r, 2), &msgs[i]);
		CHECK(rv == 0 || rv == RKV_ETOOLARGE);
	}
	peer_msg_batch_end(&out, &batch);
	if (out.len == 0)
		goto out;
	damage_and_run(&out, &r, 2, l);
out:
	peer_msg_buf_free(&out);
}

/* A valid SnapshotRequest from the input, damaged like a batch (flipped
 * byte, cut), then decoded: the frame a damaged replica sends its leader. */
static void run_request_recipe(const uint8_t *data, size_t size,
			       const struct peer_msg_limits *l)
{
	struct recipe r = { data, size };
	struct peer_msg_snapshot_request q;
	struct peer_msg_buf out;

	q.group = take(&r, (unsigned)(take(&r, 1) % 9));
	q.applied = take(&r, (unsigned)(take(&r, 1) % 9));
	q.restart_stream = take(&r, (unsigned)(take(&r, 1) % 9));
	q.boot_id = take(&r, (unsigned)(take(&r, 1) % 9));
	q.stream_seen = take(&r, (unsigned)(take(&r, 1) % 9));
	peer_msg_buf_init(&out);
	CHECK(peer_msg_encode_snapshot_request(&out, &q) == 0);
	CHECK(out.len <= PEER_MSG_HEADER_SIZE + 2 + 5 * 11); /* five u64 fields */
	damage_and_run(&out, &r, 1, l);
	peer_msg_buf_free(&out);
}

/* A valid Leaders frame of up to 8 entries from the input, damaged like a
 * batch, then decoded: what every core announces each tick. */
static void run_leaders_recipe(const uint8_t *data, size_t size,
			       const struct peer_msg_limits *l)
{
	struct recipe r = { data, size };
	struct peer_msg_leader e[8];
	struct peer_msg_buf out;
	uint32_t n = (uint32_t)(take(&r, 1) % 9);

	for (uint32_t i = 0; i < n; i++) {
		e[i].shard = take(&r, (unsigned)(take(&r, 1) % 9));
		e[i].term = take(&r, (unsigned)(take(&r, 1) % 9));
		e[i].conf_index = take(&r, (unsigned)(take(&r, 1) % 9));
	}
	peer_msg_buf_init(&out);
	CHECK(peer_msg_encode_leaders(&out, e, n) == 0);
	CHECK(out.len <= PEER_MSG_HEADER_SIZE + 20 + 30 * n);
	damage_and_run(&out, &r, 1, l);
	peer_msg_buf_free(&out);
}

/* A valid Heartbeats frame of up to 8 entries from the input, damaged like
 * a batch, then decoded: coalesced heartbeats, or the empty beacon. */
static void run_beats_recipe(const uint8_t *data, size_t size, const struct peer_msg_limits *l)
{
	struct recipe r = { data, size };
	struct peer_msg_beat e[8];
	struct peer_msg_buf out;
	uint32_t n = (uint32_t)(take(&r, 1) % 9);

	for (uint32_t i = 0; i < n; i++) {
		e[i].group = take(&r, (unsigned)(take(&r, 1) % 9));
		e[i].term = take(&r, (unsigned)(take(&r, 1) % 9));
		e[i].commit = take(&r, (unsigned)(take(&r, 1) % 9));
		e[i].context = take(&r, (unsigned)(take(&r, 1) % 9));
		e[i].flags = take(&r, (unsigned)(take(&r, 1) % 9));
	}
	peer_msg_buf_init(&out);
	CHECK(peer_msg_encode_heartbeats(&out, e, n) == 0);
	CHECK(out.len <= PEER_MSG_HEADER_SIZE + 20 + 50 * n);
	damage_and_run(&out, &r, 1, l);
	peer_msg_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct peer_msg_limits l;
	static const struct peer_msg_limits tiny = {
		.max_frame = 256, .max_msgs = 3, .max_entries = 3,
		.max_entry_bytes = 16, .max_data_bytes = 16,
	};
	size_t need = 0;
	int rc;

	peer_msg_limits_default(&l);
	rc = peer_msg_peek(data, size, &l, &need);
	CHECK(rc == 0 || rc == RKV_EAGAIN || rc == RKV_ETOOLARGE);
	if (rc == 0)
		CHECK(need >= PEER_MSG_HEADER_SIZE && need <= size);
	if (rc == RKV_EAGAIN)
		CHECK(need > size);

	run_payload(data, size, &l);
	run_payload(data, size, &tiny);
	run_recipe(data, size, &l);
	run_recipe(data, size, &tiny);
	run_request_recipe(data, size, &l);
	run_leaders_recipe(data, size, &l);
	run_beats_recipe(data, size, &l);
	return 0;
}
