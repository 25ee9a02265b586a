#!/usr/bin/env python3
"""Redis 7.0 parity of the string commands, checked against a real Redis.

Sends the same commands, in the same order, to ringkvd and to a
redis-server and requires byte-identical RESP replies, error texts
included. The cases are written from Redis's command documentation
(redis.io/commands): each option, each error, ranges with negative and
out-of-range indexes, empty and binary values. A few replies where ringkv
differs on purpose (the value size limit: ringkv's --max-value, Redis's
512 MB) are checked against ringkv's own documented answer instead.

usage: resp_strings.py RINGKV_HOST RINGKV_PORT REDIS_HOST REDIS_PORT
       (REDIS_PORT 0: only the ringkv-specific checks; ringkvd must run
       with the default --max-value, read back by CONFIG GET)
"""
import random
import socket
import sys

from ringkv_test import RespReader, resp_command


class Conn:
    """A raw RESP2 client: replies come back as their exact bytes."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.reader = RespReader(self.sock)

    def send(self, *args):
        self.sock.sendall(resp_command(*args))

    def call(self, *args):
        self.send(*args)
        return self.reader.raw_reply()


failures = []


def same(rk, rd, *args):
    """The command's reply from ringkv equals Redis's, byte for byte."""
    a = rk.call(*args)
    if rd is None:
        return a
    b = rd.call(*args)
    if a != b:
        failures.append("%r:\n  ringkv %r\n  redis  %r" % (args, a[:300], b[:300]))
    return a


def expect(rk, want, *args):
    a = rk.call(*args)
    if a != want:
        failures.append("%r: ringkv %r, want %r" % (args, a[:300], want))


def cases(rk, rd):
    s = lambda *a: same(rk, rd, *a)  # noqa: E731
    s("DEL", "s", "n", "f", "b", "e", "k1", "k2", "missing")

    # SET with NX / XX / GET in every combination Redis 7.0 accepts.
    for opts in ([], ["NX"], ["XX"], ["GET"], ["NX", "GET"], ["GET", "NX"],
                 ["XX", "GET"], ["GET", "XX"], ["NX", "XX"], ["XX", "NX"],
                 ["GET", "GET"], ["NX", "NX"], ["nx", "get"], ["BOGUS"]):
        s("DEL", "s")
        s("SET", "s", "one", *opts)
        s("GET", "s")
        s("SET", "s", "two", *opts)
        s("GET", "s")

    # GETDEL.
    s("SET", "s", "value")
    s("GETDEL", "s")
    s("GETDEL", "s")
    s("EXISTS", "s")
    s("GETDEL")
    s("GETDEL", "a", "b")

    # GETRANGE / SUBSTR: negative, reversed, huge and out-of-range indexes.
    s("SET", "s", "Hello, World")
    for start, end in ((0, 3), (-3, -1), (0, -1), (10, 100), (5, 3), (-1, -5),
                       (-100, -50), (-100, 2), (0, 0), (11, 11), (12, 20),
                       (0, 9223372036854775807), (-9223372036854775808, 0),
                       (9223372036854775807, 9223372036854775807)):
        s("GETRANGE", "s", start, end)
        s("SUBSTR", "s", start, end)
    s("GETRANGE", "missing", 0, -1)
    s("GETRANGE", "s", "a", 1)
    s("GETRANGE", "s", 1, "1.5")
    s("GETRANGE", "s", 1)
    s("SET", "e", "")
    s("GETRANGE", "e", 0, -1)
    s("GETRANGE", "e", 0, 0)

    # SETRANGE: padding, overwrite, empty value, errors.
    s("SETRANGE", "n", 5, "abc")
    s("GET", "n")
    s("SETRANGE", "n", 0, "XY")
    s("GET", "n")
    s("SETRANGE", "n", 6, "0123456789")
    s("GET", "n")
    s("SETRANGE", "n", 3, "")
    s("SETRANGE", "missing", 0, "")
    s("SETRANGE", "missing", 100, "")
    s("EXISTS", "missing")
    s("SETRANGE", "n", -1, "x")
    s("SETRANGE", "n", "x", "x")
    s("SETRANGE", "n", 1)
    s("SET", "i", "1234")
    s("SETRANGE", "i", 1, "\x00")
    s("GET", "i")
    s("SETRANGE", "e", 0, "")
    s("SETRANGE", "e", 2, "z")
    s("GET", "e")

    # SETBIT / GETBIT.
    s("SETBIT", "b", 7, 1)
    s("GET", "b")
    s("SETBIT", "b", 7, 0)
    s("SETBIT", "b", 7, 1)
    s("SETBIT", "b", 0, 1)
    s("SETBIT", "b", 100, 1)
    s("GET", "b")
    s("STRLEN", "b")
    for off in (0, 1, 7, 8, 100, 101, 1000):
        s("GETBIT", "b", off)
    s("GETBIT", "missing", 3)
    s("SETBIT", "b", -1, 1)
    s("SETBIT", "b", "x", 1)
    s("SETBIT", "b", 1, 2)
    s("SETBIT", "b", 1, -1)
    s("SETBIT", "b", 1, "a")
    s("GETBIT", "b", -1)
    s("GETBIT", "b", "x")
    s("SETBIT", "b", 1)
    s("SET", "s", "1")
    s("SETBIT", "s", 6, 1)
    s("GET", "s")

    # BITCOUNT: whole, byte and bit ranges, errors only on existing keys.
    s("SET", "s", "foobar")
    s("BITCOUNT", "s")
    for rng in ((0, 0), (1, 1), (0, -1), (-2, -1), (-1, -2), (2, 100), (-100, -1),
                (100, 200), (5, 30, "BIT"), (0, -1, "BIT"), (1, 1, "bit"), (-3, -1, "BIT"),
                (7, 7, "BIT"), (3, 2, "BIT"), (0, 0, "BYTE"), (0, 47, "BIT")):
        s("BITCOUNT", "s", *rng)
    s("BITCOUNT", "s", 0)
    s("BITCOUNT", "s", 0, 1, "WORD")
    s("BITCOUNT", "s", "a", 1)
    s("BITCOUNT", "s", 0, 1, "BIT", "x")
    s("BITCOUNT", "missing")
    s("BITCOUNT", "missing", 0, 1, "WORD")
    s("BITCOUNT", "missing", 0)
    s("BITCOUNT", "e")

    # BITPOS.
    s("SET", "s", "\xff\xf0\x00")
    s("SET", "f", "\xff\xff\xff")
    s("SET", "z", "\x00\x00\x00")
    for key in ("s", "f", "z", "e", "missing"):
        for bit in (0, 1):
            s("BITPOS", key, bit)
            for rng in ((0,), (1,), (2,), (-1,), (5,), (0, 0), (1, 2), (0, -1), (2, 1),
                        (-2, -1), (3, 10), (0, 7, "BIT"), (4, 12, "BIT"), (7, 15, "BIT"),
                        (9, -1, "BIT"), (0, 0, "BYTE"), (12, 23, "BIT"), (0, 23, "bit")):
                s("BITPOS", key, bit, *rng)
    s("BITPOS", "s", 2)
    s("BITPOS", "s", "x")
    s("BITPOS", "missing", 2)
    s("BITPOS", "s", 1, "x")
    s("BITPOS", "missing", 1, "x")
    s("BITPOS", "s", 1, 0, 1, "WORD")
    s("BITPOS", "s", 1, 0, 1, "BIT", "x")

    # LCS, its options and their errors.
    s("SET", "k1", "ohmytext")
    s("SET", "k2", "mynewtext")
    for opts in ([], ["LEN"], ["IDX"], ["IDX", "WITHMATCHLEN"], ["IDX", "MINMATCHLEN", 4],
                 ["IDX", "MINMATCHLEN", 4, "WITHMATCHLEN"], ["IDX", "MINMATCHLEN", -3],
                 ["LEN", "IDX"], ["IDX", "LEN"], ["MINMATCHLEN"], ["MINMATCHLEN", "x"],
                 ["BOGUS"], ["len"], ["WITHMATCHLEN"]):
        s("LCS", "k1", "k2", *opts)
    s("LCS", "k1", "missing")
    s("LCS", "missing", "missing", "IDX")
    s("LCS", "k1", "k1", "IDX", "WITHMATCHLEN")
    rng = random.Random(21)
    for _ in range(20):
        a = "".join(rng.choice("ACGT") for _ in range(rng.randrange(0, 60)))
        b = "".join(rng.choice("ACGT") for _ in range(rng.randrange(0, 60)))
        s("SET", "k1", a)
        s("SET", "k2", b)
        s("LCS", "k1", "k2")
        s("LCS", "k1", "k2", "IDX", "WITHMATCHLEN")
        s("LCS", "k1", "k2", "IDX", "MINMATCHLEN", 2)

    # INCRBYFLOAT: Redis's formatting, and its errors.
    s("DEL", "f")
    for incr in ("10.5", "0.1", "-5", "1.0e3", "3.0e-2", "-1000", "5.0e+3", "0",
                 "-0.0", "1.7976931348623157e308", "-1.7976931348623157e308", "0x10",
                 "123456789012345678"):
        s("INCRBYFLOAT", "f", incr)
        s("GET", "f")
    s("SET", "f", "10")
    s("INCRBYFLOAT", "f", "0.1")
    s("SET", "f", "5.0e3")
    s("INCRBYFLOAT", "f", "2.0e2")
    s("SET", "f", "-0")
    s("INCRBYFLOAT", "f", "0")
    for bad in ("abc", "", " 1", "1 ", "nan", "1e", "1..5", "inf", "-inf", "1e5000",
                "1\x00"):
        s("INCRBYFLOAT", "f", bad)
    s("SET", "f", "notanumber")
    s("INCRBYFLOAT", "f", "1")
    s("SET", "f", "1.5e4930")
    s("INCRBYFLOAT", "f", "1.5e4930")
    s("INCRBYFLOAT", "f")

    # UNLINK and TOUCH: DEL and EXISTS by other names (counts, repeats,
    # missing keys), and keys with hash tags are keys like any other.
    s("MSET", "{t}a", "1", "{t}b", "2", "x{t}", "3", "{}", "4")
    s("TOUCH", "{t}a", "{t}b", "missing", "{t}a", "{}")
    s("UNLINK", "{t}a", "missing", "{t}a")
    s("EXISTS", "{t}a", "{t}b", "x{t}", "{}")
    s("UNLINK", "{t}b", "x{t}", "{}")
    s("TOUCH", "{t}b")
    s("MGET", "{t}a", "{t}b", "x{t}", "{}")
    for cmd in (["UNLINK"], ["TOUCH"]):
        s(*cmd)

    # MSETNX, RENAME, RENAMENX, COPY on one shard (tagged keys: every key
    # below holds {m}); on one node every key is on... one of its shards, so
    # the CROSSSLOT refusal is checked by resp_cluster_strings.py.
    s("DEL", "{m}a", "{m}b", "{m}c", "{m}d")
    s("MSETNX", "{m}a", "1", "{m}b", "2")
    s("MGET", "{m}a", "{m}b")
    s("MSETNX", "{m}c", "3", "{m}a", "x")
    s("EXISTS", "{m}c")
    s("MGET", "{m}a", "{m}c")
    s("MSETNX", "{m}c", "3", "{m}c", "4")
    s("GET", "{m}c")
    s("MSETNX", "{m}a")
    s("MSETNX", "{m}a", "1", "{m}b")
    s("RENAME", "{m}a", "{m}d")
    s("MGET", "{m}a", "{m}d")
    s("RENAME", "{m}a", "{m}d")
    s("RENAME", "{m}d", "{m}d")
    s("RENAMENX", "{m}d", "{m}d")
    s("RENAMENX", "{m}d", "{m}b")
    s("RENAMENX", "{m}d", "{m}e")
    s("MGET", "{m}d", "{m}e", "{m}b")
    s("RENAME", "{m}e", "{m}b")
    s("MGET", "{m}e", "{m}b")
    s("COPY", "{m}b", "{m}c")
    s("COPY", "{m}b", "{m}f")
    s("MGET", "{m}b", "{m}f")
    s("COPY", "{m}b", "{m}c", "REPLACE")
    s("GET", "{m}c")
    s("COPY", "{m}missing", "{m}c", "REPLACE")
    s("COPY", "{m}b", "{m}b")
    s("COPY", "{m}b", "{m}c", "DB", "0", "REPLACE")
    s("COPY", "{m}b", "{m}c", "BOGUS")
    s("COPY", "{m}b", "{m}c", "DB")
    s("COPY", "{m}b", "{m}c", "DB", "x")
    s("DEL", "{m}b", "{m}c", "{m}d", "{m}f")
    for cmd in (["MSETNX"], ["MSETNX", "k"], ["RENAME", "k"], ["RENAMENX", "k"],
                ["COPY", "k"], ["RENAME", "a", "b", "c"]):
        s(*cmd)

    # Expiry (issue 21): options, errors and replies. Deadlines are given
    # as absolute times, or read back as absolute times, so both servers
    # answer the same bytes whatever the clock.
    s("DEL", "t", "{t}a", "{t}b")
    for opts in (["EX", 100], ["PX", 100000], ["EXAT", 4000000000], ["PXAT", 4000000000000],
                 ["KEEPTTL"], ["EX", 100, "NX"], ["XX", "PX", 5000], ["EX", 100, "GET"],
                 ["EX", 100, "PX", 100], ["EX", 100, "KEEPTTL"], ["KEEPTTL", "EXAT", 5],
                 ["EX"], ["EX", 0], ["EX", -1], ["PX", 0], ["EX", "x"], ["EX", "1.5"],
                 ["EXAT", 0], ["PXAT", -5], ["EX", 9223372036854775807],
                 ["PX", 9223372036854775807], ["EX", 100, "EX", 200], ["ex", 100],
                 ["NX", "GET", "EXAT", 4000000000], ["GET", "KEEPTTL", "XX"]):
        s("SET", "t", "v", *opts)
        s("EXISTS", "t")
    s("SET", "t", "v", "EXAT", 4000000000)
    s("EXPIRETIME", "t")
    s("PEXPIRETIME", "t")
    s("SET", "t", "w", "KEEPTTL")
    s("EXPIRETIME", "t")
    s("SET", "t", "x")
    for cmd in ("TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"):
        s(cmd, "t")
        s(cmd, "missing")
    for cmd, t in (("EXPIREAT", 4000000000), ("PEXPIREAT", 4000000001000)):
        for flags in ([], ["NX"], ["XX"], ["GT"], ["LT"], ["NX", "XX"], ["GT", "LT"],
                      ["NX", "GT"], ["XX", "GT"], ["XX", "LT"], ["FOO"], ["xx", "lt"]):
            s("SET", "t", "v")
            s(cmd, "t", t, *flags)
            s("PEXPIRETIME", "t")
            s(cmd, "t", t + 10, *flags)
            s("PEXPIRETIME", "t")
            s(cmd, "t", t - 10, *flags)
            s("PEXPIRETIME", "t")
    s("EXPIRE", "missing", 100)
    s("EXPIRE", "t", "x")
    s("EXPIRE", "t", 9223372036854775807)
    s("PEXPIRE", "t", 9223372036854775807)
    s("EXPIRE", "t", "x", "BOGUS")
    s("SET", "t", "v")
    s("EXPIRE", "t", -1)
    s("EXISTS", "t")
    s("SET", "t", "v")
    s("EXPIREAT", "t", 1)
    s("GET", "t")
    s("SET", "t", "v")
    s("PEXPIRE", "t", 0)
    s("EXISTS", "t")
    s("SET", "t", "v", "EXAT", 4000000000)
    s("PERSIST", "t")
    s("PERSIST", "t")
    s("TTL", "t")
    s("PERSIST", "missing")
    for args in ((100, "v"), (0, "v"), (-1, "v"), ("x", "v")):
        s("SETEX", "t", *args)
        s("PSETEX", "t", *args)
        s("GET", "t")
    s("SET", "t", "v")
    s("GETEX", "t")
    s("GETEX", "t", "EXAT", 4000000000)
    s("EXPIRETIME", "t")
    s("GETEX", "t", "PERSIST")
    s("TTL", "t")
    s("GETEX", "t", "PXAT", 4000000000000)
    s("PEXPIRETIME", "t")
    for opts in (["EX"], ["EX", 0], ["EX", "x"], ["PERSIST", "EX", 10], ["EX", 10, "PERSIST"],
                 ["KEEPTTL"], ["NX"], ["GET"], ["EX", 10, "PX", 10], ["BOGUS"]):
        s("GETEX", "t", *opts)
    s("GETEX", "missing", "EX", 10)
    s("GETEX", "t", "EXAT", 1)
    s("EXISTS", "t")
    # Rewrites keep the deadline, SET clears it, RENAME and COPY carry it.
    s("SET", "t", "1", "EXAT", 4000000000)
    s("INCR", "t")
    s("APPEND", "t", "0")
    s("SETRANGE", "t", 0, "5")
    s("INCRBYFLOAT", "t", "1.5")
    s("EXPIRETIME", "t")
    s("SET", "t", "2")
    s("EXPIRETIME", "t")
    s("SET", "{t}a", "v", "EXAT", 4000000000)
    s("RENAME", "{t}a", "{t}b")
    s("EXPIRETIME", "{t}b")
    s("COPY", "{t}b", "{t}a")
    s("EXPIRETIME", "{t}a")
    s("DEL", "t", "{t}a", "{t}b")
    for cmd in (["SETEX", "k", 1], ["PSETEX", "k"], ["GETEX"], ["EXPIRE", "k"], ["PERSIST"],
                ["TTL"], ["TTL", "a", "b"], ["EXPIRETIME"], ["PEXPIREAT", "k"],
                ["PERSIST", "a", "b"]):
        s(*cmd)

    # OBJECT: the encoding Redis's SET picks for the bytes, REFCOUNT of
    # shared integers, IDLETIME of a key just written, FREQ's refusal,
    # missing keys, unknown subcommands, arity, HELP.
    for v in ("1", "0", "9999", "10000", "-1", "-0", "01", "+1", "12345678901234567890",
              "9223372036854775807", "9223372036854775808", "-9223372036854775808",
              "1.5", "", " 1", "a" * 44, "a" * 45, "x" * 200):
        s("SET", "o", v)
        s("OBJECT", "ENCODING", "o")
        s("OBJECT", "refcount", "o")
    s("OBJECT", "IDLETIME", "o")
    s("OBJECT", "FREQ", "o")
    for sub in ("ENCODING", "REFCOUNT", "IDLETIME", "FREQ"):
        s("OBJECT", sub, "missing")
        s("OBJECT", sub)
        s("OBJECT", sub, "o", "extra")
    s("OBJECT", "BOGUS", "o")
    s("OBJECT")
    s("DEL", "o")

    # Arity errors (Redis's texts), old and new commands alike.
    for cmd in (["PING", "a", "b"], ["GET"], ["SET", "k"], ["GETRANGE", "k", 1],
                ["SETRANGE", "k", 1], ["GETBIT", "k"], ["SETBIT", "k", 1],
                ["BITCOUNT"], ["BITPOS", "k"], ["LCS", "k"], ["INCRBYFLOAT", "k"],
                ["GETDEL"], ["SUBSTR", "k", 1], ["STRLEN"], ["APPEND", "k"]):
        s(*cmd)


def bulk_list(reply):
    """The elements of an array of bulk strings, as bytes."""
    out, lines = [], reply.split(b"\r\n")
    for i, line in enumerate(lines):
        if line.startswith(b"$") and line != b"$-1":
            out.append(lines[i + 1])
    return out


def randomkey_cases(rk, rd):
    """RANDOMKEY: nil on an empty keyspace, the one key when there is one,
    every key in time among several (across shards), never a key past its
    deadline, arity. Every key is deleted first (KEYS, DEL)."""
    s = lambda *a: same(rk, rd, *a)  # noqa: E731
    for conn in (rk, rd) if rd else (rk,):
        keys = bulk_list(conn.call("KEYS", "*"))
        for i in range(0, len(keys), 100):
            conn.call("DEL", *keys[i:i + 100])
    s("DBSIZE")
    for _ in range(5):
        s("RANDOMKEY")
    s("RANDOMKEY", "extra")
    s("SET", "only", "1")
    for _ in range(5):
        s("RANDOMKEY")
    s("SET", "", "empty key")
    names = [b"only", b""] + [b"r:%d" % i for i in range(20)] + [b"\xff\x00bin", b"zz"]
    for n in names[2:]:
        s("SET", n, "v")
    seen = set()
    for _ in range(8000):  # the empty key comes about once in 150
        got = bulk_list(rk.call("RANDOMKEY"))
        if len(got) != 1 or got[0] not in names:
            failures.append("RANDOMKEY answered %r" % got)
            break
        seen.add(got[0])
        if len(seen) == len(names):
            break
    if len(seen) != len(names):
        failures.append("RANDOMKEY never answered %r" % sorted(set(names) - seen))
    # Keys past their deadline are never answered (deleted or not yet).
    for n in names:
        s("PEXPIREAT", n, 1)  # long past: deleted at once, as Redis does
    s("RANDOMKEY")
    for i in range(30):
        s("SET", "gone:%d" % i, "v", "PX", 30)
    s("SET", "stays", "v")
    import time
    time.sleep(0.06)
    for _ in range(20):
        s("RANDOMKEY")
    s("DEL", "stays")
    s("RANDOMKEY")


def big_value_cases(rk, rd, max_value):
    """Values of the size Redis's own suite writes (4,000,000 bytes) and
    of ringkv's limit, binary, on both servers alike; APPEND and SETRANGE
    growing one; a negative multibulk count skipped (Redis skips any count
    not above 0)."""
    def s(*args):
        a = rk.call(*args)
        b = rd.call(*args) if rd is not None else a
        if a != b:
            failures.append("%r (%d bytes of arguments):\n  ringkv %r\n  redis  %r"
                            % (args[:2], sum(len(x) for x in args if isinstance(x, bytes)),
                               a[:100], b[:100]))
        return a
    for size in (4000000, max_value):
        value = (bytes(range(256)) * (size // 256 + 2))[size % 251:size % 251 + size]
        s("SET", "big", value)
        s("STRLEN", "big")
        s("GETRANGE", "big", size - 10, -1)
        got = s("GET", "big")
        if got != b"$%d\r\n" % size + value + b"\r\n":
            failures.append("GET of a %d-byte value: %d bytes back" % (size, len(got)))
    s("SET", "big", b"x" * 4000000)
    s("APPEND", "big", b"y" * 100000)
    s("SETRANGE", "big", 4150000, b"z")
    s("STRLEN", "big")
    s("GETRANGE", "big", 3999998, 4000002)
    s("GETRANGE", "big", 4149999, -1)
    s("DEL", "big")
    for conn in (rk, rd):
        if conn is None:
            continue
        conn.sock.sendall(b"*-10\r\n*-1\r\n*0\r\n")
    s("PING")


def ringkv_only(rk, max_value):
    """Where ringkv's limit is --max-value, not Redis's 512 MB."""
    too_big = b"-ERR string exceeds maximum allowed size (%d bytes)\r\n" % max_value
    rk.call("DEL", "big")
    expect(rk, too_big, "SETRANGE", "big", max_value, "x")
    expect(rk, b":%d\r\n" % max_value, "SETRANGE", "big", max_value - 1, "x")
    expect(rk, b"-ERR bit offset is not an integer or out of range\r\n",
           "SETBIT", "big", max_value * 8, 1)
    expect(rk, b":0\r\n", "SETBIT", "big", max_value * 8 - 1, 1)
    expect(rk, b":1\r\n", "GETBIT", "big", max_value * 8 - 1)
    expect(rk, b"-ERR bit offset is not an integer or out of range\r\n",
           "GETBIT", "big", max_value * 8)
    rk.call("DEL", "big")
    # A value one byte past the limit: a protocol error naming the limit,
    # then the connection closes (the stream cannot be parsed past it).
    other = Conn(*rk.sock.getpeername()[:2])
    expect(other, b"-ERR Protocol error: invalid bulk length %d (the limit is %d bytes)\r\n"
           % (max_value + 1, max_value), "SET", "big", b"v" * (max_value + 1))
    try:
        other.call("PING")
        failures.append("the connection stayed open after a value past the limit")
    except (ConnectionError, OSError):
        pass
    expect(rk, b":0\r\n", "EXISTS", "big")
    # OBJECT HELP: ringkv's own text, an array of simple strings.
    got = rk.call("OBJECT", "HELP")
    if not got.startswith(b"*11\r\n+OBJECT <subcommand>"):
        failures.append("OBJECT HELP: %r" % got[:60])
    # DEBUG SET-ACTIVE-EXPIRE (Redis refuses DEBUG unless enabled): off, a
    # key past its deadline stays stored (INFO expired_keys unchanged) yet
    # hidden; on again, it is deleted.
    def expired_keys():
        text = rk.call("INFO", "stats")
        at = text.find(b"expired_keys:")
        return int(text[at + 13:text.find(b"\r\n", at)])
    import time
    # Keys of earlier cases that are due (RANDOMKEY's) go first: the count
    # settles (a loaded machine can take a while).
    settled, last = time.time(), expired_keys()
    while time.time() - settled < 1.0:
        time.sleep(0.2)
        now = expired_keys()
        if now != last:
            settled, last = time.time(), now
    expect(rk, b"+OK\r\n", "DEBUG", "SET-ACTIVE-EXPIRE", "0")
    time.sleep(0.3)  # a pass's deletes in flight land
    before = expired_keys()
    expect(rk, b"+OK\r\n", "SET", "dbg", "v", "PX", "20")
    time.sleep(0.4)
    expect(rk, b"$-1\r\n", "GET", "dbg")
    if expired_keys() != before:
        failures.append("active expiry deleted a key while off")
    expect(rk, b"+OK\r\n", "DEBUG", "set-active-expire", "1")
    for _ in range(50):
        if expired_keys() == before + 1:
            break
        time.sleep(0.1)
    if expired_keys() != before + 1:
        failures.append("active expiry on again: expired_keys %d, %d before"
                        % (expired_keys(), before))
    # DBSIZE around keys past their deadline that active expiry has not
    # deleted: not counted; a DEL of one answers 0 and leaves the count; a
    # SET over one counts one key.
    expect(rk, b"+OK\r\n", "DEBUG", "SET-ACTIVE-EXPIRE", "0")
    size = rk.call("DBSIZE")
    for k in ("e1", "e2"):
        expect(rk, b"+OK\r\n", "SET", k, "v", "PX", "20")
    time.sleep(0.3)
    expect(rk, size, "DBSIZE")
    expect(rk, b":0\r\n", "DEL", "e1")
    expect(rk, size, "DBSIZE")
    expect(rk, b"+OK\r\n", "SET", "e2", "v")
    expect(rk, b":%d\r\n" % (int(size[1:]) + 1), "DBSIZE")
    expect(rk, b":1\r\n", "DEL", "e2")
    expect(rk, size, "DBSIZE")
    expect(rk, b"+OK\r\n", "DEBUG", "SET-ACTIVE-EXPIRE", "1")
    expect(rk, b"-ERR wrong number of arguments for 'debug' command\r\n", "DEBUG")
    for args in (["DEBUG", "SET-ACTIVE-EXPIRE", "2"], ["DEBUG", "SLEEP", "0"]):
        got = rk.call(*args)
        if not got.startswith(b"-ERR unknown subcommand or wrong number of arguments for"):
            failures.append("%r: %r" % (args, got))


def main():
    rk = Conn(sys.argv[1], int(sys.argv[2]))
    rd = Conn(sys.argv[3], int(sys.argv[4])) if int(sys.argv[4]) else None
    got = rk.call("CONFIG", "GET", "proto-max-bulk-len")
    max_value = int(got.split(b"\r\n")[-2])
    if max_value != (4 << 20) - (8 << 10):
        failures.append("default --max-value %d, want 4 MiB less 8 KiB" % max_value)
    cases(rk, rd)
    big_value_cases(rk, rd, max_value)
    randomkey_cases(rk, rd)
    ringkv_only(rk, max_value)
    for f in failures:
        print("FAIL", f)
    print("resp_strings: %d differences" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
