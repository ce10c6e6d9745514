"""Fault tests, on the fixture (tests/fixture): polkitd killed
and restarted under load, the daemon killed with SIGKILL in the middle of
mounts, the bus daemon restarted, and callers that leave the bus before
their reply. Every assertion looks at the real mount table of the host
namespace (this process's, the daemon's HostPid)."""

import contextlib
import json
import os
import signal
import subprocess
import time

import l4m_fixture
from l4m_fixture import ACCESS_DENIED, LOWER_FILE, LOWER_TEXT, gdbus_argv, overlays_on
from load_common import LoadClients, fd_count, overlays_below, rss_kib
from l4m_base import ServiceTest

LEAVING_CLIENT = os.path.join(l4m_fixture.FIXTURE_DIR, "leaving_client.py")
EXECUTOR_COMM = "left4me-overlay"  # the executors' comm (15 characters: not truncated)


def children(pid, comm=EXECUTOR_COMM):
    """Pids of pid's living child processes named comm."""
    return list(l4m_fixture.child_processes(pid, comm))


def orphaned_executors():
    """Executors whose daemon has died: the fixture, a child subreaper, is
    their parent now."""
    return children(os.getpid())


def wait_gone(pids, timeout=60):
    """Waits for processes to end; reaps those that became our children
    (the fixture is a child subreaper, so orphaned executors come to us)."""
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
    # Enough entries in upper that the executor's taint scan (which runs
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
    """SIGKILL while executors are mounting (or unmounting). The executors
    are processes of their own: each finishes the operation it holds or
    never starts it, then finds its socket closed and exits; a new daemon
    reads the truth from the mount table."""

    def kill_daemon_during(self, method, names):
        """The instances' locks are held until the daemon is dead, so its
        executors are surely in the middle of their operations (waiting for
        a lock) or still queued when the kill comes."""
        fx = self.fx
        verb = method.lower()
        before = {n: fx.authorized_count(verb, n) + 1 for n in names}
        with contextlib.ExitStack() as locks:
            for n in names:
                locks.enter_context(fx.hold_lock(n))
            procs = self.start_calls(method, names)
            fx.wait_authorized(verb, before)
            executors = children(fx.daemon_proc.pid)
            self.assertEqual(len(executors), 6,
                             "2 operation, 1 status, 2 migrate, 1 watching executor")
            fx.daemon_proc.kill()
            fx.daemon_proc.wait(10)
            self.assertEqual(fx.daemon_proc.returncode, -signal.SIGKILL)
        # Orphaned executors finish what they hold and exit: wait for every
        # one of them. They are ours now (the fixture is a child subreaper).
        wait_gone(executors)
        codes = self.finish_calls(procs)
        mounted = {n: self.assertWholeOrNothing(n) for n in names}
        print("\ndaemon SIGKILL during %d %s calls: %d executors orphaned; %d callers "
              "got no reply; afterwards %d of %d mounted"
              % (len(names), method, len(executors), sum(1 for c in codes if c != 0),
                 sum(mounted.values()), len(names)))
        self.assertEqual(codes.count(0), 0, "a call was answered though every one was held")
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
        before = {n: fx.authorized_count("mount", n) + 1 for n in names}
        with contextlib.ExitStack() as locks:
            for n in names:
                locks.enter_context(fx.hold_lock(n))
            procs = self.start_calls("Mount", names)
            fx.wait_authorized("mount", before)
            executors = children(old.pid)
            t0 = time.monotonic()
            fx.dbus_proc.terminate()
            fx.dbus_proc.wait(10)
        # The service finishes the operations its executors hold, stops
        # them, then exits cleanly.
        old.wait(30)
        print("\nbus restart: the service exited %d, %.2fs after the bus went"
              % (old.returncode, time.monotonic() - t0))
        self.assertEqual(old.returncode, 0, fx.log("daemon")[-2000:])
        self.assertIn("left4me-overlayd: info: stopped", fx.log("daemon"))
        self.assertEqual(orphaned_executors(), [], "the service left executors behind")
        wait_gone(executors)
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
    and nothing stays behind in the daemon. The instance's lock is held
    while the caller leaves, so the operation is surely under way then."""

    ROUNDS = 5

    def leave_during(self, method, name):
        fx = self.fx
        verb = method.lower()
        need = {name: fx.authorized_count(verb, name) + 1}
        with fx.hold_lock(name):
            proc = fx.popen("member", ["/usr/bin/python3", LEAVING_CLIENT, method, name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                line = proc.stdout.readline().strip()
                if line != "SENT":
                    proc.kill()
                    _, err = proc.communicate()
                    self.fail("leaving client printed %r, stderr: %r" % (line, err))
                fx.wait_authorized(verb, need)
                proc.send_signal(signal.SIGUSR1)
                line = proc.stdout.readline().strip()
                if line != "CLOSED":
                    proc.kill()
                    _, err = proc.communicate()
                    self.fail("leaving client printed %r, stderr: %r" % (line, err))
            finally:
                proc.kill()
                proc.communicate()
        # The lock is free: the operation goes on without its caller.
        want = method == "Mount"
        deadline = time.monotonic() + 30
        while bool(overlays_on(fx.merged(name))) != want:
            self.assertLess(time.monotonic(), deadline, "%s of %s never completed" % (method, name))
            time.sleep(0.01)

    def test_caller_leaves_before_its_reply(self):
        fx = self.fx
        name = "leaver"
        fx.make_instance(name)
        pid = fx.daemon_proc.pid
        executors = sorted(children(pid))
        # Warm up once, like the load test, then measure.
        self.assertCallOk(fx.call("member", "Mount", name))
        self.assertCallOk(fx.call("member", "Unmount", name))
        fds = fd_count(pid)
        rss = rss_kib(pid)
        for _ in range(self.ROUNDS):
            self.leave_during("Mount", name)
            self.assertMounted(name)  # done, as if the caller had waited
            self.leave_during("Unmount", name)
            self.assertNotMounted(name)
        # The last reply (to a caller that is gone) goes out after the
        # mount table changed: wait until the daemon holds no call.
        deadline = time.monotonic() + 30
        while fx.log("daemon").count("unmounted leaver ") < self.ROUNDS + 1:
            self.assertLess(time.monotonic(), deadline, "the last unmount was never answered")
            time.sleep(0.01)
        print("\nleaving callers: %d calls, each left while its operation ran; daemon fds %d -> %d, "
              "VmRSS %d -> %d KiB" % (2 * self.ROUNDS, fds, fd_count(pid), rss, rss_kib(pid)))
        self.assertEqual(fd_count(pid), fds)
        if not l4m_fixture.sanitizer_build(pid):
            self.assertLess(rss_kib(pid) - rss, 1024)
        self.assertEqual(sorted(children(pid)), executors, "executors were replaced")
        self.assertCallOk(fx.call("member", "Mount", name))
        self.assertMounted(name)
        self.root_unmount(name)
