#!/usr/bin/python3
"""A D-Bus client that leaves the bus while its process stays alive.

  leaving_client.py METHOD INSTANCE

Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS, unix:path= only),
calls org.left4me.Overlay1.METHOD(INSTANCE) with the
ALLOW_INTERACTIVE_AUTHORIZATION flag, prints "SENT"; on SIGUSR1 closes its
connection without waiting for the reply and prints "CLOSED"; then sleeps
until killed. gdbus and busctl cannot do this, and a killed client tells
nothing about the service (polkitd itself ends a check whose subject process
died). Standard library only: a minimal marshaller for one string argument.
"""

import os
import signal
import socket
import struct
import sys
import time

FLAG_ALLOW_INTERACTIVE_AUTHORIZATION = 0x4


def pad(buf, align):
    return buf + b"\0" * (-len(buf) % align)


def message(serial, path, interface, member, destination, args=(), flags=0):
    fields = b""
    for code, sig, value in ((1, b"o", path), (2, b"s", interface), (3, b"s", member),
                             (6, b"s", destination)) + (((8, b"g", b"s" * len(args)),) if args else ()):
        fields = pad(fields, 8)
        fields += struct.pack("<B", code) + struct.pack("<B", len(sig)) + sig + b"\0"
        raw = value.encode() if isinstance(value, str) else value
        if sig == b"g":
            fields += struct.pack("<B", len(raw)) + raw + b"\0"
        else:
            fields = pad(fields, 4)
            fields += struct.pack("<I", len(raw)) + raw + b"\0"
    body = b""
    for a in args:
        raw = a.encode()
        body = pad(body, 4) + struct.pack("<I", len(raw)) + raw + b"\0"
    header = struct.pack("<cBBBII", b"l", 1, flags, 1, len(body), serial)
    header += struct.pack("<I", len(fields)) + fields
    return pad(header, 8) + body


def main():
    method, instance = sys.argv[1], sys.argv[2]
    address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/run/dbus/system_bus_socket")
    assert address.startswith("unix:path="), address
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(address[len("unix:path="):].split(",")[0])
    sock.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\n")
    reply = sock.recv(4096)
    if not reply.startswith(b"OK "):
        sys.exit("auth failed: %r" % reply)
    sock.sendall(b"BEGIN\r\n")
    sock.sendall(message(1, "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello",
                         "org.freedesktop.DBus"))
    sock.recv(4096)  # the Hello reply (and maybe NameAcquired)
    # os.write, not print: the signal may arrive while print("SENT") is
    # still inside stdout's buffered writer, which is not reentrant.
    def leave(signum, frame):
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        os.write(1, b"CLOSED\n")

    signal.signal(signal.SIGUSR1, leave)
    sock.sendall(message(2, "/org/left4me/Overlay1", "org.left4me.Overlay1", method,
                         "org.left4me.Overlay1", (instance,),
                         flags=FLAG_ALLOW_INTERACTIVE_AUTHORIZATION))
    os.write(1, b"SENT\n")
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
