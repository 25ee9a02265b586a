/*
 * libringkv's credentials: one process-wide user and password (ringkvd
 * --users), set by rkv_auth_set() / rkv_auth_set_file() or, when neither
 * was called, read at the first connect from the file named by
 * RINGKV_AUTH_FILE, else from RINGKV_USER and RINGKV_PASSWORD. Every
 * connection made while they are set authenticates right after connecting
 * (and TLS), before any request.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "proto/frame.h"
#include "tools/libringkv_private.h"

#define AUTH_FIELD_MAX 1024

static pthread_mutex_t auth_lock = PTHREAD_MUTEX_INITIALIZER;
static char auth_user[AUTH_FIELD_MAX];
static char auth_password[AUTH_FIELD_MAX];
static bool auth_on;
static bool auth_decided;

static int set_locked(const char *user, const char *password, char *err, size_t errlen)
{
	if (!user || !*user) {
		auth_on = false;
		return 0;
	}
	if (strlen(user) >= AUTH_FIELD_MAX || !password || strlen(password) >= AUTH_FIELD_MAX) {
		if (err)
			snprintf(err, errlen, "credentials: %s", password ? "user or password too long"
									  : "no password");
		return -EINVAL;
	}
	strcpy(auth_user, user);
	strcpy(auth_password, password);
	auth_on = true;
	return 0;
}

/* Reads "USER\nPASSWORD\n" from `path`. */
static int load_file_locked(const char *path, char *err, size_t errlen)
{
	char user[AUTH_FIELD_MAX + 2], password[AUTH_FIELD_MAX + 2];
	FILE *f = fopen(path, "re");
	int rv = -EINVAL;

	if (!f) {
		rv = -errno;
		if (err)
			snprintf(err, errlen, "credentials file %s: %s", path, strerror(errno));
		return rv;
	}
	if (fgets(user, sizeof user, f) && fgets(password, sizeof password, f)) {
		user[strcspn(user, "\r\n")] = '\0';
		password[strcspn(password, "\r\n")] = '\0';
		rv = set_locked(user, password, err, errlen);
	} else if (err) {
		snprintf(err, errlen, "credentials file %s: expected two lines, the user and "
			 "the password", path);
	}
	fclose(f);
	OPENSSL_cleanse(password, sizeof password);
	return rv;
}

int rkv_auth_set(const char *user, const char *password, char *err, size_t errlen)
{
	int rv;

	pthread_mutex_lock(&auth_lock);
	rv = set_locked(user, password, err, errlen);
	auth_decided = rv == 0;
	pthread_mutex_unlock(&auth_lock);
	return rv;
}

int rkv_auth_set_file(const char *path, char *err, size_t errlen)
{
	int rv;

	pthread_mutex_lock(&auth_lock);
	rv = load_file_locked(path, err, errlen);
	auth_decided = rv == 0;
	pthread_mutex_unlock(&auth_lock);
	return rv;
}

int libringkv_auth_credentials(char *user, char *password, size_t len, char *err,
				size_t errlen)
{
	int rv = 0;

	pthread_mutex_lock(&auth_lock);
	if (!auth_decided) {
		const char *file = getenv("RINGKV_AUTH_FILE");
		const char *env_user = getenv("RINGKV_USER");

		if (file && *file)
			rv = load_file_locked(file, err, errlen);
		else if (env_user && *env_user)
			rv = set_locked(env_user, getenv("RINGKV_PASSWORD"), err, errlen);
		auth_decided = rv == 0;
	}
	if (rv == 0 && auth_on) {
		if (strlen(auth_user) >= len || strlen(auth_password) >= len) {
			rv = -EINVAL;
		} else {
			strcpy(user, auth_user);
			strcpy(password, auth_password);
			rv = 1;
		}
	}
	pthread_mutex_unlock(&auth_lock);
	return rv;
}

int libringkv_auth(struct rkv_client *c, const char *address, int timeout_ms, char *err,
		   size_t errlen)
{
	char user[AUTH_FIELD_MAX], password[AUTH_FIELD_MAX];
	struct rkv_result res;
	const uint8_t *payload;
	size_t payload_len;
	int rv, saved;

	rv = libringkv_auth_credentials(user, password, sizeof user, err, errlen);
	if (rv <= 0)
		return rv;
	saved = rkv_get_timeout(c);
	rkv_set_timeout(c, timeout_ms);
	rv = libringkv_call_raw(c, FRAME_OP_AUTH, false, user, strlen(user), password,
				strlen(password), &res, &payload, &payload_len);
	rkv_set_timeout(c, saved);
	OPENSSL_cleanse(password, sizeof password);
	if (rv != 0 && err)
		snprintf(err, errlen, "cannot authenticate to %s as %s: %s%s%s", address, user,
			 rkv_status_name(rv), rv > 0 ? ": " : "",
			 rv > 0 ? rkv_last_error(c) : "");
	return rv > 0 ? -EACCES : rv;
}
