"""Shared by the load and fault tests: the load clients (load_client.py,
run as the fixture's non-root member user) and the daemon's resource
figures. Runs on the fixture (tests/fixture/l4m_fixture.py) as is."""

import json
import os
import subprocess
import time

import l4m_fixture

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, "load_client.py")
PYTHON = "/usr/bin/python3"  # python3-dbus is installed for Debian's python


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def overlays_below(path):
    """Every overlay mounted at or below path, in this (the host's) namespace."""
    return [r for r in l4m_fixture.mountinfo()
            if r[1] == "overlay" and (r[0] == path or r[0].startswith(path + "/"))]


class LoadClients:
    """n clients, each alternating Mount/Unmount `pairs` times over its own
    slice of `instances` (disjoint: every call is legal, so any error is a
    finding unless a fault test caused it). With warmup > 0 every client
    stops after `warmup` pairs until go() is called."""

    def __init__(self, fx, instances, clients, pairs, warmup=0):
        self.procs = []
        for c in range(clients):
            mine = instances[c::clients]
            argv = [PYTHON, CLIENT, "--pairs", str(pairs), "--warmup", str(warmup)] + mine
            self.procs.append(fx.popen("member", argv, stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        self.warmup = warmup

    def _read(self, proc, event, timeout):
        line = proc.stdout.readline()
        if not line:
            proc.wait(timeout)
            raise AssertionError("load client %d ended (%s) before '%s': %s"
                                 % (proc.pid, proc.returncode, event, proc.stderr.read()))
        record = json.loads(line)
        if record["event"] != event:
            raise AssertionError("expected %s, got %r" % (event, record))
        return record

    def wait_warm(self, timeout=300):
        return sum(self._read(p, "warm", timeout)["ops"] for p in self.procs)

    def go(self):
        for p in self.procs:
            p.stdin.write("GO\n")
            p.stdin.flush()

    def wait_done(self, timeout=600):
        """[done record] of every client (ops, seconds, errors, mounted)."""
        records = []
        deadline = time.monotonic() + timeout
        for p in self.procs:
            records.append(self._read(p, "done", max(1, deadline - time.monotonic())))
            p.wait(max(1, deadline - time.monotonic()))
            if p.returncode != 0:
                raise AssertionError("load client exited %d: %s" % (p.returncode, p.stderr.read()))
            p.stdin.close()
            p.stdout.close()
            p.stderr.close()
        return records

    def kill(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
