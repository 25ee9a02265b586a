"""Helpers of the peer TLS tests (peer_tls.py, peer_tls_rotation.py): a
node's log, the CLI over TLS, and a raw TLS peer made with python's ssl."""
import os
import socket
import ssl
import subprocess
import time

from ringkv_test import stop_process


def log_of(work, i):
    """Node i + 1's output so far (data/n<i+1>.log of start_cluster_node)."""
    with open(os.path.join(work, "n%d.log" % (i + 1)), errors="replace") as f:
        return f.read()


def cli(ringkv, port, ca, host, *args):
    return subprocess.run([ringkv, "-a", "%s:%d" % (host, port), "--tls-ca", ca, *args],
                          capture_output=True, text=True, timeout=30)


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
