#!/usr/bin/env python3
"""RESP3 (HELLO 3) and the raw protocol, ringkvd against a real redis-server.

Starts a ringkvd (2 cores) and a redis-server 7.0 (DEBUG enabled) on
127.0.54.31, ports 54000 + 3 * (pid % 300) .. + 2, sends both the same
commands on raw sockets and requires the same bytes back, error texts
included. The cases are written from Redis's protocol specification
(RESP3: maps, sets, the null, doubles, big numbers, booleans, verbatim
strings, attributes, push) and the command pages (HELLO, CLIENT, CONFIG
GET, COMMAND INFO/DOCS, LCS IDX, DEBUG PROTOCOL): the same command under
HELLO 3 and after HELLO 2 again. Where ringkv answers with other contents
on purpose (HELLO's server and version, INFO's text, COMMAND's ACL
categories and key specs), the reply's RESP3 shape is compared instead.
INFO's sections (the issue's nine, headings and Redis's field names;
commandstats counted over both cores) and CONFIG SET's checks are
compared the same way. Then redis-cli -3 prints the same for both. Also
the protocol desync
checks: a stream that never forms a command must get a protocol error and
a closed connection, not be buffered for ever.

usage: resp_resp3.py RINGKVD
"""
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resp_strings  # noqa: E402

HOST = "127.0.54.31"
BASE = 54000 + 3 * (os.getpid() % 300)
failures = []


class Conn(resp_strings.Conn):
    """resp_strings.py's raw client (ringkv_test.RespReader.raw_reply reads
    RESP3's types too): each reply comes back as its exact bytes."""

    def __init__(self, port):
        super().__init__(HOST, port)


def same(rk, rd, *args):
    a, b = rk.call(*args), rd.call(*args)
    if a != b:
        failures.append("%r:\n  ringkv %r\n  redis  %r" % (args, a[:300], b[:300]))
    return a


def shape(reply):
    """A reply's RESP types and aggregate sizes, without the scalars' contents."""
    out = []
    for line in reply.split(b"\r\n"):
        if line[:1] in (b"*", b"%", b"~", b">", b"|"):
            out.append(line)
        elif line[:1] in (b"$", b"=", b"+", b":", b"_", b",", b"#", b"(", b"-"):
            out.append(line[:1])
    return out


def check(ok, what):
    if not ok:
        failures.append(what)


