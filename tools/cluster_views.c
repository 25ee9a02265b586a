/*
 * Asking each node of a cluster map for its own status; see
 * tools/cluster_views.h.
 */
#include "tools/cluster_views.h"

#include <stdio.h>

const char *cluster_views_client(const struct rkv_cluster_map *m, uint64_t id)
{
	for (size_t i = 0; i < m->node_count; i++)
		if (m->nodes[i].id == id && m->nodes[i].client[0])
			return m->nodes[i].client;
	return NULL;
}

struct rkv_cluster_status *cluster_views_status(const struct rkv_cluster_map *m, uint64_t id,
						int timeout_ms, char *err, size_t errlen)
{
	const char *addr = cluster_views_client(m, id);
	struct rkv_cluster_status *st = NULL;
	struct rkv_client *c;

	if (!addr) {
		snprintf(err, errlen, "no client address known");
		return NULL;
	}
	if (rkv_connect_timeout(addr, timeout_ms, &c, err, errlen) != 0)
		return NULL;
	rkv_set_timeout(c, timeout_ms);
	if (rkv_cluster_status(c, &st) != 0) {
		snprintf(err, errlen, "%s", rkv_last_error(c));
		st = NULL;
	}
	rkv_close(c);
	return st;
}
