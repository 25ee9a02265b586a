/*
 * A partitioned leader, with real processes: three ringkvd nodes replicate
 * every shard (R = 3), peers on 127.0.4.11-13. The node leading key 0's
 * shard is cut off from the other two by iptables rules on `lo`
 * (netfault.sh; the test runs under `netfault.sh wrap`, which removes the
 * rules however it ends). Clients reach every node on 127.0.0.1, so the
 * client keeps talking to the isolated node, as a client on its side of a
 * real partition would.
 *
 * While partitioned:
 * - no write sent to the isolated node is acknowledged OK (it cannot reach
 *   a majority; once check-quorum steps it down it answers NOT_LEADER);
 * - no read sent to it is served (OK or NOT_FOUND): a linearizable read
 *   needs a majority to confirm the leadership. A served read whose value
 *   is older than a write the majority acknowledged before the read began
 *   is reported as a stale read;
 * - the other two elect a new leader for each of its shards and acknowledge
 *   writes within ELECT_LIMIT_MS (the time is printed).
 * After healing: the old leader answers NOT_LEADER (a follower), writes go
 * on, and once caught up every node holds exactly the contents the test
 * acknowledged: every key, on every node, read from each node's own replica
 * (see read_replica), and nothing the isolated node was sent took effect.
 *
 * Forwarding to the leader is not built on this branch, so the test is its
 * own smart client (a non-leader answers NOT_LEADER).
 *
 * usage (under netfault.sh wrap): test_cluster_partition RINGKVD NETFAULT_SH
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"
#include "ringkv.pb.h"
#include "shard/sstable_block.h" /* varints */
#include "tools/libringkv.h"

/* Whether this tree has stale reads (see read_replica). */
#ifdef ringkv_GetRequest_stale_tag
#define HAVE_STALE_READS 1
#else
#define HAVE_STALE_READS 0
#endif

#define NODES 3
#define KEYS 120
#define ELECT_LIMIT_MS 15000    /* the majority acknowledges again within this */
#define STEP_DOWN_LIMIT_MS 15000 /* the isolated leader steps down within this */
#define CONVERGE_LIMIT_MS 20000  /* every replica equal within this after healing */
#define VICTIM_TIMEOUT_MS 1500   /* one request to the isolated node */
#define VICTIM_MAX_OPS 1000      /* bound on write+read pairs sent to the isolated node */
#define VICTIM_PACE_US 10000     /* between two pairs */
#define PARTITION_MIN_MS 3000    /* the partition lasts at least this */

static const char *netfault;
static char peer_addr[NODES][32], addr_list[128];
static struct cluster cluster;

static _Atomic unsigned acked_gen[KEYS]; /* last generation acknowledged OK */
static unsigned sent_gen[KEYS];           /* last generation sent (ok or unknown) */
static unsigned leader_of[KEYS];

static size_t key_of(char *buf, size_t len, unsigned k)
{
	return (size_t)snprintf(buf, len, "pk:%03u", k);
}

/* Values the test acknowledges: v<key>.<generation>. Values sent to the
 * isolated node: x<key>.<n>; neither is ever written twice. */
static size_t value_of(char *buf, size_t len, unsigned k, unsigned gen)
{
	return (size_t)snprintf(buf, len, "v%u.%u", k, gen);
}

/* The generation of a value read for key k, 0 for anything else. */
static unsigned gen_of(const void *value, size_t len, unsigned k)
{
	char buf[64], expect[32];
	unsigned gen;
	int n = snprintf(expect, sizeof expect, "v%u.", k);

	if (len >= sizeof buf || len <= (size_t)n || memcmp(value, expect, (size_t)n) != 0)
		return 0;
	memcpy(buf, value, len);
	buf[len] = '\0';
	gen = (unsigned)strtoul(buf + n, NULL, 10);
	return gen;
}

static void netfault_run(const char *what, unsigned i)
{
	char out[1024];
	const char *args[] = { "--addrs", addr_list, what, peer_addr[i], NULL };
	int rc = run_capture(netfault, args, out, sizeof out);

	CHECK(rc == 0, "netfault.sh %s %s failed (%d): %s", what, peer_addr[i], rc, out);
}


