#!/usr/bin/env python3
"""The admin port of a 3-node cluster: /ready waits for every local replica
to know its leader (a lone node of three is live but not ready), the replication metrics add up across the nodes (each
shard led once, followed twice; every core connected to both peers), and
after kill -9 of one node the survivors elect new leaders, report the dead
peer as disconnected and are ready again. The nodes log with
--log-format json, and every line must be one JSON object.

Per-replica series (--metrics-per-replica): absent from a node started
with it off; with it on, every shard has exactly one leader across the
three nodes' scrapes, the nodes agree on each shard's term, each node's
leaders add up to its per-core ringkv_raft_replicas, commit and applied
indexes move with writes and agree once idle, and each leader reports a
lag of 0 for both followers once idle; after kill -9, the survivors count
the leader changes of the shards the dead node led; restarted after the
leaders compacted their logs past it (64 KiB memtables, --snapshot-lag
16), it catches up by snapshots that the leaders count as sent and it as
received, per replica and per core alike. With a dashboard, every
ringkv_ metric it queries is one the cluster exposes.

usage: test_admin_cluster.py RINGKVD [DASHBOARD.json]

Starts three ringkvd processes on 127.0.0.21-23 (one core, four shards,
three replicas each) and stops them all, whatever happens. Exits 0 when all
checks pass, 1 otherwise, 77 when prometheus_client is missing.
"""
import json
import os
import shutil
import signal
import socket
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
RESP_PORT = 28004
IDLE_SECONDS = 20  # bound on catching up once writes stop (a loaded machine)


def node_args(ringkvd, work, nid, extra=()):
    cluster = ",".join("%d=%s:%d" % (i, a, PEER_PORT) for i, a in sorted(NODES.items()))
    host = NODES[nid]
    return [ringkvd, "--node-id", str(nid), "--initial-cluster", cluster,
            "--listen", "%s:%d" % (host, CLIENT_PORT),
            "--admin-listen", "%s:%d" % (host, ADMIN_PORT),
            "--data-dir", os.path.join(work, "n%d" % nid), "--cores", "1",
            "--resp-listen", "%s:%d" % (host, RESP_PORT),
            "--shards", str(SHARDS), "--log-level", "info", "--log-format", "json",
            "--memtable-size", "64KiB", "--snapshot-lag", "16"] + list(extra)


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


def launch(ringkvd, work, procs, nid, extra=()):
    out = open(os.path.join(work, "n%d.out" % nid), "w")
    err = open(os.path.join(work, "n%d.err" % nid), "w")
    procs[nid] = subprocess.Popen(node_args(ringkvd, work, nid, extra), stdout=out,
                                  stderr=err)


def resp_set(nid, count, value_size, prefix):
    """SETs count keys through node nid's RESP port, pipelined 50 at a time
    (the node forwards each to its shard's leader); returns how many
    answered +OK."""
    ok = 0
    value = b"v" * value_size
    with socket.create_connection((NODES[nid], RESP_PORT), timeout=10) as s:
        f = s.makefile("rb")
        for start in range(0, count, 50):
            batch = range(start, min(count, start + 50))
            cmds = b""
            for i in batch:
                key = ("%s-%d" % (prefix, i)).encode()
                cmds += b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
                    len(key), key, len(value), value)
            s.sendall(cmds)
            for _ in batch:
                ok += f.readline() == b"+OK\r\n"
    return ok


def replicas(s):
    """One node's per-replica series: {shard: {"roles": [...], "lag":
    {follower: lag}, "term": ..., "commit_index": ..., ...}}."""
    out = {}
    for (name, labels), v in s.items():
        if not name.startswith("ringkv_replica_"):
            continue
        ls = dict(labels)
        r = out.setdefault(int(ls["shard"]), {"roles": [], "lag": {}})
        key = name[len("ringkv_replica_"):]
        if key == "role":
            if v == 1:
                r["roles"].append(ls["role"])
        elif key == "follower_lag_entries":
            r["lag"][int(ls["follower"])] = v
        else:
            r[key] = v
    return out


