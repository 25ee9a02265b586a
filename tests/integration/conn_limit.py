#!/usr/bin/env python3
"""Over --max-connections, a client is told why before the close, on both
protocols, and the refusals make one log line per interval, not one each.

usage: conn_limit.py RINGKVD

Starts its own ringkvd (one core, --max-connections 2, native and RESP on
ephemeral ports) and stops it. Every socket has a timeout. Exits 0 when all
checks pass, 1 otherwise.
"""
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

from ringkv_test import stop_process

TIMEOUT = 5.0


def read_all(sock):
    sock.settimeout(TIMEOUT)
    data = b""
    while len(data) < 1 << 16:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            return data, "reset"
        if not chunk:
            return data, "eof"
        data += chunk
    return data, "long"


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    tmp = tempfile.mkdtemp(prefix="ringkv-connlimit-")
    log = open(os.path.join(tmp, "stderr"), "w+")
    out = open(os.path.join(tmp, "stdout"), "w+")
    proc = subprocess.Popen([sys.argv[1], "--cores", "1", "--max-connections", "2",
                             "--listen", "127.0.0.1:0", "--resp-listen", "127.0.0.1:0",
                             "--data-dir", os.path.join(tmp, "data")],
                            stdout=out, stderr=log)
    failures = 0

    def check(ok, what):
        nonlocal failures
        print("%s %s" % ("ok  " if ok else "FAIL", what))
        failures += not ok

    try:
        native = resp = None
        for _ in range(150):
            out.seek(0)
            text = out.read()
            m1 = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
            m2 = re.search(r"RESP2 \(Redis protocol\) on 127\.0\.0\.1:(\d+)", text)
            if m1 and m2:
                native, resp = int(m1.group(1)), int(m2.group(1))
                break
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        if native is None:
            log.seek(0)
            print("FAIL: ringkvd did not start:", log.read())
            return 1
        keep = [socket.create_connection(("127.0.0.1", native), timeout=TIMEOUT)
                for _ in range(2)]
        time.sleep(0.2)
        s = socket.create_connection(("127.0.0.1", resp), timeout=TIMEOUT)
        data, how = read_all(s)
        s.close()
        check(data == b"-ERR max number of clients reached\r\n" and how == "eof",
              "RESP client over the limit told why, then closed (%r, %s)" % (data, how))
        s = socket.create_connection(("127.0.0.1", native), timeout=TIMEOUT)
        data, how = read_all(s)
        s.close()
        ok = len(data) >= 4 and struct.unpack("<I", data[:4])[0] == len(data) - 4
        check(ok and b"max number of clients reached" in data and how == "eof",
              "native client over the limit gets a Response frame with the reason (%r, %s)"
              % (data, how))
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", resp), timeout=TIMEOUT)
            read_all(s)
            s.close()
        log.seek(0)
        lines = [l for l in log.read().splitlines() if "connection limit" in l]
        check(1 <= len(lines) <= 2, "52 refusals logged in %d line(s)" % len(lines))
        for k in keep:
            k.close()
        time.sleep(0.3)
        s = socket.create_connection(("127.0.0.1", resp), timeout=TIMEOUT)
        s.sendall(b"PING\r\n")
        s.settimeout(TIMEOUT)
        check(s.recv(100) == b"+PONG\r\n", "served again once clients left")
        s.close()
    finally:
        stop_process(proc, 10)
        shutil.rmtree(tmp, ignore_errors=True)
    print("conn_limit: %d failed" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
