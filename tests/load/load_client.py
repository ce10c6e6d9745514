#!/usr/bin/python3
"""One load-test client: a non-root caller of org.left4me.Overlay1 on the
system bus (DBUS_SYSTEM_BUS_ADDRESS), through python3-dbus (one private
connection; subprocesses per call would be far too slow for 16,000 calls).

  load_client.py --pairs N [--warmup W] INSTANCE...

Alternates Mount and Unmount over its instances: each instance is unmounted
when this client believes it mounted, else mounted, so a refused call (a
fault test's AccessDenied) leaves the belief right and the next call on that
instance is still legal. It writes JSON lines on stdout:

  {"event": "warm", "ops": ...}    after W pairs; then waits for a line on stdin
  {"event": "done", ...}           ops, seconds, errors, mounted (its belief)

Each error is [start, end, method, instance, error name, message], times
from CLOCK_MONOTONIC (system-wide, comparable with the test's clock).
"""

import argparse
import json
import os
import sys
import time

import dbus

BUS_NAME = "org.left4me.Overlay1"
OBJECT_PATH = "/org/left4me/Overlay1"
INTERFACE = "org.left4me.Overlay1"


def emit(**record):
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("instances", nargs="+")
    args = parser.parse_args()

    bus = dbus.bus.BusConnection(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
    proxy = bus.get_object(BUS_NAME, OBJECT_PATH, introspect=False)
    iface = dbus.Interface(proxy, INTERFACE)
    mounted = {name: False for name in args.instances}
    errors = []
    ops = 0
    start = time.monotonic()
    for i in range(2 * args.pairs):
        if args.warmup and i == 2 * args.warmup:
            emit(event="warm", ops=ops)
            if not sys.stdin.readline():
                sys.exit("stdin closed before GO")
        name = args.instances[(i // 2) % len(args.instances)]
        method = "Unmount" if mounted[name] else "Mount"
        t0 = time.monotonic()
        try:
            getattr(iface, method)(name, timeout=60)
            mounted[name] = method == "Mount"
        except dbus.exceptions.DBusException as e:
            errors.append([t0, time.monotonic(), method, name, e.get_dbus_name(),
                           e.get_dbus_message()])
        ops += 1
    emit(event="done", ops=ops, seconds=time.monotonic() - start, errors=errors,
         mounted=sorted(n for n, m in mounted.items() if m))
    bus.close()


if __name__ == "__main__":
    main()
