#!/usr/bin/python3
"""The system tier: the Debian package, built for the release, on a booted
Debian 12 or Debian 13 with real systemd, dbus and polkitd.

  run_system_test.py --release bookworm|trixie --source-dir SRC [--debs DIR] [--keep]

1. builds the package for the release with packaging/release-deb.sh
   (packaging/build-deb.sh, run here or in a chroot of that release;
   VERSION, from packaging/debian/changelog), or takes it from --debs DIR
   (ctest: the fixture packaging.build-deb.RELEASE made it), and the same
   files again as VERSION~systest1, the "previous build";
2. copies the cached debootstrap tree of the release (debian_tree.py) and
   boots it with systemd-nspawn --boot --register=no --keep-unit
   --private-network (and no seccomp filter of nspawn's own);
3. inside, through nsenter: installs the previous package, and as a user of
   group left4me, with no daemon running, `left4me-overlayctl mount alpha`
   bus-activates left4me-overlayd under its hardened unit; the overlay
   appears in the mount table of the container's PID 1; a user outside the
   group mounts a second instance with an administrator's password, typed
   into the polkit agent the CLI starts in its terminal; upgrades to the
   current package with the overlay mounted (it survives, the new daemon
   reports it); unmounts; brings fuse-era instances over (fuse_era.py: an
   upper the owner writes through the container's own fuse-overlayfs,
   migrated by an administrator through the service, mounted through it,
   its kernel view compared entry by entry with the FUSE mount's); the
   daemon exits when idle; the sudoers example
   works and refuses added options; `dpkg --purge` leaves no file behind.
   A running polkitd keeps its pid through install, upgrade, removal and
   purge (the maintainer scripts never restart or reload it). The unit sets
   WatchdogSec= and the daemon pings it from its bus loop. The daemon says
   which mount watcher runs under its unit's seccomp filter, and why not
   fanotify statmount when not: Debian 13 on Linux 6.15+ gets fanotify
   statmount, Debian 12 (systemd 252) polls mountinfo (listmount: EPERM).

Runs as root. Prints each step with its time; on failure, the container's
console and journal.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# The pty driver the dbus tier's fixture uses too (this runs on the host).
sys.path.insert(1, os.path.join(os.path.dirname(HERE), "fixture"))
import debian_tree  # noqa: E402
import fuse_era  # noqa: E402
from pty_session import PtySession  # noqa: E402
from system_common import (ADMIN, ADMIN_PASSWORD, CTL, HELPER, LEFT4ME, OTHER, UNIT,  # noqa: E402
                           USER, Failure, check, step)

INSTANCE = "alpha"
INSTANCE2 = "beta"      # mounted with the administrator's password
MERGED = LEFT4ME + "/instances/" + INSTANCE + "/merged"
MERGED2 = LEFT4ME + "/instances/" + INSTANCE2 + "/merged"
IDLE_SECONDS = 4
WATCHDOG_SECONDS = 2
POLKIT = "polkit.service"
# What every executor holds: CAP_DAC_OVERRIDE(1), CAP_SYS_CHROOT(18),
# CAP_SYS_PTRACE(19), CAP_SYS_ADMIN(21).
OPERATION_CAPS = (1 << 1) | (1 << 18) | (1 << 19) | (1 << 21)
# ... and a Migrate executor also CAP_CHOWN(0), CAP_FOWNER(3): the unit's
# CapabilityBoundingSet, nothing else.
MIGRATE_CAPS = OPERATION_CAPS | (1 << 0) | (1 << 3)
EXPECTED_CAPBND = MIGRATE_CAPS
# Each process of the service as it narrows itself at start
# (src/executor-protocol/process_capabilities.hpp): CapEff, CapPrm, CapInh,
# CapAmb. The daemon has nothing effective and keeps the executors'
# capabilities permitted only, for the executors it starts (under
# NoNewPrivileges an exec grants nothing the parent has not permitted).
EXPECTED_CAPS = {
    "daemon": (0, MIGRATE_CAPS, 0, 0),
    "executor": (OPERATION_CAPS, OPERATION_CAPS, 0, 0),
    "watching executor": (OPERATION_CAPS, OPERATION_CAPS, 0, 0),
    "migrate executor": (MIGRATE_CAPS, MIGRATE_CAPS, 0, 0),
}
# The daemon's executors with the default settings: 2 for Mount and
# Unmount and 1 for queries, 1 watching, 2 for Migrate.
EXPECTED_EXECUTORS = {"executor": 3, "watching executor": 1, "migrate executor": 2}
# Left out of the before/after file lists: kernel and runtime file systems,
# logs, and the state of dpkg, systemd and polkitd, which change with any
# package operation; /var/lib/left4me is the test's own instance data
# (overlayfs adds work/work to it), which the package does not own.
UNCOMPARED = ("proc", "sys", "dev", "run", "tmp", "var/tmp", "var/log", "var/cache",
              "var/lib/dpkg", "var/lib/systemd", "var/lib/polkit-1", "var/lib/left4me")


def run_host(argv, **kw):
    kw.setdefault("check", True)
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          **kw)


# ------------------------------------------------------------------ packages

def find_package(deb_dir):
    """The left4me-overlay .deb in deb_dir (not its -dbgsym)."""
    debs = [f for f in os.listdir(deb_dir)
            if f.startswith("left4me-overlay_") and f.endswith(".deb")]
    check(len(debs) == 1, "expected one left4me-overlay_*.deb in %s, found %r" % (deb_dir, debs))
    return os.path.join(deb_dir, debs[0])


def build_package(source_dir, out_dir, release):
    """packaging/release-deb.sh RELEASE build OUT_DIR: packaging/build-deb.sh,
    the one way packages are made, run on that release (here, or in its
    cached chroot)."""
    proc = subprocess.run([os.path.join(source_dir, "packaging", "release-deb.sh"), release,
                           "build", out_dir],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(proc.returncode == 0, "release-deb.sh failed:\n" + proc.stdout[-3000:])
    return find_package(out_dir)


def repackage(deb, out_dir, version):
    """deb with only its version changed: the "previous build" of the
    upgrade check, without building the package again."""
    tree = os.path.join(out_dir, "tree")
    os.makedirs(out_dir)
    run_host(["dpkg-deb", "-R", deb, tree])
    control = os.path.join(tree, "DEBIAN", "control")
    with open(control) as f:
        text = f.read()
    text, n = re.subn(r"^Version: .*$", "Version: " + version, text, flags=re.M)
    check(n == 1, "no Version in %s" % control)
    with open(control, "w") as f:
        f.write(text)
    path = os.path.join(out_dir, "left4me-overlay_%s_amd64.deb" % version)
    run_host(["dpkg-deb", "--root-owner-group", "-b", tree, path])
    shutil.rmtree(tree)
    return path


# ----------------------------------------------------------------- container

class Container:
    def __init__(self, root, log_path, name):
        self.root = root
        self.name = name
        self.log_path = log_path
        self.nspawn = None
        self.pid = None  # host pid of the container's PID 1

    def boot(self):
        self.log = open(self.log_path, "w")
        # SYSTEMD_SECCOMP=0: no seccomp filter of nspawn's own on the
        # container. That allow list, built by this host's systemd and
        # libseccomp, fails every system call they do not know with ENOSYS
        # (statmount, listmount on Debian 12) and denies fanotify_init: the
        # daemon would then fall back to reading mountinfo on any release.
        # A booted Debian has no such filter above its services; the unit's
        # own filter (set by the container's systemd) is what is tested.
        self.nspawn = subprocess.Popen(
            ["systemd-nspawn", "-D", self.root, "--boot", "--register=no", "--keep-unit",
             "--private-network", "--console=pipe", "--machine=" + self.name],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            env=dict(os.environ, SYSTEMD_SECCOMP="0"))
        deadline = time.monotonic() + 30
        while self.pid is None and time.monotonic() < deadline:
            check(self.nspawn.poll() is None, "systemd-nspawn exited:\n" + self.console())
            self.pid = self._find_init()
            time.sleep(0.1)
        check(self.pid is not None, "no container init found:\n" + self.console())
        # is-system-running --wait returns once boot is done (running or
        # degraded); degraded is reported, not accepted.
        # Until systemd listens on its private socket, systemctl cannot
        # connect and prints nothing: retry until it answers.
        state = ""
        while not state and time.monotonic() < deadline + 60:
            res = self.run(["systemctl", "is-system-running", "--wait"], check=False, timeout=60)
            state = res.stdout.strip()
            if not state:
                time.sleep(0.2)
        if state != "running":
            failed = self.run(["systemctl", "--failed", "--no-legend"], check=False).stdout
            raise Failure("container state %r; failed units:\n%s" % (state, failed))

    def _find_init(self):
        """The descendant of nspawn that is PID 1 in its own pid namespace."""
        children = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/status" % entry) as f:
                    status = f.read()
            except OSError:
                continue
            ppid = int(re.search(r"^PPid:\s+(\d+)", status, re.M).group(1))
            nspid = re.search(r"^NSpid:\s+(.*)$", status, re.M).group(1).split()
            children.setdefault(ppid, []).append((int(entry), nspid))
        todo = [self.nspawn.pid]
        while todo:
            for pid, nspid in children.get(todo.pop(), []):
                if len(nspid) > 1 and nspid[-1] == "1":
                    return pid
                todo.append(pid)
        return None

    def argv(self, argv, user=None):
        env = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
               "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"]
        drop = []
        if user is not None:
            # setpriv, not su: no PAM session, the same process tree.
            drop = ["setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups"]
        return ["nsenter", "-t", str(self.pid), "-a", "--"] + drop + env + list(argv)

    def run(self, argv, user=None, check=True, timeout=60, input=None):
        proc = subprocess.run(self.argv(argv, user), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout,
                              input=input if input is not None else "")
        if check and proc.returncode != 0:
            raise Failure("%s%s exited %d\nstdout: %s\nstderr: %s"
                          % ("as %s: " % user if user else "", " ".join(argv), proc.returncode,
                             proc.stdout, proc.stderr))
        return proc

    def pty(self, argv, user=None):
        """argv run as user in a terminal of its own (a new pty): the test
        reads the prompts printed there and types into it."""
        return PtySession(self.argv(argv, user))

    def show(self, *props):
        out = self.run(["systemctl", "show", UNIT] + ["-p" + p for p in props]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def overlays(self, path):
        """Overlay mounts on path in the mount table of the container's PID 1."""
        found = []
        with open("/proc/%d/mountinfo" % self.pid) as f:
            for line in f:
                left, right = line.split(" - ", 1)
                if left.split()[4] == path and right.split()[0] == "overlay":
                    found.append(right.split()[1])
        return found

    def console(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def poweroff(self):
        if self.nspawn is None or self.nspawn.poll() is not None:
            return
        if self.pid is not None:
            subprocess.run(["nsenter", "-t", str(self.pid), "-a", "--", "systemctl",
                            "poweroff"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=30)
        t = time.monotonic()
        try:
            self.nspawn.wait(30)
            step("container stopped in %.1fs" % (time.monotonic() - t))
        except subprocess.TimeoutExpired:
            step("the container did not stop within 30 s: killed")
            # Killing the container's init ends its pid namespace, and
            # nspawn with it; killing only nspawn would orphan the container.
            if self.pid is not None:
                os.kill(self.pid, signal.SIGKILL)
            try:
                self.nspawn.wait(10)
            except subprocess.TimeoutExpired:
                self.nspawn.send_signal(signal.SIGKILL)
                self.nspawn.wait(10)


def file_list(root):
    """Every path below root (relative), with its type, outside UNCOMPARED."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir
        kept = []
        for d in dirnames:
            rel = os.path.join(rel_dir, d)
            if rel in UNCOMPARED:
                continue
            if os.path.islink(os.path.join(dirpath, d)):
                found.add(rel + " -> " + os.readlink(os.path.join(dirpath, d)))
            else:
                found.add(rel + "/")
                kept.append(d)
        dirnames[:] = kept
        for name in filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.join(rel_dir, name)
            found.add(rel + (" -> " + os.readlink(full) if os.path.islink(full) else ""))
    return found


# ----------------------------------------------------------------- scenario

def prepare(ct, release):
    """Users, the instance layout (the fuse-era step's too) and a short
    idle time: before the package, so that they are part of the "before"
    file list."""
    for user in (USER, OTHER, ADMIN):
        ct.run(["useradd", "--create-home", "--shell", "/bin/sh", user])
    # Debian's polkit takes the members of group sudo as administrators
    # (50-default.rules on Debian 12 and 13).
    ct.run(["usermod", "-aG", "sudo", ADMIN])
    ct.run(["chpasswd"], input="%s:%s\n" % (ADMIN, ADMIN_PASSWORD))
    ct.run(["mkdir", "-p", LEFT4ME + "/installation"])
    ct.run(["sh", "-c", "echo 'from the installation' >%s/installation/base.txt" % LEFT4ME])
    for name in (INSTANCE, INSTANCE2):
        inst = LEFT4ME + "/instances/" + name
        ct.run(["mkdir", "-p", inst + "/upper", inst + "/work", inst + "/merged"])
        ct.run(["sh", "-c", "echo L4D2_LOWERDIRS=%s/installation >%s/instance.env"
                % (LEFT4ME, inst)])
    fuse_era.prepare(ct, release)
    # The files below Root belong to the unprivileged host manager.
    ct.run(["chown", "-R", USER + ":" + USER, LEFT4ME])
    # A drop-in shortening the idle time, so that idle exit is seen
    # quickly, and the watchdog interval, so that its pings are seen (and a
    # daemon that missed them would be killed within the test).
    dropin = "/etc/systemd/system/%s.d" % UNIT
    ct.run(["mkdir", "-p", dropin])
    ct.run(["sh", "-c", "printf '[Service]\\nExecStart=\\nExecStart=/usr/libexec/left4me/"
            "left4me-overlayd --exit-idle-time %d\\nWatchdogSec=%ds\\n' "
            ">%s/10-systest-idle.conf" % (IDLE_SECONDS, WATCHDOG_SECONDS, dropin)])
    # polkitd running before the package comes: its pid must survive every
    # package operation.
    ct.run(["systemctl", "start", "polkit.service"])


def check_hardened_daemon(ct):
    props = ct.show("ActiveState", "MainPID")
    check(props["ActiveState"] == "active", "the service is not active: %r" % props)
    pid = props["MainPID"]
    status = ct.run(["cat", "/proc/%s/status" % pid]).stdout
    capbnd = int(re.search(r"^CapBnd:\s+([0-9a-f]+)", status, re.M).group(1), 16)
    check(capbnd == EXPECTED_CAPBND, "CapBnd %x, expected %x" % (capbnd, EXPECTED_CAPBND))
    check(re.search(r"^NoNewPrivs:\s+1$", status, re.M), "NoNewPrivs not set:\n" + status)
    check(re.search(r"^Seccomp:\s+2$", status, re.M), "no seccomp filter:\n" + status)
    # its own mount namespace (ProtectSystem=strict), not PID 1's
    own = ct.run(["readlink", "/proc/%s/ns/mnt" % pid]).stdout.strip()
    init = ct.run(["readlink", "/proc/1/ns/mnt"]).stdout.strip()
    check(own != init, "the daemon runs in PID 1's mount namespace")
    check_capabilities(ct, int(pid))
    return int(pid)


def service_processes(ct, pid):
    """[(role, (CapEff, CapPrm, CapInh, CapAmb))] of the daemon pid and of
    its executors (children of any of its threads), by their argv."""
    script = ("p=%d; for c in $(cat /proc/$p/task/*/children) $p; do printf '%%s|' $c; "
              "tr '\\0' ' ' </proc/$c/cmdline; printf '|'; "
              "grep -E '^Cap(Eff|Prm|Inh|Amb):' /proc/$c/status | tr '\\n\\t' '  '; echo; "
              "done" % pid)
    out = []
    for line in ct.run(["sh", "-c", script], check=False).stdout.splitlines():
        parts = line.split("|")
        if len(parts) != 3:
            continue
        child, argv, caps = parts
        fields = dict(re.findall(r"(Cap\w+):\s*([0-9a-f]+)", caps))
        if len(fields) != 4:
            continue  # gone while being read
        argv = argv.split()
        role = ("daemon" if int(child) == pid else
                "migrate executor" if "--migrate" in argv else
                "watching executor" if "--watch" in argv else "executor")
        out.append((role, tuple(int(fields[k], 16) for k in ("CapEff", "CapPrm", "CapInh",
                                                              "CapAmb"))))
    return out


def check_capabilities(ct, pid):
    """Under the real unit each process holds exactly its role's
    capabilities: only the Migrate executors may chown and chmod another's
    inodes. Waits (executors start on their own threads and narrow their
    sets first thing) until every expected executor is there and narrowed."""
    deadline = time.monotonic() + 60
    while True:
        found = service_processes(ct, pid)
        counts = {}
        for role, _ in found:
            counts[role] = counts.get(role, 0) + 1
        wrong = [(role, caps) for role, caps in found if caps != EXPECTED_CAPS[role]]
        if not wrong and counts == dict(EXPECTED_EXECUTORS, daemon=1):
            return
        if time.monotonic() > deadline:
            raise Failure("capabilities (CapEff, CapPrm, CapInh, CapAmb) of the service's "
                          "processes: %s; expected %s, executors %s"
                          % (["%s %s" % (r, tuple("%x" % c for c in caps)) for r, caps in found],
                             {r: tuple("%x" % c for c in caps)
                              for r, caps in EXPECTED_CAPS.items()}, EXPECTED_EXECUTORS))
        time.sleep(0.2)


def expected_watcher(release):
    """How the daemon under its unit watches the host's mounts on this
    kernel: a regex for the rest of its line "watching the host's mounts: ".
    On Debian 12, systemd 252 and libseccomp 2.5.4 know no statmount or
    listmount, so the unit's allow list cannot let them through: they fail
    with its SystemCallErrorNumber=EPERM, and mountinfo is polled. systemd
    257 (Debian 13) allows them with @file-system, and the unit allows
    fanotify_init/fanotify_mark."""
    version = tuple(int(x) for x in re.match(r"(\d+)\.(\d+)", os.uname().release).groups())
    if release == "bookworm":
        return (r"poll mountinfo \(listmount: Operation not permitted\)" if version >= (6, 8)
                else r"poll mountinfo \(listmount: .*\)")
    if version >= (6, 15):
        return r"fanotify statmount"
    if version >= (6, 13):
        return r"poll statmount \(fanotify_init: .*\)"
    return r"poll mountinfo \(.*\)"


def check_watcher(ct, release):
    """The daemon's line saying which watcher its executor runs, and why
    not fanotify statmount when it is not. The watcher's first report comes
    after the daemon owns the bus name: wait for the line."""
    expected = expected_watcher(release)
    deadline = time.monotonic() + 30
    lines = []
    while time.monotonic() < deadline:
        out = ct.run(["journalctl", "--no-pager", "-o", "cat", "-u", UNIT]).stdout
        lines = [line for line in out.splitlines() if "watching the host's mounts: " in line]
        if lines:
            break
        time.sleep(0.3)
    check(lines, "the daemon never said how it watches the host's mounts")
    how = lines[0].split("watching the host's mounts: ", 1)[1]
    check(re.fullmatch(expected, how),
          "%s: watching the host's mounts: %r, expected %r" % (release, how, expected))
    step("%s: watching the host's mounts: %s" % (release, how))


def wait_inactive(ct, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        props = ct.show("ActiveState", "Result")
        if props["ActiveState"] in ("inactive", "failed"):
            return props
        time.sleep(0.3)
    raise Failure("the service did not exit when idle within %ss" % timeout)


def polkit_pid(ct):
    out = ct.run(["systemctl", "show", POLKIT, "-pMainPID", "-pActiveState"]).stdout
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    check(props.get("ActiveState") == "active", "polkit.service is not running: %r" % props)
    return int(props["MainPID"])


def check_polkit_untouched(ct, pid, when):
    now = polkit_pid(ct)
    check(now == pid, "polkitd was restarted by %s: pid %d, before %d" % (when, now, pid))


def check_watchdog(ct):
    """The shipped unit sets WatchdogSec=; the running daemon pings it (the
    test's drop-in sets WATCHDOG_SECONDS): the last-ping time advances
    while the daemon sits idle in its bus loop."""
    with open(ct.root + "/lib/systemd/system/" + UNIT) as f:
        check(re.search(r"^WatchdogSec=\S+", f.read(), re.M), "the unit sets no WatchdogSec=")
    props = ct.show("WatchdogUSec", "MainPID", "WatchdogTimestampMonotonic")
    check(props["WatchdogUSec"] in ("%ds" % WATCHDOG_SECONDS, str(WATCHDOG_SECONDS * 10**6)),
          "WatchdogUSec is %r" % props["WatchdogUSec"])
    first = int(props["WatchdogTimestampMonotonic"])
    # Pings come every WATCHDOG_SECONDS/2: wait for the next one (an event,
    # bounded well below the idle exit).
    deadline = time.monotonic() + WATCHDOG_SECONDS * 1.5
    while time.monotonic() < deadline:
        later = ct.show("MainPID", "WatchdogTimestampMonotonic")
        if int(later["WatchdogTimestampMonotonic"]) > first:
            check(later["MainPID"] == props["MainPID"], "the daemon was restarted meanwhile")
            return
        time.sleep(0.1)
    raise Failure("no watchdog ping within %.1fs (last at %d)" % (WATCHDOG_SECONDS * 1.5, first))


# MESSAGE_IDs of src/daemon/journal_log.cpp (fixed for good).
MESSAGE_ID_MOUNTED = "4b6135ae048e4fd1a10230ed24f7b54b"
MESSAGE_ID_DENIED = "0d6240d8d6f641dc80ab8e3964bf4b56"


def check_journal(ct):
    """The mount and the refusal as journal records of the unit, with
    their MESSAGE_ID, L4M_* fields and OBJECT_PID= the caller (journald
    adds the caller's OBJECT_COMM, ... when it still runs as the record
    arrives: not checked, the caller may have exited)."""
    import json
    for message_id, uid_user, event in ((MESSAGE_ID_MOUNTED, USER, "mounted"),
                                         (MESSAGE_ID_DENIED, OTHER, "denied")):
        uid = ct.run(["id", "-u", uid_user]).stdout.strip()
        records = []
        deadline = time.monotonic() + 10
        while not records and time.monotonic() < deadline:
            out = ct.run(["journalctl", "--no-pager", "-o", "json", "-u", UNIT,
                          "MESSAGE_ID=" + message_id]).stdout
            records = [json.loads(line) for line in out.splitlines() if line.strip()]
            if not records:
                time.sleep(0.2)
        check(records, "no %s record (MESSAGE_ID=%s) in the journal" % (event, message_id))
        r = records[-1]
        check(r.get("L4M_INSTANCE") == INSTANCE and r.get("L4M_EVENT") == event
              and r.get("L4M_CALLER_UID") == uid, "unexpected %s record: %r" % (event, r))
        check(r.get("OBJECT_PID") == r.get("L4M_CALLER_PID") and r.get("OBJECT_PID"),
              "no OBJECT_PID= the caller: %r" % r)


def status_json(ct, user):
    import json
    res = ct.run([CTL, "--json", "status", INSTANCE], user=user)
    return json.loads(res.stdout)


def scenario(ct, release, old_deb, new_deb, old_version, new_version):
    step("preparing users and instances %s, %s" % (INSTANCE, INSTANCE2))
    prepare(ct, release)
    before = file_list(ct.root)
    polkitd = polkit_pid(ct)
    # The packages go to /root (compared too: they are deleted before purge).
    for deb in (old_deb, new_deb):
        shutil.copy(deb, ct.root + "/root/")

    step("installing the previous package %s" % old_version)
    ct.run(["dpkg", "-i", "/root/" + os.path.basename(old_deb)], timeout=120)
    check(ct.run(["getent", "group", "left4me"], check=False).returncode == 0,
          "postinst made no group left4me")
    check(ct.show("ActiveState")["ActiveState"] == "inactive",
          "the service runs before anyone called it")
    check(os.path.exists(ct.root + "/usr/lib/sysusers.d/left4me-overlay.conf"),
          "no sysusers.d file for the group")
    check_polkit_untouched(ct, polkitd, "the install")
    ct.run(["usermod", "-aG", "left4me", USER])

    step("mount as %s (bus activation)" % USER)
    res = ct.run([CTL, "mount", INSTANCE], user=USER)
    check(res.stdout == "" and res.stderr == "", "mount printed: %r" % res)
    check(ct.overlays(MERGED) == ["left4me:" + INSTANCE],
          "no overlay left4me:%s on %s in PID 1's mount table: %r"
          % (INSTANCE, MERGED, ct.overlays(MERGED)))
    content = ct.run(["cat", MERGED + "/base.txt"], user=USER).stdout
    check(content == "from the installation\n", "merged shows %r" % content)
    old_pid = check_hardened_daemon(ct)
    check_watcher(ct, release)
    check(status_json(ct, USER)["mounted"] is True, "status does not say mounted")
    step("the watchdog is set and pinged")
    check_watchdog(ct)

    step("a non-member is refused without a prompt")
    res = ct.run([CTL, "--no-ask-password", "unmount", INSTANCE], user=OTHER, check=False)
    check(res.returncode == 3, "non-member unmount: exit %d, %r" % (res.returncode, res.stderr))
    check(ct.overlays(MERGED), "the non-member's unmount unmounted")

    step("the journal holds both decisions, with MESSAGE_ID and the caller")
    check_journal(ct)

    step("a non-member mounts %s with an administrator's password (the CLI's agent)"
         % INSTANCE2)
    with ct.pty([CTL, "mount", INSTANCE2], user=OTHER) as s:
        check(s.expect(rb"Password:", timeout=30), "no password prompt:\n" + s.text())
        check("AUTHENTICATING FOR org.left4me.overlay.mount" in s.text()
              and ADMIN in s.text(), "unexpected prompt:\n" + s.text())
        s.send(ADMIN_PASSWORD, timeout=30)
        code = s.wait(60)
        check(code == 0 and "AUTHENTICATION COMPLETE" in s.text(),
              "mount with the admin's password: exit %d\n%s" % (code, s.text()))
    check(ct.overlays(MERGED2) == ["left4me:" + INSTANCE2],
          "no overlay on %s after the authenticated mount" % MERGED2)
    ct.run([CTL, "--no-ask-password", "unmount", INSTANCE2], user=USER)
    check(ct.overlays(MERGED2) == [], "%s still mounted" % MERGED2)

    step("upgrading to %s with %s mounted" % (new_version, INSTANCE))
    ct.run([CTL, "status", INSTANCE], user=USER)  # the old daemon is running now
    upgrade_start = time.monotonic()
    ct.run(["dpkg", "-i", "/root/" + os.path.basename(new_deb)], timeout=120)
    installed = ct.run(["dpkg-query", "-W", "-f=${Version}", "left4me-overlay"]).stdout
    check(installed == new_version, "installed version %r" % installed)
    check(ct.overlays(MERGED) == ["left4me:" + INSTANCE], "the mount did not survive the upgrade")
    check(status_json(ct, USER)["mounted"] is True, "the new daemon does not report it mounted")
    props = ct.show("MainPID", "ExecMainStartTimestampMonotonic")
    started = int(props["ExecMainStartTimestampMonotonic"]) / 1e6
    check(started > upgrade_start, "the daemon answering was started before the upgrade")
    check(int(props["MainPID"]) != old_pid, "the daemon was not restarted")
    check_hardened_daemon(ct)
    check_polkit_untouched(ct, polkitd, "the upgrade")

    step("unmount as %s" % USER)
    ct.run([CTL, "unmount", INSTANCE], user=USER)
    check(ct.overlays(MERGED) == [], "still mounted after unmount")
    check(status_json(ct, USER)["mounted"] is False, "status still says mounted")

    fuse_era.check_migration(ct, release)

    step("the Python client, as the package installed it, as %s" % USER)
    script = ("from left4me_overlay import DBusOverlayMounter, status\n"
              "m = DBusOverlayMounter()\n"
              "m.mount(lowerdirs=[], upperdir='', workdir='', merged=%r, on_stdout=print)\n"
              "print('status', status(%r).mounted)\n"
              "m.unmount(merged=%r, on_stdout=print)\n" % (MERGED, INSTANCE, MERGED))
    res = ct.run(["python3", "-c", script], user=USER)
    check("status True" in res.stdout, "the Python client did not mount:\n" + res.stdout)
    check(ct.overlays(MERGED) == [], "still mounted after the Python client's unmount")

    step("waiting for the idle exit (--exit-idle-time %d)" % IDLE_SECONDS)
    props = wait_inactive(ct, IDLE_SECONDS + 15)
    check(props["ActiveState"] == "inactive" and props["Result"] == "success",
          "idle exit ended as %r" % props)

    step("the sudoers example: the drop-in through sudo, no options passed")
    sudoers = ct.root + "/etc/sudoers.d/left4me-overlay"
    with open(ct.root + "/usr/share/doc/left4me-overlay/examples/sudoers.left4me-overlay") as f:
        text = f.read()
    check(re.search(r"^left4me ALL=", text, re.M), "unexpected sudoers example:\n" + text)
    with open(sudoers, "w") as f:
        f.write(re.sub(r"^left4me ALL=", USER + " ALL=", text, flags=re.M))
    os.chmod(sudoers, 0o440)
    try:
        ct.run(["visudo", "-cf", "/etc/sudoers.d/left4me-overlay"])
        ct.run(["sudo", "-n", HELPER, "mount", INSTANCE], user=USER)
        check(ct.overlays(MERGED) == ["left4me:" + INSTANCE], "sudo mount did not mount")
        for bad in (["--config", "/etc/left4me/overlay.conf", "mount", INSTANCE],
                    ["mount", INSTANCE, "extra"], ["status", INSTANCE], ["mount", "-x"]):
            res = ct.run(["sudo", "-n", HELPER] + bad, user=USER, check=False)
            check(res.returncode != 0, "sudo allowed %r" % bad)
        ct.run(["sudo", "-n", HELPER, "umount", INSTANCE], user=USER)
        check(ct.overlays(MERGED) == [], "sudo umount did not unmount")
    finally:
        os.unlink(sudoers)

    step("removing, then purging the package")
    for deb in (old_deb, new_deb):
        os.unlink(ct.root + "/root/" + os.path.basename(deb))
    ct.run([CTL, "list"], user=USER)  # a running daemon, stopped by the prerm
    ct.run(["dpkg", "--remove", "left4me-overlay"], timeout=120)
    check(ct.show("ActiveState")["ActiveState"] in ("inactive", "failed"),
          "the daemon still runs after removal")
    check_polkit_untouched(ct, polkitd, "the removal")
    ct.run(["dpkg", "--purge", "left4me-overlay"], timeout=120)
    check_polkit_untouched(ct, polkitd, "the purge")
    after = file_list(ct.root)
    added = sorted(after - before)
    removed = sorted(before - after)
    check(not added, "left behind after purge:\n  " + "\n  ".join(added))
    check(not removed, "gone after purge though there before:\n  " + "\n  ".join(removed))
    res = ct.run(["systemctl", "cat", UNIT], check=False)
    check(res.returncode != 0, "systemd still knows the unit after purge")
    step("purge left nothing behind (%d paths compared)" % len(before))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--release", choices=sorted(debian_tree.RELEASES),
                        default=debian_tree.DEFAULT_RELEASE,
                        help="the Debian release booted (and the package built for it)")
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--debs", help="take the package from this folder (made by "
                        "packaging/build-deb.sh on that release) instead of building it")
    parser.add_argument("--cache", default=debian_tree.CACHE_DIR)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if os.geteuid() != 0:
        # ctest's SKIP_RETURN_CODE: a developer's non-root run skips.
        print("the system tier must run as root: skipped")
        sys.exit(77)

    work = tempfile.mkdtemp(prefix="left4me-overlay-system.", dir="/var/tmp")
    root_mounted = False
    ct = None
    ok = False
    try:
        step("debootstrap tree of %s (cached in %s)" % (args.release, args.cache))
        tree = debian_tree.cached_tree(args.release, args.cache)
        if args.debs:
            new_deb = find_package(args.debs)
        else:
            step("packaging/release-deb.sh %s build" % args.release)
            new_deb = build_package(args.source_dir, os.path.join(work, "new"), args.release)
        version = run_host(["dpkg-deb", "-f", new_deb, "Version"]).stdout.strip()
        old_version = version + "~systest1"
        step("repackaging %s as %s" % (version, old_version))
        old_deb = repackage(new_deb, os.path.join(work, "old"), old_version)
        step("copying the tree")
        # Onto a tmpfs: the copy is thrown away after the run, and deleting
        # its 9,000 files from a busy disk took 30 s, unmounting takes none.
        root = os.path.join(work, "root")
        os.mkdir(root)
        run_host(["mount", "-t", "tmpfs", "-o", "mode=0755,size=4g", "l4m-systest", root])
        root_mounted = True
        debian_tree.copy_tree(tree, root)
        step("booting the container")
        ct = Container(root, os.path.join(work, "console.log"), "l4m-systest-" + args.release)
        ct.boot()
        step("booted (container PID 1 is host pid %d)" % ct.pid)
        versions = ct.run(["dpkg-query", "-W", "-f=${Package} ${Version}, ", "systemd",
                           "dbus-daemon", "polkitd", "python3-jeepney"]).stdout
        step("%s: %s" % (args.release, versions.rstrip(", ")))
        scenario(ct, args.release, old_deb, new_deb, old_version, version)
        ok = True
    except (Failure, TimeoutError) as e:  # TimeoutError: from a PtySession
        print("FAILED: %s" % e, flush=True)
        if ct is not None and ct.pid is not None and ct.nspawn.poll() is None:
            journal = subprocess.run(ct.argv(["journalctl", "--no-pager", "-n", "80", "-o",
                                              "short-monotonic"]),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True).stdout
            print("----- container journal (last 80 lines) -----\n" + journal)
        if ct is not None:
            print("----- container console (tail) -----\n" + ct.console())
    finally:
        if ct is not None:
            ct.poweroff()
        if args.keep:
            print("work directory kept: %s (the container's tree is a tmpfs mounted on "
                  "root/: umount it when done)" % work)
        else:
            if root_mounted:
                run_host(["umount", "--lazy", os.path.join(work, "root")], check=False)
            shutil.rmtree(work, ignore_errors=True)
    step("done: %s" % ("ok" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