/*
 * Requests encoded here by hand (a few varints, so no nanopb callbacks),
 * for the two request fields libringkv does not set: Request.no_forward
 * (field 8: a node that does not lead the key's shard answers NOT_LEADER
 * instead of forwarding to the leader) and GetRequest.stale (field 2: the
 * node answers from its own replica, leader or not). A server that predates
 * a field skips it as unknown, so without forwarding no_forward changes
 * nothing. One fresh connection per request (127.0.0.1 is never cut).
 */
#define RAW_NO_FORWARD 1u
#define RAW_STALE 2u

static bool read_full(int fd, void *buf, size_t len)
{
	for (size_t done = 0; done < len;) {
		ssize_t r = read(fd, (char *)buf + done, len - done);

		if (r <= 0)
			return false;
		done += (size_t)r;
	}
	return true;
}

static bool get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v)
{
	const uint8_t *next = sstable_get_varint(p + *pos, p + len, v);

	if (!next)
		return false;
	*pos = (size_t)(next - p);
	return true;
}

/* Appends a length-delimited field. */
static size_t put_bytes(uint8_t *p, uint8_t tag, const void *data, size_t len)
{
	size_t n = 0;

	p[n++] = tag;
	n += sstable_put_varint(p + n, len);
	memcpy(p + n, data, len);
	return n + len;
}

/*
 * A GET of key k (value NULL) or a PUT of `value` through node i, with
 * RAW_* flags, waiting at most timeout_ms. Returns the status, or -1 when
 * the connection failed or timed out. On a served GET *gen is the
 * generation read (0: absent, or a value the majority never wrote).
 */
static int raw_call(unsigned i, int timeout_ms, unsigned flags, unsigned k, const char *value,
		    int *gen)
{
	uint8_t req[160], op[128], resp[4096], lenbuf[4];
	char key[32];
	size_t kl = key_of(key, sizeof key, k), ol = 0, rl = 4, pos = 0;
	const uint8_t *got = NULL;
	uint64_t status = 0, got_len = 0;
	uint32_t len;
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = timeout_ms % 1000 * 1000 };
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)cluster.nodes[i].srv.port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), rv = -1;

	*gen = 0;
	if (fd < 0)
		return -1;
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		goto out;
	ol += put_bytes(op + ol, 0x0a, key, kl);              /* key = 1 */
	if (value)
		ol += put_bytes(op + ol, 0x12, value, strlen(value)); /* PutRequest.value = 2 */
	if (!value && (flags & RAW_STALE)) {
		op[ol++] = 0x10;                              /* GetRequest.stale = 2 */
		op[ol++] = 1;
	}
	req[rl++] = 0x08;                                     /* Request.id = 1 */
	req[rl++] = 1;
	rl += put_bytes(req + rl, value ? 0x1a : 0x12, op, ol); /* put = 3, get = 2 */
	if (flags & RAW_NO_FORWARD) {
		req[rl++] = 0x40;                             /* Request.no_forward = 8 */
		req[rl++] = 1;
	}
	len = (uint32_t)(rl - 4);
	memcpy(req, (uint8_t[4]){ (uint8_t)len, (uint8_t)(len >> 8), 0, 0 }, 4);
	if (write(fd, req, rl) != (ssize_t)rl || !read_full(fd, lenbuf, 4))
		goto out;
	len = (uint32_t)lenbuf[0] | (uint32_t)lenbuf[1] << 8 | (uint32_t)lenbuf[2] << 16 |
	      (uint32_t)lenbuf[3] << 24;
	if (len > sizeof resp || !read_full(fd, resp, len))
		goto out;
	while (pos < len) {
		uint64_t tag, v;

		if (!get_varint(resp, len, &pos, &tag))
			goto out;
		if ((tag & 7) == 0) {
			if (!get_varint(resp, len, &pos, &v))
				goto out;
			if (tag >> 3 == 2)
				status = v;
		} else if ((tag & 7) == 2) {
			if (!get_varint(resp, len, &pos, &v) || v > len - pos)
				goto out;
			if (tag >> 3 == 3) {
				got = resp + pos;
				got_len = v;
			}
			pos += v;
		} else {
			goto out;
		}
	}
	if (status > INT32_MAX)
		goto out;
	rv = (int)status;
	if (rv == RKV_STATUS_OK && got)
		*gen = (int)gen_of(got, got_len, k);