def protocol_cases(rk, rd, resp3):
    s = lambda *a: same(rk, rd, *a)  # noqa: E731
    for t in ("string", "integer", "double", "bignum", "null", "array", "set", "map",
              "attrib", "push", "verbatim", "true", "false", "TRUE", "nosuchtype"):
        s("DEBUG", "PROTOCOL", t)
    s("DEBUG", "PROTOCOL")
    s("DEL", "k", "k2", "nx", "missing")
    # Nulls: a missing key, a refused SET NX, SET GET of nothing, MGET's holes.
    s("GET", "missing")
    s("SET", "k", "v")
    s("SET", "k", "w", "NX")
    s("SET", "nx", "v", "GET")
    s("MGET", "k", "missing", "nx")
    s("GETDEL", "missing")
    s("GETEX", "missing")
    s("GETSET", "k2", "x")
    s("OBJECT", "ENCODING", "missing")
    s("EXPIRETIME", "missing")
    s("TTL", "k")
    s("TYPE", "k")
    s("TYPE", "missing")
    s("INCRBYFLOAT", "f", "1.5")
    s("DEL", "f")
    s("STRLEN", "k")
    s("EXISTS", "k", "missing")
    s("PING")
    s("PING", "hi")
    s("ECHO", "x")
    # LCS: IDX is a map in RESP3, an array of pairs in RESP2.
    s("MSET", "{l}a", "ohmytext", "{l}b", "mynewtext")
    s("LCS", "{l}a", "{l}b")
    s("LCS", "{l}a", "{l}b", "LEN")
    s("LCS", "{l}a", "{l}b", "IDX")
    s("LCS", "{l}a", "{l}b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN")
    s("LCS", "{l}a", "{l}missing", "IDX")
    s("DEL", "{l}a", "{l}b")
    # CONFIG GET: a map in RESP3.
    s("CONFIG", "GET", "timeout")
    s("CONFIG", "GET", "nosuchparameter")
    s("CONFIG", "GET", "timeout", "nosuch*")
    # CONFIG SET: Redis 7.0's checks; a parameter set to its value.
    s("CONFIG", "SET", "timeout", "0")
    s("CONFIG", "SET", "TIMEOUT", "0", "appendfsync", "always")
    s("CONFIG", "SET", "nosuchparameter", "1")
    s("CONFIG", "SET", "timeout")
    s("CONFIG", "SET", "timeout", "0", "maxmemory")
    s("CONFIG", "SET", "timeout", "0", "timeout", "0")
    got = rk.call("CONFIG", "SET", "appendfsync", "everysec")
    check(got == b"-ERR CONFIG SET failed (possibly related to argument 'appendfsync') - "
                 b"can't set immutable config\r\n", "CONFIG SET appendfsync everysec: %r" % got)
    s("CONFIG", "GET", "timeout")
    s("CLIENT", "GETNAME")
    s("CLIENT", "SETNAME", "parity")
    s("CLIENT", "GETNAME")
    s("CLIENT", "SETNAME", "a b")
    s("COMMAND", "INFO", "nosuchcommand")
    s("SCAN", "0", "MATCH", "nosuchprefix*")
    s("KEYS", "nosuchprefix*")
    s("GET")
    s("NOSUCHCOMMAND", "x")
    s("DEL", "k", "k2", "nx")
    # Contents differ on purpose; the RESP types must not.
    for args in (("INFO", "server"), ("CLIENT", "INFO"), ("CLIENT", "LIST"),
                 ("COMMAND", "INFO", "get", "set", "nosuch"),
                 ("COMMAND", "DOCS", "get", "nosuch"), ("TIME",)):
        a, b = rk.call(*args), rd.call(*args)
        sa, sb = shape(a), shape(b)
        if args[0] == "COMMAND":
            # Redis lists ACL categories, tips, key specs and (DOCS)
            # arguments that ringkv leaves empty: compare the outer form
            # and the types of the first fields.
            sa, sb = sa[:3 if args[1] == "INFO" else 2], sb[:3 if args[1] == "INFO" else 2]
        check(sa == sb, "%r: shape ringkv %r, redis %r" % (args, sa, sb))
        if args[0] in ("INFO", "CLIENT") and args[1] != "GETNAME":
            want = b"=" if resp3 else b"$"
            check(a[:1] == want and (not resp3 or a.split(b"\r\n", 1)[1][:4] == b"txt:"),
                  "%r: %s a verbatim string: %r" % (args, "not" if resp3 else "", a[:40]))


# INFO's sections the issue names, with the fields ringkv answers under
# Redis's names (each must be in redis-server's answer too).
INFO_FIELDS = {
    "server": ["redis_version", "redis_mode", "os", "arch_bits", "multiplexing_api",
               "process_id", "tcp_port", "uptime_in_seconds", "uptime_in_days"],
    "clients": ["connected_clients", "maxclients", "blocked_clients", "tracking_clients"],
    "memory": ["used_memory", "used_memory_rss", "maxmemory", "maxmemory_policy"],
    "persistence": ["loading", "aof_enabled", "rdb_bgsave_in_progress",
                    "aof_rewrite_in_progress"],
    "stats": ["total_commands_processed", "expired_keys", "evicted_keys",
              "total_connections_received", "rejected_connections", "total_net_input_bytes",
              "total_net_output_bytes", "total_error_replies"],
    "replication": ["role", "connected_slaves", "master_failover_state"],
    "cpu": ["used_cpu_sys", "used_cpu_user", "used_cpu_sys_children",
            "used_cpu_user_children"],
    "commandstats": [],
    "keyspace": ["db0"],
}


