#!/usr/bin/env python3
"""The driver of perf/mass-expiry.sh (see there): loads KEYS keys whose
deadlines all fall at one moment, then measures GET/SET latency of other
keys before and while the leaders' active expiry deletes them.

usage: mass_expiry.py HOSTS RESP_PORT PIDS KEYS DUE_AFTER_S BEFORE_S
  HOSTS, PIDS: comma-separated, one per node (PIDS: for CPU time)
"""
import socket
import sys
import threading
import time

PROBE_KEYS = 1000
BATCH = 300


class Conn:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, int):
                a = str(a)
            if isinstance(a, str):
                a = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("connection closed")
        self.buf += chunk

    def reply(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        if line[:1] == b"$" and int(line[1:]) >= 0:
            n = int(line[1:])
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if line[:1] == b"-":
            return RuntimeError(line.decode())
        return line

    def call(self, *args):
        self.sock.sendall(self.encode(*args))
        r = self.reply()
        if isinstance(r, RuntimeError):
            raise r
        return r


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def expired_total(conns):
    total = 0
    for c in conns:
        text = c.call("INFO", "stats")
        at = text.find(b"expired_keys:")
        total += int(text[at + 13:text.find(b"\r\n", at)])
    return total


def pct(sorted_us, p):
    if not sorted_us:
        return float("nan")
    return sorted_us[min(len(sorted_us) - 1, int(p * len(sorted_us)))]


def main():
    hosts = sys.argv[1].split(",")
    port = int(sys.argv[2])
    pids = [int(p) for p in sys.argv[3].split(",")]
    nkeys, due_after, before_s = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
    conns = [Conn(h, port) for h in hosts]
    for i, c in enumerate(conns):
        for _ in range(300):
            try:
                c.call("SET", "ready:%d" % i, "1")
                break
            except RuntimeError:
                time.sleep(0.1)
    for i in range(PROBE_KEYS):
        conns[i % 3].call("SET", "probe:%d" % i, "v" * 16)

    load_start = time.time()
    due_ms = int((load_start + due_after) * 1000)
    failed = []  # keys whose SET answered an error (a leader change): again
    retried = 0
    for start in range(0, nkeys, BATCH * 3):
        sent = []
        for j, c in enumerate(conns):
            lo = start + j * BATCH
            hi = min(nkeys, lo + BATCH)
            if lo >= hi:
                continue
            c.sock.sendall(b"".join(Conn.encode("SET", "exp:%d" % k, "v" * 16, "PXAT", due_ms)
                                    for k in range(lo, hi)))
            sent.append((c, lo, hi))
        for c, lo, hi in sent:
            for k in range(lo, hi):
                if isinstance(c.reply(), RuntimeError):
                    failed.append(k)
        # Written again at once (pipelined), while the deadline is ahead.
        for attempt in range(20):
            if not failed:
                break
            retried += len(failed)
            again, failed = failed, []
            c = conns[attempt % 3]
            c.sock.sendall(b"".join(Conn.encode("SET", "exp:%d" % k, "v" * 16, "PXAT", due_ms)
                                    for k in again))
            for k in again:
                if isinstance(c.reply(), RuntimeError):
                    failed.append(k)
        if failed:
            print("%d keys could not be written" % len(failed))
            return 1
    load_end = time.time()
    print("loaded %d keys with deadline PXAT %d in %.1f s (%.0f keys/s, %d written again "
          "after an error); due in %.1f s"
          % (nkeys, due_ms, load_end - load_start, nkeys / (load_end - load_start), retried,
             due_ms / 1000 - load_end), flush=True)
    if due_ms / 1000 - load_end < before_s + 2:
        print("the load ended too close to the deadline: raise --due-after", flush=True)
        return 1

    # Probe: one request at a time, GET and SET of the probe keys in turn,
    # through the three nodes in turn (two of three forwarded for a key
    # whose shard another node leads).
    samples = []  # (time, is_set, latency us)
    stop = threading.Event()
    errors = [0]

    def probe():
        pc = [Conn(h, port) for h in hosts]
        i = 0
        while not stop.is_set():
            c = pc[i % 3]
            key = "probe:%d" % ((i * 7919) % PROBE_KEYS)
            is_set = i % 2 == 1
            t0 = time.perf_counter_ns()
            try:
                if is_set:
                    c.call("SET", key, "w" * 16)
                else:
                    c.call("GET", key)
            except RuntimeError:
                errors[0] += 1  # counted; its time is a sample like any
            t1 = time.perf_counter_ns()
            samples.append((time.time(), is_set, (t1 - t0) / 1000.0))
            i += 1

    # Before: from BEFORE_S ahead of the deadline.
    while time.time() < due_ms / 1000 - before_s:
        time.sleep(0.05)
    poll = [Conn(h, port) for h in hosts]
    cpu0 = [cpu_ticks(p) for p in pids]
    t_before = time.time()
    th = threading.Thread(target=probe)
    th.start()
    while time.time() < due_ms / 1000:
        time.sleep(0.01)
    cpu1 = [cpu_ticks(p) for p in pids]
    t_due = time.time()
    # During: until every key's delete applied (INFO expired_keys over the
    # nodes), polled twice a second.
    done_at = None
    limit = t_due + 1800
    while time.time() < limit:
        if expired_total(poll) >= nkeys:
            done_at = time.time()
            break
        time.sleep(0.5)
    cpu2 = [cpu_ticks(p) for p in pids]
    t_end = time.time()
    stop.set()
    th.join()
    if done_at is None:
        print("the deletes did not finish in 30 minutes (%d done)" % expired_total(poll))
        return 1
    hz = 100.0

    def window(lo, hi):
        out = {}
        for is_set in (False, True):
            lat = sorted(s[2] for s in samples if lo <= s[0] < hi and s[1] == is_set)
            out["SET" if is_set else "GET"] = lat
        return out

    before = window(t_before, t_due)
    during = window(t_due, t_end)
    print("expiry of %d keys: %.1f s after the deadline (%.0f deletes/s)"
          % (nkeys, done_at - t_due, nkeys / (done_at - t_due)))
    print("%-6s %-7s %8s %8s %8s %8s %8s" % ("op", "window", "count", "p50_us", "p99_us",
                                               "p999_us", "max_us"))
    for op in ("GET", "SET"):
        for name, w in (("before", before), ("during", during)):
            lat = w[op]
            print("%-6s %-7s %8d %8.0f %8.0f %8.0f %8.0f" % (
                op, name, len(lat), pct(lat, 0.5), pct(lat, 0.99), pct(lat, 0.999),
                lat[-1] if lat else float("nan")))
    print("probe requests answered with an error: %d" % errors[0])
    for op in ("GET", "SET"):
        print("%s p99 during / before: %.2f" % (op, pct(during[op], 0.99) / pct(before[op], 0.99)))
    for i, p in enumerate(pids):
        print("node %d CPU: before %.0f%%, during %.0f%% of one CPU"
              % (i + 1, 100 * (cpu1[i] - cpu0[i]) / hz / (t_due - t_before),
                 100 * (cpu2[i] - cpu1[i]) / hz / (t_end - t_due)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
