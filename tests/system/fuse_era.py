"""The system tier's fuse-era step (README, "Bringing fuse-era instances
over"), on the booted container of run_system_test.py.

Inside the container, the instance's owner writes an upper through the
container's own fuse-overlayfs, mounted on the instance's `merged` with its
`work` as the host manager mounted it before the service: deletes (files of
either lower, a directory), a replaced directory, a file replaced by a
directory, copy-ups, a new directory and a symlink, and chmod and chgrp
(but not under 1.10's xattr_permissions=2: XATTR2_BOOKWORM). It records
what the FUSE mount shows, then unmounts it. The service refuses that
upper as it is; a member may not migrate it; root's dry run changes
nothing; an administrator migrates it through the service with its
password (`left4me-overlayctl migrate`, as the README tells admins; its
Migrate executors chown and chmod where the overrides ask), the owner
mounts it through the service, and the
kernel overlay must show what the FUSE mount showed, entry by entry: names,
kinds, modes, owners, sizes and contents (md5), symlink targets.
"""

import hashlib
import re

from system_common import ADMIN, ADMIN_PASSWORD, CTL, LEFT4ME, USER, check, step

BASE = LEFT4ME + "/overlays/fuse-base"   # the lowest layer
MOD = LEFT4ME + "/overlays/fuse-mod"     # the layer above it
LOWERDIRS = MOD + ":" + BASE             # leftmost: the top
# The game's files lie in game/, as Left 4 Dead 2's in left4dead2/: the
# owner changes nothing at the top of the mount (see XATTR2_TRIXIE).
LOWER_FILES = {
    BASE: {"top.txt": "top\n", "game/a.txt": "a\n", "game/b.txt": "b\n",
           "game/dir1/x1": "x1\n", "game/dir2/y1": "y1\n", "game/keep/k1": "k1\n",
           "game/keep/k2": "k2\n", "game/keep/k3": "k3\n", "game/keep/sub/s1": "s1\n",
           "game/keep/sub/s2": "s2\n"},
    MOD: {"game/mod.txt": "mod\n", "game/keep/k1": "k1 from the mod\n"},
}

# The owner's work in the FUSE mount's game/: deletes from either lower (a
# file, a directory), a replaced directory, a copy-up from the top lower,
# a file replaced by a directory, a new directory with a symlink.
SESSION = ("cd game && rm a.txt mod.txt && rm -r dir1"
           " && rm -r dir2 && mkdir dir2 && echo new >dir2/n"
           " && echo more >>keep/k1"
           " && rm keep/sub/s1 && mkdir keep/sub/s1 && echo replaced >keep/sub/s1/r"
           " && mkdir newdir && echo x >newdir/f && ln -s ../b.txt newdir/link")
# chmod and chgrp (to the owner's other group) in the FUSE mount.
ATTRIBUTES = (" && chmod 600 keep/k2 && chgrp left4me keep/k3 && chmod 640 newdir/f"
              " && chgrp left4me newdir/f && chmod 750 newdir && chmod 700 keep/sub")

# One line per entry below $1, sorted: path, kind, mode, owner; a file's
# size and md5, a symlink's target. (A directory's size is left out: it
# counts what the file system holds, not what the view shows.)
LIST_VIEW = r'''list_view() {
    (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r p; do
        line=$(stat -c '%n %F %a %u:%g' "$p")
        if [ -L "$p" ]; then
            line="$line -> $(readlink "$p")"
        elif [ -f "$p" ]; then
            line="$line $(stat -c %s "$p") bytes md5 $(md5sum <"$p" | cut -d' ' -f1)"
        fi
        printf '%s\n' "$line"
    done)
}
'''

# What fuse-overlayfs 1.14 (Debian 13) gives an upper whose root carries no
# override, when no lower's root has one either: root's, read-only.
ROOT_OVERRIDE_1_14 = "0:0:555"


class Variant:
    """One fuse-era instance: how fuse-overlayfs was run on it, what the
    owner did in its mount, and how an administrator converts it."""

    def __init__(self, name, options, attributes, overrides_applied, root_override=None):
        self.name = name
        self.options = options        # appended to fuse-overlayfs' -o
        self.session = SESSION + (ATTRIBUTES if attributes else "")
        self.attributes = attributes  # whether the session chmods and chgrps
        # Whether its overrides ask for another mode or group than the
        # file has on disk: the service's Migrate executors then chmod and
        # chown (CAP_FOWNER, CAP_CHOWN; only they hold them under the unit).
        self.overrides_applied = overrides_applied
        # The override fuse-overlayfs left on the upper's root, if any
        # that Migrate refuses (naming root) until an admin removes it.
        self.root_override = root_override
        self.dir = LEFT4ME + "/instances/" + name


