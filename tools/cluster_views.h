/*
 * What the CLI's cluster commands ask every node (`node drain`, `node
 * list`): a node's client address from the map, and its own status.
 */
#ifndef RINGKV_TOOLS_CLUSTER_VIEWS_H
#define RINGKV_TOOLS_CLUSTER_VIEWS_H

#include <stddef.h>
#include <stdint.h>

#include "tools/libringkv.h"

/* Node `id`'s client address in map m, or NULL (not a member, or not
 * known yet). */
const char *cluster_views_client(const struct rkv_cluster_map *m, uint64_t id);

/*
 * Node `id`'s own status (ClusterStatus) over a connection of its own,
 * bounded by timeout_ms; NULL when it does not answer, with the reason in
 * err. The caller frees it with rkv_cluster_status_free.
 */
struct rkv_cluster_status *cluster_views_status(const struct rkv_cluster_map *m, uint64_t id,
						int timeout_ms, char *err, size_t errlen);

#endif
