"""left4me-overlayctl against left4me-overlayd on the fixture's private
system bus, judged by the real polkitd (README, "Tests").

The binary under test comes from $L4MT_CTL (set by tests/dbus/CMakeLists.txt).
Outcomes are checked in the mount table of this process's namespace (the
daemon's HostPid), in the exit status, and in the one-line error message."""

import json
import os
import re

from l4m_base import FixtureTest
import pty_session
from l4m_fixture import ADMIN_PASSWORD, USERS

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_AUTHORIZED, EXIT_UNREACHABLE = 0, 1, 2, 3, 4
ERROR = "org.left4me.Overlay1.Error."


def ctl_path():
    path = os.environ.get("L4MT_CTL", "")
    if not os.access(path, os.X_OK):
        raise AssertionError("L4MT_CTL does not name the left4me-overlayctl binary: %r" % path)
    return path


class CtlTest(FixtureTest):
    def setUp(self):
        self.ctl_bin = ctl_path()
        self.assertIsNotNone(self.fx.daemon_proc, "the fixture runs no daemon")
        self.assertIsNone(self.fx.daemon_proc.poll(), "the daemon has exited")

    def tearDown(self):
        self.assertIsNone(self.fx.daemon_proc.poll(),
                          "the daemon exited:\n" + self.fx.log("daemon")[-3000:])

    def ctl(self, role, *args, input=None):
        # stdin is a pipe here (never a terminal): the ctl starts no agent.
        return self.fx.run(role, [self.ctl_bin] + list(args), input=input or "")

    def assertExit(self, res, code):
        self.assertEqual(res.returncode, code, "exit status %d, expected %d: %r"
                         % (res.returncode, code, res))

    def assertOneLineError(self, res, verb_and_name, error_name):
        """stderr is exactly one line: 'left4me-overlayctl: VERB NAME: MESSAGE (ERROR)'."""
        lines = res.stderr.splitlines()
        self.assertEqual(len(lines), 1, res)
        m = re.fullmatch(r"left4me-overlayctl: (.+?): (.+) \(([A-Za-z0-9_.]+)\)", lines[0])
        self.assertIsNotNone(m, res)
        self.assertEqual(m.group(1), verb_and_name, res)
        self.assertEqual(m.group(3), error_name, res)
        self.assertTrue(m.group(2).strip(), res)


