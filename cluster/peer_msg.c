/*
 * The peer codec, encoding side: frames of proto/peer.proto written by hand
 * (decoding is in peer_msg_decode.c).
 *
 * Why not nanopb's pb_encode/pb_decode, as proto/frame.c does for clients:
 * a Raft batch nests three levels deep (Envelope > RaftMessage > Entry), and
 * nanopb sizes a submessage by encoding it once into a counting stream and
 * then again for real, at every level, walking field descriptors each time;
 * this is the replication hot path. The schema is small and fixed, so this
 * file writes protobuf wire format directly: sizes are computed first, bytes
 * written in place, nothing encoded twice. The field numbers and enum values
 * come from the nanopb-generated header, so proto/peer.proto stays the one
 * definition of the format, and the unit tests check these bytes against
 * nanopb's own encoder and decoder.
 *
 * Invariants: a frame is exactly the size computed for it (checked by
 * assert), written proto3 style (zero fields left out), and never breaks
 * the limits a receiver applies; on any error the buffer is left as it was.
 */
#include "cluster/peer_msg.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/peer_msg_wire.h"
#include "cluster/replica_ident.h"
#include "core/errors.h"
#include "shard/crc32c.h"

#define PEER_MSG_DEFAULT_MAX_FRAME (16u << 20)
#define PEER_MSG_DEFAULT_MAX_MSGS (1u << 16)
#define PEER_MSG_DEFAULT_MAX_ENTRIES (1u << 14)
#define PEER_MSG_DEFAULT_MAX_ENTRY_BYTES (4u << 20)
#define PEER_MSG_DEFAULT_MAX_DATA_BYTES (4u << 20)
#define PEER_MSG_BUF_MIN (4u << 10)

void peer_msg_limits_default(struct peer_msg_limits *l)
{
	assert(l != NULL);
	l->max_frame = PEER_MSG_DEFAULT_MAX_FRAME;
	l->max_msgs = PEER_MSG_DEFAULT_MAX_MSGS;
	l->max_entries = PEER_MSG_DEFAULT_MAX_ENTRIES;
	l->max_entry_bytes = PEER_MSG_DEFAULT_MAX_ENTRY_BYTES;
	l->max_data_bytes = PEER_MSG_DEFAULT_MAX_DATA_BYTES;
}


/* ---- output buffer ------------------------------------------------------ */

