"""The dbus test tier's fixture (tests/dbus/README.md).

Everything happens inside a private mount namespace that belongs to the test
process (run_dbus_tests.py re-executes itself under `unshare --mount
--propagation private`), so the host is never touched:

- a tmpfs holds every file the fixture makes;
- copies of /etc/passwd, /etc/group and /etc/shadow with the test users added
  are bind-mounted over the originals (useradd cannot be used: it renames the
  files, which fails on bind mounts and would change the host);
- a private dbus-daemon configured like the system bus (derived from
  /usr/share/dbus-1/system.conf, plus an <includedir> holding our bus policy)
  listens on a socket that is bind-mounted on /run/dbus/system_bus_socket,
  where polkit's setuid password helper always connects;
- our polkit actions are overlaid on /usr/share/polkit-1/actions, and a rules
  folder holding 50-left4me-overlay.rules plus the test rules is bind-mounted
  on /etc/polkit-1/rules.d; then the real polkitd is started;
- optionally left4me-overlayd runs as root on that bus, with a config whose
  HostPid is this process, so its mounts land in this namespace.

Only the Python standard library is used.
"""

import contextlib
import errno
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import termios
import time

BUS_NAME = "org.left4me.Overlay1"
OBJECT_PATH = "/org/left4me/Overlay1"
INTERFACE = "org.left4me.Overlay1"
ERROR_PREFIX = "org.left4me.Overlay1.Error."
ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"
INTERACTIVE_REQUIRED = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"

SYSTEM_SOCKET = "/run/dbus/system_bus_socket"
SYSTEM_BUS_ADDRESS = "unix:path=" + SYSTEM_SOCKET
POLKIT_ACTIONS = "/usr/share/polkit-1/actions"
POLKIT_RULES = "/etc/polkit-1/rules.d"
POLKITD = "/usr/lib/polkit-1/polkitd"
SYSTEM_CONF = "/usr/share/dbus-1/system.conf"

ADMIN_PASSWORD = "l4m-Admin-pw-7"

# role -> user name. One admin only: with several, pkttyagent first asks
# which identity to authenticate as.
USERS = {
    "member": "l4mt-member",  # in group left4me: allowed by 50-left4me-overlay.rules
    "other": "l4mt-other",    # in no special group: needs an admin password
    "denied": "l4mt-denied",  # refused by a test rule
    "admin": "l4mt-admin",    # the only admin identity (test addAdminRule)
}
GROUP = "left4me"

TEST_RULES = {
    # Sorted before 50-*.rules: polkit runs rule files in name order across
    # /etc and /usr/share, the first rule that returns a result decides.
    "10-l4mt-deny.rules": """\
polkit.addRule(function(action, subject) {
    if (action.id.indexOf("org.left4me.overlay.") == 0 &&
        subject.user == "%s") {
        return polkit.Result.NO;
    }
});
""" % USERS["denied"],
    "10-l4mt-admin.rules": """\
polkit.addAdminRule(function(action, subject) {
    return ["unix-user:%s"];
});
""" % USERS["admin"],
}

CURRENT = None  # the running Fixture, set by run_dbus_tests.py

LOWER_FILE = "base.txt"
LOWER_TEXT = "from the installation lower\n"


def _libc():
    import ctypes
    import ctypes.util
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def mount(source, target, fstype=None, flags=0, data=None):
    libc = _libc()
    res = libc.mount(source.encode() if source else None, target.encode(),
                     fstype.encode() if fstype else None, flags,
                     data.encode() if data else None)
    if res != 0:
        err = _libc_errno()
        raise OSError(err, "mount %s on %s: %s" % (source, target, os.strerror(err)))


def umount(target, flags=0):
    libc = _libc()
    if libc.umount2(target.encode(), flags) != 0:
        err = _libc_errno()
        raise OSError(err, "umount %s: %s" % (target, os.strerror(err)))


def _libc_errno():
    import ctypes
    return ctypes.get_errno()


MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MNT_DETACH = 2


def set_child_subreaper():
    """Orphans (pkttyagent after its shell exec'd and ended) become our children."""
    PR_SET_CHILD_SUBREAPER = 36
    _libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


# ---------------------------------------------------------------- mount table

