#!/usr/bin/env python3
"""Nodes whose data dirs record different slot functions never form one cluster.

Three ringkvd nodes (127.0.17.21-23) start on new data dirs: each CLUSTER
file records 'slot-function 2' and writes through every node succeed.
All three stop; node 3's CLUSTER is rewritten as a build before hash tags
wrote it (no slot-function line, checksum recomputed with the system's
libxxhash), and all three start again. Node 3 now places keys by the
whole key, so its peers must refuse it: nodes 1 and 2 log a refused hello
naming 'slot function 1 ... ours is 2', node 3 logs the converse, and a
write through node 3 is never answered OK (its replicas hear no peer).
Nodes 1 and 2 still serve writes (a majority of every shard). Then node
3's file is put back as it was: node 3 rejoins and a write through it
succeeds.

usage: resp_cluster_slot_function.py RINGKVD
"""
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp_strings import Conn  # noqa: E402
from ringkv_test import start_cluster_node  # noqa: E402

HOSTS = ["127.0.17.21", "127.0.17.22", "127.0.17.23"]
PEER, NATIVE, RESP = 37041, 37042, 37043
WAIT_S = 30


def start_node(ringkvd, data, i, procs):
    procs[i] = start_cluster_node(ringkvd, data, HOSTS, i, (PEER, NATIVE, RESP),
                                  extra=("--log-level", "debug"))


def stop(procs):
    for p in procs:
        if p:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        if not p:
            continue
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def connect_when_up(host, port):
    deadline = time.time() + WAIT_S
    while True:
        try:
            return Conn(host, port)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def writes_ok(conn, key, seconds):
    """True once a SET through conn answers OK within `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if conn.call("SET", key, "1") == b"+OK\r\n":
                return True
        except OSError:
            return False
        time.sleep(0.2)
    return False


def without_slot_function(text):
    """CLUSTER as a build before hash tags wrote it: no slot-function line,
    the checksum line recomputed (XXH3-64 of every byte before it)."""
    xxh = ctypes.CDLL("libxxhash.so.0")
    xxh.XXH3_64bits.restype = ctypes.c_uint64
    xxh.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    lines = [l for l in text.split(b"\n") if l and not l.startswith(b"slot-function ")
             and not l.startswith(b"checksum ")]
    body = b"\n".join(lines) + b"\n"
    return body + b"checksum %016x\n" % xxh.XXH3_64bits(body, len(body))


def log_has(data, i, needle, seconds):
    deadline = time.time() + seconds
    path = os.path.join(data, "n%d.log" % (i + 1))
    while time.time() < deadline:
        if needle in open(path, "rb").read():
            return True
        time.sleep(0.2)
    return False


def main():
    ringkvd = sys.argv[1]
    data = tempfile.mkdtemp(prefix="ringkv-slot-function-")
    procs = [None, None, None]
    failures = []
    try:
        for i in range(3):
            start_node(ringkvd, data, i, procs)
        nodes = [connect_when_up(h, RESP) for h in HOSTS]
        for i, c in enumerate(nodes):
            if not writes_ok(c, "before:%d" % i, WAIT_S):
                failures.append("node %d: no write succeeded on new data dirs" % (i + 1))
        path = os.path.join(data, "n3", "CLUSTER")
        recorded = open(path, "rb").read()
        if b"\nslot-function 2\n" not in recorded:
            failures.append("a new data dir's CLUSTER lacks 'slot-function 2': %r" % recorded)
        stop(procs)

        with open(path, "wb") as f:
            f.write(without_slot_function(recorded))
        for i in range(3):
            start_node(ringkvd, data, i, procs)
        nodes = [connect_when_up(h, RESP) for h in HOSTS]
        for i in (0, 1):
            if not log_has(data, i, b"slot function 1 (its data dir's CLUSTER), ours is 2",
                           WAIT_S):
                failures.append("node %d never refused node 3's hello" % (i + 1))
        if not log_has(data, 2, b"slot function 2 (its data dir's CLUSTER), ours is 1", WAIT_S):
            failures.append("node 3 never refused its peers' hellos")
        if not log_has(data, 2, b"slot function 1, whole keys", 1):
            failures.append("node 3 does not say it places keys by the whole key")
        if writes_ok(nodes[2], "mixed:3", 5):
            failures.append("a write through node 3 (other slot function) succeeded")
        for i in (0, 1):
            if not writes_ok(nodes[i], "mixed:%d" % i, WAIT_S):
                failures.append("node %d: no write succeeded next to a refused node 3"
                                % (i + 1))
        stop(procs)

        with open(path, "wb") as f:
            f.write(recorded)
        for i in range(3):
            start_node(ringkvd, data, i, procs)
        nodes = [connect_when_up(h, RESP) for h in HOSTS]
        if not writes_ok(nodes[2], "after:3", WAIT_S):
            failures.append("node 3, its record restored: no write succeeded")
    finally:
        stop(procs)
        if failures:
            for i in range(3):
                sys.stdout.write(open(os.path.join(data, "n%d.log" % (i + 1)),
                                      errors="replace").read()[-3000:])
        shutil.rmtree(data, ignore_errors=True)
    for f in failures:
        print("FAIL", f)
    print("resp_cluster_slot_function: %d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
