#!/usr/bin/python3
"""Sends many calls to org.left4me.Overlay1 on one connection, as fast as
the socket takes them, and reports what came back.

  flood_client.py [--no-reply] [--prime] COUNT METHOD:INSTANCE [METHOD:INSTANCE...]

Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS, unix:path= only) and
sends COUNT calls, cycling through the METHOD:INSTANCE pairs (no
ALLOW_INTERACTIVE_AUTHORIZATION). With --no-reply every call carries
NO_REPLY_EXPECTED, so the bus daemon's limit on pending replies never
applies: prints "SENT COUNT" once all are written, then waits for a line on
stdin and exits. Without it, prints "SENT COUNT", then "REPLY NAME" for each
reply as it comes (NAME: the error's name, or "ok"), then one JSON object:
{"replies": N, "errors": {NAME: count}}. With --prime, the first call goes
alone: "PRIMED" is printed and a line on stdin awaited before the rest
(so the test can wait until the service knows the connection). Standard
library only, on the marshaller of leaving_client.py.
"""

import json
import os
import socket
import struct
import sys

from leaving_client import message

FLAG_NO_REPLY_EXPECTED = 0x1


def connect():
    address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/run/dbus/system_bus_socket")
    assert address.startswith("unix:path="), address
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(address[len("unix:path="):].split(",")[0])
    sock.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\n")
    reply = b""
    while not reply.endswith(b"\r\n"):
        reply += sock.recv(4096)
    if not reply.startswith(b"OK "):
        sys.exit("auth failed: %r" % reply)
    sock.sendall(b"BEGIN\r\n")
    sock.sendall(message(1, "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello",
                         "org.freedesktop.DBus"))
    return sock


class Reader:
    """Whole messages from the socket: (type, reply_serial, error_name)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _need(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(1 << 16)
            if not data:
                raise EOFError("the bus closed the connection")
            self.buf += data

    def next(self):
        self._need(16)
        _, mtype, _, _, body_len, _, fields_len = struct.unpack("<cBBBIII", self.buf[:16])
        header_len = 16 + fields_len + (-(16 + fields_len) % 8)
        total = header_len + body_len
        self._need(total)
        fields = self.buf[16:16 + fields_len]
        self.buf = self.buf[total:]
        reply_serial, error_name, pos = None, None, 0
        while pos < len(fields):
            pos += -pos % 8
            code, sig_len = fields[pos], fields[pos + 1]
            sig = fields[pos + 2:pos + 2 + sig_len]
            pos += 3 + sig_len
            if sig in (b"s", b"o"):
                pos += -pos % 4
                (n,) = struct.unpack("<I", fields[pos:pos + 4])
                value = fields[pos + 4:pos + 4 + n].decode()
                pos += 5 + n
                if code == 4:
                    error_name = value
            elif sig == b"u":
                pos += -pos % 4
                (value,) = struct.unpack("<I", fields[pos:pos + 4])
                pos += 4
                if code == 5:
                    reply_serial = value
            elif sig == b"g":
                n = fields[pos]
                pos += 2 + n
            else:
                raise ValueError("unexpected header field signature %r" % sig)
        return mtype, reply_serial, error_name


def main():
    args = sys.argv[1:]
    no_reply = "--no-reply" in args
    prime = "--prime" in args
    args = [a for a in args if a not in ("--no-reply", "--prime")]
    count = int(args[0])
    calls = [a.split(":", 1) for a in args[1:]]
    sock = connect()
    reader = Reader(sock)
    while reader.next()[1] != 1:  # the Hello reply
        pass
    flags = FLAG_NO_REPLY_EXPECTED if no_reply else 0
    batch = []
    for i in range(count):
        method, instance = calls[i % len(calls)]
        batch.append(message(i + 2, "/org/left4me/Overlay1", "org.left4me.Overlay1", method,
                             "org.left4me.Overlay1", (instance,) if instance else (), flags=flags))
    if prime:
        sock.sendall(batch[0])
        batch = batch[1:]
        print("PRIMED", flush=True)
        sys.stdin.readline()
    sock.sendall(b"".join(batch))
    print("SENT %d" % count, flush=True)
    if no_reply:
        sys.stdin.readline()
        return
    errors, replies = {}, 0
    pending = set(range(2, count + 2))
    while pending:
        mtype, serial, error = reader.next()
        if serial in pending:
            pending.discard(serial)
            replies += 1
            if mtype == 3:
                errors[error] = errors.get(error, 0) + 1
            print("REPLY %s" % (error if mtype == 3 else "ok"), flush=True)
    print(json.dumps({"replies": replies, "errors": errors}), flush=True)


if __name__ == "__main__":
    main()
