/*
 * Start-up recovery of one shard's WAL: the only code that decides which
 * bytes on disk are the log. It runs before the reactor, so it uses plain
 * blocking calls and may read a whole segment into memory.
 *
 * What is safe to throw away. An append stores one batch of records at the
 * end of the last segment (into preallocated, zero-filled space) followed by
 * fdatasync; a crash can leave only a prefix of that batch on disk, followed
 * by zeros where the data never arrived. Zeros after the last whole record
 * are simply the unused end of the segment and stay where they are (the
 * writer appends into them). So the only bytes recovery may drop are
 * at the end of the LAST segment, and only when wal_scanner_next() calls them
 * torn (see the rules in wal_format.h: nothing valid may follow them).
 * Anything else that does not parse -- a bad record in an earlier segment,
 * a record followed by more bytes, a missing range of indexes between two
 * segments -- means data we acknowledged may be gone, and recovery refuses
 * to start, naming the file and byte offset so an operator can look.
 *
 * The same reasoning covers a segment header: a last segment shorter than a
 * header whose bytes are a prefix of one, or whose bytes are all zero, was
 * being created when the process died; it holds no record, so its header is
 * written afresh and appends continue there.
 *
 * Order: segments are sorted by the first index in their name; each one's
 * first record must carry that index, and each segment must start right
 * after the last index of the previous one. Records are replayed as they are
 * read; a later error means the caller throws the replayed state away.
 */
#include "shard/wal_recover.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"

#define NAME_PREFIX "wal-"
#define NAME_SUFFIX ".log"
#define NAME_DIGITS 20

struct segment_list {
	uint64_t *first_index; /* sorted ascending */
	size_t count;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int wal_segment_path(char *buf, size_t buflen, const char *dir, uint64_t first_index)
{
	int n;

	assert(buf != NULL && dir != NULL);
	n = snprintf(buf, buflen, "%s/" NAME_PREFIX "%020" PRIu64 NAME_SUFFIX, dir,
		     first_index);
	if (n < 0 || (size_t)n >= buflen)
		return -ENAMETOOLONG;
	return 0;
}

int wal_segment_name_parse(const char *name, uint64_t *first_index)
{
	const size_t prefix = sizeof(NAME_PREFIX) - 1;
	const size_t suffix = sizeof(NAME_SUFFIX) - 1;
	uint64_t v = 0;

	assert(name != NULL && first_index != NULL);
	if (strlen(name) != prefix + NAME_DIGITS + suffix ||
	    memcmp(name, NAME_PREFIX, prefix) != 0 ||
	    memcmp(name + prefix + NAME_DIGITS, NAME_SUFFIX, suffix) != 0)
		return RKV_EINVAL;
	for (size_t i = 0; i < NAME_DIGITS; i++) {
		char c = name[prefix + i];
		unsigned d;

		if (c < '0' || c > '9')
			return RKV_EINVAL;
		d = (unsigned)(c - '0');
		if (v > (UINT64_MAX - d) / 10)
			return RKV_EINVAL;
		v = v * 10 + d;
	}
	*first_index = v;
	return 0;
}

/* mkdir -p: creates `dir` and any missing parent. 0 or -errno. */
static int make_dirs(const char *dir)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0)
		return -ENOENT;
	if (len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			return -errno;
		path[i] = dir[i];
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Lists the segment files of `dir` in index order. 0 or -errno. */
static int list_segments(const char *dir, struct segment_list *list)
{
	struct dirent *entry;
	size_t capacity = 0;
	DIR *d;
	int rv;

	list->first_index = NULL;
	list->count = 0;
	d = opendir(dir);
	if (d == NULL) {
		rv = -errno;
		goto err;
	}
	for (;;) {
		uint64_t index;

		errno = 0;
		entry = readdir(d);
		if (entry == NULL) {
			if (errno != 0) {
				rv = -errno;
				goto err_after_open;
			}
			break;
		}
		if (wal_segment_name_parse(entry->d_name, &index) != 0)
			continue; /* not ours: temp files, SSTables, the manifest */
		if (list->count == capacity) {
			size_t n = capacity == 0 ? 16 : capacity * 2;
			uint64_t *grown = realloc(list->first_index, n * sizeof(*grown));

			if (grown == NULL) {
				rv = -ENOMEM;
				goto err_after_open;
			}
			list->first_index = grown;
			capacity = n;
		}
		list->first_index[list->count++] = index;
	}
	closedir(d);
	if (list->count > 1)
		qsort(list->first_index, list->count, sizeof(uint64_t), cmp_u64);
	return 0;

err_after_open:
	closedir(d);
	free(list->first_index);
	list->first_index = NULL;
	list->count = 0;
err:
	assert(rv != 0);
	return rv;
}

/* Reads all of `fd` into a new malloc'd buffer. 0 or -errno. */
static int read_all(int fd, uint8_t **out, size_t *out_len)
{
	struct stat st;
	uint8_t *buf;
	size_t len;
	size_t done = 0;

	if (fstat(fd, &st) != 0)
		return -errno;
	if (st.st_size < 0 || (uint64_t)st.st_size > SIZE_MAX - 1)
		return -EFBIG;
	len = (size_t)st.st_size;
	buf = malloc(len + 1);
	if (buf == NULL)
		return -ENOMEM;
	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int rv = -errno;

			free(buf);
			return rv;
		}
		if (n == 0)
			break; /* shrank under us: scan what is there */
		done += (size_t)n;
	}
	*out = buf;
	*out_len = done;
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/* A segment header whose creation was cut short: see the essay above. */
static bool header_torn(const uint8_t *buf, size_t len)
{
	uint8_t good[WAL_SEGMENT_HEADER_SIZE];

	if (all_zero(buf, len))
		return true;
	if (len >= WAL_SEGMENT_HEADER_SIZE)
		return false;
	wal_segment_header_encode(good);
	return memcmp(buf, good, len) == 0;
}

