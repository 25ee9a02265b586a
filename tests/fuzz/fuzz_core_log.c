/*
 * libFuzzer harness for the per-core Raft log's decoders: the record
 * scanner and the whole recovery (core_log_open on segment files made of
 * the input). The input is used as-is (checksums almost never match: the
 * torn/corrupt verdicts on garbage) and "sealed" -- every record's reserved
 * fields zeroed and CRCs rewritten -- so the fuzzer reaches the shape checks
 * and the per-group replay rules (gaps, resets, checkpoints, removals).
 *
 * Input: byte 0 = flags (bit 0: seal; bit 1: two segments, split at the
 * offset in bytes 1-2), then the bytes that follow each segment header.
 * Any verdict is fine; what must never happen is a crash, a sanitizer
 * report, or a result that contradicts the buffer (check() aborts).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/log.h"
#include "shard/core_log.h"
#include "shard/core_log_format.h"
#include "shard/crc32c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond)                                                               \
	do {                                                                      \
		if (!(cond)) {                                                    \
			fprintf(stderr, "fuzz_core_log.c:%d: check failed: %s\n", \
				__LINE__, #cond);                                 \
			abort();                                                  \
		}                                                                 \
	} while (0)

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Makes every record that fits valid as far as CRCs and padding go. */
static void seal(uint8_t *buf, size_t len)
{
	size_t off = CORE_LOG_RECORDS_START;

	while (len - off >= CORE_LOG_RECORD_HEADER_SIZE) {
		uint8_t *h = buf + off;
		uint32_t plen = get_le32(h) % 4096;
		uint32_t crc;

		if (plen > len - off - CORE_LOG_RECORD_HEADER_SIZE)
			plen = (uint32_t)(len - off - CORE_LOG_RECORD_HEADER_SIZE);
		put_le32(h, plen);
		h[9] = h[10] = h[11] = 0;
		put_le32(h + 44, 0);
		crc = crc32c(0, h + 8, 32);
		crc = crc32c(crc, h + CORE_LOG_RECORD_HEADER_SIZE, plen);
		put_le32(h + 4, crc);
		put_le32(h + 40, crc32c(0, h, 40));
		off += CORE_LOG_RECORD_HEADER_SIZE + plen;
	}
}

static void scan_all(const uint8_t *buf, size_t len)
{
	struct core_log_scanner s;
	struct core_log_record r;
	enum core_log_scan_result res;
	uint64_t seq;

	if (core_log_segment_header_check(buf, len, &seq) != 0)
		return;
	core_log_scan_init(&s, buf, len);
	while ((res = core_log_scan_next(&s, &r)) == CORE_LOG_SCAN_RECORD) {
		check(s.offset <= len);
		check(r.payload >= buf && r.payload + r.payload_len <= buf + s.offset);
		if (r.kind == CORE_LOG_CHECKPOINT) {
			struct core_log_checkpoint_item it;

			for (uint32_t i = 0; i < r.b; i++)
				core_log_checkpoint_item_decode(&r, i, &it);
		}
	}
	check(s.offset <= len);
	if (res == CORE_LOG_SCAN_CORRUPT)
		check(s.reason != NULL);
}

static volatile uint8_t sink;

static int on_restore(void *arg, const struct core_log_group_state *st)
{
	(void)arg;
	for (size_t i = 0; i < st->n_entries; i++) {
		const uint8_t *p = st->entries[i].data;

		check(st->first_index + i > st->start_index);
		for (uint32_t k = 0; k < st->entries[i].len; k++)
			sink ^= p[k];
	}
	return 0;
}

static void on_persisted(void *arg, const struct core_log_persisted *p)
{
	(void)arg;
	(void)p;
}

static char dir[64];

static void write_file(uint64_t seq, const uint8_t *buf, size_t len)
{
	char path[160];
	int fd;

	snprintf(path, sizeof path, "%s/log-%020llu.log", dir, (unsigned long long)seq);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	check(fd >= 0);
	check(write(fd, buf, len) == (ssize_t)len);
	close(fd);
}

static void clear_dir(void)
{
	char path[160];

	for (uint64_t seq = 1; seq <= 3; seq++) {
		snprintf(path, sizeof path, "%s/log-%020llu.log", dir, (unsigned long long)seq);
		unlink(path);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct io_ring io; /* never touched by open and close */
	struct core_log_config cfg = {
		.dir = dir,
		.segment_size = 1u << 20,
		.prealloc = 64u << 10,
		.restore = on_restore,
		.persisted = on_persisted,
	};
	struct core_log *log = NULL;
	uint8_t *seg[2] = { NULL, NULL };
	size_t len[2] = { 0, 0 };
	size_t split, body;
	unsigned flags;
	char err[512];
	int nseg;

	if (dir[0] == '\0') {
		/* tmpfs when there is one: recovery fsyncs what it repairs. */
		strcpy(dir, "/dev/shm/ringkv-fuzz-corelog-XXXXXX");
		if (mkdtemp(dir) == NULL) {
			strcpy(dir, "/tmp/ringkv-fuzz-corelog-XXXXXX");
			check(mkdtemp(dir) != NULL);
		}
		log_set_level(LOG_ERROR);
	}
	if (size < 3)
		return 0;
	flags = data[0];
	body = size - 3;
	split = (flags & 2) ? ((size_t)data[1] | (size_t)data[2] << 8) : body;
	if (split > body)
		split = body;
	nseg = (flags & 2) ? 2 : 1;
	for (int k = 0; k < nseg; k++) {
		const uint8_t *from = data + 3 + (k == 0 ? 0 : split);
		size_t n = k == 0 ? split : body - split;

		len[k] = CORE_LOG_RECORDS_START + n;
		seg[k] = malloc(len[k]);
		check(seg[k] != NULL);
		core_log_segment_page0_encode(seg[k], (uint64_t)k + 1);
		memcpy(seg[k] + CORE_LOG_RECORDS_START, from, n);
		if (flags & 1)
			seal(seg[k], len[k]);
		scan_all(seg[k], len[k]);
	}
	clear_dir();
	for (int k = 0; k < nseg; k++)
		write_file((uint64_t)k + 1, seg[k], len[k]);
	if (core_log_open(&log, &cfg, &io, err, sizeof err) == 0) {
		struct core_log_stats st;

		core_log_stats(log, &st);
		check(st.segments == (uint64_t)nseg);
		core_log_close(log);
	} else {
		check(err[0] != '\0');
	}
	free(seg[0]);
	free(seg[1]);
	return 0;
}
