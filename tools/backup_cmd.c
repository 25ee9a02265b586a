/*
 * `ringkv backup create|restore DIR`: the backup command's options (for
 * restore, ringkvd's own flags) and checks; the work is in backup_create.c
 * and backup_restore.c. A restore reads and writes files only: it runs
 * without a server.
 */
#include <stdbool.h>
#include <string.h>

#include "tools/backup.h"
#include "tools/cli.h"

static struct backup_restore_opts restore_opts; /* restore's ringkvd flags */

/* backup restore's options: ringkvd's own flags, checked by its parser. */
static int backup_option(int argc, char **argv, int *i)
{
	struct backup_restore_opts *o = &restore_opts;
	const struct {
		const char *name;
		const char **into;
	} flags[] = {
		{ "data-dir", &o->data_dir },       { "cores", &o->cores },
		{ "node-id", &o->node_id },         { "initial-cluster", &o->initial_cluster },
		{ "replicas", &o->replicas },       { "cluster-token", &o->cluster_token },
	};

	for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) {
		int taken = cli_take_option(argc, argv, i, flags[k].name, 0, false, flags[k].into);

		if (taken != 0)
			return taken;
	}
	return 0;
}

static int check_backup(const struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	if (strcmp(argv[0], "create") == 0) {
		if (restore_opts.data_dir || restore_opts.cores || restore_opts.node_id ||
		    restore_opts.initial_cluster || restore_opts.replicas ||
		    restore_opts.cluster_token)
			return cli_usage_error("backup create takes DIR only (--data-dir and the "
					       "cluster flags are for restore)");
		return CLI_EXIT_OK;
	}
	if (strcmp(argv[0], "restore") == 0) {
		if (!restore_opts.data_dir)
			return cli_usage_error("backup restore DIR needs --data-dir NEWDIR");
		return CLI_EXIT_OK;
	}
	return cli_usage_error("backup takes create or restore, not '%s'", argv[0]);
}

static int cmd_backup(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	if (strcmp(argv[0], "restore") == 0)
		return backup_restore(argv[1], &restore_opts);
	return backup_create(cli->client, cli->address, cli->timeout_ms, argv[1]);
}


static bool backup_offline(int argc, char **argv)
{
	(void)argc;
	return strcmp(argv[0], "restore") == 0;
}

const struct cli_command cli_command_backup = {
	"backup", "create|restore DIR",
	"create DIR: an online copy of every shard (each\n"
	"at its own applied index, holding every write\n"
	"acknowledged before it began), checksummed;\n"
	"restore DIR --data-dir NEWDIR [--cores N]: check\n"
	"the whole backup, then build a one-node data dir\n"
	"that ringkvd --data-dir NEWDIR serves; with\n"
	"--node-id N --initial-cluster ... [--replicas R]\n"
	"[--cluster-token T]: node N's dir of a new cluster",
	2, 2, .offline = backup_offline, .option = backup_option, .check = check_backup,
	.run = cmd_backup,
};
