"""The daemon's pipeline on the real bus and polkitd: persistent executors
(no process per call; a killed or hung executor fails only its call and is
replaced), status never queued behind mounts, caps on pending calls, a flood
by a user with no rights, and MountChanged for every change of mounted
state, whoever made it."""

import contextlib
import grp
import json
import os
import re
import signal
import subprocess
import time

import l4m_fixture
from l4m_fixture import ERROR_PREFIX, gdbus_argv, overlays_on
from l4m_base import ServiceTest, SignalListener

FLOOD_CLIENT = os.path.join(l4m_fixture.FIXTURE_DIR, "flood_client.py")
LIMITS_EXCEEDED = "org.freedesktop.DBus.Error.LimitsExceeded"
EXECUTOR = "left4me-overlay"


def executors(daemon_pid, zombies=False):
    """{pid: argv} of the daemon's executor processes (those not yet
    reaped, when zombies)."""
    return l4m_fixture.child_processes(daemon_pid, EXECUTOR, zombies)


def status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s for %d" % (field, pid))


class PipelineTest(ServiceTest):
    def start_call(self, role, method, name):
        return self.fx.popen(role, gdbus_argv(method, [name]), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)

    def finish_call(self, proc):
        out, err = proc.communicate(timeout=60)
        return l4m_fixture.CallResult(subprocess.CompletedProcess(proc.args, proc.returncode,
                                                                  out, err), 0)

    def wait_executors(self, n=6, timeout=30):
        """Waits until the daemon has n executors running and none dead (2 for
        Mount and Unmount, 1 for queries, 2 for Migrate, 1 watching)."""
        deadline = time.monotonic() + timeout
        pid = self.fx.daemon_proc.pid
        while len(executors(pid)) != n or executors(pid, zombies=True):
            self.assertLess(time.monotonic(), deadline,
                            "the daemon has %r" % executors(self.fx.daemon_proc.pid))
            time.sleep(0.01)
        return executors(self.fx.daemon_proc.pid)


