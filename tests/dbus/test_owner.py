"""What the instance owner (the host manager, group left4me) can do from a
user and mount namespace of its own made before the service mounts
(`setpriv` to its uid, then `unshare -Urm`): rename the live merged away and
make a new one, move a live overlay to where an allowed root belongs, remove
merged (which detaches the host's overlay). Through the real bus and
polkitd: Mount refuses a second overlay, status and list follow the overlay
wherever it is, Unmount reaches it, and every change is signalled. And an
admin's bind of a live overlay: the same overlay, not a second one."""

import os
import re
import subprocess

import l4m_fixture
from l4m_fixture import ERROR_PREFIX, LOWER_FILE, mountinfo
from l4m_base import ServiceTest, SignalListener

# Reads "OP A [B]" lines, answers "rc N" for each: a shell in the owner's
# own user and mount namespace, where the host's later mounts are no mount
# points (unshare makes its mounts private).
OWNER_SHELL = r'''
echo ready
while read op a b; do
  case "$op" in
    mv) mv -T -- "$a" "$b" ;;
    mkdir) mkdir -- "$a" ;;
    rmdir) rmdir -- "$a" ;;
    *) false ;;
  esac
  echo "rc $?"
done
'''


class OwnerShell:
    def __init__(self, fx):
        self.proc = fx.popen("member", ["unshare", "-Urm", "sh", "-c", OWNER_SHELL],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, bufsize=1)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise AssertionError("owner namespace did not start: %r %r"
                                 % (line, self.proc.stderr.read()))

    def do(self, *words):
        self.proc.stdin.write(" ".join(words) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().strip()
        return int(line.split()[1]) if line.startswith("rc ") else -1

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(10)


class OwnerNamespaceTest(ServiceTest):
    def setUp(self):
        super().setUp()
        fx = self.fx
        # The demo layout: the host manager owns Root and what is in it.
        uid, gid = fx.users["member"][1], fx.users["member"][2]
        for top, dirs, files in os.walk(fx.root):
            os.lchown(top, uid, gid)
            for f in dirs + files:
                os.lchown(os.path.join(top, f), uid, gid)

    def overlays_of(self, name):
        return [r[0] for r in mountinfo() if r[1] == "overlay" and r[2] == "left4me:" + name]

    def status(self, name):
        res = self.fx.call("member", "GetStatus", name)
        self.assertCallOk(res)
        m = re.match(r"\((true|false), '([^']*)',", res.stdout.strip())
        self.assertIsNotNone(m, res.stdout)
        return m.group(1) == "true", m.group(2)

    def signals_for(self, listener, name):
        return [m.group(1) == "true" for line in listener.seen
                for m in [re.search(r"org\.left4me\.Overlay1\.MountChanged \('%s', (true|false)\)"
                                    % re.escape(name), line)] if m]

    def test_the_daemon_says_which_watcher_runs(self):
        # fanotify mount events from Linux 6.15, the statmount table (with
        # the mount source) from 6.13, else the fallbacks.
        version = tuple(int(x) for x in re.match(r"(\d+)\.(\d+)", os.uname().release).groups())
        expected = ("fanotify statmount" if version >= (6, 15) else
                    "poll statmount" if version >= (6, 13) else "poll mountinfo")
        self.assertIn("watching the host's mounts: " + expected, self.fx.log("daemon"))

    def test_hundred_rename_and_mount_rounds_end_with_one_overlay(self):
        fx = self.fx
        name = "owner-rounds"
        inst = fx.make_instance(name)
        os.chown(inst, fx.uid("member"), -1)
        for sub in ("merged", "upper", "work"):
            os.chown(os.path.join(inst, sub), fx.uid("member"), -1)
        owner = OwnerShell(fx)
        try:
            self.assertCallOk(fx.call("member", "Mount", name))
            for i in range(100):
                self.assertEqual(owner.do("mv", inst + "/merged", "%s/old-%d" % (inst, i)), 0)
                self.assertEqual(owner.do("mkdir", inst + "/merged"), 0)
                self.assertCallError(fx.call("member", "Mount", name),
                                     ERROR_PREFIX + "AlreadyMounted",
                                     "its overlay is at %s/old-0" % inst)
            self.assertEqual(self.overlays_of(name), [inst + "/old-0"])
            self.assertEqual(self.status(name), (True, inst + "/old-0"))
            res = fx.call("member", "ListInstances")
            self.assertIn("('%s', true)" % name, res.stdout)
            listener = SignalListener(fx, "other")
            try:
                self.assertCallOk(fx.call("member", "Unmount", name))
                self.assertTrue(listener.wait_for(r"MountChanged \('%s', false\)" % name, 20))
            finally:
                listener.close()
            self.assertEqual(self.overlays_of(name), [])
            self.assertEqual(self.status(name)[0], False)
        finally:
            owner.close()

    def test_removal_elsewhere_detaches_and_is_signalled(self):
        fx = self.fx
        name = "owner-rmdir"
        inst = fx.make_instance(name)
        os.chown(inst, fx.uid("member"), -1)
        os.chown(inst + "/merged", fx.uid("member"), -1)
        owner = OwnerShell(fx)
        listener = SignalListener(fx, "other")
        try:
            self.assertCallOk(fx.call("member", "Mount", name))
            self.assertTrue(listener.wait_for(r"MountChanged \('%s', true\)" % name, 20))
            busy = open(os.path.join(fx.merged(name), LOWER_FILE))
            try:
                self.assertCallError(fx.call("member", "Unmount", name), ERROR_PREFIX + "Busy")
                # Busy for the service, not for the kernel's rule: the
                # directory goes in the owner's namespace, the overlay with it.
                self.assertEqual(owner.do("rmdir", inst + "/merged"), 0)
                self.assertTrue(listener.wait_for(r"MountChanged \('%s', false\)" % name, 20),
                                listener.seen[-5:])
            finally:
                busy.close()
            self.assertEqual(self.overlays_of(name), [])
            self.assertEqual(owner.do("mkdir", inst + "/merged"), 0)
            self.assertEqual(self.status(name)[0], False)
            self.assertCallError(fx.call("member", "Unmount", name), ERROR_PREFIX + "NotMounted")
            self.assertEqual(self.signals_for(listener, name), [True, False])
        finally:
            listener.close()
            owner.close()

    def test_live_overlay_moved_to_an_allowed_root_is_refused(self):
        fx = self.fx
        victim, other = "owner-moved", "owner-lower"
        inst = fx.make_instance(victim)
        os.chown(inst, fx.uid("member"), -1)
        os.chown(inst + "/merged", fx.uid("member"), -1)
        overlays = os.path.join(fx.root, "overlays")
        fx.make_instance(other, lowerdirs=[overlays + "/mod1"])
        owner = OwnerShell(fx)
        try:
            self.assertCallOk(fx.call("member", "Mount", victim))
            os.mkdir(os.path.join(fx.merged(victim), "mod1"))  # copied up into the victim's upper
            # The allowed root "overlays" goes, the live overlay takes its place.
            self.assertEqual(owner.do("mv", overlays, overlays + ".real"), 0)
            self.assertEqual(owner.do("mv", inst + "/merged", overlays), 0)
            self.assertEqual(owner.do("mkdir", inst + "/merged"), 0)
            self.assertCallError(fx.call("member", "Mount", other), ERROR_PREFIX + "UnsafePath",
                                 "allowed root %s lies on the live overlay of instance %s"
                                 % (overlays, victim))
            self.assertEqual(self.overlays_of(other), [])
            self.assertEqual(self.status(victim), (True, overlays))
            self.assertCallOk(fx.call("member", "Unmount", victim))
            self.assertEqual(self.overlays_of(victim), [])
        finally:
            owner.do("rmdir", overlays)
            owner.do("mv", overlays + ".real", overlays)
            owner.close()

    def test_a_bind_of_the_live_overlay_is_the_same_overlay(self):
        # An admin exposes merged at another path: one overlay (one
        # superblock), not a second one. Status shows the original, Mount
        # refuses, Unmount is Busy naming the bind and unmounts nothing;
        # the bind gone, Unmount works; one signal each way.
        fx = self.fx
        name = "owner-bind"
        fx.make_instance(name)
        view = os.path.join(fx.tmp, "owner-bind-view")
        os.mkdir(view)
        listener = SignalListener(fx, "other")
        try:
            self.assertCallOk(fx.call("member", "Mount", name))
            l4m_fixture.mount(fx.merged(name), view, None, l4m_fixture.MS_BIND)
            try:
                self.assertEqual(self.status(name), (True, fx.merged(name)))
                self.assertCallError(fx.call("member", "Mount", name),
                                     ERROR_PREFIX + "AlreadyMounted")
                self.assertCallError(fx.call("member", "Unmount", name), ERROR_PREFIX + "Busy",
                                     view)
                self.assertEqual(sorted(self.overlays_of(name)), sorted([fx.merged(name), view]))
            finally:
                l4m_fixture.umount(view)
            self.assertCallOk(fx.call("member", "Unmount", name))
            self.assertEqual(self.overlays_of(name), [])
            self.assertTrue(listener.wait_for(r"MountChanged \('%s', false\)" % name, 20))
            self.assertEqual(self.signals_for(listener, name), [True, False])
        finally:
            listener.close()
