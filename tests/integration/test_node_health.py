#!/usr/bin/env python3
"""`ringkv node health` and the replication counters of /metrics.

- A ready single node: exit 0, and --json is one object that parses.
- Nothing listening: exit 3 (cannot connect, the CLI's "other error"),
  --json still one object; a malformed --admin: exit 2; a port that takes
  the connection and never answers: exit 4 within -t.
- The first node of a 3-node cluster, alone: exit 1, and the reasons name
  the replicas that know no leader and the peer connections that are down;
  its replicas' asks (wiped-node probe) do not pile up for the nodes that
  are down (ringkv_peer_queued_bytes).
- The whole cluster: every node ready (exit 0); a write through a node
  that does not lead the key's shard moves ringkv_node_forwards_sent_total
  there and ringkv_node_forwards_received_total at the leader; after kill -9
  of a leader the survivors' ringkv_raft_leader_changes_total,
  ringkv_raft_pre_votes_total and ringkv_raft_elections_total rise; after
  kill -9 of a second node the last one's leaders step down
  (ringkv_raft_quorum_losses_total).

usage: test_node_health.py RINGKVD RINGKV

Nodes on 127.0.12.1 and 127.0.12.11-13, ports 32000-32199; every process
it starts it stops. Exits 0 when all checks pass, 1 otherwise, 77 when
prometheus_client is missing.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_admin as adm  # noqa: E402  (re-executes under /usr/bin/python3 if needed)
from ringkv_test import (cluster_node_args, programs_from_argv, wait_until,  # noqa: E402
                         work_dir)

RINGKV = None
SINGLE = "127.0.12.1"
SINGLE_CLIENT, SINGLE_ADMIN, NOBODY_PORT, SILENT_PORT = 32011, 32012, 32019, 32018
SHARDS = 4
NODES = {1: "127.0.12.11", 2: "127.0.12.12", 3: "127.0.12.13"}
PEER_PORT, CLIENT_PORT, ADMIN_PORT = 32101, 32102, 32103


def health(admin, *extra, timeout=20):
    """(exit status, stdout, stderr) of ringkv node health."""
    r = subprocess.run([RINGKV, "node", "health", "--admin", admin] + list(extra),
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def health_json(admin, *extra):
    rc, out, err = health(admin, "--json", *extra)
    try:
        return rc, json.loads(out), err
    except ValueError:
        adm.check(False, "node health --json at %s printed no JSON: %r %r" % (admin, out, err))
        return rc, {}, err


def admin_answers(host, port):
    try:
        return adm.get("http://%s:%d" % (host, port), "/health")[0] == 200
    except OSError:
        return False


def launch(procs, work, name, args):
    out = open(os.path.join(work, name + ".out"), "w")
    err = open(os.path.join(work, name + ".err"), "w")
    procs[name] = subprocess.Popen(args, stdout=out, stderr=err)


def single_node(ringkvd, work, procs):
    launch(procs, work, "single", [
        ringkvd, "--listen", "%s:%d" % (SINGLE, SINGLE_CLIENT),
        "--admin-listen", "%s:%d" % (SINGLE, SINGLE_ADMIN),
        "--data-dir", os.path.join(work, "single"), "--cores", "1"])
    admin = "%s:%d" % (SINGLE, SINGLE_ADMIN)
    adm.check(wait_until(20, lambda: admin_answers(SINGLE, SINGLE_ADMIN), 0.1),
              "the single node's admin port answers")
    wait_until(10, lambda: health(admin)[0] == 0, 0.1)
    rc, out, err = health(admin)
    adm.check(rc == 0 and "alive, ready" in out,
              "a ready node: exit 0, 'alive, ready': %d %r %r" % (rc, out, err))
    rc, obj, err = health_json(admin)
    adm.check(rc == 0, "--json of a ready node: exit 0 (%d %r)" % (rc, err))
    adm.check(obj.get("alive") is True and obj.get("ready") is True,
              "--json: alive and ready: %s" % obj)
    adm.check(obj.get("node_id") == 1 and obj.get("shards", 0) >= 1 and
              obj.get("leaderless_replicas") == 0, "--json: the node's numbers: %s" % obj)
    # /ready itself carries the counts behind its answer.
    status, _, body = adm.get("http://" + admin, "/ready")
    ready = json.loads(body)
    adm.check(status == 200 and ready.get("leaderless_replicas") == 0 and
              "disk_full_shards" in ready and "peer_connections_up" in ready,
              "/ready lists its conditions: %s %s" % (status, body))
    procs["single"].terminate()
    procs["single"].wait(timeout=20)


def unreachable():
    nobody = "%s:%d" % (SINGLE, NOBODY_PORT)
    rc, out, err = health(nobody)
    adm.check(rc == 3 and "cannot connect" in err,
              "nothing listening: exit 3 and why: %d %r" % (rc, err))
    rc, obj, err = health_json(nobody)
    adm.check(rc == 3 and obj.get("alive") is False and obj.get("ready") is False and
              "error" in obj, "nothing listening, --json: %d %s" % (rc, obj))
    rc, out, err = health("no-port-here")
    adm.check(rc == 2, "a malformed --admin: exit 2 (%d %r)" % (rc, err))
    r = subprocess.run([RINGKV, "node", "sickness"], capture_output=True, text=True,
                       timeout=20)
    rc, err = r.returncode, r.stderr
    adm.check(rc == 2, "node takes health only: exit 2 (%d %r)" % (rc, err))
    # Accepted by the kernel, never answered: the timeout, not a hang.
    silent = socket.socket()
    try:
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        silent.bind((SINGLE, SILENT_PORT))
        silent.listen(4)
        start = time.time()
        rc, out, err = health("%s:%d" % (SINGLE, SILENT_PORT), "-t", "0.5")
        took = time.time() - start
        adm.check(rc == 4 and took < 10, "a silent port: exit 4 after -t (%d in %.1f s, %r)" %
                  (rc, took, err))
    finally:
        silent.close()


def node_args(ringkvd, work, nid):
    return cluster_node_args(ringkvd, NODES, nid, work, (PEER_PORT, CLIENT_PORT, ADMIN_PORT, None),
                             shards=SHARDS)


def admin_of(nid):
    return "%s:%d" % (NODES[nid], ADMIN_PORT)


def metrics(nid):
    return adm.scrape("http://" + admin_of(nid))


def leaders_settled(nids, seconds):
    """The nodes' samples once their leader replicas add up to SHARDS."""
    def settled():
        samples = {n: metrics(n) for n in nids}
        if all(samples.values()) and sum(
                adm.total(s, "ringkv_raft_replicas", role="leader")
                for s in samples.values()) == SHARDS:
            return samples
        return None
    return wait_until(seconds, settled, 0.1)


