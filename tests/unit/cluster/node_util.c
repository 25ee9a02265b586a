/* The cluster node tests' clock, sleep and CPUs (node_util.h). */
#include <time.h>

#include "node_util.h"

uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

void sleep_ms(unsigned ms)
{
	nanosleep(&(struct timespec){ .tv_sec = ms / 1000,
				      .tv_nsec = (long)(ms % 1000) * 1000000 }, NULL);
}

int node_cpus_pick(struct topology **topo, unsigned *cpus, unsigned n)
{
	char err[256];
	unsigned got;

	if (topology_load(topo, err, sizeof err) != 0)
		return -1;
	got = topology_cpus(*topo, cpus, n);
	if (got == 0)
		return -1;
	for (unsigned i = got; i < n; i++)
		cpus[i] = cpus[0];
	return 0;
}
