/*
 * libFuzzer harness for the frame codec: frame_peek on the raw input, then
 * both payload decoders on what follows the prefix (complete or not), with
 * the default limits and with tiny ones so the too-large paths run too.
 * Invariants: only documented return codes, and every returned slice (scan
 * pairs included) lies inside the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/errors.h"
#include "proto/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

static int in_range(struct frame_slice s, const uint8_t *p, size_t n)
{
	return s.len == 0 || (s.data >= p && s.len <= n && s.data <= p + n - s.len);
}

static const uint8_t *fuzz_data;
static size_t fuzz_size;

/* Every SCAN pair of a response lies inside the input too. */
static int check_pair(void *arg, const struct frame_kv *pair)
{
	(void)arg;
	CHECK(pair->key.data != NULL && pair->value.data != NULL);
	CHECK(in_range(pair->key, fuzz_data, fuzz_size) &&
	      in_range(pair->value, fuzz_data, fuzz_size));
	return 0;
}

static void run(const uint8_t *data, size_t size, const struct frame_limits *l)
{
	struct frame_request req;
	struct frame_slice value, error;
	uint64_t id;
	uint32_t plen = 0;
	int status, rc;
	char err[80];

	rc = frame_peek(data, size, l, &plen);
	CHECK(rc == 0 || rc == RKV_EAGAIN || rc == RKV_ETOOLARGE);
	if (rc == 0)
		CHECK((size_t)plen <= size - FRAME_HEADER_SIZE);
	if (size < FRAME_HEADER_SIZE)
		return;
	data += FRAME_HEADER_SIZE;
	size -= FRAME_HEADER_SIZE;

	rc = frame_decode_request(data, size, l, &req, err, sizeof(err));
	CHECK(rc == 0 || rc == RKV_EPROTO || rc == RKV_EINVAL || rc == RKV_ETOOLARGE);
	if (rc == 0) {
		CHECK(req.op == FRAME_OP_GET || req.op == FRAME_OP_PUT ||
		      req.op == FRAME_OP_DELETE || req.op == FRAME_OP_SCAN);
		/* Any key may be empty (the empty key is a key); none is
		 * over the limit. */
		CHECK(req.key.len <= l->max_key && req.end.len <= l->max_key);
		CHECK(req.value.len <= l->max_value);
		CHECK(in_range(req.key, data, size) && in_range(req.value, data, size) &&
		      in_range(req.end, data, size));
		CHECK(req.op != FRAME_OP_SCAN ||
		      (req.limit >= 1 && req.limit <= FRAME_SCAN_MAX_LIMIT));
	}
	fuzz_data = data;
	fuzz_size = size;
	rc = frame_decode_response_pairs(data, size, &id, &status, &value, &error,
					 check_pair, NULL);
	CHECK(rc == 0 || rc == RKV_EPROTO);
	if (rc == 0)
		CHECK(status >= 0 && in_range(value, data, size) &&
		      in_range(error, data, size));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame_limits l;
	static const struct frame_limits tiny = { .max_frame = 64, .max_key = 4,
						  .max_value = 8 };

	frame_limits_default(&l);
	run(data, size, &l);
	run(data, size, &tiny);
	return 0;
}
