"""The Python client (clients/python/left4me_overlay) against
left4me-overlayd on the fixture's private system bus with the real polkitd,
run as the test users: DBusOverlayMounter's mount and unmount,
every error class under its D-Bus name, the callbacks, the idempotent
option, the timeout and cancellation, status/list, and the MountChanged
listener. The client runs in pyclient_driver.py under setpriv, as the
`left4me` member, a non-member and the denied user, and reports as JSON.

OfflineTest needs no bus (ctest label unit): the error table, the exact
signatures of KernelOverlayFSMounter, and the host manager's base class.
"""

import importlib
import inspect
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import types
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "clients", "python"))

import l4m_fixture  # noqa: E402
import left4me_overlay  # noqa: E402
from l4m_base import FixtureTest  # noqa: E402
from l4m_fixture import (ACCESS_DENIED, ERROR_PREFIX, INTERACTIVE_REQUIRED, LOWER_FILE,  # noqa: E402
                         overlays_on)

DRIVER = os.path.join(HERE, "pyclient_driver.py")
FAKE_SERVICE = os.path.join(HERE, "fake_overlay_service.py")
EVENT_WAIT = 30  # seconds: an upper bound for events that come, never a pacing delay


# ------------------------------------------------------------------ no bus

class OfflineTest(unittest.TestCase):
    SERVICE_ERRORS = ["InvalidName", "NoSuchInstance", "BadConfig", "LowerdirNotAllowed",
                      "UnsafePath", "UpperdirTainted", "AlreadyMounted", "NotMounted", "Busy",
                      "Failed"]
    BUS_ERRORS = ["AccessDenied", "InteractiveAuthorizationRequired", "LimitsExceeded"]

    def test_every_error_name_has_its_class(self):
        names = [(ERROR_PREFIX + n, n, left4me_overlay.ServiceError) for n in self.SERVICE_ERRORS]
        names += [("org.freedesktop.DBus.Error." + n, n, left4me_overlay.OverlayError)
                  for n in self.BUS_ERRORS]
        for dbus_name, cls_name, parent in names:
            e = left4me_overlay.error_from_dbus(dbus_name, "the message")
            self.assertIs(type(e), getattr(left4me_overlay, cls_name), dbus_name)
            self.assertIsInstance(e, parent)
            self.assertIsInstance(e, left4me_overlay.OverlayError)
            self.assertEqual(e.name, dbus_name)
            self.assertEqual(e.message, "the message")
            self.assertEqual(str(e), "the message")
        for n in ("AccessDenied", "InteractiveAuthorizationRequired"):
            self.assertTrue(issubclass(getattr(left4me_overlay, n), left4me_overlay.NotAuthorized))
        # names no class knows keep their name
        e = left4me_overlay.error_from_dbus("org.example.Odd", "odd")
        self.assertIs(type(e), left4me_overlay.OverlayError)
        self.assertEqual((e.name, e.message), ("org.example.Odd", "odd"))
        e = left4me_overlay.error_from_dbus(ERROR_PREFIX + "Future", "new")
        self.assertIs(type(e), left4me_overlay.ServiceError)
        self.assertEqual(e.name, ERROR_PREFIX + "Future")
        self.assertIs(type(left4me_overlay.error_from_dbus(
            "org.freedesktop.DBus.Error.ServiceUnknown", "x")), left4me_overlay.ServiceUnavailable)
        self.assertIs(type(left4me_overlay.error_from_dbus(
            "org.freedesktop.DBus.Error.NoReply", "x")), left4me_overlay.CallTimeout)

    def test_signatures_are_those_of_kernel_overlayfs_mounter(self):
        # left4me/l4d2host/fs/kernel_overlayfs.py, KernelOverlayFSMounter
        kw = inspect.Parameter.KEYWORD_ONLY
        expect = {
            "mount": [("lowerdirs", inspect.Parameter.empty), ("upperdir", inspect.Parameter.empty),
                      ("workdir", inspect.Parameter.empty), ("merged", inspect.Parameter.empty),
                      ("on_stdout", None), ("on_stderr", None), ("passthrough", False),
                      ("should_cancel", None)],
            "unmount": [("merged", inspect.Parameter.empty), ("on_stdout", None),
                        ("on_stderr", None), ("passthrough", False), ("should_cancel", None)],
        }
        for method, params in expect.items():
            sig = inspect.signature(getattr(left4me_overlay.DBusOverlayMounter, method))
            got = [(p.name, p.default) for p in sig.parameters.values() if p.name != "self"]
            self.assertEqual(got, params, method)
            for p in sig.parameters.values():
                if p.name != "self":
                    self.assertEqual(p.kind, kw, (method, p.name))
        self.assertGreater(left4me_overlay.DEFAULT_TIMEOUT, 120)
        self.assertEqual(left4me_overlay.DBusOverlayMounter().timeout,
                         left4me_overlay.DEFAULT_TIMEOUT)
        self.assertFalse(left4me_overlay.DBusOverlayMounter().idempotent)

    def test_base_class_is_the_host_managers_where_importable(self):
        import left4me_overlay.mounter as mounter
        self.assertEqual(mounter.DBusOverlayMounter.__bases__, (object,))

        class OverlayMounter:  # stands in for l4d2host.fs.base.OverlayMounter
            pass
        fake = {"l4d2host": types.ModuleType("l4d2host"),
                "l4d2host.fs": types.ModuleType("l4d2host.fs"),
                "l4d2host.fs.base": types.ModuleType("l4d2host.fs.base")}
        fake["l4d2host.fs.base"].OverlayMounter = OverlayMounter
        saved = {k: sys.modules.get(k) for k in fake}
        sys.modules.update(fake)
        try:
            reloaded = importlib.reload(mounter)
            self.assertTrue(issubclass(reloaded.DBusOverlayMounter, OverlayMounter))
        finally:
            for k, v in saved.items():
                if v is None:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = v
            importlib.reload(mounter)

    def test_unreachable_bus_raises_service_unavailable(self):
        old = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/nonexistent/l4mt-no-bus"
        try:
            err = []
            with self.assertRaises(left4me_overlay.ServiceUnavailable) as cm:
                left4me_overlay.DBusOverlayMounter().unmount(merged="/x/alpha/merged",
                                                             on_stderr=err.append)
            self.assertIn("cannot connect to the system bus", cm.exception.message)
            self.assertEqual(err, [cm.exception.message])
        finally:
            if old is None:
                os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS")
            else:
                os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = old


