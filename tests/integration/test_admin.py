#!/usr/bin/env python3
"""The admin port: /metrics in the Prometheus text format (checked line by
line and by Debian's prometheus_client parser), counters that move with
writes, /health and /ready, and clients that misbehave (silent, slow,
oversized, too many) without holding anything up. Also: the node reads
its settings from --config, and refuses a bad file with file:line; the
per-replica series follow the writes, and --metrics-per-replica auto
leaves them out over --metrics-per-replica-max replicas.

usage: test_admin.py RINGKVD RINGKV [DASHBOARD.json]

With a Grafana dashboard, also checks that every ringkv_ metric it queries
is one the node exposes.

Starts its own ringkvd (two cores, ephemeral ports) and stops it. Every
socket has a timeout. Exits 0 when all checks pass, 1 otherwise.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from ringkv_test import admin_exchange

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # Debian's python3-prometheus-client lives in the system interpreter; a
    # pyenv or venv python3 first on PATH does not see it.
    if os.path.exists("/usr/bin/python3") and sys.executable != "/usr/bin/python3":
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("test_admin: python3 module 'prometheus_client' not found, skipping")
    sys.exit(77)

TIMEOUT = 5.0
RINGKVD = None
failures = []

SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*'
    r'(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})?'
    r' (-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|\+Inf|-Inf|NaN)$')


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def get(base, path):
    """(status, headers, body) of GET base+path."""
    try:
        with urllib.request.urlopen(base + path, timeout=TIMEOUT) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def check_format(text):
    """Every line a comment or a sample; HELP and TYPE once per family."""
    seen_type = set()
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            if parts[1] == "TYPE":
                check(parts[2] not in seen_type, "TYPE twice for " + parts[2])
                seen_type.add(parts[2])
                check(parts[3] in ("counter", "gauge", "histogram"), "type " + line)
            continue
        check(SAMPLE.match(line) is not None, "not a sample line: %r" % line)
    check(text.endswith("\n"), "exposition ends with a newline")


def parse(text):
    """{(name, frozenset(labels)): value} with prometheus_client's parser,
    which also checks histograms are well formed (buckets, +Inf, count)."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
        if family.type == "histogram":
            by_core = {}
            for s in family.samples:
                if s.name.endswith("_bucket"):
                    key = frozenset((k, v) for k, v in s.labels.items() if k != "le")
                    by_core.setdefault(key, []).append((s.labels["le"], s.value))
            for key, buckets in by_core.items():
                values = [v for _, v in buckets]
                check(values == sorted(values), "buckets cumulative: %s" % family.name)
                check(buckets[-1][0] == "+Inf", "last bucket +Inf: %s" % family.name)
                count = samples.get((family.name + "_count", key))
                check(count == values[-1], "count = +Inf bucket: %s" % family.name)
    return samples


def scrape(base):
    """base's /metrics parsed, or None when it does not answer 200."""
    try:
        status, _, text = get(base, "/metrics")
    except OSError:
        return None
    return parse(text) if status == 200 else None


def total(samples, name, **labels):
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def verdict(what):
    """A test script's exit code: 1 with the number of failed checks, else 0."""
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all %s checks passed" % what)
    return 0


def stop_all(procs, logs):
    """Stops every process of procs (SIGTERM, then SIGKILL after 20 s);
    when a check failed, prints the tail of each {name: path} log."""
    for p in procs.values():
        if p.poll() is None:
            p.terminate()
    for p in procs.values():
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if failures:
        for name, path in logs.items():
            if os.path.exists(path):
                print("--- %s log (tail)" % name)
                with open(path) as f:
                    print("".join(f.readlines()[-20:]))


def start(ringkvd, args, work):
    out = open(os.path.join(work, "out"), "w+")
    err = open(os.path.join(work, "err"), "w+")
    p = subprocess.Popen([ringkvd] + args, stdout=out, stderr=err)
    deadline = time.time() + 20
    while time.time() < deadline:
        out.seek(0)
        text = out.read()
        m = re.search(r"admin \(.*\) on (http://[0-9.]+:\d+)", text)
        n = re.search(r"listening on ([0-9.]+:\d+)", text)
        if m and n:
            return p, m.group(1), n.group(1)
        if p.poll() is not None:
            break
        time.sleep(0.05)
    err.seek(0)
    print(err.read())
    raise SystemExit("ringkvd did not start")


