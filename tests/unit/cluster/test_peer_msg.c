/*
 * Tests of cluster/peer_msg.c: round trips of every Raft message type with
 * every field set and of every other frame kind; the bytes checked against
 * nanopb's own encoder and decoder for proto/peer.proto (the codec writes
 * the wire format by hand); every documented refusal (truncation at every
 * byte, flipped bytes, limits, bad values, bad conf, mixed kinds); zero-copy
 * pointers; and the encoder's own limits and buffer reuse. Damaged frames
 * are decoded from exact-size heap copies, so ASan sees any read past the
 * end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "cluster/peer_msg.h"
#include "core/errors.h"
#include "peer.pb.h"
#include "shard/crc32c.h"

#define SCRATCH 64

static struct peer_msg_limits limits;
static struct raft_entry scratch[SCRATCH];
static uint8_t big[200000];       /* pattern bytes for entry and chunk data */
static uint8_t conf_bytes[RAFT_CONF_ENCODED_MAX];
static size_t conf_len;
static struct raft_conf conf3;
static struct raft_entry entries[5];

static int setup(void **state)
{
	(void)state;
	peer_msg_limits_default(&limits);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 131 + (i >> 8));
	conf3 = (struct raft_conf){ 3, { { 1, RAFT_VOTER }, { 2, RAFT_VOTER },
					{ 300, RAFT_LEARNER } } };
	conf_len = raft_conf_encode(&conf3, conf_bytes);
	/* Every entry type, empty and large data, terms at varint edges. */
	entries[0] = (struct raft_entry){ 7, RAFT_ENTRY_NORMAL, 100, big };
	entries[1] = (struct raft_entry){ 8, RAFT_ENTRY_NOOP, 0, NULL };
	entries[2] = (struct raft_entry){ 127, RAFT_ENTRY_CONF, (uint32_t)conf_len,
					  conf_bytes };
	entries[3] = (struct raft_entry){ UINT64_MAX, RAFT_ENTRY_NORMAL, 150000,
					  big + 7 };
	entries[4] = (struct raft_entry){ 0, RAFT_ENTRY_NORMAL, 1, big + 1 };
	return 0;
}

/* A message of `type` with every field of struct raft_msg set. */
static struct raft_msg full_msg(uint32_t type)
{
	struct raft_msg m = {
		.type = type, .reject = true, .done = true,
		.from = 1, .to = UINT64_MAX, .term = 1u << 20,
		.index = 128, .log_term = 127, .commit = 1ull << 63,
		.hint = 16383, .context = 16384, .offset = 99,
		.entries = entries, .n_entries = 5,
		.len = 5000, .data = big + 3, .conf = &conf3,
	};

	return m;
}

static void assert_conf_eq(const struct raft_conf *a, const struct raft_conf *b)
{
	if (a == NULL || b == NULL) {
		assert_true(a == NULL && b == NULL);
		return;
	}
	assert_int_equal(a->n, b->n);
	for (uint32_t i = 0; i < a->n; i++) {
		assert_int_equal(a->servers[i].id, b->servers[i].id);
		assert_int_equal(a->servers[i].role, b->servers[i].role);
	}
}

static void assert_msg_eq(const struct raft_msg *a, const struct raft_msg *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->reject, b->reject);
	assert_int_equal(a->done, b->done);
	assert_int_equal(a->from, b->from);
	assert_int_equal(a->to, b->to);
	assert_int_equal(a->term, b->term);
	assert_int_equal(a->index, b->index);
	assert_int_equal(a->log_term, b->log_term);
	assert_int_equal(a->commit, b->commit);
	assert_int_equal(a->hint, b->hint);
	assert_int_equal(a->context, b->context);
	assert_int_equal(a->offset, b->offset);
	assert_int_equal(a->n_entries, b->n_entries);
	for (uint32_t i = 0; i < a->n_entries; i++) {
		assert_int_equal(a->entries[i].term, b->entries[i].term);
		assert_int_equal(a->entries[i].type, b->entries[i].type);
		assert_int_equal(a->entries[i].len, b->entries[i].len);
		if (a->entries[i].len)
			assert_memory_equal(a->entries[i].data, b->entries[i].data,
					    a->entries[i].len);
	}
	assert_int_equal(a->len, b->len);
	if (a->len)
		assert_memory_equal(a->data, b->data, a->len);
	assert_conf_eq(a->conf, b->conf);
}

static bool inside(const void *p, size_t n, const uint8_t *base, size_t len)
{
	const uint8_t *q = p;

	return q != NULL && q >= base && n <= len && q <= base + len - n;
}

/* The frame at out->data + at: peeks it and returns its payload. */
static const uint8_t *payload_of(const struct peer_msg_buf *out, size_t at,
				 size_t *len)
{
	size_t frame_len = 0;

	assert_int_equal(peer_msg_peek(out->data + at, out->len - at, &limits,
				       &frame_len), 0);
	*len = frame_len - PEER_MSG_HEADER_SIZE;
	return out->data + at + PEER_MSG_HEADER_SIZE;
}

/* Decodes a whole Raft frame, checks it against want[] and zero copy. */
static void check_batch(const uint8_t *payload, size_t len, const uint64_t *groups,
			const struct raft_msg *want, size_t n)
{
	struct peer_msg_frame f;
	struct raft_msg m;
	uint64_t group;

	assert_int_equal(peer_msg_decode(&f, payload, len, &limits, scratch, SCRATCH), 0);
	assert_int_equal(f.kind, PEER_MSG_RAFT);
	assert_int_equal(f.n_msgs, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(peer_msg_next(&f, &group, &m), 1);
		assert_int_equal(group, groups[i]);
		assert_msg_eq(&m, &want[i]);
		assert_true(inside(m.data, m.len, payload, len));
		for (uint32_t k = 0; k < m.n_entries; k++)
			assert_true(inside(m.entries[k].data, m.entries[k].len,
					   payload, len));
		assert_true(m.n_entries == 0 || m.entries == scratch);
		assert_true(m.conf == NULL || m.conf == &f.conf);
	}
	assert_int_equal(peer_msg_next(&f, &group, &m), 0);
	assert_int_equal(peer_msg_next(&f, &group, &m), 0);
}

/* Each message's own bytes decode on their own to the same message (the
 * path of a message handed to another core). */
static void test_decode_one(void **state)
{
	struct raft_msg want[3] = { full_msg(RAFT_MSG_SNAPSHOT), full_msg(RAFT_MSG_APPEND),
				    { .type = RAFT_MSG_TIMEOUT_NOW, .from = 4, .to = 5 } };
	struct peer_msg_item items[3] = { { 10, &want[0] }, { 11, &want[1] },
					   { 12, &want[2] } };
	static struct raft_entry other[SCRATCH];
	struct peer_msg_buf out;
	struct peer_msg_frame f, one;
	struct raft_msg m, copy;
	const uint8_t *payload;
	uint64_t group, group2;
	uint8_t *bytes;
	size_t len;
	uint32_t i = 0;

	(void)state;
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_batch(&out, &limits, items, 3), 0);
	payload = payload_of(&out, 0, &len);
	assert_int_equal(peer_msg_decode(&f, payload, len, &limits, scratch, SCRATCH), 0);
	while (peer_msg_next(&f, &group, &m) == 1) {
		assert_true(inside(f.msg_bytes.data, f.msg_bytes.len, payload, len));
		bytes = malloc(f.msg_bytes.len ? f.msg_bytes.len : 1);
		assert_non_null(bytes);
		memcpy(bytes, f.msg_bytes.data, f.msg_bytes.len);
		assert_int_equal(peer_msg_decode_one(&one, bytes, f.msg_bytes.len, &limits,
						     other, SCRATCH, &group2, &copy), 0);
		assert_int_equal(group2, items[i].group);
		assert_msg_eq(&copy, &want[i]);
		for (uint32_t k = 0; k < copy.n_entries; k++)
			assert_true(inside(copy.entries[k].data, copy.entries[k].len,
					   bytes, f.msg_bytes.len));
		assert_true(copy.conf == NULL || copy.conf == &one.conf);
		/* Cut short, it is refused; over max_frame too. */
		if (f.msg_bytes.len > 0)
			assert_int_equal(peer_msg_decode_one(&one, bytes,
							     f.msg_bytes.len - 1, &limits,
							     other, SCRATCH, &group2,
							     &copy) < 0, true);
		free(bytes);
		i++;
	}
	assert_int_equal(i, 3);
	{
		struct peer_msg_limits small = limits;

		small.max_frame = 2;
		assert_int_equal(peer_msg_decode_one(&one, payload, 3, &small, other,
						     SCRATCH, &group2, &copy), RKV_ETOOLARGE);
	}
	peer_msg_buf_free(&out);
}

