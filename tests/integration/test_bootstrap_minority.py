#!/usr/bin/env python3
"""A new cluster with one founding node down (issue #12; docs/cluster/
repair-design.md, "A new cluster with a founding member down"), on real
ringkvd processes, three nodes, four shards of three replicas, node 3
not started at first.

- A. Default --initial-cluster-state (new): every replica of nodes 1 and
  2 asks its group and none can settle (node 3 never answers, and a new
  group settles only once every member answered): the admin gauge
  ringkv_raft_asking_replicas shows all four on each node, no leader is
  elected for 4 s and the "still asking" warning names the answers.
- B. New data dirs, --initial-cluster-state bootstrap on nodes 1 and 2
  (the operator states that they never ran in this cluster): every shard
  gets a leader, 40 keys are acknowledged, the gauge falls to 0 and each
  node logs that its data dir was made for a new cluster's first start.
- C. Node 3's first start, default flags: its groups have a history (its
  data dir never answered nodes 1 and 2 before they settled, so they do
  not vouch for it) and each of its replicas rejoins as incarnation 1;
  then node 2 is stopped and 20 more keys are acknowledged through node
  1: node 3 votes and acknowledges as a member.
- D. The statement given wrongly: node 3's data dir wiped, started with
  --initial-cluster-state bootstrap while nodes 1 and 2 (node 2 restarted,
  the flag given again on its old dir: a warning to remove it) are up: the
  answers show a history, so each replica comes back as incarnation 2 all
  the same; it never takes part as a new member.
- E. Five members, node 2 never up, nodes 1, 4, 5 bootstrap, node 3
  default: node 3 first hears "asking" from the others, which settle
  later; it learns their later answers and settles (see five_members).

usage: test_bootstrap_minority.py RINGKVD

Nodes on 127.0.62.1-5, ports 62000-62899 (the pid picks four of them),
one core each. Exits 0 when every check passes, 1 otherwise, 77 when
prometheus_client is missing. Every process it starts, it stops.
"""
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_admin as adm  # noqa: E402  (re-executes under /usr/bin/python3 if needed)
from ringkv_test import cluster_node_args, ringkvd_from_argv, work_dir  # noqa: E402

SHARDS = 4
NODES = {n: "127.0.62.%d" % n for n in range(1, 6)}  # 4 and 5: phase E only
BASE = 62000 + (os.getpid() % 225) * 4
PEER_PORT, CLIENT_PORT, ADMIN_PORT, RESP_PORT = BASE, BASE + 1, BASE + 2, BASE + 3
START_BOUND = 20    # s: a started node answers its admin port, replicas settle
REJOIN_BOUND = 60   # s: a node's replicas rejoin as a new incarnation (loaded machine)
HOLD = 4            # s: how long phase A watches that nothing is elected


def node_args(ringkvd, work, nid, members, extra=()):
    return cluster_node_args(ringkvd, NODES, nid, work,
                             (PEER_PORT, CLIENT_PORT, ADMIN_PORT, RESP_PORT), members=members,
                             shards=SHARDS) + [
        "--replicas", str(len(members)), "--election-timeout", "300ms",
        "--log-level", "info"] + list(extra)


class Nodes:
    def __init__(self, ringkvd, work):
        self.ringkvd, self.work, self.procs, self.logs = ringkvd, work, {}, {}
        self.current = {}  # nid: (process, log) of the running ones
        self.starts = 0

    def start(self, nid, data, extra=(), members=(1, 2, 3)):
        """Starts node nid on data dir work/<data>/n<nid>; its stderr goes
        to a log of its own per start (returned)."""
        self.starts += 1
        log = os.path.join(self.work, "n%d-%d.err" % (nid, self.starts))
        out = open(os.path.join(self.work, "n%d-%d.out" % (nid, self.starts)), "w")
        self.logs["node %d (start %d)" % (nid, self.starts)] = log
        self.procs[(nid, self.starts)] = subprocess.Popen(
            node_args(self.ringkvd, os.path.join(self.work, data), nid, members, extra),
            stdout=out, stderr=open(log, "w"))
        self.current[nid] = (self.procs[(nid, self.starts)], log)
        return log

    def stop(self, nid):
        p, _ = self.current.pop(nid)
        adm.stop_all({nid: p}, {})
        adm.check(p.returncode == 0, "node %d stopped with %s" % (nid, p.returncode))

    def stop_all(self):
        adm.stop_all(self.procs, self.logs)


