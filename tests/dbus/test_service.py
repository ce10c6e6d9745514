"""left4me-overlayd on the fixture's private system bus, with the real
polkitd judging our actions and rules, called by non-root test users
(README, "D-Bus API"). Every assertion looks at real outcomes:
the mount table of this process's namespace (the daemon's HostPid), the
files seen in merged, exact D-Bus error names."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

import l4m_fixture
from l4m_base import ServiceTest, SignalListener
from l4m_fixture import (ACCESS_DENIED, ADMIN_PASSWORD, ERROR_PREFIX, INTERACTIVE_REQUIRED,
                         LOWER_FILE, gdbus_argv, overlays_on)


class MemberTest(ServiceTest):
    """The left4me member: everything allowed without a password."""

    def test_mount_status_list_unmount_through_busctl_with_signals(self):
        fx = self.fx
        name = "member-busctl"
        mod1 = os.path.join(fx.root, "overlays", "mod1")
        fx.make_instance(name, lowerdirs=[mod1, fx.installation])
        listener = SignalListener(fx, "member")
        try:
            res = fx.busctl("member", "Mount", "s", name)
            self.assertCallOk(res)
            self.assertMounted(name)
            with open(os.path.join(fx.merged(name), "mod.txt")) as f:
                self.assertEqual(f.read(), "from the mod1 lower\n")
            # writes land in upper
            with open(os.path.join(fx.merged(name), "new.txt"), "w") as f:
                f.write("x")
            self.assertTrue(os.path.exists(os.path.join(fx.instances, name, "upper", "new.txt")))

            res = fx.busctl("member", "GetStatus", "s", name, json_out=True)
            self.assertCallOk(res)
            reply = json.loads(res.stdout)
            self.assertEqual(reply["type"], "bsas")
            self.assertEqual(reply["data"], [True, fx.merged(name), [mod1, fx.installation]])

            res = fx.busctl("member", "ListInstances", json_out=True)
            self.assertCallOk(res)
            reply = json.loads(res.stdout)
            self.assertEqual(reply["type"], "a(sb)")
            self.assertIn([name, True], reply["data"][0])

            self.assertTrue(listener.wait_for(
                r"org\.left4me\.Overlay1\.MountChanged \('%s', true\)" % re.escape(name), 5),
                listener.seen)

            res = fx.busctl("member", "Unmount", "s", name)
            self.assertCallOk(res)
            self.assertNotMounted(name)
            self.assertTrue(listener.wait_for(
                r"org\.left4me\.Overlay1\.MountChanged \('%s', false\)" % re.escape(name), 5),
                listener.seen)

            res = fx.busctl("member", "GetStatus", "s", name, json_out=True)
            self.assertCallOk(res)
            self.assertEqual(json.loads(res.stdout)["data"][0], False)
            res = fx.busctl("member", "ListInstances", json_out=True)
            self.assertIn([name, False], json.loads(res.stdout)["data"][0])
        finally:
            listener.close()

    def test_list_is_sorted_and_skips_invalid_names(self):
        fx = self.fx
        for name in ("list-b", "list-a"):
            fx.make_instance(name)
        os.mkdir(os.path.join(fx.instances, ".hidden"))
        res = fx.busctl("member", "ListInstances", json_out=True)
        self.assertCallOk(res)
        names = [n for n, _ in json.loads(res.stdout)["data"][0]]
        self.assertEqual(names, sorted(names))
        self.assertIn("list-a", names)
        self.assertNotIn(".hidden", names)

    def test_status_is_read_from_the_mount_table(self):
        # An outside umount is seen at once: state is never kept in memory.
        fx = self.fx
        name = "member-outside"
        fx.make_instance(name)
        self.assertCallOk(fx.call("member", "Mount", name))
        self.assertMounted(name)
        l4m_fixture.umount(fx.merged(name))
        res = fx.busctl("member", "GetStatus", "s", name, json_out=True)
        self.assertCallOk(res)
        self.assertEqual(json.loads(res.stdout)["data"][0], False)
        self.assertCallOk(fx.call("member", "Mount", name))
        self.assertMounted(name)
        self.assertCallOk(fx.call("member", "Unmount", name))
        self.assertNotMounted(name)

    def test_queries_need_the_status_action_and_tell_nothing_without_it(self):
        fx = self.fx
        name = "member-query"
        fx.make_instance(name)
        os.chmod(os.path.join(fx.instances, name), 0o700)  # the owner's wish
        for role in ("member", "root"):
            res = fx.call(role, "GetStatus", name)
            self.assertCallOk(res)
            self.assertIn("false", res.stdout)
            self.assertCallOk(fx.call(role, "ListInstances"))
        # Without the action: the same answer for an instance that exists
        # and one that does not, and no listing.
        for role, error in (("other", INTERACTIVE_REQUIRED), ("denied", ACCESS_DENIED)):
            answers = set()
            for n in (name, "member-query-missing"):
                res = fx.call(role, "GetStatus", n)
                self.assertCallError(res, error)
                answers.add(res.error_message.replace(n, "NAME"))
            self.assertEqual(len(answers), 1, answers)
            self.assertEqual(answers.pop(), "Not authorized to read the status of instance NAME"
                             if role == "denied" else
                             "Interactive authorization is required to read the status of "
                             "instance NAME")
            res = fx.call(role, "ListInstances")
            self.assertCallError(res, error)
            self.assertNotIn(name, res.stderr)

    def test_root_is_authorized_without_polkit_rules(self):
        fx = self.fx
        name = "root-mount"
        fx.make_instance(name)
        self.assertCallOk(fx.call("root", "Mount", name))
        self.assertMounted(name)
        self.root_unmount(name)


class ServiceBusPolicyTest(ServiceTest):
    """org.left4me.Overlay1.conf with the service on the bus."""

    def test_non_root_cannot_own_the_name(self):
        for role in ("member", "other"):
            res = self.fx.run(role, ["gdbus", "call", "--system", "--dest", "org.freedesktop.DBus",
                                     "--object-path", "/org/freedesktop/DBus",
                                     "--method", "org.freedesktop.DBus.RequestName",
                                     l4m_fixture.BUS_NAME, "4"])  # DO_NOT_QUEUE
            self.assertCallError(res, ACCESS_DENIED)

    def test_anyone_may_introspect_ping_and_read_properties(self):
        fx = self.fx
        res = fx.run("other", gdbus_argv("Introspect",
                                         interface="org.freedesktop.DBus.Introspectable"))
        self.assertCallOk(res)
        self.assertIn('<interface name="org.left4me.Overlay1">', res.stdout)
        self.assertIn('<signal name="MountChanged">', res.stdout)
        res = fx.run("other", gdbus_argv("Ping", interface="org.freedesktop.DBus.Peer"))
        self.assertCallOk(res)
        res = fx.run("other", ["busctl", "--system", "get-property", l4m_fixture.BUS_NAME,
                               l4m_fixture.OBJECT_PATH, l4m_fixture.INTERFACE, "Version"])
        self.assertCallOk(res)
        self.assertRegex(res.stdout.strip(), r'^s "\d+\.\d+\.\d+.*"$')

    def test_other_interfaces_are_refused_by_the_bus(self):
        fx = self.fx
        argv = gdbus_argv("Poke", interface="org.example.NotOurs")
        res = fx.run("other", argv)
        self.assertCallError(res, ACCESS_DENIED)
        self.assertIn("Rejected send message", res.error_message)  # the bus, not the service
        self.assertIn('interface="org.example.NotOurs"', res.error_message)


class AuthorizationTest(ServiceTest):
    """Who may mount: polkit's verdicts reach the caller under the exact
    D-Bus names, before any filesystem access."""

    def test_non_member_without_interactive_flag(self):
        fx = self.fx
        name = "auth-noflag"
        fx.make_instance(name)
        for method in ("Mount", "Unmount"):
            res = fx.call("other", method, name, interactive=False)
            self.assertCallError(res, INTERACTIVE_REQUIRED)
        self.assertNotMounted(name)
        # busctl sets the flag unless told not to
        res = fx.busctl("other", "Mount", "s", name, interactive=False)
        self.assertNotEqual(res.returncode, 0, res)
        self.assertNotMounted(name)

    def test_non_member_with_flag_and_no_agent(self):
        fx = self.fx
        name = "auth-noagent"
        fx.make_instance(name)
        res = fx.call("other", "Mount", name, interactive=True)
        self.assertCallError(res, ACCESS_DENIED)
        self.assertLess(res.elapsed, 10)
        self.assertNotMounted(name)

    def test_denied_user(self):
        fx = self.fx
        name = "auth-denied"
        fx.make_instance(name)
        for interactive in (False, True):
            for method in ("Mount", "Unmount"):
                res = fx.call("denied", method, name, interactive=interactive)
                self.assertCallError(res, ACCESS_DENIED)
        self.assertNotMounted(name)

    def test_unauthorized_caller_learns_nothing_about_existence(self):
        # Same length names, so a message naming the instance differs only there.
        fx = self.fx
        fx.make_instance("leak-exist1")
        missing = "leak-missin"
        self.assertFalse(os.path.exists(os.path.join(fx.instances, missing)))
        for role, interactive in (("denied", False), ("denied", True), ("other", False),
                                  ("other", True)):
            for method in ("Mount", "Unmount"):
                a = fx.call(role, method, "leak-exist1", interactive=interactive)
                b = fx.call(role, method, missing, interactive=interactive)
                self.assertIsNotNone(a.error_name, a)
                self.assertIn(a.error_name, (ACCESS_DENIED, INTERACTIVE_REQUIRED))
                self.assertEqual(a.error_name, b.error_name, (a, b))
                self.assertEqual(a.error_message.replace("leak-exist1", "NAME"),
                                 b.error_message.replace(missing, "NAME"), (a, b))
        # an authorized caller does see the difference
        self.assertCallError(fx.call("member", "Mount", missing), ERROR_PREFIX + "NoSuchInstance")


class AgentTest(ServiceTest):
    """A non-member with polkit's text agent, answered with the admin's
    password through a pty."""

    def test_admin_password_through_text_agent(self):
        fx = self.fx
        name = "agent-ok"
        fx.make_instance(name)
        with fx.agent_session("other", gdbus_argv("Mount", [name], interactive=True)) as s:
            self.assertTrue(s.expect(rb"Password:"), s.text())
            # polkit substituted the instance detail into our action's message
            self.assertIn("AUTHENTICATING FOR org.left4me.overlay.mount", s.text())
            self.assertIn("mount the overlay of the left4me instance %s." % name, s.text())
            self.assertIn("(l4mt-admin)", s.text())
            s.send(ADMIN_PASSWORD)
            rc = s.wait()
            self.assertEqual(rc, 0, s.text())
            self.assertIn("AUTHENTICATION COMPLETE", s.text())
        self.assertMounted(name)
        # auth_admin (not _keep) for allow_any: the next call asks again
        res = fx.call("other", "Unmount", name, interactive=False)
        self.assertCallError(res, INTERACTIVE_REQUIRED)
        self.root_unmount(name)

    def test_wrong_password(self):
        fx = self.fx
        name = "agent-wrong"
        fx.make_instance(name)
        with fx.agent_session("other", gdbus_argv("Mount", [name], interactive=True)) as s:
            self.assertTrue(s.expect(rb"Password:"), s.text())
            s.send("not-the-password")
            rc = s.wait(30)
            self.assertNotEqual(rc, 0, s.text())
            self.assertIn("AUTHENTICATION FAILED", s.text())
            self.assertIn("GDBus.Error:%s:" % ACCESS_DENIED, s.text())
        self.assertNotMounted(name)

    def test_caller_killed_while_prompt_pending(self):
        fx = self.fx
        name = "agent-killed"
        fx.make_instance(name)
        with fx.agent_session("other", gdbus_argv("Mount", [name], interactive=True)) as s:
            self.assertTrue(s.expect(rb"Password:"), s.text())
            s.kill_client()
            time.sleep(0.5)
            # The prompt may still be open: a password typed now must not
            # mount anything for a caller that is gone. (Or the service's
            # cancellation has reached the agent and it closed the prompt,
            # echo on again: nothing to type into, which is as right.)
            if s.send_if_prompting(ADMIN_PASSWORD):
                s.expect(rb"AUTHENTICATION (COMPLETE|FAILED)", 1.5)
            self.assertNotIn("AUTHENTICATION COMPLETE", s.text())
        self.assertNotMounted(name)
        # and the service still serves
        self.assertCallOk(fx.call("member", "Mount", name))
        self.assertMounted(name)
        self.root_unmount(name)

    def test_caller_leaving_the_bus_cancels_the_check(self):
        # The caller's process stays alive (so polkitd alone would go on
        # asking); only its bus connection goes: the service must cancel
        # its polkit check, which polkitd passes on to the agent.
        fx = self.fx
        name = "agent-left"
        fx.make_instance(name)
        client = [sys.executable, os.path.join(l4m_fixture.FIXTURE_DIR, "leaving_client.py"), "Mount", name]
        with fx.agent_session("other", client) as s:
            self.assertTrue(s.expect(rb"SENT"), s.text())
            self.assertTrue(s.expect(rb"Password:"), s.text())
            os.kill(s.pid, signal.SIGUSR1)
            self.assertTrue(s.expect(rb"CLOSED"), s.text())
            time.sleep(0.5)
            # The text agent notices the cancellation only once it has read
            # a line; a check that is still pending would now be granted.
            s.send(ADMIN_PASSWORD)
            self.assertTrue(s.expect(rb"AUTHENTICATION (COMPLETE|FAILED)", 10), s.text())
            self.assertNotIn("AUTHENTICATION COMPLETE", s.text())
            self.assertIn("Cancelled", s.text())
        time.sleep(0.3)
        self.assertNotMounted(name)
        self.assertCallOk(fx.call("member", "Mount", name))
        self.assertMounted(name)
        self.root_unmount(name)


class ErrorTest(ServiceTest):
    """Each core error reaches the caller under its name with its message,
    the one an executor (the core) reports for the same layout."""

    BAD_NAMES = ["", "-lead", "a/b", "..", ".", "a" * 65, "sp ace", "dot.name", "tab\tname",
                 "\u00fcml", "x" * 200]

    def core_error(self, *words):
        record, proc = self.fx.executor_result(*words)
        first = record.splitlines()[0] if record else ""
        m = re.match(r"error (\w+) (.*)$", first)
        self.assertIsNotNone(m, "result record %r (rc %s, stderr %r)"
                             % (record, proc.returncode, proc.stderr.read() if proc.stderr else ""))
        return m.group(1), m.group(2)

    def assertCoreError(self, method, name, error):
        """The D-Bus error of method(name) as the member equals the core's."""
        res = self.fx.call("member", method, name)
        self.assertCallError(res, ERROR_PREFIX + error)
        word = {"Mount": "mount", "Unmount": "umount", "GetStatus": "status"}[method]
        core_name, core_message = self.core_error(word, name)
        self.assertEqual(core_name, error)
        self.assertEqual(res.error_message, core_message)
        return res

    def test_invalid_names(self):
        for bad in self.BAD_NAMES:
            for method in ("Mount", "Unmount", "GetStatus"):
                res = self.fx.call("member", method, bad)
                self.assertCallError(res, ERROR_PREFIX + "InvalidName")
        # max length is fine (and merely missing)
        self.assertCallError(self.fx.call("member", "Mount", "a" * 64),
                             ERROR_PREFIX + "NoSuchInstance")

    def test_no_such_instance(self):
        res = self.assertCoreError("Mount", "err-missing", "NoSuchInstance")
        self.assertIn("err-missing", res.error_message)
        self.assertCoreError("Unmount", "err-missing", "NoSuchInstance")
        self.assertCoreError("GetStatus", "err-missing", "NoSuchInstance")

    def test_bad_config(self):
        fx = self.fx
        fx.make_instance("err-noenv", env=False)
        self.assertCoreError("Mount", "err-noenv", "BadConfig")
        fx.make_instance("err-nokey", env_text="# nothing here\nOTHER=1\n")
        self.assertCoreError("Mount", "err-nokey", "BadConfig")
        fx.make_instance("err-malformed", env_text="OTHER=1\nthis is not a key value line\n")
        res = self.assertCoreError("Mount", "err-malformed", "BadConfig")
        self.assertIn("2", res.error_message)  # names the line
        for name in ("err-noenv", "err-nokey", "err-malformed"):
            self.assertNotMounted(name)

    def test_lowerdir_not_allowed(self):
        fx = self.fx
        fx.make_instance("err-etc", lowerdirs=["/etc"])
        res = self.assertCoreError("Mount", "err-etc", "LowerdirNotAllowed")
        self.assertIn("/etc", res.error_message)
        # beneath Root, but not beneath an allowlisted root
        fx.make_instance("err-beneath-root", lowerdirs=[fx.instances])
        self.assertCoreError("Mount", "err-beneath-root", "LowerdirNotAllowed")
        self.assertNotMounted("err-etc")
        self.assertNotMounted("err-beneath-root")

    def test_unsafe_path(self):
        fx = self.fx
        link = os.path.join(fx.installation, "evil-link")
        if not os.path.islink(link):
            os.symlink("/etc", link)
        fx.make_instance("err-symlink-lower", lowerdirs=[link])
        self.assertCoreError("Mount", "err-symlink-lower", "UnsafePath")
        d = fx.make_instance("err-symlink-upper")
        os.rmdir(os.path.join(d, "upper"))
        os.symlink(os.path.join(fx.tmp, "etc"), os.path.join(d, "upper"))
        self.assertCoreError("Mount", "err-symlink-upper", "UnsafePath")
        d = fx.make_instance("err-file-merged")
        os.rmdir(os.path.join(d, "merged"))
        open(os.path.join(d, "merged"), "w").close()
        self.assertCoreError("Mount", "err-file-merged", "UnsafePath")
        self.assertNotMounted("err-symlink-lower")

    def test_upperdir_tainted(self):
        fx = self.fx
        d = fx.make_instance("err-whiteout")
        os.makedirs(os.path.join(d, "upper", "cfg"))
        open(os.path.join(d, "upper", "cfg", ".wh.server.cfg"), "w").close()
        res = self.assertCoreError("Mount", "err-whiteout", "UpperdirTainted")
        self.assertIn(".wh.server.cfg", res.error_message)
        d = fx.make_instance("err-xattr")
        os.makedirs(os.path.join(d, "upper", "maps"))
        os.setxattr(os.path.join(d, "upper", "maps"), "user.fuseoverlayfs.opaque", b"y")
        res = self.assertCoreError("Mount", "err-xattr", "UpperdirTainted")
        self.assertIn("maps", res.error_message)
        self.assertNotMounted("err-whiteout")
        self.assertNotMounted("err-xattr")

    def test_already_mounted_and_not_mounted(self):
        fx = self.fx
        name = "err-state"
        fx.make_instance(name)
        res = self.assertCoreError("Unmount", name, "NotMounted")
        self.assertIn(name, res.error_message)
        self.assertCallOk(fx.call("member", "Mount", name))
        self.assertMounted(name)
        self.assertCoreError("Mount", name, "AlreadyMounted")
        self.assertMounted(name)  # still exactly one overlay: never stacked
        self.assertCallOk(fx.call("member", "Unmount", name))
        self.assertNotMounted(name)

    def test_busy(self):
        fx = self.fx
        name = "err-busy"
        fx.make_instance(name)
        self.assertCallOk(fx.call("member", "Mount", name))
        held = open(os.path.join(fx.merged(name), LOWER_FILE))
        try:
            self.assertCoreError("Unmount", name, "Busy")
            self.assertMounted(name)  # never a lazy unmount
        finally:
            held.close()
        self.assertCallOk(fx.call("member", "Unmount", name))
        self.assertNotMounted(name)


    def test_failed_carries_the_kernels_message(self):
        # A read-only upperdir: the core accepts the layout, the kernel refuses.
        # The read-only mount is InstancesDir's own (a mount on upper alone
        # is refused by the core: upper must be on the instance dir's mount).
        fx = self.fx
        name = "err-ro-upper"
        fx.make_instance(name)
        instances = fx.instances
        l4m_fixture.mount(instances, instances, None, l4m_fixture.MS_BIND)
        l4m_fixture.mount(None, instances, None,
                          l4m_fixture.MS_BIND | l4m_fixture.MS_REMOUNT | l4m_fixture.MS_RDONLY)
        try:
            res = self.assertCoreError("Mount", name, "Failed")
            self.assertIn("read-only", res.error_message)
            self.assertNotMounted(name)
        finally:
            l4m_fixture.umount(instances)


