"""Fault tests (issue 5 point 4), on the dbus tier's fixture: polkitd killed
and restarted under load, the daemon killed with SIGKILL in the middle of
mounts, the bus daemon restarted, and callers that leave the bus before
their reply. Every assertion looks at the real mount table of the host
namespace (this process's, the daemon's HostPid)."""

import json
import os
import signal
import subprocess
import time

import l4m_fixture
from l4m_fixture import ACCESS_DENIED, LOWER_FILE, LOWER_TEXT, gdbus_argv, overlays_on
from load_common import LoadClients, fd_count, overlays_below, rss_kib
from test_service import ServiceTest

LEAVING_CLIENT = os.path.join(os.path.dirname(os.path.abspath(l4m_fixture.__file__)),
                              "leaving_client.py")
HELPER_COMM = "left4me-overlay"  # the helper's comm (15 characters: not truncated)


def children(pid, comm=HELPER_COMM):
    """Pids of pid's child processes named comm."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == pid and name == comm:
            found.append(int(entry))
    return found


def wait_for_helpers(daemon_pid, done=None, timeout=20):
    """Waits until a helper of the daemon runs and returns the running
    helpers' pids; or returns [] once done() is true (a fast unmount's
    helper can come and go between two looks)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = children(daemon_pid)
        if pids:
            return pids
        if done is not None and done():
            return []
        time.sleep(0.002)
    raise AssertionError("no helper of the daemon started within %ss" % timeout)


def orphaned_helpers():
    """Helpers whose daemon has died: the fixture, a child subreaper, is
    their parent now."""
    return children(os.getpid())


def wait_gone(pids, timeout=60):
    """Waits for processes to end; reaps those that became our children
    (the fixture is a child subreaper, so orphaned helpers come to us)."""
    deadline = time.monotonic() + timeout
    pending = set(pids)
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            try:
                wpid, _ = os.waitpid(pid, os.WNOHANG)
                if wpid == pid:
                    pending.discard(pid)
                    continue
            except ChildProcessError:
                pass
            if not os.path.exists("/proc/%d" % pid):
                pending.discard(pid)
        time.sleep(0.01)
    if pending:
        raise AssertionError("processes still running: %r" % sorted(pending))


