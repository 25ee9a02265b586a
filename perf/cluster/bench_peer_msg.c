/*
 * Micro-benchmark of the peer codec (cluster/peer_msg.c): nanoseconds per
 * Raft message to encode a batch frame and to decode it again (every field
 * and entry read, zero copy), for the replication case (64 APPENDs of 16
 * entries of 100 bytes, one per group) and the idle-cluster case (64
 * HEARTBEATs). The same batches are also coded with nanopb's generic
 * pb_encode/pb_decode and the generated descriptors of proto/peer.proto,
 * the way proto/frame.c codes client frames, to show what the hand-written
 * codec saves. Every decode is checked (message count and a checksum of the
 * fields), so a broken codec cannot report a number.
 *
 * usage: bench_peer_msg [rounds per trial, default 20000]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "cluster/peer_msg.h"
#include "peer.pb.h"

#define BATCH 64
#define ENTRIES 16
#define ENTRY_BYTES 100

static struct raft_entry entries[ENTRIES];
static uint8_t entry_data[ENTRIES][ENTRY_BYTES];
static struct raft_msg msgs[BATCH];
static struct peer_msg_limits limits;
static struct raft_entry scratch[ENTRIES];

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* What every decoder must agree on: a sum over the fields read. */
static uint64_t want_sum;

static uint64_t msg_sum(uint64_t group, const struct raft_msg *m)
{
	uint64_t s = group + m->type + m->from + m->to + m->term + m->index +
		     m->log_term + m->commit + m->n_entries;

	for (uint32_t i = 0; i < m->n_entries; i++)
		s += m->entries[i].term + m->entries[i].len +
		     ((const uint8_t *)m->entries[i].data)[m->entries[i].len - 1];
	return s;
}

static void make_batch(bool append)
{
	for (uint32_t i = 0; i < ENTRIES; i++) {
		memset(entry_data[i], (int)(i + 1), ENTRY_BYTES);
		entries[i] = (struct raft_entry){ 3, RAFT_ENTRY_NORMAL, ENTRY_BYTES,
						  entry_data[i] };
	}
	want_sum = 0;
	for (uint32_t g = 0; g < BATCH; g++) {
		struct raft_msg *m = &msgs[g];

		memset(m, 0, sizeof(*m));
		m->type = append ? RAFT_MSG_APPEND : RAFT_MSG_HEARTBEAT;
		m->from = 1;
		m->to = 2;
		m->term = 3;
		m->commit = 100000 + g;
		if (append) {
			m->index = 100000 + g;
			m->log_term = 3;
			m->entries = entries;
			m->n_entries = ENTRIES;
		}
		want_sum += msg_sum(1000 + g, m);
	}
}

/* ---- peer_msg ------------------------------------------------------------ */

static void encode_ours(struct peer_msg_buf *out)
{
	struct peer_msg_batch batch;

	out->len = 0;
	if (peer_msg_batch_begin(out, &batch) != 0)
		abort();
	for (uint32_t g = 0; g < BATCH; g++)
		if (peer_msg_batch_add(out, &batch, &limits, 1000 + g, &msgs[g]) != 0)
			abort();
	peer_msg_batch_end(out, &batch);
}

static uint64_t decode_ours(const struct peer_msg_buf *in)
{
	struct peer_msg_frame f;
	struct raft_msg m;
	uint64_t group, sum = 0;
	uint32_t n = 0;

	if (peer_msg_decode(&f, in->data + PEER_MSG_HEADER_SIZE,
			    in->len - PEER_MSG_HEADER_SIZE, &limits, scratch,
			    ENTRIES) != 0)
		abort();
	while (peer_msg_next(&f, &group, &m) == 1) {
		sum += msg_sum(group, &m);
		n++;
	}
	if (n != BATCH)
		abort();
	return sum;
}

/* ---- nanopb, for comparison ---------------------------------------------- */

struct nb_bytes {
	const void *data;
	size_t len;
};

static bool nb_put_bytes(pb_ostream_t *s, const pb_field_t *field, void *const *arg)
{
	const struct raft_entry *e = *arg;

	return pb_encode_tag_for_field(s, field) && pb_encode_string(s, e->data, e->len);
}

