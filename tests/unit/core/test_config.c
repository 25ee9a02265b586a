/* Tests for core/config.c's config file: keys, precedence, refusals with
 * file:line, and --print-config's round trip. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"

static char path[64];

static const char *write_file(const char *text)
{
	int fd;
	FILE *f;

	strcpy(path, "/tmp/ringkv-config-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static int parse(struct config *c, const char *file, const char *flag, const char *value,
		 char *err, size_t errlen)
{
	char *argv[6] = { "ringkvd" };
	int argc = 1;

	if (file) {
		argv[argc++] = "--config";
		argv[argc++] = (char *)file;
	}
	if (flag) {
		argv[argc++] = (char *)flag;
		argv[argc++] = (char *)value;
	}
	config_defaults(c);
	return config_parse(c, argc, argv, err, errlen);
}

static void test_file_sets_keys(void **state)
{
	struct config c;
	char err[512] = "";

	(void)state;
	write_file("# a comment\n"
		   "; another\n"
		   "listen = 127.0.0.1:7170\n"
		   "[storage]\n"
		   "data-dir = /var/lib/ringkv\n"
		   "memtable-size = 8MiB\n"
		   "[ops]\n"
		   "admin-listen = 127.0.0.1:7171\n"
		   "log-level = warn\n");
	assert_int_equal(parse(&c, path, NULL, NULL, err, sizeof err), 0);
	assert_string_equal(c.listen_host, "127.0.0.1");
	assert_int_equal(c.listen_port, 7170);
	assert_string_equal(c.data_dir, "/var/lib/ringkv");
	assert_int_equal(c.memtable_size, 8u << 20);
	assert_string_equal(c.admin_host, "127.0.0.1");
	assert_int_equal(c.admin_port, 7171);
	unlink(path);
}

static void test_flags_override_file(void **state)
{
	struct config c;
	char err[512] = "";

	(void)state;
	write_file("admin-listen = 127.0.0.1:7171\nlisten = 127.0.0.1:7170\n");
	assert_int_equal(parse(&c, path, "--admin-listen", "none", err, sizeof err), 0);
	assert_string_equal(c.admin_host, "");
	assert_int_equal(c.listen_port, 7170);
	assert_int_equal(parse(&c, path, "--listen", "127.0.0.1:1", err, sizeof err), 0);
	assert_int_equal(c.listen_port, 1);
	assert_int_equal(c.admin_port, 7171);
	unlink(path);
}

static void expect_refusal(const char *text, const char *want)
{
	struct config c;
	char err[512] = "", full[600];

	write_file(text);
	assert_int_equal(parse(&c, path, NULL, NULL, err, sizeof err), -EINVAL);
	snprintf(full, sizeof full, "%s:%s", path, want);
	if (strcmp(err, full) != 0)
		fail_msg("got '%s', want '%s'", err, full);
	unlink(path);
}

static void test_refusals_name_file_and_line(void **state)
{
	(void)state;
	expect_refusal("listen = 127.0.0.1:1\n\nno-such-key = 3\n", "3: unknown key 'no-such-key'");
	expect_refusal("memtable-size = lots\n", "1: --memtable-size: bad value 'lots'");
	expect_refusal("\n[a]\nadmin-listen = nowhere\n",
		       "3: --admin-listen: expected HOST:PORT or none, got 'nowhere'");
	expect_refusal("listen\n", "1: not a 'key = value' line or a [section]");
	/* Flags that are not settings are refused in a file. */
	expect_refusal("config = /etc/other\n", "1: unknown key 'config'");
	expect_refusal("help = 1\n", "1: unknown key 'help'");
	/* Only the first failure is reported. */
	expect_refusal("cores = 0\nbogus = 1\n", "1: --cores: bad value '0'");
	expect_refusal("enable-flush = maybe\n", "1: --enable-flush: bad value 'maybe'");
	expect_refusal("metrics-per-replica = yes\n",
		       "1: --metrics-per-replica: bad value 'yes'");
	expect_refusal("metrics-per-replica-max = -1\n",
		       "1: --metrics-per-replica-max: bad value '-1'");
}

static void test_missing_file(void **state)
{
	struct config c;
	char err[512] = "";

	(void)state;
	assert_true(parse(&c, "/nonexistent/ringkv.conf", NULL, NULL, err, sizeof err) < 0);
	assert_non_null(strstr(err, "/nonexistent/ringkv.conf"));
}

