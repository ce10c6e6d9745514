#!/usr/bin/python3
"""left4me-overlay benchmarks (bench/README.md): figures, not tests.

    bench.py --build BUILD_DIR [--quick] [--json PATH] [--markdown PATH]

Runs inside the dbus tier's fixture (tests/fixture/l4m_fixture.py, imported,
not copied): a private mount namespace with a private system-like bus, the
real polkitd with our policy and rules, test users, and left4me-overlayd
running the helper from BUILD_DIR. Re-executes itself under `unshare
--mount` first, as run_dbus_tests.py does. Root only.

Every duration is measured inside a compiled client (bench/client_bench.cpp,
the generated sdbus-c++ proxy, connection made once) or the in-process core
bench (bench/core_bench.cpp), never around a process start-up, except where
the start-up is the thing measured (sudo, the bare helper, getfattr, the
daemon's start).

The daemon runs persistent executors (`left4me-overlay --serve FD`, its
children): CPU time is summed over the daemon and all its children, live
(their own /proc/PID/stat) and reaped (the daemon's cutime/cstime).
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "fixture"))

TAINT_ENTRIES = 100_000
LOWER_COUNTS = (1, 50, 500)
MOUNT_APIS = ("fd", "string", "legacy")
CLIENT_COUNTS = (1, 8, 32)
LIST_INSTANCES = 1000
FLOOD_CALLS = 8000
FLOOD_CONNECTIONS = (1, 16)  # 16 x MaxPendingCallsPerUser (32) > MaxPendingCalls (256)

# bench.py's stand-in for the old sudo helper (see Bench.write_old_helper).
OLD_HELPER = """#!/usr/bin/python3 -I
# Stand-in for the old sudo helper (bench only): what its commit message
# says it does, stdlib only. Usage: mount|umount NAME
import os
import re
import sys

ROOT = %(root)r
INSTANCES = %(instances)r
ALLOWED = %(allowed)r
NS = %(ns)r


def die(msg):
    sys.stderr.write("left4me-overlay: " + msg + "\\n")
    sys.exit(1)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("mount", "umount"):
        die("usage: mount|umount NAME")
    verb, name = sys.argv[1], sys.argv[2]
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        die("bad instance name")
    inst = os.path.join(INSTANCES, name)
    merged = os.path.join(inst, "merged")
    if verb == "umount":
        os.execv(%(nsenter)r, ["nsenter", "--mount=" + NS, "--", %(umount)r, merged])
    lowers = None
    with open(os.path.join(inst, "instance.env")) as f:
        for line in f:
            line = line.strip()
            if line.startswith("L4D2_LOWERDIRS="):
                lowers = line.split("=", 1)[1].strip().strip('"').split(":")
    if not lowers:
        die("no L4D2_LOWERDIRS")
    for lower in lowers:
        real = os.path.realpath(lower)
        if not any(real == a or real.startswith(a + "/") for a in ALLOWED):
            die("lowerdir not allowed: " + lower)
        if not os.path.isdir(real):
            die("lowerdir missing: " + lower)
    upper = os.path.join(inst, "upper")
    for top, dirs, files in os.walk(upper):
        for entry in [top] + [os.path.join(top, x) for x in files]:
            for attr in os.listxattr(entry, follow_symlinks=False):
                if attr.startswith("user.fuseoverlayfs."):
                    die("upperdir tainted by fuse-overlayfs: " + entry)
    opts = "lowerdir=%%s,upperdir=%%s,workdir=%%s" %% (":".join(lowers), upper,
                                                   os.path.join(inst, "work"))
    os.execv(%(nsenter)r, ["nsenter", "--mount=" + NS, "--", %(mount)r, "-t", "overlay",
                           "overlay", "-o", opts, merged])


main()
"""

OPS_EXECUTORS = "executors (operation and status)"
WATCH_EXECUTOR = "watching executor"

# The targets (figures on this machine, not tests).
TARGET_SHARE_MS = 1.5        # pair median - 2 polkit checks (same run)
TARGET_OLD_PATH_RATIO = 15.0  # pair >= 15x faster than the old path (same run)
TARGET_CPU_PAIR_MS = 1.0     # CPU per pair, daemon + executors
TARGET_ONE_CLIENT = 100.0    # pairs/s
TARGET_SCALING = 1.5         # 8 clients vs 1
TARGET_COLD_MS = 40.0        # daemon exec -> first Mount reply (root)
TARGET_STATUS_MS = 0.5       # GetStatus by root
TARGET_ROOT_PAIR_MS = 1.5    # Mount+Unmount by root (no polkit check)
TARGET_DAEMON_CPU_PAIR_MS = 1.0  # the daemon's own CPU per member pair
TARGET_HELD_MS = 1000.0      # a member's call while another user's checks are held
HELD_CHECKS = (8, 16)        # interactive checks a stalling agent holds open
TARGET_LIST_MS = 5.0         # ListInstances over 1,000 instances
TARGET_FLOOD_MOUNT_MS = 1000.0
OTHER_MOUNTS = (0, 250, 1000, 2000, 10000)
TARGET_FLOOD_RSS_KIB = 16 * 1024


def percentile(sorted_values, p):
    """Nearest-rank percentile (no interpolation: a value that occurred)."""
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def summary(ns_values):
    v = sorted(x / 1e6 for x in ns_values)
    return {"n": len(v), "median_ms": statistics.median(v), "p90_ms": percentile(v, 90),
            "p99_ms": percentile(v, 99), "min_ms": v[0], "max_ms": v[-1]}


def loadavg():
    return [round(x, 2) for x in os.getloadavg()]


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid):
    """(own, reaped children) CPU seconds of pid, user+system."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / CLK_TCK, (cutime + cstime) / CLK_TCK


def children_cpu_s():
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def children_of(pid):
    """Live children of pid (all its threads')."""
    out = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except FileNotFoundError:
        return out
    for tid in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out.extend(int(x) for x in f.read().split())
        except FileNotFoundError:
            pass
    return sorted(set(out))