def raw(base, data, wait_reply=True):
    """Sends raw bytes to the admin port; returns what came back."""
    host, port = base[len("http://"):].split(":")
    return admin_exchange(host, int(port), data, TIMEOUT, wait_reply=wait_reply,
                          ignore=(ConnectionResetError, socket.timeout))


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__)
        return 2
    global RINGKVD
    ringkvd, ringkv = sys.argv[1], sys.argv[2]
    RINGKVD = ringkvd
    dashboard = sys.argv[3] if len(sys.argv) == 4 else None
    work = tempfile.mkdtemp(prefix="ringkv-admin-")
    try:
        # A bad config file: refused with file:line before anything starts.
        bad = os.path.join(work, "bad.conf")
        with open(bad, "w") as f:
            f.write("# comment\n[storage]\ndata-dir = %s/bad\nno-such = 1\n" % work)
        r = subprocess.run([ringkvd, "--config", bad], capture_output=True, text=True,
                           timeout=20)
        check(r.returncode == 2, "bad config exits 2 (got %d)" % r.returncode)
        check("%s:4: unknown key 'no-such'" % bad in r.stderr, "file:line: " + r.stderr)

        conf = os.path.join(work, "ringkvd.conf")
        with open(conf, "w") as f:
            f.write("listen = 127.0.0.1:0\n"
                    "admin-listen = 127.0.0.1:0\n"
                    "[storage]\n"
                    "data-dir = %s/data\n"
                    "cores = 2\n"
                    "log-level = error\n" % work)
        # The flag overrides the file's log level.
        p, base, addr = start(ringkvd, ["--config", conf, "--log-level", "warn"], work)
        try:
            run(base, addr, ringkv, dashboard)
        finally:
            p.terminate()
            try:
                rc = p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = -1
            check(rc == 0, "ringkvd exits 0 on SIGTERM (got %d)" % rc)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all admin checks passed")
    return 0


