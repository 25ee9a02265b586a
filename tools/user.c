/* `ringkv user add|remove`; see tools/user.h. */
#include "tools/user.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/durable_file.h"
#include "server/users.h"
#include "tools/cli.h"

enum { EXIT_OK = 0, EXIT_MISSING = 1, EXIT_USAGE = 2, EXIT_ERROR = 3 };

int user_check(const struct user_args *a, int add)
{
	enum users_role role;

	if (!a->file || !a->file[0]) {
		fprintf(stderr, "ringkv: user %s needs --file FILE (see ringkv --help)\n",
			add ? "add" : "remove");
		return EXIT_USAGE;
	}
	if (!users_name_ok(a->name, strlen(a->name))) {
		fprintf(stderr, "ringkv: bad user name '%s': 1 to %d of A-Z a-z 0-9 _ . @ - "
			"(see ringkv --help)\n", a->name, USERS_NAME_MAX);
		return EXIT_USAGE;
	}
	if (!add)
		return EXIT_OK;
	if (!a->role || users_role_parse(a->role, &role) != 0) {
		fprintf(stderr, "ringkv: user add needs --role read|write|admin%s%s%s "
			"(see ringkv --help)\n", a->role ? ", not '" : "", a->role ? a->role : "",
			a->role ? "'" : "");
		return EXIT_USAGE;
	}
	if (a->prefix && (!a->prefix[0] || strlen(a->prefix) > USERS_PREFIX_MAX)) {
		fprintf(stderr, "ringkv: --prefix takes 1 to %d bytes (see ringkv --help)\n",
			USERS_PREFIX_MAX);
		return EXIT_USAGE;
	}
	if (a->iterations && (a->iterations < USERS_ITER_MIN || a->iterations > USERS_ITER_MAX)) {
		fprintf(stderr, "ringkv: --iterations takes %d to %u (see ringkv --help)\n",
			USERS_ITER_MIN, USERS_ITER_MAX);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* Reads one line of stdin (the password) into buf: its length, or -1. */
static int read_password(char *buf, size_t cap)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	size_t len;

	if (tty) {
		fputs("password: ", stderr);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	if (!fgets(buf, (int)cap, stdin))
		buf[0] = '\0';
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	len = strlen(buf);
	if (len && buf[len - 1] == '\n')
		buf[--len] = '\0';
	else if (len == cap - 1)
		return -1; /* longer than the buffer */
	if (len && buf[len - 1] == '\r')
		buf[--len] = '\0';
	return (int)len;
}

/* An exclusive lock on FILE.lock for the whole edit: the fd, or -1. */
static int lock_file(const char *file)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof path, "%s.lock", file) >= (int)sizeof path)
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) != 0) {
		fprintf(stderr, "ringkv: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The table in `file`; a missing file is an empty table when `may_be_new`. */
static int load(const char *file, bool may_be_new, struct users_table **t)
{
	char err[512];
	int rv = users_table_load(file, t, err, sizeof err);

	if (rv == -ENOENT && may_be_new) {
		*t = calloc(1, sizeof **t);
		return *t ? 0 : -ENOMEM;
	}
	if (rv)
		fprintf(stderr, "ringkv: %s\n", err);
	return rv;
}

/* Writes `t` over `file` atomically (see tools/user.h). 0 or -1 (reported). */
static int save(const char *file, const struct users_table *t)
{
	char tmp[PATH_MAX];
	struct stat st;
	bool had = stat(file, &st) == 0;
	FILE *f;
	int fd;

	if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", file, (int)getpid()) >= (int)sizeof tmp) {
		fprintf(stderr, "ringkv: %s: name too long\n", file);
		return -1;
	}
	/* O_EXCL | O_NOFOLLOW: never through a link someone placed at the
	 * name. The new file keeps the old one's owner, group and mode (the
	 * node runs as its own user: a file left root's 0600 by `sudo ringkv
	 * user add` would refuse its next reload). */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "ringkv: %s: %s\n", tmp, strerror(errno));
		return -1;
	}
	if (had && (fchown(fd, st.st_uid, st.st_gid) != 0 ||
		    fchmod(fd, st.st_mode & 07777) != 0)) {
		fprintf(stderr, "ringkv: %s: keeping %s's owner and mode: %s\n", tmp, file,
			strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		goto err;
	}
	users_table_write(f, t);
	if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0) {
		fclose(f);
		goto err;
	}
	if (fclose(f) != 0)
		goto err;
	if (rename(tmp, file) != 0)
		goto err;
	if (durable_parent_sync(file) != 0) {
		fprintf(stderr, "ringkv: %s: cannot sync its directory\n", file);
		return -1;
	}
	return 0;

err:
	fprintf(stderr, "ringkv: writing %s: %s\n", file, strerror(errno));
	unlink(tmp);
	return -1;
}

