/*
 * Membership values: encoding of a configuration into a CONF entry, lookups
 * and quorum sizes. Decoding checks every length, because CONF entries
 * arrive from the network and from disk.
 */
#include "core/errors.h"
#include "raft/internal.h"

#include <string.h>

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

size_t raft_conf_encode(const struct raft_conf *conf, uint8_t *buf)
{
	put_u32(buf, conf->n);
	for (uint32_t i = 0; i < conf->n; i++) {
		put_u64(buf + 4 + 12 * i, conf->servers[i].id);
		put_u32(buf + 12 + 12 * i, conf->servers[i].role);
	}
	return 4 + 12 * (size_t)conf->n;
}

int raft_conf_decode(const void *buf, size_t len, struct raft_conf *conf)
{
	const uint8_t *p = buf;
	if (len < 4)
		return RKV_ECORRUPT;
	uint32_t n = get_u32(p);
	if (n > RAFT_MAX_SERVERS || len != 4 + 12 * (size_t)n)
		return RKV_ECORRUPT;
	memset(conf, 0, sizeof(*conf));
	conf->n = n;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t id = get_u64(p + 4 + 12 * i);
		uint32_t role = get_u32(p + 12 + 12 * i);
		if (id == RAFT_NONE || (role != RAFT_VOTER && role != RAFT_LEARNER))
			return RKV_ECORRUPT;
		for (uint32_t j = 0; j < i; j++)
			if (conf->servers[j].id == id)
				return RKV_ECORRUPT;
		conf->servers[i].id = id;
		conf->servers[i].role = role;
	}
	return 0;
}

int raft_conf_index_of(const struct raft_conf *conf, uint64_t id)
{
	for (uint32_t i = 0; i < conf->n; i++)
		if (conf->servers[i].id == id)
			return (int)i;
	return -1;
}

uint32_t raft_conf_role(const struct raft_conf *conf, uint64_t id)
{
	int i = raft_conf_index_of(conf, id);
	return i < 0 ? 0 : conf->servers[i].role;
}

int raft_quorum_size(const struct raft_conf *conf)
{
	int voters = 0;
	for (uint32_t i = 0; i < conf->n; i++)
		voters += conf->servers[i].role == RAFT_VOTER;
	return voters / 2 + 1;
}