# ------------------------------------------------------------ on the bus

class Listener:
    """pyclient_driver.py listen as a test user; ready once it printed READY
    (its match rules are in place)."""

    def __init__(self, fx, role):
        self.proc = fx.popen(role, [sys.executable, DRIVER, "listen"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, bufsize=1)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        tag, obj = self.next(EVENT_WAIT)
        if tag != "READY":
            raise AssertionError("listener did not start: %r %r %s"
                                 % (tag, obj, self.proc.stderr.read() if self.proc.poll() is not None else ""))
        self.owner = obj["owner"]

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next(self, timeout):
        """(tag, object) of the next line, or (None, None) at timeout or end."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None, None
        if line is None:
            return None, None
        tag, _, rest = line.partition(" ")
        return tag, json.loads(rest)

    def next_change(self, timeout=EVENT_WAIT):
        tag, obj = self.next(timeout)
        if tag != "CHANGE":
            raise AssertionError("expected a CHANGE line, got %r %r" % (tag, obj))
        return obj["instance"], obj["mounted"]

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stdout.close()
        self.proc.stderr.close()


class PyClientTest(FixtureTest):
    def setUp(self):
        self.assertIsNotNone(self.fx.daemon_proc, "the fixture runs no daemon")
        self.assertIsNone(self.fx.daemon_proc.poll(), "the daemon has exited")
        self._listeners = []

    def tearDown(self):
        for listener in self._listeners:
            listener.close()
        self.assertIsNone(self.fx.daemon_proc.poll(),
                          "the daemon exited:\n" + self.fx.log("daemon")[-3000:])

    def listener(self, role):
        listener = Listener(self.fx, role)
        self._listeners.append(listener)
        return listener

    def client(self, role, *args, timeout=60):
        """Runs the driver as role; returns (its RESULT object, CallResult)."""
        res = self.fx.run(role, [sys.executable, DRIVER] + [str(a) for a in args],
                          timeout=timeout)
        lines = [l for l in (res.stdout or "").splitlines() if l.startswith("RESULT ")]
        self.assertEqual(len(lines), 1, "driver output: %r" % res)
        return json.loads(lines[0][len("RESULT "):]), res

    def assertClientOk(self, result):
        self.assertTrue(result["ok"], result)
        self.assertIsNone(result["error"])

    def assertClientError(self, result, cls_name, dbus_name):
        self.assertFalse(result["ok"], result)
        err = result["error"]
        self.assertEqual(err["class"], cls_name, result)
        self.assertIn("OverlayError", err["mro"])
        self.assertEqual(err["name"], dbus_name, result)
        self.assertTrue(err["message"], result)
        self.assertEqual(err["str"], err["message"])
        return err

    # The daemon stopped (SIGSTOP): calls reach the bus and wait there, so
    # no answer can come, whatever the load.
    def stop_daemon(self):
        pid = self.fx.daemon_proc.pid
        os.kill(pid, signal.SIGSTOP)
        deadline = time.monotonic() + EVENT_WAIT
        while time.monotonic() < deadline:
            with open("/proc/%d/stat" % pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state == "T":
                return
            time.sleep(0.01)
        self.fail("the daemon did not stop")

    def continue_daemon(self):
        os.kill(self.fx.daemon_proc.pid, signal.SIGCONT)


class PyClientMemberTest(PyClientTest):
    """As the member of group left4me: allowed without a password."""

    def test_mount_status_list_unmount_with_callbacks_and_signals(self):
        fx = self.fx
        name = "py-member"
        mod1 = os.path.join(fx.root, "overlays", "mod1")
        fx.make_instance(name, lowerdirs=[mod1, fx.installation])
        listener = self.listener("member")
        self.assertRegex(listener.owner, r"^:\d+\.\d+$")  # the service's unique name

        result, _ = self.client("member", "mount", fx.merged(name))
        self.assertClientOk(result)
        self.assertMounted(name)
        self.assertEqual(len(result["stdout"]), 1, result)
        self.assertRegex(result["stdout"][0], r"^left4me-overlay: mounted %s by org\.left4me\."
                                              r"Overlay1 in \d+\.\d\d s$" % name)
        self.assertEqual(result["stderr"], [])
        self.assertEqual(listener.next_change(), (name, True))

        result, _ = self.client("member", "status", name)
        self.assertClientOk(result)
        self.assertEqual(result["value"], {"name": name, "mounted": True,
                                           "merged": fx.merged(name),
                                           "lowerdirs": [mod1, fx.installation]})
        result, _ = self.client("member", "list")
        self.assertClientOk(result)
        names = [n for n, _ in result["value"]]
        self.assertEqual(names, sorted(names))
        self.assertIn([name, True], result["value"])

        result, _ = self.client("member", "unmount", fx.merged(name))
        self.assertClientOk(result)
        self.assertNotMounted(name)
        self.assertRegex(result["stdout"][0], r"^left4me-overlay: unmounted %s by " % name)
        self.assertEqual(result["stderr"], [])
        self.assertEqual(listener.next_change(), (name, False))
        result, _ = self.client("member", "status", name)
        self.assertFalse(result["value"]["mounted"])

    def test_migrate_as_root_and_refused_to_a_member(self):
        fx = self.fx
        name = "py-migrate"
        d = fx.make_instance(name)
        whiteout = os.path.join(d, "upper", ".wh." + l4m_fixture.LOWER_FILE)
        open(whiteout, "w").close()
        result, _ = self.client("member", "migrate", name)
        self.assertClientError(result, "InteractiveAuthorizationRequired",
                               "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired")
        self.assertTrue(os.path.exists(whiteout))
        result, _ = self.client("root", "migrate-dry", name)
        self.assertClientOk(result)
        self.assertEqual(result["value"][-1], "dry run: nothing was changed")
        self.assertTrue(os.path.exists(whiteout))
        result, _ = self.client("root", "migrate", name)
        self.assertClientOk(result)
        self.assertRegex(result["value"][-1], r"^verified: the kernel overlay shows the same ")
        self.assertFalse(os.path.exists(whiteout))

    def check_error_case(self, verb, merged, cls_name, text):
        fx = self.fx
        with self.subTest(cls_name):
            result, _ = self.client("member", verb, merged)
            err = self.assertClientError(result, cls_name, ERROR_PREFIX + cls_name)
            self.assertIn("ServiceError", err["mro"])
            if text:
                self.assertIn(text, err["message"])
            # on_stderr got the service's message, on_stdout nothing
            self.assertEqual(result["stderr"], err["message"].splitlines())
            self.assertEqual(result["stdout"], [])
            # the same message gdbus gets for the same call
            name = os.path.basename(os.path.dirname(merged))
            res = fx.call("member", {"mount": "Mount", "unmount": "Unmount"}[verb], name)
            self.assertCallError(res, ERROR_PREFIX + cls_name)
            self.assertEqual(res.error_message, err["message"])

    def test_each_service_error_raises_its_class(self):
        fx = self.fx
        fx.make_instance("py-noenv", env=False)
        fx.make_instance("py-etc", lowerdirs=["/etc"])
        d = fx.make_instance("py-symlink-upper")
        os.rmdir(os.path.join(d, "upper"))
        os.symlink(os.path.join(fx.tmp, "etc"), os.path.join(d, "upper"))
        d = fx.make_instance("py-whiteout")
        open(os.path.join(d, "upper", ".wh.server.cfg"), "w").close()
        fx.make_instance("py-state")
        fx.make_instance("py-ro-upper")

        cases = [  # verb, merged, class (= the error's last word), text in the message
            ("mount", os.path.join(fx.instances, "bad name", "merged"), "InvalidName", None),
            ("unmount", fx.merged("py-missing"), "NoSuchInstance", "py-missing"),
            ("mount", fx.merged("py-noenv"), "BadConfig", "instance.env"),
            ("mount", fx.merged("py-etc"), "LowerdirNotAllowed", "/etc"),
            ("mount", fx.merged("py-symlink-upper"), "UnsafePath", "upper"),
            ("mount", fx.merged("py-whiteout"), "UpperdirTainted", ".wh.server.cfg"),
            ("unmount", fx.merged("py-state"), "NotMounted", "py-state"),
            ("mount", fx.merged("py-ro-upper"), "Failed", "read-only"),
        ]
        for verb, merged, cls_name, text in cases:
            # Failed: the kernel refuses a read-only upper. The read-only
            # mount is InstancesDir's own, for this case alone (a mount on
            # upper by itself is refused by the core: UnsafePath).
            read_only = cls_name == "Failed"
            if read_only:
                l4m_fixture.mount(fx.instances, fx.instances, None, l4m_fixture.MS_BIND)
                l4m_fixture.mount(None, fx.instances, None, l4m_fixture.MS_BIND |
                                  l4m_fixture.MS_REMOUNT | l4m_fixture.MS_RDONLY)
            try:
                self.check_error_case(verb, merged, cls_name, text)
            finally:
                if read_only:
                    l4m_fixture.umount(fx.instances)
        for name in ("py-noenv", "py-etc", "py-symlink-upper", "py-whiteout", "py-ro-upper"):
            self.assertNotMounted(name)

        # AlreadyMounted and Busy need a mounted instance
        result, _ = self.client("member", "mount", fx.merged("py-state"))
        self.assertClientOk(result)
        result, _ = self.client("member", "mount", fx.merged("py-state"))
        err = self.assertClientError(result, "AlreadyMounted", ERROR_PREFIX + "AlreadyMounted")
        self.assertEqual(result["stderr"], [err["message"]])
        self.assertMounted("py-state")  # never stacked
        with open(os.path.join(fx.merged("py-state"), LOWER_FILE)):
            result, _ = self.client("member", "unmount", fx.merged("py-state"))
            self.assertClientError(result, "Busy", ERROR_PREFIX + "Busy")
            self.assertMounted("py-state")
        result, _ = self.client("member", "unmount", fx.merged("py-state"))
        self.assertClientOk(result)
        self.assertNotMounted("py-state")

    def test_idempotent_option(self):
        fx = self.fx
        name = "py-idem"
        fx.make_instance(name)
        merged = fx.merged(name)
        self.assertClientOk(self.client("member", "mount", merged)[0])
        result, _ = self.client("member", "mount", merged, "--idempotent")
        self.assertClientOk(result)
        self.assertEqual(result["stdout"],
                         ["left4me-overlay: %s: nothing to do, already mounted (AlreadyMounted)"
                          % name])
        self.assertEqual(result["stderr"], [])
        self.assertMounted(name)
        # other errors still raise with the option
        result, _ = self.client("member", "mount", fx.merged("py-idem-missing"), "--idempotent")
        self.assertClientError(result, "NoSuchInstance", ERROR_PREFIX + "NoSuchInstance")
        self.assertClientOk(self.client("member", "unmount", merged)[0])
        result, _ = self.client("member", "unmount", merged, "--idempotent")
        self.assertClientOk(result)
        self.assertEqual(result["stdout"],
                         ["left4me-overlay: %s: nothing to do, already unmounted (NotMounted)"
                          % name])
        result, _ = self.client("member", "unmount", merged)  # off by default
        self.assertClientError(result, "NotMounted", ERROR_PREFIX + "NotMounted")
        self.assertNotMounted(name)

    def test_passthrough_also_prints(self):
        fx = self.fx
        name = "py-pass"
        fx.make_instance(name)
        result, res = self.client("member", "mount", fx.merged(name), "--passthrough")
        self.assertClientOk(result)
        self.assertIn(result["stdout"][0] + "\n", res.stdout)
        result, res = self.client("member", "mount", fx.merged(name), "--passthrough")
        err = self.assertClientError(result, "AlreadyMounted", ERROR_PREFIX + "AlreadyMounted")
        self.assertIn(err["message"] + "\n", res.stderr)
        self.root_unmount(name)

    def test_timeout_when_the_service_does_not_answer(self):
        fx = self.fx
        name = "py-timeout"
        fx.make_instance(name)
        self.stop_daemon()
        try:
            result, _ = self.client("member", "mount", fx.merged(name), "--timeout", "1")
            err = self.assertClientError(result, "CallTimeout", None)
            self.assertIn("within 1 s", err["message"])
            self.assertIn("may still complete in the service", err["message"])
            self.assertEqual(result["stderr"], [err["message"]])
            self.assertGreaterEqual(result["elapsed"], 1.0)
            self.assertNotMounted(name)  # the service has not even read the call
        finally:
            self.continue_daemon()
        self.assertServesAndAgrees(name)

    def test_cancel_while_waiting(self):
        fx = self.fx
        name = "py-cancel"
        fx.make_instance(name)
        self.stop_daemon()
        try:
            result, _ = self.client("member", "mount", fx.merged(name), "--cancel-at", "3")
            err = self.assertClientError(result, "Cancelled", None)
            self.assertTrue(err["sent"])
            # polled once before sending, then while waiting until it said yes
            self.assertEqual(result["polls"], 3)
            self.assertIn("may still complete in the service", err["message"])
            self.assertNotMounted(name)
        finally:
            self.continue_daemon()
        self.assertServesAndAgrees(name)

    def test_cancel_before_sending(self):
        fx = self.fx
        name = "py-cancel-first"
        fx.make_instance(name)
        result, _ = self.client("member", "mount", fx.merged(name), "--cancel-at", "1")
        err = self.assertClientError(result, "Cancelled", None)
        self.assertFalse(err["sent"])
        self.assertEqual(result["polls"], 1)
        self.assertIn("nothing was asked of the service", err["message"])
        self.assertNotMounted(name)

    def assertServesAndAgrees(self, name):
        """After a call the client gave up on: the service answers, and its
        status agrees with the mount table (the abandoned call either ran or
        was dropped, never half)."""
        result, _ = self.client("member", "status", name)
        self.assertClientOk(result)
        self.assertEqual(result["value"]["mounted"], bool(overlays_on(self.fx.merged(name))))
        if result["value"]["mounted"]:
            self.root_unmount(name)
        self.assertClientOk(self.client("member", "mount", self.fx.merged(name))[0])
        self.assertMounted(name)
        self.assertClientOk(self.client("member", "unmount", self.fx.merged(name))[0])
        self.assertNotMounted(name)


class PyClientSignalTest(PyClientTest):
    def emit_spoofed(self, name, mounted):
        """MountChanged(name, mounted) on the service's path and interface,
        sent by root from a connection that does not own the name."""
        self.assertCallOk(self.fx.run("root", [
            "gdbus", "emit", "--system", "--object-path", l4m_fixture.OBJECT_PATH,
            "--signal", l4m_fixture.INTERFACE + ".MountChanged",
            l4m_fixture.gvariant_string(name), "true" if mounted else "false"]))

    def test_only_the_services_signals_across_a_restart(self):
        fx = self.fx
        name = "py-signals"
        fx.make_instance(name)
        listeners = [self.listener("member"), self.listener("other")]
        first_owner = listeners[0].owner
        self.assertEqual(listeners[1].owner, first_owner)

        # a mount made by someone else (root through gdbus) is seen; a
        # MountChanged sent before it by another sender is not
        self.emit_spoofed("py-spoofed", True)
        self.assertCallOk(fx.call("root", "Mount", name))
        self.assertMounted(name)
        for listener in listeners:
            self.assertEqual(listener.next_change(), (name, True))  # first: nothing spoofed

        # the service restarts (as it does after its idle exit): a new
        # unique name, followed by the listeners
        fx.daemon_proc.terminate()
        fx.daemon_proc.wait(EVENT_WAIT)
        fx.wait_for_name_gone(l4m_fixture.BUS_NAME)
        self.emit_spoofed("py-spoofed", False)  # nobody owns the name now
        late = self.listener("member")           # started while nobody owns it
        self.assertIsNone(late.owner)
        listeners.append(late)
        fx.start_daemon()
        self.emit_spoofed("py-spoofed", True)   # not the owner either
        result, _ = self.client("member", "unmount", fx.merged(name))
        self.assertClientOk(result)
        self.assertNotMounted(name)
        for listener in listeners:
            # (a restarted service may first report what it finds mounted)
            seen = []
            while (name, False) not in seen:
                seen.append(listener.next_change())
            self.assertEqual(set(seen) - {(name, True)}, {(name, False)}, seen)
        # a fresh listener names the new owner
        self.assertNotEqual(self.listener("member").owner, first_owner)


class PyClientAuthorizationTest(PyClientTest):
    """Callers polkit does not let through. The client never sets
    ALLOW_INTERACTIVE_AUTHORIZATION, so a non-member gets
    InteractiveAuthorizationRequired at once (with the flag and no agent it
    would be AccessDenied)."""

    def test_non_member_and_denied_user(self):
        fx = self.fx
        name = "py-auth"
        fx.make_instance(name)
        for role, cls_name, dbus_name in (
                ("other", "InteractiveAuthorizationRequired", INTERACTIVE_REQUIRED),
                ("denied", "AccessDenied", ACCESS_DENIED)):
            for verb in ("mount", "unmount"):
                with self.subTest(role=role, verb=verb):
                    result, _ = self.client(role, verb, fx.merged(name))
                    err = self.assertClientError(result, cls_name, dbus_name)
                    self.assertIn("NotAuthorized", err["mro"])
                    self.assertEqual(result["stderr"], err["message"].splitlines())
                    self.assertLess(result["elapsed"], 10)  # no prompt was waited for
        self.assertNotMounted(name)

    def test_status_and_list_as_non_members(self):
        # Asserts the tree under test: without an org.left4me.overlay.status
        # action in the shipped policy, queries need no authorization; with
        # it, a non-member is refused like for mount (no password prompt).
        fx = self.fx
        name = "py-auth-status"
        fx.make_instance(name)
        with open(os.path.join(REPO, "polkit", "org.left4me.overlay.policy")) as f:
            status_gated = 'id="org.left4me.overlay.status"' in f.read()
        for role in ("other", "denied"):
            for args in (("status", name), ("list",)):
                with self.subTest(role=role, call=args[0]):
                    result, _ = self.client(role, *args)
                    if status_gated:
                        self.assertFalse(result["ok"], result)
                        self.assertIn(result["error"]["name"], (ACCESS_DENIED, INTERACTIVE_REQUIRED))
                        self.assertIn("NotAuthorized", result["error"]["mro"])
                    else:
                        self.assertClientOk(result)
        result, _ = self.client("member", "status", name)
        self.assertClientOk(result)
        self.assertFalse(result["value"]["mounted"])


class PyClientFakeServiceTest(PyClientTest):
    """Errors the real service gives only under load or not yet
    (LimitsExceeded, names no class knows), and the header flags of the
    client's calls, from a stand-in service owning the name while the real
    one is stopped."""

    def test_limits_unknown_names_and_flags(self):
        fx = self.fx
        fx.daemon_proc.terminate()
        fx.daemon_proc.wait(EVENT_WAIT)
        fx.wait_for_name_gone(l4m_fixture.BUS_NAME)
        fake = None
        try:
            # nobody owns the name (and the test bus activates nothing)
            result, _ = self.client("member", "mount", fx.merged("py-ok"))
            self.assertClientError(result, "ServiceUnavailable",
                                   "org.freedesktop.DBus.Error.ServiceUnknown")
            fake = fx.popen("root", [sys.executable, FAKE_SERVICE], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
            self.assertEqual(fake.stdout.readline().strip(), "READY")

            result, _ = self.client("member", "mount", fx.merged("py-limits"))
            err = self.assertClientError(result, "LimitsExceeded",
                                         "org.freedesktop.DBus.Error.LimitsExceeded")
            self.assertEqual(err["message"], "too many calls pending for uid")
            self.assertEqual(result["stderr"], [err["message"]])
            result, _ = self.client("member", "unmount", fx.merged("py-unknown"))
            self.assertClientError(result, "OverlayError", "org.example.Strange.Failure")
            result, _ = self.client("member", "mount", fx.merged("py-newerror"))
            err = self.assertClientError(result, "ServiceError",
                                         ERROR_PREFIX + "SomethingNew")
            result, _ = self.client("member", "mount", fx.merged("py-ok"))
            self.assertClientOk(result)

            calls = []
            for _ in range(4):
                line = fake.stdout.readline()
                self.assertTrue(line.startswith("CALL "), line)
                calls.append(json.loads(line[5:]))
            self.assertEqual([(c["member"], c["args"]) for c in calls],
                             [("Mount", ["py-limits"]), ("Unmount", ["py-unknown"]),
                              ("Mount", ["py-newerror"]), ("Mount", ["py-ok"])])
            for c in calls:
                self.assertEqual(c["flags"] & 0x4, 0, "ALLOW_INTERACTIVE_AUTHORIZATION set: %r" % c)
                self.assertEqual(c["flags"], 0, c)  # and auto-start allowed
        finally:
            if fake is not None:
                fake.terminate()
                fake.wait(EVENT_WAIT)
                fake.stdout.close()
                fake.stderr.close()
                fx.wait_for_name_gone(l4m_fixture.BUS_NAME)
            fx.start_daemon()


if __name__ == "__main__":
    unittest.main()
