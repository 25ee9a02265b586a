#!/usr/bin/env python3
"""Key expiry in a 3-node cluster: every replica, and after kill -9.

Three ringkvd nodes (127.0.17.31-33, every shard on all three). Keys are
written through node 1 with PX (short), EX (long) and no deadline; then,
through every node:
- before the short deadline, each replica's own copy (a stale read through
  libringkv: that node's applied state, no forwarding) holds the value and
  PTTL through every node is within the time set;
- once the deadline passed (by this machine's clock, which the nodes
  share), GET, EXISTS, TTL and KEYS through every node, and every node's
  own copy, show the key gone;
- 200 keys set with PX: counted by DBSIZE and INFO's `expires=` through
  every node while live, left out of DBSIZE as soon as they are due (the
  deadline index of each shard's leader, before any delete applies), and
  deleted by the leaders' background expiry (INFO's expired_keys, summed
  over the nodes, counts them and 'short', with no read of them); RANDOMKEY through every node answers
  each live key in time, and never a due one;
- every node is killed with SIGKILL and restarted on its data: the long
  key's absolute deadline (PEXPIRETIME) is the one it had, on every node,
  the plain key has none, the expired key stays gone, and a key set with
  PX before the kill expires on time after the restart; `expires=` counts
  the two keys with a deadline again once the indexes are rebuilt, and
  DBSIZE leaves 'later' out as soon as it is due.
Through followers too: keys are read through all three nodes, so two of
three requests are forwarded to the shard's leader.

usage: resp_cluster_expiry.py RINGKVD LIBRINGKV_SO
"""
import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp_strings import Conn  # noqa: E402
from ringkv_test import Native, start_cluster_node  # noqa: E402

HOSTS = ["127.0.17.31", "127.0.17.32", "127.0.17.33"]
PEER, NATIVE, RESP = 37041, 37042, 37043
WAIT_S = 60  # a shared, slow machine: generous; correctness is not loosened


def start_node(ringkvd, data, i):
    return start_cluster_node(ringkvd, data, HOSTS, i, (PEER, NATIVE, RESP))


def connect_when_up(host, port):
    """A connection that answers PING: a node being killed (its io_uring
    torn down after the process is gone) may still accept, then reset."""
    deadline = time.time() + WAIT_S
    while True:
        try:
            c = Conn(host, port)
            if c.call("PING") == b"+PONG\r\n":
                return c
            c.sock.close()
        except OSError:
            if time.time() > deadline:
                raise
        time.sleep(0.1)


def wait_gone(host, port):
    """Until nothing accepts on the port any more (the killed node's
    sockets are closed once the kernel has torn its rings down)."""
    deadline = time.time() + WAIT_S
    while time.time() < deadline:
        try:
            Conn(host, port).sock.close()
        except OSError:
            return
        time.sleep(0.1)
    raise RuntimeError("%s:%d still accepts after the node was killed" % (host, port))


def call_ok(conn, *args):
    """A reply, retried while the cluster elects leaders (after a restart)."""
    deadline = time.time() + WAIT_S
    while True:
        got = conn.call(*args)
        if not got.startswith(b"-") or time.time() > deadline:
            return got
        time.sleep(0.2)


def integer(reply):
    if not reply.startswith(b":"):
        raise RuntimeError("expected an integer, got %r" % reply)
    return int(reply[1:-2])


def stale_until(native, node, key, want):
    """A follower applies a little after its leader answered: polled."""
    deadline = time.time() + WAIT_S
    got = native.get_stale(node, key)
    while got != want and time.time() < deadline:
        time.sleep(0.1)
        got = native.get_stale(node, key)
    return got


def keyspace_field(conn, name):
    """A figure of INFO keyspace's db0 line (keys=, expires=), or None."""
    text = conn.call("INFO", "keyspace")
    at = text.find(name.encode() + b"=")
    if at < 0:
        return None
    end = at + len(name) + 1
    while text[end:end + 1].isdigit():
        end += 1
    return int(text[at + len(name) + 1:end])


def expires(conn):
    """INFO keyspace's expires= figure."""
    return keyspace_field(conn, "expires")