PLAIN = Variant("fuse-plain", "", True, False)
# fuse-overlayfs 1.10 (Debian 12) with xattr_permissions=2 records a chmod
# as "0:0:MODE" and a chgrp as "-1:GID" (root's or nobody's in its own
# view), which Migrate refuses (the root tier's
# MigrateFuseOverlayfs.WithXattrPermissions2ChmodAndChgrp, run with 1.10):
# here the owner creates, copies up and deletes only. It gives each file it
# makes mode 0755 and records the same, so the overrides ask for nothing
# the file has not got.
XATTR2_BOOKWORM = Variant("fuse-xattr2", ",xattr_permissions=2", False, False)
# fuse-overlayfs 1.14 (Debian 13) with xattr_permissions=2 records chmod
# and chgrp keeping the owner (user.containers.override_stat), but makes
# each file 0755 on disk whatever its override says, so converting needs
# chmod and chown (the service's Migrate executors); and it gives the upper's root
# "0:0:555" (no layer's root carried an override): its mount's top belongs
# to root, read-only, so the owner works in game/ only (a change at the top
# fails with EACCES), and Migrate refuses that override (naming root) until
# an admin has removed it.
XATTR2_TRIXIE = Variant("fuse-xattr2", ",xattr_permissions=2", True, True,
                        root_override=ROOT_OVERRIDE_1_14)


def variants(release):
    """The fuse-era instances made on release."""
    return [PLAIN, XATTR2_BOOKWORM if release == "bookworm" else XATTR2_TRIXIE]


def prepare(ct, release):
    """The lowers and the instances (run before the package is installed,
    by run_system_test.prepare: /var/lib/left4me belongs to the owner
    afterwards). The container's /dev, nspawn's tmpfs, has no fuse node:
    make it 0666, as devtmpfs does on a booted Debian."""
    for layer, files in LOWER_FILES.items():
        for rel, text in files.items():
            ct.run(["mkdir", "-p", (layer + "/" + rel).rsplit("/", 1)[0]])
            ct.run(["sh", "-c", 'printf %s "$1" >"$2"', "sh", text, layer + "/" + rel])
    for v in variants(release):
        ct.run(["mkdir", "-p", v.dir + "/upper", v.dir + "/work", v.dir + "/merged"])
        ct.run(["sh", "-c", 'echo "L4D2_LOWERDIRS=$1" >"$2"', "sh", LOWERDIRS,
                v.dir + "/instance.env"])
    res = ct.run(["stat", "-c", "%F %t:%T %a", "/dev/fuse"], check=False)
    if res.returncode != 0:
        ct.run(["mknod", "-m", "0666", "/dev/fuse", "c", "10", "229"])
    else:
        check(res.stdout.strip().startswith("character special file a:e5"),
              "the container's /dev/fuse is %r" % res.stdout)
        ct.run(["chmod", "0666", "/dev/fuse"])


def mounts_on(ct, path):
    """(fstype, source) of every mount on path in the container PID 1's table."""
    found = []
    with open("/proc/%d/mountinfo" % ct.pid) as f:
        for line in f:
            left, right = line.split(" - ", 1)
            if left.split()[4] == path:
                found.append(tuple(right.split()[:2]))
    return found


def write_upper(ct, v):
    """The owner mounts fuse-overlayfs on the instance's merged (as the
    host manager did), works in it, lists it and unmounts it. Returns the
    FUSE mount's view."""
    script = LIST_VIEW + r'''
d=$1
fuse-overlayfs -o "lowerdir=$2,upperdir=$d/upper,workdir=$d/work$3" "$d/merged"
trap 'cd / && fusermount3 -u "$d/merged"' EXIT
cd "$d/merged"
''' + v.session + '''
cd /
list_view "$d/merged"
'''
    res = ct.run(["sh", "-ec", script, "fuse-session", v.dir, LOWERDIRS, v.options], user=USER)
    check(mounts_on(ct, v.dir + "/merged") == [],
          "%s: still mounted after fusermount3 -u: %r" % (v.name, mounts_on(ct, v.dir + "/merged")))
    return res.stdout


def parse_view(text):
    """{path: the rest of its line}"""
    view = {}
    for line in text.splitlines():
        path, rest = line.split(" ", 1)
        view[path] = rest
    return view


