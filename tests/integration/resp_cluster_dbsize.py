#!/usr/bin/env python3
"""DBSIZE exact in a 3-node cluster once SSTables exist (issue 21).

Three ringkvd nodes (127.0.53.41-43, four shards, every shard on all three,
64 KiB memtables so that every shard flushes tables early). The same
commands go to the cluster (spread over the three nodes: two of three are
forwarded) and, when redis-server is installed, to a redis-server of this
test; a model (a dict) says what Redis answers. After each phase DBSIZE
through every node, and INFO keyspace's keys=, must equal the model (and
Redis's DBSIZE):
- 3000 new keys; the test then checks every shard of every node holds
  SSTables (so no count below is the memtables' alone);
- 1500 of them overwritten (their old values in tables), twice for 1000;
- 1000 deleted (half of them overwritten before), 300 DELs of keys nobody
  set (tombstones of nothing), 200 of the deleted set again;
- 300 keys set with PX 1500 and one old key given PX 1500: counted while
  live, not counted once past their deadline (Redis's figure is taken once
  its own expiry removed them);
- 20000 more keys: a shard's count takes several steps;
- DBSIZE asked again with no write between answers the same without
  counting again (INFO stats' ringkv_dbsize_scans, summed over the nodes),
  and one SET makes its shard counted again;
- 200 keys set with PX 6000, then 20000 more keys (so the 200 are in
  tables), every node killed with SIGKILL and restarted: once the 200 are
  due, DBSIZE leaves them out although no deadline index is rebuilt yet
  (that waits a minute after a start).
The count before this change (each table's values less its tombstones)
fails the overwrite and delete phases here.

usage: resp_cluster_dbsize.py RINGKVD
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp_cluster_expiry import (call_ok, connect_when_up, integer, keyspace_field,  # noqa: E402
                                 wait_gone)
from ringkv_test import start_cluster_node  # noqa: E402

HOSTS = ["127.0.53.41", "127.0.53.42", "127.0.53.43"]
BASE = 53000 + 3 * (os.getpid() % 300)
PEER, NATIVE, RESP = BASE, BASE + 1, BASE + 2
REDIS_HOST = "127.0.53.44"
WAIT_S = 60
EXTRA = ["--shards", "4", "--memtable-size", "64KiB"]

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what, flush=True)


class Both:
    """Each command to the cluster (node i % 3 for the i-th) and to Redis,
    pipelined in batches; the model follows Redis's semantics."""

    def __init__(self, nodes, redis):
        self.nodes, self.redis = nodes, redis
        self.model = {}   # key -> deadline (0: none), in seconds on this clock
        self.sent = 0

    def run(self, cmds):
        for batch in range(0, len(cmds), 200):
            part = cmds[batch:batch + 200]
            targets = []
            for args in part:
                c = self.nodes[self.sent % 3]
                self.sent += 1
                c.send(*args)
                targets.append(c)
                if self.redis:
                    self.redis.send(*args)
            for args, c in zip(part, targets):
                got = c.reader.raw_reply()
                want = self.apply(args)
                check(got == want, "%r answered %r, Redis %r" % (args, got, want))
                if self.redis:
                    r = self.redis.reader.raw_reply()
                    check(r == want, "redis-server answered %r to %r, the model %r"
                          % (r, args, want))

    def apply(self, args):
        now = time.time()
        op = args[0]
        if op == "SET":
            deadline = 0
            if len(args) == 5 and args[3] == "PX":
                deadline = now + args[4] / 1000.0
            self.model[args[1]] = deadline
            return b"+OK\r\n"
        if op == "DEL":
            d = self.model.pop(args[1], None)
            return b":1\r\n" if d is not None and (d == 0 or d > now) else b":0\r\n"
        if op == "PEXPIRE":
            d = self.model.get(args[1])
            if d is None or (d and d <= now):
                return b":0\r\n"
            self.model[args[1]] = now + args[2] / 1000.0
            return b":1\r\n"
        raise ValueError(op)

    def expected(self):
        now = time.time()
        return sum(1 for d in self.model.values() if d == 0 or d > now)


