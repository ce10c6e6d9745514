"""Cached minimal Debian trees for the system test (README, "Tests"): one
per release, Debian 12 (bookworm) and Debian 13 (trixie).

debootstrap takes one to three minutes and 250 MB, so the finished tree is
kept under CACHE_DIR, outside the clone, keyed by everything that decides
its contents (suite, variant, include list, mirror), and each run works on
a copy of it.

  python3 debian_tree.py [--release R] [--cache DIR]
      builds the cache (if missing) and prints the cached tree's path
"""

import argparse
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

VARIANT = "minbase"
# systemd/dbus/polkitd: the stack the service runs under; libpam-systemd:
# polkitd does not install without it being named; sudo: the drop-in's
# sudoers line is checked too; adduser: as on any Debian system; the
# rest: the package's computed dependencies on that release (shared
# libraries, python3 for what dh_python3 finds, python3-jeepney for the
# Python client), so it installs with dpkg -i inside a container that has
# no network. A name missing here makes that dpkg -i fail, not pass.
# fuse-overlayfs and fuse3 (fusermount3): the fuse-era step writes an
# upper with the release's own fuse-overlayfs (tests/system/fuse_era.py).
COMMON = ["systemd", "dbus", "polkitd", "libpam-systemd", "sudo", "adduser",
          "libpolkit-gobject-1-0", "python3", "python3-jeepney", "fuse-overlayfs", "fuse3"]
RELEASES = {
    # Debian 12: sdbus-c++ 1.2, spdlog 1.10 (fmt 9), polkitd 122, jeepney 0.8
    "bookworm": COMMON + ["libsdbus-c++1", "libglib2.0-0", "libspdlog1.10", "libfmt9"],
    # Debian 13: sdbus-c++ 2.1, spdlog 1.15 (fmt 10), polkitd 126, jeepney 0.9
    "trixie": COMMON + ["libsdbus-c++2", "libglib2.0-0t64", "libspdlog1.15", "libfmt10"],
}
DEFAULT_RELEASE = "bookworm"
CACHE_DIR = "/var/cache/left4me-overlay-test"


def apt_mirror(suite=DEFAULT_RELEASE):
    """The Debian mirror this machine's apt uses: the one for `suite`
    (main) if a source names it, else the one for this machine's own
    release (a Debian 12 host's mirror serves Debian 13 as well)."""
    found = {}
    files = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*"))
    for path in files:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        if path.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields = {}
                for line in stanza.splitlines():
                    m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
                    if m:
                        fields[m.group(1).lower()] = m.group(2).split()
                if "main" in fields.get("components", []) and "deb" in fields.get(
                        "types", ["deb"]):
                    for s in fields.get("suites", []):
                        found.setdefault(s, fields["uris"][0])
        else:
            for line in text.splitlines():
                words = line.split("#", 1)[0].split()
                if len(words) >= 4 and words[0] == "deb":
                    rest = [w for w in words[1:] if not w.startswith("[")]
                    if len(rest) >= 3 and "main" in rest[2:]:
                        found.setdefault(rest[1], rest[0])
    if suite in found:
        return found[suite]
    # The host's own release: a suite without "-" (not -updates, -security).
    for s in (s for s in found if "-" not in s):
        return found[s]
    raise RuntimeError("no Debian apt source (main) in /etc/apt/sources.list*")


def cache_key(suite, mirror):
    text = "\n".join([suite, VARIANT, ",".join(RELEASES[suite]), mirror])
    return "%s-%s" % (suite, hashlib.sha256(text.encode()).hexdigest()[:12])


def cached_tree(release=DEFAULT_RELEASE, cache_dir=CACHE_DIR, log=sys.stderr):
    """The path of the cached tree of release, debootstrapped first if not
    cached yet."""
    include = RELEASES[release]
    mirror = apt_mirror(release)
    entry = os.path.join(cache_dir, cache_key(release, mirror))
    root = os.path.join(entry, "root")
    if os.path.isfile(os.path.join(entry, "complete")):
        return root
    os.makedirs(cache_dir, 0o755, exist_ok=True)
    # Built beside the entry and renamed into place: an interrupted run
    # never leaves a half tree that later runs would take as cached.
    work = tempfile.mkdtemp(prefix=".build-", dir=cache_dir)
    try:
        argv = ["debootstrap", "--variant=" + VARIANT, "--include=" + ",".join(include),
                release, os.path.join(work, "root"), mirror]
        print("debootstrap (1-3 min, cached afterwards): %s" % " ".join(argv), file=log)
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            raise RuntimeError("debootstrap failed (%d):\n%s" % (proc.returncode,
                                                                   proc.stdout[-4000:]))
        # The mirror URL and the key's inputs, for whoever looks at the cache.
        with open(os.path.join(work, "complete"), "w") as f:
            f.write("%s %s %s %s\n" % (release, VARIANT, ",".join(include), mirror))
        shutil.rmtree(entry, ignore_errors=True)
        os.rename(work, entry)
    finally:
        if os.path.isdir(work):
            shutil.rmtree(work, ignore_errors=True)
    return root


def copy_tree(source, target):
    """A private copy of the cached tree for one run, into the existing
    folder target (hard links would let the run change the cache)."""
    subprocess.run(["cp", "-a", "--reflink=auto", source + "/.", target], check=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--release", choices=sorted(RELEASES), default=DEFAULT_RELEASE)
    parser.add_argument("--cache", default=CACHE_DIR)
    args = parser.parse_args()
    print(cached_tree(args.release, args.cache))


if __name__ == "__main__":
    main()