def info_fields(reply):
    body = reply.split(b"\r\n", 1)[1].decode()
    if body.startswith("txt:"):
        body = body[4:]
    return body, {line.split(":", 1)[0]: line.split(":", 1)[1]
                  for line in body.split("\r\n") if ":" in line and not line.startswith("#")}


def info_cases(rk, rd):
    rk.call("SET", "info:k", "v")
    rd.call("SET", "info:k", "v")
    for section, fields in INFO_FIELDS.items():
        (a, fa), (b, fb) = (info_fields(c.call("INFO", section)) for c in (rk, rd))
        check(a.split("\r\n", 1)[0] == b.split("\r\n", 1)[0],
              "INFO %s: heading ringkv %r, redis %r" % (section, a[:20], b[:20]))
        for f in fields:
            check(f in fa and f in fb, "INFO %s: field %s ringkv %s, redis %s"
                  % (section, f, f in fa, f in fb))
        check(all(isinstance(v, str) for v in fa.values()), "INFO %s" % section)
    # commandstats: only asked by name (or all/everything), and every
    # core's count summed: GETs from 6 connections (both cores).
    for c in (rk, rd):
        check(b"cmdstat_" not in c.call("INFO"), "INFO without arguments: no commandstats")
        check(b"cmdstat_" not in c.call("INFO", "default"), "INFO default: no commandstats")
        check(b"cmdstat_get:calls=" in c.call("INFO", "everything"), "INFO everything")
    # The stats counted on every core: connections and error replies.
    for name, c, port in (("ringkv", rk, BASE + 1), ("redis", rd, BASE + 2)):
        f0 = info_fields(c.call("INFO", "stats"))[1]
        extra = [Conn(port) for _ in range(4)]
        for e in extra:
            e.call("NOSUCHCOMMAND")
        f1 = info_fields(c.call("INFO", "stats"))[1]
        for e in extra:
            e.sock.close()
        got = [int(f1[k]) - int(f0[k]) for k in ("total_connections_received",
                                                 "total_error_replies")]
        check(got == [4, 4], "%s: INFO stats counted %r connections and errors of 4 and 4"
              % (name, got))
        check(int(f1["total_net_input_bytes"]) > int(f0["total_net_input_bytes"]) and
              int(f1["total_net_output_bytes"]) > int(f0["total_net_output_bytes"]),
              "%s: INFO stats' byte counts grow" % name)
    before = {}
    for name, c in (("ringkv", rk), ("redis", rd)):
        before[name] = int(info_fields(c.call("INFO", "commandstats"))[1]
                           .get("cmdstat_get", "calls=0").split(",")[0][6:])
    conns = [(Conn(BASE + 1), Conn(BASE + 2)) for _ in range(6)]
    for i, (a, b) in enumerate(conns):
        for _ in range(i + 1):
            a.call("GET", "info:k")
            b.call("GET", "info:k")
    for name, c in (("ringkv", rk), ("redis", rd)):
        after = int(info_fields(c.call("INFO", "commandstats"))[1]["cmdstat_get"]
                    .split(",")[0][6:])
        check(after - before[name] == 21, "%s: INFO commandstats counted %d GETs of 21"
              % (name, after - before[name]))
    rk.call("DEL", "info:k")
    rd.call("DEL", "info:k")


def client_ids(listing):
    body = listing.split(b"\r\n", 1)[1]
    if body.startswith(b"txt:"):
        body = body[4:]
    return [dict(f.split(b"=", 1) for f in line.split(b" ") if b"=" in f)
            for line in body.rstrip(b"\r\n").split(b"\n") if line]