def mountinfo(pid="self"):
    """[(mount_point, fstype, source)] of /proc/PID/mountinfo."""
    def unescape(s):
        return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)
    rows = []
    with open("/proc/%s/mountinfo" % pid) as f:
        for line in f:
            left, right = line.rstrip("\n").split(" - ", 1)
            fields = left.split(" ")
            rfields = right.split(" ")
            rows.append((unescape(fields[4]), rfields[0], unescape(rfields[1])))
    return rows


def overlays_on(path, pid="self"):
    """The overlay mounts whose mount point is path."""
    return [r for r in mountinfo(pid) if r[0] == path and r[1] == "overlay"]


# --------------------------------------------------------------- D-Bus calls

def gvariant_string(s):
    """s as a GVariant text-format string literal (for gdbus call)."""
    out = ["'"]
    for ch in s:
        if ch in "'\\":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        else:
            out.append(ch)
    out.append("'")
    return "".join(out)


class CallResult:
    def __init__(self, proc, elapsed):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.elapsed = elapsed
        self.error_name = None
        self.error_message = None
        m = re.search(r"GDBus\.Error:([A-Za-z0-9_.]+): (.*)", proc.stderr or "", re.S)
        if m:
            self.error_name = m.group(1)
            self.error_message = m.group(2).strip()

    @property
    def ok(self):
        return self.returncode == 0

    def __repr__(self):
        return "CallResult(rc=%r, out=%r, err=%r)" % (self.returncode, self.stdout, self.stderr)


def gdbus_argv(method, args=(), interactive=False, dest=BUS_NAME, path=OBJECT_PATH,
               interface=INTERFACE, timeout=25):
    argv = ["gdbus", "call", "--system", "--dest", dest, "--object-path", path,
            "--method", "%s.%s" % (interface, method), "--timeout", str(timeout)]
    if interactive:
        argv.append("--interactive")
    argv.extend(gvariant_string(a) if isinstance(a, str) else a for a in args)
    return argv


def busctl_argv(method, signature="", args=(), interactive=True, json_out=False):
    argv = ["busctl", "--system"]
    if json_out:
        argv.append("--json=short")
    if not interactive:
        argv.append("--allow-interactive-authorization=no")
    argv += ["call", BUS_NAME, OBJECT_PATH, INTERFACE, method]
    if signature:
        argv.append(signature)
        argv.extend(args)
    return argv


# ---------------------------------------------------------------- the fixture

