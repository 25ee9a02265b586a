"""Helpers of the peer TLS tests (peer_tls*.py): a node's log, the CLI over
TLS, the peer connections between nodes, and a raw TLS peer made with
python's ssl."""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

from ringkv_test import start_cluster_node, stop_process
from tls import make_ca, make_cert

failures = 0


def check(ok, what):
    """Prints one check's outcome; failures counts the failed ones."""
    global failures
    print("%s %s" % ("ok  " if ok else "FAIL", what), flush=True)
    failures += not ok


def begin(doc, prefix):
    """A test's start: (ringkvd, ringkv, work dir, its pki dir), or the exit
    code to return at once (usage: 2; no openssl CLI: 77, skipped)."""
    if len(sys.argv) != 3:
        print(doc)
        return 2
    if shutil.which("openssl") is None:
        print("openssl CLI missing (apt-get install openssl)")
        return 77
    work = tempfile.mkdtemp(prefix=prefix + ".")
    pki = os.path.join(work, "pki")
    os.makedirs(pki)
    return sys.argv[1], sys.argv[2], work, pki


def cleanup(work, procs):
    """A test's end, whatever happened: stops its nodes, removes its files."""
    stop_all(work, procs, failures)
    shutil.rmtree(work, ignore_errors=True)


def result(name):
    """The exit code: 0 when every check passed."""
    print("%s: %d failed" % (name, failures))
    return 1 if failures else 0


def two_cas(pki, hosts):
    """CA1 and CA2, each node's certificate from each (nI-ca1, nI-ca2, SAN
    URI ringkv://node/I and its IP), and both.pem holding both CAs."""
    make_ca(pki, "ca1")
    make_ca(pki, "ca2")
    for i, host in enumerate(hosts):
        for ca in ("ca1", "ca2"):
            make_cert(pki, ca, "n%d-%s" % (i + 1, ca),
                      "URI:ringkv://node/%d,IP:%s" % (i + 1, host))
    cat(pki, "both.pem", "ca1.pem", "ca2.pem")


def log_of(work, i):
    """Node i + 1's output so far (data/n<i+1>.log of start_cluster_node)."""
    with open(os.path.join(work, "n%d.log" % (i + 1)), errors="replace") as f:
        return f.read()


def cli(ringkv, port, ca, host, *args):
    return subprocess.run([ringkv, "-a", "%s:%d" % (host, port), "--tls-ca", ca, *args],
                          capture_output=True, text=True, timeout=30)


def cat(pki, dst, *srcs):
    """Writes the concatenation of pki/srcs to pki/dst, replacing it at once."""
    with open(os.path.join(pki, dst + ".tmp"), "w") as out:
        for s in srcs:
            with open(os.path.join(pki, s)) as f:
                out.write(f.read())
    os.rename(os.path.join(pki, dst + ".tmp"), os.path.join(pki, dst))


class Writer(threading.Thread):
    """Puts w0, w1, ... through host:port (TLS, trusting ca) until stopped;
    notes failures and the longest time between two successful writes."""

    def __init__(self, ringkv, port, ca, host):
        super().__init__(daemon=True)
        self.ringkv, self.port, self.ca, self.host = ringkv, port, ca, host
        self.ok = 0
        self.failed = []
        self.failed_at = []  # time.time() of each failure
        self.max_gap = 0.0
        self.stopping = False

    def run(self):
        last = time.time()
        while not self.stopping:
            p = cli(self.ringkv, self.port, self.ca, self.host, "put", "w%d" % self.ok, "v")
            now = time.time()
            if p.returncode == 0:
                self.ok += 1
                self.max_gap = max(self.max_gap, now - last)
                last = now
            else:
                self.failed.append(p.stderr.strip())
                self.failed_at.append(now)
            time.sleep(0.05)


def put_until(ringkv, port, ca, host, key, value, seconds):
    """Retries a put until the cluster takes it (leaders being elected)."""
    deadline = time.time() + seconds
    p = None
    while time.time() < deadline:
        p = cli(ringkv, port, ca, host, "put", key, value)
        if p.returncode == 0:
            return True, ""
        time.sleep(0.3)
    return False, p.stderr.strip() if p else "no attempt"


def peer_connections(hosts, peer):
    """The established TCP connections between two of `hosts` with one end
    on port `peer`, each as ((ip, port), (ip, port)) sorted, from
    /proc/net/tcp (both ends are on this machine: each is listed twice)."""
    def endpoint(text):
        ip, port = text.split(":")
        return socket.inet_ntoa(bytes.fromhex(ip)[::-1]), int(port, 16)

    found = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] != "01":  # ESTABLISHED
                continue
            a, b = endpoint(fields[1]), endpoint(fields[2])
            if a[0] in hosts and b[0] in hosts and peer in (a[1], b[1]):
                found.add(tuple(sorted((a, b))))
    return found


def between(conns, hosts, x, y):
    """Those of conns between node x and node y (1-based in `hosts`)."""
    return {c for c in conns if {c[0][0], c[1][0]} == {hosts[x - 1], hosts[y - 1]}}