def families(text):
    """Names declared by the exposition's TYPE lines (a family may have no
    sample: follower lags on a node without followers)."""
    return {line.split(" ")[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def check_dashboard(path, exposed):
    """Every ringkv_ name the dashboard queries is a name exposed."""
    with open(path) as f:
        panels = json.load(f)["panels"]
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    ids = [p["id"] for p in panels]
    check(len(ids) == len(set(ids)), "dashboard panel ids unique: %s" % ids)
    cells = [(p["gridPos"]["x"] + dx, p["gridPos"]["y"] + dy) for p in panels
             for dx in range(p["gridPos"]["w"]) for dy in range(p["gridPos"]["h"])]
    check(len(cells) == len(set(cells)), "dashboard panels do not overlap")
    for p in panels:
        refs = [t["refId"] for t in p["targets"]]
        check(len(refs) == len(set(refs)), "panel %s: refIds unique" % p["title"])
        for t in p["targets"]:
            check(t["expr"].count("(") == t["expr"].count(")") and
                  t["expr"].count("{") == t["expr"].count("}"),
                  "panel %s: brackets balance in %s" % (p["title"], t["expr"]))
    names = set(re.findall(r"ringkv_[a-z_]+", " ".join(exprs)))
    check(len(names) > 10, "dashboard queries ringkv metrics")
    check(any(n.startswith("ringkv_replica_") for n in names),
          "dashboard queries per-replica series")
    for name in sorted(names):
        check(name in exposed, "dashboard metric %s is exposed" % name)


def check_per_replica_limit():
    """--metrics-per-replica auto stops at --metrics-per-replica-max
    replicas (2 here, over a limit of 1); on ignores the limit."""
    for flag, enabled in (("auto", 0), ("on", 1)):
        other = tempfile.mkdtemp(prefix="ringkv-admin-limit-")
        try:
            p, base, _ = start(RINGKVD, ["--listen", "127.0.0.1:0", "--admin-listen",
                                         "127.0.0.1:0", "--data-dir", other + "/d",
                                         "--cores", "2", "--metrics-per-replica", flag,
                                         "--metrics-per-replica-max", "1"], other)
            try:
                status, _, text = get(base, "/metrics")
                check(status == 200, "/metrics with per-replica %s" % flag)
                check_format(text)
                s = parse(text)
                check(total(s, "ringkv_metrics_per_replica_enabled") == enabled,
                      "per-replica %s over the limit: enabled %d" % (flag, enabled))
                names = {name for name, _ in s if name.startswith("ringkv_replica_")}
                check(bool(names) == bool(enabled),
                      "per-replica %s over the limit: series %s" % (flag, sorted(names)))
                check(total(s, "ringkv_raft_replicas", role="leader") == 2,
                      "per-replica %s: per-core series there" % flag)
            finally:
                p.terminate()
                p.wait(timeout=20)
        finally:
            shutil.rmtree(other, ignore_errors=True)


def run(base, addr, ringkv, dashboard):
    status, headers, body = get(base, "/health")
    check(status == 200 and json.loads(body)["status"] == "ok", "/health: %d %s" % (status, body))
    status, headers, body = get(base, "/ready")
    check(status == 200 and json.loads(body)["ready"] is True, "/ready: %d %s" % (status, body))
    check(get(base, "/nope")[0] == 404, "unknown path is 404")
    reply = raw(base, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    check(reply.startswith(b"HTTP/1.1 405"), "POST is 405: %r" % reply[:40])
    reply = raw(base, b"garbage\r\n\r\n")
    check(reply.startswith(b"HTTP/1.1 400"), "garbage is 400: %r" % reply[:40])

    status, headers, before_text = get(base, "/metrics")
    check(status == 200, "/metrics is 200")
    check(headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
          "content type: %s" % headers.get("Content-Type"))
    check_format(before_text)
    before = parse(before_text)
    check(total(before, "ringkv_shards") == 2, "two shards")
    check(total(before, "ringkv_build_info") == 1, "build info once")

    n = 20
    for i in range(n):
        r = subprocess.run([ringkv, "-a", addr, "put", "key-%d" % i, "value-%d" % i],
                           capture_output=True, text=True, timeout=20)
        check(r.returncode == 0, "put %d: %s" % (i, r.stderr))
    r = subprocess.run([ringkv, "-a", addr, "get", "key-1"], capture_output=True, text=True,
                       timeout=20)
    check(r.returncode == 0, "get: %s" % r.stderr)

    status, headers, after_text = get(base, "/metrics")
    check_format(after_text)
    after = parse(after_text)
    for name, labels, at_least in [
            ("ringkv_requests_total", {"op": "put"}, n),
            ("ringkv_requests_total", {"op": "get"}, 1),
            ("ringkv_replies_total", {"status": "ok"}, n + 1),
            ("ringkv_wal_records_total", {}, n),
            ("ringkv_wal_syncs_total", {}, 1),
            ("ringkv_wal_bytes_total", {}, n * 10),
            ("ringkv_write_duration_seconds_count", {}, n),
            ("ringkv_connections_accepted_total", {}, n + 1),
            ("ringkv_network_received_bytes_total", {}, n * 10),
            ("ringkv_network_sent_bytes_total", {}, n),
            ("ringkv_admin_requests_total", {}, 1),
            ("ringkv_raft_proposals_total", {}, n)]:
        moved = total(after, name, **labels) - total(before, name, **labels)
        check(moved >= at_least, "%s%s moved by %s, want >= %d" % (name, labels, moved, at_least))
    check(total(after, "ringkv_memtable_bytes") > total(before, "ringkv_memtable_bytes"),
          "memtable bytes grew")
    # The Raft log's batches: each timed and its records counted once.
    synced = (total(after, "ringkv_wal_sync_duration_seconds_count") -
              total(before, "ringkv_wal_sync_duration_seconds_count"))
    check(1 <= synced <= total(after, "ringkv_wal_syncs_total") -
          total(before, "ringkv_wal_syncs_total"), "fdatasync histogram counted %s" % synced)
    check(total(after, "ringkv_wal_sync_duration_seconds_sum") >
          total(before, "ringkv_wal_sync_duration_seconds_sum"), "fdatasync time moved")
    check(total(after, "ringkv_wal_batch_records_sum") -
          total(before, "ringkv_wal_batch_records_sum") >= n, "records per batch counted")
    check(total(after, "ringkv_read_duration_seconds_count", protocol="native") -
          total(before, "ringkv_read_duration_seconds_count", protocol="native") >= 1,
          "native read timed")
    check(total(after, "ringkv_requests_total", op="invalid") ==
          total(before, "ringkv_requests_total", op="invalid"),
          "no request of the CLI counted as invalid")
    check("ringkv_compaction_seconds_total" in families(after_text),
          "compaction time exported")
    check(total(after, "ringkv_disk_full_shards") == 0, "no disk full")
    # A one-node cluster: every shard a group of one that leads itself.
    check(total(after, "ringkv_raft_replicas", role="leader") == 2, "two leaders")
    check(total(after, "ringkv_raft_replicas", role="follower") == 0, "no followers")
    check(total(after, "ringkv_raft_leaderless_replicas") == 0, "no leaderless replica")
    check(total(after, "ringkv_raft_proposals_unknown_total") == 0, "no unknown outcome")
    check(total(after, "ringkv_peer_nodes") == 0, "no peers")
    # Per replica (auto: 2 replicas are under the limit): each shard once,
    # led here, its commit and applied indexes moved by the writes.
    check(total(after, "ringkv_metrics_per_replica_enabled") == 1, "per-replica series on")
    roles = {dict(ls)["shard"]: dict(ls)["role"] for (name, ls) in after
             if name == "ringkv_replica_role"}
    check(roles == {"0": "leader", "1": "leader"}, "per-replica roles: %s" % roles)
    for name in ("ringkv_replica_commit_index", "ringkv_replica_applied_index"):
        moved = total(after, name) - total(before, name)
        check(moved >= n, "%s moved by %s with %d writes" % (name, moved, n))
    check(total(after, "ringkv_replica_commit_index") ==
          total(after, "ringkv_replica_applied_index"), "applied = commit when idle")
    check(not any(name == "ringkv_replica_follower_lag_entries" for name, _ in after),
          "no follower lag without followers")
    if dashboard:
        check_dashboard(dashboard, {name for name, _ in after} | families(after_text))

    check_per_replica_limit()

    # A second node on the same admin port fails at start, naming the flag.
    other = tempfile.mkdtemp(prefix="ringkv-admin-2-")
    try:
        r = subprocess.run([RINGKVD, "--listen", "127.0.0.1:0", "--data-dir", other + "/d",
                            "--admin-listen", base[len("http://"):]],
                           capture_output=True, text=True, timeout=20)
        check(r.returncode != 0 and "--admin-listen" in r.stderr,
              "second node on the admin port refused: %d %s" % (r.returncode, r.stderr))
    finally:
        shutil.rmtree(other, ignore_errors=True)

    # A silent client and a slow one hold nothing up; both are cut off.
    host, port = base[len("http://"):].split(":")
    silent = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    slow = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    slow.sendall(b"GET /met")
    t0 = time.time()
    check(get(base, "/health")[0] == 200, "/health beside a silent client")
    check(get(base, "/metrics")[0] == 200, "/metrics beside a slow client")
    check(time.time() - t0 < 2, "answers beside them come at once")
    r = subprocess.run([ringkv, "-a", addr, "put", "k", "v"], capture_output=True, timeout=20)
    check(r.returncode == 0, "client port works beside them")
    # Oversized head: 431, not a buffer overrun or a wait.
    reply = raw(base, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 5000 + b"\r\n\r\n")
    check(reply.startswith(b"HTTP/1.1 431"), "oversized head is 431: %r" % reply[:40])
    # The deadline (5 s) closes the silent and slow ones.
    for s, what in ((silent, "silent"), (slow, "slow")):
        s.settimeout(10)
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        check(data == b"", "%s client closed by the deadline" % what)
        s.close()
    check(time.time() - t0 < 9, "deadline near 5 s (%.1f s)" % (time.time() - t0))

    # More clients than slots: the excess is closed, the port recovers.
    hogs = [socket.create_connection((host, int(port)), timeout=TIMEOUT) for _ in range(20)]
    time.sleep(0.3)
    closed = 0
    for s in hogs:
        s.settimeout(0.2)
        try:
            if s.recv(10) == b"":
                closed += 1
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed += 1
    check(closed >= 4, "connections over the admin limit closed (%d)" % closed)
    r = subprocess.run([ringkv, "-a", addr, "get", "k"], capture_output=True, timeout=20)
    check(r.returncode == 0, "client port works while the admin port is full")
    for s in hogs:
        s.close()
    time.sleep(0.3)
    check(get(base, "/ready")[0] == 200, "/ready once the hogs left")


if __name__ == "__main__":
    sys.exit(main())
