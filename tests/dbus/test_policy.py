"""Our polkit actions and rules, and our bus policy, judged by the real
polkitd and dbus-daemon of the fixture (no left4me-overlayd needed)."""

import subprocess
import unittest

import l4m_fixture
from l4m_base import FixtureTest

MOUNT = "org.left4me.overlay.mount"
UNMOUNT = "org.left4me.overlay.unmount"

# pkcheck(1) exit codes
AUTHORIZED, NOT_AUTHORIZED, CHALLENGE = 0, 1, 2


class PolkitPolicyTest(FixtureTest):
    """pkcheck, run as root (details need a root checker), for a process of
    each test user."""

    def pkcheck(self, role, action, instance="inst1"):
        sleeper = self.fx.popen(role, ["sleep", "60"])
        try:
            # The subject must be the user's process, not setpriv before it
            # dropped root (polkit authorizes uid 0 for everything).
            self.fx.wait_for_exec(sleeper.pid, "sleep", self.fx.uid(role))
            res = subprocess.run(["pkcheck", "--action-id", action, "--process", str(sleeper.pid),
                                  "--detail", "instance", instance],
                                 capture_output=True, text=True, timeout=20, env=self.fx.client_env())
        finally:
            sleeper.kill()
            sleeper.wait()
        return res

    def test_actions_are_registered(self):
        res = subprocess.run(["pkaction", "--verbose", "--action-id", MOUNT],
                             capture_output=True, text=True, timeout=20, env=self.fx.client_env())
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertRegex(res.stdout, r"vendor:\s+left4me\n")
        self.assertRegex(res.stdout, r"implicit any:\s+auth_admin\n")
        self.assertRegex(res.stdout, r"implicit inactive:\s+auth_admin\n")
        self.assertRegex(res.stdout, r"implicit active:\s+auth_admin_keep\n")
        res = subprocess.run(["pkaction", "--verbose", "--action-id", UNMOUNT],
                             capture_output=True, text=True, timeout=20, env=self.fx.client_env())
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertRegex(res.stdout, r"implicit any:\s+auth_admin\n")

    def test_member_of_left4me_is_allowed_without_password(self):
        for action in (MOUNT, UNMOUNT):
            res = self.pkcheck("member", action)
            self.assertEqual(res.returncode, AUTHORIZED, (action, res.stdout, res.stderr))

    def test_non_member_needs_admin_password(self):
        for action in (MOUNT, UNMOUNT):
            res = self.pkcheck("other", action)
            self.assertEqual(res.returncode, CHALLENGE, (action, res.stdout, res.stderr))

    def test_admin_too_must_authenticate(self):
        res = self.pkcheck("admin", MOUNT)
        self.assertEqual(res.returncode, CHALLENGE, (res.stdout, res.stderr))

    def test_denied_user_is_refused(self):
        for action in (MOUNT, UNMOUNT):
            res = self.pkcheck("denied", action)
            self.assertEqual(res.returncode, NOT_AUTHORIZED, (action, res.stdout, res.stderr))

    def test_rule_grants_only_our_actions(self):
        res = self.pkcheck("member", "org.freedesktop.policykit.exec")
        self.assertEqual(res.returncode, CHALLENGE, (res.stdout, res.stderr))


class PolkitAgentTest(FixtureTest):
    """The fixture's password path: a non-member asks polkitd itself
    (CheckAuthorization for its own process, interaction allowed), polkit's
    text agent prompts in a pty for the one admin's password."""

    # The shell that execs gdbus has the pid pkttyagent was registered for.
    CHECK = ("exec gdbus call --system --dest org.freedesktop.PolicyKit1 "
             "--object-path /org/freedesktop/PolicyKit1/Authority "
             "--method org.freedesktop.PolicyKit1.Authority.CheckAuthorization "
             "\"('unix-process', {'pid': <uint32 $$>, 'start-time': <uint64 0>})\" "
             "%s \"@a{ss} {}\" 1 ''")

    def check_with_password(self, password, action=MOUNT):
        with self.fx.agent_session("other", ["sh", "-c", self.CHECK % action]) as s:
            self.assertTrue(s.expect(rb"Password:"), s.text())
            self.assertIn("AUTHENTICATING FOR %s" % action, s.text())
            self.assertIn("Authenticating as: left4me dbus test admin (l4mt-admin)", s.text())
            s.send(password)
            self.assertEqual(s.wait(30), 0, s.text())
            return s.text()

    def test_admin_password_authorizes(self):
        text = self.check_with_password(l4m_fixture.ADMIN_PASSWORD)
        self.assertIn("AUTHENTICATION COMPLETE", text)
        self.assertIn("((true, false, @a{ss} {}),)", text)

    def test_wrong_password_does_not(self):
        text = self.check_with_password("wrong-password", UNMOUNT)
        self.assertIn("AUTHENTICATION FAILED", text)
        self.assertIn("((false, false, @a{ss} {}),)", text)


class BusPolicyTest(FixtureTest):
    """org.left4me.Overlay1.conf as loaded by the private system bus."""

    def request_name(self, role):
        return self.fx.run(role, ["gdbus", "call", "--system", "--dest", "org.freedesktop.DBus",
                                  "--object-path", "/org/freedesktop/DBus",
                                  "--method", "org.freedesktop.DBus.RequestName",
                                  l4m_fixture.BUS_NAME, "0"])

    def test_non_root_cannot_own_the_name(self):
        for role in ("member", "other", "admin"):
            res = self.request_name(role)
            self.assertNotEqual(res.returncode, 0, res)
            self.assertIn("org.freedesktop.DBus.Error.AccessDenied", res.stderr)

    def test_root_can_own_the_name(self):
        self.assertFalse(self.fx.name_has_owner(l4m_fixture.BUS_NAME))
        res = self.request_name("root")
        self.assertEqual(res.returncode, 0, res)
        self.assertEqual(res.stdout.strip(), "(uint32 1,)")  # PRIMARY_OWNER


if __name__ == "__main__":
    unittest.main()
