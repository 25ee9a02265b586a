/*
 * Manifest codec, replay and version bookkeeping; the format and the
 * invariants are in manifest.h. Replay reads bytes from disk, so every
 * length and field is checked and every failure is a verdict with an offset;
 * a record is parsed item by item straight into the version (no per-record
 * arrays), which is safe because a record whose CRC is good but whose edit
 * does not fit fails the whole replay anyway.
 */
#include "shard/manifest.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "shard/crc32c.h"

static const uint8_t manifest_magic[8] = { 'R', 'K', 'V', 'M', 'A', 'N', 0, 1 };

enum item_tag {
	TAG_NEXT_FILE_NUMBER = 1,
	TAG_FLUSHED_INDEX = 2,
	TAG_DELETE_FILE = 3,
	TAG_ADD_FILE = 4,
	TAG_DAMAGED_FILE = 5,
};

/* Payload bytes a snapshot puts in one record before starting the next. */
#define SNAPSHOT_RECORD_TARGET (1u << 20)

void manifest_header_encode(uint8_t out[MANIFEST_HEADER_SIZE])
{
	assert(out != NULL);
	memcpy(out, manifest_magic, sizeof(manifest_magic));
	sstable_put_u32(out + 8, MANIFEST_FORMAT_VERSION);
	sstable_put_u32(out + 12, crc32c(0, out, 12));
}

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static size_t add_item_size(const struct manifest_file *f)
{
	return 1 + varint_len(f->level) + varint_len(f->number) + varint_len(f->size) +
	       varint_len(f->entry_count) + varint_len(f->smallest_len) + f->smallest_len +
	       varint_len(f->largest_len) + f->largest_len;
}

static uint8_t *put_add_item(uint8_t *p, const struct manifest_file *f)
{
	*p++ = TAG_ADD_FILE;
	p += sstable_put_varint(p, f->level);
	p += sstable_put_varint(p, f->number);
	p += sstable_put_varint(p, f->size);
	p += sstable_put_varint(p, f->entry_count);
	p += sstable_put_varint(p, f->smallest_len);
	if (f->smallest_len != 0)
		memcpy(p, f->smallest, f->smallest_len);
	p += f->smallest_len;
	p += sstable_put_varint(p, f->largest_len);
	if (f->largest_len != 0)
		memcpy(p, f->largest, f->largest_len);
	return p + f->largest_len;
}

static uint8_t *put_damaged_item(uint8_t *p, uint64_t level, uint64_t number)
{
	*p++ = TAG_DAMAGED_FILE;
	p += sstable_put_varint(p, level);
	p += sstable_put_varint(p, number);
	return p;
}

static size_t payload_size(const struct manifest_edit *e)
{
	size_t n = 0;

	if (e->has_next_file_number)
		n += 1 + varint_len(e->next_file_number);
	if (e->has_flushed_index)
		n += 1 + varint_len(e->flushed_index);
	for (size_t i = 0; i < e->ndeleted; i++)
		n += 1 + varint_len(e->deleted[i].level) + varint_len(e->deleted[i].number);
	for (size_t i = 0; i < e->nadded; i++)
		n += add_item_size(&e->added[i]);
	for (size_t i = 0; i < e->ndamaged; i++)
		n += 1 + varint_len(e->damaged[i].level) + varint_len(e->damaged[i].number);
	return n;
}

size_t manifest_edit_size(const struct manifest_edit *e)
{
	assert(e != NULL);
	return MANIFEST_RECORD_HEADER_SIZE + payload_size(e);
}

/* Fills the record header of a payload already in place after it. */
static size_t seal_record(uint8_t *out, size_t payload_len)
{
	assert(payload_len <= MANIFEST_MAX_PAYLOAD);
	sstable_put_u32(out, (uint32_t)payload_len);
	sstable_put_u32(out + 4, crc32c(0, out + MANIFEST_RECORD_HEADER_SIZE, payload_len));
	sstable_put_u32(out + 8, crc32c(0, out, 8));
	sstable_put_u32(out + 12, 0);
	return MANIFEST_RECORD_HEADER_SIZE + payload_len;
}

