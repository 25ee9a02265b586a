#!/usr/bin/env python3
"""Malformed RESP input on raw sockets: the server must answer each case
with an error reply or close the connection (a protocol error gets
"-ERR Protocol error: ..." and then the close), must not answer a truncated
command, and must still answer PING on a new connection after every case.

usage: resp_malformed.py HOST PORT

RESP_TARGET=ringkv (default) is strict where ringkv is: a multibulk count
above 1024*1024 is a protocol error. RESP_TARGET=redis accepts that Redis
7.0 waits for its arguments. Both skip a negative count ("*-5"). Every socket has a timeout and every loop a bound. Exits 0
when all cases pass, 1 otherwise, 2 when the server cannot be reached.
"""
import os
import socket
import sys

TIMEOUT = 5.0          # seconds for any single socket operation
QUIET = 0.3            # how long a truncated command must stay unanswered
MAX_READ = 1 << 20     # bytes read from one reply at most

TARGET = os.environ.get("RESP_TARGET", "ringkv")


def connect(host, port):
    return socket.create_connection((host, port), timeout=TIMEOUT)


def send(sock, data):
    """Sends; returns False when the server closed or reset meanwhile."""
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


class Reader:
    """Reply lines from one socket, buffered so pipelined replies split."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.closed = False

    def line(self, timeout=TIMEOUT):
        """One line with its CR LF; b"" when closed first; None on timeout."""
        self.sock.settimeout(timeout)
        try:
            while b"\r\n" not in self.buf and not self.closed and len(self.buf) < MAX_READ:
                try:
                    chunk = self.sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    self.closed = True
                self.buf += chunk
        except socket.timeout:
            return None
        finally:
            self.sock.settimeout(TIMEOUT)
        end = self.buf.find(b"\r\n")
        if end < 0:
            return b""  # closed, maybe after part of a line
        line, self.buf = self.buf[:end + 2], self.buf[end + 2:]
        return line

    def closed_by_server(self, timeout=TIMEOUT):
        """True when the server closes within `timeout`, sending nothing more."""
        return self.buf == b"" and self.line(timeout) == b""


def ping_ok(host, port):
    try:
        with connect(host, port) as s:
            if not send(s, b"*1\r\n$4\r\nPING\r\n"):
                return False
            return Reader(s).line() == b"+PONG\r\n"
    except OSError:
        return False


class Case:
    """A byte string to send and what the server may do about it.

    expect: "protocol" - "-ERR Protocol error: ..." then close, or a close;
            "error"    - any "-" error reply (the connection may stay open),
                         or a close;
            "silent"   - a truncated command: no reply within QUIET seconds;
            and with "|ignored" also "+PONG" (data ends with a PING), for
            input Redis skips without a word;
            "skipped"  - only "+PONG" (data ends with a PING): the input
                         before it is skipped without a word.
    prefix: replies expected before the bad part (pipelined good commands).
    """

    def __init__(self, name, data, expect, prefix=()):
        self.name, self.data, self.expect, self.prefix = name, data, expect, prefix


def run_case(host, port, case):
    kind, _, ignored = case.expect.partition("|")
    with connect(host, port) as s:
        reader = Reader(s)
        send(s, case.data)  # a close while sending is judged by the reads
        for want in case.prefix:
            got = reader.line()
            if got != want:
                return "expected %r before the error, got %r" % (want, got)
        if kind == "silent":
            got = reader.line(QUIET)
            if got is not None:
                return "a truncated command was answered: %r" % (got,)
            return None
        got = reader.line()
        if got is None:
            return "no reply and no close within %.0fs" % TIMEOUT
        if kind == "skipped":
            if got != b"+PONG\r\n":
                return "expected the input skipped and +PONG, got %r" % (got[:200],)
            return None
        if got == b"":
            return None  # closed without a reply: allowed
        if ignored and got == b"+PONG\r\n":
            return None
        if not got.startswith(b"-"):
            return "expected an error reply or a close, got %r" % (got[:200],)
        if kind == "protocol":
            if not got.startswith(b"-ERR Protocol error: "):
                return "expected a protocol error, got %r" % (got[:200],)
            if not reader.closed_by_server():
                return "protocol error %r but the connection stayed open" % (got,)
    return None


def cases():
    ringkv = TARGET != "redis"
    return [
        Case("bad type byte in multibulk", b"*1\r\n:5\r\n", "protocol"),
        Case("bad type byte after a good argument",
             b"*2\r\n$4\r\nECHO\r\n+hi\r\n", "protocol"),
        Case("negative bulk length", b"*1\r\n$-5\r\n", "protocol"),
        Case("null bulk as an argument", b"*1\r\n$-1\r\n", "protocol"),
        # Redis skips "*<n>" for any n <= 0, and so does ringkv.
        Case("negative multibulk count", b"*-5\r\n*1\r\n$4\r\nPING\r\n", "skipped"),
        Case("non-numeric multibulk count", b"*x\r\n", "protocol"),
        Case("non-numeric bulk length", b"*1\r\n$abc\r\n", "protocol"),
        Case("empty bulk length", b"*1\r\n$\r\n", "protocol"),
        Case("bulk length with '+'", b"*1\r\n$+4\r\nPING\r\n", "protocol"),
        Case("overflowing bulk length", b"*1\r\n$99999999999999999999\r\n", "protocol"),
        Case("overflowing multibulk count", b"*99999999999999999999999\r\n", "protocol"),
        Case("2 GiB bulk header", b"*1\r\n$2147483648\r\n", "protocol"),
        Case("4 GiB bulk header", b"*1\r\n$4294967296\r\n", "protocol"),
        # Redis 7.0 has no 1024*1024 cap on the count (only INT_MAX); ringkv has.
        Case("multibulk count above 1024*1024", b"*1048577\r\n",
             "protocol" if ringkv else "silent"),
        Case("multibulk count above INT_MAX", b"*2147483648\r\n", "protocol"),
        Case("unbalanced quotes inline", b'SET "abc\r\n', "protocol"),
        Case("inline line over 64 KiB", b"GET " + b"a" * (70 * 1024), "protocol"),
        Case("good command then garbage",
             b"*1\r\n$4\r\nPING\r\n*1\r\n:5\r\n", "protocol", prefix=(b"+PONG\r\n",)),
        Case("bulk data longer than announced", b"*1\r\n$1\r\nabc\r\n", "error"),
        Case("empty command name", b"*1\r\n$0\r\n\r\n", "error"),
        Case("binary garbage inline", b"\x01\x02\xff\x7f\r\n", "error"),
        # Redis looks for an inline line's LF with strchr, so a NUL hides it
        # and Redis waits for more; ringkv refuses a NUL in an inline line at
        # once as another protocol (its native client's frames hold one).
        Case("inline with a NUL byte", b"\x01\x00\xff\r\n",
             "protocol" if ringkv else "silent"),
        Case("ringkv native frame", b"\x04\x00\x00\x00\x08\x01",
             "protocol" if ringkv else "silent"),
        Case("truncated multibulk count", b"*3", "silent"),
        Case("truncated bulk header", b"*2\r\n$3", "silent"),
        Case("truncated bulk data",
             b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc", "silent"),
        Case("truncated before final CRLF", b"*1\r\n$4\r\nPING\r", "silent"),
        Case("truncated inline", b"GET k", "silent"),
        Case("announced 1048576 arguments, then close", b"*1048576\r\n$1\r\na\r\n",
             "silent"),
        Case("announced 1 MiB bulk, then close",
             b"*2\r\n$4\r\nECHO\r\n$1048576\r\nab", "silent"),
    ]


def half_close_answers_all(host, port):
    """SET then GET, then shutdown(SHUT_WR): both replies arrive before the
    server closes (the GET waits for the SET; the FIN must not drop it)."""
    for attempt in range(5):
        key = b"halfclose:%d:%d" % (os.getpid(), attempt)
        with connect(host, port) as s:
            set_cmd = b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\n1\r\n" % (len(key), key)
            get_cmd = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key)
            if not send(s, set_cmd + get_cmd):
                return "server closed before the commands were sent"
            s.shutdown(socket.SHUT_WR)
            r = Reader(s)
            got = [r.line(), r.line(), r.line()]
            if got != [b"+OK\r\n", b"$1\r\n", b"1\r\n"]:
                return "try %d: replies %r" % (attempt, got)
            if not r.closed_by_server():
                return "try %d: not closed after the replies" % attempt
    return None


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    host, port = sys.argv[1], int(sys.argv[2])
    if TARGET not in ("ringkv", "redis"):
        print("RESP_TARGET must be ringkv or redis")
        return 2
    if not ping_ok(host, port):
        print("cannot reach a RESP server at %s:%d" % (host, port))
        return 2
    failures = 0
    all_cases = cases()
    for case in all_cases:
        try:
            problem = run_case(host, port, case)
        except OSError as e:
            problem = "socket error: %s" % e
        if problem is None and not ping_ok(host, port):
            problem = "server no longer answers PING on a new connection"
        status = "ok  " if problem is None else "FAIL"
        print("%s %s%s" % (status, case.name, "" if problem is None else ": " + problem))
        failures += problem is not None
    problem = half_close_answers_all(host, port)
    print("%s half-close answers every request%s"
          % ("ok  " if problem is None else "FAIL", "" if problem is None else ": " + problem))
    failures += problem is not None
    print("resp_malformed: %d cases, %d failed (target %s at %s:%d)"
          % (len(all_cases) + 1, failures, TARGET, host, port))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
