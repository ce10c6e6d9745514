"""Common base of the dbus-tier test classes."""

import unittest

import l4m_fixture


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