def client_cases(rk, rd):
    """CLIENT LIST and CLIENT KILL over several connections (on both of
    ringkv's cores): what each lists, who is killed, the counts and the
    errors, as Redis 7.0 answers them."""
    s = lambda *a: same(rk, rd, *a)  # noqa: E731
    for args in (("CLIENT", "KILL"), ("CLIENT", "KILL", "ID"), ("CLIENT", "KILL", "ID", "0"),
                 ("CLIENT", "KILL", "ID", "x"), ("CLIENT", "KILL", "ID", "-3"),
                 ("CLIENT", "KILL", "FOO", "bar"), ("CLIENT", "KILL", "ID", "5", "SKIPME"),
                 ("CLIENT", "KILL", "TYPE", "foo", "ID"), ("CLIENT", "KILL", "TYPE", "master"),
                 ("CLIENT", "KILL", "TYPE", "pubsub", "ID", "99999"),
                 ("CLIENT", "KILL", "USER", "nosuchuser"), ("CLIENT", "KILL", "SKIPME", "maybe"),
                 ("CLIENT", "KILL", "ID", "999999999"), ("CLIENT", "KILL", "1.2.3.4:5"),
                 ("CLIENT", "KILL", "ADDR", "1.2.3.4:5"), ("CLIENT", "LIST", "TYPE", "foo"),
                 ("CLIENT", "LIST", "TYPE", "replica"), ("CLIENT", "LIST", "ID", "x"),
                 ("CLIENT", "LIST", "ID", "999999999", "-1"), ("CLIENT", "LIST", "FOO"),
                 ("CLIENT", "LIST", "TYPE", "normal", "ID")):
        s(*args)
    for name, c, port in (("ringkv", rk, BASE + 1), ("redis", rd, BASE + 2)):
        others = [Conn(port) for _ in range(6)]
        for i, o in enumerate(others):
            o.call("CLIENT", "SETNAME", "other%d" % i)
        me = int(c.call("CLIENT", "ID")[1:-2])
        ids = {}
        for o in others:
            ids[int(o.call("CLIENT", "ID")[1:-2])] = o
        listed = client_ids(c.call("CLIENT", "LIST"))
        names = {e[b"name"] for e in listed}
        check(all(b"other%d" % i in names for i in range(6)) and
              {int(e[b"id"]) for e in listed} >= set(ids) | {me},
              "%s: CLIENT LIST shows every connection: %r" % (name, names))
        one = client_ids(c.call("CLIENT", "LIST", "ID", str(me), "99999999"))
        check(len(one) == 1 and int(one[0][b"id"]) == me, "%s: CLIENT LIST ID: %r" % (name, one))
        info = client_ids(c.call("CLIENT", "INFO"))
        check(len(info) == 1 and int(info[0][b"id"]) == me and
              info[0][b"addr"] == one[0][b"addr"], "%s: CLIENT INFO %r" % (name, info))
        victims = list(ids)[:3]
        got = c.call("CLIENT", "KILL", "ID", str(victims[0]))
        check(got == b":1\r\n", "%s: CLIENT KILL ID answers %r" % (name, got))
        # By address, old form and new.
        addr = client_ids(ids[victims[1]].call("CLIENT", "INFO"))[0][b"addr"]
        got = c.call("CLIENT", "KILL", addr)
        check(got == b"+OK\r\n", "%s: CLIENT KILL addr answers %r" % (name, got))
        addr = client_ids(ids[victims[2]].call("CLIENT", "INFO"))[0][b"addr"]
        got = c.call("CLIENT", "KILL", "ADDR", addr, "SKIPME", "yes")
        check(got == b":1\r\n", "%s: CLIENT KILL ADDR answers %r" % (name, got))
        for v in victims:
            try:
                dead = ids[v].call("PING") != b"+PONG\r\n"
            except OSError:
                dead = True
            check(dead, "%s: a killed connection still answers" % name)
        left = {int(e[b"id"]) for e in client_ids(c.call("CLIENT", "LIST"))}
        check(not (left & set(victims)) and set(list(ids)[3:]) <= left,
              "%s: after the kills CLIENT LIST shows %r" % (name, left))
        # Its own id: skipped by default, killed (after its answer) with SKIPME no.
        check(c.call("CLIENT", "KILL", "ID", str(me)) == b":0\r\n", "%s: SKIPME yes" % name)
        victim = ids[list(ids)[3]]
        vid = victim.call("CLIENT", "ID")[1:-2]
        got = victim.call("CLIENT", "KILL", "ID", vid.decode(), "SKIPME", "no")
        check(got == b":1\r\n", "%s: killing itself answers %r" % (name, got))
        try:
            victim.send("PING")
            closed = victim.sock.recv(100) == b""
        except OSError:
            closed = True
        check(closed, "%s: a connection that killed itself is closed" % name)
        for o in others:
            o.sock.close()


