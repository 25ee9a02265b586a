#!/usr/bin/env python3
"""Sleeping groups (issue #18; raft/quiesce.c, docs/cluster/replica.md,
"Sleeping groups") on three real ringkvd processes.

- Idle, every group goes to sleep: ringkv_raft_groups_sleeping on each
  node reaches the shard count (R = 3: every node holds every shard).
- A write wakes its group (the gauge drops on some node right after it)
  and is acknowledged; the groups go back to sleep afterwards.
- kill -9 of the node that leads the most sleeping groups: node liveness
  (the per-node Heartbeats beacon) wakes their followers, and every shard
  the dead node led has a leader on a survivor within FAILOVER_BOUND
  seconds; writes through a survivor to every shard succeed within
  WRITE_BOUND seconds of the kill. The measured times are printed.

usage: test_sleeping_groups.py RINGKVD

Nodes on 127.0.18.1-3, ports 38000-38899 (the pid picks four of them),
2 cores, 48 shards. Exits 0 when every check passes, 1 otherwise, 77 when
prometheus_client is missing. Every process it starts, it stops.
"""
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_admin as adm  # noqa: E402  (re-executes under /usr/bin/python3 if needed)
from ringkv_test import (cluster_node_args, ringkvd_from_argv, wait_until,  # noqa: E402
                         work_dir)

SHARDS = int(os.environ.get("SLEEPING_SHARDS", "48"))  # more to measure failover at scale
NODES = {1: "127.0.18.1", 2: "127.0.18.2", 3: "127.0.18.3"}
BASE = 38000 + (os.getpid() % 225) * 4
PEER_PORT, CLIENT_PORT, ADMIN_PORT, RESP_PORT = BASE, BASE + 1, BASE + 2, BASE + 3
SLEEP_BOUND = 30     # s: idle groups asleep (a loaded machine)
FAILOVER_BOUND = 5   # s: kill -9 to a leader on a survivor for every shard
WRITE_BOUND = 10     # s: kill -9 to writes to every shard acknowledged


def cores(nid):
    """2 cores a node; with SLEEPING_MIXED_CORES=1 node 3 has 1, so that
    heartbeats cross cores (a Heartbeats entry stepped on another core)."""
    return 1 if nid == 3 and os.environ.get("SLEEPING_MIXED_CORES") else 2


def node_args(ringkvd, work, nid):
    return cluster_node_args(ringkvd, NODES, nid, work,
                             (PEER_PORT, CLIENT_PORT, ADMIN_PORT, RESP_PORT), cores=cores(nid),
                             shards=SHARDS) + [
        "--log-level", "info", "--metrics-per-replica", "on"]


def metrics(nid):
    return adm.scrape("http://%s:%d" % (NODES[nid], ADMIN_PORT))


def sleeping(s):
    return adm.total(s, "ringkv_raft_groups_sleeping") if s else -1


def roles(s):
    """{shard: role} of one node's per-replica series."""
    out = {}
    for (name, labels), v in s.items():
        if name == "ringkv_replica_role" and v == 1:
            ls = dict(labels)
            out[int(ls["shard"])] = ls["role"]
    return out


