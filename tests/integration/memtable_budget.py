#!/usr/bin/env python3
"""The core's memtable budget (cluster/core_budget.c, issue #18): with
--memtable-budget below what the writes leave in memtables, the core seals
the largest ones for a flush; once writes stop every core's memtables hold
no more than the budget, by the budget's own count too; every key written
is still there; and a hot shard's flushes do not make the core seal its
cold shards' small memtables.

usage: memtable_budget.py RINGKVD RINGKV-BENCH RINGKV

Each case starts one node (one core, 16 shards, --memtable-size 16MiB so
that no memtable fills on its own, --memtable-budget 2MiB) and stops it.
  spread: ringkv-bench writes 30,000 values of 3,000 bytes over 2,000 keys
          (6 MB live); metrics from the admin port, keys counted by a scan.
  uneven: --memtable-budget 8MiB; 2,000 small writes over 200 keys (about
          20 KB per shard, under the budget), then 10,000 values of 3,000
          bytes to one key: only the hot key's shard may have SSTables
          afterwards. (A guard: the over-sealing the review found, with
          a 64 MiB memtable and 80 MB to one key, did not show in this
          shorter run even with the old comparison.)
Exits 0 when every check passes, 1 otherwise.
"""
import glob
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
HOT_BUDGET = 8 << 20  # flushes long enough for sweeps to fall inside them


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


class Node:
    def __init__(self, ringkvd, cli, data, budget):
        self.cli = cli
        self.data = data
        self.addr = f"127.0.0.1:{free_port()}"
        self.admin = f"127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen(
            [ringkvd, "--cores", "1", "--shards", "16", "--memtable-size", "16MiB",
             "--memtable-budget", str(budget), "--listen", self.addr, "--admin-listen",
             self.admin, "--data-dir", data, "--log-level", "warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def ready(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if subprocess.run([self.cli, "-a", self.addr, "-t", "2", "put", "probe", "x"],
                              capture_output=True).returncode == 0:
                return True
            time.sleep(0.2)
        return False

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def bench(binary, addr, keys, requests, value_size):
    return subprocess.run(
        [binary, "--addr", addr, "--ratio", "0:1", "--keys", str(keys), "--value-size",
         str(value_size), "--requests", str(requests), "--connections", "8", "--warmup", "0",
         "--seed", "7"], capture_output=True, text=True, timeout=120)


def settled(node, budget=BUDGET):
    """Memtable bytes once the sweeps sealed down to the budget (or 20 s)."""
    held = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        held = metric(node.admin, "ringkv_memtable_bytes")
        if held <= budget:
            break
        time.sleep(0.2)
    return held


def spread(node, bench_bin, failures):
    if metric(node.admin, "ringkv_memtable_budget_bytes") != BUDGET:
        failures.append("spread: ringkv_memtable_budget_bytes is not --memtable-budget")
    run = bench(bench_bin, node.addr, KEYS, REQUESTS, 3000)
    if run.returncode != 0:
        failures.append(f"spread: ringkv-bench failed: {run.stderr.strip()[-300:]}")
    held = settled(node)
    counted = metric(node.admin, "ringkv_memtable_budget_used_bytes")
    seals = metric(node.admin, "ringkv_memtable_budget_seals_total")
    flushes = metric(node.admin, "ringkv_flushes_total")
    if held is None or held > BUDGET:
        failures.append(f"spread: memtables hold {held} bytes after the writes, "
                        f"budget {BUDGET}")
    if counted != held:
        failures.append(f"spread: the budget counts {counted} bytes, the memtables hold {held}")
    if seals < 1 or flushes < seals:
        failures.append(f"spread: seals {seals}, flushes {flushes}: the budget sealed nothing")
    scan = subprocess.run([node.cli, "-a", node.addr, "-t", "10", "scan", "--prefix", "key:"],
                          capture_output=True, text=True)
    found = sum(1 for line in scan.stdout.splitlines() if line.startswith("key:"))
    if scan.returncode != 0 or found != KEYS:
        failures.append(f"spread: scan found {found} keys (exit {scan.returncode}), "
                        f"want {KEYS}")
    print(f"spread: memtables {held:.0f} bytes (budget {BUDGET}, counted {counted:.0f}), "
          f"seals {seals:.0f}, flushes {flushes:.0f}")


def uneven(node, bench_bin, failures):
    run = bench(bench_bin, node.addr, 200, 2000, 100)
    if run.returncode != 0:
        failures.append(f"uneven: cold writes failed: {run.stderr.strip()[-300:]}")
    run = bench(bench_bin, node.addr, 1, 10000, 3000)
    if run.returncode != 0:
        failures.append(f"uneven: hot writes failed: {run.stderr.strip()[-300:]}")
    held = settled(node, HOT_BUDGET)
    seals = metric(node.admin, "ringkv_memtable_budget_seals_total")
    time.sleep(1)  # the last flush's table installed
    with_tables = sorted(
        os.path.basename(d) for d in glob.glob(os.path.join(node.data, "shard-*"))
        if os.path.isdir(d) and glob.glob(os.path.join(d, "*.sst")))
    if seals < 3:
        failures.append(f"uneven: {seals} seals for 30 MB to one shard, budget {HOT_BUDGET}")
    if len(with_tables) != 1:
        failures.append(f"uneven: SSTables in {with_tables}: cold shards were sealed")
    print(f"uneven: memtables {held:.0f} bytes, seals {seals:.0f}, shards with tables "
          f"{with_tables}")


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 1
    ringkvd, bench_bin, cli = sys.argv[1:]
    failures = []
    root = tempfile.mkdtemp(prefix="ringkv-budget-")
    try:
        for name, case, budget in (("spread", spread, BUDGET), ("uneven", uneven, HOT_BUDGET)):
            node = Node(ringkvd, cli, os.path.join(root, name), budget)
            try:
                if node.ready():
                    case(node, bench_bin, failures)
                else:
                    failures.append(f"{name}: the node took no write within 30 s")
            finally:
                node.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