def hello_cases(rk, rd):
    s = lambda *a: same(rk, rd, *a)  # noqa: E731
    for args in (("HELLO", "4"), ("HELLO", "1"), ("HELLO", "0"), ("HELLO", "-1"),
                 ("HELLO", "abc"), ("HELLO", "3", "FOO"), ("HELLO", "3", "SETNAME"),
                 ("HELLO", "3", "AUTH", "x"), ("HELLO", "3", "SETNAME", "a b")):
        s(*args)
    # Without users, the default user takes any password (Redis's nopass).
    for args in (("AUTH", "default", "anything"), ("AUTH", "Default", "x"), ("AUTH", "bob", "x"),
                 ("AUTH", "x"), ("AUTH", "a", "b", "c")):
        s(*args)
    a, b = rk.call("HELLO", "2", "AUTH", "bob", "x"), rd.call("HELLO", "2", "AUTH", "bob", "x")
    check(a == b and a.startswith(b"-WRONGPASS"), "HELLO AUTH bob: %r %r" % (a, b))
    a, b = rk.call("HELLO", "2", "AUTH", "default", "x"), rd.call("HELLO", "2", "AUTH", "default", "x")
    check(shape(a) == shape(b) and a.startswith(b"*14"), "HELLO AUTH default: %r %r" % (a, b))
    # Refused HELLOs changed nothing: still RESP2.
    s("GET", "missing")
    for proto in ("3", "2", "3"):
        a, b = rk.call("HELLO", proto), rd.call("HELLO", proto)
        check(shape(a) == shape(b), "HELLO %s: shape ringkv %r, redis %r"
              % (proto, shape(a), shape(b)))
        head = b"%7\r\n" if proto == "3" else b"*14\r\n"
        check(a.startswith(head) and (b":%s\r\n" % proto.encode()) in a,
              "HELLO %s answers %r" % (proto, a[:60]))
        s("GET", "missing")
    # HELLO without a version answers in the protocol in use, keeps it.
    a, b = rk.call("HELLO"), rd.call("HELLO")
    check(a.startswith(b"%7\r\n") and shape(a) == shape(b), "HELLO: %r" % a[:40])
    # SETNAME with HELLO.
    for c in (rk, rd):
        c.call("HELLO", "3", "SETNAME", "named")
    s("CLIENT", "GETNAME")
    for c in (rk, rd):
        c.call("HELLO", "2")
    s("CLIENT", "GETNAME")


def cli_cases(rk_port, rd_port):
    """redis-cli -3 renders both servers' RESP3 answers alike."""
    if not shutil.which("redis-cli"):
        return
    for args in (["DEBUG", "PROTOCOL", "map"], ["DEBUG", "PROTOCOL", "set"],
                 ["DEBUG", "PROTOCOL", "double"], ["DEBUG", "PROTOCOL", "bignum"],
                 ["DEBUG", "PROTOCOL", "verbatim"], ["DEBUG", "PROTOCOL", "true"],
                 ["DEBUG", "PROTOCOL", "null"], ["DEBUG", "PROTOCOL", "attrib"],
                 ["GET", "nosuchkey"], ["CONFIG", "GET", "timeout"]):
        outs = [subprocess.run(["redis-cli", "-3", "-h", HOST, "-p", str(p)] + args,
                               capture_output=True, text=True, timeout=10).stdout
                for p in (rk_port, rd_port)]
        check(outs[0] == outs[1], "redis-cli -3 %s: ringkv %r, redis %r"
              % (" ".join(args), outs[0], outs[1]))