def context_switches(pid):
    """Voluntary context switches of all pid's threads so far: each is a
    thread going to sleep to be woken again (a futex, a poll)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass  # a thread that ended: its switches are lost with it
    return total


def threads_of(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def processes_created():
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("processes "):
                return int(line.split()[1])
    raise RuntimeError("no processes line in /proc/stat")


class ForkTrace:
    """perf's sched:sched_process_fork tracepoint on the whole machine
    while a client runs: every process and thread created, by the parent's
    process. /proc/stat only counts; this says who (other engineers' builds
    fork too). Off when perf cannot record."""

    def __init__(self, bench, path="/tmp/l4m-bench-forks.data"):
        self.bench = bench
        self.path = path
        self.proc = None
        self.by = None

    def __enter__(self):
        if shutil.which("perf") is None:
            return self
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.proc = subprocess.Popen(["perf", "record", "-q", "-e", "sched:sched_process_fork",
                                      "-a", "-o", self.path], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        time.sleep(0.7)  # perf opens its events on every CPU; not timed
        return self

    def __exit__(self, *exc):
        if self.proc is None:
            return False
        # perf's own CPU time (it is our child) is no bench client's
        c0 = children_cpu_s()
        try:
            self.proc.send_signal(2)
            self.proc.wait(60)
            out = subprocess.run(["perf", "script", "-i", self.path, "-F", "pid"],
                                 capture_output=True, text=True)
        finally:
            self.bench.excluded_cpu_s += children_cpu_s() - c0
        if out.returncode != 0:
            return False
        fx = self.bench.fx
        names = {fx.daemon_proc.pid: "left4me-overlayd", fx.dbus_proc.pid: "dbus-daemon",
                 fx.polkitd_proc.pid: "polkitd"}
        for child in children_of(fx.daemon_proc.pid):
            names[child] = "executors"
        by = {"left4me-overlayd": 0, "executors": 0, "dbus-daemon": 0, "polkitd": 0,
              "rest of the machine": 0}
        for line in out.stdout.split():
            by[names.get(int(line), "rest of the machine")] += 1
        self.by = by
        return False


class Bench:
    def __init__(self, fx, build, quick):
        self.fx = fx
        self.client = os.path.join(build, "l4m-bench-client")
        self.core = os.path.join(build, "l4m-bench-core")
        self.helper = fx.executor_path
        self.quick = quick
        self.rows = []      # (key, label, summary or value dict)
        self.results = {"rows": {}, "notes": [], "processes": {}}
        self.last_processes = None  # "# processes D" of the last client run
        self.background_forks_per_s = None
        self.excluded_cpu_s = 0.0  # perf's, run by us: not the client's

    def n(self, full, quick):
        return quick if self.quick else full

    # --------------------------------------------------------------- running
    def run(self, role, argv, timeout=900):
        res = self.fx.run(role, argv, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError("%s failed (%s):\n%s%s" % (" ".join(argv), res.returncode,
                                                           res.stdout[-2000:], res.stderr[-4000:]))
        return res.stdout

    def samples(self, role, argv):
        """The client's figures, one per line; a line "# processes D" is the
        machine's process creations over the client's timed loop."""
        out = []
        self.last_processes = None
        self.last_comments = []
        for line in self.run(role, argv).splitlines():
            if line.startswith("# processes "):
                self.last_processes = int(line.split()[2])
            elif line.startswith("# "):
                self.last_comments.append(line[2:])
            elif line.strip():
                out.append(int(line))
        return out

    def measure_background_forks(self, seconds=5.0):
        """Process creations per second on the machine while nothing of ours
        runs: other engineers' builds fork too, and /proc/stat counts all."""
        p0 = processes_created()
        time.sleep(seconds)
        rate = (processes_created() - p0) / seconds
        self.background_forks_per_s = rate
        self.results["background_forks_per_s"] = rate
        print("  background: %.1f process creations/s on the machine" % rate, flush=True)

    def processes_per_call(self, key, label, calls, samples_ns, executors_before, trace=None):
        """The /proc/stat delta over the client's timed loop, per call; the
        background expected in the same time, and whether the daemon's
        executors (its children) and threads are still the same."""
        delta = self.last_processes
        seconds = sum(samples_ns) / 1e9
        background = (self.background_forks_per_s or 0.0) * seconds
        executors_after = children_of(self.fx.daemon_proc.pid)
        row = {"label": label, "calls": calls, "delta": delta, "per_call": delta / calls,
               "loop_seconds": seconds, "background_expected": background,
               "per_call_minus_background": max(0.0, delta - background) / calls,
               "executors_before": executors_before, "executors_after": executors_after,
               "same_executors": executors_before == executors_after,
               "daemon_threads": threads_of(self.fx.daemon_proc.pid)}
        if trace is not None and trace.by is not None:
            # Over the whole client run (connection and warm-up included).
            row["traced_by_parent"] = trace.by
            print("    traced process creations by parent: %s" % trace.by, flush=True)
        self.results["processes"][key] = row
        print("    processes created: %d over %d calls (%.4f per call; %.1f expected from the "
              "background in %.1f s); executors %s -> %s"
              % (delta, calls, delta / calls, background, seconds, executors_before,
                 executors_after), flush=True)
        return row

    def cpu_snapshot(self):
        fx = self.fx
        d_own, d_reaped = proc_cpu_s(fx.daemon_proc.pid)
        ops, watch = d_reaped, 0.0  # a reaped executor's time: with the others
        for child in children_of(fx.daemon_proc.pid):
            try:
                with open("/proc/%d/cmdline" % child, "rb") as f:
                    watching = b"--watch" in f.read().split(b"\0")
                own = proc_cpu_s(child)[0]
            except FileNotFoundError:
                continue  # reaped since: its time is in d_reaped next time
            if watching:
                watch += own
            else:
                ops += own
        return {"bench client tree": children_cpu_s() - self.excluded_cpu_s,
                "dbus-daemon": proc_cpu_s(fx.dbus_proc.pid)[0],
                "polkitd": proc_cpu_s(fx.polkitd_proc.pid)[0],
                "left4me-overlayd": d_own, OPS_EXECUTORS: ops, WATCH_EXECUTOR: watch}

    def cpu_per_op(self, key, before, ops):
        """CPU time per operation of each process taking part: it grows much
        less than wall time with the other load on this shared machine
        (granularity: one clock tick, 10 ms, over the whole run)."""
        after = self.cpu_snapshot()
        per = {k: (after[k] - before[k]) * 1000.0 / ops for k in after}
        per["total"] = sum(per.values())
        self.results["rows"][key]["cpu_ms_per_op"] = per
        print("    CPU ms per op: " + ", ".join("%s %.3f" % kv for kv in per.items()), flush=True)
        return per

    def record(self, key, label, stats, **extra):
        stats = dict(stats, label=label, **extra)
        self.results["rows"][key] = stats
        med = stats.get("median_ms")
        print("  %-58s n=%-5s median %8.3f ms  p90 %8.3f  p99 %8.3f"
              % (label, stats.get("n"), med, stats.get("p90_ms"), stats.get("p99_ms")),
              flush=True)
        return stats

    # ----------------------------------------------------------------- setup
    def write_config(self, mount_api=None):
        """The fixture's config plus MountApi; the helper reads it per call,
        so the running daemon follows without a restart."""
        self.fx.write_config()
        if mount_api:
            with open(self.fx.config_path, "a") as f:
                f.write("MountApi=%s\n" % mount_api)

    def make_lowers(self, count):
        lowers = []
        base = os.path.join(self.fx.root, "overlays")
        for i in range(count):
            d = os.path.join(base, "l%03d" % i)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "f%03d.txt" % i), "w") as f:
                f.write("layer %d\n" % i)
            lowers.append(d)
        return lowers

    def make_taint_tree(self):
        """TAINT_ENTRIES entries below upper/: 10 x 10 x 10 directories
        (1,110 with the two upper levels), files spread over the 1,000
        leaves, 1 file in 100 with an unrelated user.* xattr (what a clean
        upper may carry), none with user.fuseoverlayfs.*: a full walk."""
        upper = os.path.join(self.fx.tmp, "taint", "upper")
        os.makedirs(upper)
        dirs = []
        for a in range(10):
            for b in range(10):
                for c in range(10):
                    dirs.append(os.path.join(upper, "d%d" % a, "e%d" % b, "g%d" % c))
        for d in dirs:
            os.makedirs(d)
        n_dirs = 10 + 100 + 1000
        n_files = TAINT_ENTRIES - n_dirs
        payload = b"x" * 64
        for i in range(n_files):
            path = os.path.join(dirs[i % len(dirs)], "file%06d.vpk" % i)
            with open(path, "wb") as f:
                f.write(payload)
            if i % 100 == 0:
                os.setxattr(path, "user.l4m.bench", b"clean")
        return upper

    # ------------------------------------------------------------ the figures
    def pair_bus(self):
        self.fx.make_instance("lat")
        n = self.n(1000, 200)
        executors = children_of(self.fx.daemon_proc.pid)
        before = self.cpu_snapshot()
        switches = context_switches(self.fx.daemon_proc.pid)
        with ForkTrace(self) as trace:
            raw = self.samples("member", [self.client, "pairs", "lat", str(n)])
        switches = context_switches(self.fx.daemon_proc.pid) - switches
        s = self.record("pair_bus", "Mount+Unmount via D-Bus (member, C++ proxy)", summary(raw),
                        daemon_sleeps_per_pair=switches / (n + 1))
        print("    the daemon's threads went to sleep %.1f times per pair" % (switches / (n + 1)))
        self.cpu_per_op("pair_bus", before, n + 1)
        self.processes_per_call("pair_bus", "Mount and Unmount by a member (2 calls per pair)",
                                2 * n, raw, executors, trace)
        return s

    def pair_bus_root(self):
        """The same pair by root: the daemon asks the bus who calls, but
        polkit is not asked (uid 0): the service's own machinery measured
        directly, not as a difference."""
        n = self.n(1000, 200)
        before = self.cpu_snapshot()
        switches = context_switches(self.fx.daemon_proc.pid)
        raw = self.samples("root", [self.client, "pairs", "lat", str(n)])
        switches = context_switches(self.fx.daemon_proc.pid) - switches
        s = self.record("pair_bus_root", "Mount+Unmount via D-Bus by root (no polkit check)",
                        summary(raw), daemon_sleeps_per_pair=switches / (n + 1))
        print("    the daemon's threads went to sleep %.1f times per pair" % (switches / (n + 1)))
        self.cpu_per_op("pair_bus_root", before, n + 1)
        return s

    def status_root(self):
        """GetStatus by root (no polkit check: uid 0), of an instance
        unmounted and mounted."""
        if not os.path.isdir(os.path.join(self.fx.instances, "lat")):
            self.fx.make_instance("lat")
        n = self.n(1000, 200)
        out = {}
        for mounted in (False, True):
            if mounted:
                res = self.fx.call("root", "Mount", "lat")
                if not res.ok:
                    raise RuntimeError("Mount lat: %r" % res)
            executors = children_of(self.fx.daemon_proc.pid)
            before = self.cpu_snapshot()
            with ForkTrace(self) as trace:
                raw = self.samples("root", [self.client, "status", "lat", str(n)])
            key = "status_root_mounted" if mounted else "status_root"
            label = "GetStatus by root (instance %s)" % ("mounted" if mounted else "not mounted")
            out[key] = self.record(key, label, summary(raw))
            self.cpu_per_op(key, before, n + 1)
            self.processes_per_call(key, label, n, raw, executors, trace)
            if mounted:
                self.fx.call("root", "Unmount", "lat")
        return out

    def list_instances(self):
        """ListInstances by root over LIST_INSTANCES instances in all (the
        other figures' instances included)."""
        have = len(os.listdir(self.fx.instances))
        for i in range(LIST_INSTANCES - have):
            self.fx.make_instance("many%04d" % i)
        assert len(os.listdir(self.fx.instances)) == LIST_INSTANCES
        n = self.n(300, 50)
        before = self.cpu_snapshot()
        raw = self.samples("root", [self.client, "list", str(n)])
        s = self.record("list_1000", "ListInstances by root, %d instances" % LIST_INSTANCES,
                        summary(raw))
        self.cpu_per_op("list_1000", before, n + 1)
        return s

    # ------------------------------------------------- the host's mount table
    def other_mounts(self, count):
        """Grows the namespace to `count` other overlays (read-only, two
        lowers, source "other"): mounts of no instance, as a host with
        containers or snaps has."""
        import l4m_fixture
        base = os.path.join(self.fx.tmp, "other-mounts")
        lowers = (os.path.join(base, "lower-a"), os.path.join(base, "lower-b"))
        for d in lowers:
            os.makedirs(d, exist_ok=True)
        while len(self.others) < count:
            d = os.path.join(base, "m%05d" % len(self.others))
            os.makedirs(d, exist_ok=True)
            l4m_fixture.mount("other", d, "overlay", 0, "lowerdir=%s:%s" % lowers)
            self.others.append(d)

    def drop_other_mounts(self):
        import l4m_fixture
        while self.others:
            l4m_fixture.umount(self.others.pop())

    def mount_table(self):
        """Pair (member), GetStatus of a mounted instance and ListInstances
        over LIST_INSTANCES instances (root), against 0 to 10,000 other
        mounts in the namespace; at 2,000, the watcher's CPU per pair and
        per 1,000 changes made outside the service, with fanotify mount
        events and with the POLLPRI fallback."""
        fx = self.fx
        self.others = []
        if not os.path.isdir(os.path.join(fx.instances, "lat")):
            fx.make_instance("lat")
        have = len(os.listdir(fx.instances))
        for i in range(LIST_INSTANCES - have):
            fx.make_instance("many%04d" % i)
        out = self.results.setdefault("mount_table", {})
        counts = OTHER_MOUNTS if not self.quick else OTHER_MOUNTS[:3]
        for count in counts:
            self.other_mounts(count)
            row = out.setdefault(str(count), {})
            raw = self.samples("member", [self.client, "pairs", "lat", str(self.n(300, 50))])
            row["pair"] = self.record("mt_pair_%d" % count, "pair (member), %d other mounts" % count,
                                      summary(raw))
            res = fx.call("root", "Mount", "lat")
            if not res.ok:
                raise RuntimeError("Mount lat: %r" % res)
            raw = self.samples("root", [self.client, "status", "lat", str(self.n(1000, 100))])
            row["status"] = self.record("mt_status_%d" % count,
                                        "GetStatus (root, mounted), %d other mounts" % count,
                                        summary(raw))
            fx.call("root", "Unmount", "lat")
            raw = self.samples("root", [self.client, "list", str(self.n(100, 20))])
            row["list"] = self.record("mt_list_%d" % count,
                                      "ListInstances (root, %d instances), %d other mounts"
                                      % (LIST_INSTANCES, count), summary(raw))
            if count == 2000:
                self.watcher_cpu(out)
        self.drop_other_mounts()
        self.interleaved(out)

    def interleaved(self, out):
        """The 15% targets compare medians a few minutes apart on a shared
        machine, where the load moves more than that between rows. So the
        same two sizes again, 0 and 2,000 other mounts, in alternating
        rounds, all samples of a size pooled: drift in the load then falls
        on both sides alike."""
        fx = self.fx
        pooled = {0: {"pair": [], "status": []}, 2000: {"pair": [], "status": []}}
        res = fx.call("root", "Mount", "lat")
        if not res.ok:
            raise RuntimeError("Mount lat: %r" % res)
        fx.call("root", "Unmount", "lat")
        for _ in range(self.n(6, 2)):
            for count in (0, 2000):
                if count:
                    self.other_mounts(count)
                else:
                    self.drop_other_mounts()
                pooled[count]["pair"] += self.samples(
                    "member", [self.client, "pairs", "lat", str(self.n(60, 20))])
                fx.call("root", "Mount", "lat")
                pooled[count]["status"] += self.samples(
                    "root", [self.client, "status", "lat", str(self.n(200, 50))])
                fx.call("root", "Unmount", "lat")
        self.drop_other_mounts()
        inter = out.setdefault("interleaved", {})
        for count, kinds in pooled.items():
            for kind, raw in kinds.items():
                inter["%s_%d" % (kind, count)] = self.record(
                    "mt_inter_%s_%d" % (kind, count),
                    "%s, %d other mounts, alternating rounds" % (kind, count), summary(raw))

    def watcher_cpu(self, out):
        import l4m_fixture
        fx = self.fx
        watch = out.setdefault("watcher", {})
        changes = self.n(1000, 200)
        scratch = os.path.join(fx.tmp, "churn")
        os.makedirs(scratch, exist_ok=True)
        for mode in ("fanotify", "poll"):
            fx.write_config(extra="MountWatch=%s\n" % mode)
            fx.restart_daemon()
            self.fx.call("root", "ListInstances")  # executors up
            pairs = self.n(300, 50)
            before = self.cpu_snapshot()
            self.samples("member", [self.client, "pairs", "lat", str(pairs)])
            after = self.cpu_snapshot()
            per_pair = (after[WATCH_EXECUTOR] - before[WATCH_EXECUTOR]) * 1000.0 / (pairs + 1)
            before = self.cpu_snapshot()
            for _ in range(changes // 2):
                l4m_fixture.mount("churn", scratch, "tmpfs", 0, None)
                l4m_fixture.umount(scratch)
            # A pair syncs the watcher: its reply follows every report up
            # to then, so the changes above have all been read.
            self.samples("member", [self.client, "pairs", "lat", "1"])
            after = self.cpu_snapshot()
            per_1000 = (after[WATCH_EXECUTOR] - before[WATCH_EXECUTOR]) * 1000.0 * 1000 / changes
            watch[mode] = {"cpu_ms_per_pair": per_pair, "cpu_ms_per_1000_changes": per_1000,
                           "other_mounts": len(self.others)}
            print("  watcher %-8s CPU %.3f ms per pair, %.1f ms per 1,000 outside changes "
                  "(%d other mounts)" % (mode, per_pair, per_1000, len(self.others)), flush=True)
        fx.write_config()
        fx.restart_daemon()

    def flood(self, conns):
        """FLOOD_ROUNDS floods (flood_round) in a row; RSS from before the
        first to after the last."""
        pid = self.fx.daemon_proc.pid
        rss0 = self.status_kib(pid)
        cpu0 = self.cpu_snapshot()
        rounds = [self.flood_round(conns) for _ in range(self.n(5, 2))]
        cpu = self.cpu_snapshot()
        time.sleep(1.0)  # let the last answers go; then the memory
        alive = self.fx.daemon_proc.poll() is None
        rss1 = self.status_kib(pid) if alive else None
        answered = alive and self.fx.call("root", "GetStatus", "victim").ok
        mounts = [ns for r in rounds for ns in r["mounts"]]
        errors = [e for r in rounds for e in r["errors"]]
        key = "flood_%d" % conns
        label = ("member's Mount during a flood of %d no-reply calls on %d connection%s"
                 % (FLOOD_CALLS, conns, "s" if conns > 1 else ""))
        row = {"connections": conns, "rounds": len(rounds), "calls": rounds[0]["calls"],
               "send_ms": statistics.median(r["send_ms"] for r in rounds),
               "drained_ms": statistics.median(r["drained_ms"] for r in rounds),
               "drain_errors": sorted(set(e for r in rounds for e in r["drain_errors"])),
               "member_mounts_ok": len(mounts), "member_mount_errors": errors[:20],
               "member_mount_error_count": len(errors),
               "daemon_alive": alive, "daemon_answers_after": bool(answered),
               "rss_before_kib": rss0, "rss_after_kib": rss1,
               "cpu_s": {k: cpu[k] - cpu0[k] for k in cpu}}
        if mounts:
            row.update(summary(mounts))
            self.record(key, label, summary(mounts))
        if rss1:
            row["rss_growth_kib"] = rss1["VmRSS"] - rss0["VmRSS"]
            row["hwm_growth_kib"] = rss1["VmHWM"] - rss0["VmHWM"]
        self.results.setdefault("flood", {})[key] = row
        print("    flood x%d: member Mounts %d ok, %d refused %s; daemon %s, RSS %s -> %s KiB "
              "(VmHWM %s -> %s); CPU s %s"
              % (len(rounds), len(mounts), len(errors), errors[:3], "alive" if alive else "DEAD",
                 rss0["VmRSS"], rss1 and rss1["VmRSS"], rss0["VmHWM"], rss1 and rss1["VmHWM"],
                 {k: round(v, 3) for k, v in row["cpu_s"].items()}), flush=True)
        return row

    def flood_round(self, conns):
        """A user with no rights (not in group left4me: polkit wants an admin
        password, which a no-interaction call cannot give) sends FLOOD_CALLS
        no-reply calls, GetStatus and Mount alternately, on `conns`
        connections, as fast as the bus takes them, while a member mounts
        and unmounts an instance back to back. Figures: the member's Mount
        latencies (or refusals) from the flood's midpoint until every flood
        message was read."""
        name = "victim"
        if not os.path.isdir(os.path.join(self.fx.instances, name)):
            self.fx.make_instance(name)
        victim = self.fx.popen("member", [self.client, "mountloop", name], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE)
        flooder = self.fx.popen("other", [self.client, "flood", name, str(FLOOD_CALLS),
                                          str(conns)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE)
        try:
            for proc, what in ((victim, "victim"), (flooder, "flooder")):
                line = proc.stdout.readline().strip()
                if line != "ready":
                    raise RuntimeError("%s said %r" % (what, line))
            flooder.stdin.write("go\n")
            flooder.stdin.flush()
            line = flooder.stdout.readline().strip()
            if line != "half":
                raise RuntimeError("flooder said %r" % line)
            victim.stdin.write("go\n")
            victim.stdin.flush()
            sent = flooder.stdout.readline().split()
            drained = flooder.stdout.readline().split()
            victim.stdin.write("stop\n")
            victim.stdin.flush()
            victim.stdin.close()
            lines = victim.stdout.read().splitlines()
            victim.wait(30)
            flooder.stdin.close()
            flooder.wait(30)
        finally:
            for proc in (victim, flooder):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if sent[0] != "sent" or drained[0] != "drained":
            raise RuntimeError("flooder: %r %r" % (sent, drained))
        mounts = [int(x) for x in lines if x and x[0].isdigit()]
        errors = [x for x in lines if x.startswith("E ")]
        row = {"calls": int(sent[1]), "send_ms": int(sent[2]) / 1e6,
               "drained_ms": int(drained[1]) / 1e6, "drain_errors": drained[2:],
               "mounts": mounts, "errors": errors}
        print("    flood on %d connection(s): %d calls sent in %.0f ms, all read by %.0f ms; "
              "member Mounts meanwhile: %s ms, refused: %s"
              % (conns, row["calls"], row["send_ms"], row["drained_ms"],
                 [round(m / 1e6, 1) for m in mounts], errors), flush=True)
        return row

    def status_kib(self, pid):
        with open("/proc/%d/status" % pid) as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        return {k: int(status[k].split()[0]) for k in ("VmRSS", "VmHWM", "RssAnon")}

    def restart_daemon(self, helper):
        import l4m_fixture
        self.fx.daemon_proc.terminate()
        self.fx.daemon_proc.wait(10)
        self.fx.wait_for_name_gone(l4m_fixture.BUS_NAME)
        self.fx.executor_path = helper
        self.fx.start_daemon()

    def pair_static(self):
        """The helper linked statically (bench/CMakeLists.txt): what the
        dynamic loader costs per exec (the old exec per operation), and the
        bus path with static executors (they start once: only start-up
        should move)."""
        static = os.path.join(os.path.dirname(self.client), "l4m-bench-helper-static")
        n = self.n(500, 100)
        before = self.cpu_snapshot()
        self.record("pair_helper_static", "Mount+Unmount, static helper exec'ed per op (root)",
                    summary(self.samples("root", [self.client, "spawnpair", "core", str(n),
                                                  static, "--config", self.fx.config_path])))
        self.cpu_per_op("pair_helper_static", before, n + 1)
        self.restart_daemon(static)
        try:
            n = self.n(1000, 200)
            before = self.cpu_snapshot()
            self.record("pair_bus_static", "Mount+Unmount via D-Bus, executors are the static helper",
                        summary(self.samples("member", [self.client, "pairs", "lat", str(n)])))
            self.cpu_per_op("pair_bus_static", before, n + 1)
        finally:
            self.restart_daemon(self.helper)

    def profile(self, seconds_pairs):
        """perf (cpu-clock: this VM has no hardware counters) over the whole
        machine while pairs go through the bus; the top symbols per program."""
        if not os.path.isdir(os.path.join(self.fx.instances, "lat")):
            self.fx.make_instance("lat")
        data = "/tmp/l4m-bench-perf.data"  # kept after the run, for perf report
        perf = subprocess.Popen(["perf", "record", "-q", "-a", "-g", "-e", "cpu-clock", "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            self.run("member", [self.client, "pairs", "lat", str(seconds_pairs)])
        finally:
            perf.send_signal(2)
            perf.wait(60)
        # By process (the machine is shared: percentages of the whole
        # recording mean little), relative to that process's samples.
        fx = self.fx
        procs = [("left4me-overlayd", fx.daemon_proc.pid)]
        for child in children_of(fx.daemon_proc.pid):
            with open("/proc/%d/cmdline" % child, "rb") as f:
                watching = b"--watch" in f.read().split(b"\0")
            procs.append(("watching executor" if watching else "executor", child))
        procs += [("polkitd", fx.polkitd_proc.pid), ("dbus-daemon", fx.dbus_proc.pid)]
        threads = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                                  "--pid", str(fx.daemon_proc.pid), "--sort", "pid",
                                  "--percentage", "relative", "-g", "none"],
                                 capture_output=True, text=True)
        print("---- perf: left4me-overlayd by thread ----")
        print("\n".join(l for l in threads.stdout.splitlines() if l.strip() and
                        not l.startswith("#"))[:2000])
        for name, pid in procs:
            rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                                  "--pid", str(pid), "--sort", "dso,sym", "-g", "none",
                                  "--percentage", "relative", "--percent-limit", "2"],
                                 capture_output=True, text=True)
            if rep.returncode != 0:
                print(rep.stderr[-2000:])
            print("---- perf: %s (pid %d) ----" % (name, pid))
            print("\n".join(l for l in rep.stdout.splitlines() if l.strip() and
                            not l.startswith("#"))[:2500])

    def pair_core(self):
        self.fx.make_instance("core")
        n = self.n(2000, 300)
        before = self.cpu_snapshot()
        s = self.record("pair_core", "Mount+Unmount in-process core (floor)",
                           summary(self.samples("root", [self.core, "--config", self.fx.config_path,
                                                         "pair", "core", str(n)])))
        self.cpu_per_op("pair_core", before, n)
        return s

    def pair_fork(self):
        n = self.n(1000, 200)
        before = self.cpu_snapshot()
        s = self.record("pair_fork", "Mount+Unmount, fork() per op, no exec (fork-server)",
                           summary(self.samples("root", [self.core, "--config", self.fx.config_path,
                                                         "forkpair", "core", str(n)])))
        self.cpu_per_op("pair_fork", before, n)
        return s

    def pair_vfork(self):
        n = self.n(1000, 200)
        before = self.cpu_snapshot()
        s = self.record("pair_vfork", "Mount+Unmount, clone(CLONE_VM|CLONE_VFORK) per op, no exec",
                        summary(self.samples("root", [self.core, "--config", self.fx.config_path,
                                                      "vforkpair", "core", str(n)])))
        self.cpu_per_op("pair_vfork", before, n)
        return s

    def pair_helper(self):
        n = self.n(500, 100)
        before = self.cpu_snapshot()
        s = self.record("pair_helper", "Mount+Unmount, helper exec'ed per op (root, no sudo)",
                           summary(self.samples("root", [self.client, "spawnpair", "core", str(n),
                                                         self.helper, "--config",
                                                         self.fx.config_path])))
        self.cpu_per_op("pair_helper", before, n + 1)
        return s

    def write_old_helper(self):
        """A stand-in for the old sudo helper, whose source we do not have:
        only its commit message says what it did, and this does that, stdlib only, on /usr/bin/python3: takes only the
        instance name, parses instance.env for L4D2_LOWERDIRS, checks every
        lowerdir against the allowed roots, refuses an upper with
        user.fuseoverlayfs.* xattrs, and execs `nsenter --mount=... -- mount
        -t overlay ...` (or umount) so the mount lands in the host
        namespace. Paths are baked in, as the old helper's were."""
        path = os.path.join(self.fx.tmp, "old-left4me-overlay")
        with open(path, "w") as f:
            f.write(OLD_HELPER % {
                "root": self.fx.root, "instances": self.fx.instances,
                "allowed": [os.path.join(self.fx.root, d) for d in ("installation", "overlays")],
                "ns": "/proc/%d/ns/mnt" % os.getpid(), "nsenter": shutil.which("nsenter"),
                "mount": shutil.which("mount"), "umount": shutil.which("umount")})
        os.chmod(path, 0o755)
        return path

    def pair_sudo(self):
        self.fx.make_instance("sudo")
        sudoers = os.path.join(self.fx.tmp, "sudoers.d")
        os.mkdir(sudoers, 0o755)
        rule = os.path.join(sudoers, "left4me-bench")
        old_helper = self.write_old_helper()
        # The packaged sudoers line's shape: the member may run the drop-in
        # as root without a password (here with the fixture's --config);
        # and the old helper (its stand-in).
        with open(rule, "w") as f:
            f.write("%s ALL=(root) NOPASSWD: %s\n" % (self.fx.users["member"][0], self.helper))
            f.write("%s ALL=(root) NOPASSWD: %s\n" % (self.fx.users["member"][0], old_helper))
        os.chmod(rule, 0o440)
        import l4m_fixture
        l4m_fixture.mount(sudoers, "/etc/sudoers.d", None, l4m_fixture.MS_BIND)
        n = self.n(500, 100)
        before = self.cpu_snapshot()
        s = self.record("pair_sudo", "Mount+Unmount via sudo left4me-overlay (member)",
                           summary(self.samples("member", [self.client, "spawnpair", "sudo",
                                                           str(n), "/usr/bin/sudo", "-n",
                                                           self.helper, "--config",
                                                           self.fx.config_path])))
        self.cpu_per_op("pair_sudo", before, n + 1)
        n = self.n(200, 50)
        before = self.cpu_snapshot()
        self.record("pair_old_helper", "Mount+Unmount via sudo + the old Python helper (stand-in: "
                    "nsenter + mount(8); member)",
                    summary(self.samples("member", [self.client, "spawnpair", "sudo", str(n),
                                                    "/usr/bin/sudo", "-n", old_helper])))
        self.cpu_per_op("pair_old_helper", before, n + 1)
        return s

    def polkit_check(self):
        holder = self.fx.popen("member", [self.client, "hold"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE)
        try:
            name = holder.stdout.readline().strip()
            if not name.startswith(":"):
                raise RuntimeError("hold gave no bus name")
            n = self.n(1000, 200)
            before = self.cpu_snapshot()
            s = self.record("polkit_check", "polkit CheckAuthorization alone (mount action)",
                            summary(self.samples("root", [self.client, "polkit", name,
                                                          "org.left4me.overlay.mount", "lat",
                                                          str(n)])))
            self.cpu_per_op("polkit_check", before, n + 1)
            # The same with a cancellation id, which libpolkit-gobject sends
            # for every check made with a GCancellable (the daemon's are):
            # does polkitd spend more on it?
            # Alternated with rows without one, so that a drift of polkitd's
            # cost over the run is not taken for the id's.
            for key, label, extra in (
                    ("polkit_check_cancel", "polkit CheckAuthorization alone, with a "
                     "cancellation id", ["bench"]),
                    ("polkit_check_again", "polkit CheckAuthorization alone, again", []),
                    ("polkit_check_cancel_again", "polkit CheckAuthorization alone, with a "
                     "cancellation id, again", ["bench2"])):
                before = self.cpu_snapshot()
                self.record(key, label, summary(self.samples(
                    "root", [self.client, "polkit", name, "org.left4me.overlay.mount", "lat",
                             str(n)] + extra)))
                self.cpu_per_op(key, before, n + 1)
        finally:
            holder.stdin.close()
            holder.wait(10)
        return s

    def held_checks(self, count):
        """A member's GetStatus and Mount+Unmount pairs while a user with no
        rights holds count interactive checks open: their polkit agent
        (tests/fixture/stalling_agent.py, registered for its own process)
        never answers, so each check it is asked about stays in polkit."""
        agent_py = os.path.join(REPO, "tests", "fixture", "stalling_agent.py")
        agent = self.fx.popen("other", [sys.executable, agent_py, str(count), "held"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            lines = []
            # Wait until the user's share of checks (2) has reached the agent.
            while "BEGIN 2" not in lines:
                line = agent.stdout.readline()
                if not line:
                    raise RuntimeError("stalling agent ended: %s %s" % (lines, agent.stderr.read()))
                lines.append(line.strip())
            if not os.path.isdir(os.path.join(self.fx.instances, "held")):
                self.fx.make_instance("held")
            n = self.n(300, 50)
            before = self.cpu_snapshot()
            key = "held%d_pair" % count
            self.record(key, "Mount+Unmount via D-Bus (member) while another user's agent holds "
                        "%d interactive checks open" % count,
                        summary(self.samples("member", [self.client, "pairs", "held", str(n)])))
            self.cpu_per_op(key, before, n + 1)
            before = self.cpu_snapshot()
            key = "held%d_status" % count
            self.record(key, "GetStatus via D-Bus (member) while another user's agent holds "
                        "%d interactive checks open" % count,
                        summary(self.samples("member", [self.client, "status", "held", str(n)])))
            self.cpu_per_op(key, before, n + 1)
            if agent.poll() is not None:
                raise RuntimeError("stalling agent ended during the figure")
        finally:
            agent.kill()
            agent.wait(10)

    def throughput(self):
        secs = self.n(8, 3)
        out = {}
        for k in CLIENT_COUNTS:
            for i in range(k):
                if not os.path.isdir(os.path.join(self.fx.instances, "tp%d" % i)):
                    self.fx.make_instance("tp%d" % i)
            pairs, elapsed = self.run("member", [self.client, "throughput", "tp", str(k),
                                                 str(secs)]).split()
            rate = int(pairs) / float(elapsed)
            out[k] = {"clients": k, "pairs": int(pairs), "seconds": float(elapsed),
                      "pairs_per_s": rate}
            print("  throughput %2d clients: %6d pairs in %.2f s = %7.1f pairs/s"
                  % (k, int(pairs), float(elapsed), rate), flush=True)
        self.results["throughput"] = out
        return out

    def taint(self):
        t0 = time.monotonic()
        upper = self.make_taint_tree()
        print("  (made %d entries in %.1f s)" % (TAINT_ENTRIES, time.monotonic() - t0), flush=True)
        count = sum(len(d) + len(f) for _, d, f in os.walk(upper))
        assert count == TAINT_ENTRIES, count
        n = self.n(20, 5)
        cpu0 = children_cpu_s()
        scan = self.record("taint_scan", "taint scan, 100,000 entries (core, tmpfs)",
                           summary(self.samples("root", [self.core, "taint", upper, str(n)])))
        scan["cpu_ms_per_scan"] = (children_cpu_s() - cpu0) * 1000.0 / n
        cpu0 = children_cpu_s()
        argv = ["getfattr", "-R", "-d", "-m", r"^user\.fuseoverlayfs\.", upper]
        times = []
        for _ in range(self.n(10, 3)):
            start = time.monotonic_ns()
            res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            times.append(time.monotonic_ns() - start)
            if res.returncode != 0 or res.stdout.strip():
                raise RuntimeError("getfattr: rc %d, %r %r" % (res.returncode, res.stdout[:200],
                                                              res.stderr[:200]))
        gf_cpu = (children_cpu_s() - cpu0) * 1000.0 / len(times)
        gf = self.record("taint_getfattr", "getfattr -R -d -m '^user\\.fuseoverlayfs\\.' (same tree)",
                         summary(times), cpu_ms_per_scan=gf_cpu)
        print("    CPU ms per walk (user+sys): scan %.1f, getfattr %.1f"
              % (scan["cpu_ms_per_scan"], gf_cpu), flush=True)
        return scan, gf

    def make_fuse_era_instance(self, name):
        """A fuse-era upper of 100,000 entries: 100 opaque directories
        (user.fuseoverlayfs.opaque and .wh..wh..opq), each with 998
        entries: 1 in 10 a fuse whiteout of a file of the lower, the others
        files with a user.fuseoverlayfs.origin xattr."""
        d = self.fx.make_instance(name)
        upper = os.path.join(d, "upper")
        lower = self.fx.installation
        for i in range(100):
            ud = os.path.join(upper, "d%d" % i)
            ld = os.path.join(lower, "mig-d%d" % i)
            os.mkdir(ud)
            os.makedirs(ld, exist_ok=True)
            os.setxattr(ud, "user.fuseoverlayfs.opaque", b"y")
            open(os.path.join(ud, ".wh..wh..opq"), "w").close()
            for j in range(998):
                n = "f%d" % j
                if j % 10 == 0:
                    with open(os.path.join(ld, n), "w") as f:
                        f.write("x")
                    open(os.path.join(ud, ".wh." + n), "w").close()
                else:
                    p = os.path.join(ud, n)
                    with open(p, "w") as f:
                        f.write("data")
                    os.setxattr(p, "user.fuseoverlayfs.origin", b"o")
        return d

    def migrate(self):
        """migrate_instance in the core (the executor's work, no bus): a
        100,000-entry fuse-era upper (dry run, the conversion, a run over
        the converted upper), an upper holding a 1 TiB sparse file (1 MiB
        of data), and one holding 512 MiB of data (the verification's
        bytes per second)."""
        import l4m_fixture
        cfg = ["--config", self.fx.config_path]
        t0 = time.monotonic()
        self.make_fuse_era_instance("mig100k")
        print("  (made the 100,000-entry upper in %.1f s)" % (time.monotonic() - t0), flush=True)
        dry = self.record("migrate_dry_100k", "migrate --dry-run, 100,000 entries (core, tmpfs)",
                          summary(self.samples("root", [self.core] + cfg +
                                               ["migrate-dry", "mig100k", str(self.n(3, 1))])))
        dry["report"] = self.last_comments[-1]
        real = self.record("migrate_100k", "migrate, 100,000 entries: convert + verify (core)",
                           summary(self.samples("root", [self.core] + cfg +
                                                ["migrate", "mig100k", "1"])))
        real["report"] = self.last_comments[-1]
        again = self.record("migrate_100k_again",
                            "migrate again, 100,000 entries, nothing to change (core)",
                            summary(self.samples("root", [self.core] + cfg +
                                                 ["migrate", "mig100k", str(self.n(3, 1))])))
        again["report"] = self.last_comments[-1]
        d = self.fx.make_instance("migsparse")
        sparse = os.path.join(d, "upper", "sparse.bin")
        with open(sparse, "wb") as f:
            f.truncate(1 << 40)
            f.seek(1 << 39)
            f.write(os.urandom(1 << 20))
        open(os.path.join(d, "upper", ".wh." + l4m_fixture.LOWER_FILE), "w").close()
        sp = self.record("migrate_sparse_1t", "migrate, a 1 TiB sparse file with 1 MiB of data",
                         summary(self.samples("root", [self.core] + cfg +
                                              ["migrate", "migsparse", str(self.n(3, 1))])))
        d = self.fx.make_instance("migdense")
        dense_bytes = 512 << 20
        with open(os.path.join(d, "upper", "dense.bin"), "wb") as f:
            chunk = os.urandom(1 << 20)
            for _ in range(dense_bytes >> 20):
                f.write(chunk)
        dense = self.record("migrate_dense_512m", "migrate, 512 MiB of file data (warm)",
                            summary(self.samples("root", [self.core] + cfg +
                                                 ["migrate", "migdense", str(self.n(3, 1))])))
        entries_per_s = 100_000 / (real["median_ms"] / 1000.0)
        bytes_per_s = dense_bytes / (dense["median_ms"] / 1000.0)
        self.results["migrate_rates"] = {"entries_per_s": entries_per_s,
                                         "bytes_per_s": bytes_per_s}
        print("    migrate: %.0f entries/s (conversion + verification), %.0f MB/s of file data "
              "verified; %s" % (entries_per_s, bytes_per_s / 1e6, real["report"]), flush=True)
        return dry, real, again, sp, dense

    def lowerdirs(self):
        lowers = self.make_lowers(max(LOWER_COUNTS))
        n_core = self.n(100, 20)
        n_bus = self.n(50, 10)
        out = {}
        for count in LOWER_COUNTS:
            name = "low%d" % count
            self.fx.make_instance(name, lowerdirs=lowers[:count])
        for api in MOUNT_APIS:
            self.write_config(api)
            for count in LOWER_COUNTS:
                name = "low%d" % count
                core = summary(self.samples("root", [self.core, "--config", self.fx.config_path,
                                                     "mount", name, str(n_core)]))
                self.record("mount_%s_%d_core" % (api, count),
                            "Mount alone, MountApi=%s, %d lowerdirs, in-process" % (api, count),
                            core)
                bus = summary(self.samples("member", [self.client, "mount", name, str(n_bus)]))
                self.record("mount_%s_%d_bus" % (api, count),
                            "Mount alone, MountApi=%s, %d lowerdirs, via D-Bus" % (api, count),
                            bus)
                out["%s/%d" % (api, count)] = {"core": core, "bus": bus}
        self.write_config()
        return out

    def rss(self, when):
        with open("/proc/%d/status" % self.fx.daemon_proc.pid) as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        kib = {k: int(status[k].split()[0]) for k in ("VmRSS", "VmHWM", "RssAnon", "RssFile")}
        # Pss: file pages shared with other processes (libc, glib, ...)
        # counted by share; what the daemon really adds to the machine.
        with open("/proc/%d/smaps_rollup" % self.fx.daemon_proc.pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    kib["Pss"] = int(line.split()[1])
        self.results.setdefault("rss", {})[when] = kib
        # Which mappings hold the resident pages (to see what bounds VmRSS).
        by_map = {}
        current = None
        with open("/proc/%d/smaps" % self.fx.daemon_proc.pid) as f:
            for line in f:
                head = line.split()
                if head and "-" in head[0] and ":" not in head[0]:
                    current = head[5] if len(head) > 5 else "[anon]"
                elif line.startswith("Rss:"):
                    by_map[current] = by_map.get(current, 0) + int(head[1])
        top = sorted(by_map.items(), key=lambda kv: -kv[1])[:12]
        self.results.setdefault("rss_by_mapping", {})[when] = dict(top)
        print("  daemon %s: VmRSS %d KiB (anon %d, file %d), Pss %d KiB, VmHWM %d KiB"
              % (when, kib["VmRSS"], kib["RssAnon"], kib["RssFile"], kib["Pss"], kib["VmHWM"]),
              flush=True)
        return kib

    def startup(self, helper=None, suffix="", label_extra=""):
        """Process start -> name owned -> first Mount reply (root: no polkit
        check) -> first ListInstances reply, with the bus and polkitd up.
        Bus activation cannot be used: the private bus's setuid activation
        helper reads the real system config (TESTING-NOTES)."""
        import l4m_fixture
        self.fx.daemon_proc.terminate()
        self.fx.daemon_proc.wait(10)
        self.fx.wait_for_name_gone(l4m_fixture.BUS_NAME)
        if not os.path.isdir(os.path.join(self.fx.instances, "cold")):
            self.fx.make_instance("cold")
        argv = [self.fx.daemon_path, "--config", self.fx.config_path, "--executor",
                helper or self.helper, "--exit-idle-time", "0"]
        owned, mounted, listed = [], [], []
        for _ in range(self.n(20, 5)):
            out = self.run("root", [self.client, "startup", "cold"] + argv).split()
            pid = int(out[0])
            owned.append(int(out[1]))
            mounted.append(int(out[2]))
            listed.append(int(out[3]))
            os.kill(pid, 15)
            # the client has exited: we are the subreaper of its daemon
            for _ in range(500):
                try:
                    wpid, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    break
                if wpid == pid:
                    break
                time.sleep(0.01)
            self.fx.wait_for_name_gone(l4m_fixture.BUS_NAME)
        self.record("start_owned" + suffix, "daemon exec -> bus name owned" + label_extra,
                    summary(owned))
        self.record("start_mount" + suffix,
                    "daemon exec -> first Mount reply (root; cold start)" + label_extra,
                    summary(mounted))
        self.record("start_list" + suffix,
                    "daemon exec -> then first ListInstances reply" + label_extra,
                    summary(listed))
        self.fx.start_daemon()


def mount_table_markdown(results):
    mt = results["mount_table"]
    meta = results["meta"]
    lines = ["Machine: %s, %d CPUs, kernel %s; load average %s at start, %s at end (shared "
             "machine). Tree: git %s, Release build. Median wall ms (p90)."
             % (meta["cpu"], meta["cpus"], meta["kernel"], meta["load_start"], meta["load_end"],
                meta.get("git", "?")), "",
             "| other mounts | pair (member) | GetStatus (root, mounted) | ListInstances (root, "
             "%d instances) |" % LIST_INSTANCES, "|---:|---:|---:|---:|"]
    for count, row in mt.items():
        if count in ("watcher", "interleaved"):
            continue
        lines.append("| %s | %s |" % (count, " | ".join(
            "%.3f (%.3f)" % (row[k]["median_ms"], row[k]["p90_ms"]) for k in ("pair", "status", "list"))))
    inter = mt.get("interleaved")
    if inter:
        lines += ["", "Alternating rounds (0 and 2,000 other mounts in turn, samples pooled per size):", "",
                  "| figure | 0 other mounts | 2,000 other mounts | change |", "|---|---:|---:|---:|"]
        for kind, label in (("pair", "pair (member)"), ("status", "GetStatus (root, mounted)")):
            a, b = inter["%s_0" % kind], inter["%s_2000" % kind]
            lines.append("| %s | %.3f (n=%d) | %.3f (n=%d) | %+.1f%% |"
                         % (label, a["median_ms"], a["n"], b["median_ms"], b["n"],
                            100.0 * (b["median_ms"] / a["median_ms"] - 1)))
    if "0" in mt and "2000" in mt:
        lines.append("")
        for k in ("pair", "status"):
            lines.append("- %s with 2,000 other mounts: %+.1f%% against none (target: within 15%%)"
                         % (k, 100.0 * (mt["2000"][k]["median_ms"] / mt["0"][k]["median_ms"] - 1)))
        lines.append("- ListInstances over %d instances with 2,000 other mounts: %.3f ms "
                     "(target: at most 5 ms)" % (LIST_INSTANCES, mt["2000"]["list"]["median_ms"]))
    if "watcher" in mt:
        lines += ["", "| watcher | CPU ms per pair | CPU ms per 1,000 outside changes | other mounts |",
                  "|---|---:|---:|---:|"]
        for mode, w in mt["watcher"].items():
            lines.append("| %s | %.3f | %.1f | %d |" % (mode, w["cpu_ms_per_pair"],
                                                     w["cpu_ms_per_1000_changes"], w["other_mounts"]))
    return "\n".join(lines)


def markdown(results):
    r = results["rows"]
    lines = []
    meta = results["meta"]
    lines.append("Machine: %s, %d CPUs, kernel %s; load average %s at start, %s at end "
                 "(shared machine). Tree: git %s, Release build (-O3). Client: %s. "
                 "All files on tmpfs; no cache dropped (warm). Wall times in ms."
                 % (meta["cpu"], meta["cpus"], meta["kernel"], meta["load_start"],
                    meta["load_end"], meta.get("git", "?"), meta["client"]))
    lines.append("")
    lines.append("| figure | n | median ms | p90 ms | p99 ms |")
    lines.append("|---|---:|---:|---:|---:|")
    for key, row in r.items():
        lines.append("| %s | %d | %.3f | %.3f | %.3f |" % (row["label"], row["n"], row["median_ms"],
                                                         row["p90_ms"], row["p99_ms"]))
    lines.append("")
    cpu_rows = [(row["label"], row["cpu_ms_per_op"]) for row in r.values() if "cpu_ms_per_op" in row]
    if cpu_rows:
        cols = list(cpu_rows[0][1].keys())
        lines.append("CPU time per pair, or per call for the GetStatus and ListInstances rows (ms), by process (user+sys from /proc; executors: the daemon's children, live and reaped, the watching one apart; a clock tick is 10 ms, so a column is only as exact as 10 ms over the row's n; much less sensitive to the other load than wall time):")
        lines.append("")
        lines.append("| figure | " + " | ".join(cols) + " |")
        lines.append("|---|" + "---:|" * len(cols))
        for label, per in cpu_rows:
            lines.append("| %s | " % label + " | ".join("%.3f" % per[c] for c in cols) + " |")
        lines.append("")
    tp = results.get("throughput", {})
    if tp:
        lines.append("| concurrent clients (distinct instances) | pairs | seconds | pairs/s |")
        lines.append("|---:|---:|---:|---:|")
        for k, v in tp.items():
            lines.append("| %s | %d | %.2f | %.1f |" % (k, v["pairs"], v["seconds"],
                                                      v["pairs_per_s"]))
        lines.append("")
    procs = results.get("processes", {})
    if procs:
        lines.append("Process creations per call: delta of the `processes` line of /proc/stat "
                     "(every fork and thread on the machine) over the client's timed loop, "
                     "divided by the calls; the background (other engineers' builds, "
                     "%.1f/s measured before) is expected in the same time:"
                     % (results.get("background_forks_per_s") or 0.0))
        lines.append("")
        lines.append("| calls | n calls | created | per call | background expected | "
                     "traced by parent (whole client run; perf sched_process_fork) | "
                     "executor pids unchanged |")
        lines.append("|---|---:|---:|---:|---:|---|---|")
        for v in procs.values():
            by = v.get("traced_by_parent")
            traced = ", ".join("%s %d" % kv for kv in by.items()) if by else "-"
            lines.append("| %s | %d | %d | %.4f | %.1f | %s | %s |"
                         % (v["label"], v["calls"], v["delta"], v["per_call"],
                            v["background_expected"], traced,
                            "yes (%s)" % " ".join(map(str, v["executors_after"]))
                            if v["same_executors"] else "**no** (%s -> %s)"
                            % (v["executors_before"], v["executors_after"])))
        lines.append("")
    fl = results.get("flood", {})
    if fl:
        lines.append("Flood: a user with no rights (not in group left4me) sends %d calls with "
                     "NO_REPLY_EXPECTED (GetStatus and Mount, alternately) as fast as the bus "
                     "takes them, while a member mounts and unmounts another instance back to "
                     "back; the member's Mounts from the flood's midpoint until every flood "
                     "message was read (sent/read: medians over the rounds; RSS from before "
                     "the first round to 1 s after the last):" % FLOOD_CALLS)
        lines.append("")
        lines.append("| connections x rounds | sent in ms | all read by ms | member Mounts ok | "
                     "refused | Mount median ms | Mount max ms | daemon RSS KiB before -> "
                     "after | RSS growth KiB | lives |")
        lines.append("|---:|---:|---:|---:|---:|---:|---:|---|---:|---|")
        for v in fl.values():
            lines.append("| %d x %d | %.0f | %.0f | %d | %d | %s | %s | %d -> %s | %s | %s |"
                         % (v["connections"], v["rounds"], v["send_ms"], v["drained_ms"],
                            v["member_mounts_ok"], v["member_mount_error_count"],
                            "%.3f" % v["median_ms"] if "median_ms" in v else "-",
                            "%.3f" % v["max_ms"] if "max_ms" in v else "-",
                            v["rss_before_kib"]["VmRSS"],
                            v["rss_after_kib"]["VmRSS"] if v["rss_after_kib"] else "-",
                            v.get("rss_growth_kib", "-"),
                            "yes, answers" if v["daemon_alive"] and v["daemon_answers_after"]
                            else "**no**"))
        lines.append("")
    rss = results.get("rss", {})
    if rss:
        lines.append("| daemon memory | VmRSS KiB | RssAnon KiB | RssFile KiB | Pss KiB | VmHWM KiB |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        for when, v in rss.items():
            lines.append("| %s | %d | %d | %d | %d | %d |" % (when, v["VmRSS"], v["RssAnon"],
                                                             v["RssFile"], v["Pss"], v["VmHWM"]))
        lines.append("")
    t = results.get("targets", [])
    if t:
        lines.append("| target | value | holds |")
        lines.append("|---|---|---|")
        for item in t:
            lines.append("| %s | %s | %s |" % (item["target"], item["value"],
                                               "yes" if item["holds"] else "**no**"))
        lines.append("")
    return "\n".join(lines)


def targets(results):
    r = results["rows"]
    out = []

    def add(target, value, holds):
        out.append({"target": target, "value": value, "holds": bool(holds)})

    if "pair_bus" in r and "polkit_check" in r:
        pair = r["pair_bus"]["median_ms"]
        # A pair is two authorized calls: two polkit checks.
        share = pair - 2 * r["polkit_check"]["median_ms"]
        results["service_share_ms"] = share
        add("service's own share of a pair (pair median - 2 polkit checks) <= %.1f ms"
            % TARGET_SHARE_MS, "%.3f ms (%.3f - 2 x %.3f)"
            % (share, pair, r["polkit_check"]["median_ms"]), share <= TARGET_SHARE_MS)
    if "pair_bus" in r and "pair_old_helper" in r:
        # The old path: sudo + the old Python helper + nsenter + mount(8) (a
        # stand-in: only its description is left).
        pair = r["pair_bus"]["median_ms"]
        ratio = r["pair_old_helper"]["median_ms"] / pair
        extra = ""
        if "pair_sudo" in r:
            extra = "; sudo + the drop-in: %.1fx (%.3f ms)" % (r["pair_sudo"]["median_ms"] / pair,
                                                               r["pair_sudo"]["median_ms"])
        add("pair >= %.0fx faster than the old path (sudo + the old helper, stand-in)"
            % TARGET_OLD_PATH_RATIO,
            "%.1fx (%.3f / %.3f ms)%s" % (ratio, r["pair_old_helper"]["median_ms"], pair, extra),
            ratio >= TARGET_OLD_PATH_RATIO)
    if "pair_bus_root" in r:
        v = r["pair_bus_root"]["median_ms"]
        add("Mount+Unmount by root (no polkit check) <= %.1f ms" % TARGET_ROOT_PAIR_MS,
            "%.3f ms" % v, v <= TARGET_ROOT_PAIR_MS)
    if "pair_bus" in r and "cpu_ms_per_op" in r["pair_bus"]:
        c = r["pair_bus"]["cpu_ms_per_op"]
        add("the daemon's own CPU per member pair <= %.1f ms" % TARGET_DAEMON_CPU_PAIR_MS,
            "%.3f ms" % c["left4me-overlayd"], c["left4me-overlayd"] <= TARGET_DAEMON_CPU_PAIR_MS)
        cpu = c["left4me-overlayd"] + c[OPS_EXECUTORS] + c[WATCH_EXECUTOR]
        add("CPU per pair, daemon + executors <= %.0f ms" % TARGET_CPU_PAIR_MS,
            "%.3f ms (daemon %.3f + operation executors %.3f + watching executor %.3f)"
            % (cpu, c["left4me-overlayd"], c[OPS_EXECUTORS], c[WATCH_EXECUTOR]),
            cpu <= TARGET_CPU_PAIR_MS)
    tp = results.get("throughput", {})
    if 1 in tp:
        add("1 client >= %.0f pairs/s" % TARGET_ONE_CLIENT, "%.1f pairs/s" % tp[1]["pairs_per_s"],
            tp[1]["pairs_per_s"] >= TARGET_ONE_CLIENT)
    if 1 in tp and 8 in tp:
        ratio = tp[8]["pairs_per_s"] / tp[1]["pairs_per_s"]
        add("8 clients >= %.1fx one client" % TARGET_SCALING, "%.2fx (%.1f pairs/s)"
            % (ratio, tp[8]["pairs_per_s"]), ratio >= TARGET_SCALING)
    if "start_mount" in r:
        v = r["start_mount"]["median_ms"]
        add("cold start, daemon exec -> first Mount reply <= %.0f ms" % TARGET_COLD_MS,
            "%.3f ms" % v, v <= TARGET_COLD_MS)
    if "status_root" in r:
        v = max(r[k]["median_ms"] for k in ("status_root", "status_root_mounted") if k in r)
        add("GetStatus by root <= %.1f ms" % TARGET_STATUS_MS,
            "%.3f ms (median, worse of unmounted/mounted)" % v, v <= TARGET_STATUS_MS)
    if "list_1000" in r:
        v = r["list_1000"]["median_ms"]
        add("ListInstances over %d instances <= %.0f ms" % (LIST_INSTANCES, TARGET_LIST_MS),
            "%.3f ms" % v, v <= TARGET_LIST_MS)
    for count in HELD_CHECKS:
        pair, status = r.get("held%d_pair" % count), r.get("held%d_status" % count)
        if pair and status:
            worst = max(pair["max_ms"], status["max_ms"])
            add("another user's agent holds %d interactive checks open: a member's GetStatus, "
                "Mount and Unmount all answered within %.0f ms" % (count, TARGET_HELD_MS),
                "pair median %.3f ms, GetStatus median %.3f ms, slowest %.1f ms"
                % (pair["median_ms"], status["median_ms"], worst), worst <= TARGET_HELD_MS)
    for key, v in results.get("flood", {}).items():
        mount_ok = v["member_mounts_ok"] > 0 and v["member_mount_error_count"] == 0 and \
            v.get("max_ms", 1e9) <= TARGET_FLOOD_MOUNT_MS
        add("flood on %d connection(s): member's Mounts all succeed within 1 s"
            % v["connections"],
            "%d ok, %d refused, max %s ms" % (v["member_mounts_ok"],
                                            v["member_mount_error_count"],
                                            "%.1f" % v["max_ms"] if "max_ms" in v else "-"),
            mount_ok)
        add("flood on %d connection(s): RSS growth < 16 MiB, daemon lives" % v["connections"],
            "%s KiB, %s" % (v.get("rss_growth_kib", "-"),
                            "lives" if v["daemon_alive"] and v["daemon_answers_after"]
                            else "DEAD"),
            v["daemon_alive"] and v.get("rss_growth_kib", 1e9) < TARGET_FLOOD_RSS_KIB)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", required=True)
    parser.add_argument("--quick", action="store_true", help="small n, for trying it out")
    parser.add_argument("--json", default=os.path.join(HERE, "results.json"))
    parser.add_argument("--markdown", help="also write the table here")
    parser.add_argument("--only", help="comma-separated: pairs,status,held,throughput,lowerdirs,"
                                       "list,flood,taint,migrate,startup (and bus, profile, "
                                       "callgrind, mounts: opt-in)")
    args = parser.parse_args()

    if os.environ.get("L4MT_PRIVATE_NS") != str(os.getpid()):
        if os.geteuid() != 0:
            sys.exit("bench.py must run as root (it builds a private fixture)")
        env = dict(os.environ, L4MT_PRIVATE_NS=str(os.getpid()))
        os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private",
                               sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)

    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    import l4m_fixture
    build = os.path.abspath(args.build)
    daemon = os.path.join(build, "left4me-overlay", "src", "daemon", "left4me-overlayd")
    helper = os.path.join(build, "left4me-overlay", "src", "overlay-cmd", "left4me-overlay")
    fx = l4m_fixture.Fixture(REPO, daemon=daemon, executor=helper)
    only = set(args.only.split(",")) if args.only else None
    want = lambda part: only is None or part in only  # noqa: E731

    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    results = None
    try:
        fx.start()
        l4m_fixture.CURRENT = fx
        b = Bench(fx, build, args.quick)
        results = b.results
        results["meta"] = {"cpu": cpu, "cpus": os.cpu_count(), "kernel": platform.release(),
                           "load_start": loadavg(), "quick": args.quick,
                           "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                           "client": "C++ (sdbus-c++ 1.2, generated proxy), one connection "
                                     "per client, blocking calls"}
        git = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                             capture_output=True, text=True)
        results["meta"]["git"] = git.stdout.strip()
        print("load average at start: %s (git %s)" % (results["meta"]["load_start"],
                                                     results["meta"]["git"]), flush=True)
        b.rss("after start, no call yet")
        b.measure_background_forks()
        if want("pairs") or (only is not None and "bus" in only):
            # bus: these three alone (the daemon's figures, a minute)
            b.pair_bus()
            b.polkit_check()
            b.pair_bus_root()
        if want("pairs"):
            b.pair_core()
        if want("status"):
            b.status_root()
        if want("pairs"):
            b.pair_sudo()
            b.pair_helper()
            b.pair_fork()
            b.pair_vfork()
            b.pair_static()
        if only is not None and "profile" in only:  # opt-in: it records the whole machine
            b.profile(300)
        if only is not None and "callgrind" in only:  # opt-in: minutes under valgrind
            import callgrind
            callgrind.run(b, b.n(200, 30))
        if want("held"):
            for count in HELD_CHECKS:
                b.held_checks(count)
        if want("throughput"):
            b.throughput()
        if want("lowerdirs"):
            b.lowerdirs()
        b.rss("after the calls above")
        if want("list"):
            b.list_instances()
        if want("flood"):
            for conns in FLOOD_CONNECTIONS:
                b.flood(conns)
        if only is not None and "mounts" in only:  # opt-in: mounts 10,000 overlays
            b.mount_table()
        if want("taint"):
            b.taint()
        if want("migrate"):
            b.migrate()
        if want("startup"):
            b.startup()
            static = os.path.join(build, "l4m-bench-helper-static")
            b.startup(static, "_static", ", executors are the static helper")
        results["meta"]["load_end"] = loadavg()
        results["targets"] = targets(results) if "mount_table" not in results else {}
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
        text = markdown(results) if "mount_table" not in results else mount_table_markdown(results)
        print()
        print(text)
        if args.markdown:
            with open(args.markdown, "w") as f:
                f.write(text + "\n")
    finally:
        if results is None or "targets" not in results:
            for name in ("dbus", "polkitd", "daemon"):
                text = fx.log(name) if fx.tmp else ""
                if text.strip():
                    print("----- %s log (last 3000 chars) -----\n%s" % (name, text[-3000:]))
        fx.stop()


if __name__ == "__main__":
    main()
