#!/usr/bin/env python3
"""The core's memtable budget (cluster/core_budget.c, issue #18): with
--memtable-budget below what the writes leave in memtables, the core seals
the largest ones for a flush, and once writes stop every core's memtables
hold no more than the budget; every key written is still read back.

usage: memtable_budget.py RINGKVD RINGKV-BENCH RINGKV

One node, one core, 16 shards, --memtable-size 16MiB (so no memtable fills
on its own), --memtable-budget 2MiB; ringkv-bench writes 30,000 values of
3,000 bytes over 2,000 keys (6 MB live). Metrics from the admin port, the
keys counted by a scan. The node is
stopped at the end. Exits 0 when every check passes, 1 otherwise.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

BUDGET = 2 << 20
KEYS = 2000
REQUESTS = 30000  # uniform over KEYS: a key is left unwritten with p = e^-15


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def metric(admin, name):
    with urllib.request.urlopen(f"http://{admin}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    found = False
    for line in text.splitlines():
        m = re.match(rf"^{name}(?:{{[^}}]*}})? (\S+)$", line)
        if m:
            total += float(m.group(1))
            found = True
    if not found:
        raise RuntimeError(f"no {name} in /metrics")
    return total


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 1
    ringkvd, bench, cli = sys.argv[1:]
    failures = []
    root = tempfile.mkdtemp(prefix="ringkv-budget-")
    port, admin_port = free_port(), free_port()
    addr, admin = f"127.0.0.1:{port}", f"127.0.0.1:{admin_port}"
    node = subprocess.Popen(
        [ringkvd, "--cores", "1", "--shards", "16", "--memtable-size", "16MiB",
         "--memtable-budget", "2MiB", "--listen", addr, "--admin-listen", admin,
         "--data-dir", os.path.join(root, "data"), "--log-level", "warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if subprocess.run([cli, "-a", addr, "-t", "2", "put", "probe", "x"],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
        else:
            failures.append("the node took no write within 30 s")
            raise SystemExit
        if metric(admin, "ringkv_memtable_budget_bytes") != BUDGET:
            failures.append("ringkv_memtable_budget_bytes is not --memtable-budget")
        run = subprocess.run(
            [bench, "--addr", addr, "--ratio", "0:1", "--keys", str(KEYS), "--value-size",
             "3000", "--requests", str(REQUESTS), "--connections", "8", "--warmup", "0",
             "--seed", "7"], capture_output=True, text=True, timeout=120)
        if run.returncode != 0:
            failures.append(f"ringkv-bench failed: {run.stderr.strip()[-300:]}")
        # Writes stopped: the sweeps seal until the memtables fit.
        held = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            held = metric(admin, "ringkv_memtable_bytes")
            if held <= BUDGET:
                break
            time.sleep(0.2)
        seals = metric(admin, "ringkv_memtable_budget_seals_total")
        flushes = metric(admin, "ringkv_flushes_total")
        if held is None or held > BUDGET:
            failures.append(f"memtables hold {held} bytes after the writes, budget {BUDGET}")
        if seals < 1 or flushes < seals:
            failures.append(f"seals {seals}, flushes {flushes}: the budget sealed nothing")
        # Every key written is there, across the flushed tables.
        scan = subprocess.run([cli, "-a", addr, "-t", "10", "scan", "--prefix", "key:"],
                              capture_output=True, text=True)
        found = sum(1 for line in scan.stdout.splitlines() if line.startswith("key:"))
        if scan.returncode != 0 or found != KEYS:
            failures.append(f"scan found {found} keys (exit {scan.returncode}), want {KEYS}")
        print(f"memtables {held:.0f} bytes (budget {BUDGET}), seals {seals:.0f}, "
              f"flushes {flushes:.0f}")
    except SystemExit:
        pass
    finally:
        node.terminate()
        try:
            node.wait(timeout=30)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
        shutil.rmtree(root, ignore_errors=True)
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