class ExecutorTest(PipelineTest):
    def test_no_process_is_created_per_call(self):
        fx = self.fx
        names = ["noproc-%d" % i for i in range(4)]
        for n in names:
            fx.make_instance(n)
        before = self.wait_executors()
        watching = [p for p, argv in before.items() if "--watch" in argv]
        self.assertEqual(len(watching), 1, before)
        for _ in range(5):
            for n in names:
                self.assertCallOk(fx.call("member", "Mount", n))
                self.assertCallOk(fx.call("root", "GetStatus", n))
                self.assertCallOk(fx.call("member", "Unmount", n))
            self.assertCallOk(fx.call("root", "ListInstances"))
        self.assertEqual(executors(fx.daemon_proc.pid), before)
        for pid in before:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                self.assertEqual(f.read().split(), [], "executor %d has children" % pid)
            # Nothing of the daemon's caller chain: a fixed PATH only.
            with open("/proc/%d/environ" % pid, "rb") as f:
                environ = [e for e in f.read().split(b"\0") if e]
            self.assertEqual(len(environ), 1, environ)
            self.assertTrue(environ[0].startswith(b"PATH=/usr/local/sbin:"), environ)

    def test_each_process_keeps_only_its_roles_capabilities(self):
        """Only the Migrate executors (--migrate) may chown and chmod
        another's inodes (CAP_CHOWN, CAP_FOWNER); the daemon has nothing
        effective and keeps the executors' capabilities permitted only,
        for the executors it starts; nothing is inheritable or ambient. The daemon runs here as full root, so what
        each process holds is what it chose to keep."""
        operations = (1 << 1) | (1 << 18) | (1 << 19) | (1 << 21)
        migrate = operations | (1 << 0) | (1 << 3)
        expected = {"daemon": (0, migrate, 0, 0),
                    "executor": (operations, operations, 0, 0),
                    "watching executor": (operations, operations, 0, 0),
                    "migrate executor": (migrate, migrate, 0, 0)}

        def caps(pid):
            with open("/proc/%d/status" % pid) as f:
                fields = dict(re.findall(r"^(Cap\w+):\s*([0-9a-f]+)$", f.read(), re.M))
            return tuple(int(fields[k], 16) for k in ("CapEff", "CapPrm", "CapInh", "CapAmb"))

        def roles():
            daemon = self.fx.daemon_proc.pid
            found = [("daemon", caps(daemon))]
            for pid, argv in executors(daemon).items():
                role = ("migrate executor" if "--migrate" in argv else
                        "watching executor" if "--watch" in argv else "executor")
                found.append((role, caps(pid)))
            return sorted(found)

        with open("/proc/self/status") as f:
            own = int(re.search(r"^CapEff:\s*([0-9a-f]+)$", f.read(), re.M).group(1), 16)
        self.assertEqual(own & migrate, migrate, "the test must run with these capabilities")
        self.wait_executors()
        want = sorted([("daemon", expected["daemon"])] +
                      [("executor", expected["executor"])] * 3 +
                      [("watching executor", expected["watching executor"])] +
                      [("migrate executor", expected["migrate executor"])] * 2)
        # Each executor narrows its sets first thing after its exec: wait
        # for all six to have done it.
        deadline = time.monotonic() + 30
        while roles() != want and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(roles(), want)
        # ... and they stay so after calls of every kind.
        name = "caps-calls"
        self.fx.make_instance(name)
        self.assertCallOk(self.fx.call("member", "Mount", name))
        self.assertCallOk(self.fx.call("root", "GetStatus", name))
        self.assertCallOk(self.fx.call("member", "Unmount", name))
        self.assertEqual(roles(), want)

    def test_killed_executor_fails_only_its_call_and_is_replaced(self):
        fx = self.fx
        name = "killed-exec"
        fx.make_instance(name)
        fx.make_instance("killed-other")
        before = self.wait_executors()
        need = {name: fx.authorized_count("mount", name) + 1}
        with fx.hold_lock(name):
            proc = self.start_call("member", "Mount", name)
            fx.wait_authorized("mount", need)
            # The operation's executor waits for the lock: kill every
            # executor but the watcher (an idle one is simply replaced).
            victims = [p for p, argv in before.items() if "--watch" not in argv]
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
        res = self.finish_call(proc)
        self.assertCallError(res, ERROR_PREFIX + "Failed")
        m = re.search(r"instance %s: executor pid (\d+) was killed by signal SIGKILL during mount"
                      % name, res.error_message)
        self.assertIsNotNone(m, res.error_message)
        self.assertIn(int(m.group(1)), victims)
        self.assertNotMounted(name)
        # Replaced (after a short delay), and everything works again.
        self.assertCallOk(fx.call("member", "Mount", name))
        self.assertMounted(name)
        self.assertCallOk(fx.call("member", "Mount", "killed-other"))
        self.assertCallOk(fx.call("root", "GetStatus", name))
        after = self.wait_executors()
        self.assertEqual(set(after) & set(victims), set())
        self.root_unmount(name)
        self.root_unmount("killed-other")

    def test_hung_executor_is_killed_after_the_operation_timeout(self):
        fx = self.fx
        name = "hung-exec"
        fx.make_instance(name)
        fx.write_config(extra="OperationTimeoutSec=1\n")
        fx.restart_daemon()
        try:
            need = {name: fx.authorized_count("mount", name) + 1}
            with fx.hold_lock(name):
                # The lock wait (10 s) outlasts the timeout: a hang.
                res = fx.call("member", "Mount", name)
            self.assertCallError(res, ERROR_PREFIX + "Failed")
            self.assertRegex(res.error_message,
                             r"^instance %s: executor pid \d+ did not finish within 1000 ms and "
                             r"was killed by signal SIGKILL during mount$" % name)
            fx.wait_authorized("mount", need)
            self.assertCallOk(fx.call("member", "Mount", name))
            self.assertMounted(name)
            self.root_unmount(name)
        finally:
            fx.write_config()
            fx.restart_daemon()

    def test_status_is_never_queued_behind_mounts(self):
        fx = self.fx
        held = ["busy-a", "busy-b"]
        for n in held + ["free"]:
            fx.make_instance(n)
        with fx.hold_lock(held[0]), fx.hold_lock(held[1]):
            need = {n: fx.authorized_count("mount", n) + 1 for n in held}
            procs = [self.start_call("member", "Mount", n) for n in held]
            fx.wait_authorized("mount", need)
            # Both operation executors wait for a lock now.
            for _ in range(3):
                self.assertCallOk(fx.call("member", "GetStatus", "free"))
                self.assertCallOk(fx.call("member", "ListInstances"))
            self.assertEqual([p.poll() for p in procs], [None, None],
                             "a held mount finished: the test proves nothing")
        for p in procs:
            self.assertCallOk(self.finish_call(p))
        for n in held:
            self.root_unmount(n)