static void test_limits_default(void **state)
{
	(void)state;
	assert_int_equal(limits.max_frame, 16u << 20);
	assert_int_equal(limits.max_msgs, 1u << 16);
	assert_int_equal(limits.max_entries, 1u << 14);
	assert_int_equal(limits.max_entry_bytes, 4u << 20);
	assert_int_equal(limits.max_data_bytes, 4u << 20);
}

static void test_every_type_round_trip(void **state)
{
	struct peer_msg_buf out;

	(void)state;
	peer_msg_buf_init(&out);
	for (uint32_t type = RAFT_MSG_PREVOTE; type <= RAFT_MSG_TIMEOUT_NOW; type++) {
		struct raft_msg full = full_msg(type);
		/* And the same type with only the mandatory fields. */
		struct raft_msg bare = { .type = type, .from = 2, .to = 3 };
		struct peer_msg_item items[2] = { { 1000 + type, &full }, { 0, &bare } };
		struct raft_msg want[2] = { full, bare };
		uint64_t groups[2] = { 1000 + type, 0 };
		const uint8_t *payload;
		size_t len;

		out.len = 0;
		assert_int_equal(peer_msg_encode_batch(&out, &limits, items, 2), 0);
		payload = payload_of(&out, 0, &len);
		assert_int_equal(len + PEER_MSG_HEADER_SIZE, out.len);
		check_batch(payload, len, groups, want, 2);
	}
	peer_msg_buf_free(&out);
}

/* Every varint width, both sides of each 7-bit boundary: the encoder's
 * size arithmetic is asserted exact, the decoder must read the same. */
static void test_varint_edges(void **state)
{
	struct peer_msg_buf out;
	struct raft_msg want[128];
	uint64_t groups[128];
	struct peer_msg_item items[128];
	const uint8_t *payload;
	size_t len, n = 0;

	(void)state;
	peer_msg_buf_init(&out);
	for (unsigned k = 0; k < 64; k++) {
		for (unsigned d = 0; d < 2; d++) {
			uint64_t v = (1ull << k) - d;

			if (v == 0)
				v = UINT64_MAX;
			want[n] = (struct raft_msg){ .type = RAFT_MSG_APPEND_RESP,
						     .from = v, .to = v, .term = v,
						     .index = v, .commit = v,
						     .hint = v, .offset = v };
			groups[n] = v;
			items[n] = (struct peer_msg_item){ v, &want[n] };
			n++;
		}
	}
	assert_int_equal(peer_msg_encode_batch(&out, &limits, items, n), 0);
	payload = payload_of(&out, 0, &len);
	check_batch(payload, len, groups, want, n);
	peer_msg_buf_free(&out);
}

static void test_batch_many_groups(void **state)
{
	enum { N = 3000 };
	static struct raft_msg want[N];
	static uint64_t groups[N];
	struct peer_msg_buf out;
	struct peer_msg_batch batch;
	const uint8_t *payload;
	size_t len, frame;

	(void)state;
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_batch_begin(&out, &batch), 0);
	for (size_t i = 0; i < N; i++) {
		want[i] = full_msg((uint32_t)(RAFT_MSG_PREVOTE + i % 11));
		want[i].n_entries = (uint32_t)(i % 3); /* small entries only */
		want[i].len = (uint32_t)(i % 50);
		if (want[i].type != RAFT_MSG_SNAPSHOT)
			want[i].conf = NULL;
		groups[i] = i * 7919;
		assert_int_equal(peer_msg_batch_add(&out, &batch, &limits, groups[i],
						    &want[i]), 0);
	}
	assert_int_equal(batch.n_msgs, N);
	len = peer_msg_batch_bytes(&out, &batch);
	frame = peer_msg_batch_end(&out, &batch);
	assert_int_equal(frame, out.len);
	assert_int_equal(frame, len + PEER_MSG_HEADER_SIZE);
	payload = payload_of(&out, 0, &len);
	check_batch(payload, len, groups, want, N);
	peer_msg_buf_free(&out);
}

/* Two frames back to back in one buffer, split by peer_msg_peek. */
static void test_frames_back_to_back(void **state)
{
	struct raft_msg a = full_msg(RAFT_MSG_APPEND), b = full_msg(RAFT_MSG_VOTE);
	struct peer_msg_item ia = { 1, &a }, ib = { 2, &b };
	struct peer_msg_hello h = { .cluster_id = 5, .node_id = 6, .from_core = 7, .to_core = 8, .version = PEER_MSG_VERSION, .to_node_id = 0 };
	struct peer_msg_buf out;
	const uint8_t *payload;
	size_t len, first, at;

	(void)state;
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_hello(&out, &h), 0);
	first = out.len;
	assert_int_equal(peer_msg_encode_batch(&out, &limits, &ia, 1), 0);
	at = out.len;
	assert_int_equal(peer_msg_encode_batch(&out, &limits, &ib, 1), 0);
	payload = payload_of(&out, first, &len);
	check_batch(payload, len, &ia.group, &a, 1);
	assert_int_equal(first + PEER_MSG_HEADER_SIZE + len, at);
	payload = payload_of(&out, at, &len);
	check_batch(payload, len, &ib.group, &b, 1);
	assert_int_equal(at + PEER_MSG_HEADER_SIZE + len, out.len);
	peer_msg_buf_free(&out);
}

static void test_hello_round_trip(void **state)
{
	struct peer_msg_hello h = { .cluster_id = UINT64_MAX, .node_id = 3, .from_core = 1, .to_core = 65535, .version = PEER_MSG_VERSION, .to_node_id = 4 };
	struct peer_msg_hello_reply r = {
		.ok = false, .reason = { (const uint8_t *)"cluster id differs", 18 },
		.cluster_id = 42, .node_id = 9, .version = 1 };
	struct peer_msg_hello_reply ok = { .ok = true, .node_id = 2, .version = 1 };
	struct peer_msg_buf out;
	struct peer_msg_frame f;
	const uint8_t *payload;
	size_t len, at;

	(void)state;
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_hello(&out, &h), 0);
	payload = payload_of(&out, 0, &len);
	assert_int_equal(peer_msg_decode(&f, payload, len, &limits, NULL, 0), 0);
	assert_int_equal(f.kind, PEER_MSG_HELLO);
	assert_int_equal(f.hello.cluster_id, h.cluster_id);
	assert_int_equal(f.hello.node_id, h.node_id);
	assert_int_equal(f.hello.from_core, h.from_core);
	assert_int_equal(f.hello.to_core, h.to_core);
	assert_int_equal(f.hello.version, h.version);
	assert_int_equal(f.hello.to_node_id, 4);

	at = out.len;
	assert_int_equal(peer_msg_encode_hello_reply(&out, &r), 0);
	payload = payload_of(&out, at, &len);
	assert_int_equal(peer_msg_decode(&f, payload, len, &limits, NULL, 0), 0);
	assert_int_equal(f.kind, PEER_MSG_HELLO_REPLY);
	assert_false(f.hello_reply.ok);
	assert_int_equal(f.hello_reply.reason.len, 18);
	assert_memory_equal(f.hello_reply.reason.data, "cluster id differs", 18);
	assert_true(inside(f.hello_reply.reason.data, 18, payload, len));
	assert_int_equal(f.hello_reply.cluster_id, 42);
	assert_int_equal(f.hello_reply.node_id, 9);
	assert_int_equal(f.hello_reply.version, 1);

	at = out.len;
	assert_int_equal(peer_msg_encode_hello_reply(&out, &ok), 0);
	payload = payload_of(&out, at, &len);
	assert_int_equal(peer_msg_decode(&f, payload, len, &limits, NULL, 0), 0);
	assert_true(f.hello_reply.ok);
	assert_int_equal(f.hello_reply.reason.len, 0);
	assert_non_null(f.hello_reply.reason.data);

	/* A reason longer than the limit is refused by the sender. */
	r.reason = (struct peer_msg_slice){ big, PEER_MSG_MAX_REASON + 1 };
	at = out.len;
	assert_int_equal(peer_msg_encode_hello_reply(&out, &r), RKV_ETOOLARGE);
	assert_int_equal(out.len, at);
	peer_msg_buf_free(&out);
}

