"""Helpers the Python integration tests share (tests/integration/*.py import
it from their own folder, which Python puts first on sys.path):

- read_until_closed, admin_exchange: raw bytes to and from the admin port,
  plain or over TLS (test_admin.py, tls.py);
- stop_process: SIGTERM, then SIGKILL after a bound;
- Server: one ringkvd whose output goes to files, and its start-up wait
  (tls.py, auth.py, auth_cores.py);
- resp_command: a command as RESP2 bytes; RespReader: RESP2 replies off a
  blocking socket, decoded or as their exact bytes;
- programs_from_argv, ringkvd_from_argv: the RINGKVD RINGKV (or RINGKVD)
  command line the tests take;
- work_dir: a test's temporary directory, kept when KEEP is set;
- wait_until: polls a condition for a bound;
- cluster_node_args: the command line of one node of a static cluster;
  start_cluster_node: such a node with a RESP port, started (the
  resp_cluster_*.py tests);
- Native: stale reads through libringkv (ctypes), each node's own applied
  copy of a key.

Nothing here counts failures (each test keeps its own checks), and only
work_dir prints: where it kept a directory.
"""
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time


def read_until_closed(sock, ignore=(OSError,)):
    """What `sock` receives until the peer closes it; an error of a class in
    `ignore` ends the reading early (what came before it is kept)."""
    got = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    except ignore:
        pass
    return got


def admin_exchange(host, port, data, timeout, ctx=None, wait_reply=True,
                   ignore=(OSError, ssl.SSLError)):
    """Sends `data` to the admin port at host:port, over TLS when `ctx` is
    given (a certificate the context refuses raises
    ssl.SSLCertVerificationError), and returns what came back until the
    server closed (b"" without `wait_reply`). An error of a class in
    `ignore` while sending gives b"", while reading what came before it."""
    sock = socket.create_connection((host, port), timeout=timeout)
    if ctx:
        sock = ctx.wrap_socket(sock, server_hostname="localhost")
    try:
        sock.sendall(data)
        return read_until_closed(sock, ignore) if wait_reply else b""
    except ignore:
        return b""
    finally:
        sock.close()


def resp_command(*args):
    """A command as a RESP2 array of bulk strings; each argument bytes, str
    (UTF-8) or int (its decimal text)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a)
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RespReader:
    """Reads RESP2 replies from a blocking socket. reply(): simple strings,
    errors and integers as their line (b"+OK", b"-ERR ...", b":3"), bulk
    strings as their bytes (None for a null), arrays as lists. raw_reply():
    a reply's exact bytes, CRLFs and nested replies included, RESP3's types
    too (resp_strings.py, resp_resp3.py). A connection
    the server closes mid-reply raises ConnectionError."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("server closed")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b"-", b":"):
            return line
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._take(n + 2)[:n]
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise ValueError("bad reply line %r" % line)

    def raw_reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        head = line + b"\r\n"
        if kind in (b"+", b"-", b":", b"_", b",", b"#", b"("):
            return head
        n = int(rest)
        if kind in (b"$", b"=", b"!"):
            return head if n < 0 else head + self._take(n + 2)
        if kind in (b"*", b"~"):
            return head if n < 0 else head + b"".join(self.raw_reply() for _ in range(n))
        if kind == b">":
            # RESP3's out-of-band push: the command's own reply follows.
            return head + b"".join(self.raw_reply() for _ in range(n)) + self.raw_reply()
        if kind in (b"%", b"|"):
            body = b"".join(self.raw_reply() for _ in range(2 * n))
            # An attribute comes before the reply it describes.
            return head + body + (self.raw_reply() if kind == b"|" else b"")
        raise ValueError("bad reply line %r" % line)


def _argv_or_usage(doc, count):
    """The test's `count` arguments; with another count, prints the test's
    usage `doc` and exits 2."""
    if len(sys.argv) != count + 1:
        print(doc)
        sys.exit(2)
    return sys.argv[1:]


def programs_from_argv(doc):
    """The two paths of a test's command line `NAME.py RINGKVD RINGKV` (the
    server, the CLI); with another count of arguments, prints the test's
    usage `doc` and exits 2."""
    ringkvd, ringkv = _argv_or_usage(doc, 2)
    return ringkvd, ringkv


def ringkvd_from_argv(doc):
    """The server's path, the one argument of `NAME.py RINGKVD`; otherwise
    as programs_from_argv."""
    return _argv_or_usage(doc, 1)[0]


