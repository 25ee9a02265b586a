/*
 * The peer codec, decoding side: frames of proto/peer.proto read by hand
 * from untrusted bytes (see peer_msg.c for why not nanopb).
 *
 * Invariants: no byte of the payload is read before the bounds check that
 * covers it, no length is trusted before it is compared with what is left
 * and with its limit, every returned slice lies inside the payload, and
 * nothing is allocated or copied except a conf. Unknown fields are skipped
 * (the format grows additively); a known field with the wrong wire type, a
 * varint too long for its field, a zero field number and a truncated field
 * are protocol errors. Nothing here asserts on what the bytes say.
 */
#include "cluster/peer_msg.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cluster/peer_msg_wire.h"
#include "core/errors.h"
#include "shard/crc32c.h"

/* ---- wire primitives: decoding ------------------------------------------ */

/* A bounded read position in untrusted bytes. */
struct reader {
	const uint8_t *p;
	const uint8_t *end;
};

/* Formats only on error paths; the hot path never touches f->err. */
__attribute__((format(printf, 3, 4))) static int fail(struct peer_msg_frame *f, int rv,
						      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->err, sizeof(f->err), fmt, ap);
	va_end(ap);
	return rv;
}

/* A varint of at most 10 bytes whose value fits 64 bits; false otherwise. */
static inline bool get_varint(struct reader *r, uint64_t *v)
{
	const uint8_t *p = r->p;
	uint64_t x = 0;

	if (p < r->end && *p < 0x80) { /* the common one-byte case */
		*v = *p;
		r->p = p + 1;
		return true;
	}
	for (unsigned shift = 0; shift < 64; shift += 7) {
		uint8_t b;

		if (p >= r->end)
			return false;
		b = *p++;
		/* The tenth byte holds bit 63 only. */
		if (shift == 63 && b > 1)
			return false;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (b < 0x80) {
			*v = x;
			r->p = p;
			return true;
		}
	}
	return false;
}

/* Reads a field key: field number >= 1 and its wire type. */
static inline bool get_tag(struct reader *r, uint32_t *field, uint32_t *wire)
{
	uint64_t key;

	if (!get_varint(r, &key) || key >> 32 != 0 || key >> 3 == 0)
		return false;
	*field = (uint32_t)(key >> 3);
	*wire = (uint32_t)(key & 7);
	return true;
}

/* A length-delimited field's bytes, after its key: checked against what is
 * left before anything is taken. */
static inline bool get_len(struct reader *r, const uint8_t **data, uint64_t *len)
{
	uint64_t n;

	if (!get_varint(r, &n) || n > (uint64_t)(r->end - r->p))
		return false;
	*data = r->p;
	*len = n;
	r->p += n;
	return true;
}

/* Skips a field of an unknown number (groups, wire types 3 and 4, are
 * proto2 relics nobody sends: refused). */
static bool skip_field(struct reader *r, uint32_t wire)
{
	const uint8_t *data;
	uint64_t v;

	switch (wire) {
	case WT_VARINT:
		return get_varint(r, &v);
	case WT_FIXED64:
		if (r->end - r->p < 8)
			return false;
		r->p += 8;
		return true;
	case WT_LEN:
		return get_len(r, &data, &v);
	case WT_FIXED32:
		if (r->end - r->p < 4)
			return false;
		r->p += 4;
		return true;
	default:
		return false;
	}
}

/* Result codes of the field readers below, turned into messages once. */
enum field_err {
	FE_OK = 0,
	FE_WIRE,  /* truncated, malformed, or the wrong wire type */
	FE_RANGE, /* well formed, value out of range for its field */
};

static inline enum field_err get_u64(struct reader *r, uint32_t wire, uint64_t *v)
{
	if (wire != WT_VARINT || !get_varint(r, v))
		return FE_WIRE;
	return FE_OK;
}

static inline enum field_err get_u32(struct reader *r, uint32_t wire, uint32_t *v)
{
	uint64_t x;

	if (wire != WT_VARINT || !get_varint(r, &x) || x > UINT32_MAX)
		return FE_WIRE;
	*v = (uint32_t)x;
	return FE_OK;
}

/* Protobuf writes a bool as varint 0 or 1; anything else is refused. */
static inline enum field_err get_bool(struct reader *r, uint32_t wire, bool *v)
{
	uint64_t x;

	if (wire != WT_VARINT || !get_varint(r, &x))
		return FE_WIRE;
	if (x > 1)
		return FE_RANGE;
	*v = x != 0;
	return FE_OK;
}

static inline enum field_err get_bytes(struct reader *r, uint32_t wire,
				       const uint8_t **data, uint64_t *len)
{
	if (wire != WT_LEN || !get_len(r, data, len))
		return FE_WIRE;
	return FE_OK;
}

static int field_fail(struct peer_msg_frame *f, enum field_err fe, const char *msg,
		      uint32_t field)
{
	if (fe == FE_RANGE)
		return fail(f, RKV_EINVAL, "%s: field %u out of range", msg,
			    (unsigned)field);
	return fail(f, RKV_EPROTO, "%s: field %u malformed or truncated", msg,
		    (unsigned)field);
}