def gauge(nid, name, **labels):
    s = adm.scrape("http://%s:%d" % (NODES[nid], ADMIN_PORT))
    return None if s is None else adm.total(s, name, **labels)


def wait_for(what, seconds, cond):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    adm.check(False, "%s within %d s" % (what, seconds))
    return False


def lines_with(log, text):
    with open(log, errors="replace") as f:
        return sum(text in line for line in f)


def resp_set(nid, count, prefix, seconds=10):
    """SETs count keys through node nid's RESP port, each retried until
    +OK or `seconds` pass; returns how many were acknowledged."""
    ok = 0
    for i in range(count):
        key = ("%s-%d" % (prefix, i)).encode()
        cmd = b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n" % (len(key), key)
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                with socket.create_connection((NODES[nid], RESP_PORT), timeout=5) as s:
                    s.sendall(cmd)
                    if s.makefile("rb").readline() == b"+OK\r\n":
                        ok += 1
                        break
            except OSError:
                pass
            time.sleep(0.1)
    return ok


def leaders(nids):
    total = 0
    for n in nids:
        v = gauge(n, "ringkv_raft_replicas", role="leader")
        if v is None:
            return -1
        total += v
    return total


def run(ringkvd, work):
    nodes = Nodes(ringkvd, work)
    try:
        # A. The default: nothing settles with node 3 never started.
        logs = {n: nodes.start(n, "a") for n in (1, 2)}
        for n in (1, 2):
            wait_for("node %d: ringkv_raft_asking_replicas = %d" % (n, SHARDS), START_BOUND,
                     lambda: gauge(n, "ringkv_raft_asking_replicas") == SHARDS)
        start = time.time()
        while time.time() < start + HOLD:
            adm.check(leaders((1, 2)) == 0, "A: a leader was elected with node 3 never up")
            for n in (1, 2):
                adm.check(gauge(n, "ringkv_raft_asking_replicas") == SHARDS,
                          "A: node %d's replicas should all be asking" % n)
            time.sleep(0.5)
        wait_for("A: node 1 warns that it is still asking", START_BOUND,
                 lambda: lines_with(logs[1], "still asking whether node 1 was a member: "
                                    "1 of 2 other members answered, 1 of them asking") > 0)
        print("A: default flags, node 3 never up: %d replicas asking on each node, no "
              "leader" % SHARDS, flush=True)
        for n in (1, 2):
            nodes.stop(n)

        # B. Bootstrap: the same cluster elects with node 3 down.
        boot = ["--initial-cluster-state", "bootstrap"]
        logs = {n: nodes.start(n, "b", boot) for n in (1, 2)}
        t0 = time.time()
        wait_for("B: a leader for every shard on nodes 1-2", START_BOUND,
                 lambda: leaders((1, 2)) == SHARDS)
        print("B: bootstrap, node 3 never up: %d leaders after %.1f s" %
              (leaders((1, 2)), time.time() - t0), flush=True)
        adm.check(resp_set(1, 40, "boot") == 40, "B: 40 keys acknowledged")
        for n in (1, 2):
            adm.check(gauge(n, "ringkv_raft_asking_replicas") == 0,
                      "B: node %d asks no more" % n)
            adm.check(lines_with(logs[n], "was made for a new cluster's first start") == 1,
                      "B: node %d logs its data dir's bootstrap" % n)

        # C. Node 3's first start: its groups have a history, so each
        # replica rejoins as incarnation 1; then it is a voter.
        log3 = nodes.start(3, "b")
        wait_for("C: node 3's replicas rejoin as incarnation 1", REJOIN_BOUND,
                 lambda: lines_with(log3, "rejoined its group as incarnation 1 ") >= SHARDS)
        wait_for("C: node 3 neither asks nor is amnesiac", START_BOUND,
                 lambda: gauge(3, "ringkv_raft_asking_replicas") == 0 and
                 gauge(3, "ringkv_raft_amnesiac_replicas") == 0)
        nodes.stop(2)
        adm.check(resp_set(1, 20, "node2-down", seconds=20) == 20,
                  "C: 20 keys acknowledged by nodes 1 and 3 with node 2 down")
        print("C: node 3 rejoined as incarnation 1 and votes (writes with node 2 down)",
              flush=True)

        # D. The statement given wrongly, to a wiped node whose peers hold
        # the history: it rejoins all the same.
        log2 = nodes.start(2, "b", boot)
        wait_for("D: node 2 warns that bootstrap is not needed on its old data dir",
                 START_BOUND, lambda: lines_with(log2, "bootstrap not needed") == 1)
        nodes.stop(3)
        shutil.rmtree(os.path.join(work, "b", "n3"))
        wait_for("D: leaders on nodes 1-2", START_BOUND, lambda: leaders((1, 2)) == SHARDS)
        log3 = nodes.start(3, "b", boot)
        wait_for("D: node 3 (wiped, bootstrap) rejoins as incarnation 2", REJOIN_BOUND,
                 lambda: lines_with(log3, "rejoined its group as incarnation 2 ") >= SHARDS)
        adm.check(lines_with(log3, "it is a new group's member") == 0,
                  "D: no replica of wiped node 3 settled as a new group's member")
        print("D: wiped node 3 given bootstrap still rejoined as incarnation 2", flush=True)
        for n in list(nodes.current):
            nodes.stop(n)
        five_members(nodes)
    finally:
        nodes.stop_all()