class LimitsTest(PipelineTest):
    def flood(self, role, count, calls, no_reply=False, prime=False, settle=False,
              messages=False):
        argv = ["/usr/bin/python3", FLOOD_CLIENT] + (["--no-reply"] if no_reply else []) + \
               (["--prime"] if prime else []) + (["--settle"] if settle else []) + \
               (["--messages"] if messages else []) + [str(count)] + \
               ["%s:%s" % c for c in calls]
        return self.fx.popen(role, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)

    def read_replies(self, proc, name, n):
        """Reads the client's lines until n replies named name came."""
        seen = 0
        while seen < n:
            line = proc.stdout.readline()
            if not line:
                self.fail("flood client ended: %s" % proc.stderr.read())
            seen += line.strip() == "REPLY " + name

    def flood_result(self, proc):
        # Through the file objects, not communicate(): read_replies() read
        # stdout with readline(), whose buffer may already hold the last
        # line, and communicate() reads the descriptor past that buffer.
        out = proc.stdout.read()
        err = proc.stderr.read()
        proc.wait(120)
        self.assertEqual(proc.returncode, 0, err)
        return json.loads(out.strip().splitlines()[-1])

    def test_calls_over_the_caps_are_refused_at_once(self):
        fx = self.fx
        name = "capped"
        fx.make_instance(name)
        per_user = 32  # MaxPendingCallsPerUser's default
        before = fx.authorized_count("mount", name)
        with fx.hold_lock(name):
            # Every admitted Mount waits for the lock, so exactly the cap's
            # worth stays pending. The first call goes alone: once it is
            # authorized the service knows the connection's uid, and the
            # rest is charged to it as it arrives: the excess refused at once.
            one = self.flood("member", 50, [("Mount", name)], prime=True)
            self.assertEqual(one.stdout.readline().strip(), "PRIMED")
            fx.wait_authorized("mount", {name: before + 1})
            one.stdin.write("\n")
            one.stdin.flush()
            self.read_replies(one, LIMITS_EXCEEDED, 50 - per_user)
            fx.wait_authorized("mount", {name: before + per_user})
            # Another connection of the same user: refused once the bus
            # daemon has named its caller (or, beyond the few calls a fresh
            # connection may have waiting for that, at once).
            two = self.flood("member", 10, [("Mount", name)])
            self.read_replies(two, LIMITS_EXCEEDED, 10)
            # Root is held only to the total.
            self.assertCallOk(fx.call("root", "GetStatus", name))
        first = self.flood_result(one)
        second = self.flood_result(two)
        print("\ncaps: first connection %r, second %r" % (first, second))
        self.assertEqual(first["replies"], 50)
        self.assertEqual(first["errors"], {LIMITS_EXCEEDED: 50 - per_user,
                                           ERROR_PREFIX + "AlreadyMounted": per_user - 1})
        self.assertEqual(second, {"replies": 10, "errors": {LIMITS_EXCEEDED: 10}})
        self.assertMounted(name)
        self.root_unmount(name)

    def test_a_burst_on_a_known_connection_is_charged_to_its_uid(self):
        fx = self.fx
        name = "burst"
        fx.make_instance(name)
        fx.make_instance("burst-known")
        per_user = 32  # MaxPendingCallsPerUser's default
        burst = 50
        uid = fx.uid("member")
        before = fx.authorized_count("mount", name)
        with fx.hold_lock(name):
            # A GetStatus first, answered before anything else is sent: the
            # service knows the connection's uid and has nothing of it
            # pending. Then the burst: every call is charged to that uid as
            # it arrives, the cap's worth admitted (each then waits for the
            # lock) and the rest refused for the uid's cap, none as a call
            # of a connection the bus has yet to name (a budget of only
            # CallLimits::kUnnamedPerConnection).
            proc = self.flood("member", burst + 1,
                              [("GetStatus", "burst-known")] + [("Mount", name)] * burst,
                              settle=True, messages=True)
            self.read_replies(proc, LIMITS_EXCEEDED, burst - per_user)
            fx.wait_authorized("mount", {name: before + per_user})
        result = self.flood_result(proc)
        print("\nburst on a known connection: %r" % result)
        self.assertEqual(result["replies"], burst + 1)
        self.assertEqual(result["errors"], {LIMITS_EXCEEDED: burst - per_user,
                                            ERROR_PREFIX + "AlreadyMounted": per_user - 1})
        self.assertEqual(result["messages"][LIMITS_EXCEEDED],
                         {"Too many calls: uid %d has %d calls pending, the limit per user "
                          "(MaxPendingCallsPerUser)" % (uid, per_user): burst - per_user})
        self.assertMounted(name)
        self.root_unmount(name)

    def test_a_flood_on_many_connections_leaves_room_for_others(self):
        fx = self.fx
        name = "flooded-many"
        fx.make_instance(name)
        floods = [self.flood("other", 500, [("GetStatus", name), ("Mount", name)], no_reply=True)
                  for _ in range(16)]
        try:
            for f in floods:
                line = f.stdout.readline().strip()
                if line != "SENT 500":
                    self.fail("flood client printed %r: %s" % (line, f.communicate()[1]))
            # Members on fresh connections, while the flood is being read.
            for _ in range(5):
                self.assertCallOk(fx.call("member", "GetStatus", name))
            self.assertCallOk(fx.call("member", "Mount", name))
        finally:
            for f in floods:
                f.stdin.write("\n")
                f.stdin.flush()
                f.communicate(timeout=60)
        self.assertIsNone(fx.daemon_proc.poll())
        self.root_unmount(name)

    def test_flood_by_a_user_with_no_rights(self):
        fx = self.fx
        name = "flooded"
        fx.make_instance(name)
        pid = fx.daemon_proc.pid
        # Warm-up: the daemon's caches and arenas as after some use.
        self.assertCallOk(fx.call("member", "Mount", name))
        self.assertCallOk(fx.call("member", "Unmount", name))
        hwm_before = status_kib(pid, "VmHWM")
        rss_before = status_kib(pid, "VmRSS")
        floods = [self.flood("other", 4000, [("GetStatus", name), ("Mount", name)], no_reply=True)
                  for _ in range(2)]
        for f in floods:
            line = f.stdout.readline().strip()
            if line != "SENT 4000":
                f.kill()
                self.fail("flood client printed %r: %s" % (line, f.communicate()[1]))
        t0 = time.monotonic()
        res = fx.call("member", "Mount", name)
        latency = time.monotonic() - t0
        self.assertCallOk(res)
        self.assertMounted(name)
        for f in floods:
            f.stdin.write("\n")
            f.stdin.flush()
            f.communicate(timeout=60)
        # Answered after every flood call was read: the daemon lives.
        self.assertCallOk(fx.call("root", "ListInstances"))
        hwm_after = status_kib(pid, "VmHWM")
        print("\nflood: 8,000 no-reply calls by a user with no rights; the member's Mount "
              "answered in %.3f s; daemon VmHWM %d -> %d KiB (%+d), VmRSS %d -> %d KiB"
              % (latency, hwm_before, hwm_after, hwm_after - hwm_before, rss_before,
                 status_kib(pid, "VmRSS")))
        self.assertIsNone(fx.daemon_proc.poll())
        # The bound is the plain build's (the one shipped); a sanitizer
        # build runs this test for its reports, not for its memory.
        if not l4m_fixture.sanitizer_build(pid):
            self.assertLess(hwm_after - hwm_before, 16 * 1024,
                            "the flood grew the daemon by 16 MiB")
        self.root_unmount(name)