size_t manifest_edit_encode(const struct manifest_edit *e, uint8_t *out)
{
	uint8_t *p = out + MANIFEST_RECORD_HEADER_SIZE;

	assert(e != NULL && out != NULL);
	assert(e->deleted != NULL || e->ndeleted == 0);
	assert(e->added != NULL || e->nadded == 0);
	assert(e->damaged != NULL || e->ndamaged == 0);
	if (e->has_next_file_number) {
		*p++ = TAG_NEXT_FILE_NUMBER;
		p += sstable_put_varint(p, e->next_file_number);
	}
	if (e->has_flushed_index) {
		*p++ = TAG_FLUSHED_INDEX;
		p += sstable_put_varint(p, e->flushed_index);
	}
	for (size_t i = 0; i < e->ndeleted; i++) {
		*p++ = TAG_DELETE_FILE;
		p += sstable_put_varint(p, e->deleted[i].level);
		p += sstable_put_varint(p, e->deleted[i].number);
	}
	for (size_t i = 0; i < e->nadded; i++)
		p = put_add_item(p, &e->added[i]);
	for (size_t i = 0; i < e->ndamaged; i++)
		p = put_damaged_item(p, e->damaged[i].level, e->damaged[i].number);
	return seal_record(out, (size_t)(p - out - MANIFEST_RECORD_HEADER_SIZE));
}

void manifest_version_init(struct manifest_version *v)
{
	assert(v != NULL);
	memset(v, 0, sizeof(*v));
	v->next_file_number = 1;
}

void manifest_version_destroy(struct manifest_version *v)
{
	assert(v != NULL);
	for (int l = 0; l < MANIFEST_LEVELS; l++) {
		struct manifest_level *lv = &v->levels[l];

		for (size_t i = 0; i < lv->count; i++)
			free((void *)lv->files[i].smallest);
		free(lv->files);
	}
	memset(v, 0, sizeof(*v));
}

static int fail(const char **reason, const char *why)
{
	if (reason != NULL)
		*reason = why;
	return RKV_ECORRUPT;
}

/* Edit bookkeeping: levels touched, to check once the edit is whole. */
struct apply_state {
	unsigned touched;        /* bit per level */
	uint64_t max_added;      /* largest file number added, 0 if none */
};

/* The file numbered `number` in level `level`, or NULL (a bad level too). */
static struct manifest_file *level_file(struct manifest_version *v, uint64_t level,
					uint64_t number)
{
	if (level >= MANIFEST_LEVELS)
		return NULL;
	for (size_t i = 0; i < v->levels[level].count; i++)
		if (v->levels[level].files[i].number == number)
			return &v->levels[level].files[i];
	return NULL;
}

static int delete_file(struct manifest_version *v, uint64_t level, uint64_t number,
		       struct apply_state *st, const char **reason)
{
	struct manifest_file *f = level_file(v, level, number);
	struct manifest_level *lv;
	size_t i;

	if (level >= MANIFEST_LEVELS)
		return fail(reason, "level out of range");
	if (!f)
		return fail(reason, "delete of a file not in its level");
	lv = &v->levels[level];
	i = (size_t)(f - lv->files);
	lv->bytes -= f->size;
	if (f->damaged)
		v->ndamaged--;
	free((void *)f->smallest);
	memmove(&lv->files[i], &lv->files[i + 1], (lv->count - i - 1) * sizeof(*lv->files));
	lv->count--;
	st->touched |= 1u << level;
	return 0;
}