class Fixture:
    def __init__(self, repo_dir, daemon=None, executor=None, daemon_own_namespace=False,
                 verbose=False):
        self.repo_dir = repo_dir
        self.daemon_path = daemon
        self.executor_path = executor
        self.daemon_own_namespace = daemon_own_namespace
        self.verbose = verbose
        self.tmp = None
        self.users = {}   # role -> (name, uid, gid)
        self.dbus_proc = None
        self.polkitd_proc = None
        self.daemon_proc = None
        self._mounted = []  # mount points, undone in reverse order
        self._logs = {}

    # ------------------------------------------------------------ lifecycle
    def start(self):
        if os.geteuid() != 0:
            raise RuntimeError("the dbus tier must run as root")
        if os.environ.get("L4MT_PRIVATE_NS") != str(os.getpid()):
            raise RuntimeError("refusing to run outside the private mount namespace "
                               "made by run_dbus_tests.py")
        set_child_subreaper()
        self.tmp = tempfile.mkdtemp(prefix="l4mt-dbus-")
        mount("tmpfs", self.tmp, "tmpfs", 0, "mode=0755")
        self._mounted.append(self.tmp)
        for d in ("etc", "bus", "bus/conf.d", "actions", "rules", "logs", "fifos"):
            os.mkdir(os.path.join(self.tmp, d), 0o755)
        self._make_users()
        self._make_bus()
        self._make_polkit()
        self.start_polkitd()
        if self.daemon_path:
            self._make_layout()
            self.start_daemon()

    def stop(self):
        for attr in ("daemon_proc", "polkitd_proc", "dbus_proc"):
            proc = getattr(self, attr)
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        # Unmount what the tests left mounted below the tmpfs, then our mounts.
        if self.tmp:
            for mp, fstype, _ in reversed(mountinfo()):
                if mp.startswith(self.tmp + "/"):
                    try:
                        umount(mp, MNT_DETACH)
                    except OSError:
                        pass
        for mp in reversed(self._mounted):
            try:
                umount(mp, MNT_DETACH)
            except OSError:
                pass
        if self.tmp:
            try:
                os.rmdir(self.tmp)
            except OSError:
                pass

    def log(self, name):
        path = os.path.join(self.tmp, "logs", name)
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _bind(self, source, target):
        mount(source, target, None, MS_BIND)
        self._mounted.append(target)

    # ---------------------------------------------------------------- users
    def _make_users(self):
        etc = os.path.join(self.tmp, "etc")
        with open("/etc/passwd") as f:
            passwd = f.read().splitlines()
        with open("/etc/group") as f:
            group = f.read().splitlines()
        with open("/etc/shadow") as f:
            shadow = f.read().splitlines()
        used_uids = {int(l.split(":")[2]) for l in passwd if l.count(":") >= 6}
        used_gids = {int(l.split(":")[2]) for l in group if l.count(":") >= 3}
        names = {l.split(":")[0] for l in passwd} | {l.split(":")[0] for l in group}
        for name in USERS.values():
            if name in names:
                raise RuntimeError("test user %s already exists on this machine" % name)

        def free_id(used, start=64100):
            n = start
            while n in used:
                n += 1
            used.add(n)
            return n

        left4me_idx = next((i for i, l in enumerate(group) if l.split(":")[0] == GROUP), None)
        if left4me_idx is None:
            gid = free_id(used_gids)
            group.append("%s:x:%d:" % (GROUP, gid))
            left4me_idx = len(group) - 1
        admin_hash = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=ADMIN_PASSWORD,
                                    capture_output=True, text=True, check=True).stdout.strip()
        for role, name in USERS.items():
            uid = free_id(used_uids)
            gid = free_id(used_gids)
            passwd.append("%s:x:%d:%d:left4me dbus test %s:/:/bin/sh" % (name, uid, gid, role))
            group.append("%s:x:%d:" % (name, gid))
            pw = admin_hash if role == "admin" else "!"
            shadow.append("%s:%s:19000:0:99999:7:::" % (name, pw))
            self.users[role] = (name, uid, gid)
        if True:
            line = group[left4me_idx]
            members = line.split(":")[3]
            members = (members + "," if members else "") + USERS["member"]
            group[left4me_idx] = ":".join(line.split(":")[:3] + [members])
        for fname, lines, mode in (("passwd", passwd, 0o644), ("group", group, 0o644),
                                   ("shadow", shadow, 0o640)):
            path = os.path.join(etc, fname)
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
            st = os.stat("/etc/" + fname)
            os.chown(path, st.st_uid, st.st_gid)
            os.chmod(path, mode if fname != "shadow" else st.st_mode & 0o777)
            self._bind(path, "/etc/" + fname)

    def uid(self, role):
        return self.users[role][1]

    # ------------------------------------------------------------------ bus
    def _make_bus(self):
        with open(SYSTEM_CONF) as f:
            conf = f.read()
        conf_dir = os.path.join(self.tmp, "bus", "conf.d")
        shutil.copy(os.path.join(self.repo_dir, "dbus-conf", "org.left4me.Overlay1.conf"), conf_dir)
        socket_path = os.path.join(self.tmp, "bus", "system_bus_socket")
        # Like the system bus, except: no fork, pid file or syslog; our
        # socket; absolute system.d; our policy folder; and no activation
        # (the setuid launch helper reads the real system config, and a
        # service the tests stop, like polkitd, must stay stopped).
        edits = [
            (r"<fork\s*/>", ""),
            (r"<pidfile>[^<]*</pidfile>", ""),
            (r"<syslog\s*/>", ""),
            (r"<standard_system_servicedirs\s*/>", ""),
            (r"<servicehelper>[^<]*</servicehelper>", ""),
            (r"<listen>[^<]*</listen>", "<listen>unix:path=%s</listen>" % socket_path),
            (r"<includedir>system\.d</includedir>",
             "<includedir>/usr/share/dbus-1/system.d</includedir>\n"
             "  <includedir>%s</includedir>" % conf_dir),
        ]
        for pattern, repl in edits:
            conf, n = re.subn(pattern, repl, conf)
            if n != 1:
                raise RuntimeError("%s: expected one match of %s" % (SYSTEM_CONF, pattern))
        conf_path = os.path.join(self.tmp, "bus", "system.conf")
        with open(conf_path, "w") as f:
            f.write(conf)
        # /run/dbus gets a tmpfs of its own in this namespace (it may not
        # exist on the host), holding the mount point for our socket.
        if not os.path.isdir("/run/dbus"):
            os.makedirs("/run/dbus", 0o755)  # empty directory; /run is a tmpfs
        mount("tmpfs", "/run/dbus", "tmpfs", 0, "mode=0755")
        self._mounted.append("/run/dbus")
        self.dbus_proc = subprocess.Popen(
            ["dbus-daemon", "--config-file=" + conf_path, "--nofork", "--nopidfile",
             "--print-address=1"],
            stdout=subprocess.PIPE, stderr=open(os.path.join(self.tmp, "logs", "dbus"), "w"),
            text=True)
        line = self.dbus_proc.stdout.readline()
        if not line.startswith("unix:"):
            raise RuntimeError("dbus-daemon did not start: %s" % self.log("dbus"))
        open(SYSTEM_SOCKET, "w").close()
        self._bind(socket_path, SYSTEM_SOCKET)
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = SYSTEM_BUS_ADDRESS

    def name_has_owner(self, name):
        res = subprocess.run(
            ["gdbus", "call", "--system", "--dest", "org.freedesktop.DBus",
             "--object-path", "/org/freedesktop/DBus",
             "--method", "org.freedesktop.DBus.NameHasOwner", name],
            capture_output=True, text=True, timeout=10, env=self.client_env())
        return res.stdout.strip() == "(true,)"

    def wait_for_name(self, name, proc, what, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.name_has_owner(name):
                return
            if proc.poll() is not None:
                raise RuntimeError("%s exited with %s before owning %s:\n%s"
                                   % (what, proc.returncode, name, self.log(what)))
            time.sleep(0.05)
        raise RuntimeError("%s did not own %s within %ss:\n%s" % (what, name, timeout, self.log(what)))

    def wait_for_name_gone(self, name, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.name_has_owner(name):
                return
            time.sleep(0.05)
        raise RuntimeError("%s still owned after %ss" % (name, timeout))

    # --------------------------------------------------------------- polkit
    def _make_polkit(self):
        actions = os.path.join(self.tmp, "actions")
        shutil.copy(os.path.join(self.repo_dir, "polkit", "org.left4me.overlay.policy"), actions)
        mount("overlay", POLKIT_ACTIONS, "overlay", MS_RDONLY,
              "lowerdir=%s:%s" % (actions, POLKIT_ACTIONS))
        self._mounted.append(POLKIT_ACTIONS)
        rules = os.path.join(self.tmp, "rules")
        shutil.copy(os.path.join(self.repo_dir, "polkit", "50-left4me-overlay.rules"), rules)
        for name, text in TEST_RULES.items():
            with open(os.path.join(rules, name), "w") as f:
                f.write(text)
        for name in os.listdir(rules):
            os.chmod(os.path.join(rules, name), 0o644)
        self._bind(rules, POLKIT_RULES)

    def start_polkitd(self):
        log = open(os.path.join(self.tmp, "logs", "polkitd"), "a")
        self.polkitd_proc = subprocess.Popen([POLKITD, "--no-debug"], stdout=log, stderr=log,
                                             env=self.client_env())
        self.wait_for_name("org.freedesktop.PolicyKit1", self.polkitd_proc, "polkitd")

    def stop_polkitd(self):
        self.polkitd_proc.terminate()
        self.polkitd_proc.wait(10)
        self.wait_for_name_gone("org.freedesktop.PolicyKit1")

    # ------------------------------------------------------------- processes
    def client_env(self):
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "HOME": "/",
            "DBUS_SYSTEM_BUS_ADDRESS": SYSTEM_BUS_ADDRESS,
            "SYSTEMD_PAGER": "",
            "SYSTEMD_COLORS": "0",
        }

    def as_user(self, role, argv):
        """argv run as the test user of role (None or 'root': as root)."""
        if role in (None, "root"):
            return list(argv)
        _, uid, gid = self.users[role]
        return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--init-groups"] + list(argv)

    @staticmethod
    def wait_for_exec(pid, comm, uid, timeout=10):
        """Waits until process pid runs comm as uid."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open("/proc/%d/status" % pid) as f:
                    status = f.read()
            except FileNotFoundError:
                raise RuntimeError("process %d is gone" % pid)
            name = re.search(r"^Name:\s*(\S+)", status, re.M).group(1)
            uids = re.search(r"^Uid:\s*(\d+)\s+(\d+)", status, re.M)
            if name == comm and int(uids.group(1)) == uid and int(uids.group(2)) == uid:
                return
            time.sleep(0.01)
        raise RuntimeError("process %d did not become %s as uid %d" % (pid, comm, uid))

    def run(self, role, argv, timeout=30, input=None):
        start = time.monotonic()
        proc = subprocess.run(self.as_user(role, argv), capture_output=True, text=True,
                              timeout=timeout, env=self.client_env(), input=input)
        return CallResult(proc, time.monotonic() - start)

    def popen(self, role, argv, **kw):
        return subprocess.Popen(self.as_user(role, argv), env=self.client_env(), text=True, **kw)

    def call(self, role, method, *args, interactive=False, timeout=25):
        """The method called through gdbus (which prints error names)."""
        return self.run(role, gdbus_argv(method, args, interactive=interactive, timeout=timeout),
                        timeout=timeout + 5)

    def busctl(self, role, method, signature="", *args, interactive=True, json_out=False):
        return self.run(role, busctl_argv(method, signature, args, interactive, json_out))

    def agent_session(self, role, client_argv):
        return AgentSession(self, role, client_argv)

    # -------------------------------------------------------- instance layout
    def _make_layout(self):
        self.root = os.path.join(self.tmp, "root")
        os.mkdir(self.root, 0o755)
        for d in ("installation", "overlays", "instances"):
            os.mkdir(os.path.join(self.root, d), 0o755)
        self.instances = os.path.join(self.root, "instances")
        self.installation = os.path.join(self.root, "installation")
        with open(os.path.join(self.installation, LOWER_FILE), "w") as f:
            f.write(LOWER_TEXT)
        os.mkdir(os.path.join(self.root, "overlays", "mod1"))
        with open(os.path.join(self.root, "overlays", "mod1", "mod.txt"), "w") as f:
            f.write("from the mod1 lower\n")
        self.config_path = os.path.join(self.tmp, "etc", "overlay.conf")
        self.write_config()

    def write_config(self, host_pid=None, extra=""):
        with open(self.config_path, "w") as f:
            f.write("# left4me-overlay dbus tier test config\n"
                    "Root=%s\n"
                    "InstancesDir=instances\n"
                    "AllowedLowerRoots=installation overlays\n"
                    "HostPid=%d\n"
                    # The fixture's own: tests run in parallel on one machine.
                    "LockDir=%s/locks\n%s" % (self.root, host_pid or os.getpid(), self.tmp, extra))
        os.chmod(self.config_path, 0o644)

    def restart_daemon(self):
        """SIGTERM, wait, start again (the daemon reads its own settings
        from the config only when it starts)."""
        self.daemon_proc.terminate()
        self.daemon_proc.wait(30)
        self.wait_for_name_gone(BUS_NAME)
        self.start_daemon()

    def make_instance(self, name, lowerdirs=None, env_text=None, env=True):
        """instances/NAME/{instance.env,upper,work,merged}; lowerdirs default:
        the installation root."""
        d = os.path.join(self.instances, name)
        os.mkdir(d, 0o755)
        for sub in ("upper", "work", "merged"):
            os.mkdir(os.path.join(d, sub), 0o755)
        if env:
            if env_text is None:
                env_text = "L4D2_LOWERDIRS=%s\n" % ":".join(lowerdirs or [self.installation])
            with open(os.path.join(d, "instance.env"), "w") as f:
                f.write(env_text)
        return d

    def merged(self, name):
        return os.path.join(self.instances, name, "merged")

    @contextlib.contextmanager
    def hold_lock(self, name):
        """Holds instance name's operation lock, as a running operation
        would: an operation on it waits (up to its lock timeout) until the
        block ends. Lets a test act while an operation is surely running."""
        lock_dir = os.path.join(self.tmp, "locks")  # LockDir of write_config
        os.makedirs(lock_dir, 0o700, exist_ok=True)
        fd = os.open(os.path.join(lock_dir, name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def wait_authorized(self, verb, names, timeout=30):
        """Waits until the daemon has logged the authorization of a verb
        ("mount", "unmount") call on each of names (counting earlier ones:
        pass how many each name needs as a dict, or names for one each)."""
        need = names if isinstance(names, dict) else {n: 1 for n in names}
        deadline = time.monotonic() + timeout
        while True:
            log = self.log("daemon")
            missing = {n: k for n, k in need.items()
                       if len(re.findall(r"(?<![a-z])%s instance %s: authorized"
                                         % (verb, re.escape(n)), log)) < k}
            if not missing:
                return
            if time.monotonic() > deadline:
                raise AssertionError("no authorization of %s logged for %r within %ss"
                                     % (verb, sorted(missing), timeout))
            time.sleep(0.01)

    def authorized_count(self, verb, name):
        return len(re.findall(r"(?<![a-z])%s instance %s: authorized" % (verb, re.escape(name)),
                              self.log("daemon")))

    def is_mounted(self, name, pid="self"):
        return len(overlays_on(self.merged(name), pid)) > 0

    # --------------------------------------------------------------- daemon
    def start_daemon(self):
        argv = [self.daemon_path, "--config", self.config_path, "--executor", self.executor_path,
                "--exit-idle-time", "0"]
        if self.daemon_own_namespace:
            argv = ["unshare", "--mount", "--propagation", "private"] + argv
        log = open(os.path.join(self.tmp, "logs", "daemon"), "a")
        self.daemon_proc = subprocess.Popen(argv, stdout=log, stderr=log, env=self.client_env())
        self.wait_for_name(BUS_NAME, self.daemon_proc, "daemon")

    def executor_result(self, *words):
        """Asks a fresh executor (left4me-overlay --serve, as the daemon
        runs it) one request and returns its result record and the process,
        which exits once its socket is closed."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        proc = subprocess.Popen([self.executor_path, "--config", self.config_path,
                                 "--serve", str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.client_env())
        theirs.close()
        try:
            hello = executor_receive(ours)
            if not hello.startswith("hello\n"):
                raise AssertionError("executor said %r instead of hello" % hello)
            ours.sendall(b"." + (" ".join(words) + "\n").encode())
            record = executor_receive(ours)
        finally:
            ours.close()
        proc.wait(30)
        return record, proc


