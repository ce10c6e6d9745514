"""One exception hierarchy for everything the client raises.

Every exception is an OverlayError carrying `.name` (the D-Bus error name,
or None for conditions the client itself detects) and `.message` (the
service's message, or the client's). A D-Bus error name the client does not
know raises OverlayError itself, with that name.
"""

from __future__ import annotations

from typing import Optional

SERVICE_ERROR_PREFIX = "org.left4me.Overlay1.Error."
DBUS_ERROR_PREFIX = "org.freedesktop.DBus.Error."


class OverlayError(Exception):
    """Base of every error of left4me_overlay.

    name: the D-Bus error name (e.g. "org.left4me.Overlay1.Error.Busy"), or
          None when the client itself gave up (Cancelled, and CallTimeout /
          ServiceUnavailable when no D-Bus error was received).
    message: the service's error message (or the client's own text).
    """

    #: D-Bus error names mapped to this class (set on the subclasses).
    dbus_names: tuple = ()

    def __init__(self, message: str, name: Optional[str] = None):
        super().__init__(message)
        self.name = name
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return "%s(name=%r, message=%r)" % (type(self).__name__, self.name, self.message)


# --- errors of the service (org.left4me.Overlay1.Error.*) ---------------------

class ServiceError(OverlayError):
    """An org.left4me.Overlay1.Error.* answer: the service refused or failed."""


class InvalidName(ServiceError):
    """The instance name is not 1-64 of [A-Za-z0-9_-], not starting with '-'."""
    dbus_names = (SERVICE_ERROR_PREFIX + "InvalidName",)


class NoSuchInstance(ServiceError):
    """No directory InstancesDir/NAME."""
    dbus_names = (SERVICE_ERROR_PREFIX + "NoSuchInstance",)


class BadConfig(ServiceError):
    """instance.env missing, unreadable, malformed or without lowerdirs."""
    dbus_names = (SERVICE_ERROR_PREFIX + "BadConfig",)


class LowerdirNotAllowed(ServiceError):
    """A lowerdir outside every allowlisted lower root."""
    dbus_names = (SERVICE_ERROR_PREFIX + "LowerdirNotAllowed",)


class UnsafePath(ServiceError):
    """A symlink, a non-directory, or a path escaping its root."""
    dbus_names = (SERVICE_ERROR_PREFIX + "UnsafePath",)


class UpperdirTainted(ServiceError):
    """The upperdir carries fuse-overlayfs xattrs or .wh. entries."""
    dbus_names = (SERVICE_ERROR_PREFIX + "UpperdirTainted",)


class AlreadyMounted(ServiceError):
    """Mount: the instance's merged directory is already a mount point."""
    dbus_names = (SERVICE_ERROR_PREFIX + "AlreadyMounted",)


class NotMounted(ServiceError):
    """Unmount: no overlay of this instance is mounted."""
    dbus_names = (SERVICE_ERROR_PREFIX + "NotMounted",)


class Busy(ServiceError):
    """The overlay is in use, or another operation holds the instance."""
    dbus_names = (SERVICE_ERROR_PREFIX + "Busy",)


class Failed(ServiceError):
    """The kernel said no (errno text and the kernel's own message)."""
    dbus_names = (SERVICE_ERROR_PREFIX + "Failed",)


# --- authorization and limits (org.freedesktop.DBus.Error.*) ------------------

class NotAuthorized(OverlayError):
    """Base of the two authorization answers."""


class AccessDenied(NotAuthorized):
    """polkit said no (or was unreachable), or the bus policy refused the call.
    For the host manager: its user is not in group left4me."""
    dbus_names = (DBUS_ERROR_PREFIX + "AccessDenied",)


class InteractiveAuthorizationRequired(NotAuthorized):
    """polkit wants a password; this client never allows prompting (a service
    has nobody to type it). For the host manager: its user is not in group
    left4me."""
    dbus_names = (DBUS_ERROR_PREFIX + "InteractiveAuthorizationRequired",)


class LimitsExceeded(OverlayError):
    """Too many calls pending for this caller, or in total: retry later."""
    dbus_names = (DBUS_ERROR_PREFIX + "LimitsExceeded",)


# --- the bus and the wait -------------------------------------------------------

class ServiceUnavailable(OverlayError):
    """No system bus, or the service is neither running nor activatable, or
    the connection broke while waiting (then the operation may still complete
    in the service)."""
    dbus_names = (DBUS_ERROR_PREFIX + "ServiceUnknown", DBUS_ERROR_PREFIX + "NameHasNoOwner",
                  DBUS_ERROR_PREFIX + "NoServer", DBUS_ERROR_PREFIX + "Disconnected",
                  DBUS_ERROR_PREFIX + "Spawn.ChildExited", DBUS_ERROR_PREFIX + "Spawn.Failed",
                  DBUS_ERROR_PREFIX + "Spawn.ServiceNotFound", DBUS_ERROR_PREFIX + "TimedOut")


class CallTimeout(OverlayError):
    """No reply within the client's timeout (name None), or the bus gave up
    waiting (org.freedesktop.DBus.Error.NoReply). The operation may still
    complete in the service: ask status()."""
    dbus_names = (DBUS_ERROR_PREFIX + "NoReply", DBUS_ERROR_PREFIX + "Timeout")


class Cancelled(OverlayError):
    """should_cancel() said yes. `sent` tells whether the call had reached
    the bus: if it had, the service was not told and the operation may still
    complete there."""

    def __init__(self, message: str, sent: bool):
        super().__init__(message, None)
        self.sent = sent


_BY_NAME = {}
for _cls in (InvalidName, NoSuchInstance, BadConfig, LowerdirNotAllowed, UnsafePath,
             UpperdirTainted, AlreadyMounted, NotMounted, Busy, Failed, AccessDenied,
             InteractiveAuthorizationRequired, LimitsExceeded, ServiceUnavailable, CallTimeout):
    for _name in _cls.dbus_names:
        _BY_NAME[_name] = _cls
del _cls, _name


def error_from_dbus(name: Optional[str], message: str) -> OverlayError:
    """The exception for a D-Bus error reply: its class from the error name,
    OverlayError itself for a name not known here (the name is kept; a name
    under org.left4me.Overlay1.Error. gives ServiceError)."""
    cls = _BY_NAME.get(name or "")
    if cls is None:
        cls = ServiceError if (name or "").startswith(SERVICE_ERROR_PREFIX) else OverlayError
    return cls(message, name)
