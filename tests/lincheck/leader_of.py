#!/usr/bin/env python3
"""Prints the name of the node that leads a recorded key's shard.

Asks each node for a GET of the key with Request.no_forward set (field 8),
so a node that does not lead the key's shard answers NOT_LEADER instead of
forwarding; the first node that serves the read (OK or NOT_FOUND) leads it.
A server without forwarding skips the field as unknown and answers the same
way. Prints nothing when no node answers within the timeout. faults.sh
calls it (--leader-probe) to aim SIGSTOP and partitions at a leader.

usage: leader_of.py KEY_PREFIX NAME=HOST:PORT[,...] KEY_INDEX
(the recorder names key i PREFIX + "k" + i)
"""
import socket
import struct
import sys

OK, NOT_FOUND = 0, 1


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field_bytes(tag, data):
    return bytes([tag]) + varint(len(data)) + data


def read_varint(buf, pos):
    n = shift = 0
    while pos < len(buf) and shift < 64:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, pos
        shift += 7
    raise ValueError("bad varint")


def status_of(address, key, timeout=0.3):
    host, port = address.rsplit(":", 1)
    get = field_bytes(0x0A, key)                          # GetRequest.key = 1
    req = b"\x08\x01" + field_bytes(0x12, get) + b"\x40\x01"  # id, get, no_forward
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(struct.pack("<I", len(req)) + req)
        head = b""
        while len(head) < 4:
            chunk = s.recv(4 - len(head))
            if not chunk:
                return None
            head += chunk
        (length,) = struct.unpack("<I", head)
        if length > 1 << 20:
            return None
        body = b""
        while len(body) < length:
            chunk = s.recv(length - len(body))
            if not chunk:
                return None
            body += chunk
    pos, status = 0, OK
    while pos < len(body):
        tag, pos = read_varint(body, pos)
        if tag & 7 == 0:
            value, pos = read_varint(body, pos)
            if tag >> 3 == 2:
                status = value
        elif tag & 7 == 2:
            size, pos = read_varint(body, pos)
            pos += size
        else:
            return None
    return status


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 3
    prefix, nodes, index = sys.argv[1:]
    key = (prefix + "k" + index).encode()
    for item in nodes.split(","):
        name, address = item.split("=", 1)
        try:
            status = status_of(address, key)
        except (OSError, ValueError):
            continue
        if status in (OK, NOT_FOUND):
            print(name)
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
