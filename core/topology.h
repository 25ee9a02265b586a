/*
 * CPU topology through hwloc: which CPUs this process may run on, pinning a
 * reactor thread to one of them, and binding its memory to that CPU's NUMA
 * node. Loaded once in main(); the pin and bind calls are made by each reactor
 * thread for itself at start-up.
 */
#ifndef RINGKV_CORE_TOPOLOGY_H
#define RINGKV_CORE_TOPOLOGY_H

#include <stddef.h>

struct topology;

/* Loads the machine topology. 0 or a negative errno (reason in err). */
int topology_load(struct topology **out, char *err, size_t errlen);
void topology_destroy(struct topology *t);

/*
 * OS indexes of the processing units in this process' cpuset, in topology
 * order, at most `max`. Returns how many.
 */
unsigned topology_cpus(struct topology *t, unsigned *cpus, unsigned max);

/*
 * Pins the calling thread to OS cpu `cpu` and binds its future allocations to
 * that CPU's NUMA node. 0, or a negative errno when pinning failed; a failed
 * memory binding (single-node machine, container without the right) is only
 * logged.
 */
int topology_pin_thread(struct topology *t, unsigned cpu);

#endif