def desync(port, seq):
    """Sends `seq`, then bytes that never end a line, for at most 30 s,
    reading meanwhile: what the server answered, and whether a send failed
    (the server closed the connection, not only its sending side), which is
    what Redis's "protocol desync" tests wait for."""
    s = socket.create_connection((HOST, port), timeout=10)
    s.sendall(seq)
    s.setblocking(False)
    got, closed, eof, start = b"", False, False, time.time()
    try:
        while time.time() - start < 30 and not closed:
            r, w, _ = select.select([] if eof else [s], [s], [], 0.5)
            if r:
                try:
                    chunk = s.recv(4096)
                except OSError:
                    chunk = b""
                eof = not chunk
                got += chunk
            if w:
                try:
                    s.send(b"payload" * 146)
                except OSError:
                    closed = True
        try:
            got += s.recv(4096)  # what was queued before a reset
        except OSError:
            pass
    finally:
        s.close()
    return got, closed


def desync_cases(rk_port, rd_port):
    # Both answer a protocol error (Redis after 64 KiB without a line end,
    # ringkv at the first byte that cannot start a command: other texts)
    # and close the connection while the client still sends (ringkv a
    # second after the error: server/redis.c's desync_close).
    for seq in (b"\x00", b"*\x00", b"$\x00"):
        (a, a_closed), (b, b_closed) = desync(rk_port, seq), desync(rd_port, seq)
        check(b"Protocol error" in a and b"Protocol error" in b,
              "desync %r: ringkv %r, redis %r" % (seq, a[:100], b[:100]))
        check(a_closed and b_closed, "desync %r: closed: ringkv %s, redis %s"
              % (seq, a_closed, b_closed))


def wait_ping(port):
    for _ in range(200):
        try:
            c = Conn(port)
            if c.call("PING") == b"+PONG\r\n":
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("FAIL: nothing answers on %s:%d" % (HOST, port))


def main():
    ringkvd = sys.argv[1]
    if not shutil.which("redis-server"):
        print("SKIP: redis-server not installed")
        return 77
    work = tempfile.mkdtemp(prefix="ringkv-resp3-")
    procs = []
    try:
        procs.append(subprocess.Popen(
            [ringkvd, "--listen", "%s:%d" % (HOST, BASE), "--resp-listen",
             "%s:%d" % (HOST, BASE + 1), "--cores", "2", "--data-dir", work + "/data"],
            stdout=open(work + "/ringkvd.log", "w"), stderr=subprocess.STDOUT))
        procs.append(subprocess.Popen(
            ["redis-server", "--bind", HOST, "--port", str(BASE + 2), "--save", "",
             "--appendonly", "no", "--dir", work, "--enable-debug-command", "yes"],
            stdout=open(work + "/redis.log", "w"), stderr=subprocess.STDOUT))
        wait_ping(BASE + 1)
        wait_ping(BASE + 2)
        rk, rd = Conn(BASE + 1), Conn(BASE + 2)
        protocol_cases(rk, rd, False)
        info_cases(rk, rd)
        client_cases(rk, rd)
        hello_cases(rk, rd)
        check(rk.call("HELLO", "3")[:4] == rd.call("HELLO", "3")[:4], "HELLO 3")
        protocol_cases(rk, rd, True)
        info_cases(rk, rd)
        client_cases(rk, rd)
        rk.call("HELLO", "2")
        rd.call("HELLO", "2")
        protocol_cases(rk, rd, False)
        # A new connection starts in RESP2 whatever another one chose.
        rk3, rd3 = Conn(BASE + 1), Conn(BASE + 2)
        rk3.call("HELLO", "3")
        rd3.call("HELLO", "3")
        same(Conn(BASE + 1), Conn(BASE + 2), "GET", "missing")
        cli_cases(BASE + 1, BASE + 2)
        desync_cases(BASE + 1, BASE + 2)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)
    for f in failures:
        print("FAIL", f)
    print("resp_resp3: %d differences" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