static int sync_truncate(int fd, uint64_t length)
{
	if (ftruncate(fd, (off_t)length) != 0)
		return -errno;
	if (fsync(fd) != 0)
		return -errno;
	return 0;
}

static int rewrite_header(int fd)
{
	uint8_t header[WAL_SEGMENT_HEADER_SIZE];
	ssize_t n;

	wal_segment_header_encode(header);
	if (ftruncate(fd, 0) != 0)
		return -errno;
	do
		n = pwrite(fd, header, sizeof(header), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != sizeof(header))
		return -EIO;
	if (fsync(fd) != 0)
		return -errno;
	return 0;
}

/* State carried from one segment to the next. */
struct recover_ctx {
	wal_replay_fn *replay;
	void *arg;
	struct wal_recovery *out;
	char *err;
	size_t errlen;
};

/*
 * Reads, checks and replays one segment. `last` allows a torn tail to be cut
 * off. On success out->last_index, append_offset and torn_bytes are updated
 * and *segment_last is the last index read from this segment, 0 if none.
 */
static int recover_segment(struct recover_ctx *ctx, const char *path,
			   uint64_t first_index, bool last, uint64_t *segment_last)
{
	struct wal_recovery *out = ctx->out;
	struct wal_scanner scanner;
	struct wal_record record;
	enum wal_scan_result res;
	uint8_t *buf = NULL;
	size_t len = 0;
	int fd;
	int rv;

	*segment_last = 0;
	fd = open(path, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0) {
		rv = -errno;
		set_err(ctx->err, ctx->errlen, "%s: open: %s", path, rkv_strerror(rv));
		goto err;
	}
	rv = read_all(fd, &buf, &len);
	if (rv != 0) {
		set_err(ctx->err, ctx->errlen, "%s: read: %s", path, rkv_strerror(rv));
		goto err_after_open;
	}

	if (wal_segment_header_check(buf, len) != 0) {
		if (!last || !header_torn(buf, len)) {
			rv = RKV_ECORRUPT;
			set_err(ctx->err, ctx->errlen,
				"%s: offset 0: bad segment header", path);
			goto err_after_read;
		}
		rv = rewrite_header(fd);
		if (rv != 0) {
			set_err(ctx->err, ctx->errlen, "%s: rewriting torn header: %s",
				path, rkv_strerror(rv));
			goto err_after_read;
		}
		out->torn_bytes = len;
		out->append_offset = WAL_SEGMENT_HEADER_SIZE;
		goto done;
	}

	wal_scanner_init(&scanner, buf, len, first_index);
	while ((res = wal_scanner_next(&scanner, &record)) == WAL_SCAN_RECORD) {
		rv = ctx->replay(ctx->arg, &record);
		if (rv != 0) {
			set_err(ctx->err, ctx->errlen,
				"%s: offset %zu: replay of index %" PRIu64 " failed: %s",
				path, scanner.offset - wal_record_size(record.payload_len),
				record.index, rkv_strerror(rv));
			goto err_after_read;
		}
		if (out->first_index == 0)
			out->first_index = record.index;
		out->last_index = record.index;
		*segment_last = record.index;
	}
	switch (res) {
	case WAL_SCAN_END:
		break;
	case WAL_SCAN_TORN:
		if (!last) {
			rv = RKV_ECORRUPT;
			set_err(ctx->err, ctx->errlen,
				"%s: offset %zu: torn record in a segment that is not the last",
				path, scanner.offset);
			goto err_after_read;
		}
		rv = sync_truncate(fd, scanner.offset);
		if (rv != 0) {
			set_err(ctx->err, ctx->errlen, "%s: truncating torn tail at offset %zu: %s",
				path, scanner.offset, rkv_strerror(rv));
			goto err_after_read;
		}
		out->torn_bytes = len - scanner.offset;
		break;
	case WAL_SCAN_CORRUPT:
		rv = RKV_ECORRUPT;
		set_err(ctx->err, ctx->errlen, "%s: offset %zu: %s", path,
			scanner.offset, scanner.reason);
		goto err_after_read;
	case WAL_SCAN_RECORD:
		assert(false);
		break;
	}
	out->append_offset = scanner.offset;

done:
	free(buf);
	close(fd);
	return 0;

err_after_read:
	free(buf);
err_after_open:
	close(fd);
err:
	assert(rv != 0);
	return rv;
}