def main():
    ringkvd, so = sys.argv[1], sys.argv[2]
    data = tempfile.mkdtemp(prefix="ringkv-resp-cluster-expiry-")
    procs = [start_node(ringkvd, data, i) for i in range(3)]
    native = None
    failures = []
    finished = False

    def check(ok, what):
        if not ok:
            failures.append(what)
            print("FAIL:", what, flush=True)

    try:
        nodes = [connect_when_up(h, RESP) for h in HOSTS]
        for i, c in enumerate(nodes):
            check(call_ok(c, "SET", "ready:%d" % i, "1") == b"+OK\r\n", "node %d writable" % i)
        native = Native(so, ["%s:%d" % (h, NATIVE) for h in HOSTS])
        short_ms = 4000
        t0 = time.time()
        check(nodes[0].call("SET", "short", "s", "PX", short_ms) == b"+OK\r\n", "SET PX")
        check(nodes[0].call("SET", "long", "l", "EX", 100000) == b"+OK\r\n", "SET EX")
        check(nodes[0].call("SET", "plain", "p") == b"+OK\r\n", "SET")
        short_at = integer(nodes[0].call("PEXPIRETIME", "short"))
        long_at = integer(nodes[0].call("PEXPIRETIME", "long"))
        check(abs(short_at - (t0 * 1000 + short_ms)) < 2000,
              "PEXPIRETIME short %d, set at %d + %d" % (short_at, t0 * 1000, short_ms))
        # Before the deadline: on every replica, through every node.
        for i in range(3):
            check(stale_until(native, i, b"short", b"s") == b"s",
                  "node %d's own copy of 'short' before its deadline" % (i + 1))
            if time.time() * 1000 < short_at - 500:
                pttl = integer(nodes[i].call("PTTL", "short"))
                check(0 < pttl <= short_ms, "PTTL short through node %d: %d" % (i + 1, pttl))
            check(integer(nodes[i].call("TTL", "plain")) == -1, "TTL plain node %d" % (i + 1))
            check(integer(nodes[i].call("PEXPIRETIME", "long")) == long_at,
                  "PEXPIRETIME long node %d" % (i + 1))
        # After it: gone everywhere, by every read.
        while time.time() * 1000 <= short_at + 50:
            time.sleep(0.05)
        for i in range(3):
            check(nodes[i].call("GET", "short") == b"$-1\r\n", "GET short node %d" % (i + 1))
            check(integer(nodes[i].call("EXISTS", "short")) == 0, "EXISTS node %d" % (i + 1))
            check(integer(nodes[i].call("TTL", "short")) == -2, "TTL short node %d" % (i + 1))
            keys = nodes[i].call("KEYS", "*")
            check(b"short" not in keys and b"long" in keys, "KEYS node %d: %r" % (i + 1, keys))
            check(native.get_stale(i, b"short") is None,
                  "node %d's own copy of 'short' after its deadline" % (i + 1))
        # Active expiry: 200 keys with PX through all nodes; once due, the
        # leaders' EXPIRE_DELETEs remove them from the stored count without
        # any read (DBSIZE counts stored keys, expired or not).
        # PX 4000: the 200 writes take over a second on a loaded machine,
        # and the counts are checked only while the first key's deadline
        # is 300 ms away or more.
        first_due = time.time() * 1000 + 4000  # no bulk deadline is earlier
        for i in range(200):
            check(nodes[i % 3].call("SET", "bulk:%d" % i, "x", "PX", 4000) == b"+OK\r\n",
                  "SET bulk:%d PX" % i)
        bulk_at = time.time() * 1000 + 4000  # no bulk deadline is later
        live = 5  # ready:0-2, long, plain
        for i in range(3):
            if time.time() * 1000 >= first_due - 300:
                print("note: DBSIZE node %d with the bulk keys not checked (too slow)" % (i + 1))
            else:
                got = integer(nodes[i].call("DBSIZE"))
                check(got == live + 200, "DBSIZE node %d with the bulk keys: %d" % (i + 1, got))
                got = expires(nodes[i])
                check(got == 201, "INFO expires= node %d with the bulk keys: %r" % (i + 1, got))
        # Due: left out at once, before active expiry (100 ms passes) and
        # its deletes can have applied.
        while time.time() * 1000 <= bulk_at + 20:
            time.sleep(0.01)
        for i in range(3):
            got = integer(nodes[i].call("DBSIZE"))
            check(got == live, "DBSIZE node %d just past the bulk deadline: %d" % (i + 1, got))
            check(expires(nodes[i]) == 1, "INFO expires= node %d: %r" % (i + 1, expires(nodes[i])))
        for i in range(3):
            deadline = time.time() + WAIT_S
            got = integer(nodes[i].call("DBSIZE"))
            while got != live and time.time() < deadline:
                time.sleep(0.2)
                got = integer(nodes[i].call("DBSIZE"))
            check(got == live, "DBSIZE through node %d: %d, %d keys live" % (i + 1, got, live))
        # The leaders' deletes, counted by the nodes that made them (INFO's
        # expired_keys): the 200 bulk keys and 'short' (ringkv's reads never
        # delete). DBSIZE no longer shows them: it leaves due keys out.
        def expired_total():
            total = 0
            for i in range(3):
                text = nodes[i].call("INFO", "stats")
                at = text.find(b"expired_keys:")
                if at < 0:
                    return -1
                total += int(text[at + 13:text.find(b"\r\n", at)])
            return total
        deadline = time.time() + WAIT_S
        total = expired_total()
        while total < 201 and time.time() < deadline:
            time.sleep(0.2)
            total = expired_total()
        check(total == 201, "INFO expired_keys summed over the nodes: %d" % total)
        # RANDOMKEY through every node: only live keys (the 200 due ones,
        # deleted or not yet, never), and each of them in time (shards
        # spread over the nodes' cores, most led by another node).
        names = [b"ready:0", b"ready:1", b"ready:2", b"long", b"plain"]
        for i in range(3):
            seen = set()
            for _ in range(1500):
                got = nodes[i].call("RANDOMKEY")
                key = got.split(b"\r\n")[1] if got.startswith(b"$") and got != b"$-1\r\n" else got
                if key not in names:
                    check(False, "RANDOMKEY through node %d: %r" % (i + 1, got))
                    break
                seen.add(key)
                if len(seen) == len(names):
                    break
            check(len(seen) == len(names), "RANDOMKEY through node %d saw %r" % (i + 1, seen))
        # A key that expires after the restart.
        check(nodes[1].call("SET", "later", "x", "PX", 15000) == b"+OK\r\n", "SET later PX")
        later_at = integer(nodes[1].call("PEXPIRETIME", "later"))
        for i in range(3):
            check(stale_until(native, i, b"later", b"x") == b"x",
                  "node %d's own copy of 'later'" % (i + 1))
        native.close()
        native = None
        for c in nodes:
            c.sock.close()
        # kill -9 every node, restart them on their data.
        for p in procs:
            p.send_signal(signal.SIGKILL)
        for p in procs:
            p.wait()
        for h in HOSTS:
            wait_gone(h, RESP)
        procs = [start_node(ringkvd, data, i) for i in range(3)]
        nodes = [connect_when_up(h, RESP) for h in HOSTS]
        for i in range(3):
            check(call_ok(nodes[i], "PEXPIRETIME", "long") == b":%d\r\n" % long_at,
                  "PEXPIRETIME long after restart, node %d" % (i + 1))
            check(call_ok(nodes[i], "TTL", "plain") == b":-1\r\n", "TTL plain after restart")
            check(call_ok(nodes[i], "GET", "short") == b"$-1\r\n", "short after restart")
            got = call_ok(nodes[i], "PEXPIRETIME", "later")
            check(got == b":%d\r\n" % later_at or time.time() * 1000 > later_at,
                  "PEXPIRETIME later after restart, node %d: %r" % (i + 1, got))
        for i in range(3):
            deadline = time.time() + WAIT_S
            got = expires(nodes[i])
            while got != 2 and time.time() < deadline and time.time() * 1000 < later_at - 500:
                time.sleep(0.1)
                got = expires(nodes[i])
            check(got == 2 or time.time() * 1000 >= later_at - 500,
                  "INFO expires= node %d after restart: %r" % (i + 1, got))
        native = Native(so, ["%s:%d" % (h, NATIVE) for h in HOSTS])
        for i in range(3):
            check(stale_until(native, i, b"long", b"l") == b"l",
                  "node %d's own copy of 'long' after restart" % (i + 1))
        while time.time() * 1000 <= later_at + 20:
            time.sleep(0.01)
        for i in range(3):
            got = integer(nodes[i].call("DBSIZE"))
            check(got == live, "DBSIZE node %d just past 'later' after restart: %d" % (i + 1, got))
        for i in range(3):
            check(call_ok(nodes[i], "GET", "later") == b"$-1\r\n",
                  "GET later past its deadline after restart, node %d" % (i + 1))
            check(native.get_stale(i, b"later") is None,
                  "node %d's own copy of 'later' past its deadline" % (i + 1))
            check(call_ok(nodes[i], "GET", "long") == b"$1\r\nl\r\n", "GET long node %d" % i)
        finished = True
    finally:
        if native:
            native.close()
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait()
        if failures or not finished:
            print("data (and the nodes' logs) kept in", data)
        else:
            shutil.rmtree(data, ignore_errors=True)
    for f in failures:
        print("FAIL:", f)
    print("resp_cluster_expiry: %d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
