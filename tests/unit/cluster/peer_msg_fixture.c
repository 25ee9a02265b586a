/* Fixtures shared by the tests of cluster/peer_msg.c; see peer_msg_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "peer_msg_fixture.h"

struct peer_msg_limits limits;
struct raft_entry scratch[SCRATCH];
uint8_t big[200000];       /* pattern bytes for entry and chunk data */
uint8_t conf_bytes[RAFT_CONF_ENCODED_MAX];
size_t conf_len;
struct raft_conf conf3;
struct raft_entry entries[5];

int peer_msg_fixture_setup(void **state)
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

struct raft_msg full_msg(uint32_t type)
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

void assert_msg_eq(const struct raft_msg *a, const struct raft_msg *b)
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

bool inside(const void *p, size_t n, const uint8_t *base, size_t len)
{
	const uint8_t *q = p;

	return q != NULL && q >= base && n <= len && q <= base + len - n;
}

const uint8_t *payload_of(const struct peer_msg_buf *out, size_t at, size_t *len)
{
	size_t frame_len = 0;

	assert_int_equal(peer_msg_peek(out->data + at, out->len - at, &limits,
				       &frame_len), 0);
	*len = frame_len - PEER_MSG_HEADER_SIZE;
	return out->data + at + PEER_MSG_HEADER_SIZE;
}

void check_batch(const uint8_t *payload, size_t len, const uint64_t *groups,
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

int decode_all(const void *bytes, size_t n, const struct peer_msg_limits *l, char *why,
	       size_t whylen)
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