@contextlib.contextmanager
def work_dir(prefix):
    """A new temporary directory (its name starts with `prefix`) for the
    block's nodes, removed after it unless the environment sets KEEP (then
    its path is printed)."""
    work = tempfile.mkdtemp(prefix=prefix)
    try:
        yield work
    finally:
        if os.environ.get("KEEP"):
            print("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def wait_until(seconds, pred, step=0.05):
    """pred()'s first true value, asked every `step` seconds for `seconds`;
    None if it gave none."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(step)
    return None


def stop_process(proc, timeout, sig=signal.SIGTERM):
    """Stops `proc` if it runs: `sig`, then SIGKILL if it has not exited
    within `timeout` seconds. Returns its exit status (negative: the
    signal that ended it)."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


class Server:
    """One ringkvd of `cores` cores, started with `args`, in the directory
    work/name (made here): its data in data/, its standard output and error
    in the files stdout and stderr there."""

    def __init__(self, ringkvd, args, work, name, cores=1):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.out = open(os.path.join(self.dir, "stdout"), "w+")
        self.err = open(os.path.join(self.dir, "stderr"), "w+")
        self.proc = subprocess.Popen([ringkvd, "--cores", str(cores), "--data-dir",
                                      os.path.join(self.dir, "data"), *args],
                                     stdout=self.out, stderr=self.err)

    def wait_listening(self):
        """Whether it serves within 10 s (False at once if it exits)."""
        for _ in range(200):
            self.out.seek(0)
            if "try: ringkv" in self.out.read():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def log(self):
        """Its standard error so far."""
        self.err.seek(0)
        return self.err.read()

    def stop(self):
        return stop_process(self.proc, 15)


def cluster_node_args(ringkvd, nodes, nid, work, ports, members=None, cores=1, shards=None):
    """ringkvd's command line for node `nid` of a static cluster: `nodes`
    maps each node id to its address; every node listens on the same
    `ports`, (peer, native, admin, resp), admin and resp left out when
    None; --initial-cluster names `members` in their order (by default
    every node of `nodes`, by id); the data dir is work/n<nid>. The test
    adds its own flags after it."""
    peer, native, admin, resp = ports
    host = nodes[nid]
    ids = sorted(nodes) if members is None else members
    args = [ringkvd, "--node-id", str(nid),
            "--initial-cluster", ",".join("%d=%s:%d" % (i, nodes[i], peer) for i in ids),
            "--listen", "%s:%d" % (host, native)]
    if admin is not None:
        args += ["--admin-listen", "%s:%d" % (host, admin)]
    if resp is not None:
        args += ["--resp-listen", "%s:%d" % (host, resp)]
    args += ["--data-dir", os.path.join(work, "n%d" % nid), "--cores", str(cores)]
    if shards is not None:
        args += ["--shards", str(shards)]
    return args


def start_cluster_node(ringkvd, data, hosts, i, ports, extra=(), log_mode="a"):
    """Node i + 1 of the static cluster `hosts` (one address a node; ports:
    (peer, native, resp), the same on every node), two cores, its data dir
    data/n<i+1> and its output in data/n<i+1>.log (opened with
    `log_mode`). Returns the process."""
    peer, native, resp = ports
    nodes = {j + 1: h for j, h in enumerate(hosts)}
    log = open(os.path.join(data, "n%d.log" % (i + 1)), log_mode)
    return subprocess.Popen(
        cluster_node_args(ringkvd, nodes, i + 1, data, (peer, native, None, resp), cores=2)
        + list(extra), stdout=log, stderr=subprocess.STDOUT)


class Native:
    """Stale reads through libringkv (the shared object at `so`): each
    node's own applied copy, one client a node of `addrs` ("host:port" of
    its native port)."""

    def __init__(self, so, addrs):
        self.lib = ctypes.CDLL(so)
        self.libc = ctypes.CDLL(None)
        self.lib.rkv_connect.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p),
                                         ctypes.c_char_p, ctypes.c_size_t]
        self.lib.rkv_get_stale.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                           ctypes.POINTER(ctypes.c_void_p),
                                           ctypes.POINTER(ctypes.c_size_t)]
        self.lib.rkv_close.argtypes = [ctypes.c_void_p]
        self.libc.free.argtypes = [ctypes.c_void_p]
        self.clients = []
        for addr in addrs:
            c = ctypes.c_void_p()
            err = ctypes.create_string_buffer(256)
            rv = self.lib.rkv_connect(addr.encode(), ctypes.byref(c), err, 256)
            if rv != 0:
                raise RuntimeError("connect %s: %s" % (addr.split(":")[0], err.value))
            self.clients.append(c)

    def get_stale(self, node, key):
        """Node `node`'s (0-based) copy of `key`, None if it has none."""
        v = ctypes.c_void_p()
        n = ctypes.c_size_t()
        rv = self.lib.rkv_get_stale(self.clients[node], key, len(key), ctypes.byref(v),
                                    ctypes.byref(n))
        if rv == 1:
            return None
        if rv != 0:
            raise RuntimeError("stale GET %r through node %d: status %d" % (key, node + 1, rv))
        data = ctypes.string_at(v, n.value)
        self.libc.free(v)
        return data

    def close(self):
        for c in self.clients:
            self.lib.rkv_close(c)
