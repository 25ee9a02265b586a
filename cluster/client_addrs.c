/*
 * Each core's table of the nodes' client addresses; see
 * cluster/client_addrs.h. Touched by its core only.
 */
#include "cluster/client_addrs.h"

#include <stdio.h>
#include <string.h>

#include "cluster/replica_internal.h"

/* Copies untrusted bytes as printable text (they end up in a client's
 * terminal and in JSON). */
static void copy_text(char *dst, struct peer_msg_slice s)
{
	uint32_t n = s.len < CLIENT_ADDRS_MAX - 1 ? s.len : CLIENT_ADDRS_MAX - 1;

	for (uint32_t i = 0; i < n; i++) {
		uint8_t ch = s.data[i];

		dst[i] = ch >= 0x21 && ch < 0x7f && ch != '"' && ch != '\\' ? (char)ch : '?';
	}
	dst[n] = '\0';
}

void client_addrs_learn(struct client_addrs_entry *e, struct peer_msg_slice client,
			struct peer_msg_slice resp, uint32_t cores, uint64_t now_us)
{
	e->cores = cores;
	copy_text(e->client, client);
	copy_text(e->resp, resp);
	e->learnt_us = now_us ? now_us : 1;
}

const struct cluster_map *cluster_node_map(const struct cluster_node *n)
{
	return &n->map;
}

uint64_t cluster_node_self_id(const struct cluster_node *n)
{
	return n->cfg.self_id;
}

struct peer_core *cluster_core_peer_core(struct cluster_core *c)
{
	return c->pc;
}

const struct client_addrs *cluster_core_client_addrs(const struct cluster_core *c)
{
	return &c->client_addrs;
}

void cluster_core_set_client_addrs(struct cluster_core *c, const char *client,
				   const char *resp)
{
	snprintf(c->client_addrs.self.client, sizeof c->client_addrs.self.client, "%s",
		 client ? client : "");
	snprintf(c->client_addrs.self.resp, sizeof c->client_addrs.self.resp, "%s",
		 resp ? resp : "");
	c->client_addrs.self.cores = c->node->cfg.cores;
	c->client_addrs.self.learnt_us = 1;
}