/* --print-config's text reads back as the same settings. */
static void test_print_round_trip(void **state)
{
	struct config a, b;
	char err[512] = "";
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	write_file("listen = 127.0.0.1:7170\nresp-listen = [::1]:6380\n"
		   "admin-listen = 127.0.0.1:7171\nmax-value = 2MiB\nmax-frame = 8MiB\n"
		   "node-id = 2\ninitial-cluster = 1=10.0.0.1:7100,2=10.0.0.2:7100\n"
		   "replicas = 1\ncluster-token = t1\nlog-level = debug\nenable-flush = true\n"
		   "metrics-per-replica = off\nmetrics-per-replica-max = 7\n"
		   "tls-cert = /etc/ringkv/node.pem\ntls-key = /etc/ringkv/node.key\n"
		   "tls-ca = /etc/ringkv/ca.pem\ntls-handshake-timeout = 2s\n"
		   "peer-tls-cert = /etc/ringkv/peer.pem\npeer-tls-key = /etc/ringkv/peer.key\n"
		   "peer-tls-ca = /etc/ringkv/peer-ca.pem\ninitial-cluster-state = bootstrap\n");
	assert_int_equal(parse(&a, path, NULL, NULL, err, sizeof err), 0);
	unlink(path);
	f = open_memstream(&text, &len);
	config_print(f, &a);
	fclose(f);
	write_file(text);
	free(text);
	assert_int_equal(parse(&b, path, NULL, NULL, err, sizeof err), 0);
	unlink(path);
	assert_true(b.enable_flush);
	assert_int_equal(b.metrics_per_replica, CONFIG_PER_REPLICA_OFF);
	assert_int_equal(b.metrics_per_replica_max, 7);
	assert_true(b.bootstrap && !b.join_existing);
	assert_memory_equal(&a, &b, sizeof a);
}

/* --initial-cluster-state: new by default; existing; bootstrap; anything
 * else refused, naming the value, the earlier setting kept; the flag over
 * the file. */
static void test_initial_cluster_state(void **state)
{
	struct config c;
	char err[512] = "";

	(void)state;
	assert_int_equal(parse(&c, NULL, NULL, NULL, err, sizeof err), 0);
	assert_false(c.bootstrap || c.join_existing);
	assert_int_equal(parse(&c, NULL, "--initial-cluster-state", "existing", err, sizeof err),
			 0);
	assert_true(c.join_existing && !c.bootstrap);
	write_file("initial-cluster-state = bootstrap\n");
	assert_int_equal(parse(&c, path, NULL, NULL, err, sizeof err), 0);
	assert_true(c.bootstrap && !c.join_existing);
	assert_int_equal(parse(&c, path, "--initial-cluster-state", "new", err, sizeof err), 0);
	assert_false(c.bootstrap || c.join_existing);
	unlink(path);
	assert_true(parse(&c, NULL, "--initial-cluster-state", "fresh", err, sizeof err) != 0);
	assert_non_null(strstr(err, "fresh"));
}

/* --enable-flush: off by default, a flag without a value, true/false in a
 * file, the flag over the file. */
static void test_enable_flush(void **state)
{
	char *argv[] = { "ringkvd", "--config", path, "--enable-flush", NULL };
	struct config c;
	char err[512] = "";

	(void)state;
	assert_int_equal(parse(&c, NULL, NULL, NULL, err, sizeof err), 0);
	assert_false(c.enable_flush);
	write_file("enable-flush = yes\n");
	assert_int_equal(parse(&c, path, NULL, NULL, err, sizeof err), 0);
	assert_true(c.enable_flush);
	unlink(path);
	write_file("enable-flush = false\n");
	assert_int_equal(parse(&c, path, NULL, NULL, err, sizeof err), 0);
	assert_false(c.enable_flush);
	config_defaults(&c);
	assert_int_equal(config_parse(&c, 4, argv, err, sizeof err), 0);
	assert_true(c.enable_flush);
	unlink(path);
}

/* --metrics-per-replica: auto up to 1024 by default; on, off, a limit; the
 * flag over the file. */
static void test_metrics_per_replica(void **state)
{
	struct config c;
	char err[512] = "";

	(void)state;
	assert_int_equal(parse(&c, NULL, NULL, NULL, err, sizeof err), 0);
	assert_int_equal(c.metrics_per_replica, CONFIG_PER_REPLICA_AUTO);
	assert_int_equal(c.metrics_per_replica_max, 1024);
	write_file("metrics-per-replica = on\nmetrics-per-replica-max = 5\n");
	assert_int_equal(parse(&c, path, NULL, NULL, err, sizeof err), 0);
	assert_int_equal(c.metrics_per_replica, CONFIG_PER_REPLICA_ON);
	assert_int_equal(c.metrics_per_replica_max, 5);
	assert_int_equal(parse(&c, path, "--metrics-per-replica", "off", err, sizeof err), 0);
	assert_int_equal(c.metrics_per_replica, CONFIG_PER_REPLICA_OFF);
	assert_int_equal(parse(&c, path, "--metrics-per-replica", "auto", err, sizeof err), 0);
	assert_int_equal(c.metrics_per_replica, CONFIG_PER_REPLICA_AUTO);
	assert_int_equal(parse(&c, NULL, "--metrics-per-replica", "sometimes", err, sizeof err),
			 -EINVAL);
	assert_string_equal(err, "--metrics-per-replica: bad value 'sometimes'");
	unlink(path);
}

