#!/usr/bin/env python3
"""Multishot receives into provided buffers (server/conn.h): frames split
across buffers still parse, a connection's pipelined commands are answered
in order, many connections sending at once (more than the buffers) are all
served, and a connection that sends without reading neither starves the
others nor grows the node without bound.

usage: resp_multishot.py RINGKVD

Runs the checks against three servers of its own, one after the other:
the default buffers, a ring of four 64-byte buffers (so every frame spans
buffers and the kernel runs out of them all the time: ENOBUFS, re-armed)
and plain receives (RINGKV_RECV_BUFFERS=0), each one core on 127.0.53.x,
ports 53000-53899 with the pid mixed in. Every socket has a timeout and
every loop a bound. Exits 0 when all checks pass, 1 otherwise.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from ringkv_test import RespReader as Reader, stop_process

TIMEOUT = 10.0
MIB = 1 << 20


def cmd(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def connect(addr):
    s = socket.create_connection(addr, timeout=TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def run_checks(addr, pid, check, tag):
    # 1. A frame split at every byte of its head, then a 300 KiB value in
    # odd-sized pieces: it spans many provided buffers and completions.
    s = connect(addr)
    r = Reader(s)
    value = bytes((i * 7) % 251 for i in range(300 * 1024 + 13))
    frame = cmd(b"SET", b"ms:split", value)
    for i in range(48):
        s.sendall(frame[i:i + 1])
        time.sleep(0.002)
    pos = 48
    while pos < len(frame):
        s.sendall(frame[pos:pos + 7001])
        pos += 7001
    check(r.reply() == b"+OK", "%s: SET split byte by byte and across buffers" % tag)
    s.sendall(cmd(b"GET", b"ms:split"))
    check(r.reply() == value, "%s: its value reads back whole" % tag)

    # 2. One write of 3,000 pipelined commands: answered in order.
    n = 1000
    batch = b"".join(cmd(b"SET", b"ms:p:%d" % (i % 50), i) + cmd(b"GET", b"ms:p:%d" % (i % 50)) +
                     cmd(b"INCR", b"ms:counter") for i in range(n))
    s.sendall(batch)
    ok = True
    for i in range(n):
        got = (r.reply(), r.reply(), r.reply())
        if got != (b"+OK", b"%d" % i, b":%d" % (i + 1)):
            ok = False
            print("   command %d: %r" % (i, got))
            break
    check(ok, "%s: %d pipelined SET/GET/INCR triples answered in order" % (tag, n))
    s.close()

    # 3. 40 connections send 300 commands each before any reads a reply.
    conns = [connect(addr) for _ in range(40)]
    for k, c in enumerate(conns):
        c.sendall(b"".join(cmd(b"SET", b"ms:c:%d" % k, b"%d-%d" % (k, i)) +
                           cmd(b"GET", b"ms:c:%d" % k) for i in range(150)))
    ok = True
    for k, c in enumerate(conns):
        rd = Reader(c)
        for i in range(150):
            got = (rd.reply(), rd.reply())
            if got != (b"+OK", b"%d-%d" % (k, i)):
                ok = False
                print("   connection %d command %d: %r" % (k, i, got))
                break
        if not ok:
            break
        c.close()
    check(ok, "%s: 40 connections pipelining at once, each in order" % tag)

    # 4. A connection that sends GETs of a 256 KiB value and never reads:
    # another client is still served promptly and memory stays bounded.
    s = connect(addr)
    r = Reader(s)
    s.sendall(cmd(b"SET", b"ms:big", b"b" * (256 * 1024)) + cmd(b"SET", b"ms:small", b"s"))
    check(r.reply() == b"+OK" and r.reply() == b"+OK", "%s: big value set" % tag)
    base = rss(pid)
    hog = connect(addr)
    hog.setblocking(False)
    burst = cmd(b"GET", b"ms:big") * 64
    sent, peak, slowest, served = 0, base, 0.0, True
    deadline = time.monotonic() + 4.0
    while time.monotonic() < deadline:
        try:
            # Until the socket takes no more (or far past any bound).
            while sent < 64 * MIB:
                sent += hog.send(burst)
        except BlockingIOError:
            pass
        t0 = time.monotonic()
        s.sendall(cmd(b"GET", b"ms:small"))
        if r.reply() != b"s":
            served = False
            break
        slowest = max(slowest, time.monotonic() - t0)
        peak = max(peak, rss(pid))
        time.sleep(0.02)
    check(served and slowest < 2.0,
          "%s: another client served while a connection does not read (slowest %.3f s, "
          "%d bytes of GETs sent unread)" % (tag, slowest, sent))
    check(peak - base < 256 * MIB, "%s: RSS grew %d MiB (bound 256)" % (tag, (peak - base) // MIB))
    # Paused, the connection is not read (its receive is cancelled): what
    # the hog could send is what the socket buffers hold, not the 4 s of
    # a loopback stream.
    check(sent < 32 * MIB, "%s: the paused connection is not read (%d bytes taken)" % (tag, sent))
    hog.close()
    s.close()


def metric(addr, name):
    """The value of counter `name` in the admin port's /metrics (summed over
    its lines), or None when the scrape fails."""
    try:
        with urllib.request.urlopen("http://%s:%d/metrics" % addr, timeout=TIMEOUT) as f:
            text = f.read().decode()
    except OSError:
        return None
    total = None
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total = (total or 0) + float(line.rsplit(" ", 1)[1])
    return total


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    failures = 0

    def check(ok, what):
        nonlocal failures
        print("%s %s" % ("ok  " if ok else "FAIL", what))
        failures += not ok

    base_port = 53000 + os.getpid() % 800
    configs = [("default", None, True), ("4x64", "4:64", True), ("plain", "0", False)]
    for idx, (tag, bufs, multishot) in enumerate(configs):
        tmp = tempfile.mkdtemp(prefix="ringkv-multishot-")
        host = "127.0.53.%d" % (2 + idx)
        port = base_port + 2 * idx
        env = dict(os.environ)
        if bufs is not None:
            env["RINGKV_RECV_BUFFERS"] = bufs
        log = open(os.path.join(tmp, "stderr"), "w+")
        admin = (host, base_port + 8 + idx)
        proc = subprocess.Popen([sys.argv[1], "--cores", "1", "--listen", "%s:%d" % (host, port + 1),
                                 "--resp-listen", "%s:%d" % (host, port),
                                 "--admin-listen", "%s:%d" % admin,
                                 "--data-dir", os.path.join(tmp, "data")],
                                stdout=subprocess.DEVNULL, stderr=log, env=env)
        try:
            up = False
            for _ in range(150):
                try:
                    socket.create_connection((host, port), timeout=1).close()
                    up = True
                    break
                except OSError:
                    time.sleep(0.1)
            check(up, "%s: server up" % tag)
            if up:
                run_checks((host, port), proc.pid, check, tag)
                # Four 64-byte buffers run out all the time; plain
                # receives never use them.
                n = metric(admin, "ringkv_io_recv_buffers_exhausted_total")
                if tag == "4x64":
                    check(n is not None and n > 0, "%s: buffer exhaustion counted (%s)" % (tag, n))
                elif tag == "plain":
                    check(n == 0, "%s: no buffer exhaustion counted (%s)" % (tag, n))
        except (OSError, EOFError, ValueError) as e:
            check(False, "%s: %s" % (tag, e))
        finally:
            stop_process(proc, 10)
            log.seek(0)
            text = log.read()
            used = "multishot receives" in text
            check(used == multishot, "%s: multishot receives %s" %
                  (tag, "in use" if used else "not in use"))
            if failures:
                print(text[-3000:])
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
