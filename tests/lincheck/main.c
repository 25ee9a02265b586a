/*
 * lincheck: checks a recorded history file (history.h's text form) for
 * linearizability. Exit status: 0 linearizable, 1 not linearizable,
 * 2 undecided (budget ran out), 3 bad usage or unreadable history.
 */
#include "lincheck.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *out)
{
	fprintf(out,
		"usage: lincheck [--max-states N] [--max-seconds S] [--no-explain] [HISTORY|-]\n"
		"  Checks a history of put/get/del on registers for linearizability.\n"
		"  --max-states N   search steps per key before giving up (default 10000000)\n"
		"  --max-seconds S  wall time for the whole check (default 60)\n"
		"  --no-explain     do not shrink a violation to a minimal window\n"
		"  exit: 0 linearizable, 1 not, 2 undecided, 3 usage or input error\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "max-states", required_argument, NULL, 's' },
		{ "max-seconds", required_argument, NULL, 't' },
		{ "no-explain", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct lc_history h;
	struct lc_budget b;
	struct lc_result r;
	struct timespec t0, t1;
	const char *path = "-";
	char err[256];
	FILE *in;
	int opt, rv;

	lc_budget_default(&b);
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		char *end;

		switch (opt) {
		case 's':
			b.max_states = strtoull(optarg, &end, 10);
			if (*end || !*optarg) {
				usage(stderr);
				return 3;
			}
			break;
		case 't':
			b.max_seconds = strtod(optarg, &end);
			if (*end || !*optarg || b.max_seconds < 0) {
				usage(stderr);
				return 3;
			}
			break;
		case 'n':
			b.explain = false;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 3;
		}
	}
	if (optind < argc)
		path = argv[optind++];
	if (optind < argc) {
		usage(stderr);
		return 3;
	}
	in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (!in) {
		fprintf(stderr, "lincheck: %s: %s\n", path, strerror(errno));
		return 3;
	}
	lc_history_init(&h);
	rv = lc_history_read(in, &h, err, sizeof err);
	if (in != stdin)
		fclose(in);
	if (rv) {
		fprintf(stderr, "lincheck: %s: %s\n", path, err);
		lc_history_free(&h);
		return 3;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rv = lc_check(&h, &b, &r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (rv < 0) {
		fprintf(stderr, "lincheck: %s\n", strerror(-rv));
		lc_history_free(&h);
		return 3;
	}
	lc_result_print(stdout, &h, &r);
	printf("checked in %.3f s\n", (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	lc_result_free(&r);
	lc_history_free(&h);
	return rv;
}