static bool nb_put_entries(pb_ostream_t *s, const pb_field_t *field, void *const *arg)
{
	const struct raft_msg *m = *arg;

	for (uint32_t i = 0; i < m->n_entries; i++) {
		ringkv_peer_Entry e = ringkv_peer_Entry_init_zero;

		e.term = m->entries[i].term;
		e.type = (ringkv_peer_EntryType)m->entries[i].type;
		e.data.funcs.encode = nb_put_bytes;
		e.data.arg = (void *)&m->entries[i];
		if (!pb_encode_tag_for_field(s, field) ||
		    !pb_encode_submessage(s, ringkv_peer_Entry_fields, &e))
			return false;
	}
	return true;
}

static bool nb_put_msgs(pb_ostream_t *s, const pb_field_t *field, void *const *arg)
{
	(void)arg;
	for (uint32_t g = 0; g < BATCH; g++) {
		const struct raft_msg *m = &msgs[g];
		ringkv_peer_RaftMessage rm = ringkv_peer_RaftMessage_init_zero;

		rm.group = 1000 + g;
		rm.type = (ringkv_peer_MessageType)m->type;
		rm.from = m->from;
		rm.to = m->to;
		rm.term = m->term;
		rm.index = m->index;
		rm.log_term = m->log_term;
		rm.commit = m->commit;
		rm.entries.funcs.encode = nb_put_entries;
		rm.entries.arg = (void *)m;
		if (!pb_encode_tag_for_field(s, field) ||
		    !pb_encode_submessage(s, ringkv_peer_RaftMessage_fields, &rm))
			return false;
	}
	return true;
}

static void encode_nanopb(struct peer_msg_buf *out)
{
	ringkv_peer_Envelope env = ringkv_peer_Envelope_init_zero;
	pb_ostream_t s;

	env.raft.funcs.encode = nb_put_msgs;
	s = pb_ostream_from_buffer(out->data + PEER_MSG_HEADER_SIZE,
				   out->cap - PEER_MSG_HEADER_SIZE);
	if (!pb_encode(&s, ringkv_peer_Envelope_fields, &env))
		abort();
	out->len = PEER_MSG_HEADER_SIZE + s.bytes_written;
}

struct nb_state {
	struct raft_msg m;
	uint64_t sum;
	uint32_t n;
};

/* Zero copy as in proto/frame.c: the data slice points into the buffer. */
static bool nb_get_data(pb_istream_t *s, const pb_field_t *field, void **arg)
{
	struct raft_entry *e = *arg;

	(void)field;
	e->data = (void *)(uintptr_t)s->state;
	e->len = (uint32_t)s->bytes_left;
	return pb_read(s, NULL, s->bytes_left);
}

static bool nb_get_entry(pb_istream_t *s, const pb_field_t *field, void **arg)
{
	struct nb_state *st = *arg;
	struct raft_entry *e = &scratch[st->m.n_entries];
	ringkv_peer_Entry pe;

	(void)field;
	if (st->m.n_entries >= ENTRIES)
		return false;
	pe.data.funcs.decode = nb_get_data;
	pe.data.arg = e;
	pe.term = 0;
	pe.type = 0;
	if (!pb_decode_ex(s, ringkv_peer_Entry_fields, &pe, PB_DECODE_NOINIT))
		return false;
	e->term = pe.term;
	e->type = (uint32_t)pe.type;
	st->m.n_entries++;
	return true;
}

static bool nb_get_msg(pb_istream_t *s, const pb_field_t *field, void **arg)
{
	struct nb_state *st = *arg;
	ringkv_peer_RaftMessage rm = ringkv_peer_RaftMessage_init_zero;

	(void)field;
	memset(&st->m, 0, sizeof(st->m));
	rm.entries.funcs.decode = nb_get_entry;
	rm.entries.arg = st;
	if (!pb_decode_ex(s, ringkv_peer_RaftMessage_fields, &rm, PB_DECODE_NOINIT))
		return false;
	st->m.type = (uint32_t)rm.type;
	st->m.from = rm.from;
	st->m.to = rm.to;
	st->m.term = rm.term;
	st->m.index = rm.index;
	st->m.log_term = rm.log_term;
	st->m.commit = rm.commit;
	st->m.entries = scratch;
	st->sum += msg_sum(rm.group, &st->m);
	st->n++;
	return true;
}

