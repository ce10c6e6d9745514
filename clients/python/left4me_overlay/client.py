"""Calls to org.left4me.Overlay1 on the system bus, with jeepney.

One connection per call: the host manager calls rarely, and a fresh
connection has no state to go stale (the service exits when idle and is
started again by the bus on the next call).
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import Callable, Iterator, List, NamedTuple, Optional, Tuple

from jeepney import DBusAddress, HeaderFields, MatchRule, MessageType, new_method_call
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

from .errors import CallTimeout, Cancelled, OverlayError, ServiceUnavailable, error_from_dbus

BUS_NAME = "org.left4me.Overlay1"
OBJECT_PATH = "/org/left4me/Overlay1"
INTERFACE = "org.left4me.Overlay1"

#: Seconds to wait for a reply. The service kills an operation that runs
#: longer than 120 s and then answers, so a caller waiting longer always
#: gets the service's answer, never a timeout of its own.
DEFAULT_TIMEOUT = 150.0
#: Seconds to wait for Migrate's reply. Migrate runs on executors of its own
#: with their own limit (MigrateTimeoutSec, at most 86400 s; 6 h by default),
#: after which the service kills the conversion and answers: waiting past
#: the largest limit it can be given, a caller always gets that answer.
MIGRATE_TIMEOUT = 86400.0 + 60.0
#: Seconds between two calls of should_cancel while waiting.
DEFAULT_POLL_INTERVAL = 0.1

SERVICE = DBusAddress(OBJECT_PATH, bus_name=BUS_NAME, interface=INTERFACE)


class InstanceStatus(NamedTuple):
    name: str
    mounted: bool
    merged: str
    lowerdirs: List[str]


class MountChange(NamedTuple):
    instance: str
    mounted: bool


def _connect(bus: str):
    try:
        return open_dbus_connection(bus=bus)
    except (OSError, TimeoutError, KeyError, ValueError) as e:
        # KeyError/ValueError: jeepney finds no usable bus address
        raise ServiceUnavailable("cannot connect to the %s bus: %s" % (bus.lower(), e)) from e


def _error_of(msg) -> OverlayError:
    name = msg.header.fields.get(HeaderFields.error_name)
    body = msg.body
    message = body[0] if body and isinstance(body[0], str) else (name or "error")
    return error_from_dbus(name, message)


def call(method: str, signature: Optional[str] = None, body: tuple = (), *,
         bus: str = "SYSTEM", timeout: float = DEFAULT_TIMEOUT,
         should_cancel: Optional[Callable[[], bool]] = None,
         poll_interval: float = DEFAULT_POLL_INTERVAL) -> tuple:
    """Calls org.left4me.Overlay1.METHOD and returns the reply's body.

    The call never carries ALLOW_INTERACTIVE_AUTHORIZATION: a caller without
    the right gets InteractiveAuthorizationRequired or AccessDenied at once.
    Raises an OverlayError subclass: the service's error, CallTimeout after
    `timeout` seconds, Cancelled when should_cancel() returns true (it is
    called before sending, then every poll_interval seconds while waiting),
    ServiceUnavailable when the bus or the service cannot be reached.
    """
    what = "%s.%s(%s)" % (INTERFACE, method, ", ".join(repr(a) for a in body))
    if should_cancel is not None and should_cancel():
        raise Cancelled("cancelled before %s was sent: nothing was asked of the service"
                        % what, sent=False)
    msg = new_method_call(SERVICE, method, signature, body)
    msg.header.flags = 0  # explicitly: no ALLOW_INTERACTIVE_AUTHORIZATION, auto-start allowed
    conn = _connect(bus)
    try:
        serial = next(conn.outgoing_serial)
        try:
            conn.send(msg, serial=serial)
        except OSError as e:
            raise ServiceUnavailable("cannot send %s: %s" % (what, e)) from e
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CallTimeout(
                    "no reply to %s within %g s; the operation may still complete in the "
                    "service: ask GetStatus" % (what, timeout))
            wait = min(left, poll_interval) if should_cancel is not None else left
            try:
                reply = conn.receive(timeout=wait)
            except TimeoutError:
                if should_cancel is not None and should_cancel():
                    raise Cancelled(
                        "cancelled while waiting for the reply to %s: the service was not "
                        "told, and the operation may still complete in the service; ask "
                        "GetStatus" % what, sent=True) from None
                continue
            except OSError as e:
                raise ServiceUnavailable(
                    "the bus connection broke while waiting for the reply to %s (%s); the "
                    "operation may still complete in the service" % (what, e)) from e
            if reply.header.fields.get(HeaderFields.reply_serial) != serial:
                continue  # NameAcquired and the like
            if reply.header.message_type is MessageType.error:
                raise _error_of(reply)
            return reply.body
    finally:
        conn.close()


def status(name: str, *, bus: str = "SYSTEM", timeout: float = DEFAULT_TIMEOUT) -> InstanceStatus:
    """GetStatus(name): whether it is mounted, its merged path, its lowerdirs."""
    mounted, merged, lowerdirs = call("GetStatus", "s", (name,), bus=bus, timeout=timeout)
    return InstanceStatus(name, bool(mounted), merged, list(lowerdirs))


def migrate(name: str, dry_run: bool = False, *, bus: str = "SYSTEM",
            timeout: float = MIGRATE_TIMEOUT,
            should_cancel: Optional[Callable[[], bool]] = None) -> List[str]:
    """Migrate(name, dry_run): converts a fuse-overlayfs-era upper (administrators
    only); returns the report, one line per change then the summary. Busy when
    as many conversions as the service runs at once are running already."""
    (lines,) = call("Migrate", "sb", (name, bool(dry_run)), bus=bus, timeout=timeout,
                    should_cancel=should_cancel)
    return list(lines)


def list_instances(*, bus: str = "SYSTEM",
                   timeout: float = DEFAULT_TIMEOUT) -> List[Tuple[str, bool]]:
    """ListInstances(): [(name, mounted)], sorted by name."""
    (pairs,) = call("ListInstances", bus=bus, timeout=timeout)
    return [(n, bool(m)) for n, m in pairs]


class MountChangedListener:
    """MountChanged signals of the service, as MountChange(instance, mounted).

        with watch_mount_changes() as changes:
            for change in changes:          # blocks; or changes.get(timeout)
                ...

    Signals are delivered from the moment the constructor returns (its match
    rules are in place by then). Only signals whose sender is the service are
    kept: the bus matches on the well-known name, and since a signal carries
    the sender's unique name, the listener also resolves the name's owner
    and follows it (NameOwnerChanged) across restarts of the service, which
    exits when idle. While no process owns the name, there are no signals.
    """

    def __init__(self, *, bus: str = "SYSTEM", timeout: float = 25.0):
        self._conn = _connect(bus)
        self._pending = deque()
        self.owner: Optional[str] = None
        self._signal_rule = MatchRule(type="signal", sender=BUS_NAME, interface=INTERFACE,
                                      member="MountChanged", path=OBJECT_PATH)
        self._owner_rule = MatchRule(type="signal", sender="org.freedesktop.DBus",
                                     interface="org.freedesktop.DBus",
                                     member="NameOwnerChanged", path="/org/freedesktop/DBus")
        self._owner_rule.add_arg_condition(0, BUS_NAME)
        # Checked here on each message: the same rule without the sender,
        # which a signal carries as the owner's unique name.
        self._local_rule = MatchRule(type="signal", interface=INTERFACE, member="MountChanged",
                                     path=OBJECT_PATH)
        try:
            self._bus_call(message_bus.AddMatch(self._signal_rule), timeout)
            self._bus_call(message_bus.AddMatch(self._owner_rule), timeout)
            try:
                (self.owner,) = self._bus_call(message_bus.GetNameOwner(BUS_NAME), timeout)
            except ServiceUnavailable:
                self.owner = None  # not running now; NameOwnerChanged tells when it is
            # Signals that came before the owner was known are dropped: they
            # were emitted before this listener was ready.
            self._pending.clear()
        except BaseException:
            self._conn.close()
            raise

    def _bus_call(self, msg, timeout):
        serial = next(self._conn.outgoing_serial)
        self._conn.send(msg, serial=serial)
        deadline = time.monotonic() + timeout
        while True:
            try:
                reply = self._conn.receive(timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise CallTimeout("the bus did not answer %s within %g s"
                                  % (msg.header.fields.get(HeaderFields.member), timeout)) from None
            if reply.header.fields.get(HeaderFields.reply_serial) == serial:
                if reply.header.message_type is MessageType.error:
                    raise _error_of(reply)
                return reply.body
            self._pending.append(reply)

    def _take(self, msg) -> Optional[MountChange]:
        if msg.header.message_type is not MessageType.signal:
            return None
        sender = msg.header.fields.get(HeaderFields.sender)
        if self._owner_rule.matches(msg) and sender == "org.freedesktop.DBus":
            _, _, new_owner = msg.body
            self.owner = new_owner or None
            return None
        if (self.owner is not None and sender == self.owner and self._local_rule.matches(msg)
                and msg.header.fields.get(HeaderFields.signature) == "sb"):
            instance, mounted = msg.body
            return MountChange(instance, bool(mounted))
        return None

    def get(self, timeout: Optional[float] = None) -> Optional[MountChange]:
        """The next change, or None when none came within timeout seconds
        (None: wait as long as it takes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            while self._pending:
                change = self._take(self._pending.popleft())
                if change is not None:
                    return change
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                msg = self._conn.receive(timeout=left)
            except TimeoutError:
                return None
            except OSError as e:
                raise ServiceUnavailable("the bus connection broke: %s" % e) from e
            change = self._take(msg)
            if change is not None:
                return change

    def __iter__(self) -> Iterator[MountChange]:
        while True:
            yield self.get()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "MountChangedListener":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def watch_mount_changes(*, bus: str = "SYSTEM") -> MountChangedListener:
    """A MountChangedListener (an iterator and a context manager)."""
    return MountChangedListener(bus=bus)
