/*
 * What the cluster tests that run nodes of real reactors in one process
 * (test_peer.c, replica_fixture.c) share: a monotonic clock, sleeping, and
 * the CPUs their reactors are started on.
 */
#ifndef RINGKV_TESTS_NODE_UTIL_H
#define RINGKV_TESTS_NODE_UTIL_H

#include <stdint.h>

#include "core/topology.h"

/* CLOCK_MONOTONIC in microseconds. */
uint64_t mono_us(void);

void sleep_ms(unsigned ms);

/*
 * Loads the machine's topology into *topo (the caller destroys it) and
 * fills cpus[0, n) with CPUs for n reactors; on a machine with fewer CPUs,
 * the rest share the first. 0, or -1 if there is no topology or no CPU.
 */
int node_cpus_pick(struct topology **topo, unsigned *cpus, unsigned n);

#endif