void peer_msg_buf_init(struct peer_msg_buf *b)
{
	assert(b != NULL);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void peer_msg_buf_free(struct peer_msg_buf *b)
{
	assert(b != NULL);
	free(b->data);
	peer_msg_buf_init(b);
}

int peer_msg_buf_reserve(struct peer_msg_buf *b, size_t extra)
{
	size_t want, cap;
	uint8_t *p;

	assert(b != NULL && b->len <= b->cap);
	if (extra <= b->cap - b->len)
		return 0;
	if (extra > SIZE_MAX - b->len)
		return -ENOMEM;
	want = b->len + extra;
	cap = b->cap < PEER_MSG_BUF_MIN ? PEER_MSG_BUF_MIN : b->cap;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	p = realloc(b->data, cap);
	if (p == NULL)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

/* ---- wire primitives: encoding ------------------------------------------ */

/* Bytes of v as a varint: ceil(bits / 7), at least 1. */
static inline size_t varint_size(uint64_t v)
{
	unsigned bits = 64u - (unsigned)__builtin_clzll(v | 1);

	return (bits * 9u + 64u) / 64u;
}

static inline uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static inline size_t tag_size(uint32_t field)
{
	return varint_size((uint64_t)field << 3);
}

static inline uint8_t *put_tag(uint8_t *p, uint32_t field, uint32_t wire)
{
	return put_varint(p, (uint64_t)field << 3 | wire);
}

/* A varint field; proto3 leaves zero out. */
static inline size_t u64_field_size(uint32_t field, uint64_t v)
{
	return v == 0 ? 0 : tag_size(field) + varint_size(v);
}

static inline uint8_t *put_u64_field(uint8_t *p, uint32_t field, uint64_t v)
{
	if (v == 0)
		return p;
	p = put_tag(p, field, WT_VARINT);
	return put_varint(p, v);
}

/* A length-delimited field of n bytes; empty ones left out. */
static inline size_t len_field_size(uint32_t field, size_t n)
{
	return n == 0 ? 0 : tag_size(field) + varint_size(n) + n;
}

static inline uint8_t *put_bytes_field(uint8_t *p, uint32_t field,
				       const void *data, size_t n)
{
	if (n == 0)
		return p;
	p = put_tag(p, field, WT_LEN);
	p = put_varint(p, n);
	memcpy(p, data, n);
	return p + n;
}

/* A submessage field of n bytes, header only (written even when empty:
 * a submessage's presence is meaningful). */
static inline size_t sub_field_size(uint32_t field, size_t n)
{
	return tag_size(field) + varint_size(n) + n;
}

static inline uint8_t *put_sub_header(uint8_t *p, uint32_t field, size_t n)
{
	p = put_tag(p, field, WT_LEN);
	return put_varint(p, n);
}

/* ---- encoding: Raft messages -------------------------------------------- */

static size_t entry_body_size(const struct raft_entry *e)
{
	return u64_field_size(ringkv_peer_Entry_term_tag, e->term) +
	       u64_field_size(ringkv_peer_Entry_type_tag, e->type) +
	       len_field_size(ringkv_peer_Entry_data_tag, e->len);
}

static size_t conf_size(const struct raft_conf *conf)
{
	return 4 + 12 * (size_t)conf->n;
}

/*
 * Bytes of the RaftMessage body for (group, m), or RKV_ETOOLARGE when m
 * breaks a per-message limit of l. m comes from Raft: its shape is asserted.
 */
static int msg_body_size(const struct peer_msg_limits *l, uint64_t group,
			 const struct raft_msg *m, size_t *size)
{
	size_t n;

	assert(msg_type_known(m->type));
	assert(m->from != RAFT_NONE && m->to != RAFT_NONE);
	assert(m->entries != NULL || m->n_entries == 0);
	assert(m->data != NULL || m->len == 0);
	if (m->n_entries > l->max_entries || m->len > l->max_data_bytes)
		return RKV_ETOOLARGE;
	n = u64_field_size(ringkv_peer_RaftMessage_group_tag, group) +
	    u64_field_size(ringkv_peer_RaftMessage_type_tag, m->type) +
	    u64_field_size(ringkv_peer_RaftMessage_reject_tag, m->reject) +
	    u64_field_size(ringkv_peer_RaftMessage_done_tag, m->done) +
	    u64_field_size(ringkv_peer_RaftMessage_from_tag, m->from) +
	    u64_field_size(ringkv_peer_RaftMessage_to_tag, m->to) +
	    u64_field_size(ringkv_peer_RaftMessage_term_tag, m->term) +
	    u64_field_size(ringkv_peer_RaftMessage_index_tag, m->index) +
	    u64_field_size(ringkv_peer_RaftMessage_log_term_tag, m->log_term) +
	    u64_field_size(ringkv_peer_RaftMessage_commit_tag, m->commit) +
	    u64_field_size(ringkv_peer_RaftMessage_hint_tag, m->hint) +
	    u64_field_size(ringkv_peer_RaftMessage_context_tag, m->context) +
	    u64_field_size(ringkv_peer_RaftMessage_offset_tag, m->offset) +
	    len_field_size(ringkv_peer_RaftMessage_data_tag, m->len);
	for (uint32_t i = 0; i < m->n_entries; i++) {
		const struct raft_entry *e = &m->entries[i];

		assert(entry_type_known(e->type));
		assert(e->data != NULL || e->len == 0);
		if (e->len > l->max_entry_bytes)
			return RKV_ETOOLARGE;
		n += sub_field_size(ringkv_peer_RaftMessage_entries_tag,
				    entry_body_size(e));
	}
	if (m->conf != NULL) {
		assert(m->conf->n <= RAFT_MAX_SERVERS);
		n += len_field_size(ringkv_peer_RaftMessage_conf_tag, conf_size(m->conf));
	}
	*size = n;
	return 0;
}

static uint8_t *put_msg_body(uint8_t *p, uint64_t group, const struct raft_msg *m)
{
	p = put_u64_field(p, ringkv_peer_RaftMessage_group_tag, group);
	p = put_u64_field(p, ringkv_peer_RaftMessage_type_tag, m->type);
	p = put_u64_field(p, ringkv_peer_RaftMessage_reject_tag, m->reject);
	p = put_u64_field(p, ringkv_peer_RaftMessage_done_tag, m->done);
	p = put_u64_field(p, ringkv_peer_RaftMessage_from_tag, m->from);
	p = put_u64_field(p, ringkv_peer_RaftMessage_to_tag, m->to);
	p = put_u64_field(p, ringkv_peer_RaftMessage_term_tag, m->term);
	p = put_u64_field(p, ringkv_peer_RaftMessage_index_tag, m->index);
	p = put_u64_field(p, ringkv_peer_RaftMessage_log_term_tag, m->log_term);
	p = put_u64_field(p, ringkv_peer_RaftMessage_commit_tag, m->commit);
	p = put_u64_field(p, ringkv_peer_RaftMessage_hint_tag, m->hint);
	p = put_u64_field(p, ringkv_peer_RaftMessage_context_tag, m->context);
	p = put_u64_field(p, ringkv_peer_RaftMessage_offset_tag, m->offset);
	for (uint32_t i = 0; i < m->n_entries; i++) {
		const struct raft_entry *e = &m->entries[i];

		p = put_sub_header(p, ringkv_peer_RaftMessage_entries_tag,
				   entry_body_size(e));
		p = put_u64_field(p, ringkv_peer_Entry_term_tag, e->term);
		p = put_u64_field(p, ringkv_peer_Entry_type_tag, e->type);
		p = put_bytes_field(p, ringkv_peer_Entry_data_tag, e->data, e->len);
	}
	p = put_bytes_field(p, ringkv_peer_RaftMessage_data_tag, m->data, m->len);
	if (m->conf != NULL) {
		p = put_tag(p, ringkv_peer_RaftMessage_conf_tag, WT_LEN);
		p = put_varint(p, conf_size(m->conf));
		p += raft_conf_encode(m->conf, p);
	}
	return p;
}

int peer_msg_batch_begin(struct peer_msg_buf *out, struct peer_msg_batch *batch)
{
	int rv;

	assert(out != NULL && batch != NULL);
	rv = peer_msg_buf_reserve(out, PEER_MSG_HEADER_SIZE);
	if (rv != 0)
		return rv;
	batch->start = out->len;
	batch->n_msgs = 0;
	batch->open = true;
	out->len += PEER_MSG_HEADER_SIZE; /* filled by peer_msg_batch_end */
	return 0;
}

size_t peer_msg_batch_bytes(const struct peer_msg_buf *out,
			    const struct peer_msg_batch *batch)
{
	assert(out != NULL && batch != NULL && batch->open);
	assert(out->len >= batch->start + PEER_MSG_HEADER_SIZE);
	return out->len - batch->start - PEER_MSG_HEADER_SIZE;
}

int peer_msg_batch_add(struct peer_msg_buf *out, struct peer_msg_batch *batch,
		       const struct peer_msg_limits *l, uint64_t group,
		       const struct raft_msg *msg)
{
	size_t body, need;
	uint8_t *p, *end;
	int rv;

	assert(out != NULL && batch != NULL && l != NULL && msg != NULL);
	assert(batch->open);
	rv = msg_body_size(l, group, msg, &body);
	if (rv != 0)
		return rv;
	need = sub_field_size(ringkv_peer_Envelope_raft_tag, body);
	if (batch->n_msgs >= l->max_msgs || need > l->max_frame ||
	    peer_msg_batch_bytes(out, batch) > l->max_frame - need)
		return RKV_ETOOLARGE;
	rv = peer_msg_buf_reserve(out, need);
	if (rv != 0)
		return rv;
	p = out->data + out->len;
	end = put_sub_header(p, ringkv_peer_Envelope_raft_tag, body);
	end = put_msg_body(end, group, msg);
	assert((size_t)(end - p) == need);
	out->len += need;
	batch->n_msgs++;
	return 0;
}

size_t peer_msg_batch_end(struct peer_msg_buf *out, struct peer_msg_batch *batch)
{
	size_t payload;

	assert(out != NULL && batch != NULL && batch->open);
	batch->open = false;
	payload = out->len - batch->start - PEER_MSG_HEADER_SIZE;
	if (batch->n_msgs == 0) {
		out->len = batch->start;
		return 0;
	}
	assert(payload <= UINT32_MAX);
	store_le32(out->data + batch->start, (uint32_t)payload);
	return PEER_MSG_HEADER_SIZE + payload;
}

int peer_msg_encode_batch(struct peer_msg_buf *out, const struct peer_msg_limits *l,
			  const struct peer_msg_item *items, size_t n)
{
	struct peer_msg_batch batch;
	int rv;

	assert(out != NULL && l != NULL && items != NULL && n >= 1);
	rv = peer_msg_batch_begin(out, &batch);
	if (rv != 0)
		goto err;
	for (size_t i = 0; i < n; i++) {
		rv = peer_msg_batch_add(out, &batch, l, items[i].group, items[i].msg);
		if (rv != 0)
			goto err_after_begin;
	}
	peer_msg_batch_end(out, &batch);
	return 0;

err_after_begin:
	out->len = batch.start;
err:
	assert(rv != 0);
	return rv;
}

/* ---- encoding: the other kinds ------------------------------------------ */

/*
 * Reserves one frame holding Envelope field `kind_field` with a body of
 * `body` bytes, writes the prefix and the field header, and returns where
 * the body goes (NULL: -ENOMEM).
 */
static uint8_t *frame_open(struct peer_msg_buf *out, uint32_t kind_field,
			   size_t body, size_t *frame_len)
{
	size_t payload = sub_field_size(kind_field, body);
	uint8_t *p;

	if (peer_msg_buf_reserve(out, PEER_MSG_HEADER_SIZE + payload) != 0)
		return NULL;
	p = out->data + out->len;
	store_le32(p, (uint32_t)payload);
	*frame_len = PEER_MSG_HEADER_SIZE + payload;
	return put_sub_header(p + PEER_MSG_HEADER_SIZE, kind_field, body);
}

/* Checks that the body was exactly as computed and commits the frame. */
static void frame_close(struct peer_msg_buf *out, const uint8_t *end,
			size_t frame_len)
{
	assert((size_t)(end - (out->data + out->len)) == frame_len);
	(void)end;
	out->len += frame_len;
}

int peer_msg_encode_hello(struct peer_msg_buf *out, const struct peer_msg_hello *h)
{
	size_t body, frame_len;
	uint8_t *p;

	assert(out != NULL && h != NULL);
	assert(h->node_id != RAFT_NONE && h->version != 0);
	assert(h->client_address.data != NULL || h->client_address.len == 0);
	assert(h->resp_address.data != NULL || h->resp_address.len == 0);
	if (h->client_address.len > PEER_MSG_MAX_ADDRESS ||
	    h->resp_address.len > PEER_MSG_MAX_ADDRESS)
		return RKV_ETOOLARGE;
	body = len_field_size(ringkv_peer_Hello_client_address_tag, h->client_address.len) +
	       len_field_size(ringkv_peer_Hello_resp_address_tag, h->resp_address.len) +
	       u64_field_size(ringkv_peer_Hello_cores_tag, h->cores) +
	       u64_field_size(ringkv_peer_Hello_slot_function_tag, h->slot_function) +
	       u64_field_size(ringkv_peer_Hello_data_dir_id_tag, h->data_dir_id) +
	       u64_field_size(ringkv_peer_Hello_data_dir_new_tag, h->data_dir_new) +
	       u64_field_size(ringkv_peer_Hello_boot_id_tag, h->boot_id) +
	       u64_field_size(ringkv_peer_Hello_cluster_id_tag, h->cluster_id) +
	       u64_field_size(ringkv_peer_Hello_node_id_tag, h->node_id) +
	       u64_field_size(ringkv_peer_Hello_from_core_tag, h->from_core) +
	       u64_field_size(ringkv_peer_Hello_to_core_tag, h->to_core) +
	       u64_field_size(ringkv_peer_Hello_version_tag, h->version) +
	       u64_field_size(ringkv_peer_Hello_to_node_id_tag, h->to_node_id);
	p = frame_open(out, ringkv_peer_Envelope_hello_tag, body, &frame_len);
	if (p == NULL)
		return -ENOMEM;
	p = put_u64_field(p, ringkv_peer_Hello_cluster_id_tag, h->cluster_id);
	p = put_u64_field(p, ringkv_peer_Hello_node_id_tag, h->node_id);
	p = put_u64_field(p, ringkv_peer_Hello_from_core_tag, h->from_core);
	p = put_u64_field(p, ringkv_peer_Hello_to_core_tag, h->to_core);
	p = put_u64_field(p, ringkv_peer_Hello_version_tag, h->version);
	p = put_u64_field(p, ringkv_peer_Hello_to_node_id_tag, h->to_node_id);
	p = put_bytes_field(p, ringkv_peer_Hello_client_address_tag, h->client_address.data,
			    h->client_address.len);
	p = put_bytes_field(p, ringkv_peer_Hello_resp_address_tag, h->resp_address.data,
			    h->resp_address.len);
	p = put_u64_field(p, ringkv_peer_Hello_cores_tag, h->cores);
	p = put_u64_field(p, ringkv_peer_Hello_slot_function_tag, h->slot_function);
	p = put_u64_field(p, ringkv_peer_Hello_data_dir_id_tag, h->data_dir_id);
	p = put_u64_field(p, ringkv_peer_Hello_data_dir_new_tag, h->data_dir_new);
	p = put_u64_field(p, ringkv_peer_Hello_boot_id_tag, h->boot_id);
	frame_close(out, p, frame_len);
	return 0;
}

int peer_msg_encode_hello_reply(struct peer_msg_buf *out,
				const struct peer_msg_hello_reply *r)
{
	size_t body, frame_len;
	uint8_t *p;

	assert(out != NULL && r != NULL);
	assert(r->reason.data != NULL || r->reason.len == 0);
	assert(r->client_address.data != NULL || r->client_address.len == 0);
	assert(r->resp_address.data != NULL || r->resp_address.len == 0);
	if (r->reason.len > PEER_MSG_MAX_REASON ||
	    r->client_address.len > PEER_MSG_MAX_ADDRESS ||
	    r->resp_address.len > PEER_MSG_MAX_ADDRESS)
		return RKV_ETOOLARGE;
	body = len_field_size(ringkv_peer_HelloReply_client_address_tag,
			      r->client_address.len) +
	       len_field_size(ringkv_peer_HelloReply_resp_address_tag, r->resp_address.len) +
	       u64_field_size(ringkv_peer_HelloReply_ok_tag, r->ok) +
	       len_field_size(ringkv_peer_HelloReply_reason_tag, r->reason.len) +
	       u64_field_size(ringkv_peer_HelloReply_cluster_id_tag, r->cluster_id) +
	       u64_field_size(ringkv_peer_HelloReply_node_id_tag, r->node_id) +
	       u64_field_size(ringkv_peer_HelloReply_version_tag, r->version);
	p = frame_open(out, ringkv_peer_Envelope_hello_reply_tag, body, &frame_len);
	if (p == NULL)
		return -ENOMEM;
	p = put_u64_field(p, ringkv_peer_HelloReply_ok_tag, r->ok);
	p = put_bytes_field(p, ringkv_peer_HelloReply_reason_tag, r->reason.data,
			    r->reason.len);
	p = put_u64_field(p, ringkv_peer_HelloReply_cluster_id_tag, r->cluster_id);
	p = put_u64_field(p, ringkv_peer_HelloReply_node_id_tag, r->node_id);
	p = put_u64_field(p, ringkv_peer_HelloReply_version_tag, r->version);
	p = put_bytes_field(p, ringkv_peer_HelloReply_client_address_tag,
			    r->client_address.data, r->client_address.len);
	p = put_bytes_field(p, ringkv_peer_HelloReply_resp_address_tag, r->resp_address.data,
			    r->resp_address.len);
	frame_close(out, p, frame_len);
	return 0;
}

int peer_msg_encode_chunk(struct peer_msg_buf *out, const struct peer_msg_limits *l,
			  const struct peer_msg_chunk *c)
{
	size_t body, frame_len;
	uint32_t crc;
	uint8_t *p;

	assert(out != NULL && l != NULL && c != NULL);
	assert(c->data.data != NULL || c->data.len == 0);
	if (c->data.len > l->max_data_bytes || c->file.len > PEER_MSG_MAX_FILE_NAME)
		return RKV_ETOOLARGE;
	if (c->file.data == NULL || !file_name_ok(c->file.data, c->file.len) ||
	    c->offset > UINT64_MAX - c->data.len)
		return RKV_EINVAL;
	crc = crc32c(0, c->data.data, c->data.len);
	body = u64_field_size(ringkv_peer_SnapshotChunk_group_tag, c->group) +
	       u64_field_size(ringkv_peer_SnapshotChunk_index_tag, c->index) +
	       u64_field_size(ringkv_peer_SnapshotChunk_term_tag, c->term) +
	       len_field_size(ringkv_peer_SnapshotChunk_file_tag, c->file.len) +
	       u64_field_size(ringkv_peer_SnapshotChunk_offset_tag, c->offset) +
	       len_field_size(ringkv_peer_SnapshotChunk_data_tag, c->data.len) +
	       (crc == 0 ? 0 : tag_size(ringkv_peer_SnapshotChunk_crc32c_tag) + 4) +
	       u64_field_size(ringkv_peer_SnapshotChunk_last_tag, c->last) +
	       u64_field_size(ringkv_peer_SnapshotChunk_stream_tag, c->stream) +
	       u64_field_size(ringkv_peer_SnapshotChunk_seq_tag, c->seq);
	if (sub_field_size(ringkv_peer_Envelope_snapshot_chunk_tag, body) > l->max_frame)
		return RKV_ETOOLARGE;
	p = frame_open(out, ringkv_peer_Envelope_snapshot_chunk_tag, body, &frame_len);
	if (p == NULL)
		return -ENOMEM;
	p = put_u64_field(p, ringkv_peer_SnapshotChunk_group_tag, c->group);
	p = put_u64_field(p, ringkv_peer_SnapshotChunk_index_tag, c->index);
	p = put_u64_field(p, ringkv_peer_SnapshotChunk_term_tag, c->term);
	p = put_bytes_field(p, ringkv_peer_SnapshotChunk_file_tag, c->file.data,
			    c->file.len);
	p = put_u64_field(p, ringkv_peer_SnapshotChunk_offset_tag, c->offset);
	p = put_bytes_field(p, ringkv_peer_SnapshotChunk_data_tag, c->data.data,
			    c->data.len);
	if (crc != 0) {
		p = put_tag(p, ringkv_peer_SnapshotChunk_crc32c_tag, WT_FIXED32);
		store_le32(p, crc);
		p += 4;
	}
	p = put_u64_field(p, ringkv_peer_SnapshotChunk_last_tag, c->last);
	p = put_u64_field(p, ringkv_peer_SnapshotChunk_stream_tag, c->stream);
	p = put_u64_field(p, ringkv_peer_SnapshotChunk_seq_tag, c->seq);
	frame_close(out, p, frame_len);
	return 0;
}

int peer_msg_encode_forward(struct peer_msg_buf *out, const struct peer_msg_limits *l,
			    const struct peer_msg_forward *f)
{
	size_t body, frame_len;
	uint8_t *p;

	assert(out != NULL && l != NULL && f != NULL);
	assert(f->request.data != NULL || f->request.len == 0);
	if (f->request.len > l->max_data_bytes)
		return RKV_ETOOLARGE;
	body = u64_field_size(ringkv_peer_Forward_forward_id_tag, f->forward_id) +
	       u64_field_size(ringkv_peer_Forward_group_tag, f->group) +
	       len_field_size(ringkv_peer_Forward_request_tag, f->request.len);
	if (sub_field_size(ringkv_peer_Envelope_forward_tag, body) > l->max_frame)
		return RKV_ETOOLARGE;
	p = frame_open(out, ringkv_peer_Envelope_forward_tag, body, &frame_len);
	if (p == NULL)
		return -ENOMEM;
	p = put_u64_field(p, ringkv_peer_Forward_forward_id_tag, f->forward_id);
	p = put_u64_field(p, ringkv_peer_Forward_group_tag, f->group);
	p = put_bytes_field(p, ringkv_peer_Forward_request_tag, f->request.data,
			    f->request.len);
	frame_close(out, p, frame_len);
	return 0;
}

int peer_msg_encode_forward_reply(struct peer_msg_buf *out,
				  const struct peer_msg_limits *l,
				  const struct peer_msg_forward_reply *r)
{
	size_t body, frame_len;
	uint8_t *p;

	assert(out != NULL && l != NULL && r != NULL);
	assert(r->response.data != NULL || r->response.len == 0);
	if (r->response.len > l->max_data_bytes)
		return RKV_ETOOLARGE;
	body = u64_field_size(ringkv_peer_ForwardReply_forward_id_tag, r->forward_id) +
	       len_field_size(ringkv_peer_ForwardReply_response_tag, r->response.len);
	if (sub_field_size(ringkv_peer_Envelope_forward_reply_tag, body) > l->max_frame)
		return RKV_ETOOLARGE;
	p = frame_open(out, ringkv_peer_Envelope_forward_reply_tag, body, &frame_len);
	if (p == NULL)
		return -ENOMEM;
	p = put_u64_field(p, ringkv_peer_ForwardReply_forward_id_tag, r->forward_id);
	p = put_bytes_field(p, ringkv_peer_ForwardReply_response_tag, r->response.data,
			    r->response.len);
	frame_close(out, p, frame_len);
	return 0;
}

int peer_msg_encode_snapshot_request(struct peer_msg_buf *out,
				     const struct peer_msg_snapshot_request *q)
{
	size_t body, frame_len;
	uint8_t *p;

	assert(out != NULL && q != NULL);
	body = u64_field_size(ringkv_peer_SnapshotRequest_group_tag, q->group) +
	       u64_field_size(ringkv_peer_SnapshotRequest_applied_tag, q->applied) +
	       u64_field_size(ringkv_peer_SnapshotRequest_restart_stream_tag, q->restart_stream) +
	       u64_field_size(ringkv_peer_SnapshotRequest_boot_id_tag, q->boot_id) +
	       u64_field_size(ringkv_peer_SnapshotRequest_stream_seen_tag, q->stream_seen);
	p = frame_open(out, ringkv_peer_Envelope_snapshot_request_tag, body, &frame_len);
	if (p == NULL)
		return -ENOMEM;
	p = put_u64_field(p, ringkv_peer_SnapshotRequest_group_tag, q->group);
	p = put_u64_field(p, ringkv_peer_SnapshotRequest_applied_tag, q->applied);
	p = put_u64_field(p, ringkv_peer_SnapshotRequest_restart_stream_tag, q->restart_stream);
	p = put_u64_field(p, ringkv_peer_SnapshotRequest_boot_id_tag, q->boot_id);
	p = put_u64_field(p, ringkv_peer_SnapshotRequest_stream_seen_tag, q->stream_seen);
	frame_close(out, p, frame_len);
	return 0;
}

int peer_msg_encode_placement(struct peer_msg_buf *out, const struct peer_msg_placement *q)
{
	const uint64_t v[8] = { q->op, q->group, q->core, q->term, q->status, q->index,
				q->from, q->to };
	const uint32_t tag[8] = {
		ringkv_peer_Placement_op_tag, ringkv_peer_Placement_group_tag,
		ringkv_peer_Placement_core_tag, ringkv_peer_Placement_term_tag,
		ringkv_peer_Placement_status_tag, ringkv_peer_Placement_index_tag,
		ringkv_peer_Placement_from_tag, ringkv_peer_Placement_to_tag,
	};
	size_t body = 0, frame_len;
	uint8_t *p;

	assert(out != NULL && q != NULL);
	for (int i = 0; i < 8; i++)
		body += u64_field_size(tag[i], v[i]);
	p = frame_open(out, ringkv_peer_Envelope_placement_tag, body, &frame_len);
	if (p == NULL)
		return -ENOMEM;
	for (int i = 0; i < 8; i++)
		p = put_u64_field(p, tag[i], v[i]);
	frame_close(out, p, frame_len);
	return 0;
}

/*
 * A frame of n parallel packed lists (Leaders, Heartbeats): entry i's
 * value in list k is v[i * nlists + k] (structs of nlists uint64_t).
 */
static int encode_lists(struct peer_msg_buf *out, uint32_t env_tag, const uint32_t *tag,
			int nlists, const uint64_t *v, uint32_t n)
{
	size_t packed[5] = { 0, 0, 0, 0, 0 }, body = 0, frame_len;
	uint8_t *p;

	assert(nlists <= 5);
	for (uint32_t i = 0; i < n; i++)
		for (int k = 0; k < nlists; k++)
			packed[k] += varint_size(v[(size_t)i * nlists + k]);
	for (int k = 0; k < nlists; k++)
		body += len_field_size(tag[k], packed[k]);
	p = frame_open(out, env_tag, body, &frame_len);
	if (p == NULL)
		return -ENOMEM;
	for (int k = 0; k < nlists; k++) {
		if (packed[k] == 0)
			continue;
		p = put_tag(p, tag[k], WT_LEN);
		p = put_varint(p, packed[k]);
		for (uint32_t i = 0; i < n; i++)
			p = put_varint(p, v[(size_t)i * nlists + k]);
	}
	frame_close(out, p, frame_len);
	return 0;
}

_Static_assert(sizeof(struct peer_msg_leader) == 3 * sizeof(uint64_t), "Leaders: 3 lists");
_Static_assert(sizeof(struct peer_msg_beat) == 5 * sizeof(uint64_t), "Heartbeats: 5 lists");

int peer_msg_encode_leaders(struct peer_msg_buf *out, const struct peer_msg_leader *entries,
			    uint32_t n)
{
	static const uint32_t tag[3] = { ringkv_peer_Leaders_shard_tag,
					 ringkv_peer_Leaders_term_tag,
					 ringkv_peer_Leaders_conf_index_tag };

	assert(out != NULL && (entries != NULL || n == 0));
	if (n > PEER_MSG_MAX_LEADERS)
		return RKV_ETOOLARGE;
	return encode_lists(out, ringkv_peer_Envelope_leaders_tag, tag, 3,
			    n ? &entries[0].shard : NULL, n);
}

int peer_msg_encode_heartbeats(struct peer_msg_buf *out, const struct peer_msg_beat *beats,
			       uint32_t n)
{
	static const uint32_t tag[5] = {
		ringkv_peer_Heartbeats_group_tag, ringkv_peer_Heartbeats_term_tag,
		ringkv_peer_Heartbeats_commit_tag, ringkv_peer_Heartbeats_context_tag,
		ringkv_peer_Heartbeats_flags_tag,
	};

	assert(out != NULL && (beats != NULL || n == 0));
	if (n > PEER_MSG_MAX_BEATS)
		return RKV_ETOOLARGE;
	return encode_lists(out, ringkv_peer_Envelope_heartbeats_tag, tag, 5,
			    n ? &beats[0].group : NULL, n);
}

bool peer_msg_beat_from_raft(const struct raft_msg *m, uint64_t group, struct peer_msg_beat *b)
{
	if ((m->type != RAFT_MSG_HEARTBEAT && m->type != RAFT_MSG_HEARTBEAT_RESP) ||
	    replica_ident_inc(m->from) != 0 || replica_ident_inc(m->to) != 0 || m->index ||
	    m->log_term || m->hint || m->offset || m->n_entries || m->len || m->conf ||
	    (m->type == RAFT_MSG_HEARTBEAT_RESP && m->commit))
		return false;
	b->group = group;
	b->term = m->term;
	b->commit = m->commit;
	b->context = m->context;
	b->flags = (m->type == RAFT_MSG_HEARTBEAT_RESP ? PEER_BEAT_RESP : 0) |
		   (m->done ? PEER_BEAT_DONE : 0) | (m->reject ? PEER_BEAT_REJECT : 0);
	return true;
}

void peer_msg_beat_to_raft(const struct peer_msg_beat *b, uint64_t from_node, uint64_t to_node,
			   struct raft_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = b->flags & PEER_BEAT_RESP ? RAFT_MSG_HEARTBEAT_RESP : RAFT_MSG_HEARTBEAT;
	m->from = replica_ident(from_node, 0);
	m->to = replica_ident(to_node, 0);
	m->term = b->term;
	m->commit = b->flags & PEER_BEAT_RESP ? 0 : b->commit;
	m->context = b->context;
	m->done = (b->flags & PEER_BEAT_DONE) != 0;
	m->reject = (b->flags & PEER_BEAT_REJECT) != 0;
}