out:
	close(fd);
	return rv;
}

/* Reads key k through node i, linearizably (only k's leader serves it; no
 * forwarding). The status or -1; *gen as raw_call's. */
static int get_via(unsigned i, unsigned k, int *gen)
{
	return raw_call(i, 3000, RAW_NO_FORWARD, k, NULL, gen);
}

/*
 * Writes generation `gen` of key k through any node but `avoid` (NODES for
 * none), each node asked not to forward: NOT_LEADER and UNAVAILABLE move on
 * to the next node, until `limit_ms`. 1 when acknowledged, 0 when the
 * outcome is unknown (never retried with the same value: a retry could not
 * tell the two writes apart), -1 when no node took it in time.
 */
static int put_via_others(unsigned k, unsigned gen, unsigned avoid, long limit_ms)
{
	char value[32];
	long deadline = harness_now_ms() + limit_ms;
	int ignored;

	value_of(value, sizeof value, k, gen);
	sent_gen[k] = gen;
	while (harness_now_ms() < deadline) {
		for (unsigned i = 0; i < NODES; i++) {
			int rv;

			if (i == avoid)
				continue;
			rv = raw_call(i, 3000, RAW_NO_FORWARD, k, value, &ignored);
			if (rv == RKV_STATUS_OK) {
				atomic_store(&acked_gen[k], gen);
				return 1;
			}
			if (rv == RKV_STATUS_NOT_LEADER || rv == RKV_STATUS_UNAVAILABLE)
				continue;
			return 0;
		}
		usleep(20000);
	}
	return -1;
}

/* The node that serves a read of key k (the others say NOT_LEADER), or
 * NODES when none does within `limit_ms`. */
static unsigned find_leader(unsigned k, long limit_ms)
{
	long deadline = harness_now_ms() + limit_ms;
	int gen;

	while (harness_now_ms() < deadline) {
		for (unsigned i = 0; i < NODES; i++) {
			int rv = get_via(i, k, &gen);

			if (rv == RKV_STATUS_OK || rv == RKV_STATUS_NOT_FOUND)
				return i;
		}
		usleep(20000);
	}
	return NODES;
}

/* What the client next to the isolated node saw. */
struct victim_probe {
	unsigned node;
	const unsigned *keys;   /* keys whose shard it led */
	unsigned n_keys;
	atomic_bool stop;
	unsigned puts, gets, by_status[16], transport_errors;
	unsigned acked_writes, served_reads, stale_reads;
	char first_violation[256];
	long first_not_leader_ms; /* a write to a key it led answered NOT_LEADER */
	long t0;
};

__attribute__((format(printf, 2, 3)))
static void violation(struct victim_probe *p, const char *fmt, ...)
{
	va_list ap;

	if (p->first_violation[0])
		return;
	va_start(ap, fmt);
	vsnprintf(p->first_violation, sizeof p->first_violation, fmt, ap);
	va_end(ap);
}

static void count_status(struct victim_probe *p, int rv)
{
	if (rv < 0)
		p->transport_errors++;
	else if (rv < 16)
		p->by_status[rv]++;
}

/* One write or read (value NULL) by the isolated node's client: through
 * libringkv (*c, a plain request, which a node may forward) or, when `raw`,
 * asking the node not to forward. The status or < 0; *gen as raw_call's. */
static int victim_call(struct victim_probe *p, struct rkv_client **c, bool raw, unsigned k,
		       const char *value, int *gen)
{
	char key[32], err[256];
	size_t kl = key_of(key, sizeof key, k), gl;
	void *got;
	int rv;

	*gen = 0;
	if (raw)
		return raw_call(p->node, VICTIM_TIMEOUT_MS, RAW_NO_FORWARD, k, value, gen);
	if (!*c) {
		if (rkv_connect_timeout(cluster.nodes[p->node].srv.addr, 2000, c, err, sizeof err) != 0) {
			*c = NULL;
			return -1;
		}
		rkv_set_timeout(*c, VICTIM_TIMEOUT_MS);
	}
	if (value) {
		rv = rkv_put(*c, key, kl, value, strlen(value));
	} else {
		rv = rkv_get(*c, key, kl, &got, &gl);
		if (rv == RKV_STATUS_OK) {
			*gen = (int)gen_of(got, gl, k);
			free(got);
		}
	}
	if (rv < 0) {
		rkv_close(*c);
		*c = NULL;
	}
	return rv;
}