def resp_set(nid, keys, timeout=10):
    """SETs each key through node nid's RESP port (the node forwards to the
    shard's leader), one at a time; returns how many answered +OK."""
    ok = 0
    with socket.create_connection((NODES[nid], RESP_PORT), timeout=timeout) as s:
        f = s.makefile("rb")
        for key in keys:
            k = key.encode()
            s.sendall(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n" % (len(k), k))
            line = f.readline()
            if line == b"+OK\r\n":
                ok += 1
            elif not hasattr(resp_set, "first_error"):
                # The first answer that was not +OK, for the failure's line.
                resp_set.first_error = "%s: %r" % (key, line)
    return ok


def all_asleep(nids):
    samples = {n: metrics(n) for n in nids}
    if all(sleeping(s) == SHARDS for s in samples.values()):
        return samples
    return None


def run(ringkvd, work, procs):
    for nid in NODES:
        out = open(os.path.join(work, "n%d.err" % nid), "w")
        procs[nid] = subprocess.Popen(node_args(ringkvd, work, nid), stdout=out, stderr=out)
    led = wait_until(SLEEP_BOUND, lambda: all(metrics(n) for n in NODES) and
                     sum(adm.total(metrics(n), "ringkv_raft_replicas", role="leader")
                         for n in NODES) == SHARDS)
    adm.check(bool(led), "every shard has a leader")
    if not led:
        return
    # Writes to many keys (every shard, with luck) and then idle: asleep.
    warm = resp_set(2, ["warm-%d" % i for i in range(200)])
    adm.check(warm == 200, "200 warm-up writes (%d +OK%s)" % (
        warm, "; first other answer " + resp_set.first_error
        if hasattr(resp_set, "first_error") else ""))
    t0 = time.time()
    samples = wait_until(SLEEP_BOUND, lambda: all_asleep(NODES))
    adm.check(samples is not None, "all %d groups asleep on every node within %d s (last: %s)"
              % (SHARDS, SLEEP_BOUND, [sleeping(metrics(n)) for n in NODES]))
    if samples is None:
        return
    print("all groups asleep %.1f s after the last write" % (time.time() - t0))

    # A write wakes its group and succeeds.
    adm.check(resp_set(1, ["wake-me"]) == 1, "a write to a sleeping group is acknowledged")
    woke = [sleeping(metrics(n)) for n in NODES]
    adm.check(min(woke) < SHARDS, "the write woke its group: sleeping %s" % woke)
    adm.check(wait_until(SLEEP_BOUND, lambda: all_asleep(NODES)) is not None,
              "asleep again after the write")

    # kill -9 the node leading the most sleeping groups.
    samples = {n: metrics(n) for n in NODES}
    led = {n: [sh for sh, r in roles(samples[n]).items() if r == "leader"] for n in NODES}
    victim = max(NODES, key=lambda n: len(led[n]))
    survivors = [n for n in NODES if n != victim]
    adm.check(len(led[victim]) > 0, "node %d leads %d sleeping groups" %
              (victim, len(led[victim])))
    procs[victim].send_signal(signal.SIGKILL)
    procs[victim].wait()
    t_kill = time.time()

    def taken_over():
        views = {n: metrics(n) for n in survivors}
        if not all(views.values()):
            return None
        have = set()
        for n in survivors:
            have |= {sh for sh, r in roles(views[n]).items() if r == "leader"}
        return have >= set(led[victim])

    over = wait_until(FAILOVER_BOUND + 5, taken_over)
    t_over = time.time() - t_kill
    adm.check(bool(over) and t_over <= FAILOVER_BOUND,
              "the %d groups node %d led have leaders on the survivors %.2f s after kill -9 "
              "(bound %d s)" % (len(led[victim]), victim, t_over, FAILOVER_BOUND))
    print("failover of %d sleeping groups: %.2f s after kill -9" % (len(led[victim]), t_over))
    keys = ["after-%d" % i for i in range(300)]
    done = wait_until(WRITE_BOUND, lambda: resp_set(survivors[0], keys, timeout=WRITE_BOUND)
                      == len(keys))
    t_writes = time.time() - t_kill
    adm.check(bool(done) and t_writes <= WRITE_BOUND,
              "300 writes through node %d acknowledged %.2f s after kill -9 (bound %d s)"
              % (survivors[0], t_writes, WRITE_BOUND))
    print("writes to every shard acknowledged %.2f s after kill -9" % t_writes)
    # With one follower gone a quorum still answers: the groups sleep again.
    adm.check(wait_until(SLEEP_BOUND, lambda: all_asleep(survivors)) is not None,
              "the survivors' groups asleep again with node %d down (sleeping: %s)" %
              (victim, [sleeping(metrics(n)) for n in survivors]))


def main():
    ringkvd = ringkvd_from_argv(__doc__)
    procs = {}
    with work_dir("ringkv-sleeping-") as work:
        try:
            run(ringkvd, work, procs)
        finally:
            adm.stop_all(procs, {"node %d" % nid: os.path.join(work, "n%d.err" % nid)
                                 for nid in NODES})
    return adm.verdict("sleeping-group")


if __name__ == "__main__":
    sys.exit(main())
