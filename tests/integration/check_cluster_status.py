#!/usr/bin/env python3
"""Checks `ringkv cluster status --json` of a 3-node cluster whose node KILLED
was killed: usage: check_cluster_status.py STATUS.json KILLED.

The names checked here are the stable interface: nodes[].{id, peer, client,
reachable}, shards[].{id, leader, term, replicas[].{node, core, role,
commit, applied}}."""
import json
import sys


def fail(msg):
    print("check_cluster_status: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    with open(sys.argv[1]) as f:
        status = json.load(f)
    killed = int(sys.argv[2])
    nodes = status["nodes"]
    if sorted(n["id"] for n in nodes) != [1, 2, 3]:
        fail("nodes: %r" % nodes)
    for n in nodes:
        for field in ("peer", "client", "reachable"):
            if field not in n:
                fail("node %d has no %s" % (n["id"], field))
        if n["id"] == killed and n["reachable"]:
            fail("killed node %d shown reachable" % killed)
        if n["id"] != killed and not n["reachable"]:
            fail("live node %d shown unreachable" % n["id"])
        if not n["peer"].startswith("127.0.2.1"):
            fail("node %d peer %r" % (n["id"], n["peer"]))
    if not status["shards"]:
        fail("no shards")
    for s in status["shards"]:
        for field in ("id", "leader", "term", "replicas"):
            if field not in s:
                fail("shard has no %s: %r" % (field, s))
        if s["leader"] is None or s["leader"] == killed:
            fail("shard %d leader %r" % (s["id"], s["leader"]))
        if s["term"] < 1:
            fail("shard %d term %d" % (s["id"], s["term"]))
        roles = {}
        for r in s["replicas"]:
            for field in ("node", "core", "role", "commit", "applied"):
                if field not in r:
                    fail("shard %d replica has no %s: %r" % (s["id"], field, r))
            roles[r["node"]] = r["role"]
            if r["node"] == killed:
                if r["role"] != "unreachable" or r["commit"] is not None:
                    fail("shard %d: killed node's replica %r" % (s["id"], r))
            elif r["commit"] < r["applied"] or r["commit"] < 1:
                fail("shard %d: replica %r" % (s["id"], r))
            elif r.get("snapshot", "missing") not in (None, "sending", "receiving"):
                fail("shard %d: replica snapshot %r" % (s["id"], r.get("snapshot")))
            elif r.get("sleeping") not in (True, False):
                fail("shard %d: replica sleeping %r" % (s["id"], r.get("sleeping")))
        if roles.get(s["leader"]) != "leader":
            fail("shard %d: leader %d's replica says %r" % (s["id"], s["leader"],
                                                          roles.get(s["leader"])))
        if len(s["replicas"]) != 3 or len(roles) != 3:
            fail("shard %d replicas %r" % (s["id"], s["replicas"]))
    print("check_cluster_status: ok (%d shards, node %d unreachable)"
          % (len(status["shards"]), killed))


main()