/* Where `f` goes: level 0 by number descending, others by smallest key. */
static size_t insert_pos(const struct manifest_level *lv, uint32_t level,
			 const struct manifest_file *f)
{
	size_t lo = 0, hi = lv->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct manifest_file *m = &lv->files[mid];
		bool before = level == 0 ? m->number > f->number
					 : key_order_cmp(m->smallest, m->smallest_len, f->smallest,
							   f->smallest_len) <= 0;

		if (before)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int add_file(struct manifest_version *v, const struct manifest_file *f,
		    struct apply_state *st, const char **reason)
{
	struct manifest_level *lv;
	struct manifest_file copy = *f;
	uint8_t *keys;
	size_t pos;

	if (f->level >= MANIFEST_LEVELS)
		return fail(reason, "level out of range");
	if (key_order_cmp(f->smallest, f->smallest_len, f->largest, f->largest_len) > 0)
		return fail(reason, "file with smallest key above largest");
	lv = &v->levels[f->level];
	for (size_t i = 0; i < lv->count; i++)
		if (lv->files[i].number == f->number)
			return fail(reason, "file number added twice to a level");
	if (lv->count == lv->cap) {
		size_t cap = lv->cap != 0 ? lv->cap * 2 : 8;
		struct manifest_file *p = realloc(lv->files, cap * sizeof(*p));

		if (p == NULL)
			return -ENOMEM;
		lv->files = p;
		lv->cap = cap;
	}
	keys = malloc((size_t)f->smallest_len + f->largest_len + 1);
	if (keys == NULL)
		return -ENOMEM;
	if (f->smallest_len != 0)
		memcpy(keys, f->smallest, f->smallest_len);
	if (f->largest_len != 0)
		memcpy(keys + f->smallest_len, f->largest, f->largest_len);
	copy.smallest = keys;
	copy.largest = keys + f->smallest_len;
	copy.damaged = false; /* only item 5 marks a file */
	pos = insert_pos(lv, f->level, &copy);
	memmove(&lv->files[pos + 1], &lv->files[pos], (lv->count - pos) * sizeof(*lv->files));
	lv->files[pos] = copy;
	lv->count++;
	lv->bytes += f->size;
	st->touched |= 1u << f->level;
	if (f->number > st->max_added)
		st->max_added = f->number;
	return 0;
}

static int mark_damaged(struct manifest_version *v, uint64_t level, uint64_t number,
			const char **reason)
{
	struct manifest_file *f = level_file(v, level, number);

	if (level >= MANIFEST_LEVELS)
		return fail(reason, "level out of range");
	if (!f)
		return fail(reason, "damage mark on a file not in its level");
	if (!f->damaged) {
		f->damaged = true;
		v->ndamaged++;
	}
	return 0;
}

const struct manifest_file *manifest_version_find(const struct manifest_version *v,
						  uint64_t number)
{
	assert(v != NULL);
	for (int l = 0; l < MANIFEST_LEVELS; l++)
		for (size_t i = 0; i < v->levels[l].count; i++)
			if (v->levels[l].files[i].number == number)
				return &v->levels[l].files[i];
	return NULL;
}

/* The invariants of manifest.h, for the levels an edit touched. */
static int check_edit(const struct manifest_version *v, const struct apply_state *st,
		      const char **reason)
{
	if (st->max_added != 0 && st->max_added >= v->next_file_number)
		return fail(reason, "file number not below the next file number");
	for (unsigned l = 1; l < MANIFEST_LEVELS; l++) {
		const struct manifest_level *lv = &v->levels[l];

		if (!(st->touched & (1u << l)))
			continue;
		for (size_t i = 1; i < lv->count; i++) {
			const struct manifest_file *a = &lv->files[i - 1], *b = &lv->files[i];

			if (key_order_cmp(a->largest, a->largest_len, b->smallest,
					    b->smallest_len) >= 0)
				return fail(reason, "files of a level >= 1 overlap");
		}
	}
	return 0;
}

int manifest_version_apply(struct manifest_version *v, const struct manifest_edit *e,
			   const char **reason)
{
	struct apply_state st = { 0 };
	int rv;

	assert(v != NULL && e != NULL);
	if (e->has_next_file_number)
		v->next_file_number = e->next_file_number;
	if (e->has_flushed_index)
		v->flushed_index = e->flushed_index;
	for (size_t i = 0; i < e->ndeleted; i++) {
		rv = delete_file(v, e->deleted[i].level, e->deleted[i].number, &st, reason);
		if (rv != 0)
			return rv;
	}
	for (size_t i = 0; i < e->nadded; i++) {
		rv = add_file(v, &e->added[i], &st, reason);
		if (rv != 0)
			return rv;
	}
	for (size_t i = 0; i < e->ndamaged; i++) {
		rv = mark_damaged(v, e->damaged[i].level, e->damaged[i].number, reason);
		if (rv != 0)
			return rv;
	}
	return check_edit(v, &st, reason);
}

/* Reads a varint-prefixed key of at most the bytes left. */
static const uint8_t *get_key(const uint8_t *p, const uint8_t *end, const uint8_t **key,
			      uint32_t *key_len)
{
	uint64_t n;

	p = sstable_get_varint(p, end, &n);
	if (p == NULL || n > (uint64_t)(end - p))
		return NULL;
	*key = p;
	*key_len = (uint32_t)n;
	return p + n;
}

/* Parses one record's payload and applies it item by item. */
static int apply_payload(struct manifest_version *v, const uint8_t *p, const uint8_t *end,
			 const char **reason)
{
	struct apply_state st = { 0 };
	int rv;

	while (p < end) {
		uint8_t tag = *p++;
		uint64_t a, b;
		struct manifest_file f;

		switch (tag) {
		case TAG_NEXT_FILE_NUMBER:
			if ((p = sstable_get_varint(p, end, &v->next_file_number)) == NULL)
				return fail(reason, "truncated next file number");
			break;
		case TAG_FLUSHED_INDEX:
			if ((p = sstable_get_varint(p, end, &v->flushed_index)) == NULL)
				return fail(reason, "truncated flushed index");
			break;
		case TAG_DELETE_FILE:
			if ((p = sstable_get_varint(p, end, &a)) == NULL ||
			    (p = sstable_get_varint(p, end, &b)) == NULL)
				return fail(reason, "truncated delete item");
			if ((rv = delete_file(v, a, b, &st, reason)) != 0)
				return rv;
			break;
		case TAG_ADD_FILE:
			if ((p = sstable_get_varint(p, end, &a)) == NULL ||
			    (p = sstable_get_varint(p, end, &f.number)) == NULL ||
			    (p = sstable_get_varint(p, end, &f.size)) == NULL ||
			    (p = sstable_get_varint(p, end, &f.entry_count)) == NULL ||
			    (p = get_key(p, end, &f.smallest, &f.smallest_len)) == NULL ||
			    (p = get_key(p, end, &f.largest, &f.largest_len)) == NULL)
				return fail(reason, "truncated add item");
			if (a >= MANIFEST_LEVELS)
				return fail(reason, "level out of range");
			f.level = (uint32_t)a;
			if ((rv = add_file(v, &f, &st, reason)) != 0)
				return rv;
			break;
		case TAG_DAMAGED_FILE:
			if ((p = sstable_get_varint(p, end, &a)) == NULL ||
			    (p = sstable_get_varint(p, end, &b)) == NULL)
				return fail(reason, "truncated damaged item");
			if ((rv = mark_damaged(v, a, b, reason)) != 0)
				return rv;
			break;
		default:
			return fail(reason, "unknown manifest item");
		}
	}
	return check_edit(v, &st, reason);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static int replay_corrupt(struct manifest_replay *r, size_t offset, const char *why)
{
	r->offset = offset;
	r->reason = why;
	return RKV_ECORRUPT;
}

int manifest_replay(struct manifest_version *v, const uint8_t *buf, size_t len,
		    struct manifest_replay *r)
{
	size_t off = MANIFEST_HEADER_SIZE;

	assert(v != NULL && r != NULL && (buf != NULL || len == 0));
	memset(r, 0, sizeof(*r));
	if (len < MANIFEST_HEADER_SIZE)
		return replay_corrupt(r, 0, "manifest shorter than its header");
	if (memcmp(buf, manifest_magic, sizeof(manifest_magic)) != 0)
		return replay_corrupt(r, 0, "bad manifest magic");
	if (sstable_get_u32(buf + 12) != crc32c(0, buf, 12))
		return replay_corrupt(r, 0, "manifest header crc mismatch");
	if (sstable_get_u32(buf + 8) != MANIFEST_FORMAT_VERSION)
		return replay_corrupt(r, 0, "unknown manifest format version");
	for (;;) {
		const uint8_t *h = buf + off;
		size_t left = len - off;
		uint32_t payload_len;
		const char *why = NULL;
		int rv;

		r->valid_len = off;
		if (left == 0)
			return 0;
		if (left < MANIFEST_RECORD_HEADER_SIZE) {
			r->torn = true;
			return 0;
		}
		if (sstable_get_u32(h + 8) != crc32c(0, h, 8) || sstable_get_u32(h + 12) != 0) {
			if (all_zero(h, left)) {
				r->torn = true;
				return 0;
			}
			return replay_corrupt(r, off, "bad record header");
		}
		payload_len = sstable_get_u32(h);
		if (payload_len > MANIFEST_MAX_PAYLOAD)
			return replay_corrupt(r, off, "payload length above MANIFEST_MAX_PAYLOAD");
		if (payload_len > left - MANIFEST_RECORD_HEADER_SIZE) {
			r->torn = true;
			return 0;
		}
		if (sstable_get_u32(h + 4) !=
		    crc32c(0, h + MANIFEST_RECORD_HEADER_SIZE, payload_len)) {
			if (payload_len == left - MANIFEST_RECORD_HEADER_SIZE) {
				r->torn = true;
				return 0;
			}
			return replay_corrupt(r, off, "bad payload crc");
		}
		rv = apply_payload(v, h + MANIFEST_RECORD_HEADER_SIZE,
				   h + MANIFEST_RECORD_HEADER_SIZE + payload_len, &why);
		if (rv == RKV_ECORRUPT)
			return replay_corrupt(r, off, why);
		if (rv != 0)
			return rv;
		r->records++;
		off += MANIFEST_RECORD_HEADER_SIZE + payload_len;
	}
}

int manifest_version_snapshot(const struct manifest_version *v, struct sstable_buf *out)
{
	struct manifest_edit first = {
		.has_next_file_number = true,
		.next_file_number = v->next_file_number,
		.has_flushed_index = true,
		.flushed_index = v->flushed_index,
	};
	size_t start = out->len, rec = 0, payload = 0;
	int rv;

	assert(v != NULL && out != NULL);
	rv = sstable_buf_reserve(out, MANIFEST_HEADER_SIZE + manifest_edit_size(&first));
	if (rv != 0)
		return rv;
	manifest_header_encode(out->data + out->len);
	out->len += MANIFEST_HEADER_SIZE;
	/* The first record carries the counters and as many files as fit the
	 * target; past SNAPSHOT_RECORD_TARGET bytes a new record starts. A record
	 * is sealed (CRCs) once, when it is closed. */
	rec = out->len;
	out->len += manifest_edit_encode(&first, out->data + out->len);
	payload = out->len - rec - MANIFEST_RECORD_HEADER_SIZE;
	for (int l = 0; l < MANIFEST_LEVELS; l++) {
		const struct manifest_level *lv = &v->levels[l];

		for (size_t i = 0; i < lv->count; i++) {
			const struct manifest_file *f = &lv->files[i];
			size_t item = add_item_size(f);

			if (f->damaged) /* the mark follows its add, in the same record */
				item += 1 + varint_len(f->level) + varint_len(f->number);

			assert(item <= MANIFEST_MAX_PAYLOAD);
			rv = sstable_buf_reserve(out, MANIFEST_RECORD_HEADER_SIZE + item);
			if (rv != 0) {
				out->len = start;
				return rv;
			}
			if (payload + item > SNAPSHOT_RECORD_TARGET) {
				seal_record(out->data + rec, payload);
				rec = out->len;
				payload = 0;
				out->len += MANIFEST_RECORD_HEADER_SIZE;
			}
			{
				uint8_t *p = put_add_item(out->data + out->len, f);

				if (f->damaged)
					put_damaged_item(p, f->level, f->number);
			}
			out->len += item;
			payload += item;
		}
	}
	seal_record(out->data + rec, payload);
	return 0;
}
