#!/usr/bin/python3
"""Runs dbus-tier test classes inside a private mount namespace with the
fixture of l4m_fixture.py.

  run_dbus_tests.py [--daemon PATH --executor PATH] [--daemon-own-namespace]
                    MODULE.CLASS...

Re-executes itself under `unshare --mount --propagation private` first, so
every mount the fixture makes (and every overlay the daemon makes, HostPid
being this process) stays in that namespace and dies with it.
"""

import argparse
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--daemon")
    parser.add_argument("--executor")
    parser.add_argument("--daemon-own-namespace", action="store_true")
    parser.add_argument("--repo", default=REPO)
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("tests", nargs="+", help="MODULE.CLASS or MODULE.CLASS.METHOD")
    args = parser.parse_args()

    if os.environ.get("L4MT_PRIVATE_NS") != str(os.getpid()):
        if os.geteuid() != 0:
            # ctest's SKIP_RETURN_CODE: a developer's non-root run skips.
            print("the dbus tier must run as root: skipped")
            sys.exit(77)
        env = dict(os.environ, L4MT_PRIVATE_NS=str(os.getpid()))
        # unshare execs python directly: same pid, which the marker names.
        os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private",
                               sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)

    import signal
    # ctest's timeout or ^C: still stop the bus, polkitd and the daemon.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    import l4m_fixture
    for path in (args.daemon, args.executor):
        if path is not None and not os.access(path, os.X_OK):
            sys.exit("not executable: %s" % path)
    fixture = l4m_fixture.Fixture(args.repo, daemon=args.daemon, executor=args.executor,
                                  daemon_own_namespace=args.daemon_own_namespace,
                                  verbose=args.verbose)
    result = None
    try:
        fixture.start()
        l4m_fixture.CURRENT = fixture
        suite = unittest.defaultTestLoader.loadTestsFromNames(args.tests)
        result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    finally:
        if result is None or not result.wasSuccessful() or args.verbose:
            for name in ("dbus", "polkitd", "daemon"):
                text = fixture.log(name) if fixture.tmp else ""
                if text.strip():
                    print("----- %s log (last 4000 chars) -----\n%s" % (name, text[-4000:]))
        fixture.stop()
    n = result.testsRun
    failed = len(result.failures) + len(result.errors)
    skipped = len(result.skipped)
    print("%d passed, %d failed" % (n - failed - skipped, failed))
    if n == 0 or skipped:
        sys.exit("no test ran, or tests were skipped")
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
