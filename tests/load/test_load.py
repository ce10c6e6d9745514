"""Load through the bus with the real polkitd: clients
that are non-root members of group left4me (authorized by
50-left4me-overlay.rules) issue Mount/Unmount pairs across 64 instances,
each pair two requests to the executors. Afterwards: no error, the
daemon's open fds are the same, its RSS has not grown (by 1 MiB or more)
between the end of the warm-up (~1,000 operations) and the end, and no
overlay is left mounted.

Size: L4M_LOAD_CLIENTS (16) x L4M_LOAD_PAIRS pairs (500 for the full run:
16,000 operations) over L4M_LOAD_INSTANCES (64). CI runs a smaller number of
pairs (L4M_LOAD_CI_PAIRS, set in tests/load/CMakeLists.txt; L4M_LOAD_PAIRS
wins over it); the output says which size ran."""

import os
import time

from load_common import LoadClients, fd_count, overlays_below, rss_kib
from l4m_base import ServiceTest

FULL_PAIRS = 500


def env_int(name, default):
    return int(os.environ.get(name, default))


class LoadTest(ServiceTest):
    def test_mount_unmount_pairs_under_load(self):
        fx = self.fx
        clients = env_int("L4M_LOAD_CLIENTS", 16)
        pairs = env_int("L4M_LOAD_PAIRS", env_int("L4M_LOAD_CI_PAIRS", FULL_PAIRS))
        n_instances = env_int("L4M_LOAD_INSTANCES", 64)
        # ~1,000 operations of warm-up (16 clients x 31 pairs x 2 = 992):
        # allocator arenas, sd-bus and GLib caches, the polkit proxy settle.
        warmup = max(1, round(1000 / (2 * clients)))
        self.assertGreater(pairs, warmup, "L4M_LOAD_PAIRS must exceed the warm-up")
        names = ["load-%02d" % i for i in range(n_instances)]
        for n in names:
            fx.make_instance(n)
        pid = fx.daemon_proc.pid
        fds_before = fd_count(pid)
        rss_start = rss_kib(pid)

        load = LoadClients(fx, names, clients, pairs, warmup)
        try:
            t0 = time.monotonic()
            warm_ops = load.wait_warm()
            t_warm = time.monotonic()
            # No call is in flight now: every client waits for go().
            rss_warm = rss_kib(pid)
            fds_warm = fd_count(pid)
            load.go()
            t_go = time.monotonic()
            records = load.wait_done()
            t_end = time.monotonic()
        finally:
            load.kill()
        rss_end = rss_kib(pid)
        fds_after = fd_count(pid)

        ops = sum(r["ops"] for r in records)
        seconds = (t_warm - t0) + (t_end - t_go)
        errors = [e for r in records for e in r["errors"]]
        size = "full size" if pairs >= FULL_PAIRS else \
            "REDUCED size for CI (full: L4M_LOAD_PAIRS=%d)" % FULL_PAIRS
        print("\nload: %d clients x %d Mount/Unmount pairs over %d instances (%s)"
              % (clients, pairs, n_instances, size))
        print("load: %d operations in %.1f s = %.0f ops/s (%.0f pairs/s); errors: %d"
              % (ops, seconds, ops / seconds, ops / seconds / 2, len(errors)))
        print("load: daemon fds: %d before, %d after warm-up, %d after"
              % (fds_before, fds_warm, fds_after))
        print("load: daemon VmRSS: %d KiB at start, %d KiB after the first %d operations, "
              "%d KiB after the last; growth %+d KiB"
              % (rss_start, rss_warm, warm_ops, rss_end, rss_end - rss_warm))

        self.assertEqual(ops, clients * pairs * 2)
        self.assertEqual(errors, [], "unexpected errors (first 5): %r" % errors[:5])
        self.assertEqual(fds_after, fds_before, "the daemon's fd count changed")
        self.assertLess(rss_end - rss_warm, 1024, "the daemon's RSS grew by 1 MiB or more")
        for r in records:
            self.assertEqual(r["mounted"], [])
        self.assertEqual(overlays_below(fx.instances), [], "overlays left mounted")
        for n in names[:: max(1, n_instances // 8)]:
            self.assertNotMounted(n)
