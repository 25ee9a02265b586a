#!/usr/bin/env python3
"""A node left on a removed CA is cut off by its peers' reload (issue 19).

usage: peer_tls_cutoff.py RINGKVD RINGKV

Makes CA1 and CA2 and node certificates from each (SAN URI
ringkv://node/ID) with the openssl CLI in a temp dir and starts a 3-node
cluster on CA1 (one CA file a node). While a writer puts keys through
node 1 all along:
  1. every CA file becomes CA1+CA2, SIGHUP to every node;
  2. nodes 1 and 2 take their CA2 certificates, SIGHUP; node 3 keeps its
     CA1 one (it missed the rotation). No peer connection is closed by
     these reloads: every certificate still verifies;
  3. the CA files of nodes 1 and 2 become CA2 alone, SIGHUP: within the
     reload's spread (2 s, checked with a margin: 6 s) every TCP
     connection node 3 had with them is gone (read from /proc/net/tcp),
     none it makes afterwards lives on, and the connections between
     nodes 1 and 2 (made with their CA1 certificates) are replaced by new
     ones; their logs say why they closed node 3's connections, and node
     3's log shows the alert's reason when it redials and is dialled.
Every write of the writer must succeed but those of shards node 3 led at
its cut (at most 3 of them: a lost leader's), no gap over 5 s. Then node 3 gets
its CA2 certificate and CA file, SIGHUP: it is let in again and serves.
Addresses 127.0.54.201-203; ports 54000 + 3 * (pid % 300) and the two
next. Every process it starts, it stops. Exits 0 when every check passes,
1 otherwise.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_tls_common as common  # noqa: E402
from peer_tls_common import Writer, cat, log_of  # noqa: E402

HOSTS = ["127.0.54.201", "127.0.54.202", "127.0.54.203"]
BASE = 54000 + 3 * (os.getpid() % 300)
PEER, NATIVE, RESP = BASE, BASE + 1, BASE + 2
SPREAD_BOUND = 6.0  # the reload's 2 s spread, with room for a loaded machine

check = common.check


def start(ringkvd, work, pki, i):
    return common.start_node(ringkvd, work, pki, HOSTS, (PEER, NATIVE, RESP), i,
                             "ca-n%d.pem" % (i + 1))


def cli(ringkv, pki, host, *args):
    return common.cli(ringkv, NATIVE, os.path.join(pki, "both.pem"), host, *args)


def put_until(ringkv, pki, host, key, value, seconds):
    return common.put_until(ringkv, NATIVE, os.path.join(pki, "both.pem"), host, key, value,
                            seconds)


def peer_connections():
    return common.peer_connections(HOSTS, PEER)


def between(conns, x, y):
    return common.between(conns, HOSTS, x, y)


def leaderships(ringkv, pki, node):
    return common.leaderships(ringkv, NATIVE, os.path.join(pki, "both.pem"), HOSTS[0], node)


def main():
    started = common.begin(__doc__, "peer_tls_cutoff")
    if isinstance(started, int):
        return started
    ringkvd, ringkv, work, pki = started
    procs = [None, None, None]
    writer = None
    try:
        common.two_cas(pki, HOSTS)
        for i in range(3):
            n = i + 1
            cat(pki, "ca-n%d.pem" % n, "ca1.pem")
            for ext in ("pem", "key"):
                cat(pki, "n%d.%s" % (n, ext), "n%d-ca1.%s" % (n, ext))
            procs[i] = start(ringkvd, work, pki, i)
        ok, err = put_until(ringkv, pki, HOSTS[0], "k0", "v0", 30)
        check(ok, "the CA1 cluster takes a write (%s)" % err)
        ok, err = put_until(ringkv, pki, HOSTS[2], "k3", "v3", 30)
        check(ok, "node 3 takes a write (%s)" % err)

        writer = Writer(ringkv, NATIVE, os.path.join(pki, "both.pem"), HOSTS[0])
        writer.start()
        time.sleep(1)

        # 1. trust both; 2. nodes 1 and 2 on CA2 certificates
        for n in (1, 2, 3):
            cat(pki, "ca-n%d.pem" % n, "ca1.pem", "ca2.pem")
        before = peer_connections()
        common.sighup(work, procs, (1, 2, 3), "CA files CA1+CA2")
        for n in (1, 2):
            for ext in ("pem", "key"):
                cat(pki, "n%d.%s" % (n, ext), "n%d-ca2.%s" % (n, ext))
        common.sighup(work, procs, (1, 2), "CA2 certificates for nodes 1 and 2")
        time.sleep(SPREAD_BOUND)
        kept = peer_connections()
        check(len(before) >= 12 and before <= kept,
              "reloads that every certificate still passes close no peer connection "
              "(%d before, %d of them kept)" % (len(before), len(before & kept)))

        # 3. nodes 1 and 2 trust CA2 alone; node 3 still shows its CA1 certificate
        led3 = leaderships(ringkv, pki, 3)
        old = peer_connections()
        old3 = between(old, 1, 3) | between(old, 2, 3)
        old12 = between(old, 1, 2)
        marks = [len(log_of(work, i)) for i in range(3)]
        for n in (1, 2):
            cat(pki, "ca-n%d.pem" % n, "ca2.pem")
        t0 = time.time()
        common.sighup(work, procs, (1, 2), "CA files CA2 alone for nodes 1 and 2")
        left = old3
        while time.time() - t0 < SPREAD_BOUND + 4 and left:
            left = old3 & peer_connections()
            time.sleep(0.05)
        took = time.time() - t0
        check(len(old3) >= 8 and not left and took < SPREAD_BOUND,
              "every connection node 3 had with nodes 1 and 2 (%d) is closed %.1f s after "
              "the SIGHUP (bound %.0f s; left: %s)" % (len(old3), took, SPREAD_BOUND,
                                                       sorted(left)[:2]))
        time.sleep(1)
        common.none_lives_on(lambda: between(peer_connections(), 1, 3) |
                             between(peer_connections(), 2, 3))
        now12 = between(peer_connections(), 1, 2)
        check(len(old12) >= 4 and not (old12 & now12) and len(now12) >= 4,
              "the connections between nodes 1 and 2, made with CA1 certificates, are "
              "replaced (%d old, %d new, %d old left)" % (len(old12), len(now12),
                                                          len(old12 & now12)))
        common.check_cut_logged(work, marks, HOSTS[2], PEER,
                                "closed after the TLS reload: its certificate no longer "
                                "verifies", "/CN=n3-ca1 issued by /CN=ringkv test ca1")
        lg3 = log_of(work, 2)[marks[2]:]
        alert = ("TLS alert unknown CA (it does not trust the CA that signed our "
                 "certificate)")
        check(any("peer node " in ln and alert in ln for ln in lg3.splitlines()),
              "node 3's log shows the alert's reason when it redials")
        check(any("peer connection from" in ln and "address): TLS handshake: refused by "
                  "the other side: " + alert in ln for ln in lg3.splitlines()),
              "node 3's log shows the alert's reason when it is dialled")
        time.sleep(1)
        common.check_writer(writer, t0, led3)

        # node 3 takes its CA2 certificate: let in again
        cat(pki, "ca-n3.pem", "ca2.pem")
        for ext in ("pem", "key"):
            cat(pki, "n3.%s" % ext, "n3-ca2.%s" % ext)
        common.sighup(work, procs, (3,), "node 3 on CA2")
        ok, err = put_until(ringkv, pki, HOSTS[2], "with-3", "v", 30)
        check(ok, "node 3 on CA2 writes through the cluster again (%s)" % err)
        p = cli(ringkv, pki, HOSTS[2], "get", "w%d" % (writer.ok - 1))
        check(p.stdout.strip() == "v", "node 3 reads the writer's last key (%r %s)"
              % (p.stdout, p.stderr.strip()))
    finally:
        if writer:
            writer.stopping = True
            writer.join(60)
        common.cleanup(work, procs)
    return common.result("peer_tls_cutoff")


if __name__ == "__main__":
    sys.exit(main())