/* Alternates writes and reads of the keys the isolated node led, through
 * that node (plain and no-forward requests in turn), until told to stop
 * (bounded by VICTIM_MAX_OPS). */
static void *victim_main(void *arg)
{
	struct victim_probe *p = arg;
	struct rkv_client *c = NULL;

	for (unsigned n = 0; n < VICTIM_MAX_OPS && !atomic_load(&p->stop); n++) {
		unsigned k = p->keys[n % p->n_keys], before;
		bool raw = n % 2;
		char value[32];
		int rv, gen;

		usleep(VICTIM_PACE_US);
		snprintf(value, sizeof value, "x%u.%u", k, n);
		rv = victim_call(p, &c, raw, k, value, &gen);
		p->puts++;
		count_status(p, rv);
		if (rv == RKV_STATUS_OK) {
			p->acked_writes++;
			violation(p, "a write of key %u (%s) was acknowledged OK", k, value);
		}
		if (rv == RKV_STATUS_NOT_LEADER && !p->first_not_leader_ms)
			p->first_not_leader_ms = harness_now_ms() - p->t0;

		before = atomic_load(&acked_gen[k]);
		rv = victim_call(p, &c, raw, k, NULL, &gen);
		p->gets++;
		count_status(p, rv);
		if (rv == RKV_STATUS_OK || rv == RKV_STATUS_NOT_FOUND) {
			p->served_reads++;
			if (gen < (int)before) {
				p->stale_reads++;
				violation(p, "STALE read of key %u: generation %d after the majority "
					  "acknowledged %u", k, gen, before);
			}
			violation(p, "a read of key %u was served (generation %d; %u acknowledged "
				  "before it began)", k, gen, before);
		}
	}
	if (c)
		rkv_close(c);
	return NULL;
}

static int read_replica(unsigned i, unsigned k);


/*
 * Every node's replica of every key holds the same value, and it is one the
 * majority wrote: the last acknowledged generation, or a later one whose
 * write had an unknown outcome (never a value sent to the isolated node).
 * Polls until then or CONVERGE_LIMIT_MS; returns the time it took.
 */
static long check_converged(void)
{
	long t0 = harness_now_ms(), deadline = t0 + CONVERGE_LIMIT_MS;
	char why[256] = "";

	while (harness_now_ms() < deadline) {
		bool all = true;

		for (unsigned k = 0; k < KEYS && all; k++) {
			int first = read_replica(0, k);
			unsigned acked = atomic_load(&acked_gen[k]);

			if (first < (int)acked || first > (int)sent_gen[k] || first == 0) {
				snprintf(why, sizeof why, "node 1's replica of key %u holds generation "
					 "%d (0: absent or not a majority write; -1: no answer), the "
					 "majority wrote %u-%u", k, first, acked, sent_gen[k]);
				all = false;
			}
			for (unsigned i = 1; i < NODES && all; i++) {
				int got = read_replica(i, k);

				if (got != first) {
					snprintf(why, sizeof why, "key %u: node %u's replica holds "
						 "generation %d, node 1's %d", k, i + 1, got, first);
					all = false;
				}
			}
		}
		if (all)
			return harness_now_ms() - t0;
		usleep(200000);
	}
	CHECK(false, "replicas differ %d ms after healing: %s", CONVERGE_LIMIT_MS, why);
	return -1;
}

/* Writes every key `skip` does not mark (all when NULL), each with fresh
 * generations until one is acknowledged, within ELECT_LIMIT_MS. */
