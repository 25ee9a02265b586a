/*
 * ringkvd: parse flags, lock the data directory, check or record the
 * cluster identity it holds (server/datadir.h), bind one SO_REUSEPORT
 * listener per core, start the reactors, and wait for SIGINT/SIGTERM to stop
 * them cleanly (stop accepting, finish in-flight writes, sync, exit 0).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/peer.h"
#include "cluster/peer_tls.h"
#include "cluster/replica.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/reactor.h"
#include "core/topology.h"
#include "server/admin.h"
#include "server/audit.h"
#include "server/datadir.h"
#include "server/fd_limit.h"
#include "server/quarantine.h"
#include "server/repair.h"
#include "server/node.h"
#include "io/tls.h"
#include "server/users.h"
#include "shard/route.h"
#include "tools/version.h"

#define MAX_CPUS 1024

/* HOST:PORT to a socket address (blocking: start-up only). */
static int resolve(const char *host, uint16_t port, struct sockaddr_storage *out,
		   socklen_t *outlen, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai;
	char portstr[8];
	int rv;

	snprintf(portstr, sizeof portstr, "%u", port);
	rv = getaddrinfo(host, portstr, &hints, &ai);
	if (rv != 0) {
		snprintf(err, errlen, "cannot resolve %s:%u: %s", host, port, gai_strerror(rv));
		return -EINVAL;
	}
	memcpy(out, ai->ai_addr, ai->ai_addrlen);
	*outlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* Binds host:port with SO_REUSEPORT; port 0 picks a free one. */
static int listen_on(const char *host, uint16_t port, uint16_t *bound, char *err, size_t errlen)
{
	struct sockaddr_storage addr, ss;
	socklen_t addrlen, sslen = sizeof ss;
	int fd, one = 1, rv;

	rv = resolve(host, port, &addr, &addrlen, err, errlen);
	if (rv)
		return rv;
	fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
	    bind(fd, (struct sockaddr *)&addr, addrlen) != 0 || listen(fd, 4096) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0) {
		rv = -errno;
		snprintf(err, errlen, "cannot listen on %s:%u: %s", host, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rv;
	}
	*bound = ntohs(ss.ss_family == AF_INET6 ?
		       ((struct sockaddr_in6 *)&ss)->sin6_port :
		       ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/*
 * The replication engine's node and, for a cluster of several nodes, the
 * peer transport: one listener per core on this node's peer address (bound
 * before the reactors start, like the client listeners) and the address of
 * every other node. A one-node cluster has no transport: its groups of one
 * need no messages.
 */
static int start_cluster(struct node *n, const struct datadir_cluster *id, char *err,
			 size_t errlen)
{
	struct cluster_node_config cfg;
	struct peer_config pcfg;
	int *fds;
	uint16_t port;
	int rv;

	memset(&cfg, 0, sizeof cfg);
	cfg.map = &id->map;
	cfg.self_id = id->node_id;
	cfg.cores = n->cores;
	cfg.data_dir = n->cfg.data_dir;
	cfg.shard.memtable_size = n->cfg.memtable_size;
	cfg.memtable_budget = n->cfg.memtable_budget;
	cfg.shard.manifest_rewrite_min = n->cfg.manifest_rewrite_min;
	cfg.cache_bytes = n->cfg.block_cache_size;
	cfg.election_timeout_ms = n->cfg.election_timeout_ms;
	cfg.heartbeat_ms = n->cfg.heartbeat_ms;
	cfg.snapshot_rate = n->cfg.snapshot_rate;
	cfg.core_log_buffered = n->cfg.log_buffered;
	cfg.snapshot_lag = n->cfg.snapshot_lag;
	cfg.join_existing = n->cfg.join_existing;
	cfg.bootstrap = n->cfg.bootstrap;
	cfg.auto_repair = n->cfg.auto_repair;
	cfg.core_log_segment_size = n->cfg.log_segment_size;
	cfg.slot_function = id->slot_function;
	/* --users guards the client ports; only mutual TLS guards the peer
	 * port, without which --users would promise what it cannot keep. */
	if (id->map.node_count > 1 && n->users && !n->peer_tls) {
		if (!n->cfg.unauthenticated_peers) {
			snprintf(err, errlen, "--users needs mutual TLS between the nodes "
				 "(--tls-ca or --peer-tls-ca): without it whoever reaches the "
				 "peer port can pose as a node and read or write any key; "
				 "--unauthenticated-peers allow starts anyway");
			return -EPERM;
		}
		log_warn("auth: the peer port is not authenticated (no --tls-ca or --peer-tls-ca): "
			 "whoever reaches it can pose as a node and read or write any key, "
			 "whatever --users says (--unauthenticated-peers allow)");
	}
	rv = cluster_node_create(&n->cluster, &cfg, err, errlen);
	if (rv)
		return rv;
	if (id->map.node_count == 1)
		return 0;

	memset(&pcfg, 0, sizeof pcfg);
	pcfg.self_id = id->node_id;
	rv = resolve(n->cfg.peer_host, n->cfg.peer_port, &pcfg.self_addr, &pcfg.self_addrlen,
		     err, errlen);
	if (rv)
		return rv;
	for (unsigned i = 0; i < id->map.node_count; i++) {
		const struct cluster_map_node *node = &id->map.nodes[i];
		struct peer_node *p = &pcfg.peers[pcfg.npeers];

		if (node->id == id->node_id)
			continue;
		p->id = node->id;
		rv = resolve(node->host, node->port, &p->addr, &p->addrlen, err, errlen);
		if (rv)
			return rv;
		pcfg.npeers++;
	}
	fds = calloc(n->cores, sizeof *fds);
	if (!fds) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rv = peer_listen((struct sockaddr *)&pcfg.self_addr, pcfg.self_addrlen, n->cores, fds,
			 &port, err, errlen);
	if (rv == 0) {
		pcfg.listen_fds = fds;
		pcfg.tls = n->peer_tls;
		cluster_peer_callbacks(&pcfg.cb);
		/* Takes the listeners over (closes them on failure too). */
		rv = peer_net_create(&n->net, &pcfg, n->cores, err, errlen);
	}
	free(fds);
	return rv;
}

/*
 * The peer port's files: each --peer-tls-* one, else its --tls-* one. Peer
 * TLS is on when there is a CA to verify peers against. False: plaintext.
 */
static bool peer_tls_files(const struct config *c, const char **cert, const char **key,
			   const char **ca)
{
	*cert = c->peer_tls_cert[0] ? c->peer_tls_cert : c->tls_cert;
	*key = c->peer_tls_key[0] ? c->peer_tls_key : c->tls_key;
	*ca = c->peer_tls_ca[0] ? c->peer_tls_ca : c->tls_ca;
	return (*ca)[0] && (*cert)[0];
}

/* The prefix of the options the peer port's files came from, for messages. */
static const char *peer_tls_flag(const struct config *c)
{
	return c->peer_tls_cert[0] ? "--peer-tls" : "--tls";
}

/* SIGHUP: the peers' files, like the client ports' below, and the
 * certificate checked as at start-up (it must still name this node). */
static void reload_peer_tls(struct node *n)
{
	const char *cert, *key, *ca;
	char err[512];

	if (!n->peer_tls || !peer_tls_files(&n->cfg, &cert, &key, &ca))
		return;
	if ((n->net && peer_tls_own_check(peer_tls_flag(&n->cfg), cert, ca, n->self_id, err,
			       sizeof err) != 0) ||
	    tls_server_reload(n->peer_tls, cert, key, ca, err, sizeof err) != 0) {
		log_error("got SIGHUP: peer TLS reload refused, the old certificate is still "
			  "used: %s", err);
		return;
	}
	log_info("got SIGHUP: peer TLS certificate reloaded from %s (CA %s); new peer "
		 "connections use it, and open ones whose peer certificate no longer verifies "
		 "are closed within 2 s", cert, ca);
}

/* SIGHUP: the TLS certificate, key and CA files are read again; new
 * connections get them, open ones keep theirs. A bad file changes nothing. */
static void reload_tls(struct node *n)
{
	char err[512];

	reload_peer_tls(n);
	if (!n->tls) {
		if (!n->users && !n->peer_tls)
			log_info("got SIGHUP: nothing to reload (no --tls-cert, no --users)");
		return;
	}
	if (tls_server_reload(n->tls, n->cfg.tls_cert, n->cfg.tls_key,
			      n->cfg.tls_ca[0] ? n->cfg.tls_ca : NULL, err, sizeof err) != 0) {
		log_error("got SIGHUP: TLS reload refused, the old certificate is still served: %s",
			  err);
		return;
	}
	log_info("got SIGHUP: TLS certificate reloaded from %s; new connections use it",
		 n->cfg.tls_cert);
}

/* SIGHUP: the users file is read again; cores take the new table at their
 * next check (server/users.h). A bad file changes nothing. */
static void reload_users(struct node *n)
{
	char err[512];

	if (!n->users)
		return;
	if (users_reload(n->users, n->cfg.users_file, n->cfg.max_key, err, sizeof err) != 0) {
		log_error("got SIGHUP: users reload refused, the old users are kept: %s", err);
		return;
	}
	log_info("got SIGHUP: %zu users reloaded from %s", users_current(n->users)->count,
		 n->cfg.users_file);
}

int main(int argc, char **argv)
{
	static struct users users;
	struct stat users_stat;
	static struct node node;
	static struct datadir_cluster identity;
	static char long_err[16384];   /* a refusal names every difference */
	static struct metrics metrics;
	static struct node_metric_ids metric_ids;
	uint16_t admin_port = 0;
	char peer[CONFIG_ADDR_MAX + 8];
	struct reactor_callbacks cb = {
		.start = node_core_start,
		.stop = node_core_stop,
		.quiescent = node_core_quiescent,
		.finish = node_core_finish,
		.arg = &node,
	};
	unsigned cpus[MAX_CPUS], core_cpus[MAX_CPUS];
	struct reactor_group *group;
	struct topology *topo;
	char err[512] = "";
	unsigned ncpus, i;
	sigset_t sigs;
	int lock_fd, sig, rv;

	if (argc > 1 && strcmp(argv[1], "repair") == 0)
		return repair_main(argc - 1, argv + 1); /* offline (server/repair.c) */
	config_defaults(&node.cfg);
	rv = config_parse(&node.cfg, argc, argv, err, sizeof err);
	if (rv == CONFIG_PARSE_VERSION)
		version_print(stdout, "ringkvd");
	if (rv == 1 || rv == CONFIG_PARSE_VERSION)
		return 0;
	if (rv != 0) {
		/* One line naming the bad argument: the usage would bury it. */
		fprintf(stderr, "ringkvd: %s (see ringkvd --help)\n", err);
		return 2;
	}
	log_set_level((enum log_level)node.cfg.log_level);
	log_set_format((enum log_format)node.cfg.log_format);
	frame_limits_default(&node.limits);
	node.limits.max_frame = node.cfg.max_frame;
	node.limits.max_key = node.cfg.max_key;
	node.limits.max_value = node.cfg.max_value;
	/* Certificates before anything else: a bad file is a setup error. */
	if (node.cfg.tls_cert[0]) {
		if (tls_server_create(node.cfg.tls_cert, node.cfg.tls_key,
				      node.cfg.tls_ca[0] ? node.cfg.tls_ca : NULL, &node.tls, err,
				      sizeof err) != 0) {
			fprintf(stderr, "ringkvd: %s\n", err);
			return 2;
		}
		/* kTLS is not written yet (io/tls.h): say which path runs. */
		log_info("%s", tls_kernel_has_ulp()
				       ? "tls: OpenSSL memory BIOs (the kernel has the tls ULP, "
					 "but kTLS is not implemented)"
				       : "tls: OpenSSL memory BIOs (kernel has no tls ULP)");
	}
	{
		const char *cert, *key, *ca;

		if (peer_tls_files(&node.cfg, &cert, &key, &ca)) {
			if (tls_peer_create(peer_tls_flag(&node.cfg), cert, key, ca, &node.peer_tls,
					    err, sizeof err) != 0) {
				fprintf(stderr, "ringkvd: %s\n", err);
				tls_server_destroy(node.tls);
				return 2;
			}
			log_info("tls: peer port: mutual TLS 1.3, certificates verified against %s "
				 "and naming the node (SAN URI ringkv://node/ID)", ca);
		} else if (node.tls) {
			log_warn("tls: the peer port is plaintext and unauthenticated (no --tls-ca "
				 "or --peer-tls-ca)");
		}
	}

	node.audit_fd = -1;
	if (node.cfg.audit_log[0]) {
		node.audit_fd = open(node.cfg.audit_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
				     0600);
		if (node.audit_fd < 0) {
			fprintf(stderr, "ringkvd: --audit-log %s: %s\n", node.cfg.audit_log,
				strerror(errno));
			tls_server_destroy(node.tls);
			tls_server_destroy(node.peer_tls);
			return 2;
		}
	}
	/* Users next: a bad file is a setup error too (FILE:LINE: reason). */
	if (node.cfg.users_file[0]) {
		if (users_create(&users, node.cfg.users_file, node.cfg.max_key, err, sizeof err) != 0) {
			fprintf(stderr, "ringkvd: %s\n", err);
			tls_server_destroy(node.tls);
			tls_server_destroy(node.peer_tls);
			return 2;
		}
		node.users = &users;
		log_info("auth: %zu users from %s; every client port needs AUTH",
			 users_current(&users)->count, node.cfg.users_file);
		if (stat(node.cfg.users_file, &users_stat) == 0 && (users_stat.st_mode & 0077))
			log_warn("auth: %s is readable by other users (mode %03o): its hashes can "
				 "be attacked offline; chmod 600 it", node.cfg.users_file,
				 (unsigned)(users_stat.st_mode & 0777));
	}

	if (topology_load(&topo, err, sizeof err) != 0) {
		fprintf(stderr, "ringkvd: %s\n", err);
		return 1;
	}
	ncpus = topology_cpus(topo, cpus, MAX_CPUS);
	if (ncpus == 0) {
		fprintf(stderr, "ringkvd: no usable CPU found in the process cpuset\n");
		goto err_after_topology;
	}

	lock_fd = datadir_lock(node.cfg.data_dir, err, sizeof err);
	if (lock_fd < 0) {
		fprintf(stderr, "ringkvd: %s\n", err);
		goto err_after_topology;
	}
	/* The cluster identity: recorded on first start, refused if it differs
	 * later. It settles the core and shard counts the flags left open. */
	if (datadir_cluster_open(node.cfg.data_dir, &node.cfg, ncpus, &identity, long_err,
				 sizeof long_err) != 0) {
		fprintf(stderr, "ringkvd: %s\n", long_err);
		goto err_after_lock;
	}
	/* Every shard dir and core log the node holds is there (or none yet). */
	if (datadir_check_whole(node.cfg.data_dir, &identity, long_err, sizeof long_err) != 0) {
		fprintf(stderr, "ringkvd: %s\n", long_err);
		goto err_after_lock;
	}
	quarantine_report(node.cfg.data_dir);
	/* Our own peer certificate must be one our peers accept: names this
	 * node, valid now, signed by the CA. Said now rather than by every peer
	 * refusing us. A one-node cluster has no peers to show it to. */
	node.self_id = identity.node_id;
	if (node.peer_tls && identity.map.node_count > 1) {
		const char *cert, *key, *ca;

		peer_tls_files(&node.cfg, &cert, &key, &ca);
		if (peer_tls_own_check(peer_tls_flag(&node.cfg), cert, ca, node.self_id, long_err,
				       sizeof long_err) != 0) {
			fprintf(stderr, "ringkvd: %s\n", long_err);
			goto err_after_lock;
		}
	}
	node.cores = identity.cores;
	node.shards = identity.map.shards;
	node.slot_function = identity.slot_function;
	if (node.cores > ncpus)
		log_warn("--cores %u exceeds the %u CPUs of the cpuset; cores will share CPUs",
			 node.cores, ncpus);
	for (i = 0; i < node.cores; i++)
		core_cpus[i] = cpus[i % ncpus];
	config_format_address(node.cfg.peer_host, node.cfg.peer_port, peer, sizeof peer);
	log_info("node %llu of cluster %016llx (%u node%s, %u shards, R=%u, slot function %u%s): "
		 "peer %s", (unsigned long long)identity.node_id,
		 (unsigned long long)identity.map.cluster_id, identity.map.node_count,
		 identity.map.node_count == 1 ? "" : "s", identity.map.shards,
		 identity.map.replicas, identity.slot_function,
		 identity.slot_function == ROUTE_SLOT_FN_HASH_TAG ? ", hash tags" : ", whole keys",
		 peer[0] == '-' ? "none" : peer);
	node.shard_core = calloc(node.shards, sizeof *node.shard_core);
	node.listen_fds = calloc(node.cores, sizeof *node.listen_fds);
	if (node.cfg.resp_host[0])
		node.resp_fds = calloc(node.cores, sizeof *node.resp_fds);
	if (!node.shard_core || !node.listen_fds || (node.cfg.resp_host[0] && !node.resp_fds)) {
		fprintf(stderr, "ringkvd: out of memory\n");
		goto err_after_lock;
	}
	/* The core of each shard this node holds a replica of (the placement's
	 * rule, cluster_map_core); the others are reached through their nodes. */
	{
		int self = cluster_map_index(&identity.map, identity.node_id);

		for (i = 0; i < node.shards; i++)
			node.shard_core[i] = cluster_map_rank(&identity.map, i, (unsigned)self) >= 0
						     ? (uint16_t)cluster_map_core(&identity.map, i, node.cores)
						     : NODE_NO_CORE;
	}
	if (start_cluster(&node, &identity, long_err, sizeof long_err) != 0) {
		fprintf(stderr, "ringkvd: %s\n", long_err);
		goto err_after_lock;
	}
	/* Replicas moved here or away (the data dir's hosting record,
	 * docs/cluster/membership.md): the engine's placement has the last word. */
	{
		uint64_t here = 0, fd_limit;

		for (i = 0; i < node.shards; i++) {
			int core = cluster_node_shard_core(node.cluster, i);

			node.shard_core[i] = core >= 0 ? (uint16_t)core : NODE_NO_CORE;
			here += core >= 0;
		}
		/* Before the cores open them (their start callbacks). */
		if (fd_limit_setup(here, &fd_limit, long_err, sizeof long_err) != 0) {
			fprintf(stderr, "ringkvd: %s\n", long_err);
			goto err_after_lock;
		}
		log_debug("open-file limit %" PRIu64 " for %" PRIu64 " replicas", fd_limit, here);
	}

	/* Another process on one of our addresses: refuse before binding, so a
	 * second node never joins the first one's SO_REUSEPORT group. */
	if (node_address_check(node.cfg.listen_host, node.cfg.listen_port, "--listen", err,
			       sizeof err) != 0 ||
	    (node.resp_fds && node_address_check(node.cfg.resp_host, node.cfg.resp_port,
						 "--resp-listen", err, sizeof err) != 0)) {
		fprintf(stderr, "ringkvd: %s\n", err);
		goto err_after_lock;
	}
	node.port = node.cfg.listen_port;
	for (i = 0; i < node.cores; i++) {
		/* The first bind may pick the port; the others join it. */
		node.listen_fds[i] = listen_on(node.cfg.listen_host, node.port, &node.port,
					       err, sizeof err);
		if (node.listen_fds[i] < 0) {
			fprintf(stderr, "ringkvd: %s\n", err);
			goto err_after_listen;
		}
		if (node.resp_fds) {
			if (i == 0)
				node.resp_port = node.cfg.resp_port;
			node.resp_fds[i] = listen_on(node.cfg.resp_host, node.resp_port,
						     &node.resp_port, err, sizeof err);
			if (node.resp_fds[i] < 0) {
				fprintf(stderr, "ringkvd: %s\n", err);
				close(node.listen_fds[i]);
				goto err_after_listen;
			}
		}
	}

	/* The metrics registry and the admin port (server/admin.h), before the
	 * reactors start: every core's row exists before any core runs. */
	if (metrics_init(&metrics, node.cores) != 0 ||
	    node_metrics_register(&metrics, &metric_ids) != 0 || metrics_freeze(&metrics) != 0) {
		fprintf(stderr, "ringkvd: cannot set up the metrics registry\n");
		goto err_after_metrics;
	}
	node.metrics = &metrics;
	node.metric_ids = &metric_ids;
	if (node.cfg.admin_host[0] &&
	    admin_create(&node.admin, &node, &metrics, node.cfg.admin_host, node.cfg.admin_port,
			 &admin_port, err, sizeof err) != 0) {
		fprintf(stderr, "ringkvd: %s\n", err);
		goto err_after_metrics;
	}

	/* Signals go to this thread alone (sigwait below); reactors inherit the
	 * blocked mask. A peer closing a socket must not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	if (reactor_group_start(&group, node.cores, core_cpus, topo, &cb, err, sizeof err) != 0) {
		fprintf(stderr, "ringkvd: %s\n", err);
		goto err_after_metrics;
	}
	/* Every core opened its log and shards: from now on a missing one
	 * is damage. */
	if (datadir_mark_opened(node.cfg.data_dir, err, sizeof err) != 0)
		log_warn("%s", err);
	printf("ringkvd: listening on %s:%u (%u cores, %u shards, data in %s)%s\n",
	       node.cfg.listen_host, node.port, node.cores, node.shards, node.cfg.data_dir,
	       node.tls ? " with TLS" : "");
	if (node.resp_fds)
		printf("ringkvd: RESP2 (Redis protocol) on %s:%u%s\n", node.cfg.resp_host,
		       node.resp_port, node.tls ? " with TLS" : "");
	if (node.admin)
		printf("ringkvd: admin (/metrics, /health, /ready) on %s://%s:%u\n",
		       node.tls ? "https" : "http", node.cfg.admin_host, admin_port);
	printf("ringkvd: try: ringkv -a %s:%u%s put hello world\n",
	       node.cfg.listen_host, node.port, node.tls ? " --tls-ca CA.pem" : "");
	fflush(stdout);

	for (;;) {
		/* Woken each second to free the users tables no session uses
		 * any more (server/users.h). */
		static const struct timespec tick = { .tv_sec = 1 };

		sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig < 0 && (errno == EAGAIN || errno == EINTR)) {
			size_t freed = node.users ? users_collect(node.users) : 0;

			if (freed)
				log_info("users: %zu old users table(s) freed (no session uses them)",
					 freed);
			continue;
		}
		if (sig != SIGHUP)
			break;
		reload_tls(&node);
		reload_users(&node);
		if (audit_reopen(&node, err, sizeof err) != 0)
			log_error("got SIGHUP: the audit log stays on its old file: %s", err);
		else if (node.audit_fd >= 0)
			log_info("got SIGHUP: audit log %s reopened", node.cfg.audit_log);
	}
	log_info("got %s: stopping (finishing in-flight writes)", strsignal(sig));
	reactor_group_stop(group);
	reactor_group_join(group);
	admin_destroy(node.admin);
	metrics_destroy(&metrics);
	for (i = 0; i < node.cores; i++) {
		close(node.listen_fds[i]);
		if (node.resp_fds)
			close(node.resp_fds[i]);
	}
	topology_destroy(topo);
	if (node.net)
		peer_net_destroy(node.net);
	cluster_node_destroy(node.cluster);
	free(node.shard_core);
	free(node.listen_fds);
	free(node.resp_fds);
	close(lock_fd);
	tls_server_destroy(node.tls);
	tls_server_destroy(node.peer_tls);
	if (node.users)
		users_destroy(node.users);
	if (node.audit_fd >= 0)
		close(node.audit_fd);
	log_info("stopped cleanly");
	return 0;

err_after_metrics:
	admin_destroy(node.admin);
	metrics_destroy(&metrics);
	i = node.cores;
err_after_listen:
	while (i-- > 0) {
		close(node.listen_fds[i]);
		if (node.resp_fds)
			close(node.resp_fds[i]);
	}
err_after_lock:
	if (node.net)
		peer_net_destroy(node.net);
	cluster_node_destroy(node.cluster);
	free(node.shard_core);
	free(node.listen_fds);
	free(node.resp_fds);
	close(lock_fd);
err_after_topology:
	topology_destroy(topo);
	tls_server_destroy(node.tls);
	tls_server_destroy(node.peer_tls);
	if (node.users)
		users_destroy(node.users);
	return 1;
}