/* The client addresses a hello carries (what a node tells clients in its
 * cluster map about the sender), and their bound. */
static void test_hello_addresses(void **state)
{
	struct peer_msg_hello h = { .cluster_id = 7, .node_id = 2, .version = PEER_MSG_VERSION,
				    .client_address = { (const uint8_t *)"127.0.2.12:22070", 16 },
				    .resp_address = { (const uint8_t *)"[::1]:6379", 10 },
				    .cores = 12 };
	struct peer_msg_hello_reply r = { .ok = true, .node_id = 3, .version = 1,
					  .client_address = { (const uint8_t *)"h:1", 3 } };
	uint8_t long_addr[PEER_MSG_MAX_ADDRESS + 1];
	struct peer_msg_buf out;
	struct peer_msg_frame f;
	const uint8_t *payload;
	size_t len, at;

	(void)state;
	memset(long_addr, 'a', sizeof long_addr);
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_hello(&out, &h), 0);
	payload = payload_of(&out, 0, &len);
	assert_int_equal(peer_msg_decode(&f, payload, len, &limits, NULL, 0), 0);
	assert_int_equal(f.kind, PEER_MSG_HELLO);
	assert_int_equal(f.hello.node_id, 2);
	assert_int_equal(f.hello.client_address.len, 16);
	assert_memory_equal(f.hello.client_address.data, "127.0.2.12:22070", 16);
	assert_true(inside(f.hello.client_address.data, 16, payload, len));
	assert_int_equal(f.hello.resp_address.len, 10);
	assert_memory_equal(f.hello.resp_address.data, "[::1]:6379", 10);
	assert_int_equal(f.hello.cores, 12);

	at = out.len;
	assert_int_equal(peer_msg_encode_hello_reply(&out, &r), 0);
	payload = payload_of(&out, at, &len);
	assert_int_equal(peer_msg_decode(&f, payload, len, &limits, NULL, 0), 0);
	assert_int_equal(f.hello_reply.client_address.len, 3);
	assert_memory_equal(f.hello_reply.client_address.data, "h:1", 3);
	assert_int_equal(f.hello_reply.resp_address.len, 0);
	assert_non_null(f.hello_reply.resp_address.data);

	/* Too long: the sender refuses it, and so does a receiver. */
	h.client_address = (struct peer_msg_slice){ long_addr, sizeof long_addr };
	at = out.len;
	assert_int_equal(peer_msg_encode_hello(&out, &h), RKV_ETOOLARGE);
	assert_int_equal(out.len, at);
	h.client_address.len = PEER_MSG_MAX_ADDRESS;
	assert_int_equal(peer_msg_encode_hello(&out, &h), 0);
	payload = payload_of(&out, at, &len);
	assert_int_equal(peer_msg_decode(&f, payload, len, &limits, NULL, 0), 0);
	assert_int_equal(f.hello.client_address.len, PEER_MSG_MAX_ADDRESS);
	{
		/* Patch the length varint (300 = 0xac 0x02) to 301: the frame
		 * then holds 301 bytes of address if we drop the resp field. */
		uint8_t buf[512];
		size_t n = 0;

		buf[n++] = 0x0a; /* Envelope.hello, length below */
		buf[n++] = 0;
		buf[n++] = 0x10; /* node_id = 2 */
		buf[n++] = 2;
		buf[n++] = 0x28; /* version = 1 */
		buf[n++] = 1;
		buf[n++] = 0x3a; /* client_address, 301 bytes */
		buf[n++] = 0xad;
		buf[n++] = 0x02;
		memset(buf + n, 'a', 301);
		n += 301;
		/* The Envelope's length needs two bytes: rebuild with it. */
		{
			uint8_t frame[520];
			size_t body = n - 2, m = 0;

			frame[m++] = 0x0a;
			frame[m++] = (uint8_t)(body | 0x80);
			frame[m++] = (uint8_t)(body >> 7);
			memcpy(frame + m, buf + 2, body);
			m += body;
			assert_int_equal(peer_msg_decode(&f, frame, m, &limits, NULL, 0),
					 RKV_EINVAL);
		}
	}
	peer_msg_buf_free(&out);
}

static void test_chunk_round_trip(void **state)
{
	struct peer_msg_chunk c = {
		.group = 17, .index = 1ull << 40, .term = 5,
		.file = { (const uint8_t *)"000123.sst", 10 }, .offset = 1ull << 33,
		.data = { big, 65536 }, .crc32c = 0xdeadbeef /* ignored */, .last = true,
	};
	struct peer_msg_buf out;
	struct peer_msg_frame f;
	const uint8_t *payload;
	size_t len;

	(void)state;
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_chunk(&out, &limits, &c), 0);
	payload = payload_of(&out, 0, &len);
	assert_int_equal(peer_msg_decode(&f, payload, len, &limits, NULL, 0), 0);
	assert_int_equal(f.kind, PEER_MSG_SNAPSHOT_CHUNK);
	assert_int_equal(f.chunk.group, 17);
	assert_int_equal(f.chunk.index, c.index);
	assert_int_equal(f.chunk.term, 5);
	assert_int_equal(f.chunk.file.len, 10);
	assert_memory_equal(f.chunk.file.data, "000123.sst", 10);
	assert_int_equal(f.chunk.offset, c.offset);
	assert_int_equal(f.chunk.data.len, 65536);
	assert_memory_equal(f.chunk.data.data, big, 65536);
	assert_true(inside(f.chunk.data.data, 65536, payload, len));
	assert_int_equal(f.chunk.crc32c, crc32c(0, big, 65536));
	assert_true(f.chunk.last);

	/* An empty chunk (crc32c of nothing is 0: the field is left out). */
	out.len = 0;
	c.data.len = 0;
	c.last = false;
	assert_int_equal(peer_msg_encode_chunk(&out, &limits, &c), 0);
	payload = payload_of(&out, 0, &len);
	assert_int_equal(peer_msg_decode(&f, payload, len, &limits, NULL, 0), 0);
	assert_int_equal(f.chunk.data.len, 0);
	assert_non_null(f.chunk.data.data);
	assert_false(f.chunk.last);

	/* Names a receiver would refuse are refused by the sender. */
	out.len = 0;
	c.file = (struct peer_msg_slice){ (const uint8_t *)"../MANIFEST", 11 };
	assert_int_equal(peer_msg_encode_chunk(&out, &limits, &c), RKV_EINVAL);
	c.file = (struct peer_msg_slice){ (const uint8_t *)"..", 2 };
	assert_int_equal(peer_msg_encode_chunk(&out, &limits, &c), RKV_EINVAL);
	c.file = (struct peer_msg_slice){ (const uint8_t *)"", 0 };
	assert_int_equal(peer_msg_encode_chunk(&out, &limits, &c), RKV_EINVAL);
	c.file = (struct peer_msg_slice){ big, PEER_MSG_MAX_FILE_NAME + 1 };
	assert_int_equal(peer_msg_encode_chunk(&out, &limits, &c), RKV_ETOOLARGE);
	c.file = (struct peer_msg_slice){ (const uint8_t *)"a", 1 };
	c.data = (struct peer_msg_slice){ big, limits.max_data_bytes + 1 };
	assert_int_equal(peer_msg_encode_chunk(&out, &limits, &c), RKV_ETOOLARGE);
	assert_int_equal(out.len, 0);
	peer_msg_buf_free(&out);
}

static void test_chunk_crc_checked(void **state)
{
	struct peer_msg_chunk c = { .group = 1, .file = { (const uint8_t *)"x", 1 },
				    .data = { big, 1000 } };
	struct peer_msg_buf out;
	struct peer_msg_frame f;
	uint8_t *payload;
	size_t len;

	(void)state;
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_chunk(&out, &limits, &c), 0);
	payload = (uint8_t *)payload_of(&out, 0, &len);
	/* The data sits right before the 5 bytes of the crc32c field. */
	payload[len - 5 - 10] ^= 0x01;
	assert_int_equal(peer_msg_decode(&f, payload, len, &limits, NULL, 0),
			 RKV_ECORRUPT);
	assert_non_null(strstr(f.err, "crc32c"));
	peer_msg_buf_free(&out);
}