class FaultTest(ServiceTest):
    # Enough entries in upper that the helper's taint scan (which runs
    # before the mount) takes a while: a window to kill things in the
    # middle of a mount. Hard links: names are all the scan walks, and they
    # cost no inodes.
    SLOW_ENTRIES = int(os.environ.get("L4M_FAULT_SLOW_ENTRIES", "25000"))

    def make_slow_instance(self, name):
        d = self.fx.make_instance(name)
        upper = os.path.join(d, "upper")
        target = os.path.join(upper, "f")
        open(target, "w").close()
        for i in range(self.SLOW_ENTRIES // 1000):
            sub = os.path.join(upper, "d%02d" % i)
            os.mkdir(sub)
            for j in range(1000):
                os.link(target, os.path.join(sub, str(j)))
        return d

    def status(self, name):
        """GetStatus(name).mounted as seen by the daemon (called as a member)."""
        res = self.fx.busctl("member", "GetStatus", "s", name, json_out=True)
        self.assertCallOk(res)
        return json.loads(res.stdout)["data"][0]

    def listed(self):
        res = self.fx.busctl("member", "ListInstances", json_out=True)
        self.assertCallOk(res)
        return {n: m for n, m in json.loads(res.stdout)["data"][0]}

    def assertWholeOrNothing(self, name):
        """No half-made mount: either one complete overlay of the instance
        on merged, or nothing there at all. Returns whether it is mounted."""
        mounts = overlays_on(self.fx.merged(name))
        self.assertLessEqual(len(mounts), 1, "stacked mounts on %s: %r" % (name, mounts))
        if mounts:
            self.assertEqual(mounts[0][2], "left4me:" + name)
            with open(os.path.join(self.fx.merged(name), LOWER_FILE)) as f:
                self.assertEqual(f.read(), LOWER_TEXT)
            return True
        self.assertEqual(os.listdir(self.fx.merged(name)), [], "merged not empty unmounted")
        return False

    def assertDaemonTellsTruth(self, names):
        listed = self.listed()
        for n in names:
            truth = len(overlays_on(self.fx.merged(n))) == 1
            self.assertEqual(self.status(n), truth, "GetStatus(%s) disagrees with mountinfo" % n)
            self.assertEqual(listed[n], truth, "ListInstances disagrees for %s" % n)

    def start_calls(self, method, names):
        return [self.fx.popen("member", gdbus_argv(method, [n]), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for n in names]

    def finish_calls(self, procs):
        for p in procs:
            p.communicate(timeout=60)
        return [p.returncode for p in procs]


class PolkitKillTest(FaultTest):
    def test_polkitd_killed_and_restarted_under_load(self):
        fx = self.fx
        names = ["pk-%02d" % i for i in range(16)]
        for n in names:
            fx.make_instance(n)
        load = LoadClients(fx, names, clients=8, pairs=int(os.environ.get("L4M_FAULT_PAIRS", 60)))
        try:
            time.sleep(1.5)  # the load is running
            t_kill = time.monotonic()
            fx.polkitd_proc.kill()
            fx.polkitd_proc.wait(10)
            time.sleep(0.5)  # calls keep coming while polkitd is away
            fx.start_polkitd()  # returns once it owns its name again
            t_back = time.monotonic()
            records = load.wait_done()
        finally:
            load.kill()
        errors = [e for r in records for e in r["errors"]]
        ops = sum(r["ops"] for r in records)
        late = [e for e in errors if e[0] > t_back + 1.0]
        print("\npolkit fault: %d operations; polkitd SIGKILLed and back %.2fs later; %d calls "
              "refused with AccessDenied (the first started %.2fs before the kill); %d refused "
              "after it was back" % (ops, t_back - t_kill, len(errors),
                                     t_kill - min(e[0] for e in errors) if errors else 0,
                                     len(late)))
        self.assertTrue(errors, "no call was refused while polkitd was dead")
        for start, end, method, name, error, message in errors:
            self.assertEqual(error, ACCESS_DENIED, "%s(%s): %s" % (method, name, message))
            self.assertGreater(end, t_kill, "refused before polkitd was killed")
        self.assertEqual(late, [], "calls made after polkitd was back were refused")
        # The clients' view (success = done) matches the mount table.
        believed = {n for r in records for n in r["mounted"]}
        for n in names:
            self.assertEqual(self.assertWholeOrNothing(n), n in believed, n)
        self.assertDaemonTellsTruth(names)
        for n in sorted(believed):
            self.root_unmount(n)
        # Refused calls fail fast, so the clients above may have used up
        # their calls while polkitd was away: a second round, all made
        # after it is back, must see no error at all.
        again = LoadClients(fx, names, clients=8, pairs=10)
        try:
            records = again.wait_done()
        finally:
            again.kill()
        errors = [e for r in records for e in r["errors"]]
        print("polkit fault: %d operations after polkitd was back, %d errors"
              % (sum(r["ops"] for r in records), len(errors)))
        self.assertEqual(errors, [], "refused after polkitd was back")
        self.assertEqual(overlays_below(fx.instances), [])


class DaemonKillTest(FaultTest):
    """SIGKILL while helpers are mounting (or unmounting). The helpers run on
    (they are processes of their own) and either complete their mount or
    never make it; a new daemon reads the truth from the mount table."""

    def kill_daemon_during(self, method, names):
        """Mount: the slow taint scan guarantees helpers are cut off. Unmount
        has no scan and can be over on a fast machine before the kill: then
        the test still checks the state, but cannot insist on interruption."""
        fx = self.fx
        daemon_pid = fx.daemon_proc.pid
        procs = self.start_calls(method, names)
        if method == "Mount":
            wait_for_helpers(daemon_pid)
            time.sleep(0.05)  # some further into their work than others
        else:
            wait_for_helpers(daemon_pid, done=lambda: not any(
                overlays_on(fx.merged(n)) for n in names))
        fx.daemon_proc.kill()
        fx.daemon_proc.wait(10)
        self.assertEqual(fx.daemon_proc.returncode, -signal.SIGKILL)
        # Orphaned helpers finish on their own (or die of SIGPIPE writing
        # their record): wait for every one of them. They are ours now (the
        # fixture is a child subreaper), the moment the daemon is dead.
        helpers = orphaned_helpers()
        wait_gone(helpers)
        codes = self.finish_calls(procs)
        mounted = {n: self.assertWholeOrNothing(n) for n in names}
        print("\ndaemon SIGKILL during %d %s calls: %d helpers orphaned; %d callers "
              "got no reply; afterwards %d of %d mounted"
              % (len(names), method, len(helpers), sum(1 for c in codes if c != 0),
                 sum(mounted.values()), len(names)))
        if method == "Mount":
            self.assertGreater(sum(1 for c in codes if c != 0), 0,
                               "every call finished before the kill: nothing was interrupted")
        fx.start_daemon()
        self.assertDaemonTellsTruth(names)
        return mounted

    def test_sigkill_in_the_middle_of_mounts(self):
        fx = self.fx
        names = ["kill-%d" % i for i in range(6)]
        for n in names:
            self.make_slow_instance(n)
        mounted = self.kill_daemon_during("Mount", names)
        # The new daemon works on every instance, whatever state it is in.
        for n in names:
            if not mounted[n]:
                self.assertCallOk(fx.call("member", "Mount", n))
            self.assertMounted(n)
        mounted = self.kill_daemon_during("Unmount", names)
        for n in names:
            if mounted[n]:
                self.assertCallOk(fx.call("member", "Unmount", n))
            self.assertNotMounted(n)
        self.assertEqual(overlays_below(fx.instances), [])


class BusRestartTest(FaultTest):
    def restart_bus(self):
        """A new dbus-daemon with the fixture's config, on the same socket."""
        fx = self.fx
        bus_dir = os.path.join(fx.tmp, "bus")
        fx.dbus_proc = subprocess.Popen(
            ["dbus-daemon", "--config-file=" + os.path.join(bus_dir, "system.conf"),
             "--nofork", "--nopidfile", "--print-address=1"],
            stdout=subprocess.PIPE, stderr=open(os.path.join(fx.tmp, "logs", "dbus"), "a"),
            text=True)
        self.assertTrue(fx.dbus_proc.stdout.readline().startswith("unix:"))
        # The new daemon made a new socket inode: bind it again.
        l4m_fixture.umount(l4m_fixture.SYSTEM_SOCKET, l4m_fixture.MNT_DETACH)
        fx._bind(os.path.join(bus_dir, "system_bus_socket"), l4m_fixture.SYSTEM_SOCKET)

    def test_bus_daemon_restarted(self):
        fx = self.fx
        names = ["bus-%d" % i for i in range(3)]
        for n in names:
            self.make_slow_instance(n)
        old = fx.daemon_proc
        procs = self.start_calls("Mount", names)
        helpers = wait_for_helpers(old.pid)
        t0 = time.monotonic()
        fx.dbus_proc.terminate()
        fx.dbus_proc.wait(10)
        # The service finishes the helpers it started, then exits cleanly.
        old.wait(30)
        helpers = sorted(set(helpers) | set(orphaned_helpers()))
        print("\nbus restart: the service exited %d, %.2fs after the bus went"
              % (old.returncode, time.monotonic() - t0))
        self.assertEqual(old.returncode, 0, fx.log("daemon")[-2000:])
        self.assertIn("left4me-overlayd: info: stopped", fx.log("daemon"))
        wait_gone(helpers)
        self.finish_calls(procs)
        for n in names:
            self.assertWholeOrNothing(n)
        # polkitd loses its bus too; make sure it is gone before a new one.
        try:
            fx.polkitd_proc.wait(10)
        except subprocess.TimeoutExpired:
            fx.polkitd_proc.kill()
            fx.polkitd_proc.wait()
        self.restart_bus()
        fx.start_polkitd()
        fx.start_daemon()
        self.assertDaemonTellsTruth(names)
        for n in names:
            if len(overlays_on(fx.merged(n))) == 0:
                self.assertCallOk(fx.call("member", "Mount", n))
            self.assertMounted(n)
            self.assertCallOk(fx.call("member", "Unmount", n))
            self.assertNotMounted(n)


class LeavingCallerTest(FaultTest):
    """A caller that closes its connection while its (authorized) call is
    being carried out: the operation completes exactly as if it had waited,
    and nothing stays behind in the daemon."""

    ROUNDS = 5

    def leave_during(self, method, name):
        fx = self.fx
        proc = fx.popen("member", ["/usr/bin/python3",
                                   LEAVING_CLIENT, method, name],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(proc.stdout.readline().strip(), "SENT")
            # A fast unmount's helper may be gone before we look.
            target = method == "Mount"
            helpers = wait_for_helpers(
                fx.daemon_proc.pid, done=lambda: bool(overlays_on(fx.merged(name))) == target)
            proc.send_signal(signal.SIGUSR1)
            self.assertEqual(proc.stdout.readline().strip(), "CLOSED")
            still_running = [p for p in helpers if os.path.exists("/proc/%d" % p)]
            wait_gone(helpers)
        finally:
            proc.kill()
            proc.communicate()
        return still_running

    def test_caller_leaves_before_its_reply(self):
        fx = self.fx
        name = "leaver"
        self.make_slow_instance(name)
        pid = fx.daemon_proc.pid
        # Warm up once, like the load test, then measure.
        self.assertCallOk(fx.call("member", "Mount", name))
        self.assertCallOk(fx.call("member", "Unmount", name))
        fds = fd_count(pid)
        rss = rss_kib(pid)
        left_while_running = 0
        for _ in range(self.ROUNDS):
            left_while_running += bool(self.leave_during("Mount", name))
            self.assertMounted(name)  # done, as if the caller had waited
            left_while_running += bool(self.leave_during("Unmount", name))
            self.assertNotMounted(name)
        # Replies to callers that are gone must not pile up anywhere.
        time.sleep(0.2)
        print("\nleaving callers: %d calls, %d left while their helper ran; daemon fds %d -> %d, "
              "VmRSS %d -> %d KiB" % (2 * self.ROUNDS, left_while_running, fds, fd_count(pid),
                                      rss, rss_kib(pid)))
        self.assertGreater(left_while_running, 0, "no caller left while its helper was running")
        self.assertEqual(fd_count(pid), fds)
        self.assertLess(rss_kib(pid) - rss, 1024)
        self.assertCallOk(fx.call("member", "Mount", name))
        self.assertMounted(name)
        self.root_unmount(name)