def dbsize_everywhere(both, what):
    want = both.expected()
    for i, c in enumerate(both.nodes):
        got = integer(call_ok(c, "DBSIZE"))
        check(got == want, "%s: DBSIZE through node %d = %d, Redis %d" % (what, i + 1, got, want))
        k = keyspace_field(c, "keys")
        check(k == want, "%s: INFO keys= through node %d = %r, Redis %d" % (what, i + 1, k, want))
    if both.redis:
        got = integer(both.redis.call("DBSIZE"))
        check(got == want, "%s: redis-server's DBSIZE %d, the model %d" % (what, got, want))
    print("%s: DBSIZE %d on every node" % (what, want), flush=True)
    return want


def count_scans(nodes):
    """Counting passes of every node (INFO stats' ringkv_dbsize_scans)."""
    total = 0
    for c in nodes:
        text = c.call("INFO", "stats")
        at = text.find(b"ringkv_dbsize_scans:")
        total += int(text[at:].split(b"\r\n", 1)[0].split(b":")[1])
    return total


def tables(data, node):
    """Directories (one a shard replica) of the node holding an SSTable."""
    n = 0
    for _, _, files in os.walk(os.path.join(data, "n%d" % node)):
        n += any(f.endswith(".sst") for f in files)
    return n


def log_tails(paths):
    """The last lines of each log, after a failure."""
    for path in paths:
        try:
            with open(path, errors="replace") as f:
                print("--- %s (tail) ---" % os.path.basename(path))
                print("".join(f.readlines()[-30:]))
        except OSError:
            pass


def verdict(failed):
    """The exit status, with the count of failed checks."""
    if failed:
        print("%d check(s) failed" % len(failed))
        return 1
    print("ok")
    return 0


