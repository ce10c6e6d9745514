"""The authorization stage under a user with no rights: their polkit agent
never answers, their interactive calls stay in polkit, and a member's calls
are still answered at once. And the caller's identity: asked of the bus
daemon once per connection, never a match per call."""

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time

import l4m_fixture
from l4m_fixture import SYSTEM_BUS_ADDRESS
from l4m_base import ServiceTest

STALLING_AGENT = os.path.join(l4m_fixture.FIXTURE_DIR, "stalling_agent.py")
SERIAL_CLIENT = os.path.join(l4m_fixture.FIXTURE_DIR, "serial_client.py")

# MaxConcurrentAuthorizationsPerUser's default: the checks of one uid in
# polkit at once.
PER_USER_SHARE = 2
# A member's call polkit answers at once is answered in milliseconds. The
# bound is generous for a loaded machine, and still fails when fairness
# is broken: the member then waits for the check's 20 s timeout and is
# denied.
PROMPT_S = 10
# Only a guard against a hang: every wait ends on an event.
DEADLINE_S = 60


class Lines:
    """A child's stdout lines, read on a thread, awaited one pattern at a time."""

    def __init__(self, proc):
        self.proc = proc
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, pattern, timeout=DEADLINE_S):
        deadline = time.monotonic() + timeout
        while True:
            for line in self.seen:
                if re.fullmatch(pattern, line):
                    return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return False
            if line is None:
                return False
            self.seen.append(line)

    def drain(self):
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return self.seen
            if line is not None:
                self.seen.append(line)


class FairnessTest(ServiceTest):
    def start_stalling_agent(self, count):
        proc = self.fx.popen("other", [sys.executable, STALLING_AGENT, str(count), "held"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(self.stop, proc)
        out = Lines(proc)
        self.assertTrue(out.expect("REGISTERED"), "agent: %r %s" % (out.seen, self.stderr(proc)))
        self.assertTrue(out.expect("SENT %d" % count), out.seen)
        # Its share of checks has reached the agent, through polkitd.
        self.assertTrue(out.expect("BEGIN %d" % PER_USER_SHARE), out.seen)
        return proc, out

    @staticmethod
    def stop(proc):
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)

    @staticmethod
    def stderr(proc):
        if proc.poll() is None:
            return ""
        return proc.stderr.read()

    def assertPrompt(self, res):
        self.assertCallOk(res)
        self.assertLess(res.elapsed, PROMPT_S, res)

    def member_served_while_checks_are_held(self, count):
        fx = self.fx
        name = "fair-%d" % count
        fx.make_instance(name)
        agent, out = self.start_stalling_agent(count)

        self.assertPrompt(fx.call("member", "GetStatus", name))
        self.assertPrompt(fx.call("member", "Mount", name))
        self.assertMounted(name)
        self.assertPrompt(fx.call("member", "GetStatus", name))
        self.assertPrompt(fx.call("member", "Unmount", name))
        self.assertNotMounted(name)

        # The agent's user held its share, no more: every other call of
        # theirs waits in the service, not in polkit, and none was answered
        # (8 per connection: none refused either).
        seen = out.drain()
        self.assertEqual([l for l in seen if l.startswith("BEGIN")],
                         ["BEGIN %d" % n for n in range(1, PER_USER_SHARE + 1)])
        self.assertEqual([l for l in seen if l.startswith("REPLY")], [])
        self.assertIsNone(agent.poll())

        # The user leaves: their checks are cancelled, the service serves on.
        self.stop(agent)
        self.assertPrompt(fx.call("member", "Mount", name))
        self.root_unmount(name)

    def test_member_served_while_a_stalling_agent_holds_8_checks(self):
        self.member_served_while_checks_are_held(8)

    def test_member_served_while_a_stalling_agent_holds_16_checks(self):
        self.member_served_while_checks_are_held(16)


class IdentityTest(ServiceTest):
    """What the daemon asks the bus daemon, seen by a monitor on the bus."""

    def start_monitor(self):
        proc = subprocess.Popen(
            ["dbus-monitor", "--address", SYSTEM_BUS_ADDRESS, "--monitor",
             "type='method_call',destination='org.freedesktop.DBus'"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.addCleanup(lambda: (proc.kill(), proc.wait(10)))
        return Lines(proc)

    def mark(self, monitor, n):
        """Every call to the bus daemon made before this one has been seen
        once the monitor shows this marker (the bus daemon routes, and copies
        to monitors, in order). Repeated until the monitor is attached."""
        deadline = time.monotonic() + DEADLINE_S
        marker = "l4mt-marker-%d" % n
        while time.monotonic() < deadline:
            self.fx.run("root", ["gdbus", "call", "--system", "--dest", "org.freedesktop.DBus",
                                 "--object-path", "/org/freedesktop/DBus", "--method",
                                 "org.freedesktop.DBus.NameHasOwner", marker])
            if monitor.expect(r'\s*string "%s"' % marker, timeout=1):
                return len(monitor.seen)
        self.fail("the monitor never saw marker %d" % n)

    def daemon_calls(self, monitor, since, until):
        """The members the daemon (any of its connections) called on the bus
        daemon between two marks."""
        calls = []
        for line in monitor.seen[since:until]:
            m = re.match(r"method call .* sender=(\S+) -> destination=org\.freedesktop\.DBus "
                         r".* member=(\S+)", line)
            if m:
                calls.append((m.group(1), m.group(2)))
        pid = self.fx.daemon_proc.pid
        ours = {}
        for sender in {s for s, _ in calls}:
            res = self.fx.run("root", ["gdbus", "call", "--system", "--dest",
                                       "org.freedesktop.DBus", "--object-path",
                                       "/org/freedesktop/DBus", "--method",
                                       "org.freedesktop.DBus.GetConnectionUnixProcessID", sender])
            ours[sender] = res.returncode == 0 and ("(uint32 %d,)" % pid) in res.stdout
        return [member for sender, member in calls if ours[sender]]

    def calls(self, role, count, *calls):
        res = self.fx.run(role, [sys.executable, SERIAL_CLIENT, str(count)] + list(calls),
                          timeout=120)
        self.assertEqual(res.returncode, 0, res)
        return json.loads(res.stdout.strip().splitlines()[-1])

    def test_one_identity_lookup_and_no_match_per_call_on_one_connection(self):
        fx = self.fx
        name = "ident-count"
        fx.make_instance(name)
        # polkit's authority and the daemon's watches exist before counting.
        self.assertCallOk(fx.call("member", "GetStatus", name))
        monitor = self.start_monitor()
        first = self.mark(monitor, 1)

        result = self.calls("member", 60, "Mount:" + name, "GetStatus:" + name, "Unmount:" + name)
        self.assertEqual(result, {"replies": 60, "errors": {}})
        second = self.mark(monitor, 2)
        # Sixty calls on one connection (20 Mount, GetStatus, Unmount): its
        # identity asked once, and no match added or removed (one watch
        # covers departures).
        self.assertEqual(self.daemon_calls(monitor, first, second), ["GetConnectionCredentials"])

        # That connection has left; a new one of another uid is asked
        # anew and judged as itself, never taken for the old.
        result = self.calls("other", 4, "GetStatus:" + name)
        self.assertEqual(result["replies"], 4)
        self.assertNotIn("ok", result["errors"])
        self.assertEqual(sum(result["errors"].values()), 4)
        third = self.mark(monitor, 3)
        self.assertEqual(self.daemon_calls(monitor, second, third), ["GetConnectionCredentials"])