static void test_forward_round_trip(void **state)
{
	struct peer_msg_forward fw = { 77, 3, { big, 300 } };
	struct peer_msg_forward_reply fr = { 77, { big + 9, 4000 } };
	struct peer_msg_buf out;
	struct peer_msg_frame f;
	const uint8_t *payload;
	size_t len, at;

	(void)state;
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_forward(&out, &limits, &fw), 0);
	at = out.len;
	assert_int_equal(peer_msg_encode_forward_reply(&out, &limits, &fr), 0);
	payload = payload_of(&out, 0, &len);
	assert_int_equal(peer_msg_decode(&f, payload, len, &limits, NULL, 0), 0);
	assert_int_equal(f.kind, PEER_MSG_FORWARD);
	assert_int_equal(f.forward.forward_id, 77);
	assert_int_equal(f.forward.group, 3);
	assert_int_equal(f.forward.request.len, 300);
	assert_memory_equal(f.forward.request.data, big, 300);
	payload = payload_of(&out, at, &len);
	assert_int_equal(peer_msg_decode(&f, payload, len, &limits, NULL, 0), 0);
	assert_int_equal(f.kind, PEER_MSG_FORWARD_REPLY);
	assert_int_equal(f.forward_reply.forward_id, 77);
	assert_int_equal(f.forward_reply.response.len, 4000);
	assert_memory_equal(f.forward_reply.response.data, big + 9, 4000);
	assert_true(inside(f.forward_reply.response.data, 4000, payload, len));

	fw.request.len = limits.max_data_bytes + 1;
	fw.request.data = malloc(fw.request.len);
	assert_non_null(fw.request.data);
	at = out.len;
	assert_int_equal(peer_msg_encode_forward(&out, &limits, &fw), RKV_ETOOLARGE);
	assert_int_equal(out.len, at);
	free((void *)fw.request.data);
	peer_msg_buf_free(&out);
}

/* ---- the splitter -------------------------------------------------------- */

static void test_peek(void **state)
{
	struct raft_msg m = full_msg(RAFT_MSG_APPEND);
	struct peer_msg_item it = { 4, &m };
	struct peer_msg_buf out;
	uint8_t huge[4];
	size_t need = 0;

	(void)state;
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_batch(&out, &limits, &it, 1), 0);
	for (size_t n = 0; n < out.len; n++) {
		assert_int_equal(peer_msg_peek(out.data, n, &limits, &need), RKV_EAGAIN);
		assert_int_equal(need, n < PEER_MSG_HEADER_SIZE ? PEER_MSG_HEADER_SIZE
								: out.len);
	}
	assert_int_equal(peer_msg_peek(out.data, out.len, &limits, &need), 0);
	assert_int_equal(need, out.len);
	/* Over the limit: refused from the prefix alone. */
	huge[0] = huge[1] = huge[2] = 0xff;
	huge[3] = 0xff;
	assert_int_equal(peer_msg_peek(huge, 4, &limits, &need), RKV_ETOOLARGE);
	huge[0] = 1;
	huge[1] = 0;
	huge[2] = 0;
	huge[3] = 1; /* 16 MiB + 1 */
	assert_int_equal(peer_msg_peek(huge, 4, &limits, &need), RKV_ETOOLARGE);
	huge[0] = 0; /* exactly 16 MiB: allowed, more bytes needed */
	assert_int_equal(peer_msg_peek(huge, 4, &limits, &need), RKV_EAGAIN);
	assert_int_equal(need, (16u << 20) + 4);
	peer_msg_buf_free(&out);
}

/* ---- hand-made frames ---------------------------------------------------- */

/* A tiny protobuf writer for frames the encoder would never make. */
struct w {
	uint8_t b[1024];
	size_t n;
};

