"""DBusOverlayMounter: the host manager's KernelOverlayFSMounter, over D-Bus
instead of `sudo -n left4me-overlay mount|umount NAME`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable, Optional

from .client import DEFAULT_POLL_INTERVAL, DEFAULT_TIMEOUT, call
from .errors import AlreadyMounted, NotMounted, OverlayError

try:  # the host manager's own base class, where it is importable
    from l4d2host.fs.base import OverlayMounter as _Base
except ImportError:
    _Base = object


class DBusOverlayMounter(_Base):
    """Mounts and unmounts instance overlays through org.left4me.Overlay1.

    Same methods and keyword-only parameters as KernelOverlayFSMounter:
    the instance name is merged's parent directory's name, and the layer
    arguments are ignored (the service re-derives them from instance.env
    and its configured layout).

    timeout: seconds to wait for the service's answer; the default (150)
        is longer than the service's own limit on an operation (120 s).
    idempotent: when true, AlreadyMounted from mount() and NotMounted from
        unmount() count as success (reported on on_stdout); off by default.
    bus: "SYSTEM" (or "SESSION", or a D-Bus address) for jeepney.
    poll_interval: seconds between two calls of should_cancel.

    Callbacks: on_stdout gets one line telling what happened; on_stderr the
    service's error message (line by line) before the exception is raised.
    passthrough=True also writes those lines to sys.stdout / sys.stderr.
    Errors raise left4me_overlay.OverlayError subclasses; a cancelled wait
    raises Cancelled, whose message says the operation may still complete
    in the service.
    """

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, idempotent: bool = False,
                 bus: str = "SYSTEM", poll_interval: float = DEFAULT_POLL_INTERVAL):
        super().__init__()
        self.timeout = timeout
        self.idempotent = idempotent
        self.bus = bus
        self.poll_interval = poll_interval

    def mount(
        self,
        *,
        lowerdirs: str,
        upperdir: Path,
        workdir: Path,
        merged: Path,
        on_stdout: Callable[[str], None] | None = None,
        on_stderr: Callable[[str], None] | None = None,
        passthrough: bool = False,
        should_cancel: Callable[[], bool] | None = None,
    ) -> None:
        del lowerdirs, upperdir, workdir
        self._run("Mount", "mounted", AlreadyMounted, merged, on_stdout, on_stderr,
                  passthrough, should_cancel)

    def unmount(
        self,
        *,
        merged: Path,
        on_stdout: Callable[[str], None] | None = None,
        on_stderr: Callable[[str], None] | None = None,
        passthrough: bool = False,
        should_cancel: Callable[[], bool] | None = None,
    ) -> None:
        self._run("Unmount", "unmounted", NotMounted, merged, on_stdout, on_stderr,
                  passthrough, should_cancel)

    def _run(self, method, done, already_cls, merged, on_stdout, on_stderr, passthrough,
             should_cancel):
        name = Path(merged).parent.name

        def out(line):
            if on_stdout is not None:
                on_stdout(line)
            if passthrough:
                print(line, file=sys.stdout, flush=True)

        def err(text):
            for line in (text.splitlines() or [text]):
                if on_stderr is not None:
                    on_stderr(line)
                if passthrough:
                    print(line, file=sys.stderr, flush=True)

        start = time.monotonic()
        try:
            call(method, "s", (name,), bus=self.bus, timeout=self.timeout,
                 should_cancel=should_cancel, poll_interval=self.poll_interval)
        except OverlayError as e:
            if self.idempotent and isinstance(e, already_cls):
                out("left4me-overlay: %s: nothing to do, already %s (%s)"
                    % (name, done, e.name.rsplit(".", 1)[-1]))
                return
            err(e.message)
            raise
        out("left4me-overlay: %s %s by %s in %.2f s"
            % (done, name, "org.left4me.Overlay1", time.monotonic() - start))
