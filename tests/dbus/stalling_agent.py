#!/usr/bin/python3
"""A polkit authentication agent that never answers, and the calls it holds.

  stalling_agent.py COUNT INSTANCE

Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS, unix:path= only),
registers itself with polkitd as the authentication agent of its own process
(RegisterAuthenticationAgent, a unix-process subject), prints "REGISTERED",
then sends COUNT calls org.left4me.Overlay1.Mount(INSTANCE) with the
ALLOW_INTERACTIVE_AUTHORIZATION flag, at most 8 per connection (the service
holds no more of a connection it has not named yet) from this same process,
and prints "SENT COUNT". polkitd asks this agent to authenticate the caller for each
check it makes (BeginAuthentication): the agent never replies, so each such
check stays open until the service's timeout, the caller leaving, or polkitd
giving up. Prints "BEGIN N" as the N-th request arrives and "REPLY NAME" for
each reply to a Mount (NAME: the error's name, or "ok"). Runs until killed.
This is what any local user can do; it needs no rights. Standard library
only.
"""

import os
import select
import socket
import struct
import sys

FLAG_ALLOW_INTERACTIVE_AUTHORIZATION = 0x4
AGENT_PATH = "/org/left4me/test/StallingAgent"
PER_CONNECTION = 8


class Body:
    """Marshals a message body (little-endian), aligned from its start."""

    def __init__(self):
        self.buf = b""

    def align(self, n):
        self.buf += b"\0" * (-len(self.buf) % n)

    def u32(self, v):
        self.align(4)
        self.buf += struct.pack("<I", v)

    def i32(self, v):
        self.align(4)
        self.buf += struct.pack("<i", v)

    def u64(self, v):
        self.align(8)
        self.buf += struct.pack("<Q", v)

    def string(self, s):
        raw = s.encode()
        self.u32(len(raw))
        self.buf += raw + b"\0"

    def signature(self, s):
        raw = s.encode()
        self.buf += struct.pack("<B", len(raw)) + raw + b"\0"

    def dict_sv(self, entries):
        """a{sv} from [(key, type code, value)]."""
        self.u32(0)
        length_at = len(self.buf) - 4
        self.align(8)
        start = len(self.buf)
        for key, code, value in entries:
            self.align(8)
            self.string(key)
            self.signature(code)
            {"u": self.u32, "i": self.i32, "t": self.u64, "s": self.string}[code](value)
        self.buf = (self.buf[:length_at] + struct.pack("<I", len(self.buf) - start)
                    + self.buf[length_at + 4:])


def message(serial, path, interface, member, destination, body=b"", signature="", flags=0):
    fields = b""
    items = [(1, "o", path), (2, "s", interface), (3, "s", member), (6, "s", destination)]
    if signature:
        items.append((8, "g", signature))
    for code, sig, value in items:
        fields += b"\0" * (-len(fields) % 8)
        fields += struct.pack("<BB", code, 1) + sig.encode() + b"\0"
        raw = value.encode()
        if sig == "g":
            fields += struct.pack("<B", len(raw)) + raw + b"\0"
        else:
            fields += b"\0" * (-len(fields) % 4)
            fields += struct.pack("<I", len(raw)) + raw + b"\0"
    header = struct.pack("<cBBBII", b"l", 1, flags, 1, len(body), serial)
    header += struct.pack("<I", len(fields)) + fields
    return header + b"\0" * (-len(header) % 8) + body