def main():
    ringkvd = sys.argv[1]
    data = tempfile.mkdtemp(prefix="ringkv-resp-dbsize-")
    procs = []
    redis_proc = None
    finished = False
    try:
        procs = [start_cluster_node(ringkvd, data, HOSTS, i, (PEER, NATIVE, RESP), EXTRA)
                 for i in range(3)]
        redis = None
        if shutil.which("redis-server"):
            redis_port = BASE + 2  # another address: no clash with the nodes
            redis_proc = subprocess.Popen(
                ["redis-server", "--bind", REDIS_HOST, "--port", str(redis_port), "--save", "",
                 "--appendonly", "no", "--dir", data],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            redis = connect_when_up(REDIS_HOST, redis_port)
        else:
            print("redis-server not installed: the model alone", flush=True)
        nodes = [connect_when_up(h, RESP) for h in HOSTS]
        for i, c in enumerate(nodes):
            check(call_ok(c, "SET", "ready:%d" % i, "1") == b"+OK\r\n", "node %d writable" % i)
            if redis:
                redis.call("SET", "ready:%d" % i, "1")
        both = Both(nodes, redis)
        for i in range(3):
            both.model["ready:%d" % i] = 0
        val = "v" * 100
        both.run([("SET", "k%d" % i, val + str(i)) for i in range(3000)])
        dbsize_everywhere(both, "3000 new keys")
        deadline = time.time() + WAIT_S
        while min(tables(data, n) for n in (1, 2, 3)) < 4 and time.time() < deadline:
            time.sleep(0.2)
        held = [tables(data, n) for n in (1, 2, 3)]
        check(min(held) >= 4, "every shard on every node holds SSTables (%r)" % held)
        print("shards holding SSTables, per node:", held, flush=True)

        both.run([("SET", "k%d" % i, "w" + str(i)) for i in range(1500)])
        dbsize_everywhere(both, "1500 overwritten")
        both.run([("SET", "k%d" % i, "x" * 90 + str(i)) for i in range(500, 1500)])
        dbsize_everywhere(both, "1000 overwritten again")
        both.run([("DEL", "k%d" % i) for i in range(1000, 2000)])
        dbsize_everywhere(both, "1000 deleted")
        both.run([("DEL", "nokey%d" % i) for i in range(300)])
        dbsize_everywhere(both, "300 DELs of keys nobody set")
        both.run([("SET", "k%d" % i, "again") for i in range(1000, 1200)])
        dbsize_everywhere(both, "200 deleted keys set again")

        both.run([("SET", "exp%d" % i, "e", "PX", 1500) for i in range(300)] +
                 [("PEXPIRE", "k0", 1500)])
        dbsize_everywhere(both, "301 keys with a deadline, live")
        time.sleep(1.7)
        if redis:
            # Redis's DBSIZE counts a key past its deadline until its own
            # expiry removes it: its figure once that is done.
            deadline = time.time() + WAIT_S
            while integer(redis.call("DBSIZE")) != both.expected() and time.time() < deadline:
                time.sleep(0.1)
        dbsize_everywhere(both, "301 keys past their deadline")
        # More keys than one counting step examines (4096) on every shard.
        both.run([("SET", "b%d" % i, "b") for i in range(20000)])
        dbsize_everywhere(both, "20000 more keys (several counting steps a shard)")
        # The count of a shard is kept until it applies another entry.
        time.sleep(1)  # active expiry's deletes all applied
        first = [integer(c.call("DBSIZE")) for c in nodes]
        scans = count_scans(nodes)
        again = [integer(c.call("DBSIZE")) for c in nodes]
        check(first == again, "DBSIZE with no write between: %r then %r" % (first, again))
        check(count_scans(nodes) == scans, "DBSIZE with no write between scanned again "
              "(%d scans, then %d)" % (scans, count_scans(nodes)))
        both.run([("SET", "k1", "one more")])
        dbsize_everywhere(both, "after one SET")
        check(count_scans(nodes) > scans, "one SET: its shard counted again")

        # Keys with a deadline held in tables when every node is killed:
        # after the restart (deadline indexes not rebuilt for a minute),
        # DBSIZE leaves them out once they are due.
        late_ms = 6000
        both.run([("SET", "late%d" % i, "l", "PX", late_ms) for i in range(200)])
        late_at = time.time() + late_ms / 1000.0
        both.run([("SET", "c%d" % i, "c") for i in range(20000)])  # flushed below these
        dbsize_everywhere(both, "200 keys with a deadline, then 20000 more")
        for p in procs:
            p.send_signal(signal.SIGKILL)
        for p in procs:
            p.wait()
        for h in HOSTS:
            wait_gone(h, RESP)
        procs = [start_cluster_node(ringkvd, data, HOSTS, i, (PEER, NATIVE, RESP), EXTRA)
                 for i in range(3)]
        nodes = [connect_when_up(h, RESP) for h in HOSTS]
        both.nodes = nodes
        for i, c in enumerate(nodes):
            # Writes to every shard through every node (keys the model
            # holds, overwritten): leaders elected.
            for k in range(16):
                check(call_ok(c, "SET", "k%d" % (2000 + 16 * i + k), "r") == b"+OK\r\n",
                      "node %d writable after the restart" % (i + 1))
        while time.time() < late_at + 0.5:
            time.sleep(0.1)
        if redis:
            deadline = time.time() + WAIT_S
            while integer(redis.call("DBSIZE")) != both.expected() and time.time() < deadline:
                time.sleep(0.1)
        dbsize_everywhere(both, "after kill -9 and restart, 200 keys past their deadline")
        finished = True
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
        if redis_proc:
            redis_proc.kill()
            redis_proc.wait()
        if failures or not finished:
            log_tails([os.path.join(data, "n%d.log" % n) for n in (1, 2, 3)])
        shutil.rmtree(data, ignore_errors=True)
    return verdict(failures)


if __name__ == "__main__":
    sys.exit(main())