static void w_varint(struct w *w, uint64_t v)
{
	while (v >= 0x80) {
		w->b[w->n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	w->b[w->n++] = (uint8_t)v;
}

static void w_tag(struct w *w, uint32_t field, uint32_t wire)
{
	w_varint(w, (uint64_t)field << 3 | wire);
}

static void w_u64(struct w *w, uint32_t field, uint64_t v)
{
	w_tag(w, field, 0);
	w_varint(w, v);
}

static void w_bytes(struct w *w, uint32_t field, const void *p, size_t n)
{
	w_tag(w, field, 2);
	w_varint(w, n);
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void w_sub(struct w *w, uint32_t field, const struct w *sub)
{
	w_bytes(w, field, sub->b, sub->n);
}

/* A valid RaftMessage body: HEARTBEAT from 1 to 2, group 9. */
static void w_heartbeat(struct w *m)
{
	m->n = 0;
	w_u64(m, ringkv_peer_RaftMessage_group_tag, 9);
	w_u64(m, ringkv_peer_RaftMessage_type_tag, RAFT_MSG_HEARTBEAT);
	w_u64(m, ringkv_peer_RaftMessage_from_tag, 1);
	w_u64(m, ringkv_peer_RaftMessage_to_tag, 2);
}

/* Decodes an exact-size heap copy and reads every message: the first
 * non-zero code (1s from peer_msg_next are consumed). */
static int decode_all(const void *bytes, size_t n, const struct peer_msg_limits *l,
		      char *why, size_t whylen)
{
	uint8_t *copy = malloc(n ? n : 1);
	struct peer_msg_frame f;
	struct raft_msg m;
	uint64_t group;
	int rv;

	assert_non_null(copy);
	memcpy(copy, bytes, n);
	rv = peer_msg_decode(&f, copy, n, l, scratch, SCRATCH);
	if (rv == 0 && f.kind == PEER_MSG_RAFT) {
		while ((rv = peer_msg_next(&f, &group, &m)) == 1) {
			assert_true(inside(m.data, m.len, copy, n));
			for (uint32_t k = 0; k < m.n_entries; k++)
				assert_true(inside(m.entries[k].data,
						   m.entries[k].len, copy, n));
		}
	}
	if (rv != 0)
		assert_true(f.err[0] != '\0');
	if (why)
		snprintf(why, whylen, "%s", f.err);
	free(copy);
	return rv;
}

static void test_hand_made_valid(void **state)
{
	struct w m, e, env = { .n = 0 };
	uint8_t eight[8] = { 0 };

	(void)state;
	/* Unknown fields of every wire type, everywhere, are skipped. */
	w_heartbeat(&m);
	w_u64(&m, 99, 5);
	w_tag(&m, 100, 1);
	memcpy(m.b + m.n, eight, 8);
	m.n += 8;
	w_bytes(&m, 101, "xyz", 3);
	w_tag(&m, 2000, 5);
	memcpy(m.b + m.n, eight, 4);
	m.n += 4;
	e.n = 0;
	w_u64(&e, ringkv_peer_Entry_type_tag, RAFT_ENTRY_NOOP);
	w_u64(&e, 50, 1);
	w_sub(&m, ringkv_peer_RaftMessage_entries_tag, &e);
	w_u64(&env, 77, 1);
	w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
	w_bytes(&env, 78, "future", 6);
	w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
	assert_int_equal(decode_all(env.b, env.n, &limits, NULL, 0), 0);

	/* A repeated scalar: the last one wins (protobuf's rule); a
	 * non-minimal varint (5 as 0x85 0x00) is still 5. */
	w_heartbeat(&m);
	w_u64(&m, ringkv_peer_RaftMessage_term_tag, 3);
	w_tag(&m, ringkv_peer_RaftMessage_term_tag, 0);
	m.b[m.n++] = 0x85;
	m.b[m.n++] = 0x00;
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
	{
		struct peer_msg_frame f;
		struct raft_msg msg;
		uint64_t group;

		assert_int_equal(peer_msg_decode(&f, env.b, env.n, &limits, scratch,
						 SCRATCH), 0);
		assert_int_equal(peer_msg_next(&f, &group, &msg), 1);
		assert_int_equal(msg.term, 5);
		assert_int_equal(group, 9);
		assert_int_equal(msg.type, RAFT_MSG_HEARTBEAT);
	}
}

static void expect(const struct w *env, int code, const char *fragment)
{
	char why[128];

	assert_int_equal(decode_all(env->b, env->n, &limits, why, sizeof(why)), code);
	if (fragment != NULL && strstr(why, fragment) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", why, fragment);
}

static void test_hand_made_refused(void **state)
{
	struct w m, e, h, env;
	uint8_t bad_conf[RAFT_CONF_ENCODED_MAX];

	(void)state;
	/* Empty frame, unknown-only frame. */
	env.n = 0;
	expect(&env, RKV_EPROTO, "no known kind");
	w_u64(&env, 99, 1);
	expect(&env, RKV_EPROTO, "no known kind");

	/* Unknown message type, type 0 (absent), type past u32. */
	for (uint64_t t = 0; t < 3; t++) {
		uint64_t type = t == 0 ? 12 : t == 1 ? 0 : (1ull << 32) + 5;

		m.n = 0;
		w_u64(&m, ringkv_peer_RaftMessage_type_tag, type);
		w_u64(&m, ringkv_peer_RaftMessage_from_tag, 1);
		w_u64(&m, ringkv_peer_RaftMessage_to_tag, 2);
		env.n = 0;
		w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
		expect(&env, RKV_EINVAL, "unknown type");
	}

	/* from or to missing (node 0). */
	m.n = 0;
	w_u64(&m, ringkv_peer_RaftMessage_type_tag, RAFT_MSG_VOTE);
	w_u64(&m, ringkv_peer_RaftMessage_from_tag, 1);
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
	expect(&env, RKV_EINVAL, "node 0");

	/* A bool that is neither 0 nor 1. */
	w_heartbeat(&m);
	w_u64(&m, ringkv_peer_RaftMessage_reject_tag, 2);
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
	expect(&env, RKV_EINVAL, "out of range");

	/* Unknown entry type; entry without a type. */
	for (int t = 0; t < 2; t++) {
		w_heartbeat(&m);
		e.n = 0;
		w_u64(&e, ringkv_peer_Entry_term_tag, 1);
		if (t == 0)
			w_u64(&e, ringkv_peer_Entry_type_tag, 4);
		w_sub(&m, ringkv_peer_RaftMessage_entries_tag, &e);
		env.n = 0;
		w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
		expect(&env, RKV_EINVAL, "entry: unknown type");
	}

	/* Bad confs: a bad role, a duplicate id, a wrong length, empty. */
	for (int t = 0; t < 4; t++) {
		struct raft_conf c = conf3;
		size_t n;

		if (t == 1)
			c.servers[2].id = 1;
		n = raft_conf_encode(&c, bad_conf);
		if (t == 0)
			bad_conf[n - 4] = 7;
		if (t == 2)
			n--;
		if (t == 3)
			n = 0; /* empty bytes field written explicitly */
		w_heartbeat(&m);
		w_bytes(&m, ringkv_peer_RaftMessage_conf_tag, bad_conf, n);
		env.n = 0;
		w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
		expect(&env, RKV_EINVAL, "bad conf");
	}

	/* Wrong wire types for known fields. */
	w_heartbeat(&m);
	w_bytes(&m, ringkv_peer_RaftMessage_term_tag, "ab", 2);
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
	expect(&env, RKV_EPROTO, "field 7");
	w_heartbeat(&m);
	w_u64(&m, ringkv_peer_RaftMessage_entries_tag, 1);
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
	expect(&env, RKV_EPROTO, "field 14");
	env.n = 0;
	w_u64(&env, ringkv_peer_Envelope_raft_tag, 1);
	expect(&env, RKV_EPROTO, "envelope");

	/* Groups (wire types 3 and 4) and wire types 6 and 7. */
	for (uint32_t wt = 3; wt <= 7; wt++) {
		if (wt == 5)
			continue;
		w_heartbeat(&m);
		w_tag(&m, 60, wt);
		w_varint(&m, 0);
		env.n = 0;
		w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
		expect(&env, RKV_EPROTO, NULL);
	}

	/* A zero field number, a varint of 11 bytes, one past 64 bits. */
	w_heartbeat(&m);
	m.b[m.n++] = 0x00;
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
	expect(&env, RKV_EPROTO, "key");
	w_heartbeat(&m);
	w_tag(&m, ringkv_peer_RaftMessage_term_tag, 0);
	for (int i = 0; i < 10; i++)
		m.b[m.n++] = 0xff;
	m.b[m.n++] = 0x01;
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
	expect(&env, RKV_EPROTO, "field 7");
	w_heartbeat(&m);
	w_tag(&m, ringkv_peer_RaftMessage_term_tag, 0);
	for (int i = 0; i < 9; i++)
		m.b[m.n++] = 0xff;
	m.b[m.n++] = 0x02; /* bit 64 */
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
	expect(&env, RKV_EPROTO, "field 7");

	/* Kinds mixed, or one kind twice. */
	h.n = 0;
	w_u64(&h, ringkv_peer_Hello_node_id_tag, 1);
	w_u64(&h, ringkv_peer_Hello_version_tag, 1);
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_hello_tag, &h);
	expect(&env, 0, NULL);
	w_heartbeat(&m);
	w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
	expect(&env, RKV_EPROTO, "more than one");
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
	w_sub(&env, ringkv_peer_Envelope_hello_tag, &h);
	expect(&env, RKV_EPROTO, "more than one");
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_hello_tag, &h);
	w_sub(&env, ringkv_peer_Envelope_hello_tag, &h);
	expect(&env, RKV_EPROTO, "more than one");

	/* Hello: node 0, version 0, a core past u32. */
	h.n = 0;
	w_u64(&h, ringkv_peer_Hello_version_tag, 1);
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_hello_tag, &h);
	expect(&env, RKV_EINVAL, "node id 0");
	h.n = 0;
	w_u64(&h, ringkv_peer_Hello_node_id_tag, 1);
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_hello_tag, &h);
	expect(&env, RKV_EINVAL, "version 0");
	w_u64(&h, ringkv_peer_Hello_version_tag, 1);
	w_u64(&h, ringkv_peer_Hello_to_core_tag, 1ull << 32);
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_hello_tag, &h);
	expect(&env, RKV_EPROTO, "field 4");

	/* Snapshot chunk: a path in the name, a name with NUL, crc as varint. */
	h.n = 0;
	w_bytes(&h, ringkv_peer_SnapshotChunk_file_tag, "a/b", 3);
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_snapshot_chunk_tag, &h);
	expect(&env, RKV_EINVAL, "file name");
	h.n = 0;
	w_bytes(&h, ringkv_peer_SnapshotChunk_file_tag, "a\0b", 3);
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_snapshot_chunk_tag, &h);
	expect(&env, RKV_EINVAL, "file name");
	h.n = 0;
	w_bytes(&h, ringkv_peer_SnapshotChunk_file_tag, "ok", 2);
	w_u64(&h, ringkv_peer_SnapshotChunk_crc32c_tag, 0);
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_snapshot_chunk_tag, &h);
	expect(&env, RKV_EPROTO, "field 7");
	h.n = 0;
	w_bytes(&h, ringkv_peer_SnapshotChunk_file_tag, "ok", 2);
	w_u64(&h, ringkv_peer_SnapshotChunk_offset_tag, UINT64_MAX);
	w_bytes(&h, ringkv_peer_SnapshotChunk_data_tag, "z", 1);
	w_tag(&h, ringkv_peer_SnapshotChunk_crc32c_tag, 5);
	{
		uint32_t crc = crc32c(0, "z", 1);

		for (int i = 0; i < 4; i++)
			h.b[h.n++] = (uint8_t)(crc >> (8 * i));
	}
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_snapshot_chunk_tag, &h);
	expect(&env, RKV_EINVAL, "offset overflows");
}

