#!/usr/bin/env python3
"""CONFIG SET at run time (issue 21): maxclients, proto-max-bulk-len and
loglevel change on every core of a running ringkvd; what cannot change is
refused with Redis's texts.

Starts a ringkvd of two cores (127.0.53.51) and, when installed, a
redis-server 7.0 (127.0.53.52), ports 53000 + 3 * (pid % 300) .., and
sends both the same CONFIG commands: same replies, error texts included,
except where ringkv's bounds differ on purpose (its largest maxclients and
proto-max-bulk-len: the error's prefix is compared then). Then, on ringkvd:
- maxclients 2 (one a core): of 12 new connections (spread over both
  cores by the kernel) at most one is served and the others are told
  "-ERR max number of clients reached", while connections already open
  stay; maxclients 100: all 12 are served; INFO's maxclients follows;
- proto-max-bulk-len 1mb: a 1 MiB + 1 value is refused with Redis's
  protocol error on a connection opened before the change and on a new
  one, on both cores, and a 1 MiB value is taken; back to the start value,
  a 1.5 MiB value is taken again;
- loglevel: CONFIG GET answers what was set;
- timeout 1: six idle connections (over both cores) are closed within
  3.5 s while two that send a PING every 0.3 s stay; timeout 0: six idle
  connections stay 2.5 s, CLIENT LIST showing idle=2 or more for them;
- a CONFIG SET with a bad pair changes none of its pairs.

usage: resp_config.py RINGKVD
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp_cluster_dbsize import log_tails, verdict  # noqa: E402
from resp_cluster_expiry import connect_when_up  # noqa: E402
from resp_strings import Conn  # noqa: E402

HOST, REDIS_HOST = "127.0.53.51", "127.0.53.52"
BASE = 53000 + 3 * (os.getpid() % 300)
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what, flush=True)


def config_get(conn, name):
    got = conn.call("CONFIG", "GET", name)
    parts = got.split(b"\r\n")
    # *2 $n name $n value
    return parts[4].decode() if len(parts) > 4 else None


def served(host, port, n):
    """Opens n connections: those answering PING, those told the limit."""
    ok, refused, conns = 0, 0, []
    for _ in range(n):
        try:
            c = Conn(host, port)
            conns.append(c)
            got = c.call("PING")
            if got == b"+PONG\r\n":
                ok += 1
            elif got == b"-ERR max number of clients reached\r\n":
                refused += 1
        except OSError:
            refused += 1  # closed before the error could be read
    return ok, refused, conns


def closed(conn):
    """Whether the server closed the connection (a PING gets nothing)."""
    try:
        conn.sock.settimeout(2)
        return conn.call("PING") != b"+PONG\r\n"
    except OSError:
        return True


def big_set(conn, size):
    """SET of a `size`-byte value: the reply, or b'' if the connection was
    closed without one."""
    try:
        return conn.call("SET", "big", "x" * size)
    except OSError:
        return b""


def too_long(reply):
    """Redis's protocol error for a bulk string past the limit (ringkv adds
    the limit), or the connection closed."""
    return reply == b"" or reply.startswith(b"-ERR Protocol error: invalid bulk length")


def main():
    ringkvd = sys.argv[1]
    work = tempfile.mkdtemp(prefix="ringkv-resp-config-")
    procs = []
    finished = False
    try:
        procs.append(subprocess.Popen(
            [ringkvd, "--listen", "%s:%d" % (HOST, BASE), "--resp-listen",
             "%s:%d" % (HOST, BASE + 1), "--cores", "2", "--data-dir", work + "/data"],
            stdout=open(work + "/ringkvd.log", "w"), stderr=subprocess.STDOUT))
        rk = connect_when_up(HOST, BASE + 1)
        rd = None
        if shutil.which("redis-server"):
            procs.append(subprocess.Popen(
                ["redis-server", "--bind", REDIS_HOST, "--port", str(BASE + 2), "--save", "",
                 "--appendonly", "no", "--dir", work],
                stdout=open(work + "/redis.log", "w"), stderr=subprocess.STDOUT))
            rd = connect_when_up(REDIS_HOST, BASE + 2)
        else:
            print("redis-server not installed: ringkvd alone, texts from Redis's docs")

        start_bulk = config_get(rk, "proto-max-bulk-len")
        start_clients = config_get(rk, "maxclients")
        check(start_clients == str(2 * 4096), "maxclients at start: %r" % start_clients)

        def same(*args, prefix=None):
            a = rk.call(*args)
            if rd is not None:
                b = rd.call(*args)
                if prefix is not None:
                    a, b = a[:prefix], b[:prefix]
                check(a == b, "%r: ringkv %r, redis %r" % (args, a, b))
            return a

        E = b"-ERR CONFIG SET failed (possibly related to argument "
        same("CONFIG", "SET", "maxclients", "abc")
        got = same("CONFIG", "SET", "maxclients", "0", prefix=len(
            E + b"'maxclients') - argument must be between 1 and "))
        check(got.startswith(E + b"'maxclients') - argument must be between 1 and"), repr(got))
        same("CONFIG", "SET", "proto-max-bulk-len", "abc")
        got = same("CONFIG", "SET", "proto-max-bulk-len", "100", prefix=len(
            E + b"'proto-max-bulk-len') - argument must be between 1048576 and "))
        check(got.startswith(E + b"'proto-max-bulk-len') - argument must be between 1048576 "
                             b"and"), repr(got))
        got = rk.call("CONFIG", "SET", "proto-max-bulk-len", "1gb")
        check(got.startswith(E + b"'proto-max-bulk-len') - argument must be between 1048576 "
                             b"and %s inclusive" % start_bulk.encode()), repr(got))
        same("CONFIG", "SET", "loglevel", "foo")
        same("CONFIG", "SET", "databases", "2")
        same("CONFIG", "SET", "databases", "16" if rd else "1")
        same("CONFIG", "SET", "maxclients", "50", "loglevel", "nosuch")
        same("CONFIG", "SET", "maxclients", "50", "maxclients", "60")
        check(config_get(rk, "maxclients") == start_clients,
              "a refused CONFIG SET changed maxclients: %r" % config_get(rk, "maxclients"))
        same("CONFIG", "SET", "loglevel", "warning")
        same("CONFIG", "GET", "loglevel")
        same("CONFIG", "SET", "loglevel", "verbose", "maxclients", "100")
        same("CONFIG", "GET", "loglevel")
        same("CONFIG", "GET", "maxclients")
        got = rk.call("CONFIG", "SET", "appendfsync", "everysec")
        check(got == E + b"'appendfsync') - can't set immutable config\r\n", repr(got))
        same("CONFIG", "SET", "timeout", "-1")
        same("CONFIG", "SET", "timeout", "x")

        # timeout: idle connections (on both cores) closed, busy ones kept.
        check(rk.call("CONFIG", "SET", "timeout", "1") == b"+OK\r\n", "timeout 1")
        check(config_get(rk, "timeout") == "1", "CONFIG GET timeout 1")
        _, _, idle = served(HOST, BASE + 1, 6)
        busy = Conn(HOST, BASE + 1)
        until = time.time() + 3.5
        while time.time() < until:
            for c in (rk, busy):
                check(c.call("PING") == b"+PONG\r\n", "a busy connection kept")
            time.sleep(0.3)
        gone = sum(1 for c in idle if closed(c))
        check(gone == 6, "timeout 1: %d of 6 idle connections closed after 3.5 s" % gone)
        check(rk.call("CONFIG", "SET", "timeout", "0") == b"+OK\r\n", "timeout 0")
        _, _, idle = served(HOST, BASE + 1, 6)
        time.sleep(2.5)
        listed = rk.call("CLIENT", "LIST").decode(errors="replace")
        idle_s = [int(f[5:]) for f in listed.split() if f.startswith("idle=")]
        check(sum(1 for s in idle_s if s >= 2) >= 6,
              "CLIENT LIST: idle= of the idle connections (%r)" % idle_s)
        me = rk.call("CLIENT", "INFO").decode(errors="replace")
        check(" idle=0 " in me, "CLIENT INFO of the asking connection: %r" % me)
        kept = sum(1 for c in idle if c.call("PING") == b"+PONG\r\n")
        check(kept == 6, "timeout 0: %d of 6 idle connections kept after 2.5 s" % kept)

        # maxclients: one connection a core.
        check(rk.call("CONFIG", "SET", "maxclients", "2") == b"+OK\r\n", "maxclients 2")
        check(config_get(rk, "maxclients") == "2", "CONFIG GET maxclients 2")
        ok, refused, conns = served(HOST, BASE + 1, 12)
        check(ok <= 1 and ok + refused == 12,
              "maxclients 2 with one open: %d served, %d refused of 12" % (ok, refused))
        check(refused >= 11, "maxclients 2: %d of 12 refused" % refused)
        check(rk.call("PING") == b"+PONG\r\n", "a connection open before still served")
        info = rk.call("INFO", "clients")
        check(b"maxclients:2\r\n" in info, "INFO maxclients 2: %r" % info[:200])
        for c in conns:
            c.sock.close()
        time.sleep(0.3)
        check(rk.call("CONFIG", "SET", "maxclients", "100") == b"+OK\r\n", "maxclients 100")
        ok, refused, conns = served(HOST, BASE + 1, 12)
        check(ok == 12, "maxclients 100: %d of 12 served" % ok)

        # proto-max-bulk-len changed while connections (both cores, most
        # likely) are part-way through a command: they finish it (the
        # parser asserted it was between commands, and the node aborted).
        half = [Conn(HOST, BASE + 1) for _ in range(4)]
        for c in half:
            c.sock.sendall(b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$5\r\nab")
        time.sleep(0.2)
        check(rk.call("CONFIG", "SET", "proto-max-bulk-len", "2mb") == b"+OK\r\n",
              "bulk 2mb with commands half received")
        for c in half:
            c.sock.sendall(b"cde\r\n")
            got = c.reader.raw_reply()
            check(got == b"+OK\r\n", "a command half received across the change: %r" % got)
            c.sock.close()
        check(rk.call("GET", "half") == b"$5\r\nabcde\r\n", "its value written")

        # proto-max-bulk-len: the open connections (both cores, most likely)
        # and a new one.
        check(rk.call("CONFIG", "SET", "proto-max-bulk-len", "1mb") == b"+OK\r\n", "bulk 1mb")
        check(config_get(rk, "proto-max-bulk-len") == "1048576", "CONFIG GET bulk 1mb")
        refused_open = 0
        for c in conns[:4]:
            got = big_set(c, (1 << 20) + 1)
            refused_open += too_long(got)
        check(refused_open == 4, "1 MiB + 1 on connections opened before: %d of 4 refused"
              % refused_open)
        fresh = Conn(HOST, BASE + 1)
        got = big_set(fresh, (1 << 20) + 1)
        check(too_long(got),
              "1 MiB + 1 on a new connection: %r" % got[:80])
        for c in conns[4:8]:
            check(big_set(c, 1 << 20) == b"+OK\r\n", "a 1 MiB value with the limit at 1 MiB")
        check(rk.call("CONFIG", "SET", "proto-max-bulk-len", start_bulk) == b"+OK\r\n",
              "bulk back to %s" % start_bulk)
        for c in conns[8:12]:
            check(big_set(c, 3 << 19) == b"+OK\r\n", "a 1.5 MiB value once the limit is back")
        for c in conns:
            c.sock.close()
        finished = True
    finally:
        for p in procs:
            p.kill()
            p.wait()
        if failures or not finished:
            log_tails([work + "/ringkvd.log"])
        shutil.rmtree(work, ignore_errors=True)
    return verdict(failures)


if __name__ == "__main__":
    sys.exit(main())
