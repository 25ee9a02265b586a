#!/usr/bin/env python3
"""A table with a damaged block under a running node, then `ringkvd repair`.

usage: corrupt_table.py RINGKVD

A one-node ringkvd (1 core, 1 shard, 256 KiB memtables, ports 34101-34102 on
127.0.14.1) gets 2,500 acknowledged 1 KB writes and a clean stop; bytes are
flipped in the first data block of the shard's oldest table. Restarted:
- every key reads its value or a DATA_LOSS error (never nil, never a wrong
  value), and at least one reads DATA_LOSS;
- INFO reports the damaged table; more writes go on until level 0 is full
  behind it, then every write is refused with an error naming the damage
  (bounded: 4,000 writes at most; before this change, writes went on and
  level 0 grew without limit), and the shard dir holds a bounded number of
  tables;
- `ringkvd repair` refuses while the node runs (the dir is locked);
- after a restart, INFO still reports the table and a write is refused.
Stopped: `repair --dry-run` lists the damaged table (with its key range)
and a stray file, changes nothing (exit 3); `repair --yes` moves both into
quarantine/ and rewrites the manifest (exit 0); the node starts, serves
every acknowledged key outside the dropped table's key range, accepts
writes again, and INFO reports no damage; a second repair finds nothing.
Every process is stopped, every wait bounded.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

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
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
        return self.proc.returncode


class Resp:
    def __init__(self):
        self.s = socket.create_connection((HOST, RESP_PORT), timeout=20)
        self.buf = b""

    def send(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)

    def _fill(self):
        chunk = self.s.recv(1 << 16)
        if not chunk:
            raise ConnectionError("closed")
        self.buf += chunk

    def reply(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        if line[:1] == b"$":
            n = int(line[1:])
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if line[:1] == b"-":
            return Exception(line[1:].decode("utf-8", "replace"))
        return line[1:]

    def call(self, *args):
        self.send(*args)
        return self.reply()

    def close(self):
        self.s.close()


def write_keys(prefix, n, stop_on_error=False):
    """(acknowledged indexes, first error or None)."""
    c = Resp()
    acked, err = [], None
    for lo in range(0, n, 100):
        hi = min(n, lo + 100)
        for i in range(lo, hi):
            c.send(b"SET", key_of(prefix, i), value_of(prefix, i))
        for i in range(lo, hi):
            r = c.reply()
            if r == b"OK":
                acked.append(i)
            elif err is None:
                err = r
        if err is not None and stop_on_error:
            break
    c.close()
    return acked, err


def read_keys(prefix, indexes, allowed_nil=None):
    """(served, lost, nil_allowed, wrong)."""
    c = Resp()
    served = lost = nil_ok = wrong = 0
    for lo in range(0, len(indexes), 100):
        part = indexes[lo:lo + 100]
        for i in part:
            c.send(b"GET", key_of(prefix, i))
        for i in part:
            r = c.reply()
            if r == value_of(prefix, i):
                served += 1
            elif isinstance(r, Exception) and re.search(r"checksum", str(r)):
                lost += 1
            elif r is None and allowed_nil and allowed_nil(key_of(prefix, i)):
                nil_ok += 1
            else:
                if wrong < 3:
                    print("     %r: %r" % (key_of(prefix, i), r if not isinstance(r, bytes)
                                           else r[:30]))
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
    try:
        node = Node(ringkvd, data, log)
        check(node.wait_ready(), "the node starts")
        acked, err = write_keys(b"ct", KEYS)
        check(len(acked) == KEYS and err is None, "%d writes acknowledged" % len(acked))
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
        served, lost, _, wrong = read_keys(b"ct", acked)
        check(wrong == 0 and lost > 0 and served + lost == len(acked),
              "reads: %d served, %d DATA_LOSS, %d nil or wrong" % (served, lost, wrong))
        check(info_field("ringkv_damaged_tables") == 1, "INFO reports 1 damaged table")
        rc, text = repair(ringkvd, data, "--dry-run")
        check(rc == 1 and "stop ringkvd" in text, "repair refuses while the node runs")
        more, err = write_keys(b"cu", MORE, stop_on_error=True)
        check(err is not None and "damaged table" in str(err),
              "writes refused once level 0 is full: %d accepted, then %r" % (len(more), err))
        n = len(tables(shard_dir))
        check(n <= len(names) + 14, "%d tables in the shard dir (bounded)" % n)
        check(info_field("ringkv_shards_refusing_writes") == 1, "INFO: 1 shard refusing writes")
        served, lost, _, wrong = read_keys(b"cu", more)
        check(wrong == 0 and lost == 0 and served == len(more),
              "the %d accepted writes are served" % served)
        check(node.stop() == 0, "clean stop")
        node = None

        node = Node(ringkvd, data, log)
        check(node.wait_ready(), "restart")
        check(info_field("ringkv_damaged_tables") == 1, "after a restart INFO still reports it")
        _, err = write_keys(b"cv", 1)
        check(err is not None and "damaged table" in str(err), "and a write is refused: %r" % err)
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
        in_range = lambda k: lo <= k <= hi
        served, lost, nil_ok, wrong = read_keys(b"ct", acked, in_range)
        outside = sum(1 for i in acked if not in_range(key_of(b"ct", i)))
        check(wrong == 0 and lost == 0 and served >= outside,
              "every key outside %r..%r served (%d served, %d nil inside it)" %
              (lo, hi, served, nil_ok))
        served, lost, _, wrong = read_keys(b"cu", more)
        check(wrong == 0 and served == len(more), "the later writes served")
        check(info_field("ringkv_damaged_tables") == 0, "INFO: no damaged table")
        acked2, err = write_keys(b"cw", 50)
        check(err is None and len(acked2) == 50, "writes accepted again")
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
