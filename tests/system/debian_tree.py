"""A cached minimal Debian 12 tree for the system test (README, "Tests").

debootstrap takes about 70 s and 250 MB, so the finished tree is kept under
CACHE_DIR, keyed by everything that decides its contents (suite, variant,
include list, mirror), and each run works on a copy of it.

  python3 debian_tree.py [--cache DIR]   builds the cache (if missing) and
                                         prints the cached tree's path
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

SUITE = "bookworm"
VARIANT = "minbase"
# systemd/dbus/polkitd: the stack the service runs under; libpam-systemd:
# polkitd does not install without it being named; sudo: the drop-in's
# sudoers line is checked too; adduser: as on any Debian system; the
# rest: the package's computed dependencies (shared libraries, python3 for
# what dh_python3 finds, python3-jeepney for the Python client), so it
# installs with dpkg -i inside a container that has no network.
INCLUDE = ["systemd", "dbus", "polkitd", "libpam-systemd", "sudo", "adduser",
           "libsdbus-c++1", "libpolkit-gobject-1-0", "libglib2.0-0",
           "libspdlog1.10", "libfmt9", "python3", "python3-jeepney"]
CACHE_DIR = "/var/cache/left4me-overlay-test"


def apt_mirror():
    """The Debian mirror this machine's apt uses for SUITE (main)."""
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
                if (SUITE in fields.get("suites", []) and "main" in fields.get("components", [])
                        and "deb" in fields.get("types", ["deb"])):
                    return fields["uris"][0]
        else:
            for line in text.splitlines():
                words = line.split("#", 1)[0].split()
                if len(words) >= 4 and words[0] == "deb":
                    rest = [w for w in words[1:] if not w.startswith("[")]
                    if len(rest) >= 3 and rest[1] == SUITE and "main" in rest[2:]:
                        return rest[0]
    raise RuntimeError("no apt source for %s main in /etc/apt/sources.list*" % SUITE)


def cache_key(mirror):
    text = "\n".join([SUITE, VARIANT, ",".join(INCLUDE), mirror])
    return "%s-%s" % (SUITE, hashlib.sha256(text.encode()).hexdigest()[:12])


def cached_tree(cache_dir=CACHE_DIR, log=sys.stderr):
    """The path of the cached tree, debootstrapped first if not cached yet."""
    mirror = apt_mirror()
    entry = os.path.join(cache_dir, cache_key(mirror))
    root = os.path.join(entry, "root")
    if os.path.isfile(os.path.join(entry, "complete")):
        return root
    os.makedirs(cache_dir, 0o755, exist_ok=True)
    # Built beside the entry and renamed into place: an interrupted run
    # never leaves a half tree that later runs would take as cached.
    work = tempfile.mkdtemp(prefix=".build-", dir=cache_dir)
    try:
        argv = ["debootstrap", "--variant=" + VARIANT, "--include=" + ",".join(INCLUDE),
                SUITE, os.path.join(work, "root"), mirror]
        print("debootstrap (about 70 s, cached afterwards): %s" % " ".join(argv), file=log)
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            raise RuntimeError("debootstrap failed (%d):\n%s" % (proc.returncode,
                                                                   proc.stdout[-4000:]))
        # The mirror URL and the key's inputs, for whoever looks at the cache.
        with open(os.path.join(work, "complete"), "w") as f:
            f.write("%s %s %s %s\n" % (SUITE, VARIANT, ",".join(INCLUDE), mirror))
        shutil.rmtree(entry, ignore_errors=True)
        os.rename(work, entry)
    finally:
        if os.path.isdir(work):
            shutil.rmtree(work, ignore_errors=True)
    return root


def copy_tree(source, target):
    """A private copy of the cached tree for one run (hard links would let
    the run change the cache)."""
    subprocess.run(["cp", "-a", "--reflink=auto", source, target], check=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", default=CACHE_DIR)
    args = parser.parse_args()
    print(cached_tree(args.cache))


if __name__ == "__main__":
    main()