class CtlMemberTest(CtlTest):
    """The left4me member: mount, status, list, unmount, --json, errors."""

    def test_mount_status_list_unmount(self):
        fx = self.fx
        name = "ctl-member"
        mod1 = os.path.join(fx.root, "overlays", "mod1")
        fx.make_instance(name, lowerdirs=[mod1, fx.installation])

        res = self.ctl("member", "mount", name)
        self.assertExit(res, EXIT_OK)
        self.assertEqual(res.stderr, "")
        self.assertMounted(name)

        res = self.ctl("member", "status", name)
        self.assertExit(res, EXIT_OK)
        self.assertEqual(res.stdout,
                         " Instance: %s\n  Mounted: yes\n   Merged: %s\n"
                         "Lowerdirs: %s\n           %s\n"
                         % (name, fx.merged(name), mod1, fx.installation))

        res = self.ctl("member", "status", "--json", name)
        self.assertExit(res, EXIT_OK)
        self.assertEqual(res.stdout.count("\n"), 1, res)
        self.assertEqual(json.loads(res.stdout),
                         {"instance": name, "mounted": True, "merged": fx.merged(name),
                          "lowerdirs": [mod1, fx.installation]})

        res = self.ctl("member", "list", "--json")
        self.assertExit(res, EXIT_OK)
        listed = json.loads(res.stdout)
        self.assertIsInstance(listed, list)
        self.assertIn({"name": name, "mounted": True}, listed)
        self.assertEqual([e["name"] for e in listed], sorted(e["name"] for e in listed))

        res = self.ctl("member", "list")
        self.assertExit(res, EXIT_OK)
        lines = res.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "MOUNTED"])
        self.assertIn([name, "yes"], [line.split() for line in lines[1:]])

        res = self.ctl("member", "mount", name)
        self.assertExit(res, EXIT_FAILED)
        self.assertOneLineError(res, "mount " + name, ERROR + "AlreadyMounted")
        self.assertMounted(name)

        res = self.ctl("member", "unmount", name)
        self.assertExit(res, EXIT_OK)
        self.assertNotMounted(name)

        res = self.ctl("member", "status", "--json", name)
        self.assertExit(res, EXIT_OK)
        self.assertFalse(json.loads(res.stdout)["mounted"])
        res = self.ctl("member", "list", "--json")
        self.assertIn({"name": name, "mounted": False}, json.loads(res.stdout))

        # umount(8)'s word works too
        res = self.ctl("member", "umount", name)
        self.assertExit(res, EXIT_FAILED)
        self.assertOneLineError(res, "unmount " + name, ERROR + "NotMounted")

    def test_json_escapes_strings(self):
        # Lowerdir names are chosen by whoever writes below Root: quotes,
        # backslashes, a tab and non-ASCII must come out as valid JSON.
        fx = self.fx
        name = "ctl-json"
        weird = os.path.join(fx.root, "overlays", 'we"ird\\dir\tx-\u00e9\u6f22')
        os.mkdir(weird)
        # single quotes: instance.env takes '"' and '\\' literally inside them
        fx.make_instance(name, env_text="L4D2_LOWERDIRS='%s:%s'\n" % (weird, fx.installation))
        res = self.ctl("member", "--json", "status", name)
        self.assertExit(res, EXIT_OK)
        mine = json.loads(res.stdout)["lowerdirs"]
        # The same strings as busctl's own JSON encoder reads them off the
        # bus (the service may present paths escaped; the CLI must carry
        # whatever it sends, quotes and backslashes included, unchanged).
        ref = self.fx.busctl("member", "GetStatus", "s", name, json_out=True)
        self.assertEqual(ref.returncode, 0, ref)
        self.assertEqual(mine, json.loads(ref.stdout)["data"][2])
        self.assertEqual(len(mine), 2)
        self.assertIn('we"ird', mine[0])
        self.assertIn("\\", mine[0])
        self.assertEqual(mine[1], fx.installation)

    def test_service_errors(self):
        res = self.ctl("member", "status", "ctl-missing")
        self.assertExit(res, EXIT_FAILED)
        self.assertOneLineError(res, "status ctl-missing", ERROR + "NoSuchInstance")
        self.assertEqual(res.stdout, "")
        res = self.ctl("member", "mount", "ctl-missing")
        self.assertExit(res, EXIT_FAILED)
        self.assertOneLineError(res, "mount ctl-missing", ERROR + "NoSuchInstance")

    def test_bad_names_refused_before_the_bus(self):
        """The CLI checks names itself: exit 2, one escaped, bounded line,
        without touching the bus (here: no bus at all) or starting a daemon."""
        env = self.fx.client_env()
        env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/nonexistent/l4mt-no-bus"
        import subprocess
        for verb in ("mount", "unmount", "status"):
            for name, shown in (("a\nb", "'a\\x0ab'"), ("\x1b[31mred", "'\\x1b[31mred'"),
                                ("x" * 5000, "..."), ("bad.name", "'bad.name'"),
                                ("-x", None), ("caf\u00e9", "'caf\\xc3\\xa9'")):
                argv = [self.ctl_bin, verb] + (["--", name] if name.startswith("-") else [name])
                proc = subprocess.run(self.fx.as_user("member", argv), env=env,
                                      capture_output=True, text=True, timeout=30)
                self.assertEqual(proc.returncode, EXIT_USAGE, proc)
                self.assertEqual(proc.stdout, "")
                lines = proc.stderr.split("\n")
                self.assertEqual(len(lines), 2, proc)  # one line and its newline
                self.assertEqual(lines[1], "")
                self.assertTrue(lines[0].startswith("left4me-overlayctl: invalid instance name"),
                                proc)
                self.assertTrue(all(0x20 <= ord(c) < 0x7f for c in lines[0]), proc)
                self.assertLess(len(lines[0]), 250, proc)
                if shown:
                    self.assertIn(shown, lines[0])

    def test_list_default_no_legend_json_modes(self):
        fx = self.fx
        name = "ctl-modes"
        fx.make_instance(name)
        res = self.ctl("member")  # no verb: list
        self.assertExit(res, EXIT_OK)
        self.assertEqual(res.stdout.splitlines()[0].split(), ["NAME", "MOUNTED"])
        self.assertIn([name, "no"], [line.split() for line in res.stdout.splitlines()])
        res = self.ctl("member", "--no-legend")
        self.assertExit(res, EXIT_OK)
        rows = [line.split() for line in res.stdout.splitlines()]
        self.assertNotIn(["NAME", "MOUNTED"], rows)
        self.assertIn([name, "no"], rows)
        res = self.ctl("member", "--json=pretty", "status", name)
        self.assertExit(res, EXIT_OK)
        self.assertGreater(res.stdout.count("\n"), 3, res)
        self.assertEqual(json.loads(res.stdout)["instance"], name)
        res = self.ctl("member", "--json=short", "list")
        self.assertExit(res, EXIT_OK)
        self.assertEqual(res.stdout.count("\n"), 1, res)
        self.assertIn({"name": name, "mounted": False}, json.loads(res.stdout))
        res = self.ctl("member", "--json=pretty", "list")
        self.assertIn({"name": name, "mounted": False}, json.loads(res.stdout))

    def test_bash_completion(self):
        """Verbs, options and instance names (from ListInstances), through
        the completion file the package ships; nothing when the bus says no."""
        fx = self.fx
        fx.make_instance("ctl-compl-one")
        completion = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src",
                                  "ctl", "left4me-overlayctl.bash-completion")
        def complete(role, *words, env_extra=None):
            script = ("source /usr/share/bash-completion/bash_completion; source %s; "
                      "COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); "
                      "COMP_LINE=\"$*\"; COMP_POINT=${#COMP_LINE}; _left4me_overlayctl; "
                      "printf '%%s\\n' \"${COMPREPLY[@]}\"" % completion)
            env = fx.client_env()
            env.update(env_extra or {})
            import subprocess
            proc = subprocess.run(fx.as_user(role, ["bash", "-c", script, "bash"] + list(words)),
                                  env=env, capture_output=True, text=True, timeout=30)
            self.assertEqual(proc.returncode, 0, proc)
            return set(proc.stdout.split())

        # The first word runs: the completion asks the very program typed.
        ctl = self.ctl_bin
        self.assertEqual(complete("member", ctl, ""),
                         {"mount", "unmount", "status", "list", "migrate"})
        self.assertIn("--dry-run", complete("member", ctl, "--dr"))
        self.assertEqual(complete("member", ctl, "st"), {"status"})
        self.assertIn("--no-legend", complete("member", ctl, "--no"))
        self.assertEqual(complete("member", ctl, "--json="),
                         {"short", "pretty", "off"})
        self.assertIn("ctl-compl-one",
                      complete("member", ctl, "mount", "ctl-compl"))
        self.assertEqual(complete("member", ctl, "mount", "ctl-compl-one", ""),
                         set())
        # no bus: quietly nothing
        self.assertEqual(complete("member", ctl, "status", "",
                                  env_extra={"DBUS_SYSTEM_BUS_ADDRESS":
                                             "unix:path=/nonexistent/l4mt-no-bus"}), set())

    def test_usage(self):
        for args in (["frobnicate"], ["mount"], ["mount", "a", "b"], ["list", "a"],
                     ["status"], ["--bogus", "list"], ["mount", "--json", "a"],
                     ["--json=yaml", "list"], ["fr\x1bob"]):
            res = self.ctl("member", *args)
            self.assertExit(res, EXIT_USAGE)
            self.assertIn("left4me-overlayctl: ", res.stderr)
            self.assertIn("--help", res.stderr)
            self.assertEqual(res.stderr.count("\n"), 1, res)  # one line
            self.assertNotIn("\x1b", res.stderr)
        res = self.ctl("member", "--help")
        self.assertExit(res, EXIT_OK)
        for word in ("mount", "unmount", "status", "list", "--no-ask-password", "--json",
                     "--json[=MODE]", "--no-legend", "Exit status"):
            self.assertIn(word, res.stdout)
        res = self.ctl("member", "--version")
        self.assertExit(res, EXIT_OK)
        self.assertRegex(res.stdout, r"^left4me-overlayctl \d+\.\d+\.\d+\S*\n$")

    def test_service_unreachable(self):
        env = self.fx.client_env()
        env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/nonexistent/l4mt-no-bus"
        import subprocess
        proc = subprocess.run(self.fx.as_user("member", [self.ctl_bin, "list"]), env=env,
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, EXIT_UNREACHABLE, proc)
        self.assertIn("cannot connect to the system bus", proc.stderr)


