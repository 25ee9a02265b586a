/*
 * Tests of cluster/peer_msg.c, round trips: every Raft message type with
 * every field set, varint edges, batches of many groups, frames back to
 * back, one message's own bytes, and every other frame kind (hello, chunk,
 * forward), each decoded zero copy; the splitter (peer_msg_peek). Refusals
 * are in test_peer_msg_refused.c, limits in test_peer_msg_limits.c, the
 * bytes against nanopb in test_peer_msg_nanopb.c.
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

#include "core/errors.h"
#include "peer_msg_fixture.h"
#include "shard/crc32c.h"

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
				    .cores = 12, .slot_function = 2,
				    .data_dir_id = 0xfedcba9876543210ull, .data_dir_new = true,
				    .boot_id = 0x8000000000000001ull };
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
	assert_int_equal(f.hello.slot_function, 2);
	/* The data dir's creation id and "first start on it" (fields 11-12,
	 * cluster/replica_wiped.c), at the top of the u64 range. */
	assert_true(f.hello.data_dir_id == 0xfedcba9876543210ull);
	assert_true(f.hello.data_dir_new);
	/* The process's boot id (field 13, snapshot_send.c's stale requests). */
	assert_true(f.hello.boot_id == 0x8000000000000001ull);

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
		.stream = UINT64_MAX, .seq = 300,
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
	assert_true(f.chunk.stream == UINT64_MAX);
	assert_int_equal(f.chunk.seq, 300);

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
	};

	return cmocka_run_group_tests(tests, peer_msg_fixture_setup, NULL);
}
