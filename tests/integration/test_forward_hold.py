#!/usr/bin/env python3
"""A request with no route waits for one, for an election timeout at most.

usage: test_forward_hold.py RINGKVD

Three ringkvd nodes, one shard, R = 3, --election-timeout 4000ms, RESP
through node 1 (server/forward.c, hold()). Nodes 2 and 3 are stopped
(SIGSTOP) once started, before the first election can end (it cannot
start before an election timeout; when a slow start let one end first,
node 1 knows a leader half a second after the stop, and the cluster is
started again, three times at most):
  - a SET through node 1 is refused with "no leader known", not at once
    but after about an election timeout (it waited for a route), the waits
    are counted (ringkv_node_forwards_held_total), and it was not applied;
  - a second SET is sent, and nodes 2 and 3 are resumed 0.15 s later, while
    it waits: the cluster elects and the SET is answered +OK.
Before the wait existed both were refused at once: both phases fail then.
Nodes on 127.0.57.1-3, ports 57000-57899 (the pid picks four of them).
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_admin as adm  # noqa: E402  (re-executes under /usr/bin/python3 if needed)
from ringkv_test import (cluster_node_args, ringkvd_from_argv, wait_until,  # noqa: E402
                         work_dir)

NODES = {1: "127.0.57.1", 2: "127.0.57.2", 3: "127.0.57.3"}
BASE = 57000 + (os.getpid() % 225) * 4
PEER_PORT, CLIENT_PORT, ADMIN_PORT, RESP_PORT = BASE, BASE + 1, BASE + 2, BASE + 3
ELECTION_S = 4.0


def node_args(ringkvd, work, nid):
    return cluster_node_args(ringkvd, NODES, nid, work,
                             (PEER_PORT, CLIENT_PORT, ADMIN_PORT, RESP_PORT), shards=1) + [
        "--election-timeout", "%dms" % (ELECTION_S * 1000), "--log-level", "info"]


def metrics(nid):
    return adm.scrape("http://%s:%d" % (NODES[nid], ADMIN_PORT))


def resp_connect(nid):
    s = socket.create_connection((NODES[nid], RESP_PORT), timeout=10)
    return s, s.makefile("rb")


def send_set(s, key):
    k = key.encode()
    s.sendall(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n" % (len(k), k))


def held(nid):
    m = metrics(nid)
    return adm.total(m, "ringkv_node_forwards_held_total") if m else -1


def start(ringkvd, work, procs):
    """Starts the three nodes and stops 2 and 3 before the first election
    can end (node 1 alone elects no leader). False when a slow start let a
    leader be elected first: the caller starts again."""
    for nid in NODES:
        out = open(os.path.join(work, "n%d.err" % nid), "w")
        procs[nid] = subprocess.Popen(node_args(ringkvd, work, nid), stdout=out, stderr=out)
    t0 = time.time()
    up = wait_until(20, lambda: all(metrics(n) for n in NODES), step=0.02)
    for nid in (2, 3):
        procs[nid].send_signal(signal.SIGSTOP)
    adm.check(bool(up), "every node serves /metrics")
    # Votes sent just before the stop land within this.
    time.sleep(0.5)
    m = metrics(1)
    leaderless = adm.total(m, "ringkv_raft_leaderless_replicas") if m else -1
    print("node 1 knows %s leader %.2f s after the start (an election timeout is %.0f s)"
          % ("no" if leaderless == 1 else "a", time.time() - t0, ELECTION_S))
    return leaderless == 1


def run(ringkvd, work, procs):
    for attempt in range(3):
        if start(ringkvd, work, procs) or adm.failures:
            break
        stop(procs, work)
        procs.clear()
        shutil.rmtree(work, ignore_errors=True)
        os.mkdir(work)
    else:
        adm.check(False, "three starts with node 1 knowing no leader when 2 and 3 stopped")
    if adm.failures:
        return
    s, f = resp_connect(1)

    # Phase 1: no leader can exist; the SET waits, then is refused.
    t0 = time.time()
    send_set(s, "hold-refused")
    line = f.readline()
    took = time.time() - t0
    adm.check(line.startswith(b"-") and b"no leader known" in line,
              "with no quorum a SET is refused with 'no leader known' (got %r)" % line)
    adm.check(0.8 * ELECTION_S <= took <= 3 * ELECTION_S,
              "it waited about an election timeout for a route first (%.2f s, bound %.1f-%.1f s)"
              % (took, 0.8 * ELECTION_S, 3 * ELECTION_S))
    adm.check(held(1) > 0, "the waits are counted (ringkv_node_forwards_held_total %s)" % held(1))

    # Phase 2: the quorum comes back while a SET waits; it is applied.
    t0 = time.time()
    send_set(s, "hold-applied")
    time.sleep(0.15)
    for nid in (2, 3):
        procs[nid].send_signal(signal.SIGCONT)
    line = f.readline()
    took = time.time() - t0
    adm.check(line == b"+OK\r\n",
              "a SET sent with no quorum is applied once the quorum is back within its wait "
              "(got %r after %.2f s)" % (line, took))
    send_set(s, "hold-after")
    adm.check(f.readline() == b"+OK\r\n", "writes go on")
    s.sendall(b"*2\r\n$3\r\nGET\r\n$12\r\nhold-refused\r\n")
    line = f.readline()
    adm.check(line == b"$-1\r\n", "the refused SET was not applied (GET answered %r)" % line)
    s.close()


def stop(procs, work):
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
    adm.stop_all(procs, {"node %d" % nid: os.path.join(work, "n%d.err" % nid) for nid in NODES})


def main():
    ringkvd = ringkvd_from_argv(__doc__)
    procs = {}
    with work_dir("ringkv-hold-") as work:
        try:
            run(ringkvd, work, procs)
        finally:
            stop(procs, work)
    return adm.verdict("forward-hold")


if __name__ == "__main__":
    sys.exit(main())