def sanitizer_build(pid):
    """Whether process pid runs under ASan or TSan, whose allocators hold
    freed memory back (quarantine, shadow): its RSS says nothing of ours
    then, and memory bounds are the plain build's to check."""
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read()
    return "libasan" in maps or "libtsan" in maps


def child_processes(parent, comm, zombies=False):
    """{pid: argv} of parent's children named comm (only those not yet
    reaped, when zombies)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmdline = f.read().split(b"\0")
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if int(ppid) == parent and name == comm and (state == "Z") == zombies:
            found[int(entry)] = [a.decode() for a in cmdline if a]
    return found


def executor_receive(sock, timeout=30):
    """One whole message from an executor: packets whose first byte is '+'
    (more follow) or '.' (the last)."""
    sock.settimeout(timeout)
    parts = []
    while True:
        packet = sock.recv(1 << 20)
        if not packet:
            return "".join(parts)
        parts.append(packet[1:].decode(errors="replace"))
        if packet[:1] == b".":
            return "".join(parts)


def _ptsname(master):
    """The slave's path (os.ptsname is missing from Python 3.11)."""
    import fcntl
    import struct
    TIOCGPTN = 0x80045430
    n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"))[0]
    return "/dev/pts/%d" % n


class PtySession:
    """argv (already wrapped to run as its user) in a new pty of its own:
    the test reads what is printed there and types into it."""

    def __init__(self, argv, env, hold_slave=False):
        pid, master = pty.fork()
        if pid == 0:
            try:
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid = pid
        self.master = master
        # Held open, the terminal outlives the death of the program that
        # owned it, so that a prompt still running there can be answered.
        self.slave = (os.open(_ptsname(master), os.O_RDWR | os.O_NOCTTY)
                      if hold_slave else None)
        self.transcript = b""
        self.status = None

    def text(self):
        return self.transcript.decode(errors="replace")

    def _pump(self, wait):
        r, _, _ = select.select([self.master], [], [], wait)
        if r:
            try:
                self.transcript += os.read(self.master, 4096)
            except OSError as e:
                if e.errno != errno.EIO:
                    raise
        if self.status is None:
            wpid, st = os.waitpid(self.pid, os.WNOHANG)
            if wpid == self.pid:
                self.status = st

    def expect(self, pattern, timeout=15):
        """Reads until pattern (bytes regex) appears in everything seen so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.transcript):
                return True
            self._pump(0.05)
        return bool(re.search(pattern, self.transcript))

    def send(self, text, timeout=10):
        """Types text and Enter once the terminal's echo is off. Typed any
        earlier, it is lost: polkit's text listener switches echo off with
        TCSAFLUSH, which discards pending input. The master side of a pty
        reports the terminal's modes."""
        deadline = time.monotonic() + timeout
        while termios.tcgetattr(self.master)[3] & termios.ECHO:
            if time.monotonic() > deadline:
                raise TimeoutError("the terminal's echo stayed on:\n" + self.text())
            self._pump(0.01)
        os.write(self.master, text.encode() + b"\n")

    def wait(self, timeout=30):
        """Waits for the program to exit; returns its exit code (or -signal)."""
        deadline = time.monotonic() + timeout
        while self.status is None and time.monotonic() < deadline:
            self._pump(0.05)
        if self.status is None:
            raise TimeoutError("still running after %ss; transcript:\n%s"
                               % (timeout, self.text()))
        end = time.monotonic() + 0.2  # what was printed last
        while time.monotonic() < end:
            self._pump(0.05)
        return os.waitstatus_to_exitcode(self.status)

    def kill_client(self):
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        self.status = signal.SIGKILL  # as a wait status: killed by SIGKILL

    def close(self):
        if self.status is None:
            try:
                self.kill_client()
            except ProcessLookupError:
                pass
        if self.slave is not None:
            os.close(self.slave)
        os.close(self.master)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class AgentSession(PtySession):
    """client_argv run as role inside a pty, with polkit's text agent
    (pkttyagent) registered for the client's process: the shell starts the
    agent for its own pid ($$), waits until it has registered (it closes its
    notify fd), then execs the client, so the pid and start time polkit knows
    are the client's. The test reads the pty (the agent's prompts) and types
    into it."""

    def __init__(self, fixture, role, client_argv):
        self.fifo = os.path.join(fixture.tmp, "fifos", "agent-%d" % time.monotonic_ns())
        os.mkfifo(self.fifo, 0o666)
        os.chmod(self.fifo, 0o666)
        script = ('pkttyagent --process $$ --notify-fd 5 5>"$0" & echo "L4MT-AGENT-PID=$!"; '
                  'read -r _ <"$0"; exec "$@"')
        self.agent_pid = None
        # setpriv, then sh, then the client: one pid
        super().__init__(fixture.as_user(role, ["sh", "-c", script, self.fifo] + list(client_argv)),
                         fixture.client_env(), hold_slave=True)

    def _pump(self, wait):
        super()._pump(wait)
        if self.agent_pid is None:
            m = re.search(rb"L4MT-AGENT-PID=(\d+)", self.transcript)
            if m:
                self.agent_pid = int(m.group(1))

    def agent_alive(self):
        if self.agent_pid is None:
            return False
        try:
            wpid, _ = os.waitpid(self.agent_pid, os.WNOHANG)
            return wpid == 0
        except ChildProcessError:
            try:
                os.kill(self.agent_pid, 0)
                return True
            except ProcessLookupError:
                return False

    def close(self):
        super().close()
        if self.agent_pid is not None:
            try:
                os.kill(self.agent_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            # it became our child (we are a subreaper) once its shell exec'd and ended
            for _ in range(100):
                try:
                    wpid, _ = os.waitpid(self.agent_pid, os.WNOHANG)
                except ChildProcessError:
                    break
                if wpid == self.agent_pid:
                    break
                time.sleep(0.02)
        os.unlink(self.fifo)
