/* The hosting record: see cluster/hosting.h. */
#include "cluster/hosting.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/errors.h"
#include "shard/crc32c.h"

#define HEADER "ringkv-hosting 1\n"

static int find_pos(const struct cluster_hosting *h, uint32_t shard, bool *found)
{
	uint32_t lo = 0, hi = h->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (h->e[mid].shard < shard)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < h->n && h->e[lo].shard == shard;
	return (int)lo;
}

const struct cluster_hosting_entry *cluster_hosting_find(const struct cluster_hosting *h,
							 uint32_t shard)
{
	bool found;
	int pos = find_pos(h, shard, &found);

	return found ? &h->e[pos] : NULL;
}

int cluster_hosting_set(struct cluster_hosting *h, uint32_t shard, int32_t core)
{
	bool found;
	int pos = find_pos(h, shard, &found);

	if (found) {
		h->e[pos].core = core;
		return 0;
	}
	if (h->n == CLUSTER_HOSTING_MAX)
		return -ENOSPC;
	memmove(&h->e[pos + 1], &h->e[pos], (h->n - (uint32_t)pos) * sizeof h->e[0]);
	h->e[pos] = (struct cluster_hosting_entry){ .shard = shard, .core = core };
	h->n++;
	return 0;
}

void cluster_hosting_clear(struct cluster_hosting *h, uint32_t shard)
{
	bool found;
	int pos = find_pos(h, shard, &found);

	if (!found)
		return;
	memmove(&h->e[pos], &h->e[pos + 1], (h->n - (uint32_t)pos - 1) * sizeof h->e[0]);
	h->n--;
}

int cluster_hosting_core(const struct cluster_map *m, const struct cluster_hosting *h,
			 unsigned self, uint32_t shard, unsigned cores)
{
	const struct cluster_hosting_entry *e = h ? cluster_hosting_find(h, shard) : NULL;

	if (e)
		return e->core >= 0 ? e->core : -1;
	if (cluster_map_rank(m, shard, self) < 0)
		return -1;
	return (int)cluster_map_core(m, shard, cores);
}

size_t cluster_hosting_encode(const struct cluster_hosting *h, char *buf, size_t cap)
{
	size_t len = 0;
	int w;

	if (cap < sizeof HEADER)
		return 0;
	memcpy(buf, HEADER, sizeof HEADER - 1);
	len = sizeof HEADER - 1;
	for (uint32_t i = 0; i < h->n; i++) {
		if (h->e[i].core >= 0)
			w = snprintf(buf + len, cap - len, "add %u %d\n", h->e[i].shard, h->e[i].core);
		else
			w = snprintf(buf + len, cap - len, "drop %u\n", h->e[i].shard);
		if (w < 0 || (size_t)w >= cap - len)
			return 0;
		len += (size_t)w;
	}
	w = snprintf(buf + len, cap - len, "crc %08x\n", crc32c(0, buf, len));
	if (w < 0 || (size_t)w >= cap - len)
		return 0;
	return len + (size_t)w;
}

/* A decimal number of at most 9 digits from p (untrusted); advances p. */
static bool number(const char **p, const char *end, uint32_t *out)
{
	uint32_t v = 0;
	unsigned digits = 0;

	while (*p < end && **p >= '0' && **p <= '9' && digits < 10) {
		v = v * 10 + (uint32_t)(**p - '0');
		(*p)++;
		digits++;
	}
	if (digits == 0 || digits > 9)
		return false;
	*out = v;
	return true;
}

static bool word(const char **p, const char *end, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(end - *p) < n || memcmp(*p, w, n) != 0)
		return false;
	*p += n;
	return true;
}

