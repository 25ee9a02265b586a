#!/usr/bin/env python3
"""A cluster moves from one CA to another without a restart (issue 19).

usage: peer_tls_rotation.py RINGKVD RINGKV

Makes CA1 and CA2 and node certificates from each (SAN URI
ringkv://node/ID) with the openssl CLI in a temp dir, starts a 3-node
cluster on CA1 (--tls-cert/--tls-key/--tls-ca, one CA file for all), and
while a writer puts keys through node 1 all along:
  1. the CA file becomes CA1+CA2, SIGHUP to every node;
  2. every node's certificate becomes its CA2 one, SIGHUP: new peer
     connections show it (a TLS client trusting CA2 only checks);
  3. the CA file becomes CA2 alone, SIGHUP: a peer showing a CA1
     certificate is refused with TLS alert unknown CA (a TLS client made
     with python's ssl from node 2's address), while one with a CA2
     certificate is let through the handshake;
  then node 3 restarts with its CA1 certificate (trusting both CAs, as a
  node that missed step 2): nodes 1 and 2 refuse it with TLS alert unknown
  CA, both when it dials them and when they dial it, and its log shows the
  alert's reason both ways; back on CA2 it serves.
Every write of the writer during the rotation must succeed, no gap over
5 s. Addresses 127.0.55.11-13; ports 55000 + 3 * (pid % 300) and the two
next. Every process it starts, it stops. Exits 0 when every check passes,
1 otherwise.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ringkv_test import stop_process  # noqa: E402
import peer_tls_common as common  # noqa: E402
from peer_tls_common import Writer, cat, log_of  # noqa: E402

HOSTS = ["127.0.55.11", "127.0.55.12", "127.0.55.13"]
BASE = 55000 + 3 * (os.getpid() % 300)
PEER, NATIVE, RESP = BASE, BASE + 1, BASE + 2

check = common.check


def start(ringkvd, work, pki, i, ca="cluster-ca.pem"):
    return common.start_node(ringkvd, work, pki, HOSTS, (PEER, NATIVE, RESP), i, ca)


def cli(ringkv, pki, host, *args):
    # The client trusts both CAs throughout: its own rotation is not the test's.
    return common.cli(ringkv, NATIVE, os.path.join(pki, "both.pem"), host, *args)


def put_until(ringkv, pki, host, key, value, seconds):
    return common.put_until(ringkv, NATIVE, os.path.join(pki, "both.pem"), host, key, value,
                            seconds)


def peer_dial(pki, cert, host, trust):
    """A peer showing `cert` dials `host` from node 2's address (common.peer_dial)."""
    return common.peer_dial(pki, cert, trust, host, PEER, HOSTS[1])