/* ---- decoding: frames ---------------------------------------------------- */

int peer_msg_peek(const uint8_t *buf, size_t len, const struct peer_msg_limits *l,
		  size_t *frame_len)
{
	uint32_t n;

	assert(l != NULL && frame_len != NULL);
	assert(buf != NULL || len == 0);
	if (len < PEER_MSG_HEADER_SIZE) {
		*frame_len = PEER_MSG_HEADER_SIZE;
		return RKV_EAGAIN;
	}
	n = load_le32(buf);
	if (n > l->max_frame)
		return RKV_ETOOLARGE;
	*frame_len = PEER_MSG_HEADER_SIZE + (size_t)n;
	return len < *frame_len ? RKV_EAGAIN : 0;
}

/* An empty slice still points into the payload, so callers may memcpy it. */
static struct peer_msg_slice slice_of(const struct peer_msg_frame *f,
				      const uint8_t *data, uint64_t len)
{
	struct peer_msg_slice s = { len == 0 ? f->payload : data, (uint32_t)len };

	return s;
}

/* A client address of a hello or its reply: at most PEER_MSG_MAX_ADDRESS
 * bytes (FE_RANGE past it). */
static enum field_err get_address(struct peer_msg_frame *f, struct reader *r, uint32_t wire,
				  struct peer_msg_slice *out)
{
	const uint8_t *data;
	uint64_t len;
	enum field_err fe = get_bytes(r, wire, &data, &len);

	if (fe != FE_OK)
		return fe;
	if (len > PEER_MSG_MAX_ADDRESS)
		return FE_RANGE;
	*out = slice_of(f, data, len);
	return FE_OK;
}

static int decode_hello(struct peer_msg_frame *f, struct reader *r)
{
	struct peer_msg_hello *h = &f->hello;
	uint32_t field, wire;
	enum field_err fe;

	memset(h, 0, sizeof(*h));
	h->client_address = slice_of(f, NULL, 0);
	h->resp_address = h->client_address;
	while (r->p < r->end) {
		if (!get_tag(r, &field, &wire))
			return fail(f, RKV_EPROTO, "hello: bad field key");
		switch (field) {
		case ringkv_peer_Hello_cluster_id_tag:
			fe = get_u64(r, wire, &h->cluster_id);
			break;
		case ringkv_peer_Hello_node_id_tag:
			fe = get_u64(r, wire, &h->node_id);
			break;
		case ringkv_peer_Hello_from_core_tag:
			fe = get_u32(r, wire, &h->from_core);
			break;
		case ringkv_peer_Hello_to_core_tag:
			fe = get_u32(r, wire, &h->to_core);
			break;
		case ringkv_peer_Hello_version_tag:
			fe = get_u32(r, wire, &h->version);
			break;
		case ringkv_peer_Hello_to_node_id_tag:
			fe = get_u64(r, wire, &h->to_node_id);
			break;
		case ringkv_peer_Hello_client_address_tag:
			fe = get_address(f, r, wire, &h->client_address);
			break;
		case ringkv_peer_Hello_resp_address_tag:
			fe = get_address(f, r, wire, &h->resp_address);
			break;
		case ringkv_peer_Hello_cores_tag:
			fe = get_u32(r, wire, &h->cores);
			break;
		case ringkv_peer_Hello_slot_function_tag:
			fe = get_u32(r, wire, &h->slot_function);
			break;
		case ringkv_peer_Hello_data_dir_id_tag:
			fe = get_u64(r, wire, &h->data_dir_id);
			break;
		case ringkv_peer_Hello_data_dir_new_tag:
			fe = get_bool(r, wire, &h->data_dir_new);
			break;
		case ringkv_peer_Hello_boot_id_tag:
			fe = get_u64(r, wire, &h->boot_id);
			break;
		default:
			fe = skip_field(r, wire) ? FE_OK : FE_WIRE;
			break;
		}
		if (fe != FE_OK)
			return field_fail(f, fe, "hello", field);
	}
	if (h->node_id == RAFT_NONE)
		return fail(f, RKV_EINVAL, "hello: node id 0");
	if (h->version == 0)
		return fail(f, RKV_EINVAL, "hello: version 0");
	return 0;
}

