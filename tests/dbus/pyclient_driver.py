#!/usr/bin/python3
"""Runs the Python client (clients/python/left4me_overlay) once, as the
user the test chose, and prints what happened as JSON (test_python_client.py).

  pyclient_driver.py mount|unmount MERGED [--timeout S] [--idempotent]
                     [--cancel-at N] [--passthrough]
      DBusOverlayMounter().mount/unmount(merged=MERGED, ...); prints
      "RESULT {ok, stdout, stderr, polls, elapsed, error}" as its last line.
      --cancel-at N: should_cancel answers true from its Nth call on.
  pyclient_driver.py status NAME | list
  pyclient_driver.py listen
      prints "READY {owner}", then one "CHANGE {instance, mounted}" line per
      MountChanged signal, until killed.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "clients", "python"))

import left4me_overlay  # noqa: E402


def error_dict(e):
    return {"class": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__],
            "name": e.name, "message": e.message, "str": str(e),
            "sent": getattr(e, "sent", None)}


def emit(tag, obj):
    print(tag + " " + json.dumps(obj), flush=True)


def operation(args):
    mounter = left4me_overlay.DBusOverlayMounter(idempotent=args.idempotent,
                                                 **({"timeout": args.timeout}
                                                    if args.timeout is not None else {}))
    out, err = [], []
    polls = [0]

    def should_cancel():
        polls[0] += 1
        return polls[0] >= args.cancel_at

    kw = dict(merged=Path(args.merged), on_stdout=out.append, on_stderr=err.append,
              passthrough=args.passthrough,
              should_cancel=should_cancel if args.cancel_at else None)
    result = {"ok": True, "error": None}
    start = time.monotonic()
    try:
        if args.verb == "mount":
            # the layer arguments are ignored: nonsense must not matter
            mounter.mount(lowerdirs="/nonexistent", upperdir=Path("/nonexistent/upper"),
                          workdir=Path("/nonexistent/work"), **kw)
        else:
            mounter.unmount(**kw)
    except left4me_overlay.OverlayError as e:
        result = {"ok": False, "error": error_dict(e)}
    result.update(stdout=out, stderr=err, polls=polls[0], elapsed=time.monotonic() - start)
    emit("RESULT", result)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("verb", choices=["mount", "unmount", "status", "list", "listen",
                                         "migrate", "migrate-dry"])
    parser.add_argument("merged", nargs="?")
    parser.add_argument("--timeout", type=float)
    parser.add_argument("--idempotent", action="store_true")
    parser.add_argument("--cancel-at", type=int, default=0)
    parser.add_argument("--passthrough", action="store_true")
    args = parser.parse_args()
    if args.verb in ("mount", "unmount"):
        operation(args)
    elif args.verb in ("status", "list", "migrate", "migrate-dry"):
        try:
            if args.verb == "status":
                value = left4me_overlay.status(args.merged)._asdict()
            elif args.verb.startswith("migrate"):
                # NAME (in the merged argument's place); the default timeout
                assert left4me_overlay.MIGRATE_TIMEOUT > 86400
                value = left4me_overlay.migrate(args.merged, args.verb == "migrate-dry")
            else:
                value = left4me_overlay.list_instances()
            emit("RESULT", {"ok": True, "value": value, "error": None})
        except left4me_overlay.OverlayError as e:
            emit("RESULT", {"ok": False, "value": None, "error": error_dict(e)})
    else:
        with left4me_overlay.watch_mount_changes() as changes:
            emit("READY", {"owner": changes.owner})
            for change in changes:
                emit("CHANGE", change._asdict())


if __name__ == "__main__":
    main()
