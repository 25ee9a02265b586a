#!/usr/bin/env python3
"""TLS 1.3 on the client ports (issue 19, first step).

usage: tls.py RINGKVD RINGKV

Makes a throwaway CA and certificates with the openssl CLI in a temp dir,
then checks:
  - bad start-up settings are refused with a clear message (missing file,
    key not matching the certificate, a certificate without its key, an
    expired certificate);
  - the settings work from a config file (tls-cert = ... keys);
  - the native port: ringkv put/get with --tls-ca and with RINGKV_TLS_CA;
  - the RESP port: redis-cli --tls, and Python's ssl module (pipelined SETs,
    a 1 MiB value both ways);
  - a client with another CA, a server certificate naming another
    address, or one that expired while served (made by `openssl ca
    -enddate` to last 5 s), is refused by the client (ringkv, Python's
    ssl, redis-cli --tls);
  - a client offering at most TLS 1.2 is refused;
  - a plaintext client, garbage, and a truncated handshake are closed
    without harming a TLS client already connected;
  - clients stalled mid-handshake do not delay another client's requests,
    and are closed after --tls-handshake-timeout;
  - SIGHUP reloads the certificate: new connections get a rotated one
    (signed by another CA), a connection opened before is served on, and a
    bad file at a reload is refused and logged with the old one kept;
  - the admin port speaks HTTPS only: /metrics and /health over TLS (the
    certificate checked), a plaintext HTTP request gets no answer.

Servers listen on 127.0.19.1-2 (the admin port on 127.0.19.3), ports 39000 + 2 * (pid % 450) and the next
one. Every process it starts, it stops; every socket has a timeout.
Exits 0 when every check passes, 1 otherwise.
"""
import datetime
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from ringkv_test import Server, admin_exchange, programs_from_argv

TIMEOUT = 5.0
HOST = "127.0.19.1"
OTHER_HOST = "127.0.19.2"
HANDSHAKE_TIMEOUT_S = 4.0
ADMIN_HOST = "127.0.19.3"  # the admin port's address, in the certificate

failures = 0


def check(ok, what):
    global failures
    print("%s %s" % ("ok  " if ok else "FAIL", what), flush=True)
    failures += not ok


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
            "-subj", "/CN=ringkv test " + name, cwd=d)


def make_cert(d, ca, name, san, days="2"):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=%s\n" % san)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-CAcreateserial", "-out", name + ".pem", "-days", days, "-extfile",
            name + ".ext", cwd=d)


def make_short_cert(pki, ca, name, san, seconds):
    """pki/name.pem and .key signed by pki/ca, valid from a minute ago until
    `seconds` from now (whole seconds): its notAfter as a POSIX time."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name, cwd=pki)
    db = os.path.join(pki, "short-ca")
    os.makedirs(db, exist_ok=True)
    open(os.path.join(db, "index.txt"), "w").close()
    with open(os.path.join(db, "serial"), "w") as f:
        f.write("%x\n" % (int(time.time() * 1000) | 1 << 44))
    with open(os.path.join(db, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = short\n[short]\ndatabase = %s/index.txt\n"
                "new_certs_dir = %s\nserial = %s/serial\ndefault_md = sha256\n"
                "policy = any\nx509_extensions = ext\nunique_subject = no\n"
                "[any]\ncommonName = supplied\n[ext]\nsubjectAltName = %s\n"
                % (db, db, db, san))
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    end = now + datetime.timedelta(seconds=seconds)
    stamp = "%y%m%d%H%M%SZ"
    openssl("ca", "-batch", "-config", os.path.join(db, "ca.cnf"), "-cert", ca + ".pem",
            "-keyfile", ca + ".key", "-in", name + ".csr", "-out", name + ".pem", "-notext",
            "-startdate", (now - datetime.timedelta(minutes=1)).strftime(stamp),
            "-enddate", end.strftime(stamp), cwd=pki)
    return end.timestamp()


def refused_at_start(ringkvd, args, work, want, what):
    try:
        p = subprocess.run([ringkvd, "--cores", "1", "--listen", HOST + ":0",
                            "--data-dir", os.path.join(work, "refused-data"), *args],
                           capture_output=True, text=True, timeout=30)
        check(p.returncode != 0 and want in p.stderr,
              "%s refused at start-up (exit %d: %s)" % (what, p.returncode,
                                                      p.stderr.strip()[:200]))
    except subprocess.TimeoutExpired:
        check(False, "%s refused at start-up (it started)" % what)


def tls_context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def resp_tls(ctx, port, host=HOST):
    raw = socket.create_connection((host, port), timeout=TIMEOUT)
    return ctx.wrap_socket(raw, server_hostname=host)


def read_reply(sock, want):
    """Reads until `want` bytes arrived (or EOF / timeout)."""
    data = b""
    sock.settimeout(TIMEOUT)
    while len(data) < want:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    return data


def closed_within(sock, seconds):
    """True when the server closes `sock` within `seconds` (any bytes before)."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if not sock.recv(4096):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