/* Hand-made frames past the limits the encoder never writes. */
static void test_hand_made_too_large(void **state)
{
	static uint8_t frame[8192];
	struct peer_msg_limits small = limits;
	struct peer_msg_frame f;
	uint8_t name[PEER_MSG_MAX_FILE_NAME + 1];
	struct w *h = malloc(sizeof(*h)), *env = malloc(sizeof(*env));
	char why[128];
	size_t n;

	(void)state;
	assert_non_null(h);
	assert_non_null(env);
	/* A refusal reason over PEER_MSG_MAX_REASON: built in `frame` by hand
	 * (struct w is too small). Envelope field 2, HelloReply field 2. */
	n = 0;
	frame[n++] = (ringkv_peer_Envelope_hello_reply_tag << 3) | 2;
	frame[n++] = 0x84; /* body: 3 + 1025 = 1028 bytes */
	frame[n++] = 0x08;
	frame[n++] = (ringkv_peer_HelloReply_reason_tag << 3) | 2;
	frame[n++] = 0x81; /* 1025 */
	frame[n++] = 0x08;
	memset(frame + n, 'r', PEER_MSG_MAX_REASON + 1);
	n += PEER_MSG_MAX_REASON + 1;
	assert_int_equal(decode_all(frame, n, &limits, why, sizeof(why)), RKV_ETOOLARGE);
	assert_non_null(strstr(why, "reason"));
	frame[4] = 0x80; /* exactly 1024 bytes: accepted */
	frame[1] = 0x83;
	assert_int_equal(decode_all(frame, n - 1, &limits, NULL, 0), 0);

	/* A file name over PEER_MSG_MAX_FILE_NAME. */
	memset(name, 'n', sizeof(name));
	h->n = 0;
	w_bytes(h, ringkv_peer_SnapshotChunk_file_tag, name, sizeof(name));
	env->n = 0;
	w_sub(env, ringkv_peer_Envelope_snapshot_chunk_tag, h);
	assert_int_equal(decode_all(env->b, env->n, &limits, why, sizeof(why)),
			 RKV_ETOOLARGE);
	assert_non_null(strstr(why, "file name"));

	/* Chunk data, forwarded request and response over max_data_bytes. */
	small.max_data_bytes = 3;
	h->n = 0;
	w_bytes(h, ringkv_peer_SnapshotChunk_file_tag, "f", 1);
	w_bytes(h, ringkv_peer_SnapshotChunk_data_tag, "abcd", 4);
	env->n = 0;
	w_sub(env, ringkv_peer_Envelope_snapshot_chunk_tag, h);
	assert_int_equal(decode_all(env->b, env->n, &small, NULL, 0), RKV_ETOOLARGE);
	h->n = 0;
	w_bytes(h, ringkv_peer_Forward_request_tag, "abcd", 4);
	env->n = 0;
	w_sub(env, ringkv_peer_Envelope_forward_tag, h);
	assert_int_equal(decode_all(env->b, env->n, &small, NULL, 0), RKV_ETOOLARGE);
	assert_int_equal(decode_all(env->b, env->n, &limits, NULL, 0), 0);
	h->n = 0;
	w_bytes(h, ringkv_peer_ForwardReply_response_tag, "abcd", 4);
	env->n = 0;
	w_sub(env, ringkv_peer_Envelope_forward_reply_tag, h);
	assert_int_equal(decode_all(env->b, env->n, &small, NULL, 0), RKV_ETOOLARGE);
	assert_int_equal(decode_all(env->b, env->n, &limits, NULL, 0), 0);

	/* No bytes at all. */
	assert_int_equal(peer_msg_decode(&f, NULL, 0, &limits, NULL, 0), RKV_EPROTO);
	free(h);
	free(env);
}

/* ---- limits -------------------------------------------------------------- */

static void test_decode_limits(void **state)
{
	struct peer_msg_limits small = limits;
	struct peer_msg_buf out;
	struct raft_msg m = full_msg(RAFT_MSG_APPEND);
	struct peer_msg_item items[3] = { { 1, &m }, { 2, &m }, { 3, &m } };
	struct peer_msg_frame f;
	const uint8_t *payload;
	char why[128];
	size_t len;

	(void)state;
	peer_msg_buf_init(&out);
	m.n_entries = 5;
	assert_int_equal(peer_msg_encode_batch(&out, &limits, items, 3), 0);
	payload = payload_of(&out, 0, &len);
	assert_int_equal(decode_all(payload, len, &limits, NULL, 0), 0);

	small.max_msgs = 2;
	assert_int_equal(decode_all(payload, len, &small, why, sizeof(why)),
			 RKV_ETOOLARGE);
	assert_non_null(strstr(why, "messages"));
	small = limits;
	small.max_entries = 4;
	assert_int_equal(decode_all(payload, len, &small, why, sizeof(why)),
			 RKV_ETOOLARGE);
	assert_non_null(strstr(why, "entries"));
	/* The caller's scratch array is a cap too. */
	assert_int_equal(peer_msg_decode(&f, payload, len, &limits, scratch, 4), 0);
	{
		struct raft_msg got;
		uint64_t group;

		assert_int_equal(peer_msg_next(&f, &group, &got), RKV_ETOOLARGE);
		assert_int_equal(peer_msg_next(&f, &group, &got), RKV_ETOOLARGE);
	}
	small = limits;
	small.max_entry_bytes = 149999;
	assert_int_equal(decode_all(payload, len, &small, why, sizeof(why)),
			 RKV_ETOOLARGE);
	assert_non_null(strstr(why, "entry of 150000"));
	small = limits;
	small.max_data_bytes = 4999;
	assert_int_equal(decode_all(payload, len, &small, why, sizeof(why)),
			 RKV_ETOOLARGE);
	assert_non_null(strstr(why, "data of 5000"));
	small = limits;
	small.max_frame = (uint32_t)len - 1;
	assert_int_equal(decode_all(payload, len, &small, why, sizeof(why)),
			 RKV_ETOOLARGE);
	peer_msg_buf_free(&out);
}

static void test_encode_limits(void **state)
{
	struct peer_msg_limits small = limits;
	struct peer_msg_buf out;
	struct peer_msg_batch batch;
	struct raft_msg m = full_msg(RAFT_MSG_APPEND);
	struct raft_msg hb = { .type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2 };
	size_t one, before;

	(void)state;
	peer_msg_buf_init(&out);
	/* Per-message limits: refused even by an empty batch. */
	assert_int_equal(peer_msg_batch_begin(&out, &batch), 0);
	small.max_entries = 4;
	assert_int_equal(peer_msg_batch_add(&out, &batch, &small, 1, &m), RKV_ETOOLARGE);
	small = limits;
	small.max_entry_bytes = 150000 - 1;
	assert_int_equal(peer_msg_batch_add(&out, &batch, &small, 1, &m), RKV_ETOOLARGE);
	small = limits;
	small.max_data_bytes = 4999;
	assert_int_equal(peer_msg_batch_add(&out, &batch, &small, 1, &m), RKV_ETOOLARGE);
	assert_int_equal(peer_msg_batch_bytes(&out, &batch), 0);
	assert_int_equal(peer_msg_batch_end(&out, &batch), 0);
	assert_int_equal(out.len, 0); /* an empty batch leaves nothing */

	/* Frame limits: a full batch refuses the next message, unchanged. */
	assert_int_equal(peer_msg_batch_begin(&out, &batch), 0);
	assert_int_equal(peer_msg_batch_add(&out, &batch, &limits, 1, &hb), 0);
	one = peer_msg_batch_bytes(&out, &batch);
	small = limits;
	small.max_frame = (uint32_t)(2 * one);
	assert_int_equal(peer_msg_batch_add(&out, &batch, &small, 1, &hb), 0);
	before = out.len;
	assert_int_equal(peer_msg_batch_add(&out, &batch, &small, 1, &hb), RKV_ETOOLARGE);
	assert_int_equal(out.len, before);
	small = limits;
	small.max_msgs = 2;
	assert_int_equal(peer_msg_batch_add(&out, &batch, &small, 1, &hb), RKV_ETOOLARGE);
	assert_int_equal(peer_msg_batch_end(&out, &batch), out.len);
	assert_int_equal(out.len, PEER_MSG_HEADER_SIZE + 2 * one);
	{
		const uint8_t *payload;
		size_t len;
		uint64_t groups[2] = { 1, 1 };
		struct raft_msg want[2] = { hb, hb };

		payload = payload_of(&out, 0, &len);
		check_batch(payload, len, groups, want, 2);
	}

	/* peer_msg_encode_batch leaves nothing behind when it fails. */
	{
		struct peer_msg_item items[3] = { { 1, &hb }, { 2, &hb }, { 3, &hb } };

		before = out.len;
		small = limits;
		small.max_msgs = 2;
		assert_int_equal(peer_msg_encode_batch(&out, &small, items, 3),
				 RKV_ETOOLARGE);
		assert_int_equal(out.len, before);
	}
	peer_msg_buf_free(&out);
}

