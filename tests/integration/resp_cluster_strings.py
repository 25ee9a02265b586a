#!/usr/bin/env python3
"""Read-modify-write string commands in a 3-node cluster, through followers.

Three ringkvd nodes (127.0.17.11-13, every shard on all three) and one
redis-server. INCRBYFLOAT, SETRANGE, SETBIT and APPEND are sent round-robin
through all three nodes' RESP ports, so for every key two of each three
commands enter through a node that does not lead the key's shard and are
forwarded to its leader. Each reply must equal a real Redis's reply to the
same sequence. Then every node's own copy of every key is read with a
stale read (libringkv's rkv_get_stale: that replica's applied state, no
forwarding) until it equals Redis's final value: every replica applied the
same commands to the same result.

Then the multi-key writes: MSETNX of keys on different shards is refused
with Redis Cluster's CROSSSLOT error and writes nothing; MSETNX, RENAME,
RENAMENX and COPY of keys sharing a hash tag ({u1}...) are accepted
through every node (so the tag decides the shard: without it the keys
spread over the 6 shards), answer as Redis does, and every node's copy of
every key they touched equals Redis's.

usage: resp_cluster_strings.py RINGKVD LIBRINGKV_SO
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp_strings import Conn  # noqa: E402
from ringkv_test import Native, start_cluster_node  # noqa: E402

HOSTS = ["127.0.17.11", "127.0.17.12", "127.0.17.13"]
PEER, NATIVE, RESP = 37031, 37032, 37033
REDIS = ("127.0.17.14", 37034)
WAIT_S = 30


def start(ringkvd, data):
    procs = [start_cluster_node(ringkvd, data, HOSTS, i, (PEER, NATIVE, RESP), log_mode="w")
             for i in range(len(HOSTS))]
    procs.append(subprocess.Popen(
        ["redis-server", "--bind", REDIS[0], "--port", str(REDIS[1]), "--save", "",
         "--appendonly", "no", "--dir", data],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs


def connect_when_up(host, port):
    deadline = time.time() + WAIT_S
    while True:
        try:
            return Conn(host, port)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def wait_writable(conns):
    """Until a write through every node succeeds (leaders elected)."""
    deadline = time.time() + WAIT_S
    for i, c in enumerate(conns):
        while c.call("SET", "ready:%d" % i, "1") != b"+OK\r\n":
            if time.time() > deadline:
                raise RuntimeError("node %d: no write succeeded in %d s" % (i + 1, WAIT_S))
            time.sleep(0.2)


def value_of(reply):
    """The bytes of a bulk-string reply, None for a null."""
    if reply.startswith(b"$-1"):
        return None
    return reply.split(b"\r\n", 1)[1][:-2]


CROSSSLOT = b"-CROSSSLOT Keys in request don't hash to the same slot\r\n"
TAGGED = ["{u1}.%d" % i for i in range(12)] + ["x{u1}y%d" % i for i in range(4)]
MULTI_KEYS = TAGGED + ["cross:%d" % i for i in range(12)]


def multi_key(nodes, redis):
    failures = []
    # Untagged keys spread over the shards: refused, nothing written.
    cross = MULTI_KEYS[len(TAGGED):]
    args = [a for k in cross for a in (k, "v")]
    for i, node in enumerate(nodes):
        got = node.call("MSETNX", *args)
        if got != CROSSSLOT:
            failures.append("MSETNX of %d untagged keys through node %d: %r" %
                            (len(cross), i + 1, got))
    refused = sum(nodes[0].call("RENAME", cross[0], k) == CROSSSLOT for k in cross[1:])
    if refused == 0:
        failures.append("RENAME %s onto 11 other untagged keys: never CROSSSLOT" % cross[0])
    if nodes[1].call("COPY", "{a}x", "{b}x") != CROSSSLOT and \
            nodes[1].call("COPY", "{a}x", "{c}x") != CROSSSLOT:
        failures.append("COPY between keys tagged {a}, {b}, {c}: never CROSSSLOT")
    # Tagged: one shard, atomic, as Redis answers; through every node.
    steps = [
        ("MSETNX",) + tuple(a for k in TAGGED[:8] for a in (k, "m:" + k)),
        ("MSETNX", TAGGED[8], "no", TAGGED[0], "no"),  # one exists: nothing set
        ("MSETNX",) + tuple(a for k in TAGGED[8:] for a in (k, "n:" + k)),
        ("RENAME", TAGGED[0], TAGGED[1]),
        ("RENAME", TAGGED[0], TAGGED[1]),            # no such key now
        ("RENAMENX", TAGGED[2], TAGGED[3]),           # exists: 0
        ("RENAMENX", TAGGED[2], "{u1}.new"),
        ("COPY", TAGGED[3], TAGGED[4]),               # exists: 0
        ("COPY", TAGGED[3], TAGGED[4], "REPLACE"),
        ("COPY", TAGGED[12], "{u1}.copy"),
        ("RENAME", TAGGED[13], TAGGED[13]),
        ("DEL", "{u1}.new", "{u1}.copy"),
        ("RENAME", TAGGED[14], "{u1}.new"),
    ]
    redis.call("DEL", *MULTI_KEYS, "{u1}.new", "{u1}.copy")
    for n, cmd in enumerate(steps):
        node = nodes[n % 3]
        got, want = node.call(*cmd), redis.call(*cmd)
        if got != want:
            failures.append("%r through node %d: %r, Redis %r" % (cmd, n % 3 + 1, got, want))
    return failures


def main():
    ringkvd, so = sys.argv[1], sys.argv[2]
    if not shutil.which("redis-server"):
        print("SKIP: redis-server not installed")
        return 77
    data = tempfile.mkdtemp(prefix="ringkv-resp-cluster-strings-")
    procs = start(ringkvd, data)
    native = None
    failures = []
    try:
        nodes = [connect_when_up(h, RESP) for h in HOSTS]
        redis = connect_when_up(*REDIS)
        wait_writable(nodes)
        keys = ["float:%d" % k for k in range(6)] + ["range:%d" % k for k in range(6)] + \
               ["bits:%d" % k for k in range(6)] + ["append:%d" % k for k in range(6)]
        for k in keys + MULTI_KEYS:
            redis.call("DEL", k)
        sent = 0
        for step in range(30):
            for k in keys:
                node = nodes[(step + sent) % 3]
                sent += 1
                kind = k.split(":")[0]
                if kind == "float":
                    cmd = ("INCRBYFLOAT", k, "%d.%d" % (step % 7 - 3, step % 10))
                elif kind == "range":
                    cmd = ("SETRANGE", k, (step * 7) % 40, "r%02d" % step)
                elif kind == "bits":
                    cmd = ("SETBIT", k, (step * 13) % 97, step % 3 != 0)
                else:
                    cmd = ("APPEND", k, "a%d" % step)
                cmd = tuple(int(a) if isinstance(a, bool) else a for a in cmd)
                got, want = node.call(*cmd), redis.call(*cmd)
                if got != want:
                    failures.append("%r through node %d: %r, Redis %r" %
                                    (cmd, nodes.index(node) + 1, got, want))
        failures += multi_key(nodes, redis)
        keys += MULTI_KEYS + ["{u1}.new", "{u1}.copy"]
        native = Native(so, ["%s:%d" % (h, NATIVE) for h in HOSTS])
        want = {k: value_of(redis.call("GET", k)) for k in keys}
        # Followers may apply a little after their leader answered: polled,
        # within one bound for the whole check.
        deadline = time.time() + WAIT_S
        while True:
            differ = [(i, k, have) for i in range(3) for k in keys
                      for have in [native.get_stale(i, k.encode())] if have != want[k]]
            if not differ or time.time() > deadline:
                break
            time.sleep(0.2)
        for i, k, have in differ:
            failures.append("node %d's copy of %s: %r, want %r" % (i + 1, k, have, want[k]))
    finally:
        if native:
            native.close()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if failures:
            for i in range(3):
                sys.stdout.write(open(os.path.join(data, "n%d.log" % (i + 1))).read()[-2000:])
        shutil.rmtree(data, ignore_errors=True)
    for f in failures:
        print("FAIL", f)
    print("resp_cluster_strings: %d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