static int decode_hello_reply(struct peer_msg_frame *f, struct reader *r)
{
	struct peer_msg_hello_reply *h = &f->hello_reply;
	const uint8_t *reason = NULL;
	uint64_t reason_len = 0;
	uint32_t field, wire;
	enum field_err fe;

	memset(h, 0, sizeof(*h));
	h->client_address = slice_of(f, NULL, 0);
	h->resp_address = h->client_address;
	while (r->p < r->end) {
		if (!get_tag(r, &field, &wire))
			return fail(f, RKV_EPROTO, "hello reply: bad field key");
		switch (field) {
		case ringkv_peer_HelloReply_ok_tag:
			fe = get_bool(r, wire, &h->ok);
			break;
		case ringkv_peer_HelloReply_reason_tag:
			fe = get_bytes(r, wire, &reason, &reason_len);
			if (fe == FE_OK && reason_len > PEER_MSG_MAX_REASON)
				return fail(f, RKV_ETOOLARGE,
					    "hello reply: reason of %llu bytes > %u",
					    (unsigned long long)reason_len,
					    PEER_MSG_MAX_REASON);
			break;
		case ringkv_peer_HelloReply_cluster_id_tag:
			fe = get_u64(r, wire, &h->cluster_id);
			break;
		case ringkv_peer_HelloReply_node_id_tag:
			fe = get_u64(r, wire, &h->node_id);
			break;
		case ringkv_peer_HelloReply_version_tag:
			fe = get_u32(r, wire, &h->version);
			break;
		case ringkv_peer_HelloReply_client_address_tag:
			fe = get_address(f, r, wire, &h->client_address);
			break;
		case ringkv_peer_HelloReply_resp_address_tag:
			fe = get_address(f, r, wire, &h->resp_address);
			break;
		default:
			fe = skip_field(r, wire) ? FE_OK : FE_WIRE;
			break;
		}
		if (fe != FE_OK)
			return field_fail(f, fe, "hello reply", field);
	}
	h->reason = slice_of(f, reason, reason_len);
	return 0;
}

static int decode_chunk(struct peer_msg_frame *f, struct reader *r)
{
	struct peer_msg_chunk *c = &f->chunk;
	const uint8_t *file = NULL, *data = NULL;
	uint64_t file_len = 0, data_len = 0;
	uint32_t field, wire;
	enum field_err fe;

	memset(c, 0, sizeof(*c));
	while (r->p < r->end) {
		if (!get_tag(r, &field, &wire))
			return fail(f, RKV_EPROTO, "snapshot chunk: bad field key");
		switch (field) {
		case ringkv_peer_SnapshotChunk_group_tag:
			fe = get_u64(r, wire, &c->group);
			break;
		case ringkv_peer_SnapshotChunk_index_tag:
			fe = get_u64(r, wire, &c->index);
			break;
		case ringkv_peer_SnapshotChunk_term_tag:
			fe = get_u64(r, wire, &c->term);
			break;
		case ringkv_peer_SnapshotChunk_file_tag:
			fe = get_bytes(r, wire, &file, &file_len);
			if (fe == FE_OK && file_len > PEER_MSG_MAX_FILE_NAME)
				return fail(f, RKV_ETOOLARGE,
					    "snapshot chunk: file name of %llu bytes > %u",
					    (unsigned long long)file_len,
					    PEER_MSG_MAX_FILE_NAME);
			break;
		case ringkv_peer_SnapshotChunk_offset_tag:
			fe = get_u64(r, wire, &c->offset);
			break;
		case ringkv_peer_SnapshotChunk_data_tag:
			fe = get_bytes(r, wire, &data, &data_len);
			if (fe == FE_OK && data_len > f->limits->max_data_bytes)
				return fail(f, RKV_ETOOLARGE,
					    "snapshot chunk: %llu bytes > %u",
					    (unsigned long long)data_len,
					    f->limits->max_data_bytes);
			break;
		case ringkv_peer_SnapshotChunk_crc32c_tag:
			if (wire != WT_FIXED32 || r->end - r->p < 4) {
				fe = FE_WIRE;
				break;
			}
			c->crc32c = load_le32(r->p);
			r->p += 4;
			fe = FE_OK;
			break;
		case ringkv_peer_SnapshotChunk_last_tag:
			fe = get_bool(r, wire, &c->last);
			break;
		case ringkv_peer_SnapshotChunk_stream_tag:
			fe = get_u64(r, wire, &c->stream);
			break;
		case ringkv_peer_SnapshotChunk_seq_tag:
			fe = get_u64(r, wire, &c->seq);
			break;
		default:
			fe = skip_field(r, wire) ? FE_OK : FE_WIRE;
			break;
		}
		if (fe != FE_OK)
			return field_fail(f, fe, "snapshot chunk", field);
	}
	c->file = slice_of(f, file, file_len);
	c->data = slice_of(f, data, data_len);
	if (!file_name_ok(c->file.data, c->file.len))
		return fail(f, RKV_EINVAL, "snapshot chunk: bad file name");
	if (c->offset > UINT64_MAX - c->data.len)
		return fail(f, RKV_EINVAL, "snapshot chunk: offset overflows");
	if (crc32c(0, c->data.data, c->data.len) != c->crc32c)
		return fail(f, RKV_ECORRUPT, "snapshot chunk: crc32c mismatch at "
			    "offset %llu", (unsigned long long)c->offset);
	return 0;
}