/* A steady sender reuses its buffer: no allocation once at its peak. */
static void test_buffer_reuse(void **state)
{
	struct raft_msg m = full_msg(RAFT_MSG_APPEND);
	struct peer_msg_item items[4] = { { 1, &m }, { 2, &m }, { 3, &m }, { 4, &m } };
	struct peer_msg_buf out;
	uint8_t *data;
	size_t cap;

	(void)state;
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_batch(&out, &limits, items, 4), 0);
	data = out.data;
	cap = out.cap;
	assert_true(cap >= out.len && cap < 4 * out.len);
	for (int i = 0; i < 100; i++) {
		out.len = 0;
		assert_int_equal(peer_msg_encode_batch(&out, &limits, items, 4), 0);
		assert_ptr_equal(out.data, data);
		assert_int_equal(out.cap, cap);
	}
	peer_msg_buf_free(&out);
	assert_null(out.data);
	assert_int_equal(out.cap, 0);
}

/* ---- damaged frames ------------------------------------------------------ */

/* Every proper prefix of a one-message frame is refused. */
static void test_truncated_every_byte(void **state)
{
	struct raft_msg m = full_msg(RAFT_MSG_SNAPSHOT);
	struct peer_msg_item it = { 12, &m };
	struct peer_msg_buf out;
	const uint8_t *payload;
	size_t len;

	(void)state;
	m.entries = entries;
	m.n_entries = 3;
	m.len = 10;
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_batch(&out, &limits, &it, 1), 0);
	payload = payload_of(&out, 0, &len);
	for (size_t n = 0; n < len; n++) {
		int rv = decode_all(payload, n, &limits, NULL, 0);

		assert_int_equal(rv, RKV_EPROTO);
	}
	assert_int_equal(decode_all(payload, len, &limits, NULL, 0), 0);
	peer_msg_buf_free(&out);
}

/* Truncating a batch: refused, or a shorter batch of the first messages. */
static void test_truncated_batch(void **state)
{
	struct raft_msg want[3] = { full_msg(RAFT_MSG_VOTE), full_msg(RAFT_MSG_APPEND),
				    full_msg(RAFT_MSG_HEARTBEAT_RESP) };
	struct peer_msg_item items[3] = { { 1, &want[0] }, { 2, &want[1] },
					   { 3, &want[2] } };
	struct peer_msg_buf out;
	const uint8_t *payload;
	size_t len, whole = 0;

	(void)state;
	for (int i = 0; i < 3; i++) {
		want[i].n_entries = 2;
		want[i].len = 3;
	}
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_batch(&out, &limits, items, 3), 0);
	payload = payload_of(&out, 0, &len);
	for (size_t n = 0; n < len; n++) {
		struct peer_msg_frame f;
		struct raft_msg m;
		uint64_t group;
		uint32_t got = 0;
		int rv = peer_msg_decode(&f, payload, n, &limits, scratch, SCRATCH);

		if (rv != 0) {
			assert_int_equal(rv, RKV_EPROTO);
			continue;
		}
		whole++;
		assert_true(f.n_msgs < 3);
		while ((rv = peer_msg_next(&f, &group, &m)) == 1) {
			assert_int_equal(group, got + 1);
			assert_msg_eq(&m, &want[got]);
			got++;
		}
		assert_int_equal(rv, 0);
		assert_int_equal(got, f.n_msgs);
	}
	assert_int_equal(whole, 2); /* cut after the first and the second */
	peer_msg_buf_free(&out);
}

/* Every byte flipped (each bit, and all bits): documented codes only,
 * every slice inside the copy (checked in decode_all; ASan checks reads). */
static void test_flipped_bytes(void **state)
{
	struct raft_msg m = full_msg(RAFT_MSG_SNAPSHOT);
	struct raft_msg a = full_msg(RAFT_MSG_APPEND);
	struct peer_msg_item items[2] = { { 300, &m }, { 5, &a } };
	struct peer_msg_chunk c = { .group = 1, .file = { (const uint8_t *)"f.sst", 5 },
				    .data = { big, 40 }, .last = true };
	struct peer_msg_hello h = { .cluster_id = 1, .node_id = 2, .from_core = 3, .to_core = 4, .version = 1, .to_node_id = 2 };
	struct peer_msg_buf out;
	uint8_t *copy;
	size_t at[3], n_ok = 0;

	(void)state;
	m.n_entries = 3;
	m.len = 20;
	a.n_entries = 3;
	a.len = 0;
	a.conf = NULL;
	peer_msg_buf_init(&out);
	at[0] = out.len;
	assert_int_equal(peer_msg_encode_batch(&out, &limits, items, 2), 0);
	at[1] = out.len;
	assert_int_equal(peer_msg_encode_chunk(&out, &limits, &c), 0);
	at[2] = out.len;
	assert_int_equal(peer_msg_encode_hello(&out, &h), 0);
	for (int k = 0; k < 3; k++) {
		const uint8_t *payload;
		size_t len;

		payload = payload_of(&out, at[k], &len);
		copy = malloc(len);
		assert_non_null(copy);
		for (size_t i = 0; i < len; i++) {
			for (int bit = 0; bit <= 8; bit++) {
				uint8_t flip = bit == 8 ? 0xff : (uint8_t)(1u << bit);
				int rv;

				memcpy(copy, payload, len);
				copy[i] ^= flip;
				rv = decode_all(copy, len, &limits, NULL, 0);
				assert_true(rv == 0 || rv == RKV_EPROTO ||
					    rv == RKV_EINVAL || rv == RKV_ETOOLARGE ||
					    rv == RKV_ECORRUPT);
				n_ok += rv == 0;
			}
		}
		free(copy);
	}
	/* Some flips land in values (terms, data bytes): still valid. */
	assert_true(n_ok > 0);
	peer_msg_buf_free(&out);
}

/* ---- conformance with nanopb's reading of proto/peer.proto ------------- */

struct nb_bytes {
	const void *data;
	size_t len;
};

static bool nb_put_bytes(pb_ostream_t *s, const pb_field_t *field, void *const *arg)
{
	const struct nb_bytes *b = *arg;

	if (b->len == 0)
		return true;
	return pb_encode_tag_for_field(s, field) && pb_encode_string(s, b->data, b->len);
}

static bool nb_put_entries(pb_ostream_t *s, const pb_field_t *field, void *const *arg)
{
	const struct raft_msg *m = *arg;

	for (uint32_t i = 0; i < m->n_entries; i++) {
		struct nb_bytes data = { m->entries[i].data, m->entries[i].len };
		ringkv_peer_Entry e = ringkv_peer_Entry_init_zero;

		e.term = m->entries[i].term;
		e.type = (ringkv_peer_EntryType)m->entries[i].type;
		e.data.funcs.encode = nb_put_bytes;
		e.data.arg = &data;
		if (!pb_encode_tag_for_field(s, field) ||
		    !pb_encode_submessage(s, ringkv_peer_Entry_fields, &e))
			return false;
	}
	return true;
}

static bool nb_put_msgs(pb_ostream_t *s, const pb_field_t *field, void *const *arg)
{
	const struct raft_msg *m = *arg;
	struct nb_bytes data = { m->data, m->len }, conf = { conf_bytes, conf_len };
	ringkv_peer_RaftMessage rm = ringkv_peer_RaftMessage_init_zero;

	rm.group = 4242;
	rm.type = (ringkv_peer_MessageType)m->type;
	rm.reject = m->reject;
	rm.done = m->done;
	rm.from = m->from;
	rm.to = m->to;
	rm.term = m->term;
	rm.index = m->index;
	rm.log_term = m->log_term;
	rm.commit = m->commit;
	rm.hint = m->hint;
	rm.context = m->context;
	rm.offset = m->offset;
	rm.entries.funcs.encode = nb_put_entries;
	rm.entries.arg = (void *)m;
	rm.data.funcs.encode = nb_put_bytes;
	rm.data.arg = &data;
	rm.conf.funcs.encode = nb_put_bytes;
	rm.conf.arg = &conf;
	return pb_encode_tag_for_field(s, field) &&
	       pb_encode_submessage(s, ringkv_peer_RaftMessage_fields, &rm);
}

