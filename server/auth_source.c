/*
 * The sources table of a core; see server/auth_source.h.
 */
#include "server/auth_source.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <xxhash.h>

#include "core/log.h"

void auth_sources_init(struct auth_sources *t)
{
	memset(t->entries, 0, sizeof t->entries);
	memset(&t->overflow, 0, sizeof t->overflow);
	t->overflow.family = AF_UNSPEC;
	t->overflowed = 0;
}

/* The key of a peer's source into buf[1, 17), its family into buf[0]:
 * IPv4 (or v4-mapped) whole, IPv6 its /64. */
static void source_key(const struct auth_addr *peer, uint8_t buf[17])
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	uint8_t *key = buf + 1;

	buf[0] = peer->family;
	memcpy(key, peer->addr, 16);
	if (peer->family == AF_INET6 && memcmp(key, v4mapped, sizeof v4mapped) != 0)
		memset(key + 8, 0, 8);
}

uint64_t auth_sources_hash(const struct auth_sources *t, const void *p, size_t len)
{
	return XXH3_64bits_withSecret(p, len, t->secret, sizeof t->secret);
}

unsigned auth_source_slot(const struct auth_sources *t, const struct auth_addr *peer)
{
	uint8_t buf[17];

	source_key(peer, buf);
	return (unsigned)(auth_sources_hash(t, buf, sizeof buf) % AUTH_SOURCES);
}

bool auth_source_failing(const struct auth_source *s, uint64_t now)
{
	return s->failures > 0 &&
	       (now < s->next_try_us || now - s->last_failure_us <= AUTH_FAIL_FORGET_US);
}

static bool reusable(const struct auth_source *s, uint64_t now)
{
	return s->unauth == 0 && s->jobs == 0 && !s->busy && !auth_source_failing(s, now);
}

struct auth_source *auth_source_of(struct auth_sources *t, const struct auth_addr *peer,
				   uint64_t now)
{
	struct auth_source *spare = NULL;
	uint8_t buf[17];
	uint64_t h;

	if (peer->family == 0)
		return NULL;
	source_key(peer, buf);
	h = auth_sources_hash(t, buf, sizeof buf);
	for (unsigned i = 0; i < AUTH_SOURCE_PROBE; i++) {
		struct auth_source *s = &t->entries[(h + i) % AUTH_SOURCES];

		if (s->family == buf[0] && memcmp(s->key, buf + 1, 16) == 0)
			return s;
		if (s->family == 0) {
			if (!spare || spare->family != 0)
				spare = s;
		} else if (reusable(s, now) &&
			   (!spare || (spare->family && s->last_us < spare->last_us))) {
			spare = s;
		}
	}
	if (!spare) {
		log_every(LOG_WARN, 10000, "auth: no source entry free for a new address (every "
			  "one of its window has connections or recent failures); it shares "
			  "the overflow entry");
		t->overflowed++;
		return &t->overflow;
	}
	memset(spare, 0, sizeof *spare);
	spare->family = buf[0];
	memcpy(spare->key, buf + 1, 16);
	spare->last_us = now;
	return spare;
}