class LiveStateTest(PipelineTest):
    def signals_for(self, listener, name):
        return [m.group(1) == "true" for line in listener.seen
                for m in [re.search(r"org\.left4me\.Overlay1\.MountChanged \('%s', (true|false)\)"
                                    % re.escape(name), line)] if m]

    def wait_signal_count(self, listener, name, n, timeout=20):
        """Waits until n MountChanged signals of name were seen."""
        deadline = time.monotonic() + timeout
        while len(self.signals_for(listener, name)) < n:
            self.assertLess(time.monotonic(), deadline, listener.seen[-5:])
            listener.wait_for(r"(?!)", 0.1)  # matches nothing: reads what came meanwhile

    def wait_signal(self, listener, name, mounted):
        self.assertTrue(listener.wait_for(
            r"org\.left4me\.Overlay1\.MountChanged \('%s', %s\)"
            % (re.escape(name), "true" if mounted else "false"), 20), listener.seen[-5:])

    def test_every_change_is_signalled_once_whoever_made_it(self):
        fx = self.fx
        name = "live"
        fx.make_instance(name)
        fx.make_instance("live-marker")
        listener = SignalListener(fx, "other")
        try:
            self.assertCallOk(fx.call("member", "Mount", name))
            self.wait_signal(listener, name, True)
            # umount(8), behind the service's back.
            subprocess.run(["umount", fx.merged(name)], check=True)
            self.wait_signal(listener, name, False)
            # The sudo drop-in, also behind its back.
            subprocess.run([fx.executor_path, "--config", fx.config_path, "mount", name],
                           check=True, env=fx.client_env())
            # Seen before the service unmounts it again: a mount and an
            # unmount between two reads of the table would look unchanged.
            self.wait_signal_count(listener, name, 3)
            self.assertCallError(fx.call("member", "Mount", name),
                                 ERROR_PREFIX + "AlreadyMounted")
            self.assertCallOk(fx.call("member", "Unmount", name))
            # A last change elsewhere: once its signal is in, every earlier
            # one is too.
            self.assertCallOk(fx.call("member", "Mount", "live-marker"))
            self.wait_signal(listener, "live-marker", True)
            self.assertEqual(self.signals_for(listener, name), [True, False, True, False])
        finally:
            listener.close()
        self.root_unmount("live-marker")

    def test_changes_while_the_watcher_is_held_are_all_signalled(self):
        """The watching executor held (SIGSTOP) while instances change
        behind the service's back (the drop-in), with more mount events
        between them than fanotify's queue holds: resumed, the watcher
        lists the table again, the daemon logs the overflow, and every
        change is signalled once, in order. With the POLLPRI fallback
        (kernels before 6.15) there is no queue: the same changes, seen by
        one listing."""
        fx = self.fx
        a, b, c = "held-a", "held-b", "held-c"
        for name in (a, b, c):
            fx.make_instance(name)
        # fanotify mount events from Linux 6.15 (test_owner.py checks the
        # daemon says so).
        version = tuple(int(x) for x in re.match(r"(\d+)\.(\d+)", os.uname().release).groups())
        fanotify = version >= (6, 15)
        listener = SignalListener(fx, "other")
        watcher = None
        try:
            self.assertCallOk(fx.call("member", "Mount", a))
            self.assertCallOk(fx.call("member", "Mount", b))
            self.wait_signal(listener, b, True)
            watching = [p for p, argv in self.wait_executors().items() if "--watch" in argv]
            self.assertEqual(len(watching), 1)
            watcher = watching[0]
            os.kill(watcher, signal.SIGSTOP)
            deadline = time.monotonic() + 60
            while not self.stopped(watcher):
                self.assertLess(time.monotonic(), deadline, "the watcher did not stop")
                time.sleep(0.01)
            dropin = [fx.executor_path, "--config", fx.config_path]
            # Queued: a's unmount. Then more events than the queue holds
            # (a bind mount moved back and forth, one event per move), and
            # changes the kernel drops: b unmounted, a and c mounted.
            subprocess.run(dropin + ["umount", a], check=True, env=fx.client_env())
            with open("/proc/sys/fs/fanotify/max_queued_events") as f:
                max_events = int(f.read())
            here, there = os.path.join(fx.tmp, "flood-a"), os.path.join(fx.tmp, "flood-b")
            os.mkdir(here)
            os.mkdir(there)
            l4m_fixture.mount(here, here, None, l4m_fixture.MS_BIND)
            self.assertEqual(l4m_fixture.move_back_and_forth(here, there, max_events + 100), 0)
            l4m_fixture.umount(here)
            subprocess.run(dropin + ["umount", b], check=True, env=fx.client_env())
            subprocess.run(dropin + ["mount", a], check=True, env=fx.client_env())
            subprocess.run(dropin + ["mount", c], check=True, env=fx.client_env())
            os.kill(watcher, signal.SIGCONT)
            watcher = None
            self.wait_signal_count(listener, c, 1)
            changes = [(m.group(1), m.group(2) == "true") for line in listener.seen
                       for m in [re.search(r"MountChanged \('(held-[abc])', (true|false)\)",
                                           line)] if m]
            # Each instance's changes once, in order.
            for name, seen in ((a, [True, False, True]), (b, [True, False]), (c, [True])):
                self.assertEqual([m for n, m in changes if n == name], seen, changes)
            if fanotify:
                # a's unmount came as an event, the rest from the listing.
                self.assertEqual(changes, [(a, True), (b, True), (a, False), (b, False),
                                           (a, True), (c, True)])
            overflow = "mount watcher: the fanotify mount event queue overflowed after %d events" \
                % max_events
            if fanotify:
                self.assertIn(overflow, fx.log("daemon"))
            else:
                self.assertNotIn("overflowed", fx.log("daemon"))
        finally:
            if watcher is not None:
                os.kill(watcher, signal.SIGCONT)
            listener.close()
        for name, mounted in ((a, True), (b, False), (c, True)):
            res = fx.call("member", "GetStatus", name)
            self.assertCallOk(res)
            self.assertTrue(res.stdout.startswith("(%s," % ("true" if mounted else "false")),
                            res.stdout)
        self.root_unmount(a)
        self.root_unmount(c)

    @staticmethod
    def stopped(pid):
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2] == "T"

    def test_signals_from_anyone_but_the_service_are_refused_by_the_bus(self):
        fx = self.fx
        fx.make_instance("spoof-marker")
        listener = SignalListener(fx, "member")
        try:
            for role in ("member", "other"):
                # gdbus emit cannot tell: the bus drops a refused signal.
                fx.run(role, ["gdbus", "emit", "--system", "--object-path",
                              l4m_fixture.OBJECT_PATH, "--signal",
                              l4m_fixture.INTERFACE + ".MountChanged", "'spoofed'", "true"])
            self.assertCallOk(fx.call("member", "Mount", "spoof-marker"))
            self.wait_signal(listener, "spoof-marker", True)
            self.assertEqual(self.signals_for(listener, "spoofed"), [])
            self.assertNotIn("spoofed", "\n".join(listener.seen))
        finally:
            listener.close()
        self.root_unmount("spoof-marker")

    def test_start_up_warnings_are_logged(self):
        # The fixture's HostPid is the test's own process, not 1.
        log = self.fx.log("daemon")
        self.assertRegex(log, r"warning: HostPid is %d" % os.getpid())