def replica_problems(samples, holders=None):
    """What is wrong with the per-replica series of samples ({nid: scrape}),
    [] when nothing: every node has one role per shard and exports the
    series, each shard one leader, one term; the leader has a lag series for
    each other holder; a node's leaders equal its ringkv_raft_replicas."""
    problems = []
    holders = holders or sorted(samples)
    views = {n: replicas(s) for n, s in samples.items()}
    for n, v in views.items():
        if adm.total(samples[n], "ringkv_metrics_per_replica_enabled") != 1:
            problems.append("node %d: per-replica series not enabled" % n)
        if sorted(v) != list(range(SHARDS)):
            problems.append("node %d: replicas of shards %s" % (n, sorted(v)))
        for shard, r in v.items():
            if len(r["roles"]) != 1:
                problems.append("node %d shard %d: roles %s" % (n, shard, r["roles"]))
        leaders = sum(r["roles"] == ["leader"] for r in v.values())
        if leaders != adm.total(samples[n], "ringkv_raft_replicas", role="leader"):
            problems.append("node %d: %d leader replicas, ringkv_raft_replicas says %s" %
                            (n, leaders, adm.total(samples[n], "ringkv_raft_replicas",
                                                   role="leader")))
    for shard in range(SHARDS):
        led = [n for n, v in views.items() if v.get(shard, {}).get("roles") == ["leader"]]
        if len(led) != 1:
            problems.append("shard %d: leaders on nodes %s" % (shard, led))
            continue
        terms = {n: v.get(shard, {}).get("term") for n, v in views.items()}
        if len(set(terms.values())) != 1:
            problems.append("shard %d: terms %s" % (shard, terms))
        lag = views[led[0]][shard]["lag"]
        want = sorted(h for h in holders if h != led[0])
        if sorted(lag) != want:
            problems.append("shard %d: leader %d reports lag of %s, want %s" %
                            (shard, led[0], sorted(lag), want))
    return problems


def idle_problems(samples, holders=None):
    """replica_problems, and: every replica applied what it knows committed,
    all copies of a shard agree on commit, every follower's lag is 0."""
    problems = replica_problems(samples, holders)
    views = {n: replicas(s) for n, s in samples.items()}
    for shard in range(SHARDS):
        commits = {n: v.get(shard, {}).get("commit_index") for n, v in views.items()}
        applied = {n: v.get(shard, {}).get("applied_index") for n, v in views.items()}
        if len(set(commits.values())) != 1 or commits != applied:
            problems.append("shard %d: commit %s applied %s" % (shard, commits, applied))
        for n, v in views.items():
            lag = v.get(shard, {}).get("lag", {})
            if any(lag.values()):
                problems.append("shard %d: leader %d reports lag %s" % (shard, n, lag))
    return problems


def settle(nids, seconds, judge, **kw):
    """Scrapes nids until judge(samples) finds no problem; returns
    (samples, problems) of the last round."""
    deadline = time.time() + seconds
    while True:
        samples = {n: metrics(n) for n in nids}
        problems = ["node %d: no /metrics" % n for n, s in samples.items() if not s]
        if not problems:
            problems = judge(samples, **kw)
        if not problems or time.time() > deadline:
            return samples, problems
        time.sleep(0.2)


def by_shard(samples, nid, name):
    return {int(dict(ls)["shard"]): v for (n, ls), v in samples[nid].items() if n == name}


def check_off(nid):
    """--metrics-per-replica off: no ringkv_replica_ series, the gauge says
    0, the per-core series are there."""
    s = metrics(nid)
    adm.check(s is not None, "node %d answers /metrics" % nid)
    if s is None:
        return
    names = sorted({n for n, _ in s if n.startswith("ringkv_replica_")})
    adm.check(names == [], "node %d, per-replica off: no ringkv_replica_ series (%s)" %
              (nid, names))
    adm.check(adm.total(s, "ringkv_metrics_per_replica_enabled") == 0,
              "node %d, per-replica off: ringkv_metrics_per_replica_enabled 0" % nid)
    adm.check(sum(v for (n, _), v in s.items() if n == "ringkv_raft_replicas") == SHARDS,
              "node %d, per-replica off: per-core ringkv_raft_replicas still there" % nid)


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


