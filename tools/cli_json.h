/*
 * JSON output shared by the ringkv CLI's commands.
 */
#ifndef RINGKV_TOOLS_CLI_JSON_H
#define RINGKV_TOOLS_CLI_JSON_H

#include <stdio.h>

/* Writes s as a JSON string: quotes and backslashes escaped, every byte
 * outside printable ASCII as \u00XX (addresses, roles, errors: text that
 * is ASCII in practice; a server's bytes cannot break the output). */
void cli_json_string(FILE *out, const char *s);

#endif
