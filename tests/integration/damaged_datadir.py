#!/usr/bin/env python3
"""A damaged data dir: ringkvd refuses, names the file, deletes nothing.

usage: damaged_datadir.py RINGKVD [ROUNDS]

Real ringkvd processes (a one-node cluster: 2 cores, 4 shards, 1 MiB
memtables, so every shard holds SSTables up to its manifest's flushed index
and its core's Raft log, DIR/core-<i>/log-*.log, holds the acknowledged
entries after it) on a data dir that got ~6 MB of acknowledged writes over
RESP and a clean stop. Then, on fresh copies of that dir, one kind of damage
each (docs/DAMAGED-DATADIR.md): the node must exit 1 within a bound, its
message must name the damaged file, and the listing of the dir must be the
same after as before (nothing deleted). Harmless additions (a stray file, a
table below the manifest's next file number), a torn tail and a removed
PLACEMENT (derived from CLUSTER) must be reported, left in place, and every
acknowledged key served; an unfinished flush's table is removed. An
undamaged copy serves every key. Then ROUNDS (default 12) rounds of random
damage (files removed, truncated, flipped, added, core logs cut at a record
boundary): each start either refuses with a file of the dir named, or
serves every acknowledged key with its value (a key in a damaged block may answer a data-loss error,
never a wrong value or nil). Every process is stopped, every wait bounded.
"""
import glob
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from ringkv_test import stop_process

KEYS = 6000
VALUE_LEN = 1000
START_TIMEOUT = 30.0
failures = 0


def check(ok, what):
    global failures
    print("%s %s" % ("ok  " if ok else "FAIL", what), flush=True)
    failures += not ok