int wal_recover(const char *dir, wal_replay_fn *replay, void *arg,
		struct wal_recovery *out, char *err, size_t errlen)
{
	struct recover_ctx ctx = { replay, arg, out, err, errlen };
	struct segment_list list;
	char path[sizeof(out->last_segment)];
	char prev_path[sizeof(out->last_segment)];
	uint64_t segment_last;
	uint64_t expect = 0;
	int rv;

	assert(dir != NULL && replay != NULL && out != NULL);
	memset(out, 0, sizeof(*out));
	set_err(err, errlen, "%s", "");

	rv = make_dirs(dir);
	if (rv != 0) {
		set_err(err, errlen, "%s: cannot create: %s", dir, rkv_strerror(rv));
		goto err;
	}
	rv = list_segments(dir, &list);
	if (rv != 0) {
		set_err(err, errlen, "%s: cannot list: %s", dir, rkv_strerror(rv));
		goto err;
	}

	prev_path[0] = '\0';
	for (size_t i = 0; i < list.count; i++) {
		uint64_t first_index = list.first_index[i];
		bool last = i + 1 == list.count;

		rv = wal_segment_path(path, sizeof(path), dir, first_index);
		if (rv != 0) {
			set_err(err, errlen, "%s: path too long", dir);
			goto err_after_list;
		}
		if (i > 0 && first_index != expect) {
			rv = RKV_ECORRUPT;
			set_err(err, errlen,
				"%s: offset 0: segment starts at index %" PRIu64
				" but %s ends before index %" PRIu64 " (gap)",
				path, first_index, prev_path, expect);
			goto err_after_list;
		}
		rv = recover_segment(&ctx, path, first_index, last, &segment_last);
		if (rv != 0)
			goto err_after_list;
		/* An empty segment leaves nothing that a successor could follow
		 * without a gap: only the last one may be empty. */
		expect = segment_last != 0 ? segment_last + 1 : first_index;
		out->segments++;
		memcpy(prev_path, path, sizeof(path));
	}
	if (list.count > 0)
		memcpy(out->last_segment, prev_path, sizeof(prev_path));
	free(list.first_index);
	return 0;

err_after_list:
	free(list.first_index);
err:
	assert(rv != 0);
	return rv;
}
