/*
 * `ringkvd repair`: the offline way out of a damaged single-node data dir
 * (issue 14, docs/DAMAGED-DATADIR.md). See server/repair.c for what it
 * lists, drops and never touches.
 */
#ifndef RINGKV_SERVER_REPAIR_H
#define RINGKV_SERVER_REPAIR_H

/*
 * Runs `ringkvd repair` with its own arguments (argv[0] is "repair").
 * Returns the exit status: 0 nothing to drop, or repaired; 3 damage listed
 * and nothing changed (no --yes, --dry-run); 1 refused (the dir is in use,
 * damage only a backup repairs, a replicated node) or failed; 2 usage.
 */
int repair_main(int argc, char **argv);

#endif
