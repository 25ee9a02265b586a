#!/usr/bin/env python3
"""A table with a damaged block under a running node, then `ringkvd repair`.

usage: corrupt_table.py RINGKVD

A one-node ringkvd (1 core, 1 shard, 256 KiB memtables, ports 34101-34102 on
127.0.14.1) gets 2,500 acknowledged 1 KB writes and a clean stop; bytes are
flipped in the first data block of the shard's oldest table. Restarted:
- every key reads its value or a DATA_LOSS error (never nil, never a wrong
  value), and at least one reads DATA_LOSS;
- INFO reports the damaged table; 4,000 writes of other keys are all
  accepted (compaction goes on around the table, level 0 stays small);
  overwrites of keys in its range, whose compaction needs the damaged
  table, go on until level 0 is full, then are refused with an error that
  names the damage (before this change, writes went on and level 0 grew
  without limit), and the shard dir holds a bounded number of tables;
- `ringkvd repair` refuses while the node runs (the dir is locked);
- after a restart, INFO still reports the table and a write is refused.
Stopped: `repair --dry-run` lists the damaged table (with its key range)
and a stray file, changes nothing (exit 3); `repair --yes` moves both into
quarantine/ and rewrites the manifest (exit 0); the node starts, serves
every acknowledged key with its last value except those only the dropped
table held (inside its listed key range, not overwritten), accepts writes again, and INFO reports no damage; a second repair finds nothing.
Every process is stopped, every wait bounded.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from ringkv_test import RespReader, resp_command, stop_process

HOST = "127.0.14.1"
PEER_PORT = 34101
RESP_PORT = 34102
KEYS = 2500
MORE = 4000
VALUE_LEN = 1000
failures = 0


def check(ok, what):
    global failures
    print("%s %s" % ("ok  " if ok else "FAIL", what), flush=True)
    failures += not ok


def value_of(prefix, i):
    return ((b"%s%06d:" % (prefix, i)) * (VALUE_LEN // 9 + 1))[:VALUE_LEN]


def key_of(prefix, i):
    return b"%s:%06d" % (prefix, i)


class Node:
    def __init__(self, ringkvd, data_dir, log):
        self.logpath = log
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(
            [ringkvd, "--data-dir", data_dir, "--listen", "%s:%d" % (HOST, PEER_PORT),
             "--resp-listen", "%s:%d" % (HOST, RESP_PORT), "--cores", "1",
             "--shards", "1", "--memtable-size", "262144"],
            stdout=subprocess.DEVNULL, stderr=self.log)

    def wait_ready(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection((HOST, RESP_PORT), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.1)
        return False

    def stop(self):
        code = stop_process(self.proc, 30)
        self.log.close()
        return code


class Resp:
    """A RESP2 connection to the node: replies decoded by RespReader."""

    def __init__(self):
        self.s = socket.create_connection((HOST, RESP_PORT), timeout=20)
        self.reader = RespReader(self.s)

    def send(self, *args):
        self.s.sendall(resp_command(*args))

    def reply(self):
        return self.reader.reply()

    def call(self, *args):
        self.send(*args)
        return self.reply()

    def close(self):
        self.s.close()


def is_error(reply):
    """Whether a reply of Resp is an error (its line, b"-...")."""
    return isinstance(reply, bytes) and reply.startswith(b"-")


def write_pairs(pairs, expected, stop_on_error=False):
    """SETs (key, value) pairs in batches, recording acknowledged ones in
    `expected`. (count acknowledged, first error or None)."""
    c = Resp()
    acked, err = 0, None
    for lo in range(0, len(pairs), 100):
        part = pairs[lo:lo + 100]
        for k, v in part:
            c.send(b"SET", k, v)
        for k, v in part:
            r = c.reply()
            if r == b"+OK":
                expected[k] = v
                acked += 1
            elif err is None:
                err = r
        if err is not None and stop_on_error:
            break
    c.close()
    return acked, err


def keys(prefix, n, tag=b""):
    return [(key_of(prefix, i), value_of(prefix + tag, i)) for i in range(n)]


def read_all(expected, allowed_nil=None):
    """(served, lost, nil_allowed, wrong) over every key of `expected`."""
    c = Resp()
    served = lost = nil_ok = wrong = 0
    items = sorted(expected.items())
    for lo in range(0, len(items), 100):
        part = items[lo:lo + 100]
        for k, _ in part:
            c.send(b"GET", k)
        for k, v in part:
            r = c.reply()
            if r == v:
                served += 1
            elif is_error(r) and b"checksum" in r:
                lost += 1
            elif r is None and allowed_nil and allowed_nil(k):
                nil_ok += 1
            else:
                if wrong < 3:
                    print("     %r: %r" % (k, r if not isinstance(r, bytes) else r[:30]))
                wrong += 1
    c.close()
    return served, lost, nil_ok, wrong


def info_field(name):
    c = Resp()
    text = c.call(b"INFO", b"persistence")
    c.close()
    m = re.search(rb"%s:(\d+)" % name.encode(), text if isinstance(text, bytes) else b"")
    return int(m.group(1)) if m else None


def tables(shard_dir):
    return sorted(f for f in os.listdir(shard_dir) if f.endswith(".sst"))


def listing(d):
    out = set()
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            p = os.path.join(root, name)
            out.add((os.path.relpath(p, d), os.path.getsize(p) if name in files else 0))
    return out


def repair(ringkvd, data_dir, *flags):
    p = subprocess.run([ringkvd, "repair", "--data-dir", data_dir] + list(flags),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    text = p.stdout.decode("utf-8", "replace")
    print("   $ ringkvd repair %s -> %d\n   | %s" % (" ".join(flags), p.returncode,
                                                     text.strip().replace("\n", "\n   | ")))
    return p.returncode, text


def main():
    ringkvd = sys.argv[1]
    work = tempfile.mkdtemp(prefix="ringkv-corrupt-")
    data = os.path.join(work, "data")
    log = os.path.join(work, "ringkvd.log")
    shard_dir = os.path.join(data, "shard-0")
    node = None
    expected = {}
    try:
        node = Node(ringkvd, data, log)
        check(node.wait_ready(), "the node starts")
        acked, err = write_pairs(keys(b"ct", KEYS), expected)
        check(acked == KEYS and err is None, "%d writes acknowledged" % acked)
        check(node.stop() == 0, "clean stop")
        node = None
        names = tables(shard_dir)
        check(len(names) >= 2, "the shard holds %d tables" % len(names))
        victim = names[0]
        with open(os.path.join(shard_dir, victim), "r+b") as f:
            f.seek(100)
            junk = bytes(b ^ 0x5A for b in f.read(16))
            f.seek(100)
            f.write(junk)
        print("   flipped 16 bytes at offset 100 of shard-0/%s" % victim)

        node = Node(ringkvd, data, log)
        check(node.wait_ready(), "the node starts on the damaged dir")
        served, lost, _, wrong = read_all(expected)
        check(wrong == 0 and lost > 0 and served + lost == len(expected),
              "reads: %d served, %d DATA_LOSS, %d nil or wrong" % (served, lost, wrong))
        check(info_field("ringkv_damaged_tables") == 1, "INFO reports 1 damaged table")
        rc, text = repair(ringkvd, data, "--dry-run")
        check(rc == 1 and "stop ringkvd" in text, "repair refuses while the node runs")
        # Writes away from the damaged table's keys: compaction goes on
        # around it, nothing is refused, level 0 stays small.
        acked, err = write_pairs(keys(b"cu", MORE), expected)
        n = len(tables(shard_dir))
        check(acked == MORE and err is None and n <= len(names) + 8,
              "%d writes beside the damaged table accepted, %d tables" % (acked, n))
        check(info_field("ringkv_shards_refusing_writes") == 0, "INFO: no shard refusing")
        # Overwrites of keys in its range: the compaction they need takes
        # the damaged table, so level 0 fills to its limit, then writes are
        # refused, each with an error that names the damage.
        redo = [(key_of(b"ct", i % 400), value_of(b"ct2", i)) for i in range(MORE)]
        acked, err = write_pairs(redo, expected, stop_on_error=True)
        check(err is not None and b"damaged table" in err,
              "overwrites refused once level 0 is full: %d accepted, then %r" % (acked, err))
        n = len(tables(shard_dir))
        check(n <= len(names) + 8 + 14, "%d tables in the shard dir (bounded)" % n)
        check(info_field("ringkv_shards_refusing_writes") == 1, "INFO: 1 shard refusing writes")
        served, lost, _, wrong = read_all(expected)
        check(wrong == 0 and served + lost == len(expected),
              "reads still: %d served, %d DATA_LOSS, %d nil or wrong" % (served, lost, wrong))
        check(node.stop() == 0, "clean stop")
        node = None

        node = Node(ringkvd, data, log)
        check(node.wait_ready(), "restart")
        check(info_field("ringkv_damaged_tables") == 1, "after a restart INFO still reports it")
        _, err = write_pairs(keys(b"cv", 1), {})
        check(err is not None and b"damaged table" in err, "and a write is refused: %r" % err)
        check(node.stop() == 0, "clean stop")
        node = None

        with open(os.path.join(shard_dir, "notes.txt"), "w") as f:
            f.write("an operator's note\n")
        before = listing(data)
        rc, text = repair(ringkvd, data, "--dry-run")
        m = re.search(r'drop table: shard-0/(\d+\.sst) \(level \d+, \d+ entries, keys "([^"]*)"'
                      r' \.\. "([^"]*)"\)', text)
        check(rc == 3 and m is not None and m.group(1) == victim,
              "dry run lists the damaged table %s" % victim)
        check("move stray: shard-0/notes.txt" in text, "dry run lists the stray file")
        check(listing(data) == before, "dry run changed nothing")
        lo, hi = (m.group(2).encode(), m.group(3).encode()) if m else (b"", b"")
        rc, text = repair(ringkvd, data)
        check(rc == 3 and listing(data) == before, "without --yes nothing changes")

        rc, text = repair(ringkvd, data, "--yes")
        check(rc == 0, "repair --yes succeeds")
        q = os.path.join(data, "quarantine")
        moved = [os.path.relpath(os.path.join(r, f), q) for r, _, fs in os.walk(q) for f in fs]
        check(any(p.endswith("shard-0/" + victim) for p in moved) and
              any(p.endswith("shard-0/notes.txt") for p in moved) and
              any(p.endswith("shard-0/MANIFEST") for p in moved),
              "quarantine holds the table, the stray and the old MANIFEST: %s" % moved)
        check(not os.path.exists(os.path.join(shard_dir, victim)), "the table left the shard")

        node = Node(ringkvd, data, log)
        check(node.wait_ready(), "the node starts after the repair")
        with open(log, "rb") as f:
            said = f.read().decode(errors="replace")
        check(re.search(r"quarantine holds 1 entry, [0-9.]+ MiB \(newest repair-", said)
              is not None and "rm -rf" in said,
              "start-up reports what quarantine holds and how to remove it")
        overwritten = set(k for k, _ in redo[:acked])
        droppable = lambda k: lo <= k <= hi and k not in overwritten
        served, lost, nil_ok, wrong = read_all(expected, droppable)
        check(wrong == 0 and lost == 0 and nil_ok > 0,
              "every acknowledged key served but those only the dropped table held "
              "(%r..%r): %d served, %d nil" % (lo, hi, served, nil_ok))
        check(info_field("ringkv_damaged_tables") == 0, "INFO: no damaged table")
        acked, err = write_pairs(keys(b"cw", 50), expected)
        check(err is None and acked == 50, "writes accepted again")
        check(node.stop() == 0, "clean stop")
        node = None
        rc, text = repair(ringkvd, data, "--yes")
        check(rc == 0 and "nothing to drop" in text, "a second repair finds nothing")
    finally:
        if node is not None:
            node.stop()
        if failures:
            with open(log, "rb") as f:
                tail = f.read()[-4000:].decode("utf-8", "replace")
            print("--- ringkvd log (tail) ---\n" + tail)
        shutil.rmtree(work, ignore_errors=True)
    print("%d failure(s)" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
