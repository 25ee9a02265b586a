#!/usr/bin/env python3
"""A client that asks for more than it reads must not balloon the node.

usage: resp_abuse.py HOST PORT PID

One connection pipelines thousands of GETs of a 1 MiB value and never
reads a reply; meanwhile another client must be served promptly and the
node's resident memory (VmRSS of PID) must stay within a bound well below
what the unread replies would take (issue 14 measured 2.6 GiB before the
per-connection reply limit). An MGET whose values exceed the limit gets an
error instead of a giant reply; a smaller one is served whole. Every socket
has a timeout and every loop a bound. Exits 0 when all checks pass.
"""
import os
import socket
import sys
import time

try:
    import redis
except ImportError:
    if os.path.exists("/usr/bin/python3") and sys.executable != "/usr/bin/python3":
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("resp_abuse: python3 module 'redis' not found, skipping")
    sys.exit(77)

MIB = 1 << 20
RSS_GROWTH_MAX = 256 * MIB   # the limit is 64 MiB per connection, plus slack


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    host, port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    r = redis.Redis(host=host, port=port, socket_timeout=20, socket_connect_timeout=5)
    failures = 0

    def check(ok, what):
        nonlocal failures
        print("%s %s" % ("ok  " if ok else "FAIL", what))
        failures += not ok

    # Values on every shard: a GET of another core's shard is forwarded and
    # its value fetched again with room for it, which is where unread
    # replies used to pile up.
    bigs = [b"abuse:big:%d" % i for i in range(16)]
    for k in bigs:
        r.set(k, b"v" * MIB)
    r.set(b"abuse:small", b"s")
    base = rss(pid)

    hog = socket.create_connection((host, port), timeout=5)
    hog.setblocking(False)
    one = b"".join(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k) for k in bigs)
    burst = one * 10
    sent, peak, slowest = 0, base, 0.0
    deadline = time.monotonic() + 6.0
    while time.monotonic() < deadline and sent < 400 * len(one):
        try:
            sent += hog.send(burst)
        except BlockingIOError:
            pass
        t0 = time.monotonic()
        ok = r.get(b"abuse:small") == b"s"
        slowest = max(slowest, time.monotonic() - t0)
        if not ok:
            check(False, "another client's GET answered wrongly")
            break
        peak = max(peak, rss(pid))
        time.sleep(0.05)
    for _ in range(20):
        peak = max(peak, rss(pid))
        time.sleep(0.05)
    print("pipelined %d GETs of 1 MiB unread; RSS %d -> peak %d MiB; slowest other GET %.3f s"
          % (sent * len(bigs) // len(one), base // MIB, peak // MIB, slowest))
    check(peak - base < RSS_GROWTH_MAX, "RSS growth %d MiB < %d MiB"
          % ((peak - base) // MIB, RSS_GROWTH_MAX // MIB))
    check(slowest < 2.0, "another client served while one hogs (slowest %.3f s)" % slowest)
    hog.close()

    try:
        r.mget(bigs * 7)
        check(False, "MGET of 112 MiB of values refused")
    except redis.exceptions.ResponseError as e:
        check("64 MiB" in str(e), "MGET of 112 MiB of values refused: %s" % e)
    vals = r.mget(bigs[:10])
    check(len(vals) == 10 and all(v == b"v" * MIB for v in vals), "MGET of 10 MiB served whole")
    check(r.ping(), "still answers PING")
    print("resp_abuse: %d failed" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