static int decode_forward(struct peer_msg_frame *f, struct reader *r)
{
	struct peer_msg_forward *fw = &f->forward;
	const uint8_t *req = NULL;
	uint64_t req_len = 0;
	uint32_t field, wire;
	enum field_err fe;

	memset(fw, 0, sizeof(*fw));
	while (r->p < r->end) {
		if (!get_tag(r, &field, &wire))
			return fail(f, RKV_EPROTO, "forward: bad field key");
		switch (field) {
		case ringkv_peer_Forward_forward_id_tag:
			fe = get_u64(r, wire, &fw->forward_id);
			break;
		case ringkv_peer_Forward_group_tag:
			fe = get_u64(r, wire, &fw->group);
			break;
		case ringkv_peer_Forward_request_tag:
			fe = get_bytes(r, wire, &req, &req_len);
			if (fe == FE_OK && req_len > f->limits->max_data_bytes)
				return fail(f, RKV_ETOOLARGE, "forward: request of "
					    "%llu bytes > %u",
					    (unsigned long long)req_len,
					    f->limits->max_data_bytes);
			break;
		default:
			fe = skip_field(r, wire) ? FE_OK : FE_WIRE;
			break;
		}
		if (fe != FE_OK)
			return field_fail(f, fe, "forward", field);
	}
	fw->request = slice_of(f, req, req_len);
	return 0;
}

static int decode_forward_reply(struct peer_msg_frame *f, struct reader *r)
{
	struct peer_msg_forward_reply *fr = &f->forward_reply;
	const uint8_t *resp = NULL;
	uint64_t resp_len = 0;
	uint32_t field, wire;
	enum field_err fe;

	memset(fr, 0, sizeof(*fr));
	while (r->p < r->end) {
		if (!get_tag(r, &field, &wire))
			return fail(f, RKV_EPROTO, "forward reply: bad field key");
		switch (field) {
		case ringkv_peer_ForwardReply_forward_id_tag:
			fe = get_u64(r, wire, &fr->forward_id);
			break;
		case ringkv_peer_ForwardReply_response_tag:
			fe = get_bytes(r, wire, &resp, &resp_len);
			if (fe == FE_OK && resp_len > f->limits->max_data_bytes)
				return fail(f, RKV_ETOOLARGE, "forward reply: response "
					    "of %llu bytes > %u",
					    (unsigned long long)resp_len,
					    f->limits->max_data_bytes);
			break;
		default:
			fe = skip_field(r, wire) ? FE_OK : FE_WIRE;
			break;
		}
		if (fe != FE_OK)
			return field_fail(f, fe, "forward reply", field);
	}
	fr->response = slice_of(f, resp, resp_len);
	return 0;
}

static int decode_snapshot_request(struct peer_msg_frame *f, struct reader *r)
{
	struct peer_msg_snapshot_request *q = &f->snapshot_request;
	uint32_t field, wire;
	enum field_err fe;

	memset(q, 0, sizeof(*q));
	while (r->p < r->end) {
		if (!get_tag(r, &field, &wire))
			return fail(f, RKV_EPROTO, "snapshot request: bad field key");
		switch (field) {
		case ringkv_peer_SnapshotRequest_group_tag:
			fe = get_u64(r, wire, &q->group);
			break;
		case ringkv_peer_SnapshotRequest_applied_tag:
			fe = get_u64(r, wire, &q->applied);
			break;
		case ringkv_peer_SnapshotRequest_restart_stream_tag:
			fe = get_u64(r, wire, &q->restart_stream);
			break;
		case ringkv_peer_SnapshotRequest_boot_id_tag:
			fe = get_u64(r, wire, &q->boot_id);
			break;
		case ringkv_peer_SnapshotRequest_stream_seen_tag:
			fe = get_u64(r, wire, &q->stream_seen);
			break;
		default:
			fe = skip_field(r, wire) ? FE_OK : FE_WIRE;
			break;
		}
		if (fe != FE_OK)
			return field_fail(f, fe, "snapshot request", field);
	}
	return 0;
}

static int decode_placement(struct peer_msg_frame *f, struct reader *r)
{
	struct peer_msg_placement *q = &f->placement;
	uint32_t field, wire;
	enum field_err fe;

	memset(q, 0, sizeof(*q));
	while (r->p < r->end) {
		if (!get_tag(r, &field, &wire))
			return fail(f, RKV_EPROTO, "placement: bad field key");
		switch (field) {
		case ringkv_peer_Placement_op_tag:
			fe = get_u64(r, wire, &q->op);
			break;
		case ringkv_peer_Placement_group_tag:
			fe = get_u64(r, wire, &q->group);
			break;
		case ringkv_peer_Placement_core_tag:
			fe = get_u64(r, wire, &q->core);
			break;
		case ringkv_peer_Placement_term_tag:
			fe = get_u64(r, wire, &q->term);
			break;
		case ringkv_peer_Placement_status_tag:
			fe = get_u64(r, wire, &q->status);
			break;
		case ringkv_peer_Placement_index_tag:
			fe = get_u64(r, wire, &q->index);
			break;
		case ringkv_peer_Placement_from_tag:
			fe = get_u64(r, wire, &q->from);
			break;
		case ringkv_peer_Placement_to_tag:
			fe = get_u64(r, wire, &q->to);
			break;
		default:
			fe = skip_field(r, wire) ? FE_OK : FE_WIRE;
			break;
		}
		if (fe != FE_OK)
			return field_fail(f, fe, "placement", field);
	}
	return 0;
}

