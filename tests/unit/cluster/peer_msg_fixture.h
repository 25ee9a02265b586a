/*
 * Fixtures shared by the tests of cluster/peer_msg.c (test_peer_msg*.c):
 * default limits, pattern bytes, a 3-server conf, five entries of every
 * type with terms and lengths at varint edges, a message with every field
 * set, and the checks that a decoded message equals the one encoded and
 * points into the received bytes (zero copy). Call peer_msg_fixture_setup
 * as the group setup before any of it.
 */
#ifndef RINGKV_TESTS_PEER_MSG_FIXTURE_H
#define RINGKV_TESTS_PEER_MSG_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/peer_msg.h"

#define SCRATCH 64

extern struct peer_msg_limits limits;  /* peer_msg_limits_default */
extern struct raft_entry scratch[SCRATCH];
extern uint8_t big[200000];             /* pattern bytes for entry and chunk data */
extern uint8_t conf_bytes[RAFT_CONF_ENCODED_MAX];
extern size_t conf_len;
extern struct raft_conf conf3;          /* voters 1 and 2, learner 300 */
extern struct raft_entry entries[5];

/* cmocka group setup: fills the fixtures above. */
int peer_msg_fixture_setup(void **state);

/* A message of `type` with every field of struct raft_msg set. */
struct raft_msg full_msg(uint32_t type);

/* Every field of a equals b's (entries' and data's bytes compared). */
void assert_msg_eq(const struct raft_msg *a, const struct raft_msg *b);

/* Whether [p, p + n) lies inside [base, base + len). */
bool inside(const void *p, size_t n, const uint8_t *base, size_t len);

/* The frame at out->data + at: peeks it and returns its payload. */
const uint8_t *payload_of(const struct peer_msg_buf *out, size_t at, size_t *len);

/* Decodes a whole Raft frame, checks it against want[] and zero copy. */
void check_batch(const uint8_t *payload, size_t len, const uint64_t *groups,
		 const struct raft_msg *want, size_t n);

/* Decodes an exact-size heap copy and reads every message: the first
 * non-zero code (1s from peer_msg_next are consumed); the decoder's
 * reason goes to why (if not NULL). */
int decode_all(const void *bytes, size_t n, const struct peer_msg_limits *l, char *why,
	       size_t whylen);

#endif