/* nanopb writes, peer_msg reads. */
static void test_nanopb_encodes_we_decode(void **state)
{
	static uint8_t buf[300000];
	struct raft_msg m = full_msg(RAFT_MSG_SNAPSHOT), got;
	ringkv_peer_Envelope env = ringkv_peer_Envelope_init_zero;
	struct peer_msg_frame f;
	pb_ostream_t s;
	uint64_t group;

	(void)state;
	env.raft.funcs.encode = nb_put_msgs;
	env.raft.arg = &m;
	s = pb_ostream_from_buffer(buf, sizeof(buf));
	assert_true(pb_encode(&s, ringkv_peer_Envelope_fields, &env));
	assert_int_equal(peer_msg_decode(&f, buf, s.bytes_written, &limits, scratch,
					 SCRATCH), 0);
	assert_int_equal(f.kind, PEER_MSG_RAFT);
	assert_int_equal(f.n_msgs, 1);
	assert_int_equal(peer_msg_next(&f, &group, &got), 1);
	assert_int_equal(group, 4242);
	assert_msg_eq(&got, &m);

	memset(&env, 0, sizeof(env));
	env.which_body = ringkv_peer_Envelope_hello_tag;
	env.body.hello = (ringkv_peer_Hello){ .cluster_id = 11, .node_id = 12, .from_core = 13,
					      .to_core = 14, .version = 1, .to_node_id = 15 };
	s = pb_ostream_from_buffer(buf, sizeof(buf));
	assert_true(pb_encode(&s, ringkv_peer_Envelope_fields, &env));
	assert_int_equal(peer_msg_decode(&f, buf, s.bytes_written, &limits, NULL, 0), 0);
	assert_int_equal(f.kind, PEER_MSG_HELLO);
	assert_int_equal(f.hello.cluster_id, 11);
	assert_int_equal(f.hello.node_id, 12);
	assert_int_equal(f.hello.from_core, 13);
	assert_int_equal(f.hello.to_core, 14);
	assert_int_equal(f.hello.version, 1);
	assert_int_equal(f.hello.to_node_id, 15);
}

struct nb_seen {
	ringkv_peer_RaftMessage msgs[4];
	uint32_t n_msgs;
	uint32_t n_entries[4];
	uint64_t entry_bytes[4];
	uint64_t data_len[4];
	uint64_t conf_len[4];
};

static bool nb_get_len(pb_istream_t *s, const pb_field_t *field, void **arg)
{
	uint64_t *len = *arg;

	(void)field;
	*len += s->bytes_left;
	return pb_read(s, NULL, s->bytes_left);
}

static bool nb_get_entry(pb_istream_t *s, const pb_field_t *field, void **arg)
{
	struct nb_seen *seen = *arg;
	uint32_t i = seen->n_msgs;
	ringkv_peer_Entry e = ringkv_peer_Entry_init_zero;

	(void)field;
	e.data.funcs.decode = nb_get_len;
	e.data.arg = &seen->entry_bytes[i];
	if (!pb_decode(s, ringkv_peer_Entry_fields, &e))
		return false;
	seen->n_entries[i]++;
	return true;
}

static bool nb_get_msg(pb_istream_t *s, const pb_field_t *field, void **arg)
{
	struct nb_seen *seen = *arg;
	uint32_t i = seen->n_msgs;
	ringkv_peer_RaftMessage *rm = &seen->msgs[i];

	(void)field;
	if (i >= 4)
		return false;
	*rm = (ringkv_peer_RaftMessage)ringkv_peer_RaftMessage_init_zero;
	rm->entries.funcs.decode = nb_get_entry;
	rm->entries.arg = seen;
	rm->data.funcs.decode = nb_get_len;
	rm->data.arg = &seen->data_len[i];
	rm->conf.funcs.decode = nb_get_len;
	rm->conf.arg = &seen->conf_len[i];
	if (!pb_decode(s, ringkv_peer_RaftMessage_fields, rm))
		return false;
	seen->n_msgs++;
	return true;
}

/* peer_msg writes, nanopb reads. */
static void test_we_encode_nanopb_decodes(void **state)
{
	struct raft_msg m = full_msg(RAFT_MSG_APPEND);
	struct raft_msg hb = { .type = RAFT_MSG_HEARTBEAT_RESP, .from = 3, .to = 1,
			       .context = 9 };
	struct peer_msg_item items[2] = { { 77, &m }, { 78, &hb } };
	struct peer_msg_hello h = { .cluster_id = 1ull << 60, .node_id = 5, .from_core = 6, .to_core = 7, .version = 1, .to_node_id = 8 };
	static struct nb_seen seen;
	ringkv_peer_Envelope env;
	struct peer_msg_buf out;
	const uint8_t *payload;
	pb_istream_t s;
	size_t len, at;
	uint64_t bytes = 0;

	(void)state;
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_batch(&out, &limits, items, 2), 0);
	at = out.len;
	assert_int_equal(peer_msg_encode_hello(&out, &h), 0);

	payload = payload_of(&out, 0, &len);
	memset(&seen, 0, sizeof(seen));
	memset(&env, 0, sizeof(env));
	env.raft.funcs.decode = nb_get_msg;
	env.raft.arg = &seen;
	s = pb_istream_from_buffer(payload, len);
	assert_true(pb_decode(&s, ringkv_peer_Envelope_fields, &env));
	assert_int_equal(env.which_body, 0);
	assert_int_equal(seen.n_msgs, 2);
	assert_int_equal(seen.msgs[0].group, 77);
	assert_int_equal(seen.msgs[0].type, RAFT_MSG_APPEND);
	assert_true(seen.msgs[0].reject && seen.msgs[0].done);
	assert_int_equal(seen.msgs[0].from, m.from);
	assert_int_equal(seen.msgs[0].to, m.to);
	assert_int_equal(seen.msgs[0].term, m.term);
	assert_int_equal(seen.msgs[0].index, m.index);
	assert_int_equal(seen.msgs[0].log_term, m.log_term);
	assert_int_equal(seen.msgs[0].commit, m.commit);
	assert_int_equal(seen.msgs[0].hint, m.hint);
	assert_int_equal(seen.msgs[0].context, m.context);
	assert_int_equal(seen.msgs[0].offset, m.offset);
	assert_int_equal(seen.n_entries[0], 5);
	for (int i = 0; i < 5; i++)
		bytes += entries[i].len;
	assert_int_equal(seen.entry_bytes[0], bytes);
	assert_int_equal(seen.data_len[0], 5000);
	assert_int_equal(seen.conf_len[0], conf_len);
	assert_int_equal(seen.msgs[1].group, 78);
	assert_int_equal(seen.msgs[1].type, RAFT_MSG_HEARTBEAT_RESP);
	assert_int_equal(seen.msgs[1].context, 9);
	assert_int_equal(seen.n_entries[1], 0);
	assert_int_equal(seen.conf_len[1], 0);

	payload = payload_of(&out, at, &len);
	memset(&env, 0, sizeof(env));
	s = pb_istream_from_buffer(payload, len);
	assert_true(pb_decode(&s, ringkv_peer_Envelope_fields, &env));
	assert_int_equal(env.which_body, ringkv_peer_Envelope_hello_tag);
	assert_int_equal(env.body.hello.cluster_id, h.cluster_id);
	assert_int_equal(env.body.hello.node_id, 5);
	assert_int_equal(env.body.hello.from_core, 6);
	assert_int_equal(env.body.hello.to_core, 7);
	assert_int_equal(env.body.hello.version, 1);
	assert_int_equal(env.body.hello.to_node_id, 8);
	peer_msg_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limits_default),
		cmocka_unit_test(test_every_type_round_trip),
		cmocka_unit_test(test_varint_edges),
		cmocka_unit_test(test_batch_many_groups),
		cmocka_unit_test(test_frames_back_to_back),
		cmocka_unit_test(test_decode_one),
		cmocka_unit_test(test_hello_round_trip),
		cmocka_unit_test(test_hello_addresses),
		cmocka_unit_test(test_chunk_round_trip),
		cmocka_unit_test(test_chunk_crc_checked),
		cmocka_unit_test(test_forward_round_trip),
		cmocka_unit_test(test_peek),
		cmocka_unit_test(test_hand_made_valid),
		cmocka_unit_test(test_hand_made_refused),
		cmocka_unit_test(test_hand_made_too_large),
		cmocka_unit_test(test_decode_limits),
		cmocka_unit_test(test_encode_limits),
		cmocka_unit_test(test_buffer_reuse),
		cmocka_unit_test(test_truncated_every_byte),
		cmocka_unit_test(test_truncated_batch),
		cmocka_unit_test(test_flipped_bytes),
		cmocka_unit_test(test_nanopb_encodes_we_decode),
		cmocka_unit_test(test_we_encode_nanopb_decodes),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