/* Counts the varints of a packed list, each checked: 0, RKV_EPROTO (one is
 * malformed) or RKV_ETOOLARGE (more than `max`). */
static int packed_count(const uint8_t *data, uint64_t len, uint32_t max, uint32_t *count)
{
	struct reader r = { data, data + len };
	uint64_t v;
	uint32_t n = 0;

	while (r.p < r.end) {
		if (n >= max)
			return RKV_ETOOLARGE;
		if (!get_varint(&r, &v))
			return RKV_EPROTO;
		n++;
	}
	*count = n;
	return 0;
}

/*
 * A body of n parallel packed lists of one length (Leaders, Heartbeats):
 * field tags[k] is list k; each list's varints are checked and counted
 * (at most max), unknown fields skipped; a list absent is empty.
 */
static int decode_lists(struct peer_msg_frame *f, struct reader *r, const char *what,
			const uint32_t *tags, int n, struct peer_msg_slice *lists, uint32_t max,
			uint32_t *count)
{
	bool seen[5] = { false, false, false, false, false };
	uint32_t counts[5] = { 0, 0, 0, 0, 0 };
	uint32_t field, wire;
	int rv;

	assert(n <= 5);
	for (int k = 0; k < n; k++)
		lists[k] = slice_of(f, NULL, 0);
	while (r->p < r->end) {
		const uint8_t *data;
		uint64_t len;
		int k;

		if (!get_tag(r, &field, &wire))
			return fail(f, RKV_EPROTO, "%s: bad field key", what);
		for (k = 0; k < n && tags[k] != field; k++)
			;
		if (k == n) {
			if (!skip_field(r, wire))
				return field_fail(f, FE_WIRE, what, field);
			continue;
		}
		/* One packed run per list: this encoder writes nothing else,
		 * and a second run would need its count added to the first. */
		if (wire != WT_LEN || seen[k] || !get_len(r, &data, &len))
			return field_fail(f, FE_WIRE, what, field);
		rv = packed_count(data, len, max, &counts[k]);
		if (rv != 0)
			return fail(f, rv, "%s: list %u malformed or longer than %u entries", what,
				    (unsigned)field, max);
		seen[k] = true;
		lists[k] = slice_of(f, data, len);
	}
	for (int k = 1; k < n; k++)
		if (counts[k] != counts[0])
			return fail(f, RKV_EPROTO, "%s: list %d of %u entries, list 1 of %u", what,
				    k + 1, counts[k], counts[0]);
	*count = counts[0];
	return 0;
}

/* Reads entry i of n parallel packed lists (checked by decode_lists). */
static int lists_next(const uint8_t **p, const uint8_t *const *end, int n, uint32_t *left,
		      uint64_t **out)
{
	if (*left == 0)
		return 0;
	for (int k = 0; k < n; k++) {
		struct reader r = { p[k], end[k] };

		/* Checked by decode_lists: a failure here is this code's bug. */
		if (!get_varint(&r, out[k]))
			return 0;
		p[k] = r.p;
	}
	(*left)--;
	return 1;
}

static int decode_leaders(struct peer_msg_frame *f, struct reader *r)
{
	static const uint32_t tags[3] = { ringkv_peer_Leaders_shard_tag,
					  ringkv_peer_Leaders_term_tag,
					  ringkv_peer_Leaders_conf_index_tag };
	struct peer_msg_leaders *q = &f->leaders;
	struct peer_msg_slice lists[3];
	int rv;

	memset(q, 0, sizeof(*q));
	rv = decode_lists(f, r, "leaders", tags, 3, lists, PEER_MSG_MAX_LEADERS, &q->count);
	q->shard = lists[0];
	q->term = lists[1];
	q->conf_index = lists[2];
	return rv;
}

void peer_msg_leaders_begin(struct peer_msg_leaders_iter *it, const struct peer_msg_leaders *l)
{
	const struct peer_msg_slice *list[3] = { &l->shard, &l->term, &l->conf_index };

	for (int k = 0; k < 3; k++) {
		it->p[k] = list[k]->data;
		it->end[k] = list[k]->data + list[k]->len;
	}
	it->left = l->count;
}

int peer_msg_leaders_next(struct peer_msg_leaders_iter *it, struct peer_msg_leader *e)
{
	uint64_t *out[3] = { &e->shard, &e->term, &e->conf_index };

	return lists_next(it->p, it->end, 3, &it->left, out);
}

static int decode_heartbeats(struct peer_msg_frame *f, struct reader *r)
{
	static const uint32_t tags[5] = {
		ringkv_peer_Heartbeats_group_tag, ringkv_peer_Heartbeats_term_tag,
		ringkv_peer_Heartbeats_commit_tag, ringkv_peer_Heartbeats_context_tag,
		ringkv_peer_Heartbeats_flags_tag,
	};
	struct peer_msg_heartbeats *h = &f->heartbeats;

	memset(h, 0, sizeof(*h));
	return decode_lists(f, r, "heartbeats", tags, 5, h->list, PEER_MSG_MAX_BEATS, &h->count);
}

