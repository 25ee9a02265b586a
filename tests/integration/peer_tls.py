#!/usr/bin/env python3
"""Mutual TLS between peers (issue 19).

usage: peer_tls.py RINGKVD RINGKV

Makes a cluster CA, a foreign CA and node certificates (SAN URI
ringkv://node/ID) with the openssl CLI in a temp dir, then:
  - starts a 3-node cluster (two cores each, so inbound connections are
    handed between cores with their TLS state) with --tls-cert/--tls-key/
    --tls-ca, writes through node 1 and reads every key back through
    node 3;
  - a connection to a peer port that never handshakes is closed after the
    hello timeout, a plaintext one at once; a TLS client without a
    certificate is refused;
  - stops node 2: a ringkvd in its place (its addresses, its node id)
    refuses to start with node 4's certificate, a node-2 certificate of
    another CA or an expired one, saying what is wrong with it;
  - an impostor in node 2's place (a TLS peer made with python's ssl, on
    node 2's addresses) holding each of those certificates is refused by
    nodes 1 and 3, both when it dials them (it gets the TLS alert saying
    why: bad certificate, unknown CA, certificate expired) and when they
    dial it, with one log line saying who, from where and why, while the
    cluster keeps serving writes;
  - the real node 2 comes back and serves again;
  - rotates node 1's certificate (SIGHUP): the peer port then shows the
    new one (openssl s_client), and node 3, restarted, connects to node 1
    with it and writes through it.

Addresses 127.0.55.1-3; ports 55000 + 3 * (pid % 300) and the two next.
Every process it starts, it stops. Exits 0 when every check passes, 1
otherwise.
"""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ringkv_test import start_cluster_node, stop_process  # noqa: E402
from tls import make_ca, make_cert  # noqa: E402
import peer_tls_common as common  # noqa: E402
from peer_tls_common import log_of  # noqa: E402

HOSTS = ["127.0.55.1", "127.0.55.2", "127.0.55.3"]
BASE = 55000 + 3 * (os.getpid() % 300)
PEER, NATIVE, RESP = BASE, BASE + 1, BASE + 2

# One line says why and whose certificate it was.
FOREIGN_REFUSED = ("certificate verify failed: unable to get local issuer certificate "
                   "(certificate /CN=foreign2 issued by /CN=ringkv test otherca)")

check = common.check


def node_cert(d, ca, name, node_id, host):
    make_cert(d, ca, name, "URI:ringkv://node/%d,IP:%s" % (node_id, host))


def refusals(log):
    return [ln for ln in log.splitlines() if "peer connection from" in ln and "refused" in ln]


def wait_log(work, i, text, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if text in log_of(work, i):
            return True
        time.sleep(0.2)
    return False


def cli(ringkv, pki, host, *args):
    return common.cli(ringkv, NATIVE, os.path.join(pki, "ca.pem"), host, *args)


def put_until(ringkv, pki, host, key, value, seconds):
    return common.put_until(ringkv, NATIVE, os.path.join(pki, "ca.pem"), host, key, value,
                            seconds)


def start(ringkvd, work, pki, i, cert=None):
    name = cert or "node%d" % (i + 1)
    return start_cluster_node(ringkvd, work, HOSTS, i, (PEER, NATIVE, RESP),
                              extra=["--tls-cert", os.path.join(pki, name + ".pem"),
                                     "--tls-key", os.path.join(pki, name + ".key"),
                                     "--tls-ca", os.path.join(pki, "ca.pem"),
                                     "--shards", "4", "--log-level", "info"])


def s_client(pki, host, cert):
    """The certificate the peer port at `host` shows to a client showing
    `cert` (None: no certificate): openssl x509 -subject output, and the
    s_client output."""
    args = ["openssl", "s_client", "-connect", "%s:%d" % (host, PEER), "-tls1_3",
            "-CAfile", os.path.join(pki, "ca.pem"), "-verify_return_error"]
    if cert:
        args += ["-cert", os.path.join(pki, cert + ".pem"), "-key",
                 os.path.join(pki, cert + ".key")]
    p = subprocess.run(args, input="", capture_output=True, text=True, timeout=20)
    x = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=p.stdout,
                       capture_output=True, text=True, timeout=20)
    return x.stdout.strip(), p.stdout + p.stderr


def refused_start(ringkvd, work, pki, cert, want, what):
    """A ringkvd in node 2's place with certificate `cert` refuses to start,
    saying `want`."""
    data = os.path.join(work, "n2")
    os.rename(data, data + ".real")
    try:
        p = start(ringkvd, work, pki, 1, cert=cert)
        try:
            rc = p.wait(30)
        except subprocess.TimeoutExpired:
            rc = None
        lines = [ln for ln in log_of(work, 1).splitlines() if "ringkvd: " in ln]
        check(rc not in (None, 0) and any(want in ln for ln in lines),
              "a node 2 with %s refuses to start (exit %s: %s)" % (what, rc, lines[-1:]))
    finally:
        if p.poll() is None:
            stop_process(p, 15)
        shutil.rmtree(data, ignore_errors=True)
        os.rename(data + ".real", data)


