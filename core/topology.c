/* hwloc-backed CPU discovery and pinning; see core/topology.h. */
#include "core/topology.h"

#include <errno.h>
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"

struct topology {
	hwloc_topology_t topo;
	hwloc_bitmap_t allowed; /* the process cpuset */
};

int topology_load(struct topology **out, char *err, size_t errlen)
{
	struct topology *t = calloc(1, sizeof *t);
	int rv = -ENOMEM;

	if (!t)
		goto err;
	if (hwloc_topology_init(&t->topo) != 0) {
		rv = -errno;
		snprintf(err, errlen, "hwloc_topology_init failed");
		goto err_after_alloc;
	}
	if (hwloc_topology_load(t->topo) != 0) {
		rv = -errno;
		snprintf(err, errlen, "hwloc_topology_load failed");
		goto err_after_init;
	}
	t->allowed = hwloc_bitmap_alloc();
	if (!t->allowed)
		goto err_after_init;
	if (hwloc_get_cpubind(t->topo, t->allowed, HWLOC_CPUBIND_PROCESS) != 0) {
		/* No binding information: use every allowed PU of the topology. */
		hwloc_bitmap_copy(t->allowed, hwloc_topology_get_allowed_cpuset(t->topo));
	}
	*out = t;
	return 0;

err_after_init:
	hwloc_topology_destroy(t->topo);
err_after_alloc:
	free(t);
err:
	return rv;
}

void topology_destroy(struct topology *t)
{
	if (!t)
		return;
	hwloc_bitmap_free(t->allowed);
	hwloc_topology_destroy(t->topo);
	free(t);
}

unsigned topology_cpus(struct topology *t, unsigned *cpus, unsigned max)
{
	int depth = hwloc_get_type_depth(t->topo, HWLOC_OBJ_PU);
	unsigned n = 0;
	unsigned i, count;

	if (depth < 0)
		return 0;
	count = (unsigned)hwloc_get_nbobjs_by_depth(t->topo, depth);
	for (i = 0; i < count && n < max; i++) {
		hwloc_obj_t pu = hwloc_get_obj_by_depth(t->topo, depth, i);
		if (hwloc_bitmap_isset(t->allowed, pu->os_index))
			cpus[n++] = pu->os_index;
	}
	return n;
}

int topology_pin_thread(struct topology *t, unsigned cpu)
{
	hwloc_bitmap_t set = hwloc_bitmap_alloc();
	int rv = 0;

	if (!set)
		return -ENOMEM;
	hwloc_bitmap_only(set, cpu);
	if (hwloc_set_cpubind(t->topo, set, HWLOC_CPUBIND_THREAD) != 0) {
		rv = -errno;
		goto out;
	}
	if (hwloc_set_membind(t->topo, set, HWLOC_MEMBIND_BIND,
			      HWLOC_MEMBIND_THREAD) != 0)
		log_debug("memory binding to cpu %u's NUMA node not available (%d)", cpu, errno);
out:
	hwloc_bitmap_free(set);
	return rv;
}