class PolkitRestartTest(ServiceTest):
    """polkitd gone: fail closed, fast; polkitd back: served again by the
    same daemon."""

    def test_polkitd_stopped_and_back(self):
        fx = self.fx
        name = "restart"
        fx.make_instance(name)
        daemon_pid = fx.daemon_proc.pid
        self.assertCallOk(fx.call("member", "Mount", name))
        self.assertCallOk(fx.call("member", "Unmount", name))
        fx.stop_polkitd()
        try:
            for interactive in (False, True):
                res = fx.call("member", "Mount", name, interactive=interactive)
                self.assertCallError(res, ACCESS_DENIED)
                self.assertLess(res.elapsed, 2.5, "no quick answer without polkitd")
            self.assertNotMounted(name)
            # queries fail closed too; root needs no polkit
            self.assertCallError(fx.call("member", "GetStatus", name), ACCESS_DENIED)
            self.assertCallOk(fx.call("root", "GetStatus", name))
            self.assertCallOk(fx.call("root", "Mount", name))
            self.assertMounted(name)
            self.root_unmount(name)
        finally:
            fx.start_polkitd()
        res = fx.call("member", "Mount", name)
        self.assertCallOk(res)
        self.assertMounted(name)
        self.assertCallOk(fx.call("member", "Unmount", name))
        self.assertNotMounted(name)
        self.assertEqual(fx.daemon_proc.pid, daemon_pid)
        self.assertIsNone(fx.daemon_proc.poll())