int user_add(const struct user_args *a)
{
	struct users_table *t = NULL;
	struct users_entry e;
	char pw[USERS_PASSWORD_MAX + 2];
	int len, lock, rc = EXIT_ERROR;

	if ((rc = user_check(a, 1)) != EXIT_OK)
		return rc;
	rc = EXIT_ERROR;
	memset(&e, 0, sizeof e);
	strcpy(e.name, a->name);
	users_role_parse(a->role, &e.role);
	if (a->prefix) {
		e.has_prefix = true;
		e.prefix_len = (uint32_t)strlen(a->prefix);
		memcpy(e.prefix, a->prefix, e.prefix_len);
	}
	len = read_password(pw, sizeof pw);
	if (len <= 0 || len > USERS_PASSWORD_MAX) {
		fprintf(stderr, "ringkv: the password (one line on standard input) must be 1 to "
			"%d bytes\n", USERS_PASSWORD_MAX);
		OPENSSL_cleanse(pw, sizeof pw);
		return EXIT_USAGE;
	}
	rc = users_set_password(&e, (const uint8_t *)pw, (size_t)len,
				a->iterations ? a->iterations : USERS_ITER_DEFAULT);
	OPENSSL_cleanse(pw, sizeof pw);
	if (rc != 0) {
		fprintf(stderr, "ringkv: cannot hash the password (no randomness?)\n");
		return EXIT_ERROR;
	}
	lock = lock_file(a->file);
	if (lock < 0)
		return EXIT_ERROR;
	rc = EXIT_ERROR;
	if (load(a->file, true, &t) == 0 && users_table_put(t, &e) == 0 && save(a->file, t) == 0)
		rc = EXIT_OK;
	OPENSSL_cleanse(&e, sizeof e);
	users_table_free(t);
	close(lock);
	if (rc == EXIT_OK)
		printf("user %s added to %s (send ringkvd SIGHUP to load it)\n", a->name, a->file);
	return rc;
}

int user_remove(const struct user_args *a)
{
	struct users_table *t = NULL;
	int lock, rc;

	if ((rc = user_check(a, 0)) != EXIT_OK)
		return rc;
	lock = lock_file(a->file);
	if (lock < 0)
		return EXIT_ERROR;
	rc = EXIT_ERROR;
	if (load(a->file, false, &t) == 0) {
		if (!users_table_remove(t, a->name)) {
			fprintf(stderr, "ringkv: no user %s in %s\n", a->name, a->file);
			rc = EXIT_MISSING;
		} else if (save(a->file, t) == 0) {
			printf("user %s removed from %s (send ringkvd SIGHUP to drop it)\n",
			       a->name, a->file);
			rc = EXIT_OK;
		}
	}
	users_table_free(t);
	close(lock);
	return rc;
}

/* ---- the command line: ringkv user add|remove ---------------------------- */

/* user's options. */
static struct {
	const char *file;        /* --file */
	const char *role;        /* add --role */
	const char *iterations;  /* add --iterations */
	const char *prefix;      /* add --prefix */
} user_opts;

static int user_option(int argc, char **argv, int *i)
{
	int taken;

	if ((taken = cli_value(argc, argv, i, "prefix", &user_opts.prefix)) != 0 ||
	    (taken = cli_value(argc, argv, i, "file", &user_opts.file)) != 0 ||
	    (taken = cli_value(argc, argv, i, "role", &user_opts.role)) != 0)
		return taken;
	return cli_value(argc, argv, i, "iterations", &user_opts.iterations);
}

static int user_args_of(char **argv, struct user_args *a)
{
	uint64_t n = 0;

	memset(a, 0, sizeof *a);
	a->file = user_opts.file;
	a->name = argv[1];
	a->role = user_opts.role;
	a->prefix = user_opts.prefix;
	if (user_opts.iterations &&
	    (cli_parse_count(user_opts.iterations, &n) != 0 || n == 0 || n > UINT32_MAX))
		return cli_usage_error("--iterations takes a count, not '%s'",
				       user_opts.iterations);
	a->iterations = (uint32_t)n;
	return CLI_EXIT_OK;
}

static int check_user(const struct cli *cli, int argc, char **argv)
{
	struct user_args a;
	bool add = strcmp(argv[0], "add") == 0;
	int rc;

	(void)cli;
	if (!add && strcmp(argv[0], "remove") != 0)
		return cli_usage_error("user takes add or remove, not '%s'", argv[0]);
	if (argc != 2)
		return cli_usage_error("user %s takes NAME", argv[0]);
	if (!add && (user_opts.role || user_opts.prefix || user_opts.iterations))
		return cli_usage_error("user remove takes --file FILE NAME only");
	rc = user_args_of(argv, &a);
	return rc != CLI_EXIT_OK ? rc : user_check(&a, add);
}

static int cmd_user(struct cli *cli, int argc, char **argv)
{
	struct user_args a;

	(void)argc;
	user_args_of(argv, &a);
	return strcmp(argv[0], "add") == 0 ? user_add(&a) : user_remove(&a);
}

const struct cli_command cli_command_user = {
	"user", "add|remove NAME",
	"add NAME --file FILE --role read|write|admin:\n"
	"add (or replace) a user of a ringkvd --users\n"
	"file, the password read from standard input\n"
	"(one line), hashed with PBKDF2-SHA256;\n"
	"--iterations N: its cost (default 100000);\n"
	"--prefix P: only keys starting with P;\n"
	"remove NAME --file FILE (exit 1: no such user);\n"
	"the file is rewritten atomically; send ringkvd\n"
	"SIGHUP to load it",
	1, 2, .offline = cli_offline, .option = user_option, .check = check_user,
	.run = cmd_user,
};
