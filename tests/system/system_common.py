"""What the system tier's modules share (run_system_test.py, the scenario;
fuse_era.py, its fuse-era step): the container's users and paths, and the
step log and failure of a run."""

import time

USER = "l4m-user"       # member of group left4me (after the package made it)
OTHER = "l4m-other"     # in no special group
ADMIN = "l4m-admin"     # in group sudo: polkit's administrator on Debian
ADMIN_PASSWORD = "systest-admin-password"
LEFT4ME = "/var/lib/left4me"
CTL = "/usr/bin/left4me-overlayctl"
HELPER = "/usr/libexec/left4me/left4me-overlay"
UNIT = "left4me-overlayd.service"

T0 = time.monotonic()


def step(text):
    print("[%6.1fs] %s" % (time.monotonic() - T0, text), flush=True)


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)
