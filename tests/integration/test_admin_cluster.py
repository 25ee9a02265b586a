#!/usr/bin/env python3
"""The admin port of a 3-node cluster: /ready waits for every local replica
to know its leader (a lone node of three is live but not ready), the replication metrics add up across the nodes (each
shard led once, followed twice; every core connected to both peers), and
after kill -9 of one node the survivors elect new leaders, report the dead
peer as disconnected and are ready again. The nodes log with
--log-format json, and every line must be one JSON object.

usage: test_admin_cluster.py RINGKVD

Starts three ringkvd processes on 127.0.0.21-23 (one core, four shards,
three replicas each) and stops them all, whatever happens. Exits 0 when all
checks pass, 1 otherwise, 77 when prometheus_client is missing.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_admin as adm  # noqa: E402  (re-executes under /usr/bin/python3 if needed)

SHARDS = 4
NODES = {1: "127.0.0.21", 2: "127.0.0.22", 3: "127.0.0.23"}
PEER_PORT = 28001
CLIENT_PORT = 28002
ADMIN_PORT = 28003


def node_args(ringkvd, work, nid):
    cluster = ",".join("%d=%s:%d" % (i, a, PEER_PORT) for i, a in sorted(NODES.items()))
    host = NODES[nid]
    return [ringkvd, "--node-id", str(nid), "--initial-cluster", cluster,
            "--listen", "%s:%d" % (host, CLIENT_PORT),
            "--admin-listen", "%s:%d" % (host, ADMIN_PORT),
            "--data-dir", os.path.join(work, "n%d" % nid), "--cores", "1",
            "--shards", str(SHARDS), "--log-level", "info", "--log-format", "json"]


def base(nid):
    return "http://%s:%d" % (NODES[nid], ADMIN_PORT)


def metrics(nid):
    status, _, text = adm.get(base(nid), "/metrics")
    if status != 200:
        return None
    return adm.parse(text)


def ready(nid):
    try:
        return adm.get(base(nid), "/ready")
    except OSError as e:
        return None, None, str(e)


def wait_ready(nids, seconds):
    deadline = time.time() + seconds
    last = {}
    while time.time() < deadline:
        last = {n: ready(n) for n in nids}
        if all(r[0] == 200 for r in last.values()):
            return True, last
        time.sleep(0.1)
    return False, last


def leaders_settled(nids, seconds):
    """Waits until the nodes' leader replicas add up to SHARDS; returns the
    last samples of every node."""
    deadline = time.time() + seconds
    samples = {}
    while time.time() < deadline:
        samples = {n: metrics(n) for n in nids}
        if all(samples.values()):
            leaders = sum(adm.total(s, "ringkv_raft_replicas", role="leader")
                          for s in samples.values())
            if leaders == SHARDS:
                return samples
        time.sleep(0.1)
    return samples


def launch(ringkvd, work, procs, nid):
    out = open(os.path.join(work, "n%d.out" % nid), "w")
    err = open(os.path.join(work, "n%d.err" % nid), "w")
    procs[nid] = subprocess.Popen(node_args(ringkvd, work, nid), stdout=out, stderr=err)


def check_json_logs(work, survivors):
    """--log-format json: every stderr line is one object with ts, level,
    thread and msg; the survivors logged losing the killed peer."""
    for nid in NODES:
        with open(os.path.join(work, "n%d.err" % nid)) as f:
            lines = f.read().splitlines()
        adm.check(len(lines) > 0, "node %d logged something" % nid)
        lost = False
        for line in lines:
            try:
                obj = json.loads(line)
            except ValueError:
                adm.check(False, "node %d: log line is not JSON: %r" % (nid, line))
                continue
            adm.check(set(obj) == {"ts", "level", "thread", "msg"},
                      "node %d: log fields %s" % (nid, sorted(obj)))
            adm.check(obj.get("level") in ("debug", "info", "warn", "error"),
                      "node %d: level %r" % (nid, obj.get("level")))
            lost = lost or "connection lost" in obj.get("msg", "")
        if nid in survivors:
            adm.check(lost, "node %d logged the lost peer" % nid)


def run(ringkvd, work, procs):
    # One node of three cannot elect: it serves /health but is not ready.
    launch(ringkvd, work, procs, 1)
    deadline = time.time() + 20
    r = (None, None, "")
    while time.time() < deadline:
        r = ready(1)
        if r[0] is not None:
            break
        time.sleep(0.05)
    time.sleep(1.0)  # several election timeouts: still no majority
    r = ready(1)
    adm.check(r[0] == 503 and "4 shard replicas know no leader" in r[2],
              "a lone node is not ready: %s %s" % (r[0], r[2]))
    adm.check(adm.get(base(1), "/health")[0] == 200, "a lone node is live")
    for nid in (2, 3):
        launch(ringkvd, work, procs, nid)
    # Before the admin ports answer, /ready cannot: wait for all three.
    ok, last = wait_ready(NODES, 30)
    adm.check(ok, "every node ready after the first elections: %s" % last)
    samples = leaders_settled(NODES, 15)
    adm.check(all(samples.values()), "every node answers /metrics")
    if not all(samples.values()):
        return
    total = lambda name, **kw: sum(adm.total(s, name, **kw) for s in samples.values())
    adm.check(total("ringkv_raft_replicas", role="leader") == SHARDS,
              "each shard led once: %s" % total("ringkv_raft_replicas", role="leader"))
    adm.check(total("ringkv_raft_replicas", role="follower") == 2 * SHARDS,
              "each shard followed twice: %s" % total("ringkv_raft_replicas", role="follower"))
    adm.check(total("ringkv_raft_leaderless_replicas") == 0, "no leaderless replica")
    for nid, s in samples.items():
        adm.check(adm.total(s, "ringkv_peer_nodes") == 2, "node %d: two peers" % nid)
        adm.check(adm.total(s, "ringkv_peer_connected_nodes") == 2,
                  "node %d: both peers connected (%s)" %
                  (nid, adm.total(s, "ringkv_peer_connected_nodes")))
        adm.check(adm.total(s, "ringkv_peer_sent_bytes_total") > 0,
                  "node %d: bytes sent to peers" % nid)
        adm.check(adm.total(s, "ringkv_peer_hellos_refused_total") == 0,
                  "node %d: no hello refused" % nid)

    # Kill the node that leads the most shards; the other two take over.
    victim = max(samples, key=lambda n: adm.total(samples[n], "ringkv_raft_replicas",
                                                   role="leader"))
    procs[victim].send_signal(signal.SIGKILL)
    procs[victim].wait(timeout=20)
    rest = [n for n in NODES if n != victim]
    samples = leaders_settled(rest, 20)
    adm.check(all(samples.values()), "the survivors answer /metrics")
    if not all(samples.values()):
        return
    leaders = sum(adm.total(s, "ringkv_raft_replicas", role="leader") for s in samples.values())
    adm.check(leaders == SHARDS, "every shard led again by the survivors (%s)" % leaders)
    ok, last = wait_ready(rest, 20)
    adm.check(ok, "the survivors ready again: %s" % last)
    deadline = time.time() + 10
    while time.time() < deadline:
        samples = {n: metrics(n) for n in rest}
        if all(s and adm.total(s, "ringkv_peer_connected_nodes") == 1
               for s in samples.values()):
            break
        time.sleep(0.1)
    for nid, s in samples.items():
        adm.check(s is not None and adm.total(s, "ringkv_peer_connected_nodes") == 1,
                  "node %d: the dead peer is disconnected" % nid)
        adm.check(s is not None and adm.total(s, "ringkv_peer_reconnects_total") >= 1,
                  "node %d: it keeps redialing the dead peer" % nid)
    return rest


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    work = tempfile.mkdtemp(prefix="ringkv-admin-cluster-")
    procs = {}
    try:
        survivors = run(sys.argv[1], work, procs)
        if survivors:
            check_json_logs(work, survivors)
    finally:
        adm.stop_all(procs, {"node %d" % nid: os.path.join(work, "n%d.err" % nid)
                             for nid in NODES})
        shutil.rmtree(work, ignore_errors=True)
    if adm.failures:
        print("%d check(s) failed" % len(adm.failures))
        return 1
    print("all cluster admin checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
