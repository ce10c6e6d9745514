#!/usr/bin/python3
"""Calls org.left4me.Overlay1 COUNT times on one connection, one call at a
time (each sent once the previous one is answered).

  serial_client.py COUNT METHOD:INSTANCE [METHOD:INSTANCE...]

Cycles through the METHOD:INSTANCE pairs (no ALLOW_INTERACTIVE_AUTHORIZATION)
and prints one JSON object: {"replies": N, "errors": {NAME: count}}.
Standard library only, on the marshaller of stalling_agent.py.
"""

import json
import sys

from stalling_agent import Body, Reader, connect, message, wait_reply


def main():
    count = int(sys.argv[1])
    calls = [a.split(":", 1) for a in sys.argv[2:]]
    sock = connect()
    reader = Reader(sock)
    wait_reply(reader, 1)  # Hello
    errors, replies = {}, 0
    for i in range(count):
        method, instance = calls[i % len(calls)]
        arg = Body()
        arg.string(instance)
        sock.sendall(message(2 + i, "/org/left4me/Overlay1", "org.left4me.Overlay1", method,
                             "org.left4me.Overlay1", arg.buf, "s"))
        mtype, error = wait_reply(reader, 2 + i)
        replies += 1
        if mtype == 3:
            errors[error] = errors.get(error, 0) + 1
    print(json.dumps({"replies": replies, "errors": errors}), flush=True)


if __name__ == "__main__":
    main()
