/*
 * One node per address (issue 13): every core listens with SO_REUSEPORT, so
 * without a check a second ringkvd of the same user binds beside a running
 * one and the kernel spreads clients over two unrelated stores. Here real
 * processes show that
 *   - a 2-core node starts (its own cores still share the port);
 *   - a second node on the same client port, on an overlapping wildcard
 *     address (0.0.0.0, or [::] across families), or on the same RESP port
 *     exits 1 naming the address;
 *   - the first node still answers every new connection with its own data;
 *   - a restart on the same port right after a shutdown that left
 *     connections in TIME_WAIT is not refused.
 * Without the check the second process keeps running: run_capture kills it
 * after 15 s and the exit status is not 1.
 *
 * usage: test_port_conflict RINGKVD
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tools/libringkv.h"

#define KEYS 50
#define CLIENTS 32

static const char *ringkvd;
static const char *second_dir; /* data of every refused node, one at a time */

/* A port free at this moment on 127.0.0.1 (for --resp-listen). */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
		      getsockname(fd, (struct sockaddr *)&a, &len) == 0,
	      "probe a free port");
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* True when this machine can listen on IPv6 "::" (a port of its choice). */
static bool have_ipv6(void)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* Runs a second node with `listen` (and `resp` unless NULL) and expects it
 * to refuse, naming `named` and the option `flag`. */
static void expect_refused(const char *listen, const char *resp, const char *named,
			   const char *flag)
{
	char out[8192];
	const char *args[] = { "--data-dir", second_dir, "--cores", "2", "--listen", listen,
			       resp ? "--resp-listen" : NULL, resp, NULL };
	int rc = run_capture(ringkvd, args, out, sizeof out);

	CHECK(rc == 1, "second node on %s%s%s exited %d, not 1; output:\n%s", listen,
	      resp ? " resp " : "", resp ? resp : "", rc, out);
	CHECK(strstr(out, named) != NULL, "message does not name %s:\n%s", named, out);
	CHECK(strstr(out, "already in use by another process") != NULL,
	      "message does not say why:\n%s", out);
	CHECK(strstr(out, flag) != NULL, "message does not name %s:\n%s", flag, out);
}

/* Every one of CLIENTS new connections reads every key back. */
static void check_all_clients_served(const char *addr)
{
	struct rkv_client *c[CLIENTS];

	harness_connect_all(c, CLIENTS, addr);
	for (unsigned k = 0; k < CLIENTS; k++) {
		for (unsigned i = 0; i < KEYS; i += 7) {
			char key[32], want[32];
			void *value = NULL;
			size_t len = 0;
			int rc;

			snprintf(key, sizeof key, "port-key-%u", i);
			snprintf(want, sizeof want, "value-%u", i);
			rc = rkv_get(c[k], key, strlen(key), &value, &len);
			CHECK(rc == 0, "connection %u: get %s: %s", k, key, rkv_status_name(rc));
			CHECK(len == strlen(want) && memcmp(value, want, len) == 0,
			      "connection %u: %s has the wrong value", k, key);
			free(value);
		}
	}
	harness_close_all(c, CLIENTS);
}

/* True when /proc/net/tcp shows a closing connection on local `port`. */
static bool closing_connection_on(int port)
{
	char line[512];
	FILE *f = fopen("/proc/net/tcp", "r");
	bool seen = false;

	if (!f)
		return false;
	while (fgets(line, sizeof line, f)) {
		unsigned local_port, state;

		if (sscanf(line, " %*u: %*8[0-9A-Fa-f]:%x %*s %x", &local_port, &state) == 2 &&
		    (int)local_port == port && (state == 0x05 || state == 0x06))
			seen = true; /* FIN_WAIT2 or TIME_WAIT */
	}
	fclose(f);
	return seen;
}

int main(int argc, char **argv)
{
	struct server first, again;
	struct rkv_client *c;
	char addr[64], any[64], any6[64], resp[64], err[256];
	const char *dir;
	int resp_port, rc;

	if (argc != 2) {
		fprintf(stderr, "usage: %s RINGKVD\n", argv[0]);
		return 2;
	}
	ringkvd = argv[1];
	dir = harness_tmpdir();
	second_dir = harness_tmpdir();
	CHECK(dir && second_dir, "temporary directories");
	resp_port = free_port();
	snprintf(resp, sizeof resp, "127.0.0.1:%d", resp_port);
	CHECK(server_start(&first, ringkvd,
			   (const char *[]){ "--data-dir", dir, "--cores", "2",
					     "--resp-listen", resp, NULL }) == 0,
	      "first node does not start");
	rc = rkv_connect(first.addr, &c, err, sizeof err);
	CHECK(rc == 0, "connect: %s", err);
	for (unsigned i = 0; i < KEYS; i++) {
		char key[32], value[32];

		snprintf(key, sizeof key, "port-key-%u", i);
		snprintf(value, sizeof value, "value-%u", i);
		rc = rkv_put(c, key, strlen(key), value, strlen(value));
		CHECK(rc == 0, "put %s: %s", key, rkv_status_name(rc));
	}

	snprintf(addr, sizeof addr, "127.0.0.1:%d", first.port);
	snprintf(any, sizeof any, "0.0.0.0:%d", first.port);
	expect_refused(addr, NULL, addr, "--listen");
	expect_refused(any, NULL, addr, "--listen");
	/* "::" takes IPv4 too: it overlaps 127.0.0.1 across families. */
	snprintf(any6, sizeof any6, "[::]:%d", first.port);
	if (have_ipv6())
		expect_refused(any6, NULL, addr, "--listen");
	else
		printf("no IPv6 here: the [::] case is not run\n");
	expect_refused("127.0.0.1:0", resp, resp, "--resp-listen");
	check_all_clients_served(first.addr);

	/* Stop with a connection open: the server closes first, so its side of
	 * the connection lingers in FIN_WAIT2 / TIME_WAIT on the port. */
	rc = server_stop(&first, SIGTERM, 15000);
	CHECK(rc >= 0 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "first node stop: %d", rc);
	rkv_close(c);
	CHECK(closing_connection_on(first.port),
	      "no TIME_WAIT left on port %d: the restart below tests nothing", first.port);
	CHECK(server_start(&again, ringkvd,
			   (const char *[]){ "--data-dir", dir, "--cores", "2", "--listen",
					     addr, "--resp-listen", resp, NULL }) == 0,
	      "restart on %s beside its own TIME_WAIT connections refused", addr);
	CHECK(again.port == first.port, "restart listens on %d, not %d", again.port,
	      first.port);
	check_all_clients_served(again.addr);
	rc = server_stop(&again, SIGTERM, 15000);
	CHECK(rc >= 0 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "restart stop: %d", rc);
	harness_cleanup();
	printf("port-conflict: ok\n");
	return 0;
}