class ImpostorServer(threading.Thread):
    """A TLS server on node 2's peer address showing certificate `cert`
    (asking the dialler for one), for nodes 1 and 3 to dial and refuse."""

    def __init__(self, pki, cert):
        super().__init__(daemon=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.ctx.load_cert_chain(os.path.join(pki, cert + ".pem"),
                                 os.path.join(pki, cert + ".key"))
        self.ctx.verify_mode = ssl.CERT_OPTIONAL
        self.ctx.load_verify_locations(os.path.join(pki, "ca.pem"))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOSTS[1], PEER))
        self.sock.listen(16)
        self.sock.settimeout(0.3)
        self.stopping = False

    def run(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            try:
                conn.settimeout(2)
                with self.ctx.wrap_socket(conn, server_side=True) as t:
                    t.recv(1)
            except OSError:
                pass
            finally:
                conn.close()

    def stop(self):
        self.stopping = True
        self.join(10)
        self.sock.close()


def impostor_dial(pki, cert, host):
    """Dials the peer port at `host` from node 2's address as a peer showing
    `cert`: what ended the connection (common.peer_dial)."""
    return common.peer_dial(pki, cert, "ca.pem", host, PEER, HOSTS[1])[0]


def impostor(ringkv, work, pki, cert, want_in, want_out, alert, what):
    """Node 2's place taken by a TLS peer with certificate `cert` (a test
    tool: ringkvd itself refuses to start with it): refused inbound
    (`want_in` in node 1's or 3's log, and the dialler gets TLS alert
    `alert`) and outbound (`want_out`), the cluster serving meanwhile."""
    marks = [len(log_of(work, 0)), len(log_of(work, 2))]
    server = ImpostorServer(pki, cert)
    server.start()
    try:
        for i in (0, 2):
            got = impostor_dial(pki, cert, HOSTS[i])
            check(got == alert, "%s: node %d's refusal reaches the dialler as TLS alert %s "
                  "(got %s)" % (what, i + 1, alert, got))
        deadline = time.time() + 25  # refusals: one warning per 10 s a core
        ins = outs = ""
        while time.time() < deadline:
            logs = [log_of(work, 0)[marks[0]:], log_of(work, 2)[marks[1]:]]
            ins = [ln for lg in logs for ln in lg.splitlines()
                   if "peer connection from 127.0.55.2:" in ln and want_in in ln]
            outs = [ln for lg in logs for ln in lg.splitlines()
                    if "peer node 2 (127.0.55.2:%d)" % PEER in ln and want_out in ln]
            if ins and outs:
                break
            if not ins:  # it redials, as a node would: quiet refusals are not logged
                impostor_dial(pki, cert, HOSTS[0])
            time.sleep(0.5)
        check(bool(ins), "%s: refused when it dials, logged: %s" % (what, ins[:1]))
        check(bool(outs), "%s: refused when dialled, logged: %s" % (what, outs[:1]))
        ok, err = put_until(ringkv, pki, HOSTS[0], "during-" + cert, "v", 20)
        check(ok, "%s: the cluster serves writes meanwhile (%s)" % (what, err))
        p = cli(ringkv, pki, HOSTS[2], "get", "during-" + cert)
        check(p.returncode == 0 and p.stdout.strip() == "v",
              "%s: node 3 reads it (%r %s)" % (what, p.stdout, p.stderr.strip()))
    finally:
        server.stop()


def main():
    started = common.begin(__doc__, "peer_tls")
    if isinstance(started, int):
        return started
    ringkvd, ringkv, work, pki = started
    procs = [None, None, None]
    try:
        make_ca(pki, "ca")
        make_ca(pki, "otherca")
        for i, host in enumerate(HOSTS):
            node_cert(pki, "ca", "node%d" % (i + 1), i + 1, host)
        node_cert(pki, "ca", "node4", 4, HOSTS[1])          # valid, another node
        node_cert(pki, "otherca", "foreign2", 2, HOSTS[1])  # node 2, another CA
        make_cert(pki, "ca", "expired2", "URI:ringkv://node/2,IP:%s" % HOSTS[1], days="0")
        node_cert(pki, "ca", "node1-rotated", 1, HOSTS[0])

        # -- a 3-node TLS cluster serves
        for i in range(3):
            procs[i] = start(ringkvd, work, pki, i)
        ok, err = put_until(ringkv, pki, HOSTS[0], "k0", "v0", 30)
        check(ok, "a write through node 1 of the TLS cluster (%s)" % err)
        for k in range(1, 20):
            p = cli(ringkv, pki, HOSTS[0], "put", "k%d" % k, "v%d" % k)
            if p.returncode != 0:
                break
        check(p.returncode == 0, "20 writes through node 1 (%s)" % p.stderr.strip())
        got = [cli(ringkv, pki, HOSTS[2], "get", "k%d" % k).stdout.strip()
               for k in range(20)]
        check(got == ["v%d" % k for k in range(20)], "node 3 reads all 20 back")
        for i in range(3):
            lg = log_of(work, i)
            check("peer port: mutual TLS 1.3" in lg, "node %d says peer TLS is on" % (i + 1))
            check(not refusals(lg), "node %d refused no peer (%s)" % (i + 1, refusals(lg)[:1]))

        # -- a silent connection is timed out; a certificate is required
        silent = socket.create_connection((HOSTS[0], PEER), timeout=10)
        s_client(pki, HOSTS[0], None)
        deadline = time.time() + 10
        while not [ln for ln in refusals(log_of(work, 0)) if "certificate" in ln] \
                and time.time() < deadline:
            time.sleep(0.2)
        lines = [ln for ln in refusals(log_of(work, 0)) if "certificate" in ln]
        check(bool(lines), "a client without a certificate is refused and logged: %s"
              % lines[:1])
        try:
            silent.settimeout(10)
            t0 = time.time()
            closed = silent.recv(1) == b""
        except OSError:
            closed = True
        check(closed and time.time() - t0 < 9 and
              wait_log(work, 0, "no TLS handshake within", 5),
              "a silent connection is closed after the hello timeout")
        silent.close()
        # A plaintext peer (a hello frame, no TLS) is closed at once: its
        # bytes are no TLS record.
        plain = socket.create_connection((HOSTS[0], PEER), timeout=10)
        plain.sendall((16).to_bytes(4, "little") + b"\x08\x02" + b"\0" * 14)
        t0 = time.time()
        closed = False
        try:
            while plain.recv(4096):  # an alert first, perhaps
                pass
            closed = True
        except socket.timeout:
            pass
        except OSError:
            closed = True
        check(closed and time.time() - t0 < 3,
              "a plaintext peer on the TLS peer port is closed at once (%.1f s)"
              % (time.time() - t0))
        plain.close()

        # -- impostors in node 2's place
        stop_process(procs[1], 15)
        refused_start(ringkvd, work, pki, "node4", "the certificate is for node 4 (SAN URI "
                      "ringkv://node/4), but this is node 2", "node 4's certificate")
        refused_start(ringkvd, work, pki, "foreign2", "not signed by --tls-ca",
                      "another CA's certificate")
        refused_start(ringkvd, work, pki, "expired2", "the certificate has expired",
                      "an expired certificate")
        impostor(ringkv, work, pki, "node4",
                 "its certificate is for node 4, not a peer of this node); alert sent: "
                 "bad certificate", "its certificate is for node 4, not node 2",
                 "SSLV3_ALERT_BAD_CERTIFICATE", "node 4's certificate")
        impostor(ringkv, work, pki, "foreign2", FOREIGN_REFUSED + "; alert sent: unknown CA",
                 FOREIGN_REFUSED, "TLSV1_ALERT_UNKNOWN_CA", "another CA's certificate")
        impostor(ringkv, work, pki, "expired2", "certificate has expired", "certificate has "
                 "expired", "SSLV3_ALERT_CERTIFICATE_EXPIRED", "an expired certificate")
        procs[1] = start(ringkvd, work, pki, 1)
        ok, err = put_until(ringkv, pki, HOSTS[1], "back", "2", 30)
        check(ok, "the real node 2 is back and serves writes (%s)" % err)

        # -- rotation on SIGHUP
        subject, out = s_client(pki, HOSTS[0], "node3")
        check("CN = node1" in subject and "rotated" not in subject,
              "node 1's peer port shows its certificate (%s)" % subject)
        for ext in ("pem", "key"):
            shutil.copy(os.path.join(pki, "node1-rotated." + ext),
                        os.path.join(pki, "node1." + ext))
        procs[0].send_signal(signal.SIGHUP)
        check(wait_log(work, 0, "peer TLS certificate reloaded", 10),
              "node 1 logs the peer certificate reload")
        subject, out = s_client(pki, HOSTS[0], "node3")
        check("CN = node1-rotated" in subject,
              "new peer connections get the rotated certificate (%s)" % subject)
        stop_process(procs[2], 15)
        procs[2] = start(ringkvd, work, pki, 2)
        ok, err = put_until(ringkv, pki, HOSTS[2], "after-rotation", "r", 30)
        check(ok, "node 3, restarted, writes through the cluster (%s)" % err)
        p = cli(ringkv, pki, HOSTS[0], "get", "after-rotation")
        check(p.stdout.strip() == "r", "node 1 reads it (%r)" % p.stdout)
        lg = log_of(work, 0)
        late = refusals(lg.split("peer TLS certificate reloaded")[-1])
        check(not late, "node 1 refused no peer after the rotation (%s)" % late[:1])
    finally:
        common.cleanup(work, procs)
    return common.result("peer_tls")


if __name__ == "__main__":
    sys.exit(main())
