/*
 * `ringkv node health|list|drain`: the node command's options and checks;
 * each subcommand's work is in its own file (node_health.c, node_list.c,
 * node_drain.c).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/node_drain.h"
#include "tools/node_health.h"
#include "tools/node_list.h"
#include "tools/shard_move.h"

/* The node command's options. */
static struct {
	const char *admin;    /* health --admin: the node's admin port */
	bool wait;            /* drain --wait */
	bool dry_run;         /* drain --dry-run */
	const char *rate;     /* drain --rate BYTES/s */
} node_opts = { .admin = NODE_HEALTH_DEFAULT_ADMIN };

static int node_option(int argc, char **argv, int *i)
{
	int taken;

	if ((taken = cli_flag(argv, *i, "dry-run", &node_opts.dry_run)) != 0 ||
	    (taken = cli_flag(argv, *i, "wait", &node_opts.wait)) != 0 ||
	    (taken = cli_value(argc, argv, i, "rate", &node_opts.rate)) != 0)
		return taken;
	return cli_value(argc, argv, i, "admin", &node_opts.admin);
}

static int check_node(const struct cli *cli, int argc, char **argv)
{
	uint64_t id;

	(void)cli;
	if (strcmp(argv[0], "drain") == 0) {
		if (argc != 2 || cli_parse_count(argv[1], &id) != 0 || id == 0)
			return cli_usage_error("node drain takes ID (a node id)");
		return shard_move_check_rate(node_opts.rate);
	}
	if (strcmp(argv[0], "health") != 0 && strcmp(argv[0], "list") != 0)
		return cli_usage_error("node takes health, list or drain, not '%s'", argv[0]);
	if (argc != 1)
		return cli_usage_error("node %s takes no argument", argv[0]);
	if (node_opts.wait || node_opts.dry_run || node_opts.rate)
		return cli_usage_error("--wait, --dry-run and --rate are node drain's");
	return CLI_EXIT_OK;
}

/* ringkv node drain ID (tools/node_drain.c). */
static int cmd_node_drain(struct cli *cli, char **argv)
{
	struct node_drain_args a = {
		.address = cli->address, .timeout_ms = cli->timeout_ms,
		.json = cli->format == CLI_JSON, .wait = node_opts.wait,
		.dry_run = node_opts.dry_run,
	};

	cli_parse_count(argv[1], &a.node);
	if (node_opts.rate)
		shard_move_parse_rate(node_opts.rate, &a.rate);
	return node_drain_run(&a);
}

/* 0 ready; 1 alive but not ready (like a key not found: the node answered
 * no); 2 a malformed --admin; 3 unreachable; 4 timeout. */
static int cmd_node(struct cli *cli, int argc, char **argv)
{
	enum node_health_result r;

	(void)argc;
	if (strcmp(argv[0], "drain") == 0)
		return cmd_node_drain(cli, argv);
	if (strcmp(argv[0], "list") == 0)
		return node_list_run(&(struct node_list_args){
			.address = cli->address,
			.timeout_ms = cli->timeout_ms ? cli->timeout_ms : 2000,
			.json = cli->format == CLI_JSON });
	r = node_health_run(node_opts.admin, cli->timeout_ms, cli->format == CLI_JSON);
	if (cli_finish_stdout("node health") != CLI_EXIT_OK)
		return CLI_EXIT_ERROR;
	switch (r) {
	case NODE_HEALTH_READY: return CLI_EXIT_OK;
	case NODE_HEALTH_NOT_READY: return CLI_EXIT_MISSING;
	case NODE_HEALTH_BAD_ADDRESS: return CLI_EXIT_USAGE;
	case NODE_HEALTH_TIMEOUT: return CLI_EXIT_TIMEOUT;
	case NODE_HEALTH_UNREACHABLE: break;
	}
	return CLI_EXIT_ERROR;
}

const struct cli_command cli_command_node = {
	"node", "health|list|drain ID",
	"list: every node, its addresses, up or\n"
	"unreachable, its replicas and leaders in all and\n"
	"per core (an unreachable node's: from the map);\n"
	"health: the node's admin port /health and /ready\n"
	"(--admin HOST:PORT, default " NODE_HEALTH_DEFAULT_ADMIN ");\n"
	"exit 0 ready, 1 alive but not ready;\n"
	"drain ID [--wait] [--dry-run] [--rate BYTES/s]:\n"
	"hand node ID's leaderships to other voters, then\n"
	"move each of its replicas to a node without the\n"
	"shard (fewest replicas, then fewest on a core),\n"
	"one at a time (move n of m; --wait: the phases);\n"
	"--dry-run prints the plan and changes nothing;\n"
	"exit 1 when no node can take a replica",
	1, 2, .offline = cli_offline, .option = node_option, .check = check_node,
	.run = cmd_node,
};