static uint64_t decode_nanopb(const struct peer_msg_buf *in)
{
	ringkv_peer_Envelope env = ringkv_peer_Envelope_init_zero;
	struct nb_state st = { .sum = 0, .n = 0 };
	pb_istream_t s;

	env.raft.funcs.decode = nb_get_msg;
	env.raft.arg = &st;
	s = pb_istream_from_buffer(in->data + PEER_MSG_HEADER_SIZE,
				   in->len - PEER_MSG_HEADER_SIZE);
	if (!pb_decode(&s, ringkv_peer_Envelope_fields, &env) || st.n != BATCH)
		abort();
	return st.sum;
}

/* ---- driver --------------------------------------------------------------- */

#define TRIALS 5

/* Best of TRIALS timings of `rounds` calls, in ns per message: the machine
 * is shared, and the minimum is the figure least disturbed by neighbours. */
#define BEST(result, rounds, call)                                           \
	do {                                                                 \
		(result) = 1e30;                                             \
		for (int t_ = 0; t_ < TRIALS; t_++) {                         \
			double t0_ = now_ns(), ns_;                          \
			for (unsigned r_ = 0; r_ < (rounds); r_++)           \
				call;                                        \
			ns_ = (now_ns() - t0_) / ((double)(rounds) * BATCH); \
			if (ns_ < (result))                                  \
				(result) = ns_;                              \
		}                                                            \
	} while (0)

static void run(const char *name, bool append, unsigned rounds)
{
	struct peer_msg_buf buf, nb;
	double enc, dec, nb_enc, nb_dec;
	uint64_t sum = 0;
	size_t frame;

	make_batch(append);
	peer_msg_buf_init(&buf);
	peer_msg_buf_init(&nb);
	encode_ours(&buf); /* warm: the buffer reaches its peak */
	frame = buf.len;
	if (peer_msg_buf_reserve(&nb, 2 * frame) != 0)
		abort();
	encode_nanopb(&nb);
	if (nb.len != frame || memcmp(nb.data + PEER_MSG_HEADER_SIZE,
				      buf.data + PEER_MSG_HEADER_SIZE,
				      frame - PEER_MSG_HEADER_SIZE) != 0) {
		fprintf(stderr, "bench_peer_msg: nanopb and peer_msg bytes differ\n");
		exit(1);
	}

	BEST(enc, rounds, encode_ours(&buf));
	BEST(dec, rounds, sum += decode_ours(&buf) - want_sum);
	/* nanopb is slower: fewer rounds keep the run short. */
	BEST(nb_enc, rounds / 10 + 1, encode_nanopb(&nb));
	BEST(nb_dec, rounds / 10 + 1, sum += decode_nanopb(&nb) - want_sum);
	if (sum != 0) {
		fprintf(stderr, "bench_peer_msg: decoded fields differ\n");
		exit(1);
	}

	printf("%-24s frame %6zu B (%4zu B/msg): peer_msg encode %6.1f decode %6.1f "
	       "ns/msg | nanopb encode %7.1f decode %7.1f ns/msg\n",
	       name, frame, frame / BATCH, enc, dec, nb_enc, nb_dec);
	peer_msg_buf_free(&buf);
	peer_msg_buf_free(&nb);
}

int main(int argc, char **argv)
{
	unsigned rounds = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 20000;

	if (rounds == 0)
		rounds = 1;
	peer_msg_limits_default(&limits);
	printf("bench_peer_msg: %d-message batches, best of %d trials of %u rounds\n",
	       BATCH, TRIALS, rounds);
	run("append 16x100B entries", true, rounds);
	run("heartbeat", false, rounds * 4);
	return 0;
}
