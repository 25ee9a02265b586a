/*
 * Wire codecs of ringkv-bench: the ringkv native protocol (u32 little-endian
 * length + protobuf Request/Response, proto/ringkv.proto, hand-encoded so the
 * hot path neither allocates nor runs nanopb's field callbacks) and RESP2
 * (SET/GET as multibulk, replies +OK, $len, $-1, -ERR).
 *
 * Encoders write one whole request into a caller's buffer of at least
 * codec_request_size_max() bytes. Parsers read at most one reply from the
 * front of a buffer and never read past its length: the bytes come from the
 * network and are untrusted.
 */
#ifndef RINGKV_PERF_BENCH_CODEC_H
#define RINGKV_PERF_BENCH_CODEC_H

#include <stddef.h>
#include <stdint.h>

enum bench_op {
	BENCH_OP_GET,
	BENCH_OP_PUT,
	BENCH_OP_COUNT,
};

enum bench_protocol {
	BENCH_PROTOCOL_NATIVE,
	BENCH_PROTOCOL_RESP,
};

/* Outcome of one request. The first nine mirror ringkv.Status numerically. */
#define BENCH_STATUSES(X)                         \
	X(BENCH_STATUS_OK, "OK")                      \
	X(BENCH_STATUS_NOT_FOUND, "NOT_FOUND")        \
	X(BENCH_STATUS_INVALID_ARGUMENT, "INVALID_ARGUMENT") \
	X(BENCH_STATUS_TOO_LARGE, "TOO_LARGE")        \
	X(BENCH_STATUS_RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED") \
	X(BENCH_STATUS_UNAVAILABLE, "UNAVAILABLE")    \
	X(BENCH_STATUS_NOT_LEADER, "NOT_LEADER")      \
	X(BENCH_STATUS_TIMEOUT, "TIMEOUT")            \
	X(BENCH_STATUS_INTERNAL, "INTERNAL")          \
	X(BENCH_STATUS_UNKNOWN, "UNKNOWN_STATUS")     \
	X(BENCH_STATUS_RESP_ERROR, "RESP_ERROR")      \
	X(BENCH_STATUS_CONNECTION, "CONNECTION")

enum bench_status {
#define BENCH_STATUS_ENUM(name, text) name,
	BENCH_STATUSES(BENCH_STATUS_ENUM)
#undef BENCH_STATUS_ENUM
	BENCH_STATUS_COUNT,
};

/* Frames larger than this are a protocol error, never an allocation. */
#define CODEC_MAX_FRAME (64u << 20)

/* One parsed reply. */
struct bench_reply {
	uint64_t id;              /* native: the echoed request id; RESP: 0 (in order) */
	enum bench_status status; /* OK, NOT_FOUND, or an error status */
};

/* Name of a status as printed in reports ("NOT_LEADER"). */
const char *codec_status_name(enum bench_status status);
/* Name of an operation ("get", "put"). */
const char *codec_op_name(enum bench_op op);

/* Upper bound on the encoded size of one request. */
size_t codec_request_size_max(enum bench_protocol protocol, size_t key_size, size_t value_size);

/* Encode one request into out; returns its length. value is ignored for GET. */
size_t codec_encode(enum bench_protocol protocol, char *out, uint64_t id, enum bench_op op,
		    const char *key, size_t key_len, const char *value, size_t value_len);
size_t native_encode(char *out, uint64_t id, enum bench_op op, const char *key, size_t key_len,
		     const char *value, size_t value_len);
size_t resp_encode(char *out, enum bench_op op, const char *key, size_t key_len,
		   const char *value, size_t value_len);

/*
 * Parse one reply from the front of buf[0..len). Returns 0 with *reply and
 * *consumed filled; RKV_EAGAIN when more bytes are needed (*consumed is then
 * the total length the reply will need when known, else 0); RKV_EPROTO when
 * the stream cannot be parsed (the connection must be dropped).
 */
int codec_parse(enum bench_protocol protocol, const char *buf, size_t len,
		struct bench_reply *reply, size_t *consumed);
int native_parse(const char *buf, size_t len, struct bench_reply *reply, size_t *consumed);
int resp_parse(const char *buf, size_t len, struct bench_reply *reply, size_t *consumed);

#endif
