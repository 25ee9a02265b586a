#!/usr/bin/env python3
"""DBSIZE's counting passes: shared by concurrent callers, ended by a stop
(issue 21, "DBSIZE exact"; server/redis_count.c).

One ringkvd (127.0.54.11, ports 54000 + 3 * (pid % 300) .., two cores, one
shard, 256 KiB memtables so that the shard holds SSTables and DBSIZE
counts them by a pass). N keys are loaded with MSET, then:
- shared: one SET, then DBSIZE sent at once on 12 connections (over both
  cores): every answer is exact, and the node ran one pass (INFO stats'
  ringkv_dbsize_scans goes up by 1), where each caller used to run its
  own (12);
- a write during a pass is not missed: DBSIZE sent on one connection, a
  key that sorts before every other written (so the running pass is past
  it) through another while the pass runs, then DBSIZE on a third: the
  third answer counts that key (a caller that came after a write waits
  for the next pass rather than joining the running one);
- stop: one SET, DBSIZE, and SIGTERM 20 ms later, while its pass runs:
  the pass ends at its next step, so the DBSIZE is answered (from the
  node's stored-key figure, DBSIZE's fallback when a shard's count fails)
  in less than half the time a pass takes (one DBSIZE after a SET, timed
  before);
  the pass used to run to its end first, and the stop waited for every
  pass running. The node exits without waiting out its grace period.
N (1,500,000 keys in one shard) makes a pass take about 0.4 s on the
shared 2-CPU test machine, twenty times the delay before the SIGTERM.

usage: resp_dbsize_passes.py RINGKVD
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp_cluster_dbsize import log_tails, verdict  # noqa: E402
from resp_cluster_expiry import connect_when_up, integer  # noqa: E402
from resp_strings import Conn  # noqa: E402

HOST = "127.0.54.11"
BASE = 54000 + 3 * (os.getpid() % 300)
KEYS = 1500000
BATCH = 500        # keys per MSET
CALLERS = 12
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what, flush=True)


def scans(conn):
    """Counting passes the node finished (INFO stats' ringkv_dbsize_scans)."""
    text = conn.call("INFO", "stats")
    at = text.find(b"ringkv_dbsize_scans:")
    return int(text[at:].split(b"\r\n", 1)[0].split(b":")[1])


def load(conn, n):
    """n keys k:0 .. k:n-1 by MSET, 20 commands in flight."""
    sent = 0
    pending = 0
    while sent < n or pending:
        while sent < n and pending < 20:
            args = ["MSET"]
            for i in range(sent, min(n, sent + BATCH)):
                args += ["k:%d" % i, "v%d" % i]
            conn.send(*args)
            sent = min(n, sent + BATCH)
            pending += 1
        got = conn.reader.raw_reply()
        check(got == b"+OK\r\n", "MSET answered %r" % got[:100])
        pending -= 1


def main():
    ringkvd = sys.argv[1]
    work = tempfile.mkdtemp(prefix="ringkv-resp-dbsize-passes-")
    log = work + "/ringkvd.log"
    proc = None
    finished = False
    try:
        proc = subprocess.Popen(
            [ringkvd, "--listen", "%s:%d" % (HOST, BASE), "--resp-listen",
             "%s:%d" % (HOST, BASE + 1), "--cores", "2", "--shards", "1",
             "--memtable-size", "256KiB", "--data-dir", work + "/data"],
            stdout=open(log, "w"), stderr=subprocess.STDOUT)
        rk = connect_when_up(HOST, BASE + 1)
        t0 = time.time()
        load(rk, KEYS)
        print("%d keys loaded in %.1f s" % (KEYS, time.time() - t0), flush=True)
        want = KEYS
        got = integer(rk.call("DBSIZE"))
        check(got == want, "DBSIZE %d after the load, want %d" % (got, want))
        before = scans(rk)
        check(before >= 1, "no counting pass after the load (%d): no SSTables?" % before)

        # One pass, timed: the yardstick of the stop below.
        rk.call("SET", "0", "1")
        want += 1
        t0 = time.time()
        got = integer(rk.call("DBSIZE"))
        one_pass = time.time() - t0
        check(got == want, "DBSIZE %d after a SET, want %d" % (got, want))
        print("one DBSIZE after a SET: %.3f s" % one_pass, flush=True)

        # Shared: a write, then 12 DBSIZEs at once.
        rk.call("SET", "a", "1")
        want += 1
        callers = [Conn(HOST, BASE + 1) for _ in range(CALLERS)]
        before = scans(rk)
        t0 = time.time()
        for c in callers:
            c.send("DBSIZE")
        answers = [c.reader.raw_reply() for c in callers]
        elapsed = time.time() - t0
        passes = scans(rk) - before
        print("%d concurrent DBSIZE: %.3f s, %d counting passes" % (CALLERS, elapsed, passes),
              flush=True)
        for i, a in enumerate(answers):
            check(a == b":%d\r\n" % want, "caller %d: DBSIZE %r, want %d" % (i, a, want))
        check(passes == 1, "%d concurrent DBSIZEs ran %d counting passes, want 1"
              % (CALLERS, passes))

        # A write during a pass is counted by a DBSIZE sent after it.
        first, writer, third = callers[0], callers[1], callers[2]
        rk.call("SET", "e", "1")
        want += 1
        first.send("DBSIZE")
        time.sleep(0.02)  # the pass has begun (it takes far longer)
        check(writer.call("SET", "\x01first", "1") == b"+OK\r\n", "the SET during the pass")
        want += 1
        got = integer(third.call("DBSIZE"))
        check(got == want, "DBSIZE after a SET during a pass: %d, want %d" % (got, want))
        got = integer(first.reader.raw_reply())
        check(got in (want - 1, want), "DBSIZE sent before the SET: %d, want %d or %d"
              % (got, want - 1, want))

        # Stop while a pass runs.
        rk.call("SET", "f", "1")
        rk.call("SET", "g", "1")
        t0 = time.time()
        first.send("DBSIZE")
        time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        first.sock.settimeout(30)
        try:
            reply = first.reader.raw_reply()
        except OSError as e:
            reply = repr(e).encode()
        answered = time.time() - t0
        proc.wait(timeout=30)
        exited = time.time() - t0
        print("DBSIZE then SIGTERM: %r after %.3f s (a pass takes %.3f s), exit after %.3f s"
              % (reply, answered, one_pass, exited), flush=True)
        # Once the pass is ended the node answers from its stored-key
        # figure (redis_format_stats' fallback for a shard that does not
        # answer): an integer either way, so the time tells.
        check(reply.startswith(b":"), "DBSIZE at the stop answered %r" % reply)
        check(answered < one_pass / 2,
              "DBSIZE at the stop answered after %.3f s: its pass (%.3f s) was not ended"
              % (answered, one_pass))
        with open(log, errors="replace") as f:
            text = f.read()
        check("grace period over" not in text, "the stop waited out its grace period")
        finished = not failures
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        if not finished:
            log_tails([log])
        subprocess.call(["rm", "-rf", work])
    return verdict(failures)


if __name__ == "__main__":
    sys.exit(main())