def client_hello(ctx):
    """The first flight of a TLS client, as bytes."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=HOST)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def admin_get(port, path, ctx=None):
    """One HTTP/1.1 GET to the admin port, over TLS when `ctx` is given:
    the whole answer as bytes (the server closes after it)."""
    return admin_exchange(ADMIN_HOST, port,
                          b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path.encode(),
                          TIMEOUT, ctx)


def wait_log(srv, text, count, seconds=10):
    deadline = time.monotonic() + seconds
    while srv.log().count(text) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return srv.log().count(text) >= count


def replace_file(dst, src):
    with open(src, "rb") as f:
        data = f.read()
    with open(dst + ".tmp", "wb") as f:
        f.write(data)
    os.rename(dst + ".tmp", dst)


def ringkv(cli, args, env_ca=None, timeout=30):
    env = dict(os.environ)
    env.pop("RINGKV_TLS_CA", None)
    if env_ca:
        env["RINGKV_TLS_CA"] = env_ca
    return subprocess.run([cli, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def main():
    ringkvd, cli = programs_from_argv(__doc__)
    work = tempfile.mkdtemp(prefix="ringkv-tls-")
    servers = []
    base = 39000 + 2 * (os.getpid() % 450)
    native, resp = base, base + 1
    try:
        d = os.path.join(work, "pki")
        os.makedirs(d)
        make_ca(d, "ca")
        make_ca(d, "otherca")
        make_cert(d, "ca", "server", "IP:%s,DNS:localhost,IP:%s" % (HOST, ADMIN_HOST))
        make_cert(d, "ca", "elsewhere", "IP:127.0.19.9")
        make_cert(d, "ca", "expired", "IP:%s" % HOST, days="0")  # ends now
        make_cert(d, "otherca", "rotated", "IP:%s,DNS:localhost,IP:%s" % (HOST, ADMIN_HOST))
        pki = lambda f: os.path.join(d, f)

        # -- bad start-up settings
        refused_at_start(ringkvd, ["--tls-cert", pki("missing.pem"), "--tls-key",
                                   pki("server.key")], work,
                         "--tls-cert %s: No such file or directory" % pki("missing.pem"),
                         "a missing --tls-cert")
        refused_at_start(ringkvd, ["--tls-cert", pki("server.pem"), "--tls-key",
                                   pki("otherca.key")], work,
                         "does not match the certificate", "a key of another certificate")
        refused_at_start(ringkvd, ["--tls-cert", pki("server.pem")], work,
                         "--tls-cert needs --tls-key too", "--tls-cert without --tls-key")
        refused_at_start(ringkvd, ["--tls-cert", pki("server.key"), "--tls-key",
                                   pki("server.key")], work, "not a PEM certificate",
                         "a key given as the certificate")
        time.sleep(1.1)
        refused_at_start(ringkvd, ["--tls-cert", pki("expired.pem"), "--tls-key",
                                   pki("expired.key")], work, "the certificate has expired",
                         "an expired certificate")
        refused_at_start(ringkvd, ["--tls-cert", pki("server.pem"), "--tls-key",
                                   pki("server.key"), "--tls-ca", pki("server.key")], work,
                         "--tls-ca", "a --tls-ca without certificates")

        # -- the server, its TLS settings from a config file
        conf = os.path.join(work, "ringkvd.conf")
        with open(conf, "w") as f:
            f.write("[tls]\ntls-cert = %s\ntls-key = %s\ntls-ca = %s\n"
                    "tls-handshake-timeout = %dms\n"
                    % (pki("server.pem"), pki("server.key"), pki("ca.pem"),
                       HANDSHAKE_TIMEOUT_S * 1000))
        srv = Server(ringkvd, ["--config", conf, "--listen", "%s:%d" % (HOST, native),
                               "--resp-listen", "%s:%d" % (HOST, resp),
                               "--admin-listen", "%s:%d" % (ADMIN_HOST, native)],
                     work, "main")
        servers.append(srv)
        if not srv.wait_listening():
            check(False, "ringkvd with TLS started: " + srv.log()[-2000:])
            return 1
        log = srv.log()
        check("tls: OpenSSL memory BIOs (kernel has no tls ULP)" in log or
              "tls: OpenSSL memory BIOs (the kernel has the tls ULP" in log,
              "start-up says which TLS path runs")
        addr = "%s:%d" % (HOST, native)

        # -- the admin port: HTTPS only
        ctx = tls_context(pki("ca.pem"))
        got = admin_get(native, "/metrics", ctx)
        check(got.startswith(b"HTTP/1.1 200") and b"ringkv_requests_total" in got,
              "GET /metrics over TLS on the admin port (%r)" % got[:80])
        got = admin_get(native, "/health", ctx)
        check(got.startswith(b"HTTP/1.1 200") and b'"status":"ok"' in got,
              "GET /health over TLS on the admin port (%r)" % got[-80:])
        got = admin_get(native, "/metrics")
        check(b"HTTP/1.1" not in got and b"ringkv_" not in got,
              "a plaintext HTTP request to the admin port gets no answer (%r)" % got[:80])
        try:
            admin_get(native, "/health", tls_context(pki("otherca.pem")))
            check(False, "a client with another CA refuses the admin port")
        except ssl.SSLCertVerificationError:
            check(True, "a client with another CA refuses the admin port")
        admin_addr = "%s:%d" % (ADMIN_HOST, native)
        p = ringkv(cli, ["node", "health", "--admin", admin_addr, "--tls-ca", pki("ca.pem")])
        check(p.returncode == 0 and "ready" in p.stdout,
              "ringkv node health --tls-ca over the admin port (%d %r %s)"
              % (p.returncode, p.stdout[:80], p.stderr.strip()))
        p = ringkv(cli, ["node", "health", "--admin", admin_addr, "--tls-ca",
                         pki("otherca.pem")])
        check(p.returncode == 3 and "certificate is refused" in p.stderr,
              "ringkv node health trusting another CA refuses the node (%d %s)"
              % (p.returncode, p.stderr.strip()))

        # -- native port: the CLI
        p = ringkv(cli, ["-a", addr, "--tls-ca", pki("ca.pem"), "put", "tls-key", "tls-value"])
        check(p.returncode == 0, "ringkv --tls-ca put (%d %s)" % (p.returncode, p.stderr.strip()))
        p = ringkv(cli, ["-a", addr, "--tls-ca", pki("ca.pem"), "get", "tls-key"])
        check(p.returncode == 0 and p.stdout.strip() == "tls-value",
              "ringkv --tls-ca get reads it back (%r)" % p.stdout)
        p = ringkv(cli, ["-a", addr, "get", "tls-key"], env_ca=pki("ca.pem"))
        check(p.returncode == 0 and p.stdout.strip() == "tls-value",
              "RINGKV_TLS_CA works as --tls-ca (%r %s)" % (p.stdout, p.stderr.strip()))
        p = ringkv(cli, ["-a", addr, "--tls-ca", pki("otherca.pem"), "get", "tls-key"])
        check(p.returncode == 3 and "certificate is refused" in p.stderr,
              "a client trusting another CA refuses the server (%d %s)"
              % (p.returncode, p.stderr.strip()))
        p = ringkv(cli, ["-a", addr, "-t", "3", "get", "tls-key"])
        check(p.returncode != 0 and "tls-value" not in p.stdout,
              "a plaintext ringkv on the TLS port is closed (%d %s)"
              % (p.returncode, p.stderr.strip()))

        # -- RESP port: redis-cli --tls and Python's ssl
        rc = shutil.which("redis-cli")
        if rc:
            base_args = [rc, "-h", HOST, "-p", str(resp), "--tls", "--cacert", pki("ca.pem")]
            p = subprocess.run(base_args + ["SET", "resp-key", "over-tls"],
                               capture_output=True, text=True, timeout=30)
            q = subprocess.run(base_args + ["GET", "resp-key"], capture_output=True,
                               text=True, timeout=30)
            check(p.stdout.strip() == "OK" and q.stdout.strip() == "over-tls",
                  "redis-cli --tls SET/GET (%r %r)" % (p.stdout, q.stdout))
        else:
            check(False, "redis-cli is installed (scripts/deps.sh)")
        # redis-py: Debian's python3-redis lives in the system interpreter,
        # which a pyenv or venv python3 first on PATH does not see.
        script = ("import redis\n"
                  "r=redis.Redis(host=%r,port=%d,ssl=True,ssl_ca_certs=%r,socket_timeout=5)\n"
                  "assert r.set('py-key','py-value') and r.get('py-key')==b'py-value'\n"
                  "try:\n"
                  "  redis.Redis(host=%r,port=%d,socket_timeout=5).ping(); raise SystemExit(3)\n"
                  "except redis.exceptions.ConnectionError:\n"
                  "  pass\n" % (HOST, resp, pki("ca.pem"), HOST, resp))
        pythons = [sys.executable] + [p for p in ("/usr/bin/python3",) if os.path.exists(p)]
        with_redis = [py for py in pythons
                      if subprocess.run([py, "-c", "import redis"],
                                        capture_output=True).returncode == 0]
        if with_redis:
            p = subprocess.run([with_redis[0], "-c", script], capture_output=True, text=True,
                               timeout=60)
            check(p.returncode == 0, "redis-py ssl=True SET/GET; without ssl it fails to "
                  "connect (%s: %s)" % (with_redis[0], p.stderr.strip()[-200:]))
        else:
            check(False, "a python with redis-py (python3-redis, scripts/deps.sh)")
        ctx = tls_context(pki("ca.pem"))
        keeper = resp_tls(ctx, resp)
        check(keeper.version() == "TLSv1.3", "the RESP port speaks %s" % keeper.version())
        n = 2000
        keeper.sendall(b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\nk%d\r\n$1\r\nv\r\n"
                                % (len(b"k%d" % i), i) for i in range(n)))
        got = read_reply(keeper, 5 * n)
        check(got == b"+OK\r\n" * n, "%d pipelined SETs answered over TLS" % n)
        big = os.urandom(1 << 19).hex().encode()  # 1 MiB of text
        keeper.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n%s\r\n" % (len(big), big))
        check(read_reply(keeper, 5) == b"+OK\r\n", "a 1 MiB value written over TLS")
        keeper.sendall(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n")
        want = b"$%d\r\n%s\r\n" % (len(big), big)
        check(read_reply(keeper, len(want)) == want, "and read back whole")
        other = tls_context(pki("otherca.pem"))
        try:
            resp_tls(other, resp).close()
            check(False, "Python's ssl with another CA refuses the server")
        except ssl.SSLCertVerificationError:
            check(True, "Python's ssl with another CA refuses the server")
        # TLS 1.3 only: a client that offers at most TLS 1.2 is refused.
        old_tls = ssl.create_default_context(cafile=pki("ca.pem"))
        old_tls.maximum_version = ssl.TLSVersion.TLSv1_2
        try:
            resp_tls(old_tls, resp).close()
            check(False, "a TLS 1.2 client is refused")
        except ssl.SSLError as e:
            check("version" in str(e).lower(), "a TLS 1.2 client is refused (%s)" % e)

        def keeper_alive(what):
            keeper.sendall(b"*1\r\n$4\r\nPING\r\n")
            check(read_reply(keeper, 7) == b"+PONG\r\n",
                  "a TLS client connected before is served after %s" % what)

        # -- plaintext, garbage, a truncated handshake on the TLS port
        s = socket.create_connection((HOST, resp), timeout=TIMEOUT)
        s.sendall(b"PING\r\n")
        check(closed_within(s, TIMEOUT), "a plaintext RESP client is closed")
        s.close()
        keeper_alive("a plaintext client")
        s = socket.create_connection((HOST, native), timeout=TIMEOUT)
        s.sendall(os.urandom(4096))
        check(closed_within(s, TIMEOUT), "garbage on the native TLS port is closed")
        s.close()
        hello = client_hello(ctx)
        s = socket.create_connection((HOST, resp), timeout=TIMEOUT)
        s.sendall(hello[: len(hello) // 2])
        s.close()  # truncated, then gone
        s = socket.create_connection((HOST, resp), timeout=TIMEOUT)
        s.sendall(hello[:5] + os.urandom(len(hello) - 5))
        check(closed_within(s, TIMEOUT), "a ClientHello with a garbage body is refused")
        s.close()
        keeper_alive("garbage and truncated handshakes")

        # -- stalled handshakes: others are served meanwhile; they time out
        stalled = []
        for i in range(32):
            s = socket.create_connection((HOST, resp if i % 2 else native), timeout=TIMEOUT)
            s.sendall(hello[: len(hello) // 2])
            stalled.append(s)
        opened = time.monotonic()
        t0 = time.monotonic()
        fresh = resp_tls(ctx, resp)
        slowest = 0.0
        for i in range(200):
            t = time.monotonic()
            fresh.sendall(b"*2\r\n$3\r\nGET\r\n$2\r\nk%d\r\n" % (i % 10))
            ok = read_reply(fresh, 7) == b"$1\r\nv\r\n"
            slowest = max(slowest, time.monotonic() - t)
            if not ok:
                break
        elapsed = time.monotonic() - t0
        check(ok and slowest < 1.0 and elapsed < HANDSHAKE_TIMEOUT_S * 0.8,
              "32 clients stalled mid-handshake: a new client handshakes and gets 200 "
              "answers in %.3f s (slowest %.3f s)" % (elapsed, slowest))
        p = ringkv(cli, ["-a", addr, "--tls-ca", pki("ca.pem"), "get", "tls-key"])
        check(p.returncode == 0 and p.stdout.strip() == "tls-value",
              "and the native port serves the CLI meanwhile")
        still = time.monotonic() - opened < HANDSHAKE_TIMEOUT_S * 0.9
        closed = sum(closed_within(s, HANDSHAKE_TIMEOUT_S + 3) for s in stalled)
        waited = time.monotonic() - opened
        check(still and closed == len(stalled) and waited < HANDSHAKE_TIMEOUT_S + 4,
              "the stalled clients are closed after the %.0f s handshake timeout "
              "(%d of %d, %.1f s)" % (HANDSHAKE_TIMEOUT_S, closed, len(stalled), waited))
        for s in stalled:
            s.close()
        keeper_alive("the stalled clients")

        # -- SIGHUP: certificate rotation
        for f in ("server.pem", "server.key"):
            shutil.copy(pki(f), pki(f + ".orig"))
        replace_file(pki("server.pem"), pki("rotated.pem"))
        replace_file(pki("server.key"), pki("rotated.key"))
        srv.proc.send_signal(signal.SIGHUP)
        # The client ports' line: the peer TLS line ("peer TLS certificate
        # reloaded"), logged just before it, comes before the swap.
        check(wait_log(srv, "got SIGHUP: TLS certificate reloaded", 1),
              "SIGHUP: the reload is logged")
        rotated = resp_tls(tls_context(pki("otherca.pem")), resp)
        rotated.sendall(b"*1\r\n$4\r\nPING\r\n")
        check(read_reply(rotated, 7) == b"+PONG\r\n",
              "after SIGHUP a new client gets the rotated certificate (another CA)")
        try:
            resp_tls(ctx, resp).close()
            check(False, "after SIGHUP the old certificate is no longer served")
        except ssl.SSLCertVerificationError:
            check(True, "after SIGHUP the old certificate is no longer served")
        keeper_alive("a certificate rotation")
        with open(pki("server.pem"), "w") as f:
            f.write("not a certificate\n")
        srv.proc.send_signal(signal.SIGHUP)
        check(wait_log(srv, "TLS reload refused", 1),
              "SIGHUP with a bad certificate file: the reload is refused and logged")
        again = resp_tls(tls_context(pki("otherca.pem")), resp)
        again.sendall(b"*1\r\n$4\r\nPING\r\n")
        check(read_reply(again, 7) == b"+PONG\r\n",
              "and the last good certificate is still served")
        again.close()
        # A certificate that expires while served: clients refuse it.
        not_after = make_short_cert(d, "ca", "brief", "IP:%s" % HOST, 5)
        replace_file(pki("server.pem"), pki("brief.pem"))
        replace_file(pki("server.key"), pki("brief.key"))
        srv.proc.send_signal(signal.SIGHUP)
        check(wait_log(srv, "got SIGHUP: TLS certificate reloaded", 2),
              "SIGHUP: a brief certificate")
        p = ringkv(cli, ["-a", addr, "--tls-ca", pki("ca.pem"), "get", "tls-key"])
        check(p.returncode == 0, "the brief certificate is taken while valid (%d %s)"
              % (p.returncode, p.stderr.strip()))
        time.sleep(max(0.0, not_after - time.time()) + 1.1)
        p = ringkv(cli, ["-a", addr, "--tls-ca", pki("ca.pem"), "get", "tls-key"])
        check(p.returncode == 3 and "certificate has expired" in p.stderr,
              "ringkv refuses the server's certificate once expired (%d %s)"
              % (p.returncode, p.stderr.strip()))
        try:
            resp_tls(ctx, resp).close()
            check(False, "Python's ssl refuses the server's certificate once expired")
        except ssl.SSLCertVerificationError as e:
            check("certificate has expired" in str(e),
                  "Python's ssl refuses the server's certificate once expired (%s)" % e)
        rc = shutil.which("redis-cli")
        p = subprocess.run([rc or "redis-cli", "-h", HOST, "-p", str(resp), "--tls", "--cacert",
                            pki("ca.pem"), "PING"], capture_output=True, text=True, timeout=30)
        check("PONG" not in p.stdout and "certificate verify failed" in p.stdout + p.stderr,
              "redis-cli --tls refuses the server's certificate once expired (%r %r)"
              % (p.stdout.strip(), p.stderr.strip()))
        rotated.close()
        for f in ("server.pem", "server.key"):
            replace_file(pki(f), pki(f + ".orig"))
        fresh.close()
        keeper.close()
        check("TLS handshake refused" in srv.log(), "refused handshakes are logged")
        check(srv.stop() == 0, "ringkvd stops cleanly (exit %s)" % srv.proc.returncode)

        # -- a certificate naming another address is refused by the client
        other_srv = Server(ringkvd, ["--listen", "%s:%d" % (OTHER_HOST, native),
                                     "--tls-cert", pki("elsewhere.pem"),
                                     "--tls-key", pki("elsewhere.key")], work, "elsewhere")
        servers.append(other_srv)
        if other_srv.wait_listening():
            p = ringkv(cli, ["-a", "%s:%d" % (OTHER_HOST, native), "--tls-ca",
                             pki("ca.pem"), "get", "x"])
            check(p.returncode == 3 and "IP address mismatch" in p.stderr,
                  "a certificate for another address is refused (%d %s)"
                  % (p.returncode, p.stderr.strip()))
        else:
            check(False, "the second ringkvd started: " + other_srv.log()[-2000:])
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("tls: %d failed" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
