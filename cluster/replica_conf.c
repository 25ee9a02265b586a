/*
 * The configuration record of one replica: DATA/shard-N.conf holds the last
 * configuration (members and their roles) the replica applied, so a restart
 * restores the group's members as Raft last decided them, not as the map's
 * founding placement says (docs/cluster/membership.md). Without it a node
 * restarted after the entry that changed the group was compacted away would
 * believe the founding members again.
 *
 * Format (little-endian): "RKVC", u32 version 1, u64 index, u32 length,
 * raft_conf_encode() bytes, u32 CRC32C of everything before it.
 *
 * Writing goes through the core's ring (cluster/ring_file.h), one write at a
 * time per replica; a configuration applied while one is being written is
 * written right after (only the newest counts).
 *
 * Invariant: the record never names a configuration that was not committed
 * (it is written at apply time, or from an installed snapshot, whose index is
 * committed).
 */
#include "cluster/replica_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "shard/crc32c.h"

#define CONF_MAGIC "RKVC"
#define CONF_VERSION 1u
#define CONF_HEADER 20u /* magic, version, index, length */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

size_t replica_conf_encode(uint64_t index, const struct raft_conf *conf, uint8_t *buf)
{
	size_t len = raft_conf_encode(conf, buf + CONF_HEADER);

	memcpy(buf, CONF_MAGIC, 4);
	put32(buf + 4, CONF_VERSION);
	put64(buf + 8, index);
	put32(buf + 16, (uint32_t)len);
	put32(buf + CONF_HEADER + len, crc32c(0, buf, CONF_HEADER + len));
	return CONF_HEADER + len + 4;
}

int replica_conf_decode(const uint8_t *buf, size_t len, uint64_t *index, struct raft_conf *conf)
{
	uint32_t body;

	if (len < CONF_HEADER + 4 || memcmp(buf, CONF_MAGIC, 4) != 0 ||
	    get32(buf + 4) != CONF_VERSION)
		return RKV_ECORRUPT;
	body = get32(buf + 16);
	if (body > RAFT_CONF_ENCODED_MAX || len != CONF_HEADER + body + 4 ||
	    get32(buf + CONF_HEADER + body) != crc32c(0, buf, CONF_HEADER + body))
		return RKV_ECORRUPT;
	*index = get64(buf + 8);
	return raft_conf_decode(buf + CONF_HEADER, body, conf);
}

int replica_conf_load(const char *path, uint64_t *index, struct raft_conf *conf, char *err,
		      size_t errlen)
{
	uint8_t buf[REPLICA_CONF_FILE_MAX + 1];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rv;

	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		rv = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rv;
	}
	n = read(fd, buf, sizeof buf);
	rv = n < 0 ? -errno : 0;
	close(fd);
	if (rv) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rv));
		return rv;
	}
	if (replica_conf_decode(buf, (size_t)n, index, conf) != 0) {
		snprintf(err, errlen, "%s: damaged configuration record (the group's members); "
			 "restore the node's data dir or remove this replica", path);
		return RKV_ECORRUPT;
	}
	return 0;
}

/* ---- the write, on the ring ------------------------------------------------- */

static void conf_start(struct replica *rep);

static void conf_written(struct ring_file *f, int res)
{
	struct replica *rep = f->arg;
	struct replica_conf_rec *cr = &rep->conf_rec;

	if (res < 0)
		log_error("replica %u: writing %s/%s failed: %s; the group's members after a "
			  "restart may be stale", rep->id, rep->core->node->data_dir, f->name,
			  strerror(-res));
	else
		cr->durable_index = cr->writing_index;
	if (cr->want_index > cr->writing_index)
		conf_start(rep);
}

static void conf_start(struct replica *rep)
{
	struct replica_conf_rec *cr = &rep->conf_rec;

	cr->len = replica_conf_encode(cr->want_index, &cr->want, cr->buf);
	cr->writing_index = cr->want_index;
	ring_file_write(&cr->file, cr->buf, cr->len);
}

void replica_conf_init(struct replica *rep)
{
	char name[RING_FILE_NAME_MAX];

	snprintf(name, sizeof name, "shard-%u.conf", rep->id);
	ring_file_init(&rep->conf_rec.file, &rep->core->r->io, rep->core->node->data_dir_fd, name,
		       conf_written, rep);
}

void replica_conf_path(const struct replica *rep, char *buf, size_t len)
{
	snprintf(buf, len, "%s.conf", rep->dir);
}

void replica_conf_record(struct replica *rep, uint64_t index, const struct raft_conf *conf)
{
	struct replica_conf_rec *cr = &rep->conf_rec;

	if (index <= cr->want_index)
		return;
	cr->want_index = index;
	cr->want = *conf;
	rep->conf_changes++;
	if (ring_file_idle(&cr->file))
		conf_start(rep);
}

bool replica_conf_idle(const struct replica *rep)
{
	return ring_file_idle(&rep->conf_rec.file);
}