class CtlAuthorizationTest(CtlTest):
    """Callers polkit does not simply allow: exit status 3, nothing mounted."""

    def test_non_member_no_ask_password(self):
        name = "ctl-noask"
        self.fx.make_instance(name)
        for verb in ("mount", "unmount"):
            res = self.ctl("other", "--no-ask-password", verb, name)
            self.assertExit(res, EXIT_NOT_AUTHORIZED)
            self.assertOneLineError(res, "%s %s" % (verb, name),
                                    "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired")
        self.assertNotMounted(name)

    def test_non_member_without_terminal(self):
        # Asking is allowed, but stdin is no terminal: no agent is started,
        # polkit finds none and says no.
        name = "ctl-notty"
        self.fx.make_instance(name)
        res = self.ctl("other", "mount", name)
        self.assertExit(res, EXIT_NOT_AUTHORIZED)
        self.assertOneLineError(res, "mount " + name, "org.freedesktop.DBus.Error.AccessDenied")
        self.assertNotMounted(name)

    def test_denied_user(self):
        name = "ctl-denied"
        self.fx.make_instance(name)
        for extra in ([], ["--no-ask-password"]):
            res = self.ctl("denied", *(extra + ["mount", name]))
            self.assertExit(res, EXIT_NOT_AUTHORIZED)
            self.assertOneLineError(res, "mount " + name,
                                    "org.freedesktop.DBus.Error.AccessDenied")
        self.assertNotMounted(name)

    def test_queries_need_the_status_action(self):
        name = "ctl-query"
        self.fx.make_instance(name)
        res = self.ctl("member", "--no-ask-password", "status", "--json", name)
        self.assertExit(res, EXIT_OK)
        self.assertFalse(json.loads(res.stdout)["mounted"])
        res = self.ctl("member", "list", "--json")
        self.assertExit(res, EXIT_OK)
        self.assertIn({"name": name, "mounted": False}, json.loads(res.stdout))
        res = self.ctl("other", "--no-ask-password", "status", "--json", name)
        self.assertExit(res, EXIT_NOT_AUTHORIZED)
        self.assertEqual(res.stdout, "")
        res = self.ctl("denied", "list", "--json")
        self.assertExit(res, EXIT_NOT_AUTHORIZED)
        self.assertEqual(res.stdout, "")


