#!/usr/bin/env python3
"""A peer's certificate that expires while connected cuts it off (issue 19).

usage: peer_tls_expiry.py RINGKVD RINGKV

TLS 1.3 has no renegotiation: a peer connection shows the certificate of
its handshake until it closes, so a node whose certificate expires must be
cut off by its peers' clocks, not by a SIGHUP. Makes a CA and node
certificates (SAN URI ringkv://node/ID) with the openssl CLI in a temp dir
and starts a 3-node cluster. Then node 3 is restarted with a certificate
that expires about LIFE seconds later (made with `openssl ca -enddate`:
`openssl x509 -days` cannot go below a day). While a writer puts keys
through node 1 all along:
  1. before the expiry, node 3 serves and has peer connections with nodes
     1 and 2;
  2. within BOUND seconds after its notAfter, every TCP connection node 3
     had with them is gone (read from /proc/net/tcp), and none it makes
     afterwards lives on;
  3. the logs of nodes 1 and 2 say why, both ways (the connection they
     dialled and the one node 3 dialled): "closed at its certificate's
     expiry: ... certificate has expired"; node 3's log shows the
     "certificate expired" alert when it redials;
  4. the writer's puts succeed but those of shards node 3 led at its cut;
  5. node 3 takes a renewed certificate by SIGHUP and is let in again.
Addresses 127.0.52.201-203; ports 52000 + 3 * (pid % 300) and the two
next. Every process it starts, it stops. Exits 0 when every check passes,
1 otherwise.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_tls_common as common  # noqa: E402
from peer_tls_common import Writer, cat, log_of  # noqa: E402
from ringkv_test import stop_process  # noqa: E402
from tls import make_ca, make_cert, make_short_cert  # noqa: E402

HOSTS = ["127.0.52.201", "127.0.52.202", "127.0.52.203"]
BASE = 52000 + 3 * (os.getpid() % 300)
PEER, NATIVE, RESP = BASE, BASE + 1, BASE + 2
LIFE = 25.0   # node 3's short certificate, from its making (restart included)
MARGIN = 3.0  # node 3 must be connected this long before its expiry
BOUND = 4.0   # the 1 s expiry sweep, with room for a loaded machine

check = common.check


def start(ringkvd, work, pki, i):
    return common.start_node(ringkvd, work, pki, HOSTS, (PEER, NATIVE, RESP), i, "ca.pem")


def cli(ringkv, pki, host, *args):
    return common.cli(ringkv, NATIVE, os.path.join(pki, "ca.pem"), host, *args)


def put_until(ringkv, pki, host, key, value, seconds):
    return common.put_until(ringkv, NATIVE, os.path.join(pki, "ca.pem"), host, key, value,
                            seconds)


def with_3(conns):
    """Those of conns between node 3 and nodes 1 or 2."""
    return common.between(conns, HOSTS, 1, 3) | common.between(conns, HOSTS, 2, 3)


def peer_connections():
    return common.peer_connections(HOSTS, PEER)


def main():
    started = common.begin(__doc__, "peer_tls_expiry")
    if isinstance(started, int):
        return started
    ringkvd, ringkv, work, pki = started
    procs = [None, None, None]
    writer = None
    try:
        make_ca(pki, "ca")
        for i, host in enumerate(HOSTS):
            make_cert(pki, "ca", "n%d" % (i + 1), "URI:ringkv://node/%d,IP:%s" % (i + 1, host))
        make_cert(pki, "ca", "n3-renewed", "URI:ringkv://node/3,IP:%s" % HOSTS[2])
        for i in range(3):
            procs[i] = start(ringkvd, work, pki, i)
        ok, err = put_until(ringkv, pki, HOSTS[0], "k0", "v0", 60)
        check(ok, "the cluster takes a write (%s)" % err)

        # node 3 again, with a certificate that expires soon
        stop_process(procs[2], signal.SIGTERM)
        not_after = make_short_cert(pki, "ca", "n3", "URI:ringkv://node/3,IP:%s" % HOSTS[2],
                                    LIFE)
        procs[2] = start(ringkvd, work, pki, 2)
        ok, err = put_until(ringkv, pki, HOSTS[2], "k3", "v3", 30)
        check(ok, "node 3 with its short certificate takes a write (%s)" % err)
        writer = Writer(ringkv, NATIVE, os.path.join(pki, "ca.pem"), HOSTS[0])
        writer.start()
        time.sleep(1)
        led3 = common.leaderships(ringkv, NATIVE, os.path.join(pki, "ca.pem"), HOSTS[0], 3)
        old3 = with_3(peer_connections())
        left_s = not_after - time.time()
        check(left_s > MARGIN and len(old3) >= 8,
              "node 3 is connected to nodes 1 and 2 (%d connections) %.1f s before its "
              "certificate expires (need %.0f s: the machine was too slow otherwise)"
              % (len(old3), left_s, MARGIN))
        marks = [len(log_of(work, i)) for i in range(3)]

        # 1. its notAfter passes: nodes 1 and 2 close every connection with it
        while time.time() < not_after:
            time.sleep(0.05)
        left = old3
        while time.time() - not_after < BOUND + 4 and left:
            left = old3 & peer_connections()
            time.sleep(0.05)
        took = time.time() - not_after
        check(not left and took < BOUND,
              "every connection node 3 had with nodes 1 and 2 (%d) is closed %.1f s after "
              "its certificate's notAfter (bound %.0f s; left: %s)"
              % (len(old3), took, BOUND, sorted(left)[:2]))
        time.sleep(1)
        common.none_lives_on(lambda: with_3(peer_connections()))
        common.check_cut_logged(work, marks, HOSTS[2], PEER,
                                "closed at its certificate's expiry: its certificate no "
                                "longer verifies: certificate has expired (certificate /CN=n3 "
                                "issued by /CN=ringkv test ca)")
        lg3 = log_of(work, 2)[marks[2]:]
        check(any("peer node " in ln and "our certificate has expired by its clock" in ln
                  for ln in lg3.splitlines()),
              "node 3's log shows the alert's reason when it redials")
        time.sleep(1)
        common.check_writer(writer, not_after, led3)

        # node 3 takes a renewed certificate: let in again
        for ext in ("pem", "key"):
            cat(pki, "n3.%s" % ext, "n3-renewed.%s" % ext)
        common.sighup(work, procs, (3,), "node 3 renewed")
        ok, err = put_until(ringkv, pki, HOSTS[2], "with-3", "v", 30)
        check(ok, "node 3 with a renewed certificate writes through the cluster again (%s)"
              % err)
        p = cli(ringkv, pki, HOSTS[2], "get", "w%d" % (writer.ok - 1))
        check(p.stdout.strip() == "v", "node 3 reads the writer's last key (%r %s)"
              % (p.stdout, p.stderr.strip()))
        deadline = time.time() + 20  # redials back off after the refusals
        while len(with_3(peer_connections())) < 8 and time.time() < deadline:
            time.sleep(0.2)
        check(len(with_3(peer_connections())) >= 8,
              "node 3 has all its peer connections again (%d)"
              % len(with_3(peer_connections())))
    finally:
        if writer:
            writer.stopping = True
            writer.join(60)
        common.cleanup(work, procs)
    return common.result("peer_tls_expiry")


if __name__ == "__main__":
    sys.exit(main())
