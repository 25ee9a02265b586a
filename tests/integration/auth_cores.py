#!/usr/bin/env python3
"""Client authentication on a node of two cores (issue 19).

usage: auth_cores.py RINGKVD RINGKV

auth.py runs a node of one core; the auth state is per core (the users
table a core holds, its jobs, its table of sources), and the kernel spreads
connections over the cores. With --cores 2:
  - AUTH and permissions from 24 sources: every one succeeds and is
    served, and both cores authenticated some (their counts at the stop);
  - wrong passwords from 12 sources: each WRONGPASS, each audited once
    with its source, whichever core took it;
  - one source's unauthenticated connections are capped per core: of 80,
    more than 32 (one core's cap) and at most 64 stay open;
  - SIGHUP reaches both cores: 16 connections of a removed user all get
    NOAUTH, a new user authenticates on 16 connections.

Addresses 127.0.55.21 (server) and 127.0.55.22-120 (clients), ports
55000 + 2 * (pid % 450) and the next. Every process it starts, it stops;
every socket has a timeout. Exits 0 when every check passes, 1 otherwise.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import auth  # noqa: E402
from auth import Resp, user_add  # noqa: E402
from ringkv_test import Server, programs_from_argv, stop_process  # noqa: E402

HOST = "127.0.55.21"
auth.HOST = HOST  # Resp connects to auth.HOST

failures = 0


def check(ok, what):
    global failures
    print("%s %s" % ("ok  " if ok else "FAIL", what), flush=True)
    failures += not ok


def source(i):
    return "127.0.55.%d" % i


def is_open(r):
    """Whether the server still holds r's connection (it closes it at once
    when over a cap): a non-blocking read finds no EOF."""
    r.s.setblocking(False)
    try:
        return r.s.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        r.s.settimeout(auth.TIMEOUT)


def main():
    ringkvd, ringkv = programs_from_argv(__doc__)
    work = tempfile.mkdtemp(prefix="ringkv-auth-cores-")
    port = 55000 + 2 * (os.getpid() % 450)
    resp_port = port + 1
    users = os.path.join(work, "users")
    audit = os.path.join(work, "audit.log")
    node = proc = None
    conns = []
    try:
        user_add(ringkv, users, "alice", "write", "alice-pw", prefix="app:")
        user_add(ringkv, users, "gone", "write", "gone-pw")
        node = Server(ringkvd, ["--listen", "%s:%d" % (HOST, port), "--resp-listen",
                                "%s:%d" % (HOST, resp_port), "--users", users,
                                "--audit-log", audit, "--auth-timeout", "5000ms"],
                      work, "node", cores=2)
        proc = node.proc
        if not node.wait_listening():
            check(False, "ringkvd started")
            return 1

        # AUTH from 24 sources, served whichever core took each
        ok = 0
        for i in range(24):
            c = Resp(resp_port, source=source(22 + i))
            ok += (c.cmd("AUTH", "alice", "alice-pw") == "+OK" and
                   c.cmd("SET", "app:%d" % i, "v%d" % i) == "+OK" and
                   c.cmd("GET", "app:%d" % i) == b"v%d" % i and
                   c.cmd("SET", "other", "x").startswith("-NOPERM"))
            c.close()
        check(ok == 24, "24 sources authenticate and are served, prefix enforced (%d/24)" % ok)

        # wrong passwords from 12 sources: each refused and audited
        wrong = 0
        for i in range(12):
            c = Resp(resp_port, source=source(50 + i))
            wrong += c.cmd("AUTH", "alice", "not-it").startswith("-WRONGPASS")
            c.close()
        check(wrong == 12, "12 wrong passwords from 12 sources are WRONGPASS (%d)" % wrong)
        deadline = time.time() + 5
        audited = []
        while time.time() < deadline:
            with open(audit) as f:
                audited = [ln for ln in f if 'user="alice"' in ln and "failed" in ln]
            if len(audited) >= 12:
                break
            time.sleep(0.2)
        froms = sorted(set(re.findall(r"from=(127\.0\.55\.\d+)", "".join(audited))))
        check(len(audited) == 12 and froms == sorted(source(50 + i) for i in range(12)),
              "each failure audited once with its source (%d lines, %d sources)"
              % (len(audited), len(froms)))

        # one source's unauthenticated connections: capped per core
        conns = [Resp(resp_port, source=source(70)) for _ in range(80)]
        time.sleep(1)
        kept = sum(is_open(c) for c in conns)
        check(32 < kept <= 64, "of 80 unauthenticated connections of one source, %d stay "
              "open: more than one core's cap (32), at most two cores' (64)" % kept)
        for c in conns:
            c.close()
        conns = []

        # SIGHUP reaches both cores
        conns = [Resp(resp_port, source=source(80 + i)) for i in range(16)]
        authed = sum(c.cmd("AUTH", "gone", "gone-pw") == "+OK" for c in conns)
        check(authed == 16, "16 connections of user gone authenticate (%d)" % authed)
        subprocess.run([ringkv, "user", "remove", "--file", users, "gone"], timeout=30,
                       capture_output=True)
        user_add(ringkv, users, "newbie", "read", "newbie-pw")
        proc.send_signal(signal.SIGHUP)
        time.sleep(1)
        noauth = sum(c.cmd("GET", "app:1") == "-NOAUTH Authentication required."
                     for c in conns)
        check(noauth == 16, "SIGHUP: every connection of the removed user must "
              "authenticate again, on both cores (%d/16)" % noauth)
        for c in conns:
            c.close()
        conns = [Resp(resp_port, source=source(100 + i)) for i in range(16)]
        fresh = sum(c.cmd("AUTH", "newbie", "newbie-pw") == "+OK" and
                    c.cmd("GET", "app:1") == b"v1" for c in conns)
        check(fresh == 16, "SIGHUP: the new user authenticates on 16 connections (%d)" % fresh)
        for c in conns:
            c.close()
        conns = []

        rc = stop_process(proc, 15)
        proc = None
        log = node.log()
        counts = {int(c): int(n) for c, n in
                  re.findall(r"core (\d): (\d+) authentications", log)}
        check(rc == 0 and len(counts) == 2 and all(n > 0 for n in counts.values()),
              "both cores authenticated connections (%s; exit %s)" % (counts, rc))
    finally:
        for c in conns:
            c.close()
        if proc:
            stop_process(proc, 15)
        if failures and node:
            print("---- stderr (tail)\n" + node.log()[-3000:])
        shutil.rmtree(work, ignore_errors=True)
    print("auth_cores: %d failed" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