def five_members(nodes):
    """E. R = 5, node 2 never up. Node 3 (default flags) starts with node
    1 (bootstrap): each hears the other asking, and 1, with one answer, is
    not a majority yet, so it answers 'asking'. Nodes 4 and 5 (bootstrap)
    come: 1, 4 and 5 settle. Node 3 needs three settled answers of four; it
    holds 'asking' from 1, 4 and 5, which they no longer are: it must learn
    their new answers (told when they settle, or asked again) and let them
    replace the old ones, or it waits for node 2 for ever (the review's
    finding). Then every shard has a leader with node 2 down."""
    five = (1, 2, 3, 4, 5)
    boot = ["--initial-cluster-state", "bootstrap"]
    log3 = nodes.start(3, "e", members=five)
    nodes.start(1, "e", boot, members=five)
    for n in (1, 3):
        wait_for("E: node %d's replicas all asking" % n, START_BOUND,
                 lambda: gauge(n, "ringkv_raft_asking_replicas") == SHARDS)
    time.sleep(1)
    adm.check(gauge(3, "ringkv_raft_asking_replicas") == SHARDS,
              "E: node 3 decides nothing with nodes 1 and 3 up")
    for n in (4, 5):
        nodes.start(n, "e", boot, members=five)
    # Each replica of node 3 settles as a new group's member, or, when a
    # member settled before it saw node 3's dir asking (so it does not
    # vouch for it) and answered after its first election, rejoins as
    # incarnation 1: safe either way; what must not happen is waiting.
    settled = lambda: (lines_with(log3, "it is a new group's member") +
                       lines_with(log3, "rejoined its group as incarnation 1 "))
    wait_for("E: node 3's replicas settle (new members, or rejoined)", REJOIN_BOUND,
             lambda: settled() >= SHARDS)
    wait_for("E: a leader for every shard with node 2 down", START_BOUND,
             lambda: leaders((1, 3, 4, 5)) == SHARDS)
    for n in (1, 3, 4, 5):
        adm.check(gauge(n, "ringkv_raft_asking_replicas") == 0, "E: node %d asks no more" % n)
    adm.check(resp_set(3, 20, "five") == 20, "E: 20 keys acknowledged through node 3")
    print("E: R = 5, node 3 learned that 1, 4 and 5 settled (%d replicas new members, %d "
          "rejoined); leaders with node 2 down" %
          (lines_with(log3, "it is a new group's member"),
           lines_with(log3, "rejoined its group as incarnation 1 ")), flush=True)


def main():
    ringkvd = ringkvd_from_argv(__doc__)
    with work_dir("ringkv-bootstrap-") as work:
        run(ringkvd, work)
    return adm.verdict("bootstrap")


if __name__ == "__main__":
    sys.exit(main())