def value_of(i):
    return ((b"%06d:" % i) * (VALUE_LEN // 7 + 1))[:VALUE_LEN]


def key_of(i):
    return b"dd:%06d" % i


class Node:
    """A ringkvd on DIR; .port is its RESP port once started."""

    def __init__(self, ringkvd, data_dir, log, host="127.0.0.1", extra=()):
        self.log = open(log, "wb")
        self.logpath = log
        self.proc = subprocess.Popen(
            [ringkvd, "--data-dir", data_dir, "--listen", host + ":0",
             "--resp-listen", host + ":0", "--cores", os.environ.get("DD_CORES", "2"),
             "--shards", os.environ.get("DD_SHARDS", "4"),
             "--memtable-size", os.environ.get("DD_MEMTABLE", "1048576")] + list(extra),
            stdout=subprocess.PIPE, stderr=self.log)
        self.port = None

    def wait_ready(self):
        """The RESP port, or None if the process exited (exit code kept)."""
        deadline = time.monotonic() + START_TIMEOUT
        buf = b""
        os.set_blocking(self.proc.stdout.fileno(), False)
        while time.monotonic() < deadline:
            chunk = self.proc.stdout.read()
            if chunk:
                buf += chunk
                m = re.search(rb"RESP2 \(Redis protocol\) on [^:]+:(\d+)", buf)
                if m:
                    self.port = int(m.group(1))
                    return self.port
            if self.proc.poll() is not None:
                return None
            time.sleep(0.05)
        return None

    def wait_exit(self):
        try:
            return self.proc.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        code = stop_process(self.proc, 30)
        self.log.flush()
        return code

    def stderr(self):
        self.log.flush()
        with open(self.logpath, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        # Under -Db_sanitize a report exits 1 too: never a pass.
        if "Sanitizer" in text or "runtime error:" in text:
            check(False, "sanitizer report:\n" + text[-3000:])
        return text


class Resp:
    """A minimal pipelining RESP2 client over one socket."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""

    def send(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        line = self._line()
        if line[:1] == b"$":
            n = int(line[1:])
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                chunk = self.s.recv(1 << 16)
                if not chunk:
                    raise ConnectionError("closed")
                self.buf += chunk
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if line[:1] == b"-":
            return Exception(line[1:].decode("utf-8", "replace"))
        return line[1:]

    def close(self):
        self.s.close()


def write_keys(port):
    c = Resp(port)
    acked = 0
    for lo in range(0, KEYS, 200):
        hi = min(KEYS, lo + 200)
        for i in range(lo, hi):
            c.send(b"SET", key_of(i), value_of(i))
        for i in range(lo, hi):
            acked += c.reply() == b"OK"
    c.close()
    return acked


def read_keys(port, missing_ok=False):
    """(served, wrong, data_loss): wrong counts nil (unless missing_ok) or a
    wrong value."""
    c = Resp(port)
    served = wrong = lost = 0
    for lo in range(0, KEYS, 200):
        hi = min(KEYS, lo + 200)
        for i in range(lo, hi):
            c.send(b"GET", key_of(i))
        for i in range(lo, hi):
            r = c.reply()
            if r == value_of(i):
                served += 1
            elif r is None and missing_ok:
                pass
            elif isinstance(r, Exception) and re.search(r"checksum|DATA|loss|damaged",
                                                        str(r), re.I):
                lost += 1
            else:
                if wrong < 3:
                    print("     key %d: %r" % (i, r if not isinstance(r, bytes) else r[:40]))
                wrong += 1
    c.close()
    return served, wrong, lost


def listing(d):
    out = set()
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            p = os.path.relpath(os.path.join(root, name), d)
            if p != "LOCK":
                out.add(p)
    return out


def start_refused(ringkvd, d, logdir, what, must_name, may_add=(), extra=(),
                  host="127.0.0.1"):
    """Starts on damaged `d`: exit 1 naming must_name, listing unchanged
    (but for the paths in may_add)."""
    before = listing(d)
    n = Node(ringkvd, d, os.path.join(logdir, "refused.log"), host=host, extra=extra)
    port = n.wait_ready()
    if port is not None:
        check(False, "%s: started instead of refusing" % what)
        n.stop()
        return
    code = n.wait_exit()
    err = n.stderr()
    n.stop()
    check(code == 1, "%s: exit 1 (got %s)" % (what, code))
    check(must_name in err, "%s: the message names %s" % (what, must_name))
    after = listing(d) - set(may_add)
    check(before == after, "%s: nothing deleted or added (gone: %s, new: %s)" % (
        what, sorted(before - after)[:5], sorted(after - before)[:5]))
    last = [l for l in err.splitlines() if "ringkvd:" in l]
    print("     " + (last[-1][:300] if last else err[-300:]), flush=True)


def start_serves(ringkvd, d, logdir, what):
    """Starts on `d`: every acknowledged key served; returns stderr."""
    n = Node(ringkvd, d, os.path.join(logdir, "serves.log"))
    port = n.wait_ready()
    check(port is not None, "%s: starts" % what)
    if port is None:
        n.stop()
        print(n.stderr()[-2000:])
        return ""
    served, wrong, lost = read_keys(port)
    check(served == KEYS, "%s: every acknowledged key served (%d of %d, %d wrong, "
          "%d data-loss)" % (what, served, KEYS, wrong, lost))
    code = n.stop()
    check(code == 0, "%s: stops cleanly" % what)
    return n.stderr()


def segments(d, core):
    return sorted(glob.glob(os.path.join(d, "core-%d" % core, "log-*.log")))


def tables(d, shard):
    return sorted(glob.glob(os.path.join(d, "shard-%d" % shard, "*.sst")))


def data_end(path):
    """Offset after the last non-zero byte (the records end there or before)."""
    with open(path, "rb") as f:
        data = f.read()
    return len(data.rstrip(b"\0"))


def fresh(pristine, work):
    if os.path.exists(work):
        shutil.rmtree(work)
    shutil.copytree(pristine, work)
    return work


def records(path):
    """(offset, length) of each whole record of a core log segment
    (docs/cluster/core-log.md: page 0 of 4096 bytes, records of a 48-byte
    header and payload_len bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    out, off = [], 4096
    while off + 48 <= len(data) and data[off:off + 48] != bytes(48):
        n = int.from_bytes(data[off:off + 4], "little")
        if off + 48 + n > len(data):
            break
        out.append((off, 48 + n))
        off += 48 + n
    return out


def start_half_created(ringkvd, d, tmp, what):
    """A dir a first start left part way (no OPENED): starts, empty."""
    n = Node(ringkvd, d, os.path.join(tmp, "half.log"))
    port = n.wait_ready()
    check(port is not None, "%s: starts" % what)
    if port is not None:
        served, wrong, lost = read_keys(port, missing_ok=True)
        check(wrong == 0 and lost == 0, "%s: no wrong value (%d served)" % (what, served))
    check(n.stop() == 0, "%s: stops cleanly" % what)
    n.stderr()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli), as shard/crc32c.h computes it."""
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def le(v, n):
    return v.to_bytes(n, "little")


def log_mark(seq, count, end):
    """A durable-end mark slot (docs/cluster/core-log.md)."""
    body = le(seq, 8) + le(count, 8) + le(end, 8)
    return le(0x4B4D4C43, 4) + le(crc32c(body), 4) + body


def log_page0(seq, mark_end=4096):
    """Page 0 of a core log segment, format 2: header and both marks."""
    h = b"RKVCLOG\x01" + le(2, 4) + le(0, 4) + le(seq, 8) + le(0, 4)
    page = bytearray(4096)
    page[0:32] = h + le(crc32c(h), 4)
    page[512:544] = log_mark(seq, 2, mark_end)
    page[1024:1056] = log_mark(seq, 3, mark_end)
    return bytes(page)


def log_record(kind, group=0, a=0, b=0):
    """A payload-less core log record."""
    rest = bytes([kind, 0, 0, 0]) + le(0, 4) + le(group, 8) + le(a, 8) + le(b, 8)
    head = le(0, 4) + le(crc32c(rest), 4) + rest
    return head + le(crc32c(head), 4) + le(0, 4)


def run_repair(ringkvd, d, *flags):
    p = subprocess.run([ringkvd, "repair", "--data-dir", d] + list(flags),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    text = p.stdout.decode(errors="replace")
    print("   $ ringkvd repair %s -> %d\n   | %s" % (" ".join(flags), p.returncode,
          "\n   | ".join(text.splitlines()[-6:])), flush=True)
    return p.returncode, text


def repair_cases(ringkvd, pristine, tmp):
    """`ringkvd repair` checks core logs as recovery does: the durable-end
    mark of each segment and the SEAL the next segment holds."""
    work = os.path.join(tmp, "work")
    d = fresh(pristine, work)
    rc, text = run_repair(ringkvd, d, "--dry-run")
    check(rc == 0 and "nothing to drop" in text, "repair: an undamaged dir has nothing to drop")
    check("checked: core-1/log-00000000000000000001.log" in text,
          "repair: reports each core log segment it checked")

    d = fresh(pristine, work)
    seg = segments(d, 1)[-1]
    recs = records(seg)
    off = recs[-3][0]
    size = os.path.getsize(seg)
    with open(seg, "r+b") as f:
        f.seek(off)
        f.write(bytes(size - off))
    rc, text = run_repair(ringkvd, d, "--dry-run")
    check(rc == 1 and "cannot mend: core-1/log-00000000000000000001.log: offset %d: " % off
          in text and "durable-end mark" in text,
          "repair: the last records zeroed below the mark: cannot mend, file and offset named")

    # A second segment whose SEAL says where the first one's records end.
    d = fresh(pristine, work)
    seg = segments(d, 1)[-1]
    recs = records(seg)
    end = recs[-1][0] + recs[-1][1]
    seg2 = os.path.join(d, "core-1", "log-00000000000000000002.log")
    with open(seg2, "wb") as f:
        f.write(log_page0(2) + log_record(5, a=1) + log_record(7, a=1, b=end))
        f.write(bytes(4096 - 2 * 48))
    rc, text = run_repair(ringkvd, d, "--dry-run")
    check(rc == 0 and "its SEAL was checked against the segment before" in text,
          "repair: a SEAL that matches is reported and accepted")
    # Its last records zeroed and its mark rewound to before them (as if
    # never marked): only the SEAL can tell.
    off = recs[-3][0]
    with open(seg, "r+b") as f:
        f.write(log_page0(1, off))
        f.seek(off)
        f.write(bytes(os.path.getsize(seg) - off))
    rc, text = run_repair(ringkvd, d, "--dry-run")
    check(rc == 1 and "cannot mend: core-1/log-00000000000000000001.log: its records end at "
          "offset %d, but core-1/log-00000000000000000002.log" % off in text and
          "says they end at %d" % end in text,
          "repair: the SEAL of the next segment refuses the zeroed end")
    start_refused(ringkvd, d, tmp, "core-1's first segment zeroed below the next one's SEAL",
                  "core-1/log-00000000000000000001.log")


def damage_cases(ringkvd, pristine, tmp):
    work = os.path.join(tmp, "work")
    rel = lambda p: os.path.relpath(p, work)

    # A shard's MANIFEST names its tables and the flushed index.
    d = fresh(pristine, work)
    check(len(tables(d, 0)) > 0, "shard 0 holds tables")
    os.unlink(os.path.join(d, "shard-0", "MANIFEST"))
    start_refused(ringkvd, d, tmp, "MANIFEST removed", "shard-0/MANIFEST")

    d = fresh(pristine, work)
    open(os.path.join(d, "shard-1", "MANIFEST"), "wb").close()
    start_refused(ringkvd, d, tmp, "MANIFEST empty", "shard-1/MANIFEST")

    d = fresh(pristine, work)
    shutil.rmtree(os.path.join(d, "shard-2"))
    start_refused(ringkvd, d, tmp, "shard dir removed", "shard-2")

    d = fresh(pristine, work)
    t = tables(d, 3)
    check(len(t) > 0, "shard 3 holds tables")
    if t:
        os.unlink(t[0])
        start_refused(ringkvd, d, tmp, "table removed", rel(t[0]))

    d = fresh(pristine, work)
    t = tables(d, 0)
    if t:
        os.truncate(t[-1], os.path.getsize(t[-1]) // 3)
        start_refused(ringkvd, d, tmp, "table truncated", rel(t[-1]))

    # The identity: without CLUSTER the placement cannot be trusted.
    d = fresh(pristine, work)
    os.unlink(os.path.join(d, "CLUSTER"))
    start_refused(ringkvd, d, tmp, "CLUSTER removed", "CLUSTER")

    # The core logs: every acknowledged entry after a shard's flushed index
    # is only there.
    d = fresh(pristine, work)
    for p in segments(d, 0):
        os.unlink(p)
    start_refused(ringkvd, d, tmp, "every core-0 log segment removed", "core-0")

    d = fresh(pristine, work)
    shutil.rmtree(os.path.join(d, "core-1"))
    start_refused(ringkvd, d, tmp, "core-1 removed", "core-1")

    d = fresh(pristine, work)
    seg = segments(d, 0)[-1]
    os.truncate(seg, 0)
    start_refused(ringkvd, d, tmp, "last core-0 segment truncated to 0 bytes", rel(seg))

    d = fresh(pristine, work)
    seg = segments(d, 1)[-1]
    recs = records(seg)
    check(len(recs) > 10, "core-1's last segment holds records (%d)" % len(recs))
    if recs:
        off, length = recs[len(recs) // 2]
        os.truncate(seg, off + 48 + length // 3)
        start_refused(ringkvd, d, tmp, "core-1 log cut mid-record", rel(seg))

    # Cut at a record boundary just after the segment's checkpoint: the
    # file parses, but the shards' manifests say entries up to their
    # flushed index were there.
    d = fresh(pristine, work)
    seg = segments(d, 0)[-1]
    recs = records(seg)
    if len(recs) > 2:
        os.truncate(seg, recs[2][0])
        start_refused(ringkvd, d, tmp, "core-0 log cut at a record boundary", "core-0")

    # Cut at a record boundary above every flushed index: the file parses,
    # but segments are sized in whole pages with zeros after the records.
    d = fresh(pristine, work)
    seg = segments(d, 1)[-1]
    recs = records(seg)
    cuts = [off for off, _ in recs[-6:] if off % 4096 != 0]
    check(len(cuts) > 0, "core-1's last records give a cut point")
    if cuts:
        os.truncate(seg, cuts[0])
        start_refused(ringkvd, d, tmp, "core-1 log cut at a record boundary near its end",
                      rel(seg))

    # The last records zeroed from a record boundary, the file's size
    # kept (as a cut at a record and page boundary followed by
    # preallocated space looks): the segment's durable-end mark, written
    # once they were synced, says where they ended.
    for back in (1, 3):
        d = fresh(pristine, work)
        seg = segments(d, 1)[-1]
        recs = records(seg)
        if len(recs) > back:
            off = recs[-back][0]
            size = os.path.getsize(seg)
            with open(seg, "r+b") as f:
                f.seek(off)
                f.write(bytes(size - off))
            start_refused(ringkvd, d, tmp, "core-1's last %d records zeroed" % back,
                          rel(seg))

    # A dir without OPENED is a half-created one, but a shard whose tables
    # hold entries still needs its log.
    d = fresh(pristine, work)
    os.unlink(os.path.join(d, "OPENED"))
    for p in segments(d, 1):
        os.unlink(p)
    # (The log, finding no segment, starts a new one before the shard's
    # check refuses: an empty segment, which the next start refuses too.)
    start_refused(ringkvd, d, tmp, "no OPENED, core-1 log removed", "core-1",
                  may_add=["core-1/log-00000000000000000001.log"])

    d = fresh(pristine, work)
    for name in os.listdir(d):
        if name not in ("CLUSTER", "PLACEMENT"):
            p = os.path.join(d, name)
            shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
    start_half_created(ringkvd, d, tmp, "half-created dir (CLUSTER only, no OPENED)")

    # A torn tail (a crash mid-write: bytes of a record never completed,
    # zeros after) is cut as before, and every acknowledged key served.
    d = fresh(pristine, work)
    seg = segments(d, 0)[-1]
    end = data_end(seg)
    with open(seg, "r+b") as f:
        f.seek(end)
        f.write(b"\x5a" * 40)
    err = start_serves(ringkvd, d, tmp, "torn tail in core-0's log")
    check("torn" in err, "torn tail reported")

    # PLACEMENT is derived from CLUSTER (never read): written again.
    d = fresh(pristine, work)
    os.unlink(os.path.join(d, "PLACEMENT"))
    start_serves(ringkvd, d, tmp, "PLACEMENT removed")
    check(os.path.exists(os.path.join(d, "PLACEMENT")), "PLACEMENT written again")

    # A table numbered at or above the manifest's next file number is an
    # unfinished flush's (a crash): removed once the log agrees with the
    # manifest, and every key still served.
    d = fresh(pristine, work)
    t = tables(d, 2)
    if t:
        unfinished = os.path.join(d, "shard-2", "900000.sst")
        shutil.copy(t[0], unfinished)
        err = start_serves(ringkvd, d, tmp, "an unfinished job's table")
        check(not os.path.exists(unfinished) and "900000.sst" in err,
              "the unfinished job's table removed and reported")

    # Additions: reported, left alone, every key served.
    d = fresh(pristine, work)
    t = tables(d, 1)
    stray_table = os.path.join(d, "shard-1", "000000.sst")
    if t:
        shutil.copy(t[0], stray_table)
    stray = os.path.join(d, "shard-1", "operator-notes.txt")
    top = os.path.join(d, "backup.tar")
    in_log = os.path.join(d, "core-0", "log-old.bak")
    for p in (stray, top, in_log):
        with open(p, "wb") as f:
            f.write(b"not ringkv's\n")
    err = start_serves(ringkvd, d, tmp, "stray files")
    for p in ([stray_table] if t else []) + [stray, top, in_log]:
        check(os.path.exists(p), "stray %s left in place" % rel(p))
        check(os.path.basename(p) in err, "stray %s reported" % rel(p))


def cluster_case(ringkvd, tmp):
    """Three nodes (R = 3, on 127.0.5.11-13, peer port from 25000-25899):
    a follower whose core log is gone is refused too -- its hard state
    (the vote it cast) went with it, and voting again could elect two
    leaders in one term."""
    port = 25000 + os.getpid() % 900
    ic = ",".join("%d=127.0.5.%d:%d" % (i, 10 + i, port) for i in (1, 2, 3))
    dirs = [os.path.join(tmp, "cluster%d" % i) for i in (1, 2, 3)]

    def node(i):
        return Node(ringkvd, dirs[i - 1], os.path.join(tmp, "cluster%d.log" % i),
                    host="127.0.5.%d" % (10 + i),
                    extra=["--node-id", str(i), "--initial-cluster", ic,
                           "--election-timeout", "300ms"])

    nodes = [node(i) for i in (1, 2, 3)]
    try:
        ready = [n.wait_ready() is not None for n in nodes]
        check(all(ready), "three nodes start (%s)" % ready)
        if not all(ready):
            for n in nodes:
                print(n.stderr()[-1500:])
            return
        time.sleep(3)  # elections: every group's hard state is written
    finally:
        codes = [n.stop() for n in nodes]
    check(codes == [0, 0, 0], "three nodes stop cleanly (%s)" % codes)
    for n in nodes:
        n.stderr()
    check(all(os.path.exists(os.path.join(d, "OPENED")) for d in dirs), "OPENED on each")
    for p in segments(dirs[2], 0):
        os.unlink(p)
    start_refused(ringkvd, dirs[2], tmp, "node 3 of 3, core-0 log removed", "core-0",
                  extra=["--node-id", "3", "--initial-cluster", ic,
                         "--election-timeout", "300ms"], host="127.0.5.13")


def random_rounds(ringkvd, pristine, tmp, rounds, seed):
    rng = random.Random(seed)
    work = os.path.join(tmp, "work")
    for r in range(rounds):
        d = fresh(pristine, work)
        entries = listing(d)
        files = sorted(p for p in entries if os.path.isfile(os.path.join(d, p)))
        done = []
        for _ in range(rng.randint(1, 3)):
            p = rng.choice(files)
            full = os.path.join(d, p)
            kind = rng.choice(["remove", "truncate", "flip", "add", "cut"])
            if not os.path.exists(full):
                continue
            size = os.path.getsize(full)
            # A core log cut at a record boundary (at a page boundary too:
            # the segment's durable-end mark tells it; the node was
            # stopped cleanly, so every batch was marked).
            cuts = [off for off, _ in records(full)] \
                if kind == "cut" and p.startswith("core-") else []
            if kind == "cut" and cuts:
                os.truncate(full, rng.choice(cuts))
            elif kind == "cut":
                kind = "truncate"
                os.truncate(full, rng.randint(0, max(0, size - 1)))
            elif kind == "remove":
                os.unlink(full)
            elif kind == "truncate":
                os.truncate(full, rng.randint(0, max(0, size - 1)))
            elif kind == "flip" and size > 0:
                # Where the data is: a flip in never-written zeros is no
                # damage. In a core log, not in the last record: a bad
                # payload with zeros after it is what a torn write looks
                # like, and is cut (docs/DAMAGED-DATADIR.md, limits).
                end = data_end(full) or size
                if p.startswith("core-"):
                    recs = records(full)
                    end = recs[-1][0] if recs else end
                off = rng.randrange(max(1, end))
                with open(full, "r+b") as f:
                    f.seek(off)
                    b = f.read(1)
                    f.seek(off)
                    f.write(bytes([b[0] ^ (1 << rng.randrange(8))]))
            else:
                kind = "add"
                p = os.path.join(os.path.dirname(p), rng.choice(
                    ["stray.txt", "000000.sst", "log-x.log", "MANIFEST.old"]))
                with open(os.path.join(d, p), "wb") as f:
                    f.write(os.urandom(rng.randint(0, 4096)))
            done.append("%s %s" % (kind, p))
        what = "round %d (%s)" % (r, ", ".join(done))
        n = Node(ringkvd, d, os.path.join(tmp, "round.log"))
        port = n.wait_ready()
        if port is None:
            code = n.wait_exit()
            err = n.stderr()
            n.stop()
            # A path in the dir, or the dir itself (a missing shard dir).
            named = [p for p in entries if os.path.join(d, p) in err] + \
                (["data dir"] if "data dir %s" % d in err else [])
            check(code == 1 and len(named) > 0,
                  "%s: refused (exit %s) naming %s" % (what, code, named[:3]))
            if code != 1 or not named:
                print(err[-1500:])
            continue
        served, wrong, lost = read_keys(port)
        code = n.stop()
        n.stderr()
        check(wrong == 0 and served + lost == KEYS and code == 0,
              "%s: served %d, data-loss errors %d, wrong or nil %d, exit %s" % (
                  what, served, lost, wrong, code))


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__)
        return 2
    ringkvd = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) == 3 else 12
    seed = int(os.environ.get("DAMAGE_SEED", str(int(time.time()))))
    print("seed %d (DAMAGE_SEED to repeat)" % seed, flush=True)
    tmp = tempfile.mkdtemp(prefix="ringkv-damaged-")
    try:
        pristine = os.path.join(tmp, "pristine")
        n = Node(ringkvd, pristine, os.path.join(tmp, "first.log"))
        port = n.wait_ready()
        if port is None:
            n.stop()
            print(n.stderr()[-2000:])
            check(False, "first start")
            return 1
        acked = write_keys(port)
        check(acked == KEYS, "%d of %d writes acknowledged" % (acked, KEYS))
        check(n.stop() == 0, "first node stops cleanly")
        check(os.path.exists(os.path.join(pristine, "OPENED")), "OPENED recorded")
        start_serves(ringkvd, fresh(pristine, os.path.join(tmp, "work")), tmp,
                     "undamaged restart")
        damage_cases(ringkvd, pristine, tmp)
        repair_cases(ringkvd, pristine, tmp)
        cluster_case(ringkvd, tmp)
        random_rounds(ringkvd, pristine, tmp, rounds, seed)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%s: %d failure(s)" % ("FAIL" if failures else "PASS", failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