static void write_until_acked(const bool *skip)
{
	for (unsigned k = 0; k < KEYS; k++) {
		long t0 = harness_now_ms();

		if (skip && skip[k])
			continue;
		while (put_via_others(k, sent_gen[k] + 1, NODES, ELECT_LIMIT_MS) != 1)
			CHECK(harness_now_ms() - t0 < ELECT_LIMIT_MS, "key %u not written after healing", k);
	}
}

int main(int argc, char **argv)
{
	unsigned port = 24400 + (unsigned)getpid() % 200, victim, n_led = 0, written = 0;
	static unsigned led[KEYS];
	static bool was_led[KEYS];
	static unsigned new_leader[KEYS];
	struct victim_probe probe;
	pthread_t thread;
	long t_iso, first_ack = -1, all_acked, step_down_wait;

	CHECK(argc == 3, "usage: %s RINGKVD NETFAULT_SH (under netfault.sh wrap)", argv[0]);
	netfault = argv[2];
	CHECK(getenv("RINGKV_NETFAULT_CHAIN"), "run me under 'netfault.sh wrap --'");
	for (unsigned i = 0; i < NODES; i++)
		snprintf(peer_addr[i], sizeof peer_addr[i], "127.0.4.1%u", i + 1);
	snprintf(addr_list, sizeof addr_list, "%s,%s,%s", peer_addr[0], peer_addr[1], peer_addr[2]);
	cluster_init(&cluster, argv[1], NODES, "127.0.4.1", port);
	cluster.args = (const char *const[]){ "--cores", "2", "--election-timeout", "300ms", NULL };
	cluster_start_all(&cluster);

	/* 1. Every key written once (the first writes wait for elections). */
	for (unsigned k = 0; k < KEYS; k++)
		CHECK(put_via_others(k, 1, NODES, ELECT_LIMIT_MS) == 1, "key %u not written", k);
	for (unsigned k = 0; k < KEYS; k++) {
		leader_of[k] = find_leader(k, ELECT_LIMIT_MS);
		CHECK(leader_of[k] < NODES, "no node serves key %u", k);
	}
	victim = leader_of[0];
	for (unsigned k = 0; k < KEYS; k++)
		if (leader_of[k] == victim) {
			led[n_led++] = k;
			was_led[k] = true;
		}
	printf("node %u leads the shards of %u of %u keys; isolating it\n", victim + 1,
	       n_led, KEYS);

	/* 2. Partition. */
	netfault_run("isolate", victim);
	t_iso = harness_now_ms();
	memset(&probe, 0, sizeof probe);
	probe.node = victim;
	probe.keys = led;
	probe.n_keys = n_led;
	probe.t0 = t_iso;
	CHECK(pthread_create(&thread, NULL, victim_main, &probe) == 0, "pthread_create");
	/* The majority elects new leaders for the victim's shards: each key it
	 * led is written again (generation 2) through the other two nodes. */
	for (unsigned j = 0; j < n_led; j++) {
		int rv = put_via_others(led[j], 2, victim, ELECT_LIMIT_MS);

		CHECK(rv >= 0, "the majority did not take key %u within %d ms of the partition",
		      led[j], ELECT_LIMIT_MS);
		if (rv == 1) {
			written++;
			if (first_ack < 0)
				first_ack = harness_now_ms() - t_iso;
		}
	}
	all_acked = harness_now_ms() - t_iso;
	CHECK(first_ack >= 0 && written + 2 >= n_led, "only %u of %u keys acknowledged by the "
	      "majority", written, n_led);
	/* Hold the partition until the isolated node has stepped down (it
	 * answers NOT_LEADER for a key it led), then write once more. */
	while (!probe.first_not_leader_ms && harness_now_ms() - t_iso < STEP_DOWN_LIMIT_MS)
		usleep(50000);
	step_down_wait = probe.first_not_leader_ms;
	for (unsigned j = 0; j < n_led; j++)
		put_via_others(led[j], 3, victim, ELECT_LIMIT_MS);
	while (harness_now_ms() - t_iso < PARTITION_MIN_MS)
		usleep(50000);
	/* The majority's leaders of the victim's former shards. */
	for (unsigned j = 0; j < n_led && step_down_wait > 0; j++) {
		new_leader[j] = find_leader(led[j], ELECT_LIMIT_MS);
		CHECK(new_leader[j] != NODES && new_leader[j] != victim,
		      "key %u: no leader on the majority's side (%u)", led[j], new_leader[j] + 1);
	}
	atomic_store(&probe.stop, true);
	pthread_join(thread, NULL);
	printf("partition: the majority acknowledged its first write %ld ms after the cut, "
	       "all %u keys by %ld ms; the isolated node answered NOT_LEADER after %ld ms\n",
	       first_ack, n_led, all_acked, step_down_wait);
	printf("isolated node: %u writes, %u reads sent; OK %u, NOT_FOUND %u, NOT_LEADER %u, "
	       "UNAVAILABLE %u, UNKNOWN %u, TIMEOUT %u, transport errors/timeouts %u\n",
	       probe.puts, probe.gets, probe.by_status[RKV_STATUS_OK],
	       probe.by_status[RKV_STATUS_NOT_FOUND], probe.by_status[RKV_STATUS_NOT_LEADER],
	       probe.by_status[RKV_STATUS_UNAVAILABLE], probe.by_status[RKV_STATUS_UNKNOWN],
	       probe.by_status[RKV_STATUS_TIMEOUT], probe.transport_errors);
	CHECK(probe.acked_writes == 0 && probe.served_reads == 0,
	      "the partitioned node served %u writes and %u reads (%u stale): first: %s",
	      probe.acked_writes, probe.served_reads, probe.stale_reads, probe.first_violation);
	CHECK(probe.puts >= 3 && probe.gets >= 1, "too few requests reached the isolated node");
	CHECK(step_down_wait > 0, "the isolated leader did not step down within %d ms",
	      STEP_DOWN_LIMIT_MS);

	/* 3. Heal. Writes go on (the keys the isolated node led are left as
	 * the majority wrote them, so that a value it was sent would show). */
	netfault_run("heal", victim);
	write_until_acked(was_led);
	/* Pre-vote (§9.6): the returning node cannot disrupt the leaders the
	 * majority elected; it rejoins as a follower. */
	for (unsigned j = 0; j < n_led; j++) {
		unsigned now = find_leader(led[j], ELECT_LIMIT_MS);

		CHECK(now == new_leader[j], "key %u: led by node %u after healing, by node %u "
		      "during the partition", led[j], now + 1, new_leader[j] + 1);
	}

	/* 4. Every replica holds the same contents, the majority's. */
	printf("after healing: %s equal to the acknowledged contents in %ld ms\n",
	       HAVE_STALE_READS ? "every node's replica of every key" :
	       "every key read through its leader (no stale reads in this tree: replicas "
	       "not compared one by one)", check_converged());
	/* 5. The isolated node's former shards take writes again, and it
	 * follows them. */
	write_until_acked(NULL);
	printf("all keys written again: replicas equal after %ld ms\n", check_converged());

	cluster_stop_all(&cluster, 15000);
	harness_cleanup();
	printf("1 passed, 0 failed\n");
	return 0;
}

/* The generation key k's leader serves, -1 when none answers. */
static int leader_get(unsigned k)
{
	for (unsigned i = 0; i < NODES; i++) {
		int gen, rv = get_via(i, k, &gen);

		if (rv == RKV_STATUS_OK || rv == RKV_STATUS_NOT_FOUND)
			return gen;
	}
	return -1;
}

/*
 * Key k's value as node i's own replica holds it: the generation, 0 when
 * absent or not a majority write, -1 when it cannot tell. With stale reads
 * (the node answers from its own applied state, leader or not) every node is
 * asked directly, so a replica that diverged shows even if it never leads
 * again. A tree whose proto has no stale field yet can only ask each key's
 * leader (every leader holds exactly what was acknowledged); the output
 * says so.
 */
static int read_replica(unsigned i, unsigned k)
{
	int gen, rv;

	if (!HAVE_STALE_READS)
		return leader_get(k);
	rv = raw_call(i, 3000, RAW_STALE | RAW_NO_FORWARD, k, NULL, &gen);
	return rv == RKV_STATUS_OK || rv == RKV_STATUS_NOT_FOUND ? gen : -1;
}
