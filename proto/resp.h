/*
 * RESP2 (Redis serialization protocol) for the Redis front door: an
 * incremental request parser and a reply writer for a server connection.
 *
 * The parser is zero-copy: every argument of a parsed command is a slice
 * (pointer, length) into the caller's receive buffer. Every length announced
 * by the peer is checked against struct resp_limits before it is used, and the
 * only memory the parser owns is one argv array that grows as arguments
 * actually arrive (never from an announced count: a "*1048576" header alone
 * costs nothing) plus, for inline commands with escapes, one scratch buffer of
 * max_inline bytes. Parsing never depends on where the stream was split: the
 * same bytes give the same commands and the same errors whether they arrive at
 * once or one by one.
 *
 * Both request forms of Redis are accepted: multibulk ("*2\r\n$3\r\nGET\r\n
 * $1\r\nk\r\n") and inline ("GET k\r\n", split on whitespace, with Redis'
 * "double" and 'single' quoting). After a protocol error the stream cannot be
 * parsed any further: the server writes resp_parser_error() as an error reply
 * and closes the connection.
 */
#ifndef RINGKV_PROTO_RESP_H
#define RINGKV_PROTO_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Defaults of struct resp_limits (see resp_limits_default). */
#define RESP_DEFAULT_MAX_ARGS (1024u * 1024u)
#define RESP_DEFAULT_MAX_BULK (1024u * 1024u)
#define RESP_DEFAULT_MAX_INLINE (64u * 1024u)
#define RESP_DEFAULT_MAX_REQUEST (32u * 1024u * 1024u)

/* Longest error text the parser produces, NUL included. */
#define RESP_ERROR_MAX 96

struct resp_limits {
	/* Arguments of one multibulk command ("*<n>"), as Redis' 1024*1024. */
	uint32_t max_args;
	/*
	 * Bytes of one bulk argument ("$<n>"): 1 MiB, so a key or a value may
	 * be up to 1 MiB. This is the value cap of the front door; smaller key
	 * limits are the server's to enforce with a normal error reply.
	 */
	uint32_t max_bulk;
	/* Bytes of one inline command line, CR LF included: 64 KiB. */
	uint32_t max_inline;
	/*
	 * Bytes of one whole command as it sits in the receive buffer: 32 MiB.
	 * Bounds what a caller that grows its buffer to resp_parser_wanted()
	 * may have to hold for one command (max_args * max_bulk is 1 TiB).
	 */
	uint32_t max_request;
};

/* Fills `l` with the RESP_DEFAULT_* values. */
void resp_limits_default(struct resp_limits *l);

/* One argument: a slice of the receive buffer (or of the parser's scratch). */
struct resp_arg {
	const uint8_t *data; /* not NUL-terminated; may hold any byte */
	uint32_t len;
	uint32_t offset; /* parser-private: offset from the command's start */
};

struct resp_command {
	const struct resp_arg *argv; /* argc entries, owned by the parser */
	size_t argc;                 /* >= 1: empty commands are skipped */
	bool is_inline;              /* came as an inline line, not multibulk */
};

enum resp_parser_state {
	RESP_STATE_START,     /* at the first byte of a command */
	RESP_STATE_BULK_HEAD, /* inside a multibulk, before "$<len>\r\n" */
	RESP_STATE_BULK_DATA, /* inside a multibulk, in a bulk's payload */
	RESP_STATE_INLINE,    /* in an inline line, looking for '\n' */
	RESP_STATE_ERROR,     /* protocol error: sticky */
};

/*
 * Parser state of one connection. Fields are private except through the
 * functions below; the struct is public so it can live inside a connection.
 */
