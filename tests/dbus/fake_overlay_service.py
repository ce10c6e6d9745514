#!/usr/bin/python3
"""A stand-in for left4me-overlayd (run as root, while the real one is
stopped) that answers with errors the real service cannot be made to give on
demand, and reports the header flags of every call it gets
(test_python_client.py).

Owns org.left4me.Overlay1, prints "READY", then for each call prints
"CALL {member, args, flags}" and answers by the instance name:
  py-limits   -> org.freedesktop.DBus.Error.LimitsExceeded
  py-unknown  -> org.example.Strange.Failure (a name no client knows)
  py-newerror -> org.left4me.Overlay1.Error.SomethingNew (a future error)
  anything else -> an empty reply (Mount/Unmount)
"""

import json
import sys

from jeepney import MessageType, new_error, new_method_return, HeaderFields
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import Proxy, open_dbus_connection

ERRORS = {
    "py-limits": ("org.freedesktop.DBus.Error.LimitsExceeded", "too many calls pending for uid"),
    "py-unknown": ("org.example.Strange.Failure", "something strange"),
    "py-newerror": ("org.left4me.Overlay1.Error.SomethingNew", "a future error"),
}


def main():
    conn = open_dbus_connection(bus="SYSTEM")
    (res,) = Proxy(message_bus, conn).RequestName("org.left4me.Overlay1", 4)  # DO_NOT_QUEUE
    if res != 1:
        sys.exit("could not own org.left4me.Overlay1: %d" % res)
    print("READY", flush=True)
    while True:
        msg = conn.receive()
        h = msg.header
        if h.message_type is not MessageType.method_call:
            continue
        member = h.fields.get(HeaderFields.member)
        print("CALL " + json.dumps({"member": member, "args": list(msg.body),
                                    "flags": int(h.flags),
                                    "sender": h.fields.get(HeaderFields.sender)}), flush=True)
        name = msg.body[0] if msg.body else ""
        if name in ERRORS:
            err, text = ERRORS[name]
            conn.send(new_error(msg, err, "s", (text,)))
        else:
            conn.send(new_method_return(msg))


if __name__ == "__main__":
    main()