def main():
    started = common.begin(__doc__, "peer_tls_rotation")
    if isinstance(started, int):
        return started
    ringkvd, ringkv, work, pki = started
    procs = [None, None, None]
    writer = None
    try:
        common.two_cas(pki, HOSTS)
        cat(pki, "cluster-ca.pem", "ca1.pem")
        for i in range(3):
            for ext in ("pem", "key"):
                cat(pki, "n%d.%s" % (i + 1, ext), "n%d-ca1.%s" % (i + 1, ext))
            procs[i] = start(ringkvd, work, pki, i)
        ok, err = put_until(ringkv, pki, HOSTS[0], "k0", "v0", 30)
        check(ok, "the CA1 cluster takes a write (%s)" % err)

        writer = Writer(ringkv, NATIVE, os.path.join(pki, "both.pem"), HOSTS[0])
        writer.start()
        time.sleep(2)

        # 1. trust both
        cat(pki, "cluster-ca.pem", "ca1.pem", "ca2.pem")
        common.sighup(work, procs, (1, 2, 3), "CA file CA1+CA2")
        time.sleep(2)
        # 2. CA2 certificates
        for i in range(3):
            for ext in ("pem", "key"):
                cat(pki, "n%d.%s" % (i + 1, ext), "n%d-ca2.%s" % (i + 1, ext))
        common.sighup(work, procs, (1, 2, 3), "CA2 certificates")
        for i in range(3):
            got, subject = peer_dial(pki, "n2-ca2", HOSTS[i], "ca2.pem")
            check(subject == "n%d-ca2" % (i + 1),
                  "node %d's peer port shows its CA2 certificate to a client trusting "
                  "CA2 only (%s, %s)" % (i + 1, subject, got))
        time.sleep(2)
        # 3. CA2 alone
        cat(pki, "cluster-ca.pem", "ca2.pem")
        common.sighup(work, procs, (1, 2, 3), "CA file CA2 alone")
        time.sleep(2)
        for i in (0, 2):
            got, _ = peer_dial(pki, "n2-ca1", HOSTS[i], "ca2.pem")
            check(got == "TLSV1_ALERT_UNKNOWN_CA",
                  "node %d refuses a CA1 certificate with TLS alert unknown CA (%s)"
                  % (i + 1, got))
            got, _ = peer_dial(pki, "n2-ca2", HOSTS[i], "ca2.pem")
            check(got in ("closed", "reset"),
                  "node %d lets a CA2 certificate through the handshake (%s; its "
                  "hello is refused)" % (i + 1, got))
        writer.stopping = True
        writer.join(60)
        check(writer.ok >= 10 and not writer.failed and writer.max_gap < 5,
              "the writer's puts all succeeded during the rotation (%d ok, %d failed %s, "
              "longest gap %.1f s)" % (writer.ok, len(writer.failed), writer.failed[:1],
                                       writer.max_gap))
        p = cli(ringkv, pki, HOSTS[2], "get", "w%d" % (writer.ok - 1))
        check(p.stdout.strip() == "v", "node 3 reads the last write (%r)" % p.stdout)

        # node 3 back with its CA1 certificate (it missed step 2; it trusts
        # both CAs, so only the others' refusal stops it): refused, and its
        # log says why
        stop_process(procs[2], 15)
        for ext in ("pem", "key"):
            cat(pki, "n3.%s" % ext, "n3-ca1.%s" % ext)
        mark = len(log_of(work, 2))
        procs[2] = start(ringkvd, work, pki, 2, ca="both.pem")
        want = ("refused by the other side: TLS alert unknown CA (it does not trust the CA "
                "that signed our certificate)")
        deadline = time.time() + 20
        while time.time() < deadline and want not in log_of(work, 2)[mark:]:
            time.sleep(0.3)
        lines = [ln for ln in log_of(work, 2)[mark:].splitlines() if want in ln]
        check(bool(lines), "a node with a CA1 certificate is refused, its log says why: %s"
              % (lines[:1] or [ln for ln in log_of(work, 2)[mark:].splitlines()
                               if "peer " in ln][:6]))
        # The other way: nodes 1 and 2 dialling node 3 refuse its CA1
        # certificate, and their alert reaches it before the close.
        want = ("(node %d's address): TLS handshake: refused by the other side: TLS alert "
                "unknown CA (it does not trust the CA that signed our certificate)")
        deadline = time.time() + 20
        dialled = outs = ins = []
        # (refusals are logged at most once per 10 s per core: poll)
        while time.time() < deadline and (not dialled or not outs or not ins):
            ins = [ln for i in (0, 1) for ln in log_of(work, i).splitlines()
                   if "peer connection from %s:" % HOSTS[2] in ln and
                   "alert sent: unknown CA" in ln]
            outs = [ln for i in (0, 1) for ln in log_of(work, i).splitlines()
                    if "peer node 3 (%s:%d): cannot connect:" % (HOSTS[2], PEER) in ln and
                    "alert sent: unknown CA" in ln]
            dialled = [n for n in (1, 2) if any(
                "peer connection from %s:" % HOSTS[n - 1] in ln and want % n in ln
                for ln in log_of(work, 2)[mark:].splitlines())]
            time.sleep(0.3)
        check(bool(ins), "nodes 1 and 2 log the refusal: %s" % ins[:1])
        check(bool(outs), "nodes 1 and 2 refuse node 3 when they dial it, saying they sent "
              "the alert: %s" % outs[:1])
        # (one of them at least: node 3 too logs one such line per 10 s per core)
        check(bool(dialled), "node 3's log says nodes 1 and 2 refused it when they dialled "
              "it, and why (%s): %s" % (dialled, [ln for ln in log_of(work, 2)[mark:].splitlines()
                                                   if "peer connection from" in ln][:2]))
        ok, err = put_until(ringkv, pki, HOSTS[0], "without-3", "v", 20)
        check(ok, "nodes 1 and 2 serve writes meanwhile (%s)" % err)
        stop_process(procs[2], 15)
        for ext in ("pem", "key"):
            cat(pki, "n3.%s" % ext, "n3-ca2.%s" % ext)
        procs[2] = start(ringkvd, work, pki, 2)
        ok, err = put_until(ringkv, pki, HOSTS[2], "with-3", "v", 30)
        check(ok, "node 3 back with its CA2 certificate writes through the cluster (%s)" % err)
    finally:
        if writer:
            writer.stopping = True
            writer.join(60)
        common.cleanup(work, procs)
    return common.result("peer_tls_rotation")


if __name__ == "__main__":
    sys.exit(main())