int cluster_hosting_decode(struct cluster_hosting *h, const char *buf, size_t len,
			   uint32_t shards, unsigned cores, char *err, size_t errlen)
{
	const char *p = buf, *end = buf + len;
	unsigned line = 1;
	bool crc_seen = false;

	h->n = 0;
	if (!word(&p, end, HEADER)) {
		snprintf(err, errlen, "line 1: not a hosting record of version 1");
		return RKV_ECORRUPT;
	}
	while (p < end) {
		const char *start = p;
		uint32_t shard, core = 0, crc;
		bool add;

		line++;
		if (crc_seen) {
			snprintf(err, errlen, "line %u: bytes after the checksum", line);
			return RKV_ECORRUPT;
		}
		if (word(&p, end, "crc ")) {
			char hex[9];

			if (end - p != 9 || p[8] != '\n') {
				snprintf(err, errlen, "line %u: a bad checksum line", line);
				return RKV_ECORRUPT;
			}
			memcpy(hex, p, 8);
			hex[8] = '\0';
			if (strspn(hex, "0123456789abcdef") != 8) {
				snprintf(err, errlen, "line %u: a bad checksum line", line);
				return RKV_ECORRUPT;
			}
			crc = (uint32_t)strtoul(hex, NULL, 16);
			if (crc != crc32c(0, buf, (size_t)(start - buf))) {
				snprintf(err, errlen, "line %u: checksum mismatch (a damaged file)",
					 line);
				return RKV_ECORRUPT;
			}
			p += 9;
			crc_seen = true;
			continue;
		}
		add = word(&p, end, "add ");
		if (!add && !word(&p, end, "drop ")) {
			snprintf(err, errlen, "line %u: expected add, drop or crc", line);
			return RKV_ECORRUPT;
		}
		if (!number(&p, end, &shard) || (add && (!word(&p, end, " ") ||
							!number(&p, end, &core))) ||
		    !word(&p, end, "\n")) {
			snprintf(err, errlen, "line %u: malformed", line);
			return RKV_ECORRUPT;
		}
		if (shard >= shards) {
			snprintf(err, errlen, "line %u: shard %u, the cluster has %u", line, shard,
				 shards);
			return RKV_ECORRUPT;
		}
		if (add && core >= cores) {
			snprintf(err, errlen, "line %u: shard %u on core %u, this node has %u cores "
				 "(started with fewer cores than when the replica was placed?)",
				 line, shard, core, cores);
			return RKV_ECORRUPT;
		}
		if (cluster_hosting_find(h, shard)) {
			snprintf(err, errlen, "line %u: shard %u twice", line, shard);
			return RKV_ECORRUPT;
		}
		if (cluster_hosting_set(h, shard, add ? (int32_t)core : CLUSTER_HOSTING_DROP) != 0) {
			snprintf(err, errlen, "line %u: more than %u entries", line,
				 CLUSTER_HOSTING_MAX);
			return RKV_ECORRUPT;
		}
	}
	if (!crc_seen) {
		snprintf(err, errlen, "no checksum line (a torn write?)");
		return RKV_ECORRUPT;
	}
	return 0;
}

int cluster_hosting_load_core(const char *dir, unsigned core, struct cluster_hosting *h,
			      uint32_t shards, unsigned cores, char *err, size_t errlen)
{
	char path[4096], name[32], why[256];
	char *buf = NULL;
	ssize_t got = 0;
	size_t len = 0;
	int fd, rv;

	h->n = 0;
	snprintf(name, sizeof name, CLUSTER_HOSTING_FILE, core);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		rv = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rv;
	}
	buf = malloc(CLUSTER_HOSTING_TEXT_MAX + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (len <= CLUSTER_HOSTING_TEXT_MAX &&
	       (got = read(fd, buf + len, CLUSTER_HOSTING_TEXT_MAX + 1 - len)) > 0)
		len += (size_t)got;
	if (got < 0) {
		rv = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (len > CLUSTER_HOSTING_TEXT_MAX) {
		snprintf(err, errlen, "%s: larger than any hosting record", path);
		rv = RKV_ECORRUPT;
		goto out;
	}
	rv = cluster_hosting_decode(h, buf, len, shards, cores, why, sizeof why);
	if (rv == 0) {
		for (uint32_t i = 0; i < h->n; i++)
			if (h->e[i].core >= 0 && (unsigned)h->e[i].core != core) {
				snprintf(why, sizeof why, "shard %u added on core %d in the file "
					 "of core %u", h->e[i].shard, h->e[i].core, core);
				rv = RKV_ECORRUPT;
				break;
			}
	}
	if (rv)
		snprintf(err, errlen, "%s: %s", path, why);
out:
	close(fd);
	free(buf);
	return rv;
}

int cluster_hosting_load(const char *dir, struct cluster_hosting *h, uint32_t shards,
			 unsigned cores, char *err, size_t errlen)
{
	struct cluster_hosting *one = malloc(sizeof *one);
	char path[4096], name[32];
	int rv = 0;

	if (!one)
		return -ENOMEM;
	h->n = 0;
	for (unsigned core = 0; core < cores && rv == 0; core++) {
		rv = cluster_hosting_load_core(dir, core, one, shards, cores, err, errlen);
		for (uint32_t i = 0; rv == 0 && i < one->n; i++) {
			if (cluster_hosting_find(h, one->e[i].shard)) {
				snprintf(err, errlen, "%s/" CLUSTER_HOSTING_FILE ": shard %u is also "
					 "in another core's hosting record", dir, core,
					 one->e[i].shard);
				rv = RKV_ECORRUPT;
			} else {
				rv = cluster_hosting_set(h, one->e[i].shard, one->e[i].core);
			}
		}
	}
	free(one);
	if (rv)
		return rv;
	/* Replicas recorded on a core this start does not have would be
	 * silently lost: refuse. */
	for (unsigned core = cores; core < cores + 256; core++) {
		snprintf(name, sizeof name, CLUSTER_HOSTING_FILE, core);
		snprintf(path, sizeof path, "%s/%s", dir, name);
		if (access(path, F_OK) == 0) {
			snprintf(err, errlen, "%s: a hosting record of core %u, and this node "
				 "starts with %u cores: start it with at least %u", path, core,
				 cores, core + 1);
			return RKV_ECORRUPT;
		}
	}
	return 0;
}