def cluster(ringkvd, work, procs):
    # Node 1 alone cannot elect: alive, not ready, and it says why.
    launch(procs, work, "n1", node_args(ringkvd, work, 1))
    adm.check(wait_until(20, lambda: admin_answers(NODES[1], ADMIN_PORT), 0.1),
              "node 1's admin port answers")
    time.sleep(1.0)  # several election timeouts: still no majority
    # Its empty replicas ask the two other members, which are down: the
    # asks are not queued for them (they would pile up until they come).
    queued0 = adm.total(metrics(1) or {}, "ringkv_peer_queued_bytes")
    time.sleep(3.0)
    queued1 = adm.total(metrics(1) or {}, "ringkv_peer_queued_bytes")
    adm.check(queued1 - queued0 < 1024,
              "nothing piles up for the nodes that are down: queued %s -> %s bytes" %
              (queued0, queued1))
    rc, obj, err = health_json(admin_of(1))
    reasons = " | ".join(obj.get("reasons", []))
    adm.check(rc == 1 and obj.get("alive") is True and obj.get("ready") is False,
              "a lone node of three: exit 1, alive, not ready: %d %s" % (rc, obj))
    adm.check("%d shard replicas know no leader" % SHARDS in reasons,
              "the reasons name the leaderless replicas: %r" % reasons)
    adm.check("2 of 2 peer connections down" in reasons,
              "the reasons name the peers down: %r" % reasons)
    adm.check(obj.get("leaderless_replicas") == SHARDS, "--json: leaderless count: %s" % obj)
    rc, out, err = health(admin_of(1))
    adm.check(rc == 1 and "NOT ready" in out and "know no leader" in out,
              "text: exit 1 and the reason: %d %r" % (rc, out))

    for nid in (2, 3):
        launch(procs, work, "n%d" % nid, node_args(ringkvd, work, nid))
    ready = wait_until(40, lambda: all(health(admin_of(n))[0] == 0 for n in NODES), 0.3)
    adm.check(ready, "every node ready: %s" % {n: health(admin_of(n)) for n in NODES})
    before = leaders_settled(NODES, 20)
    adm.check(before is not None, "the shards have leaders")
    if not before:
        return
    for nid, s in before.items():
        adm.check(adm.total(s, "ringkv_raft_leader_changes_total") >= 1,
                  "node %d: its replicas learned a first leader" % nid)

    # Writes through the node that leads the fewest shards: some are forwarded.
    via = min(before, key=lambda n: adm.total(before[n], "ringkv_raft_replicas", role="leader"))
    for i in range(40):
        r = subprocess.run([RINGKV, "--no-route", "-a", "%s:%d" % (NODES[via], CLIENT_PORT),
                            "put", "health-key-%d" % i, "v"], capture_output=True, text=True,
                           timeout=30)
        adm.check(r.returncode == 0, "put through node %d: %d %r" % (via, r.returncode, r.stderr))
    after = {n: metrics(n) for n in NODES}
    adm.check(all(after.values()), "every node answers /metrics")
    if not all(after.values()):
        return
    sent = adm.total(after[via], "ringkv_node_forwards_sent_total") - \
        adm.total(before[via], "ringkv_node_forwards_sent_total")
    answered = adm.total(after[via], "ringkv_node_forwards_answered_total")
    received = sum(adm.total(after[n], "ringkv_node_forwards_received_total") -
                   adm.total(before[n], "ringkv_node_forwards_received_total")
                   for n in NODES if n != via)
    adm.check(sent >= 1, "node %d forwarded writes to leaders (%s)" % (via, sent))
    adm.check(answered >= sent, "their answers came back (%s of %s)" % (answered, sent))
    adm.check(received >= sent, "the leaders executed what was forwarded (%s of %s)" %
              (received, sent))
    for name in ("ringkv_node_forward_timeouts_total", "ringkv_node_forwards_refused_total",
                 "ringkv_snapshots_sent_total", "ringkv_snapshots_received_total",
                 "ringkv_snapshots_sent_bytes_total", "ringkv_snapshots_received_bytes_total"):
        adm.check((name, frozenset({("core", "0")})) in after[via],
                  "%s is exposed" % name)

    # kill -9 the node leading the most shards: the survivors see new leaders.
    victim = max(after, key=lambda n: adm.total(after[n], "ringkv_raft_replicas", role="leader"))
    procs["n%d" % victim].send_signal(signal.SIGKILL)
    procs["n%d" % victim].wait(timeout=20)
    rest = [n for n in NODES if n != victim]
    settled = leaders_settled(rest, 30)
    adm.check(settled is not None, "the survivors lead every shard again")
    if not settled:
        return
    changes_before = sum(adm.total(after[n], "ringkv_raft_leader_changes_total") for n in rest)
    led = adm.total(after[victim], "ringkv_raft_replicas", role="leader")

    def changes_now():
        now = {n: metrics(n) for n in rest}
        return sum(adm.total(now[n] or {}, "ringkv_raft_leader_changes_total") for n in rest)
    # Each shard the victim led has two surviving replicas that learn its
    # new leader: the one elected at once, the other from its first
    # message, which may come a moment after the leaders are counted.
    wait_until(10, lambda: changes_now() - changes_before >= 2 * led, 0.2)
    changes_after = changes_now()
    adm.check(changes_after - changes_before >= 2 * led,
              "leader changes on the survivors rose by >= %d: %s -> %s" %
              (2 * led, changes_before, changes_after))
    for name in ("ringkv_raft_pre_votes_total", "ringkv_raft_elections_total"):
        rose = sum(adm.total(settled[n], name) - adm.total(after[n], name) for n in rest)
        # Each shard the victim led needed a pre-vote round and an election.
        adm.check(rose >= led, "%s on the survivors rose by >= %d: %s" % (name, led, rose))
    adm.check(wait_until(20, lambda: all(health(admin_of(n))[0] == 0 for n in rest), 0.3),
              "the survivors are ready again")

    # kill -9 a second node: the last one's leaders hear from no majority
    # and step down within their terms (check-quorum).
    settled = {n: metrics(n) for n in rest}
    if not all(settled.values()):
        adm.check(False, "every survivor answers /metrics")
        return
    last = max(rest, key=lambda n: adm.total(settled[n], "ringkv_raft_replicas", role="leader"))
    second = [n for n in rest if n != last][0]
    led = adm.total(settled[last], "ringkv_raft_replicas", role="leader")
    lost0 = adm.total(settled[last], "ringkv_raft_quorum_losses_total")
    procs["n%d" % second].send_signal(signal.SIGKILL)
    procs["n%d" % second].wait(timeout=20)
    stepped = wait_until(30, lambda: adm.total(metrics(last) or {},
                                               "ringkv_raft_quorum_losses_total") - lost0 >= led,
                         0.3)
    adm.check(led >= 1 and stepped,
              "node %d's %d leaders stepped down by check-quorum (quorum losses %s -> %s)" %
              (last, led, lost0, adm.total(metrics(last) or {}, "ringkv_raft_quorum_losses_total")))


def main():
    global RINGKV
    ringkvd, RINGKV = programs_from_argv(__doc__)
    procs = {}
    with work_dir("ringkv-node-health-") as work:
        try:
            unreachable()
            single_node(ringkvd, work, procs)
            cluster(ringkvd, work, procs)
        finally:
            adm.stop_all(procs, {name: os.path.join(work, name + ".err") for name in procs})
    return adm.verdict("node health")


if __name__ == "__main__":
    sys.exit(main())