struct resp_parser {
	struct resp_limits limits;
	enum resp_parser_state state;
	struct resp_arg *argv;   /* grows geometrically up to max_args */
	size_t argv_cap;         /* entries allocated in argv */
	uint8_t *scratch;        /* max_inline bytes, for unescaped inline args */
	size_t pos;              /* resume offset from the command's start */
	uint32_t args_expected;  /* multibulk count of the command in progress */
	uint32_t args_done;      /* arguments of it parsed so far */
	uint32_t bulk_len;       /* payload length of the bulk in progress */
	size_t wanted;           /* see resp_parser_wanted */
	char error[RESP_ERROR_MAX]; /* see resp_parser_error */
};

/*
 * Initializes `p` with a copy of `limits` (NULL: the defaults). Allocates
 * nothing; cannot fail. Limits of 0 are replaced by the defaults.
 */
void resp_parser_init(struct resp_parser *p, const struct resp_limits *limits);

/*
 * Replaces the limits of a parser that is between commands (the last
 * resp_parse returned a command, or none was parsed yet): a connection
 * parses with small limits until it authenticates. Frees the inline
 * scratch buffer (sized by the old limit); keeps argv.
 */
void resp_parser_set_limits(struct resp_parser *p, const struct resp_limits *limits);
/* Only the bulk limit, in any state (a command part-way parsed keeps the
 * lengths it already accepted; the next bulk header is checked against the
 * new limit). 0 leaves it. */
void resp_parser_set_max_bulk(struct resp_parser *p, uint32_t max_bulk);

/* Frees what the parser owns. `p` may be initialized again afterwards. */
void resp_parser_destroy(struct resp_parser *p);

/*
 * Forgets a partly parsed command and a protocol error; keeps the argv
 * storage. For a connection object that is reused for a new peer.
 */
void resp_parser_reset(struct resp_parser *p);

/*
 * Parses the next command from the connection's unconsumed bytes
 * `buf[0..len)`.
 *
 * Whatever it returns, the caller drops the first *consumed bytes from its
 * buffer, and the next call passes the bytes that followed them (now at
 * `buf`, possibly at another address after the buffer moved) with any newly
 * received bytes after them. The parser remembers how far it got into a
 * partial command, as offsets, so a command arriving in many pieces is still
 * scanned once.
 *
 * Returns:
 *  0            one command in *out. out->argv[i].data points into `buf`
 *               (or into the parser's scratch for an escaped inline
 *               argument); it is valid until the caller changes or drops
 *               those bytes, or calls resp_parse/reset/destroy again. Call
 *               again for the next pipelined command.
 *  RKV_EAGAIN   the bytes end inside a command. *consumed is nonzero only
 *               when empty commands ("\r\n", "*0\r\n") were skipped.
 *               resp_parser_wanted() says how many bytes the next call
 *               needs at least.
 *  RKV_EPROTO   the stream is malformed. resp_parser_error() holds the
 *               Redis-format text ("ERR Protocol error: invalid bulk
 *               length"); the caller sends it as an error reply and closes
 *               the connection. Later calls return RKV_EPROTO again.
 *  -ENOMEM      the argv array could not grow; the parser state is kept, so
 *               a later call may succeed.
 */
int resp_parse(struct resp_parser *p, const uint8_t *buf, size_t len,
	       struct resp_command *out, size_t *consumed);

/*
 * After RKV_EAGAIN: the length the buffer (counted from the first byte that
 * is passed to the next resp_parse) must reach before the next call can make
 * progress. Inside a bulk payload this is exact: the end of the payload and
 * its CR LF, so a caller can reserve a large value's room at once. Elsewhere
 * it is one byte more than was passed. Never more than max_request + 32
 * (max_inline for an inline line), so a caller may grow its buffer to it.
 */
size_t resp_parser_wanted(const struct resp_parser *p);

/*
 * After RKV_EPROTO: the error text without the leading '-' and trailing CR LF,
 * starting with "ERR Protocol error: ". Static storage inside `p`.
 */
const char *resp_parser_error(const struct resp_parser *p);