class ConcurrencyTest(ServiceTest):
    def run_parallel(self, role, method, names, interactive=False):
        procs = [self.fx.popen(role, gdbus_argv(method, [n], interactive=interactive),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE) for n in names]
        results = []
        for p in procs:
            out, err = p.communicate(timeout=60)
            results.append(l4m_fixture.CallResult(
                subprocess.CompletedProcess(p.args, p.returncode, out, err), 0))
        return results

    def test_32_instances_by_32_clients(self):
        fx = self.fx
        names = ["many-%02d" % i for i in range(32)]
        for n in names:
            fx.make_instance(n)
        for res in self.run_parallel("member", "Mount", names):
            self.assertCallOk(res)
        for n in names:
            self.assertMounted(n)
        for res in self.run_parallel("member", "Unmount", names):
            self.assertCallOk(res)
        for n in names:
            self.assertNotMounted(n)

    def test_8_mounts_of_one_instance(self):
        fx = self.fx
        name = "one-for-eight"
        fx.make_instance(name)
        results = self.run_parallel("member", "Mount", [name] * 8)
        ok = [r for r in results if r.ok]
        self.assertEqual(len(ok), 1, results)
        for r in results:
            if not r.ok:
                self.assertCallError(r, ERROR_PREFIX + "AlreadyMounted")
        self.assertMounted(name)  # exactly one overlay
        results = self.run_parallel("member", "Unmount", [name] * 8)
        self.assertEqual(len([r for r in results if r.ok]), 1, results)
        for r in results:
            if not r.ok:
                self.assertCallError(r, ERROR_PREFIX + "NotMounted")
        self.assertNotMounted(name)


class OwnNamespaceTest(ServiceTest):
    """The daemon in a mount namespace of its own (unshare --mount), HostPid
    at this process: the mount lands in this namespace, not the daemon's."""

    def test_mount_lands_in_host_namespace(self):
        fx = self.fx
        daemon_pid = fx.daemon_proc.pid  # unshare execs the daemon: same pid
        self.assertNotEqual(os.readlink("/proc/%d/ns/mnt" % daemon_pid),
                            os.readlink("/proc/self/ns/mnt"))
        name = "own-ns"
        fx.make_instance(name)
        self.assertCallOk(fx.call("member", "Mount", name))
        self.assertMounted(name)
        self.assertEqual(overlays_on(fx.merged(name), daemon_pid), [])
        res = fx.busctl("member", "GetStatus", "s", name, json_out=True)
        self.assertCallOk(res)
        self.assertEqual(json.loads(res.stdout)["data"][0], True)
        self.assertCallOk(fx.call("member", "Unmount", name))
        self.assertNotMounted(name)


if __name__ == "__main__":
    unittest.main()