/* --tls-*: the file's keys, the pairs that must come together, the
 * handshake timeout's range. Files are only read by ringkvd (io/tls.c). */
static void test_tls(void **state)
{
	char *argv[] = { "ringkvd", "--tls-cert", "a.pem", "--tls-ca", "ca.pem", NULL };
	struct config c;
	char err[512] = "";

	(void)state;
	assert_int_equal(parse(&c, NULL, NULL, NULL, err, sizeof err), 0);
	assert_string_equal(c.tls_cert, "");
	assert_int_equal(c.tls_handshake_timeout_ms, 10000);
	write_file("[tls]\ntls-cert = n.pem\ntls-key = n.key\ntls-handshake-timeout = 500ms\n");
	assert_int_equal(parse(&c, path, NULL, NULL, err, sizeof err), 0);
	assert_string_equal(c.tls_cert, "n.pem");
	assert_string_equal(c.tls_key, "n.key");
	assert_int_equal(c.tls_handshake_timeout_ms, 500);
	unlink(path);
	assert_int_equal(parse(&c, NULL, "--tls-key", "n.key", err, sizeof err), -EINVAL);
	assert_string_equal(err, "--tls-key needs --tls-cert too");
	assert_int_equal(parse(&c, NULL, "--tls-ca", "ca.pem", err, sizeof err), -EINVAL);
	assert_string_equal(err, "--tls-ca needs --tls-cert and --tls-key");
	config_defaults(&c);
	assert_int_equal(config_parse(&c, 5, argv, err, sizeof err), -EINVAL);
	assert_string_equal(err, "--tls-cert needs --tls-key too");
	assert_int_equal(parse(&c, NULL, "--tls-handshake-timeout", "10ms", err, sizeof err),
			 -EINVAL);
	assert_non_null(strstr(err, "--tls-handshake-timeout: expected 100ms to 600s"));
	assert_int_equal(parse(&c, NULL, "--tls-cert", "", err, sizeof err), -EINVAL);
}

/* --peer-tls-*: the peer port's own files, each defaulting to its --tls-*
 * one; a certificate without a CA to verify peers with is refused. */
static void test_peer_tls(void **state)
{
	char *alone[] = { "ringkvd", "--peer-tls-cert", "p.pem", "--peer-tls-key", "p.key", NULL };
	char *with_ca[] = { "ringkvd", "--peer-tls-cert", "p.pem", "--peer-tls-key", "p.key",
			    "--tls-cert", "n.pem", "--tls-key", "n.key", "--tls-ca", "ca.pem", NULL };
	struct config c;
	char err[512] = "";

	(void)state;
	write_file("[tls]\npeer-tls-cert = p.pem\npeer-tls-key = p.key\npeer-tls-ca = pca.pem\n");
	assert_int_equal(parse(&c, path, NULL, NULL, err, sizeof err), 0);
	assert_string_equal(c.peer_tls_cert, "p.pem");
	assert_string_equal(c.peer_tls_key, "p.key");
	assert_string_equal(c.peer_tls_ca, "pca.pem");
	unlink(path);
	assert_int_equal(parse(&c, NULL, "--peer-tls-key", "p.key", err, sizeof err), -EINVAL);
	assert_string_equal(err, "--peer-tls-key needs --peer-tls-cert too");
	config_defaults(&c);
	assert_int_equal(config_parse(&c, 5, alone, err, sizeof err), -EINVAL);
	assert_string_equal(err, "--peer-tls-cert needs --peer-tls-ca (or --tls-ca)");
	config_defaults(&c);
	assert_int_equal(config_parse(&c, 11, with_ca, err, sizeof err), 0);
	assert_string_equal(c.peer_tls_ca, "");
	assert_int_equal(parse(&c, NULL, "--peer-tls-ca", "ca.pem", err, sizeof err), -EINVAL);
	assert_string_equal(err, "--peer-tls-ca needs --peer-tls-cert and --peer-tls-key "
			    "(or --tls-cert and --tls-key)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_sets_keys),
		cmocka_unit_test(test_flags_override_file),
		cmocka_unit_test(test_refusals_name_file_and_line),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_print_round_trip),
		cmocka_unit_test(test_enable_flush),
		cmocka_unit_test(test_initial_cluster_state),
		cmocka_unit_test(test_metrics_per_replica),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_peer_tls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