def wait_answering(nid, seconds):
    deadline = time.time() + seconds
    r = (None, None, "")
    while time.time() < deadline:
        r = ready(nid)
        if r[0] is not None:
            break
        time.sleep(0.05)
    return r


def run(ringkvd, work, procs, dashboard):
    # One node of three cannot elect: it serves /health but is not ready.
    # Started with --metrics-per-replica off, it exports no replica series.
    launch(ringkvd, work, procs, 1, ["--metrics-per-replica", "off"])
    wait_answering(1, 20)
    time.sleep(1.0)  # several election timeouts: still no majority
    r = ready(1)
    adm.check(r[0] == 503 and "4 shard replicas know no leader" in r[2],
              "a lone node is not ready: %s %s" % (r[0], r[2]))
    adm.check(adm.get(base(1), "/health")[0] == 200, "a lone node is live")
    check_off(1)
    # Again with the default (auto: 4 replicas are under its limit).
    procs[1].terminate()
    procs[1].wait(timeout=30)
    launch(ringkvd, work, procs, 1)
    wait_answering(1, 20)
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

    # Per replica: one leader per shard, one term, lags of both followers.
    samples, problems = settle(NODES, 15, replica_problems)
    adm.check(problems == [], "per-replica series agree: %s" % problems)
    if dashboard:
        adm.check_dashboard(dashboard, {n for s in samples.values() if s for n, _ in s})
    for nid in NODES:
        changes = by_shard(samples, nid, "ringkv_replica_leader_changes_total")
        adm.check(sorted(changes) == list(range(SHARDS)) and all(changes.values()),
                  "node %d: every replica learned of a leader: %s" % (nid, changes))
    leader_commit = lambda smp: {
        shard: max(by_shard(smp, n, "ringkv_replica_commit_index").get(shard, 0)
                   for n in smp) for shard in range(SHARDS)}
    before = leader_commit(samples)
    # Writes move commit and applied; once idle every copy agrees, lag 0.
    resp_before = samples[2]
    written = resp_set(2, 40, 16, "a")
    adm.check(written == 40, "40 writes through node 2's RESP port: %d" % written)
    # RESP requests by command, timed, errors counted.
    with socket.create_connection((NODES[2], RESP_PORT), timeout=10) as s:
        f = s.makefile("rb")
        s.sendall(b"*2\r\n$3\r\nGET\r\n$3\r\na-1\r\n*1\r\n$6\r\nNOSUCH\r\n")
        adm.check(f.readline() == b"$16\r\n" and f.readline() == b"v" * 16 + b"\r\n",
                  "RESP GET of a written key")
        adm.check(f.readline().startswith(b"-ERR unknown command"), "RESP unknown command")
    resp_after = metrics(2)
    for name, labels, want in [
            ("ringkv_requests_total", {"protocol": "resp", "op": "set"}, 40),
            ("ringkv_requests_total", {"protocol": "resp", "op": "get"}, 1),
            ("ringkv_requests_total", {"protocol": "resp", "op": "unknown"}, 1),
            ("ringkv_replies_total", {"protocol": "resp", "status": "error"}, 1),
            ("ringkv_write_duration_seconds_count", {"protocol": "resp"}, 40),
            ("ringkv_read_duration_seconds_count", {"protocol": "resp"}, 1)]:
        moved = adm.total(resp_after, name, **labels) - adm.total(resp_before, name, **labels)
        adm.check(moved == want, "node 2 %s%s moved by %s, want %d" % (name, labels, moved,
                                                                       want))
    samples, problems = settle(NODES, IDLE_SECONDS, idle_problems)
    adm.check(problems == [], "idle: applied = commit everywhere, lag 0: %s" % problems)
    # A new cluster's empty replicas settled as members (none asking,
    # undecided or joining), and none is repairing.
    for name in ("ringkv_raft_undecided_replicas", "ringkv_raft_joining_replicas",
                 "ringkv_raft_repairing_replicas", "ringkv_raft_asking_replicas"):
        stuck = {nid: adm.total(samples[nid], name) for nid in samples}
        adm.check(not any(stuck.values()), "%s after the writes: %s" % (name, stuck))
    after = leader_commit(samples)
    moved = {shard: after[shard] - before[shard] for shard in range(SHARDS)}
    print("commit indexes moved by shard with 40 writes: %s" % moved, flush=True)
    adm.check(sum(moved.values()) >= 40 and all(moved.values()),
              "commit indexes moved with 40 writes on every shard: %s" % moved)

    # Kill the node that leads the most shards; the other two take over.
    victim = max(samples, key=lambda n: adm.total(samples[n], "ringkv_raft_replicas",
                                                   role="leader"))
    victim_led = [shard for shard, r in replicas(samples[victim]).items()
                  if r["roles"] == ["leader"]]
    changes_before = {n: by_shard(samples, n, "ringkv_replica_leader_changes_total")
                      for n in NODES}
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

    # The survivors' copies of the shards the dead node led saw a new leader.
    samples, problems = settle(rest, 15, replica_problems, holders=sorted(NODES))
    adm.check(problems == [], "survivors' per-replica series agree: %s" % problems)
    for shard in victim_led:
        grew = [n for n in rest if by_shard(samples, n, "ringkv_replica_leader_changes_total")
                .get(shard, 0) > changes_before[n].get(shard, 0)]
        adm.check(grew == rest, "shard %d (led by the dead node %d): leader changes "
                  "counted on %s, want %s" % (shard, victim, grew, rest))

    # Writes while it is down: the leaders flush (64 KiB memtables) and
    # compact their logs past it (--snapshot-lag 16), so it comes back by
    # snapshots.
    written = resp_set(rest[0], 400, 1000, "b")
    adm.check(written == 400, "400 writes while node %d is down: %d" % (victim, written))
    launch(ringkvd, work, procs, victim)
    wait_answering(victim, 20)
    samples, problems = settle(NODES, IDLE_SECONDS + 20, idle_problems)
    adm.check(problems == [], "node %d caught up, every copy agrees: %s" % (victim, problems))
    sent = sum(sum(by_shard(samples, n, "ringkv_replica_snapshots_sent_total").values())
               for n in rest)
    received = sum(by_shard(samples, victim, "ringkv_replica_snapshots_received_total").values())
    received_bytes = sum(by_shard(samples, victim,
                                  "ringkv_replica_snapshots_received_bytes_total").values())
    print("node %d rejoined: %d snapshots sent to it, %d installed (%d bytes)" %
          (victim, sent, received, received_bytes), flush=True)
    adm.check(sent >= 1 and received >= 1 and received_bytes > 0,
              "snapshots per replica: %d sent by the survivors, %d received by node %d "
              "(%d bytes)" % (sent, received, victim, received_bytes))
    for n in NODES:
        for per_replica, per_core in (
                ("ringkv_replica_snapshots_sent_total", "ringkv_snapshots_sent_total"),
                ("ringkv_replica_snapshots_sent_bytes_total",
                 "ringkv_snapshots_sent_bytes_total"),
                ("ringkv_replica_snapshots_received_total", "ringkv_snapshots_received_total"),
                ("ringkv_replica_snapshots_received_bytes_total",
                 "ringkv_snapshots_received_bytes_total")):
            a = sum(by_shard(samples, n, per_replica).values())
            b = adm.total(samples[n], per_core)
            adm.check(a == b, "node %d: %s sums to %s, %s says %s" %
                      (n, per_replica, a, per_core, b))
    return rest


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__)
        return 2
    work = tempfile.mkdtemp(prefix="ringkv-admin-cluster-")
    procs = {}
    try:
        survivors = run(sys.argv[1], work, procs, sys.argv[2] if len(sys.argv) == 3 else None)
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
