#!/usr/bin/env python3
"""The open-file limit at start-up (server/fd_limit.c): ringkvd raises its
soft limit to the hard one, and refuses to start, saying why and what to
do, when even the hard limit cannot hold its replicas' descriptors.

usage: fd_limit.py RINGKVD

Each case starts ringkvd with limits set in the child only
(resource.setrlimit before exec), one core, --shards 600 (600 replicas:
at least 856 descriptors), on an ephemeral port, and stops it. Exits 0
when every check passes, 1 otherwise.
"""
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

SHARDS = 600


def limits(soft, hard):
    def set_them():
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return set_them


def start(ringkvd, data, soft, hard):
    return subprocess.Popen(
        [ringkvd, "--cores", "1", "--shards", str(SHARDS), "--listen", "127.0.0.1:0",
         "--data-dir", data, "--log-level", "warn"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=limits(soft, hard))


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 1
    ringkvd = sys.argv[1]
    failures = []
    root = tempfile.mkdtemp(prefix="ringkv-fdlimit-")
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < 4000:
            print(f"SKIP: the hard open-file limit here is {hard}")
            return 77

        # A hard limit too low: refused at once, exit 1, the reason given.
        p = start(ringkvd, os.path.join(root, "low"), 500, 500)
        try:
            out, _ = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            failures.append("with a hard limit of 500 it did not exit within 30 s")
        else:
            if p.returncode != 1:
                failures.append(f"hard limit 500: exit {p.returncode}, want 1")
            want = r"open-file limit is 500, and this node's 600 replicas need at least (\d+)"
            m = re.search(want, out)
            if not m or "raise it" not in out:
                failures.append(f"hard limit 500: no clear reason in: {out.strip()[-400:]}")

        # A soft limit too low under a high hard one: raised, and it serves.
        p = start(ringkvd, os.path.join(root, "soft"), 500, 4000)
        try:
            deadline = time.monotonic() + 60
            line = ""
            while time.monotonic() < deadline:
                line = p.stdout.readline()
                if not line or "listening on" in line:
                    break
            if "listening on" not in line:
                failures.append(f"soft 500 / hard 4000: did not start: {line.strip()}")
            else:
                with open(f"/proc/{p.pid}/limits") as f:
                    row = [r for r in f if r.startswith("Max open files")][0].split()
                if row[3] != "4000":
                    failures.append(f"soft limit not raised to the hard one: {row}")
        finally:
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print("OK: refused below the need, soft limit raised to the hard one")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
