"""Client of the left4me-overlay D-Bus service (org.left4me.Overlay1).

    from left4me_overlay import DBusOverlayMounter   # for KernelOverlayFSMounter
    from left4me_overlay import status, list_instances, watch_mount_changes

Pure Python on jeepney; talks to the system bus; never asks for a password.
"""

from .client import (BUS_NAME, DEFAULT_POLL_INTERVAL, DEFAULT_TIMEOUT, INTERFACE,
                     MIGRATE_TIMEOUT, OBJECT_PATH, InstanceStatus, MountChange,
                     MountChangedListener, list_instances, migrate, status,
                     watch_mount_changes)
from .errors import (AccessDenied, AlreadyMounted, BadConfig, Busy, CallTimeout, Cancelled,
                     Failed, InteractiveAuthorizationRequired, InvalidName, LimitsExceeded,
                     LowerdirNotAllowed, NoSuchInstance, NotAuthorized, NotMounted, OverlayError,
                     ServiceError, ServiceUnavailable, UnsafePath, UpperdirTainted,
                     error_from_dbus)
from .mounter import DBusOverlayMounter

__version__ = "0.1.0"

__all__ = [
    "DBusOverlayMounter", "status", "list_instances", "migrate", "watch_mount_changes",
    "MountChangedListener", "MountChange", "InstanceStatus", "error_from_dbus",
    "BUS_NAME", "OBJECT_PATH", "INTERFACE", "DEFAULT_TIMEOUT", "MIGRATE_TIMEOUT",
    "DEFAULT_POLL_INTERVAL",
    "OverlayError", "ServiceError", "InvalidName", "NoSuchInstance", "BadConfig",
    "LowerdirNotAllowed", "UnsafePath", "UpperdirTainted", "AlreadyMounted", "NotMounted",
    "Busy", "Failed", "NotAuthorized", "AccessDenied", "InteractiveAuthorizationRequired",
    "LimitsExceeded", "ServiceUnavailable", "CallTimeout", "Cancelled",
]