class Reader:
    """Whole messages from the socket: (type, reply_serial, member, error_name)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _need(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(1 << 16)
            if not data:
                raise EOFError("the bus closed the connection")
            self.buf += data

    def has_message(self):
        """A whole message is buffered (next() will not block)."""
        if len(self.buf) < 16:
            return False
        body_len, fields_len = struct.unpack("<I", self.buf[4:8])[0], \
            struct.unpack("<I", self.buf[12:16])[0]
        return len(self.buf) >= 16 + fields_len + (-(16 + fields_len) % 8) + body_len

    def next(self):
        self._need(16)
        _, mtype, _, _, body_len, _, fields_len = struct.unpack("<cBBBIII", self.buf[:16])
        header_len = 16 + fields_len + (-(16 + fields_len) % 8)
        self._need(header_len + body_len)
        fields = self.buf[16:16 + fields_len]
        self.buf = self.buf[header_len + body_len:]
        found, pos = {}, 0
        while pos < len(fields):
            pos += -pos % 8
            code, sig_len = fields[pos], fields[pos + 1]
            sig = fields[pos + 2:pos + 2 + sig_len]
            pos += 3 + sig_len
            if sig in (b"s", b"o"):
                pos += -pos % 4
                (n,) = struct.unpack("<I", fields[pos:pos + 4])
                found[code] = fields[pos + 4:pos + 4 + n].decode()
                pos += 5 + n
            elif sig == b"u":
                pos += -pos % 4
                (found[code],) = struct.unpack("<I", fields[pos:pos + 4])
                pos += 4
            elif sig == b"g":
                pos += 2 + fields[pos]
            else:
                raise ValueError("unexpected header field signature %r" % sig)
        return mtype, found.get(5), found.get(3), found.get(4)


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


def start_time():
    """This process's start time in clock ticks, as polkit reads it."""
    with open("/proc/self/stat") as f:
        stat = f.read()
    return int(stat[stat.rindex(")") + 2:].split()[19])


def wait_reply(reader, serial):
    while True:
        mtype, reply_serial, _, error = reader.next()
        if reply_serial == serial:
            return mtype, error


def main():
    count, instance = int(sys.argv[1]), sys.argv[2]
    sock = connect()
    reader = Reader(sock)
    wait_reply(reader, 1)  # Hello

    # RegisterAuthenticationAgent((sa{sv}) subject, s locale, s object_path)
    body = Body()
    body.align(8)
    body.string("unix-process")
    body.dict_sv([("pid", "u", os.getpid()), ("start-time", "t", start_time()),
                  ("uid", "i", os.getuid())])
    body.string("C")
    body.string(AGENT_PATH)
    sock.sendall(message(2, "/org/freedesktop/PolicyKit1/Authority",
                         "org.freedesktop.PolicyKit1.Authority", "RegisterAuthenticationAgent",
                         "org.freedesktop.PolicyKit1", body.buf, "(sa{sv})ss"))
    mtype, error = wait_reply(reader, 2)
    if mtype == 3:
        sys.exit("RegisterAuthenticationAgent failed: %s" % error)
    print("REGISTERED", flush=True)

    # polkitd finds the agent by the callers' process: this one.
    callers = {}
    for first in range(0, count, PER_CONNECTION):
        caller = connect()
        callers[caller] = Reader(caller)
        wait_reply(callers[caller], 1)
        batch = b""
        for i in range(first, min(count, first + PER_CONNECTION)):
            arg = Body()
            arg.string(instance)
            batch += message(2 + i, "/org/left4me/Overlay1", "org.left4me.Overlay1", "Mount",
                             "org.left4me.Overlay1", arg.buf, "s",
                             flags=FLAG_ALLOW_INTERACTIVE_AUTHORIZATION)
        caller.sendall(batch)
    print("SENT %d" % count, flush=True)

    readers = dict(callers)
    readers[sock] = reader
    begun = 0
    while True:
        for ready in select.select(list(readers), [], [])[0]:
            mtype, reply_serial, member, error = readers[ready].next()
            while True:
                if mtype == 1 and member == "BeginAuthentication":
                    begun += 1
                    print("BEGIN %d" % begun, flush=True)  # and never answered
                elif ready in callers and reply_serial is not None and reply_serial >= 2:
                    print("REPLY %s" % (error if mtype == 3 else "ok"), flush=True)
                if not readers[ready].has_message():
                    break
                mtype, reply_serial, member, error = readers[ready].next()


if __name__ == "__main__":
    main()