void peer_msg_heartbeats_begin(struct peer_msg_heartbeats_iter *it,
			       const struct peer_msg_heartbeats *h)
{
	for (int k = 0; k < 5; k++) {
		it->p[k] = h->list[k].data;
		it->end[k] = h->list[k].data + h->list[k].len;
	}
	it->left = h->count;
}

int peer_msg_heartbeats_next(struct peer_msg_heartbeats_iter *it, struct peer_msg_beat *b)
{
	uint64_t *out[5] = { &b->group, &b->term, &b->commit, &b->context, &b->flags };

	return lists_next(it->p, it->end, 5, &it->left, out);
}

static enum peer_msg_kind kind_of_field(uint32_t field)
{
	switch (field) {
	case ringkv_peer_Envelope_hello_tag:
		return PEER_MSG_HELLO;
	case ringkv_peer_Envelope_hello_reply_tag:
		return PEER_MSG_HELLO_REPLY;
	case ringkv_peer_Envelope_raft_tag:
		return PEER_MSG_RAFT;
	case ringkv_peer_Envelope_snapshot_chunk_tag:
		return PEER_MSG_SNAPSHOT_CHUNK;
	case ringkv_peer_Envelope_forward_tag:
		return PEER_MSG_FORWARD;
	case ringkv_peer_Envelope_forward_reply_tag:
		return PEER_MSG_FORWARD_REPLY;
	case ringkv_peer_Envelope_snapshot_request_tag:
		return PEER_MSG_SNAPSHOT_REQUEST;
	case ringkv_peer_Envelope_placement_tag:
		return PEER_MSG_PLACEMENT;
	case ringkv_peer_Envelope_leaders_tag:
		return PEER_MSG_LEADERS;
	case ringkv_peer_Envelope_heartbeats_tag:
		return PEER_MSG_HEARTBEATS;
	default:
		return PEER_MSG_NONE;
	}
}

int peer_msg_decode(struct peer_msg_frame *f, const uint8_t *payload, size_t len,
		    const struct peer_msg_limits *l, struct raft_entry *scratch,
		    uint32_t scratch_cap)
{
	struct reader r, body = { NULL, NULL };
	enum peer_msg_kind kind = PEER_MSG_NONE;
	uint32_t n_msgs = 0;
	int rv;

	assert(f != NULL && l != NULL);
	assert(payload != NULL || len == 0);
	assert(scratch != NULL || scratch_cap == 0);
	if (payload == NULL)
		payload = (const uint8_t *)"";
	f->kind = PEER_MSG_NONE;
	f->payload = payload;
	f->end = payload + len;
	f->next = payload;
	f->limits = l;
	f->scratch = scratch;
	f->scratch_cap = scratch_cap;
	f->seen = 0;
	f->error = 0;
	f->msg_bytes = (struct peer_msg_slice){ payload, 0 };
	f->err[0] = '\0';
	if (len > l->max_frame)
		return fail(f, RKV_ETOOLARGE, "frame of %zu bytes > %u", len, l->max_frame);

	/* One pass over the top-level fields: the kind, its body, and for a
	 * batch the message count (each message is only skipped here). */
	r = (struct reader){ payload, payload + len };
	while (r.p < r.end) {
		uint32_t field, wire;
		enum peer_msg_kind k;
		const uint8_t *data;
		uint64_t n;

		if (!get_tag(&r, &field, &wire))
			return fail(f, RKV_EPROTO, "envelope: bad field key");
		k = kind_of_field(field);
		if (k == PEER_MSG_NONE) {
			if (!skip_field(&r, wire))
				return fail(f, RKV_EPROTO, "envelope: field %u malformed",
					    (unsigned)field);
			continue;
		}
		if (wire != WT_LEN || !get_len(&r, &data, &n))
			return fail(f, RKV_EPROTO, "envelope: field %u malformed",
				    (unsigned)field);
		if (kind != PEER_MSG_NONE && (kind != PEER_MSG_RAFT || k != PEER_MSG_RAFT))
			return fail(f, RKV_EPROTO, "envelope: more than one body "
				    "(field %u after kind %u)", (unsigned)field,
				    (unsigned)kind);
		kind = k;
		if (k == PEER_MSG_RAFT) {
			if (n_msgs >= l->max_msgs)
				return fail(f, RKV_ETOOLARGE, "batch of more than %u "
					    "messages", l->max_msgs);
			n_msgs++;
		} else {
			body = (struct reader){ data, data + n };
		}
	}

	switch (kind) {
	case PEER_MSG_NONE:
		return fail(f, RKV_EPROTO, "envelope: no known kind");
	case PEER_MSG_RAFT:
		f->n_msgs = n_msgs;
		rv = 0;
		break;
	case PEER_MSG_HELLO:
		rv = decode_hello(f, &body);
		break;
	case PEER_MSG_HELLO_REPLY:
		rv = decode_hello_reply(f, &body);
		break;
	case PEER_MSG_SNAPSHOT_CHUNK:
		rv = decode_chunk(f, &body);
		break;
	case PEER_MSG_FORWARD:
		rv = decode_forward(f, &body);
		break;
	case PEER_MSG_FORWARD_REPLY:
		rv = decode_forward_reply(f, &body);
		break;
	case PEER_MSG_SNAPSHOT_REQUEST:
		rv = decode_snapshot_request(f, &body);
		break;
	case PEER_MSG_PLACEMENT:
		rv = decode_placement(f, &body);
		break;
	case PEER_MSG_LEADERS:
		rv = decode_leaders(f, &body);
		break;
	case PEER_MSG_HEARTBEATS:
		rv = decode_heartbeats(f, &body);
		break;
	default:
		rv = fail(f, RKV_EPROTO, "envelope: no known kind");
		break;
	}
	if (rv == 0)
		f->kind = kind;
	return rv;
}