def PtySession(fx, role, argv):
    """argv run as role in a new pty with nothing else in it: whatever asks
    for a password there was started by the program itself."""
    return pty_session.PtySession(fx.as_user(role, argv), fx.client_env())


def agents_for_process(pid):
    """pids of pkttyagent processes registered for process pid (the ctl
    passes `--process PID`). Not "every agent of the user": the other dbus
    tests may run at the same time, with the same uids."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if (cmd and cmd[0].endswith(b"pkttyagent") and b"--process" in cmd
                and cmd.index(b"--process") + 1 < len(cmd)
                and cmd[cmd.index(b"--process") + 1] == str(pid).encode()):
            found.append(int(entry))
    return found


class CtlAgentTest(CtlTest):
    """The ctl starts polkit's text agent for itself in the terminal; the
    test types the admin's password there."""

    def test_password_prompt_in_terminal(self):
        fx = self.fx
        name = "ctl-agent"
        fx.make_instance(name)
        with PtySession(fx, "other", [self.ctl_bin, "mount", name]) as s:
            self.assertTrue(s.expect(rb"Password:"), s.text())
            self.assertIn("AUTHENTICATING FOR org.left4me.overlay.mount", s.text())
            self.assertIn("mount the overlay of the left4me instance %s." % name, s.text())
            self.assertIn("(%s)" % USERS["admin"], s.text())
            self.assertNotEqual(agents_for_process(s.pid), [])
            s.send(ADMIN_PASSWORD)
            self.assertEqual(s.wait(), EXIT_OK, s.text())
            self.assertIn("AUTHENTICATION COMPLETE", s.text())
        self.assertMounted(name)
        # the ctl stopped its agent on the way out
        self.assertEqual(agents_for_process(s.pid), [])

        with PtySession(fx, "other", [self.ctl_bin, "unmount", name]) as s:
            self.assertTrue(s.expect(rb"Password:"), s.text())
            self.assertIn("AUTHENTICATING FOR org.left4me.overlay.unmount", s.text())
            s.send(ADMIN_PASSWORD)
            self.assertEqual(s.wait(), EXIT_OK, s.text())
        self.assertNotMounted(name)

    def test_status_and_list_prompt_like_mount(self):
        fx = self.fx
        name = "ctl-agent-status"
        fx.make_instance(name)
        with PtySession(fx, "other", [self.ctl_bin, "status", "--json", name]) as s:
            self.assertTrue(s.expect(rb"Password:"), s.text())
            self.assertIn("AUTHENTICATING FOR org.left4me.overlay.status", s.text())
            s.send(ADMIN_PASSWORD)
            self.assertEqual(s.wait(), EXIT_OK, s.text())
            self.assertIn('"mounted":false', s.text().replace(" ", ""))
        with PtySession(fx, "other", [self.ctl_bin, "list"]) as s:
            self.assertTrue(s.expect(rb"Password:"), s.text())
            self.assertIn("AUTHENTICATING FOR org.left4me.overlay.status", s.text())
            s.send(ADMIN_PASSWORD)
            self.assertEqual(s.wait(), EXIT_OK, s.text())
            self.assertIn(name, s.text())
        self.assertEqual(agents_for_process(s.pid), [])

    def test_wrong_password(self):
        fx = self.fx
        name = "ctl-agent-wrong"
        fx.make_instance(name)
        with PtySession(fx, "other", [self.ctl_bin, "mount", name]) as s:
            self.assertTrue(s.expect(rb"Password:"), s.text())
            s.send("not-the-password")
            self.assertEqual(s.wait(), EXIT_NOT_AUTHORIZED, s.text())
            self.assertIn("AUTHENTICATION FAILED", s.text())
            self.assertRegex(s.text(), r"left4me-overlayctl: mount %s: .+ "
                             r"\(org\.freedesktop\.DBus\.Error\.AccessDenied\)" % name)
        self.assertNotMounted(name)
        self.assertEqual(agents_for_process(s.pid), [])

    def test_no_ask_password_in_terminal_starts_no_agent(self):
        fx = self.fx
        name = "ctl-agent-noask"
        fx.make_instance(name)
        with PtySession(fx, "other", [self.ctl_bin, "--no-ask-password", "mount", name]) as s:
            self.assertEqual(s.wait(), EXIT_NOT_AUTHORIZED, s.text())
            self.assertNotIn("Password:", s.text())
            self.assertIn("InteractiveAuthorizationRequired", s.text())
        self.assertNotMounted(name)

    def test_member_in_terminal_is_not_asked(self):
        fx = self.fx
        name = "ctl-agent-member"
        fx.make_instance(name)
        with PtySession(fx, "member", [self.ctl_bin, "mount", name]) as s:
            self.assertEqual(s.wait(), EXIT_OK, s.text())
            self.assertNotIn("Password:", s.text())
        self.assertMounted(name)
        res = self.ctl("member", "unmount", name)
        self.assertExit(res, EXIT_OK)
        self.assertNotMounted(name)
