"""Common base of the dbus-tier test classes."""

import os
import unittest

import l4m_fixture
from l4m_fixture import LOWER_FILE, LOWER_TEXT, overlays_on


class FixtureTest(unittest.TestCase):
    @property
    def fx(self):
        return l4m_fixture.CURRENT

    def assertCallOk(self, res):
        self.assertEqual(res.returncode, 0, "call failed: %r" % res)

    def assertCallError(self, res, name, message_contains=None):
        self.assertNotEqual(res.returncode, 0, "call succeeded: %r" % res)
        self.assertEqual(res.error_name, name, "wrong error: %r" % res)
        self.assertTrue(res.error_message, "error without message: %r" % res)
        if message_contains is not None:
            self.assertIn(message_contains, res.error_message)

    def assertMounted(self, name, pid="self"):
        """One overlay of the instance on its merged, showing the lower."""
        mounts = overlays_on(self.fx.merged(name), pid)
        self.assertEqual(len(mounts), 1, "expected one overlay on %s, mount table has %r"
                         % (self.fx.merged(name), mounts))
        self.assertEqual(mounts[0][2], "left4me:" + name)
        with open(os.path.join(self.fx.merged(name), LOWER_FILE)) as f:
            self.assertEqual(f.read(), LOWER_TEXT)

    def assertNotMounted(self, name, pid="self"):
        self.assertEqual(overlays_on(self.fx.merged(name), pid), [])
        self.assertFalse(os.path.exists(os.path.join(self.fx.merged(name), LOWER_FILE)))

    def root_unmount(self, name):
        self.assertCallOk(self.fx.call("root", "Unmount", name))
        self.assertNotMounted(name)