/* ---- decoding: Raft messages --------------------------------------------- */

static int decode_entry(struct peer_msg_frame *f, struct reader *r,
			struct raft_entry *e)
{
	const uint8_t *data = NULL;
	uint64_t data_len = 0, type = 0;
	uint32_t field, wire;
	enum field_err fe;

	e->term = 0;
	while (r->p < r->end) {
		if (!get_tag(r, &field, &wire))
			return fail(f, RKV_EPROTO, "entry: bad field key");
		switch (field) {
		case ringkv_peer_Entry_term_tag:
			fe = get_u64(r, wire, &e->term);
			break;
		case ringkv_peer_Entry_type_tag:
			fe = get_u64(r, wire, &type);
			break;
		case ringkv_peer_Entry_data_tag:
			fe = get_bytes(r, wire, &data, &data_len);
			if (fe == FE_OK && data_len > f->limits->max_entry_bytes)
				return fail(f, RKV_ETOOLARGE, "entry of %llu bytes > %u",
					    (unsigned long long)data_len,
					    f->limits->max_entry_bytes);
			break;
		default:
			fe = skip_field(r, wire) ? FE_OK : FE_WIRE;
			break;
		}
		if (fe != FE_OK)
			return field_fail(f, fe, "entry", field);
	}
	if (!entry_type_known(type))
		return fail(f, RKV_EINVAL, "entry: unknown type %llu",
			    (unsigned long long)type);
	e->type = (uint32_t)type;
	e->len = (uint32_t)data_len;
	/* The frame is read-only to us; raft_entry's data is not const only
	 * because entries the library owns are written. Nobody writes these. */
	e->data = (void *)(uintptr_t)(data_len == 0 ? f->payload : data);
	return 0;
}

static int decode_msg(struct peer_msg_frame *f, struct reader *r, uint64_t *group,
		      struct raft_msg *m)
{
	uint32_t cap = f->scratch_cap < f->limits->max_entries ? f->scratch_cap
							       : f->limits->max_entries;
	const uint8_t *data = NULL;
	uint64_t data_len = 0, type = 0;
	uint32_t field, wire;
	enum field_err fe;
	int rv;