def md5(text):
    return hashlib.md5(text.encode()).hexdigest()


def check_session_shown(v, view, owner, left4me_gid):
    """The FUSE view shows the session's work (so that equal views mean
    the conversion kept it, not that nothing happened)."""
    for gone in ("a.txt", "mod.txt", "dir1", "dir1/x1", "dir2/y1"):
        check("./game/" + gone not in view, "%s: the FUSE view still shows ./game/%s:\n%s"
              % (v.name, gone, "\n".join(sorted(view))))
    file = r"regular file \d+ %s %d bytes md5 %s"
    expected = {
        "./top.txt": file % (owner, 4, md5("top\n")),
        "./game/b.txt": file % (owner, 2, md5("b\n")),
        "./game/dir2": r"directory \d+ %s" % owner,
        "./game/dir2/n": file % (owner, 4, md5("new\n")),
        "./game/keep/k1": file % (owner, 21, md5("k1 from the mod\nmore\n")),
        "./game/keep/sub/s1": r"directory \d+ %s" % owner,
        "./game/keep/sub/s1/r": file % (owner, 9, md5("replaced\n")),
        "./game/keep/sub/s2": file % (owner, 3, md5("s2\n")),
        "./game/newdir/f": r"regular file \d+ \S+ 2 bytes md5 %s" % md5("x\n"),
        "./game/newdir/link": r"symbolic link 777 %s -> \.\./b\.txt" % owner,
    }
    if v.attributes:
        uid = owner.split(":")[0]
        expected.update({
            "./game/keep/k2": r"regular file 600 %s 3 bytes" % owner,
            "./game/keep/k3": r"regular file 644 %s:%s 3 bytes" % (uid, left4me_gid),
            "./game/keep/sub": r"directory 700 %s" % owner,
            "./game/newdir": r"directory 750 %s" % owner,
            "./game/newdir/f": r"regular file 640 %s:%s 2 bytes" % (uid, left4me_gid),
        })
    for path, pattern in expected.items():
        check(path in view and re.match(pattern, view[path]),
              "%s: the FUSE view shows %s as %r, expected %r"
              % (v.name, path, view.get(path), pattern))


def differences(fuse, kernel):
    """Entry by entry: what the kernel overlay shows otherwise than FUSE did."""
    out = []
    for path in sorted(set(fuse) | set(kernel)):
        if path not in kernel:
            out.append("%s: only under FUSE (%s)" % (path, fuse[path]))
        elif path not in fuse:
            out.append("%s: only in the kernel overlay (%s)" % (path, kernel[path]))
        elif fuse[path] != kernel[path]:
            out.append("%s: FUSE %r, kernel %r" % (path, fuse[path], kernel[path]))
    return out


def migrate_by_admin(ct, v):
    """`left4me-overlayctl migrate NAME` as the administrator, its password
    typed into the agent the CLI starts in its terminal: (exit code, what
    the terminal showed)."""
    with ct.pty([CTL, "migrate", v.name], user=ADMIN) as s:
        check(s.expect(rb"Password:", timeout=30), "%s: no password prompt:\n%s"
              % (v.name, s.text()))
        check("AUTHENTICATING FOR org.left4me.overlay.migrate" in s.text(),
              "%s: unexpected prompt:\n%s" % (v.name, s.text()))
        s.send(ADMIN_PASSWORD, timeout=30)
        code = s.wait(300)
        # The agent's banners end in colour codes, not newlines.
        text = re.sub(r"\x1b\[[0-9;]*m", "\n", s.text().replace("\r\n", "\n"))
    check("AUTHENTICATION COMPLETE" in text, "%s: the password was not taken:\n%s"
          % (v.name, text))
    return code, text


def remove_root_override(ct, v):
    """What fuse-overlayfs 1.14 left on the upper's root, found and
    removed as an administrator would (`setfattr -x`; the tree has no attr
    package, so Python's os.removexattr, as root)."""
    upper = v.dir + "/upper"
    name = "user.containers.override_stat"
    value = ct.run(["python3", "-c", "import os, sys; "
                    "print(os.getxattr(sys.argv[1], sys.argv[2]).decode())", upper, name],
                   check=False)
    check(value.stdout.strip() == v.root_override,
          "%s: the upper's root carries %s %r, expected %r (fuse-overlayfs 1.14's)"
          % (v.name, name, value.stdout.strip() or value.stderr, v.root_override))
    res = ct.run([CTL, "migrate", "--dry-run", v.name], check=False)
    step("%s: %s" % (v.name, res.stderr.strip()))
    check(res.returncode == 1 and re.search(
        r"carries %s '%s', naming root as its owner" % (re.escape(name),
                                                        re.escape(v.root_override)),
        res.stderr), "%s: the dry run over the root's %r: exit %d, %r"
        % (v.name, v.root_override, res.returncode, res.stderr))
    ct.run(["python3", "-c", "import os, sys; os.removexattr(sys.argv[1], sys.argv[2])",
            upper, name])


