/*
 * Micro-benchmark of core/spsc: one producer thread streams sequence numbers
 * to one consumer thread through one ring, for several publish batch sizes,
 * and prints messages per second and nanoseconds per message. With two or
 * more usable CPUs the threads are pinned to the first two, so the numbers
 * include the real cross-core cache-line transfers the reactors will pay.
 * The consumer checks the sequence, so a broken ring cannot report a number.
 *
 * usage: bench_spsc [messages per run, default 20000000]
 */
#include "core/spsc.h"

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BENCH_CAPACITY 4096u
#define BENCH_POP_MAX 256u
#define BENCH_SPINS_BEFORE_YIELD 256

struct bench {
	struct spsc_ring ring;
	/* Read-only during a run; the threads copy what they need to locals. */
	alignas(SPSC_CACHE_LINE) uint64_t messages; /* per run */
	uint32_t batch;      /* messages staged per publish */
	int cpu[2];          /* producer, consumer; -1 = unpinned */
	atomic_int ready;    /* threads waiting at the start line */
	atomic_bool go;
	/* Written once per thread at the end, each on its own line. */
	alignas(SPSC_CACHE_LINE) uint64_t full_polls;  /* producer found the ring full */
	alignas(SPSC_CACHE_LINE) uint64_t errors;      /* sequence mismatches seen by the consumer */
	uint64_t empty_polls;                          /* consumer found nothing */
};

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		fprintf(stderr, "bench_spsc: cannot pin to cpu %d, running unpinned\n", cpu);
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Spins briefly, then yields: the machine may have fewer CPUs than threads. */
static void backoff(unsigned *spins)
{
	if (++*spins < BENCH_SPINS_BEFORE_YIELD) {
		cpu_relax();
	} else {
		*spins = 0;
		sched_yield();
	}
}

static void start_line(struct bench *b)
{
	atomic_fetch_add(&b->ready, 1);
	while (!atomic_load_explicit(&b->go, memory_order_acquire))
		cpu_relax();
}

static void *producer(void *arg)
{
	struct bench *b = arg;
	struct spsc_ring *ring = &b->ring;
	const uint64_t messages = b->messages;
	const uint32_t batch = b->batch;
	uint64_t next = 1, full_polls = 0;
	unsigned spins = 0;

	pin(b->cpu[0]);
	start_line(b);
	while (next <= messages) {
		for (uint32_t i = 0; i < batch && next <= messages; i++) {
			while (!spsc_push(ring, (void *)(uintptr_t)next)) {
				spsc_publish(ring);
				full_polls++;
				backoff(&spins);
			}
			next++;
		}
		spsc_publish(ring);
	}
	b->full_polls = full_polls;
	return NULL;
}

static void *consumer(void *arg)
{
	struct bench *b = arg;
	struct spsc_ring *ring = &b->ring;
	const uint64_t messages = b->messages;
	void *out[BENCH_POP_MAX];
	uint64_t expect = 1, errors = 0, empty_polls = 0;
	unsigned spins = 0;

	pin(b->cpu[1]);
	start_line(b);
	while (expect <= messages) {
		uint32_t n = spsc_pop_batch(ring, out, BENCH_POP_MAX);

		if (n == 0) {
			empty_polls++;
			backoff(&spins);
			continue;
		}
		for (uint32_t i = 0; i < n; i++, expect++)
			errors += (uintptr_t)out[i] != expect;
	}
	b->errors = errors;
	b->empty_polls = empty_polls;
	return NULL;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* First two CPUs this process may run on, or -1 each when fewer than two. */
static void pick_cpus(int cpu[2])
{
	cpu_set_t set;
	int found = 0;

	cpu[0] = cpu[1] = -1;
	if (sched_getaffinity(0, sizeof(set), &set) != 0 || CPU_COUNT(&set) < 2)
		return;
	for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
		if (CPU_ISSET(c, &set))
			cpu[found++] = c;
}

static int run(uint64_t messages, uint32_t batch, const int cpu[2])
{
	struct bench *b = aligned_alloc(SPSC_CACHE_LINE, sizeof(*b));
	pthread_t threads[2];
	double start, seconds;
	int rv = 1;

	if (b == NULL || spsc_init(&b->ring, BENCH_CAPACITY) != 0) {
		fprintf(stderr, "bench_spsc: out of memory\n");
		free(b);
		return 1;
	}
	b->messages = messages;
	b->batch = batch;
	b->cpu[0] = cpu[0];
	b->cpu[1] = cpu[1];
	atomic_init(&b->ready, 0);
	atomic_init(&b->go, false);
	b->errors = b->empty_polls = b->full_polls = 0;

	if (pthread_create(&threads[0], NULL, producer, b) != 0)
		goto out;
	if (pthread_create(&threads[1], NULL, consumer, b) != 0) {
		b->messages = 0; /* the producer leaves at once when released */
		atomic_store_explicit(&b->go, true, memory_order_release);
		pthread_join(threads[0], NULL);
		goto out;
	}
	while (atomic_load(&b->ready) < 2)
		sched_yield();
	start = now_seconds();
	atomic_store_explicit(&b->go, true, memory_order_release);
	pthread_join(threads[0], NULL);
	pthread_join(threads[1], NULL);
	seconds = now_seconds() - start;

	printf("spsc batch=%-4" PRIu32 " cap=%u msgs=%" PRIu64
	       ": %8.1f Mmsg/s %7.2f ns/msg  (full polls %" PRIu64
	       ", empty polls %" PRIu64 ")\n",
	       batch, BENCH_CAPACITY, messages, (double)messages / seconds / 1e6,
	       seconds * 1e9 / (double)messages, b->full_polls, b->empty_polls);
	if (b->errors != 0)
		fprintf(stderr, "bench_spsc: %" PRIu64 " messages out of order\n", b->errors);
	else
		rv = 0;
out:
	spsc_destroy(&b->ring);
	free(b);
	return rv;
}

int main(int argc, char **argv)
{
	static const uint32_t batches[] = {1, 8, 32, 128};
	uint64_t messages = 20000000;
	int cpu[2];
	int rv = 0;

	if (argc > 1) {
		messages = strtoull(argv[1], NULL, 10);
		if (messages == 0) {
			fprintf(stderr, "usage: %s [messages per run]\n", argv[0]);
			return 2;
		}
	}
	pick_cpus(cpu);
	if (cpu[0] < 0)
		printf("spsc: fewer than 2 CPUs, threads unpinned\n");
	else
		printf("spsc: producer on cpu %d, consumer on cpu %d\n", cpu[0], cpu[1]);
	for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++)
		rv |= run(messages, batches[i], cpu);
	return rv;
}