	*group = 0;
	memset(m, 0, sizeof(*m));
	while (r->p < r->end) {
		const uint8_t *sub;
		uint64_t sub_len;

		if (!get_tag(r, &field, &wire))
			return fail(f, RKV_EPROTO, "raft message: bad field key");
		switch (field) {
		case ringkv_peer_RaftMessage_group_tag:
			fe = get_u64(r, wire, group);
			break;
		case ringkv_peer_RaftMessage_type_tag:
			fe = get_u64(r, wire, &type);
			break;
		case ringkv_peer_RaftMessage_reject_tag:
			fe = get_bool(r, wire, &m->reject);
			break;
		case ringkv_peer_RaftMessage_done_tag:
			fe = get_bool(r, wire, &m->done);
			break;
		case ringkv_peer_RaftMessage_from_tag:
			fe = get_u64(r, wire, &m->from);
			break;
		case ringkv_peer_RaftMessage_to_tag:
			fe = get_u64(r, wire, &m->to);
			break;
		case ringkv_peer_RaftMessage_term_tag:
			fe = get_u64(r, wire, &m->term);
			break;
		case ringkv_peer_RaftMessage_index_tag:
			fe = get_u64(r, wire, &m->index);
			break;
		case ringkv_peer_RaftMessage_log_term_tag:
			fe = get_u64(r, wire, &m->log_term);
			break;
		case ringkv_peer_RaftMessage_commit_tag:
			fe = get_u64(r, wire, &m->commit);
			break;
		case ringkv_peer_RaftMessage_hint_tag:
			fe = get_u64(r, wire, &m->hint);
			break;
		case ringkv_peer_RaftMessage_context_tag:
			fe = get_u64(r, wire, &m->context);
			break;
		case ringkv_peer_RaftMessage_offset_tag:
			fe = get_u64(r, wire, &m->offset);
			break;
		case ringkv_peer_RaftMessage_entries_tag:
			fe = get_bytes(r, wire, &sub, &sub_len);
			if (fe != FE_OK)
				break;
			if (m->n_entries >= cap)
				return fail(f, RKV_ETOOLARGE, "raft message: more than "
					    "%u entries", (unsigned)cap);
			rv = decode_entry(f, &(struct reader){ sub, sub + sub_len },
					  &f->scratch[m->n_entries]);
			if (rv != 0)
				return rv;
			m->n_entries++;
			break;
		case ringkv_peer_RaftMessage_data_tag:
			fe = get_bytes(r, wire, &data, &data_len);
			if (fe == FE_OK && data_len > f->limits->max_data_bytes)
				return fail(f, RKV_ETOOLARGE, "raft message: data of "
					    "%llu bytes > %u",
					    (unsigned long long)data_len,
					    f->limits->max_data_bytes);
			break;
		case ringkv_peer_RaftMessage_conf_tag:
			fe = get_bytes(r, wire, &sub, &sub_len);
			if (fe != FE_OK)
				break;
			if (raft_conf_decode(sub, sub_len, &f->conf) != 0)
				return fail(f, RKV_EINVAL, "raft message: bad conf "
					    "(%llu bytes)", (unsigned long long)sub_len);
			m->conf = &f->conf;
			break;
		default:
			fe = skip_field(r, wire) ? FE_OK : FE_WIRE;
			break;
		}
		if (fe != FE_OK)
			return field_fail(f, fe, "raft message", field);
	}
	if (!msg_type_known(type))
		return fail(f, RKV_EINVAL, "raft message: unknown type %llu",
			    (unsigned long long)type);
	if (m->from == RAFT_NONE || m->to == RAFT_NONE)
		return fail(f, RKV_EINVAL, "raft message: from or to is node 0");
	m->type = (uint32_t)type;
	m->entries = m->n_entries > 0 ? f->scratch : NULL;
	m->data = data_len == 0 ? f->payload : data;
	m->len = (uint32_t)data_len;
	return 0;
}

int peer_msg_next(struct peer_msg_frame *f, uint64_t *group, struct raft_msg *msg)
{
	struct reader r;

	assert(f != NULL && group != NULL && msg != NULL);
	assert(f->kind == PEER_MSG_RAFT);
	if (f->error != 0)
		return f->error;
	/* peer_msg_decode checked every top-level field's shape: only the
	 * skipping of unknown ones is left to do here. */
	r = (struct reader){ f->next, f->end };
	while (r.p < r.end) {
		uint32_t field, wire;
		const uint8_t *data;
		uint64_t n;
		int rv;

		/* Cannot fail: peer_msg_decode walked these same bytes. */
		if (!get_tag(&r, &field, &wire) ||
		    (field != ringkv_peer_Envelope_raft_tag && !skip_field(&r, wire)) ||
		    (field == ringkv_peer_Envelope_raft_tag &&
		     (wire != WT_LEN || !get_len(&r, &data, &n)))) {
			f->error = fail(f, RKV_EPROTO, "envelope: malformed");
			return f->error;
		}
		if (field != ringkv_peer_Envelope_raft_tag)
			continue;
		f->next = r.p;
		f->msg_bytes = (struct peer_msg_slice){ data, (uint32_t)n };
		rv = decode_msg(f, &(struct reader){ data, data + n }, group, msg);
		if (rv != 0) {
			f->error = rv; /* the rest of the frame is refused */
			return rv;
		}
		f->seen++;
		return 1;
	}
	f->next = f->end;
	return 0;
}

int peer_msg_decode_one(struct peer_msg_frame *f, const uint8_t *bytes, size_t len,
			const struct peer_msg_limits *l, struct raft_entry *scratch,
			uint32_t scratch_cap, uint64_t *group, struct raft_msg *msg)
{
	int rv;

	assert(f != NULL && l != NULL && group != NULL && msg != NULL);
	assert(bytes != NULL || len == 0);
	assert(scratch != NULL || scratch_cap == 0);
	if (bytes == NULL)
		bytes = (const uint8_t *)"";
	f->kind = PEER_MSG_RAFT;
	f->n_msgs = 1;
	f->payload = bytes;
	f->end = bytes + len;
	f->next = f->end;
	f->limits = l;
	f->scratch = scratch;
	f->scratch_cap = scratch_cap;
	f->seen = 1;
	f->error = 0;
	f->err[0] = '\0';
	f->msg_bytes = (struct peer_msg_slice){ bytes, 0 };
	/* As a field of a frame, the message could not pass max_frame. */
	if (len > l->max_frame) {
		f->error = fail(f, RKV_ETOOLARGE, "raft message of %zu bytes > %u", len,
				l->max_frame);
		return f->error;
	}
	f->msg_bytes.len = (uint32_t)len;
	rv = decode_msg(f, &(struct reader){ bytes, bytes + len }, group, msg);
	if (rv != 0)
		f->error = rv;
	return rv;
}