def leaderships(ringkv, port, ca, host, node):
    """How many shards `node` leads (ringkv cluster status through
    host:port), or -1."""
    p = cli(ringkv, port, ca, host, "cluster", "status", "--json")
    try:
        return sum(1 for sh in json.loads(p.stdout)["shards"] if sh["leader"] == node)
    except (ValueError, KeyError, TypeError):
        return -1


def none_lives_on(connections):
    """Checks that no connection of `connections()` (a set) seen now is
    still there 1.5 s later: the refused node's redials are all cut."""
    a = connections()
    time.sleep(1.5)
    b = connections()
    check(not (a & b), "no connection node 3 makes afterwards lives on (%s)"
          % sorted(a & b)[:2])


def check_cut_logged(work, marks, host, peer, *why):
    """Checks that nodes 1 and 2 logged, since `marks` (their logs'
    lengths), closing node 3's connections (node 3 at host:peer) both ways,
    the one they dialled and the one it dialled, in lines holding every
    text of `why`."""
    cut = [ln for i in (0, 1) for ln in log_of(work, i)[marks[i]:].splitlines()
           if all(w in ln for w in why)]
    check(any("peer node 3 (%s:%d)" % (host, peer) in ln for ln in cut) and
          any("peer connection from %s:" % host in ln and "(node 3)" in ln for ln in cut),
          "nodes 1 and 2 say why they closed node 3's connections, both ways: %s" % cut[:2])


def check_writer(writer, cut_at, led3):
    """Stops `writer` and checks its puts: a put whose shard node 3 led
    when it was cut off (time `cut_at`; `led3` leaderships) may fail, as
    with any node lost (its leadership lost, the outcome unknown); no
    other, and no gap over 5 s."""
    writer.stopping = True
    writer.join(60)
    early = [m for m, t in zip(writer.failed, writer.failed_at) if t < cut_at]
    other = [m for m in writer.failed if "leader" not in m and "UNAVAILABLE" not in m]
    check(writer.ok >= 10 and not early and not other and
          len(writer.failed) <= (3 if led3 else 0) and writer.max_gap < 5,
          "the writer's puts succeeded but for those of node 3's %d leaderships at its "
          "cut (%d ok, %d failed %s, longest gap %.1f s)"
          % (led3, writer.ok, len(writer.failed), writer.failed[:1], writer.max_gap))


def peer_dial(pki, cert, trust, host, port, source):
    """Dials the peer port host:port from address `source` as a peer showing
    certificate `cert` (pki/cert.pem and .key), trusting pki/`trust`: what
    ended the connection (the alert's reason as OpenSSL names it, "closed",
    "reset" or "data") and the CN of the certificate the port showed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.load_verify_locations(os.path.join(pki, trust))
    ctx.load_cert_chain(os.path.join(pki, cert + ".pem"), os.path.join(pki, cert + ".key"))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    subject = ""
    try:
        s.bind((source, 0))
        s.connect((host, port))
        with ctx.wrap_socket(s) as t:
            subject = dict(x[0] for x in t.getpeercert()["subject"]).get("commonName", "")
            # No hello: TLS 1.3, the server judges our certificate after
            # our side of the handshake is over; we read its verdict.
            t.sendall(b"\0\0\0\0")
            return ("data" if t.recv(1) else "closed"), subject
    except ssl.SSLError as e:
        return e.reason or str(e), subject
    except ConnectionResetError:
        return "reset", subject
    except OSError as e:
        return str(e), subject
    finally:
        s.close()


def stop_all(work, procs, failed):
    """Stops the nodes still running; after a failure shows their logs' tails."""
    for p in procs:
        if p:
            stop_process(p, 15)
    if failed:
        for i in range(len(procs)):
            print("---- n%d.log (tail)" % (i + 1))
            print(log_of(work, i)[-3000:])


def start_node(ringkvd, work, pki, hosts, ports, i, ca):
    """Node i + 1 of `hosts` (start_cluster_node) with certificate
    pki/n<i+1>.pem and .key and CA file pki/`ca`."""
    n = i + 1
    return start_cluster_node(ringkvd, work, hosts, i, ports,
                              extra=["--tls-cert", os.path.join(pki, "n%d.pem" % n),
                                     "--tls-key", os.path.join(pki, "n%d.key" % n),
                                     "--tls-ca", os.path.join(pki, ca),
                                     "--shards", "4", "--log-level", "info"])


def sighup(work, procs, nodes, what):
    """SIGHUP to `nodes` (1-based); checks each logs its peer TLS reload."""
    marks = {n: len(log_of(work, n - 1)) for n in nodes}
    for n in nodes:
        procs[n - 1].send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while time.time() < deadline and not all(
            "peer TLS certificate reloaded" in log_of(work, n - 1)[marks[n]:] for n in nodes):
        time.sleep(0.1)
    bad = [n for n in nodes
           if "peer TLS certificate reloaded" not in log_of(work, n - 1)[marks[n]:]]
    check(not bad, "%s: nodes %s reloaded (not: %s%s)"
          % (what, list(nodes), bad, [log_of(work, n - 1)[marks[n]:][-300:] for n in bad][:1]))