/*
 * Parses a decimal 64-bit integer the way Redis' string2ll does: an optional
 * '-' then digits, no leading zeros (except "0" itself), no '+', no spaces,
 * no "-0", nothing empty, nothing out of range. Returns 0 with *value set, or
 * RKV_EINVAL. Used for lengths and for integer arguments (INCRBY, SELECT).
 */
int resp_parse_int64(const uint8_t *s, size_t len, int64_t *value);

/* Like resp_parse_int64, then requires a value in [0, UINT64_MAX]. */
int resp_parse_uint64(const uint8_t *s, size_t len, uint64_t *value);

/*
 * Reply writer. Each resp_write_* appends one reply (or an array header) to
 * `out` and returns 0, or -ENOBUFS when it does not fit, in which case
 * nothing is written. resp_size_* give the exact byte count of the same
 * reply, so a caller can reserve room for a whole reply first.
 *
 * Simple strings and errors are single lines: CR and LF in their text are
 * written as spaces (as Redis does), so a reply can never break framing.
 */
struct resp_out {
	uint8_t *data; /* caller's buffer */
	size_t len;    /* bytes written so far */
	size_t cap;    /* bytes available in data */
};

size_t resp_size_simple(size_t text_len);  /* "+text\r\n" */
size_t resp_size_error(size_t text_len);   /* "-text\r\n" */
size_t resp_size_integer(int64_t value);   /* ":value\r\n" */
size_t resp_size_bulk(size_t data_len);    /* "$len\r\ndata\r\n" */
size_t resp_size_null_bulk(void);          /* "$-1\r\n" */
size_t resp_size_array(size_t count);      /* "*count\r\n" */
size_t resp_size_null_array(void);         /* "*-1\r\n" */

int resp_write_simple(struct resp_out *out, const char *text, size_t len);
/* `text` is the whole message, with its code: "ERR no such key". */
int resp_write_error(struct resp_out *out, const char *text, size_t len);
int resp_write_integer(struct resp_out *out, int64_t value);
int resp_write_bulk(struct resp_out *out, const void *data, size_t len);
int resp_write_null_bulk(struct resp_out *out);
/* The header of an array of `count` replies; the caller writes them next. */
int resp_write_array(struct resp_out *out, size_t count);
int resp_write_null_array(struct resp_out *out);

/*
 * RESP3 (HELLO 3). The aggregate headers share one writer: `type` is one of
 * RESP3_MAP '%' (count = pairs), RESP3_SET '~', RESP3_PUSH '>',
 * RESP3_ATTRIBUTE '|' or '*'. A double, a big number and a boolean are one
 * line ("," "(" "#"); a verbatim string is "=<len+4>\r\n<fmt>:<data>\r\n"
 * with a three-byte format ("txt"); the null is "_\r\n". A connection that
 * speaks RESP2 never gets these: the caller picks.
 */
#define RESP3_MAP '%'
#define RESP3_SET '~'
#define RESP3_PUSH '>'
#define RESP3_ATTRIBUTE '|'

size_t resp_size_aggregate(size_t count);  /* "<type>count\r\n" */
size_t resp_size_null3(void);              /* "_\r\n" */
size_t resp_size_verbatim(size_t data_len);
int resp_write_aggregate(struct resp_out *out, uint8_t type, size_t count);
int resp_write_null3(struct resp_out *out);
int resp_write_bool(struct resp_out *out, bool value);
/* `text` is the number as text: "3.141", "inf", "1234567999...". */
int resp_write_double(struct resp_out *out, const char *text, size_t len);
int resp_write_bignum(struct resp_out *out, const char *text, size_t len);
/* `format`: three bytes ("txt", "mkd"). */
int resp_write_verbatim(struct resp_out *out, const char *format, const void *data, size_t len);

/* Convenience for NUL-terminated texts. */
int resp_write_simple_str(struct resp_out *out, const char *text);
int resp_write_error_str(struct resp_out *out, const char *text);

#endif
