/*
 * Data block builder and reader; the layout is in sstable_block.h. The
 * reader's invariant: after sstable_block_open() the restart array is inside
 * the block and every restart offset is inside the entries, so the only
 * unchecked bytes left are the entries themselves, and decode_entry() checks
 * each varint and length against entries_len before touching the bytes.
 */
#include "shard/sstable_block.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "core/errors.h"
#include "shard/crc32c.h"

int sstable_buf_reserve(struct sstable_buf *b, size_t extra)
{
	size_t cap;
	uint8_t *p;

	assert(b != NULL);
	if (b->cap - b->len >= extra)
		return 0;
	if (extra > SIZE_MAX / 2 - b->len)
		return -ENOMEM;
	cap = b->cap != 0 ? b->cap : 256;
	while (cap - b->len < extra)
		cap *= 2;
	p = realloc(b->data, cap);
	if (p == NULL)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int sstable_buf_append(struct sstable_buf *b, const void *p, size_t n)
{
	int rv = sstable_buf_reserve(b, n);

	if (rv != 0)
		return rv;
	if (n != 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void sstable_buf_free(struct sstable_buf *b)
{
	assert(b != NULL);
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void sstable_block_builder_init(struct sstable_block_builder *b, unsigned restart_interval)
{
	assert(b != NULL && restart_interval >= 1);
	memset(b, 0, sizeof(*b));
	b->restart_interval = restart_interval;
}

void sstable_block_builder_destroy(struct sstable_block_builder *b)
{
	assert(b != NULL);
	sstable_buf_free(&b->entries);
	sstable_buf_free(&b->last_key);
	free(b->restarts);
	b->restarts = NULL;
	b->nrestarts = 0;
	b->restarts_cap = 0;
}

static int restart_push(struct sstable_block_builder *b, uint32_t offset)
{
	if (b->nrestarts == b->restarts_cap) {
		size_t cap = b->restarts_cap != 0 ? b->restarts_cap * 2 : 64;
		uint32_t *p = realloc(b->restarts, cap * sizeof(*p));

		if (p == NULL)
			return -ENOMEM;
		b->restarts = p;
		b->restarts_cap = cap;
	}
	b->restarts[b->nrestarts++] = offset;
	return 0;
}

int sstable_block_builder_add(struct sstable_block_builder *b, const void *key, size_t key_len,
			      const void *value, size_t value_len, enum sstable_kind kind)
{
	size_t shared = 0;
	bool restart;
	uint8_t *p;
	int rv;

	assert(b != NULL && (key != NULL || key_len == 0));
	assert(value != NULL || value_len == 0);
	assert(kind == SSTABLE_VALUE || (kind == SSTABLE_TOMBSTONE && value_len == 0) ||
	       (kind == SSTABLE_VALUE_DEADLINE && value_len >= SSTABLE_DEADLINE_SIZE));
	assert(b->count == 0 ||
	       key_order_cmp(b->last_key.data, b->last_key.len, key, key_len) < 0);
	assert(b->entries.len + key_len + value_len < UINT32_MAX / 2);

	restart = b->count == 0 || b->since_restart >= b->restart_interval;
	if (!restart) {
		size_t n = b->last_key.len < key_len ? b->last_key.len : key_len;
		const uint8_t *k = key;

		while (shared < n && b->last_key.data[shared] == k[shared])
			shared++;
	}
	rv = sstable_buf_reserve(&b->entries, 3 * SSTABLE_VARINT_MAX + key_len + value_len);
	if (rv == 0 && b->last_key.cap < key_len)
		rv = sstable_buf_reserve(&b->last_key, key_len);
	if (rv == 0 && restart)
		rv = restart_push(b, (uint32_t)b->entries.len);
	if (rv != 0)
		return rv;

	p = b->entries.data + b->entries.len;
	p += sstable_put_varint(p, shared);
	p += sstable_put_varint(p, key_len - shared);
	p += sstable_put_varint(p, (uint64_t)value_len * 2 + (kind != SSTABLE_VALUE));
	if (key_len - shared != 0)
		memcpy(p, (const uint8_t *)key + shared, key_len - shared);
	p += key_len - shared;
	if (value_len != 0)
		memcpy(p, value, value_len);
	p += value_len;
	b->entries.len = (size_t)(p - b->entries.data);

	if (key_len - shared != 0)
		memcpy(b->last_key.data + shared, (const uint8_t *)key + shared, key_len - shared);
	b->last_key.len = key_len;
	b->since_restart = restart ? 1 : b->since_restart + 1;
	b->count++;
	return 0;
}

size_t sstable_block_builder_size(const struct sstable_block_builder *b)
{
	assert(b != NULL);
	return b->entries.len + 4 * b->nrestarts + SSTABLE_BLOCK_TRAILER_SIZE;
}

int sstable_block_builder_finish(struct sstable_block_builder *b, struct sstable_buf *out,
				 size_t *block_len)
{
	size_t size = sstable_block_builder_size(b);
	uint8_t *start, *p;
	int rv;

	assert(b != NULL && out != NULL && block_len != NULL);
	rv = sstable_buf_reserve(out, size);
	if (rv != 0)
		return rv;
	start = out->data + out->len;
	if (b->entries.len != 0)
		memcpy(start, b->entries.data, b->entries.len);
	p = start + b->entries.len;
	for (size_t i = 0; i < b->nrestarts; i++, p += 4)
		sstable_put_u32(p, b->restarts[i]);
	sstable_put_u32(p, (uint32_t)b->nrestarts);
	p += 4;
	sstable_put_u32(p, crc32c(0, start, (size_t)(p - start)));
	out->len += size;
	*block_len = size;

	b->entries.len = 0;
	b->nrestarts = 0;
	b->since_restart = 0;
	b->count = 0;
	return 0;
}

static int fail(const char **reason, const char *why)
{
	if (reason != NULL)
		*reason = why;
	return RKV_ECORRUPT;
}

int sstable_block_open(struct sstable_block *blk, const uint8_t *buf, size_t len,
		       bool verify_crc, const char **reason)
{
	size_t body, nrestarts, entries_len;
	uint32_t prev = 0;

	assert(blk != NULL && (buf != NULL || len == 0));
	if (len < SSTABLE_BLOCK_TRAILER_SIZE)
		return fail(reason, "block shorter than its trailer");
	if (len > UINT32_MAX)
		return fail(reason, "block larger than 4 GiB");
	body = len - 4;
	if (verify_crc && crc32c(0, buf, body) != sstable_get_u32(buf + body))
		return fail(reason, "block crc mismatch");
	nrestarts = sstable_get_u32(buf + body - 4);
	if (nrestarts > (body - 4) / 4)
		return fail(reason, "restart array larger than the block");
	entries_len = body - 4 - 4 * nrestarts;
	if ((nrestarts == 0) != (entries_len == 0))
		return fail(reason, "restart count does not match the entries");
	blk->data = buf;
	blk->entries_len = (uint32_t)entries_len;
	blk->nrestarts = (uint32_t)nrestarts;
	blk->restarts = buf + entries_len;
	for (size_t i = 0; i < nrestarts; i++) {
		uint32_t r = sstable_get_u32(blk->restarts + 4 * i);

		if (i == 0 ? r != 0 : r <= prev)
			return fail(reason, "restart offsets not increasing from 0");
		if (r >= entries_len)
			return fail(reason, "restart offset outside the entries");
		prev = r;
	}
	return 0;
}

void sstable_block_iter_init(struct sstable_block_iter *it)
{
	assert(it != NULL);
	memset(it, 0, sizeof(*it));
}

void sstable_block_iter_destroy(struct sstable_block_iter *it)
{
	assert(it != NULL);
	free(it->key);
	it->key = NULL;
	it->key_cap = 0;
	it->valid = false;
}

/* Entry header at `off`: the three varints. NULL when they do not fit. */
struct entry_head {
	uint64_t shared;
	uint64_t unshared;
	uint64_t value_len;
	enum sstable_kind kind;
	const uint8_t *key_delta;
	const uint8_t *value;
	const uint8_t *end;
};

static const char *decode_head(const struct sstable_block *blk, uint32_t off,
			       struct entry_head *h)
{
	const uint8_t *p = blk->data + off;
	const uint8_t *end = blk->data + blk->entries_len;
	uint64_t vk;

	if ((p = sstable_get_varint(p, end, &h->shared)) == NULL ||
	    (p = sstable_get_varint(p, end, &h->unshared)) == NULL ||
	    (p = sstable_get_varint(p, end, &vk)) == NULL)
		return "entry header runs past the entries";
	h->value_len = vk >> 1;
	h->kind = SSTABLE_VALUE;
	if (vk & 1) {
		if (h->value_len != 0 && h->value_len < SSTABLE_DEADLINE_SIZE)
			return "value with a deadline shorter than the deadline";
		h->kind = h->value_len == 0 ? SSTABLE_TOMBSTONE : SSTABLE_VALUE_DEADLINE;
	}
	if (h->unshared > (uint64_t)(end - p) || h->value_len > (uint64_t)(end - p) - h->unshared)
		return "entry runs past the entries";
	h->key_delta = p;
	h->value = p + h->unshared;
	h->end = h->value + h->value_len;
	return NULL;
}

static int grow_key(struct sstable_block_iter *it, uint64_t need)
{
	uint64_t cap = it->key_cap != 0 ? it->key_cap : 64;
	uint8_t *p;

	while (cap < need)
		cap *= 2;
	if (cap > UINT32_MAX)
		cap = UINT32_MAX;
	p = realloc(it->key, cap);
	if (p == NULL)
		return -ENOMEM;
	it->key = p;
	it->key_cap = (uint32_t)cap;
	return 0;
}

static int corrupt_iter(struct sstable_block_iter *it, const char *why)
{
	it->valid = false;
	it->reason = why;
	return RKV_ECORRUPT;
}

/* Decodes the entry at it->next, whose predecessor's key is in it->key. */
static int step(struct sstable_block_iter *it)
{
	struct entry_head h;
	const char *why;
	uint64_t key_len;

	if (it->next >= it->blk.entries_len) {
		it->valid = false;
		return 0;
	}
	why = decode_head(&it->blk, it->next, &h);
	if (why != NULL)
		return corrupt_iter(it, why);
	if (h.shared > (it->valid ? it->key_len : 0))
		return corrupt_iter(it, "shared prefix longer than the previous key");
	key_len = h.shared + h.unshared; /* < entries_len < 4 GiB: no overflow */
	if (key_len > it->key_cap && grow_key(it, key_len) != 0) {
		it->valid = false;
		return -ENOMEM;
	}
	if (h.unshared != 0)
		memcpy(it->key + h.shared, h.key_delta, h.unshared);
	it->key_len = (uint32_t)key_len;
	it->kind = h.kind;
	it->value = h.kind == SSTABLE_TOMBSTONE ? NULL : h.value;
	it->value_len = (uint32_t)h.value_len;
	it->offset = it->next;
	it->next = (uint32_t)(h.end - it->blk.data);
	it->valid = true;
	return 0;
}

/* Positions before the entry at restart point `r` (decoded by the next step). */
static void at_restart(struct sstable_block_iter *it, uint32_t r)
{
	it->next = sstable_get_u32(it->blk.restarts + 4 * (size_t)r);
	it->valid = false;
	it->reason = NULL;
}

int sstable_block_iter_first(struct sstable_block_iter *it, const struct sstable_block *blk)
{
	assert(it != NULL && blk != NULL);
	it->blk = *blk;
	it->next = 0;
	it->valid = false;
	it->reason = NULL;
	return step(it);
}

int sstable_block_iter_next(struct sstable_block_iter *it)
{
	assert(it != NULL && it->valid);
	return step(it);
}

int sstable_block_iter_seek(struct sstable_block_iter *it, const struct sstable_block *blk,
			    const void *key, size_t key_len)
{
	uint32_t lo = 0, hi;
	int rv;

	assert(it != NULL && blk != NULL && (key != NULL || key_len == 0));
	it->blk = *blk;
	it->valid = false;
	it->reason = NULL;
	if (blk->nrestarts == 0) {
		it->next = blk->entries_len;
		return 0;
	}
	/* Last restart whose key is < key (restart 0 if none): invariant
	 * key(restart lo) < key or lo == 0, and key(restart hi + 1) >= key. */
	hi = blk->nrestarts - 1;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo + 1) / 2;
		uint32_t off = sstable_get_u32(blk->restarts + 4 * (size_t)mid);
		struct entry_head h;
		const char *why = decode_head(blk, off, &h);

		if (why != NULL)
			return corrupt_iter(it, why);
		if (h.shared != 0)
			return corrupt_iter(it, "restart entry with a shared prefix");
		if (key_order_cmp(h.key_delta, h.unshared, key, key_len) < 0)
			lo = mid;
		else
			hi = mid - 1;
	}
	at_restart(it, lo);
	for (;;) {
		rv = step(it);
		if (rv != 0 || !it->valid)
			return rv;
		if (key_order_cmp(it->key, it->key_len, key, key_len) >= 0)
			return 0;
	}
}
