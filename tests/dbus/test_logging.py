"""Where left4me-overlayd's records go when nobody gives it a journal
(issue: "never lost to a /dev/null stderr"): bus activation by dbus-daemon
alone starts it with stderr on /dev/null and, on a host without journald,
no journal socket. Then every decision goes to syslog.

The daemon runs here in a mount namespace of its own whose /dev is a tmpfs
holding only the device nodes it needs (bound from the real /dev) and
/dev/log, a symlink to a datagram socket this test listens on; journald's
socket folder is hidden if it exists. Its stderr and stdout are /dev/null.
A denied call and an allowed one must both arrive, each with the instance
name, the caller and the outcome."""

import os
import re
import socket
import subprocess
import time

from l4m_base import FixtureTest
from l4m_fixture import BUS_NAME

# Runs in the daemon's new mount namespace: $1 the staging folder, $2 the
# socket, the rest the daemon's argv.
NAMESPACE_SETUP = r"""
set -eu
stage=$1 sock=$2
shift 2
mkdir -p "$stage/dev"
mount --rbind /dev "$stage/dev"
mount -t tmpfs -o mode=0755 l4mt-dev /dev
for n in null zero full random urandom tty; do
    : >"/dev/$n"
    mount --bind "$stage/dev/$n" "/dev/$n"
done
ln -s "$sock" /dev/log
if [ -e /run/systemd/journal ]; then
    mount -t tmpfs l4mt-no-journal /run/systemd/journal
fi
exec "$@"
"""

# <facility*8+priority>: LOG_DAEMON is 3.
SYSLOG_LINE = re.compile(r"^<(\d+)>.*?left4me-overlayd\[(\d+)\]: (.*)$", re.S)


class SyslogTest(FixtureTest):
    def setUp(self):
        fx = self.fx
        self.assertIsNotNone(fx.daemon_proc, "the fixture runs no daemon")
        # The fixture's daemon (stderr to a log file) makes way for ours.
        fx.daemon_proc.terminate()
        fx.daemon_proc.wait(15)
        fx.wait_for_name_gone(BUS_NAME)

        self.sock_path = os.path.join(fx.tmp, "syslog.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.listener.bind(self.sock_path)
        os.chmod(self.sock_path, 0o666)
        stage = os.path.join(fx.tmp, "logging-stage")
        os.makedirs(stage, exist_ok=True)
        argv = ["unshare", "--mount", "--propagation", "private",
                "sh", "-c", NAMESPACE_SETUP, "sh", stage, self.sock_path,
                fx.daemon_path, "--config", fx.config_path, "--executor", fx.executor_path,
                "--exit-idle-time", "0"]
        env = fx.client_env()
        env.pop("JOURNAL_STREAM", None)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=env)
        fx.wait_for_name(BUS_NAME, self.proc, "daemon")

    def tearDown(self):
        fx = self.fx
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        self.listener.close()
        fx.wait_for_name_gone(BUS_NAME)
        fx.start_daemon()  # the fixture's own again, as the other tests expect

    def records(self, want, timeout=20):
        """Syslog records until every predicate in want matched one."""
        seen = []
        pending = list(want)
        deadline = time.monotonic() + timeout
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail("records not found in syslog within %ss; got:\n%s"
                          % (timeout, "\n".join(seen)))
            self.listener.settimeout(left)
            try:
                data = self.listener.recv(65536)
            except socket.timeout:
                continue
            text = data.decode("utf-8", "replace")
            seen.append(text)
            pending = [p for p in pending if not p(text)]
        return seen

    def test_denied_and_allowed_calls_reach_syslog(self):
        fx = self.fx
        allowed, refused = "log-allowed", "log-refused"
        fx.make_instance(allowed)
        fx.make_instance(refused)
        res = fx.call("denied", "Mount", refused)
        self.assertEqual(res.error_name, "org.freedesktop.DBus.Error.AccessDenied", res)
        res = fx.call("member", "Mount", allowed)
        self.assertTrue(res.ok, res)
        try:
            def has(*parts):
                return lambda text: all(p in text for p in parts)
            seen = self.records([
                has("instance=" + refused, "event=denied", "outcome=AccessDenied",
                    "uid=%d" % fx.uid("denied")),
                has("instance=" + allowed, "event=authorized", "uid=%d" % fx.uid("member")),
                has("instance=" + allowed, "event=mounted", "outcome=ok"),
            ])
        finally:
            fx.call("member", "Unmount", allowed)
        for text in seen:
            m = SYSLOG_LINE.match(text)
            self.assertIsNotNone(m, text)
            self.assertEqual(int(m.group(1)) >> 3, 3, "not LOG_DAEMON: " + text)
            self.assertNotIn("\n", m.group(3).rstrip("\n"), text)
        # the daemon the records name is ours (unshare and sh exec it)
        self.assertTrue(any(SYSLOG_LINE.match(t).group(2) == str(self.proc.pid) for t in seen),
                        seen)