def check_migration(ct, release):
    """Each fuse-era instance of release, written through FUSE, migrated
    as the README tells administrators, mounted through the service,
    compared."""
    owner = ct.run(["id", "-u", USER]).stdout.strip() + ":" + ct.run(
        ["id", "-g", USER]).stdout.strip()
    left4me_gid = ct.run(["getent", "group", "left4me"]).stdout.split(":")[2]
    for v in variants(release):
        merged = v.dir + "/merged"
        step("%s: %s writes a fuse-era upper through fuse-overlayfs%s" % (
            v.name, USER, " -o " + v.options.lstrip(",") if v.options else ""))
        fuse_view = parse_view(write_upper(ct, v))
        check_session_shown(v, fuse_view, owner, left4me_gid)

        step("%s: the service refuses it as it is; a member may not migrate it" % v.name)
        res = ct.run([CTL, "--no-ask-password", "mount", v.name], user=USER, check=False)
        check(res.returncode == 1 and "tainted" in res.stderr,
              "%s: mount of the fuse-era upper: exit %d, %r" % (v.name, res.returncode,
                                                               res.stderr))
        res = ct.run([CTL, "--no-ask-password", "migrate", v.name], user=USER, check=False)
        check(res.returncode == 3, "%s: a member's migrate: exit %d, %r"
              % (v.name, res.returncode, res.stderr))

        if v.root_override:
            step("%s: the dry run refuses the root's override %s (naming root); an admin "
                 "removes it" % (v.name, v.root_override))
            remove_root_override(ct, v)
        step("%s: root's dry run, then the administrator's migrate (password)" % v.name)
        dry = ct.run([CTL, "migrate", "--dry-run", v.name], timeout=300).stdout
        check(dry.endswith("dry run: nothing was changed\n"),
              "%s: dry run printed:\n%s" % (v.name, dry))
        code, report = migrate_by_admin(ct, v)
        check(code == 0, "%s: the admin's migrate: exit %d\n%s" % (v.name, code, report))
        patterns = [r"^made \d+ changes in \d+ entries: .*, 0 quarantined$",
                    r"^verified: the kernel overlay shows the same \d+ entries as "
                    r"fuse-overlayfs did",
                    r"^set-opaque %s/upper/game/dir2 " % re.escape(v.dir)]
        if v.overrides_applied:
            # The overrides' modes and groups, applied by the service's
            # Migrate executor (chmod of the owner's file: CAP_FOWNER;
            # chown: CAP_CHOWN and the unit's @chown line).
            step("%s: the service chmods and chowns the owner's files as the overrides say"
                 % v.name)
            patterns.append(r"^chmod %s/upper/game/keep/k2 0600 " % re.escape(v.dir))
            patterns.append(r"^chown %s/upper/game/keep/k3 \d+:%s " % (re.escape(v.dir),
                                                                      left4me_gid))
        for pattern in patterns:
            check(re.search(pattern, report, re.M), "%s: no line %r in the report:\n%s"
                  % (v.name, pattern, report))

        step("%s: mounted through the service, the kernel overlay shows what FUSE did"
             % v.name)
        ct.run([CTL, "mount", v.name], user=USER)
        check(mounts_on(ct, merged) == [("overlay", "left4me:" + v.name)],
              "%s: after mount: %r" % (v.name, mounts_on(ct, merged)))
        listing = ct.run(["sh", "-ec", LIST_VIEW + 'list_view "$1"', "lister", merged],
                         user=USER).stdout
        ct.run([CTL, "unmount", v.name], user=USER)
        diffs = differences(fuse_view, parse_view(listing))
        check(not diffs, "%s: the kernel overlay differs from the FUSE view in %d entries:\n  %s"
              % (v.name, len(diffs), "\n  ".join(diffs)))
        step("%s: %d entries alike, names, kinds, modes, owners and contents"
             % (v.name, len(fuse_view)))