class MigrateTest(PipelineTest):
    """Migrate through the service: administrators only, a dry run that
    changes nothing, a real run after which Mount succeeds."""

    def fuse_era_instance(self, name):
        fx = self.fx
        d = fx.make_instance(name)
        upper = os.path.join(d, "upper")
        # fuse-overlayfs' fallback whiteout for a file of the lower, and an
        # opaque directory it marked the only way it could.
        open(os.path.join(upper, ".wh." + l4m_fixture.LOWER_FILE), "w").close()
        os.chmod(os.path.join(upper, ".wh." + l4m_fixture.LOWER_FILE), 0o700)
        os.mkdir(os.path.join(upper, "cfg"))
        os.setxattr(os.path.join(upper, "cfg"), "user.fuseoverlayfs.opaque", b"y")
        open(os.path.join(upper, "cfg", ".wh..wh..opq"), "w").close()
        with open(os.path.join(upper, "cfg", "server.cfg"), "w") as f:
            f.write("hostname fuse-era\n")
        return d

    def snapshot(self, d):
        out = []
        for root, dirs, files in os.walk(os.path.join(d, "upper")):
            for n in sorted(dirs + files):
                p = os.path.join(root, n)
                st = os.lstat(p)
                out.append((os.path.relpath(p, d), st.st_mode, st.st_rdev,
                            sorted(os.listxattr(p, follow_symlinks=False))))
        return sorted(out)

    def test_members_may_not_migrate(self):
        fx = self.fx
        name = "mig-denied"
        d = self.fuse_era_instance(name)
        before = self.snapshot(d)
        res = fx.call("member", "Migrate", name, b"false")
        self.assertCallError(res, l4m_fixture.INTERACTIVE_REQUIRED)
        self.assertCallError(fx.call("denied", "Migrate", name, b"true"), l4m_fixture.ACCESS_DENIED)
        self.assertEqual(self.snapshot(d), before)

    def test_dry_run_then_migration_then_mount(self):
        fx = self.fx
        name = "mig-root"
        d = self.fuse_era_instance(name)
        self.assertCallError(fx.call("member", "Mount", name), ERROR_PREFIX + "UpperdirTainted")
        before = self.snapshot(d)
        res = fx.busctl("root", "Migrate", "sb", name, "true", json_out=True)
        self.assertCallOk(res)
        dry = json.loads(res.stdout)["data"][0]
        self.assertTrue(any(l4m_fixture.LOWER_FILE in line for line in dry), dry)
        self.assertEqual(self.snapshot(d), before, "the dry run changed the upper")
        res = fx.busctl("root", "Migrate", "sb", name, "false", json_out=True)
        self.assertCallOk(res)
        done = json.loads(res.stdout)["data"][0]
        self.assertGreater(len(done), 1, done)
        self.assertRegex(fx.log("daemon"), r"migrated %s: " % name)
        # The whiteout is the kernel's now: the lower's file is hidden.
        st = os.lstat(os.path.join(d, "upper", l4m_fixture.LOWER_FILE))
        self.assertEqual((os.major(st.st_rdev), os.minor(st.st_rdev)), (0, 0))
        self.assertCallOk(fx.call("member", "Mount", name))
        self.assertFalse(os.path.exists(os.path.join(fx.merged(name), l4m_fixture.LOWER_FILE)))
        with open(os.path.join(fx.merged(name), "cfg", "server.cfg")) as f:
            self.assertEqual(f.read(), "hostname fuse-era\n")
        # Mounted: a second migration is refused and changes nothing.
        self.assertCallError(fx.call("root", "Migrate", name, b"false"),
                             ERROR_PREFIX + "AlreadyMounted")
        self.root_unmount(name)

    def test_an_upper_needing_a_set_id_chmod_is_refused_and_unchanged(self):
        """The service's Migrate executor runs under RestrictSUIDSGID=yes (a
        chmod carrying S_ISUID/S_ISGID fails with EPERM): a root-written
        security.* override asking for set-uid on a file and set-gid on a
        directory is refused before anything changes, dry run or not, with
        the drop-in to use instead."""
        fx = self.fx
        name = "mig-setid"
        d = self.fuse_era_instance(name)
        upper = os.path.join(d, "upper")
        with open(os.path.join(upper, "suid"), "w") as f:
            f.write("root asked for set-uid\n")
        os.chmod(os.path.join(upper, "suid"), 0o644)
        os.setxattr(os.path.join(upper, "suid"), "security.fuseoverlayfs.override_stat",
                    b"0:0:104755")
        os.mkdir(os.path.join(upper, "sgid"), 0o755)
        os.setxattr(os.path.join(upper, "sgid"), "security.fuseoverlayfs.override_stat",
                    b"0:0:42775")

        def state():
            out = []
            for root, dirs, files in os.walk(upper):
                for n in sorted(dirs + files):
                    st = os.lstat(os.path.join(root, n))
                    out.append((os.path.relpath(os.path.join(root, n), d), st.st_uid, st.st_gid))
            return (self.snapshot(d), sorted(out),
                    sorted(os.listxattr(upper, follow_symlinks=False)))

        before = state()
        for dry_run in (b"true", b"false"):
            res = fx.call("root", "Migrate", name, dry_run)
            self.assertCallError(res, ERROR_PREFIX + "UpperdirTainted",
                                 "instance %s: migrate: " % name)
            self.assertRegex(res.error_message,
                             r"/upper/(suid|sgid) carries security.fuseoverlayfs.override_stat "
                             r"'0:0:(104755|42775)', whose conversion needs a chmod to (4755|2775)")
            self.assertIn("the service sets no set-uid or set-gid bit", res.error_message)
            self.assertIn("sudo left4me-overlay migrate %s" % name, res.error_message)
            self.assertEqual(state(), before, "a refused Migrate changed the upper")
        # Still fuse-era: the taint scan refuses a Mount.
        self.assertCallError(fx.call("member", "Mount", name), ERROR_PREFIX + "UpperdirTainted")

    def executor_waiting_for(self, name, timeout=30):
        """The pid of the daemon's executor that has instance name's lock
        file open (waiting for it while the test holds it)."""
        lock = os.path.join(self.fx.tmp, "locks", name + ".lock")
        deadline = time.monotonic() + timeout
        while True:
            for pid in executors(self.fx.daemon_proc.pid):
                try:
                    fds = os.listdir("/proc/%d/fd" % pid)
                    if any(os.readlink("/proc/%d/fd/%s" % (pid, fd)) == lock for fd in fds):
                        return pid
                except OSError:
                    continue
            self.assertLess(time.monotonic(), deadline, "no executor opened %s" % lock)
            time.sleep(0.01)

    def test_migrations_hold_no_executor_of_mount_unmount_or_status(self):
        """Two migrations as long as can be (their executors stopped in the
        middle, SIGSTOP), and a third refused: a member's Mount and Unmount
        of another instance, GetStatus and ListInstances are served all the
        while. Sharing the Mount/Unmount executors (two), the Mount would
        wait behind the migrations for good."""
        fx = self.fx
        names = ["mig-long-a", "mig-long-b"]
        for n in names:
            self.fuse_era_instance(n)
        self.fuse_era_instance("mig-third")
        fx.make_instance("beside")
        stopped = []
        procs = []
        try:
            with contextlib.ExitStack() as locks:
                for n in names:
                    locks.enter_context(fx.hold_lock(n))
                procs = [fx.popen("root", gdbus_argv("Migrate", [n, b"false"]),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                         for n in names]
                # Each migration is in its executor, in the middle of its
                # run (at the instance lock): stopped there.
                for n in names:
                    pid = self.executor_waiting_for(n)
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
            self.assertCallOk(fx.call("member", "Mount", "beside"))
            self.assertMounted("beside")
            self.assertCallOk(fx.call("member", "GetStatus", "beside"))
            self.assertCallOk(fx.call("member", "ListInstances"))
            self.assertCallOk(fx.call("member", "Unmount", "beside"))
            self.assertNotMounted("beside")
            third = fx.call("root", "Migrate", "mig-third", b"false")
            self.assertCallError(third, ERROR_PREFIX + "Busy",
                                 "instance mig-third: migrate: 2 migrations are running already")
            for p in procs:
                self.assertIsNone(p.poll(), "a migration answered while its executor was stopped")
        finally:
            for pid in stopped:
                os.kill(pid, signal.SIGCONT)
        for p, n in zip(procs, names):
            res = self.finish_call(p)
            self.assertCallOk(res)
            st = os.lstat(os.path.join(fx.instances, n, "upper", l4m_fixture.LOWER_FILE))
            self.assertEqual((os.major(st.st_rdev), os.minor(st.st_rdev)), (0, 0))
        # A slot is free again.
        self.assertCallOk(fx.call("root", "Migrate", "mig-third", b"true"))

    def owners_upper(self, name):
        """An instance whose upper is the member's, as a real instance's is
        its user's."""
        d = self.fx.make_instance(name)
        upper = os.path.join(d, "upper")
        os.chown(upper, self.fx.uid("member"), self.fx.users["member"][2])
        return upper

    def test_hostile_uppers_made_by_their_owner(self):
        """What the upper's owner (the member) can do to it: a sparse
        terabyte and a path past PATH_MAX migrate through the service; a hard
        link to a root-owned file it may write, with an override asking for
        it, is left alone and the instance stays refused; overrides naming
        root or making a set-gid directory are refused, changing nothing."""
        fx = self.fx
        member = fx.uid("member")
        crew = grp.getgrnam(l4m_fixture.GROUP).gr_gid
        # A terabyte with one byte of data, and a file under 18 directories
        # of 250 characters (4,500 bytes of path), with a whiteout beside it.
        upper = self.owners_upper("mig-big")
        script = ("import os\n"
                  "fd = os.open(%r, os.O_RDONLY)\n"
                  "for i in range(18):\n"
                  "    os.mkdir('d' * 250, dir_fd=fd)\n"
                  "    fd = os.open('d' * 250, os.O_RDONLY, dir_fd=fd)\n"
                  "with open(os.open('deep', os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), 'w') as f:\n"
                  "    f.write('deep')\n"
                  "os.close(os.open('.wh.gone', os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))\n"
                  % upper)
        self.assertCallOk(fx.run("member", ["python3", "-c", script]))
        self.assertCallOk(fx.run("member", ["sh", "-ec", "truncate -s 1T %s/sparse && "
                                            "printf x | dd of=%s/sparse bs=1 seek=549755813888 "
                                            "conv=notrunc status=none" % (upper, upper)]))
        res = fx.busctl("root", "Migrate", "sb", "mig-big", "false", json_out=True)
        self.assertCallOk(res)
        report = json.loads(res.stdout)["data"][0]
        self.assertTrue(any(l.startswith("remove-whiteout ") and l.find("/.wh.gone") > 4500
                            for l in report), report)
        self.assertRegex(report[-1], r"^verified: ")
        self.assertCallOk(fx.call("member", "Mount", "mig-big"))
        self.assertEqual(os.stat(os.path.join(fx.merged("mig-big"), "sparse")).st_size, 1 << 40)
        self.root_unmount("mig-big")

        # A hard link to a root-owned file the member may write (its group's,
        # 0660, as a file in /etc might be), and an override asking for it.
        victim = os.path.join(fx.tmp, "victim.conf")
        with open(victim, "w") as f:
            f.write("root's\n")
        os.chown(victim, 0, crew)
        os.chmod(victim, 0o660)
        upper = self.owners_upper("mig-link")
        self.assertCallOk(fx.run("member", [
            "sh", "-ec", "ln %s %s/hl && setfattr -n user.fuseoverlayfs.override_stat -v "
            "%d:%d:0644 %s/hl" % (victim, upper, member, member, upper)]))
        res = fx.busctl("root", "Migrate", "sb", "mig-link", "true", json_out=True)
        self.assertCallOk(res)
        report = json.loads(res.stdout)["data"][0]
        self.assertTrue(any(l.startswith("leave-alone %s/hl: is owned by 0:%d" % (upper, crew))
                            for l in report), report)
        res = fx.call("root", "Migrate", "mig-link", b"false")
        self.assertCallError(res, ERROR_PREFIX + "UpperdirTainted", "left alone")
        self.assertIn(upper + "/hl", res.error_message)
        st = os.stat(victim)
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777), (0, crew, 0o660))
        self.assertCallError(fx.call("member", "Mount", "mig-link"),
                             ERROR_PREFIX + "UpperdirTainted")

        # Overrides naming root, or making a set-gid directory.
        upper = self.owners_upper("mig-ids")
        self.assertCallOk(fx.run("member", [
            "sh", "-ec", "echo mine > %s/f && mkdir %s/d" % (upper, upper)]))
        for path, value, why in (("f", "0:0:0666", "naming root as its owner"),
                                 ("d", "%d:%d:2777" % (member, crew),
                                  "asking for a set-gid directory")):
            self.assertCallOk(fx.run("member", [
                "setfattr", "-n", "user.fuseoverlayfs.override_stat", "-v", value,
                os.path.join(upper, path)]))
            before = self.snapshot(os.path.dirname(upper))
            for dry in (b"true", b"false"):
                self.assertCallError(fx.call("root", "Migrate", "mig-ids", dry),
                                     ERROR_PREFIX + "UpperdirTainted",
                                     "%s/%s carries user.fuseoverlayfs.override_stat '%s', %s"
                                     % (upper, path, value, why))
            self.assertEqual(self.snapshot(os.path.dirname(upper)), before)
            self.assertCallOk(fx.run("member", [
                "setfattr", "-x", "user.fuseoverlayfs.override_stat",
                os.path.join(upper, path)]))
